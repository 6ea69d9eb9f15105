//! The transport under [`crate::runner`]: gRPC (`qcss.chain.P2p`,
//! `proto/qcss/chain.proto`) over TLS 1.3, and the limits that keep one peer
//! from costing a node more than its share.
//!
//! **Identity.** Public-chain nodes are strangers, so there is no CA: each
//! node makes a self-signed certificate once ([`TlsIdentity::load_or_create`],
//! files in its data directory, mode 0600, never overwritten). A dialled
//! peer may be *pinned* by the SHA-256 of its certificate; without a pin TLS
//! gives confidentiality and integrity of the link but says nothing about
//! who is at the other end — producer identity comes from block and
//! confirmation signatures, never from the link. Servers ask no client
//! certificate. The pinning / accept-any verifier ([`PinVerifier`]) still
//! checks the handshake signature with the crypto provider's algorithms, so
//! a peer must hold the key of the certificate it shows.
//!
//! **Limits** ([`P2pLimits`], the `[p2p]` table of a node's TOML): gRPC
//! messages are bounded by the chain's largest block plus overhead (checked
//! from the length prefix, before the body is buffered); inbound connections
//! and links are capped in total and per IP; every link has a token bucket on
//! messages and bytes (blocks answering our own sync request are not
//! charged). A peer that sends garbage, an oversize message, an invalid
//! block, or more than its bucket holds is dropped, counted by reason
//! ([`DropReason`]) and its IP refused for [`P2pLimits::ban_secs`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub use qcss_proto::qcss::chain::p2p_client::P2pClient;
pub use qcss_proto::qcss::chain::p2p_server::{P2p, P2pServer};
pub use qcss_proto::qcss::chain::{Frame, HeadersReply, HeadersRequest};

/// The name a dialler asks for in TLS (SNI); certificates are checked by
/// pin, not by name.
pub const TLS_NAME: &str = "qcss-chain-node";
/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// gRPC streams one connection may open at once (a link plus header calls).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 4;
/// Bytes a gRPC message may carry beyond the Wire frame it wraps.
pub const GRPC_OVERHEAD: usize = 64;

/// Per-node limits on peers, the `[p2p]` table of a node's TOML. Every key
/// is optional; the defaults are in [`P2pLimits::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pLimits {
    /// Inbound connections, and inbound links, open at once in total (64).
    pub max_links: usize,
    /// Inbound connections, and inbound links, open at once from one IP (8).
    pub max_links_per_ip: usize,
    /// Unsolicited messages a link may send per second, sustained (500).
    pub msgs_per_sec: u32,
    /// Unsolicited messages a link may send in a burst (5,000): a full
    /// mempool relayed at once must fit.
    pub msg_burst: u32,
    /// Unsolicited bytes a link may send per second, sustained (4 MiB).
    pub bytes_per_sec: u64,
    /// Unsolicited bytes a link may send in a burst (32 MiB; at least one
    /// largest block).
    pub byte_burst: u64,
    /// Seconds a dropped peer's IP is refused (60; 0: never refused).
    pub ban_secs: u64,
}

impl Default for P2pLimits {
    fn default() -> Self {
        Self {
            max_links: 64,
            max_links_per_ip: 8,
            msgs_per_sec: 500,
            msg_burst: 5_000,
            bytes_per_sec: 4 << 20,
            byte_burst: 32 << 20,
            ban_secs: 60,
        }
    }
}

impl P2pLimits {
    /// Refuses limits that would stop the node working (zero links, or a
    /// byte burst smaller than one frame of `max_frame` bytes).
    pub fn check(&self, max_frame: usize) -> Result<(), String> {
        if self.max_links == 0 || self.max_links_per_ip == 0 {
            return Err("p2p.max_links and p2p.max_links_per_ip must be at least 1".into());
        }
        if self.msgs_per_sec == 0 || self.msg_burst == 0 || self.bytes_per_sec == 0 {
            return Err("p2p rates and bursts must be at least 1".into());
        }
        if self.byte_burst < max_frame as u64 {
            return Err(format!(
                "p2p.byte_burst ({}) must hold one largest frame ({max_frame} bytes)",
                self.byte_burst
            ));
        }
        Ok(())
    }
}

/// Why a link was dropped or a connection refused (a metric label each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// A frame that is not a canonical `Wire` message.
    Garbage,
    /// A gRPC message over the size limit.
    Oversize,
    /// A block that fails validation.
    InvalidBlock,
    /// More than the link's token bucket holds.
    RateLimited,
    /// Over the total or per-IP cap of connections or links.
    OverLimit,
    /// From an IP refused after an earlier drop.
    Banned,
    /// A TLS handshake that failed or timed out (inbound).
    TlsHandshake,
    /// A dialled peer whose certificate does not match its pin.
    PinMismatch,
}

impl DropReason {
    /// Every reason, in metric order.
    pub const ALL: [DropReason; 8] = [
        DropReason::Garbage,
        DropReason::Oversize,
        DropReason::InvalidBlock,
        DropReason::RateLimited,
        DropReason::OverLimit,
        DropReason::Banned,
        DropReason::TlsHandshake,
        DropReason::PinMismatch,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Garbage => "garbage",
            DropReason::Oversize => "oversize",
            DropReason::InvalidBlock => "invalid_block",
            DropReason::RateLimited => "rate_limited",
            DropReason::OverLimit => "over_limit",
            DropReason::Banned => "banned",
            DropReason::TlsHandshake => "tls_handshake",
            DropReason::PinMismatch => "pin_mismatch",
        }
    }

    /// Whether the peer's IP is refused for a while after this.
    pub fn bans(self) -> bool {
        matches!(
            self,
            DropReason::Garbage
                | DropReason::Oversize
                | DropReason::InvalidBlock
                | DropReason::RateLimited
        )
    }
}

/// Dropped links and refused connections by reason, since start.
#[derive(Debug, Default)]
pub(crate) struct DropCounters([AtomicU64; 8]);

impl DropCounters {
    pub(crate) fn inc(&self, r: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|x| *x == r) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .zip(&self.0)
            .map(|(r, c)| (r.label(), c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// IPs refused until a deadline.
#[derive(Debug, Default)]
pub(crate) struct Bans(Mutex<HashMap<IpAddr, Instant>>);

impl Bans {
    pub(crate) fn ban(&self, ip: IpAddr, secs: u64) {
        if secs == 0 {
            return;
        }
        let mut m = lock(&self.0);
        let now = Instant::now();
        // Forget expired entries so the map stays as small as the bans in force.
        m.retain(|_, until| *until > now);
        m.insert(ip, now + Duration::from_secs(secs));
    }

    pub(crate) fn is_banned(&self, ip: IpAddr) -> bool {
        lock(&self.0).get(&ip).is_some_and(|t| *t > Instant::now())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Counted slots, in total and per IP; a [`Slot`] gives its place back when dropped.
#[derive(Debug)]
pub(crate) struct Slots {
    total: usize,
    per_ip: usize,
    used: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One taken place of [`Slots`].
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    ip: IpAddr,
}

impl Slots {
    pub(crate) fn new(total: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_ip,
            used: Mutex::new((0, HashMap::new())),
        })
    }

    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut g = lock(&self.used);
        let (total, by_ip) = &mut *g;
        let n = by_ip.entry(ip).or_insert(0);
        if *total >= self.total || *n >= self.per_ip {
            if *n == 0 {
                by_ip.remove(&ip);
            }
            return None;
        }
        *n += 1;
        *total += 1;
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = lock(&self.slots.used);
        let (total, by_ip) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// A token bucket on messages and bytes.
#[derive(Debug)]
pub(crate) struct Bucket {
    msgs: f64,
    bytes: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn full(l: &P2pLimits) -> Self {
        Self {
            msgs: f64::from(l.msg_burst),
            bytes: l.byte_burst as f64,
            at: Instant::now(),
        }
    }

    /// Takes one message of `len` bytes; false (and nothing taken) if the
    /// bucket does not hold it.
    pub(crate) fn take(&mut self, l: &P2pLimits, len: usize) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.msgs = (self.msgs + dt * f64::from(l.msgs_per_sec)).min(f64::from(l.msg_burst));
        self.bytes = (self.bytes + dt * l.bytes_per_sec as f64).min(l.byte_burst as f64);
        if self.msgs < 1.0 || self.bytes < len as f64 {
            return false;
        }
        self.msgs -= 1.0;
        self.bytes -= len as f64;
        true
    }
}

/// A node's TLS certificate and key (DER).
#[derive(Clone)]
pub struct TlsIdentity {
    cert: CertificateDer<'static>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsIdentity(sha256 {})", self.cert_sha256())
    }
}

/// File names of the identity in a data directory.
pub const CERT_FILE: &str = "p2p-cert.pem";
/// See [`CERT_FILE`].
pub const KEY_FILE: &str = "p2p-key.pem";

impl TlsIdentity {
    /// A fresh self-signed identity (ECDSA P-256), kept in memory only.
    pub fn generate() -> io::Result<Self> {
        let ck = rcgen::generate_simple_self_signed(vec![TLS_NAME.to_string()])
            .map_err(|e| io::Error::other(format!("making a TLS certificate: {e}")))?;
        Ok(Self {
            cert: ck.cert.der().clone(),
            key: Arc::new(PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into())),
        })
    }

    /// The identity in `dir` (`p2p-cert.pem`, `p2p-key.pem`), made once on
    /// first start (both files mode 0600, never overwritten).
    pub fn load_or_create(dir: &Path) -> io::Result<Self> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        if !cert_path.exists() && !key_path.exists() {
            let ck = rcgen::generate_simple_self_signed(vec![TLS_NAME.to_string()])
                .map_err(|e| io::Error::other(format!("making a TLS certificate: {e}")))?;
            // The key first: a crash between the two leaves no certificate
            // without its key, and the next start refuses to guess.
            write_new(&key_path, ck.signing_key.serialize_pem().as_bytes())?;
            write_new(&cert_path, ck.cert.pem().as_bytes())?;
        }
        let read = |p: &Path| -> io::Result<Vec<u8>> {
            let meta = std::fs::metadata(p).map_err(|e| named(p, e))?;
            if meta.len() > 64 * 1024 {
                return Err(io::Error::other(format!(
                    "{}: over 64 KiB, not a TLS PEM file",
                    p.display()
                )));
            }
            std::fs::read(p).map_err(|e| named(p, e))
        };
        let cert = CertificateDer::from_pem_slice(&read(&cert_path)?).map_err(|e| {
            io::Error::other(format!(
                "{}: not a PEM certificate: {e}",
                cert_path.display()
            ))
        })?;
        let key = PrivateKeyDer::from_pem_slice(&read(&key_path)?).map_err(|e| {
            io::Error::other(format!(
                "{}: not a PEM private key: {e}",
                key_path.display()
            ))
        })?;
        Ok(Self {
            cert,
            key: Arc::new(key),
        })
    }

    /// Hex SHA-256 of the certificate's DER: what peers pin.
    pub fn cert_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.cert.as_ref()))
    }

    fn server_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| io::Error::other(format!("the TLS key does not fit: {e}")))?;
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }
}

fn named(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

fn write_new(path: &Path, body: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| named(path, e))?;
    f.write_all(body).map_err(|e| named(path, e))?;
    f.sync_all().map_err(|e| named(path, e))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a pin: 64 hex digits (colons allowed, as `openssl x509
/// -fingerprint` prints them).
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let clean: String = text.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    if clean.len() != 64 {
        return Err(format!(
            "cert_sha256 must be 64 hex digits (the SHA-256 of the peer's certificate), got {} characters",
            clean.len()
        ));
    }
    hex::decode_to_slice(&clean, &mut out).map_err(|e| format!("cert_sha256 is not hex: {e}"))?;
    Ok(out)
}

/// A peer to dial: `host:port`, optionally pinned to a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `host:port` (resolved at every dial).
    pub addr: String,
    /// SHA-256 of the certificate the peer must show; `None` accepts any.
    pub cert_sha256: Option<[u8; 32]>,
}

impl From<SocketAddr> for Peer {
    fn from(a: SocketAddr) -> Self {
        Self {
            addr: a.to_string(),
            cert_sha256: None,
        }
    }
}

/// Server-certificate check for dialled peers: the pin if there is one,
/// else any certificate; the handshake signature is always verified with
/// the provider's algorithms against the certificate's key.
#[derive(Debug)]
pub struct PinVerifier {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    /// A verifier for `pin` (`None`: accept any certificate).
    pub fn new(pin: Option<[u8; 32]>) -> Self {
        Self {
            pin,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            Some(pin) if Sha256::digest(end_entity.as_ref()).as_slice() != pin => {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
            // Pinned and matching, or unpinned: the certificate is what the
            // key behind the handshake signature is checked against.
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TLS client configuration to dial a peer with.
pub fn client_config(pin: Option<[u8; 32]>) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinVerifier::new(pin)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// Opens a gRPC channel to `addr` over TLS with `pin`, or says why not
/// (a pin mismatch is [`DialError::Pin`]).
pub async fn dial(
    addr: SocketAddr,
    pin: Option<[u8; 32]>,
) -> Result<tonic::transport::Channel, DialError> {
    let cfg = client_config(pin).map_err(|e| DialError::Other(e.to_string()))?;
    let pin_failed = Arc::new(AtomicBool::new(false));
    let failed = pin_failed.clone();
    let connector = tower::service_fn(move |_: http_uri::Uri| {
        let (cfg, failed) = (cfg.clone(), failed.clone());
        async move {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(TLS_NAME).map_err(io::Error::other)?;
            let tls = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
            .inspect_err(|e| {
                if is_pin_error(e) {
                    failed.store(true, Ordering::Relaxed);
                }
            })?;
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| DialError::Other(e.to_string()))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    match endpoint.connect_with_connector(connector).await {
        Ok(ch) => Ok(ch),
        Err(_) if pin_failed.load(Ordering::Relaxed) => Err(DialError::Pin),
        Err(e) => Err(DialError::Other(error_chain(&e))),
    }
}

/// Why a dial failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The peer's certificate does not have the pinned SHA-256.
    #[error("the peer's TLS certificate does not match its pinned cert_sha256")]
    Pin,
    /// Connection, TLS or HTTP/2 failure.
    #[error("{0}")]
    Other(String),
}

fn is_pin_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure
                )
            )
        })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

// `http::Uri` without naming the http crate: tonic re-exports it.
mod http_uri {
    pub(crate) use tonic::codegen::http::Uri;
}

/// An accepted TLS connection holding its connection slot; it fails its
/// next read or write once [`Conn`]'s kill flag is set (a dropped peer's
/// connection closes at its next message or keep-alive).
pub(crate) struct Conn {
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    killed: Arc<AtomicBool>,
    _slot: Slot,
    _entry: ConnEntry,
}

/// The registration of a [`Conn`] in [`ConnKills`]; removed when the connection ends.
struct ConnEntry {
    kills: Arc<ConnKills>,
    addr: SocketAddr,
}

impl Drop for ConnEntry {
    fn drop(&mut self) {
        lock(&self.kills.0).remove(&self.addr);
    }
}

/// Kill flags of open inbound connections, by remote address.
#[derive(Debug, Default)]
pub(crate) struct ConnKills(Mutex<HashMap<SocketAddr, Arc<AtomicBool>>>);

impl ConnKills {
    /// Closes the inbound connection from `addr`, if there is one.
    pub(crate) fn kill(&self, addr: SocketAddr) {
        if let Some(k) = lock(&self.0).get(&addr) {
            k.store(true, Ordering::Relaxed);
        }
    }
}

fn killed_err() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "peer dropped")
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::Relaxed) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed.load(Ordering::Relaxed) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = <tokio_rustls::server::TlsStream<TcpStream> as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tls.connect_info()
    }
}

/// What the accept loop shares with the node.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) limits: P2pLimits,
    pub(crate) bans: Bans,
    pub(crate) drops: DropCounters,
    pub(crate) conns: Arc<Slots>,
    pub(crate) links: Arc<Slots>,
    pub(crate) kills: Arc<ConnKills>,
}

impl Shared {
    pub(crate) fn new(limits: P2pLimits) -> Arc<Self> {
        Arc::new(Self {
            conns: Slots::new(limits.max_links, limits.max_links_per_ip),
            links: Slots::new(limits.max_links, limits.max_links_per_ip),
            limits,
            bans: Bans::default(),
            drops: DropCounters::default(),
            kills: Arc::new(ConnKills::default()),
        })
    }

    /// Counts a drop and, for misbehaviour, refuses the IP for a while and
    /// closes its inbound connection.
    pub(crate) fn dropped(&self, reason: DropReason, remote: Option<SocketAddr>) {
        self.drops.inc(reason);
        if let Some(a) = remote
            && reason.bans()
        {
            self.bans.ban(a.ip(), self.limits.ban_secs);
            self.kills.kill(a);
        }
    }
}

/// Accepts TCP connections on `listener`, refusing banned IPs and those
/// over the caps before any TLS work, handshaking the rest in their own
/// tasks; finished connections go to `tx` (tonic's incoming stream).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    identity: TlsIdentity,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Result<Conn, io::Error>>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = match identity.server_config() {
        Ok(cfg) => tokio_rustls::TlsAcceptor::from(cfg),
        Err(e) => {
            tracing::error!(error = %e, "p2p TLS configuration");
            return;
        }
    };
    loop {
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "p2p accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if shared.bans.is_banned(addr.ip()) {
            shared.drops.inc(DropReason::Banned);
            continue;
        }
        let Some(slot) = shared.conns.take(addr.ip()) else {
            shared.drops.inc(DropReason::OverLimit);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, tx, shared) = (acceptor.clone(), tx.clone(), shared.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let killed = Arc::new(AtomicBool::new(false));
                    lock(&shared.kills.0).insert(addr, killed.clone());
                    let conn = Conn {
                        tls,
                        killed,
                        _slot: slot,
                        _entry: ConnEntry {
                            kills: shared.kills.clone(),
                            addr,
                        },
                    };
                    let _ = tx.send(Ok(conn)).await;
                }
                Ok(Err(e)) => {
                    shared.drops.inc(DropReason::TlsHandshake);
                    tracing::debug!(peer = %addr, error = %e, "p2p TLS handshake refused");
                }
                Err(_) => {
                    shared.drops.inc(DropReason::TlsHandshake);
                    tracing::debug!(peer = %addr, "p2p TLS handshake timed out");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_made_once_mode_0600_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = TlsIdentity::load_or_create(dir.path()).unwrap();
        let b = TlsIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.cert_sha256(), b.cert_sha256());
        for f in [CERT_FILE, KEY_FILE] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        // A key without its certificate is refused, not replaced.
        std::fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let e = TlsIdentity::load_or_create(dir.path()).unwrap_err();
        assert!(e.to_string().contains(CERT_FILE), "{e}");
    }

    #[test]
    fn pins_parse_with_or_without_colons_and_bad_ones_say_why() {
        let hex64 = "ab".repeat(32);
        assert_eq!(parse_pin(&hex64).unwrap(), [0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
        assert!(parse_pin("abcd").unwrap_err().contains("64 hex digits"));
        assert!(parse_pin(&"zz".repeat(32)).unwrap_err().contains("not hex"));
    }

    #[test]
    fn buckets_refill_at_their_rate_and_slots_free_on_drop() {
        let l = P2pLimits {
            msgs_per_sec: 1,
            msg_burst: 2,
            bytes_per_sec: 10,
            byte_burst: 100,
            ..P2pLimits::default()
        };
        let mut b = Bucket::full(&l);
        assert!(b.take(&l, 10));
        assert!(!b.take(&l, 200), "more bytes than the burst");
        assert!(b.take(&l, 10));
        assert!(!b.take(&l, 1), "out of messages");
        let s = Slots::new(3, 2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let (a, _b) = (s.take(ip).unwrap(), s.take(ip).unwrap());
        assert!(s.take(ip).is_none(), "per-IP cap");
        let _c = s.take(other).unwrap();
        assert!(s.take("127.0.0.3".parse().unwrap()).is_none(), "total cap");
        drop(a);
        assert!(s.take(ip).is_some());
    }
}
