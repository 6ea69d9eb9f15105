//! The orderer's operations endpoint: health (a leader and a quorum) and
//! Raft figures for `/metrics`.

use std::sync::Arc;

use qcss_network::ops::{Health, Ops, Registry};

use crate::node::Shared;

/// Registers scrape-time gauges for Raft state and the chain.
pub fn register(shared: &Arc<Shared>, registry: &Registry) {
    let s = shared.clone();
    let _ = registry.gauge_fn("qcss_orderer_raft_term", "Current Raft term", move || {
        s.raft.metrics().borrow().current_term as f64
    });
    let s = shared.clone();
    let _ = registry.gauge_fn(
        "qcss_orderer_raft_leader",
        "Current Raft leader id (0 = none)",
        move || s.raft.metrics().borrow().current_leader.unwrap_or(0) as f64,
    );
    let s = shared.clone();
    let _ = registry.gauge_fn(
        "qcss_orderer_raft_commit_index",
        "Last applied Raft log index",
        move || {
            s.raft
                .metrics()
                .borrow()
                .last_applied
                .map(|l| l.index)
                .unwrap_or(0) as f64
        },
    );
    let s = shared.clone();
    let _ = registry.gauge_fn("qcss_orderer_height", "Blocks in the chain", move || {
        s.chain.height() as f64
    });
}

/// The health check and registry for the operations server.
pub fn ops(shared: &Arc<Shared>, registry: Registry) -> Ops {
    let s = shared.clone();
    Ops::new(registry).with_health_check(move || {
        let m = s.raft.metrics().borrow().clone();
        Health::new().check(
            "raft.leader",
            match m.current_leader {
                Some(_) => Ok(()),
                None => Err("no Raft leader known (no quorum?)".to_string()),
            },
        )
    })
}
