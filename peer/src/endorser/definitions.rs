//! [`ChaincodeDefinitions`]: the chaincode definitions committed on the
//! channel, as far as the endorser needs them (name → version, sequence,
//! code hash). The peer's lifecycle code fills it when a definition is
//! committed; until then, tests and tools call [`ChaincodeDefinitions::define`].

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use qcss_chaincode::CodeHash;

/// One committed chaincode definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeDefinition {
    /// The chaincode name: its namespace in the world state.
    pub name: String,
    /// The version label (reported in `ChaincodeAction.chaincode_id.version`).
    pub version: String,
    /// The lifecycle sequence (1 for the first definition, +1 per upgrade).
    pub sequence: u64,
    /// SHA-256 of the wasm module the definition requires.
    pub code_hash: CodeHash,
}

/// The committed definitions of one channel, shared between the lifecycle
/// (writer) and the endorser (reader). Cheap to read from many threads.
#[derive(Debug, Default)]
pub struct ChaincodeDefinitions {
    by_name: RwLock<BTreeMap<String, ChaincodeDefinition>>,
}

impl ChaincodeDefinitions {
    /// No chaincode defined.
    pub fn new() -> Self {
        Self::default()
    }

    /// Commits `definition`, replacing any earlier definition of the same
    /// name (an upgrade); returns the one replaced.
    pub fn define(&self, definition: ChaincodeDefinition) -> Option<ChaincodeDefinition> {
        // A poisoned lock still holds a consistent map: entries are replaced whole.
        self.by_name
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(definition.name.clone(), definition)
    }

    /// Removes the definition of `name`, if any.
    pub fn remove(&self, name: &str) -> Option<ChaincodeDefinition> {
        self.by_name
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }

    /// The committed definition of `name`.
    pub fn get(&self, name: &str) -> Option<ChaincodeDefinition> {
        self.by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every definition, by name.
    pub fn all(&self) -> Vec<ChaincodeDefinition> {
        self.by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, sequence: u64) -> ChaincodeDefinition {
        ChaincodeDefinition {
            name: name.into(),
            version: format!("v{sequence}"),
            sequence,
            code_hash: CodeHash::of(name.as_bytes()),
        }
    }

    #[test]
    fn define_replaces_and_remove_forgets() {
        let d = ChaincodeDefinitions::new();
        assert_eq!(d.define(def("a", 1)), None);
        assert_eq!(d.define(def("a", 2)), Some(def("a", 1)));
        d.define(def("b", 1));
        assert_eq!(d.get("a"), Some(def("a", 2)));
        assert_eq!(d.all().len(), 2);
        assert_eq!(d.remove("a"), Some(def("a", 2)));
        assert_eq!(d.get("a"), None);
    }
}
