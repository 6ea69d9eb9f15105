//! Every block the ledger refuses leaves it exactly as it was: a table of
//! (what is wrong, expected error), each tried against the same ledger, whose
//! height, tip, state hash, index and history counts must not move.

use qcss_peer::ledger::testutil::{ChainBuilder, TestTx};
use qcss_peer::ledger::{BlockUpdates, Ledger, LedgerError, Write};
use qcss_proto::common::Block;
use qcss_proto::protos::TxValidationCode as Code;

/// Everything a refused commit must leave unchanged.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    height: u64,
    last: Option<[u8; 32]>,
    state: [u8; 32],
    tx_index: u64,
    history: u64,
    next_tx: Option<qcss_peer::ledger::TxLocation>,
}

fn fingerprint(ledger: &Ledger) -> Fingerprint {
    let report = ledger.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    Fingerprint {
        height: ledger.height(),
        last: ledger.last_block_hash(),
        state: ledger.state_hash().unwrap(),
        tx_index: report.tx_index_entries,
        history: report.history_entries,
        next_tx: ledger.tx("n1").unwrap(),
    }
}

/// A ledger with blocks 0 and 1, and the builder positioned at block 2.
fn base() -> (tempfile::TempDir, Ledger, ChainBuilder) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut chain = ChainBuilder::new();
    for txs in [
        vec![TestTx::new("g0").put("cc", "a", b"1")],
        vec![
            TestTx::new("t1").put("cc", "b", b"2"),
            TestTx::new("t2").delete("cc", "a"),
        ],
    ] {
        let (b, u) = chain.next(&txs);
        ledger.commit(&b, &u).unwrap();
    }
    (dir, ledger, chain)
}

/// The good next block: n1 writes, n2 is invalid.
fn next_txs() -> Vec<TestTx> {
    vec![
        TestTx::new("n1")
            .put("cc", "c", b"3")
            .metadata("cc", "b", Some(b"p")),
        TestTx::new("n2")
            .put("cc", "d", b"4")
            .code(Code::MvccReadConflict),
    ]
}

type Mutation = fn(&mut Block, &mut BlockUpdates, &ChainBuilder);
type Expected = fn(&LedgerError) -> bool;

#[test]
fn refused_blocks_change_nothing() {
    let cases: Vec<(&str, Mutation, Expected)> = vec![
        (
            "number skips ahead",
            |b, _, _| b.header.as_mut().unwrap().number = 3,
            |e| {
                matches!(
                    e,
                    LedgerError::WrongNumber {
                        number: 3,
                        expected: 2
                    }
                )
            },
        ),
        (
            "number repeats",
            |b, _, _| b.header.as_mut().unwrap().number = 1,
            |e| {
                matches!(
                    e,
                    LedgerError::WrongNumber {
                        number: 1,
                        expected: 2
                    }
                )
            },
        ),
        (
            "previous hash broken",
            |b, _, _| b.header.as_mut().unwrap().previous_hash[0] ^= 1,
            |e| matches!(e, LedgerError::BrokenLink { number: 2, .. }),
        ),
        (
            "previous hash empty",
            |b, _, _| b.header.as_mut().unwrap().previous_hash.clear(),
            |e| matches!(e, LedgerError::BrokenLink { number: 2, .. }),
        ),
        (
            "envelope changed after hashing",
            |b, _, _| b.data.as_mut().unwrap().data[1].push(0),
            |e| matches!(e, LedgerError::DataHashMismatch { number: 2, txs: 2 }),
        ),
        (
            "envelopes swapped",
            |b, u, _| {
                b.data.as_mut().unwrap().data.swap(0, 1);
                u.txs.swap(0, 1);
            },
            |e| matches!(e, LedgerError::DataHashMismatch { number: 2, .. }),
        ),
        (
            "data hash not a Merkle root",
            |b, _, _| b.header.as_mut().unwrap().data_hash = vec![0; 32],
            |e| matches!(e, LedgerError::DataHashMismatch { number: 2, .. }),
        ),
        (
            "no header",
            |b, _, _| b.header = None,
            |e| matches!(e, LedgerError::MissingHeader { expected: 2 }),
        ),
        (
            "one update missing",
            |_, u, _| {
                u.txs.pop();
            },
            |e| {
                matches!(
                    e,
                    LedgerError::UpdateCountMismatch {
                        number: 2,
                        txs: 2,
                        updates: 1
                    }
                )
            },
        ),
        (
            "one update too many",
            |_, u, _| u.txs.push(u.txs[0].clone()),
            |e| {
                matches!(
                    e,
                    LedgerError::UpdateCountMismatch {
                        number: 2,
                        txs: 2,
                        updates: 3
                    }
                )
            },
        ),
        (
            "update names another tx id",
            |_, u, _| u.txs[1].tx_id = "n3".into(),
            |e| {
                matches!(
                    e,
                    LedgerError::TxHeaderMismatch {
                        number: 2,
                        position: 1,
                        ..
                    }
                )
            },
        ),
        (
            "update has another timestamp",
            |_, u, _| u.txs[0].timestamp = Some((1, 0)),
            |e| {
                matches!(
                    e,
                    LedgerError::TxHeaderMismatch {
                        number: 2,
                        position: 0,
                        ..
                    }
                )
            },
        ),
        (
            "VALID replay of a committed tx id",
            |b, u, chain| {
                let txs = vec![TestTx::new("t1").put("cc", "z", b"9"), TestTx::new("n2")];
                (*b, *u) = chain.clone().next(&txs);
            },
            |e| {
                matches!(
                    e,
                    LedgerError::DuplicateValidTx {
                        number: 2,
                        position: 0,
                        first_block: 1,
                        first_position: 0,
                        ..
                    }
                )
            },
        ),
        (
            "VALID duplicate inside the block",
            |b, u, chain| {
                let txs = vec![
                    TestTx::new("n1").code(Code::BadPayload),
                    TestTx::new("n1").put("cc", "z", b"9"),
                ];
                (*b, *u) = chain.clone().next(&txs);
            },
            |e| {
                matches!(
                    e,
                    LedgerError::DuplicateValidTx {
                        number: 2,
                        position: 1,
                        first_block: 2,
                        first_position: 0,
                        ..
                    }
                )
            },
        ),
        (
            "VALID but unreadable envelope",
            |b, u, chain| {
                let txs = vec![TestTx::unreadable(vec![0x0f]).code(Code::Valid)];
                (*b, *u) = chain.clone().next(&txs);
            },
            |e| {
                matches!(
                    e,
                    LedgerError::TxHeaderMismatch {
                        number: 2,
                        position: 0,
                        ..
                    }
                )
            },
        ),
        (
            "namespace with 0x00",
            |_, u, _| u.txs[0].writes.push(Write::put("c\0c", "k", b"x".to_vec())),
            |e| {
                matches!(
                    e,
                    LedgerError::InvalidWrite {
                        number: 2,
                        position: 0,
                        ..
                    }
                )
            },
        ),
        (
            "empty namespace",
            |_, u, _| u.txs[0].writes.push(Write::put("", "k", b"x".to_vec())),
            |e| {
                matches!(
                    e,
                    LedgerError::InvalidWrite {
                        number: 2,
                        position: 0,
                        ..
                    }
                )
            },
        ),
        (
            "empty key in a metadata write",
            |_, u, _| {
                u.txs[0]
                    .metadata_writes
                    .push(qcss_peer::ledger::MetadataWrite {
                        ns: "cc".into(),
                        key: String::new(),
                        value: Some(b"p".to_vec()),
                    })
            },
            |e| {
                matches!(
                    e,
                    LedgerError::InvalidWrite {
                        number: 2,
                        position: 0,
                        ..
                    }
                )
            },
        ),
    ];
    let (_dir, ledger, chain) = base();
    let before = fingerprint(&ledger);
    for (name, mutate, expected) in cases {
        let (mut block, mut updates) = chain.clone().next(&next_txs());
        mutate(&mut block, &mut updates, &chain);
        let err = ledger.commit(&block, &updates).expect_err(name);
        assert!(expected(&err), "{name}: unexpected error {err:?}");
        assert_eq!(fingerprint(&ledger), before, "{name}: ledger changed");
    }
    // Writes of invalid transactions are never checked (nor applied).
    let (block, mut updates) = chain.clone().next(&next_txs());
    updates.txs[1]
        .writes
        .push(Write::put("", "", b"x".to_vec()));
    ledger.commit(&block, &updates).unwrap();
    assert_eq!(ledger.height(), 3);
    assert_eq!(ledger.key_metadata("cc", "b").unwrap(), Some(b"p".to_vec()));
    assert_eq!(ledger.get_state("cc", "d").unwrap(), None);
    assert!(ledger.verify().unwrap().is_consistent());
}

#[test]
fn block_zero_must_not_link_to_anything() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let (b, u) = qcss_peer::ledger::testutil::block(0, &[7; 32], &[TestTx::new("t")]);
    assert!(matches!(
        ledger.commit(&b, &u),
        Err(LedgerError::BrokenLink { number: 0, .. })
    ));
    let (b, u) = qcss_peer::ledger::testutil::block(1, &[], &[TestTx::new("t")]);
    assert!(matches!(
        ledger.commit(&b, &u),
        Err(LedgerError::WrongNumber {
            number: 1,
            expected: 0
        })
    ));
    assert_eq!(ledger.height(), 0);
    assert_eq!(ledger.tx("t").unwrap(), None);
}

#[test]
fn errors_name_the_block_and_transaction() {
    let (_dir, ledger, chain) = base();
    let (block, mut updates) = chain.clone().next(&next_txs());
    updates.txs[1].tx_id = "wrong".into();
    let msg = ledger.commit(&block, &updates).unwrap_err().to_string();
    assert!(
        msg.contains("block 2") && msg.contains("transaction 1") && msg.contains("n2"),
        "{msg}"
    );
}
