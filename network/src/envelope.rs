//! Fabric envelopes: building signed ones and opening received ones.
//!
//! An [`Envelope`](qcss_proto::common::Envelope) is `payload` bytes plus the
//! creator's signature over exactly those bytes. The payload's header names
//! the channel, the type, the tx id and the creator (a serialized identity).
//! [`VerifiedEnvelope`] can only be made by [`open`], which decodes every
//! layer, checks the creator against the channel's MSPs and verifies the
//! signature — so code holding one knows who sent it.

use prost::Message;
use qcss_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader};
use qcss_proto::msp::SerializedIdentity as PbIdentity;
use ring::rand::SecureRandom;

use crate::identity::SigningIdentity;
use crate::msp::{MspError, ValidatedIdentity};
use crate::signing::{self, CryptoError};

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// A protobuf layer does not decode.
    #[error("malformed {layer}: {message}")]
    Malformed {
        /// Which layer (envelope, payload, channel header, ...).
        layer: &'static str,
        /// The decode error.
        message: String,
    },
    /// A required field is empty.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The creator's MSP is not a member of the channel.
    #[error("creator MSP {0:?} is not a member of this channel")]
    UnknownMsp(String),
    /// The creator's certificate was refused by its MSP.
    #[error("creator refused: {0}")]
    BadCreator(#[from] MspError),
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(CryptoError),
    /// The tx id is not SHA-256(nonce ‖ creator).
    #[error("tx id {0:?} does not match its nonce and creator")]
    BadTxId(String),
    /// The envelope is for another channel.
    #[error("envelope is for channel {got:?}, not {want:?}")]
    WrongChannel {
        /// The channel it names.
        got: String,
        /// This channel.
        want: String,
    },
}

/// The decoded, not yet trusted layers of an envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedEnvelope {
    /// The channel header.
    pub channel_header: ChannelHeader,
    /// The signature header.
    pub signature_header: SignatureHeader,
    /// The creator, decoded from the signature header.
    pub creator: PbIdentity,
    /// The payload's data (the transaction, config update or seek info).
    pub data: Vec<u8>,
    /// The exact payload bytes that were signed.
    pub payload: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// An envelope whose creator is a valid member and whose signature verifies.
#[derive(Debug, Clone)]
pub struct VerifiedEnvelope {
    opened: OpenedEnvelope,
    creator: std::sync::Arc<ValidatedIdentity>,
}

impl VerifiedEnvelope {
    /// The decoded layers.
    pub fn opened(&self) -> &OpenedEnvelope {
        &self.opened
    }
    /// Who signed it.
    pub fn creator(&self) -> &ValidatedIdentity {
        &self.creator
    }
    /// The tx id from the channel header.
    pub fn tx_id(&self) -> &str {
        &self.opened.channel_header.tx_id
    }
    /// The header type.
    pub fn header_type(&self) -> i32 {
        self.opened.channel_header.r#type
    }
}

/// Decodes every layer of `env` without checking anything.
pub fn decode(env: &Envelope) -> Result<OpenedEnvelope, EnvelopeError> {
    let mal = |layer: &'static str| {
        move |e: prost::DecodeError| EnvelopeError::Malformed {
            layer,
            message: e.to_string(),
        }
    };
    if env.payload.is_empty() {
        return Err(EnvelopeError::Missing("payload"));
    }
    let payload = Payload::decode(env.payload.as_slice()).map_err(mal("payload"))?;
    let header = payload
        .header
        .ok_or(EnvelopeError::Missing("payload header"))?;
    let ch =
        ChannelHeader::decode(header.channel_header.as_slice()).map_err(mal("channel header"))?;
    let sh = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(mal("signature header"))?;
    let creator = PbIdentity::decode(sh.creator.as_slice()).map_err(mal("creator"))?;
    if creator.mspid.is_empty() || creator.id_bytes.is_empty() {
        return Err(EnvelopeError::Missing("creator identity"));
    }
    Ok(OpenedEnvelope {
        channel_header: ch,
        signature_header: sh,
        creator,
        data: payload.data,
        payload: env.payload.clone(),
        signature: env.signature.clone(),
    })
}

/// Opens and verifies an envelope: decodes it, checks it is for `channel_id`,
/// validates the creator with `msp_of(msp_id)`, and verifies the signature.
pub fn open<'a>(
    env: &Envelope,
    channel_id: &str,
    msp_of: impl Fn(&str) -> Option<&'a crate::msp::Msp>,
) -> Result<VerifiedEnvelope, EnvelopeError> {
    let opened = decode(env)?;
    if opened.channel_header.channel_id != channel_id {
        return Err(EnvelopeError::WrongChannel {
            got: opened.channel_header.channel_id.clone(),
            want: channel_id.to_string(),
        });
    }
    let msp = msp_of(&opened.creator.mspid)
        .ok_or_else(|| EnvelopeError::UnknownMsp(opened.creator.mspid.clone()))?;
    let creator = msp.validate_serialized(&opened.creator.mspid, &opened.creator.id_bytes)?;
    signing::verify(&creator.cert.public_key, &opened.payload, &opened.signature)
        .map_err(EnvelopeError::BadSignature)?;
    Ok(VerifiedEnvelope { opened, creator })
}

/// Fabric's tx id: hex(SHA-256(nonce ‖ serialized creator)).
pub fn compute_tx_id(nonce: &[u8], creator: &[u8]) -> String {
    let mut buf = Vec::with_capacity(nonce.len() + creator.len());
    buf.extend_from_slice(nonce);
    buf.extend_from_slice(creator);
    hex::encode(signing::sha256(&buf))
}

/// The block number in an orderer's SUCCESS `info` ("ordered in block N",
/// possibly followed by a [`forwarded_note`]).
pub fn ordered_block(info: &str) -> Option<u64> {
    let rest = info.strip_prefix("ordered in block ")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// What an orderer that forwarded an envelope adds to the leader's SUCCESS
/// `info`: which consenter leads, and at which address. Fabric clients show
/// `info` as text; the QCSS Gateway reads it back with [`forwarded_to`] and
/// submits to the leader directly from then on.
pub fn forwarded_note(leader: u64, addr: &str) -> String {
    format!(" (forwarded to leader {leader} at {addr})")
}

/// The leader's address in a SUCCESS `info` carrying [`forwarded_note`].
pub fn forwarded_to(info: &str) -> Option<&str> {
    let rest = &info[info.rfind("(forwarded to leader ")?..];
    let addr = &rest[rest.find(" at ")? + 4..];
    addr.strip_suffix(')')
        .filter(|a| !a.is_empty() && !a.contains(' '))
}

/// A fresh 24-byte nonce.
pub fn new_nonce() -> Result<Vec<u8>, CryptoError> {
    let mut n = vec![0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut n)
        .map_err(|_| CryptoError::Rng)?;
    Ok(n)
}

/// The serialized-identity bytes of a signer, as they go into headers.
pub fn creator_bytes(signer: &SigningIdentity) -> Vec<u8> {
    PbIdentity {
        mspid: signer.msp_id.0.clone(),
        id_bytes: signer.cert_pem.clone(),
    }
    .encode_to_vec()
}

/// Builds and signs an envelope of `header_type` carrying `data`, with a
/// fresh nonce and the Fabric tx id; returns it with its tx id.
pub fn build(
    signer: &SigningIdentity,
    channel_id: &str,
    header_type: HeaderType,
    data: Vec<u8>,
) -> Result<(Envelope, String), CryptoError> {
    let nonce = new_nonce()?;
    let creator = creator_bytes(signer);
    let tx_id = compute_tx_id(&nonce, &creator);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ch = ChannelHeader {
        r#type: header_type as i32,
        version: 0,
        timestamp: Some(prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
        channel_id: channel_id.to_string(),
        tx_id: tx_id.clone(),
        epoch: 0,
        extension: vec![],
        tls_cert_hash: vec![],
    };
    let sh = SignatureHeader { creator, nonce };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: sh.encode_to_vec(),
        }),
        data,
    }
    .encode_to_vec();
    let signature = signer.sign(&payload)?;
    Ok((Envelope { payload, signature }, tx_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_note_round_trips() {
        let info = format!("ordered in block 12{}", forwarded_note(2, "127.0.0.1:7050"));
        assert_eq!(
            info,
            "ordered in block 12 (forwarded to leader 2 at 127.0.0.1:7050)"
        );
        assert_eq!(forwarded_to(&info), Some("127.0.0.1:7050"));
        assert_eq!(forwarded_to("ordered in block 12"), None);
        assert_eq!(ordered_block(&info), Some(12));
        assert_eq!(ordered_block("ordered in block 7"), Some(7));
        assert_eq!(ordered_block("no leader"), None);
        assert_eq!(forwarded_to("x (forwarded to leader 2 at )"), None);
        assert_eq!(forwarded_to("x (forwarded to leader 2 at a b)"), None);
        assert_eq!(forwarded_to("x (forwarded to leader 2 at [::1]:7050"), None);
    }
}
