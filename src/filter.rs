//! The host adapter: read what Envoy gives, ask [`crate::decision`], apply
//! the answer, count it. No routing logic lives here.

use std::cell::Cell;
use std::rc::Rc;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MetricType};

use crate::config::{self, Config};
use crate::decision::{self, Decision, HeadVerdict, LocalReply, PendingRequest};
use crate::metrics;

#[derive(Default)]
pub struct Root {
    state: Option<Rc<State>>,
}

/// What every request under one configuration shares.
struct State {
    config: Config,
    counters: Counters,
}

/// Counter ids, each defined on first use: routes that see no traffic cost
/// nothing at start-up, however long the table.
struct Counters {
    requests: Vec<Cell<Option<u32>>>,
    body_bytes: Vec<Cell<Option<u32>>>,
    replies: [Cell<Option<u32>>; metrics::ERROR_KINDS.len()],
}

impl Counters {
    fn new(routes: usize) -> Counters {
        Counters {
            requests: (0..routes).map(|_| Cell::new(None)).collect(),
            body_bytes: (0..routes).map(|_| Cell::new(None)).collect(),
            replies: Default::default(),
        }
    }
}

/// Adds `by` to the counter in `slot`, defining it under `name()` the first time.
fn bump(slot: Option<&Cell<Option<u32>>>, name: impl FnOnce() -> String, by: usize) {
    let Some(slot) = slot else { return };
    let id = match slot.get() {
        Some(id) => id,
        None => match hostcalls::define_metric(MetricType::Counter, &name()) {
            Ok(id) => {
                slot.set(Some(id));
                id
            }
            Err(_) => return,
        },
    };
    let _ = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let started = self.get_current_time();
        let json = self.get_plugin_configuration().unwrap_or_default();
        match config::compile(&json, &|var| std::env::var(var).ok()) {
            Ok(config) => {
                for warning in &config.warnings {
                    warn!("llm-router configuration: {warning}");
                }
                let took = self.get_current_time().duration_since(started).unwrap_or_default();
                info!(
                    "llm-router configured: {} deployments, cluster header `{}`, in {} ms",
                    config.router.deployments().len(),
                    config.cluster_header,
                    took.as_millis()
                );
                let counters = Counters::new(config.router.deployments().len());
                self.state = Some(Rc::new(State { config, counters }));
                true
            }
            Err(e) => {
                error!("{e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let state = self.state.clone()?;
        Some(Box::new(Request {
            state,
            pending: PendingRequest::default(),
            body_size: 0,
        }))
    }
}

struct Request {
    state: Rc<State>,
    pending: PendingRequest,
    /// Bytes buffered so far, for a body that ends with trailers.
    body_size: usize,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let config = &self.state.config;
        let headers = self.get_http_request_headers_bytes();
        // The routing header is only ever the filter's own.
        if headers.iter().any(|(name, _)| *name == config.cluster_header) {
            self.set_http_request_header(&config.cluster_header, None);
        }
        match decision::on_request_head(config, &headers, end_of_stream) {
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
}

impl Request {
    fn route_buffered_body(&mut self) -> Action {
        let body = self.get_http_request_body(0, self.body_size).unwrap_or_default();
        let config = &self.state.config;
        match decision::on_request_body(config, &self.pending, &body) {
            Decision::Reply(reply) => self.reply(&reply),
            Decision::Forward(forward) => {
                for name in &forward.remove_headers {
                    self.set_http_request_header(name, None);
                }
                for (name, value) in &forward.set_headers {
                    self.set_http_request_header(name, Some(value));
                }
                if let Some(path) = &forward.path {
                    self.set_http_request_header_bytes(":path", Some(path));
                }
                if let Some(edit) = forward.model_edit {
                    let received = body.len();
                    let mut body = body;
                    edit.apply(&mut body);
                    self.set_http_request_header("content-length", Some(&body.len().to_string()));
                    self.set_http_request_body(0, received, &body);
                }
                self.set_http_request_header(&config.cluster_header, Some(forward.cluster));
                // Envoy picked the route before the cluster header existed.
                let _ = hostcalls::call_foreign_function("clear_route_cache", None);
                self.count_forward(forward.route, self.body_size);
                Action::Continue
            }
        }
    }

    fn reply(&self, reply: &LocalReply) -> Action {
        if let Some(kind) = reply.error {
            let slot = metrics::ERROR_KINDS
                .iter()
                .position(|&k| k == kind)
                .and_then(|i| self.state.counters.replies.get(i));
            bump(slot, || metrics::reply_counter(kind), 1);
        }
        self.send_http_response(
            reply.status,
            vec![("content-type", "application/json")],
            Some(&reply.body),
        );
        Action::Pause
    }

    fn count_forward(&self, route: usize, body_bytes: usize) {
        let Some(deployment) = self.state.config.router.deployments().get(route) else {
            return;
        };
        let name = |counter| metrics::route_counter(counter, &deployment.model_name, &deployment.provider.name);
        let counters = &self.state.counters;
        bump(counters.requests.get(route), || name(metrics::REQUESTS), 1);
        bump(counters.body_bytes.get(route), || name(metrics::BODY_BYTES), body_bytes);
    }
}
