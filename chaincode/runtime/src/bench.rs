//! `qcss bench chaincode`: invocations per second of the example contract
//! on the calling thread, cold and warm, and the cost of the host boundary.
//!
//! Phases, each given an equal share of the duration (at least one call):
//! - `cold`: a new [`Runtime`], `install` (validate + compile) and the first
//!   `put`: what a peer pays the first time it sees a contract;
//! - `warm_put`, `warm_get`: the installed module, one invocation each;
//! - `warm_noop`: an invocation doing nothing: the fixed per-call overhead
//!   (fresh store and instance, entry call, argument and result transfer);
//! - `warm_touch`: an invocation making [`HOST_CALLS`] `get_state` host
//!   calls, so `host_call_us = (touch - noop) / HOST_CALLS`.
//!
//! Needs the example contract (functions `put`, `get`, `noop`, `touch`).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{
    Caller, InstallError, Invocation, InvokeError, Limits, MemoryState, Runtime, Timestamp, Version,
};

/// Host calls per `warm_touch` invocation.
pub const HOST_CALLS: u32 = 100;

/// One phase's measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// Invocations run.
    pub calls: u64,
    /// Wall time they took, seconds.
    pub seconds: f64,
    /// `calls / seconds`.
    pub per_sec: f64,
    /// Mean time per invocation, microseconds.
    pub us_per_call: f64,
}

/// The benchmark's result (printed as JSON by the CLI).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Size of the module measured, bytes.
    pub module_bytes: u64,
    /// New runtime + install + first `put`.
    pub cold: Rate,
    /// Warm `put`.
    pub warm_put: Rate,
    /// Warm `get` of an existing key.
    pub warm_get: Rate,
    /// Warm call of a function that does nothing: the per-call overhead.
    pub warm_noop: Rate,
    /// Warm call making [`HOST_CALLS`] host calls.
    pub warm_touch: Rate,
    /// Cost of one host call, microseconds: `(touch - noop) / HOST_CALLS`.
    pub host_call_us: f64,
    /// Fuel one `put` uses (deterministic).
    pub fuel_per_put: u64,
    /// Fuel one `get` uses (deterministic).
    pub fuel_per_get: u64,
}

/// The benchmark could not run: the module is not the example contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BenchError {
    /// The module did not install.
    #[error("benchmark module: {0}")]
    Install(#[from] InstallError),
    /// A call failed (does the module export put, get, noop and touch?).
    #[error("benchmark call: {0}")]
    Invoke(#[from] InvokeError),
}

/// Runs every phase for about `duration` in total, on this thread.
pub fn run(wasm: &[u8], duration: Duration) -> Result<BenchReport, BenchError> {
    let share = duration / 5;
    let limits = Limits::default();
    let put = invocation("put", &["bench-key", "bench-value"]);
    let get = invocation("get", &["bench-key"]);
    let noop = invocation("noop", &[]);
    let calls = HOST_CALLS.to_string();
    let touch = invocation("touch", &[&calls]);
    let empty = MemoryState::new();
    let mut state = MemoryState::new();
    state.insert("bench-key", "bench-value", Version { block: 1, tx: 0 });

    let cold = measure(share, || {
        let rt = Runtime::new(limits.clone());
        let code = rt.install(wasm)?;
        rt.invoke(&code, &put, &empty)?;
        Ok(())
    })?;

    let rt = Runtime::new(limits);
    let code = rt.install(wasm)?;
    let fuel_per_put = rt.invoke(&code, &put, &empty)?.fuel_used;
    let fuel_per_get = rt.invoke(&code, &get, &state)?.fuel_used;
    let warm_put = measure(share, || {
        rt.invoke(&code, &put, &empty).map(drop).map_err(Into::into)
    })?;
    let warm_get = measure(share, || {
        rt.invoke(&code, &get, &state).map(drop).map_err(Into::into)
    })?;
    let warm_noop = measure(share, || {
        rt.invoke(&code, &noop, &empty)
            .map(drop)
            .map_err(Into::into)
    })?;
    let warm_touch = measure(share, || {
        rt.invoke(&code, &touch, &empty)
            .map(drop)
            .map_err(Into::into)
    })?;
    let host_call_us =
        ((warm_touch.us_per_call - warm_noop.us_per_call) / f64::from(HOST_CALLS)).max(0.0);

    Ok(BenchReport {
        module_bytes: wasm.len() as u64,
        cold,
        warm_put,
        warm_get,
        warm_noop,
        warm_touch,
        host_call_us,
        fuel_per_put,
        fuel_per_get,
    })
}

fn measure(
    share: Duration,
    mut once: impl FnMut() -> Result<(), BenchError>,
) -> Result<Rate, BenchError> {
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        once()?;
        calls += 1;
        if start.elapsed() >= share {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Rate {
        calls,
        seconds,
        per_sec: calls as f64 / seconds,
        us_per_call: seconds * 1e6 / calls as f64,
    })
}

fn invocation(function: &str, args: &[&str]) -> Invocation {
    Invocation {
        namespace: "bench".into(),
        function: function.into(),
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        tx_id: "0".repeat(64),
        channel: "qcss".into(),
        channel_orgs: Vec::new(),
        timestamp: Timestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        },
        caller: Caller {
            msp_id: "Org1MSP".into(),
            role: "client".into(),
            ..Caller::default()
        },
    }
}
