//! One `model_list` entry to a [`ListEntry`], through small typed stages:
//! what the entry says of itself ([`EntryFacts`]); its credential merged
//! ([`credentials`]); its provider chosen ([`provider_choice`]): from the
//! table, by family, unlisted, or skipped; its Entra ID client ([`entra`]);
//! its target resolved ([`target`]): environment, `api_base`, key or token;
//! and its endpoint ([`crate::config::endpoint`]).

use crate::config::credentials;
use crate::config::entra;
use crate::config::limits;
use crate::config::provider_choice::{self, ProviderChoice};
use crate::config::raw::{RawDeployment, RawModelInfo, RawParams};
use crate::config::report::{ConfigError, EntryPath, EnvAddress, Warning};
use crate::config::stage::{Context, Stage, Stop};
use crate::config::target;
use crate::config::values::check_positive;
use crate::model::{Deployment, ListEntry, Pattern, Prices, Shares, Skipped, Target, Timeouts};

/// `model_list[index]`, the `nth` entry of its `model_name`. An `api_base`
/// read from the environment is noted in `env_addresses`.
pub(super) fn compile_deployment(
    entry: RawDeployment,
    index: usize,
    nth: usize,
    cx: &Context,
    env_addresses: &mut Vec<EnvAddress>,
    warnings: &mut Vec<Warning>,
) -> Result<ListEntry, ConfigError> {
    let RawDeployment {
        model_name,
        litellm_params,
        model_info,
    } = entry;
    let path = EntryPath::new(index, &model_name);
    let facts = EntryFacts::read(model_name, &litellm_params, model_info, nth, &path)?;
    let stars = facts.pattern.as_ref().map_or(0, Pattern::stars);
    match upstream(litellm_params, stars, &path, cx, env_addresses, warnings) {
        Ok((upstream_model, target)) => Ok(ListEntry::Served(facts.deployment(upstream_model, target))),
        Err(Stop::Skipped(reason)) => Ok(ListEntry::Skipped(facts.skipped(reason))),
        Err(Stop::Refused(error)) => Err(error),
    }
}

/// The stages after the entry's own facts: the model sent upstream and
/// where it is sent.
fn upstream(
    params: RawParams,
    pattern_stars: usize,
    path: &EntryPath,
    cx: &Context,
    env_addresses: &mut Vec<EnvAddress>,
    warnings: &mut Vec<Warning>,
) -> Stage<(String, Target)> {
    let mut merged = credentials::merge(params, cx.credentials, path)?;
    let chosen = match provider_choice::choose(&merged.params, pattern_stars, path, cx, warnings)? {
        ProviderChoice::RequestProvider => return Ok(("*".to_owned(), Target::RequestProvider)),
        ProviderChoice::Listed(chosen) => chosen,
    };
    let entra = entra::client(&mut merged.params, &chosen.provider, path, cx.ignored, warnings)?;
    let target = target::resolve_target(merged, &chosen, entra, path, cx, env_addresses)?;
    Ok((chosen.model, target))
}

/// What an entry says of itself, whatever its target: its names, shares,
/// order, timeouts, access groups and prices.
struct EntryFacts {
    id: String,
    model_name: String,
    pattern: Option<Pattern>,
    shares: Shares,
    order: Option<u32>,
    timeouts: Timeouts,
    access_groups: Vec<String>,
    prices: Option<Prices>,
}

impl EntryFacts {
    fn read(
        model_name: String,
        params: &RawParams,
        info: RawModelInfo,
        nth: usize,
        path: &EntryPath,
    ) -> Result<EntryFacts, ConfigError> {
        let id = deployment_id(info.id, &model_name, nth, path)?;
        let timeouts = Timeouts {
            request: params.timeout,
            stream: params.stream_timeout,
        };
        for (key, value) in [
            ("weight", params.weight),
            ("timeout", timeouts.request),
            ("stream_timeout", timeouts.stream),
        ] {
            check_positive(value, &path.param(key), &path.name, &format!("litellm_params.{key}"))?;
        }
        if model_name.is_empty() {
            return Err(path.error("model_name", "`model_name` is empty"));
        }
        let prices = limits::own_prices(
            [
                params.input_cost_per_token,
                params.output_cost_per_token,
                params.cache_read_input_token_cost,
            ],
            [
                info.input_cost_per_token,
                info.output_cost_per_token,
                info.cache_read_input_token_cost,
            ],
        );
        Ok(EntryFacts {
            id,
            pattern: Pattern::parse(&model_name),
            model_name,
            shares: Shares {
                weight: params.weight,
                rpm: params.rpm,
                tpm: params.tpm,
            },
            order: params.order,
            timeouts,
            access_groups: info.access_groups,
            prices,
        })
    }

    fn deployment(self, upstream_model: String, target: Target) -> Deployment {
        Deployment {
            id: self.id,
            model_name: self.model_name,
            pattern: self.pattern,
            target_has_stars: upstream_model.contains('*'),
            upstream_model,
            target,
            shares: self.shares,
            order: self.order,
            timeouts: self.timeouts,
            access_groups: self.access_groups,
            prices: self.prices,
        }
    }

    fn skipped(self, reason: String) -> Skipped {
        Skipped {
            model_name: self.model_name,
            pattern: self.pattern,
            reason,
        }
    }
}

/// `model_info.id`, else `<model_name>#<nth>`: the deployment's name in a
/// response header and in metrics.
fn deployment_id(id: Option<String>, model_name: &str, nth: usize, path: &EntryPath) -> Result<String, ConfigError> {
    match id {
        Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) => Err(path.error(
            "model_info.id",
            "model_info.id must be printable ASCII without spaces (it names the deployment in a response header and in metrics)",
        )),
        Some(id) => Ok(id),
        None => Ok(format!("{model_name}#{nth}")),
    }
}
