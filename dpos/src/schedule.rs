//! Who produces when: the round shuffle and the election.
//!
//! Rounds are slot-based: round r is slots [n·r, n·r + n) and each active
//! producer owns exactly one slot of it; a missed slot stays empty (heights
//! are not slots). The order of round r is a Fisher–Yates shuffle of the
//! active set (sorted by key) driven by
//! `seed = H("QCSS-ROUND" ‖ chain_id ‖ r ‖ id of the last block before the round)`
//! and `j = i + u64_be(H(seed ‖ i)[0..8]) mod (n − i)` (modulo bias below
//! 2^-58 for n ≤ 31). Every node on a branch derives the same order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::hash::{Hash32, domain, hash_parts};
use crate::state::{Accounts, Producer};

/// An elected producer set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Increments each time a new set becomes active.
    pub version: u64,
    /// The producers, sorted by key.
    pub producers: Vec<Address>,
}

/// The seed of round `round`, from the id of the last block before it.
pub fn round_seed(chain_id: &Hash32, round: u64, last_block_before: &Hash32) -> Hash32 {
    hash_parts(
        domain::ROUND,
        &[&chain_id.0, &round.to_be_bytes(), &last_block_before.0],
    )
}

/// The deterministic Fisher–Yates shuffle described in the module doc.
/// `sorted` must be sorted (the active set always is).
pub fn shuffle(sorted: &[Address], seed: &Hash32) -> Vec<Address> {
    let mut v = sorted.to_vec();
    let n = v.len();
    for i in 0..n.saturating_sub(1) {
        let h = hash_parts(
            domain::ROUND,
            &[b"pick", &seed.0, &(i as u64).to_be_bytes()],
        );
        let mut word = [0u8; 8];
        word.copy_from_slice(&h.0[..8]);
        let r = u64::from_be_bytes(word) % (n - i) as u64;
        // r < n - i, so i + r < n fits usize.
        v.swap(i, i + r as usize);
    }
    v
}

/// Parameters of one election.
#[derive(Clone, Copy, Debug)]
pub struct ElectionRules {
    /// Seats.
    pub n: usize,
    /// Most missed slots, percent of owned, to stay eligible.
    pub max_missed_pct: u64,
    /// Votes older than this many slots do not count.
    pub vote_expiry_slots: u64,
    /// Slot of the election.
    pub now_slot: u64,
}

/// The election: tally approval votes weighted by each voter's liquid
/// balance, rank eligible candidates by (votes desc, key asc) and take the
/// top `n`; votes not renewed within `vote_expiry_slots` are ignored. Eligible: registered, no equivocation evidence, and missed at
/// most `max_missed_pct` of the slots it owned this epoch. If fewer than `n`
/// are eligible, the empty seats go to the previous producers without
/// equivocation evidence, then (liveness over punishment, only when nobody
/// else exists) to any previous producer. Returns the sorted set.
pub fn elect(
    accounts: &Accounts,
    producers: &BTreeMap<Address, Producer>,
    previous: &[Address],
    rules: &ElectionRules,
) -> Vec<Address> {
    let ElectionRules {
        n,
        max_missed_pct,
        vote_expiry_slots,
        now_slot,
    } = *rules;
    let mut tally: BTreeMap<Address, u128> = BTreeMap::new();
    for acct in accounts
        .values()
        .filter(|a| now_slot.saturating_sub(a.vote_slot) <= vote_expiry_slots)
    {
        for p in &acct.votes {
            *tally.entry(*p).or_default() += u128::from(acct.balance);
        }
    }
    let eligible = |a: &Address, p: &Producer| {
        p.registered
            && !p.equivocated
            && u128::from(p.missed_epoch) * 100
                <= u128::from(p.owned_epoch) * u128::from(max_missed_pct)
            && !a.is_black_hole()
    };
    let mut ranked: Vec<(u128, Address)> = producers
        .iter()
        .filter(|(a, p)| eligible(a, p))
        .map(|(a, _)| (tally.get(a).copied().unwrap_or(0), *a))
        .collect();
    ranked.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    let mut chosen: Vec<Address> = ranked.into_iter().take(n).map(|(_, a)| a).collect();
    let clean = |a: &Address| producers.get(a).is_some_and(|p| !p.equivocated);
    for pass in 0..2 {
        for a in previous {
            if chosen.len() >= n {
                break;
            }
            if !chosen.contains(a) && (pass == 1 || clean(a)) {
                chosen.push(*a);
            }
        }
    }
    chosen.sort();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Account;

    fn addrs(n: u8) -> Vec<Address> {
        (0..n).map(|i| Address([i; 32])).collect()
    }

    /// Golden vector: the order of round 5 for 31 producers. A change here is
    /// a hard fork.
    #[test]
    fn golden_shuffle() {
        let seed = round_seed(&Hash32([7; 32]), 5, &Hash32([9; 32]));
        let order: Vec<u8> = shuffle(&addrs(31), &seed).iter().map(|a| a.0[0]).collect();
        assert_eq!(
            order,
            vec![
                22, 17, 3, 4, 2, 25, 11, 21, 19, 30, 7, 28, 16, 10, 14, 27, 13, 24, 0, 5, 12, 29,
                1, 18, 15, 8, 9, 26, 23, 20, 6
            ]
        );
    }

    #[test]
    fn shuffle_is_a_permutation_and_depends_on_seed() {
        let set = addrs(31);
        let a = shuffle(&set, &round_seed(&Hash32([1; 32]), 1, &Hash32([0; 32])));
        let b = shuffle(&set, &round_seed(&Hash32([1; 32]), 2, &Hash32([0; 32])));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, set);
        assert_ne!(a, b);
        assert!(shuffle(&[], &Hash32::default()).is_empty());
    }

    fn rules(n: usize) -> ElectionRules {
        ElectionRules {
            n,
            max_missed_pct: 50,
            vote_expiry_slots: 1_000,
            now_slot: 500,
        }
    }

    #[test]
    fn election_ranks_by_stake_and_excludes_equivocators_and_absentees() {
        let cands = addrs(6);
        let mut producers = BTreeMap::new();
        for a in &cands[1..] {
            producers.insert(
                *a,
                Producer {
                    registered: true,
                    ..Producer::default()
                },
            );
        }
        let mut accounts = Accounts::new();
        let voter = |bal, votes: Vec<Address>| Account {
            balance: bal,
            votes,
            ..Account::default()
        };
        accounts.insert(Address([100; 32]), voter(50, vec![cands[1], cands[2]]));
        accounts.insert(Address([101; 32]), voter(70, vec![cands[3]]));
        accounts.insert(Address([102; 32]), voter(10, vec![cands[4], cands[5]]));
        // 3 (70) > 1 = 2 (50) > 4 = 5 (10).
        assert_eq!(
            elect(&accounts, &producers, &[], &rules(3)),
            vec![cands[1], cands[2], cands[3]]
        );
        producers.get_mut(&cands[3]).unwrap().equivocated = true;
        let p2 = producers.get_mut(&cands[2]).unwrap();
        p2.owned_epoch = 4;
        p2.missed_epoch = 3;
        assert_eq!(
            elect(&accounts, &producers, &[], &rules(3)),
            vec![cands[1], cands[4], cands[5]]
        );
        // Too few candidates: previous clean producers fill the seats first.
        assert_eq!(
            elect(&accounts, &producers, &[cands[3], cands[2]], &rules(5)),
            vec![cands[1], cands[2], cands[3], cands[4], cands[5]]
        );
    }

    #[test]
    fn votes_not_renewed_within_the_expiry_stop_counting() {
        let (a, b) = (Address([1; 32]), Address([2; 32]));
        let reg = Producer {
            registered: true,
            ..Producer::default()
        };
        let producers = BTreeMap::from([(a, reg.clone()), (b, reg)]);
        let voter = |balance, p, vote_slot| Account {
            balance,
            votes: vec![p],
            vote_slot,
            ..Account::default()
        };
        let accounts = Accounts::from_iter([
            (Address([100; 32]), voter(100, a, 0)),
            (Address([101; 32]), voter(10, b, 900)),
        ]);
        assert_eq!(elect(&accounts, &producers, &[], &rules(1)), vec![a]);
        let late = ElectionRules {
            now_slot: 1_500,
            ..rules(1)
        };
        assert_eq!(
            elect(&accounts, &producers, &[], &late),
            vec![b],
            "a's 100 lapsed"
        );
    }
}
