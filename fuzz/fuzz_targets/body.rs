//! Differential: whenever the filter would route a body, serde_json must read
//! the same `model` from it, and after the splice the new model and every
//! other value unchanged. A body serde_json rejects must never be routed.
//! For a streamed body, the edit that asks for usage must leave JSON in which
//! `stream_options.include_usage` is true and nothing else has changed.
//! The JSON layer's walk (what translators read with) accepts what serde_json
//! accepts and reads the same tree from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_router::json::{self, Kind};
use llm_router::request::body::{find_model, include_usage_edit, read, BodyEdit, BodyError};
use serde_json::Value;

const NEW_MODEL: &str = "provider-model\"\\/\u{1}é";

/// Where serde_json stops short of RFC 8259 and the filter: its f64 limits
/// numbers, and it nests 127 containers where `json::MAX_DEPTH` allows 128.
fn beyond_serde_json(e: &serde_json::Error) -> bool {
    let e = e.to_string();
    e.starts_with("number out of range") || e.starts_with("recursion limit exceeded")
}

/// The walk's tree, as serde_json's; `None` holding a number serde_json cannot read.
fn walked(value: json::Value) -> Option<Value> {
    Some(match value.kind() {
        Kind::Object => Value::Object(
            value
                .members()
                .map(|(key, value)| Some((key.decoded().into_owned(), walked(value)?)))
                .collect::<Option<_>>()?,
        ),
        Kind::Array => Value::Array(value.items().map(walked).collect::<Option<_>>()?),
        Kind::String => Value::String(value.decoded_str()?.into_owned()),
        Kind::Number | Kind::Bool | Kind::Null => serde_json::from_slice(value.raw()).ok()?,
    })
}

fuzz_target!(|data: &[u8]| {
    match (json::Value::parse(data), serde_json::from_slice::<Value>(data)) {
        (Ok(value), Ok(theirs)) => {
            if let Some(ours) = walked(value) {
                assert_eq!(ours, theirs, "the walk reads another tree");
            }
        }
        (Ok(_), Err(e)) => assert!(beyond_serde_json(&e), "walked what serde_json rejects: {e}"),
        (Err(json::Error::Syntax { .. }), Ok(_)) => panic!("serde_json read a document the cursor calls invalid"),
        (Err(_), _) => {}
    }
    let ours = find_model(data);
    let theirs = serde_json::from_slice::<Value>(data);
    match ours {
        Ok(field) => {
            let theirs = match theirs {
                Ok(value) => value,
                Err(e) if beyond_serde_json(&e) => return,
                Err(e) => panic!("routed a body serde_json rejects: {e}"),
            };
            assert_eq!(theirs.get("model").and_then(Value::as_str), Some(&*field.name));
            let spliced = BodyEdit::model(field.span.clone(), NEW_MODEL).apply(data);
            let mut after: Value = serde_json::from_slice(&spliced).expect("spliced body is JSON");
            assert_eq!(after.get("model").and_then(Value::as_str), Some(NEW_MODEL));
            let again = find_model(&spliced).expect("spliced body is routable");
            assert_eq!(again.name, NEW_MODEL);
            after["model"] = Value::String(field.name.clone().into_owned());
            assert_eq!(after, theirs, "only the model may change");

            let request = read(data).expect("read as find_model did");
            assert_eq!(request.stream, theirs.get("stream") == Some(&Value::Bool(true)));
            match include_usage_edit(&request) {
                Some((span, bytes)) => {
                    let edited = BodyEdit::model(field.span.clone(), NEW_MODEL).with(span, bytes).apply(data);
                    let mut after: Value = serde_json::from_slice(&edited).expect("edited body is JSON");
                    assert_eq!(after.pointer("/stream_options/include_usage"), Some(&Value::Bool(true)));
                    let mut expected = theirs.clone();
                    expected["model"] = Value::String(NEW_MODEL.to_owned());
                    match expected.get_mut("stream_options").and_then(Value::as_object_mut) {
                        Some(options) => drop(options.insert("include_usage".into(), Value::Bool(true))),
                        None => expected["stream_options"] = serde_json::json!({"include_usage": true}),
                    }
                    after["model"] = Value::String(NEW_MODEL.to_owned());
                    assert_eq!(after, expected, "only the model and include_usage may change");
                }
                None if request.stream => {
                    // Left alone: it asks already, or says something the filter does not touch.
                    let options = theirs.get("stream_options");
                    let usage = options.and_then(|o| o.get("include_usage"));
                    assert!(
                        usage == Some(&Value::Bool(true))
                            || options.is_some_and(|o| !o.is_object())
                            || usage.is_some_and(|u| u.is_object() || u.is_array()),
                        "a streamed body left without include_usage"
                    );
                }
                None => {}
            }
        }
        Err(BodyError::Syntax { .. }) => {
            assert!(theirs.is_err(), "serde_json read a body the scanner calls invalid");
        }
        // Valid JSON refused for a reason of ours (no object, no or repeated
        // model, depth, length): serde_json's answer does not decide these.
        Err(_) => {}
    }
});
