//! A [`Simulation`] as Fabric's read-write set: `TxReadWriteSet{KV,
//! [NsReadWriteSet{namespace, KVRWSet}]}`, built as Fabric's
//! `RWSetBuilder` does.
//!
//! - reads sorted by key, one per key, `version` absent if the key did not
//!   exist; range reads in execution order with their raw reads;
//! - writes sorted by key, `is_delete` when the value is absent or empty
//!   (Fabric's `newKVWrite`: an empty value is a delete);
//! - key-level policy changes as `KVMetadataWrite{key, [KVMetadataEntry{
//!   "VALIDATION_PARAMETER", policy}]}` (state-based endorsement; the value
//!   is the policy string, see `validator/policy.rs`); removing a policy
//!   writes the entry with an empty value, as Fabric's
//!   `SetStateValidationParameter(key, nil)` does;
//! - a namespace appears only if the simulation read or wrote something in
//!   it (Fabric's builder creates it on first use), so a function that
//!   touches no state has an empty `ns_rwset`.
//!
//! Private data (collections) does not exist in QCSS: no hashed sets.

use prost::Message;
use qcss_chaincode::{Read, Simulation};
use qcss_proto::kvrwset::{
    KvMetadataEntry, KvMetadataWrite, KvRead, KvWrite, KvrwSet, QueryReads, RangeQueryInfo,
    Version, range_query_info::ReadsInfo,
};
use qcss_proto::rwset::{NsReadWriteSet, TxReadWriteSet, tx_read_write_set::DataModel};

/// Name of the metadata entry that carries a key-level endorsement policy:
/// the validator's, so what the endorser writes is what the validator reads.
pub use crate::validator::KEY_POLICY_ENTRY;

/// The `TxReadWriteSet` of `sim`, a simulation of chaincode `namespace`.
pub fn tx_rwset(namespace: &str, sim: &Simulation) -> TxReadWriteSet {
    let kv = kv_rwset(sim);
    let touched = !(kv.reads.is_empty()
        && kv.range_queries_info.is_empty()
        && kv.writes.is_empty()
        && kv.metadata_writes.is_empty());
    let ns_rwset = if touched {
        vec![NsReadWriteSet {
            namespace: namespace.to_owned(),
            rwset: kv.encode_to_vec(),
            collection_hashed_rwset: Vec::new(),
        }]
    } else {
        Vec::new()
    };
    TxReadWriteSet {
        data_model: DataModel::Kv as i32,
        ns_rwset,
    }
}

/// The `KVRWSet` of `sim`.
pub fn kv_rwset(sim: &Simulation) -> KvrwSet {
    KvrwSet {
        reads: sim.reads.iter().map(kv_read).collect(),
        range_queries_info: sim
            .range_reads
            .iter()
            .map(|rr| RangeQueryInfo {
                start_key: rr.start.clone(),
                end_key: rr.end.clone(),
                itr_exhausted: rr.itr_exhausted,
                reads_info: Some(ReadsInfo::RawReads(QueryReads {
                    kv_reads: rr.reads.iter().map(kv_read).collect(),
                })),
            })
            .collect(),
        writes: sim
            .writes
            .iter()
            .map(|w| {
                let value = w.value.clone().unwrap_or_default();
                KvWrite {
                    key: w.key.clone(),
                    is_delete: value.is_empty(),
                    value,
                }
            })
            .collect(),
        metadata_writes: sim
            .key_policy_writes
            .iter()
            .map(|w| KvMetadataWrite {
                key: w.key.clone(),
                entries: vec![KvMetadataEntry {
                    name: KEY_POLICY_ENTRY.to_owned(),
                    value: w.policy.clone().unwrap_or_default(),
                }],
            })
            .collect(),
    }
}

fn kv_read(r: &Read) -> KvRead {
    KvRead {
        key: r.key.clone(),
        version: r.version.map(|v| Version {
            block_num: v.block,
            tx_num: v.tx,
        }),
    }
}

#[cfg(test)]
mod tests {
    use qcss_chaincode::{
        Event, KeyPolicyWrite, RangeRead, Response, Version as SimVersion, Write,
    };

    use super::*;

    fn sim() -> Simulation {
        Simulation {
            response: Response {
                status: 200,
                message: String::new(),
                payload: vec![],
            },
            reads: vec![],
            range_reads: vec![],
            writes: vec![],
            key_policy_writes: vec![],
            event: None,
            fuel_used: 1,
        }
    }

    #[test]
    fn the_policy_entry_is_fabrics_name() {
        use qcss_proto::protos::MetaDataKeys;
        assert_eq!(
            KEY_POLICY_ENTRY,
            MetaDataKeys::ValidationParameter.as_str_name()
        );
    }

    #[test]
    fn untouched_namespace_is_left_out() {
        let mut s = sim();
        s.event = Some(Event {
            name: "e".into(),
            payload: vec![],
        });
        let rw = tx_rwset("cc", &s);
        assert_eq!(rw.data_model, DataModel::Kv as i32);
        assert!(rw.ns_rwset.is_empty());
    }

    #[test]
    fn every_part_maps_to_fabric_fields() {
        let v = |block, tx| Some(SimVersion { block, tx });
        let mut s = sim();
        s.reads = vec![
            Read {
                key: "a".into(),
                version: v(1, 2),
            },
            Read {
                key: "z".into(),
                version: None,
            },
        ];
        s.range_reads = vec![RangeRead {
            start: "b".into(),
            end: "".into(),
            itr_exhausted: false,
            reads: vec![Read {
                key: "b".into(),
                version: v(3, 0),
            }],
        }];
        s.writes = vec![
            Write {
                key: "d".into(),
                value: None,
            },
            Write {
                key: "e".into(),
                value: Some(vec![]),
            },
            Write {
                key: "f".into(),
                value: Some(b"x".to_vec()),
            },
        ];
        s.key_policy_writes = vec![
            KeyPolicyWrite {
                key: "f".into(),
                policy: Some(b"OR('Org1MSP.peer')".to_vec()),
            },
            KeyPolicyWrite {
                key: "g".into(),
                policy: None,
            },
        ];
        let rw = tx_rwset("cc", &s);
        assert_eq!(rw.ns_rwset.len(), 1);
        assert_eq!(rw.ns_rwset[0].namespace, "cc");
        let kv = KvrwSet::decode(rw.ns_rwset[0].rwset.as_slice()).unwrap();
        let ver = |block_num, tx_num| Some(Version { block_num, tx_num });
        assert_eq!(
            kv,
            KvrwSet {
                reads: vec![
                    KvRead {
                        key: "a".into(),
                        version: ver(1, 2)
                    },
                    KvRead {
                        key: "z".into(),
                        version: None
                    },
                ],
                range_queries_info: vec![RangeQueryInfo {
                    start_key: "b".into(),
                    end_key: "".into(),
                    itr_exhausted: false,
                    reads_info: Some(ReadsInfo::RawReads(QueryReads {
                        kv_reads: vec![KvRead {
                            key: "b".into(),
                            version: ver(3, 0)
                        }]
                    })),
                }],
                writes: vec![
                    KvWrite {
                        key: "d".into(),
                        is_delete: true,
                        value: vec![]
                    },
                    KvWrite {
                        key: "e".into(),
                        is_delete: true,
                        value: vec![]
                    },
                    KvWrite {
                        key: "f".into(),
                        is_delete: false,
                        value: b"x".to_vec()
                    },
                ],
                metadata_writes: vec![
                    KvMetadataWrite {
                        key: "f".into(),
                        entries: vec![KvMetadataEntry {
                            name: "VALIDATION_PARAMETER".into(),
                            value: b"OR('Org1MSP.peer')".to_vec()
                        }]
                    },
                    KvMetadataWrite {
                        key: "g".into(),
                        entries: vec![KvMetadataEntry {
                            name: "VALIDATION_PARAMETER".into(),
                            value: vec![]
                        }]
                    },
                ],
            }
        );
    }
}
