//! `llm-router-config [config.yaml]`: reads a LiteLLM proxy `config.yaml`
//! (a path, or standard input) and prints the llm-router plugin configuration
//! as JSON, checked by the filter's own compiler. Exit status 1 names the
//! entry that the filter would refuse.

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::{json, Map, Value};

/// The sections of a LiteLLM config that mean something to the filter.
fn plugin_config(litellm: &Value) -> Result<Value, String> {
    let model_list = litellm.get("model_list").ok_or("the file has no `model_list`")?;
    let mut out = Map::new();
    out.insert("model_list".into(), model_list.clone());
    if let Some(master_key) = litellm.pointer("/general_settings/master_key") {
        out.insert("general_settings".into(), json!({ "master_key": master_key }));
    }
    Ok(Value::Object(out))
}

fn run(input: &str) -> Result<String, String> {
    let litellm: Value = serde_yaml::from_str(input).map_err(|e| format!("not YAML: {e}"))?;
    let config = plugin_config(&litellm)?;
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    // Keys are resolved by Envoy later; check everything else now.
    let any_value = |_: &str| Some("set-at-runtime".to_owned());
    llm_router::config::compile(text.as_bytes(), &any_value).map_err(|e| e.to_string())?;
    Ok(text)
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
        Ok(json) => {
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
        let json: Value = serde_json::from_str(&run(yaml).expect("converts")).expect("json");
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
}
