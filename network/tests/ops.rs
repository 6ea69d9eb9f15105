//! The operations endpoint over real sockets on 127.0.0.1, with a raw TCP client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qcss_network::ops::{Health, Ops, Registry, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn start(ops: Ops) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, ops, async {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

/// Sends `request` as is and reads until the server closes.
async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("server closes the connection")
        .unwrap();
    response
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Parses an HTTP/1.1 response, checking `Content-Length` and `Connection: close`.
fn parse(bytes: &[u8]) -> Reply {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("complete head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_owned(),
    };
    assert_eq!(
        reply.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(reply.header("connection"), Some("close"));
    reply
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n");
    parse(&raw(addr, request.as_bytes()).await)
}

#[tokio::test]
async fn healthz_reports_ok_then_failed_checks() {
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&healthy);
    let ops = Ops::new(Registry::new()).with_health_check(move || {
        let raft = if flag.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("no leader for 30s".to_owned())
        };
        Health::new().check("ledger", Ok(())).check("raft", raft)
    });
    let server = start(ops).await;

    let ok = get(server.addr, "/healthz").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), serde_json::json!({ "status": "OK" }));

    healthy.store(false, Ordering::SeqCst);
    let failed = get(server.addr, "/healthz").await;
    assert_eq!(failed.status, 503);
    assert_eq!(
        failed.json(),
        serde_json::json!({
            "status": "Service Unavailable",
            "failed_checks": [{ "component": "raft", "reason": "no leader for 30s" }],
        })
    );

    healthy.store(true, Ordering::SeqCst);
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn metrics_expose_counters_gauges_and_histograms() {
    let registry = Registry::new();
    let blocks = registry
        .counter("ledger_blocks_committed_total", "Blocks committed.")
        .unwrap();
    let validation = registry
        .counter_vec(
            "validator_tx_total",
            "Transactions by validation code.",
            &["channel", "code"],
        )
        .unwrap();
    registry
        .gauge_fn(
            "tls_cert_expiry_seconds",
            "Seconds until the TLS certificate expires.",
            || 86400.5,
        )
        .unwrap();
    let commit = registry
        .histogram("ledger_commit_seconds", "Block commit time.", &[0.1, 1.0])
        .unwrap();

    blocks.inc();
    blocks.inc_by(2);
    validation.with(&["mychannel", "VALID"]).inc_by(5);
    validation.with(&["mychannel", "MVCC_READ_CONFLICT"]).inc();
    for seconds in [0.0625, 0.5, 2.0] {
        commit.observe(seconds);
    }

    let server = start(Ops::new(registry)).await;
    let reply = get(server.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines: Vec<&str> = reply.body.lines().collect();
    for expected in [
        "# HELP ledger_blocks_committed_total Blocks committed.",
        "# TYPE ledger_blocks_committed_total counter",
        "ledger_blocks_committed_total 3",
        "# TYPE validator_tx_total counter",
        "validator_tx_total{channel=\"mychannel\",code=\"MVCC_READ_CONFLICT\"} 1",
        "validator_tx_total{channel=\"mychannel\",code=\"VALID\"} 5",
        "# TYPE tls_cert_expiry_seconds gauge",
        "tls_cert_expiry_seconds 86400.5",
        "# TYPE ledger_commit_seconds histogram",
        "ledger_commit_seconds_bucket{le=\"0.1\"} 1",
        "ledger_commit_seconds_bucket{le=\"1\"} 2",
        "ledger_commit_seconds_bucket{le=\"+Inf\"} 3",
        "ledger_commit_seconds_sum 2.5625",
        "ledger_commit_seconds_count 3",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in\n{}",
            reply.body
        );
    }
    // Families appear sorted by name.
    let order: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted);
}

#[tokio::test]
async fn version_reports_crate_version() {
    let server = start(Ops::new(Registry::new())).await;
    let reply = get(server.addr, "/version").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })
    );
}

#[tokio::test]
async fn unknown_path_is_404() {
    let server = start(Ops::new(Registry::new())).await;
    assert_eq!(get(server.addr, "/nope").await.status, 404);
    assert_eq!(get(server.addr, "/metrics/extra").await.status, 404);
    // The query string is not part of the route.
    assert_eq!(get(server.addr, "/healthz?verbose=1").await.status, 200);
}

#[tokio::test]
async fn non_get_is_405() {
    let server = start(Ops::new(Registry::new())).await;
    let reply = parse(
        &raw(
            server.addr,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await,
    );
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET"));
    let reply = parse(&raw(server.addr, b"DELETE /healthz HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn oversize_head_is_431() {
    let server = start(Ops::new(Registry::new())).await;
    let filler = "a".repeat(10 * 1024);
    let request = format!("GET /metrics HTTP/1.1\r\nX-Filler: {filler}\r\n\r\n");
    let reply = parse(&raw(server.addr, request.as_bytes()).await);
    assert_eq!(reply.status, 431);
    // Still serving.
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn request_split_across_writes_is_read_whole() {
    let server = start(Ops::new(Registry::new())).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for part in [
        &b"GET /hea"[..],
        b"lthz HTTP/1.1\r\nHost: x\r",
        b"\n\r",
        b"\n",
    ] {
        stream.write_all(part).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    assert_eq!(parse(&response).status, 200);
}

#[tokio::test]
async fn garbage_closes_connection_and_server_survives() {
    let server = start(Ops::new(Registry::new())).await;

    // Junk with a head terminator: a 400, then closed.
    let junk: Vec<u8> = (0..=255u8).chain(*b"\r\n\r\n").collect();
    let reply = parse(&raw(server.addr, &junk).await);
    assert_eq!(reply.status, 400);

    // Junk and then a half-close, without any terminator.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"\x00\x01\x02 not http at all")
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    assert_eq!(parse(&response).status, 400);

    // A TLS ClientHello on the plain port, then EOF.
    let hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03";
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(hello).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();

    // Connect and hang up without a byte.
    drop(TcpStream::connect(server.addr).await.unwrap());

    // Malformed request lines.
    for bad in [
        &b"GET\r\n\r\n"[..],
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno-colon-header\r\n\r\n",
    ] {
        assert_eq!(parse(&raw(server.addr, bad).await).status, 400);
    }

    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    assert!(!server.task.is_finished());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let server = start(Ops::new(Registry::new())).await;
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    server.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err());
}
