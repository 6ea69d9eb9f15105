//! Tests of `chain.rs`: blocks and Raft state in one sled database.

use qcss_network::Role;
use qcss_network::block::{
    config_envelope_from_block, genesis_block, is_config_block, last_config_index,
};
use qcss_proto::common::Status;
use serde_bytes::ByteBuf;

use super::*;
use crate::config_update::{ConfigUpdate, build_update_envelope, sign_update};
use crate::fixtures::{CHANNEL, TestOrg, channel_config};

struct Node {
    _dir: tempfile::TempDir,
    chain: Chain,
}

fn node(genesis: &Block, signer: SigningIdentity) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let chain = Chain::open(&db, genesis, Arc::new(signer)).unwrap();
    Node { _dir: dir, chain }
}

fn batch(envs: &[&Envelope]) -> Batch {
    Batch {
        envelopes: envs
            .iter()
            .map(|e| ByteBuf::from(e.encode_to_vec()))
            .collect(),
    }
}

fn header_and_data(c: &Chain) -> Vec<Vec<u8>> {
    (0..c.height())
        .map(|n| {
            let b = c.block(n).unwrap().unwrap();
            let mut v = b.header.unwrap().encode_to_vec();
            v.extend(b.data.unwrap().encode_to_vec());
            v
        })
        .collect()
}

/// Issue 15: with the leader's time in the batch, a transaction dated
/// outside the channel's window is left out (the same way on every node),
/// and the block carries the time in its signed metadata.
#[test]
fn transactions_dated_outside_the_window_of_the_batch_time_are_left_out() {
    let org1 = TestOrg::new(1);
    let client = org1.identity("client", Role::Client);
    let cfg = channel_config(&[&org1], &org1.identity("o1", Role::Orderer));
    let genesis = genesis_block(&cfg);
    let n = node(&genesis, org1.identity("o1", Role::Orderer));
    let fresh = envelope::build(
        &client,
        CHANNEL,
        HeaderType::EndorserTransaction,
        b"a".to_vec(),
    )
    .unwrap()
    .0;
    let later = envelope::build(
        &client,
        CHANNEL,
        HeaderType::EndorserTransaction,
        b"b".to_vec(),
    )
    .unwrap()
    .0;
    let now_ms = qcss_network::msp::unix_now() as u64 * 1000;
    // Within the window: ordered, with the time.
    let on_time = Batch::stamped(vec![fresh.encode_to_vec()], now_ms + 1_000);
    let out = n.chain.apply_batch(&on_time, 1, 1, b"la").unwrap();
    assert_eq!(out.block, Some(1), "{:?}", out.rejected);
    let block = n.chain.block(1).unwrap().unwrap();
    assert_eq!(
        qcss_network::block::block_time_ms(&block),
        Some(now_ms + 1_000)
    );
    // Ordered 120 s after it was made: outside the 60 s default window.
    let late = Batch::stamped(vec![later.encode_to_vec()], now_ms + 120_000);
    let out = n.chain.apply_batch(&late, 1, 2, b"la").unwrap();
    assert_eq!(out.block, None);
    assert_eq!(out.rejected.len(), 1);
    assert!(
        out.rejected[0].reason.contains("before the reference time"),
        "{:?}",
        out.rejected
    );
    // A leader whose clock is behind cannot move the reference back:
    // the same envelope stamped "now" is still 120 s late.
    let behind = Batch::stamped(vec![later.encode_to_vec()], now_ms);
    let out = n.chain.apply_batch(&behind, 2, 3, b"la").unwrap();
    assert_eq!(out.block, None, "{:?}", out.rejected);
    assert!(out.rejected[0].reason.contains("before the reference time"));
    assert_eq!(
        block.data.unwrap().data.len(),
        1,
        "the marker is not a transaction"
    );
}

/// The duplicate check without the old index (crate::recent): a tx id
/// is refused while its timestamp is in the window, a reopened chain
/// rebuilds the same answer from its blocks, and once the window has
/// moved past it the window itself refuses every copy.
#[test]
fn tx_ids_are_remembered_while_in_the_window_and_rebuilt_on_reopen() {
    let org1 = TestOrg::new(1);
    let client = org1.identity("client", Role::Client);
    let cfg = channel_config(&[&org1], &org1.identity("o1", Role::Orderer));
    let genesis = genesis_block(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let signer = Arc::new(org1.identity("o1", Role::Orderer));
    let chain = Chain::open(&db, &genesis, signer.clone()).unwrap();
    let (a, a_id) = envelope::build(
        &client,
        CHANNEL,
        HeaderType::EndorserTransaction,
        b"a".to_vec(),
    )
    .unwrap();
    let a = a.encode_to_vec();
    let now_ms = qcss_network::msp::unix_now() as u64 * 1000;
    let out = chain
        .apply_batch(&Batch::stamped(vec![a.clone()], now_ms + 1_000), 1, 1, b"1")
        .unwrap();
    assert_eq!(out.block, Some(1), "{:?}", out.rejected);
    let dup = |c: &Chain, at: u64, index: u64| {
        c.apply_batch(&Batch::stamped(vec![a.clone()], at), 1, index, b"x")
            .unwrap()
    };
    let out = dup(&chain, now_ms + 2_000, 2);
    assert_eq!(out.block, None);
    assert!(
        out.rejected[0].reason.contains("duplicate tx id"),
        "{out:?}"
    );
    assert!(chain.has_tx(&a_id));

    // A restarted node reads the same answer back from its blocks.
    drop(chain);
    let chain = Chain::open(&db, &genesis, signer).unwrap();
    assert!(chain.has_tx(&a_id), "rebuilt from the blocks");
    let out = dup(&chain, now_ms + 3_000, 3);
    assert!(
        out.rejected[0].reason.contains("duplicate tx id"),
        "{out:?}"
    );

    // The window moves on (an empty batch 200 s later): the tx id is
    // forgotten, and a copy is refused by the window instead.
    let out = chain
        .apply_batch(&Batch::stamped(vec![], now_ms + 200_000), 1, 4, b"4")
        .unwrap();
    assert_eq!(out.block, None);
    assert!(!chain.has_tx(&a_id), "forgotten once outside the window");
    let out = dup(&chain, now_ms + 201_000, 5);
    assert_eq!(out.block, None);
    assert!(
        out.rejected[0].reason.contains("before the reference time"),
        "{out:?}"
    );
    assert_eq!(chain.height(), 2, "ordered exactly once");
}

#[test]
fn config_updates_apply_in_order_and_identically() {
    let (org1, org2) = (TestOrg::new(1), TestOrg::new(2));
    let admin = org1.identity("admin", Role::Admin);
    let client = org1.identity("client", Role::Client);
    let cfg = channel_config(&[&org1], &org1.identity("o1", Role::Orderer));
    let genesis = genesis_block(&cfg);
    // Two orderers with their own keys apply the same committed batches.
    let nodes = [
        node(&genesis, org1.identity("o1", Role::Orderer)),
        node(&genesis, org1.identity("o2", Role::Orderer)),
    ];
    let normal = |body: &[u8]| {
        envelope::build(
            &client,
            CHANNEL,
            HeaderType::EndorserTransaction,
            body.to_vec(),
        )
        .unwrap()
        .0
    };
    let update = |change: &dyn Fn(&mut ChannelConfig)| {
        let mut next = cfg.clone();
        change(&mut next);
        let mut u = ConfigUpdate::propose(&cfg, next);
        sign_update(&mut u, &admin).unwrap();
        build_update_envelope(&u, &admin).unwrap().0
    };
    let add_org2 = update(&|c| c.orgs.push(org2.org_config()));
    let conflicting = update(&|c| c.batch.batch_timeout_ms = 7);
    let (t1, t2, t3) = (normal(b"1"), normal(b"2"), normal(b"3"));
    let batches = [
        batch(&[&t1, &t2]),
        batch(&[&add_org2]),
        batch(&[&conflicting]),
        batch(&[&add_org2]),
        batch(&[&t3, &conflicting]),
    ];
    let mut outcomes = Vec::new();
    for n in &nodes {
        let o: Vec<BatchOutcome> = batches
            .iter()
            .enumerate()
            .map(|(i, b)| n.chain.apply_batch(b, 1, i as u64 + 1, b"la").unwrap())
            .collect();
        outcomes.push(o);
    }
    assert_eq!(outcomes[0], outcomes[1], "same outcomes on every node");
    assert_eq!(
        header_and_data(&nodes[0].chain),
        header_and_data(&nodes[1].chain)
    );
    let o = &outcomes[0];
    assert_eq!((o[0].block, o[0].config), (Some(1), None));
    assert_eq!((o[1].block, o[1].config), (Some(2), Some(1)));
    // Built against sequence 0: stale once the first update applied.
    assert_eq!(o[2].block, None);
    assert_eq!(o[2].rejected[0].status, Status::BadRequest as i32);
    assert!(o[2].rejected[0].reason.contains("sequence"), "{:?}", o[2]);
    assert!(
        o[3].rejected[0].reason.contains("duplicate tx id"),
        "{:?}",
        o[3]
    );
    // Never mixed into a block of transactions.
    assert_eq!(o[4].block, Some(3));
    assert_eq!(o[4].rejected.len(), 1);
    assert_eq!(o[4].rejected[0].index, 1);
    assert!(o[4].rejected[0].reason.contains("alone"), "{:?}", o[4]);

    let c = &nodes[1].chain;
    assert_eq!(c.height(), 4);
    assert_eq!(c.channel().config().sequence, 1);
    assert!(c.channel().msp("Org2MSP").is_some());
    assert_eq!(c.config().unwrap(), c.channel().config().clone());
    assert_eq!(c.last_config_block(), 2);
    let b2 = c.block(2).unwrap().unwrap();
    assert!(is_config_block(&b2));
    let (config, last_update) = config_envelope_from_block(&b2).unwrap();
    assert_eq!(config.sequence, 1);
    assert_eq!(last_update.unwrap(), add_org2.encode_to_vec());
    let lc: Vec<u64> = (1..4)
        .map(|n| last_config_index(&c.block(n).unwrap().unwrap()).unwrap())
        .collect();
    assert_eq!(lc, vec![0, 2, 2]);
}

#[test]
fn installing_a_snapshot_restores_blocks_config_and_tx_ids() {
    let (org1, org2) = (TestOrg::new(1), TestOrg::new(2));
    let admin = org1.identity("admin", Role::Admin);
    let client = org1.identity("client", Role::Client);
    let cfg = channel_config(&[&org1], &org1.identity("o1", Role::Orderer));
    let genesis = genesis_block(&cfg);
    let leader = node(&genesis, org1.identity("o1", Role::Orderer));
    let (t1, id1) = envelope::build(
        &client,
        CHANNEL,
        HeaderType::EndorserTransaction,
        b"1".to_vec(),
    )
    .unwrap();
    let mut next = cfg.clone();
    next.orgs.push(org2.org_config());
    let mut u = ConfigUpdate::propose(&cfg, next);
    sign_update(&mut u, &admin).unwrap();
    let (up, up_id) = build_update_envelope(&u, &admin).unwrap();
    leader
        .chain
        .apply_batch(&batch(&[&t1]), 1, 1, b"a")
        .unwrap();
    leader
        .chain
        .apply_batch(&batch(&[&up]), 1, 2, b"b")
        .unwrap();
    let data = leader.chain.snapshot_data().unwrap();

    let follower = node(&genesis, org1.identity("o2", Role::Orderer));
    let mut config_rx = follower.chain.watch_config();
    follower.chain.install(&data).unwrap();
    assert_eq!(
        header_and_data(&follower.chain),
        header_and_data(&leader.chain)
    );
    assert!(follower.chain.has_tx(&id1) && follower.chain.has_tx(&up_id));
    assert_eq!(follower.chain.channel().config().sequence, 1);
    assert_eq!(follower.chain.last_config_block(), 2);
    assert!(config_rx.has_changed().unwrap());
    assert_eq!(*config_rx.borrow_and_update(), 1);
}

/// Issue 19: every block's signed metadata carries the anchoring MMR root
/// over the blocks before it (config blocks too), the same root an
/// independent full MMR gives; a follower that installed a snapshot, or
/// lost its stored peaks, rebuilds them and goes on certifying the same
/// roots.
#[test]
fn blocks_certify_the_mmr_root_of_every_earlier_block() {
    use qcss_anchor::mmr::{MemStore, NodeStore, peak_positions};
    use qcss_network::block::block_mmr_root;
    let (org1, org2) = (TestOrg::new(1), TestOrg::new(2));
    let admin = org1.identity("admin", Role::Admin);
    let client = org1.identity("client", Role::Client);
    let cfg = channel_config(&[&org1], &org1.identity("o1", Role::Orderer));
    let genesis = genesis_block(&cfg);
    let leader = node(&genesis, org1.identity("o1", Role::Orderer));
    let now_ms = qcss_network::msp::unix_now() as u64 * 1000;
    let tx = |i: u8| {
        let e = envelope::build(&client, CHANNEL, HeaderType::EndorserTransaction, vec![i])
            .unwrap()
            .0;
        Batch::stamped(vec![e.encode_to_vec()], now_ms)
    };
    let mut next = cfg.clone();
    next.orgs.push(org2.org_config());
    let mut u = ConfigUpdate::propose(&cfg, next);
    sign_update(&mut u, &admin).unwrap();
    let up = build_update_envelope(&u, &admin).unwrap().0;
    let mut index = 0;
    let mut apply = |c: &Chain, b: &Batch| {
        index += 1;
        assert!(c.apply_batch(b, 1, index, b"la").unwrap().block.is_some());
    };
    for i in 0..4 {
        apply(&leader.chain, &tx(i));
    }
    apply(
        &leader.chain,
        &Batch::stamped(vec![up.encode_to_vec()], now_ms),
    );
    for i in 4..7 {
        apply(&leader.chain, &tx(i));
    }
    let independent = |c: &Chain| {
        let mut full = MemStore::default();
        let mut roots = Vec::new();
        for n in 0..c.height() {
            let block = c.block(n).unwrap().unwrap();
            let bag: Vec<Hash32> = peak_positions(n)
                .into_iter()
                .map(|p| full.node(p).unwrap().unwrap())
                .collect();
            roots.push((n, block_mmr_root(&block), MMR.bag(&bag).0));
            full.append(&MMR, block_leaf(n, &Hash32(block_hash(&block))));
        }
        roots
    };
    let roots = independent(&leader.chain);
    assert_eq!(roots.len(), 9);
    assert_eq!(roots[0].1, None, "the genesis block carries no root");
    for (n, certified, computed) in &roots[1..] {
        assert_eq!(certified.as_ref(), Some(computed), "block {n}");
    }
    assert!(is_config_block(&leader.chain.block(5).unwrap().unwrap()));

    // A follower installs a snapshot; a third node loses its peaks.
    let follower = node(&genesis, org1.identity("o2", Role::Orderer));
    follower
        .chain
        .install(&leader.chain.snapshot_data().unwrap())
        .unwrap();
    leader.chain.meta.remove(MMR_PEAKS).unwrap();
    leader
        .chain
        .meta
        .insert(MMR_PEAKS, &b"garbage"[..])
        .unwrap();
    let more = tx(9);
    for c in [&leader.chain, &follower.chain] {
        let mut full = MemStore::default();
        for n in 0..c.height() {
            let hash = block_hash(&c.block(n).unwrap().unwrap());
            full.append(&MMR, block_leaf(n, &Hash32(hash)));
        }
        assert_eq!(c.mmr_root().unwrap(), full.peaks.root(&MMR).0);
        assert!(c.apply_batch(&more, 1, 100, b"lb").unwrap().block.is_some());
    }
    let (a, b) = (independent(&leader.chain), independent(&follower.chain));
    assert_eq!(a, b);
    assert_eq!(a[9].1.as_ref(), Some(&a[9].2));
}
