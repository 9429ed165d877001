//! Runs the shipped `envoy/envoy.yaml` in a real Envoy with the built filter,
//! on free ports, against in-process mock providers.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use mock_provider::client::{self, Request, Response};
use mock_provider::{fingerprint, Mock, Provider};

pub const MASTER_KEY: &str = "sk-e2e-master-0f9c2d";

/// The keys the mocks expect, one per provider.
pub fn provider_key(provider: Provider) -> String {
    format!("{}-e2e-key", provider.name())
}

pub fn key_fingerprint(provider: Provider) -> String {
    fingerprint(&provider_key(provider))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// llm-router-config, as `make e2e` builds it.
pub fn generator_binary() -> PathBuf {
    let generator = root().join("target/debug/llm-router-config");
    assert!(
        generator.exists(),
        "{} is missing: run `make test` (it builds the generator first)",
        generator.display()
    );
    generator
}

/// `llm-router-config ARGS` on a LiteLLM config given as text: (success,
/// standard output, standard error).
pub fn run_generator(args: &[&str], litellm_yaml: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = scratch_dir();
    let path = dir.join("config.yaml");
    fs::write(&path, litellm_yaml).expect("write config");
    let out = Command::new(generator_binary())
        .args(args)
        .arg(&path)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the generator runs");
    let _ = fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The generator's arguments for a test bootstrap: the listener and admin
/// on port 0, the built filter.
pub fn test_bootstrap_args() -> Vec<String> {
    let wasm = wasm_path().to_str().expect("utf-8 path").to_owned();
    [
        "--envoy",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--wasm",
        &wasm,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `llm-router-config --envoy` for a test ([`test_bootstrap_args`]).
/// (bootstrap, standard error); fails if it fails.
pub fn generate_test_bootstrap(litellm_yaml: &str, env: &[(&str, &str)]) -> (String, String) {
    let args = test_bootstrap_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, bootstrap, stderr) = run_generator(&args, litellm_yaml, env);
    assert!(ok, "{stderr}");
    (bootstrap, stderr)
}

pub fn envoy_binary() -> PathBuf {
    std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/envoy"))
}

pub fn wasm_path() -> PathBuf {
    let wasm = root().join("target/wasm32-wasip1/release/llm_router.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: run `make test` (it builds the filter first)",
        wasm.display()
    );
    wasm
}

/// envoy/envoy.yaml, read into a value.
fn shipped_envoy_yaml() -> serde_json::Value {
    let text = fs::read_to_string(root().join("envoy/envoy.yaml")).expect("envoy/envoy.yaml");
    let document = yaml_rust2::YamlLoader::load_from_str(&text).expect("envoy/envoy.yaml is YAML");
    json_of(document.into_iter().next().expect("envoy/envoy.yaml has a document"))
}

/// The Wasm filter's configuration in a bootstrap.
fn wasm_filter_config(envoy: &mut serde_json::Value) -> &mut serde_json::Value {
    let listener = &mut envoy["static_resources"]["listeners"][0];
    &mut listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]["typed_config"]["config"]
}

/// The plugin configuration shipped in envoy/envoy.yaml.
pub fn shipped_plugin_config() -> String {
    let mut envoy = shipped_envoy_yaml();
    let value = &wasm_filter_config(&mut envoy)["configuration"]["value"];
    let text = value.as_str().expect("envoy/envoy.yaml has a plugin configuration");
    text.lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

/// `envoy/envoy.yaml` with free ports, the built filter, these mocks and this
/// plugin configuration.
pub fn render_envoy_yaml(plugin_config: &str, mocks: &[(Provider, SocketAddr)]) -> String {
    render_envoy_yaml_with_buffer(plugin_config, mocks, SHIPPED_BUFFER_LIMIT)
}

/// The listener buffer limit of the shipped envoy/envoy.yaml: the default
/// `max_body_bytes` plus the margin the filter needs to answer first.
pub const SHIPPED_BUFFER_LIMIT: usize =
    llm_router::config::DEFAULT_MAX_BODY_BYTES + llm_router::contract::ENVOY_BUFFER_MARGIN;

fn render_envoy_yaml_with_buffer(plugin_config: &str, mocks: &[(Provider, SocketAddr)], buffer_limit: usize) -> String {
    use serde_json::json;
    let mut envoy = shipped_envoy_yaml();
    // Histograms reach /stats once per flush: every second, not every five.
    envoy["stats_flush_interval"] = json!("1s");
    envoy["admin"]["address"]["socket_address"]["port_value"] = json!(0);
    let listener = &mut envoy["static_resources"]["listeners"][0];
    listener["address"]["socket_address"]["port_value"] = json!(0);
    listener["per_connection_buffer_limit_bytes"] = json!(buffer_limit);
    let wasm = wasm_filter_config(&mut envoy);
    wasm["vm_config"]["code"]["local"]["filename"] = json!(wasm_path().display().to_string());
    wasm["configuration"]["value"] = json!(plugin_config);
    let clusters = envoy["static_resources"]["clusters"].as_array_mut().expect("clusters");
    for (provider, addr) in mocks {
        let (_, shipped) = mock_provider::DEFAULT_LISTEN
            .iter()
            .find(|(name, _)| *name == provider.name())
            .unwrap_or_else(|| panic!("no mock address for {}", provider.name()));
        let endpoint = clusters
            .iter_mut()
            .map(|c| &mut c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"])
            .find(|e| e["hostname"] == *shipped)
            .unwrap_or_else(|| panic!("envoy/envoy.yaml has no cluster for {shipped}"));
        endpoint["address"]["socket_address"]["port_value"] = json!(addr.port());
        endpoint["hostname"] = json!(addr.to_string());
    }
    // JSON is YAML.
    envoy.to_string()
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "llm-router-e2e-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::SeqCst)
    ));
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// How long Envoy may take to be ready: V8 compiles the filter's module
/// while the listener loads, which took 15 s on a two-core host busy with
/// builds and a soak (under a second when idle).
pub const START_DEADLINE: Duration = Duration::from_secs(45);

/// Envoy with the filter, its mocks, and where to reach them. Stopped on drop.
pub struct Stack {
    child: Child,
    pub listener: SocketAddr,
    pub admin: SocketAddr,
    pub mocks: Vec<(Provider, Mock)>,
    pub log: PathBuf,
    /// Envoy's standard output: the access log of the shipped configs.
    pub access_log: PathBuf,
    dir: PathBuf,
}

/// How to start a [`Stack`].
pub struct StackOptions<'a> {
    pub plugin_config: String,
    /// Variables visible to the Wasm VM (only those listed in host_env_keys count).
    pub env: Vec<(&'a str, String)>,
    /// Envoy's listener buffer limit.
    pub buffer_limit: usize,
    /// Envoy's worker threads.
    pub concurrency: u32,
}

impl Default for StackOptions<'_> {
    fn default() -> Self {
        let mut env: Vec<(&str, String)> = Provider::ALL.iter().map(|&p| (p.key_env(), provider_key(p))).collect();
        env.push(("LITELLM_MASTER_KEY", MASTER_KEY.to_owned()));
        StackOptions {
            plugin_config: shipped_plugin_config(),
            env,
            buffer_limit: SHIPPED_BUFFER_LIMIT,
            concurrency: 1,
        }
    }
}

impl Stack {
    /// The shipped configuration, every key set.
    pub fn start_default() -> Stack {
        Stack::start(StackOptions::default())
    }

    /// The shipped configuration with this `max_body_bytes`, and Envoy's
    /// buffer limit the margin above it, as the shipped files set it.
    pub fn start_with_max_body_bytes(max: usize) -> Stack {
        let plugin_config = shipped_plugin_config().replacen(
            "\"general_settings\"",
            &format!("\"max_body_bytes\": {max},\n\"general_settings\""),
            1,
        );
        Stack::start(StackOptions {
            plugin_config,
            buffer_limit: max + llm_router::contract::ENVOY_BUFFER_MARGIN,
            ..StackOptions::default()
        })
    }

    pub fn start(options: StackOptions<'_>) -> Stack {
        let mocks: Vec<(Provider, Mock)> = Provider::ALL
            .iter()
            .map(|&p| {
                (
                    p,
                    mock_provider::start(p, "127.0.0.1:0", &provider_key(p)).expect("mock starts"),
                )
            })
            .collect();
        let addrs: Vec<(Provider, SocketAddr)> = mocks.iter().map(|(p, m)| (*p, m.addr)).collect();
        let bootstrap = render_envoy_yaml_with_buffer(&options.plugin_config, &addrs, options.buffer_limit);
        Stack::launch(&bootstrap, &options.env, mocks, options.concurrency)
    }

    /// Envoy on this bootstrap (its listener and admin on port 0), with
    /// these variables and mocks.
    pub fn launch(bootstrap: &str, env: &[(&str, String)], mocks: Vec<(Provider, Mock)>, concurrency: u32) -> Stack {
        let dir = scratch_dir();
        let config_path = dir.join("envoy.yaml");
        fs::write(&config_path, bootstrap).expect("write config");
        let admin_path = dir.join("admin-address");
        let log = dir.join("envoy.log");
        let access_log = dir.join("access.log");
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--use-dynamic-base-id", "-l", "info"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&access_log).expect("access log file"))
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} (run `make envoy`)", envoy_binary().display()));
        let mut stack = Stack {
            child,
            listener: "127.0.0.1:0".parse().expect("addr"),
            admin: "127.0.0.1:0".parse().expect("addr"),
            mocks,
            log,
            access_log,
            dir,
        };
        stack.admin = stack.wait_for(|| fs::read_to_string(&admin_path).ok().and_then(|a| a.trim().parse().ok()));
        let admin = stack.admin;
        stack.wait_for(|| {
            client::request(admin, "GET", "/ready", &[], b"")
                .ok()
                .filter(|r| r.status() == 200)
        });
        let listeners = stack.admin_get("/listeners?format=json").body_json();
        let port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .expect("listener port");
        stack.listener = SocketAddr::from(([127, 0, 0, 1], port as u16));
        stack
    }

    /// Polls `probe` until it yields, failing with Envoy's log if Envoy exits
    /// or [`START_DEADLINE`] passes.
    fn wait_for<T>(&mut self, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(value) = probe() {
                return value;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("envoy exited ({status}) during start-up:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "envoy not ready in {START_DEADLINE:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The access log's JSON lines, once there are `count` (Envoy writes
    /// them out about once a second); fails after ten seconds.
    pub fn access_log_entries(&self, count: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = fs::read_to_string(&self.access_log).unwrap_or_default();
            let entries: Vec<serde_json::Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
            if entries.len() >= count {
                assert_eq!(entries.len(), count, "{log}");
                return entries;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} access-log lines in 10 s:\n{log}",
                entries.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Envoy's process id: the same one after a configuration reload.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn admin_get(&self, path: &str) -> Response {
        client::request(self.admin, "GET", path, &[], b"").expect("admin answers")
    }

    /// An Envoy counter or gauge by its whole name, as the admin `/stats`
    /// has it now (live, not flushed); `None` where Envoy has no such stat.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let text = self.admin_get(&format!("/stats?filter={name}")).text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok())
    }

    pub fn mock(&self, provider: Provider) -> &Mock {
        &self
            .mocks
            .iter()
            .find(|(p, _)| *p == provider)
            .expect("every provider has a mock")
            .1
    }

    pub fn upstream_requests(&self) -> usize {
        self.mocks.iter().map(|(_, m)| m.requests()).sum()
    }

    /// A request to the router with the master key and a JSON content type.
    pub fn chat(&self, body: &str) -> Response {
        self.post(
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {MASTER_KEY}")),
                ("content-type", "application/json"),
            ],
            body,
        )
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        client::request(self.listener, "POST", path, headers, body.as_bytes()).expect("router answers")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the config and log of a failed test for a look.
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sends `request` to the router on a fresh connection.
pub fn send(addr: SocketAddr, request: &Request) -> Response {
    client::send(addr, request).expect("router answers")
}

/// Envoy's `--mode validate` on a rendered config: (success, output).
pub fn validate(yaml: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = scratch_dir();
    let path = dir.join("envoy.yaml");
    fs::write(&path, yaml).expect("write config");
    let result = validate_file(&path, env);
    let _ = fs::remove_dir_all(&dir);
    result
}

pub fn validate_file(path: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(path)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("envoy runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The JSON error of a local reply: (status, code).
pub fn error_code(response: &Response) -> (u16, String) {
    let json = response.body_json();
    (
        response.status(),
        json["error"]["code"].as_str().unwrap_or("<no error code>").to_owned(),
    )
}

/// The filter's metrics in /stats/prometheus (`llm_router_*` lines), once
/// `ready` accepts them (counters reach Envoy once a second, histograms
/// once per stats flush): fails after ten seconds.
pub fn scrape_until(stack: &Stack, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = stack.admin_get("/stats/prometheus").body;
        let mut lines: Vec<String> = String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| l.starts_with("llm_router_"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        if ready(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "metrics not as expected in 10 s:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A YAML document as JSON (Envoy reads either; indexing a missing key
/// gives `null`, as a test wants).
pub fn json_of(yaml: yaml_rust2::Yaml) -> serde_json::Value {
    use serde_json::Value as Json;
    use yaml_rust2::Yaml as Y;
    match yaml {
        Y::Real(text) => text.parse::<f64>().map_or(Json::String(text), Json::from),
        Y::Integer(n) => Json::from(n),
        Y::String(text) => Json::String(text),
        Y::Boolean(b) => Json::Bool(b),
        Y::Array(items) => Json::Array(items.into_iter().map(json_of).collect()),
        Y::Hash(map) => Json::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let key = match json_of(key) {
                        Json::String(key) => key,
                        other => other.to_string(),
                    };
                    (key, json_of(value))
                })
                .collect(),
        ),
        Y::Alias(_) | Y::Null | Y::BadValue => Json::Null,
    }
}
