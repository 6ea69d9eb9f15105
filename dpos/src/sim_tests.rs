//! Simulator scenarios: 31 producers, 1 s slots, 2-round epochs.

use crate::params::Params;
use crate::sim::Sim;

fn sim31(seed: u64) -> Sim {
    Sim::new(seed, 31, Params::fast(31))
}

fn clean(sim: &Sim) {
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    sim.agreement().unwrap();
}

#[test]
fn all_honest_each_produces_once_per_round_and_finality_keeps_up() {
    let mut sim = sim31(1);
    let rounds = 6;
    // Slots 1 ..= 31·rounds − 1: slot 0 is the genesis's, nobody produces there.
    sim.run_slots(31 * rounds - 1);
    clean(&sim);
    let st = sim.nodes[0].status();
    assert_eq!(st.head_height, 31 * rounds - 1);
    let mut short = 0;
    for (p, produced, missed) in &st.producers {
        assert_eq!(missed, &0, "{p:?} missed");
        match produced {
            p if *p == rounds => {}
            p if *p == rounds - 1 => short += 1,
            _ => panic!("{p:?} produced {produced} blocks in {rounds} rounds"),
        }
    }
    assert_eq!(short, 1, "only the owner of slot 0 produced one block less");
    for n in &sim.nodes {
        let s = n.status();
        assert_eq!(s.head_id, st.head_id);
        assert!(s.head_height - s.lib_height <= 1, "lag {}", s.head_height - s.lib_height);
    }
    let max = sim.finality_ms.iter().max().copied().unwrap_or(u64::MAX);
    assert!(max <= 1_000, "finality took {max} ms, more than one 1 s slot");
    assert!(sim.finality_ms.len() as u64 >= 31 * rounds - 3);
}
