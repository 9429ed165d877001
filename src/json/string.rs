//! A validated string token and its decoding.

use std::borrow::Cow;

use super::plain::plain_run;

/// A string token [`super::Cursor`] has validated, quotes included,
/// borrowed from the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> Str<'a> {
    /// Only the cursor makes one, from a token it has validated.
    pub(super) fn validated(raw: &'a [u8], escaped: bool) -> Str<'a> {
        Str { raw, escaped }
    }

    /// The token as written, quotes included: valid JSON to copy as it is.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The bytes between the quotes, escapes as written.
    #[inline]
    pub fn inner(&self) -> &'a [u8] {
        let unquoted = self.raw.strip_prefix(b"\"").unwrap_or(self.raw);
        unquoted.strip_suffix(b"\"").unwrap_or(unquoted)
    }

    /// Whether the token holds an escape (decoding it copies).
    pub fn is_escaped(&self) -> bool {
        self.escaped
    }

    /// Whether the decoded value is `text`, without decoding an unescaped token.
    #[inline]
    pub fn is(&self, text: &str) -> bool {
        if self.escaped {
            return self.decoded() == text;
        }
        self.inner() == text.as_bytes()
    }

    /// The decoded value: borrowed unless the token holds an escape.
    pub fn decoded(&self) -> Cow<'a, str> {
        let inner = self.inner();
        if self.escaped {
            return Cow::Owned(unescape(inner));
        }
        // Validated, so this never copies; lossy rather than a panic path.
        String::from_utf8_lossy(inner)
    }
}

/// The value of four hex digits (`\u` escapes).
pub(super) fn hex4(digits: &[u8]) -> Option<u16> {
    let digits: &[u8; 4] = digits.first_chunk()?;
    digits.iter().try_fold(0u16, |value, &d| {
        let nibble = char::from(d).to_digit(16)?;
        Some((value << 4) | nibble as u16)
    })
}

/// Decodes the inside of a validated string token. Unpaired surrogates
/// cannot occur in one; were they to, they would read as U+FFFD.
fn unescape(inner: &[u8]) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    loop {
        let (run, _) = plain_run(rest);
        let (plain, tail) = rest.split_at(run.min(rest.len()));
        out.push_str(&String::from_utf8_lossy(plain));
        let Some((b'\\', tail)) = tail.split_first().map(|(&b, t)| (b, t)) else {
            return out;
        };
        let Some((&letter, tail)) = tail.split_first() else {
            return out;
        };
        rest = tail;
        let simple = match letter {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let (c, after) = unicode_escape(rest);
                rest = after;
                c
            }
            other => char::from(other),
        };
        out.push(simple);
    }
}

/// The character of a `\u` escape whose four digits start `bytes` (a
/// surrogate pair takes the `\uXXXX` after it), and what follows it.
fn unicode_escape(bytes: &[u8]) -> (char, &[u8]) {
    let unit = hex4(bytes).unwrap_or(0xFFFD);
    let after = bytes.get(4..).unwrap_or_default();
    if !(0xD800..0xDC00).contains(&unit) {
        return (char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'), after);
    }
    let low = after
        .strip_prefix(b"\\u")
        .and_then(hex4)
        .filter(|low| (0xDC00..0xE000).contains(low));
    match low {
        Some(low) => {
            let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
            (
                char::from_u32(code).unwrap_or('\u{FFFD}'),
                after.get(6..).unwrap_or_default(),
            )
        }
        None => ('\u{FFFD}', after),
    }
}
