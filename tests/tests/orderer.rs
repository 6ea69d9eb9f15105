//! The ordering service end to end: three `qcss orderer` processes on
//! 127.0.0.1, real mTLS, real sled, real Raft.

use std::collections::HashMap;
use std::time::Duration;

use prost::Message;
use qcss_network::SigningIdentity;
use qcss_network::block::{block_hash, check_data_hash, config_from_block, verify_block_signature};
use qcss_network::channel::{BatchConfig, Channel};
use qcss_network::envelope;
use qcss_network::orderer_client::Seek;
use qcss_proto::common::{Block, Envelope, HeaderType, Status};
use qcss_tests::cluster::{CHANNEL, Cluster, ClusterOptions};
use tokio_stream::StreamExt;

fn tx(signer: &SigningIdentity, body: &[u8]) -> (Envelope, String) {
    envelope::build(
        signer,
        CHANNEL,
        HeaderType::EndorserTransaction,
        body.to_vec(),
    )
    .unwrap()
}

async fn all_blocks(c: &Cluster, node: usize) -> Vec<Block> {
    let mut client = c.client(node, "client1").await;
    let me = c.identity("client1");
    let stream = client
        .deliver(&me, CHANNEL, Seek::Oldest, Seek::Newest)
        .await
        .unwrap();
    tokio::pin!(stream);
    let mut out = Vec::new();
    while let Some(b) = stream.next().await {
        out.push(b.unwrap());
    }
    out
}

/// Checks the chain and returns how often each tx id appears.
fn verify_chain(blocks: &[Block]) -> HashMap<String, usize> {
    let channel = Channel::new(config_from_block(&blocks[0]).unwrap()).unwrap();
    let mut seen = HashMap::new();
    for (i, b) in blocks.iter().enumerate() {
        let h = b.header.as_ref().unwrap();
        assert_eq!(h.number, i as u64);
        check_data_hash(b).unwrap();
        if i > 0 {
            assert_eq!(
                h.previous_hash,
                block_hash(&blocks[i - 1]).to_vec(),
                "link at {i}"
            );
            verify_block_signature(b, &channel).unwrap();
            for env in &b.data.as_ref().unwrap().data {
                let o = envelope::decode(&Envelope::decode(env.as_slice()).unwrap()).unwrap();
                *seen.entry(o.channel_header.tx_id).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// Header and data of every block, which must be byte-identical across nodes.
fn chain_bytes(blocks: &[Block]) -> Vec<Vec<u8>> {
    blocks
        .iter()
        .map(|b| {
            let mut v = b.header.as_ref().unwrap().encode_to_vec();
            v.extend(b.data.as_ref().unwrap().encode_to_vec());
            v
        })
        .collect()
}

#[test]
fn ten_thousand_envelopes_identical_on_every_node() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::start(tmp.path(), ClusterOptions::default());
    c.wait_leader(Duration::from_secs(20));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let me = c.identity("client1");
        // Sign everything first; four clients, each on its own stream to a different node.
        let mut batches = Vec::new();
        for k in 0..4 {
            let envs: Vec<(Envelope, String)> = (0..per_client())
                .map(|i| tx(&me, format!("client{k}-tx{i}").as_bytes()))
                .collect();
            batches.push(envs);
        }
        let mut tasks = Vec::new();
        for (k, envs) in batches.into_iter().enumerate() {
            let mut client = c.client(1 + k % 3, "client1").await;
            tasks.push(tokio::spawn(async move {
                let ids: Vec<String> = envs.iter().map(|(_, id)| id.clone()).collect();
                let resps = client
                    .broadcast(envs.into_iter().map(|(e, _)| e).collect())
                    .await
                    .unwrap();
                (ids, resps)
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            let (ids, resps) = t.await.unwrap();
            assert_eq!(resps.len(), ids.len());
            for (id, r) in ids.into_iter().zip(resps) {
                assert_eq!(r.status, Status::Success as i32, "{}", r.info);
                acked.push(id);
            }
        }
        assert_eq!(acked.len(), 4 * per_client());
        // Every SUCCESS was sent after the leader applied the block; followers may lag.
        let h = (1..=3)
            .filter_map(|i| c.metric(i, "qcss_orderer_height"))
            .fold(0.0, f64::max) as u64;
        c.wait_height(h, Duration::from_secs(30));
        let chains: Vec<Vec<Block>> = vec![
            all_blocks(&c, 1).await,
            all_blocks(&c, 2).await,
            all_blocks(&c, 3).await,
        ];
        let reference = chain_bytes(&chains[0]);
        for (n, chain) in chains.iter().enumerate() {
            assert_eq!(chain_bytes(chain), reference, "node {} differs", n + 1);
            let seen = verify_chain(chain);
            for id in &acked {
                assert_eq!(seen.get(id), Some(&1), "tx {id} on node {}", n + 1);
            }
            assert_eq!(seen.len(), 4 * per_client());
        }
    });
}

#[test]
fn bad_envelopes_are_refused_and_nothing_is_ordered() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ClusterOptions {
        batch: BatchConfig {
            absolute_max_bytes: 64 * 1024,
            preferred_max_bytes: 32 * 1024,
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Cluster::start(tmp.path(), opts);
    c.wait_leader(Duration::from_secs(20));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let me = c.identity("client1");
        let mut client = c.client(2, "client1").await;
        // One good envelope, to replay afterwards.
        let (good, _) = tx(&me, b"ok");
        let r = client.broadcast(vec![good.clone()]).await.unwrap();
        assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
        c.wait_height(2, Duration::from_secs(10));

        let (mut unsigned, _) = tx(&me, b"x");
        unsigned.signature.clear();
        let (mut wrong, _) = tx(&me, b"y");
        let other = tx(&me, b"z").0;
        wrong.signature = other.signature;
        let revoked = c.identity("revoked1");
        let (by_revoked, _) = tx(&revoked, b"r");
        let (big, _) = tx(&me, &vec![7u8; 100 * 1024]);
        let garbage = Envelope {
            payload: vec![0xff, 0x01, 0x02],
            signature: vec![1],
        };
        let cases: Vec<(&str, Envelope, Status, &str)> = vec![
            ("unsigned", unsigned, Status::Forbidden, "signature"),
            ("wrongly signed", wrong, Status::Forbidden, "signature"),
            ("revoked creator", by_revoked, Status::Forbidden, "revoked"),
            (
                "oversize",
                big,
                Status::RequestEntityTooLarge,
                "exceeds AbsoluteMaxBytes",
            ),
            (
                "replayed tx id",
                good,
                Status::BadRequest,
                "duplicate tx id",
            ),
            (
                "malformed protobuf",
                garbage,
                Status::BadRequest,
                "malformed",
            ),
        ];
        let h0 = c.metric(1, "qcss_orderer_height").unwrap();
        for (what, env, status, needle) in cases {
            let r = client.broadcast(vec![env]).await.unwrap();
            assert_eq!(r[0].status, status as i32, "{what}: {}", r[0].info);
            assert!(
                r[0].info.contains(needle),
                "{what}: {:?} lacks {needle:?}",
                r[0].info
            );
        }
        // A creator from a foreign CA: a second, unrelated CA process.
        let foreign_dir = tmp.path().join("foreign");
        std::fs::create_dir_all(&foreign_dir).unwrap();
        let fca = qcss_tests::CaNode::start(&foreign_dir.join("ca"), 0);
        let s = fca.bootstrap_secret.clone().unwrap();
        let mut a = vec![
            "ca", "enroll", "--name", "admin", "--secret", &s, "--out", "admin",
        ];
        let conn = fca.conn_args();
        a.extend(conn.iter().map(String::as_str));
        qcss_tests::qcss_ok(&foreign_dir, &a);
        let stranger = SigningIdentity::load_dir(
            qcss_network::MspId("Org1MSP".into()),
            &foreign_dir.join("admin"),
        )
        .unwrap();
        let r = client.broadcast(vec![tx(&stranger, b"s").0]).await.unwrap();
        assert_eq!(r[0].status, Status::Forbidden as i32, "{}", r[0].info);
        assert!(r[0].info.contains("does not chain"), "{}", r[0].info);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            c.metric(1, "qcss_orderer_height").unwrap(),
            h0,
            "nothing was ordered"
        );

        // A client (not a consenter) trying to speak Raft is refused.
        let tls = qcss_network::tls::client_tls(
            &c.tls_roots(),
            Some((
                &std::fs::read(c.dir.join("client1/tls-cert.pem")).unwrap(),
                &std::fs::read(c.dir.join("client1/tls-key.pem")).unwrap(),
            )),
            "127.0.0.1",
        );
        let ch = qcss_network::tls::connect(&c.addrs[0], tls).await.unwrap();
        let mut raft = qcss_proto::qcss::raft::raft_client::RaftClient::new(ch);
        let err = raft
            .vote(qcss_proto::qcss::raft::RaftMessage {
                data: vec![1, 2, 3],
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
        assert!(
            err.message().contains("not a consenter"),
            "{}",
            err.message()
        );
    });
}

/// Envelopes per client in the big test (4 clients; 2,500 each = 10,000).
fn per_client() -> usize {
    std::env::var("QCSS_TEST_PER_CLIENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2500)
}
