//! The traceability contract (`chaincode/contracts/traceability`), built to
//! wasm and run in the runtime: the loquat-juice story from DOMAIN.md end to
//! end, and every refusal with its message. State is a `MemoryState` to
//! which each successful simulation is applied, one block per call.

use std::collections::BTreeMap;

mod common;

use common::{contract_wasm, who, who_cert};
use qcss_chaincode::unit_code::with_check_digit as gs1;
use qcss_chaincode::unit_code::{BatchKey, issue_codes};
use qcss_chaincode::{
    Caller, CodeHash, Invocation, InvokeError, Limits, MemoryState, Runtime, Simulation, StateView,
    Timestamp, Version,
};
use serde_json::{Value, json};

const T0: i64 = 1_764_000_000;
const YEAR: i64 = 365 * 24 * 3600;
const BASE: &str = "https://q.example.com";
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

struct Ledger {
    rt: Runtime,
    code: CodeHash,
    state: MemoryState,
    block: u64,
    now: i64,
    /// Fuel of the last call of each function.
    fuel: BTreeMap<String, u64>,
}

impl Ledger {
    fn new() -> Self {
        let rt = Runtime::new(Limits::default());
        let code = rt
            .install(&contract_wasm("traceability"))
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
            tx_id: format!("tx{:04}", self.block),
            channel: "qcss".into(),
            channel_orgs: Vec::new(),
            timestamp: Timestamp {
                seconds: self.now,
                nanos: 0,
            },
            caller: caller.clone(),
        };
        let sim = self.rt.invoke(&self.code, &inv, &self.state);
        if let Ok(sim) = &sim {
            self.fuel.insert(f.to_owned(), sim.fuel_used);
        }
        sim
    }

    /// Invokes and commits; returns the simulation.
    fn submit_sim(&mut self, caller: &Caller, f: &str, args: Value) -> Simulation {
        self.submit_raw(caller, f, &args.to_string())
    }

    /// Invokes with a raw (non-JSON) argument and commits.
    fn submit_raw(&mut self, caller: &Caller, f: &str, arg: &str) -> Simulation {
        let sim = self
            .invoke(caller, f, arg)
            .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
        self.state.apply(
            &sim,
            Version {
                block: self.block,
                tx: 0,
            },
        );
        sim
    }

    fn submit(&mut self, caller: &Caller, f: &str, args: Value) -> Value {
        let sim = self.submit_sim(caller, f, args);
        payload(&sim)
    }

    /// A query: invoked, never committed; the argument is a raw string.
    fn query(&mut self, caller: &Caller, f: &str, arg: &str) -> Value {
        let sim = self
            .invoke(caller, f, arg)
            .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
        assert!(sim.writes.is_empty(), "{f} is a query but wrote");
        payload(&sim)
    }

    /// Expects a contract error containing `expected`; nothing is committed.
    fn refuse_raw(&mut self, caller: &Caller, f: &str, arg: &str, expected: &str) {
        let before = self.state.clone();
        match self.invoke(caller, f, arg) {
            Err(InvokeError::Contract { message, .. }) => assert!(
                message.contains(expected),
                "{f}: expected an error containing {expected:?}, got {message:?}"
            ),
            Err(e) => panic!("{f}: expected a contract error, got {e}"),
            Ok(_) => panic!("{f} {arg}: expected refusal {expected:?}, but it succeeded"),
        }
        assert_eq!(self.state, before);
    }

    fn refuse(&mut self, caller: &Caller, f: &str, args: Value, expected: &str) {
        self.refuse_raw(caller, f, &args.to_string(), expected);
    }
}

fn payload(sim: &Simulation) -> Value {
    if sim.response.payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&sim.response.payload).expect("JSON payload")
    }
}

struct Cast {
    farm: Caller,
    factory: Caller,
    shipco: Caller,
    retailer: Caller,
    lab: Caller,
    regulator: Caller,
    auditor: Caller,
    device: Caller,
    consumer: Caller,
}

fn cast() -> Cast {
    Cast {
        farm: who("FarmMSP", &["enterprise"]),
        factory: who("FactoryMSP", &["enterprise"]),
        shipco: who("ShipCoMSP", &["logistics"]),
        retailer: who("RetailMSP", &["retailer"]),
        lab: who("LabMSP", &["lab"]),
        regulator: who("RegulatorMSP", &["regulator"]),
        auditor: who("RegulatorMSP", &["auditor"]),
        device: who_cert("FactoryMSP", &["device"], "UHT-SENSOR-1"),
        consumer: who("PlatformMSP", &["consumer"]),
    }
}

fn permit(l: &mut Ledger, c: &Cast, org: &Caller, valid_for: i64) {
    let p = l.submit(
        org,
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "fruit and juice", "valid_until": l.now + valid_for}),
    );
    assert_eq!(p["status"], "applied");
    let p = l.submit(
        &c.regulator,
        "approve_permit",
        json!({"msp": org.msp_id, "reason": "ISO 9001 certificate checked"}),
    );
    assert_eq!(p["status"], "active");
}

fn batch_args(gtin: &str, lot: &str, quantity: u64, uom: &str) -> Value {
    json!({"gtin": gtin, "lot": lot, "quantity": quantity, "uom": uom,
           "production_date": "2025-06-01", "site": "Suzhou orchard 3"})
}

#[test]
fn loquat_juice_story_end_to_end() {
    let c = cast();
    let mut l = Ledger::new();
    let loquat = gs1("0690123456001");
    let juice = gs1("0690123456002");
    let (h1, h2) = (format!("{loquat}/H1"), format!("{loquat}/H2"));
    let jb = format!("{juice}/LJ2025A");

    // Permits: nothing before approval; apply, approve.
    l.refuse(
        &c.farm,
        "register_product",
        json!({"gtin": loquat, "name": "Loquat", "category": "fruit"}),
        "organisation FarmMSP has no on-chain permit",
    );
    permit(&mut l, &c, &c.farm, YEAR);
    permit(&mut l, &c, &c.factory, YEAR);
    let p = l.query(&c.consumer, "get_permit", "FarmMSP");
    assert_eq!(p["history"].as_array().unwrap().len(), 2);

    // Products and harvest lots.
    l.submit(
        &c.farm,
        "register_product",
        json!({"gtin": loquat, "name": "Loquat, fresh", "category": "fruit", "spec": {"grade": "A"}}),
    );
    l.submit(
        &c.farm,
        "register_batch",
        batch_args(&loquat, "H1", 1000, "KGM"),
    );
    l.submit(
        &c.farm,
        "register_batch",
        batch_args(&loquat, "H2", 800, "KGM"),
    );
    l.submit(
        &c.factory,
        "register_product",
        json!({"gtin": juice, "name": "Loquat juice 330 ml", "category": "beverage"}),
    );

    // Custody: the farm ships both lots to the factory via ShipCo.
    for h in [&h1, &h2] {
        l.submit(
            &c.farm,
            "add_event",
            json!({"target": h, "biz_step": "harvesting", "read_point": "orchard 3",
                   "attachments": [{"sha256": SHA, "name": "field.jpg", "media_type": "image/jpeg"}]}),
        );
        l.submit(
            &c.farm,
            "add_event",
            json!({"target": h, "biz_step": "shipping", "destination": "FactoryMSP", "carrier": "ShipCoMSP"}),
        );
    }
    l.submit(
        &c.shipco,
        "add_event",
        json!({"target": h1, "biz_step": "transporting", "data": {"truck": "Z-1234"}}),
    );
    l.refuse(
        &c.retailer,
        "add_event",
        json!({"target": h1, "biz_step": "receiving"}),
        "is shipped to FactoryMSP, not RetailMSP",
    );
    l.refuse(
        &c.factory,
        "add_event",
        json!({"target": h1, "biz_step": "storing"}),
        "FactoryMSP neither holds nor carries it",
    );
    for h in [&h1, &h2] {
        let e = l.submit(
            &c.factory,
            "add_event",
            json!({"target": h, "biz_step": "receiving"}),
        );
        assert_eq!(e["source"], "FarmMSP");
    }
    let b = l.query(&c.consumer, "get_batch", &h1);
    assert_eq!(b["custodian"], "FactoryMSP");
    assert_eq!(b["owner"], "FarmMSP");

    // Transformation: 600 kg of H1 and all of H2 become the juice batch.
    let out = l.submit(
        &c.factory,
        "transform",
        json!({"transformation_id": "T-2025-001",
               "inputs": [{"batch": h1, "quantity": 600}, {"batch": h2, "quantity": 800}],
               "output": batch_args(&juice, "LJ2025A", 24, "H87"),
               "location": "factory line 1"}),
    );
    assert_eq!(out["id"], jb);
    assert_eq!(out["inputs"].as_array().unwrap().len(), 2);
    l.refuse(
        &c.factory,
        "transform",
        json!({"transformation_id": "T-2025-002",
               "inputs": [{"batch": h1, "quantity": 500}],
               "output": batch_args(&juice, "LJ2025X", 10, "H87")}),
        &format!("batch {h1} has only 400 KGM left, cannot consume 500"),
    );
    l.refuse(
        &c.factory,
        "add_event",
        json!({"target": h2, "biz_step": "storing"}),
        "fully consumed",
    );

    // Production events with attachments.
    for step in ["sterilising", "filling"] {
        l.submit(
            &c.factory,
            "add_event",
            json!({"target": jb, "biz_step": step, "disposition": "in_progress",
                   "event_time": l.now - 60, "event_time_zone_offset": "+08:00",
                   "read_point": "line 1", "data": {"temperature_c": 137},
                   "attachments": [{"sha256": SHA}]}),
        );
    }

    // IoT: limits, a bound device, one reading out of limits.
    l.submit(
        &c.factory,
        "set_limits",
        json!({"batch": jb, "limits": [{"type": "qcss:UHTTemperature", "unit": "CEL", "min": 135.0, "max": 150.0}]}),
    );
    l.submit(
        &c.factory,
        "bind_device",
        json!({"device": "uht-1", "device_cert_pem": c.device.cert_pem, "batch": jb}),
    );
    let alerts = l.submit(
        &c.device,
        "submit_readings",
        json!({"device": "uht-1", "batch": jb, "readings": [
            {"type": "qcss:UHTTemperature", "value": 137.2, "unit": "CEL", "time": l.now - 30},
            {"type": "qcss:UHTTemperature", "value": 121.5, "unit": "CEL", "time": l.now - 20}]}),
    );
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    assert_eq!(alerts[0]["reading"]["value"], 121.5);

    // Lab: accredited; its inspection writes the seal key only its peer may endorse.
    let lab = l.submit(
        &c.regulator,
        "accredit_lab",
        json!({"msp": "LabMSP", "name": "Zhejiang food lab", "scope": "GB 7101 beverages"}),
    );
    assert_eq!(lab["endorsement_policy"], "OR('LabMSP.peer')");
    let seal_key = "\u{0}lab_seal\u{0}LabMSP\u{0}";
    assert_eq!(
        l.state.key_policy(seal_key).unwrap().as_deref(),
        Some(&b"OR('LabMSP.peer')"[..])
    );
    let sim = l.submit_sim(
        &c.lab,
        "record_inspection",
        json!({"batch": jb, "result": "pass", "standard": "GB 7101-2022", "report_sha256": SHA,
               "measurements": [{"name": "total_sugar", "value": 9.8, "unit": "g/100ml", "min": 5.0, "max": 12.0}]}),
    );
    assert!(
        sim.writes.iter().any(|w| w.key == seal_key),
        "seal not written"
    );
    assert_eq!(
        sim.key_policy_writes[0].policy.as_deref(),
        Some(&b"OR('LabMSP.peer')"[..])
    );
    assert_eq!(
        l.query(&c.consumer, "get_batch", &jb)["conformance"],
        "conformant"
    );

    // A second juice batch fails its inspection and cannot be used.
    l.submit(
        &c.factory,
        "register_batch",
        batch_args(&juice, "LJ2025B", 24, "H87"),
    );
    let jb2 = format!("{juice}/LJ2025B");
    l.submit(
        &c.lab,
        "record_inspection",
        json!({"batch": jb2, "result": "fail", "standard": "GB 4789.2", "report_sha256": SHA,
               "measurements": [{"name": "aerobic_count", "value": 4200.0, "unit": "CFU/ml", "max": 100.0}]}),
    );
    assert_eq!(
        l.query(&c.consumer, "get_batch", &jb2)["conformance"],
        "non_conformant"
    );
    l.refuse(
        &c.factory,
        "transform",
        json!({"transformation_id": "T-2025-003", "inputs": [{"batch": jb2, "quantity": 1}],
               "output": batch_args(&juice, "LJ2025C", 1, "H87")}),
        "failed an inspection (non_conformant)",
    );

    // Unit codes: issued offline, key registered on-chain.
    let (key, _pkcs8) = BatchKey::generate().unwrap();
    l.submit(
        &c.factory,
        "set_code_key",
        json!({"batch": jb, "public_key": key.public_key_b64url()}),
    );
    let codes = issue_codes(&key, BASE, &juice, "LJ2025A", 1..=24).unwrap();
    assert!(codes.iter().all(|c| c.len() < 150), "{}", codes[0]);
    let v = l.query(&c.consumer, "verify_code", &codes[4]);
    assert_eq!(v["unit"], format!("{jb}/5"));
    assert_eq!(v["scans"], 0);
    assert_eq!(v["permit"]["status"], "active");
    // The approved certificate's document hash, for the verify page.
    assert_eq!(v["permit"]["certificate"]["sha256"], SHA);
    assert_eq!(v["permit"]["certificate"]["issuer"], "CQC");
    assert!(v["recall"].is_null());

    // Aggregation: 12 bottles per case, two cases on a pallet.
    let (case1, case2, pallet) = (
        gs1("00690123400000001"),
        gs1("00690123400000002"),
        gs1("00690123400000003"),
    );
    let units = |r: std::ops::RangeInclusive<u32>| -> Vec<String> {
        r.map(|s| format!("{jb}/{s}")).collect()
    };
    l.submit(
        &c.factory,
        "pack",
        json!({"parent": case1, "children": units(1..=12)}),
    );
    l.submit(
        &c.factory,
        "pack",
        json!({"parent": case2, "children": units(13..=24)}),
    );
    l.submit(
        &c.factory,
        "pack",
        json!({"parent": pallet, "children": [case1, case2]}),
    );
    l.refuse(
        &c.factory,
        "pack",
        json!({"parent": case2, "children": [format!("{jb}/3")]}),
        &format!("unit {jb}/3 is already packed in {case1}"),
    );
    let contents = l.query(&c.retailer, "container_contents", &pallet);
    assert_eq!(contents["units"].as_array().unwrap().len(), 24);
    assert_eq!(contents["batches"], json!([jb]));
    assert_eq!(
        contents["children"][0]["contents"]["units"][0],
        format!("{jb}/1")
    );
    // Unpack one bottle and put it back.
    l.submit(
        &c.factory,
        "unpack",
        json!({"parent": case1, "children": [format!("{jb}/1")]}),
    );
    assert_eq!(
        l.query(&c.retailer, "container_contents", &pallet)["units"]
            .as_array()
            .unwrap()
            .len(),
        23
    );
    l.submit(
        &c.factory,
        "pack",
        json!({"parent": case1, "children": [format!("{jb}/1")]}),
    );

    // Shipping to the retailer hands custody on; the retailer sells.
    l.submit(
        &c.factory,
        "add_event",
        json!({"target": jb, "biz_step": "shipping", "destination": "RetailMSP", "data": {"pallet": pallet}}),
    );
    l.submit(
        &c.retailer,
        "add_event",
        json!({"target": jb, "biz_step": "receiving", "biz_location": "store 17"}),
    );
    l.submit(
        &c.retailer,
        "add_event",
        json!({"target": format!("{jb}/5"), "biz_step": "retail_selling", "disposition": "retail_sold"}),
    );

    // A consumer scans bottle 5 and claims it; a second scan elsewhere is flagged.
    let s = l.submit(
        &c.consumer,
        "scan",
        json!({"code": codes[4], "location": "Hangzhou"}),
    );
    assert_eq!(s["scans"], 1);
    assert!(s["counterfeit_warning"].is_null());
    let s = l.submit(
        &c.consumer,
        "claim",
        json!({"code": codes[4], "location": "Hangzhou"}),
    );
    assert_eq!(s["claimed"]["location"], "Hangzhou");
    assert!(s["counterfeit_warning"].is_null(), "{s}");
    l.now += 3600;
    let sim = l.submit_sim(
        &c.consumer,
        "scan",
        json!({"code": codes[4], "location": "Shenzhen"}),
    );
    let s = payload(&sim);
    assert_eq!(s["scans"], 3);
    let warning = s["counterfeit_warning"].as_str().unwrap();
    assert!(
        warning.contains("already claimed by a consumer"),
        "{warning}"
    );
    assert!(
        warning.contains("first scanned in Hangzhou, now scanned in Shenzhen"),
        "{warning}"
    );
    assert_eq!(sim.event.as_ref().unwrap().name, "CounterfeitWarning");
    // Scanned too often: another bottle, always in the same place.
    for n in 1..=6 {
        let s = l.submit(
            &c.consumer,
            "scan",
            json!({"code": codes[7], "location": "Hangzhou"}),
        );
        assert_eq!(s["counterfeit_warning"].is_null(), n <= 5, "scan {n}: {s}");
    }

    // Recall one harvest lot: the juice batch made from it is recalled too.
    l.refuse(
        &c.retailer,
        "recall",
        json!({"batch": jb, "reason": "taste"}),
        &format!("only batch {jb}'s owner FactoryMSP or a regulator may recall it"),
    );
    let recalled = l.submit(
        &c.regulator,
        "recall",
        json!({"batch": h1, "reason": "pesticide residue above GB 2763 limit"}),
    );
    assert_eq!(recalled, json!([h1, jb]));
    let s = l.submit(
        &c.consumer,
        "scan",
        json!({"code": codes[9], "location": "Hangzhou"}),
    );
    assert_eq!(s["recall"]["origin"], h1);
    assert_eq!(s["recall"]["by"], "RegulatorMSP");
    let contents = l.query(&c.retailer, "container_contents", &pallet);
    assert_eq!(contents["recalls"][0]["origin"], h1);
    l.refuse(
        &c.retailer,
        "add_event",
        json!({"target": jb, "biz_step": "storing"}),
        "is recalled",
    );
    l.submit(
        &c.retailer,
        "add_event",
        json!({"target": jb, "biz_step": "destroying", "disposition": "destroyed"}),
    );

    // Trace: the bottle's whole story, upstream and downstream.
    let t = l.query(&c.consumer, "trace", &codes[4]);
    assert_eq!(t["recall"]["origin"], h1);
    assert_eq!(t["product"]["name"], "Loquat juice 330 ml");
    assert_eq!(t["permit"]["status"], "active");
    assert_eq!(t["containers"], json!([case1, pallet]));
    assert_eq!(t["inspections"][0]["result"], "pass");
    assert_eq!(t["alerts"][0]["reading"]["value"], 121.5);
    assert_eq!(t["upstream"], json!([h1, h2]));
    let steps: Vec<&str> = t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["biz_step"].as_str().unwrap())
        .collect();
    for step in [
        "commissioning",
        "sterilising",
        "filling",
        "sensor_reporting",
        "inspecting",
        "shipping",
        "receiving",
        "retail_selling",
        "holding",
        "destroying",
    ] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    assert!(t["counterfeit_warning"].as_str().is_some());
    let up = l.query(&c.consumer, "trace_upstream", &jb);
    assert_eq!(up["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(
        up["edges"][0],
        json!({"input": h1, "output": jb, "quantity": 600})
    );
    let down = l.query(&c.consumer, "trace_downstream", &h1);
    assert_eq!(down["nodes"][1]["id"], jb);
    assert_eq!(down["nodes"][1]["recalled"], true);
    let t = l.query(&c.consumer, "trace", &h1);
    assert_eq!(t["downstream"], json!([jb]));

    // Read-all for regulators and auditors only.
    let page = l.query(
        &c.auditor,
        "audit",
        &json!({"kind": "batch", "limit": 2}).to_string(),
    );
    assert_eq!(page["rows"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_owned();
    let page2 = l.query(
        &c.auditor,
        "audit",
        &json!({"kind": "batch", "after": next}).to_string(),
    );
    assert_eq!(page2["rows"].as_array().unwrap().len(), 2);
    assert!(page2["next"].is_null());
    l.refuse(
        &c.factory,
        "audit",
        json!({"kind": "permit"}),
        "only a regulator or auditor",
    );

    // Every call stays far inside the default 10 000 000 fuel.
    for (f, fuel) in &l.fuel {
        eprintln!("fuel {f:<20} {fuel:>9}");
    }
    for (f, fuel) in &l.fuel {
        assert!(*fuel < 2_000_000, "{f} used {fuel}");
    }
}

/// A farm with a permit, a product and one received lot at the factory.
fn setup() -> (Ledger, Cast, String) {
    let c = cast();
    let mut l = Ledger::new();
    permit(&mut l, &c, &c.farm, YEAR);
    let gtin = gs1("0690123456001");
    l.submit(
        &c.farm,
        "register_product",
        json!({"gtin": gtin, "name": "Loquat", "category": "fruit"}),
    );
    l.submit(
        &c.farm,
        "register_batch",
        batch_args(&gtin, "H1", 10, "KGM"),
    );
    (l, c, gtin)
}

#[test]
fn permits_refuse_wrong_roles_expired_and_suspended() {
    let (mut l, c, gtin) = setup();
    l.refuse(
        &c.retailer,
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "x", "valid_until": T0 + YEAR}),
        "only an enterprise identity",
    );
    l.refuse(
        &c.factory,
        "apply_permit",
        json!({"certificate_sha256": "abc", "issuer": "CQC", "scope": "x", "valid_until": T0 + YEAR}),
        "certificate_sha256 must be a SHA-256 digest",
    );
    l.refuse(
        &c.factory,
        "approve_permit",
        json!({"msp": "FarmMSP"}),
        "only a regulator identity",
    );
    l.refuse(
        &c.regulator,
        "suspend_permit",
        json!({"msp": "FarmMSP"}),
        "reason is required",
    );
    // Rejected, then applied again and approved.
    l.submit(
        &c.factory,
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "x", "valid_until": T0 + YEAR}),
    );
    let p = l.submit(
        &c.regulator,
        "reject_permit",
        json!({"msp": "FactoryMSP", "reason": "certificate not found at CQC"}),
    );
    assert_eq!(p["status"], "rejected");
    l.refuse(
        &c.factory,
        "register_product",
        json!({"gtin": gs1("0690123456002"), "name": "J", "category": "c"}),
        "FactoryMSP's on-chain permit is rejected (reason: certificate not found at CQC)",
    );
    // Suspension stops registration; reinstatement restores it; history kept.
    let p = l.submit(
        &c.regulator,
        "suspend_permit",
        json!({"msp": "FarmMSP", "reason": "certificate revoked"}),
    );
    assert_eq!(p["status"], "suspended");
    l.refuse(
        &c.farm,
        "register_batch",
        batch_args(&gtin, "H9", 1, "KGM"),
        "permit is suspended (reason: certificate revoked)",
    );
    let p = l.submit(
        &c.regulator,
        "reinstate_permit",
        json!({"msp": "FarmMSP", "reason": "new certificate"}),
    );
    let actions: Vec<&str> = p["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["applied", "approved", "suspended", "reinstated"]);
    l.submit(&c.farm, "register_batch", batch_args(&gtin, "H9", 1, "KGM"));
    // Expiry: the certificate runs out.
    l.now = T0 + YEAR + 1;
    l.refuse(
        &c.farm,
        "register_batch",
        batch_args(&gtin, "H10", 1, "KGM"),
        "FarmMSP's on-chain permit expired at",
    );
    // Another org's product.
    l.now = T0;
    permit(&mut l, &c, &c.factory, YEAR);
    l.refuse(
        &c.factory,
        "register_batch",
        batch_args(&gtin, "F1", 1, "KGM"),
        "belongs to FarmMSP, not FactoryMSP",
    );
    l.refuse(
        &c.farm,
        "register_batch",
        batch_args(&gtin, "H1", 1, "KGM"),
        "already registered",
    );
    l.refuse(
        &c.farm,
        "register_batch",
        batch_args(&gs1("0690123456009"), "H1", 1, "KGM"),
        "unknown product",
    );
    l.refuse(
        &c.farm,
        "register_batch",
        batch_args("06901234560019", "H1", 1, "KGM"),
        "wrong check digit",
    );
    l.refuse_raw(
        &c.farm,
        "register_batch",
        "{\"gtin\": 1}",
        "argument 1: JSON",
    );
}

#[test]
fn unit_codes_refuse_forged_other_batch_and_beyond_quantity() {
    let (mut l, c, gtin) = setup();
    l.submit(
        &c.farm,
        "register_batch",
        batch_args(&gtin, "H2", 10, "KGM"),
    );
    let (k1, _) = BatchKey::generate().unwrap();
    let (k2, _) = BatchKey::generate().unwrap();
    let unregistered = issue_codes(&k1, BASE, &gtin, "H1", 1..=1).unwrap();
    l.refuse_raw(
        &c.consumer,
        "verify_code",
        &unregistered[0],
        "has no code key registered",
    );
    l.submit(
        &c.farm,
        "set_code_key",
        json!({"batch": format!("{gtin}/H1"), "public_key": k1.public_key_b64url()}),
    );
    l.submit(
        &c.farm,
        "set_code_key",
        json!({"batch": format!("{gtin}/H2"), "public_key": k2.public_key_b64url()}),
    );
    l.refuse(
        &c.farm,
        "set_code_key",
        json!({"batch": format!("{gtin}/H1"), "public_key": k2.public_key_b64url()}),
        "already has a code key",
    );
    let good = issue_codes(&k1, BASE, &gtin, "H1", 1..=11).unwrap();
    l.query(&c.consumer, "verify_code", &good[9]);
    // Altered serial, forged signature.
    let altered = good[2].replace("/21/3?", "/21/4?");
    l.refuse_raw(
        &c.consumer,
        "verify_code",
        &altered,
        "counterfeit code: the signature is not valid",
    );
    let mut forged = good[0].clone();
    forged.replace_range(forged.len() - 5.., "AAAAA");
    l.refuse_raw(&c.consumer, "verify_code", &forged, "");
    // A batch-1 code with its lot changed to batch 2; a code signed by batch 2's key for batch 1.
    l.refuse_raw(
        &c.consumer,
        "verify_code",
        &good[0].replace("/10/H1/", "/10/H2/"),
        &format!("not valid for batch {gtin}/H2"),
    );
    let cross = issue_codes(&k2, BASE, &gtin, "H1", 1..=1).unwrap();
    l.refuse_raw(
        &c.consumer,
        "verify_code",
        &cross[0],
        &format!("not valid for batch {gtin}/H1"),
    );
    // Serial 11 of a 10-unit batch, correctly signed.
    l.refuse_raw(
        &c.consumer,
        "verify_code",
        &good[10],
        &format!("serial 11 is beyond batch {gtin}/H1's quantity 10"),
    );
    l.refuse(
        &c.consumer,
        "scan",
        json!({"code": good[10], "location": "x"}),
        "serial 11 is beyond",
    );
    l.refuse_raw(
        &c.consumer,
        "verify_code",
        "https://q.example.com/01/x",
        "malformed unit code",
    );
    let unknown = issue_codes(&k1, BASE, &gtin, "H7", 1..=1).unwrap();
    l.refuse_raw(
        &c.consumer,
        "verify_code",
        &unknown[0],
        &format!("unknown batch {gtin}/H7"),
    );
    // Scans need a consumer identity.
    l.refuse(
        &c.retailer,
        "scan",
        json!({"code": good[0], "location": "x"}),
        "only a consumer identity",
    );
}

#[test]
fn custody_inspection_and_device_refusals() {
    let (mut l, c, gtin) = setup();
    let h1 = format!("{gtin}/H1");
    l.refuse(
        &c.factory,
        "add_event",
        json!({"target": h1, "biz_step": "storing"}),
        "FactoryMSP neither holds nor carries it",
    );
    l.refuse(
        &c.farm,
        "add_event",
        json!({"target": h1, "biz_step": "dancing"}),
        "unknown business step",
    );
    l.refuse(
        &c.farm,
        "add_event",
        json!({"target": h1, "biz_step": "storing", "disposition": "recalled"}),
        "set by record_inspection or recall",
    );
    l.refuse(
        &c.farm,
        "add_event",
        json!({"target": format!("{h1}/11"), "biz_step": "storing"}),
        "serial 11 is beyond",
    );
    l.refuse(
        &c.farm,
        "add_event",
        json!({"target": h1, "biz_step": "shipping"}),
        "needs a destination",
    );
    l.refuse(
        &c.farm,
        "add_event",
        json!({"target": h1, "biz_step": "storing", "event_time": T0 + 3600}),
        "in the future",
    );
    l.refuse(
        &c.farm,
        "add_event",
        json!({"target": h1, "biz_step": "storing", "attachments": [{"sha256": "zz"}]}),
        "must be a SHA-256 digest",
    );

    // Inspections: lab identity of an accredited lab only.
    let insp = json!({"batch": h1, "result": "pass", "standard": "GB 2763", "report_sha256": SHA,
                      "measurements": [{"name": "chlorpyrifos", "value": 0.01, "unit": "mg/kg", "max": 1.0}]});
    l.refuse(
        &c.farm,
        "record_inspection",
        insp.clone(),
        "only a lab identity",
    );
    l.refuse(
        &c.lab,
        "record_inspection",
        insp.clone(),
        "LabMSP is not an accredited lab",
    );
    l.refuse(
        &c.farm,
        "accredit_lab",
        json!({"msp": "LabMSP", "name": "L", "scope": "s"}),
        "only a regulator identity",
    );
    l.submit(
        &c.regulator,
        "accredit_lab",
        json!({"msp": "LabMSP", "name": "L", "scope": "s"}),
    );
    let mut bad = insp.clone();
    bad["measurements"][0]["value"] = json!(2.5);
    l.refuse(
        &c.lab,
        "record_inspection",
        bad,
        "is outside its limits, but the result is pass",
    );
    l.submit(&c.lab, "record_inspection", insp.clone());
    l.submit(
        &c.regulator,
        "accredit_lab",
        json!({"msp": "LabMSP", "name": "L", "scope": "s", "active": false}),
    );
    l.refuse(
        &c.lab,
        "record_inspection",
        insp,
        "accreditation is withdrawn",
    );

    // Devices: bound by the owner handling the batch; others refused.
    let readings = json!({"device": "t-1", "batch": h1, "readings": [{"type": "gs1:Temperature", "value": 4.0, "unit": "CEL", "time": T0}]});
    l.refuse(
        &c.device,
        "submit_readings",
        readings.clone(),
        "device t-1 is not bound to batch",
    );
    l.refuse(
        &c.factory,
        "bind_device",
        json!({"device": "t-1", "device_cert_pem": c.device.cert_pem, "batch": h1}),
        "FactoryMSP neither holds nor carries it",
    );
    let farm_device = who_cert("FarmMSP", &["device"], "COLD-ROOM-1");
    l.submit(
        &c.farm,
        "bind_device",
        json!({"device": "t-1", "device_cert_pem": farm_device.cert_pem, "batch": h1}),
    );
    l.submit(&c.farm, "set_limits", json!({"batch": h1, "limits": [{"type": "gs1:Temperature", "unit": "CEL", "min": 0.0, "max": 8.0}]}));
    let ok = l.submit(&farm_device, "submit_readings", readings.clone());
    assert_eq!(ok, json!([]));
    // Another device of the same org with the same name but another certificate.
    let impostor = who_cert("FarmMSP", &["device"], "SOMETHING-ELSE");
    l.refuse(
        &impostor,
        "submit_readings",
        readings.clone(),
        "is not bound to batch",
    );
    l.refuse(
        &c.farm,
        "submit_readings",
        readings.clone(),
        "only a device identity",
    );
    let mut fahrenheit = readings.clone();
    fahrenheit["readings"][0]["unit"] = json!("FAH");
    l.refuse(&farm_device, "submit_readings", fahrenheit, "but batch");
    l.submit_raw(&c.farm, "unbind_device", "t-1");
    l.refuse(
        &farm_device,
        "submit_readings",
        readings,
        "is not bound to batch",
    );
}

#[test]
fn events_keep_the_zone_they_were_recorded_in() {
    let (mut l, c, gtin) = setup();
    let h1 = format!("{gtin}/H1");
    let juice = gs1("0690123456002");
    l.submit(
        &c.farm,
        "register_product",
        json!({"gtin": juice, "name": "Juice", "category": "beverage"}),
    );
    let mut zoned = batch_args(&gtin, "H2", 5, "KGM");
    zoned["event_time_zone_offset"] = json!("+08:00");
    l.submit(&c.farm, "register_batch", zoned);
    l.submit(
        &c.farm,
        "transform",
        json!({"transformation_id": "T-Z", "inputs": [{"batch": h1, "quantity": 4}],
               "output": batch_args(&juice, "J1", 24, "H87"),
               "event_time_zone_offset": "+05:30"}),
    );
    l.submit(
        &c.regulator,
        "recall",
        json!({"batch": format!("{juice}/J1"), "reason": "test", "event_time_zone_offset": "-03:00"}),
    );
    let zones = |l: &mut Ledger, id: &str| -> Vec<String> {
        l.query(&c.consumer, "trace", id)["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_time_zone_offset"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(zones(&mut l, &format!("{gtin}/H2")), ["+08:00"]);
    // The input's transformation event and the output's commissioning take
    // the transformation's zone; the recall hold its own; none given: UTC.
    assert_eq!(zones(&mut l, &h1), ["+00:00", "+05:30"]);
    assert_eq!(zones(&mut l, &format!("{juice}/J1")), ["+05:30", "-03:00"]);
    for bad in ["+24:00", "+08:60", "0800", "+8:00"] {
        let mut b = batch_args(&gtin, "H3", 5, "KGM");
        b["event_time_zone_offset"] = json!(bad);
        l.refuse(&c.farm, "register_batch", b, "must be ±hh:mm");
    }
}

/// IoT state channels on the contract, with a clock the test controls:
/// open (wrong ledger id and a second open refused), a stale unilateral
/// close beaten by a challenge, a challenge after the deadline refused,
/// settle with summary alerts, a proven reading's alert, equivocation
/// evidence, and a cooperative close that settles at once.
#[test]
fn iot_state_channels_open_dispute_settle_and_alert() {
    use qcss_iot::keys::Key;
    use qcss_iot::params::gateway_identity;
    use qcss_iot::reading::MMR;
    use qcss_iot::{Channel, ChannelParams, Measure, Party, Reading, ReadingProof, Schema};

    let (mut l, c, gtin) = setup();
    let h1 = format!("{gtin}/H1");
    let device_key = Key::from_secret([7; 32]);
    let gateway_key = Key::from_secret([8; 32]);
    let farm_device = who_cert("FarmMSP", &["device"], "COLD-ROOM-1");
    l.refuse(
        &c.farm,
        "bind_device",
        json!({"device": "t-1", "device_cert_pem": farm_device.cert_pem, "batch": h1, "channel_key": "zz"}),
        "channel_key",
    );
    l.submit(
        &c.farm,
        "bind_device",
        json!({"device": "t-1", "device_cert_pem": farm_device.cert_pem, "batch": h1,
               "channel_key": device_key.public().to_string()}),
    );
    let schema = json!([{"type": "gs1:Temperature", "unit": "CEL", "min": 0.0, "max": 8.0}]);
    let params = |nonce: u64, ledger: &str| ChannelParams {
        ledger: ledger.into(),
        device: "FarmMSP/t-1".into(),
        device_key: device_key.public(),
        gateway: gateway_identity("FarmMSP", &c.farm.cert_pem),
        gateway_key: gateway_key.public(),
        batch: h1.clone(),
        schema: Schema(vec![Measure {
            kind: "gs1:Temperature".into(),
            unit: "CEL".into(),
            min: Some(0.0),
            max: Some(8.0),
        }]),
        challenge_secs: 600,
        nonce,
    };
    let open = |nonce: u64, claimed: String| {
        json!({"device": "FarmMSP/t-1", "batch": h1, "gateway_key": gateway_key.public().to_string(),
               "schema": schema, "challenge_secs": 600, "nonce": nonce, "channel": claimed})
    };
    // The batch's limits bind the schema: no looser, same unit.
    l.submit(&c.farm, "set_limits", json!({"batch": h1, "limits": [{"type": "gs1:Temperature", "unit": "CEL", "min": 0.0, "max": 8.0}]}));
    let mut loose = open(1, params(1, "qcss").id().to_string());
    loose["channel"] = Value::Null;
    loose["schema"] = json!([{"type": "gs1:Temperature", "unit": "CEL", "min": 0.0, "max": 12.0}]);
    l.refuse(&c.farm, "iot_open", loose.clone(), "looser than batch");
    loose["schema"] = json!([{"type": "gs1:Temperature", "unit": "CEL", "max": 8.0}]);
    l.refuse(&c.farm, "iot_open", loose.clone(), "looser than batch");
    loose["schema"] = json!([{"type": "gs1:Temperature", "unit": "FAH", "min": 32.0, "max": 46.0}]);
    l.refuse(&c.farm, "iot_open", loose, "is in FAH");
    // The id the client computes for another ledger is refused.
    l.refuse(
        &c.farm,
        "iot_open",
        open(1, params(1, "other").id().to_string()),
        "does not match the parameters on ledger qcss",
    );
    l.refuse(
        &c.shipco,
        "iot_open",
        open(1, params(1, "qcss").id().to_string()),
        "neither holds nor carries it",
    );
    let rec = l.submit(
        &c.farm,
        "iot_open",
        open(1, params(1, "qcss").id().to_string()),
    );
    let id = params(1, "qcss").id();
    assert_eq!(rec["id"], id.to_string());
    assert_eq!(rec["status"], "open");
    l.refuse(&c.farm, "iot_open", open(1, id.to_string()), "already open");

    // Off the ledger: three updates, one reading (9.5 °C) out of limits.
    let mut ch = Channel::open(params(1, "qcss")).unwrap();
    let mut store = qcss_iot::proof::MemStore::default();
    let mut all = Vec::new();
    let mut signed = Vec::new();
    for (u, temps) in [[4.0, 5.0], [9.5, 6.0], [3.0, 2.0]].iter().enumerate() {
        let rs: Vec<Reading> = temps
            .iter()
            .enumerate()
            .map(|(i, t)| Reading {
                seq: (2 * u + i) as u64,
                time: T0 - 100 + (2 * u + i) as i64,
                values: vec![*t],
            })
            .collect();
        for r in &rs {
            store.append(&MMR, r.leaf(&id));
        }
        all.extend(rs.iter().cloned());
        let s = ch.apply(&rs, false).unwrap().clone();
        signed.push(json!({
            "state": hex(&s.encode()),
            "device_sig": device_key.sign(&s, Party::Device).to_string(),
            "gateway_sig": gateway_key.sign(&s, Party::Gateway).to_string(),
        }));
    }
    let submit = |i: usize| json!({"channel": id.to_string(), "state": signed[i]});
    // A state signed only by the device (the gateway's signature is the device's) is refused.
    let mut forged = submit(0);
    forged["state"]["gateway_sig"] = forged["state"]["device_sig"].clone();
    l.refuse(&c.retailer, "iot_close", forged, "gateway signature");
    // A stale unilateral close (seq 1) by anyone, beaten by seq 3.
    let closing = l.submit(&c.retailer, "iot_close", submit(0));
    assert_eq!(closing["status"], "closing");
    assert_eq!(closing["deadline"], T0 + 600);
    l.refuse_raw(&c.farm, "iot_settle", &id.to_string(), "runs until");
    l.submit(&c.shipco, "iot_challenge", submit(2));
    l.refuse(
        &c.farm,
        "iot_challenge",
        submit(1),
        "does not replace the registered seq 3",
    );
    l.now += 601;
    l.refuse(&c.farm, "iot_challenge", submit(2), "challenge window");
    let settled = l.submit_raw(&c.retailer, "iot_settle", &id.to_string());
    let settled = payload(&settled);
    assert_eq!(settled["status"], "settled");
    assert_eq!(settled["state"]["state"], signed[2]["state"]);
    assert_eq!(settled["alerts"], json!([0]));
    let trace = l.query(&c.retailer, "trace", &h1);
    assert_eq!(trace["alerts"][0]["reading"]["value"], 9.5);

    // One reading, proven against the settled root.
    let state = ch.state().clone();
    let proof = |seq: usize| ReadingProof::build(&store, all[seq].clone(), state.count).unwrap();
    let mut tampered = proof(2);
    tampered.reading.values[0] = 9.6;
    l.refuse(
        &c.lab,
        "iot_alert",
        json!({"channel": id.to_string(), "proof": tampered}),
        "inclusion proof",
    );
    l.refuse(
        &c.lab,
        "iot_alert",
        json!({"channel": id.to_string(), "proof": proof(0)}),
        "within the schema's limits",
    );
    let rec = l.submit(
        &c.lab,
        "iot_alert",
        json!({"channel": id.to_string(), "proof": proof(2)}),
    );
    assert_eq!(rec["alerts"], json!([0, 1]));
    l.refuse(
        &c.lab,
        "iot_alert",
        json!({"channel": id.to_string(), "proof": proof(2)}),
        "already raised",
    );
    let trace = l.query(&c.retailer, "trace", &h1);
    assert_eq!(trace["alerts"].as_array().unwrap().len(), 2);

    // Equivocation: the device signs two different states with seq 3.
    let mut fork = Channel::open(params(1, "qcss")).unwrap();
    fork.apply(&all[..2], false).unwrap();
    fork.apply(&all[2..4], false).unwrap();
    let other = fork
        .apply(
            &[Reading {
                seq: 4,
                time: T0,
                values: vec![1.0],
            }],
            false,
        )
        .unwrap()
        .clone();
    assert_eq!(other.seq, state.seq);
    let one = |s: &qcss_iot::State, k: &Key, p: Party| json!({"state": hex(&s.encode()), "sig": k.sign(s, p).to_string()});
    let evidence = json!({"channel": id.to_string(), "party": "device",
        "a": one(&state, &device_key, Party::Device), "b": one(&other, &device_key, Party::Device)});
    let mut not_signed = evidence.clone();
    not_signed["b"] = one(&other, &gateway_key, Party::Gateway);
    l.refuse(&c.regulator, "iot_evidence", not_signed, "device signature");
    let same = json!({"channel": id.to_string(), "party": "device",
        "a": one(&state, &device_key, Party::Device), "b": one(&state, &device_key, Party::Device)});
    l.refuse(&c.regulator, "iot_evidence", same, "same state");
    let incident = l.submit(&c.regulator, "iot_evidence", evidence.clone());
    assert_eq!(incident["against"], "FarmMSP/t-1");
    l.refuse(&c.regulator, "iot_evidence", evidence, "already recorded");

    // Cooperative close: a final state settles at once.
    let rec = l.submit(
        &c.farm,
        "iot_open",
        open(2, String::new())
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.remove("channel");
                Value::Object(o)
            })
            .unwrap(),
    );
    let id2 = params(2, "qcss").id();
    assert_eq!(rec["id"], id2.to_string());
    let mut ch2 = Channel::open(params(2, "qcss")).unwrap();
    ch2.apply(
        &[Reading {
            seq: 0,
            time: T0,
            values: vec![5.0],
        }],
        false,
    )
    .unwrap();
    let fin = ch2.apply(&[], true).unwrap().clone();
    let coop = json!({"channel": id2.to_string(), "state": {
        "state": hex(&fin.encode()),
        "device_sig": device_key.sign(&fin, Party::Device).to_string(),
        "gateway_sig": gateway_key.sign(&fin, Party::Gateway).to_string()}});
    let rec = l.submit(&c.farm, "iot_close", coop.clone());
    assert_eq!(rec["status"], "settled");
    assert_eq!(rec["alerts"], json!([]));
    l.refuse(&c.farm, "iot_close", coop, "is settled, not open");
    // A state of channel 1 is no state of channel 2.
    l.refuse(
        &c.farm,
        "iot_challenge",
        json!({"channel": id2.to_string(), "state": signed[2]}),
        "settled",
    );
    for (f, fuel) in &l.fuel {
        eprintln!("fuel {f:<20} {fuel:>9}");
    }
    assert!(l.fuel["iot_alert"] < 5_000_000, "{:?}", l.fuel);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
