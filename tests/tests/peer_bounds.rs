//! Issue 15, item 4 on a real peer: what a member client can make a peer's
//! memory do with requests built to expand when decoded (millions of empty
//! repeated fields, each 2 bytes on the wire and a heap object in memory),
//! measured on the peer process's own peak RSS (`VmHWM`).
//!
//! Before the fix three 60 MiB Evaluates took a peer from 151 MB to 2.5 GB
//! and 10 M empty arguments in one proposal peaked at 632 MB. The bounds
//! below are generous against normal use and far below those figures, so the
//! test fails on the defect, not on noise.

use std::sync::Arc;

use qcss_peer::endorser::build_proposal;
use qcss_proto::gateway::EvaluateRequest;
use qcss_proto::gateway::gateway_client::GatewayClient as RawGateway;
use qcss_tests::peers::{CHANNEL, Network, NetworkOptions};

const MIB: u64 = 1024 * 1024;

fn peak(net: &Network, n: usize) -> u64 {
    net.peers[n - 1].as_ref().expect("peer running").peak_rss()
}

async fn raw_gateway(net: &Network, n: usize) -> RawGateway<tonic::transport::Channel> {
    // Sends are unbounded so that the peer's own limit is what refuses;
    // answers are small (errors), tonic's default decoding bound stays.
    RawGateway::new(net.channel_as(n, n, "client1").await).max_encoding_message_size(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_built_to_expand_are_refused_within_a_memory_bound() {
    let d = tempfile::tempdir().unwrap();
    let net = Network::start(
        d.path(),
        NetworkOptions {
            orgs: 1,
            ..NetworkOptions::default()
        },
    );
    let mut g = net.gateway(1).await;
    for i in 0..20 {
        let k = format!("k{i}");
        g.submit("example", "put", &[k.as_bytes(), b"v"])
            .await
            .expect("warm-up put");
    }
    let before = peak(&net, 1);
    let signer = Arc::new(net.orgs[0].identity("client1"));
    let mut raw = raw_gateway(&net, 1).await;
    let (proposal, tx_id) =
        build_proposal(&signer, CHANNEL, "example", &[b"get".as_slice(), b"k1"]).expect("proposal");

    // Three 60 MiB Evaluates of 30 M empty target organisations each:
    // refused by size before a byte of them is decoded.
    for _ in 0..3 {
        let req = EvaluateRequest {
            transaction_id: tx_id.clone(),
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(proposal.clone()),
            target_organizations: vec![String::new(); 30 * 1024 * 1024],
        };
        let e = raw.evaluate(req).await.expect_err("60 MiB refused");
        assert_eq!(e.code(), tonic::Code::OutOfRange, "{e}");
    }
    // Just under the limit (10 MiB of empty target organisations, 5 M
    // strings): decoded, then refused for what it asks.
    let req = EvaluateRequest {
        transaction_id: tx_id.clone(),
        channel_id: CHANNEL.into(),
        proposed_transaction: Some(proposal.clone()),
        target_organizations: vec![String::new(); 5 * 1024 * 1024 - 1024],
    };
    let e = raw.evaluate(req).await.expect_err("5 M empty orgs refused");
    assert!(
        e.message().len() < 4096,
        "the error does not echo the input: {} bytes",
        e.message().len()
    );
    // A signed proposal of 5 M empty arguments (10 MiB): refused by count.
    let empty: Vec<&[u8]> = vec![b"".as_slice(); 5 * 1024 * 1024 - 4096];
    let (big, big_id) = build_proposal(&signer, CHANNEL, "example", &empty).expect("proposal");
    let req = EvaluateRequest {
        transaction_id: big_id,
        channel_id: CHANNEL.into(),
        proposed_transaction: Some(big),
        target_organizations: vec![],
    };
    let e = raw.evaluate(req).await.expect_err("5 M empty args refused");
    assert!(e.message().len() < 4096, "{}", e.message().len());
    eprintln!("refusal: {}", e.message());

    let after = peak(&net, 1);
    eprintln!(
        "peer peak RSS: {} MiB before, {} MiB after",
        before / MIB,
        after / MIB
    );
    assert!(before > 0, "VmHWM readable");
    assert!(
        after < before + 256 * MIB,
        "peak RSS grew from {} MiB to {} MiB",
        before / MIB,
        after / MIB
    );
    // And the peer still serves.
    let v = g.evaluate("example", "get", &[b"k1"]).await.expect("get");
    assert_eq!(v, b"v");
}
