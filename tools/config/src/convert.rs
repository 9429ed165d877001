//! A LiteLLM config (as JSON) to llm-router's plugin configuration, checked
//! by the filter's own compiler: what is carried, what is dropped with a
//! warning, and which environment variables the filter will read.

use std::cell::RefCell;
use std::collections::BTreeSet;

use llm_router::config::{self, Config, ConfigError};
use serde_json::{Map, Value};

/// The top-level keys the filter's compiler reads: LiteLLM's sections it
/// knows (it warns about their keys it does not act on) and its own.
const COMPILED_KEYS: &[&str] = &[
    "model_list",
    "general_settings",
    "router_settings",
    "litellm_settings",
    "providers",
    "cluster_header",
    "max_body_bytes",
    "inject_stream_usage",
];

/// llm-router's own keys, carried as they are.
const FILTER_KEYS: &[&str] = &["providers", "cluster_header", "max_body_bytes", "inject_stream_usage"];

/// Stands in for every environment variable while the configuration is
/// checked: keys are read by the filter at run time, not now.
const PLACEHOLDER: &str = "set-at-run-time";
/// Stands in for an `os.environ/` api_base in the plugin configuration alone.
const PLACEHOLDER_API_BASE: &str = "https://set-at-run-time.invalid";

/// Where a problem is in the document, and what it is.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    /// A document path (`model_list[2].litellm_params.model`).
    pub path: String,
    pub message: String,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

impl From<ConfigError> for Problem {
    fn from(e: ConfigError) -> Problem {
        problem(e.path, format!("{}: {}", e.at, e.problem))
    }
}

/// What conversion gives.
pub struct Conversion {
    /// The plugin configuration, top-level keys in the order they are written.
    pub plugin: Map<String, Value>,
    /// The filter's own compilation of it.
    pub config: Config,
    pub warnings: Vec<String>,
    /// Every variable the filter reads at run time (`host_env_keys`).
    pub env_keys: BTreeSet<String>,
}

/// How `os.environ/` in an `api_base` is treated.
pub enum ApiBaseVariables<'a> {
    /// Left for the filter to read at run time (a plugin configuration).
    AtRunTime,
    /// Read now, from this environment: an Envoy bootstrap needs its
    /// clusters' addresses when it is written.
    Now(&'a dyn Fn(&str) -> Option<String>),
}

/// Every `api_base` of the document: deployments' and providers'.
/// Each as (document path, the entry named as the compiler names it, value).
fn api_bases(litellm: &mut Map<String, Value>) -> Vec<(String, String, &mut Value)> {
    let mut found = Vec::new();
    for (section, value) in litellm.iter_mut() {
        match (section.as_str(), value) {
            ("model_list", Value::Array(entries)) => {
                for (i, entry) in entries.iter_mut().enumerate() {
                    let name = entry.get("model_name").and_then(Value::as_str).unwrap_or_default();
                    let at = format!("model_list[{i}] (model_name `{name}`)");
                    if let Some(base) = entry.pointer_mut("/litellm_params/api_base") {
                        found.push((format!("model_list[{i}].litellm_params.api_base"), at, base));
                    }
                }
            }
            ("providers", Value::Object(providers)) => {
                for (name, provider) in providers.iter_mut() {
                    if let Some(base) = provider.get_mut("api_base") {
                        found.push((format!("providers.{name}.api_base"), format!("providers.{name}"), base));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// The LiteLLM document, with `os.environ/` api_bases resolved for the
/// compiler (`checked`) and for the output (`carried`).
fn resolve_api_bases(
    litellm: &Map<String, Value>,
    variables: &ApiBaseVariables,
    env_keys: &mut BTreeSet<String>,
) -> Result<(Map<String, Value>, Map<String, Value>), Problem> {
    let mut checked = litellm.clone();
    let mut carried = litellm.clone();
    let carried_bases = api_bases(&mut carried);
    for ((path, at, checked_base), (_, _, carried_base)) in api_bases(&mut checked).into_iter().zip(carried_bases) {
        let Some(var) = checked_base.as_str().and_then(config::env_var).map(str::to_owned) else {
            continue;
        };
        let value = match variables {
            ApiBaseVariables::AtRunTime => {
                env_keys.insert(var);
                PLACEHOLDER_API_BASE.to_owned()
            }
            ApiBaseVariables::Now(env) => {
                let value = env(&var).ok_or_else(|| {
                    problem(
                        &path,
                        format!("{at}: api_base `os.environ/{var}`: {var} is not set, and the Envoy bootstrap needs this address now (its clusters are written out); set it, or write the URL"),
                    )
                })?;
                *carried_base = Value::String(value.clone());
                value
            }
        };
        *checked_base = Value::String(value);
    }
    Ok((checked, carried))
}

/// `section` with only the keys llm-router acts on, if any is set.
fn kept_settings(section: Option<&Value>, kept: &[&str]) -> Option<Value> {
    let settings: Map<String, Value> = section?
        .as_object()?
        .iter()
        .filter(|(key, _)| kept.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!settings.is_empty()).then_some(Value::Object(settings))
}

pub fn convert(litellm: &Value, variables: &ApiBaseVariables) -> Result<Conversion, Problem> {
    let top = litellm.as_object().ok_or_else(|| {
        problem(
            "",
            "the file is not a YAML mapping (a LiteLLM config.yaml has `model_list:`)",
        )
    })?;
    if !top.contains_key("model_list") {
        return Err(problem("", "the file has no `model_list`"));
    }
    let mut warnings = Vec::new();
    let mut known = Map::new();
    for (key, value) in top {
        if COMPILED_KEYS.contains(&key.as_str()) {
            known.insert(key.clone(), value.clone());
        } else {
            warnings.push(format!("{key} is ignored (llm-router does not read this section)"));
        }
    }
    let mut env_keys = BTreeSet::new();
    let (checked, carried) = resolve_api_bases(&known, variables, &mut env_keys)?;

    // The compiler asks for every variable it needs: those are the filter's.
    let asked = RefCell::new(env_keys);
    let record = |var: &str| {
        asked.borrow_mut().insert(var.to_owned());
        Some(PLACEHOLDER.to_owned())
    };
    let json = Value::Object(checked).to_string();
    let config = config::compile(json.as_bytes(), &record)?;
    warnings.extend(config.warnings.iter().cloned());

    let mut plugin = Map::new();
    if let Some(model_list) = carried.get("model_list") {
        plugin.insert("model_list".into(), model_list.clone());
    }
    let sections = [
        ("router_settings", config::ROUTER_SETTINGS),
        ("general_settings", config::GENERAL_SETTINGS),
    ];
    for (section, kept) in sections {
        if let Some(settings) = kept_settings(carried.get(section), kept) {
            plugin.insert(section.into(), settings);
        }
    }
    for key in FILTER_KEYS {
        if let Some(value) = carried.get(*key) {
            plugin.insert((*key).into(), value.clone());
        }
    }
    Ok(Conversion {
        plugin,
        config,
        warnings,
        env_keys: asked.into_inner(),
    })
}

/// The plugin configuration as written into files: one line per
/// deployment (and per provider), so a diff shows which one changed.
pub fn plugin_text(plugin: &Map<String, Value>) -> String {
    let mut out = String::from("{\n");
    let mut first = true;
    for (key, value) in plugin {
        if !std::mem::take(&mut first) {
            out.push_str(",\n");
        }
        out.push_str(&format!("  {}: ", compact(&Value::String(key.clone()))));
        match value {
            Value::Array(items) if !items.is_empty() => {
                let lines: Vec<String> = items.iter().map(|item| format!("    {}", compact(item))).collect();
                out.push_str(&format!("[\n{}\n  ]", lines.join(",\n")));
            }
            Value::Object(entries) if key == "providers" && !entries.is_empty() => {
                let lines: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("    {}: {}", compact(&Value::String(k.clone())), compact(v)))
                    .collect();
                out.push_str(&format!("{{\n{}\n  }}", lines.join(",\n")));
            }
            other => out.push_str(&compact(other)),
        }
    }
    out.push_str("\n}\n");
    out
}

/// JSON on one line, with a space after each `:` and `,`.
fn compact(value: &Value) -> String {
    use serde::Serialize;
    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
            self.begin_array_value(w, first)
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    // Serialising a Value into memory cannot fail.
    let _ = value.serialize(&mut serializer);
    String::from_utf8_lossy(&out).into_owned()
}
