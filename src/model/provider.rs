//! Providers and how one deployment reaches its own: the endpoint, its
//! credentials, Entra ID client credentials, or why it cannot be reached.

use serde::Deserialize;

use crate::model::secret::Secret;
use crate::model::upstream::{ApiBase, Upstream};

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

/// The provider of an endpoint, or of a deployment that has none.
pub fn provider_of<'c>(reach: Result<&'c Endpoint, &'c Unavailable>) -> &'c Provider {
    match reach {
        Ok(endpoint) => &endpoint.provider,
        Err(unavailable) => &unavailable.provider,
    }
}
