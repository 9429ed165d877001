//! The compiled domain: what a configuration becomes and what routing reads.
//! [`crate::config`] builds these once; [`crate::route`] and
//! [`crate::request`] only read them.

use std::collections::BTreeMap;
use std::fmt;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;

use crate::route::pattern::Pattern;

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
    /// Azure AI Foundry (LiteLLM's `azure_ai`): as [`PathStyle::OpenAi`],
    /// with `api-version` first in the query when the deployment sets one.
    AzureAi,
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
    pub(crate) fn default_port(scheme: Scheme) -> u16 {
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

    fn scheme_name(&self) -> &'static str {
        match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme_name(), self.authority())
    }

    /// The cluster name of an upstream that is not a provider's own.
    pub fn cluster_name(&self) -> String {
        let scheme = self.scheme_name();
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
    /// The variable LiteLLM reads a deployment's address from when it
    /// gives none (`AZURE_AI_API_BASE`).
    pub api_base_env: Option<String>,
    pub auth: AuthStyle,
    pub path_style: PathStyle,
    /// The variable LiteLLM reads when a deployment gives no `api_key`.
    pub api_key_env: String,
    /// A self-hosted server may take no key: without one, none is sent.
    pub key_optional: bool,
    /// The provider takes `stream_options.include_usage` (see
    /// [`crate::config::Config::inject_stream_usage`]).
    pub inject_stream_usage: bool,
    /// Bare model names this provider serves (`gpt-*`), to infer it.
    pub model_families: Vec<String>,
    /// Where its OpenAI-compatible API sits under the address users give
    /// (Ollama's and Anthropic's `/v1`), added to a deployment's `api_base` that lacks it;
    /// empty for most.
    pub api_suffix: String,
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
    /// The headers that carry the key upstream, built once: `authorization:
    /// Bearer <key>`, `x-api-key: <key>` with `anthropic-version`, or
    /// `api-key: <key>`; none for a keyless self-hosted server or for
    /// Entra ID client credentials.
    pub credentials: Credentials,
    /// Entra ID client credentials, whose token Envoy gets and sends.
    pub entra: Option<EntraClient>,
}

/// An Azure deployment's Entra ID client credentials. The filter sends no
/// key for it: Envoy's OAuth2 credential injector, on the deployment's own
/// cluster, gets the token (client credentials grant) and sends it as
/// `Authorization: Bearer`, renewing it before it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraClient {
    /// As written: a value or `os.environ/NAME`, read when the Envoy
    /// bootstrap is written (it is in the token endpoint's address).
    pub tenant_id: String,
    pub client_id: String,
    /// As written (kept out of the plugin configuration); `None`:
    /// LiteLLM's default, [`EntraClient::DEFAULT_SECRET`]. Envoy reads it;
    /// the filter never does.
    pub client_secret: Option<Secret>,
    /// The entry's `litellm_params` document path.
    pub params_path: String,
    /// `azure_scope`, else Azure OpenAI's.
    pub scope: String,
}

impl EntraClient {
    /// LiteLLM's client secret when a deployment names none.
    pub const DEFAULT_SECRET: &str = "os.environ/AZURE_CLIENT_SECRET";

    /// The client secret as written, or LiteLLM's default.
    pub fn secret(&self) -> &str {
        self.client_secret.as_ref().map_or(Self::DEFAULT_SECRET, Secret::expose)
    }
}

/// The headers that carry a provider key: (name, value).
pub type Credentials = Vec<(&'static str, Secret)>;

/// A deployment that cannot be sent to: an environment variable it needs
/// (its key, `api_base` or `api_version`) is unset in the VM. Requests for
/// it get 503; it has no upstream, so no cluster is made for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub provider: Provider,
    pub variable: String,
}

/// A secret from the configuration. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where a deployment's requests go.
// Unboxed: there is one per deployment, built once, read on every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Fixed(Endpoint),
    Unavailable(Unavailable),
    /// `model: "*"`: the provider is the request model's own prefix (or its
    /// model family).
    RequestProvider,
}

impl Target {
    /// A fixed target's endpoint, or why it has none; `None` for
    /// [`Target::RequestProvider`].
    pub fn reach(&self) -> Option<Result<&Endpoint, &Unavailable>> {
        match self {
            Target::Fixed(endpoint) => Some(Ok(endpoint)),
            Target::Unavailable(unavailable) => Some(Err(unavailable)),
            Target::RequestProvider => None,
        }
    }
}

/// The provider of an endpoint, or of a deployment that has none.
pub fn provider_of<'c>(reach: Result<&'c Endpoint, &'c Unavailable>) -> &'c Provider {
    match reach {
        Ok(endpoint) => &endpoint.provider,
        Err(unavailable) => &unavailable.provider,
    }
}

/// A `model_list` entry the filter cannot serve (a provider that needs
/// request signing or OAuth tokens, an unknown provider, …). Requests for
/// its model get a JSON error that names the model and `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub model_name: String,
    /// `None` for an exact name.
    pub pattern: Option<Pattern>,
    pub reason: String,
}

impl Skipped {
    pub fn serves(&self, model: &str) -> bool {
        match &self.pattern {
            Some(pattern) => pattern.matches(model),
            None => self.model_name == model,
        }
    }
}

/// The virtual keys, by the SHA-256 of the key (LiteLLM's stored form):
/// the plain keys are never kept.
#[derive(Debug, Default)]
pub struct KeyTable {
    pub keys: Vec<VirtualKey>,
    pub by_hash: FxHashMap<[u8; 32], usize>,
}

impl KeyTable {
    pub fn has_model_limits(&self) -> bool {
        self.keys.iter().any(|k| !k.model_limits.is_empty())
    }
}

/// One `keys:` entry.
#[derive(Debug)]
pub struct VirtualKey {
    /// `key_alias`, else `key-` and the first 8 hex digits of its hash:
    /// its name in metrics, logs and errors.
    pub alias: String,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// Seconds since the Unix epoch after which it is refused.
    pub expires_at: Option<u64>,
    pub blocked: bool,
    pub models: Allowlist,
    /// `rpm_limit`, `tpm_limit`, `max_budget` (enforced by Envoy's
    /// rate-limit filter and a rate-limit service, not here).
    pub limits: Limits,
    /// Whose budgets its requests are checked and charged against: only
    /// these get a budget descriptor, so that a budget service that is
    /// down (failing closed) refuses no other key.
    pub budgets: BudgetScopes,
    /// `model_rpm_limit` and `model_tpm_limit`, by model name.
    pub model_limits: BTreeMap<String, ModelLimit>,
}

impl VirtualKey {
    /// The name its per-model limits know this request by: the model as
    /// requested, else the `model_name` it routes to (LiteLLM keys them by
    /// the model group).
    pub fn limited_model<'a>(&'a self, requested: &str, model_name: &str) -> Option<&'a str> {
        [requested, model_name]
            .into_iter()
            .find_map(|name| self.model_limits.get_key_value(name))
            .map(|(name, _)| name.as_str())
    }
}

/// One model's limits for one key, per minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelLimit {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetScopes {
    /// The key's own `max_budget`.
    pub key: bool,
    /// Its team's.
    pub team: bool,
}

impl BudgetScopes {
    pub fn any(self) -> bool {
        self.key || self.team
    }
}

/// A key's or a team's limits, with LiteLLM's meaning: requests and tokens
/// per minute, and spend per `budget_duration` (or ever).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget: Option<Budget>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.budget.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `max_budget` in micro-dollars (US$1 = 1,000,000).
    pub max_micro_usd: u64,
    /// `budget_duration` in seconds; `None`: the budget never resets.
    pub window_seconds: Option<u64>,
}

/// A `teams:` entry: LiteLLM's team limits, shared by the team's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub team_id: String,
    pub limits: Limits,
}

/// US dollars per token, as LiteLLM names them: `input_cost_per_token`,
/// `output_cost_per_token`, `cache_read_input_token_cost` (else cached
/// input costs as input).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
}

/// What a key may call (`models`), as LiteLLM means it.
#[derive(Debug, Default)]
pub struct Allowlist {
    /// Empty `models`, or `all-proxy-models`.
    pub all: bool,
    /// Exact names: a model as requested, or the `model_name` it routes to
    /// (through an alias or a bare-name family).
    pub names: FxHashSet<String>,
    /// `*` patterns, matched whole against both.
    pub patterns: Vec<Pattern>,
    /// `model_info.access_groups` names.
    pub access_groups: FxHashSet<String>,
}

/// One `model_list` entry, compiled.
#[derive(Debug)]
pub struct Deployment {
    /// `model_info.id`, else `<model_name>#<n>` (the n-th entry of that
    /// name): the deployment's name in metrics and the response header.
    pub id: String,
    pub model_name: String,
    /// `None` for an exact name.
    pub pattern: Option<Pattern>,
    /// The target after `<provider>/`; its `*`s take the captures.
    pub upstream_model: String,
    pub target_has_stars: bool,
    pub target: Target,
    /// Its share of its group's traffic, as LiteLLM reads it.
    pub shares: Shares,
    /// `litellm_params.order`: lower first.
    pub order: Option<u32>,
    /// `litellm_params.timeout` and `stream_timeout`.
    pub timeouts: Timeouts,
    /// `model_info.access_groups`: names a key's `models` may give.
    pub access_groups: Vec<String>,
    /// Its own per-token prices (`litellm_params` or `model_info`), which
    /// win over the price table's.
    pub prices: Option<Prices>,
}

/// How long an attempt may take to answer, in seconds: LiteLLM's `timeout`,
/// and `stream_timeout` for a streamed request.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub request: Option<f64>,
    pub stream: Option<f64>,
}

impl Timeouts {
    /// Each one set here, else `defaults`'.
    pub(crate) fn or(self, defaults: Timeouts) -> Timeouts {
        Timeouts {
            request: self.request.or(defaults.request),
            stream: self.stream.or(defaults.stream),
        }
    }

    /// The longer limit of the two for each kind of request; where only one
    /// has a limit, that one.
    pub(crate) fn longest(self, other: Timeouts) -> Timeouts {
        let longer = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Timeouts {
            request: longer(self.request, other.request),
            stream: longer(self.for_request(true), other.for_request(true)),
        }
    }

    /// The limit for a request, streamed or not: as LiteLLM, a stream's is
    /// `stream_timeout`, else `timeout`.
    pub fn for_request(&self, stream: bool) -> Option<f64> {
        match stream {
            true => self.stream.or(self.request),
            false => self.request,
        }
    }
}

/// `litellm_params.weight`, `rpm` and `tpm`: simple-shuffle picks by the
/// first of them any deployment of the group sets.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Shares {
    pub weight: Option<f64>,
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
}
