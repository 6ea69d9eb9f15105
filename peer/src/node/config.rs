//! The peer node's configuration: one TOML file per node. Every field is
//! documented in `docs/peer.md`. Relative paths are relative to the file.

use std::path::{Path, PathBuf};

use crate::node::PeerError;

/// The Gateway's settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Endorsing peers of other orgs, by MSP id, tried in order. An org not
    /// listed here is reached at the `peer_endpoints` the channel
    /// configuration gives for it.
    pub endorsers: std::collections::BTreeMap<String, Vec<String>>,
    /// How long one remote endorsement may take, ms.
    pub endorse_timeout_ms: u64,
    /// How long `Submit` waits for the orderer's answer, ms.
    pub broadcast_timeout_ms: u64,
    /// How long `CommitStatus` waits for the transaction to commit, ms.
    pub commit_status_timeout_ms: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            endorsers: Default::default(),
            endorse_timeout_ms: 10_000,
            broadcast_timeout_ms: 10_000,
            commit_status_timeout_ms: 60_000,
        }
    }
}

/// How the peer checks its ledger in the background (`[ledger]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSettings {
    /// Seconds between two scrubs (a read of every block and every state,
    /// history and tx-index record); 0 = never. The first scrub starts a
    /// minute after the peer (or after this interval, if shorter).
    pub scrub_interval_secs: u64,
    /// The scrub reads at most this many MiB per second.
    pub scrub_mib_per_sec: u64,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            scrub_interval_secs: 6 * 3600,
            scrub_mib_per_sec: 8,
        }
    }
}

/// The peer's file store, MDSS (`[files]`, see `docs/files.md`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesSettings {
    /// Where the store lives; default `data_dir/files`.
    pub dir: Option<PathBuf>,
    /// Largest file accepted, bytes (default 4 GiB).
    pub max_file_bytes: u64,
    /// Bytes of uploads each org may keep here; none = unlimited.
    pub quota_bytes_per_org: Option<u64>,
    /// Bytes per chunk of new uploads (64 B to 64 MiB; default 1 MiB).
    pub chunk_bytes: u32,
    /// Seconds between the file keeper's passes (scrub, repair, keep K
    /// copies); 0 turns it off (default 600).
    pub keep_secs: u64,
    /// The keeper's scrub reads at most this many MiB per second, on
    /// average over a pass (default 32; 0 counts as 1).
    pub scrub_mib_per_sec: u64,
    /// A file the keeper re-read intact (or repaired) is not re-read again
    /// for this many seconds (default 86,400: once a day); 0 re-reads every
    /// file every pass. Every read by a client is still checked.
    pub rescrub_secs: u64,
    /// How many orgs keep each kind of file (default 2 of everything).
    /// Every org should configure the same.
    pub replication: qcss_mdss::Replication,
}

impl Default for FilesSettings {
    fn default() -> Self {
        FilesSettings {
            dir: None,
            max_file_bytes: 4 << 30,
            quota_bytes_per_org: None,
            chunk_bytes: 1 << 20,
            keep_secs: 600,
            scrub_mib_per_sec: 32,
            rescrub_secs: 86_400,
            replication: qcss_mdss::Replication::default(),
        }
    }
}

/// One peer node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The MSP id of this peer's org.
    pub msp_id: String,
    /// Directory with this peer's signing identity (`cert.pem`, `key.pem`),
    /// a certificate of role `peer` from its org's CA.
    pub identity_dir: PathBuf,
    /// This peer's TLS certificate (PEM); also its client certificate when
    /// it calls orderers and other peers.
    pub tls_cert: PathBuf,
    /// This peer's TLS key (PEM).
    pub tls_key: PathBuf,
    /// The channel's genesis block (as written by `qcss channel genesis`).
    pub genesis_block: PathBuf,
    /// Where the ledger and installed chaincode packages live.
    pub data_dir: PathBuf,
    /// gRPC listen address (Gateway, Endorser, Deliver), e.g. `127.0.0.1:7051`.
    pub listen: String,
    /// Operations listen address (`/healthz`, `/metrics`); none if absent.
    #[serde(default)]
    pub ops_listen: Option<String>,
    /// Orderers to pull blocks from and submit to, tried in order; empty =
    /// the consenters of the channel configuration.
    #[serde(default)]
    pub orderers: Vec<String>,
    /// `/healthz` fails when the peer is this many blocks behind the
    /// orderer it pulls from.
    #[serde(default = "default_max_lag")]
    pub max_lag_blocks: u64,
    /// Warn in the log when a certificate of this peer expires within
    /// this many days.
    #[serde(default = "default_warn_days")]
    pub cert_warn_days: u64,
    /// How often, in seconds, the peer rereads `tls_cert` and `tls_key`; a
    /// renewed pair is served from then on without a restart (SIGHUP
    /// rereads at once).
    #[serde(default = "default_tls_reload_secs")]
    pub tls_reload_secs: u64,
    /// Gateway settings.
    #[serde(default)]
    pub gateway: GatewaySettings,
    /// Background ledger checks.
    #[serde(default)]
    pub ledger: LedgerSettings,
    /// The file store (MDSS).
    #[serde(default)]
    pub files: FilesSettings,
    /// The web server (verify page, explorer, JSON API); none if absent.
    #[serde(default)]
    pub web: Option<crate::web::WebSettings>,
    /// Anchoring on the public QCSS chain; none if absent.
    #[serde(default)]
    pub anchor: Option<AnchorSettings>,
}

/// `[anchor]`: this org's anchor key, with which the peer signs anchor
/// statements it computed from its own ledger (served on the web server's
/// `/api/anchor/…`, see `docs/anchor.md`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSettings {
    /// Ed25519 key file, JSON `{"address": …, "secret": "<64 hex>"}` as
    /// `qcss wallet new` writes it (mode 0600).
    pub key: PathBuf,
    /// The public chain's JSON API (`http://host:port`): where the verify
    /// page and `/metrics` read how far the consortium is anchored. Optional.
    #[serde(default)]
    pub chain_api: Option<String>,
}

fn default_tls_reload_secs() -> u64 {
    30
}

fn default_warn_days() -> u64 {
    qcss_network::ops::DEFAULT_CERT_WARN_DAYS
}

fn default_max_lag() -> u64 {
    100
}

impl PeerConfig {
    /// Reads a TOML file and resolves relative paths against its folder.
    pub fn load(path: &Path) -> Result<Self, PeerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PeerError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut c: PeerConfig = toml::from_str(&text)
            .map_err(|e| PeerError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut c.identity_dir,
            &mut c.tls_cert,
            &mut c.tls_key,
            &mut c.genesis_block,
            &mut c.data_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(d) = c.files.dir.as_mut()
            && d.is_relative()
        {
            *d = base.join(&*d);
        }
        if let Some(w) = c.web.as_mut() {
            w.resolve(base);
        }
        if let Some(a) = c.anchor.as_mut()
            && a.key.is_relative()
        {
            a.key = base.join(&a.key);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_file_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.toml");
        std::fs::write(
            &path,
            "msp_id = \"Org1MSP\"\nidentity_dir = \"peer1\"\ntls_cert = \"peer1/tls-cert.pem\"\n\
             tls_key = \"/abs/tls-key.pem\"\ngenesis_block = \"genesis.block\"\n\
             data_dir = \"data\"\nlisten = \"127.0.0.1:7051\"\n",
        )
        .unwrap();
        let c = PeerConfig::load(&path).unwrap();
        assert_eq!(c.identity_dir, dir.path().join("peer1"));
        assert_eq!(c.tls_key, PathBuf::from("/abs/tls-key.pem"));
        assert!(c.orderers.is_empty());
        assert_eq!(c.max_lag_blocks, 100);
        assert_eq!(c.gateway.commit_status_timeout_ms, 60_000);
        assert_eq!(c.ledger.scrub_interval_secs, 6 * 3600);
        assert_eq!(c.ledger.scrub_mib_per_sec, 8);
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.toml");
        std::fs::write(&path, "msp_idd = \"x\"\n").unwrap();
        let e = PeerConfig::load(&path).unwrap_err().to_string();
        assert!(e.contains("msp_idd"), "{e}");
    }
}
