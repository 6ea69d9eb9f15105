//! The peer end to end: three orgs (each its own CA process and peer), three
//! orderers, the example contract deployed through the CLI's lifecycle
//! commands; transactions through the Gateway over mTLS.

use std::time::Duration;

use qcss_proto::protos::TxValidationCode;
use qcss_tests::peers::{Network, NetworkOptions};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_and_query_round_trip_on_every_peer() {
    let d = tmp();
    let net = Network::start(d.path(), NetworkOptions::default());
    let mut g = net.gateway(1).await;
    let c = g
        .submit("example", "put", &[b"color", b"green"])
        .await
        .expect("submit");
    assert_eq!(c.code, TxValidationCode::Valid, "{c:?}");
    // The Gateway learns the Raft leader from the first answer (a follower
    // says where it forwarded) and then submits there: no more forwards.
    let forwarded = || -> f64 {
        (1..=3)
            .map(|i| {
                net.orderer_metric(i, "qcss_orderer_forwarded_total")
                    .unwrap()
            })
            .sum()
    };
    let before = forwarded();
    let mut last = c;
    for i in 0..4 {
        let v = format!("green{i}");
        last = g
            .submit("example", "put", &[b"shade", v.as_bytes()])
            .await
            .expect("submit");
        assert_eq!(last.code, TxValidationCode::Valid, "{last:?}");
    }
    assert_eq!(
        forwarded(),
        before,
        "submits after the first went to a follower"
    );
    net.wait_heights(last.block + 1, Duration::from_secs(20));
    for n in 1..=3 {
        let mut g = net.gateway(n).await;
        let v = g
            .evaluate("example", "get", &[b"color"])
            .await
            .expect("get");
        assert_eq!(v, b"green", "peer {n}");
    }
    // The same block hash and state on every peer.
    let infos: Vec<_> = (1..=3).map(|n| net.ledger_info(n)).collect();
    assert_eq!(infos[0], infos[1]);
    assert_eq!(infos[0], infos[2]);
    // The CLI does the same.
    let out = net.cli(
        &[
            "tx",
            "invoke",
            "--chaincode",
            "example",
            "--fn",
            "put",
            "--args",
            r#"["size","XL"]"#,
        ],
        &net.conn(2, "client1"),
    );
    assert!(out.contains("code: VALID"), "{out}");
    let out = net.cli(
        &[
            "tx",
            "query",
            "--chaincode",
            "example",
            "--fn",
            "get",
            "--args",
            r#"["size"]"#,
        ],
        &net.conn(3, "client1"),
    );
    assert_eq!(out.trim(), "XL");

    // A Deliver request bound (Fabric's tls_cert_hash) to another TLS
    // certificate than the connection's is refused.
    {
        use prost::Message;
        use qcss_proto::common::{ChannelHeader, Payload};
        use qcss_proto::protos::deliver_client::DeliverClient;
        use qcss_proto::protos::deliver_response::Type;
        let client1 = net.orgs[0].identity("client1");
        let seek = |hash: Option<Vec<u8>>| {
            let mut env = qcss_network::orderer_client::seek_envelope(
                &client1,
                qcss_tests::peers::CHANNEL,
                qcss_network::orderer_client::Seek::Oldest,
                qcss_network::orderer_client::Seek::Oldest,
                false,
            )
            .unwrap();
            if let Some(hash) = hash {
                let mut p = Payload::decode(env.payload.as_slice()).unwrap();
                let h = p.header.as_mut().unwrap();
                let mut ch = ChannelHeader::decode(h.channel_header.as_slice()).unwrap();
                ch.tls_cert_hash = hash;
                h.channel_header = ch.encode_to_vec();
                env.payload = p.encode_to_vec();
                env.signature = client1.sign(&env.payload).unwrap();
            }
            env
        };
        let c1 = net.orgs[0].dir.join("client1");
        let tls_cert = std::fs::read(c1.join("tls-cert.pem")).unwrap();
        let own_hash = qcss_network::CertInfo::from_pem(&tls_cert)
            .unwrap()
            .id
            .to_vec();
        for (hash, want_block) in [(Some(vec![9u8; 32]), false), (Some(own_hash), true)] {
            let root = std::fs::read(net.orgs[0].dir.join("ca/tls-ca-cert.pem")).unwrap();
            let ch = qcss_peer::client::connect(
                &net.peer_addrs[0],
                std::slice::from_ref(&root),
                (&tls_cert, &std::fs::read(c1.join("tls-key.pem")).unwrap()),
            )
            .await
            .unwrap();
            let mut stream = DeliverClient::new(ch)
                .deliver(tokio_stream::iter(vec![seek(hash)]))
                .await
                .unwrap()
                .into_inner();
            let first = stream.message().await.unwrap().unwrap();
            match (first.r#type, want_block) {
                (Some(Type::Block(_)), true) => {}
                (Some(Type::Status(403)), false) => {}
                (other, _) => panic!("bound to the right cert: {want_block}; got {other:?}"),
            }
            // The orderers' Deliver checks the binding the same way (one
            // admission for both, `qcss_network::deliver::admit`).
            use qcss_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
            use qcss_proto::orderer::deliver_response::Type as OType;
            let ch = qcss_peer::client::connect(
                &net.orderer_addrs[0],
                &[root],
                (&tls_cert, &std::fs::read(c1.join("tls-key.pem")).unwrap()),
            )
            .await
            .unwrap();
            let mut stream = AtomicBroadcastClient::new(ch)
                .deliver(tokio_stream::iter(vec![seek(hash_again(
                    &want_block,
                    &tls_cert,
                ))]))
                .await
                .unwrap()
                .into_inner();
            let first = stream.message().await.unwrap().unwrap();
            match (first.r#type, want_block) {
                (Some(OType::Block(_)), true) => {}
                (Some(OType::Status(403)), false) => {}
                (other, _) => {
                    panic!("orderer, bound to the right cert: {want_block}; got {other:?}")
                }
            }
        }
    }
}

/// The hash a bound seek names: the caller's own TLS certificate's when it
/// should be served, another when it should be refused.
fn hash_again(own: &bool, tls_cert: &[u8]) -> Option<Vec<u8>> {
    Some(if *own {
        qcss_network::CertInfo::from_pem(tls_cert)
            .unwrap()
            .id
            .to_vec()
    } else {
        vec![9u8; 32]
    })
}

/// The envelope's chaincode action results (the read-write set), changed by
/// `f`, and the envelope re-signed by `signer` (as a client that tampers
/// with its own transaction after endorsement would).
fn tamper(
    env: &qcss_proto::common::Envelope,
    signer: &qcss_network::SigningIdentity,
    f: impl FnOnce(&mut Vec<u8>),
) -> qcss_proto::common::Envelope {
    use prost::Message;
    use qcss_proto::common::Payload;
    use qcss_proto::protos::{
        ChaincodeAction, ChaincodeActionPayload, ProposalResponsePayload, Transaction,
    };
    let mut payload = Payload::decode(env.payload.as_slice()).unwrap();
    let mut tx = Transaction::decode(payload.data.as_slice()).unwrap();
    let mut cap = ChaincodeActionPayload::decode(tx.actions[0].payload.as_slice()).unwrap();
    let action = cap.action.as_mut().unwrap();
    let mut prp =
        ProposalResponsePayload::decode(action.proposal_response_payload.as_slice()).unwrap();
    let mut ca = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    f(&mut ca.results);
    prp.extension = ca.encode_to_vec();
    action.proposal_response_payload = prp.encode_to_vec();
    tx.actions[0].payload = cap.encode_to_vec();
    payload.data = tx.encode_to_vec();
    let payload = payload.encode_to_vec();
    qcss_proto::common::Envelope {
        signature: signer.sign(&payload).unwrap(),
        payload,
    }
}

fn replace(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let i = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in the write set");
    bytes[i..i + from.len()].copy_from_slice(to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_codes_policies_and_lifecycle() {
    let d = tmp();
    let net = Network::start(d.path(), NetworkOptions::default());
    let mut g = net.gateway(1).await;

    // MVCC: two increments endorsed against the same version; the first
    // to commit wins, the second is MVCC_READ_CONFLICT and changes nothing.
    let (e1, t1) = g.endorse("example", "incr", &[b"n"], &[]).await.unwrap();
    let (e2, t2) = g.endorse("example", "incr", &[b"n"], &[]).await.unwrap();
    g.send(e1, &t1).await.unwrap();
    g.send(e2, &t2).await.unwrap();
    let (c1, _) = g.commit_status(&t1).await.unwrap();
    let (c2, _) = g.commit_status(&t2).await.unwrap();
    assert_eq!(c1, TxValidationCode::Valid);
    assert_eq!(c2, TxValidationCode::MvccReadConflict);
    assert_eq!(g.evaluate("example", "get", &[b"n"]).await.unwrap(), b"1");

    // A write set changed after endorsement: the endorsements no longer
    // match, the transaction is invalid and the value stays.
    g.submit("example", "put", &[b"k", b"good"]).await.unwrap();
    let (env, tx_id) = g
        .endorse("example", "put", &[b"k", b"next"], &[])
        .await
        .unwrap();
    let bad = tamper(&env, g.signer(), |rw| replace(rw, b"next", b"evil"));
    g.send(bad, &tx_id).await.unwrap();
    let (code, _) = g.commit_status(&tx_id).await.unwrap();
    assert_ne!(code, TxValidationCode::Valid);
    assert_eq!(
        g.evaluate("example", "get", &[b"k"]).await.unwrap(),
        b"good"
    );

    // Replaying a committed transaction is refused.
    let (env, tx_id) = g
        .endorse("example", "put", &[b"r", b"1"], &[])
        .await
        .unwrap();
    g.send(env.clone(), &tx_id).await.unwrap();
    assert_eq!(
        g.commit_status(&tx_id).await.unwrap().0,
        TxValidationCode::Valid
    );
    let e = g.send(env, &tx_id).await.unwrap_err().to_string();
    assert!(e.contains("duplicate tx id"), "{e}");

    // A chaincode whose policy needs Org1 AND Org2, endorsed by Org1 alone.
    net.deploy(
        "strict",
        "1.0",
        1,
        &qcss_tests::peers::example_wasm(),
        "AND('Org1MSP.peer','Org2MSP.peer')",
        &[],
    );
    let orgs = ["Org1MSP".to_string()];
    let (env, tx_id) = g
        .endorse("strict", "put", &[b"a", b"1"], &orgs)
        .await
        .unwrap();
    g.send(env, &tx_id).await.unwrap();
    assert_eq!(
        g.commit_status(&tx_id).await.unwrap().0,
        TxValidationCode::EndorsementPolicyFailure
    );
    // Left to the Gateway, it asks both orgs.
    let c = g.submit("strict", "put", &[b"a", b"2"]).await.unwrap();
    assert_eq!(c.code, TxValidationCode::Valid);

    // A key-level policy requiring Org3: honoured by the Gateway's choice of
    // endorsers, and enforced when Org3 did not endorse. (Metadata lives
    // beside a value: the key must exist first.)
    g.submit("example", "put", &[b"vip", b"0"]).await.unwrap();
    let mut admin = net.gateway_as(1, 1, "admin").await;
    let c = admin
        .submit("example", "set_policy", &[b"vip", b"OR('Org3MSP.peer')"])
        .await
        .unwrap();
    assert_eq!(c.code, TxValidationCode::Valid);
    let c = g.submit("example", "put", &[b"vip", b"1"]).await.unwrap();
    assert_eq!(c.code, TxValidationCode::Valid, "the Gateway adds Org3");
    let orgs = ["Org1MSP".to_string(), "Org2MSP".to_string()];
    let (env, tx_id) = g
        .endorse("example", "put", &[b"vip", b"2"], &orgs)
        .await
        .unwrap();
    g.send(env, &tx_id).await.unwrap();
    assert_eq!(
        g.commit_status(&tx_id).await.unwrap().0,
        TxValidationCode::EndorsementPolicyFailure
    );
    assert_eq!(g.evaluate("example", "get", &[b"vip"]).await.unwrap(), b"1");

    // Lifecycle: a chaincode nobody committed; an upgrade approved by two
    // of three orgs; a commit with one approval refused.
    let e = g
        .submit("nothing", "get", &[b"x"])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not committed"), "{e}");
    net.deploy(
        "example",
        "2.0",
        2,
        &qcss_tests::peers::example_wasm(),
        "",
        &[1, 2],
    );
    let list = net.cli(&["chaincode", "list"], &net.conn(3, "admin"));
    assert!(list.contains("example 2.0 sequence 2"), "{list}");
    assert_eq!(
        g.evaluate("example", "get", &[b"k"]).await.unwrap(),
        b"good"
    );
    let wasm = qcss_tests::peers::example_wasm().display().to_string();
    net.cli(
        &[
            "chaincode",
            "package",
            "--name",
            "solo",
            "--version",
            "1",
            "--wasm",
            &wasm,
            "--out",
            "solo.pkg",
        ],
        &[],
    );
    let def = [
        "--name",
        "solo",
        "--version",
        "1",
        "--sequence",
        "1",
        "--package",
        "solo.pkg",
    ];
    let mut approve = vec!["chaincode", "approve"];
    approve.extend(def);
    net.cli(&approve, &net.conn(1, "admin"));
    let mut commit = vec!["chaincode", "commit"];
    commit.extend(def);
    let e = net.cli_err(&commit, &net.conn(1, "admin"));
    assert!(e.to_lowercase().contains("approv"), "{e}");

    // Malformed and oversize requests: clear errors, nothing ordered.
    let before = net.height(1);
    let huge = vec![b'x'; 9 * 1024 * 1024];
    let e = g
        .submit("example", "put", &[b"big", &huge])
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.is_empty());
    let e = net.cli_err(
        &[
            "tx",
            "invoke",
            "--chaincode",
            "example",
            "--fn",
            "put",
            "--args",
            "not json",
        ],
        &net.conn(1, "client1"),
    );
    assert!(e.contains("--args must be a JSON array"), "{e}");
    let e = g
        .evaluate("example", "fail", &[b"no such lot"])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such lot"), "{e}");
    assert_eq!(net.height(1), before, "nothing was ordered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_peer_and_killed_orderer() {
    let d = tmp();
    let mut net = Network::start(d.path(), NetworkOptions::default());
    let mut g = net.gateway(1).await;
    for i in 0..10 {
        let k = format!("k{i}");
        g.submit("example", "put", &[k.as_bytes(), b"v"])
            .await
            .unwrap();
    }
    // Kill -9 org3's peer in the middle of a stream of transactions.
    let writer = {
        let mut g = net.gateway(1).await;
        tokio::spawn(async move {
            for i in 0..40 {
                let k = format!("s{i}");
                let c = g.submit("example", "put", &[k.as_bytes(), b"v"]).await;
                assert_eq!(c.expect("submit").code, TxValidationCode::Valid);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    net.kill_peer(3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    net.start_peer(3);
    writer.await.unwrap();
    let h = net.height(1);
    net.wait_heights(h, Duration::from_secs(30));
    let infos: Vec<_> = (1..=3).map(|n| net.ledger_info(n)).collect();
    assert_eq!(
        infos[0], infos[2],
        "the restarted peer has the same chain and state"
    );

    // Kill the orderer the peers pull from (the first listed): they move to
    // another and keep committing; the Gateway submits elsewhere too.
    net.kill_orderer(1);
    for i in 0..5 {
        let k = format!("after{i}");
        let c = g
            .submit("example", "put", &[k.as_bytes(), b"v"])
            .await
            .unwrap();
        assert_eq!(c.code, TxValidationCode::Valid);
    }
    let h = net.height(1);
    net.wait_heights(h, Duration::from_secs(30));
    for n in 1..=3 {
        let f = net
            .metric(n, "qcss_peer_orderer_failovers_total")
            .unwrap_or(0.0);
        assert!(f >= 1.0, "peer {n} failed over ({f})");
    }
    let infos: Vec<_> = (1..=3).map(|n| net.ledger_info(n)).collect();
    assert_eq!(infos[0], infos[1]);
    assert_eq!(infos[0], infos[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_revoked_by_a_config_update_is_refused() {
    use qcss_network::channel::ChannelConfig;
    use qcss_network::orderer_client::OrdererClient;
    use qcss_orderer::config_update::{ConfigUpdate, build_update_envelope, sign_update};

    let d = tmp();
    let net = Network::start(d.path(), NetworkOptions::default());
    let org1 = &net.orgs[0];
    // client2 signs through a connection made with client1's TLS pair (its
    // own TLS certificate is revoked too, and would not get that far).
    let as_client2 = || async {
        let root = std::fs::read(org1.dir.join("ca/tls-ca-cert.pem")).unwrap();
        let c1 = org1.dir.join("client1");
        let ch = qcss_peer::client::connect(
            &net.peer_addrs[0],
            &[root],
            (
                &std::fs::read(c1.join("tls-cert.pem")).unwrap(),
                &std::fs::read(c1.join("tls-key.pem")).unwrap(),
            ),
        )
        .await
        .unwrap();
        qcss_peer::client::GatewayClient::new(
            ch,
            std::sync::Arc::new(org1.identity("client2")),
            qcss_tests::peers::CHANNEL,
        )
    };
    let mut g2 = as_client2().await;
    let c = g2
        .submit("example", "put", &[b"who", b"client2"])
        .await
        .unwrap();
    assert_eq!(c.code, TxValidationCode::Valid);
    // Endorsed now, submitted after the revocation.
    let (late, late_id) = g2
        .endorse("example", "put", &[b"who", b"late"], &[])
        .await
        .unwrap();

    let (crl, tls_crl) = qcss_tests::cluster::revoke(&org1.dir, &org1.ca, "client2");
    let now: ChannelConfig =
        ChannelConfig::from_json(&std::fs::read(net.dir.join("channel.json")).unwrap()).unwrap();
    let mut next = now.clone();
    next.orgs[0].msp.crls = vec![crl, tls_crl];
    let mut u = ConfigUpdate::propose(&now, next);
    sign_update(&mut u, &net.orgs[0].identity("admin")).unwrap();
    sign_update(&mut u, &net.orgs[1].identity("admin")).unwrap();
    let (env, _) = build_update_envelope(&u, &org1.identity("admin")).unwrap();
    let roots = vec![std::fs::read(org1.dir.join("ca/tls-ca-cert.pem")).unwrap()];
    let a = org1.dir.join("admin");
    let mut oc = OrdererClient::connect(
        &net.orderer_addrs[0],
        &roots,
        &std::fs::read(a.join("tls-cert.pem")).unwrap(),
        &std::fs::read(a.join("tls-key.pem")).unwrap(),
    )
    .await
    .unwrap();
    let before = net.height(1);
    let r = oc.broadcast(vec![env]).await.unwrap();
    assert_eq!(r[0].status, 200, "{}", r[0].info);
    net.wait_heights(before + 1, Duration::from_secs(20));

    // Its next proposal is refused by the endorser ...
    let mut g2 = as_client2().await;
    let e = g2
        .submit("example", "put", &[b"who", b"again"])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("revoked"), "{e}");
    // ... and what it signed before is refused by the ordering service.
    let e = g2.send(late, &late_id).await.unwrap_err().to_string();
    assert!(e.contains("revoked"), "{e}");
    let mut g = net.gateway(1).await;
    assert_eq!(
        g.evaluate("example", "get", &[b"who"]).await.unwrap(),
        b"client2"
    );
    // Others carry on.
    let c = g
        .submit("example", "put", &[b"who", b"client1"])
        .await
        .unwrap();
    assert_eq!(c.code, TxValidationCode::Valid);
}
