//! Consumer rewards, the public chain's half: the DApp reward pool (a
//! chain-held account nobody can sign for) pays `RewardBatch` transactions
//! that a consortium's anchor-key quorum signed, one epoch after another,
//! into per-account locks that mature after `reward_lock_slots`.
//!
//! The consortium computes who earned what (scans, valid evaluations); this
//! chain checks only that the batch is well formed, signed by the quorum,
//! the next one, within the epoch budget and the pool. The signed digest is
//! specified byte by byte in dpos/README.md ("Consumer rewards") and pinned
//! by `reward_tests::golden_reward_digest`.

use serde::{Deserialize, Serialize};

use crate::address::{Address, Sig};
use crate::hash::Hash32;
use crate::state::{Consortium, State, TxContext, TxError, count_signers};

/// The reward pool's account. These 32 bytes are ASCII, not a key anybody
/// made; and whatever they are, `State::apply_tx` refuses every transaction
/// sent from it (`TxError::FromRewardPool`) and every transfer to it, so
/// only reward batches move its balance.
pub const REWARD_POOL: Address = Address(*b"qcss/dapp-reward-pool/chain-held");

pub use qcss_anchor::reward::REWARD_DOMAIN;

/// One consumer's reward in a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardEntry {
    /// The consumer's account.
    pub address: Address,
    /// Base units, > 0.
    pub amount: u64,
}

/// One part of one reward epoch of one consortium, as submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardBatch {
    /// The paying consortium (its anchor keys sign).
    pub consortium_id: Hash32,
    /// The consortium's reward epoch (slots [e·L, (e+1)·L), L = `rewards.epoch_slots`).
    pub epoch: u64,
    /// This part, 0 … parts − 1; parts are accepted in order.
    pub part: u32,
    /// Parts this epoch is split into (same in every part), 1 … `rewards.max_parts`.
    pub parts: u32,
    /// Sorted by address, strictly (no duplicates), amounts > 0; each part's
    /// first address is after the previous part's last. May be empty (an
    /// epoch with nothing to pay still has to be closed: no gaps).
    pub entries: Vec<RewardEntry>,
    /// [`reward_digest`] of the above; the chain recomputes and compares.
    pub digest: Hash32,
    /// `(index into the registered anchor keys, signature over digest)`.
    pub sigs: Vec<(u16, Sig)>,
}

impl RewardBatch {
    /// The digest of this batch's content on chain `chain_id`.
    pub fn compute_digest(&self, chain_id: &Hash32) -> Hash32 {
        reward_digest(
            chain_id,
            &self.consortium_id,
            self.epoch,
            self.part,
            self.parts,
            &self.entries,
        )
    }

    /// Sum of the amounts (u128: cannot overflow for any bounded list).
    pub fn total(&self) -> u128 {
        self.entries.iter().map(|e| u128::from(e.amount)).sum()
    }
}

/// What the quorum signs for a batch part:
///
/// `SHA-256(0x13 ‖ "QCSS-DPOS-REWARD-v1" ‖ chain_id[32] ‖ consortium_id[32]
/// ‖ u64_be(epoch) ‖ u32_be(part) ‖ u32_be(parts) ‖ u64_be(count)
/// ‖ count × (address[32] ‖ u64_be(amount)))`.
///
/// The chain id binds the batch to one public chain; the tag (and its length
/// byte) keeps it apart from anchor statements and key sets, which the same
/// keys sign.
pub fn reward_digest(
    chain_id: &Hash32,
    consortium_id: &Hash32,
    epoch: u64,
    part: u32,
    parts: u32,
    entries: &[RewardEntry],
) -> Hash32 {
    let raw: Vec<([u8; 32], u64)> = entries.iter().map(|e| (e.address.0, e.amount)).collect();
    qcss_anchor::reward::reward_digest(chain_id, consortium_id, epoch, part, parts, &raw)
}

/// A consortium's reward progress, kept in its [`Consortium`] record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardProgress {
    /// The last epoch whose every part is in.
    pub last_paid_epoch: Option<u64>,
    /// An epoch whose parts are arriving.
    pub open: Option<OpenEpoch>,
    /// Paid by this consortium, all epochs, base units.
    pub paid_total: u64,
}

/// An epoch paid in parts, not complete yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEpoch {
    /// The epoch.
    pub epoch: u64,
    /// Parts it is split into.
    pub parts: u32,
    /// The part expected next.
    pub next_part: u32,
    /// The last address paid so far (the next part must start after it).
    pub last_address: Option<Address>,
}

/// What an accepted batch writes (besides the payer's fee).
#[derive(Debug)]
pub(crate) struct RewardPlan {
    /// The consortium as it will be.
    pub consortium: Consortium,
    /// The epoch paid.
    pub epoch: u64,
    /// Sum of the entries, ≤ the pool's balance.
    pub total: u64,
}

/// Why an entry list is refused.
fn entry_fault(prev: Option<&Address>, e: &RewardEntry) -> Option<&'static str> {
    if e.amount == 0 {
        return Some("zero amount");
    }
    if e.address.is_black_hole() || e.address == REWARD_POOL {
        return Some("pays the black hole or the pool itself");
    }
    match prev {
        Some(p) if *p == e.address => Some("duplicate address"),
        Some(p) if *p > e.address => Some("addresses not sorted ascending"),
        _ => None,
    }
}

impl State {
    /// Every rule of a reward batch, cheapest first; the signatures last.
    pub(crate) fn plan_reward_batch(
        &self,
        b: &RewardBatch,
        ctx: TxContext<'_>,
    ) -> Result<RewardPlan, TxError> {
        let r = &ctx.params.rewards;
        let id = b.consortium_id;
        if r.pool == 0 || !r.consortia.contains(&id) {
            return Err(TxError::NotARewardConsortium(id));
        }
        let c = self
            .consortia
            .get(&id)
            .ok_or(TxError::UnknownConsortium(id))?;
        if b.parts == 0 || b.parts > r.max_parts || b.part >= b.parts {
            return Err(TxError::RewardParts {
                part: b.part,
                parts: b.parts,
                max: r.max_parts,
            });
        }
        if b.entries.len() > r.max_entries as usize {
            return Err(TxError::RewardBatchTooLarge {
                got: b.entries.len(),
                max: r.max_entries,
            });
        }
        let mut prev: Option<&Address> = None;
        for (index, e) in b.entries.iter().enumerate() {
            if let Some(reason) = entry_fault(prev, e) {
                return Err(TxError::BadRewardEntry { index, reason });
            }
            prev = Some(&e.address);
        }
        let want = b.compute_digest(&self.chain_id);
        if want != b.digest {
            return Err(TxError::RewardDigestMismatch {
                want,
                got: b.digest,
            });
        }
        let progress = &c.rewards;
        let mut after: Option<Address> = None;
        match &progress.open {
            Some(o) => {
                if b.epoch != o.epoch || b.part != o.next_part {
                    return Err(TxError::RewardPartOutOfOrder {
                        epoch: o.epoch,
                        want: o.next_part,
                        got_epoch: b.epoch,
                        got: b.part,
                    });
                }
                if b.parts != o.parts {
                    return Err(TxError::RewardParts {
                        part: b.part,
                        parts: b.parts,
                        max: o.parts,
                    });
                }
                after = o.last_address;
            }
            None => {
                if let Some(last) = progress.last_paid_epoch {
                    if b.epoch <= last {
                        return Err(TxError::RewardEpochPaid {
                            epoch: b.epoch,
                            last_paid: last,
                        });
                    }
                    if b.epoch != last + 1 {
                        return Err(TxError::RewardEpochGap {
                            want: last + 1,
                            got: b.epoch,
                        });
                    }
                }
                if b.part != 0 {
                    return Err(TxError::RewardPartOutOfOrder {
                        epoch: b.epoch,
                        want: 0,
                        got_epoch: b.epoch,
                        got: b.part,
                    });
                }
            }
        }
        let payable_from = b
            .epoch
            .checked_add(1)
            .and_then(|e| e.checked_mul(r.epoch_slots))
            .unwrap_or(u64::MAX);
        if ctx.slot < payable_from {
            return Err(TxError::RewardEpochNotOver {
                epoch: b.epoch,
                payable_from_slot: payable_from,
            });
        }
        if progress.last_paid_epoch.is_none() && progress.open.is_none() {
            // A consortium's first epoch is one of the last two ended (one
            // epoch of grace for inclusion): it cannot claim the budget of
            // epochs before it started paying.
            let oldest = (ctx.slot / r.epoch_slots).saturating_sub(2);
            if b.epoch < oldest {
                return Err(TxError::RewardEpochTooOld {
                    epoch: b.epoch,
                    oldest,
                });
            }
        }
        if let (Some(a), Some(first)) = (after, b.entries.first())
            && first.address <= a
        {
            return Err(TxError::BadRewardEntry {
                index: 0,
                reason: "not after the previous part's last address",
            });
        }
        let asked = b.total();
        let budget = r.epoch_budget();
        let paid = self.reward_paid.get(&b.epoch).copied().unwrap_or(0);
        if u128::from(paid) + asked > u128::from(budget) {
            return Err(TxError::RewardOverBudget {
                epoch: b.epoch,
                budget,
                paid,
                asked,
            });
        }
        let remaining = self.balance(&REWARD_POOL);
        if asked > u128::from(remaining) {
            return Err(TxError::RewardOverPool { remaining, asked });
        }
        // asked ≤ remaining ≤ u64::MAX.
        let total = asked as u64;
        let got = count_signers(&c.keys, &want, &b.sigs);
        if got < usize::from(c.quorum) {
            return Err(TxError::Quorum {
                what: "a reward batch",
                need: usize::from(c.quorum),
                got,
            });
        }
        let mut next = c.clone();
        let p = &mut next.rewards;
        p.paid_total = p.paid_total.checked_add(total).ok_or(TxError::Overflow)?;
        if b.part + 1 == b.parts {
            p.last_paid_epoch = Some(b.epoch);
            p.open = None;
        } else {
            p.open = Some(OpenEpoch {
                epoch: b.epoch,
                parts: b.parts,
                next_part: b.part + 1,
                last_address: b.entries.last().map(|e| e.address).or(after),
            });
        }
        Ok(RewardPlan {
            consortium: next,
            epoch: b.epoch,
            total,
        })
    }
}
