//! The public chain's side of anchoring: registration, rotation and every
//! refused anchor, with no state change on refusal.

use qcss_anchor::mmr::{ConsistencyProof, MemStore};
use qcss_anchor::statement::{MMR, Statement, block_leaf, keys_digest};

use crate::address::Keypair;
use crate::hash::Hash32;
use crate::state::{AnchorRecord, State, TxContext, TxError};
use crate::testkit::Kit;
use crate::tx::{AnchorTx, KeySet, SignedTx, TxKind};

const CID: Hash32 = Hash32([0xc0; 32]);

fn org_keys(n: u64) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::for_test("org", i)).collect()
}

fn ctx(kit: &Kit, height: u64) -> TxContext<'_> {
    TxContext {
        params: &kit.params,
        slot: height,
        height,
    }
}

fn key_set(signers: &[(u16, &Keypair)], keys: &[Keypair], quorum: u16, version: u64) -> KeySet {
    let addrs: Vec<_> = keys.iter().map(Keypair::address).collect();
    let raw: Vec<[u8; 32]> = addrs.iter().map(|a| a.0).collect();
    let d = keys_digest(&CID, version, &raw, quorum);
    KeySet {
        consortium_id: CID,
        keys: addrs,
        quorum,
        sigs: signers.iter().map(|(i, k)| (*i, k.sign(&d))).collect(),
    }
}

/// The consortium's ledger: `n` fake block hashes in an MMR.
fn ledger(n: u64, fork_at: Option<u64>) -> MemStore {
    let mut m = MemStore::default();
    for i in 0..n {
        let tag = if Some(i) == fork_at { 0xee } else { i as u8 };
        m.append(&MMR, block_leaf(i, &Hash32([tag; 32])));
    }
    m
}

fn anchor(
    l: &MemStore,
    seq: u64,
    (prev_size, prev_root): (u64, Hash32),
    size: u64,
    signers: &[(u16, &Keypair)],
    prev_anchor_height: u64,
) -> AnchorTx {
    let upto = {
        let mut p = qcss_anchor::mmr::Peaks::default();
        for i in 0..size {
            p.append(
                &MMR,
                *l.nodes
                    .get(&qcss_anchor::mmr::Pos { level: 0, index: i })
                    .unwrap(),
            );
        }
        p.root(&MMR)
    };
    let statement = Statement {
        consortium_id: CID,
        seq,
        mmr_size: size,
        mmr_root: upto,
        last_block_hash: Hash32([(size - 1) as u8; 32]),
        prev_size,
        prev_root,
    };
    let d = statement.digest();
    AnchorTx {
        consistency: ConsistencyProof::build(l, &MMR, prev_size, size).unwrap(),
        sigs: signers.iter().map(|(i, k)| (*i, k.sign(&d))).collect(),
        statement,
        prev_anchor_height,
    }
}

fn apply(st: &mut State, kit: &Kit, tx: &SignedTx, height: u64) -> Result<u64, TxError> {
    let before = st.clone();
    let r = st.apply_tx(tx, ctx(kit, height));
    if r.is_err() {
        assert_eq!(*st, before, "a refused transaction changed the state");
    }
    r
}

#[test]
fn registration_needs_every_key_and_rotation_the_current_quorum() {
    let kit = Kit::new();
    let mut st = kit.state();
    let u = &kit.users[0];
    let k = org_keys(4);
    let all: Vec<(u16, &Keypair)> = k.iter().enumerate().map(|(i, k)| (i as u16, k)).collect();

    let short = key_set(&all[..3], &k, 3, 0);
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 0, TxKind::RegisterConsortium(Box::new(short))),
        1,
    );
    assert!(
        matches!(
            e,
            Err(TxError::Quorum {
                need: 4,
                got: 3,
                ..
            })
        ),
        "{e:?}"
    );
    let minority = key_set(&all, &k, 2, 0);
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 0, TxKind::RegisterConsortium(Box::new(minority))),
        1,
    );
    assert!(matches!(e, Err(TxError::BadKeySet(_))), "{e:?}");
    let mut dup = key_set(&all, &k, 3, 0);
    dup.keys[1] = dup.keys[0];
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 0, TxKind::RegisterConsortium(Box::new(dup))),
        1,
    );
    assert!(matches!(e, Err(TxError::BadKeySet(_))), "{e:?}");

    let ok = key_set(&all, &k, 3, 0);
    apply(
        &mut st,
        &kit,
        &kit.tx(u, 0, TxKind::RegisterConsortium(Box::new(ok.clone()))),
        1,
    )
    .unwrap();
    assert_eq!(st.consortia[&CID].quorum, 3);

    // Re-registering is a rotation: a replay of the registration (version 0)
    // is not signed over version 1 and counts nothing.
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 1, TxKind::RegisterConsortium(Box::new(ok))),
        2,
    );
    assert!(matches!(e, Err(TxError::Quorum { got: 0, .. })), "{e:?}");
    // New keys signing their own rotation are not the current quorum.
    let newk = org_keys(7)[3..].to_vec();
    let new_all: Vec<(u16, &Keypair)> = newk
        .iter()
        .enumerate()
        .map(|(i, k)| (i as u16, k))
        .collect();
    let hijack = key_set(&new_all, &newk, 3, 1);
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 1, TxKind::RegisterConsortium(Box::new(hijack))),
        2,
    );
    assert!(matches!(e, Err(TxError::Quorum { need: 3, .. })), "{e:?}");
    // Three of the current four sign: accepted, version 1.
    let rotate = key_set(&all[1..], &newk, 3, 1);
    apply(
        &mut st,
        &kit,
        &kit.tx(u, 1, TxKind::RegisterConsortium(Box::new(rotate))),
        2,
    )
    .unwrap();
    assert_eq!(st.consortia[&CID].key_version, 1);
    assert_eq!(st.consortia[&CID].keys[0], newk[0].address());
}

#[test]
fn anchors_must_be_next_extending_and_signed_by_the_quorum() {
    let kit = Kit::new();
    let mut st = kit.state();
    let u = &kit.users[0];
    let k = org_keys(4);
    let all: Vec<(u16, &Keypair)> = k.iter().enumerate().map(|(i, k)| (i as u16, k)).collect();
    let honest = ledger(40, None);
    let empty = (0, MMR.empty_root());

    // Unregistered consortium.
    let a0 = anchor(&honest, 0, empty, 10, &all[..3], 0);
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 0, TxKind::Anchor(Box::new(a0.clone()))),
        1,
    );
    assert_eq!(e, Err(TxError::UnknownConsortium(CID)));
    apply(
        &mut st,
        &kit,
        &kit.tx(
            u,
            0,
            TxKind::RegisterConsortium(Box::new(key_set(&all, &k, 3, 0))),
        ),
        1,
    )
    .unwrap();

    // Under-signed: two valid signatures, one repeated, one by a stranger.
    let stranger = Keypair::for_test("stranger", 0);
    let mut under = anchor(
        &honest,
        0,
        empty,
        10,
        &[(0, &k[0]), (1, &k[1]), (1, &k[1]), (2, &stranger)],
        0,
    );
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 1, TxKind::Anchor(Box::new(under.clone()))),
        2,
    );
    assert!(
        matches!(
            e,
            Err(TxError::Quorum {
                need: 3,
                got: 2,
                ..
            })
        ),
        "{e:?}"
    );
    // Signatures over another statement do not count.
    under.statement.mmr_size = 11;
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 1, TxKind::Anchor(Box::new(under))),
        2,
    );
    assert!(e.is_err());
    // Out of sequence.
    let a1_first = anchor(&honest, 1, empty, 10, &all[..3], 0);
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 1, TxKind::Anchor(Box::new(a1_first))),
        2,
    );
    assert_eq!(e, Err(TxError::AnchorOutOfSequence { want: 0, got: 1 }));

    apply(
        &mut st,
        &kit,
        &kit.tx(u, 1, TxKind::Anchor(Box::new(a0.clone()))),
        2,
    )
    .unwrap();
    let rec: AnchorRecord = st.consortia[&CID].last.clone().unwrap();
    assert_eq!((rec.seq, rec.mmr_size, rec.height), (0, 10, 2));
    let prev = (10, rec.mmr_root);

    // The same anchor again: out of sequence.
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 2, TxKind::Anchor(Box::new(a0))),
        3,
    );
    assert_eq!(e, Err(TxError::AnchorOutOfSequence { want: 1, got: 0 }));
    // A rewritten history (block 5 changed) cannot extend the anchored root,
    // even signed by every key.
    let forked = ledger(40, Some(5));
    let mut rewrite = anchor(&forked, 1, prev, 25, &all, 2);
    rewrite.consistency = ConsistencyProof::build(&forked, &MMR, 10, 25).unwrap();
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(u, 2, TxKind::Anchor(Box::new(rewrite))),
        3,
    );
    assert!(matches!(e, Err(TxError::AnchorNotExtending(_))), "{e:?}");
    // Claiming another previous root.
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(
            u,
            2,
            TxKind::Anchor(Box::new(anchor(
                &honest,
                1,
                (10, Hash32([1; 32])),
                25,
                &all,
                2,
            ))),
        ),
        3,
    );
    assert!(matches!(e, Err(TxError::AnchorNotExtending(_))), "{e:?}");
    // Not growing.
    let same = ledger(40, None);
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(
            u,
            2,
            TxKind::Anchor(Box::new(anchor(&same, 1, prev, 10, &all, 2))),
        ),
        3,
    );
    assert!(matches!(e, Err(TxError::AnchorNotExtending(_))), "{e:?}");
    // Wrong back link.
    let e = apply(
        &mut st,
        &kit,
        &kit.tx(
            u,
            2,
            TxKind::Anchor(Box::new(anchor(&honest, 1, prev, 25, &all, 7))),
        ),
        3,
    );
    assert!(matches!(e, Err(TxError::AnchorNotExtending(_))), "{e:?}");
    // The honest extension.
    apply(
        &mut st,
        &kit,
        &kit.tx(
            u,
            2,
            TxKind::Anchor(Box::new(anchor(&honest, 1, prev, 25, &all[1..], 2))),
        ),
        3,
    )
    .unwrap();
    assert_eq!(st.consortia[&CID].last.as_ref().unwrap().mmr_size, 25);
}
