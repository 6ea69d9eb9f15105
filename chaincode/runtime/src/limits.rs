//! [`Limits`]: every bound the runtime puts on a contract.
//!
//! Limits are part of consensus: every endorser of a chaincode must use the
//! same values, or they may disagree on whether a call succeeds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bounds on installing and invoking contracts. `Limits::default()` gives
/// the documented defaults (also listed in `chaincode/README.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel per invocation (≈ one per wasm instruction, plus host-call
    /// charges, see ABI.md). Default 10 000 000.
    pub fuel: u64,
    /// Linear memory cap per invocation, bytes. Default 16 MiB.
    pub memory_bytes: u64,
    /// Largest module accepted by `install`, bytes. Default 4 MiB.
    pub code_bytes: u64,
    /// Function name plus the encoded arguments (4 bytes + 4 per argument +
    /// the argument bytes). Default 1 MiB.
    pub args_bytes: u64,
    /// Response payload (or contract error message), bytes. Default 1 MiB.
    pub payload_bytes: u64,
    /// One state key, bytes. Default 1 KiB.
    pub key_bytes: u64,
    /// One state value, bytes. Default 1 MiB.
    pub value_bytes: u64,
    /// One key-level endorsement policy, bytes. Default 16 KiB.
    pub policy_bytes: u64,
    /// Distinct keys written (puts, deletes and key-policy writes). Default 1000.
    pub writes: u64,
    /// Event name plus payload, bytes. Default 64 KiB.
    pub event_bytes: u64,
    /// Rows one range scan may return (also the default scan limit). Default 1000.
    pub range_rows: u64,
    /// Log output per invocation, bytes; past it logs are dropped (the
    /// invocation does not fail: logs are not part of the result). Default 16 KiB.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 10_000_000,
            memory_bytes: 16 << 20,
            code_bytes: 4 << 20,
            args_bytes: 1 << 20,
            payload_bytes: 1 << 20,
            key_bytes: 1 << 10,
            value_bytes: 1 << 20,
            policy_bytes: 16 << 10,
            writes: 1000,
            event_bytes: 64 << 10,
            range_rows: 1000,
            log_bytes: 16 << 10,
        }
    }
}

/// Names one field of [`Limits`], for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::args_bytes`].
    ArgsBytes,
    /// [`Limits::payload_bytes`].
    PayloadBytes,
    /// [`Limits::key_bytes`].
    KeyBytes,
    /// [`Limits::value_bytes`].
    ValueBytes,
    /// [`Limits::policy_bytes`].
    PolicyBytes,
    /// [`Limits::writes`].
    Writes,
    /// [`Limits::event_bytes`].
    EventBytes,
    /// [`Limits::range_rows`].
    RangeRows,
}

impl Limit {
    /// The field name in [`Limits`] (and in TOML configuration).
    pub fn name(self) -> &'static str {
        match self {
            Self::ArgsBytes => "args_bytes",
            Self::PayloadBytes => "payload_bytes",
            Self::KeyBytes => "key_bytes",
            Self::ValueBytes => "value_bytes",
            Self::PolicyBytes => "policy_bytes",
            Self::Writes => "writes",
            Self::EventBytes => "event_bytes",
            Self::RangeRows => "range_rows",
        }
    }

    /// This limit's value in `limits`.
    pub fn value(self, limits: &Limits) -> u64 {
        match self {
            Self::ArgsBytes => limits.args_bytes,
            Self::PayloadBytes => limits.payload_bytes,
            Self::KeyBytes => limits.key_bytes,
            Self::ValueBytes => limits.value_bytes,
            Self::PolicyBytes => limits.policy_bytes,
            Self::Writes => limits.writes,
            Self::EventBytes => limits.event_bytes,
            Self::RangeRows => limits.range_rows,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_config_keeps_defaults_and_unknown_fields_are_refused() {
        let limits: Limits = serde_json::from_str(r#"{"fuel": 5}"#).unwrap();
        assert_eq!(
            limits,
            Limits {
                fuel: 5,
                ..Limits::default()
            }
        );
        assert!(serde_json::from_str::<Limits>(r#"{"fuels": 5}"#).is_err());
    }

    #[test]
    fn limit_names_match_fields() {
        let json = serde_json::to_value(Limits::default()).unwrap();
        for limit in [
            Limit::ArgsBytes,
            Limit::PayloadBytes,
            Limit::KeyBytes,
            Limit::ValueBytes,
            Limit::PolicyBytes,
            Limit::Writes,
            Limit::EventBytes,
            Limit::RangeRows,
        ] {
            assert_eq!(
                json[limit.name()],
                limit.value(&Limits::default()),
                "{limit}"
            );
        }
    }
}
