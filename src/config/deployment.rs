//! One `model_list` entry to a [`Deployment`]: its pattern, its provider,
//! where it is sent and with which key.

use std::collections::BTreeMap;

use crate::config::providers::{credential_headers, default_credentials, REFUSED_PROVIDERS};
use crate::config::raw::RawDeployment;
use crate::config::values::{check_header_value, check_positive, env_var, resolve, Resolved};
use crate::config::{error, ConfigError, EnvAddress, AZURE_DEFAULT_API_VERSION};
use crate::model::{
    ApiBase, Credentials, Deployment, Endpoint, PathStyle, Provider, Shares, Target, Timeouts, Unavailable,
};
use crate::route::pattern::Pattern;

/// `model_list[index]`, the `nth` entry of its `model_name`. An `api_base`
/// read from the environment is noted in `env_addresses`.
pub(super) fn compile_deployment(
    entry: RawDeployment,
    index: usize,
    nth: usize,
    providers: &BTreeMap<String, Provider>,
    env: &dyn Fn(&str) -> Option<String>,
    env_addresses: &mut Vec<EnvAddress>,
) -> Result<Deployment, ConfigError> {
    let RawDeployment {
        model_name,
        litellm_params: params,
        model_info,
    } = entry;
    let entry_path = &format!("model_list[{index}]");
    let at = &format!("{entry_path} (model_name `{model_name}`)");
    let id = deployment_id(model_info.id, &model_name, nth, entry_path, at)?;
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
    if let Some(variable) = params.api_base.as_deref().and_then(env_var) {
        env_addresses.push(EnvAddress {
            path: format!("{entry_path}.litellm_params.api_base"),
            at: at.clone(),
            variable: variable.to_owned(),
        });
    }
    let setting = |value: Option<String>| match value.map(|value| resolve(&value, env)) {
        None => Ok(None),
        Some(Resolved::Value(value)) => Ok(Some(value)),
        Some(Resolved::Unset(var)) => Err(var),
    };
    let credentials = match params.api_key {
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
                Resolved::Value(credential_headers(provider.auth, key))
            }
            Resolved::Unset(var) => Resolved::Unset(var),
        },
        None => default_credentials(provider, env)?,
    };
    let deployment = |target| Deployment {
        id: id.clone(),
        model_name: model_name.clone(),
        pattern: pattern.clone(),
        upstream_model: model_template.to_owned(),
        target_has_stars: target_stars > 0,
        target,
        shares,
        order,
        timeouts,
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
    let credentials = match credentials {
        Resolved::Value(credentials) => credentials,
        Resolved::Unset(var) => return Ok(deployment(unavailable(var))),
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
    Ok(deployment(Target::Fixed(endpoint(
        provider,
        api_base,
        api_version,
        credentials,
        env,
    ))))
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
        PathStyle::OpenAi => api_version,
    };
    Endpoint {
        provider: provider.clone(),
        cluster,
        upstream: api_base.upstream,
        base_path: api_base.path,
        api_version,
        credentials,
    }
}
