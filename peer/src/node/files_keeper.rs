//! The file keeper: a background pass over this peer's MDSS store that
//! (1) re-reads every file it holds and repairs damaged or missing chunks
//! from another org's copy, and (2) keeps each file at the `[files]
//! replication` number of orgs (K, per kind of file), asking orgs that
//! should hold it and do not (a new org, or one that lost its copy) to
//! fetch it from here.
//!
//! Which orgs must fetch is `qcss_mdss::Replication::plan`: rendezvous
//! hashing over the channel's member orgs, so every holder computes the
//! same plan, and an org that lost a file ranks where it ranked before and
//! is asked again. Only one holder drives a file's replication — the holder
//! whose MSP id sorts first — so K holders do not all ask at once (a fetch
//! is idempotent anyway: it writes only what is missing). A file's kind is
//! its media type (`video/mp4`) or, if `per_kind` does not list that, its
//! top-level type (`video`).
//!
//! Bounded: at most [`FILES_PER_PASS`] files a pass (the next pass goes on
//! where this one stopped), one file at a time, every remote call with a
//! timeout, and the scrub's reads held to `[files] scrub_mib_per_sec` (a
//! store of large videos would otherwise be re-read at full disk speed,
//! starving the ledger's reads).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use qcss_mdss::{FileId, OrgId, Replication, Store};
use qcss_proto::qcss::mdss::files_client::FilesClient;
use qcss_proto::qcss::mdss::{FileRequest, RepairRequest};
use tokio::sync::watch;

use crate::node::files::{MAX_RESPONSE_BYTES, PeerFiles, repair_from_org};
use crate::node::{FilesSettings, Peer};

/// Most files one pass looks at.
pub(crate) const FILES_PER_PASS: usize = 256;
/// How long one remote call (a `Stat`, or a `Repair` of up to a file) may take.
const STAT_TIMEOUT: Duration = Duration::from_secs(10);
const REPAIR_TIMEOUT: Duration = Duration::from_secs(600);

/// What a round over the whole store found (for `/metrics` and `/healthz`).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeeperStatus {
    /// Files in the store.
    pub(crate) files: u64,
    /// Files whose copy here is damaged and could not be repaired from any org.
    pub(crate) unrepaired: Vec<FileId>,
    /// Files held by fewer orgs than their K after the pass.
    pub(crate) under_replicated: u64,
    /// When the round ended.
    pub(crate) last_pass: Option<Instant>,
}

/// The kind a file's replication is looked up by.
pub(crate) fn kind_of<'a>(r: &Replication, media_type: &'a str) -> &'a str {
    if r.per_kind.contains_key(media_type) {
        media_type
    } else {
        media_type.split('/').next().unwrap_or(media_type)
    }
}

/// Runs passes every `keep_secs` until `stop` (never if it is 0).
pub(crate) async fn run(
    peer: Arc<Peer>,
    files: Arc<PeerFiles>,
    settings: FilesSettings,
    mut stop: watch::Receiver<bool>,
) {
    if settings.keep_secs == 0 {
        return;
    }
    let every = Duration::from_secs(settings.keep_secs);
    let mut round = Round {
        rescrub: Duration::from_secs(settings.rescrub_secs),
        ..Round::default()
    };
    let mut next_pass = tokio::time::Instant::now() + every;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_pass) => {}
            // A client's read found a copy damaged: repair it now.
            _ = files.wake.notified() => {
                let pacer = Pacer::new(settings.scrub_mib_per_sec, stop.clone());
                repair_suspects(&peer, &files, &mut round, pacer).await;
                continue;
            }
            _ = stop.changed() => return,
        }
        next_pass = tokio::time::Instant::now() + every;
        let pacer = Pacer::new(settings.scrub_mib_per_sec, stop.clone());
        pass(
            &peer,
            &files.store,
            &settings.replication,
            &mut round,
            pacer,
        )
        .await;
        peer.metrics.files_keeper_passes.inc();
    }
}

/// Verifies (and repairs from another org) the files client reads found
/// damaged, whatever `rescrub_secs` says.
async fn repair_suspects(peer: &Peer, files: &PeerFiles, round: &mut Round, mut pacer: Pacer) {
    let (me, members) = orgs(peer);
    for id in files.take_suspects() {
        match scrub(peer, &files.store, id, &me, &members, &mut pacer).await {
            Some(true) => {
                round.verified.insert(id, Instant::now());
            }
            Some(false) => {
                round.verified.remove(&id);
            }
            None => return, // stopping
        }
    }
}

/// This peer's org and the channel's member orgs (as the channel
/// configuration says now): who repairs from whom.
fn orgs(peer: &Peer) -> (String, Vec<String>) {
    let members = peer
        .channel()
        .config()
        .orgs
        .iter()
        .map(|o| o.msp.msp_id.clone())
        .collect();
    (peer.msp_id().0.clone(), members)
}

/// A round over the whole store, in passes of at most [`FILES_PER_PASS`].
#[derive(Default)]
struct Round {
    /// Where the next pass starts.
    cursor: usize,
    /// What this round found so far.
    found: KeeperStatus,
    /// When each file was last found intact (read whole, or repaired) by
    /// this process: a restarted peer re-reads everything once.
    verified: HashMap<FileId, Instant>,
    /// How long a file found intact is not re-read (`[files] rescrub_secs`).
    rescrub: Duration,
}

/// Whether a file last found intact at `last` is due for another read.
fn due_for_scrub(last: Option<Instant>, now: Instant, rescrub: Duration) -> bool {
    match last {
        None => true,
        Some(t) => now.saturating_duration_since(t) >= rescrub,
    }
}

/// One pass over at most [`FILES_PER_PASS`] files; at the end of a round
/// what it found is published (`/metrics`, `/healthz`).
async fn pass(
    peer: &Peer,
    store: &Store,
    replication: &Replication,
    round: &mut Round,
    mut pacer: Pacer,
) {
    let s = store.clone();
    let ids = match tokio::task::spawn_blocking(move || s.list()).await {
        Ok(Ok(ids)) => ids,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "file keeper: cannot list the store");
            return;
        }
        Err(_) => return,
    };
    if round.cursor >= ids.len() {
        round.cursor = 0;
    }
    let batch: Vec<FileId> = ids
        .iter()
        .skip(round.cursor)
        .take(FILES_PER_PASS)
        .copied()
        .collect();
    let (me, members) = orgs(peer);
    round.verified.retain(|id, _| ids.binary_search(id).is_ok());
    for id in &batch {
        let now = Instant::now();
        let intact = if due_for_scrub(round.verified.get(id).copied(), now, round.rescrub) {
            let Some(intact) = scrub(peer, store, *id, &me, &members, &mut pacer).await else {
                return; // stopping
            };
            if intact {
                round.verified.insert(*id, now);
            } else {
                round.verified.remove(id);
            }
            intact
        } else {
            true
        };
        if !intact {
            round.found.unrepaired.push(*id);
        } else if !replicate(peer, store, replication, *id, &me, &members).await {
            round.found.under_replicated += 1;
        }
    }
    round.cursor += batch.len();
    if round.cursor >= ids.len() {
        let mut done = std::mem::take(&mut round.found);
        done.files = ids.len() as u64;
        done.last_pass = Some(Instant::now());
        *peer
            .files_keeper
            .write()
            .unwrap_or_else(PoisonError::into_inner) = done;
        round.cursor = 0;
    }
}

/// Holds the scrub's reads to a byte rate, on average since the pass
/// began, by sleeping on the blocking thread that reads (in slices, so that
/// a peer stopping is not kept waiting).
#[derive(Clone)]
struct Pacer {
    bytes_per_sec: f64,
    started: Instant,
    bytes: u64,
    stop: watch::Receiver<bool>,
}

impl Pacer {
    fn new(mib_per_sec: u64, stop: watch::Receiver<bool>) -> Self {
        Pacer {
            bytes_per_sec: mib_per_sec.max(1) as f64 * 1024.0 * 1024.0,
            started: Instant::now(),
            bytes: 0,
            stop,
        }
    }

    /// How long to wait after `read` more bytes, `elapsed` into the pass.
    fn due(&mut self, read: u64, elapsed: Duration) -> Duration {
        self.bytes += read;
        Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_sec).saturating_sub(elapsed)
    }

    /// Waits as [`Pacer::due`] says; false once the peer is stopping.
    fn pace(&mut self, read: u64) -> bool {
        let mut wait = self.due(read, self.started.elapsed());
        while !wait.is_zero() {
            if *self.stop.borrow() {
                return false;
            }
            let slice = wait.min(Duration::from_millis(100));
            std::thread::sleep(slice);
            wait -= slice;
        }
        !*self.stop.borrow()
    }
}

/// Re-reads `id` here at the pacer's rate; repairs it from the other orgs
/// in turn if damaged. False if it stays damaged; `None` if the peer is
/// stopping.
async fn scrub(
    peer: &Peer,
    store: &Store,
    id: FileId,
    me: &str,
    members: &[String],
    pacer: &mut Pacer,
) -> Option<bool> {
    let s = store.clone();
    // A copy goes to the blocking thread and comes back with its count (if
    // the thread dies, the pass goes on at the same rate, uncounted).
    let mut p = pacer.clone();
    let read = tokio::task::spawn_blocking(move || {
        let r = s.verify_paced(&id, &mut |len| p.pace(len));
        (r, p)
    })
    .await;
    let report = match read {
        Ok((r, p)) => {
            *pacer = p;
            match r {
                Ok(Some(r)) => r,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(file = %id, error = %e, "file keeper: cannot verify");
                    return Some(false);
                }
            }
        }
        Err(_) => return Some(false),
    };
    if report.is_intact() {
        return Some(true);
    }
    peer.metrics.files_damage_found.inc();
    tracing::warn!(file = %id, damaged = report.damaged.len(), "file keeper: damaged copy; repairing");
    for org in members.iter().filter(|m| *m != me) {
        match repair_from_org(peer, store, id, org).await {
            Ok((r, from)) => {
                peer.metrics.files_repaired.inc();
                tracing::info!(file = %id, %from, fetched = r.fetched, "file keeper: repaired");
                return Some(true);
            }
            Err(crate::node::files::RepairFailed::NoEndpoint(m))
            | Err(crate::node::files::RepairFailed::Unavailable(m)) => {
                tracing::debug!(file = %id, org = %org, error = %m, "file keeper: not from this org");
            }
        }
    }
    tracing::error!(file = %id, "file keeper: no org could repair this copy");
    Some(false)
}

/// Makes sure `id` is held by its K orgs. False if it is not (and could
/// not be made so this pass).
async fn replicate(
    peer: &Peer,
    store: &Store,
    replication: &Replication,
    id: FileId,
    me: &str,
    members: &[String],
) -> bool {
    let s = store.clone();
    let media = match tokio::task::spawn_blocking(move || s.manifest(&id)).await {
        Ok(Ok(m)) => m.media_type.as_str().to_owned(),
        _ => return false,
    };
    let mut holders: BTreeSet<String> = [me.to_owned()].into();
    for org in members.iter().filter(|m| *m != me) {
        if holds(peer, org, id).await == Some(true) {
            holders.insert(org.clone());
        }
    }
    let kind = kind_of(replication, &media);
    let k = replication.copies(kind) as usize;
    if holders.len() >= k {
        return true;
    }
    // One holder drives: the first by MSP id.
    if holders.first().map(String::as_str) != Some(me) {
        return false;
    }
    let as_orgs =
        |v: &[String]| -> Vec<OrgId> { v.iter().filter_map(|m| OrgId::new(m).ok()).collect() };
    let member_ids = as_orgs(members);
    let holder_ids: BTreeSet<OrgId> = as_orgs(&holders.iter().cloned().collect::<Vec<_>>())
        .into_iter()
        .collect();
    let plan = replication.plan(kind, &id, &member_ids, &holder_ids);
    let mut ok = plan.shortfall == 0;
    for org in &plan.fetch {
        match ask_to_fetch(peer, org.as_str(), id, me).await {
            Ok(addr) => {
                peer.metrics.files_copies_requested.inc();
                tracing::info!(file = %id, org = %org.as_str(), peer = %addr, kind, copies = k, "file keeper: copy made");
            }
            Err(e) => {
                ok = false;
                tracing::warn!(file = %id, org = %org.as_str(), error = %e, "file keeper: cannot make a copy");
            }
        }
    }
    ok
}

/// Whether org `msp_id`'s peer holds `id`: `None` if no peer of it answered.
async fn holds(peer: &Peer, msp_id: &str, id: FileId) -> Option<bool> {
    for addr in peer.peer_endpoints(msp_id) {
        let Ok(ch) = peer.connect(&addr).await else {
            continue;
        };
        let mut c = FilesClient::new(ch).max_decoding_message_size(MAX_RESPONSE_BYTES);
        let req = FileRequest { id: id.to_hex() };
        match tokio::time::timeout(STAT_TIMEOUT, c.stat(req)).await {
            Ok(Ok(_)) => return Some(true),
            Ok(Err(s)) if s.code() == tonic::Code::NotFound => return Some(false),
            Ok(Err(s)) => tracing::debug!(%addr, error = %s.message(), "file keeper: stat"),
            Err(_) => tracing::debug!(%addr, "file keeper: stat timed out"),
        }
        peer.disconnect(&addr).await;
    }
    None
}

/// Asks a peer of `msp_id` to fetch `id` from this org (`Repair`).
async fn ask_to_fetch(peer: &Peer, msp_id: &str, id: FileId, me: &str) -> Result<String, String> {
    let mut errors = Vec::new();
    for addr in peer.peer_endpoints(msp_id) {
        let ch = match peer.connect(&addr).await {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut c = FilesClient::new(ch).max_decoding_message_size(MAX_RESPONSE_BYTES);
        let req = RepairRequest {
            id: id.to_hex(),
            from_msp_id: me.to_owned(),
        };
        match tokio::time::timeout(REPAIR_TIMEOUT, c.repair(req)).await {
            Ok(Ok(_)) => return Ok(addr),
            Ok(Err(s)) => errors.push(format!("{addr}: {}", s.message())),
            Err(_) => errors.push(format!("{addr}: no answer within {REPAIR_TIMEOUT:?}")),
        }
        peer.disconnect(&addr).await;
    }
    if errors.is_empty() {
        errors.push("no peer endpoint known".into());
    }
    Err(errors.join("; "))
}

impl Peer {
    /// What the file keeper's last complete round found.
    pub(crate) fn files_status(&self) -> KeeperStatus {
        self.files_keeper
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_found_intact_is_not_re_read_until_rescrub_has_passed() {
        let t0 = Instant::now();
        let day = Duration::from_secs(86_400);
        assert!(due_for_scrub(None, t0, day), "never read: due");
        assert!(!due_for_scrub(
            Some(t0),
            t0 + Duration::from_secs(3_600),
            day
        ));
        assert!(due_for_scrub(Some(t0), t0 + day, day));
        assert!(due_for_scrub(Some(t0), t0, Duration::ZERO), "0: every pass");
    }

    #[test]
    fn a_kind_is_the_media_type_if_listed_else_its_top_level_type() {
        let mut r = Replication::default();
        assert_eq!(kind_of(&r, "video/mp4"), "video");
        assert_eq!(kind_of(&r, "application/pdf"), "application");
        r.per_kind.insert("application/pdf".into(), 4);
        r.per_kind.insert("video".into(), 1);
        assert_eq!(kind_of(&r, "application/pdf"), "application/pdf");
        assert_eq!(r.copies(kind_of(&r, "application/pdf")), 4);
        assert_eq!(r.copies(kind_of(&r, "video/webm")), 1);
        assert_eq!(r.copies(kind_of(&r, "image/png")), 2);
    }

    #[test]
    fn the_pacer_holds_the_average_rate_since_the_pass_began() {
        let (_tx, rx) = watch::channel(false);
        let mib = 1024 * 1024;
        let mut p = Pacer::new(2, rx.clone());
        // 1 MiB at 2 MiB/s is due at 0.5 s: at once, wait 0.5 s.
        assert_eq!(p.due(mib, Duration::ZERO), Duration::from_millis(500));
        // 2 MiB in all is due at 1 s; 0.8 s have gone.
        assert_eq!(
            p.due(mib, Duration::from_millis(800)),
            Duration::from_millis(200)
        );
        // Behind schedule (slow disk): no wait.
        assert_eq!(p.due(mib, Duration::from_secs(5)), Duration::ZERO);
        // 0 counts as 1 MiB/s.
        let mut p = Pacer::new(0, rx);
        assert_eq!(p.due(mib, Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn a_stopping_peer_is_not_kept_waiting_by_the_pacer() {
        let (tx, rx) = watch::channel(false);
        let mut p = Pacer::new(1, rx);
        tx.send(true).unwrap();
        let t = Instant::now();
        assert!(!p.pace(64 * 1024 * 1024), "64 MiB at 1 MiB/s, but stopping");
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
