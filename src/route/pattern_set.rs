//! The patterns of a route table, indexed so that finding the best one for a
//! model costs a few hash probes however long the table is.
//!
//! Every pattern is filed under one of its anchors: the literal before its
//! first `*` or the one after its last, whichever fewer patterns share (the
//! longer on a tie), so that `team-a/*`, `team-b/*`, … and `*-v1`, `*-v2`, …
//! each get a list of their own. A model can only match patterns whose anchor
//! it starts or ends with, so a lookup probes the model's own prefixes and
//! suffixes (one probe per distinct anchor length) and tries only the
//! patterns filed there, most specific first. Patterns with no anchor at all
//! (`*`, `*-preview-*`) are tried on every model; tables rarely have more than
//! a catch-all of those.

use std::cmp::Reverse;

use crate::model::pattern::Pattern;
use rustc_hash::FxHashMap;

#[derive(Debug)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
    prefixes: Anchors,
    suffixes: Anchors,
    /// Patterns that start and end with `*`, most specific first.
    floating: Vec<usize>,
}

#[derive(Debug, Default)]
struct Anchors {
    /// Suffixes (anchored at the model's end) rather than prefixes.
    suffixes: bool,
    /// Anchor → the patterns filed under it, most specific first.
    filed: FxHashMap<Box<[u8]>, Vec<usize>>,
    /// Each distinct anchor length, with the set of bytes the anchors of that
    /// length have at their inner end (the last byte of a prefix, the first
    /// of a suffix): a model whose byte there is not in the set skips the
    /// probe. Anchors mostly end in a separator (`groq/`, `-mini`), so most
    /// lengths cost one bit test, not a hash and a probe.
    lengths: Vec<(usize, ByteSet)>,
}

impl Anchors {
    fn new(suffixes: bool) -> Anchors {
        Anchors {
            suffixes,
            ..Anchors::default()
        }
    }

    /// The byte of an anchor that faces the model's middle.
    fn inner_end(&self, anchor: &[u8]) -> Option<u8> {
        if self.suffixes {
            anchor.first().copied()
        } else {
            anchor.last().copied()
        }
    }

    fn file(&mut self, anchor: &str, pattern: usize) {
        let bytes = anchor.as_bytes();
        self.filed.entry(bytes.into()).or_default().push(pattern);
        let Some(inner_end) = self.inner_end(bytes) else { return };
        match self.lengths.iter_mut().find(|(len, _)| *len == bytes.len()) {
            Some((_, ends)) => ends.insert(inner_end),
            None => {
                let mut ends = ByteSet::default();
                ends.insert(inner_end);
                self.lengths.push((bytes.len(), ends));
            }
        }
    }

    /// The patterns filed under `model`'s prefixes (or suffixes).
    fn candidates<'s>(&'s self, model: &'s [u8]) -> impl Iterator<Item = &'s [usize]> + 's {
        self.lengths.iter().filter_map(move |(len, ends)| {
            let anchor = if self.suffixes {
                model.get(model.len().checked_sub(*len)?..)?
            } else {
                model.get(..*len)?
            };
            if !ends.contains(self.inner_end(anchor)?) {
                return None;
            }
            self.filed.get(anchor).map(Vec::as_slice)
        })
    }
}

/// A set of bytes, one bit each.
#[derive(Debug, Default, Clone, Copy)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, byte: u8) {
        if let Some(word) = self.0.get_mut(usize::from(byte >> 6)) {
            *word |= 1 << (byte & 63);
        }
    }

    fn contains(&self, byte: u8) -> bool {
        self.0
            .get(usize::from(byte >> 6))
            .is_some_and(|word| word & (1 << (byte & 63)) != 0)
    }
}

impl PatternSet {
    /// Indexes `patterns`; [`Self::best_match`] answers with positions in this list.
    pub fn new(patterns: Vec<Pattern>) -> PatternSet {
        let mut set = PatternSet {
            patterns,
            prefixes: Anchors::new(false),
            suffixes: Anchors::new(true),
            floating: Vec::new(),
        };
        let mut sharing: FxHashMap<(&str, bool), usize> = FxHashMap::default();
        for pattern in &set.patterns {
            *sharing.entry((pattern.prefix(), false)).or_default() += 1;
            *sharing.entry((pattern.suffix(), true)).or_default() += 1;
        }
        // Fewer patterns sharing it first, then longer; an empty anchor never.
        let cost = |anchor: &str, suffix| {
            (
                anchor.is_empty(),
                sharing.get(&(anchor, suffix)).copied().unwrap_or(0),
                Reverse(anchor.len()),
            )
        };
        for (i, pattern) in set.patterns.iter().enumerate() {
            let (prefix, suffix) = (pattern.prefix(), pattern.suffix());
            if prefix.is_empty() && suffix.is_empty() {
                set.floating.push(i);
            } else if cost(prefix, false) <= cost(suffix, true) {
                set.prefixes.file(prefix, i);
            } else {
                set.suffixes.file(suffix, i);
            }
        }
        let patterns = &set.patterns;
        let rank = |&i: &usize| rank(patterns, i);
        for filed in set.prefixes.filed.values_mut().chain(set.suffixes.filed.values_mut()) {
            filed.sort_by_key(rank);
        }
        set.floating.sort_by_key(rank);
        set
    }

    /// The position of the pattern that matches `model` with the most literal
    /// characters, the first listed on a tie; `None` when none matches.
    pub fn best_match(&self, model: &str) -> Option<usize> {
        let bytes = model.as_bytes();
        let lists = self
            .prefixes
            .candidates(bytes)
            .chain(self.suffixes.candidates(bytes))
            .chain(std::iter::once(self.floating.as_slice()));
        let mut best: Option<usize> = None;
        for list in lists {
            for &i in list {
                // Each list is in rank order: nothing after one that does not
                // beat the best so far can.
                if best.is_some_and(|b| rank(&self.patterns, i) >= rank(&self.patterns, b)) {
                    break;
                }
                if self.patterns.get(i).is_some_and(|p| p.matches(model)) {
                    best = Some(i);
                    break;
                }
            }
        }
        best
    }
}

/// The order of preference: more literal characters first, then the first listed.
fn rank(patterns: &[Pattern], i: usize) -> (Reverse<usize>, usize) {
    (Reverse(patterns.get(i).map_or(0, Pattern::literal_len)), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> PatternSet {
        PatternSet::new(patterns.iter().filter_map(|p| Pattern::parse(p)).collect())
    }

    #[test]
    fn best_match_table() {
        let table = set(&[
            "anthropic/*",     // 0: prefix anchor
            "*-mini",          // 1: suffix anchor
            "*",               // 2: floating
            "gpt-*",           // 3
            "gpt-4*-mini",     // 4: filed under `gpt-4` (`*-mini` shares `-mini`)
            "*-preview-*",     // 5: floating, more literals than `*`
            "fo::*:static::*", // 6
            "a*c",             // 7
            "ab*",             // 8: ties with 7, listed later
        ]);
        let rows: &[(&str, Option<usize>)] = &[
            ("anthropic/claude", Some(0)),
            ("o1-mini", Some(1)),
            ("gpt-4o-mini", Some(4)),
            ("gpt-4o", Some(3)),
            ("gpt-x-preview-1", Some(5)),
            ("x-preview-y", Some(5)),
            ("fo::hi::static::hi", Some(6)),
            ("abc", Some(7)),
            ("abd", Some(8)),
            ("anything", Some(2)),
            ("", Some(2)),
        ];
        for (model, expected) in rows {
            assert_eq!(table.best_match(model), *expected, "model {model:?}");
        }
        let anchored = set(&["anthropic/*", "*-mini", "x*y*z"]);
        for model in ["anthropic", "mini", "-min", "xyz/", "", "Anthropic/x"] {
            assert_eq!(anchored.best_match(model), None, "model {model:?}");
        }
        assert_eq!(anchored.best_match("x-y-z"), Some(2));
    }

    #[test]
    fn each_pattern_is_filed_under_the_anchor_fewer_share() {
        let texts: Vec<String> = (0..1000)
            .map(|i| format!("team/*-v{i}"))
            .chain((0..1000).map(|i| format!("org-{i}/*.gguf")))
            .collect();
        let table = set(&texts.iter().map(String::as_str).collect::<Vec<_>>());
        // `team/` and `.gguf` are shared a thousand times: each pattern has a list of its own.
        assert!(!table.prefixes.filed.contains_key(&b"team/"[..]));
        assert!(!table.suffixes.filed.contains_key(&b".gguf"[..]));
        assert!(table
            .prefixes
            .filed
            .values()
            .chain(table.suffixes.filed.values())
            .all(|l| l.len() == 1));
        assert_eq!(table.best_match("team/x-v17"), Some(17));
        assert_eq!(table.best_match("org-17/q4.gguf"), Some(1017));
        assert_eq!(table.best_match("team/x-v1000"), None);
    }

    /// A small deterministic generator, so the differential test needs no crate.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }

        fn text(&mut self, alphabet: &[char], max_len: usize) -> String {
            (0..self.below(max_len + 1))
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    /// The winner as the definition gives it: of every pattern whose glob
    /// matches, the one with the most literals, the first on a tie. Each glob
    /// is its own regex: a `GlobSet` adds path rules (its `*.` extension
    /// strategy misses `/a/..`) that model names do not follow.
    fn reference(patterns: &[Pattern], globs: &[globset::GlobMatcher], model: &str) -> Option<usize> {
        (0..patterns.len())
            .filter(|&i| globs[i].is_match(model))
            .max_by_key(|&i| (patterns[i].literal_len(), Reverse(i)))
    }

    #[test]
    fn agrees_with_globset_on_random_tables() {
        let mut rng = Lcg(7);
        for _ in 0..400 {
            let mut patterns = Vec::new();
            for _ in 0..1 + rng.below(12) {
                // A star somewhere (prefix, suffix, inner and floating patterns), maybe more.
                let mut text = rng.text(&['a', 'b', '/', '.', '*'], 6);
                text.insert(rng.below(text.len() + 1), '*');
                patterns.extend(Pattern::parse(&text));
            }
            let globs: Vec<_> = patterns
                .iter()
                .map(|p| {
                    globset::GlobBuilder::new(&p.glob())
                        .backslash_escape(false)
                        .build()
                        .expect("escaped globs compile")
                        .compile_matcher()
                })
                .collect();
            let set = PatternSet::new(patterns.clone());
            for _ in 0..60 {
                let model = rng.text(&['a', 'b', '/', '.'], 8);
                assert_eq!(
                    set.best_match(&model),
                    reference(&patterns, &globs, &model),
                    "model {model:?} in {:?}",
                    patterns.iter().map(Pattern::glob).collect::<Vec<_>>()
                );
            }
        }
    }
}
