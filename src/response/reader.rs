//! Token usage read from a response as it streams by.
//!
//! A [`ResponseReader`] is fed each piece of a response body as Envoy hands
//! it over and never keeps the body: it holds the resumable tokenizer's few
//! dozen bytes of state, its place in the event stream, and the counts found
//! so far ([`crate::response::usage`] says which). When the filter asked for
//! a streamed usage chunk, it also removes that event
//! ([`crate::response::strip`]).

use crate::json::sse::{self, Fields};
use crate::json::Tokenizer;
use crate::response::strip::{ChunkShape, Output, Plan, Stripper};
use crate::response::usage::{Usage, UsageFinder};

/// How the response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON document (`application/json`).
    Json,
    /// Server-sent events (`text/event-stream`), each `data` a JSON document.
    Events,
}

impl Framing {
    /// How to read a response with these headers; `None` for a body that
    /// cannot or need not be read (compressed, another content type).
    pub fn of_response(headers: &crate::headers::HeaderBlock) -> Option<Framing> {
        let encoded = headers
            .get("content-encoding")
            .is_some_and(|v| !v.trim_ascii().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return None;
        }
        Framing::of_content_type(headers.get("content-type")?)
    }

    /// The framing a `content-type` announces; `None` for a body not worth reading.
    pub fn of_content_type(value: &[u8]) -> Option<Framing> {
        let media = value.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        if media.eq_ignore_ascii_case(b"text/event-stream") {
            Some(Framing::Events)
        } else if media.eq_ignore_ascii_case(b"application/json")
            || media.len() > 5
                && media
                    .get(media.len() - 5..)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"+json"))
        {
            Some(Framing::Json)
        } else {
            None
        }
    }
}

/// Reads one response.
#[derive(Debug)]
pub struct ResponseReader {
    framing: Framing,
    document: Document,
    found: UsageFinder,
    events: sse::Parser,
    /// Set when the filter asked for the usage chunk and must remove it.
    strip: Option<Stripper>,
}

/// The document being read: the whole body, or the current event's data.
#[derive(Debug, Default)]
struct Document {
    json: Tokenizer,
    shape: ChunkShape,
    /// Already known not to be the usage chunk.
    kept: bool,
}

impl ResponseReader {
    /// `remove_usage_chunk`: the filter added `stream_options.include_usage`
    /// to the request, so the client must not see the chunk it brings.
    pub fn new(framing: Framing, remove_usage_chunk: bool) -> ResponseReader {
        ResponseReader {
            framing,
            document: Document::default(),
            found: UsageFinder::default(),
            events: sse::Parser::default(),
            strip: (remove_usage_chunk && framing == Framing::Events).then(Stripper::default),
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// How many bytes of the body the reader holds back now (at most
    /// [`crate::response::strip::MAX_HELD`] plus the piece being read).
    pub fn held(&self) -> usize {
        self.strip.as_ref().map_or(0, Stripper::held)
    }

    /// The counts found so far.
    pub fn usage(&self) -> Usage {
        self.found.usage()
    }

    /// Reads the next piece of the body.
    pub fn feed(&mut self, piece: &[u8]) -> Output {
        let document = &mut self.document;
        if self.framing == Framing::Json {
            // No event to tell apart: the usage rules alone read it.
            document.json.feed(piece, &mut self.found);
            return Output::Unchanged;
        }
        let mut stream = Stream {
            document,
            found: &mut self.found,
            plan: self.strip.as_mut().map(Plan::start),
        };
        self.events.feed(piece, &mut stream);
        stream.plan.map_or(Output::Unchanged, |plan| plan.finish(piece))
    }

    /// Reads the last piece of the body: whatever is still held goes to the
    /// client with it. (A body that ends in trailers has no last piece: what
    /// is held then is lost, which is why only a few bytes of an undecided
    /// event are ever held; providers' event streams have no trailers.)
    pub fn feed_last(&mut self, piece: &[u8]) -> Output {
        let output = self.feed(piece);
        let held = self.strip.as_mut().map(Stripper::take_held).unwrap_or_default();
        if held.is_empty() {
            return output;
        }
        let mut bytes = match output {
            Output::Unchanged => piece.to_vec(),
            Output::Replace(bytes) => bytes,
        };
        bytes.extend_from_slice(&held);
        Output::Replace(bytes)
    }
}

/// An event stream's piece being read: each event's data is a document.
struct Stream<'r> {
    document: &'r mut Document,
    found: &'r mut UsageFinder,
    /// What the piece becomes, when the usage chunk is removed.
    plan: Option<Plan<'r>>,
}

impl Stream<'_> {
    /// Has the tokenizer read `bytes` (up to a line end when `line`); the
    /// chunk's shape is followed only where the usage chunk is removed.
    fn tokenize(&mut self, bytes: &[u8], line: bool) -> usize {
        let json = &mut self.document.json;
        let found = &mut *self.found;
        match self.plan {
            Some(_) if line => json.feed_line(bytes, &mut (found, &mut self.document.shape)),
            Some(_) => {
                json.feed(bytes, &mut (found, &mut self.document.shape));
                bytes.len()
            }
            None if line => json.feed_line(bytes, found),
            None => {
                json.feed(bytes, found);
                bytes.len()
            }
        }
    }
}

impl Fields for Stream<'_> {
    fn data(&mut self, bytes: &[u8]) -> usize {
        let read = self.tokenize(bytes, true);
        let document = &mut *self.document;
        if let (false, Some(plan)) = (document.kept, self.plan.as_mut()) {
            if document.shape.surely_kept() || document.json.failed() {
                document.kept = true;
                plan.kept();
            }
        }
        read
    }

    fn data_line_end(&mut self) {
        // Data lines of one event are joined by LF: JSON whitespace.
        self.tokenize(b"\n", false);
    }

    fn event_end(&mut self, at: usize) {
        if let Some(plan) = self.plan.as_mut() {
            plan.ended(at, self.document.shape.is_usage_chunk());
        }
        *self.document = Document::default();
        self.found.next_document();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::strip::MAX_HELD;

    const CHAT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"say \"usage\": {\"prompt_tokens\": 99}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":7,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":5,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
    const EMBEDDINGS: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5,1e-3]}],"model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
    const RESPONSES: &str = r#"{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"hi","annotations":[]}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":3},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":21}}"#;
    const MESSAGE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":30,"output_tokens":6}}"#;
    const ERROR: &str =
        r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error","param":null,"code":null}}"#;

    /// An OpenAI stream that was asked for usage: `usage: null` in every chunk, then the usage chunk.
    const CHAT_STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    );
    const USAGE_CHUNK: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":3,\"total_tokens\":20,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";
    const ANTHROPIC_STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"content\":[],\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":8,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    const RESPONSES_STREAM: &str = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"status\":\"completed\",\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":2,\"total_tokens\":13}}}\n\n",
    );

    fn usage(input: u64, output: u64, cached: Option<u64>, reasoning: Option<u64>) -> Usage {
        Usage {
            input: Some(input),
            output: Some(output),
            cached_input: cached,
            reasoning_output: reasoning,
        }
    }

    /// Feeds `body` in the given pieces; returns the usage and what the client got.
    fn read(framing: Framing, strip: bool, pieces: &[&[u8]]) -> (Usage, Vec<u8>) {
        let mut reader = ResponseReader::new(framing, strip);
        let mut client = Vec::new();
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            let output = if i == last {
                reader.feed_last(piece)
            } else {
                reader.feed(piece)
            };
            match output {
                Output::Unchanged => client.extend_from_slice(piece),
                Output::Replace(bytes) => client.extend_from_slice(&bytes),
            }
        }
        (reader.usage(), client)
    }

    /// Every way of cutting `body` in two, and in three around the middle, and byte by byte.
    fn splits(body: &[u8]) -> Vec<Vec<&[u8]>> {
        let mut ways: Vec<Vec<&[u8]>> = (0..=body.len()).map(|i| vec![&body[..i], &body[i..]]).collect();
        let middle = body.len() / 2;
        for j in middle..body.len() {
            ways.push(vec![&body[..middle / 2], &body[middle / 2..j], &body[j..]]);
        }
        ways.push(body.chunks(1).collect());
        ways
    }

    fn crlf(text: &str) -> String {
        text.replace('\n', "\r\n")
    }

    #[test]
    fn usage_of_every_shape_split_anywhere() {
        let stream = format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}");
        let rows: Vec<(Framing, String, Usage)> = vec![
            (Framing::Json, CHAT.to_owned(), usage(21, 7, Some(5), Some(2))),
            (
                Framing::Json,
                EMBEDDINGS.to_owned(),
                Usage {
                    input: Some(4),
                    ..Usage::default()
                },
            ),
            (Framing::Json, RESPONSES.to_owned(), usage(12, 9, Some(3), Some(4))),
            // Anthropic: the cache reads and writes are input too.
            (Framing::Json, MESSAGE.to_owned(), usage(42, 6, Some(30), None)),
            (Framing::Json, ERROR.to_owned(), Usage::default()),
            (Framing::Events, stream.clone(), usage(17, 3, Some(4), None)),
            (Framing::Events, crlf(&stream), usage(17, 3, Some(4), None)),
            (Framing::Events, stream.replace('\n', "\r"), usage(17, 3, Some(4), None)),
            (Framing::Events, format!("{CHAT_STREAM}{DONE}"), Usage::default()),
            (
                Framing::Events,
                ANTHROPIC_STREAM.to_owned(),
                usage(33, 15, Some(8), None),
            ),
            (Framing::Events, crlf(ANTHROPIC_STREAM), usage(33, 15, Some(8), None)),
            (
                Framing::Events,
                RESPONSES_STREAM.to_owned(),
                usage(11, 2, Some(0), None),
            ),
            // A stream cut short keeps what it reported.
            (
                Framing::Events,
                ANTHROPIC_STREAM[..ANTHROPIC_STREAM.find("event: content_block_start").unwrap_or(0)].to_owned(),
                usage(33, 1, Some(8), None),
            ),
        ];
        for (framing, body, expected) in rows {
            for pieces in splits(body.as_bytes()) {
                let (got, client) = read(framing, false, &pieces);
                assert_eq!(got, expected, "{body:?} in {} pieces", pieces.len());
                assert_eq!(client, body.as_bytes(), "unchanged without stripping");
            }
        }
    }

    #[test]
    fn the_injected_usage_chunk_is_removed_and_nothing_else() {
        let cases = [
            (
                format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}"),
                format!("{CHAT_STREAM}{DONE}"),
            ),
            (
                crlf(&format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}")),
                crlf(&format!("{CHAT_STREAM}{DONE}")),
            ),
            (
                format!("{CHAT_STREAM}{USAGE_CHUNK}{DONE}").replace('\n', "\r"),
                format!("{CHAT_STREAM}{DONE}").replace('\n', "\r"),
            ),
            // A repeated `choices` does not undo the first.
            (
                format!("data: {{\"choices\":[{{\"index\":0}}],\"choices\":[],\"usage\":{{}}}}\n\n{USAGE_CHUNK}{DONE}"),
                format!("data: {{\"choices\":[{{\"index\":0}}],\"choices\":[],\"usage\":{{}}}}\n\n{DONE}"),
            ),
            // Azure's first chunk has empty choices and no usage: kept. So are comments.
            (
                format!("data: {{\"choices\":[],\"prompt_filter_results\":[]}}\n\n: keep-alive\n\n{USAGE_CHUNK}{DONE}"),
                format!("data: {{\"choices\":[],\"prompt_filter_results\":[]}}\n\n: keep-alive\n\n{DONE}"),
            ),
        ];
        for (stream, expected) in cases {
            for pieces in splits(stream.as_bytes()) {
                let (got, client) = read(Framing::Events, true, &pieces);
                assert_eq!(String::from_utf8_lossy(&client), expected, "in {} pieces", pieces.len());
                assert_eq!(got, usage(17, 3, Some(4), None));
            }
        }
        // Other streams go through untouched.
        for stream in [ANTHROPIC_STREAM, RESPONSES_STREAM] {
            for pieces in splits(stream.as_bytes()) {
                assert_eq!(read(Framing::Events, true, &pieces).1, stream.as_bytes());
            }
        }
    }

    #[test]
    fn content_chunks_are_not_held_once_choices_shows_an_element() {
        let mut reader = ResponseReader::new(Framing::Events, true);
        let chunk = CHAT_STREAM.split_inclusive("\n\n").nth(1).unwrap_or_default();
        // Cut just after `"choices":[{`: everything read so far goes out now.
        let cut = chunk.find("[{").unwrap_or(0) + 2;
        assert_eq!(reader.feed(&chunk.as_bytes()[..cut]), Output::Unchanged);
        assert_eq!(reader.feed(&chunk.as_bytes()[cut..]), Output::Unchanged);
        // Cut before that: the start is held, then released with the rest.
        let early = chunk.find("choices").unwrap_or(0);
        assert_eq!(reader.feed(&chunk.as_bytes()[..early]), Output::Replace(Vec::new()));
        assert_eq!(
            reader.feed(&chunk.as_bytes()[early..]),
            Output::Replace(chunk.as_bytes().to_vec())
        );
    }

    #[test]
    fn hostile_bodies_cost_nothing_and_change_nothing() {
        let huge = format!(
            "data: {{\"choices\":[],\"x\":\"{}\"}}\n\n{USAGE_CHUNK}",
            "a".repeat(3 * MAX_HELD)
        );
        let deep = format!("{}\"usage\":{{\"prompt_tokens\":1}}", "{\"a\":[".repeat(200));
        let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let rows: Vec<(Framing, Vec<u8>)> = vec![
            (Framing::Events, huge.clone().into_bytes()),
            (Framing::Json, deep.clone().into_bytes()),
            (Framing::Events, deep.into_bytes()),
            (Framing::Json, binary.clone()),
            (Framing::Events, binary),
            (Framing::Json, b"{\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":2.5,\"input_tokens\":99999999999999999999999}}".to_vec()),
        ];
        for (framing, body) in rows {
            for pieces in [vec![&body[..]], body.chunks(7).collect()] {
                let (_, client) = read(framing, false, &pieces);
                assert_eq!(client, body);
            }
        }
        // The huge event is let through once it outgrows what may be held; the usage chunk still goes.
        let (_, client) = read(Framing::Events, true, &huge.as_bytes().chunks(1000).collect::<Vec<_>>());
        assert_eq!(client, huge.replace(USAGE_CHUNK, "").as_bytes());
        // Numbers that are not counts are not counted; an oversized one saturates.
        let (got, _) = read(
            Framing::Json,
            false,
            &[br#"{"usage":{"prompt_tokens":-3,"completion_tokens":2.5,"input_tokens":99999999999999999999999}}"#],
        );
        assert_eq!((got.input, got.output), (Some(u64::MAX), None));
    }

    #[test]
    fn compressed_responses_are_not_read() {
        use crate::headers::HeaderBlock;
        let rows: &[(&[(&str, &[u8])], Option<Framing>)] = &[
            (&[("content-type", b"text/event-stream")], Some(Framing::Events)),
            (
                &[("content-type", b"application/json"), ("content-encoding", b"identity")],
                Some(Framing::Json),
            ),
            (
                &[("content-type", b"application/json"), ("content-encoding", b"gzip")],
                None,
            ),
            (&[("content-encoding", b"br")], None),
            (&[], None),
        ];
        for (pairs, framing) in rows {
            let headers = HeaderBlock::from_pairs(pairs.iter().copied());
            assert_eq!(Framing::of_response(&headers), *framing, "{pairs:?}");
        }
    }

    #[test]
    fn framing_from_content_type() {
        let rows: &[(&[u8], Option<Framing>)] = &[
            (b"application/json", Some(Framing::Json)),
            (b"Application/JSON; charset=utf-8", Some(Framing::Json)),
            (b"application/problem+json", Some(Framing::Json)),
            (b"text/event-stream", Some(Framing::Events)),
            (b"text/event-stream; charset=utf-8", Some(Framing::Events)),
            (b"text/plain", None),
            (b"", None),
        ];
        for (value, framing) in rows {
            assert_eq!(Framing::of_content_type(value), *framing, "{value:?}");
        }
    }
}
