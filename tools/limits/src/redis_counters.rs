//! The fleet's counts in Redis, kept the way envoyproxy/ratelimit keeps
//! them: one key per counter, each check or charge one Lua script (one
//! round trip), the window's expiry set when the counter is created. No
//! RocksDB, no C++: limitador's own Redis storage cannot be built without
//! its disk storage (0.11–0.14), so this replaces it.
//!
//! The semantics are limitador's, which the in-memory engine keeps: a
//! request is refused when its hits would take the count past the maximum,
//! and then nothing is counted; a window starts at a counter's first hit and
//! ends `window` seconds later.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tokio::sync::Mutex;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub limited: bool,
    /// What is left once this check's hits are counted (0 when refused).
    pub remaining: u64,
    /// Until the counter's window ends; `None` for a counter not yet made.
    pub expires_in: Option<Duration>,
}

/// KEYS[1] the counter; ARGV[1] the maximum, ARGV[2] the hits, ARGV[3] the
/// window in ms. Returns {limited, count, ms left} (ms left < 0: no counter).
const CHECK_AND_COUNT: &str = "
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local hits = tonumber(ARGV[2])
if count + hits > tonumber(ARGV[1]) then
  return {1, count, redis.call('PTTL', KEYS[1])}
end
if hits > 0 then
  count = redis.call('INCRBY', KEYS[1], hits)
  if count == hits then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
return {0, count, redis.call('PTTL', KEYS[1])}";

/// KEYS[1] the counter; ARGV[1] the hits, ARGV[2] the window in ms.
const CHARGE: &str = "
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return count";

/// Every key this service writes starts so, apart from other users of the
/// same Redis.
const KEY_PREFIX: &str = "llm-router-limits:";

/// How long one connection attempt or one script may take: Envoy gives
/// the whole check half a second, then applies its failure mode.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed connection attempt, calls fail at once for this long
/// instead of each waiting on Redis again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

pub struct RedisCounters {
    client: Client,
    /// Connected on first use and again after Redis comes back: the
    /// service starts, and answers "unavailable", while Redis is down.
    connection: Mutex<Connection>,
    check_and_count: Script,
    charge: Script,
}

#[derive(Default)]
struct Connection {
    manager: Option<ConnectionManager>,
    /// The last failed connection attempt.
    failed_at: Option<Instant>,
}

impl RedisCounters {
    /// `url`: `redis://HOST:PORT[/DB]`. Checked here; connected on first use.
    pub fn new(url: &str) -> Result<RedisCounters, String> {
        let client = Client::open(url).map_err(|e| format!("--redis {url}: {e}"))?;
        Ok(RedisCounters {
            client,
            connection: Mutex::new(Connection::default()),
            check_and_count: Script::new(CHECK_AND_COUNT),
            charge: Script::new(CHARGE),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        let mut connection = self.connection.lock().await;
        if let Some(manager) = &connection.manager {
            return Ok(manager.clone());
        }
        if connection.failed_at.is_some_and(|at| at.elapsed() < RECONNECT_PAUSE) {
            return Err("Redis is unreachable".to_owned());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(1);
        match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(manager) => {
                connection.manager = Some(manager.clone());
                Ok(manager)
            }
            Err(e) => {
                connection.failed_at = Some(Instant::now());
                Err(format!("Redis is unreachable: {e}"))
            }
        }
    }

    /// Counts `hits` on `counter` if they fit under `max`; 0 hits only checks.
    pub async fn check_and_count(
        &self,
        counter: &str,
        max: u64,
        window: Duration,
        hits: u64,
    ) -> Result<Verdict, String> {
        let mut connection = self.connection().await?;
        let (limited, count, ms_left): (u8, u64, i64) = self
            .check_and_count
            .key(format!("{KEY_PREFIX}{counter}"))
            .arg(max)
            .arg(hits)
            .arg(window_ms(window))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        Ok(Verdict {
            limited: limited == 1,
            remaining: max.saturating_sub(count),
            expires_in: u64::try_from(ms_left).ok().map(Duration::from_millis),
        })
    }

    /// Counts `hits` on `counter` whatever the maximum.
    pub async fn charge(&self, counter: &str, window: Duration, hits: u64) -> Result<(), String> {
        let mut connection = self.connection().await?;
        let _: u64 = self
            .charge
            .key(format!("{KEY_PREFIX}{counter}"))
            .arg(hits)
            .arg(window_ms(window))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        Ok(())
    }
}

fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1)
}
