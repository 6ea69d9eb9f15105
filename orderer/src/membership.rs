//! Raft membership follows the channel's consenter set.
//!
//! The consenter set is channel configuration: it changes only by a config
//! block, which every node applies at the same height. Raft membership is
//! openraft's and changes only by membership log entries, which only the
//! leader may propose. So the leader reconciles one to the other: after a
//! config block adds a consenter it makes sure its snapshot covers that
//! config block and purges the log up to it, then adds the consenter as a
//! learner (openraft `add_learner`), which therefore starts with that
//! snapshot: the blocks it holds from before it was a consenter are the
//! leader's, signed by a consenter of their time (a block a node builds
//! itself carries its own signature, which is valid only from the block
//! where it became a consenter). Once the learner has the log up to the
//! membership entry the leader
//! makes the consenter set the voters (`change_membership`, joint consensus
//! inside openraft); after a config block removes a consenter it makes the
//! remaining consenters the voters without keeping the removed one as a
//! learner. Every node runs [`run`]; only the leader acts, and only once it
//! has applied the log up to the current membership entry, so the
//! configuration it reconciles to is never older than the one the
//! membership was derived from. A leader elected halfway (for example in a
//! joint configuration) simply carries on: the plan depends only on the
//! applied consenter set and the membership, never on what was done before.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers};
use qcss_network::channel::Consenter;
use tokio::sync::watch;

use crate::node::Shared;
use crate::raft::types::NodeId;

/// How often the leader compares membership and consenters even without a
/// configuration change (a learner catching up, a new leader).
const TICK: Duration = Duration::from_millis(300);

/// Longest one membership change may take before it is retried.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// The next step towards a Raft membership equal to the consenter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Membership matches the consenter set.
    Nothing,
    /// Build a snapshot (it must cover the last config block before a new
    /// consenter is added).
    BuildSnapshot,
    /// Purge the log up to this index, so a new learner starts from the
    /// snapshot.
    PurgeLog(u64),
    /// Add a new consenter as a learner.
    AddLearner(NodeId, BasicNode),
    /// Some new consenters still catch up; wait.
    WaitCatchUp(Vec<NodeId>),
    /// Make exactly these the voters (removed ones are dropped, not kept as learners).
    SetVoters(BTreeSet<NodeId>),
    /// Drop learners that are not consenters (any more).
    RemoveNodes(BTreeSet<NodeId>),
}

/// What Raft membership looks like now, as far as the plan needs.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Voter sets: one, or two while in a joint configuration.
    pub joint: Vec<BTreeSet<NodeId>>,
    /// Every node (voters and learners).
    pub nodes: BTreeSet<NodeId>,
    /// Log index of the membership entry.
    pub membership_index: u64,
    /// Highest log index the leader knows each node holds.
    pub matched: BTreeMap<NodeId, u64>,
    /// Log index the last config block was applied at.
    pub config_index: u64,
    /// Last log index the current snapshot covers.
    pub snapshot: u64,
    /// Last purged log index.
    pub purged: u64,
}

/// Decides the next step from the consenter set and the membership. Pure,
/// so a leader elected at any point takes up the change where it stands.
pub fn plan(consenters: &[Consenter], now: &Current) -> Step {
    let desired: BTreeSet<NodeId> = consenters.iter().map(|c| c.id).collect();
    if let Some(c) = consenters.iter().find(|c| !now.nodes.contains(&c.id)) {
        if now.snapshot < now.config_index {
            return Step::BuildSnapshot;
        }
        if now.purged < now.config_index {
            return Step::PurgeLog(now.config_index);
        }
        return Step::AddLearner(
            c.id,
            BasicNode {
                addr: c.address.clone(),
            },
        );
    }
    let uniform = now.joint.len() == 1;
    if uniform && now.joint[0] == desired {
        let extra: BTreeSet<NodeId> = now.nodes.difference(&desired).copied().collect();
        return if extra.is_empty() {
            Step::Nothing
        } else {
            Step::RemoveNodes(extra)
        };
    }
    let voters: BTreeSet<NodeId> = now.joint.iter().flatten().copied().collect();
    let lagging: Vec<NodeId> = desired
        .iter()
        .filter(|id| !voters.contains(id))
        .filter(|id| now.matched.get(id).copied().unwrap_or(0) < now.membership_index)
        .copied()
        .collect();
    if !lagging.is_empty() {
        return Step::WaitCatchUp(lagging);
    }
    Step::SetVoters(desired)
}

/// Runs on every node until `stop`: when this node leads, moves Raft
/// membership one step towards the consenter set on every configuration
/// change and every [`TICK`].
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut config_rx = shared.chain.watch_config();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_wait: Vec<NodeId> = Vec::new();
    // BuildSnapshot and PurgeLog return at once and take effect later: do
    // not ask again while the last request may still be under way.
    let mut asked: Option<(Step, std::time::Instant)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = config_rx.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
        let Some(now) = current(&shared) else {
            continue;
        };
        let step = plan(&shared.channel().config().consenters, &now);
        let raft = &shared.raft;
        let result = match &step {
            Step::Nothing => continue,
            Step::WaitCatchUp(ids) => {
                if *ids != last_wait {
                    tracing::info!(?ids, "new consenters are catching up before they vote");
                    last_wait = ids.clone();
                }
                continue;
            }
            Step::BuildSnapshot | Step::PurgeLog(_) => {
                if asked
                    .as_ref()
                    .is_some_and(|(s, t)| *s == step && t.elapsed() < Duration::from_secs(5))
                {
                    continue;
                }
                asked = Some((step.clone(), std::time::Instant::now()));
                tracing::info!(step = ?step, "preparing a snapshot for a new consenter");
                let r = match &step {
                    Step::PurgeLog(upto) => raft.trigger().purge_log(*upto).await,
                    _ => raft.trigger().snapshot().await,
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "snapshot or purge request failed");
                }
                continue;
            }
            Step::AddLearner(id, node) => {
                tracing::info!(id, addr = %node.addr, "adding new consenter as a Raft learner");
                timed(raft.add_learner(*id, node.clone(), false)).await
            }
            Step::SetVoters(ids) => {
                tracing::info!(voters = ?ids, "changing Raft voters to the channel's consenters");
                timed(raft.change_membership(ids.clone(), false)).await
            }
            Step::RemoveNodes(ids) => {
                tracing::info!(?ids, "removing Raft learners that are not consenters");
                timed(raft.change_membership(ChangeMembers::RemoveNodes(ids.clone()), false)).await
            }
        };
        match result {
            Ok(()) => tracing::info!(step = ?step, "Raft membership step committed"),
            Err(e) => {
                tracing::warn!(step = ?step, error = %e, "Raft membership step failed; will retry")
            }
        }
    }
}

/// The membership as this node sees it, if it leads and has applied the
/// log up to the membership entry (otherwise it must not act).
fn current(shared: &Shared) -> Option<Current> {
    let m = shared.raft.metrics();
    let m = m.borrow();
    if m.current_leader != Some(shared.node_id) {
        return None;
    }
    let stored = &m.membership_config;
    let membership_index = stored.log_id().map(|l| l.index).unwrap_or(0);
    if m.last_applied.map(|l| l.index).unwrap_or(0) < membership_index {
        return None;
    }
    let membership = stored.membership();
    let matched = m
        .replication
        .as_ref()
        .map(|r| {
            r.iter()
                .map(|(id, l)| (*id, l.map(|l| l.index).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    Some(Current {
        joint: membership.get_joint_config().clone(),
        nodes: membership.nodes().map(|(id, _)| *id).collect(),
        membership_index,
        matched,
        config_index: shared.chain.last_config_raft_index(),
        snapshot: m.snapshot.map(|l| l.index).unwrap_or(0),
        purged: m.purged.map(|l| l.index).unwrap_or(0),
    })
}

async fn timed<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHANGE_TIMEOUT, f).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("not committed within {CHANGE_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consenters(ids: &[u64]) -> Vec<Consenter> {
        ids.iter()
            .map(|id| Consenter {
                id: *id,
                address: format!("o{id}:7050"),
                msp_id: "Org1MSP".into(),
                tls_cert_pem: String::new(),
                identity_cert_pem: String::new(),
            })
            .collect()
    }

    fn now(joint: &[&[u64]], learners: &[u64], matched: &[(u64, u64)], index: u64) -> Current {
        let joint: Vec<BTreeSet<u64>> = joint.iter().map(|v| v.iter().copied().collect()).collect();
        let mut nodes: BTreeSet<u64> = joint.iter().flatten().copied().collect();
        nodes.extend(learners);
        Current {
            joint,
            nodes,
            membership_index: index,
            matched: matched.iter().copied().collect(),
            config_index: 4,
            snapshot: 4,
            purged: 4,
        }
    }

    #[test]
    fn plans_follow_the_consenter_set() {
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        let cases: Vec<(&str, Vec<u64>, Current, Step)> = vec![
            (
                "in sync",
                vec![1, 2, 3],
                now(&[&[1, 2, 3]], &[], &[], 5),
                Step::Nothing,
            ),
            (
                "added: learner first",
                vec![1, 2, 3, 4],
                now(&[&[1, 2, 3]], &[], &[], 5),
                Step::AddLearner(
                    4,
                    BasicNode {
                        addr: "o4:7050".into(),
                    },
                ),
            ),
            (
                "added: snapshot first",
                vec![1, 2, 3, 4],
                Current {
                    snapshot: 2,
                    ..now(&[&[1, 2, 3]], &[], &[], 5)
                },
                Step::BuildSnapshot,
            ),
            (
                "added: then purge",
                vec![1, 2, 3, 4],
                Current {
                    purged: 0,
                    ..now(&[&[1, 2, 3]], &[], &[], 5)
                },
                Step::PurgeLog(4),
            ),
            (
                "learner behind",
                vec![1, 2, 3, 4],
                now(&[&[1, 2, 3]], &[4], &[(4, 3)], 9),
                Step::WaitCatchUp(vec![4]),
            ),
            (
                "learner caught up",
                vec![1, 2, 3, 4],
                now(&[&[1, 2, 3]], &[4], &[(4, 9)], 9),
                Step::SetVoters(set(&[1, 2, 3, 4])),
            ),
            (
                "removed",
                vec![1, 3],
                now(&[&[1, 2, 3]], &[], &[], 9),
                Step::SetVoters(set(&[1, 3])),
            ),
            (
                "left in a joint config by a failed leader",
                vec![1, 2, 3, 4],
                now(&[&[1, 2, 3], &[1, 2, 3, 4]], &[], &[], 12),
                Step::SetVoters(set(&[1, 2, 3, 4])),
            ),
            (
                "a learner whose consenter was removed again",
                vec![1, 2, 3],
                now(&[&[1, 2, 3]], &[4], &[], 12),
                Step::RemoveNodes(set(&[4])),
            ),
        ];
        for (what, ids, current, want) in cases {
            assert_eq!(plan(&consenters(&ids), &current), want, "{what}");
        }
    }
}
