//! The response side, end to end in Envoy: token counters, latency
//! histograms and the access log against what the mocks reported, and the
//! client's bytes against what the provider sent (but the usage chunk the
//! filter asked for).

mod common;

use std::collections::BTreeMap;

use common::*;
use mock_provider::api::{self, Reply};
use mock_provider::{Provider, Received};
use serde_json::Value;

/// One request and what the client must see.
struct Case {
    name: &'static str,
    path: &'static str,
    provider: Provider,
    route: &'static str,
    body: &'static str,
    extra: &'static [(&'static str, &'static str)],
    /// The client asked for the usage chunk itself (or the reply is not a chat stream).
    client_sees_usage_chunk: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "OpenAI JSON",
        path: "/v1/chat/completions",
        provider: Provider::Groq,
        route: "groq/*",
        body: r#"{"messages":[{"role":"user","content":"hi"}],"model":"groq/llama3-8b-8192"}"#,
        extra: &[],
        client_sees_usage_chunk: true,
    },
    Case {
        name: "OpenAI SSE, usage asked for by the client",
        path: "/v1/chat/completions",
        provider: Provider::Groq,
        route: "groq/*",
        body: r#"{"model":"groq/llama3-8b-8192","stream":true,"stream_options":{"include_usage":true}}"#,
        extra: &[],
        client_sees_usage_chunk: true,
    },
    Case {
        name: "OpenAI SSE, usage asked for by the filter",
        path: "/v1/chat/completions",
        provider: Provider::Groq,
        route: "groq/*",
        body: r#"{"model":"groq/llama3-8b-8192","stream":true}"#,
        extra: &[],
        client_sees_usage_chunk: false,
    },
    Case {
        name: "OpenAI SSE, events split across TCP writes",
        path: "/v1/chat/completions",
        provider: Provider::OpenAi,
        route: "fo::*:static::*",
        body: r#"{"model":"fo::a::static::b","stream":true,"messages":[]}"#,
        extra: &[("x-mock-fault", "split")],
        client_sees_usage_chunk: false,
    },
    Case {
        name: "Anthropic JSON",
        path: "/v1/messages",
        provider: Provider::Anthropic,
        route: "anthropic/*",
        body: r#"{"model":"anthropic/claude-3-5-haiku","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#,
        extra: &[],
        client_sees_usage_chunk: true,
    },
    Case {
        name: "Anthropic SSE",
        path: "/v1/messages",
        provider: Provider::Anthropic,
        route: "anthropic/*",
        body: r#"{"model":"anthropic/claude-3-5-haiku","max_tokens":64,"messages":[],"stream":true}"#,
        extra: &[("accept-encoding", "gzip, deflate")],
        client_sees_usage_chunk: true,
    },
];

/// What the mock sent for `received`: it answers deterministically, so the
/// same request gives the same bytes.
fn provider_sent(provider: Provider, received: &Received) -> Vec<u8> {
    match api::answer(provider, &provider_key(provider), received) {
        Reply::Json { body, .. } => body,
        Reply::Events(events) => events.concat(),
    }
}

fn usage_chunk_removed(stream: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(stream);
    text.split_inclusive("\n\n")
        .filter(|event| !(event.contains(r#""choices":[]"#) && event.contains(r#""usage":{"#)))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn usage_latency_and_the_access_log_match_what_the_providers_sent() {
    let stack = Stack::start_default();
    // (route, provider, type) → tokens, as the mocks report them.
    let mut expected: BTreeMap<(String, String, &str), u64> = BTreeMap::new();
    let mut streams: BTreeMap<&str, u64> = BTreeMap::new();
    let mut responses: BTreeMap<&str, u64> = BTreeMap::new();
    let mut logged = Vec::new();
    for case in CASES {
        let mock = stack.mock(case.provider);
        let before = mock.requests();
        let mut request = Request::new("POST", case.path)
            .header("authorization", format!("Bearer {MASTER_KEY}"))
            .header("content-type", "application/json")
            .body(case.body);
        for (name, value) in case.extra {
            request = request.header(name, value);
        }
        let response = send(stack.listener, &request);
        assert_eq!(response.status(), 200, "{}: {}", case.name, response.text());
        let received = mock
            .received()
            .pop()
            .filter(|_| mock.requests() == before + 1)
            .expect("one request upstream");
        let upstream: Value = serde_json::from_slice(&received.body).expect("json upstream");
        let streamed = upstream["stream"] == true;
        if streamed && case.path == "/v1/chat/completions" {
            assert_eq!(
                upstream["stream_options"]["include_usage"], true,
                "{}: always asked for",
                case.name
            );
        }
        if case.extra.iter().any(|(n, _)| *n == "accept-encoding") {
            assert_eq!(received.header("accept-encoding"), Some("identity"), "{}", case.name);
        }
        // The client's bytes are the provider's, but the chunk the filter asked for.
        let sent = provider_sent(case.provider, &received);
        let client_expected = if case.client_sees_usage_chunk {
            sent.clone()
        } else {
            usage_chunk_removed(&sent)
        };
        if !case.client_sees_usage_chunk {
            assert_ne!(
                client_expected, sent,
                "{}: the provider did send a usage chunk",
                case.name
            );
        }
        if streamed {
            assert_eq!(
                response.text(),
                String::from_utf8_lossy(&client_expected),
                "{}",
                case.name
            );
        } else {
            // A JSON answer also echoes what arrived; the rest must be the same.
            let mut got = response.body_json();
            let mut want: Value = serde_json::from_slice(&sent).expect("json");
            got["mock"] = Value::Null;
            want["mock"] = Value::Null;
            assert_eq!(got, want, "{}", case.name);
        }
        let answer = api::answer_text(
            case.provider,
            upstream["model"].as_str().unwrap_or_default(),
            &provider_key(case.provider),
        );
        let usage = api::usage(&received.body, &answer);
        // Anthropic reports cache reads beside `input_tokens`; the filter counts them as input.
        let input = match case.provider {
            Provider::Anthropic => usage.input + usage.cached_input,
            _ => usage.input,
        };
        let key = |kind| (case.route.to_owned(), case.provider.name().to_owned(), kind);
        *expected.entry(key("input")).or_default() += input;
        *expected.entry(key("output")).or_default() += usage.output;
        *expected.entry(key("cached_input")).or_default() += usage.cached_input;
        *responses.entry(case.route).or_default() += 1;
        if streamed {
            *streams.entry(case.route).or_default() += 1;
        }
        logged.push((
            case,
            input,
            usage.output,
            upstream["model"].as_str().unwrap_or_default().to_owned(),
        ));
    }

    let total: u64 = responses.values().sum();
    let want: Vec<String> = expected
        .iter()
        .map(|((route, provider, kind), n)| {
            format!(r#"llm_router_tokens_total{{route="{route}",provider="{provider}",type="{kind}"}} {n}"#)
        })
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    let token_lines = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.starts_with("llm_router_tokens_total"))
            .cloned()
            .collect()
    };
    // Counters reach Envoy once a second and histograms at its stats flush:
    // wait for both, the tokens to the last one.
    let lines = scrape_until(&stack, |lines| {
        let counted: u64 = lines
            .iter()
            .filter(|l| l.starts_with("llm_router_time_to_first_token_ms_count"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        counted == total && token_lines(lines) == want_sorted
    });
    assert_eq!(token_lines(&lines), want_sorted);
    for (route, n) in &responses {
        let provider = CASES
            .iter()
            .find(|c| c.route == *route)
            .map(|c| c.provider.name())
            .unwrap_or_default();
        let count = format!(r#"llm_router_time_to_first_token_ms_count{{route="{route}",provider="{provider}"}} {n}"#);
        assert!(lines.contains(&count), "{count}\n{}", lines.join("\n"));
    }
    for (route, n) in &streams {
        let provider = CASES
            .iter()
            .find(|c| c.route == *route)
            .map(|c| c.provider.name())
            .unwrap_or_default();
        let count =
            format!(r#"llm_router_time_per_output_token_ms_count{{route="{route}",provider="{provider}"}} {n}"#);
        assert!(lines.contains(&count), "{count}\n{}", lines.join("\n"));
    }

    // One JSON access-log line per request, with the same numbers.
    let entries = stack.access_log_entries(CASES.len());
    for ((case, input, output, upstream_model), entry) in logged.iter().zip(&entries) {
        let requested: Value = serde_json::from_str(case.body).expect("json");
        assert_eq!(entry["model"], requested["model"], "{}: {entry}", case.name);
        assert_eq!(entry["route"], case.route, "{}: {entry}", case.name);
        assert_eq!(entry["provider"], case.provider.name(), "{}: {entry}", case.name);
        assert_eq!(
            entry["upstream_model"],
            upstream_model.as_str(),
            "{}: {entry}",
            case.name
        );
        assert_eq!(entry["input_tokens"], input.to_string(), "{}: {entry}", case.name);
        assert_eq!(entry["output_tokens"], output.to_string(), "{}: {entry}", case.name);
        let ttft: u64 = entry["time_to_first_token_ms"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("a number");
        assert!(ttft < 5_000, "{}: {entry}", case.name);
    }
}

/// A request with the master key that asks its mock for `fault`.
fn faulty(path: &str, fault: &str, body: &str) -> Request {
    Request::new("POST", path)
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("x-mock-fault", fault)
        .body(body)
}

/// The metrics, once they show one groq response without readable usage.
fn groq_usage_unknown_once(stack: &Stack) -> Vec<String> {
    let lines = scrape_until(stack, |lines| {
        lines.iter().any(|l| l.starts_with("llm_router_usage_unknown_total"))
    });
    assert!(
        lines.contains(&r#"llm_router_usage_unknown_total{route="groq/*",provider="groq"} 1"#.to_owned()),
        "{lines:?}"
    );
    lines
}

#[test]
fn a_response_the_filter_cannot_read_counts_as_unknown_usage() {
    let stack = Stack::start_default();
    // A provider error: no usage in it, passed on as it is.
    let request = faulty(
        "/v1/chat/completions",
        "429;retry-after=3",
        r#"{"model":"groq/llama3-8b-8192"}"#,
    );
    let response = send(stack.listener, &request);
    assert_eq!((response.status(), response.header("retry-after")), (429, Some("3")));
    assert_eq!(response.body_json()["error"]["type"], "rate_limit_error");
    let lines = groq_usage_unknown_once(&stack);
    assert!(
        !lines.iter().any(|l| l.starts_with("llm_router_tokens_total")),
        "{lines:?}"
    );
    // An error body is no first token: none is logged or counted.
    let entry = &stack.access_log_entries(1)[0];
    assert_eq!(entry["status"], 429, "{entry}");
    let ttft = entry["time_to_first_token_ms"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(ttft, None, "{entry}");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("llm_router_time_to_first_token_ms_count")),
        "{lines:?}"
    );
}

#[test]
fn a_compressed_response_passes_untouched_and_counts_as_unknown_usage() {
    let stack = Stack::start_default();
    let request = faulty(
        "/v1/chat/completions",
        "gzip",
        r#"{"model":"groq/llama3-8b-8192","stream":true}"#,
    );
    let response = send(stack.listener, &request);
    assert_eq!(
        (response.status(), response.header("content-encoding")),
        (200, Some("gzip"))
    );
    // The compressed bytes are the provider's, as it sent them.
    let received = stack.mock(Provider::Groq).received().pop().expect("upstream");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&response.body[..]), &mut unzipped).expect("gzip");
    assert_eq!(unzipped, provider_sent(Provider::Groq, &received));
    groq_usage_unknown_once(&stack);
}

#[test]
fn a_stream_cut_short_keeps_its_bytes_and_counts_what_it_reported() {
    let stack = Stack::start_default();
    let request = faulty(
        "/v1/messages",
        "cut-after=2",
        r#"{"model":"anthropic/claude-3-5-haiku","max_tokens":64,"stream":true}"#,
    );
    let response = client::send(stack.listener, &request).expect("a head");
    assert_eq!(response.status(), 200);
    assert!(!response.complete);
    let received = stack.mock(Provider::Anthropic).received().pop().expect("upstream");
    let Reply::Events(events) = api::answer(Provider::Anthropic, &provider_key(Provider::Anthropic), &received) else {
        panic!("a stream");
    };
    assert_eq!(response.body, events[..2].concat());
    // message_start's input usage was counted when the stream went away.
    let lines = scrape_until(&stack, |lines| lines.iter().any(|l| l.contains(r#"type="input""#)));
    let usage = api::usage(&received.body, "");
    let input = format!(
        r#"llm_router_tokens_total{{route="anthropic/*",provider="anthropic",type="input"}} {}"#,
        usage.input + usage.cached_input
    );
    assert!(lines.contains(&input), "{input}\n{lines:?}");
}

#[test]
fn without_access_log_facts_the_filter_writes_none_and_still_counts() {
    let plugin_config = shipped_plugin_config().replacen(
        "\"general_settings\"",
        "\"access_log_facts\": false,\n\"general_settings\"",
        1,
    );
    let stack = Stack::start(StackOptions {
        plugin_config,
        ..StackOptions::default()
    });
    let case = &CASES[0];
    let response = send(
        stack.listener,
        &Request::new("POST", case.path)
            .header("authorization", format!("Bearer {MASTER_KEY}"))
            .header("content-type", "application/json")
            .body(case.body),
    );
    assert_eq!(response.status(), 200, "{}", response.text());
    // The shipped access log still asks for every fact: Envoy finds none.
    let entries = stack.access_log_entries(1);
    let entry = &entries[0];
    for field in [
        "model",
        "route",
        "provider",
        "upstream_model",
        "input_tokens",
        "output_tokens",
        "time_to_first_token_ms",
        "cost_micro_usd",
    ] {
        assert!(
            entry[field].is_null() || entry[field] == "-",
            "{field} written: {entry}"
        );
    }
    assert_eq!(entry["upstream_cluster"], "groq", "{entry}");
    // The metrics do not depend on the facts.
    let lines = scrape_until(&stack, |lines| {
        lines
            .iter()
            .any(|l| l.starts_with(r#"llm_router_tokens_total{route="groq/*",provider="groq",type="output"}"#))
    });
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(r#"llm_router_time_to_first_token_ms_count{route="groq/*""#)),
        "{}",
        lines.join("\n")
    );
}
