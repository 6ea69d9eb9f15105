//! Issue 15, item 10, made deterministic: a Gateway must not take an
//! endorsement from a peer that has not yet committed what the Gateway's
//! own peer has (the demo failed now and then with "the endorsers computed
//! different results"). The Gateway tells a remote endorser its height
//! (`qcss-min-height`); the endorser waits for it before simulating.
//!
//! The stage: org2's peer is down while `k` is written; it comes back while
//! every orderer is paused (SIGSTOP), so it cannot fetch the block; a
//! proposal that reads `k` is then endorsed by org1 and org2 through org1's
//! Gateway. Without the wait, org2 answers at once from its old state and
//! the endorsements differ, every time. With it, org2 waits; the orderers
//! resume 800 ms later, org2 commits the block and both answer the new
//! value.

use std::time::Duration;

use qcss_peer::client::response_payload;
use qcss_tests::peers::{Network, NetworkOptions};
use qcss_tests::signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endorser_behind_the_gateway_waits_for_its_height() {
    let d = tempfile::tempdir().unwrap();
    // Three orgs; the example contract's policy is the channel's default
    // (a majority: two of three), so org1 and org3 can write without org2.
    let mut net = Network::start(d.path(), NetworkOptions::default());
    let (org1, org2, org3) = (
        "Org1MSP".to_owned(),
        "Org2MSP".to_owned(),
        "Org3MSP".to_owned(),
    );
    let mut g1 = net.gateway(1).await;
    let put = |v: &'static str| (v, [org1.clone(), org3.clone()]);

    // k = old everywhere.
    let (v, orgs) = put("old");
    let (env, tx) = g1
        .endorse("example", "put", &[b"k", v.as_bytes()], &orgs)
        .await
        .unwrap();
    g1.send(env, &tx).await.unwrap();
    let (_, block) = g1.commit_status(&tx).await.unwrap();
    net.wait_heights(block + 1, Duration::from_secs(30));

    // Org2's peer is down while k becomes new.
    net.kill_peer(2);
    let (v, orgs) = put("new");
    let (env, tx) = g1
        .endorse("example", "put", &[b"k", v.as_bytes()], &orgs)
        .await
        .unwrap();
    g1.send(env, &tx).await.unwrap();
    let (_, block) = g1.commit_status(&tx).await.unwrap();
    // Org1 and org3 (the running peers) have it.
    net.wait_heights(block + 1, Duration::from_secs(30));

    // Every orderer paused, org2's peer back: it cannot fetch that block.
    let orderers: Vec<u32> = net
        .orderers
        .iter()
        .map(|o| o.as_ref().unwrap().pid())
        .collect();
    for &pid in &orderers {
        signal(pid, "-STOP");
    }
    net.start_peer(2);
    assert!(
        net.height(2) <= block,
        "org2's peer must be behind for this test to mean anything"
    );
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        for pid in orderers {
            signal(pid, "-CONT");
        }
    });

    // Read k through org1's Gateway, endorsed by org1 and org2.
    let mut g1 = net.gateway(1).await;
    let r = g1
        .endorse("example", "get", &[b"k"], &[org1.clone(), org2.clone()])
        .await;
    resume.join().unwrap();
    let (env, _) = r.unwrap_or_else(|e| panic!("endorsements differed: {e}"));
    assert_eq!(response_payload(&env).as_deref(), Some(&b"new"[..]));
    let log = net.peer_log(2);
    assert!(
        net.height(2) > block,
        "org2 caught up before endorsing: {log}"
    );
}
