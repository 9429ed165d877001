//! Plugin configuration: LiteLLM's `model_list` shape in, a validated and
//! compiled [`Config`] out. Everything that can be checked is checked here,
//! once, so the request path only looks things up.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;

use crate::pattern::Pattern;
use crate::router::{Alias, Deployment, Families, Router, RouterError, RouterParts, Shares, Timeouts};

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
    general_settings: RawSettings,
    #[serde(default)]
    router_settings: RawRouterSettings,
    #[serde(default)]
    litellm_settings: RawSettings,
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    cluster_header: Option<String>,
    max_body_bytes: Option<usize>,
    inject_stream_usage: Option<bool>,
}

#[derive(Deserialize)]
struct RawDeployment {
    model_name: String,
    litellm_params: RawParams,
    #[serde(default)]
    model_info: RawModelInfo,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

/// LiteLLM's metadata about the model: of it only the deployment's `id`
/// (its name in metrics and the response header) matters here; cost and
/// context window are not routing.
#[derive(Deserialize, Default)]
struct RawModelInfo {
    id: Option<String>,
    #[serde(flatten)]
    _other: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawParams {
    model: String,
    api_key: Option<String>,
    api_base: Option<String>,
    api_version: Option<String>,
    /// A group's traffic shares: `weight`, else `rpm`, else `tpm` (LiteLLM's simple-shuffle).
    weight: Option<f64>,
    rpm: Option<f64>,
    tpm: Option<f64>,
    /// Lower first; a higher order only when every lower one is out.
    order: Option<u32>,
    /// Seconds an attempt may take to answer; `stream_timeout` for a
    /// streamed request.
    timeout: Option<f64>,
    stream_timeout: Option<f64>,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

/// A section of which llm-router reads at most a few keys; the rest are
/// named in warnings.
#[derive(Deserialize, Default)]
struct RawSettings {
    master_key: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct RawRouterSettings {
    #[serde(default)]
    model_group_alias: BTreeMap<String, RawAlias>,
    num_retries: Option<u32>,
    /// `[{"gpt-4o": ["claude-sonnet"]}]`: where a group's requests go when
    /// all of its deployments fail.
    #[serde(default)]
    fallbacks: Vec<BTreeMap<String, Vec<String>>>,
    allowed_fails: Option<u32>,
    cooldown_time: Option<f64>,
    timeout: Option<f64>,
    stream_timeout: Option<f64>,
    routing_strategy: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

/// LiteLLM's two spellings: `"gpt-4": "gpt-4o"` or `{"model": …, "hidden": true}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawAlias {
    Target(String),
    Entry {
        model: String,
        #[serde(default)]
        hidden: bool,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    cluster: Option<String>,
    api_base: Option<String>,
    auth: Option<AuthStyle>,
    api_key_env: Option<String>,
    inject_stream_usage: Option<bool>,
    model_families: Option<Vec<String>>,
}

/// The `general_settings` and `router_settings` keys llm-router acts on
/// (the config generator carries only these, so no other setting, such as a
/// database password, ends up in Envoy's configuration).
pub const GENERAL_SETTINGS: &[&str] = &["master_key"];
pub const ROUTER_SETTINGS: &[&str] = &[
    "model_group_alias",
    "num_retries",
    "fallbacks",
    "allowed_fails",
    "cooldown_time",
    "timeout",
    "stream_timeout",
];

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
    /// `api-key: <key>` (Azure OpenAI).
    #[serde(rename = "api-key")]
    AzureKey,
}

/// How the client's path becomes the provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// The leading `/v1` replaced by the path of `api_base`.
    OpenAi,
    /// `/openai/deployments/<deployment>/<operation>?api-version=<version>`.
    AzureDeployments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// Where a deployment's requests go: one Envoy cluster per distinct upstream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Upstream {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl Upstream {
    fn default_port(scheme: Scheme) -> u16 {
        match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The Host header value: the port only when it is not the scheme's own.
    pub fn authority(&self) -> String {
        if self.port == Upstream::default_port(self.scheme) {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The cluster name of an upstream that is not a provider's own.
    fn cluster_name(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!(
            "{scheme}_{}_{}",
            self.host.trim_matches(['[', ']']).replace(':', "-"),
            self.port
        )
    }
}

/// An `api_base`, split: the upstream, and the path prefix that replaces `/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    pub upstream: Upstream,
    /// Without a trailing `/` (`/openai/v1`, or empty).
    pub path: String,
}

impl ApiBase {
    /// `http(s)://host[:port][/path]`; `None` for anything else (user info,
    /// a query or a fragment included: none of them can be honoured).
    pub fn parse(url: &str) -> Option<ApiBase> {
        let (scheme, rest) = match url.split_once("://")? {
            ("https", rest) => (Scheme::Https, rest),
            ("http", rest) => (Scheme::Http, rest),
            _ => return None,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i)?, rest.get(i..)?),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) || authority.contains(['@', '?', '#']) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port.parse::<u16>().ok().filter(|&p| p > 0)?)),
            _ => (authority, None),
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
        if !valid_host {
            return None;
        }
        Some(ApiBase {
            upstream: Upstream {
                scheme,
                host: host.to_ascii_lowercase(),
                port: port.unwrap_or(Upstream::default_port(scheme)),
            },
            path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// One row of the provider table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    /// The cluster of the provider's own `api_base`.
    pub cluster: String,
    /// `None`: every deployment gives its own (Azure, vLLM).
    pub api_base: Option<ApiBase>,
    pub auth: AuthStyle,
    pub path_style: PathStyle,
    /// The variable LiteLLM reads when a deployment gives no `api_key`.
    pub api_key_env: String,
    /// A self-hosted server may take no key: without one, none is sent.
    pub key_optional: bool,
    /// The provider takes `stream_options.include_usage` (see
    /// [`Config::inject_stream_usage`]).
    pub inject_stream_usage: bool,
    /// Bare model names this provider serves (`gpt-*`), to infer it.
    pub model_families: Vec<String>,
}

/// Where and how one deployment's requests are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub provider: Provider,
    /// The Envoy cluster of `upstream`: the provider's own for its own
    /// `api_base`, else one named after the upstream.
    pub cluster: String,
    pub upstream: Upstream,
    /// Upstream path prefix that replaces the client's `/v1`.
    pub base_path: String,
    /// Azure's `api-version` query value.
    pub api_version: Option<String>,
    pub key: ProviderKey,
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
    /// Bearer <key>`, `x-api-key: <key>` with `anthropic-version`, or
    /// `api-key: <key>`; none for a keyless self-hosted server.
    Ready(Vec<(&'static str, Secret)>),
    /// An environment variable the deployment needs (its key, `api_base` or
    /// `api_version`) is unset: requests to it get 503.
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
    /// How Envoy retries and cools down a group's deployments.
    pub failover: Failover,
    /// The `GET /v1/models` answer, built once.
    pub models_reply: Vec<u8>,
    /// Non-fatal findings to log once (never containing a secret).
    pub warnings: Vec<String>,
}

impl Config {
    /// Every upstream a request is sent to directly, with its cluster name,
    /// once each, sorted by cluster: what the Envoy bootstrap must define
    /// besides the groups' clusters, which carry their own endpoints.
    pub fn upstreams(&self) -> Vec<(&str, &Upstream)> {
        let mut upstreams: BTreeMap<&str, &Upstream> = BTreeMap::new();
        // An endpoint missing a variable answers 503 and sends nothing.
        let usable = self
            .router
            .endpoints()
            .filter(|e| !matches!(e.key, ProviderKey::Unset { .. }));
        for endpoint in usable {
            upstreams.entry(&endpoint.cluster).or_insert(&endpoint.upstream);
        }
        upstreams.into_iter().collect()
    }
}

/// LiteLLM's retry and cooldown settings (`router_settings`), which the
/// Envoy bootstrap turns into a group route's retry policy and its
/// cluster's outlier detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Failover {
    /// Attempts after the first.
    pub num_retries: u32,
    /// Failures in a row that take a deployment out.
    pub allowed_fails: u32,
    /// How long it stays out.
    pub cooldown_seconds: f64,
}

/// LiteLLM's defaults (`litellm/constants.py`).
pub const DEFAULT_NUM_RETRIES: u32 = 2;
pub const DEFAULT_ALLOWED_FAILS: u32 = 3;
pub const DEFAULT_COOLDOWN_SECONDS: f64 = 5.0;

// ---- errors ----------------------------------------------------------------

/// A configuration that cannot be used. `at` names the entry for people;
/// `path` is where it sits in the document (`model_list[2].litellm_params.model`),
/// for a tool to point at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub at: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "llm-router configuration: {}: {}", self.at, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn error(path: impl Into<String>, at: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        at: at.into(),
        problem: problem.into(),
    }
}

/// An error about a top-level key, where the path and the name are one.
fn key_error(key: &str, problem: impl Into<String>) -> ConfigError {
    error(key, key, problem)
}

// ---- the provider table ------------------------------------------------------

/// A built-in provider.
struct Builtin {
    name: &'static str,
    api_base: Option<&'static str>,
    auth: AuthStyle,
    api_key_env: &'static str,
    key_optional: bool,
    families: &'static [&'static str],
}

const fn openai_compatible(name: &'static str, api_base: &'static str, api_key_env: &'static str) -> Builtin {
    Builtin {
        name,
        api_base: Some(api_base),
        auth: AuthStyle::Bearer,
        api_key_env,
        key_optional: false,
        families: &[],
    }
}

const fn with_families(builtin: Builtin, families: &'static [&'static str]) -> Builtin {
    Builtin { families, ..builtin }
}

/// Self-hosted OpenAI-compatible servers: an `api_base` per deployment, a
/// key only if the server was started with one.
const fn self_hosted(name: &'static str, api_key_env: &'static str) -> Builtin {
    Builtin {
        name,
        api_base: None,
        auth: AuthStyle::Bearer,
        api_key_env,
        key_optional: true,
        families: &[],
    }
}

/// The built-in provider table, with LiteLLM's names and key variables.
const BUILTIN_PROVIDERS: &[Builtin] = &[
    with_families(
        openai_compatible("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        &[
            "gpt-*",
            "o1*",
            "o3*",
            "o4*",
            "chatgpt-*",
            "text-embedding-*",
            "omni-moderation-*",
            "text-moderation-*",
            "dall-e-*",
            "gpt-image-*",
            "whisper-*",
            "tts-*",
            "davinci-*",
            "babbage-*",
        ],
    ),
    Builtin {
        name: "anthropic",
        api_base: Some("https://api.anthropic.com/v1"),
        auth: AuthStyle::AnthropicKey,
        api_key_env: "ANTHROPIC_API_KEY",
        key_optional: false,
        families: &["claude-*"],
    },
    Builtin {
        name: "azure",
        api_base: None,
        auth: AuthStyle::AzureKey,
        api_key_env: "AZURE_API_KEY",
        key_optional: false,
        families: &[],
    },
    with_families(
        openai_compatible(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "GEMINI_API_KEY",
        ),
        &["gemini-*", "gemma-*"],
    ),
    openai_compatible("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    with_families(
        openai_compatible("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        &[
            "mistral-*",
            "codestral-*",
            "open-mistral-*",
            "open-mixtral-*",
            "ministral-*",
            "pixtral-*",
            "magistral-*",
            "devstral-*",
        ],
    ),
    with_families(
        openai_compatible("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        &["deepseek-*"],
    ),
    with_families(
        openai_compatible("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
        &["grok-*"],
    ),
    openai_compatible("together_ai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY"),
    openai_compatible(
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_AI_API_KEY",
    ),
    openai_compatible("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    openai_compatible("perplexity", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY"),
    openai_compatible("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    self_hosted("hosted_vllm", "HOSTED_VLLM_API_KEY"),
    self_hosted("lm_studio", "LM_STUDIO_API_KEY"),
];

/// Built-in providers not sent `stream_options`: Mistral reports usage in
/// its last chunk unasked, and its API is strict about parameters.
const NO_STREAM_OPTIONS: &[&str] = &["mistral"];

/// LiteLLM providers a key swap cannot serve, and what to use instead.
const REFUSED_PROVIDERS: &[(&[&str], &str)] = &[
    (
        &["bedrock", "bedrock_converse", "sagemaker", "sagemaker_chat"],
        "AWS signs every request with SigV4 (a signature over the body and the time), which a filter that swaps keys cannot do; use Bedrock's OpenAI-compatible endpoint as `openai/<model>` with `api_base: https://bedrock-runtime.<region>.amazonaws.com/openai/v1` and a Bedrock API key",
    ),
    (
        &["vertex_ai", "vertex_ai_beta"],
        "Vertex AI takes short-lived Google OAuth tokens, not an API key; use `gemini/<model>` with a Gemini API key, or Vertex's OpenAI-compatible endpoint as `openai/<model>` with its `api_base`",
    ),
    (
        &["ollama", "ollama_chat"],
        "Ollama's native API (/api/chat, /api/generate) takes another request shape; use Ollama's OpenAI-compatible endpoint as `hosted_vllm/<model>` (or `openai/<model>`) with `api_base: http://<host>:11434/v1`",
    ),
    (
        &["watsonx", "watsonx_text"],
        "watsonx takes IAM tokens exchanged from an API key, not the key itself; serve it through a LiteLLM proxy for now",
    ),
];

/// The `api-version` Azure gets when neither the deployment nor
/// `AZURE_API_VERSION` names one: LiteLLM 1.110's default.
pub const AZURE_DEFAULT_API_VERSION: &str = "2025-02-01-preview";

// ---- compiling --------------------------------------------------------------

/// Parses and compiles the plugin configuration. `env` resolves
/// `os.environ/NAME` (the VM's environment in Envoy, a map in tests).
pub fn compile(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." { "plugin configuration".to_owned() } else { path.clone() };
        let hint = if inner.is_syntax() || inner.is_eof() {
            " (expected a JSON object with `model_list` and optional `general_settings`, `router_settings`, `providers`, `cluster_header`, `max_body_bytes`, `inject_stream_usage`)"
        } else {
            ""
        };
        error(path, at, format!("{inner}{hint}"))
    })?;
    let mut warnings = Vec::new();
    let providers = provider_table(raw.providers)?;
    let master_key = master_key(raw.general_settings.master_key, env, &mut warnings)?;
    ignored_keys("general_settings", &raw.general_settings.other, &mut warnings);
    ignored_keys("litellm_settings", &raw.litellm_settings.other, &mut warnings);
    if raw.litellm_settings.master_key.is_some() {
        warnings
            .push("litellm_settings.master_key is ignored (the client key is general_settings.master_key)".to_owned());
    }
    for key in raw.router_settings.other.keys() {
        warnings.push(format!("router_settings.{key} is ignored"));
    }
    match raw.router_settings.routing_strategy.as_deref() {
        None | Some("simple-shuffle") => {}
        Some(strategy) => warnings.push(format!(
            "router_settings.routing_strategy: `{strategy}` is not supported; groups are balanced by weight, rpm or tpm (simple-shuffle)"
        )),
    }

    let cluster_header = match raw.cluster_header {
        None => DEFAULT_CLUSTER_HEADER.to_owned(),
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            if lower.is_empty() || !lower.bytes().all(is_token_byte) {
                return Err(key_error(
                    "cluster_header",
                    format!("`{name}` is not a valid header name"),
                ));
            }
            lower
        }
    };
    let max_body_bytes = match raw.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(0) => return Err(key_error("max_body_bytes", "must be greater than 0")),
        Some(n) => n,
    };

    if raw.model_list.is_empty() {
        return Err(key_error("model_list", "is empty; add at least one deployment"));
    }
    let mut deployments = Vec::with_capacity(raw.model_list.len());
    let mut entries_of_name: HashMap<String, usize> = HashMap::new();
    for (index, entry) in raw.model_list.into_iter().enumerate() {
        let entry_path = format!("model_list[{index}]");
        let at = format!("{entry_path} (model_name `{}`)", entry.model_name);
        for key in entry.other.keys() {
            warnings.push(format!("{entry_path}.{key} is ignored"));
        }
        for key in entry.litellm_params.other.keys() {
            warnings.push(format!("{entry_path}.litellm_params.{key} is not supported; ignored"));
        }
        let nth = entries_of_name.entry(entry.model_name.clone()).or_default();
        *nth += 1;
        let id = match entry.model_info.id.clone() {
            Some(id) => {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(error(
                        format!("{entry_path}.model_info.id"),
                        &at,
                        "model_info.id must be printable ASCII without spaces (it names the deployment in a response header and in metrics)",
                    ));
                }
                id
            }
            None => format!("{}#{nth}", entry.model_name),
        };
        let deployment = compile_deployment(entry, &entry_path, &at, &providers, env, id)?;
        if let Target::Fixed(Endpoint {
            key: ProviderKey::Unset { var },
            ..
        }) = &deployment.target
        {
            warnings.push(format!(
                "{at}: environment variable `{var}` is not set in the Wasm VM; requests for this route get 503 until it is"
            ));
        }
        deployments.push(deployment);
    }
    // A deployment that forwards to the request's own provider needs every
    // provider's default endpoint, with its conventional key.
    let passthrough = deployments.iter().any(|d| d.target == Target::RequestProvider);
    let mut provider_endpoints = BTreeMap::new();
    if passthrough {
        for provider in providers.values() {
            if let Some(api_base) = &provider.api_base {
                let key = default_key(provider, env)?;
                let endpoint = endpoint(provider, api_base.clone(), None, key, env);
                provider_endpoints.insert(provider.name.clone(), endpoint);
            }
        }
    }
    let families = providers.values().flat_map(|p| {
        p.model_families
            .iter()
            .map(move |family| (family.as_str(), p.name.as_str()))
    });
    let families = Families::new(families);
    let aliases = raw
        .router_settings
        .model_group_alias
        .into_iter()
        .map(|(alias, raw)| match raw {
            RawAlias::Target(target) => Alias {
                name: alias,
                target,
                hidden: false,
            },
            RawAlias::Entry { model, hidden } => Alias {
                name: alias,
                target: model,
                hidden,
            },
        })
        .collect();
    let known_providers = providers.keys().cloned().collect();
    let default_timeouts = Timeouts {
        request: raw.router_settings.timeout,
        stream: raw.router_settings.stream_timeout,
    };
    for (key, value) in [
        ("timeout", default_timeouts.request),
        ("stream_timeout", default_timeouts.stream),
    ] {
        if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(key_error(
                &format!("router_settings.{key}"),
                "must be a positive number of seconds",
            ));
        }
    }
    let cooldown_seconds = raw.router_settings.cooldown_time.unwrap_or(DEFAULT_COOLDOWN_SECONDS);
    if !(cooldown_seconds.is_finite() && cooldown_seconds > 0.0) {
        return Err(key_error(
            "router_settings.cooldown_time",
            "must be a positive number of seconds",
        ));
    }
    let failover = Failover {
        num_retries: raw.router_settings.num_retries.unwrap_or(DEFAULT_NUM_RETRIES),
        allowed_fails: raw
            .router_settings
            .allowed_fails
            .unwrap_or(DEFAULT_ALLOWED_FAILS)
            .max(1),
        cooldown_seconds,
    };
    let fallbacks = raw
        .router_settings
        .fallbacks
        .iter()
        .enumerate()
        .flat_map(|(index, entry)| {
            entry
                .iter()
                .map(move |(group, targets)| (index, group.clone(), targets.clone()))
        })
        .collect();
    let router = Router::new(
        RouterParts {
            deployments,
            provider_endpoints,
            known_providers,
            families,
            aliases,
            fallbacks,
            default_timeouts,
        },
        &mut warnings,
    )
    .map_err(|e| match e {
        RouterError::Alias(alias) => error(
            format!("router_settings.model_group_alias.{}", alias.name),
            format!("router_settings.model_group_alias `{}`", alias.name),
            format!(
                "its target `{}` matches no model_name (an alias routes as its target)",
                alias.target
            ),
        ),
        RouterError::Fallback { index, group, problem } => error(
            format!("router_settings.fallbacks[{index}].{group}"),
            format!("router_settings.fallbacks[{index}]"),
            problem,
        ),
        RouterError::Member { index, problem } => {
            error(format!("model_list[{index}]"), format!("model_list[{index}]"), problem)
        }
    })?;
    let models_reply = router.models_reply();
    Ok(Config {
        router,
        master_key,
        cluster_header,
        max_body_bytes,
        inject_stream_usage: raw.inject_stream_usage.unwrap_or(true),
        failover,
        models_reply,
        warnings,
    })
}

fn master_key(
    value: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<Secret>, ConfigError> {
    const AT: &str = "general_settings.master_key";
    let Some(value) = value else { return Ok(None) };
    match resolve(&value, env) {
        Resolved::Value(key) if !key.is_empty() => {
            check_header_value(&key, AT, AT)?;
            if is_publicly_known_key(&key) {
                warnings.push(
                    "general_settings.master_key is a publicly known example key (such as sk-1234): anyone can use this router; set a long random key".to_owned(),
                );
            }
            Ok(Some(Secret(key)))
        }
        Resolved::Value(_) => Err(key_error(AT, "is empty; set a key or remove `master_key` to disable the client check")),
        Resolved::Unset(var) => Err(key_error(
            AT,
            format!("environment variable `{var}` is not set in the Wasm VM; set it and list it in vm_config.environment_variables.host_env_keys (the filter never runs without a configured master key)"),
        )),
    }
}

fn ignored_keys(section: &str, keys: &BTreeMap<String, serde::de::IgnoredAny>, warnings: &mut Vec<String>) {
    warnings.extend(keys.keys().map(|key| format!("{section}.{key} is ignored")));
}

/// Where a deployment's requests go.
// Unboxed: there is one per deployment, built once, read on every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Fixed(Endpoint),
    /// `model: "*"`: the provider is the request model's own prefix (or its
    /// model family).
    RequestProvider,
}

fn compile_deployment(
    entry: RawDeployment,
    entry_path: &str,
    at: &str,
    providers: &BTreeMap<String, Provider>,
    env: &dyn Fn(&str) -> Option<String>,
    id: String,
) -> Result<Deployment, ConfigError> {
    let RawDeployment {
        model_name,
        litellm_params: params,
        ..
    } = entry;
    let timeouts = Timeouts {
        request: params.timeout,
        stream: params.stream_timeout,
    };
    for (key, value) in [
        ("weight", params.weight),
        ("timeout", timeouts.request),
        ("stream_timeout", timeouts.stream),
    ] {
        if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(error(
                format!("{entry_path}.litellm_params.{key}"),
                at,
                format!("litellm_params.{key} must be a positive number"),
            ));
        }
    }
    let shares = Shares {
        weight: params.weight,
        rpm: params.rpm,
        tpm: params.tpm,
    };
    let order = params.order;
    let model_path = format!("{entry_path}.litellm_params.model");
    if model_name.is_empty() {
        return Err(error(format!("{entry_path}.model_name"), at, "`model_name` is empty"));
    }
    let pattern = Pattern::parse(&model_name);
    let pattern_stars = pattern.as_ref().map_or(0, Pattern::stars);
    if params.model == "*" {
        if pattern_stars != 1 {
            return Err(error(
                model_path,
                at,
                format!("litellm_params.model `*` forwards what one `*` of model_name matched, but model_name has {pattern_stars}"),
            ));
        }
        return Ok(Deployment {
            id,
            model_name,
            pattern,
            upstream_model: "*".to_owned(),
            target_has_stars: true,
            target: Target::RequestProvider,
            shares,
            order,
            timeouts,
        });
    }
    let (provider_name, model_template) = params.model.split_once('/').ok_or_else(|| {
        error(
            &model_path,
            at,
            format!(
                "litellm_params.model `{}` names no provider; write it as `<provider>/<model>`, e.g. `openai/{}`",
                params.model, params.model
            ),
        )
    })?;
    if provider_name.contains('*') {
        return Err(error(
            &model_path,
            at,
            format!(
                "litellm_params.model `{}`: the provider (before the first `/`) must be literal, not a wildcard",
                params.model
            ),
        ));
    }
    let provider = providers.get(provider_name).ok_or_else(|| {
        let problem = match REFUSED_PROVIDERS.iter().find(|(names, _)| names.contains(&provider_name)) {
            Some((_, why)) => format!("litellm_params.model `{}`: provider `{provider_name}` is not supported: {why}", params.model),
            None => {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                format!(
                    "litellm_params.model `{}`: unknown provider `{provider_name}`; use one of {} or add it under `providers`",
                    params.model,
                    known.join(", ")
                )
            }
        };
        error(&model_path, at, problem)
    })?;
    let target_stars = model_template.matches('*').count();
    if target_stars != 0 && target_stars != pattern_stars {
        return Err(error(
            &model_path,
            at,
            format!(
                "litellm_params.model `{}` has {target_stars} `*` but model_name has {pattern_stars}; each `*` of the target takes the text of the matching `*` of model_name",
                params.model
            ),
        ));
    }
    // Settings from the environment (`api_base: os.environ/AZURE_API_BASE`).
    let setting = |value: Option<String>| match value.map(|value| resolve(&value, env)) {
        None => Ok(None),
        Some(Resolved::Value(value)) => Ok(Some(value)),
        Some(Resolved::Unset(var)) => Err(var),
    };
    let key = match params.api_key {
        Some(value) => match resolve(&value, env) {
            Resolved::Value(key) if key.is_empty() => {
                return Err(error(
                    format!("{entry_path}.litellm_params.api_key"),
                    at,
                    "litellm_params.api_key is empty",
                ))
            }
            Resolved::Value(key) => {
                check_header_value(
                    &key,
                    &format!("{entry_path}.litellm_params.api_key"),
                    &format!("{at}: litellm_params.api_key"),
                )?;
                ProviderKey::Ready(credential_headers(provider.auth, key))
            }
            Resolved::Unset(var) => ProviderKey::Unset { var },
        },
        None => default_key(provider, env)?,
    };
    let deployment = |endpoint| Deployment {
        id: id.clone(),
        model_name: model_name.clone(),
        pattern: pattern.clone(),
        upstream_model: model_template.to_owned(),
        target_has_stars: target_stars > 0,
        target: Target::Fixed(endpoint),
        shares,
        order,
        timeouts,
    };
    let (api_base, api_version) = match (setting(params.api_base), setting(params.api_version)) {
        (Ok(api_base), Ok(api_version)) => (api_base, api_version),
        // Unset in the VM: the deployment answers 503 (and needs no cluster).
        (Err(var), _) | (_, Err(var)) => {
            let placeholder = provider.api_base.clone().unwrap_or(ApiBase {
                upstream: Upstream {
                    scheme: Scheme::Https,
                    host: String::new(),
                    port: 443,
                },
                path: String::new(),
            });
            return Ok(deployment(endpoint(
                provider,
                placeholder,
                None,
                ProviderKey::Unset { var },
                env,
            )));
        }
    };
    let api_base = match api_base {
        Some(url) => ApiBase::parse(&url).ok_or_else(|| {
            error(
                format!("{entry_path}.litellm_params.api_base"),
                at,
                format!("litellm_params.api_base `{url}` is not an http(s) URL (`https://host[:port][/path]`)"),
            )
        })?,
        None => provider.api_base.clone().ok_or_else(|| {
            let example = match provider.path_style {
                PathStyle::AzureDeployments => "https://<resource>.openai.azure.com",
                PathStyle::OpenAi => "http://<host>:8000/v1",
            };
            error(
                format!("{entry_path}.litellm_params"),
                at,
                format!(
                    "provider `{}` has no default address: set litellm_params.api_base (e.g. `{example}`)",
                    provider.name
                ),
            )
        })?,
    };
    Ok(deployment(endpoint(provider, api_base, api_version, key, env)))
}

/// The endpoint of `provider` at `api_base`: the provider's own cluster
/// when it is the provider's own upstream, else the upstream's.
fn endpoint(
    provider: &Provider,
    api_base: ApiBase,
    api_version: Option<String>,
    key: ProviderKey,
    env: &dyn Fn(&str) -> Option<String>,
) -> Endpoint {
    let own = provider
        .api_base
        .as_ref()
        .is_some_and(|own| own.upstream == api_base.upstream);
    let cluster = if own {
        provider.cluster.clone()
    } else {
        api_base.upstream.cluster_name()
    };
    let api_version = match provider.path_style {
        PathStyle::AzureDeployments => Some(
            api_version
                .or_else(|| env("AZURE_API_VERSION"))
                .unwrap_or_else(|| AZURE_DEFAULT_API_VERSION.to_owned()),
        ),
        PathStyle::OpenAi => api_version,
    };
    Endpoint {
        provider: provider.clone(),
        cluster,
        upstream: api_base.upstream,
        base_path: api_base.path,
        api_version,
        key,
    }
}

/// The key of a deployment that names none: the provider's conventional
/// variable, as in LiteLLM; a self-hosted server without it gets no key.
fn default_key(provider: &Provider, env: &dyn Fn(&str) -> Option<String>) -> Result<ProviderKey, ConfigError> {
    let at = format!("environment variable {}", provider.api_key_env);
    match env(&provider.api_key_env) {
        Some(key) if !key.is_empty() => {
            check_header_value(&key, &at, &at)?;
            Ok(ProviderKey::Ready(credential_headers(provider.auth, key)))
        }
        _ if provider.key_optional => Ok(ProviderKey::Ready(Vec::new())),
        _ => Ok(ProviderKey::Unset {
            var: provider.api_key_env.clone(),
        }),
    }
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
        AuthStyle::AzureKey => vec![("api-key", Secret(key))],
    }
}

fn builtin_provider(builtin: &Builtin) -> Provider {
    Provider {
        name: builtin.name.to_owned(),
        cluster: builtin.name.to_owned(),
        api_base: builtin.api_base.and_then(ApiBase::parse),
        auth: builtin.auth,
        path_style: match builtin.auth {
            AuthStyle::AzureKey => PathStyle::AzureDeployments,
            _ => PathStyle::OpenAi,
        },
        api_key_env: builtin.api_key_env.to_owned(),
        key_optional: builtin.key_optional,
        inject_stream_usage: !NO_STREAM_OPTIONS.contains(&builtin.name),
        model_families: builtin.families.iter().map(|&f| f.to_owned()).collect(),
    }
}

fn provider_table(overrides: BTreeMap<String, RawProvider>) -> Result<BTreeMap<String, Provider>, ConfigError> {
    let mut table: BTreeMap<String, Provider> = BUILTIN_PROVIDERS
        .iter()
        .map(|builtin| (builtin.name.to_owned(), builtin_provider(builtin)))
        .collect();
    for (name, raw) in overrides {
        let path = format!("providers.{name}");
        if name.is_empty() || name.contains('/') || name.contains('*') {
            return Err(key_error(
                &path,
                "a provider name may not be empty or contain `/` or `*`",
            ));
        }
        let api_base = match raw.api_base {
            Some(url) => Some(ApiBase::parse(&url).ok_or_else(|| {
                error(
                    format!("{path}.api_base"),
                    &path,
                    format!("api_base `{url}` is not an http(s) URL (`https://host[:port][/path]`)"),
                )
            })?),
            None => None,
        };
        let provider = match table.remove(&name) {
            Some(builtin) => Provider {
                cluster: raw.cluster.unwrap_or(builtin.cluster),
                api_base: api_base.or(builtin.api_base),
                auth: raw.auth.unwrap_or(builtin.auth),
                api_key_env: raw.api_key_env.unwrap_or(builtin.api_key_env),
                inject_stream_usage: raw.inject_stream_usage.unwrap_or(builtin.inject_stream_usage),
                model_families: raw.model_families.unwrap_or(builtin.model_families),
                ..builtin
            },
            None => Provider {
                cluster: raw.cluster.unwrap_or_else(|| name.clone()),
                api_base: Some(api_base.ok_or_else(|| {
                    key_error(
                        &path,
                        "a new provider needs `api_base`, e.g. \"https://api.example.com/v1\"",
                    )
                })?),
                auth: raw.auth.unwrap_or(AuthStyle::Bearer),
                path_style: PathStyle::OpenAi,
                api_key_env: raw
                    .api_key_env
                    .unwrap_or_else(|| format!("{}_API_KEY", name.to_ascii_uppercase())),
                key_optional: false,
                inject_stream_usage: raw.inject_stream_usage.unwrap_or(true),
                model_families: raw.model_families.unwrap_or_default(),
                name: name.clone(),
            },
        };
        if provider.cluster.is_empty() || provider.cluster.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(error(
                format!("{path}.cluster"),
                &path,
                format!("cluster `{}` is not a valid Envoy cluster name", provider.cluster),
            ));
        }
        if let Some(family) = provider.model_families.iter().find(|f| f.is_empty()) {
            return Err(error(
                format!("{path}.model_families"),
                &path,
                format!("model family `{family}` is empty"),
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

/// The variable a LiteLLM `os.environ/NAME` value names.
pub fn env_var(value: &str) -> Option<&str> {
    value.strip_prefix(ENV_PREFIX)
}

/// LiteLLM's `os.environ/NAME` indirection; any other string is literal.
fn resolve(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Resolved {
    match env_var(value) {
        Some(var) => match env(var) {
            Some(v) => Resolved::Value(v),
            None => Resolved::Unset(var.to_owned()),
        },
        None => Resolved::Value(value.to_owned()),
    }
}

/// Keys become header values: a CR, LF or NUL would split or break the request.
fn check_header_value(value: &str, path: &str, at: &str) -> Result<(), ConfigError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(error(
            path,
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
            "GEMINI_API_KEY" => Some("gemini-test".into()),
            "GROQ_API_KEY" => Some("gsk-test".into()),
            "OPENAI_API_KEY" => Some("sk-openai-test".into()),
            "LITELLM_MASTER_KEY" => Some("sk-router-master".into()),
            _ => None,
        }
    }

    pub fn compile_test(json: &str) -> Result<Config, ConfigError> {
        compile(json.as_bytes(), &test_env)
    }

    /// The endpoints of a configuration's fixed deployments, in order.
    fn endpoints(config: &Config) -> Vec<&Endpoint> {
        config
            .router
            .deployments()
            .iter()
            .filter_map(|d| match &d.target {
                Target::Fixed(endpoint) => Some(endpoint),
                Target::RequestProvider => None,
            })
            .collect()
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
            (r#"{"model_lst": []}"#, "model_lst", "unknown field `model_lst`"),
            (r#"{"model_list": []}"#, "model_list", "is empty"),
            (
                r#"{"model_list": [{"model_name": "x"}]}"#,
                "model_list[0]",
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
                "providers.groq.clustr",
                "unknown field `clustr`",
            ),
            (
                r#"{"model_list": [{"model_name": "b", "litellm_params": {"model": "bedrock/anthropic.claude-3", "api_key": "k"}}]}"#,
                "model_list[0] (model_name `b`)",
                "SigV4",
            ),
            (
                r#"{"model_list": [{"model_name": "v", "litellm_params": {"model": "vertex_ai/gemini-pro"}}]}"#,
                "model_list[0] (model_name `v`)",
                "OAuth",
            ),
            (
                r#"{"model_list": [{"model_name": "o", "litellm_params": {"model": "ollama/llama3"}}]}"#,
                "model_list[0] (model_name `o`)",
                "OpenAI-compatible endpoint",
            ),
            (
                r#"{"model_list": [{"model_name": "a", "litellm_params": {"model": "azure/gpt-4o", "api_key": "k"}}]}"#,
                "model_list[0] (model_name `a`)",
                "set litellm_params.api_base (e.g. `https://<resource>.openai.azure.com`)",
            ),
            (
                r#"{"model_list": [{"model_name": "v", "litellm_params": {"model": "hosted_vllm/m"}}]}"#,
                "model_list[0] (model_name `v`)",
                "has no default address",
            ),
            (
                r#"{"model_list": [{"model_name": "all", "litellm_params": {"model": "*"}}]}"#,
                "model_list[0] (model_name `all`)",
                "model_name has 0",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "router_settings": {"model_group_alias": {"y": "nowhere"}}}"#,
                "router_settings.model_group_alias `y`",
                "`nowhere` matches no model_name",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "router_settings": {"model_group_alias": {"y": {"hidden": true}}}}"#,
                "router_settings.model_group_alias.y",
                "did not match any variant",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k"}}], "providers": {"openai": {"model_families": [""]}}}"#,
                "providers.openai",
                "model family `` is empty",
            ),
            (
                r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k", "api_base": "https://u:p@h/v1"}}]}"#,
                "model_list[0] (model_name `x`)",
                "not an http(s) URL",
            ),
        ];
        for (json, at, fragment) in rows {
            match compile_test(json) {
                Ok(_) => panic!("accepted: {json}"),
                Err(e) => {
                    assert_eq!(e.at, *at, "for {json}: {e}");
                    assert!(
                        at.starts_with(e.path.split(['.', '[']).next().unwrap_or_default()),
                        "{e:?}"
                    );
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
        let deployments = endpoints(&config);
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
        let d = endpoints(&config);
        assert_eq!(
            (d[0].cluster.as_str(), d[0].base_path.as_str()),
            ("groq-egress", "/openai/v1")
        );
        assert_eq!((d[1].cluster.as_str(), d[1].base_path.as_str()), ("newco", "/api/v2"));
        assert_eq!(d[1].provider.auth, AuthStyle::AnthropicKey);
        assert_eq!(
            (d[2].cluster.as_str(), d[2].base_path.as_str()),
            ("http_proxy.local_8080", "/custom/v1")
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
        let injects: Vec<bool> = endpoints(&config)
            .iter()
            .map(|e| e.provider.inject_stream_usage)
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
    fn api_bases() {
        let https = |host: &str, port, path: &str| {
            Some(ApiBase {
                upstream: Upstream {
                    scheme: Scheme::Https,
                    host: host.into(),
                    port,
                },
                path: path.into(),
            })
        };
        let http = |host: &str, port, path: &str| {
            https(host, port, path).map(|mut base| {
                base.upstream.scheme = Scheme::Http;
                base
            })
        };
        let rows = [
            (
                "https://api.groq.com/openai/v1",
                https("api.groq.com", 443, "/openai/v1"),
            ),
            ("https://api.openai.com/v1/", https("api.openai.com", 443, "/v1")),
            (
                "https://My-Endpoint.openai.azure.com/",
                https("my-endpoint.openai.azure.com", 443, ""),
            ),
            ("http://localhost:8080", http("localhost", 8080, "")),
            ("http://10.0.0.7:8000/v1", http("10.0.0.7", 8000, "/v1")),
            ("http://[::1]:11434/v1", http("[::1]", 11434, "/v1")),
            ("https://h:0/v1", None),
            ("https://h:99999/v1", None),
            ("https://user:pw@h/v1", None),
            ("https://h/v1?x=1", None),
            ("api.openai.com/v1", None),
            ("ftp://h/v1", None),
            ("https:///v1", None),
        ];
        for (url, expected) in rows {
            assert_eq!(ApiBase::parse(url), expected, "{url}");
        }
    }

    #[test]
    fn what_is_accepted_but_not_acted_on_is_named() {
        let json = r#"{"model_list": [{"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "k", "rpm": 10, "timeout": 30}, "model_info": {"id": "1"}, "tpm": 5}],
          "general_settings": {"master_key": "sk-long-random-key", "database_url": "postgres://u:secret@h/db"},
          "litellm_settings": {"drop_params": true, "callbacks": ["langfuse"]},
          "router_settings": {"routing_strategy": "usage-based-routing-v2", "num_retries": 2, "model_group_alias": {}}}"#;
        let config = compile_test(json).expect("compiles");
        assert_eq!(
            config.warnings,
            [
                "general_settings.database_url is ignored",
                "litellm_settings.callbacks is ignored",
                "litellm_settings.drop_params is ignored",
                "router_settings.routing_strategy: `usage-based-routing-v2` is not supported; groups are balanced by weight, rpm or tpm (simple-shuffle)",
                "model_list[0].tpm is ignored",
            ]
        );
        assert!(config.warnings.iter().all(|w| !w.contains("secret")));
    }

    #[test]
    fn every_api_base_host_is_an_upstream_of_its_own() {
        let json = r#"{"model_list": [
            {"model_name": "gpt-4o", "litellm_params": {"model": "azure/gpt-4o-prod", "api_base": "https://my-endpoint.openai.azure.com/", "api_version": "2024-10-21", "api_key": "k"}},
            {"model_name": "llama", "litellm_params": {"model": "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", "api_base": "http://vllm.internal:8000/v1"}},
            {"model_name": "local", "litellm_params": {"model": "openai/qwen", "api_base": "http://10.0.0.5:8000/v1", "api_key": "k"}},
            {"model_name": "also-openai", "litellm_params": {"model": "openai/gpt-4.1", "api_base": "https://api.openai.com/v1"}},
            {"model_name": "claude-*", "litellm_params": {"model": "anthropic/claude-*"}}]}"#;
        let config = compile_test(json).expect("compiles");
        let upstreams: Vec<(&str, String)> = config
            .upstreams()
            .into_iter()
            .map(|(cluster, u)| (cluster, format!("{:?}://{}", u.scheme, u.authority())))
            .collect();
        assert_eq!(
            upstreams,
            [
                ("anthropic", "Https://api.anthropic.com".to_owned()),
                ("http_10.0.0.5_8000", "Http://10.0.0.5:8000".to_owned()),
                ("http_vllm.internal_8000", "Http://vllm.internal:8000".to_owned()),
                (
                    "https_my-endpoint.openai.azure.com_443",
                    "Https://my-endpoint.openai.azure.com".to_owned()
                ),
                ("openai", "Https://api.openai.com".to_owned()),
            ]
        );
        let endpoints = endpoints(&config);
        assert_eq!(
            endpoints[0].key,
            ProviderKey::Ready(vec![("api-key", Secret("k".into()))])
        );
        assert_eq!(endpoints[0].api_version.as_deref(), Some("2024-10-21"));
        // vLLM without a key: none is sent (and none is required)
        assert_eq!(endpoints[1].key, ProviderKey::Ready(Vec::new()));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn settings_from_the_environment() {
        let env = |var: &str| match var {
            "AZURE_API_BASE" => Some("https://r.openai.azure.com".to_owned()),
            "AZURE_API_VERSION" => Some("2024-06-01".to_owned()),
            _ => test_env(var),
        };
        let json = r#"{"model_list": [
            {"model_name": "a", "litellm_params": {"model": "azure/a", "api_base": "os.environ/AZURE_API_BASE", "api_key": "k"}},
            {"model_name": "b", "litellm_params": {"model": "azure/b", "api_base": "os.environ/UNSET_BASE", "api_key": "k"}}]}"#;
        let config = compile(json.as_bytes(), &env).expect("compiles");
        let endpoints = endpoints(&config);
        assert_eq!(endpoints[0].cluster, "https_r.openai.azure.com_443");
        assert_eq!(endpoints[0].api_version.as_deref(), Some("2024-06-01"));
        assert_eq!(
            endpoints[1].key,
            ProviderKey::Unset {
                var: "UNSET_BASE".into()
            }
        );
        assert_eq!(config.upstreams().len(), 1, "an unset deployment needs no cluster");
        assert!(config
            .warnings
            .iter()
            .any(|w| w.contains("model_list[1]") && w.contains("UNSET_BASE")));
    }
}
