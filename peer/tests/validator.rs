//! The validator as a table: each case is a short chain of blocks (real
//! Fabric-shaped transactions from in-process CAs), each block with the
//! codes it must get, and the state the ledger must hold afterwards. Every
//! case runs through `commit_block` on its own sled ledger (genesis first),
//! so the committed-state side, in-block ordering and the ledger's own
//! refusals (a VALID duplicate, say) all take part.

use qcss_network::SigningIdentity;
use qcss_network::channel::Channel;
use qcss_network::policy::Policy;
use qcss_network::signing::KeyKind;
use qcss_network::{Role, envelope};
use qcss_peer::ledger::{Ledger, Version};
use qcss_peer::validator::fixture::{Network, Proposal, RwSet, endorse, sign_envelope};
use qcss_peer::validator::{StaticPolicies, commit_block, commit_genesis};
use qcss_proto::common::HeaderType;
use qcss_proto::protos::TxValidationCode as Code;

const CH: &str = "validator-test";

/// Org1's and Org2's peers endorse chaincode `cc` (either suffices) and
/// `and` (both needed); `other` is written by `cc` transactions in one case.
struct Env {
    net: Network,
    channel: Channel,
    policies: StaticPolicies,
    /// A client of Org1 whose certificate the channel's CRL revokes.
    revoked: SigningIdentity,
    /// A peer of Org2 whose certificate the channel's CRL revokes.
    revoked_peer: SigningIdentity,
    /// A second peer of Org1.
    peer1b: SigningIdentity,
}

impl Env {
    fn new(kind: KeyKind) -> Env {
        let mut net = Network::with_key_kind(CH, &["Org1MSP", "Org2MSP", "Org3MSP"], kind).unwrap();
        let revoked = net.issue("Org1MSP", "mallory", Role::Client).unwrap();
        net.revoke(&revoked).unwrap();
        let revoked_peer = net.issue("Org2MSP", "peer9", Role::Peer).unwrap();
        net.revoke(&revoked_peer).unwrap();
        let peer1b = net.issue("Org1MSP", "peer1", Role::Peer).unwrap();
        let p = |s: &str| Policy::parse(s).unwrap();
        let policies = StaticPolicies::new()
            .with("cc", p("OR('Org1MSP.peer', 'Org2MSP.peer')"))
            .with("and", p("AND('Org1MSP.peer', 'Org2MSP.peer')"))
            .with("other", p("AND('Org1MSP.peer', 'Org2MSP.peer')"));
        Env {
            channel: net.channel().unwrap(),
            net,
            policies,
            revoked,
            revoked_peer,
            peer1b,
        }
    }

    fn peer(&self, org: u8) -> &SigningIdentity {
        self.net.peer(&format!("Org{org}MSP")).unwrap()
    }

    fn client(&self, org: u8) -> &SigningIdentity {
        self.net.client(&format!("Org{org}MSP")).unwrap()
    }

    /// Org1's client invokes `cc`, the endorsers return `rw`.
    fn tx(&self, cc: &str, rw: RwSet, endorsers: &[&SigningIdentity]) -> Vec<u8> {
        let mut b = self.net.tx("Org1MSP", cc).unwrap().rwset(rw);
        for e in endorsers {
            b = b.endorsed_by(e);
        }
        b.build().unwrap().envelope
    }

    /// A valid `cc` transaction by Org1's peer that writes `key = value`.
    fn put(&self, key: &str, value: &[u8]) -> Vec<u8> {
        self.tx("cc", RwSet::new().write("cc", key, value), &[self.peer(1)])
    }

    /// A proposal of `creator` invoking `cc` on the test channel.
    fn proposal(&self, creator: &SigningIdentity, cc: &str) -> Proposal {
        Proposal::new(creator, CH, cc, &[b"invoke"]).unwrap()
    }

    /// The whole path by hand: `creator` proposes, `endorsers` sign the
    /// response with `rw`, `signer` signs the envelope.
    fn by_hand(
        &self,
        proposal: &Proposal,
        rw: RwSet,
        endorsers: &[&SigningIdentity],
        signer: &SigningIdentity,
    ) -> Vec<u8> {
        let prp = proposal.response_payload(rw.to_bytes());
        let e = endorsers
            .iter()
            .map(|p| endorse(p, &prp).unwrap())
            .collect();
        sign_envelope(signer, proposal.transaction_payload(prp, e)).unwrap()
    }
}

fn v(block: u64, tx: u32) -> Version {
    Version { block, tx }
}

/// One row of the table.
struct Case {
    name: &'static str,
    /// Blocks after genesis (block 1, 2, …), each with its expected codes.
    blocks: Vec<(Vec<Vec<u8>>, Vec<Code>)>,
    /// `(namespace, key, value)` afterwards; `None` = absent.
    state: Vec<(&'static str, &'static str, Option<&'static [u8]>)>,
}

fn case(
    name: &'static str,
    blocks: Vec<(Vec<Vec<u8>>, Vec<Code>)>,
    state: Vec<(&'static str, &'static str, Option<&'static [u8]>)>,
) -> Case {
    Case {
        name,
        blocks,
        state,
    }
}

fn cases(env: &Env) -> Vec<Case> {
    use Code::*;
    let (p1, p2, p3) = (env.peer(1), env.peer(2), env.peer(3));
    let c1 = env.client(1);
    let mut out = Vec::new();

    out.push(case(
        "a valid transaction writes, deletes and reads",
        vec![
            (
                vec![env.put("a", b"1"), env.put("b", b"2")],
                vec![Valid, Valid],
            ),
            (
                vec![
                    env.tx(
                        "cc",
                        RwSet::new()
                            .read("cc", "a", Some(v(1, 0)))
                            .read("cc", "never", None)
                            .write("cc", "a", b"1b")
                            .delete("cc", "b"),
                        &[p2],
                    ),
                ],
                vec![Valid],
            ),
        ],
        vec![("cc", "a", Some(b"1b")), ("cc", "b", None)],
    ));

    let rmw = |value: &[u8]| {
        env.tx(
            "cc",
            RwSet::new()
                .read("cc", "k", Some(v(1, 0)))
                .write("cc", "k", value),
            &[p1],
        )
    };
    out.push(case(
        "two transactions read and write one key in a block: the second conflicts",
        vec![
            (vec![env.put("k", b"0")], vec![Valid]),
            (
                vec![rmw(b"first"), rmw(b"second")],
                vec![Valid, MvccReadConflict],
            ),
        ],
        vec![("cc", "k", Some(b"first"))],
    ));

    out.push(case(
        "a read of a key changed by an earlier block conflicts",
        vec![
            (vec![env.put("k", b"0")], vec![Valid]),
            (vec![rmw(b"1")], vec![Valid]),
            (vec![rmw(b"stale")], vec![MvccReadConflict]),
        ],
        vec![("cc", "k", Some(b"1"))],
    ));

    out.push(case(
        "a read of an absent key conflicts once the key exists, and vice versa",
        vec![
            (vec![env.put("k", b"0")], vec![Valid]),
            (
                vec![
                    env.tx(
                        "cc",
                        RwSet::new().read("cc", "k", None).write("cc", "x", b"1"),
                        &[p1],
                    ),
                    env.tx("cc", RwSet::new().read("cc", "gone", Some(v(1, 0))), &[p1]),
                    env.tx("cc", RwSet::new().read("cc", "k", Some(v(1, 1))), &[p1]),
                ],
                vec![MvccReadConflict, MvccReadConflict, MvccReadConflict],
            ),
        ],
        vec![("cc", "x", None)],
    ));

    let scan = |exhausted: bool, rows: &[(&str, Version)]| {
        env.tx(
            "cc",
            RwSet::new()
                .range("cc", "r/", "r0", exhausted, rows)
                .write("cc", "scanned", b"yes"),
            &[p1],
        )
    };
    let ac = [("r/a", v(1, 0)), ("r/c", v(1, 1))];
    out.push(case(
        "range reads: current, phantom insert, phantom in the same block, stopped scans",
        vec![
            (
                vec![env.put("r/a", b"a"), env.put("r/c", b"c")],
                vec![Valid, Valid],
            ),
            // Unchanged range; a scan that stopped after r/a ignores what follows.
            (
                vec![scan(true, &ac), scan(false, &ac[..1])],
                vec![Valid, Valid],
            ),
            // r/b appears before a scan in the same block, then a scan from an
            // earlier snapshot sees a phantom; a stopped scan up to r/a does not.
            (
                vec![env.put("r/b", b"b"), scan(true, &ac), scan(false, &ac[..1])],
                vec![Valid, PhantomReadConflict, Valid],
            ),
            // In a later block too; and a deleted row is a phantom as well.
            (
                vec![
                    scan(true, &ac),
                    env.tx("cc", RwSet::new().delete("cc", "r/a"), &[p1]),
                    scan(false, &[("r/a", v(1, 0))]),
                ],
                vec![PhantomReadConflict, Valid, PhantomReadConflict],
            ),
        ],
        vec![("cc", "r/b", Some(b"b")), ("cc", "r/a", None)],
    ));

    let w = || RwSet::new().write("and", "k", b"1");
    out.push(case(
        "AND(Org1.peer, Org2.peer): one org is not enough, both are",
        vec![(
            vec![
                env.tx("and", w(), &[p1]),
                env.tx("and", w(), &[p1, p2]),
                env.tx("and", w(), &[]),
            ],
            vec![EndorsementPolicyFailure, Valid, EndorsementPolicyFailure],
        )],
        vec![("and", "k", Some(b"1"))],
    ));

    out.push(case(
        "an endorser counts once; two peers of one org are still one org",
        vec![(
            vec![
                env.tx("and", w(), &[p1, p1]),
                env.tx("and", w(), &[p1, &env.peer1b]),
                env.tx("and", w(), &[&env.peer1b, p1, p2]),
            ],
            vec![EndorsementPolicyFailure, EndorsementPolicyFailure, Valid],
        )],
        vec![("and", "k", Some(b"1"))],
    ));

    out.push(case(
        "a client's endorsement does not count, even beside a peer's",
        vec![(
            vec![
                env.tx("cc", RwSet::new().write("cc", "k", b"1"), &[c1]),
                env.tx("and", w(), &[p1, env.client(2)]),
            ],
            vec![EndorsementPolicyFailure, EndorsementPolicyFailure],
        )],
        vec![("cc", "k", None), ("and", "k", None)],
    ));

    let tampered = {
        let p = env.proposal(c1, "cc");
        let honest = p.response_payload(RwSet::new().write("cc", "t", b"1").to_bytes());
        let e = vec![endorse(p1, &honest).unwrap(), endorse(p2, &honest).unwrap()];
        let forged = p.response_payload(RwSet::new().write("cc", "t", b"666").to_bytes());
        sign_envelope(c1, p.transaction_payload(forged, e)).unwrap()
    };
    let one_good_one_forged = {
        // p2's signature is over other results: dropped, p1's still counts.
        let p = env.proposal(c1, "cc");
        let prp = p.response_payload(RwSet::new().write("cc", "u", b"1").to_bytes());
        let other = p.response_payload(RwSet::new().write("cc", "u", b"2").to_bytes());
        let e = vec![endorse(p2, &other).unwrap(), endorse(p1, &prp).unwrap()];
        sign_envelope(c1, p.transaction_payload(prp, e)).unwrap()
    };
    out.push(case(
        "a write set changed after endorsement fails every endorsement",
        vec![(
            vec![tampered, one_good_one_forged],
            vec![EndorsementPolicyFailure, Valid],
        )],
        vec![("cc", "t", None), ("cc", "u", Some(b"1"))],
    ));

    let wrong_signer = env.by_hand(
        &env.proposal(c1, "cc"),
        RwSet::new().write("cc", "s", b"1"),
        &[p1],
        env.client(2),
    );
    let mut flipped = env.put("s", b"2");
    let last = flipped.len() - 3;
    flipped[last] ^= 0x01;
    out.push(case(
        "client signature by another key, or damaged",
        vec![(
            vec![wrong_signer, flipped],
            vec![BadCreatorSignature, BadCreatorSignature],
        )],
        vec![("cc", "s", None)],
    ));

    let by_revoked = env.by_hand(
        &env.proposal(&env.revoked, "cc"),
        RwSet::new().write("cc", "m", b"1"),
        &[p1],
        &env.revoked,
    );
    out.push(case(
        "a revoked creator is refused; a revoked peer's endorsement does not count",
        vec![(
            vec![
                by_revoked,
                env.tx("and", w(), &[p1, &env.revoked_peer]),
                env.tx("and", w(), &[p1, &env.revoked_peer, p2]),
            ],
            vec![BadCreatorSignature, EndorsementPolicyFailure, Valid],
        )],
        vec![("cc", "m", None), ("and", "k", Some(b"1"))],
    ));

    let t = env.put("d", b"1");
    out.push(case(
        "a duplicate tx id: replayed from an earlier block, or twice in one block",
        vec![
            (vec![t.clone(), t.clone()], vec![Valid, DuplicateTxid]),
            (vec![t.clone()], vec![DuplicateTxid]),
        ],
        vec![("cc", "d", Some(b"1"))],
    ));

    let org3 = "OR('Org3MSP.peer')";
    let set_policy = env.tx(
        "cc",
        RwSet::new()
            .write("cc", "asset", b"v0")
            .key_policy("cc", "asset", Some(org3)),
        &[p1],
    );
    let write_asset = |value: &[u8], e: &[&SigningIdentity]| {
        env.tx("cc", RwSet::new().write("cc", "asset", value), e)
    };
    out.push(case(
        "a key-level policy requiring Org3, in the same block and later",
        vec![
            (
                vec![
                    set_policy,
                    write_asset(b"no-org3", &[p1]),
                    write_asset(b"v1", &[p1, p3]),
                ],
                vec![Valid, EndorsementPolicyFailure, Valid],
            ),
            (
                vec![
                    write_asset(b"no-org3", &[p1, p2]),
                    // Org3 alone does not satisfy the chaincode policy.
                    write_asset(b"org3-only", &[p3]),
                    // Removing the policy needs the policy too.
                    env.tx("cc", RwSet::new().key_policy("cc", "asset", None), &[p1]),
                    write_asset(b"v2", &[p2, p3]),
                    env.tx(
                        "cc",
                        RwSet::new().key_policy("cc", "asset", None),
                        &[p1, p3],
                    ),
                    write_asset(b"v3", &[p1]),
                ],
                vec![
                    EndorsementPolicyFailure,
                    EndorsementPolicyFailure,
                    EndorsementPolicyFailure,
                    Valid,
                    Valid,
                    Valid,
                ],
            ),
        ],
        vec![("cc", "asset", Some(b"v3"))],
    ));

    let empty = Vec::new();
    let garbage = vec![0x0a, 0xff, 0x01];
    out.push(case(
        "malformed envelopes get their codes and the rest of the block is validated",
        vec![(
            vec![
                garbage,
                env.put("after", b"1"),
                empty,
                b"not protobuf at all".to_vec(),
            ],
            vec![BadPayload, Valid, NilEnvelope, BadPayload],
        )],
        vec![("cc", "after", Some(b"1"))],
    ));

    let mut bad_id = env.proposal(c1, "cc");
    bad_id.edit_channel_header(|ch| ch.tx_id = "0".repeat(64));
    let mut other_channel = env.proposal(c1, "cc");
    other_channel.edit_channel_header(|ch| ch.channel_id = "elsewhere".into());
    let hash_mismatch = {
        let p = env.proposal(c1, "cc");
        let q = env.proposal(c1, "cc");
        let prp = q.response_payload(RwSet::new().write("cc", "h", b"1").to_bytes());
        let e = vec![endorse(p1, &prp).unwrap()];
        sign_envelope(c1, p.transaction_payload(prp, e)).unwrap()
    };
    let (message, _) = envelope::build(c1, CH, HeaderType::Message, b"hello".to_vec()).unwrap();
    let w1 = || RwSet::new().write("cc", "h", b"1");
    out.push(case(
        "header and structure: tx id, channel, proposal hash, type, chaincode, rwset",
        vec![(
            vec![
                env.by_hand(&bad_id, w1(), &[p1], c1),
                env.by_hand(&other_channel, w1(), &[p1], c1),
                hash_mismatch,
                prost::Message::encode_to_vec(&message),
                env.tx(
                    "undefined",
                    RwSet::new().write("undefined", "h", b"1"),
                    &[p1],
                ),
                env.tx("cc", RwSet::new().write("other", "h", b"1"), &[p1]),
                env.tx("cc", RwSet::new().write("nowhere", "h", b"1"), &[p1, p2]),
                env.tx("cc", RwSet::new().write("cc", "", b"1"), &[p1]),
                env.tx("cc", RwSet::new().write("other", "h", b"1"), &[p1, p2]),
            ],
            vec![
                BadProposalTxid,
                TargetChainNotFound,
                InvalidEndorserTransaction,
                UnknownTxType,
                InvalidChaincode,
                EndorsementPolicyFailure,
                InvalidChaincode,
                InvalidWriteset,
                Valid,
            ],
        )],
        vec![("cc", "h", None), ("other", "h", Some(b"1"))],
    ));

    out
}

fn fresh_ledger(env: &Env) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    commit_genesis(&ledger, &env.net.genesis(), &env.channel).unwrap();
    (dir, ledger)
}

/// The table with ECDSA P-256 identities, then with Ed25519 ones: the
/// validator batches a block's Ed25519 signatures and re-checks eagerly on a
/// batch failure, so every verdict (the forged and tampered signatures
/// included) must be the same.
#[test]
fn validation_codes_table() {
    for kind in [KeyKind::P256, KeyKind::Ed25519] {
        run_table(&Env::new(kind), kind);
    }
}

fn run_table(env: &Env, kind: KeyKind) {
    for case in cases(env) {
        let case = Case {
            name: if kind == KeyKind::P256 {
                case.name
            } else {
                Box::leak(format!("{} (ed25519)", case.name).into_boxed_str())
            },
            ..case
        };
        let (_dir, ledger) = fresh_ledger(env);
        for (i, (envelopes, want)) in case.blocks.into_iter().enumerate() {
            let block = env.net.next_block(&ledger, envelopes).unwrap();
            let got = commit_block(&ledger, &block, &env.channel, &env.policies)
                .unwrap_or_else(|e| panic!("{}: block {}: {e}", case.name, i + 1));
            assert_eq!(got, want, "{}: block {}", case.name, i + 1);
        }
        for (ns, key, want) in case.state {
            let got = ledger.get_state(ns, key).unwrap().map(|v| v.value);
            assert_eq!(got.as_deref(), want, "{}: {ns}/{key}", case.name);
        }
        let report = ledger.verify().unwrap();
        assert!(report.is_consistent(), "{}: {report:?}", case.name);
    }
}

/// A block of 40 transactions by Ed25519 identities, validated on two
/// threads that each batch their share, with bad signatures in both shares:
/// every one is found and gets its code, and the rest are VALID — as one
/// signature at a time would decide.
#[test]
fn bad_signatures_in_an_ed25519_batch_are_found_and_coded() {
    use prost::Message;
    use qcss_peer::validator::{OwnSignatures, ValidateOptions, validate_block_with};
    use qcss_proto::common::Envelope;

    let env = Env::new(KeyKind::Ed25519);
    let (p1, p2, c1) = (env.peer(1), env.peer(2), env.client(1));
    let (_dir, ledger) = fresh_ledger(&env);
    // `cc` with the endorsements of `who`, those in `bad` with one bit of
    // their signature flipped.
    let endorsed = |cc: &str, key: &str, who: &[&SigningIdentity], bad: &[usize]| {
        let p = env.proposal(c1, cc);
        let prp = p.response_payload(RwSet::new().write(cc, key, b"v").to_bytes());
        let e = who
            .iter()
            .enumerate()
            .map(|(i, peer)| {
                let mut e = endorse(peer, &prp).unwrap();
                if bad.contains(&i) {
                    e.signature[9] ^= 1;
                }
                e
            })
            .collect();
        sign_envelope(c1, p.transaction_payload(prp, e)).unwrap()
    };
    let mut envelopes: Vec<Vec<u8>> = (0..40).map(|i| env.put(&format!("k{i}"), b"v")).collect();
    let mut want = vec![Code::Valid; 40];
    envelopes[5] = endorsed("cc", "k5", &[p1], &[0]);
    want[5] = Code::EndorsementPolicyFailure;
    let mut forged_creator = Envelope::decode(envelopes[17].as_slice()).unwrap();
    forged_creator.signature[3] ^= 1;
    envelopes[17] = forged_creator.encode_to_vec();
    want[17] = Code::BadCreatorSignature;
    // One good endorsement satisfies `cc`: the bad one just does not count.
    envelopes[30] = endorsed("cc", "k30", &[p1, p2], &[0]);
    envelopes[33] = endorsed("and", "k33", &[p1, p2], &[1]);
    want[33] = Code::EndorsementPolicyFailure;

    let block = env.net.next_block(&ledger, envelopes.clone()).unwrap();
    let options = ValidateOptions {
        threads: 2,
        ..ValidateOptions::default()
    };
    let v = validate_block_with(&block, &env.channel, &ledger, &env.policies, options).unwrap();
    assert_eq!(v.stats.threads, 2);
    let got: Vec<Code> = v.updates.txs.iter().map(|t| t.code).collect();
    assert_eq!(got, want);
    // Every share clean: no fallback, all VALID.
    let clean: Vec<Vec<u8>> = (0..40).map(|i| env.put(&format!("c{i}"), b"v")).collect();
    let block = env.net.next_block(&ledger, clean).unwrap();
    let v = validate_block_with(&block, &env.channel, &ledger, &env.policies, options).unwrap();
    assert!(v.updates.txs.iter().all(|t| t.code == Code::Valid));

    // Endorsements the validating peer signed itself are recognised and not
    // verified again, once each; an unknown one is verified as usual.
    let own = OwnSignatures::new();
    let p = env.proposal(c1, "cc");
    let prp = p.response_payload(RwSet::new().write("cc", "mine", b"v").to_bytes());
    let e = endorse(p1, &prp).unwrap();
    let mut signed = prp.clone();
    signed.extend_from_slice(&e.endorser);
    own.remember(&signed, &e.signature);
    own.remember(b"something else", b"sig");
    let tx = sign_envelope(c1, p.transaction_payload(prp, vec![e])).unwrap();
    let block = env.net.next_block(&ledger, vec![tx]).unwrap();
    let with_own = ValidateOptions {
        own: Some(&own),
        ..options
    };
    let v = validate_block_with(&block, &env.channel, &ledger, &env.policies, with_own).unwrap();
    assert_eq!(v.updates.txs[0].code, Code::Valid);
    assert_eq!(own.len(), 1, "the matching entry was used once");
}
