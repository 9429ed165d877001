//! `llm-router-config [config.yaml]`: reads a LiteLLM proxy `config.yaml`
//! (a path, or standard input) and prints the llm-router plugin configuration
//! as JSON, checked by the filter's own compiler. Exit status 1 names the
//! entry that the filter would refuse.

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::{json, Map, Value};

/// llm-router's own top-level keys, carried over as they are.
const FILTER_KEYS: &[&str] = &["providers", "cluster_header", "max_body_bytes", "inject_stream_usage"];

/// The sections of a LiteLLM config that mean something to the filter, and
/// a warning for each part that is left out.
fn plugin_config(litellm: &Value) -> Result<(Value, Vec<String>), String> {
    let top = litellm.as_object().ok_or("the file is not a YAML mapping")?;
    let model_list = top.get("model_list").ok_or("the file has no `model_list`")?;
    let mut out = Map::new();
    let mut warnings = Vec::new();
    out.insert("model_list".into(), model_list.clone());
    for (key, value) in top {
        match key.as_str() {
            "model_list" => {}
            "general_settings" => {
                for (setting, setting_value) in value.as_object().into_iter().flatten() {
                    if setting == "master_key" {
                        out.insert("general_settings".into(), json!({ "master_key": setting_value }));
                    } else {
                        warnings.push(format!(
                            "general_settings.{setting} is ignored (llm-router reads only master_key)"
                        ));
                    }
                }
            }
            key if FILTER_KEYS.contains(&key) => {
                out.insert(key.to_owned(), value.clone());
            }
            section => match value.as_object() {
                Some(settings) => warnings.extend(settings.keys().map(|k| format!("{section}.{k} is ignored"))),
                None => warnings.push(format!("{section} is ignored")),
            },
        }
    }
    Ok((Value::Object(out), warnings))
}

/// The plugin configuration for a LiteLLM config, and the warnings to show.
fn run(input: &str) -> Result<(String, Vec<String>), String> {
    let litellm: Value = serde_yaml::from_str(input).map_err(|e| format!("not YAML: {e}"))?;
    let (config, mut warnings) = plugin_config(&litellm)?;
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    // Keys are resolved by Envoy later; check everything else now.
    let any_value = |_: &str| Some("set-at-runtime".to_owned());
    let compiled = llm_router::config::compile(text.as_bytes(), &any_value).map_err(|e| e.to_string())?;
    warnings.extend(compiled.warnings);
    Ok((text, warnings))
}

fn main() -> ExitCode {
    let mut input = String::new();
    let read = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|text| input = text)
            .map_err(|e| format!("{path}: {e}")),
        None => std::io::stdin()
            .read_to_string(&mut input)
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    match read.and_then(|()| run(&input)) {
        Ok((json, warnings)) => {
            for warning in warnings {
                eprintln!("llm-router-config: warning: {warning}");
            }
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("llm-router-config: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_litellm_docs_config_converts() {
        let yaml = include_str!("../../../examples/litellm-config.yaml");
        let (text, warnings) = run(yaml).expect("converts");
        let json: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(warnings, ["litellm_settings.drop_params is ignored"]);
        let shipped: Value = serde_json::from_str(include_str!("../../../examples/llm-router.json")).expect("json");
        assert_eq!(
            json, shipped,
            "examples/llm-router.json is the converted examples/litellm-config.yaml"
        );
    }

    #[test]
    fn refusals_name_the_entry() {
        let yaml = "model_list:\n  - model_name: x/*\n    litellm_params:\n      model: nosuch/*\n";
        let error = run(yaml).expect_err("unknown provider");
        assert!(error.contains("model_list[0] (model_name `x/*`)"), "{error}");
        assert!(run("general_settings: {}\n").is_err());
    }

    #[test]
    fn the_filters_own_keys_are_carried_and_the_rest_is_named() {
        let yaml = "model_list:\n  - model_name: n/*\n    litellm_params:\n      model: newco/*\n\
                    providers:\n  newco:\n    api_base: https://api.newco.ai/v1\n\
                    max_body_bytes: 1000\n\
                    general_settings:\n  master_key: sk-1234\n  database_url: postgres://x\n\
                    router_settings:\n  routing_strategy: usage-based-routing-v2\n";
        let (text, warnings) = run(yaml).expect("converts");
        let json: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(json["providers"]["newco"]["api_base"], "https://api.newco.ai/v1");
        assert_eq!(json["max_body_bytes"], 1000);
        assert_eq!(json["general_settings"], json!({"master_key": "sk-1234"}));
        assert!(json.get("router_settings").is_none());
        let expected = [
            "general_settings.database_url is ignored",
            "router_settings.routing_strategy is ignored",
            "publicly known example key",
        ];
        for fragment in expected {
            assert!(
                warnings.iter().any(|w| w.contains(fragment)),
                "{fragment}: {warnings:?}"
            );
        }
    }
}
