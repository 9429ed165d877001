//! Input: patterns, one per line, then NUL, then a model. Each pattern's glob
//! (built by globset), its matcher and its captures agree, captures rebuild
//! the model, and the indexed set picks the winner the definition gives.
#![no_main]

use std::cmp::Reverse;

use libfuzzer_sys::fuzz_target;
use llm_router::route::pattern::{substitute, Pattern};
use llm_router::route::pattern_set::PatternSet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((patterns, model)) = text.split_once('\u{0}') else {
        return;
    };
    let patterns: Vec<(&str, Pattern)> = patterns
        .split('\n')
        .filter_map(|p| Some((p, Pattern::parse(p)?)))
        .collect();
    let mut matching = Vec::new();
    for (i, (text, parsed)) in patterns.iter().enumerate() {
        let glob = globset::GlobBuilder::new(&parsed.glob())
            .backslash_escape(false)
            .build()
            .expect("escaped globs always compile")
            .compile_matcher();
        let captures = parsed.captures(model);
        assert_eq!(glob.is_match(model), captures.is_some(), "glob {:?} on {model:?}", parsed.glob());
        assert_eq!(parsed.matches(model), captures.is_some(), "{text:?} on {model:?}");
        if let Some(captures) = captures {
            assert_eq!(captures.len(), parsed.stars());
            assert_eq!(substitute(text, &captures), model);
            matching.push(i);
        }
    }
    let best = matching
        .into_iter()
        .max_by_key(|&i| (patterns[i].1.literal_len(), Reverse(i)));
    let set = PatternSet::new(patterns.into_iter().map(|(_, p)| p).collect());
    assert_eq!(set.best_match(model), best, "{model:?}");
});
