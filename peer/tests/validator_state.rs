//! The validator on a [`MemoryState`] fixture instead of the ledger, the
//! same answers on any number of threads, and the benchmark end to end
//! (no timing assertions).

use qcss_network::policy::Policy;
use qcss_network::signing::KeyKind;
use qcss_peer::ledger::{BlockUpdates, Version, Write};
use qcss_peer::validator::fixture::{Network, RwSet};
use qcss_peer::validator::{
    MemoryState, StaticPolicies, ValidateBenchOptions, ValidateOptions, bench_validate,
    encode_key_policy, validate_block, validate_block_with,
};
use qcss_proto::protos::TxValidationCode as Code;

fn v(block: u64, tx: u32) -> Version {
    Version { block, tx }
}

fn setup() -> (Network, StaticPolicies) {
    let net = Network::new("state-test", &["Org1MSP", "Org2MSP", "Org3MSP"]).unwrap();
    let policies = StaticPolicies::new().with(
        "cc",
        Policy::parse("OR('Org1MSP.peer', 'Org2MSP.peer')").unwrap(),
    );
    (net, policies)
}

#[test]
fn memory_state_answers_like_the_ledger() {
    let (net, policies) = setup();
    let channel = net.channel().unwrap();
    let p1 = net.peer("Org1MSP").unwrap();
    let p3 = net.peer("Org3MSP").unwrap();
    let org3 = Policy::parse("OR('Org3MSP.peer')").unwrap();
    let mut state = MemoryState::new();
    state
        .put("cc", "k", v(4, 2))
        .put("cc", "guarded", v(3, 0))
        .set_metadata("cc", "guarded", Some(encode_key_policy(&org3)))
        .add_tx("already-there");
    let tx = |rw: RwSet, with_org3: bool| {
        let mut b = net.tx("Org1MSP", "cc").unwrap().rwset(rw).endorsed_by(p1);
        if with_org3 {
            b = b.endorsed_by(p3);
        }
        b.build().unwrap().envelope
    };
    let table: Vec<(RwSet, bool, Code)> = vec![
        (
            RwSet::new()
                .read("cc", "k", Some(v(4, 2)))
                .write("cc", "k", b"1"),
            false,
            Code::Valid,
        ),
        (
            RwSet::new().read("cc", "k", Some(v(4, 2))),
            false,
            Code::MvccReadConflict,
        ),
        (
            RwSet::new().read("cc", "k", Some(v(4, 1))),
            false,
            Code::MvccReadConflict,
        ),
        (
            RwSet::new().write("cc", "guarded", b"x"),
            false,
            Code::EndorsementPolicyFailure,
        ),
        (RwSet::new().write("cc", "guarded", b"x"), true, Code::Valid),
        (
            RwSet::new().range("cc", "", "", true, &[("guarded", v(3, 0)), ("k", v(4, 2))]),
            false,
            Code::PhantomReadConflict,
        ),
        (
            RwSet::new().range("cc", "", "", true, &[("guarded", v(5, 4)), ("k", v(5, 0))]),
            false,
            Code::Valid,
        ),
    ];
    let block = net
        .block(
            5,
            &[1; 32],
            table
                .iter()
                .map(|(rw, o3, _)| tx(rw.clone(), *o3))
                .collect(),
        )
        .unwrap();
    let updates = validate_block(&block, &channel, &state, &policies).unwrap();
    let codes: Vec<Code> = updates.txs.iter().map(|u| u.code).collect();
    let want: Vec<Code> = table.iter().map(|t| t.2).collect();
    assert_eq!(codes, want);
    // Only valid transactions carry writes.
    assert_eq!(updates.txs[0].writes, vec![Write::put("cc", "k", b"1")]);
    assert!(updates.txs[1..4].iter().all(|u| u.writes.is_empty()));
}

#[test]
fn same_updates_on_any_number_of_threads() {
    let (net, policies) = setup();
    let channel = net.channel().unwrap();
    let p1 = net.peer("Org1MSP").unwrap();
    let c2 = net.client("Org2MSP").unwrap();
    let state = MemoryState::new();
    let mut envelopes = Vec::new();
    for i in 0..37 {
        let key = format!("k{}", i % 5);
        let mut b = net
            .tx("Org1MSP", "cc")
            .unwrap()
            .rwset(RwSet::new().read("cc", &key, None).write("cc", &key, b"v"));
        b = if i % 7 == 3 {
            b.endorsed_by(c2)
        } else {
            b.endorsed_by(p1)
        };
        envelopes.push(b.build().unwrap().envelope);
        if i % 11 == 0 {
            envelopes.push(vec![0xde, 0xad]);
        }
    }
    let block = net.block(1, &[2; 32], envelopes).unwrap();
    let run = |threads| -> BlockUpdates {
        validate_block_with(
            &block,
            &channel,
            &state,
            &policies,
            ValidateOptions {
                threads,
                ..ValidateOptions::default()
            },
        )
        .unwrap()
        .updates
    };
    let one = run(1);
    let valid = one.txs.iter().filter(|u| u.code == Code::Valid).count();
    assert_eq!(valid, 5, "one per key; the rest conflict or lack a peer");
    for threads in [2, 3, 8, 0] {
        assert_eq!(run(threads), one, "{threads} threads");
    }
}

/// Runs the benchmark, small by default. For figures, in release:
/// `QCSS_BENCH_VALIDATE=20x500 cargo test --release -p qcss-peer --test
/// validator_state benchmark -- --nocapture` (`BLOCKSxTXS[xTHREADS]`); the
/// report is printed as JSON.
#[test]
fn benchmark_runs_and_commits_everything() {
    let spec = std::env::var("QCSS_BENCH_VALIDATE").unwrap_or_else(|_| "2x12".into());
    let n: Vec<u64> = spec.split('x').map(|p| p.parse().unwrap()).collect();
    let (blocks, txs, threads) = (n[0], n[1] as usize, n.get(2).copied().unwrap_or(0));
    // Both key types, and a peer recognising its own endorsements: every
    // transaction must still commit VALID (bench_validate checks).
    for (key_kind, own) in [(KeyKind::P256, false), (KeyKind::Ed25519, true)] {
        let dir = tempfile::tempdir().unwrap();
        let opts = ValidateBenchOptions {
            threads: threads as usize,
            key_kind,
            own,
        };
        let report = bench_validate(&dir.path().join("ledger"), blocks, txs, opts).unwrap();
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
        assert_eq!(report.height, blocks + 1);
        assert_eq!((report.blocks, report.txs_per_block), (blocks, txs));
        assert!(report.threads >= 1);
    }
}
