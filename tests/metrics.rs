//! The filter's counters in Envoy's /stats/prometheus, labelled from the
//! configuration only.

mod common;

use common::*;

fn scrape(stack: &Stack) -> Vec<String> {
    let body = stack.admin_get("/stats/prometheus").body;
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("llm_router_"))
        .map(str::to_owned)
        .collect()
}

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
    // The filter hands its counts to Envoy once a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut lines = scrape(&stack);
    while lines.iter().all(|l| !l.ends_with(" 51")) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        lines = scrape(&stack);
    }
    lines.sort();
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
