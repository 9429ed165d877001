//! The least a body-routing Wasm filter can do: hold the headers, buffer the
//! body, copy it into the VM once, continue. `make bench` shows it next to
//! llm-router as the limit of this design.
//!
//! Configured with `host-calls`, it also makes the host calls llm-router
//! makes to forward a request — read the headers, replace the credential,
//! path, `content-length` and cluster headers, hand the body back, clear the
//! route cache — with fixed values and no logic: what any filter routing on
//! the body through this ABI pays before running code of its own.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { host_calls: false }) });
}}

struct Root {
    host_calls: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        self.host_calls = self.get_plugin_configuration().as_deref() == Some(b"host-calls");
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Null {
            host_calls: self.host_calls,
        }))
    }
}

struct Null {
    host_calls: bool,
}

impl Context for Null {}

impl HttpContext for Null {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        if self.host_calls {
            std::hint::black_box(self.get_http_request_headers_bytes());
        }
        if end_of_stream {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = std::hint::black_box(self.get_http_request_body(0, body_size)).unwrap_or_default();
        if self.host_calls {
            // The values llm-router sends for the benchmark's groq route.
            self.set_http_request_header(":path", Some("/openai/v1/chat/completions"));
            self.set_http_request_header("authorization", Some("Bearer k-groq"));
            self.set_http_request_header("content-length", Some(&body.len().to_string()));
            self.set_http_request_header("x-llm-cluster", Some("groq"));
            self.set_http_request_body(0, body.len(), &body);
            let _ = proxy_wasm::hostcalls::call_foreign_function("clear_route_cache", None);
        }
        Action::Continue
    }
}
