//! Limits and budgets in a real Envoy: `llm-router-config --envoy` wires
//! Envoy's rate-limit filters to `llm-router-limits`, which reads the same
//! config. A key over its rpm, tpm or budget gets a JSON 429 saying which
//! limit, whose, and when it resets; tokens and cost are charged when the
//! stream is done (JSON and streamed replies); two Envoys with their own
//! services share one limit through Redis; the service down, or its Redis
//! down, fails open or closed as configured; a limit changed in the file applies without
//! restarting Envoy.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mock_provider::{Mock, Provider};

const RPM_KEY: &str = "sk-limit-rpm-0123456789";
const TPM_KEY: &str = "sk-limit-tpm-0123456789";
const STREAM_KEY: &str = "sk-limit-stream-0123456789";
const BUDGET_KEY: &str = "sk-limit-budget-0123456789";
const FREE_KEY: &str = "sk-limit-none-0123456789";
const MODEL_KEY: &str = "sk-limit-model-0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls until something accepts connections on `port`.
fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited ({status}): {}", fs::read_to_string(log).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "nothing on port {port} in 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process stopped on drop.
struct Process {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut command: Command, port: u16, log: PathBuf) -> Process {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    wait_for_port(port, &mut child, &log);
    Process { child, port, log }
}

/// `llm-router-limits`, as `make e2e` builds it.
fn limits_service(config: &Path, redis: Option<&Process>) -> Process {
    let binary = root().join("target/debug/llm-router-limits");
    assert!(binary.exists(), "{} is missing: run `make test`", binary.display());
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    if let Some(redis) = redis {
        command.args(["--redis", &format!("redis://127.0.0.1:{}", redis.port)]);
    }
    spawn(command, port, config.with_extension(format!("{port}.log")))
}

/// Debian's `redis-server`, on a free port, keeping nothing on disk.
fn redis(dir: &Path) -> Process {
    redis_on(dir, free_port())
}

fn redis_on(dir: &Path, port: u16) -> Process {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    spawn(command, port, dir.join("redis.log"))
}

fn config(openai: &Mock, rpm_limit: u32, unavailable: &str) -> String {
    format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      api_base: "http://127.0.0.1:{port}/v1"
      # A cent per token: any answer costs more than the budget below.
      input_cost_per_token: 0.01
      output_cost_per_token: 0.01
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
router_settings:
  limits_service_unavailable: {unavailable}
keys:
  - {{key_alias: rpm-key, key: {RPM_KEY}, rpm_limit: {rpm_limit}}}
  - {{key_alias: tpm-key, key: {TPM_KEY}, tpm_limit: 1}}
  - {{key_alias: stream-key, key: {STREAM_KEY}, team_id: streamers}}
  - {{key_alias: budget-key, key: {BUDGET_KEY}, max_budget: 0.05, budget_duration: 1d}}
  - {{key_alias: free-key, key: {FREE_KEY}}}
  - {{key_alias: model-key, key: {MODEL_KEY}, model_rpm_limit: {{gpt-4o: 1}}}}
teams:
  - {{team_id: streamers, tpm_limit: 1}}
"#,
        port = openai.addr.port(),
    )
}

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()),
        ("OPENAI_API_KEY", provider_key(Provider::OpenAi)),
    ]
}

fn openai() -> Mock {
    let key = provider_key(Provider::OpenAi);
    mock_provider::start(Provider::OpenAi, "127.0.0.1:0", &key).expect("mock starts")
}

/// How long the generated bootstrap lets a rate-limit call take.
const RATE_LIMIT_TIMEOUT: &str = "timeout: 0.5s";

/// Envoy from the generated bootstrap, its rate-limit service at `port`.
fn envoy(config_text: &str, ratelimit_port: u16) -> Stack {
    let mut args = test_bootstrap_args();
    args.extend(["--ratelimit".to_owned(), format!("127.0.0.1:{ratelimit_port}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, bootstrap, stderr) = run_generator(&args, config_text, &[]);
    assert!(ok, "{stderr}");
    assert!(
        bootstrap.contains("llm-router-rates") && bootstrap.contains("llm-router-budgets"),
        "{bootstrap}"
    );
    // The counts are what is tested here, not how long Envoy waits for them:
    // a test host loaded with other tests can take longer than the
    // generator's 0.5 s per call, and a late check would fail open.
    assert_eq!(bootstrap.matches(RATE_LIMIT_TIMEOUT).count(), 2, "{bootstrap}");
    let bootstrap = bootstrap.replace(RATE_LIMIT_TIMEOUT, "timeout: 10s");
    Stack::launch(&bootstrap, &env(), Vec::new(), 1)
}

fn chat(stack: &Stack, key: &str, stream: bool) -> Response {
    let request = Request::new("POST", "/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"model":"gpt-4o","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
        ));
    send(stack.listener, &request)
}

/// Envoy's stat `cluster.llm_router_limits.<name>` (0 before the first call).
fn service_stat(stack: &Stack, name: &str) -> u64 {
    stack.stat(&format!("cluster.llm_router_limits.{name}")).unwrap_or(0)
}

/// Waits until Envoy has no call to the rate-limit service in flight and
/// has finished `at_least` in all; returns how many it has finished. (An
/// earlier request's end-of-stream charge may still be on its way when the
/// next request starts.)
fn service_settled(stack: &Stack, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let completed = service_stat(stack, "upstream_rq_completed");
        if completed >= at_least && service_stat(stack, "upstream_rq_active") == 0 {
            return completed;
        }
        assert!(
            Instant::now() < deadline,
            "the rate-limit service's calls never settled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A request that must pass, and its end-of-stream charge counted by the
/// service before the next request: `calls` is how many calls it makes (a
/// check and a charge per rate-limit filter that has a descriptor for it).
fn passes_and_is_charged(stack: &Stack, key: &str, stream: bool, calls: u64) -> Response {
    let before = service_settled(stack, 0);
    let response = chat(stack, key, stream);
    assert_eq!(response.status(), 200, "{}", response.text());
    service_settled(stack, before + calls);
    response
}

fn refused(response: &Response, limit: &str, whose: &str) {
    assert_eq!(
        error_code(response),
        (429, "rate_limit_exceeded".to_owned()),
        "{}",
        response.text()
    );
    let message = response.body_json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.starts_with(&format!("{limit} exceeded for {whose}: ")) && message.contains("resets in "),
        "{message}"
    );
    let retry_after: u64 = response
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no retry-after: {}", response.text()));
    assert!(retry_after >= 1, "{retry_after}");
}

#[test]
fn requests_tokens_and_budgets_are_refused_past_their_limits() {
    let openai = openai();
    let dir = scratch_dir();
    let config_path = dir.join("config.yaml");
    let text = config(&openai, 2, "{}");
    fs::write(&config_path, &text).expect("config");
    let service = limits_service(&config_path, None);
    let stack = envoy(&text, service.port);

    // rpm: two pass (with Envoy's x-ratelimit headers), the third is refused
    // before it reaches the provider.
    let first = chat(&stack, RPM_KEY, false);
    assert_eq!(first.status(), 200, "{}", first.text());
    assert!(first.header("x-ratelimit-limit").is_some(), "{:?}", first.text());
    assert_eq!(chat(&stack, RPM_KEY, false).status(), 200);
    let sent = openai.requests();
    let third = chat(&stack, RPM_KEY, false);
    refused(&third, "request limit", "key `rpm-key`");
    assert!(third.text().contains("2 requests per minute"), "{}", third.text());
    assert_eq!(openai.requests(), sent, "a refused request reached the provider");

    // tpm 1: the first request passes (nothing used yet); its tokens,
    // charged when its stream is done, refuse the next.
    passes_and_is_charged(&stack, TPM_KEY, false, 2);
    refused(&chat(&stack, TPM_KEY, false), "token limit", "key `tpm-key`");
    // Streamed, against the key's team: the usage chunk is charged.
    let streamed = passes_and_is_charged(&stack, STREAM_KEY, true, 2);
    assert!(streamed.text().contains("data: [DONE]"), "{}", streamed.text());
    refused(&chat(&stack, STREAM_KEY, true), "token limit", "team `streamers`");

    // Budget $0.05 at a cent a token: one answer spends it.
    passes_and_is_charged(&stack, BUDGET_KEY, false, 4);
    let over_budget = chat(&stack, BUDGET_KEY, false);
    refused(&over_budget, "budget", "key `budget-key`");
    assert!(
        over_budget.text().contains("a budget of $0.050000 per day"),
        "{}",
        over_budget.text()
    );

    // A key's per-model limit (model_rpm_limit).
    assert_eq!(chat(&stack, MODEL_KEY, false).status(), 200);
    let per_model = chat(&stack, MODEL_KEY, false);
    refused(&per_model, "request limit", "key `model-key` on model `gpt-4o`");

    // No limit, and the master key: never refused.
    for _ in 0..4 {
        assert_eq!(chat(&stack, FREE_KEY, false).status(), 200);
        assert_eq!(chat(&stack, MASTER_KEY, false).status(), 200);
    }

    // The cost is in the access log and the spend metric; a refused
    // request charged nothing, as a number (Envoy warns of any other).
    let entries = stack.access_log_entries(19);
    let budget_lines: Vec<_> = entries.iter().filter(|e| e["key_alias"] == "budget-key").collect();
    assert_eq!(budget_lines.len(), 2, "{entries:?}");
    let cost: u64 = budget_lines[0]["cost_micro_usd"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no cost: {:?}", budget_lines[0]));
    assert!(cost > 50_000, "{cost}");
    assert_eq!(budget_lines[1]["status"], 429);
    assert_eq!(budget_lines[1]["cost_micro_usd"], "0");
    let spend = format!(r#"llm_router_spend_micro_usd_total{{key="budget-key",team="none"}} {cost}"#);
    let lines = scrape_until(&stack, |lines| lines.iter().any(|l| l == &spend));
    assert!(lines.iter().any(|l| l == &spend));
    let log = stack.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("][warning][") || l.contains("][error]["))
        .filter(|l| !l.contains("global_downstream_max_connections"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_limit_changed_in_the_file_applies_without_restarting_envoy() {
    let openai = openai();
    let dir = scratch_dir();
    let config_path = dir.join("config.yaml");
    let text = config(&openai, 1, "{}");
    fs::write(&config_path, &text).expect("config");
    let service = limits_service(&config_path, None);
    let stack = envoy(&text, service.port);
    let pid = stack.pid();
    assert_eq!(chat(&stack, RPM_KEY, false).status(), 200);
    refused(&chat(&stack, RPM_KEY, false), "request limit", "key `rpm-key`");

    // Raised to 3 in the file: the count so far (1) stays, two more pass.
    let raised = dir.join("config.yaml.new");
    fs::write(&raised, config(&openai, 3, "{}")).expect("config");
    fs::rename(&raised, &config_path).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = chat(&stack, RPM_KEY, false);
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new limit never applied: {}",
            fs::read_to_string(&service.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(chat(&stack, RPM_KEY, false).status(), 200);
    refused(&chat(&stack, RPM_KEY, false), "request limit", "key `rpm-key`");
    assert_eq!(stack.pid(), pid);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn two_envoys_with_their_own_services_share_one_limit_through_redis() {
    let openai = openai();
    let dir = scratch_dir();
    let redis = redis(&dir);
    let config_path = dir.join("config.yaml");
    let text = config(&openai, 3, "{}");
    fs::write(&config_path, &text).expect("config");
    let (service_a, service_b) = (
        limits_service(&config_path, Some(&redis)),
        limits_service(&config_path, Some(&redis)),
    );
    let (a, b) = (envoy(&text, service_a.port), envoy(&text, service_b.port));
    // Three in all, across both.
    assert_eq!(chat(&a, RPM_KEY, false).status(), 200);
    assert_eq!(chat(&b, RPM_KEY, false).status(), 200);
    assert_eq!(chat(&a, RPM_KEY, false).status(), 200);
    refused(&chat(&b, RPM_KEY, false), "request limit", "key `rpm-key`");
    refused(&chat(&a, RPM_KEY, false), "request limit", "key `rpm-key`");
    // Tokens charged through one Envoy refuse the key on the other.
    passes_and_is_charged(&a, TPM_KEY, false, 2);
    refused(&chat(&b, TPM_KEY, false), "token limit", "key `tpm-key`");
    assert_eq!(openai.requests(), 4);
    let _ = fs::remove_dir_all(&dir);
}

/// Envoy's defaults when the limits cannot be counted: an rpm-limited key
/// passes (again and again), a budgeted key gets a JSON 503.
fn rates_open_budgets_closed(stack: &Stack) {
    for _ in 0..3 {
        assert_eq!(chat(stack, RPM_KEY, false).status(), 200);
    }
    let budget = chat(stack, BUDGET_KEY, false);
    assert_eq!(
        error_code(&budget),
        (503, "limits_unavailable".to_owned()),
        "{}",
        budget.text()
    );
}

#[test]
fn with_redis_down_rates_fail_open_and_budgets_closed_until_it_is_back() {
    let openai = openai();
    let dir = scratch_dir();
    let mut redis = redis(&dir);
    let redis_port = redis.port;
    let config_path = dir.join("config.yaml");
    let text = config(&openai, 1, "{}");
    fs::write(&config_path, &text).expect("config");
    let service = limits_service(&config_path, Some(&redis));
    let stack = envoy(&text, service.port);
    assert_eq!(chat(&stack, RPM_KEY, false).status(), 200);
    refused(&chat(&stack, RPM_KEY, false), "request limit", "key `rpm-key`");
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    // The service answers, but cannot count: Envoy applies the defaults.
    rates_open_budgets_closed(&stack);
    // Redis back, empty: the service reconnects and counts from 0 again.
    let _redis = redis_on(&dir, redis_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while chat(&stack, BUDGET_KEY, false).status() != 200 {
        assert!(Instant::now() < deadline, "not counting again in 10 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(chat(&stack, RPM_KEY, false).status(), 200);
    refused(&chat(&stack, RPM_KEY, false), "request limit", "key `rpm-key`");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn with_the_service_down_rates_fail_open_and_budgets_closed_unless_configured() {
    let openai = openai();
    let nothing_there = free_port();

    // The defaults: an rpm-limited key passes, a budgeted key is refused
    // with a JSON 503; a key with no budget does not wait on the budget
    // service.
    let stack = envoy(&config(&openai, 1, "{}"), nothing_there);
    rates_open_budgets_closed(&stack);
    assert_eq!(chat(&stack, FREE_KEY, false).status(), 200);
    drop(stack);

    // Turned around in router_settings. Every keyed request is checked for
    // requests and tokens (the service answers OK for a key with no such
    // limit), so with `rates: deny` every keyed request waits on it.
    let stack = envoy(&config(&openai, 1, "{rates: deny}"), nothing_there);
    for key in [RPM_KEY, FREE_KEY] {
        let response = chat(&stack, key, false);
        assert_eq!(
            error_code(&response),
            (503, "limits_unavailable".to_owned()),
            "{}",
            response.text()
        );
    }
    assert_eq!(chat(&stack, MASTER_KEY, false).status(), 200);
    drop(stack);
    let stack = envoy(&config(&openai, 1, "{budgets: allow}"), nothing_there);
    assert_eq!(chat(&stack, BUDGET_KEY, false).status(), 200);
}
