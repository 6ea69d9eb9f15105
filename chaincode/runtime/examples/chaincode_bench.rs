//! Runs the chaincode benchmark on the example contract and prints the JSON
//! report (what `qcss bench chaincode` will print):
//!
//!     chaincode/build-contracts.sh
//!     cargo run --release -p qcss-chaincode --example chaincode_bench -- [seconds]

use std::{path::PathBuf, time::Duration};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5.0);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts/build/example.wasm");
    let wasm = std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e} (run chaincode/build-contracts.sh first)",
            path.display()
        )
    })?;
    let report = qcss_chaincode::bench::run(&wasm, Duration::from_secs_f64(seconds))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
