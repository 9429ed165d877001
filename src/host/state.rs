//! What every request context under one configuration shares, made by the
//! root context and read by the request and attempt contexts.

use crate::config::Config;
use crate::host::stats::{AttemptCounters, Counters};

/// What every request under one configuration shares.
pub(super) struct State {
    pub config: Config,
    /// Runs as the group clusters' upstream filter.
    pub upstream: bool,
    pub counters: Counters,
    pub attempts: AttemptCounters,
}
