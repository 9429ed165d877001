//! Just enough HTTP/1.1 for the mock providers and the test client:
//! keep-alive, `content-length` and chunked bodies.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A request or response head plus its body.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Request: `METHOD PATH HTTP/1.1`; response: `HTTP/1.1 STATUS REASON`.
    pub start_line: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The status of a response (0 if the start line is not one).
    pub fn status(&self) -> u16 {
        self.start_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads one message head; `Ok(None)` on a clean end of the connection.
/// Header values that are not UTF-8 (HTTP allows them) are read lossily.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Message>> {
    let mut raw = Vec::new();
    let mut read_line = |raw: &mut Vec<u8>| -> io::Result<Option<String>> {
        raw.clear();
        Ok((reader.read_until(b'\n', raw)? > 0).then(|| String::from_utf8_lossy(raw).trim_end().to_owned()))
    };
    let Some(start_line) = read_line(&mut raw)? else {
        return Ok(None);
    };
    let mut message = Message {
        start_line,
        ..Message::default()
    };
    loop {
        let Some(line) = read_line(&mut raw)? else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "headers cut short"));
        };
        if line.is_empty() {
            return Ok(Some(message));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad header line"))?;
        message
            .headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// Reads the body that `head` announces, calling `on_chunk` as bytes arrive.
pub fn read_body(reader: &mut impl BufRead, head: &Message, mut on_chunk: impl FnMut(&[u8])) -> io::Result<()> {
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_text = size_line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    size_line.clear();
                    if reader.read_line(&mut size_line)? == 0 || size_line.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            on_chunk(&chunk);
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(length) = head.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        on_chunk(&body);
        Ok(())
    } else if head.start_line.starts_with("HTTP/") {
        // A response without framing runs to the end of the connection.
        let mut buf = [0; 8192];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            on_chunk(&buf[..n]);
        }
    } else {
        Ok(())
    }
}

/// Reads one whole message, head and body; `Ok(None)` on a clean end of the connection.
pub fn read_message(reader: &mut impl BufRead) -> io::Result<Option<Message>> {
    let Some(mut message) = read_head(reader)? else {
        return Ok(None);
    };
    let mut body = Vec::new();
    read_body(reader, &message, |piece| body.extend_from_slice(piece))?;
    message.body = body;
    Ok(Some(message))
}

/// Writes a response with a `content-length` body.
pub fn write_response(out: &mut impl Write, status: u16, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Other",
    }
}

/// A response as the client saw it, with when each body piece arrived.
#[derive(Debug)]
pub struct Response {
    pub message: Message,
    /// (time since the request was sent, bytes) per piece of body read.
    pub pieces: Vec<(Duration, Vec<u8>)>,
}

/// Sends one request on a fresh connection and reads the whole response.
/// `headers` are sent as given (plus `host` and `connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let started = Instant::now();
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let mut message =
        read_head(&mut reader)?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let mut pieces = Vec::new();
    read_body(&mut reader, &message, |piece| {
        pieces.push((started.elapsed(), piece.to_vec()))
    })?;
    message.body = pieces.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    Ok(Response { message, pieces })
}
