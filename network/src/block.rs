//! Building and checking Fabric-shaped blocks.
//!
//! Header: number, previous block's hash (Fabric's ASN.1 header hash), and
//! `data_hash` = QCSS's domain-separated Merkle root of the envelopes (a
//! deliberate difference from Fabric; see `proto/README.md`). Metadata has
//! Fabric's five slots (SIGNATURES, LAST_CONFIG, TRANSACTIONS_FILTER,
//! ORDERER, COMMIT_HASH).

use prost::Message;
use qcss_proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelHeader, Envelope, Header, HeaderType,
    Metadata, MetadataSignature, OrdererBlockMetadata, Payload, SignatureHeader,
};
use qcss_proto::hash;

use crate::channel::ChannelConfig;
use crate::envelope;
use crate::identity::SigningIdentity;
use crate::signing::CryptoError;

/// Number of metadata slots Fabric blocks carry.
pub const METADATA_SLOTS: usize = 5;

/// Why a block does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Missing header/data, or a layer does not decode.
    #[error("block {number}: malformed: {message}")]
    Malformed {
        /// The block number (0 if unknown).
        number: u64,
        /// What is wrong.
        message: String,
    },
    /// `data_hash` is not the Merkle root of the data.
    #[error("block {0}: data hash does not match its transactions")]
    DataHash(u64),
    /// `previous_hash` is not the hash of the block before.
    #[error("block {0}: previous hash does not match the chain")]
    Link(u64),
    /// The orderer signature is missing, not from a consenter, or wrong.
    #[error("block {number}: orderer signature: {message}")]
    Signature {
        /// The block number.
        number: u64,
        /// What is wrong.
        message: String,
    },
}

/// A block with header and data filled and empty metadata slots.
pub fn new_block(number: u64, previous_hash: &[u8], envelopes: Vec<Vec<u8>>) -> Block {
    let data = BlockData { data: envelopes };
    let data_hash = hash::block_data_hash(&data).to_vec();
    Block {
        header: Some(BlockHeader {
            number,
            previous_hash: previous_hash.to_vec(),
            data_hash,
        }),
        data: Some(data),
        metadata: Some(BlockMetadata {
            metadata: vec![Vec::new(); METADATA_SLOTS],
        }),
    }
}

/// The block's hash (of its header), as the next block's `previous_hash`.
pub fn block_hash(block: &Block) -> [u8; 32] {
    block
        .header
        .as_ref()
        .map(hash::block_header_hash)
        .unwrap_or_default()
}

/// Checks header presence and the data hash.
pub fn check_data_hash(block: &Block) -> Result<(), BlockError> {
    let header = block.header.as_ref().ok_or(BlockError::Malformed {
        number: 0,
        message: "no header".into(),
    })?;
    let data = block.data.clone().unwrap_or_default();
    if hash::block_data_hash(&data).as_slice() != header.data_hash.as_slice() {
        return Err(BlockError::DataHash(header.number));
    }
    Ok(())
}

/// The bytes an orderer signs for a block: metadata value ‖ signature
/// header ‖ header bytes (Fabric's layout).
pub fn signed_bytes(value: &[u8], signature_header: &[u8], header: &BlockHeader) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + signature_header.len() + 128);
    v.extend_from_slice(value);
    v.extend_from_slice(signature_header);
    v.extend_from_slice(&hash::block_header_bytes(header));
    v
}

/// Signs a block as an orderer: fills the SIGNATURES slot with `value`
/// (an encoded `OrdererBlockMetadata`) and the signer's signature.
pub fn sign_block(
    block: &mut Block,
    signer: &SigningIdentity,
    value: Vec<u8>,
) -> Result<(), CryptoError> {
    let header = block.header.clone().unwrap_or_default();
    let sh = SignatureHeader {
        creator: envelope::creator_bytes(signer),
        nonce: envelope::new_nonce()?,
    }
    .encode_to_vec();
    let signature = signer.sign(&signed_bytes(&value, &sh, &header))?;
    let md = Metadata {
        value,
        signatures: vec![MetadataSignature {
            signature_header: sh,
            signature,
            identifier_header: vec![],
        }],
    };
    let meta = block.metadata.get_or_insert_with(BlockMetadata::default);
    meta.metadata
        .resize(METADATA_SLOTS.max(meta.metadata.len()), Vec::new());
    meta.metadata[0] = md.encode_to_vec();
    Ok(())
}

/// The orderer metadata of a block: last config block, and as consenter
/// metadata the Raft term and index (8 bytes each, big-endian) and, when the
/// leader stamped one, the block time (8 bytes, ms since the epoch) followed
/// by the anchoring MMR root over every earlier block (32 bytes, see
/// [`block_mmr_root`]). The orderers sign this metadata, so they certify the
/// root along with the block.
pub fn orderer_metadata(
    last_config: u64,
    raft_term: u64,
    raft_index: u64,
    time_ms: Option<u64>,
    mmr_root: Option<&[u8; 32]>,
) -> Vec<u8> {
    let mut consenter = Vec::with_capacity(56);
    consenter.extend_from_slice(&raft_term.to_be_bytes());
    consenter.extend_from_slice(&raft_index.to_be_bytes());
    if let Some(t) = time_ms {
        consenter.extend_from_slice(&t.to_be_bytes());
        if let Some(root) = mmr_root {
            consenter.extend_from_slice(root);
        }
    }
    OrdererBlockMetadata {
        last_config: Some(qcss_proto::common::LastConfig { index: last_config }),
        consenter_metadata: consenter,
    }
    .encode_to_vec()
}

/// The root, certified by the orderers in `block`'s signed metadata, of the
/// anchoring Merkle mountain range (`qcss_anchor::statement::block_leaf`
/// leaves) over blocks `0 … number − 1` — every block before this one, so
/// the root never depends on the block that carries it. `None` for blocks
/// cut before roots were carried, and for genesis blocks.
pub fn block_mmr_root(block: &Block) -> Option<[u8; 32]> {
    let md = block_signatures(block).ok()?;
    let obm = OrdererBlockMetadata::decode(md.value.as_slice()).ok()?;
    obm.consenter_metadata.get(24..56)?.try_into().ok()
}

/// The time the ordering leader stamped on `block` (ms since the epoch), if
/// it carries one: read from the signed orderer metadata, so it is as
/// trustworthy as the block's signature. Blocks cut before block times
/// existed, and genesis blocks, have none.
pub fn block_time_ms(block: &Block) -> Option<u64> {
    let md = block_signatures(block).ok()?;
    let obm = OrdererBlockMetadata::decode(md.value.as_slice()).ok()?;
    let t: [u8; 8] = obm.consenter_metadata.get(16..24)?.try_into().ok()?;
    Some(u64::from_be_bytes(t))
}

/// Reads the SIGNATURES slot: (metadata value, [(signature header, signature)]).
pub fn block_signatures(block: &Block) -> Result<Metadata, BlockError> {
    let number = block.header.as_ref().map(|h| h.number).unwrap_or(0);
    let slot = block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.first())
        .ok_or(BlockError::Signature {
            number,
            message: "no SIGNATURES metadata".into(),
        })?;
    Metadata::decode(slot.as_slice()).map_err(|e| BlockError::Malformed {
        number,
        message: format!("SIGNATURES metadata: {e}"),
    })
}

/// Builds the genesis block (number 0) carrying `config` in an unsigned
/// CONFIG envelope, as Fabric's genesis blocks are unsigned.
pub fn genesis_block(config: &ChannelConfig) -> Block {
    let ch = ChannelHeader {
        r#type: HeaderType::Config as i32,
        channel_id: config.channel_id.clone(),
        tx_id: String::new(),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: Vec::new(),
        }),
        data: config.to_json(),
    };
    let env = Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    };
    new_block(0, &[], vec![env.encode_to_vec()])
}

/// The data of a later config block's CONFIG envelope (JSON): the new
/// configuration and the signed `CONFIG_UPDATE` envelope that produced it,
/// so anyone can re-check the admins' signatures against the previous
/// configuration. (Block 0 carries a bare [`ChannelConfig`] instead.)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEnvelope {
    /// The configuration in force from this block on.
    pub config: ChannelConfig,
    /// The `CONFIG_UPDATE` envelope as submitted (protobuf bytes, hex).
    pub last_update: String,
}

/// The CONFIG envelope of a config block that applies `config`, produced by
/// the update envelope `last_update` whose tx id is `tx_id`. It is unsigned
/// and has no timestamp or nonce, so every orderer builds the same bytes (the
/// block's orderer signature vouches for it, and `last_update` carries the
/// admins' signatures).
pub fn config_envelope(config: &ChannelConfig, last_update: &[u8], tx_id: &str) -> Envelope {
    let ch = ChannelHeader {
        r#type: HeaderType::Config as i32,
        channel_id: config.channel_id.clone(),
        tx_id: tx_id.to_string(),
        ..Default::default()
    };
    let data = ConfigEnvelope {
        config: config.clone(),
        last_update: hex::encode(last_update),
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: Vec::new(),
        }),
        // Plain data: serialising cannot fail.
        data: serde_json::to_vec(&data).unwrap_or_default(),
    };
    Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    }
}

/// The CONFIG envelope's data of a config block: the configuration and, for
/// blocks after the genesis block, the update envelope that produced it.
pub fn config_envelope_from_block(
    block: &Block,
) -> Result<(ChannelConfig, Option<Vec<u8>>), BlockError> {
    let number = block.header.as_ref().map(|h| h.number).unwrap_or(0);
    let mal = |m: String| BlockError::Malformed { number, message: m };
    let data = block.data.as_ref().ok_or_else(|| mal("no data".into()))?;
    if data.data.len() != 1 {
        return Err(mal(format!(
            "config block has {} transactions, expected 1",
            data.data.len()
        )));
    }
    let env = Envelope::decode(data.data[0].as_slice()).map_err(|e| mal(e.to_string()))?;
    let payload = Payload::decode(env.payload.as_slice()).map_err(|e| mal(e.to_string()))?;
    let header = payload
        .header
        .ok_or_else(|| mal("no payload header".into()))?;
    let ch =
        ChannelHeader::decode(header.channel_header.as_slice()).map_err(|e| mal(e.to_string()))?;
    if ch.r#type != HeaderType::Config as i32 {
        return Err(mal(format!("envelope type {} is not CONFIG", ch.r#type)));
    }
    if let Ok(ce) = serde_json::from_slice::<ConfigEnvelope>(&payload.data) {
        let update = hex::decode(&ce.last_update)
            .map_err(|e| mal(format!("last_update is not hex: {e}")))?;
        return Ok((ce.config, Some(update)));
    }
    ChannelConfig::from_json(&payload.data)
        .map(|c| (c, None))
        .map_err(|e| mal(e.to_string()))
}

/// The channel configuration carried by a config block (block 0 or a later
/// config block): the data of its single CONFIG envelope.
pub fn config_from_block(block: &Block) -> Result<ChannelConfig, BlockError> {
    config_envelope_from_block(block).map(|(c, _)| c)
}

/// Whether a block is a config block (one CONFIG envelope).
pub fn is_config_block(block: &Block) -> bool {
    let Some(data) = block.data.as_ref() else {
        return false;
    };
    data.data.len() == 1
        && Envelope::decode(data.data[0].as_slice())
            .ok()
            .and_then(|e| Payload::decode(e.payload.as_slice()).ok())
            .and_then(|p| p.header)
            .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
            .is_some_and(|ch| ch.r#type == HeaderType::Config as i32)
}

/// The number of the last config block as a block's orderer metadata
/// records it (Fabric's LAST_CONFIG, in the SIGNATURES slot's value).
pub fn last_config_index(block: &Block) -> Result<u64, BlockError> {
    let number = block.header.as_ref().map(|h| h.number).unwrap_or(0);
    if number == 0 {
        return Ok(0);
    }
    let md = block_signatures(block)?;
    let obm =
        OrdererBlockMetadata::decode(md.value.as_slice()).map_err(|e| BlockError::Malformed {
            number,
            message: format!("orderer metadata: {e}"),
        })?;
    Ok(obm.last_config.map(|l| l.index).unwrap_or(0))
}

/// Verifies a block's orderer signature: the SIGNATURES metadata must hold a
/// signature by one of the channel's consenters over this header.
pub fn verify_block_signature(
    block: &Block,
    channel: &crate::channel::Channel,
) -> Result<u64, BlockError> {
    let header = block.header.clone().ok_or(BlockError::Malformed {
        number: 0,
        message: "no header".into(),
    })?;
    let number = header.number;
    let md = block_signatures(block)?;
    let sig_err = |m: String| BlockError::Signature { number, message: m };
    let first = md
        .signatures
        .first()
        .ok_or_else(|| sig_err("no signature".into()))?;
    let sh = SignatureHeader::decode(first.signature_header.as_slice())
        .map_err(|e| sig_err(format!("signature header: {e}")))?;
    let creator = qcss_proto::msp::SerializedIdentity::decode(sh.creator.as_slice())
        .map_err(|e| sig_err(format!("creator: {e}")))?;
    let der = crate::identity::certs_from_pem(&creator.id_bytes)
        .map_err(|e| sig_err(e.to_string()))?
        .remove(0);
    let consenter = channel
        .consenter_by_identity(&der)
        .ok_or_else(|| sig_err("signer is not a consenter".into()))?;
    let cert = crate::identity::CertInfo::from_der(&der).map_err(|e| sig_err(e.to_string()))?;
    crate::signing::verify(
        &cert.public_key,
        &signed_bytes(&md.value, &first.signature_header, &header),
        &first.signature,
    )
    .map_err(|e| sig_err(e.to_string()))?;
    Ok(consenter.id)
}
