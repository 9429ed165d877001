use super::*;
use llm_router_config::yaml;

/// The repository's files, read at test time (they are what is checked).
fn repository_file(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// The generator as the command line runs it, on `args` (the config last).
fn generate(args: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<Output, String> {
    let arguments = arguments(args.iter().map(|a| a.to_string()).collect())?;
    let path = arguments.path.clone().expect("a config path");
    run(
        &path,
        &repository_file(&path),
        arguments.envoy.as_ref(),
        &arguments.prices,
        env,
    )
}

fn convert_text(yaml: &str, envoy: bool, env: &dyn Fn(&str) -> Option<String>) -> Result<Output, String> {
    let options = envoy.then(|| arguments(vec!["--envoy".into()]).ok()?.envoy).flatten();
    run("config.yaml", yaml, options.as_ref(), &PriceTable::Venv(None), env)
}

/// Every generated file in the repository, with the command that writes it
/// (`make generate` runs the same list).
const GENERATED: &[(&[&str], &str)] = &[
    (
        &[
            "--envoy",
            "--wasm",
            "target/wasm32-wasip1/release/llm_router.wasm",
            "--listen",
            "0.0.0.0:10000",
            "examples/demo.yaml",
        ],
        "envoy/envoy.yaml",
    ),
    (
        &[
            "--envoy",
            "--wasm",
            "target/wasm32-wasip1/release/llm_router.wasm",
            "examples/litellm-config.yaml",
        ],
        "envoy/envoy.providers.yaml",
    ),
    (&["examples/litellm-config.yaml"], "examples/llm-router.json"),
    (
        &[
            "--envoy",
            "--wasm",
            "target/wasm32-wasip1/release/llm_router.wasm",
            "--listen",
            "0.0.0.0:10001",
            "--admin",
            "127.0.0.1:9902",
            "examples/limits.yaml",
        ],
        "envoy/envoy.limits.yaml",
    ),
    (
        &["--istio", "examples/litellm-config.yaml"],
        "envoy/istio/llm-router.yaml",
    ),
];

#[test]
fn the_shipped_files_are_the_generators_output() {
    let makefile = repository_file("Makefile");
    for (args, file) in GENERATED {
        let output = generate(args, &no_env).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            output.text == repository_file(file),
            "{file} is not what `llm-router-config {}` prints: run `make generate`",
            args.join(" ")
        );
        let recipe = format!("$(GENERATOR) {} > {file}", args.join(" "));
        assert!(makefile.contains(&recipe), "`make generate` writes {file}: {recipe}");
    }
}

/// A config with the LiteLLM features users bring: Azure, a self-hosted
/// server over http, a passthrough `*`, aliases.
const REALISTIC: &str = "\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-prod
      api_base: https://my-endpoint.openai.azure.com/
      api_version: \"2024-10-21\"
      api_key: os.environ/AZURE_API_KEY
  - model_name: llama
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3.1-8B-Instruct
      api_base: http://10.0.0.7:8000/v1
  - model_name: local-qwen
    litellm_params:
      model: openai/qwen2.5
      api_base: http://localhost:11434/v1
      api_key: ollama
  - model_name: \"*\"
    litellm_params:
      model: \"*\"
router_settings:
  model_group_alias:
    gpt-4: gpt-4o
    llama-70b: {model: llama, hidden: true}
  routing_strategy: simple-shuffle
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
";

#[test]
fn every_upstream_gets_its_own_cluster() {
    let output = convert_text(REALISTIC, true, &no_env).expect("converts");
    let bootstrap = yaml::parse(&output.text).expect("the bootstrap is YAML").value;
    let clusters = bootstrap["static_resources"]["clusters"].as_array().expect("clusters");
    let field = |c: &serde_json::Value, pointer: &str| c.pointer(pointer).map(|v| v.to_string()).unwrap_or_default();
    let socket = "/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address";
    let summary: Vec<String> = clusters
        .iter()
        .map(|c| {
            format!(
                "{} {} {}:{} host={} sni={}",
                field(c, "/name"),
                field(c, "/type"),
                field(c, &format!("{socket}/address")),
                field(c, &format!("{socket}/port_value")),
                field(c, "/load_assignment/endpoints/0/lb_endpoints/0/endpoint/hostname"),
                field(c, "/transport_socket/typed_config/sni"),
            )
        })
        .collect();
    // The passthrough reaches every built-in provider with an address: a
    // few rows stand for them.
    let expected = [
        r#""anthropic" "LOGICAL_DNS" "api.anthropic.com":443 host="api.anthropic.com" sni="api.anthropic.com""#,
        r#""gemini" "LOGICAL_DNS" "generativelanguage.googleapis.com":443 host="generativelanguage.googleapis.com" sni="generativelanguage.googleapis.com""#,
        r#""http_10.0.0.7_8000" "STATIC" "10.0.0.7":8000 host="10.0.0.7:8000" sni="#,
        r#""http_localhost_11434" "LOGICAL_DNS" "localhost":11434 host="localhost:11434" sni="#,
        r#""https_my-endpoint.openai.azure.com_443" "LOGICAL_DNS" "my-endpoint.openai.azure.com":443 host="my-endpoint.openai.azure.com" sni="my-endpoint.openai.azure.com""#,
        r#""openai" "LOGICAL_DNS" "api.openai.com":443 host="api.openai.com" sni="api.openai.com""#,
    ];
    for row in expected {
        assert!(summary.iter().any(|s| s == row), "{row}\nin\n{}", summary.join("\n"));
    }
    let names: Vec<&str> = clusters.iter().filter_map(|c| c["name"].as_str()).collect();
    let mut sorted = names.clone();
    sorted.dedup();
    assert_eq!(names.len(), sorted.len(), "one cluster per upstream: {names:?}");
    // Every cluster the filter can set exists, and no other.
    let conversion = convert::convert(
        &yaml::parse(REALISTIC).expect("yaml").value,
        &ApiBaseVariables::Now(&no_env),
    )
    .expect("converts");
    let upstreams: Vec<&str> = conversion
        .config
        .upstreams()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, upstreams);
}

#[test]
fn host_env_keys_are_exactly_the_variables_the_filter_reads() {
    let rows: &[(&str, bool, &[&str])] = &[
        (REALISTIC, true, &[]),
        (
            "model_list:\n- {model_name: a, litellm_params: {model: anthropic/claude-3, api_key: os.environ/TEAM_A_KEY}}\n\
             - {model_name: b, litellm_params: {model: openai/gpt-4o, api_key: sk-literal}}\n\
             - {model_name: c/*, litellm_params: {model: groq/*}}\n\
             - {model_name: d, litellm_params: {model: azure/d, api_base: os.environ/AZURE_API_BASE, api_version: os.environ/AZ_VERSION}}\n\
             general_settings: {master_key: os.environ/MASTER}\n",
            false,
            &["AZURE_API_BASE", "AZURE_API_KEY", "AZ_VERSION", "GROQ_API_KEY", "MASTER", "TEAM_A_KEY"],
        ),
        (
            "model_list:\n- {model_name: d, litellm_params: {model: azure/d, api_base: os.environ/AZURE_API_BASE, api_key: k}}\n",
            true,
            &["AZURE_API_VERSION"],
        ),
    ];
    let azure = |var: &str| (var == "AZURE_API_BASE").then(|| "https://x.openai.azure.com".to_owned());
    for (i, &(yaml_text, envoy, expected)) in rows.iter().enumerate() {
        let document = yaml::parse(yaml_text).expect("yaml");
        let variables = if envoy {
            ApiBaseVariables::Now(&azure)
        } else {
            ApiBaseVariables::AtRunTime
        };
        let conversion = convert::convert(&document.value, &variables).unwrap_or_else(|e| panic!("row {i}: {e:?}"));
        let keys: Vec<&str> = conversion.env_keys.iter().map(String::as_str).collect();
        if i == 0 {
            // The passthrough reads every provider's conventional variable,
            // the vLLM deployment without a key LiteLLM's HOSTED_VLLM_API_KEY.
            for key in [
                "LITELLM_MASTER_KEY",
                "AZURE_API_KEY",
                "OPENAI_API_KEY",
                "GEMINI_API_KEY",
                "HOSTED_VLLM_API_KEY",
            ] {
                assert!(keys.contains(&key), "{key} in {keys:?}");
            }
        } else {
            assert_eq!(keys, expected, "row {i}");
        }
    }
    // The variables unset where the generator runs are named, once, in one note.
    let output = convert_text(rows[2].0, true, &azure).expect("converts");
    let notes: Vec<&String> = output
        .diagnostics
        .iter()
        .filter(|d| d.starts_with("note: not set here"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", output.diagnostics);
    assert!(notes[0].ends_with(": AZURE_API_VERSION"), "{}", notes[0]);
}

#[test]
fn errors_name_the_file_line_and_entry() {
    let rows: &[(&str, &str)] = &[
        ("model_list:\n  - model_name: a\n   bad: [\n", "config.yaml:3:"),
        ("general_settings: {}\n", "config.yaml:1:1: the file has no `model_list`"),
        ("- a\n- b\n", "config.yaml:1:1: the file is not a YAML mapping"),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/*\n",
            "config.yaml:7:7: model_list[1] (model_name `gpt-4o`): litellm_params.model `openai/*` has 1 `*` but model_name has 0",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, tpm: twenty}\n",
            "config.yaml:3:39: model_list[0].litellm_params.tpm: invalid type: string \"twenty\", expected f64",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: azure/a\n      api_base: os.environ/AZURE_API_BASE\n",
            "config.yaml:5:7: model_list[0] (model_name `a`): api_base `os.environ/AZURE_API_BASE`: AZURE_API_BASE is not set",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\nproviders:\n  groq:\n    clustr: g\n",
            "config.yaml:6:5: providers.groq.clustr: unknown field `clustr`",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a}\nrouter_settings:\n  model_group_alias:\n    b: nowhere\n",
            "config.yaml:6:5: router_settings.model_group_alias `b`: its target `nowhere` matches no model_name",
        ),
    ];
    for (yaml_text, expected) in rows {
        let error = convert_text(yaml_text, true, &no_env)
            .err()
            .unwrap_or_else(|| panic!("{yaml_text} converts"));
        assert!(
            error.starts_with(expected),
            "{yaml_text}\n{error}\ndoes not start with\n{expected}"
        );
        assert!(
            !error.contains(" at line "),
            "a position in the generated JSON: {error}"
        );
    }
}

#[test]
fn what_is_not_acted_on_is_a_warning_at_its_line() {
    let yaml_text = "\
model_list:
  - model_name: a
    litellm_params:
      model: openai/a
      api_key: k
      max_parallel_requests: 30
    model_info: {id: x}
router_settings:
  routing_strategy: usage-based-routing-v2
  redis_host: redis
litellm_settings:
  callbacks: [langfuse]
general_settings:
  master_key: sk-1234
  database_url: postgres://db
environment_variables:
  X: y
general_settings:
  master_key: sk-1234
";
    let output = convert_text(yaml_text, false, &no_env).expect("converts");
    // In the order of the file's lines.
    let expected = [
        "config.yaml:6:7: warning: model_list[0].litellm_params.max_parallel_requests is ignored",
        "config.yaml:9:3: warning: router_settings.routing_strategy: `usage-based-routing-v2` is not supported",
        "config.yaml:10:3: warning: router_settings.redis_host is ignored",
        "config.yaml:12:3: warning: litellm_settings.callbacks is ignored",
        "config.yaml:16:1: warning: environment_variables is ignored",
        "config.yaml:18:1: warning: general_settings is given twice",
        "config.yaml:19:3: warning: general_settings.master_key is a publicly known example key",
    ];
    assert_eq!(output.diagnostics.len(), expected.len(), "{:?}", output.diagnostics);
    for (diagnostic, fragment) in output.diagnostics.iter().zip(expected) {
        assert!(
            diagnostic.starts_with(fragment),
            "{fragment}\nin\n{}",
            output.diagnostics.join("\n")
        );
    }
    // Only what the filter reads is carried: no database URL, no key the
    // compiler reported as ignored, no section left empty.
    assert_eq!(
        output.text,
        "{\n  \"model_list\": [\n    {\"model_name\": \"a\", \"litellm_params\": {\"model\": \"openai/a\", \"api_key\": \"k\"}, \"model_info\": {\"id\": \"x\"}}\n  ],\n  \"router_settings\": {\"routing_strategy\": \"usage-based-routing-v2\"},\n  \"general_settings\": {\"master_key\": \"sk-1234\"}\n}\n"
    );
}

#[test]
fn the_filters_own_keys_are_carried() {
    let yaml_text = "model_list:\n  - model_name: n/*\n    litellm_params:\n      model: newco/*\n\
                     providers:\n  newco:\n    api_base: https://api.newco.ai/v1\n\
                     max_body_bytes: 1000\ncluster_header: x-route\ninject_stream_usage: false\n\
                     access_log_facts: false\n";
    let output = convert_text(yaml_text, true, &no_env).expect("converts");
    let bootstrap = yaml::parse(&output.text).expect("the bootstrap is YAML").value;
    let manager = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let plugin_text = manager["http_filters"][0]["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .expect("the plugin configuration");
    let plugin: serde_json::Value = serde_json::from_str(plugin_text).expect("the plugin configuration is JSON");
    assert_eq!(
        plugin["providers"]["newco"],
        serde_json::json!({"api_base": "https://api.newco.ai/v1"})
    );
    assert_eq!(plugin["max_body_bytes"], 1000);
    assert_eq!(plugin["cluster_header"], "x-route");
    assert_eq!(plugin["inject_stream_usage"], false);
    assert_eq!(plugin["access_log_facts"], false);
    // The access log keeps Envoy's own fields and reads no fact the filter
    // was told not to write.
    let log_fields = |manager: &serde_json::Value| {
        let fields = &manager["access_log"][0]["typed_config"]["log_format"]["json_format"];
        fields.as_object().expect("the access log's fields").clone()
    };
    let fields = log_fields(manager);
    assert_eq!(fields["upstream_cluster"], "%UPSTREAM_CLUSTER%");
    let facts: Vec<&String> = fields
        .iter()
        .filter(|(_, value)| value.as_str().is_some_and(|v| v.contains("FILTER_STATE")))
        .map(|(name, _)| name)
        .collect();
    assert!(facts.is_empty(), "{facts:?}");
    let with_facts =
        convert_text(&yaml_text.replace("access_log_facts: false\n", ""), true, &no_env).expect("converts");
    let with_facts = yaml::parse(&with_facts.text).expect("the bootstrap is YAML").value;
    let manager_with_facts =
        &with_facts["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(
        log_fields(manager_with_facts)["model"],
        "%FILTER_STATE(wasm.llm_router.model:PLAIN)%"
    );
    let catch_all = &manager["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(catch_all["route"]["cluster_header"], "x-route");
    assert_eq!(catch_all["request_headers_to_remove"], serde_json::json!(["x-route"]));
    let listener = &bootstrap["static_resources"]["listeners"][0];
    assert_eq!(
        listener["per_connection_buffer_limit_bytes"].as_u64(),
        Some(1000 + llm_router::contract::ENVOY_BUFFER_MARGIN as u64)
    );
    assert_eq!(bootstrap["static_resources"]["clusters"][0]["name"], "newco");
    let wasm = &manager["http_filters"][0]["typed_config"]["config"];
    assert_eq!(
        wasm["vm_config"]["environment_variables"]["host_env_keys"],
        serde_json::json!(["NEWCO_API_KEY"])
    );
}

#[test]
fn usage_mistakes() {
    for args in [
        &["--listen"][..],
        &["--listen", "localhost:1", "x.yaml"],
        &["--nope", "x.yaml"],
        &["a.yaml", "b.yaml"],
    ] {
        assert!(
            arguments(args.iter().map(|a| a.to_string()).collect()).is_err(),
            "{args:?}"
        );
    }
}

#[test]
fn a_model_group_is_one_cluster_with_a_route_that_retries() {
    let yaml_text = "\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, weight: 3, timeout: 20}
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-prod
      api_base: https://eu.openai.azure.com
      api_key: os.environ/AZURE_API_KEY
      weight: 1
    model_info: {id: azure-eu}
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
router_settings:
  num_retries: 3
  allowed_fails: 2
  cooldown_time: 30
  fallbacks: [{gpt-4o: [claude]}]
";
    let output = convert_text(yaml_text, true, &no_env).expect("converts");
    let bootstrap = yaml::parse(&output.text).expect("the bootstrap is YAML").value;
    let clusters = bootstrap["static_resources"]["clusters"].as_array().expect("clusters");
    // The group's members are reached through its cluster only; `claude`,
    // a fallback, is also a model of its own.
    let names: Vec<&str> = clusters.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["anthropic", "group_gpt-4o"]);
    let group = clusters
        .iter()
        .find(|c| c["name"] == "group_gpt-4o")
        .expect("the group's cluster");
    assert_eq!(group["type"], "STRICT_DNS");
    let endpoints: Vec<String> = group["load_assignment"]["endpoints"]
        .as_array()
        .expect("priorities")
        .iter()
        .flat_map(|locality| {
            let priority = locality["priority"].clone();
            locality["lb_endpoints"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |e| {
                    format!(
                        "p{priority} {} w{} {} tls={}",
                        e["endpoint"]["hostname"],
                        e["load_balancing_weight"],
                        e["metadata"]["filter_metadata"]["llm_router"]["deployment"],
                        e["metadata"]["filter_metadata"]["envoy.transport_socket_match"]["tls"],
                    )
                })
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            r#"p0 "api.openai.com" w1000 "gpt-4o#1" tls="api.openai.com""#,
            r#"p0 "eu.openai.azure.com" w333 "azure-eu" tls="eu.openai.azure.com""#,
            r#"p1 "api.anthropic.com" w1 "claude#1" tls="api.anthropic.com""#,
        ]
    );
    // Each https host gets TLS for its own name.
    let sni: Vec<String> = group["transport_socket_matches"]
        .as_array()
        .expect("TLS per host")
        .iter()
        .map(|m| format!("{}={}", m["match"]["tls"], m["transport_socket"]["typed_config"]["sni"]))
        .collect();
    assert_eq!(
        sni,
        [
            r#""api.anthropic.com"="api.anthropic.com""#,
            r#""api.openai.com"="api.openai.com""#,
            r#""eu.openai.azure.com"="eu.openai.azure.com""#,
        ]
    );
    let outlier = &group["outlier_detection"];
    assert_eq!(
        (
            outlier["consecutive_5xx"].as_u64(),
            outlier["base_ejection_time"].as_str()
        ),
        (Some(2), Some("30s"))
    );
    assert_eq!(group["common_lb_config"]["healthy_panic_threshold"]["value"], 0);
    let filters = group["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        ["http_filters"]
        .as_array()
        .expect("upstream filters");
    let roots: Vec<String> = filters
        .iter()
        .map(|f| {
            f.pointer("/typed_config/config/root_id")
                .or(f.get("name"))
                .map(|v| v.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        roots,
        [r#""llm-router-upstream""#, r#""envoy.filters.http.upstream_codec""#]
    );

    let routes = bootstrap
        .pointer(
            "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/route_config/virtual_hosts/0/routes",
        )
        .and_then(|r| r.as_array())
        .expect("routes");
    let route = &routes[0]["route"];
    assert_eq!(route["cluster"], "group_gpt-4o");
    assert_eq!(
        routes[0]["match"]["headers"][0]["string_match"]["exact"],
        "group_gpt-4o"
    );
    let retry = &route["retry_policy"];
    // The time limit of an attempt comes with each request (the filter's
    // x-envoy-upstream-rq-per-try-timeout-ms), stream or not.
    assert_eq!(
        (
            retry["num_retries"].as_u64(),
            retry.get("per_try_timeout"),
            retry["retry_on"].as_str()
        ),
        (Some(3), None, Some("connect-failure,refused-stream,reset,5xx"))
    );
    assert_eq!(
        retry["retry_priority"]["name"],
        "envoy.retry_priorities.previous_priorities"
    );
    // Envoy names the deployment that answered, from its endpoint's metadata.
    let added = &routes[0]["response_headers_to_add"][0];
    assert_eq!(
        (added["header"]["key"].as_str(), added["header"]["value"].as_str()),
        (
            Some("x-llm-router-deployment"),
            Some(r#"%UPSTREAM_METADATA(["llm_router", "deployment"])%"#)
        )
    );
    // The catch-all route comes last.
    assert_eq!(
        routes.last().and_then(|r| r["route"].get("cluster_header")),
        Some(&serde_json::json!("x-llm-cluster"))
    );
}

#[test]
fn what_cannot_be_served_is_left_out_at_its_line_and_the_rest_served() {
    let yaml_text = "\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: gpt-4o, api_key: k, tpm: 20_000}
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-sonnet
      aws_secret_access_key: do-not-copy
  - model_name: rerank
    litellm_params: {model: nosuch/rerank-v3}
general_settings:
litellm_settings:
  # nothing here yet
";
    let output = convert_text(yaml_text, true, &no_env).expect("converts");
    let warnings: Vec<&String> = output.diagnostics.iter().filter(|d| d.contains("warning:")).collect();
    assert!(
        warnings[0].starts_with(
            "config.yaml:6:7: warning: model_list[1].litellm_params.model: model `claude-bedrock` is not served: "
        ),
        "{warnings:?}"
    );
    assert!(warnings[1]
        .starts_with("config.yaml:7:7: warning: model_list[1].litellm_params.aws_secret_access_key is ignored"));
    assert!(warnings[2].starts_with("config.yaml:9:22: warning: model_list[2].litellm_params.model: model `rerank`"));
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        !output.text.contains("do-not-copy"),
        "an ignored secret reached Envoy's configuration"
    );
    assert!(output.text.contains(r#""tpm": 20000"#), "{}", output.text);
    // The skipped entry is carried (less its ignored keys), so that the
    // filter answers its requests with the reason.
    assert!(
        output.text.contains("bedrock/anthropic.claude-3-sonnet"),
        "{}",
        output.text
    );
}

#[test]
fn an_optional_key_is_not_said_to_answer_503() {
    let yaml_text = "model_list:\n  - model_name: local\n    litellm_params: {model: hosted_vllm/llama, api_base: http://10.0.0.7:8000/v1}\n  - model_name: gpt\n    litellm_params: {model: openai/gpt-4o}\n";
    let output = convert_text(yaml_text, true, &no_env).expect("converts");
    let notes: Vec<&String> = output.diagnostics.iter().filter(|d| d.starts_with("note:")).collect();
    assert!(
        notes.iter().any(|n| n.contains("answers 503): OPENAI_API_KEY")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("note: optional") && n.ends_with(": HOSTED_VLLM_API_KEY")),
        "{notes:?}"
    );
}

/// A listed provider at a server of the user's own takes its variable as
/// optional, unless another route needs the same variable.
#[test]
fn a_listed_providers_own_server_key_is_optional_unless_another_route_needs_it() {
    let yaml_text = "model_list:
  - model_name: tgi
    litellm_params: {model: huggingface/tgi, api_base: http://10.0.0.8:8080/v1}
  - model_name: local-gpt
    litellm_params: {model: openai/gpt-4o, api_base: http://10.0.0.9:8000/v1}
  - model_name: gpt
    litellm_params: {model: openai/gpt-4o}
";
    let output = convert_text(yaml_text, true, &no_env).expect("converts");
    let notes: Vec<&String> = output.diagnostics.iter().filter(|d| d.starts_with("note:")).collect();
    let note = |start: &str| {
        notes
            .iter()
            .find(|n| n.starts_with(start))
            .map(|n| n.rsplit(": ").next())
    };
    assert_eq!(
        note("note: not set here").flatten(),
        Some("OPENAI_API_KEY"),
        "{notes:?}"
    );
    assert_eq!(
        note("note: optional").flatten(),
        Some("HUGGINGFACE_API_KEY"),
        "{notes:?}"
    );
    let bootstrap = yaml::parse(&output.text).expect("the bootstrap is YAML").value;
    let manager = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let keys =
        &manager["http_filters"][0]["typed_config"]["config"]["vm_config"]["environment_variables"]["host_env_keys"];
    assert_eq!(keys, &serde_json::json!(["HUGGINGFACE_API_KEY", "OPENAI_API_KEY"]));
}

/// An `api_base` read from the environment where a credential gives it,
/// or where LiteLLM reads a provider's own address variable
/// (`AZURE_AI_API_BASE`), becomes its cluster, as one in `litellm_params`
/// does: never the stand-in address.
#[test]
fn addresses_from_credentials_and_provider_variables_get_their_clusters() {
    let yaml_text = "model_list:
  - model_name: shared
    litellm_params: {model: azure/gpt-4o, litellm_credential_name: eu}
  - model_name: foundry
    litellm_params: {model: azure_ai/mistral-large}
credential_list:
  - credential_name: eu
    credential_values: {api_key: os.environ/EU_KEY, api_base: os.environ/EU_BASE}
";
    let env = |var: &str| match var {
        "EU_BASE" => Some("https://eu.openai.azure.com".to_owned()),
        "AZURE_AI_API_BASE" => Some("https://f.services.ai.azure.com".to_owned()),
        _ => None,
    };
    let output = convert_text(yaml_text, true, &env).expect("converts");
    let bootstrap = yaml::parse(&output.text).expect("the bootstrap is YAML").value;
    let clusters: Vec<&str> = bootstrap["static_resources"]["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        clusters,
        ["https_eu.openai.azure.com_443", "https_f.services.ai.azure.com_443"]
    );
    let manager = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let config = &manager["http_filters"][0]["typed_config"]["config"];
    let plugin: serde_json::Value =
        serde_json::from_str(config["configuration"]["value"].as_str().expect("plugin")).expect("JSON");
    assert_eq!(
        plugin["credential_list"][0]["credential_values"]["api_base"],
        "https://eu.openai.azure.com"
    );
    assert_eq!(
        plugin["model_list"][1]["litellm_params"]["api_base"],
        "https://f.services.ai.azure.com"
    );
    let keys = &config["vm_config"]["environment_variables"]["host_env_keys"];
    assert_eq!(
        keys,
        &serde_json::json!(["AZURE_AI_API_KEY", "AZURE_API_VERSION", "EU_KEY"])
    );
}

/// Entra ID client credentials: the bootstrap has Envoy's injector for
/// that deployment's cluster (matched on the routing header), the token
/// endpoint from `AZURE_AUTHORITY_HOST`, and the secret read by Envoy from
/// its environment; the plugin configuration never holds the secret, and a
/// tenant left to an unset variable is an error at its line.
#[test]
fn entra_client_credentials_become_envoys_credential_injector() {
    let yaml_text = "model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o
      api_base: https://r.openai.azure.com
      tenant_id: os.environ/AZURE_TENANT_ID
      client_id: the-client
      client_secret: os.environ/ENTRA_SECRET
";
    let env = |var: &str| match var {
        "AZURE_TENANT_ID" => Some("the-tenant".to_owned()),
        "AZURE_AUTHORITY_HOST" => Some("https://login.microsoftonline.us".to_owned()),
        _ => None,
    };
    let output = convert_text(yaml_text, true, &env).expect("converts");
    let bootstrap = yaml::parse(&output.text).expect("YAML").value;
    let filters = &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"];
    let injector = filters
        .as_array()
        .expect("filters")
        .iter()
        .find(|f| f["name"].as_str().is_some_and(|n| n.contains("entra")))
        .expect("an injector");
    let cluster = injector["typed_config"]["xds_matcher"]["matcher_list"]["matchers"][0]["predicate"]["not_matcher"]
        ["single_predicate"]["value_match"]["exact"]
        .as_str()
        .expect("matched on its cluster");
    assert!(cluster.starts_with("https_r.openai.azure.com_443_entra_"), "{cluster}");
    let oauth2 = &injector["typed_config"]["extension_config"]["typed_config"]["credential"]["typed_config"];
    assert_eq!(
        oauth2["token_endpoint"]["uri"],
        "https://login.microsoftonline.us/the-tenant/oauth2/v2.0/token"
    );
    assert_eq!(oauth2["client_credentials"]["client_id"], "the-client");
    let secrets = &bootstrap["static_resources"]["secrets"];
    assert_eq!(
        secrets[0]["generic_secret"]["secret"]["environment_variable"],
        "ENTRA_SECRET"
    );
    assert!(!output.text.contains("os.environ/ENTRA_SECRET"), "{}", output.text);
    assert!(output
        .diagnostics
        .iter()
        .any(|d| d.contains("read by Envoy itself") && d.ends_with("ENTRA_SECRET")));

    // The plugin configuration alone: no secret, and a note that Envoy must
    // send the token.
    let plugin = convert_text(yaml_text, false, &no_env).expect("converts");
    assert!(
        !plugin.text.contains("ENTRA_SECRET") && plugin.text.contains("the-client"),
        "{}",
        plugin.text
    );
    assert!(plugin
        .diagnostics
        .iter()
        .any(|d| d.contains("credential injector must")));

    let error = convert_text(yaml_text, true, &no_env)
        .err()
        .expect("the tenant is needed now");
    assert!(
        error.starts_with("config.yaml:6:7: ") && error.contains("AZURE_TENANT_ID is not set"),
        "{error}"
    );
}

/// `--istio` takes a URL and a digest for the module, and no Envoy-only flag.
#[test]
fn istio_arguments() {
    let rows: &[(&[&str], Result<(&str, &str), &str>)] = &[
        (
            &["--istio"],
            Ok((
                "https://downloads.example.com/llm-router/v0.1.0/llm_router.wasm",
                "0000000000000000000000000000000000000000000000000000000000000000",
            )),
        ),
        (
            &["--istio", "--wasm", "oci://ghcr.io/x/llm-router:1", "--sha256", "ab"],
            Ok(("oci://ghcr.io/x/llm-router:1", "ab")),
        ),
        (&["--istio", "--envoy"], Err("not both")),
        (&["--sha256", "ab"], Err("goes with --istio")),
    ];
    for (args, expected) in rows {
        let parsed = arguments(args.iter().map(|a| a.to_string()).collect());
        match (parsed, expected) {
            (Ok(parsed), Ok((wasm, sha256))) => {
                let options = parsed.envoy.expect("options");
                assert_eq!(
                    (options.wasm.as_str(), options.istio.as_deref()),
                    (*wasm, Some(*sha256))
                );
            }
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{args:?}: {e}"),
            (got, _) => panic!("{args:?}: {:?}", got.err()),
        }
    }
}
