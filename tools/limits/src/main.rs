//! `llm-router-limits --config CONFIG.yaml --listen HOST:PORT [--redis redis://HOST:PORT]`:
//! a rate-limit service for Envoy (RLS v3 over gRPC) that enforces the
//! `rpm_limit`, `tpm_limit` and `max_budget` of a LiteLLM `config.yaml`'s
//! keys and teams, as Envoy's rate-limit filters in the bootstrap that
//! `llm-router-config --envoy` writes ask it. Counts are kept in memory, or
//! with `--redis` in Redis, shared exactly by every instance of a fleet.
//! The config is read again when the file changes.

mod redis_counters;
mod service;
mod window;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use limitador::RateLimiter;
use llm_router::limits::{rules, Rule};
use llm_router_config::convert::ApiBaseVariables;
use redis_counters::RedisCounters;
use service::{Engine, Limits};

const USAGE: &str = "usage: llm-router-limits --config CONFIG.yaml [--listen HOST:PORT] [--redis redis://HOST:PORT]

Answers Envoy's rate-limit filters (RLS v3, gRPC) for the limits of CONFIG.yaml's
keys and teams (rpm_limit, tpm_limit, max_budget with budget_duration).
  --listen  where to answer (default 127.0.0.1:8081)
  --redis   keep the counts in Redis, shared by every instance using it
            (default: in this process's memory)
CONFIG.yaml is read again within a second of changing.";

/// How often the config file is looked at.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// In-memory counters kept at most (limitador's cache size).
const LOCAL_COUNTERS: u64 = 100_000;

struct Arguments {
    config: PathBuf,
    listen: SocketAddr,
    redis: Option<String>,
}

fn arguments(args: Vec<String>) -> Result<Arguments, String> {
    let mut args = args.into_iter();
    let mut config = None;
    let mut listen = "127.0.0.1:8081".to_owned();
    let mut redis = None;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--listen" => listen = value("--listen")?,
            "--redis" => redis = Some(value("--redis")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Arguments {
        config: config.ok_or("--config is required")?,
        listen: listen
            .parse()
            .map_err(|e| format!("--listen {listen}: {e} (give IP:PORT)"))?,
        redis,
    })
}

/// The limits of the config at `path`, read as the filter reads it.
fn read_rules(path: &std::path::Path) -> Result<Vec<Rule>, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let (_, conversion) = llm_router_config::read(&file, &text, &ApiBaseVariables::AtRunTime)?;
    Ok(rules(&conversion.config))
}

/// What tells a changed file: its modification time and length.
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Re-reads the config when it changes; a config that does not read is
/// logged and the limits in force stay.
async fn watch(limits: Arc<Limits>, path: PathBuf, mut seen: Option<(SystemTime, u64)>) {
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tick.tick().await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match read_rules(&path) {
            Ok(rules) => match limits.configure(rules.clone()).await {
                Ok(()) => eprintln!(
                    "llm-router-limits: {}: reloaded, {} limits",
                    path.display(),
                    rules.len()
                ),
                Err(e) => eprintln!("llm-router-limits: reload failed, the limits in force stay: {e}"),
            },
            Err(e) => eprintln!("llm-router-limits: {e}; the limits in force stay"),
        }
    }
}

async fn serve(arguments: Arguments) -> Result<(), String> {
    let seen = stamp(&arguments.config);
    let rules = read_rules(&arguments.config)?;
    let engine = match &arguments.redis {
        None => Engine::Local(RateLimiter::new(LOCAL_COUNTERS)),
        Some(url) => Engine::Fleet(Box::new(RedisCounters::new(url)?)),
    };
    let limits = Arc::new(Limits::new(engine));
    let count = rules.len();
    limits.configure(rules).await?;
    eprintln!(
        "llm-router-limits: {} limits from {}, counts {}, listening on {}",
        count,
        arguments.config.display(),
        arguments
            .redis
            .as_deref()
            .map_or("in memory".to_owned(), |url| format!("in {url}")),
        arguments.listen
    );
    tokio::spawn(watch(Arc::clone(&limits), arguments.config.clone(), seen));
    tonic::transport::Server::builder()
        .add_service(RateLimitServiceServer::from_arc(limits))
        .serve_with_shutdown(arguments.listen, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("{}: {e}", arguments.listen))
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = match arguments(std::env::args().skip(1).collect()) {
        Ok(arguments) => arguments,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("llm-router-limits: {problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(arguments).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llm-router-limits: {e}");
            ExitCode::FAILURE
        }
    }
}
