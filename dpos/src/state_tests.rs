//! Every refused transaction with the error it gets and no state change;
//! the supply invariant over random transaction streams.

use crate::address::{Address, BLACK_HOLE, Keypair};
use crate::block::SignedHeader;
use crate::chain::apply_block;
use crate::hash::Hash32;
use crate::params::COIN;
use crate::reward_tests::{CID, batch, register_tx, reward_params};
use crate::rewards::{REWARD_POOL, RewardEntry};
use crate::sim::SimRng;
use crate::state::{State, TxContext, TxError};
use crate::testkit::Kit;
use crate::tx::{Equivocation, SignedTx, Tx, TxKind};

fn refused(state: &State, kit: &Kit, tx: &SignedTx, slot: u64) -> TxError {
    let mut s = state.clone();
    let err = s
        .apply_tx(
            tx,
            TxContext {
                params: &kit.params,
                slot,
                height: 1,
            },
        )
        .expect_err("must be refused");
    assert_eq!(&s, state, "a refused transaction changed the state: {err}");
    err
}

#[test]
fn every_refusal_has_its_error_and_changes_nothing() {
    let kit = Kit::new();
    let st = kit.state();
    let u = &kit.users[0];
    let to = kit.users[1].address();
    let xfer = |amount| TxKind::Transfer { to, amount };
    let base = kit.tx(u, 0, xfer(COIN));
    let ok = |tx: Tx| tx.sign(u);

    let mut forged = base.clone();
    forged.tx.fee += 1;
    assert!(matches!(
        refused(&st, &kit, &forged, 1),
        TxError::BadSignature(_)
    ));
    let mut t = base.tx.clone();
    t.chain_id = Hash32([9; 32]);
    assert!(matches!(
        refused(&st, &kit, &ok(t), 1),
        TxError::WrongChain { .. }
    ));
    assert!(matches!(
        refused(&st, &kit, &base, 51),
        TxError::Expired {
            expiry: 50,
            slot: 51
        }
    ));
    let mut t = base.tx.clone();
    t.expiry_slot = 1 + kit.params.max_expiry_slots + 1;
    assert!(matches!(
        refused(&st, &kit, &ok(t), 1),
        TxError::ExpiryTooFar { .. }
    ));
    assert!(matches!(
        refused(&st, &kit, &kit.tx(u, 1, xfer(1)), 1),
        TxError::NonceGap {
            want: 0,
            got: 1,
            ..
        }
    ));
    let mut t = base.tx.clone();
    t.fee = 0;
    assert!(matches!(
        refused(&st, &kit, &ok(t), 1),
        TxError::FeeTooLow { .. }
    ));
    assert!(matches!(
        refused(&st, &kit, &kit.tx(u, 0, xfer(1_000 * COIN)), 1),
        TxError::InsufficientBalance { .. }
    ));
    assert_eq!(
        refused(&st, &kit, &kit.tx(u, 0, xfer(0)), 1),
        TxError::ZeroAmount
    );
    assert_eq!(
        refused(&st, &kit, &kit.tx(u, 0, TxKind::Burn { amount: 0 }), 1),
        TxError::ZeroAmount
    );
    let mut t = base.tx.clone();
    t.sender = BLACK_HOLE;
    assert_eq!(refused(&st, &kit, &ok(t), 1), TxError::FromBlackHole);
    let many: Vec<Address> = (0..32).map(|i| Address([i + 1; 32])).collect();
    assert!(matches!(
        refused(
            &st,
            &kit,
            &kit.tx(u, 0, TxKind::Vote { producers: many }),
            1
        ),
        TxError::TooManyVotes { got: 32, max: 31 }
    ));
    let p0 = *kit.producers.keys().next().unwrap();
    assert_eq!(
        refused(
            &st,
            &kit,
            &kit.tx(
                u,
                0,
                TxKind::Vote {
                    producers: vec![p0, p0]
                }
            ),
            1
        ),
        TxError::DuplicateVote(p0)
    );
    assert_eq!(
        refused(
            &st,
            &kit,
            &kit.tx(
                u,
                0,
                TxKind::Vote {
                    producers: vec![to]
                }
            ),
            1
        ),
        TxError::NotAProducer(to)
    );
    let pk = &kit.producers[&p0];
    assert_eq!(
        refused(
            &st,
            &kit,
            &kit.tx(pk, 0, TxKind::RegisterProducer { url: "x".into() }),
            1
        ),
        TxError::AlreadyRegistered(p0)
    );
    assert!(matches!(
        refused(
            &st,
            &kit,
            &kit.tx(
                u,
                0,
                TxKind::RegisterProducer {
                    url: "x".repeat(201)
                }
            ),
            1
        ),
        TxError::UrlTooLong { got: 201, max: 200 }
    ));
    assert_eq!(
        refused(&st, &kit, &kit.tx(u, 0, TxKind::UnregisterProducer), 1),
        TxError::NotAProducer(u.address())
    );
    assert_eq!(
        refused(&st, &kit, &kit.tx(u, 0, TxKind::WithdrawRewards), 1),
        TxError::RewardsLocked { next_unlock: None }
    );
    // Replay: apply once, then the same transaction again.
    let mut s = st.clone();
    s.apply_tx(
        &base,
        TxContext {
            params: &kit.params,
            slot: 1,
            height: 1,
        },
    )
    .unwrap();
    assert!(matches!(
        refused(&s, &kit, &base, 1),
        TxError::Replayed {
            want: 1,
            got: 0,
            ..
        }
    ));
}

#[test]
fn overflow_is_refused() {
    // With the supply capped below u64::MAX no honest history reaches these
    // guards; a state edited by hand exercises them.
    let kit = Kit::new();
    let mut st = kit.state();
    let (u, rich) = (&kit.users[0], kit.users[1].address());
    st.accounts.get_mut(&rich).unwrap().balance = u64::MAX - 1;
    let tx = kit.tx(
        u,
        0,
        TxKind::Transfer {
            to: rich,
            amount: 2,
        },
    );
    assert_eq!(refused(&st, &kit, &tx, 1), TxError::Overflow);
    st.accounts.get_mut(&u.address()).unwrap().nonce = u64::MAX;
    let tx = kit.tx(u, u64::MAX, TxKind::Burn { amount: 1 });
    assert_eq!(refused(&st, &kit, &tx, 1), TxError::Overflow);
}

#[test]
fn withdraw_waits_for_the_lock_and_then_thirty_days() {
    let kit = Kit::new();
    let mut st = kit.state();
    // Produce blocks until some producer has rewards; find one with a lock.
    for slot in 1..=8 {
        let b = kit.block(&st, slot, vec![]);
        st = apply_block(&st, &b, &kit.params).unwrap();
    }
    let (addr, acct) = st
        .accounts
        .iter()
        .find(|(_, a)| !a.locked.is_empty())
        .unwrap();
    let key = &kit.producers[addr];
    let first_unlock = acct.locked[0].unlock_slot;
    let w = |n| kit.tx(key, n, TxKind::WithdrawRewards);
    let err = refused(&st, &kit, &w(0), first_unlock - 1);
    assert_eq!(
        err,
        TxError::RewardsLocked {
            next_unlock: Some(first_unlock)
        }
    );
    let mut s = st.clone();
    let before = s.balance(addr);
    s.apply_tx(
        &w(0),
        TxContext {
            params: &kit.params,
            slot: first_unlock,
            height: 1,
        },
    )
    .unwrap();
    assert!(s.balance(addr) > before - kit.params.min_fee);
    // Rewards from later blocks have matured too, but 30 days must pass.
    let next_allowed = first_unlock + kit.params.withdraw_interval_slots;
    let mut late = w(1);
    late.tx.expiry_slot = next_allowed;
    let late = late.tx.sign(key);
    assert_eq!(
        refused(&s, &kit, &late, next_allowed - 1),
        TxError::WithdrawTooSoon { next_allowed }
    );
}

#[test]
fn evidence_marks_the_producer_once_and_bad_evidence_is_refused() {
    let kit = Kit::new();
    let st = kit.state();
    let a = kit.block(&st, 1, vec![]);
    let b = kit.block(
        &st,
        1,
        vec![kit.tx(&kit.users[2], 0, TxKind::Burn { amount: 1 })],
    );
    let cheat = a.header.producer;
    let ev =
        |x: SignedHeader, y: SignedHeader| TxKind::Evidence(Box::new(Equivocation { a: x, b: y }));
    let u = &kit.users[0];
    assert_eq!(
        refused(
            &st,
            &kit,
            &kit.tx(u, 0, ev(a.signed_header(), a.signed_header())),
            1
        ),
        TxError::BadEvidence("the two headers are the same")
    );
    let mut forged = b.signed_header();
    forged.header.height = 9;
    assert_eq!(
        refused(&st, &kit, &kit.tx(u, 0, ev(a.signed_header(), forged)), 1),
        TxError::BadEvidence("a header signature does not verify")
    );
    let other = kit.block(&st, 2, vec![]);
    assert_eq!(
        refused(
            &st,
            &kit,
            &kit.tx(u, 0, ev(a.signed_header(), other.signed_header())),
            1
        ),
        TxError::BadEvidence("headers differ in producer or slot")
    );
    let good = kit.tx(u, 0, ev(a.signed_header(), b.signed_header()));
    let mut s = st.clone();
    s.apply_tx(
        &good,
        TxContext {
            params: &kit.params,
            slot: 1,
            height: 1,
        },
    )
    .unwrap();
    assert!(s.producers[&cheat].equivocated);
    let again = kit.tx(u, 1, ev(b.signed_header(), a.signed_header()));
    assert_eq!(refused(&s, &kit, &again, 1), TxError::EvidenceKnown(cheat));
}

#[test]
fn vote_evidence_double_votes_and_surrounds_mark_the_producer() {
    use crate::block::Confirmation;
    use crate::tx::VoteEquivocation;
    let kit = Kit::new();
    let st = kit.state();
    let k = kit.producers.values().next().unwrap().clone();
    let cheat = k.address();
    let id = |n: u8| Hash32([n; 32]);
    let v = |s: u64, t: u64, tid: u8| Confirmation::sign(&k, st.chain_id, (s, id(0)), (t, id(tid)));
    let ev = |a: Confirmation, b: Confirmation| {
        TxKind::VoteEvidence(Box::new(VoteEquivocation { a, b }))
    };
    let u = &kit.users[0];
    let apply = |kind: TxKind| {
        let mut s = st.clone();
        s.apply_tx(
            &kit.tx(u, 0, kind),
            TxContext {
                params: &kit.params,
                slot: 1,
                height: 1,
            },
        )
        .map(|_| s)
    };
    // An honest producer's votes: higher targets, sources never lower.
    for (a, b) in [
        (v(1, 2, 2), v(2, 3, 3)),
        (v(1, 2, 2), v(1, 3, 3)),
        (v(1, 2, 2), v(1, 2, 2)),
    ] {
        assert_eq!(
            apply(ev(a, b)).unwrap_err(),
            TxError::BadEvidence(
                "the votes neither share a target height nor surround one another"
            )
        );
    }
    let double = ev(v(1, 5, 5), v(1, 5, 6));
    assert!(apply(double).unwrap().producers[&cheat].equivocated);
    let surround = ev(v(1, 9, 9), v(2, 5, 5));
    let s = apply(surround).unwrap();
    assert!(s.producers[&cheat].equivocated);
    // Forged signature, other producer, known already.
    let mut forged = v(1, 5, 6);
    forged.height = 4;
    forged.block_id = id(4);
    let mut bad = v(1, 4, 5);
    bad.sig = forged.sig;
    assert_eq!(
        apply(ev(v(1, 4, 4), bad)).unwrap_err(),
        TxError::BadEvidence("a vote signature does not verify")
    );
    let other = kit.producers.values().nth(1).unwrap();
    let theirs = Confirmation::sign(other, st.chain_id, (1, id(0)), (5, id(6)));
    assert_eq!(
        apply(ev(v(1, 5, 5), theirs)).unwrap_err(),
        TxError::BadEvidence("votes by different producers")
    );
    let mut again = s.clone();
    let err = again
        .apply_tx(
            &kit.tx(u, 1, ev(v(1, 7, 7), v(1, 7, 8))),
            TxContext {
                params: &kit.params,
                slot: 1,
                height: 1,
            },
        )
        .unwrap_err();
    assert_eq!(err, TxError::EvidenceKnown(cheat));
}

/// A random reward batch from the consortium of `reward_tests`: mostly the
/// next epoch, sometimes a replay or a gap; mostly a quorum; entries to
/// known and fresh accounts, mostly sorted and positive.
fn random_batch(rng: &mut SimRng, kit: &Kit, st: &State, keys: &[Keypair], slot: u64) -> TxKind {
    let r = &st.consortia[&CID].rewards;
    let first = (slot / kit.params.rewards.epoch_slots).saturating_sub(1);
    let next = r.last_paid_epoch.map_or(first, |e| e + 1);
    let epoch = (next + rng.below(3)).saturating_sub(1);
    let mut entries: Vec<RewardEntry> = (0..rng.below(5))
        .map(|i| RewardEntry {
            address: if rng.below(2) == 0 {
                keys[rng.below(keys.len() as u64) as usize].address()
            } else {
                Keypair::for_test("fresh", rng.below(1_000) + i).address()
            },
            amount: if rng.below(15) == 0 {
                0
            } else {
                rng.below(30 * COIN)
            },
        })
        .collect();
    if rng.below(8) != 0 {
        entries.sort_by_key(|e| e.address);
        entries.dedup_by_key(|e| e.address);
    }
    let signers: Vec<u16> = (0..3).filter(|_| rng.below(4) != 0).collect();
    TxKind::RewardBatch(Box::new(batch(kit, CID, (epoch, 0, 1), entries, &signers)))
}

/// Random streams of valid and invalid transactions, reward batches among
/// them, packed into blocks: after every block `Σ balances + Σ locked +
/// burned == genesis + minted ≤ cap` (the pool is an account), and every
/// refused transaction left the state unchanged.
#[test]
fn supply_invariant_holds_over_random_transaction_streams() {
    for seed in 0..6u64 {
        let kit = Kit::with(reward_params());
        let mut rng = SimRng::new(seed);
        let mut st = kit.state();
        let reg = register_tx(&kit, &st, CID, 1);
        st = apply_block(&st, &kit.block(&st, 1, vec![reg]), &kit.params).unwrap();
        let mut keys: Vec<Keypair> = kit.users.clone();
        keys.extend(kit.producers.values().cloned());
        let mut accepted = 0;
        let mut batches = 0;
        for slot in 2..=60u64 {
            let mut scratch = st.clone();
            let mut txs = Vec::new();
            for _ in 0..rng.below(8) {
                let k = &keys[rng.below(keys.len() as u64) as usize];
                let to = if rng.below(10) == 0 {
                    BLACK_HOLE
                } else {
                    keys[rng.below(keys.len() as u64) as usize].address()
                };
                let amount = match rng.below(4) {
                    0 => rng.below(2_000 * COIN),
                    1 => 0,
                    _ => rng.below(5 * COIN),
                };
                let kind = match rng.below(8) {
                    7 => random_batch(&mut rng, &kit, &scratch, &keys, slot),
                    0..=2 => TxKind::Transfer { to, amount },
                    3 => TxKind::Burn { amount },
                    4 => TxKind::WithdrawRewards,
                    5 => TxKind::Vote {
                        producers: kit
                            .producers
                            .keys()
                            .take(rng.below(5) as usize)
                            .copied()
                            .collect(),
                    },
                    _ => TxKind::RegisterProducer { url: "u".into() },
                };
                // Mostly the right nonce, sometimes a replay or a gap.
                let nonce = (scratch.nonce(&k.address()) + rng.below(3)).saturating_sub(1);
                let mut tx = kit.tx(k, nonce, kind);
                tx.tx.expiry_slot = slot + rng.below(3);
                tx.tx.fee = kit.params.min_fee + rng.below(3);
                let tx = tx.tx.sign(k);
                let before = scratch.clone();
                let ctx = TxContext {
                    params: &kit.params,
                    slot,
                    height: slot,
                };
                let checked = scratch.check_tx(&tx, ctx);
                let applied = scratch.apply_tx(&tx, ctx);
                assert_eq!(checked, applied, "check_tx and apply_tx agree");
                match applied {
                    Ok(_) => {
                        batches += usize::from(matches!(tx.tx.kind, TxKind::RewardBatch(_)));
                        txs.push(tx)
                    }
                    Err(_) => assert_eq!(scratch, before, "refusal changed state"),
                }
            }
            accepted += txs.len();
            let block = kit.block(&st, slot, txs);
            st = apply_block(&st, &block, &kit.params).unwrap();
            st.supply_invariant(&kit.params).unwrap();
        }
        assert!(
            accepted > 20,
            "seed {seed}: the stream exercised too little ({accepted})"
        );
        assert!(st.minted > 0 && st.burned > 0);
        assert!(batches > 0, "seed {seed}: no reward batch was accepted");
        assert!(st.balance(&REWARD_POOL) < kit.params.rewards.pool);
    }
}

#[test]
fn rewards_share_lock_entries_by_day_and_never_unlock_early() {
    let mut params = Kit::new().params;
    params.reward_lock_slots = 70; // window 10 slots
    let kit = Kit::with(params);
    let mut st = kit.state();
    let mut earned_at: std::collections::BTreeMap<_, Vec<u64>> = Default::default();
    for slot in 1..=40 {
        let b = kit.block(&st, slot, vec![]);
        earned_at.entry(b.header.producer).or_default().push(slot);
        st = apply_block(&st, &b, &kit.params).unwrap();
    }
    st.supply_invariant(&kit.params).unwrap();
    for (p, slots) in &earned_at {
        let locks = &st.accounts[p].locked;
        assert!(
            locks.len() <= 5,
            "{} entries for {} blocks",
            locks.len(),
            slots.len()
        );
        // Every reward is covered by an entry unlocking no earlier than 70
        // slots after it was earned.
        let mut i = 0;
        for s in slots {
            while locks[i].unlock_slot < s + 70 {
                i += 1;
            }
            assert!(
                locks[i].unlock_slot < s + 70 + 10,
                "at most one window late"
            );
        }
        let total: u64 = locks.iter().map(|l| l.amount).sum();
        assert_eq!(total, slots.len() as u64 * kit.params.reward_at(1));
    }
}

/// `State::accounts` became a persistent map; its encoding must be the
/// `BTreeMap`'s byte for byte, or every stored checkpoint (format 3) and
/// every state digest would change.
#[test]
fn accounts_encode_as_the_btree_map_they_replaced() {
    use crate::state::{Account, Accounts};
    let mut rng = SimRng::new(7);
    let mut old = std::collections::BTreeMap::new();
    for i in 0..500u64 {
        let mut a = [0u8; 32];
        a[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
        let acct = Account {
            balance: rng.next_u64() % 1_000_000,
            nonce: i,
            votes: vec![Address([i as u8; 32])],
            vote_slot: i * 3,
            ..Account::default()
        };
        old.insert(Address(a), acct);
    }
    let new: Accounts = old.clone().into_iter().collect();
    let bytes = crate::codec::encode(&new);
    assert_eq!(bytes, crate::codec::encode(&old));
    let back: Accounts = crate::codec::decode(&bytes, 1 << 24).unwrap();
    assert_eq!(back, new);
}
