//! The chaincode lifecycle, Fabric's `_lifecycle` done natively: install a
//! package on a peer, approve a definition per org, commit it once the
//! channel's lifecycle policy is met — approvals and commits being ordinary
//! transactions through the orderer, so every peer applies a definition at
//! the same block. Upgrades commit a higher sequence. See `docs/lifecycle.md`.
//!
//! Pieces: `definition.rs` ([`Definition`], its canonical JSON and the key
//! layout of the `_lifecycle` namespace), `functions.rs` (the functions as
//! the endorser runs them, called from `Endorser::endorse`), `rules.rs`
//! (what the validator demands of `_lifecycle` writes), `client.rs` (the
//! proposals' arguments and the answers' decoders, for the CLI), and here
//! [`Lifecycle`]: one peer's installed packages (persisted as
//! `<packages_dir>/<code hash>.pkg`) and the definitions committed on one
//! channel, read from the ledger — [`Lifecycle::definitions`] for the
//! endorser, the [`PolicyProvider`] impl for the validator.
//!
//! The node's loop: `Lifecycle::open` at start, `Endorser::with_lifecycle`,
//! `commit_block(.., &*lifecycle)` for each block, then
//! [`Lifecycle::refresh`]. A definition committed in block `n` therefore
//! governs validation from block `n + 1` on, on every peer alike.

mod client;
mod definition;
mod error;
pub(crate) mod functions;
mod rules;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use qcss_chaincode::{ChaincodePackage, CodeHash, Runtime};
use qcss_network::channel::Channel;
use qcss_network::policy::Policy;

use crate::endorser::ChaincodeDefinitions;
use crate::ledger::{Ledger, Version};
use crate::validator::{KeyRule, KeyWrite, PolicyProvider};

pub use client::{
    Function, InstalledChaincode, Readiness, approve_args, check_commit_readiness_args,
    commit_args, decode_definition, decode_definitions, decode_installed, decode_installed_list,
    decode_readiness, install_args, query_definition_args, query_definitions_args,
    query_installed_args,
};
pub use definition::{
    APPROVALS_PREFIX, DEFINITIONS_PREFIX, Definition, DefinitionError, LifecycleKey, approval_key,
    definition_key,
};
pub use error::LifecycleError;
pub use rules::{LIFECYCLE_NAMESPACE_POLICY, key_rule};

/// The system namespace (and chaincode name) of the lifecycle.
pub const LIFECYCLE_NAMESPACE: &str = "_lifecycle";

/// The system namespace (and chaincode name) of the anchoring receipts the
/// bridge records on the ledger; each peer runs it natively
/// (`node/anchorscc.rs`) and endorses a receipt only after checking it
/// against its own ledger and the public chain.
pub const ANCHOR_NAMESPACE: &str = "_anchor";

/// [`ANCHOR_NAMESPACE`]'s endorsement policy: a majority of the channel's
/// orgs' peers must each have checked a receipt.
pub const ANCHOR_NAMESPACE_POLICY: &str = "MAJORITY Endorsement";
/// The version reported in the `ChaincodeAction` of lifecycle transactions
/// (Fabric's system chaincodes report `syscc`).
pub const LIFECYCLE_VERSION: &str = "syscc";
/// Largest package file accepted for install.
pub const MAX_PACKAGE_BYTES: u64 = 32 << 20;
/// Extension of package files in the store.
const PACKAGE_EXT: &str = "pkg";

/// The exclusive end of the `definitions/` range (`/` + 1 = `0`).
pub(crate) fn definitions_end() -> String {
    format!("{}0", DEFINITIONS_PREFIX.trim_end_matches('/'))
}

/// One committed definition as the validator uses it.
#[derive(Debug, Clone)]
struct Committed {
    version: Version,
    definition: Definition,
    policy: Policy,
}

/// The committed definitions, as of one ledger height.
#[derive(Debug, Default)]
struct CommittedTable {
    /// The ledger height last read; `None` before the first refresh.
    height: Option<u64>,
    by_name: BTreeMap<String, Committed>,
}

/// One peer's lifecycle on one channel: installed packages and committed
/// definitions. Share it behind an `Arc` (endorser, validator, node).
pub struct Lifecycle {
    packages_dir: PathBuf,
    ledger: Arc<Ledger>,
    runtime: Arc<Runtime>,
    definitions: Arc<ChaincodeDefinitions>,
    committed: RwLock<CommittedTable>,
    installed: RwLock<BTreeMap<CodeHash, InstalledChaincode>>,
    /// Serialises installs (one writer of the package directory).
    install_lock: Mutex<()>,
    namespace_policy: Policy,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("packages_dir", &self.packages_dir)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// Opens the lifecycle: creates `packages_dir` if missing, installs every
    /// package stored there in `runtime`, and reads the definitions
    /// committed in `ledger`. Fails on a package file that does not parse or
    /// is not named after its code hash (rather than silently forget it).
    pub fn open(
        packages_dir: &Path,
        ledger: Arc<Ledger>,
        runtime: Arc<Runtime>,
    ) -> Result<Lifecycle, LifecycleError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LifecycleError::Io { path, source }
        };
        std::fs::create_dir_all(packages_dir).map_err(io(packages_dir))?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(packages_dir)
            .map_err(io(packages_dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io(packages_dir))?;
        files.sort();
        let mut installed = BTreeMap::new();
        for path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == PACKAGE_EXT))
        {
            let damaged = |reason: String| LifecycleError::DamagedPackage {
                path: path.clone(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(io(path))?;
            let package = ChaincodePackage::from_bytes(&bytes, MAX_PACKAGE_BYTES)
                .map_err(|e| damaged(e.to_string()))?;
            let info = info(&package);
            if path.file_stem().and_then(|s| s.to_str()) != Some(info.code_hash.to_hex().as_str()) {
                return Err(damaged(format!(
                    "its code hash is {}, not its file name",
                    info.code_hash
                )));
            }
            runtime
                .install(package.wasm())
                .map_err(|e| damaged(format!("the runtime refused its module: {e}")))?;
            installed.insert(info.code_hash, info);
        }
        let lifecycle = Lifecycle {
            packages_dir: packages_dir.to_owned(),
            ledger,
            runtime,
            definitions: Arc::new(ChaincodeDefinitions::new()),
            committed: RwLock::new(CommittedTable::default()),
            installed: RwLock::new(installed),
            install_lock: Mutex::new(()),
            // A constant that parses (tested below).
            namespace_policy: Policy::parse(LIFECYCLE_NAMESPACE_POLICY).map_err(|e| {
                LifecycleError::Decode {
                    what: "namespace policy",
                    reason: e.to_string(),
                }
            })?,
        };
        if let Err(e) = lifecycle.refresh() {
            // Damaged state: the peer starts anyway (it endorses nothing),
            // rebuilds the state from its blocks and refreshes then.
            if lifecycle.ledger.integrity().state.is_none() {
                return Err(e);
            }
            tracing::error!(error = %e, "chaincode definitions unreadable until the state is rebuilt");
        }
        Ok(lifecycle)
    }

    /// The committed definitions as the endorser needs them: give them to
    /// `Endorser::with_definitions` (or use `Endorser::with_lifecycle`).
    /// [`Lifecycle::refresh`] updates them in place.
    pub fn definitions(&self) -> Arc<ChaincodeDefinitions> {
        self.definitions.clone()
    }

    /// Re-reads the committed definitions from the ledger: call it after
    /// each committed block, before validating the next. Deterministic: it
    /// depends only on the committed `_lifecycle` state. Cheap when the
    /// ledger has not grown, and when it has, one range scan of
    /// `definitions/` that decodes only the entries whose version changed.
    /// An entry that does not decode (the validator lets none in) is
    /// skipped with a warning.
    pub fn refresh(&self) -> Result<(), LifecycleError> {
        let (height, rows) = {
            let view = self.ledger.state_view();
            let height = view.height();
            let known = self
                .committed
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .height;
            if known == Some(height) {
                return Ok(());
            }
            let rows = view.range(
                LIFECYCLE_NAMESPACE,
                DEFINITIONS_PREFIX,
                &definitions_end(),
                0,
            )?;
            (height, rows)
        };
        let mut table = self
            .committed
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for (key, value) in rows {
            let Some(name) = key.strip_prefix(DEFINITIONS_PREFIX) else {
                continue;
            };
            // Versions only grow: never let a slower, older refresh win.
            if table
                .by_name
                .get(name)
                .is_some_and(|c| c.version >= value.version)
            {
                continue;
            }
            let parsed =
                Definition::from_bytes(&value.value).and_then(|d| d.policy().map(|p| (d, p)));
            match parsed {
                Ok((definition, policy)) if definition.name == name => {
                    tracing::info!(%definition, block = value.version.block, "chaincode definition committed");
                    self.definitions
                        .define(definition.to_chaincode_definition());
                    table.by_name.insert(
                        name.to_owned(),
                        Committed {
                            version: value.version,
                            definition,
                            policy,
                        },
                    );
                }
                Ok(_) => {
                    tracing::warn!(key = %key, "skipping a _lifecycle definition of another name")
                }
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "skipping an unreadable _lifecycle definition")
                }
            }
        }
        table.height = Some(table.height.map_or(height, |h| h.max(height)));
        Ok(())
    }

    /// The committed definition of `name`, as of the last refresh.
    pub fn committed(&self, name: &str) -> Option<Definition> {
        self.committed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_name
            .get(name)
            .map(|c| c.definition.clone())
    }

    /// Every committed definition, by name, as of the last refresh.
    pub fn committed_all(&self) -> Vec<Definition> {
        self.committed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_name
            .values()
            .map(|c| c.definition.clone())
            .collect()
    }

    /// Installs the package file `package`: checks it, installs its module
    /// in the runtime and stores the file as `<packages_dir>/<code hash>.pkg`
    /// (written to a temporary file, synced, renamed) so a restarted peer
    /// reloads it. Installing a package already installed changes nothing.
    /// Who may install is the caller's business (the endorser allows only
    /// an admin of the peer's org).
    pub fn install(&self, package: &[u8]) -> Result<InstalledChaincode, LifecycleError> {
        let package = ChaincodePackage::from_bytes(package, MAX_PACKAGE_BYTES)?;
        let info = info(&package);
        let _one_at_a_time = self
            .install_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.is_installed(&info.code_hash) {
            return Ok(info);
        }
        self.runtime
            .install(package.wasm())
            .map_err(|source| LifecycleError::Install {
                name: info.name.clone(),
                version: info.version.clone(),
                source: Box::new(source),
            })?;
        self.store(&package, &info.code_hash)?;
        tracing::info!(
            name = %info.name,
            version = %info.version,
            code_hash = %info.code_hash,
            "chaincode package installed"
        );
        self.installed
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info.code_hash, info.clone());
        Ok(info)
    }

    fn store(&self, package: &ChaincodePackage, code: &CodeHash) -> Result<(), LifecycleError> {
        let path = self
            .packages_dir
            .join(format!("{}.{PACKAGE_EXT}", code.to_hex()));
        let tmp = path.with_extension(format!("{PACKAGE_EXT}.tmp"));
        let io = |p: &Path| {
            let p = p.to_owned();
            move |source| LifecycleError::Io { path: p, source }
        };
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&package.to_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(&self.packages_dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.packages_dir))
    }

    /// Whether a package with this code hash is installed here.
    pub fn is_installed(&self, code: &CodeHash) -> bool {
        self.installed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(code)
    }

    /// Every installed package, by code hash.
    pub fn installed(&self) -> Vec<InstalledChaincode> {
        self.installed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Code hashes of the installed packages named `name`.
    pub(crate) fn installed_hashes(&self, name: &str) -> Vec<CodeHash> {
        self.installed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|i| i.name == name)
            .map(|i| i.code_hash)
            .collect()
    }
}

fn info(package: &ChaincodePackage) -> InstalledChaincode {
    InstalledChaincode {
        name: package.name().to_owned(),
        version: package.version().to_owned(),
        code_hash: package.code_hash(),
        endorsement_policy: package.endorsement_policy().to_owned(),
    }
}

/// Chaincode policies from the committed definitions (as of the last
/// [`Lifecycle::refresh`]), [`LIFECYCLE_NAMESPACE_POLICY`] for `_lifecycle`
/// itself, and the `_lifecycle` key rules of `rules.rs`. A chaincode defined
/// only through `ChaincodeDefinitions::define` has no policy here.
impl PolicyProvider for Lifecycle {
    fn chaincode_policy(&self, namespace: &str) -> Option<Policy> {
        if namespace == LIFECYCLE_NAMESPACE {
            return Some(self.namespace_policy.clone());
        }
        if namespace == ANCHOR_NAMESPACE {
            return Policy::parse(ANCHOR_NAMESPACE_POLICY).ok();
        }
        self.committed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_name
            .get(namespace)
            .map(|c| c.policy.clone())
    }

    fn key_rule(
        &self,
        channel: &Channel,
        namespace: &str,
        key: &str,
        write: KeyWrite<'_>,
    ) -> KeyRule {
        if namespace == LIFECYCLE_NAMESPACE {
            rules::key_rule(channel, key, write)
        } else {
            KeyRule::None
        }
    }
}

#[cfg(test)]
mod tests {
    use qcss_chaincode::Limits;

    use super::*;
    use crate::ledger::testutil::{ChainBuilder, TestTx};

    #[test]
    fn constants_hold() {
        assert!(Policy::parse(LIFECYCLE_NAMESPACE_POLICY).is_ok());
        assert!(Policy::parse(ANCHOR_NAMESPACE_POLICY).is_ok());
        assert!(!definition::valid_name(ANCHOR_NAMESPACE));
        assert!(definitions_end().as_str() > "definitions/zzz");
        assert!(definitions_end().starts_with("definitions"));
        assert!(!definition::valid_name(LIFECYCLE_NAMESPACE));
    }

    #[test]
    fn refresh_reads_committed_definitions_and_skips_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(&dir.path().join("ledger")).unwrap());
        let runtime = Arc::new(Runtime::new(Limits::default()));
        let lc = Lifecycle::open(&dir.path().join("pkgs"), ledger.clone(), runtime).unwrap();
        assert!(lc.committed_all().is_empty());
        assert_eq!(lc.chaincode_policy("cc"), None);
        assert!(lc.chaincode_policy(LIFECYCLE_NAMESPACE).is_some());

        let def = |seq| {
            Definition {
                name: "cc".into(),
                version: format!("v{seq}"),
                sequence: seq,
                code_hash: CodeHash::of(b"cc"),
                endorsement_policy: "OR('Org1MSP.peer')".into(),
            }
            .canonical("")
            .unwrap()
        };
        let mut chain = ChainBuilder::following(&ledger);
        let (b, u) = chain.next(&[TestTx::new("t0")
            .put(
                LIFECYCLE_NAMESPACE,
                &definition_key("cc"),
                &def(1).to_bytes(),
            )
            .put(LIFECYCLE_NAMESPACE, &definition_key("bad"), b"garbage")]);
        ledger.commit(&b, &u).unwrap();
        lc.refresh().unwrap();
        assert_eq!(lc.committed("cc"), Some(def(1)));
        assert_eq!(lc.committed("bad"), None);
        assert_eq!(lc.definitions().get("cc").unwrap().sequence, 1);
        assert_eq!(
            lc.chaincode_policy("cc"),
            Policy::parse("OR('Org1MSP.peer')").ok()
        );

        let (b, u) = chain.next(&[TestTx::new("t1").put(
            LIFECYCLE_NAMESPACE,
            &definition_key("cc"),
            &def(2).to_bytes(),
        )]);
        ledger.commit(&b, &u).unwrap();
        lc.refresh().unwrap();
        assert_eq!(lc.definitions().get("cc").unwrap().version, "v2");
    }
}
