//! The one JSON layer: every piece of JSON the filter reads or writes goes
//! through it, without building a tree.
//!
//! - [`Cursor`] validates a complete buffer (RFC 8259) and reads it in
//!   place: the request body scanner's tokenizer;
//! - [`Value`] walks a validated document: members and items as borrowed
//!   slices with their kind, strings decoded only when escaped, integers
//!   read, so a translator can copy large strings and sub-objects as they
//!   are;
//! - [`Writer`] appends raw slices and escaped strings to a `Vec<u8>`;
//! - [`Tokenizer`] reads JSON resumably, a piece at a time, telling an
//!   [`Events`] reader what it finds: the response reader's tokenizer;
//! - [`sse`] splits server-sent events into their `data` lines.
//!
//! The byte loop they all spend their time in, skipping string bytes that
//! need no attention, is [`plain_run`] (Wasm SIMD in Envoy).

mod cursor;
mod plain;
pub mod sse;
mod stream;
mod string;
mod value;
mod write;

#[cfg(test)]
mod tests;

use std::fmt;

pub use cursor::Cursor;
pub use plain::plain_run;
pub use stream::{Events, Tokenizer, KEY_CAPACITY};
pub use string::Str;
pub use value::{Items, Members, Value};
pub use write::{write_str, Writer};

/// Containers nested deeper than this are refused (serde_json's own limit);
/// one bit per level fits the open containers in a `u128`.
pub const MAX_DEPTH: u8 = 128;

/// What a JSON value is, as its first byte says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    /// The kind of value that starts with `b`, if one may.
    pub fn of_first_byte(b: u8) -> Option<Kind> {
        match b {
            b'{' => Some(Kind::Object),
            b'[' => Some(Kind::Array),
            b'"' => Some(Kind::String),
            b'-' | b'0'..=b'9' => Some(Kind::Number),
            b't' | b'f' => Some(Kind::Bool),
            b'n' => Some(Kind::Null),
            _ => None,
        }
    }
}

/// Why a buffer is not JSON [`Cursor`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not RFC 8259 JSON; `offset` is the first byte that is wrong.
    Syntax { offset: usize, expected: &'static str },
    /// Containers nest deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Syntax { offset, expected } => write!(f, "expected {expected} at byte {offset}"),
            Error::TooDeep => write!(f, "nests deeper than {MAX_DEPTH} levels"),
        }
    }
}
