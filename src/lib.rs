//! llm-router: LiteLLM-style model routing as a proxy-wasm filter.
//!
//! Three paths and a compiler, each plain Rust with no host calls except
//! [`host`] (docs/architecture.md draws them):
//! - [`config`] compiles a LiteLLM configuration into the [`model`] types
//!   and the [`route`] table, once;
//! - [`request`]: the headers and the body of each request become a
//!   decision (a local reply, or the rewrite that forwards it), and each
//!   attempt of a model group its own rewrite;
//! - [`response`]: each response is read for its token usage as it passes,
//!   and its outcome (counts, timings, access-log facts) worked out;
//! - [`host`] reads from Envoy, asks the modules above, applies the answer.
//!
//! [`json`] is the one JSON layer every path reads and writes with;
//! [`contract`] owns every name shared with Envoy's configuration;
//! [`limits`] reads the limits a configuration sets, for the rate-limit
//! service and the generator;
//! [`headers`] reads the host's serialised header map in place.

// A panic aborts the VM and drops every request on that worker: none may be
// reachable from a request or a configuration.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::string_slice
    )
)]

pub mod config;
pub mod contract;
pub mod headers;
pub mod host;
pub mod json;
pub mod limits;
pub mod model;
pub mod request;
pub mod response;
pub mod route;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(host::Root::default()));
}}
