//! [`Simulation`]: what one invocation produced — the response, the
//! read-write set and the event — in a deterministic shape.
//!
//! Determinism rules: `reads`, `writes` and `key_policy_writes` are sorted
//! by key with one entry per key (the first committed read; the last
//! write); `range_reads` are in the order the contract ran them. Equal
//! inputs give equal `Simulation`s, and [`Simulation::canonical_bytes`]
//! turns one into bytes without any map or float.

use serde::{Deserialize, Serialize};

/// Fabric's key version: the block number and the index of the transaction
/// in that block that last wrote the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Block number.
    pub block: u64,
    /// Transaction index within the block.
    pub tx: u64,
}

/// Everything one successful invocation produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Simulation {
    /// The contract's response (status 200).
    pub response: Response,
    /// Keys read from committed state, with the committed version seen
    /// (`None`: the key did not exist). Reads answered from this
    /// transaction's own pending writes are not recorded.
    pub reads: Vec<Read>,
    /// Range scans, in execution order.
    pub range_reads: Vec<RangeRead>,
    /// Keys written (`value: None` = delete), sorted, last write wins.
    pub writes: Vec<Write>,
    /// Key-level endorsement policy changes, sorted, last write wins.
    pub key_policy_writes: Vec<KeyPolicyWrite>,
    /// The transaction's event (Fabric allows one; the last set wins).
    pub event: Option<Event>,
    /// Fuel the invocation consumed (deterministic: same on every peer).
    pub fuel_used: u64,
}

/// The contract's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Fabric status: 200 for a successful invocation.
    pub status: i32,
    /// Empty on success.
    pub message: String,
    /// The function's result bytes.
    pub payload: Vec<u8>,
}

/// One committed key read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    /// The key.
    pub key: String,
    /// Its committed version; `None` if it did not exist.
    pub version: Option<Version>,
}

/// One range scan (Fabric's `RangeQueryInfo` with raw reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRead {
    /// First key of the range (inclusive).
    pub start: String,
    /// End of the range (exclusive); empty = unbounded.
    pub end: String,
    /// `true` if the scan reached the end of the range; `false` if it
    /// stopped at its limit (the validator then rechecks up to the last key read).
    pub itr_exhausted: bool,
    /// The rows returned, with their committed versions.
    pub reads: Vec<Read>,
}

/// One key write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// The key.
    pub key: String,
    /// The new value; `None` deletes the key.
    pub value: Option<Vec<u8>>,
}

/// One key-level endorsement policy change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicyWrite {
    /// The key.
    pub key: String,
    /// The new policy; `None` removes the key-level policy.
    pub policy: Option<Vec<u8>>,
}

/// A chaincode event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event name.
    pub name: String,
    /// Event payload.
    pub payload: Vec<u8>,
}

impl Simulation {
    /// A canonical encoding: `b"QCSS-SIM\x01"`, then every field in
    /// declaration order; integers big-endian (`status` as i32, counts and
    /// lengths as u32, block/tx/fuel as u64), strings and bytes as a u32
    /// length and the bytes, `Option` as a 0/1 byte then the value, lists as
    /// a u32 count then the items. Equal simulations ⇔ equal bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut e = Encoder(b"QCSS-SIM\x01".to_vec());
        e.bytes(&self.response.status.to_be_bytes());
        e.bytes(self.response.message.as_bytes());
        e.bytes(&self.response.payload);
        e.len(self.reads.len());
        for r in &self.reads {
            e.read(r);
        }
        e.len(self.range_reads.len());
        for rr in &self.range_reads {
            e.bytes(rr.start.as_bytes());
            e.bytes(rr.end.as_bytes());
            e.0.push(u8::from(rr.itr_exhausted));
            e.len(rr.reads.len());
            for r in &rr.reads {
                e.read(r);
            }
        }
        e.len(self.writes.len());
        for w in &self.writes {
            e.bytes(w.key.as_bytes());
            e.opt_bytes(w.value.as_deref());
        }
        e.len(self.key_policy_writes.len());
        for w in &self.key_policy_writes {
            e.bytes(w.key.as_bytes());
            e.opt_bytes(w.policy.as_deref());
        }
        match &self.event {
            None => e.0.push(0),
            Some(ev) => {
                e.0.push(1);
                e.bytes(ev.name.as_bytes());
                e.bytes(&ev.payload);
            }
        }
        e.0.extend_from_slice(&self.fuel_used.to_be_bytes());
        e.0
    }
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn len(&mut self, n: usize) {
        // Every length here is bounded by Limits (far below 4 GiB).
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&n.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.0.push(0),
            Some(b) => {
                self.0.push(1);
                self.bytes(b);
            }
        }
    }

    fn read(&mut self, r: &Read) {
        self.bytes(r.key.as_bytes());
        match r.version {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.0.extend_from_slice(&v.block.to_be_bytes());
                self.0.extend_from_slice(&v.tx.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Simulation {
        Simulation {
            response: Response {
                status: 200,
                message: String::new(),
                payload: b"ok".to_vec(),
            },
            reads: vec![Read {
                key: "a".into(),
                version: Some(Version { block: 1, tx: 2 }),
            }],
            range_reads: vec![RangeRead {
                start: "a".into(),
                end: String::new(),
                itr_exhausted: true,
                reads: vec![Read {
                    key: "b".into(),
                    version: None,
                }],
            }],
            writes: vec![Write {
                key: "c".into(),
                value: None,
            }],
            key_policy_writes: vec![],
            event: Some(Event {
                name: "e".into(),
                payload: vec![],
            }),
            fuel_used: 7,
        }
    }

    #[test]
    fn canonical_bytes_distinguish_every_field() {
        let base = sample();
        let bytes = base.canonical_bytes();
        assert_eq!(bytes, sample().canonical_bytes());
        let mut changed = Vec::new();
        let mut s = sample();
        s.fuel_used = 8;
        changed.push(s);
        let mut s = sample();
        s.writes[0].value = Some(vec![]);
        changed.push(s);
        let mut s = sample();
        s.range_reads[0].itr_exhausted = false;
        changed.push(s);
        let mut s = sample();
        s.reads[0].version = Some(Version { block: 1, tx: 3 });
        changed.push(s);
        let mut s = sample();
        s.event = None;
        changed.push(s);
        for s in changed {
            assert_ne!(s.canonical_bytes(), bytes, "{s:?}");
        }
    }
}
