//! The benchmark runs and reports sensible, non-zero figures (no timing
//! assertions: CI machines vary).

mod common;

use std::time::Duration;

use qcss_chaincode::bench;

#[test]
fn short_benchmark_report_is_well_formed() {
    let report = bench::run(&common::example_wasm(), Duration::from_millis(50)).unwrap();
    for (name, rate) in [
        ("cold", &report.cold),
        ("warm_put", &report.warm_put),
        ("warm_get", &report.warm_get),
        ("warm_noop", &report.warm_noop),
        ("warm_touch", &report.warm_touch),
    ] {
        assert!(rate.calls >= 1, "{name}");
        assert!(
            rate.seconds > 0.0 && rate.per_sec > 0.0 && rate.us_per_call > 0.0,
            "{name}: {rate:?}"
        );
    }
    assert!(report.host_call_us >= 0.0 && report.host_call_us.is_finite());
    assert!(report.fuel_per_put > 0 && report.fuel_per_get > 0);
    assert_eq!(report.module_bytes, common::example_wasm().len() as u64);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["warm_put"]["per_sec"].is_number());
}

#[test]
fn benchmark_of_a_module_without_the_functions_is_an_error() {
    let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "qcss_fn_x") (result i32) i32.const 0))"#).unwrap();
    let err = bench::run(&wasm, Duration::from_millis(1)).unwrap_err();
    assert!(err.to_string().contains("has no function \"put\""), "{err}");
}
