//! Stage 2 of a deployment: the provider its `litellm_params.model` names:
//! one from the table, one a bare model's family names, an unlisted one at
//! the entry's `api_base` (taken as OpenAI-compatible), or none the filter
//! can serve (skipped).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::config::providers::{openai_compatible_at_api_base, refusal};
use crate::config::raw::RawParams;
use crate::config::report::{EntryPath, Warning, WarningKind};
use crate::config::stage::{Context, Stage, Stop};
use crate::model::{PathStyle, Provider};

/// Where an entry's requests go, by provider.
// Unboxed: one per entry, consumed by the next stage at once.
#[allow(clippy::large_enum_variant)]
pub(super) enum ProviderChoice<'c> {
    /// `model: "*"`: the request's own provider.
    RequestProvider,
    Listed(Chosen<'c>),
}

/// A provider and the model it is sent.
pub(super) struct Chosen<'c> {
    pub provider: Cow<'c, Provider>,
    /// The model after `<provider>/` (less Azure's family prefix); its `*`s
    /// take the pattern's captures.
    pub model: String,
}

/// Azure model-family prefixes LiteLLM strips from the deployment name
/// (`azure/o_series/<deployment>`): they choose its request shape, not
/// its path.
const AZURE_FAMILY_PREFIXES: &[&str] = &["o_series/", "gpt5_series/"];

pub(super) fn choose<'c>(
    params: &RawParams,
    pattern_stars: usize,
    entry: &EntryPath,
    cx: &Context<'c>,
    warnings: &mut Vec<Warning>,
) -> Stage<ProviderChoice<'c>> {
    let model = params.model.as_str();
    let model_key = "litellm_params.model";
    if model == "*" {
        if pattern_stars != 1 {
            let problem = format!("litellm_params.model `*` forwards what one `*` of model_name matched, but model_name has {pattern_stars}");
            return Err(entry.error(model_key, problem).into());
        }
        return Ok(ProviderChoice::RequestProvider);
    }
    if model
        .split_once('/')
        .is_some_and(|(provider, _)| provider.contains('*'))
    {
        let problem = format!(
            "litellm_params.model `{model}`: the provider (before the first `/`) must be literal, not a wildcard"
        );
        return Err(entry.error(model_key, problem).into());
    }
    let (provider, template) = provider_of(model, params.api_base.is_some(), entry, cx, warnings)?;
    let stars = template.matches('*').count();
    if stars != 0 && stars != pattern_stars {
        let problem = format!(
            "litellm_params.model `{model}` has {stars} `*` but model_name has {pattern_stars}; each `*` of the target takes the text of the matching `*` of model_name"
        );
        return Err(entry.error(model_key, problem).into());
    }
    let template = match provider.path_style {
        PathStyle::AzureDeployments => AZURE_FAMILY_PREFIXES
            .iter()
            .find_map(|prefix| template.strip_prefix(prefix))
            .unwrap_or(template),
        PathStyle::OpenAi | PathStyle::AzureAi => template,
    };
    let model = template.to_owned();
    Ok(ProviderChoice::Listed(Chosen { provider, model }))
}

/// `<provider>/<model>`, else a bare model whose family names its provider
/// (`gpt-4o`, `claude-3-opus-20240229`), as LiteLLM infers it; with the
/// model that provider is sent.
fn provider_of<'c, 'm>(
    model: &'m str,
    api_base_given: bool,
    entry: &EntryPath,
    cx: &Context<'c>,
    warnings: &mut Vec<Warning>,
) -> Stage<(Cow<'c, Provider>, &'m str)> {
    let split = model.split_once('/');
    let refused = split.and_then(|(name, rest)| refusal(name, rest));
    let listed = split.filter(|_| refused.is_none());
    if let Some((provider, rest)) = listed.and_then(|(name, rest)| Some((cx.providers.get(name)?, rest))) {
        return Ok((Cow::Borrowed(provider), rest));
    }
    if let Some(name) = cx.families.provider_of(model) {
        return match cx.providers.get(name) {
            Some(provider) => Ok((Cow::Borrowed(provider), model)),
            None => Err(Stop::Skipped(format!(
                "litellm_params.model `{model}` names no provider"
            ))),
        };
    }
    match listed {
        // Not in the table, but given an address: most LiteLLM providers
        // are OpenAI-compatible there.
        Some((name, rest)) if api_base_given => {
            warnings.push(Warning::new(
                entry.param("model"),
                WarningKind::NotAsWritten(format!(
                    "provider `{name}` is not in llm-router's table: served as an OpenAI-compatible API at this api_base, with its key (or `{}_API_KEY`, where set) as a bearer key", name.to_ascii_uppercase()
                )),
            ));
            Ok((Cow::Owned(openai_compatible_at_api_base(name)), rest))
        }
        _ => Err(Stop::Skipped(unknown_provider(
            model,
            split.map(|(name, _)| name),
            cx.providers,
        ))),
    }
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
