//! Where endorsement policies come from: [`PolicyProvider`] for chaincode
//! (namespace) policies and for system rules on single keys
//! ([`PolicyProvider::key_rule`], e.g. the `_lifecycle` namespace's: an
//! org's approval needs that org's peer and admin), and committed key
//! metadata for key-level (state-based) policies, in the encoding defined
//! here.
//!
//! **Key-level policy encoding.** A transaction sets a key's policy with a
//! `KVMetadataWrite` whose one entry is named [`KEY_POLICY_ENTRY`]
//! (`"VALIDATION_PARAMETER"`, Fabric's `MetaDataKeys` name) and whose value is
//! the policy *string* in UTF-8, in [`Policy::parse`]'s syntax (e.g.
//! `OR('Org3MSP.peer')`); a write with no entries, or an empty value, removes
//! it. The ledger stores exactly those bytes as the key's metadata, and the
//! chaincode's `get_key_policy` returns them. Fabric stores a marshaled
//! `SignaturePolicyEnvelope` there instead: a deliberate difference, as the
//! rest of QCSS names policies by their strings.

use std::collections::{BTreeMap, HashMap};

use qcss_network::channel::Channel;
use qcss_network::policy::Policy;

/// Name of the metadata entry that carries a key-level endorsement policy.
pub const KEY_POLICY_ENTRY: &str = "VALIDATION_PARAMETER";

/// The endorsement policies of the chaincodes defined on a channel. The
/// validator asks it from several threads at once.
pub trait PolicyProvider: Sync {
    /// The endorsement policy of the chaincode whose namespace is
    /// `namespace`; `None` if no such chaincode is defined on the channel
    /// (its transactions are then `INVALID_CHAINCODE`).
    fn chaincode_policy(&self, namespace: &str) -> Option<Policy>;

    /// What a transaction writing `key` of `namespace` needs besides the
    /// namespace's policy (checked for every value and metadata write,
    /// whichever chaincode was invoked). The default: nothing more. The
    /// lifecycle uses it so that no org can forge another org's approval.
    fn key_rule(
        &self,
        _channel: &Channel,
        _namespace: &str,
        _key: &str,
        _write: KeyWrite<'_>,
    ) -> KeyRule {
        KeyRule::None
    }
}

/// One write, as [`PolicyProvider::key_rule`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWrite<'a> {
    /// A value is written.
    Put(&'a [u8]),
    /// The key is deleted.
    Delete,
    /// The key's metadata (key-level policy) is set or removed.
    Metadata,
}

/// What a write to one key needs besides its namespace's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRule {
    /// Nothing more.
    None,
    /// The transaction's valid endorsers must satisfy `endorsement`, and its
    /// creator `creator` (if given); else `ENDORSEMENT_POLICY_FAILURE`.
    Require {
        /// Evaluated over the endorsers that count (valid peers).
        endorsement: Policy,
        /// Evaluated over the creator alone.
        creator: Option<Policy>,
    },
    /// No transaction may make this write (`INVALID_WRITESET`); the reason.
    Forbidden(String),
}

impl PolicyProvider for BTreeMap<String, Policy> {
    fn chaincode_policy(&self, namespace: &str) -> Option<Policy> {
        self.get(namespace).cloned()
    }
}

impl<S: std::hash::BuildHasher + Sync> PolicyProvider for HashMap<String, Policy, S> {
    fn chaincode_policy(&self, namespace: &str) -> Option<Policy> {
        self.get(namespace).cloned()
    }
}

/// A fixed table of chaincode policies with an optional fallback for
/// chaincodes not listed (e.g. the channel's default `MAJORITY Endorsement`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticPolicies {
    policies: BTreeMap<String, Policy>,
    default: Option<Policy>,
}

impl StaticPolicies {
    /// No chaincode defined.
    pub fn new() -> Self {
        StaticPolicies::default()
    }

    /// Defines chaincode `namespace` with `policy`.
    pub fn with(mut self, namespace: impl Into<String>, policy: Policy) -> Self {
        self.policies.insert(namespace.into(), policy);
        self
    }

    /// Every namespace not listed gets `policy`.
    pub fn with_default(mut self, policy: Policy) -> Self {
        self.default = Some(policy);
        self
    }
}

impl PolicyProvider for StaticPolicies {
    fn chaincode_policy(&self, namespace: &str) -> Option<Policy> {
        self.policies
            .get(namespace)
            .or(self.default.as_ref())
            .cloned()
    }
}

/// The metadata bytes that give a key the policy `policy` (its canonical
/// string, UTF-8).
pub fn encode_key_policy(policy: &Policy) -> Vec<u8> {
    policy.to_string().into_bytes()
}

/// The key-level policy stored as `metadata`; `None` if the bytes are not a
/// UTF-8 policy string (the validator then treats the key's policy as
/// unsatisfiable, as Fabric does with an unreadable validation parameter).
pub fn decode_key_policy(metadata: &[u8]) -> Option<Policy> {
    std::str::from_utf8(metadata)
        .ok()
        .and_then(|s| Policy::parse(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_policies_round_trip_and_garbage_is_none() {
        let p = Policy::parse("AND('Org1MSP.peer', 'Org3MSP.peer')").unwrap();
        assert_eq!(decode_key_policy(&encode_key_policy(&p)), Some(p));
        assert_eq!(
            decode_key_policy(b"OR('Org3MSP.peer')"),
            Policy::parse("OR('Org3MSP.peer')").ok()
        );
        assert_eq!(decode_key_policy(&[0xff, 0xfe]), None);
        assert_eq!(decode_key_policy(b"AND("), None);
        assert_eq!(decode_key_policy(b""), None);
    }

    #[test]
    fn static_policies_fall_back_to_the_default() {
        let a = Policy::parse("OR('Org1MSP.peer')").unwrap();
        let d = Policy::parse("MAJORITY Endorsement").unwrap();
        let p = StaticPolicies::new().with("a", a.clone());
        assert_eq!(p.chaincode_policy("a"), Some(a.clone()));
        assert_eq!(p.chaincode_policy("b"), None);
        let p = p.with_default(d.clone());
        assert_eq!(p.chaincode_policy("b"), Some(d));
        assert_eq!(p.chaincode_policy("a"), Some(a));
    }
}
