//! The block state transition: `apply_block(parent_state, block)` checks a
//! block against its parent's state and returns the new state, or a
//! [`BlockError`] and no new state. It runs round boundaries (schedule
//! activation, elections, the shuffle), missed-slot accounting, the
//! transactions, rewards and the production-implied irreversible height.
//! Pure: no clock, no I/O (the "not from the future" check needs a clock and
//! lives in [`crate::node`]).

use std::collections::HashSet;

use crate::address::{Address, verify};
use crate::block::Block;
use crate::codec::CodecError;
use crate::hash::{Hash32, merkle_root};
use crate::params::Params;
use crate::schedule::{ElectionRules, Schedule, elect, round_seed, shuffle};
use crate::state::{Staged, State, TxContext, TxError};
use crate::tx::SignedTx;

/// Why a block was refused. The caller's state is unchanged in every case.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum BlockError {
    /// The bytes did not decode (or were over the size limit).
    #[error("undecodable block: {0}")]
    Codec(#[from] CodecError),
    /// Made for another chain.
    #[error("block {0} is for another chain")]
    WrongChain(Hash32),
    /// Height is not parent + 1.
    #[error("block {id} has height {got}, expected {want}")]
    BadHeight {
        /// Block.
        id: Hash32,
        /// Parent height + 1.
        want: u64,
        /// Given.
        got: u64,
    },
    /// Slot not after the parent's.
    #[error("block {id} slot {got} is not after its parent's slot {parent}")]
    SlotNotAfterParent {
        /// Block.
        id: Hash32,
        /// Parent's slot.
        parent: u64,
        /// Given.
        got: u64,
    },
    /// Slot starts too far ahead of the local clock.
    #[error("block {id} is from the future: slot {slot}, now slot {now_slot}")]
    FromFuture {
        /// Block.
        id: Hash32,
        /// Block slot.
        slot: u64,
        /// Local slot.
        now_slot: u64,
    },
    /// Not made by the producer scheduled for its slot.
    #[error("block {id} slot {slot} was produced by {got:?}, scheduled is {want:?}")]
    WrongProducer {
        /// Block.
        id: Hash32,
        /// Slot.
        slot: u64,
        /// Scheduled producer.
        want: Address,
        /// Signer.
        got: Address,
    },
    /// Names another schedule version than the active one.
    #[error("block {id} names schedule version {got}, active is {want}")]
    WrongScheduleVersion {
        /// Block.
        id: Hash32,
        /// Active version.
        want: u64,
        /// Given.
        got: u64,
    },
    /// Producer signature does not verify.
    #[error("bad producer signature on block {0}")]
    BadSignature(Hash32),
    /// `tx_root` does not match the transactions.
    #[error("block {0} has a wrong transaction root")]
    BadTxRoot(Hash32),
    /// `block_mmr_root` does not match the chain.
    #[error("block {0} has a wrong block MMR root")]
    BadMmrRoot(Hash32),
    /// More transactions than allowed.
    #[error("block {id} has {got} transactions, at most {max}")]
    TooManyTxs {
        /// Block.
        id: Hash32,
        /// Given.
        got: usize,
        /// Limit.
        max: u32,
    },
    /// The same transaction twice.
    #[error("transaction {0} appears twice in one block")]
    DuplicateTx(Hash32),
    /// Two transactions spending the same (sender, nonce).
    #[error("{sender} spends nonce {nonce} twice in one block")]
    DoubleSpend {
        /// Sender.
        sender: Address,
        /// Nonce.
        nonce: u64,
    },
    /// A transaction is refused.
    #[error("transaction {index} ({id}) refused: {error}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// Its id.
        id: Hash32,
        /// Why.
        error: TxError,
    },
    /// The parent is unknown (the node may fetch it).
    #[error("block {id} builds on unknown block {prev}")]
    Unlinkable {
        /// Block.
        id: Hash32,
        /// Unknown parent.
        prev: Hash32,
    },
    /// At or below the last irreversible block: never accepted.
    #[error("block {id} at height {height} is at or below the irreversible height {lib}")]
    BelowIrreversible {
        /// Block.
        id: Hash32,
        /// Its height.
        height: u64,
        /// Local irreversible height.
        lib: u64,
    },
}

/// The producer scheduled for `slot` on the branch whose head state is
/// `head`, with the schedule version a block there must name. `slot` must
/// be after the head's slot.
pub fn scheduled_producer(head: &State, slot: u64, params: &Params) -> (Address, u64) {
    let n = params.round_slots();
    let round = slot / n;
    let idx = (slot % n) as usize;
    if round == head.round {
        return (head.order[idx], head.schedule.version);
    }
    // A later round: only a pending schedule can change the set before it
    // (elections only propose), and the seed is the head's id.
    let (set, version) = match &head.pending {
        Some(p) if head.dpos_lib >= p.height => (&p.schedule.producers, head.schedule.version + 1),
        _ => (&head.schedule.producers, head.schedule.version),
    };
    let order = shuffle(set, &round_seed(&head.chain_id, round, &head.head_id));
    (order[idx], version)
}

impl State {
    fn start_round(&mut self, round: u64, params: &Params) {
        if let Some(p) = self.pending.take() {
            if self.dpos_lib >= p.height {
                self.schedule = Schedule {
                    version: self.schedule.version + 1,
                    producers: p.schedule.producers,
                };
                self.schedule_lib_floor = self.dpos_lib;
            } else {
                self.pending = Some(p);
            }
        }
        if round.is_multiple_of(params.epoch_rounds) {
            let rules = ElectionRules {
                n: params.n_producers as usize,
                max_missed_pct: params.max_missed_pct,
                vote_expiry_slots: params.vote_expiry_slots,
                now_slot: round * params.round_slots(),
            };
            let elected = elect(
                &self.accounts,
                &self.producers,
                &self.schedule.producers,
                &rules,
            );
            for p in self.producers.values_mut() {
                p.owned_epoch = 0;
                p.missed_epoch = 0;
            }
            let upcoming = self
                .pending
                .as_ref()
                .map_or(&self.schedule.producers, |p| &p.schedule.producers);
            if elected == *upcoming {
                self.proposed = None;
            } else if self
                .proposed
                .as_ref()
                .is_none_or(|p| p.schedule.producers != elected)
            {
                // A re-election with the same result keeps the older proposal
                // (and the irreversibility it may already have gained).
                self.proposed = Some(Staged {
                    schedule: Schedule {
                        version: 0,
                        producers: elected,
                    },
                    height: self.height + 1,
                });
            }
        }
        self.order = shuffle(
            &self.schedule.producers,
            &round_seed(&self.chain_id, round, &self.head_id),
        );
        self.round = round;
    }

    fn miss(&mut self, slot: u64, params: &Params) {
        let owner = self.order[(slot % params.round_slots()) as usize];
        let p = self.producers.entry(owner).or_default();
        p.owned_epoch += 1;
        p.missed_epoch += 1;
        p.missed_total += 1;
    }

    fn update_dpos_lib(&mut self, params: &Params) {
        let mut hs: Vec<u64> = self
            .schedule
            .producers
            .iter()
            .map(|a| {
                self.producers
                    .get(a)
                    .map_or(0, |p| p.last_produced_height)
                    .max(self.schedule_lib_floor)
            })
            .collect();
        hs.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&h) = hs.get(params.irreversible_threshold() - 1) {
            self.dpos_lib = self.dpos_lib.max(h);
        }
    }
}

/// Index of the first transaction whose sender is the black hole or whose
/// signature fails `verify_strict`. Large blocks are checked on all cores;
/// the answer is the same as checking in order.
fn first_bad_signature(txs: &[SignedTx], ids: &[Hash32]) -> Option<usize> {
    let bad = |i: usize| {
        txs[i].tx.sender.is_black_hole() || !verify(&txs[i].tx.sender, &ids[i], &txs[i].sig)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if txs.len() < 512 || threads < 2 {
        return (0..txs.len()).find(|&i| bad(i));
    }
    let chunk = txs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = t * chunk..((t + 1) * chunk).min(txs.len());
                scope.spawn(move || range.into_iter().find(|&i| bad(i)))
            })
            .collect();
        // A panicking verifier thread counts as a bad signature at its chunk
        // start, so a block is never accepted unchecked.
        handles
            .into_iter()
            .enumerate()
            .filter_map(|(t, h)| h.join().unwrap_or(Some(t * chunk)))
            .min()
    })
}

/// Applies `block` on top of `parent`; see the module doc.
pub fn apply_block(parent: &State, block: &Block, params: &Params) -> Result<State, BlockError> {
    let h = &block.header;
    let id = block.id();
    if h.chain_id != parent.chain_id {
        return Err(BlockError::WrongChain(id));
    }
    if h.height != parent.height + 1 {
        return Err(BlockError::BadHeight {
            id,
            want: parent.height + 1,
            got: h.height,
        });
    }
    if h.prev_id != parent.head_id {
        return Err(BlockError::Unlinkable {
            id,
            prev: h.prev_id,
        });
    }
    if h.slot <= parent.slot {
        return Err(BlockError::SlotNotAfterParent {
            id,
            parent: parent.slot,
            got: h.slot,
        });
    }
    if block.txs.len() > params.max_txs_per_block as usize {
        return Err(BlockError::TooManyTxs {
            id,
            got: block.txs.len(),
            max: params.max_txs_per_block,
        });
    }
    let (want, version) = scheduled_producer(parent, h.slot, params);
    if h.producer != want {
        return Err(BlockError::WrongProducer {
            id,
            slot: h.slot,
            want,
            got: h.producer,
        });
    }
    if h.schedule_version != version {
        return Err(BlockError::WrongScheduleVersion {
            id,
            want: version,
            got: h.schedule_version,
        });
    }
    if h.block_mmr_root != parent.mmr.root() {
        return Err(BlockError::BadMmrRoot(id));
    }
    let tx_ids: Vec<Hash32> = block.txs.iter().map(SignedTx::id).collect();
    if merkle_root(&tx_ids) != h.tx_root {
        return Err(BlockError::BadTxRoot(id));
    }
    if !block.signature_ok() {
        return Err(BlockError::BadSignature(id));
    }
    let mut seen = HashSet::with_capacity(block.txs.len());
    let mut spends = HashSet::with_capacity(block.txs.len());
    for (stx, tid) in block.txs.iter().zip(&tx_ids) {
        if !seen.insert(*tid) {
            return Err(BlockError::DuplicateTx(*tid));
        }
        if !spends.insert((stx.tx.sender, stx.tx.nonce)) {
            return Err(BlockError::DoubleSpend {
                sender: stx.tx.sender,
                nonce: stx.tx.nonce,
            });
        }
    }
    if let Some(index) = first_bad_signature(&block.txs, &tx_ids) {
        let stx = &block.txs[index];
        let error = if stx.tx.sender.is_black_hole() {
            TxError::FromBlackHole
        } else {
            TxError::BadSignature(tx_ids[index])
        };
        return Err(BlockError::Tx {
            index,
            id: tx_ids[index],
            error,
        });
    }

    let mut s = parent.clone();
    let n = params.round_slots();
    for slot in parent.slot + 1..h.slot {
        if slot / n != s.round {
            s.start_round(slot / n, params);
        }
        s.miss(slot, params);
    }
    if h.slot / n != s.round {
        s.start_round(h.slot / n, params);
    }
    // scheduled_producer() predicted exactly this; keep the two in step.
    debug_assert_eq!(s.order[(h.slot % n) as usize], h.producer);

    let ctx = TxContext {
        params,
        slot: h.slot,
        height: h.height,
    };
    let mut fees: u64 = 0;
    for (index, stx) in block.txs.iter().enumerate() {
        let fee = s.apply_verified(stx, ctx).map_err(|error| BlockError::Tx {
            index,
            id: stx.id(),
            error,
        })?;
        fees = fees.checked_add(fee).ok_or(BlockError::Tx {
            index,
            id: stx.id(),
            error: TxError::Overflow,
        })?;
    }

    let room = params
        .supply_cap
        .saturating_sub(s.genesis_supply)
        .saturating_sub(s.minted);
    let reward = params.reward_at(h.height).min(room);
    s.minted += reward;
    // fees ≤ supply ≤ cap and reward ≤ cap − supply, so the sum fits u64.
    let earned = fees + reward;
    s.accounts
        .entry(h.producer)
        .or_default()
        .lock(h.slot, earned, params);
    let prod = s.producers.entry(h.producer).or_default();
    prod.owned_epoch += 1;
    prod.produced_total += 1;
    prod.last_produced_height = h.height;

    s.height = h.height;
    s.slot = h.slot;
    s.head_id = id;
    s.mmr.append(&id);
    s.update_dpos_lib(params);
    if s.pending.is_none()
        && let Some(p) = s.proposed.take_if(|p| p.height <= s.dpos_lib)
    {
        s.pending = Some(Staged {
            schedule: p.schedule,
            height: s.height,
        });
    }
    Ok(s)
}
