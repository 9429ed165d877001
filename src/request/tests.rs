use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::config::tests::{compile_test, SEED};
use crate::config::Config;
use crate::contract::*;
use crate::headers::HeaderBlock;
use crate::request::attempt::*;
use crate::request::auth::*;
use crate::request::decision::*;
use crate::request::head::constant_time_eq;
use crate::request::reply::*;
use crate::request::shaping::*;
use crate::response::group::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderBlock {
    HeaderBlock::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_bytes())))
}

fn post(extra: &[(&str, &str)]) -> HeaderBlock {
    let mut h = vec![
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        ("content-type", "application/json"),
    ];
    h.extend_from_slice(extra);
    headers(&h)
}

fn head_status(config: &Config, h: &HeaderBlock, end_of_stream: bool) -> Option<(u32, &'static str)> {
    match on_request_head(config, h.clone(), end_of_stream, &|| 0) {
        HeadVerdict::ReadBody(_) => None,
        HeadVerdict::Reply(r) => Some((r.status, r.error.map_or("", ErrorKind::code))),
    }
}

#[test]
fn the_head_checks() {
    let config = compile_test(SEED).expect("seed compiles");
    let ok = ("authorization", "Bearer sk-router-master");
    let rows: &[(HeaderBlock, bool, Option<(u32, &str)>)] = &[
        (post(&[ok]), false, None),
        (post(&[("authorization", "bearer   sk-router-master ")]), false, None),
        (post(&[("x-api-key", "sk-router-master")]), false, None),
        (
            post(&[("authorization", "Bearer wrong"), ("x-api-key", "sk-router-master")]),
            false,
            None,
        ),
        (post(&[]), false, Some((401, "invalid_api_key"))),
        (
            post(&[("authorization", "Bearer sk-router-maste")]),
            false,
            Some((401, "invalid_api_key")),
        ),
        (
            post(&[("authorization", "Bearer sk-router-masterX")]),
            false,
            Some((401, "invalid_api_key")),
        ),
        (
            post(&[("authorization", "Basic sk-router-master")]),
            false,
            Some((401, "invalid_api_key")),
        ),
        (
            post(&[("authorization", "sk-router-master")]),
            false,
            Some((401, "invalid_api_key")),
        ),
        (
            post(&[("api-key", "sk-router-master")]),
            false,
            Some((401, "invalid_api_key")),
        ),
        (post(&[ok]), true, Some((400, "invalid_request_error"))),
        (
            headers(&[(":method", "POST"), ok]),
            false,
            Some((400, "invalid_request_error")),
        ),
        (
            post(&[ok, ("content-length", "33554433")]),
            false,
            Some((413, "request_too_large")),
        ),
        (post(&[ok, ("content-length", "33554432")]), false, None),
        (
            post(&[ok, ("content-encoding", "gzip")]),
            false,
            Some((415, "unsupported_media_type")),
        ),
        (post(&[ok, ("content-encoding", "identity")]), false, None),
        (
            post(&[ok, ("content-type", "text/plain")]),
            false,
            Some((415, "unsupported_media_type")),
        ),
        (
            headers(&[
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                ok,
                ("content-type", "multipart/form-data; boundary=x"),
            ]),
            false,
            Some((415, "unsupported_media_type")),
        ),
        (
            headers(&[
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                ok,
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ]),
            false,
            Some((415, "unsupported_media_type")),
        ),
        (
            headers(&[
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                ok,
                ("content-type", "application/+json"),
            ]),
            false,
            Some((415, "unsupported_media_type")),
        ),
        (
            headers(&[
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                ok,
                ("content-type", "Application/JSON; charset=utf-8"),
            ]),
            false,
            None,
        ),
        (
            headers(&[
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                ok,
                ("content-type", "application/vnd.api+json"),
            ]),
            false,
            None,
        ),
        (
            headers(&[(":method", "POST"), (":path", "/v1/chat/completions"), ok]),
            false,
            None,
        ),
        (
            headers(&[(":method", "GET"), (":path", "/v1/models"), ok]),
            true,
            Some((200, "")),
        ),
        (
            headers(&[(":method", "GET"), (":path", "/models?x=1"), ok]),
            true,
            Some((200, "")),
        ),
        (
            headers(&[(":method", "GET"), (":path", "/v1/models")]),
            true,
            Some((401, "invalid_api_key")),
        ),
    ];
    let get = |path: &'static str, key: bool| {
        let mut pairs = vec![(":method", "GET"), (":path", path)];
        if key {
            pairs.push(ok);
        }
        headers(&pairs)
    };
    let local: &[(HeaderBlock, Option<(u32, &str)>)] = &[
        (get("/v1/models/", true), Some((200, ""))),
        (get("/v1/models/groq/llama3-8b-8192", true), Some((200, ""))),
        (get("/v1/models/groq%2Fllama3-8b-8192", true), Some((200, ""))),
        (get("/models/anthropic/*", true), Some((200, ""))),
        (get("/v1/models/openai/gpt-4o", true), Some((404, "model_not_found"))),
        (get("/v1/models/groq/x", false), Some((401, "invalid_api_key"))),
        // Liveness needs no key.
        (get("/health", false), Some((200, ""))),
        (get("/health/liveliness", false), Some((200, ""))),
        (get("/health/readiness?x=1", false), Some((200, ""))),
        (get("/healthz", false), Some((401, "invalid_api_key"))),
        (get("/v1/files", true), Some((400, "invalid_request_error"))),
    ];
    for (h, expected) in local {
        assert_eq!(head_status(&config, h, true), *expected, "headers {h:?}");
    }
    for (h, end_of_stream, expected) in rows {
        assert_eq!(head_status(&config, h, *end_of_stream), *expected, "headers {h:?}");
    }
}

#[test]
fn local_answers_say_what_they_answer() {
    let config = compile_test(SEED).expect("seed compiles");
    let ok = ("authorization", "Bearer sk-router-master");
    let reply = |method: &str, path: &str| {
        let h = headers(&[(":method", method), (":path", path), ok]);
        match on_request_head(&config, h, true, &|| 0) {
            HeadVerdict::Reply(r) => serde_json::from_slice::<serde_json::Value>(&r.body).expect("json"),
            HeadVerdict::ReadBody(_) => panic!("{method} {path} read a body"),
        }
    };
    let model = reply("GET", "/v1/models/groq/llama3-8b-8192");
    assert_eq!(
        model,
        serde_json::json!({"id": "groq/llama3-8b-8192", "object": "model", "created": 0, "owned_by": "groq"})
    );
    assert_eq!(reply("GET", "/health"), serde_json::json!({"status": "healthy"}));
    let files = reply("GET", "/v1/files/file-1");
    let message = files["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("GET /v1/files/file-1") && message.contains("`model`"),
        "{message}"
    );
    assert!(!message.contains("has no body"), "{message}");
    let delete = reply("DELETE", "/v1/models/x");
    assert!(delete["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("`DELETE /v1/models/x`"));
}

#[test]
fn without_a_master_key_no_client_check_is_made() {
    let config = compile_test(r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}]}"#)
        .expect("compiles");
    assert_eq!(head_status(&config, &post(&[]), false), None);
}

/// What a client sends: credentials in two spellings, a routing header of its own.
fn chat() -> PendingRequest {
    let config = compile_test(SEED).expect("seed compiles");
    let client = headers(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "router.local"),
        ("authorization", "Bearer sk-router-master"),
        ("x-api-key", "sk-router-master"),
        ("content-type", "application/json"),
        ("content-length", "999"),
        ("x-llm-cluster", "openai"),
        ("anthropic-version", "2099-01-01"),
        ("user-agent", "OpenAI/Python"),
    ]);
    match on_request_head(&config, client, false, &|| 0) {
        HeadVerdict::ReadBody(pending) => pending,
        HeadVerdict::Reply(r) => panic!("replied {} {}", r.status, String::from_utf8_lossy(&r.body)),
    }
}

/// The headers the provider gets: the client's with the changes applied
/// as Envoy does (a set replaces every value of the name), sorted.
fn upstream(forward: &Forward) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = chat()
        .headers
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    for (name, value) in &forward.header_changes {
        headers.retain(|(n, _)| n != name);
        if let Some(value) = value {
            headers.push((name.to_string(), String::from_utf8_lossy(value).into_owned()));
        }
    }
    headers.sort();
    headers
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    pairs.sort();
    pairs
}

#[test]
fn bodies_without_a_json_type_are_declared_json_upstream() {
    let config = compile_test(SEED).expect("seed compiles");
    let ok = ("authorization", "Bearer sk-router-master");
    let curl_default = headers(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        ok,
        ("content-type", "application/x-www-form-urlencoded"),
    ]);
    let head = || match on_request_head(&config, curl_default.clone(), false, &|| 0) {
        HeadVerdict::ReadBody(pending) => pending,
        HeadVerdict::Reply(_) => panic!("curl's default content type is read"),
    };
    assert!(head().declare_json);
    let Decision::Forward(forward) = on_request_body(&config, head(), br#"{"model":"groq/x"}"#) else {
        panic!("a JSON body is routed");
    };
    let content_types: Vec<_> = forward
        .header_changes
        .iter()
        .filter(|(n, _)| *n == "content-type")
        .collect();
    assert_eq!(
        content_types,
        [&("content-type", Some(Cow::Borrowed(&b"application/json"[..])))]
    );
    let Decision::Reply(reply) = on_request_body(&config, head(), b"model=groq/x") else {
        panic!("a form body is not routed");
    };
    assert_eq!(reply.status, 400);
}

fn forward<'c>(config: &'c Config, body: &str) -> Forward<'c> {
    match on_request_body(config, chat(), body.as_bytes()) {
        Decision::Forward(f) => f,
        Decision::Reply(r) => panic!("replied {} {}", r.status, String::from_utf8_lossy(&r.body)),
    }
}

/// The body the provider receives.
fn upstream_body(forward: &Forward, body: &str) -> Option<String> {
    let edit = forward.body_edit.clone()?;
    String::from_utf8(edit.apply(body.as_bytes())).ok()
}

#[test]
fn each_request_carries_its_attempt_time_limit() {
    let deployments = r#"
      {"model_name": "fast", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "k", "timeout": 10, "stream_timeout": 2}},
      {"model_name": "plain", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}},
      {"model_name": "pair", "litellm_params": {"model": "openai/a", "api_key": "k", "timeout": 5}},
      {"model_name": "pair", "litellm_params": {"model": "openai/b", "api_key": "k", "timeout": 30, "stream_timeout": 1.5}},
      {"model_name": "duo", "litellm_params": {"model": "openai/c", "api_key": "k", "timeout": 5}},
      {"model_name": "duo", "litellm_params": {"model": "openai/d", "api_key": "k"}}"#;
    let with_defaults =
        format!(r#"{{"model_list": [{deployments}], "router_settings": {{"timeout": 60, "stream_timeout": 0.0004}}}}"#);
    let without = format!(r#"{{"model_list": [{deployments}]}}"#);
    // (settings, model, streamed, the header's value)
    let rows: [(&str, &str, bool, Option<&str>); 12] = [
        (&with_defaults, "fast", false, Some("10000")),
        (&with_defaults, "fast", true, Some("2000")),
        // router_settings' for what the deployment leaves unset; at least 1 ms
        (&with_defaults, "plain", false, Some("60000")),
        (&with_defaults, "plain", true, Some("1")),
        // a group's is the longest of its members', each its own or the default
        (&with_defaults, "pair", false, Some("30000")),
        (&with_defaults, "pair", true, Some("1500")),
        (&without, "fast", true, Some("2000")),
        (&without, "plain", false, None),
        // a member's stream limit is its stream_timeout, else its timeout
        (&without, "pair", true, Some("5000")),
        (&without, "pair", false, Some("30000")),
        // a member without a limit takes the group's
        (&without, "duo", false, Some("5000")),
        (&without, "duo", true, Some("5000")),
    ];
    for (settings, model, stream, expected) in rows {
        let config = compile_test(settings).expect("compiles");
        let body = format!(r#"{{"model":"{model}","stream":{stream},"messages":[]}}"#);
        let forward = forward(&config, &body);
        let limit = forward
            .header_changes
            .iter()
            .find(|(name, _)| *name == PER_TRY_TIMEOUT_HEADER)
            .and_then(|(_, value)| value.as_deref().map(|v| String::from_utf8_lossy(v).into_owned()));
        assert_eq!(limit.as_deref(), expected, "{model} stream={stream} in {settings}");
    }
}

/// `gpt-4o` over OpenAI (Bearer) and Azure (api-key), falling back to Anthropic.
const GROUP: &str = r#"{"model_list": [
  {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-oa"}},
  {"model_name": "gpt-4o", "litellm_params": {"model": "azure/prod-4o", "api_key": "az-key", "api_base": "https://r.openai.azure.com", "api_version": "2024-10-21"}, "model_info": {"id": "azure-4o"}},
  {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_key": "sk-ant"}}],
  "router_settings": {"fallbacks": [{"gpt-4o": ["claude"]}]},
  "general_settings": {"master_key": "sk-router-master"}}"#;

#[test]
fn a_groups_request_leaves_the_model_and_path_to_each_attempt() {
    let config = compile_test(GROUP).expect("compiles");
    let body = r#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
    let forward = forward(&config, body);
    assert!(forward.failover);
    assert_eq!(
        upstream(&forward),
        pairs(&[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "router.local"),
            ("content-type", "application/json"),
            ("content-length", "86"),
            ("x-llm-cluster", "group_gpt-4o"),
            ("anthropic-version", "2099-01-01"),
            ("user-agent", "OpenAI/Python"),
        ])
    );
    // usage is asked for once, here (every member's provider takes it)
    assert_eq!(
        upstream_body(&forward, body).as_deref(),
        Some(r#"{"model":"gpt-4o","stream":true,"messages":[],"stream_options":{"include_usage":true}}"#)
    );
}

#[test]
fn each_attempt_sets_its_deployments_request_whatever_the_last_one_set() {
    let config = compile_test(GROUP).expect("compiles");
    let body = r#"{"model":"gpt-4o","messages":[]}"#;
    let attempt = |id: &str| {
        on_attempt(
            &config,
            id,
            b"/v1/chat/completions?x=1",
            body.as_bytes(),
            Earlier::ProviderPath,
        )
    };
    // (deployment, the changes, the body sent)
    let rows: [(&str, &[(&str, Option<&str>)], &str); 3] = [
        (
            "gpt-4o#1",
            &[
                ("x-api-key", None),
                ("api-key", None),
                ("x-goog-api-key", None),
                (":path", Some("/v1/chat/completions?x=1")),
                ("authorization", Some("Bearer sk-oa")),
                ("content-length", Some("32")),
            ],
            body,
        ),
        (
            "azure-4o",
            &[
                ("authorization", None),
                ("x-api-key", None),
                ("x-goog-api-key", None),
                (
                    ":path",
                    Some("/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21&x=1"),
                ),
                ("api-key", Some("az-key")),
                ("content-length", Some("33")),
            ],
            r#"{"model":"prod-4o","messages":[]}"#,
        ),
        (
            "claude#1",
            &[
                ("authorization", None),
                ("api-key", None),
                ("x-goog-api-key", None),
                (":path", Some("/v1/chat/completions?x=1")),
                ("x-api-key", Some("sk-ant")),
                ("anthropic-version", Some("2023-06-01")),
                ("content-length", Some("43")),
            ],
            r#"{"model":"claude-sonnet-4-5","messages":[]}"#,
        ),
    ];
    for (id, changes, sent) in rows {
        let attempt = attempt(id).unwrap_or_else(|r| panic!("{id}: {}", String::from_utf8_lossy(&r.body)));
        // Each header is changed once, so the order of the changes does not matter.
        let got: BTreeSet<(&str, Option<String>)> = attempt
            .header_changes
            .iter()
            .map(|(n, v)| (*n, v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())))
            .collect();
        let expected: BTreeSet<(&str, Option<String>)> =
            changes.iter().map(|(n, v)| (*n, v.map(str::to_owned))).collect();
        assert_eq!(attempt.header_changes.len(), got.len(), "{id}: a header changed twice");
        assert_eq!(got, expected, "{id}");
        let edited = attempt.body_edit.map(|e| e.apply(body.as_bytes()));
        assert_eq!(edited.as_deref().unwrap_or(body.as_bytes()), sent.as_bytes(), "{id}");
    }
    // an endpoint that is not the model's group's is refused, not sent
    let reply = on_attempt(
        &config,
        "claude#1",
        b"/v1/chat/completions",
        br#"{"model":"claude"}"#,
        Earlier::ProviderPath,
    );
    assert_eq!(reply.map(|_| ()).map_err(|r| r.status), Err(503));
    assert_eq!(attempt("nosuch").map(|_| ()).map_err(|r| r.status), Err(503));
    // the first attempt has the client's headers: no earlier provider's
    // credentials to remove, and the path and length only where they
    // change; after attempts that kept the client's path, the credentials
    // and length are set again but the path only where it changes. The
    // first attempt to change the path keeps the client's.
    let changes = |id: &str, earlier| {
        let attempt = on_attempt(&config, id, b"/v1/chat/completions", body.as_bytes(), earlier).expect("sent");
        let names = attempt.header_changes.iter().map(|(n, _)| *n).collect::<BTreeSet<_>>();
        assert_eq!(
            names.len(),
            attempt.header_changes.len(),
            "{id}: a header changed twice"
        );
        (names, attempt.keep_client_path)
    };
    // a retry sets every credential and the length again
    let azure_retry = &[
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        ":path",
        "api-key",
        "content-length",
    ][..];
    let openai_retry = &[
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "authorization",
        "content-length",
    ][..];
    let openai_after_a_path = &[
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        ":path",
        "authorization",
        "content-length",
    ][..];
    let rows: [(&str, Earlier, &[&str], bool); 6] = [
        (
            "azure-4o",
            Earlier::Nothing,
            &[":path", "api-key", "content-length"],
            true,
        ),
        ("gpt-4o#1", Earlier::Nothing, &["authorization"], false),
        ("azure-4o", Earlier::ClientPath, azure_retry, true),
        ("gpt-4o#1", Earlier::ClientPath, openai_retry, false),
        ("azure-4o", Earlier::ProviderPath, azure_retry, false),
        ("gpt-4o#1", Earlier::ProviderPath, openai_after_a_path, false),
    ];
    for (id, earlier, names, keep) in rows {
        let names = names.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(changes(id, earlier), (names, keep), "{id} after {earlier:?}");
    }
}

#[test]
fn attempt_statuses_and_group_answers() {
    let rows: [(&[u8], AttemptOutcome); 6] = [
        (b"200", AttemptOutcome::Answered),
        (b"400", AttemptOutcome::Answered),
        (b"401", AttemptOutcome::Answered),
        (b"429", AttemptOutcome::RateLimited),
        (b"500", AttemptOutcome::Failed),
        (b"503", AttemptOutcome::Failed),
    ];
    for (status, outcome) in rows {
        assert_eq!(attempt_outcome(status), outcome, "{}", String::from_utf8_lossy(status));
    }
    let config = compile_test(GROUP).expect("compiles");
    let answer = |pairs: &[(&str, &str)]| {
        let block = headers(pairs);
        let GroupResponse {
            slot,
            upstream_model,
            provider_status,
        } = group_response(&config, &block, "gpt-4o");
        (slot, upstream_model, provider_status.map(<[u8]>::to_vec))
    };
    assert_eq!(
        answer(&[(":status", "200"), (DEPLOYMENT_HEADER, "azure-4o")]),
        (Some(1), Some("prod-4o".to_owned()), None)
    );
    assert_eq!(
        answer(&[
            (":status", "503"),
            (DEPLOYMENT_HEADER, "claude#1"),
            (UPSTREAM_STATUS_HEADER, "429")
        ]),
        (Some(2), Some("claude-sonnet-4-5".to_owned()), Some(b"429".to_vec()))
    );
    // Envoy's own 503 (no attempt answered); a status other than 429 is not restored
    assert_eq!(
        answer(&[(":status", "503"), (UPSTREAM_STATUS_HEADER, "200")]),
        (None, None, None)
    );
}

#[test]
fn the_seed_requests_are_forwarded_as_the_spec_says() {
    let config = compile_test(SEED).expect("seed compiles");
    let groq_body = r#"{"messages":[{"role":"user","content":"hi"}], "model": "groq/llama3-8b-8192"}"#;
    let groq_upstream = r#"{"messages":[{"role":"user","content":"hi"}], "model": "llama3-8b-8192"}"#;
    let groq = forward(&config, groq_body);
    // The client's credentials and routing header are gone; the provider's are in.
    assert_eq!(
        upstream(&groq),
        pairs(&[
            (":method", "POST"),
            (":path", "/openai/v1/chat/completions"),
            (":authority", "router.local"),
            ("content-type", "application/json"),
            ("anthropic-version", "2099-01-01"),
            ("user-agent", "OpenAI/Python"),
            ("authorization", "Bearer gsk-test"),
            ("content-length", &groq_upstream.len().to_string()),
            ("x-llm-cluster", "groq"),
        ])
    );
    assert_eq!(upstream_body(&groq, groq_body).as_deref(), Some(groq_upstream));

    let anthropic_body = r#"{"model":"anthropic/claude-3-sonnet-20240229"}"#;
    let anthropic_upstream = r#"{"model":"claude-3-sonnet-20240229"}"#;
    let anthropic = forward(&config, anthropic_body);
    assert_eq!(
        upstream(&anthropic),
        pairs(&[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "router.local"),
            ("content-type", "application/json"),
            ("user-agent", "OpenAI/Python"),
            ("x-api-key", "sk-ant-test"),
            ("anthropic-version", "2023-06-01"),
            ("content-length", &anthropic_upstream.len().to_string()),
            ("x-llm-cluster", "anthropic"),
        ])
    );
    assert_eq!(
        upstream_body(&anthropic, anthropic_body).as_deref(),
        Some(anthropic_upstream)
    );

    let openai = forward(&config, r#"{"model":"fo::hi::static::hi"}"#);
    assert_eq!(openai.body_edit, None, "the model is unchanged, so is the body");
    assert_eq!(
        upstream(&openai),
        pairs(&[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "router.local"),
            ("content-type", "application/json"),
            ("content-length", "999"),
            ("anthropic-version", "2099-01-01"),
            ("user-agent", "OpenAI/Python"),
            ("authorization", "Bearer sk-openai-test"),
            ("x-llm-cluster", "openai"),
        ])
    );
}

#[test]
fn streamed_chat_requests_ask_for_usage_and_say_so() {
    let seed = compile_test(SEED).expect("seed compiles");
    let off = compile_test(&SEED.replacen('{', r#"{"inject_stream_usage": false,"#, 1)).expect("compiles");
    let groq_off = compile_test(&SEED.replacen('{', r#"{"providers": {"groq": {"inject_stream_usage": false}},"#, 1))
        .expect("compiles");
    let request = |path: &str| {
        let h = headers(&[
            (":method", "POST"),
            (":path", path),
            ("authorization", "Bearer sk-router-master"),
            ("accept-encoding", "gzip, br"),
        ]);
        match on_request_head(&seed, h, false, &|| 0) {
            HeadVerdict::ReadBody(pending) => pending,
            HeadVerdict::Reply(r) => panic!("replied {}", r.status),
        }
    };
    let streamed = r#"{"model":"groq/llama3-8b-8192","stream":true}"#;
    // (configuration, path, body, injected)
    let rows = [
        (&seed, "/v1/chat/completions", streamed, true),
        (&seed, "/v1/completions", streamed, true),
        (
            &seed,
            "/v1/chat/completions",
            r#"{"model":"groq/llama3-8b-8192"}"#,
            false,
        ),
        (
            &seed,
            "/v1/messages",
            r#"{"model":"anthropic/claude","stream":true}"#,
            false,
        ),
        (&seed, "/v1/responses", streamed, false),
        (&off, "/v1/chat/completions", streamed, false),
        (&groq_off, "/v1/chat/completions", streamed, false),
    ];
    for (config, path, body, injected) in rows {
        let Decision::Forward(forward) = on_request_body(config, request(path), body.as_bytes()) else {
            panic!("{path} {body} not forwarded");
        };
        assert_eq!(forward.usage_injected, injected, "{path} {body}");
        let upstream = forward
            .body_edit
            .clone()
            .map_or(body.as_bytes().to_vec(), |edit| edit.apply(body.as_bytes()));
        let json: serde_json::Value = serde_json::from_slice(&upstream).expect("json");
        assert_eq!(
            json["stream_options"]["include_usage"] == true,
            injected,
            "{path} {body}"
        );
        let length = forward.header_changes.iter().find(|(n, _)| *n == "content-length");
        let expected_length = forward.body_edit.is_some().then(|| upstream.len().to_string());
        assert_eq!(
            length.and_then(|(_, v)| v.as_deref().map(|v| String::from_utf8_lossy(v).into_owned())),
            expected_length,
            "{path} {body}"
        );
        // The provider is asked not to compress, so the usage can be read.
        let encoding = forward.header_changes.iter().find(|(n, _)| *n == "accept-encoding");
        assert_eq!(
            encoding,
            Some(&("accept-encoding", Some(Cow::Borrowed(&b"identity"[..]))))
        );
        assert_eq!(forward.requested_model, json_model(body));
    }
}

fn json_model(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).expect("json");
    json["model"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn error_mapping() {
    let config = compile_test(
        r#"{"model_list": [
            {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_key": "os.environ/UNSET_KEY"}},
            {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "gsk-secret-value"}}],
          "max_body_bytes": 64}"#,
    )
    .expect("compiles");
    let rows: &[(&str, u32, &str, Option<&str>)] = &[
        (r#"{"model":"openai/gpt-4o"}"#, 404, "model_not_found", Some("model")),
        (r#"{"model":"groq/"}"#, 400, "invalid_request_error", Some("model")),
        (
            r#"{"model":"anthropic/claude"}"#,
            503,
            "provider_unavailable",
            Some("model"),
        ),
        (r#"{"model":"groq/x""#, 400, "invalid_request_error", None),
        (r#"["groq/x"]"#, 400, "invalid_request_error", None),
        (r#"{"messages":[]}"#, 400, "invalid_request_error", Some("model")),
        (r#"{"model":7}"#, 400, "invalid_request_error", Some("model")),
        (
            r#"{"model":"groq/a","model":"groq/b"}"#,
            400,
            "invalid_request_error",
            Some("model"),
        ),
        (
            r#"{"model":"groq/x","pad":"................................................"}"#,
            413,
            "request_too_large",
            None,
        ),
    ];
    for (body, status, code, param) in rows {
        let Decision::Reply(reply) = on_request_body(&config, chat(), body.as_bytes()) else {
            panic!("forwarded {body}");
        };
        let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("error bodies are JSON");
        assert_eq!(reply.status, *status, "{body}");
        assert_eq!(json["error"]["code"], *code, "{body}");
        assert_eq!(json["error"]["param"].as_str(), *param, "{body}");
        assert!(json["error"]["message"].is_string() && json["error"]["type"].is_string());
        let text = String::from_utf8_lossy(&reply.body);
        assert!(
            !text.contains("gsk-secret-value") && !text.contains("UNSET_KEY"),
            "{text}"
        );
    }
}

#[test]
fn not_found_names_the_model() {
    let config = compile_test(SEED).expect("seed compiles");
    let Decision::Reply(reply) = on_request_body(&config, chat(), br#"{"model":"openai/gpt-4o"}"#) else {
        panic!("forwarded");
    };
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
    assert!(json["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("openai/gpt-4o")));
}

#[test]
fn upstream_paths() {
    let config = compile_test(
        r#"{"model_list": [
          {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
          {"model_name": "v1", "litellm_params": {"model": "openai/m", "api_key": "k", "api_base": "http://h:1/v1"}},
          {"model_name": "root", "litellm_params": {"model": "openai/m", "api_key": "k", "api_base": "http://h:1"}},
          {"model_name": "v2", "litellm_params": {"model": "openai/m", "api_key": "k", "api_base": "http://h:1/api/v2/"}},
          {"model_name": "az", "litellm_params": {"model": "azure/my gpt", "api_key": "k", "api_base": "https://r.openai.azure.com", "api_version": "2024-10-21"}},
          {"model_name": "az-default", "litellm_params": {"model": "azure/d", "api_key": "k", "api_base": "https://r.openai.azure.com/"}}]}"#,
    )
    .expect("compiles");
    let rows = [
        ("groq/x", "/v1/chat/completions", "/openai/v1/chat/completions"),
        ("groq/x", "/chat/completions", "/openai/v1/chat/completions"),
        ("v1", "/v1/chat/completions", "/v1/chat/completions"),
        ("v1", "/v1beta/models", "/v1/v1beta/models"),
        ("root", "/v1/embeddings?x=1", "/embeddings?x=1"),
        ("v2", "/v1", "/api/v2"),
        (
            "az",
            "/v1/chat/completions",
            "/openai/deployments/my%20gpt/chat/completions?api-version=2024-10-21",
        ),
        (
            "az",
            "/v1/embeddings?user=1",
            "/openai/deployments/my%20gpt/embeddings?api-version=2024-10-21&user=1",
        ),
        (
            "az-default",
            "/chat/completions",
            "/openai/deployments/d/chat/completions?api-version=2025-02-01-preview",
        ),
    ];
    for (model, path, expected) in rows {
        let route = config.router.route(model).expect("routes");
        let upstream = upstream_path(path.as_bytes(), route.endpoint.unwrap(), &route.upstream_model);
        assert_eq!(
            String::from_utf8_lossy(upstream.as_deref().unwrap_or(path.as_bytes())),
            expected,
            "{model} {path}"
        );
        assert_eq!(upstream.is_none(), path == expected, "{model} {path}");
    }
}

#[test]
fn key_comparison() {
    assert!(constant_time_eq(b"sk-abc", b"sk-abc"));
    assert!(!constant_time_eq(b"sk-ab", b"sk-abc"));
    assert!(!constant_time_eq(b"sk-abcd", b"sk-abc"));
    assert!(!constant_time_eq(b"", b"sk-abc"));
    assert!(!constant_time_eq(b"sk-abd", b"sk-abc"));
}

#[test]
fn each_provider_gets_its_own_request_shape() {
    let config = compile_test(
        r#"{"model_list": [
          {"model_name": "gpt-4o", "litellm_params": {"model": "azure/gpt-4o-prod", "api_base": "https://my-endpoint.openai.azure.com/", "api_version": "2024-10-21", "api_key": "azure-key"}},
          {"model_name": "llama", "litellm_params": {"model": "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", "api_base": "http://vllm.internal:8000/v1"}},
          {"model_name": "*", "litellm_params": {"model": "*"}}]}"#,
    )
    .expect("compiles");
    let common = [
        (":method", "POST"),
        (":authority", "router.local"),
        ("content-type", "application/json"),
        ("user-agent", "OpenAI/Python"),
        ("anthropic-version", "2099-01-01"),
    ];
    // (request model, upstream path, cluster, credentials, upstream model)
    let rows: &[(&str, &str, &str, &[(&str, &str)], &str)] = &[
        (
            "gpt-4o",
            "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
            "https_my-endpoint.openai.azure.com_443",
            &[("api-key", "azure-key")],
            "gpt-4o-prod",
        ),
        (
            "llama",
            "/v1/chat/completions",
            "http_vllm.internal_8000",
            &[],
            "meta-llama/Llama-3.1-8B-Instruct",
        ),
        (
            "gemini-2.0-flash",
            "/v1beta/openai/chat/completions",
            "gemini",
            &[("authorization", "Bearer gemini-test")],
            "gemini-2.0-flash",
        ),
    ];
    for &(model, path, cluster, credentials, upstream_model) in rows {
        let body = format!(r#"{{"model":"{model}","messages":[]}}"#);
        let Decision::Forward(forward) = on_request_body(&config, chat(), body.as_bytes()) else {
            panic!("{model} is routed");
        };
        let edited = upstream_body(&forward, &body);
        // An unedited body keeps the client's content-length.
        let length = edited
            .as_ref()
            .map_or("999".to_owned(), |edited| edited.len().to_string());
        let edited = edited.unwrap_or_else(|| body.clone());
        let mut expected: Vec<(&str, &str)> = common.to_vec();
        expected.extend([(":path", path), ("x-llm-cluster", cluster)]);
        expected.extend(credentials);
        expected.push(("content-length", &length));
        assert_eq!(upstream(&forward), pairs(&expected), "{model}");
        assert_eq!(json_model(&edited), upstream_model, "{model}");
    }
}

#[test]
fn a_skipped_model_is_named_with_the_reason_not_as_unknown() {
    let config = compile_test(
        r#"{"model_list": [
          {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}},
          {"model_name": "claude-bedrock", "litellm_params": {"model": "bedrock/anthropic.claude-3"}}]}"#,
    )
    .expect("compiles");
    let reply = |model: &str| match on_request_body(&config, chat(), format!(r#"{{"model":"{model}"}}"#).as_bytes()) {
        Decision::Reply(reply) => reply,
        Decision::Forward(_) => panic!("{model} forwarded"),
    };
    let skipped = reply("claude-bedrock");
    assert_eq!(
        (skipped.status, skipped.error),
        (400, Some(ErrorKind::ModelNotSupported))
    );
    let body: serde_json::Value = serde_json::from_slice(&skipped.body).expect("json");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("claude-bedrock") && message.contains("SigV4"),
        "{message}"
    );
    assert_eq!(body["error"]["code"], "model_not_supported");
    assert_eq!(reply("nosuch").status, 404);
}

/// LiteLLM's own oai_misc_config: a skipped exact model_name beside `*`.
/// LiteLLM routes an exact name before any pattern, so its request is
/// answered here, never sent to the pattern's provider; a served exact name
/// beside a skipped one of the same pattern still goes.
#[test]
fn a_skipped_exact_name_wins_over_a_pattern() {
    let config = compile_test(
        r#"{"model_list": [
          {"model_name": "*", "litellm_params": {"model": "openai/*", "api_key": "k"}},
          {"model_name": "bedrock/batch-claude", "litellm_params": {"model": "bedrock/us.anthropic.claude-haiku"}},
          {"model_name": "rerank", "litellm_params": {"model": "cohere/rerank-english-v3.0", "api_base": "https://api.cohere.ai"}},
          {"model_name": "foundry-claude", "litellm_params": {"model": "azure_ai/claude-haiku-4-5", "api_base": "https://x.services.ai.azure.com"}},
          {"model_name": "foundry-llama", "litellm_params": {"model": "azure_ai/llama-4", "api_base": "https://x.services.ai.azure.com", "api_key": "k"}}]}"#,
    )
    .expect("compiles");
    let cases: &[(&str, Option<&str>)] = &[
        ("bedrock/batch-claude", Some("SigV4")),
        ("rerank", Some("Cohere's own API")),
        ("foundry-claude", Some("Anthropic's Messages API")),
        ("foundry-llama", None),
        ("gpt-4o", None),
    ];
    for (model, reason) in cases {
        match (
            on_request_body(&config, chat(), format!(r#"{{"model":"{model}"}}"#).as_bytes()),
            reason,
        ) {
            (Decision::Reply(reply), Some(reason)) => {
                let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert_eq!(body["error"]["code"], "model_not_supported", "{model}");
                assert!(
                    message.contains(model) && message.contains(reason),
                    "{model}: {message}"
                );
            }
            (Decision::Forward(_), None) => {}
            (Decision::Reply(reply), None) => panic!("{model}: answered {}", reply.status),
            (Decision::Forward(_), Some(_)) => panic!("{model}: forwarded"),
        }
    }
}

/// A skipped entry is a route like any other: exact names first, then the
/// most specific pattern (the first listed on a tie), whether served or not;
/// of entries sharing a name, a served one wins. `GET /v1/models` lists the
/// served names only, and knows no model a skipped entry wins.
#[test]
fn skipped_entries_are_ranked_as_any_route() {
    let config = compile_test(
        r#"{"model_list": [
          {"model_name": "azure/*", "litellm_params": {"model": "azure/*", "api_base": "https://r.openai.azure.com", "api_key": "k"}},
          {"model_name": "azure/claude-*", "litellm_params": {"model": "bedrock/anthropic.claude-*"}},
          {"model_name": "openai/*", "litellm_params": {"model": "vertex_ai/*"}},
          {"model_name": "openai/gpt-*", "litellm_params": {"model": "openai/gpt-*", "api_key": "k"}},
          {"model_name": "tie-*", "litellm_params": {"model": "watsonx/*"}},
          {"model_name": "*-tie", "litellm_params": {"model": "groq/*", "api_key": "k"}},
          {"model_name": "duo", "litellm_params": {"model": "bedrock/duo"}},
          {"model_name": "duo", "litellm_params": {"model": "groq/duo", "api_key": "k"}},
          {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_base": "not-a-url"}}],
         "router_settings": {"model_group_alias": {"claude-alias": "azure/claude-x"}}}"#,
    )
    .expect("compiles");
    // (request model, Ok(cluster the request is sent to) or Err(status, a
    // fragment of the reason))
    let rows: &[(&str, Result<&str, (u32, &str)>)] = &[
        // a skipped pattern more specific than a served one wins
        ("azure/claude-x", Err((400, "SigV4"))),
        ("azure/gpt-4o", Ok("https_r.openai.azure.com_443")),
        // a served pattern more specific than a skipped one wins
        ("openai/gpt-4o", Ok("openai")),
        ("openai/o1", Err((400, "OAuth"))),
        // equally specific: the first listed
        ("tie-x-tie", Err((400, "IAM"))),
        ("x-tie", Ok("groq")),
        // a name with a served entry routes to it
        ("duo", Ok("groq")),
        // a bare name reaches a skipped pattern through its family
        ("claude-3-5-haiku", Err((400, "not an http(s) URL"))),
        // an alias routes as its target
        ("claude-alias", Err((400, "SigV4"))),
        ("nosuch", Err((404, "is not served by this router"))),
    ];
    for (model, expected) in rows {
        let got = match on_request_body(&config, chat(), format!(r#"{{"model":"{model}"}}"#).as_bytes()) {
            Decision::Forward(forward) => Ok(upstream(&forward)
                .into_iter()
                .find(|(name, _)| name == "x-llm-cluster")
                .map(|(_, cluster)| cluster)
                .unwrap_or_default()),
            Decision::Reply(reply) => {
                let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
                Err((
                    reply.status,
                    body["error"]["message"].as_str().unwrap_or_default().to_owned(),
                ))
            }
        };
        match (&got, expected) {
            (Ok(cluster), Ok(want)) => assert_eq!(cluster, want, "{model}"),
            (Err((status, message)), Err((want, fragment))) => {
                assert_eq!(status, want, "{model}: {message}");
                assert!(
                    message.contains(model) && message.contains(fragment),
                    "{model}: {message}"
                );
            }
            _ => panic!("{model}: {got:?}"),
        }
    }
    let models: serde_json::Value = serde_json::from_slice(&config.models_reply).expect("json");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .map(|data| data.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["azure/*", "openai/gpt-*", "*-tie", "duo"]);
    assert!(config.router.model_object("azure/claude-x").is_none());
}

/// A table with every route kind: exact names, a pattern, a model group,
/// an alias, the bare-name family, an access group; and keys of each kind.
const KEYED: &str = r#"{"model_list": [
  {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}, "model_info": {"access_groups": ["beta"]}},
  {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_key": "k"}},
  {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
  {"model_name": "duo", "litellm_params": {"model": "openai/a", "api_key": "k"}},
  {"model_name": "duo", "litellm_params": {"model": "openai/b", "api_key": "k"}},
  {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_key": "k"}}],
  "router_settings": {"model_group_alias": {"smart": "gpt-4o"}},
  "general_settings": {"master_key": "sk-master"},
  "keys": [
    {"key_alias": "claude-only", "key": "sk-claude", "models": ["anthropic/*"]},
    {"key_alias": "by-name", "key": "sk-name", "models": ["gpt-4o", "duo"], "team_id": "team-a"},
    {"key_alias": "by-group", "key": "sk-group", "models": ["beta"]},
    {"key_alias": "everything", "key": "sk-all", "models": ["all-proxy-models"]},
    {"key_alias": "no-list", "key": "sk-open"},
    {"key_alias": "imported", "token": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", "models": ["groq/*"]},
    {"key_alias": "blocked", "key": "sk-blocked", "blocked": true},
    {"key_alias": "expiring", "key": "sk-expiring", "expires": "2027-01-01T00:00:00Z"}]}"#;

const EXPIRY: u64 = 1_798_761_600;

fn keyed_head(config: &Config, header: (&str, &str), now: u64) -> Result<Caller, (u32, String)> {
    let h = post(&[header]);
    match on_request_head(config, h, false, &|| now) {
        HeadVerdict::ReadBody(pending) => Ok(pending.caller),
        HeadVerdict::Reply(r) => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            Err((
                r.status,
                body["error"]["message"].as_str().unwrap_or_default().to_owned(),
            ))
        }
    }
}

#[test]
fn keys_are_looked_up_by_hash_and_refused_with_the_reason() {
    let config = compile_test(KEYED).expect("compiles");
    let alias = |caller: Caller| match caller {
        Caller::Key(i) => config.keys.keys[i].alias.clone(),
        other => format!("{other:?}"),
    };
    // (header, now, the caller's alias or the refusal's fragment)
    let rows: &[((&str, &str), u64, Result<&str, &str>)] = &[
        (("authorization", "Bearer sk-claude"), 0, Ok("claude-only")),
        (("x-api-key", "sk-name"), 0, Ok("by-name")),
        (("api-key", "sk-group"), 0, Ok("by-group")),
        (("authorization", "Bearer password"), 0, Ok("imported")),
        (("authorization", "Bearer sk-master"), 0, Ok("Master")),
        (("x-api-key", "sk-master"), 0, Ok("Master")),
        (
            ("authorization", "Bearer sk-nosuch"),
            0,
            Err("missing or invalid client key"),
        ),
        (("x-other", "sk-claude"), 0, Err("missing or invalid client key")),
        (
            ("authorization", "Bearer sk-blocked"),
            0,
            Err("key `blocked` is blocked"),
        ),
        (("authorization", "Bearer sk-expiring"), EXPIRY - 1, Ok("expiring")),
        (
            ("authorization", "Bearer sk-expiring"),
            EXPIRY,
            Err("key `expiring` has expired"),
        ),
    ];
    for (header, now, expected) in rows {
        let got = keyed_head(&config, *header, *now);
        match (got, expected) {
            (Ok(caller), Ok(name)) => assert_eq!(alias(caller), *name, "{header:?}"),
            (Err((status, message)), Err(fragment)) => {
                assert_eq!(status, 401, "{header:?}");
                assert!(message.contains(fragment), "{header:?}: {message}");
                assert!(!message.contains("sk-"), "no key in {message}");
            }
            (got, expected) => panic!("{header:?}: {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn a_keys_models_mean_what_they_mean_in_litellm() {
    let config = compile_test(KEYED).expect("compiles");
    let decide = |key: &str, model: &str| {
        let Ok(caller) = keyed_head(&config, ("authorization", key), 0) else {
            panic!("{key} refused");
        };
        let mut pending = chat();
        pending.caller = caller;
        match on_request_body(&config, pending, format!(r#"{{"model":"{model}"}}"#).as_bytes()) {
            Decision::Forward(_) => Ok(()),
            Decision::Reply(r) => Err((r.status, r.error)),
        }
    };
    let denied = Err((401, Some(ErrorKind::KeyModelAccessDenied)));
    // (key, model, allowed)
    let rows: &[(&str, &str, bool)] = &[
        ("Bearer sk-claude", "anthropic/claude-3-5-haiku", true),
        ("Bearer sk-claude", "claude-3-5-haiku", true), // a bare name reaching `anthropic/*`
        ("Bearer sk-claude", "groq/llama3", false),
        ("Bearer sk-claude", "gpt-4o", false),
        ("Bearer sk-name", "gpt-4o", true),
        ("Bearer sk-name", "smart", true), // an alias of gpt-4o
        ("Bearer sk-name", "duo", true),   // a model group
        ("Bearer sk-name", "openai/gpt-4o", false),
        ("Bearer sk-group", "gpt-4o", true), // access group `beta`
        ("Bearer sk-group", "duo", false),
        ("Bearer sk-all", "groq/x", true),
        ("Bearer sk-open", "duo", true),
        ("Bearer password", "groq/llama3", true),
        ("Bearer password", "anthropic/claude", false),
        ("Bearer sk-master", "groq/llama3", true),
    ];
    for &(key, model, allowed) in rows {
        let expected = if allowed { Ok(()) } else { denied };
        assert_eq!(decide(key, model), expected, "{key} {model}");
    }
    // Patterns match whole, not as LiteLLM's prefix: `anthropic/*` is no
    // licence for `anthropic-fake/x`, which is not served anyway.
    assert_eq!(
        decide("Bearer sk-claude", "anthropic-fake/x").map_err(|e| e.0),
        Err(404)
    );
}

#[test]
fn the_model_list_shows_what_a_key_may_call() {
    let config = compile_test(KEYED).expect("compiles");
    let list = |key: &str, path: &str| {
        let h = headers(&[(":method", "GET"), (":path", path), ("authorization", key)]);
        match on_request_head(&config, h, true, &|| 0) {
            HeadVerdict::Reply(r) => (
                r.status,
                serde_json::from_slice::<serde_json::Value>(&r.body).expect("json"),
            ),
            HeadVerdict::ReadBody(_) => panic!("answered locally"),
        }
    };
    let ids = |key: &str| -> Vec<String> {
        let (_, body) = list(key, "/v1/models");
        body["data"]
            .as_array()
            .expect("list")
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids("Bearer sk-name"), ["gpt-4o", "duo", "smart"]);
    assert_eq!(ids("Bearer sk-claude"), ["anthropic/*"]);
    assert_eq!(ids("Bearer sk-master").len(), 6);
    assert_eq!(ids("Bearer sk-open"), ids("Bearer sk-master"));
    assert_eq!(list("Bearer sk-claude", "/v1/models/gpt-4o").0, 404);
    assert_eq!(list("Bearer sk-name", "/v1/models/gpt-4o").0, 200);
}

#[test]
fn keys_without_a_master_key_still_need_a_key_and_none_at_all_need_none() {
    let only_keys = compile_test(
        r#"{"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}],
          "keys": [{"key": "sk-only"}]}"#,
    )
    .expect("compiles");
    assert!(keyed_head(&only_keys, ("x-other", "v"), 0).is_err());
    assert!(matches!(
        keyed_head(&only_keys, ("authorization", "Bearer sk-only"), 0),
        Ok(Caller::Key(0))
    ));
    let open = compile_test(
        r#"{"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}]}"#,
    )
    .expect("compiles");
    assert_eq!(keyed_head(&open, ("x-other", "v"), 0), Ok(Caller::Open));
}

#[test]
fn a_keyed_request_leaves_who_it_is_for_the_rate_limit_filters() {
    let config = compile_test(
        r#"{"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}}],
            "keys": [{"key_alias": "plain", "key": "sk-plain"},
                     {"key_alias": "a", "key": "sk-a", "team_id": "t", "max_budget": 1, "model_rpm_limit": {"gpt-4o": 2}},
                     {"key_alias": "b", "key": "sk-b", "team_id": "u"}],
            "teams": [{"team_id": "u", "max_budget": 5}]}"#,
    );
    let Ok(config) = config else {
        panic!("compiles: {config:?}");
    };
    let facts_read = |index: usize, requested: &str, alias_read: bool| -> Vec<(&str, String)> {
        let key = &config.keys.keys[index];
        key_facts(key, requested, "gpt-4o", alias_read)
            .into_iter()
            .flatten()
            .map(|(name, value)| (name, value.to_owned()))
            .collect()
    };
    let facts = |index: usize, requested: &str| facts_read(index, requested, true);
    let owned = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|&(n, v)| (n, v.to_owned())).collect()
    };
    use crate::contract::filter_state::*;
    assert_eq!(facts(0, "gpt-4o"), owned(&[(KEY_ALIAS, "plain")]));
    assert_eq!(
        facts(1, "gpt-4o"),
        owned(&[
            (KEY_ALIAS, "a"),
            (TEAM_ID, "t"),
            (BUDGET_KEY_ALIAS, "a"),
            (LIMITED_MODEL, "gpt-4o")
        ])
    );
    // Through an alias: the per-model limit knows the request by its model_name.
    assert_eq!(facts(1, "my-alias").last(), Some(&(LIMITED_MODEL, "gpt-4o".to_owned())));
    assert_eq!(
        facts(2, "gpt-4o"),
        owned(&[(KEY_ALIAS, "b"), (TEAM_ID, "u"), (BUDGET_TEAM_ID, "u")])
    );
    // No access log and no rate limit reads the alias and team: only the
    // budget and per-model descriptors are written.
    assert_eq!(facts_read(0, "gpt-4o", false), owned(&[]));
    assert_eq!(
        facts_read(1, "gpt-4o", false),
        owned(&[(BUDGET_KEY_ALIAS, "a"), (LIMITED_MODEL, "gpt-4o")])
    );
    assert_eq!(facts_read(2, "gpt-4o", false), owned(&[(BUDGET_TEAM_ID, "u")]));
}
