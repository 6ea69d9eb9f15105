//! [`Runtime`]: installs modules (validate and compile once, cache by
//! [`CodeHash`]) and invokes their transaction functions, each call in a
//! fresh `Store<TxContext>` with its own fuel budget and memory cap.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, PoisonError, RwLock},
};

use wasmi::{
    CompilationMode, Config, EnforcedLimits, Engine, ExternType, FuncType, Module, Store, TrapCode,
    errors::{ErrorKind, FuelError, MemoryError, TableError},
};

use crate::{
    CodeHash, InstallError, Invocation, InvokeError, Limit, Limits, Simulation, StateView, host,
    tx_context::{HostFault, TxContext},
};

/// Export-name prefix of transaction functions: function `put` is the
/// export `qcss_fn_put`, of type `() -> i32`.
pub const FUNCTION_PREFIX: &str = "qcss_fn_";
/// Entry-point status: success; the output is the payload.
const STATUS_OK: i32 = 0;
/// Entry-point status: contract error; the output is the message.
const STATUS_ERROR: i32 = 1;
/// Size of a wasm page (custom page sizes are disabled).
const PAGE_BYTES: u64 = 65_536;

/// The chaincode runtime: one wasmi engine and the modules installed in it.
/// Share it between threads (`&Runtime` is enough: it is `Sync`).
pub struct Runtime {
    engine: Engine,
    limits: Limits,
    modules: RwLock<HashMap<CodeHash, Arc<Installed>>>,
}

/// A compiled module and the transaction functions it exports.
struct Installed {
    module: Module,
    functions: BTreeSet<String>,
}

impl Runtime {
    /// A runtime enforcing `limits` on every install and invocation.
    pub fn new(limits: Limits) -> Self {
        Self {
            engine: Engine::new(&engine_config()),
            limits,
            modules: RwLock::new(HashMap::new()),
        }
    }

    /// The limits this runtime enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates and compiles `wasm`, checks its imports and exports against
    /// the ABI, and caches it under its SHA-256. Installing the same bytes
    /// again is cheap and returns the same hash.
    pub fn install(&self, wasm: &[u8]) -> Result<CodeHash, InstallError> {
        let size = wasm.len() as u64;
        if size > self.limits.code_bytes {
            return Err(InstallError::TooLarge {
                size,
                max: self.limits.code_bytes,
            });
        }
        let code = CodeHash::of(wasm);
        if self.is_installed(&code) {
            return Ok(code);
        }
        // wasmi would also accept the text format; the code hash must be of
        // the binary that runs, so only binaries are accepted.
        if !wasm.starts_with(b"\0asm") {
            return Err(InstallError::NotWasm { code });
        }
        let module = Module::new(&self.engine, wasm).map_err(|e| InstallError::Invalid {
            code,
            reason: e.to_string(),
        })?;
        check_imports(code, &module)?;
        let functions = check_exports(code, &module, &self.limits)?;
        let installed = Arc::new(Installed { module, functions });
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(code)
            .or_insert(installed);
        tracing::debug!(%code, size, "chaincode installed");
        Ok(code)
    }

    /// `true` if `code` is installed.
    pub fn is_installed(&self, code: &CodeHash) -> bool {
        self.get(code).is_some()
    }

    /// The transaction functions `code` exports, sorted; `None` if not installed.
    pub fn functions(&self, code: &CodeHash) -> Option<Vec<String>> {
        self.get(code)
            .map(|m| m.functions.iter().cloned().collect())
    }

    /// Drops `code` from the cache; `false` if it was not installed.
    pub fn uninstall(&self, code: &CodeHash) -> bool {
        self.modules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(code)
            .is_some()
    }

    /// Runs `inv.function` of module `code` against `state` and returns
    /// its response and read-write set. Nothing is written anywhere: the
    /// caller decides what to do with the [`Simulation`].
    pub fn invoke(
        &self,
        code: &CodeHash,
        inv: &Invocation,
        state: &dyn StateView,
    ) -> Result<Simulation, InvokeError> {
        let installed = self
            .get(code)
            .ok_or(InvokeError::NotInstalled { code: *code })?;
        let function = inv.function.as_str();
        if !installed.functions.contains(function) {
            return Err(InvokeError::UnknownFunction {
                code: *code,
                function: function.to_owned(),
            });
        }
        let args_bytes = inv.args_bytes();
        if args_bytes > self.limits.args_bytes {
            return Err(InvokeError::LimitExceeded {
                function: function.to_owned(),
                limit: Limit::ArgsBytes,
                max: self.limits.args_bytes,
                actual: args_bytes,
            });
        }
        let instantiation = |e: wasmi::Error| InvokeError::Instantiation {
            code: *code,
            reason: e.to_string(),
        };

        let mut store = Store::new(&self.engine, TxContext::new(state, inv, &self.limits));
        store.limiter(|cx| &mut cx.limiter);
        store.set_fuel(self.limits.fuel).map_err(instantiation)?;
        let linker = host::linker(&self.engine).map_err(|e| instantiation(e.into()))?;
        let instance = linker
            .instantiate_and_start(&mut store, &installed.module)
            .map_err(|e| classify(e, store.data(), function, &self.limits))?;
        let memory = instance
            .get_memory(&store, "memory")
            .ok_or_else(|| instantiation(wasmi::Error::new("no memory export")))?;
        store.data_mut().memory = Some(memory);
        let entry = instance
            .get_typed_func::<(), i32>(&store, &format!("{FUNCTION_PREFIX}{function}"))
            .map_err(instantiation)?;

        let outcome = entry.call(&mut store, ());
        let fuel_used = self.limits.fuel - store.get_fuel().unwrap_or(0).min(self.limits.fuel);
        let status = outcome.map_err(|e| classify(e, store.data(), function, &self.limits))?;
        let cx = store.into_data();
        match status {
            STATUS_OK => Ok(cx.finish(fuel_used)),
            STATUS_ERROR => Err(InvokeError::Contract {
                function: function.to_owned(),
                message: String::from_utf8_lossy(&cx.output).into_owned(),
            }),
            returned => Err(InvokeError::MalformedReturn {
                function: function.to_owned(),
                returned,
            }),
        }
    }

    fn get(&self, code: &CodeHash) -> Option<Arc<Installed>> {
        // A poisoned lock still holds a consistent map: entries are only
        // ever inserted or removed whole.
        self.modules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(code)
            .cloned()
    }
}

/// The engine configuration: deterministic fuel (eager compilation), no
/// start functions, no multi-memory/custom page sizes (memory64 is not
/// compiled in: wasmi without its `memory64` feature), wasmi's
/// strict module limits. Floats: see ABI.md, "Floats".
fn engine_config() -> Config {
    let mut config = Config::default();
    config
        .consume_fuel(true)
        .compilation_mode(CompilationMode::Eager)
        .floats(true)
        .allow_start_fn(false)
        .wasm_multi_memory(false)
        .wasm_custom_page_sizes(false)
        .enforced_limits(EnforcedLimits::strict());
    config
}

/// Refuses any import that is not one of the host functions with its exact type.
fn check_imports(code: CodeHash, module: &Module) -> Result<(), InstallError> {
    for import in module.imports() {
        let unknown = |kind| InstallError::UnknownImport {
            code,
            module: import.module().to_owned(),
            name: import.name().to_owned(),
            kind,
        };
        let ExternType::Func(found) = import.ty() else {
            return Err(unknown(extern_kind(import.ty())));
        };
        let expected = match host::IMPORTS
            .iter()
            .find(|(name, ..)| *name == import.name())
        {
            Some((_, params, results)) if import.module() == host::MODULE => {
                FuncType::new(params.iter().copied(), results.iter().copied())
            }
            _ => return Err(unknown("func")),
        };
        if *found != expected {
            return Err(InstallError::ImportType {
                code,
                name: import.name().to_owned(),
                expected: signature(&expected),
                found: signature(found),
            });
        }
    }
    Ok(())
}

/// Checks `memory` and the `qcss_fn_*` exports; returns the function names.
fn check_exports(
    code: CodeHash,
    module: &Module,
    limits: &Limits,
) -> Result<BTreeSet<String>, InstallError> {
    let mut functions = BTreeSet::new();
    let mut memory = None;
    for export in module.exports() {
        if export.name() == "memory" {
            memory = export.ty().memory().copied();
        }
        let Some(function) = export.name().strip_prefix(FUNCTION_PREFIX) else {
            continue;
        };
        match export.ty() {
            ExternType::Func(ty)
                if ty.params().is_empty() && ty.results() == [wasmi::ValType::I32] =>
            {
                functions.insert(function.to_owned());
            }
            other => {
                let found = match other {
                    ExternType::Func(ty) => format!("a func of type {}", signature(ty)),
                    other => format!("a {}", extern_kind(other)),
                };
                return Err(InstallError::BadExport {
                    code,
                    name: export.name().to_owned(),
                    found,
                });
            }
        }
    }
    let memory = memory.ok_or(InstallError::NoMemory { code })?;
    let initial = memory.minimum().saturating_mul(PAGE_BYTES);
    if initial > limits.memory_bytes {
        return Err(InstallError::MemoryTooLarge {
            code,
            initial,
            max: limits.memory_bytes,
        });
    }
    if functions.is_empty() {
        return Err(InstallError::NoFunctions { code });
    }
    Ok(functions)
}

/// Turns a failed instantiation or call into the error that explains it.
fn classify(err: wasmi::Error, cx: &TxContext<'_>, function: &str, limits: &Limits) -> InvokeError {
    if let Some(fault) = err.downcast_ref::<HostFault>() {
        return fault.clone().into_invoke_error(function, limits);
    }
    let out_of_fuel = matches!(
        err.kind(),
        ErrorKind::TrapCode(TrapCode::OutOfFuel)
            | ErrorKind::Fuel(FuelError::OutOfFuel { .. })
            | ErrorKind::Memory(MemoryError::OutOfFuel { .. })
            | ErrorKind::Table(TableError::OutOfFuel { .. })
    );
    if out_of_fuel {
        return InvokeError::OutOfFuel {
            function: function.to_owned(),
            budget: limits.fuel,
        };
    }
    if cx.limiter.denied {
        return InvokeError::MemoryLimit {
            function: function.to_owned(),
            max: limits.memory_bytes,
        };
    }
    InvokeError::Trap {
        function: function.to_owned(),
        trap: err.to_string(),
    }
}

fn extern_kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "func",
        ExternType::Memory(_) => "memory",
        ExternType::Table(_) => "table",
        ExternType::Global(_) => "global",
    }
}

fn signature(ty: &FuncType) -> String {
    let list = |types: &[wasmi::ValType]| {
        types
            .iter()
            .map(|t| format!("{t:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(ty.params()), list(ty.results()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Caller, MemoryState, Timestamp};

    pub(crate) fn invocation(function: &str, args: &[&str]) -> Invocation {
        Invocation {
            namespace: "test".into(),
            function: function.into(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            tx_id: "tx1".into(),
            channel: "qcss".into(),
            channel_orgs: Vec::new(),
            timestamp: Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            },
            caller: Caller {
                msp_id: "Org1MSP".into(),
                role: "client".into(),
                ..Caller::default()
            },
        }
    }

    fn install_wat(rt: &Runtime, wat: &str) -> Result<CodeHash, InstallError> {
        rt.install(&wat::parse_str(wat).unwrap())
    }

    const OK_FN: &str = r#"(memory (export "memory") 1)
        (func (export "qcss_fn_ok") (result i32) i32.const 0)"#;

    #[test]
    fn runtime_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Runtime>();
    }

    #[test]
    fn minimal_module_runs_and_is_cached() {
        let rt = Runtime::new(Limits::default());
        let code = install_wat(&rt, &format!("(module {OK_FN})")).unwrap();
        assert_eq!(
            install_wat(&rt, &format!("(module {OK_FN})")).unwrap(),
            code
        );
        assert_eq!(rt.functions(&code).unwrap(), ["ok"]);
        let sim = rt
            .invoke(&code, &invocation("ok", &[]), &MemoryState::new())
            .unwrap();
        assert_eq!(sim.response.status, 200);
        assert!(sim.fuel_used > 0);
        assert!(rt.uninstall(&code));
        assert_eq!(
            rt.invoke(&code, &invocation("ok", &[]), &MemoryState::new())
                .unwrap_err(),
            InvokeError::NotInstalled { code }
        );
    }

    #[test]
    fn text_format_and_garbage_are_refused() {
        let rt = Runtime::new(Limits::default());
        let text = format!("(module {OK_FN})");
        assert!(matches!(
            rt.install(text.as_bytes()),
            Err(InstallError::NotWasm { .. })
        ));
        let err = rt.install(b"\0asm\x01\0\0\0\x01\xff").unwrap_err();
        assert!(matches!(err, InstallError::Invalid { .. }), "{err}");
    }

    #[test]
    fn imports_are_checked_by_name_module_and_type() {
        let rt = Runtime::new(Limits::default());
        let err = install_wat(
            &rt,
            &format!(r#"(module (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32))) {OK_FN})"#),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string().split(" imports ").nth(1).unwrap(),
            "wasi_snapshot_preview1.clock_time_get (func), which the host does not provide"
        );
        let err = install_wat(
            &rt,
            &format!(r#"(module (import "qcss" "random" (func (result i64))) {OK_FN})"#),
        )
        .unwrap_err();
        assert!(
            matches!(err, InstallError::UnknownImport { ref name, .. } if name == "random"),
            "{err}"
        );
        let err = install_wat(
            &rt,
            &format!(
                r#"(module (import "qcss" "get_state" (func (param i32) (result i64))) {OK_FN})"#
            ),
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("imports qcss.get_state as (i32) -> (i64), but the host provides (i32, i32) -> (i64)"), "{err}");
        let err = install_wat(&rt, r#"(module (import "qcss" "memory" (memory 1)) (func (export "qcss_fn_ok") (result i32) i32.const 0))"#).unwrap_err();
        assert!(
            matches!(err, InstallError::UnknownImport { kind: "memory", .. }),
            "{err}"
        );
    }

    #[test]
    fn exports_are_checked() {
        let rt = Runtime::new(Limits::default());
        let err = install_wat(
            &rt,
            r#"(module (func (export "qcss_fn_ok") (result i32) i32.const 0))"#,
        )
        .unwrap_err();
        assert!(matches!(err, InstallError::NoMemory { .. }), "{err}");
        let err = install_wat(
            &rt,
            r#"(module (memory (export "memory") 1) (func (export "other")))"#,
        )
        .unwrap_err();
        assert!(matches!(err, InstallError::NoFunctions { .. }), "{err}");
        let err = install_wat(&rt, r#"(module (memory (export "memory") 1) (func (export "qcss_fn_x") (param i32) (result i32) i32.const 0))"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("exports qcss_fn_x as a func of type (i32) -> (i32)"),
            "{err}"
        );
        let small = Runtime::new(Limits {
            memory_bytes: 65_536,
            ..Limits::default()
        });
        let err = install_wat(&small, r#"(module (memory (export "memory") 2) (func (export "qcss_fn_ok") (result i32) i32.const 0))"#).unwrap_err();
        assert!(
            matches!(
                err,
                InstallError::MemoryTooLarge {
                    initial: 131_072,
                    max: 65_536,
                    ..
                }
            ),
            "{err}"
        );
        let tiny = Runtime::new(Limits {
            code_bytes: 10,
            ..Limits::default()
        });
        assert!(matches!(
            install_wat(&tiny, &format!("(module {OK_FN})")),
            Err(InstallError::TooLarge { max: 10, .. })
        ));
    }

    #[test]
    fn start_functions_are_refused() {
        let rt = Runtime::new(Limits::default());
        let err = install_wat(&rt, &format!("(module (func $s) (start $s) {OK_FN})")).unwrap_err();
        assert!(matches!(err, InstallError::Invalid { .. }), "{err}");
    }
}
