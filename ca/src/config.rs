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
    /// Keep a channel's copy of this org's CRLs current, as an admin of
    /// the org the org chose to delegate to the CA (docs/ca.md). Off when
    /// absent.
    pub publish_crls: Option<PublishCrls>,
}

/// `[publish_crls]`: the CA, holding a delegated admin identity of its
/// org, publishes its CRLs into a channel after every revocation (as `qcss
/// channel update crl` does). Relative paths are relative to the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishCrls {
    /// The channel.
    pub channel: String,
    /// An orderer's address (host:port).
    pub orderer: String,
    /// The orderers' TLS root certificates (PEM files).
    pub orderer_tls_roots: Vec<PathBuf>,
    /// Identity directory of the delegated admin of this org (`cert.pem`,
    /// `key.pem`, `msp_id`, and the TLS pair unless `tls_dir`).
    pub admin_dir: PathBuf,
    /// Directory with the TLS pair to reach the orderer with; default `admin_dir`.
    #[serde(default)]
    pub tls_dir: Option<PathBuf>,
    /// How often the CA looks for a new revocation, ms.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

fn default_poll_ms() -> u64 {
    500
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
            publish_crls: None,
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
        if let (Some(p), Some(dir)) = (cfg.publish_crls.as_mut(), path.parent()) {
            for f in p
                .orderer_tls_roots
                .iter_mut()
                .chain([&mut p.admin_dir])
                .chain(p.tls_dir.as_mut())
            {
                if f.is_relative() {
                    *f = dir.join(&*f);
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_crls_is_off_by_default_and_its_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.toml");
        std::fs::write(&file, "name = \"ca.org1\"\n").unwrap();
        assert_eq!(CaConfig::load(&file).unwrap().publish_crls, None);
        std::fs::write(
            &file,
            "[publish_crls]\nchannel = \"qcss\"\norderer = \"o1:7050\"\n\
             orderer_tls_roots = [\"tls.pem\", \"/abs/tls.pem\"]\nadmin_dir = \"admin\"\n",
        )
        .unwrap();
        let p = CaConfig::load(&file).unwrap().publish_crls.unwrap();
        assert_eq!(
            p.orderer_tls_roots,
            [dir.path().join("tls.pem"), PathBuf::from("/abs/tls.pem")]
        );
        assert_eq!(p.admin_dir, dir.path().join("admin"));
        assert_eq!((p.tls_dir, p.poll_ms), (None, 500));
        std::fs::write(&file, "[publish_crls]\nchannel = \"qcss\"\n").unwrap();
        assert!(
            CaConfig::load(&file).is_err(),
            "orderer and admin_dir are required"
        );
    }
}
