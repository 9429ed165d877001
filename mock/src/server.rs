//! The mocks' HTTP/1.1 server (hyper): records each request, injects the
//! fault asked for, and sends [`crate::api`]'s reply, events one by one.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::api::{self, Reply};
use crate::fault::{Fault, FAULT_HEADER};
use crate::{runtime, Provider, Received};

/// Pause between streamed events, so a buffering proxy would be visible.
pub const STREAM_EVENT_GAP: Duration = Duration::from_millis(50);
/// Pause between the pieces of a [`Fault::Split`] write, so they leave as separate segments.
const SPLIT_GAP: Duration = Duration::from_millis(5);

type Body = BoxBody<Bytes, io::Error>;

/// A running mock; it serves until the process ends.
#[derive(Debug, Clone)]
pub struct Mock {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    provider: Provider,
    key: String,
    received: Mutex<Vec<Received>>,
    fault: Mutex<Option<Fault>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Mock {
    /// How many requests have arrived so far, answered or refused.
    pub fn requests(&self) -> usize {
        lock(&self.shared.received).len()
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// A fault for every request from now on (`None`: answer normally). A
    /// request's own `x-mock-fault` header wins.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.shared.fault) = fault;
    }
}

/// Binds `addr` (port 0 for any free port) and serves `provider` there,
/// accepting `key`.
pub fn start(provider: Provider, addr: &str, key: &str) -> io::Result<Mock> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let mock = Mock {
        addr: listener.local_addr()?,
        shared: Arc::new(Shared {
            provider,
            key: key.to_owned(),
            received: Mutex::default(),
            fault: Mutex::default(),
        }),
    };
    let shared = mock.shared.clone();
    runtime().spawn(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, shared.clone()));
        }
    });
    Ok(mock)
}

/// The service failed on purpose: hyper drops the connection unanswered.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a mock fault")
    }
}

impl std::error::Error for Dropped {}

async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    // A second handle on the socket, to turn its close into a reset.
    let std_stream = stream.into_std()?;
    let handle = Arc::new(std_stream.try_clone()?);
    let stream = tokio::net::TcpStream::from_std(std_stream)?;
    let service = service_fn(move |request| handle_request(request, shared.clone(), handle.clone()));
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
        .map_err(io::Error::other)
}

async fn handle_request(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
    socket: Arc<std::net::TcpStream>,
) -> Result<hyper::Response<Body>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let fault = match received.header(FAULT_HEADER) {
        Some(spec) => match Fault::parse(spec) {
            Ok(fault) => Some(fault),
            Err(e) => {
                return Ok(json_response(
                    400,
                    &[],
                    api::openai_error(&e, "mock", None).to_string().into_bytes(),
                    None,
                ))
            }
        },
        None => lock(&shared.fault).clone(),
    };
    lock(&shared.received).push(received.clone());
    match &fault {
        Some(Fault::Stall(wait)) => tokio::time::sleep(*wait).await,
        Some(Fault::Reset) => {
            // SO_LINGER 0: closing the socket sends RST, not FIN.
            let _ = socket2::SockRef::from(&*socket).set_linger(Some(Duration::ZERO));
            return Err(Dropped);
        }
        Some(Fault::Status { status, retry_after }) => {
            let body = api::error_for_status(shared.provider, *status).to_string().into_bytes();
            let retry_after = retry_after.map(|s| s.to_string());
            let headers: Vec<(&str, &str)> = retry_after.iter().map(|s| ("retry-after", s.as_str())).collect();
            return Ok(json_response(*status, &headers, body, None));
        }
        _ => {}
    }
    let reply = api::answer(shared.provider, &shared.key, &received);
    if fault == Some(Fault::Gzip) {
        return Ok(gzipped(reply));
    }
    Ok(match reply {
        Reply::Json { status, headers, body } => {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            json_response(status, &headers, body, fault)
        }
        Reply::Events(events) => event_stream(events, fault),
    })
}

fn json_response(status: u16, headers: &[(&str, &str)], body: Vec<u8>, fault: Option<Fault>) -> hyper::Response<Body> {
    let mut response = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len());
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    let body = match fault {
        // The announced length, then fewer bytes and a cut connection.
        Some(Fault::CutAfter(bytes)) => {
            let sent = body.get(..bytes).unwrap_or(&body).to_vec();
            paced(vec![sent], Some(1), false)
        }
        Some(Fault::Split) => paced(vec![body], None, true),
        _ => Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    };
    response.body(body).unwrap_or_else(|_| hyper::Response::new(empty()))
}

/// The whole reply in one gzip-compressed body.
fn gzipped(reply: Reply) -> hyper::Response<Body> {
    use std::io::Write;
    let (status, content_type, bytes) = match reply {
        Reply::Json { status, body, .. } => (status, "application/json", body),
        Reply::Events(events) => (200, "text/event-stream", events.concat()),
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = encoder
        .write_all(&bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-encoding", "gzip")
        .header("content-length", compressed.len())
        .body(
            Full::new(Bytes::from(compressed))
                .map_err(|never: Infallible| match never {})
                .boxed(),
        )
        .unwrap_or_else(|_| hyper::Response::new(empty()))
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn event_stream(events: Vec<Vec<u8>>, fault: Option<Fault>) -> hyper::Response<Body> {
    let cut = match fault {
        Some(Fault::CutAfter(n)) => Some(n),
        _ => None,
    };
    let body = paced(events, cut, matches!(fault, Some(Fault::Split)));
    hyper::Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(body)
        .unwrap_or_else(|_| hyper::Response::new(empty()))
}

/// A body that sends `pieces` one by one, [`STREAM_EVENT_GAP`] apart: with
/// `cut`, only that many, then the connection is cut instead of the body
/// ending; with `split`, each piece in three writes, [`SPLIT_GAP`] apart.
fn paced(pieces: Vec<Vec<u8>>, cut: Option<usize>, split: bool) -> Body {
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, io::Error>::new(1);
    tokio::spawn(async move {
        for (i, piece) in pieces.into_iter().take(cut.unwrap_or(usize::MAX)).enumerate() {
            if i > 0 {
                tokio::time::sleep(STREAM_EVENT_GAP).await;
            }
            let writes = if split { thirds(&piece) } else { vec![&piece[..]] };
            for write in writes {
                if sender.send_data(Bytes::copy_from_slice(write)).await.is_err() {
                    return;
                }
                if split {
                    tokio::time::sleep(SPLIT_GAP).await;
                }
            }
        }
        if cut.is_some() {
            // Let what was sent reach the socket: an abort overtakes queued data.
            tokio::time::sleep(STREAM_EVENT_GAP).await;
            sender.abort(io::Error::other("cut by a mock fault"));
        }
    });
    body.boxed()
}

/// `bytes` in three parts (fewer when it is shorter than three bytes).
fn thirds(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.chunks(bytes.len().div_ceil(3).max(1)).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::client::{self, Request};

    fn chat(mock: &Mock, fault: Option<&str>, stream: bool) -> io::Result<client::Response> {
        let mut request = Request::new("POST", "/v1/chat/completions")
            .header("authorization", "Bearer k")
            .body(format!(r#"{{"model":"m","stream":{stream}}}"#));
        if let Some(fault) = fault {
            request = request.header(FAULT_HEADER, fault);
        }
        client::send(mock.addr, &request)
    }

    fn mock() -> Mock {
        start(Provider::OpenAi, "127.0.0.1:0", "k").expect("mock starts")
    }

    #[test]
    fn status_faults_answer_in_the_providers_shape() {
        let mock = mock();
        let response = chat(&mock, Some("429;retry-after=7"), false).expect("an answer");
        assert_eq!(response.status, 429);
        assert_eq!(response.header("retry-after"), Some("7"));
        assert_eq!(response.body_json()["error"]["type"], "rate_limit_error");
        assert_eq!(chat(&mock, Some("503"), false).expect("an answer").status, 503);
        assert_eq!(chat(&mock, Some("bogus"), false).expect("an answer").status, 400);
        assert_eq!(mock.requests(), 2, "a malformed fault is refused before it counts");
    }

    #[test]
    fn a_listener_fault_applies_until_cleared_and_a_header_overrides_it() {
        let mock = mock();
        mock.set_fault(Some(Fault::Status {
            status: 500,
            retry_after: None,
        }));
        assert_eq!(chat(&mock, None, false).expect("an answer").status, 500);
        assert_eq!(chat(&mock, Some("429"), false).expect("an answer").status, 429);
        mock.set_fault(None);
        assert_eq!(chat(&mock, None, false).expect("an answer").status, 200);
    }

    #[test]
    fn reset_drops_the_connection_unanswered() {
        let mock = mock();
        let error = chat(&mock, Some("reset"), false).expect_err("no answer");
        assert!(!error.to_string().is_empty());
        assert_eq!(mock.received().len(), 1, "the request was received before the reset");
    }

    #[test]
    fn stall_waits_before_answering() {
        let mock = mock();
        let started = Instant::now();
        assert_eq!(chat(&mock, Some("stall=300"), false).expect("an answer").status, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn cut_after_sends_that_many_events_then_cuts() {
        let mock = mock();
        let response = chat(&mock, Some("cut-after=2"), true).expect("a head");
        assert_eq!(response.status, 200);
        assert!(!response.complete);
        assert_eq!(response.text().matches("data: ").count(), 2, "{}", response.text());
        let json = chat(&mock, Some("cut-after=10"), false).expect("a head");
        assert!(!json.complete);
        assert_eq!(json.body.len(), 10);
        assert!(chat(&mock, None, true).expect("a stream").complete);
    }

    #[test]
    fn gzip_compresses_whatever_was_accepted() {
        use std::io::Read;
        let mock = mock();
        let plain = chat(&mock, None, false).expect("an answer");
        let zipped = chat(&mock, Some("gzip"), false).expect("an answer");
        assert_eq!(zipped.header("content-encoding"), Some("gzip"));
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped.body[..])
            .read_to_end(&mut unzipped)
            .expect("gzip");
        // The same answer (but the echo of what arrived, which has the fault header).
        let mut unzipped: serde_json::Value = serde_json::from_slice(&unzipped).expect("json");
        let mut plain = plain.body_json();
        unzipped["mock"] = serde_json::Value::Null;
        plain["mock"] = serde_json::Value::Null;
        assert_eq!(unzipped, plain);
    }

    #[test]
    fn split_sends_each_event_in_several_writes() {
        let mock = mock();
        let whole = chat(&mock, None, true).expect("a stream");
        let split = chat(&mock, Some("split"), true).expect("a stream");
        assert_eq!(split.body, whole.body, "the same bytes");
        let events = whole.text().matches("\n\n").count();
        assert!(
            split.pieces.len() >= 2 * events,
            "{} pieces for {events} events",
            split.pieces.len()
        );
        // Some piece ends inside an event.
        assert!(split.pieces.iter().any(|(_, p)| !p.ends_with(b"\n\n")));
    }
}
