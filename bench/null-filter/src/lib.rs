//! The least a body-routing Wasm filter can do: hold the headers, buffer the
//! body, copy it into the VM once, continue. `make bench` shows it next to
//! llm-router as the limit of this design.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Null) });
}}

struct Null;

impl Context for Null {}

impl HttpContext for Null {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
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
        std::hint::black_box(self.get_http_request_body(0, body_size));
        Action::Continue
    }
}
