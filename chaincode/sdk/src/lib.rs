//! The QCSS chaincode SDK: write a contract as ordinary Rust functions and
//! build it for `wasm32-unknown-unknown`.
//!
//! A transaction is a `fn(&mut Context, args…) -> Result<R, Error>`; the
//! [`contract!`] macro exports each listed function under the name the
//! runtime calls (`qcss_fn_<name>`). The SDK hides the ABI (`chaincode/ABI.md`):
//! pointers, the host's staged results, argument decoding ([`Arg`]: raw
//! strings and bytes, integers, [`Json<T>`]), result encoding ([`Output`]),
//! and it reports panics to the host with their message.
//!
//! It deliberately has no clock, randomness or I/O: the host offers none.
//! On non-wasm targets it compiles (so its logic is unit tested here), but
//! every host call fails with a "no QCSS host" error.
//!
//! Start at [`Context`]; see `chaincode/contracts/example` for a full contract.
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

mod args;
mod composite;
mod context;
mod error;
mod sys;
mod wire;

pub use args::{Arg, Handler, Json, Output};
pub use composite::{create_composite_key, partial_key_range, split_composite_key};
pub use context::{Caller, Context, LogLevel, RangePage, Timestamp};
pub use error::Error;

/// Exports transaction functions to the runtime.
///
/// ```
/// use qcss_chaincode_sdk::{Context, Error, contract};
///
/// fn put(ctx: &mut Context, key: String, value: String) -> Result<(), Error> {
///     ctx.put_state_bytes(&key, value.as_bytes())
/// }
/// fn get(ctx: &mut Context, key: String) -> Result<Vec<u8>, Error> {
///     ctx.get_state_bytes(&key)?.ok_or_else(|| Error::new("not found"))
/// }
///
/// contract!(put, get);
/// ```
///
/// Each name must be a function in scope implementing [`Handler`]; it
/// becomes the wasm export `qcss_fn_<name>`, which clients call as `<name>`.
#[macro_export]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        $(
            const _: () = {
                #[unsafe(export_name = concat!("qcss_fn_", stringify!($name)))]
                extern "C" fn __qcss_entry() -> i32 {
                    $crate::__private::run($name)
                }
            };
        )*
    };
}

/// Used by [`contract!`]'s expansion; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::{Context, Error, Handler, sys, wire};

    /// Status returned by an entry point: the output is the payload.
    pub const STATUS_OK: i32 = 0;
    /// Status returned by an entry point: the output is an error message.
    pub const STATUS_ERROR: i32 = 1;

    /// Runs one transaction function: reads the arguments, calls it, and
    /// hands the payload or the error message to the host.
    pub fn run<M, H: Handler<M>>(handler: H) -> i32 {
        install_panic_hook();
        let result = sys::input_bytes()
            .and_then(|input| wire::decode_list(&input))
            .and_then(|args| handler.call(&mut Context::new(), args));
        finish(result)
    }

    fn finish(result: Result<Vec<u8>, Error>) -> i32 {
        match result {
            Ok(payload) => {
                sys::set_output(&payload);
                STATUS_OK
            }
            Err(err) => {
                sys::set_output(err.message().as_bytes());
                STATUS_ERROR
            }
        }
    }

    /// Sends a panic's message (with its location) to the host, which ends
    /// the invocation with it. Each invocation runs in a fresh instance, so
    /// this runs once per call.
    fn install_panic_hook() {
        #[cfg(target_arch = "wasm32")]
        std::panic::set_hook(Box::new(|info| sys::report_panic(&info.to_string())));
    }
}
