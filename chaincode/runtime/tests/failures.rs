//! Every way a contract can fail becomes an error with a message, never a
//! host panic, and the runtime serves the next call normally.

mod common;

use common::{call, example_wasm, inv, runtime, still_serves};
use qcss_chaincode::{CodeHash, InstallError, InvokeError, Limit, Limits, MemoryState, Runtime};

fn wat_module(rt: &Runtime, body: &str) -> CodeHash {
    let wasm = wat::parse_str(format!(
        r#"(module
            (import "qcss" "get_state" (func $get_state (param i32 i32) (result i64)))
            (import "qcss" "result_read" (func $result_read (param i32 i32)))
            (import "qcss" "output" (func $output (param i32 i32)))
            (import "qcss" "put_state" (func $put_state (param i32 i32 i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "key")
            {body})"#
    ))
    .unwrap();
    rt.install(&wasm).unwrap()
}

#[test]
fn loop_runs_out_of_fuel() {
    let (rt, code) = runtime(Limits::default());
    let err = call(&rt, &code, &MemoryState::new(), "loop_forever", &[]).unwrap_err();
    assert_eq!(
        err,
        InvokeError::OutOfFuel {
            function: "loop_forever".into(),
            budget: 10_000_000
        }
    );
    assert_eq!(
        err.to_string(),
        "function loop_forever ran out of fuel: the call used its whole budget of 10000000 fuel"
    );
    still_serves(&rt, &code);
}

#[test]
fn host_calls_cost_fuel_too() {
    let (rt, code) = runtime(Limits {
        fuel: 200_000,
        ..Limits::default()
    });
    let err = call(&rt, &code, &MemoryState::new(), "touch", &["1000000"]).unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::OutOfFuel {
                budget: 200_000,
                ..
            }
        ),
        "{err}"
    );
    still_serves(&rt, &code);
}

#[test]
fn panic_is_reported_with_its_message() {
    let (rt, code) = runtime(Limits::default());
    let err = call(
        &rt,
        &code,
        &MemoryState::new(),
        "panic",
        &["the sky is falling"],
    )
    .unwrap_err();
    let InvokeError::Panic { function, message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(function, "panic");
    assert!(message.contains("the sky is falling"), "{message}");
    assert!(
        message.contains("src/lib.rs"),
        "location missing: {message}"
    );
    still_serves(&rt, &code);
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let (rt, code) = runtime(Limits::default());
    let err = call(&rt, &code, &MemoryState::new(), "alloc_unbounded", &[]).unwrap_err();
    assert_eq!(
        err,
        InvokeError::MemoryLimit {
            function: "alloc_unbounded".into(),
            max: 16 << 20
        }
    );
    assert_eq!(
        err.to_string(),
        "function alloc_unbounded exceeded the memory cap: limit memory_bytes = 16777216 bytes"
    );
    still_serves(&rt, &code);
}

#[test]
fn oversize_value_is_refused() {
    let (rt, code) = runtime(Limits::default());
    let err = call(&rt, &code, &MemoryState::new(), "big_write", &["2000000"]).unwrap_err();
    assert_eq!(
        err,
        InvokeError::LimitExceeded {
            function: "big_write".into(),
            limit: Limit::ValueBytes,
            max: 1 << 20,
            actual: 2_000_000
        }
    );
    assert_eq!(
        err.to_string(),
        "function big_write: limit value_bytes = 1048576 exceeded (2000000)"
    );
    // Just under the limit is fine.
    call(&rt, &code, &MemoryState::new(), "big_write", &["1048576"]).unwrap();
    still_serves(&rt, &code);
}

#[test]
fn oversize_arguments_payload_and_keys_are_refused() {
    let (rt, code) = runtime(Limits {
        args_bytes: 64,
        payload_bytes: 8,
        key_bytes: 16,
        ..Limits::default()
    });
    let big = "x".repeat(100);
    let err = call(&rt, &code, &MemoryState::new(), "put", &["k", &big]).unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::LimitExceeded {
                limit: Limit::ArgsBytes,
                max: 64,
                actual: 116,
                ..
            }
        ),
        "{err}"
    );

    let mut many = inv("put", &[]);
    many.args = vec![Vec::new(); 20];
    let err = rt.invoke(&code, &many, &MemoryState::new()).unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::LimitExceeded {
                limit: Limit::ArgsBytes,
                actual: 87,
                ..
            }
        ),
        "{err}"
    );

    let mut state = MemoryState::new();
    state.insert(
        "k",
        "123456789",
        qcss_chaincode::Version { block: 1, tx: 0 },
    );
    let err = call(&rt, &code, &state, "get", &["k"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function get: limit payload_bytes = 8 exceeded (9)"
    );

    let err = call(&rt, &code, &state, "put", &["a-key-of-17-bytes", "v"]).unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::LimitExceeded {
                limit: Limit::KeyBytes,
                max: 16,
                actual: 17,
                ..
            }
        ),
        "{err}"
    );
    let err = call(&rt, &code, &state, "put", &["", "v"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function put misused qcss.put_state: empty key"
    );
    still_serves(&rt, &code);
}

#[test]
fn contract_error_carries_its_message() {
    let (rt, code) = runtime(Limits::default());
    let err = call(
        &rt,
        &code,
        &MemoryState::new(),
        "fail",
        &["insufficient funds"],
    )
    .unwrap_err();
    assert_eq!(
        err,
        InvokeError::Contract {
            function: "fail".into(),
            message: "insufficient funds".into()
        }
    );
    assert!(err.is_contract_fault());
    still_serves(&rt, &code);
}

#[test]
fn unknown_function_and_unknown_code() {
    let (rt, code) = runtime(Limits::default());
    let err = call(&rt, &code, &MemoryState::new(), "transfer", &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("chaincode {code} has no function \"transfer\"")
    );
    let other = CodeHash::of(b"not installed");
    let err = rt
        .invoke(&other, &inv("put", &[]), &MemoryState::new())
        .unwrap_err();
    assert_eq!(err, InvokeError::NotInstalled { code: other });
    assert!(!err.is_contract_fault());
    still_serves(&rt, &code);
}

#[test]
fn bad_pointers_passed_to_the_host_are_errors() {
    let (rt, code) = runtime(Limits::default());
    let module = wat_module(
        &rt,
        r#"
        (func (export "qcss_fn_key_past_end") (result i32)
            (drop (call $get_state (i32.const 65535) (i32.const 2))) (i32.const 0))
        (func (export "qcss_fn_negative_len") (result i32)
            (call $output (i32.const 0) (i32.const -1)) (i32.const 0))
        (func (export "qcss_fn_huge_ptr") (result i32)
            (call $put_state (i32.const 0) (i32.const 3) (i32.const -16) (i32.const 32)) (i32.const 0))
        (func (export "qcss_fn_read_wrong_len") (result i32)
            (call $put_state (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 3))
            (drop (call $get_state (i32.const 0) (i32.const 3)))
            (call $result_read (i32.const 100) (i32.const 2)) (i32.const 0))
        (func (export "qcss_fn_read_nothing") (result i32)
            (call $result_read (i32.const 100) (i32.const 0)) (i32.const 0))
        (func (export "qcss_fn_read_past_end") (result i32)
            (call $put_state (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 3))
            (drop (call $get_state (i32.const 0) (i32.const 3)))
            (call $result_read (i32.const 65534) (i32.const 3)) (i32.const 0))
        "#,
    );
    let s = MemoryState::new();
    let err = rt
        .invoke(&module, &inv("key_past_end", &[]), &s)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "function key_past_end passed a bad pointer to qcss.get_state: 2 bytes at 65535 are outside its 65536-byte memory"
    );
    let err = rt
        .invoke(&module, &inv("negative_len", &[]), &s)
        .unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::BadPointer {
                import: "output",
                ptr: 0,
                len: u32::MAX,
                ..
            }
        ),
        "{err}"
    );
    let err = rt.invoke(&module, &inv("huge_ptr", &[]), &s).unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::BadPointer {
                import: "put_state",
                ptr: 0xFFFF_FFF0,
                len: 32,
                ..
            }
        ),
        "{err}"
    );
    let err = rt
        .invoke(&module, &inv("read_wrong_len", &[]), &s)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "function read_wrong_len misused qcss.result_read: asked for 2 bytes but 3 are staged"
    );
    let err = rt
        .invoke(&module, &inv("read_nothing", &[]), &s)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "function read_nothing misused qcss.result_read: no result is staged"
    );
    let err = rt
        .invoke(&module, &inv("read_past_end", &[]), &s)
        .unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::BadPointer {
                import: "result_read",
                ptr: 65534,
                len: 3,
                ..
            }
        ),
        "{err}"
    );
    still_serves(&rt, &code);
}

#[test]
fn traps_and_malformed_returns_are_errors() {
    let (rt, code) = runtime(Limits::default());
    let module = wat_module(
        &rt,
        r#"
        (func (export "qcss_fn_status7") (result i32) (i32.const 7))
        (func (export "qcss_fn_oob") (result i32) (i32.load (i32.const 70000)))
        (func (export "qcss_fn_unreachable") (result i32) unreachable)
        (func (export "qcss_fn_div0") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))
        (func $rec (export "qcss_fn_recurse") (result i32) (call $rec))
        "#,
    );
    let s = MemoryState::new();
    let err = rt.invoke(&module, &inv("status7", &[]), &s).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function status7 returned 7, which is not a status (0 = ok, 1 = error)"
    );
    for (f, needle) in [
        ("oob", "out of bounds"),
        ("unreachable", "unreachable"),
        ("div0", "divide by zero"),
        ("recurse", "stack exhausted"),
    ] {
        let err = rt.invoke(&module, &inv(f, &[]), &s).unwrap_err();
        let InvokeError::Trap { trap, .. } = &err else {
            panic!("{f}: {err:?}")
        };
        assert!(trap.to_lowercase().contains(needle), "{f}: {trap}");
    }
    still_serves(&rt, &code);
}

#[test]
fn floats_are_deterministic_nans_are_canonical() {
    // x86-64 produces a negative NaN (0xFFF8…) for 0/0; the deterministic
    // profile must give the canonical positive one on every machine.
    let rt = Runtime::new(Limits::default());
    let module = wat_module(
        &rt,
        r#"
        (func (export "qcss_fn_nan") (result i32)
            (i64.store (i32.const 16) (i64.reinterpret_f64 (f64.div (f64.const 0) (f64.const 0))))
            (i32.store (i32.const 24) (i32.reinterpret_f32 (f32.sqrt (f32.const -1))))
            (call $output (i32.const 16) (i32.const 12))
            (i32.const 0))
        "#,
    );
    let sim = rt
        .invoke(&module, &inv("nan", &[]), &MemoryState::new())
        .unwrap();
    let f64_bits = u64::from_le_bytes(sim.response.payload[..8].try_into().unwrap());
    let f32_bits = u32::from_le_bytes(sim.response.payload[8..].try_into().unwrap());
    assert_eq!(f64_bits, 0x7FF8_0000_0000_0000);
    assert_eq!(f32_bits, 0x7FC0_0000);
}

#[test]
fn foreign_imports_are_refused_at_install() {
    let rt = Runtime::new(Limits::default());
    let wasm = wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "qcss_fn_f") (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let err = rt.install(&wasm).unwrap_err();
    let code = CodeHash::of(&wasm);
    assert_eq!(
        err.to_string(),
        format!(
            "chaincode {code} imports wasi_snapshot_preview1.random_get (func), which the host does not provide"
        )
    );
    assert!(!rt.is_installed(&code));
    let code = rt.install(&example_wasm()).unwrap();
    still_serves(&rt, &code);
}

#[test]
fn corrupt_modules_are_refused_with_a_clear_error() {
    let rt = Runtime::new(Limits::default());
    let wasm = example_wasm();
    let truncated = &wasm[..wasm.len() / 2];
    let err = rt.install(truncated).unwrap_err();
    assert!(matches!(err, InstallError::Invalid { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "chaincode {} is not a valid module: ",
            CodeHash::of(truncated)
        )),
        "{err}"
    );

    let mut flipped = wasm.clone();
    flipped[4] = 2; // version 2 does not exist
    assert!(matches!(
        rt.install(&flipped),
        Err(InstallError::Invalid { .. })
    ));

    let err = rt.install(b"MZ\x90\x00 definitely not wasm").unwrap_err();
    assert!(matches!(err, InstallError::NotWasm { .. }), "{err}");
    assert!(rt.install(&[]).is_err());

    let code = rt.install(&wasm).unwrap();
    still_serves(&rt, &code);
}

#[test]
fn every_failure_in_a_row_leaves_the_runtime_serving() {
    let (rt, code) = runtime(Limits::default());
    let s = MemoryState::new();
    for (f, args) in [
        ("loop_forever", vec![]),
        ("panic", vec!["x"]),
        ("alloc_unbounded", vec![]),
        ("big_write", vec!["2000000"]),
        ("fail", vec!["x"]),
        ("nope", vec![]),
    ] {
        assert!(call(&rt, &code, &s, f, &args).is_err(), "{f}");
        still_serves(&rt, &code);
    }
}
