//! [`Definition`]: a chaincode definition as orgs approve it and the channel
//! commits it, its canonical JSON form, and where it lives in the
//! `_lifecycle` namespace ([`definition_key`], [`approval_key`],
//! [`LifecycleKey::parse`]).
//!
//! Key layout (every key ASCII; names and MSP ids cannot contain `/`):
//!
//! | key | value |
//! |---|---|
//! | `definitions/{name}` | the committed [`Definition`] |
//! | `approvals/{name}/{sequence}/{msp_id}` | the [`Definition`] org `msp_id` approved for that sequence |
//!
//! A value is [`Definition::to_bytes`]: JSON with the fields in declaration
//! order and the endorsement policy in [`Policy`]'s canonical form, so two
//! orgs that approve the same definition write the same bytes.

use std::fmt;

use qcss_chaincode::CodeHash;
use qcss_network::policy::Policy;
use serde::{Deserialize, Serialize};

use crate::endorser::ChaincodeDefinition;

/// Prefix of committed definitions.
pub const DEFINITIONS_PREFIX: &str = "definitions/";
/// Prefix of org approvals.
pub const APPROVALS_PREFIX: &str = "approvals/";
/// Longest name or version accepted (the package format's limit).
const MAX_LABEL: usize = 128;

/// A chaincode definition: what an org approves and the channel commits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The chaincode name (its namespace): letters and digits joined by
    /// single `-` or `_`, as in packages.
    pub name: String,
    /// The version label: letters, digits and `_ . + -`.
    pub version: String,
    /// 1 for the first definition, +1 per upgrade.
    pub sequence: u64,
    /// SHA-256 of the wasm module every endorser must run.
    pub code_hash: CodeHash,
    /// The endorsement policy (a policy string); empty in a request means
    /// the channel's default (`policies.endorsement`), filled in by the
    /// endorser before anything is written.
    #[serde(default)]
    pub endorsement_policy: String,
}

/// Why a definition is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The name is not a valid chaincode name.
    #[error("invalid chaincode name {0:?}: use letters and digits, joined by single - or _")]
    Name(String),
    /// The version is not a valid label.
    #[error("invalid chaincode version {0:?}: use letters, digits and _ . + -")]
    Version(String),
    /// The sequence is 0.
    #[error("sequence must be at least 1")]
    Sequence,
    /// The endorsement policy does not parse.
    #[error(
        "endorsement policy {:?}: {reason}",
        qcss_network::grpc::echo(policy, 256)
    )]
    Policy {
        /// The policy as given.
        policy: String,
        /// The parse error.
        reason: String,
    },
    /// The bytes are not a definition's JSON.
    #[error("not a chaincode definition: {0}")]
    Json(String),
}

impl Definition {
    /// This definition, checked, with `endorsement_policy` in canonical form
    /// (`channel_default` if empty).
    pub fn canonical(mut self, channel_default: &str) -> Result<Self, DefinitionError> {
        if !valid_name(&self.name) {
            return Err(DefinitionError::Name(self.name));
        }
        if !valid_version(&self.version) {
            return Err(DefinitionError::Version(self.version));
        }
        if self.sequence == 0 {
            return Err(DefinitionError::Sequence);
        }
        if self.endorsement_policy.trim().is_empty() {
            self.endorsement_policy = channel_default.to_owned();
        }
        self.endorsement_policy = self.policy()?.to_string();
        Ok(self)
    }

    /// The endorsement policy, parsed.
    pub fn policy(&self) -> Result<Policy, DefinitionError> {
        Policy::parse(&self.endorsement_policy).map_err(|e| DefinitionError::Policy {
            policy: self.endorsement_policy.clone(),
            reason: e.to_string(),
        })
    }

    /// Whether this is already in canonical form (what the validator
    /// demands of every `_lifecycle` value).
    pub fn is_canonical(&self) -> bool {
        self.clone().canonical("").as_ref() == Ok(self)
    }

    /// The stored form: JSON, fields in declaration order.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings, an integer and a hex string: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes [`Definition::to_bytes`] (not checked: see
    /// [`Definition::canonical`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DefinitionError> {
        serde_json::from_slice(bytes).map_err(|e| DefinitionError::Json(e.to_string()))
    }

    /// What the endorser needs of it.
    pub fn to_chaincode_definition(&self) -> ChaincodeDefinition {
        ChaincodeDefinition {
            name: self.name.clone(),
            version: self.version.clone(),
            sequence: self.sequence,
            code_hash: self.code_hash,
        }
    }
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (sequence {}, code hash {}, policy {})",
            self.name, self.version, self.sequence, self.code_hash, self.endorsement_policy
        )
    }
}

/// `[A-Za-z0-9]+([-_][A-Za-z0-9]+)*`, at most 128 bytes: the package
/// format's rule, which also keeps `_lifecycle` and `/` out.
pub(super) fn valid_name(name: &str) -> bool {
    name.len() <= MAX_LABEL
        && !name.is_empty()
        && name
            .split(['-', '_'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn valid_version(version: &str) -> bool {
    version.len() <= MAX_LABEL
        && !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b))
}

/// The key of `name`'s committed definition.
pub fn definition_key(name: &str) -> String {
    format!("{DEFINITIONS_PREFIX}{name}")
}

/// The key of `msp_id`'s approval of `name` at `sequence`.
pub fn approval_key(name: &str, sequence: u64, msp_id: &str) -> String {
    format!("{APPROVALS_PREFIX}{name}/{sequence}/{msp_id}")
}

/// A `_lifecycle` key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleKey<'a> {
    /// `definitions/{name}`.
    Definition {
        /// The chaincode.
        name: &'a str,
    },
    /// `approvals/{name}/{sequence}/{msp_id}`.
    Approval {
        /// The chaincode.
        name: &'a str,
        /// The sequence approved.
        sequence: u64,
        /// The approving org.
        msp_id: &'a str,
    },
}

impl<'a> LifecycleKey<'a> {
    /// Parses `key`; `None` if it is not exactly one of the two forms (a
    /// valid name, a sequence in canonical decimal, a non-empty MSP id).
    pub fn parse(key: &'a str) -> Option<Self> {
        if let Some(name) = key.strip_prefix(DEFINITIONS_PREFIX) {
            return valid_name(name).then_some(LifecycleKey::Definition { name });
        }
        let rest = key.strip_prefix(APPROVALS_PREFIX)?;
        let mut parts = rest.split('/');
        let (name, sequence, msp_id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !valid_name(name) || msp_id.is_empty() {
            return None;
        }
        let sequence: u64 = sequence.parse().ok()?;
        // One spelling per sequence: no sign, no leading zeros.
        if sequence.to_string() != key.split('/').nth(2)? {
            return None;
        }
        Some(LifecycleKey::Approval {
            name,
            sequence,
            msp_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> Definition {
        Definition {
            name: "example".into(),
            version: "1.0".into(),
            sequence: 1,
            code_hash: CodeHash::of(b"wasm"),
            endorsement_policy: String::new(),
        }
    }

    #[test]
    fn canonical_fills_the_default_and_normalises_the_policy() {
        let d = def().canonical("MAJORITY   Endorsement").unwrap();
        assert_eq!(d.endorsement_policy, "MAJORITY Endorsement");
        assert!(d.is_canonical());
        let d = Definition {
            endorsement_policy: "or( 'Org1MSP.peer' ,'Org2MSP.peer')".into(),
            ..def()
        };
        assert!(!d.is_canonical());
        let c = d.canonical("").unwrap();
        assert_eq!(c.endorsement_policy, "OR('Org1MSP.peer', 'Org2MSP.peer')");
        assert_eq!(Definition::from_bytes(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        let bad = |d: Definition| d.canonical("ANY Endorsement").unwrap_err();
        assert!(matches!(
            bad(Definition {
                name: "_lifecycle".into(),
                ..def()
            }),
            DefinitionError::Name(_)
        ));
        assert!(matches!(
            bad(Definition {
                name: "a/b".into(),
                ..def()
            }),
            DefinitionError::Name(_)
        ));
        assert!(matches!(
            bad(Definition {
                version: "1 0".into(),
                ..def()
            }),
            DefinitionError::Version(_)
        ));
        assert_eq!(
            bad(Definition {
                sequence: 0,
                ..def()
            }),
            DefinitionError::Sequence
        );
        assert!(matches!(
            bad(Definition {
                endorsement_policy: "AND(".into(),
                ..def()
            }),
            DefinitionError::Policy { .. }
        ));
        assert!(matches!(
            Definition::from_bytes(br#"{"name":"x","extra":1}"#),
            Err(DefinitionError::Json(_))
        ));
    }

    #[test]
    fn keys_round_trip_and_odd_keys_are_not_lifecycle_keys() {
        assert_eq!(
            LifecycleKey::parse(&definition_key("example")),
            Some(LifecycleKey::Definition { name: "example" })
        );
        assert_eq!(
            LifecycleKey::parse(&approval_key("example", 12, "Org1MSP")),
            Some(LifecycleKey::Approval {
                name: "example",
                sequence: 12,
                msp_id: "Org1MSP"
            })
        );
        for odd in [
            "definitions/",
            "definitions/a/b",
            "approvals/example/1",
            "approvals/example/01/Org1MSP",
            "approvals/example/+1/Org1MSP",
            "approvals/example/1/",
            "approvals/example/1/Org1MSP/x",
            "approvals/ex ample/1/Org1MSP",
            "other",
        ] {
            assert_eq!(LifecycleKey::parse(odd), None, "{odd}");
        }
    }
}
