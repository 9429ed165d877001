//! A LiteLLM config (as JSON) to llm-router's plugin configuration, checked
//! by the filter's own compiler: what it reads is carried, what it reports
//! as ignored is dropped (so no secret it does not need reaches Envoy), and
//! the environment variables it asks for are the filter's.

use std::cell::RefCell;
use std::collections::BTreeSet;

use llm_router::config::{self, env_var, Config, ConfigError, Document, Warning, WarningKind};
use llm_router::model::{ApiBase, Upstream};
use serde_json::{Map, Value};

/// Stands in for every environment variable while the configuration is
/// checked (keys are read by the filter at run time, not now). It is a URL,
/// so it also stands in for an `api_base` left to run time.
const PLACEHOLDER: &str = "https://set-at-run-time.invalid";

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
    pub warnings: Vec<Warning>,
    /// Every variable the filter reads at run time (`host_env_keys`).
    pub env_keys: BTreeSet<String>,
    /// Envoy's OAuth2 credential injectors, one per cluster of a deployment
    /// with Entra ID client credentials (for a bootstrap only).
    pub entra: Vec<EntraInjector>,
}

/// Where Entra ID issues tokens unless `AZURE_AUTHORITY_HOST` says
/// otherwise (a national cloud, or a test's), as in LiteLLM.
const AZURE_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// One Entra ID client's token, got by Envoy for one cluster.
pub struct EntraInjector {
    /// The deployment's cluster, which the injector sits on.
    pub cluster: String,
    /// The token endpoint: `<authority>/<tenant>/oauth2/v2.0/token`.
    pub token_uri: String,
    /// Its host, a cluster of its own.
    pub authority: Upstream,
    pub client_id: String,
    pub scope: String,
    /// The client secret: Envoy reads it from its environment (or, written
    /// into the file, from the bootstrap's secrets, which `/config_dump`
    /// redacts).
    pub secret: SecretSource,
}

pub enum SecretSource {
    Variable(String),
    Inline(String),
}

/// The injectors a bootstrap writes, with `os.environ/` read now.
fn entra_injectors(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<EntraInjector>, Problem> {
    let authority_url = env("AZURE_AUTHORITY_HOST").unwrap_or_else(|| AZURE_AUTHORITY_HOST.to_owned());
    let authority = ApiBase::parse(&authority_url).ok_or_else(|| {
        problem(
            "",
            format!("AZURE_AUTHORITY_HOST `{authority_url}` is not an http(s) URL"),
        )
    })?;
    let mut injectors = Vec::new();
    for (cluster, endpoint) in config.upstreams() {
        let Some(entra) = &endpoint.entra else { continue };
        let read = |key: &str, value: &str| match env_var(value) {
            None => Ok(value.to_owned()),
            Some(var) => env(var).ok_or_else(|| {
                let why = "the Envoy bootstrap needs it now (Envoy's credential injector is written out)";
                let message =
                    format!("{key} `os.environ/{var}`: {var} is not set, and {why}; set it, or write the value");
                problem(format!("{}.{key}", entra.params_path), message)
            }),
        };
        let tenant_id = read("tenant_id", &entra.tenant_id)?;
        let secret = match env_var(entra.secret()) {
            Some(var) => SecretSource::Variable(var.to_owned()),
            None => SecretSource::Inline(entra.secret().to_owned()),
        };
        injectors.push(EntraInjector {
            cluster: cluster.to_owned(),
            token_uri: format!(
                "{}{}/{tenant_id}/oauth2/v2.0/token",
                authority.upstream.origin(),
                authority.path
            ),
            authority: authority.upstream.clone(),
            client_id: read("client_id", &entra.client_id)?,
            scope: entra.scope.clone(),
            secret,
        });
    }
    Ok(injectors)
}

/// How `os.environ/` in an `api_base` is treated.
pub enum ApiBaseVariables<'a> {
    /// Left for the filter to read at run time (a plugin configuration).
    AtRunTime,
    /// Read now, from this environment: an Envoy bootstrap needs its
    /// clusters' addresses when it is written.
    Now(&'a dyn Fn(&str) -> Option<String>),
}

/// Compiles `document` as the filter would, with every variable it asks
/// for recorded (and stood in for).
fn compile(document: &Map<String, Value>) -> Result<(Config, BTreeSet<String>), Problem> {
    let asked = RefCell::new(BTreeSet::new());
    let record = |var: &str| {
        asked.borrow_mut().insert(var.to_owned());
        Some(PLACEHOLDER.to_owned())
    };
    let json = Value::Object(document.clone()).to_string();
    let config = config::compile_document(json.as_bytes(), Document::LiteLlm, &record)?;
    Ok((config, asked.into_inner()))
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
    let (mut config, mut env_keys) = compile(top)?;
    let mut plugin = top.clone();
    for warning in config.warnings.iter().filter(|w| w.kind == WarningKind::Ignored) {
        remove(&mut plugin, &warning.path);
    }
    // Envoy holds an Entra ID client secret; the filter never reads it.
    for (_, endpoint) in config.upstreams() {
        if let Some(entra) = endpoint.entra.as_ref().filter(|e| e.client_secret.is_some()) {
            remove(&mut plugin, &format!("{}.client_secret", entra.params_path));
        }
    }
    // A section left empty by what was dropped says nothing.
    plugin.retain(|_, value| !matches!(value, Value::Object(map) if map.is_empty()));
    if let ApiBaseVariables::Now(env) = variables {
        if !config.env_addresses.is_empty() {
            for address in &config.env_addresses {
                let var = &address.variable;
                let value = env(var).ok_or_else(|| {
                    problem(
                        &address.path,
                        format!("{}: api_base `os.environ/{var}`: {var} is not set, and the Envoy bootstrap needs this address now (its clusters are written out); set it, or write the URL", address.at),
                    )
                })?;
                set_at(&mut plugin, &address.path, Value::String(value));
            }
            // Compiled again with the addresses in: the clusters are theirs.
            // The warnings stay the first compilation's, about the user's file.
            let warnings = std::mem::take(&mut config.warnings);
            (config, env_keys) = compile(&plugin)?;
            config.warnings = warnings;
        }
    }
    let entra = match variables {
        ApiBaseVariables::Now(env) => entra_injectors(&config, *env)?,
        ApiBaseVariables::AtRunTime => Vec::new(),
    };
    let warnings = std::mem::take(&mut config.warnings);
    Ok(Conversion {
        plugin,
        config,
        warnings,
        env_keys,
        entra,
    })
}

/// The steps of a document path: keys, and indexes (`[2]`).
fn steps(path: &str) -> Vec<Result<&str, usize>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, indexes) = part.split_once('[').map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            steps.push(Ok(key));
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                steps.push(Err(i));
            }
        }
    }
    steps
}

fn step<'v>(value: &'v mut Value, step: &Result<&str, usize>) -> Option<&'v mut Value> {
    match step {
        Ok(key) => value.as_object_mut()?.get_mut(*key),
        Err(index) => value.as_array_mut()?.get_mut(*index),
    }
}

/// The mapping that holds the key a document path ends in, and that key.
fn parent_at<'v, 'p>(
    document: &'v mut Map<String, Value>,
    path: &'p str,
) -> Option<(&'v mut Map<String, Value>, &'p str)> {
    let steps = steps(path);
    let (Ok(last), parents) = steps.split_last()? else {
        return None;
    };
    let parent = match parents.split_first() {
        None => document,
        Some((first, rest)) => {
            let mut value = document.get_mut(*first.as_ref().ok()?)?;
            for s in rest {
                value = step(value, s)?;
            }
            value.as_object_mut()?
        }
    };
    Some((parent, *last))
}

/// Sets the key at a document path (written there or not: a provider's
/// own address variable is read where the entry gives none).
fn set_at(document: &mut Map<String, Value>, path: &str, value: Value) {
    if let Some((parent, key)) = parent_at(document, path) {
        parent.insert(key.to_owned(), value);
    }
}

/// Removes the key at a document path.
fn remove(document: &mut Map<String, Value>, path: &str) {
    if let Some((parent, key)) = parent_at(document, path) {
        parent.remove(key);
    }
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
