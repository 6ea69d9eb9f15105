//! Transfers validated and applied per second on one core: signs N
//! transfers from 1,000 accounts, puts them in one block and times
//! `apply_block` (signature checks included, `verify_strict` one by one).
//!
//! `cargo run -p qcss-dpos --example apply_bench -- 10000`

use std::time::Instant;

use qcss_dpos::address::Keypair;
use qcss_dpos::block::Block;
use qcss_dpos::chain::{apply_block, scheduled_producer};
use qcss_dpos::params::{Allocation, COIN, Genesis, Params};
use qcss_dpos::state::State;
use qcss_dpos::tx::{Tx, TxKind};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let params = Params::fast(4);
    let producers: Vec<Keypair> = (0..4).map(|i| Keypair::for_test("bench-p", i)).collect();
    let users: Vec<Keypair> = (0..1_000)
        .map(|i| Keypair::for_test("bench-u", i))
        .collect();
    let genesis = Genesis {
        name: "bench".into(),
        genesis_time_ms: 0,
        params: params.clone(),
        allocations: users
            .iter()
            .map(|u| Allocation {
                label: "user".into(),
                address: u.address(),
                amount: 1_000 * COIN,
            })
            .collect(),
        initial_producers: producers.iter().map(Keypair::address).collect(),
    };
    let state = State::genesis(&genesis).expect("valid genesis");
    let t = Instant::now();
    let txs: Vec<_> = (0..n)
        .map(|i| {
            let from = &users[i % users.len()];
            Tx {
                chain_id: state.chain_id,
                sender: from.address(),
                nonce: (i / users.len()) as u64,
                fee: params.min_fee,
                expiry_slot: 100,
                kind: TxKind::Transfer {
                    to: users[(i * 7 + 1) % users.len()].address(),
                    amount: 1,
                },
            }
            .sign(from)
        })
        .collect();
    let signing = t.elapsed();
    let (who, version) = scheduled_producer(&state, 1, &params);
    let key = producers
        .iter()
        .find(|k| k.address() == who)
        .expect("a producer owns slot 1");
    let block = Block::build(
        key,
        state.chain_id,
        1,
        1,
        state.head_id,
        version,
        state.mmr.root(),
        txs,
    );
    let t = Instant::now();
    let next = apply_block(&state, &block, &params).expect("valid block");
    let apply = t.elapsed();
    next.supply_invariant(&params).expect("supply invariant");
    println!(
        "{n} transfers: signed in {:.2?} ({:.0}/s), block validated and applied in {:.2?} ({:.0} tx/s on one core)",
        signing,
        n as f64 / signing.as_secs_f64(),
        apply,
        n as f64 / apply.as_secs_f64()
    );
}
