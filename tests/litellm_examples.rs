//! LiteLLM's own example configs, as nobody here wrote them, through
//! `llm-router-config --envoy` into a real Envoy.
//!
//! Source: the LiteLLM package `make sdk` installs from PyPI (the `litellm==`
//! pin in the Makefile's `SDKS`; BerriAI/litellm at that release's tag),
//! every `litellm/proxy/example_config_yaml/*.yaml` and `litellm/proxy/*.yaml`
//! its wheel ships, read from the virtualenv at test time (nothing fetched is
//! committed here). LiteLLM itself is the oracle for what each deployment
//! is (tests/oracle/litellm_examples.py): its Router says whether it takes
//! the file, `get_llm_provider` names each deployment's provider, upstream
//! model, address and key.
//!
//! For every file: the generator takes each one LiteLLM's Router takes;
//! Envoy validates the bootstrap; then, with every upstream cluster pointed
//! at one recording upstream (the address only: Host, TLS name and path
//! stay as generated), each model_name is asked for once: a servable one
//! arrives with the path, credential header and key, Host and model its
//! deployment's provider takes, and a skipped one answers a JSON error
//! naming it.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use mock_provider::{Mock, Provider};
use serde_json::{json, Value};
use yaml_rust2::YamlLoader;

/// Providers whose deployments a key swap cannot serve, and why: each one
/// of these must be skipped with a warning, never served wrongly.
const NOT_SERVABLE: &[(&str, &str)] = &[
    ("bedrock", "AWS signs each request (SigV4)"),
    ("vertex_ai", "Google OAuth tokens, not keys"),
    ("auto_router", "LiteLLM's own router over other model_names"),
    ("voyage", "no OpenAI-compatible address LiteLLM names"),
    ("cohere", "Cohere's own API (chat v2, rerank), not OpenAI's"),
];

/// Where a provider is when the deployment names no `api_base` and LiteLLM
/// returns none (it has the address in its handler).
const DEFAULT_BASES: &[(&str, &str)] = &[
    ("openai", "https://api.openai.com/v1"),
    ("anthropic", "https://api.anthropic.com"),
    ("openrouter", "https://openrouter.ai/api/v1"),
    ("gemini", "https://generativelanguage.googleapis.com/v1beta/openai"),
];

/// Where the examples' `os.environ/AZURE_AI_API_BASE` points.
const FOUNDRY_BASE: &str = "https://litellm-example.services.ai.azure.com";

fn python() -> std::path::PathBuf {
    root().join(".venv/bin/python")
}

/// The example configs of the installed LiteLLM, sorted.
fn example_configs() -> Vec<String> {
    let out = Command::new(python())
        .args(["-c", "import litellm, os; print(os.path.dirname(litellm.__file__))"])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make sdk`)", python().display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proxy = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("proxy");
    let mut files = Vec::new();
    for dir in [proxy.join("example_config_yaml"), proxy] {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path.to_str().expect("utf-8 path").to_owned());
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "LiteLLM ships its example configs: {files:?}");
    files
}

/// One environment for every file: each `os.environ/NAME` the files read,
/// and the key variables LiteLLM falls back to. Addresses are the
/// recorder's, keys are told apart by their names.
fn environment(files: &[String], recorder: &Mock) -> Vec<(String, String)> {
    let mut names: BTreeSet<String> = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "GROQ_API_KEY"]
        .map(str::to_owned)
        .into();
    for file in files {
        let text = std::fs::read_to_string(file).expect("read config");
        for (at, _) in text.match_indices("os.environ/") {
            let name: String = text[at + "os.environ/".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let value = if name == "AZURE_AI_API_BASE" {
                // A Foundry host, whose path and key header LiteLLM's
                // azure_ai provider chooses by it (pointed_at sends it to
                // the recorder).
                FOUNDRY_BASE.to_owned()
            } else if name.ends_with("_API_BASE") || name.ends_with("_BASE_URL") {
                format!("http://127.0.0.1:{}", recorder.addr.port())
            } else if name.ends_with("_PORT") {
                "6379".to_owned()
            } else {
                format!("sk-{}", name.to_ascii_lowercase().replace('_', "-"))
            };
            (name, value)
        })
        .collect()
}

fn oracle(files: &[String], env: &[(String, String)]) -> Value {
    let out = Command::new(python())
        .arg(root().join("tests/oracle/litellm_examples.py"))
        .args(files)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make sdk`)", python().display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the oracle prints JSON")
}

/// The bootstrap with every cluster's endpoints at the recorder, in plain
/// HTTP: only where the bytes go changes.
fn pointed_at(bootstrap: &str, recorder: &Mock) -> String {
    let mut docs = YamlLoader::load_from_str(bootstrap).expect("the bootstrap is YAML");
    let mut config = json_of(docs.remove(0));
    // A file whose every deployment is skipped has no cluster.
    let clusters = config["static_resources"]["clusters"].as_array_mut();
    for cluster in clusters.into_iter().flatten() {
        if let Some(cluster) = cluster.as_object_mut() {
            cluster.remove("transport_socket");
            cluster.remove("transport_socket_matches");
        }
        for locality in cluster["load_assignment"]["endpoints"]
            .as_array_mut()
            .expect("endpoints")
        {
            for endpoint in locality["lb_endpoints"].as_array_mut().expect("lb_endpoints") {
                endpoint["endpoint"]["address"]["socket_address"] =
                    json!({"address": "127.0.0.1", "port_value": recorder.addr.port()});
            }
        }
    }
    config.to_string()
}

/// (scheme-less host without port, path without trailing `/`) of a URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    (host.to_owned(), format!("/{path}").trim_end_matches('/').to_owned())
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value[key].as_str()
}

fn servable(candidate: &Value) -> bool {
    let provider = text(candidate, "provider").unwrap_or_default();
    let model = text(candidate, "upstream_model").unwrap_or_default();
    let not_servable = provider.is_empty()
        || NOT_SERVABLE.iter().any(|(name, _)| *name == provider)
        // LiteLLM sends Claude on Azure AI Foundry through Anthropic's Messages API.
        || (provider == "azure_ai" && model.contains("claude"));
    !not_servable
}

/// What `candidate`'s provider is sent, per LiteLLM's own address rules
/// and the filter's (Anthropic through its OpenAI-compatible endpoint):
/// (Host without port, path and query, credential header, key, body model).
fn expected(
    candidate: &Value,
    azure_default_version: &str,
) -> (String, String, &'static str, Option<String>, Option<String>) {
    let provider = text(candidate, "provider").unwrap_or_default();
    let model = text(candidate, "upstream_model").unwrap_or_default();
    let base = text(candidate, "api_base")
        .or_else(|| DEFAULT_BASES.iter().find(|(p, _)| *p == provider).map(|(_, b)| *b))
        .unwrap_or_else(|| panic!("no address for {candidate}: add the provider's to DEFAULT_BASES"));
    let (host, base_path) = split_url(base);
    let key = text(candidate, "api_key").map(str::to_owned);
    match provider {
        // Its URL and key header, from LiteLLM's own azure_ai code.
        "azure_ai" => {
            let url = text(candidate, "url").expect("the oracle's azure_ai url");
            let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
            let path = rest.find('/').map_or("/", |i| &rest[i..]);
            let header = match text(candidate, "key_header") {
                Some("api-key") => "api-key",
                _ => "authorization",
            };
            let key = text(candidate, "key_value").map(str::to_owned);
            (split_url(url).0, path.to_owned(), header, key, Some(model.to_owned()))
        }
        "azure" => {
            let version = text(candidate, "api_version").unwrap_or(azure_default_version);
            let path = format!("{base_path}/openai/deployments/{model}/chat/completions?api-version={version}");
            (host, path, "api-key", key, None)
        }
        "anthropic" => {
            let root = base_path.trim_end_matches("/v1");
            (
                host,
                format!("{root}/v1/chat/completions"),
                "x-api-key",
                key,
                Some(model.to_owned()),
            )
        }
        "ollama" | "ollama_chat" => {
            let path = format!("{base_path}/v1/chat/completions");
            (
                host,
                path,
                "authorization",
                key.map(|k| format!("Bearer {k}")),
                Some(model.to_owned()),
            )
        }
        _ => {
            let path = format!("{base_path}/chat/completions");
            (
                host,
                path,
                "authorization",
                key.map(|k| format!("Bearer {k}")),
                Some(model.to_owned()),
            )
        }
    }
}

/// The models the generator's warnings say it left out.
fn skipped_models(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|line| {
            line.split_once("model `")?
                .1
                .split_once("` is not served")
                .map(|(m, _)| m.to_owned())
        })
        .collect()
}

#[test]
fn litellm_example_configs_run_as_they_are() {
    let shared = mock_provider::start(Provider::Recorder, "127.0.0.1:0", "").expect("recorder starts");
    let files = example_configs();
    let env = environment(&files, &shared);
    let answers = oracle(&files, &env);
    let check = Check {
        answers: &answers,
        azure_default_version: text(&answers, "azure_default_api_version").expect("azure default"),
        env: &env,
    };
    // Each file is an Envoy of its own: a few at once, each worker with its
    // own recorder (the addresses in `env` only name hosts; `pointed_at`
    // sends every cluster to the worker's recorder).
    let next = AtomicUsize::new(0);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                scope.spawn(|| {
                    let recorder =
                        mock_provider::start(Provider::Recorder, "127.0.0.1:0", "").expect("recorder starts");
                    let mut tally = Tally::default();
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::SeqCst)) {
                        check.file(file, &recorder, &mut tally);
                    }
                    tally
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let served: usize = tallies.iter().map(|t| t.served).sum();
    let skipped: usize = tallies.iter().map(|t| t.skipped).sum();
    let refused: Vec<&String> = tallies.iter().flat_map(|t| &t.refused).collect();
    eprintln!(
        "{} LiteLLM example configs: {served} model_names served, {skipped} skipped with their reason, refused whole as LiteLLM refuses them: {refused:?}",
        files.len()
    );
    assert!(served >= 30 && skipped >= 5, "{served} served, {skipped} skipped");
}

/// How many files are checked at once.
const WORKERS: usize = 3;

/// What the files came to.
#[derive(Default)]
struct Tally {
    served: usize,
    skipped: usize,
    refused: Vec<String>,
}

/// What every file is checked against.
struct Check<'a> {
    answers: &'a Value,
    azure_default_version: &'a str,
    env: &'a [(String, String)],
}

impl Check<'_> {
    /// Generates, validates and runs one file, asking for each of its
    /// model_names at `recorder`.
    fn file(&self, file: &str, recorder: &Mock, tally: &mut Tally) {
        let azure_default_version = self.azure_default_version;
        let env_refs: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let envoy_env: Vec<(&str, String)> = self.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let litellm = &self.answers["files"][file];
        let name = file.rsplit('/').next().unwrap_or(file);
        let yaml = std::fs::read_to_string(file).expect("read config");
        let args = test_bootstrap_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, bootstrap, stderr) = run_generator(&args, &yaml, &env_refs);
        if !ok {
            // Refused whole only where LiteLLM refuses it too.
            let reason = text(litellm, "refused");
            assert!(
                reason.is_some(),
                "{name}: refused, yet LiteLLM's Router takes it:\n{stderr}"
            );
            tally.refused.push(name.to_owned());
            return;
        }
        let (valid, output) = validate(&bootstrap, &env_refs);
        assert!(valid, "{name}: Envoy refuses the bootstrap:\n{output}");

        let left_out = skipped_models(&stderr);
        let stack = Stack::launch(&pointed_at(&bootstrap, recorder), &envoy_env, Vec::new(), 1);
        let client_key = text(litellm, "master_key").unwrap_or("sk-a-client-key");
        for request in litellm["requests"].as_array().into_iter().flatten() {
            let model_name = text(request, "model_name").expect("model_name");
            let asked = text(request, "request").expect("request");
            let candidates: Vec<&Value> = request["candidates"].as_array().expect("candidates").iter().collect();
            let servable: Vec<&Value> = candidates.iter().copied().filter(|c| servable(c)).collect();
            let before = recorder.requests();
            let response = stack.post(
                "/v1/chat/completions",
                &[
                    ("authorization", &format!("Bearer {client_key}")),
                    ("content-type", "application/json"),
                ],
                &json!({"model": asked, "messages": [{"role": "user", "content": "hi"}]}).to_string(),
            );
            let what = format!("{name}: model_name `{model_name}` (asked as `{asked}`)");
            if servable.is_empty() {
                assert!(
                    left_out.contains(model_name),
                    "{what}: not servable, yet not skipped:\n{stderr}"
                );
                let (status, code) = error_code(&response);
                assert_eq!(
                    (status, code.as_str()),
                    (400, "model_not_supported"),
                    "{what}: {}",
                    response.text()
                );
                let message = text(&response.body_json()["error"], "message")
                    .unwrap_or_default()
                    .to_owned();
                assert!(message.contains(model_name), "{what}: the error names it: {message}");
                assert_eq!(recorder.requests(), before, "{what}: nothing is sent");
                tally.skipped += 1;
                continue;
            }
            assert!(
                !left_out.contains(model_name) || servable.len() < candidates.len(),
                "{what}: servable ({servable:?}), yet skipped:\n{stderr}"
            );
            assert_eq!(response.status(), 200, "{what}: {}", response.text());
            assert_eq!(recorder.requests(), before + 1, "{what}: one request upstream");
            let received = recorder.received().pop().expect("received");
            let sent: Value = serde_json::from_slice(&received.body).expect("a JSON body");
            let host = split_url(received.header("host").unwrap_or_default()).0;
            let credential = |header: &str| received.header(header).map(str::to_owned);
            let matches = |candidate: &&Value| {
                let (want_host, path, header, key, model) = expected(candidate, azure_default_version);
                let other_credentials = mock_provider::CREDENTIAL_HEADERS
                    .iter()
                    .filter(|h| **h != header)
                    .all(|h| received.header(h).is_none());
                host == want_host
                    && received.path == path
                    && credential(header) == key
                    && other_credentials
                    && model.is_none_or(|m| sent["model"] == m.as_str())
            };
            assert!(
                servable.iter().any(matches),
                "{what}: arrived as {} {} (host {host}, {:?}, model {}), LiteLLM's deployments: {servable:?}",
                received.method,
                received.path,
                received
                    .headers
                    .iter()
                    .filter(|(n, _)| mock_provider::CREDENTIAL_HEADERS.contains(&n.as_str()))
                    .collect::<Vec<_>>(),
                sent["model"],
            );
            for (header, value) in &received.headers {
                assert!(!value.contains(client_key), "{what}: the client's key in {header}");
            }
            tally.served += 1;
        }
    }
}
