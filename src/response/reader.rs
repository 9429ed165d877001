//! Token usage read from a response as it streams by.
//!
//! A [`ResponseReader`] is fed each piece of a response body as Envoy hands
//! it over and never keeps the body: it holds a few dozen bytes of parser
//! state (the nesting of the JSON as one bit per level, the key being read,
//! the number being read, the position in the event-stream line) and the
//! counts found so far. Usage is found wherever a `usage` object sits
//! (OpenAI's chat completions, completions, embeddings and Responses API,
//! Anthropic's Messages, each as JSON or as server-sent events), the last
//! value of each count winning, as streams report cumulative counts.
//!
//! One change is made to what the client gets: when the filter itself asked
//! for a streamed usage chunk (`stream_options.include_usage`, see
//! [`crate::request::body`]), the event that carries it (empty `choices`, a `usage`
//! object) is removed. To remove it, the reader holds back an event's bytes
//! until it knows the event is not that one (for OpenAI's chunks, as soon as
//! `choices` shows an element: within the event's first ~150 bytes), and at
//! most [`MAX_HELD`] bytes of it.

use crate::request::body::plain_run;

/// The most of one event the reader holds back while deciding whether it is
/// the usage chunk it must remove; a longer event is let through.
pub const MAX_HELD: usize = 16 * 1024;
/// Nesting deeper than this is not read (the counts found so far stand).
const MAX_DEPTH: u8 = 120;
/// Longest key compared; the keys that matter are shorter.
const KEY_CAPACITY: usize = 28;

/// Token counts a response reported; `None` where it said nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cached ones included (Anthropic's cache reads and
    /// writes are added to its `input_tokens`, which leaves them out).
    pub input: Option<u64>,
    pub output: Option<u64>,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input: Option<u64>,
    /// Output tokens spent on reasoning (a part of `output`).
    pub reasoning_output: Option<u64>,
}

/// How the response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON document (`application/json`).
    Json,
    /// Server-sent events (`text/event-stream`), each `data` a JSON document.
    Events,
}

impl Framing {
    /// How to read a response with these headers; `None` for a body that
    /// cannot or need not be read (compressed, another content type).
    pub fn of_response(headers: &crate::headers::HeaderBlock) -> Option<Framing> {
        let encoded = headers
            .get("content-encoding")
            .is_some_and(|v| !v.trim_ascii().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return None;
        }
        Framing::of_content_type(headers.get("content-type")?)
    }

    /// The framing a `content-type` announces; `None` for a body not worth reading.
    pub fn of_content_type(value: &[u8]) -> Option<Framing> {
        let media = value.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        if media.eq_ignore_ascii_case(b"text/event-stream") {
            Some(Framing::Events)
        } else if media.eq_ignore_ascii_case(b"application/json")
            || media.len() > 5
                && media
                    .get(media.len() - 5..)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"+json"))
        {
            Some(Framing::Json)
        } else {
            None
        }
    }
}

/// What the client gets for one piece of body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The piece as it came (the common case: no host call needed).
    Unchanged,
    /// These bytes instead (held bytes released, or the usage chunk removed).
    Replace(Vec<u8>),
}

/// Reads one response.
#[derive(Debug)]
pub struct ResponseReader {
    framing: Framing,
    json: JsonScan,
    lines: Lines,
    reported: Reported,
    /// Set when the filter asked for the usage chunk and must remove it.
    strip: Option<Stripper>,
}

impl ResponseReader {
    /// `remove_usage_chunk`: the filter added `stream_options.include_usage`
    /// to the request, so the client must not see the chunk it brings.
    pub fn new(framing: Framing, remove_usage_chunk: bool) -> ResponseReader {
        ResponseReader {
            framing,
            json: JsonScan::default(),
            lines: Lines::default(),
            reported: Reported::default(),
            strip: (remove_usage_chunk && framing == Framing::Events).then(Stripper::default),
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// How many bytes of the body the reader holds back now (at most
    /// [`MAX_HELD`] plus the piece being read).
    pub fn held(&self) -> usize {
        self.strip.as_ref().map_or(0, |s| s.held.len())
    }

    /// The counts found so far.
    pub fn usage(&self) -> Usage {
        self.reported.usage()
    }

    /// Reads the next piece of the body.
    pub fn feed(&mut self, piece: &[u8]) -> Output {
        match self.framing {
            Framing::Json => {
                self.json.feed(piece, &mut self.reported, false);
                Output::Unchanged
            }
            Framing::Events => {
                let Some(strip) = self.strip.as_mut() else {
                    self.lines.feed(piece, &mut self.json, &mut self.reported, &mut |_| {});
                    return Output::Unchanged;
                };
                let mut plan = Plan::start(strip);
                self.lines
                    .feed(piece, &mut self.json, &mut self.reported, &mut |signal| {
                        plan.on(signal, strip)
                    });
                plan.finish(piece, strip)
            }
        }
    }

    /// Reads the last piece of the body: whatever is still held goes to the
    /// client with it. (A body that ends in trailers has no last piece: what
    /// is held then is lost, which is why only a few bytes of an undecided
    /// event are ever held; providers' event streams have no trailers.)
    pub fn feed_last(&mut self, piece: &[u8]) -> Output {
        let output = self.feed(piece);
        let held = self
            .strip
            .as_mut()
            .map(|s| std::mem::take(&mut s.held))
            .unwrap_or_default();
        if held.is_empty() {
            return output;
        }
        let mut bytes = match output {
            Output::Unchanged => piece.to_vec(),
            Output::Replace(bytes) => bytes,
        };
        bytes.extend_from_slice(&held);
        Output::Replace(bytes)
    }
}

/// The counts as reported, before the shapes are told apart.
#[derive(Debug, Clone, Copy, Default)]
struct Reported {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    reasoning_tokens: Option<u64>,
}

impl Reported {
    fn set(&mut self, field: Field, value: u64) {
        let slot = match field {
            Field::PromptTokens => &mut self.prompt_tokens,
            Field::CompletionTokens => &mut self.completion_tokens,
            Field::InputTokens => &mut self.input_tokens,
            Field::OutputTokens => &mut self.output_tokens,
            Field::CachedTokens => &mut self.cached_tokens,
            Field::CacheRead => &mut self.cache_read,
            Field::CacheCreation => &mut self.cache_creation,
            Field::ReasoningTokens => &mut self.reasoning_tokens,
        };
        *slot = Some(value);
    }

    fn usage(&self) -> Usage {
        // Anthropic's `input_tokens` leaves out what its cache fields count.
        let anthropic = self.cache_read.is_some() || self.cache_creation.is_some();
        let input = self.prompt_tokens.or_else(|| {
            let input = self.input_tokens?;
            Some(if anthropic {
                input
                    .saturating_add(self.cache_read.unwrap_or(0))
                    .saturating_add(self.cache_creation.unwrap_or(0))
            } else {
                input
            })
        });
        Usage {
            input,
            output: self.completion_tokens.or(self.output_tokens),
            cached_input: self.cached_tokens.or(self.cache_read),
            reasoning_output: self.reasoning_tokens,
        }
    }
}

/// A count inside a `usage` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    PromptTokens,
    CompletionTokens,
    InputTokens,
    OutputTokens,
    /// `{prompt,input}_tokens_details.cached_tokens`
    CachedTokens,
    /// `cache_read_input_tokens` (Anthropic)
    CacheRead,
    /// `cache_creation_input_tokens` (Anthropic)
    CacheCreation,
    /// `{completion,output}_tokens_details.reasoning_tokens`
    ReasoningTokens,
}

/// The details objects inside `usage`, by the count they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Details {
    Cached,
    Reasoning,
}

/// What the member whose value comes next means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyMeaning {
    Other,
    /// `usage`, at any depth outside another `usage`.
    Usage,
    /// A top-level `choices`.
    Choices,
    Count(Field),
    Details(Details),
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
    /// Not JSON the reader can follow; the rest is ignored.
    Failed,
}

/// What the top level of a document showed, for finding the usage chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Choices {
    #[default]
    Unseen,
    /// `"choices": [` was read; its first element (or `]`) is next.
    Opening,
    Empty,
    NotEmpty,
}

/// A JSON tokenizer that keeps only what usage needs, resumable at any byte.
#[derive(Debug, Clone, Copy)]
struct JsonScan {
    state: State,
    /// One bit per open container, 1 for an object.
    stack: u128,
    depth: u8,
    key: [u8; KEY_CAPACITY],
    key_len: u8,
    /// The key had an escape or was longer than [`KEY_CAPACITY`]: it matches nothing.
    key_unusual: bool,
    member: KeyMeaning,
    /// The depth of the members of the `usage` object being read (0: none).
    usage_depth: u8,
    /// The depth of the members of the details object being read (0: none).
    details_depth: u8,
    details: Details,
    /// The count the number being read goes to.
    number_field: Option<Field>,
    number: u64,
    /// The number has a sign, fraction or exponent: not a count.
    number_unusual: bool,
    choices: Choices,
    /// A top-level `usage` object was read.
    top_usage: bool,
}

impl Default for JsonScan {
    fn default() -> JsonScan {
        JsonScan {
            state: State::Value,
            stack: 0,
            depth: 0,
            key: [0; KEY_CAPACITY],
            key_len: 0,
            key_unusual: false,
            member: KeyMeaning::Other,
            usage_depth: 0,
            details_depth: 0,
            details: Details::Cached,
            number_field: None,
            number: 0,
            number_unusual: false,
            choices: Choices::Unseen,
            top_usage: false,
        }
    }
}

impl JsonScan {
    /// Reads `bytes`; in `line` mode (an event's data line) it stops before
    /// the first CR or LF and returns how far it read.
    fn feed(&mut self, bytes: &[u8], reported: &mut Reported, line: bool) -> usize {
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
                    // A key whole in this piece is compared where it lies.
                    let rest = bytes.get(pos + 1..).unwrap_or_default();
                    let (run, _) = plain_run(rest);
                    if let (Some(b'"'), Some(key)) = (rest.get(run), rest.get(..run)) {
                        self.member = self.meaning(key);
                        self.state = State::Colon;
                        pos += run + 2;
                        continue;
                    }
                    self.key_len = 0;
                    self.key_unusual = false;
                    self.state = State::InKey { escaped: false };
                }
                State::InKey { escaped } => self.key_byte(b, escaped),
                State::Done | State::Failed => return if line { line_end(bytes, pos) } else { bytes.len() },
                _ => {
                    if !self.structural(b, reported) {
                        // The byte ended a number or literal: read it again in the new state.
                        continue;
                    }
                }
            }
            pos += 1;
        }
        bytes.len()
    }

    fn key_byte(&mut self, b: u8, escaped: bool) {
        match (b, escaped) {
            (_, true) => self.state = State::InKey { escaped: false },
            (b'\\', false) => {
                self.key_unusual = true;
                self.state = State::InKey { escaped: true };
            }
            (b'"', false) => {
                let key = self.key;
                let key = key.get(..usize::from(self.key_len)).unwrap_or_default();
                self.member = if self.key_unusual {
                    KeyMeaning::Other
                } else {
                    self.meaning(key)
                };
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

    /// What the key just read means where it stands.
    fn meaning(&self, key: &[u8]) -> KeyMeaning {
        if self.depth == self.details_depth {
            return match (self.details, key) {
                (Details::Cached, b"cached_tokens") => KeyMeaning::Count(Field::CachedTokens),
                (Details::Reasoning, b"reasoning_tokens") => KeyMeaning::Count(Field::ReasoningTokens),
                _ => KeyMeaning::Other,
            };
        }
        if self.depth == self.usage_depth {
            return match key {
                b"prompt_tokens" => KeyMeaning::Count(Field::PromptTokens),
                b"completion_tokens" => KeyMeaning::Count(Field::CompletionTokens),
                b"input_tokens" => KeyMeaning::Count(Field::InputTokens),
                b"output_tokens" => KeyMeaning::Count(Field::OutputTokens),
                b"cache_read_input_tokens" => KeyMeaning::Count(Field::CacheRead),
                b"cache_creation_input_tokens" => KeyMeaning::Count(Field::CacheCreation),
                b"prompt_tokens_details" | b"input_tokens_details" => KeyMeaning::Details(Details::Cached),
                b"completion_tokens_details" | b"output_tokens_details" => KeyMeaning::Details(Details::Reasoning),
                _ => KeyMeaning::Other,
            };
        }
        match key {
            b"usage" if self.usage_depth == 0 => KeyMeaning::Usage,
            b"choices" if self.depth == 1 => KeyMeaning::Choices,
            _ => KeyMeaning::Other,
        }
    }

    /// Handles a byte outside strings and keys; false when the byte must be
    /// read again (it ended a number or a literal).
    fn structural(&mut self, b: u8, reported: &mut Reported) -> bool {
        match self.state {
            State::Number => {
                match b {
                    b'0'..=b'9' => self.number = self.number.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                    b'-' | b'+' | b'.' | b'e' | b'E' => self.number_unusual = true,
                    _ => {
                        if let (Some(field), false) = (self.number_field, self.number_unusual) {
                            reported.set(field, self.number);
                        }
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
                if self.state == State::ArrayFirst && self.choices == Choices::Opening && self.depth == 2 {
                    self.choices = if b == b']' { Choices::Empty } else { Choices::NotEmpty };
                }
                if b == b']' && self.state == State::ArrayFirst {
                    self.close(false);
                } else {
                    self.value_start(b);
                }
                true
            }
            State::ObjectFirst | State::Key => {
                match b {
                    b'}' if self.state == State::ObjectFirst => self.close(true),
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
                    b'}' if in_object && self.depth > 0 => self.close(true),
                    b']' if !in_object && self.depth > 0 => self.close(false),
                    _ => self.state = State::Failed,
                }
                true
            }
            State::InString { .. } | State::InKey { .. } | State::Done | State::Failed => true,
        }
    }

    fn value_start(&mut self, b: u8) {
        let member = std::mem::replace(&mut self.member, KeyMeaning::Other);
        match b {
            b'{' | b'[' => {
                if self.depth >= MAX_DEPTH {
                    self.state = State::Failed;
                    return;
                }
                self.depth += 1;
                self.stack = (self.stack << 1) | u128::from(b == b'{');
                if b == b'{' {
                    self.state = State::ObjectFirst;
                    match member {
                        KeyMeaning::Usage => {
                            self.usage_depth = self.depth;
                            self.top_usage |= self.depth == 2;
                        }
                        KeyMeaning::Details(details) => {
                            self.details_depth = self.depth;
                            self.details = details;
                        }
                        _ => {}
                    }
                } else {
                    self.state = State::ArrayFirst;
                    // The first `choices` decides, so the verdict cannot turn
                    // once given (and is the same however the body is split).
                    if member == KeyMeaning::Choices && self.choices == Choices::Unseen {
                        self.choices = Choices::Opening;
                    }
                }
            }
            b'"' => self.state = State::InString { escaped: false },
            b'0'..=b'9' | b'-' => {
                self.state = State::Number;
                self.number_field = match member {
                    KeyMeaning::Count(field) => Some(field),
                    _ => None,
                };
                self.number_unusual = b == b'-';
                self.number = if b == b'-' { 0 } else { u64::from(b - b'0') };
            }
            b't' | b'f' | b'n' => self.state = State::Literal,
            _ => self.state = State::Failed,
        }
    }

    fn close(&mut self, object: bool) {
        if (self.stack & 1 == 1) != object || self.depth == 0 {
            self.state = State::Failed;
            return;
        }
        if self.depth == self.details_depth {
            self.details_depth = 0;
        }
        if self.depth == self.usage_depth {
            self.usage_depth = 0;
        }
        self.depth -= 1;
        self.stack >>= 1;
        self.state = if self.depth == 0 {
            State::Done
        } else {
            State::AfterValue
        };
    }

    /// Whether the document is surely not the usage chunk: `choices` has an
    /// element, or it is not JSON the reader follows (`[DONE]`).
    fn surely_kept(&self) -> bool {
        self.choices == Choices::NotEmpty || self.state == State::Failed
    }

    /// The usage chunk: empty top-level `choices` and a top-level `usage` object.
    fn is_usage_chunk(&self) -> bool {
        self.choices == Choices::Empty && self.top_usage
    }
}

/// The offset of the first CR or LF in `bytes` at or after `from` (or its length).
fn line_end(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(rest.len())
}

/// Where the event-stream parser is in its line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum LineState {
    /// At the start of a line (a line end here ends the event).
    #[default]
    Start,
    /// Reading a field name: this many bytes of `data` matched.
    Name(u8),
    /// Just after `data:` (one space may follow).
    DataStart,
    Data,
    /// Another field or a comment: skipped.
    Skip,
}

/// What the event-stream parser tells the stripper, with the position in the piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// The current event is surely not the usage chunk.
    Kept,
    /// The current event ended just before `at`; the next starts there.
    Ended { at: usize, usage_chunk: bool },
}

/// The event-stream parser (LF, CR or CRLF line ends, as the format allows).
#[derive(Debug, Default)]
struct Lines {
    line: LineState,
    /// The last byte was a CR: an LF now belongs to the same line end.
    after_cr: bool,
    /// A blank line ended with CR: the event ends after a following LF, or
    /// before any other byte.
    end_pending: bool,
    /// The current event was already signalled as kept.
    kept: bool,
}

impl Lines {
    fn feed(&mut self, piece: &[u8], json: &mut JsonScan, reported: &mut Reported, signal: &mut dyn FnMut(Signal)) {
        let mut pos = 0;
        while let Some(&b) = piece.get(pos) {
            if self.end_pending {
                self.end_pending = false;
                let at = if b == b'\n' { pos + 1 } else { pos };
                self.end_event(at, json, signal);
                if b == b'\n' {
                    self.after_cr = false;
                    pos += 1;
                    continue;
                }
            }
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                pos += 1;
                continue;
            }
            match (self.line, b) {
                (LineState::Start, b'\r' | b'\n') => {
                    if b == b'\r' {
                        self.after_cr = true;
                        self.end_pending = true;
                    } else {
                        self.end_event(pos + 1, json, signal);
                    }
                    pos += 1;
                    continue;
                }
                (_, b'\r' | b'\n') => {
                    if self.line == LineState::Data {
                        // Data lines of one event are joined by LF: JSON whitespace.
                        json.feed(b"\n", reported, false);
                    }
                    self.after_cr = b == b'\r';
                    self.line = LineState::Start;
                }
                (LineState::Start, b'd') => self.line = LineState::Name(1),
                (LineState::Start, _) => self.line = LineState::Skip,
                (LineState::Name(4), b':') => self.line = LineState::DataStart,
                (LineState::Name(matched), _) => {
                    self.line = if b"data".get(usize::from(matched)) == Some(&b) {
                        LineState::Name(matched + 1)
                    } else {
                        LineState::Skip
                    };
                }
                (LineState::DataStart | LineState::Data, _) => {
                    if self.line == LineState::DataStart && b == b' ' {
                        self.line = LineState::Data;
                        pos += 1;
                        continue;
                    }
                    self.line = LineState::Data;
                    pos += json.feed(piece.get(pos..).unwrap_or_default(), reported, true);
                    if !self.kept && json.surely_kept() {
                        self.kept = true;
                        signal(Signal::Kept);
                    }
                    continue;
                }
                (LineState::Skip, _) => {
                    pos = line_end(piece, pos);
                    continue;
                }
            }
            pos += 1;
        }
    }

    fn end_event(&mut self, at: usize, json: &mut JsonScan, signal: &mut dyn FnMut(Signal)) {
        signal(Signal::Ended {
            at,
            usage_chunk: json.is_usage_chunk(),
        });
        *json = JsonScan::default();
        self.kept = false;
    }
}

/// The stripper's memory across pieces.
#[derive(Debug, Default)]
struct Stripper {
    /// The current event's bytes so far, while it may be the usage chunk.
    held: Vec<u8>,
    /// The current event is known not to be the usage chunk: its bytes pass.
    passing: bool,
}

/// What one piece becomes: the pieces of output, in order.
struct Plan {
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

impl Plan {
    fn start(strip: &Stripper) -> Plan {
        Plan {
            parts: Vec::new(),
            event_start: 0,
            started_here: false,
            pass_from: strip.passing.then_some(0),
        }
    }

    fn on(&mut self, signal: Signal, strip: &mut Stripper) {
        match signal {
            Signal::Kept if !strip.passing => {
                self.release(strip);
                self.pass_from = Some(self.event_start);
            }
            Signal::Kept => {}
            Signal::Ended { at, usage_chunk } => {
                if !strip.passing {
                    if usage_chunk {
                        strip.held.clear();
                    } else {
                        self.release(strip);
                        self.parts.push(Part::Piece(self.event_start, at));
                    }
                } else if let Some(from) = self.pass_from.take() {
                    self.parts.push(Part::Piece(from, at));
                }
                // The next event starts here, undecided.
                strip.passing = false;
                self.event_start = at;
                self.started_here = true;
            }
        }
    }

    /// Hands what was held of the current event to the client.
    fn release(&mut self, strip: &mut Stripper) {
        strip.passing = true;
        if !self.started_here && !strip.held.is_empty() {
            self.parts.push(Part::Held(std::mem::take(&mut strip.held)));
        }
    }

    fn finish(mut self, piece: &[u8], strip: &mut Stripper) -> Output {
        if strip.passing {
            let from = self.pass_from.unwrap_or(self.event_start);
            self.parts.push(Part::Piece(from, piece.len()));
        } else {
            let tail = piece.get(self.event_start..).unwrap_or_default();
            if strip.held.len() + tail.len() > MAX_HELD {
                // Too long to be the usage chunk worth holding: let it through.
                self.release(strip);
                self.parts.push(Part::Piece(self.event_start, piece.len()));
            } else {
                strip.held.extend_from_slice(tail);
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

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"say \"usage\": {\"prompt_tokens\": 99}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":7,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":5,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
    const EMBEDDINGS: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5,1e-3]}],"model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
    const RESPONSES: &str = r#"{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hi","annotations":[]}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":3},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":21}}"#;
    const MESSAGE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":30,"output_tokens":6}}"#;
    const ERROR: &str =
        r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":null}}"#;

    /// An OpenAI stream that was asked for usage: `usage: null` in every chunk, then the usage chunk.
    const CHAT_STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    );
    const USAGE_CHUNK: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":3,\"total_tokens\":20,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";
    const ANTHROPIC_STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"content\":[],\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":8,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    const RESPONSES_STREAM: &str = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"status\":\"completed\",\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":2,\"total_tokens\":13}}}\n\n",
    );

    fn usage(input: u64, output: u64, cached: Option<u64>, reasoning: Option<u64>) -> Usage {
        Usage {
            input: Some(input),
            output: Some(output),
            cached_input: cached,
            reasoning_output: reasoning,
        }
    }

    /// Feeds `body` in the given pieces; returns the usage and what the client got.
    fn read(framing: Framing, strip: bool, pieces: &[&[u8]]) -> (Usage, Vec<u8>) {
        let mut reader = ResponseReader::new(framing, strip);
        let mut client = Vec::new();
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            let output = if i == last {
                reader.feed_last(piece)
            } else {
                reader.feed(piece)
            };
            match output {
                Output::Unchanged => client.extend_from_slice(piece),
                Output::Replace(bytes) => client.extend_from_slice(&bytes),
            }
        }
        (reader.usage(), client)
    }

    /// Every way of cutting `body` in two, and in three around the middle, and byte by byte.
    fn splits(body: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut ways: Vec<Vec<&[u8]>> = (0..=body.len()).map(|i| vec![&body[..i], &body[i..]]).collect();
        let middle = body.len() / 2;
        for j in middle..body.len() {
            ways.push(vec![&body[..middle / 2], &body[middle / 2..j], &body[j..]]);
        }
        ways.push(body.chunks(1).collect());
        ways
    }

    fn crlf(text: &str) -> String {
        text.replace('\n', "\r\n")
    }

    #[test]
    fn usage_of_every_shape_split_anywhere() {
        let stream = format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}");
        let rows: Vec<(Framing, String, Usage)> = vec![
            (Framing::Json, CHAT.to_owned(), usage(21, 7, Some(5), Some(2))),
            (
                Framing::Json,
                EMBEDDINGS.to_owned(),
                Usage {
                    input: Some(4),
                    ..Usage::default()
                },
            ),
            (Framing::Json, RESPONSES.to_owned(), usage(12, 9, Some(3), Some(4))),
            // Anthropic: the cache reads and writes are input too.
            (Framing::Json, MESSAGE.to_owned(), usage(42, 6, Some(30), None)),
            (Framing::Json, ERROR.to_owned(), Usage::default()),
            (Framing::Events, stream.clone(), usage(17, 3, Some(4), None)),
            (Framing::Events, crlf(&stream), usage(17, 3, Some(4), None)),
            (Framing::Events, stream.replace('\n', "\r"), usage(17, 3, Some(4), None)),
            (Framing::Events, format!("{CHAT_STREAM}{DONE}"), Usage::default()),
            (
                Framing::Events,
                ANTHROPIC_STREAM.to_owned(),
                usage(33, 15, Some(8), None),
            ),
            (Framing::Events, crlf(ANTHROPIC_STREAM), usage(33, 15, Some(8), None)),
            (
                Framing::Events,
                RESPONSES_STREAM.to_owned(),
                usage(11, 2, Some(0), None),
            ),
            // A stream cut short keeps what it reported.
            (
                Framing::Events,
                ANTHROPIC_STREAM[..ANTHROPIC_STREAM.find("event: content_block_start").unwrap_or(0)].to_owned(),
                usage(33, 1, Some(8), None),
            ),
        ];
        for (framing, body, expected) in rows {
            for pieces in splits(body.as_bytes()) {
                let (got, client) = read(framing, false, &pieces);
                assert_eq!(got, expected, "{body:?} in {} pieces", pieces.len());
                assert_eq!(client, body.as_bytes(), "unchanged without stripping");
            }
        }
    }

    #[test]
    fn the_injected_usage_chunk_is_removed_and_nothing_else() {
        let cases = [
            (
                format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}"),
                format!("{CHAT_STREAM}{DONE}"),
            ),
            (
                crlf(&format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}")),
                crlf(&format!("{CHAT_STREAM}{DONE}")),
            ),
            (
                format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}").replace('\n', "\r"),
                format!("{CHAT_STREAM}{DONE}").replace('\n', "\r"),
            ),
            // A repeated `choices` does not undo the first.
            (
                format!("data: {{\"choices\":[{{\"index\":0}}],\"choices\":[],\"usage\":{{}}}}\n\n{USAGE_CHUNK}{DONE}"),
                format!("data: {{\"choices\":[{{\"index\":0}}],\"choices\":[],\"usage\":{{}}}}\n\n{DONE}"),
            ),
            // Azure's first chunk has empty choices and no usage: kept. So are comments.
            (
                format!("data: {{\"choices\":[],\"prompt_filter_results\":[]}}\n\n: keep-alive\n\n{USAGE_CHUNK}{DONE}"),
                format!("data: {{\"choices\":[],\"prompt_filter_results\":[]}}\n\n: keep-alive\n\n{DONE}"),
            ),
        ];
        for (stream, expected) in cases {
            for pieces in splits(stream.as_bytes()) {
                let (got, client) = read(Framing::Events, true, &pieces);
                assert_eq!(String::from_utf8_lossy(&client), expected, "in {} pieces", pieces.len());
                assert_eq!(got, usage(17, 3, Some(4), None));
            }
        }
        // Other streams go through untouched.
        for stream in [ANTHROPIC_STREAM, RESPONSES_STREAM] {
            for pieces in splits(stream.as_bytes()) {
                assert_eq!(read(Framing::Events, true, &pieces).1, stream.as_bytes());
            }
        }
    }

    #[test]
    fn content_chunks_are_not_held_once_choices_shows_an_element() {
        let mut reader = ResponseReader::new(Framing::Events, true);
        let chunk = CHAT_STREAM.split_inclusive("\n\n").nth(1).unwrap_or_default();
        // Cut just after `"choices":[{`: everything read so far goes out now.
        let cut = chunk.find("[{").unwrap_or(0) + 2;
        assert_eq!(reader.feed(&chunk.as_bytes()[..cut]), Output::Unchanged);
        assert_eq!(reader.feed(&chunk.as_bytes()[cut..]), Output::Unchanged);
        // Cut before that: the start is held, then released with the rest.
        let early = chunk.find("choices").unwrap_or(0);
        assert_eq!(reader.feed(&chunk.as_bytes()[..early]), Output::Replace(Vec::new()));
        assert_eq!(
            reader.feed(&chunk.as_bytes()[early..]),
            Output::Replace(chunk.as_bytes().to_vec())
        );
    }

    #[test]
    fn hostile_bodies_cost_nothing_and_change_nothing() {
        let huge = format!(
            "data: {{\"choices\":[],\"x\":\"{}\"}}\n\n{USAGE_CHUNK}",
            "a".repeat(3 * MAX_HELD)
        );
        let deep = format!("{}\"usage\":{{\"prompt_tokens\":1}}", "{\"a\":[".repeat(200));
        let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let rows: Vec<(Framing, Vec<u8>)> = vec![
            (Framing::Events, huge.clone().into_bytes()),
            (Framing::Json, deep.clone().into_bytes()),
            (Framing::Events, deep.into_bytes()),
            (Framing::Json, binary.clone()),
            (Framing::Events, binary),
            (Framing::Json, b"{\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":2.5,\"input_tokens\":99999999999999999999999}}".to_vec()),
        ];
        for (framing, body) in rows {
            for pieces in [vec![&body[..]], body.chunks(7).collect()] {
                let (_, client) = read(framing, false, &pieces);
                assert_eq!(client, body);
            }
        }
        // The huge event is let through once it outgrows what may be held; the usage chunk still goes.
        let (_, client) = read(Framing::Events, true, &huge.as_bytes().chunks(1000).collect::<Vec<_>>());
        assert_eq!(client, huge.replace(USAGE_CHUNK, "").as_bytes());
        // Numbers that are not counts are not counted; an oversized one saturates.
        let (got, _) = read(
            Framing::Json,
            false,
            &[br#"{"usage":{"prompt_tokens":-3,"completion_tokens":2.5,"input_tokens":99999999999999999999999}}"#],
        );
        assert_eq!((got.input, got.output), (Some(u64::MAX), None));
    }

    #[test]
    fn compressed_responses_are_not_read() {
        use crate::headers::HeaderBlock;
        let rows: &[(&[(&str, &[u8])], Option<Framing>)] = &[
            (&[("content-type", b"text/event-stream")], Some(Framing::Events)),
            (
                &[("content-type", b"application/json"), ("content-encoding", b"identity")],
                Some(Framing::Json),
            ),
            (
                &[("content-type", b"application/json"), ("content-encoding", b"gzip")],
                None,
            ),
            (&[("content-encoding", b"br")], None),
            (&[], None),
        ];
        for (pairs, framing) in rows {
            let headers = HeaderBlock::from_pairs(pairs.iter().copied());
            assert_eq!(Framing::of_response(&headers), *framing, "{pairs:?}");
        }
    }

    #[test]
    fn framing_from_content_type() {
        let rows: &[(&[u8], Option<Framing>)] = &[
            (b"application/json", Some(Framing::Json)),
            (b"Application/JSON; charset=utf-8", Some(Framing::Json)),
            (b"application/problem+json", Some(Framing::Json)),
            (b"text/event-stream", Some(Framing::Events)),
            (b"text/event-stream; charset=utf-8", Some(Framing::Events)),
            (b"text/plain", None),
            (b"", None),
        ];
        for (value, framing) in rows {
            assert_eq!(Framing::of_content_type(value), *framing, "{value:?}");
        }
    }
}
