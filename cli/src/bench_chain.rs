//! `qcss bench chain`: the public chain's figures on this machine.
//!
//! 1. **Apply**: N signed transfers from 1,000 accounts in one block of a
//!    31-producer chain; `apply_block` timed (every signature checked with
//!    `verify_strict`, on all cores for blocks of ≥ 512 transactions).
//! 2. **Finality**: three `ChainNode`s on 127.0.0.1 holding the 31 producer
//!    keys (11/10/10), as `network up` runs them; for every block, the time
//!    from its slot's start until node 1 saw it irreversible.
//! 3. **Sync**: a chain of B blocks built offline (all 31 keys, virtual
//!    clock) is served by one node; a keyless node started from scratch
//!    fetches it; blocks per second until it holds the served chain's LIB.
//!
//! Text or `--json`. Figures, not assertions: compare runs on one machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use qcss_dpos::address::Keypair;
use qcss_dpos::block::Block;
use qcss_dpos::chain::{apply_block, scheduled_producer};
use qcss_dpos::node::{Clock, Node, SystemClock, VirtualClock};
use qcss_dpos::p2p::Peer;
use qcss_dpos::params::{Allocation, COIN, Genesis, Params};
use qcss_dpos::runner::{ChainNode, P2pConfig};
use qcss_dpos::state::State;
use qcss_dpos::tx::{Tx, TxKind};
use serde::Serialize;

#[derive(Debug, Args)]
pub(crate) struct ChainBenchArgs {
    /// Transfers in the applied block.
    #[arg(long, default_value_t = 10_000)]
    transfers: usize,
    /// Slot length for the finality run, ms.
    #[arg(long, default_value_t = 500)]
    slot_ms: u64,
    /// Seconds of the finality run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Blocks in the chain the sync run fetches.
    #[arg(long, default_value_t = 2_000)]
    sync_blocks: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    transfers: usize,
    apply_seconds: f64,
    transfers_per_second: f64,
    cores: usize,
    slot_ms: u64,
    finalized_blocks: usize,
    finality_seconds_mean: f64,
    finality_seconds_max: f64,
    finality_slots_mean: f64,
    producer_cpu_percent_of_one_core: f64,
    sync_blocks: u64,
    sync_seconds: f64,
    sync_blocks_per_second: f64,
}

pub(super) fn run(a: ChainBenchArgs) -> Result<()> {
    let (apply_seconds, tps) = apply(a.transfers)?;
    let rt = tokio::runtime::Runtime::new()?;
    let fin = rt.block_on(finality(a.slot_ms, a.seconds))?;
    let (sync_seconds, bps) = rt.block_on(sync(a.sync_blocks))?;
    let r = Report {
        transfers: a.transfers,
        apply_seconds,
        transfers_per_second: tps,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        slot_ms: a.slot_ms,
        finalized_blocks: fin.blocks,
        finality_seconds_mean: fin.mean,
        finality_seconds_max: fin.max,
        finality_slots_mean: fin.mean * 1000.0 / a.slot_ms as f64,
        producer_cpu_percent_of_one_core: fin.cpu_percent,
        sync_blocks: a.sync_blocks,
        sync_seconds,
        sync_blocks_per_second: bps,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "apply:    {} transfers validated and applied in {:.3} s = {:.0} transfers/s ({} cores)",
        r.transfers, r.apply_seconds, r.transfers_per_second, r.cores
    );
    println!(
        "finality: {} blocks, {} ms slots, 31 producers on 3 nodes: irreversible {:.2} s after their slot began on average ({:.1} slots), {:.2} s at most",
        r.finalized_blocks,
        r.slot_ms,
        r.finality_seconds_mean,
        r.finality_slots_mean,
        r.finality_seconds_max
    );
    println!(
        "cpu:      the three producing nodes used {:.1}% of one core together",
        r.producer_cpu_percent_of_one_core
    );
    println!(
        "sync:     {} blocks from scratch in {:.2} s = {:.0} blocks/s",
        r.sync_blocks, r.sync_seconds, r.sync_blocks_per_second
    );
    Ok(())
}

fn genesis_with(
    n_users: u64,
    params: Params,
    producers: &[Keypair],
    start_ms: u64,
) -> (Genesis, Vec<Keypair>) {
    let users: Vec<Keypair> = (0..n_users)
        .map(|i| Keypair::for_test("bench-u", i))
        .collect();
    let g = Genesis {
        name: "bench".into(),
        genesis_time_ms: start_ms,
        params,
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
    (g, users)
}

fn producers() -> Vec<Keypair> {
    (0..31).map(|i| Keypair::for_test("bench-p", i)).collect()
}

fn apply(n: usize) -> Result<(f64, f64)> {
    let params = Params::white_paper();
    let keys = producers();
    let (genesis, users) = genesis_with(1_000, params.clone(), &keys, 0);
    let state = State::genesis(&genesis).map_err(|e| anyhow!("{e}"))?;
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
    let (who, version) = scheduled_producer(&state, 1, &params);
    let key = keys
        .iter()
        .find(|k| k.address() == who)
        .context("a producer owns slot 1")?;
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
    let next = apply_block(&state, &block, &params).map_err(|e| anyhow!("{e}"))?;
    let secs = t.elapsed().as_secs_f64();
    next.supply_invariant(&params).map_err(|e| anyhow!(e))?;
    Ok((secs, n as f64 / secs))
}

struct Finality {
    blocks: usize,
    mean: f64,
    max: f64,
    cpu_percent: f64,
}

fn process_cpu_seconds() -> f64 {
    let ticks = super::bench_network::cpu_ticks(std::process::id()).unwrap_or(0);
    ticks as f64 / super::bench_network::clock_ticks()
}

async fn finality(slot_ms: u64, seconds: u64) -> Result<Finality> {
    let mut params = Params::white_paper();
    params.slot_ms = slot_ms.max(100);
    let keys = producers();
    let start = SystemClock.now_ms() + 500;
    let (genesis, _) = genesis_with(10, params.clone(), &keys, start);
    let mut nodes: Vec<ChainNode> = Vec::new();
    for i in 0..3 {
        let mine: Vec<Keypair> = keys
            .iter()
            .enumerate()
            .filter(|(j, _)| j % 3 == i)
            .map(|(_, k)| k.clone())
            .collect();
        let mut it = mine.into_iter();
        let mut node = Node::in_memory(&genesis, it.next(), Arc::new(SystemClock))
            .map_err(|e| anyhow!("{e}"))?;
        for k in it {
            node.add_producer_key(k);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let peers = nodes.iter().map(|n| Peer::from(n.local_addr)).collect();
        nodes.push(ChainNode::start(
            node,
            listener,
            peers,
            P2pConfig::ephemeral()?,
        )?);
    }
    let cpu0 = process_cpu_seconds();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(seconds.max(2));
    let mut lib_seen = 0u64;
    let mut delays = Vec::new();
    while Instant::now() < deadline {
        let st = nodes[0].status();
        let now = SystemClock.now_ms();
        while lib_seen < st.lib_height {
            lib_seen += 1;
            let slot = nodes[0]
                .with_node(|n| n.block_at(lib_seen))
                .map_err(|e| anyhow!("{e}"))?
                .map(|b| b.header.slot)
                .unwrap_or(0);
            let slot_start = start + slot * params.slot_ms;
            delays.push(now.saturating_sub(slot_start) as f64 / 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;
    for n in nodes {
        n.stop().await;
    }
    let blocks = delays.len();
    let mean = if blocks == 0 {
        0.0
    } else {
        delays.iter().sum::<f64>() / blocks as f64
    };
    let max = delays.iter().cloned().fold(0.0, f64::max);
    Ok(Finality {
        blocks,
        mean,
        max,
        cpu_percent: 100.0 * cpu / wall,
    })
}

async fn sync(blocks: u64) -> Result<(f64, f64)> {
    let mut params = Params::white_paper();
    params.slot_ms = 1_000;
    let keys = producers();
    let dir = tempdir()?;
    // Slot 0 far enough back that `blocks` slots have passed.
    let start = SystemClock.now_ms() - (blocks + 2) * params.slot_ms;
    let (genesis, _) = genesis_with(10, params.clone(), &keys, start);
    let clock = VirtualClock::default();
    {
        let mut it = keys.iter().cloned();
        let mut node = Node::open(
            &dir.join("source"),
            &genesis,
            it.next(),
            Arc::new(clock.clone()),
        )
        .map_err(|e| anyhow!("{e}"))?;
        for k in it {
            node.add_producer_key(k);
        }
        for slot in 1..=blocks {
            clock.set(start + slot * params.slot_ms);
            node.produce_if_scheduled().map_err(|e| anyhow!("{e}"))?;
        }
    }
    // Serve it (keyless: the served chain stays as built), fetch it.
    let source = Node::open(&dir.join("source"), &genesis, None, Arc::new(SystemClock))
        .map_err(|e| anyhow!("{e}"))?;
    let target_lib = source.status().lib_height;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = ChainNode::start(source, listener, vec![], P2pConfig::ephemeral()?)?;
    let fresh = Node::open(&dir.join("fresh"), &genesis, None, Arc::new(SystemClock))
        .map_err(|e| anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let t = Instant::now();
    let client = ChainNode::start(
        fresh,
        listener,
        vec![server.local_addr.into()],
        P2pConfig::ephemeral()?,
    )?;
    let deadline = t + Duration::from_secs(120);
    while client.status().lib_height < target_lib {
        if Instant::now() > deadline {
            return Err(anyhow!(
                "sync did not reach height {target_lib} within 120 s (at {})",
                client.status().lib_height
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    client.stop().await;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((secs, target_lib as f64 / secs))
}

fn tempdir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "qcss-bench-chain-{}-{}",
        std::process::id(),
        SystemClock.now_ms()
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
