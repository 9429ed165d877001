//! Plugin configuration: LiteLLM's `model_list` shape in, a validated and
//! compiled [`Config`] out. Everything that can be checked is checked here,
//! once, so the request path only looks things up.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::pattern::Pattern;
use crate::router::{Deployment, Router};

/// The default header that carries the chosen cluster to Envoy's router.
pub const DEFAULT_CLUSTER_HEADER: &str = "x-llm-cluster";
/// The default body limit (32 MiB): LLM requests with images are large.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;
/// How far above `max_body_bytes` Envoy's own buffer limit
/// (`per_connection_buffer_limit_bytes`) is set in the shipped configs. The
/// filter counts the body as it arrives and answers its JSON 413 on the
/// first read that passes `max_body_bytes`; Envoy's buffer must still have
/// room for that read, or Envoy answers first with its plain-text 413.
pub const ENVOY_BUFFER_MARGIN: usize = 1 << 20;
/// LiteLLM's prefix for "read this from the environment".
const ENV_PREFIX: &str = "os.environ/";

// ---- the JSON shape ------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    model_list: Vec<RawDeployment>,
    #[serde(default)]
    general_settings: RawGeneralSettings,
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    cluster_header: Option<String>,
    max_body_bytes: Option<usize>,
    inject_stream_usage: Option<bool>,
    // Sections of a LiteLLM config.yaml that have no meaning here; accepted so
    // a whole config.yaml (as JSON) can be pasted.
    #[serde(default, rename = "litellm_settings")]
    _litellm_settings: serde::de::IgnoredAny,
    #[serde(default, rename = "router_settings")]
    _router_settings: serde::de::IgnoredAny,
}

/// Unknown keys (`model_info`, `rpm`, `tpm`, …) are ignored, as LiteLLM does.
#[derive(Deserialize)]
struct RawDeployment {
    model_name: String,
    litellm_params: RawParams,
}

#[derive(Deserialize)]
struct RawParams {
    model: String,
    api_key: Option<String>,
    api_base: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawGeneralSettings {
    master_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    cluster: Option<String>,
    api_base: Option<String>,
    auth: Option<AuthStyle>,
    api_key_env: Option<String>,
    inject_stream_usage: Option<bool>,
}

// ---- the compiled form ---------------------------------------------------

/// How a provider expects its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>` (OpenAI and every OpenAI-compatible API).
    #[serde(rename = "bearer")]
    Bearer,
    /// `x-api-key: <key>` plus `anthropic-version`.
    #[serde(rename = "x-api-key")]
    AnthropicKey,
}

/// One row of the provider table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub cluster: String,
    /// Path part of `api_base`, without a trailing `/` (`/openai/v1`).
    pub base_path: String,
    pub auth: AuthStyle,
    /// The variable LiteLLM reads when a deployment gives no `api_key`.
    pub api_key_env: String,
    /// The provider takes `stream_options.include_usage` (see
    /// [`Config::inject_stream_usage`]).
    pub inject_stream_usage: bool,
}

/// A secret from the configuration. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A deployment's provider key, or why it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKey {
    /// The headers that carry the key upstream, built once: `authorization:
    /// Bearer <key>`, or `x-api-key: <key>` with `anthropic-version`.
    Ready(Vec<(&'static str, Secret)>),
    /// The environment variable is unset: requests to this deployment get 503.
    Unset { var: String },
}

/// The whole compiled configuration.
#[derive(Debug)]
pub struct Config {
    pub router: Router,
    pub master_key: Option<Secret>,
    pub cluster_header: String,
    pub max_body_bytes: usize,
    /// Add `stream_options.include_usage` to streamed chat and completion
    /// requests that lack it, so their usage can be counted (the chunk it
    /// brings is removed from what the client gets).
    pub inject_stream_usage: bool,
    /// The `GET /v1/models` answer, built once.
    pub models_reply: Vec<u8>,
    /// Non-fatal findings to log once (never containing a secret).
    pub warnings: Vec<String>,
}

// ---- errors ----------------------------------------------------------------

/// A configuration that cannot be used. `at` names the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub at: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "llm-router configuration: {}: {}", self.at, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn error(at: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        at: at.into(),
        problem: problem.into(),
    }
}

// ---- compiling --------------------------------------------------------------

/// Built-in providers not sent `stream_options`: Mistral reports usage in
/// its last chunk unasked, and its API is strict about parameters.
const NO_STREAM_OPTIONS: &[&str] = &["mistral"];

/// The built-in provider table: (name, api_base, auth, key variable).
const BUILTIN_PROVIDERS: &[(&str, &str, AuthStyle, &str)] = &[
    (
        "openai",
        "https://api.openai.com/v1",
        AuthStyle::Bearer,
        "OPENAI_API_KEY",
    ),
    (
        "anthropic",
        "https://api.anthropic.com/v1",
        AuthStyle::AnthropicKey,
        "ANTHROPIC_API_KEY",
    ),
    (
        "groq",
        "https://api.groq.com/openai/v1",
        AuthStyle::Bearer,
        "GROQ_API_KEY",
    ),
    (
        "mistral",
        "https://api.mistral.ai/v1",
        AuthStyle::Bearer,
        "MISTRAL_API_KEY",
    ),
    (
        "deepseek",
        "https://api.deepseek.com/v1",
        AuthStyle::Bearer,
        "DEEPSEEK_API_KEY",
    ),
    (
        "together_ai",
        "https://api.together.xyz/v1",
        AuthStyle::Bearer,
        "TOGETHERAI_API_KEY",
    ),
    (
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        AuthStyle::Bearer,
        "FIREWORKS_AI_API_KEY",
    ),
    (
        "openrouter",
        "https://openrouter.ai/api/v1",
        AuthStyle::Bearer,
        "OPENROUTER_API_KEY",
    ),
    ("xai", "https://api.x.ai/v1", AuthStyle::Bearer, "XAI_API_KEY"),
];

/// Parses and compiles the plugin configuration. `env` resolves
/// `os.environ/NAME` (the VM's environment in Envoy, a map in tests).
pub fn compile(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_json::from_slice(json).map_err(|e| {
        error(
            "plugin configuration",
            format!("{e} (expected a JSON object with `model_list` and optional `general_settings`, `providers`, `cluster_header`, `max_body_bytes`, `inject_stream_usage`)"),
        )
    })?;
    let mut warnings = Vec::new();
    let providers = provider_table(raw.providers)?;

    let master_key = match raw.general_settings.master_key {
        None => None,
        Some(value) => match resolve(&value, env) {
            Resolved::Value(key) if !key.is_empty() => {
                check_header_value(&key, "general_settings.master_key")?;
                if is_publicly_known_key(&key) {
                    warnings.push(
                        "general_settings.master_key is a publicly known example key (such as sk-1234): anyone can use this router; set a long random key".to_owned(),
                    );
                }
                Some(Secret(key))
            }
            Resolved::Value(_) => return Err(error("general_settings.master_key", "is empty; set a key or remove `master_key` to disable the client check")),
            Resolved::Unset(var) => {
                return Err(error(
                    "general_settings.master_key",
                    format!("environment variable `{var}` is not set in the Wasm VM; set it and list it in vm_config.environment_variables.host_env_keys (the filter never runs without a configured master key)"),
                ))
            }
        },
    };

    let cluster_header = match raw.cluster_header {
        None => DEFAULT_CLUSTER_HEADER.to_owned(),
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            if lower.is_empty() || !lower.bytes().all(is_token_byte) {
                return Err(error("cluster_header", format!("`{name}` is not a valid header name")));
            }
            lower
        }
    };
    let max_body_bytes = match raw.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(0) => return Err(error("max_body_bytes", "must be greater than 0")),
        Some(n) => n,
    };

    if raw.model_list.is_empty() {
        return Err(error("model_list", "is empty; add at least one deployment"));
    }
    let mut deployments = Vec::with_capacity(raw.model_list.len());
    for (index, entry) in raw.model_list.into_iter().enumerate() {
        let at = format!("model_list[{index}] (model_name `{}`)", entry.model_name);
        let deployment = compile_deployment(entry, &at, &providers, env)?;
        if let ProviderKey::Unset { var } = &deployment.key {
            warnings.push(format!(
                "{at}: environment variable `{var}` is not set in the Wasm VM; requests for this route get 503 until it is"
            ));
        }
        deployments.push(deployment);
    }
    let router = Router::new(deployments, &mut warnings);
    let models_reply = router.models_reply();
    Ok(Config {
        router,
        master_key,
        cluster_header,
        max_body_bytes,
        inject_stream_usage: raw.inject_stream_usage.unwrap_or(true),
        models_reply,
        warnings,
    })
}

fn compile_deployment(
    entry: RawDeployment,
    at: &str,
    providers: &BTreeMap<String, Provider>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Deployment, ConfigError> {
    let RawDeployment {
        model_name,
        litellm_params: params,
    } = entry;
    if model_name.is_empty() {
        return Err(error(at, "`model_name` is empty"));
    }
    let pattern = Pattern::parse(&model_name);
    let (provider_name, model_template) = params.model.split_once('/').ok_or_else(|| {
        error(
            at,
            format!(
                "litellm_params.model `{}` names no provider; write it as `<provider>/<model>`, e.g. `openai/{}`",
                params.model, params.model
            ),
        )
    })?;
    if provider_name.contains('*') {
        return Err(error(
            at,
            format!(
                "litellm_params.model `{}`: the provider (before the first `/`) must be literal, not a wildcard",
                params.model
            ),
        ));
    }
    let provider = providers.get(provider_name).ok_or_else(|| {
        let known: Vec<&str> = providers.keys().map(String::as_str).collect();
        error(
            at,
            format!(
                "litellm_params.model `{}`: unknown provider `{provider_name}`; use one of {} or add it under `providers`",
                params.model,
                known.join(", ")
            ),
        )
    })?;
    let target_stars = model_template.matches('*').count();
    let pattern_stars = pattern.as_ref().map_or(0, Pattern::stars);
    if target_stars != 0 && target_stars != pattern_stars {
        return Err(error(
            at,
            format!(
                "litellm_params.model `{}` has {target_stars} `*` but model_name has {pattern_stars}; each `*` of the target takes the text of the matching `*` of model_name",
                params.model
            ),
        ));
    }
    let base_path = match &params.api_base {
        Some(api_base) => url_path(api_base).ok_or_else(|| {
            error(
                at,
                format!("litellm_params.api_base `{api_base}` is not an http(s) URL"),
            )
        })?,
        None => provider.base_path.clone(),
    };
    let key = match params.api_key {
        Some(value) => resolve(&value, env),
        None => resolve(&format!("{ENV_PREFIX}{}", provider.api_key_env), env),
    };
    let key = match key {
        Resolved::Value(key) if !key.is_empty() => {
            check_header_value(&key, &format!("{at}: litellm_params.api_key"))?;
            ProviderKey::Ready(credential_headers(provider.auth, key))
        }
        Resolved::Value(_) => return Err(error(at, "litellm_params.api_key is empty")),
        Resolved::Unset(var) => ProviderKey::Unset { var },
    };
    Ok(Deployment {
        model_name,
        pattern,
        upstream_model: model_template.to_owned(),
        target_has_stars: target_stars > 0,
        provider: provider.clone(),
        base_path,
        key,
    })
}

/// Sent to Anthropic with its key, as its API requires.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The headers that carry `key` upstream. All are kept as [`Secret`]s, so a
/// `Debug` of the configuration never shows a key.
fn credential_headers(auth: AuthStyle, key: String) -> Vec<(&'static str, Secret)> {
    match auth {
        AuthStyle::Bearer => vec![("authorization", Secret(format!("Bearer {key}")))],
        AuthStyle::AnthropicKey => vec![
            ("x-api-key", Secret(key)),
            ("anthropic-version", Secret(ANTHROPIC_VERSION.to_owned())),
        ],
    }
}

fn provider_table(overrides: BTreeMap<String, RawProvider>) -> Result<BTreeMap<String, Provider>, ConfigError> {
    let mut table: BTreeMap<String, Provider> = BUILTIN_PROVIDERS
        .iter()
        .map(|&(name, api_base, auth, api_key_env)| {
            let provider = Provider {
                name: name.to_owned(),
                cluster: name.to_owned(),
                base_path: url_path(api_base).unwrap_or_default(),
                auth,
                api_key_env: api_key_env.to_owned(),
                inject_stream_usage: !NO_STREAM_OPTIONS.contains(&name),
            };
            (name.to_owned(), provider)
        })
        .collect();
    for (name, raw) in overrides {
        let at = format!("providers.{name}");
        if name.is_empty() || name.contains('/') || name.contains('*') {
            return Err(error(at, "a provider name may not be empty or contain `/` or `*`"));
        }
        let base_path = match raw.api_base {
            Some(api_base) => Some(
                url_path(&api_base)
                    .ok_or_else(|| error(&at, format!("api_base `{api_base}` is not an http(s) URL")))?,
            ),
            None => None,
        };
        let provider = match table.remove(&name) {
            Some(builtin) => Provider {
                cluster: raw.cluster.unwrap_or(builtin.cluster),
                base_path: base_path.unwrap_or(builtin.base_path),
                auth: raw.auth.unwrap_or(builtin.auth),
                api_key_env: raw.api_key_env.unwrap_or(builtin.api_key_env),
                inject_stream_usage: raw.inject_stream_usage.unwrap_or(builtin.inject_stream_usage),
                name: builtin.name,
            },
            None => Provider {
                cluster: raw.cluster.unwrap_or_else(|| name.clone()),
                base_path: base_path.ok_or_else(|| {
                    error(
                        &at,
                        "a new provider needs `api_base`, e.g. \"https://api.example.com/v1\"",
                    )
                })?,
                auth: raw.auth.unwrap_or(AuthStyle::Bearer),
                api_key_env: raw
                    .api_key_env
                    .unwrap_or_else(|| format!("{}_API_KEY", name.to_ascii_uppercase())),
                inject_stream_usage: raw.inject_stream_usage.unwrap_or(true),
                name: name.clone(),
            },
        };
        if provider.cluster.is_empty() || provider.cluster.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(error(
                at,
                format!("cluster `{}` is not a valid Envoy cluster name", provider.cluster),
            ));
        }
        table.insert(name, provider);
    }
    Ok(table)
}

enum Resolved {
    Value(String),
    Unset(String),
}

/// LiteLLM's `os.environ/NAME` indirection; any other string is literal.
fn resolve(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Resolved {
    match value.strip_prefix(ENV_PREFIX) {
        Some(var) => match env(var) {
            Some(v) => Resolved::Value(v),
            None => Resolved::Unset(var.to_owned()),
        },
        None => Resolved::Value(value.to_owned()),
    }
}

/// The path part of an `http(s)://host[:port]/path` URL, without a trailing `/`.
fn url_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let path = rest.find('/').and_then(|i| rest.get(i..)).unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') || path.contains(['?', '#']) {
        return None;
    }
    Some(path.trim_end_matches('/').to_owned())
}

/// Keys become header values: a CR, LF or NUL would split or break the request.
fn check_header_value(value: &str, at: &str) -> Result<(), ConfigError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(error(
            at,
            "the key contains a line break or NUL and cannot be sent as a header",
        ));
    }
    Ok(())
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Example keys from LiteLLM's documentation and quick-starts.
fn is_publicly_known_key(key: &str) -> bool {
    matches!(
        key,
        "sk-1234" | "sk-12345" | "sk-123456" | "sk-master-key" | "sk-admin" | "changeme"
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const SEED: &str = r#"{"model_list": [
      {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_key": "os.environ/ANTHROPIC_API_KEY"}},
      {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "os.environ/GROQ_API_KEY"}},
      {"model_name": "fo::*:static::*", "litellm_params": {"model": "openai/fo::*:static::*", "api_key": "os.environ/OPENAI_API_KEY"}}],
     "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}}"#;

    pub fn test_env(var: &str) -> Option<String> {
        match var {
            "ANTHROPIC_API_KEY" => Some("sk-ant-test".into()),
            "GROQ_API_KEY" => Some("gsk-test".into()),
            "OPENAI_API_KEY" => Some("sk-openai-test".into()),
            "LITELLM_MASTER_KEY" => Some("sk-router-master".into()),
            _ => None,
        }
    }

    pub fn compile_test(json: &str) -> Result<Config, ConfigError> {
        compile(json.as_bytes(), &test_env)
    }

    #[test]
    fn the_seed_compiles() {
        let config = compile_test(SEED).expect("seed compiles");
        assert_eq!(config.cluster_header, "x-llm-cluster");
        assert_eq!(config.max_body_bytes, 32 << 20);
        assert_eq!(config.master_key, Some(Secret("sk-router-master".into())));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn litellm_extras_are_accepted() {
        let json = r#"{"model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "rpm": 10, "timeout": 30, "api_key": "sk-lit"}, "model_info": {"id": "x"}, "tpm": 5}],
          "general_settings": {"database_url": "ignored"}, "litellm_settings": {"drop_params": true}, "router_settings": {}}"#;
        assert!(compile_test(json).is_ok());
    }

    #[test]
    fn errors_name_the_entry() {
        // (configuration, expected `at`, a fragment of the problem)
        let rows: &[(&str, &str, &str)] = &[
            ("not json", "plugin configuration", "expected"),
            (
                r#"{"model_lst": []}"#,
                "plugin configuration",
                "unknown field `model_lst`",
            ),
            (r#"{"model_list": []}"#, "model_list", "is empty"),
            (
                r#"{"model_list": [{"model_name": "x"}]}"#,
                "plugin configuration",
                "litellm_params",
            ),
            (
                r#"{"model_list": [{"model_name": "", "litellm_params": {"model": "openai/x", "api_key": "k"}}]}"#,
                "model_list[0] (model_name ``)",
                "empty",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "gpt-4o", "api_key": "k"}}]}"#,
                "model_list[0] (model_name `x`)",
                "names no provider",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "nosuch/gpt", "api_key": "k"}}]}"#,
                "model_list[0] (model_name `x`)",
                "unknown provider `nosuch`",
            ),
            (
                r#"{"model_list": [{"model_name": "*", "litellm_params": {"model": "*/x", "api_key": "k"}}]}"#,
                "model_list[0] (model_name `*`)",
                "must be literal",
            ),
            (
                r#"{"model_list": [{"model_name": "a/*", "litellm_params": {"model": "openai/*-*", "api_key": "k"}}]}"#,
                "model_list[0] (model_name `a/*`)",
                "has 2 `*` but model_name has 1",
            ),
            (
                r#"{"model_list": [{"model_name": "exact", "litellm_params": {"model": "openai/*", "api_key": "k"}}]}"#,
                "model_list[0] (model_name `exact`)",
                "has 1 `*` but model_name has 0",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k", "api_base": "ftp://h"}}]}"#,
                "model_list[0] (model_name `x`)",
                "not an http(s) URL",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "a\nb"}}]}"#,
                "model_list[0] (model_name `x`): litellm_params.api_key",
                "line break",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": ""}}]}"#,
                "model_list[0] (model_name `x`)",
                "empty",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "general_settings": {"master_key": "os.environ/NOPE"}}"#,
                "general_settings.master_key",
                "`NOPE` is not set",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "general_settings": {"master_key": ""}}"#,
                "general_settings.master_key",
                "empty",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "cluster_header": "bad header"}"#,
                "cluster_header",
                "not a valid header name",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "max_body_bytes": 0}"#,
                "max_body_bytes",
                "greater than 0",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "providers": {"newco": {"cluster": "newco"}}}"#,
                "providers.newco",
                "needs `api_base`",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "providers": {"groq": {"clustr": "g"}}}"#,
                "plugin configuration",
                "unknown field `clustr`",
            ),
        ];
        for (json, at, fragment) in rows {
            match compile_test(json) {
                Ok(_) => panic!("accepted: {json}"),
                Err(e) => {
                    assert_eq!(e.at, *at, "for {json}: {e}");
                    assert!(e.problem.contains(fragment), "for {json}: {e}");
                }
            }
        }
    }

    #[test]
    fn an_unset_provider_key_only_disables_its_deployment() {
        let json = r#"{"model_list": [{"model_name": "m/*", "litellm_params": {"model": "mistral/*", "api_key": "os.environ/MISSING_KEY"}}, {"model_name": "x", "litellm_params": {"model": "openai/x"}}]}"#;
        let config = compile_test(json).expect("an unset key is not fatal");
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("model_list[0]") && config.warnings[0].contains("MISSING_KEY"));
        let deployments = config.router.deployments();
        assert_eq!(
            deployments[0].key,
            ProviderKey::Unset {
                var: "MISSING_KEY".into()
            }
        );
        // no api_key: the provider's conventional variable, as in LiteLLM
        assert_eq!(
            deployments[1].key,
            ProviderKey::Ready(vec![("authorization", Secret("Bearer sk-openai-test".into()))])
        );
    }

    #[test]
    fn known_example_master_keys_warn() {
        let json = r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x"}}], "general_settings": {"master_key": "sk-1234"}}"#;
        let config = compile_test(json).expect("compiles");
        assert!(config.warnings.iter().any(|w| w.contains("publicly known")));
        assert!(config.warnings.iter().all(|w| !w.contains("sk-1234 ")));
    }

    #[test]
    fn providers_override_and_extend_the_table() {
        let json = r#"{"model_list": [
            {"model_name": "g/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
            {"model_name": "n/*", "litellm_params": {"model": "newco/*", "api_key": "k"}},
            {"model_name": "o", "litellm_params": {"model": "openai/o", "api_key": "k", "api_base": "http://proxy.local:8080/custom/v1/"}}],
          "providers": {"groq": {"cluster": "groq-egress"}, "newco": {"api_base": "https://api.newco.ai/api/v2", "auth": "x-api-key"}}}"#;
        let config = compile_test(json).expect("compiles");
        let d = config.router.deployments();
        assert_eq!(
            (d[0].provider.cluster.as_str(), d[0].base_path.as_str()),
            ("groq-egress", "/openai/v1")
        );
        assert_eq!(
            (d[1].provider.cluster.as_str(), d[1].base_path.as_str()),
            ("newco", "/api/v2")
        );
        assert_eq!(d[1].provider.auth, AuthStyle::AnthropicKey);
        assert_eq!(
            (d[2].provider.cluster.as_str(), d[2].base_path.as_str()),
            ("openai", "/custom/v1")
        );
    }

    #[test]
    fn stream_usage_injection_is_per_provider() {
        let json = r#"{"model_list": [
            {"model_name": "m/*", "litellm_params": {"model": "mistral/*", "api_key": "k"}},
            {"model_name": "g/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
            {"model_name": "o/*", "litellm_params": {"model": "openai/*", "api_key": "k"}}],
          "providers": {"openai": {"inject_stream_usage": false}}}"#;
        let config = compile_test(json).expect("compiles");
        let injects: Vec<bool> = config
            .router
            .deployments()
            .iter()
            .map(|d| d.provider.inject_stream_usage)
            .collect();
        assert_eq!(injects, [false, true, false]);
    }

    #[test]
    fn secrets_do_not_print() {
        let config = compile_test(SEED).expect("seed compiles");
        let shown = format!("{config:?}");
        for secret in ["sk-ant-test", "gsk-test", "sk-openai-test", "sk-router-master"] {
            assert!(!shown.contains(secret));
        }
    }

    #[test]
    fn url_paths() {
        assert_eq!(
            url_path("https://api.groq.com/openai/v1").as_deref(),
            Some("/openai/v1")
        );
        assert_eq!(url_path("https://api.openai.com/v1/").as_deref(), Some("/v1"));
        assert_eq!(url_path("http://localhost:8080").as_deref(), Some(""));
        assert_eq!(url_path("api.openai.com/v1"), None);
        assert_eq!(url_path("https:///v1"), None);
    }
}
