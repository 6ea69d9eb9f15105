//! The `[web]` section of a peer's TOML file (documented in `docs/web.md`).

use std::path::PathBuf;

/// The web server's settings. Present = the peer serves the verify page,
/// the explorer and the JSON API on `listen`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// HTTP(S) listen address, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// A **client** identity of a member org (`cert.pem`, `key.pem`) that
    /// signs the read-only proposals the pages evaluate in-process. Not the
    /// peer's own identity: the endorser refuses `peer` proposers.
    pub identity_dir: PathBuf,
    /// The MSP id of `identity_dir`; default: the peer's.
    #[serde(default)]
    pub msp_id: Option<String>,
    /// TLS certificate chain (PEM); with `key`, the server speaks HTTPS.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The public base URL of unit codes and links, e.g.
    /// `https://q.example.com`; default `http://{listen}` (or `https://`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The traceability contract's chaincode name.
    #[serde(default = "default_chaincode")]
    pub chaincode: String,
    /// Requests per second each client IP may make on average; 0 = no limit.
    #[serde(default = "default_rate")]
    pub rate_limit_per_sec: u32,
    /// Requests a client IP may make in a burst.
    #[serde(default = "default_burst")]
    pub rate_limit_burst: u32,
    /// Connections served at once; more wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections one client IP may hold at once; a new one beyond it
    /// evicts that address's oldest.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Contract answers cached per ledger height (0 = no cache).
    #[serde(default = "default_cache")]
    pub cache_entries: usize,
}

fn default_chaincode() -> String {
    "traceability".into()
}
fn default_rate() -> u32 {
    20
}
fn default_burst() -> u32 {
    60
}
fn default_max_connections_per_ip() -> usize {
    32
}
fn default_max_connections() -> usize {
    256
}
fn default_cache() -> usize {
    1024
}

impl WebSettings {
    /// Settings with every default, for `listen` and `identity_dir`.
    pub fn new(listen: impl Into<String>, identity_dir: impl Into<PathBuf>) -> Self {
        WebSettings {
            listen: listen.into(),
            identity_dir: identity_dir.into(),
            msp_id: None,
            cert: None,
            key: None,
            base_url: None,
            chaincode: default_chaincode(),
            rate_limit_per_sec: default_rate(),
            rate_limit_burst: default_burst(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            cache_entries: default_cache(),
        }
    }

    /// The relative paths, resolved against `base` (the TOML file's folder).
    pub fn resolve(&mut self, base: &std::path::Path) {
        for p in [
            Some(&mut self.identity_dir),
            self.cert.as_mut(),
            self.key.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Whether the server speaks HTTPS.
    pub fn tls(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    /// The base URL links and codes use, without a trailing slash.
    pub fn base(&self) -> String {
        match &self.base_url {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => format!(
                "{}://{}",
                if self.tls() { "https" } else { "http" },
                self.listen
            ),
        }
    }
}
