//! `--istio`: a configuration's model groups for the Istio ingress gateway,
//! as an EnvoyFilter applied beside envoy/istio/llm-router.yaml. Each group
//! is what the Envoy bootstrap has ([`bootstrap::group_cluster`],
//! [`bootstrap::group_route`]): its cluster (added), its route (merged into
//! the gateway's virtual host), and the filter again as the cluster's
//! upstream filter, delivered over ECDS as the listener's filter is, so that
//! istio-agent fetches the module and checks its sha256.

use serde_json::{json, Value};

use llm_router::contract::UPSTREAM_ROOT_ID;

use crate::bootstrap::{self, Options};
use crate::convert::Conversion;

/// The EXTENSION_CONFIG name of the upstream filter (Istio's
/// `<namespace>.<name>`, as the listener's `istio-system.llm-router`).
const UPSTREAM_EXTENSION: &str = "istio-system.llm-router-upstream";

/// What istio-agent fetches the module through (the proto needs a cluster;
/// the agent downloads it itself), as in envoy/istio/llm-router.yaml.
const FETCH_CLUSTER: &str = "llm-router-wasm-fetch";

/// The gateway's HTTP port and its virtual host (envoy/istio/providers.yaml's
/// Gateway: port 80, hosts `*`).
const GATEWAY_PORT: u16 = 80;

/// One of the bootstrap's YAML list items as JSON.
fn item(text: &str) -> Result<Value, String> {
    let document = crate::yaml::parse(text).map_err(|(line, column, problem)| {
        format!("the generated YAML does not read back ({line}:{column}: {problem}):\n{text}")
    })?;
    Ok(document.value.get(0).cloned().unwrap_or(Value::Null))
}

/// JSON as a YAML flow value, indented to sit under `value:`.
fn indented(value: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    serde_json::to_string_pretty(value)
        .unwrap_or_default()
        .lines()
        .map(|line| format!("{pad}{line}\n"))
        .collect()
}

/// The EnvoyFilter, or `None` where the configuration has no group.
pub fn groups_filter(conversion: &Conversion, options: &Options, sha256: &str) -> Result<Option<String>, String> {
    let config = &conversion.config;
    let groups = config.router.groups();
    if groups.is_empty() {
        return Ok(None);
    }
    // The upstream filter's configuration: the bootstrap's, with the module
    // fetched by istio-agent.
    let mut upstream = item(&format!(
        "- name: {UPSTREAM_EXTENSION}\n{}",
        bootstrap::wasm_filter(conversion, &options.wasm, UPSTREAM_ROOT_ID, 0)
    ))?;
    upstream["typed_config"]["config"]["vm_config"]["code"] = json!({
        "remote": {
            "http_uri": {"uri": options.wasm, "cluster": FETCH_CLUSTER, "timeout": "30s"},
            "sha256": sha256,
        }
    });
    let ecds = format!(
        "        - name: {UPSTREAM_EXTENSION}
          config_discovery:
            config_source: {{ ads: {{}}, initial_fetch_timeout: 0s }}
            type_urls: [\"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\"]
"
    );
    let header = &config.cluster_header;
    let mut out = format!(
        "# The model groups of `{command}` on the Istio ingress gateway
# (istio: ingressgateway in istio-system): apply beside envoy/istio/llm-router.yaml,
# whose filter configuration must be this config's (`llm-router-config` without
# --envoy prints it). Generated: edit the config and regenerate.
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: llm-router-groups
  namespace: istio-system
spec:
  workloadSelector:
    labels:
      istio: ingressgateway
  configPatches:
  # The filter again, as each group's upstream filter (once per attempt).
  - applyTo: EXTENSION_CONFIG
    patch:
      operation: ADD
      value:
{extension}",
        command = options.command,
        extension = indented(&upstream, 8),
    );
    for group in groups {
        let cluster = item(&bootstrap::group_cluster(group, config, &ecds))?;
        let route = item(&bootstrap::group_route(group, config, header))?;
        out.push_str(&format!(
            "  # Model group `{model_name}`: its cluster, and its route on the gateway.
  - applyTo: CLUSTER
    match:
      context: GATEWAY
    patch:
      operation: ADD
      value:
{cluster}  - applyTo: VIRTUAL_HOST
    match:
      context: GATEWAY
      routeConfiguration:
        portNumber: {GATEWAY_PORT}
    patch:
      operation: MERGE
      value:
        routes:
{route}",
            model_name = group.model_name,
            cluster = indented(&cluster, 8),
            route = indented(&Value::Array(vec![route]), 10),
        ));
    }
    Ok(Some(out))
}
