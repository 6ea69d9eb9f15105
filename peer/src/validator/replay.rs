//! [`committed_writes`]: what a committed VALID transaction wrote, read back
//! from its envelope, for rebuilding world state from the blocks
//! (`Ledger::rebuild_derived`). No checks beyond decoding: the transaction
//! was validated when it was committed.

use prost::Message;
use qcss_proto::common::{ChannelHeader, Envelope, HeaderType, Payload};
use qcss_proto::protos::ChaincodeAction;

use crate::ledger::{MetadataWrite, Write};
use crate::validator::rwset::ReadWriteSet;
use crate::validator::transaction::endorsed_action;

/// The value and metadata writes of a committed VALID transaction, in the
/// order the validator applied them; nothing for a config transaction.
pub fn committed_writes(envelope: &[u8]) -> Result<(Vec<Write>, Vec<MetadataWrite>), String> {
    let env = Envelope::decode(envelope).map_err(|e| format!("envelope: {e}"))?;
    let payload = Payload::decode(env.payload.as_slice()).map_err(|e| format!("payload: {e}"))?;
    let header = payload.header.ok_or("payload has no header")?;
    let ch = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| format!("channel header: {e}"))?;
    match HeaderType::try_from(ch.r#type) {
        Ok(HeaderType::Config) => return Ok((Vec::new(), Vec::new())),
        Ok(HeaderType::EndorserTransaction) => {}
        _ => return Err(format!("header type {} is not a transaction", ch.r#type)),
    }
    let (_, prp) = endorsed_action(
        &payload.data,
        &header.channel_header,
        &header.signature_header,
    )
    .map_err(|r| r.reason)?;
    let action = ChaincodeAction::decode(prp.extension.as_slice())
        .map_err(|e| format!("chaincode action: {e}"))?;
    let rwset = ReadWriteSet::decode(&action.results).map_err(|r| r.reason)?;
    Ok((
        rwset.writes().cloned().collect(),
        rwset.metadata_writes().cloned().collect(),
    ))
}
