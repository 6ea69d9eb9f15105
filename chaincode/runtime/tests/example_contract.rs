//! The example contract through the runtime: results, read-write sets,
//! events, identity, key policies.

mod common;

use common::{alice, call, inv, runtime};
use qcss_chaincode::{
    Event, InvokeError, KeyPolicyWrite, Limits, MemoryState, RangeRead, Read, Version, Write,
};

fn v(block: u64, tx: u64) -> Version {
    Version { block, tx }
}

fn state_ab() -> MemoryState {
    let mut s = MemoryState::new();
    s.insert("a", "1", v(1, 0));
    s.insert("b", "2", v(1, 1));
    s.insert("d", "4", v(2, 0));
    s
}

#[test]
fn put_then_get_round_trip() {
    let (rt, code) = runtime(Limits::default());
    let mut state = MemoryState::new();
    let sim = call(&rt, &code, &state, "put", &["color", "blue"]).unwrap();
    assert_eq!(sim.response.status, 200);
    assert_eq!(sim.response.payload, b"");
    assert!(sim.reads.is_empty());
    assert_eq!(
        sim.writes,
        [Write {
            key: "color".into(),
            value: Some(b"blue".to_vec())
        }]
    );
    state.apply(&sim, v(5, 2));

    let sim = call(&rt, &code, &state, "get", &["color"]).unwrap();
    assert_eq!(sim.response.payload, b"blue");
    assert_eq!(
        sim.reads,
        [Read {
            key: "color".into(),
            version: Some(v(5, 2))
        }]
    );
    assert!(sim.writes.is_empty());

    let err = call(&rt, &code, &state, "get", &["nothing"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function get failed: key \"nothing\" not found"
    );
}

#[test]
fn delete_is_a_write_of_none() {
    let (rt, code) = runtime(Limits::default());
    let sim = call(&rt, &code, &state_ab(), "del", &["a"]).unwrap();
    assert_eq!(
        sim.writes,
        [Write {
            key: "a".into(),
            value: None
        }]
    );
    assert!(sim.reads.is_empty());
}

#[test]
fn counter_reads_its_version_and_writes_json() {
    let (rt, code) = runtime(Limits::default());
    let mut state = MemoryState::new();
    for (i, expected) in ["1", "2", "3"].iter().enumerate() {
        let sim = call(&rt, &code, &state, "incr", &["n"]).unwrap();
        assert_eq!(sim.response.payload, expected.as_bytes());
        let seen = (i > 0).then(|| v(i as u64, 0));
        assert_eq!(
            sim.reads,
            [Read {
                key: "n".into(),
                version: seen
            }]
        );
        assert_eq!(
            sim.writes,
            [Write {
                key: "n".into(),
                value: Some(expected.as_bytes().to_vec())
            }]
        );
        state.apply(&sim, v(i as u64 + 1, 0));
    }
}

#[test]
fn range_scan_returns_rows_and_records_range_read() {
    let (rt, code) = runtime(Limits::default());
    let state = state_ab();
    let sim = call(&rt, &code, &state, "range", &["a", "c", "0"]).unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&sim.response.payload).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    );
    assert!(sim.reads.is_empty(), "range rows are not point reads");
    assert_eq!(
        sim.range_reads,
        [RangeRead {
            start: "a".into(),
            end: "c".into(),
            itr_exhausted: true,
            reads: vec![
                Read {
                    key: "a".into(),
                    version: Some(v(1, 0))
                },
                Read {
                    key: "b".into(),
                    version: Some(v(1, 1))
                },
            ],
        }]
    );

    // A limit stops the scan early: not exhausted.
    let sim = call(&rt, &code, &state, "range", &["a", "", "2"]).unwrap();
    assert!(!sim.range_reads[0].itr_exhausted);
    assert_eq!(sim.range_reads[0].reads.len(), 2);
    let sim = call(&rt, &code, &state, "range", &["a", "", "3"]).unwrap();
    assert!(sim.range_reads[0].itr_exhausted);

    let err = call(&rt, &code, &state, "range", &["a", "", "1001"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function range: limit range_rows = 1000 exceeded (1001)"
    );
}

#[test]
fn composite_keys_and_partial_key_queries() {
    let (rt, code) = runtime(Limits::default());
    let mut state = MemoryState::new();
    for (i, (owner, id, value)) in [
        ("alice", "1", "x"),
        ("alice", "2", "y"),
        ("bob", "1", "z"),
        ("alicia", "9", "w"),
    ]
    .iter()
    .enumerate()
    {
        let sim = call(&rt, &code, &state, "put_asset", &[owner, id, value]).unwrap();
        let key = format!("\u{0}asset\u{0}{owner}\u{0}{id}\u{0}");
        assert_eq!(sim.response.payload, key.as_bytes());
        assert_eq!(
            sim.writes,
            [Write {
                key,
                value: Some(format!("\"{value}\"").into_bytes())
            }]
        );
        state.apply(&sim, v(1, i as u64));
    }
    let sim = call(&rt, &code, &state, "assets_of", &["alice"]).unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&sim.response.payload).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"key": "1", "value": "x"}, {"key": "2", "value": "y"}])
    );
    let rr = &sim.range_reads[0];
    assert_eq!(rr.start, "\u{0}asset\u{0}alice\u{0}");
    assert_eq!(rr.end, "\u{0}asset\u{0}alice\u{0}\u{10FFFF}");
    assert_eq!(rr.reads.len(), 2);
}

#[test]
fn event_is_set() {
    let (rt, code) = runtime(Limits::default());
    let sim = call(
        &rt,
        &code,
        &MemoryState::new(),
        "emit",
        &["created", "{\"id\":7}"],
    )
    .unwrap();
    assert_eq!(
        sim.event,
        Some(Event {
            name: "created".into(),
            payload: b"{\"id\":7}".to_vec()
        })
    );
    assert!(sim.writes.is_empty());

    let limits = Limits {
        event_bytes: 8,
        ..Limits::default()
    };
    let (rt, code) = runtime(limits);
    let err = call(
        &rt,
        &code,
        &MemoryState::new(),
        "emit",
        &["created", "payload"],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "function emit: limit event_bytes = 8 exceeded (14)"
    );
}

#[test]
fn caller_identity_and_transaction_facts_are_visible() {
    let (rt, code) = runtime(Limits::default());
    let sim = call(&rt, &code, &MemoryState::new(), "whoami", &[]).unwrap();
    let who: serde_json::Value = serde_json::from_slice(&sim.response.payload).unwrap();
    assert_eq!(who, serde_json::to_value(alice()).unwrap());

    let sim = call(&rt, &code, &MemoryState::new(), "txinfo", &[]).unwrap();
    let info: serde_json::Value = serde_json::from_slice(&sim.response.payload).unwrap();
    assert_eq!(
        info,
        serde_json::json!({"tx_id": "5f1c0a", "seconds": 1_764_000_000i64, "nanos": 123_456_789})
    );
}

#[test]
fn key_level_policies() {
    let (rt, code) = runtime(Limits::default());
    let mut state = state_ab();
    state.set_key_policy("a", Some(b"AND('Org1MSP.peer')".to_vec()));

    let sim = call(&rt, &code, &state, "get_policy", &["a"]).unwrap();
    assert_eq!(sim.response.payload, b"AND('Org1MSP.peer')");
    assert_eq!(
        sim.reads,
        [Read {
            key: "a".into(),
            version: Some(v(1, 0))
        }]
    );

    let err = call(
        &rt,
        &code,
        &state,
        "set_policy",
        &["b", "OR('Org2MSP.peer')"],
    )
    .unwrap_err();
    assert!(
        matches!(err, InvokeError::Contract { ref message, .. } if message.contains("role \"admin\" required")),
        "{err}"
    );

    let mut admin = inv("set_policy", &["b", "OR('Org2MSP.peer')"]);
    admin.caller.role = "admin".into();
    let sim = rt.invoke(&code, &admin, &state).unwrap();
    assert_eq!(
        sim.key_policy_writes,
        [KeyPolicyWrite {
            key: "b".into(),
            policy: Some(b"OR('Org2MSP.peer')".to_vec())
        }]
    );
    assert!(sim.writes.is_empty());
}

#[test]
fn floats_through_serde_json_work() {
    let (rt, code) = runtime(Limits::default());
    let sim = call(
        &rt,
        &code,
        &MemoryState::new(),
        "average",
        &["[1.5, 2.5, 4]"],
    )
    .unwrap();
    assert_eq!(sim.response.payload, b"2.6666666666666665");
}

#[test]
fn argument_errors_are_contract_errors() {
    let (rt, code) = runtime(Limits::default());
    let state = MemoryState::new();
    let err = call(&rt, &code, &state, "put", &["only-key"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function put failed: expected 2 argument(s), got 1"
    );
    let err = call(&rt, &code, &state, "range", &["a", "b", "ten"]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("function range failed: argument 3: not an integer"),
        "{err}"
    );
}

#[test]
fn functions_are_listed() {
    let (rt, code) = runtime(Limits::default());
    let functions = rt.functions(&code).unwrap();
    for f in [
        "put",
        "get",
        "del",
        "range",
        "incr",
        "whoami",
        "emit",
        "loop_forever",
        "panic",
        "alloc_unbounded",
        "big_write",
        "fail",
    ] {
        assert!(
            functions.iter().any(|g| g == f),
            "{f} missing from {functions:?}"
        );
    }
}
