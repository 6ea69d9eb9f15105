//! What event listeners need from a committed block: each transaction's id,
//! type, validation code and chaincode event. Undecodable envelopes (which
//! the validator marked invalid) are reported with what could be read.

use prost::Message;
use qcss_proto::common::{Block, ChannelHeader, Envelope, Payload};
use qcss_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEvent, FilteredBlock,
    FilteredChaincodeAction, FilteredTransaction, FilteredTransactionActions,
    ProposalResponsePayload, Transaction, TxValidationCode, filtered_transaction,
};

/// One transaction of a committed block, as listeners see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TxInfo {
    pub(crate) tx_id: String,
    pub(crate) header_type: i32,
    pub(crate) code: TxValidationCode,
    pub(crate) event: Option<ChaincodeEvent>,
}

fn event_of(payload: &Payload) -> Option<ChaincodeEvent> {
    let tx = Transaction::decode(payload.data.as_slice()).ok()?;
    let action = tx.actions.first()?;
    let cap = ChaincodeActionPayload::decode(action.payload.as_slice()).ok()?;
    let prp =
        ProposalResponsePayload::decode(cap.action?.proposal_response_payload.as_slice()).ok()?;
    let ca = ChaincodeAction::decode(prp.extension.as_slice()).ok()?;
    if ca.events.is_empty() {
        return None;
    }
    let ev = ChaincodeEvent::decode(ca.events.as_slice()).ok()?;
    (!ev.event_name.is_empty()).then_some(ev)
}

/// Every transaction of `block`, in order.
pub(crate) fn transactions(block: &Block) -> Vec<TxInfo> {
    let codes = crate::ledger::filter_of(block);
    let Some(data) = block.data.as_ref() else {
        return Vec::new();
    };
    data.data
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let code = codes
                .get(i)
                .and_then(|c| TxValidationCode::try_from(i32::from(*c)).ok())
                .unwrap_or(TxValidationCode::InvalidOtherReason);
            let payload = Envelope::decode(bytes.as_slice())
                .ok()
                .and_then(|e| Payload::decode(e.payload.as_slice()).ok());
            let header = payload
                .as_ref()
                .and_then(|p| p.header.as_ref())
                .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
                .unwrap_or_default();
            TxInfo {
                tx_id: header.tx_id,
                header_type: header.r#type,
                code,
                event: payload.as_ref().and_then(event_of),
            }
        })
        .collect()
}

/// Fabric's `FilteredBlock` of `block`: tx ids, types, codes and chaincode
/// events without their payloads.
pub fn filtered_block(block: &Block, channel_id: &str) -> FilteredBlock {
    FilteredBlock {
        channel_id: channel_id.to_owned(),
        number: block.header.as_ref().map_or(0, |h| h.number),
        filtered_transactions: transactions(block)
            .into_iter()
            .map(|t| FilteredTransaction {
                txid: t.tx_id,
                r#type: t.header_type,
                tx_validation_code: t.code as i32,
                data: t.event.map(|mut e| {
                    e.payload.clear();
                    filtered_transaction::Data::TransactionActions(FilteredTransactionActions {
                        chaincode_actions: vec![FilteredChaincodeAction {
                            chaincode_event: Some(e),
                        }],
                    })
                }),
            })
            .collect(),
    }
}

/// The events of `chaincode` in `block`'s VALID transactions, in order,
/// skipping transactions up to and including `after_tx_id` when given
/// (how a listener resumes inside a block).
pub fn chaincode_events(
    block: &Block,
    chaincode: &str,
    after_tx_id: Option<&str>,
) -> Vec<ChaincodeEvent> {
    let txs = transactions(block);
    let start = after_tx_id
        .and_then(|id| txs.iter().position(|t| t.tx_id == id))
        .map_or(0, |i| i + 1);
    txs.into_iter()
        .skip(start)
        .filter(|t| t.code == TxValidationCode::Valid)
        .filter_map(|t| t.event)
        .filter(|e| e.chaincode_id == chaincode)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcss_proto::common::{BlockData, BlockHeader, BlockMetadata, BlockMetadataIndex, Header};

    fn tx(tx_id: &str, chaincode: &str, event: &str) -> Vec<u8> {
        let ev = ChaincodeEvent {
            chaincode_id: chaincode.into(),
            tx_id: tx_id.into(),
            event_name: event.into(),
            payload: b"data".to_vec(),
        };
        let ca = ChaincodeAction {
            events: ev.encode_to_vec(),
            ..Default::default()
        };
        let prp = ProposalResponsePayload {
            proposal_hash: vec![1],
            extension: ca.encode_to_vec(),
        };
        let cap = ChaincodeActionPayload {
            chaincode_proposal_payload: vec![],
            action: Some(qcss_proto::protos::ChaincodeEndorsedAction {
                proposal_response_payload: prp.encode_to_vec(),
                endorsements: vec![],
            }),
        };
        let t = Transaction {
            actions: vec![qcss_proto::protos::TransactionAction {
                header: vec![],
                payload: cap.encode_to_vec(),
            }],
        };
        let ch = ChannelHeader {
            r#type: 3,
            tx_id: tx_id.into(),
            ..Default::default()
        };
        let p = Payload {
            header: Some(Header {
                channel_header: ch.encode_to_vec(),
                signature_header: vec![],
            }),
            data: t.encode_to_vec(),
        };
        Envelope {
            payload: p.encode_to_vec(),
            signature: vec![],
        }
        .encode_to_vec()
    }

    fn block(txs: Vec<Vec<u8>>, codes: Vec<u8>) -> Block {
        let mut metadata = vec![vec![]; 5];
        metadata[BlockMetadataIndex::TransactionsFilter as usize] = codes;
        Block {
            header: Some(BlockHeader {
                number: 7,
                ..Default::default()
            }),
            data: Some(BlockData { data: txs }),
            metadata: Some(BlockMetadata { metadata }),
        }
    }

    #[test]
    fn events_of_valid_transactions_of_the_chaincode_only_and_resumable() {
        let b = block(
            vec![
                tx("a", "cc", "one"),
                tx("b", "cc", "two"),
                tx("c", "other", "three"),
                tx("d", "cc", "four"),
            ],
            vec![0, 11, 0, 0], // b is MVCC_READ_CONFLICT
        );
        let names =
            |evs: Vec<ChaincodeEvent>| evs.into_iter().map(|e| e.event_name).collect::<Vec<_>>();
        assert_eq!(names(chaincode_events(&b, "cc", None)), ["one", "four"]);
        assert_eq!(names(chaincode_events(&b, "cc", Some("a"))), ["four"]);
        assert_eq!(
            names(chaincode_events(&b, "cc", Some("d"))),
            Vec::<String>::new()
        );
        let f = filtered_block(&b, "ch");
        assert_eq!(f.number, 7);
        assert_eq!(f.filtered_transactions.len(), 4);
        assert_eq!(f.filtered_transactions[1].tx_validation_code, 11);
        match &f.filtered_transactions[0].data {
            Some(filtered_transaction::Data::TransactionActions(a)) => {
                let e = a.chaincode_actions[0].chaincode_event.as_ref().unwrap();
                assert_eq!(e.event_name, "one");
                assert!(e.payload.is_empty(), "filtered events carry no payload");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_envelopes_are_reported_not_fatal() {
        let b = block(vec![b"garbage".to_vec()], vec![]);
        let t = transactions(&b);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].code, TxValidationCode::InvalidOtherReason);
        assert!(t[0].event.is_none());
    }
}
