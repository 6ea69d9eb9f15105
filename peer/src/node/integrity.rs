//! Keeping the ledger sound while the peer runs (issue 15, items 5 and 6).
//!
//! - `watch`: the ledger's corruption hook counts each damaged block or
//!   state in `qcss_peer_ledger_corruptions_total`, logs (at most one line
//!   per [`LOG_EVERY`], naming the blocks) and wakes the repairer;
//! - [`run_repair`]: re-fetches damaged blocks from the orderers with
//!   `Deliver` (or, when none has it, from other orgs' peers' `Deliver`),
//!   from the highest down, and hands them to
//!   [`crate::ledger::Ledger::repair_block`], which checks each against the
//!   chain before writing; once the blocks are sound, damaged world state,
//!   history or tx index is rebuilt from them
//!   ([`crate::ledger::Ledger::rebuild_derived`]);
//! - [`run_scrub`]: every `[ledger] scrub_interval_secs` (the first pass at
//!   most a minute after the start), reads every block and every state,
//!   history and tx-index record at no more than `scrub_mib_per_sec`;
//! - [`recover_store`]: after a write failed in the store (a full disk:
//!   sled's error is sticky), reopens it with exponential backoff until it
//!   works.
//!
//! While anything is damaged or the store has failed, `/healthz` fails
//! (`ledger.integrity`, `ledger.store`) and the peer endorses nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qcss_network::orderer_client::{OrdererClient, Seek};
use qcss_proto::common::Block;
use tokio::sync::{Notify, watch};

use crate::ledger::LedgerError;
use crate::node::Peer;
use crate::node::metrics::Metrics;

/// At most one corruption log line per this long.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);
/// How long one block may take to fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait before reopening a failed store or retrying a repair; doubles
/// up to [`BACKOFF_CAP`].
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest wait between two reopen attempts.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// The first scrub after a start begins at most this long after it.
const FIRST_SCRUB_AFTER: Duration = Duration::from_secs(60);
/// Blocks and records read per scrub step (between two rate-limit pauses).
const SCRUB_BLOCKS_PER_STEP: u64 = 32;
const SCRUB_RECORDS_PER_STEP: u64 = 2048;

/// Sets the ledger's corruption hook: metrics, a rate-limited log line, and
/// a wake-up for the repairer.
pub(crate) fn watch(ledger: &crate::ledger::Ledger, metrics: &Metrics, wake: Arc<Notify>) {
    let counter = metrics.corruptions.clone();
    let log = Mutex::new(RateLimitedLog::default());
    ledger.on_corruption(move |block, why| {
        counter
            .with(&[if block.is_some() { "block" } else { "state" }])
            .inc();
        log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .note(block, why);
        wake.notify_one();
    });
}

/// Logs the first damage at once, then at most one line per [`LOG_EVERY`]
/// naming what was found meanwhile.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    pending: Vec<u64>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn note(&mut self, block: Option<u64>, why: &str) {
        if let Some(b) = block {
            self.pending.push(b);
        }
        let due = self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if !due {
            self.suppressed += 1;
            return;
        }
        self.last = Some(Instant::now());
        let blocks: Vec<String> = self.pending.drain(..).map(|b| b.to_string()).collect();
        tracing::error!(
            blocks = %blocks.join(","),
            also_found_since_last_line = self.suppressed,
            reason = %why,
            "ledger corruption detected: the peer fails /healthz, endorses nothing and repairs from the ordering service"
        );
        self.suppressed = 0;
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Repairs damaged blocks until `stop`.
pub(crate) async fn run_repair(
    peer: Arc<Peer>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    loop {
        let damaged: Vec<u64> = peer
            .ledger
            .integrity()
            .corrupt_blocks
            .keys()
            .rev()
            .copied()
            .collect();
        let mut failed = Vec::new();
        for n in damaged {
            if *stop.borrow() {
                return;
            }
            match repair_one(&peer, n).await {
                Ok(source) => {
                    peer.metrics.repairs.inc();
                    tracing::info!(block = n, from = %source, "damaged block repaired");
                }
                // A block below a failed one is refused too (it is checked
                // against it), at the cost of one fetch.
                Err(e) => failed.push((n, e)),
            }
        }
        let damage = peer.ledger.integrity();
        if damage.corrupt_blocks.is_empty() && damage.state.is_some() {
            rebuild_state(&peer).await;
        }
        let wait = if peer.ledger.integrity().is_ok() {
            backoff = Backoff::default();
            Duration::from_secs(3600)
        } else {
            let wait = backoff.step();
            if let Some((n, e)) = failed.first() {
                // One line per round, and rounds back off.
                tracing::warn!(
                    blocks = failed.len(),
                    first = n,
                    error = %e,
                    retry_in_ms = wait.as_millis() as u64,
                    "cannot repair damaged blocks yet"
                );
            }
            wait
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// Rebuilds world state, history and tx index from the (sound) blocks.
async fn rebuild_state(peer: &Arc<Peer>) {
    let ledger = peer.ledger.clone();
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || {
        ledger.rebuild_derived(&crate::validator::committed_writes)
    })
    .await;
    match r {
        Ok(Ok(())) => {
            peer.metrics.repairs.inc();
            if let Err(e) = peer.lifecycle.refresh() {
                tracing::error!(error = %e, "cannot refresh chaincode definitions");
            }
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "damaged state repaired: rebuilt from the blocks"
            );
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot rebuild the state yet"),
        Err(e) => tracing::warn!(error = %e, "rebuild task failed"),
    }
}

/// Fetches block `n` from the first orderer that has it — or, failing
/// that, from a peer of another org — and stores it in place of the damaged
/// one (the ledger checks it against the chain: a source cannot make the
/// peer store anything else); returns where it came from.
async fn repair_one(peer: &Arc<Peer>, n: u64) -> Result<String, String> {
    let channel_id = peer.channel().id().to_owned();
    let own = peer.msp_id().as_str().to_owned();
    let others: Vec<String> = peer
        .channel()
        .org_ids()
        .iter()
        .filter(|o| **o != own)
        .flat_map(|o| peer.peer_endpoints(o))
        .collect();
    let sources = peer
        .orderers()
        .into_iter()
        .map(|a| (a, Source::Orderer))
        .chain(others.into_iter().map(|a| (a, Source::Peer)));
    let mut errors = Vec::new();
    for (addr, source) in sources {
        let block = match fetch(peer, &addr, source, &channel_id, n).await {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("{addr}: {e}"));
                continue;
            }
        };
        let ledger = peer.ledger.clone();
        let r = tokio::task::spawn_blocking(move || ledger.repair_block(n, &block))
            .await
            .map_err(|e| format!("repair task failed: {e}"))?;
        match r {
            Ok(()) => return Ok(format!("{} {addr}", source.name())),
            Err(e @ LedgerError::RepairRefused { .. }) => errors.push(format!("{addr}: {e}")),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(if errors.is_empty() {
        "no orderer or other org's peer configured".into()
    } else {
        errors.join("; ")
    })
}

/// Where a block is fetched from: the same request, two services.
#[derive(Debug, Clone, Copy)]
enum Source {
    Orderer,
    Peer,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Orderer => "orderer",
            Source::Peer => "peer",
        }
    }
}

async fn fetch(
    peer: &Arc<Peer>,
    addr: &str,
    source: Source,
    channel_id: &str,
    n: u64,
) -> Result<Block, String> {
    let ch = peer.connect(addr).await?;
    let blocks = match source {
        Source::Orderer => {
            let mut client = OrdererClient::from_channel(ch);
            tokio::time::timeout(
                FETCH_TIMEOUT,
                client.blocks(&peer.signer(), channel_id, Seek::Number(n), Seek::Number(n)),
            )
            .await
            .map_err(|_| "timed out".to_owned())??
        }
        Source::Peer => tokio::time::timeout(FETCH_TIMEOUT, from_peer(peer, ch, channel_id, n))
            .await
            .map_err(|_| "timed out".to_owned())??,
    };
    blocks
        .into_iter()
        .find(|b| b.header.as_ref().is_some_and(|h| h.number == n))
        .ok_or_else(|| format!("did not send block {n}"))
}

/// Block `n` from a peer's `protos.Deliver`.
async fn from_peer(
    peer: &Arc<Peer>,
    ch: tonic::transport::Channel,
    channel_id: &str,
    n: u64,
) -> Result<Vec<Block>, String> {
    use qcss_proto::protos::deliver_client::DeliverClient;
    use qcss_proto::protos::deliver_response::Type;
    let env = qcss_network::orderer_client::seek_envelope(
        &peer.signer(),
        channel_id,
        Seek::Number(n),
        Seek::Number(n),
        false,
    )
    .map_err(|e| format!("seek request: {e}"))?;
    let mut stream = DeliverClient::new(ch)
        .max_decoding_message_size(qcss_network::channel::GRPC_BLOCK_LIMIT)
        .deliver(tokio_stream::iter(vec![env]))
        .await
        .map_err(|s| format!("deliver: {}", s.message()))?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream
        .message()
        .await
        .map_err(|s| format!("deliver: {}", s.message()))?
    {
        match r.r#type {
            Some(Type::Block(b)) => out.push(b),
            Some(Type::Status(s)) if s == qcss_proto::common::Status::Success as i32 => break,
            Some(Type::Status(s)) => return Err(format!("deliver answered status {s}")),
            _ => {}
        }
    }
    Ok(out)
}

/// Scrubs the ledger every `scrub_interval_secs` until `stop` (never when 0).
pub(crate) async fn run_scrub(peer: Arc<Peer>, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_secs(peer.cfg.ledger.scrub_interval_secs);
    if interval.is_zero() {
        return;
    }
    let rate = (peer.cfg.ledger.scrub_mib_per_sec.max(1) as f64) * 1024.0 * 1024.0;
    // Damage is not remembered across restarts: the first pass comes soon.
    let mut wait = interval.min(FIRST_SCRUB_AFTER);
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut stop) => return,
        }
        wait = interval;
        let started = Instant::now();
        match scrub_pass(&peer, rate, &mut stop).await {
            Ok(Some((blocks, records, damage))) => {
                peer.metrics.scrubs.inc();
                let level_msg = if damage == 0 {
                    "ledger scrub found no damage"
                } else {
                    "ledger scrub found damage"
                };
                tracing::info!(
                    blocks,
                    records,
                    damage,
                    secs = started.elapsed().as_secs(),
                    "{level_msg}"
                );
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "ledger scrub stopped early"),
        }
    }
}

/// One pass over blocks then records; `None` if stopped. Returns blocks and
/// records read and the damage found.
async fn scrub_pass(
    peer: &Arc<Peer>,
    rate: f64,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<(u64, u64, usize)>, String> {
    let (mut blocks, mut records, mut damage) = (0, 0, 0);
    let mut next: Option<Vec<u8>> = Some(0u64.to_be_bytes().to_vec());
    let mut state_phase = false;
    loop {
        let ledger = peer.ledger.clone();
        let at = next.clone();
        let r = tokio::task::spawn_blocking(move || {
            if state_phase {
                ledger.scrub_state(at.as_deref(), SCRUB_RECORDS_PER_STEP)
            } else {
                let from = at
                    .and_then(|a| <[u8; 8]>::try_from(a).ok())
                    .map_or(0, u64::from_be_bytes);
                ledger.scrub_blocks(from, SCRUB_BLOCKS_PER_STEP)
            }
        })
        .await
        .map_err(|e| format!("scrub task failed: {e}"))?
        .map_err(|e| e.to_string())?;
        if state_phase {
            records += r.checked;
        } else {
            blocks += r.checked;
        }
        damage += r.new_damage.len();
        let pause = Duration::from_secs_f64(r.bytes as f64 / rate);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stopped(stop) => return Ok(None),
        }
        next = r.next;
        if next.is_none() {
            if state_phase {
                return Ok(Some((blocks, records, damage)));
            }
            state_phase = true;
        }
    }
}

/// Exponential backoff between reopen attempts.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_START,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt; doubles the one after, up to the cap.
    pub(crate) fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        d
    }
}

/// After a write failed in the store: waits (with `backoff`) and reopens it
/// until that works; returns false if stopped first. One log line per
/// attempt, and attempts back off to one per [`BACKOFF_CAP`].
pub(crate) async fn recover_store(
    peer: &Arc<Peer>,
    backoff: &mut Backoff,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut reopen_error = String::from("none yet");
    loop {
        let Some(failure) = peer.ledger.store_failure() else {
            return true;
        };
        let wait = backoff.step();
        peer.metrics.store_failures.inc();
        tracing::error!(
            disk_full = failure.disk_full,
            error = %failure.message,
            last_reopen_error = %reopen_error,
            retry_in_ms = wait.as_millis() as u64,
            "ledger store failed; committing stops until it is reopened"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(stop) => return false,
        }
        let ledger = peer.ledger.clone();
        let r = tokio::task::spawn_blocking(move || ledger.reopen()).await;
        match r {
            Ok(Ok(())) => {
                after_reopen(peer);
                peer.height.send_if_modified(|h| {
                    let now = peer.ledger.height();
                    let changed = *h != now;
                    *h = now;
                    changed
                });
                return true;
            }
            // Said on the next attempt's line: one line per attempt.
            Ok(Err(e)) => reopen_error = e.to_string(),
            Err(e) => reopen_error = format!("reopen task failed: {e}"),
        }
    }
}

/// A block whose commit reported the failure may have reached the disk
/// after all: apply what the committer skipped for it (config, lifecycle).
fn after_reopen(peer: &Peer) {
    let (before, now) = (peer.height(), peer.ledger.height());
    for n in before..now {
        match peer.ledger.block(n) {
            Ok(Some(b)) if qcss_network::block::is_config_block(&b) => {
                let valid = crate::ledger::filter_of(&b).first().copied()
                    == Some(qcss_proto::protos::TxValidationCode::Valid as u8);
                if valid {
                    peer.apply_config(&b);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(block = n, error = %e, "cannot read a block found after reopening")
            }
        }
    }
    if now > before
        && let Err(e) = peer.lifecycle.refresh()
    {
        tracing::error!(error = %e, "cannot refresh chaincode definitions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| b.step().as_millis() as u64).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn the_log_is_rate_limited_but_names_every_block() {
        let mut log = RateLimitedLog::default();
        log.note(Some(3), "x");
        assert!(log.last.is_some() && log.pending.is_empty());
        log.note(Some(4), "x");
        log.note(Some(5), "x");
        assert_eq!(log.pending, [4, 5]);
        assert_eq!(log.suppressed, 2);
        log.last = Some(Instant::now() - LOG_EVERY);
        log.note(None, "state");
        assert!(log.pending.is_empty());
        assert_eq!(log.suppressed, 0);
    }
}
