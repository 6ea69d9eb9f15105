//! The operations endpoint's small HTTP server: [`Ops`], [`serve`], and the
//! request-head helpers the peer's web server shares.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Health, Registry};
use crate::slots::{SlotLimits, Slots};

/// Largest request head (request line and headers) the server reads.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client gets to send its whole request head: scrapers and
/// health probes send theirs at once; a slow head is a slowloris.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client gets to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After responding, how long (and how much) unread input is discarded so
/// that closing does not reset the connection before the client reads.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const DRAIN_LIMIT: usize = 64 * 1024;
/// Connections served at once; a further one evicts the oldest.
const MAX_CONNECTIONS: usize = 64;
/// Connections at once from one address.
const MAX_CONNECTIONS_PER_IP: usize = 16;
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the operations endpoint serves: the node's metrics and its health
/// check. Cloning is cheap.
#[derive(Clone)]
pub struct Ops {
    registry: Registry,
    health: Arc<dyn Fn() -> Health + Send + Sync>,
}

impl Ops {
    /// Serves `registry` with a health check that always reports healthy.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            health: Arc::new(Health::new),
        }
    }

    /// Replaces the health check, called on every `GET /healthz`.
    ///
    /// It runs on the connection's task, so it must be quick and must not
    /// block (read flags or atomics kept up to date elsewhere). A panic in it
    /// is reported as an unhealthy `healthz` component.
    pub fn with_health_check(mut self, check: impl Fn() -> Health + Send + Sync + 'static) -> Self {
        self.health = Arc::new(check);
        self
    }

    /// The registry served at `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn health(&self) -> Health {
        catch_unwind(AssertUnwindSafe(|| (self.health)()))
            .unwrap_or_else(|_| Health::new().check("healthz", Err("health check panicked".into())))
    }
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// Serves the operations endpoint on `listener` until `shutdown` resolves.
///
/// Routes: `GET /healthz` (200 `{"status":"OK"}`, or 503 with
/// `"failed_checks"`), `GET /metrics` (200, `text/plain; version=0.0.4`),
/// `GET /version` (200 `{"version":...}`); any other path is 404 and any
/// other method 405. A request head over 8 KiB is 431, a malformed one 400,
/// one not complete within 2 s 408. Every response closes the connection.
///
/// Each connection runs in its own task, at most 64 at once and 16 from one
/// address; a new connection that finds a cap full evicts the oldest one in
/// it (see [`crate::slots`]), so slow clients cannot keep `/healthz` from
/// answering. On shutdown the server stops accepting and ends connections
/// still in flight.
pub async fn serve(listener: TcpListener, ops: Ops, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let slots = Slots::new(SlotLimits {
        total: MAX_CONNECTIONS,
        per_ip: MAX_CONNECTIONS_PER_IP,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "operations endpoint listening");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "operations endpoint accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let ops = ops.clone();
        let mut stop = stop_rx.clone();
        slots.spawn(peer.ip(), move |slot| async move {
            let _slot = slot;
            tokio::select! {
                () = handle_connection(stream, &ops) => {}
                _ = stop.changed() => {}
            }
            tracing::trace!(%peer, "operations connection closed");
        });
    }
    let _ = stop_tx.send(true);
    tracing::info!("operations endpoint stopped");
}

/// A parsed request line; headers are checked for shape and then ignored.
#[derive(Debug, PartialEq, Eq)]
struct RequestHead<'a> {
    method: &'a str,
    /// The target without its query string.
    path: &'a str,
}

/// How reading the request head ended, short of a complete head.
#[derive(Debug)]
pub enum HeadError {
    /// More than [`MAX_HEAD`] bytes without the blank line.
    TooLarge,
    /// The client closed first.
    Closed {
        /// It sent nothing at all.
        empty: bool,
    },
    /// The socket failed.
    Io,
}

/// A response about to be written.
#[derive(Debug)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }

    fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: value.to_string(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len(),
        );
        if self.status == 405 {
            head.push_str("Allow: GET\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

/// The HTTP reason phrase of the statuses QCSS's HTTP servers answer with
/// (this one and the peer's web server).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

async fn handle_connection(mut stream: TcpStream, ops: &Ops) {
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_elapsed) => Response::text(408, "request timeout"),
        Ok(Err(HeadError::TooLarge)) => Response::text(431, "request head too large"),
        Ok(Err(HeadError::Closed { empty: false })) => Response::text(400, "incomplete request"),
        Ok(Err(HeadError::Closed { empty: true } | HeadError::Io)) => return,
        Ok(Ok(head)) => match parse_head(&head) {
            Some(request) => route(&request, ops),
            None => Response::text(400, "malformed request"),
        },
    };
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response.to_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    drain(&mut stream, DRAIN_TIMEOUT).await;
}

/// Reads and discards what the client still sends (a body, the rest of an
/// oversize head), for at most `timeout` and 64 KiB, so that
/// closing with unread input does not reset the connection before the
/// client has read the response (also used by the peer's web server).
pub async fn drain<S: AsyncRead + Unpin>(stream: &mut S, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// Reads up to and excluding the blank line that ends an HTTP/1 request
/// head, at most [`MAX_HEAD`] bytes (also used by the peer's web server).
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut searched = 0;
    loop {
        // Resume the search where a terminator split across reads could start.
        if let Some(end) = find_head_end(&buf[searched..]) {
            buf.truncate(searched + end);
            return Ok(buf);
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let want = chunk.len().min(MAX_HEAD - buf.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) => {
                return Err(HeadError::Closed {
                    empty: buf.is_empty(),
                });
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(HeadError::Io),
        }
    }
}

/// The length of the head before its `\r\n\r\n`, if the buffer holds one.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// An HTTP/1 request head checked and split: `METHOD SP /target SP
/// HTTP/1.x`, then header lines with a non-empty name and a colon (values
/// untrimmed). `None` for anything else. Also used by the peer's web server.
pub fn split_head(head: &[u8]) -> Option<HeadParts<'_>> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
    {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        headers.push((name, value));
    }
    Some(HeadParts {
        method,
        target,
        headers,
    })
}

/// A request head as [`split_head`] returns it.
#[derive(Debug)]
pub struct HeadParts<'a> {
    /// The method (`GET`, `HEAD`, …).
    pub method: &'a str,
    /// The request target, query included.
    pub target: &'a str,
    /// Header lines in order: name, value as sent.
    pub headers: Vec<(&'a str, &'a str)>,
}

/// The method and path of a well-formed request head.
fn parse_head(head: &[u8]) -> Option<RequestHead<'_>> {
    let HeadParts { method, target, .. } = split_head(head)?;
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    Some(RequestHead { method, path })
}

fn route(request: &RequestHead<'_>, ops: &Ops) -> Response {
    if request.method != "GET" {
        return Response::text(405, "method not allowed");
    }
    match request.path {
        "/healthz" => healthz(&ops.health()),
        "/metrics" => match catch_unwind(AssertUnwindSafe(|| ops.registry.render())) {
            Ok(text) => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: text,
            },
            Err(_) => Response::text(500, "metrics rendering failed"),
        },
        "/version" => Response::json(
            200,
            &serde_json::json!({ "version": env!("CARGO_PKG_VERSION") }),
        ),
        _ => Response::text(404, "not found"),
    }
}

fn healthz(health: &Health) -> Response {
    if health.is_ok() {
        return Response::json(200, &serde_json::json!({ "status": "OK" }));
    }
    let failed: Vec<serde_json::Value> = health
        .failed_checks()
        .map(|(component, reason)| serde_json::json!({ "component": component, "reason": reason }))
        .collect();
    Response::json(
        503,
        &serde_json::json!({ "status": "Service Unavailable", "failed_checks": failed }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_heads() {
        let ok = parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*");
        assert_eq!(
            ok,
            Some(RequestHead {
                method: "GET",
                path: "/metrics"
            })
        );
        for bad in [
            &b""[..],
            b"GET /metrics",
            b"GET metrics HTTP/1.1",
            b"GET /metrics HTTP/2.0",
            b"GET  /metrics HTTP/1.1",
            b"get /metrics HTTP/1.1",
            b"GET /metrics HTTP/1.1\r\nno colon",
            b"GET /metrics HTTP/1.1\r\n: empty name",
            b"\xff\xfe / HTTP/1.1",
        ] {
            assert_eq!(parse_head(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn failed_health_lists_only_failures() {
        let h = Health::new()
            .check("ledger", Ok(()))
            .check("raft", Err("no leader".into()));
        assert!(!h.is_ok());
        let r = healthz(&h);
        assert_eq!(r.status, 503);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "status": "Service Unavailable",
                "failed_checks": [{ "component": "raft", "reason": "no leader" }],
            })
        );
    }
}
