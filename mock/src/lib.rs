//! Local stand-ins for the OpenAI, Anthropic and Groq APIs. Each checks what
//! the real API checks (credential style, path, a JSON body with a `model`),
//! answers 401 like the real API on a wrong key, and otherwise answers a chat
//! completion that names the provider, the model and a fingerprint of the key
//! it received. With `"stream": true` it answers server-sent events.
//!
//! The answer also carries a `mock` section with what arrived (path, headers
//! with credentials fingerprinted, the raw body) so tests can check exactly
//! what a provider would have seen.

pub mod http;

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

/// Where the binary listens without arguments: envoy/envoy.yaml's clusters.
pub const DEFAULT_LISTEN: [(&str, &str); 3] = [
    ("openai", "127.0.0.1:18081"),
    ("anthropic", "127.0.0.1:18082"),
    ("groq", "127.0.0.1:18083"),
];

/// Headers whose values are credentials: echoed only as fingerprints.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "api-key", "x-goog-api-key"];
/// Pause between streamed events, so a buffering proxy would be visible.
pub const STREAM_EVENT_GAP: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
    Groq,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::OpenAi, Provider::Anthropic, Provider::Groq];

    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Groq => "groq",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The variable the real SDKs read the key from.
    pub fn key_env(self) -> &'static str {
        match self {
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::Groq => "GROQ_API_KEY",
        }
    }

    /// The endpoints the real API serves (Anthropic's include its OpenAI-compatible one).
    fn serves(self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or("");
        match self {
            Provider::OpenAi => matches!(
                path,
                "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" | "/v1/responses"
            ),
            Provider::Anthropic => matches!(path, "/v1/messages" | "/v1/chat/completions"),
            Provider::Groq => matches!(
                path,
                "/openai/v1/chat/completions"
                    | "/openai/v1/completions"
                    | "/openai/v1/embeddings"
                    | "/openai/v1/responses"
            ),
        }
    }
}

/// A short, stable, non-reversible tag for a key (FNV-1a, 64 bits).
pub fn fingerprint(key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fp-{hash:016x}")
}

/// A running mock.
#[derive(Debug, Clone)]
pub struct Mock {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Mock {
    /// How many requests have arrived so far, answered or refused.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Binds `addr` (port 0 for any free port) and serves `provider` there until
/// the process ends, one thread per connection.
pub fn start(provider: Provider, addr: &str, key: &str) -> io::Result<Mock> {
    let listener = TcpListener::bind(addr)?;
    let mock = Mock {
        addr: listener.local_addr()?,
        requests: Arc::default(),
    };
    let requests = mock.requests.clone();
    let key = key.to_owned();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (key, requests) = (key.clone(), requests.clone());
            thread::spawn(move || {
                let _ = handle_connection(stream, provider, &key, &requests);
            });
        }
    });
    Ok(mock)
}

fn handle_connection(stream: TcpStream, provider: Provider, key: &str, requests: &AtomicUsize) -> io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(request) = http::read_message(&mut reader)? {
        requests.fetch_add(1, Ordering::SeqCst);
        answer(&mut out, provider, key, &request)?;
        if request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            break;
        }
    }
    Ok(())
}

fn answer(out: &mut TcpStream, provider: Provider, key: &str, request: &http::Message) -> io::Result<()> {
    let json_type = [("content-type", "application/json")];
    let path = request.start_line.split(' ').nth(1).unwrap_or("");
    if !provider.serves(path) {
        let body = openai_error(&format!("Invalid URL ({})", request.start_line), None);
        return http::write_response(out, 404, &json_type, &body);
    }
    if let Err((status, body)) = check_credentials(provider, key, request) {
        return http::write_response(out, status, &json_type, &body);
    }
    let parsed: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let Some(model) = parsed.get("model").and_then(Value::as_str) else {
        let body = openai_error("you must provide a model parameter", None);
        return http::write_response(out, 400, &json_type, &body);
    };
    let fp = fingerprint(key);
    let content = format!("{} mock answered {model} (key {fp})", provider.name());
    if parsed.get("stream") == Some(&Value::Bool(true)) {
        return stream_answer(out, provider, model, &content);
    }
    let received: Vec<Value> = request
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if CREDENTIAL_HEADERS.contains(&name.as_str()) {
                fingerprint(value.strip_prefix("Bearer ").unwrap_or(value))
            } else {
                value.clone()
            };
            json!([name, shown])
        })
        .collect();
    let body = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "mock": {
            "provider": provider.name(),
            "key_fingerprint": fp,
            "path": path,
            "headers": received,
            "body": String::from_utf8_lossy(&request.body),
        },
    });
    http::write_response(out, 200, &json_type, body.to_string().as_bytes())
}

/// The real APIs' answers to missing or wrong credentials.
fn check_credentials(provider: Provider, key: &str, request: &http::Message) -> Result<(), (u16, Vec<u8>)> {
    match provider {
        Provider::OpenAi | Provider::Groq => {
            let presented = request.header("authorization").and_then(|v| v.strip_prefix("Bearer "));
            match presented {
                None => Err((401, openai_error("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", None))),
                Some(p) if p != key || request.header_all("authorization").len() != 1 => {
                    Err((401, openai_error("Incorrect API key provided.", Some("invalid_api_key"))))
                }
                Some(_) => Ok(()),
            }
        }
        Provider::Anthropic => {
            let anthropic_error = |kind: &str, message: &str| {
                json!({"type": "error", "error": {"type": kind, "message": message}})
                    .to_string()
                    .into_bytes()
            };
            if request.header_all("x-api-key") != [key] {
                return Err((401, anthropic_error("authentication_error", "invalid x-api-key")));
            }
            if request.header("anthropic-version").is_none() {
                return Err((
                    400,
                    anthropic_error("invalid_request_error", "anthropic-version: header is required"),
                ));
            }
            Ok(())
        }
    }
}

fn openai_error(message: &str, code: Option<&str>) -> Vec<u8> {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})
        .to_string()
        .into_bytes()
}

/// A chat completion as server-sent events, one word per event, flushed one by one.
fn stream_answer(out: &mut TcpStream, provider: Provider, model: &str, content: &str) -> io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n",
    )?;
    let mut send = |data: &str| -> io::Result<()> {
        let event = format!("data: {data}\n\n");
        write!(out, "{:x}\r\n{event}\r\n", event.len())?;
        out.flush()
    };
    let words: Vec<&str> = content.split(' ').collect();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            thread::sleep(STREAM_EVENT_GAP);
        }
        let piece = if i == 0 { word.to_string() } else { format!(" {word}") };
        let chunk = json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "model": model,
            "provider": provider.name(),
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}],
        });
        send(&chunk.to_string())?;
    }
    send("[DONE]")?;
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}
