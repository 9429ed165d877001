//! Virtual keys in a real Envoy, from a LiteLLM config with a `keys:`
//! section through `llm-router-config --envoy`: each key reaches only its
//! models (nothing reaches a provider for a refused one), in each header
//! form; `/v1/models` per key; the access-log line and the per-key counters.

mod common;

use common::*;
use mock_provider::{Mock, Provider};

const TEAM_A_KEY: &str = "sk-team-a-0123456789";
const GROQ_ONLY: &str = "sk-groq-only-9876543210";

struct Upstreams {
    openai: Mock,
    anthropic: Mock,
}

fn start_upstreams() -> Upstreams {
    let start = |provider| mock_provider::start(provider, "127.0.0.1:0", &provider_key(provider)).expect("mock starts");
    Upstreams {
        openai: start(Provider::OpenAi),
        anthropic: start(Provider::Anthropic),
    }
}

fn config(u: &Upstreams) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, api_base: "http://127.0.0.1:{openai}/v1"}}
  - model_name: "anthropic/*"
    litellm_params: {{model: "anthropic/*", api_key: os.environ/ANTHROPIC_API_KEY, api_base: "http://127.0.0.1:{anthropic}/v1"}}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
keys:
  - key_alias: team-a-dev
    key: os.environ/TEAM_A_KEY
    models: ["anthropic/*"]
    team_id: team-a
    user_id: alice
    metadata: {{cost_center: "42"}}
  - key_alias: groq-only
    token: {groq_only}
    models: ["groq/*"]
  - key_alias: revoked
    key: sk-revoked-key-000
    blocked: true
"#,
        openai = u.openai.addr.port(),
        anthropic = u.anthropic.addr.port(),
        groq_only = hex_sha256(GROQ_ONLY),
    )
}

fn hex_sha256(key: &str) -> String {
    llm_router::config::hash_of(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()),
        ("TEAM_A_KEY", TEAM_A_KEY.to_owned()),
        ("OPENAI_API_KEY", provider_key(Provider::OpenAi)),
        ("ANTHROPIC_API_KEY", provider_key(Provider::Anthropic)),
    ]
}

fn chat(stack: &Stack, header: (&str, String), model: &str) -> Response {
    let request = Request::new("POST", "/v1/chat/completions")
        .header(header.0, header.1)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#
        ));
    send(stack.listener, &request)
}

fn bearer(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}

#[test]
fn each_key_reaches_its_models_only_and_is_attributed() {
    let u = start_upstreams();
    let (bootstrap, _) = generate_test_bootstrap(&config(&u), &[("TEAM_A_KEY", "set-at-run-time")]);
    assert!(!bootstrap.contains(TEAM_A_KEY), "a plain key in Envoy's configuration");
    let stack = Stack::launch(&bootstrap, &env(), Vec::new(), 1);

    // Allowed, in both header forms: the provider gets its own key only.
    let allowed = chat(&stack, bearer(TEAM_A_KEY), "anthropic/claude-3-5-haiku");
    assert_eq!(allowed.status(), 200, "{}", allowed.text());
    let allowed = chat(
        &stack,
        ("x-api-key", TEAM_A_KEY.to_owned()),
        "anthropic/claude-3-5-haiku",
    );
    assert_eq!(allowed.status(), 200, "{}", allowed.text());
    assert_eq!(u.anthropic.requests(), 2);
    let received = u.anthropic.received();
    assert!(
        received.iter().all(|r| !format!("{r:?}").contains(TEAM_A_KEY)),
        "the client's key went upstream"
    );

    // Refused before anything is sent.
    let denied = chat(&stack, bearer(TEAM_A_KEY), "gpt-4o");
    assert_eq!(
        error_code(&denied),
        (401, "key_model_access_denied".to_owned()),
        "{}",
        denied.text()
    );
    assert!(denied.text().contains("team-a-dev") && !denied.text().contains(TEAM_A_KEY));
    let blocked = chat(&stack, bearer("sk-revoked-key-000"), "gpt-4o");
    assert_eq!(error_code(&blocked), (401, "invalid_api_key".to_owned()));
    assert!(blocked.text().contains("blocked"), "{}", blocked.text());
    let unknown = chat(&stack, bearer("sk-nobody"), "gpt-4o");
    assert_eq!(error_code(&unknown), (401, "invalid_api_key".to_owned()));
    // A key imported by its hash; its models are served nowhere here.
    let groq = chat(&stack, bearer(GROQ_ONLY), "gpt-4o");
    assert_eq!(error_code(&groq), (401, "key_model_access_denied".to_owned()));
    // The master key calls everything.
    assert_eq!(chat(&stack, bearer(MASTER_KEY), "gpt-4o").status(), 200);
    assert_eq!((u.openai.requests(), u.anthropic.requests()), (1, 2));

    // The model list per key.
    let models = |key: &str| -> Vec<String> {
        let request = Request::new("GET", "/v1/models").header("authorization", format!("Bearer {key}"));
        let body = send(stack.listener, &request).body_json();
        body["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(models(TEAM_A_KEY), ["anthropic/*"]);
    assert_eq!(models(MASTER_KEY), ["gpt-4o", "anthropic/*"]);

    // The access log names the key and its team; per-key counters carry
    // only those two labels.
    let entries = stack.access_log_entries(9);
    let keyed: Vec<_> = entries
        .iter()
        .filter(|e| e["status"] == 200 && e["key_alias"] == "team-a-dev")
        .collect();
    assert_eq!(keyed.len(), 2, "{entries:?}");
    assert_eq!(keyed[0]["team_id"], "team-a");
    let lines = scrape_until(&stack, |lines| {
        lines.iter().any(|l| l.starts_with("llm_router_key_tokens_total"))
    });
    let requests = r#"llm_router_key_requests_total{key="team-a-dev",team="team-a"} 2"#;
    assert!(lines.iter().any(|l| l == requests), "{}", lines.join("\n"));
    // Two responses of the mock's usage (18 input and 6 output tokens each).
    let tokens = |kind: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with("llm_router_key_tokens_total{"))
            .filter(|l| l.contains(r#"key="team-a-dev""#) && l.contains(r#"team="team-a""#))
            .find(|l| l.contains(&format!(r#"type="{kind}""#)))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    assert_eq!(
        (tokens("input"), tokens("output")),
        (Some(36), Some(12)),
        "{}",
        lines.join("\n")
    );
}

/// A config with one virtual key, `alias: key`, for the rotation test.
fn one_key_config(u: &Upstreams, alias: &str, key: &str) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, api_base: "http://127.0.0.1:{openai}/v1"}}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
keys:
  - {{key_alias: {alias}, token: {token}}}
"#,
        openai = u.openai.addr.port(),
        token = hex_sha256(key),
    )
}

#[test]
fn keys_rotate_without_restarting_envoy() {
    let u = start_upstreams();
    let out = scratch_dir();
    // As a user runs it: the same command on the same file, edited.
    let config_path = out.join("config.yaml");
    let generate = |config: &str| {
        std::fs::write(&config_path, config).expect("write config");
        let run = std::process::Command::new(generator_binary())
            .args(test_bootstrap_args())
            .arg("--out")
            .arg(&out)
            .arg(&config_path)
            .env_clear()
            .output()
            .expect("the generator runs");
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(run.status.success() && run.stdout.is_empty(), "{stderr}");
        stderr
    };
    generate(&one_key_config(&u, "old-key", "sk-old-0000"));
    let bootstrap = std::fs::read_to_string(out.join("envoy.yaml")).expect("envoy.yaml");
    assert!(bootstrap.contains("config_discovery"), "{bootstrap}");
    let stack = Stack::launch(&bootstrap, &env(), Vec::new(), 2);
    let pid = stack.pid();
    assert_eq!(chat(&stack, bearer("sk-old-0000"), "gpt-4o").status(), 200);
    assert_eq!(chat(&stack, bearer("sk-new-1111"), "gpt-4o").status(), 401);

    // Requests keep flowing during the swap; none may fail.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = stack.listener;
    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && statuses.len() < 5_000 {
                let request = Request::new("POST", "/v1/chat/completions")
                    .header("authorization", format!("Bearer {MASTER_KEY}"))
                    .header("content-type", "application/json")
                    .body(r#"{"model":"gpt-4o","messages":[]}"#);
                statuses.push(send(listener, &request).status());
            }
            statuses
        })
    };
    let stderr = generate(&one_key_config(&u, "new-key", "sk-new-1111"));
    assert!(
        !stderr.contains("restart Envoy"),
        "only the filter's configuration changed: {stderr}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while chat(&stack, bearer("sk-new-1111"), "gpt-4o").status() != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new key never worked:\n{}",
            stack.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let refused = chat(&stack, bearer("sk-old-0000"), "gpt-4o");
    assert_eq!(error_code(&refused), (401, "invalid_api_key".to_owned()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = traffic.join().expect("traffic");
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|&s| s == 200),
        "a request failed during the swap: {statuses:?}"
    );
    assert_eq!(stack.pid(), pid);
    let reloads = stack
        .admin_get("/stats?filter=extension_config_discovery.*config_reload$")
        .text();
    assert!(
        reloads.lines().any(|l| l.ends_with(": 1") || l.ends_with(": 2")),
        "{reloads}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
