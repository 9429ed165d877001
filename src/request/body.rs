//! One pass over the raw request body: validate it as RFC 8259 JSON, find the
//! top-level `model`, and edit its value in place. No tree is built
//! and nothing is re-serialised, so every byte but the model's reaches the
//! provider as the client sent it.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use crate::json::{self, Cursor, MAX_DEPTH};

/// Longer model names are refused before any routing work.
pub const MAX_MODEL_LEN: usize = 1024;

/// Containers open around a top-level member's value (the body's object)
/// and around a `stream_options` member's value: what the cursor counts
/// towards its depth limit.
const AROUND_TOP: u8 = 1;
const AROUND_OPTIONS: u8 = 2;

/// The top-level `model` of a body.
#[derive(Debug, PartialEq, Eq)]
pub struct ModelField<'b> {
    /// The decoded string value.
    pub name: Cow<'b, str>,
    /// Byte range of the JSON string token, quotes included.
    pub span: Range<usize>,
}

/// Why a body cannot be routed. Every variant is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Not RFC 8259 JSON; `offset` is the first byte that is wrong.
    Syntax {
        offset: usize,
        expected: &'static str,
    },
    NotAnObject,
    TooDeep,
    ModelMissing,
    ModelNotString,
    ModelRepeated,
    ModelTooLong,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Syntax { offset, expected } => {
                write!(
                    f,
                    "request body is not valid JSON: expected {expected} at byte {offset}"
                )
            }
            BodyError::NotAnObject => f.write_str("request body must be a JSON object"),
            BodyError::TooDeep => write!(f, "request body nests deeper than {MAX_DEPTH} levels"),
            BodyError::ModelMissing => f.write_str("request body has no top-level `model` field"),
            BodyError::ModelNotString => f.write_str("`model` must be a string"),
            BodyError::ModelRepeated => f.write_str("`model` is given more than once"),
            BodyError::ModelTooLong => write!(f, "`model` is longer than {MAX_MODEL_LEN} bytes"),
        }
    }
}

/// What the filter reads from a request body besides checking it.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestBody<'b> {
    pub model: ModelField<'b>,
    /// The top-level `"stream": true`.
    pub stream: bool,
    pub include_usage: IncludeUsage,
    /// The offset of the top-level object's closing `}`.
    pub end: usize,
}

/// The top-level `stream_options.include_usage`, as the request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncludeUsage {
    /// No `stream_options`.
    NoOptions,
    /// `stream_options` is an object without `include_usage`; its `{` is at `open`.
    Missing {
        open: usize,
        empty: bool,
    },
    True,
    /// Any other scalar (`false`, `null`, …), at `span`.
    Other {
        span: Range<usize>,
    },
    /// `stream_options` or `include_usage` is something the filter leaves alone.
    Untouchable,
}

/// Validates `body` in full and returns its top-level `model`.
pub fn find_model(body: &[u8]) -> Result<ModelField<'_>, BodyError> {
    read(body).map(|request| request.model)
}

/// Validates `body` in full and reads what routing and usage need: one
/// pass, the top-level members read as they come, every other value
/// checked and skipped by the cursor.
pub fn read(body: &[u8]) -> Result<RequestBody<'_>, BodyError> {
    let mut cursor = Cursor::new(body);
    cursor.skip_ws();
    match cursor.peek() {
        Some(b'{') => cursor.eat(b'{'),
        None => return Err(cursor.syntax("a JSON object").into()),
        Some(_) => return Err(BodyError::NotAnObject),
    };
    let mut model = None;
    let mut stream = false;
    let mut include_usage = IncludeUsage::NoOptions;
    let mut first = true;
    while let Some(key) = cursor.next_key(std::mem::take(&mut first))? {
        if key.is("model") {
            if model.is_some() {
                return Err(BodyError::ModelRepeated);
            }
            model = Some(read_model(&mut cursor)?);
        } else if key.is("stream") {
            cursor.skip_ws();
            stream = cursor.starts_with(b"true");
            cursor.value(AROUND_TOP)?;
        } else if key.is("stream_options") {
            include_usage = read_stream_options(&mut cursor)?;
        } else {
            cursor.value(AROUND_TOP)?;
        }
    }
    // The top-level object's `}`.
    let end = cursor.pos().saturating_sub(1);
    if !cursor.at_end() {
        return Err(cursor.syntax("the end of the body").into());
    }
    Ok(RequestBody {
        model: model.ok_or(BodyError::ModelMissing)?,
        stream,
        include_usage,
        end,
    })
}

/// The edit that makes a streamed request ask for usage in its stream
/// (`stream_options.include_usage: true`); `None` when it is not streamed,
/// asks already, or says something the filter leaves alone.
pub fn include_usage_edit(request: &RequestBody) -> Option<(Range<usize>, &'static [u8])> {
    if !request.stream {
        return None;
    }
    match &request.include_usage {
        IncludeUsage::NoOptions => Some((request.end..request.end, br#","stream_options":{"include_usage":true}"#)),
        IncludeUsage::Missing { open, empty } => {
            let at = open + 1;
            let insert: &[u8] = if *empty {
                br#""include_usage":true"#
            } else {
                br#""include_usage":true,"#
            };
            Some((at..at, insert))
        }
        IncludeUsage::Other { span } => Some((span.clone(), b"true")),
        IncludeUsage::True | IncludeUsage::Untouchable => None,
    }
}

/// Changes to a body: each replaces a span of the original (an empty span
/// inserts), none overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyEdit {
    edits: Vec<(Range<usize>, Vec<u8>)>,
}

impl BodyEdit {
    /// The model's string token (from [`ModelField::span`]) replaced by `model`.
    pub fn model(span: Range<usize>, model: &str) -> BodyEdit {
        BodyEdit::default().with_model(span, model)
    }

    pub fn with_model(self, span: Range<usize>, model: &str) -> BodyEdit {
        let mut json = Vec::new();
        json::write_str(&mut json, model);
        self.with(span, json)
    }

    pub fn with(mut self, span: Range<usize>, bytes: impl Into<Vec<u8>>) -> BodyEdit {
        let at = self.edits.partition_point(|(s, _)| s.start <= span.start);
        self.edits.insert(at, (span, bytes.into()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// The edited body's length.
    pub fn edited_len(&self, original: usize) -> usize {
        self.edits.iter().fold(original, |len, (span, bytes)| {
            len.saturating_sub(span.len()) + bytes.len()
        })
    }

    /// The edit as Envoy can take it: a body buffer is replaced only from
    /// its start, so this answers how many leading bytes of the received body
    /// to replace and the bytes that replace them (the body up to the last
    /// edit, edited). `body` is reused in place: nothing after the last edit
    /// is copied, and one near the start (or the end, where the OpenAI SDKs
    /// put `model`) costs no more than what Envoy must be handed. The spans
    /// come from scanning this same body; they are clamped rather than
    /// trusted, so no input can make this panic.
    pub fn splice(self, mut body: Vec<u8>) -> (usize, Vec<u8>) {
        let len = body.len();
        if let [(span, bytes)] = self.edits.as_slice() {
            // One edit (the model, most often): the body is its own head.
            let end = span.end.min(len);
            body.truncate(span.start.min(end));
            body.extend_from_slice(bytes);
            return (end, body);
        }
        let Some(first) = self.edits.first().map(|(span, _)| span.start.min(len)) else {
            return (0, Vec::new());
        };
        let mut edited = Vec::new();
        let mut from = first;
        for (span, bytes) in &self.edits {
            let start = span.start.clamp(from, len);
            let end = span.end.clamp(start, len);
            edited.extend_from_slice(body.get(from..start).unwrap_or_default());
            edited.extend_from_slice(bytes);
            from = end;
        }
        body.truncate(first);
        body.extend_from_slice(&edited);
        (from, body)
    }

    /// The whole edited body, put together as Envoy does from [`Self::splice`].
    pub fn apply(self, body: &[u8]) -> Vec<u8> {
        let (replaced, mut edited) = self.splice(body.to_vec());
        edited.extend_from_slice(body.get(replaced..).unwrap_or_default());
        edited
    }
}

/// The top-level `model`'s value, the cursor just after its key.
fn read_model<'b>(cursor: &mut Cursor<'b>) -> Result<ModelField<'b>, BodyError> {
    cursor.skip_ws();
    if cursor.peek() != Some(b'"') {
        // Still a 400 either way; say which when the JSON is valid.
        if matches!(cursor.peek(), Some(b'{' | b'[')) {
            return Err(BodyError::ModelNotString);
        }
        return Err(cursor
            .scalar()
            .map_or_else(BodyError::from, |()| BodyError::ModelNotString));
    }
    let start = cursor.pos();
    let token = cursor.string()?;
    let span = start..cursor.pos();
    // Escapes take at most six bytes a character: longer is too long decoded.
    if span.len() > MAX_MODEL_LEN * 6 + 2 {
        return Err(BodyError::ModelTooLong);
    }
    let name = token.decoded();
    if name.len() > MAX_MODEL_LEN {
        return Err(BodyError::ModelTooLong);
    }
    Ok(ModelField { name, span })
}

/// The top-level `stream_options`' value, the cursor just after its key.
fn read_stream_options(cursor: &mut Cursor) -> Result<IncludeUsage, BodyError> {
    cursor.skip_ws();
    let open = cursor.pos();
    if !cursor.eat(b'{') {
        cursor.value(AROUND_TOP)?;
        return Ok(IncludeUsage::Untouchable);
    }
    let mut include_usage = IncludeUsage::Missing { open, empty: true };
    let mut first = true;
    while let Some(key) = cursor.next_key(std::mem::take(&mut first))? {
        if let IncludeUsage::Missing { empty, .. } = &mut include_usage {
            *empty = false;
        }
        if key.is("include_usage") {
            include_usage = read_include_usage(cursor)?;
        } else {
            cursor.value(AROUND_OPTIONS)?;
        }
    }
    Ok(include_usage)
}

/// `stream_options.include_usage`'s value, the cursor just after its key.
fn read_include_usage(cursor: &mut Cursor) -> Result<IncludeUsage, BodyError> {
    cursor.skip_ws();
    let start = cursor.pos();
    if cursor.starts_with(b"true") {
        cursor.value(AROUND_OPTIONS)?;
        return Ok(IncludeUsage::True);
    }
    if matches!(cursor.peek(), Some(b'{' | b'[')) {
        cursor.value(AROUND_OPTIONS)?;
        return Ok(IncludeUsage::Untouchable);
    }
    cursor.scalar()?;
    Ok(IncludeUsage::Other {
        span: start..cursor.pos(),
    })
}

impl From<json::Error> for BodyError {
    fn from(e: json::Error) -> BodyError {
        match e {
            json::Error::Syntax { offset, expected } => BodyError::Syntax { offset, expected },
            json::Error::TooDeep => BodyError::TooDeep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_of(body: &str) -> Result<String, BodyError> {
        find_model(body.as_bytes()).map(|m| m.name.into_owned())
    }

    #[test]
    fn finds_the_top_level_model() {
        let rows: &[(&str, &str)] = &[
            (r#"{"model":"gpt-4o"}"#, "gpt-4o"),
            (
                r#" { "messages" : [ {"model":"inner"} ] , "model" : "groq/llama3" } "#,
                "groq/llama3",
            ),
            (r#"{"metadata":{"model":"nested"},"model":"top"}"#, "top"),
            (r#"{"text":"\"model\":\"fake\"","model":"real"}"#, "real"),
            (r#"{"mod\u0065l":"escaped-key"}"#, "escaped-key"),
            (r#"{"model":"a\/b\u00e9\n"}"#, "a/bé\n"),
            (r#"{"model":"😀 \ud83d\ude00"}"#, "😀 😀"),
            (r#"{"model":""}"#, ""),
            (
                "{\"n\":-0.5e+10,\"t\":true,\"f\":false,\"z\":null,\"a\":[],\"o\":{},\"model\":\"m\"}",
                "m",
            ),
            (r#"{"Model":"x","model":"lower"}"#, "lower"),
        ];
        for (body, expected) in rows {
            assert_eq!(model_of(body).as_deref(), Ok(*expected), "body {body}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_read_unambiguously() {
        use BodyError::*;
        let syntax = |offset| Syntax { offset, expected: "" };
        let rows: &[(&[u8], BodyError)] = &[
            (b"", syntax(0)),
            (b"   ", syntax(3)),
            (b"[1]", NotAnObject),
            (b"\"model\"", NotAnObject),
            (b"{}", ModelMissing),
            (br#"{"model":1}"#, ModelNotString),
            (br#"{"model":null}"#, ModelNotString),
            (br#"{"model":["a"]}"#, ModelNotString),
            (br#"{"model":"a","model":"b"}"#, ModelRepeated),
            (br#"{"model":"a","mod\u0065l":"b"}"#, ModelRepeated),
            (br#"{"model":"a"} x"#, syntax(14)),
            (br#"{"model":"a"}{}"#, syntax(13)),
            (br#"{"model":"a",}"#, syntax(13)),
            (br#"{"model":"a"]"#, syntax(12)),
            (br#"{"a":[1,],"model":"m"}"#, syntax(8)),
            (br#"{"a":01,"model":"m"}"#, syntax(6)),
            (br#"{"a":1.,"model":"m"}"#, syntax(7)),
            (br#"{"a":-,"model":"m"}"#, syntax(6)),
            (br#"{"a":1e,"model":"m"}"#, syntax(7)),
            (br#"{"a":tru,"model":"m"}"#, syntax(5)),
            (br#"{"a":NaN,"model":"m"}"#, syntax(5)),
            (br#"{'model':'m'}"#, syntax(1)),
            (br#"{"model":"m\x"}"#, syntax(12)),
            (br#"{"model":"\ud800"}"#, syntax(16)),
            (br#"{"model":"\udc00"}"#, syntax(16)),
            (br#"{"model":"\u12g4"}"#, syntax(12)),
            (b"{\"model\":\"a\x01\"}", syntax(11)),
            (b"{\"model\":\"a\xff\"}", syntax(11)),
            (b"{\"model\":\"\xc0\xaf\"}", syntax(10)),
            (b"{\"model\":\"\xed\xa0\x80\"}", syntax(10)),
            (br#"{"model":"unterminated}"#, syntax(23)),
            (b"\xef\xbb\xbf{\"model\":\"bom\"}", NotAnObject),
        ];
        for (body, expected) in rows {
            let got = find_model(body).map(|m| m.name.into_owned());
            // Offsets are checked; the wording of `expected` is not.
            let got = got.map_err(|e| match e {
                Syntax { offset, .. } => syntax(offset),
                other => other,
            });
            assert_eq!(got, Err(*expected), "body {:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let ok = format!("{{\"model\":\"m\",\"x\":{}{}}}", "[".repeat(126), "]".repeat(126));
        assert_eq!(model_of(&ok).as_deref(), Ok("m"));
        let deep = format!("{{\"model\":\"m\",\"x\":{}{}}}", "[".repeat(128), "]".repeat(128));
        assert_eq!(model_of(&deep), Err(BodyError::TooDeep));
        let very_deep = "[".repeat(1_000_000);
        assert_eq!(model_of(&format!("{{\"x\":{very_deep}")), Err(BodyError::TooDeep));
    }

    #[test]
    fn model_length_is_bounded() {
        let long = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_MODEL_LEN));
        assert!(model_of(&long).is_ok());
        let too_long = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_MODEL_LEN + 1));
        assert_eq!(model_of(&too_long), Err(BodyError::ModelTooLong));
    }

    #[test]
    fn edits_change_only_the_model_bytes() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],  "model" :"groq/llama3-8b-8192" ,"n":1.50}"#;
        let field = find_model(body).expect("valid body");
        let out = BodyEdit::model(field.span, "llama3-8b-8192").apply(body);
        assert_eq!(
            std::str::from_utf8(&out).ok(),
            Some(r#"{"messages":[{"role":"user","content":"hi"}],  "model" :"llama3-8b-8192" ,"n":1.50}"#)
        );
    }

    #[test]
    fn streamed_requests_are_made_to_ask_for_usage() {
        // (body, the body sent upstream; None when it is left as it is)
        let rows: &[(&str, Option<&str>)] = &[
            (
                r#"{"model":"m","stream":true}"#,
                Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
            ),
            (
                "{ \"stream\" : true , \"model\":\"m\" }",
                Some("{ \"stream\" : true , \"model\":\"m\" ,\"stream_options\":{\"include_usage\":true}}"),
            ),
            (
                r#"{"model":"m","stream":true,"stream_options":{}}"#,
                Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
            ),
            (
                r#"{"stream_options":{"x":1},"model":"m","stream":true}"#,
                Some(r#"{"stream_options":{"include_usage":true,"x":1},"model":"m","stream":true}"#),
            ),
            (
                r#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#,
                Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
            ),
            (
                r#"{"model":"m","stream":true,"stream_options":{"include_usage":null,"y":[]}}"#,
                Some(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true,"y":[]}}"#),
            ),
            (
                r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
                None,
            ),
            (r#"{"model":"m","stream":true,"stream_options":null}"#, None),
            (r#"{"model":"m","stream":false}"#, None),
            (r#"{"model":"m"}"#, None),
            // Only the top level counts.
            (r#"{"model":"m","x":{"stream":true}}"#, None),
            (
                r#"{"model":"m","stream":true,"x":{"stream_options":{}}}"#,
                Some(
                    r#"{"model":"m","stream":true,"x":{"stream_options":{}},"stream_options":{"include_usage":true}}"#,
                ),
            ),
            (
                r#"{"model":"m","stream":true,"stream_options":{"o":{"include_usage":false}}}"#,
                Some(
                    r#"{"model":"m","stream":true,"stream_options":{"include_usage":true,"o":{"include_usage":false}}}"#,
                ),
            ),
        ];
        for (body, expected) in rows {
            let request = read(body.as_bytes()).expect("valid body");
            let edited = include_usage_edit(&request).map(|(span, bytes)| {
                let out = BodyEdit::default().with(span, bytes).apply(body.as_bytes());
                String::from_utf8(out).expect("utf-8")
            });
            assert_eq!(edited.as_deref(), *expected, "{body}");
            if let Some(edited) = &edited {
                let json: serde_json::Value = serde_json::from_str(edited).expect("valid JSON");
                assert_eq!(json["stream_options"]["include_usage"], true, "{edited}");
            }
        }
    }

    #[test]
    fn several_edits_apply_in_one_splice() {
        let body = br#"{"model":"groq/llama3","stream":true}"#;
        let request = read(body).expect("valid body");
        let (span, bytes) = include_usage_edit(&request).expect("streamed");
        let edit = BodyEdit::default()
            .with(span, bytes)
            .with_model(request.model.span.clone(), "llama3");
        let expected = br#"{"model":"llama3","stream":true,"stream_options":{"include_usage":true}}"#;
        assert_eq!(edit.edited_len(body.len()), expected.len());
        let (replaced, head) = edit.clone().splice(body.to_vec());
        assert_eq!((replaced, &head[..]), (body.len() - 1, &expected[..expected.len() - 1]));
        assert_eq!(edit.apply(body), expected);
    }

    #[test]
    fn edited_models_are_escaped() {
        let body = br#"{"model":"x"}"#;
        let field = find_model(body).expect("valid body");
        let out = BodyEdit::model(field.span, "a\"b\\c\n\u{1}é").apply(body);
        let parsed: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(parsed["model"], "a\"b\\c\n\u{1}é");
    }

    /// The scanner takes long strings in 256-, 64-, 16- and 8-byte steps
    /// (Wasm SIMD in Envoy, words natively): every kind of byte that ends or
    /// spoils a plain run, at every lane of every step, must get the verdict
    /// serde_json gives. `make unit` runs this natively and in V8 (Node), so
    /// both scanners are held to it.
    #[test]
    fn long_strings_are_scanned_in_steps() {
        let pieces: &[&[u8]] = &[
            b"\"",
            b"\\\"",
            b"\\\\",
            b"\\n",
            b"\\u00e9",
            b"\\ud83d\\ude00",
            b"\\ud800",
            b"\\x",
            b"\x00",
            b"\x1f",
            b"\n",
            // the smallest plain bytes after the xor with 2 (0x23 → 0x21) and around it
            b" ",
            b"!",
            b"#",
            b"\x7f",
            "é".as_bytes(),
            "😀".as_bytes(),
            b"\xff",
            b"\x80",
            b"\xc3",
            b"\xed\xa0\x80",
        ];
        for piece in pieces {
            for len in (0..300).chain(500..530) {
                let mut body = b"{\"x\":\"".to_vec();
                body.extend(std::iter::repeat_n(b'a', len));
                body.extend_from_slice(piece);
                body.extend_from_slice(b"tail\",\"model\":\"m\"}");
                let ours = find_model(&body).map(|m| m.name.into_owned()).ok();
                let serde = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .map(|v| v["model"].as_str().unwrap_or_default().to_owned());
                assert_eq!(ours, serde, "piece {piece:?} after {len} bytes");
            }
        }
    }
}
