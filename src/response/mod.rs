//! The response path: [`reader`] reads a response as it passes (JSON or
//! server-sent events, split at any byte) for the counts [`usage`] finds,
//! and removes the usage chunk the filter asked for ([`strip`]);
//! [`outcome`] works out, when the response ends, what to count and what to
//! leave for the access log and the rate-limit filter; [`cost`] prices its
//! usage; [`group`] reads what a model group's attempts answered.

pub mod cost;
pub mod group;
pub mod outcome;
pub mod reader;
pub mod strip;
pub mod usage;

pub use reader::{Framing, ResponseReader};
pub use strip::{Output, MAX_HELD};
pub use usage::Usage;
