//! Plugin configuration: LiteLLM's `model_list` shape in, a validated and
//! compiled [`Config`] out. Everything that can be checked is checked here,
//! once, so the request path only looks things up.
//!
//! `raw` is the document as serde reads it, `providers` the provider
//! table, `deployment` one `model_list` entry, `settings` the sections
//! around it, `values` LiteLLM's `os.environ/` values; [`Warning`]s say
//! what was accepted but not acted on.

mod deployment;
mod keys;
mod limits;
mod providers;
mod raw;
mod settings;
mod values;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::config::deployment::Compiled;
use rustc_hash::FxHashMap;

use crate::model::{Deployment, Endpoint, KeyTable, Prices, Secret, Skipped, Target, Team};
use crate::route::families::Families;
use crate::route::{Router, RouterError, RouterParts, RouterWarning};

pub use keys::hash_of;
pub use limits::{duration_seconds, micro_usd, UnavailableLimits};
pub use providers::AZURE_DEFAULT_API_VERSION;
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
    /// Entries the filter cannot serve, in list order.
    pub skipped: Vec<Skipped>,
    /// Non-fatal findings to log once (never containing a secret).
    pub warnings: Vec<Warning>,
    /// Every `api_base` given as `os.environ/NAME`: an Envoy bootstrap
    /// needs these addresses when it is written.
    pub env_addresses: Vec<EnvAddress>,
}

/// An `api_base` read from the environment, at the document path where it
/// is written (the entry's `litellm_params.api_base`, or its credential's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAddress {
    pub path: String,
    /// The entry, named for people: `model_list[0] (model_name `a`)`.
    pub at: String,
    pub variable: String,
}

impl Config {
    /// The entry that would serve `model` were it servable: asked only for
    /// a model no route serves.
    pub fn skipped_entry(&self, model: &str) -> Option<&Skipped> {
        self.skipped.iter().find(|s| s.serves(model))
    }

    /// The skipped entry whose model_name is exactly `model`.
    pub fn skipped_exactly(&self, model: &str) -> Option<&Skipped> {
        self.skipped
            .iter()
            .find(|s| s.pattern.is_none() && s.model_name == model)
    }

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

/// An error about a key, where the path and the name are one.
fn key_error(key: &str, problem: impl Into<String>) -> ConfigError {
    error(key, key, problem)
}

/// Something accepted but not acted on as written, at its document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where it is in the document (`model_list[0].litellm_params.rpm`),
    /// for a tool to point at the line.
    pub path: String,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A key llm-router does not read. It is not acted on, and the
    /// generator does not carry it into Envoy's configuration.
    Ignored,
    /// A value llm-router reads but takes otherwise than LiteLLM would; the
    /// text says how.
    NotAsWritten(String),
    /// An environment variable the entry needs is unset in the VM: its
    /// requests get 503 until it is set.
    UnsetVariable { entry: String, variable: String },
    /// The master key is one of LiteLLM's documented example keys.
    PublicMasterKey,
    /// An entry the filter cannot serve: left out, the rest served.
    Skipped { model_name: String, reason: String },
}

impl Warning {
    fn new(path: impl Into<String>, kind: WarningKind) -> Warning {
        Warning {
            path: path.into(),
            kind,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.kind {
            WarningKind::Ignored if path == "litellm_settings.master_key" => {
                write!(f, "{path} is ignored (the client key is general_settings.master_key)")
            }
            WarningKind::Ignored if !path.contains(['.', '[']) => {
                write!(f, "{path} is ignored (llm-router does not read this section)")
            }
            WarningKind::Ignored => write!(f, "{path} is ignored"),
            WarningKind::NotAsWritten(how) => write!(f, "{path}: {how}"),
            WarningKind::UnsetVariable { entry, variable } => write!(
                f,
                "{entry}: environment variable `{variable}` is not set in the Wasm VM; requests for this route get 503 until it is"
            ),
            WarningKind::Skipped { model_name, reason } => {
                write!(f, "{path}: model `{model_name}` is not served: {reason}")
            }
            WarningKind::PublicMasterKey => write!(
                f,
                "{path} is a publicly known example key (such as sk-1234): anyone can use this router; set a long random key"
            ),
        }
    }
}

/// What the document is: the filter's own configuration, where a top-level
/// key it does not know is a mistake; or a LiteLLM `config.yaml`, whose
/// other sections (`environment_variables`, …) are LiteLLM's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Plugin,
    LiteLlm,
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
    let families = providers.values().flat_map(|p| {
        p.model_families
            .iter()
            .map(move |family| (family.as_str(), p.name.as_str()))
    });
    let families = Families::new(families);
    let credentials: BTreeMap<String, _> = raw
        .credential_list
        .into_iter()
        .enumerate()
        .map(|(position, c)| (c.credential_name, (position, c.credential_values)))
        .collect();
    let ignored: Vec<String> = warnings.iter().map(|w| w.path.clone()).collect();
    let context = deployment::Context {
        providers: &providers,
        families: &families,
        credentials: &credentials,
        ignored: &ignored,
        env,
    };
    let mut deployments = Vec::with_capacity(raw.model_list.len());
    // The model_list position of each deployment (skipped entries have none).
    let mut list_index = Vec::with_capacity(raw.model_list.len());
    let mut skipped = Vec::new();
    let mut entries_of_name: HashMap<String, usize> = HashMap::new();
    let mut listed: HashMap<&str, usize> = HashMap::new();
    for entry in &raw.model_list {
        *listed.entry(entry.model_name.as_str()).or_default() += 1;
    }
    let in_group: BTreeSet<String> = listed
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(name, _)| name.to_owned())
        .collect();
    let mut env_addresses = Vec::new();
    for (index, entry) in raw.model_list.into_iter().enumerate() {
        let nth = entries_of_name.entry(entry.model_name.clone()).or_default();
        *nth += 1;
        let path = format!("model_list[{index}]");
        let compiled = deployment::compile_deployment(entry, index, *nth, &context, &mut env_addresses, &mut warnings)?;
        match entra_outside_groups(compiled, &in_group) {
            Compiled::Skipped(entry) => {
                let model = format!("{path}.litellm_params.model");
                let kind = WarningKind::Skipped {
                    model_name: entry.model_name.clone(),
                    reason: entry.reason.clone(),
                };
                warnings.push(Warning::new(model, kind));
                skipped.push(entry);
            }
            Compiled::Served(deployment) => {
                if let Target::Unavailable(unavailable) = &deployment.target {
                    let entry = format!("{path} (model_name `{}`)", deployment.model_name);
                    let variable = unavailable.variable.clone();
                    warnings.push(Warning::new(path, WarningKind::UnsetVariable { entry, variable }));
                }
                deployments.push(deployment);
                list_index.push(index);
            }
        }
    }
    let fallbacks = served_fallbacks(
        router_settings.fallbacks,
        router_settings.default_fallbacks,
        &deployments,
        &skipped,
        &mut warnings,
    );
    // A deployment that forwards to the request's own provider needs every
    // provider's default endpoint, with its conventional key.
    let passthrough = deployments.iter().any(|d| d.target == Target::RequestProvider);
    let provider_endpoints = match passthrough {
        true => providers::default_endpoints(&providers, env)?,
        false => BTreeMap::new(),
    };
    let entry_path = |index: usize| format!("model_list[{}]", list_index.get(index).copied().unwrap_or(index));
    let mut member_warnings = Vec::new();
    let router = Router::new(
        RouterParts {
            deployments,
            provider_endpoints,
            known_providers: providers.keys().cloned().collect(),
            families,
            aliases: router_settings.aliases,
            fallbacks,
            default_timeouts: router_settings.default_timeouts,
        },
        &mut member_warnings,
    )
    .map_err(|e| router_error(e, &entry_path))?;
    warnings.extend(member_warnings.into_iter().map(|warning| match warning {
        RouterWarning::Member { index, text } => Warning::new(entry_path(index), WarningKind::NotAsWritten(text)),
        RouterWarning::Fallback { path, group, text } => {
            Warning::new(format!("{path}.{group}"), WarningKind::NotAsWritten(text))
        }
    }));
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
        failover: router_settings.failover,
        models_reply,
        skipped,
        warnings,
        env_addresses,
    })
}

/// A deployment with Entra ID client credentials in a model group is
/// skipped: Envoy injects the token on the deployment's own cluster, and a
/// group's requests leave through the group's cluster, shared with
/// deployments that did not ask for the token.
fn entra_outside_groups(compiled: Compiled, in_group: &BTreeSet<String>) -> Compiled {
    match compiled {
        Compiled::Served(d) if has_entra(&d) && in_group.contains(&d.model_name) => Compiled::Skipped(Skipped {
            model_name: d.model_name,
            pattern: d.pattern,
            reason: ENTRA_IN_GROUP.to_owned(),
        }),
        other => other,
    }
}

const ENTRA_IN_GROUP: &str = "Entra ID client credentials in a model group: Envoy injects the token on the deployment's own cluster, and a group's requests leave through one cluster shared by all its deployments; give this deployment a model_name of its own, or an `api_key`";

fn has_entra(d: &Deployment) -> bool {
    matches!(&d.target, Target::Fixed(endpoint) if endpoint.entra.is_some())
}

/// The fallbacks as written, less those naming a model whose every entry
/// was skipped (with a warning already) and those of a group with Entra ID
/// client credentials, plus the default fallbacks for every exact name
/// without its own. The router looks up the rest (names, ids, patterns)
/// and leaves out, with a warning, what it cannot reach.
fn served_fallbacks(
    listed: Vec<(String, String, Vec<String>)>,
    defaults: Option<(String, Vec<String>)>,
    deployments: &[Deployment],
    skipped: &[Skipped],
    warnings: &mut Vec<Warning>,
) -> Vec<(String, String, Vec<String>)> {
    let served: BTreeSet<&str> = deployments.iter().map(|d| d.model_name.as_str()).collect();
    let only_skipped = |name: &str| !served.contains(name) && skipped.iter().any(|s| s.model_name == name);
    // Fallbacks make a group (see [`entra_outside_groups`]).
    let entra: BTreeSet<&str> = deployments
        .iter()
        .filter(|d| has_entra(d))
        .map(|d| d.model_name.as_str())
        .collect();
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
            warnings.push(Warning::new(
                format!("{path}.{group}"),
                WarningKind::NotAsWritten(format!(
                    "`{group}` has Entra ID client credentials, whose token Envoy injects on its own cluster only: its fallbacks are not acted on"
                )),
            ));
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

fn router_error(e: RouterError, entry_path: &dyn Fn(usize) -> String) -> ConfigError {
    match e {
        RouterError::Alias(alias) => error(
            format!("router_settings.model_group_alias.{}", alias.name),
            format!("router_settings.model_group_alias `{}`", alias.name),
            format!(
                "its target `{}` matches no model_name (an alias routes as its target)",
                alias.target
            ),
        ),
        RouterError::Member { index, problem } => error(entry_path(index), entry_path(index), problem),
    }
}

#[cfg(test)]
pub(crate) mod tests;
