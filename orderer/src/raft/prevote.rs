//! Pre-vote (Raft thesis §9.6), which openraft 0.9 lacks.
//!
//! Without it, a follower that was paused (SIGSTOP, a long GC, a VM
//! migration) wakes up with its election timer long expired, starts an
//! election at a higher term, and the healthy leader steps down as soon as
//! it sees that term in a reply: a re-election and a 1.4 s stall for nothing
//! (issue 15). With pre-vote, openraft's own election timer is off
//! (`enable_elect = false`) and [`run`] decides when to call an election: a
//! node that has heard from no leader for its (randomised) election timeout
//! first asks the other voters whether they *would* vote for it. A voter
//! says no while it has heard from a leader within the longest election
//! timeout, or when the candidate's log is behind its own. Only with a
//! majority of yeses does the node call `trigger().elect()`, so a node
//! coming back from a pause finds the leader's heartbeats refused it, never
//! disturbs the term, and simply resumes following.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::LogId;
use qcss_proto::qcss::raft::RaftMessage;
use qcss_proto::qcss::raft::raft_client::RaftClient;
use tonic::transport::{Channel, Endpoint};

use super::log_store::LogStore;
use super::network::RaftNetworkConfig;
use super::types::{NodeId, Raft, decode, encode};

/// "Would you vote for me?"
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PreVoteRequest {
    /// Who asks.
    pub candidate: NodeId,
    /// The last log entry the candidate has.
    pub last_log: Option<LogId<NodeId>>,
}

/// The answer, with the reason for a no (for logs).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PreVoteResponse {
    /// Whether this voter would vote for the candidate.
    pub granted: bool,
    /// Why not.
    pub reason: String,
}

/// When this node last heard from a leader (an AppendEntries or a snapshot
/// it accepted), shared by the Raft service and [`run`].
#[derive(Debug)]
pub struct LeaderContact {
    last: Mutex<Instant>,
}

impl Default for LeaderContact {
    fn default() -> Self {
        // A node that just started waits one timeout before campaigning,
        // as openraft's own timer would.
        LeaderContact {
            last: Mutex::new(Instant::now()),
        }
    }
}

impl LeaderContact {
    /// Records contact now.
    pub fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Time since the last contact.
    pub fn elapsed(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

/// The voter's side: answers `req` from this node's Raft state.
pub fn answer(
    raft: &Raft,
    contact: &LeaderContact,
    lease: Duration,
    req: &PreVoteRequest,
    last_log: Option<LogId<NodeId>>,
) -> PreVoteResponse {
    let m = raft.metrics().borrow().clone();
    let no = |reason: String| PreVoteResponse {
        granted: false,
        reason,
    };
    if m.current_leader == Some(m.id) {
        if m.millis_since_quorum_ack
            .is_some_and(|ms| u128::from(ms) < lease.as_millis())
        {
            return no(format!("node {} leads with a quorum", m.id));
        }
    } else if contact.elapsed() < lease {
        return no(format!(
            "node {} heard from leader {:?} {} ms ago",
            m.id,
            m.current_leader,
            contact.elapsed().as_millis()
        ));
    }
    // The rule openraft's own vote applies (the last log ids, not the
    // applied ones): granting a candidate that openraft would then refuse
    // let a node with a shorter log call election after election, each
    // refused by the others' logs and each blocking their candidacies.
    if req.last_log < last_log {
        return no(format!(
            "candidate {}'s log is behind node {}'s",
            req.candidate, m.id
        ));
    }
    PreVoteResponse {
        granted: true,
        reason: String::new(),
    }
}

/// The candidate's side: a timer that, after `timeout` without leader
/// contact, runs a pre-vote among the voters and triggers an election on a
/// majority. Ends when the Raft core stops.
pub async fn run(
    raft: Raft,
    node_id: NodeId,
    contact: Arc<LeaderContact>,
    log: LogStore,
    tls: RaftNetworkConfig,
    timeout: (u64, u64),
    heartbeat: Duration,
) {
    let mut clients: HashMap<String, RaftClient<Channel>> = HashMap::new();
    // The first campaign after losing the leader waits until the voters'
    // leases (the longest election timeout, counted from the leader's last
    // contact, as ours) have run out too, plus a random spread so that
    // candidates rarely collide: voters refuse pre-votes within their lease.
    // A retry only needs the spread: those leases ran out already.
    let (min, max) = timeout;
    let first = (max, 2 * max - min.min(max));
    let mut wait = randomised(first, node_id);
    // The candidate's own retry timer: kept apart from `contact`, which only
    // a leader may reset (a lost pre-vote that counted as contact would make
    // this node refuse the others' pre-votes, and no one would ever win).
    let mut last_attempt: Option<Instant> = None;
    loop {
        tokio::time::sleep(heartbeat).await;
        let m = raft.metrics().borrow().clone();
        if m.running_state.is_err() {
            return;
        }
        let voters: Vec<(NodeId, String)> = m
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != node_id)
            .filter_map(|id| {
                let n = m.membership_config.membership().get_node(&id)?;
                Some((id, n.addr.clone()))
            })
            .collect();
        let i_vote = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == node_id);
        if let Some(t) = last_attempt
            && contact.elapsed() < t.elapsed()
        {
            // A leader was heard from since our last attempt: losing it
            // again starts over with the long first wait.
            last_attempt = None;
            wait = randomised(first, node_id);
        }
        if m.current_leader == Some(node_id)
            || !i_vote
            || contact.elapsed() < wait
            || last_attempt.is_some_and(|t| t.elapsed() < wait)
        {
            continue;
        }
        let req = PreVoteRequest {
            candidate: node_id,
            last_log: log.last_log_id(),
        };
        let Ok(data) = encode(&req) else { continue };
        let asks = voters.iter().map(|(id, addr)| {
            let client = clients
                .entry(addr.clone())
                .or_insert_with(|| connect(&tls, addr))
                .clone();
            let data = data.clone();
            async move {
                let mut client = client;
                let r = tokio::time::timeout(heartbeat * 4, client.pre_vote(RaftMessage { data }))
                    .await;
                let answer = match r {
                    Ok(Ok(resp)) => decode::<PreVoteResponse>(&resp.into_inner().data).ok(),
                    _ => None,
                };
                (*id, answer)
            }
        });
        // Stop at a majority: a voter that is down (the usual reason for an
        // election) must not hold the count up until its call times out.
        let voters_total = voters.len() + 1;
        let mut pending: futures_util::stream::FuturesUnordered<_> = asks.collect();
        let mut answers = Vec::new();
        let mut granted = 1;
        while granted * 2 <= voters_total {
            let Some((id, a)) = futures_util::StreamExt::next(&mut pending).await else {
                break;
            };
            if a.as_ref().is_some_and(|a| a.granted) {
                granted += 1;
            }
            answers.push((id, a));
        }
        // Someone else's election began while the answers came (this node
        // voted in a newer term; a new leader comes with one too): calling
        // an election now would depose what it elects. `current_leader` is
        // no sign: it names the lost leader until a new term.
        let now = raft.metrics().borrow().clone();
        let overtaken = now.current_term != m.current_term;
        if granted * 2 > voters_total && overtaken {
            tracing::debug!(
                term = now.current_term,
                leader = ?now.current_leader,
                "pre-vote won but another election or leader came first"
            );
        } else if granted * 2 > voters_total {
            tracing::info!(
                granted,
                voters = voters_total,
                "pre-vote won; calling an election"
            );
            if raft.trigger().elect().await.is_err() {
                return;
            }
        } else {
            let refusals: Vec<String> = answers
                .into_iter()
                .filter_map(|(id, a)| match a {
                    Some(a) if !a.granted => Some(a.reason),
                    Some(_) => None,
                    None => Some(format!("node {id} did not answer")),
                })
                .collect();
            tracing::debug!(granted, voters = voters_total, ?refusals, "pre-vote lost");
        }
        // Either way, wait a whole (new, random) timeout before trying again.
        last_attempt = Some(Instant::now());
        wait = randomised(timeout, node_id);
    }
}

/// A timeout in `[min, max)` ms, different per node and per call.
fn randomised((min, max): (u64, u64), node_id: NodeId) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos) ^ node_id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let span = max.saturating_sub(min).max(1);
    Duration::from_millis(min + seed % span)
}

fn connect(tls: &RaftNetworkConfig, addr: &str) -> RaftClient<Channel> {
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .and_then(|e| e.tls_config(tls.client_tls(addr)))
        .map(|e| e.connect_timeout(Duration::from_secs(2)).connect_lazy());
    match ch {
        Ok(ch) => RaftClient::new(ch),
        // An address that does not parse cannot be reached: a client to a
        // placeholder that fails every call (counted as no answer).
        Err(_) => {
            RaftClient::new(Endpoint::from_static("https://invalid.invalid:1").connect_lazy())
        }
    }
}
