//! The JSON layer, table-driven, serde_json the judge where it has a say.
//! `make unit` runs these natively and in V8 (Wasm SIMD).

use super::sse::{self, Fields};
use super::*;

/// Our walk of a validated value, as serde_json's tree.
fn to_serde(value: Value) -> serde_json::Value {
    match value.kind() {
        Kind::Object => serde_json::Value::Object(
            value
                .members()
                .map(|(key, value)| (key.decoded().into_owned(), to_serde(value)))
                .collect(),
        ),
        Kind::Array => serde_json::Value::Array(value.items().map(to_serde).collect()),
        Kind::String => serde_json::Value::String(value.decoded_str().unwrap_or_default().into_owned()),
        Kind::Number | Kind::Bool | Kind::Null => serde_json::from_slice(value.raw()).unwrap_or_default(),
    }
}

#[test]
fn the_walk_reads_what_serde_json_reads() {
    let documents = [
        r#"{}"#,
        r#"[]"#,
        r#" { "a" : [ 1 , -2.5e3 , true , false , null , "x" ] , "b" : { } , "c" : [ [ ] , { "d" : { } } ] } "#,
        r#"{"esc\"aped":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00","plain":"é😀"}"#,
        r#""just a string""#,
        r#"0"#,
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":1024}"#,
    ];
    for document in documents {
        let ours = Value::parse(document.as_bytes()).map(to_serde);
        let theirs: serde_json::Value = serde_json::from_str(document).expect("test documents are JSON");
        assert_eq!(ours, Ok(theirs), "{document}");
    }
}

#[test]
fn members_and_items_are_the_slices_as_written() {
    let document = br#"{ "a" : {"b": [1, 2]} , "c":"x\ny" ,"d":[ 3 ,{}]}"#;
    let value = Value::parse(document).expect("valid");
    let members: Vec<(&[u8], &[u8], Kind)> = value.members().map(|(k, v)| (k.raw(), v.raw(), v.kind())).collect();
    let expected: Vec<(&[u8], &[u8], Kind)> = vec![
        (br#""a""#, br#"{"b": [1, 2]}"#, Kind::Object),
        (br#""c""#, br#""x\ny""#, Kind::String),
        (br#""d""#, br#"[ 3 ,{}]"#, Kind::Array),
    ];
    assert_eq!(members, expected);
    let items: Vec<&[u8]> = value
        .get("d")
        .map(|d| d.items().map(|i| i.raw()).collect())
        .unwrap_or_default();
    assert_eq!(items, [&b"3"[..], b"{}"]);
    // Containers of the other kind have no members or items.
    assert_eq!(value.items().count(), 0);
    assert_eq!(value.get("a").map(|a| a.items().count()), Some(0));
}

#[test]
fn a_repeated_key_reads_as_serde_json_reads_it() {
    let value = Value::parse(br#"{"k":1,"other":2,"k":3}"#).expect("valid");
    assert_eq!(value.get("k").and_then(|v| v.as_u64()), Some(3));
    assert_eq!(value.members().count(), 3);
    assert_eq!(value.get("missing"), None);
}

#[test]
fn strings_decode_borrowed_unless_escaped() {
    // (token, decoded, borrowed)
    let rows: &[(&str, &str, bool)] = &[
        (r#""""#, "", true),
        (r#""plain é😀""#, "plain é😀", true),
        (r#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{c}\n\r\t", false),
        (r#""\u0041\u00e9\u20ac""#, "Aé€", false),
        (r#""\ud83d\ude00 and \uD83D\uDE00""#, "😀 and 😀", false),
        (r#""\u0000""#, "\u{0}", false),
        (r#""a\nb""#, "a\nb", false),
    ];
    for (token, decoded, borrowed) in rows {
        let value = Value::parse(token.as_bytes()).expect("valid");
        let string = value.as_str().expect("a string");
        assert_eq!(string.decoded(), *decoded, "{token}");
        assert_eq!(
            matches!(string.decoded(), std::borrow::Cow::Borrowed(_)),
            *borrowed,
            "{token}"
        );
        assert_eq!(string.is_escaped(), !borrowed, "{token}");
        assert!(string.is(decoded), "{token}");
        assert_eq!(string.raw(), token.as_bytes());
    }
}

#[test]
fn integers_read_only_when_they_are_counts() {
    let rows: &[(&str, Option<u64>)] = &[
        ("0", Some(0)),
        ("42", Some(42)),
        ("18446744073709551615", Some(u64::MAX)),
        ("18446744073709551616", None),
        ("-1", None),
        ("1.0", None),
        ("1e3", None),
        (r#""7""#, None),
        ("true", None),
    ];
    for (raw, expected) in rows {
        let value = Value::parse(raw.as_bytes()).expect("valid");
        assert_eq!(value.as_u64(), *expected, "{raw}");
    }
    let literals = Value::parse(b"[true,false,null,1]").expect("valid");
    let read: Vec<(Option<bool>, bool)> = literals.items().map(|v| (v.as_bool(), v.is_null())).collect();
    assert_eq!(
        read,
        [(Some(true), false), (Some(false), false), (None, true), (None, false)]
    );
}

#[test]
fn invalid_documents_are_refused_where_they_go_wrong() {
    let syntax = |offset| Error::Syntax { offset, expected: "" };
    let rows: &[(&[u8], Error)] = &[
        (b"", syntax(0)),
        (b"{", syntax(1)),
        (b"[1,]", syntax(3)),
        (b"{\"a\" 1}", syntax(5)),
        (b"{\"a\":1,}", syntax(7)),
        (b"[1 2]", syntax(3)),
        (b"{} {}", syntax(3)),
        (b"\"\\ud800\"", syntax(7)),
        (b"\"\xff\"", syntax(1)),
        (b"nul", syntax(0)),
        (b"01", syntax(1)),
    ];
    for (document, expected) in rows {
        let got = Value::parse(document).map(|v| v.raw()).map_err(|e| match e {
            Error::Syntax { offset, .. } => syntax(offset),
            other => other,
        });
        assert_eq!(got, Err(*expected), "{:?}", String::from_utf8_lossy(document));
    }
}

#[test]
fn one_depth_limit() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let depth = usize::from(MAX_DEPTH);
    assert!(Value::parse(nested(depth).as_bytes()).is_ok());
    assert_eq!(Value::parse(nested(depth + 1).as_bytes()), Err(Error::TooDeep));
    // The resumable tokenizer follows exactly as deep.
    for (n, follows) in [(depth, true), (depth + 1, false)] {
        let mut tokenizer = Tokenizer::default();
        let mut trace = Trace::default();
        tokenizer.feed(nested(n).as_bytes(), &mut trace);
        assert_eq!(tokenizer.failed(), !follows, "{n} levels");
    }
}

#[test]
fn strings_are_escaped_as_serde_json_escapes_them() {
    let mut texts: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", char::from(b))).collect();
    texts.extend(["", "plain", "é😀", "\"quoted\" \\ slash /"].map(str::to_owned));
    texts.push("long ".repeat(100));
    for text in texts {
        let mut ours = Vec::new();
        write_str(&mut ours, &text);
        assert_eq!(ours, serde_json::to_vec(&text).unwrap_or_default(), "{text:?}");
    }
}

#[test]
fn the_writer_copies_slices_and_places_commas() {
    let source = Value::parse(br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2}"#).expect("valid");
    let mut writer = Writer::default();
    writer.begin_object();
    for (key, value) in source.members() {
        if key.is("model") {
            writer.key("model").string("provider/\"m\"");
        } else {
            writer.raw_key(key.raw()).raw(value.raw());
        }
    }
    writer
        .key("list")
        .begin_array()
        .u64(1)
        .bool(false)
        .null()
        .begin_object()
        .end_object()
        .end_array();
    writer.key("empty").begin_array().end_array();
    writer.end_object();
    let written = writer.into_bytes();
    assert_eq!(
        String::from_utf8_lossy(&written),
        r#"{"model":"provider/\"m\"","messages":[{"role":"user","content":"hi"}],"n":2,"list":[1,false,null,{}],"empty":[]}"#
    );
}

/// The tokenizer's events as one line each.
#[derive(Default)]
struct Trace(Vec<String>);

impl Events for Trace {
    fn key(&mut self, key: Option<&[u8]>, around: u8) {
        let key = key.map_or("(unusual)".into(), |k| String::from_utf8_lossy(k).into_owned());
        self.0.push(format!("key {key} {around}"));
    }
    fn value(&mut self, kind: Kind, around: u8) {
        self.0.push(format!("value {kind:?} {around}"));
    }
    fn number(&mut self, value: Option<u64>) {
        self.0.push(format!("number {value:?}"));
    }
    fn close(&mut self, around: u8) {
        self.0.push(format!("close {around}"));
    }
}

#[test]
fn the_tokenizer_reports_the_same_split_anywhere() {
    // (document, its events, whether the tokenizer follows it to the end)
    let rows: &[(&str, &[&str], bool)] = &[
        (
            r#"{"usage": {"n": 12, "f": -1.5}, "a": [true, "s\"]", []]}"#,
            &[
                "value Object 0",
                "key usage 1",
                "value Object 1",
                "key n 2",
                "value Number 2",
                "number Some(12)",
                "key f 2",
                "value Number 2",
                "number None",
                "close 2",
                "key a 1",
                "value Array 1",
                "value Bool 2",
                "value String 2",
                "value Array 2",
                "close 3",
                "close 2",
                "close 1",
            ],
            true,
        ),
        (
            r#"{"k\u0065y":1,"a_key_longer_than_twenty_eight_bytes":2}"#,
            &[
                "value Object 0",
                "key (unusual) 1",
                "value Number 1",
                "number Some(1)",
                "key (unusual) 1",
                "value Number 1",
                "number Some(2)",
                "close 1",
            ],
            true,
        ),
        ("[DONE]", &["value Array 0"], false),
        (
            "{\"a\":1]",
            &["value Object 0", "key a 1", "value Number 1", "number Some(1)"],
            false,
        ),
    ];
    for (document, expected, follows) in rows {
        let bytes = document.as_bytes();
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            let mut tokenizer = Tokenizer::default();
            let mut trace = Trace::default();
            tokenizer.feed(head, &mut trace);
            tokenizer.feed(tail, &mut trace);
            assert_eq!(trace.0, *expected, "{document} cut at {cut}");
            assert_eq!(tokenizer.failed(), !follows, "{document}");
        }
    }
}

#[test]
fn a_line_of_data_is_read_up_to_its_end() {
    // (bytes, how far the tokenizer reads them as one line)
    let rows: &[(&str, usize)] = &[
        ("{\"a\":1}\nnext", 7),
        ("{\"a\":12\r\n", 7),
        ("{\"a\":\"open\nstring", 10),
        ("[DONE]\n", 6),
        ("{\"a\":1", 6),
    ];
    for (bytes, read) in rows {
        let mut tokenizer = Tokenizer::default();
        assert_eq!(
            tokenizer.feed_line(bytes.as_bytes(), &mut Trace::default()),
            *read,
            "{bytes:?}"
        );
    }
}

/// A stream's events as their joined data, read whole.
#[derive(Default)]
struct Collected {
    data: Vec<u8>,
    events: Vec<String>,
}

impl Fields for Collected {
    fn data(&mut self, bytes: &[u8]) -> usize {
        let end = sse::line_end(bytes, 0);
        self.data.extend_from_slice(bytes.get(..end).unwrap_or_default());
        end
    }
    fn data_line_end(&mut self) {
        self.data.push(b'\n');
    }
    fn event_end(&mut self, _: usize) {
        self.events
            .push(String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned());
    }
}

#[test]
fn event_streams_split_into_their_data() {
    let rows: &[(&str, &[&str])] = &[
        ("data: a\n\ndata:b\n\n", &["a\n", "b\n"]),
        ("data: a\r\n\r\ndata: b\r\rdata: c\n\n", &["a\n", "b\n", "c\n"]),
        ("event: x\ndata: one\ndata: two\nid: 3\n\n", &["one\ntwo\n"]),
        (": comment\n\ndata:  two spaces\n\n", &["", " two spaces\n"]),
        ("dat: no\ndatum: no\ndata\n\n", &[""]),
        ("data: cut short", &[]),
    ];
    for (stream, expected) in rows {
        let bytes = stream.as_bytes();
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            let mut parser = sse::Parser::default();
            let mut events = Collected::default();
            parser.feed(head, &mut events);
            parser.feed(tail, &mut events);
            assert_eq!(events.events, *expected, "{stream:?} cut at {cut}");
        }
    }
}
