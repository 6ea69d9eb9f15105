//! Every refused block with its error, the fork database's LIB rule
//! (golden vector), fork choice, and the node's future-block check.

use std::sync::Arc;

use crate::block::{Block, Confirmation};
use crate::chain::{BlockError, apply_block, scheduled_producer};
use crate::codec::CodecError;
use crate::fork::{Entry, ForkDb, Inserted};
use crate::hash::{Hash32, merkle_root};
use crate::node::{Node, NodeError, VirtualClock};
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
    // Two confirmations of block 3 from producers other than its maker
    // finalize it at once.
    let maker = blocks[2].header.producer;
    let mut fin = 0;
    for k in kit
        .producers
        .values()
        .filter(|k| k.address() != maker)
        .take(2)
    {
        let c = Confirmation::sign(k, kit.state().chain_id, 3, blocks[2].id());
        fin += f.confirm(&c).blocks.len();
    }
    assert_eq!(f.lib().height(), 3);
    assert_eq!(fin, 2, "blocks 2 and 3 became irreversible");
    // Below the LIB nothing is accepted, even a valid sibling.
    let sibling = chain(&kit, &kit.state(), &[2]).remove(0);
    assert!(matches!(
        f.insert(Arc::new(sibling)),
        Err(BlockError::BelowIrreversible { lib: 3, .. })
    ));
    assert_eq!(
        f.insert(Arc::new(blocks[3].clone())).unwrap().0,
        Inserted::Added
    );
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
    // Threshold is 5 of 7: A's tip has its maker; 4 confirmations by others
    // finalize it. (A's first maker built *below* the tip: it does not count.)
    let makers = [a[0].header.producer, a[1].header.producer];
    for k in kit
        .producers
        .values()
        .filter(|k| !makers.contains(&k.address()))
        .take(4)
    {
        f.confirm(&Confirmation::sign(k, g.chain_id, 2, a[1].id()));
    }
    assert_eq!(f.lib().id(), a[1].id());
    assert_eq!(
        f.head().id(),
        a[1].id(),
        "the branch with the higher LIB wins"
    );
    assert!(
        f.is_empty(),
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
