//! The sections around `model_list`: `general_settings` (the client key),
//! `router_settings` (aliases, failover, timeouts) and llm-router's own
//! top-level keys.

use std::collections::BTreeMap;

use crate::config::raw::{RawAlias, RawGeneralSettings, RawLitellmSettings, RawRouterSettings};
use crate::config::report::{key_error, ConfigError, Warning, WarningKind};
use crate::config::values::{
    check_header_value, check_positive, is_publicly_known_key, is_token_byte, resolve, Resolved,
};
use crate::contract::DEFAULT_CLUSTER_HEADER;
use crate::model::{Secret, Timeouts};
use crate::route::Alias;

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

/// What `general_settings` sets.
pub(super) struct General {
    pub master_key: Option<Secret>,
}

pub(super) fn general(
    raw: RawGeneralSettings,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Warning>,
) -> Result<General, ConfigError> {
    const AT: &str = "general_settings.master_key";
    let Some(value) = raw.master_key else {
        return Ok(General { master_key: None });
    };
    match resolve(&value, env) {
        Resolved::Value(key) if !key.is_empty() => {
            check_header_value(&key, AT, AT)?;
            if is_publicly_known_key(&key) {
                warnings.push(Warning::new(AT, WarningKind::PublicMasterKey));
            }
            Ok(General {
                master_key: Some(Secret::new(key)),
            })
        }
        Resolved::Value(_) => Err(key_error(AT, "is empty; set a key or remove `master_key` to disable the client check")),
        Resolved::Unset(var) => Err(key_error(
            AT,
            format!("environment variable `{var}` is not set in the Wasm VM; set it and list it in vm_config.environment_variables.host_env_keys (the filter never runs without a configured master key)"),
        )),
    }
}

/// What `router_settings` sets.
pub(super) struct RouterSettings {
    pub aliases: Vec<Alias>,
    /// `(where it is written, group, its fallback groups in order)`.
    pub fallbacks: Vec<(String, String, Vec<String>)>,
    /// Fallbacks for every group with none of its own, and where they are
    /// written.
    pub default_fallbacks: Option<(String, Vec<String>)>,
    pub default_timeouts: Timeouts,
    pub failover: Failover,
}

/// `router_settings`, with the failover keys LiteLLM's Router also takes
/// from `litellm_settings` where `router_settings` does not set them.
pub(super) fn router(
    raw: RawRouterSettings,
    litellm: RawLitellmSettings,
    warnings: &mut Vec<Warning>,
) -> Result<RouterSettings, ConfigError> {
    match raw.routing_strategy.as_deref() {
        None | Some("simple-shuffle") => {}
        Some(strategy) => warnings.push(Warning::new(
            "router_settings.routing_strategy",
            WarningKind::NotAsWritten(format!(
                "`{strategy}` is not supported; groups are balanced by weight, rpm or tpm (simple-shuffle)"
            )),
        )),
    }
    if litellm.context_window_fallbacks.is_some() {
        warnings.push(Warning::new(
            "litellm_settings.context_window_fallbacks",
            WarningKind::NotAsWritten(
                "not acted on: a context-window error cannot be told from another 400 without reading the provider's answer".to_owned(),
            ),
        ));
    }
    let timeout_path = match (raw.timeout, litellm.request_timeout) {
        (None, Some(_)) => "litellm_settings.request_timeout",
        _ => "router_settings.timeout",
    };
    let default_timeouts = Timeouts {
        request: raw.timeout.or(litellm.request_timeout),
        stream: raw.stream_timeout,
    };
    for (path, value) in [
        (timeout_path, default_timeouts.request),
        ("router_settings.stream_timeout", default_timeouts.stream),
        ("router_settings.cooldown_time", raw.cooldown_time),
    ] {
        check_positive(value, path, path, &format!("{path} (seconds)"))?;
    }
    let failover = Failover {
        num_retries: raw.num_retries.or(litellm.num_retries).unwrap_or(DEFAULT_NUM_RETRIES),
        allowed_fails: raw
            .allowed_fails
            .or(litellm.allowed_fails)
            .unwrap_or(DEFAULT_ALLOWED_FAILS)
            .max(1),
        cooldown_seconds: raw.cooldown_time.unwrap_or(DEFAULT_COOLDOWN_SECONDS),
    };
    let aliases = raw
        .model_group_alias
        .into_iter()
        .map(|(name, alias)| match alias {
            RawAlias::Target(target) => Alias {
                name,
                target,
                hidden: false,
            },
            RawAlias::Entry { model, hidden } => Alias {
                name,
                target: model,
                hidden,
            },
        })
        .collect();
    let (section, fallbacks) = match raw.fallbacks {
        Some(fallbacks) => ("router_settings", fallbacks),
        None => ("litellm_settings", litellm.fallbacks),
    };
    let fallbacks = listed_fallbacks(section, fallbacks);
    let default_fallbacks = match (raw.default_fallbacks, litellm.default_fallbacks) {
        (Some(targets), _) => Some(("router_settings.default_fallbacks".to_owned(), targets)),
        (None, targets) if !targets.is_empty() => Some(("litellm_settings.default_fallbacks".to_owned(), targets)),
        (None, _) => None,
    };
    Ok(RouterSettings {
        aliases,
        fallbacks,
        default_fallbacks,
        default_timeouts,
        failover,
    })
}

/// `[{"gpt-4o": ["claude"]}, …]` as `(path, group, targets)`.
fn listed_fallbacks(
    section: &str,
    fallbacks: Vec<BTreeMap<String, Vec<String>>>,
) -> Vec<(String, String, Vec<String>)> {
    fallbacks
        .into_iter()
        .enumerate()
        .flat_map(|(index, entry)| {
            let path = format!("{section}.fallbacks[{index}]");
            entry
                .into_iter()
                .map(move |(group, targets)| (path.clone(), group, targets))
        })
        .collect()
}

/// `cluster_header`, lower-cased; the default when absent.
pub(super) fn cluster_header(raw: Option<String>) -> Result<String, ConfigError> {
    let Some(name) = raw else {
        return Ok(DEFAULT_CLUSTER_HEADER.to_owned());
    };
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() || !lower.bytes().all(is_token_byte) {
        return Err(key_error(
            "cluster_header",
            format!("`{name}` is not a valid header name"),
        ));
    }
    Ok(lower)
}
