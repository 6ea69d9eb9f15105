//! The client side of the lifecycle, for the CLI and tests: the lifecycle
//! functions ([`Function`]), the arguments of each proposal (send them with
//! [`crate::endorser::build_proposal`] to chaincode
//! [`super::LIFECYCLE_NAMESPACE`]) and decoders for the answers' payloads.
//!
//! Encoding: `args[0]` is the function name; `args[1]`, where there is one,
//! is JSON (a [`Definition`], or `{"name": …}`), except for
//! `InstallChaincode`, whose `args[1]` is the package file's bytes. Answers
//! are JSON too. This is QCSS's own encoding, not Fabric's protobuf one.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use qcss_chaincode::CodeHash;
use serde::{Deserialize, Serialize};

use crate::lifecycle::LifecycleError;
use crate::lifecycle::definition::Definition;

/// The functions of the `_lifecycle` namespace (Fabric's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// Peer-local: installs a package (`args[1]` = package bytes); an admin
    /// of the peer's org only. Answered, not endorsed.
    InstallChaincode,
    /// Peer-local: lists the installed packages; an admin of the peer's org
    /// only. Answered, not endorsed.
    QueryInstalledChaincodes,
    /// A transaction: the endorsing peer's org approves the definition in
    /// `args[1]`; an admin of that org only.
    ApproveChaincodeDefinitionForMyOrg,
    /// Which orgs approved exactly the definition in `args[1]`.
    CheckCommitReadiness,
    /// A transaction: commits the definition in `args[1]` once enough orgs
    /// approved it.
    CommitChaincodeDefinition,
    /// The committed definition of `{"name": …}` in `args[1]`.
    QueryChaincodeDefinition,
    /// Every committed definition.
    QueryChaincodeDefinitions,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 7] = [
        Function::InstallChaincode,
        Function::QueryInstalledChaincodes,
        Function::ApproveChaincodeDefinitionForMyOrg,
        Function::CheckCommitReadiness,
        Function::CommitChaincodeDefinition,
        Function::QueryChaincodeDefinition,
        Function::QueryChaincodeDefinitions,
    ];

    /// The name sent as `args[0]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Function::InstallChaincode => "InstallChaincode",
            Function::QueryInstalledChaincodes => "QueryInstalledChaincodes",
            Function::ApproveChaincodeDefinitionForMyOrg => "ApproveChaincodeDefinitionForMyOrg",
            Function::CheckCommitReadiness => "CheckCommitReadiness",
            Function::CommitChaincodeDefinition => "CommitChaincodeDefinition",
            Function::QueryChaincodeDefinition => "QueryChaincodeDefinition",
            Function::QueryChaincodeDefinitions => "QueryChaincodeDefinitions",
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Function {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Function::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Function::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown function {s:?}; _lifecycle has {}",
                    names.join(", ")
                )
            })
    }
}

/// A package installed on a peer: the answer to `InstallChaincode`, and one
/// entry of `QueryInstalledChaincodes`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstalledChaincode {
    /// The package's chaincode name.
    pub name: String,
    /// Its version label.
    pub version: String,
    /// SHA-256 of its wasm: what a definition must name.
    pub code_hash: CodeHash,
    /// The endorsement policy the package declares (a suggestion for the
    /// definition; empty = the channel default).
    pub endorsement_policy: String,
}

/// `{"name": …}`: the argument of `QueryChaincodeDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameArg {
    pub(crate) name: String,
}

/// The answer to `CheckCommitReadiness`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// The definition checked, as canonicalised by the peer.
    pub definition: Definition,
    /// Each channel org and whether it approved exactly that definition.
    pub approvals: BTreeMap<String, bool>,
    /// Whether the approving orgs satisfy the channel's lifecycle policy.
    pub ready: bool,
}

fn args(function: Function, arg: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = vec![function.as_str().as_bytes().to_vec()];
    out.extend(arg);
    out
}

/// `InstallChaincode` of the package file `package`.
pub fn install_args(package: &[u8]) -> Vec<Vec<u8>> {
    args(Function::InstallChaincode, Some(package.to_vec()))
}

/// `QueryInstalledChaincodes`.
pub fn query_installed_args() -> Vec<Vec<u8>> {
    args(Function::QueryInstalledChaincodes, None)
}

/// `ApproveChaincodeDefinitionForMyOrg` of `definition` (an empty
/// endorsement policy means the channel's default).
pub fn approve_args(definition: &Definition) -> Vec<Vec<u8>> {
    args(
        Function::ApproveChaincodeDefinitionForMyOrg,
        Some(definition.to_bytes()),
    )
}

/// `CheckCommitReadiness` of `definition`.
pub fn check_commit_readiness_args(definition: &Definition) -> Vec<Vec<u8>> {
    args(Function::CheckCommitReadiness, Some(definition.to_bytes()))
}

/// `CommitChaincodeDefinition` of `definition`.
pub fn commit_args(definition: &Definition) -> Vec<Vec<u8>> {
    args(
        Function::CommitChaincodeDefinition,
        Some(definition.to_bytes()),
    )
}

/// `QueryChaincodeDefinition` of chaincode `name`.
pub fn query_definition_args(name: &str) -> Vec<Vec<u8>> {
    let arg = NameArg {
        name: name.to_owned(),
    };
    // A struct of one string: serialising cannot fail.
    args(
        Function::QueryChaincodeDefinition,
        Some(serde_json::to_vec(&arg).unwrap_or_default()),
    )
}

/// `QueryChaincodeDefinitions`.
pub fn query_definitions_args() -> Vec<Vec<u8>> {
    args(Function::QueryChaincodeDefinitions, None)
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    payload: &[u8],
) -> Result<T, LifecycleError> {
    serde_json::from_slice(payload).map_err(|e| LifecycleError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// The answer to `InstallChaincode`.
pub fn decode_installed(payload: &[u8]) -> Result<InstalledChaincode, LifecycleError> {
    decode("InstallChaincode", payload)
}

/// The answer to `QueryInstalledChaincodes`.
pub fn decode_installed_list(payload: &[u8]) -> Result<Vec<InstalledChaincode>, LifecycleError> {
    decode("QueryInstalledChaincodes", payload)
}

/// The answer to `ApproveChaincodeDefinitionForMyOrg`,
/// `CommitChaincodeDefinition` or `QueryChaincodeDefinition`: one
/// definition, canonical.
pub fn decode_definition(payload: &[u8]) -> Result<Definition, LifecycleError> {
    decode("definition", payload)
}

/// The answer to `QueryChaincodeDefinitions`.
pub fn decode_definitions(payload: &[u8]) -> Result<Vec<Definition>, LifecycleError> {
    decode("QueryChaincodeDefinitions", payload)
}

/// The answer to `CheckCommitReadiness`.
pub fn decode_readiness(payload: &[u8]) -> Result<Readiness, LifecycleError> {
    decode("CheckCommitReadiness", payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_round_trip() {
        for f in Function::ALL {
            assert_eq!(f.as_str().parse::<Function>(), Ok(f));
        }
        let e = "Approve".parse::<Function>().unwrap_err();
        assert!(e.contains("CommitChaincodeDefinition"), "{e}");
    }

    #[test]
    fn args_are_the_function_then_json() {
        let d = Definition {
            name: "cc".into(),
            version: "1".into(),
            sequence: 1,
            code_hash: CodeHash::of(b"w"),
            endorsement_policy: String::new(),
        };
        let a = approve_args(&d);
        assert_eq!(a[0], b"ApproveChaincodeDefinitionForMyOrg");
        assert_eq!(decode_definition(&a[1]).unwrap(), d);
        assert_eq!(commit_args(&d)[0], b"CommitChaincodeDefinition");
        assert_eq!(
            install_args(b"pkg"),
            [b"InstallChaincode".to_vec(), b"pkg".to_vec()]
        );
        assert_eq!(query_definitions_args().len(), 1);
        let q = query_definition_args("cc");
        assert_eq!(q[1], br#"{"name":"cc"}"#);
        assert!(matches!(
            decode_readiness(b"[]"),
            Err(LifecycleError::Decode {
                what: "CheckCommitReadiness",
                ..
            })
        ));
    }
}
