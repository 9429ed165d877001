//! What one forwarded response comes to once it ends, as a plain value: its
//! token counts, whether its usage is unknown, its timings, and the facts
//! the access log reads from filter state. The host adapter counts and
//! writes what this says.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::contract::filter_state;
use crate::model::{Prices, VirtualKey};
use crate::response::cost::cost_micro_usd;
use crate::response::usage::Usage;

/// When a forwarded request's response arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub forwarded_at: SystemTime,
    /// The first byte of the body, if any came.
    pub first_byte_at: Option<SystemTime>,
    /// The provider answered 2xx: only then is the first byte a first
    /// token (an error body is not).
    pub answered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub usage: Usage,
    /// Counts in [`crate::contract::stats::TOKEN_TYPES`] order.
    pub tokens: [Option<u64>; 4],
    /// The response reported no count at all (compressed, not JSON nor an
    /// event stream, or a provider error).
    pub usage_unknown: bool,
    pub time_to_first_token_ms: Option<u64>,
    /// For a streamed response that reported its output tokens.
    pub time_per_output_token_ms: Option<u64>,
    /// Where the response reported usage and its model has prices.
    pub cost_micro_usd: Option<u64>,
}

impl Outcome {
    /// `now` is asked only when the per-token time needs the end of the
    /// stream (a clock read is a host call).
    pub fn new(usage: Usage, streamed: bool, timing: Timing, now: impl FnOnce() -> Option<SystemTime>) -> Outcome {
        let tokens = [usage.input, usage.output, usage.cached_input, usage.reasoning_output];
        let since = |at: SystemTime| at.duration_since(timing.forwarded_at).unwrap_or_default();
        let first_byte = timing.first_byte_at.filter(|_| timing.answered).map(since);
        let time_per_output_token_ms = first_byte
            .filter(|_| streamed)
            .zip(usage.output)
            .and_then(|(first, output)| time_per_output_token(first, since(now()?), output));
        Outcome {
            usage,
            tokens,
            usage_unknown: tokens.iter().all(Option::is_none),
            time_to_first_token_ms: first_byte.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            time_per_output_token_ms,
            cost_micro_usd: None,
        }
    }

    /// Prices the usage (`None`: the model has no price, so no cost).
    pub fn priced(self, prices: Option<&Prices>) -> Outcome {
        Outcome {
            cost_micro_usd: prices.and_then(|p| cost_micro_usd(&self.usage, p)),
            ..self
        }
    }

    /// The filter state the access log and Envoy's rate-limit filter read,
    /// `(key, value)`: the names always, each number only where it is known
    /// (an unset one logs as `-`; a number is written only as digits). What
    /// the rate-limit filters charge at the end of the stream is written
    /// wherever `charges` asks, as 0 where nothing is known (a failed or
    /// refused request): the rate-limit filter drops a charge that is not a
    /// number, with a warning. Without `logged` (no access log reads the
    /// facts) only the charges are written.
    pub fn filter_state_facts<'a>(
        &self,
        names: &Names<'a>,
        charges: Charges,
        logged: bool,
    ) -> [(&'static str, Option<Cow<'a, str>>); 9] {
        let number = |n: Option<u64>| n.map(|n| Cow::Owned(n.to_string()));
        let total_tokens = || {
            self.usage
                .input
                .unwrap_or(0)
                .saturating_add(self.usage.output.unwrap_or(0))
        };
        let name = |name: &'a str| logged.then_some(Cow::Borrowed(name));
        let logged_number = |n: Option<u64>| number(n.filter(|_| logged));
        let cost = match logged {
            true => self.cost_micro_usd.or(charges.cost.then_some(0)),
            false => charges.cost.then(|| self.cost_micro_usd.unwrap_or(0)),
        };
        [
            (filter_state::MODEL, name(names.requested_model)),
            (filter_state::ROUTE, name(names.route)),
            (filter_state::PROVIDER, name(names.provider)),
            (filter_state::UPSTREAM_MODEL, name(names.upstream_model)),
            (filter_state::INPUT_TOKENS, logged_number(self.usage.input)),
            (filter_state::OUTPUT_TOKENS, logged_number(self.usage.output)),
            (
                filter_state::TIME_TO_FIRST_TOKEN_MS,
                logged_number(self.time_to_first_token_ms),
            ),
            (filter_state::COST_MICRO_USD, number(cost)),
            (filter_state::TOTAL_TOKENS, number(charges.tokens.then(total_tokens))),
        ]
    }
}

/// The end-of-stream charges a response must leave as numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Charges {
    /// Total tokens: a keyed request where some limit is set (every key's
    /// requests and tokens are checked then).
    pub tokens: bool,
    /// The cost: a key under a budget.
    pub cost: bool,
}

impl Charges {
    /// What a response to `key` (none: the master key, or no client check)
    /// leaves, where `rates_limited` says some key or team has a rate limit.
    pub fn for_key(key: Option<&VirtualKey>, rates_limited: bool) -> Charges {
        Charges {
            tokens: key.is_some() && rates_limited,
            cost: key.is_some_and(|k| k.budgets.any()),
        }
    }
}

/// What a response's access-log line names.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub requested_model: &'a str,
    pub route: &'a str,
    pub provider: &'a str,
    pub upstream_model: &'a str,
}

/// Time per output token after the first, as OpenTelemetry's
/// `gen_ai.server.time_per_output_token` defines it: the time from the first
/// byte of the body to its end, over the output tokens after the first.
pub fn time_per_output_token(first_byte: Duration, end: Duration, output: u64) -> Option<u64> {
    let after_first = output.checked_sub(1).filter(|&n| n > 0)?;
    let streaming = end.checked_sub(first_byte)?;
    u64::try_from(streaming.as_millis() / u128::from(after_first)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn usage(input: Option<u64>, output: Option<u64>) -> Usage {
        Usage {
            input,
            output,
            ..Usage::default()
        }
    }

    #[test]
    fn time_per_output_token_counts_the_tokens_after_the_first() {
        let ms = Duration::from_millis;
        assert_eq!(time_per_output_token(ms(100), ms(1100), 11), Some(100));
        assert_eq!(time_per_output_token(ms(100), ms(1100), 1), None);
        assert_eq!(time_per_output_token(ms(100), ms(1100), 0), None);
        assert_eq!(time_per_output_token(ms(200), ms(100), 5), None);
    }

    #[test]
    fn outcomes() {
        // (usage, streamed, first byte, end) → (unknown, ttft, per token, clock read)
        type Row = (
            Usage,
            bool,
            Option<u64>,
            Option<u64>,
            (bool, Option<u64>, Option<u64>, bool),
        );
        let rows: &[Row] = &[
            // A JSON reply: no per-token time, so no clock read.
            (
                usage(Some(10), Some(5)),
                false,
                Some(300),
                Some(900),
                (false, Some(300), None, false),
            ),
            // A stream: 11 tokens over 1 s after the first byte.
            (
                usage(Some(10), Some(11)),
                true,
                Some(100),
                Some(1100),
                (false, Some(100), Some(100), true),
            ),
            // A stream with no output count: no clock read.
            (
                usage(Some(10), None),
                true,
                Some(100),
                Some(1100),
                (false, Some(100), None, false),
            ),
            // Nothing reported, no body.
            (Usage::default(), true, None, Some(1100), (true, None, None, false)),
            // A clock that went back: no negative times.
            (
                usage(None, Some(3)),
                true,
                Some(100),
                Some(50),
                (false, Some(100), None, true),
            ),
        ];
        for (i, &(usage, streamed, first, end, expected)) in rows.iter().enumerate() {
            let timing = Timing {
                forwarded_at: at(0),
                first_byte_at: first.map(at),
                answered: true,
            };
            let mut read_clock = false;
            let outcome = Outcome::new(usage, streamed, timing, || {
                read_clock = true;
                end.map(at)
            });
            let got = (
                outcome.usage_unknown,
                outcome.time_to_first_token_ms,
                outcome.time_per_output_token_ms,
                read_clock,
            );
            assert_eq!(got, expected, "row {i}");
            assert_eq!(outcome.tokens[0], usage.input);
            assert_eq!(outcome.tokens[1], usage.output);
        }
    }

    #[test]
    fn an_error_answer_has_no_time_to_first_token() {
        let timing = Timing {
            forwarded_at: at(0),
            first_byte_at: Some(at(30)),
            answered: false,
        };
        let mut read_clock = false;
        let outcome = Outcome::new(usage(None, Some(5)), true, timing, || {
            read_clock = true;
            Some(at(90))
        });
        assert_eq!(
            (outcome.time_to_first_token_ms, outcome.time_per_output_token_ms),
            (None, None)
        );
        assert!(!read_clock);
    }

    #[test]
    fn access_log_facts_name_the_route_and_write_numbers_only_when_known() {
        let timing = Timing {
            forwarded_at: at(0),
            first_byte_at: None,
            answered: true,
        };
        let outcome = Outcome::new(usage(Some(12), None), false, timing, || None);
        let names = Names {
            requested_model: "gpt-4o",
            route: "gpt-*",
            provider: "openai",
            upstream_model: "gpt-4o-2024",
        };
        let facts: Vec<(&str, Option<String>)> = outcome
            .filter_state_facts(&names, Charges::default(), true)
            .into_iter()
            .map(|(k, v)| (k, v.map(Cow::into_owned)))
            .collect();
        let expected: Vec<(&str, Option<String>)> = vec![
            ("llm_router.model", Some("gpt-4o".into())),
            ("llm_router.route", Some("gpt-*".into())),
            ("llm_router.provider", Some("openai".into())),
            ("llm_router.upstream_model", Some("gpt-4o-2024".into())),
            ("llm_router.input_tokens", Some("12".into())),
            ("llm_router.output_tokens", None),
            ("llm_router.time_to_first_token_ms", None),
            ("llm_router.cost_micro_usd", None),
            ("llm_router.total_tokens", None),
        ];
        assert_eq!(facts, expected);
    }

    /// $1 per million input tokens, $2 per million output tokens.
    const PRICES: Prices = Prices {
        input: 1e-6,
        output: 2e-6,
        cached_input: None,
    };

    #[test]
    fn a_keyed_response_always_leaves_its_charges_as_numbers() {
        let timing = Timing {
            forwarded_at: at(0),
            first_byte_at: None,
            answered: false,
        };
        let names = Names {
            requested_model: "m",
            route: "m",
            provider: "openai",
            upstream_model: "m",
        };
        let prices = PRICES;
        // (usage, prices) → (cost, total tokens)
        let rows: &[(Usage, Option<&Prices>, (Option<&str>, Option<&str>))] = &[
            // Refused by Envoy (a 429) or failed: nothing to charge, written as 0.
            (Usage::default(), Some(&prices), (Some("0"), Some("0"))),
            (usage(Some(100), Some(50)), Some(&prices), (Some("200"), Some("150"))),
            // A model without a price costs nothing.
            (usage(Some(100), Some(50)), None, (Some("0"), Some("150"))),
            (usage(None, Some(7)), None, (Some("0"), Some("7"))),
        ];
        for (i, &(usage, prices, expected)) in rows.iter().enumerate() {
            let outcome = Outcome::new(usage, false, timing, || None).priced(prices);
            // The same charges whether or not an access log reads the facts.
            for logged in [true, false] {
                let facts = outcome.filter_state_facts(
                    &names,
                    Charges {
                        tokens: true,
                        cost: true,
                    },
                    logged,
                );
                let value = |key: &str| {
                    facts
                        .iter()
                        .find(|(k, _)| *k == key)
                        .and_then(|(_, v)| v.as_deref().map(str::to_owned))
                };
                let got = (value("llm_router.cost_micro_usd"), value("llm_router.total_tokens"));
                assert_eq!(
                    (got.0.as_deref(), got.1.as_deref()),
                    expected,
                    "row {i}, logged {logged}"
                );
            }
        }
    }

    #[test]
    fn without_an_access_log_only_the_charges_are_written() {
        let timing = Timing {
            forwarded_at: at(0),
            first_byte_at: Some(at(40)),
            answered: true,
        };
        let names = Names {
            requested_model: "gpt-4o",
            route: "gpt-*",
            provider: "openai",
            upstream_model: "gpt-4o-2024",
        };
        let outcome = Outcome::new(usage(Some(100), Some(50)), false, timing, || None).priced(Some(&PRICES));
        // (charges) → the keys written
        let rows: &[(Charges, &[&str])] = &[
            (Charges::default(), &[]),
            (
                Charges {
                    tokens: true,
                    cost: false,
                },
                &["llm_router.total_tokens"],
            ),
            (
                Charges {
                    tokens: true,
                    cost: true,
                },
                &["llm_router.cost_micro_usd", "llm_router.total_tokens"],
            ),
        ];
        for (i, &(charges, expected)) in rows.iter().enumerate() {
            let written: Vec<&str> = outcome
                .filter_state_facts(&names, charges, false)
                .into_iter()
                .filter_map(|(key, value)| value.map(|_| key))
                .collect();
            assert_eq!(written, expected, "row {i}");
        }
        // With the log, a priced response's cost is written uncharged.
        let logged = outcome.filter_state_facts(&names, Charges::default(), true);
        assert!(logged
            .iter()
            .all(|(key, value)| value.is_some() || *key == "llm_router.total_tokens"));
    }
}
