//! The filter's counters in Envoy's /stats/prometheus, labelled from the
//! configuration only.

mod common;

use common::*;

#[test]
fn routed_requests_replies_and_bytes_are_counted_per_route_provider_and_code() {
    let stack = Stack::start_default();
    let groq = r#"{"model":"groq/llama3-8b-8192"}"#;
    for body in [
        groq,
        groq,
        r#"{"model":"anthropic/claude-3-haiku"}"#,
        r#"{"model":"nope"}"#,
        "{",
    ] {
        stack.chat(body);
    }
    stack.post("/v1/chat/completions", &[], groq);
    // A flood of made-up models adds no series.
    for i in 0..50 {
        stack.chat(&format!(r#"{{"model":"made-up-{i}"}}"#));
    }
    let lines: Vec<String> = scrape_until(&stack, |lines| lines.iter().any(|l| l.ends_with(" 51")))
        .into_iter()
        .filter(|l| !l.starts_with("llm_router_tokens_total") && !l.starts_with("llm_router_time_"))
        .collect();
    // Bytes as received from the client, before the model is rewritten.
    let upstream_groq_bytes = groq.len() * 2;
    assert_eq!(
        lines,
        [
            r#"llm_router_local_replies_total{code="invalid_api_key"} 1"#.to_owned(),
            r#"llm_router_local_replies_total{code="invalid_request_error"} 1"#.to_owned(),
            r#"llm_router_local_replies_total{code="model_not_found"} 51"#.to_owned(),
            format!(
                r#"llm_router_request_body_bytes_total{{route="anthropic/*",provider="anthropic"}} {}"#,
                r#"{"model":"anthropic/claude-3-haiku"}"#.len()
            ),
            format!(r#"llm_router_request_body_bytes_total{{route="groq/*",provider="groq"}} {upstream_groq_bytes}"#),
            r#"llm_router_requests_total{route="anthropic/*",provider="anthropic"} 1"#.to_owned(),
            r#"llm_router_requests_total{route="groq/*",provider="groq"} 2"#.to_owned(),
        ]
    );
}
