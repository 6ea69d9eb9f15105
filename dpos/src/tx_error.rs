//! Why a transaction was refused ([`TxError`], re-exported as
//! `state::TxError`): one variant per rule, each naming what was wrong.

use crate::address::Address;
use crate::hash::Hash32;

/// Why a transaction was refused. The state is unchanged in every case.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum TxError {
    /// The sender's signature does not verify (`verify_strict`).
    #[error("bad signature on transaction {0}")]
    BadSignature(Hash32),
    /// Signed for another chain.
    #[error("transaction is for chain {got}, this is {want}")]
    WrongChain {
        /// This chain.
        want: Hash32,
        /// The transaction's.
        got: Hash32,
    },
    /// Its expiry slot is before the block's slot.
    #[error("transaction expired at slot {expiry}, block slot is {slot}")]
    Expired {
        /// Expiry.
        expiry: u64,
        /// Block slot.
        slot: u64,
    },
    /// Its expiry lies further ahead than `max_expiry_slots`.
    #[error("expiry slot {expiry} is too far ahead of slot {slot}")]
    ExpiryTooFar {
        /// Expiry.
        expiry: u64,
        /// Block slot.
        slot: u64,
    },
    /// The nonce was already used (a replay).
    #[error("nonce {got} already used by {sender}; next is {want}")]
    Replayed {
        /// Sender.
        sender: Address,
        /// Next nonce.
        want: u64,
        /// Given.
        got: u64,
    },
    /// The nonce skips ahead.
    #[error("nonce {got} from {sender} skips ahead of {want}")]
    NonceGap {
        /// Sender.
        sender: Address,
        /// Next nonce.
        want: u64,
        /// Given.
        got: u64,
    },
    /// Fee below the minimum.
    #[error("fee {fee} is below the minimum {min}")]
    FeeTooLow {
        /// Given.
        fee: u64,
        /// Minimum.
        min: u64,
    },
    /// Not enough liquid balance for amount plus fee.
    #[error("{sender} needs {need} but has {have}")]
    InsufficientBalance {
        /// Sender.
        sender: Address,
        /// Amount plus fee.
        need: u128,
        /// Liquid balance (plus matured rewards when withdrawing).
        have: u64,
    },
    /// An amount would overflow.
    #[error("amount overflows")]
    Overflow,
    /// A zero transfer or burn.
    #[error("amount must be positive")]
    ZeroAmount,
    /// The black hole never sends.
    #[error("nothing can be sent from the black-hole address")]
    FromBlackHole,
    /// More producers than `max_votes`.
    #[error("vote lists {got} producers, at most {max}")]
    TooManyVotes {
        /// Given.
        got: usize,
        /// Limit.
        max: u32,
    },
    /// A producer twice in one vote.
    #[error("vote lists {0} twice")]
    DuplicateVote(Address),
    /// A vote for an account that is not a registered producer.
    #[error("{0} is not a registered producer")]
    NotAProducer(Address),
    /// Registering twice.
    #[error("{0} is already registered")]
    AlreadyRegistered(Address),
    /// URL too long.
    #[error("url is {got} bytes, at most {max}")]
    UrlTooLong {
        /// Given.
        got: usize,
        /// Limit.
        max: u32,
    },
    /// No locked reward has matured.
    #[error("no reward has matured; next unlock at slot {next_unlock:?}")]
    RewardsLocked {
        /// Earliest unlock slot, if anything is locked.
        next_unlock: Option<u64>,
    },
    /// Withdrew less than `withdraw_interval_slots` ago.
    #[error("withdrew already; next withdrawal allowed at slot {next_allowed}")]
    WithdrawTooSoon {
        /// First slot allowed.
        next_allowed: u64,
    },
    /// The equivocation evidence does not prove anything.
    #[error("invalid equivocation evidence: {0}")]
    BadEvidence(&'static str),
    /// Evidence against this producer is already recorded.
    #[error("equivocation by {0} is already recorded")]
    EvidenceKnown(Address),
    /// A key set that cannot be registered.
    #[error("invalid anchor key set: {0}")]
    BadKeySet(&'static str),
    /// Signatures short of what the action needs.
    #[error("{what} needs {need} valid signatures from distinct keys, got {got}")]
    Quorum {
        /// Registration, rotation or anchor.
        what: &'static str,
        /// Needed.
        need: usize,
        /// Valid and distinct.
        got: usize,
    },
    /// An anchor for a consortium that never registered.
    #[error("consortium {0} is not registered")]
    UnknownConsortium(Hash32),
    /// An anchor whose seq is not the next.
    #[error("anchor seq {got} is not the next; expected {want}")]
    AnchorOutOfSequence {
        /// Next seq.
        want: u64,
        /// Given.
        got: u64,
    },
    /// An anchor that does not extend the previous one.
    #[error("anchor does not extend the previous anchor: {0}")]
    AnchorNotExtending(String),
    /// The reward pool's account never sends anything.
    #[error("nothing can be sent from the reward pool")]
    FromRewardPool,
    /// The pool is filled at genesis only.
    #[error("nothing can be sent to the reward pool")]
    ToRewardPool,
    /// The encoded transaction is over its kind's byte limit.
    #[error("transaction is {bytes} bytes, at most {max} for its kind")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
        /// Limit.
        max: u32,
    },
    /// A batch from a consortium the genesis does not allow to pay from the
    /// pool (or the chain has no pool).
    #[error("consortium {0} may not pay from the reward pool")]
    NotARewardConsortium(Hash32),
    /// `part`/`parts` out of range, or `parts` differs from the epoch's first part.
    #[error("reward batch part {part} of {parts} is invalid (at most {max} parts)")]
    RewardParts {
        /// Given part.
        part: u32,
        /// Given parts.
        parts: u32,
        /// The limit, or the parts the epoch's first part announced.
        max: u32,
    },
    /// More entries than `rewards.max_entries` in one part.
    #[error("reward batch has {got} entries, at most {max} per part")]
    RewardBatchTooLarge {
        /// Given.
        got: usize,
        /// Limit.
        max: u32,
    },
    /// An entry that breaks the list rules.
    #[error("reward entry {index}: {reason}")]
    BadRewardEntry {
        /// Position in the part.
        index: usize,
        /// Which rule.
        reason: &'static str,
    },
    /// The batch's digest is not the digest of its content.
    #[error("reward batch digest is {got}, its content hashes to {want}")]
    RewardDigestMismatch {
        /// Recomputed.
        want: Hash32,
        /// Given.
        got: Hash32,
    },
    /// An epoch already paid (a replay).
    #[error("reward epoch {epoch} is already paid (last paid {last_paid})")]
    RewardEpochPaid {
        /// Given.
        epoch: u64,
        /// The consortium's last paid epoch.
        last_paid: u64,
    },
    /// An epoch that skips one.
    #[error("reward epoch {got} skips ahead; next is {want}")]
    RewardEpochGap {
        /// Next epoch.
        want: u64,
        /// Given.
        got: u64,
    },
    /// A consortium's first batch for an epoch older than the last two ended.
    #[error("reward epoch {epoch} is too old for a first batch; the oldest allowed is {oldest}")]
    RewardEpochTooOld {
        /// Given.
        epoch: u64,
        /// Oldest allowed.
        oldest: u64,
    },
    /// Not the part expected next.
    #[error("expected part {want} of epoch {epoch}, got part {got} of epoch {got_epoch}")]
    RewardPartOutOfOrder {
        /// Epoch expected.
        epoch: u64,
        /// Part expected.
        want: u32,
        /// Epoch given.
        got_epoch: u64,
        /// Part given.
        got: u32,
    },
    /// The epoch has not ended at this block's slot.
    #[error("reward epoch {epoch} can be paid from slot {payable_from_slot}")]
    RewardEpochNotOver {
        /// Given.
        epoch: u64,
        /// First slot after the epoch.
        payable_from_slot: u64,
    },
    /// The epoch's budget (pool / epochs) would be exceeded.
    #[error("reward epoch {epoch}: budget {budget}, paid {paid}, batch asks {asked}")]
    RewardOverBudget {
        /// Epoch.
        epoch: u64,
        /// Budget per epoch.
        budget: u64,
        /// Paid in this epoch so far, all consortia.
        paid: u64,
        /// This batch's total.
        asked: u128,
    },
    /// The pool holds less than the batch pays.
    #[error("the reward pool holds {remaining}, the batch asks {asked}")]
    RewardOverPool {
        /// Pool balance.
        remaining: u64,
        /// This batch's total.
        asked: u128,
    },
}
