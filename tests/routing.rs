//! End to end in a real Envoy: the shipped envoy/envoy.yaml, the built
//! filter, mock providers that check what the real APIs check.

mod common;

use common::*;
use mock_provider::Provider;
use serde_json::Value;

/// The credentials-related headers the provider saw, fingerprinted.
fn credentials_seen(mock_answer: &Value) -> Vec<(String, String)> {
    mock_answer["mock"]["headers"]
        .as_array()
        .map(|headers| {
            headers
                .iter()
                .filter_map(|h| Some((h[0].as_str()?.to_owned(), h[1].as_str()?.to_owned())))
                .filter(|(name, _)| {
                    ["authorization", "x-api-key", "api-key", "x-goog-api-key"].contains(&name.as_str())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn header_seen(mock_answer: &Value, name: &str) -> Option<String> {
    mock_answer["mock"]["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0] == name)
        .and_then(|h| h[1].as_str().map(str::to_owned))
}

#[test]
fn the_seed_requests_reach_their_providers() {
    let stack = Stack::start_default();
    let rows = [
        (
            "groq/llama3-8b-8192",
            Provider::Groq,
            "/openai/v1/chat/completions",
            "llama3-8b-8192",
            "authorization",
        ),
        (
            "anthropic/claude-3-sonnet-20240229",
            Provider::Anthropic,
            "/v1/chat/completions",
            "claude-3-sonnet-20240229",
            "x-api-key",
        ),
        (
            "fo::hi::static::hi",
            Provider::OpenAi,
            "/v1/chat/completions",
            "fo::hi::static::hi",
            "authorization",
        ),
    ];
    for (model, provider, path, upstream_model, credential_header) in rows {
        // `messages` first and odd spacing: only the model's bytes may change.
        let body = format!(
            r#"{{"messages": [{{"role": "user", "content": "say \"model\": hi"}}],   "temperature":1.50, "model" : "{model}"}}"#
        );
        let response = stack.chat(&body);
        let answer = response.body_json();
        assert_eq!(response.status(), 200, "{model}: {answer}");
        assert_eq!(answer["mock"]["provider"], provider.name(), "{model}");
        assert_eq!(answer["mock"]["path"], path, "{model}");
        assert_eq!(answer["model"], upstream_model, "{model}");
        assert_eq!(answer["mock"]["key_fingerprint"], key_fingerprint(provider), "{model}");
        let expected_body = body.replace(&format!("\"{model}\""), &format!("\"{upstream_model}\""));
        assert_eq!(answer["mock"]["body"], expected_body.as_str(), "{model}");
        // The provider's key only, under the provider's header; the routing header is gone.
        assert_eq!(
            credentials_seen(&answer),
            [(credential_header.to_owned(), key_fingerprint(provider))],
            "{model}"
        );
        assert_eq!(header_seen(&answer, "x-llm-cluster"), None, "{model}");
        assert_eq!(
            header_seen(&answer, "content-length"),
            Some(expected_body.len().to_string()),
            "{model}: the upstream length matches the rewritten body"
        );
    }
    assert_eq!(
        header_seen(
            &stack.chat(r#"{"model":"anthropic/c"}"#).body_json(),
            "anthropic-version"
        )
        .as_deref(),
        Some("2023-06-01")
    );
}

#[test]
fn unknown_models_get_404_and_reach_no_provider() {
    let stack = Stack::start_default();
    let response = stack.chat(r#"{"model":"openai/gpt-4o","messages":[]}"#);
    assert_eq!(error_code(&response), (404, "model_not_found".to_owned()));
    let message = response.body_json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("openai/gpt-4o"), "{message}");
    assert_eq!(stack.upstream_requests(), 0);
}

#[test]
fn client_keys_are_checked_and_never_forwarded() {
    let stack = Stack::start_default();
    let body = r#"{"model":"groq/llama3-8b-8192"}"#;
    let json = ("content-type", "application/json");
    let missing = stack.post("/v1/chat/completions", &[json], body);
    assert_eq!(error_code(&missing), (401, "invalid_api_key".to_owned()));
    let wrong = stack.post(
        "/v1/chat/completions",
        &[json, ("authorization", "Bearer sk-wrong")],
        body,
    );
    assert_eq!(error_code(&wrong), (401, "invalid_api_key".to_owned()));
    assert_eq!(stack.upstream_requests(), 0, "refused requests reach no provider");

    // The master key as x-api-key, plus every other spelling of a client key.
    let bearer = format!("Bearer {MASTER_KEY}");
    let headers = [
        json,
        ("x-api-key", MASTER_KEY),
        ("authorization", bearer.as_str()),
        ("api-key", "client-azure-style"),
        ("x-goog-api-key", "client-google-style"),
    ];
    let ok = stack.post("/v1/chat/completions", &headers, body);
    let answer = ok.body_json();
    assert_eq!(ok.status(), 200, "{answer}");
    assert_eq!(
        credentials_seen(&answer),
        [("authorization".to_owned(), key_fingerprint(Provider::Groq))]
    );
}

#[test]
fn the_cluster_header_is_only_ever_the_filters() {
    let stack = Stack::start_default();
    let response = stack.post(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            ("content-type", "application/json"),
            ("x-llm-cluster", "openai"),
            ("X-LLM-Cluster", "anthropic"),
        ],
        r#"{"model":"groq/llama3-8b-8192"}"#,
    );
    assert_eq!(response.body_json()["mock"]["provider"], "groq");
    // Refused requests do not fall through to a client-chosen cluster either.
    let refused = stack.post(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            ("x-llm-cluster", "openai"),
        ],
        r#"{"model":"openai/gpt-4o"}"#,
    );
    assert_eq!(error_code(&refused), (404, "model_not_found".to_owned()));
    let unauthenticated = stack.post(
        "/v1/chat/completions",
        &[("x-llm-cluster", "openai")],
        r#"{"model":"groq/x"}"#,
    );
    assert_eq!(error_code(&unauthenticated), (401, "invalid_api_key".to_owned()));
    assert_eq!(stack.mock(Provider::OpenAi).requests(), 0);
}

#[test]
fn unreadable_bodies_get_the_contracts_errors() {
    let stack = Stack::start_default();
    let rows: &[(&str, &[(&str, &str)], u16, &str)] = &[
        (r#"{"model":"groq/x""#, &[], 400, "invalid_request_error"),
        (r#"["groq/x"]"#, &[], 400, "invalid_request_error"),
        (r#"{"messages":[]}"#, &[], 400, "invalid_request_error"),
        (
            r#"{"model":"groq/a","model":"groq/b"}"#,
            &[],
            400,
            "invalid_request_error",
        ),
        (r#"{"model":"groq/"}"#, &[], 400, "invalid_request_error"),
        (
            r#"{"model":"groq/x"}"#,
            &[("content-type", "text/plain")],
            415,
            "unsupported_media_type",
        ),
        (
            r#"{"model":"groq/x"}"#,
            &[("content-encoding", "gzip")],
            415,
            "unsupported_media_type",
        ),
    ];
    let auth = format!("Bearer {MASTER_KEY}");
    for (body, extra, status, code) in rows {
        let mut headers = vec![("authorization", auth.as_str())];
        if !extra.iter().any(|(n, _)| *n == "content-type") {
            headers.push(("content-type", "application/json"));
        }
        headers.extend_from_slice(extra);
        let response = stack.post("/v1/chat/completions", &headers, body);
        assert_eq!(error_code(&response), (*status, code.to_string()), "{body} {extra:?}");
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
    assert_eq!(stack.upstream_requests(), 0);
}

#[test]
fn curl_style_bodies_are_routed_and_declared_json() {
    let stack = Stack::start_default();
    // `curl -d` sends a form content type; the body is JSON all the same.
    let response = stack.post(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        r#"{"model":"groq/llama3-8b-8192"}"#,
    );
    let answer = response.body_json();
    assert_eq!(response.status(), 200, "{answer}");
    assert_eq!(
        header_seen(&answer, "content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn chunked_uploads_are_buffered_and_routed() {
    let stack = Stack::start_default();
    let pieces: [&[u8]; 3] = [br#"{"messages":[],"#, br#""model":"groq/"#, br#"llama3-8b-8192"}"#];
    // Without and with trailers: a body that ends in trailers is routed too.
    for trailers in [&[][..], &[("x-trailer", "t")][..]] {
        let request = Request::new("POST", "/v1/chat/completions")
            .header("authorization", format!("Bearer {MASTER_KEY}"))
            .header("content-type", "application/json")
            .chunked(&pieces, trailers);
        let response = send(stack.listener, &request);
        let answer = response.body_json();
        assert_eq!(response.status(), 200, "{trailers:?}: {answer}");
        assert_eq!(answer["mock"]["body"], r#"{"messages":[],"model":"llama3-8b-8192"}"#);
        assert_eq!(
            header_seen(&answer, "transfer-encoding"),
            None,
            "{trailers:?}: {answer}"
        );
    }
}

#[test]
fn streaming_responses_pass_through_unbuffered() {
    let stack = Stack::start_default();
    let response = stack.chat(r#"{"model":"groq/llama3-8b-8192","stream":true}"#);
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let text = String::from_utf8_lossy(&response.body).into_owned();
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
    // The mock answers with the upstream model it was sent and a fingerprint of the key it got.
    let content: String = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        content,
        mock_provider::api::answer_text(Provider::Groq, "llama3-8b-8192", &provider_key(Provider::Groq))
    );
    assert!(text.contains(r#""model":"llama3-8b-8192""#), "{text}");
    // The mock pauses between events: a buffering filter would deliver them all at once.
    let first = response.pieces.first().map(|p| p.0).expect("some body");
    let last = response.pieces.last().map(|p| p.0).expect("some body");
    assert!(
        response.pieces.len() >= 3,
        "events arrived in {} pieces",
        response.pieces.len()
    );
    assert!(
        last - first >= mock_provider::STREAM_EVENT_GAP * 3,
        "first at {first:?}, last at {last:?}"
    );
}

#[test]
fn models_are_listed_locally() {
    let stack = Stack::start_default();
    let auth = format!("Bearer {MASTER_KEY}");
    let response =
        client::request(stack.listener, "GET", "/v1/models", &[("authorization", &auth)], b"").expect("answer");
    assert_eq!(response.status(), 200);
    let ids: Vec<Value> = response.body_json()["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| serde_json::json!([m["id"], m["owned_by"], m["object"]]))
        .collect();
    assert_eq!(
        ids,
        [
            serde_json::json!(["anthropic/*", "anthropic", "model"]),
            serde_json::json!(["groq/*", "groq", "model"]),
            serde_json::json!(["fo::*:static::*", "openai", "model"]),
        ]
    );
    let anonymous = client::request(stack.listener, "GET", "/v1/models", &[], b"").expect("answer");
    assert_eq!(error_code(&anonymous), (401, "invalid_api_key".to_owned()));
    let get =
        |path: &str| client::request(stack.listener, "GET", path, &[("authorization", &auth)], b"").expect("answer");
    let model = get("/v1/models/groq/llama3-8b-8192");
    assert_eq!(model.status(), 200);
    assert_eq!(
        model.body_json(),
        serde_json::json!({"id": "groq/llama3-8b-8192", "object": "model", "created": 0, "owned_by": "groq"})
    );
    assert_eq!(
        error_code(&get("/v1/models/openai/gpt-4o")),
        (404, "model_not_found".to_owned())
    );
    assert_eq!(get("/v1/models/").status(), 200);
    // Other requests without a body say why they cannot be routed.
    for path in ["/v1/files", "/", "/v1/batches/b-1"] {
        let response = get(path);
        assert_eq!(
            error_code(&response),
            (400, "invalid_request_error".to_owned()),
            "{path}"
        );
        let message = response.body_json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(&format!("GET {path}")) && !message.contains("has no body"),
            "{message}"
        );
    }
    // Liveness, without a key, as probes ask.
    for path in ["/health", "/health/liveliness", "/health/readiness"] {
        let health = client::request(stack.listener, "GET", path, &[], b"").expect("answer");
        assert_eq!(
            (health.status(), health.body_json()),
            (200, serde_json::json!({"status": "healthy"})),
            "{path}"
        );
    }
    assert_eq!(stack.upstream_requests(), 0);
}

#[test]
fn an_unset_provider_key_answers_503_for_its_routes_only() {
    let mut options = StackOptions::default();
    options.env.retain(|(name, _)| *name != "GROQ_API_KEY");
    let stack = Stack::start(options);
    let groq = stack.chat(r#"{"model":"groq/llama3-8b-8192"}"#);
    assert_eq!(error_code(&groq), (503, "provider_unavailable".to_owned()));
    let anthropic = stack.chat(r#"{"model":"anthropic/claude-3-haiku"}"#);
    assert_eq!(anthropic.status(), 200);
    let log = stack.log_text();
    assert!(
        log.contains("model_list[1] (model_name `groq/*`)") && log.contains("GROQ_API_KEY"),
        "{log}"
    );
    assert!(
        !log.contains(&provider_key(Provider::OpenAi)),
        "a key leaked into the log"
    );
}

#[test]
fn configuration_warnings_are_logged_once_whatever_the_workers() {
    let mut options = StackOptions::default();
    options.env.retain(|(name, _)| *name != "GROQ_API_KEY");
    options.concurrency = 3;
    let stack = Stack::start(options);
    // Every worker has its VM up once each answers; Envoy spreads connections.
    for _ in 0..6 {
        assert_eq!(stack.chat(r#"{"model":"anthropic/claude-3-haiku"}"#).status(), 200);
    }
    let log = stack.log_text();
    let warned = log.matches("environment variable `GROQ_API_KEY` is not set").count();
    assert_eq!(warned, 1, "{log}");
    assert!(
        log.matches("llm-router configured").count() >= 3,
        "one VM per worker: {log}"
    );
}

#[test]
fn large_and_oversized_bodies() {
    let stack = Stack::start_with_max_body_bytes(2_000_000);
    // 1.5 MB: above Envoy's default 1 MiB buffer, which the shipped config raises.
    let filler = "x".repeat(1_500_000);
    let big = stack.chat(&format!(
        r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"groq/llama3-8b-8192"}}"#
    ));
    assert_eq!(big.status(), 200);
    // Model first: Envoy is handed only the bytes up to the new model and
    // keeps the rest of its buffer, which must arrive untouched.
    let tail = "z".repeat(300_000);
    let first = stack.chat(&format!(
        r#"{{"model":"groq/llama3-8b-8192","messages":[{{"role":"user","content":"{tail}"}}]}}"#
    ));
    assert_eq!(
        first.body_json()["mock"]["body"],
        format!(r#"{{"model":"llama3-8b-8192","messages":[{{"role":"user","content":"{tail}"}}]}}"#)
    );
    let too_big = stack.chat(&format!(
        r#"{{"messages":"{}","model":"groq/llama3-8b-8192"}}"#,
        "y".repeat(2_000_001)
    ));
    assert_eq!(error_code(&too_big), (413, "request_too_large".to_owned()));
    // Chunked, so no declared length: counted as it arrives, and the filter's
    // JSON 413 comes before Envoy's plain-text one.
    let piece = vec![b'c'; 64 * 1024];
    let mut pieces: Vec<&[u8]> = vec![br#"{"model":"groq/llama3-8b-8192","messages":""#];
    pieces.extend(std::iter::repeat_n(piece.as_slice(), 2_000_000 / piece.len() + 2));
    pieces.push(br#""}"#);
    let request = Request::new("POST", "/v1/chat/completions")
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .chunked(&pieces, &[]);
    let chunked = send(stack.listener, &request);
    assert_eq!(
        error_code(&chunked),
        (413, "request_too_large".to_owned()),
        "{}",
        chunked.text()
    );
    assert_eq!(chunked.header("content-type"), Some("application/json"));
}

#[test]
fn unusable_configurations_are_refused_by_envoy() {
    let env = [("LITELLM_MASTER_KEY", MASTER_KEY)];
    let rows = [
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/*"}}]}"#,
            "model_list[0] (model_name `x`)",
        ),
        (r#"{"model_lists": []}"#, "unknown field `model_lists`"),
        (
            r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}], "general_settings": {"master_key": "os.environ/UNSET_MASTER"}}"#,
            "`UNSET_MASTER` is not set",
        ),
    ];
    for (config, named) in rows {
        let (ok, output) = validate(&render_envoy_yaml(config, &[]), &env);
        assert!(!ok, "envoy accepted {config}");
        assert!(output.contains(named), "the log should name `{named}`:\n{output}");
    }
}
