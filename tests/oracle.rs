//! The filter's routing against LiteLLM's own Router (the pinned PyPI
//! `litellm` in the project's venv, `tests/oracle/litellm_router.py`): on
//! generated model lists and request models (exact names, patterns and
//! their captures, `*`, bare names, aliases), both must choose the same
//! `model_name` and the same upstream provider and model, except where
//! llm-router's contract differs on purpose. Those differences are the
//! [`Difference`]s below, and each must show up, so the list stays true.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::root;
use llm_router::route::NoRoute;
use serde_json::{json, Value};

/// (model_name, model) pairs a case draws its deployments from.
const DEPLOYMENTS: &[(&str, &str)] = &[
    ("gpt-4o", "openai/gpt-4o-2024-08-06"),
    ("claude-sonnet", "anthropic/claude-3-5-sonnet-20241022"),
    ("my-llama", "groq/llama-3.1-8b-instant"),
    ("openai/gpt-4o", "openai/gpt-4o-exact"),
    ("openai/*", "openai/*"),
    ("anthropic/*", "anthropic/*"),
    ("groq/*", "groq/*"),
    ("mistral/*", "mistral/*"),
    ("fo::*:static::*", "openai/fo::*:static::*"),
    ("team-*", "groq/*"),
    ("team-*-prod", "openai/*"),
    ("gemini-*", "gemini/gemini-*"),
    ("*", "*"),
    ("*", "anthropic/*"),
];

const ALIASES: &[&str] = &["fast", "smart", "internal"];

const REQUESTS: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet",
    "my-llama",
    "openai/gpt-4o",
    "openai/o3-mini",
    "anthropic/claude-3-haiku-20240307",
    "groq/llama3-8b-8192",
    "mistral/mistral-small-latest",
    "fo::hi::static::hi",
    "team-a",
    "team-a-prod",
    "team-a-prod-eu",
    "gemini-1.5-pro",
    "claude-3-haiku-20240307",
    "claude-3-5-sonnet-20241022",
    "o1-mini",
    "o3-mini",
    "mistral-large-latest",
    "deepseek-chat",
    "my-finetune",
    "meta-llama/Llama-3.1-8B",
    "fast",
    "smart",
    "internal",
];

/// What a router chose: (model_name, provider, provider model); no
/// provider where it cannot name one.
type Choice = Option<(String, Option<String>, String)>;

/// Where llm-router differs from LiteLLM on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Difference {
    /// A bare name's provider comes from model families (`o1*`, `claude-*`
    /// …), not from LiteLLM's catalogue, which goes stale: LiteLLM names no
    /// provider (or finds no deployment) where llm-router names the
    /// family's.
    ModelFamilies,
    /// A pattern matches the whole model (`team-*-prod` is not
    /// `team-a-prod-eu`); LiteLLM's regex matches a prefix.
    FullMatch,
}

/// A small deterministic generator (the cases are the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

struct Case {
    deployments: Vec<(&'static str, &'static str)>,
    aliases: BTreeMap<&'static str, (&'static str, bool)>,
}

fn cases(count: usize) -> Vec<Case> {
    let mut random = Lcg(0x5eed);
    (0..count)
        .map(|_| {
            let mut deployments: Vec<(&str, &str)> = Vec::new();
            for _ in 0..2 + random.below(6) {
                let candidate = DEPLOYMENTS[random.below(DEPLOYMENTS.len())];
                if deployments.iter().all(|(name, _)| *name != candidate.0) {
                    deployments.push(candidate);
                }
            }
            let exact: Vec<&str> = deployments.iter().map(|d| d.0).filter(|n| !n.contains('*')).collect();
            let mut aliases = BTreeMap::new();
            if !exact.is_empty() {
                for alias in ALIASES.iter().take(random.below(ALIASES.len() + 1)) {
                    aliases.insert(*alias, (exact[random.below(exact.len())], random.below(2) == 1));
                }
            }
            Case { deployments, aliases }
        })
        .collect()
}

/// `model_group_alias` in LiteLLM's `{model, hidden}` form.
fn aliases(case: &Case) -> Value {
    let aliases: serde_json::Map<String, Value> = case
        .aliases
        .iter()
        .map(|(alias, (target, hidden))| (alias.to_string(), json!({"model": target, "hidden": hidden})))
        .collect();
    Value::Object(aliases)
}

fn plugin_config(case: &Case) -> String {
    let model_list: Vec<Value> = case
        .deployments
        .iter()
        .map(|(name, model)| json!({"model_name": name, "litellm_params": {"model": model, "api_key": "k"}}))
        .collect();
    json!({"model_list": model_list, "router_settings": {"model_group_alias": aliases(case)}}).to_string()
}

fn filter_choice(config: &llm_router::config::Config, case: &Case, model: &str) -> Choice {
    match config.router.route(model) {
        Ok(route) => Some((
            route.deployment.model_name.clone(),
            Some(route.provider().name.clone()),
            route.upstream_model.into_owned(),
        )),
        // Reached a `model: "*"` deployment with no provider to send it to.
        Err(NoRoute::NoProvider) => {
            let (name, _) = case.deployments.iter().find(|(_, m)| *m == "*")?;
            Some((name.to_string(), None, model.to_owned()))
        }
        Err(NoRoute::Unknown | NoRoute::NotServed(_)) => None,
    }
}

fn litellm_choices(cases: &[Case]) -> Vec<Vec<Choice>> {
    let input: Vec<Value> = cases
        .iter()
        .map(|case| json!({"model_list": case.deployments, "aliases": aliases(case), "requests": REQUESTS}))
        .collect();
    let python = root().join(".venv/bin/python");
    let mut child = Command::new(&python)
        .arg(root().join("tests/oracle/litellm_router.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make sdk`)", python.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(Value::Array(input).to_string().as_bytes())
        .expect("write cases");
    let out = child.wait_with_output().expect("the oracle runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the oracle's JSON")
}

/// Why the two choices may differ, if they may.
fn deliberate(request: &str, ours: &Choice, theirs: &Choice) -> Option<Difference> {
    let families_provider = llm_router::config::compile(
        br#"{"model_list": [{"model_name": "*", "litellm_params": {"model": "*", "api_key": "k"}}]}"#,
        &|_| None,
    )
    .ok()
    .and_then(|c| c.router.route(request).ok().map(|r| r.provider().name.clone()));
    let their_provider = theirs.as_ref().and_then(|(_, p, _)| p.clone());
    let our_provider = ours.as_ref().and_then(|(_, p, _)| p.clone());
    if their_provider.is_none() && our_provider.is_some() && our_provider == families_provider {
        return Some(Difference::ModelFamilies);
    }
    if let Some((pattern, _, _)) = theirs {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(false)
            .build()
            .ok()?
            .compile_matcher();
        if pattern.contains('*') && !glob.is_match(request) {
            return Some(Difference::FullMatch);
        }
    }
    None
}

#[test]
fn routing_agrees_with_litellms_router() {
    let cases = cases(60);
    let theirs = litellm_choices(&cases);
    let mut agreed = 0;
    let mut differences: BTreeMap<Difference, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (case, their_choices) in cases.iter().zip(&theirs) {
        let config_json = plugin_config(case);
        let config = llm_router::config::compile(config_json.as_bytes(), &|_| None)
            .unwrap_or_else(|e| panic!("{config_json}: {e}"));
        for (request, their_choice) in REQUESTS.iter().zip(their_choices) {
            let ours = filter_choice(&config, case, request);
            if ours == *their_choice {
                agreed += 1;
            } else if let Some(difference) = deliberate(request, &ours, their_choice) {
                *differences.entry(difference).or_default() += 1;
            } else {
                unexplained.push(format!(
                    "{request:?}: llm-router {ours:?}, LiteLLM {their_choice:?}\n  in {config_json}"
                ));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} choices differ from LiteLLM's:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    for difference in [Difference::ModelFamilies, Difference::FullMatch] {
        assert!(
            differences.contains_key(&difference),
            "{difference:?} never showed: {differences:?}"
        );
    }
    let total = cases.len() * REQUESTS.len();
    eprintln!("{agreed} of {total} choices agree with LiteLLM's Router; deliberate differences {differences:?}");
    assert!(agreed * 10 >= total * 8, "only {agreed} of {total} agree");
}
