//! Routing: [`pattern`] matches one `model_name`, [`pattern_set`] many at
//! once, [`families`] infers a bare model's provider, and [`table`] is the
//! route table with LiteLLM's Router semantics (aliases, model groups,
//! fallbacks) on top.

pub mod families;
pub mod pattern;
pub mod pattern_set;
pub mod table;

pub use table::{Alias, Group, GroupMember, NoRoute, Route, Router, RouterError, RouterParts, RouterWarning};
