//! Reading and checking orderer chains in tests: fetch every block from
//! each node, check that they are byte-identical, and verify a chain (block
//! numbers, hash links, Merkle roots, orderer signatures, LAST_CONFIG, and
//! every config block's update against the configuration before it).

use std::collections::HashMap;

use prost::Message;
use qcss_network::SigningIdentity;
use qcss_network::block::{
    block_hash, check_data_hash, config_envelope_from_block, config_from_block, is_config_block,
    last_config_index, verify_block_signature,
};
use qcss_network::channel::Channel;
use qcss_network::envelope;
use qcss_network::orderer_client::Seek;
use qcss_orderer::config_update::{ConfigUpdate, envelope_time, verify_update};
use qcss_proto::common::{Block, Envelope, HeaderType};

use crate::cluster::{CHANNEL, Cluster};

/// A signed ENDORSER_TRANSACTION envelope for the test channel, and its tx id.
pub fn tx(signer: &SigningIdentity, body: &[u8]) -> (Envelope, String) {
    envelope::build(
        signer,
        CHANNEL,
        HeaderType::EndorserTransaction,
        body.to_vec(),
    )
    .expect("signing an envelope")
}

/// Every block node `node` has, oldest to newest (read as `client1`).
pub async fn all_blocks(c: &Cluster, node: usize) -> Vec<Block> {
    let mut client = c.client(node, "client1").await;
    let me = c.identity("client1");
    client
        .blocks(&me, CHANNEL, Seek::Oldest, Seek::Newest)
        .await
        .unwrap_or_else(|e| panic!("deliver from node {node}: {e}"))
}

/// Header and data of every block: what must be byte-identical across nodes
/// (metadata differs: each node signs with its own key).
pub fn chain_bytes(blocks: &[Block]) -> Vec<Vec<u8>> {
    blocks
        .iter()
        .map(|b| {
            let mut v = b.header.as_ref().expect("header").encode_to_vec();
            v.extend(b.data.as_ref().expect("data").encode_to_vec());
            v
        })
        .collect()
}

/// The tx id of a serialized envelope (config envelopes included).
pub fn tx_id_of(raw: &[u8]) -> String {
    let env = Envelope::decode(raw).expect("envelope decodes");
    let payload =
        qcss_proto::common::Payload::decode(env.payload.as_slice()).expect("payload decodes");
    let header = payload.header.expect("payload header");
    qcss_proto::common::ChannelHeader::decode(header.channel_header.as_slice())
        .expect("channel header decodes")
        .tx_id
}

/// Verifies a whole chain from block 0 and returns, for each tx id, the
/// blocks it appears in (so callers can assert "exactly once").
pub fn verify_chain(blocks: &[Block]) -> HashMap<String, Vec<u64>> {
    assert!(!blocks.is_empty(), "empty chain");
    let mut channel = Channel::new(config_from_block(&blocks[0]).expect("genesis config"))
        .expect("genesis config builds");
    let mut last_config = 0u64;
    let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
    for (i, b) in blocks.iter().enumerate() {
        let h = b.header.as_ref().expect("header");
        assert_eq!(h.number, i as u64, "block numbering");
        check_data_hash(b).unwrap_or_else(|e| panic!("{e}"));
        if i == 0 {
            continue;
        }
        assert_eq!(
            h.previous_hash,
            block_hash(&blocks[i - 1]).to_vec(),
            "hash link at block {i}"
        );
        verify_block_signature(b, &channel).unwrap_or_else(|e| panic!("{e}"));
        if is_config_block(b) {
            // The config block's update must check out against the config before it.
            let (config, update) = config_envelope_from_block(b).expect("config block");
            let update = update.expect("a later config block carries its update");
            let env = Envelope::decode(update.as_slice()).expect("update envelope");
            let opened = envelope::decode(&env).expect("update envelope decodes");
            let u = ConfigUpdate::from_json(&opened.data).expect("config update");
            let next = verify_update(&channel, &u, envelope_time(&opened))
                .unwrap_or_else(|e| panic!("config block {i}: {e}"));
            assert_eq!(
                next.config(),
                &config,
                "config block {i} applies its update"
            );
            channel = next;
            last_config = i as u64;
        }
        assert_eq!(
            last_config_index(b).expect("LAST_CONFIG"),
            last_config,
            "LAST_CONFIG of block {i}"
        );
        for env in &b.data.as_ref().expect("data").data {
            seen.entry(tx_id_of(env)).or_default().push(i as u64);
        }
    }
    seen
}

/// Waits until every live node of `c` is as high as the highest, fetches
/// every block from each, asserts that all chains
/// are byte-identical (header and data) and valid, and returns one of them
/// with its tx index.
pub async fn identical_chains(c: &Cluster) -> (Vec<Block>, HashMap<String, Vec<u64>>) {
    let live = c.live();
    // SUCCESS comes from the leader once it applied the block; followers
    // may be a little behind. Wait until all are as high as the highest.
    let h = live
        .iter()
        .filter_map(|&i| c.metric(i, "qcss_orderer_height"))
        .fold(0.0, f64::max) as u64;
    c.wait_height(h, std::time::Duration::from_secs(30));
    let mut reference: Option<(usize, Vec<Vec<u8>>, Vec<Block>)> = None;
    for &n in &live {
        let blocks = all_blocks(c, n).await;
        let bytes = chain_bytes(&blocks);
        match &reference {
            None => reference = Some((n, bytes, blocks)),
            Some((r, rb, _)) => {
                assert_eq!(
                    bytes.len(),
                    rb.len(),
                    "node {n} has {} blocks, node {r} {}",
                    bytes.len(),
                    rb.len()
                );
                for (k, (x, y)) in bytes.iter().zip(rb).enumerate() {
                    assert!(x == y, "block {k} differs between node {n} and node {r}");
                }
            }
        }
    }
    let (_, _, blocks) = reference.expect("at least one live node");
    let seen = verify_chain(&blocks);
    (blocks, seen)
}

/// The number of envelopes in each block after block 0.
pub fn block_sizes(blocks: &[Block]) -> Vec<usize> {
    blocks
        .iter()
        .skip(1)
        .map(|b| b.data.as_ref().map(|d| d.data.len()).unwrap_or(0))
        .collect()
}
