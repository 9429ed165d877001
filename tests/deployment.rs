//! The files users deploy from: every Envoy config validates in Envoy, and
//! docker-compose.yml, the Istio manifests, the example configuration and
//! envoy/envoy.yaml agree on what they share.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::*;
use serde_json::Value as Json;
// The YAML files are read into JSON values (indexing a missing key gives
// `null`, as a test wants); JSON is YAML, so one written back is too.
use serde_json::Value as Yaml;

fn yaml(path: &str) -> Yaml {
    yaml_docs(path).into_iter().next().expect(path)
}

fn yaml_docs(path: &str) -> Vec<Yaml> {
    let text = fs::read_to_string(root().join(path)).expect(path);
    yaml_rust2::YamlLoader::load_from_str(&text)
        .expect(path)
        .into_iter()
        .map(json_of)
        .collect()
}

fn str_at<'y>(value: &'y Yaml, path: &[&str]) -> &'y str {
    let mut v = value;
    for key in path {
        v = &v[*key];
    }
    v.as_str().unwrap_or_else(|| panic!("no string at {path:?}"))
}

/// The strings of a YAML sequence.
fn strings(value: &Yaml) -> Vec<&str> {
    value
        .as_array()
        .expect("a sequence")
        .iter()
        .filter_map(Yaml::as_str)
        .collect()
}

/// The Wasm filter config (`envoy.extensions.filters.http.wasm.v3.Wasm.config`) of an Envoy file.
fn wasm_config(envoy: &Yaml) -> &Yaml {
    let filters =
        &envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
    &filters[0]["typed_config"]["config"]
}

fn plugin_json(wasm: &Yaml) -> Json {
    serde_json::from_str(str_at(wasm, &["configuration", "value"])).expect("plugin configuration is JSON")
}

fn istio_filter(docs: &[Yaml]) -> &Yaml {
    let envoy_filter = docs
        .iter()
        .find(|d| d["kind"] == "EnvoyFilter")
        .expect("an EnvoyFilter");
    let patches = envoy_filter["spec"]["configPatches"].as_array().expect("patches");
    let patch = patches
        .iter()
        .find(|p| p["applyTo"] == "EXTENSION_CONFIG")
        .expect("the Wasm extension");
    &patch["patch"]["value"]
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("LITELLM_MASTER_KEY", "sk-validate"),
        ("OPENAI_API_KEY", "k"),
        ("ANTHROPIC_API_KEY", "k"),
        ("GROQ_API_KEY", "k"),
    ]
}

#[test]
fn every_shipped_envoy_config_validates() {
    for file in [
        "envoy/envoy.yaml",
        "envoy/envoy.providers.yaml",
        "envoy/envoy.limits.yaml",
    ] {
        let (ok, output) = validate_file(&root().join(file), &env());
        assert!(ok, "{file}:\n{output}");
    }
}

#[test]
fn the_istio_wasm_filter_validates_in_envoy() {
    // The EnvoyFilter's Wasm config, with the module from disk instead of the
    // URL istio-agent would fetch, in place of the local one.
    let docs = yaml_docs("envoy/istio/llm-router.yaml");
    let mut istio_wasm = istio_filter(&docs)["typed_config"].clone();
    istio_wasm["config"]["vm_config"]["code"] = serde_json::json!({"local": {"filename": wasm_path()}});
    let mut envoy = yaml("envoy/envoy.yaml");
    envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
        ["typed_config"] = istio_wasm;
    let (ok, output) = validate(&envoy.to_string(), &env());
    assert!(ok, "{output}");
}

/// The Envoy files and the Istio EnvoyFilter are the generator's output
/// (tools/config checks that); they must carry the same configuration.
#[test]
fn the_istio_filter_and_the_demo_carry_the_generated_configuration() {
    let example: Json =
        serde_json::from_str(&fs::read_to_string(root().join("examples/llm-router.json")).expect("example"))
            .expect("json");
    let providers = yaml("envoy/envoy.providers.yaml");
    let demo = yaml("envoy/envoy.yaml");
    // The demo is the same LiteLLM config with the providers' addresses
    // pointed at the mocks.
    let mut demo_plugin = plugin_json(wasm_config(&demo));
    assert!(demo_plugin["providers"].is_object());
    demo_plugin.as_object_mut().map(|o| o.remove("providers"));
    assert_eq!(demo_plugin, example, "envoy/envoy.yaml");
    assert_eq!(
        plugin_json(wasm_config(&providers)),
        example,
        "envoy/envoy.providers.yaml"
    );

    let docs = yaml_docs("envoy/istio/llm-router.yaml");
    let istio = &istio_filter(&docs)["typed_config"]["config"];
    assert_eq!(plugin_json(istio), example, "envoy/istio/llm-router.yaml");
    for (key, expected) in [
        ("allow_on_headers_stop_iteration", Yaml::Bool(true)),
        ("failure_policy", Yaml::from("FAIL_CLOSED")),
    ] {
        assert_eq!(istio[key], expected, "{key}");
    }
    let env_keys = |wasm: &Yaml| -> BTreeSet<String> {
        strings(&wasm["vm_config"]["environment_variables"]["host_env_keys"])
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(env_keys(istio), env_keys(wasm_config(&providers)));
    // Envoy's buffer leaves the filter room to answer its own 413 first.
    let listener_patch = docs
        .iter()
        .filter_map(|d| d["spec"]["configPatches"].as_array())
        .flatten()
        .find(|p| p["applyTo"] == "LISTENER")
        .expect("the Istio buffer patch");
    assert_eq!(
        listener_patch["patch"]["value"]["per_connection_buffer_limit_bytes"].as_u64(),
        Some(SHIPPED_BUFFER_LIMIT as u64)
    );
    // Envoy's own errors become JSON on the gateway as in the bootstraps.
    let hcm_patch = docs
        .iter()
        .filter_map(|d| d["spec"]["configPatches"].as_array())
        .flatten()
        .find(|p| p["applyTo"] == "NETWORK_FILTER")
        .expect("the Istio local-reply patch");
    let hcm = &demo["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert!(hcm["local_reply_config"]["mappers"].is_array());
    assert_eq!(
        hcm_patch["patch"]["value"]["typed_config"]["local_reply_config"],
        hcm["local_reply_config"]
    );
}

/// A LiteLLM user's config (Azure, vLLM, Ollama, `*`, aliases) becomes a
/// bootstrap Envoy accepts, as `make run LITELLM=…` writes it.
#[test]
fn a_users_litellm_config_generates_a_valid_bootstrap() {
    let config = fs::read_to_string(root().join("examples/litellm-azure-vllm.yaml")).expect("example");
    let generation_env = [("AZURE_API_BASE", "https://my-endpoint.openai.azure.com/")];
    let (ok, bootstrap, stderr) = run_generator(&["--envoy"], &config, &generation_env);
    assert!(ok, "{stderr}");
    for cluster in [
        "name: https_my-endpoint.openai.azure.com_443",
        "name: http_vllm.llm.svc.cluster.local_8000",
        "name: http_127.0.0.1_11434",
        "name: anthropic",
    ] {
        assert!(bootstrap.contains(cluster), "{cluster}");
    }
    let mut env = env();
    env.extend([("AZURE_API_KEY", "k"), ("AZURE_API_VERSION", "2024-10-21")]);
    let (ok, output) = validate(&bootstrap, &env);
    assert!(ok, "{output}");
}

/// The model-group example: two group clusters with the upstream filter,
/// and Envoy accepts the bootstrap.
#[test]
fn the_failover_example_generates_a_valid_bootstrap() {
    let config = fs::read_to_string(root().join("examples/litellm-failover.yaml")).expect("example");
    let (ok, bootstrap, stderr) = run_generator(&["--envoy"], &config, &[]);
    assert!(ok, "{stderr}");
    for expected in [
        "name: group_gpt-4o\n",
        "name: group_gpt-4o-mini\n",
        "root_id: llm-router-upstream",
    ] {
        assert!(bootstrap.contains(expected), "{expected}");
    }
    let mut env = env();
    env.extend([("AZURE_API_KEY", "k"), ("OPENAI_API_KEY_TEAM_B", "k2")]);
    let (ok, output) = validate(&bootstrap, &env);
    assert!(ok, "{output}");
}

/// `--istio` on the failover example: every group's cluster and route are
/// the bootstrap's, the upstream filter delivered over ECDS; put together
/// as the gateway would (the ECDS reference replaced by the EXTENSION_CONFIG,
/// the module from disk), they are the bootstrap's clusters and routes, and
/// Envoy validates that bootstrap.
#[test]
fn the_istio_groups_filter_is_the_bootstraps_groups() {
    let config = fs::read_to_string(root().join("examples/litellm-failover.yaml")).expect("example");
    let wasm = wasm_path().to_str().expect("utf-8").to_owned();
    let (ok, bootstrap, stderr) = run_generator(&["--envoy", "--wasm", &wasm], &config, &[]);
    assert!(ok, "{stderr}");
    let (ok, istio, stderr) = run_generator(&["--istio", "--sha256", &"ab".repeat(32)], &config, &[]);
    assert!(ok, "{stderr}");
    let parse = |text: &str| json_of(yaml_rust2::YamlLoader::load_from_str(text).expect("YAML").remove(0));
    let mut envoy = parse(&bootstrap);
    let istio = parse(&istio);
    assert_eq!(istio["kind"], "EnvoyFilter");
    let patches = istio["spec"]["configPatches"].as_array().expect("patches");
    let extension = upstream_extension(patches).expect("the upstream filter's extension config");
    let remote = &extension["typed_config"]["config"]["vm_config"]["code"]["remote"];
    assert_eq!(remote["sha256"], "ab".repeat(32));
    let mut upstream_filter =
        serde_json::json!({"name": "llm-router-upstream", "typed_config": extension["typed_config"].clone()});
    upstream_filter["typed_config"]["config"]["vm_config"]["code"] = serde_json::json!({"local": {"filename": wasm}});

    let clusters_of = |envoy: &Yaml| -> Vec<Yaml> {
        envoy["static_resources"]["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .filter(|c| is_group_cluster(&c["name"]))
            .cloned()
            .collect()
    };
    let mut istio_clusters = Vec::new();
    let mut istio_routes = Vec::new();
    for patch in patches {
        match patch["applyTo"].as_str() {
            Some("CLUSTER") if is_group_cluster(&patch["patch"]["value"]["name"]) => {
                assert_eq!(patch["match"]["context"], "GATEWAY");
                let mut cluster = patch["patch"]["value"].clone();
                let filters = &mut cluster["typed_extension_protocol_options"]
                    ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
                assert_eq!(filters[0]["name"], "istio-system.llm-router-upstream");
                assert!(filters[0]["config_discovery"]["config_source"]["ads"].is_object());
                filters[0] = upstream_filter.clone();
                istio_clusters.push(cluster);
            }
            Some("VIRTUAL_HOST") => {
                assert_eq!(patch["patch"]["operation"], "MERGE");
                istio_routes.extend(
                    patch["patch"]["value"]["routes"]
                        .as_array()
                        .expect("routes")
                        .iter()
                        .cloned(),
                );
            }
            _ => {}
        }
    }
    let bootstrap_groups = clusters_of(&envoy);
    let hcm = &mut envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        .as_array_mut()
        .expect("routes");
    assert_eq!(istio_clusters.len(), 2, "gpt-4o and gpt-4o-mini");
    assert_eq!(istio_clusters, bootstrap_groups);
    let group_routes: Vec<Yaml> = routes
        .iter()
        .filter(|r| is_group_cluster(&r["route"]["cluster"]))
        .cloned()
        .collect();
    assert_eq!(istio_routes, group_routes);

    // The bootstrap with the gateway's pieces in place of its own validates.
    routes.retain(|r| !is_group_cluster(&r["route"]["cluster"]));
    let catch_all = routes.pop().expect("the catch-all route");
    routes.extend(istio_routes);
    routes.push(catch_all);
    let clusters = envoy["static_resources"]["clusters"].as_array_mut().expect("clusters");
    clusters.retain(|c| !is_group_cluster(&c["name"]));
    clusters.extend(istio_clusters);
    let mut env = env();
    env.extend([("AZURE_API_KEY", "k"), ("OPENAI_API_KEY_TEAM_B", "k2")]);
    let (ok, output) = validate(&envoy.to_string(), &env);
    assert!(ok, "{output}");

    // A config without groups has no upstream filter.
    let (ok, istio, stderr) = run_generator(
        &["--istio"],
        &fs::read_to_string(root().join("examples/demo.yaml")).expect("demo"),
        &[],
    );
    assert!(ok, "{stderr}");
    let istio = parse(&istio);
    let patches = istio["spec"]["configPatches"].as_array().expect("patches");
    assert!(upstream_extension(patches).is_none());
    assert!(!patches.iter().any(|p| p["applyTo"] == "VIRTUAL_HOST"));
}

fn is_group_cluster(name: &Yaml) -> bool {
    name.as_str()
        .is_some_and(|n| n.starts_with(llm_router::contract::GROUP_CLUSTER_PREFIX))
}

/// The upstream filter's EXTENSION_CONFIG in an Istio EnvoyFilter's patches.
fn upstream_extension(patches: &[Yaml]) -> Option<&Yaml> {
    patches
        .iter()
        .filter(|p| p["applyTo"] == "EXTENSION_CONFIG")
        .map(|p| &p["patch"]["value"])
        .find(|value| value["name"] == "istio-system.llm-router-upstream")
}

#[test]
fn istio_routes_every_cluster_the_filter_sets_to_its_provider() {
    let docs = yaml_docs("envoy/istio/providers.yaml");
    let kind = |k: &'static str| docs.iter().filter(move |d| d["kind"] == k);
    let virtual_service = kind("VirtualService").next().expect("a VirtualService");
    let mut routed = BTreeSet::new();
    for route in virtual_service["spec"]["http"].as_array().expect("routes") {
        let cluster = str_at(&route["match"][0]["headers"]["x-llm-cluster"], &["exact"]).to_owned();
        let host = str_at(&route["route"][0]["destination"], &["host"]);
        assert_eq!(str_at(&route["rewrite"], &["authority"]), host);
        assert!(
            kind("ServiceEntry").any(|s| s["spec"]["hosts"][0] == host),
            "ServiceEntry for {host}"
        );
        let rule = kind("DestinationRule")
            .find(|d| d["spec"]["host"] == host)
            .expect("DestinationRule");
        assert_eq!(
            str_at(&rule["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"], &["sni"]),
            host
        );
        routed.insert(cluster);
    }
    let envoy = yaml("envoy/envoy.yaml");
    let clusters: BTreeSet<String> = envoy["static_resources"]["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| str_at(c, &["name"]).to_owned())
        .collect();
    assert_eq!(routed, clusters);
}

#[test]
fn docker_compose_matches_envoy_yaml() {
    let compose = yaml("docker-compose.yml");
    let envoy_yaml = yaml("envoy/envoy.yaml");
    let envoy = &compose["services"]["envoy"];
    let mocks = &compose["services"]["mock-providers"];

    let makefile = fs::read_to_string(root().join("Makefile")).expect("Makefile");
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION"))
        .and_then(|l| l.split('=').nth(1))
        .map(str::trim)
        .expect("Makefile pins ENVOY_VERSION");
    assert_eq!(str_at(envoy, &["image"]), format!("envoyproxy/envoy:v{version}"));

    // The config and the module are mounted read-only where envoy.yaml and the command expect them.
    let workdir = str_at(envoy, &["working_dir"]);
    let wasm_file = str_at(&wasm_config(&envoy_yaml)["vm_config"]["code"]["local"], &["filename"]);
    let command = strings(&envoy["command"]);
    let config_in_container = command.iter().skip_while(|a| **a != "-c").nth(1).expect("-c CONFIG");
    let mounts = strings(&envoy["volumes"]);
    for (source, target) in [
        ("./envoy/envoy.yaml", config_in_container.to_string()),
        (&format!("./{wasm_file}"), format!("{workdir}/{wasm_file}")),
    ] {
        assert!(
            mounts.contains(&format!("{source}:{target}:ro").as_str()),
            "{source} mounted at {target}: {mounts:?}"
        );
    }

    // Envoy shares the mocks' network: the published port is envoy.yaml's listener on all interfaces.
    assert_eq!(str_at(envoy, &["network_mode"]), "service:mock-providers");
    let listener = &envoy_yaml["static_resources"]["listeners"][0]["address"]["socket_address"];
    assert_eq!(str_at(listener, &["address"]), "0.0.0.0");
    let port = listener["port_value"].as_u64().expect("port");
    assert_eq!(mocks["ports"][0].as_str(), Some(format!("{port}:{port}").as_str()));

    // The mocks listen where envoy.yaml's clusters point.
    for (name, addr) in mock_provider::DEFAULT_LISTEN {
        let cluster = envoy_yaml["static_resources"]["clusters"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("cluster {name}"));
        let socket =
            &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(
            format!(
                "{}:{}",
                str_at(socket, &["address"]),
                socket["port_value"].as_u64().unwrap_or(0)
            ),
            addr
        );
    }

    // Envoy gets every variable the VM reads; the mocks accept the keys Envoy sends.
    for key in wasm_config(&envoy_yaml)["vm_config"]["environment_variables"]["host_env_keys"]
        .as_array()
        .expect("keys")
    {
        let key = key.as_str().expect("name");
        assert!(envoy["environment"][key].is_string(), "envoy's environment lacks {key}");
        if key != "LITELLM_MASTER_KEY" {
            assert_eq!(envoy["environment"][key], mocks["environment"][key], "{key}");
        }
    }
}

/// docker-compose's limits Envoy asks the llm-router-limits it runs, which
/// reads the file the Envoy's filter configuration was generated from and
/// counts in the compose's Redis.
#[test]
fn docker_compose_runs_the_limits_service_where_envoy_limits_yaml_asks_it() {
    let compose = yaml("docker-compose.yml");
    let envoy_yaml = yaml("envoy/envoy.limits.yaml");
    let services = &compose["services"];
    let limits = &services["limits"];
    let command = strings(&limits["command"]);
    let flag = |name: &str| {
        command
            .iter()
            .skip_while(|a| **a != name)
            .nth(1)
            .copied()
            .unwrap_or_else(|| panic!("llm-router-limits {name}: {command:?}"))
    };
    let cluster = envoy_yaml["static_resources"]["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "llm_router_limits"))
        .expect("the rate-limit service's cluster");
    let socket =
        &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
    let asked = format!(
        "{}:{}",
        str_at(socket, &["address"]),
        socket["port_value"].as_u64().unwrap_or(0)
    );
    assert_eq!(flag("--listen"), asked);
    assert!(strings(&limits["volumes"]).contains(&format!("./examples/limits.yaml:{}:ro", flag("--config")).as_str()));
    let redis_port = strings(&services["redis"]["command"])
        .iter()
        .skip_while(|a| **a != "--port")
        .nth(1)
        .map(|p| p.to_string())
        .expect("redis --port");
    assert_eq!(flag("--redis"), format!("redis://127.0.0.1:{redis_port}"));
    for service in ["redis", "limits", "envoy-limits"] {
        assert_eq!(str_at(&services[service], &["network_mode"]), "service:mock-providers");
    }
    let envoy = &services["envoy-limits"];
    let mounts = strings(&envoy["volumes"]);
    assert!(mounts.contains(&"./envoy/envoy.limits.yaml:/llm-router/envoy/envoy.limits.yaml:ro"));
    let listener = &envoy_yaml["static_resources"]["listeners"][0]["address"]["socket_address"];
    let port = listener["port_value"].as_u64().expect("port");
    assert!(strings(&services["mock-providers"]["ports"]).contains(&format!("{port}:{port}").as_str()));
    // The Envoy's rate-limit filters sit after the Wasm filter, before the router.
    let filters: Vec<&str> = envoy_yaml["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"]
        .as_array()
        .expect("filters")
        .iter()
        .map(|f| str_at(f, &["name"]))
        .collect();
    assert_eq!(
        filters,
        [
            "llm-router",
            "llm-router-rates",
            "llm-router-budgets",
            "envoy.filters.http.router"
        ]
    );
}

/// `--istio` carries the rate-limit filters as the bootstrap has them,
/// and the rate-limit service's cluster (gRPC: HTTP/2).
#[test]
fn istio_carries_the_generated_rate_limit_filters() {
    let config = fs::read_to_string(root().join("examples/limits.yaml")).expect("example");
    let (ok, istio, stderr) = run_generator(&["--istio"], &config, &[]);
    assert!(ok, "{stderr}");
    let istio = json_of(yaml_rust2::YamlLoader::load_from_str(&istio).expect("YAML").remove(0));
    let patches: Vec<&Yaml> = istio["spec"]["configPatches"]
        .as_array()
        .expect("patches")
        .iter()
        .collect();
    let generated = yaml("envoy/envoy.limits.yaml");
    let generated_filters = generated["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"]
        .as_array()
        .expect("filters");
    for name in ["llm-router-rates", "llm-router-budgets"] {
        let istio = patches
            .iter()
            .find(|p| p["applyTo"] == "HTTP_FILTER" && p["patch"]["value"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("Istio patch {name}"));
        assert_eq!(istio["patch"]["operation"], Yaml::from("INSERT_BEFORE"));
        let bootstrap = generated_filters
            .iter()
            .find(|f| f["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("generated {name}"));
        assert_eq!(
            istio["patch"]["value"]["typed_config"], bootstrap["typed_config"],
            "{name}"
        );
    }
    let cluster = patches
        .iter()
        .find(|p| p["applyTo"] == "CLUSTER" && p["patch"]["value"]["name"] == "llm_router_limits")
        .expect("the rate-limit service's cluster");
    let options = &cluster["patch"]["value"]["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(options["explicit_http_config"]["http2_protocol_options"].is_object());
}
