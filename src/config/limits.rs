//! Limits and prices: `rpm_limit`, `tpm_limit`, `max_budget` and
//! `budget_duration` on keys and `teams:`, per-token prices on a deployment
//! and in `model_prices`, and what Envoy does while the rate-limit service
//! is down. The filter enforces none of it: it writes what Envoy's
//! rate-limit filter charges, and `llm-router-limits` reads the limits
//! through this same compiler.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::raw::{OpenOrClosed, RawPrices, RawTeam, RawUnavailableLimits};
use crate::config::report::{error, ConfigError};
use crate::model::{Budget, BudgetScopes, KeyTable, Limits, ModelLimit, Prices, Team};

/// What Envoy does with a request while the rate-limit service cannot be
/// asked (down, or slower than its timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnavailableLimits {
    /// `rpm_limit` and `tpm_limit`: pass by default (a counter and a log
    /// line say so), as a rate limit protects capacity, not money.
    pub rates_allow: bool,
    /// `max_budget`: refused by default (503), as a budget is money.
    pub budgets_allow: bool,
}

impl Default for UnavailableLimits {
    fn default() -> Self {
        UnavailableLimits {
            rates_allow: true,
            budgets_allow: false,
        }
    }
}

pub(super) fn unavailable(raw: Option<RawUnavailableLimits>) -> UnavailableLimits {
    let raw = raw.unwrap_or_default();
    let defaults = UnavailableLimits::default();
    let allow = |value: Option<OpenOrClosed>, default| value.map_or(default, |v| v == OpenOrClosed::Allow);
    UnavailableLimits {
        rates_allow: allow(raw.rates, defaults.rates_allow),
        budgets_allow: allow(raw.budgets, defaults.budgets_allow),
    }
}

/// A key's or team's limits as written, checked.
pub(super) fn limits(
    rpm: Option<u64>,
    tpm: Option<u64>,
    max_budget: Option<f64>,
    budget_duration: Option<&str>,
    path: &str,
    at: &str,
) -> Result<Limits, ConfigError> {
    let budget = match max_budget {
        None => {
            if budget_duration.is_some() {
                return Err(error(
                    format!("{path}.budget_duration"),
                    at,
                    "`budget_duration` needs a `max_budget`",
                ));
            }
            None
        }
        Some(dollars) if !(dollars.is_finite() && dollars >= 0.0) => {
            return Err(error(
                format!("{path}.max_budget"),
                at,
                "`max_budget` must be a number of US dollars, 0 or more",
            ))
        }
        Some(dollars) => {
            let window_seconds = match budget_duration {
                None => None,
                Some(text) => Some(duration_seconds(text).ok_or_else(|| {
                    error(
                        format!("{path}.budget_duration"),
                        at,
                        format!("`budget_duration` `{text}` is not a duration LiteLLM reads (`30s`, `30m`, `1h`, `1d`, `1w`, `1mo`)"),
                    )
                })?),
            };
            Some(Budget {
                max_micro_usd: micro_usd(dollars),
                window_seconds,
            })
        }
    };
    Ok(Limits { rpm, tpm, budget })
}

/// Dollars to whole micro-dollars, rounded; saturates far above any budget.
pub fn micro_usd(dollars: f64) -> u64 {
    // A float to int `as` saturates and maps NaN to 0: no panic, no wrap.
    (dollars * 1e6).round() as u64
}

/// LiteLLM's `budget_duration` (its `duration_in_seconds`): a whole number
/// and a unit, `s`, `m`, `h`, `d`, `w`, or `mo` (taken as 30 days).
pub fn duration_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok().filter(|&n| n > 0)?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 30 * 86_400,
        _ => return None,
    };
    number.checked_mul(unit_seconds)
}

pub(super) fn teams(raw: Vec<RawTeam>) -> Result<Vec<Team>, ConfigError> {
    let mut seen = FxHashSet::default();
    let mut teams = Vec::with_capacity(raw.len());
    for (index, team) in raw.into_iter().enumerate() {
        let path = format!("teams[{index}]");
        let at = format!("{path} (team_id `{}`)", team.team_id);
        if team.team_id.is_empty() || !seen.insert(team.team_id.clone()) {
            return Err(error(
                format!("{path}.team_id"),
                &at,
                "`team_id` must be given, once per team",
            ));
        }
        let limits = limits(
            team.rpm_limit,
            team.tpm_limit,
            team.max_budget,
            team.budget_duration.as_deref(),
            &path,
            &at,
        )?;
        teams.push(Team {
            team_id: team.team_id,
            limits,
        });
    }
    Ok(teams)
}

/// Whether some key or team has an `rpm_limit` or `tpm_limit`: then Envoy's
/// rate-limit filter checks every keyed request for both, and every keyed
/// response leaves its tokens (the charge's descriptor cannot tell a
/// limited key from another, and a charge that is not a number costs Envoy
/// a warning per request).
pub(super) fn any_rate_limit(keys: &KeyTable, teams: &[Team]) -> bool {
    keys.has_model_limits()
        || keys
            .keys
            .iter()
            .map(|k| &k.limits)
            .chain(teams.iter().map(|t| &t.limits))
            .any(|l| l.rpm.is_some() || l.tpm.is_some())
}

/// `model_rpm_limit` and `model_tpm_limit` side by side, by model.
pub(super) fn model_limits(rpm: BTreeMap<String, u64>, tpm: BTreeMap<String, u64>) -> BTreeMap<String, ModelLimit> {
    let mut limits: BTreeMap<String, ModelLimit> = BTreeMap::new();
    for (model, n) in rpm {
        limits.entry(model).or_default().rpm = Some(n);
    }
    for (model, n) in tpm {
        limits.entry(model).or_default().tpm = Some(n);
    }
    limits
}

/// Marks each key with the budgets it is under: its own, its team's.
pub(super) fn set_budget_scopes(keys: &mut KeyTable, teams: &[Team]) {
    let budgeted_teams: FxHashSet<&str> = teams
        .iter()
        .filter(|t| t.limits.budget.is_some())
        .map(|t| t.team_id.as_str())
        .collect();
    for key in &mut keys.keys {
        key.budgets = BudgetScopes {
            key: key.limits.budget.is_some(),
            team: key.team_id.as_deref().is_some_and(|t| budgeted_teams.contains(t)),
        };
    }
}

/// A deployment's own prices: both per-token prices, from `litellm_params`
/// or else `model_info`; `None` where neither gives them.
pub(super) fn own_prices(params: [Option<f64>; 3], info: [Option<f64>; 3]) -> Option<Prices> {
    let [input, output, cached] =
        [0, 1, 2].map(|i| params.get(i).copied().flatten().or(info.get(i).copied().flatten()));
    prices(input, output, cached)
}

fn prices(input: Option<f64>, output: Option<f64>, cached_input: Option<f64>) -> Option<Prices> {
    let valid = |p: Option<f64>| p.filter(|p| p.is_finite() && *p >= 0.0);
    match (valid(input), valid(output)) {
        (None, None) => None,
        (input, output) => Some(Prices {
            input: input.unwrap_or(0.0),
            output: output.unwrap_or(0.0),
            cached_input: valid(cached_input),
        }),
    }
}

pub(super) fn price_table(raw: BTreeMap<String, RawPrices>) -> FxHashMap<String, Prices> {
    raw.into_iter()
        .filter_map(|(model, row)| {
            let prices = prices(
                row.input_cost_per_token,
                row.output_cost_per_token,
                row.cache_read_input_token_cost,
            )?;
            Some((model, prices))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_durations_as_litellm_reads_them() {
        let rows: &[(&str, Option<u64>)] = &[
            ("30s", Some(30)),
            ("30m", Some(1_800)),
            ("1h", Some(3_600)),
            ("1d", Some(86_400)),
            ("7d", Some(604_800)),
            ("1w", Some(604_800)),
            ("1mo", Some(2_592_000)),
            ("30d", Some(2_592_000)),
            (" 2h ", Some(7_200)),
            ("0d", None),
            ("d", None),
            ("1y", None),
            ("1.5h", None),
            ("-1h", None),
            ("99999999999999999999s", None),
        ];
        for &(text, expected) in rows {
            assert_eq!(duration_seconds(text), expected, "{text}");
        }
    }

    #[test]
    fn budgets_in_micro_dollars() {
        let rows: &[(f64, u64)] = &[(10.0, 10_000_000), (0.000_001, 1), (0.0, 0), (1e30, u64::MAX)];
        for &(dollars, micro) in rows {
            assert_eq!(micro_usd(dollars), micro, "{dollars}");
        }
        let limits = limits(None, None, Some(2.5), Some("1d"), "keys[0]", "keys[0]").ok();
        assert_eq!(
            limits.and_then(|l| l.budget),
            Some(Budget {
                max_micro_usd: 2_500_000,
                window_seconds: Some(86_400)
            })
        );
    }

    #[test]
    fn a_duration_without_a_budget_or_a_negative_budget_is_refused() {
        let e = limits(None, None, None, Some("1d"), "keys[0]", "keys[0]").err();
        assert_eq!(e.map(|e| e.path), Some("keys[0].budget_duration".to_owned()));
        let e = limits(None, None, Some(-1.0), None, "teams[1]", "teams[1]").err();
        assert_eq!(e.map(|e| e.path), Some("teams[1].max_budget".to_owned()));
        let e = limits(None, None, Some(1.0), Some("soon"), "keys[0]", "keys[0]").err();
        assert_eq!(e.map(|e| e.path), Some("keys[0].budget_duration".to_owned()));
    }

    #[test]
    fn own_prices_take_litellm_params_first() {
        let p = own_prices([Some(1e-6), None, None], [Some(9e-6), Some(2e-6), Some(5e-7)]);
        assert_eq!(
            p,
            Some(Prices {
                input: 1e-6,
                output: 2e-6,
                cached_input: Some(5e-7)
            })
        );
        assert_eq!(own_prices([None; 3], [None, None, Some(1e-7)]), None);
        assert_eq!(own_prices([Some(f64::NAN), None, None], [None; 3]), None);
    }
}
