//! The host adapter: read what Envoy gives, ask [`crate::decision`], apply
//! the answer. No routing logic lives here.

use std::rc::Rc;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::config::{self, Config};
use crate::decision::{self, Decision, HeadVerdict, LocalReply, PendingRequest, CLIENT_CREDENTIAL_HEADERS};

#[derive(Default)]
pub struct Root {
    config: Option<Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let json = self.get_plugin_configuration().unwrap_or_default();
        match config::compile(&json, &|var| std::env::var(var).ok()) {
            Ok(config) => {
                for warning in &config.warnings {
                    warn!("llm-router configuration: {warning}");
                }
                info!(
                    "llm-router configured: {} deployments, cluster header `{}`",
                    config.router.deployments().len(),
                    config.cluster_header
                );
                self.config = Some(Rc::new(config));
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
        let config = self.config.clone()?;
        Some(Box::new(Request {
            config,
            pending: PendingRequest::default(),
        }))
    }
}

struct Request {
    config: Rc<Config>,
    pending: PendingRequest,
}

impl Request {
    fn reply(&self, reply: &LocalReply) -> Action {
        self.send_http_response(
            reply.status,
            vec![("content-type", "application/json")],
            Some(&reply.body),
        );
        Action::Pause
    }
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // The routing header is only ever the filter's own.
        self.set_http_request_header(&self.config.cluster_header, None);
        let headers = self.get_http_request_headers_bytes();
        match decision::on_request_head(&self.config, &headers, end_of_stream) {
            HeadVerdict::Reply(reply) => self.reply(&reply),
            HeadVerdict::ReadBody(pending) => {
                self.pending = pending;
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if body_size > self.config.max_body_bytes {
            return self.reply(&decision::too_large(&self.config));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        match decision::on_request_body(&self.config, &self.pending, &body) {
            Decision::Reply(reply) => self.reply(&reply),
            Decision::Forward(forward) => {
                for name in CLIENT_CREDENTIAL_HEADERS {
                    self.set_http_request_header(name, None);
                }
                for (name, value) in &forward.set_headers {
                    self.set_http_request_header(name, Some(value));
                }
                self.set_http_request_header(":path", Some(&forward.path));
                self.set_http_request_header("content-length", Some(&forward.body.len().to_string()));
                self.set_http_request_header(&self.config.cluster_header, Some(forward.cluster));
                self.set_http_request_body(0, body_size, &forward.body);
                // Envoy picked the route before the cluster header existed.
                let _ = proxy_wasm::hostcalls::call_foreign_function("clear_route_cache", None);
                Action::Continue
            }
        }
    }
}
