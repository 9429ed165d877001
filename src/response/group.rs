//! What the answers to a model group's attempts mean: each attempt's status
//! for Envoy's retries and cooldown (in the upstream filter), and the
//! group's response as the downstream filter reads it (the deployment that
//! answered, the provider's own status).

use crate::config::Config;
use crate::contract::{DEPLOYMENT_HEADER, UPSTREAM_STATUS_HEADER};
use crate::headers::HeaderBlock;

/// What an attempt's response status means for Envoy's retry and cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Answered,
    /// A 5xx: Envoy retries it and counts it toward ejection.
    Failed,
    /// A 429: passed to Envoy as a 503 (with [`UPSTREAM_STATUS_HEADER`]),
    /// so it is retried and counted as a 5xx is.
    RateLimited,
}

pub fn attempt_outcome(status: &[u8]) -> AttemptOutcome {
    match status {
        b"429" => AttemptOutcome::RateLimited,
        [b'5', _, _] => AttemptOutcome::Failed,
        _ => AttemptOutcome::Answered,
    }
}

/// A group's response as the downstream filter sees it: the slot of the
/// deployment that answered, and the provider's own status where the
/// upstream filter carried a 429 as 503.
#[derive(Debug, PartialEq, Eq)]
pub struct GroupResponse<'h> {
    pub slot: Option<usize>,
    /// The model that deployment was sent (worked out again here: cheaper
    /// than a filter-state value per attempt).
    pub upstream_model: Option<String>,
    pub provider_status: Option<&'h [u8]>,
}

/// `requested_model` is the model the client asked for.
pub fn group_response<'h>(config: &Config, headers: &'h HeaderBlock, requested_model: &str) -> GroupResponse<'h> {
    let id = headers
        .get(DEPLOYMENT_HEADER)
        .and_then(|id| std::str::from_utf8(id).ok());
    let slot = id.and_then(|id| config.router.slot_of(id));
    let upstream_model = id
        .and_then(|id| config.router.route_via(id, requested_model).ok())
        .map(|route| route.upstream_model.into_owned());
    let provider_status = headers.get(UPSTREAM_STATUS_HEADER).filter(|s| *s == b"429");
    GroupResponse {
        slot,
        upstream_model,
        provider_status,
    }
}
