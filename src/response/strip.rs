//! Removing the usage chunk the filter asked for.
//!
//! When the filter added `stream_options.include_usage` to a streamed
//! request (see [`crate::request::body`]), the client must not get the event
//! that brings it (empty `choices`, a `usage` object). To remove it, the
//! reader holds back an event's bytes until it knows the event is not that
//! one (for OpenAI's chunks, as soon as `choices` shows an element: within
//! the event's first ~150 bytes), and at most [`MAX_HELD`] bytes of it.

use crate::json::{Events, Kind};

/// The most of one event the reader holds back while deciding whether it is
/// the usage chunk it must remove; a longer event is let through.
pub const MAX_HELD: usize = 16 * 1024;

/// What the client gets for one piece of body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The piece as it came (the common case: no host call needed).
    Unchanged,
    /// These bytes instead (held bytes released, or the usage chunk removed).
    Replace(Vec<u8>),
}

/// The top-level member whose value comes next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum TopMember {
    #[default]
    Other,
    Choices,
    Usage,
}

/// What the top level of a document showed of `choices`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Choices {
    #[default]
    Unseen,
    /// `"choices": [` was read; its first element (or `]`) is next.
    Opening,
    Empty,
    NotEmpty,
}

/// The shape of one event's document, as far as telling the usage chunk goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkShape {
    member: TopMember,
    choices: Choices,
    /// A top-level `usage` object was read.
    top_usage: bool,
}

impl ChunkShape {
    /// Whether the document is surely not the usage chunk: `choices` has an
    /// element (a document the tokenizer cannot follow, such as `[DONE]`,
    /// is not one either: the caller knows that).
    pub fn surely_kept(&self) -> bool {
        self.choices == Choices::NotEmpty
    }

    /// The usage chunk: empty top-level `choices` and a top-level `usage` object.
    pub fn is_usage_chunk(&self) -> bool {
        self.choices == Choices::Empty && self.top_usage
    }
}

impl Events for ChunkShape {
    #[inline]
    fn key(&mut self, key: Option<&[u8]>, around: u8) {
        self.member = match key {
            Some(b"choices") if around == 1 => TopMember::Choices,
            Some(b"usage") if around == 1 => TopMember::Usage,
            _ => TopMember::Other,
        };
    }

    #[inline]
    fn value(&mut self, kind: Kind, around: u8) {
        if self.choices == Choices::Opening && around == 2 {
            self.choices = Choices::NotEmpty;
        }
        match (std::mem::take(&mut self.member), kind) {
            // The first `choices` decides, so the verdict cannot turn once
            // given (and is the same however the body is split).
            (TopMember::Choices, Kind::Array) if self.choices == Choices::Unseen => self.choices = Choices::Opening,
            (TopMember::Usage, Kind::Object) => self.top_usage = true,
            _ => {}
        }
    }

    #[inline]
    fn number(&mut self, _: Option<u64>) {}

    #[inline]
    fn close(&mut self, around: u8) {
        if self.choices == Choices::Opening && around == 2 {
            self.choices = Choices::Empty;
        }
    }
}

/// The stripper's memory across pieces.
#[derive(Debug, Default)]
pub struct Stripper {
    /// The current event's bytes so far, while it may be the usage chunk.
    held: Vec<u8>,
    /// The current event is known not to be the usage chunk: its bytes pass.
    passing: bool,
}

impl Stripper {
    /// How many bytes are held back now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Hands over what is held (at the end of the body).
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// What one piece becomes: the pieces of output, in order.
pub struct Plan<'s> {
    strip: &'s mut Stripper,
    parts: Vec<Part>,
    /// Where the current event started in this piece (0: before it).
    event_start: usize,
    /// The current event started in this piece.
    started_here: bool,
    /// Passing bytes run from here (when the current event passes).
    pass_from: Option<usize>,
}

enum Part {
    Held(Vec<u8>),
    Piece(usize, usize),
}

impl<'s> Plan<'s> {
    pub fn start(strip: &'s mut Stripper) -> Plan<'s> {
        let pass_from = strip.passing.then_some(0);
        Plan {
            strip,
            parts: Vec::new(),
            event_start: 0,
            started_here: false,
            pass_from,
        }
    }

    /// The current event is surely not the usage chunk.
    pub fn kept(&mut self) {
        if !self.strip.passing {
            self.release();
            self.pass_from = Some(self.event_start);
        }
    }

    /// The current event ended just before `at`; the next starts there.
    pub fn ended(&mut self, at: usize, usage_chunk: bool) {
        if !self.strip.passing {
            if usage_chunk {
                self.strip.held.clear();
            } else {
                self.release();
                self.parts.push(Part::Piece(self.event_start, at));
            }
        } else if let Some(from) = self.pass_from.take() {
            self.parts.push(Part::Piece(from, at));
        }
        // The next event starts here, undecided.
        self.strip.passing = false;
        self.event_start = at;
        self.started_here = true;
    }

    /// Hands what was held of the current event to the client.
    fn release(&mut self) {
        self.strip.passing = true;
        if !self.started_here && !self.strip.held.is_empty() {
            self.parts.push(Part::Held(std::mem::take(&mut self.strip.held)));
        }
    }

    /// What the client gets for `piece`, the whole piece read.
    pub fn finish(mut self, piece: &[u8]) -> Output {
        if self.strip.passing {
            let from = self.pass_from.unwrap_or(self.event_start);
            self.parts.push(Part::Piece(from, piece.len()));
        } else {
            let tail = piece.get(self.event_start..).unwrap_or_default();
            if self.strip.held.len() + tail.len() > MAX_HELD {
                // Too long to be the usage chunk worth holding: let it through.
                self.release();
                self.parts.push(Part::Piece(self.event_start, piece.len()));
            } else {
                self.strip.held.extend_from_slice(tail);
            }
        }
        if let [Part::Piece(0, end)] = self.parts.as_slice() {
            if *end == piece.len() {
                return Output::Unchanged;
            }
        }
        let mut out = Vec::with_capacity(piece.len());
        for part in &self.parts {
            match part {
                Part::Held(bytes) => out.extend_from_slice(bytes),
                Part::Piece(from, to) => out.extend_from_slice(piece.get(*from..*to).unwrap_or_default()),
            }
        }
        Output::Replace(out)
    }
}
