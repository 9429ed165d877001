//! What each mock API answers, as data: a request in, a [`Reply`] out. The
//! shapes are the real APIs' (OpenAI's chat completions, completions,
//! embeddings, Responses and model list; Anthropic's Messages), streamed or
//! not, so the official SDKs parse them; the usage numbers follow from the
//! request ([`usage`]) so tests can predict them. [`crate::server`] sends the
//! reply over HTTP, with any fault asked for.

use base64::Engine;
use serde_json::{json, Value};

use crate::{fingerprint, Provider, Received, CREDENTIAL_HEADERS};

/// A fixed `created` time, so answers are reproducible.
const CREATED: u64 = 1_700_000_000;

/// What to send back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// One JSON body.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `text/event-stream`: each entry is one whole event, blank line included.
    Events(Vec<Vec<u8>>),
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply::Json {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }
}

/// Token counts the mocks report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// One token per four bytes of request body, rounded up.
    pub input: u64,
    /// A quarter of the input, reported as read from the provider's cache.
    pub cached_input: u64,
    /// One token per word of the answer.
    pub output: u64,
}

/// The usage a mock reports for a request body and its answer text.
pub fn usage(request_body: &[u8], answer: &str) -> Usage {
    let input = (request_body.len() as u64).div_ceil(4).max(1);
    Usage {
        input,
        cached_input: input / 4,
        output: answer.split(' ').count() as u64,
    }
}

/// The text a mock answers: it names the provider, the model it was asked
/// for and a fingerprint of the key it received.
pub fn answer_text(provider: Provider, model: &str, key: &str) -> String {
    format!("{} mock answered {model} (key {})", provider.name(), fingerprint(key))
}

/// An error in OpenAI's shape.
pub fn openai_error(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// An error in Anthropic's shape.
pub fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The error body for a status, in the provider's own shape.
pub fn error_for_status(provider: Provider, status: u16) -> Value {
    let (kind, message) = match status {
        429 => ("rate_limit_error", "Rate limit reached for requests (mock fault)"),
        500 => (
            "api_error",
            "The server had an error while processing your request (mock fault)",
        ),
        503 => ("overloaded_error", "The engine is currently overloaded (mock fault)"),
        _ => ("api_error", "mock fault"),
    };
    match provider {
        Provider::Anthropic => anthropic_error(kind, message),
        _ => openai_error(message, kind, None),
    }
}

/// The endpoints each mock serves, below its base path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    Messages,
    Models,
}

/// The endpoint a request is for, and Azure's deployment (which names the
/// model there; the body's `model` is not read).
fn endpoint(provider: Provider, method: &str, path_and_query: &str) -> Option<(Endpoint, Option<String>)> {
    if provider == Provider::Recorder {
        return (method == "POST").then_some((Endpoint::ChatCompletions, None));
    }
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut operation = path.strip_prefix(provider.base_path())?;
    let mut deployment = None;
    if provider == Provider::Azure {
        let (name, rest) = operation.split_once('/')?;
        let has_version = query
            .split('&')
            .any(|pair| pair.len() > 12 && pair.starts_with("api-version="));
        if name.is_empty() || !has_version {
            return None;
        }
        deployment = Some(name.to_owned());
        operation = path.get(path.len() - rest.len() - 1..)?;
    }
    let endpoint = match (method, operation) {
        ("POST", "/chat/completions") => Endpoint::ChatCompletions,
        ("GET", "/models") if provider != Provider::Azure => Endpoint::Models,
        ("POST", "/messages") if provider == Provider::Anthropic => Endpoint::Messages,
        ("POST", "/completions") if provider != Provider::Anthropic => Endpoint::Completions,
        ("POST", "/embeddings") if provider != Provider::Anthropic => Endpoint::Embeddings,
        ("POST", "/responses") if provider != Provider::Anthropic => Endpoint::Responses,
        _ => return None,
    };
    Some((endpoint, deployment))
}

/// The answer of `provider` (accepting `key`) to `request`.
pub fn answer(provider: Provider, key: &str, request: &Received) -> Reply {
    if provider == Provider::Entra {
        return entra_token_answer(key, request);
    }
    let Some((endpoint, deployment)) = endpoint(provider, &request.method, &request.path) else {
        let message = format!("Invalid URL ({} {})", request.method, request.path);
        return Reply::json(404, &openai_error(&message, "invalid_request_error", None));
    };
    if let Err(reply) = check_credentials(provider, key, request) {
        return reply;
    }
    if endpoint == Endpoint::Models {
        let data = json!([{"id": "mock-model", "object": "model", "created": CREATED, "owned_by": provider.name()}]);
        return Reply::json(200, &json!({"object": "list", "data": data}));
    }
    let parsed: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let Some(model) = deployment
        .as_deref()
        .or_else(|| parsed.get("model").and_then(Value::as_str))
        // Azure's requests name the model in the path the recorder does not parse.
        .or((provider == Provider::Recorder).then_some("recorded"))
    else {
        let error = openai_error("you must provide a model parameter", "invalid_request_error", None);
        return Reply::json(400, &error);
    };
    if endpoint == Endpoint::Messages && parsed.get("max_tokens").is_none() {
        return Reply::json(
            400,
            &anthropic_error("invalid_request_error", "max_tokens: Field required"),
        );
    }
    let text = answer_text(provider, model, key);
    let usage = usage(&request.body, &text);
    let stream = parsed.get("stream") == Some(&Value::Bool(true));
    let include_usage = parsed.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
    let body = match (endpoint, stream) {
        (Endpoint::ChatCompletions, true) => return chat_events(model, &text, usage, include_usage),
        (Endpoint::Completions, true) => return completion_events(model, &text, usage, include_usage),
        (Endpoint::Responses, true) => return response_events(model, &text, usage),
        (Endpoint::Messages, true) => return message_events(model, &text, usage),
        (Endpoint::ChatCompletions, false) => chat_completion(model, &text, usage),
        (Endpoint::Completions, false) => text_completion(model, &text, usage),
        (Endpoint::Embeddings, _) => embeddings(model, &parsed, usage),
        (Endpoint::Responses, false) => response_object(model, &text, usage, "completed"),
        (Endpoint::Messages, false) => message(model, &text, usage),
        (Endpoint::Models, _) => Value::Null,
    };
    let mut body = body;
    body["mock"] = echo(provider, key, request);
    Reply::json(200, &body)
}

/// Entra ID's answer to a token request, as its v2.0 endpoint gives it
/// (`AADSTS` codes in `error_description`); `key` is
/// `<tenant>|<client_id>|<client_secret>`.
fn entra_token_answer(key: &str, request: &Received) -> Reply {
    let mut expected = key.splitn(3, '|');
    let (tenant, client_id, secret) = (
        expected.next().unwrap_or_default(),
        expected.next().unwrap_or_default(),
        expected.next().unwrap_or_default(),
    );
    let error = |status: u16, error: &str, description: &str| {
        Reply::json(
            status,
            &json!({"error": error, "error_description": description, "error_codes": [status]}),
        )
    };
    if request.method != "POST" || request.path != format!("/{tenant}/oauth2/v2.0/token") {
        return error(
            404,
            "invalid_request",
            "AADSTS90002: Tenant not found, or not a token endpoint.",
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if field("grant_type") != Some("client_credentials") {
        return error(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if field("client_id") != Some(client_id) {
        return error(
            400,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    }
    if field("client_secret") != Some(secret) {
        return error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    }
    if field("scope") != Some("https://cognitiveservices.azure.com/.default") {
        return error(
            400,
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
        );
    }
    Reply::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": crate::entra_token(client_id)}),
    )
}

/// The real APIs' answers to missing or wrong credentials.
fn check_credentials(provider: Provider, key: &str, request: &Received) -> Result<(), Reply> {
    let presented: Vec<&str> = CREDENTIAL_HEADERS
        .iter()
        .filter(|name| !request.header_all(name).is_empty())
        .copied()
        .collect();
    match provider {
        Provider::Recorder | Provider::Entra => Ok(()),
        Provider::Vllm if key.is_empty() => match presented.as_slice() {
            [] => Ok(()),
            names => Err(Reply::json(
                401,
                &openai_error(
                    &format!("mock: this server takes no key, yet got {}", names.join(", ")),
                    "invalid_request_error",
                    None,
                ),
            )),
        },
        Provider::Azure => {
            if request.header_all("api-key") != [key] || presented != ["api-key"] {
                let message = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.";
                return Err(Reply::json(401, &json!({"error": {"code": "401", "message": message}})));
            }
            Ok(())
        }
        Provider::OpenAi | Provider::Groq | Provider::Vllm => {
            let presented = request.header("authorization").and_then(|v| v.strip_prefix("Bearer "));
            match presented {
                None => Err(Reply::json(401, &openai_error(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                    None,
                ))),
                Some(p) if p != key || request.header_all("authorization").len() != 1 => Err(Reply::json(
                    401,
                    &openai_error("Incorrect API key provided.", "invalid_request_error", Some("invalid_api_key")),
                )),
                Some(_) => Ok(()),
            }
        }
        Provider::Anthropic => {
            if request.header_all("x-api-key") != [key] {
                return Err(Reply::json(
                    401,
                    &anthropic_error("authentication_error", "invalid x-api-key"),
                ));
            }
            if request.header("anthropic-version").is_none() {
                let error = anthropic_error("invalid_request_error", "anthropic-version: header is required");
                return Err(Reply::json(400, &error));
            }
            Ok(())
        }
    }
}

/// What arrived, for tests to check: credentials only as fingerprints.
fn echo(provider: Provider, key: &str, request: &Received) -> Value {
    let headers: Vec<Value> = request
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
    json!({
        "provider": provider.name(),
        "key_fingerprint": fingerprint(key),
        "path": request.path,
        "headers": headers,
        "body": String::from_utf8_lossy(&request.body),
    })
}

fn openai_usage(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn chat_completion(model: &str, text: &str, usage: Usage) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
                     "logprobs": null, "finish_reason": "stop"}],
        "usage": openai_usage(usage),
        "system_fingerprint": null,
    })
}

fn text_completion(model: &str, text: &str, usage: Usage) -> Value {
    json!({
        "id": "cmpl-mock", "object": "text_completion", "created": CREATED, "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
        "usage": openai_usage(usage),
    })
}

fn embeddings(model: &str, request: &Value, usage: Usage) -> Value {
    let inputs = request.get("input").and_then(Value::as_array).map_or(1, Vec::len);
    let vector = [0.25f32, -0.5, 0.75];
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = (0..inputs)
        .map(|index| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": usage.input, "total_tokens": usage.input},
    })
}

fn response_object(model: &str, text: &str, usage: Usage, status: &str) -> Value {
    let done = status == "completed";
    let output = if done {
        json!([{"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}])
    } else {
        json!([])
    };
    let usage = done.then(|| {
        json!({
            "input_tokens": usage.input,
            "input_tokens_details": {"cached_tokens": usage.cached_input},
            "output_tokens": usage.output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.input + usage.output,
        })
    });
    json!({
        "id": "resp_mock", "object": "response", "created_at": CREATED, "status": status, "model": model,
        "output": output, "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
        "usage": usage,
    })
}

fn message(model: &str, text: &str, usage: Usage) -> Value {
    json!({
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": anthropic_usage(usage, usage.output),
    })
}

fn anthropic_usage(usage: Usage, output: u64) -> Value {
    json!({
        "input_tokens": usage.input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_input,
        "output_tokens": output,
    })
}

/// `data: <json>` and the blank line that ends the event.
fn data_event(data: &Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

/// `event: <name>`, `data: <json>` and the blank line, as Anthropic and the Responses API send them.
fn named_event(name: &str, data: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

/// The words of `text`, each but the first with its leading space.
fn pieces(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(' ')
        .enumerate()
        .map(|(i, word)| if i == 0 { word.to_owned() } else { format!(" {word}") })
}

/// OpenAI's chunks: the role, one content delta per word, the finish
/// reason, then (when asked for) a usage chunk with no choices, then `[DONE]`.
fn chat_events(model: &str, text: &str, usage: Usage, include_usage: bool) -> Reply {
    let chunk = |choices: Value| {
        let mut chunk = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED,
                               "model": model, "system_fingerprint": null, "choices": choices});
        if include_usage {
            // Every chunk carries `usage`, null but in the last, as OpenAI sends it.
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let delta =
        |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut events = vec![data_event(&chunk(delta(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )))];
    events.extend(pieces(text).map(|piece| data_event(&chunk(delta(json!({"content": piece}), Value::Null)))));
    events.push(data_event(&chunk(delta(json!({}), json!("stop")))));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = openai_usage(usage);
        events.push(data_event(&last));
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    Reply::Events(events)
}

fn completion_events(model: &str, text: &str, usage: Usage, include_usage: bool) -> Reply {
    let chunk = |choices: Value| json!({"id": "cmpl-mock", "object": "text_completion", "created": CREATED, "model": model, "choices": choices});
    let choice =
        |text: &str, finish: Value| json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]);
    let mut events: Vec<Vec<u8>> = pieces(text)
        .map(|piece| data_event(&chunk(choice(&piece, Value::Null))))
        .collect();
    events.push(data_event(&chunk(choice("", json!("stop")))));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = openai_usage(usage);
        events.push(data_event(&last));
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    Reply::Events(events)
}

fn response_events(model: &str, text: &str, usage: Usage) -> Reply {
    let mut sequence = 0;
    let mut event = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        named_event(name, &data)
    };
    let mut events = vec![event(
        "response.created",
        json!({"response": response_object(model, text, usage, "in_progress")}),
    )];
    for piece in pieces(text) {
        let delta = json!({"item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": piece});
        events.push(event("response.output_text.delta", delta));
    }
    events.push(event(
        "response.completed",
        json!({"response": response_object(model, text, usage, "completed")}),
    ));
    Reply::Events(events)
}

/// Anthropic's stream: input usage in `message_start`, output usage in `message_delta`.
fn message_events(model: &str, text: &str, usage: Usage) -> Reply {
    let mut start = message(model, "", usage);
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"] = anthropic_usage(usage, 1);
    let mut events = vec![
        named_event("message_start", &json!({"type": "message_start", "message": start})),
        named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        named_event("ping", &json!({"type": "ping"})),
    ];
    events.extend(pieces(text).map(|piece| {
        named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
        )
    }));
    events.push(named_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(named_event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": usage.output}}),
    ));
    events.push(named_event("message_stop", &json!({"type": "message_stop"})));
    Reply::Events(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Received {
        Received {
            method: method.into(),
            path: path.into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn events_json(reply: &Reply) -> Vec<Value> {
        let Reply::Events(events) = reply else {
            panic!("not a stream: {reply:?}")
        };
        events
            .iter()
            .map(|e| {
                let text = String::from_utf8_lossy(e);
                assert!(text.ends_with("\n\n"), "{text:?}");
                let data = text
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("a data line");
                serde_json::from_str(data).unwrap_or(json!(data))
            })
            .collect()
    }

    #[test]
    fn credentials_are_checked_as_the_real_apis_do() {
        let body = r#"{"model":"m"}"#;
        let rows: &[(Provider, &str, &[(&str, &str)], u16)] = &[
            (Provider::OpenAi, "/v1/chat/completions", &[], 401),
            (
                Provider::OpenAi,
                "/v1/chat/completions",
                &[("authorization", "Bearer wrong")],
                401,
            ),
            (
                Provider::OpenAi,
                "/v1/chat/completions",
                &[("authorization", "Bearer k")],
                200,
            ),
            (
                Provider::Groq,
                "/v1/chat/completions",
                &[("authorization", "Bearer k")],
                404,
            ),
            (
                Provider::Groq,
                "/openai/v1/chat/completions",
                &[("authorization", "Bearer k")],
                200,
            ),
            (
                Provider::Anthropic,
                "/v1/messages",
                &[("authorization", "Bearer k")],
                401,
            ),
            (Provider::Anthropic, "/v1/chat/completions", &[("x-api-key", "k")], 400),
            (
                Provider::Anthropic,
                "/v1/chat/completions",
                &[("x-api-key", "k"), ("anthropic-version", "2023-06-01")],
                200,
            ),
        ];
        for (provider, path, headers, status) in rows {
            let reply = answer(*provider, "k", &request("POST", path, headers, body));
            let Reply::Json { status: got, .. } = reply else {
                panic!("json expected")
            };
            assert_eq!(got, *status, "{provider:?} {path} {headers:?}");
        }
    }

    #[test]
    fn a_chat_stream_ends_with_a_finish_reason_and_usage_only_when_asked() {
        let auth = [("authorization", "Bearer k")];
        for include_usage in [false, true] {
            let body = format!(r#"{{"model":"m","stream":true,"stream_options":{{"include_usage":{include_usage}}}}}"#);
            let reply = answer(
                Provider::OpenAi,
                "k",
                &request("POST", "/v1/chat/completions", &auth, &body),
            );
            let events = events_json(&reply);
            assert_eq!(events.last(), Some(&json!("[DONE]")));
            assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
            let finish = events
                .iter()
                .position(|e| e["choices"][0]["finish_reason"] == "stop")
                .expect("finish");
            let text: String = events[..finish]
                .iter()
                .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
                .collect();
            assert_eq!(text, answer_text(Provider::OpenAi, "m", "k"));
            let expected = usage(body.as_bytes(), &text);
            let usage_chunks: Vec<&Value> = events.iter().filter(|e| e["usage"].is_object()).collect();
            if include_usage {
                assert_eq!(usage_chunks.len(), 1);
                assert_eq!(usage_chunks[0]["choices"], json!([]));
                assert_eq!(usage_chunks[0]["usage"]["prompt_tokens"], expected.input);
                assert_eq!(usage_chunks[0]["usage"]["completion_tokens"], expected.output);
                assert_eq!(events.len(), finish + 3);
            } else {
                assert!(usage_chunks.is_empty());
                assert!(events.iter().all(|e| e.get("usage").is_none()));
                assert_eq!(events.len(), finish + 2);
            }
        }
    }

    #[test]
    fn anthropic_messages_in_anthropics_shape() {
        let headers = [("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
        let body = r#"{"model":"claude","max_tokens":10,"messages":[]}"#;
        let reply = answer(
            Provider::Anthropic,
            "k",
            &request("POST", "/v1/messages", &headers, body),
        );
        let Reply::Json {
            status: 200,
            body: json,
            ..
        } = reply
        else {
            panic!("{reply:?}")
        };
        let message: Value = serde_json::from_slice(&json).expect("json");
        let text = answer_text(Provider::Anthropic, "claude", "k");
        assert_eq!(message["type"], "message");
        assert_eq!(message["content"][0]["text"], text.as_str());
        assert_eq!(message["usage"]["output_tokens"], usage(body.as_bytes(), &text).output);

        let stream = r#"{"model":"claude","max_tokens":10,"messages":[],"stream":true}"#;
        let events = events_json(&answer(
            Provider::Anthropic,
            "k",
            &request("POST", "/v1/messages", &headers, stream),
        ));
        let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(types.first(), Some(&"message_start"));
        assert_eq!(types.last(), Some(&"message_stop"));
        let expected = usage(stream.as_bytes(), &text);
        assert_eq!(events[0]["message"]["usage"]["input_tokens"], expected.input);
        let delta = events
            .iter()
            .find(|e| e["type"] == "message_delta")
            .expect("message_delta");
        assert_eq!(delta["usage"]["output_tokens"], expected.output);

        let no_max = answer(
            Provider::Anthropic,
            "k",
            &request("POST", "/v1/messages", &headers, r#"{"model":"c"}"#),
        );
        assert!(matches!(no_max, Reply::Json { status: 400, .. }));
    }

    #[test]
    fn every_openai_endpoint_reports_usage() {
        let auth = [("authorization", "Bearer k")];
        let body = r#"{"model":"m","input":["a","b"]}"#;
        for (path, input, output) in [
            (
                "/v1/chat/completions",
                "/usage/prompt_tokens",
                "/usage/completion_tokens",
            ),
            ("/v1/completions", "/usage/prompt_tokens", "/usage/completion_tokens"),
            ("/v1/embeddings", "/usage/prompt_tokens", ""),
            ("/v1/responses", "/usage/input_tokens", "/usage/output_tokens"),
        ] {
            let Reply::Json {
                status: 200,
                body: json,
                ..
            } = answer(Provider::OpenAi, "k", &request("POST", path, &auth, body))
            else {
                panic!("{path}");
            };
            let json: Value = serde_json::from_slice(&json).expect("json");
            let expected = usage(body.as_bytes(), &answer_text(Provider::OpenAi, "m", "k"));
            assert_eq!(json.pointer(input), Some(&json!(expected.input)), "{path}");
            if !output.is_empty() {
                assert_eq!(json.pointer(output), Some(&json!(expected.output)), "{path}");
            }
        }
        let models = answer(Provider::OpenAi, "k", &request("GET", "/v1/models", &auth, ""));
        assert!(matches!(models, Reply::Json { status: 200, .. }));
    }
}
