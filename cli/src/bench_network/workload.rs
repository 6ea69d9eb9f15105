//! The load itself: the batches and codes each org's lanes use (made by
//! `setup` before the clock starts) and the mix of transactions a lane sends.

use super::*;

/// The batch scans of one org read (never written during the load).
pub(super) struct ScanBatch {
    pub(super) gtin: String,
    pub(super) lot: String,
    pub(super) key: BatchKey,
}

/// One transaction in flight: a closed loop on its own batch.
pub(super) struct Lane {
    pub(super) index: usize,
    pub(super) gw: usize,
    pub(super) gtin: String,
    /// The lane's batches for add_event, used in turn: a batch is touched
    /// again only `batches.len()` transactions later, when every endorsing
    /// peer has committed the previous write (a lagging endorser would
    /// simulate on the old version and its response would differ).
    pub(super) batches: Vec<String>,
    pub(super) turn: usize,
    /// Serials this lane may scan: next, end (exclusive).
    pub(super) next_serial: u64,
    pub(super) end_serial: u64,
    pub(super) codes: VecDeque<String>,
    pub(super) registered: u64,
    pub(super) rng: u64,
}

pub(super) struct Setup {
    pub(super) tag: String,
    pub(super) scan: Vec<Arc<ScanBatch>>,
    pub(super) lanes: Vec<Arc<Mutex<Lane>>>,
    /// Codes for verify_code queries (never scanned).
    pub(super) query_codes: Vec<String>,
}

pub(super) const SCAN_QUANTITY: u64 = 100_000_000;
pub(super) const QUERY_SERIALS: u64 = 1000;

pub(super) async fn setup(
    t: &Target,
    lanes: usize,
    inflight: usize,
    batches_per_lane: usize,
    codes_per_lane: usize,
) -> Result<Setup> {
    let started = Instant::now();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    // A run tag keeps lots unique across runs on the same ledger.
    let mut tag = String::new();
    let mut n = secs % 36u64.pow(5);
    for _ in 0..5 {
        tag.insert(
            0,
            char::from_digit((n % 36) as u32, 36)
                .unwrap_or('0')
                .to_ascii_uppercase(),
        );
        n /= 36;
    }
    let cc = t.chaincode.as_str();
    let mut ents = Vec::new();
    for g in &t.gateways {
        ents.extend(connect(g, std::slice::from_ref(&g.client), &t.channel).await?);
    }
    let now = secs as i64;
    // Permits: apply (if not usable) and approve.
    for (i, g) in t.gateways.iter().enumerate() {
        let mut c = ents[i].clone();
        let permit: Option<Value> = c
            .evaluate(cc, "get_permit", &[g.msp_id.as_bytes()])
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let usable = permit.as_ref().is_some_and(|p| {
            p["status"] == "active"
                && p["certificate"]["valid_until"].as_i64().unwrap_or(0) > now + 86_400
        });
        if usable {
            continue;
        }
        let pending = permit.as_ref().is_some_and(|p| !p["pending"].is_null());
        if !pending {
            submit_ok(
                &mut c,
                cc,
                "apply_permit",
                &json!({"certificate_sha256": hex::encode(signing::sha256(g.msp_id.as_bytes())),
                        "issuer": "bench", "scope": "benchmark", "valid_until": now + 365 * 86_400}),
            )
            .await?;
        }
        let (rg, reg) = t.regulator.as_ref().ok_or_else(|| {
            anyhow!(
                "{}'s permit is not active and the connection names no regulator to approve it",
                g.msp_id
            )
        })?;
        let mut r = connect(&t.gateways[*rg], std::slice::from_ref(reg), &t.channel)
            .await?
            .remove(0);
        submit_ok(
            &mut r,
            cc,
            "approve_permit",
            &json!({"msp": g.msp_id, "reason": "benchmark"}),
        )
        .await?;
    }
    // A product per org, and its scan batch with a code key.
    let mut products = Vec::new();
    let mut scan = Vec::new();
    for (i, g) in t.gateways.iter().enumerate() {
        let mut c = ents[i].clone();
        let gt = qcss_chaincode::unit_code::with_check_digit(&format!("06950000{:05}", i));
        match c.evaluate(cc, "get_product", &[gt.as_bytes()]).await {
            Ok(b) => {
                let p: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                if p["owner"] != g.msp_id.as_str() {
                    bail!(
                        "product {gt} exists and belongs to {}, not {}",
                        p["owner"],
                        g.msp_id
                    );
                }
            }
            Err(_) => {
                submit_ok(
                    &mut c,
                    cc,
                    "register_product",
                    &json!({"gtin": gt, "name": format!("bench product {i}"), "category": "beverage"}),
                )
                .await?;
            }
        }
        let (key, _) = BatchKey::generate().map_err(|e| anyhow!("{e}"))?;
        let lot = format!("{tag}S");
        submit_ok(
            &mut c,
            cc,
            "register_batch",
            &json!({"gtin": gt, "lot": lot, "quantity": SCAN_QUANTITY, "uom": "H87",
                    "production_date": "2026-06-01", "site": "bench line",
                    "code_key": key.public_key_b64url()}),
        )
        .await?;
        products.push(gt.clone());
        scan.push(Arc::new(ScanBatch { gtin: gt, lot, key }));
    }
    let query_codes = issue_codes(
        &scan[0].key,
        BASE,
        &scan[0].gtin,
        &scan[0].lot,
        1..=QUERY_SERIALS,
    )
    .map_err(|e| anyhow!("{e}"))?;
    // One batch per lane, registered concurrently (a few per gateway).
    let stride = (SCAN_QUANTITY - QUERY_SERIALS) / lanes.max(1) as u64;
    let mut handles = Vec::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8 * t.gateways.len()));
    for l in 0..lanes {
        let gw = (l / inflight.max(1)) % t.gateways.len();
        let mut c = ents[gw].clone();
        let gt = products[gw].clone();
        let lot = format!("{tag}E{l}");
        let cc = cc.to_owned();
        let sem = sem.clone();
        let sb = scan[gw].clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire().await;
            let mut batches = Vec::new();
            for b in 0..batches_per_lane.max(1) {
                let lot = format!("{lot}b{b}");
                submit_ok(
                    &mut c,
                    &cc,
                    "register_batch",
                    &json!({"gtin": gt, "lot": lot, "quantity": 1_000_000, "uom": "KGM",
                            "production_date": "2026-06-01", "site": "bench line"}),
                )
                .await?;
                batches.push(format!("{gt}/{lot}"));
            }
            let first = QUERY_SERIALS + 1 + l as u64 * stride;
            let n = codes_per_lane as u64;
            let codes = issue_codes(&sb.key, BASE, &sb.gtin, &sb.lot, first..=first + n - 1)
                .map_err(|e| anyhow!("{e}"))?;
            Ok::<_, anyhow::Error>(Lane {
                index: l,
                gw,
                batches,
                turn: 0,
                gtin: gt,
                next_serial: first + n,
                end_serial: first + stride,
                codes: codes.into(),
                registered: 0,
                rng: 0x9e37_79b9_7f4a_7c15 ^ (l as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
            })
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(Arc::new(Mutex::new(h.await??)));
    }
    println!(
        "setup: {} orgs' permits and products, {} lanes x {batches_per_lane} batches, {} scan batches, {} unit codes signed ({:.1} s)",
        t.gateways.len(),
        lanes,
        scan.len(),
        lanes * codes_per_lane + QUERY_SERIALS as usize,
        started.elapsed().as_secs_f64()
    );
    Ok(Setup {
        tag,
        scan,
        lanes: out,
        query_codes,
    })
}

// ---------------------------------------------------------------- load

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Op {
    AddEvent,
    RegisterBatch,
    Scan,
}

impl Op {
    pub(super) fn name(self) -> &'static str {
        match self {
            Op::AddEvent => "add_event",
            Op::RegisterBatch => "register_batch",
            Op::Scan => "scan",
        }
    }
}

pub(super) enum Outcome {
    Committed(TxValidationCode),
    Failed(String),
}

pub(super) struct Rec {
    pub(super) op: Op,
    pub(super) start: Instant,
    pub(super) end: Instant,
    pub(super) outcome: Outcome,
}

pub(super) fn next_rand(s: &mut u64) -> u64 {
    // xorshift64*
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The next transaction of a lane: (op, function, argument).
pub(super) fn next_tx(lane: &mut Lane, tag: &str, sb: &ScanBatch, mix: &[u32; 3]) -> (Op, Value) {
    let total = mix.iter().sum::<u32>().max(1) as u64;
    let r = (next_rand(&mut lane.rng) % total) as u32;
    let op = if r < mix[0] {
        Op::AddEvent
    } else if r < mix[0] + mix[1] {
        Op::RegisterBatch
    } else {
        Op::Scan
    };
    let arg = match op {
        Op::AddEvent => {
            lane.turn = (lane.turn + 1) % lane.batches.len().max(1);
            json!({"target": lane.batches[lane.turn], "biz_step": "storing", "read_point": "bench warehouse",
                   "data": {"temperature_c": 4, "humidity": 61}})
        }
        Op::RegisterBatch => {
            lane.registered += 1;
            let lot = format!("{tag}N{}x{}", lane.index, lane.registered);
            json!({"gtin": lane.gtin, "lot": lot, "quantity": 500, "uom": "KGM",
                   "production_date": "2026-06-02", "site": "bench line"})
        }
        Op::Scan => {
            let code = match lane.codes.pop_front() {
                Some(c) => c,
                None => {
                    // Ran out of pre-signed codes: sign the next one now.
                    let s = lane.next_serial.min(lane.end_serial.saturating_sub(1));
                    lane.next_serial += 1;
                    sb.key.sign(BASE, &sb.gtin, &sb.lot, s).to_uri()
                }
            };
            json!({"code": code, "location": "Hangzhou"})
        }
    };
    (op, arg)
}
