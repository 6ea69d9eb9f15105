//! Issue 15: a follower paused (SIGSTOP) past every election timeout and
//! then resumed must not depose the healthy leader. Before pre-vote it
//! campaigned at a higher term the moment it woke, the leader saw "a higher
//! vote" in its reply and stepped down: a re-election and a stall.

use std::time::Duration;

use qcss_tests::chain::tx;
use qcss_tests::cluster::{Cluster, ClusterOptions};
use qcss_tests::signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_resumed_after_a_pause_does_not_depose_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), ClusterOptions::default());
    let leader = c.wait_leader(Duration::from_secs(30));
    let term = |i: usize| c.metric(i, "qcss_orderer_raft_term").unwrap_or(-1.0) as i64;
    let leader_term = term(leader as usize);
    let follower = (1..=3).find(|i| *i as u64 != leader).unwrap();
    let pid = c.nodes[follower - 1].as_ref().unwrap().pid();

    // Paused for three times the longest election timeout (2 s).
    signal(pid, "-STOP");
    tokio::time::sleep(Duration::from_secs(6)).await;
    signal(pid, "-CONT");
    // Long enough for it to time out, campaign and be heard, had it done so.
    tokio::time::sleep(Duration::from_secs(5)).await;

    for i in 1..=3 {
        assert_eq!(
            c.metric(i, "qcss_orderer_raft_leader").unwrap_or(0.0) as u64,
            leader,
            "node {i} follows another leader after the pause; log of {follower}:\n{}",
            c.log(follower)
        );
    }
    assert_eq!(
        term(leader as usize),
        leader_term,
        "the leader's term changed: it was deposed"
    );
    // And the resumed follower is back in the cluster: it orders.
    let me = c.identity("client1");
    let mut client = c.client(follower, "client1").await;
    let (env, _) = tx(&me, b"after the pause");
    let r = client.broadcast(vec![env]).await.unwrap();
    assert_eq!(
        r[0].status,
        qcss_proto::common::Status::Success as i32,
        "{r:?}"
    );
}
