//! A revocation reaches the channel in one block: three orgs (each its own
//! CA and peer), three orderers, the example contract. Org1's `client2`
//! submits transactions in a stream; Org1's admin revokes it mid-stream with
//! one command (`qcss ca revoke --update-channel`), which puts Org1's new
//! CRLs into the channel in a config update signed by Org1's admin alone.
//! From that config block on, every peer refuses the client's proposals,
//! the ordering service refuses what it had endorsed before, every peer
//! invalidates a transaction endorsed before the block by a peer identity
//! revoked in it, and other clients carry on.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use qcss_peer::client::GatewayClient;
use qcss_peer::validator::fixture::{RwSet, TxBuilder};
use qcss_proto::common::Envelope;
use qcss_proto::protos::TxValidationCode;
use qcss_tests::peers::{CHANNEL, Network, NetworkOptions};

/// Longest the whole scenario may take once the network is up.
const BOUND: Duration = Duration::from_secs(120);

/// A Gateway client to org `n`'s peer, signing as `signer`, over the TLS
/// pair in `tls_dir` (Org1's `client1`'s unless said otherwise: a revoked
/// client's own TLS certificate is revoked too and would not get past the
/// handshake, so its requests could not be seen being refused).
async fn gateway(
    net: &Network,
    n: usize,
    signer: &Arc<qcss_network::SigningIdentity>,
    tls_dir: &Path,
) -> Result<GatewayClient, qcss_peer::client::ClientError> {
    let root = std::fs::read(net.orgs[n - 1].dir.join("ca/tls-ca-cert.pem")).unwrap();
    let ch = qcss_peer::client::connect(
        &net.peer_addrs[n - 1],
        &[root],
        (
            &std::fs::read(tls_dir.join("tls-cert.pem")).unwrap(),
            &std::fs::read(tls_dir.join("tls-key.pem")).unwrap(),
        ),
    )
    .await?;
    Ok(GatewayClient::new(ch, signer.clone(), CHANNEL))
}

/// One submission of the stream: when it ended, and its block and code or why not.
type Outcome = (Instant, Result<(u64, TxValidationCode), String>);

/// A transaction by Org2's `client1`, endorsed by Org1's and Org2's
/// `peer9` (identities the test holds: no process runs them), writing
/// `key`: the example contract's default policy (MAJORITY Endorsement of
/// three orgs) needs both.
fn endorsed_by_peer9s(net: &Network, key: &str) -> (Envelope, String) {
    let creator = net.orgs[1].identity("client1");
    let (e1, e2) = (net.orgs[0].identity("peer9"), net.orgs[1].identity("peer9"));
    let tx = TxBuilder::new(&creator, CHANNEL, "example")
        .args(&[b"put", key.as_bytes(), b"by-peer9"])
        .rwset(RwSet::new().write("example", key, b"by-peer9"))
        .endorsed_by(&e1)
        .endorsed_by(&e2)
        .build()
        .unwrap();
    (Envelope::decode(tx.envelope.as_slice()).unwrap(), tx.tx_id)
}

/// Sends `env` through org 2's Gateway and asks every peer its commit status.
async fn send_and_status(
    net: &Network,
    env: Envelope,
    tx_id: &str,
) -> Vec<(TxValidationCode, u64)> {
    let org2 = &net.orgs[1];
    let mut g = gateway(
        net,
        2,
        &Arc::new(org2.identity("client1")),
        &org2.dir.join("client1"),
    )
    .await
    .unwrap();
    g.send(env, tx_id).await.unwrap();
    let mut out = Vec::new();
    for n in 1..=net.peers.len() {
        let mut g = net.gateway(n).await;
        let s = tokio::time::timeout(Duration::from_secs(20), g.commit_status(tx_id))
            .await
            .unwrap_or_else(|_| panic!("peer {n}: no commit status for {tx_id} within 20 s"))
            .unwrap();
        out.push(s);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_peer_in_one_block() {
    let d = tempfile::tempdir().unwrap();
    let net = Arc::new(Network::start(d.path(), NetworkOptions::default()));
    let started = Instant::now();
    let org1 = &net.orgs[0];
    net.orgs[0].enroll("peer9", "peer", None);
    net.orgs[1].enroll("peer9", "peer", None);
    let client1_tls = org1.dir.join("client1");
    let client2 = Arc::new(org1.identity("client2"));

    // Endorsed by Org1's peer9 and Org2's peer9 before any revocation: valid.
    let (env, id) = endorsed_by_peer9s(&net, "peer9-before");
    for (n, (code, _)) in send_and_status(&net, env, &id).await.iter().enumerate() {
        assert_eq!(*code, TxValidationCode::Valid, "peer {}", n + 1);
    }
    // Signed before the revocation, sent after it.
    let in_flight_endorsement = endorsed_by_peer9s(&net, "peer9-after");
    let mut g2 = gateway(&net, 1, &client2, &client1_tls).await.unwrap();
    let in_flight = g2
        .endorse("example", "put", &[b"who", b"in-flight"], &[])
        .await
        .unwrap();

    // client2's stream: one submission after another until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let stream = {
        let (stop, client2, tls) = (stop.clone(), client2.clone(), client1_tls.clone());
        let net = net.clone();
        tokio::spawn(async move {
            let mut g = gateway(&net, 1, &client2, &tls).await.unwrap();
            let mut out: Vec<Outcome> = Vec::new();
            let mut i = 0u32;
            // Until told to, and refused three times (or 60 s are up).
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline
                && !(stop.load(Ordering::Relaxed)
                    && out.iter().filter(|(_, r)| r.is_err()).count() >= 3)
            {
                i += 1;
                let key = format!("stream-{i}");
                let r = tokio::time::timeout(
                    Duration::from_secs(20),
                    g.submit("example", "put", &[key.as_bytes(), b"v"]),
                )
                .await
                .map_err(|_| "no answer within 20 s".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|c| (c.block, c.code));
                out.push((Instant::now(), r));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            out
        })
    };
    // Let the stream commit a few.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_valid(&net, 1).await < 3 {
        assert!(Instant::now() < deadline, "the stream committed nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The one command, as Org1's admin: revoke at the CA, publish the CRLs.
    let tls_root = org1.dir.join("ca/tls-ca-cert.pem").display().to_string();
    let mut revoke = vec![
        "ca",
        "revoke",
        "--identity",
        "admin",
        "--name",
        "client2",
        "--update-channel",
        CHANNEL,
        "--orderer",
        &net.orderer_addrs[0],
        "--orderer-tls-root",
        &tls_root,
    ];
    let ca_conn = org1.ca.conn_args();
    revoke.extend(ca_conn.iter().map(String::as_str));
    let revoking = Instant::now();
    let out = tokio::task::block_in_place(|| qcss_tests::qcss_ok(&org1.dir, &revoke));
    let revoked_at = Instant::now();
    let config_block: u64 = out
        .split("from block ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no config block in: {out}"));
    tokio::task::block_in_place(|| net.wait_heights(config_block + 1, Duration::from_secs(20)));

    // Every peer refuses client2's next proposal, saying why.
    for n in 1..=net.peers.len() {
        let mut g = gateway(&net, n, &client2, &client1_tls).await.unwrap();
        let e = g
            .evaluate("example", "get", &[b"who"])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("revoked"), "peer {n} evaluate: {e}");
        let e = g
            .endorse("example", "put", &[b"who", b"again"], &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("revoked"), "peer {n} endorse: {e}");
    }
    // Its own TLS certificate (revoked with it, in Org1's TLS CRL) is
    // refused at the handshake: the client sees only a broken transport.
    if let Ok(mut g) = gateway(&net, 2, &client2, &org1.dir.join("client2")).await {
        let e = g
            .evaluate("example", "get", &[b"who"])
            .await
            .unwrap_err()
            .to_string();
        assert!(!e.contains("revoked"), "reached the endorser: {e}");
    }
    // What it had endorsed before is refused by the ordering service.
    let (env, id) = in_flight;
    let e = g2.send(env, &id).await.unwrap_err().to_string();
    assert!(e.contains("revoked"), "in-flight: {e}");

    stop.store(true, Ordering::Relaxed);
    let outcomes = tokio::time::timeout(Duration::from_secs(30), stream)
        .await
        .expect("the stream stops")
        .unwrap();
    let valid: Vec<u64> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|(b, code)| {
            assert_eq!(*code, TxValidationCode::Valid);
            *b
        })
        .collect();
    let refused = outcomes.len() - valid.len();
    eprintln!(
        "client2's stream: {} committed (blocks {valid:?}), then {refused} refused; \
         config block {config_block}",
        valid.len()
    );
    assert!(valid.len() >= 3, "{outcomes:?}");
    assert!(refused >= 3, "{outcomes:?}");
    assert!(
        valid.iter().all(|b| *b < config_block),
        "client2 committed at or after config block {config_block}: {valid:?}"
    );
    for (at, r) in &outcomes {
        if let Err(e) = r {
            assert!(e.contains("revoked"), "{e}");
            assert!(*at > revoking, "refused before the revocation: {e}");
        }
        if *at > revoked_at + Duration::from_secs(1) {
            assert!(r.is_err(), "accepted after the revocation: {r:?}");
        }
    }

    // Revoking Org1's peer9 (the same command, no stream this time)
    // invalidates, on every peer, what it endorsed before that block.
    let mut revoke_peer = revoke.clone();
    revoke_peer[5] = "peer9";
    let out = tokio::task::block_in_place(|| qcss_tests::qcss_ok(&org1.dir, &revoke_peer));
    let peer_block: u64 = out
        .split("from block ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no config block in: {out}"));
    let (env, id) = in_flight_endorsement;
    for (n, (code, block)) in send_and_status(&net, env, &id).await.iter().enumerate() {
        assert_eq!(
            *code,
            TxValidationCode::EndorsementPolicyFailure,
            "peer {}",
            n + 1
        );
        assert!(*block > peer_block, "peer {}: block {block}", n + 1);
    }

    // The channel already has these lists: running it again changes nothing.
    let (url, root) = (&ca_conn[1], &ca_conn[3]);
    let mut again = vec![
        "channel",
        "update",
        "crl",
        "--identity",
        "admin",
        "--channel",
        CHANNEL,
        "--orderer",
        &net.orderer_addrs[1],
        "--tls-root",
        &tls_root,
        "--ca-url",
        url,
        "--ca-tls-root",
        root,
    ];
    let out = tokio::task::block_in_place(|| qcss_tests::qcss_ok(&org1.dir, &again));
    assert!(out.contains("nothing to do"), "{out}");
    // Org2's admin cannot publish Org1's lists as its own.
    std::fs::write(d.path().join("org1-crl.pem"), {
        let mut c = qcss_ca::client::CaClient::connect(
            &org1.ca.addr,
            &std::fs::read(org1.ca.tls_root()).unwrap(),
            None,
        )
        .await
        .unwrap();
        c.crl().await.unwrap().crl_pem
    })
    .unwrap();
    let crl_file = d.path().join("org1-crl.pem").display().to_string();
    again.truncate(11);
    again.extend(["--crl", &crl_file]);
    let e = tokio::task::block_in_place(|| qcss_tests::qcss_err(&net.orgs[1].dir, &again));
    assert!(e.contains("is not signed by any of Org2MSP's CAs"), "{e}");

    // Others carry on, on every peer.
    for n in 1..=net.peers.len() {
        let mut g = net.gateway(n).await;
        let key = format!("after-{n}");
        let c = g
            .submit("example", "put", &[key.as_bytes(), b"ok"])
            .await
            .unwrap();
        assert_eq!(c.code, TxValidationCode::Valid, "org {n}'s client1");
    }
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

/// How many `stream-*` keys peer `n` holds (read as Org1's client1).
async fn count_valid(net: &Network, n: usize) -> usize {
    let mut g = net.gateway(n).await;
    let mut count = 0;
    for i in 1..=3 {
        let key = format!("stream-{i}");
        if g.evaluate("example", "get", &[key.as_bytes()])
            .await
            .is_ok_and(|v| !v.is_empty())
        {
            count += 1;
        }
    }
    count
}

/// With `[publish_crls]` in its configuration (a delegated admin identity
/// of its org), the CA itself carries each revocation into the channel: a
/// plain `qcss ca revoke` is then refused on every peer within moments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_with_a_delegated_admin_publishes_its_revocations() {
    let d = tempfile::tempdir().unwrap();
    let mut net = Network::start(d.path(), NetworkOptions::default());
    let started = Instant::now();
    let toml = format!(
        "name = \"ca.org1\"\norg = \"Org1\"\nmsp_id = \"Org1MSP\"\n\n[publish_crls]\n\
         channel = \"{CHANNEL}\"\norderer = \"{}\"\norderer_tls_roots = [\"ca/tls-ca-cert.pem\"]\n\
         admin_dir = \"admin\"\npoll_ms = 100\n",
        net.orderer_addrs[2]
    );
    let cfg = net.orgs[0].dir.join("ca.toml");
    std::fs::write(&cfg, toml).unwrap();
    let cfg = cfg.display().to_string();
    net.orgs[0].ca.restart_with(&["--config", &cfg]);
    let org1 = &net.orgs[0];
    let client2 = Arc::new(org1.identity("client2"));
    let client1_tls = org1.dir.join("client1");
    let mut g = gateway(&net, 1, &client2, &client1_tls).await.unwrap();
    g.submit("example", "put", &[b"who", b"client2"])
        .await
        .unwrap();

    let mut revoke = vec!["ca", "revoke", "--identity", "admin", "--name", "client2"];
    let conn = org1.ca.conn_args();
    revoke.extend(conn.iter().map(String::as_str));
    let out = tokio::task::block_in_place(|| qcss_tests::qcss_ok(&org1.dir, &revoke));
    assert!(out.contains("publish_crls"), "{out}");
    let revoked = Instant::now();
    for n in 1..=net.peers.len() {
        let mut g = gateway(&net, n, &client2, &client1_tls).await.unwrap();
        loop {
            match g.evaluate("example", "get", &[b"who"]).await {
                Err(e) if e.to_string().contains("revoked") => break,
                r => assert!(
                    revoked.elapsed() < Duration::from_secs(20),
                    "peer {n} still answers client2 20 s after the revocation: {r:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "the CA's own update reached every peer {:?} after the revocation",
        revoked.elapsed()
    );
    let mut g = net.gateway(1).await;
    let c = g
        .submit("example", "put", &[b"who", b"client1"])
        .await
        .unwrap();
    assert_eq!(c.code, TxValidationCode::Valid);
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}
