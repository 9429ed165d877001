//! Envoy's RLS v3 `ShouldRateLimit` over limitador: each descriptor that
//! names a limit of the configuration ([`llm_router::limits`]) is checked
//! and counted with its `hits_addend`, as envoyproxy/ratelimit does, so the
//! same Envoy configuration works with either server.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit::Unit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use limitador::limit::{Context, Expression, Limit, Predicate};
use limitador::RateLimiter;
use llm_router::contract::rate_limit::DOMAIN;
use llm_router::limits::{descriptor_limit, Kind, Rule, Subject};
use tonic::{Request, Response, Status};

use crate::redis_counters::{RedisCounters, Verdict};
use crate::window::{self, Period};

/// Where the counts are kept.
pub enum Engine {
    /// This process only: limitador's in-memory engine.
    Local(RateLimiter),
    /// Redis, shared by every instance pointed at it (exact: each check
    /// and each charge is one Redis script).
    Fleet(Box<RedisCounters>),
}

/// The limitador namespace of one limit: one namespace per (subject,
/// kind), so a check looks at that limit only, however many keys there are.
fn namespace(subject: &Subject, kind: Kind) -> String {
    let mut namespace = String::new();
    for (entry, value) in subject.entries() {
        namespace.push_str(&format!("{entry}={value}/"));
    }
    namespace + kind.descriptor_value()
}

/// The variable a calendar budget's counters are kept apart by: one
/// counter per period, so a new period starts at 0 at its boundary.
const PERIOD: &str = "period";

fn limitador_limit(rule: &Rule) -> Result<Limit, String> {
    let variables = match window::on_calendar(rule) {
        true => vec![Expression::parse(PERIOD).map_err(|e| format!("{e:?}"))?],
        false => Vec::new(),
    };
    let mut limit = Limit::new(
        namespace(&rule.subject, rule.kind),
        rule.max,
        window::counter_seconds(rule),
        Vec::<Predicate>::new(),
        variables,
    );
    limit.set_name(rule.describe());
    Ok(limit)
}

/// What a check of `rule` is evaluated with: its calendar period, if any.
fn context_for(period: Option<Period>) -> Context<'static> {
    match period {
        Some(period) => Context::from(HashMap::from([(PERIOD.to_owned(), period.id.to_string())])),
        None => Context::default(),
    }
}

/// The Redis key of `rule`'s counter in `period`: its namespace, and the
/// period where it counts in calendar periods.
fn counter_key(rule: &Rule, period: Option<Period>) -> String {
    let namespace = namespace(&rule.subject, rule.kind);
    match period {
        Some(period) => format!("{namespace}/{PERIOD}={}", period.id),
        None => namespace,
    }
}

impl Engine {
    async fn configure(&self, rules: &[Rule]) -> Result<(), String> {
        match self {
            Engine::Local(limiter) => {
                let limits = rules.iter().map(limitador_limit).collect::<Result<Vec<_>, _>>()?;
                limiter.configure_with(limits).map_err(|e| e.to_string())
            }
            // Redis keeps counts, not limits: each call brings its rule.
            Engine::Fleet(_) => Ok(()),
        }
    }

    /// Counts `hits` if they fit (a request), or checks only (0 hits).
    async fn check_and_count(&self, rule: &Rule, period: Option<Period>, hits: u64) -> Result<Verdict, String> {
        match self {
            Engine::Local(limiter) => {
                let namespace = namespace(&rule.subject, rule.kind).into();
                let result = limiter
                    .check_rate_limited_and_update(&namespace, &context_for(period), hits)
                    .map_err(|e| e.to_string())?;
                let counter = result.counters.first();
                Ok(Verdict {
                    limited: result.limited,
                    remaining: counter.and_then(|c| c.remaining()).unwrap_or(0),
                    expires_in: counter.and_then(|c| c.expires_in()),
                })
            }
            Engine::Fleet(redis) => {
                let window = Duration::from_secs(window::counter_seconds(rule));
                redis
                    .check_and_count(&counter_key(rule, period), rule.max, window, hits)
                    .await
            }
        }
    }

    /// Counts `hits` whatever the limit: a charge for what was already
    /// used (tokens, cost), sent when the stream is done.
    async fn charge(&self, rule: &Rule, period: Option<Period>, hits: u64) -> Result<(), String> {
        match self {
            Engine::Local(limiter) => {
                let namespace = namespace(&rule.subject, rule.kind).into();
                limiter
                    .update_counters(&namespace, &context_for(period), hits)
                    .map_err(|e| e.to_string())
            }
            Engine::Fleet(redis) => {
                let window = Duration::from_secs(window::counter_seconds(rule));
                redis.charge(&counter_key(rule, period), window, hits).await
            }
        }
    }
}

/// The service: the engine and the limits it counts, replaced whole when
/// the configuration changes.
pub struct Limits {
    engine: Engine,
    rules: RwLock<Arc<HashMap<(Subject, Kind), Rule>>>,
}

impl Limits {
    pub fn new(engine: Engine) -> Limits {
        Limits {
            engine,
            rules: RwLock::new(Arc::default()),
        }
    }

    /// Applies a configuration's limits: counters of limits that stay are
    /// kept (a changed maximum applies to the count so far).
    pub async fn configure(&self, rules: Vec<Rule>) -> Result<(), String> {
        self.engine.configure(&rules).await?;
        let table = rules
            .into_iter()
            .map(|rule| ((rule.subject.clone(), rule.kind), rule))
            .collect();
        let mut current = self.rules.write().map_err(|_| "the limits lock is poisoned")?;
        *current = Arc::new(table);
        Ok(())
    }

    fn rules(&self) -> Result<Arc<HashMap<(Subject, Kind), Rule>>, Status> {
        self.rules
            .read()
            .map(|rules| Arc::clone(&rules))
            .map_err(|_| Status::internal("the limits lock is poisoned"))
    }

    /// Answers `request` at `now` (the calendar periods budgets count in).
    pub async fn decide(&self, request: RateLimitRequest, now: DateTime<Utc>) -> Result<RateLimitResponse, Status> {
        let rules = self.rules()?;
        let mut statuses = Vec::with_capacity(request.descriptors.len());
        let mut refusal: Option<(&Rule, u64)> = None;
        let ours = request.domain == DOMAIN;
        for descriptor in &request.descriptors {
            let named = descriptor_limit(descriptor.entries.iter().map(|e| (e.key.as_str(), e.value.as_str())));
            let rule = named.and_then(|(subject, kind)| rules.get(&(subject, kind)));
            // A refund (negative hits) is not something a limit here takes.
            let Some(rule) = rule.filter(|_| ours && !descriptor.is_negative_hits) else {
                // Not a limit of this configuration (or of this domain).
                statuses.push(ok_status());
                continue;
            };
            let hits = hits(descriptor, request.hits_addend);
            let period = window::period(rule, now);
            // Tokens and dollars are charged after the fact: a charge is
            // counted whole and refuses nothing (the next request's check
            // with 0 hits does).
            if rule.kind != Kind::Requests && hits > 0 {
                self.engine
                    .charge(rule, period, hits)
                    .await
                    .map_err(Status::unavailable)?;
                statuses.push(ok_status());
                continue;
            }
            let result = self
                .engine
                .check_and_count(rule, period, hits)
                .await
                .map_err(Status::unavailable)?;
            let reset = match period {
                Some(period) => Duration::from_secs(period.seconds_left),
                None => result.expires_in.unwrap_or(Duration::from_secs(rule.window_seconds)),
            };
            if result.limited && refusal.is_none() {
                refusal = Some((rule, reset_seconds(reset)));
            }
            statuses.push(DescriptorStatus {
                code: if result.limited { Code::OverLimit } else { Code::Ok } as i32,
                current_limit: current_limit(rule),
                limit_remaining: u32::try_from(result.remaining).unwrap_or(u32::MAX),
                duration_until_reset: Some(ProtoDuration {
                    seconds: i64::try_from(reset.as_secs()).unwrap_or(i64::MAX),
                    nanos: 0,
                }),
                quota: None,
            });
        }
        let mut response = RateLimitResponse {
            overall_code: Code::Ok as i32,
            statuses,
            ..RateLimitResponse::default()
        };
        if let Some((rule, reset)) = refusal {
            response.overall_code = Code::OverLimit as i32;
            response.raw_body = over_limit_message(rule, reset).into_bytes();
            response.response_headers_to_add = vec![HeaderValue {
                key: "retry-after".to_owned(),
                value: reset.to_string(),
                ..HeaderValue::default()
            }];
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl RateLimitService for Limits {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.decide(request.into_inner(), Utc::now()).await.map(Response::new)
    }
}

/// A descriptor's own `hits_addend` (0 included: check only), else the
/// request's, else 1 — envoyproxy/ratelimit's reading.
fn hits(descriptor: &RateLimitDescriptor, request_hits: u32) -> u64 {
    match descriptor.hits_addend {
        Some(own) => own.value,
        None if request_hits > 0 => u64::from(request_hits),
        None => 1,
    }
}

fn ok_status() -> DescriptorStatus {
    DescriptorStatus {
        code: Code::Ok as i32,
        ..DescriptorStatus::default()
    }
}

/// The limit in RLS units, where its window is one (Envoy's
/// `x-ratelimit-limit` needs it); other windows are left out.
fn current_limit(rule: &Rule) -> Option<RateLimit> {
    let unit = match rule.window_seconds {
        1 => Unit::Second,
        60 => Unit::Minute,
        3_600 => Unit::Hour,
        86_400 => Unit::Day,
        _ => return None,
    };
    Some(RateLimit {
        name: rule.describe(),
        requests_per_unit: u32::try_from(rule.max).unwrap_or(u32::MAX),
        unit: unit as i32,
    })
}

/// Whole seconds, rounded up: `retry-after` must not say "now" too early.
fn reset_seconds(reset: Duration) -> u64 {
    reset.as_secs() + u64::from(reset.subsec_nanos() > 0)
}

/// The refusal's message, which Envoy's local reply puts in the OpenAI
/// error shape.
fn over_limit_message(rule: &Rule, reset_seconds: u64) -> String {
    let whose = rule.subject.describe();
    let what = match rule.kind {
        Kind::Requests => "request limit",
        Kind::Tokens => "token limit",
        Kind::Budget => "budget",
    };
    format!(
        "{what} exceeded for {whose}: {}; resets in {reset_seconds} s",
        rule.describe()
    )
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::google::protobuf::UInt64Value;
    use llm_router::contract::rate_limit::{KEY_ENTRY, LIMIT_ENTRY, TEAM_ENTRY};

    use super::*;

    fn rule(subject: Subject, kind: Kind, max: u64) -> Rule {
        Rule {
            subject,
            kind,
            max,
            window_seconds: 60,
        }
    }

    fn key(alias: &str) -> Subject {
        Subject::Key(alias.to_owned())
    }

    fn descriptor(subject: &Subject, kind: Kind, hits: Option<u64>) -> RateLimitDescriptor {
        let entry = |key: &str, value: &str| Entry {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        let mut entries: Vec<Entry> = subject.entries().into_iter().map(|(k, v)| entry(k, v)).collect();
        entries.push(entry(LIMIT_ENTRY, kind.descriptor_value()));
        RateLimitDescriptor {
            entries,
            hits_addend: hits.map(|value| UInt64Value { value }),
            ..RateLimitDescriptor::default()
        }
    }

    fn request(descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
        RateLimitRequest {
            domain: DOMAIN.to_owned(),
            descriptors,
            hits_addend: 0,
        }
    }

    /// Debian's `redis-server` on a free port, keeping nothing on disk;
    /// stopped on drop.
    struct RedisServer {
        child: std::process::Child,
        port: u16,
    }

    impl RedisServer {
        fn start() -> RedisServer {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("a free port: {e}"));
            RedisServer::start_on(port)
        }

        fn start_on(port: u16) -> RedisServer {
            let child = std::process::Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("redis-server (`make redis` installs it): {e}"));
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(std::time::Instant::now() < deadline, "redis-server not up in 10 s");
                std::thread::sleep(Duration::from_millis(10));
            }
            RedisServer { child, port }
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    impl RedisServer {
        fn stop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            self.stop();
        }
    }

    async fn configured(engine: Engine, rules: Vec<Rule>) -> Limits {
        let limits = Limits::new(engine);
        assert_eq!(limits.configure(rules).await, Ok(()));
        limits
    }

    /// The same limits in each engine: in memory, and in a Redis of its
    /// own (kept running while the test runs).
    async fn each_engine(rules: Vec<Rule>) -> Vec<(&'static str, Limits, Option<RedisServer>)> {
        let redis = RedisServer::start();
        let fleet = Box::new(RedisCounters::new(&redis.url()).unwrap_or_else(|e| panic!("{e}")));
        vec![
            (
                "in memory",
                configured(Engine::Local(RateLimiter::new(1_000)), rules.clone()).await,
                None,
            ),
            ("redis", configured(Engine::Fleet(fleet), rules).await, Some(redis)),
        ]
    }

    /// The clock the tests answer at: a Wednesday, 10:00:00 UTC.
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_765_360_800, 0).unwrap_or_default()
    }

    async fn over(limits: &Limits, request: RateLimitRequest) -> (bool, String, Vec<(String, String)>) {
        let Ok(response) = limits.decide(request, now()).await else {
            panic!("answers");
        };
        let headers = response
            .response_headers_to_add
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        (
            response.overall_code == Code::OverLimit as i32,
            String::from_utf8_lossy(&response.raw_body).into_owned(),
            headers,
        )
    }

    #[tokio::test]
    async fn requests_are_counted_and_refused_past_the_limit() {
        for (engine, limits, _redis) in each_engine(vec![rule(key("team-a"), Kind::Requests, 2)]).await {
            let one = || request(vec![descriptor(&key("team-a"), Kind::Requests, None)]);
            assert!(!over(&limits, one()).await.0, "{engine}");
            assert!(!over(&limits, one()).await.0, "{engine}");
            let (refused, message, headers) = over(&limits, one()).await;
            assert!(refused, "{engine}");
            assert!(
                message.starts_with("request limit exceeded for key `team-a`: 2 requests per minute; resets in "),
                "{engine}: {message}"
            );
            let retry_after: Vec<u64> = headers
                .iter()
                .filter(|(k, _)| k == "retry-after")
                .filter_map(|(_, v)| v.parse().ok())
                .collect();
            assert!(matches!(retry_after.as_slice(), [1..=60]), "{engine}: {headers:?}");
            // Another key is not affected.
            let limits_b = request(vec![descriptor(&key("team-b"), Kind::Requests, None)]);
            assert!(!over(&limits, limits_b).await.0, "{engine}");
        }
    }

    #[tokio::test]
    async fn tokens_are_checked_with_zero_and_charged_at_the_end() {
        let team = Subject::Team("t".to_owned());
        for (engine, limits, _redis) in each_engine(vec![rule(team.clone(), Kind::Tokens, 100)]).await {
            let check = || request(vec![descriptor(&team, Kind::Tokens, Some(0))]);
            assert!(!over(&limits, check()).await.0, "{engine}");
            // A charge past the limit is counted whole and refuses nothing…
            let charge = request(vec![descriptor(&team, Kind::Tokens, Some(150))]);
            assert!(!over(&limits, charge).await.0, "{engine}");
            // …the next request's check does.
            let (refused, message, _) = over(&limits, check()).await;
            assert!(refused, "{engine}");
            assert!(
                message.starts_with("token limit exceeded for team `t`: 100 tokens per minute"),
                "{engine}: {message}"
            );
        }
    }

    #[tokio::test]
    async fn what_names_no_limit_passes() {
        for (engine, limits, _redis) in each_engine(vec![rule(key("a"), Kind::Requests, 0)]).await {
            let limited = descriptor(&key("a"), Kind::Requests, None);
            let mut other_domain = request(vec![limited.clone()]);
            other_domain.domain = "another".to_owned();
            let rows = [
                (request(vec![limited.clone()]), true),
                (other_domain, false),
                (request(vec![descriptor(&key("b"), Kind::Requests, None)]), false),
                (request(vec![descriptor(&key("a"), Kind::Budget, Some(0))]), false),
                (
                    request(vec![RateLimitDescriptor {
                        entries: vec![Entry {
                            key: TEAM_ENTRY.to_owned(),
                            value: "a".to_owned(),
                        }],
                        ..RateLimitDescriptor::default()
                    }]),
                    false,
                ),
                (request(vec![]), false),
            ];
            for (i, (request, refused)) in rows.into_iter().enumerate() {
                assert_eq!(over(&limits, request).await.0, refused, "{engine}: row {i}");
            }
        }
        assert_eq!(key("a").entries(), [(KEY_ENTRY, "a")]);
    }

    #[tokio::test]
    async fn a_new_maximum_applies_to_the_count_so_far() {
        for (engine, limits, _redis) in each_engine(vec![rule(key("a"), Kind::Requests, 1)]).await {
            let one = || request(vec![descriptor(&key("a"), Kind::Requests, None)]);
            assert!(!over(&limits, one()).await.0, "{engine}");
            assert!(over(&limits, one()).await.0, "{engine}");
            assert_eq!(limits.configure(vec![rule(key("a"), Kind::Requests, 3)]).await, Ok(()));
            assert!(!over(&limits, one()).await.0, "{engine}");
            assert!(!over(&limits, one()).await.0, "{engine}");
            assert!(over(&limits, one()).await.0, "{engine}");
        }
    }

    #[tokio::test]
    async fn a_daily_budget_counts_until_midnight_utc() {
        let daily = Rule {
            window_seconds: 86_400,
            ..rule(key("b"), Kind::Budget, 100)
        };
        // 10:00 UTC: 14 hours to midnight.
        assert_eq!(now().timestamp().rem_euclid(86_400), 10 * 3_600);
        for (engine, limits, _redis) in each_engine(vec![daily]).await {
            let charge = request(vec![descriptor(&key("b"), Kind::Budget, Some(150))]);
            assert!(!over(&limits, charge).await.0, "{engine}");
            let check = || request(vec![descriptor(&key("b"), Kind::Budget, Some(0))]);
            let (refused, message, headers) = over(&limits, check()).await;
            assert!(refused, "{engine}");
            assert!(
                message.starts_with("budget exceeded for key `b`: a budget of $0.000100 per day"),
                "{engine}: {message}"
            );
            let retry_after: Vec<&str> = headers
                .iter()
                .filter(|(k, _)| k == "retry-after")
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(retry_after, ["50400"], "{engine}");
            // The next day is a new period: the charge is behind it.
            let tomorrow = now() + chrono::TimeDelta::days(1);
            let Ok(response) = limits.decide(check(), tomorrow).await else {
                panic!("{engine}: answers");
            };
            assert_eq!(response.overall_code, Code::Ok as i32, "{engine}");
        }
    }

    #[tokio::test]
    async fn with_redis_down_the_service_answers_unavailable_until_it_is_back() {
        let redis = RedisServer::start();
        let url = redis.url();
        let port = redis.port;
        drop(redis);
        let fleet = Box::new(RedisCounters::new(&url).unwrap_or_else(|e| panic!("{e}")));
        let limits = configured(Engine::Fleet(fleet), vec![rule(key("a"), Kind::Requests, 5)]).await;
        let one = || request(vec![descriptor(&key("a"), Kind::Requests, None)]);
        // Envoy's rate-limit filter applies its failure mode to this.
        let down = limits.decide(one(), now()).await;
        assert_eq!(down.map_err(|status| status.code()), Err(tonic::Code::Unavailable));
        // Back on the same address: the service reconnects on its own.
        let mut back = RedisServer::start_on(port);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(response) = limits.decide(one(), now()).await {
                assert_eq!(response.overall_code, Code::Ok as i32);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not reconnected in 10 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        back.stop();
    }

    #[test]
    fn hits_as_envoyproxy_ratelimit_reads_them() {
        let with = |own: Option<u64>| RateLimitDescriptor {
            hits_addend: own.map(|value| UInt64Value { value }),
            ..RateLimitDescriptor::default()
        };
        assert_eq!(hits(&with(Some(0)), 5), 0);
        assert_eq!(hits(&with(Some(7)), 5), 7);
        assert_eq!(hits(&with(None), 5), 5);
        assert_eq!(hits(&with(None), 0), 1);
        assert_eq!(reset_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(reset_seconds(Duration::from_secs(3)), 3);
    }
}
