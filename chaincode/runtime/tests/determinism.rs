//! Same inputs → byte-identical results: the same call twice, and in two
//! separate runtimes (each with its own engine and compiled module).

mod common;

use common::{call, example_wasm, inv};
use qcss_chaincode::{Limits, MemoryState, Runtime, Simulation, Version};

/// A mixed workload: reads, writes, ranges, composite keys, events,
/// identity, floats. Applies each result to `state` like a committer would.
fn workload(rt: &Runtime, state: &mut MemoryState) -> Vec<Simulation> {
    let code = rt.install(&example_wasm()).unwrap();
    let calls: &[(&str, &[&str])] = &[
        ("put", &["a", "1"]),
        ("put", &["b", "2"]),
        ("incr", &["n"]),
        ("incr", &["n"]),
        ("get", &["a"]),
        ("put_asset", &["alice", "1", "x"]),
        ("put_asset", &["alice", "2", "y"]),
        ("assets_of", &["alice"]),
        ("range", &["", "", "0"]),
        ("emit", &["e", "p"]),
        ("whoami", &[]),
        ("txinfo", &[]),
        ("average", &["[0.1, 0.2, 0.3]"]),
        ("del", &["a"]),
        ("range", &["a", "z", "1"]),
    ];
    calls
        .iter()
        .enumerate()
        .map(|(i, (f, args))| {
            let sim = call(rt, &code, state, f, args).unwrap_or_else(|e| panic!("{f}: {e}"));
            state.apply(
                &sim,
                Version {
                    block: 1,
                    tx: i as u64,
                },
            );
            sim
        })
        .collect()
}

#[test]
fn same_call_twice_gives_identical_bytes() {
    let rt = Runtime::new(Limits::default());
    let code = rt.install(&example_wasm()).unwrap();
    let mut state = MemoryState::new();
    state.insert("a", "1", Version { block: 1, tx: 0 });
    state.insert("b", "2", Version { block: 1, tx: 1 });
    for (f, args) in [
        ("incr", vec!["a"]),
        ("range", vec!["", "", "0"]),
        ("whoami", vec![]),
        ("emit", vec!["e", "x"]),
    ] {
        let first = rt.invoke(&code, &inv(f, &args), &state).unwrap();
        let second = rt.invoke(&code, &inv(f, &args), &state).unwrap();
        assert_eq!(first, second, "{f}");
        assert_eq!(first.canonical_bytes(), second.canonical_bytes(), "{f}");
    }
}

#[test]
fn two_runtimes_give_identical_results_and_fuel() {
    let (rt1, rt2) = (
        Runtime::new(Limits::default()),
        Runtime::new(Limits::default()),
    );
    let (mut s1, mut s2) = (MemoryState::new(), MemoryState::new());
    let run1 = workload(&rt1, &mut s1);
    let run2 = workload(&rt2, &mut s2);
    assert_eq!(s1, s2);
    for (i, (a, b)) in run1.iter().zip(&run2).enumerate() {
        assert_eq!(a.canonical_bytes(), b.canonical_bytes(), "call {i}");
        assert!(a.fuel_used > 0);
    }
    // Identical inputs in a different order of installs/calls on the same
    // runtime do not change a result either (no state leaks between calls).
    let mut s3 = MemoryState::new();
    let _ = workload(&rt1, &mut MemoryState::new());
    let run3 = workload(&rt1, &mut s3);
    assert_eq!(run1, run3);
}

#[test]
fn failures_are_deterministic_too() {
    let (rt1, rt2) = (
        Runtime::new(Limits::default()),
        Runtime::new(Limits::default()),
    );
    let (c1, c2) = (
        rt1.install(&example_wasm()).unwrap(),
        rt2.install(&example_wasm()).unwrap(),
    );
    let state = MemoryState::new();
    for (f, args) in [
        ("loop_forever", vec![]),
        ("panic", vec!["p"]),
        ("alloc_unbounded", vec![]),
        ("fail", vec!["m"]),
    ] {
        let e1 = rt1.invoke(&c1, &inv(f, &args), &state).unwrap_err();
        let e2 = rt2.invoke(&c2, &inv(f, &args), &state).unwrap_err();
        assert_eq!(e1, e2, "{f}");
    }
}

#[test]
fn one_runtime_shared_by_threads_gives_the_same_results() {
    let rt = Runtime::new(Limits::default());
    let expected = workload(&rt, &mut MemoryState::new());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| workload(&rt, &mut MemoryState::new())))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), expected);
        }
    });
}
