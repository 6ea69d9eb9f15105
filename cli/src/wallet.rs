//! `qcss wallet …`: the QCSS token wallet, an HTTP client of any public-chain
//! node's JSON API (`qcss_dpos::api`, docs/chain.md). Keys are the JSON key
//! files of [`crate::chain`] (mode 0600); transactions are built and signed
//! here and every rule is the chain's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use qcss_dpos::address::{Address, Keypair};
use qcss_dpos::api::{AccountView, HistoryEntry, StatusView};
use qcss_dpos::hash::Hash32;
use qcss_dpos::params::COIN;
use qcss_dpos::tx::{Tx, TxKind};

use crate::chain::{NodeArgs, read_key, write_key};
use crate::network_status::http;

/// Where the wallet finds a node when neither `--node` nor a network
/// folder says: the first node `network up` starts.
const DEFAULT_NODE_ENV: &str = "QCSS_CHAIN_NODE";

/// How long the wallet waits to connect to a node, and for its answer.
const API_TIMEOUTS: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(10));

/// GETs JSON; a non-200 answer becomes its `error` text.
/// A server that answers 429 (rate limited) is asked again after a second,
/// up to five times.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(addr: &str, path: &str) -> Result<T> {
    let mut tries = 0;
    let (status, body) = loop {
        let (status, body) = http(addr, "GET", path, None, API_TIMEOUTS)?;
        if status == 429 && tries < 5 {
            tries += 1;
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        break (status, body);
    };
    if status != 200 {
        bail!("{}", api_error(status, &body));
    }
    serde_json::from_str(&body).with_context(|| format!("{addr}{path}: unexpected answer"))
}

fn api_error(status: u16, body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

/// The node to talk to: `--node`, `$QCSS_CHAIN_NODE`, or the network's first.
pub(crate) fn node_addr(a: &NodeArgs) -> Result<String> {
    if let Some(n) = &a.node {
        return Ok(n.clone());
    }
    if let Ok(n) = std::env::var(DEFAULT_NODE_ENV) {
        return Ok(n);
    }
    let info = crate::network::read_info(&a.dir).with_context(|| {
        format!(
            "no --node given, ${DEFAULT_NODE_ENV} unset, and no network in {}",
            a.dir.display()
        )
    })?;
    info.chain
        .and_then(|c| c.nodes.first().map(|n| n.api.clone()))
        .ok_or_else(|| anyhow!("the network in {} runs no public chain", a.dir.display()))
}

/// Base units as QCSS with 8 decimals.
pub(crate) fn qcss(units: u64) -> String {
    format!("{}.{:08} QCSS", units / COIN, units % COIN)
}

/// Parses "12", "12.5" or "0.00000001" QCSS into base units, exactly.
pub(crate) fn parse_amount(text: &str) -> Result<u64> {
    let t = text.trim().trim_end_matches("QCSS").trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let bad = || anyhow!("amount {t:?}: write QCSS with at most 8 decimals, e.g. 12.5");
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 8
        || whole.len() > 12
    {
        return Err(bad());
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let f: u64 = format!("{frac:0<8}").parse().map_err(|_| bad())?;
    let units = w
        .checked_mul(COIN)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(bad)?;
    if units == 0 {
        bail!("amount must be positive");
    }
    Ok(units)
}

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a key file (mode 0600) and print its address.
    New {
        /// Where to write the key.
        #[arg(long)]
        key: PathBuf,
    },
    /// Print a key file's address.
    Address {
        /// The key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// An account's balance, locked rewards and votes.
    Balance {
        /// The account (qcss1…); or give --key.
        address: Option<String>,
        /// A key file whose account to show.
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Send QCSS to an address (to the black hole: burned).
    Transfer {
        /// Recipient (qcss1…).
        to: String,
        /// Amount in QCSS, e.g. 12.5.
        amount: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Destroy QCSS.
    Burn {
        /// Amount in QCSS.
        amount: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Approve up to 31 producers (replaces the previous vote; none: withdraw it).
    Vote {
        /// Producer addresses.
        producers: Vec<String>,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Stand for election as a producer.
    RegisterProducer {
        /// Where the producer says who it is.
        #[arg(long)]
        url: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Move matured rewards to the liquid balance (once per 30 days).
    Withdraw {
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Submit the equivocation proofs a node holds (two headers for one
    /// slot, a double or surround finality vote), paying their fees: each
    /// convicted producer is never elected again.
    Evidence {
        /// Only list them.
        #[arg(long)]
        list: bool,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The account's transactions in recent blocks.
    History {
        /// The account (qcss1…); or give --key.
        address: Option<String>,
        /// A key file whose account to show.
        #[arg(long)]
        key: Option<PathBuf>,
        /// How many recent blocks to search (at most 2,000).
        #[arg(long, default_value_t = 500)]
        blocks: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TxArgs {
    /// The sender's key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Fee in QCSS (default: the chain's minimum).
    #[arg(long)]
    pub fee: Option<String>,
    /// The chain id this transaction is meant for; refused if the node is
    /// on another chain.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Return once the node accepted it, without waiting for a block.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub node: NodeArgs,
}

pub(crate) fn run(cmd: WalletCommand) -> Result<()> {
    match cmd {
        WalletCommand::New { key } => {
            let k = crate::chain::new_key()?;
            write_key(&key, &k)?;
            println!("{}", k.address());
            Ok(())
        }
        WalletCommand::Address { key } => {
            println!("{}", read_key(&key)?.address());
            Ok(())
        }
        WalletCommand::Balance { address, key, node } => {
            let who = account_of(address.as_deref(), key.as_deref())?;
            let addr = node_addr(&node)?;
            let v: AccountView = get_json(&addr, &format!("/v1/account/{who}"))?;
            if node.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("{who}");
            println!("  liquid   {}", qcss(v.account.balance));
            println!(
                "  locked   {} matured (withdrawable), {} still locked",
                qcss(v.matured),
                qcss(v.still_locked)
            );
            for l in &v.locks {
                println!(
                    "           {:>22}  {} at slot {} ({})",
                    qcss(l.amount),
                    if l.matured { "unlocked" } else { "unlocks" },
                    l.unlock_slot,
                    utc(l.unlock_time_ms)
                );
            }
            if let Some(next) = v.next_withdraw_slot.filter(|n| *n > v.head_slot) {
                println!("  next withdrawal allowed at slot {next} (one per 30 days)");
            }
            println!("  nonce    {}", v.account.nonce);
            if !v.account.votes.is_empty() {
                println!("  votes for {} producers", v.account.votes.len());
            }
            if let Some(p) = v.producer {
                println!(
                    "  producer: produced {}, missed {}",
                    p.produced_total, p.missed_total
                );
            }
            Ok(())
        }
        WalletCommand::Transfer { to, amount, tx } => {
            let to: Address = to.trim().parse().map_err(|e| anyhow!("recipient: {e}"))?;
            let amount = parse_amount(&amount)?;
            send(&tx, TxKind::Transfer { to, amount })
        }
        WalletCommand::Burn { amount, tx } => {
            let amount = parse_amount(&amount)?;
            send(&tx, TxKind::Burn { amount })
        }
        WalletCommand::Vote { producers, tx } => {
            if producers.len() > 64 {
                bail!("a vote names at most 31 producers, got {}", producers.len());
            }
            let producers = producers
                .iter()
                .map(|p| {
                    p.trim()
                        .parse()
                        .map_err(|e| anyhow!("producer {p:.70}: {e}"))
                })
                .collect::<Result<Vec<Address>>>()?;
            send(&tx, TxKind::Vote { producers })
        }
        WalletCommand::RegisterProducer { url, tx } => send(&tx, TxKind::RegisterProducer { url }),
        WalletCommand::Withdraw { tx } => {
            // The chain decides; this only explains a refusal in advance.
            let addr = node_addr(&tx.node)?;
            let me = read_key(&tx.key)?.address();
            let v: AccountView = get_json(&addr, &format!("/v1/account/{me}"))?;
            if let Some(next) = v.next_withdraw_slot.filter(|n| *n > v.head_slot) {
                bail!(
                    "withdrew already; the next withdrawal is allowed at slot {next} (one per 30 days)"
                );
            }
            if v.matured == 0 {
                match v.locks.first() {
                    Some(l) => bail!(
                        "nothing has unlocked yet; the first {} unlocks at slot {} ({})",
                        qcss(l.amount),
                        l.unlock_slot,
                        utc(l.unlock_time_ms)
                    ),
                    None => bail!("{me} has no locked rewards"),
                }
            }
            println!("withdrawing {}", qcss(v.matured));
            send(&tx, TxKind::WithdrawRewards)
        }
        WalletCommand::Evidence { list, tx } => {
            let addr = node_addr(&tx.node)?;
            let found: Vec<qcss_dpos::api::EvidenceView> = get_json(&addr, "/v1/evidence")?;
            if found.is_empty() {
                println!("the node at {addr} holds no equivocation evidence");
                return Ok(());
            }
            let key = read_key(&tx.key)?;
            let mut failed = 0;
            for e in found.iter().take(128) {
                println!("{} — {}", e.producer, e.rule);
                if list {
                    continue;
                }
                // A node's proof is still checked in full by the chain.
                let bytes = hex::decode(&e.kind_hex)
                    .map_err(|_| anyhow!("the node served evidence that is not hex"))?;
                let kind: TxKind = qcss_dpos::codec::decode(&bytes, 64 * 1024)
                    .map_err(|e| anyhow!("the node served evidence that does not decode: {e}"))?;
                match submit(
                    &addr,
                    &key,
                    kind,
                    tx.fee.as_deref(),
                    tx.chain_id.as_deref(),
                    !tx.no_wait,
                ) {
                    Ok(s) => println!("  submitted {}", s.id),
                    Err(err) => {
                        failed += 1;
                        println!("  not submitted: {err:#}");
                    }
                }
            }
            if failed > 0 {
                bail!(
                    "{failed} of {} proofs were not submitted",
                    found.len().min(128)
                );
            }
            Ok(())
        }
        WalletCommand::History {
            address,
            key,
            blocks,
            node,
        } => {
            let who = account_of(address.as_deref(), key.as_deref())?;
            let addr = node_addr(&node)?;
            let list: Vec<HistoryEntry> =
                get_json(&addr, &format!("/v1/account/{who}/history?blocks={blocks}"))?;
            if node.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                println!("no transactions of {who} in the last {blocks} blocks");
            }
            for e in list {
                println!(
                    "block {:>7}  {}  {}",
                    e.height,
                    &e.id.to_hex()[..16],
                    describe(&e.tx.tx, &who)
                );
            }
            Ok(())
        }
    }
}

fn account_of(address: Option<&str>, key: Option<&Path>) -> Result<Address> {
    match (address, key) {
        (Some(a), None) => a.trim().parse().map_err(|e| anyhow!("address: {e}")),
        (None, Some(k)) => Ok(read_key(k)?.address()),
        _ => bail!("give an address or --key, one of them"),
    }
}

fn describe(tx: &Tx, me: &Address) -> String {
    let dir = |from: &Address| if from == me { "sent" } else { "received" };
    match &tx.kind {
        TxKind::Transfer { to, amount } if to.is_black_hole() => {
            format!("burned {} (sent to the black hole)", qcss(*amount))
        }
        TxKind::Transfer { to, amount } if tx.sender == *me => {
            format!("{} {} to {to}", dir(&tx.sender), qcss(*amount))
        }
        TxKind::Transfer { amount, .. } => format!("received {} from {}", qcss(*amount), tx.sender),
        TxKind::Burn { amount } => format!("burned {}", qcss(*amount)),
        TxKind::Vote { producers } if tx.sender == *me => {
            format!("voted for {} producers", producers.len())
        }
        TxKind::Vote { .. } => format!("approved by {}", tx.sender),
        TxKind::RegisterProducer { url } => format!("registered as producer ({url:.60})"),
        TxKind::UnregisterProducer => "unregistered as producer".into(),
        TxKind::WithdrawRewards => "withdrew matured rewards".into(),
        TxKind::Evidence(_) => "submitted equivocation evidence".into(),
        TxKind::VoteEvidence(_) => "submitted vote equivocation evidence".into(),
        TxKind::RegisterConsortium(k) => format!(
            "registered anchor keys of consortium {} ({} keys, quorum {})",
            k.consortium_id,
            k.keys.len(),
            k.quorum
        ),
        TxKind::Anchor(a) => format!(
            "anchored consortium {} seq {} ({} blocks)",
            a.statement.consortium_id, a.statement.seq, a.statement.mmr_size
        ),
        TxKind::RewardBatch(b) => match b.entries.iter().find(|e| e.address == *me) {
            Some(e) if tx.sender != *me => format!(
                "rewarded {} (locked) by consortium {} for epoch {}",
                qcss(e.amount),
                b.consortium_id,
                b.epoch
            ),
            _ => format!(
                "submitted reward batch of consortium {}: epoch {}, part {} of {}, {} entries",
                b.consortium_id,
                b.epoch,
                b.part + 1,
                b.parts,
                b.entries.len()
            ),
        },
    }
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS UTC` (civil-from-days, proleptic Gregorian).
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01 ≥ 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Builds, signs and submits a transaction, then (unless `--no-wait`)
/// waits until a block includes it or it expires.
pub(crate) fn send(a: &TxArgs, kind: TxKind) -> Result<()> {
    let key = read_key(&a.key)?;
    let addr = node_addr(&a.node)?;
    let out = submit(
        &addr,
        &key,
        kind,
        a.fee.as_deref(),
        a.chain_id.as_deref(),
        !a.no_wait,
    )?;
    if a.node.json {
        println!(
            "{}",
            serde_json::json!({ "id": out.id, "included": out.included, "height": out.height })
        );
    } else {
        match (out.included, out.height) {
            (true, Some(h)) => println!("transaction {} included at height {h}", out.id),
            (true, None) => println!("transaction {} included", out.id),
            _ => println!("transaction {} accepted by {addr}", out.id),
        }
    }
    Ok(())
}

pub(crate) struct Submitted {
    pub(crate) id: Hash32,
    /// A block on the node's best chain holds it.
    pub(crate) included: bool,
    /// That block's height, if found among the last 50.
    pub(crate) height: Option<u64>,
}

/// Submits `kind` from `key` through the node at `addr`.
pub(crate) fn submit(
    addr: &str,
    key: &Keypair,
    kind: TxKind,
    fee: Option<&str>,
    want_chain: Option<&str>,
    wait: bool,
) -> Result<Submitted> {
    let st: StatusView = get_json(addr, "/v1/status")?;
    if let Some(want) = want_chain
        && want.trim() != st.chain_id.to_hex()
    {
        bail!(
            "wrong chain: the node at {addr} is on chain {}, not {want:.64}",
            st.chain_id
        );
    }
    let me = key.address();
    let acct: AccountView = get_json(addr, &format!("/v1/account/{me}"))?;
    let fee = match fee {
        Some(f) => parse_amount(f)?,
        None => st.min_fee,
    };
    let now = st.clock_slot.max(st.head_slot);
    // Two minutes of slots (at least ten), within the chain's limit.
    let ttl = (120_000 / st.slot_ms.max(1))
        .max(10)
        .min(st.max_expiry_slots);
    let tx = Tx {
        chain_id: st.chain_id,
        sender: me,
        nonce: acct.account.nonce,
        fee,
        expiry_slot: now + ttl,
        kind,
    };
    let (nonce, expiry) = (tx.nonce, tx.expiry_slot);
    let signed = tx.sign(key);
    let id = signed.id();
    let tx_hex = hex::encode(signed.encode());
    let (status, body) = http(addr, "POST", "/v1/tx", Some(&tx_hex), API_TIMEOUTS)?;
    if status != 200 {
        bail!("refused by {addr}: {}", api_error(status, &body));
    }
    if !wait {
        return Ok(Submitted {
            id,
            included: false,
            height: None,
        });
    }
    let deadline = std::time::Instant::now()
        + Duration::from_millis((ttl + 2).saturating_mul(st.slot_ms).min(600_000));
    loop {
        let v: AccountView = get_json(addr, &format!("/v1/account/{me}"))?;
        if v.account.nonce > nonce {
            // Find the block: search back from the head.
            let list: Vec<HistoryEntry> =
                get_json(addr, &format!("/v1/account/{me}/history?blocks=50"))?;
            let height = list.iter().find(|e| e.id == id).map(|e| e.height);
            return Ok(Submitted {
                id,
                included: true,
                height,
            });
        }
        if v.head_slot > expiry {
            bail!("transaction {id} expired at slot {expiry} without being included");
        }
        if std::time::Instant::now() > deadline {
            bail!("transaction {id} not included after waiting; check `qcss chain status`");
        }
        std::thread::sleep(Duration::from_millis((st.slot_ms / 4).clamp(50, 2_000)));
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_and_refuse_what_is_not_an_amount() {
        assert_eq!(parse_amount("12.5").unwrap(), 1_250_000_000);
        assert_eq!(parse_amount("0.00000001").unwrap(), 1);
        assert_eq!(parse_amount("3 QCSS").unwrap(), 300_000_000);
        assert_eq!(parse_amount(".5").unwrap(), 50_000_000);
        for bad in [
            "",
            ".",
            "1.000000001",
            "-1",
            "1e3",
            "0",
            "0.0",
            "abc",
            "1.2.3",
            "99999999999999",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?}");
        }
        assert_eq!(qcss(1_250_000_001), "12.50000001 QCSS");
    }

    #[test]
    fn unlock_times_print_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 12:34:56 UTC (a leap day).
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
