//! The peer's web server: the consumer verification page a unit's QR code
//! opens (GS1 Digital Link `/01/{GTIN}/10/{lot}/21/{serial}?8030=…`), the
//! ledger explorer (`/explorer`) and the read-only JSON API behind both
//! (`/api/…`). Configured by `[web]` in the peer's TOML; see `docs/web.md`.
//!
//! Pages are rendered on the server (readable without JavaScript). Contract
//! answers come from this peer's own endorser, in-process, through a
//! proposal signed by the configured **client** identity: nothing is
//! ordered or written, and results are cached until the next block. Blocks
//! and transactions are read from the ledger directly. What it deliberately
//! is not: a way to write (a scan is a transaction, the consumer app's
//! choice), to read key history or written values, or a general HTTP
//! server — `http.rs` speaks one `GET` per connection, with head size,
//! timeouts, a connection cap and a per-IP token bucket (`limit.rs`).
//!
//! Start at [`serve`]; pages are `verify.rs` and `explorer.rs`, the JSON
//! API `api.rs`, block and transaction decoding `chain.rs`, the graph
//! `graph.rs`, the contract calls `query.rs`.

mod anchor;
mod api;
mod chain;
mod config;
mod explorer;
mod files;
mod graph;
mod html;
mod http;
mod index_card;
mod limit;
mod query;
mod rewards;
mod timing;
mod units;
mod verify;
mod verify_render;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use qcss_network::slots::{SlotLimits, Slots};
use qcss_network::tls::{ClientAuth, ServerTlsSettings};
use qcss_network::{MspId, Role, SigningIdentity};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::node::Peer;

pub use config::WebSettings;
pub use http::{percent_decode, percent_encode};
pub use timing::{RequestKind, Timings, quantile};

use http::{HeadError, Request, Response};

/// Why the web server cannot start or a page cannot be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// The `[web]` settings are unusable (identity, TLS files).
    #[error("web configuration: {0}")]
    Config(String),
    /// Evaluating the contract or reading the ledger failed (not a refusal
    /// by the contract, which is an answer).
    #[error("query: {0}")]
    Query(String),
}

/// The web server's state, shared by its connections.
pub struct Web {
    peer: Arc<Peer>,
    settings: WebSettings,
    /// The base URL unit codes are checked under.
    base: String,
    querier: Arc<query::Querier>,
    limiter: limit::RateLimiter,
    timings: Timings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// This org's anchor key (`[anchor]` in the peer's configuration).
    anchor_key: Option<ed25519_dalek::SigningKey>,
    /// The peer's MDSS store, whose public files `/files/{id}` serves.
    files: Option<Arc<crate::node::PeerFiles>>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("listen", &self.settings.listen)
            .field("base", &self.base)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Web {
    /// Prepares the server for `peer`: loads the client identity (refusing
    /// a `peer` or `orderer` one, which the endorser would refuse as a
    /// proposer), the TLS pair if given, and registers the latency
    /// histograms in the peer's metrics.
    pub fn new(
        peer: Arc<Peer>,
        settings: WebSettings,
        files: Option<Arc<crate::node::PeerFiles>>,
    ) -> Result<Arc<Web>, WebError> {
        let msp = settings
            .msp_id
            .clone()
            .unwrap_or_else(|| peer.msp_id().as_str().to_owned());
        let identity =
            SigningIdentity::load_dir(MspId(msp), &settings.identity_dir).map_err(|e| {
                WebError::Config(format!("identity {}: {e}", settings.identity_dir.display()))
            })?;
        if matches!(identity.cert.role, Some(Role::Peer | Role::Orderer)) {
            return Err(WebError::Config(format!(
                "identity {} is a {} identity; the web needs a client identity of a member org (the endorser refuses node identities as proposers)",
                settings.identity_dir.display(),
                identity.cert.role.map_or("node", Role::as_str)
            )));
        }
        let tls = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(&peer, cert, key)?),
            (None, None) => None,
            _ => {
                return Err(WebError::Config(
                    "give both cert and key for HTTPS, or neither".into(),
                ));
            }
        };
        let anchor_key = match &peer.cfg.anchor {
            Some(a) => Some(anchor::load_key(&a.key)?),
            None => None,
        };
        let querier = Arc::new(query::Querier::new(
            peer.clone(),
            identity,
            settings.chaincode.clone(),
            settings.cache_entries,
        ));
        Ok(Arc::new(Web {
            base: settings.base(),
            limiter: limit::RateLimiter::new(
                settings.rate_limit_per_sec,
                settings.rate_limit_burst,
            ),
            timings: Timings::new(Some(&peer.metrics.registry)),
            querier,
            tls,
            anchor_key,
            files,
            peer,
            settings,
        }))
    }

    /// Server-side latencies recorded so far.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }
}

/// A TLS acceptor for browsers: our rustls server configuration (client
/// certificates optional, so browsers connect without one), speaking
/// HTTP/1.1 instead of gRPC's h2.
fn tls_acceptor(
    peer: &Peer,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, WebError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| WebError::Config(format!("{}: {e}", p.display())))
    };
    let (roots, crls) = peer.channel().tls_roots_and_crls();
    let settings = ServerTlsSettings {
        cert_pem: read(cert)?,
        key_pem: read(key)?,
        client_roots_pem: roots,
        crls_pem: crls,
        client_auth: ClientAuth::Optional,
    };
    let config = qcss_network::tls::server_config(&settings)
        .map_err(|e| WebError::Config(format!("TLS: {e}")))?;
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `web` on `listener` until `shutdown` resolves; connections in
/// flight are then dropped.
///
/// Each connection runs in a slot (`qcss_network::slots`): at most
/// `max_connections` at once and `max_connections_per_ip` from one address,
/// and a new connection that finds a cap full evicts the oldest in it. A
/// slowloris client that opens connections and never finishes a request
/// therefore cannot keep a consumer's scan from being answered (with a
/// plain semaphore it held every permit until each head timed out).
pub async fn serve(listener: TcpListener, web: Arc<Web>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let slots = Slots::new(SlotLimits {
        total: web.settings.max_connections.max(1),
        per_ip: web.settings.max_connections_per_ip.max(1),
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, base = %web.base, tls = web.tls.is_some(), "web server listening");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loop {
        let (stream, addr) = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "web accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let web = web.clone();
        let mut stop = stop_rx.clone();
        slots.spawn(addr.ip(), move |slot| async move {
            let _slot = slot;
            let serve = async {
                match &web.tls {
                    Some(acceptor) => {
                        let hs = tokio::time::timeout(http::READ_TIMEOUT, acceptor.accept(stream));
                        if let Ok(Ok(tls)) = hs.await {
                            connection(&web, tls, addr).await;
                        }
                    }
                    None => connection(&web, stream, addr).await,
                }
            };
            tokio::select! {
                () = serve => {}
                _ = stop.changed() => {}
            }
        });
    }
    let _ = stop_tx.send(true);
    tracing::info!(evicted = slots.evicted(), "web server stopped");
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(web: &Web, mut stream: S, addr: SocketAddr) {
    let head = tokio::time::timeout(http::READ_TIMEOUT, http::read_head(&mut stream)).await;
    let started = Instant::now();
    let (mut response, kind, head_only) = match head {
        Err(_) => (
            Response::text(408, "request timeout"),
            RequestKind::Other,
            false,
        ),
        Ok(Err(HeadError::TooLarge)) => (
            Response::text(431, "request head too large"),
            RequestKind::Other,
            false,
        ),
        Ok(Err(HeadError::Closed { empty: false })) => (
            Response::text(400, "incomplete request"),
            RequestKind::Other,
            false,
        ),
        Ok(Err(HeadError::Closed { empty: true } | HeadError::Io)) => return,
        Ok(Ok(head)) => match http::parse_head(&head) {
            None => (
                Response::text(400, "malformed request"),
                RequestKind::Other,
                false,
            ),
            Some(req) => {
                let kind = if req.path.starts_with("/01/") {
                    RequestKind::Verify
                } else {
                    RequestKind::Other
                };
                let head_only = req.method == "HEAD";
                let r = match web.limiter.check(addr.ip(), Instant::now()) {
                    Err(wait) => Response::json_error(429, "too many requests; slow down")
                        .with_header("Retry-After", wait.as_secs().max(1).to_string()),
                    Ok(()) => route(web, &req).await,
                };
                (r, kind, head_only)
            }
        },
    };
    let written = http::write_response(&mut stream, &mut response, head_only).await;
    web.timings.record(kind, started.elapsed());
    if written {
        http::drain(&mut stream).await;
    }
}

/// Dispatches one request.
async fn route(web: &Web, req: &Request) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "method not allowed").with_header("Allow", "GET, HEAD");
    }
    let path = req.path.as_str();
    if path == "/" {
        return Response::redirect("/explorer");
    }
    if path == "/explorer.js" {
        let mut r = Response::text(200, "");
        r.content_type = "text/javascript; charset=utf-8".into();
        r.body = explorer::SCRIPT.as_bytes().to_vec();
        return r.with_header("Cache-Control", "max-age=300");
    }
    if path == "/explorer" || path.starts_with("/explorer/") {
        return explorer::route(web, req).await;
    }
    if path.starts_with("/api/") {
        return api::route(web, req).await;
    }
    if let Some(id) = path.strip_prefix("/files/") {
        return files::route(web, req, id).await;
    }
    if let Some(target) = verify::LinkTarget::parse(path) {
        return verify::page_for(web, req, target).await;
    }
    Response::text(404, "not found")
}
