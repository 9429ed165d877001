use super::*;
use crate::model::{ApiBase, AuthStyle, Credentials, Endpoint, ModelLimit, Scheme, Upstream};
use crate::route::NoRoute;

pub const SEED: &str = r#"{"model_list": [
  {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_key": "os.environ/ANTHROPIC_API_KEY"}},
  {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "os.environ/GROQ_API_KEY"}},
  {"model_name": "fo::*:static::*", "litellm_params": {"model": "openai/fo::*:static::*", "api_key": "os.environ/OPENAI_API_KEY"}}],
 "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}}"#;

pub fn test_env(var: &str) -> Option<String> {
    match var {
        "ANTHROPIC_API_KEY" => Some("sk-ant-test".into()),
        "GEMINI_API_KEY" => Some("gemini-test".into()),
        "GROQ_API_KEY" => Some("gsk-test".into()),
        "OPENAI_API_KEY" => Some("sk-openai-test".into()),
        "LITELLM_MASTER_KEY" => Some("sk-router-master".into()),
        _ => None,
    }
}

pub fn compile_test(json: &str) -> Result<Config, ConfigError> {
    compile(json.as_bytes(), &test_env)
}

/// The endpoints of a configuration's fixed deployments, in order.
fn endpoints(config: &Config) -> Vec<&Endpoint> {
    config
        .router
        .deployments()
        .iter()
        .filter_map(|d| match &d.target {
            Target::Fixed(endpoint) => Some(endpoint),
            Target::Unavailable(_) | Target::RequestProvider => None,
        })
        .collect()
}

/// The document paths of the keys the compiler did not read.
fn ignored_paths(config: &Config) -> Vec<&str> {
    config
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Ignored)
        .map(|w| w.path.as_str())
        .collect()
}

/// The variable each unavailable deployment misses, in order.
fn unset_variables(config: &Config) -> Vec<&str> {
    config
        .router
        .deployments()
        .iter()
        .filter_map(|d| match &d.target {
            Target::Unavailable(unavailable) => Some(unavailable.variable.as_str()),
            _ => None,
        })
        .collect()
}

fn warning_texts(config: &Config) -> Vec<String> {
    config.warnings.iter().map(Warning::to_string).collect()
}

#[test]
fn the_seed_compiles() {
    let config = compile_test(SEED).expect("seed compiles");
    assert_eq!(config.cluster_header, "x-llm-cluster");
    assert_eq!(config.max_body_bytes, 32 << 20);
    assert_eq!(config.master_key, Some(Secret::new("sk-router-master".into())));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn litellm_extras_are_accepted() {
    let json = r#"{"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "rpm": 10, "timeout": 30, "api_key": "sk-lit"}, "model_info": {"id": "x"}, "tpm": 5}],
      "general_settings": {"database_url": "ignored"}, "litellm_settings": {"drop_params": true}, "router_settings": {}}"#;
    let config = compile_test(json).expect("compiles");
    // rpm, timeout and model_info.id are read; the rest is named.
    assert_eq!(
        warning_texts(&config),
        [
            "model_list[0].tpm is ignored",
            "general_settings.database_url is ignored",
            "litellm_settings.drop_params is ignored"
        ]
    );
}

#[test]
fn errors_name_the_entry() {
    // (configuration, expected `at`, a fragment of the problem)
    let rows: &[(&str, &str, &str)] = &[
        ("not json", "plugin configuration", "expected"),
        (r#"{"model_lst": []}"#, "model_lst", "unknown field `model_lst`"),
        (r#"{"model_list": []}"#, "model_list", "is empty"),
        (
            r#"{"model_list": [{"model_name": "x"}]}"#,
            "model_list[0]",
            "litellm_params",
        ),
        (
            r#"{"model_list": [{"model_name": "", "litellm_params": {"model": "openai/x", "api_key": "k"}}]}"#,
            "model_list[0] (model_name ``)",
            "empty",
        ),
        (
            r#"{"model_list": [{"model_name": "*", "litellm_params": {"model": "*/x", "api_key": "k"}}]}"#,
            "model_list[0] (model_name `*`)",
            "must be literal",
        ),
        (
            r#"{"model_list": [{"model_name": "a/*", "litellm_params": {"model": "openai/*-*", "api_key": "k"}}]}"#,
            "model_list[0] (model_name `a/*`)",
            "has 2 `*` but model_name has 1",
        ),
        (
            r#"{"model_list": [{"model_name": "exact", "litellm_params": {"model": "openai/*", "api_key": "k"}}]}"#,
            "model_list[0] (model_name `exact`)",
            "has 1 `*` but model_name has 0",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "a\nb"}}]}"#,
            "model_list[0] (model_name `x`): litellm_params.api_key",
            "line break",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": ""}}]}"#,
            "model_list[0] (model_name `x`)",
            "empty",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "general_settings": {"master_key": "os.environ/NOPE"}}"#,
            "general_settings.master_key",
            "`NOPE` is not set",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "general_settings": {"master_key": ""}}"#,
            "general_settings.master_key",
            "empty",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "cluster_header": "bad header"}"#,
            "cluster_header",
            "not a valid header name",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "max_body_bytes": 0}"#,
            "max_body_bytes",
            "greater than 0",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "providers": {"newco": {"cluster": "newco"}}}"#,
            "providers.newco",
            "needs `api_base`",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "providers": {"groq": {"clustr": "g"}}}"#,
            "providers.groq.clustr",
            "unknown field `clustr`",
        ),
        (
            r#"{"model_list": [{"model_name": "a", "litellm_params": {"model": "azure/gpt-4o", "api_key": "k"}}]}"#,
            "model_list[0] (model_name `a`)",
            "set litellm_params.api_base (e.g. `https://<resource>.openai.azure.com`)",
        ),
        (
            r#"{"model_list": [{"model_name": "v", "litellm_params": {"model": "hosted_vllm/m"}}]}"#,
            "model_list[0] (model_name `v`)",
            "has no default address",
        ),
        (
            r#"{"model_list": [{"model_name": "all", "litellm_params": {"model": "*"}}]}"#,
            "model_list[0] (model_name `all`)",
            "model_name has 0",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "router_settings": {"model_group_alias": {"y": "nowhere"}}}"#,
            "router_settings.model_group_alias `y`",
            "`nowhere` matches no model_name",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "router_settings": {"model_group_alias": {"y": {"hidden": true}}}}"#,
            "router_settings.model_group_alias.y",
            "did not match any variant",
        ),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "providers": {"openai": {"model_families": [""]}}}"#,
            "providers.openai",
            "model family `` is empty",
        ),
    ];
    for (json, at, fragment) in rows {
        match compile_test(json) {
            Ok(_) => panic!("accepted: {json}"),
            Err(e) => {
                assert_eq!(e.at, *at, "for {json}: {e}");
                assert!(
                    at.starts_with(e.path.split(['.', '[']).next().unwrap_or_default()),
                    "{e:?}"
                );
                assert!(e.problem.contains(fragment), "for {json}: {e}");
            }
        }
    }
}

#[test]
fn an_unset_provider_key_only_disables_its_deployment() {
    let json = r#"{"model_list": [{"model_name": "m/*", "litellm_params": {"model": "mistral/*", "api_key": "os.environ/MISSING_KEY"}}, {"model_name": "x", "litellm_params": {"model": "openai/x"}}]}"#;
    let config = compile_test(json).expect("an unset key is not fatal");
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(config.warnings[0].path, "model_list[0]");
    assert!(warning_texts(&config)[0].contains("MISSING_KEY"));
    assert_eq!(unset_variables(&config), ["MISSING_KEY"]);
    // no api_key: the provider's conventional variable, as in LiteLLM
    assert_eq!(
        endpoints(&config)[0].credentials,
        vec![("authorization", Secret::new("Bearer sk-openai-test".into()))]
    );
}

#[test]
fn known_example_master_keys_warn() {
    let json = r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}], "general_settings": {"master_key": "sk-1234"}}"#;
    let config = compile_test(json).expect("compiles");
    assert!(warning_texts(&config).iter().any(|w| w.contains("publicly known")));
    assert!(warning_texts(&config).iter().all(|w| !w.contains("sk-1234 ")));
}

#[test]
fn providers_override_and_extend_the_table() {
    let json = r#"{"model_list": [
        {"model_name": "g/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
        {"model_name": "n/*", "litellm_params": {"model": "newco/*", "api_key": "k"}},
        {"model_name": "o", "litellm_params": {"model": "openai/o", "api_key": "k", "api_base": "http://proxy.local:8080/custom/v1/"}}],
      "providers": {"groq": {"cluster": "groq-egress"}, "newco": {"api_base": "https://api.newco.ai/api/v2", "auth": "x-api-key"}}}"#;
    let config = compile_test(json).expect("compiles");
    let d = endpoints(&config);
    assert_eq!(
        (d[0].cluster.as_str(), d[0].base_path.as_str()),
        ("groq-egress", "/openai/v1")
    );
    assert_eq!((d[1].cluster.as_str(), d[1].base_path.as_str()), ("newco", "/api/v2"));
    assert_eq!(d[1].provider.auth, AuthStyle::AnthropicKey);
    assert_eq!(
        (d[2].cluster.as_str(), d[2].base_path.as_str()),
        ("http_proxy.local_8080", "/custom/v1")
    );
}

#[test]
fn stream_usage_injection_is_per_provider() {
    let json = r#"{"model_list": [
        {"model_name": "m/*", "litellm_params": {"model": "mistral/*", "api_key": "k"}},
        {"model_name": "g/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
        {"model_name": "o/*", "litellm_params": {"model": "openai/*", "api_key": "k"}}],
      "providers": {"openai": {"inject_stream_usage": false}}}"#;
    let config = compile_test(json).expect("compiles");
    let injects: Vec<bool> = endpoints(&config)
        .iter()
        .map(|e| e.provider.inject_stream_usage)
        .collect();
    assert_eq!(injects, [false, true, false]);
}

#[test]
fn secrets_do_not_print() {
    let config = compile_test(SEED).expect("seed compiles");
    let shown = format!("{config:?}");
    for secret in ["sk-ant-test", "gsk-test", "sk-openai-test", "sk-router-master"] {
        assert!(!shown.contains(secret));
    }
}

#[test]
fn api_bases() {
    let https = |host: &str, port, path: &str| {
        Some(ApiBase {
            upstream: Upstream {
                scheme: Scheme::Https,
                host: host.into(),
                port,
            },
            path: path.into(),
        })
    };
    let http = |host: &str, port, path: &str| {
        https(host, port, path).map(|mut base| {
            base.upstream.scheme = Scheme::Http;
            base
        })
    };
    let rows = [
        (
            "https://api.groq.com/openai/v1",
            https("api.groq.com", 443, "/openai/v1"),
        ),
        ("https://api.openai.com/v1/", https("api.openai.com", 443, "/v1")),
        (
            "https://My-Endpoint.openai.azure.com/",
            https("my-endpoint.openai.azure.com", 443, ""),
        ),
        ("http://localhost:8080", http("localhost", 8080, "")),
        ("http://10.0.0.7:8000/v1", http("10.0.0.7", 8000, "/v1")),
        ("http://[::1]:11434/v1", http("[::1]", 11434, "/v1")),
        ("https://h:0/v1", None),
        ("https://h:99999/v1", None),
        ("https://user:pw@h/v1", None),
        ("https://h/v1?x=1", None),
        ("api.openai.com/v1", None),
        ("ftp://h/v1", None),
        ("https:///v1", None),
    ];
    for (url, expected) in rows {
        assert_eq!(ApiBase::parse(url), expected, "{url}");
    }
}

#[test]
fn what_is_accepted_but_not_acted_on_is_named() {
    let json = r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k", "rpm": 10, "timeout": 30}, "model_info": {"id": "1"}, "tpm": 5}],
      "general_settings": {"master_key": "sk-long-random-key", "database_url": "postgres://u:secret@h/db"},
      "litellm_settings": {"drop_params": true, "callbacks": ["langfuse"]},
      "router_settings": {"routing_strategy": "usage-based-routing-v2", "num_retries": 2, "model_group_alias": {}}}"#;
    let config = compile_test(json).expect("compiles");
    assert_eq!(
        warning_texts(&config),
        [
            "model_list[0].tpm is ignored",
            "general_settings.database_url is ignored",
            "litellm_settings.drop_params is ignored",
            "litellm_settings.callbacks is ignored",
            "router_settings.routing_strategy: `usage-based-routing-v2` is not supported; groups are balanced by weight, rpm or tpm (simple-shuffle)",
        ]
    );
    let ignored = ignored_paths(&config);
    assert_eq!(
        ignored,
        [
            "model_list[0].tpm",
            "general_settings.database_url",
            "litellm_settings.drop_params",
            "litellm_settings.callbacks"
        ]
    );
    assert!(warning_texts(&config).iter().all(|w| !w.contains("secret")));
}

#[test]
fn every_api_base_host_is_an_upstream_of_its_own() {
    let json = r#"{"model_list": [
        {"model_name": "gpt-4o", "litellm_params": {"model": "azure/gpt-4o-prod", "api_base": "https://my-endpoint.openai.azure.com/", "api_version": "2024-10-21", "api_key": "k"}},
        {"model_name": "llama", "litellm_params": {"model": "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", "api_base": "http://vllm.internal:8000/v1"}},
        {"model_name": "local", "litellm_params": {"model": "openai/qwen", "api_base": "http://10.0.0.5:8000/v1", "api_key": "k"}},
        {"model_name": "also-openai", "litellm_params": {"model": "openai/gpt-4.1", "api_base": "https://api.openai.com/v1"}},
        {"model_name": "claude-*", "litellm_params": {"model": "anthropic/claude-*"}}]}"#;
    let config = compile_test(json).expect("compiles");
    let upstreams: Vec<(&str, String)> = config
        .upstreams()
        .into_iter()
        .map(|(cluster, e)| (cluster, format!("{:?}://{}", e.upstream.scheme, e.upstream.authority())))
        .collect();
    assert_eq!(
        upstreams,
        [
            ("anthropic", "Https://api.anthropic.com".to_owned()),
            ("http_10.0.0.5_8000", "Http://10.0.0.5:8000".to_owned()),
            ("http_vllm.internal_8000", "Http://vllm.internal:8000".to_owned()),
            (
                "https_my-endpoint.openai.azure.com_443",
                "Https://my-endpoint.openai.azure.com".to_owned()
            ),
            ("openai", "Https://api.openai.com".to_owned()),
        ]
    );
    let endpoints = endpoints(&config);
    assert_eq!(endpoints[0].credentials, vec![("api-key", Secret::new("k".into()))]);
    assert_eq!(endpoints[0].api_version.as_deref(), Some("2024-10-21"));
    // vLLM without a key: none is sent (and none is required)
    assert_eq!(endpoints[1].credentials, Vec::new());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn settings_from_the_environment() {
    let env = |var: &str| match var {
        "AZURE_API_BASE" => Some("https://r.openai.azure.com".to_owned()),
        "AZURE_API_VERSION" => Some("2024-06-01".to_owned()),
        _ => test_env(var),
    };
    let json = r#"{"model_list": [
        {"model_name": "a", "litellm_params": {"model": "azure/a", "api_base": "os.environ/AZURE_API_BASE", "api_key": "k"}},
        {"model_name": "b", "litellm_params": {"model": "azure/b", "api_base": "os.environ/UNSET_BASE", "api_key": "k"}}]}"#;
    let config = compile(json.as_bytes(), &env).expect("compiles");
    let endpoints = endpoints(&config);
    assert_eq!(endpoints[0].cluster, "https_r.openai.azure.com_443");
    assert_eq!(endpoints[0].api_version.as_deref(), Some("2024-06-01"));
    assert_eq!(unset_variables(&config), ["UNSET_BASE"]);
    assert_eq!(config.upstreams().len(), 1, "an unset deployment needs no cluster");
    assert!(config
        .warnings
        .iter()
        .any(|w| w.path == "model_list[1]" && w.to_string().contains("UNSET_BASE")));
}

#[test]
fn entries_that_cannot_be_served_are_skipped_and_named() {
    // (entry, a fragment of the reason); each beside a served entry.
    let rows: &[(&str, &str)] = &[
        (r#"{"model": "bedrock/anthropic.claude-3", "api_key": "k"}"#, "SigV4"),
        (r#"{"model": "vertex_ai/gemini-pro"}"#, "OAuth"),
        (
            r#"{"model": "nosuch/gpt", "api_key": "k"}"#,
            "unknown provider `nosuch`",
        ),
        (
            r#"{"model": "cohere-rerank-v3", "api_key": "k"}"#,
            "no model family claims it",
        ),
        (
            r#"{"model": "azure/gpt-4o", "api_base": "https://r.openai.azure.com", "azure_username": "u", "azure_password": "s"}"#,
            "Entra ID token by username and password",
        ),
        (
            r#"{"model": "cohere/rerank-english-v3.0", "api_base": "https://api.cohere.ai", "api_key": "k"}"#,
            "Cohere's own API",
        ),
        (
            r#"{"model": "azure_ai/claude-haiku-4-5", "api_base": "https://r.services.ai.azure.com", "api_key": "k"}"#,
            "Anthropic's Messages API",
        ),
        (
            r#"{"model": "openai/x", "litellm_credential_name": "nope"}"#,
            "`nope` is not in credential_list",
        ),
        // LiteLLM's docs' own placeholders: LiteLLM loads them and fails at
        // request time.
        (
            r#"{"model": "ollama/mistral", "api_base": "your_ollama_api_base"}"#,
            "`your_ollama_api_base` is not an http(s) URL",
        ),
        (
            r#"{"model": "openai/x", "api_key": "k", "api_base": "ftp://h"}"#,
            "not an http(s) URL",
        ),
        (
            r#"{"model": "openai/x", "api_key": "k", "api_base": "https://u:s@h/v1"}"#,
            "not an http(s) URL",
        ),
    ];
    for (params, fragment) in rows {
        let json = format!(
            r#"{{"model_list": [{{"model_name": "served", "litellm_params": {{"model": "openai/x", "api_key": "k"}}}},
               {{"model_name": "skipped/*", "litellm_params": {params}}}]}}"#
        );
        let config = compile_test(&json).unwrap_or_else(|e| panic!("{params}: {e}"));
        assert_eq!(config.router.deployments().len(), 1, "{params}");
        let warning = config
            .warnings
            .iter()
            .find(|w| matches!(w.kind, WarningKind::Skipped { .. }))
            .unwrap_or_else(|| panic!("{params}: {:?}", config.warnings));
        assert_eq!(warning.path, "model_list[1].litellm_params.model");
        assert!(warning.to_string().contains(fragment), "{params}: {warning}");
        let Err(NoRoute::NotServed(skipped)) = config.router.route("skipped/anything") else {
            panic!("{params}: the pattern names it");
        };
        assert!(skipped.reason.contains(fragment), "{params}");
        assert_eq!(config.router.route("other").err(), Some(NoRoute::Unknown));
        assert!(!warning.to_string().contains("\"s\""), "no secret in {warning}");
    }
}

/// Entra ID client credentials: served with no key from the filter, on a
/// cluster of their own (Envoy injects the token there); never in a group,
/// whose cluster other deployments share; read only where asked for.
#[test]
fn entra_client_credentials_get_a_cluster_of_their_own_and_no_key() {
    let entra =
        r#""api_base": "https://r.openai.azure.com", "tenant_id": "os.environ/AZURE_TENANT_ID", "client_id": "c1""#;
    let json = format!(
        r#"{{"model_list": [
      {{"model_name": "entra", "litellm_params": {{"model": "azure/gpt-4o", {entra}, "client_secret": "s3cret"}}}},
      {{"model_name": "keyed", "litellm_params": {{"model": "azure/gpt-4o", "api_base": "https://r.openai.azure.com", "api_key": "k", "client_secret": "unused"}}}},
      {{"model_name": "duo", "litellm_params": {{"model": "azure/a", {entra}}}}},
      {{"model_name": "duo", "litellm_params": {{"model": "azure/b", "api_base": "https://r.openai.azure.com", "api_key": "k"}}}},
      {{"model_name": "other", "litellm_params": {{"model": "openai/gpt-4o", "api_key": "k", "tenant_id": "t"}}}}],
     "router_settings": {{"fallbacks": [{{"other": ["entra"]}}]}}}}"#
    );
    let config = compile_test(&json).expect("compiles");
    let route = |name: &'static str| config.router.route(name).expect("routes");
    let entra_endpoint = route("entra").endpoint.expect("fixed");
    let keyed = route("keyed").endpoint.expect("fixed");
    assert!(entra_endpoint.credentials.is_empty(), "Envoy sends the token");
    assert_eq!(keyed.cluster, "https_r.openai.azure.com_443");
    assert!(
        entra_endpoint
            .cluster
            .starts_with("https_r.openai.azure.com_443_entra_")
            && entra_endpoint.cluster != keyed.cluster,
        "{}",
        entra_endpoint.cluster
    );
    let client = entra_endpoint.entra.as_ref().expect("entra");
    assert_eq!(
        (client.tenant_id.as_str(), client.client_id.as_str(), client.secret()),
        ("os.environ/AZURE_TENANT_ID", "c1", "s3cret")
    );
    assert_eq!(client.scope, "https://cognitiveservices.azure.com/.default");
    assert!(client.client_secret.is_some(), "written in the file");
    // In a group: skipped, the keyed sibling served alone.
    let skipped = config
        .router
        .skipped()
        .iter()
        .find(|s| s.model_name == "duo")
        .expect("skipped");
    assert!(skipped.reason.contains("model group"), "{}", skipped.reason);
    assert_eq!(route("duo").upstream_model, "b");
    // Not asked for: ignored (and so never carried into Envoy's configuration).
    let ignored = ignored_paths(&config);
    assert_eq!(
        ignored,
        [
            "model_list[1].litellm_params.client_secret",
            "model_list[4].litellm_params.tenant_id"
        ]
    );
    // A fallback to it would leave through the fallback group's cluster.
    assert!(config.router.groups().is_empty());
    assert!(
        warning_texts(&config).contains(&"router_settings.fallbacks[0].other: fallback `entra` reaches `entra#1`, which has Entra ID client credentials, whose token Envoy injects on its own cluster only; left out".to_owned()),
        "{:?}",
        warning_texts(&config)
    );
}

#[test]
fn bare_models_take_their_provider_from_the_model_families() {
    let json = r#"{"model_list": [
      {"model_name": "gpt-3.5-turbo", "litellm_params": {"model": "gpt-3.5-turbo", "api_key": "k"}},
      {"model_name": "claude", "litellm_params": {"model": "claude-3-opus-20240229", "api_key": "k"}},
      {"model_name": "o1", "litellm_params": {"model": "o1-preview", "api_key": "k"}}]}"#;
    let config = compile_test(json).expect("compiles");
    let got: Vec<(&str, &str)> = endpoints(&config)
        .iter()
        .map(|e| (e.provider.name.as_str(), e.cluster.as_str()))
        .collect();
    assert_eq!(
        got,
        [("openai", "openai"), ("anthropic", "anthropic"), ("openai", "openai")]
    );
    let route = config.router.route("claude").expect("routes");
    assert_eq!(route.upstream_model, "claude-3-opus-20240229");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn ollama_azure_families_tokens_and_shared_credentials() {
    let json = r#"{"model_list": [
      {"model_name": "llama", "litellm_params": {"model": "ollama/llama3", "api_base": "http://10.0.0.9:11434"}},
      {"model_name": "local", "litellm_params": {"model": "ollama_chat/qwen"}},
      {"model_name": "o3", "litellm_params": {"model": "azure/o_series/my-o3", "api_base": "https://r.openai.azure.com", "api_key": "k"}},
      {"model_name": "ad", "litellm_params": {"model": "azure/gpt5_series/g5", "api_base": "https://r.openai.azure.com", "azure_ad_token": "eyJ-token"}},
      {"model_name": "shared", "litellm_params": {"model": "azure/gpt-4o", "litellm_credential_name": "eu"}}],
     "credential_list": [{"credential_name": "eu", "credential_values": {"api_key": "eu-key", "api_base": "https://eu.openai.azure.com", "api_version": "2024-10-21"}, "credential_info": {"description": "x"}}]}"#;
    let config = compile_test(json).expect("compiles");
    let e = endpoints(&config);
    assert_eq!(
        (e[0].upstream.authority(), e[0].base_path.as_str()),
        ("10.0.0.9:11434".to_owned(), "/v1")
    );
    assert!(e[0].credentials.is_empty(), "Ollama takes no key unless given one");
    assert_eq!((e[1].cluster.as_str(), e[1].base_path.as_str()), ("ollama_chat", "/v1"));
    let deployment = |name: &str| config.router.route(name).expect("routes").upstream_model.into_owned();
    assert_eq!(deployment("o3"), "my-o3");
    assert_eq!(deployment("ad"), "g5");
    assert_eq!(
        e[3].credentials,
        vec![("authorization", Secret::new("Bearer eyJ-token".into()))]
    );
    assert_eq!(e[4].credentials, vec![("api-key", Secret::new("eu-key".into()))]);
    assert_eq!(e[4].upstream.host, "eu.openai.azure.com");
    assert_eq!(e[4].api_version.as_deref(), Some("2024-10-21"));
    let ignored: Vec<&str> = config.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(ignored, ["credential_list[0].credential_info"]);
}

/// A provider the table does not know, given an `api_base` (LiteLLM's docs'
/// `xinference/`): OpenAI-compatible there, with its `<NAME>_API_KEY` where
/// set and no key where not, as a self-hosted server takes it.
#[test]
fn an_unlisted_provider_with_an_address_needs_no_key() {
    let json = r#"{"model_list": [
      {"model_name": "embedding-model", "litellm_params": {"model": "xinference/bge-base-en", "api_base": "http://0.0.0.0:9997/v1"}},
      {"model_name": "keyed", "litellm_params": {"model": "xinference/bge-large", "api_base": "http://0.0.0.0:9997/v1", "api_key": "k"}}]}"#;
    let config = compile_test(json).expect("compiles");
    let e = endpoints(&config);
    assert_eq!(e.len(), 2, "served, not unavailable: {:?}", unset_variables(&config));
    assert!(e[0].credentials.is_empty());
    assert_eq!(
        e[1].credentials,
        vec![("authorization", Secret::new("Bearer k".into()))]
    );
    assert_eq!(e[0].base_path, "/v1");
}

/// A listed provider at a server of the user's own (a self-hosted TGI,
/// vLLM or Ollama) with no `api_key`: its variable where set, else no key,
/// as in LiteLLM; at the provider's own address the key is still needed.
#[test]
fn a_listed_provider_at_its_own_server_sends_its_variable_or_no_key() {
    // (model, api_base, the key sent; Err: the variable it waits for)
    let rows: &[(&str, &str, Result<Option<&str>, &str>)] = &[
        (
            "huggingface/tgi",
            r#", "api_base": "http://10.0.0.1:8080/v1""#,
            Ok(None),
        ),
        ("hosted_vllm/m", r#", "api_base": "http://10.0.0.1:8000/v1""#, Ok(None)),
        ("ollama/m", r#", "api_base": "http://10.0.0.1:11434""#, Ok(None)),
        ("mistral/m", r#", "api_base": "http://10.0.0.1/v1""#, Ok(None)),
        (
            "openai/m",
            r#", "api_base": "http://10.0.0.1:8000/v1""#,
            Ok(Some("Bearer sk-openai-test")),
        ),
        (
            "groq/m",
            r#", "api_base": "https://api.groq.com/openai/v1""#,
            Ok(Some("Bearer gsk-test")),
        ),
        (
            "mistral/m",
            r#", "api_base": "https://api.mistral.ai/v1""#,
            Err("MISTRAL_API_KEY"),
        ),
        ("huggingface/tgi", "", Err("HUGGINGFACE_API_KEY")),
    ];
    for (model, api_base, expected) in rows {
        let json =
            format!(r#"{{"model_list": [{{"model_name": "m", "litellm_params": {{"model": "{model}"{api_base}}}}}]}}"#);
        let config = compile_test(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let got = match config.router.route("m").expect("routes").endpoint {
            Ok(endpoint) => Ok(endpoint
                .credentials
                .iter()
                .find(|(name, _)| *name == "authorization")
                .map(|(_, key)| key.expose().to_owned())),
            Err(unavailable) => Err(unavailable.variable.clone()),
        };
        let expected = expected.map(|key| key.map(str::to_owned)).map_err(str::to_owned);
        assert_eq!(got, expected, "{json}");
    }
}

/// Azure AI Foundry (`azure_ai/`) as LiteLLM's `azure_ai` provider sends
/// it (`AzureAIStudioConfig`, checked against LiteLLM in
/// tests/litellm_examples.rs): the key header and path by host,
/// `api-version` only where set, and what it sends elsewhere skipped.
#[test]
fn azure_ai_takes_the_key_header_and_path_of_its_host() {
    // (model, api_base, api_version, (key header, path of /v1/chat/completions)
    // or a fragment of the reason it is skipped)
    type Row<'a> = (&'a str, &'a str, &'a str, Result<(&'a str, &'a str), &'a str>);
    let rows: &[Row] = &[
        (
            "mistral-large",
            "https://x.services.ai.azure.com",
            "",
            Ok(("api-key", "/models/chat/completions")),
        ),
        (
            "mistral-large",
            "https://x.services.ai.azure.com",
            "2024-05-01-preview",
            Ok(("api-key", "/models/chat/completions?api-version=2024-05-01-preview")),
        ),
        (
            "gpt-4o",
            "https://x.services.ai.azure.com/models",
            "v1",
            Ok(("api-key", "/models/chat/completions?api-version=v1")),
        ),
        (
            "mistral-large",
            "https://mistral.eastus2.inference.ai.azure.com",
            "",
            Ok(("authorization", "/chat/completions")),
        ),
        (
            "m",
            "https://x.openai.azure.com/openai/v1",
            "",
            Ok(("api-key", "/openai/v1/chat/completions")),
        ),
        (
            "m",
            "http://127.0.0.1:9/v1",
            "",
            Ok(("authorization", "/v1/chat/completions")),
        ),
        (
            "gpt-4o",
            "https://x.openai.azure.com",
            "",
            Err("Azure OpenAI's deployments API"),
        ),
        (
            "claude-sonnet-4-5",
            "https://x.services.ai.azure.com",
            "",
            Err("Anthropic's Messages API"),
        ),
        (
            "agents/asst_1",
            "https://x.services.ai.azure.com",
            "",
            Err("the Agents API"),
        ),
    ];
    for (model, api_base, api_version, expected) in rows {
        let version = match api_version.is_empty() {
            true => String::new(),
            false => format!(r#", "api_version": "{api_version}""#),
        };
        let json = format!(
            r#"{{"model_list": [{{"model_name": "m", "litellm_params": {{"model": "azure_ai/{model}", "api_base": "{api_base}", "api_key": "k"{version}}}}}]}}"#
        );
        let config = compile_test(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let got = match config.router.route("m") {
            Ok(route) => {
                let endpoint = route.endpoint.expect("served");
                let path = crate::request::shaping::upstream_path(b"/v1/chat/completions", endpoint, model)
                    .map(|p| String::from_utf8_lossy(&p).into_owned());
                let header = endpoint.credentials.first().map_or("", |(name, _)| name);
                Ok((header, path.unwrap_or_else(|| "/v1/chat/completions".to_owned())))
            }
            Err(NoRoute::NotServed(skipped)) => Err(skipped.reason.clone()),
            Err(other) => panic!("{json}: {other:?}"),
        };
        match (got, expected) {
            (Ok((header, path)), Ok((want_header, want_path))) => {
                assert_eq!((header, path.as_str()), (*want_header, *want_path), "{json}")
            }
            (Err(reason), Err(fragment)) => assert!(reason.contains(fragment), "{json}: {reason}"),
            (got, _) => panic!("{json}: {got:?}"),
        }
    }
    // No api_base: LiteLLM's AZURE_AI_API_BASE, read as `os.environ/` is.
    let json = r#"{"model_list": [{"model_name": "m", "litellm_params": {"model": "azure_ai/mistral-large"}}]}"#;
    let config = compile_test(json).expect("compiles");
    assert_eq!(unset_variables(&config), ["AZURE_AI_API_BASE"]);
    let env = |var: &str| (var == "AZURE_AI_API_BASE").then(|| "https://y.services.ai.azure.com".to_owned());
    let config = compile(json.as_bytes(), &env).expect("compiles");
    let e = endpoints(&config);
    assert_eq!(
        (e[0].upstream.host.as_str(), e[0].base_path.as_str()),
        ("y.services.ai.azure.com", "/models")
    );
    assert!(e[0].credentials.is_empty(), "AZURE_AI_API_KEY is unset: no key");
}

/// `os.environ/NAME` in a credential is read as the same value in
/// `litellm_params` is: at run time by the filter, and noted where it is
/// written for a bootstrap that needs the address now.
#[test]
fn credential_values_from_the_environment_are_read_like_litellm_params() {
    let json = r#"{"model_list": [
      {"model_name": "a", "litellm_params": {"model": "azure/gpt-4o", "litellm_credential_name": "eu"}},
      {"model_name": "b", "litellm_params": {"model": "azure/gpt-4o", "litellm_credential_name": "eu", "api_base": "os.environ/OWN_BASE"}}],
     "credential_list": [{"credential_name": "eu", "credential_values": {"api_key": "os.environ/EU_KEY", "api_base": "os.environ/EU_BASE", "api_version": "os.environ/EU_VERSION"}}]}"#;
    let env = |var: &str| match var {
        "EU_KEY" => Some("eu-key".to_owned()),
        "EU_BASE" => Some("https://eu.openai.azure.com".to_owned()),
        "OWN_BASE" => Some("https://own.openai.azure.com".to_owned()),
        "EU_VERSION" => Some("2024-10-21".to_owned()),
        _ => None,
    };
    let config = compile(json.as_bytes(), &env).expect("compiles");
    let e = endpoints(&config);
    let got: Vec<(&str, Option<&str>, &Credentials)> = e
        .iter()
        .map(|e| (e.upstream.host.as_str(), e.api_version.as_deref(), &e.credentials))
        .collect();
    let key = vec![("api-key", Secret::new("eu-key".into()))];
    assert_eq!(
        got,
        [
            ("eu.openai.azure.com", Some("2024-10-21"), &key),
            ("own.openai.azure.com", Some("2024-10-21"), &key)
        ]
    );
    let addresses: Vec<(&str, &str)> = config
        .env_addresses
        .iter()
        .map(|a| (a.path.as_str(), a.variable.as_str()))
        .collect();
    assert_eq!(
        addresses,
        [
            ("credential_list[0].credential_values.api_base", "EU_BASE"),
            ("model_list[1].litellm_params.api_base", "OWN_BASE")
        ]
    );
}

/// LiteLLM's Anthropic `api_base` is the root (`https://api.anthropic.com`),
/// with `/v1/...` under it; one that already ends in `/v1` is kept.
#[test]
fn an_anthropic_api_base_is_the_root_of_v1() {
    let cases = [
        ("https://claude.example.com/", "/v1"),
        ("https://claude.example.com/proxy", "/proxy/v1"),
        ("https://claude.example.com/v1", "/v1"),
    ];
    for (api_base, base_path) in cases {
        let json = format!(
            r#"{{"model_list": [{{"model_name": "c", "litellm_params": {{"model": "anthropic/claude-x", "api_base": "{api_base}", "api_key": "k"}}}}]}}"#
        );
        let config = compile_test(&json).expect("compiles");
        assert_eq!(endpoints(&config)[0].base_path, base_path, "{api_base}");
    }
}

#[test]
fn litellm_settings_failover_keys_count_where_router_settings_is_silent() {
    let models = r#""model_list": [
      {"model_name": "a", "litellm_params": {"model": "openai/a", "api_key": "k"}},
      {"model_name": "b", "litellm_params": {"model": "openai/b", "api_key": "k"}},
      {"model_name": "c", "litellm_params": {"model": "openai/c", "api_key": "k"}}]"#;
    let only_litellm = format!(
        r#"{{{models}, "litellm_settings": {{"num_retries": 4, "request_timeout": 30, "allowed_fails": 1, "fallbacks": [{{"a": ["b"]}}], "context_window_fallbacks": [{{"a": ["c"]}}]}}}}"#
    );
    let config = compile_test(&only_litellm).expect("compiles");
    assert_eq!(config.failover.num_retries, 4);
    assert_eq!(config.failover.allowed_fails, 1);
    assert_eq!(config.router.route("b").expect("routes").timeouts.request, Some(30.0));
    assert_eq!(config.router.groups().len(), 1, "a falls back to b");
    assert!(warning_texts(&config)[0].contains("context_window_fallbacks"));
    let both = format!(
        r#"{{{models}, "litellm_settings": {{"num_retries": 4, "fallbacks": [{{"a": ["b"]}}]}}, "router_settings": {{"num_retries": 1, "fallbacks": [{{"b": ["c"]}}]}}}}"#
    );
    let config = compile_test(&both).expect("compiles");
    assert_eq!(config.failover.num_retries, 1, "router_settings wins");
    let groups: Vec<&str> = config.router.groups().iter().map(|g| g.model_name.as_str()).collect();
    assert_eq!(groups, ["b"]);
    let defaults = format!(r#"{{{models}, "litellm_settings": {{"default_fallbacks": ["c"]}}}}"#);
    let config = compile_test(&defaults).expect("compiles");
    let groups: Vec<&str> = config.router.groups().iter().map(|g| g.model_name.as_str()).collect();
    assert_eq!(groups, ["a", "b"], "every other name falls back to c");
}

#[test]
fn empty_sections_are_empty() {
    let json = r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}, "model_info": null}],
      "general_settings": null, "litellm_settings": null, "router_settings": null}"#;
    let config = compile_test(json).expect("compiles");
    assert!(config.master_key.is_none());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn a_provider_not_in_the_table_is_served_at_its_api_base_as_openai_compatible() {
    let json = r#"{"model_list": [
      {"model_name": "sf", "litellm_params": {"model": "siliconflow/Qwen/Qwen2.5-72B-Instruct", "api_key": "k"}},
      {"model_name": "newco", "litellm_params": {"model": "newco/m-1", "api_key": "k", "api_base": "https://api.newco.example/v1"}},
      {"model_name": "nobase", "litellm_params": {"model": "newco/m-1", "api_key": "k"}}]}"#;
    let config = compile_test(json).expect("compiles");
    let e = endpoints(&config);
    assert_eq!((e[0].cluster.as_str(), e[0].base_path.as_str()), ("siliconflow", "/v1"));
    assert_eq!(
        (
            e[1].provider.name.as_str(),
            e[1].upstream.host.as_str(),
            e[1].base_path.as_str()
        ),
        ("newco", "api.newco.example", "/v1")
    );
    assert_eq!(
        e[1].credentials,
        vec![("authorization", Secret::new("Bearer k".into()))]
    );
    let texts = warning_texts(&config);
    assert!(
        texts[0].starts_with("model_list[1].litellm_params.model: provider `newco` is not in"),
        "{texts:?}"
    );
    assert!(texts[1].contains("model `nobase` is not served"), "{texts:?}");
    assert_eq!(texts.len(), 2);
}

#[test]
fn limits_on_keys_and_teams() {
    let config = compile_test(
        r#"{"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}],
           "keys": [{"key_alias": "a", "key": "sk-a", "team_id": "t", "rpm_limit": 5, "model_rpm_limit": {"m": 1}},
                    {"key_alias": "b", "key": "sk-b", "max_budget": 1.5, "budget_duration": "30d"},
                    {"key_alias": "c", "key": "sk-c"}],
           "teams": [{"team_id": "t", "max_budget": 100}],
           "router_settings": {"limits_service_unavailable": {"budgets": "allow"}}}"#,
    );
    let Ok(config) = config else {
        panic!("compiles: {config:?}");
    };
    let budgets: Vec<(bool, bool)> = config
        .keys
        .keys
        .iter()
        .map(|k| (k.budgets.key, k.budgets.team))
        .collect();
    assert_eq!(budgets, [(false, true), (true, false), (false, false)]);
    assert!(config.rates_limited);
    assert_eq!(
        config.limits_unavailable,
        UnavailableLimits {
            rates_allow: true,
            budgets_allow: true
        }
    );
    let model_limits: Vec<(&str, ModelLimit)> = config.keys.keys[0]
        .model_limits
        .iter()
        .map(|(m, l)| (m.as_str(), *l))
        .collect();
    assert_eq!(
        model_limits,
        [(
            "m",
            ModelLimit {
                rpm: Some(1),
                tpm: None
            }
        )]
    );
    assert_eq!(config.keys.keys[0].limited_model("x", "m"), Some("m"));
    assert_eq!(config.keys.keys[0].limited_model("m", "other"), Some("m"));
    assert_eq!(config.keys.keys[0].limited_model("x", "y"), None);
    assert!(warning_texts(&config).is_empty(), "{:?}", warning_texts(&config));

    let refused = |json: &str| compile_test(json).err().map(|e| e.path);
    let with = |extra: &str| {
        format!(
            r#"{{"model_list": [{{"model_name": "m", "litellm_params": {{"model": "openai/m", "api_key": "k"}}}}], {extra}}}"#
        )
    };
    assert_eq!(
        refused(&with(r#""teams": [{"team_id": "t"}, {"team_id": "t"}]"#)),
        Some("teams[1].team_id".to_owned())
    );
    assert_eq!(
        refused(&with(r#""keys": [{"key": "sk-a", "budget_duration": "1d"}]"#)),
        Some("keys[0].budget_duration".to_owned())
    );
    assert!(refused(&with(
        r#""router_settings": {"limits_service_unavailable": {"rates": "maybe"}}"#
    ))
    .is_some());
    let no_rates = compile_test(&with(r#""keys": [{"key": "sk-a", "max_budget": 1}]"#));
    assert!(no_rates.is_ok_and(|c| !c.rates_limited));
}
