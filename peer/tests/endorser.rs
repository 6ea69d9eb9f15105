//! The endorser end to end in one process: identities issued by two orgs'
//! CAs, a channel built from them, a sled ledger on a tempdir with two
//! committed blocks, and the example contract
//! (`chaincode/contracts/build/example.wasm`). The last test hands the
//! assembled transactions to the validator and committer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use prost::Message;
use qcss_chaincode::{ChaincodePackage, CodeHash, Limits, Runtime, Timestamp};
use qcss_network::block::{new_block, orderer_metadata, sign_block};
use qcss_network::certgen::{CertAuthority, SigningProfile, random_serial, rcgen_key};
use qcss_network::channel::{Channel, ChannelConfig, Consenter, OrgConfig};
use qcss_network::envelope::{self, compute_tx_id, creator_bytes};
use qcss_network::msp::{MspConfig, unix_now};
use qcss_network::policy::Policy;
use qcss_network::signing::{self, SigningKey};
use qcss_network::{MspId, Role, SigningIdentity};
use qcss_peer::endorser::{
    AssembleError, ChaincodeDefinition, EndorseError, Endorser, ProposalOptions, Refusal,
    assemble_transaction, build_proposal, build_proposal_with, prepare_transaction,
};
use qcss_peer::ledger::Ledger;
use qcss_peer::ledger::testutil::{ChainBuilder, TEST_CHANNEL, TestTx};
use qcss_peer::validator::{StaticPolicies, commit_block};
use qcss_proto::common::{ChannelHeader, Header, HeaderType, Payload, SignatureHeader};
use qcss_proto::kvrwset::{
    KvMetadataEntry, KvMetadataWrite, KvRead, KvWrite, KvrwSet, QueryReads, RangeQueryInfo,
    Version, range_query_info::ReadsInfo,
};
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEvent, ChaincodeProposalPayload, Proposal,
    ProposalResponse, ProposalResponsePayload, SignedProposal, Transaction,
};
use qcss_proto::rwset::TxReadWriteSet;
use serde_json::json;
use tempfile::TempDir;

const CC: &str = "example";

/// The example contract built by `chaincode/build-contracts.sh`.
fn example_wasm() -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chaincode/contracts/build/example.wasm");
    match std::fs::read(&path) {
        Ok(wasm) => wasm,
        Err(e) => panic!(
            "cannot read {}: {e}\nrun chaincode/build-contracts.sh first",
            path.display()
        ),
    }
}

struct Org {
    ca: CertAuthority,
    msp_id: &'static str,
    name: &'static str,
}

impl Org {
    fn new(name: &'static str, msp_id: &'static str) -> Org {
        Org {
            ca: CertAuthority::new_root(&format!("ca.{name}"), name, 365).unwrap(),
            msp_id,
            name,
        }
    }

    /// An identity issued by this org's CA, returned with its serial.
    fn issue(&self, cn: &str, role: Role, attrs: &[(&str, &str)]) -> (SigningIdentity, Vec<u8>) {
        issue_as(&self.ca, self.name, self.msp_id, cn, role, attrs)
    }

    fn id(&self, cn: &str, role: Role) -> SigningIdentity {
        self.issue(cn, role, &[]).0
    }

    fn org_config(&self) -> OrgConfig {
        OrgConfig {
            msp: MspConfig {
                msp_id: self.msp_id.into(),
                root_certs: vec![self.ca.cert_pem().to_owned()],
                ..Default::default()
            },
            peer_endpoints: vec![],
            display_name: None,
            file_key: None,
        }
    }
}

fn issue_as(
    ca: &CertAuthority,
    org: &str,
    msp_id: &str,
    cn: &str,
    role: Role,
    attrs: &[(&str, &str)],
) -> (SigningIdentity, Vec<u8>) {
    let key = SigningKey::generate().unwrap();
    let serial = random_serial().unwrap();
    let profile = SigningProfile {
        name: cn.into(),
        org: org.into(),
        role,
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let pem = ca
        .issue_signing(&profile, &rcgen_key(&key).unwrap(), &serial, 30)
        .unwrap();
    let id = SigningIdentity::new(MspId(msp_id.into()), pem.into_bytes(), key).unwrap();
    (id, serial)
}

/// Two orgs, one channel, one ledger with committed state, one runtime with
/// the example installed, one endorsing peer per org.
struct Net {
    _dir: TempDir,
    org1: Org,
    org2: Org,
    ledger: Arc<Ledger>,
    channel: Arc<Channel>,
    runtime: Arc<Runtime>,
    code: CodeHash,
    /// Org1 client with attributes `lab=true`, `site=Putian`.
    client: SigningIdentity,
    client2: SigningIdentity,
    admin: SigningIdentity,
    /// The channel's one consenter (signs blocks in the round-trip test).
    orderer: SigningIdentity,
    peer1: Endorser,
    peer2: Endorser,
}

/// Block 0: tx 0 writes `a`, tx 1 writes `b` and `c`. Block 1: tx 0 writes
/// `counter` = 41 and `guarded` with the key-level policy
/// `OR('Org2MSP.peer')`; tx 1 writes another namespace.
fn seed(ledger: &Ledger) {
    let mut chain = ChainBuilder::following(ledger);
    let (b0, u0) = chain.next(&[
        TestTx::new("seed-0").put(CC, "a", b"alpha"),
        TestTx::new("seed-1")
            .put(CC, "b", b"beta")
            .put(CC, "c", b"gamma"),
    ]);
    ledger.commit(&b0, &u0).unwrap();
    let (b1, u1) = chain.next(&[
        TestTx::new("seed-2")
            .put(CC, "counter", b"41")
            .put(CC, "guarded", b"g")
            .metadata(CC, "guarded", Some(b"OR('Org2MSP.peer')")),
        TestTx::new("seed-3").put("other", "a", b"other-a"),
    ]);
    ledger.commit(&b1, &u1).unwrap();
}

impl Net {
    fn new() -> Net {
        let org1 = Org::new("Org1", "Org1MSP");
        let org2 = Org::new("Org2", "Org2MSP");
        let orderer = org1.id("orderer0", Role::Orderer);
        let orderer_pem = String::from_utf8(orderer.cert_pem.clone()).unwrap();
        let channel = Arc::new(
            Channel::new(ChannelConfig {
                channel_id: TEST_CHANNEL.into(),
                sequence: 0,
                orgs: vec![org1.org_config(), org2.org_config()],
                consenters: vec![Consenter {
                    id: 1,
                    address: "127.0.0.1:7050".into(),
                    msp_id: "Org1MSP".into(),
                    tls_cert_pem: orderer_pem.clone(),
                    identity_cert_pem: orderer_pem,
                }],
                batch: Default::default(),
                policies: Default::default(),
            })
            .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(dir.path()).unwrap());
        seed(&ledger);
        let runtime = Arc::new(Runtime::new(Limits::default()));
        let code = runtime.install(&example_wasm()).unwrap();
        let (client, _) = org1.issue(
            "alice",
            Role::Client,
            &[("lab", "true"), ("site", "Putian")],
        );
        let client2 = org2.id("bob", Role::Client);
        let admin = org1.id("admin1", Role::Admin);
        let peer1 = Net::endorser(&org1, "peer0.org1", &channel, &ledger, &runtime, code);
        let peer2 = Net::endorser(&org2, "peer0.org2", &channel, &ledger, &runtime, code);
        Net {
            _dir: dir,
            org1,
            org2,
            ledger,
            channel,
            runtime,
            code,
            client,
            client2,
            admin,
            orderer,
            peer1,
            peer2,
        }
    }

    fn endorser(
        org: &Org,
        cn: &str,
        channel: &Arc<Channel>,
        ledger: &Arc<Ledger>,
        runtime: &Arc<Runtime>,
        code: CodeHash,
    ) -> Endorser {
        let e = Endorser::new(
            org.id(cn, Role::Peer),
            channel.clone(),
            ledger.clone(),
            runtime.clone(),
        )
        .unwrap();
        e.define(definition(CC, code));
        e
    }
}

fn definition(name: &str, code_hash: CodeHash) -> ChaincodeDefinition {
    ChaincodeDefinition {
        name: name.into(),
        version: "1.0".into(),
        sequence: 1,
        code_hash,
    }
}

fn proposal(signer: &SigningIdentity, args: &[&str]) -> (SignedProposal, String) {
    build_proposal(signer, TEST_CHANNEL, CC, args).unwrap()
}

/// The ChaincodeAction inside a response's payload.
fn action(r: &ProposalResponse) -> ChaincodeAction {
    let prp = ProposalResponsePayload::decode(r.payload.as_slice()).unwrap();
    ChaincodeAction::decode(prp.extension.as_slice()).unwrap()
}

/// The example namespace's KVRWSet, or `None` if the rwset has no namespace.
fn kv(action: &ChaincodeAction) -> Option<KvrwSet> {
    let rw = TxReadWriteSet::decode(action.results.as_slice()).unwrap();
    assert_eq!(rw.data_model, 0, "KV");
    match rw.ns_rwset.as_slice() {
        [] => None,
        [ns] => {
            assert_eq!(ns.namespace, CC);
            assert!(ns.collection_hashed_rwset.is_empty());
            Some(KvrwSet::decode(ns.rwset.as_slice()).unwrap())
        }
        more => panic!("{} namespaces", more.len()),
    }
}

fn ok(
    e: &Endorser,
    signer: &SigningIdentity,
    args: &[&str],
) -> (ProposalResponse, ChaincodeAction) {
    let (sp, _) = proposal(signer, args);
    let r = e.endorse(&sp).unwrap();
    let status = r.response.as_ref().map(|r| (r.status, r.message.clone()));
    assert_eq!(status, Some((200, String::new())), "{args:?}");
    let a = action(&r);
    (r, a)
}

fn ver(block_num: u64, tx_num: u64) -> Option<Version> {
    Some(Version { block_num, tx_num })
}

fn read(key: &str, version: Option<Version>) -> KvRead {
    KvRead {
        key: key.into(),
        version,
    }
}

/// Fabric's proposal hash recomputed from the proposal, independently of the
/// endorser's code: SHA-256(channel header ‖ signature header ‖
/// ChaincodeProposalPayload{input} re-encoded without the transient map).
fn fabric_proposal_hash(sp: &SignedProposal) -> Vec<u8> {
    let p = Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
    let h = Header::decode(p.header.as_slice()).unwrap();
    let cpp = ChaincodeProposalPayload::decode(p.payload.as_slice()).unwrap();
    let stripped = ChaincodeProposalPayload {
        input: cpp.input,
        transient_map: Default::default(),
    };
    let mut bytes = h.channel_header.clone();
    bytes.extend_from_slice(&h.signature_header);
    bytes.extend_from_slice(&stripped.encode_to_vec());
    signing::sha256(&bytes).to_vec()
}

fn verify_endorsement(r: &ProposalResponse, peer: &SigningIdentity) {
    let e = r.endorsement.as_ref().expect("endorsed");
    let id = SerializedIdentity::decode(e.endorser.as_slice()).unwrap();
    assert_eq!(id.mspid, peer.msp_id.as_str());
    assert_eq!(id.id_bytes, peer.cert_pem);
    let mut signed = r.payload.clone();
    signed.extend_from_slice(&e.endorser);
    signing::verify(&peer.cert.public_key, &signed, &e.signature).expect("endorsement verifies");
}

#[test]
fn put_gives_the_exact_rwset_and_a_verifiable_endorsement() {
    let net = Net::new();
    let (sp, tx_id) = proposal(&net.client, &["put", "k1", "v1"]);
    let r = net.peer1.endorse(&sp).unwrap();
    assert_eq!(r.version, 1);
    let response = r.response.clone().unwrap();
    assert_eq!(
        (response.status, response.payload.as_slice()),
        (200, &b""[..])
    );
    verify_endorsement(&r, &net.peer1.signer());

    let prp = ProposalResponsePayload::decode(r.payload.as_slice()).unwrap();
    assert_eq!(prp.proposal_hash, fabric_proposal_hash(&sp));
    let a = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    assert_eq!(a.response, Some(response));
    assert!(a.events.is_empty());
    let id = a.chaincode_id.clone().unwrap();
    assert_eq!((id.name.as_str(), id.version.as_str()), (CC, "1.0"));
    assert_eq!(
        kv(&a),
        Some(KvrwSet {
            reads: vec![],
            range_queries_info: vec![],
            writes: vec![KvWrite {
                key: "k1".into(),
                is_delete: false,
                value: b"v1".to_vec(),
            }],
            metadata_writes: vec![],
        })
    );
    // Nothing was written: the ledger does not know the key or the tx.
    assert_eq!(net.ledger.get_state(CC, "k1").unwrap(), None);
    assert_eq!(net.ledger.tx(&tx_id).unwrap(), None);
}

/// The Gateway's Evaluate: the same checks and the same answer as an
/// endorsement, but unsigned (never a transaction), and a bad signature is
/// still refused.
#[test]
fn an_evaluation_answers_like_an_endorsement_but_unsigned() {
    let net = Net::new();
    let (sp, _) = proposal(&net.client, &["put", "k1", "v1"]);
    let endorsed = net.peer1.endorse(&sp).unwrap();
    let evaluated = net.peer1.evaluate(&sp).unwrap();
    assert_eq!(evaluated.response, endorsed.response);
    assert!(evaluated.endorsement.is_none() && evaluated.payload.is_empty());
    let mut forged = sp.clone();
    forged.signature[10] ^= 1;
    assert!(
        net.peer1.evaluate(&forged).is_err(),
        "checked like an endorsement"
    );
}

#[test]
fn reads_carry_committed_versions_and_deletes_are_marked() {
    let net = Net::new();
    let (r, a) = ok(&net.peer1, &net.client, &["get", "b"]);
    assert_eq!(r.response.unwrap().payload, b"beta");
    let rw = kv(&a).unwrap();
    assert_eq!(rw.reads, vec![read("b", ver(0, 1))]);
    assert!(rw.writes.is_empty());

    let (r, a) = ok(&net.peer1, &net.client, &["incr", "counter"]);
    assert_eq!(r.response.unwrap().payload, b"42");
    let rw = kv(&a).unwrap();
    assert_eq!(rw.reads, vec![read("counter", ver(1, 0))]);
    assert_eq!(
        rw.writes,
        vec![KvWrite {
            key: "counter".into(),
            is_delete: false,
            value: b"42".to_vec(),
        }]
    );

    let (_, a) = ok(&net.peer1, &net.client, &["incr", "fresh"]);
    assert_eq!(kv(&a).unwrap().reads, vec![read("fresh", None)]);

    let (_, a) = ok(&net.peer1, &net.client, &["del", "a"]);
    assert_eq!(
        kv(&a).unwrap().writes,
        vec![KvWrite {
            key: "a".into(),
            is_delete: true,
            value: vec![],
        }]
    );
}

#[test]
fn range_records_range_query_info_with_raw_reads() {
    let net = Net::new();
    let (r, a) = ok(&net.peer1, &net.client, &["range", "a", "c", "0"]);
    let rows: serde_json::Value = serde_json::from_slice(&r.response.unwrap().payload).unwrap();
    assert_eq!(
        rows,
        json!([{"key": "a", "value": "alpha"}, {"key": "b", "value": "beta"}])
    );
    let rw = kv(&a).unwrap();
    assert!(rw.reads.is_empty());
    assert_eq!(
        rw.range_queries_info,
        vec![RangeQueryInfo {
            start_key: "a".into(),
            end_key: "c".into(),
            itr_exhausted: true,
            reads_info: Some(ReadsInfo::RawReads(QueryReads {
                kv_reads: vec![read("a", ver(0, 0)), read("b", ver(0, 1))],
            })),
        }]
    );

    // A limit that stops the scan: not exhausted.
    let (_, a) = ok(&net.peer1, &net.client, &["range", "", "", "2"]);
    let info = &kv(&a).unwrap().range_queries_info[0];
    assert!(!info.itr_exhausted);
    let Some(ReadsInfo::RawReads(reads)) = &info.reads_info else {
        panic!("raw reads expected");
    };
    // The row that told the scan there was more is not a read.
    assert_eq!(reads.kv_reads, [read("a", ver(0, 0)), read("b", ver(0, 1))]);
}

#[test]
fn whoami_and_txinfo_come_from_the_creator_and_the_header() {
    let net = Net::new();
    let (r, _) = ok(&net.peer1, &net.client, &["whoami"]);
    let me: serde_json::Value = serde_json::from_slice(&r.response.unwrap().payload).unwrap();
    assert_eq!(
        me,
        json!({
            "msp_id": "Org1MSP",
            "role": "client",
            // Fabric CA's standard attributes come with every certificate.
            "attributes": {"lab": "true", "site": "Putian", "hf.EnrollmentID": "alice",
                           "hf.Type": "client", "hf.Affiliation": "Org1"},
            "cert_pem": net.client.cert.to_pem(),
        })
    );
    let (r, a) = ok(&net.peer2, &net.admin, &["whoami"]);
    let me: serde_json::Value = serde_json::from_slice(&r.response.unwrap().payload).unwrap();
    assert_eq!(
        (me["msp_id"].as_str(), me["role"].as_str()),
        (Some("Org1MSP"), Some("admin"))
    );
    // whoami touches no state: Fabric's builder leaves the namespace out.
    assert_eq!(kv(&a), None);

    // Ten seconds ago: inside the channel's window of the endorser's clock.
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 10;
    let at = Timestamp {
        seconds,
        nanos: 456_000_789,
    };
    let options = ProposalOptions {
        timestamp: Some(at),
        ..Default::default()
    };
    let (sp, tx_id) =
        build_proposal_with(&net.client, TEST_CHANNEL, CC, &["txinfo"], &options).unwrap();
    let r = net.peer1.endorse(&sp).unwrap();
    let info: serde_json::Value = serde_json::from_slice(&r.response.unwrap().payload).unwrap();
    assert_eq!(
        info,
        json!({"tx_id": tx_id, "seconds": seconds, "nanos": 456_000_789})
    );
}

/// Issue 15: a proposal back-dated past the channel's window (an expired
/// permit used by dating the proposal 120 s earlier), or dated in the
/// future or ten years ago, is refused before the contract runs.
#[test]
fn proposals_dated_outside_the_window_are_refused() {
    let net = Net::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let window = qcss_network::channel::DEFAULT_TX_TIME_WINDOW_SECS as i64;
    for (what, seconds) in [
        ("back-dated 120 s", now - 120),
        ("ten years ago", now - 10 * 365 * 86_400),
        ("in the future", now + window + 30),
    ] {
        let options = ProposalOptions {
            timestamp: Some(Timestamp { seconds, nanos: 0 }),
            ..Default::default()
        };
        let (sp, _) =
            build_proposal_with(&net.client, TEST_CHANNEL, CC, &["txinfo"], &options).unwrap();
        let e = net.peer1.endorse(&sp).expect_err(what);
        assert!(
            matches!(e, EndorseError::BadTimestamp { .. }),
            "{what}: {e}"
        );
        assert!(e.to_string().contains("allowed: 60 s"), "{what}: {e}");
    }
}

#[test]
fn emit_gives_a_chaincode_event() {
    let net = Net::new();
    let (sp, tx_id) = proposal(&net.client, &["emit", "shipped", "box-7"]);
    let r = net.peer1.endorse(&sp).unwrap();
    let a = action(&r);
    assert_eq!(
        ChaincodeEvent::decode(a.events.as_slice()).unwrap(),
        ChaincodeEvent {
            chaincode_id: CC.into(),
            tx_id,
            event_name: "shipped".into(),
            payload: b"box-7".to_vec(),
        }
    );
}

#[test]
fn key_level_policies_are_metadata_writes_and_reads() {
    let net = Net::new();
    let (_, a) = ok(
        &net.peer1,
        &net.admin,
        &["set_policy", "a", "OR('Org2MSP.peer')"],
    );
    assert_eq!(
        kv(&a).unwrap().metadata_writes,
        vec![KvMetadataWrite {
            key: "a".into(),
            entries: vec![KvMetadataEntry {
                name: "VALIDATION_PARAMETER".into(),
                value: b"OR('Org2MSP.peer')".to_vec(),
            }],
        }]
    );
    let (r, a) = ok(&net.peer1, &net.client, &["get_policy", "guarded"]);
    assert_eq!(r.response.unwrap().payload, b"OR('Org2MSP.peer')");
    assert_eq!(kv(&a).unwrap().reads, vec![read("guarded", ver(1, 0))]);

    // A policy the validator would refuse is a chaincode failure here.
    let (sp, _) = proposal(&net.admin, &["set_policy", "a", "AND(nonsense"]);
    let r = net.peer1.endorse(&sp).unwrap();
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(
        resp.message.contains("not a valid policy"),
        "{}",
        resp.message
    );
    assert!(r.endorsement.is_none());
}

#[test]
fn chaincode_failures_are_status_500_without_endorsement_and_the_peer_carries_on() {
    let net = Net::new();
    let cases: &[(&[&str], &str)] = &[
        (&["fail", "out of stock"], "out of stock"),
        (&["panic", "oops"], "panicked"),
        (&["loop_forever"], "ran out of fuel"),
        (&["alloc_unbounded"], "memory cap"),
        (&["nope"], "has no function \"nope\""),
        (&["get", "missing"], "key \"missing\" not found"),
        (&["set_policy", "a", "OR('Org1MSP.peer')"], "admin"),
        (&["put", "only-key"], "argument"),
    ];
    for (args, expected) in cases {
        let (sp, _) = proposal(&net.client, args);
        let r = net.peer1.endorse(&sp).unwrap();
        let resp = r.response.clone().unwrap();
        assert_eq!(resp.status, 500, "{args:?}: {resp:?}");
        assert!(
            resp.message.contains(expected),
            "{args:?}: {:?}",
            resp.message
        );
        assert!(r.endorsement.is_none(), "{args:?}");
        assert!(r.payload.is_empty(), "{args:?}");
        ok(&net.peer1, &net.client, &["put", "after", "failure"]);
    }
    let (sp, _) = proposal(&net.client, &["fail", "boom"]);
    assert_eq!(
        net.peer1.endorse(&sp).unwrap().response.unwrap().message,
        "boom"
    );
}

/// Decodes `sp`, lets `edit` change its channel header, re-encodes and signs
/// it with `signer`.
fn tampered(
    sp: &SignedProposal,
    signer: &SigningIdentity,
    edit: impl FnOnce(&mut ChannelHeader),
) -> SignedProposal {
    let mut p = Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
    let mut h = Header::decode(p.header.as_slice()).unwrap();
    let mut ch = ChannelHeader::decode(h.channel_header.as_slice()).unwrap();
    edit(&mut ch);
    h.channel_header = ch.encode_to_vec();
    p.header = h.encode_to_vec();
    let proposal_bytes = p.encode_to_vec();
    SignedProposal {
        signature: signer.sign(&proposal_bytes).unwrap(),
        proposal_bytes,
    }
}

fn refused(net: &Net, sp: &SignedProposal) -> EndorseError {
    match net.peer1.endorse(sp) {
        Ok(r) => panic!("endorsed: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn bad_proposals_are_refused_with_errors_naming_the_problem() {
    let net = Net::new();
    let good = || proposal(&net.client, &["put", "k", "v"]).0;

    // Bad signature: a valid signature of other bytes, then garbage.
    let mut sp = good();
    sp.signature = net.client.sign(b"something else").unwrap();
    let e = refused(&net, &sp);
    assert!(matches!(e, EndorseError::BadSignature { .. }), "{e}");
    assert!(e.to_string().contains("alice of Org1MSP"), "{e}");
    sp.signature = vec![0x30, 0x01, 0x00];
    assert!(matches!(
        refused(&net, &sp),
        EndorseError::BadSignature { .. }
    ));

    // A creator from a CA that is not Org1's, claiming Org1MSP.
    let evil = CertAuthority::new_root("ca.evil", "Org1", 30).unwrap();
    let (mallory, _) = issue_as(&evil, "Org1", "Org1MSP", "mallory", Role::Client, &[]);
    let e = refused(&net, &proposal(&mallory, &["put", "k", "v"]).0);
    assert!(matches!(e, EndorseError::CreatorRefused { .. }), "{e}");
    assert!(e.to_string().contains("does not chain"), "{e}");

    // An MSP that is not in the channel.
    let (stranger, _) = issue_as(&net.org1.ca, "Org3", "Org3MSP", "eve", Role::Client, &[]);
    let e = refused(&net, &proposal(&stranger, &["put", "k", "v"]).0);
    assert!(matches!(e, EndorseError::UnknownMsp { .. }), "{e}");
    assert!(e.to_string().contains("\"Org3MSP\" is not a member"), "{e}");

    // A peer may not propose (Writers: admins and clients).
    let e = refused(&net, &proposal(&net.peer2.signer(), &["put", "k", "v"]).0);
    assert!(matches!(e, EndorseError::AccessDenied { .. }), "{e}");
    assert!(e.to_string().contains("has role peer"), "{e}");

    // Wrong channel.
    let (sp, _) = build_proposal(&net.client, "other-channel", CC, &["put", "k", "v"]).unwrap();
    let e = refused(&net, &sp);
    assert!(matches!(e, EndorseError::WrongChannel { .. }), "{e}");
    assert!(e.to_string().contains("\"other-channel\""), "{e}");
    assert!(e.to_string().contains(&format!("{TEST_CHANNEL:?}")), "{e}");

    // Unknown chaincode.
    let (sp, _) = build_proposal(&net.client, TEST_CHANNEL, "nosuch", &["put", "k", "v"]).unwrap();
    let e = refused(&net, &sp);
    assert_eq!(
        e.to_string(),
        format!("chaincode nosuch is not committed on channel {TEST_CHANNEL}")
    );

    // Malformed bytes at several layers.
    for (bytes, layer) in [
        (vec![], "proposal"),
        (vec![0xff, 0xff, 0xff], "proposal"),
        (
            Proposal {
                header: vec![0x0a, 0x05, 0x01],
                payload: vec![],
                extension: vec![],
            }
            .encode_to_vec(),
            "header",
        ),
    ] {
        let sp = SignedProposal {
            signature: net.client.sign(&bytes).unwrap(),
            proposal_bytes: bytes,
        };
        let e = refused(&net, &sp);
        assert!(matches!(e, EndorseError::Malformed { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("malformed proposal: {layer}")),
            "{e}"
        );
    }
    let e = refused(&net, &proposal(&net.client, &[]).0);
    assert!(e.to_string().contains("args[0]: no function name"), "{e}");

    // Tx id that is not SHA-256(nonce ‖ creator), correctly signed.
    let sp = tampered(&good(), &net.client, |ch| ch.tx_id = "feedface".into());
    let e = refused(&net, &sp);
    assert!(matches!(e, EndorseError::TxIdMismatch { .. }), "{e}");
    assert!(e.to_string().contains("\"feedface\""), "{e}");

    // Not an endorser transaction.
    let sp = tampered(&good(), &net.client, |ch| {
        ch.r#type = HeaderType::Config as i32
    });
    assert!(matches!(
        refused(&net, &sp),
        EndorseError::WrongHeaderType { header_type: 1, .. }
    ));
    let sp = tampered(&good(), &net.client, |ch| ch.timestamp = None);
    assert!(refused(&net, &sp).to_string().contains("no timestamp"));

    // Every refusal leaves the endorser serving.
    ok(&net.peer1, &net.client, &["put", "k", "v"]);
}

#[test]
fn a_revoked_creator_is_refused_once_the_crl_is_in_force() {
    let net = Net::new();
    let (carol, serial) = net.org1.issue("carol", Role::Client, &[]);
    ok(&net.peer1, &carol, &["put", "k", "v"]);
    let crl = net.org1.ca.crl(1, &[(serial, unix_now(), 1)], 7).unwrap();
    net.channel
        .msp("Org1MSP")
        .unwrap()
        .set_crls(vec![crl])
        .unwrap();
    let e = refused(&net, &proposal(&carol, &["put", "k", "v"]).0);
    assert!(matches!(e, EndorseError::CreatorRefused { .. }), "{e}");
    assert!(e.to_string().contains("revoked"), "{e}");
    assert_eq!(e.refusal(), Refusal::PermissionDenied);
    ok(&net.peer1, &net.client, &["put", "k", "v"]);
}

#[test]
fn an_already_committed_tx_id_is_refused() {
    let net = Net::new();
    let options = ProposalOptions {
        nonce: Some(b"a nonce used twice".to_vec()),
        ..Default::default()
    };
    let (sp, tx_id) =
        build_proposal_with(&net.client, TEST_CHANNEL, CC, &["put", "k", "v"], &options).unwrap();
    assert_eq!(
        tx_id,
        compute_tx_id(b"a nonce used twice", &creator_bytes(&net.client))
    );
    net.peer1.endorse(&sp).unwrap();
    let (block, updates) = ChainBuilder::following(&net.ledger).next(&[
        TestTx::new("other"),
        TestTx::new(tx_id.clone()).put(CC, "k", b"v"),
    ]);
    net.ledger.commit(&block, &updates).unwrap();
    let e = refused(&net, &sp);
    assert!(
        matches!(
            e,
            EndorseError::DuplicateTxId {
                block: 2,
                position: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains(&tx_id), "{e}");
    assert!(e.to_string().contains("already committed"), "{e}");
    assert_eq!(e.refusal(), Refusal::AlreadyExists);
}

#[test]
fn chaincode_must_be_installed_with_the_committed_code_hash() {
    let net = Net::new();
    // Committed, nothing installed under that hash or name.
    net.peer1
        .define(definition("ghost", CodeHash::of(b"ghost")));
    let (sp, _) = build_proposal(&net.client, TEST_CHANNEL, "ghost", &["noop"]).unwrap();
    let e = refused(&net, &sp);
    assert!(
        matches!(e, EndorseError::ChaincodeNotInstalled { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("not installed on this peer"), "{e}");
    assert_eq!(e.refusal(), Refusal::FailedPrecondition);

    // Installed under the name, but the definition wants other code.
    let package = ChaincodePackage::new("assets", "1.0", "", example_wasm()).unwrap();
    assert_eq!(net.peer1.install(&package).unwrap(), net.code);
    let wanted = CodeHash::of(b"version two");
    net.peer1.define(definition("assets", wanted));
    let (sp, _) = build_proposal(&net.client, TEST_CHANNEL, "assets", &["noop"]).unwrap();
    let e = refused(&net, &sp);
    assert!(matches!(e, EndorseError::CodeHashMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&net.code.to_hex()) && msg.contains(&wanted.to_hex()),
        "{msg}"
    );

    // Defined with the installed hash: runs, in its own namespace.
    net.peer1.define(definition("assets", net.code));
    let r = net.peer1.endorse(&sp).unwrap();
    assert_eq!(r.response.unwrap().status, 200);
    assert!(net.runtime.is_installed(&net.code));
}

#[test]
fn two_peers_with_the_same_state_produce_identical_payloads() {
    let net = Net::new();
    for args in [
        &["incr", "counter"][..],
        &["range", "", "", "0"],
        &["emit", "e", "p"],
        &["whoami"],
        &["get_policy", "guarded"],
    ] {
        let (sp, _) = proposal(&net.client2, args);
        let r1 = net.peer1.endorse(&sp).unwrap();
        let r2 = net.peer2.endorse(&sp).unwrap();
        assert_eq!(r1.payload, r2.payload, "{args:?}");
        assert_eq!(r1.response, r2.response, "{args:?}");
        verify_endorsement(&r1, &net.peer1.signer());
        verify_endorsement(&r2, &net.peer2.signer());
        assert_ne!(r1.endorsement, r2.endorsement);
    }
}

#[test]
fn assembled_transactions_open_and_mismatches_are_refused() {
    let net = Net::new();
    let options = ProposalOptions {
        transient: BTreeMap::from([("secret".to_owned(), b"never in the tx".to_vec())]),
        ..Default::default()
    };
    let (sp, tx_id) = build_proposal_with(
        &net.client,
        TEST_CHANNEL,
        CC,
        &["incr", "counter"],
        &options,
    )
    .unwrap();
    let r1 = net.peer1.endorse(&sp).unwrap();
    let r2 = net.peer2.endorse(&sp).unwrap();
    let env = assemble_transaction(&sp, &[r1.clone(), r2.clone()], &net.client).unwrap();

    let verified = envelope::open(&env, TEST_CHANNEL, |id| net.channel.msp(id)).unwrap();
    assert_eq!(verified.tx_id(), tx_id);
    assert_eq!(
        verified.header_type(),
        HeaderType::EndorserTransaction as i32
    );
    assert_eq!(verified.creator().msp_id.as_str(), "Org1MSP");

    // The transaction is Fabric's CreateSignedTx shape.
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    let header = payload.header.unwrap();
    let p = Proposal::decode(sp.proposal_bytes.as_slice()).unwrap();
    assert_eq!(header.encode_to_vec(), p.header);
    let tx = Transaction::decode(payload.data.as_slice()).unwrap();
    assert_eq!(tx.actions.len(), 1);
    assert_eq!(tx.actions[0].header, header.signature_header);
    let sh = SignatureHeader::decode(tx.actions[0].header.as_slice()).unwrap();
    assert_eq!(sh.creator, creator_bytes(&net.client));
    let cap = ChaincodeActionPayload::decode(tx.actions[0].payload.as_slice()).unwrap();
    let cpp = ChaincodeProposalPayload::decode(cap.chaincode_proposal_payload.as_slice()).unwrap();
    assert!(cpp.transient_map.is_empty());
    let endorsed = cap.action.unwrap();
    assert_eq!(endorsed.proposal_response_payload, r1.payload);
    assert_eq!(
        endorsed.endorsements,
        vec![
            r1.endorsement.clone().unwrap(),
            r2.endorsement.clone().unwrap()
        ]
    );
    // What a validator checks: the hash over the transaction's own parts.
    let prp =
        ProposalResponsePayload::decode(endorsed.proposal_response_payload.as_slice()).unwrap();
    let mut parts = header.channel_header.clone();
    parts.extend_from_slice(&header.signature_header);
    parts.extend_from_slice(&cap.chaincode_proposal_payload);
    assert_eq!(prp.proposal_hash, signing::sha256(&parts).to_vec());
    assert_eq!(prp.proposal_hash, fabric_proposal_hash(&sp));

    // The Gateway's variant: unsigned, same payload.
    let prepared = prepare_transaction(&sp, &[r1.clone(), r2.clone()]).unwrap();
    assert!(prepared.signature.is_empty());
    assert_eq!(prepared.payload, env.payload);

    // A peer whose state differs computes another payload.
    let dir = tempfile::tempdir().unwrap();
    let empty = Arc::new(Ledger::open(dir.path()).unwrap());
    let stale = Endorser::new(
        net.org2.id("peer1.org2", Role::Peer),
        net.channel.clone(),
        empty,
        net.runtime.clone(),
    )
    .unwrap();
    stale.define(definition(CC, net.code));
    let r3 = stale.endorse(&sp).unwrap();
    let e = assemble_transaction(&sp, &[r1.clone(), r2.clone(), r3], &net.client).unwrap_err();
    assert!(
        matches!(e, AssembleError::PayloadMismatch { index: 2 }),
        "{e}"
    );
    assert!(e.to_string().contains("differ"), "{e}");

    // Failed, unendorsed, missing, or signed by someone else.
    let (bad, _) = proposal(&net.client, &["fail", "nope"]);
    let failed = net.peer1.endorse(&bad).unwrap();
    let e = assemble_transaction(&bad, &[failed], &net.client).unwrap_err();
    assert!(
        matches!(e, AssembleError::Failed { status: 500, .. }),
        "{e}"
    );
    let mut unsigned = r2.clone();
    unsigned.endorsement = None;
    let e = assemble_transaction(&sp, &[r1.clone(), unsigned], &net.client).unwrap_err();
    assert!(matches!(e, AssembleError::NotEndorsed { index: 1 }), "{e}");
    assert!(matches!(
        assemble_transaction(&sp, &[], &net.client),
        Err(AssembleError::NoResponses)
    ));
    let e = assemble_transaction(&sp, &[r1], &net.client2).unwrap_err();
    assert!(matches!(e, AssembleError::NotTheCreator { .. }), "{e}");
}

#[test]
fn the_endorser_identity_must_be_a_peer_of_the_channel() {
    let net = Net::new();
    let try_new = |id: SigningIdentity| {
        Endorser::new(
            id,
            net.channel.clone(),
            net.ledger.clone(),
            net.runtime.clone(),
        )
    };
    let e = try_new(net.org1.id("not-a-peer", Role::Client)).unwrap_err();
    assert!(e.to_string().contains("only peers endorse"), "{e}");
    let evil = CertAuthority::new_root("ca.evil", "Org1", 30).unwrap();
    let (fake, _) = issue_as(&evil, "Org1", "Org1MSP", "peer9", Role::Peer, &[]);
    assert!(try_new(fake).is_err());
    let (outsider, _) = issue_as(
        &net.org1.ca,
        "Org3",
        "Org3MSP",
        "peer0.org3",
        Role::Peer,
        &[],
    );
    assert!(
        try_new(outsider)
            .unwrap_err()
            .to_string()
            .contains("not a member")
    );
}

#[test]
fn refusals_map_to_status_families_and_fabric_style_responses() {
    let net = Net::new();
    let (sp, _) = build_proposal(&net.client, TEST_CHANNEL, "nosuch", &["f"]).unwrap();
    let e = refused(&net, &sp);
    assert_eq!(e.refusal(), Refusal::NotFound);
    let r = e.to_response();
    let resp = r.response.unwrap();
    assert_eq!((resp.status, resp.message), (500, e.to_string()));
    assert!(r.endorsement.is_none() && r.payload.is_empty());
    let e = refused(&net, &SignedProposal::default());
    assert_eq!(e.refusal(), Refusal::InvalidArgument);
}

/// An orderer-signed block of `envelopes` following the ledger's tip.
fn next_block(net: &Net, envelopes: Vec<Vec<u8>>) -> qcss_proto::common::Block {
    let previous = net.ledger.last_block_hash().unwrap_or_default();
    let mut block = new_block(net.ledger.height(), &previous, envelopes);
    sign_block(
        &mut block,
        &net.orderer,
        orderer_metadata(0, 1, 1, None, None),
    )
    .unwrap();
    block
}

/// Endorses `args` by `signer` on `peers` and assembles the transaction.
fn endorsed_tx(signer: &SigningIdentity, peers: &[&Endorser], args: &[&str]) -> (Vec<u8>, String) {
    let (sp, tx_id) = proposal(signer, args);
    let responses: Vec<_> = peers.iter().map(|p| p.endorse(&sp).unwrap()).collect();
    let env = assemble_transaction(&sp, &responses, signer).unwrap();
    (env.encode_to_vec(), tx_id)
}

#[test]
fn endorsed_transactions_validate_and_commit() {
    use qcss_proto::protos::TxValidationCode as Code;
    let net = Net::new();
    let any_peer = Policy::parse("OR('Org1MSP.peer', 'Org2MSP.peer')").unwrap();
    let policies = StaticPolicies::new().with(CC, any_peer);
    let both = [&net.peer1, &net.peer2];

    // Endorsed on the same state, ordered into one block.
    let (incr, incr_id) = endorsed_tx(&net.client, &both, &["incr", "counter"]);
    let (again, _) = endorsed_tx(&net.client2, &both, &["incr", "counter"]);
    // `guarded` carries the key-level policy OR('Org2MSP.peer').
    let (guarded_by_org1, _) = endorsed_tx(&net.client, &[&net.peer1], &["put", "guarded", "x"]);
    let (guarded_by_org2, _) = endorsed_tx(&net.client, &[&net.peer2], &["put", "guarded", "y"]);
    let (scan, _) = endorsed_tx(&net.admin, &[&net.peer1], &["range", "a", "c", "0"]);
    let (policy, _) = endorsed_tx(
        &net.admin,
        &[&net.peer1],
        &["set_policy", "b", "OR('Org1MSP.peer')"],
    );
    let block = next_block(
        &net,
        vec![incr, again, guarded_by_org1, guarded_by_org2, scan, policy],
    );
    let codes = commit_block(&net.ledger, &block, &net.channel, &policies).unwrap();
    assert_eq!(
        codes,
        [
            Code::Valid,
            Code::MvccReadConflict,
            Code::EndorsementPolicyFailure,
            Code::Valid,
            Code::Valid,
            Code::Valid,
        ]
    );
    let counter = net.ledger.get_state(CC, "counter").unwrap().unwrap();
    assert_eq!(counter.value, b"42");
    assert_eq!((counter.version.block, counter.version.tx), (2, 0));
    assert_eq!(
        net.ledger.get_state(CC, "guarded").unwrap().unwrap().value,
        b"y"
    );
    assert_eq!(
        net.ledger.key_metadata(CC, "b").unwrap().unwrap(),
        b"OR('Org1MSP.peer')"
    );

    // The next endorsement reads the committed version; a replay is refused.
    let (_, a) = ok(&net.peer2, &net.client, &["get", "counter"]);
    assert_eq!(kv(&a).unwrap().reads, vec![read("counter", ver(2, 0))]);
    let e = net
        .peer1
        .endorse(&proposal_replay(&net, &incr_id))
        .unwrap_err();
    assert!(
        matches!(
            e,
            EndorseError::DuplicateTxId {
                block: 2,
                position: 0,
                ..
            }
        ),
        "{e}"
    );
}

/// The committed transaction `tx_id`'s proposal cannot be recovered from the
/// envelope, so build one with the same tx id: same creator, same nonce.
fn proposal_replay(net: &Net, tx_id: &str) -> SignedProposal {
    let (env, _) = net.ledger.tx_envelope(tx_id).unwrap().unwrap();
    let env = qcss_proto::common::Envelope::decode(env.as_slice()).unwrap();
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    let sh = SignatureHeader::decode(payload.header.unwrap().signature_header.as_slice()).unwrap();
    let options = ProposalOptions {
        nonce: Some(sh.nonce),
        ..Default::default()
    };
    let (sp, replayed) = build_proposal_with(
        &net.client,
        TEST_CHANNEL,
        CC,
        &["incr", "counter"],
        &options,
    )
    .unwrap();
    assert_eq!(replayed, tx_id);
    sp
}

/// A renewed certificate (`node/identity_watch.rs`): a new peer identity of
/// the same org signs from then on; another org's peer, or a client of the
/// same org, is refused and the identity in use stays.
#[test]
fn a_renewed_signer_must_be_a_peer_of_the_same_org() {
    let net = Net::new();
    let before = net.peer1.signer();
    let (renewed, _) = issue_as(
        &net.org1.ca,
        "Org1",
        "Org1MSP",
        "peer0.org1",
        Role::Peer,
        &[],
    );
    let (client, _) = issue_as(&net.org1.ca, "Org1", "Org1MSP", "c", Role::Client, &[]);
    let e = net.peer1.set_signer(net.peer2.signer()).unwrap_err();
    assert!(e.to_string().contains("cannot replace"), "{e}");
    let e = net.peer1.set_signer(Arc::new(client)).unwrap_err();
    assert!(e.to_string().contains("has role client"), "{e}");
    assert_eq!(net.peer1.signer().cert_pem, before.cert_pem);
    let renewed = Arc::new(renewed);
    net.peer1.set_signer(renewed.clone()).unwrap();
    assert_eq!(net.peer1.signer().cert_pem, renewed.cert_pem);
    let (sp, _) = build_proposal(&net.client, TEST_CHANNEL, CC, &["put", "k", "v"]).unwrap();
    let r = net.peer1.endorse(&sp).unwrap();
    verify_endorsement(&r, &renewed);
}
