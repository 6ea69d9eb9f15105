//! `qcss network up --demo`: the loquat-juice story of DOMAIN.md on the
//! local network, through the Gateway as each party would do it — permits,
//! products, a harvest lot, juice made from it, production events, a lab
//! inspection, shipping to logistics, unit codes issued offline, a consumer
//! scan, a recall — ending with three unit codes to trace: a genuine one
//! with history, one of a recalled batch, and a forged one. The two juice
//! batches' code keys are kept (PKCS#8, 0600) under the producer's folder,
//! `orgs/producer/codes/{GTIN}-{LOT}.key`, so more codes and QR images can
//! be issued with `qcss codes issue`.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use qcss_chaincode::unit_code::{BatchKey, issue_codes, with_check_digit};
use qcss_peer::client::GatewayClient;
use qcss_proto::protos::TxValidationCode;
use serde_json::{Value, json};

use crate::network::{CONTRACT, NetworkInfo, Progress, gateway};

/// The demo's sites are in China: every event records China Standard Time
/// as its EPCIS `eventTimeZoneOffset`.
const CST: &str = "+08:00";

/// Resolver base of the demo's unit codes.
pub(crate) const BASE: &str = "https://q.example.com";

/// The codes the demo prints.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct DemoCodes {
    /// A genuine code with a history.
    pub good: String,
    /// A genuine code of a recalled batch.
    pub recalled: String,
    /// A forged code (altered signature).
    pub forged: String,
    /// The batch code keys written, `(batch GTIN/LOT, key file)` (empty in
    /// a network.json written before they were kept).
    #[serde(default)]
    pub keys: Vec<(String, String)>,
}

/// Writes a batch code key (PKCS#8 DER) to `path`, readable by its owner
/// only; an existing file is an error (a key is never overwritten).
fn write_key(path: &Path, pkcs8: &[u8]) -> Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(pkcs8)?;
    f.sync_all()?;
    Ok(())
}

/// The story's steps, in order. Each step may go to another org's peer than
/// the one before, and a submit returns once the transaction commits at the
/// submitting org's peer only: so before a step, its peer is made to wait
/// (Gateway `CommitStatus`, which blocks until that peer has committed the
/// transaction) for the previous step's transaction. Without it a step could
/// be endorsed against state that lacks the previous step (read after write
/// across peers).
#[derive(Default)]
struct Story {
    last_tx: Option<String>,
}

impl Story {
    async fn call(&mut self, g: &mut GatewayClient, f: &str, args: Value) -> Result<Value> {
        if let Some(tx) = &self.last_tx {
            g.commit_status(tx).await.map_err(|e| {
                anyhow!("{f}: waiting for the previous step {tx} at this peer: {e}")
            })?;
        }
        let arg = args.to_string();
        let c = g
            .submit(CONTRACT, f, &[arg.as_bytes()])
            .await
            .map_err(|e| anyhow!("{f}: {e}"))?;
        if c.code != TxValidationCode::Valid {
            bail!("{f}: transaction {} is {}", c.tx_id, c.code.as_str_name());
        }
        self.last_tx = Some(c.tx_id);
        Ok(serde_json::from_slice(&c.result).unwrap_or(Value::Null))
    }

    /// Waits until every peer behind `gs` has committed the last step, so
    /// whoever reads after the story (a test, a consumer page) sees all of it
    /// at any org.
    async fn settle(&self, gs: &mut [&mut GatewayClient]) -> Result<()> {
        if let Some(tx) = &self.last_tx {
            for g in gs.iter_mut() {
                g.commit_status(tx)
                    .await
                    .map_err(|e| anyhow!("waiting for the story's last step {tx}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// Runs the story; fails if any step does.
pub(crate) async fn run(dir: &Path, info: &NetworkInfo, p: &Progress) -> Result<DemoCodes> {
    let org = |name: &str| {
        info.orgs
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| anyhow!("the demo needs the default orgs (producer, lab, regulator, logistics); this network has no {name}"))
    };
    let (producer, lab, regulator, logistics) = (
        org("producer")?,
        org("lab")?,
        org("regulator")?,
        org("logistics")?,
    );
    let mut farm = gateway(dir, info, producer, "user1").await?;
    let mut reg = gateway(dir, info, regulator, "user1").await?;
    let mut labg = gateway(dir, info, lab, "user1").await?;
    let mut ship = gateway(dir, info, logistics, "user1").await?;
    let mut consumer = gateway(dir, info, logistics, "consumer1").await?;

    let mut s = Story::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // UCES and the QCSS index (traceability README "UCES, the QCSS index
    // and rewards"): the genesis config, proposed by the producer's admin
    // and approved by the lab's and the regulator's (a majority of the
    // channel's orgs); the regulator's user1 votes on evaluations. From here on every step that
    // moves a product's index recomputes it (`qcss index show GTIN`).
    let cert = std::fs::read_to_string(
        dir.join("orgs")
            .join(&regulator.name)
            .join("user1/cert.pem"),
    )
    .context("the regulator's user1 certificate")?;
    let validator = hex::encode(qcss_network::signing::sha256(cert.trim().as_bytes()));
    // Reward epochs line up with the public chain's (same length, starting
    // at its slot 0), so consortium epoch E is paid as the chain's epoch E
    // (docs/anchor.md, "Consumer rewards").
    let (reward_start, reward_epoch_secs) = match &info.chain {
        Some(c) if c.reward_epoch_secs > 0 => {
            ((c.genesis_time_ms / 1000) as i64, c.reward_epoch_secs)
        }
        _ => (0, 86_400),
    };
    // A page of the contract's batch (`max_batch` addresses) must fit in one
    // part of the chain's (its peers sign whole pages a part).
    let max_batch = match &info.chain {
        Some(c) if c.reward_part_entries > 0 => c.reward_part_entries.min(128),
        _ => 128,
    };
    let mut admin = gateway(dir, info, producer, "admin").await?;
    s.call(
        &mut admin,
        "gov_init",
        json!({
            "orgs": info.orgs.iter().map(|o| o.msp_id.clone()).collect::<Vec<_>>(),
            "validators": [{"msp": regulator.msp_id, "cert_sha256": validator}],
            "vote_window_secs": 7 * 86_400,
            "daily_limit": 3,
            "penalties": {"credit_initial": 100, "credit_max": 200, "credit_gain": 5,
                          "credit_penalty": 30, "bar_after": 3, "bar_secs": 30 * 86_400},
            "rewards": {"start": reward_start, "epoch_secs": reward_epoch_secs,
                        "scan_points": 1, "eval_points": 5,
                        "max_points": 100, "rate": 100_000_000, "max_batch": max_batch}
        }),
    )
    .await?;
    let genesis = json!({"id": format!("genesis-{}", producer.msp_id)});
    for approver in [lab, regulator] {
        let mut a = gateway(dir, info, approver, "admin").await?;
        s.call(&mut a, "gov_approve", genesis.clone()).await?;
    }
    p.step(
        "  UCES configured: proposed by ProducerMSP's admin, approved by LabMSP's and \
         RegulatorMSP's (the regulator validates evaluations)",
    );
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    s.call(
        &mut farm,
        "apply_permit",
        json!({"certificate_sha256": sha, "issuer": "CQC", "scope": "fruit and juice", "valid_until": now + 365 * 86_400}),
    )
    .await?;
    s.call(
        &mut reg,
        "approve_permit",
        json!({"msp": producer.msp_id, "reason": "ISO 22000 certificate checked"}),
    )
    .await?;
    p.step("  permit applied by ProducerMSP, approved by the regulator");
    let loquat = with_check_digit("0690123456001");
    let juice = with_check_digit("0690123456002");
    s.call(
        &mut farm,
        "register_product",
        json!({"gtin": loquat, "name": "Loquat, fresh", "category": "fruit", "spec": {"grade": "A"}}),
    )
    .await?;
    s.call(
        &mut farm,
        "register_product",
        json!({"gtin": juice, "name": "Loquat juice 330 ml", "category": "beverage"}),
    )
    .await?;
    let batch = |gtin: &str, lot: &str, quantity: u64, uom: &str| {
        json!({"gtin": gtin, "lot": lot, "quantity": quantity, "uom": uom,
               "production_date": "2026-06-01", "site": "Suzhou orchard 3",
               "event_time_zone_offset": CST})
    };
    s.call(
        &mut farm,
        "register_batch",
        batch(&loquat, "H1", 1000, "KGM"),
    )
    .await?;
    let h1 = format!("{loquat}/H1");
    s.call(
        &mut farm,
        "add_event",
        json!({"target": h1, "biz_step": "harvesting", "read_point": "orchard 3", "event_time_zone_offset": CST}),
    )
    .await?;
    for (lot, qty) in [("LJ2026A", 600), ("LJ2026B", 300)] {
        s.call(
            &mut farm,
            "transform",
            json!({"transformation_id": format!("T-{lot}"),
                   "inputs": [{"batch": h1, "quantity": qty}],
                   "output": batch(&juice, lot, 24, "H87"),
                   "location": "factory line 1", "event_time_zone_offset": CST}),
        )
        .await?;
    }
    p.step("  loquat harvest lot H1 pressed into juice lots LJ2026A and LJ2026B");
    let good_batch = format!("{juice}/LJ2026A");
    let bad_batch = format!("{juice}/LJ2026B");
    for step in ["sterilising", "filling"] {
        s.call(
            &mut farm,
            "add_event",
            json!({"target": good_batch, "biz_step": step, "read_point": "line 1",
                   "event_time_zone_offset": CST, "data": {"temperature_c": 137}}),
        )
        .await?;
    }
    s.call(
        &mut reg,
        "accredit_lab",
        json!({"msp": lab.msp_id, "name": "Zhejiang food lab", "scope": "GB 7101 beverages"}),
    )
    .await?;
    // The lab's report is a file off the ledger (MDSS): put as public on
    // every org's peer, so any verify page links it; the ledger records its
    // SHA-256, which each peer checked when it stored the file.
    let report = format!(
        "Inspection report\n\nLab: {}\nBatch: {good_batch}\nStandard: GB 7101-2022 (beverages)\n\
         total_sugar: 9.8 g/100ml (limits 5.0 - 12.0): pass\nResult: PASS\n",
        lab.msp_id
    );
    let report_sha = hex::encode(qcss_network::signing::sha256(report.as_bytes()));
    for org in &info.orgs {
        let ch = crate::network::peer_channel(dir, org, lab, "user1").await?;
        crate::files::put_bytes(ch, report.as_bytes(), "text/plain", true)
            .await
            .with_context(|| format!("putting the lab report on {}'s peer", org.name))?;
    }
    s.call(
        &mut labg,
        "record_inspection",
        json!({"batch": good_batch, "result": "pass", "standard": "GB 7101-2022", "report_sha256": report_sha,
               "measurements": [{"name": "total_sugar", "value": 9.8, "unit": "g/100ml", "min": 5.0, "max": 12.0}],
               "event_time_zone_offset": CST}),
    )
    .await?;
    p.step(
        "  lab accredited; LJ2026A inspected (pass), endorsed by the lab's peer; its report is a \
         public MDSS file on every peer (/files/sha256/…)",
    );
    // The lab's raw data is confidential: sealed here for the lab and the
    // regulator (keys from the channel configuration), stored as ciphertext
    // at the lab's peer and copied by the regulator's; only those two orgs'
    // `files-key` open it.
    let raw = format!(
        "sample,measure,value,unit\nLJ2026A-S1,total_sugar,9.81,g/100ml\nLJ2026A-S2,total_sugar,9.79,g/100ml\n\
         # {good_batch}, lab {}\n",
        lab.msp_id
    );
    let ch = crate::network::peer_channel(dir, lab, lab, "user1").await?;
    let raw_id = crate::files_sealed::put_sealed_bytes(
        ch,
        raw.as_bytes(),
        "text/csv",
        &[&lab.msp_id, &regulator.msp_id],
    )
    .await
    .context("putting the lab's confidential raw data")?;
    let ch = crate::network::peer_channel(dir, regulator, regulator, "user1").await?;
    qcss_proto::qcss::mdss::files_client::FilesClient::new(ch)
        .repair(qcss_proto::qcss::mdss::RepairRequest {
            id: raw_id.clone(),
            from_msp_id: lab.msp_id.clone(),
        })
        .await
        .map_err(|s| anyhow!("the regulator's peer copying the raw data: {}", s.message()))?;
    p.step(&format!(
        "  the lab's raw data is a confidential MDSS file, sealed for the lab and the regulator: \
         qcss files get {raw_id} --out raw.csv --org regulator"
    ));
    // Unit codes: one key per batch, registered on-chain; codes offline.
    let mut codes = Vec::new();
    let mut keys = Vec::new();
    for (b, lot) in [(&good_batch, "LJ2026A"), (&bad_batch, "LJ2026B")] {
        let (key, pkcs8) = BatchKey::generate().map_err(|e| anyhow!("{e}"))?;
        let file = dir
            .join("orgs")
            .join(&producer.name)
            .join("codes")
            .join(format!("{juice}-{lot}.key"));
        write_key(&file, &pkcs8)?;
        keys.push((b.clone(), file.display().to_string()));
        s.call(
            &mut farm,
            "set_code_key",
            json!({"batch": b, "public_key": key.public_key_b64url()}),
        )
        .await?;
        codes.push(issue_codes(&key, BASE, &juice, lot, 1..=24).map_err(|e| anyhow!("{e}"))?);
    }
    s.call(
        &mut farm,
        "add_event",
        json!({"target": good_batch, "biz_step": "shipping", "destination": logistics.msp_id, "event_time_zone_offset": CST}),
    )
    .await?;
    s.call(
        &mut ship,
        "add_event",
        json!({"target": good_batch, "biz_step": "receiving", "biz_location": "Hangzhou DC", "event_time_zone_offset": CST}),
    )
    .await?;
    p.step("  48 unit codes issued offline; LJ2026A shipped to and received by logistics");
    let good = codes[0][4].clone();
    // The consumer binds the public-chain wallet the chain demo funded: its
    // first scan of each unit earns rewards, paid by the anchoring bridge
    // once the epoch ends.
    if let Some(cd) = info.chain.as_ref().and_then(|c| c.demo.as_ref()) {
        let key = crate::chain::read_key(&dir.join(&cd.consumer_key))?;
        let ident = dir.join("orgs").join(&logistics.name).join("consumer1");
        let bind = crate::rewards::binding_args(&ident, &info.channel, &key)?;
        s.call(&mut consumer, "bind_reward_address", bind).await?;
        p.step(&format!(
            "  consumer1 bound reward address {}",
            key.address()
        ));
    }
    s.call(
        &mut consumer,
        "scan",
        json!({"code": good, "location": "Hangzhou"}),
    )
    .await?;
    s.call(
        &mut reg,
        "recall",
        json!({"batch": bad_batch, "reason": "sediment found in retained samples", "event_time_zone_offset": CST}),
    )
    .await?;
    s.settle(&mut [&mut farm, &mut reg, &mut labg, &mut ship])
        .await?;
    p.step("  a consumer scanned a bottle; the regulator recalled LJ2026B");
    let recalled = codes[1][2].clone();
    // A forger copies a real code and changes the serial.
    let forged = codes[0][6].replacen("/21/7?", "/21/8?", 1);
    Ok(DemoCodes {
        good,
        recalled,
        forged,
        keys,
    })
}
