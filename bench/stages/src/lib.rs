//! The filter's own stages, timed inside Envoy's V8 (the engine, flags and
//! memory the filter gets), with no traffic: `bench/run.py` loads this module
//! into `envoy --mode validate`, and `on_configure` runs each stage of
//! llm-router's pipeline in a loop on the benchmark's bodies and tables and
//! logs what one call costs. Unlike throughput under load, this repeats to a
//! few percent, so it shows what a change to the pipeline is worth.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use llm_router::config;
use llm_router::headers::HeaderBlock;
use llm_router::request::body;
use llm_router::request::decision::{self, Decision, HeadVerdict};
use llm_router::request::{attempt, auth};
use llm_router::response::cost::prices_for;
use llm_router::response::outcome::{Charges, Names, Outcome, Timing};
use llm_router::response::{Framing, ResponseReader};
use proxy_wasm::traits::{Context, RootContext};
use serde::Deserialize;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Stages) });
}}

/// The plugin configuration `bench/run.py` sends.
#[derive(Deserialize)]
struct Case {
    label: String,
    /// llm-router's plugin configuration (the route table, master key on).
    config: serde_json::Value,
    body: String,
    model: String,
    /// The request headers, as wrk sends them.
    headers: Vec<(String, String)>,
    /// A chat completion with usage, as the provider answers.
    reply: String,
    /// A streamed chat completion, one event a piece, as it arrives.
    stream: Vec<String>,
}

struct Stages;

impl Context for Stages {}

impl RootContext for Stages {
    fn on_configure(&mut self, _: usize) -> bool {
        let json = self.get_plugin_configuration().unwrap_or_default();
        let cases: Vec<Case> = match serde_json::from_slice(&json) {
            Ok(cases) => cases,
            Err(e) => {
                log::error!("stages: bad configuration: {e}");
                return false;
            }
        };
        cases.iter().all(|case| run(case, &|| self.get_current_time()))
    }
}

/// Logs `stage <label> <what> <ns per call>` for each stage of one case.
fn run(case: &Case, now: &dyn Fn() -> SystemTime) -> bool {
    let Ok(config) = config::compile(case.config.to_string().as_bytes(), &|_| None) else {
        log::error!("stages: {}: the route table does not compile", case.label);
        return false;
    };
    let body = case.body.as_bytes();
    let headers = HeaderBlock::from_pairs(case.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
    let head = || match decision::on_request_head(&config, headers.clone(), false, &|| 0) {
        HeadVerdict::ReadBody(pending) => Some(pending),
        HeadVerdict::Reply(_) => None,
    };
    let Some(pending) = head() else {
        log::error!("stages: {}: the headers are refused", case.label);
        return false;
    };
    if !matches!(decision::on_request_body(&config, pending, body), Decision::Forward(_)) {
        log::error!("stages: {}: the body is not forwarded", case.label);
        return false;
    }
    // Tens of milliseconds a stage, whatever the body size.
    let calls = (50_000_000 / body.len().max(1)).clamp(10_000, 200_000);
    // Logs the time of one call divided by `per` (the units a call handles).
    let time_per = |what: &str, per: f64, stage: &mut dyn FnMut()| {
        let calls = ((calls as f64 / per) as usize).max(100);
        // As many calls again first: V8 starts the module in its baseline
        // compiler and swaps in optimised code once the background compile of
        // a hot function is done.
        for _ in 0..calls {
            stage();
        }
        let started = now();
        for _ in 0..calls {
            stage();
        }
        let took = now().duration_since(started).unwrap_or(Duration::ZERO);
        let ns = took.as_nanos() as f64 / calls as f64 / per;
        log::warn!("stage\t{}\t{what}\t{ns:.0}", case.label);
    };
    let time = |what: &str, stage: &mut dyn FnMut()| time_per(what, 1.0, stage);
    time("copy of the header buffer", &mut || {
        black_box(headers.clone());
    });
    time("head: client key, media type, size", &mut || {
        black_box(head());
    });
    time("scan: validate the body, find the model", &mut || {
        black_box(body::find_model(black_box(body)).is_ok());
    });
    time("route: exact names, then patterns", &mut || {
        black_box(config.router.route(black_box(&case.model)).is_ok());
    });
    // A virtual key's own work: its hash, the lookup, its model allowlist.
    let presented = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if let (false, Ok(route)) = (config.keys.keys.is_empty(), config.router.route(&case.model)) {
        time("auth: key hash, lookup, model allowlist", &mut || {
            let found = config.keys.by_hash.get(&config::hash_of(black_box(presented)));
            let key = found.and_then(|&i| config.keys.keys.get(i));
            black_box(key.is_some_and(|key| auth::may_call(key, &case.model, route.deployment)));
        });
    }
    time("whole: head, body decision, model splice", &mut || {
        let Some(pending) = head() else { return };
        if let Decision::Forward(forward) = decision::on_request_body(&config, pending, black_box(body)) {
            if let Some(edit) = forward.body_edit {
                black_box(edit.splice(body.to_vec()));
            }
        }
    });
    // A group's upstream step, per attempt: the second deployment's (the
    // model differs from the request's, so the body is rewritten).
    let member = config.router.groups().first().and_then(|g| g.members.get(1));
    if let Some(deployment) = member.and_then(|m| config.router.deployments().get(m.deployment)) {
        let path = headers.get(":path").unwrap_or_default().to_vec();
        time("attempt: upstream rewrite for one deployment", &mut || {
            if let Ok(attempt) = attempt::on_attempt(
                &config,
                &deployment.id,
                &path,
                black_box(body),
                attempt::Earlier::Nothing,
            ) {
                if let Some(edit) = attempt.body_edit {
                    black_box(edit.splice(body.to_vec()));
                }
            }
        });
    }
    time("response: JSON reply with usage", &mut || {
        let mut reader = ResponseReader::new(Framing::Json, false);
        black_box(reader.feed(black_box(case.reply.as_bytes())));
        black_box(reader.usage());
    });
    // Where limits are set: the response's price, and the numbers it leaves
    // for the rate-limit filters (what the filter adds for limits).
    if let (true, Ok(route)) = (config.rates_limited, config.router.route(&case.model)) {
        let mut reader = ResponseReader::new(Framing::Json, false);
        reader.feed(case.reply.as_bytes());
        let usage = reader.usage();
        let (model_name, provider) = config.router.slots().get(route.slot).cloned().unwrap_or_default();
        let upstream_model = case.model.split_once('/').map_or(case.model.as_str(), |(_, m)| m);
        let names = Names {
            requested_model: &case.model,
            route: &model_name,
            provider: &provider,
            upstream_model,
        };
        let timing = Timing {
            forwarded_at: SystemTime::UNIX_EPOCH,
            first_byte_at: None,
            answered: true,
        };
        let charges = Charges {
            tokens: true,
            cost: true,
        };
        time("response: cost and rate-limit charges", &mut || {
            let prices = prices_for(&config, route.slot, black_box(upstream_model));
            let outcome = Outcome::new(black_box(usage), false, timing, || None).priced(prices);
            black_box(outcome.filter_state_facts(&names, charges, true));
        });
    }
    let per_event = case.stream.len().max(1) as f64;
    let stream_stage = |strip: bool| {
        move || {
            let mut reader = ResponseReader::new(Framing::Events, strip);
            for event in &case.stream {
                black_box(reader.feed(black_box(event.as_bytes())));
            }
            black_box(reader.usage());
        }
    };
    time_per("response: stream, per event", per_event, &mut stream_stage(false));
    time_per(
        "response: stream, per event, usage chunk removed",
        per_event,
        &mut stream_stage(true),
    );
    time("copy of the body", &mut || {
        black_box(body.to_vec());
    });
    true
}
