//! The route table: exact names in a hash map, patterns in a [`PatternSet`].
//! A lookup costs one hash probe, then a few for the patterns, whatever the
//! size of the table; captures are computed only for the winning pattern.
//!
//! On top, LiteLLM's Router semantics: `router_settings.model_group_alias`
//! first, then the model as is, then (for a model without a known provider
//! prefix) as `<provider>/<model>` with the provider inferred from its model
//! family; `model: "*"` forwards to the request's own provider.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::config::{Endpoint, Target};
use crate::pattern::{substitute, Pattern};
use crate::pattern_set::PatternSet;
use rustc_hash::{FxHashMap, FxHashSet};

/// One `model_list` entry, compiled.
#[derive(Debug)]
pub struct Deployment {
    pub model_name: String,
    /// `None` for an exact name.
    pub pattern: Option<Pattern>,
    /// The target after `<provider>/`; its `*`s take the captures.
    pub upstream_model: String,
    pub target_has_stars: bool,
    pub target: Target,
}

/// The deployment chosen for a model (borrowed from the configuration), where
/// it goes, and the model name to send upstream (borrowed from the
/// configuration or the request's model where it can be).
#[derive(Debug)]
pub struct Route<'c, 'm> {
    /// The (route, provider) pair's position in [`Router::slots`], for
    /// per-route metrics.
    pub slot: usize,
    pub deployment: &'c Deployment,
    pub endpoint: &'c Endpoint,
    pub upstream_model: Cow<'m, str>,
}

impl Route<'_, '_> {
    fn into_owned<'c, 'any>(route: Route<'c, '_>) -> Route<'c, 'any> {
        Route {
            slot: route.slot,
            deployment: route.deployment,
            endpoint: route.endpoint,
            upstream_model: Cow::Owned(route.upstream_model.into_owned()),
        }
    }
}

/// Why a model has no route.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// No `model_name` matches it.
    Unknown,
    /// It reached a `model: "*"` deployment, but names no provider llm-router
    /// knows and belongs to no model family.
    NoProvider,
}

/// `router_settings.model_group_alias` entry.
#[derive(Debug)]
pub struct Alias {
    pub name: String,
    pub target: String,
    pub hidden: bool,
}

/// Model families: bare model names to the provider that serves them.
#[derive(Debug)]
pub struct Families {
    patterns: PatternSet,
    exact: FxHashMap<String, String>,
    /// The provider of each pattern, in `patterns` order.
    owners: Vec<String>,
}

impl Families {
    /// `(family, provider)` pairs; a family without `*` is one model.
    pub fn new<'a>(families: impl Iterator<Item = (&'a str, &'a str)>) -> Families {
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        let mut exact = FxHashMap::default();
        for (family, provider) in families {
            match Pattern::parse(family) {
                Some(pattern) => {
                    patterns.push(pattern);
                    owners.push(provider.to_owned());
                }
                None => {
                    exact.entry(family.to_owned()).or_insert_with(|| provider.to_owned());
                }
            }
        }
        Families {
            patterns: PatternSet::new(patterns),
            exact,
            owners,
        }
    }

    /// The provider of a bare model name, if a family claims it.
    pub fn provider_of(&self, model: &str) -> Option<&str> {
        if let Some(provider) = self.exact.get(model) {
            return Some(provider);
        }
        self.owners.get(self.patterns.best_match(model)?).map(String::as_str)
    }
}

/// What [`Router::new`] is built from.
pub struct RouterParts {
    pub deployments: Vec<Deployment>,
    /// Each provider's default endpoint, for `model: "*"` deployments.
    pub provider_endpoints: BTreeMap<String, Endpoint>,
    /// Every provider name, endpoint or not (a prefix to leave alone).
    pub known_providers: Vec<String>,
    pub families: Families,
    pub aliases: Vec<Alias>,
}

#[derive(Debug)]
pub struct Router {
    deployments: Vec<Deployment>,
    exact: FxHashMap<String, usize>,
    /// Deployment indexes of the patterns, in `patterns` order.
    pattern_owners: Vec<usize>,
    patterns: PatternSet,
    provider_endpoints: BTreeMap<String, Endpoint>,
    known_providers: FxHashSet<String>,
    families: Families,
    aliases: FxHashMap<String, Alias>,
    /// Each deployment's first metrics slot; a `model: "*"` one has one per
    /// provider endpoint, in `provider_endpoints` order.
    first_slot: Vec<usize>,
    /// `(model_name, provider)` of every slot.
    slots: Vec<(String, String)>,
}

impl Router {
    /// Builds the table. A repeated `model_name` keeps the first entry (the one
    /// LiteLLM would try first) and adds a warning: load balancing across
    /// deployments is not done here. An alias whose target routes nowhere is
    /// returned as the error.
    pub fn new(parts: RouterParts, warnings: &mut Vec<String>) -> Result<Router, Alias> {
        let RouterParts {
            deployments,
            provider_endpoints,
            known_providers,
            families,
            aliases,
        } = parts;
        let mut exact = FxHashMap::default();
        let mut pattern_owners = Vec::new();
        let mut patterns = Vec::new();
        let mut seen_patterns = HashMap::new();
        let mut first_slot = Vec::with_capacity(deployments.len());
        let mut slots = Vec::with_capacity(deployments.len());
        for (index, d) in deployments.iter().enumerate() {
            first_slot.push(slots.len());
            match &d.target {
                Target::Fixed(endpoint) => slots.push((d.model_name.clone(), endpoint.provider.name.clone())),
                Target::RequestProvider => {
                    slots.extend(provider_endpoints.keys().map(|p| (d.model_name.clone(), p.clone())));
                }
            }
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
        let router = Router {
            deployments,
            exact,
            pattern_owners,
            patterns: PatternSet::new(patterns),
            provider_endpoints,
            known_providers: known_providers.into_iter().collect(),
            families,
            aliases: FxHashMap::default(),
            first_slot,
            slots,
        };
        let mut router = router;
        for alias in aliases {
            if router.route(&alias.target).is_err() {
                return Err(alias);
            }
            router.aliases.insert(alias.name.clone(), alias);
        }
        Ok(router)
    }

    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// `(model_name, provider)` of each metrics slot ([`Route::slot`]).
    pub fn slots(&self) -> &[(String, String)] {
        &self.slots
    }

    /// Every endpoint a request can be sent to.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        let fixed = self.deployments.iter().filter_map(|d| match &d.target {
            Target::Fixed(endpoint) => Some(endpoint),
            Target::RequestProvider => None,
        });
        fixed.chain(self.provider_endpoints.values())
    }

    /// The provider prefixes a `model: "*"` deployment forwards to.
    pub fn forwarded_prefixes(&self) -> Vec<&str> {
        self.provider_endpoints.keys().map(String::as_str).collect()
    }

    /// An alias first; then exact names; then the matching pattern with the
    /// most literal characters, the first listed on a tie; then, for a model
    /// without a known provider prefix, the patterns again with the provider
    /// of its model family in front (`gpt-4o` as `openai/gpt-4o`).
    pub fn route<'c: 'm, 'm>(&'c self, model: &'m str) -> Result<Route<'c, 'm>, NoRoute> {
        let model = self.aliases.get(model).map_or(model, |alias| alias.target.as_str());
        if let Some(&index) = self.exact.get(model) {
            return self.resolve(index, model);
        }
        if let Some(index) = self.best_pattern(model) {
            return self.resolve(index, model);
        }
        if self.has_known_prefix(model) {
            return Err(NoRoute::Unknown);
        }
        let provider = self.families.provider_of(model).ok_or(NoRoute::Unknown)?;
        let prefixed = format!("{provider}/{model}");
        let index = self.best_pattern(&prefixed).ok_or(NoRoute::Unknown)?;
        self.resolve(index, &prefixed).map(Route::into_owned)
    }

    fn best_pattern(&self, model: &str) -> Option<usize> {
        self.pattern_owners.get(self.patterns.best_match(model)?).copied()
    }

    fn has_known_prefix(&self, model: &str) -> bool {
        model
            .split_once('/')
            .is_some_and(|(prefix, _)| self.known_providers.contains(prefix))
    }

    /// The route through deployment `index` for `model`, which it matches.
    fn resolve<'c: 'm, 'm>(&'c self, index: usize, model: &'m str) -> Result<Route<'c, 'm>, NoRoute> {
        let deployment = self.deployments.get(index).ok_or(NoRoute::Unknown)?;
        let first_slot = self.first_slot.get(index).copied().unwrap_or_default();
        let upstream_model = if !deployment.target_has_stars {
            Cow::Borrowed(deployment.upstream_model.as_str())
        } else {
            let Some(captures) = deployment.pattern.as_ref().and_then(|p| p.captures(model)) else {
                return Err(NoRoute::Unknown);
            };
            match captures.as_slice() {
                // `groq/*` → `groq/*`: the upstream model is the capture itself.
                [capture] if deployment.upstream_model == "*" => Cow::Borrowed(*capture),
                _ => Cow::Owned(substitute(&deployment.upstream_model, &captures)),
            }
        };
        match &deployment.target {
            Target::Fixed(endpoint) => Ok(Route {
                slot: first_slot,
                deployment,
                endpoint,
                upstream_model,
            }),
            Target::RequestProvider => {
                let (provider, upstream_model) = self.request_provider(upstream_model).ok_or(NoRoute::NoProvider)?;
                let (position, (_, endpoint)) = self
                    .provider_endpoints
                    .iter()
                    .enumerate()
                    .find(|(_, (name, _))| name.as_str() == provider)
                    .ok_or(NoRoute::NoProvider)?;
                Ok(Route {
                    slot: first_slot + position,
                    deployment,
                    endpoint,
                    upstream_model,
                })
            }
        }
    }

    /// `provider/model` → (provider, model); a bare model → its family's
    /// provider and the model as is.
    fn request_provider<'m>(&self, model: Cow<'m, str>) -> Option<(String, Cow<'m, str>)> {
        if let Some((prefix, rest)) = model.split_once('/') {
            if self.provider_endpoints.contains_key(prefix) {
                let provider = prefix.to_owned();
                let rest = match model {
                    Cow::Borrowed(model) => Cow::Borrowed(model.get(prefix.len() + 1..)?),
                    Cow::Owned(_) => Cow::Owned(rest.to_owned()),
                };
                return Some((provider, rest));
            }
        }
        let provider = self.families.provider_of(&model)?.to_owned();
        Some((provider, model))
    }

    /// The OpenAI model object for `GET /v1/models/{id}`: a `model_name` or
    /// alias as written, or any model this table routes (owned by the
    /// provider it would go to).
    pub fn model_object(&self, id: &str) -> Option<Vec<u8>> {
        let owner = match self.deployments.iter().find(|d| d.model_name == id) {
            Some(listed) => Self::owner(listed),
            None => self.route(id).ok()?.endpoint.provider.name.as_str(),
        };
        Some(model_json(id, owner).to_string().into_bytes())
    }

    /// A listed deployment's `owned_by`: its provider, or `llm-router` for
    /// one that forwards to the request's own provider.
    fn owner(deployment: &Deployment) -> &str {
        match &deployment.target {
            Target::Fixed(endpoint) => &endpoint.provider.name,
            Target::RequestProvider => "llm-router",
        }
    }

    /// The OpenAI `GET /v1/models` list: every model_name as written, then
    /// every alias not marked hidden.
    pub fn models_reply(&self) -> Vec<u8> {
        let listed = self
            .deployments
            .iter()
            .enumerate()
            .filter(|(index, d)| match &d.pattern {
                None => self.exact.get(&d.model_name) == Some(index),
                Some(_) => self.pattern_owners.contains(index),
            })
            .map(|(_, d)| model_json(&d.model_name, Self::owner(d)));
        let mut aliases: Vec<&Alias> = self.aliases.values().filter(|a| !a.hidden).collect();
        aliases.sort_by(|a, b| a.name.cmp(&b.name));
        let aliases = aliases.into_iter().filter_map(|alias| {
            let route = self.route(&alias.name).ok()?;
            Some(model_json(&alias.name, &route.endpoint.provider.name))
        });
        let data: Vec<serde_json::Value> = listed.chain(aliases).collect();
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
        config.router.route(model).ok().map(|r| {
            (
                r.deployment.model_name.clone(),
                r.endpoint.cluster.clone(),
                r.upstream_model.into_owned(),
            )
        })
    }

    /// (request model, the expected (model_name, cluster, upstream model)).
    type RouteRows<'a> = &'a [(&'a str, Option<(&'a str, &'a str, &'a str)>)];

    /// The `/v1/models` answer is these (id, owned_by) pairs, in order.
    fn assert_listed(config: &crate::config::Config, expected: &[(&str, &str)]) {
        let models: serde_json::Value = serde_json::from_slice(&config.models_reply).expect("json");
        let field = |m: &serde_json::Value, key: &str| m[key].as_str().unwrap_or("").to_owned();
        let data = models["data"].as_array().expect("array");
        let listed: Vec<(String, String)> = data.iter().map(|m| (field(m, "id"), field(m, "owned_by"))).collect();
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(listed, expected);
    }

    fn assert_routes(config_json: &str, rows: RouteRows) {
        for (model, expected) in rows {
            let expected = expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
            assert_eq!(route(config_json, model), expected, "model {model:?}");
        }
    }

    fn deployment(model_name: &str, target: &str) -> String {
        format!(r#"{{"model_name": {model_name:?}, "litellm_params": {{"model": {target:?}, "api_key": "k"}}}}"#)
    }

    #[test]
    fn the_seed_examples() {
        let rows: RouteRows = &[
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
        assert_routes(SEED, rows);
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
        assert_listed(
            &config,
            &[
                ("anthropic/*", "anthropic"),
                ("groq/*", "groq"),
                ("fo::*:static::*", "openai"),
            ],
        );
    }

    /// A configuration with LiteLLM's `*` features: a passthrough catch-all,
    /// provider patterns, an exact name, aliases.
    const LITELLM_FEATURES: &str = r#"{"model_list": [
      {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o-2024-08-06", "api_key": "k"}},
      {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_key": "k"}},
      {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_key": "k"}},
      {"model_name": "fast-*", "litellm_params": {"model": "groq/*", "api_key": "k"}},
      {"model_name": "*", "litellm_params": {"model": "*"}}],
     "router_settings": {"model_group_alias": {
        "gpt-4": "gpt-4o",
        "claude": {"model": "anthropic/claude-3-5-sonnet-20241022", "hidden": true},
        "gpt-4o-mini": "fast-mini"}}}"#;

    #[test]
    fn litellm_router_semantics() {
        // (request model, route, cluster, upstream model); None: 404
        let rows: RouteRows = &[
            ("gpt-4o", Some(("gpt-4o", "openai", "gpt-4o-2024-08-06"))),
            // aliases first, even over an exact name
            ("gpt-4", Some(("gpt-4o", "openai", "gpt-4o-2024-08-06"))),
            ("gpt-4o-mini", Some(("fast-*", "groq", "mini"))),
            (
                "claude",
                Some(("anthropic/*", "anthropic", "claude-3-5-sonnet-20241022")),
            ),
            // the model as is: `*` matches any bare name before inference
            ("o1-mini", Some(("*", "openai", "o1-mini"))),
            (
                "claude-3-5-haiku-latest",
                Some(("*", "anthropic", "claude-3-5-haiku-latest")),
            ),
            ("mistral-large-latest", Some(("*", "mistral", "mistral-large-latest"))),
            // `*` forwards a provider prefix to that provider
            ("groq/llama-3.1-8b-instant", Some(("*", "groq", "llama-3.1-8b-instant"))),
            ("xai/grok-2", Some(("*", "xai", "grok-2"))),
            ("openai/gpt-4.1", Some(("openai/*", "openai", "gpt-4.1"))),
        ];
        assert_routes(LITELLM_FEATURES, rows);
        let config = compile_test(LITELLM_FEATURES).expect("compiles");
        for model in ["llama3", "meta-llama/Llama-3-8b", "azure/x"] {
            assert_eq!(
                config.router.route(model).err(),
                Some(super::NoRoute::NoProvider),
                "{model}"
            );
        }
    }

    #[test]
    fn bare_names_take_the_provider_of_their_family() {
        let json = format!(
            r#"{{"model_list": [{}, {}], "providers": {{"groq": {{"model_families": ["llama-*"]}}, "openai": {{"model_families": []}}}}}}"#,
            deployment("anthropic/*", "anthropic/*"),
            deployment("groq/*", "groq/*"),
        );
        let rows: RouteRows = &[
            (
                "claude-3-7-sonnet-latest",
                Some(("anthropic/*", "anthropic", "claude-3-7-sonnet-latest")),
            ),
            ("llama-3.3-70b", Some(("groq/*", "groq", "llama-3.3-70b"))),
            // openai's families were replaced by none
            ("gpt-4o", None),
            // a known provider prefix is never prefixed again
            ("openai/claude-x", None),
            ("mistral-small", None),
        ];
        assert_routes(&json, rows);
    }

    #[test]
    fn each_provider_of_a_passthrough_route_has_its_own_metrics_slot() {
        let config = compile_test(LITELLM_FEATURES).expect("compiles");
        let router = &config.router;
        let slot = |model: &str| router.route(model).ok().map(|r| r.slot);
        let label = |model: &str| slot(model).and_then(|s| router.slots().get(s)).cloned();
        assert_eq!(label("gpt-4"), Some(("gpt-4o".to_owned(), "openai".to_owned())));
        assert_eq!(label("o1"), Some(("*".to_owned(), "openai".to_owned())));
        assert_eq!(label("grok-3"), Some(("*".to_owned(), "xai".to_owned())));
        assert_ne!(slot("o1"), slot("grok-3"));
        assert_ne!(slot("o1"), slot("openai/o1"));
    }

    #[test]
    fn aliases_are_listed_unless_hidden() {
        let config = compile_test(LITELLM_FEATURES).expect("compiles");
        assert_listed(
            &config,
            &[
                ("gpt-4o", "openai"),
                ("openai/*", "openai"),
                ("anthropic/*", "anthropic"),
                ("fast-*", "groq"),
                ("*", "llm-router"),
                ("gpt-4", "openai"),
                ("gpt-4o-mini", "groq"),
            ],
        );
        let object = config
            .router
            .model_object("claude")
            .expect("a hidden alias still routes");
        assert!(String::from_utf8_lossy(&object).contains(r#""owned_by":"anthropic""#));
    }
}
