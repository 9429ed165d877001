//! `keys:` to a [`KeyTable`]: each key hashed (SHA-256, as LiteLLM stores
//! them) and its plain text dropped; `models` compiled to an [`Allowlist`].

use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};

use crate::config::limits;
use crate::config::raw::RawKey;
use crate::config::report::{error, ConfigError, Warning, WarningKind};
use crate::config::values::{resolve, Resolved};
use crate::model::pattern::Pattern;
use crate::model::{Allowlist, BudgetScopes, KeyTable, VirtualKey};

/// LiteLLM's name for "every model of the proxy".
const ALL_PROXY_MODELS: &str = "all-proxy-models";

pub(super) fn key_table(
    raw: Vec<RawKey>,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Warning>,
) -> Result<KeyTable, ConfigError> {
    let mut table = KeyTable {
        keys: Vec::with_capacity(raw.len()),
        by_hash: FxHashMap::default(),
    };
    for (index, key) in raw.into_iter().enumerate() {
        let path = format!("keys[{index}]");
        let at = match &key.key_alias {
            Some(alias) => format!("{path} (key_alias `{alias}`)"),
            None => path.clone(),
        };
        // Unset in the VM: this key cannot be used until it is set.
        let Some(hash) = key_hash(&key, &path, &at, env, warnings)? else {
            continue;
        };
        let expires_at = match &key.expires {
            None => None,
            Some(text) => Some(parse_expiry(text).ok_or_else(|| {
                error(
                    format!("{path}.expires"),
                    &at,
                    format!("`expires` `{text}` is not an RFC 3339 time (e.g. `2027-01-01T00:00:00Z`)"),
                )
            })?),
        };
        let alias = key.key_alias.unwrap_or_else(|| format!("key-{}", hex(&hash[..4])));
        if alias.is_empty() || !alias.bytes().all(|b| b.is_ascii_graphic() && b != b'.') {
            return Err(error(
                format!("{path}.key_alias"),
                &at,
                "`key_alias` must be printable ASCII without spaces or `.` (it labels metrics and logs)",
            ));
        }
        if table.by_hash.insert(hash, table.keys.len()).is_some() {
            return Err(error(&path, &at, "the same key is listed twice"));
        }
        let limits = limits::limits(
            key.rpm_limit,
            key.tpm_limit,
            key.max_budget,
            key.budget_duration.as_deref(),
            &path,
            &at,
        )?;
        table.keys.push(VirtualKey {
            budgets: BudgetScopes::default(),
            model_limits: limits::model_limits(key.model_rpm_limit, key.model_tpm_limit),
            limits,
            alias,
            team_id: key.team_id,
            user_id: key.user_id,
            expires_at,
            blocked: key.blocked,
            models: allowlist(key.models),
        });
    }
    Ok(table)
}

/// The SHA-256 of a key's `key` (read from the environment where written
/// so), or its `token` as given; `None` while its variable is unset.
fn key_hash(
    key: &RawKey,
    path: &str,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<[u8; 32]>, ConfigError> {
    match (&key.key, &key.token) {
        (Some(_), Some(_)) => Err(error(path, at, "give `key` or `token`, not both")),
        (None, None) => Err(error(
            path,
            at,
            "needs `key` (the key, or os.environ/NAME) or `token` (its SHA-256 hex)",
        )),
        (Some(value), None) => match resolve(value, env) {
            Resolved::Value(plain) if plain.is_empty() => Err(error(format!("{path}.key"), at, "`key` is empty")),
            Resolved::Value(plain) => Ok(Some(hash_of(plain.as_bytes()))),
            Resolved::Unset(variable) => {
                warnings.push(Warning::new(
                    format!("{path}.key"),
                    WarningKind::NotAsWritten(format!(
                        "environment variable `{variable}` is not set in the Wasm VM: this key is refused until it is"
                    )),
                ));
                Ok(None)
            }
        },
        (None, Some(token)) => parse_token(token).map(Some).ok_or_else(|| {
            error(
                format!("{path}.token"),
                at,
                "`token` must be the key's SHA-256 as 64 hex digits (LiteLLM's stored form)",
            )
        }),
    }
}

pub fn hash_of(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

fn parse_token(token: &str) -> Option<[u8; 32]> {
    let token = token.trim();
    if token.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(token.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(hash)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch. LiteLLM writes `Z` or an offset of
/// `+00:00`; other offsets are shifted to UTC.
fn parse_expiry(text: &str) -> Option<u64> {
    let text = text.trim();
    let (local, offset) = match text
        .len()
        .checked_sub(6)
        .and_then(|i| text.get(i..).map(|tail| (i, tail)))
    {
        Some((i, tail)) if (tail.starts_with('+') || tail.starts_with('-')) && tail.get(3..4) == Some(":") => {
            let sign: i64 = if tail.starts_with('-') { -1 } else { 1 };
            let hours: i64 = tail.get(1..3)?.parse().ok()?;
            let minutes: i64 = tail.get(4..6)?.parse().ok()?;
            (format!("{}Z", text.get(..i)?), sign * (hours * 3600 + minutes * 60))
        }
        _ => (text.replace(' ', "T"), 0),
    };
    let at = humantime::parse_rfc3339_weak(local.trim_end_matches('Z')).ok()?;
    let seconds = i64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    u64::try_from(seconds - offset).ok()
}

fn allowlist(models: Vec<String>) -> Allowlist {
    let mut list = Allowlist {
        all: models.is_empty(),
        names: FxHashSet::default(),
        patterns: Vec::new(),
        access_groups: FxHashSet::default(),
    };
    for model in models {
        if model == ALL_PROXY_MODELS {
            list.all = true;
        }
        // A name is an exact model or an access group: both are kept, as
        // LiteLLM reads it either way.
        match Pattern::parse(&model) {
            Some(pattern) => list.patterns.push(pattern),
            None => {
                list.access_groups.insert(model.clone());
                list.names.insert(model);
            }
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_times() {
        let rows: &[(&str, Option<u64>)] = &[
            ("2027-01-01T00:00:00Z", Some(1_798_761_600)),
            ("2027-01-01T00:00:00.123456Z", Some(1_798_761_600)),
            ("2027-01-01T00:00:00+00:00", Some(1_798_761_600)),
            ("2027-01-01T02:00:00+02:00", Some(1_798_761_600)),
            ("2026-12-31T19:00:00-05:00", Some(1_798_761_600)),
            ("2027-01-01 00:00:00", Some(1_798_761_600)),
            ("tomorrow", None),
            ("2027-13-01T00:00:00Z", None),
        ];
        for (text, expected) in rows {
            assert_eq!(parse_expiry(text), *expected, "{text}");
        }
    }

    #[test]
    fn tokens_are_64_hex_digits() {
        // sha256("password"), LiteLLM's docs' example.
        let token = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
        assert_eq!(parse_token(token), Some(hash_of(b"password")));
        assert_eq!(parse_token(&token.to_uppercase()), Some(hash_of(b"password")));
        assert_eq!(parse_token(&token[..63]), None);
        assert_eq!(parse_token(&format!("{}zz", &token[..62])), None);
    }
}
