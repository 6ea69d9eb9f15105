//! Signing certificates renewed in place (issue 15: "certificate rotation
//! for every node kind … without downtime"). `qcss ca reenroll` writes a
//! new certificate and key into a running node's identity directory and
//! SIGHUP makes it reread them — no restart:
//!
//! - a peer endorses with them at once, and every org's validator accepts
//!   the endorsements (both certificates chain to the org's CA); a pair
//!   that is not a peer of the org (a client's put there) is refused with
//!   the reason and the peer keeps the identity it has; a new peer identity
//!   an admin enrolled (the way for a certificate that already expired) is
//!   taken like a renewed one;
//! - an orderer keeps signing blocks with the old one (peers check block
//!   signatures against the consenters the configuration names) until a
//!   config update names the new one for it, and signs every block after
//!   that config block with the new one; peers keep committing throughout.

use std::time::{Duration, Instant};

use prost::Message;
use qcss_network::orderer_client::{OrdererClient, Seek};
use qcss_peer::client::GatewayClient;
use qcss_proto::common::{Payload, SignatureHeader};
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::protos::{ChaincodeActionPayload, Transaction, TxValidationCode};
use qcss_tests::peers::{CHANNEL, Network, NetworkOptions};
use qcss_tests::qcss_ok;
use qcss_tests::signal;

/// The certificates (PEM) of a prepared transaction's endorsers, by MSP id.
fn endorsers(env: &qcss_proto::common::Envelope) -> Vec<(String, String)> {
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    let tx = Transaction::decode(payload.data.as_slice()).unwrap();
    let cap = ChaincodeActionPayload::decode(tx.actions[0].payload.as_slice()).unwrap();
    cap.action
        .unwrap()
        .endorsements
        .iter()
        .map(|e| {
            let id = SerializedIdentity::decode(e.endorser.as_slice()).unwrap();
            (id.mspid, String::from_utf8(id.id_bytes).unwrap())
        })
        .collect()
}

/// Waits until peer 1's log has said `what` `n` times.
fn wait_log(net: &Network, what: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while net.peer_log(1).matches(what).count() < n {
        assert!(
            Instant::now() < deadline,
            "peer1 never logged {what:?}: {}",
            net.peer_log(1)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_signing_certificate_endorses_without_a_restart() {
    let d = tempfile::tempdir().unwrap();
    let net = Network::start(d.path(), NetworkOptions::default());
    let org = &net.orgs[0];
    let peer_dir = org.dir.join("peer1");
    let c = org.dir.join("client1");
    let mut g = net.gateway(1).await;
    let orgs = ["Org1MSP".to_owned(), "Org2MSP".to_owned()];
    let pid = net.peers[0].as_ref().unwrap().pid();
    let own_cert = |env| {
        endorsers(env)
            .into_iter()
            .find(|(m, _)| m == "Org1MSP")
            .map(|(_, c)| c)
            .unwrap()
    };
    let submit = |g: &mut GatewayClient, v: &'static str| {
        let orgs = orgs.clone();
        let g = g.clone();
        async move {
            let mut g = g;
            let (env, tx) = g
                .endorse("example", "put", &[b"k", v.as_bytes()], &orgs)
                .await
                .unwrap();
            g.send(env.clone(), &tx).await.unwrap();
            let (code, _) = g.commit_status(&tx).await.unwrap();
            (env, code)
        }
    };

    let old = std::fs::read_to_string(peer_dir.join("cert.pem")).unwrap();
    let (env, code) = submit(&mut g, "before").await;
    assert_eq!(code, TxValidationCode::Valid);
    assert_eq!(own_cert(&env).trim(), old.trim());

    // Renewed in place, taken on SIGHUP.
    let mut a = vec!["ca", "reenroll", "--identity", "peer1"];
    let conn = org.ca.conn_args();
    a.extend(conn.iter().map(String::as_str));
    qcss_ok(&org.dir, &a);
    let new = std::fs::read_to_string(peer_dir.join("cert.pem")).unwrap();
    assert_ne!(new, old);
    signal(pid, "-HUP");
    wait_log(&net, "signing certificate renewed", 1);
    let (env, code) = submit(&mut g, "after").await;
    assert_eq!(
        own_cert(&env).trim(),
        new.trim(),
        "endorsed with the new one"
    );
    assert_eq!(code, TxValidationCode::Valid, "every validator accepts it");

    // A client's pair in the peer's directory is refused; the renewed
    // identity stays in use.
    let (cert, key) = (peer_dir.join("cert.pem"), peer_dir.join("key.pem"));
    let saved = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    std::fs::copy(c.join("cert.pem"), &cert).unwrap();
    std::fs::copy(c.join("key.pem"), &key).unwrap();
    signal(pid, "-HUP");
    wait_log(&net, "not taken into use", 1);
    let log = net.peer_log(1);
    let line = log
        .lines()
        .find(|l| l.contains("not taken into use"))
        .unwrap();
    assert!(
        line.contains("has role client; only peers endorse"),
        "the reason names the role: {line}"
    );
    let (env, code) = submit(&mut g, "still").await;
    assert_eq!(own_cert(&env).trim(), new.trim());
    assert_eq!(code, TxValidationCode::Valid);
    std::fs::write(&cert, &saved.0).unwrap();
    std::fs::write(&key, &saved.1).unwrap();

    // A peer whose certificate expired cannot reenroll (the CA checks a
    // valid one's signature): an admin enrolls a new peer identity and it
    // goes into the directory. The peer takes it the same way.
    org.enroll("peer1b", "peer", None);
    std::fs::copy(org.dir.join("peer1b/key.pem"), &key).unwrap();
    std::fs::copy(org.dir.join("peer1b/cert.pem"), &cert).unwrap();
    let fresh = std::fs::read_to_string(&cert).unwrap();
    signal(pid, "-HUP");
    wait_log(&net, "signing certificate renewed", 2);
    let (env, code) = submit(&mut g, "enrolled").await;
    assert_eq!(own_cert(&env).trim(), fresh.trim());
    assert_eq!(code, TxValidationCode::Valid);
    assert_eq!(
        net.peer_log(1).matches("qcss peer started").count(),
        1,
        "no restart"
    );
}

/// The certificate (PEM) that signed orderer `id`'s newest block.
async fn newest_block_signer(net: &Network, id: usize) -> String {
    let c = net.orgs[0].dir.join("client1");
    let read = |f: &str| std::fs::read(c.join(f)).unwrap();
    let mut client = OrdererClient::connect(
        &net.orderer_addrs[id - 1],
        &[read("tls-ca.pem")],
        &read("tls-cert.pem"),
        &read("tls-key.pem"),
    )
    .await
    .unwrap();
    let blocks = client
        .blocks(
            &net.orgs[0].identity("client1"),
            CHANNEL,
            Seek::Newest,
            Seek::Newest,
        )
        .await
        .unwrap();
    let md = qcss_network::block::block_signatures(&blocks[0]).unwrap();
    let sh = SignatureHeader::decode(md.signatures[0].signature_header.as_slice()).unwrap();
    let creator = SerializedIdentity::decode(sh.creator.as_slice()).unwrap();
    String::from_utf8(creator.id_bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orderer_signs_with_a_renewed_certificate_once_the_configuration_names_it() {
    let d = tempfile::tempdir().unwrap();
    let net = Network::start(
        d.path(),
        NetworkOptions {
            orgs: 1,
            ..NetworkOptions::default()
        },
    );
    let org = &net.orgs[0];
    let dir = org.dir.join("orderer1");
    let log = || std::fs::read_to_string(net.dir.join("orderer1.log")).unwrap_or_default();
    let wait_log = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !log().contains(what) {
            assert!(
                Instant::now() < deadline,
                "orderer1 never logged {what:?}: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let invoke = |value: &str| {
        let out = net.put_example(1, "k", value);
        assert!(out.contains("code: VALID"), "{out}");
    };
    let old = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    invoke("a");
    assert_eq!(newest_block_signer(&net, 1).await.trim(), old.trim());

    // Renewed: held, not used, until the configuration names it.
    let mut a = vec!["ca", "reenroll", "--identity", "orderer1"];
    let conn = org.ca.conn_args();
    a.extend(conn.iter().map(String::as_str));
    qcss_ok(&org.dir, &a);
    let new = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    assert_ne!(new, old);
    signal(net.orderers[0].as_ref().unwrap().pid(), "-HUP");
    wait_log("not in use yet");
    invoke("b");
    assert_eq!(
        newest_block_signer(&net, 1).await.trim(),
        old.trim(),
        "still the old one: the configuration names it"
    );

    // A config update names it for consenter 1: the blocks after it are
    // signed with it, and the peer keeps committing them.
    let changes = net.update_config(|c| {
        let k = c.consenters.iter_mut().find(|k| k.id == 1).unwrap();
        k.identity_cert_pem = new.clone();
    });
    assert!(changes.contains("~ consenter 1 certificates"), "{changes}");
    invoke("c");
    wait_log("signing blocks with it");
    assert_eq!(newest_block_signer(&net, 1).await.trim(), new.trim());
    let height = net.height(1);
    invoke("d");
    assert!(net.height(1) > height);
    assert_eq!(
        log().matches("qcss orderer started").count(),
        1,
        "no restart"
    );
}
