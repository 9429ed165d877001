//! Differential: whenever the filter would route a body, serde_json must read
//! the same `model` from it, and after the splice the new model and every
//! other value unchanged. A body serde_json rejects must never be routed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_router::body::{find_model, BodyEdit, BodyError};
use serde_json::Value;

const NEW_MODEL: &str = "provider-model\"\\/\u{1}é";

fuzz_target!(|data: &[u8]| {
    let ours = find_model(data);
    let theirs = serde_json::from_slice::<Value>(data);
    match ours {
        Ok(field) => {
            let theirs = match theirs {
                Ok(value) => value,
                // RFC 8259 sets no limit on numbers; serde_json's f64 has one.
                Err(e) if e.to_string().starts_with("number out of range") => return,
                Err(e) => panic!("routed a body serde_json rejects: {e}"),
            };
            assert_eq!(theirs.get("model").and_then(Value::as_str), Some(&*field.name));
            let spliced = BodyEdit::model(field.span.clone(), NEW_MODEL).apply(data);
            let mut after: Value = serde_json::from_slice(&spliced).expect("spliced body is JSON");
            assert_eq!(after.get("model").and_then(Value::as_str), Some(NEW_MODEL));
            let again = find_model(&spliced).expect("spliced body is routable");
            assert_eq!(again.name, NEW_MODEL);
            after["model"] = Value::String(field.name.into_owned());
            assert_eq!(after, theirs, "only the model may change");
        }
        Err(BodyError::Syntax { .. }) => {
            assert!(theirs.is_err(), "serde_json read a body the scanner calls invalid");
        }
        // Valid JSON refused for a reason of ours (no object, no or repeated
        // model, depth, length): serde_json's answer does not decide these.
        Err(_) => {}
    }
});
