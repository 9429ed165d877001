//! The host adapter, the only code that calls Envoy: each context reads
//! what Envoy gives, asks a pure module ([`crate::request`],
//! [`crate::response`]), applies the answer and counts it. [`stats`] keeps
//! the counts behind a trait, so it is tested natively; the contexts are
//! proven end to end in Envoy (`tests/`).

pub mod stats;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod attempt;
#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod ffi;
#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod request;
#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod root;
#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod state;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
pub use root::Root;
