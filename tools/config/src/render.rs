//! The one YAML writer for what the generator builds as values: block
//! style, keys in the order they were inserted, sequences of scalars on one
//! line, and strings quoted only where YAML would read them otherwise, so
//! that people can read and diff the files.

use serde_json::{Map, Value};

use crate::yaml::plain_scalar;

/// A YAML document: `comment` as a block of `#` lines, then `value`.
pub fn document(comment: &str, value: &Value) -> String {
    let mut out: String = comment
        .lines()
        .map(|line| match line {
            "" => "#\n".to_owned(),
            line => format!("# {line}\n"),
        })
        .collect();
    match value {
        Value::Object(entries) if !entries.is_empty() => write_entries(entries, 0, &mut out),
        Value::Array(items) if !items.is_empty() => write_items(items, 0, &mut out),
        other => out.push_str(&format!("{}\n", scalar(other))),
    }
    out
}

/// A YAML string: plain where it reads back as that string, single-quoted
/// where it holds `\` or `"` (a regex, an Envoy command), else JSON-quoted
/// (JSON's quoting is valid YAML).
pub fn quoted(text: &str) -> String {
    let plain = text.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        && matches!(plain_scalar(text), Value::String(_));
    let single = text.contains(['\\', '"']) && !text.contains('\'') && !text.contains(char::is_control);
    if plain {
        text.to_owned()
    } else if single {
        format!("'{text}'")
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => quoted(text),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(_) => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// What a block collection holds must be written on lines of its own.
fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(entries) => !entries.is_empty(),
        Value::Array(items) => items.iter().any(|item| item.is_object() || item.is_array()),
        _ => false,
    }
}

/// Text of several lines (the plugin configuration) as a literal block,
/// which keeps it as it is; it must end in exactly one line break.
fn is_literal(text: &str) -> bool {
    text.contains('\n')
        && text.ends_with('\n')
        && !text.ends_with("\n\n")
        && !text.starts_with([' ', '\n'])
        && !text.contains(|c: char| c.is_control() && c != '\n')
}

fn write_entries(entries: &Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (key, value) in entries {
        out.push_str(&format!("{pad}{}:", quoted(key)));
        match value {
            Value::Object(inner) if is_block(value) => {
                out.push('\n');
                write_entries(inner, indent + 2, out);
            }
            Value::Array(items) if is_block(value) => {
                out.push('\n');
                write_items(items, indent, out);
            }
            Value::String(text) if is_literal(text) => {
                out.push_str(" |\n");
                for line in text.lines() {
                    match line {
                        "" => out.push('\n'),
                        line => out.push_str(&format!("{pad}  {line}\n")),
                    }
                }
            }
            other => out.push_str(&format!(" {}\n", scalar(other))),
        }
    }
}

/// A block sequence at `indent`: a mapping item starts on the `- ` line.
fn write_items(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Value::Object(entries) if is_block(item) => {
                let mut inner = String::new();
                write_entries(entries, indent + 2, &mut inner);
                out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
            }
            Value::Array(nested) if is_block(item) => {
                out.push_str(&format!("{pad}-\n"));
                write_items(nested, indent + 2, out);
            }
            other => out.push_str(&format!("{pad}- {}\n", scalar(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What is written reads back as the same value.
    #[test]
    fn values_read_back_as_written() {
        let rows = [
            json!({"a": 1, "b": [1, "two", true, null], "c": {}, "d": [], "e": {"f": {"g": "h"}}}),
            json!({"strings": ["yes", "no", "on", "1", "1.5", "~", "null", "", " x", "a: b", "#c", "@type", "it's",
                "%FILTER_STATE(wasm.x:PLAIN)%", r"^wasmcustom\.(\w+)$", r#"["a", "b"]"#, "line\n"]}),
            json!({"list": [{"name": "a", "inner": [{"x": 1}, {"y": [2, 3]}]}, {"name": "b"}], "after": 0}),
            json!({"nested": [[{"a": 1}], [1, 2]], "empty_item": [{}]}),
            json!({"plugin": "{\n  \"a\": 1,\n\n  \"b\": [\n    2\n  ]\n}\n", "two_breaks": "a\n\n"}),
            json!([{"top": "level"}, "item"]),
        ];
        for value in rows {
            let text = document("a comment\n\nover lines", &value);
            let read = crate::yaml::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            assert_eq!(read.value, value, "\n{text}");
        }
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        let rows = [
            ("llm-router", "llm-router"),
            (
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/ssl/certs/ca-certificates.crt",
            ),
            ("yes", r#""yes""#),
            ("8081", r#""8081""#),
            ("@type", r#""@type""#),
            ("%START_TIME%", r#""%START_TIME%""#),
            (r"^a\.b", r"'^a\.b'"),
            ("it's \"x\"", r#""it's \"x\"""#),
        ];
        for (text, expected) in rows {
            assert_eq!(quoted(text), expected, "{text}");
        }
    }
}
