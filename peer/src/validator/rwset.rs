//! The read-write set of an endorsed transaction, decoded from Fabric's
//! `TxReadWriteSet` (`ChaincodeAction.results`) into what validation needs:
//! per namespace, the reads with their versions, the range reads, and the
//! value and metadata writes in the ledger's form.
//!
//! Refused here: bytes that do not decode, a data model other than KV,
//! empty, NUL-containing or repeated namespaces, private-data (collection)
//! sets and Merkle-summarised range reads, which QCSS does not produce
//! (`BAD_RWSET`); writes the ledger cannot store (empty key) and metadata
//! writes that are not one key-level policy in the encoding of `policy.rs`
//! (`INVALID_WRITESET`).

use std::collections::HashSet;

use prost::Message;
use qcss_proto::kvrwset::{KvMetadataWrite, KvRead, KvrwSet, range_query_info::ReadsInfo};
use qcss_proto::protos::TxValidationCode;
use qcss_proto::rwset::{TxReadWriteSet, tx_read_write_set::DataModel};

use crate::ledger::{MetadataWrite, Version, Write};
use crate::validator::Rejection;
use crate::validator::policy::{KEY_POLICY_ENTRY, decode_key_policy};

/// A transaction's reads and writes, by namespace, in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReadWriteSet {
    pub(crate) namespaces: Vec<NsReadWriteSet>,
}

/// One namespace's part of a [`ReadWriteSet`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NsReadWriteSet {
    /// The namespace (chaincode name): not empty, no NUL.
    pub(crate) ns: String,
    /// Keys read and the version seen.
    pub(crate) reads: Vec<KeyRead>,
    /// Range scans and what they returned.
    pub(crate) range_reads: Vec<RangeRead>,
    /// Value writes (`value: None` = delete), in order.
    pub(crate) writes: Vec<Write>,
    /// Key-level policy writes (`value: None` = remove), in order.
    pub(crate) metadata_writes: Vec<MetadataWrite>,
}

/// A version as recorded in a read set. Fabric's `tx_num` is a u64 where
/// the ledger's position is a u32, so it is kept wide and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadVersion {
    pub(crate) block: u64,
    pub(crate) tx: u64,
}

impl ReadVersion {
    /// Whether this is exactly the committed version `v`.
    pub(crate) fn is(self, v: Version) -> bool {
        self.block == v.block && self.tx == u64::from(v.tx)
    }
}

/// One key read: `version` `None` means the key did not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRead {
    pub(crate) key: String,
    pub(crate) version: Option<ReadVersion>,
}

/// One range scan (Fabric's `RangeQueryInfo` with raw reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeRead {
    /// First key (inclusive).
    pub(crate) start: String,
    /// End key (exclusive); empty = end of the namespace.
    pub(crate) end: String,
    /// Whether the scan ran to the end of the range; if not, only the keys
    /// up to the last one read are rechecked.
    pub(crate) itr_exhausted: bool,
    /// The rows returned.
    pub(crate) reads: Vec<KeyRead>,
}

impl NsReadWriteSet {
    /// Whether this namespace is written (values or metadata).
    pub(crate) fn writes_anything(&self) -> bool {
        !self.writes.is_empty() || !self.metadata_writes.is_empty()
    }
}

fn bad(code: TxValidationCode, reason: impl Into<String>) -> Rejection {
    Rejection::new(code, reason)
}

impl ReadWriteSet {
    /// Decodes `ChaincodeAction.results`.
    pub(crate) fn decode(results: &[u8]) -> Result<ReadWriteSet, Rejection> {
        let rwset = TxReadWriteSet::decode(results)
            .map_err(|e| bad(TxValidationCode::BadRwset, format!("TxReadWriteSet: {e}")))?;
        if rwset.data_model != DataModel::Kv as i32 {
            return Err(bad(
                TxValidationCode::BadRwset,
                format!("data model {} is not KV", rwset.data_model),
            ));
        }
        let mut seen = HashSet::new();
        let mut namespaces = Vec::with_capacity(rwset.ns_rwset.len());
        for ns in rwset.ns_rwset {
            if let Some(problem) = namespace_problem(&ns.namespace) {
                return Err(bad(
                    TxValidationCode::BadRwset,
                    format!("namespace {:?}: {problem}", ns.namespace),
                ));
            }
            if !seen.insert(ns.namespace.clone()) {
                return Err(bad(
                    TxValidationCode::BadRwset,
                    format!("namespace {:?} appears twice", ns.namespace),
                ));
            }
            if !ns.collection_hashed_rwset.is_empty() {
                return Err(bad(
                    TxValidationCode::BadRwset,
                    format!(
                        "namespace {:?}: private data collections are not supported",
                        ns.namespace
                    ),
                ));
            }
            let kv = KvrwSet::decode(ns.rwset.as_slice()).map_err(|e| {
                bad(
                    TxValidationCode::BadRwset,
                    format!("namespace {:?}: KVRWSet: {e}", ns.namespace),
                )
            })?;
            namespaces.push(NsReadWriteSet::from_kv(ns.namespace, kv)?);
        }
        Ok(ReadWriteSet { namespaces })
    }

    /// Every value write, in order.
    pub(crate) fn writes(&self) -> impl Iterator<Item = &Write> {
        self.namespaces.iter().flat_map(|n| n.writes.iter())
    }

    /// Every metadata write, in order.
    pub(crate) fn metadata_writes(&self) -> impl Iterator<Item = &MetadataWrite> {
        self.namespaces
            .iter()
            .flat_map(|n| n.metadata_writes.iter())
    }
}

/// Why the ledger could not store a namespace (the ledger's own rule:
/// state keys are `namespace ‖ 0x00 ‖ key`).
fn namespace_problem(ns: &str) -> Option<&'static str> {
    if ns.is_empty() {
        Some("empty namespace")
    } else if ns.as_bytes().contains(&0) {
        Some("namespace contains 0x00")
    } else {
        None
    }
}

fn read(r: KvRead) -> KeyRead {
    KeyRead {
        key: r.key,
        version: r.version.map(|v| ReadVersion {
            block: v.block_num,
            tx: v.tx_num,
        }),
    }
}

impl NsReadWriteSet {
    fn from_kv(ns: String, kv: KvrwSet) -> Result<NsReadWriteSet, Rejection> {
        let mut range_reads = Vec::with_capacity(kv.range_queries_info.len());
        for rq in kv.range_queries_info {
            let reads = match rq.reads_info {
                None => Vec::new(),
                Some(ReadsInfo::RawReads(r)) => r.kv_reads.into_iter().map(read).collect(),
                Some(ReadsInfo::ReadsMerkleHashes(_)) => {
                    return Err(bad(
                        TxValidationCode::BadRwset,
                        format!(
                            "namespace {ns:?}: Merkle-summarised range reads are not supported"
                        ),
                    ));
                }
            };
            range_reads.push(RangeRead {
                start: rq.start_key,
                end: rq.end_key,
                itr_exhausted: rq.itr_exhausted,
                reads,
            });
        }
        let mut writes = Vec::with_capacity(kv.writes.len());
        for w in kv.writes {
            if w.key.is_empty() {
                return Err(bad(
                    TxValidationCode::InvalidWriteset,
                    format!("namespace {ns:?}: write of an empty key"),
                ));
            }
            let value = (!w.is_delete).then_some(w.value);
            writes.push(Write {
                ns: ns.clone(),
                key: w.key,
                value,
            });
        }
        let mut metadata_writes = Vec::with_capacity(kv.metadata_writes.len());
        for m in kv.metadata_writes {
            metadata_writes.push(metadata_write(&ns, m)?);
        }
        Ok(NsReadWriteSet {
            reads: kv.reads.into_iter().map(read).collect(),
            range_reads,
            writes,
            metadata_writes,
            ns,
        })
    }
}

/// A metadata write as the ledger stores it: the key-level policy string.
fn metadata_write(ns: &str, m: KvMetadataWrite) -> Result<MetadataWrite, Rejection> {
    let invalid = |why: String| {
        bad(
            TxValidationCode::InvalidWriteset,
            format!("namespace {ns:?}, metadata of key {:?}: {why}", m.key),
        )
    };
    if m.key.is_empty() {
        return Err(invalid("empty key".into()));
    }
    let value = match m.entries.as_slice() {
        [] => None,
        [e] if e.name == KEY_POLICY_ENTRY => {
            if e.value.is_empty() {
                None
            } else if decode_key_policy(&e.value).is_none() {
                return Err(invalid(format!(
                    "{KEY_POLICY_ENTRY} is not a UTF-8 policy string"
                )));
            } else {
                Some(e.value.clone())
            }
        }
        entries => {
            return Err(invalid(format!(
                "only one entry named {KEY_POLICY_ENTRY} is supported, found {:?}",
                entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>()
            )));
        }
    };
    Ok(MetadataWrite {
        ns: ns.to_owned(),
        key: m.key,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcss_proto::kvrwset::{
        KvMetadataEntry, KvWrite, QueryReads, QueryReadsMerkleSummary, RangeQueryInfo,
    };
    use qcss_proto::rwset::{CollectionHashedReadWriteSet, NsReadWriteSet as PbNs};

    fn tx(ns: Vec<(&str, KvrwSet)>) -> Vec<u8> {
        TxReadWriteSet {
            data_model: 0,
            ns_rwset: ns
                .into_iter()
                .map(|(n, kv)| PbNs {
                    namespace: n.into(),
                    rwset: kv.encode_to_vec(),
                    collection_hashed_rwset: vec![],
                })
                .collect(),
        }
        .encode_to_vec()
    }

    fn code(bytes: &[u8]) -> Option<TxValidationCode> {
        ReadWriteSet::decode(bytes).err().map(|r| r.code)
    }

    fn md(key: &str, entries: Vec<(&str, &[u8])>) -> KvrwSet {
        KvrwSet {
            metadata_writes: vec![KvMetadataWrite {
                key: key.into(),
                entries: entries
                    .into_iter()
                    .map(|(n, v)| KvMetadataEntry {
                        name: n.into(),
                        value: v.to_vec(),
                    })
                    .collect(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn decodes_reads_ranges_and_writes() {
        let kv = KvrwSet {
            reads: vec![KvRead {
                key: "a".into(),
                version: Some(qcss_proto::kvrwset::Version {
                    block_num: 3,
                    tx_num: 1,
                }),
            }],
            range_queries_info: vec![RangeQueryInfo {
                start_key: "a".into(),
                end_key: "c".into(),
                itr_exhausted: true,
                reads_info: Some(ReadsInfo::RawReads(QueryReads {
                    kv_reads: vec![KvRead {
                        key: "b".into(),
                        version: None,
                    }],
                })),
            }],
            writes: vec![
                KvWrite {
                    key: "a".into(),
                    is_delete: false,
                    value: b"1".to_vec(),
                },
                KvWrite {
                    key: "b".into(),
                    is_delete: true,
                    value: b"ignored".to_vec(),
                },
            ],
            metadata_writes: md("a", vec![(KEY_POLICY_ENTRY, b"OR('A.peer')")]).metadata_writes,
        };
        let rw = ReadWriteSet::decode(&tx(vec![("cc", kv)])).unwrap();
        let ns = &rw.namespaces[0];
        assert_eq!(ns.ns, "cc");
        assert!(ns.reads[0].version.unwrap().is(Version { block: 3, tx: 1 }));
        assert_eq!(ns.range_reads[0].reads[0].key, "b");
        assert_eq!(
            ns.writes,
            vec![Write::put("cc", "a", b"1"), Write::delete("cc", "b")]
        );
        assert_eq!(
            ns.metadata_writes[0].value.as_deref(),
            Some(&b"OR('A.peer')"[..])
        );
        assert!(ns.writes_anything());
    }

    #[test]
    fn refusals_name_fabric_codes() {
        use TxValidationCode::{BadRwset, InvalidWriteset};
        let empty = KvrwSet::default;
        let mut not_kv = TxReadWriteSet::decode(tx(vec![("cc", empty())]).as_slice()).unwrap();
        not_kv.data_model = 1;
        let mut private = TxReadWriteSet::decode(tx(vec![("cc", empty())]).as_slice()).unwrap();
        private.ns_rwset[0]
            .collection_hashed_rwset
            .push(CollectionHashedReadWriteSet::default());
        let merkle = KvrwSet {
            range_queries_info: vec![RangeQueryInfo {
                reads_info: Some(ReadsInfo::ReadsMerkleHashes(
                    QueryReadsMerkleSummary::default(),
                )),
                ..Default::default()
            }],
            ..Default::default()
        };
        let empty_key = KvrwSet {
            writes: vec![KvWrite::default()],
            ..Default::default()
        };
        let cases: Vec<(&str, Vec<u8>, Option<TxValidationCode>)> = vec![
            ("valid, empty", tx(vec![("cc", empty())]), None),
            ("garbage", vec![0xff, 0xff, 0xff], Some(BadRwset)),
            ("data model", not_kv.encode_to_vec(), Some(BadRwset)),
            ("empty namespace", tx(vec![("", empty())]), Some(BadRwset)),
            ("NUL namespace", tx(vec![("c\0c", empty())]), Some(BadRwset)),
            (
                "repeated namespace",
                tx(vec![("cc", empty()), ("cc", empty())]),
                Some(BadRwset),
            ),
            ("private data", private.encode_to_vec(), Some(BadRwset)),
            ("merkle range", tx(vec![("cc", merkle)]), Some(BadRwset)),
            (
                "empty key",
                tx(vec![("cc", empty_key)]),
                Some(InvalidWriteset),
            ),
            ("policy removed", tx(vec![("cc", md("k", vec![]))]), None),
            (
                "policy empty",
                tx(vec![("cc", md("k", vec![(KEY_POLICY_ENTRY, b"")]))]),
                None,
            ),
            (
                "policy unparseable",
                tx(vec![("cc", md("k", vec![(KEY_POLICY_ENTRY, b"AND(")]))]),
                Some(InvalidWriteset),
            ),
            (
                "other metadata",
                tx(vec![("cc", md("k", vec![("colour", b"red")]))]),
                Some(InvalidWriteset),
            ),
            (
                "metadata of empty key",
                tx(vec![("cc", md("", vec![]))]),
                Some(InvalidWriteset),
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(code(&bytes), want, "{name}");
        }
    }
}
