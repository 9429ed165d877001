//! The last stage of a deployment: its endpoint, the cluster, path and
//! headers its requests leave with; and each provider's own endpoint, for
//! `model: "*"`.

use std::collections::BTreeMap;

use crate::config::provider_keys::default_credentials;
use crate::config::report::ConfigError;
use crate::config::values::Resolved;
use crate::model::{ApiBase, Credentials, Endpoint, PathStyle, Provider, Unavailable};

/// The `api-version` Azure gets when neither the deployment nor
/// `AZURE_API_VERSION` names one: LiteLLM 1.110's default.
pub const AZURE_DEFAULT_API_VERSION: &str = "2025-02-01-preview";

/// Each provider's own endpoint with its conventional key, for a
/// `model: "*"` deployment that forwards to the request's own provider.
pub(super) fn default_endpoints(
    providers: &BTreeMap<String, Provider>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Result<Endpoint, Unavailable>>, ConfigError> {
    let mut endpoints = BTreeMap::new();
    for provider in providers.values() {
        let Some(api_base) = &provider.api_base else {
            continue;
        };
        let reach = match default_credentials(provider, env)? {
            Resolved::Value(credentials) => Ok(endpoint(provider, api_base.clone(), None, credentials, env)),
            Resolved::Unset(variable) => Err(Unavailable {
                provider: provider.clone(),
                variable,
            }),
        };
        endpoints.insert(provider.name.clone(), reach);
    }
    Ok(endpoints)
}

/// The endpoint of `provider` at `api_base`: the provider's own cluster
/// when it is the provider's own upstream, else the upstream's.
pub(super) fn endpoint(
    provider: &Provider,
    api_base: ApiBase,
    api_version: Option<String>,
    credentials: Credentials,
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
        PathStyle::OpenAi | PathStyle::AzureAi => api_version,
    };
    Endpoint {
        provider: provider.clone(),
        cluster,
        upstream: api_base.upstream,
        base_path: api_base.path,
        api_version,
        credentials,
        entra: None,
    }
}
