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
      timeout: 9
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

/// An Envoy counter or gauge that must exist (a misspelt name fails
/// rather than reading as 0).
fn envoy_stat(stack: &Stack, name: &str) -> u64 {
    stack.stat(name).unwrap_or_else(|| panic!("no {name} in Envoy's stats"))
}

/// Polls `done` until it holds; fails after ten seconds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "not in 10 s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sets (or with "", removes) Envoy runtime values in its admin layer.
fn runtime_modify(stack: &Stack, values: &[(&str, &str)]) {
    let query: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let path = format!("/runtime_modify?{}", query.join("&"));
    let response = client::request(stack.admin, "POST", &path, &[], b"").expect("admin answers");
    assert_eq!(response.status(), 200, "{path}: {}", response.text());
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
    let per_try_timeouts = || envoy_stat(&stack, "cluster.group_gpt-4o.upstream_rq_per_try_timeout");
    for fault in faults {
        let (openai_before, azure_before) = (u.openai.requests(), u.azure.requests());
        let timeouts_before = per_try_timeouts();
        u.openai.set_fault(Some(Fault::parse(fault).expect("fault")));
        let response = chat(&stack, "gpt-4o");
        assert_eq!(response.status(), 200, "{fault}: {}", response.text());
        assert_eq!(
            response.header("x-llm-router-deployment"),
            Some("gpt-4o-azure"),
            "{fault}"
        );
        assert!(response.header("x-llm-router-upstream-status").is_none());
        // The stall is cut by the attempt's limit (the deployment's
        // `timeout: 1`), not waited out; no other fault times out.
        assert_eq!(
            per_try_timeouts() - timeouts_before,
            u64::from(fault.starts_with("stall")),
            "{fault}"
        );
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
    // With a runtime layer for `runtime_modify` (the bootstrap has none).
    let bootstrap = format!(
        "layered_runtime: {{ layers: [{{ name: admin, admin_layer: {{}} }}] }}\n{}",
        generate(&u, "  allowed_fails: 2\n  cooldown_time: 3\n")
    );
    let stack = Stack::launch(&bootstrap, &envoy_env(), Vec::new(), 1);
    let ejections = |stat: &str| {
        envoy_stat(
            &stack,
            &format!("cluster.group_shared.outlier_detection.ejections_{stat}"),
        )
    };
    // Envoy reads the ejection time from its runtime when it checks for the
    // end of one: an hour there holds the ejection while it is checked.
    let hold = [
        "outlier_detection.base_ejection_time_ms",
        "outlier_detection.max_ejection_time_ms",
    ];
    runtime_modify(&stack, &hold.map(|key| (key, "3600000")));
    u.heavy.set_fault(Some(Fault::parse(fault).expect("fault")));
    // Two failures in a row take it out; every request still succeeds
    // (retried). The ejection comes after the second failure, so after the
    // request that got it was sent.
    let mut ejecting_request_sent = Instant::now();
    let mut sent = 0;
    while u.heavy.requests() < 2 {
        assert!(sent < 20, "{fault}: heavy got {} requests", u.heavy.requests());
        ejecting_request_sent = Instant::now();
        assert_eq!(chat(&stack, "shared").status(), 200, "{fault}");
        sent += 1;
    }
    u.heavy.set_fault(None);
    // Envoy ejects on its main thread, just after the failure.
    wait_until(&format!("{fault}: heavy ejected"), || ejections("enforced_total") == 1);
    for _ in 0..20 {
        assert_eq!(chat(&stack, "shared").status(), 200, "{fault}");
    }
    assert_eq!(u.heavy.requests(), 2, "{fault}: an ejected deployment gets nothing");
    assert_eq!(ejections("active"), 1, "{fault}: the ejection held");
    // Released, it ends at Envoy's next check (once a second) that finds
    // `cooldown_time` passed since the ejection, never sooner.
    runtime_modify(&stack, &hold.map(|key| (key, "")));
    wait_until(&format!("{fault}: heavy back"), || ejections("active") == 0);
    assert!(
        ejecting_request_sent.elapsed() >= Duration::from_secs(3),
        "{fault}: back {:?} after the ejection",
        ejecting_request_sent.elapsed()
    );
    // Back in the 3 : 1 rotation, it gets traffic again.
    for sent in 1.. {
        assert_eq!(chat(&stack, "shared").status(), 200, "{fault}");
        if u.heavy.requests() > 2 {
            break;
        }
        assert!(sent < 8, "{fault}: heavy gets nothing after its cooldown");
    }
    assert_eq!(ejections("enforced_total"), 1, "{fault}");
}

#[test]
fn timeouts_limit_an_attempt_and_a_stream_has_its_own() {
    let u = start_upstreams();
    let stack = start(&u, NO_COOLDOWN);
    let per_try_timeouts = || {
        let cluster = format!("http_127.0.0.1_{}", u.light.addr.port());
        envoy_stat(&stack, &format!("cluster.{cluster}.upstream_rq_per_try_timeout"))
    };
    // A stall between the two limits, seconds from each: a stream's limit
    // is its time to the first byte, `stream_timeout: 1`; unstreamed, the
    // same request has `timeout: 9`.
    u.light.set_fault(Some(Fault::parse("stall=3000").expect("fault")));
    let started = Instant::now();
    let request = Request::new("POST", "/v1/chat/completions")
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .body(r#"{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    let response = client::send(stack.listener, &request).expect("an answer");
    assert_eq!(response.status(), 504, "{}", response.text());
    assert_eq!(per_try_timeouts(), 1, "the attempt's limit ended it");
    // Envoy's timer cannot fire before the limit.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    // Unstreamed, it waits out the stall.
    let response = chat(&stack, "slow");
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(per_try_timeouts(), 1);
    // Envoy took the limit from the header and did not pass it on.
    let received = u.light.received();
    assert_eq!(received.len(), 2);
    assert!(received
        .iter()
        .all(|r| r.header("x-envoy-upstream-rq-per-try-timeout-ms").is_none()));
}
