//! Virtual keys: who may call, what, and within which limits.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::model::limits::Limits;
use crate::model::pattern::Pattern;

/// The virtual keys, by the SHA-256 of the key (LiteLLM's stored form):
/// the plain keys are never kept.
#[derive(Debug, Default)]
pub struct KeyTable {
    pub keys: Vec<VirtualKey>,
    pub by_hash: FxHashMap<[u8; 32], usize>,
}

impl KeyTable {
    pub fn has_model_limits(&self) -> bool {
        self.keys.iter().any(|k| !k.model_limits.is_empty())
    }
}

/// One `keys:` entry.
#[derive(Debug)]
pub struct VirtualKey {
    /// `key_alias`, else `key-` and the first 8 hex digits of its hash:
    /// its name in metrics, logs and errors.
    pub alias: String,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// Seconds since the Unix epoch after which it is refused.
    pub expires_at: Option<u64>,
    pub blocked: bool,
    pub models: Allowlist,
    /// `rpm_limit`, `tpm_limit`, `max_budget` (enforced by Envoy's
    /// rate-limit filter and a rate-limit service, not here).
    pub limits: Limits,
    /// Whose budgets its requests are checked and charged against: only
    /// these get a budget descriptor, so that a budget service that is
    /// down (failing closed) refuses no other key.
    pub budgets: BudgetScopes,
    /// `model_rpm_limit` and `model_tpm_limit`, by model name.
    pub model_limits: BTreeMap<String, ModelLimit>,
}

impl VirtualKey {
    /// The name its per-model limits know this request by: the model as
    /// requested, else the `model_name` it routes to (LiteLLM keys them by
    /// the model group).
    pub fn limited_model<'a>(&'a self, requested: &str, model_name: &str) -> Option<&'a str> {
        [requested, model_name]
            .into_iter()
            .find_map(|name| self.model_limits.get_key_value(name))
            .map(|(name, _)| name.as_str())
    }
}

/// One model's limits for one key, per minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelLimit {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetScopes {
    /// The key's own `max_budget`.
    pub key: bool,
    /// Its team's.
    pub team: bool,
}

impl BudgetScopes {
    pub fn any(self) -> bool {
        self.key || self.team
    }
}

/// What a key may call (`models`), as LiteLLM means it.
#[derive(Debug, Default)]
pub struct Allowlist {
    /// Empty `models`, or `all-proxy-models`.
    pub all: bool,
    /// Exact names: a model as requested, or the `model_name` it routes to
    /// (through an alias or a bare-name family).
    pub names: FxHashSet<String>,
    /// `*` patterns, matched whole against both.
    pub patterns: Vec<Pattern>,
    /// `model_info.access_groups` names.
    pub access_groups: FxHashSet<String>,
}
