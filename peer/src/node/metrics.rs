//! The peer's Prometheus metrics and `/healthz` (served on the operations
//! port).

use std::sync::{Arc, PoisonError};

use qcss_network::ops::{Counter, CounterVec, FloatCounter, Health, Histogram, Ops, Registry};

use crate::node::Peer;

/// Metrics of one peer.
#[derive(Clone)]
pub struct Metrics {
    /// The registry they are rendered from.
    pub registry: Registry,
    /// Blocks committed (since start).
    pub blocks: Counter,
    /// Transactions committed, by validation code.
    pub transactions: CounterVec,
    /// Validation and commit of one block, seconds.
    pub validation_seconds: Histogram,
    /// Time spent validating identities and verifying signatures during
    /// validation, summed over threads, seconds.
    pub signature_seconds: FloatCounter,
    /// One endorsement (this peer's endorser), seconds.
    pub endorse_seconds: Histogram,
    /// Time spent appending committed blocks to the anchoring MMR, seconds
    /// (compare with the validation histogram's sum: the bridge's share).
    pub anchor_mmr_seconds: FloatCounter,
    /// Gateway calls answered, by method and outcome.
    pub gateway_calls: CounterVec,
    /// Times the committer moved to another orderer.
    pub orderer_failovers: Counter,
    /// Damage found in the ledger, by kind (`block`, `state`).
    pub corruptions: CounterVec,
    /// Damaged blocks repaired from the ordering service.
    pub repairs: Counter,
    /// Scrub passes completed.
    pub scrubs: Counter,
    /// Times a failed ledger store (e.g. a full disk) was seen on a reopen
    /// attempt.
    pub store_failures: Counter,
    /// File keeper passes completed.
    pub files_keeper_passes: Counter,
    /// Damaged or incomplete file copies the keeper found here.
    pub files_damage_found: Counter,
    /// File copies the keeper repaired from another org.
    pub files_repaired: Counter,
    /// Copies the keeper had another org make (to reach K).
    pub files_copies_requested: Counter,
}

const STATIC: &str = "metric names are static and valid";

impl Metrics {
    /// Registers the metrics.
    pub fn new(registry: Registry) -> Self {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        Metrics {
            blocks: registry
                .counter("qcss_peer_blocks_committed_total", "Blocks committed")
                .expect(STATIC),
            transactions: registry
                .counter_vec(
                    "qcss_peer_transactions_total",
                    "Transactions committed, by validation code",
                    &["code"],
                )
                .expect(STATIC),
            validation_seconds: registry
                .histogram(
                    "qcss_peer_block_validation_seconds",
                    "Validation and commit of one block",
                    &buckets,
                )
                .expect(STATIC),
            signature_seconds: registry
                .float_counter(
                    "qcss_peer_signature_check_seconds_total",
                    "Time spent validating identities and verifying signatures while validating blocks, summed over threads",
                )
                .expect(STATIC),
            endorse_seconds: registry
                .histogram(
                    "qcss_peer_endorsement_seconds",
                    "One endorsement by this peer",
                    &buckets,
                )
                .expect(STATIC),
            anchor_mmr_seconds: registry
                .float_counter(
                    "qcss_peer_anchor_mmr_seconds_total",
                    "Time spent appending committed blocks to the anchoring Merkle mountain range",
                )
                .expect(STATIC),
            gateway_calls: registry
                .counter_vec(
                    "qcss_peer_gateway_calls_total",
                    "Gateway calls answered, by method and outcome",
                    &["method", "outcome"],
                )
                .expect(STATIC),
            orderer_failovers: registry
                .counter(
                    "qcss_peer_orderer_failovers_total",
                    "Times the committer moved to another orderer",
                )
                .expect(STATIC),
            corruptions: registry
                .counter_vec(
                    "qcss_peer_ledger_corruptions_total",
                    "Damaged blocks or state found in the ledger, by kind",
                    &["kind"],
                )
                .expect(STATIC),
            repairs: registry
                .counter(
                    "qcss_peer_ledger_repairs_total",
                    "Damaged blocks repaired from the ordering service",
                )
                .expect(STATIC),
            scrubs: registry
                .counter(
                    "qcss_peer_ledger_scrubs_total",
                    "Background ledger scrub passes completed",
                )
                .expect(STATIC),
            store_failures: registry
                .counter(
                    "qcss_peer_ledger_store_failures_total",
                    "Attempts to reopen a failed ledger store (e.g. after a full disk)",
                )
                .expect(STATIC),
            files_keeper_passes: registry
                .counter(
                    "qcss_peer_files_keeper_passes_total",
                    "File keeper passes completed",
                )
                .expect(STATIC),
            files_damage_found: registry
                .counter(
                    "qcss_peer_files_damage_found_total",
                    "Damaged or incomplete file copies the keeper found on this peer",
                )
                .expect(STATIC),
            files_repaired: registry
                .counter(
                    "qcss_peer_files_repaired_total",
                    "File copies the keeper repaired from another org",
                )
                .expect(STATIC),
            files_copies_requested: registry
                .counter(
                    "qcss_peer_files_copies_made_total",
                    "Copies of a file the keeper had another org make, to keep its K copies",
                )
                .expect(STATIC),
            registry,
        }
    }
}

/// The operations endpoint of `peer`: scrape-time gauges and the health
/// check (an orderer streaming to us, not too far behind).
pub(crate) fn ops(peer: &Arc<Peer>) -> Ops {
    let registry = peer.metrics.registry.clone();
    let p = peer.clone();
    let _ = registry.gauge_fn(
        "qcss_peer_ledger_height",
        "Blocks in the ledger",
        move || p.height() as f64,
    );
    let p = peer.clone();
    let _ = registry.gauge_fn(
        "qcss_peer_orderer_height",
        "Highest height an orderer reported",
        move || {
            p.pull
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .orderer_height as f64
        },
    );
    let p = peer.clone();
    let _ = registry.gauge_fn(
        "qcss_peer_cert_expiry_seconds",
        "Seconds until this peer's signing certificate expires",
        move || (p.signer().cert.not_after - qcss_network::msp::unix_now()) as f64,
    );
    let p = peer.clone();
    let _ = registry.gauge_fn(
        "qcss_peer_ledger_corrupt_blocks",
        "Blocks known to be damaged and not yet repaired",
        move || p.ledger.integrity().corrupt_blocks.len() as f64,
    );
    let p = peer.clone();
    let _ = registry.gauge_fn(
        "qcss_peer_files",
        "Files in this peer's MDSS store, at the file keeper's last round",
        move || p.files_status().files as f64,
    );
    let p = peer.clone();
    let _ = registry.gauge_fn(
        "qcss_peer_files_under_replicated",
        "Files held by fewer orgs than their replication asks, at the keeper's last round",
        move || p.files_status().under_replicated as f64,
    );
    let p = peer.clone();
    let _ = registry.gauge_fn(
        "qcss_peer_files_unrepaired",
        "Files damaged here that no org could repair, at the keeper's last round",
        move || p.files_status().unrepaired.len() as f64,
    );
    let p = peer.clone();
    Ops::new(registry).with_health_check(move || {
        let s = p
            .pull
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let height = p.height();
        let orderer = match &s.orderer {
            Some(_) => Ok(()),
            None => Err(format!(
                "not connected to any orderer (last error: {})",
                s.last_error.as_deref().unwrap_or("none yet")
            )),
        };
        let lag = s.orderer_height.saturating_sub(height);
        let behind = if lag > p.cfg.max_lag_blocks {
            Err(format!(
                "{lag} blocks behind the ordering service (height {height}, orderers at {})",
                s.orderer_height
            ))
        } else {
            Ok(())
        };
        let integrity = p.ledger.integrity();
        let integrity = if integrity.is_ok() {
            Ok(())
        } else {
            Err(format!(
                "{}; repairing from the ordering service",
                integrity.summary()
            ))
        };
        let store = match p.ledger.store_failure() {
            None => Ok(()),
            Some(f) if f.disk_full => Err(format!(
                "disk full: {}; reopening the store with backoff",
                f.message
            )),
            Some(f) => Err(format!(
                "store failed: {}; reopening it with backoff",
                f.message
            )),
        };
        let kept = p.files_status();
        let files = match kept.unrepaired.as_slice() {
            [] => Ok(()),
            [first, ..] => Err(format!(
                "{} files damaged here and not repairable from any org (first: {first}); the file keeper retries every pass",
                kept.unrepaired.len()
            )),
        };
        Health::new()
            .check("orderer", orderer)
            .check("files", files)
            .check("ledger", behind)
            .check("ledger.integrity", integrity)
            .check("ledger.store", store)
    })
}
