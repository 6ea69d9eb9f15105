//! An orderer that lost its Raft state — its store was corrupted (moved
//! aside at start) or removed — re-syncs from the others without putting
//! committed entries at risk (issue 15).
//!
//! Raft's safety rests on every voter keeping what it acknowledged and how
//! it voted. A node that restarts with an empty log but votes at once can
//! elect a leader that lacks entries it had helped commit (say the node and
//! A committed entry E; A fails; C, without E, asks for votes and the empty
//! node grants it). So a node that *was* a member and comes back empty is
//! **recovering**: it refuses votes and pre-votes until it holds the log up
//! to the commit index of the first leader that reaches it, then votes
//! again. It still follows, applies and serves blocks as it catches up
//! (1,700 blocks take seconds), and `/healthz` says it is re-syncing.
//!
//! Whether the node was a member is a marker file beside the store
//! (`data_dir/raft-member`), written once Raft runs. Removing `store/`
//! alone (or the store being corrupted) therefore recovers safely; removing
//! the whole data directory is for a node that is leaving (or the whole
//! cluster being re-created), and is not detected.

use std::path::Path;
use std::sync::Mutex;

/// The file whose presence says this data directory once ran Raft.
pub const MEMBER_MARKER: &str = "raft-member";

/// The recovering state of one node.
#[derive(Debug, Default)]
pub struct Recovery {
    /// `None`: not recovering. `Some(None)`: recovering, no leader heard
    /// yet. `Some(Some(i))`: recovering until the log is applied to `i`.
    state: Mutex<Option<Option<u64>>>,
}

impl Recovery {
    /// A node that starts recovering (`true`) or not.
    pub fn new(recovering: bool) -> Self {
        Recovery {
            state: Mutex::new(recovering.then_some(None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Option<u64>>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why this node does not vote now, if it does not.
    pub fn refusal(&self) -> Option<String> {
        match *self.lock() {
            None => None,
            Some(None) => Some(
                "this node lost its Raft state and has not heard from a leader yet: \
                 it does not vote until it has re-synced"
                    .to_owned(),
            ),
            Some(Some(i)) => Some(format!(
                "this node lost its Raft state and is re-syncing: it does not vote until \
                 it has applied the log to index {i}"
            )),
        }
    }

    /// A leader's AppendEntries named `commit` as its commit index: the
    /// first one sets the index to catch up to.
    pub fn leader_commit(&self, commit: Option<u64>) {
        let mut s = self.lock();
        if let Some(None) = *s {
            *s = Some(Some(commit.unwrap_or(0)));
        }
    }

    /// The log is applied to `applied`: recovering ends once that reaches
    /// the index to catch up to. Returns true when it just ended.
    pub fn applied(&self, applied: Option<u64>) -> bool {
        let mut s = self.lock();
        match *s {
            Some(Some(target)) if applied.unwrap_or(0) >= target => {
                *s = None;
                true
            }
            _ => false,
        }
    }
}

/// Moves a corrupted store aside (to `store.corrupt-UNIXSECS`, kept for
/// inspection) so the node can start empty and re-sync; returns where it
/// went.
pub fn move_aside(store: &Path) -> std::io::Result<std::path::PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!(
        "{}.corrupt-{secs}",
        store
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("store")
    );
    let to = store.with_file_name(name);
    std::fs::rename(store, &to)?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovering_ends_at_the_first_leaders_commit_index() {
        let r = Recovery::new(false);
        assert!(r.refusal().is_none());
        let r = Recovery::new(true);
        assert!(r.refusal().unwrap().contains("not heard from a leader"));
        assert!(!r.applied(Some(100)), "no target yet");
        r.leader_commit(Some(40));
        r.leader_commit(Some(90)); // later leaders' indexes do not move it
        assert!(r.refusal().unwrap().contains("index 40"));
        assert!(!r.applied(Some(39)));
        assert!(r.applied(Some(40)));
        assert!(r.refusal().is_none());
        assert!(!r.applied(Some(41)), "ended once");
    }

    #[test]
    fn a_corrupted_store_is_kept_beside() {
        let d = tempfile::tempdir().unwrap();
        let store = d.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join("db"), b"x").unwrap();
        let to = move_aside(&store).unwrap();
        assert!(!store.exists());
        assert!(to.join("db").exists());
        assert!(
            to.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("store.corrupt-")
        );
    }
}
