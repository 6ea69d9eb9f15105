//! The public chain's half of anchoring: consortium key sets (registration
//! and rotation) and anchor transactions, checked against the state
//! ([`State::plan_key_set`], [`State::plan_anchor`]), and the signature
//! count both use.

use crate::address::Address;
use crate::hash::Hash32;
use crate::rewards::RewardProgress;
use crate::state::{AnchorRecord, Consortium, State, TxContext, TxError};
use crate::tx::{AnchorTx, KeySet, SignedTx};
use qcss_anchor::statement::{MAX_KEYS, MMR as ANCHOR_MMR, keys_digest, majority};

/// How many distinct keys of `keys` validly signed `digest` among `sigs`
/// (an index out of range, a repeated index or a bad signature counts
/// nothing). At most `keys.len()` signatures are checked.
pub fn count_signers(
    keys: &[Address],
    digest: &Hash32,
    sigs: &[(u16, crate::address::Sig)],
) -> usize {
    let mut seen = vec![false; keys.len()];
    for (i, sig) in sigs.iter().take(keys.len()) {
        let i = usize::from(*i);
        if i < keys.len() && !seen[i] && crate::address::verify(&keys[i], digest, sig) {
            seen[i] = true;
        }
    }
    seen.iter().filter(|s| **s).count()
}

impl State {
    /// A registration (every new key signs) or a rotation (a quorum of the
    /// current keys signs), checked; the consortium as it would be after.
    pub(crate) fn plan_key_set(&self, ks: &KeySet) -> Result<Consortium, TxError> {
        if ks.keys.is_empty() || ks.keys.len() > MAX_KEYS {
            return Err(TxError::BadKeySet("between 1 and 31 keys"));
        }
        if ks.quorum == 0 || usize::from(ks.quorum) > ks.keys.len() {
            return Err(TxError::BadKeySet("quorum must be 1 … number of keys"));
        }
        if ks.quorum < majority(ks.keys.len()) {
            return Err(TxError::BadKeySet("quorum must be a majority of the keys"));
        }
        let mut sorted = ks.keys.clone();
        sorted.sort();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(TxError::BadKeySet("a key is listed twice"));
        }
        let current = self.consortia.get(&ks.consortium_id);
        let version = current.map_or(0, |c| c.key_version + 1);
        let digest = keys_digest(
            &ks.consortium_id,
            version,
            &ks.keys.iter().map(|k| k.0).collect::<Vec<_>>(),
            ks.quorum,
        );
        match current {
            None => {
                let got = count_signers(&ks.keys, &digest, &ks.sigs);
                if got < ks.keys.len() {
                    return Err(TxError::Quorum {
                        what: "a registration (every key, proof of possession)",
                        need: ks.keys.len(),
                        got,
                    });
                }
                Ok(Consortium {
                    keys: ks.keys.clone(),
                    quorum: ks.quorum,
                    key_version: 0,
                    last: None,
                    rewards: RewardProgress::default(),
                })
            }
            Some(c) => {
                let got = count_signers(&c.keys, &digest, &ks.sigs);
                if got < usize::from(c.quorum) {
                    return Err(TxError::Quorum {
                        what: "a key rotation (the current keys' quorum)",
                        need: usize::from(c.quorum),
                        got,
                    });
                }
                Ok(Consortium {
                    keys: ks.keys.clone(),
                    quorum: ks.quorum,
                    key_version: version,
                    last: c.last.clone(),
                    rewards: c.rewards.clone(),
                })
            }
        }
    }

    /// The public chain's half of anchoring: the next seq, extending the
    /// last anchored root, signed by the registered quorum.
    pub(crate) fn plan_anchor(
        &self,
        a: &AnchorTx,
        stx: &SignedTx,
        ctx: TxContext<'_>,
    ) -> Result<Consortium, TxError> {
        let st = &a.statement;
        let c = self
            .consortia
            .get(&st.consortium_id)
            .ok_or(TxError::UnknownConsortium(st.consortium_id))?;
        let (want_seq, prev_size, prev_root, prev_height) = match &c.last {
            None => (0, 0, ANCHOR_MMR.empty_root(), 0),
            Some(l) => (l.seq + 1, l.mmr_size, l.mmr_root, l.height),
        };
        if st.seq != want_seq {
            return Err(TxError::AnchorOutOfSequence {
                want: want_seq,
                got: st.seq,
            });
        }
        if st.prev_size != prev_size || st.prev_root != prev_root {
            return Err(TxError::AnchorNotExtending(format!(
                "it names the previous anchor as size {} root {}, the chain has size {prev_size} root {prev_root}",
                st.prev_size, st.prev_root
            )));
        }
        if st.mmr_size <= prev_size {
            return Err(TxError::AnchorNotExtending(format!(
                "size {} does not grow past {prev_size}",
                st.mmr_size
            )));
        }
        if a.prev_anchor_height != prev_height {
            return Err(TxError::AnchorNotExtending(format!(
                "prev_anchor_height {} is not {prev_height}",
                a.prev_anchor_height
            )));
        }
        if a.consistency.old_size != prev_size || a.consistency.new_size != st.mmr_size {
            return Err(TxError::AnchorNotExtending(
                "the consistency proof is for other sizes".into(),
            ));
        }
        a.consistency
            .verify(&ANCHOR_MMR, &prev_root, &st.mmr_root)
            .map_err(|e| TxError::AnchorNotExtending(e.to_string()))?;
        let got = count_signers(&c.keys, &st.digest(), &a.sigs);
        if got < usize::from(c.quorum) {
            return Err(TxError::Quorum {
                what: "an anchor",
                need: usize::from(c.quorum),
                got,
            });
        }
        let mut next = c.clone();
        next.last = Some(AnchorRecord {
            seq: st.seq,
            mmr_size: st.mmr_size,
            mmr_root: st.mmr_root,
            last_block_hash: st.last_block_hash,
            height: ctx.height,
            slot: ctx.slot,
            tx_id: stx.id(),
        });
        Ok(next)
    }
}
