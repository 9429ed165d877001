//! The response path: [`reader`] finds token usage in a response as it
//! passes (JSON or server-sent events, split at any byte) and removes the
//! usage chunk the filter asked for; [`outcome`] works out, when the
//! response ends, what to count and what to leave for the access log and
//! the rate-limit filter; [`cost`] prices its usage.

pub mod cost;
pub mod outcome;
pub mod reader;

pub use reader::{Framing, Output, ResponseReader, Usage};
