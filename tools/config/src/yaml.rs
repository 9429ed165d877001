//! A LiteLLM `config.yaml` as JSON, with the line and column of every node,
//! so that a conversion error points at the user's file rather than at the
//! JSON made from it. Anchors, aliases and `<<` merge keys are resolved as
//! LiteLLM's YAML loader resolves them.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

/// A parsed file.
pub struct Document {
    pub value: Value,
    /// Document path (`model_list[2].litellm_params.model`, as
    /// `llm_router::config::ConfigError::path` spells it) → (line, column),
    /// both from 1.
    positions: HashMap<String, (usize, usize)>,
    /// Keys given twice in one mapping (the last one counts): the path, and
    /// where the second is written.
    pub repeated_keys: Vec<(String, (usize, usize))>,
}

impl Document {
    /// Where `path` is written, or else the nearest enclosing node.
    pub fn position(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(&position) = self.positions.get(path) {
                return Some(position);
            }
            path = path.get(..path.rfind(['.', '['])?)?;
        }
    }
}

/// A syntax error: (line, column, what).
pub type SyntaxError = (usize, usize, String);

pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| (e.marker().line(), e.marker().col() + 1, e.info().to_owned()))?;
    if let Some((marker, problem)) = builder.error {
        return Err((marker.line(), marker.col() + 1, problem));
    }
    Ok(Document {
        value: builder.root.unwrap_or(Value::Null),
        positions: builder.positions,
        repeated_keys: builder.repeated_keys,
    })
}

enum Container {
    Sequence(Vec<Value>),
    Mapping {
        entries: Map<String, Value>,
        /// The key read, whose value comes next, and where it is written.
        key: Option<(String, Marker)>,
        /// Keys that came from a `<<` merge, which an explicit key overrides.
        merged: HashSet<String>,
    },
}

struct Open {
    container: Container,
    path: String,
    anchor: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Value>,
    positions: HashMap<String, (usize, usize)>,
    repeated_keys: Vec<(String, (usize, usize))>,
    root: Option<Value>,
    error: Option<(Marker, String)>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// A plain (unquoted) scalar typed as YAML's core schema types it.
pub fn plain_scalar(text: &str) -> Value {
    if let Some(value) = yaml_1_1(text) {
        return value;
    }
    match Yaml::from_str(text) {
        Yaml::Integer(n) => Value::Number(n.into()),
        Yaml::Real(real) => real
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(real), Value::Number),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Null => Value::Null,
        _ => Value::String(text.to_owned()),
    }
}

/// The plain scalars LiteLLM's YAML reader (PyYAML, YAML 1.1) takes for
/// numbers and booleans where YAML 1.2 sees strings: `20_000`, `1_000.5`,
/// `yes`/`no`, `on`/`off`.
fn yaml_1_1(text: &str) -> Option<Value> {
    match text {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(Value::Bool(true)),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Some(Value::Bool(false)),
        _ => {}
    }
    if !text.contains('_') {
        return None;
    }
    let unsigned = text.trim_start_matches(['-', '+']);
    let digits_and_underscores = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let starts_with_digit = unsigned.starts_with(|c: char| c.is_ascii_digit());
    if !starts_with_digit {
        return None;
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if digits_and_underscores(unsigned) {
        return plain.parse::<i64>().ok().map(|n| Value::Number(n.into()));
    }
    let (whole, fraction) = unsigned.split_once('.')?;
    let fraction_ok = fraction.is_empty() || digits_and_underscores(fraction);
    if digits_and_underscores(whole) && fraction_ok {
        return plain.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number);
    }
    None
}

impl Builder {
    /// The path of the node that starts now.
    fn next_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Open {
                container: Container::Sequence(items),
                path,
                ..
            }) => format!("{path}[{}]", items.len()),
            Some(Open {
                container: Container::Mapping { key, .. },
                path,
                ..
            }) => join(path, key.as_ref().map_or("", |(key, _)| key.as_str())),
        }
    }

    fn mark(&mut self, path: String, marker: Marker) {
        self.positions.entry(path).or_insert((marker.line(), marker.col() + 1));
    }

    /// A mapping waiting for a key takes this scalar as one.
    fn take_key(&mut self, text: &str, marker: Marker) -> bool {
        let Some(Open {
            container: Container::Mapping { key: key @ None, .. },
            path,
            ..
        }) = self.stack.last_mut()
        else {
            return false;
        };
        *key = Some((text.to_owned(), marker));
        let (map_path, key_path) = (path.clone(), join(path, text));
        // A block mapping's own position is where its first key is written;
        // a repeated key's, where the one that counts (the last) is.
        self.mark(map_path, marker);
        self.positions.insert(key_path, (marker.line(), marker.col() + 1));
        true
    }

    /// A finished node goes into its parent.
    fn add(&mut self, value: Value, anchor: usize, marker: Marker) {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        let path = self.next_path();
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Open {
                container: Container::Sequence(items),
                ..
            }) => items.push(value),
            Some(Open {
                container: Container::Mapping { entries, key, merged },
                ..
            }) => match key.take() {
                Some((key, _)) if key == "<<" => {
                    let sources = match value {
                        Value::Array(items) => items,
                        single => vec![single],
                    };
                    for source in sources {
                        let Value::Object(source) = source else {
                            self.error = Some((marker, "`<<` merges only mappings".to_owned()));
                            return;
                        };
                        for (k, v) in source {
                            if !entries.contains_key(&k) {
                                merged.insert(k.clone());
                                entries.insert(k, v);
                            }
                        }
                    }
                }
                Some((key, key_marker)) => {
                    if entries.contains_key(&key) && !merged.remove(&key) {
                        self.repeated_keys
                            .push((path, (key_marker.line(), key_marker.col() + 1)));
                    }
                    entries.insert(key, value);
                }
                None => self.error = Some((marker, "a mapping key must be a plain string".to_owned())),
            },
        }
    }

    fn open(&mut self, container: Container, anchor: usize) {
        let path = self.next_path();
        self.stack.push(Open {
            container,
            path,
            anchor,
        });
    }

    fn close(&mut self, marker: Marker) {
        if let Some(open) = self.stack.pop() {
            let value = match open.container {
                Container::Sequence(items) => Value::Array(items),
                Container::Mapping { entries, .. } => Value::Object(entries),
            };
            self.add(value, open.anchor, marker);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                if self.take_key(&text, marker) {
                    return;
                }
                let path = self.next_path();
                self.mark(path, marker);
                let value = match style {
                    TScalarStyle::Plain => plain_scalar(&text),
                    _ => Value::String(text),
                };
                self.add(value, anchor, marker);
            }
            Event::Alias(anchor) => {
                let path = self.next_path();
                self.mark(path, marker);
                match self.anchors.get(&anchor).cloned() {
                    Some(value) => self.add(value, 0, marker),
                    None => self.error = Some((marker, "an alias to an unknown anchor".to_owned())),
                }
            }
            Event::SequenceStart(anchor, _tag) => {
                let path = self.next_path();
                self.mark(path, marker);
                self.open(Container::Sequence(Vec::new()), anchor);
            }
            Event::MappingStart(anchor, _tag) => {
                if matches!(
                    self.stack.last(),
                    Some(Open {
                        container: Container::Mapping { key: None, .. },
                        ..
                    })
                ) {
                    self.error = Some((marker, "a mapping key must be a plain string".to_owned()));
                    return;
                }
                self.open(
                    Container::Mapping {
                        entries: Map::new(),
                        key: None,
                        merged: HashSet::new(),
                    },
                    anchor,
                );
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(marker),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_as_litellms_yaml_reader_takes_them() {
        let rows: &[(&str, Value)] = &[
            ("20_000", json!(20000)),
            ("-1_000", json!(-1000)),
            ("1_000.5", json!(1000.5)),
            ("yes", json!(true)),
            ("Off", json!(false)),
            ("10", json!(10)),
            ("0.5", json!(0.5)),
            ("true", json!(true)),
            ("gpt_4o", json!("gpt_4o")),
            ("_1", json!("_1")),
            ("1_a", json!("1_a")),
            ("2024_10_21-preview", json!("2024_10_21-preview")),
        ];
        for (text, expected) in rows {
            assert_eq!(&plain_scalar(text), expected, "{text}");
        }
    }

    #[test]
    fn values_and_where_they_are() {
        let text = "\
model_list:
  - model_name: a
    litellm_params: &params
      model: openai/x
      api_key: 'quoted: 1'
      rpm: 10
      weight: 0.5
  - model_name: b
    litellm_params:
      <<: *params
      model: openai/y
  - {model_name: c, litellm_params: {model: 'true', stream: true, n: null}}
";
        let doc = parse(text).expect("parses");
        assert_eq!(
            doc.value,
            json!({"model_list": [
                {"model_name": "a", "litellm_params": {"model": "openai/x", "api_key": "quoted: 1", "rpm": 10, "weight": 0.5}},
                {"model_name": "b", "litellm_params": {"model": "openai/y", "api_key": "quoted: 1", "rpm": 10, "weight": 0.5}},
                {"model_name": "c", "litellm_params": {"model": "true", "stream": true, "n": null}}
            ]})
        );
        let rows = [
            ("model_list", (1, 1)),
            ("model_list[0]", (2, 5)),
            ("model_list[0].litellm_params.api_key", (5, 7)),
            ("model_list[1].litellm_params.model", (11, 7)),
            // not written (merged): its mapping
            ("model_list[1].litellm_params.rpm", (9, 5)),
            ("model_list[2].litellm_params.stream", (12, 53)),
            ("model_list[7]", (1, 1)),
            (".", (1, 1)),
        ];
        for (path, expected) in rows {
            assert_eq!(doc.position(path), Some(expected), "{path}");
        }
        assert!(doc.repeated_keys.is_empty());
    }

    #[test]
    fn mistakes_are_located() {
        let rows = [
            ("model_list:\n  - model_name: a\n   bad: [\n", 3),
            ("a: *nowhere\n", 1),
            ("a: 1\n? [x]\n: 2\n", 2),
            ("a:\n  <<: [1]\n", 2),
        ];
        for (text, line) in rows {
            let (found, _, problem) = parse(text).err().unwrap_or_else(|| panic!("{text:?} parses"));
            assert_eq!(found, line, "{text:?}: {problem}");
        }
        let doc = parse("a: 1\nb: 2\na: 3\n").expect("parses");
        assert_eq!(doc.value, json!({"a": 3, "b": 2}));
        assert_eq!(doc.repeated_keys, [("a".to_owned(), (3, 1))]);
    }
}
