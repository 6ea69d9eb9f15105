//! [`ReadingProof`]: one reading and its inclusion proof in a state's
//! range. Anyone holding the settled state (from the ledger) can check it.

/// The MMR types a proof is made of and built from (a full in-memory range).
pub use qcss_anchor::mmr::{InclusionProof, MemStore};
use serde::{Deserialize, Serialize};

use crate::reading::MMR;
use crate::{IotError, Reading, State};

/// Most hashes an inclusion proof may carry: 64 path levels + 63 other peaks.
pub const MAX_PROOF_HASHES: usize = 127;

/// A reading and the proof that it is reading `reading.seq` of a state's range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingProof {
    /// The reading.
    pub reading: Reading,
    /// Its path to a peak and the other peaks.
    pub proof: InclusionProof,
}

impl ReadingProof {
    /// Builds the proof of reading `seq` among the first `count` leaves of
    /// `store` (the gateway's or the CLI's full range).
    pub fn build(store: &MemStore, reading: Reading, count: u64) -> Result<Self, IotError> {
        let seq = reading.seq;
        let proof = InclusionProof::build(store, seq, count)
            .map_err(|source| IotError::Proof { seq, source })?;
        Ok(Self { reading, proof })
    }

    /// Checks the reading is reading `reading.seq` of `state`'s range (and
    /// so was co-signed by both parties, if `state` was).
    pub fn verify(&self, state: &State) -> Result<(), IotError> {
        let seq = self.reading.seq;
        let hashes = self.proof.path.len() + self.proof.peaks.len();
        if hashes > MAX_PROOF_HASHES {
            return Err(IotError::TooLarge {
                what: "an inclusion proof's hash count",
                got: hashes as u64,
                limit: MAX_PROOF_HASHES as u64,
            });
        }
        if self.proof.leaf_index != seq {
            return Err(IotError::BadReading {
                seq,
                reason: format!("the proof is for reading {}", self.proof.leaf_index),
            });
        }
        if self.proof.size != state.count {
            return Err(IotError::BadReading {
                seq,
                reason: format!(
                    "the proof is for a range of {} readings, the state has {}",
                    self.proof.size, state.count
                ),
            });
        }
        self.proof
            .verify(&MMR, &self.reading.leaf(&state.channel), &state.root)
            .map_err(|source| IotError::Proof { seq, source })
    }
}
