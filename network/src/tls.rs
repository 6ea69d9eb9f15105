//! Mutual TLS for every QCSS gRPC server and client, with rustls.
//!
//! tonic's own `ServerTlsConfig` cannot check CRLs, so servers run their own
//! rustls acceptor ([`TlsAcceptorHandle`]) and feed tonic the finished TLS
//! streams ([`incoming`]). The acceptor's configuration can be swapped at run
//! time ([`TlsAcceptorHandle::reload`]) so that a new CRL takes effect on the
//! next connection without a restart. Handshakes run in their own tasks so a
//! slow or hostile client cannot stall `accept`.
//!
//! Clients use tonic's `ClientTlsConfig` ([`client_tls`]), which verifies the
//! server's certificate against the consortium TLS roots and its SAN against
//! the expected name. Handlers read the caller's certificate with
//! [`peer_certificate`].

use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::identity::CertInfo;
use crate::log_limit::{LogLimit, Verdict};
use crate::slots::{SlotLimits, Slots};

/// How long a client gets to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate, key or CRL did not parse.
    #[error("{what}: {message}")]
    BadPem {
        /// Which input.
        what: &'static str,
        /// The parse error.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Whether a server asks clients for certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client must present a certificate from the roots (the default for every node).
    Required,
    /// A client may connect without one (the CA's enroll endpoint: newcomers have none yet).
    Optional,
}

/// Everything a TLS server needs, as PEM.
#[derive(Debug, Clone)]
pub struct ServerTlsSettings {
    /// The server's TLS certificate chain.
    pub cert_pem: Vec<u8>,
    /// The server's TLS private key.
    pub key_pem: Vec<u8>,
    /// Roots that client certificates must chain to (the consortium's TLS roots).
    pub client_roots_pem: Vec<Vec<u8>>,
    /// CRLs for those roots; revoked client certificates are refused.
    pub crls_pem: Vec<Vec<u8>>,
    /// Whether client certificates are required.
    pub client_auth: ClientAuth,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn parse_certs(what: &'static str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| TlsError::BadPem {
        what,
        message: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::BadPem {
            what,
            message: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn root_store(roots: &[Vec<u8>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for pem in roots {
        for c in parse_certs("TLS root certificate", pem)? {
            store.add(c).map_err(|e| TlsError::BadPem {
                what: "TLS root certificate",
                message: e.to_string(),
            })?;
        }
    }
    if store.is_empty() {
        return Err(TlsError::BadPem {
            what: "TLS roots",
            message: "no root certificates given".into(),
        });
    }
    Ok(store)
}

/// Builds a rustls server configuration (ALPN h2, as tonic's clients require).
pub fn server_config(s: &ServerTlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = parse_certs("server TLS certificate", &s.cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(&s.key_pem).map_err(|e| TlsError::BadPem {
        what: "server TLS key",
        message: e.to_string(),
    })?;
    let mut crls = Vec::new();
    for pem in &s.crls_pem {
        for c in CertificateRevocationListDer::pem_slice_iter(pem) {
            crls.push(c.map_err(|e| TlsError::BadPem {
                what: "CRL",
                message: e.to_string(),
            })?);
        }
    }
    let mut vb = WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(&s.client_roots_pem)?),
        provider(),
    )
    .with_crls(crls)
    // Only the leaf's status is known from our CRLs; unknown intermediates are not an error.
    .allow_unknown_revocation_status();
    if s.client_auth == ClientAuth::Optional {
        vb = vb.allow_unauthenticated();
    }
    let verifier = vb.build().map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// A server TLS configuration that can be replaced while the server runs.
#[derive(Clone)]
pub struct TlsAcceptorHandle {
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
}

impl std::fmt::Debug for TlsAcceptorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptorHandle")
    }
}

impl TlsAcceptorHandle {
    /// Builds the handle from settings.
    pub fn new(s: &ServerTlsSettings) -> Result<Self, TlsError> {
        Ok(TlsAcceptorHandle {
            current: Arc::new(RwLock::new(server_config(s)?)),
        })
    }

    /// Swaps in new settings (e.g. a new CRL); applies to the next handshake.
    pub fn reload(&self, s: &ServerTlsSettings) -> Result<(), TlsError> {
        let cfg = server_config(s)?;
        if let Ok(mut cur) = self.current.write() {
            *cur = cfg;
        }
        Ok(())
    }

    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.current
            .read()
            .ok()
            .map(|c| tokio_rustls::TlsAcceptor::from(c.clone()))
    }
}

/// A node's TLS certificate (chain) and key, as PEM read from its files.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPair {
    /// The certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsPair")
    }
}

impl TlsPair {
    /// Reads a pair from its files (no checks: see [`TlsPair::check`]).
    pub fn read(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, TlsError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| TlsError::Io {
                path: p.display().to_string(),
                message: e.to_string(),
            })
        };
        Ok(TlsPair {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    }

    /// What a node checks before it serves a new pair: both parse, the key
    /// belongs to the leaf certificate, and the leaf is valid at `now` (Unix
    /// seconds). Returns the leaf.
    pub fn check(&self, now: i64) -> Result<CertInfo, TlsError> {
        let chain = parse_certs("TLS certificate", &self.cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| TlsError::BadPem {
            what: "TLS key",
            message: e.to_string(),
        })?;
        rustls::sign::CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
            TlsError::BadPem {
                what: "TLS key",
                message: format!("does not belong to the TLS certificate ({e})"),
            }
        })?;
        let leaf = CertInfo::from_pem(&self.cert_pem).map_err(|e| TlsError::BadPem {
            what: "TLS certificate",
            message: e.to_string(),
        })?;
        if leaf.not_after <= now {
            return Err(TlsError::BadPem {
                what: "TLS certificate",
                message: format!("expired at Unix time {}", leaf.not_after),
            });
        }
        if leaf.not_before > now + 300 {
            return Err(TlsError::BadPem {
                what: "TLS certificate",
                message: format!("not valid before Unix time {}", leaf.not_before),
            });
        }
        Ok(leaf)
    }
}

/// When a node rereads its certificate files: on SIGHUP, or every `every`.
pub(crate) struct Rereads {
    hup: Option<tokio::signal::unix::Signal>,
    tick: tokio::time::Interval,
}

impl Rereads {
    /// `what` names the files in the warning when SIGHUP cannot be caught.
    pub(crate) fn new(every: Duration, what: &str) -> Self {
        let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler: {what} are reread on a timer only");
                None
            }
        };
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Rereads { hup, tick }
    }

    /// Waits for the next reread.
    pub(crate) async fn next(&mut self) {
        match self.hup.as_mut() {
            Some(h) => {
                tokio::select! {
                    _ = self.tick.tick() => {}
                    _ = h.recv() => {}
                }
            }
            None => {
                self.tick.tick().await;
            }
        }
    }
}

/// Watches a node's TLS files so that a renewed certificate is served
/// without a restart: every `every`, and at once on SIGHUP, it rereads
/// `cert` and `key`; a pair that differs from the one in use and passes
/// [`TlsPair::check`] goes to `apply`, which swaps it in for new connections
/// (established ones keep theirs) or says why not yet (an orderer waits
/// until the channel configuration names its new certificate); a pair not
/// taken yet is offered again on every reread. A pair that fails the check,
/// or is not taken yet, is logged once per content with the reason, and the
/// node keeps the pair it has: a half-written renewal never takes a node's
/// TLS down.
pub fn watch_pair<F>(
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    current: TlsPair,
    every: Duration,
    apply: F,
) where
    F: Fn(TlsPair, CertInfo) -> Result<(), String> + Send + 'static,
{
    tokio::spawn(async move {
        let mut rereads = Rereads::new(every, "TLS files");
        let mut current = current;
        let mut refused: Option<TlsPair> = None;
        let mut waiting: Option<TlsPair> = None;
        let mut unreadable = false;
        loop {
            rereads.next().await;
            let pair = match TlsPair::read(&cert, &key) {
                Ok(p) => {
                    unreadable = false;
                    p
                }
                Err(e) => {
                    if !unreadable {
                        tracing::error!(error = %e, "cannot reread the TLS files; keeping the pair in use");
                    }
                    unreadable = true;
                    continue;
                }
            };
            if pair == current || refused.as_ref() == Some(&pair) {
                continue;
            }
            match pair.check(crate::msp::unix_now()) {
                Ok(leaf) => {
                    let serial = leaf.serial_hex.clone();
                    let not_after = leaf.not_after;
                    match apply(pair.clone(), leaf) {
                        Ok(()) => {
                            tracing::info!(
                                serial = %serial,
                                not_after,
                                "TLS certificate renewed: serving the new one on new connections"
                            );
                            current = pair;
                            refused = None;
                            waiting = None;
                        }
                        Err(why) => {
                            if waiting.as_ref() != Some(&pair) {
                                tracing::warn!(serial = %serial, reason = %why, "renewed TLS certificate not in use yet");
                                waiting = Some(pair);
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        cert = %cert.display(),
                        "the TLS files changed but cannot be used; keeping the pair in use"
                    );
                    refused = Some(pair);
                }
            }
        }
    });
}

/// Handshakes in progress at once, in all and from one address; a new one
/// past either cap evicts the oldest (see [`crate::slots`]).
const MAX_HANDSHAKES: usize = 1024;
const MAX_HANDSHAKES_PER_IP: usize = 64;

/// Failed handshakes are logged at most 10 times a minute.
static HANDSHAKE_LOG: LogLimit = LogLimit::new(10, Duration::from_secs(60));

/// Turns a bound listener into a stream of finished TLS connections for
/// `tonic::transport::Server::serve_with_incoming`. Failed handshakes are
/// logged (with the peer address, rate-limited) and dropped; handshakes in
/// progress are capped.
pub fn incoming(
    listener: TcpListener,
    tls: TlsAcceptorHandle,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (tx, rx) = mpsc::channel(128);
    let handshakes = Slots::new(SlotLimits {
        total: MAX_HANDSHAKES,
        per_ip: MAX_HANDSHAKES_PER_IP,
    });
    tokio::spawn(async move {
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                break;
            }
            let _ = tcp.set_nodelay(true);
            let Some(acceptor) = tls.acceptor() else {
                break;
            };
            let tx = tx.clone();
            // Only handshakes hold a slot: a finished connection belongs to
            // tonic, which bounds its streams itself.
            handshakes.spawn(addr.ip(), move |slot| async move {
                let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(slot);
                let why = match done {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                        return;
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "timed out".to_string(),
                };
                if let Verdict::Log { suppressed } = HANDSHAKE_LOG.check() {
                    tracing::info!(peer = %addr, error = %why, suppressed, "TLS handshake refused");
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Client-side TLS for tonic: trust `roots_pem`, present `identity` (cert,
/// key PEM) if given, and expect the server's SAN to contain `server_name`.
pub fn client_tls(
    roots_pem: &[Vec<u8>],
    identity: Option<(&[u8], &[u8])>,
    server_name: &str,
) -> tonic::transport::ClientTlsConfig {
    let mut cfg = tonic::transport::ClientTlsConfig::new()
        .ca_certificates(
            roots_pem
                .iter()
                .map(tonic::transport::Certificate::from_pem),
        )
        .domain_name(server_name.to_string())
        .assume_http2(true);
    if let Some((cert, key)) = identity {
        cfg = cfg.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    cfg
}

/// Client TLS for a `host:port` address: the server name expected in the
/// certificate's SAN is the host part (brackets of an IPv6 literal removed).
pub fn client_tls_for_addr(
    roots_pem: &[Vec<u8>],
    identity: Option<(&[u8], &[u8])>,
    addr: &str,
) -> tonic::transport::ClientTlsConfig {
    client_tls(roots_pem, identity, server_name(addr))
}

/// The host part of `host:port` (or `[v6]:port`), as TLS checks it against the SAN.
pub fn server_name(addr: &str) -> &str {
    addr.rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(addr)
}

/// An error and all its sources, `: `-separated (transport errors hide the
/// useful part, e.g. "connection refused", in their sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Connects a long-lived tonic channel between nodes over mutual TLS to
/// `https://addr`, with HTTP/2 keep-alives so that a node that silently
/// disappears is noticed within seconds; errors are flattened to text.
pub async fn connect_node(
    addr: &str,
    tls: tonic::transport::ClientTlsConfig,
) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
        .and_then(|e| e.tls_config(tls))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(3))
        .keep_alive_while_idle(true)
        .connect()
        .await
        .map_err(|e| error_chain(&e))
}

/// Connects a tonic channel over mutual TLS to `https://addr`.
pub async fn connect(
    addr: &str,
    tls: tonic::transport::ClientTlsConfig,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
}

/// The caller's TLS leaf certificate, parsed, if it presented one.
pub fn peer_certificate<T>(req: &tonic::Request<T>) -> Option<CertInfo> {
    let certs = req.peer_certs()?;
    let leaf = certs.first()?;
    CertInfo::from_der(leaf.as_ref()).ok()
}

/// Reads a file, naming it in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::{TlsError, TlsPair};

    fn pair(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> TlsPair {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        p.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = p.self_signed(&key).unwrap();
        TlsPair {
            cert_pem: cert.pem().into_bytes(),
            key_pem: key.serialize_pem().into_bytes(),
        }
    }

    fn refused(p: &TlsPair) -> String {
        match p.check(crate::msp::unix_now()) {
            Err(e @ TlsError::BadPem { .. }) => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    /// What a node checks before it serves renewed TLS files.
    #[test]
    fn a_renewed_pair_must_match_and_be_valid_now() {
        let good = pair((2020, 1, 1), (2100, 1, 1));
        assert!(good.check(crate::msp::unix_now()).is_ok());
        let other = pair((2020, 1, 1), (2100, 1, 1));
        let mismatched = TlsPair {
            cert_pem: good.cert_pem.clone(),
            key_pem: other.key_pem,
        };
        assert!(refused(&mismatched).contains("does not belong"));
        assert!(refused(&pair((2020, 1, 1), (2021, 1, 1))).contains("expired"));
        assert!(refused(&pair((2099, 1, 1), (2100, 1, 1))).contains("not valid before"));
        let half_written = TlsPair {
            cert_pem: good.cert_pem[..good.cert_pem.len() / 2].to_vec(),
            key_pem: good.key_pem,
        };
        assert!(refused(&half_written).contains("TLS certificate"));
    }
}
