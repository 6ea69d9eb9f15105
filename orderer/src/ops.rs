//! The orderer's operations endpoint: health (a running Raft core, a leader
//! and a quorum) and
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
    let _ = registry.gauge_fn(
        "qcss_orderer_raft_voters",
        "Voters in the Raft membership (both sets while joint)",
        move || {
            let m = s.raft.metrics();
            let m = m.borrow();
            m.membership_config.membership().voter_ids().count() as f64
        },
    );
    let s = shared.clone();
    let _ = registry.gauge_fn(
        "qcss_orderer_raft_learners",
        "Learners (non-voting members catching up) in the Raft membership",
        move || {
            let m = s.raft.metrics();
            let m = m.borrow();
            m.membership_config.membership().learner_ids().count() as f64
        },
    );
    let s = shared.clone();
    let _ = registry.gauge_fn("qcss_orderer_height", "Blocks in the chain", move || {
        s.chain.height() as f64
    });
    let s = shared.clone();
    let _ = registry.gauge_fn(
        "qcss_orderer_raft_snapshot_index",
        "Raft log index covered by the current snapshot",
        move || {
            s.raft
                .metrics()
                .borrow()
                .snapshot
                .map(|l| l.index)
                .unwrap_or(0) as f64
        },
    );
    let s = shared.clone();
    let _ = registry.gauge_fn(
        "qcss_orderer_raft_purged_index",
        "Last Raft log index purged by compaction",
        move || {
            s.raft
                .metrics()
                .borrow()
                .purged
                .map(|l| l.index)
                .unwrap_or(0) as f64
        },
    );
    let s = shared.clone();
    let _ = registry.gauge_fn(
        "qcss_orderer_config_sequence",
        "Sequence of the channel configuration in force",
        move || s.channel().config().sequence as f64,
    );
    let s = shared.clone();
    let _ = registry.gauge_fn(
        "qcss_orderer_last_config_block",
        "Number of the last config block",
        move || s.chain.last_config_block() as f64,
    );
}

/// The health check and registry for the operations server.
pub fn ops(shared: &Arc<Shared>, registry: Registry) -> Ops {
    let s = shared.clone();
    Ops::new(registry).with_health_check(move || {
        let (leader, running) = {
            let m = s.raft.metrics();
            let m = m.borrow();
            (m.current_leader, m.running_state.clone())
        };
        Health::new()
            .check(
                "raft.core",
                running.map_err(|fatal| format!("the Raft core stopped: {fatal}")),
            )
            .check("raft.recovering", s.recovery.refusal().map_or(Ok(()), Err))
            .check(
                "raft.leader",
                match leader {
                    // A leader cut off from its quorum is not healthy either.
                    Some(l) if l == s.node_id => s.leading(),
                    Some(_) => Ok(()),
                    None => Err("no Raft leader known (no quorum?)".to_string()),
                },
            )
    })
}
