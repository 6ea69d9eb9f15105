//! UCES, the QCSS index and rewards in the traceability contract
//! (`chaincode/contracts/traceability`), built to wasm and run in the
//! runtime: governance by a majority of member orgs; claim → evaluate →
//! votes → valid / rejected / lapsed; every refusal with its message and no
//! state change; penalties and bars; the coefficient and index moving as
//! README.md documents; the index the same whatever order the same events
//! arrive in; reward epochs within budget under a surge; bindings.

use std::collections::BTreeMap;

mod common;

use common::who_cert;
use qcss_chaincode::unit_code::with_check_digit as gs1;
use qcss_chaincode::unit_code::{BatchKey, issue_codes};
use qcss_chaincode::{
    Caller, CodeHash, Invocation, InvokeError, Limits, MemoryState, Runtime, Simulation, Timestamp,
    Version,
};
use ring::digest::{SHA256, digest};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

const T0: i64 = 1_764_000_000;
/// The channel's organisations, as the peer tells the contract.
const CHANNEL_ORGS: [&str; 7] = [
    "AuditMSP",
    "FactoryMSP",
    "FarmMSP",
    "LabMSP",
    "PlatformMSP",
    "RegulatorMSP",
    "ShopMSP",
];
const YEAR: i64 = 365 * 24 * 3600;
const DAY: i64 = 86_400;
const WINDOW: i64 = 3600;
const EPOCH: i64 = 3600;
const BASE: &str = "https://q.example.com";
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SHA2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
/// Base units per point in the tests' config: 1 000 QCSS.
const RATE: u64 = 100_000_000_000;
/// 100 000 000 QCSS in base units over ceil(47 336 400 / 3600) = 13 149 epochs.
const BUDGET: u64 = 10_000_000_000_000_000 / 13_149;
/// The contract's hard cap on a reward batch (`governance::MAX_BATCH`).
const MAX_BATCH: u32 = 128;

struct Ledger {
    rt: Runtime,
    code: CodeHash,
    state: MemoryState,
    block: u64,
    now: i64,
    /// Most fuel any successful call of each function used.
    fuel: BTreeMap<String, u64>,
}

impl Ledger {
    fn new() -> Self {
        let rt = Runtime::new(Limits::default());
        let code = rt
            .install(&common::contract_wasm("traceability"))
            .expect("traceability installs");
        Ledger {
            rt,
            code,
            state: MemoryState::new(),
            block: 0,
            now: T0,
            fuel: BTreeMap::new(),
        }
    }

    fn invoke(&mut self, caller: &Caller, f: &str, arg: &str) -> Result<Simulation, InvokeError> {
        self.block += 1;
        let inv = Invocation {
            namespace: "traceability".into(),
            function: f.into(),
            args: vec![arg.as_bytes().to_vec()],
            // As long as real transaction ids (hex SHA-256), so fuel is realistic.
            tx_id: format!("{:064x}", self.block),
            channel: "qcss".into(),
            channel_orgs: CHANNEL_ORGS.iter().map(|o| o.to_string()).collect(),
            timestamp: Timestamp {
                seconds: self.now,
                nanos: 0,
            },
            caller: caller.clone(),
        };
        let sim = self.rt.invoke(&self.code, &inv, &self.state);
        if let Ok(sim) = &sim {
            let max = self.fuel.entry(f.to_owned()).or_default();
            *max = (*max).max(sim.fuel_used);
        }
        sim
    }

    /// Every call so far stayed under half the default fuel budget.
    fn check_fuel(&self) {
        eprintln!("fuel (max per function): {:?}", self.fuel);
        for (f, used) in &self.fuel {
            assert!(*used < Limits::default().fuel / 2, "{f} used {used} fuel");
        }
    }

    fn submit(&mut self, caller: &Caller, f: &str, args: Value) -> Value {
        self.submit_raw(caller, f, &args.to_string())
    }

    /// [`Ledger::submit`] with the argument as it is (not JSON-encoded).
    fn submit_raw(&mut self, caller: &Caller, f: &str, arg: &str) -> Value {
        let arg = arg.to_owned();
        let sim = self
            .invoke(caller, f, &arg)
            .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
        self.state.apply(
            &sim,
            Version {
                block: self.block,
                tx: 0,
            },
        );
        payload(&sim)
    }

    /// A query: invoked, never committed.
    fn query(&mut self, caller: &Caller, f: &str, arg: &str) -> Value {
        let sim = self
            .invoke(caller, f, arg)
            .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
        assert!(sim.writes.is_empty(), "{f} is a query but wrote");
        payload(&sim)
    }

    /// Expects a contract error containing `expected`; nothing is committed.
    fn refuse(&mut self, caller: &Caller, f: &str, args: Value, expected: &str) {
        let arg = args.to_string();
        let before = self.state.clone();
        match self.invoke(caller, f, &arg) {
            Err(InvokeError::Contract { message, .. }) => assert!(
                message.contains(expected),
                "{f}: expected an error containing {expected:?}, got {message:?}"
            ),
            Err(e) => panic!("{f}: expected a contract error, got {e}"),
            Ok(_) => panic!("{f} {arg}: expected refusal {expected:?}, but it succeeded"),
        }
        assert_eq!(self.state, before);
    }
}

fn payload(sim: &Simulation) -> Value {
    if sim.response.payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&sim.response.payload).expect("JSON payload")
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes))
}

fn admin(msp: &str) -> Caller {
    let mut c = who_cert(msp, &[], &format!("ADMIN OF {msp}"));
    c.role = "admin".into();
    c
}

/// Consumer `n`, real-name verified.
fn consumer(n: u32) -> Caller {
    let mut c = who_cert("PlatformMSP", &["consumer"], &format!("CONSUMER-{n}"));
    c.attributes.insert("real_name".into(), "verified".into());
    c
}

fn validators() -> Vec<Caller> {
    [
        ("RegulatorMSP", "VAL-1"),
        ("LabMSP", "VAL-2"),
        ("FactoryMSP", "VAL-3"),
    ]
    .iter()
    .map(|(m, c)| who_cert(m, &[], c))
    .collect()
}

fn validator_json(c: &Caller) -> Value {
    json!({"msp": c.msp_id, "cert_sha256": sha256_hex(c.cert_pem.trim().as_bytes())})
}

fn config() -> Value {
    json!({
        "orgs": ["FactoryMSP", "FarmMSP", "RegulatorMSP"],
        "validators": validators().iter().map(validator_json).collect::<Vec<_>>(),
        "vote_window_secs": WINDOW,
        "daily_limit": 3,
        "penalties": {"credit_initial": 100, "credit_max": 200, "credit_gain": 5,
                      "credit_penalty": 30, "bar_after": 2, "bar_secs": DAY},
        "rewards": {"epoch_secs": EPOCH, "scan_points": 1, "eval_points": 5,
                    "max_points": 100, "rate": RATE, "max_batch": 50}
    })
}

struct World {
    l: Ledger,
    factory: Caller,
    regulator: Caller,
    lab: Caller,
    device: Caller,
    juice: String,
    /// The juice lot with unit codes.
    jb: String,
    codes: Vec<String>,
    /// A raw-material lot the factory holds.
    raw: String,
}

/// A factory with a permit, a juice product with a 60-unit coded lot and
/// limits, a bound device, an accredited lab, a raw-material lot; with
/// `genesis`, the UCES config set by FactoryMSP's admin.
fn world(genesis: bool) -> World {
    let mut l = Ledger::new();
    let factory = who_cert("FactoryMSP", &["enterprise"], "FACTORY");
    let regulator = who_cert("RegulatorMSP", &["regulator"], "REGULATOR");
    let lab = who_cert("LabMSP", &["lab"], "LAB");
    let device = who_cert("FactoryMSP", &["device"], "UHT-SENSOR-1");
    if genesis {
        set_genesis(&mut l, config());
    }
    l.submit(
        &factory,
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "juice", "valid_until": l.now + YEAR}),
    );
    l.submit(&regulator, "approve_permit", json!({"msp": "FactoryMSP"}));
    let juice = gs1("0690123456002");
    let loquat = gs1("0690123456001");
    for (g, name) in [(&juice, "Loquat juice"), (&loquat, "Loquat")] {
        l.submit(
            &factory,
            "register_product",
            json!({"gtin": g, "name": name, "category": "beverage"}),
        );
    }
    let (key, _) = BatchKey::generate().unwrap();
    for (g, lot, n) in [(&juice, "LJ1", 60), (&loquat, "H1", 1000)] {
        l.submit(
            &factory,
            "register_batch",
            json!({"gtin": g, "lot": lot, "quantity": n, "uom": "H87",
                   "production_date": "2025-06-01", "site": "Suzhou",
                   "limits": [{"type": "qcss:UHTTemperature", "unit": "CEL", "min": 135.0, "max": 150.0}]}),
        );
    }
    let jb = format!("{juice}/LJ1");
    l.submit(
        &factory,
        "set_code_key",
        json!({"batch": jb, "public_key": key.public_key_b64url()}),
    );
    l.submit(
        &factory,
        "bind_device",
        json!({"device": "uht-1", "device_cert_pem": device.cert_pem, "batch": jb}),
    );
    l.submit(
        &regulator,
        "accredit_lab",
        json!({"msp": "LabMSP", "name": "Lab", "scope": "beverages"}),
    );
    World {
        codes: issue_codes(&key, BASE, &juice, "LJ1", 1..=60).unwrap(),
        l,
        factory,
        regulator,
        lab,
        device,
        raw: format!("{loquat}/H1"),
        juice,
        jb,
    }
}

impl World {
    fn unit(&self, serial: usize) -> String {
        format!("{}/{serial}", self.jb)
    }

    fn claim(&mut self, who: &Caller, serial: usize) {
        let code = self.codes[serial - 1].clone();
        self.l
            .submit(who, "claim", json!({"code": code, "location": "Hangzhou"}));
    }

    fn evaluate(&mut self, who: &Caller, serial: usize, overall: u8) -> Value {
        let unit = self.unit(serial);
        self.l.submit(
            who,
            "uces_evaluate",
            json!({"unit": unit, "scores": {"overall": overall, "quality": 4, "performance": 3, "authenticity": 5},
                   "text_sha256": SHA, "photo_sha256": [SHA2]}),
        )
    }

    fn vote(&mut self, v: &Caller, serial: usize, approve: bool) -> Value {
        let unit = self.unit(serial);
        self.l
            .submit(v, "uces_vote", json!({"unit": unit, "approve": approve}))
    }

    fn inspect(&mut self, batch: &str, pass: bool) {
        let (result, value) = if pass { ("pass", 9.0) } else { ("fail", 20.0) };
        let lab = self.lab.clone();
        self.l.submit(
            &lab,
            "record_inspection",
            json!({"batch": batch, "result": result, "standard": "GB 7101", "report_sha256": SHA,
                   "measurements": [{"name": "sugar", "value": value, "unit": "g/100ml", "max": 12.0}]}),
        );
    }

    fn readings(&mut self, values: &[f64]) {
        let now = self.l.now;
        let readings: Vec<Value> = values
            .iter()
            .map(|v| json!({"type": "qcss:UHTTemperature", "value": v, "unit": "CEL", "time": now - 10}))
            .collect();
        let (device, jb) = (self.device.clone(), self.jb.clone());
        self.l.submit(
            &device,
            "submit_readings",
            json!({"device": "uht-1", "batch": jb, "readings": readings}),
        );
    }

    fn explain(&mut self, subject: &str) -> Value {
        let anyone = consumer(999);
        self.l.query(&anyone, "index_explain", subject)
    }
}

fn term(record: &Value, name: &str) -> u64 {
    record["terms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no term {name} in {record}"))["value"]
        .as_u64()
        .unwrap()
}

/// The documented invariants of an index record.
fn check_bounds(r: &Value) {
    let mut sum = 0;
    let mut weights = 0;
    for t in r["terms"].as_array().unwrap() {
        let (w, v, c) = (
            t["weight"].as_u64().unwrap(),
            t["value"].as_u64().unwrap(),
            t["contribution"].as_u64().unwrap(),
        );
        assert!(v <= 10_000, "{t}");
        assert_eq!(c, w * v / 10_000, "{t}");
        sum += c;
        weights += w;
    }
    assert_eq!(weights, 10_000);
    assert_eq!(r["index"].as_u64().unwrap(), sum);
    assert!(sum <= 10_000);
    let coef = r["coefficient"].as_u64().unwrap();
    assert!((1_000..=5_000).contains(&coef), "{coef}");
}

#[test]
fn governance_needs_a_majority_of_member_orgs() {
    let mut w = world(false);
    let l = &mut w.l;
    let (factory, farm, regulator, shop) = (
        admin("FactoryMSP"),
        admin("FarmMSP"),
        admin("RegulatorMSP"),
        admin("ShopMSP"),
    );
    match l.invoke(&consumer(1), "gov_get", "") {
        Err(InvokeError::Contract { message, .. }) => {
            assert!(
                message.contains("an org admin must call gov_init first"),
                "{message}"
            )
        }
        other => panic!("gov_get before genesis: {other:?}"),
    }
    l.refuse(
        &who_cert("FactoryMSP", &["enterprise"], "FACTORY"),
        "gov_init",
        config(),
        "only an org admin (role admin)",
    );
    l.refuse(
        &shop,
        "gov_init",
        config(),
        "ShopMSP is not a member listed",
    );
    let mut bad = config();
    bad["index"] = json!({"w_producer": 5000});
    l.refuse(&factory, "gov_init", bad, "index weights must sum to 10000");
    let mut bad = config();
    bad["validators"] = json!([]);
    l.refuse(&factory, "gov_init", bad, "validators must list 1 to 64");
    let mut elsewhere = config();
    elsewhere["orgs"] = json!(["FactoryMSP", "NowhereMSP"]);
    l.refuse(
        &factory,
        "gov_init",
        elsewhere,
        "NowhereMSP is not a member of this channel",
    );
    // Genesis is governed too: one org naming only itself is one of the
    // channel's seven, not a majority; it needs four.
    let mut alone = config();
    alone["orgs"] = json!(["ShopMSP"]);
    alone["daily_limit"] = json!(99);
    let p = l.submit(&shop, "gov_init", alone);
    assert_eq!(
        (p["id"].clone(), p["status"].clone()),
        (json!("genesis-ShopMSP"), json!("pending"))
    );
    let p = l.submit(&factory, "gov_init", config());
    assert_eq!(p["status"], "pending");
    assert_eq!(p["config"]["version"], 1);
    assert!(
        l.invoke(&consumer(1), "gov_get", "").is_err(),
        "not yet configured"
    );
    l.submit(&farm, "gov_approve", json!({"id": "genesis-FactoryMSP"}));
    l.submit(
        &regulator,
        "gov_approve",
        json!({"id": "genesis-FactoryMSP"}),
    );
    l.refuse(
        &farm,
        "gov_approve",
        json!({"id": "genesis-FactoryMSP"}),
        "already approved",
    );
    let p = l.submit(
        &admin("AuditMSP"),
        "gov_approve",
        json!({"id": "genesis-FactoryMSP"}),
    );
    assert_eq!(p["status"], "applied");
    let c = l.query(&farm, "gov_get", "");
    assert_eq!(c["version"], 1);
    assert_eq!(c["rewards"]["start"], T0);
    assert_eq!(c["daily_limit"], 3);
    assert_eq!(c["index"]["w_uces"], 2500, "documented default weight");
    l.refuse(&farm, "gov_init", config(), "already configured");
    // The competing genesis can no longer be applied.
    assert_eq!(
        l.submit(&factory, "gov_approve", json!({"id": "genesis-ShopMSP"}))["status"],
        "stale"
    );

    // One org of three is not a majority; two are.
    let mut next = config();
    next["daily_limit"] = json!(5);
    let p = l.submit(&factory, "gov_propose", json!({"id": "p1", "config": next}));
    assert_eq!(p["status"], "pending");
    assert_eq!(p["approvals"], json!(["FactoryMSP"]));
    assert_eq!(l.query(&farm, "gov_get", "")["daily_limit"], 3);
    l.refuse(
        &factory,
        "gov_approve",
        json!({"id": "p1"}),
        "already approved",
    );
    l.refuse(&shop, "gov_approve", json!({"id": "p1"}), "not a member");
    l.refuse(
        &farm,
        "gov_approve",
        json!({"id": "nope"}),
        "unknown proposal nope",
    );
    let p = l.submit(&farm, "gov_approve", json!({"id": "p1"}));
    assert_eq!(p["status"], "applied");
    let c = l.query(&farm, "gov_get", "");
    assert_eq!(
        (c["version"].clone(), c["daily_limit"].clone()),
        (json!(2), json!(5))
    );
    l.refuse(
        &regulator,
        "gov_approve",
        json!({"id": "p1"}),
        "is applied, not pending",
    );

    // Two proposals on version 2: the second to reach a majority is stale.
    let mut a = config();
    a["daily_limit"] = json!(7);
    let mut b = config();
    b["daily_limit"] = json!(9);
    l.submit(&factory, "gov_propose", json!({"id": "p2", "config": a}));
    l.submit(&farm, "gov_propose", json!({"id": "p3", "config": b}));
    l.submit(&regulator, "gov_approve", json!({"id": "p2"}));
    let p3 = l.submit(&regulator, "gov_approve", json!({"id": "p3"}));
    assert_eq!(p3["status"], "stale");
    assert_eq!(l.query(&farm, "gov_get", "")["daily_limit"], 7);

    // The epoch schedule is fixed; proposal ids are unique.
    let mut s = config();
    s["rewards"]["epoch_secs"] = json!(7200);
    l.refuse(
        &factory,
        "gov_propose",
        json!({"id": "p4", "config": s}),
        "fixed at genesis",
    );
    l.refuse(
        &factory,
        "gov_propose",
        json!({"id": "p2", "config": config()}),
        "already exists",
    );

    // Members change by governance too: with ShopMSP a fourth member, two
    // approvals are half, not a majority; the third applies it.
    let mut four = config();
    four["orgs"] = json!(["FactoryMSP", "FarmMSP", "RegulatorMSP", "ShopMSP"]);
    l.submit(&factory, "gov_propose", json!({"id": "p5", "config": four}));
    assert_eq!(
        l.submit(&farm, "gov_approve", json!({"id": "p5"}))["status"],
        "applied"
    );
    let mut next = four_orgs();
    next["daily_limit"] = json!(2);
    l.submit(&shop, "gov_propose", json!({"id": "p6", "config": next}));
    assert_eq!(
        l.submit(&farm, "gov_approve", json!({"id": "p6"}))["status"],
        "pending"
    );
    assert_eq!(
        l.submit(&regulator, "gov_approve", json!({"id": "p6"}))["status"],
        "applied"
    );
    let c = l.query(&farm, "gov_get", "");
    assert_eq!(
        (c["version"].clone(), c["daily_limit"].clone()),
        (json!(5), json!(2))
    );
    assert_eq!(
        l.query(&farm, "gov_get", "p6")["approvals"],
        json!(["ShopMSP", "FarmMSP", "RegulatorMSP"])
    );
}

/// The genesis config `c`, proposed by FactoryMSP's admin and approved by
/// the admins of three more of the channel's seven orgs (a majority).
fn set_genesis(l: &mut Ledger, c: Value) {
    let p = l.submit(&admin("FactoryMSP"), "gov_init", c);
    assert_eq!(p["status"], "pending");
    for msp in ["FarmMSP", "RegulatorMSP"] {
        let p = l.submit(
            &admin(msp),
            "gov_approve",
            json!({"id": "genesis-FactoryMSP"}),
        );
        assert_eq!(p["status"], "pending", "{msp}");
    }
    let p = l.submit(
        &admin("LabMSP"),
        "gov_approve",
        json!({"id": "genesis-FactoryMSP"}),
    );
    assert_eq!(p["status"], "applied");
}

fn four_orgs() -> Value {
    let mut c = config();
    c["orgs"] = json!(["FactoryMSP", "FarmMSP", "RegulatorMSP", "ShopMSP"]);
    c
}

#[test]
fn evaluations_valid_rejected_and_lapsed() {
    let mut w = world(true);
    let v = validators();
    let (alice, bob, carol) = (consumer(1), consumer(2), consumer(3));
    w.claim(&alice, 1);
    w.claim(&bob, 2);
    w.claim(&carol, 3);
    let juice = w.juice.clone();

    // Alice: one approval and one rejection of three is undecided; a second approval (2 > 3/2) makes it valid.
    let e = w.evaluate(&alice, 1, 5);
    assert_eq!(e["status"], "pending");
    assert_eq!(e["deadline"], T0 + WINDOW);
    assert_eq!(w.vote(&v[0], 1, true)["status"], "pending");
    assert_eq!(w.vote(&v[1], 1, false)["status"], "pending");
    let e = w.vote(&v[2], 1, true);
    assert_eq!(e["status"], "valid");
    assert_eq!(e["weight"], 100);
    let r = w.explain(&juice);
    // (3000·500 + 100·5000) / (500 + 100) = 3333 milli-points.
    assert_eq!(r["coefficient"], 3333);
    assert_eq!(term(&r, "uces"), (3333 - 1000) * 10_000 / 4000);
    assert_eq!(
        r["refs"]["uces"]["ids"][0],
        format!("uces_eval/{}", w.unit(1))
    );
    check_bounds(&r);
    let me = w.l.query(&alice, "uces_me", "");
    assert_eq!(
        (me["credit"].clone(), me["valid"].clone()),
        (json!(105), json!(1))
    );

    // Bob: two rejections of three (2·2 ≥ 3) reject it; credit drops, reward forfeited.
    w.evaluate(&bob, 2, 1);
    w.vote(&v[0], 2, false);
    let e = w.vote(&v[2], 2, false);
    assert_eq!(e["status"], "rejected");
    assert_eq!(e["reward_forfeited"], true);
    let me = w.l.query(&bob, "uces_me", "");
    assert_eq!(
        (me["credit"].clone(), me["rejected"].clone()),
        (json!(70), json!(1))
    );
    assert_eq!(
        w.explain(&juice)["coefficient"],
        3333,
        "a rejected evaluation does not count"
    );

    // Carol: one approval, then the window lapses.
    w.evaluate(&carol, 3, 4);
    w.vote(&v[0], 3, true);
    let unit3 = w.unit(3);
    w.l.refuse(
        &consumer(9),
        "uces_finalize",
        json!({"unit": unit3}),
        "is open until",
    );
    w.l.now += WINDOW;
    w.l.refuse(
        &v[1],
        "uces_vote",
        json!({"unit": unit3, "approve": true}),
        "voting window",
    );
    let e =
        w.l.submit(&consumer(9), "uces_finalize", json!({"unit": unit3}));
    assert_eq!(
        (e["status"].clone(), e["reason"].clone()),
        (json!("rejected"), json!("window lapsed"))
    );
    w.l.refuse(
        &consumer(9),
        "uces_finalize",
        json!({"unit": unit3}),
        "already rejected",
    );

    // Who sees what: the public view has no author, hashes or voters.
    let unit1 = w.unit(1);
    let public = w.l.query(&consumer(9), "uces_get", &unit1);
    assert!(
        public.get("author").is_none() && public.get("text_sha256").is_none(),
        "{public}"
    );
    assert_eq!(
        (public["approvals"].clone(), public["rejections"].clone()),
        (json!(2), json!(1))
    );
    // A valid evaluation's photos are public (validators vetted them); a
    // rejected one's are not. The unit's trace carries the same view.
    assert_eq!(public["photo_sha256"], json!([SHA2]), "{public}");
    let rejected = w.l.query(&consumer(9), "uces_get", &w.unit(2));
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["photo_sha256"], json!([]), "{rejected}");
    let trace = w.l.query(&consumer(9), "trace", &unit1);
    assert_eq!(trace["evaluation"], public, "{trace}");
    let trace = w.l.query(&consumer(9), "trace", &w.unit(2));
    assert_eq!(trace["evaluation"]["photo_sha256"], json!([]));
    let trace = w.l.query(&consumer(9), "trace", &w.unit(5));
    assert!(trace.get("evaluation").is_none(), "no evaluation: {trace}");
    let author_id = me_id(&mut w.l, &alice);
    for reader in [
        alice.clone(),
        w.regulator.clone(),
        who_cert("AuditMSP", &["auditor"], "AUD"),
        v[1].clone(),
    ] {
        let full = w.l.query(&reader, "uces_get", &unit1);
        assert_eq!(full["author"], author_id.as_str(), "{}", reader.msp_id);
        assert_eq!(full["photo_sha256"], json!([SHA2]));
    }
    let history = w.explain(&juice)["history"].as_array().unwrap().len();
    assert!(history >= 1);
    w.l.check_fuel();
}

fn me_id(l: &mut Ledger, who: &Caller) -> String {
    l.query(who, "uces_me", "")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn refusals_leave_no_trace() {
    let mut w = world(true);
    let v = validators();
    let (alice, bob) = (consumer(1), consumer(2));
    let scores = json!({"overall": 4, "quality": 4, "performance": 4, "authenticity": 4});
    let unit1 = w.unit(1);
    let eval = |unit: &str| json!({"unit": unit, "scores": scores});

    // Not claimed: unknown unit, only scanned, claimed by someone else.
    w.l.refuse(
        &alice,
        "uces_evaluate",
        eval(&unit1),
        "you have not claimed unit",
    );
    let code1 = w.codes[0].clone();
    w.l.submit(
        &alice,
        "scan",
        json!({"code": code1, "location": "Hangzhou"}),
    );
    w.l.refuse(
        &alice,
        "uces_evaluate",
        eval(&unit1),
        "you have not claimed unit",
    );
    w.claim(&bob, 1);
    w.l.refuse(
        &alice,
        "uces_evaluate",
        eval(&unit1),
        "you have not claimed unit",
    );
    // Not a consumer, or not real-name verified.
    w.l.refuse(
        &w.lab.clone(),
        "uces_evaluate",
        eval(&unit1),
        "only a consumer identity",
    );
    let anonymous = who_cert("PlatformMSP", &["consumer"], "CONSUMER-2");
    w.l.refuse(
        &anonymous,
        "uces_evaluate",
        eval(&unit1),
        "real_name=verified",
    );
    // Bounds.
    let bad = json!({"unit": unit1, "scores": {"overall": 6, "quality": 4, "performance": 4, "authenticity": 4}});
    w.l.refuse(
        &bob,
        "uces_evaluate",
        bad,
        "score overall must be 1 to 5, got 6",
    );
    let bad = json!({"unit": unit1, "scores": scores, "photo_sha256": vec![SHA; 10]});
    w.l.refuse(&bob, "uces_evaluate", bad, "at most 9 photo hashes");
    let bad = json!({"unit": unit1, "scores": scores, "text_sha256": "great juice"});
    w.l.refuse(
        &bob,
        "uces_evaluate",
        bad,
        "text_sha256 must be a SHA-256 digest",
    );
    let bad = json!({"unit": unit1, "scores": scores, "text": "great juice"});
    w.l.refuse(&bob, "uces_evaluate", bad, "unknown field `text`");

    // Once per unit.
    w.l.submit(&bob, "uces_evaluate", eval(&unit1));
    w.l.refuse(&bob, "uces_evaluate", eval(&unit1), "already evaluated");

    // Votes: non-validators (a validator's org with another certificate too), double votes.
    w.l.refuse(
        &alice,
        "uces_vote",
        json!({"unit": unit1, "approve": true}),
        "is not a validator",
    );
    let impostor = who_cert("LabMSP", &[], "NOT-VAL-2");
    w.l.refuse(
        &impostor,
        "uces_vote",
        json!({"unit": unit1, "approve": true}),
        "is not a validator",
    );
    w.vote(&v[0], 1, true);
    w.l.refuse(
        &v[0],
        "uces_vote",
        json!({"unit": unit1, "approve": false}),
        "already voted",
    );
    w.l.refuse(
        &v[0],
        "uces_vote",
        json!({"unit": w.unit(7), "approve": true}),
        "has no evaluation",
    );

    // Daily limit (3): Bob's 4th evaluation today is refused, tomorrow it is accepted.
    for s in 2..=4 {
        w.claim(&bob, s);
    }
    w.evaluate(&bob, 2, 4);
    w.evaluate(&bob, 3, 4);
    let unit4 = w.unit(4);
    w.l.refuse(
        &bob,
        "uces_evaluate",
        eval(&unit4),
        "daily evaluation limit reached: 3 of 3",
    );
    w.l.now += DAY;
    w.evaluate(&bob, 4, 4);
}

#[test]
fn rejections_cost_credit_and_bar_the_author() {
    let mut w = world(true);
    let v = validators();
    let bob = consumer(2);
    for s in 1..=4 {
        w.claim(&bob, s);
    }
    for s in 1..=2 {
        w.evaluate(&bob, s, 1);
        w.vote(&v[0], s, false);
        w.vote(&v[1], s, false);
    }
    let me = w.l.query(&bob, "uces_me", "");
    assert_eq!(me["credit"], 40);
    assert_eq!(me["rejected"], 2);
    assert_eq!(me["barred_until"], T0 + DAY);
    let unit3 = w.unit(3);
    w.l.refuse(
        &bob,
        "uces_evaluate",
        json!({"unit": unit3, "scores": {"overall": 3, "quality": 3, "performance": 3, "authenticity": 3}}),
        "barred from evaluating until",
    );
    // After the bar, a valid evaluation counts with the lowered credit (40).
    w.l.now += DAY;
    w.evaluate(&bob, 3, 5);
    w.vote(&v[0], 3, true);
    assert_eq!(w.vote(&v[1], 3, true)["weight"], 40);
    let juice = w.juice.clone();
    // (3000·500 + 40·5000) / 540 = 3148.
    assert_eq!(w.explain(&juice)["coefficient"], 3148);
}

#[test]
fn index_moves_as_documented() {
    let mut w = world(true);
    let (juice, jb, raw) = (w.juice.clone(), w.jb.clone(), w.raw.clone());
    w.l.refuse(
        &consumer(1),
        "index_get",
        json!(""),
        "neither a GTIN-14 nor",
    );
    let r = w.l.invoke(&consumer(1), "index_get", &juice);
    assert!(
        matches!(r, Err(InvokeError::Contract { message, .. }) if message.contains("no QCSS index"))
    );

    // A lab pass: certification (10000·1 + 5000·1) / 2 = 7500.
    w.inspect(&jb, true);
    let r = w.explain(&juice);
    assert_eq!(term(&r, "certification"), 7500);
    assert_eq!(term(&r, "producer"), 10_000);
    assert_eq!(term(&r, "process"), 5000);
    assert_eq!(term(&r, "raw_material"), 5000);
    assert_eq!(term(&r, "uces"), 5000);
    // 2500 + 750 + 750 + 1500 + 1250.
    assert_eq!(r["index"], 6750);
    check_bounds(&r);
    w.inspect(&jb, false);
    assert_eq!(term(&w.explain(&juice), "certification"), 5000);

    // Readings: 3 in limits, 1 alert → (10000·3 + 5000) / 5 = 7000.
    w.readings(&[140.0, 141.0, 142.0, 120.0]);
    let r = w.explain(&juice);
    assert_eq!(term(&r, "process"), 7000);
    assert_eq!(r["inputs"]["alerts"], 1);
    assert_eq!(
        r["refs"]["process"]["ids"],
        json!([format!("alert/{jb}/0")])
    );

    // Raw material: the loquat lot passed before a transformation, fails after.
    w.inspect(&raw, true);
    let factory = w.factory.clone();
    w.l.submit(
        &factory,
        "transform",
        json!({"transformation_id": "T1", "inputs": [{"batch": raw, "quantity": 10}],
               "output": {"gtin": juice, "lot": "LJ2", "quantity": 10, "uom": "H87",
                          "production_date": "2025-06-02", "site": "Suzhou"}}),
    );
    assert_eq!(term(&w.explain(&juice), "raw_material"), 7500);
    w.inspect(&raw, false);
    let r = w.explain(&juice);
    assert_eq!(term(&r, "raw_material"), 5000);
    assert_eq!(r["refs"]["raw_material"]["count"], 2);

    // Recall: producer 10000 − 2000; suspension: 0; reinstated: 10000 − 2000 − 1000.
    w.l.submit(&factory, "recall", json!({"batch": jb, "reason": "sugar"}));
    assert_eq!(term(&w.explain(&juice), "producer"), 8000);
    let reg = w.regulator.clone();
    w.l.submit(
        &reg,
        "suspend_permit",
        json!({"msp": "FactoryMSP", "reason": "false ISO"}),
    );
    let r = w.explain(&juice);
    assert_eq!(term(&r, "producer"), 0);
    assert_eq!(r["permit"]["status"], "suspended");
    assert_eq!(term(&w.explain("FactoryMSP"), "producer"), 0);
    w.l.submit(
        &reg,
        "reinstate_permit",
        json!({"msp": "FactoryMSP", "reason": "checked"}),
    );
    let r = w.explain(&juice);
    assert_eq!(term(&r, "producer"), 7000);
    check_bounds(&r);

    // The enterprise sums its products' inputs (juice and loquat).
    let e = w.explain("FactoryMSP");
    assert_eq!(e["kind"], "enterprise");
    assert_eq!(e["inputs"]["lab_pass"], 2);
    assert_eq!(e["inputs"]["lab_fail"], 2);
    assert_eq!(e["inputs"]["readings"], 4);
    check_bounds(&e);
    let g = w.l.query(&consumer(1), "index_get", &juice);
    assert_eq!(g["index"], r["index"]);
    let points: Vec<u64> = g["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].as_u64().unwrap())
        .collect();
    assert!(points.len() <= 16 && points.len() >= 8, "{points:?}");
    assert_eq!(*points.last().unwrap(), r["index"].as_u64().unwrap());
    w.l.check_fuel();
}

/// Whether `b`'s writes would invalidate `a` under MVCC: a key `a` read,
/// or a key inside a range `a` scanned (a phantom).
fn conflicts(a: &Simulation, b: &Simulation) -> Vec<String> {
    b.writes
        .iter()
        .map(|w| &w.key)
        .filter(|k| {
            a.reads.iter().any(|r| &r.key == *k)
                || a.range_reads.iter().any(|rr| {
                    k.as_str() >= rr.start.as_str()
                        && (rr.end.is_empty() || k.as_str() < rr.end.as_str())
                })
        })
        .cloned()
        .collect()
}

#[test]
fn concurrent_index_events_share_no_key_and_folding_keeps_the_answer() {
    let mut w = world(true);
    let v = validators();
    let (alice, bob) = (consumer(1), consumer(2));
    w.claim(&alice, 1);
    w.claim(&bob, 2);
    w.evaluate(&alice, 1, 5);
    w.evaluate(&bob, 2, 4);
    for serial in [1, 2] {
        w.vote(&v[0], serial, true);
    }
    // The deciding votes on two units of the same product, simulated on the
    // same state (as two endorsements of one block would be): neither reads
    // what the other writes, so both commit.
    let sims: Vec<Simulation> = [1, 2]
        .iter()
        .map(|&serial| {
            let arg = json!({"unit": w.unit(serial), "approve": true}).to_string();
            w.l.invoke(&v[1], "uces_vote", &arg).expect("vote")
        })
        .collect();
    assert_eq!(conflicts(&sims[0], &sims[1]), Vec::<String>::new());
    assert_eq!(conflicts(&sims[1], &sims[0]), Vec::<String>::new());
    let written: Vec<&String> = sims
        .iter()
        .flat_map(|s| s.writes.iter().map(|w| &w.key))
        .collect();
    assert!(
        written.iter().any(|k| k.contains("\u{0}qidx_d\u{0}"))
            && written.iter().all(|k| !k.contains("\u{0}qidx\u{0}")),
        "events write deltas, never the index records: {written:?}"
    );
    for (n, sim) in sims.iter().enumerate() {
        w.l.block += 1;
        w.l.state.apply(
            sim,
            Version {
                block: w.l.block,
                tx: n as u64,
            },
        );
    }
    let juice = w.juice.clone();
    let before = w.l.query(&consumer(9), "index_get", &juice);
    assert_eq!(before["evaluations"], 2);
    assert!(before["pending"].as_u64().unwrap() > 0, "{before}");
    // Nothing is old enough to fold yet.
    assert_eq!(
        w.l.query(&consumer(9), "index_pending", "")["records"],
        json!([])
    );
    // Later: both records are pending; folding stores the same answer.
    w.l.now += 301;
    let pending = w.l.query(&consumer(9), "index_pending", "");
    let listed: Vec<&str> = pending["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        listed.contains(&"FactoryMSP") && listed.contains(&juice.as_str()),
        "{pending}"
    );
    assert_eq!(pending["next"], Value::Null, "all records seen: {pending}");
    // Paging: after the enterprise record come only products' records.
    let rest =
        w.l.query(&consumer(9), "index_pending", "enterprise/FactoryMSP");
    let rest_listed = rest["records"].as_array().unwrap();
    assert!(
        rest_listed.contains(&json!(juice)) && !rest_listed.contains(&json!("FactoryMSP")),
        "{rest}"
    );
    let e =
        w.l.invoke(&consumer(9), "index_pending", "nonsense")
            .unwrap_err();
    assert!(e.to_string().contains("index_pending takes"), "{e}");
    for s in [juice.as_str(), "FactoryMSP"] {
        let f = w.l.submit_raw(&consumer(9), "index_fold", s);
        assert!(f["folded"].as_u64().unwrap() > 0, "{f}");
        assert_eq!(f["more"], false);
    }
    assert_eq!(
        w.l.query(&consumer(9), "index_pending", "")["records"],
        json!([])
    );
    let after = w.l.query(&consumer(9), "index_get", &juice);
    assert_eq!(after["pending"], 0);
    for field in ["index", "coefficient", "evaluations", "terms", "history"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    // A fold with nothing old enough writes nothing.
    let f = w.l.submit_raw(&consumer(9), "index_fold", &juice);
    assert_eq!(f["folded"], 0);
    w.l.check_fuel();
}

#[test]
fn a_read_folds_at_most_its_bound_within_fuel() {
    let mut w = world(true);
    let jb = w.jb.clone();
    let juice = w.juice.clone();
    for n in 0..69 {
        w.inspect(&jb, n % 5 != 0);
    }
    let g = w.l.query(&consumer(9), "index_get", &juice);
    assert_eq!(
        (g["pending"].clone(), g["pending_more"].clone()),
        (json!(64), json!(true))
    );
    w.l.now += 301;
    let f = w.l.submit_raw(&consumer(9), "index_fold", &juice);
    assert_eq!(
        (f["folded"].clone(), f["more"].clone()),
        (json!(64), json!(true))
    );
    let f = w.l.submit_raw(&consumer(9), "index_fold", &juice);
    assert_eq!(
        (f["folded"].clone(), f["more"].clone()),
        (json!(5), json!(false))
    );
    let r = w.explain(&juice);
    assert_eq!(r["inputs"]["lab_pass"], 55);
    assert_eq!(r["inputs"]["lab_fail"], 14);
    check_bounds(&r);
    w.l.check_fuel();
}

/// Seven products, each made from the raw lot (lot `B1` of each); their GTINs.
fn blends_of_the_raw_lot(w: &mut World) -> Vec<String> {
    let (factory, raw) = (w.factory.clone(), w.raw.clone());
    let mut outputs = Vec::new();
    for n in 0..7 {
        let g = gs1(&format!("069012345610{n}"));
        w.l.submit(
            &factory,
            "register_product",
            json!({"gtin": g, "name": format!("Blend {n}"), "category": "beverage"}),
        );
        w.l.submit(
            &factory,
            "transform",
            json!({"transformation_id": format!("T{n}"), "inputs": [{"batch": raw, "quantity": 1}],
                   "output": {"gtin": g, "lot": "B1", "quantity": 1, "uom": "H87",
                              "production_date": "2025-06-02", "site": "Suzhou"}}),
        );
        outputs.push(g);
    }
    outputs
}

#[test]
fn index_hooks_stay_within_fuel_at_their_bounds() {
    // The raw lot goes into 7 products (9 with index records, beyond the 8
    // an enterprise lists); its inspection credits the first 4 outputs; a
    // permit change recomputes 8 products.
    let mut w = world(true);
    let raw = w.raw.clone();
    let outputs = blends_of_the_raw_lot(&mut w);
    for g in &outputs {
        w.inspect(&format!("{g}/B1"), true);
    }
    w.inspect(&raw, true);
    let jb = w.jb.clone();
    w.inspect(&jb, true);
    let credited: Vec<u64> = outputs
        .iter()
        .map(|g| w.explain(g)["inputs"]["raw_pass"].as_u64().unwrap())
        .collect();
    assert_eq!(credited, [1, 1, 1, 1, 0, 0, 0]);
    let e = w.explain("FactoryMSP");
    assert_eq!(e["gtins"].as_array().unwrap().len(), 8);
    let reg = w.regulator.clone();
    w.l.submit(
        &reg,
        "suspend_permit",
        json!({"msp": "FactoryMSP", "reason": "audit"}),
    );
    let zero = outputs
        .iter()
        .filter(|g| term(&w.explain(g), "producer") == 0)
        .count();
    // Every product, listed or not: a read computes the producer term
    // with the permit as it is now.
    assert_eq!(zero, 7);
    w.l.check_fuel();
}

#[test]
fn reward_pages_fit_in_the_fuel_budget() {
    let mut w = world(false);
    let mut c = config();
    c["rewards"]["max_batch"] = json!(MAX_BATCH);
    set_genesis(&mut w.l, c);
    // Two full pages and a short one.
    let n = 2 * MAX_BATCH + 3;
    for i in 0..n {
        let who = consumer(1000 + i);
        bind(&mut w.l, &who, &keypair_n(i));
        w.claim(&who, 1 + (i as usize % 60));
    }
    w.l.now = T0 + EPOCH;
    for page in 1..=3 {
        let p =
            w.l.submit(&consumer(9), "rewards_epoch", json!({"epoch": 0}));
        assert_eq!(p["pages"], page);
        assert_eq!(p["complete"], page == 3, "{p}");
    }
    let b = w.l.query(
        &consumer(9),
        "rewards_get",
        &json!({"epoch": 0}).to_string(),
    );
    assert_eq!(b["batch"]["count"], n);
    assert_eq!(b["batch"]["max_page"], MAX_BATCH);
    assert_eq!(reward_entries(&mut w.l, 0, 0, 3).len(), n as usize);
    eprintln!(
        "rewards_epoch of a {MAX_BATCH}-address page: {} fuel; rewards_get of one: {} fuel",
        w.l.fuel["rewards_epoch"], w.l.fuel["rewards_get"]
    );
    w.l.check_fuel();
}

fn keypair_n(n: u32) -> Ed25519KeyPair {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
}

#[test]
fn a_settled_iot_channel_moves_process_health() {
    use qcss_iot::keys::Key;
    use qcss_iot::params::gateway_identity;
    use qcss_iot::{Channel, ChannelParams, Measure, Party, Reading, Schema};

    let mut w = world(true);
    let (factory, jb, juice) = (w.factory.clone(), w.jb.clone(), w.juice.clone());
    let (device_key, gateway_key) = (Key::from_secret([7; 32]), Key::from_secret([8; 32]));
    let sensor = who_cert("FactoryMSP", &["device"], "UHT-CHANNEL-1");
    w.l.submit(
        &factory,
        "bind_device",
        json!({"device": "t-1", "device_cert_pem": sensor.cert_pem, "batch": jb,
               "channel_key": device_key.public().to_string()}),
    );
    let params = ChannelParams {
        ledger: "qcss".into(),
        device: "FactoryMSP/t-1".into(),
        device_key: device_key.public(),
        gateway: gateway_identity("FactoryMSP", &factory.cert_pem),
        gateway_key: gateway_key.public(),
        batch: jb.clone(),
        schema: Schema(vec![Measure {
            kind: "qcss:UHTTemperature".into(),
            unit: "CEL".into(),
            min: Some(135.0),
            max: Some(150.0),
        }]),
        challenge_secs: 600,
        nonce: 1,
    };
    let id = params.id();
    w.l.submit(
        &factory,
        "iot_open",
        json!({"device": "FactoryMSP/t-1", "batch": jb, "gateway_key": gateway_key.public().to_string(),
               "schema": [{"type": "qcss:UHTTemperature", "unit": "CEL", "min": 135.0, "max": 150.0}],
               "challenge_secs": 600, "nonce": 1, "channel": id.to_string()}),
    );
    // Off the ledger: four readings, one (120 °C) below the limit; a final state closes at once.
    let mut ch = Channel::open(params).unwrap();
    let readings: Vec<Reading> = [140.0, 141.0, 120.0, 142.0]
        .iter()
        .enumerate()
        .map(|(i, t)| Reading {
            seq: i as u64,
            time: T0 - 100 + i as i64,
            values: vec![*t],
        })
        .collect();
    let s = ch.apply(&readings, true).unwrap().clone();
    let state = json!({
        "state": hex::encode(s.encode()),
        "device_sig": device_key.sign(&s, Party::Device).to_string(),
        "gateway_sig": gateway_key.sign(&s, Party::Gateway).to_string(),
    });
    let rec = w.l.submit(
        &factory,
        "iot_close",
        json!({"channel": id.to_string(), "state": state}),
    );
    assert_eq!(rec["status"], "settled");
    let r = w.explain(&juice);
    assert_eq!(
        (
            r["inputs"]["readings"].clone(),
            r["inputs"]["alerts"].clone()
        ),
        (json!(4), json!(1))
    );
    // (10000·3 + 5000) / 5.
    assert_eq!(term(&r, "process"), 7000);
    assert_eq!(
        r["refs"]["process"]["ids"],
        json!([format!("alert/{jb}/0")])
    );
    check_bounds(&r);
}

/// Steps of the order-independence test: chains whose steps must stay in
/// order, interleaved at random.
#[derive(Clone, Debug)]
enum Step {
    Inspect(bool, bool),
    Readings(Vec<f64>),
    Claim(u32),
    Evaluate(u32, u8),
    Vote(u32, usize, bool),
    Transform,
    Suspend,
    Reinstate,
}

fn run(w: &mut World, step: &Step) {
    let v = validators();
    match step {
        Step::Inspect(raw, pass) => {
            let b = if *raw { w.raw.clone() } else { w.jb.clone() };
            w.inspect(&b, *pass);
        }
        Step::Readings(values) => w.readings(values),
        Step::Claim(n) => w.claim(&consumer(*n), *n as usize),
        Step::Evaluate(n, s) => {
            w.evaluate(&consumer(*n), *n as usize, *s);
        }
        Step::Vote(n, i, yes) => {
            w.vote(&v[*i], *n as usize, *yes);
        }
        Step::Transform => {
            let (factory, raw, juice) = (w.factory.clone(), w.raw.clone(), w.juice.clone());
            w.l.submit(
                &factory,
                "transform",
                json!({"transformation_id": "T1", "inputs": [{"batch": raw, "quantity": 10}],
                       "output": {"gtin": juice, "lot": "LJ2", "quantity": 10, "uom": "H87",
                                  "production_date": "2025-06-02", "site": "Suzhou"}}),
            );
        }
        Step::Suspend | Step::Reinstate => {
            let reg = w.regulator.clone();
            let f = if matches!(step, Step::Suspend) {
                "suspend_permit"
            } else {
                "reinstate_permit"
            };
            w.l.submit(&reg, f, json!({"msp": "FactoryMSP", "reason": "audit"}));
        }
    }
}

/// xorshift64*: deterministic, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn chains(rng: &mut Rng) -> Vec<Vec<Step>> {
    // A suspended producer cannot transform: the transformation stays
    // outside the suspension.
    let mut c = vec![vec![Step::Transform, Step::Suspend, Step::Reinstate]];
    for i in 0..4 {
        // The first inspects the juice; a failed raw-material lot could not
        // be transformed, so raw-material inspections pass.
        let raw = i > 0 && rng.below(2) == 0;
        c.push(vec![Step::Inspect(raw, raw || rng.below(3) != 0)]);
    }
    for _ in 0..3 {
        let n = 1 + rng.below(5);
        c.push(vec![Step::Readings(
            (0..n).map(|_| 120.0 + rng.below(40) as f64).collect(),
        )]);
    }
    for n in 1..=4u32 {
        let score = 1 + rng.below(5) as u8;
        // Each validator's vote is random; the outcome is whatever the three votes make it.
        let mut chain = vec![Step::Claim(n), Step::Evaluate(n, score)];
        let votes: Vec<bool> = (0..3).map(|_| rng.below(2) == 0).collect();
        // Stop voting once decided (later votes would be refused).
        let (mut y, mut no) = (0, 0);
        for (i, vote) in votes.into_iter().enumerate() {
            chain.push(Step::Vote(n, i, vote));
            if vote {
                y += 1
            } else {
                no += 1
            }
            if y * 2 > 3 || no * 2 >= 3 {
                break;
            }
        }
        c.push(chain);
    }
    c
}

fn interleave(chains: &[Vec<Step>], rng: &mut Rng) -> Vec<Step> {
    let mut next = vec![0; chains.len()];
    let mut out = Vec::new();
    loop {
        let open: Vec<usize> = (0..chains.len())
            .filter(|&i| next[i] < chains[i].len())
            .collect();
        if open.is_empty() {
            return out;
        }
        let i = open[rng.below(open.len())];
        out.push(chains[i][next[i]].clone());
        next[i] += 1;
    }
}

/// An index record without what depends on when and by which transaction
/// it was last written.
fn timeless(mut r: Value) -> Value {
    let o = r.as_object_mut().unwrap();
    for k in ["history", "updated_at", "tx_id"] {
        o.remove(k);
    }
    r
}

#[test]
fn index_is_bounded_and_the_same_in_any_order() {
    let mut valid_evaluations = 0;
    for seed in [1u64, 7, 42, 1234, 99_999] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let chains = chains(&mut rng);
        let mut results: Vec<BTreeMap<&str, Value>> = Vec::new();
        let mut orders = Vec::new();
        for order in 0..3 {
            let steps = interleave(&chains, &mut rng);
            orders.push(format!("{steps:?}"));
            let mut w = world(true);
            for step in &steps {
                run(&mut w, step);
                let juice = w.juice.clone();
                if let Ok(sim) = w.l.invoke(&consumer(999), "index_explain", &juice) {
                    check_bounds(&payload(&sim));
                }
            }
            let loquat = gs1("0690123456001");
            let mut got = BTreeMap::new();
            let juice = w.juice.clone();
            for (key, s) in [
                ("juice", juice.as_str()),
                ("enterprise", "FactoryMSP"),
                ("loquat", loquat.as_str()),
            ] {
                let r = w.explain(s);
                check_bounds(&r);
                got.insert(key, timeless(r));
            }
            if let Some(first) = results.first() {
                assert_eq!(&got, first, "seed {seed}, order {order}: {steps:?}");
            }
            results.push(got);
        }
        // The orders differ, and the events moved the index.
        assert!(
            orders[0] != orders[1] || orders[1] != orders[2],
            "seed {seed}"
        );
        let inputs = &results[0]["juice"]["inputs"];
        assert_ne!(inputs["readings"], 0, "seed {seed}");
        assert_ne!(
            inputs["lab_pass"].as_u64().unwrap() + inputs["lab_fail"].as_u64().unwrap(),
            0
        );
        valid_evaluations += inputs["uces_n"].as_u64().unwrap();
    }
    assert!(valid_evaluations > 0, "no seed validated an evaluation");
}

fn keypair(n: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[n; 32]).unwrap()
}

/// Binds consumer `who` to the address of `key`, signing the documented message.
fn bind(l: &mut Ledger, who: &Caller, key: &Ed25519KeyPair) -> String {
    let address = hex::encode(key.public_key().as_ref());
    let author = me_id(l, who);
    let msg = format!("qcss-reward-binding-v1\nqcss\n{author}\n{address}");
    let sig = hex::encode(key.sign(msg.as_bytes()).as_ref());
    l.submit(
        who,
        "bind_reward_address",
        json!({"address": address, "signature": sig}),
    );
    address
}

#[test]
fn binding_needs_the_address_keys_signature() {
    let mut w = world(true);
    let (alice, bob) = (consumer(1), consumer(2));
    let key = keypair(1);
    let address = hex::encode(key.public_key().as_ref());
    let author = me_id(&mut w.l, &alice);
    let sign = |m: String| hex::encode(key.sign(m.as_bytes()).as_ref());
    let refused = "signature over the binding message is not valid";
    for msg in [
        format!("qcss-reward-binding-v1\nother-channel\n{author}\n{address}"),
        format!(
            "qcss-reward-binding-v1\nqcss\n{}\n{address}",
            me_id(&mut w.l, &bob)
        ),
        format!("qcss-reward-binding-v0\nqcss\n{author}\n{address}"),
    ] {
        w.l.refuse(
            &alice,
            "bind_reward_address",
            json!({"address": address, "signature": sign(msg)}),
            refused,
        );
    }
    let other = hex::encode(
        keypair(2)
            .sign(format!("qcss-reward-binding-v1\nqcss\n{author}\n{address}").as_bytes())
            .as_ref(),
    );
    w.l.refuse(
        &alice,
        "bind_reward_address",
        json!({"address": address, "signature": other}),
        refused,
    );
    w.l.refuse(
        &alice,
        "bind_reward_address",
        json!({"address": "ab", "signature": other}),
        "64 lowercase hex digits",
    );
    w.l.refuse(
        &alice,
        "bind_reward_address",
        json!({"address": address, "signature": "00"}),
        "128 hex digits",
    );
    let anonymous = who_cert("PlatformMSP", &["consumer"], "CONSUMER-1");
    w.l.refuse(
        &anonymous,
        "bind_reward_address",
        json!({"address": address, "signature": other}),
        "real_name=verified",
    );
    assert_eq!(bind(&mut w.l, &alice, &key), address);
    // Bob cannot take Alice's address, even with its key's signature over his id.
    let bob_id = me_id(&mut w.l, &bob);
    let bob_sig = sign(format!("qcss-reward-binding-v1\nqcss\n{bob_id}\n{address}"));
    w.l.refuse(
        &bob,
        "bind_reward_address",
        json!({"address": address, "signature": bob_sig}),
        "already bound to another identity",
    );
}

/// The batch digest, written from README.md rather than from the contract:
/// a SHA-256 chain over the pages of (address, points), then the totals.
fn batch_digest(epoch: u64, pages: &[&[(String, u64)]], points: u64, count: u64) -> String {
    let mut e = b"QCSS-REWARDS-V2\0".to_vec();
    e.extend_from_slice(&4u16.to_be_bytes());
    e.extend_from_slice(b"qcss");
    e.extend_from_slice(&epoch.to_be_bytes());
    let mut chain = digest(&SHA256, &e).as_ref().to_vec();
    for page in pages {
        let mut e = chain.clone();
        e.extend_from_slice(&(page.len() as u32).to_be_bytes());
        for (a, p) in *page {
            e.extend_from_slice(&hex::decode(a).unwrap());
            e.extend_from_slice(&p.to_be_bytes());
        }
        chain = digest(&SHA256, &e).as_ref().to_vec();
    }
    let start = T0 + epoch as i64 * EPOCH;
    let mut e = chain;
    e.extend_from_slice(&start.to_be_bytes());
    e.extend_from_slice(&(start + EPOCH).to_be_bytes());
    e.extend_from_slice(&BUDGET.to_be_bytes());
    e.extend_from_slice(&RATE.to_be_bytes());
    e.extend_from_slice(&points.to_be_bytes());
    e.extend_from_slice(&count.to_be_bytes());
    e.extend_from_slice(&(pages.len() as u32).to_be_bytes());
    sha256_hex(&e)
}

/// `rewards_get`'s entries of `pages` pages from `page` as (address, amount).
fn reward_entries(l: &mut Ledger, epoch: u64, page: u32, pages: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for n in page..page + pages {
        let v = l.query(
            &consumer(8),
            "rewards_get",
            &json!({"epoch": epoch, "page": n}).to_string(),
        );
        out.extend(
            v["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_u64().unwrap())),
        );
    }
    out
}

#[test]
fn reward_epochs_hold_their_budget_under_a_surge() {
    let mut w = world(true);
    let v = validators();
    // Epoch 0: three consumers; one claims and evaluates (1 scan + 5 points),
    // one scans twice (counted once), one never bound an address.
    let (alice, bob, carol) = (consumer(1), consumer(2), consumer(3));
    let a_addr = bind(&mut w.l, &alice, &keypair(1));
    let b_addr = bind(&mut w.l, &bob, &keypair(2));
    w.claim(&alice, 1);
    w.evaluate(&alice, 1, 5);
    w.vote(&v[0], 1, true);
    w.vote(&v[1], 1, true);
    let code2 = w.codes[1].clone();
    for _ in 0..2 {
        w.l.submit(&bob, "scan", json!({"code": code2, "location": "Hangzhou"}));
    }
    w.claim(&carol, 3);
    w.l.refuse(
        &alice,
        "rewards_epoch",
        json!({"epoch": 0}),
        "its batch is computed after it ends",
    );
    w.l.now = T0 + EPOCH;
    w.l.refuse(
        &alice,
        "rewards_epoch",
        json!({"epoch": 13_149}),
        "beyond the DApp pool",
    );
    // Before anything is frozen there is no batch and no entries.
    let none = w.l.query(
        &consumer(8),
        "rewards_get",
        &json!({"epoch": 0, "page": 0}).to_string(),
    );
    assert_eq!(
        (none["batch"].is_null(), none["entries"].clone()),
        (true, json!([]))
    );
    let p0 =
        w.l.submit(&consumer(9), "rewards_epoch", json!({"epoch": 0}));
    assert_eq!(p0["complete"], true);
    let b0 = &p0["batch"];
    assert_eq!(b0["budget"], BUDGET);
    assert_eq!(b0["shrunk"], false);
    assert_eq!(
        (b0["points"].as_u64(), b0["pages"].as_u64()),
        (Some(7), Some(1))
    );
    let mut points = vec![(a_addr.clone(), 6), (b_addr.clone(), 1)];
    points.sort();
    let expect: Vec<(String, u64)> = points.iter().map(|(a, p)| (a.clone(), p * RATE)).collect();
    assert_eq!(reward_entries(&mut w.l, 0, 0, 1), expect);
    assert_eq!(b0["digest"], batch_digest(0, &[&points], 7, 2));
    // Complete: asking again returns the stored batch and writes nothing.
    let again = w.l.query(
        &consumer(8),
        "rewards_epoch",
        &json!({"epoch": 0}).to_string(),
    );
    assert_eq!(again["batch"]["digest"], b0["digest"]);
    w.l.refuse(
        &consumer(8),
        "rewards_get",
        json!({"epoch": 0, "page": 1}),
        "epoch 0 has 1 pages; there is no page 1",
    );

    // Epoch 1: a surge of 12 consumers, one point each, would cost 12 000
    // QCSS at the full rate, more than the epoch's ~7 605 QCSS: each gets
    // budget / 12 instead, and the total stays within the budget.
    let mut addrs = Vec::new();
    for n in 10..22u32 {
        let c = consumer(n);
        addrs.push(bind(&mut w.l, &c, &keypair(n as u8)));
        w.claim(&c, n as usize);
    }
    addrs.sort();
    w.l.now = T0 + 2 * EPOCH;
    // A governed max_batch of 5 freezes the 12 in three pages.
    let mut c = config();
    c["rewards"]["max_batch"] = json!(5);
    w.l.submit(
        &admin("FactoryMSP"),
        "gov_propose",
        json!({"id": "small", "config": c}),
    );
    w.l.submit(&admin("FarmMSP"), "gov_approve", json!({"id": "small"}));
    for (pages, complete) in [(1, false), (2, false), (3, true)] {
        let p =
            w.l.submit(&consumer(9), "rewards_epoch", json!({"epoch": 1}));
        assert_eq!(
            (p["pages"].as_u64(), p["complete"].as_bool()),
            (Some(pages), Some(complete))
        );
        if !complete {
            // Not complete: no batch, no entries, and the tally shows progress.
            let g = w.l.query(
                &consumer(8),
                "rewards_get",
                &json!({"epoch": 1, "page": 0}).to_string(),
            );
            assert_eq!(
                (g["batch"].is_null(), g["tally"]["pages"].as_u64()),
                (true, Some(pages))
            );
            assert_eq!(g["entries"], json!([]));
        }
    }
    let b1 = w.l.query(
        &consumer(8),
        "rewards_get",
        &json!({"epoch": 1}).to_string(),
    );
    let b1 = &b1["batch"];
    assert_eq!(b1["shrunk"], true);
    assert_eq!(
        (b1["points"].as_u64(), b1["max_page"].as_u64()),
        (Some(12), Some(5))
    );
    let each = BUDGET / 12;
    assert!(each < RATE);
    let expect: Vec<(String, u64)> = addrs.iter().map(|a| (a.clone(), each)).collect();
    let got = reward_entries(&mut w.l, 1, 0, 3);
    assert_eq!(got, expect);
    assert!(got.iter().map(|e| e.1).sum::<u64>() <= BUDGET);
    // Any run of pages is the same slice of the whole.
    assert_eq!(reward_entries(&mut w.l, 1, 1, 1), expect[5..10].to_vec());
    assert_eq!(reward_entries(&mut w.l, 1, 2, 1), expect[10..].to_vec());
    let ones: Vec<(String, u64)> = addrs.iter().map(|a| (a.clone(), 1)).collect();
    assert_eq!(
        b1["digest"],
        batch_digest(1, &[&ones[..5], &ones[5..10], &ones[10..]], 12, 12)
    );
    w.l.check_fuel();
}

impl Ledger {
    /// Median wall time (µs) and fuel of `f` simulated `runs` times on the
    /// current state (never committed: each run does the same work).
    fn time(&mut self, caller: &Caller, f: &str, arg: &str, runs: usize) -> Value {
        let mut us = Vec::with_capacity(runs);
        let mut fuel = 0;
        for _ in 0..runs {
            let t = std::time::Instant::now();
            let sim = self
                .invoke(caller, f, arg)
                .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
            us.push(t.elapsed().as_secs_f64() * 1e6);
            assert!(sim.response.status < 400, "{f}: {}", sim.response.message);
            fuel = sim.fuel_used;
        }
        us.sort_by(f64::total_cmp);
        json!({"fuel": fuel, "us_median": (us[runs / 2] * 10.0).round() / 10.0, "runs": runs})
    }
}

/// The cost of each event that moves the QCSS index, of index reads and
/// folds, and of a reward page, in fuel and µs (the median of 31
/// simulations on one state). Prints JSON; no assertion on time. Run it
/// with `--release` for figures worth quoting (wasmi runs several times
/// slower in a debug build):
///
/// `cargo test --release -p qcss-chaincode --test uces -- --ignored --nocapture index_and_reward_costs`
#[test]
#[ignore = "a benchmark: run with --release --ignored"]
fn index_and_reward_costs() {
    const RUNS: usize = 31;
    let mut w = world(true);
    let mut out = serde_json::Map::new();
    let (lab, raw, jb, juice) = (w.lab.clone(), w.raw.clone(), w.jb.clone(), w.juice.clone());
    let inspection = |batch: &str| {
        json!({"batch": batch, "result": "pass", "standard": "GB 7101", "report_sha256": SHA,
               "measurements": [{"name": "sugar", "value": 9.0, "unit": "g/100ml", "max": 12.0}]})
        .to_string()
    };
    // An inspection of a lot of one product; of a raw lot in 7 products
    // (it credits 4 of them, the bound).
    out.insert(
        "record_inspection_one_product".into(),
        w.l.time(&lab, "record_inspection", &inspection(&jb), RUNS),
    );
    blends_of_the_raw_lot(&mut w);
    out.insert(
        "record_inspection_raw_lot_in_7_products".into(),
        w.l.time(&lab, "record_inspection", &inspection(&raw), RUNS),
    );
    // A claim (first scan: reward points), an evaluation, the deciding vote.
    let alice = consumer(1);
    bind(&mut w.l, &alice, &keypair(1));
    let claim = json!({"code": w.codes[0], "location": "Hangzhou"}).to_string();
    out.insert("claim".into(), w.l.time(&alice, "claim", &claim, RUNS));
    w.claim(&alice, 1);
    let eval = json!({"unit": w.unit(1), "scores": {"overall": 5, "quality": 4, "performance": 3, "authenticity": 5},
                      "text_sha256": SHA, "photo_sha256": [SHA2]})
    .to_string();
    out.insert(
        "uces_evaluate".into(),
        w.l.time(&alice, "uces_evaluate", &eval, RUNS),
    );
    w.evaluate(&alice, 1, 5);
    let v = validators();
    w.vote(&v[0], 1, true);
    let vote = json!({"unit": w.unit(1), "approve": true}).to_string();
    out.insert(
        "uces_vote_deciding".into(),
        w.l.time(&v[1], "uces_vote", &vote, RUNS),
    );
    // Reads with few pending changes and with the 64 a read folds at most;
    // a fold of 64.
    let anyone = consumer(9);
    w.inspect(&jb, true);
    out.insert(
        "index_get_few_pending".into(),
        w.l.time(&anyone, "index_get", &juice, RUNS),
    );
    for n in 0..70 {
        w.inspect(&jb, n % 5 != 0);
    }
    out.insert(
        "index_get_64_pending".into(),
        w.l.time(&anyone, "index_get", &juice, RUNS),
    );
    w.l.now += 301;
    out.insert(
        "index_fold_64".into(),
        w.l.time(&anyone, "index_fold", &juice, RUNS),
    );
    // A reward page of 128 addresses: frozen, then read back.
    for n in 0..MAX_BATCH {
        let who = consumer(1000 + n);
        bind(&mut w.l, &who, &keypair_n(n));
        w.claim(&who, 2 + (n as usize % 58));
    }
    let mut c = config();
    c["rewards"]["max_batch"] = json!(MAX_BATCH);
    w.l.submit(
        &admin("FactoryMSP"),
        "gov_propose",
        json!({"id": "pages", "config": c}),
    );
    w.l.submit(&admin("FarmMSP"), "gov_approve", json!({"id": "pages"}));
    let e = (w.l.now - T0) / EPOCH;
    w.l.now = T0 + 10 * EPOCH;
    let arg = json!({"epoch": e}).to_string();
    out.insert(
        "rewards_epoch_page_of_128".into(),
        w.l.time(&anyone, "rewards_epoch", &arg, RUNS),
    );
    // 129 addresses (alice too): a full page, then one more.
    while w.l.submit(&anyone, "rewards_epoch", json!({"epoch": e}))["complete"] != true {}
    out.insert(
        "rewards_get_page".into(),
        w.l.time(
            &anyone,
            "rewards_get",
            &json!({"epoch": e, "page": 0}).to_string(),
            RUNS,
        ),
    );
    out.insert(
        "profile".into(),
        json!(if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }),
    );
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
