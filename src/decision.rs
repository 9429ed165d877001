//! What to do with a request, as plain data: request facts in, a
//! [`HeadVerdict`] or [`Decision`] out. The host adapter only applies it.

use std::borrow::Cow;

use crate::body::{self, BodyEdit, BodyError};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::config::{Config, Endpoint, PathStyle, ProviderKey, Secret};
use crate::headers::HeaderBlock;
use crate::router::{NoRoute, Route};

/// Client credentials in their usual spellings; none of them reaches a provider.
pub const CLIENT_CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// The error classes of the contract, each with its status and OpenAI code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidApiKey,
    ModelNotFound,
    InvalidRequest,
    RequestTooLarge,
    UnsupportedMediaType,
    ProviderUnavailable,
}

impl ErrorKind {
    pub fn status(self) -> u32 {
        match self {
            ErrorKind::InvalidApiKey => 401,
            ErrorKind::ModelNotFound => 404,
            ErrorKind::InvalidRequest => 400,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::ProviderUnavailable => 503,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidApiKey => "invalid_api_key",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::ProviderUnavailable => "provider_unavailable",
        }
    }

    fn error_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidApiKey => "authentication_error",
            ErrorKind::ProviderUnavailable => "service_unavailable",
            _ => "invalid_request_error",
        }
    }
}

/// A reply the filter sends itself, with a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    /// Set for errors, for the filter's own bookkeeping (metrics, logs).
    pub error: Option<ErrorKind>,
    pub body: Vec<u8>,
}

impl LocalReply {
    /// A 200 with this JSON body.
    pub fn ok(body: Vec<u8>) -> LocalReply {
        LocalReply {
            status: 200,
            error: None,
            body,
        }
    }

    /// An error in OpenAI's shape. `message` must never contain a key.
    pub fn error(kind: ErrorKind, message: &str, param: Option<&str>) -> LocalReply {
        let body = serde_json::json!({"error": {
            "message": message,
            "type": kind.error_type(),
            "param": param,
            "code": kind.code(),
        }});
        LocalReply {
            status: kind.status(),
            error: Some(kind),
            body: body.to_string().into_bytes(),
        }
    }
}

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
    /// The route's metrics slot ([`crate::router::Router::slots`]); for a
    /// group, its first deployment's until the response names the one that answered.
    pub slot: usize,
    /// Sent to a group: Envoy picks the deployment, the upstream filter
    /// ([`on_attempt`]) applies it, and the response says which it was.
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
}

/// Checks everything the headers can tell: the client key, local answers,
/// media type and declared size.
pub fn on_request_head(config: &Config, headers: HeaderBlock, end_of_stream: bool) -> HeadVerdict {
    let master_key = config.master_key.as_ref().map(|key| key.expose().as_bytes());
    let head = Head::read(&headers, master_key);
    let method = head.method.unwrap_or_default();
    let path = head.path.unwrap_or_default();
    let path_only = path.split(|&b| b == b'?').next().unwrap_or_default();
    // Probes carry no key: the answer says only that the filter is up.
    if method == b"GET" && HEALTH_PATHS.contains(&path_only) {
        return HeadVerdict::Reply(LocalReply::ok(HEALTHY.to_vec()));
    }
    if master_key.is_some() && !head.key_matches {
        return HeadVerdict::Reply(LocalReply::error(
            ErrorKind::InvalidApiKey,
            "missing or invalid client key: send `Authorization: Bearer <key>` or `x-api-key: <key>`",
            None,
        ));
    }
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
            Some(b"" | b"/") => return HeadVerdict::Reply(LocalReply::ok(config.models_reply.clone())),
            Some(id) => return HeadVerdict::Reply(model_reply(config, id.get(1..).unwrap_or_default())),
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
fn model_reply(config: &Config, id: &[u8]) -> LocalReply {
    let id = percent_encoding::percent_decode(id).decode_utf8_lossy();
    match config.router.model_object(&id) {
        Some(object) => LocalReply::ok(object),
        None => LocalReply::error(
            ErrorKind::ModelNotFound,
            &format!("model `{id}` is not served by this router (GET /v1/models lists what is)"),
            Some("model"),
        ),
    }
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
    let route = match config.router.route(&field.name) {
        Ok(route) => route,
        Err(NoRoute::Unknown) => {
            return Decision::Reply(LocalReply::error(
                ErrorKind::ModelNotFound,
                &format!(
                    "model `{}` is not served by this router (GET /v1/models lists what is)",
                    field.name
                ),
                Some("model"),
            ))
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
    let path = request.headers.get(":path").unwrap_or_default();
    let mut edit = BodyEdit::default();
    let inject_usage = match route.group {
        Some(group) => group.inject_stream_usage,
        None => route.endpoint.provider.inject_stream_usage,
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
            &route.endpoint.cluster
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
    })
}

/// A request made ready for one deployment: its credentials and the model
/// it takes, checked.
struct ProviderRequest<'c, 'r> {
    route: &'r Route<'c, 'r>,
    /// The model the request names.
    requested: &'r str,
    credentials: &'c [(&'static str, Secret)],
}

/// Whether the provider's `:path` is set when it equals the client's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathChange {
    /// Only when it differs (the client's headers, untouched).
    IfDifferent,
    /// Always (a retry's headers carry the previous attempt's path).
    Always,
}

impl<'c, 'r> ProviderRequest<'c, 'r> {
    fn new(route: &'r Route<'c, 'r>, requested: &'r str) -> Result<ProviderRequest<'c, 'r>, LocalReply> {
        let endpoint = route.endpoint;
        if route.upstream_model.is_empty() {
            return Err(LocalReply::error(
                ErrorKind::InvalidRequest,
                &format!(
                    "model `{requested}` leaves no model name for provider `{}`",
                    endpoint.provider.name
                ),
                Some("model"),
            ));
        }
        match &endpoint.key {
            ProviderKey::Ready(credentials) => Ok(ProviderRequest {
                route,
                requested,
                credentials,
            }),
            // The variable's name is for the operator (logged at configuration), not the client.
            ProviderKey::Unset { .. } => Err(LocalReply::error(
                ErrorKind::ProviderUnavailable,
                &format!(
                    "provider `{}` for model `{requested}` is not configured (a key or setting is missing; the router's log says which)",
                    endpoint.provider.name
                ),
                Some("model"),
            )),
        }
    }

    /// Adds the provider's model to `edit`, and to `changes` the client
    /// credentials out (those of [`CLIENT_CREDENTIAL_HEADERS`] that
    /// `present(i)` says may be there), the provider's path for the client's
    /// `path`, and the provider's credentials.
    fn apply(
        &self,
        changes: &mut Vec<(&'c str, Option<Cow<'c, [u8]>>)>,
        edit: &mut BodyEdit,
        model_span: std::ops::Range<usize>,
        (path, path_change): (&[u8], PathChange),
        present: impl Fn(usize) -> bool,
    ) {
        let model = &self.route.upstream_model;
        if *model != self.requested {
            *edit = std::mem::take(edit).with_model(model_span, model);
        }
        for (i, &name) in CLIENT_CREDENTIAL_HEADERS.iter().enumerate() {
            if present(i) && !self.credentials.iter().any(|(replaced, _)| *replaced == name) {
                changes.push((name, None));
            }
        }
        match upstream_path(path, self.route.endpoint, model) {
            Some(new_path) => changes.push((":path", Some(Cow::Owned(new_path)))),
            None if path_change == PathChange::Always => changes.push((":path", Some(Cow::Owned(path.to_vec())))),
            None => {}
        }
        for (name, value) in self.credentials {
            changes.push((name, Some(Cow::Borrowed(value.expose().as_bytes()))));
        }
    }
}

/// Envoy's router takes an attempt's time limit from this request header
/// (and removes it): it runs until the response starts, so a stream's
/// limit is its time to the first byte. One value for every attempt.
pub const PER_TRY_TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-per-try-timeout-ms";

/// `1.5` seconds → `1500`; at least 1 (Envoy reads 0 as no limit).
fn milliseconds(seconds: f64) -> Vec<u8> {
    let ms = (seconds * 1000.0).round().max(1.0);
    // `as` saturates: a limit beyond u64 milliseconds is no limit anyway.
    (ms as u64).to_string().into_bytes()
}

/// The response header naming the deployment of a group that answered
/// (its `model_info.id` or `<model_name>#<n>`, never a key).
pub const DEPLOYMENT_HEADER: &str = "x-llm-router-deployment";
/// A provider's 429 crosses Envoy as a 503 with this header: Envoy's
/// retries and outlier detection act on 5xx, not on 429. The downstream
/// filter gives the client the 429 back.
pub const UPSTREAM_STATUS_HEADER: &str = "x-llm-router-upstream-status";
/// The filter state (`wasm.llm_router.client_path`) that keeps the client's
/// path for the attempts after the first that changes it: the attempts
/// share one header map.
pub const CLIENT_PATH_PROPERTY: &str = "llm_router.client_path";

/// How to send one attempt of a group's request to the deployment Envoy chose.
#[derive(Debug, PartialEq, Eq)]
pub struct Attempt<'c> {
    /// The deployment's metrics slot.
    pub slot: usize,
    /// Set from the client's request every time, whatever an earlier attempt set.
    pub header_changes: Vec<(&'c str, Option<Cow<'c, [u8]>>)>,
    pub body_edit: Option<BodyEdit>,
    /// This attempt is the first to change `:path`: the client's path must
    /// be kept in [`CLIENT_PATH_PROPERTY`] for the attempts after it.
    pub keep_client_path: bool,
}

/// What the attempts before this one left in the header map they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earlier {
    /// None: the headers are the client's, as the downstream filter forwarded them.
    Nothing,
    /// Credentials and a length, but the client's path.
    ClientPath,
    /// Credentials, a length and a provider's path; the client's is in
    /// [`CLIENT_PATH_PROPERTY`].
    ProviderPath,
}

/// One attempt, in the upstream filter: `deployment` is the id in the chosen
/// endpoint's metadata, `client_path` the client's path, `body` the request
/// as the downstream filter forwarded it (Envoy sends each attempt the same),
/// `earlier` what the attempts before it set.
pub fn on_attempt<'c>(
    config: &'c Config,
    deployment: &str,
    client_path: &[u8],
    body: &[u8],
    earlier: Earlier,
) -> Result<Attempt<'c>, LocalReply> {
    let request_body =
        body::read(body).map_err(|e| LocalReply::error(ErrorKind::InvalidRequest, &e.to_string(), Some("model")))?;
    let field = &request_body.model;
    let route = config.router.route_via(deployment, &field.name).map_err(|_| {
        LocalReply::error(
            ErrorKind::ProviderUnavailable,
            &format!("deployment `{deployment}` does not serve model `{}`", field.name),
            Some("model"),
        )
    })?;
    let provider = ProviderRequest::new(&route, &field.name)?;
    let mut edit = BodyEdit::default();
    let mut header_changes = Vec::with_capacity(CLIENT_CREDENTIAL_HEADERS.len() + 3);
    // The downstream filter removed the client's credentials; a retry's
    // headers carry an earlier attempt's length and any provider's
    // credentials, and maybe its path, so those are set or removed again.
    let retry = earlier != Earlier::Nothing;
    let path_change = match earlier {
        Earlier::ProviderPath => PathChange::Always,
        Earlier::Nothing | Earlier::ClientPath => PathChange::IfDifferent,
    };
    provider.apply(
        &mut header_changes,
        &mut edit,
        field.span.clone(),
        (client_path, path_change),
        |_| retry,
    );
    let keep_client_path = earlier != Earlier::ProviderPath && header_changes.iter().any(|(name, _)| *name == ":path");
    if retry || !edit.is_empty() {
        let length = edit.edited_len(body.len());
        header_changes.push(("content-length", Some(Cow::Owned(length.to_string().into_bytes()))));
    }
    Ok(Attempt {
        slot: route.slot,
        header_changes,
        body_edit: (!edit.is_empty()).then_some(edit),
        keep_client_path,
    })
}

/// What an attempt's response status means for Envoy's retry and cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Answered,
    /// A 5xx: Envoy retries it and counts it toward ejection.
    Failed,
    /// A 429: passed to Envoy as a 503 (with [`UPSTREAM_STATUS_HEADER`]),
    /// so it is retried and counted as a 5xx is.
    RateLimited,
}

pub fn attempt_outcome(status: &[u8]) -> AttemptOutcome {
    match status {
        b"429" => AttemptOutcome::RateLimited,
        [b'5', _, _] => AttemptOutcome::Failed,
        _ => AttemptOutcome::Answered,
    }
}

/// A group's response as the downstream filter sees it: the slot of the
/// deployment that answered, and the provider's own status where the
/// upstream filter carried a 429 as 503.
#[derive(Debug, PartialEq, Eq)]
pub struct GroupResponse<'h> {
    pub slot: Option<usize>,
    /// The model that deployment was sent (worked out again here: cheaper
    /// than a filter-state value per attempt).
    pub upstream_model: Option<String>,
    pub provider_status: Option<&'h [u8]>,
}

/// `requested_model` is the model the client asked for.
pub fn group_response<'h>(config: &Config, headers: &'h HeaderBlock, requested_model: &str) -> GroupResponse<'h> {
    let id = headers
        .get(DEPLOYMENT_HEADER)
        .and_then(|id| std::str::from_utf8(id).ok());
    let slot = id.and_then(|id| config.router.slot_of(id));
    let upstream_model = id
        .and_then(|id| config.router.route_via(id, requested_model).ok())
        .map(|route| route.upstream_model.into_owned());
    let provider_status = headers.get(UPSTREAM_STATUS_HEADER).filter(|s| *s == b"429");
    GroupResponse {
        slot,
        upstream_model,
        provider_status,
    }
}

/// The OpenAI endpoints whose streams carry usage only when asked
/// (`stream_options.include_usage`): chat completions and completions.
fn reads_usage_chunks(path: &[u8]) -> bool {
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    // `/chat/completions` ends so too.
    path.ends_with(b"/completions")
}

/// The provider's path for the client's: the leading `/v1` replaced by the
/// path of `api_base` (a path without `/v1`, which LiteLLM also serves, gets
/// it prepended); for Azure, `/openai/deployments/<deployment>/<operation>`
/// with `api-version` first in the query. `None` when that is the client's
/// path already.
pub fn upstream_path(path: &[u8], endpoint: &Endpoint, upstream_model: &str) -> Option<Vec<u8>> {
    let base_path = endpoint.base_path.as_bytes();
    let rest = match path.strip_prefix(b"/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with(b"/") || rest.starts_with(b"?") => rest,
        _ => path,
    };
    match (endpoint.provider.path_style, &endpoint.api_version) {
        (PathStyle::AzureDeployments, Some(version)) => {
            let (operation, query) = match rest.iter().position(|&b| b == b'?') {
                Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
                None => (rest, &b""[..]),
            };
            let deployment = utf8_percent_encode(upstream_model, PATH_SEGMENT);
            let version = utf8_percent_encode(version, PATH_SEGMENT);
            let mut azure = format!("/openai/deployments/{deployment}").into_bytes();
            azure.extend_from_slice(operation);
            azure.extend_from_slice(format!("?api-version={version}").as_bytes());
            if !query.is_empty() {
                azure.push(b'&');
                azure.extend_from_slice(query);
            }
            Some([base_path, &azure].concat())
        }
        _ if path.strip_suffix(rest) == Some(base_path) => None,
        _ => Some([base_path, rest].concat()),
    }
}

/// What a path segment or query value may not carry as is.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// What the head checks read from the headers, gathered in one pass.
#[derive(Default)]
struct Head<'h> {
    method: Option<&'h [u8]>,
    path: Option<&'h [u8]>,
    content_length: Option<&'h [u8]>,
    content_type: Option<&'h [u8]>,
    content_types: usize,
    /// A `content-encoding` other than `identity`.
    encoded: bool,
    /// An `accept-encoding` other than `identity`.
    accepts_compressed: bool,
    /// An `Authorization: Bearer` or `x-api-key` value equals the master key.
    key_matches: bool,
    credentials_sent: [bool; CLIENT_CREDENTIAL_HEADERS.len()],
}

impl<'h> Head<'h> {
    fn read(headers: &'h HeaderBlock, master_key: Option<&[u8]>) -> Head<'h> {
        let mut head = Head::default();
        for (name, value) in headers.iter() {
            let first = |seen: Option<&'h [u8]>| seen.or(Some(value));
            match name {
                b":method" => head.method = first(head.method),
                b":path" => head.path = first(head.path),
                b"content-length" => head.content_length = first(head.content_length),
                b"content-type" => {
                    head.content_types += 1;
                    head.content_type = first(head.content_type);
                }
                b"content-encoding" => head.encoded |= !value.trim_ascii().eq_ignore_ascii_case(b"identity"),
                b"accept-encoding" => head.accepts_compressed |= !value.trim_ascii().eq_ignore_ascii_case(b"identity"),
                _ => {}
            }
            let credential = CLIENT_CREDENTIAL_HEADERS.iter().position(|c| c.as_bytes() == name);
            if let Some(sent) = credential.and_then(|i| head.credentials_sent.get_mut(i)) {
                *sent = true;
            }
            let presented = match name {
                b"authorization" => strip_bearer(value),
                b"x-api-key" => Some(value),
                _ => None,
            };
            // Every candidate is compared, so timing does not tell which one matched.
            if let (Some(presented), Some(key)) = (presented, master_key) {
                head.key_matches |= constant_time_eq(presented, key);
            }
        }
        head
    }

    /// Whether the body may be read as JSON: `Ok(true)` when it may but the
    /// provider must be told `application/json`, an error message when it
    /// must not be read at all.
    fn media_type(&self) -> Result<bool, &'static str> {
        if self.encoded {
            return Err("compressed request bodies cannot be routed: send the body without `content-encoding`");
        }
        let Some(value) = self.content_type else {
            return Ok(true);
        };
        if self.content_types > 1 {
            return Err("more than one `content-type`: send one `content-type: application/json`");
        }
        let media = value.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        let is = |expected: &[u8]| media.eq_ignore_ascii_case(expected);
        let structured_json = media.len() > b"application/+json".len()
            && media.get(..12).is_some_and(|s| s.eq_ignore_ascii_case(b"application/"))
            && media
                .get(media.len() - 5..)
                .is_some_and(|s| s.eq_ignore_ascii_case(b"+json"));
        if is(b"application/json") || structured_json {
            Ok(false)
        } else if is(b"application/x-www-form-urlencoded") {
            // What `curl -d` sends by default; the body must still parse as JSON.
            Ok(true)
        } else {
            Err("the body must be JSON: send `content-type: application/json`")
        }
    }
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value.get(7..).unwrap_or_default().trim_ascii())
}

/// Compares without revealing, through its timing, how much of the key
/// matched (only whether the length did).
fn constant_time_eq(presented: &[u8], key: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    presented.ct_eq(key).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{compile_test, SEED};

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
        match on_request_head(config, h.clone(), end_of_stream) {
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
            match on_request_head(&config, h, true) {
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
        match on_request_head(&config, client, false) {
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
        let head = || match on_request_head(&config, curl_default.clone(), false) {
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
        let with_defaults = format!(
            r#"{{"model_list": [{deployments}], "router_settings": {{"timeout": 60, "stream_timeout": 0.0004}}}}"#
        );
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
            let got: Vec<(&str, Option<String>)> = attempt
                .header_changes
                .iter()
                .map(|(n, v)| (*n, v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())))
                .collect();
            let expected: Vec<(&str, Option<String>)> =
                changes.iter().map(|(n, v)| (*n, v.map(str::to_owned))).collect();
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
            let names = attempt.header_changes.iter().map(|(n, _)| *n).collect::<Vec<_>>();
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
            assert_eq!(changes(id, earlier), (names.to_vec(), keep), "{id} after {earlier:?}");
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
        let groq_off =
            compile_test(&SEED.replacen('{', r#"{"providers": {"groq": {"inject_stream_usage": false}},"#, 1))
                .expect("compiles");
        let request = |path: &str| {
            let h = headers(&[
                (":method", "POST"),
                (":path", path),
                ("authorization", "Bearer sk-router-master"),
                ("accept-encoding", "gzip, br"),
            ]);
            match on_request_head(&seed, h, false) {
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
            let upstream = upstream_path(path.as_bytes(), route.endpoint, &route.upstream_model);
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
}
