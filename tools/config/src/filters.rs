//! The listener's HTTP filters beside llm-router, and the connection
//! manager's local replies, as values: Envoy's rate-limit filters, the
//! Entra ID credential injectors (with their token endpoints and secrets).

use serde_json::{json, Value};

use llm_router::config::Config;
use llm_router::contract::{filter_state, rate_limit, ROOT_ID};
use llm_router::limits::Kind;
use llm_router::model::Upstream;

use crate::clusters::cluster;
use crate::convert::{EntraInjector, SecretSource};

/// What a local-reply mapper matches of a reply Envoy made itself.
enum Match {
    /// Any of these response flags.
    Flags(&'static [&'static str]),
    /// This response code detail.
    CodeDetails(&'static str),
}

/// A local-reply mapper: the OpenAI error it answers with.
struct Mapper {
    matches: Match,
    message: &'static str,
    kind: &'static str,
    code: &'static str,
    /// Envoy's own where `None`.
    status: Option<u16>,
}

/// Envoy's own local replies (no healthy upstream, a connection refused or
/// reset, a timeout, no cluster, a body over the buffer, a rate limit, an
/// Entra ID token it could not get) in the OpenAI error shape of the
/// filter's own, keeping their status (but for the token: Envoy's 401 would
/// blame the client's key). Each mapper matches only what Envoy itself
/// answers: the filter's replies carry none of these response flags nor
/// that response code detail, so their JSON is left as it is. Each message
/// says what happened in words; Envoy's own body can be empty (no cluster,
/// no route), its response code details never are, so they follow.
const LOCAL_REPLY_MAPPERS: [Mapper; 9] = [
    Mapper {
        matches: Match::Flags(&["UT"]),
        message: "the provider did not start answering within the deployment's time limit (`timeout`, `stream_timeout`) (Envoy: %RESPONSE_CODE_DETAILS%)",
        kind: "upstream_error",
        code: "upstream_timeout",
        status: None,
    },
    Mapper {
        matches: Match::Flags(&["UH"]),
        message: "no healthy upstream: every deployment of this model is down or cooling down after failures, or its host name does not resolve (DNS) (Envoy: %RESPONSE_CODE_DETAILS%)",
        kind: "upstream_error",
        code: "upstream_unavailable",
        status: None,
    },
    Mapper {
        matches: Match::Flags(&["UF"]),
        message: "could not connect to the provider: the connection was refused, timed out or failed TLS (Envoy: %RESPONSE_CODE_DETAILS%)",
        kind: "upstream_error",
        code: "upstream_unavailable",
        status: None,
    },
    Mapper {
        matches: Match::Flags(&["URX", "UC", "UR", "UO", "UMSDR", "DPE", "UPE"]),
        message: "the connection to the provider failed before it answered (reset, overflow or a protocol error) (Envoy: %RESPONSE_CODE_DETAILS%)",
        kind: "upstream_error",
        code: "upstream_unavailable",
        status: None,
    },
    Mapper {
        matches: Match::Flags(&["NC", "NR"]),
        message: "Envoy has no upstream for this request: the route names a cluster its configuration does not define (regenerate it with llm-router-config --envoy) (Envoy: %RESPONSE_CODE_DETAILS%)",
        kind: "upstream_error",
        code: "upstream_unavailable",
        status: None,
    },
    Mapper {
        matches: Match::CodeDetails("request_payload_too_large"),
        message: "request body is larger than this router takes",
        kind: "invalid_request_error",
        code: "request_too_large",
        status: None,
    },
    // The message is the rate-limit service's: which limit, whose, when it resets.
    Mapper {
        matches: Match::Flags(&["RL"]),
        message: "%LOCAL_REPLY_BODY%",
        kind: "rate_limit_error",
        code: "rate_limit_exceeded",
        status: None,
    },
    Mapper {
        matches: Match::Flags(&["RLSE"]),
        message: "the rate-limit service is unavailable, and this limit refuses requests until it answers",
        kind: "upstream_error",
        code: "limits_unavailable",
        status: None,
    },
    Mapper {
        matches: Match::CodeDetails("failed_to_inject_credential"),
        message: "Envoy could not get this deployment's Entra ID token (its token endpoint refused the client credentials or did not answer; Envoy's log says which)",
        kind: "upstream_error",
        code: "provider_credentials_unavailable",
        status: Some(503),
    },
];

/// The connection manager's `local_reply_config`, from [`LOCAL_REPLY_MAPPERS`].
pub(crate) fn local_reply_config() -> Value {
    let mappers: Vec<Value> = LOCAL_REPLY_MAPPERS.iter().map(mapper).collect();
    json!({"mappers": mappers})
}

fn mapper(mapper: &Mapper) -> Value {
    let filter = match mapper.matches {
        Match::Flags(flags) => json!({"response_flag_filter": {"flags": flags}}),
        Match::CodeDetails(details) => json!({"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": format!("response.code_details == '{details}'"),
            },
        }}),
    };
    let mut value = json!({"filter": filter});
    if let Some(status) = mapper.status {
        value["status_code"] = json!(status);
    }
    value["body_format_override"] = json!({
        "json_format": {"error": {"message": mapper.message, "type": mapper.kind, "code": mapper.code}},
        "content_type": "application/json",
    });
    value
}

/// What a descriptor adds to its count.
#[derive(Clone, Copy)]
enum Charge {
    One,
    /// `hits_addend: 0`: refused only if already over.
    CheckOnly,
    /// The number the filter left in this filter state, once the stream is done.
    AtStreamEnd(&'static str),
}

/// A descriptor's entries: (descriptor key, the filter state it reads).
type Subject = &'static [(&'static str, &'static str)];

const KEY: Subject = &[(rate_limit::KEY_ENTRY, filter_state::KEY_ALIAS)];
const TEAM: Subject = &[(rate_limit::TEAM_ENTRY, filter_state::TEAM_ID)];
const KEY_MODEL: Subject = &[
    (rate_limit::KEY_ENTRY, filter_state::KEY_ALIAS),
    (rate_limit::MODEL_ENTRY, filter_state::LIMITED_MODEL),
];
const BUDGET_KEY: Subject = &[(rate_limit::KEY_ENTRY, filter_state::BUDGET_KEY_ALIAS)];
const BUDGET_TEAM: Subject = &[(rate_limit::TEAM_ENTRY, filter_state::BUDGET_TEAM_ID)];

const RATES: [(Kind, Charge); 3] = [
    (Kind::Requests, Charge::One),
    (Kind::Tokens, Charge::CheckOnly),
    (Kind::Tokens, Charge::AtStreamEnd(filter_state::TOTAL_TOKENS)),
];
const BUDGETS: [(Kind, Charge); 2] = [
    (Kind::Budget, Charge::CheckOnly),
    (Kind::Budget, Charge::AtStreamEnd(filter_state::COST_MICRO_USD)),
];

/// Envoy's rate-limit filters, after the Wasm filter, where some limit
/// needs them: requests and tokens in one, budgets in the other, so that
/// each fails open or closed as `limits_service_unavailable` says (the
/// budget filter's descriptors name only keys under a budget, so no other
/// key waits on it). Each checks a keyed request when its body has been
/// read (requests count 1, tokens and dollars 0: check only), and when the
/// stream is done charges the tokens and cost the filter left in filter
/// state. A request without a key alias in filter state (master key, no
/// key) has no descriptor, so no check. `rate_limits` sit in the filters'
/// own configuration: on a route Envoy drops `hits_addend`.
pub(crate) fn rate_limit_filters(config: &Config) -> Vec<Value> {
    let unavailable = config.limits_unavailable;
    let mut filters = Vec::new();
    if config.rates_limited {
        let subjects: &[Subject] = match config.keys.has_model_limits() {
            true => &[KEY, TEAM, KEY_MODEL],
            false => &[KEY, TEAM],
        };
        let allow = unavailable.rates_allow;
        filters.push(rate_limit_filter(
            rate_limit::RATES_FILTER,
            allow,
            true,
            subjects,
            &RATES,
        ));
    }
    if config.budgeted() {
        let allow = unavailable.budgets_allow;
        let subjects = [BUDGET_KEY, BUDGET_TEAM];
        filters.push(rate_limit_filter(
            rate_limit::BUDGETS_FILTER,
            allow,
            false,
            &subjects,
            &BUDGETS,
        ));
    }
    filters
}

/// A rate-limit filter whose descriptors name each subject and a kind of
/// limit; while the service cannot answer, requests pass where
/// `allow_when_down`, else are refused (503). `headers`: the client is told
/// its limits (`x-ratelimit-*`).
fn rate_limit_filter(
    name: &str,
    allow_when_down: bool,
    headers: bool,
    subjects: &[Subject],
    entries: &[(Kind, Charge)],
) -> Value {
    let rate_limits: Vec<Value> = subjects
        .iter()
        .flat_map(|subject| entries.iter().map(|&(kind, charge)| rate_limit(subject, kind, charge)))
        .collect();
    let mut config = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
        "domain": rate_limit::DOMAIN,
        "timeout": "0.5s",
        "failure_mode_deny": !allow_when_down,
    });
    if !allow_when_down {
        config["status_on_error"] = json!({"code": "ServiceUnavailable"});
    }
    if headers {
        config["enable_x_ratelimit_headers"] = json!("DRAFT_VERSION_03");
    }
    config["rate_limit_service"] = json!({
        "transport_api_version": "V3",
        "grpc_service": {"envoy_grpc": {"cluster_name": rate_limit::CLUSTER}},
    });
    config["rate_limits"] = Value::Array(rate_limits);
    json!({"name": name, "typed_config": config})
}

/// One descriptor: the subject's entries from filter state, the limit's
/// kind, and what it adds.
fn rate_limit(subject: Subject, kind: Kind, charge: Charge) -> Value {
    let mut actions: Vec<Value> = subject
        .iter()
        .map(|(entry, state)| {
            json!({"extension": {
                "name": entry,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.FilterStateInput",
                    "key": filter_state::envoy_key(state),
                },
            }})
        })
        .collect();
    actions.push(json!({"generic_key": {
        "descriptor_key": rate_limit::LIMIT_ENTRY,
        "descriptor_value": kind.descriptor_value(),
    }}));
    let mut descriptor = json!({"actions": actions});
    match charge {
        Charge::One => {}
        Charge::CheckOnly => descriptor["hits_addend"] = json!({"number": 0}),
        Charge::AtStreamEnd(number) => {
            descriptor["apply_on_stream_done"] = json!(true);
            descriptor["hits_addend"] = json!({"format": filter_state::plain_command(number)});
        }
    }
    descriptor
}

/// Envoy gets an Entra ID token (OAuth2 client credentials grant, the
/// secret in the form as MSAL sends it), renews it before it expires, and
/// sends it as `Authorization: Bearer` on requests the filter sent to the
/// deployment's own cluster only (the routing header, matched once the
/// filter has set it). (It sits in the listener's chain: as the cluster's
/// upstream filter Envoy 1.40 crashes loading it; and a filter turned on
/// per route would be chosen by the route before the filter set the header.)
pub(crate) fn entra_filter(injector: &EntraInjector, header: &str) -> Value {
    let skip_other_clusters = json!({
        "predicate": {"not_matcher": {"single_predicate": {
            "input": {
                "name": "routing-header",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                    "header_name": header,
                },
            },
            "value_match": {"exact": injector.cluster},
        }}},
        "on_match": {"action": {
            "name": "skip",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"},
        }},
    });
    json!({
        "name": format!("{ROOT_ID}-entra-{}", injector.cluster),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "xds_matcher": {"matcher_list": {"matchers": [skip_other_clusters]}},
            "extension_config": {
                "name": "envoy.filters.http.credential_injector",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3.CredentialInjector",
                    "overwrite": true,
                    "credential": {
                        "name": "envoy.http.injected_credentials.oauth2",
                        "typed_config": oauth2(injector),
                    },
                },
            },
        },
    })
}

fn oauth2(injector: &EntraInjector) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.http.injected_credentials.oauth2.v3.OAuth2",
        "token_endpoint": {
            "cluster": entra_authority_cluster(&injector.authority),
            "uri": injector.token_uri,
            "timeout": "10s",
        },
        "scopes": [injector.scope],
        "client_credentials": {
            "client_id": injector.client_id,
            "client_secret": {"name": entra_secret_name(injector)},
            "auth_type": "URL_ENCODED_BODY",
        },
    })
}

fn entra_authority_cluster(authority: &Upstream) -> String {
    format!("entra_{}", authority.cluster_name())
}

fn entra_secret_name(injector: &EntraInjector) -> String {
    format!("{}_client_secret", injector.cluster)
}

/// The token endpoints' clusters, one per authority.
pub(crate) fn entra_token_clusters(injectors: &[EntraInjector]) -> Vec<Value> {
    let mut authorities: Vec<&Upstream> = injectors.iter().map(|i| &i.authority).collect();
    authorities.dedup();
    authorities
        .into_iter()
        .map(|authority| cluster(&entra_authority_cluster(authority), authority))
        .collect()
}

/// Each client secret as Envoy reads it (never the filter).
pub(crate) fn entra_secrets(injectors: &[EntraInjector]) -> Vec<Value> {
    injectors
        .iter()
        .map(|injector| {
            let secret = match &injector.secret {
                SecretSource::Variable(var) => json!({"environment_variable": var}),
                SecretSource::Inline(value) => json!({"inline_string": value}),
            };
            json!({"name": entra_secret_name(injector), "generic_secret": {"secret": secret}})
        })
        .collect()
}
