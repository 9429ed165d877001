//! A LiteLLM user's config.yaml, as is, through `llm-router-config --envoy`
//! into a real Envoy: Azure deployments on two hosts, a keyless vLLM server
//! over http, the `*` passthrough, bare names by model family, aliases. Each
//! mock stands where the config's `api_base` says, and checks the host,
//! path, query, credentials and model it receives.

mod common;

use common::*;
use mock_provider::{Mock, Provider};

struct Upstreams {
    azure: Mock,
    azure_eu: Mock,
    vllm: Mock,
    openai: Mock,
    anthropic: Mock,
}

const AZURE_KEY: &str = "azure-e2e-key";
const AZURE_EU_KEY: &str = "azure-eu-e2e-key";

fn start_upstreams() -> Upstreams {
    let start = |provider, key: &str| mock_provider::start(provider, "127.0.0.1:0", key).expect("mock starts");
    Upstreams {
        azure: start(Provider::Azure, AZURE_KEY),
        azure_eu: start(Provider::Azure, AZURE_EU_KEY),
        vllm: start(Provider::Vllm, ""),
        openai: start(Provider::OpenAi, &provider_key(Provider::OpenAi)),
        anthropic: start(Provider::Anthropic, &provider_key(Provider::Anthropic)),
    }
}

/// The config, with the mocks' ports. One Azure api_base comes from the
/// environment (LiteLLM's `os.environ/`), the other is a host name.
fn litellm_config(upstreams: &Upstreams) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-prod
      api_base: os.environ/AZURE_API_BASE
      api_version: "2024-10-21"
      api_key: os.environ/AZURE_API_KEY
  - model_name: gpt-4o-mini
    litellm_params:
      model: azure/mini-eu
      api_base: http://localhost:{azure_eu}/
      api_key: os.environ/AZURE_EU_KEY
  - model_name: llama
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3.1-8B-Instruct
      api_base: http://127.0.0.1:{vllm}/v1
  - model_name: "*"
    litellm_params:
      model: "*"
router_settings:
  model_group_alias:
    gpt-4: gpt-4o
    internal-llama: {{model: llama, hidden: true}}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
litellm_settings:
  drop_params: true
# Where the passthrough finds OpenAI and Anthropic here.
providers:
  openai: {{api_base: "http://127.0.0.1:{openai}/v1"}}
  anthropic: {{api_base: "http://127.0.0.1:{anthropic}/v1"}}
"#,
        azure_eu = upstreams.azure_eu.addr.port(),
        vllm = upstreams.vllm.addr.port(),
        openai = upstreams.openai.addr.port(),
        anthropic = upstreams.anthropic.addr.port(),
    )
}

fn generation_env(upstreams: &Upstreams) -> String {
    format!("http://127.0.0.1:{}", upstreams.azure.addr.port())
}

fn envoy_env() -> Vec<(&'static str, String)> {
    vec![
        ("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()),
        ("AZURE_API_KEY", AZURE_KEY.to_owned()),
        ("AZURE_EU_KEY", AZURE_EU_KEY.to_owned()),
        ("OPENAI_API_KEY", provider_key(Provider::OpenAi)),
        ("ANTHROPIC_API_KEY", provider_key(Provider::Anthropic)),
    ]
}

fn generate(upstreams: &Upstreams) -> String {
    let azure_base = generation_env(upstreams);
    let (bootstrap, stderr) = generate_test_bootstrap(&litellm_config(upstreams), &[("AZURE_API_BASE", &azure_base)]);
    assert!(
        stderr.contains("warning: litellm_settings.drop_params is ignored"),
        "{stderr}"
    );
    bootstrap
}

#[test]
fn the_generated_bootstrap_validates() {
    let upstreams = start_upstreams();
    let env = envoy_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, output) = validate(&generate(&upstreams), &env);
    assert!(ok, "{output}");
}

/// (request model, the mock that must get it, path and query there,
/// Host there, model in the body it gets; `None` where the provider reads
/// the model from the path).
struct Row {
    model: &'static str,
    upstream: fn(&Upstreams) -> &Mock,
    path: &'static str,
    host: fn(&Upstreams) -> String,
    upstream_model: Option<&'static str>,
}

fn loopback(mock: &Mock) -> String {
    format!("127.0.0.1:{}", mock.addr.port())
}

#[test]
fn each_request_reaches_its_api_base_as_that_provider_takes_it() {
    let upstreams = start_upstreams();
    let stack = Stack::launch(&generate(&upstreams), &envoy_env(), Vec::new(), 1);
    let rows = [
        Row {
            model: "gpt-4o",
            upstream: |u| &u.azure,
            path: "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
            host: |u| loopback(&u.azure),
            upstream_model: None,
        },
        // an alias routes as its target
        Row {
            model: "gpt-4",
            upstream: |u| &u.azure,
            path: "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
            host: |u| loopback(&u.azure),
            upstream_model: None,
        },
        // a host name (a DNS cluster), LiteLLM's default api-version
        Row {
            model: "gpt-4o-mini",
            upstream: |u| &u.azure_eu,
            path: "/openai/deployments/mini-eu/chat/completions?api-version=2025-02-01-preview",
            host: |u| format!("localhost:{}", u.azure_eu.addr.port()),
            upstream_model: None,
        },
        // keyless: the mock refuses any credential
        Row {
            model: "llama",
            upstream: |u| &u.vllm,
            path: "/v1/chat/completions",
            host: |u| loopback(&u.vllm),
            upstream_model: Some("meta-llama/Llama-3.1-8B-Instruct"),
        },
        Row {
            model: "internal-llama",
            upstream: |u| &u.vllm,
            path: "/v1/chat/completions",
            host: |u| loopback(&u.vllm),
            upstream_model: Some("meta-llama/Llama-3.1-8B-Instruct"),
        },
        // `*`: the request's own provider, or its model family's
        Row {
            model: "anthropic/claude-3-5-haiku-latest",
            upstream: |u| &u.anthropic,
            path: "/v1/chat/completions",
            host: |u| loopback(&u.anthropic),
            upstream_model: Some("claude-3-5-haiku-latest"),
        },
        Row {
            model: "claude-sonnet-4-5",
            upstream: |u| &u.anthropic,
            path: "/v1/chat/completions",
            host: |u| loopback(&u.anthropic),
            upstream_model: Some("claude-sonnet-4-5"),
        },
        Row {
            model: "o3-mini",
            upstream: |u| &u.openai,
            path: "/v1/chat/completions",
            host: |u| loopback(&u.openai),
            upstream_model: Some("o3-mini"),
        },
    ];
    let all = |u: &Upstreams| -> usize {
        [&u.azure, &u.azure_eu, &u.vllm, &u.openai, &u.anthropic]
            .iter()
            .map(|m| m.requests())
            .sum()
    };
    for row in rows {
        let mock = (row.upstream)(&upstreams);
        let before = (mock.requests(), all(&upstreams));
        let body = format!(
            r#"{{"model":"{}","messages":[{{"role":"user","content":"hi"}}]}}"#,
            row.model
        );
        let response = stack.chat(&body);
        assert_eq!(response.status(), 200, "{}: {}", row.model, response.text());
        assert_eq!(
            (mock.requests(), all(&upstreams)),
            (before.0 + 1, before.1 + 1),
            "{} went to its own upstream only",
            row.model
        );
        let received = mock.received().pop().expect("received");
        assert_eq!(received.path, row.path, "{}", row.model);
        assert_eq!(
            received.header("host"),
            Some((row.host)(&upstreams).as_str()),
            "{}",
            row.model
        );
        // The mocks have checked the credentials style and key (a wrong one
        // is a 401); no client key ever arrives.
        for (name, value) in &received.headers {
            assert!(!value.contains(MASTER_KEY), "{}: the client key in {name}", row.model);
        }
        let sent: serde_json::Value = serde_json::from_slice(&received.body).expect("json body");
        if let Some(model) = row.upstream_model {
            assert_eq!(sent["model"], model, "{}", row.model);
        }
    }
    let azure = upstreams.azure.received().pop().expect("received");
    assert_eq!(azure.header("authorization"), None);

    // Embeddings take Azure's deployment path too.
    let response = stack.post(
        "/v1/embeddings",
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            ("content-type", "application/json"),
        ],
        r#"{"model":"gpt-4o","input":"hello"}"#,
    );
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        upstreams.azure.received().pop().expect("received").path,
        "/openai/deployments/gpt-4o-prod/embeddings?api-version=2024-10-21"
    );

    // A bare name no family claims: a 404 that names the known prefixes.
    let response = stack.chat(r#"{"model":"my-finetune","messages":[]}"#);
    assert_eq!(response.status(), 404, "{}", response.text());
    let message = response.body_json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("anthropic/") && message.contains("openai/"),
        "{message}"
    );

    // /v1/models lists the names and the visible alias, not the hidden one.
    let models = client::request(
        stack.listener,
        "GET",
        "/v1/models",
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        b"",
    )
    .expect("answers")
    .body_json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["gpt-4o", "gpt-4o-mini", "llama", "*", "gpt-4"]);
}

fn recorder() -> Mock {
    mock_provider::start(Provider::Recorder, "127.0.0.1:0", "").expect("recorder starts")
}

fn ask(stack: &Stack, model: &str) -> Response {
    stack.chat(&format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#
    ))
}

/// LiteLLM's "fallback to a specific model id", and a fallback to a model
/// only a pattern serves (`azure/gpt-4o` beside `azure/*`): each is a later
/// priority of the group's cluster, and its attempt is sent as that
/// deployment takes it (the pattern's deployment the fallback's model, not
/// the pattern's text). A fallback the filter cannot honour is left out
/// with a warning at its line; the file is served.
#[test]
fn fallbacks_to_a_model_id_and_to_a_pattern_served_name_fail_over_in_envoy() {
    let down = recorder();
    down.set_fault(Some(mock_provider::Fault::parse("503").expect("fault")));
    let west = recorder();
    let azure = mock_provider::start(Provider::Azure, "127.0.0.1:0", AZURE_KEY).expect("mock starts");
    let config = format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_key: k-down, api_base: "http://127.0.0.1:{down}/v1"}}
  - model_name: "azure/*"
    litellm_params: {{model: "azure/*", api_base: "http://127.0.0.1:{azure}", api_key: {AZURE_KEY}, api_version: "2024-10-21"}}
  - model_name: claude
    litellm_params: {{model: openai/claude-primary, api_key: k-down, api_base: "http://127.0.0.1:{down}/v1"}}
  - model_name: g
    litellm_params: {{model: openai/g-east, api_key: k-east, api_base: "http://127.0.0.1:{down}/v1"}}
    model_info: {{id: east}}
  - model_name: g
    litellm_params: {{model: openai/g-west, api_key: k-west, api_base: "http://127.0.0.1:{west}/v1"}}
    model_info: {{id: west}}
router_settings:
  fallbacks: [{{gpt-4o: [azure/gpt-4o, nope]}}, {{claude: [west]}}]
"#,
        down = down.addr.port(),
        west = west.addr.port(),
        azure = azure.addr.port(),
    );
    let (bootstrap, stderr) = generate_test_bootstrap(&config, &[]);
    assert!(
        stderr.contains("config.yaml:15:16: warning: router_settings.fallbacks[0].gpt-4o: ")
            && stderr
                .contains("fallback `nope` is no model_name, model_info.id, alias or model a pattern serves; left out"),
        "{stderr}"
    );
    let stack = Stack::launch(
        &bootstrap,
        &[("LITELLM_MASTER_KEY", MASTER_KEY.to_owned())],
        Vec::new(),
        1,
    );

    let response = ask(&stack, "gpt-4o");
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.header("x-llm-router-deployment"), Some("azure/*#1"));
    let received = azure.received().pop().expect("the fallback got it");
    assert_eq!(
        received.path,
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    );

    let response = ask(&stack, "claude");
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.header("x-llm-router-deployment"), Some("west"));
    let received = west.received().pop().expect("the fallback got it");
    assert_eq!(received.header("authorization"), Some("Bearer k-west"));
    let sent: serde_json::Value = serde_json::from_slice(&received.body).expect("json body");
    assert_eq!(sent["model"], "g-west");
    assert_eq!(down.requests(), 2, "each primary was tried first");
}

/// `os.environ/NAME` in a `credential_list` entry is read as in
/// `litellm_params`: its `api_base` is the deployment's cluster (not a
/// stand-in host answering 503), its key read by the filter.
#[test]
fn credential_values_from_the_environment_reach_their_upstream() {
    let upstream = recorder();
    let config = "model_list:
  - model_name: shared
    litellm_params: {model: openai/gpt-4o, litellm_credential_name: team}
credential_list:
  - credential_name: team
    credential_values: {api_key: os.environ/TEAM_KEY, api_base: os.environ/TEAM_BASE}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
";
    let base = format!("http://127.0.0.1:{}/v1", upstream.addr.port());
    let (bootstrap, _) = generate_test_bootstrap(config, &[("TEAM_BASE", &base)]);
    let env = [
        ("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()),
        ("TEAM_KEY", "team-key".to_owned()),
    ];
    let stack = Stack::launch(&bootstrap, &env, Vec::new(), 1);
    let response = ask(&stack, "shared");
    assert_eq!(response.status(), 200, "{}", response.text());
    let received = upstream.received().pop().expect("received");
    assert_eq!(received.path, "/v1/chat/completions");
    assert_eq!(received.header("authorization"), Some("Bearer team-key"));
}

/// A listed provider at a server of the user's own (a self-hosted TGI, an
/// OpenAI-compatible server) with no `api_key`: its usual variable where
/// set, nothing where not, as LiteLLM sends it; no 503.
#[test]
fn a_listed_provider_at_its_own_server_needs_no_key() {
    let tgi = recorder();
    let compatible = recorder();
    let config = format!(
        "model_list:
  - model_name: tgi
    litellm_params: {{model: huggingface/tgi, api_base: \"http://127.0.0.1:{tgi}/v1\"}}
  - model_name: compatible
    litellm_params: {{model: mistral/small, api_base: \"http://127.0.0.1:{compatible}/v1\"}}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
",
        tgi = tgi.addr.port(),
        compatible = compatible.addr.port(),
    );
    let (bootstrap, _) = generate_test_bootstrap(&config, &[]);
    let env = [
        ("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()),
        ("MISTRAL_API_KEY", "mistral-key".to_owned()),
    ];
    let stack = Stack::launch(&bootstrap, &env, Vec::new(), 1);
    for (model, upstream, key) in [
        ("tgi", &tgi, None),
        ("compatible", &compatible, Some("Bearer mistral-key")),
    ] {
        let response = ask(&stack, model);
        assert_eq!(response.status(), 200, "{model}: {}", response.text());
        let received = upstream.received().pop().expect("received");
        assert_eq!(received.header("authorization"), key, "{model}");
        for header in mock_provider::CREDENTIAL_HEADERS
            .iter()
            .filter(|h| **h != "authorization")
        {
            assert_eq!(received.header(header), None, "{model}: {header}");
        }
    }
}
