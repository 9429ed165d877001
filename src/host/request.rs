//! The downstream filter's context: one per request. It holds the headers
//! until the body is read, applies the decision, and reads the response as
//! it passes.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::contract::{CLEAR_ROUTE_CACHE_FUNCTION, UPSTREAM_STATUS_HEADER};
use crate::host::ffi::{header_map, send_reply, Envoy, REQUEST_HEADERS, RESPONSE_HEADERS};
use crate::host::state::State;
use crate::request::auth;
use crate::request::decision::{self, Decision, HeadVerdict, PendingRequest};
use crate::request::reply::LocalReply;
use crate::response::cost::prices_for;
use crate::response::group::group_response;
use crate::response::outcome::{Charges, Names, Outcome, Timing};
use crate::response::{Framing, Output, ResponseReader};

pub(super) struct Request {
    state: Rc<State>,
    pending: PendingRequest,
    /// Bytes buffered so far, for a body that ends with trailers.
    body_size: usize,
    /// Set once the request is forwarded: what its response is read for.
    response: Option<ResponseWatch>,
}

/// A forwarded request's response, as it passes.
struct ResponseWatch {
    route: usize,
    /// Sent to a group: the response names the deployment that answered.
    failover: bool,
    requested_model: String,
    upstream_model: String,
    /// Usage is asked for in the stream and its chunk must be removed.
    usage_injected: bool,
    timing: Timing,
    /// `None` until the headers are in, and for a body that cannot be read.
    reader: Option<ResponseReader>,
    /// Counted (at the end of the response, or when the stream goes away).
    counted: bool,
    /// The virtual key it came with, if any.
    key: Option<usize>,
}

impl Request {
    pub(super) fn new(state: Rc<State>) -> Request {
        Request {
            state,
            pending: PendingRequest::default(),
            body_size: 0,
            response: None,
        }
    }
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
        let now = || {
            let at = hostcalls::get_current_time().unwrap_or(std::time::UNIX_EPOCH);
            at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
        };
        match decision::on_request_head(config, headers, end_of_stream, &now) {
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
        watch.timing.answered = headers.get(":status").is_some_and(|s| s.starts_with(b"2"));
        if watch.failover {
            let answer = group_response(&self.state.config, &headers, &watch.requested_model);
            if let Some(status) = answer.provider_status {
                let _ = hostcalls::set_map_value_bytes(MapType::HttpResponseHeaders, ":status", Some(status));
                let _ = hostcalls::set_map_value_bytes(MapType::HttpResponseHeaders, UPSTREAM_STATUS_HEADER, None);
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
        if body_size > 0 && watch.timing.first_byte_at.is_none() {
            watch.timing.first_byte_at = hostcalls::get_current_time().ok();
        }
        if let Some(reader) = watch.reader.as_mut() {
            // The last callback often carries no bytes: nothing to ask for.
            let piece = match body_size {
                0 => Vec::new(),
                _ => hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            };
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
        self.count_response();
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
                let _ = hostcalls::call_foreign_function(CLEAR_ROUTE_CACHE_FUNCTION, None);
                // A group's request is counted where its answer came from.
                if !forward.failover {
                    self.state.counters.count_forward(forward.slot, self.body_size);
                }
                let key = forward.caller.key();
                if let Some((index, vk)) = key.and_then(|index| Some((index, config.keys.keys.get(index)?))) {
                    // Now, while the request is read: Envoy's rate-limit
                    // filters after this one read them.
                    let model_name = config.router.slots().get(forward.slot).map_or("", |(name, _)| name);
                    let alias_read = config.access_log_facts || config.rates_limited;
                    for (name, value) in auth::key_facts(vk, &forward.requested_model, model_name, alias_read)
                        .into_iter()
                        .flatten()
                    {
                        self.set_property(vec![name], Some(value.as_bytes()));
                    }
                    self.state.counters.count_key_request(index);
                }
                self.response = Some(ResponseWatch {
                    route: forward.slot,
                    failover: forward.failover,
                    requested_model: forward.requested_model,
                    upstream_model: forward.upstream_model,
                    usage_injected: forward.usage_injected,
                    timing: Timing {
                        forwarded_at: self.get_current_time(),
                        first_byte_at: None,
                        answered: false,
                    },
                    reader: None,
                    counted: false,
                    key,
                });
                Action::Continue
            }
        }
    }

    fn reply(&self, reply: &LocalReply) -> Action {
        if let Some(kind) = reply.error {
            self.state.counters.count_reply(kind);
        }
        send_reply(reply)
    }

    /// The end of the response: counts it and leaves its facts as filter
    /// state (`wasm.llm_router.*`) for access logs and the rate-limit filter
    /// (which reads its charges after this, when the stream is done).
    fn finish_response(&mut self) {
        let Some(outcome) = self.count_response() else {
            return;
        };
        let Some(watch) = self.response.as_ref() else {
            return;
        };
        let Some((route, provider)) = self.state.config.router.slots().get(watch.route) else {
            return;
        };
        let names = Names {
            requested_model: &watch.requested_model,
            route,
            provider,
            upstream_model: &watch.upstream_model,
        };
        let config = &self.state.config;
        let key = watch.key.and_then(|index| config.keys.keys.get(index));
        let charges = Charges::for_key(key, config.rates_limited);
        for (key, value) in outcome.filter_state_facts(&names, charges, config.access_log_facts) {
            if let Some(value) = value {
                self.set_property(vec![key], Some(value.as_bytes()));
            }
        }
    }

    /// Adds the response's usage and timings to the metrics, once; returns
    /// its outcome.
    fn count_response(&mut self) -> Option<Outcome> {
        let watch = self.response.as_mut().filter(|w| !w.counted)?;
        watch.counted = true;
        let usage = watch.reader.as_ref().map(ResponseReader::usage).unwrap_or_default();
        let streamed = watch.reader.as_ref().is_some_and(|r| r.framing() == Framing::Events);
        let state = &self.state;
        let prices = prices_for(&state.config, watch.route, &watch.upstream_model);
        let outcome = Outcome::new(usage, streamed, watch.timing, || hostcalls::get_current_time().ok()).priced(prices);
        state
            .counters
            .count_response(&Envoy, &state.config, watch.route, &outcome);
        if let Some(key) = watch.key {
            state.counters.count_key_tokens(key, &outcome);
        }
        Some(outcome)
    }
}
