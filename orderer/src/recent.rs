//! The tx ids that could still be ordered a second time, in memory.
//!
//! The orderer refuses a tx id it has already ordered. It used to look each
//! one up in, and add it to, a sled tree of every tx id ever ordered: a
//! random-key insert into an ever-growing B-tree, about 10–14 µs per
//! envelope on every node — two thirds of applying a batch, and growing
//! with the chain.
//!
//! Every envelope is also held to the channel's time window: it is left out
//! unless its timestamp is within `tx_time_window_secs` (w) of the batch's
//! reference time T, which never goes backwards ([`crate::chain`] keeps it
//! monotonic). So an envelope ordered with timestamp `ts < T − w` can never
//! pass again: a copy of it is refused by the window before its tx id
//! matters. Only tx ids with `ts ≥ T − w` need remembering, and that is
//! what this set holds — bounded by the rate times the window (at 10,000
//! envelopes/s and w = 60 s, ~1.2 M entries, ~100 MB; at 500/s, ~5 MB).
//!
//! **Invariant** (what keeps every node's decisions identical): after each
//! applied batch, every ordered tx id whose timestamp is `≥ T − w` is in
//! the set. The set may hold more (pruning is per block), which changes no
//! decision: an extra entry is a tx id whose copies the window refuses
//! first. A node that restarts rebuilds the set from its blocks
//! ([`RecentTxIds::add_block`] over the blocks of the last `3w`), and so
//! does a node installing a snapshot or applying a config block that widens
//! the window.

use std::collections::{HashSet, VecDeque};

/// A tx id's key in the set: its 32 bytes when it is 64 lower-case hex
/// digits (every tx id Broadcast accepts is), else the SHA-256 of its text
/// (two different ids share a key only through a SHA-256 preimage).
pub fn key(tx_id: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    let lower_hex = tx_id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if tx_id.len() == 64 && lower_hex && hex::decode_to_slice(tx_id, &mut k).is_ok() {
        return k;
    }
    qcss_network::signing::sha256(tx_id.as_bytes())
}

/// The set, with the blocks its entries came from (oldest first) for pruning.
#[derive(Debug, Default)]
pub struct RecentTxIds {
    ids: HashSet<[u8; 32]>,
    /// Per block: the latest tx timestamp in it (s) and its keys.
    blocks: VecDeque<(i64, Vec<[u8; 32]>)>,
}

impl RecentTxIds {
    /// Whether `tx_id` is in the set.
    pub fn contains(&self, tx_id: &str) -> bool {
        !tx_id.is_empty() && self.ids.contains(&key(tx_id))
    }

    /// Adds one block's tx ids with their timestamps (seconds).
    pub fn add_block<'a>(&mut self, txs: impl IntoIterator<Item = (&'a str, i64)>) {
        let mut latest = i64::MIN;
        let mut keys = Vec::new();
        for (id, ts) in txs {
            if id.is_empty() {
                continue;
            }
            latest = latest.max(ts);
            let k = key(id);
            if self.ids.insert(k) {
                keys.push(k);
            }
        }
        if !keys.is_empty() {
            self.blocks.push_back((latest, keys));
        }
    }

    /// Forgets the blocks, oldest first, whose every tx timestamp is before
    /// `reference_ms − window_secs` (no copy of them can pass the window).
    pub fn prune(&mut self, reference_ms: u64, window_secs: u64) {
        let horizon = (reference_ms / 1000) as i64 - window_secs as i64;
        while let Some((latest, _)) = self.blocks.front() {
            if *latest >= horizon {
                break;
            }
            if let Some((_, keys)) = self.blocks.pop_front() {
                for k in keys {
                    self.ids.remove(&k);
                }
            }
        }
    }

    /// Number of tx ids held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
    const B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn blocks_are_forgotten_once_all_their_timestamps_leave_the_window() {
        let mut r = RecentTxIds::default();
        r.add_block([(A, 100), ("", 0)]);
        r.add_block([(B, 130), ("not hex", 95)]);
        assert!(r.contains(A) && r.contains(B) && r.contains("not hex"));
        assert!(!r.contains("") && !r.contains("other"));
        // T = 160 s, w = 60: horizon 100, block 1's latest (100) stays.
        r.prune(160_000, 60);
        assert!(r.contains(A));
        // T = 161 s: horizon 101, block 1 goes; block 2 (latest 130) stays
        // whole, including its older entry.
        r.prune(161_000, 60);
        assert!(!r.contains(A) && r.contains(B) && r.contains("not hex"));
        assert_eq!(r.len(), 2);
        r.prune(1_000_000, 60);
        assert!(r.is_empty());
    }

    #[test]
    fn hex_and_text_ids_do_not_collide() {
        assert_eq!(key(A)[0], 0xaa);
        assert_ne!(key("AA"), key("aa"));
        assert_ne!(
            key(&A.to_uppercase()),
            key(A),
            "only the canonical form is raw"
        );
    }
}
