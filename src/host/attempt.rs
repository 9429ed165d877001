//! The upstream filter's context: one per attempt of a model group's
//! request. The endpoint Envoy chose names the deployment; the attempt gets
//! that deployment's path, credentials and model, set from the client's
//! request.

use std::rc::Rc;

use log::warn;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::contract::{filter_state, ATTEMPT_COUNT_PROPERTY, DEPLOYMENT_PROPERTY, UPSTREAM_STATUS_HEADER};
use crate::host::ffi::send_reply;
use crate::host::state::State;
use crate::host::stats::AttemptEvent;
use crate::request::attempt::{self, Earlier};
use crate::response::group::{attempt_outcome, AttemptOutcome};

pub(super) struct AttemptContext {
    state: Rc<State>,
    body_size: usize,
    /// The deployment's slot, once the attempt is sent.
    slot: Option<usize>,
    answered: bool,
}

impl AttemptContext {
    pub(super) fn new(state: Rc<State>) -> AttemptContext {
        AttemptContext {
            state,
            body_size: 0,
            slot: None,
            answered: false,
        }
    }
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
        let outcome = attempt_outcome(&status);
        if outcome == AttemptOutcome::RateLimited {
            self.set_http_response_header(":status", Some("503"));
            self.set_http_response_header(UPSTREAM_STATUS_HEADER, Some("429"));
        }
        // A provider that sends the carrier header itself can only turn its
        // own answer into a 429, which it could send anyway: not removed,
        // which saves a host call per attempt.
        if outcome != AttemptOutcome::Answered {
            self.state.attempts.add(slot, AttemptEvent::Failed);
        }
        // The deployment header is Envoy's (the group route's
        // `response_headers_to_add`, from the endpoint's metadata).
        Action::Continue
    }
}

impl Drop for AttemptContext {
    fn drop(&mut self) {
        // Sent but never answered: refused, reset or timed out.
        if let (Some(slot), false) = (self.slot, self.answered) {
            self.state.attempts.add(slot, AttemptEvent::Failed);
        }
    }
}

impl AttemptContext {
    fn send_attempt(&mut self) -> Action {
        let deployment = self.get_property(DEPLOYMENT_PROPERTY.to_vec()).unwrap_or_default();
        let count = self.get_property(ATTEMPT_COUNT_PROPERTY.to_vec());
        let retry = count.is_some_and(|c| attempt_number(&c) > 1);
        // The client's path is in the header until an attempt changes it,
        // which keeps it in filter state first.
        let kept_path = match retry {
            true => self.get_property(vec![filter_state::CLIENT_PATH]),
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
        match attempt::on_attempt(config, &deployment, &client_path, &body, earlier) {
            Err(reply) => {
                warn!("llm-router upstream: {}", String::from_utf8_lossy(&reply.body));
                send_reply(&reply)
            }
            Ok(attempt) => {
                if attempt.keep_client_path {
                    self.set_property(vec![filter_state::CLIENT_PATH], Some(&client_path));
                }
                for (name, value) in &attempt.header_changes {
                    self.set_http_request_header_bytes(name, value.as_deref());
                }
                if let Some(edit) = attempt.body_edit {
                    let (replaced, head) = edit.splice(body);
                    self.set_http_request_body(0, replaced, &head);
                }
                let attempts = &self.state.attempts;
                attempts.add(attempt.slot, AttemptEvent::Sent);
                if retry {
                    attempts.add(attempt.slot, AttemptEvent::Failover);
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
