//! `make bench`'s many-streams scenario, both ends of it:
//!
//! - `bench-streams serve PORT EVENTS GAP_MS`: a slow OpenAI-style upstream.
//!   Each request gets a chat stream of EVENTS content chunks GAP_MS apart,
//!   then the finish chunk, the usage chunk and `[DONE]` (chunked HTTP/1.1,
//!   one connection per stream).
//! - `bench-streams load PORT STREAMS EVENTS GAP_MS BODY_FILE [HEADER ...]`:
//!   opens STREAMS streaming requests at once (in batches, so the listener's
//!   backlog keeps up), reads them to the end and prints one line of JSON:
//!   how many completed whole, the events seen, and how late events came
//!   (the longest wait between two events beyond GAP_MS, worst and 99th
//!   percentile over streams).
//!
//! One thread each: the point is to hold thousands of slow streams, not to
//! be fast, and the Envoy under test gets the other core.

use std::error::Error;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Connections opened per batch, and the pause between batches.
const BATCH: usize = 250;
const BATCH_GAP: Duration = Duration::from_millis(50);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> Result<u64> { Ok(args.get(i).ok_or("missing argument")?.parse()?) };
    match args.first().map(String::as_str) {
        Some("serve") => {
            serve(
                number(1)? as u16,
                number(2)? as usize,
                Duration::from_millis(number(3)?),
            )
            .await
        }
        Some("load") => {
            let body = std::fs::read(args.get(5).ok_or("missing BODY_FILE")?)?;
            let headers: String = args.iter().skip(6).map(|h| format!("{h}\r\n")).collect();
            let request = [
                format!(
                    "POST /v1/chat/completions HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n{headers}\r\n",
                    body.len()
                )
                .into_bytes(),
                body,
            ]
            .concat();
            load(
                number(1)? as u16,
                number(2)? as usize,
                number(3)? as usize,
                Duration::from_millis(number(4)?),
                request,
            )
            .await
        }
        _ => Err(
            "usage: bench-streams serve PORT EVENTS GAP_MS | load PORT STREAMS EVENTS GAP_MS BODY_FILE [HEADER ...]"
                .into(),
        ),
    }
}

async fn serve(port: u16, events: usize, gap: Duration) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {port}");
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = answer(socket, events, gap).await;
        });
    }
}

/// Reads one request, answers it with a paced stream, closes.
async fn answer(mut socket: TcpStream, events: usize, gap: Duration) -> Result<()> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        read.extend_from_slice(&buf[..n]);
        if let Some(at) = find(&read, b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&read[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while read.len() < head_end + length {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        read.extend_from_slice(&buf[..n]);
    }
    socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        .await?;
    for i in 0..events {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        let delta = format!(r#"[{{"index":0,"delta":{{"content":" word{i}"}},"logprobs":null,"finish_reason":null}}]"#);
        socket.write_all(&chunked(&event(&delta, "null"))).await?;
    }
    let finish = r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#;
    let usage = format!(
        r#"{{"prompt_tokens":260,"completion_tokens":{events},"total_tokens":{}}}"#,
        260 + events
    );
    let tail = [event(finish, "null"), event("[]", &usage), b"data: [DONE]\n\n".to_vec()].concat();
    socket.write_all(&chunked(&tail)).await?;
    socket.write_all(b"0\r\n\r\n").await?;
    socket.shutdown().await?;
    Ok(())
}

fn event(choices: &str, usage: &str) -> Vec<u8> {
    format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\
         \"model\":\"llama3-8b-8192\",\"system_fingerprint\":\"fp_bench\",\"choices\":{choices},\"usage\":{usage}}}\n\n"
    )
    .into_bytes()
}

fn chunked(data: &[u8]) -> Vec<u8> {
    [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What one stream saw.
struct Seen {
    complete: bool,
    events: usize,
    /// The longest wait between two events.
    longest_gap: Duration,
}

async fn load(port: u16, streams: usize, events: usize, gap: Duration, request: Vec<u8>) -> Result<()> {
    let request = std::rc::Rc::new(request);
    let local = tokio::task::LocalSet::new();
    let seen = local
        .run_until(async move {
            let mut tasks = Vec::with_capacity(streams);
            for i in 0..streams {
                if i > 0 && i % BATCH == 0 {
                    tokio::time::sleep(BATCH_GAP).await;
                }
                let request = request.clone();
                tasks.push(tokio::task::spawn_local(async move { stream(port, &request).await }));
            }
            let mut seen = Vec::with_capacity(streams);
            for task in tasks {
                seen.push(task.await.ok().and_then(|r| r.ok()));
            }
            seen
        })
        .await;
    let whole: Vec<&Seen> = seen.iter().flatten().filter(|s| s.complete).collect();
    // Content chunks, the finish chunk and [DONE] (the filter removes the
    // usage chunk it asked for; without it the client gets it too).
    let expected = events + 2;
    let mut late: Vec<u128> = whole
        .iter()
        .map(|s| s.longest_gap.saturating_sub(gap).as_millis())
        .collect();
    late.sort_unstable();
    let p99 = late.get(late.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(0);
    println!(
        "{{\"streams\":{streams},\"complete\":{},\"short\":{},\"failed\":{},\"events\":{},\"late_ms_max\":{},\"late_ms_p99\":{p99}}}",
        whole.len(),
        whole.iter().filter(|s| s.events < expected).count(),
        seen.iter().filter(|s| !s.as_ref().is_some_and(|s| s.complete)).count(),
        whole.iter().map(|s| s.events).sum::<usize>(),
        late.last().copied().unwrap_or(0),
    );
    Ok(())
}

/// One streaming request, read to its end: de-chunks the body and times
/// each event's end (a blank line).
async fn stream(port: u16, request: &[u8]) -> Result<Seen> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
    socket.write_all(request).await?;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut head_done = false;
    let mut body = Vec::new();
    let mut events = 0;
    let mut last_event: Option<Instant> = None;
    let mut longest_gap = Duration::ZERO;
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(Seen {
                complete: false,
                events,
                longest_gap,
            });
        }
        raw.extend_from_slice(&buf[..n]);
        if !head_done {
            let Some(at) = find(&raw, b"\r\n\r\n") else { continue };
            if !raw.starts_with(b"HTTP/1.1 200") {
                return Err(format!("status: {}", String::from_utf8_lossy(&raw[..at])).into());
            }
            raw.drain(..at + 4);
            head_done = true;
        }
        // Whole chunks out of `raw` into `body`.
        let mut ended = false;
        while let Some(line_end) = find(&raw, b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end])?.trim(), 16)?;
            if raw.len() < line_end + 2 + size + 2 {
                break;
            }
            body.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
            raw.drain(..line_end + 2 + size + 2);
            if size == 0 {
                ended = true;
                break;
            }
        }
        let now = Instant::now();
        while let Some(at) = find(&body, b"\n\n") {
            body.drain(..at + 2);
            events += 1;
            if let Some(before) = last_event {
                longest_gap = longest_gap.max(now - before);
            }
            last_event = Some(now);
        }
        if ended {
            return Ok(Seen {
                complete: true,
                events,
                longest_gap,
            });
        }
    }
}
