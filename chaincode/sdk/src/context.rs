//! [`Context`]: what a transaction function uses to reach the ledger and
//! learn about its transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{Error, composite, sys, wire};

/// The identity that signed the proposal, as the peer's MSP established it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The caller's organisation (MSP id), e.g. `Org1MSP`.
    pub msp_id: String,
    /// The node-OU role: `admin`, `client`, `peer` or `orderer`.
    pub role: String,
    /// QCSS attributes from the certificate (e.g. `lab` → `true`).
    pub attributes: BTreeMap<String, String>,
    /// The signing certificate, PEM.
    pub cert_pem: String,
}

impl Caller {
    /// The attribute's value, if the certificate carries it.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    /// Fails unless the caller has role `role`.
    pub fn require_role(&self, role: &str) -> Result<(), Error> {
        if self.role == role {
            Ok(())
        } else {
            Err(Error::new(format!(
                "access denied: role {role:?} required, caller has {:?}",
                self.role
            )))
        }
    }

    /// Fails unless the caller belongs to organisation `msp_id`.
    pub fn require_msp(&self, msp_id: &str) -> Result<(), Error> {
        if self.msp_id == msp_id {
            Ok(())
        } else {
            Err(Error::new(format!(
                "access denied: organisation {msp_id:?} required, caller is in {:?}",
                self.msp_id
            )))
        }
    }

    /// Fails unless the caller's certificate carries attribute `name`;
    /// returns its value.
    pub fn require_attr(&self, name: &str) -> Result<&str, Error> {
        self.attr(name)
            .ok_or_else(|| Error::new(format!("access denied: attribute {name:?} required")))
    }

    /// Fails unless attribute `name` has exactly the value `value`.
    pub fn require_attr_value(&self, name: &str, value: &str) -> Result<(), Error> {
        match self.attr(name) {
            Some(v) if v == value => Ok(()),
            _ => Err(Error::new(format!(
                "access denied: attribute {name:?} = {value:?} required"
            ))),
        }
    }
}

/// The transaction's timestamp, taken from the signed proposal (never a clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

/// One page of a range scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePage<T> {
    /// `(key, value)` rows in key order.
    pub rows: Vec<(String, T)>,
    /// `true` when the scan stopped at the limit and more keys exist; scan
    /// again from just after the last key to continue.
    pub more: bool,
}

/// Log levels for [`Context::log_at`]; all end up in the peer's debug log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    /// Something failed.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// Normal progress.
    Info = 2,
    /// Detail.
    Debug = 3,
}

/// The handle a transaction function receives: state, caller, transaction
/// facts, events and logs. State reads see this transaction's own earlier
/// writes; range scans see committed state only (as in Fabric).
#[derive(Debug, Default)]
pub struct Context {
    caller: Option<Caller>,
}

impl Context {
    /// A context for the current invocation (the [`contract!`](crate::contract)
    /// entry points create it; contracts don't need to).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `key` and decodes its value as JSON; `None` if absent.
    pub fn get_state<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Error> {
        match self.get_state_bytes(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::from(e).context(format_args!("state key {key:?}"))),
            None => Ok(None),
        }
    }

    /// Reads `key`'s raw value; `None` if absent.
    pub fn get_state_bytes(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        sys::state_get(key)
    }

    /// Writes `value` as JSON under `key`.
    pub fn put_state<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value)?;
        sys::state_put(key, &bytes)
    }

    /// Writes raw bytes under `key`.
    pub fn put_state_bytes(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        sys::state_put(key, value)
    }

    /// Deletes `key` (a no-op for the ledger if it is absent, but still recorded).
    pub fn delete_state(&mut self, key: &str) -> Result<(), Error> {
        sys::state_delete(key)
    }

    /// Scans keys in `[start, end)` (an empty `end` means no upper bound),
    /// returning at most `limit` rows (0 = the runtime's maximum) with raw values.
    pub fn range_bytes(
        &mut self,
        start: &str,
        end: &str,
        limit: u32,
    ) -> Result<RangePage<Vec<u8>>, Error> {
        let bytes = sys::state_range(start, end, limit)?;
        let (rows, more) = wire::decode_range(&bytes)?;
        Ok(RangePage { rows, more })
    }

    /// As [`range_bytes`](Self::range_bytes), decoding each value as JSON.
    pub fn range<T: DeserializeOwned>(
        &mut self,
        start: &str,
        end: &str,
        limit: u32,
    ) -> Result<RangePage<T>, Error> {
        let page = self.range_bytes(start, end, limit)?;
        decode_rows(page)
    }

    /// Scans the composite keys of `object_type` whose attributes start with
    /// `attributes`, decoding values as JSON.
    pub fn range_by_partial_key<T: DeserializeOwned>(
        &mut self,
        object_type: &str,
        attributes: &[&str],
        limit: u32,
    ) -> Result<RangePage<T>, Error> {
        let (start, end) = composite::partial_key_range(object_type, attributes)?;
        self.range(&start, &end, limit)
    }

    /// The caller's identity (fetched once per invocation).
    pub fn caller(&mut self) -> Result<&Caller, Error> {
        if self.caller.is_none() {
            let bytes = sys::caller_json()?;
            self.caller = Some(serde_json::from_slice(&bytes)?);
        }
        self.caller
            .as_ref()
            .ok_or_else(|| Error::new("caller identity unavailable"))
    }

    /// The transaction id (hex SHA-256 of nonce ‖ creator).
    pub fn tx_id(&self) -> Result<String, Error> {
        Ok(String::from_utf8(sys::tx_id_bytes()?)?)
    }

    /// The channel (ledger) this transaction is for.
    pub fn channel_id(&self) -> Result<String, Error> {
        Ok(String::from_utf8(sys::channel_bytes()?)?)
    }

    /// The channel's member organisations (MSP IDs, sorted), as the
    /// endorsing peer's channel configuration lists them. Empty from a peer
    /// that does not provide them.
    pub fn channel_orgs(&self) -> Result<Vec<String>, Error> {
        let json = sys::channel_orgs_json()?;
        if json.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&json)
            .map_err(|e| Error::new(format!("channel_orgs from the host: {e}")))
    }

    /// The proposal's timestamp.
    pub fn tx_timestamp(&self) -> Result<Timestamp, Error> {
        let (seconds, nanos) = sys::timestamp()?;
        Ok(Timestamp { seconds, nanos })
    }

    /// Sets the transaction's event (JSON payload). As in Fabric a
    /// transaction carries one event: a later call replaces an earlier one.
    pub fn set_event<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        payload: &T,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(payload)?;
        sys::event_set(name, &bytes)
    }

    /// Sets the transaction's event with a raw payload.
    pub fn set_event_bytes(&mut self, name: &str, payload: &[u8]) -> Result<(), Error> {
        sys::event_set(name, payload)
    }

    /// The key-level endorsement policy of `key`, if one is set.
    pub fn get_key_policy(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        sys::key_policy_get(key)
    }

    /// Sets `key`'s key-level endorsement policy; an empty policy removes it.
    pub fn set_key_policy(&mut self, key: &str, policy: &[u8]) -> Result<(), Error> {
        sys::key_policy_set(key, policy)
    }

    /// Checks an Ed25519 signature (RFC 8032; a 32-byte public key and a
    /// 64-byte signature) on the host, far cheaper in fuel than verifying in
    /// wasm. Malformed keys or signatures are simply not valid (`false`).
    pub fn verify_ed25519(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, Error> {
        sys::ed25519_verify(public_key, message, signature)
    }

    /// Writes a line to the peer's debug log (bounded per invocation).
    pub fn log(&self, message: &str) {
        sys::log_message(LogLevel::Info as u32, message);
    }

    /// Writes a line at `level` to the peer's debug log.
    pub fn log_at(&self, level: LogLevel, message: &str) {
        sys::log_message(level as u32, message);
    }
}

fn decode_rows<T: DeserializeOwned>(page: RangePage<Vec<u8>>) -> Result<RangePage<T>, Error> {
    let rows = page
        .rows
        .into_iter()
        .map(|(key, value)| match serde_json::from_slice(&value) {
            Ok(v) => Ok((key, v)),
            Err(e) => Err(Error::from(e).context(format_args!("state key {key:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RangePage {
        rows,
        more: page.more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Caller {
        Caller {
            msp_id: "Org1MSP".into(),
            role: "client".into(),
            attributes: [("lab".to_owned(), "true".to_owned())].into(),
            cert_pem: String::new(),
        }
    }

    #[test]
    fn caller_checks() {
        let c = alice();
        assert!(c.require_role("client").is_ok());
        assert!(
            c.require_role("admin")
                .unwrap_err()
                .message()
                .contains("\"admin\" required")
        );
        assert!(c.require_msp("Org1MSP").is_ok());
        assert!(c.require_msp("Org2MSP").is_err());
        assert_eq!(c.require_attr("lab").unwrap(), "true");
        assert!(c.require_attr("regulator").is_err());
        assert!(c.require_attr_value("lab", "true").is_ok());
        assert!(c.require_attr_value("lab", "false").is_err());
    }

    #[test]
    fn caller_json_shape_is_the_abi_one() {
        let json =
            r#"{"msp_id":"Org1MSP","role":"client","attributes":{"lab":"true"},"cert_pem":""}"#;
        assert_eq!(serde_json::from_str::<Caller>(json).unwrap(), alice());
    }

    #[test]
    fn rows_decode_as_json_with_key_in_errors() {
        let page = RangePage {
            rows: vec![("a".into(), b"1".to_vec())],
            more: true,
        };
        let typed: RangePage<u32> = decode_rows(page).unwrap();
        assert_eq!(typed.rows, vec![("a".to_owned(), 1)]);
        assert!(typed.more);
        let bad = RangePage {
            rows: vec![("k".into(), b"x".to_vec())],
            more: false,
        };
        let err = decode_rows::<u32>(bad).unwrap_err();
        assert!(err.message().starts_with("state key \"k\": JSON"), "{err}");
    }

    #[test]
    fn outside_the_runtime_host_calls_fail_cleanly() {
        let mut ctx = Context::new();
        assert!(
            ctx.get_state::<u32>("k")
                .unwrap_err()
                .message()
                .contains("no QCSS host")
        );
        assert!(ctx.caller().is_err());
        ctx.log("ignored");
    }
}
