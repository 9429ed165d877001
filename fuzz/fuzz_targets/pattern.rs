//! The glob given to globset and the capture matcher agree on every
//! (pattern, model), and captures rebuild the model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_router::pattern::{substitute, Pattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((pattern, model)) = text.split_once('\u{0}') else {
        return;
    };
    let Some(parsed) = Pattern::parse(pattern) else { return };
    let glob = globset::GlobBuilder::new(&parsed.glob())
        .backslash_escape(false)
        .build()
        .expect("escaped globs always compile")
        .compile_matcher();
    let captures = parsed.captures(model);
    assert_eq!(
        glob.is_match(model),
        captures.is_some(),
        "glob {:?} on {model:?}",
        parsed.glob()
    );
    if let Some(captures) = captures {
        assert_eq!(captures.len(), parsed.stars());
        assert_eq!(substitute(pattern, &captures), model);
    }
});
