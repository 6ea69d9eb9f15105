//! Shared helpers of the integration tests: the built contracts, a
//! runtime with the example installed, callers, invocations.

#![allow(dead_code)]

use std::{collections::BTreeMap, path::PathBuf};

use qcss_chaincode::{
    Caller, CodeHash, Invocation, InvokeError, Limits, MemoryState, Runtime, Simulation, Timestamp,
};

/// The example contract built by `chaincode/build-contracts.sh`.
pub(crate) fn example_wasm() -> Vec<u8> {
    contract_wasm("example")
}

/// Contract `name` as built by `chaincode/build-contracts.sh`.
pub(crate) fn contract_wasm(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/build")
        .join(format!("{name}.wasm"));
    match std::fs::read(&path) {
        Ok(wasm) => wasm,
        Err(e) => panic!(
            "cannot read {}: {e}\nrun chaincode/build-contracts.sh first",
            path.display()
        ),
    }
}

/// A client of `msp` with the QCSS kinds `kinds` (each `=true`) and a
/// stand-in certificate naming them.
pub(crate) fn who(msp: &str, kinds: &[&str]) -> Caller {
    who_cert(msp, kinds, &format!("CERT OF {msp} {kinds:?}"))
}

/// [`who`] with `cert` as the text inside the PEM armour.
pub(crate) fn who_cert(msp: &str, kinds: &[&str], cert: &str) -> Caller {
    Caller {
        msp_id: msp.into(),
        role: "client".into(),
        attributes: kinds
            .iter()
            .map(|k| ((*k).to_owned(), "true".to_owned()))
            .collect::<BTreeMap<_, _>>(),
        cert_pem: format!("-----BEGIN CERTIFICATE-----\n{cert}\n-----END CERTIFICATE-----\n"),
    }
}

/// A runtime with the example installed.
pub(crate) fn runtime(limits: Limits) -> (Runtime, CodeHash) {
    let rt = Runtime::new(limits);
    let code = rt.install(&example_wasm()).expect("example installs");
    (rt, code)
}

pub(crate) fn alice() -> Caller {
    Caller {
        msp_id: "Org1MSP".into(),
        role: "client".into(),
        attributes: BTreeMap::from([
            ("enterprise".to_owned(), "acme".to_owned()),
            ("lab".to_owned(), "true".to_owned()),
        ]),
        cert_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
    }
}

pub(crate) fn inv(function: &str, args: &[&str]) -> Invocation {
    Invocation {
        namespace: "example".into(),
        function: function.into(),
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        tx_id: "5f1c0a".into(),
        channel: "qcss".into(),
        channel_orgs: Vec::new(),
        timestamp: Timestamp {
            seconds: 1_764_000_000,
            nanos: 123_456_789,
        },
        caller: alice(),
    }
}

pub(crate) fn call(
    rt: &Runtime,
    code: &CodeHash,
    state: &MemoryState,
    function: &str,
    args: &[&str],
) -> Result<Simulation, InvokeError> {
    rt.invoke(code, &inv(function, args), state)
}

/// Proves the runtime still works: a put and a get on a fresh state.
pub(crate) fn still_serves(rt: &Runtime, code: &CodeHash) {
    let mut state = MemoryState::new();
    let sim = call(rt, code, &state, "put", &["alive", "yes"]).expect("put after a failure");
    state.apply(&sim, qcss_chaincode::Version { block: 1, tx: 0 });
    let sim = call(rt, code, &state, "get", &["alive"]).expect("get after a failure");
    assert_eq!(sim.response.payload, b"yes");
}
