//! Commit a small chain and read everything back: state, ranges, key
//! metadata, history with deletes, the tx index with invalid and duplicate
//! transactions, and the stored blocks byte for byte.

use prost::Message;
use qcss_peer::ledger::testutil::{ChainBuilder, TestTx};
use qcss_peer::ledger::{BlockUpdates, HistoryEntry, Ledger, TxLocation, Version};
use qcss_proto::common::Block;
use qcss_proto::hash::block_header_hash;
use qcss_proto::protos::TxValidationCode as Code;

const COMPOSITE: &str = "\0Asset\0a1\0";

/// A block, its updates and the transactions it was built from.
type Built = (Block, BlockUpdates, Vec<TestTx>);

/// The chain every test here commits, with the transactions that built it.
fn chain() -> Vec<Built> {
    let blocks: Vec<Vec<TestTx>> = vec![
        // Block 0: a config-like transaction without a tx id.
        vec![TestTx::new("")],
        vec![
            TestTx::new("a1")
                .at(1_700_000_001, 5)
                .put("cc", "k1", b"v1")
                .put("cc", "k2", b"v2")
                .put("other", "k1", b"o1"),
            TestTx::new("a2")
                .at(1_700_000_002, 0)
                .put("cc", "k3", b"v3")
                .metadata("cc", "k1", Some(b"policy-1")),
            TestTx::new("a3")
                .put("cc", "k1", b"never")
                .code(Code::MvccReadConflict),
            TestTx::unreadable(vec![0x0f, 0x00]),
        ],
        vec![
            TestTx::new("b1")
                .at(1_700_000_010, 0)
                .delete("cc", "k2")
                .put("cc", "k1", b"v1b"),
            TestTx::new("b2").metadata("cc", "k3", Some(b"policy-3")),
            // Replay of a1: invalid, changes nothing, keeps a1's index entry.
            TestTx::new("a1")
                .put("cc", "k9", b"replayed")
                .code(Code::DuplicateTxid),
            TestTx::new("b3").put("cc", COMPOSITE, b"asset"),
        ],
        vec![
            TestTx::new("c1")
                .at(1_700_000_020, 7)
                .put("cc", "k2", b"v2c")
                .delete("cc", "k3")
                .metadata("cc", "k3", Some(b"ignored: no value")),
            // An empty value is a delete, as in Fabric.
            TestTx::new("c2").put("other", "k1", b""),
        ],
    ];
    let mut builder = ChainBuilder::new();
    blocks
        .into_iter()
        .map(|txs| {
            let (b, u) = builder.next(&txs);
            (b, u, txs)
        })
        .collect()
}

fn committed() -> (tempfile::TempDir, Ledger, Vec<Built>) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let chain = chain();
    for (b, u, _) in &chain {
        ledger.commit(b, u).unwrap();
    }
    (dir, ledger, chain)
}

fn v(block: u64, tx: u32) -> Version {
    Version { block, tx }
}

#[test]
fn empty_ledger_has_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.height(), 0);
    assert_eq!(ledger.last_block_hash(), None);
    assert_eq!(ledger.get_state("cc", "k").unwrap(), None);
    assert_eq!(ledger.block(0).unwrap(), None);
    assert!(ledger.history("cc", "k").unwrap().is_empty());
    assert!(ledger.verify().unwrap().is_consistent());
}

#[test]
fn tip_follows_the_chain() {
    let (_dir, ledger, chain) = committed();
    assert_eq!(ledger.height(), 4);
    let last = chain[3].0.header.as_ref().unwrap();
    assert_eq!(ledger.last_block_hash(), Some(block_header_hash(last)));
}

#[test]
fn state_holds_only_valid_writes_in_order() {
    let (_dir, ledger, _) = committed();
    let get = |ns: &str, k: &str| {
        ledger
            .get_state(ns, k)
            .unwrap()
            .map(|vv| (vv.value, vv.version))
    };
    assert_eq!(get("cc", "k1"), Some((b"v1b".to_vec(), v(2, 0))));
    assert_eq!(get("cc", "k2"), Some((b"v2c".to_vec(), v(3, 0))));
    assert_eq!(get("cc", "k3"), None, "deleted in block 3");
    assert_eq!(
        get("cc", "k9"),
        None,
        "written only by an invalid duplicate"
    );
    assert_eq!(get("cc", COMPOSITE), Some((b"asset".to_vec(), v(2, 3))));
    assert_eq!(get("other", "k1"), None, "an empty value deletes");
    assert_eq!(get("nobody", "k1"), None);
}

#[test]
fn key_metadata_survives_value_writes_and_dies_with_the_key() {
    let (_dir, ledger, _) = committed();
    // Set in block 1, kept when b1 rewrote the value.
    assert_eq!(
        ledger.key_metadata("cc", "k1").unwrap(),
        Some(b"policy-1".to_vec())
    );
    // k3: set by b2 (a metadata-only write, which also sets the version) ...
    // ... then deleted by c1, whose own metadata write on it is ignored.
    assert_eq!(ledger.key_metadata("cc", "k3").unwrap(), None);
    assert_eq!(ledger.key_metadata("cc", "k2").unwrap(), None);
    assert_eq!(ledger.key_metadata("cc", "missing").unwrap(), None);
}

#[test]
fn metadata_only_write_sets_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut chain = ChainBuilder::new();
    let (b, u) = chain.next(&[TestTx::new("t0").put("cc", "k", b"v")]);
    ledger.commit(&b, &u).unwrap();
    let (b, u) = chain.next(&[
        TestTx::new("t1"),
        TestTx::new("t2").metadata("cc", "k", Some(b"p")),
    ]);
    ledger.commit(&b, &u).unwrap();
    let vv = ledger.get_state("cc", "k").unwrap().unwrap();
    assert_eq!((vv.value.as_slice(), vv.version), (&b"v"[..], v(1, 1)));
    assert_eq!(ledger.key_metadata("cc", "k").unwrap(), Some(b"p".to_vec()));
    // Removing metadata (empty value) keeps the value.
    let (b, u) = chain.next(&[TestTx::new("t3").metadata("cc", "k", Some(b""))]);
    ledger.commit(&b, &u).unwrap();
    assert_eq!(ledger.key_metadata("cc", "k").unwrap(), None);
    assert_eq!(
        ledger.get_state("cc", "k").unwrap().unwrap().version,
        v(2, 0)
    );
    assert!(ledger.verify().unwrap().is_consistent());
}

#[test]
fn range_is_ordered_bounded_and_per_namespace() {
    let (_dir, ledger, _) = committed();
    let keys = |ns: &str, s: &str, e: &str, limit: usize| -> Vec<String> {
        ledger
            .range(ns, s, e, limit)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    // Composite keys (leading 0x00) sort first, as bytes do.
    assert_eq!(keys("cc", "", "", 0), [COMPOSITE, "k1", "k2"]);
    assert_eq!(keys("cc", "k1", "k2", 0), ["k1"]);
    assert_eq!(keys("cc", "k", "", 1), ["k1"]);
    assert_eq!(keys("cc", "k2", "k1", 0), Vec::<String>::new());
    assert_eq!(keys("cc", "k3", "", 0), Vec::<String>::new());
    assert_eq!(keys("other", "", "", 0), Vec::<String>::new());
    let (k, vv) = &ledger.range("cc", "k2", "", 0).unwrap()[0];
    assert_eq!(
        (k.as_str(), vv.value.as_slice(), vv.version),
        ("k2", &b"v2c"[..], v(3, 0))
    );
    // A namespace with 0x00 would alias another namespace's keys: refused.
    assert!(ledger.range("cc\0k", "", "", 0).is_err());
    assert!(ledger.get_state("", "k1").is_err());
}

#[test]
fn history_lists_valid_writes_and_deletes_oldest_first() {
    let (_dir, ledger, _) = committed();
    let entry = |block, tx, id: &str, value: Option<&[u8]>, ts| HistoryEntry {
        block,
        tx,
        tx_id: id.into(),
        value: value.map(<[u8]>::to_vec),
        timestamp: Some(ts),
        is_delete: value.is_none(),
    };
    assert_eq!(
        ledger.history("cc", "k1").unwrap(),
        [
            entry(1, 0, "a1", Some(b"v1"), (1_700_000_001, 5)),
            entry(2, 0, "b1", Some(b"v1b"), (1_700_000_010, 0)),
        ]
    );
    assert_eq!(
        ledger.history("cc", "k2").unwrap(),
        [
            entry(1, 0, "a1", Some(b"v2"), (1_700_000_001, 5)),
            entry(2, 0, "b1", None, (1_700_000_010, 0)),
            entry(3, 0, "c1", Some(b"v2c"), (1_700_000_020, 7)),
        ]
    );
    // The metadata-only write of b2 is not history.
    let k3: Vec<_> = ledger
        .history("cc", "k3")
        .unwrap()
        .iter()
        .map(HistoryEntry::version)
        .collect();
    assert_eq!(k3, [v(1, 1), v(3, 0)]);
    assert!(ledger.history("cc", "k9").unwrap().is_empty());
    assert_eq!(ledger.history("cc", COMPOSITE).unwrap().len(), 1);
    // The composite key's prefix has no history of its own.
    assert!(ledger.history("cc", "\0Asset").unwrap().is_empty());
    let other = ledger.history("other", "k1").unwrap();
    assert_eq!(other.len(), 2);
    assert!(other[1].is_delete);
}

#[test]
fn tx_index_has_every_transaction_with_its_code_and_keeps_the_first_duplicate() {
    let (_dir, ledger, chain) = committed();
    let loc = |block, position, code| {
        Some(TxLocation {
            block,
            position,
            code,
        })
    };
    assert_eq!(ledger.tx("a1").unwrap(), loc(1, 0, Code::Valid));
    assert_eq!(ledger.tx("a3").unwrap(), loc(1, 2, Code::MvccReadConflict));
    assert_eq!(ledger.tx("b3").unwrap(), loc(2, 3, Code::Valid));
    assert_eq!(ledger.tx("c2").unwrap(), loc(3, 1, Code::Valid));
    assert_eq!(ledger.tx("").unwrap(), None, "no tx id, not indexed");
    assert_eq!(ledger.tx("nope").unwrap(), None);
    assert_eq!(
        ledger.block_by_tx_id("b2").unwrap().as_ref(),
        ledger.block(2).unwrap().as_ref()
    );
    assert_eq!(ledger.block_by_tx_id("nope").unwrap(), None);
    let (env, at) = ledger.tx_envelope("a3").unwrap().unwrap();
    assert_eq!(env, chain[1].2[2].envelope());
    assert_eq!(at.code, Code::MvccReadConflict);
}

#[test]
fn blocks_are_stored_as_received_plus_their_codes() {
    let (_dir, ledger, chain) = committed();
    for (n, (block, updates, _)) in chain.iter().enumerate() {
        let mut expected = block.clone();
        expected.metadata.as_mut().unwrap().metadata[2] =
            updates.txs.iter().map(|t| t.code as i32 as u8).collect();
        let bytes = ledger.block_bytes(n as u64).unwrap().unwrap();
        assert_eq!(bytes, expected.encode_to_vec(), "block {n}");
        assert_eq!(ledger.block(n as u64).unwrap(), Some(expected));
    }
    let filter = &ledger.block(1).unwrap().unwrap().metadata.unwrap().metadata[2];
    assert_eq!(filter, &[0, 0, 11, 2]);
    assert_eq!(ledger.block(4).unwrap(), None);
    assert_eq!(ledger.block_bytes(u64::MAX).unwrap(), None);
}

#[test]
fn a_block_without_metadata_gets_a_filter_slot() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let (mut b, u) = ChainBuilder::new().next(&[TestTx::new("t")]);
    b.metadata = None;
    ledger.commit(&b, &u).unwrap();
    let stored = ledger.block(0).unwrap().unwrap().metadata.unwrap().metadata;
    assert_eq!(stored, [vec![], vec![], vec![0]]);
}

#[test]
fn reopening_shows_the_same_ledger() {
    let (dir, ledger, _) = committed();
    let (hash, tip) = (ledger.state_hash().unwrap(), ledger.last_block_hash());
    let history = ledger.history("cc", "k2").unwrap();
    drop(ledger);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.height(), 4);
    assert_eq!(ledger.last_block_hash(), tip);
    assert_eq!(ledger.state_hash().unwrap(), hash);
    assert_eq!(ledger.history("cc", "k2").unwrap(), history);
    let report = ledger.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.transactions, 11);
    assert_eq!(report.valid_transactions, 8);
    // a1..a3, b1..b3, c1, c2 (the replayed a1 and the tx-less ones are not).
    assert_eq!(report.tx_index_entries, 8);
    assert_eq!(report.state_keys, 3);
}

#[test]
fn state_view_reads_one_snapshot() {
    let (_dir, ledger, _) = committed();
    let view = ledger.state_view();
    assert_eq!(view.height(), 4);
    assert_eq!(view.get_state("cc", "k1").unwrap().unwrap().value, b"v1b");
    assert_eq!(view.range("cc", "k", "", 0).unwrap().len(), 2);
    assert_eq!(
        view.key_metadata("cc", "k1").unwrap(),
        Some(b"policy-1".to_vec())
    );
}

#[test]
fn readers_on_other_threads_see_whole_blocks_only() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = std::sync::Arc::new(Ledger::open(dir.path()).unwrap());
    let keys: Vec<String> = (0..20).map(|k| format!("k{k:02}")).collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (ledger, done) = (ledger.clone(), done.clone());
            std::thread::spawn(move || {
                let mut views = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    // Every block rewrites all 20 keys with its number: a
                    // torn read would mix two numbers.
                    let rows = ledger.range("cc", "", "", 0).unwrap();
                    let view = ledger.state_view();
                    let height = view.height();
                    let value = view.get_state("cc", "k00").unwrap().map(|v| v.value);
                    let last = view.get_state("cc", "k19").unwrap().map(|v| v.value);
                    assert_eq!(value, last);
                    if height > 0 {
                        assert_eq!(value, Some((height - 1).to_string().into_bytes()));
                    }
                    if let Some((_, first)) = rows.first() {
                        assert!(rows.iter().all(|(_, v)| v.value == first.value));
                        assert_eq!(rows.len(), 20);
                    }
                    views += 1;
                }
                views
            })
        })
        .collect();
    let mut chain = ChainBuilder::new();
    for n in 0..60u64 {
        let mut tx = TestTx::new(format!("t{n}"));
        for k in &keys {
            tx = tx.put("cc", k, n.to_string().as_bytes());
        }
        let (b, u) = chain.next(&[tx]);
        ledger.commit(&b, &u).unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}
