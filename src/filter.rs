//! The host adapter: read what Envoy gives, ask [`crate::decision`], apply
//! the answer, count it. No routing logic lives here.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

use crate::config::{self, Config};
use crate::decision::{self, AttemptOutcome, Decision, Earlier, HeadVerdict, LocalReply, PendingRequest};
use crate::headers::HeaderBlock;
use crate::metrics;
use crate::usage::{self, Framing, Output, ResponseReader, Usage};

#[derive(Default)]
pub struct Root {
    state: Option<Rc<State>>,
}

/// The root id of the filter's upstream instance: a group cluster's
/// upstream HTTP filter, run once per attempt.
const UPSTREAM_ROOT_ID: &[u8] = b"llm-router-upstream";

/// What every request under one configuration shares.
struct State {
    config: Config,
    /// Runs as the group clusters' upstream filter.
    upstream: bool,
    counters: Counters,
    attempts: AttemptCounters,
}

/// Per deployment, in the upstream filter: attempts, failed attempts (a
/// 429, a 5xx, or no response), and attempts that were a failover (not
/// the request's first).
struct AttemptCounters {
    by_slot: Vec<[Counter; 3]>,
}

impl AttemptCounters {
    fn new(slots: usize) -> AttemptCounters {
        AttemptCounters {
            by_slot: (0..slots).map(|_| Default::default()).collect(),
        }
    }

    fn add(&self, slot: usize, which: usize) {
        if let Some(counter) = self.by_slot.get(slot).and_then(|c| c.get(which)) {
            counter.add(1);
        }
    }

    fn flush(&self, config: &Config) {
        for (slot, counters) in self.by_slot.iter().enumerate() {
            let Some(id) = config.router.deployment_of_slot(slot) else {
                continue;
            };
            for (counter, name) in counters.iter().zip(metrics::ATTEMPT_COUNTERS) {
                counter.flush(|| metrics::deployment_counter(name, id));
            }
        }
    }
}

/// How often counts reach Envoy's stats.
const METRICS_FLUSH: Duration = Duration::from_secs(1);

/// Counts kept in the VM and handed to Envoy once a second: a host call per
/// request per counter would cost more than routing the request. Each
/// counter is defined in Envoy on its first flush, so routes that see no
/// traffic cost nothing, however long the table.
struct Counters {
    requests: Vec<Counter>,
    body_bytes: Vec<Counter>,
    tokens: Vec<[Counter; metrics::TOKEN_TYPES.len()]>,
    usage_unknown: Vec<Counter>,
    replies: [Counter; metrics::ERROR_KINDS.len()],
    time_to_first_token: Vec<Histogram>,
    time_per_output_token: Vec<Histogram>,
}

/// A histogram, defined in Envoy on its first value. Values go to Envoy
/// one by one (a histogram cannot be batched like a counter), once per
/// response.
#[derive(Default)]
struct Histogram {
    id: MetricId,
}

impl Histogram {
    fn record(&self, value: u64, name: impl FnOnce() -> String) {
        if let Some(id) = self.id.get(MetricType::Histogram, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}

/// A metric's id in Envoy, defined on first use.
#[derive(Default)]
struct MetricId(Cell<Option<u32>>);

impl MetricId {
    fn get(&self, kind: MetricType, name: impl FnOnce() -> String) -> Option<u32> {
        if let Some(id) = self.0.get() {
            return Some(id);
        }
        let id = hostcalls::define_metric(kind, &name()).ok()?;
        self.0.set(Some(id));
        Some(id)
    }
}

#[derive(Default)]
struct Counter {
    id: MetricId,
    pending: Cell<u64>,
}

impl Counter {
    fn add(&self, by: usize) {
        self.pending.set(self.pending.get().saturating_add(by as u64));
    }

    /// Hands the pending count to Envoy, defining the counter as `name()` the first time.
    fn flush(&self, name: impl FnOnce() -> String) {
        let pending = self.pending.get();
        if pending == 0 {
            return;
        }
        let Some(id) = self.id.get(MetricType::Counter, name) else {
            return;
        };
        if hostcalls::increment_metric(id, i64::try_from(pending).unwrap_or(i64::MAX)).is_ok() {
            self.pending.set(0);
        }
    }
}

impl Counters {
    fn new(routes: usize) -> Counters {
        Counters {
            requests: (0..routes).map(|_| Counter::default()).collect(),
            body_bytes: (0..routes).map(|_| Counter::default()).collect(),
            tokens: (0..routes).map(|_| Default::default()).collect(),
            usage_unknown: (0..routes).map(|_| Counter::default()).collect(),
            replies: Default::default(),
            time_to_first_token: (0..routes).map(|_| Histogram::default()).collect(),
            time_per_output_token: (0..routes).map(|_| Histogram::default()).collect(),
        }
    }

    /// A request forwarded on `route`, with its body's size.
    fn count_forward(&self, route: usize, body_bytes: usize) {
        if let (Some(requests), Some(bytes)) = (self.requests.get(route), self.body_bytes.get(route)) {
            requests.add(1);
            bytes.add(body_bytes);
        }
    }

    fn flush(&self, config: &Config) {
        for (route, (model_name, provider)) in config.router.slots().iter().enumerate() {
            let name = |counter| metrics::route_counter(counter, model_name, provider);
            if let Some(c) = self.requests.get(route) {
                c.flush(|| name(metrics::REQUESTS));
            }
            if let Some(c) = self.body_bytes.get(route) {
                c.flush(|| name(metrics::BODY_BYTES));
            }
            if let Some(c) = self.usage_unknown.get(route) {
                c.flush(|| name(metrics::USAGE_UNKNOWN));
            }
            for (counter, kind) in self.tokens.get(route).into_iter().flatten().zip(metrics::TOKEN_TYPES) {
                counter.flush(|| metrics::typed_route_counter(metrics::TOKENS, model_name, provider, kind));
            }
        }
        for (counter, &kind) in self.replies.iter().zip(metrics::ERROR_KINDS.iter()) {
            counter.flush(|| metrics::reply_counter(kind));
        }
    }
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let started = self.get_current_time();
        let json = self.get_plugin_configuration().unwrap_or_default();
        match config::compile(&json, &|var| std::env::var(var).ok()) {
            Ok(config) => {
                if first_to_warn(&json) {
                    for warning in &config.warnings {
                        warn!("llm-router configuration: {warning}");
                    }
                }
                let took = self.get_current_time().duration_since(started).unwrap_or_default();
                info!(
                    "llm-router configured: {} deployments, cluster header `{}`, in {} ms",
                    config.router.deployments().len(),
                    config.cluster_header,
                    took.as_millis()
                );
                let upstream = self.get_property(vec!["plugin_root_id"]).as_deref() == Some(UPSTREAM_ROOT_ID);
                let slots = config.router.slots().len();
                let (counters, attempts) = match upstream {
                    true => (Counters::new(0), AttemptCounters::new(slots)),
                    false => (Counters::new(slots), AttemptCounters::new(0)),
                };
                self.state = Some(Rc::new(State {
                    config,
                    upstream,
                    counters,
                    attempts,
                }));
                self.set_tick_period(METRICS_FLUSH);
                true
            }
            Err(e) => {
                error!("{e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(state) = &self.state {
            state.counters.flush(&state.config);
            state.attempts.flush(&state.config);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let state = self.state.clone()?;
        if state.upstream {
            return Some(Box::new(AttemptContext {
                state,
                body_size: 0,
                slot: None,
                answered: false,
            }));
        }
        Some(Box::new(Request {
            state,
            pending: PendingRequest::default(),
            body_size: 0,
            response: None,
        }))
    }
}

struct Request {
    state: Rc<State>,
    pending: PendingRequest,
    /// Bytes buffered so far, for a body that ends with trailers.
    body_size: usize,
    /// Set once the request is forwarded: what its response is read for.
    response: Option<Watch>,
}

/// A forwarded request's response, as it passes.
struct Watch {
    route: usize,
    /// Sent to a group: the response names the deployment that answered.
    failover: bool,
    requested_model: String,
    upstream_model: String,
    /// Usage is asked for in the stream and its chunk must be removed.
    usage_injected: bool,
    forwarded_at: SystemTime,
    first_byte_at: Option<SystemTime>,
    /// `None` until the headers are in, and for a body that cannot be read.
    reader: Option<ResponseReader>,
    /// Counted (at the end of the response, or when the stream goes away).
    counted: bool,
}

impl Context for Request {}

/// The request and response callbacks: `make wasm` drops the exports of
/// `on_done` and `on_log` (the Makefile's `UNUSED_CALLBACKS`) so Envoy does
/// not call into the VM for them; a response cut short is counted when its
/// context is dropped. Implementing one of them means taking it off that list.
impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let config = &self.state.config;
        let headers = header_map(REQUEST_HEADERS);
        // The routing header is only ever the filter's own: removed here on
        // every request, routed or not (a forwarded one then gets the
        // filter's value in place of any the client sent).
        if headers.contains(&config.cluster_header) {
            self.set_http_request_header(&config.cluster_header, None);
        }
        match decision::on_request_head(config, headers, end_of_stream) {
            HeadVerdict::Reply(reply) => self.reply(&reply),
            HeadVerdict::ReadBody(pending) => {
                self.pending = pending;
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.body_size = body_size;
        if body_size > self.state.config.max_body_bytes {
            return self.reply(&decision::too_large(&self.state.config));
        }
        if end_of_stream {
            self.route_buffered_body()
        } else {
            Action::Pause
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A body that ends with trailers never sees end_of_stream above.
        self.route_buffered_body()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(watch) = self.response.as_mut() else {
            return Action::Continue;
        };
        let headers = header_map(RESPONSE_HEADERS);
        if watch.failover {
            let answer = decision::group_response(&self.state.config, &headers, &watch.requested_model);
            if let Some(status) = answer.provider_status {
                let _ = hostcalls::set_map_value_bytes(MapType::HttpResponseHeaders, ":status", Some(status));
                let _ = hostcalls::set_map_value_bytes(
                    MapType::HttpResponseHeaders,
                    decision::UPSTREAM_STATUS_HEADER,
                    None,
                );
            }
            watch.route = answer.slot.unwrap_or(watch.route);
            watch.upstream_model = answer.upstream_model.unwrap_or_default();
            self.state.counters.count_forward(watch.route, self.body_size);
        }
        if let Some(framing) = Framing::of_response(&headers) {
            let reader = ResponseReader::new(framing, watch.usage_injected);
            if watch.usage_injected && framing == Framing::Events {
                // The body may get shorter: a declared length would be wrong.
                let _ = hostcalls::set_map_value_bytes(MapType::HttpResponseHeaders, "content-length", None);
            }
            watch.reader = Some(reader);
        }
        if end_of_stream {
            self.finish_response();
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(watch) = self.response.as_mut() else {
            return Action::Continue;
        };
        if body_size > 0 && watch.first_byte_at.is_none() {
            watch.first_byte_at = hostcalls::get_current_time().ok();
        }
        if let Some(reader) = watch.reader.as_mut() {
            let piece = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            let output = if end_of_stream {
                reader.feed_last(&piece)
            } else {
                reader.feed(&piece)
            };
            if let Output::Replace(bytes) = output {
                let _ = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &bytes);
            }
        }
        if end_of_stream {
            self.finish_response();
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.finish_response();
        Action::Continue
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // A response that never ended (a stream cut short, a client gone)
        // still counts what it reported.
        if self.response.as_ref().is_some_and(|w| !w.counted) {
            self.count_response();
        }
    }
}

impl Request {
    fn route_buffered_body(&mut self) -> Action {
        let body = self.get_http_request_body(0, self.body_size).unwrap_or_default();
        let config = &self.state.config;
        let pending = std::mem::take(&mut self.pending);
        match decision::on_request_body(config, pending, &body) {
            Decision::Reply(reply) => self.reply(&reply),
            Decision::Forward(forward) => {
                for (name, value) in &forward.header_changes {
                    self.set_http_request_header_bytes(name, value.as_deref());
                }
                if let Some(edit) = forward.body_edit {
                    let (replaced, head) = edit.splice(body);
                    self.set_http_request_body(0, replaced, &head);
                }
                // Envoy picked the route before the cluster header existed.
                let _ = hostcalls::call_foreign_function("clear_route_cache", None);
                // A group's request is counted where its answer came from.
                if !forward.failover {
                    self.state.counters.count_forward(forward.slot, self.body_size);
                }
                self.response = Some(Watch {
                    route: forward.slot,
                    failover: forward.failover,
                    requested_model: forward.requested_model,
                    upstream_model: forward.upstream_model,
                    usage_injected: forward.usage_injected,
                    forwarded_at: self.get_current_time(),
                    first_byte_at: None,
                    reader: None,
                    counted: false,
                });
                Action::Continue
            }
        }
    }

    fn reply(&self, reply: &LocalReply) -> Action {
        if let Some(kind) = reply.error {
            let index = metrics::ERROR_KINDS.iter().position(|&k| k == kind);
            if let Some(counter) = index.and_then(|i| self.state.counters.replies.get(i)) {
                counter.add(1);
            }
        }
        self.send_http_response(
            reply.status,
            vec![("content-type", "application/json")],
            Some(&reply.body),
        );
        Action::Pause
    }

    /// The end of the response: counts it and leaves its facts as filter
    /// state (`wasm.llm_router.*`) for access logs and the rate-limit filter.
    fn finish_response(&mut self) {
        let Some((usage, time_to_first_token)) = self.count_response() else {
            return;
        };
        let Some(watch) = self.response.as_ref() else {
            return;
        };
        let config = &self.state.config;
        let Some((model_name, provider)) = config.router.slots().get(watch.route) else {
            return;
        };
        let words = [
            ("llm_router.model", watch.requested_model.as_str()),
            ("llm_router.route", model_name.as_str()),
            ("llm_router.provider", provider.as_str()),
            ("llm_router.upstream_model", watch.upstream_model.as_str()),
        ];
        for (name, value) in words {
            self.set_property(vec![name], Some(value.as_bytes()));
        }
        let numbers = [
            ("llm_router.input_tokens", usage.input),
            ("llm_router.output_tokens", usage.output),
            ("llm_router.time_to_first_token_ms", time_to_first_token),
        ];
        for (name, value) in numbers {
            if let Some(value) = value {
                self.set_property(vec![name], Some(value.to_string().as_bytes()));
            }
        }
    }

    /// Adds the response's usage and timings to the metrics, once; returns
    /// them.
    fn count_response(&mut self) -> Option<(Usage, Option<u64>)> {
        let watch = self.response.as_mut().filter(|w| !w.counted)?;
        watch.counted = true;
        let usage = watch.reader.as_ref().map(ResponseReader::usage).unwrap_or_default();
        let counters = &self.state.counters;
        let route = watch.route;
        let token_counts = metrics::token_counts(&usage);
        if token_counts.iter().all(Option::is_none) {
            if let Some(c) = counters.usage_unknown.get(route) {
                c.add(1);
            }
        }
        for (counter, count) in counters.tokens.get(route).into_iter().flatten().zip(token_counts) {
            counter.add(usize::try_from(count.unwrap_or(0)).unwrap_or(usize::MAX));
        }
        let since = |from: SystemTime, to: SystemTime| to.duration_since(from).unwrap_or_default();
        let first_byte = watch.first_byte_at.map(|at| since(watch.forwarded_at, at));
        let time_to_first_token = first_byte.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (model_name, provider) = self.state.config.router.slots().get(route)?;
        let name = |histogram: &str| metrics::route_counter(histogram, model_name, provider);
        if let (Some(ms), Some(h)) = (time_to_first_token, counters.time_to_first_token.get(route)) {
            h.record(ms, || name(metrics::TIME_TO_FIRST_TOKEN));
        }
        let streamed = watch.reader.as_ref().is_some_and(|r| r.framing() == Framing::Events);
        let per_token = first_byte.filter(|_| streamed).and_then(|first| {
            let end = since(watch.forwarded_at, hostcalls::get_current_time().ok()?);
            usage::time_per_output_token(first, end, usage.output?)
        });
        if let (Some(ms), Some(h)) = (per_token, counters.time_per_output_token.get(route)) {
            h.record(ms, || name(metrics::TIME_PER_OUTPUT_TOKEN));
        }
        Some((usage, time_to_first_token))
    }
}

/// One attempt of a group's request, in the upstream filter: the endpoint
/// Envoy chose names the deployment; the attempt gets that deployment's
/// path, credentials and model, set from the client's request.
struct AttemptContext {
    state: Rc<State>,
    body_size: usize,
    /// The deployment's slot, once the attempt is sent.
    slot: Option<usize>,
    answered: bool,
}

impl Context for AttemptContext {}

impl HttpContext for AttemptContext {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // The model is in the body: hold the headers until it is read.
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.body_size = body_size;
        if end_of_stream {
            self.send_attempt()
        } else {
            Action::Pause
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.send_attempt()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(slot) = self.slot else {
            return Action::Continue;
        };
        self.answered = true;
        let status = self.get_http_response_header_bytes(":status").unwrap_or_default();
        let outcome = decision::attempt_outcome(&status);
        if outcome == AttemptOutcome::RateLimited {
            self.set_http_response_header(":status", Some("503"));
            self.set_http_response_header(decision::UPSTREAM_STATUS_HEADER, Some("429"));
        }
        // A provider that sends the carrier header itself can only turn its
        // own answer into a 429, which it could send anyway: not removed,
        // which saves a host call per attempt.
        if outcome != AttemptOutcome::Answered {
            self.state.attempts.add(slot, metrics::ATTEMPT_FAILED);
        }
        if let Some(id) = self.state.config.router.deployment_of_slot(slot) {
            self.set_http_response_header(decision::DEPLOYMENT_HEADER, Some(id));
        }
        Action::Continue
    }
}

impl Drop for AttemptContext {
    fn drop(&mut self) {
        // Sent but never answered: refused, reset or timed out.
        if let (Some(slot), false) = (self.slot, self.answered) {
            self.state.attempts.add(slot, metrics::ATTEMPT_FAILED);
        }
    }
}

impl AttemptContext {
    fn send_attempt(&mut self) -> Action {
        let deployment = self
            .get_property(vec![
                "xds",
                "upstream_host_metadata",
                "filter_metadata",
                "llm_router",
                "deployment",
            ])
            .unwrap_or_default();
        let count = self.get_property(vec!["upstream", "request_attempt_count"]);
        let retry = count.is_some_and(|c| attempt_number(&c) > 1);
        // The client's path is in the header until an attempt changes it,
        // which keeps it in filter state first.
        let kept_path = match retry {
            true => self.get_property(vec![decision::CLIENT_PATH_PROPERTY]),
            false => None,
        };
        let earlier = match (retry, kept_path.is_some()) {
            (false, _) => Earlier::Nothing,
            (true, false) => Earlier::ClientPath,
            (true, true) => Earlier::ProviderPath,
        };
        let client_path = kept_path
            .or_else(|| self.get_http_request_header_bytes(":path"))
            .unwrap_or_default();
        let body = self.get_http_request_body(0, self.body_size).unwrap_or_default();
        let config = &self.state.config;
        let deployment = String::from_utf8_lossy(&deployment);
        match decision::on_attempt(config, &deployment, &client_path, &body, earlier) {
            Err(reply) => {
                warn!("llm-router upstream: {}", String::from_utf8_lossy(&reply.body));
                self.send_http_response(
                    reply.status,
                    vec![("content-type", "application/json")],
                    Some(&reply.body),
                );
                Action::Pause
            }
            Ok(attempt) => {
                if attempt.keep_client_path {
                    self.set_property(vec![decision::CLIENT_PATH_PROPERTY], Some(&client_path));
                }
                for (name, value) in &attempt.header_changes {
                    self.set_http_request_header_bytes(name, value.as_deref());
                }
                if let Some(edit) = attempt.body_edit {
                    let (replaced, head) = edit.splice(body);
                    self.set_http_request_body(0, replaced, &head);
                }
                let attempts = &self.state.attempts;
                attempts.add(attempt.slot, metrics::ATTEMPT_SENT);
                if retry {
                    attempts.add(attempt.slot, metrics::ATTEMPT_FAILOVER);
                }
                self.slot = Some(attempt.slot);
                Action::Continue
            }
        }
    }
}

/// Envoy gives integer properties as 8 little-endian bytes.
fn attempt_number(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map(u64::from_le_bytes).unwrap_or(0)
}

/// Whether this VM is the first to log the warnings of this configuration.
/// Envoy configures one VM per worker thread, after a canary VM on the main
/// thread that checks the configuration; they share Envoy's shared data, so
/// the canary marks the configuration as warned about and the workers stay
/// quiet. A new configuration (another hash) is warned about again.
fn first_to_warn(configuration: &[u8]) -> bool {
    use std::hash::BuildHasher;
    let key = format!(
        "llm-router.warned.{:016x}",
        rustc_hash::FxBuildHasher.hash_one(configuration)
    );
    match hostcalls::get_shared_data(&key) {
        Ok((Some(_), _)) => false,
        _ => {
            let _ = hostcalls::set_shared_data(&key, Some(b"1"), None);
            true
        }
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The proxy-wasm map types read here.
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;

/// A header map as one host buffer, parsed in place by [`HeaderBlock`]: one
/// host call however many headers are looked at (the SDK's reader allocates
/// a `String` and a `Vec` per header). A host error reads as no headers,
/// which the decision refuses for a request.
fn header_map(map_type: u32) -> HeaderBlock {
    const OK: u32 = 0;
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: the host writes a pointer and a length to the two out-params.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    if status != OK || data.is_null() {
        return HeaderBlock::default();
    }
    // SAFETY: the host allocated `size` bytes at `data` through the SDK's
    // `proxy_on_memory_allocate` (a boxed `[u8]` of exactly `size`) and hands
    // them over, as the SDK's own `get_map_bytes` takes them.
    HeaderBlock::new(unsafe { Vec::from_raw_parts(data, size, size) })
}
