//! Every name the filter and Envoy's configuration must agree on, with its
//! one owner here: the generator (`tools/config`) writes Envoy's side from
//! these constants, the host adapter uses them on the filter's side.

pub mod stats;

/// The Wasm root id of the downstream filter (on the listener).
pub const ROOT_ID: &str = "llm-router";
/// The root id of the filter's upstream instance: a model group cluster's
/// upstream HTTP filter, run once per attempt.
pub const UPSTREAM_ROOT_ID: &str = "llm-router-upstream";
/// The property that names the root id an instance was configured with.
pub const PLUGIN_ROOT_ID_PROPERTY: [&str; 1] = ["plugin_root_id"];
/// Envoy's foreign function that makes the router choose the route again
/// (after the filter has set the routing header).
pub const CLEAR_ROUTE_CACHE_FUNCTION: &str = "clear_route_cache";

/// A model group's cluster is `group_<model_name>` (made safe for a
/// cluster name): its route matches it on the routing header.
pub const GROUP_CLUSTER_PREFIX: &str = "group_";
/// An Entra ID deployment's cluster is `<host cluster>_entra_<id>`: the
/// credential injector on the listener matches it on the routing header.
pub const ENTRA_CLUSTER_INFIX: &str = "_entra_";

/// The default header that carries the chosen cluster to Envoy's router
/// (`cluster_header` on the route).
pub const DEFAULT_CLUSTER_HEADER: &str = "x-llm-cluster";

/// How far above `max_body_bytes` Envoy's own buffer limit
/// (`per_connection_buffer_limit_bytes`) is set. The filter counts the body
/// as it arrives and answers its JSON 413 on the first read that passes
/// `max_body_bytes`; Envoy's buffer must still have room for that read, or
/// Envoy answers first with its plain-text 413.
pub const ENVOY_BUFFER_MARGIN: usize = 1 << 20;

/// Envoy's router takes an attempt's time limit from this request header
/// (and removes it): it runs until the response starts, so a stream's
/// limit is its time to the first byte. One value for every attempt.
pub const PER_TRY_TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-per-try-timeout-ms";
/// The response header naming the deployment of a group that answered
/// (its `model_info.id` or `<model_name>#<n>`, never a key): Envoy adds it
/// from the endpoint's metadata (the group route's
/// `response_headers_to_add`), the downstream filter reads it.
pub const DEPLOYMENT_HEADER: &str = "x-llm-router-deployment";
/// A provider's 429 crosses Envoy as a 503 with this header: Envoy's
/// retries and outlier detection act on 5xx, not on 429. The downstream
/// filter gives the client the 429 back.
pub const UPSTREAM_STATUS_HEADER: &str = "x-llm-router-upstream-status";

/// The endpoint metadata that names a group member's deployment:
/// `filter_metadata: { llm_router: { deployment: <id> } }`.
pub const METADATA_NAMESPACE: &str = "llm_router";
pub const METADATA_DEPLOYMENT: &str = "deployment";
/// The same metadata as the upstream filter reads it (a property path).
pub const DEPLOYMENT_PROPERTY: [&str; 5] = [
    "xds",
    "upstream_host_metadata",
    "filter_metadata",
    METADATA_NAMESPACE,
    METADATA_DEPLOYMENT,
];
/// Envoy's attempt counter for the request, as the upstream filter reads it.
pub const ATTEMPT_COUNT_PROPERTY: [&str; 2] = ["upstream", "request_attempt_count"];

/// Filter state the filter writes (`set_property`); Envoy exposes each as
/// `wasm.<name>`, e.g. `%FILTER_STATE(wasm.llm_router.model:PLAIN)%`.
pub mod filter_state {
    /// Envoy's name for a filter-state key the filter writes.
    pub fn envoy_key(key: &str) -> String {
        format!("wasm.{key}")
    }

    /// The access-log (and `hits_addend`) command that reads a key as text.
    pub fn plain_command(key: &str) -> String {
        format!("%FILTER_STATE({}:PLAIN)%", envoy_key(key))
    }

    pub const MODEL: &str = "llm_router.model";
    pub const ROUTE: &str = "llm_router.route";
    pub const PROVIDER: &str = "llm_router.provider";
    pub const UPSTREAM_MODEL: &str = "llm_router.upstream_model";
    pub const INPUT_TOKENS: &str = "llm_router.input_tokens";
    pub const OUTPUT_TOKENS: &str = "llm_router.output_tokens";
    pub const TIME_TO_FIRST_TOKEN_MS: &str = "llm_router.time_to_first_token_ms";
    /// The virtual key's alias and team, written while the request is read
    /// (before Envoy's rate-limit filter runs), for access logs and
    /// rate-limit descriptors.
    pub const KEY_ALIAS: &str = "llm_router.key_alias";
    pub const TEAM_ID: &str = "llm_router.team_id";
    /// The model name a key's `model_rpm_limit` /
    /// `model_tpm_limit` know the request by, written while the request is
    /// read, only for a key with such a limit for it.
    pub const LIMITED_MODEL: &str = "llm_router.limited_model";
    /// The key alias and team again, each only where it has a budget: the
    /// budget filter's descriptors, so that no other key depends on the
    /// budget service.
    pub const BUDGET_KEY_ALIAS: &str = "llm_router.budget_key_alias";
    pub const BUDGET_TEAM_ID: &str = "llm_router.budget_team_id";
    /// What a response cost in micro-dollars (US$1 = 1,000,000): in the
    /// access log, and the end-of-stream charge against a budget.
    pub const COST_MICRO_USD: &str = "llm_router.cost_micro_usd";
    /// Input plus output tokens, written for a keyed request where limits
    /// are set: the end-of-stream charge against a token limit.
    pub const TOTAL_TOKENS: &str = "llm_router.total_tokens";
    /// Keeps the client's path for the attempts after the first that
    /// changes it: a request's attempts share one header map.
    pub const CLIENT_PATH: &str = "llm_router.client_path";

    /// The access-log fields read from filter state: (field, key).
    pub const ACCESS_LOG: [(&str, &str); 10] = [
        ("model", MODEL),
        ("route", ROUTE),
        ("provider", PROVIDER),
        ("upstream_model", UPSTREAM_MODEL),
        ("input_tokens", INPUT_TOKENS),
        ("output_tokens", OUTPUT_TOKENS),
        ("time_to_first_token_ms", TIME_TO_FIRST_TOKEN_MS),
        ("cost_micro_usd", COST_MICRO_USD),
        ("key_alias", KEY_ALIAS),
        ("team_id", TEAM_ID),
    ];
}

/// Envoy's rate-limit filters and the rate-limit service (`llm-router-limits`,
/// or any server speaking Envoy's RLS v3) agree on these descriptors:
/// `[(key_alias|team_id, <name>), (limit, requests|tokens|budget)]`, and
/// `[(key_alias, <name>), (model, <model>), (limit, requests|tokens)]`.
pub mod rate_limit {
    /// The domain of every descriptor.
    pub const DOMAIN: &str = "llm-router";
    /// Descriptor entry keys: who, and which limit.
    pub const KEY_ENTRY: &str = "key_alias";
    pub const TEAM_ENTRY: &str = "team_id";
    /// With [`KEY_ENTRY`]: a key's per-model limit.
    pub const MODEL_ENTRY: &str = "model";
    pub const LIMIT_ENTRY: &str = "limit";
    /// Values of [`LIMIT_ENTRY`].
    pub const REQUESTS: &str = "requests";
    pub const TOKENS: &str = "tokens";
    pub const BUDGET: &str = "budget";
    /// Envoy's two rate-limit filters: rpm and tpm in one, budgets in the
    /// other, so that each has its own behaviour when the service is down.
    pub const RATES_FILTER: &str = "llm-router-rates";
    pub const BUDGETS_FILTER: &str = "llm-router-budgets";
    /// The cluster of the rate-limit service.
    pub const CLUSTER: &str = "llm_router_limits";
}
