//! What the explorer shows of committed blocks and transactions, read from
//! the ledger: numbers, hashes, validation codes, who created and endorsed
//! a transaction (org, role, kinds; a peer's name), the keys it read and
//! wrote. Deliberately **not**: written values, arguments, signatures,
//! certificates, or a client's name (a consumer identity may be a real
//! name) — a web visitor is not a channel member.

use std::collections::BTreeMap;

use prost::Message;
use qcss_network::block::block_hash;
use qcss_network::identity::CertInfo;
use qcss_proto::common::{Block, ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader};
use qcss_proto::kvrwset::KvrwSet;
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEvent, ChaincodeInvocationSpec,
    ChaincodeProposalPayload, ProposalResponsePayload, Transaction, TxValidationCode,
};
use qcss_proto::rwset::TxReadWriteSet;
use serde_json::{Value, json};

use crate::ledger::{Ledger, LedgerError};

/// Blocks a list answers at most.
pub(crate) const MAX_BLOCKS: u64 = 100;

/// A composite key as people read it: `\0batch\0g\0l\0` → `batch/g/l`.
pub(crate) fn readable_key(key: &str) -> String {
    match key.strip_prefix('\0') {
        Some(rest) => rest.trim_end_matches('\0').replace('\0', "/"),
        None => key.to_owned(),
    }
}

fn header_type_name(t: i32) -> String {
    HeaderType::try_from(t).map_or_else(|_| format!("TYPE_{t}"), |h| h.as_str_name().to_owned())
}

fn code_name(code: Option<&u8>) -> &'static str {
    code.and_then(|c| TxValidationCode::try_from(i32::from(*c)).ok())
        .unwrap_or(TxValidationCode::InvalidOtherReason)
        .as_str_name()
}

/// An identity as the explorer shows it.
fn identity(bytes: &[u8], with_name: bool) -> Value {
    let Ok(id) = SerializedIdentity::decode(bytes) else {
        return json!({ "msp": null, "role": null });
    };
    match CertInfo::from_pem(&id.id_bytes) {
        Ok(c) => {
            let mut v = json!({
                "msp": id.mspid,
                "role": c.role.map(|r| r.as_str()),
                "kinds": c.kinds(),
            });
            if with_name {
                v["name"] = json!(c.common_name);
            }
            v
        }
        Err(_) => json!({ "msp": id.mspid, "role": null }),
    }
}

/// One envelope, decoded as far as it goes.
struct Decoded {
    header: ChannelHeader,
    creator: Option<Vec<u8>>,
    tx: Option<Transaction>,
}

fn decode(bytes: &[u8]) -> Decoded {
    let payload = Envelope::decode(bytes)
        .ok()
        .and_then(|e| Payload::decode(e.payload.as_slice()).ok());
    let header = payload.as_ref().and_then(|p| p.header.as_ref());
    let ch = header
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
        .unwrap_or_default();
    let creator = header
        .and_then(|h| SignatureHeader::decode(h.signature_header.as_slice()).ok())
        .map(|s| s.creator);
    let tx = (ch.r#type == HeaderType::EndorserTransaction as i32)
        .then(|| payload.and_then(|p| Transaction::decode(p.data.as_slice()).ok()))
        .flatten();
    Decoded {
        header: ch,
        creator,
        tx,
    }
}

/// The first action's payload and chaincode action (QCSS transactions have one).
fn action(tx: &Transaction) -> Option<(ChaincodeActionPayload, ChaincodeAction)> {
    let cap = ChaincodeActionPayload::decode(tx.actions.first()?.payload.as_slice()).ok()?;
    let prp =
        ProposalResponsePayload::decode(cap.action.as_ref()?.proposal_response_payload.as_slice())
            .ok()?;
    let ca = ChaincodeAction::decode(prp.extension.as_slice()).ok()?;
    Some((cap, ca))
}

fn function(cap: &ChaincodeActionPayload) -> Option<String> {
    let p = ChaincodeProposalPayload::decode(cap.chaincode_proposal_payload.as_slice()).ok()?;
    let spec = ChaincodeInvocationSpec::decode(p.input.as_slice()).ok()?;
    let arg = spec.chaincode_spec?.input?.args.into_iter().next()?;
    String::from_utf8(arg).ok()
}

/// The one-line summary of a transaction in a block list.
fn tx_summary(position: usize, bytes: &[u8], code: Option<&u8>) -> Value {
    let d = decode(bytes);
    let (chaincode, function) =
        d.tx.as_ref()
            .and_then(action)
            .map(|(cap, ca)| (ca.chaincode_id.map(|c| c.name), function(&cap)))
            .unwrap_or_default();
    json!({
        "tx_id": d.header.tx_id,
        "position": position,
        "type": header_type_name(d.header.r#type),
        "code": code_name(code),
        "time": d.header.timestamp.map(|t| t.seconds),
        "chaincode": chaincode,
        "function": function,
        "creator_msp": d.creator.as_deref().and_then(|c| SerializedIdentity::decode(c).ok()).map(|s| s.mspid),
    })
}

/// A block: number, hashes, transaction count, the count per validation
/// code, and each transaction's summary.
pub(crate) fn block_json(block: &Block) -> Value {
    let header = block.header.clone().unwrap_or_default();
    let codes = crate::ledger::filter_of(block);
    let data = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[]);
    let txs: Vec<Value> = data
        .iter()
        .enumerate()
        .map(|(i, bytes)| tx_summary(i, bytes, codes.get(i)))
        .collect();
    let mut per_code: BTreeMap<String, u64> = BTreeMap::new();
    for t in &txs {
        *per_code
            .entry(t["code"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    json!({
        "number": header.number,
        "hash": hex::encode(block_hash(block)),
        "previous_hash": hex::encode(&header.previous_hash),
        "data_hash": hex::encode(&header.data_hash),
        "tx_count": txs.len(),
        "time": txs.iter().find_map(|t| t["time"].as_i64()),
        "codes": per_code,
        "transactions": txs,
    })
}

/// Blocks `from`, `from - 1`, ... (newest first), at most `limit`.
pub(crate) fn blocks(ledger: &Ledger, from: u64, limit: u64) -> Result<Vec<Value>, LedgerError> {
    let mut out = Vec::new();
    let mut n = from.min(ledger.height().saturating_sub(1));
    while out.len() < limit.min(MAX_BLOCKS) as usize {
        if let Some(b) = ledger.block(n)? {
            out.push(block_json(&b));
        }
        if n == 0 {
            break;
        }
        n -= 1;
    }
    Ok(out)
}

fn rwset_json(results: &[u8]) -> Vec<Value> {
    let Ok(rw) = TxReadWriteSet::decode(results) else {
        return Vec::new();
    };
    rw.ns_rwset
        .iter()
        .map(|ns| {
            let kv = KvrwSet::decode(ns.rwset.as_slice()).unwrap_or_default();
            json!({
                "namespace": ns.namespace,
                "reads": kv.reads.iter().map(|r| json!({
                    "key": readable_key(&r.key),
                    "version": r.version.as_ref().map(|v| format!("{}:{}", v.block_num, v.tx_num)),
                })).collect::<Vec<_>>(),
                "range_reads": kv.range_queries_info.iter().map(|q| json!({
                    "start": readable_key(&q.start_key),
                    "end": readable_key(&q.end_key),
                })).collect::<Vec<_>>(),
                "writes": kv.writes.iter().map(|w| json!({
                    "key": readable_key(&w.key),
                    "delete": w.is_delete,
                })).collect::<Vec<_>>(),
                "metadata_writes": kv.metadata_writes.iter().map(|m| readable_key(&m.key)).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A transaction's detail, or `None` if the ledger has no such tx id.
pub(crate) fn tx_json(ledger: &Ledger, tx_id: &str) -> Result<Option<Value>, LedgerError> {
    let Some((bytes, at)) = ledger.tx_envelope(tx_id)? else {
        return Ok(None);
    };
    let d = decode(&bytes);
    let mut v = json!({
        "tx_id": d.header.tx_id,
        "block": at.block,
        "position": at.position,
        "code": at.code.as_str_name(),
        "type": header_type_name(d.header.r#type),
        "channel": d.header.channel_id,
        "time": d.header.timestamp.map(|t| t.seconds),
        "creator": d.creator.as_deref().map(|c| identity(c, false)),
    });
    if let Some((cap, ca)) = d.tx.as_ref().and_then(action) {
        v["chaincode"] = json!(ca.chaincode_id.as_ref().map(|c| &c.name));
        v["function"] = json!(function(&cap));
        v["endorsers"] = json!(
            cap.action
                .as_ref()
                .map(|a| a
                    .endorsements
                    .iter()
                    .map(|e| identity(&e.endorser, true))
                    .collect::<Vec<_>>())
                .unwrap_or_default()
        );
        v["rwset"] = json!(rwset_json(&ca.results));
        v["event"] = json!(
            ChaincodeEvent::decode(ca.events.as_slice())
                .ok()
                .filter(|e| !e.event_name.is_empty())
                .map(|e| e.event_name)
        );
        v["response_status"] = json!(ca.response.map(|r| r.status));
    }
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_read_as_paths() {
        assert_eq!(
            readable_key(&["", "batch", "06901234560022", "LJ2026A", ""].join("\0")),
            "batch/06901234560022/LJ2026A"
        );
        assert_eq!(readable_key("plain"), "plain");
    }

    #[test]
    fn garbage_envelopes_are_summarised_not_fatal() {
        let t = tx_summary(0, b"garbage", Some(&0));
        assert_eq!(t["code"], "VALID");
        assert_eq!(t["tx_id"], "");
        let t = tx_summary(1, b"", None);
        assert_eq!(t["code"], "INVALID_OTHER_REASON");
    }
}
