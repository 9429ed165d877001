//! Counts kept in the VM and handed to Envoy once a second: a host call per
//! request per counter would cost more than routing the request. Each
//! metric is defined in Envoy on its first use, so routes that see no
//! traffic cost nothing, however long the table. The host is behind
//! [`Stats`], so the batching is tested natively.

use std::cell::Cell;

use crate::config::Config;
use crate::contract::stats::{self, TOKEN_TYPES};
use crate::request::reply::ErrorKind;
use crate::response::outcome::Outcome;

/// Envoy's metrics, as the filter uses them.
pub trait Stats {
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32>;
    /// Whether Envoy took the increment.
    fn increment(&self, id: u32, by: u64) -> bool;
    fn record(&self, id: u32, value: u64);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Histogram,
}

/// A metric's id in Envoy, defined on first use.
#[derive(Default)]
struct MetricId(Cell<Option<u32>>);

impl MetricId {
    fn get(&self, host: &impl Stats, kind: MetricKind, name: impl FnOnce() -> String) -> Option<u32> {
        if let Some(id) = self.0.get() {
            return Some(id);
        }
        let id = host.define(kind, &name())?;
        self.0.set(Some(id));
        Some(id)
    }
}

#[derive(Default)]
pub struct Counter {
    id: MetricId,
    pending: Cell<u64>,
}

impl Counter {
    pub fn add(&self, by: u64) {
        self.pending.set(self.pending.get().saturating_add(by));
    }

    /// Hands the pending count to Envoy, defining the counter as `name()` the first time.
    fn flush(&self, host: &impl Stats, name: impl FnOnce() -> String) {
        let pending = self.pending.get();
        if pending == 0 {
            return;
        }
        let Some(id) = self.id.get(host, MetricKind::Counter, name) else {
            return;
        };
        if host.increment(id, pending) {
            self.pending.set(0);
        }
    }
}

/// A histogram, defined in Envoy on its first value. Values go to Envoy one
/// by one (a histogram cannot be batched like a counter), once per response.
#[derive(Default)]
struct Histogram {
    id: MetricId,
}

impl Histogram {
    fn record(&self, host: &impl Stats, value: u64, name: impl FnOnce() -> String) {
        if let Some(id) = self.id.get(host, MetricKind::Histogram, name) {
            host.record(id, value);
        }
    }
}

/// The downstream filter's metrics, per route slot ([`crate::route::Router::slots`]).
pub struct Counters {
    requests: Vec<Counter>,
    body_bytes: Vec<Counter>,
    tokens: Vec<[Counter; TOKEN_TYPES.len()]>,
    usage_unknown: Vec<Counter>,
    replies: [Counter; ErrorKind::ALL.len()],
    time_to_first_token: Vec<Histogram>,
    time_per_output_token: Vec<Histogram>,
    /// Per virtual key: requests, input tokens, output tokens, spend.
    keys: Vec<[Counter; 4]>,
}

impl Counters {
    pub fn new(routes: usize, keys: usize) -> Counters {
        Counters {
            requests: (0..routes).map(|_| Counter::default()).collect(),
            body_bytes: (0..routes).map(|_| Counter::default()).collect(),
            tokens: (0..routes).map(|_| Default::default()).collect(),
            usage_unknown: (0..routes).map(|_| Counter::default()).collect(),
            replies: Default::default(),
            time_to_first_token: (0..routes).map(|_| Histogram::default()).collect(),
            time_per_output_token: (0..routes).map(|_| Histogram::default()).collect(),
            keys: (0..keys).map(|_| Default::default()).collect(),
        }
    }

    /// A request forwarded for virtual key `key`.
    pub fn count_key_request(&self, key: usize) {
        if let Some([requests, ..]) = self.keys.get(key) {
            requests.add(1);
        }
    }

    /// The tokens and cost of a response to virtual key `key`.
    pub fn count_key_tokens(&self, key: usize, outcome: &Outcome) {
        if let Some([_, input, output, spend]) = self.keys.get(key) {
            input.add(outcome.usage.input.unwrap_or(0));
            output.add(outcome.usage.output.unwrap_or(0));
            spend.add(outcome.cost_micro_usd.unwrap_or(0));
        }
    }

    /// A request forwarded on `route`, with its body's size.
    pub fn count_forward(&self, route: usize, body_bytes: usize) {
        if let (Some(requests), Some(bytes)) = (self.requests.get(route), self.body_bytes.get(route)) {
            requests.add(1);
            bytes.add(body_bytes as u64);
        }
    }

    pub fn count_reply(&self, kind: ErrorKind) {
        if let Some(counter) = self.replies.get(kind.index()) {
            counter.add(1);
        }
    }

    /// A response's tokens and usage counted now; its timings recorded in
    /// Envoy's histograms now (they cannot wait for the flush).
    pub fn count_response(&self, host: &impl Stats, config: &Config, route: usize, outcome: &Outcome) {
        if outcome.usage_unknown {
            if let Some(c) = self.usage_unknown.get(route) {
                c.add(1);
            }
        }
        for (counter, count) in self.tokens.get(route).into_iter().flatten().zip(outcome.tokens) {
            counter.add(count.unwrap_or(0));
        }
        let Some((model_name, provider)) = config.router.slots().get(route) else {
            return;
        };
        let name = |histogram: &str| stats::route_counter(histogram, model_name, provider);
        let histograms = [
            (
                &self.time_to_first_token,
                outcome.time_to_first_token_ms,
                stats::TIME_TO_FIRST_TOKEN,
            ),
            (
                &self.time_per_output_token,
                outcome.time_per_output_token_ms,
                stats::TIME_PER_OUTPUT_TOKEN,
            ),
        ];
        for (histograms, value, metric) in histograms {
            if let (Some(ms), Some(h)) = (value, histograms.get(route)) {
                h.record(host, ms, || name(metric));
            }
        }
    }

    pub fn flush(&self, host: &impl Stats, config: &Config) {
        for (route, (model_name, provider)) in config.router.slots().iter().enumerate() {
            let name = |counter| stats::route_counter(counter, model_name, provider);
            let per_route = [
                (&self.requests, stats::REQUESTS),
                (&self.body_bytes, stats::BODY_BYTES),
                (&self.usage_unknown, stats::USAGE_UNKNOWN),
            ];
            for (counters, metric) in per_route {
                if let Some(c) = counters.get(route) {
                    c.flush(host, || name(metric));
                }
            }
            for (counter, kind) in self.tokens.get(route).into_iter().flatten().zip(TOKEN_TYPES) {
                counter.flush(host, || {
                    stats::typed_route_counter(stats::TOKENS, model_name, provider, kind)
                });
            }
        }
        for (counter, kind) in self.replies.iter().zip(ErrorKind::ALL) {
            counter.flush(host, || stats::reply_counter(kind.code()));
        }
        for ([requests, input, output, spend], key) in self.keys.iter().zip(&config.keys.keys) {
            let team = key.team_id.as_deref();
            requests.flush(host, || stats::key_counter(stats::KEY_REQUESTS, &key.alias, team));
            spend.flush(host, || stats::key_counter(stats::KEY_SPEND, &key.alias, team));
            for (counter, kind) in [input, output].into_iter().zip(stats::KEY_TOKEN_TYPES) {
                counter.flush(host, || {
                    stats::typed_key_counter(stats::KEY_TOKENS, &key.alias, team, kind)
                });
            }
        }
    }
}

/// What an attempt of a group's request came to, per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEvent {
    Sent = 0,
    /// A 429, a 5xx, or no response.
    Failed = 1,
    /// Not the request's first attempt.
    Failover = 2,
}

/// The upstream filter's counts, per deployment slot, in
/// [`stats::ATTEMPT_COUNTERS`] order.
pub struct AttemptCounters {
    by_slot: Vec<[Counter; 3]>,
}

impl AttemptCounters {
    pub fn new(slots: usize) -> AttemptCounters {
        AttemptCounters {
            by_slot: (0..slots).map(|_| Default::default()).collect(),
        }
    }

    pub fn add(&self, slot: usize, event: AttemptEvent) {
        if let Some(counter) = self.by_slot.get(slot).and_then(|c| c.get(event as usize)) {
            counter.add(1);
        }
    }

    pub fn flush(&self, host: &impl Stats, config: &Config) {
        for (slot, counters) in self.by_slot.iter().enumerate() {
            let Some(id) = config.router.deployment_of_slot(slot) else {
                continue;
            };
            for (counter, name) in counters.iter().zip(stats::ATTEMPT_COUNTERS) {
                counter.flush(host, || stats::deployment_counter(name, id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::SystemTime;

    use super::*;
    use crate::config::tests::{compile_test, SEED};
    use crate::response::outcome::Timing;
    use crate::response::Usage;

    /// Envoy's side: defined names, counter values, histogram values, and
    /// every host call made.
    #[derive(Default)]
    struct FakeEnvoy {
        names: RefCell<Vec<(MetricKind, String)>>,
        counters: RefCell<Vec<u64>>,
        recorded: RefCell<Vec<(String, u64)>>,
        calls: Cell<usize>,
        refuse_increments: Cell<bool>,
    }

    impl FakeEnvoy {
        fn counter(&self, name: &str) -> Option<u64> {
            let names = self.names.borrow();
            let id = names.iter().position(|(_, n)| n == name)?;
            self.counters.borrow().get(id).copied()
        }
    }

    impl Stats for FakeEnvoy {
        fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
            self.calls.set(self.calls.get() + 1);
            let mut names = self.names.borrow_mut();
            names.push((kind, name.to_owned()));
            self.counters.borrow_mut().push(0);
            u32::try_from(names.len() - 1).ok()
        }

        fn increment(&self, id: u32, by: u64) -> bool {
            self.calls.set(self.calls.get() + 1);
            if self.refuse_increments.get() {
                return false;
            }
            self.counters.borrow_mut()[id as usize] += by;
            true
        }

        fn record(&self, id: u32, value: u64) {
            self.calls.set(self.calls.get() + 1);
            let name = self.names.borrow()[id as usize].1.clone();
            self.recorded.borrow_mut().push((name, value));
        }
    }

    #[test]
    fn counts_are_batched_and_each_metric_defined_once() {
        let config = compile_test(SEED).unwrap();
        let envoy = FakeEnvoy::default();
        let counters = Counters::new(config.router.slots().len(), 0);
        for _ in 0..100 {
            counters.count_forward(1, 10);
        }
        counters.count_reply(ErrorKind::ModelNotFound);
        assert_eq!(envoy.calls.get(), 0, "counting makes no host call");
        counters.flush(&envoy, &config);
        let groq = "route.groq/*.provider.groq";
        assert_eq!(envoy.counter(&format!("llm_router_requests_total.{groq}")), Some(100));
        assert_eq!(
            envoy.counter(&format!("llm_router_request_body_bytes_total.{groq}")),
            Some(1000)
        );
        assert_eq!(
            envoy.counter("llm_router_local_replies_total.code.model_not_found"),
            Some(1)
        );
        // Three metrics with counts: a definition and an increment each.
        assert_eq!(envoy.calls.get(), 6);
        // Nothing pending: a flush makes no call.
        counters.flush(&envoy, &config);
        assert_eq!(envoy.calls.get(), 6);
        counters.count_forward(1, 5);
        counters.flush(&envoy, &config);
        assert_eq!(envoy.counter(&format!("llm_router_requests_total.{groq}")), Some(101));
        assert_eq!(envoy.calls.get(), 8, "defined once: increments only");
    }

    #[test]
    fn a_refused_increment_is_kept_for_the_next_flush() {
        let config = compile_test(SEED).unwrap();
        let envoy = FakeEnvoy::default();
        let counters = Counters::new(config.router.slots().len(), 0);
        counters.count_forward(0, 1);
        envoy.refuse_increments.set(true);
        counters.flush(&envoy, &config);
        envoy.refuse_increments.set(false);
        counters.flush(&envoy, &config);
        let anthropic = "route.anthropic/*.provider.anthropic";
        assert_eq!(
            envoy.counter(&format!("llm_router_requests_total.{anthropic}")),
            Some(1)
        );
    }

    #[test]
    fn responses_count_tokens_unknown_usage_and_timings() {
        let config = compile_test(SEED).unwrap();
        let envoy = FakeEnvoy::default();
        let counters = Counters::new(config.router.slots().len(), 0);
        let at = |ms| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        let timing = Timing {
            forwarded_at: at(0),
            first_byte_at: Some(at(40)),
            answered: true,
        };
        let reported = Usage {
            input: Some(7),
            output: Some(11),
            ..Usage::default()
        };
        let streamed = Outcome::new(reported, true, timing, || Some(at(1040)));
        counters.count_response(&envoy, &config, 0, &streamed);
        counters.count_response(&envoy, &config, 0, &streamed);
        let unknown = Outcome::new(Usage::default(), false, timing, || None);
        counters.count_response(&envoy, &config, 0, &unknown);
        counters.flush(&envoy, &config);
        let route = "route.anthropic/*.provider.anthropic";
        assert_eq!(
            envoy.counter(&format!("llm_router_tokens_total.{route}.type.input")),
            Some(14)
        );
        assert_eq!(
            envoy.counter(&format!("llm_router_tokens_total.{route}.type.output")),
            Some(22)
        );
        assert_eq!(
            envoy.counter(&format!("llm_router_tokens_total.{route}.type.cached_input")),
            None
        );
        assert_eq!(
            envoy.counter(&format!("llm_router_usage_unknown_total.{route}")),
            Some(1)
        );
        let recorded = envoy.recorded.borrow();
        let ttft = format!("llm_router_time_to_first_token_ms.{route}");
        let tpot = format!("llm_router_time_per_output_token_ms.{route}");
        assert_eq!(
            *recorded,
            vec![
                (ttft.clone(), 40),
                (tpot.clone(), 100),
                (ttft.clone(), 40),
                (tpot, 100),
                (ttft, 40)
            ]
        );
    }

    #[test]
    fn keys_are_counted_by_alias_and_team_only() {
        let config = compile_test(
            r#"{"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/a", "api_key": "k"}}],
              "keys": [{"key_alias": "team-a-dev", "key": "sk-a", "team_id": "team.a"}, {"key": "sk-b"}]}"#,
        )
        .unwrap();
        let envoy = FakeEnvoy::default();
        let counters = Counters::new(config.router.slots().len(), config.keys.keys.len());
        let timing = Timing {
            forwarded_at: SystemTime::UNIX_EPOCH,
            first_byte_at: None,
            answered: true,
        };
        let reported = Usage {
            input: Some(7),
            output: Some(3),
            ..Usage::default()
        };
        let outcome = Outcome::new(reported, false, timing, || None);
        counters.count_key_request(0);
        counters.count_key_request(0);
        counters.count_key_tokens(0, &outcome);
        counters.count_key_request(1);
        counters.flush(&envoy, &config);
        let a = "key.team-a-dev.team.team_a";
        assert_eq!(envoy.counter(&format!("llm_router_key_requests_total.{a}")), Some(2));
        assert_eq!(
            envoy.counter(&format!("llm_router_key_tokens_total.{a}.type.input")),
            Some(7)
        );
        assert_eq!(
            envoy.counter(&format!("llm_router_key_tokens_total.{a}.type.output")),
            Some(3)
        );
        let b = format!("key.{}.team.none", config.keys.keys[1].alias);
        assert_eq!(envoy.counter(&format!("llm_router_key_requests_total.{b}")), Some(1));
    }

    #[test]
    fn attempts_are_counted_per_deployment() {
        let config = compile_test(
            r#"{"model_list": [
              {"model_name": "m", "litellm_params": {"model": "openai/a", "api_key": "k"}, "model_info": {"id": "one"}},
              {"model_name": "m", "litellm_params": {"model": "openai/b", "api_key": "k"}, "model_info": {"id": "two"}}]}"#,
        )
        .unwrap();
        let envoy = FakeEnvoy::default();
        let attempts = AttemptCounters::new(config.router.slots().len());
        let two = config.router.slot_of("two").unwrap();
        attempts.add(two, AttemptEvent::Sent);
        attempts.add(two, AttemptEvent::Sent);
        attempts.add(two, AttemptEvent::Failover);
        attempts.add(two, AttemptEvent::Failed);
        attempts.add(99, AttemptEvent::Sent);
        attempts.flush(&envoy, &config);
        assert_eq!(envoy.counter("llm_router_attempts_total.deployment.two"), Some(2));
        assert_eq!(envoy.counter("llm_router_failovers_total.deployment.two"), Some(1));
        assert_eq!(
            envoy.counter("llm_router_attempt_failures_total.deployment.two"),
            Some(1)
        );
        assert_eq!(envoy.counter("llm_router_attempts_total.deployment.one"), None);
    }
}
