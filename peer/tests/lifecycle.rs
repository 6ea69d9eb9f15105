//! The chaincode lifecycle end to end in one process: three orgs with their
//! own CAs (`validator::fixture::Network`), a sled ledger on a tempdir
//! starting at the genesis block, one endorsing peer per org sharing a
//! `Lifecycle`, the example contract (`chaincode/contracts/build/example.wasm`)
//! packaged, and every approval and commit going through endorsement,
//! `assemble_transaction`, an orderer-signed block and `commit_block` with
//! the lifecycle as the policy provider, then `Lifecycle::refresh`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use qcss_chaincode::{ChaincodePackage, CodeHash, Limits, Runtime};
use qcss_network::channel::Channel;
use qcss_network::{Role, SigningIdentity};
use qcss_peer::endorser::{EndorseError, Endorser, Refusal, assemble_transaction, build_proposal};
use qcss_peer::ledger::Ledger;
use qcss_peer::lifecycle::{
    Definition, LIFECYCLE_NAMESPACE, Lifecycle, LifecycleError, approval_key, approve_args,
    check_commit_readiness_args, commit_args, decode_definition, decode_definitions,
    decode_installed, decode_installed_list, decode_readiness, definition_key, install_args,
    query_definition_args, query_definitions_args, query_installed_args,
};
use qcss_peer::validator::fixture::{Network, RwSet};
use qcss_peer::validator::{commit_block, commit_genesis};
use qcss_proto::protos::{ProposalResponse, TxValidationCode as Code};
use tempfile::TempDir;

const CH: &str = "lifecycle-test";
const CC: &str = "example";
const ORGS: [&str; 3] = ["Org1MSP", "Org2MSP", "Org3MSP"];

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

/// The example contract with a custom section appended: the same code under
/// another code hash (an "upgrade").
fn example_wasm_v2() -> Vec<u8> {
    let mut wasm = example_wasm();
    // Section id 0 (custom), 5 bytes: name length 4, name "qcss".
    wasm.extend_from_slice(&[0, 5, 4, b'q', b'c', b's', b's']);
    wasm
}

fn package(version: &str, wasm: Vec<u8>) -> ChaincodePackage {
    ChaincodePackage::new(CC, version, "", wasm).unwrap()
}

fn definition(sequence: u64, version: &str, code_hash: CodeHash) -> Definition {
    Definition {
        name: CC.into(),
        version: version.into(),
        sequence,
        code_hash,
        endorsement_policy: String::new(),
    }
}

struct Env {
    dir: TempDir,
    net: Network,
    channel: Arc<Channel>,
    ledger: Arc<Ledger>,
    lifecycle: Arc<Lifecycle>,
    /// One endorsing peer per org, in `ORGS` order.
    peers: Vec<Endorser>,
    /// One admin per org, in `ORGS` order.
    admins: Vec<SigningIdentity>,
}

impl Env {
    fn new() -> Env {
        let net = Network::new(CH, &ORGS).unwrap();
        let channel = Arc::new(net.channel().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(&dir.path().join("ledger")).unwrap());
        commit_genesis(&ledger, &net.genesis(), &channel).unwrap();
        let runtime = Arc::new(Runtime::new(Limits::default()));
        let lifecycle = Arc::new(
            Lifecycle::open(&Env::packages(dir.path()), ledger.clone(), runtime.clone()).unwrap(),
        );
        let peers = ORGS
            .iter()
            .map(|org| {
                Endorser::new(
                    net.issue(org, "peer1", Role::Peer).unwrap(),
                    channel.clone(),
                    ledger.clone(),
                    runtime.clone(),
                )
                .unwrap()
                .with_lifecycle(lifecycle.clone())
            })
            .collect();
        let admins = ORGS
            .iter()
            .map(|org| net.issue(org, "admin", Role::Admin).unwrap())
            .collect();
        Env {
            dir,
            net,
            channel,
            ledger,
            lifecycle,
            peers,
            admins,
        }
    }

    fn packages(dir: &Path) -> PathBuf {
        dir.join("chaincodes")
    }

    fn client(&self, org: usize) -> &SigningIdentity {
        self.net.client(ORGS[org]).unwrap()
    }

    /// `signer` sends `args` for `chaincode` to peer `peer`.
    fn endorse_cc(
        &self,
        peer: usize,
        signer: &SigningIdentity,
        chaincode: &str,
        args: &[Vec<u8>],
    ) -> Result<ProposalResponse, EndorseError> {
        let (sp, _) = build_proposal(signer, CH, chaincode, args).unwrap();
        self.peers[peer].endorse(&sp)
    }

    /// `signer` sends the lifecycle proposal `args` to peer `peer`.
    fn call(
        &self,
        peer: usize,
        signer: &SigningIdentity,
        args: &[Vec<u8>],
    ) -> Result<ProposalResponse, EndorseError> {
        self.endorse_cc(peer, signer, LIFECYCLE_NAMESPACE, args)
    }

    /// The payload of a successful lifecycle answer.
    fn query(&self, peer: usize, signer: &SigningIdentity, args: &[Vec<u8>]) -> Vec<u8> {
        let r = self.call(peer, signer, args).unwrap();
        let response = r.response.unwrap();
        assert_eq!(response.status, 200, "{}", response.message);
        response.payload
    }

    /// The transaction of `signer`'s proposal `args` for `chaincode`,
    /// endorsed by `peers`.
    fn tx(
        &self,
        signer: &SigningIdentity,
        chaincode: &str,
        peers: &[usize],
        args: &[Vec<u8>],
    ) -> Vec<u8> {
        let (sp, _) = build_proposal(signer, CH, chaincode, args).unwrap();
        let responses: Vec<_> = peers
            .iter()
            .map(|p| self.peers[*p].endorse(&sp).unwrap())
            .collect();
        assemble_transaction(&sp, &responses, signer)
            .unwrap()
            .encode_to_vec()
    }

    /// Orders `envelopes` into the next block, commits it with the lifecycle
    /// as policy provider, refreshes the lifecycle; returns the codes.
    fn commit(&self, envelopes: Vec<Vec<u8>>) -> Vec<Code> {
        let block = self.net.next_block(&self.ledger, envelopes).unwrap();
        let codes = commit_block(&self.ledger, &block, &self.channel, &*self.lifecycle).unwrap();
        self.lifecycle.refresh().unwrap();
        codes
    }

    fn install(&self, org: usize, package: &ChaincodePackage) {
        let payload = self.query(org, &self.admins[org], &install_args(&package.to_bytes()));
        assert_eq!(
            decode_installed(&payload).unwrap().code_hash,
            package.code_hash()
        );
    }

    /// Org `org`'s admin approves `def` through its own peer: the transaction.
    fn approve(&self, org: usize, def: &Definition) -> Vec<u8> {
        self.tx(
            &self.admins[org],
            LIFECYCLE_NAMESPACE,
            &[org],
            &approve_args(def),
        )
    }

    /// Approvals by `orgs`, committed, then the commit endorsed by them.
    fn define(&self, orgs: &[usize], def: &Definition) {
        let approvals = orgs.iter().map(|o| self.approve(*o, def)).collect();
        assert!(self.commit(approvals).iter().all(|c| *c == Code::Valid));
        let commit = self.tx(self.client(0), LIFECYCLE_NAMESPACE, orgs, &commit_args(def));
        assert_eq!(self.commit(vec![commit]), [Code::Valid]);
    }
}

fn refusal(r: Result<ProposalResponse, EndorseError>) -> EndorseError {
    match r {
        Ok(r) => panic!("not refused: {:?}", r.response),
        Err(e) => e,
    }
}

fn lifecycle_refusal(r: Result<ProposalResponse, EndorseError>, kind: Refusal) -> String {
    let e = refusal(r);
    assert!(
        matches!(&e, EndorseError::Lifecycle { kind: k, .. } if *k == kind),
        "{e:?}"
    );
    assert_eq!(e.refusal(), kind);
    e.to_string()
}

#[test]
fn install_needs_an_admin_of_the_peers_org_and_survives_a_restart() {
    let env = Env::new();
    let pkg = package("1.0", example_wasm());
    let args = install_args(&pkg.to_bytes());

    let by_client = lifecycle_refusal(env.call(0, env.client(0), &args), Refusal::PermissionDenied);
    assert!(
        by_client.contains("only an admin of this peer's org Org1MSP"),
        "{by_client}"
    );
    let other_admin = lifecycle_refusal(
        env.call(0, &env.admins[1], &args),
        Refusal::PermissionDenied,
    );
    assert!(other_admin.contains("admin of Org2MSP"), "{other_admin}");
    let garbage = lifecycle_refusal(
        env.call(0, &env.admins[0], &install_args(b"not a package")),
        Refusal::InvalidArgument,
    );
    assert!(
        garbage.contains("not a valid chaincode package"),
        "{garbage}"
    );
    assert!(env.lifecycle.installed().is_empty());

    // The admin's install is answered, not endorsed: it is no transaction.
    let r = env.call(0, &env.admins[0], &args).unwrap();
    assert!(r.endorsement.is_none() && r.payload.is_empty());
    let installed = decode_installed(&r.response.unwrap().payload).unwrap();
    assert_eq!(
        (installed.name.as_str(), installed.version.as_str()),
        (CC, "1.0")
    );
    assert_eq!(installed.code_hash, pkg.code_hash());
    // Installing again changes nothing.
    env.install(0, &pkg);
    let list =
        decode_installed_list(&env.query(0, &env.admins[0], &query_installed_args())).unwrap();
    assert_eq!(list, std::slice::from_ref(&installed));
    lifecycle_refusal(
        env.call(0, env.client(0), &query_installed_args()),
        Refusal::PermissionDenied,
    );
    let file = Env::packages(env.dir.path()).join(format!("{}.pkg", pkg.code_hash().to_hex()));
    assert_eq!(std::fs::read(&file).unwrap(), pkg.to_bytes());

    // A restarted peer (new runtime) reloads the package from disk.
    let runtime = Arc::new(Runtime::new(Limits::default()));
    let reopened = Lifecycle::open(
        &Env::packages(env.dir.path()),
        env.ledger.clone(),
        runtime.clone(),
    )
    .unwrap();
    assert_eq!(reopened.installed(), [installed]);
    assert!(runtime.is_installed(&pkg.code_hash()));

    // A damaged package file is reported, not forgotten.
    let damaged = env.dir.path().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(
        damaged.join(format!("{}.pkg", pkg.code_hash().to_hex())),
        b"junk",
    )
    .unwrap();
    let e = Lifecycle::open(&damaged, env.ledger.clone(), runtime).unwrap_err();
    assert!(matches!(e, LifecycleError::DamagedPackage { .. }), "{e}");
}

#[test]
fn approved_by_two_of_three_then_committed_the_contract_runs() {
    let env = Env::new();
    let pkg = package("1.0", example_wasm());
    env.install(0, &pkg);
    let put = || vec![b"put".to_vec(), b"k".to_vec(), b"v".to_vec()];
    let e = refusal(env.endorse_cc(0, env.client(0), CC, &put()));
    assert!(
        matches!(e, EndorseError::ChaincodeNotCommitted { .. }),
        "{e}"
    );

    let def = definition(1, "1.0", pkg.code_hash());
    let codes = env.commit(vec![env.approve(0, &def), env.approve(1, &def)]);
    assert_eq!(codes, [Code::Valid, Code::Valid]);
    assert!(
        env.ledger
            .get_state(LIFECYCLE_NAMESPACE, &approval_key(CC, 1, "Org2MSP"))
            .unwrap()
            .is_some()
    );

    let readiness =
        decode_readiness(&env.query(2, env.client(2), &check_commit_readiness_args(&def))).unwrap();
    assert!(readiness.ready);
    assert_eq!(
        readiness.definition.endorsement_policy,
        "MAJORITY Endorsement"
    );
    assert_eq!(
        readiness.approvals.into_iter().collect::<Vec<_>>(),
        [
            ("Org1MSP".to_owned(), true),
            ("Org2MSP".to_owned(), true),
            ("Org3MSP".to_owned(), false)
        ]
    );
    // A different definition (another policy) is not what they approved.
    let other = Definition {
        endorsement_policy: "OR('Org1MSP.peer')".into(),
        ..def.clone()
    };
    let readiness =
        decode_readiness(&env.query(0, env.client(0), &check_commit_readiness_args(&other)))
            .unwrap();
    assert!(!readiness.ready);
    assert!(readiness.approvals.values().all(|ok| !ok));

    // Org3 did not approve, so its peer will not endorse the commit.
    let not_mine = lifecycle_refusal(
        env.call(2, env.client(0), &commit_args(&def)),
        Refusal::FailedPrecondition,
    );
    assert!(
        not_mine.contains("Org3MSP has not approved") && not_mine.contains("Org1MSP, Org2MSP"),
        "{not_mine}"
    );

    // Two commits of the same definition in one block: the second read a
    // version the first changed.
    let commit = env.tx(
        env.client(0),
        LIFECYCLE_NAMESPACE,
        &[0, 1],
        &commit_args(&def),
    );
    let again = env.tx(
        env.client(1),
        LIFECYCLE_NAMESPACE,
        &[1, 0],
        &commit_args(&def),
    );
    assert_eq!(
        env.commit(vec![commit, again]),
        [Code::Valid, Code::MvccReadConflict]
    );

    let committed = def.clone().canonical("MAJORITY Endorsement").unwrap();
    assert_eq!(env.lifecycle.committed(CC), Some(committed.clone()));
    let for_endorser = env.peers[2].definitions().get(CC).unwrap();
    assert_eq!(
        (for_endorser.sequence, for_endorser.code_hash),
        (1, pkg.code_hash())
    );
    let queried =
        decode_definition(&env.query(2, env.client(2), &query_definition_args(CC))).unwrap();
    assert_eq!(queried, committed);
    let all = decode_definitions(&env.query(1, env.client(1), &query_definitions_args())).unwrap();
    assert_eq!(all, std::slice::from_ref(&committed));
    let missing = lifecycle_refusal(
        env.call(0, env.client(0), &query_definition_args("nosuch")),
        Refusal::NotFound,
    );
    assert!(
        missing.contains("chaincode nosuch is not committed"),
        "{missing}"
    );

    // The contract now endorses, under the committed policy (MAJORITY of
    // the three orgs' peers).
    let r = env.endorse_cc(0, env.client(0), CC, &put()).unwrap();
    assert_eq!(r.response.unwrap().status, 200);
    let by_two = env.tx(env.client(0), CC, &[0, 2], &put());
    let by_one = env.tx(env.client(0), CC, &[1], &put());
    assert_eq!(
        env.commit(vec![by_two, by_one]),
        [Code::Valid, Code::EndorsementPolicyFailure]
    );
    assert_eq!(env.ledger.get_state(CC, "k").unwrap().unwrap().value, b"v");

    // A restarted peer reads the committed definition from its ledger.
    let reopened = Lifecycle::open(
        &Env::packages(env.dir.path()),
        env.ledger.clone(),
        Arc::new(Runtime::new(Limits::default())),
    )
    .unwrap();
    assert_eq!(reopened.committed(CC), Some(committed));
    assert_eq!(reopened.definitions().get(CC), Some(for_endorser));
}

#[test]
fn a_commit_without_enough_approvals_is_refused_and_invalid_if_forced() {
    let env = Env::new();
    let pkg = package("1.0", example_wasm());
    let def = definition(1, "1.0", pkg.code_hash());
    assert_eq!(env.commit(vec![env.approve(0, &def)]), [Code::Valid]);

    let e = lifecycle_refusal(
        env.call(0, env.client(0), &commit_args(&def)),
        Refusal::FailedPrecondition,
    );
    assert!(
        e.contains("approved by 1 of 3 orgs (Org1MSP)")
            && e.contains("lifecycle policy MAJORITY Endorsement is not satisfied")
            && e.contains("not approved by: Org2MSP, Org3MSP"),
        "{e}"
    );

    // Forced: Org1's peer endorses the definition write on its own.
    let canonical = def.canonical("MAJORITY Endorsement").unwrap();
    let forced = |endorsers: &[usize], value: &[u8]| {
        let peers: Vec<&SigningIdentity> = endorsers
            .iter()
            .map(|o| env.net.peer(ORGS[*o]).unwrap())
            .collect();
        let mut b = env
            .net
            .tx("Org1MSP", LIFECYCLE_NAMESPACE)
            .unwrap()
            .rwset(RwSet::new().write(LIFECYCLE_NAMESPACE, &definition_key(CC), value));
        for p in peers {
            b = b.endorsed_by(p);
        }
        b.build().unwrap().envelope
    };
    let alone = forced(&[0], &canonical.to_bytes());
    // Even a majority cannot write something that is not a definition.
    let garbage = forced(&[0, 1], b"{\"name\":\"example\"}");
    let not_canonical = forced(
        &[0, 1],
        &Definition {
            endorsement_policy: "majority Endorsement".into(),
            ..canonical.clone()
        }
        .to_bytes(),
    );
    // Nor write other keys of the namespace.
    let stray = env
        .net
        .tx("Org1MSP", LIFECYCLE_NAMESPACE)
        .unwrap()
        .rwset(RwSet::new().write(LIFECYCLE_NAMESPACE, "elsewhere", b"x"))
        .endorsed_by(env.net.peer("Org1MSP").unwrap())
        .endorsed_by(env.net.peer("Org2MSP").unwrap())
        .build()
        .unwrap()
        .envelope;
    assert_eq!(
        env.commit(vec![alone, garbage, not_canonical, stray]),
        [
            Code::EndorsementPolicyFailure,
            Code::InvalidWriteset,
            Code::InvalidWriteset,
            Code::InvalidWriteset
        ]
    );
    assert_eq!(env.lifecycle.committed(CC), None);
    assert!(env.peers[0].definitions().get(CC).is_none());
}

#[test]
fn an_approval_for_another_org_is_an_endorsement_policy_failure() {
    let env = Env::new();
    let def = definition(1, "1.0", CodeHash::of(b"anything"))
        .canonical("MAJORITY Endorsement")
        .unwrap();

    // The honest endorser refuses an admin of another org.
    let e = lifecycle_refusal(
        env.call(0, &env.admins[1], &approve_args(&def)),
        Refusal::PermissionDenied,
    );
    assert!(
        e.contains("only an admin of this peer's org Org1MSP"),
        "{e}"
    );

    // Forged: Org2's approval, endorsed by Org1's peer only.
    let approval = |creator: &SigningIdentity, endorser: &str| {
        let write = RwSet::new().write(
            LIFECYCLE_NAMESPACE,
            &approval_key(CC, 1, "Org2MSP"),
            &def.to_bytes(),
        );
        qcss_peer::validator::fixture::TxBuilder::new(creator, CH, LIFECYCLE_NAMESPACE)
            .rwset(write)
            .endorsed_by(env.net.peer(endorser).unwrap())
            .build()
            .unwrap()
            .envelope
    };
    let wrong_peer = approval(&env.admins[1], "Org1MSP");
    // Org2's peer, but the creator is not Org2's admin.
    let wrong_creator = approval(&env.admins[0], "Org2MSP");
    let client_creator = approval(env.client(1), "Org2MSP");
    let genuine = approval(&env.admins[1], "Org2MSP");
    assert_eq!(
        env.commit(vec![wrong_peer, wrong_creator, client_creator, genuine]),
        [
            Code::EndorsementPolicyFailure,
            Code::EndorsementPolicyFailure,
            Code::EndorsementPolicyFailure,
            Code::Valid
        ]
    );
}

#[test]
fn an_upgrade_commits_sequence_two_with_a_new_code_hash() {
    let env = Env::new();
    let v1 = package("1.0", example_wasm());
    let v2 = package("2.0", example_wasm_v2());
    assert_ne!(v1.code_hash(), v2.code_hash());
    env.install(0, &v1);

    // Wrong sequences are refused, naming the right one.
    let e = lifecycle_refusal(
        env.call(
            0,
            &env.admins[0],
            &approve_args(&definition(2, "1.0", v1.code_hash())),
        ),
        Refusal::FailedPrecondition,
    );
    assert!(
        e.contains("sequence 2 is not the next one: chaincode example is not committed yet, so the next definition must have sequence 1"),
        "{e}"
    );
    env.define(&[0, 1], &definition(1, "1.0", v1.code_hash()));
    let incr = || vec![b"incr".to_vec(), b"n".to_vec()];
    let tx = env.tx(env.client(0), CC, &[0, 1], &incr());
    assert_eq!(env.commit(vec![tx]), [Code::Valid]);

    for wrong in [1, 3] {
        let e = lifecycle_refusal(
            env.call(
                2,
                &env.admins[2],
                &approve_args(&definition(wrong, "2.0", v2.code_hash())),
            ),
            Refusal::FailedPrecondition,
        );
        assert!(
            e.contains(&format!("sequence {wrong} is not the next one"))
                && e.contains("is committed at sequence 1")
                && e.contains("must have sequence 2"),
            "{e}"
        );
    }

    // Approve and commit sequence 2 (Org1 and Org3 this time), then install.
    let def2 = definition(2, "2.0", v2.code_hash());
    env.define(&[0, 2], &def2);
    let now = env.peers[1].definitions().get(CC).unwrap();
    assert_eq!(
        (now.sequence, now.version.as_str(), now.code_hash),
        (2, "2.0", v2.code_hash())
    );
    let e = refusal(env.endorse_cc(1, env.client(1), CC, &incr()));
    assert!(matches!(e, EndorseError::CodeHashMismatch { .. }), "{e}");
    env.install(1, &v2);
    let tx = env.tx(env.client(1), CC, &[1, 2], &incr());
    assert_eq!(env.commit(vec![tx]), [Code::Valid]);
    assert_eq!(env.ledger.get_state(CC, "n").unwrap().unwrap().value, b"2");
}

#[test]
fn uncommitted_and_mismatched_chaincode_fail_with_clear_errors() {
    let env = Env::new();
    let e = refusal(env.endorse_cc(0, env.client(0), "nosuch", &[b"get".to_vec()]));
    assert_eq!(e.refusal(), Refusal::NotFound);
    assert!(
        e.to_string()
            .contains("chaincode nosuch is not committed on channel lifecycle-test"),
        "{e}"
    );

    // Committed with v2's code hash while only v1 is installed.
    let v1 = package("1.0", example_wasm());
    let v2 = package("2.0", example_wasm_v2());
    env.install(0, &v1);
    env.define(&[1, 2], &definition(1, "2.0", v2.code_hash()));
    let e = refusal(env.endorse_cc(0, env.client(0), CC, &[b"get".to_vec(), b"k".to_vec()]));
    assert_eq!(e.refusal(), Refusal::FailedPrecondition);
    let message = e.to_string();
    assert!(
        message.contains(&format!(
            "the installed package has code hash {}, but the definition committed on channel lifecycle-test requires {}",
            v1.code_hash(),
            v2.code_hash()
        )),
        "{message}"
    );
}
