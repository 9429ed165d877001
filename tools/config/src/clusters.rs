//! Envoy's clusters as values: one per upstream the filter can choose, a
//! model group's cluster and its route, the rate-limit service's.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use llm_router::config::Config;
use llm_router::contract::{rate_limit, DEPLOYMENT_HEADER, METADATA_DEPLOYMENT, METADATA_NAMESPACE};
use llm_router::model::{Deployment, Endpoint, Scheme, Target, Upstream};
use llm_router::route::{Group, GroupMember};

/// Where the Debian/Ubuntu (and Envoy image) CA bundle is.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The key and type of a cluster's HTTP protocol options.
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const HTTP_OPTIONS_TYPE: &str = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// The entries of a `json!({…})` object, to extend another with.
pub(crate) fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(entries) => entries,
        _ => Map::new(),
    }
}

fn host_name(upstream: &Upstream) -> &str {
    upstream.host.trim_start_matches('[').trim_end_matches(']')
}

fn host_ip(upstream: &Upstream) -> Option<IpAddr> {
    host_name(upstream).parse().ok()
}

/// A literal IP is STATIC; names are resolved by `dns` (`LOGICAL_DNS`: one
/// address at a time, re-resolved, as Envoy advises for large web APIs).
fn discovery(all_ips: bool, dns: &str) -> Map<String, Value> {
    fields(match all_ips {
        true => json!({"type": "STATIC"}),
        false => json!({"type": dns, "dns_lookup_family": "V4_PREFERRED"}),
    })
}

/// The endpoint of an upstream: its address, and the `Host` that
/// `auto_host_rewrite` sends.
fn endpoint(upstream: &Upstream) -> Value {
    json!({
        "address": {"socket_address": {"address": host_name(upstream), "port_value": upstream.port}},
        "hostname": upstream.authority(),
    })
}

/// One cluster: https is TLS checked against the system CA bundle for the
/// upstream's own name.
pub(crate) fn cluster(name: &str, upstream: &Upstream) -> Value {
    let mut cluster = fields(json!({"name": name}));
    cluster.extend(discovery(host_ip(upstream).is_some(), "LOGICAL_DNS"));
    cluster.extend(fields(json!({
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": endpoint(upstream)}]}],
        },
    })));
    if upstream.scheme == Scheme::Https {
        cluster.insert("transport_socket".to_owned(), tls_socket(upstream));
    }
    Value::Object(cluster)
}

/// TLS checked against the system CA bundle for the upstream's own name.
fn tls_socket(upstream: &Upstream) -> Value {
    let host = host_name(upstream);
    let mut tls = fields(json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    }));
    let san_type = match host_ip(upstream) {
        Some(_) => "IP_ADDRESS",
        None => {
            tls.insert("sni".to_owned(), json!(host));
            "DNS"
        }
    };
    tls.insert(
        "common_tls_context".to_owned(),
        json!({"validation_context": {
            "trusted_ca": {"filename": CA_BUNDLE},
            "match_typed_subject_alt_names": [{"san_type": san_type, "matcher": {"exact": host}}],
        }}),
    );
    json!({"name": "envoy.transport_sockets.tls", "typed_config": tls})
}

/// The rate-limit service's cluster (gRPC, so HTTP/2).
pub(crate) fn rate_limit_cluster(service: &Upstream) -> Value {
    let mut cluster = cluster(rate_limit::CLUSTER, service);
    cluster["typed_extension_protocol_options"] = json!({HTTP_OPTIONS: {
        "@type": HTTP_OPTIONS_TYPE,
        "explicit_http_config": {"http2_protocol_options": {}},
    }});
    cluster
}

/// A group member that can be sent to, with its priority renumbered from 0.
struct Member<'c> {
    member: &'c GroupMember,
    priority: u32,
    deployment: &'c Deployment,
    endpoint: &'c Endpoint,
}

/// The members of a group that can be sent to (a deployment missing a
/// variable answers nothing), with their priorities renumbered from 0.
fn usable_members<'c>(group: &'c Group, config: &'c Config) -> Vec<Member<'c>> {
    let usable: Vec<(&GroupMember, &Deployment, &Endpoint)> = group
        .members
        .iter()
        .filter_map(|m| {
            let d = config.router.deployments().get(m.deployment)?;
            match &d.target {
                Target::Fixed(e) => Some((m, d, e)),
                _ => None,
            }
        })
        .collect();
    let mut priorities: Vec<u32> = usable.iter().map(|(m, _, _)| m.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    usable
        .into_iter()
        .map(|(member, deployment, endpoint)| Member {
            priority: priorities
                .iter()
                .position(|&p| p == member.priority)
                .unwrap_or_default() as u32,
            member,
            deployment,
            endpoint,
        })
        .collect()
}

/// The number of priorities a group's usable members have.
fn priorities(members: &[Member]) -> u32 {
    members.iter().map(|m| m.priority + 1).max().unwrap_or(1)
}

/// A group's route: its cluster, with LiteLLM's retries as Envoy's.
pub(crate) fn group_route(group: &Group, config: &Config, header: &str) -> Value {
    let mut retry = json!({
        "retry_on": "connect-failure,refused-stream,reset,5xx",
        "num_retries": config.failover.num_retries,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
            },
        }],
        "host_selection_retry_max_attempts": 5,
    });
    // Each retry moves on to the next priority (order, then fallbacks);
    // within one, to a deployment not tried yet.
    if priorities(&usable_members(group, config)) > 1 {
        retry["retry_priority"] = json!({
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                "update_frequency": 1,
            },
        });
    }
    json!({
        "match": {"prefix": "/", "headers": [{"name": header, "string_match": {"exact": group.cluster}}]},
        "route": {"cluster": group.cluster, "auto_host_rewrite": true, "timeout": "0s", "retry_policy": retry},
        "request_headers_to_remove": [header],
        // The deployment that answered, named from its endpoint's metadata
        // by Envoy (no filter call per attempt).
        "response_headers_to_add": [{
            "header": {
                "key": DEPLOYMENT_HEADER,
                "value": format!(r#"%UPSTREAM_METADATA(["{METADATA_NAMESPACE}", "{METADATA_DEPLOYMENT}"])%"#),
            },
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        }],
    })
}

/// `12s`, `0.5s`.
fn seconds(value: f64) -> String {
    format!("{}s", (value * 1000.0).round() / 1000.0)
}

/// A group's cluster: an endpoint per deployment, `order` and fallbacks as
/// priorities, weights as Envoy's; a deployment that fails `allowed_fails`
/// times in a row is ejected for `cooldown_time` (and the ejected get
/// nothing, even when all are out: no panic mode); `upstream_filter` gives
/// each attempt its deployment's request.
pub(crate) fn group_cluster(group: &Group, config: &Config, upstream_filter: &Value) -> Value {
    let members = usable_members(group, config);
    let all_ips = members.iter().all(|m| host_ip(&m.endpoint.upstream).is_some());
    let failover = &config.failover;
    let cooldown = seconds(failover.cooldown_seconds);
    let mut cluster = fields(json!({"name": group.cluster}));
    cluster.extend(discovery(all_ips, "STRICT_DNS"));
    cluster.extend(fields(json!({
        "connect_timeout": "5s",
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "outlier_detection": {
            "consecutive_5xx": failover.allowed_fails,
            "enforcing_consecutive_5xx": 100,
            "enforcing_success_rate": 0,
            "interval": "1s",
            "base_ejection_time": cooldown,
            "max_ejection_time": cooldown,
            "max_ejection_percent": 100,
        },
        "load_assignment": {
            "cluster_name": group.cluster,
            // A priority takes all traffic while any of its deployments is up.
            "policy": {"overprovisioning_factor": 100000},
            "endpoints": localities(&members),
        },
    })));
    let tls_matches = tls_matches(&members);
    if !tls_matches.is_empty() {
        cluster.insert("transport_socket_matches".to_owned(), Value::Array(tls_matches));
    }
    cluster.insert(
        "typed_extension_protocol_options".to_owned(),
        json!({HTTP_OPTIONS: {
            "@type": HTTP_OPTIONS_TYPE,
            "explicit_http_config": {"http_protocol_options": {}},
            "http_filters": [upstream_filter, {
                "name": "envoy.filters.http.upstream_codec",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec",
                },
            }],
        }}),
    );
    Value::Object(cluster)
}

/// One locality per priority, an endpoint per deployment: its weight, and
/// its deployment id (and TLS name) as metadata.
fn localities(members: &[Member]) -> Vec<Value> {
    (0..priorities(members))
        .map(|priority| {
            let endpoints: Vec<Value> = members
                .iter()
                .filter(|m| m.priority == priority)
                .map(|m| {
                    let upstream = &m.endpoint.upstream;
                    let mut metadata = json!({METADATA_NAMESPACE: {METADATA_DEPLOYMENT: m.deployment.id}});
                    if upstream.scheme == Scheme::Https {
                        metadata["envoy.transport_socket_match"] = json!({"tls": host_name(upstream)});
                    }
                    json!({
                        "endpoint": endpoint(upstream),
                        "load_balancing_weight": m.member.weight,
                        "metadata": {"filter_metadata": metadata},
                    })
                })
                .collect();
            json!({"priority": priority, "lb_endpoints": endpoints})
        })
        .collect()
}

/// TLS to each https deployment of a group, for its own name.
fn tls_matches(members: &[Member]) -> Vec<Value> {
    let mut hosts: Vec<&Upstream> = members
        .iter()
        .map(|m| &m.endpoint.upstream)
        .filter(|u| u.scheme == Scheme::Https)
        .collect();
    hosts.sort_by_key(|u| host_name(u));
    hosts.dedup_by_key(|u| host_name(u));
    hosts
        .into_iter()
        .map(|u| json!({"name": host_name(u), "match": {"tls": host_name(u)}, "transport_socket": tls_socket(u)}))
        .collect()
}
