//! The raw host calls of the `qcss` import module (see `chaincode/ABI.md`),
//! wrapped into safe functions. This is the only module with `unsafe` code.
//!
//! On targets other than wasm32 there is no host: every call returns
//! [`no_host`] so that the SDK still compiles (and its pure logic can be
//! unit tested) on the developer's machine.

use crate::Error;

/// The error every host call returns outside the runtime.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn no_host() -> Error {
    Error::new("no QCSS host: host calls work only inside the chaincode runtime (wasm32)")
}

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod wasm {
    //! SAFETY (for every `unsafe` block below): the host functions only read
    //! or write the guest memory range `[ptr, ptr + len)` they are given, and
    //! they check that range against the memory size (a bad range ends the
    //! invocation with an error; it is never accessed). Every pointer passed
    //! here comes from a live slice or `Vec` of exactly `len` bytes, so the
    //! host never touches memory Rust does not consider borrowed for the call.

    use crate::Error;

    #[link(wasm_import_module = "qcss")]
    unsafe extern "C" {
        fn input() -> i64;
        fn result_read(dst: *mut u8, len: usize);
        fn get_state(key: *const u8, key_len: usize) -> i64;
        fn put_state(key: *const u8, key_len: usize, val: *const u8, val_len: usize);
        fn delete_state(key: *const u8, key_len: usize);
        fn get_state_range(
            start: *const u8,
            start_len: usize,
            end: *const u8,
            end_len: usize,
            limit: u32,
        ) -> i64;
        fn get_key_policy(key: *const u8, key_len: usize) -> i64;
        fn set_key_policy(key: *const u8, key_len: usize, pol: *const u8, pol_len: usize);
        fn caller() -> i64;
        fn tx_id() -> i64;
        fn channel_id() -> i64;
        fn channel_orgs() -> i64;
        fn tx_timestamp() -> i64;
        fn tx_timestamp_nanos() -> i32;
        fn set_event(name: *const u8, name_len: usize, payload: *const u8, payload_len: usize);
        fn log(level: u32, msg: *const u8, msg_len: usize);
        fn output(data: *const u8, len: usize);
        fn panic(msg: *const u8, msg_len: usize);
        fn verify_ed25519(
            key: *const u8,
            key_len: usize,
            msg: *const u8,
            msg_len: usize,
            sig: *const u8,
            sig_len: usize,
        ) -> i32;
    }

    /// Fetches the result the host staged for the previous call, whose
    /// length that call returned (negative = absent).
    fn staged(len: i64) -> Option<Vec<u8>> {
        let len = usize::try_from(len).ok()?;
        let mut buf = vec![0u8; len];
        unsafe { result_read(buf.as_mut_ptr(), buf.len()) };
        Some(buf)
    }

    pub(crate) fn input_bytes() -> Result<Vec<u8>, Error> {
        Ok(staged(unsafe { input() }).unwrap_or_default())
    }

    pub(crate) fn state_get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(staged(unsafe { get_state(key.as_ptr(), key.len()) }))
    }

    pub(crate) fn state_put(key: &str, value: &[u8]) -> Result<(), Error> {
        unsafe { put_state(key.as_ptr(), key.len(), value.as_ptr(), value.len()) };
        Ok(())
    }

    pub(crate) fn state_delete(key: &str) -> Result<(), Error> {
        unsafe { delete_state(key.as_ptr(), key.len()) };
        Ok(())
    }

    pub(crate) fn state_range(start: &str, end: &str, limit: u32) -> Result<Vec<u8>, Error> {
        let len =
            unsafe { get_state_range(start.as_ptr(), start.len(), end.as_ptr(), end.len(), limit) };
        Ok(staged(len).unwrap_or_default())
    }

    pub(crate) fn key_policy_get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(staged(unsafe { get_key_policy(key.as_ptr(), key.len()) }))
    }

    pub(crate) fn key_policy_set(key: &str, policy: &[u8]) -> Result<(), Error> {
        unsafe { set_key_policy(key.as_ptr(), key.len(), policy.as_ptr(), policy.len()) };
        Ok(())
    }

    pub(crate) fn caller_json() -> Result<Vec<u8>, Error> {
        Ok(staged(unsafe { caller() }).unwrap_or_default())
    }

    pub(crate) fn tx_id_bytes() -> Result<Vec<u8>, Error> {
        Ok(staged(unsafe { tx_id() }).unwrap_or_default())
    }

    pub(crate) fn channel_bytes() -> Result<Vec<u8>, Error> {
        Ok(staged(unsafe { channel_id() }).unwrap_or_default())
    }

    pub(crate) fn channel_orgs_json() -> Result<Vec<u8>, Error> {
        Ok(staged(unsafe { channel_orgs() }).unwrap_or_default())
    }

    pub(crate) fn timestamp() -> Result<(i64, i32), Error> {
        Ok(unsafe { (tx_timestamp(), tx_timestamp_nanos()) })
    }

    pub(crate) fn event_set(name: &str, payload: &[u8]) -> Result<(), Error> {
        unsafe { set_event(name.as_ptr(), name.len(), payload.as_ptr(), payload.len()) };
        Ok(())
    }

    pub(crate) fn log_message(level: u32, message: &str) {
        unsafe { log(level, message.as_ptr(), message.len()) };
    }

    pub(crate) fn set_output(data: &[u8]) {
        unsafe { output(data.as_ptr(), data.len()) };
    }

    pub(crate) fn ed25519_verify(key: &[u8], msg: &[u8], sig: &[u8]) -> Result<bool, Error> {
        let valid = unsafe {
            verify_ed25519(
                key.as_ptr(),
                key.len(),
                msg.as_ptr(),
                msg.len(),
                sig.as_ptr(),
                sig.len(),
            )
        };
        Ok(valid == 1)
    }

    pub(crate) fn report_panic(message: &str) {
        unsafe { panic(message.as_ptr(), message.len()) };
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::no_host;
    use crate::Error;

    pub(crate) fn input_bytes() -> Result<Vec<u8>, Error> {
        Err(no_host())
    }
    pub(crate) fn state_get(_key: &str) -> Result<Option<Vec<u8>>, Error> {
        Err(no_host())
    }
    pub(crate) fn state_put(_key: &str, _value: &[u8]) -> Result<(), Error> {
        Err(no_host())
    }
    pub(crate) fn state_delete(_key: &str) -> Result<(), Error> {
        Err(no_host())
    }
    pub(crate) fn state_range(_start: &str, _end: &str, _limit: u32) -> Result<Vec<u8>, Error> {
        Err(no_host())
    }
    pub(crate) fn key_policy_get(_key: &str) -> Result<Option<Vec<u8>>, Error> {
        Err(no_host())
    }
    pub(crate) fn key_policy_set(_key: &str, _policy: &[u8]) -> Result<(), Error> {
        Err(no_host())
    }
    pub(crate) fn caller_json() -> Result<Vec<u8>, Error> {
        Err(no_host())
    }
    pub(crate) fn tx_id_bytes() -> Result<Vec<u8>, Error> {
        Err(no_host())
    }
    pub(crate) fn channel_bytes() -> Result<Vec<u8>, Error> {
        Err(no_host())
    }
    pub(crate) fn channel_orgs_json() -> Result<Vec<u8>, Error> {
        Err(no_host())
    }
    pub(crate) fn timestamp() -> Result<(i64, i32), Error> {
        Err(no_host())
    }
    pub(crate) fn event_set(_name: &str, _payload: &[u8]) -> Result<(), Error> {
        Err(no_host())
    }
    pub(crate) fn ed25519_verify(_key: &[u8], _msg: &[u8], _sig: &[u8]) -> Result<bool, Error> {
        Err(no_host())
    }
    pub(crate) fn log_message(_level: u32, _message: &str) {}
    pub(crate) fn set_output(_data: &[u8]) {}
}
