//! Stage 3 of a deployment: where its requests go and with which key: its
//! settings read from the environment, its `api_base` (else the
//! provider's), its key or token; then its endpoint.

use std::borrow::Cow;

use crate::config::credentials::Merged;
use crate::config::endpoint::endpoint;
use crate::config::entra;
use crate::config::provider_choice::Chosen;
use crate::config::provider_keys::{credential_headers, default_credentials};
use crate::config::providers::{azure_ai_as_azure_openai, azure_ai_at};
use crate::config::report::{ConfigError, EntryPath, EnvAddress};
use crate::config::stage::{Context, Stage, Stop};
use crate::config::values::{check_header_value, env_var, resolve, Resolved};
use crate::model::{ApiBase, AuthStyle, Credentials, EntraClient, PathStyle, Provider, Target, Unavailable};

pub(super) fn resolve_target(
    merged: Merged,
    chosen: &Chosen,
    entra: Option<EntraClient>,
    entry: &EntryPath,
    cx: &Context,
    env_addresses: &mut Vec<EnvAddress>,
) -> Stage<Target> {
    let Merged { params, api_base_path } = merged;
    let provider = chosen.provider.as_ref();
    // LiteLLM reads some providers' address from a variable of theirs.
    let api_base = params
        .api_base
        .or_else(|| provider.api_base_env.as_ref().map(|var| format!("os.environ/{var}")));
    if let Some(variable) = api_base.as_deref().and_then(env_var) {
        let (at, variable) = (entry.name.clone(), variable.to_owned());
        env_addresses.push(EnvAddress {
            path: api_base_path,
            at,
            variable,
        });
    }
    let address = match Address::from_environment(api_base, params.api_version, cx.env) {
        Ok(address) => address,
        Err(variable) => return Ok(unavailable(provider, variable)),
    };
    let (api_base, provider) = address_of(address.api_base, chosen, entry, cx)?;
    let key = KeyOrToken::of(params.api_key, params.azure_ad_token, &provider);
    let credentials = match key.credentials(&provider, entra.is_some(), entry, cx.env)? {
        Resolved::Value(credentials) => credentials,
        Resolved::Unset(variable) => return Ok(unavailable(&provider, variable)),
    };
    let endpoint = endpoint(&provider, api_base, address.api_version, credentials, cx.env);
    Ok(Target::Fixed(match entra {
        Some(entra) => entra::on_own_cluster(endpoint, entra),
        None => endpoint,
    }))
}

/// A deployment whose variable is unset in the VM: it answers 503 (and
/// needs no cluster).
fn unavailable(provider: &Provider, variable: String) -> Target {
    let provider = provider.clone();
    Target::Unavailable(Unavailable { provider, variable })
}

/// `api_base` and `api_version` as the VM's environment gives them.
struct Address {
    api_base: Option<String>,
    api_version: Option<String>,
}

impl Address {
    /// `Err` names the variable that is unset.
    fn from_environment(
        api_base: Option<String>,
        api_version: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Address, String> {
        let read = |value: Option<String>| match value.map(|value| resolve(&value, env)) {
            None => Ok(None),
            Some(Resolved::Value(value)) => Ok(Some(value)),
            Some(Resolved::Unset(var)) => Err(var),
        };
        Ok(Address {
            api_base: read(api_base)?,
            api_version: read(api_version)?,
        })
    }
}

/// The deployment's `api_base`, else the provider's own; and the provider as
/// it is sent there: Azure AI Foundry's by host, and without a key required
/// at a server of the user's own.
fn address_of<'c>(
    url: Option<String>,
    chosen: &Chosen<'c>,
    entry: &EntryPath,
    cx: &Context,
) -> Stage<(ApiBase, Cow<'c, Provider>)> {
    let mut provider = chosen.provider.clone();
    let Some(url) = url else {
        let api_base = provider
            .api_base
            .clone()
            .ok_or_else(|| no_default_address(&provider, entry))?;
        return Ok((api_base, provider));
    };
    // LiteLLM loads any text and fails at request time: skipped.
    let mut api_base = ApiBase::parse(&url).ok_or_else(|| {
        Stop::Skipped(format!(
            "litellm_params.api_base `{url}` is not an http(s) URL (`https://host[:port][/path]`)"
        ))
    })?;
    if provider.path_style == PathStyle::AzureAi {
        let model = &chosen.model;
        let openai_model = !model.contains('*') && cx.families.provider_of(model) == Some("openai");
        if let Some(reason) = azure_ai_as_azure_openai(&api_base, openai_model) {
            return Err(Stop::Skipped(reason));
        }
        provider = Cow::Owned(azure_ai_at(&provider, &api_base));
    }
    // Ollama's OpenAI-compatible API and Anthropic's are under `/v1` of the
    // address LiteLLM users give.
    if !api_base.path.ends_with(&provider.api_suffix) {
        api_base.path.push_str(&provider.api_suffix);
    }
    // A server of the user's own (a self-hosted TGI, vLLM or Ollama) may take
    // no key: as in LiteLLM, the provider's variable where set, else none.
    let own_server = provider
        .api_base
        .as_ref()
        .is_some_and(|default| default.upstream != api_base.upstream);
    if own_server && !provider.key_optional {
        provider = Cow::Owned(Provider {
            key_optional: true,
            ..provider.into_owned()
        });
    }
    Ok((api_base, provider))
}

fn no_default_address(provider: &Provider, entry: &EntryPath) -> ConfigError {
    let example = match provider.path_style {
        PathStyle::AzureDeployments => "https://<resource>.openai.azure.com",
        PathStyle::AzureAi => "https://<resource>.services.ai.azure.com",
        PathStyle::OpenAi => "http://<host>:8000/v1",
    };
    entry.error(
        "litellm_params",
        format!(
            "provider `{}` has no default address: set litellm_params.api_base (e.g. `{example}`)",
            provider.name
        ),
    )
}

/// The key a deployment gives, under its name in `litellm_params`, and how
/// it is sent.
struct KeyOrToken {
    value: Option<String>,
    name: &'static str,
    auth: AuthStyle,
}

impl KeyOrToken {
    /// `api_key`; else, for Azure, a static Entra ID token
    /// (`azure_ad_token`), sent as a bearer token in place of `api-key`.
    fn of(api_key: Option<String>, azure_ad_token: Option<String>, provider: &Provider) -> KeyOrToken {
        match (api_key, azure_ad_token) {
            (None, Some(token)) if provider.path_style == PathStyle::AzureDeployments => KeyOrToken {
                value: Some(token),
                name: "azure_ad_token",
                auth: AuthStyle::Bearer,
            },
            (value, _) => KeyOrToken {
                value,
                name: "api_key",
                auth: provider.auth,
            },
        }
    }

    /// The headers that carry it; none where Envoy sends an Entra ID token;
    /// the provider's conventional variable where the deployment gives none.
    fn credentials(
        self,
        provider: &Provider,
        entra: bool,
        entry: &EntryPath,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolved<Credentials>, ConfigError> {
        let key = format!("litellm_params.{}", self.name);
        match self.value.map(|value| resolve(&value, env)) {
            Some(Resolved::Value(value)) if value.is_empty() => Err(entry.error(&key, format!("{key} is empty"))),
            Some(Resolved::Value(value)) => {
                check_header_value(&value, &entry.key(&key), &format!("{}: {key}", entry.name))?;
                Ok(Resolved::Value(credential_headers(self.auth, value)))
            }
            Some(Resolved::Unset(variable)) => Ok(Resolved::Unset(variable)),
            None if entra => Ok(Resolved::Value(Credentials::new())),
            None => default_credentials(provider, env),
        }
    }
}
