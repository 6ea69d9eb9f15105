//! Simulator scenarios: 31 producers, 1 s slots, 2-round epochs.

use crate::params::Params;
use crate::sim::Sim;
use crate::tx::TxKind;

/// 31 producers with fast confirmations (these scenarios keep message
/// delays below a slot, where confirmations are safe).
fn sim31(seed: u64) -> Sim {
    Sim::new(seed, 31, fast31())
}

fn fast31() -> Params {
    Params {
        fast_confirmations: true,
        ..Params::fast(31)
    }
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
        // A block is final once a quorum voted for its child from it.
        assert!(
            s.head_height - s.lib_height <= 2,
            "lag {}",
            s.head_height - s.lib_height
        );
    }
    let (n, mean, max) = sim.finality();
    eprintln!(
        "all honest: {n} blocks final after {mean} ms on average, {max} ms at most (1 s slots)"
    );
    assert!(
        max <= 2_000,
        "finality took {max} ms, more than two 1 s slots"
    );
    assert!(n as u64 >= 31 * rounds - 3);
}

fn lib_and_head(sim: &Sim, i: usize) -> (u64, u64) {
    let s = sim.nodes[i].status();
    (s.lib_height, s.head_height)
}

#[test]
fn ten_offline_finality_still_advances() {
    let mut sim = sim31(2);
    sim.set_down(21..31, true);
    sim.run_slots(31 * 4);
    clean(&sim);
    let (lib, head) = lib_and_head(&sim, 0);
    // 21 of 31 still vote for every block: a block is final once its
    // child is voted for, and the child may be up to a few empty slots later.
    assert!(head - lib <= 2, "lib {lib} head {head}");
    let (n, mean, max) = sim.finality();
    eprintln!("10 offline: {n} blocks final after {mean} ms on average, {max} ms at most");
    assert!(max <= 5_000, "final by the next block's votes: {max} ms");
    let st = sim.nodes[0].status();
    let missed: u64 = st.producers.iter().map(|p| p.2).sum();
    assert_eq!(
        head + missed,
        st.head_slot,
        "every slot up to the head is a block or a miss"
    );
    assert!(
        head.abs_diff(21 * 4) <= 1,
        "only the 21 online producers fill slots: {head}"
    );
    for (i, p) in st.producers.iter().enumerate() {
        let online = sim.nodes[..21].iter().any(|n| n.address() == Some(p.0));
        assert_eq!(p.2 == 0, online, "producer {i} missed {} slots", p.2);
    }
}

#[test]
fn eleven_offline_finality_stalls_and_resumes_when_they_return() {
    let mut sim = sim31(3);
    sim.run_slots(31);
    let (lib0, _) = lib_and_head(&sim, 0);
    assert!(lib0 >= 29);
    sim.set_down(20..31, true);
    sim.run_slots(31 * 3);
    let (lib1, head1) = lib_and_head(&sim, 0);
    // Only 20 producers confirm: nothing past what was already built on by
    // 21 becomes irreversible, while the head keeps growing.
    assert!(
        lib1 <= lib0 + 1,
        "lib moved from {lib0} to {lib1} with 11 offline"
    );
    assert!(head1 >= lib0 + 3 * 20 - 1, "head {head1}");
    sim.set_down(20..31, false);
    sim.run_slots(31 * 2);
    clean(&sim);
    for i in [0, 25, 30] {
        let (lib, head) = lib_and_head(&sim, i);
        assert!(head - lib <= 2, "node {i}: lib {lib} head {head}");
        assert!(lib > head1, "node {i} finalised the stalled blocks");
    }
}

#[test]
fn partition_16_15_heals_onto_one_branch_without_reverting_below_lib() {
    let mut sim = sim31(4);
    sim.run_slots(31);
    let before = sim.nodes[0].status();
    for i in 16..31 {
        sim.net.group[i] = 1;
    }
    sim.run_slots(31 * 3);
    let (lib_a, head_a) = lib_and_head(&sim, 0);
    let (lib_b, head_b) = lib_and_head(&sim, 20);
    // Neither side has 21 producers: both LIBs stall, both heads grow.
    assert!(lib_a <= before.lib_height + 1 && lib_b <= before.lib_height + 1);
    assert!(
        head_a > head_b,
        "16 producers build a taller branch: {head_a} vs {head_b}"
    );
    let branch_a = sim.nodes[0].status().head_id;
    let branch_b = sim.nodes[20].status().head_id;
    sim.net.group = vec![0; 31];
    sim.run_slots(31 * 2);
    clean(&sim);
    let head = sim.nodes[0].status().head_id;
    for n in &sim.nodes {
        let s = n.status();
        assert_eq!(s.head_id, head, "all nodes on one branch");
        assert!(s.lib_height > head_a, "finality resumed past the partition");
    }
    // One side's partition-time branch became final, on every node. (Not
    // necessarily the taller: the 15 side keeps building until the first
    // message crosses, and equal heights go to the lower id.)
    let a_won = sim.nodes[0].irreversible_id(head_a).unwrap() == Some(branch_a);
    let b_won = sim.nodes[0].irreversible_id(head_b).unwrap() == Some(branch_b);
    assert!(a_won != b_won, "exactly one branch survives");
    for n in &sim.nodes {
        assert_eq!(n.irreversible_id(head_a).unwrap() == Some(branch_a), a_won);
    }
}

/// Stake behind the 31 initial producers (so an unvoted candidate cannot
/// win a seat on key order alone) and a registered candidate, node 31.
fn with_votes_and_candidate(sim: &mut Sim) {
    let producers: Vec<_> = (0..31).map(|i| Sim::key(i).address()).collect();
    let vote = sim.tx(&Sim::account(0), TxKind::Vote { producers });
    sim.submit(vote);
    let reg = sim.tx(
        &Sim::key(31),
        TxKind::RegisterProducer {
            url: "https://candidate.example".into(),
        },
    );
    sim.submit(reg);
}

#[test]
fn equivocating_producer_is_excluded_at_the_next_election() {
    let mut sim = Sim::new(5, 32, fast31());
    with_votes_and_candidate(&mut sim);
    sim.run_slots(10);
    let cheat = Sim::key(7).address();
    sim.equivocators[7] = true;
    // Two rounds: node 7 owns a slot in the second one whatever the order.
    sim.run_slots(62);
    sim.equivocators[7] = false;
    let evidence = sim
        .nodes
        .iter_mut()
        .flat_map(|n| n.take_evidence())
        .next()
        .expect("a node saw both blocks of one slot");
    assert_eq!(evidence.a.header.producer, cheat);
    let tx = sim.tx(&Sim::account(1), TxKind::Evidence(Box::new(evidence)));
    sim.submit(tx);
    sim.run_slots(31 * 6);
    clean(&sim);
    let st = sim.nodes[0].head_state().clone();
    assert!(st.producers[&cheat].equivocated);
    assert!(!st.schedule.producers.contains(&cheat));
    assert!(st.schedule.producers.contains(&Sim::key(31).address()));
    assert_eq!(
        st.schedule.version, 1,
        "one change: the election after the evidence"
    );
    assert!(
        st.producers[&Sim::key(31).address()].produced_total > 0,
        "the newcomer produces"
    );
}

#[test]
fn vote_swing_changes_the_schedule_only_after_irreversibility() {
    let mut params = fast31();
    params.epoch_rounds = 3;
    // Keep absentees eligible so the 11 offline below do not change the result.
    params.max_missed_pct = 100;
    let mut sim = Sim::new(6, 32, params);
    with_votes_and_candidate(&mut sim);
    sim.run_slots(5);
    let cand = Sim::key(31).address();
    let dropped = Sim::key(30).address();
    let mut swing: Vec<_> = (0..30).map(|i| Sim::key(i).address()).collect();
    swing.push(cand);
    // Account 3 holds 4 M QCSS, account 0 (voting for all 31) 1 M.
    let tx = sim.tx(&Sim::account(3), TxKind::Vote { producers: swing });
    sim.submit(tx);
    sim.run_slots(85);
    // 11 producers go offline just before the election at round 3 (slot 93).
    sim.set_down(20..31, true);
    sim.run_slots(31 * 2);
    let st = sim.nodes[0].head_state().clone();
    let proposed = st
        .proposed
        .as_ref()
        .expect("the election proposed the swing");
    assert!(
        proposed.schedule.producers.contains(&cand)
            && !proposed.schedule.producers.contains(&dropped)
    );
    assert!(
        st.dpos_lib < proposed.height,
        "not irreversible with 20 producers"
    );
    assert!(st.pending.is_none());
    assert_eq!(st.schedule.version, 0, "no change before irreversibility");
    sim.set_down(20..31, false);
    sim.run_slots(31 * 4);
    clean(&sim);
    for n in &sim.nodes {
        let st = n.head_state();
        assert_eq!(st.schedule.version, 1);
        assert!(st.schedule.producers.contains(&cand) && !st.schedule.producers.contains(&dropped));
    }
}

#[test]
fn invalid_blocks_from_a_peer_are_refused_and_the_chain_goes_on() {
    use crate::block::Block;
    use crate::sim::{Message, Transport};
    use std::sync::Arc;

    let mut sim = sim31(7);
    sim.run_slots(31);
    let liar = Sim::key(3);
    for _ in 0..31 {
        // Before each slot node 3 claims the next slot on the current head,
        // whoever owns it, and also sends a copy with a broken signature.
        let head = sim.nodes[0].head_state().clone();
        let slot = sim.slot + 1;
        let b = Block::build(
            &liar,
            head.chain_id,
            head.height + 1,
            slot,
            head.head_id,
            0,
            head.mmr.root(),
            vec![],
        );
        let mut forged = b.clone();
        forged.sig.0[5] ^= 0xff;
        let owner = crate::chain::scheduled_producer(&head, slot, &sim.genesis.params).0;
        if owner != liar.address() {
            sim.net.broadcast(3, Message::Block(Arc::new(b)));
        }
        sim.net.broadcast(3, Message::Block(Arc::new(forged)));
        sim.run_slots(1);
    }
    clean(&sim);
    assert!(
        sim.refused >= 30 * 31,
        "every invalid block was refused: {}",
        sim.refused
    );
    let (lib, head) = lib_and_head(&sim, 0);
    assert_eq!(head, 62);
    assert!(head - lib <= 1);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = || {
        let mut sim = sim31(9);
        sim.net.drop_pct = 5;
        sim.run_slots(45);
        let heads: Vec<_> = sim.nodes.iter().map(|n| n.status()).collect();
        (heads, sim.finality_ms.clone(), sim.net.sent)
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    let mut other = sim31(10);
    other.net.drop_pct = 5;
    other.run_slots(45);
    assert_ne!(other.finality_ms, a.1, "another seed gives another run");
}

#[test]
fn lossy_network_still_converges_and_finalizes() {
    let mut sim = sim31(8);
    sim.net.drop_pct = 10;
    sim.net.delay_ms = (10, 600);
    sim.run_slots(31 * 4);
    sim.net.drop_pct = 0;
    sim.run_slots(3);
    clean(&sim);
    let (lib, head) = lib_and_head(&sim, 0);
    // A producer that missed its predecessor's block forks; one of the two
    // siblings is orphaned, so some slots end up empty.
    assert!(head >= 31 * 4 * 2 / 3, "head {head}");
    assert!(head - lib <= 3, "lib {lib} head {head}");
    let heads: std::collections::BTreeSet<_> =
        sim.nodes.iter().map(|n| n.status().head_id).collect();
    assert!(
        heads.len() <= 2,
        "nodes converge on one head (one may be in flight)"
    );
}

/// VOPR-style: a seed drives random partitions, outages, drops and delays
/// longer than a slot; whatever happens, no node reverts below its LIB and
/// all nodes agree on every irreversible height.
#[test]
fn chaos_never_breaks_agreement_on_irreversible_blocks() {
    use crate::sim::SimRng;
    let seeds: Vec<u64> = std::env::var("CHAOS_SEEDS")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some((a.parse().ok()?..b.parse().ok()?).collect())
        })
        .unwrap_or_else(|| (100..103).collect());
    for seed in seeds {
        // The default parameters: production-implied irreversibility. With
        // CHAOS_FAST=1 the same runs use fast confirmations, and some seeds
        // (CHAOS_SEEDS=104..105) then finalize conflicting blocks: the known
        // limit of confirmations under delays longer than a slot.
        let params = Params {
            fast_confirmations: std::env::var("CHAOS_FAST").is_ok(),
            ..Params::fast(31)
        };
        let mut sim = Sim::new(seed, 31, params);
        let mut rng = SimRng::new(seed);
        for _ in 0..6 {
            sim.net.group = vec![0; 31];
            sim.set_down(0..31, false);
            match rng.below(3) {
                0 => {
                    for g in sim.net.group.iter_mut() {
                        *g = rng.below(2) as u8;
                    }
                }
                1 => {
                    let k = rng.below(11) as usize;
                    let down: Vec<usize> = (0..k).map(|_| rng.below(31) as usize).collect();
                    sim.set_down(down, true);
                }
                _ => {}
            }
            sim.net.drop_pct = rng.below(15);
            sim.net.delay_ms = (10, 200 + rng.below(1_500));
            sim.run_slots(31);
        }
        sim.net.group = vec![0; 31];
        sim.set_down(0..31, false);
        sim.net.drop_pct = 0;
        sim.net.delay_ms = (10, 200);
        sim.run_slots(31 * 2);
        assert!(
            sim.violations.is_empty(),
            "seed {seed}: {:?}",
            sim.violations
        );
        for (i, n) in sim.nodes.iter().enumerate() {
            let lib = n.status().lib_height;
            let ids: Vec<_> = (0..=lib).map(|h| n.irreversible_id(h).unwrap()).collect();
            let blocks = n.blocks_after(0).unwrap();
            for (k, b) in blocks.iter().enumerate().take(lib as usize) {
                assert_eq!(
                    Some(b.id()),
                    ids[k + 1],
                    "node {i} finalized list broken at {}",
                    k + 1
                );
                assert_eq!(
                    Some(b.header.prev_id),
                    ids[k],
                    "node {i} finalized chain broken at {}",
                    k + 1
                );
            }
        }
        let agreed = sim
            .agreement()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let head = sim.nodes[0].status().head_height;
        // Production alone finalizes about 2/3 of a round behind the head.
        assert!(
            agreed + 25 >= head,
            "seed {seed}: finality recovered: {agreed} vs {head}"
        );
    }
}

#[test]
fn without_fast_confirmations_finality_trails_by_twenty_blocks() {
    let mut sim = Sim::new(11, 31, Params::fast(31));
    sim.run_slots(31 * 3);
    clean(&sim);
    for n in &sim.nodes {
        let s = n.status();
        // 21 distinct producers must have built on a block: the head and the
        // 20 before it, one or two more when a producer repeats across a
        // round boundary.
        assert!((20..=22).contains(&(s.head_height - s.lib_height)), "{s:?}");
    }
    let (n, mean, max) = sim.finality();
    eprintln!(
        "production only: {n} blocks final after {mean} ms on average, {max} ms at most (1 s slots)"
    );
}
