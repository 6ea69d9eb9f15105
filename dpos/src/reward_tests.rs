//! Consumer rewards: the digest's golden vector, every refused batch with
//! its error and no state change, epochs in parts, the 7-day lock, and the
//! pool and budget limits.

use qcss_anchor::statement::keys_digest;
use sha2::{Digest, Sha256};

use crate::address::{Address, BLACK_HOLE, Keypair};
use crate::hash::Hash32;
use crate::params::{COIN, GenesisError, Params, RewardParams};
use crate::rewards::{REWARD_POOL, RewardBatch, RewardEntry, reward_digest};
use crate::state::{State, TxContext, TxError};
use crate::testkit::Kit;
use crate::tx::{KeySet, SignedTx, Tx, TxKind};

/// An allowed, registered consortium.
pub(crate) const CID: Hash32 = Hash32([0xc1; 32]);
/// Allowed by the genesis but never registered.
const UNREGISTERED: Hash32 = Hash32([0xc2; 32]);
/// Registered but not allowed to pay.
const OUTSIDER: Hash32 = Hash32([0xc3; 32]);

/// 1,000 QCSS over 100 slots in epochs of 10: budget 100 QCSS an epoch;
/// at most 8 entries a part and 3 parts.
pub(crate) fn reward_params() -> Params {
    let mut p = Params::fast(4);
    p.rewards = RewardParams {
        pool: 1_000 * COIN,
        period_slots: 100,
        epoch_slots: 10,
        max_entries: 8,
        max_parts: 3,
        max_tx_bytes: 64 * 1024,
        consortia: vec![CID, UNREGISTERED],
    };
    p
}

pub(crate) fn orgs() -> Vec<Keypair> {
    (0..3).map(|i| Keypair::for_test("reward-org", i)).collect()
}

fn ctx(kit: &Kit, slot: u64) -> TxContext<'_> {
    TxContext {
        params: &kit.params,
        slot,
        height: slot,
    }
}

/// A payer's transaction valid at `slot`.
pub(crate) fn tx_at(kit: &Kit, st: &State, key: &Keypair, slot: u64, kind: TxKind) -> SignedTx {
    Tx {
        chain_id: st.chain_id,
        sender: key.address(),
        nonce: st.nonce(&key.address()),
        fee: kit.params.min_fee,
        expiry_slot: slot,
        kind,
    }
    .sign(key)
}

/// Registers `id` with the three org keys, quorum 2.
fn register(kit: &Kit, st: &mut State, id: Hash32, slot: u64) {
    let tx = register_tx(kit, st, id, slot);
    st.apply_tx(&tx, ctx(kit, slot)).unwrap();
}

/// `Σ balances + Σ locked + burned = genesis + minted` once the fees that
/// `apply_tx` took (every transaction here pays `min_fee`; a block would
/// lock them for its producer) are counted.
fn supply_ok(kit: &Kit, st: &State) {
    let mut s = st.clone();
    let txs: u64 = s.accounts.values().map(|a| a.nonce).sum();
    s.accounts.entry(Address([9; 32])).or_default().balance += txs * kit.params.min_fee;
    s.supply_invariant(&kit.params).unwrap();
}

/// The registration of `id` with the three org keys, quorum 2, by user 3.
pub(crate) fn register_tx(kit: &Kit, st: &State, id: Hash32, slot: u64) -> SignedTx {
    let k = orgs();
    let keys: Vec<Address> = k.iter().map(Keypair::address).collect();
    let raw: Vec<[u8; 32]> = keys.iter().map(|a| a.0).collect();
    let d = keys_digest(&id, 0, &raw, 2);
    let ks = KeySet {
        consortium_id: id,
        keys,
        quorum: 2,
        sigs: k
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u16, k.sign(&d)))
            .collect(),
    };
    tx_at(
        kit,
        st,
        &kit.users[3],
        slot,
        TxKind::RegisterConsortium(Box::new(ks)),
    )
}

/// A batch part signed by the org keys at `signers`.
pub(crate) fn batch(
    kit: &Kit,
    id: Hash32,
    (epoch, part, parts): (u64, u32, u32),
    entries: Vec<RewardEntry>,
    signers: &[u16],
) -> RewardBatch {
    let k = orgs();
    let mut b = RewardBatch {
        consortium_id: id,
        epoch,
        part,
        parts,
        entries,
        digest: Hash32([0; 32]),
        sigs: vec![],
    };
    b.digest = b.compute_digest(&kit.genesis.chain_id());
    b.sigs = signers
        .iter()
        .map(|&i| (i, k[usize::from(i) % k.len()].sign(&b.digest)))
        .collect();
    b
}

/// `n` consumers from `from` on, sorted, each paid `amount`.
fn consumers(from: u64, n: u64, amount: u64) -> Vec<RewardEntry> {
    let mut v: Vec<RewardEntry> = (from..from + n)
        .map(|i| RewardEntry {
            address: Keypair::for_test("consumer", i).address(),
            amount,
        })
        .collect();
    v.sort_by_key(|e| e.address);
    v
}

fn setup() -> (Kit, State) {
    let kit = Kit::with(reward_params());
    let mut st = kit.state();
    register(&kit, &mut st, CID, 1);
    register(&kit, &mut st, OUTSIDER, 1);
    (kit, st)
}

/// Applies `b` at `slot` (payer user 0); on refusal asserts nothing changed.
fn pay(kit: &Kit, st: &mut State, b: RewardBatch, slot: u64) -> Result<u64, TxError> {
    let tx = tx_at(
        kit,
        st,
        &kit.users[0],
        slot,
        TxKind::RewardBatch(Box::new(b)),
    );
    let before = st.clone();
    let checked = st.check_tx(&tx, ctx(kit, slot));
    let r = st.apply_tx(&tx, ctx(kit, slot));
    assert_eq!(checked, r, "check_tx and apply_tx agree");
    if r.is_err() {
        assert_eq!(*st, before, "a refused batch changed the state");
    }
    r
}

/// Golden vector: the digest the consortium's contract must reproduce.
/// Also rebuilt here byte by byte from the README's spec, independently of
/// `reward_digest`. If the pinned hex changes, every consortium's signer
/// must change with it.
#[test]
fn golden_reward_digest() {
    let chain = Hash32([0x01; 32]);
    let cons = Hash32([0x02; 32]);
    let entries = vec![
        RewardEntry {
            address: Address([0x03; 32]),
            amount: 5 * COIN,
        },
        RewardEntry {
            address: Address([0x04; 32]),
            amount: 1,
        },
    ];
    let d = reward_digest(&chain, &cons, 7, 1, 3, &entries);

    let mut spec = vec![19u8];
    spec.extend(b"QCSS-DPOS-REWARD-v1");
    spec.extend([0x01; 32]);
    spec.extend([0x02; 32]);
    spec.extend(7u64.to_be_bytes());
    spec.extend(1u32.to_be_bytes());
    spec.extend(3u32.to_be_bytes());
    spec.extend(2u64.to_be_bytes());
    spec.extend([0x03; 32]);
    spec.extend(500_000_000u64.to_be_bytes());
    spec.extend([0x04; 32]);
    spec.extend(1u64.to_be_bytes());
    assert_eq!(spec.len(), 1 + 19 + 32 + 32 + 8 + 4 + 4 + 8 + 2 * 40);
    let by_spec: [u8; 32] = Sha256::digest(&spec).into();
    assert_eq!(d.0, by_spec);
    assert_eq!(
        hex::encode(d.0),
        "6ab2c32656174410a278a9fcd42fb759f4245fa75d156271abcb155942b64436",
        "the reward digest changed: a consortium-visible format change"
    );
    // Every field is bound.
    assert_ne!(d, reward_digest(&chain, &cons, 8, 1, 3, &entries));
    assert_ne!(d, reward_digest(&chain, &cons, 7, 0, 3, &entries));
    assert_ne!(d, reward_digest(&chain, &cons, 7, 1, 2, &entries));
    assert_ne!(d, reward_digest(&cons, &chain, 7, 1, 3, &entries));
    assert_ne!(d, reward_digest(&chain, &cons, 7, 1, 3, &entries[..1]));
}

#[test]
fn a_batch_pays_into_locks_that_mature_after_seven_days_of_slots() {
    let (kit, mut st) = setup();
    let p = &kit.params;
    let entries = consumers(0, 4, 10 * COIN);
    let pool_before = st.balance(&REWARD_POOL);
    let payer_before = st.balance(&kit.users[0].address());
    // Epoch 0 is slots 0..10: payable from slot 10.
    let fee = pay(
        &kit,
        &mut st,
        batch(&kit, CID, (0, 0, 1), entries.clone(), &[0, 2]),
        10,
    )
    .unwrap();
    assert_eq!(fee, p.min_fee);
    assert_eq!(st.balance(&REWARD_POOL), pool_before - 40 * COIN);
    assert_eq!(st.balance(&kit.users[0].address()), payer_before - fee);
    assert_eq!(st.reward_paid.get(&0), Some(&(40 * COIN)));
    assert_eq!(st.consortia[&CID].rewards.last_paid_epoch, Some(0));
    assert_eq!(st.consortia[&CID].rewards.paid_total, 40 * COIN);
    supply_ok(&kit, &st);

    let consumer = Keypair::for_test("consumer", 0);
    let acct = &st.accounts[&consumer.address()];
    assert_eq!(acct.balance, 0);
    assert_eq!(acct.locked.len(), 1);
    assert_eq!(acct.locked[0].amount, 10 * COIN);
    let unlock = acct.locked[0].unlock_slot;
    assert!(unlock >= 10 + p.reward_lock_slots, "never before 7 days");
    assert!(unlock < 10 + p.reward_lock_slots + p.reward_lock_slots / 7);

    // The API's view: the lock with its unlock time on the chain's clock.
    let v = crate::api::AccountView::at(&st, consumer.address(), p, 1_000_000);
    assert_eq!(v.locks.len(), 1);
    assert_eq!(v.locks[0].unlock_time_ms, 1_000_000 + unlock * p.slot_ms);
    assert_eq!((v.matured, v.still_locked), (0, 10 * COIN));
    let mut later = st.clone();
    later.slot = unlock;
    let v = crate::api::AccountView::at(&later, consumer.address(), p, 1_000_000);
    assert!(v.locks[0].matured);
    assert_eq!((v.matured, v.still_locked), (10 * COIN, 0));

    // The consumer withdraws with the existing rules: nothing before the
    // unlock slot, everything (less the fee) from it.
    let early = tx_at(&kit, &st, &consumer, unlock - 1, TxKind::WithdrawRewards);
    assert_eq!(
        st.clone().apply_tx(&early, ctx(&kit, unlock - 1)),
        Err(TxError::RewardsLocked {
            next_unlock: Some(unlock)
        })
    );
    let ok = tx_at(&kit, &st, &consumer, unlock, TxKind::WithdrawRewards);
    st.apply_tx(&ok, ctx(&kit, unlock)).unwrap();
    let acct = &st.accounts[&consumer.address()];
    assert_eq!(acct.balance, 10 * COIN - p.min_fee);
    assert!(acct.locked.is_empty());
    let v = crate::api::AccountView::at(&st, consumer.address(), p, 0);
    assert_eq!(
        v.next_withdraw_slot,
        Some(unlock + p.withdraw_interval_slots)
    );
    supply_ok(&kit, &st);
}

#[test]
fn every_refused_batch_has_its_error_and_changes_nothing() {
    let (kit, mut st) = setup();
    let e4 = consumers(0, 4, COIN);
    let good = |kit: &Kit| batch(kit, CID, (0, 0, 1), e4.clone(), &[0, 1]);
    let mut cases: Vec<(&str, RewardBatch, u64, TxError)> = Vec::new();
    let b = batch(&kit, OUTSIDER, (0, 0, 1), e4.clone(), &[0, 1]);
    cases.push((
        "not allowed",
        b,
        10,
        TxError::NotARewardConsortium(OUTSIDER),
    ));
    let b = batch(&kit, UNREGISTERED, (0, 0, 1), e4.clone(), &[0, 1]);
    cases.push((
        "unregistered",
        b,
        10,
        TxError::UnknownConsortium(UNREGISTERED),
    ));
    let under = |signers: &[u16], got| {
        (
            batch(&kit, CID, (0, 0, 1), e4.clone(), signers),
            TxError::Quorum {
                what: "a reward batch",
                need: 2,
                got,
            },
        )
    };
    for (name, signers, got) in [
        ("one signer", &[1u16][..], 1),
        ("one signer twice", &[1, 1][..], 1),
        ("index out of range", &[0, 7][..], 1),
        ("nobody", &[][..], 0),
    ] {
        let (b, e) = under(signers, got);
        cases.push((name, b, 10, e));
    }
    // A signature by a key that is not registered, under a registered index.
    let mut b = good(&kit);
    b.sigs[1].1 = Keypair::for_test("stranger", 0).sign(&b.digest);
    cases.push((
        "stranger's signature",
        b,
        10,
        TxError::Quorum {
            what: "a reward batch",
            need: 2,
            got: 1,
        },
    ));
    // Signed as an anchor key set digest would be: the domain differs.
    let mut b = good(&kit);
    let want = b.digest;
    b.digest = keys_digest(&CID, 0, &[], 2);
    cases.push((
        "digest of something else",
        b,
        10,
        TxError::RewardDigestMismatch {
            want,
            got: keys_digest(&CID, 0, &[], 2),
        },
    ));
    let mut unsorted = e4.clone();
    unsorted.swap(1, 2);
    let b = batch(&kit, CID, (0, 0, 1), unsorted, &[0, 1]);
    cases.push((
        "unsorted",
        b,
        10,
        TxError::BadRewardEntry {
            index: 2,
            reason: "addresses not sorted ascending",
        },
    ));
    let mut dup = e4.clone();
    dup[2].address = dup[1].address;
    let b = batch(&kit, CID, (0, 0, 1), dup, &[0, 1]);
    cases.push((
        "duplicate",
        b,
        10,
        TxError::BadRewardEntry {
            index: 2,
            reason: "duplicate address",
        },
    ));
    let mut zero = e4.clone();
    zero[3].amount = 0;
    let b = batch(&kit, CID, (0, 0, 1), zero, &[0, 1]);
    cases.push((
        "zero",
        b,
        10,
        TxError::BadRewardEntry {
            index: 3,
            reason: "zero amount",
        },
    ));
    let mut hole = e4.clone();
    hole.insert(
        0,
        RewardEntry {
            address: BLACK_HOLE,
            amount: 1,
        },
    );
    let b = batch(&kit, CID, (0, 0, 1), hole, &[0, 1]);
    cases.push((
        "black hole",
        b,
        10,
        TxError::BadRewardEntry {
            index: 0,
            reason: "pays the black hole or the pool itself",
        },
    ));
    let b = batch(&kit, CID, (0, 0, 1), consumers(0, 9, 1), &[0, 1]);
    cases.push((
        "9 entries",
        b,
        10,
        TxError::RewardBatchTooLarge { got: 9, max: 8 },
    ));
    for (part, parts) in [(0, 0), (1, 1), (0, 4)] {
        let b = batch(&kit, CID, (0, part, parts), e4.clone(), &[0, 1]);
        cases.push((
            "parts out of range",
            b,
            10,
            TxError::RewardParts {
                part,
                parts,
                max: 3,
            },
        ));
    }
    let b = batch(&kit, CID, (0, 1, 2), e4.clone(), &[0, 1]);
    cases.push((
        "starts with part 1",
        b,
        10,
        TxError::RewardPartOutOfOrder {
            epoch: 0,
            want: 0,
            got_epoch: 0,
            got: 1,
        },
    ));
    cases.push((
        "epoch not over",
        good(&kit),
        9,
        TxError::RewardEpochNotOver {
            epoch: 0,
            payable_from_slot: 10,
        },
    ));
    cases.push((
        "a first epoch older than the last two ended",
        good(&kit),
        40,
        TxError::RewardEpochTooOld {
            epoch: 0,
            oldest: 2,
        },
    ));
    // Budget: 100 QCSS an epoch.
    let b = batch(
        &kit,
        CID,
        (0, 0, 1),
        consumers(0, 2, 50 * COIN + 1),
        &[0, 1],
    );
    cases.push((
        "over budget",
        b,
        10,
        TxError::RewardOverBudget {
            epoch: 0,
            budget: 100 * COIN,
            paid: 0,
            asked: u128::from(100 * COIN + 2),
        },
    ));
    for (name, b, slot, want) in cases {
        assert_eq!(pay(&kit, &mut st, b, slot), Err(want), "{name}");
    }

    // Replay and gaps, after epoch 0 is paid.
    pay(&kit, &mut st, good(&kit), 10).unwrap();
    assert_eq!(
        pay(&kit, &mut st, good(&kit), 20),
        Err(TxError::RewardEpochPaid {
            epoch: 0,
            last_paid: 0
        }),
        "the same epoch again"
    );
    let b = batch(&kit, CID, (2, 0, 1), e4.clone(), &[0, 1]);
    assert_eq!(
        pay(&kit, &mut st, b, 30),
        Err(TxError::RewardEpochGap { want: 1, got: 2 })
    );
    // The very same signed transaction cannot be included twice either.
    let tx = tx_at(
        &kit,
        &st,
        &kit.users[0],
        20,
        TxKind::RewardBatch(Box::new(batch(&kit, CID, (1, 0, 1), vec![], &[0, 1]))),
    );
    st.apply_tx(&tx, ctx(&kit, 20)).unwrap();
    assert!(matches!(
        st.clone().apply_tx(&tx, ctx(&kit, 20)),
        Err(TxError::Replayed { .. })
    ));
    assert_eq!(
        st.consortia[&CID].rewards.last_paid_epoch,
        Some(1),
        "an empty epoch closes it"
    );

    // The pool's account: nobody sends from it or to it.
    let to_pool = tx_at(
        &kit,
        &st,
        &kit.users[1],
        20,
        TxKind::Transfer {
            to: REWARD_POOL,
            amount: 1,
        },
    );
    assert_eq!(
        st.clone().apply_tx(&to_pool, ctx(&kit, 20)),
        Err(TxError::ToRewardPool)
    );
    let mut from_pool = tx_at(
        &kit,
        &st,
        &kit.users[1],
        20,
        TxKind::Transfer {
            to: kit.users[1].address(),
            amount: 1,
        },
    );
    from_pool.tx.sender = REWARD_POOL;
    assert_eq!(
        st.clone().apply_tx(&from_pool, ctx(&kit, 20)),
        Err(TxError::FromRewardPool)
    );
    supply_ok(&kit, &st);
}

#[test]
fn an_epoch_in_parts_is_paid_once_all_parts_are_in_and_shares_one_budget() {
    let (kit, mut st) = setup();
    // 24 consumers, sorted, in 3 parts of 8; 4 QCSS each = 96 of 100.
    let all = consumers(100, 24, 4 * COIN);
    let part = |i: usize| all[i * 8..(i + 1) * 8].to_vec();
    pay(
        &kit,
        &mut st,
        batch(&kit, CID, (0, 0, 3), part(0), &[1, 2]),
        10,
    )
    .unwrap();
    let r = &st.consortia[&CID].rewards;
    assert_eq!(r.last_paid_epoch, None, "not complete after part 0");
    assert_eq!(r.open.as_ref().map(|o| o.next_part), Some(1));
    // Part 2 before part 1, part 0 again, a different part count, and the
    // next epoch while this one is open: each refused.
    assert!(matches!(
        pay(
            &kit,
            &mut st,
            batch(&kit, CID, (0, 2, 3), part(2), &[1, 2]),
            11
        ),
        Err(TxError::RewardPartOutOfOrder {
            want: 1,
            got: 2,
            ..
        })
    ));
    assert!(matches!(
        pay(
            &kit,
            &mut st,
            batch(&kit, CID, (0, 0, 3), part(0), &[1, 2]),
            11
        ),
        Err(TxError::RewardPartOutOfOrder {
            want: 1,
            got: 0,
            ..
        })
    ));
    assert_eq!(
        pay(
            &kit,
            &mut st,
            batch(&kit, CID, (0, 1, 2), part(1), &[1, 2]),
            11
        ),
        Err(TxError::RewardParts {
            part: 1,
            parts: 2,
            max: 3
        })
    );
    assert!(matches!(
        pay(
            &kit,
            &mut st,
            batch(&kit, CID, (1, 0, 1), vec![], &[1, 2]),
            21
        ),
        Err(TxError::RewardPartOutOfOrder {
            epoch: 0,
            want: 1,
            ..
        })
    ));
    // A part that pays someone part 0 already paid (not after its last address).
    assert_eq!(
        pay(
            &kit,
            &mut st,
            batch(&kit, CID, (0, 1, 3), part(0), &[1, 2]),
            11
        ),
        Err(TxError::BadRewardEntry {
            index: 0,
            reason: "not after the previous part's last address"
        })
    );
    pay(
        &kit,
        &mut st,
        batch(&kit, CID, (0, 1, 3), part(1), &[1, 2]),
        11,
    )
    .unwrap();
    // The budget is per epoch across the parts: 64 paid, 36 left.
    let mut last = part(2);
    last[7].amount = 4 * COIN + 4 * COIN + 1;
    assert_eq!(
        pay(
            &kit,
            &mut st,
            batch(&kit, CID, (0, 2, 3), last, &[1, 2]),
            12
        ),
        Err(TxError::RewardOverBudget {
            epoch: 0,
            budget: 100 * COIN,
            paid: 64 * COIN,
            asked: u128::from(36 * COIN + 1),
        })
    );
    pay(
        &kit,
        &mut st,
        batch(&kit, CID, (0, 2, 3), part(2), &[1, 2]),
        12,
    )
    .unwrap();
    let r = &st.consortia[&CID].rewards;
    assert_eq!(r.last_paid_epoch, Some(0));
    assert_eq!(r.open, None);
    assert_eq!(r.paid_total, 96 * COIN);
    assert_eq!(st.reward_paid[&0], 96 * COIN);
    for e in &all {
        assert_eq!(st.accounts[&e.address].locked_total(), u128::from(4 * COIN));
    }
    supply_ok(&kit, &st);
}

#[test]
fn the_pool_never_pays_more_than_it_holds() {
    // One epoch over the whole period: the budget is the whole pool.
    let mut params = reward_params();
    params.rewards.period_slots = params.rewards.epoch_slots;
    let kit = Kit::with(params);
    let mut st = kit.state();
    register(&kit, &mut st, CID, 1);
    assert_eq!(kit.params.rewards.epoch_budget(), 1_000 * COIN);
    let mut most = consumers(0, 2, 500 * COIN);
    most[1].amount -= 5;
    pay(
        &kit,
        &mut st,
        batch(&kit, CID, (0, 0, 1), most, &[0, 1]),
        10,
    )
    .unwrap();
    assert_eq!(st.balance(&REWARD_POOL), 5);
    assert_eq!(
        pay(
            &kit,
            &mut st,
            batch(&kit, CID, (1, 0, 1), consumers(5, 1, 6), &[0, 1]),
            20
        ),
        Err(TxError::RewardOverPool {
            remaining: 5,
            asked: 6
        })
    );
    pay(
        &kit,
        &mut st,
        batch(&kit, CID, (1, 0, 1), consumers(5, 1, 5), &[0, 1]),
        20,
    )
    .unwrap();
    assert_eq!(st.balance(&REWARD_POOL), 0);
    supply_ok(&kit, &st);
}

#[test]
fn size_limits_are_per_kind_and_checked_before_decoding() {
    let (kit, st) = setup();
    let p = &kit.params;
    let big = batch(&kit, CID, (0, 0, 1), consumers(0, 8, 1), &[0, 1]);
    let tx = tx_at(
        &kit,
        &st,
        &kit.users[0],
        10,
        TxKind::RewardBatch(Box::new(big)),
    );
    let bytes = tx.encode();
    assert!(bytes.len() > 400, "8 entries are 320 bytes alone");
    assert_eq!(SignedTx::decode_for(&bytes, p), Ok(tx.clone()));
    // A non-batch transaction may not use the batch limit.
    let mut tiny = p.clone();
    tiny.max_tx_bytes = 200;
    let t = tx_at(
        &kit,
        &st,
        &kit.users[0],
        10,
        TxKind::RegisterProducer {
            url: "u".repeat(150),
        },
    );
    let tb = t.encode();
    assert!(tb.len() > 200);
    assert!(matches!(
        SignedTx::decode_for(&tb, &tiny),
        Err(crate::codec::CodecError::Oversize { limit: 200, .. })
    ));
    // Over the batch limit: refused unread.
    tiny.rewards.max_tx_bytes = 300;
    assert!(matches!(
        SignedTx::decode_for(&bytes, &tiny),
        Err(crate::codec::CodecError::Oversize { limit: 300, .. })
    ));
}

#[test]
fn white_paper_pool_is_carved_out_of_marketing() {
    let p = Params::white_paper();
    let r = &p.rewards;
    assert_eq!(r.pool, 100_000_000 * COIN);
    assert_eq!(r.period_slots * p.slot_ms, 3 * 365 * 24 * 3600 * 1000 / 2);
    // 547.5 days of one-day epochs: 548 epochs, never faster than 18 months.
    assert_eq!(r.epochs(), 548);
    assert_eq!(r.epoch_budget(), 100_000_000 * COIN / 548);
    let buckets = std::array::from_fn(|i| Keypair::for_test("bucket", i as u64).address());
    let producers = (0..31)
        .map(|i| Keypair::for_test("p", i).address())
        .collect();
    let g = crate::params::Genesis::white_paper("t", 0, p.clone(), buckets, producers);
    assert_eq!(g.check(), Ok(crate::params::GENESIS_SUPPLY));
    let st = State::genesis(&g).unwrap();
    assert_eq!(st.balance(&REWARD_POOL), 100_000_000 * COIN);
    assert_eq!(st.balance(&buckets[3]), 200_000_000 * COIN, "marketing");
    // A pool the allocations do not fund is refused.
    let mut bad = g.clone();
    bad.params.rewards.pool += 1;
    assert!(bad.check().is_err());
    // Entries per part that cannot fit the batch limit are refused.
    let mut bad = g.clone();
    bad.params.rewards.max_entries = 13_100;
    assert!(matches!(bad.check(), Err(GenesisError::Invalid(_))));
}
