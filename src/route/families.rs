//! Model families: which provider serves a bare model name (`gpt-4o` →
//! openai), as LiteLLM infers it from its catalogue.

use rustc_hash::FxHashMap;

use crate::model::pattern::Pattern;
use crate::route::pattern_set::PatternSet;

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
