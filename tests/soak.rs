//! `make soak` (not part of `make test`): valid and hostile requests mixed,
//! under load, for SOAK_SECONDS (default 600) against a real Envoy with the
//! filter. Fails on any wrong route, any non-2xx for a valid request, or any
//! hostile request that is not refused as the contract says; prints Envoy's
//! memory at the start and the end.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mock_provider::Provider;

/// One kind of request and what must come back.
struct Case {
    name: &'static str,
    request: Request,
    expect: Expect,
}

enum Expect {
    /// 200 from this provider with this upstream model.
    Routed(Provider, &'static str),
    /// A local reply with this status.
    Refused(u16),
}

/// A chat request with these header lines (`name: value\r\n` each).
fn request(headers: impl AsRef<[u8]>, body: &[u8]) -> Request {
    headers
        .as_ref()
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            Some((
                String::from_utf8_lossy(name).into_owned(),
                value[1..].trim_ascii().to_vec(),
            ))
        })
        .fold(Request::new("POST", "/v1/chat/completions"), |r, (n, v)| {
            r.header(&n, v)
        })
        .body(body)
}

fn cases() -> Vec<Case> {
    let auth = format!("authorization: Bearer {MASTER_KEY}\r\ncontent-type: application/json\r\n");
    let chat = |model: &str, pad: usize| {
        format!(
            r#"{{"messages":[{{"role":"user","content":"{}"}}],"stream":false,"model":"{model}"}}"#,
            "x".repeat(pad)
        )
        .into_bytes()
    };
    let valid = |name, model: &str, pad, provider, upstream| Case {
        name,
        request: request(&auth, &chat(model, pad)),
        expect: Expect::Routed(provider, upstream),
    };
    let refused = |name, headers: &[u8], body: Vec<u8>, status| Case {
        name,
        request: request(headers, &body),
        expect: Expect::Refused(status),
    };
    let deep = format!(r#"{{"model":"groq/x","a":{}{}}}"#, "[".repeat(200), "]".repeat(200)).into_bytes();
    vec![
        valid("groq", "groq/llama3-8b-8192", 200, Provider::Groq, "llama3-8b-8192"),
        valid(
            "anthropic",
            "anthropic/claude-3-sonnet-20240229",
            200,
            Provider::Anthropic,
            "claude-3-sonnet-20240229",
        ),
        valid(
            "openai pattern",
            "fo::hi::static::hi",
            200,
            Provider::OpenAi,
            "fo::hi::static::hi",
        ),
        valid(
            "groq 100 KiB",
            "groq/llama3-70b",
            100 * 1024,
            Provider::Groq,
            "llama3-70b",
        ),
        Case {
            name: "spoofed cluster header",
            request: request(
                format!("{auth}x-llm-cluster: openai\r\nx-llm-cluster: anthropic\r\n"),
                &chat("groq/spoof", 10),
            ),
            expect: Expect::Routed(Provider::Groq, "spoof"),
        },
        Case {
            name: "client keys in every spelling",
            request: request(
                format!("{auth}x-api-key: c1\r\napi-key: c2\r\nx-goog-api-key: c3\r\n"),
                &chat("anthropic/c", 10),
            ),
            expect: Expect::Routed(Provider::Anthropic, "c"),
        },
        refused("unknown model", auth.as_bytes(), chat("openai/gpt-4o", 10), 404),
        refused(
            "wrong key",
            b"authorization: Bearer sk-wrong\r\n",
            chat("groq/x", 10),
            401,
        ),
        refused("no key", b"content-type: application/json\r\n", chat("groq/x", 10), 401),
        refused("invalid JSON", auth.as_bytes(), b"{\"model\":\"groq/x\"".to_vec(), 400),
        refused(
            "model twice",
            auth.as_bytes(),
            br#"{"model":"groq/a","mod\u0065l":"openai/b"}"#.to_vec(),
            400,
        ),
        refused(
            "model nested only",
            auth.as_bytes(),
            br#"{"meta":{"model":"groq/x"}}"#.to_vec(),
            400,
        ),
        refused("deep nesting", auth.as_bytes(), deep, 400),
        refused(
            "huge model",
            auth.as_bytes(),
            chat(&format!("groq/{}", "m".repeat(5000)), 0),
            400,
        ),
        refused(
            "lone surrogate",
            auth.as_bytes(),
            br#"{"model":"groq/\ud800"}"#.to_vec(),
            400,
        ),
        refused("empty provider model", auth.as_bytes(), chat("groq/", 10), 400),
        refused(
            "gzip",
            format!("{auth}content-encoding: gzip\r\n").as_bytes(),
            chat("groq/x", 10),
            415,
        ),
        refused(
            "text body",
            format!("authorization: Bearer {MASTER_KEY}\r\ncontent-type: text/plain\r\n").as_bytes(),
            chat("groq/x", 10),
            415,
        ),
        refused(
            "non-UTF-8 key",
            b"authorization: Bearer \xff\xfe\r\n",
            chat("groq/x", 10),
            401,
        ),
        refused("too large", auth.as_bytes(), chat("groq/x", 2_100_000), 413),
    ]
}

/// A keep-alive client that reconnects when the server closes.
struct Client {
    addr: SocketAddr,
    conn: Option<client::Connection>,
}

impl Client {
    fn send(&mut self, request: &Request) -> std::io::Result<Response> {
        let mut conn = match self.conn.take() {
            Some(conn) if !conn.is_closed() => conn,
            _ => client::Connection::open(self.addr)?,
        };
        let result = conn.send(request);
        // Envoy closes after some local replies (a body it will not read) and says so.
        let close = result.as_ref().map_or(true, |r| {
            r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
        });
        if !close {
            self.conn = Some(conn);
        }
        result
    }
}

fn envoy_memory(stack: &Stack) -> (u64, u64) {
    let memory = stack.admin_get("/memory").body_json();
    let number = |key: &str| memory[key].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
    (number("allocated"), number("heap_size"))
}

#[test]
#[ignore = "ten minutes: run with `make soak`"]
fn soak() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let stack = Stack::start_with_max_body_bytes(2_000_000);
    let cases = Arc::new(cases());
    let start_memory = envoy_memory(&stack);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<Vec<(AtomicU64, AtomicU64)>> =
        Arc::new(cases.iter().map(|_| (AtomicU64::new(0), AtomicU64::new(0))).collect());
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (cases, counts, stop, addr) = (cases.clone(), counts.clone(), stop.clone(), stack.listener);
            std::thread::spawn(move || {
                let mut client = Client { addr, conn: None };
                let mut failures = Vec::new();
                let mut i = worker;
                while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                    let index = i % cases.len();
                    i += 7;
                    let case = &cases[index];
                    let verdict = match client.send(&case.request) {
                        Err(e) => Err(format!("{}: transport error {e}", case.name)),
                        Ok(m) => check(case, &m),
                    };
                    let (ok, bad) = &counts[index];
                    match verdict {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(why) => {
                            failures.push(why);
                            bad.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    if failures.len() > 20 {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    let end_memory = envoy_memory(&stack);
    println!("\nsoak: {seconds} s, 4 clients on keep-alive connections");
    println!("{:<32} {:>10} {:>8}", "case", "as expected", "wrong");
    let (mut total_ok, mut total_bad) = (0, 0);
    for (case, (ok, bad)) in cases.iter().zip(counts.iter()) {
        let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
        total_ok += ok;
        total_bad += bad;
        println!("{:<32} {ok:>10} {bad:>8}", case.name);
    }
    println!("{:<32} {total_ok:>10} {total_bad:>8}", "total");
    println!(
        "Envoy memory allocated / heap: start {:.1} / {:.1} MiB, end {:.1} / {:.1} MiB",
        mib(start_memory.0),
        mib(start_memory.1),
        mib(end_memory.0),
        mib(end_memory.1)
    );
    assert!(
        failures.is_empty(),
        "{} wrong answers, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(total_ok > 0);
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn check(case: &Case, m: &Response) -> Result<(), String> {
    match case.expect {
        Expect::Routed(provider, model) => {
            let answer = m.body_json();
            if m.status() != 200 {
                return Err(format!("{}: status {} {answer}", case.name, m.status()));
            }
            if answer["mock"]["provider"] != provider.name() || answer["model"] != model {
                return Err(format!(
                    "{}: wrong route {} {}",
                    case.name, answer["mock"]["provider"], answer["model"]
                ));
            }
            if answer["mock"]["key_fingerprint"] != key_fingerprint(provider) {
                return Err(format!("{}: wrong key", case.name));
            }
            Ok(())
        }
        Expect::Refused(status) if m.status() == status => Ok(()),
        Expect::Refused(status) => Err(format!("{}: status {} instead of {status}", case.name, m.status())),
    }
}
