//! Per-token prices from LiteLLM's price table
//! (`model_prices_and_context_window.json`, shipped in the `litellm`
//! package): only the rows of the configured models are carried into the
//! plugin configuration's `model_prices`, which the filter prices usage
//! with where a deployment has no prices of its own.

use std::path::{Path, PathBuf};

use llm_router::config::Config;
use llm_router::model::{provider_of, Deployment, Target};
use serde_json::{json, Map, Value};

/// The table's file in an installed `litellm` package.
const TABLE_FILE: &str = "model_prices_and_context_window_backup.json";

/// The table in the project's venv (`.venv/lib/python*/site-packages/litellm/`),
/// if `litellm` is installed there.
pub fn find_in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/litellm").join(TABLE_FILE))
        .find(|table| table.is_file())
}

/// What a deployment may be asked for, as the table names models: an exact
/// model (`gpt-4o`, or `groq/llama3-8b-8192`), or every model of a provider.
enum Wanted<'a> {
    Model { provider: &'a str, model: &'a str },
    Provider(&'a str),
}

fn wanted(deployment: &Deployment) -> Option<Wanted<'_>> {
    if deployment.prices.is_some() {
        return None;
    }
    let provider = match &deployment.target {
        Target::RequestProvider => return None,
        target => provider_of(target.reach()?).name.as_str(),
    };
    Some(match deployment.target_has_stars {
        true => Wanted::Provider(provider),
        false => Wanted::Model {
            provider,
            model: &deployment.upstream_model,
        },
    })
}

/// The rows of `table` that `config`'s deployments need, in the shape of
/// `model_prices` (the per-token prices only). A `model: "*"` deployment
/// (any provider) takes none: the table is too large to carry whole.
pub fn rows_for(config: &Config, table: &Map<String, Value>) -> Map<String, Value> {
    let wanted: Vec<Wanted<'_>> = config.router.deployments().iter().filter_map(wanted).collect();
    let mut rows = Map::new();
    for (name, row) in table {
        let provider = row.get("litellm_provider").and_then(Value::as_str);
        let needed = wanted.iter().any(|w| match *w {
            Wanted::Model { provider: p, model } => {
                name == model || name.strip_prefix(p).and_then(|rest| rest.strip_prefix('/')) == Some(model)
            }
            Wanted::Provider(p) => provider == Some(p),
        });
        let price = |field: &str| row.get(field).and_then(Value::as_f64);
        if needed && (price("input_cost_per_token").is_some() || price("output_cost_per_token").is_some()) {
            let mut prices = json!({});
            for field in [
                "input_cost_per_token",
                "output_cost_per_token",
                "cache_read_input_token_cost",
            ] {
                if let (Some(value), Some(out)) = (price(field), prices.as_object_mut()) {
                    out.insert(field.to_owned(), json!(value));
                }
            }
            rows.insert(name.clone(), prices);
        }
    }
    rows
}

/// The `model_name`s of deployments that would cost nothing: no prices of
/// their own and no row in `table` (LiteLLM's) nor in the config's own
/// `model_prices`. (A `model: "*"` deployment is priced per request model,
/// so it is not listed.)
pub fn unpriced<'c>(config: &'c Config, table: &Map<String, Value>) -> Vec<&'c str> {
    let priced = |name: &str| table.contains_key(name) || config.model_prices.contains_key(name);
    let mut names: Vec<&str> = config
        .router
        .deployments()
        .iter()
        .filter(|d| match wanted(d) {
            None => false,
            Some(Wanted::Model { provider, model }) => !priced(model) && !priced(&format!("{provider}/{model}")),
            Some(Wanted::Provider(p)) => !table
                .values()
                .any(|row| row.get("litellm_provider").and_then(Value::as_str) == Some(p)),
        })
        .map(|d| d.model_name.as_str())
        .collect();
    names.dedup();
    names
}

/// Reads the table at `path`.
pub fn read_table(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(table)) => Ok(table),
        Ok(_) => Err(format!(
            "{}: not LiteLLM's price table (an object of models)",
            path.display()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_models_rows() {
        let config = llm_router::config::compile(
            br#"{"model_list": [
                {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}},
                {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
                {"model_name": "own", "litellm_params": {"model": "openai/o1", "api_key": "k", "input_cost_per_token": 1e-6}}]}"#,
            &|_| None,
        );
        let Ok(config) = config else {
            panic!("compiles");
        };
        let table = json!({
            "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
            "gpt-4o": {"litellm_provider": "openai", "input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5,
                       "cache_read_input_token_cost": 1.25e-6, "max_tokens": 16384},
            "gpt-4o-mini": {"litellm_provider": "openai", "input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7},
            "o1": {"litellm_provider": "openai", "input_cost_per_token": 1.5e-5, "output_cost_per_token": 6e-5},
            "groq/llama3-8b-8192": {"litellm_provider": "groq", "input_cost_per_token": 5e-8, "output_cost_per_token": 8e-8},
            "groq/whisper": {"litellm_provider": "groq", "mode": "audio_transcription"}
        });
        let Value::Object(table) = table else {
            panic!("an object");
        };
        let rows = rows_for(&config, &table);
        let names: Vec<&str> = rows.keys().map(String::as_str).collect();
        assert_eq!(names, ["gpt-4o", "groq/llama3-8b-8192"]);
        assert_eq!(unpriced(&config, &table), Vec::<&str>::new());
        assert_eq!(unpriced(&config, &Map::new()), ["gpt-4o", "groq/*"]);
        assert_eq!(
            rows.get("gpt-4o"),
            Some(
                &json!({"input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5, "cache_read_input_token_cost": 1.25e-6})
            )
        );
    }
}
