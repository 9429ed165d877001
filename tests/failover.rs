//! Model groups in a real Envoy, from a LiteLLM config through
//! `llm-router-config --envoy`: weights, `order`, failover on 429, 5xx,
//! resets and timeouts to a provider with another credentials style,
//! cross-group `fallbacks`, cooldown, and what the client gets when every
//! attempt fails. Each mock checks the credentials it receives (a wrong
//! one is a 401, which is not retried), and the tests read back every
//! request each mock got.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mock_provider::{Fault, Mock, Provider, Received};

const KEY_OPENAI: &str = "sk-group-openai";
const KEY_AZURE: &str = "azure-group-key";
const KEY_CLAUDE: &str = "sk-ant-group";
const KEY_HEAVY: &str = "sk-heavy";
const KEY_LIGHT: &str = "sk-light";

struct Upstreams {
    openai: Mock,
    azure: Mock,
    claude: Mock,
    heavy: Mock,
    light: Mock,
}

fn start_upstreams() -> Upstreams {
    let start = |provider, key: &str| mock_provider::start(provider, "127.0.0.1:0", key).expect("mock starts");
    Upstreams {
        openai: start(Provider::OpenAi, KEY_OPENAI),
        azure: start(Provider::Azure, KEY_AZURE),
        claude: start(Provider::Anthropic, KEY_CLAUDE),
        heavy: start(Provider::OpenAi, KEY_HEAVY),
        light: start(Provider::OpenAi, KEY_LIGHT),
    }
}

/// `gpt-4o`: OpenAI first (`order: 1`), Azure next, then the `claude`
/// group; `shared`: two deployments weighted 3 : 1; `slow`: one
/// deployment with a `timeout` and a shorter `stream_timeout`; `solo`: one
/// deployment with a fallback.
fn litellm_config(u: &Upstreams, router_settings: &str) -> String {
    let port = |m: &Mock| m.addr.port();
    format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:{openai}/v1
      api_key: os.environ/KEY_OPENAI
      order: 1
      timeout: 1
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-eu
      api_base: http://127.0.0.1:{azure}
      api_version: "2024-10-21"
      api_key: os.environ/KEY_AZURE
      order: 2
    model_info:
      id: gpt-4o-azure
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: http://127.0.0.1:{claude}/v1
      api_key: os.environ/KEY_CLAUDE
  - model_name: shared
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{heavy}/v1
      api_key: os.environ/KEY_HEAVY
      weight: 3
  - model_name: shared
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{light}/v1
      api_key: os.environ/KEY_LIGHT
      weight: 1
  - model_name: slow
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{light}/v1
      api_key: os.environ/KEY_LIGHT
      timeout: 4
      stream_timeout: 1
  - model_name: solo
    litellm_params:
      model: openai/gpt-4.1
      api_base: http://127.0.0.1:{openai}/v1
      api_key: os.environ/KEY_OPENAI
router_settings:
  fallbacks: [{{gpt-4o: [claude]}}, {{solo: [claude]}}]
{router_settings}general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"#,
        openai = port(&u.openai),
        azure = port(&u.azure),
        claude = port(&u.claude),
        heavy = port(&u.heavy),
        light = port(&u.light),
    )
}

fn envoy_env() -> Vec<(&'static str, String)> {
    vec![
        ("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()),
        ("KEY_OPENAI", KEY_OPENAI.to_owned()),
        ("KEY_AZURE", KEY_AZURE.to_owned()),
        ("KEY_CLAUDE", KEY_CLAUDE.to_owned()),
        ("KEY_HEAVY", KEY_HEAVY.to_owned()),
        ("KEY_LIGHT", KEY_LIGHT.to_owned()),
    ]
}

fn generate(u: &Upstreams, router_settings: &str) -> String {
    generate_test_bootstrap(&litellm_config(u, router_settings), &[]).0
}

/// No cooldown in the way of the failover rows: a deployment is ejected
/// only after many failures in a row.
const NO_COOLDOWN: &str = "  allowed_fails: 1000\n";

fn start(u: &Upstreams, router_settings: &str) -> Stack {
    Stack::launch(&generate(u, router_settings), &envoy_env(), Vec::new(), 1)
}

fn chat(stack: &Stack, model: &str) -> Response {
    stack.chat(&format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#
    ))
}

fn clear(u: &Upstreams) {
    for mock in [&u.openai, &u.azure, &u.claude, &u.heavy, &u.light] {
        mock.set_fault(None);
    }
}

/// What a mock received since `before` requests.
fn since(mock: &Mock, before: usize) -> Vec<Received> {
    mock.received().split_off(before)
}

/// The request carries exactly this one credential header and value, and
/// no other credential (none of the client's).
fn assert_credentials(received: &Received, name: &str, value: &str) {
    for header in mock_provider::CREDENTIAL_HEADERS {
        let values = received.header_all(header);
        if *header == name {
            assert_eq!(values, [value], "{header} at {}", received.path);
        } else {
            assert!(
                values.is_empty(),
                "{header} must not reach {}: {values:?}",
                received.path
            );
        }
    }
}

fn body_model(received: &Received) -> String {
    let body: serde_json::Value = serde_json::from_slice(&received.body).expect("json body");
    body["model"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn the_generated_bootstrap_validates() {
    let u = start_upstreams();
    let env = envoy_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, output) = validate(&generate(&u, ""), &env);
    assert!(ok, "{output}");
}

#[test]
fn weights_share_the_traffic() {
    let u = start_upstreams();
    let stack = start(&u, "");
    let total = 400;
    for _ in 0..total {
        let response = chat(&stack, "shared");
        assert_eq!(response.status(), 200, "{}", response.text());
    }
    let (heavy, light) = (u.heavy.requests(), u.light.requests());
    assert_eq!(heavy + light, total);
    let share = heavy as f64 / total as f64;
    assert!((share - 0.75).abs() < 0.05, "weights 3 : 1 gave {heavy} : {light}");
    for received in u.heavy.received() {
        assert_credentials(&received, "authorization", &format!("Bearer {KEY_HEAVY}"));
    }
}

#[test]
fn order_is_strict_and_each_failure_fails_over_with_the_next_deployments_credentials() {
    let u = start_upstreams();
    let stack = start(&u, NO_COOLDOWN);
    // While the first order answers, it takes everything.
    for _ in 0..20 {
        let response = chat(&stack, "gpt-4o");
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("x-llm-router-deployment"), Some("gpt-4o#1"));
    }
    assert_eq!((u.openai.requests(), u.azure.requests()), (20, 0));

    let faults = ["429", "500", "503", "reset", "stall=6000"];
    for fault in faults {
        let (openai_before, azure_before) = (u.openai.requests(), u.azure.requests());
        u.openai.set_fault(Some(Fault::parse(fault).expect("fault")));
        let started = Instant::now();
        let response = chat(&stack, "gpt-4o");
        assert_eq!(response.status(), 200, "{fault}: {}", response.text());
        assert_eq!(
            response.header("x-llm-router-deployment"),
            Some("gpt-4o-azure"),
            "{fault}"
        );
        assert!(response.header("x-llm-router-upstream-status").is_none());
        if fault.starts_with("stall") {
            // The deployment's `timeout: 1` is the attempt's: far less than
            // the stall, with room for a loaded two-core host.
            assert!(
                started.elapsed() < Duration::from_millis(5000),
                "{fault}: {:?}",
                started.elapsed()
            );
        }
        let first = since(&u.openai, openai_before);
        assert_eq!(first.len(), 1, "{fault}");
        assert_eq!(first[0].path, "/v1/chat/completions");
        assert_eq!(body_model(&first[0]), "gpt-4o");
        assert_credentials(&first[0], "authorization", &format!("Bearer {KEY_OPENAI}"));
        let second = since(&u.azure, azure_before);
        assert_eq!(second.len(), 1, "{fault}");
        assert_eq!(
            second[0].path,
            "/openai/deployments/gpt-4o-eu/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            second[0].header("host"),
            Some(format!("127.0.0.1:{}", u.azure.addr.port()).as_str())
        );
        assert_credentials(&second[0], "api-key", KEY_AZURE);
        assert_eq!(body_model(&second[0]), "gpt-4o-eu");
        u.openai.set_fault(None);
    }
    // The access log names the deployment that answered: Azure's provider
    // and the model it was sent, not the group's first deployment's.
    let entries = stack.access_log_entries(20 + faults.len());
    for entry in entries.iter().skip(20) {
        assert_eq!(
            (&entry["provider"], &entry["upstream_model"], &entry["deployment"]),
            (&"azure".into(), &"gpt-4o-eu".into(), &"gpt-4o-azure".into()),
            "{entry}"
        );
    }
    // Both failed: the third attempt is the fallback group's, as Anthropic takes it.
    u.openai.set_fault(Some(Fault::parse("500").expect("fault")));
    u.azure.set_fault(Some(Fault::parse("429").expect("fault")));
    let response = chat(&stack, "gpt-4o");
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.header("x-llm-router-deployment"), Some("claude#1"));
    let received = u.claude.received().pop().expect("the fallback got it");
    assert_credentials(&received, "x-api-key", KEY_CLAUDE);
    assert_eq!(body_model(&received), "claude-sonnet-4-5");
    assert_eq!(received.path, "/v1/chat/completions");
    clear(&u);

    let lines = scrape_until(&stack, |lines| {
        lines
            .iter()
            .any(|l| l.starts_with(r#"llm_router_failovers_total{deployment="claude#1"} 1"#))
    });
    let has = |line: &str| lines.iter().any(|l| l == line);
    assert!(
        has(r#"llm_router_attempts_total{deployment="gpt-4o#1"} 26"#),
        "{lines:#?}"
    );
    assert!(
        has(r#"llm_router_attempt_failures_total{deployment="gpt-4o#1"} 6"#),
        "{lines:#?}"
    );
    assert!(
        has(r#"llm_router_failovers_total{deployment="gpt-4o-azure"} 6"#),
        "{lines:#?}"
    );
    assert!(
        has(r#"llm_router_attempt_failures_total{deployment="gpt-4o-azure"} 1"#),
        "{lines:#?}"
    );
}

#[test]
fn a_single_deployment_falls_back_to_another_group() {
    let u = start_upstreams();
    let stack = start(&u, NO_COOLDOWN);
    u.openai.set_fault(Some(Fault::parse("503").expect("fault")));
    let response = chat(&stack, "solo");
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(response.header("x-llm-router-deployment"), Some("claude#1"));
    let first = u.openai.received().pop().expect("solo tried first");
    assert_eq!(body_model(&first), "gpt-4.1");
    let received = u.claude.received().pop().expect("the fallback got it");
    assert_eq!(body_model(&received), "claude-sonnet-4-5");
    // Tokens count where the answer came from.
    let lines = scrape_until(&stack, |lines| {
        lines.iter().any(|l| l.contains("llm_router_requests_total"))
    });
    assert!(
        lines
            .iter()
            .any(|l| l == r#"llm_router_requests_total{route="claude",provider="anthropic"} 1"#),
        "{lines:#?}"
    );
}

#[test]
fn when_every_attempt_fails_the_client_gets_the_last_providers_answer() {
    let u = start_upstreams();
    let stack = start(&u, NO_COOLDOWN);
    for mock in [&u.openai, &u.azure, &u.claude] {
        mock.set_fault(Some(Fault::parse("429;retry-after=7").expect("fault")));
    }
    let response = chat(&stack, "gpt-4o");
    assert_eq!(response.status(), 429, "{}", response.text());
    assert_eq!(response.header("x-llm-router-deployment"), Some("claude#1"));
    assert!(response.header("x-llm-router-upstream-status").is_none());
    assert_eq!(response.header("retry-after"), Some("7"));
    // Anthropic's own error shape, as it sent it.
    assert_eq!(response.body_json()["type"], "error", "{}", response.text());
    assert_eq!(
        (u.openai.requests(), u.azure.requests(), u.claude.requests()),
        (1, 1, 1)
    );
    let entries = stack.access_log_entries(1);
    assert_eq!(entries[0]["attempts"], 3, "{:?}", entries[0]);
    assert_eq!(entries[0]["deployment"], "claude#1");
    // Left by the attempt that answered; route and provider are its too.
    assert_eq!(entries[0]["upstream_model"], "claude-sonnet-4-5");
    assert_eq!(
        (&entries[0]["route"], &entries[0]["provider"]),
        (&"claude".into(), &"anthropic".into())
    );
}

#[test]
fn a_stream_that_has_started_is_never_retried() {
    let u = start_upstreams();
    let stack = start(&u, NO_COOLDOWN);
    u.openai.set_fault(Some(Fault::parse("cut-after=2").expect("fault")));
    let request = Request::new("POST", "/v1/chat/completions")
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .body(r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    let response = client::send(stack.listener, &request).expect("a head");
    assert_eq!(response.status(), 200);
    assert!(!response.complete);
    assert_eq!(response.header("x-llm-router-deployment"), Some("gpt-4o#1"));
    assert_eq!(
        (u.openai.requests(), u.azure.requests(), u.claude.requests()),
        (1, 0, 0)
    );
}

#[test]
fn a_failing_deployment_cools_down_then_gets_traffic_again() {
    // A rate limit takes a deployment out as a 5xx does: the 429 crosses
    // Envoy as a 503, which outlier detection counts.
    for fault in ["429", "500"] {
        cooldown_after(fault);
    }
}

fn cooldown_after(fault: &str) {
    let u = start_upstreams();
    let stack = start(&u, "  allowed_fails: 2\n  cooldown_time: 3\n");
    u.heavy.set_fault(Some(Fault::parse(fault).expect("fault")));
    // Two failures in a row take it out; every request still succeeds (retried).
    let mut sent = 0;
    while u.heavy.requests() < 2 {
        assert_eq!(chat(&stack, "shared").status(), 200, "{fault}");
        sent += 1;
        assert!(sent < 20, "{fault}: heavy got {} requests", u.heavy.requests());
    }
    let ejected_at = Instant::now();
    u.heavy.set_fault(None);
    for _ in 0..20 {
        assert_eq!(chat(&stack, "shared").status(), 200, "{fault}");
    }
    assert!(
        ejected_at.elapsed() < Duration::from_secs(3),
        "too slow to check the cooldown"
    );
    assert_eq!(u.heavy.requests(), 2, "{fault}: an ejected deployment gets nothing");
    // Back after the cooldown (Envoy checks ejections once a second).
    let deadline = Instant::now() + Duration::from_secs(6);
    while u.heavy.requests() == 2 {
        assert!(Instant::now() < deadline, "{fault}: heavy never came back");
        assert_eq!(chat(&stack, "shared").status(), 200, "{fault}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ejected_at.elapsed() >= Duration::from_millis(2900),
        "{fault}: {:?}",
        ejected_at.elapsed()
    );
    let ejections = stack.admin_get("/stats?filter=cluster.group_shared.outlier_detection.ejections_enforced_total");
    assert!(
        ejections.text().contains("ejections_enforced_total: 1"),
        "{fault}: {}",
        ejections.text()
    );
}

#[test]
fn timeouts_limit_an_attempt_and_a_stream_has_its_own() {
    let u = start_upstreams();
    let stack = start(&u, NO_COOLDOWN);
    u.light.set_fault(Some(Fault::parse("stall=3000").expect("fault")));
    // A stream's limit is its time to the first byte: `stream_timeout: 1`.
    let started = Instant::now();
    let request = Request::new("POST", "/v1/chat/completions")
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .body(r#"{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    let response = client::send(stack.listener, &request).expect("an answer");
    let waited = started.elapsed();
    assert_eq!(response.status(), 504, "{}", response.text());
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(2800)).contains(&waited),
        "{waited:?}"
    );
    // The same request unstreamed has `timeout: 4`, and the answer in 3 s.
    let started = Instant::now();
    let response = chat(&stack, "slow");
    assert_eq!(response.status(), 200, "{}", response.text());
    assert!(started.elapsed() >= Duration::from_millis(3000));
    // Envoy took the limit from the header and did not pass it on.
    let received = u.light.received();
    assert_eq!(received.len(), 2);
    assert!(received
        .iter()
        .all(|r| r.header("x-envoy-upstream-rq-per-try-timeout-ms").is_none()));
}
