//! Azure with Entra ID client credentials (`tenant_id`, `client_id`,
//! `client_secret`), as LiteLLM users write them: Envoy's OAuth2 credential
//! injector gets the token from a mock Entra ID token endpoint
//! (`AZURE_AUTHORITY_HOST`, as LiteLLM reads it) and sends it as
//! `Authorization: Bearer` to that deployment only. The client secret
//! reaches Envoy from its environment, never the filter's configuration.

mod common;

use common::*;
use mock_provider::{entra_token, Mock, Provider};

const TENANT: &str = "tenant-e2e";
const CLIENT: &str = "client-e2e";
const SECRET: &str = "entra-secret-e2e";
const AZURE_KEY: &str = "azure-key-e2e";

fn config(azure: &Mock) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-prod
      api_base: http://127.0.0.1:{port}/
      api_version: "2024-10-21"
      tenant_id: os.environ/AZURE_TENANT_ID
      client_id: {CLIENT}
      client_secret: os.environ/AZURE_CLIENT_SECRET
  # The same resource, with its key: the token must not reach it.
  - model_name: gpt-4o-keyed
    litellm_params:
      model: azure/gpt-4o-prod
      api_base: http://127.0.0.1:{port}/
      api_version: "2024-10-21"
      api_key: os.environ/AZURE_API_KEY
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"#,
        port = azure.addr.port()
    )
}

/// (bootstrap, warnings) with the token endpoint at `entra`.
fn generate(azure: &Mock, entra: &Mock) -> (String, String) {
    let authority = format!("http://127.0.0.1:{}", entra.addr.port());
    generate_test_bootstrap(
        &config(azure),
        &[("AZURE_TENANT_ID", TENANT), ("AZURE_AUTHORITY_HOST", &authority)],
    )
}

fn envoy_env(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()),
        ("AZURE_API_KEY", AZURE_KEY.to_owned()),
        ("AZURE_CLIENT_SECRET", secret.to_owned()),
    ]
}

fn start(provider: Provider, key: &str) -> Mock {
    mock_provider::start(provider, "127.0.0.1:0", key).expect("mock starts")
}

#[test]
fn the_token_envoy_gets_reaches_that_deployment_only() {
    let entra = start(Provider::Entra, &format!("{TENANT}|{CLIENT}|{SECRET}"));
    let azure = start(Provider::Recorder, "");
    let (bootstrap, warnings) = generate(&azure, &entra);
    assert!(!warnings.contains("is not served"), "{warnings}");
    assert!(
        warnings.contains("read by Envoy itself when it starts") && warnings.contains("AZURE_CLIENT_SECRET"),
        "{warnings}"
    );
    assert!(
        !bootstrap.contains(SECRET) && !bootstrap.contains("os.environ/AZURE_CLIENT_SECRET"),
        "the client secret is Envoy's, read from its environment"
    );
    let env = envoy_env(SECRET);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (valid, output) = validate(&bootstrap, &env_refs);
    assert!(valid, "{output}");

    let stack = Stack::launch(&bootstrap, &env, Vec::new(), 1);
    for round in 0..2 {
        let response = stack.chat(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(response.status(), 200, "{}", response.text());
        let received = azure.received().pop().expect("received");
        assert_eq!(
            received.path,
            "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        );
        let bearer = format!("Bearer {}", entra_token(CLIENT));
        assert_eq!(received.header_all("authorization"), [bearer.as_str()], "round {round}");
        assert_eq!(received.header("api-key"), None, "round {round}");
    }
    // One token for both requests: Envoy keeps it until it expires.
    assert_eq!(entra.requests(), 1);
    let token_request = entra.received().pop().expect("token request");
    assert_eq!(token_request.path, format!("/{TENANT}/oauth2/v2.0/token"));

    let response = stack.chat(r#"{"model":"gpt-4o-keyed","messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(response.status(), 200, "{}", response.text());
    let received = azure.received().pop().expect("received");
    assert_eq!(received.header_all("api-key"), [AZURE_KEY]);
    assert_eq!(
        received.header("authorization"),
        None,
        "the token went to a keyed deployment"
    );

    // The filter's configuration holds neither the secret nor its variable.
    let dump = stack.admin_get("/config_dump").text();
    assert!(!dump.contains(SECRET), "the secret in /config_dump");
}

#[test]
fn a_refused_token_is_a_json_error_and_nothing_is_sent() {
    let entra = start(Provider::Entra, &format!("{TENANT}|{CLIENT}|{SECRET}"));
    let azure = start(Provider::Recorder, "");
    let (bootstrap, _) = generate(&azure, &entra);
    let stack = Stack::launch(&bootstrap, &envoy_env("a-wrong-secret"), Vec::new(), 1);
    let response = stack.chat(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{}",
        response.text()
    );
    let (status, code) = error_code(&response);
    assert_eq!(
        (status, code.as_str()),
        (503, "provider_credentials_unavailable"),
        "{}",
        response.text()
    );
    assert_eq!(azure.requests(), 0, "nothing reaches Azure without its token");
    assert!(entra.requests() >= 1);
}
