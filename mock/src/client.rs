//! The tests' HTTP/1.1 client (hyper), blocking: one request on a fresh
//! connection ([`send`], [`request`]) or many on a kept-alive one
//! ([`Connection`]). Header values are bytes, so tests can send what a
//! hostile client would; bodies can be chunked with trailers.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::runtime;

/// Longest a response may take, start to end.
const TIMEOUT: Duration = Duration::from_secs(30);

type Body = BoxBody<Bytes, io::Error>;

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Sent as given (names lower-cased on the wire), plus `host`.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// When set, the body goes chunked: these pieces, then these trailers.
    pub chunks: Option<(Vec<Vec<u8>>, Vec<(String, String)>)>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            ..Request::default()
        }
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers.push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: impl AsRef<[u8]>) -> Request {
        self.body = body.as_ref().to_vec();
        self
    }

    /// A chunked body of these pieces, ending with these trailers.
    pub fn chunked(mut self, pieces: &[&[u8]], trailers: &[(&str, &str)]) -> Request {
        let pieces = pieces.iter().map(|p| p.to_vec()).collect();
        let trailers = trailers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        self.chunks = Some((pieces, trailers));
        self
    }
}

/// A response as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// (time since the request was sent, bytes) per piece of body read.
    pub pieces: Vec<(Duration, Vec<u8>)>,
    /// False when the connection broke before the body ended.
    pub complete: bool,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A kept-alive connection: requests go one after another on it.
pub struct Connection {
    addr: SocketAddr,
    sender: SendRequest<Body>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        runtime().block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(io::Error::other)?;
            tokio::spawn(connection);
            Ok(Connection { addr, sender })
        })
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub fn send(&mut self, request: &Request) -> io::Result<Response> {
        let addr = self.addr;
        let sender = &mut self.sender;
        runtime().block_on(async {
            tokio::time::timeout(TIMEOUT, exchange(sender, addr, request))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no whole response in 30 s"))?
        })
    }
}

/// Sends `request` on a fresh connection (closed after it) and reads the whole response.
pub fn send(addr: SocketAddr, request: &Request) -> io::Result<Response> {
    let mut connection = Connection::open(addr)?;
    let mut request = request.clone();
    request.headers.push(("connection".into(), b"close".to_vec()));
    connection.send(&request)
}

/// A request with these headers and body on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let request = headers
        .iter()
        .fold(Request::new(method, path), |r, (n, v)| r.header(n, v))
        .body(body);
    send(addr, &request)
}

async fn exchange(sender: &mut SendRequest<Body>, addr: SocketAddr, request: &Request) -> io::Result<Response> {
    sender.ready().await.map_err(io::Error::other)?;
    let body: Body = match &request.chunks {
        None => Full::new(Bytes::from(request.body.clone()))
            .map_err(|never| match never {})
            .boxed(),
        Some((pieces, trailers)) => {
            let mut frames: Vec<Result<Frame<Bytes>, io::Error>> =
                pieces.iter().map(|p| Ok(Frame::data(Bytes::from(p.clone())))).collect();
            if !trailers.is_empty() {
                let mut map = hyper::HeaderMap::new();
                for (name, value) in trailers {
                    let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(io::Error::other)?;
                    map.append(name, value.parse().map_err(io::Error::other)?);
                }
                frames.push(Ok(Frame::trailers(map)));
            }
            StreamBody::new(futures_util::stream::iter(frames)).boxed()
        }
    };
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(request.path.as_str())
        .header("host", addr.to_string());
    for (name, value) in &request.headers {
        let value = hyper::header::HeaderValue::from_bytes(value).map_err(io::Error::other)?;
        builder = builder.header(name.as_str(), value);
    }
    if request.chunks.is_none() && (request.method == "POST" || !request.body.is_empty()) {
        builder = builder.header("content-length", request.body.len());
    }
    let started = Instant::now();
    let response = sender
        .send_request(builder.body(body).map_err(io::Error::other)?)
        .await
        .map_err(io::Error::other)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = response.into_body();
    let mut pieces = Vec::new();
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        match frame.map(Frame::into_data) {
            Ok(Ok(data)) => pieces.push((started.elapsed(), data.to_vec())),
            Ok(Err(_trailers)) => {}
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body: pieces.iter().flat_map(|(_, p)| p.iter().copied()).collect(),
        pieces,
        complete,
    })
}
