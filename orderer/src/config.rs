//! The orderer node's configuration: one TOML file per node. Every field is
//! documented in `docs/orderer.md`. Relative paths are relative to the file.

use std::path::{Path, PathBuf};

use crate::error::OrdererError;

/// Raft timing and log compaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSettings {
    /// Leader heartbeat interval, ms. openraft also uses it as the timeout of
    /// one AppendEntries call, so it must cover a loaded follower's fsync.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout, ms.
    ///
    /// A follower that heard from a leader first waits out openraft's leader
    /// lease (`election_timeout_max_ms`) and then its election timeout, so a
    /// dead leader is replaced after max + [min, max] ms (plus up to one
    /// tick, 1.5 × heartbeat): 3–4.5 s with the defaults.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomised election timeout, ms (also the lease).
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many applied log entries.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot (for slow followers) before purging.
    pub keep_logs: u64,
    /// Call elections only after a pre-vote majority (Raft thesis §9.6), so
    /// that a node back from a pause or a partition cannot depose a healthy
    /// leader. On by default; off gives openraft's own election timer.
    pub pre_vote: bool,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_ms: 300,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_every: 2000,
            keep_logs: 500,
            pre_vote: true,
        }
    }
}

/// One orderer node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdererConfig {
    /// This node's consenter id in the channel configuration.
    pub node_id: u64,
    /// The MSP id of this node's org.
    pub msp_id: String,
    /// Directory with this node's signing identity (`cert.pem`, `key.pem`).
    pub identity_dir: PathBuf,
    /// This node's TLS certificate (PEM).
    pub tls_cert: PathBuf,
    /// This node's TLS key (PEM).
    pub tls_key: PathBuf,
    /// The channel's genesis block (as written by `qcss channel genesis`).
    pub genesis_block: PathBuf,
    /// Where the Raft log, blocks and state live.
    pub data_dir: PathBuf,
    /// gRPC listen address (AtomicBroadcast and Raft), e.g. `127.0.0.1:7050`.
    pub listen: String,
    /// Operations listen address (`/healthz`, `/metrics`); none if absent.
    #[serde(default)]
    pub ops_listen: Option<String>,
    /// Optional: for a node joining an existing channel, the channel's
    /// latest config block (the one adding it). Until the node has applied
    /// that configuration, Raft traffic from the consenters it names is
    /// accepted too, so the node can catch up from a leader added after
    /// genesis.
    #[serde(default)]
    pub join_block: Option<PathBuf>,
    /// Raft settings.
    #[serde(default)]
    pub raft: RaftSettings,
    /// Warn in the log when one of this node's certificates expires within
    /// this many days.
    #[serde(default = "default_warn_days")]
    pub cert_warn_days: u64,
    /// How often, in seconds, the node rereads `tls_cert` and `tls_key`; a
    /// renewed pair is served and presented from then on without a restart
    /// (SIGHUP rereads at once).
    #[serde(default = "default_tls_reload_secs")]
    pub tls_reload_secs: u64,
}

fn default_tls_reload_secs() -> u64 {
    30
}

fn default_warn_days() -> u64 {
    qcss_network::ops::DEFAULT_CERT_WARN_DAYS
}

impl OrdererConfig {
    /// Reads a TOML file and resolves relative paths against its folder.
    pub fn load(path: &Path) -> Result<Self, OrdererError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OrdererError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut c: OrdererConfig = toml::from_str(&text)
            .map_err(|e| OrdererError::Config(format!("{}: {e}", path.display())))?;
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
        if let Some(p) = c.join_block.as_mut()
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
        c.check()?;
        Ok(c)
    }

    /// Checks values that would make the node misbehave.
    pub fn check(&self) -> Result<(), OrdererError> {
        let r = &self.raft;
        if self.node_id == 0 {
            return Err(OrdererError::Config("node_id must be > 0".into()));
        }
        if r.heartbeat_ms == 0
            || r.election_timeout_min_ms <= r.heartbeat_ms * 2
            || r.election_timeout_max_ms <= r.election_timeout_min_ms
        {
            return Err(OrdererError::Config(
                "raft: need 0 < 2*heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms"
                    .into(),
            ));
        }
        if r.snapshot_every == 0 {
            return Err(OrdererError::Config(
                "raft.snapshot_every must be > 0".into(),
            ));
        }
        Ok(())
    }
}
