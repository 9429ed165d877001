//! A JSON tokenizer that reads a document a piece at a time, resumable at
//! any byte, and tells an [`Events`] reader what it finds. It keeps a few
//! dozen bytes of state (the open containers as one bit each, the key and
//! the number being read) and never the document. It follows JSON rather
//! than judging it: literals are not spelled out, and on anything it cannot
//! follow it stops reading for good ([`Tokenizer::failed`]).

use super::plain::plain_run;
use super::sse::line_end;
use super::{Kind, MAX_DEPTH};

/// Longest key handed over whole; the keys readers look for are shorter.
pub const KEY_CAPACITY: usize = 28;

/// What a [`Tokenizer`] finds, in document order. `around` counts the
/// containers open around a key, a value or a closing bracket (1 for the
/// top-level object's own keys and `}`, 0 for the document itself).
pub trait Events {
    /// A member's key; `None` when it holds an escape or is longer than
    /// [`KEY_CAPACITY`] (a key no reader looks for).
    fn key(&mut self, key: Option<&[u8]>, around: u8);
    /// A value starts.
    fn value(&mut self, kind: Kind, around: u8);
    /// The number that started ended: its value if it is a non-negative
    /// integer (saturated at `u64::MAX`), `None` for any other number.
    fn number(&mut self, value: Option<u64>);
    /// A container's closing bracket.
    fn close(&mut self, around: u8);
}

/// Two readers of one document, each told everything. (The forwarding
/// methods here and in the readers are `#[inline]` so the tokenizer's loop
/// calls no more functions for two readers than for one.)
impl<A: Events, B: Events> Events for (A, B) {
    #[inline]
    fn key(&mut self, key: Option<&[u8]>, around: u8) {
        self.0.key(key, around);
        self.1.key(key, around);
    }
    #[inline]
    fn value(&mut self, kind: Kind, around: u8) {
        self.0.value(kind, around);
        self.1.value(kind, around);
    }
    #[inline]
    fn number(&mut self, value: Option<u64>) {
        self.0.number(value);
        self.1.number(value);
    }
    #[inline]
    fn close(&mut self, around: u8) {
        self.0.close(around);
        self.1.close(around);
    }
}

impl<E: Events + ?Sized> Events for &mut E {
    #[inline]
    fn key(&mut self, key: Option<&[u8]>, around: u8) {
        (**self).key(key, around);
    }
    #[inline]
    fn value(&mut self, kind: Kind, around: u8) {
        (**self).value(kind, around);
    }
    #[inline]
    fn number(&mut self, value: Option<u64>) {
        (**self).number(value);
    }
    #[inline]
    fn close(&mut self, around: u8) {
        (**self).close(around);
    }
}

/// Where the tokenizer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value may start (the top, after `:`, after `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    InKey {
        escaped: bool,
    },
    Colon,
    InString {
        escaped: bool,
    },
    Number,
    /// `true`, `false`, `null` (letters are skipped, not checked).
    Literal,
    /// `,` or a closing bracket.
    AfterValue,
    /// The document is complete; the rest is ignored.
    Done,
    /// Not JSON the tokenizer can follow; the rest is ignored.
    Failed,
}

/// The resumable tokenizer; [`Tokenizer::default`] expects a document.
#[derive(Debug, Clone, Copy)]
pub struct Tokenizer {
    state: State,
    /// One bit per open container, 1 for an object.
    stack: u128,
    depth: u8,
    key: [u8; KEY_CAPACITY],
    key_len: u8,
    /// The key had an escape or was longer than [`KEY_CAPACITY`].
    key_unusual: bool,
    number: u64,
    /// The number has a sign, fraction or exponent: not a count.
    number_unusual: bool,
}

impl Default for Tokenizer {
    fn default() -> Tokenizer {
        Tokenizer {
            state: State::Value,
            stack: 0,
            depth: 0,
            key: [0; KEY_CAPACITY],
            key_len: 0,
            key_unusual: false,
            number: 0,
            number_unusual: false,
        }
    }
}

impl Tokenizer {
    /// Reads the next piece of the document.
    pub fn feed(&mut self, bytes: &[u8], events: &mut impl Events) {
        self.read(bytes, events, false);
    }

    /// Reads the next piece of a document framed in lines (an event
    /// stream's `data`) up to the first CR or LF, which JSON allows only as
    /// whitespace; returns how far it read (all of `bytes` if no line end).
    pub fn feed_line(&mut self, bytes: &[u8], events: &mut impl Events) -> usize {
        self.read(bytes, events, true)
    }

    /// Whether it met something it cannot follow (and reads no more).
    pub fn failed(&self) -> bool {
        self.state == State::Failed
    }

    fn read(&mut self, bytes: &[u8], events: &mut impl Events, line: bool) -> usize {
        let mut pos = 0;
        while let Some(&b) = bytes.get(pos) {
            if line && (b == b'\n' || b == b'\r') && !matches!(self.state, State::Number | State::Literal) {
                return pos;
            }
            match self.state {
                State::InString { escaped: false } => {
                    // Message text is most of a response: skip it in steps.
                    let (run, _) = plain_run(bytes.get(pos..).unwrap_or_default());
                    pos += run;
                    match bytes.get(pos) {
                        Some(b'"') => self.state = State::AfterValue,
                        Some(b'\\') => self.state = State::InString { escaped: true },
                        // A line end (read again above) or another raw control byte.
                        Some(b'\n' | b'\r') if line => continue,
                        Some(_) | None => {}
                    }
                }
                State::InString { escaped: true } => self.state = State::InString { escaped: false },
                State::ObjectFirst | State::Key if b == b'"' => {
                    // A key whole in this piece is handed over where it lies.
                    let rest = bytes.get(pos + 1..).unwrap_or_default();
                    let (run, _) = plain_run(rest);
                    if let (Some(b'"'), Some(key)) = (rest.get(run), rest.get(..run)) {
                        events.key((key.len() <= KEY_CAPACITY).then_some(key), self.depth);
                        self.state = State::Colon;
                        pos += run + 2;
                        continue;
                    }
                    self.key_len = 0;
                    self.key_unusual = false;
                    self.state = State::InKey { escaped: false };
                }
                State::InKey { escaped } => self.key_byte(b, escaped, events),
                State::Done | State::Failed => return if line { line_end(bytes, pos) } else { bytes.len() },
                _ => {
                    if !self.structural(b, events) {
                        // The byte ended a number or literal: read it again in the new state.
                        continue;
                    }
                }
            }
            pos += 1;
        }
        bytes.len()
    }

    fn key_byte(&mut self, b: u8, escaped: bool, events: &mut impl Events) {
        match (b, escaped) {
            (_, true) => self.state = State::InKey { escaped: false },
            (b'\\', false) => {
                self.key_unusual = true;
                self.state = State::InKey { escaped: true };
            }
            (b'"', false) => {
                let key = self.key;
                let key = key.get(..usize::from(self.key_len)).unwrap_or_default();
                events.key((!self.key_unusual).then_some(key), self.depth);
                self.state = State::Colon;
            }
            _ => match self.key.get_mut(usize::from(self.key_len)) {
                Some(slot) => {
                    *slot = b;
                    self.key_len += 1;
                }
                None => self.key_unusual = true,
            },
        }
    }

    /// Handles a byte outside strings and keys; false when the byte must be
    /// read again (it ended a number or a literal).
    fn structural(&mut self, b: u8, events: &mut impl Events) -> bool {
        match self.state {
            State::Number => {
                match b {
                    b'0'..=b'9' => self.number = self.number.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                    b'-' | b'+' | b'.' | b'e' | b'E' => self.number_unusual = true,
                    _ => {
                        events.number((!self.number_unusual).then_some(self.number));
                        self.state = State::AfterValue;
                        return false;
                    }
                }
                true
            }
            State::Literal => {
                if b.is_ascii_lowercase() {
                    return true;
                }
                self.state = State::AfterValue;
                false
            }
            _ if matches!(b, b' ' | b'\n' | b'\r' | b'\t') => true,
            State::Value | State::ArrayFirst => {
                if b == b']' && self.state == State::ArrayFirst {
                    self.close(false, events);
                } else {
                    self.value_start(b, events);
                }
                true
            }
            State::ObjectFirst | State::Key => {
                match b {
                    b'}' if self.state == State::ObjectFirst => self.close(true, events),
                    _ => self.state = State::Failed,
                }
                true
            }
            State::Colon => {
                self.state = if b == b':' { State::Value } else { State::Failed };
                true
            }
            State::AfterValue => {
                let in_object = self.stack & 1 == 1;
                match b {
                    b',' if self.depth > 0 => self.state = if in_object { State::Key } else { State::Value },
                    b'}' if in_object && self.depth > 0 => self.close(true, events),
                    b']' if !in_object && self.depth > 0 => self.close(false, events),
                    _ => self.state = State::Failed,
                }
                true
            }
            State::InString { .. } | State::InKey { .. } | State::Done | State::Failed => true,
        }
    }

    fn value_start(&mut self, b: u8, events: &mut impl Events) {
        let Some(kind) = Kind::of_first_byte(b) else {
            self.state = State::Failed;
            return;
        };
        if matches!(kind, Kind::Object | Kind::Array) && self.depth >= MAX_DEPTH {
            self.state = State::Failed;
            return;
        }
        events.value(kind, self.depth);
        self.state = match kind {
            Kind::Object | Kind::Array => {
                self.depth += 1;
                self.stack = (self.stack << 1) | u128::from(kind == Kind::Object);
                if kind == Kind::Object {
                    State::ObjectFirst
                } else {
                    State::ArrayFirst
                }
            }
            Kind::String => State::InString { escaped: false },
            Kind::Number => {
                self.number_unusual = b == b'-';
                self.number = if b == b'-' { 0 } else { u64::from(b - b'0') };
                State::Number
            }
            Kind::Bool | Kind::Null => State::Literal,
        };
    }

    fn close(&mut self, object: bool, events: &mut impl Events) {
        if (self.stack & 1 == 1) != object || self.depth == 0 {
            self.state = State::Failed;
            return;
        }
        events.close(self.depth);
        self.depth -= 1;
        self.stack >>= 1;
        self.state = if self.depth == 0 {
            State::Done
        } else {
            State::AfterValue
        };
    }
}
