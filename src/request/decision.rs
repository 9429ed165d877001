//! What to do with a request, as plain data: request facts in, a
//! [`HeadVerdict`] or [`Decision`] out. The host adapter only applies it.

use std::borrow::Cow;

use crate::config::Config;
use crate::contract::PER_TRY_TIMEOUT_HEADER;
use crate::headers::HeaderBlock;
use crate::model::VirtualKey;
use crate::request::auth::{self, Caller, CLIENT_CREDENTIAL_HEADERS};
use crate::request::body::{self, BodyEdit, BodyError};
use crate::request::head::Head;
use crate::request::reply::{ErrorKind, LocalReply};
use crate::request::shaping::{milliseconds, PathChange, ProviderRequest};
use crate::route::NoRoute;

/// The outcome of the request headers.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadVerdict {
    Reply(LocalReply),
    /// Hold the headers and buffer the body; route when it is complete.
    ReadBody(PendingRequest),
}

/// What the body step needs to remember from the headers.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PendingRequest {
    /// The client's headers, as the host gave them.
    pub headers: HeaderBlock,
    pub caller: Caller,
    /// Which of [`CLIENT_CREDENTIAL_HEADERS`] the client sent.
    pub credentials_sent: [bool; CLIENT_CREDENTIAL_HEADERS.len()],
    /// The client sent no JSON `content-type` (curl's `-d` sends a form
    /// type); once the body is known to be JSON, the provider is told so.
    pub declare_json: bool,
    /// The client accepts compressed responses: the provider is asked for
    /// `identity`, so the filter can read the usage (Envoy's compressor
    /// filter can compress toward the client again).
    pub accepts_compressed: bool,
}

/// The outcome of a complete request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'c> {
    Reply(LocalReply),
    Forward(Forward<'c>),
}

/// How to send the request on: header changes, in order, and the body edit
/// when the model changes. Each change is a host call, and Envoy replaces
/// one header faster than it rebuilds the map, so only what differs is listed.
/// Values come from the configuration where they can, so routing a request
/// allocates only for what the request itself decides (path, length).
#[derive(Debug, PartialEq, Eq)]
pub struct Forward<'c> {
    /// The route's metrics slot ([`crate::route::Router::slots`]); for a
    /// group, its first deployment's until the response names the one that answered.
    pub slot: usize,
    /// Sent to a group: Envoy picks the deployment, the upstream filter
    /// ([`crate::request::attempt::on_attempt`]) applies it, and the response says which it was.
    pub failover: bool,
    /// `(name, Some(value))` replaces every value of `name`; `(name, None)`
    /// removes them: client credentials out; the provider's credentials,
    /// path, `content-length` and the filter's cluster header in.
    pub header_changes: Vec<(&'c str, Option<Cow<'c, [u8]>>)>,
    /// The body changes: the model, and `stream_options.include_usage`.
    pub body_edit: Option<BodyEdit>,
    /// The filter asked the provider for the stream's usage chunk, which the
    /// client must not see.
    pub usage_injected: bool,
    /// The model the client asked for and the one sent upstream, for the access log.
    pub requested_model: String,
    pub upstream_model: String,
    /// Who sent it, for attribution.
    pub caller: Caller,
}

/// Checks everything the headers can tell: the client key, local answers,
/// media type and declared size. `now` (seconds since the Unix epoch) is
/// asked only for a virtual key that expires.
pub fn on_request_head(
    config: &Config,
    headers: HeaderBlock,
    end_of_stream: bool,
    now: &dyn Fn() -> u64,
) -> HeadVerdict {
    let master_key = config.master_key.as_ref().map(|key| key.expose().as_bytes());
    let head = Head::read(&headers, master_key);
    let method = head.method.unwrap_or_default();
    let path = head.path.unwrap_or_default();
    let path_only = path.split(|&b| b == b'?').next().unwrap_or_default();
    // Probes carry no key: the answer says only that the filter is up.
    if method == b"GET" && HEALTH_PATHS.contains(&path_only) {
        return HeadVerdict::Reply(LocalReply::ok(HEALTHY.to_vec()));
    }
    let caller = match auth::authenticate(config, &head, now) {
        Ok(caller) => caller,
        Err(reply) => return HeadVerdict::Reply(reply),
    };
    if head.path.is_none() {
        return HeadVerdict::Reply(LocalReply::error(
            ErrorKind::InvalidRequest,
            "request has no `:path`",
            None,
        ));
    }
    if method == b"GET" {
        let models = path_only
            .strip_prefix(b"/v1")
            .unwrap_or(path_only)
            .strip_prefix(b"/models");
        match models {
            Some(b"" | b"/") => return HeadVerdict::Reply(LocalReply::ok(models_reply(config, caller))),
            Some(id) => return HeadVerdict::Reply(model_reply(config, caller, id.get(1..).unwrap_or_default())),
            None => {}
        }
    }
    let declare_json = match head.media_type() {
        Ok(declare_json) => declare_json,
        Err(problem) => return HeadVerdict::Reply(LocalReply::error(ErrorKind::UnsupportedMediaType, problem, None)),
    };
    let declared = head
        .content_length
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes) {
        return HeadVerdict::Reply(too_large(config));
    }
    if end_of_stream {
        return HeadVerdict::Reply(LocalReply::error(
            ErrorKind::InvalidRequest,
            &format!(
                "`{} {}` cannot be routed: llm-router picks the provider from the `model` field of a JSON request body, and this request has none (answered here: GET /v1/models, GET /v1/models/{{id}}, GET /health)",
                String::from_utf8_lossy(method),
                String::from_utf8_lossy(path_only),
            ),
            Some("model"),
        ));
    }
    let (credentials_sent, accepts_compressed) = (head.credentials_sent, head.accepts_compressed);
    HeadVerdict::ReadBody(PendingRequest {
        headers,
        caller,
        credentials_sent,
        declare_json,
        accepts_compressed,
    })
}

/// Liveness paths: LiteLLM's (`/health/liveliness`, `/health/readiness`)
/// and the usual ones, answered without a client key.
const HEALTH_PATHS: &[&[u8]] = &[
    b"/health",
    b"/health/liveliness",
    b"/health/liveness",
    b"/health/readiness",
];
const HEALTHY: &[u8] = br#"{"status":"healthy"}"#;

/// `GET /v1/models/{id}`: the model object for a model this router serves,
/// else 404. The id is percent-decoded (an SDK may encode the `/` of
/// `groq/llama3-8b-8192`).
fn model_reply(config: &Config, caller: Caller, id: &[u8]) -> LocalReply {
    let id = percent_encoding::percent_decode(id).decode_utf8_lossy();
    let visible = match key_of(config, caller) {
        Some(key) => config
            .router
            .route(&id)
            .is_ok_and(|route| auth::may_call(key, &id, route.deployment)),
        None => true,
    };
    match config.router.model_object(&id).filter(|_| visible) {
        Some(object) => LocalReply::ok(object),
        None => LocalReply::error(
            ErrorKind::ModelNotFound,
            &format!("model `{id}` is not served by this router (GET /v1/models lists what is)"),
            Some("model"),
        ),
    }
}

/// `GET /v1/models`: everything, or what the caller's key may call.
fn models_reply(config: &Config, caller: Caller) -> Vec<u8> {
    match key_of(config, caller) {
        Some(key) if !key.models.all => config
            .router
            .models_reply_where(|id, deployment| auth::may_call(key, id, deployment)),
        _ => config.models_reply.clone(),
    }
}

fn key_of(config: &Config, caller: Caller) -> Option<&VirtualKey> {
    config.keys.keys.get(caller.key()?)
}

/// The reply for a body over `max_body_bytes`.
pub fn too_large(config: &Config) -> LocalReply {
    LocalReply::error(
        ErrorKind::RequestTooLarge,
        &format!("request body is larger than {} bytes", config.max_body_bytes),
        None,
    )
}

/// Routes a complete body.
pub fn on_request_body<'c>(config: &'c Config, request: PendingRequest, body: &[u8]) -> Decision<'c> {
    if body.len() > config.max_body_bytes {
        return Decision::Reply(too_large(config));
    }
    let request_body = match body::read(body) {
        Ok(request_body) => request_body,
        Err(e) => {
            let param = match e {
                BodyError::Syntax { .. } | BodyError::NotAnObject | BodyError::TooDeep => None,
                _ => Some("model"),
            };
            return Decision::Reply(LocalReply::error(ErrorKind::InvalidRequest, &e.to_string(), param));
        }
    };
    let field = &request_body.model;
    let not_supported = |reason: &str| {
        Decision::Reply(LocalReply::error(
            ErrorKind::ModelNotSupported,
            &format!(
                "model `{}` is configured but not served by this router: {reason}",
                field.name
            ),
            Some("model"),
        ))
    };
    let route = match config.router.route(&field.name) {
        Ok(route) => route,
        // Matched as any route (an exact name before every pattern, as in
        // LiteLLM): its request never reaches another entry's provider.
        Err(NoRoute::NotServed(skipped)) => return not_supported(&skipped.reason),
        Err(NoRoute::Unknown) => {
            return Decision::Reply(LocalReply::error(
                ErrorKind::ModelNotFound,
                &format!(
                    "model `{}` is not served by this router (GET /v1/models lists what is)",
                    field.name
                ),
                Some("model"),
            ));
        }
        Err(NoRoute::NoProvider) => {
            let prefixes: Vec<String> = config
                .router
                .forwarded_prefixes()
                .iter()
                .map(|p| format!("{p}/"))
                .collect();
            return Decision::Reply(LocalReply::error(
                ErrorKind::ModelNotFound,
                &format!(
                    "model `{}` names no provider this router forwards to and belongs to no known model family; prefix it with one of {}",
                    field.name,
                    prefixes.join(", ")
                ),
                Some("model"),
            ));
        }
    };
    if let Some(key) = key_of(config, request.caller) {
        if !auth::may_call(key, &field.name, route.deployment) {
            return Decision::Reply(auth::access_denied(key, &field.name));
        }
    }
    let path = request.headers.get(":path").unwrap_or_default();
    let mut edit = BodyEdit::default();
    let inject_usage = match route.group {
        Some(group) => group.inject_stream_usage,
        None => route.provider().inject_stream_usage,
    };
    let inject = config.inject_stream_usage && inject_usage && reads_usage_chunks(path);
    let usage_edit = inject.then(|| body::include_usage_edit(&request_body)).flatten();
    let usage_injected = usage_edit.is_some();
    if let Some((span, bytes)) = usage_edit {
        edit = edit.with(span, bytes);
    }
    let mut header_changes: Vec<(&str, Option<Cow<[u8]>>)> = Vec::with_capacity(CLIENT_CREDENTIAL_HEADERS.len() + 6);
    let cluster = match route.group {
        // Envoy picks the deployment; the upstream filter applies it.
        Some(group) => {
            for (&name, &sent) in CLIENT_CREDENTIAL_HEADERS.iter().zip(&request.credentials_sent) {
                if sent {
                    header_changes.push((name, None));
                }
            }
            &group.cluster
        }
        None => {
            let provider = match ProviderRequest::new(&route, &field.name) {
                Ok(provider) => provider,
                Err(reply) => return Decision::Reply(reply),
            };
            let path = (path, PathChange::IfDifferent);
            provider.apply(&mut header_changes, &mut edit, field.span.clone(), path, |i| {
                request.credentials_sent.get(i).copied().unwrap_or(true)
            });
            provider.cluster()
        }
    };
    if request.declare_json {
        header_changes.push(("content-type", Some(Cow::Borrowed(b"application/json"))));
    }
    if request.accepts_compressed {
        header_changes.push(("accept-encoding", Some(Cow::Borrowed(b"identity"))));
    }
    let body_edit = (!edit.is_empty()).then_some(edit);
    if let Some(edit) = &body_edit {
        let length = edit.edited_len(body.len());
        header_changes.push(("content-length", Some(Cow::Owned(length.to_string().into_bytes()))));
    }
    if let Some(seconds) = route.timeouts.for_request(request_body.stream) {
        header_changes.push((PER_TRY_TIMEOUT_HEADER, Some(Cow::Owned(milliseconds(seconds)))));
    }
    header_changes.push((&config.cluster_header, Some(Cow::Borrowed(cluster.as_bytes()))));
    let upstream_model = match route.group {
        Some(_) => String::new(),
        None => route.upstream_model.into_owned(),
    };
    Decision::Forward(Forward {
        slot: route.slot,
        failover: route.group.is_some(),
        header_changes,
        body_edit,
        usage_injected,
        requested_model: field.name.clone().into_owned(),
        upstream_model,
        caller: request.caller,
    })
}

/// The OpenAI endpoints whose streams carry usage only when asked
/// (`stream_options.include_usage`): chat completions and completions.
fn reads_usage_chunks(path: &[u8]) -> bool {
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    // `/chat/completions` ends so too.
    path.ends_with(b"/completions")
}
