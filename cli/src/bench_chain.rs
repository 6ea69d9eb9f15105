//! `qcss bench chain`: the public chain's figures on this machine.
//!
//! 1. **Apply**: N signed transfers from 1,000 accounts in one block of a
//!    31-producer chain; `apply_block` timed (every signature checked with
//!    `verify_strict`, on all cores for blocks of ≥ 512 transactions).
//! 2. **Finality**: three `ChainNode`s on 127.0.0.1 holding the 31 producer
//!    keys (11/10/10), as `network up` runs them; for every block, the time
//!    from its slot's start until node 1 saw it irreversible.
//! 3. **Sync**: a chain of B blocks over a genesis of A accounts (default
//!    10,000: a state the size of a reward epoch's consumers) built offline
//!    (all 31 keys, virtual clock) is served by one node; a keyless node
//!    started from scratch fetches it; blocks per second until it holds the
//!    served chain's LIB. Run twice against the same server: storing a state
//!    checkpoint every 256 irreversible blocks (what nodes do) and on every
//!    finalize (what they did before), with the ratio.
//!
//! 4. **Reward batch**: an epoch of N consumer rewards (default 100,000) in
//!    parts of the white paper's 10,000 entries, each signed by 4 of 7
//!    anchor keys: decoding and checking every part against the state
//!    (`decode_for` + `check_tx`: sizes, entry rules, digest, quorum,
//!    budget), then `apply_block` of the blocks holding them (two parts a
//!    block: half a block each at most), timed separately.
//!    `--rewards-only` runs just this one.
//!
//! Text or `--json`. Figures, not assertions: compare runs on one machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use qcss_anchor::statement::keys_digest;
use qcss_dpos::address::{Address, Keypair};
use qcss_dpos::block::Block;
use qcss_dpos::chain::{apply_block, scheduled_producer};
use qcss_dpos::hash::Hash32;
use qcss_dpos::node::{Clock, Node, SystemClock, VirtualClock};
use qcss_dpos::p2p::Peer;
use qcss_dpos::params::{Allocation, COIN, Genesis, Params};
use qcss_dpos::rewards::{REWARD_POOL, RewardBatch, RewardEntry};
use qcss_dpos::runner::{ChainNode, P2pConfig};
use qcss_dpos::state::State;
use qcss_dpos::store::CHECKPOINT_EVERY;
use qcss_dpos::tx::{KeySet, Tx, TxKind};
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
    /// Accounts in the sync run's genesis state.
    #[arg(long, default_value_t = 10_000)]
    sync_accounts: u64,
    /// Consumers paid in the reward-batch figure.
    #[arg(long, default_value_t = 100_000)]
    reward_consumers: usize,
    /// Run only the reward-batch figure.
    #[arg(long)]
    rewards_only: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The reward-batch figure.
#[derive(Debug, Serialize)]
struct RewardFigures {
    consumers: usize,
    parts: usize,
    part_bytes_max: usize,
    blocks: usize,
    verify_seconds: f64,
    apply_seconds: f64,
    entries_per_second_applied: f64,
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
    /// The same three nodes with finality votes on (Casper FFG).
    votes_finalized_blocks: usize,
    votes_finality_seconds_mean: f64,
    votes_finality_seconds_max: f64,
    votes_finality_slots_mean: f64,
    votes_producer_cpu_percent_of_one_core: f64,
    sync_blocks: u64,
    sync_accounts: u64,
    sync_seconds: f64,
    sync_blocks_per_second: f64,
    sync_seconds_checkpoint_every_block: f64,
    sync_speedup: f64,
    /// The same sync on a chain finalized by votes (finalized as it comes
    /// by the certificates in the sync answers).
    votes_sync_seconds: f64,
    votes_sync_blocks_per_second: f64,
    rewards: RewardFigures,
}

pub(super) fn run(a: ChainBenchArgs) -> Result<()> {
    let rf = rewards(a.reward_consumers)?;
    let reward_line = format!(
        "rewards:  {} consumers in {} parts (≤ {} bytes each) checked (decode, rules, digest, 4-of-7 quorum) in {:.3} s; applied in {} blocks in {:.3} s = {:.0} entries/s",
        rf.consumers,
        rf.parts,
        rf.part_bytes_max,
        rf.verify_seconds,
        rf.blocks,
        rf.apply_seconds,
        rf.entries_per_second_applied
    );
    if a.rewards_only {
        if a.json {
            println!("{}", serde_json::to_string_pretty(&rf)?);
        } else {
            println!("{reward_line}");
        }
        return Ok(());
    }
    let (apply_seconds, tps) = apply(a.transfers)?;
    let rt = tokio::runtime::Runtime::new()?;
    let fin = rt.block_on(finality(a.slot_ms, a.seconds, false))?;
    let fin_votes = rt.block_on(finality(a.slot_ms, a.seconds, true))?;
    let sync_votes = rt.block_on(sync(a.sync_blocks, a.sync_accounts, true))?;
    let sync = rt.block_on(sync(a.sync_blocks, a.sync_accounts, false))?;
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
        votes_finalized_blocks: fin_votes.blocks,
        votes_finality_seconds_mean: fin_votes.mean,
        votes_finality_seconds_max: fin_votes.max,
        votes_finality_slots_mean: fin_votes.mean * 1000.0 / a.slot_ms as f64,
        votes_producer_cpu_percent_of_one_core: fin_votes.cpu_percent,
        sync_blocks: a.sync_blocks,
        sync_accounts: a.sync_accounts,
        sync_seconds: sync.seconds,
        sync_blocks_per_second: sync.blocks as f64 / sync.seconds,
        sync_seconds_checkpoint_every_block: sync.seconds_every_block,
        sync_speedup: sync.seconds_every_block / sync.seconds,
        votes_sync_seconds: sync_votes.seconds,
        votes_sync_blocks_per_second: sync_votes.blocks as f64 / sync_votes.seconds,
        rewards: rf,
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
        "          with finality votes: {} blocks irreversible {:.2} s after their slot began on average ({:.1} slots), {:.2} s at most ({:.1}× sooner)",
        r.votes_finalized_blocks,
        r.votes_finality_seconds_mean,
        r.votes_finality_slots_mean,
        r.votes_finality_seconds_max,
        r.finality_seconds_mean / r.votes_finality_seconds_mean.max(f64::MIN_POSITIVE)
    );
    println!(
        "cpu:      the three producing nodes used {:.1}% of one core together ({:.1}% with votes)",
        r.producer_cpu_percent_of_one_core, r.votes_producer_cpu_percent_of_one_core
    );
    println!(
        "sync:     {} blocks over {} accounts from scratch in {:.2} s = {:.0} blocks/s \
         (state checkpoint every {} blocks; every block: {:.2} s, {:.1}× slower)",
        r.sync_blocks,
        r.sync_accounts,
        r.sync_seconds,
        r.sync_blocks_per_second,
        CHECKPOINT_EVERY,
        r.sync_seconds_checkpoint_every_block,
        r.sync_speedup
    );
    println!(
        "          with finality votes: {:.2} s = {:.0} blocks/s (finalized by the certificates in the sync answers; {:.2}× the time without)",
        r.votes_sync_seconds,
        r.votes_sync_blocks_per_second,
        r.votes_sync_seconds / r.sync_seconds
    );
    println!("{reward_line}");
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
    let mut allocations: Vec<Allocation> = users
        .iter()
        .map(|u| Allocation {
            label: "user".into(),
            address: u.address(),
            amount: 1_000 * COIN,
        })
        .collect();
    if params.rewards.pool > 0 {
        allocations.push(Allocation {
            label: "dapp_reward_pool".into(),
            address: REWARD_POOL,
            amount: params.rewards.pool,
        });
    }
    let g = Genesis {
        name: "bench".into(),
        genesis_time_ms: start_ms,
        params,
        allocations,
        initial_producers: producers.iter().map(Keypair::address).collect(),
    };
    (g, users)
}

/// A block at `slot` on `state` by its scheduled producer.
fn block_at(
    state: &State,
    params: &Params,
    keys: &[Keypair],
    slot: u64,
    txs: Vec<qcss_dpos::tx::SignedTx>,
) -> Result<Block> {
    let (who, version) = scheduled_producer(state, slot, params);
    let key = keys
        .iter()
        .find(|k| k.address() == who)
        .context("a bench producer owns every slot")?;
    Ok(Block::build(
        key,
        state.chain_id,
        state.height + 1,
        slot,
        state.head_id,
        version,
        state.mmr.root(),
        txs,
    ))
}

fn rewards(consumers: usize) -> Result<RewardFigures> {
    let cid = Hash32([0x5a; 32]);
    let mut params = Params::white_paper();
    params.rewards.consortia = vec![cid];
    let r = params.rewards.clone();
    let keys = producers();
    let (genesis, users) = genesis_with(10, params.clone(), &keys, 0);
    let mut state = State::genesis(&genesis).map_err(|e| anyhow!("{e}"))?;
    let payer = &users[0];
    let tx = |state: &State, nonce: u64, slot: u64, kind: TxKind| {
        Tx {
            chain_id: state.chain_id,
            sender: payer.address(),
            nonce,
            fee: params.min_fee,
            expiry_slot: slot,
            kind,
        }
        .sign(payer)
    };
    // A 7-org consortium, quorum 4.
    let orgs: Vec<Keypair> = (0..7).map(|i| Keypair::for_test("bench-org", i)).collect();
    let addrs: Vec<_> = orgs.iter().map(Keypair::address).collect();
    let raw: Vec<[u8; 32]> = addrs.iter().map(|a| a.0).collect();
    let d = keys_digest(&cid, 0, &raw, 4);
    let ks = KeySet {
        consortium_id: cid,
        keys: addrs,
        quorum: 4,
        sigs: orgs
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u16, k.sign(&d)))
            .collect(),
    };
    let reg = tx(&state, 0, 1, TxKind::RegisterConsortium(Box::new(ks)));
    let b = block_at(&state, &params, &keys, 1, vec![reg])?;
    state = apply_block(&state, &b, &params).map_err(|e| anyhow!("{e}"))?;

    let per = r.max_entries as usize;
    let parts = consumers.div_ceil(per).max(1);
    if parts > r.max_parts as usize {
        anyhow::bail!(
            "{consumers} consumers need {parts} parts of {per}; the chain allows {}",
            r.max_parts
        );
    }
    let amount = (r.epoch_budget() / consumers.max(1) as u64).max(1);
    let mut entries: Vec<RewardEntry> = (0..consumers)
        .map(|i| {
            let mut a = [0u8; 32];
            a[..8].copy_from_slice(&(i as u64).to_be_bytes());
            a[8..16].copy_from_slice(b"consumer");
            RewardEntry {
                address: Address(a),
                amount,
            }
        })
        .collect();
    entries.sort_by_key(|e| e.address);
    // Epoch 0 is over from slot `epoch_slots`.
    let slot0 = r.epoch_slots;
    let mut encoded = Vec::with_capacity(parts);
    for (i, chunk) in entries.chunks(per).enumerate() {
        let mut b = RewardBatch {
            consortium_id: cid,
            epoch: 0,
            part: i as u32,
            parts: parts as u32,
            entries: chunk.to_vec(),
            digest: Hash32([0; 32]),
            sigs: vec![],
        };
        b.digest = b.compute_digest(&state.chain_id);
        b.sigs = orgs[..4]
            .iter()
            .enumerate()
            .map(|(k, o)| (k as u16, o.sign(&b.digest)))
            .collect();
        let stx = tx(
            &state,
            1 + i as u64,
            slot0 + 10,
            TxKind::RewardBatch(Box::new(b)),
        );
        encoded.push(stx.encode());
    }
    let part_bytes_max = encoded.iter().map(Vec::len).max().unwrap_or(0);

    // Verify: decode under the size limits and check each part against the
    // state it will meet (parts are sequential, so apply on a scratch copy).
    let t = Instant::now();
    let mut scratch = state.clone();
    let mut txs = Vec::with_capacity(parts);
    for bytes in &encoded {
        let stx =
            qcss_dpos::tx::SignedTx::decode_for(bytes, &params).map_err(|e| anyhow!("{e}"))?;
        let ctx = qcss_dpos::state::TxContext {
            params: &params,
            slot: slot0,
            height: scratch.height + 1,
        };
        scratch.check_tx(&stx, ctx).map_err(|e| anyhow!("{e}"))?;
        scratch.apply_tx(&stx, ctx).map_err(|e| anyhow!("{e}"))?;
        txs.push(stx);
    }
    let verify_seconds = t.elapsed().as_secs_f64();

    // Apply: two parts a block (each part is at most half a block).
    let mut blocks = Vec::new();
    let mut s = state.clone();
    for (i, pair) in txs.chunks(2).enumerate() {
        let b = block_at(&s, &params, &keys, slot0 + i as u64, pair.to_vec())?;
        s = apply_block(&s, &b, &params).map_err(|e| anyhow!("{e}"))?;
        blocks.push(b);
    }
    let t = Instant::now();
    let mut s = state.clone();
    for b in &blocks {
        s = apply_block(&s, b, &params).map_err(|e| anyhow!("{e}"))?;
    }
    let apply_seconds = t.elapsed().as_secs_f64();
    s.supply_invariant(&params).map_err(|e| anyhow!(e))?;
    let c = s.consortia.get(&cid).context("registered")?;
    if c.rewards.last_paid_epoch != Some(0) {
        anyhow::bail!("the epoch was not completed: {:?}", c.rewards);
    }
    Ok(RewardFigures {
        consumers,
        parts,
        part_bytes_max,
        blocks: blocks.len(),
        verify_seconds,
        apply_seconds,
        entries_per_second_applied: consumers as f64 / apply_seconds,
    })
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

/// Three in-process nodes over loopback gRPC holding the 31 keys
/// (11/10/10); `votes`: with finality votes on.
async fn finality(slot_ms: u64, seconds: u64, votes: bool) -> Result<Finality> {
    let mut params = Params::white_paper();
    params.slot_ms = slot_ms.max(100);
    params.fast_confirmations = votes;
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

/// The sync figure: seconds to fetch the served chain's LIB with the
/// default checkpoint interval and (without votes) with a checkpoint every
/// block.
struct Sync {
    blocks: u64,
    seconds: f64,
    seconds_every_block: f64,
}

async fn sync(blocks: u64, accounts: u64, votes: bool) -> Result<Sync> {
    let mut params = Params::white_paper();
    params.slot_ms = 1_000;
    // With votes, the served chain is finalized by its producer's votes and
    // the fetching node by the certificates the sync answers carry.
    params.fast_confirmations = votes;
    let keys = producers();
    let dir = tempdir()?;
    // Slot 0 far enough back that `blocks` slots have passed.
    let start = SystemClock.now_ms() - (blocks + 2) * params.slot_ms;
    let (genesis, _) = genesis_with(accounts, params.clone(), &keys, start);
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
    let mut seconds = Vec::new();
    let variants: &[(&str, u64)] = if votes {
        &[("fresh", CHECKPOINT_EVERY)]
    } else {
        &[("fresh", CHECKPOINT_EVERY), ("fresh-every-block", 1)]
    };
    for &(name, every) in variants {
        let fresh = Node::open_checkpointing(
            &dir.join(name),
            &genesis,
            None,
            Arc::new(SystemClock),
            every,
        )
        .map_err(|e| anyhow!("{e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let t = Instant::now();
        let client = ChainNode::start(
            fresh,
            listener,
            vec![server.local_addr.into()],
            P2pConfig::ephemeral()?,
        )?;
        let deadline = t + Duration::from_secs(600);
        while client.status().lib_height < target_lib {
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "sync did not reach height {target_lib} within 600 s (at {})",
                    client.status().lib_height
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seconds.push(t.elapsed().as_secs_f64());
        client.stop().await;
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Sync {
        blocks: target_lib,
        seconds: seconds[0],
        seconds_every_block: seconds.get(1).copied().unwrap_or(f64::NAN),
    })
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
