//! Writing JSON into a byte vector: slices read from another document are
//! copied as they are, strings escaped, commas placed.

use super::plain::plain_run;

/// Appends `text` as a JSON string, quotes included, escaped as serde_json
/// escapes it.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(text.len() + 2);
    out.push(b'"');
    let mut rest = text.as_bytes();
    loop {
        let (run, _) = plain_run(rest);
        let (plain, tail) = rest.split_at(run.min(rest.len()));
        out.extend_from_slice(plain);
        let Some((&b, tail)) = tail.split_first() else { break };
        rest = tail;
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => 0,
        };
        if short != 0 {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            let hex = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
        }
    }
    out.push(b'"');
}

/// Builds a JSON document in a `Vec<u8>`. Each call appends one piece; the
/// writer puts the commas between members and items. It checks nothing
/// else: a caller opens and closes what it writes, and writes a key before
/// each member's value.
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
    /// Nothing written yet in the current container (or after a key): no comma.
    first: bool,
}

impl Default for Writer {
    fn default() -> Writer {
        Writer::new(Vec::new())
    }
}

impl Writer {
    /// A writer that appends to `out`.
    pub fn new(out: Vec<u8>) -> Writer {
        Writer { out, first: true }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    pub fn begin_object(&mut self) -> &mut Writer {
        self.open(b'{')
    }

    pub fn end_object(&mut self) -> &mut Writer {
        self.close(b'}')
    }

    pub fn begin_array(&mut self) -> &mut Writer {
        self.open(b'[')
    }

    pub fn end_array(&mut self) -> &mut Writer {
        self.close(b']')
    }

    /// A member's key, escaped.
    pub fn key(&mut self, key: &str) -> &mut Writer {
        self.comma();
        write_str(&mut self.out, key);
        self.after_key()
    }

    /// A member's key as a JSON string token, copied (e.g. [`super::Str::raw`]).
    pub fn raw_key(&mut self, token: &[u8]) -> &mut Writer {
        self.comma();
        self.out.extend_from_slice(token);
        self.after_key()
    }

    /// A value that is already JSON (e.g. [`super::Value::raw`]), copied.
    pub fn raw(&mut self, json: &[u8]) -> &mut Writer {
        self.comma();
        self.out.extend_from_slice(json);
        self
    }

    /// A string value, escaped.
    pub fn string(&mut self, text: &str) -> &mut Writer {
        self.comma();
        write_str(&mut self.out, text);
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Writer {
        self.raw(n.to_string().as_bytes())
    }

    pub fn bool(&mut self, b: bool) -> &mut Writer {
        self.raw(if b { b"true" } else { b"false" })
    }

    pub fn null(&mut self) -> &mut Writer {
        self.raw(b"null")
    }

    fn comma(&mut self) {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(b',');
        }
    }

    fn after_key(&mut self) -> &mut Writer {
        self.out.push(b':');
        self.first = true;
        self
    }

    fn open(&mut self, bracket: u8) -> &mut Writer {
        self.comma();
        self.out.push(bracket);
        self.first = true;
        self
    }

    fn close(&mut self, bracket: u8) -> &mut Writer {
        self.out.push(bracket);
        self.first = false;
        self
    }
}
