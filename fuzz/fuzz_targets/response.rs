//! The response reader on any bytes, split anywhere: it never panics, holds
//! back at most `MAX_HELD` bytes (plus the piece in hand), reads the same
//! usage and gives the client the same bytes however the body is split, gives
//! them unchanged unless it must remove the usage chunk, and then only
//! removes bytes (what the client gets is a subsequence of what came).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_router::response::{Framing, Output, ResponseReader, Usage, MAX_HELD};

fn read(framing: Framing, strip: bool, body: &[u8], cuts: &[usize]) -> (Usage, Vec<u8>) {
    let mut reader = ResponseReader::new(framing, strip);
    let mut client = Vec::new();
    let mut from = 0;
    let ends: Vec<usize> = cuts.iter().copied().chain(std::iter::once(body.len())).collect();
    for (i, &cut) in ends.iter().enumerate() {
        let piece = &body[from..cut.clamp(from, body.len())];
        from = cut.clamp(from, body.len());
        let output = if i + 1 == ends.len() { reader.feed_last(piece) } else { reader.feed(piece) };
        match output {
            Output::Unchanged => client.extend_from_slice(piece),
            Output::Replace(bytes) => client.extend_from_slice(&bytes),
        }
        assert!(reader.held() <= MAX_HELD + piece.len(), "held {}", reader.held());
    }
    assert_eq!(reader.held(), 0, "nothing is held after the last piece");
    (reader.usage(), client)
}

fn is_subsequence(small: &[u8], big: &[u8]) -> bool {
    let mut big = big.iter();
    small.iter().all(|b| big.any(|c| c == b))
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let framing = if control & 1 == 0 { Framing::Events } else { Framing::Json };
    // Up to four cut points from the next bytes, the rest is the body.
    let cut_count = usize::from(control >> 1 & 3);
    let (cut_bytes, body) = rest.split_at(cut_count.min(rest.len()));
    let mut cuts: Vec<usize> = cut_bytes.iter().map(|&b| usize::from(b) * body.len() / 255).collect();
    cuts.sort_unstable();

    let (usage, client) = read(framing, false, body, &cuts);
    assert_eq!(client, body, "without stripping the bytes pass unchanged");
    let (whole_usage, _) = read(framing, false, body, &[]);
    assert_eq!(usage, whole_usage, "the split changes nothing");

    let (strip_usage, stripped) = read(framing, true, body, &cuts);
    let (_, stripped_whole) = read(framing, true, body, &[]);
    assert_eq!(stripped, stripped_whole, "the split changes nothing");
    assert_eq!(strip_usage, usage);
    assert!(is_subsequence(&stripped, body), "only bytes are removed");
    if stripped.len() != body.len() {
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("choices") && text.contains("usage"));
    }
});
