//! One `model_list` entry to a [`Deployment`]: its pattern, its provider,
//! where it is sent and with which key.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::config::limits;
use crate::config::providers::{
    azure_ai_as_azure_openai, azure_ai_at, credential_headers, default_credentials, openai_compatible_at_api_base,
    refusal,
};
use crate::config::raw::{RawCredentialValues, RawDeployment};
use crate::config::values::{check_header_value, check_positive, env_var, resolve, Resolved};
use crate::config::{error, ConfigError, EnvAddress, Warning, WarningKind, AZURE_DEFAULT_API_VERSION};
use crate::contract::ENTRA_CLUSTER_INFIX;
use crate::model::{
    ApiBase, AuthStyle, Credentials, Deployment, Endpoint, EntraClient, PathStyle, Provider, Secret, Shares, Skipped,
    Target, Timeouts, Unavailable,
};
use crate::route::families::Families;
use crate::route::pattern::Pattern;

/// What one `model_list` entry compiles to.
// Unboxed: one per entry, built once at configuration and moved on at once.
#[allow(clippy::large_enum_variant)]
pub(super) enum Compiled {
    Served(Deployment),
    /// The filter cannot serve it; the rest of the file is served.
    Skipped(Skipped),
}

/// What every entry is compiled against.
pub(super) struct Context<'a> {
    pub providers: &'a BTreeMap<String, Provider>,
    pub families: &'a Families,
    /// `credential_list`, by `credential_name`, with its position.
    pub credentials: &'a BTreeMap<String, (usize, RawCredentialValues)>,
    /// The document path of every key the compiler did not read.
    pub ignored: &'a [String],
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Azure model-family prefixes LiteLLM strips from the deployment name
/// (`azure/o_series/<deployment>`): they choose its request shape, not
/// its path.
const AZURE_FAMILY_PREFIXES: &[&str] = &["o_series/", "gpt5_series/"];

/// Keys that ask for an Entra ID token by username and password, a flow
/// Envoy's credential injector does not make.
const ENTRA_PASSWORD_KEYS: &[&str] = &["azure_username", "azure_password"];

/// The scope LiteLLM asks Entra ID for when `azure_scope` is not set.
const AZURE_DEFAULT_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// `model_list[index]`, the `nth` entry of its `model_name`. An `api_base`
/// read from the environment is noted in `env_addresses`.
pub(super) fn compile_deployment(
    entry: RawDeployment,
    index: usize,
    nth: usize,
    cx: &Context,
    env_addresses: &mut Vec<EnvAddress>,
    warnings: &mut Vec<Warning>,
) -> Result<Compiled, ConfigError> {
    let RawDeployment {
        model_name,
        litellm_params: mut params,
        model_info,
    } = entry;
    let env = cx.env;
    let entry_path = &format!("model_list[{index}]");
    let at = &format!("{entry_path} (model_name `{model_name}`)");
    let id = deployment_id(model_info.id, &model_name, nth, entry_path, at)?;
    let access_groups = model_info.access_groups;
    let prices = limits::own_prices(
        [
            params.input_cost_per_token,
            params.output_cost_per_token,
            params.cache_read_input_token_cost,
        ],
        [
            model_info.input_cost_per_token,
            model_info.output_cost_per_token,
            model_info.cache_read_input_token_cost,
        ],
    );
    let timeouts = Timeouts {
        request: params.timeout,
        stream: params.stream_timeout,
    };
    for (key, value) in [
        ("weight", params.weight),
        ("timeout", timeouts.request),
        ("stream_timeout", timeouts.stream),
    ] {
        let path = format!("{entry_path}.litellm_params.{key}");
        check_positive(value, &path, at, &format!("litellm_params.{key}"))?;
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
    let skip = |reason: String| {
        Ok(Compiled::Skipped(Skipped {
            model_name: model_name.clone(),
            pattern: pattern.clone(),
            reason,
        }))
    };
    // Where the `api_base` is written: the entry's, or its credential's.
    let mut api_base_path = format!("{entry_path}.litellm_params.api_base");
    if let Some(name) = params.litellm_credential_name.take() {
        let Some((position, values)) = cx.credentials.get(&name) else {
            return skip(format!(
                "its litellm_credential_name `{name}` is not in credential_list"
            ));
        };
        if params.api_base.is_none() && values.api_base.is_some() {
            api_base_path = format!("credential_list[{position}].credential_values.api_base");
        }
        // The deployment's own values win over the credential's.
        params.api_key = params.api_key.or_else(|| values.api_key.clone());
        params.api_base = params.api_base.or_else(|| values.api_base.clone());
        params.api_version = params.api_version.or_else(|| values.api_version.clone());
        params.azure_ad_token = params.azure_ad_token.or_else(|| values.azure_ad_token.clone());
    }
    if params.model == "*" {
        if pattern_stars != 1 {
            return Err(error(
                model_path,
                at,
                format!("litellm_params.model `*` forwards what one `*` of model_name matched, but model_name has {pattern_stars}"),
            ));
        }
        return Ok(Compiled::Served(Deployment {
            id,
            model_name,
            pattern,
            upstream_model: "*".to_owned(),
            target_has_stars: true,
            target: Target::RequestProvider,
            shares,
            order,
            timeouts,
            access_groups: access_groups.clone(),
            prices,
        }));
    }
    let split = params.model.split_once('/');
    if split.is_some_and(|(provider, _)| provider.contains('*')) {
        return Err(error(
            &model_path,
            at,
            format!(
                "litellm_params.model `{}`: the provider (before the first `/`) must be literal, not a wildcard",
                params.model
            ),
        ));
    }
    // `<provider>/<model>`, else a bare model whose family names its
    // provider (`gpt-4o`, `claude-3-opus-20240229`), as LiteLLM infers it.
    let unlisted;
    let refused = split.and_then(|(name, rest)| refusal(name, rest));
    let (provider, model_template) = match split {
        Some((name, rest)) if cx.providers.contains_key(name) && refused.is_none() => (cx.providers.get(name), rest),
        _ => match (cx.families.provider_of(&params.model), split) {
            (Some(name), _) => (cx.providers.get(name), params.model.as_str()),
            // Not in the table, but given an address: most LiteLLM
            // providers are OpenAI-compatible there.
            (None, Some((name, rest))) if params.api_base.is_some() && refused.is_none() => {
                warnings.push(Warning::new(
                    model_path.clone(),
                    WarningKind::NotAsWritten(format!(
                        "provider `{name}` is not in llm-router's table: served as an OpenAI-compatible API at this api_base, with its key (or `{}_API_KEY`, where set) as a bearer key", name.to_ascii_uppercase()
                    )),
                ));
                unlisted = openai_compatible_at_api_base(name);
                (Some(&unlisted), rest)
            }
            (None, _) => {
                return skip(unknown_provider(
                    &params.model,
                    split.map(|(name, _)| name),
                    cx.providers,
                ))
            }
        },
    };
    let Some(mut provider) = provider else {
        return skip(format!("litellm_params.model `{}` names no provider", params.model));
    };
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
    let model_template = match provider.path_style {
        PathStyle::AzureDeployments => AZURE_FAMILY_PREFIXES
            .iter()
            .find_map(|prefix| model_template.strip_prefix(prefix))
            .unwrap_or(model_template),
        PathStyle::OpenAi | PathStyle::AzureAi => model_template,
    };
    let params_prefix = format!("{entry_path}.litellm_params.");
    let azure_keyless = provider.path_style == PathStyle::AzureDeployments
        && params.api_key.is_none()
        && params.azure_ad_token.is_none();
    let entra_password = cx.ignored.iter().any(|path| {
        path.strip_prefix(&params_prefix)
            .is_some_and(|key| ENTRA_PASSWORD_KEYS.contains(&key))
    });
    let entra = match (azure_keyless, params.tenant_id.take(), params.client_id.take()) {
        (true, Some(tenant_id), Some(client_id)) => Some(EntraClient {
            tenant_id,
            client_id,
            params_path: format!("{entry_path}.litellm_params"),
            client_secret: params.client_secret.take().map(Secret::new),
            scope: params
                .azure_scope
                .take()
                .unwrap_or_else(|| AZURE_DEFAULT_SCOPE.to_owned()),
        }),
        (_, tenant_id, client_id) => {
            // Not asked for (another provider, or a key given): never sent.
            let unused = [
                ("tenant_id", tenant_id.is_some()),
                ("client_id", client_id.is_some()),
                ("client_secret", params.client_secret.is_some()),
                ("azure_scope", params.azure_scope.is_some()),
            ];
            for (key, _) in unused.iter().filter(|(_, given)| *given) {
                warnings.push(Warning::new(format!("{params_prefix}{key}"), WarningKind::Ignored));
            }
            if azure_keyless && entra_password {
                return skip(
                    "it asks for an Entra ID token by username and password, a flow Envoy's credential injector does not make; give it an `api_key`, a static `azure_ad_token`, or client credentials (`tenant_id`, `client_id`, `client_secret`)".to_owned(),
                );
            }
            None
        }
    };
    // LiteLLM reads some providers' address from a variable of theirs.
    if params.api_base.is_none() {
        params.api_base = provider.api_base_env.as_ref().map(|var| format!("os.environ/{var}"));
    }
    // Settings from the environment (`api_base: os.environ/AZURE_API_BASE`).
    if let Some(variable) = params.api_base.as_deref().and_then(env_var) {
        env_addresses.push(EnvAddress {
            path: api_base_path,
            at: at.clone(),
            variable: variable.to_owned(),
        });
    }
    let setting = |value: Option<String>| match value.map(|value| resolve(&value, env)) {
        None => Ok(None),
        Some(Resolved::Value(value)) => Ok(Some(value)),
        Some(Resolved::Unset(var)) => Err(var),
    };
    let deployment = |target| {
        Compiled::Served(Deployment {
            id: id.clone(),
            model_name: model_name.clone(),
            pattern: pattern.clone(),
            upstream_model: model_template.to_owned(),
            target_has_stars: target_stars > 0,
            target,
            shares,
            order,
            timeouts,
            access_groups: access_groups.clone(),
            prices,
        })
    };
    let unavailable = |variable| {
        Target::Unavailable(Unavailable {
            provider: provider.clone(),
            variable,
        })
    };
    // Unset in the VM: the deployment answers 503 (and needs no cluster).
    let (api_base, api_version) = match (setting(params.api_base), setting(params.api_version)) {
        (Ok(api_base), Ok(api_version)) => (api_base, api_version),
        (Err(var), _) | (_, Err(var)) => return Ok(deployment(unavailable(var))),
    };
    let foundry;
    let api_base = match api_base {
        Some(url) => {
            // LiteLLM loads any text and fails at request time: skipped.
            let Some(mut api_base) = ApiBase::parse(&url) else {
                return Ok(Compiled::Skipped(Skipped {
                    model_name,
                    pattern,
                    reason: format!(
                        "litellm_params.api_base `{url}` is not an http(s) URL (`https://host[:port][/path]`)"
                    ),
                }));
            };
            if provider.path_style == PathStyle::AzureAi {
                let openai_model = target_stars == 0 && cx.families.provider_of(model_template) == Some("openai");
                if let Some(reason) = azure_ai_as_azure_openai(&api_base, openai_model) {
                    return Ok(Compiled::Skipped(Skipped {
                        model_name,
                        pattern,
                        reason,
                    }));
                }
                foundry = azure_ai_at(provider, &api_base);
                provider = &foundry;
            }
            // Ollama's OpenAI-compatible API and Anthropic's are under
            // `/v1` of the address LiteLLM users give.
            if !api_base.path.ends_with(&provider.api_suffix) {
                api_base.path.push_str(&provider.api_suffix);
            }
            api_base
        }
        None => provider.api_base.clone().ok_or_else(|| {
            let example = match provider.path_style {
                PathStyle::AzureDeployments => "https://<resource>.openai.azure.com",
                PathStyle::AzureAi => "https://<resource>.services.ai.azure.com",
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
    // A server of the user's own (a self-hosted TGI, vLLM or Ollama) may
    // take no key: as in LiteLLM, the provider's variable where set, else
    // none.
    let keyless;
    let own_server = provider
        .api_base
        .as_ref()
        .is_some_and(|default| default.upstream != api_base.upstream);
    if own_server && !provider.key_optional {
        keyless = Provider {
            key_optional: true,
            ..provider.clone()
        };
        provider = &keyless;
    }
    // An Azure deployment with a static Entra ID token sends it as a bearer
    // token in place of `api-key`.
    let (key, key_name, auth) = match (params.api_key, params.azure_ad_token) {
        (None, Some(token)) if provider.path_style == PathStyle::AzureDeployments => {
            (Some(token), "azure_ad_token", AuthStyle::Bearer)
        }
        (key, _) => (key, "api_key", provider.auth),
    };
    let credentials = match key {
        Some(value) => match resolve(&value, env) {
            Resolved::Value(key) if key.is_empty() => {
                return Err(error(
                    format!("{entry_path}.litellm_params.{key_name}"),
                    at,
                    format!("litellm_params.{key_name} is empty"),
                ))
            }
            Resolved::Value(key) => {
                check_header_value(
                    &key,
                    &format!("{entry_path}.litellm_params.{key_name}"),
                    &format!("{at}: litellm_params.{key_name}"),
                )?;
                Resolved::Value(credential_headers(auth, key))
            }
            Resolved::Unset(var) => Resolved::Unset(var),
        },
        // Envoy sends the Entra ID token.
        None if entra.is_some() => Resolved::Value(Credentials::new()),
        None => default_credentials(provider, env)?,
    };
    let credentials = match credentials {
        Resolved::Value(credentials) => credentials,
        Resolved::Unset(var) => return Ok(deployment(unavailable(var))),
    };
    let mut endpoint = endpoint(provider, api_base, api_version, credentials, env);
    if let Some(entra) = entra {
        // Its own cluster: the token goes to this deployment's requests only.
        endpoint.cluster = format!("{}{ENTRA_CLUSTER_INFIX}{}", endpoint.cluster, entra_id(&entra));
        endpoint.entra = Some(entra);
    }
    Ok(deployment(Target::Fixed(endpoint)))
}

/// A short name for one set of Entra ID client credentials (never from the
/// secret), the same in the filter and the generator.
fn entra_id(entra: &EntraClient) -> String {
    let digest = Sha256::new()
        .chain_update(&entra.tenant_id)
        .chain_update([0])
        .chain_update(&entra.client_id)
        .chain_update([0])
        .chain_update(&entra.scope)
        .finalize();
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Why a model's provider is not served: refused (and what to use
/// instead), unknown, or not inferred from a bare name.
fn unknown_provider(model: &str, named: Option<&str>, providers: &BTreeMap<String, Provider>) -> String {
    match named {
        Some(name) => match refusal(name, model) {
            Some(why) => format!("litellm_params.model `{model}`: provider `{name}` is not supported: {why}"),
            None => {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                format!(
                    "litellm_params.model `{model}`: unknown provider `{name}`; give the deployment its `api_base` if it speaks the OpenAI API, use one of {}, or add it under `providers`",
                    known.join(", ")
                )
            }
        },
        None => format!(
            "litellm_params.model `{model}` names no provider and no model family claims it; write it as `<provider>/{model}` (or add a family under `providers.<name>.model_families`)"
        ),
    }
}

/// `model_info.id`, else `<model_name>#<nth>`: the deployment's name in a
/// response header and in metrics.
fn deployment_id(
    id: Option<String>,
    model_name: &str,
    nth: usize,
    entry_path: &str,
    at: &str,
) -> Result<String, ConfigError> {
    match id {
        Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) => Err(error(
            format!("{entry_path}.model_info.id"),
            at,
            "model_info.id must be printable ASCII without spaces (it names the deployment in a response header and in metrics)",
        )),
        Some(id) => Ok(id),
        None => Ok(format!("{model_name}#{nth}")),
    }
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
