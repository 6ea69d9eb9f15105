//! Example QCSS contract, used by the runtime's tests and benchmark.
//!
//! A key-value store (`put`, `get`, `del`, `range`), composite keys
//! (`put_asset`, `assets_of`), a counter (`incr`), the caller and
//! transaction facts (`whoami`, `txinfo`), an event (`emit`), key-level
//! endorsement policies (`set_policy`, `get_policy`), benchmark helpers
//! (`noop`, `touch`), floats through serde_json (`average`), and functions
//! that misbehave on purpose (`loop_forever`, `panic`, `alloc_unbounded`,
//! `big_write`, `fail`).

use qcss_chaincode_sdk::{
    Context, Error, Json, contract, create_composite_key, split_composite_key,
};
use serde::Serialize;

contract!(
    put,
    get,
    del,
    range,
    put_asset,
    assets_of,
    incr,
    whoami,
    txinfo,
    emit,
    set_policy,
    get_policy,
    noop,
    touch,
    average,
    loop_forever,
    panic,
    alloc_unbounded,
    big_write,
    fail,
);

#[derive(Serialize)]
struct Row {
    key: String,
    value: String,
}

/// Stores `value` (raw UTF-8) under `key`.
fn put(ctx: &mut Context, key: String, value: String) -> Result<(), Error> {
    ctx.put_state_bytes(&key, value.as_bytes())
}

/// Returns the value under `key`; an error if absent.
fn get(ctx: &mut Context, key: String) -> Result<Vec<u8>, Error> {
    ctx.get_state_bytes(&key)?
        .ok_or_else(|| Error::new(format!("key {key:?} not found")))
}

/// Deletes `key`.
fn del(ctx: &mut Context, key: String) -> Result<(), Error> {
    ctx.delete_state(&key)
}

/// Lists `[start, end)`, at most `limit` rows, as JSON `[{key, value}]`.
fn range(
    ctx: &mut Context,
    start: String,
    end: String,
    limit: u32,
) -> Result<Json<Vec<Row>>, Error> {
    let page = ctx.range_bytes(&start, &end, limit)?;
    let rows = page
        .rows
        .into_iter()
        .map(|(key, value)| {
            Ok(Row {
                key,
                value: String::from_utf8(value)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Json(rows))
}

/// Stores an asset under the composite key `asset/owner/id` (JSON value).
fn put_asset(ctx: &mut Context, owner: String, id: String, value: String) -> Result<String, Error> {
    let key = create_composite_key("asset", &[&owner, &id])?;
    ctx.put_state(&key, &value)?;
    Ok(key)
}

/// Lists `owner`'s assets as JSON `[{key: id, value}]`, via a partial key.
fn assets_of(ctx: &mut Context, owner: String) -> Result<Json<Vec<Row>>, Error> {
    let page = ctx.range_by_partial_key::<String>("asset", &[&owner], 0)?;
    let rows = page
        .rows
        .into_iter()
        .map(|(key, value)| {
            let (_, attrs) = split_composite_key(&key)?;
            let id = attrs.get(1).cloned().unwrap_or_default();
            Ok(Row { key: id, value })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Json(rows))
}

/// Adds one to the JSON counter under `key` and returns the new value.
fn incr(ctx: &mut Context, key: String) -> Result<u64, Error> {
    let next = ctx.get_state::<u64>(&key)?.unwrap_or(0) + 1;
    ctx.put_state(&key, &next)?;
    Ok(next)
}

/// The caller's identity as JSON.
fn whoami(ctx: &mut Context) -> Result<Json<qcss_chaincode_sdk::Caller>, Error> {
    Ok(Json(ctx.caller()?.clone()))
}

#[derive(Serialize)]
struct TxInfo {
    tx_id: String,
    seconds: i64,
    nanos: i32,
}

/// The transaction id and timestamp as JSON.
fn txinfo(ctx: &mut Context) -> Result<Json<TxInfo>, Error> {
    let ts = ctx.tx_timestamp()?;
    Ok(Json(TxInfo {
        tx_id: ctx.tx_id()?,
        seconds: ts.seconds,
        nanos: ts.nanos,
    }))
}

/// Sets the transaction's event `name` with `payload` (raw).
fn emit(ctx: &mut Context, name: String, payload: String) -> Result<(), Error> {
    ctx.log(&format!("emitting {name}"));
    ctx.set_event_bytes(&name, payload.as_bytes())
}

/// Sets `key`'s key-level endorsement policy (admins only).
fn set_policy(ctx: &mut Context, key: String, policy: String) -> Result<(), Error> {
    ctx.caller()?.require_role("admin")?;
    ctx.set_key_policy(&key, policy.as_bytes())
}

/// Returns `key`'s key-level endorsement policy, or an empty payload.
fn get_policy(ctx: &mut Context, key: String) -> Result<Vec<u8>, Error> {
    Ok(ctx.get_key_policy(&key)?.unwrap_or_default())
}

/// Does nothing (benchmark: the cost of an invocation).
fn noop(_ctx: &mut Context) -> Result<(), Error> {
    Ok(())
}

/// Reads one missing key `n` times (benchmark: the cost of a host call).
fn touch(ctx: &mut Context, n: u32) -> Result<(), Error> {
    for _ in 0..n {
        ctx.get_state_bytes("touch")?;
    }
    Ok(())
}

/// The mean of a JSON array of numbers (floats through serde_json).
fn average(_ctx: &mut Context, values: Json<Vec<f64>>) -> Result<Json<f64>, Error> {
    let values = values.0;
    if values.is_empty() {
        return Err(Error::new("no values"));
    }
    Ok(Json(values.iter().sum::<f64>() / values.len() as f64))
}

/// Never returns: the runtime must stop it with its fuel budget.
fn loop_forever(_ctx: &mut Context) -> Result<(), Error> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Panics with `message`.
fn panic(_ctx: &mut Context, message: String) -> Result<(), Error> {
    panic!("{message}")
}

/// Allocates 1 MiB blocks until memory runs out.
fn alloc_unbounded(_ctx: &mut Context) -> Result<(), Error> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}

/// Writes a value of `size` bytes under `big` (over the value limit when large).
fn big_write(ctx: &mut Context, size: u32) -> Result<(), Error> {
    ctx.put_state_bytes("big", &vec![b'x'; size as usize])
}

/// Returns a contract error with `message`.
fn fail(_ctx: &mut Context, message: String) -> Result<(), Error> {
    Err(Error::new(message))
}
