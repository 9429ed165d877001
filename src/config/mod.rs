//! Plugin configuration: LiteLLM's `model_list` shape in, a validated and
//! compiled [`Config`] out. Everything that can be checked is checked here,
//! once, so the request path only looks things up.
//!
//! `raw` is the document as serde reads it, `providers` the provider
//! table, `deployment` one `model_list` entry through its stages
//! (`credentials`, `provider_choice`, `entra`, `target`, `endpoint`),
//! `settings` the sections around it, `values` LiteLLM's `os.environ/`
//! values; `report` holds the errors and the [`Warning`]s, which say what
//! was accepted but not acted on. This file only puts them in order.

mod credentials;
mod deployment;
mod endpoint;
mod entra;
mod keys;
mod limits;
mod provider_choice;
mod provider_keys;
mod providers;
mod raw;
mod report;
mod settings;
mod stage;
mod target;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxHashMap;

use crate::config::raw::RawDeployment;
use crate::config::report::{error, key_error, EntryPath};
use crate::config::settings::RouterSettings;
use crate::config::stage::Context;
use crate::model::{Deployment, Endpoint, KeyTable, ListEntry, Prices, Provider, Secret, Target, Team};
use crate::route::families::Families;
use crate::route::{Router, RouterError, RouterParts, RouterWarning};

pub use endpoint::AZURE_DEFAULT_API_VERSION;
pub use keys::hash_of;
pub use limits::{duration_seconds, micro_usd, UnavailableLimits};
pub use raw::Document;
pub use report::{ConfigError, EnvAddress, Warning, WarningKind};
pub use settings::{Failover, DEFAULT_ALLOWED_FAILS, DEFAULT_COOLDOWN_SECONDS, DEFAULT_NUM_RETRIES};
pub use values::env_var;

/// The default body limit (32 MiB): LLM requests with images are large.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;

/// The whole compiled configuration.
#[derive(Debug)]
pub struct Config {
    pub router: Router,
    pub master_key: Option<Secret>,
    /// Virtual keys (`keys:`); with any, a request needs the master key or one.
    pub keys: KeyTable,
    /// `teams:`: limits shared by a team's keys.
    pub teams: Vec<Team>,
    /// Some key or team has an `rpm_limit` or `tpm_limit`: every keyed
    /// request is checked by Envoy's rate-limit filter, and every keyed
    /// response leaves its tokens.
    pub rates_limited: bool,
    /// `model_prices`: per-token prices by model name, for a deployment
    /// without its own.
    pub model_prices: FxHashMap<String, Prices>,
    pub limits_unavailable: UnavailableLimits,
    pub cluster_header: String,
    pub max_body_bytes: usize,
    /// Add `stream_options.include_usage` to streamed chat and completion
    /// requests that lack it, so their usage can be counted (the chunk it
    /// brings is removed from what the client gets).
    pub inject_stream_usage: bool,
    /// Leave each response's facts (model, route, provider, upstream model,
    /// tokens, time to first token, cost, the key's alias and team) as
    /// filter state for the access log: a host call each. Off, only what
    /// Envoy's rate-limit filters read is written.
    pub access_log_facts: bool,
    /// How Envoy retries and cools down a group's deployments.
    pub failover: Failover,
    /// The `GET /v1/models` answer, built once.
    pub models_reply: Vec<u8>,
    /// Non-fatal findings to log once (never containing a secret).
    pub warnings: Vec<Warning>,
    /// Every `api_base` given as `os.environ/NAME`: an Envoy bootstrap
    /// needs these addresses when it is written.
    pub env_addresses: Vec<EnvAddress>,
}

impl Config {
    /// Some key is under a budget (its own or its team's): the budget
    /// filter and the price table are needed.
    pub fn budgeted(&self) -> bool {
        self.keys.keys.iter().any(|k| k.budgets.any())
    }

    /// Every upstream a request is sent to directly, with its cluster name,
    /// once each, sorted by cluster: what the Envoy bootstrap must define
    /// besides the groups' clusters, which carry their own endpoints.
    pub fn upstreams(&self) -> Vec<(&str, &Endpoint)> {
        let mut upstreams: BTreeMap<&str, &Endpoint> = BTreeMap::new();
        for endpoint in self.router.endpoints() {
            upstreams.entry(&endpoint.cluster).or_insert(endpoint);
        }
        upstreams.into_iter().collect()
    }
}

/// Parses and compiles the plugin configuration. `env` resolves
/// `os.environ/NAME` (the VM's environment in Envoy, a map in tests).
pub fn compile(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    compile_document(json, Document::Plugin, env)
}

/// [`compile`] for either kind of document.
pub fn compile_document(
    json: &[u8],
    document: Document,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (mut raw, ignored) = raw::parse(json, document)?;
    let limits_unavailable = limits::unavailable(raw.router_settings.limits_service_unavailable.take());
    let mut warnings: Vec<Warning> = ignored
        .into_iter()
        .map(|path| Warning::new(path, WarningKind::Ignored))
        .collect();
    let providers = providers::provider_table(raw.providers)?;
    let general = settings::general(raw.general_settings, env, &mut warnings)?;
    let router_settings = settings::router(raw.router_settings, raw.litellm_settings, &mut warnings)?;
    let cluster_header = settings::cluster_header(raw.cluster_header)?;
    let mut keys = keys::key_table(raw.keys, env, &mut warnings)?;
    let teams = limits::teams(raw.teams)?;
    limits::set_budget_scopes(&mut keys, &teams);
    let rates_limited = limits::any_rate_limit(&keys, &teams);
    let model_prices = limits::price_table(raw.model_prices);
    let max_body_bytes = match raw.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(0) => return Err(key_error("max_body_bytes", "must be greater than 0")),
        Some(n) => n,
    };
    if raw.model_list.is_empty() {
        return Err(key_error("model_list", "is empty; add at least one deployment"));
    }
    let families = Families::new(providers.values().flat_map(|p| {
        p.model_families
            .iter()
            .map(move |family| (family.as_str(), p.name.as_str()))
    }));
    let credentials: BTreeMap<String, _> = raw
        .credential_list
        .into_iter()
        .enumerate()
        .map(|(position, c)| (c.credential_name, (position, c.credential_values)))
        .collect();
    let ignored: Vec<String> = warnings.iter().map(|w| w.path.clone()).collect();
    let context = Context {
        providers: &providers,
        families: &families,
        credentials: &credentials,
        ignored: &ignored,
        env,
    };
    let mut env_addresses = Vec::new();
    let entries = compile_entries(raw.model_list, &context, &mut env_addresses, &mut warnings)?;
    let (router, failover) = build_router(entries, &providers, families, router_settings, env, &mut warnings)?;
    let models_reply = router.models_reply();
    Ok(Config {
        router,
        master_key: general.master_key,
        keys,
        teams,
        rates_limited,
        model_prices,
        limits_unavailable,
        cluster_header,
        max_body_bytes,
        inject_stream_usage: raw.inject_stream_usage.unwrap_or(true),
        access_log_facts: raw.access_log_facts.unwrap_or(true),
        failover,
        models_reply,
        warnings,
        env_addresses,
    })
}

/// Every `model_list` entry, in list order, each served or skipped with a
/// warning at its line.
fn compile_entries(
    model_list: Vec<RawDeployment>,
    context: &Context,
    env_addresses: &mut Vec<EnvAddress>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<ListEntry>, ConfigError> {
    let mut listed: HashMap<&str, usize> = HashMap::new();
    for entry in &model_list {
        *listed.entry(entry.model_name.as_str()).or_default() += 1;
    }
    let in_group: BTreeSet<String> = listed
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(name, _)| name.to_owned())
        .collect();
    let mut entries_of_name: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(model_list.len());
    for (index, entry) in model_list.into_iter().enumerate() {
        let nth = entries_of_name.entry(entry.model_name.clone()).or_default();
        *nth += 1;
        let compiled = deployment::compile_deployment(entry, index, *nth, context, env_addresses, warnings)?;
        let compiled = entra::outside_groups(compiled, &in_group);
        let path = EntryPath::new(index, compiled_name(&compiled));
        match &compiled {
            ListEntry::Skipped(entry) => {
                let kind = WarningKind::Skipped {
                    model_name: entry.model_name.clone(),
                    reason: entry.reason.clone(),
                };
                warnings.push(Warning::new(path.param("model"), kind));
            }
            ListEntry::Served(deployment) => {
                if let Target::Unavailable(unavailable) = &deployment.target {
                    let variable = unavailable.variable.clone();
                    let kind = WarningKind::UnsetVariable {
                        entry: path.name,
                        variable,
                    };
                    warnings.push(Warning::new(path.path, kind));
                }
            }
        }
        entries.push(compiled);
    }
    Ok(entries)
}

fn compiled_name(entry: &ListEntry) -> &str {
    match entry {
        ListEntry::Served(deployment) => &deployment.model_name,
        ListEntry::Skipped(skipped) => &skipped.model_name,
    }
}

/// The route table of `entries`, with the fallbacks it can honour; and
/// the failover settings.
fn build_router(
    entries: Vec<ListEntry>,
    providers: &BTreeMap<String, Provider>,
    families: Families,
    settings: RouterSettings,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Warning>,
) -> Result<(Router, Failover), ConfigError> {
    let fallbacks = served_fallbacks(settings.fallbacks, settings.default_fallbacks, &entries, warnings);
    // A deployment that forwards to the request's own provider needs every
    // provider's default endpoint, with its conventional key.
    let passthrough = entries
        .iter()
        .any(|e| matches!(e, ListEntry::Served(d) if d.target == Target::RequestProvider));
    let provider_endpoints = match passthrough {
        true => endpoint::default_endpoints(providers, env)?,
        false => BTreeMap::new(),
    };
    let mut router_warnings = Vec::new();
    let parts = RouterParts {
        entries,
        provider_endpoints,
        known_providers: providers.keys().cloned().collect(),
        families,
        aliases: settings.aliases,
        fallbacks,
        default_timeouts: settings.default_timeouts,
        fallback_refusal: entra::fallback_refusal,
    };
    let router = Router::new(parts, &mut router_warnings).map_err(router_error)?;
    warnings.extend(router_warnings.into_iter().map(|warning| match warning {
        RouterWarning::Member { index, text } => {
            Warning::new(format!("model_list[{index}]"), WarningKind::NotAsWritten(text))
        }
        RouterWarning::Fallback { path, group, text } => {
            Warning::new(format!("{path}.{group}"), WarningKind::NotAsWritten(text))
        }
    }));
    Ok((router, settings.failover))
}

/// The fallbacks as written, less those naming a model whose every entry
/// was skipped (with a warning already) and those of a group with Entra ID
/// client credentials, plus the default fallbacks for every exact name
/// without its own. The router looks up the rest (names, ids, patterns)
/// and leaves out, with a warning, what it cannot reach.
fn served_fallbacks(
    listed: Vec<(String, String, Vec<String>)>,
    defaults: Option<(String, Vec<String>)>,
    entries: &[ListEntry],
    warnings: &mut Vec<Warning>,
) -> Vec<(String, String, Vec<String>)> {
    let deployments: Vec<&Deployment> = entries
        .iter()
        .filter_map(|e| match e {
            ListEntry::Served(d) => Some(d),
            ListEntry::Skipped(_) => None,
        })
        .collect();
    let served: BTreeSet<&str> = deployments.iter().map(|d| d.model_name.as_str()).collect();
    let skipped: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            ListEntry::Skipped(s) => Some(s.model_name.as_str()),
            ListEntry::Served(_) => None,
        })
        .collect();
    let only_skipped = |name: &str| !served.contains(name) && skipped.contains(name);
    let entra = entra::names(deployments.iter().copied());
    let mut fallbacks = Vec::with_capacity(listed.len());
    let mut with_own = BTreeSet::new();
    for (path, group, targets) in listed {
        let (dropped, kept): (Vec<String>, Vec<String>) = targets.into_iter().partition(|t| only_skipped(t));
        for target in dropped {
            warnings.push(Warning::new(
                format!("{path}.{group}"),
                WarningKind::NotAsWritten(format!(
                    "fallback `{target}` is not served (see its entry's warning); left out"
                )),
            ));
        }
        if entra.contains(group.as_str()) {
            let text = entra::fallbacks_not_acted_on(&group);
            warnings.push(Warning::new(format!("{path}.{group}"), WarningKind::NotAsWritten(text)));
            continue;
        }
        if !only_skipped(&group) && !kept.is_empty() {
            with_own.insert(group.clone());
            fallbacks.push((path, group, kept));
        }
    }
    if let Some((path, targets)) = defaults {
        let exact = deployments
            .iter()
            .filter(|d| d.pattern.is_none() && d.target != Target::RequestProvider);
        let names: BTreeSet<&str> = exact.map(|d| d.model_name.as_str()).collect();
        let targets: Vec<String> = targets.into_iter().filter(|t| !entra.contains(t.as_str())).collect();
        for name in names {
            if with_own.contains(name)
                || entra.contains(name)
                || targets.iter().any(|t| t == name)
                || targets.is_empty()
            {
                continue;
            }
            fallbacks.push((path.clone(), name.to_owned(), targets.clone()));
        }
    }
    fallbacks
}

fn router_error(e: RouterError) -> ConfigError {
    match e {
        RouterError::Alias(alias) => error(
            format!("router_settings.model_group_alias.{}", alias.name),
            format!("router_settings.model_group_alias `{}`", alias.name),
            format!(
                "its target `{}` matches no model_name (an alias routes as its target)",
                alias.target
            ),
        ),
        RouterError::Member { index, problem } => {
            let path = format!("model_list[{index}]");
            error(&path, &path, problem)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
