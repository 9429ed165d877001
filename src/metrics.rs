//! Counter names. Every label value comes from the configuration (a route's
//! `model_name`, its provider, an error code), never from what a client
//! sends, so made-up model names cannot multiply the series.
//!
//! Envoy keeps Wasm counters under `wasmcustom.` and strips that in
//! `/stats/prometheus`; the `stats_tags` in envoy/envoy.yaml turn the
//! `.route.<r>.provider.<p>` and `.code.<c>` parts of a name into labels.

use crate::decision::ErrorKind;

pub const REQUESTS: &str = "llm_router_requests_total";
pub const BODY_BYTES: &str = "llm_router_request_body_bytes_total";
pub const LOCAL_REPLIES: &str = "llm_router_local_replies_total";
pub const TOKENS: &str = "llm_router_tokens_total";
/// Routed responses whose usage could not be read: compressed, neither JSON
/// nor an event stream, or reporting none (provider errors).
pub const USAGE_UNKNOWN: &str = "llm_router_usage_unknown_total";
/// Histograms, in milliseconds.
pub const TIME_TO_FIRST_TOKEN: &str = "llm_router_time_to_first_token_ms";
pub const TIME_PER_OUTPUT_TOKEN: &str = "llm_router_time_per_output_token_ms";

/// Per deployment of a group, counted by the upstream filter: attempts
/// sent, attempts that failed (429, 5xx, or no answer), and attempts that
/// were a failover (a retry landing there). Indexed by the `ATTEMPT_*`s.
pub const ATTEMPT_COUNTERS: [&str; 3] = [
    "llm_router_attempts_total",
    "llm_router_attempt_failures_total",
    "llm_router_failovers_total",
];
pub const ATTEMPT_SENT: usize = 0;
pub const ATTEMPT_FAILED: usize = 1;
pub const ATTEMPT_FAILOVER: usize = 2;

/// `<counter>.deployment.<id>`.
pub fn deployment_counter(counter: &str, id: &str) -> String {
    format!("{counter}.deployment.{}", stat_safe(id))
}

/// The `type` label of [`TOKENS`], in the order of [`token_counts`].
pub const TOKEN_TYPES: [&str; 4] = ["input", "output", "cached_input", "reasoning_output"];

/// A usage's counts in [`TOKEN_TYPES`] order.
pub fn token_counts(usage: &crate::usage::Usage) -> [Option<u64>; 4] {
    [usage.input, usage.output, usage.cached_input, usage.reasoning_output]
}

/// `<counter>.route.<model_name>.provider.<provider>.type.<type>`.
pub fn typed_route_counter(counter: &str, model_name: &str, provider: &str, kind: &str) -> String {
    format!("{}.type.{kind}", route_counter(counter, model_name, provider))
}

/// The error codes, in one fixed order (an index per code).
pub const ERROR_KINDS: [ErrorKind; 6] = [
    ErrorKind::InvalidApiKey,
    ErrorKind::ModelNotFound,
    ErrorKind::InvalidRequest,
    ErrorKind::RequestTooLarge,
    ErrorKind::UnsupportedMediaType,
    ErrorKind::ProviderUnavailable,
];

/// `<counter>.route.<model_name>.provider.<provider>`.
pub fn route_counter(counter: &str, model_name: &str, provider: &str) -> String {
    format!(
        "{counter}.route.{}.provider.{}",
        stat_safe(model_name),
        stat_safe(provider)
    )
}

/// `llm_router_local_replies_total.code.<code>`.
pub fn reply_counter(kind: ErrorKind) -> String {
    format!("{LOCAL_REPLIES}.code.{}", kind.code())
}

/// Envoy stat names are `.`-separated tokens: keep a label value to one
/// token of printable characters so the tag rules can find its end.
fn stat_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c == '.' || c.is_control() || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            route_counter(REQUESTS, "fo::*:static::*", "openai"),
            "llm_router_requests_total.route.fo::*:static::*.provider.openai"
        );
        assert_eq!(
            route_counter(BODY_BYTES, "gpt-4.1 mini", "openai"),
            "llm_router_request_body_bytes_total.route.gpt-4_1_mini.provider.openai"
        );
        assert_eq!(
            typed_route_counter(TOKENS, "groq/*", "groq", "input"),
            "llm_router_tokens_total.route.groq/*.provider.groq.type.input"
        );
        assert_eq!(
            reply_counter(ErrorKind::ModelNotFound),
            "llm_router_local_replies_total.code.model_not_found"
        );
    }
}
