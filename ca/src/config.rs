//! The CA's configuration: one TOML file, every field optional but `home`.

use std::path::{Path, PathBuf};

use crate::error::CaError;

/// Configuration of one CA server. See `docs/ca.md` for each field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaConfig {
    /// Directory holding keys, certificates and the store.
    pub home: PathBuf,
    /// gRPC listen address.
    pub listen: String,
    /// CA name (CN of its root certificate).
    pub name: String,
    /// Organization name written into certificates (O).
    pub org: String,
    /// The MSP id of identities this CA issues.
    pub msp_id: String,
    /// DNS names and IPs of the CA's own TLS certificate.
    pub tls_hosts: Vec<String>,
    /// Validity of issued certificates, days.
    pub cert_days: u32,
    /// Validity of the CA's root and TLS root, days.
    pub ca_days: u32,
    /// Validity window of each CRL, days (a new one is signed on every request).
    pub crl_days: u32,
    /// Enrollments allowed when a registration does not say; -1 = unlimited.
    pub default_max_enrollments: i32,
    /// Largest request accepted, bytes.
    pub max_request_bytes: usize,
    /// How far a signed request's timestamp may be from the CA's clock, seconds.
    pub request_window_secs: i64,
    /// Wrong secrets for one name before it is locked out.
    pub max_failed_attempts: u32,
    /// How long the lockout lasts, seconds.
    pub lockout_secs: i64,
    /// Operations address (`/healthz`, `/metrics`); none if absent.
    pub ops_listen: Option<String>,
    /// Warn in the log when one of the CA's certificates expires within
    /// this many days.
    pub cert_warn_days: u64,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            home: PathBuf::from("ca-home"),
            listen: "127.0.0.1:7054".into(),
            name: "ca.org1".into(),
            org: "Org1".into(),
            msp_id: "Org1MSP".into(),
            tls_hosts: vec!["localhost".into(), "127.0.0.1".into()],
            cert_days: 365,
            ca_days: 3650,
            crl_days: 7,
            default_max_enrollments: -1,
            max_request_bytes: 64 * 1024,
            request_window_secs: 300,
            max_failed_attempts: 5,
            lockout_secs: 300,
            ops_listen: None,
            cert_warn_days: qcss_network::ops::DEFAULT_CERT_WARN_DAYS,
        }
    }
}

impl CaConfig {
    /// Reads a TOML file; relative `home` is resolved against the file's folder.
    pub fn load(path: &Path) -> Result<Self, CaError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CaError::Setup(format!("cannot read {}: {e}", path.display())))?;
        let mut cfg: CaConfig = toml::from_str(&text)
            .map_err(|e| CaError::Setup(format!("{}: {e}", path.display())))?;
        if cfg.home.is_relative()
            && let Some(dir) = path.parent()
        {
            cfg.home = dir.join(&cfg.home);
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks values that would make the CA misbehave.
    pub fn check(&self) -> Result<(), CaError> {
        let bad = |m: &str| Err(CaError::Setup(m.to_string()));
        if self.name.is_empty() || self.msp_id.is_empty() || self.org.is_empty() {
            return bad("name, org and msp_id must not be empty");
        }
        if self.cert_days == 0 || self.ca_days < self.cert_days {
            return bad("cert_days must be > 0 and ca_days >= cert_days");
        }
        if self.max_request_bytes < 4096 {
            return bad("max_request_bytes must be at least 4096");
        }
        if self.request_window_secs <= 0 || self.lockout_secs < 0 {
            return bad("request_window_secs must be > 0 and lockout_secs >= 0");
        }
        if self.tls_hosts.is_empty() {
            return bad("tls_hosts must name at least one host");
        }
        Ok(())
    }
}
