//! The limits a compiled configuration sets, as a rate-limit service
//! counts them: one [`Rule`] per (key or team, kind of limit), found from a
//! descriptor's entries. Not used by the filter itself (it only writes the
//! descriptors' values and charges); `llm-router-limits` and the generator
//! read a configuration through this.

use crate::config::Config;
use crate::contract::rate_limit::{BUDGET, KEY_ENTRY, LIMIT_ENTRY, MODEL_ENTRY, REQUESTS, TEAM_ENTRY, TOKENS};
use crate::model::{Limits, ModelLimit};

/// A day, the unit of budget windows.
pub const DAY_SECONDS: u64 = 86_400;
/// A budget without `budget_duration` never resets: a window far longer
/// than any deployment (100 years).
pub const NEVER_SECONDS: u64 = 100 * 365 * DAY_SECONDS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `rpm_limit`: one per request, per minute.
    Requests,
    /// `tpm_limit`: input plus output tokens, per minute.
    Tokens,
    /// `max_budget`: micro-dollars per `budget_duration`.
    Budget,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Requests, Kind::Tokens, Kind::Budget];

    /// Its value in the descriptor's `limit` entry.
    pub fn descriptor_value(self) -> &'static str {
        match self {
            Kind::Requests => REQUESTS,
            Kind::Tokens => TOKENS,
            Kind::Budget => BUDGET,
        }
    }

    fn of_descriptor_value(value: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.descriptor_value() == value)
    }
}

/// Whose limit: a key (by alias), a team, or a key on one model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Key(String),
    Team(String),
    KeyModel { key: String, model: String },
}

impl Subject {
    /// Its descriptor entries but `limit`, in the order the generator
    /// writes them.
    pub fn entries(&self) -> Vec<(&'static str, &str)> {
        match self {
            Subject::Key(key) => vec![(KEY_ENTRY, key)],
            Subject::Team(team) => vec![(TEAM_ENTRY, team)],
            Subject::KeyModel { key, model } => vec![(KEY_ENTRY, key), (MODEL_ENTRY, model)],
        }
    }

    /// Whose it is, for people: "key `a`", "team `t`", "key `a` on model `m`".
    pub fn describe(&self) -> String {
        match self {
            Subject::Key(key) => format!("key `{key}`"),
            Subject::Team(team) => format!("team `{team}`"),
            Subject::KeyModel { key, model } => format!("key `{key}` on model `{model}`"),
        }
    }
}

/// One limit to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub subject: Subject,
    pub kind: Kind,
    /// Requests, tokens, or micro-dollars per window.
    pub max: u64,
    pub window_seconds: u64,
}

impl Rule {
    /// Which limit, for people: "10 requests per minute", "a budget of
    /// $5.000000 per day".
    pub fn describe(&self) -> String {
        let window = match self.window_seconds {
            NEVER_SECONDS => "in all".to_owned(),
            60 => "per minute".to_owned(),
            3_600 => "per hour".to_owned(),
            DAY_SECONDS => "per day".to_owned(),
            s if s == 7 * DAY_SECONDS => "per week".to_owned(),
            s if s == 30 * DAY_SECONDS => "per month".to_owned(),
            s if s.is_multiple_of(DAY_SECONDS) => format!("per {} days", s / DAY_SECONDS),
            s => format!("per {s} s"),
        };
        match self.kind {
            Kind::Requests => format!("{} requests {window}", self.max),
            Kind::Tokens => format!("{} tokens {window}", self.max),
            Kind::Budget => format!(
                "a budget of ${}.{:06} {window}",
                self.max / 1_000_000,
                self.max % 1_000_000
            ),
        }
    }
}

/// Every limit `config` sets, keys first, each in `Kind` order.
pub fn rules(config: &Config) -> Vec<Rule> {
    let keys = config
        .keys
        .keys
        .iter()
        .map(|k| (Subject::Key(k.alias.clone()), &k.limits));
    let teams = config
        .teams
        .iter()
        .map(|t| (Subject::Team(t.team_id.clone()), &t.limits));
    let per_model = config.keys.keys.iter().flat_map(|k| {
        k.model_limits.iter().map(|(model, &ModelLimit { rpm, tpm })| {
            let subject = Subject::KeyModel {
                key: k.alias.clone(),
                model: model.clone(),
            };
            (subject, Limits { rpm, tpm, budget: None })
        })
    });
    let mut rules: Vec<Rule> = keys
        .chain(teams)
        .flat_map(|(subject, limits)| rules_of(subject, limits))
        .collect();
    rules.extend(per_model.flat_map(|(subject, limits)| rules_of(subject, &limits)));
    rules
}

fn rules_of(subject: Subject, limits: &Limits) -> Vec<Rule> {
    let rule = |kind, max, window_seconds| Rule {
        subject: subject.clone(),
        kind,
        max,
        window_seconds,
    };
    let mut rules = Vec::new();
    if let Some(rpm) = limits.rpm {
        rules.push(rule(Kind::Requests, rpm, 60));
    }
    if let Some(tpm) = limits.tpm {
        rules.push(rule(Kind::Tokens, tpm, 60));
    }
    if let Some(budget) = limits.budget {
        rules.push(rule(
            Kind::Budget,
            budget.max_micro_usd,
            budget.window_seconds.unwrap_or(NEVER_SECONDS),
        ));
    }
    rules
}

/// The (subject, kind) a descriptor names: a key or a team, a key and a
/// model, and a `limit` entry, each once, in any order. Anything else names
/// no limit of ours.
pub fn descriptor_limit<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<(Subject, Kind)> {
    let (mut key, mut team, mut model, mut kind) = (None, None, None, None);
    for (entry, value) in entries {
        let slot = match entry {
            KEY_ENTRY => &mut key,
            TEAM_ENTRY => &mut team,
            MODEL_ENTRY => &mut model,
            LIMIT_ENTRY => &mut kind,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let subject = match (key, team, model) {
        (Some(key), None, None) => Subject::Key(key.to_owned()),
        (None, Some(team), None) => Subject::Team(team.to_owned()),
        (Some(key), None, Some(model)) => Subject::KeyModel {
            key: key.to_owned(),
            model: model.to_owned(),
        },
        _ => return None,
    };
    Some((subject, Kind::of_descriptor_value(kind?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_from_keys_and_teams() {
        let config = crate::config::compile(
            br#"{"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}],
              "keys": [{"key_alias": "a", "key": "sk-a", "team_id": "t", "rpm_limit": 10, "tpm_limit": 1000,
                        "model_rpm_limit": {"m": 2}, "model_tpm_limit": {"m": 300}},
                       {"key_alias": "b", "key": "sk-b", "max_budget": 2.5, "budget_duration": "1d"},
                       {"key_alias": "c", "key": "sk-c", "max_budget": 1}],
              "teams": [{"team_id": "t", "tpm_limit": 5000}]}"#,
            &|_| None,
        );
        let Ok(config) = config else {
            panic!("compiles: {config:?}");
        };
        let rules: Vec<(Subject, Kind, u64, u64)> = rules(&config)
            .into_iter()
            .map(|r| (r.subject, r.kind, r.max, r.window_seconds))
            .collect();
        let key = |s: &str| Subject::Key(s.to_owned());
        assert_eq!(
            rules,
            vec![
                (key("a"), Kind::Requests, 10, 60),
                (key("a"), Kind::Tokens, 1_000, 60),
                (key("b"), Kind::Budget, 2_500_000, 86_400),
                (key("c"), Kind::Budget, 1_000_000, NEVER_SECONDS),
                (Subject::Team("t".to_owned()), Kind::Tokens, 5_000, 60),
                (
                    Subject::KeyModel {
                        key: "a".to_owned(),
                        model: "m".to_owned()
                    },
                    Kind::Requests,
                    2,
                    60
                ),
                (
                    Subject::KeyModel {
                        key: "a".to_owned(),
                        model: "m".to_owned()
                    },
                    Kind::Tokens,
                    300,
                    60
                ),
            ]
        );
        assert!(config.rates_limited, "every keyed response leaves its tokens");
    }

    #[test]
    fn descriptors_name_a_limit() {
        let key = |s: &str| Some((Subject::Key(s.to_owned()), Kind::Requests));
        let rows: &[(&[(&str, &str)], Option<(Subject, Kind)>)] = &[
            (&[("key_alias", "a"), ("limit", "requests")], key("a")),
            (&[("limit", "requests"), ("key_alias", "a")], key("a")),
            (
                &[("team_id", "t"), ("limit", "budget")],
                Some((Subject::Team("t".to_owned()), Kind::Budget)),
            ),
            (&[("key_alias", "a")], None),
            (&[("limit", "tokens")], None),
            (&[("key_alias", "a"), ("limit", "requests"), ("path", "/x")], None),
            (&[("key_alias", "a"), ("team_id", "t"), ("limit", "tokens")], None),
            (&[("key_alias", "a"), ("limit", "seconds")], None),
            (&[("key_alias", "a"), ("limit", "requests"), ("limit", "tokens")], None),
            (
                &[("key_alias", "a"), ("model", "m"), ("limit", "tokens")],
                Some((
                    Subject::KeyModel {
                        key: "a".to_owned(),
                        model: "m".to_owned(),
                    },
                    Kind::Tokens,
                )),
            ),
            (&[("team_id", "t"), ("model", "m"), ("limit", "tokens")], None),
            (&[("model", "m"), ("limit", "tokens")], None),
        ];
        for (i, (entries, expected)) in rows.iter().enumerate() {
            assert_eq!(&descriptor_limit(entries.iter().copied()), expected, "row {i}");
        }
    }

    #[test]
    fn limits_are_described_for_people() {
        let rule = |kind, max, window_seconds| Rule {
            subject: Subject::Key("a".to_owned()),
            kind,
            max,
            window_seconds,
        };
        assert_eq!(rule(Kind::Requests, 10, 60).describe(), "10 requests per minute");
        assert_eq!(rule(Kind::Tokens, 500, 60).describe(), "500 tokens per minute");
        assert_eq!(
            rule(Kind::Budget, 2_500_000, 86_400).describe(),
            "a budget of $2.500000 per day"
        );
        assert_eq!(
            rule(Kind::Budget, 1, 2 * 86_400).describe(),
            "a budget of $0.000001 per 2 days"
        );
        assert_eq!(rule(Kind::Tokens, 5, 90).describe(), "5 tokens per 90 s");
        assert_eq!(
            rule(Kind::Budget, 10, NEVER_SECONDS).describe(),
            "a budget of $0.000010 in all"
        );
    }
}
