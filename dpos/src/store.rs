//! Durable storage in sled: every block, the irreversible chain by height,
//! a checkpoint of the state at an irreversible block, and which blocks are
//! still reversible. Reopening rebuilds the state at the last irreversible
//! block (LIB) by re-applying the irreversible blocks after the checkpoint,
//! then the fork database by re-applying the reversible blocks, so nothing
//! above the LIB needs an undo log and a node killed at any moment restarts
//! consistent: each write is one atomic sled batch.
//!
//! The checkpoint is rewritten only every [`CHECKPOINT_EVERY`] irreversible
//! blocks, not on every finalize: the state grows with every account (a
//! reward epoch adds one per consumer), and encoding all of it per block
//! made a syncing node's cost per block grow with the state instead of the
//! block (`qcss bench chain`, sync figure with `--sync-accounts`).
//!
//! With finality votes, finality certificates are kept too (`C/` by source
//! height): one for each irreversible block holding an anchor, for anchor
//! proofs, and one at least every `CERTIFICATE_EVERY` blocks, for sync.

use std::path::Path;
use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::block::{Block, Certificate};
use crate::chain::{BlockError, apply_block};
use crate::codec::{self, CodecError};
use crate::hash::Hash32;
use crate::params::Params;
use crate::state::State;

/// Irreversible blocks between two state checkpoints: a restart re-applies
/// at most this many blocks (at 30-s slots about two hours of chain; see
/// `reopening_replays_the_blocks_after_the_checkpoint`; the cost per block is
/// `qcss bench chain`'s sync figure).
pub const CHECKPOINT_EVERY: u64 = 256;

/// Which end of a range of kept certificates ([`Store::certificate_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The lowest source height.
    Lowest,
    /// The highest.
    Highest,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed.
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode: the directory is damaged.
    #[error("stored {what} does not decode: {err}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Decoder error.
        err: CodecError,
    },
    /// The directory was written by a build with another state format.
    #[error(
        "the store's state format is {found}, this build reads {want}: move the data directory \
         away and restart, and the node syncs the chain again from its peers"
    )]
    Format {
        /// This build's.
        want: u32,
        /// The directory's.
        found: u32,
    },
    /// An irreversible block after the checkpoint no longer applies to it:
    /// the directory is damaged.
    #[error(
        "stored irreversible block {height} does not apply to the stored state: {err}; move \
         the data directory away and restart, and the node syncs the chain again from its peers"
    )]
    Replay {
        /// Its height.
        height: u64,
        /// Why it does not apply.
        err: Box<BlockError>,
    },
    /// The height index names a block the directory does not hold.
    #[error(
        "stored irreversible block {height} is missing; move the data directory away and \
         restart, and the node syncs the chain again from its peers"
    )]
    MissingBlock {
        /// Its height.
        height: u64,
    },
    /// The directory holds another chain.
    #[error("the store holds chain {found}, not {want}")]
    WrongChain {
        /// Expected.
        want: Hash32,
        /// Found.
        found: Hash32,
    },
}

const CHAIN: &[u8] = b"M/chain";
const LIB_STATE: &[u8] = b"M/lib";
const VOTED: &[u8] = b"M/voted";
const LATEST_CERTIFICATE: &[u8] = b"M/cert";
const FORMAT_KEY: &[u8] = b"M/format";
/// The state's encoding: 1 before anchoring (no `consortia`), 2 with
/// anchoring, 3 with consumer rewards (`reward_paid`, each consortium's
/// reward progress). A directory without the key but with a state is format 1.
const FORMAT: u32 = 3;
/// Local data is trusted more than network data, but a bound still applies.
const MAX_STATE_BYTES: usize = 1 << 34;
/// A certificate: a header and at most 64 votes, far under this.
const MAX_CERTIFICATE_BYTES: usize = 64 << 10;

fn decode_certificate(v: &[u8]) -> Result<Certificate, StoreError> {
    codec::decode(v, MAX_CERTIFICATE_BYTES).map_err(|err| StoreError::Corrupt {
        what: "finality certificate",
        err,
    })
}

fn key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct Store {
    tree: sled::Tree,
    _db: sled::Db,
    max_block_bytes: u32,
    /// Height of the state in `M/lib`.
    checkpoint: Arc<AtomicU64>,
    checkpoint_every: u64,
}

/// What a reopened store holds.
#[derive(Debug)]
pub struct Loaded {
    /// State at the LIB.
    pub lib_state: State,
    /// The LIB block (none at genesis).
    pub lib_block: Option<Block>,
    /// Reversible blocks, by height.
    pub pending: Vec<Block>,
    /// This node's last finality vote: (source height, target height).
    pub voted: (u64, u64),
    /// The newest finality certificate this node saw, and the source
    /// height of the newest it kept under `C/`.
    pub certificates: (Option<Certificate>, u64),
}

impl Store {
    /// Opens (or creates) the store in `dir` for chain `chain_id`.
    pub fn open(dir: &Path, chain_id: Hash32, max_block_bytes: u32) -> Result<Self, StoreError> {
        let db = sled::open(dir)?;
        let tree = db.open_tree("dpos")?;
        match tree.get(CHAIN)? {
            Some(v) => {
                let found = codec::decode::<Hash32>(&v, 32).map_err(|err| StoreError::Corrupt {
                    what: "chain id",
                    err,
                })?;
                if found != chain_id {
                    return Err(StoreError::WrongChain {
                        want: chain_id,
                        found,
                    });
                }
            }
            None => {
                tree.insert(CHAIN, codec::encode(&chain_id))?;
            }
        }
        let found = match tree.get(FORMAT_KEY)? {
            Some(v) => codec::decode::<u32>(&v, 4).map_err(|err| StoreError::Corrupt {
                what: "format",
                err,
            })?,
            None if tree.get(LIB_STATE)?.is_some() => 1,
            None => {
                tree.insert(FORMAT_KEY, codec::encode(&FORMAT))?;
                FORMAT
            }
        };
        if found != FORMAT {
            return Err(StoreError::Format {
                want: FORMAT,
                found,
            });
        }
        Ok(Self {
            tree,
            _db: db,
            max_block_bytes,
            checkpoint: Arc::new(AtomicU64::new(0)),
            checkpoint_every: CHECKPOINT_EVERY,
        })
    }

    /// Checkpoints every `n` irreversible blocks instead of
    /// [`CHECKPOINT_EVERY`] (tests; 1 writes the state on every finalize).
    pub fn with_checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n.max(1);
        self
    }

    /// The stored chain, or `None` for a fresh store: the checkpoint with
    /// every irreversible block after it re-applied (`params` are the
    /// chain's), and the reversible blocks.
    pub fn load(&self, params: &Params) -> Result<Option<Loaded>, StoreError> {
        let Some(v) = self.tree.get(LIB_STATE)? else {
            return Ok(None);
        };
        let mut lib_state: State =
            codec::decode(&v, MAX_STATE_BYTES).map_err(|err| StoreError::Corrupt {
                what: "state checkpoint",
                err,
            })?;
        self.checkpoint.store(lib_state.height, Ordering::Relaxed);
        while let Some(id) = self.irreversible_id(lib_state.height + 1)? {
            let height = lib_state.height + 1;
            let b = self
                .block(&id)?
                .ok_or(StoreError::MissingBlock { height })?;
            lib_state = apply_block(&lib_state, &b, params).map_err(|err| StoreError::Replay {
                height: b.header.height,
                err: Box::new(err),
            })?;
        }
        let lib_block = self.block(&lib_state.head_id)?;
        let mut pending = Vec::new();
        for kv in self.tree.scan_prefix(b"P/") {
            let (k, _) = kv?;
            let mut id = [0u8; 32];
            if k.len() == 34 {
                id.copy_from_slice(&k[2..]);
            }
            if let Some(b) = self.block(&Hash32(id))? {
                pending.push(b);
            }
        }
        pending.sort_by_key(|b| b.header.height);
        let voted = match self.tree.get(VOTED)? {
            Some(v) => codec::decode(&v, 16).map_err(|err| StoreError::Corrupt {
                what: "last finality vote",
                err,
            })?,
            None => (0, 0),
        };
        let latest = self
            .tree
            .get(LATEST_CERTIFICATE)?
            .map(|v| decode_certificate(&v))
            .transpose()?;
        let kept = self
            .certificate_in(0, u64::MAX, End::Highest)?
            .map_or(0, |c| c.source_height());
        Ok(Some(Loaded {
            lib_state,
            lib_block,
            pending,
            voted,
            certificates: (latest, kept),
        }))
    }

    /// Writes the genesis state as the first checkpoint.
    pub fn init(&self, genesis_state: &State) -> Result<(), StoreError> {
        self.checkpoint
            .store(genesis_state.height, Ordering::Relaxed);
        self.tree.insert(LIB_STATE, codec::encode(genesis_state))?;
        self.tree.flush()?;
        Ok(())
    }

    /// A block by id.
    pub fn block(&self, id: &Hash32) -> Result<Option<Block>, StoreError> {
        match self.tree.get(key(b"B/", &id.0))? {
            Some(v) => Block::decode(&v, self.max_block_bytes)
                .map(Some)
                .map_err(|err| StoreError::Corrupt { what: "block", err }),
            None => Ok(None),
        }
    }

    /// The irreversible block at `height`.
    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        match self.irreversible_id(height)? {
            Some(id) => self.block(&id),
            None => Ok(None),
        }
    }

    fn irreversible_id(&self, height: u64) -> Result<Option<Hash32>, StoreError> {
        match self.tree.get(key(b"H/", &height.to_be_bytes()))? {
            Some(v) => {
                codec::decode::<Hash32>(&v, 32)
                    .map(Some)
                    .map_err(|err| StoreError::Corrupt {
                        what: "height index",
                        err,
                    })
            }
            None => Ok(None),
        }
    }

    /// Records a new reversible block.
    pub fn put_block(&self, block: &Block) -> Result<(), StoreError> {
        let id = block.id();
        let mut batch = sled::Batch::default();
        batch.insert(key(b"B/", &id.0), block.encode());
        batch.insert(key(b"P/", &id.0), &[][..]);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Records that `blocks` became irreversible with `lib_state` the state
    /// after the last of them, and forgets reversible blocks not in `keep`.
    /// `lib_state` is written as the new checkpoint when the last one is
    /// `checkpoint_every` ([`CHECKPOINT_EVERY`] by default) blocks old. One atomic batch, flushed.
    pub fn finalize(
        &self,
        lib_state: &State,
        blocks: &[Arc<Block>],
        keep: &dyn Fn(&Hash32) -> bool,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for b in blocks {
            let id = b.id();
            batch.insert(
                key(b"H/", &b.header.height.to_be_bytes()),
                codec::encode(&id),
            );
            batch.remove(key(b"P/", &id.0));
        }
        let finals: std::collections::HashSet<Hash32> = blocks.iter().map(|b| b.id()).collect();
        for kv in self.tree.scan_prefix(b"P/") {
            let (k, _) = kv?;
            let mut id = [0u8; 32];
            if k.len() == 34 {
                id.copy_from_slice(&k[2..]);
            }
            let id = Hash32(id);
            if !finals.contains(&id) && !keep(&id) {
                batch.remove(k.clone());
                batch.remove(key(b"B/", &id.0));
            }
        }
        let checkpoint = lib_state.height
            >= self
                .checkpoint
                .load(Ordering::Relaxed)
                .saturating_add(self.checkpoint_every);
        if checkpoint {
            batch.insert(LIB_STATE, codec::encode(lib_state));
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        if checkpoint {
            self.checkpoint.store(lib_state.height, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Keeps the finality certificate of irreversible block `source_height`
    /// (`C/` + height): what anchor proofs show finality with.
    pub fn put_certificate(&self, cert: &Certificate) -> Result<(), StoreError> {
        self.tree.insert(
            key(b"C/", &cert.source_height().to_be_bytes()),
            codec::encode(cert),
        )?;
        Ok(())
    }

    /// Records the newest finality certificate (written with the next
    /// [`Store::finalize`]'s flush): a node serving a chain whose producers
    /// have stopped can still show a syncing node its LIB.
    pub fn set_latest_certificate(&self, cert: &Certificate) -> Result<(), StoreError> {
        self.tree.insert(LATEST_CERTIFICATE, codec::encode(cert))?;
        Ok(())
    }

    /// The kept certificate with the lowest (`Lowest`) or highest source
    /// height in `from ..= to`.
    pub fn certificate_in(
        &self,
        from: u64,
        to: u64,
        end: End,
    ) -> Result<Option<Certificate>, StoreError> {
        let mut range = self
            .tree
            .range(key(b"C/", &from.to_be_bytes())..=key(b"C/", &to.to_be_bytes()));
        let found = match end {
            End::Lowest => range.next(),
            End::Highest => range.next_back(),
        };
        found
            .transpose()?
            .map(|(_, v)| decode_certificate(&v))
            .transpose()
    }

    /// Records this node's last finality vote, (source height, target
    /// height) (flushed before the vote is sent, so a restart never votes
    /// twice for a height or from a lower source).
    pub fn set_voted(&self, voted: (u64, u64)) -> Result<(), StoreError> {
        self.tree.insert(VOTED, codec::encode(&voted))?;
        self.tree.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::block::Confirmation;
    use crate::node::{Node, NodeError, VirtualClock};
    use crate::testkit::Kit;
    use crate::tx::TxKind;

    use super::{End, StoreError};

    /// Four producers; node 0 stores its chain in `dir`. Runs `slots`
    /// slots, delivering every block and (until `confirm_until`) every
    /// confirmation to every node.
    fn run(kit: &Kit, dir: &std::path::Path, slots: u64, confirm_until: u64) -> Vec<Node> {
        run_every(kit, dir, slots, confirm_until, super::CHECKPOINT_EVERY)
    }

    /// [`run`], node 0 checkpointing every `every` irreversible blocks.
    fn run_every(
        kit: &Kit,
        dir: &std::path::Path,
        slots: u64,
        confirm_until: u64,
        every: u64,
    ) -> Vec<Node> {
        let clock = VirtualClock::default();
        let keys: Vec<_> = kit.producers.values().cloned().collect();
        let mut nodes: Vec<Node> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let c = Arc::new(clock.clone());
                if i == 0 {
                    Node::open_checkpointing(dir, &kit.genesis, Some(k.clone()), c, every).unwrap()
                } else {
                    Node::in_memory(&kit.genesis, Some(k.clone()), c).unwrap()
                }
            })
            .collect();
        let u = &kit.users[0];
        for n in &mut nodes {
            n.submit_tx(kit.tx(u, 0, TxKind::Burn { amount: 7 }))
                .unwrap();
        }
        for slot in 1..=slots {
            clock.set(slot * kit.params.slot_ms);
            for i in 0..nodes.len() {
                let Some(b) = nodes[i].produce_if_scheduled().unwrap() else {
                    continue;
                };
                let mut confs: Vec<Confirmation> = Vec::new();
                for (j, n) in nodes.iter_mut().enumerate() {
                    if j != i
                        && let Ok(crate::node::BlockOutcome::Added { votes }) =
                            n.on_block(b.clone())
                    {
                        confs.extend(votes);
                    }
                }
                if slot <= confirm_until {
                    for c in &confs {
                        for n in nodes.iter_mut() {
                            n.on_confirmation(c).unwrap();
                        }
                    }
                }
            }
        }
        nodes
    }

    /// Reopens a sled directory this process just closed: sled's background
    /// flusher may hold the directory lock a moment after the last handle is
    /// dropped (seen on a busy machine), so retry for up to 5 s.
    fn retry<T, E: std::fmt::Debug>(mut open: impl FnMut() -> Result<T, E>) -> T {
        for _ in 0..250 {
            if let Ok(v) = open() {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        open().unwrap()
    }

    /// Certificates are found by the lowest source height in a range and
    /// survive a reopen.
    #[test]
    fn certificates_are_kept_by_source_height() {
        let kit = Kit::new();
        let dir = tempfile::tempdir().unwrap();
        let chain_id = kit.state().chain_id;
        let key = kit.producers.values().next().unwrap();
        let cert = |h: u64| crate::block::Certificate {
            target: crate::block::Block::build(
                key,
                chain_id,
                h,
                h,
                crate::hash::Hash32([h as u8; 32]),
                0,
                crate::hash::Hash32([0; 32]),
                vec![],
            )
            .signed_header(),
            votes: vec![(key.address(), key.sign(&crate::hash::Hash32([1; 32])))],
        };
        {
            let store = super::Store::open(dir.path(), chain_id, 1 << 20).unwrap();
            store.put_certificate(&cert(10)).unwrap();
            store.put_certificate(&cert(6)).unwrap();
            assert_eq!(store.certificate_in(1, 4, End::Lowest).unwrap(), None);
            assert_eq!(
                store.certificate_in(1, 20, End::Lowest).unwrap(),
                Some(cert(6))
            );
            // Keyed by the source: the target's parent.
            assert_eq!(
                store.certificate_in(5, 5, End::Lowest).unwrap(),
                Some(cert(6))
            );
            assert_eq!(
                store.certificate_in(6, 20, End::Lowest).unwrap(),
                Some(cert(10))
            );
        }
        let store = retry(|| super::Store::open(dir.path(), chain_id, 1 << 20));
        assert_eq!(
            store.certificate_in(7, 9, End::Lowest).unwrap(),
            Some(cert(10))
        );
        assert_eq!(
            store.certificate_in(10, u64::MAX, End::Lowest).unwrap(),
            None
        );
        assert_eq!(
            store.certificate_in(0, u64::MAX, End::Highest).unwrap(),
            Some(cert(10))
        );
    }

    #[test]
    fn reopening_gives_the_same_chain_and_state() {
        let kit = Kit::new();
        let dir = tempfile::tempdir().unwrap();
        let nodes = run(&kit, dir.path(), 20, 17);
        let before = nodes[0].status();
        let state = nodes[0].head_state().clone();
        assert_eq!(before.head_height, 20);
        assert!(
            before.lib_height >= 17 && before.lib_height < 20,
            "some blocks must stay reversible: {before:?}"
        );
        assert!(!nodes[0].fork().is_empty());
        assert_eq!(state.burned, 7, "the burn made it into a block");
        let irreversible: Vec<_> = (1..=before.lib_height)
            .map(|h| nodes[0].irreversible_id(h).unwrap())
            .collect();
        drop(nodes);

        let clock = Arc::new(VirtualClock::default());
        let reopened = retry(|| Node::open(dir.path(), &kit.genesis, None, clock.clone()));
        assert_eq!(reopened.status(), before);
        assert_eq!(reopened.head_state(), &state);
        let again: Vec<_> = (1..=before.lib_height)
            .map(|h| reopened.irreversible_id(h).unwrap())
            .collect();
        assert_eq!(again, irreversible);
        assert!(again.iter().all(Option::is_some));
        drop(reopened);

        // The same directory refuses another chain.
        let mut other = kit.genesis.clone();
        other.name = "another".into();
        let wrong = |r: &Result<Node, NodeError>| {
            matches!(r, Err(NodeError::Store(StoreError::WrongChain { .. })))
        };
        let mut r = Node::open(dir.path(), &other, None, clock.clone());
        for _ in 0..250 {
            if wrong(&r) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            r = Node::open(dir.path(), &other, None, clock.clone());
        }
        assert!(wrong(&r), "{:?}", r.err());
    }

    /// The state is written every `every` irreversible blocks; reopening
    /// re-applies the irreversible blocks after it and gets the same LIB and
    /// head state, whatever the interval.
    #[test]
    fn reopening_replays_the_blocks_after_the_checkpoint() {
        let kit = Kit::new();
        for every in [1, 3, 7, super::CHECKPOINT_EVERY] {
            let dir = tempfile::tempdir().unwrap();
            let nodes = run_every(&kit, dir.path(), 20, 17, every);
            let before = nodes[0].status();
            let state = nodes[0].head_state().clone();
            let lib_state = nodes[0].fork().lib().state.clone();
            let chain_id = nodes[0].chain_id();
            drop(nodes);
            let checkpoint = {
                let db = retry(|| sled::open(dir.path()));
                let tree = db.open_tree("dpos").unwrap();
                let v = tree.get(super::LIB_STATE).unwrap().unwrap();
                crate::codec::decode::<crate::state::State>(&v, super::MAX_STATE_BYTES)
                    .unwrap()
                    .height
            };
            assert!(
                checkpoint <= before.lib_height && before.lib_height - checkpoint < every,
                "every {every}: checkpoint at {checkpoint}, LIB {}",
                before.lib_height
            );
            let store =
                retry(|| super::Store::open(dir.path(), chain_id, kit.params.max_block_bytes));
            let loaded = store.load(&kit.params).unwrap().unwrap();
            assert_eq!(loaded.lib_state, *lib_state, "every {every}");
            drop(loaded);
            drop(store);
            let clock = Arc::new(VirtualClock::default());
            let reopened = retry(|| {
                Node::open_checkpointing(dir.path(), &kit.genesis, None, clock.clone(), every)
            });
            assert_eq!(reopened.status(), before, "every {every}");
            assert_eq!(reopened.head_state(), &state, "every {every}");
        }
    }

    /// An irreversible block after the checkpoint that is gone is a damaged
    /// directory, said by height, not a shorter chain.
    #[test]
    fn a_missing_block_after_the_checkpoint_is_refused_by_height() {
        let kit = Kit::new();
        let dir = tempfile::tempdir().unwrap();
        let nodes = run_every(&kit, dir.path(), 20, 17, 1_000);
        let chain_id = nodes[0].chain_id();
        let id = nodes[0].irreversible_id(5).unwrap().unwrap();
        drop(nodes);
        let store = retry(|| super::Store::open(dir.path(), chain_id, kit.params.max_block_bytes));
        store.tree.remove(super::key(b"B/", &id.0)).unwrap();
        let e = store.load(&kit.params).unwrap_err();
        assert!(matches!(e, StoreError::MissingBlock { height: 5 }), "{e}");
        assert!(e.to_string().contains("syncs the chain again"), "{e}");
    }

    #[test]
    fn a_store_of_the_old_state_format_is_refused_by_name() {
        let kit = Kit::new();
        let dir = tempfile::tempdir().unwrap();
        let nodes = run(&kit, dir.path(), 3, 0);
        let chain_id = nodes[0].chain_id();
        drop(nodes);
        {
            // What a build from before anchoring left: a state, no format key.
            let db = retry(|| sled::open(dir.path()));
            let tree = db.open_tree("dpos").unwrap();
            tree.remove(super::FORMAT_KEY).unwrap();
            db.flush().unwrap();
        }
        let e = loop {
            match super::Store::open(dir.path(), chain_id, kit.params.max_block_bytes) {
                Err(StoreError::Sled(_)) => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                other => break other.unwrap_err(),
            }
        };
        assert!(matches!(e, StoreError::Format { want: 3, found: 1 }), "{e}");
        assert!(e.to_string().contains("syncs the chain again"), "{e}");
    }

    /// Killed after a block was stored but before what it finalized was
    /// recorded: reopening re-applies it, records the finalized blocks and
    /// leaves no gap in the irreversible index.
    #[test]
    fn crash_between_block_write_and_finalize_recovers() {
        let kit = Kit::new();
        let dir = tempfile::tempdir().unwrap();
        let nodes = run(&kit, dir.path(), 12, 0);
        let head = nodes[0].head_state().clone();
        let lib_before = nodes[0].status().lib_height;
        drop(nodes);
        // Four more blocks (a full round among heights lib+1 ..), stored the
        // way `Node` stores them, then "killed" before finalize().
        let store =
            retry(|| super::Store::open(dir.path(), head.chain_id, kit.params.max_block_bytes));
        let mut after = (*head).clone();
        let mut next = None;
        for i in 1..=4 {
            let b = kit.block(&after, head.slot + i, vec![]);
            after = crate::chain::apply_block(&after, &b, &kit.params).unwrap();
            store.put_block(&b).unwrap();
            next = Some(b);
        }
        drop(store);
        let next = next.unwrap();
        let clock = Arc::new(VirtualClock::default());
        let node = retry(|| Node::open(dir.path(), &kit.genesis, None, clock.clone()));
        let st = node.status();
        assert_eq!(st.head_id, next.id());
        assert_eq!(node.head_state().as_ref(), &after);
        assert!(
            st.lib_height > lib_before,
            "the new block finalized more: {lib_before} -> {}",
            st.lib_height
        );
        for h in 1..=st.lib_height {
            assert!(node.irreversible_id(h).unwrap().is_some(), "gap at {h}");
        }
        drop(node);
        // And the recorded LIB survives one more restart.
        let again = retry(|| Node::open(dir.path(), &kit.genesis, None, clock.clone()));
        assert_eq!(again.status(), st);
    }
}
