//! [`Invocation`]: everything about one call that comes from the proposal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One call of a transaction function, as the endorser received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// The chaincode's namespace (its name on the channel); used in logs.
    pub namespace: String,
    /// The transaction function (Fabric's `args[0]`).
    pub function: String,
    /// Positional arguments (Fabric's `args[1..]`), as byte strings.
    pub args: Vec<Vec<u8>>,
    /// The transaction id.
    pub tx_id: String,
    /// The channel (ledger) the proposal is for; the contract reads it with
    /// `channel_id` (e.g. to bind signed data to this ledger).
    #[serde(default)]
    pub channel: String,
    /// The channel's member organisations (MSP IDs, sorted) in the
    /// configuration the endorser has in force; the contract reads them
    /// with `channel_orgs` (e.g. so that governance cannot be set up by one
    /// organisation naming only itself). Endorsers at the same config
    /// agree; one behind gives a different answer, like any stale state.
    #[serde(default)]
    pub channel_orgs: Vec<String>,
    /// The proposal's timestamp: the contract's only notion of time.
    pub timestamp: Timestamp,
    /// Who signed the proposal.
    pub caller: Caller,
}

/// A point in time from the proposal header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

/// The proposal's creator, as the peer's MSP established it. Contracts
/// receive exactly these fields, as JSON (ABI.md, `caller`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Caller {
    /// The creator's organisation (MSP id).
    pub msp_id: String,
    /// Its node-OU role: `admin`, `client`, `peer` or `orderer`.
    pub role: String,
    /// QCSS attributes from the certificate.
    pub attributes: BTreeMap<String, String>,
    /// The signing certificate, PEM.
    pub cert_pem: String,
}

impl Invocation {
    /// Bytes counted against [`Limits::args_bytes`](crate::Limits::args_bytes):
    /// the function name plus the arguments as the contract receives them
    /// (ABI list encoding: 4 bytes for the count, 4 per argument plus its
    /// bytes), so that many empty arguments are not free.
    pub fn args_bytes(&self) -> u64 {
        let args: u64 = self.args.iter().map(|a| 4 + a.len() as u64).sum();
        self.function.len() as u64 + 4 + args
    }
}
