//! A validating tokenizer over a complete buffer (RFC 8259), read in place.
//!
//! A reader steps through the members of the objects it cares about with
//! [`Cursor::next_key`] and has every other value checked and skipped by
//! [`Cursor::value`], which holds the open containers as one bit each in a
//! `u128` instead of recursing: one pass, nothing built, no input can
//! exhaust the stack. Its small steps are `#[inline]`: at `opt-level = "s"`
//! they would stay calls, which V8 does not inline (a 1 KiB body's scan took
//! a fifth longer as calls).

use super::plain::plain_run;
use super::string::{hex4, Str};
use super::{Error, Kind, MAX_DEPTH};

/// A position in a complete JSON buffer.
#[derive(Debug, Clone)]
pub struct Cursor<'b> {
    bytes: &'b [u8],
    pos: usize,
}

/// What comes next inside the containers [`Cursor::value`] has open.
#[derive(Clone, Copy)]
enum Expect {
    /// A value (after `:` or `,` in an array).
    Value,
    /// A key or `}` (just after `{`).
    FirstKey,
    /// A key (after `,` in an object).
    Key,
    /// A value or `]` (just after `[`).
    FirstItem,
    /// `,` or the closing bracket of the current container.
    Separator,
}

/// The containers [`Cursor::value`] has open: one bit each, 1 for an object.
struct Open {
    stack: u128,
    count: u8,
    /// Containers open around the value being read.
    around: u8,
}

impl<'b> Cursor<'b> {
    pub fn new(bytes: &'b [u8]) -> Cursor<'b> {
        Cursor { bytes, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn bytes(&self) -> &'b [u8] {
        self.bytes
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Whether the bytes from here start with `word`.
    #[inline]
    pub fn starts_with(&self, word: &[u8]) -> bool {
        self.bytes.get(self.pos..).is_some_and(|rest| rest.starts_with(word))
    }

    /// A syntax error at the current byte.
    pub fn syntax(&self, expected: &'static str) -> Error {
        Error::Syntax {
            offset: self.pos,
            expected,
        }
    }

    #[inline]
    pub fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace; whether nothing else follows.
    #[inline]
    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.bytes.len()
    }

    /// Reads `b` here, after any whitespace; whether it was there.
    #[inline]
    pub fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        let here = self.peek() == Some(b);
        self.pos += usize::from(here);
        here
    }

    /// The next member of an object whose `{` is read (`first` for its
    /// first member): its key, the cursor left before its value; `None`
    /// once the object's `}` is read.
    #[inline]
    pub fn next_key(&mut self, first: bool) -> Result<Option<Str<'b>>, Error> {
        let closed = if first { self.eat(b'}') } else { self.separator(true)? };
        if closed {
            return Ok(None);
        }
        self.member_key().map(Some)
    }

    /// Whether an array whose `[` is read has another item (`first` for its
    /// first), the cursor left before it; false once its `]` is read.
    #[inline]
    pub fn next_item(&mut self, first: bool) -> Result<bool, Error> {
        let closed = if first { self.eat(b']') } else { self.separator(false)? };
        Ok(!closed)
    }

    /// One whole value from here, after any whitespace, validated; `around`
    /// containers are open around it. Returns its kind.
    pub fn value(&mut self, around: u8) -> Result<Kind, Error> {
        self.skip_ws();
        let kind = self
            .peek()
            .and_then(Kind::of_first_byte)
            .ok_or_else(|| self.syntax("a value"))?;
        match kind {
            Kind::Object | Kind::Array => self.containers(around)?,
            _ => self.scalar()?,
        }
        Ok(kind)
    }

    /// A container and everything in it, without recursion.
    fn containers(&mut self, around: u8) -> Result<(), Error> {
        let mut open = Open {
            stack: 0,
            count: 0,
            around,
        };
        let mut expect = self.open(&mut open)?;
        while open.count > 0 {
            self.skip_ws();
            expect = match expect {
                Expect::FirstKey if self.eat(b'}') => close(&mut open),
                Expect::FirstItem if self.eat(b']') => close(&mut open),
                Expect::FirstKey | Expect::Key => {
                    self.member_key()?;
                    Expect::Value
                }
                Expect::Value | Expect::FirstItem => match self.peek() {
                    Some(b'{' | b'[') => self.open(&mut open)?,
                    _ => {
                        self.scalar()?;
                        Expect::Separator
                    }
                },
                Expect::Separator => {
                    let in_object = open.stack & 1 == 1;
                    match self.separator(in_object)? {
                        true => close(&mut open),
                        false if in_object => Expect::Key,
                        false => Expect::Value,
                    }
                }
            };
        }
        Ok(())
    }

    /// Reads the `{` or `[` here.
    #[inline]
    fn open(&mut self, open: &mut Open) -> Result<Expect, Error> {
        if open.around.saturating_add(open.count) >= MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        let object = self.peek() == Some(b'{');
        self.pos += 1;
        open.count += 1;
        open.stack = (open.stack << 1) | u128::from(object);
        Ok(if object { Expect::FirstKey } else { Expect::FirstItem })
    }

    /// After a value in a container: `,` (false) or its closing bracket (true).
    #[inline]
    fn separator(&mut self, in_object: bool) -> Result<bool, Error> {
        self.skip_ws();
        let closing = if in_object { b'}' } else { b']' };
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) if b == closing => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.syntax(if in_object { "`,` or `}`" } else { "`,` or `]`" })),
        }
    }

    /// A key and its `:`.
    #[inline]
    fn member_key(&mut self) -> Result<Str<'b>, Error> {
        self.skip_ws();
        let key = self.string()?;
        if !self.eat(b':') {
            return Err(self.syntax("`:`"));
        }
        Ok(key)
    }

    /// A string, number, `true`, `false` or `null`.
    #[inline]
    pub fn scalar(&mut self) -> Result<(), Error> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax("a value")),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Error> {
        if !self.starts_with(word) {
            return Err(self.syntax("`true`, `false` or `null`"));
        }
        self.pos += word.len();
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), Error> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.syntax("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.syntax("a digit after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.syntax("a digit in the exponent"));
            }
        }
        Ok(())
    }

    /// A string token starting here: validates escapes, UTF-8 and the
    /// absence of raw control characters.
    pub fn string(&mut self) -> Result<Str<'b>, Error> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("a string"));
        }
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        let mut non_ascii = false;
        loop {
            let (run, run_non_ascii) = plain_run(self.bytes.get(self.pos..).unwrap_or_default());
            self.pos += run;
            non_ascii |= run_non_ascii;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    let raw = self.bytes.get(start..self.pos).unwrap_or_default();
                    // Escapes are ASCII, so the raw bytes are valid UTF-8 exactly
                    // when the string is; checked only for strings that need it.
                    if non_ascii {
                        if let Err(e) = std::str::from_utf8(raw) {
                            return Err(Error::Syntax {
                                offset: start + e.valid_up_to(),
                                expected: "valid UTF-8",
                            });
                        }
                    }
                    return Ok(Str::validated(raw, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => return Err(self.syntax("no raw control character in a string")),
                None => return Err(self.syntax("`\"` to close the string")),
            }
        }
    }

    /// One escape sequence starting at `\`.
    fn escape(&mut self) -> Result<(), Error> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                match self.hex4()? {
                    0xD800..=0xDBFF => {
                        let low_follows = self.starts_with(b"\\u");
                        if low_follows {
                            self.pos += 2;
                        }
                        match low_follows.then(|| self.hex4()).transpose()? {
                            Some(0xDC00..=0xDFFF) => Ok(()),
                            _ => Err(self.syntax("a low surrogate after a high surrogate")),
                        }
                    }
                    0xDC00..=0xDFFF => Err(self.syntax("no lone low surrogate")),
                    _ => Ok(()),
                }
            }
            _ => Err(self.syntax("a valid escape sequence")),
        }
    }

    fn hex4(&mut self) -> Result<u16, Error> {
        let unit =
            hex4(self.bytes.get(self.pos..).unwrap_or_default()).ok_or_else(|| self.syntax("four hex digits"))?;
        self.pos += 4;
        Ok(unit)
    }
}

/// Reads a container's closing bracket (already consumed) off `open`.
fn close(open: &mut Open) -> Expect {
    open.count -= 1;
    open.stack >>= 1;
    Expect::Separator
}
