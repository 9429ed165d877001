//! Trust boundaries, end to end in a real Envoy: whatever the client sends,
//! the routing header is the filter's, client credentials stay behind, and no
//! key shows in a reply or a log line.

mod common;

use common::*;
use mock_provider::Provider;

#[test]
fn header_values_that_are_not_utf8_do_not_break_the_filter() {
    let stack = Stack::start_default();
    let body = r#"{"model":"groq/llama3-8b-8192"}"#;
    let request = || {
        Request::new("POST", "/v1/chat/completions")
            .header("content-type", "application/json")
            .body(body)
    };
    let bad_key = send(
        stack.listener,
        &request().header("authorization", b"Bearer \xff\xfe\x80"),
    );
    assert_eq!(bad_key.status(), 401);
    let bad_other = request()
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("x-note", b"caf\xe9")
        .header("x-api-key", b"\xc3\x28");
    let routed = send(stack.listener, &bad_other);
    assert_eq!(routed.status(), 200, "{}", routed.body_json());
    // The filter (and so the VM) is still up for the next request.
    assert_eq!(stack.chat(body).status(), 200);
}

#[test]
fn repeated_credentials_and_routing_headers_are_all_removed() {
    let stack = Stack::start_default();
    let bearer = format!("Bearer {MASTER_KEY}");
    // Envoy joins repeated `authorization` headers into one value, which is no
    // valid key: ambiguous client credentials are refused, not guessed at.
    let ambiguous = stack.post(
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer client-first"),
            ("authorization", &bearer),
        ],
        r#"{"model":"anthropic/claude-3-haiku"}"#,
    );
    assert_eq!(error_code(&ambiguous), (401, "invalid_api_key".to_owned()));
    let response = stack.post(
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer),
            ("x-api-key", "client-1"),
            ("X-Api-Key", "client-2"),
            ("api-key", "client-3"),
            ("x-goog-api-key", "client-4"),
            ("x-llm-cluster", "openai"),
            ("x-llm-cluster", "anthropic"),
        ],
        r#"{"model":"anthropic/claude-3-haiku"}"#,
    );
    let answer = response.body_json();
    assert_eq!(response.status(), 200, "{answer}");
    let seen: Vec<(String, String)> = answer["mock"]["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter_map(|h| Some((h[0].as_str()?.to_owned(), h[1].as_str()?.to_owned())))
        .filter(|(n, _)| {
            [
                "authorization",
                "x-api-key",
                "api-key",
                "x-goog-api-key",
                "x-llm-cluster",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert_eq!(seen, [("x-api-key".to_owned(), key_fingerprint(Provider::Anthropic))]);
}

#[test]
fn keys_never_show_in_replies_or_logs() {
    let mut options = StackOptions::default();
    options.env.retain(|(name, _)| *name != "OPENAI_API_KEY");
    let stack = Stack::start(options);
    let bodies = [
        r#"{"model":"groq/llama3-8b-8192"}"#,
        r#"{"model":"fo::hi::static::hi"}"#,
        r#"{"model":"nope"}"#,
        r#"{"model":"groq/"}"#,
        r#"{"model":"#,
    ];
    let mut replies = String::new();
    for body in bodies {
        replies.push_str(&String::from_utf8_lossy(&stack.chat(body).body));
    }
    let wrong = stack.post(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-guess")],
        r#"{"model":"groq/x"}"#,
    );
    replies.push_str(&String::from_utf8_lossy(&wrong.body));
    // Counters reach Envoy once a second: look once every request is
    // counted, as routed or as a local reply.
    scrape_until(&stack, |lines| {
        let counted: u64 = lines
            .iter()
            .filter(|l| l.starts_with("llm_router_requests_total") || l.starts_with("llm_router_local_replies_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        counted == bodies.len() as u64 + 1
    });
    let stats = String::from_utf8_lossy(&stack.admin_get("/stats/prometheus").body).into_owned();
    let log = stack.log_text();
    for secret in [
        provider_key(Provider::Groq),
        provider_key(Provider::Anthropic),
        MASTER_KEY.to_owned(),
    ] {
        for (what, text) in [("a reply", &replies), ("Envoy's log", &log), ("the stats", &stats)] {
            assert!(!text.contains(&secret), "a key shows in {what}");
        }
    }
    // The unset variable is named in the log (a name, not a secret).
    assert!(log.contains("OPENAI_API_KEY"), "{log}");
}

/// The filter in Envoy scans with Wasm SIMD; the fuzzer and the native unit
/// tests run the portable scanner (`make unit` also runs the SIMD one, in
/// Node's V8). In Envoy's own V8 both must give every body the same verdict.
#[test]
fn the_wasm_scanner_agrees_with_the_native_one() {
    let stack = Stack::start_default();
    let pieces: [&[u8]; 11] = [
        b"\\\"",
        b"\\n",
        b"\\u00e9",
        "é".as_bytes(),
        "😀".as_bytes(),
        b"\x01",
        // the edges of the block test (a minimum below 0x21 after xor 2)
        b"\x1f",
        b"#",
        b"\xff",
        b"\xed\xa0\x80",
        b"\\ud800",
    ];
    // How many bodies each side refused and took: the comparison must
    // cover both verdicts.
    let mut verdicts = [0; 2];
    for piece in pieces {
        // Every lane of a 16-byte step, and the edges of the 64- and
        // 256-byte steps the scanner takes first.
        let offsets = (0..35).chain((230..300).step_by(3)).chain((490..530).step_by(3));
        for offset in offsets {
            let mut body = br#"{"messages":[{"role":"user","content":""#.to_vec();
            body.extend(std::iter::repeat_n(b'a', offset));
            body.extend_from_slice(piece);
            body.extend_from_slice(b"tail\"}],\"model\":\"groq/llama3-8b-8192\"}");
            let native = llm_router::request::body::find_model(&body).is_ok();
            let request = Request::new("POST", "/v1/chat/completions")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {MASTER_KEY}"))
                .body(&body);
            let forwarded_before = stack.upstream_requests();
            let response = send(stack.listener, &request);
            let expected = if native { 200 } else { 400 };
            assert_eq!(response.status(), expected, "piece {piece:?} at offset {offset}");
            // A 400 must be the filter's own, not a provider's.
            let forwarded = stack.upstream_requests() - forwarded_before;
            assert_eq!(forwarded, usize::from(native), "piece {piece:?} at offset {offset}");
            if native {
                let upstream = response.body_json()["mock"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                assert!(upstream.ends_with(r#""model":"llama3-8b-8192"}"#), "{upstream}");
            }
            verdicts[usize::from(native)] += 1;
        }
    }
    assert!(verdicts.iter().all(|&n| n > 0), "refused, took: {verdicts:?}");
}
