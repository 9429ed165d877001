//! The route table: exact names in a hash map, patterns in a [`PatternSet`].
//! A lookup costs one hash probe, then a few for the patterns, whatever the
//! size of the table; captures are computed only for the winning pattern.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::config::{Provider, ProviderKey};
use crate::pattern::{substitute, Pattern};
use crate::pattern_set::PatternSet;
use rustc_hash::FxHashMap;

/// One `model_list` entry, compiled.
#[derive(Debug)]
pub struct Deployment {
    pub model_name: String,
    /// `None` for an exact name.
    pub pattern: Option<Pattern>,
    /// The target after `<provider>/`; its `*`s take the captures.
    pub upstream_model: String,
    pub target_has_stars: bool,
    pub provider: Provider,
    /// Upstream path prefix that replaces the client's `/v1`.
    pub base_path: String,
    pub key: ProviderKey,
}

/// The deployment chosen for a model (borrowed from the configuration), and
/// the model name to send upstream (borrowed from the configuration or the
/// request's model where it can be).
#[derive(Debug)]
pub struct Route<'c, 'm> {
    /// Position in `model_list`, for per-route metrics.
    pub index: usize,
    pub deployment: &'c Deployment,
    pub upstream_model: Cow<'m, str>,
}

#[derive(Debug)]
pub struct Router {
    deployments: Vec<Deployment>,
    exact: FxHashMap<String, usize>,
    /// Deployment indexes of the patterns, in `patterns` order.
    pattern_owners: Vec<usize>,
    patterns: PatternSet,
}

impl Router {
    /// Builds the table. A repeated `model_name` keeps the first entry (the one
    /// LiteLLM would try first) and adds a warning: load balancing across
    /// deployments is not done here.
    pub fn new(deployments: Vec<Deployment>, warnings: &mut Vec<String>) -> Router {
        let mut exact = FxHashMap::default();
        let mut pattern_owners = Vec::new();
        let mut patterns = Vec::new();
        let mut seen_patterns = HashMap::new();
        for (index, d) in deployments.iter().enumerate() {
            let first = match &d.pattern {
                None => *exact.entry(d.model_name.clone()).or_insert(index),
                Some(pattern) => {
                    let first = *seen_patterns.entry(d.model_name.as_str()).or_insert(index);
                    if first == index {
                        patterns.push(pattern.clone());
                        pattern_owners.push(index);
                    }
                    first
                }
            };
            if first != index {
                warnings.push(format!(
                    "model_list[{index}] (model_name `{}`) repeats model_list[{first}]; only the first is used (no load balancing)",
                    d.model_name
                ));
            }
        }
        Router {
            deployments,
            exact,
            pattern_owners,
            patterns: PatternSet::new(patterns),
        }
    }

    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// Exact names first; otherwise the matching pattern with the most literal
    /// characters, the first listed on a tie.
    pub fn route<'c: 'm, 'm>(&'c self, model: &'m str) -> Option<Route<'c, 'm>> {
        if let Some(&index) = self.exact.get(model) {
            let deployment = self.deployments.get(index)?;
            return Some(Route {
                index,
                deployment,
                upstream_model: Cow::Borrowed(&deployment.upstream_model),
            });
        }
        let index = *self.pattern_owners.get(self.patterns.best_match(model)?)?;
        let deployment = self.deployments.get(index)?;
        let upstream_model = if !deployment.target_has_stars {
            Cow::Borrowed(deployment.upstream_model.as_str())
        } else {
            let captures = deployment.pattern.as_ref()?.captures(model)?;
            match captures.as_slice() {
                // `groq/*` → `groq/*`: the upstream model is the capture itself.
                [capture] if deployment.upstream_model == "*" => Cow::Borrowed(*capture),
                _ => Cow::Owned(substitute(&deployment.upstream_model, &captures)),
            }
        };
        Some(Route {
            index,
            deployment,
            upstream_model,
        })
    }

    /// The OpenAI model object for `GET /v1/models/{id}`: a `model_name` as
    /// written, or any model this table routes (owned by the provider it
    /// would go to).
    pub fn model_object(&self, id: &str) -> Option<Vec<u8>> {
        let deployment = match self.deployments.iter().find(|d| d.model_name == id) {
            Some(listed) => listed,
            None => self.route(id)?.deployment,
        };
        Some(model_json(id, &deployment.provider.name).to_string().into_bytes())
    }

    /// The OpenAI `GET /v1/models` list: every model_name as written.
    pub fn models_reply(&self) -> Vec<u8> {
        let data: Vec<serde_json::Value> = self
            .deployments
            .iter()
            .enumerate()
            .filter(|(index, d)| match &d.pattern {
                None => self.exact.get(&d.model_name) == Some(index),
                Some(_) => self.pattern_owners.contains(index),
            })
            .map(|(_, d)| model_json(&d.model_name, &d.provider.name))
            .collect();
        serde_json::json!({"object": "list", "data": data})
            .to_string()
            .into_bytes()
    }
}

fn model_json(id: &str, owned_by: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owned_by})
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{compile_test, SEED};

    fn route(config_json: &str, model: &str) -> Option<(String, String, String)> {
        let config = compile_test(config_json).expect("test config compiles");
        config.router.route(model).map(|r| {
            (
                r.deployment.model_name.clone(),
                r.deployment.provider.cluster.clone(),
                r.upstream_model.into_owned(),
            )
        })
    }

    fn deployment(model_name: &str, target: &str) -> String {
        format!(r#"{{"model_name": {model_name:?}, "litellm_params": {{"model": {target:?}, "api_key": "k"}}}}"#)
    }

    #[test]
    fn the_seed_examples() {
        let rows: &[(&str, Option<(&str, &str, &str)>)] = &[
            (
                "anthropic/claude-3-sonnet-20240229",
                Some(("anthropic/*", "anthropic", "claude-3-sonnet-20240229")),
            ),
            ("groq/llama3-8b-8192", Some(("groq/*", "groq", "llama3-8b-8192"))),
            (
                "fo::hi::static::hi",
                Some(("fo::*:static::*", "openai", "fo::hi::static::hi")),
            ),
            ("openai/gpt-4o", None),
            ("anthropic/", Some(("anthropic/*", "anthropic", ""))),
            ("groq/a/b/c", Some(("groq/*", "groq", "a/b/c"))),
            ("Groq/llama3", None),
            ("xgroq/llama3", None),
            ("", None),
        ];
        for (model, expected) in rows {
            let expected = expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
            assert_eq!(route(SEED, model), expected, "model {model:?}");
        }
    }

    #[test]
    fn precedence() {
        let config = format!(
            r#"{{"model_list": [{}, {}, {}, {}, {}, {}]}}"#,
            deployment("*", "openai/catch-all"),
            deployment("gpt-*", "openai/gpt-*"),
            deployment("gpt-4*", "openai/four-*"),
            deployment("gpt-4o", "openai/exact-4o"),
            deployment("*-mini", "openai/mini-*"),
            deployment("gpt*", "openai/tie-*"),
        );
        let rows = [
            ("gpt-4o", "exact-4o"),         // exact beats every pattern
            ("gpt-4o-mini", "four-o-mini"), // 5 literals beat 4 (`gpt-`) and 5 later (`-mini` ties, listed later)
            ("gpt-3.5", "gpt-3.5"),         // `gpt-` (4) beats `gpt` (3) and `*` (0)
            ("o1-mini", "mini-o1"),
            ("claude", "catch-all"),
        ];
        for (model, upstream) in rows {
            assert_eq!(
                route(&config, model).map(|r| r.2).as_deref(),
                Some(upstream),
                "model {model}"
            );
        }
    }

    #[test]
    fn ties_go_to_the_first_listed() {
        let config = format!(
            r#"{{"model_list": [{}, {}]}}"#,
            deployment("a*c", "openai/first-*"),
            deployment("ab*", "openai/second-*"),
        );
        assert_eq!(route(&config, "abc").map(|r| r.2).as_deref(), Some("first-b"));
    }

    #[test]
    fn a_target_without_stars_is_used_as_is() {
        let config = format!(r#"{{"model_list": [{}]}}"#, deployment("fast/*", "groq/llama3-8b-8192"));
        assert_eq!(
            route(&config, "fast/anything").map(|r| r.2).as_deref(),
            Some("llama3-8b-8192")
        );
    }

    #[test]
    fn repeated_names_keep_the_first_and_warn() {
        let json = format!(
            r#"{{"model_list": [{}, {}, {}, {}]}}"#,
            deployment("m", "openai/one"),
            deployment("m", "groq/two"),
            deployment("p/*", "openai/*"),
            deployment("p/*", "groq/*"),
        );
        let config = compile_test(&json).expect("compiles");
        assert_eq!(config.warnings.len(), 2);
        assert_eq!(route(&json, "m").map(|r| r.1).as_deref(), Some("openai"));
        assert_eq!(route(&json, "p/x").map(|r| r.1).as_deref(), Some("openai"));
        let models: serde_json::Value = serde_json::from_slice(&config.router.models_reply()).expect("json");
        assert_eq!(models["data"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn models_reply_lists_names_as_written() {
        let config = compile_test(SEED).expect("seed compiles");
        let models: serde_json::Value = serde_json::from_slice(&config.models_reply).expect("json");
        assert_eq!(models["object"], "list");
        let ids: Vec<(&str, &str)> = models["data"]
            .as_array()
            .expect("array")
            .iter()
            .map(|m| (m["id"].as_str().unwrap_or(""), m["owned_by"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(
            ids,
            [
                ("anthropic/*", "anthropic"),
                ("groq/*", "groq"),
                ("fo::*:static::*", "openai")
            ]
        );
    }
}
