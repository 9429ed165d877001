//! A zero-copy walk over a validated document: what a translator reads a
//! body with, copying large strings and sub-objects as the slices they are.

use std::borrow::Cow;

use super::cursor::Cursor;
use super::plain::plain_run;
use super::string::Str;
use super::{Error, Kind};

/// A value in a document [`Value::parse`] has validated: its bytes, exactly
/// its span, and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a [u8],
    kind: Kind,
}

impl<'a> Value<'a> {
    /// Validates `document` in full (one value, whitespace around it).
    pub fn parse(document: &'a [u8]) -> Result<Value<'a>, Error> {
        let mut cursor = Cursor::new(document);
        let value = read_value(&mut cursor)?;
        if !cursor.at_end() {
            return Err(cursor.syntax("the end of the document"));
        }
        Ok(value)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The value as written: valid JSON to copy as it is.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// An object's members in order, keys as written (a repeated key comes
    /// as often as it is written); nothing for any other kind.
    pub fn members(&self) -> Members<'a> {
        Members {
            cursor: self.inside(Kind::Object),
            first: true,
        }
    }

    /// An array's items in order; nothing for any other kind.
    pub fn items(&self) -> Items<'a> {
        Items {
            cursor: self.inside(Kind::Array),
            first: true,
        }
    }

    /// The member named `key`; the last one if it repeats, as serde_json
    /// reads a repeated key.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.members()
            .filter(|(name, _)| name.is(key))
            .last()
            .map(|(_, value)| value)
    }

    /// A string's token.
    pub fn as_str(&self) -> Option<Str<'a>> {
        if self.kind != Kind::String {
            return None;
        }
        let inner = self.raw.get(1..self.raw.len().saturating_sub(1)).unwrap_or_default();
        // The only byte that stops a plain run in a validated string is `\`.
        let escaped = plain_run(inner).0 < inner.len();
        Some(Str::validated(self.raw, escaped))
    }

    /// A string's decoded value, borrowed unless it holds an escape.
    pub fn decoded_str(&self) -> Option<Cow<'a, str>> {
        self.as_str().map(|s| s.decoded())
    }

    /// A non-negative integer that fits a `u64` (no fraction or exponent).
    pub fn as_u64(&self) -> Option<u64> {
        if self.kind != Kind::Number || !self.raw.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.raw
            .iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.raw {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        self.kind == Kind::Null
    }

    /// A cursor just inside this container, if it is of `kind`.
    fn inside(&self, kind: Kind) -> Option<Cursor<'a>> {
        (self.kind == kind).then(|| {
            let mut cursor = Cursor::new(self.raw);
            cursor.eat(if kind == Kind::Object { b'{' } else { b'[' });
            cursor
        })
    }
}

/// The value at the cursor, after any whitespace.
fn read_value<'a>(cursor: &mut Cursor<'a>) -> Result<Value<'a>, Error> {
    cursor.skip_ws();
    let start = cursor.pos();
    let kind = cursor.value(0)?;
    let raw = cursor.bytes().get(start..cursor.pos()).unwrap_or_default();
    Ok(Value { raw, kind })
}

/// An object's members: its keys and values. Reading a validated document
/// cannot fail; were it to, the walk would end there.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    cursor: Option<Cursor<'a>>,
    first: bool,
}

impl<'a> Iterator for Members<'a> {
    type Item = (Str<'a>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = self.cursor.as_mut()?;
        let member = cursor
            .next_key(std::mem::take(&mut self.first))
            .and_then(|key| key.map(|key| Ok((key, read_value(cursor)?))).transpose());
        match member {
            Ok(Some(member)) => Some(member),
            Ok(None) | Err(_) => {
                self.cursor = None;
                None
            }
        }
    }
}

/// An array's items. Reading a validated document cannot fail; were it to,
/// the walk would end there.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    cursor: Option<Cursor<'a>>,
    first: bool,
}

impl<'a> Iterator for Items<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = self.cursor.as_mut()?;
        let item = match cursor.next_item(std::mem::take(&mut self.first)) {
            Ok(true) => read_value(cursor).ok(),
            Ok(false) | Err(_) => None,
        };
        if item.is_none() {
            self.cursor = None;
        }
        item
    }
}
