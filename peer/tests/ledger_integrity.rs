//! State hash and verify: equal ledgers hash equal and differ after any
//! different write; verify passes on good ledgers and reports tampering;
//! damaged data is an error, never a panic.

use prost::Message;
use qcss_peer::ledger::testutil::{ChainBuilder, TestTx, envelope};
use qcss_peer::ledger::{Ledger, LedgerError, RawTree};
use qcss_proto::common::Block;
use qcss_proto::protos::TxValidationCode as Code;

fn ledger_with(blocks: &[Vec<TestTx>]) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut chain = ChainBuilder::new();
    for txs in blocks {
        let (b, u) = chain.next(txs);
        ledger.commit(&b, &u).unwrap();
    }
    (dir, ledger)
}

fn standard() -> Vec<Vec<TestTx>> {
    vec![
        vec![TestTx::new("g")],
        vec![
            TestTx::new("a").put("cc", "k1", b"1").put("cc", "k2", b"2"),
            TestTx::new("b")
                .put("cc", "k3", b"3")
                .metadata("cc", "k1", Some(b"p")),
        ],
        vec![
            TestTx::new("c").delete("cc", "k2").put("xx", "k", b"x"),
            TestTx::new("d")
                .put("cc", "k1", b"no")
                .code(Code::EndorsementPolicyFailure),
        ],
    ]
}

fn hash_of(blocks: &[Vec<TestTx>]) -> [u8; 32] {
    ledger_with(blocks).1.state_hash().unwrap()
}

#[test]
fn same_blocks_give_the_same_state_hash() {
    let (_d1, one) = ledger_with(&standard());
    let (_d2, two) = ledger_with(&standard());
    assert_eq!(one.state_hash().unwrap(), two.state_hash().unwrap());
    assert_eq!(one.verify().unwrap().state_hash, one.state_hash().unwrap());
    assert_eq!(hash_of(&[]), hash_of(&[vec![TestTx::new("only-reads")]]));
}

#[test]
fn any_different_write_changes_the_state_hash() {
    let base = hash_of(&standard());
    let mut value = standard();
    value[1][0] = TestTx::new("a")
        .put("cc", "k1", b"1!")
        .put("cc", "k2", b"2");
    let mut version = standard();
    // Same final values, but k3 written one position later.
    version[1].insert(1, TestTx::new("z"));
    let mut metadata = standard();
    metadata[1][1] = TestTx::new("b")
        .put("cc", "k3", b"3")
        .metadata("cc", "k1", Some(b"q"));
    let mut namespace = standard();
    namespace[2][0] = TestTx::new("c").delete("cc", "k2").put("xy", "k", b"x");
    let mut validity = standard();
    validity[2][1] = TestTx::new("d").put("cc", "k1", b"no");
    let hashes = [
        base,
        hash_of(&value),
        hash_of(&version),
        hash_of(&metadata),
        hash_of(&namespace),
        hash_of(&validity),
    ];
    for i in 0..hashes.len() {
        for j in i + 1..hashes.len() {
            assert_ne!(hashes[i], hashes[j], "variants {i} and {j}");
        }
    }
    // An invalid transaction's writes change nothing.
    let mut invalid = standard();
    invalid[2][1] = TestTx::new("d")
        .put("cc", "k9", b"other")
        .code(Code::MvccReadConflict);
    assert_eq!(hash_of(&invalid), base);
}

#[test]
fn verify_passes_on_a_good_ledger() {
    let (_d, ledger) = ledger_with(&standard());
    let report = ledger.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.height, 3);
    assert_eq!(report.last_block_hash, ledger.last_block_hash());
    assert_eq!((report.transactions, report.valid_transactions), (5, 4));
    assert_eq!(
        (
            report.tx_index_entries,
            report.history_entries,
            report.state_keys
        ),
        (5, 5, 3)
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["state_hash"], hex::encode(report.state_hash));
}

/// Verify must report a problem (at `block`, if given) after `damage`.
fn assert_detected(damage: impl FnOnce(&Ledger), block: Option<u64>) {
    let (_d, ledger) = ledger_with(&standard());
    damage(&ledger);
    let report = ledger.verify().unwrap();
    assert!(!report.is_consistent(), "not detected");
    if let Some(b) = block {
        assert!(
            report.problems.iter().any(|p| p.block == Some(b)),
            "{:?}",
            report.problems
        );
    }
}

fn stored_block(ledger: &Ledger, n: u64) -> Block {
    ledger.block(n).unwrap().unwrap()
}

#[test]
fn verify_detects_a_garbage_block() {
    assert_detected(
        |l| {
            l.tamper_raw(RawTree::Blocks, &1u64.to_be_bytes(), Some(b"\xffgarbage"))
                .unwrap()
        },
        Some(1),
    );
}

#[test]
fn verify_detects_a_replaced_envelope() {
    assert_detected(
        |l| {
            let mut b = stored_block(l, 1);
            b.data.as_mut().unwrap().data[0] =
                envelope("a", Some((1_700_000_000, 0)), b"forged".to_vec());
            l.tamper_raw(
                RawTree::Blocks,
                &1u64.to_be_bytes(),
                Some(&b.encode_to_vec()),
            )
            .unwrap();
        },
        Some(1),
    );
}

#[test]
fn verify_detects_a_rewritten_header() {
    assert_detected(
        |l| {
            let mut b = stored_block(l, 1);
            let h = b.header.as_mut().unwrap();
            h.data_hash = qcss_proto::hash::merkle_root(&[] as &[Vec<u8>]).to_vec();
            b.data = None;
            l.tamper_raw(
                RawTree::Blocks,
                &1u64.to_be_bytes(),
                Some(&b.encode_to_vec()),
            )
            .unwrap();
        },
        // Block 2 no longer links to block 1.
        Some(2),
    );
}

#[test]
fn verify_detects_changed_codes() {
    assert_detected(
        |l| {
            let mut b = stored_block(l, 2);
            b.metadata.as_mut().unwrap().metadata[2] = vec![0, 0];
            l.tamper_raw(
                RawTree::Blocks,
                &2u64.to_be_bytes(),
                Some(&b.encode_to_vec()),
            )
            .unwrap();
        },
        Some(2),
    );
}

#[test]
fn verify_detects_a_missing_block() {
    assert_detected(
        |l| {
            l.tamper_raw(RawTree::Blocks, &1u64.to_be_bytes(), None)
                .unwrap()
        },
        None,
    );
}

#[test]
fn verify_detects_a_forged_state_value() {
    // State record: flags, block u64, tx u32, value (see format.rs).
    let mut record = vec![0];
    record.extend_from_slice(&1u64.to_be_bytes());
    record.extend_from_slice(&0u32.to_be_bytes());
    record.extend_from_slice(b"forged");
    assert_detected(
        |l| {
            l.tamper_raw(RawTree::State, b"cc\0k3", Some(&record))
                .unwrap()
        },
        Some(1),
    );
}

#[test]
fn verify_detects_a_resurrected_key() {
    let mut record = vec![0];
    record.extend_from_slice(&1u64.to_be_bytes());
    record.extend_from_slice(&0u32.to_be_bytes());
    record.extend_from_slice(b"2");
    assert_detected(
        |l| {
            l.tamper_raw(RawTree::State, b"cc\0k2", Some(&record))
                .unwrap()
        },
        None,
    );
}

#[test]
fn verify_detects_index_and_history_damage() {
    assert_detected(
        |l| l.tamper_raw(RawTree::TxIds, b"b", None).unwrap(),
        Some(1),
    );
    assert_detected(
        |l| {
            l.tamper_raw(RawTree::TxIds, b"extra", Some(&[0; 13]))
                .unwrap()
        },
        None,
    );
    assert_detected(
        |l| {
            let k = b"xx\0\0\0\0\x01k\0\0\0\0\0\0\0\x02\0\0\0\0";
            l.tamper_raw(RawTree::History, k, None).unwrap();
        },
        None,
    );
}

#[test]
fn corrupt_records_are_errors_not_panics() {
    let (dir, ledger) = ledger_with(&standard());
    ledger
        .tamper_raw(RawTree::State, b"cc\0k1", Some(&[0, 1, 2]))
        .unwrap();
    ledger.tamper_raw(RawTree::TxIds, b"a", Some(&[9])).unwrap();
    ledger
        .tamper_raw(RawTree::History, b"cc\0\0\0\0\x02k3garbage", Some(b""))
        .unwrap();
    ledger
        .tamper_raw(RawTree::Blocks, &0u64.to_be_bytes(), Some(b"\xff\xff"))
        .unwrap();
    let corrupt = |r: Result<(), LedgerError>| {
        assert!(matches!(r, Err(LedgerError::Corrupt { .. })), "{r:?}")
    };
    corrupt(ledger.get_state("cc", "k1").map(drop));
    corrupt(ledger.key_metadata("cc", "k1").map(drop));
    corrupt(ledger.range("cc", "", "", 0).map(drop));
    corrupt(ledger.state_hash().map(drop));
    corrupt(ledger.tx("a").map(drop));
    corrupt(ledger.block_by_tx_id("a").map(drop));
    corrupt(ledger.history("cc", "k3").map(drop));
    // A damaged block is its own error, naming the block; the damage is
    // recorded (the running peer fails health and repairs it).
    let r = ledger.block(0);
    assert!(
        matches!(r, Err(LedgerError::CorruptBlock { number: 0, .. })),
        "{r:?}"
    );
    let damage = ledger.integrity();
    assert!(damage.corrupt_blocks.contains_key(&0), "{damage:?}");
    assert!(damage.state.is_some(), "{damage:?}");
    let report = ledger.verify().unwrap();
    assert!(report.problems.len() >= 4, "{:?}", report.problems);
    // The last block is intact, so the ledger still opens.
    drop(ledger);
    Ledger::open(dir.path()).unwrap();
}

#[test]
fn open_refuses_a_damaged_tip() {
    let (dir, ledger) = ledger_with(&standard());
    ledger
        .tamper_raw(RawTree::Blocks, &2u64.to_be_bytes(), None)
        .unwrap();
    drop(ledger);
    assert!(matches!(
        Ledger::open(dir.path()),
        Err(LedgerError::Corrupt { .. })
    ));

    let (dir, ledger) = ledger_with(&standard());
    ledger
        .tamper_raw(RawTree::Meta, b"height", Some(&[1, 2]))
        .unwrap();
    drop(ledger);
    assert!(matches!(
        Ledger::open(dir.path()),
        Err(LedgerError::Corrupt { .. })
    ));
}

#[test]
fn open_refuses_other_formats_and_a_second_handle() {
    let (dir, ledger) = ledger_with(&standard());
    assert!(matches!(
        Ledger::open(dir.path()),
        Err(LedgerError::Open { .. })
    ));
    ledger
        .tamper_raw(RawTree::Meta, b"format", Some(&99u32.to_be_bytes()))
        .unwrap();
    drop(ledger);
    assert!(matches!(
        Ledger::open(dir.path()),
        Err(LedgerError::UnsupportedFormat {
            found: 99,
            supported: 1
        })
    ));
}
