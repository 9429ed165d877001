//! The least a body-routing Wasm filter can do: hold the headers, buffer the
//! body, copy it into the VM once, continue. `make bench` shows it next to
//! llm-router as the limit of this design.
//!
//! Configured with `host-calls`, it also makes the host calls llm-router
//! makes to forward a request — read the headers, replace the credential,
//! path, `content-length` and cluster headers, hand the body back, clear the
//! route cache, read the clock — and to read its response — the headers,
//! the clock at the first body byte, each body chunk, a time-to-first-token
//! histogram value, the access log's filter-state values — with fixed
//! values and no logic: what any filter routing on the body and reading the
//! response through this ABI pays before running code of its own.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { host_calls: false, histogram: 0 }) });
}}

struct Root {
    host_calls: bool,
    histogram: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        self.host_calls = self.get_plugin_configuration().as_deref() == Some(b"host-calls");
        if self.host_calls {
            self.histogram = hostcalls::define_metric(MetricType::Histogram, "null_filter_ttft_ms").unwrap_or(0);
        }
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Null {
            host_calls: self.host_calls,
            histogram: self.histogram,
            first_byte: false,
            usage: false,
        }))
    }
}

struct Null {
    host_calls: bool,
    histogram: u32,
    first_byte: bool,
    /// A body chunk named `usage`.
    usage: bool,
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
            let _ = hostcalls::call_foreign_function("clear_route_cache", None);
            std::hint::black_box(self.get_current_time());
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        if self.host_calls {
            std::hint::black_box(self.get_http_response_headers_bytes());
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.host_calls {
            return Action::Continue;
        }
        if !self.first_byte && body_size > 0 {
            self.first_byte = true;
            std::hint::black_box(self.get_current_time());
        }
        let piece = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size);
        self.usage |= piece
            .ok()
            .flatten()
            .is_some_and(|p| p.windows(7).any(|w| w == b"\"usage\""));
        if end_of_stream {
            let _ = hostcalls::record_metric(self.histogram, 1);
            // llm-router's values for the benchmark's groq route; the token
            // counts where the reply reports usage.
            let facts = [
                ("llm_router.model", "groq/llama3-8b-8192"),
                ("llm_router.route", "groq/*"),
                ("llm_router.provider", "groq"),
                ("llm_router.upstream_model", "llama3-8b-8192"),
                ("llm_router.time_to_first_token_ms", "1"),
            ];
            let token_counts = [("llm_router.input_tokens", "260"), ("llm_router.output_tokens", "40")];
            for (name, value) in facts.iter().chain(token_counts.iter().filter(|_| self.usage)) {
                self.set_property(vec![name], Some(value.as_bytes()));
            }
        }
        Action::Continue
    }
}
