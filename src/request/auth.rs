//! Client keys: which credential headers the client sent (none of them
//! reaches a provider), whether one is the master key or a virtual key, and
//! what a virtual key may call.

use crate::config::{hash_of, Config};
use crate::contract::filter_state;
use crate::model::{Deployment, VirtualKey};
use crate::request::head::Head;
pub use crate::request::head::{CLIENT_CREDENTIAL_HEADERS, KEY_HEADERS};
use crate::request::reply::{ErrorKind, LocalReply};

/// Who a request comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Caller {
    /// No client check is configured.
    #[default]
    Open,
    /// The master key: every model.
    Master,
    /// A virtual key: its index in the configuration's [`crate::model::KeyTable`].
    Key(usize),
}

impl Caller {
    /// The virtual key's index, for a request that came with one.
    pub fn key(self) -> Option<usize> {
        match self {
            Caller::Key(index) => Some(index),
            Caller::Open | Caller::Master => None,
        }
    }
}

/// The caller of a request, or the 401 that refuses it. `now` (seconds
/// since the Unix epoch) is asked only for a key that expires. The message
/// says why, never the key.
pub(crate) fn authenticate(config: &Config, head: &Head, now: &dyn Fn() -> u64) -> Result<Caller, LocalReply> {
    let keys = &config.keys;
    if config.master_key.is_none() && keys.keys.is_empty() {
        return Ok(Caller::Open);
    }
    if head.key_matches {
        return Ok(Caller::Master);
    }
    let refuse = |why: &str| Err(LocalReply::error(ErrorKind::InvalidApiKey, why, None));
    // No hash where there is no virtual key to find (a master key alone).
    let found = head
        .presented
        .iter()
        .flatten()
        .filter(|_| !keys.keys.is_empty())
        .find_map(|presented| keys.by_hash.get(&hash_of(presented)).copied());
    let Some(index) = found else {
        return refuse("missing or invalid client key: send `Authorization: Bearer <key>` or `x-api-key: <key>`");
    };
    let Some(key) = keys.keys.get(index) else {
        return refuse("invalid client key");
    };
    if key.blocked {
        return refuse(&format!("key `{}` is blocked", key.alias));
    }
    if key.expires_at.is_some_and(|at| now() >= at) {
        return refuse(&format!("key `{}` has expired", key.alias));
    }
    Ok(Caller::Key(index))
}

/// Whether `key` may call `requested`, which routes to `deployment`: an
/// exact name or a whole-match pattern of its `models`, for the model as
/// asked or the `model_name` it reached (through an alias or a model
/// family), or an access group of that deployment.
pub fn may_call(key: &VirtualKey, requested: &str, deployment: &Deployment) -> bool {
    let list = &key.models;
    let model_name = deployment.model_name.as_str();
    list.all
        || list.names.contains(requested)
        || list.names.contains(model_name)
        || list
            .patterns
            .iter()
            .any(|p| p.matches(requested) || p.matches(model_name))
        || deployment.access_groups.iter().any(|g| list.access_groups.contains(g))
}

/// The 401 for a model outside a key's `models`, as LiteLLM answers it.
pub fn access_denied(key: &VirtualKey, requested: &str) -> LocalReply {
    LocalReply::error(
        ErrorKind::KeyModelAccessDenied,
        &format!(
            "key `{}` may not call model `{requested}` (its `models` do not include it)",
            key.alias
        ),
        Some("model"),
    )
}

/// The filter state a forwarded keyed request leaves while it is read
/// (before Envoy's rate-limit filters run): its alias and team for the
/// access log and the rates filter, the same again where a budget applies
/// (so only those have a budget descriptor), and the model a per-model
/// limit knows it by. `model_name` is the route's; `alias_read`: an access
/// log or the rates filter reads the alias and team (else they are not
/// written).
pub fn key_facts<'k>(
    key: &'k VirtualKey,
    requested_model: &str,
    model_name: &str,
    alias_read: bool,
) -> [Option<(&'static str, &'k str)>; 5] {
    let team = key.team_id.as_deref();
    [
        alias_read.then_some((filter_state::KEY_ALIAS, key.alias.as_str())),
        team.filter(|_| alias_read).map(|team| (filter_state::TEAM_ID, team)),
        team.filter(|_| key.budgets.team)
            .map(|team| (filter_state::BUDGET_TEAM_ID, team)),
        key.budgets
            .key
            .then_some((filter_state::BUDGET_KEY_ALIAS, key.alias.as_str())),
        key.limited_model(requested_model, model_name)
            .map(|model| (filter_state::LIMITED_MODEL, model)),
    ]
}
