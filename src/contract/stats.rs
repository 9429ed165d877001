//! Counter names. Every label value comes from the configuration (a route's
//! `model_name`, its provider, an error code), never from what a client
//! sends, so made-up model names cannot multiply the series.
//!
//! Envoy keeps Wasm counters under `wasmcustom.` and strips that in
//! `/stats/prometheus`; the [`STATS_TAGS`] that the generator writes into
//! the bootstrap turn the `.route.<r>.provider.<p>` and `.code.<c>` parts of
//! a name into labels.

pub const REQUESTS: &str = "llm_router_requests_total";
pub const BODY_BYTES: &str = "llm_router_request_body_bytes_total";
pub const LOCAL_REPLIES: &str = "llm_router_local_replies_total";
pub const TOKENS: &str = "llm_router_tokens_total";
/// Routed responses whose usage could not be read: compressed, neither JSON
/// nor an event stream, or reporting none (provider errors).
pub const USAGE_UNKNOWN: &str = "llm_router_usage_unknown_total";
/// Per virtual key, labelled by its alias and team only (not crossed with
/// routes: thousands of keys must not multiply the series).
pub const KEY_REQUESTS: &str = "llm_router_key_requests_total";
pub const KEY_TOKENS: &str = "llm_router_key_tokens_total";
/// What a key's responses cost, in micro-dollars (US$1 = 1,000,000), where
/// their models have prices.
pub const KEY_SPEND: &str = "llm_router_spend_micro_usd_total";
/// The `type` label of [`KEY_TOKENS`].
pub const KEY_TOKEN_TYPES: [&str; 2] = ["input", "output"];
/// Histograms, in milliseconds.
pub const TIME_TO_FIRST_TOKEN: &str = "llm_router_time_to_first_token_ms";
pub const TIME_PER_OUTPUT_TOKEN: &str = "llm_router_time_per_output_token_ms";

/// Per deployment of a group, counted by the upstream filter: attempts
/// sent, attempts that failed (429, 5xx, or no answer), and attempts that
/// were a failover (a retry landing there).
pub const ATTEMPT_COUNTERS: [&str; 3] = [
    "llm_router_attempts_total",
    "llm_router_attempt_failures_total",
    "llm_router_failovers_total",
];

/// `<counter>.deployment.<id>`.
pub fn deployment_counter(counter: &str, id: &str) -> String {
    format!("{counter}.deployment.{}", stat_safe(id))
}

/// The `type` label of [`TOKENS`], in the order of
/// [`crate::response::outcome::Outcome::tokens`].
pub const TOKEN_TYPES: [&str; 4] = ["input", "output", "cached_input", "reasoning_output"];

/// `<counter>.route.<model_name>.provider.<provider>.type.<type>`.
pub fn typed_route_counter(counter: &str, model_name: &str, provider: &str, kind: &str) -> String {
    format!("{}.type.{kind}", route_counter(counter, model_name, provider))
}

/// `<counter>.route.<model_name>.provider.<provider>`.
pub fn route_counter(counter: &str, model_name: &str, provider: &str) -> String {
    format!(
        "{counter}.route.{}.provider.{}",
        stat_safe(model_name),
        stat_safe(provider)
    )
}

/// `<counter>.key.<alias>.team.<team>` (`none` without a team).
pub fn key_counter(counter: &str, alias: &str, team: Option<&str>) -> String {
    format!(
        "{counter}.key.{}.team.{}",
        stat_safe(alias),
        stat_safe(team.unwrap_or("none"))
    )
}

/// `<counter>.key.<alias>.team.<team>.type.<type>`: [`KEY_TOKENS`] by
/// [`KEY_TOKEN_TYPES`].
pub fn typed_key_counter(counter: &str, alias: &str, team: Option<&str>, kind: &str) -> String {
    format!("{}.type.{kind}", key_counter(counter, alias, team))
}

/// `llm_router_local_replies_total.code.<code>`.
pub fn reply_counter(code: &str) -> String {
    format!("{LOCAL_REPLIES}.code.{code}")
}

/// Envoy's `stats_tags` for the names above: (tag, regex), the first
/// capture group the part removed from the name, the second the value.
pub const STATS_TAGS: [(&str, &str); 7] = [
    ("route", r"^wasmcustom\.llm_router_\w+(\.route\.(.+?))\.provider\."),
    (
        "provider",
        r"^wasmcustom\.llm_router_\w+\.route\..+?(\.provider\.([^.]+))(?:\.type\.\w+)?$",
    ),
    (
        "type",
        r"^wasmcustom\.llm_router_(?:key_)?tokens_total\..+(\.type\.(\w+))$",
    ),
    (
        "key",
        r"^wasmcustom\.llm_router_(?:key_\w+|spend_micro_usd_total)(\.key\.([^.]+))\.team\.",
    ),
    (
        "team",
        r"^wasmcustom\.llm_router_(?:key_\w+|spend_micro_usd_total)\.key\.[^.]+(\.team\.([^.]+))(?:\.type\.\w+)?$",
    ),
    ("code", r"^wasmcustom\.llm_router_local_replies_total(\.code\.(\w+))$"),
    ("deployment", r"^wasmcustom\.llm_router_\w+(\.deployment\.([^.]+))$"),
];

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
            typed_key_counter(KEY_TOKENS, "team-a.dev", None, "input"),
            "llm_router_key_tokens_total.key.team-a_dev.team.none.type.input"
        );
        assert_eq!(
            reply_counter("model_not_found"),
            "llm_router_local_replies_total.code.model_not_found"
        );
    }
}
