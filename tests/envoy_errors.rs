//! Envoy's own error answers reach a client in the filter's JSON shape
//! (`local_reply_config` in every generated bootstrap), with their status
//! and a message that says what happened: an upstream that refuses the
//! connection, one whose name does not resolve, one that times out, a
//! cluster the configuration lacks, and a body Envoy's own buffer refuses.
//! The filter's own replies stay as they are, a skipped model's included.

mod common;

use std::net::TcpListener;

use common::*;
use mock_provider::{Fault, Provider};
use yaml_rust2::YamlLoader;

const KEY: &str = "sk-errors-openai";

fn assert_json_error(response: &Response, status: u16, code: &str) -> String {
    assert_eq!(error_code(response), (status, code.to_owned()), "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let message = response.body_json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "{}", response.text());
    message
}

/// Envoy's error, in words, with Envoy's own detail after it.
fn assert_says(response: &Response, status: u16, code: &str, words: &str, detail: &str) {
    let message = assert_json_error(response, status, code);
    assert!(message.starts_with(words), "{message}");
    let (_, envoy) = message.rsplit_once("(Envoy: ").unwrap_or_else(|| panic!("{message}"));
    assert!(envoy.contains(detail), "{message}");
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The bootstrap without the cluster named `name`: a configuration out of
/// step with the filter's (an Istio mesh, a hand-edited file).
fn without_cluster(bootstrap: &str, name: &str) -> String {
    let mut docs = YamlLoader::load_from_str(bootstrap).expect("the bootstrap is YAML");
    let mut config = json_of(docs.remove(0));
    let clusters = config["static_resources"]["clusters"].as_array_mut().expect("clusters");
    let before = clusters.len();
    clusters.retain(|c| c["name"] != name);
    assert_eq!(clusters.len(), before - 1, "no cluster {name}");
    config.to_string()
}

#[test]
fn upstream_down_and_upstream_timeout_answer_json() {
    let slow = mock_provider::start(Provider::OpenAi, "127.0.0.1:0", KEY).expect("mock starts");
    slow.set_fault(Some(Fault::parse("stall=4000").expect("fault")));
    let (closed, orphan) = (closed_port(), closed_port());
    let config = format!(
        "model_list:
  - model_name: down
    litellm_params: {{model: openai/gpt-4o, api_key: {KEY}, api_base: http://127.0.0.1:{closed}/v1}}
  - model_name: unresolvable
    litellm_params: {{model: openai/gpt-4o, api_key: {KEY}, api_base: http://no-such-host.invalid/v1}}
  - model_name: orphan
    litellm_params: {{model: openai/gpt-4o, api_key: {KEY}, api_base: http://127.0.0.1:{orphan}/v1}}
  - model_name: slow
    litellm_params: {{model: openai/gpt-4o, api_key: {KEY}, api_base: http://127.0.0.1:{port}/v1, timeout: 1}}
  - model_name: claude-on-bedrock
    litellm_params: {{model: bedrock/anthropic.claude-3-sonnet, aws_secret_access_key: not-for-envoy}}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
",
        port = slow.addr.port()
    );
    let (bootstrap, warnings) = generate_test_bootstrap(&config, &[]);
    assert!(
        warnings.contains("model `claude-on-bedrock` is not served"),
        "{warnings}"
    );
    assert!(
        !bootstrap.contains("not-for-envoy"),
        "an ignored secret reached Envoy's configuration"
    );
    let stack = Stack::launch(
        &without_cluster(&bootstrap, &format!("http_127.0.0.1_{orphan}")),
        &[("LITELLM_MASTER_KEY", MASTER_KEY.to_owned())],
        Vec::new(),
        1,
    );
    let down = stack.chat(r#"{"model":"down","messages":[]}"#);
    assert_says(
        &down,
        503,
        "upstream_unavailable",
        "could not connect to the provider",
        "connection_failure",
    );
    let unresolvable = stack.chat(r#"{"model":"unresolvable","messages":[]}"#);
    assert_says(
        &unresolvable,
        503,
        "upstream_unavailable",
        "no healthy upstream",
        "no_healthy_upstream",
    );
    // Envoy's own body is empty here.
    let orphan = stack.chat(r#"{"model":"orphan","messages":[]}"#);
    assert_says(
        &orphan,
        503,
        "upstream_unavailable",
        "Envoy has no upstream for this request",
        "cluster_not_found",
    );
    let timed_out = stack.chat(r#"{"model":"slow","messages":[]}"#);
    assert_says(
        &timed_out,
        504,
        "upstream_timeout",
        "the provider did not start answering",
        "upstream_per_try_timeout",
    );
    // A skipped entry answers with the reason, in the filter's own reply,
    // which is not wrapped again.
    let skipped = stack.chat(r#"{"model":"claude-on-bedrock","messages":[]}"#);
    assert_json_error(&skipped, 400, "model_not_supported");
    assert!(skipped.text().contains("SigV4"), "{}", skipped.text());
    let unknown = stack.chat(r#"{"model":"nosuch","messages":[]}"#);
    assert_json_error(&unknown, 404, "model_not_found");
}

#[test]
fn a_body_over_envoys_own_buffer_is_refused_in_json() {
    // Envoy's buffer below the filter's limit, so that Envoy refuses first,
    // as it can when a fast client streams a chunked body past the limit.
    let stack = Stack::start(StackOptions {
        buffer_limit: 64 * 1024,
        ..StackOptions::default()
    });
    let piece = vec![b'c'; 16 * 1024];
    let mut pieces: Vec<&[u8]> = vec![br#"{"model":"groq/llama3-8b-8192","messages":""#];
    pieces.extend(std::iter::repeat_n(piece.as_slice(), 16));
    pieces.push(br#""}"#);
    let request = Request::new("POST", "/v1/chat/completions")
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .chunked(&pieces, &[]);
    let refused = send(stack.listener, &request);
    assert_json_error(&refused, 413, "request_too_large");
    assert_eq!(stack.upstream_requests(), 0);
}
