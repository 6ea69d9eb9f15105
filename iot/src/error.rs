//! [`IotError`]: every way a channel message, state or proof is refused.

use qcss_anchor::mmr::ProofError;

/// Why a channel input was refused; each variant says what was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Clone)]
#[non_exhaustive]
pub enum IotError {
    /// Bytes that are not a canonical encoding of the named thing.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded (`state`, `reading`, `update`, …).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An input over one of this crate's bounds.
    #[error("{what} is {got}, over the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        got: u64,
        /// The bound.
        limit: u64,
    },
    /// A schema or channel parameter that cannot be used.
    #[error("invalid channel parameters: {0}")]
    Params(String),
    /// A state or reading of another channel.
    #[error("{what} belongs to channel {got}, not {want}")]
    WrongChannel {
        /// What carried the id.
        what: &'static str,
        /// The channel expected.
        want: crate::ChannelId,
        /// The channel it names.
        got: crate::ChannelId,
    },
    /// A reading that does not continue the channel.
    #[error("reading {seq}: {reason}")]
    BadReading {
        /// The reading's number in the channel.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
    /// A state the other party proposed that is not what applying the
    /// update gives.
    #[error("proposed state seq {seq} does not match the update: {reason}")]
    StateMismatch {
        /// The proposed state's seq.
        seq: u64,
        /// Which field differs.
        reason: String,
    },
    /// An update after the final state.
    #[error("channel {0} is final: no further updates")]
    Final(crate::ChannelId),
    /// A signature that does not verify under the party's key.
    #[error("the {party} signature on state seq {seq} does not verify")]
    BadSignature {
        /// Whose signature.
        party: crate::Party,
        /// The state's seq.
        seq: u64,
    },
    /// An inclusion proof that is malformed or leads to another root.
    #[error("reading {seq}'s inclusion proof: {source}")]
    Proof {
        /// The reading's number.
        seq: u64,
        /// What the MMR said.
        source: ProofError,
    },
}
