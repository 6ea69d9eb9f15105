//! `qcss bench uces`: UCES through the Gateway of a running `network up
//! --demo` network (issue 21's figures). It enrols fresh real-name
//! consumers (each may evaluate `daily_limit` = 3 units a day), registers a
//! coded lot of the demo's juice, has each consumer claim three units, then
//! times:
//!
//! 1. **evaluations**: every consumer evaluates its units (closed loop, at
//!    most `--clients` in flight): evaluations/s and latency;
//! 2. **votes**: the regulator's validator approves each (the deciding vote
//!    recomputes the product's and the enterprise's QCSS index): votes/s,
//!    and how many were refused by MVCC because another vote in the same
//!    block had moved the same index records first, or because the
//!    endorsing peers, at different heights, simulated different index
//!    records (each is retried until it commits, so the figure is what a
//!    validator really gets).
//!
//! The network keeps what the bench writes (it is a ledger).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use qcss_chaincode::unit_code::{BatchKey, issue_codes};
use qcss_peer::client::GatewayClient;
use qcss_proto::protos::TxValidationCode;
use serde_json::{Value, json};

use crate::network::{CONTRACT, read_info, register_and_enroll};
use crate::peer::gateway_at;

#[derive(Debug, Args)]
pub(crate) struct UcesBenchArgs {
    /// The network folder (`qcss network up --demo`).
    #[arg(long, default_value = "qcss-net")]
    dir: PathBuf,
    /// Consumers enrolled for the run (each claims and evaluates 3 units).
    #[arg(long, default_value_t = 40)]
    consumers: usize,
    /// Transactions in flight at most.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Units each consumer claims and evaluates (the demo's `daily_limit`).
const PER_CONSUMER: usize = 3;
/// Attempts per vote before the bench gives up on it (counted).
const MAX_VOTE_TRIES: u32 = 20;

#[derive(Debug, Default, serde::Serialize)]
struct Phase {
    transactions: usize,
    seconds: f64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Submissions refused for another vote's index update: MVCC at
    /// commit, or endorsements that differ (retried).
    mvcc_conflicts: usize,
}

fn phase(lat: &mut [f64], secs: f64, conflicts: usize) -> Phase {
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Phase {
        transactions: lat.len(),
        seconds: secs,
        per_second: lat.len() as f64 / secs.max(1e-9),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        mvcc_conflicts: conflicts,
    }
}

/// Submits and waits for commit; `Ok(Err(code))` when committed invalid.
async fn submit(
    g: &mut GatewayClient,
    f: &str,
    arg: &Value,
) -> Result<std::result::Result<(), TxValidationCode>> {
    let a = arg.to_string();
    let c = g
        .submit(CONTRACT, f, &[a.as_bytes()])
        .await
        .map_err(|e| anyhow!("{f}: {}", e.contract_message()))?;
    Ok(if c.code == TxValidationCode::Valid {
        Ok(())
    } else {
        Err(c.code)
    })
}

async fn must(g: &mut GatewayClient, f: &str, arg: &Value) -> Result<()> {
    match submit(g, f, arg).await? {
        Ok(()) => Ok(()),
        Err(code) => bail!("{f}: committed {}", code.as_str_name()),
    }
}

/// Runs `jobs` with at most `clients` at a time; each returns its latency
/// in ms and the MVCC conflicts it met.
async fn run_all<F>(clients: usize, jobs: Vec<F>) -> Result<(Vec<f64>, usize, f64)>
where
    F: std::future::Future<Output = Result<(Vec<f64>, usize)>> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(clients.max(1)));
    let started = Instant::now();
    let mut handles = Vec::new();
    for j in jobs {
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _p = sem.acquire().await;
            j.await
        }));
    }
    let (mut lat, mut conflicts) = (Vec::new(), 0);
    for h in handles {
        let (l, c) = h.await??;
        lat.extend(l);
        conflicts += c;
    }
    Ok((lat, conflicts, started.elapsed().as_secs_f64()))
}

pub(crate) fn run(a: UcesBenchArgs) -> Result<()> {
    let dir = if a.dir.is_absolute() {
        a.dir.clone()
    } else {
        std::env::current_dir()?.join(&a.dir)
    };
    let info = read_info(&dir)?;
    let org = |name: &str| {
        info.orgs
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| anyhow!("the network has no {name} org (run `network up --demo`)"))
    };
    let (producer, regulator, logistics) = (org("producer")?, org("regulator")?, org("logistics")?);
    if info.demo.is_none() {
        bail!("the network has no demo story (UCES is configured by `network up --demo`)");
    }
    let tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let started = Instant::now();
    // Fresh real-name consumers (network up registers kind `consumer` with
    // real_name=verified).
    let odir = dir.join("orgs").join(&logistics.name);
    let mut ids: Vec<PathBuf> = Vec::new();
    for i in 0..a.consumers {
        let who = format!("ub{tag}c{i}");
        register_and_enroll(
            &odir,
            &logistics.ca,
            &who,
            "client",
            "consumer",
            "localhost,127.0.0.1",
            info.key_type,
        )
        .with_context(|| format!("enrolling consumer {who}"))?;
        ids.push(odir.join(&who));
    }
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(async {
        let channel = info.channel.clone();
        let mut farm = gateway_at(
            &producer.peer,
            &dir.join("orgs").join(&producer.name).join("user1"),
            &channel,
        )
        .await?;
        let juice = "06901234560022";
        let lot = format!("UB{}", tag.to_uppercase());
        let n = a.consumers * PER_CONSUMER;
        let (key, _) = BatchKey::generate().map_err(|e| anyhow!("{e}"))?;
        must(
            &mut farm,
            "register_batch",
            &json!({"gtin": juice, "lot": lot, "quantity": n, "uom": "H87",
                    "production_date": "2026-06-01", "site": "bench line",
                    "code_key": key.public_key_b64url()}),
        )
        .await?;
        let codes = issue_codes(&key, "https://q.example.com", juice, &lot, 1..=n as u64)
            .map_err(|e| anyhow!("{e}"))?;
        let units: Vec<String> = (1..=n).map(|s| format!("{juice}/{lot}/{s}")).collect();
        // Claims (setup, not timed).
        let mut jobs = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let (peer, id, channel) = (logistics.peer.clone(), id.clone(), channel.clone());
            let mine: Vec<String> = codes[i * PER_CONSUMER..(i + 1) * PER_CONSUMER].to_vec();
            jobs.push(async move {
                let mut g = gateway_at(&peer, &id, &channel).await?;
                for c in mine {
                    must(&mut g, "claim", &json!({"code": c, "location": "bench"})).await?;
                }
                Ok((Vec::new(), 0))
            });
        }
        run_all(a.clients, jobs).await?;
        let setup_secs = started.elapsed().as_secs_f64();
        // 1. Evaluations.
        let mut jobs = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let (peer, id, channel) = (logistics.peer.clone(), id.clone(), channel.clone());
            let mine: Vec<String> = units[i * PER_CONSUMER..(i + 1) * PER_CONSUMER].to_vec();
            jobs.push(async move {
                let mut g = gateway_at(&peer, &id, &channel).await?;
                let mut lat = Vec::new();
                for u in mine {
                    let t = Instant::now();
                    must(
                        &mut g,
                        "uces_evaluate",
                        &json!({"unit": u, "scores": {"overall": 4, "quality": 4,
                                "performance": 5, "authenticity": 5}}),
                    )
                    .await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Ok((lat, 0))
            });
        }
        let (mut lat, c, secs) = run_all(a.clients, jobs).await?;
        let evaluations = phase(&mut lat, secs, c);
        // 2. Votes by the demo's validator, each retried until it commits.
        let val = dir.join("orgs").join(&regulator.name).join("user1");
        // Votes in flight together are on different authors' evaluations
        // (each author's credit record moves with each decided vote: that
        // conflict is the author's, not the index's).
        let order: Vec<String> = (0..PER_CONSUMER)
            .flat_map(|k| (0..a.consumers).map(move |i| i * PER_CONSUMER + k))
            .map(|j| units[j].clone())
            .collect();
        let mut jobs = Vec::new();
        for u in order {
            let (peer, val, channel) = (regulator.peer.clone(), val.clone(), channel.clone());
            jobs.push(async move {
                let mut g = gateway_at(&peer, &val, &channel).await?;
                let t = Instant::now();
                let mut conflicts = 0;
                for _ in 0..MAX_VOTE_TRIES {
                    match submit(&mut g, "uces_vote", &json!({"unit": u, "approve": true})).await {
                        Ok(Ok(())) => {
                            return Ok((vec![t.elapsed().as_secs_f64() * 1e3], conflicts));
                        }
                        // Another vote moved the same index records first:
                        // in the same block (MVCC), or the endorsers were at
                        // different heights and simulated different records.
                        Ok(Err(
                            TxValidationCode::MvccReadConflict
                            | TxValidationCode::PhantomReadConflict,
                        )) => conflicts += 1,
                        Err(e) if e.to_string().contains("payloads differ") => conflicts += 1,
                        Ok(Err(code)) => bail!("uces_vote {u}: committed {}", code.as_str_name()),
                        Err(e) => return Err(e),
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // Given up: counted, not timed.
                Ok((Vec::new(), conflicts))
            });
        }
        let (mut lat, c, secs) = run_all(a.clients, jobs).await?;
        let given_up = n - lat.len();
        let votes = phase(&mut lat, secs, c);
        Ok::<_, anyhow::Error>(json!({
            "consumers": a.consumers,
            "clients": a.clients,
            "setup_seconds": setup_secs,
            "evaluations": evaluations,
            "votes": votes,
            "votes_given_up": given_up,
        }))
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let line = |name: &str, p: &Value| {
        println!(
            "{name:<12} {:>5} in {:>6.1} s = {:>6.1}/s   p50 {:>6.0} ms  p99 {:>6.0} ms   index conflicts retried: {}",
            p["transactions"],
            p["seconds"].as_f64().unwrap_or(0.0),
            p["per_second"].as_f64().unwrap_or(0.0),
            p["p50_ms"].as_f64().unwrap_or(0.0),
            p["p99_ms"].as_f64().unwrap_or(0.0),
            p["mvcc_conflicts"]
        )
    };
    println!(
        "UCES through the Gateway: {} consumers x {PER_CONSUMER} units, {} in flight (setup {:.1} s)",
        a.consumers,
        a.clients,
        report["setup_seconds"].as_f64().unwrap_or(0.0)
    );
    line("evaluations", &report["evaluations"]);
    line("votes", &report["votes"]);
    println!(
        "votes given up after {MAX_VOTE_TRIES} tries each: {}",
        report["votes_given_up"]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::phase;

    #[test]
    fn percentiles_of_a_phase() {
        let mut lat: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = phase(&mut lat, 2.0, 3);
        assert_eq!(p.transactions, 100);
        assert_eq!(p.per_second, 50.0);
        assert_eq!(p.p50_ms, 51.0);
        assert_eq!(p.p99_ms, 100.0);
        assert_eq!(p.mvcc_conflicts, 3);
    }
}
