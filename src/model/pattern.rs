//! One `model_name` wildcard pattern: every `*` matches any run of characters
//! (including `/` and the empty run), everything else is literal, and the whole
//! model must match.
//!
//! A route table's `crate::route::pattern_set` finds the best pattern of a table for a model; this
//! module answers whether one pattern matches and, for the winner, what each
//! `*` captured.

/// A parsed `model_name` that contains at least one `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Literal runs between the stars: `stars() + 1` entries, possibly empty.
    literals: Vec<String>,
    literal_len: usize,
}

impl Pattern {
    /// Parses a `model_name`; `None` when it has no `*` (an exact name).
    pub fn parse(model_name: &str) -> Option<Pattern> {
        if !model_name.contains('*') {
            return None;
        }
        let literals: Vec<String> = model_name.split('*').map(str::to_owned).collect();
        let literal_len = literals.iter().map(String::len).sum();
        Some(Pattern { literals, literal_len })
    }

    /// Number of `*` in the pattern, i.e. the number of captures.
    pub fn stars(&self) -> usize {
        self.literals.len() - 1
    }

    /// Number of literal bytes: the specificity used to rank matching patterns.
    pub fn literal_len(&self) -> usize {
        self.literal_len
    }

    /// The literal before the first `*` (possibly empty).
    pub fn prefix(&self) -> &str {
        self.literals.first().map_or("", String::as_str)
    }

    /// The literal after the last `*` (possibly empty).
    pub fn suffix(&self) -> &str {
        self.literals.last().map_or("", String::as_str)
    }

    /// The same language as a glob (literals bracket-escaped, runs of `*`
    /// collapsed so globset's `**` directory rules stay out of play), to be
    /// built with `backslash_escape(false)`: the tests and the fuzzer check
    /// this matcher against `globset` with it.
    pub fn glob(&self) -> String {
        let mut glob = String::with_capacity(self.literal_len + 4 * self.literals.len());
        for (i, literal) in self.literals.iter().enumerate() {
            if i > 0 && !glob.ends_with('*') {
                glob.push('*');
            }
            for c in literal.chars() {
                if matches!(c, '*' | '?' | '[' | ']' | '{' | '}') {
                    glob.extend(['[', c, ']']);
                } else {
                    glob.push(c);
                }
            }
        }
        glob
    }

    /// Whether the whole of `model` matches, without computing captures:
    /// the prefix and then the suffix stripped (so they cannot overlap), then
    /// each inner literal at its leftmost place after the one before (if any
    /// placement fits, that one does).
    pub fn matches(&self, model: &str) -> bool {
        let (Some((first, rest)), Some(last)) = (self.literals.split_first(), self.literals.last()) else {
            return false;
        };
        let Some(middle) = model
            .strip_prefix(first.as_str())
            .and_then(|m| m.strip_suffix(last.as_str()))
        else {
            return false;
        };
        let inner = rest.split_last().map_or(&[][..], |(_, inner)| inner);
        let mut from = 0;
        for literal in inner {
            match middle.get(from..).and_then(|m| m.find(literal.as_str())) {
                Some(at) => from += at + literal.len(),
                None => return false,
            }
        }
        true
    }

    /// Captures of `model`, one per `*`, left to right, as a greedy regex
    /// `(.*)` per star takes them; `None` when the model does not match.
    ///
    /// Greedy-leftmost captures are exactly the placements of the inner
    /// literals found right to left, each as far right as the ones after it
    /// allow: one backwards search per literal, so linear in the model length.
    pub fn captures<'m>(&self, model: &'m str) -> Option<Vec<&'m str>> {
        let (first, rest) = self.literals.split_first()?;
        let (last, inner) = rest.split_last()?;
        let start = first.len();
        if !model.starts_with(first.as_str()) || model.len() < start + last.len() {
            return None;
        }
        let end = model.len() - last.len();
        if !model.get(end..)?.ends_with(last.as_str()) {
            return None;
        }
        // Inner literal positions, found from the right.
        let mut positions = vec![0usize; inner.len()];
        let mut limit = end;
        for (slot, literal) in positions.iter_mut().zip(inner).rev() {
            let window = model.get(start..limit)?;
            let at = start + window.rfind(literal.as_str())?;
            *slot = at;
            limit = at;
        }
        let mut captures = Vec::with_capacity(self.stars());
        let mut from = start;
        for (at, literal) in positions.iter().zip(inner) {
            captures.push(model.get(from..*at)?);
            from = at + literal.len();
        }
        captures.push(model.get(from..end)?);
        Some(captures)
    }
}

/// Writes `template` with each `*` replaced, left to right, by the next capture.
/// The caller guarantees the counts agree (checked when the config is compiled).
pub fn substitute(template: &str, captures: &[&str]) -> String {
    let extra: usize = captures.iter().map(|c| c.len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut captures = captures.iter();
    for (i, part) in template.split('*').enumerate() {
        if i > 0 {
            out.push_str(captures.next().copied().unwrap_or_default());
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pattern: &str, model: &str) -> Option<Vec<String>> {
        let p = Pattern::parse(pattern).expect("test patterns have a star");
        p.captures(model).map(|c| c.into_iter().map(str::to_owned).collect())
    }

    #[test]
    fn exact_names_are_not_patterns() {
        assert_eq!(Pattern::parse("gpt-4o"), None);
        assert_eq!(Pattern::parse(""), None);
    }

    #[test]
    fn captures_table() {
        // (pattern, model, expected captures or None for no match)
        let rows: &[(&str, &str, Option<&[&str]>)] = &[
            (
                "anthropic/*",
                "anthropic/claude-3-sonnet-20240229",
                Some(&["claude-3-sonnet-20240229"]),
            ),
            ("anthropic/*", "anthropic/", Some(&[""])),
            ("anthropic/*", "anthropic", None),
            ("anthropic/*", "xanthropic/a", None),
            ("anthropic/*", "Anthropic/a", None),
            ("groq/*", "groq/llama3-8b-8192", Some(&["llama3-8b-8192"])),
            ("fo::*:static::*", "fo::hi::static::hi", Some(&["hi:", "hi"])),
            ("fo::*:static::*", "fo:::static::", Some(&["", ""])),
            ("fo::*:static::*", "fo::hi:static::", Some(&["hi", ""])),
            ("fo::*:static::*", "fo::hi::static", None),
            // `*` crosses `/` and takes the longest run that still lets the rest match.
            ("*/*", "a/b/c", Some(&["a/b", "c"])),
            ("a*b*c", "abcbc", Some(&["bc", ""])),
            ("a*b*c", "aXbYbZc", Some(&["XbY", "Z"])),
            ("*", "", Some(&[""])),
            ("*", "anything/at all", Some(&["anything/at all"])),
            ("**", "ab", Some(&["ab", ""])),
            // prefix and suffix may not overlap
            ("ab*ba", "aba", None),
            ("ab*ba", "abba", Some(&[""])),
            // metacharacters of globs and regexes are literal
            ("a.b/*", "aXb/c", None),
            ("a.b/*", "a.b/c", Some(&["c"])),
            ("a?[x]{y}\\*", "a?[x]{y}\\z", Some(&["z"])),
            ("a?*", "ab", None),
            // multi-byte characters stay whole
            ("é*è", "éàè", Some(&["à"])),
            ("*-suffix", "x-suffix-suffix", Some(&["x-suffix"])),
        ];
        for (pattern, model, expected) in rows {
            let expected = expected.map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(caps(pattern, model), expected, "pattern {pattern:?} on {model:?}");
        }
    }

    #[test]
    fn globs_match_the_same_language_as_captures() {
        let rows = [
            ("anthropic/*", vec!["anthropic/x", "anthropic/", "anthropic", "a/x"]),
            (
                "fo::*:static::*",
                vec!["fo::hi::static::hi", "fo::static::", "fo:::static::"],
            ),
            ("a?[x]{y}\\*", vec!["a?[x]{y}\\z", "ab[x]{y}\\z", "a?x{y}\\z"]),
            ("**", vec!["", "a/b"]),
            ("a**b", vec!["ab", "a/x/b", "a"]),
            ("*/*", vec!["a/b", "ab", "/"]),
            ("x*\ny", vec!["x\ny", "xa\nb\ny", "xy"]),
        ];
        for (pattern, models) in rows {
            let p = Pattern::parse(pattern).expect("has a star");
            let glob = globset::GlobBuilder::new(&p.glob())
                .backslash_escape(false)
                .build()
                .expect("escaped globs compile")
                .compile_matcher();
            for model in models {
                assert_eq!(
                    glob.is_match(model),
                    p.captures(model).is_some(),
                    "glob {:?} vs captures on {model:?}",
                    p.glob()
                );
                assert_eq!(
                    p.matches(model),
                    p.captures(model).is_some(),
                    "{pattern:?} on {model:?}"
                );
            }
        }
    }

    #[test]
    fn specificity_counts_literal_bytes() {
        let p = Pattern::parse("fo::*:static::*").expect("has a star");
        assert_eq!((p.stars(), p.literal_len()), (2, 13));
    }

    #[test]
    fn substitute_fills_stars_left_to_right() {
        assert_eq!(
            substitute("openai/fo::*:static::*", &["hi:", "hi"]),
            "openai/fo::hi::static::hi"
        );
        assert_eq!(substitute("anthropic/*", &["claude"]), "anthropic/claude");
        assert_eq!(substitute("openai/gpt-4o", &[]), "openai/gpt-4o");
    }

    #[test]
    fn many_stars_on_a_long_model_stay_fast() {
        // A backtracking matcher needs time exponential in the stars here.
        let pattern = format!("x*{}b*y", "a*".repeat(64));
        let p = Pattern::parse(&pattern).expect("has a star");
        let model = format!("x{}y", "a".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(p.captures(&model), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
