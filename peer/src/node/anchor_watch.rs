//! What the public QCSS chain says about this channel's anchoring, read
//! from `[anchor] chain_api` every few seconds: the newest anchor and the
//! newest *irreversible* one. The verify page, `/api/anchor/status` and the
//! metrics `qcss_peer_anchored_blocks` / `qcss_peer_anchor_lag_blocks` show
//! it. Read-only and best-effort: a chain that does not answer leaves the
//! last answer in place and is logged, the peer's work is not affected.

use std::sync::Arc;
use std::time::Duration;

use qcss_anchor::Hash32;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::node::Peer;

/// How often the chain is asked.
const POLL: Duration = Duration::from_secs(5);
/// Largest answer read.
const MAX_ANSWER: u64 = 1024 * 1024;

/// The anchoring as last read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Anchored {
    /// Newest anchor's seq and blocks covered, if any.
    pub latest: Option<(u64, u64)>,
    /// Newest irreversible anchor: (seq, blocks covered, public height).
    pub irreversible: Option<(u64, u64, u64)>,
    /// The public chain's last irreversible height.
    pub public_lib: u64,
    /// When the next anchor is due, seconds from the last poll: the interval
    /// between the last two new anchors this peer saw, minus the time since
    /// the newer one (none until it has seen two). An estimate of the
    /// bridge's cadence, which only the bridge's configuration knows.
    pub next_due_secs: Option<u64>,
    /// The chain's identity and reward schedule, as its status said.
    pub chain: Option<ChainSchedule>,
}

/// What a peer needs of the public chain to sign a reward batch for it
/// (`/api/rewards/sign`): read from `[anchor] chain_api`, the same node
/// the peer already trusts for what is anchored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ChainSchedule {
    /// The chain id (hash of its genesis): reward digests commit to it.
    pub chain_id: Hash32,
    /// Unix ms of slot 0.
    pub genesis_time_ms: u64,
    /// Slot length, ms.
    pub slot_ms: u64,
    /// Reward epoch length, slots (0: a chain without a reward pool).
    #[serde(default)]
    pub reward_epoch_slots: u64,
    /// Entries in one part of a reward batch (0: not said, an older chain).
    #[serde(default)]
    pub reward_max_entries: u32,
    /// Parts one reward epoch may be split into.
    #[serde(default)]
    pub reward_max_parts: u32,
}

/// The next anchor's estimated due time from when this peer first saw the
/// newest anchors (oldest first): the last interval, less the time since.
pub(crate) fn next_due(seen: &[std::time::Instant], now: std::time::Instant) -> Option<u64> {
    let [.., prev, last] = seen else {
        return None;
    };
    let interval = last.saturating_duration_since(*prev);
    Some(
        interval
            .saturating_sub(now.saturating_duration_since(*last))
            .as_secs(),
    )
}

/// The public half of a proof over one irreversible anchor, as the chain
/// node served it (`GET /v1/consortium/{id}/proof`): kept as JSON, for the
/// peer passes it through into proof files and never relies on it (the
/// verifier checks every step).
#[derive(Debug, Clone, Deserialize)]
pub struct PublicHalf {
    /// The anchor's sequence number.
    pub seq: u64,
    /// Consortium blocks it covers (`0 … mmr_size − 1`).
    pub mmr_size: u64,
    /// The public block carrying it.
    pub height: u64,
    /// The anchor step (the transaction, the keys and quorum).
    pub anchor: serde_json::Value,
    /// The public steps (block header, Merkle path, headers).
    pub public: serde_json::Value,
}

#[derive(Deserialize)]
struct Last {
    seq: u64,
    mmr_size: u64,
    mmr_root: Hash32,
    height: u64,
    tx_id: Hash32,
}

/// An anchor this peer has seen irreversible on the public chain: what a
/// receipt on the ledger must match (`anchorscc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenAnchor {
    /// Consortium blocks covered.
    pub mmr_size: u64,
    /// Their root.
    pub mmr_root: Hash32,
    /// The public block carrying it.
    pub height: u64,
    /// The public anchor transaction's id.
    pub tx_id: Hash32,
}

/// Irreversible anchors remembered (newest kept): receipts are recorded
/// within seconds of irreversibility, so a small window suffices.
const SEEN_ANCHORS: usize = 256;
#[derive(Deserialize)]
struct Consortium {
    last: Option<Last>,
}
#[derive(Deserialize)]
struct View {
    consortium: Consortium,
}
#[derive(Deserialize)]
struct Status {
    lib_height: u64,
    #[serde(flatten)]
    schedule: ChainSchedule,
}

impl Peer {
    /// This channel's consortium id (its name and genesis block hash).
    pub fn consortium_id(&self) -> Hash32 {
        self.consortium_id
    }

    /// The anchoring as last read from the public chain (none if not configured or not read yet).
    pub fn anchored(&self) -> Option<Anchored> {
        self.anchored
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Anchor `seq` as this peer saw it irreversible on the public chain.
    pub fn anchor_seen(&self, seq: u64) -> Option<SeenAnchor> {
        self.anchors_seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&seq)
            .copied()
    }

    /// The public half of a proof over the newest irreversible anchor this
    /// peer has read (none before the first, or when not following a chain).
    pub fn anchor_proof_half(&self) -> Option<Arc<PublicHalf>> {
        self.anchor_proof
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Polls the chain until `stop`.
pub(crate) async fn run(peer: Arc<Peer>, api: String, mut stop: watch::Receiver<bool>) {
    let blocks = peer
        .metrics
        .registry
        .gauge(
            "qcss_peer_anchored_blocks",
            "Blocks of this channel covered by the newest irreversible anchor on the public QCSS chain",
        )
        .ok();
    let lag = peer
        .metrics
        .registry
        .gauge(
            "qcss_peer_anchor_lag_blocks",
            "Committed blocks not yet covered by an irreversible anchor",
        )
        .ok();
    let cid = peer.consortium_id();
    // When each of the last two new anchors was first seen (for next_due).
    let mut new_at: Vec<(u64, std::time::Instant)> = Vec::new();
    loop {
        match read(&api, &cid).await {
            Ok((last, lib, schedule)) => {
                let now = std::time::Instant::now();
                if let Some(l) = &last
                    && new_at.last().map(|x| x.0) != Some(l.seq)
                {
                    new_at.push((l.seq, now));
                    if new_at.len() > 2 {
                        new_at.remove(0);
                    }
                }
                let (covered, irreversible_seq) = {
                    let mut slot = peer.anchored.write().unwrap_or_else(|e| e.into_inner());
                    let mut a = slot.clone().unwrap_or_default();
                    a.public_lib = lib;
                    a.chain = Some(schedule);
                    a.latest = last.as_ref().map(|l| (l.seq, l.mmr_size));
                    let times: Vec<std::time::Instant> = new_at.iter().map(|x| x.1).collect();
                    a.next_due_secs = next_due(&times, now);
                    if let Some(l) = last.filter(|l| l.height <= lib) {
                        a.irreversible = Some((l.seq, l.mmr_size, l.height));
                        let mut seen = peer.anchors_seen.write().unwrap_or_else(|e| e.into_inner());
                        seen.insert(
                            l.seq,
                            SeenAnchor {
                                mmr_size: l.mmr_size,
                                mmr_root: l.mmr_root,
                                height: l.height,
                                tx_id: l.tx_id,
                            },
                        );
                        while seen.len() > SEEN_ANCHORS {
                            seen.pop_first();
                        }
                    }
                    let out = (
                        a.irreversible.map_or(0, |i| i.1),
                        a.irreversible.map(|i| i.0),
                    );
                    *slot = Some(a);
                    out
                };
                // A new irreversible anchor: fetch its proof half once.
                let have = peer.anchor_proof_half().map(|h| h.seq);
                if irreversible_seq.is_some() && have != irreversible_seq {
                    match get::<PublicHalf>(&api, &format!("/v1/consortium/{cid}/proof")).await {
                        Ok(h) => {
                            *peer.anchor_proof.write().unwrap_or_else(|e| e.into_inner()) =
                                Some(Arc::new(h));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "cannot read the anchor's proof half")
                        }
                    }
                }
                if let Some(g) = &blocks {
                    g.set(covered as f64);
                }
                if let Some(g) = &lag {
                    g.set(peer.height().saturating_sub(covered) as f64);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, api = %api, "cannot read anchoring from the public chain")
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn read(api: &str, cid: &Hash32) -> Result<(Option<Last>, u64, ChainSchedule), String> {
    let st: Status = get(api, "/v1/status").await?;
    match get::<View>(api, &format!("/v1/consortium/{cid}")).await {
        Ok(v) => Ok((v.consortium.last, st.lib_height, st.schedule)),
        Err(e) if e.starts_with("404") => Ok((None, st.lib_height, st.schedule)),
        Err(e) => Err(e),
    }
}

/// One bounded HTTP/1.1 GET of JSON (2 s to connect, 5 s in all).
async fn get<T: serde::de::DeserializeOwned>(addr: &str, path: &str) -> Result<T, String> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.take(MAX_ANSWER)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("not an HTTP answer")?;
        let status = head.split_whitespace().nth(1).unwrap_or("0").to_owned();
        if status != "200" {
            return Err(format!("{status} from {addr}{path}"));
        }
        serde_json::from_str(body).map_err(|e| format!("{addr}{path}: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .map_err(|_| format!("{addr}{path}: no answer within 5 s"))?
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::next_due;

    #[test]
    fn the_next_anchor_is_due_one_interval_after_the_last() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(next_due(&[], t1), None);
        assert_eq!(next_due(&[t1], t1), None);
        assert_eq!(next_due(&[t0, t1], t1 + Duration::from_secs(20)), Some(40));
        // Overdue: due now, not negative.
        assert_eq!(next_due(&[t0, t1], t1 + Duration::from_secs(90)), Some(0));
    }
}
