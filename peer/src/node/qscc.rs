//! `qscc`, Fabric's query system chaincode, answered natively by the peer
//! for `Evaluate` and `ProcessProposal`: chain info, blocks and
//! transactions, plus `GetHistoryForKey` (a QCSS addition). Nothing here
//! writes or is endorsed; responses carry status 200 and a payload.
//!
//! | function | args | payload |
//! |---|---|---|
//! | `GetChainInfo` | channel | `common.BlockchainInfo` |
//! | `GetBlockByNumber` | channel, number (decimal) | `common.Block` |
//! | `GetBlockByTxID` | channel, tx id | `common.Block` |
//! | `GetTransactionByID` | channel, tx id | `protos.ProcessedTransaction` |
//! | `GetHistoryForKey` | channel, namespace, key | JSON list of writes |
//! | `GetStateHash` | channel | JSON `{"height", "state_hash"}` (QCSS) |
//!
//! Who may query: whoever satisfies the channel's Writers policy (member
//! orgs' clients and admins, as for any proposal); `GetHistoryForKey` also
//! requires the `regulator` or `auditor` attribute, or the admin role.

use prost::Message;
use qcss_network::Role;
use qcss_network::block::block_hash;
use qcss_proto::common::{BlockchainInfo, Envelope};
use qcss_proto::protos::{ProcessedTransaction, ProposalResponse, Response, SignedProposal};

use crate::endorser::{EndorseError, UnpackedProposal};
use crate::node::Peer;

/// The chaincode name clients address.
pub const QSCC: &str = "qscc";

fn respond(status: i32, message: String, payload: Vec<u8>) -> ProposalResponse {
    ProposalResponse {
        version: 1,
        response: Some(Response {
            status,
            message,
            payload,
        }),
        ..Default::default()
    }
}

fn arg(p: &UnpackedProposal, i: usize, what: &str) -> Result<String, String> {
    let a = p
        .args
        .get(i)
        .ok_or_else(|| format!("{} needs argument {i} ({what})", p.function))?;
    String::from_utf8(a.clone()).map_err(|_| format!("argument {i} ({what}) is not UTF-8"))
}

/// Answers a `qscc` proposal. Refusals of the proposal itself (bad
/// signature, unknown creator) are errors; a query that fails (no such
/// block) is a status-404/400 response.
pub(crate) fn query(
    peer: &Peer,
    signed: &SignedProposal,
) -> Result<ProposalResponse, EndorseError> {
    let channel = peer.channel();
    let p = UnpackedProposal::unpack(signed)?;
    p.check_header(&channel)?;
    let creator = p.check_creator(signed, &channel)?;
    let ledger = &peer.ledger;
    let not_found = |what: String| Ok(respond(404, what, Vec::new()));
    let bad = |what: String| Ok(respond(400, what, Vec::new()));
    if let Ok(ch) = arg(&p, 0, "channel")
        && ch != channel.id()
    {
        return bad(format!(
            "this peer serves channel {:?}, not {ch:?}",
            channel.id()
        ));
    }
    let internal = |e: crate::ledger::LedgerError| Ok(respond(500, e.to_string(), Vec::new()));
    match p.function.as_str() {
        "GetChainInfo" => {
            let height = ledger.height();
            let hash = |n: u64| -> Vec<u8> {
                ledger
                    .block(n)
                    .ok()
                    .flatten()
                    .map(|b| block_hash(&b).to_vec())
                    .unwrap_or_default()
            };
            let info = BlockchainInfo {
                height,
                current_block_hash: if height > 0 { hash(height - 1) } else { vec![] },
                previous_block_hash: if height > 1 { hash(height - 2) } else { vec![] },
            };
            Ok(respond(200, String::new(), info.encode_to_vec()))
        }
        "GetBlockByNumber" => {
            let n = match arg(&p, 1, "block number") {
                Ok(n) => n,
                Err(e) => return bad(e),
            };
            let Ok(n) = n.parse::<u64>() else {
                return bad(format!("block number {n:?} is not a number"));
            };
            match ledger.block(n) {
                Ok(Some(b)) => Ok(respond(200, String::new(), b.encode_to_vec())),
                Ok(None) => not_found(format!("no block {n} (height {})", ledger.height())),
                Err(e) => internal(e),
            }
        }
        "GetBlockByTxID" => {
            let id = match arg(&p, 1, "tx id") {
                Ok(n) => n,
                Err(e) => return bad(e),
            };
            match ledger.block_by_tx_id(&id) {
                Ok(Some(b)) => Ok(respond(200, String::new(), b.encode_to_vec())),
                Ok(None) => not_found(format!("no transaction {id}")),
                Err(e) => internal(e),
            }
        }
        "GetTransactionByID" => {
            let id = match arg(&p, 1, "tx id") {
                Ok(n) => n,
                Err(e) => return bad(e),
            };
            match ledger.tx_envelope(&id) {
                Ok(Some((bytes, at))) => {
                    let env = Envelope::decode(bytes.as_slice()).unwrap_or_default();
                    let t = ProcessedTransaction {
                        transaction_envelope: Some(env),
                        validation_code: at.code as i32,
                    };
                    Ok(respond(200, String::new(), t.encode_to_vec()))
                }
                Ok(None) => not_found(format!("no transaction {id}")),
                Err(e) => internal(e),
            }
        }
        "GetStateHash" => match ledger.state_hash() {
            Ok(h) => {
                let json = serde_json::json!({
                    "height": ledger.height(),
                    "state_hash": hex::encode(h),
                });
                Ok(respond(200, String::new(), json.to_string().into_bytes()))
            }
            Err(e) => internal(e),
        },
        "GetHistoryForKey" => {
            let attr = |a: &str| creator.cert.attributes.get(a).is_some_and(|v| v == "true");
            if !(attr("regulator") || attr("auditor") || creator.role == Role::Admin) {
                return Ok(respond(
                    403,
                    format!(
                        "{} of {} may not read key history: it needs the regulator or auditor attribute, or the admin role",
                        creator.cert.common_name, creator.msp_id
                    ),
                    Vec::new(),
                ));
            }
            let (ns, key) = match (arg(&p, 1, "namespace"), arg(&p, 2, "key")) {
                (Ok(ns), Ok(key)) => (ns, key),
                (Err(e), _) | (_, Err(e)) => return bad(e),
            };
            match ledger.history(&ns, &key) {
                Ok(h) => {
                    let json = serde_json::to_vec(&h).unwrap_or_default();
                    Ok(respond(200, String::new(), json))
                }
                Err(e) => internal(e),
            }
        }
        other => bad(format!(
            "qscc has no function {other:?} (GetChainInfo, GetBlockByNumber, GetBlockByTxID, GetTransactionByID, GetHistoryForKey, GetStateHash)"
        )),
    }
}
