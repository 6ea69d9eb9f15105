//! Helpers for tests that drive the traceability contract through the
//! Gateway: GS1 numbers, the clock, submit and query with JSON arguments.

use std::time::{SystemTime, UNIX_EPOCH};

/// A GS1 number with its mod-10 check digit appended.
pub use qcss_chaincode::unit_code::with_check_digit as gs1;
use qcss_peer::client::GatewayClient;
use qcss_proto::protos::TxValidationCode;
use serde_json::Value;

/// The contract's name on the test channel.
pub const CC: &str = "traceability";
/// A SHA-256 in the contract's format (of "test").
pub const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Submits `f(args)` and expects it VALID; its JSON result (`Null` if empty).
pub async fn submit(g: &mut GatewayClient, f: &str, args: Value) -> Value {
    let a = args.to_string();
    let c = g
        .submit(CC, f, &[a.as_bytes()])
        .await
        .unwrap_or_else(|e| panic!("{f} {a}: {e}"));
    assert_eq!(c.code, TxValidationCode::Valid, "{f}: {c:?}");
    if c.result.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&c.result).expect("JSON result")
    }
}

/// Evaluates `f(arg)` (a raw string argument); its JSON result.
pub async fn query(g: &mut GatewayClient, f: &str, arg: &str) -> Value {
    let r = g
        .evaluate(CC, f, &[arg.as_bytes()])
        .await
        .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
    serde_json::from_slice(&r).expect("JSON result")
}
