//! The orderer's Prometheus metrics (served on the operations port).

use qcss_network::ops::{Counter, CounterVec, Histogram, Registry};

/// Metrics of one orderer node.
#[derive(Clone)]
pub struct Metrics {
    /// The registry they are rendered from.
    pub registry: Registry,
    /// Envelopes answered by Broadcast, by status.
    pub envelopes: CounterVec,
    /// Batches proposed to Raft.
    pub batches_cut: Counter,
    /// Envelopes this node, a follower, forwarded to the Raft leader.
    pub forwarded: Counter,
    /// Envelopes followers forwarded to this node, as leader, already checked.
    pub forwarded_in: Counter,
    /// Broadcast receive → SUCCESS, seconds.
    pub broadcast_latency: Histogram,
    /// Raft snapshots this node built (since it started).
    pub snapshots_built: Counter,
    /// Raft snapshots this node installed from a leader (since it started).
    pub snapshots_installed: Counter,
}

impl Metrics {
    /// Registers the metrics.
    pub fn new(registry: Registry) -> Self {
        let buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
        Metrics {
            envelopes: registry
                .counter_vec(
                    "qcss_orderer_envelopes_total",
                    "Envelopes answered by Broadcast, by status",
                    &["status"],
                )
                .expect("metric names are static and valid"),
            batches_cut: registry
                .counter("qcss_orderer_batches_cut_total", "Batches proposed to Raft")
                .expect("metric names are static and valid"),
            forwarded: registry
                .counter(
                    "qcss_orderer_forwarded_total",
                    "Envelopes this follower forwarded to the Raft leader",
                )
                .expect("metric names are static and valid"),
            forwarded_in: registry
                .counter(
                    "qcss_orderer_forwarded_in_total",
                    "Checked envelopes followers forwarded to this node as leader",
                )
                .expect("metric names are static and valid"),
            broadcast_latency: registry
                .histogram(
                    "qcss_orderer_broadcast_seconds",
                    "Broadcast receipt to SUCCESS",
                    &buckets,
                )
                .expect("metric names are static and valid"),
            snapshots_built: registry
                .counter(
                    "qcss_orderer_snapshots_built_total",
                    "Raft snapshots built by this node",
                )
                .expect("metric names are static and valid"),
            snapshots_installed: registry
                .counter(
                    "qcss_orderer_snapshots_installed_total",
                    "Raft snapshots received from a leader and installed",
                )
                .expect("metric names are static and valid"),
            registry,
        }
    }
}
