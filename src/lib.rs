//! llm-router: LiteLLM-style wildcard model routing as a proxy-wasm filter.
//!
//! The pipeline, each stage plain Rust with no host calls except the last:
//! [`config`] → [`router`] (with [`pattern_set`] and [`pattern`]) → [`body`] → [`decision`] (reading
//! [`headers`]) → `filter`; on the way back, [`usage`] reads each response and `filter` counts it.

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

pub mod body;
pub mod config;
pub mod decision;
pub mod headers;
pub mod metrics;
pub mod pattern;
pub mod pattern_set;
pub mod router;
pub mod usage;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod filter;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(filter::Root::default()));
}}
