//! The committer's refusals: a block that is not signed by a consenter,
//! whose data was changed after signing, that is not the next block, or a
//! genesis block that is not the channel's, is refused and leaves the
//! ledger exactly as it was. Config blocks: valid alone and with the next
//! sequence, invalid otherwise.

use qcss_network::Role;
use qcss_network::block::{genesis_block, new_block, orderer_metadata, sign_block};
use qcss_network::channel::Channel;
use qcss_network::policy::Policy;
use qcss_peer::ledger::Ledger;
use qcss_peer::validator::fixture::{Network, RwSet};
use qcss_peer::validator::{StaticPolicies, ValidatorError, commit_block, commit_genesis};
use qcss_proto::common::Block;
use qcss_proto::protos::TxValidationCode as Code;

const CH: &str = "commit-test";

struct Env {
    net: Network,
    channel: Channel,
    policies: StaticPolicies,
    dir: tempfile::TempDir,
    ledger: Ledger,
}

/// A ledger with genesis and one block of one valid transaction.
fn env() -> Env {
    let net = Network::new(CH, &["Org1MSP", "Org2MSP"]).unwrap();
    let channel = net.channel().unwrap();
    let policies = StaticPolicies::new().with("cc", Policy::parse("OR('Org1MSP.peer')").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    commit_genesis(&ledger, &net.genesis(), &channel).unwrap();
    let env = Env {
        net,
        channel,
        policies,
        dir,
        ledger,
    };
    let block = env
        .net
        .next_block(&env.ledger, vec![env.put("a", b"1")])
        .unwrap();
    let codes = commit_block(&env.ledger, &block, &env.channel, &env.policies).unwrap();
    assert_eq!(codes, [Code::Valid]);
    // Index the anchoring MMR as the peer's committer does after each block.
    assert_eq!(env.ledger.mmr_sync().unwrap(), 2);
    env
}

/// The next block, signed by the orderer with `root` as the certified
/// anchoring MMR root (with a block time, as Raft-ordered blocks have).
fn with_root(e: &Env, root: &[u8; 32]) -> Block {
    let prev = e.ledger.last_block_hash().unwrap();
    let mut b = new_block(e.ledger.height(), &prev, vec![e.put("b", b"2")]);
    let md = orderer_metadata(0, 1, 2, Some(1_700_000_000_000), Some(root));
    sign_block(&mut b, e.net.orderer(), md).unwrap();
    b
}

impl Env {
    fn put(&self, key: &str, value: &[u8]) -> Vec<u8> {
        let peer = self.net.peer("Org1MSP").unwrap();
        self.net
            .tx("Org1MSP", "cc")
            .unwrap()
            .rwset(RwSet::new().write("cc", key, value))
            .endorsed_by(peer)
            .build()
            .unwrap()
            .envelope
    }

    fn fingerprint(&self) -> (u64, Option<[u8; 32]>, [u8; 32]) {
        (
            self.ledger.height(),
            self.ledger.last_block_hash(),
            self.ledger.state_hash().unwrap(),
        )
    }
}

type Make = fn(&Env) -> Block;
type Expect = fn(&ValidatorError) -> bool;

#[test]
fn refused_blocks_change_nothing() {
    let cases: Vec<(&str, Make, Expect)> = vec![
        (
            "unsigned",
            |e| {
                let prev = e.ledger.last_block_hash().unwrap();
                new_block(e.ledger.height(), &prev, vec![e.put("b", b"2")])
            },
            |err| matches!(err, ValidatorError::BlockRefused { number: 2, .. }),
        ),
        (
            "signed by a client, not a consenter",
            |e| {
                let prev = e.ledger.last_block_hash().unwrap();
                let mut b = new_block(e.ledger.height(), &prev, vec![e.put("b", b"2")]);
                let client = e.net.client("Org1MSP").unwrap();
                sign_block(&mut b, client, orderer_metadata(0, 1, 2, None, None)).unwrap();
                b
            },
            |err| matches!(err, ValidatorError::BlockRefused { .. }),
        ),
        (
            "signed by an orderer of the org that is not a consenter",
            |e| {
                let prev = e.ledger.last_block_hash().unwrap();
                let mut b = new_block(e.ledger.height(), &prev, vec![e.put("b", b"2")]);
                let rogue = e.net.issue("Org1MSP", "orderer9", Role::Orderer).unwrap();
                sign_block(&mut b, &rogue, orderer_metadata(0, 1, 2, None, None)).unwrap();
                b
            },
            |err| matches!(err, ValidatorError::BlockRefused { .. }),
        ),
        (
            "a transaction swapped after signing",
            |e| {
                let mut b = e.net.next_block(&e.ledger, vec![e.put("b", b"2")]).unwrap();
                b.data.as_mut().unwrap().data[0] = e.put("b", b"forged");
                b
            },
            |err| matches!(err, ValidatorError::BlockRefused { .. }),
        ),
        (
            "signed header altered (number)",
            |e| {
                let mut b = e.net.next_block(&e.ledger, vec![e.put("b", b"2")]).unwrap();
                b.header.as_mut().unwrap().number = 5;
                b
            },
            |err| matches!(err, ValidatorError::BlockRefused { .. }),
        ),
        (
            "a well-signed block that skips ahead",
            |e| {
                let prev = e.ledger.last_block_hash().unwrap();
                e.net.block(3, &prev, vec![e.put("b", b"2")]).unwrap()
            },
            |err| {
                matches!(
                    err,
                    ValidatorError::NotNext {
                        number: 3,
                        height: 2
                    }
                )
            },
        ),
        (
            "a well-signed block that does not link",
            |e| e.net.block(2, &[7u8; 32], vec![e.put("b", b"2")]).unwrap(),
            |err| matches!(err, ValidatorError::Commit { number: 2, .. }),
        ),
        (
            "certifies an anchoring MMR root this ledger does not give",
            |e| with_root(e, &[9; 32]),
            |err| matches!(err, ValidatorError::MmrRootMismatch { number: 2, .. }),
        ),
        (
            "no header",
            |e| {
                let mut b = e.net.next_block(&e.ledger, vec![e.put("b", b"2")]).unwrap();
                b.header = None;
                b
            },
            |err| matches!(err, ValidatorError::NoHeader),
        ),
    ];
    let e = env();
    let before = e.fingerprint();
    for (name, make, expect) in cases {
        let block = make(&e);
        let err = commit_block(&e.ledger, &block, &e.channel, &e.policies).expect_err(name);
        assert!(expect(&err), "{name}: {err}");
        assert_eq!(e.fingerprint(), before, "{name}");
        assert_eq!(e.ledger.get_state("cc", "b").unwrap(), None, "{name}");
    }
    // The good block still commits afterwards, certifying the right root.
    let root = e.ledger.mmr_root(2).unwrap().unwrap();
    let block = with_root(&e, &root.0);
    commit_block(&e.ledger, &block, &e.channel, &e.policies).unwrap();
    assert_eq!(e.ledger.height(), 3);
    drop(e.dir);
}

#[test]
fn genesis_must_be_the_channels_own() {
    let net = Network::new(CH, &["Org1MSP"]).unwrap();
    let channel = net.channel().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let mut other = net.config().clone();
    other.batch.max_message_count = 7;
    let signed_block_1 = net.block(1, &[], vec![]).unwrap();
    for (name, block) in [
        ("another configuration", genesis_block(&other)),
        ("not block 0", signed_block_1),
    ] {
        let err = commit_genesis(&ledger, &block, &channel).expect_err(name);
        assert!(
            matches!(err, ValidatorError::NotGenesis { .. }),
            "{name}: {err}"
        );
        assert_eq!(ledger.height(), 0, "{name}");
    }
    commit_genesis(&ledger, &net.genesis(), &channel).unwrap();
    assert_eq!(ledger.height(), 1);
    let err = commit_genesis(&ledger, &net.genesis(), &channel).unwrap_err();
    assert!(matches!(err, ValidatorError::NotNext { .. }), "{err}");
}

/// The CONFIG envelope of a block carrying `config`.
fn config_envelope(config: &qcss_network::channel::ChannelConfig) -> Vec<u8> {
    genesis_block(config).data.unwrap().data.remove(0)
}

#[test]
fn config_blocks_are_valid_alone_with_the_next_sequence() {
    use Code::*;
    let e = env();
    let mut next = e.net.config().clone();
    next.sequence += 1;
    let mut skip = next.clone();
    skip.sequence += 1;
    let mut foreign = next.clone();
    foreign.channel_id = "elsewhere".into();
    // (name, envelopes of the block, expected codes)
    type Row = (&'static str, Vec<Vec<u8>>, Vec<Code>);
    let cases: Vec<Row> = vec![
        (
            "skips a sequence",
            vec![config_envelope(&skip)],
            vec![InvalidConfigTransaction],
        ),
        (
            "same sequence",
            vec![config_envelope(e.net.config())],
            vec![InvalidConfigTransaction],
        ),
        (
            "another channel",
            vec![config_envelope(&foreign)],
            vec![TargetChainNotFound],
        ),
        (
            "not alone",
            vec![config_envelope(&next), e.put("c", b"3")],
            vec![InvalidConfigTransaction, Valid],
        ),
        (
            "the next configuration",
            vec![config_envelope(&next)],
            vec![Valid],
        ),
    ];
    for (name, envelopes, want) in cases {
        let before = e.ledger.state_hash().unwrap();
        let block = e.net.next_block(&e.ledger, envelopes).unwrap();
        let got = commit_block(&e.ledger, &block, &e.channel, &e.policies).unwrap();
        assert_eq!(got, want, "{name}");
        if !want.contains(&Valid) || name == "the next configuration" {
            assert_eq!(
                e.ledger.state_hash().unwrap(),
                before,
                "{name}: no state change"
            );
        }
    }
}
