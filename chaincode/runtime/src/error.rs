//! The runtime's errors: [`InstallError`] (a module refused) and
//! [`InvokeError`] (a call failed). Every variant names the code, the
//! function or the limit concerned; none of them leaves the runtime unusable.

use crate::{CodeHash, Limit, StateError};

/// Why `install` refused a module. The module is not cached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The module is larger than [`Limits::code_bytes`](crate::Limits::code_bytes).
    #[error("chaincode of {size} bytes exceeds the limit code_bytes = {max}")]
    TooLarge {
        /// The module's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not a binary wasm module (no `\0asm` header); the text
    /// format is not accepted either.
    #[error("chaincode {code} is not a WebAssembly binary module (it must start with \"\\0asm\")")]
    NotWasm {
        /// Hash of the bytes given.
        code: CodeHash,
    },
    /// wasmi could not parse, validate or compile the module (corrupt or
    /// truncated bytes, a disabled proposal such as SIMD or memory64, a start
    /// function, …). `reason` is wasmi's message.
    #[error("chaincode {code} is not a valid module: {reason}")]
    Invalid {
        /// Hash of the module.
        code: CodeHash,
        /// wasmi's explanation.
        reason: String,
    },
    /// The module imports something the host does not provide (anything but
    /// the functions of the `qcss` module listed in ABI.md: no WASI, no
    /// clock, no randomness).
    #[error("chaincode {code} imports {module}.{name} ({kind}), which the host does not provide")]
    UnknownImport {
        /// Hash of the module.
        code: CodeHash,
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
        /// What is imported: `func`, `memory`, `table` or `global`.
        kind: &'static str,
    },
    /// The module imports a host function with the wrong signature.
    #[error("chaincode {code} imports qcss.{name} as {found}, but the host provides {expected}")]
    ImportType {
        /// Hash of the module.
        code: CodeHash,
        /// The host function.
        name: String,
        /// The host's signature.
        expected: String,
        /// The module's signature.
        found: String,
    },
    /// The module does not export its linear memory as `memory`.
    #[error("chaincode {code} does not export a memory named \"memory\"")]
    NoMemory {
        /// Hash of the module.
        code: CodeHash,
    },
    /// The module's initial memory is over the memory cap.
    #[error(
        "chaincode {code} starts with {initial} bytes of memory, over the limit memory_bytes = {max}"
    )]
    MemoryTooLarge {
        /// Hash of the module.
        code: CodeHash,
        /// Its declared initial memory.
        initial: u64,
        /// [`Limits::memory_bytes`](crate::Limits::memory_bytes).
        max: u64,
    },
    /// A `qcss_fn_*` export is not a function of type `() -> i32`.
    #[error(
        "chaincode {code} exports {name} as {found}; a transaction function must be a func of type () -> i32"
    )]
    BadExport {
        /// Hash of the module.
        code: CodeHash,
        /// The export name.
        name: String,
        /// What it is instead.
        found: String,
    },
    /// The module exports no transaction function (`qcss_fn_<name>`).
    #[error("chaincode {code} exports no transaction function (qcss_fn_<name>)")]
    NoFunctions {
        /// Hash of the module.
        code: CodeHash,
    },
}

/// Why an invocation failed. No read-write set is produced; the peer
/// answers the proposal with status 500 and this error's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// No module with this hash was installed in this runtime.
    #[error("chaincode {code} is not installed")]
    NotInstalled {
        /// The hash asked for.
        code: CodeHash,
    },
    /// The module has no transaction function of this name.
    #[error("chaincode {code} has no function {function:?}")]
    UnknownFunction {
        /// The module.
        code: CodeHash,
        /// The name asked for.
        function: String,
    },
    /// A size or count limit was exceeded (by the caller's arguments or by
    /// the contract).
    #[error("function {function}: limit {limit} = {max} exceeded ({actual})")]
    LimitExceeded {
        /// The function called.
        function: String,
        /// Which limit.
        limit: Limit,
        /// Its value.
        max: u64,
        /// What was attempted.
        actual: u64,
    },
    /// The call used all its fuel ([`Limits::fuel`](crate::Limits::fuel)).
    #[error("function {function} ran out of fuel: the call used its whole budget of {budget} fuel")]
    OutOfFuel {
        /// The function called.
        function: String,
        /// The budget.
        budget: u64,
    },
    /// The contract trapped after the memory cap refused to grow its memory
    /// ([`Limits::memory_bytes`](crate::Limits::memory_bytes)).
    #[error("function {function} exceeded the memory cap: limit memory_bytes = {max} bytes")]
    MemoryLimit {
        /// The function called.
        function: String,
        /// The cap.
        max: u64,
    },
    /// The contract returned an error (`Err(Error::new(..))` in the SDK).
    #[error("function {function} failed: {message}")]
    Contract {
        /// The function called.
        function: String,
        /// The contract's message.
        message: String,
    },
    /// The contract panicked and reported its panic message.
    #[error("function {function} panicked: {message}")]
    Panic {
        /// The function called.
        function: String,
        /// The panic message (with its source location).
        message: String,
    },
    /// The contract trapped: `unreachable` (e.g. a panic without a message
    /// hook), out-of-bounds memory access, stack overflow, division by zero…
    #[error("function {function} trapped: {trap}")]
    Trap {
        /// The function called.
        function: String,
        /// wasmi's description of the trap.
        trap: String,
    },
    /// The contract passed a host function a pointer/length outside its memory.
    #[error(
        "function {function} passed a bad pointer to qcss.{import}: {len} bytes at {ptr} are outside its {memory_len}-byte memory"
    )]
    BadPointer {
        /// The function called.
        function: String,
        /// The host function.
        import: &'static str,
        /// The pointer.
        ptr: u32,
        /// The length.
        len: u32,
        /// The memory's size.
        memory_len: u64,
    },
    /// The contract called a host function wrongly (a key that is empty or
    /// not UTF-8, `result_read` with no staged result or the wrong length…).
    #[error("function {function} misused qcss.{import}: {reason}")]
    HostCall {
        /// The function called.
        function: String,
        /// The host function.
        import: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The entry point returned a status other than 0 (ok) or 1 (error).
    #[error("function {function} returned {returned}, which is not a status (0 = ok, 1 = error)")]
    MalformedReturn {
        /// The function called.
        function: String,
        /// What it returned.
        returned: i32,
    },
    /// The peer's state view failed: not the contract's fault.
    #[error("function {function}: reading state failed: {source}")]
    State {
        /// The function called.
        function: String,
        /// The peer's error.
        #[source]
        source: StateError,
    },
    /// Instantiating an installed module failed (should not happen: install
    /// checks what instantiation needs).
    #[error("chaincode {code} could not be instantiated: {reason}")]
    Instantiation {
        /// The module.
        code: CodeHash,
        /// wasmi's message.
        reason: String,
    },
}

impl InvokeError {
    /// `true` if the contract (its code or its input) is at fault, `false`
    /// if the peer is (state errors, a module that is not installed).
    pub fn is_contract_fault(&self) -> bool {
        !matches!(
            self,
            Self::NotInstalled { .. } | Self::State { .. } | Self::Instantiation { .. }
        )
    }
}
