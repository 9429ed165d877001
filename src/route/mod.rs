//! Routing: [`pattern_set`] matches many `model_name` patterns at once (one
//! is [`crate::model::pattern`], re-exported here as [`pattern`]),
//! [`families`] infers a bare model's provider, and [`table`] is the route
//! table with LiteLLM's Router semantics (aliases, model groups, fallbacks)
//! on top.

pub mod families;
pub mod pattern_set;
pub mod table;

pub use crate::model::pattern;
pub use table::{Alias, Group, GroupMember, NoRoute, Route, Router, RouterError, RouterParts, RouterWarning};
