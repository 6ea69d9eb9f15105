//! Every refused block with its error, the fork database's LIB rule
//! (golden vector), fork choice, and the node's future-block check.

use std::sync::Arc;

use crate::block::{Block, Confirmation};
use crate::chain::{BlockError, apply_block, scheduled_producer};
use crate::codec::CodecError;
use crate::fork::{Entry, ForkDb, Inserted};
use crate::hash::{Hash32, merkle_root};
use crate::node::{BlockOutcome, Node, NodeError, VirtualClock};
use crate::params::COIN;
use crate::state::{State, TxError};
use crate::testkit::Kit;
use crate::tx::TxKind;

fn refused(parent: &State, kit: &Kit, b: &Block) -> BlockError {
    let before = parent.clone();
    let e = apply_block(parent, b, &kit.params).expect_err("must be refused");
    assert_eq!(parent, &before);
    e
}

fn resign(kit: &Kit, b: &mut Block) {
    b.sig = kit.producers[&b.header.producer].sign(&b.header.id());
}

#[test]
fn every_block_refusal_has_its_error() {
    let kit = Kit::new();
    let st = kit.state();
    let good = kit.block(&st, 1, vec![]);
    assert!(apply_block(&st, &good, &kit.params).is_ok());

    // Signed by a producer who does not own slot 1.
    let (owner, _) = scheduled_producer(&st, 1, &kit.params);
    let other = kit
        .producers
        .values()
        .find(|k| k.address() != owner)
        .unwrap();
    let wrong = Block::build(
        other,
        st.chain_id,
        1,
        1,
        st.head_id,
        0,
        st.mmr.root(),
        vec![],
    );
    assert!(matches!(
        refused(&st, &kit, &wrong),
        BlockError::WrongProducer { slot: 1, .. }
    ));

    let mut b = good.clone();
    b.header.slot = 0;
    resign(&kit, &mut b);
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::SlotNotAfterParent {
            parent: 0,
            got: 0,
            ..
        }
    ));
    let mut b = good.clone();
    b.header.height = 2;
    resign(&kit, &mut b);
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::BadHeight {
            want: 1,
            got: 2,
            ..
        }
    ));
    let mut b = good.clone();
    b.header.prev_id = Hash32([5; 32]);
    resign(&kit, &mut b);
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::Unlinkable { .. }
    ));
    let mut b = good.clone();
    b.header.chain_id = Hash32([5; 32]);
    resign(&kit, &mut b);
    assert!(matches!(refused(&st, &kit, &b), BlockError::WrongChain(_)));
    let mut b = good.clone();
    b.header.schedule_version = 3;
    resign(&kit, &mut b);
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::WrongScheduleVersion {
            want: 0,
            got: 3,
            ..
        }
    ));
    let mut b = good.clone();
    b.header.block_mmr_root = Hash32([5; 32]);
    resign(&kit, &mut b);
    assert!(matches!(refused(&st, &kit, &b), BlockError::BadMmrRoot(_)));
    let mut b = good.clone();
    b.header.tx_root = merkle_root(&[Hash32([1; 32])]);
    resign(&kit, &mut b);
    assert!(matches!(refused(&st, &kit, &b), BlockError::BadTxRoot(_)));
    let mut b = good.clone();
    b.sig.0[0] ^= 1;
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::BadSignature(_)
    ));

    let u = &kit.users[0];
    let to = kit.users[1].address();
    let t0 = kit.tx(u, 0, TxKind::Transfer { to, amount: COIN });
    let t0b = kit.tx(
        u,
        0,
        TxKind::Transfer {
            to,
            amount: 2 * COIN,
        },
    );
    let b = kit.block(&st, 1, vec![t0.clone(), t0.clone()]);
    assert!(matches!(refused(&st, &kit, &b), BlockError::DuplicateTx(_)));
    let b = kit.block(&st, 1, vec![t0.clone(), t0b]);
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::DoubleSpend { nonce: 0, .. }
    ));
    // Two spends with consecutive nonces that together exceed the balance.
    let big = |n| {
        kit.tx(
            u,
            n,
            TxKind::Transfer {
                to,
                amount: 600 * COIN,
            },
        )
    };
    let b = kit.block(&st, 1, vec![big(0), big(1)]);
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::Tx {
            index: 1,
            error: TxError::InsufficientBalance { .. },
            ..
        }
    ));
    let mut forged = t0.clone();
    forged.tx.fee += 1;
    let b = kit.block(&st, 1, vec![forged]);
    assert!(matches!(
        refused(&st, &kit, &b),
        BlockError::Tx {
            index: 0,
            error: TxError::BadSignature(_),
            ..
        }
    ));
    let mut small = kit.params.clone();
    small.max_txs_per_block = 1;
    let b = kit.block(&st, 1, vec![t0, kit.tx(u, 1, TxKind::Burn { amount: 1 })]);
    assert!(matches!(
        apply_block(&st, &b, &small),
        Err(BlockError::TooManyTxs { got: 2, max: 1, .. })
    ));
    // Oversize bytes are refused before decoding.
    let bytes = b.encode();
    assert!(matches!(
        Block::decode(&bytes, bytes.len() as u32 - 1),
        Err(CodecError::Oversize { .. })
    ));
}

#[test]
fn node_refuses_blocks_from_the_future_and_keeps_its_state() {
    let kit = Kit::new();
    let clock = VirtualClock::default();
    let mut node = Node::in_memory(&kit.genesis, None, Arc::new(clock.clone())).unwrap();
    let st = kit.state();
    // Slot 5 starts at 5 s; at 3.9 s it is more than the 1 s skew ahead.
    let b = Arc::new(kit.block(&st, 5, vec![]));
    clock.set(3_900);
    assert!(matches!(
        node.on_block(b.clone()),
        Err(NodeError::Block(e)) if matches!(*e, BlockError::FromFuture { slot: 5, .. })
    ));
    assert_eq!(node.status().head_height, 0);
    clock.set(4_000);
    assert!(node.on_block(b).is_ok());
    assert_eq!(node.status().head_height, 1);
}

fn chain(kit: &Kit, from: &State, slots: &[u64]) -> Vec<Block> {
    let mut st = from.clone();
    let mut out = Vec::new();
    for &s in slots {
        let b = kit.block(&st, s, vec![]);
        st = apply_block(&st, &b, &kit.params).unwrap();
        out.push(b);
    }
    out
}

fn db(kit: &Kit) -> ForkDb {
    ForkDb::new(
        kit.params.clone(),
        Entry {
            block: None,
            state: Arc::new(kit.state()),
        },
    )
}

/// Golden vector for irreversibility with 4 producers (threshold 3): a block
/// becomes irreversible when 3 distinct producers built on it, or as soon as
/// confirmations make up the difference. The pinned id covers the whole
/// pipeline (genesis encoding → chain id → schedule → header → id), so it
/// also changes when `Params` or `Genesis` gain a field: a new chain.
#[test]
fn golden_irreversibility() {
    let kit = Kit::new();
    let blocks = chain(&kit, &kit.state(), &[1, 2, 3, 4]);
    let mut f = db(&kit);
    let mut libs = Vec::new();
    for b in &blocks[..3] {
        f.insert(Arc::new(b.clone())).unwrap();
        libs.push(f.lib().height());
    }
    // Slots 1, 2, 3 of round 0 have three distinct owners.
    assert_eq!(libs, vec![0, 0, 1]);
    assert_eq!(f.lib().id(), blocks[0].id());
    assert_eq!(
        f.lib().id().to_hex(),
        "0ea9618fbfb960efffc762c6761ec09cf7fd6ab93fe7e3d957d0d3f57dd94b38"
    );
    // Below the LIB nothing is accepted, even a valid sibling.
    let sibling = chain(&kit, &kit.state(), &[2]).remove(0);
    assert!(matches!(
        f.insert(Arc::new(sibling)),
        Err(BlockError::BelowIrreversible { lib: 1, .. })
    ));
    assert_eq!(
        f.insert(Arc::new(blocks[3].clone())).unwrap().0,
        Inserted::Added
    );
}

fn vote(kit: &Kit, k: &crate::address::Keypair, source: &Entry, target: &Block) -> Confirmation {
    Confirmation::sign(
        k,
        kit.state().chain_id,
        (source.height(), source.id()),
        (target.header.height, target.id()),
    )
}

fn voting_kit(n: u32) -> Kit {
    Kit::with(crate::params::Params {
        fast_confirmations: true,
        ..crate::params::Params::fast(n)
    })
}

/// Finality votes (4 producers, quorum 3): a quorum link justifies its
/// target; a quorum link from a block to its child finalizes the block; a
/// link that skips only justified blocks finalizes its source too.
#[test]
fn finality_votes_justify_then_finalize() {
    let kit = voting_kit(4);
    let blocks = chain(&kit, &kit.state(), &[1, 2, 3, 4, 5]);
    let mut f = db(&kit);
    for b in &blocks {
        f.insert(Arc::new(b.clone())).unwrap();
    }
    assert_eq!(f.lib().height(), 0, "votes, not production, finalize");
    let keys: Vec<_> = kit.producers.values().cloned().collect();
    let entry = |f: &ForkDb, i: usize| f.get(&blocks[i].id()).unwrap().clone();
    let genesis = f.lib().clone();
    // Two votes are no quorum; the third justifies block 1 (not final: its
    // child has no quorum link from it yet).
    for k in &keys[..2] {
        assert!(
            f.confirm(&vote(&kit, k, &genesis, &blocks[0]))
                .blocks
                .is_empty()
        );
    }
    assert!(!f.is_justified(&blocks[0].id()));
    f.confirm(&vote(&kit, &keys[2], &genesis, &blocks[0]));
    assert!(f.is_justified(&blocks[0].id()));
    assert_eq!(f.lib().height(), 0);
    // 1 → 2 (a child): block 1 is final.
    let b1 = entry(&f, 0);
    let mut fin = 0;
    let mut certificate = None;
    for k in &keys[1..4] {
        let f = f.confirm(&vote(&kit, k, &b1, &blocks[1]));
        fin += f.blocks.len();
        certificate = certificate.or(f.certificate);
    }
    assert_eq!((f.lib().height(), fin), (1, 1));
    // The link's votes are a certificate anyone holding the schedule can
    // check offline; it proves block 1, nothing else.
    let cert = certificate.expect("a link to the child carries a certificate");
    let sched = &kit.state().schedule;
    let check = |c: &crate::block::Certificate, source: (u64, &Hash32), threshold| {
        c.verify(source, &sched.producers, sched.version, threshold)
    };
    assert_eq!(cert.votes.len(), 3);
    assert_eq!(check(&cert, (1, &blocks[0].id()), 3), Ok(()));
    assert!(check(&cert, (1, &blocks[0].id()), 4).is_err(), "3 of 4");
    assert!(
        check(&cert, (2, &blocks[1].id()), 3).is_err(),
        "another block"
    );
    let mut forged = cert.clone();
    forged.votes[0].1 = forged.votes[1].1;
    assert!(check(&forged, (1, &blocks[0].id()), 3).is_err());
    let mut twice = cert.clone();
    twice.votes[1] = twice.votes[0];
    assert!(
        check(&twice, (1, &blocks[0].id()), 2).is_err(),
        "a voter twice"
    );
    // 2 → 3 by only two, and 2 → 4 by a quorum: block 3 is not justified,
    // so block 2 is not final.
    let b2 = entry(&f, 1);
    for k in &keys[..2] {
        f.confirm(&vote(&kit, k, &b2, &blocks[2]));
    }
    for k in &keys[..3] {
        f.confirm(&vote(&kit, k, &b2, &blocks[3]));
    }
    assert_eq!(f.lib().height(), 1);
    // A third vote justifies 3: the link 2 → 4 now skips only justified
    // blocks, and block 2 is final (with the certificate of the link 2 → 3
    // to its child, the one a verifier can check alone).
    let fin = f.confirm(&vote(&kit, &keys[3], &b2, &blocks[2]));
    assert_eq!(f.lib().height(), 2);
    let cert = fin
        .certificate
        .expect("2 → 3 is a quorum link to the child");
    assert_eq!(cert.target.header.height, 3);
    assert_eq!(check(&cert, (2, &blocks[1].id()), 3), Ok(()));
    // Votes at or below the LIB, or from a source not below the target,
    // change nothing.
    let stale = vote(&kit, &keys[0], &genesis, &blocks[1]);
    assert!(!f.confirmation_useful(&stale));
    let b5 = entry(&f, 4);
    let backwards = vote(&kit, &keys[0], &b5, &blocks[4]);
    assert!(!f.confirmation_useful(&backwards));
    // One producer links at most two sources to a target: made-up sources
    // cannot crowd out the others'.
    let made_up = |n: u8| {
        Confirmation::sign(
            &keys[0],
            kit.state().chain_id,
            (2, Hash32([n; 32])),
            (blocks[4].header.height, blocks[4].id()),
        )
    };
    for n in [1, 2, 3] {
        f.confirm(&made_up(n));
    }
    assert!(!f.confirmation_useful(&made_up(2)), "the second is kept");
    assert!(f.confirmation_useful(&made_up(3)), "the third is not");
    // Votes for blocks not seen yet are kept (they may arrive before the
    // block), but at most 64 per producer: one producer's made-up targets
    // cannot fill the table that honest votes for blocks in flight need.
    let unseen = |k: &crate::address::Keypair, n: u16| {
        let mut id = [9u8; 32];
        id[..2].copy_from_slice(&n.to_be_bytes());
        Confirmation::sign(
            k,
            kit.state().chain_id,
            (2, blocks[1].id()),
            (100 + u64::from(n), Hash32(id)),
        )
    };
    for n in 0..100 {
        f.confirm(&unseen(&keys[0], n));
    }
    assert!(
        !f.confirmation_useful(&unseen(&keys[0], 63)),
        "the 64th is kept"
    );
    assert!(
        f.confirmation_useful(&unseen(&keys[0], 64)),
        "the 65th is not"
    );
    f.confirm(&unseen(&keys[1], 99));
    assert!(
        !f.confirmation_useful(&unseen(&keys[1], 99)),
        "another producer's vote for an unseen block is still kept"
    );
}

/// With finality votes, fork choice follows the highest justified block,
/// not the tallest branch, and a branch is pruned only once a block that
/// excludes it is final.
#[test]
fn fork_choice_follows_the_highest_justified_block() {
    let kit = voting_kit(7);
    let g = kit.state();
    let a = chain(&kit, &g, &[1, 2, 3]);
    let b = chain(&kit, &g, &[4, 5, 6, 7]);
    let mut f = db(&kit);
    for x in a.iter().chain(&b) {
        f.insert(Arc::new(x.clone())).unwrap();
    }
    assert_eq!(
        f.head().id(),
        b[3].id(),
        "nothing justified: the taller branch"
    );
    let keys: Vec<_> = kit.producers.values().cloned().collect();
    let genesis = f.lib().clone();
    // Quorum 5 of 7 justifies A's second block.
    for k in &keys[..5] {
        f.confirm(&vote(&kit, k, &genesis, &a[1]));
    }
    assert_eq!(
        f.head().id(),
        a[2].id(),
        "the branch holding the justified block"
    );
    assert_eq!(f.lib().height(), 0);
    assert_eq!(f.len(), 7, "nothing final, nothing pruned");
    // A link from it to its child finalizes it; B is pruned.
    let a1 = f.get(&a[1].id()).unwrap().clone();
    for k in &keys[2..7] {
        f.confirm(&vote(&kit, k, &a1, &a[2]));
    }
    assert_eq!(f.lib().id(), a[1].id());
    assert_eq!(f.len(), 1, "only A's tip is left above the LIB");
    // A vote whose signature was never checked is the caller's business:
    // the database counts what it is given, once per producer and link.
    assert_eq!(f.confirmations(&a[2].id()), 5);
}

#[test]
fn fork_choice_prefers_higher_lib_over_height() {
    let kit = Kit::with(crate::params::Params::fast(7));
    let g = kit.state();
    // Branch A: slots 1, 2 (two blocks). Branch B: slots 3..=6 (four blocks, taller).
    let a = chain(&kit, &g, &[1, 2]);
    let b = chain(&kit, &g, &[3, 4, 5, 6]);
    let mut f = db(&kit);
    for x in a.iter().chain(&b) {
        f.insert(Arc::new(x.clone())).unwrap();
    }
    assert_eq!(f.head().id(), b[3].id(), "equal LIB: the taller branch");
    // Threshold is 5 of 7: extend A by a round (slots 7..=13: every
    // producer), so more than 5 distinct producers built on A's first block.
    let more = chain(
        &kit,
        f.get(&a[1].id()).unwrap().state.as_ref(),
        &[7, 8, 9, 10, 11, 12, 13],
    );
    for x in &more {
        f.insert(Arc::new(x.clone())).unwrap();
    }
    let lib = f.lib().height();
    assert!(lib >= 1, "production finalized part of A");
    assert!(
        f.head_branch()
            .iter()
            .all(|x| !b.iter().any(|y| y.id() == x.id())),
        "the branch with the higher LIB wins"
    );
    assert!(
        f.get(&b[0].id()).is_none(),
        "branch B was pruned: it does not contain the LIB"
    );
}

#[test]
fn large_blocks_check_signatures_in_parallel_and_name_the_first_bad_one() {
    let kit = Kit::new();
    let st = kit.state();
    let to = kit.users[3].address();
    let mut txs: Vec<_> = (0..700u64)
        .map(|i| {
            let u = &kit.users[(i % 3) as usize];
            kit.tx(u, i / 3, TxKind::Transfer { to, amount: 1 })
        })
        .collect();
    let good = kit.block(&st, 1, txs.clone());
    let next = apply_block(&st, &good, &kit.params).unwrap();
    assert_eq!(next.balance(&to), st.balance(&to) + 700);
    for bad in [650usize, 3] {
        let mut broken = txs.clone();
        broken[bad].sig.0[1] ^= 1;
        broken[bad + 20].sig.0[1] ^= 1;
        let b = kit.block(&st, 1, broken);
        match refused(&st, &kit, &b) {
            BlockError::Tx {
                index,
                error: TxError::BadSignature(_),
                ..
            } => assert_eq!(index, bad),
            e => panic!("{e}"),
        }
    }
    txs.truncate(1);
}

/// `qcss network up`'s shape: three nodes holding 11, 10 and 10 of the 31
/// producer keys, votes on. Each node votes with every key it holds, so a
/// block is final once its child's votes are in (two of the three nodes
/// make a quorum).
#[test]
fn nodes_holding_several_keys_vote_with_each() {
    let kit = voting_kit(31);
    let clock = VirtualClock::default();
    let keys: Vec<_> = kit.producers.values().cloned().collect();
    let mut nodes: Vec<Node> = [0..11, 11..21, 21..31]
        .into_iter()
        .map(|r| {
            let mut n = Node::in_memory(&kit.genesis, None, Arc::new(clock.clone())).unwrap();
            for k in &keys[r] {
                n.add_producer_key(k.clone());
            }
            n
        })
        .collect();
    let slots = 40;
    for slot in 1..=slots {
        clock.set(slot * kit.params.slot_ms);
        for i in 0..nodes.len() {
            let Some(b) = nodes[i].produce_if_scheduled().unwrap() else {
                continue;
            };
            let mut votes = nodes[i].take_votes();
            assert!(!votes.is_empty(), "the producer votes for its own block");
            let mut k = 0;
            for (j, n) in nodes.iter_mut().enumerate() {
                if j != i
                    && let Ok(BlockOutcome::Added { votes: v }) = n.on_block(b.clone())
                {
                    votes.extend(v);
                }
            }
            while k < votes.len() {
                for n in nodes.iter_mut() {
                    let o = n.on_confirmation(&votes[k]).unwrap();
                    votes.extend(o.votes);
                }
                k += 1;
            }
        }
    }
    for n in &nodes {
        let s = n.status();
        assert_eq!(s.head_height, slots);
        assert!(s.head_height - s.lib_height <= 1, "{s:?}");
    }
    // A producer node catching up (here: one whose data was wiped, syncing
    // the chain a round and more after it was made) votes on none of the old
    // blocks — it could surround a vote it cast before the wipe — and on the
    // recent ones again.
    let mut late = Node::in_memory(&kit.genesis, None, Arc::new(clock.clone())).unwrap();
    for k in &keys[0..11] {
        late.add_producer_key(k.clone());
    }
    clock.set((slots + 31) * kit.params.slot_ms);
    let blocks = nodes[0].blocks_after(0).unwrap();
    let mut voted_at = Vec::new();
    for b in blocks {
        if let Ok(BlockOutcome::Added { votes }) = late.on_block(b.clone())
            && !votes.is_empty()
        {
            voted_at.push(b.header.slot);
        }
    }
    assert!(
        voted_at.iter().all(|s| slots + 31 - s <= 31),
        "votes on blocks more than a round old: {voted_at:?}"
    );
    assert!(
        !voted_at.is_empty(),
        "the blocks of the last round get votes"
    );
}

/// A node that receives a double vote keeps it as evidence, and the chain
/// accepts that evidence: the producer is never elected again.
#[test]
fn a_node_catches_a_double_vote_as_evidence() {
    let kit = voting_kit(4);
    let clock = VirtualClock::default();
    let mut node = Node::in_memory(&kit.genesis, None, Arc::new(clock.clone())).unwrap();
    let blocks = chain(&kit, &kit.state(), &[1, 2]);
    clock.set(2 * kit.params.slot_ms);
    for b in &blocks {
        node.on_block(Arc::new(b.clone())).unwrap();
    }
    let k = kit.producers.values().next().unwrap();
    let g = (0, kit.state().head_id);
    let first = Confirmation::sign(k, kit.state().chain_id, g, (2, blocks[1].id()));
    let other = Confirmation::sign(k, kit.state().chain_id, g, (2, Hash32([9; 32])));
    assert!(node.on_confirmation(&first).unwrap().accepted);
    assert!(node.evidence().is_empty());
    node.on_confirmation(&other).unwrap();
    let ev = node.evidence();
    assert_eq!(ev.len(), 1);
    let TxKind::VoteEvidence(v) = &ev[0] else {
        panic!("vote evidence expected: {:?}", ev[0]);
    };
    assert_eq!(v.broken_rule(), Some("double vote"));
    let mut st = kit.state();
    st.apply_tx(
        &kit.tx(&kit.users[0], 0, ev[0].clone()),
        crate::state::TxContext {
            params: &kit.params,
            slot: 1,
            height: 1,
        },
    )
    .unwrap();
    assert!(st.producers[&k.address()].equivocated);
}
