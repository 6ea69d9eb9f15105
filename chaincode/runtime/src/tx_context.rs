//! [`TxContext`]: the host state of one invocation (STYLE.md §5: one fresh
//! `Store<TxContext>` per call). It builds the read-write set, enforces the
//! size limits and meters host work in fuel. It knows nothing about wasm
//! memory: `host.rs` decodes pointers and calls in here.

use std::{collections::BTreeMap, fmt};

use wasmi::Memory;
use wasmi_core::{LimiterError, ResourceLimiter};

use crate::{
    Invocation, InvokeError, Limit, Limits, StateError, StateView,
    simulation::{Event, KeyPolicyWrite, RangeRead, Read, Response, Simulation, Version, Write},
};

/// Fuel charged for every host call, on top of wasm execution.
pub(crate) const HOST_CALL_FUEL: u64 = 100;
/// Fuel charged for every row a range scan visits.
pub(crate) const RANGE_ROW_FUEL: u64 = 50;
/// Bytes moved across the boundary per unit of fuel charged.
pub(crate) const BYTES_PER_FUEL: u64 = 16;
/// Longest panic message kept, bytes.
const MAX_PANIC_MESSAGE: usize = 4096;
/// Table elements a contract may grow its tables to.
const MAX_TABLE_ELEMENTS: usize = 10_000;

/// Something a host call refused; becomes an [`InvokeError`] once the
/// runtime knows the function name.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    BadPointer { ptr: u32, len: u32, memory_len: u64 },
    Misuse(String),
    Limit { limit: Limit, max: u64, actual: u64 },
    OutOfFuel,
    State(StateError),
    Panic(String),
}

/// A [`Fault`] tagged with the host function that raised it; travels
/// through wasmi as a host error.
#[derive(Debug, Clone)]
pub(crate) struct HostFault {
    pub import: &'static str,
    pub fault: Fault,
}

impl fmt::Display for HostFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "qcss.{}: {:?}", self.import, self.fault)
    }
}

impl wasmi::errors::HostError for HostFault {}

impl HostFault {
    pub(crate) fn into_invoke_error(self, function: &str, limits: &Limits) -> InvokeError {
        let function = function.to_owned();
        match self.fault {
            Fault::BadPointer {
                ptr,
                len,
                memory_len,
            } => InvokeError::BadPointer {
                function,
                import: self.import,
                ptr,
                len,
                memory_len,
            },
            Fault::Misuse(reason) => InvokeError::HostCall {
                function,
                import: self.import,
                reason,
            },
            Fault::Limit { limit, max, actual } => InvokeError::LimitExceeded {
                function,
                limit,
                max,
                actual,
            },
            Fault::OutOfFuel => InvokeError::OutOfFuel {
                function,
                budget: limits.fuel,
            },
            Fault::State(source) => InvokeError::State { function, source },
            Fault::Panic(message) => InvokeError::Panic { function, message },
        }
    }
}

/// Fuel left for the current host call; charged as work is done.
pub(crate) struct Meter {
    pub remaining: u64,
}

impl Meter {
    pub(crate) fn charge(&mut self, fuel: u64) -> Result<(), Fault> {
        match self.remaining.checked_sub(fuel) {
            Some(left) => {
                self.remaining = left;
                Ok(())
            }
            None => {
                self.remaining = 0;
                Err(Fault::OutOfFuel)
            }
        }
    }

    pub(crate) fn charge_bytes(&mut self, len: usize) -> Result<(), Fault> {
        self.charge(len as u64 / BYTES_PER_FUEL)
    }
}

/// Caps linear memory at [`Limits::memory_bytes`] and remembers refusing,
/// so that the trap that follows is reported as the memory cap.
pub(crate) struct MemoryLimiter {
    max: usize,
    pub denied: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if desired > self.max {
            self.denied = true;
            return Ok(false);
        }
        Ok(maximum.is_none_or(|m| desired <= m))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|m| desired <= m))
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// The rows of one range scan and whether more exist past its limit.
pub(crate) struct Scan {
    pub rows: Vec<(String, Vec<u8>)>,
    pub more: bool,
}

/// The host state of one invocation.
pub(crate) struct TxContext<'a> {
    state: &'a dyn StateView,
    pub inv: &'a Invocation,
    pub limits: &'a Limits,
    /// The instance's exported memory, set right after instantiation.
    pub memory: Option<Memory>,
    pub limiter: MemoryLimiter,
    /// The result of the last data-returning host call, until `result_read`.
    staged: Option<Vec<u8>>,
    reads: BTreeMap<String, Option<Version>>,
    range_reads: Vec<RangeRead>,
    writes: BTreeMap<String, Option<Vec<u8>>>,
    policy_writes: BTreeMap<String, Option<Vec<u8>>>,
    event: Option<Event>,
    pub output: Vec<u8>,
    log_bytes: u64,
}

impl<'a> TxContext<'a> {
    pub(crate) fn new(state: &'a dyn StateView, inv: &'a Invocation, limits: &'a Limits) -> Self {
        Self {
            state,
            inv,
            limits,
            memory: None,
            limiter: MemoryLimiter {
                max: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                denied: false,
            },
            staged: None,
            reads: BTreeMap::new(),
            range_reads: Vec::new(),
            writes: BTreeMap::new(),
            policy_writes: BTreeMap::new(),
            event: None,
            output: Vec::new(),
            log_bytes: 0,
        }
    }

    /// Stages `data` for `result_read` and returns its length.
    pub(crate) fn stage(&mut self, data: Vec<u8>) -> i64 {
        let len = data.len() as i64;
        self.staged = Some(data);
        len
    }

    /// Takes the staged result if it is exactly `len` bytes long.
    pub(crate) fn take_staged(&mut self, len: u32) -> Result<Vec<u8>, Fault> {
        match self.staged.take() {
            Some(data) if data.len() as u64 == u64::from(len) => Ok(data),
            Some(data) => {
                let reason = format!("asked for {len} bytes but {} are staged", data.len());
                self.staged = Some(data);
                Err(Fault::Misuse(reason))
            }
            None => Err(Fault::Misuse("no result is staged".into())),
        }
    }

    /// Checks a key: UTF-8, not empty, at most `key_bytes`.
    pub(crate) fn key(&self, bytes: &[u8]) -> Result<String, Fault> {
        check_len(Limit::KeyBytes, self.limits, bytes.len())?;
        if bytes.is_empty() {
            return Err(Fault::Misuse("empty key".into()));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| Fault::Misuse("key is not UTF-8".into()))
    }

    /// Reads a key: the pending write if this transaction wrote it (not
    /// recorded), else committed state (recorded with its version).
    pub(crate) fn get_state(
        &mut self,
        key: String,
        meter: &mut Meter,
    ) -> Result<Option<Vec<u8>>, Fault> {
        if let Some(pending) = self.writes.get(&key) {
            return Ok(pending.clone());
        }
        let found = self.state.get(&key).map_err(Fault::State)?;
        let version = found.as_ref().map(|v| v.version);
        self.reads.entry(key).or_insert(version);
        let value = found.map(|v| v.value);
        meter.charge_bytes(value.as_ref().map_or(0, Vec::len))?;
        Ok(value)
    }

    /// Records a put (`Some`) or delete (`None`).
    pub(crate) fn write(&mut self, key: String, value: Option<Vec<u8>>) -> Result<(), Fault> {
        if let Some(v) = &value {
            check_len(Limit::ValueBytes, self.limits, v.len())?;
        }
        if !self.writes.contains_key(&key) {
            self.check_write_count()?;
        }
        self.writes.insert(key, value);
        Ok(())
    }

    /// Scans committed state in `[start, end)`: at most `limit` rows (0 =
    /// the `range_rows` limit). Returns the rows and whether more exist.
    pub(crate) fn range(
        &mut self,
        start: String,
        end: String,
        limit: u32,
        meter: &mut Meter,
    ) -> Result<Scan, Fault> {
        let max = self.limits.range_rows;
        let limit = match u64::from(limit) {
            0 => max,
            n if n > max => {
                return Err(Fault::Limit {
                    limit: Limit::RangeRows,
                    max,
                    actual: n,
                });
            }
            n => n,
        };
        let mut rows = Vec::new();
        let mut reads = Vec::new();
        let mut more = false;
        let mut fault = None;
        let visited = self.state.range(&start, &end, &mut |key, vv| {
            if rows.len() as u64 == limit {
                more = true;
                return false;
            }
            let cost = RANGE_ROW_FUEL + (key.len() + vv.value.len()) as u64 / BYTES_PER_FUEL;
            if let Err(f) = meter.charge(cost) {
                fault = Some(f);
                return false;
            }
            reads.push(Read {
                key: key.clone(),
                version: Some(vv.version),
            });
            rows.push((key, vv.value));
            true
        });
        visited.map_err(Fault::State)?;
        if let Some(f) = fault {
            return Err(f);
        }
        self.range_reads.push(RangeRead {
            start,
            end,
            itr_exhausted: !more,
            reads,
        });
        Ok(Scan { rows, more })
    }

    /// A key's endorsement policy: the pending one if this transaction set
    /// it, else the committed one (recording a read of the key's version,
    /// as Fabric does for metadata reads).
    pub(crate) fn get_key_policy(&mut self, key: String) -> Result<Option<Vec<u8>>, Fault> {
        if let Some(pending) = self.policy_writes.get(&key) {
            return Ok(pending.clone());
        }
        if !self.reads.contains_key(&key) {
            let version = self
                .state
                .get(&key)
                .map_err(Fault::State)?
                .map(|v| v.version);
            self.reads.insert(key.clone(), version);
        }
        self.state.key_policy(&key).map_err(Fault::State)
    }

    /// Records a key-level policy change (`None` removes the policy).
    pub(crate) fn set_key_policy(
        &mut self,
        key: String,
        policy: Option<Vec<u8>>,
    ) -> Result<(), Fault> {
        if let Some(p) = &policy {
            check_len(Limit::PolicyBytes, self.limits, p.len())?;
        }
        if !self.policy_writes.contains_key(&key) {
            self.check_write_count()?;
        }
        self.policy_writes.insert(key, policy);
        Ok(())
    }

    /// Sets the transaction's event (replacing an earlier one).
    pub(crate) fn set_event(&mut self, name: &[u8], payload: &[u8]) -> Result<(), Fault> {
        check_len(Limit::EventBytes, self.limits, name.len() + payload.len())?;
        let name = std::str::from_utf8(name)
            .map_err(|_| Fault::Misuse("event name is not UTF-8".into()))?;
        if name.is_empty() {
            return Err(Fault::Misuse("empty event name".into()));
        }
        self.event = Some(Event {
            name: name.to_owned(),
            payload: payload.to_vec(),
        });
        Ok(())
    }

    /// Sets the response payload (or, for status 1, the error message).
    pub(crate) fn set_output(&mut self, data: &[u8]) -> Result<(), Fault> {
        check_len(Limit::PayloadBytes, self.limits, data.len())?;
        self.output = data.to_vec();
        Ok(())
    }

    /// Sends a contract log line to tracing (debug), until `log_bytes` is used up.
    pub(crate) fn log(&mut self, level: u32, message: &[u8]) {
        let max = self.limits.log_bytes;
        if self.log_bytes >= max {
            return;
        }
        let room = usize::try_from(max - self.log_bytes).unwrap_or(usize::MAX);
        let kept = &message[..message.len().min(room)];
        self.log_bytes += kept.len() as u64;
        let level = match level {
            0 => "error",
            1 => "warn",
            2 => "info",
            _ => "debug",
        };
        let text = String::from_utf8_lossy(kept);
        tracing::debug!(
            target: "qcss_chaincode::contract",
            namespace = %self.inv.namespace,
            function = %self.inv.function,
            tx_id = %self.inv.tx_id,
            level,
            truncated = kept.len() < message.len(),
            "{text}"
        );
    }

    /// The caller's identity as the ABI's JSON object.
    pub(crate) fn caller_json(&self) -> Vec<u8> {
        // Serializing strings and a string map cannot fail.
        serde_json::to_vec(&self.inv.caller).unwrap_or_default()
    }

    /// Turns the recorded effects into the invocation's result.
    pub(crate) fn finish(self, fuel_used: u64) -> Simulation {
        Simulation {
            response: Response {
                status: 200,
                message: String::new(),
                payload: self.output,
            },
            reads: self
                .reads
                .into_iter()
                .map(|(key, version)| Read { key, version })
                .collect(),
            range_reads: self.range_reads,
            writes: self
                .writes
                .into_iter()
                .map(|(key, value)| Write { key, value })
                .collect(),
            key_policy_writes: self
                .policy_writes
                .into_iter()
                .map(|(key, policy)| KeyPolicyWrite { key, policy })
                .collect(),
            event: self.event,
            fuel_used,
        }
    }

    fn check_write_count(&self) -> Result<(), Fault> {
        let count = (self.writes.len() + self.policy_writes.len()) as u64;
        let max = self.limits.writes;
        if count >= max {
            return Err(Fault::Limit {
                limit: Limit::Writes,
                max,
                actual: count + 1,
            });
        }
        Ok(())
    }
}

/// Keeps at most [`MAX_PANIC_MESSAGE`] bytes of a panic message.
pub(crate) fn panic_message(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.len() > MAX_PANIC_MESSAGE {
        let mut cut = MAX_PANIC_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn check_len(limit: Limit, limits: &Limits, len: usize) -> Result<(), Fault> {
    let max = limit.value(limits);
    if len as u64 > max {
        return Err(Fault::Limit {
            limit,
            max,
            actual: len as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Caller, MemoryState, Timestamp};

    fn inv() -> Invocation {
        Invocation {
            namespace: "kv".into(),
            function: "f".into(),
            args: vec![],
            tx_id: "tx".into(),
            channel: "qcss".into(),
            channel_orgs: Vec::new(),
            timestamp: Timestamp::default(),
            caller: Caller::default(),
        }
    }

    fn v(block: u64, tx: u64) -> Version {
        Version { block, tx }
    }

    fn meter() -> Meter {
        Meter {
            remaining: u64::MAX,
        }
    }

    #[test]
    fn reads_record_committed_versions_and_own_writes_are_not_reads() {
        let mut state = MemoryState::new();
        state.insert("a", "1", v(3, 1));
        let (inv, limits) = (inv(), Limits::default());
        let mut cx = TxContext::new(&state, &inv, &limits);
        let m = &mut meter();
        assert_eq!(cx.get_state("a".into(), m).unwrap(), Some(b"1".to_vec()));
        assert_eq!(cx.get_state("missing".into(), m).unwrap(), None);
        cx.write("a".into(), Some(b"2".to_vec())).unwrap();
        assert_eq!(cx.get_state("a".into(), m).unwrap(), Some(b"2".to_vec()));
        cx.write("b".into(), Some(b"x".to_vec())).unwrap();
        assert_eq!(cx.get_state("b".into(), m).unwrap(), Some(b"x".to_vec()));
        cx.write("b".into(), None).unwrap();
        assert_eq!(cx.get_state("b".into(), m).unwrap(), None);
        let sim = cx.finish(0);
        assert_eq!(
            sim.reads,
            [
                Read {
                    key: "a".into(),
                    version: Some(v(3, 1))
                },
                Read {
                    key: "missing".into(),
                    version: None
                }
            ]
        );
        assert_eq!(
            sim.writes,
            [
                Write {
                    key: "a".into(),
                    value: Some(b"2".to_vec())
                },
                Write {
                    key: "b".into(),
                    value: None
                }
            ]
        );
    }

    #[test]
    fn range_respects_limit_and_records_exhaustion() {
        let mut state = MemoryState::new();
        for (i, k) in ["k1", "k2", "k3"].iter().enumerate() {
            state.insert(*k, *k, v(1, i as u64));
        }
        let (inv, limits) = (
            inv(),
            Limits {
                range_rows: 5,
                ..Limits::default()
            },
        );
        let mut cx = TxContext::new(&state, &inv, &limits);
        let scan = cx.range("k1".into(), "".into(), 2, &mut meter()).unwrap();
        assert_eq!(scan.rows.len(), 2);
        assert!(scan.more);
        let scan = cx.range("k1".into(), "k9".into(), 0, &mut meter()).unwrap();
        assert_eq!(scan.rows.len(), 3);
        assert!(!scan.more);
        assert!(matches!(
            cx.range("a".into(), "".into(), 6, &mut meter()),
            Err(Fault::Limit {
                limit: Limit::RangeRows,
                max: 5,
                actual: 6
            })
        ));
        let sim = cx.finish(0);
        assert_eq!(sim.range_reads.len(), 2);
        assert!(!sim.range_reads[0].itr_exhausted);
        assert_eq!(sim.range_reads[0].reads.len(), 2);
        assert!(sim.range_reads[1].itr_exhausted);
        assert_eq!(
            sim.range_reads[1].reads[2],
            Read {
                key: "k3".into(),
                version: Some(v(1, 2))
            }
        );
    }

    #[test]
    fn range_stops_when_fuel_runs_out() {
        let mut state = MemoryState::new();
        for i in 0..100 {
            state.insert(format!("k{i:03}"), "v", v(1, i));
        }
        let (inv, limits) = (inv(), Limits::default());
        let mut cx = TxContext::new(&state, &inv, &limits);
        let mut m = Meter {
            remaining: RANGE_ROW_FUEL * 10,
        };
        assert!(matches!(
            cx.range("".into(), "".into(), 0, &mut m),
            Err(Fault::OutOfFuel)
        ));
        assert_eq!(m.remaining, 0);
    }

    #[test]
    fn size_and_count_limits() {
        let state = MemoryState::new();
        let inv = inv();
        let limits = Limits {
            key_bytes: 4,
            value_bytes: 3,
            writes: 2,
            event_bytes: 5,
            ..Limits::default()
        };
        let mut cx = TxContext::new(&state, &inv, &limits);
        assert!(matches!(
            cx.key(b"12345"),
            Err(Fault::Limit {
                limit: Limit::KeyBytes,
                max: 4,
                actual: 5
            })
        ));
        assert!(matches!(cx.key(b""), Err(Fault::Misuse(_))));
        assert!(matches!(cx.key(b"\xff"), Err(Fault::Misuse(_))));
        assert!(matches!(
            cx.write("a".into(), Some(vec![0; 4])),
            Err(Fault::Limit {
                limit: Limit::ValueBytes,
                ..
            })
        ));
        cx.write("a".into(), Some(vec![0; 3])).unwrap();
        cx.write("a".into(), None).unwrap();
        cx.set_key_policy("b".into(), Some(vec![1])).unwrap();
        assert!(matches!(
            cx.write("c".into(), None),
            Err(Fault::Limit {
                limit: Limit::Writes,
                max: 2,
                actual: 3
            })
        ));
        assert!(matches!(
            cx.set_event(b"abc", b"def"),
            Err(Fault::Limit {
                limit: Limit::EventBytes,
                ..
            })
        ));
        assert!(matches!(cx.set_event(b"", b""), Err(Fault::Misuse(_))));
    }

    #[test]
    fn key_policy_reads_record_the_key_version() {
        let mut state = MemoryState::new();
        state.insert("a", "1", v(2, 0));
        state.set_key_policy("a", Some(b"OR('Org1MSP.member')".to_vec()));
        let (inv, limits) = (inv(), Limits::default());
        let mut cx = TxContext::new(&state, &inv, &limits);
        assert_eq!(
            cx.get_key_policy("a".into()).unwrap(),
            Some(b"OR('Org1MSP.member')".to_vec())
        );
        cx.set_key_policy("a".into(), None).unwrap();
        assert_eq!(cx.get_key_policy("a".into()).unwrap(), None);
        let sim = cx.finish(0);
        assert_eq!(
            sim.reads,
            [Read {
                key: "a".into(),
                version: Some(v(2, 0))
            }]
        );
        assert_eq!(
            sim.key_policy_writes,
            [KeyPolicyWrite {
                key: "a".into(),
                policy: None
            }]
        );
    }

    #[test]
    fn staged_results_must_be_read_with_their_length() {
        let state = MemoryState::new();
        let (inv, limits) = (inv(), Limits::default());
        let mut cx = TxContext::new(&state, &inv, &limits);
        assert!(cx.take_staged(0).is_err());
        assert_eq!(cx.stage(b"abc".to_vec()), 3);
        assert!(cx.take_staged(2).is_err());
        assert_eq!(cx.take_staged(3).unwrap(), b"abc");
        assert!(cx.take_staged(3).is_err());
    }

    #[test]
    fn logs_are_bounded_and_panic_messages_truncated() {
        let state = MemoryState::new();
        let (inv, limits) = (
            inv(),
            Limits {
                log_bytes: 10,
                ..Limits::default()
            },
        );
        let mut cx = TxContext::new(&state, &inv, &limits);
        cx.log(2, b"0123456789abc");
        assert_eq!(cx.log_bytes, 10);
        cx.log(2, b"more");
        assert_eq!(cx.log_bytes, 10);
        let long = "é".repeat(MAX_PANIC_MESSAGE);
        let msg = panic_message(long.as_bytes());
        assert!(msg.len() <= MAX_PANIC_MESSAGE + '…'.len_utf8());
        assert!(msg.ends_with('…'));
    }
}
