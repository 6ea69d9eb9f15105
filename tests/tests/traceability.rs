//! The traceability contract on a real network: three orgs (Org1 the
//! producer, Org2 a lab and logistics company, Org3 the regulator, which also
//! runs the consumer scan platform), each with its own CA and peer, three
//! orderers; the loquat-juice story of DOMAIN.md through the Gateway and the
//! CLI (`qcss tx invoke`, `qcss codes`, `qcss scan`, `qcss trace`,
//! `qcss recall`), asserting what a user sees.

use qcss_proto::protos::TxValidationCode;
use qcss_tests::peers::{Network, NetworkOptions, traceability_wasm};
use qcss_tests::trace::{CC, SHA, gs1, now, query, submit};
use serde_json::{Value, json};

const BASE: &str = "https://q.example.com";

fn batch_args(gtin: &str, lot: &str, quantity: u64, uom: &str) -> Value {
    json!({"gtin": gtin, "lot": lot, "quantity": quantity, "uom": uom,
           "production_date": "2025-06-01", "site": "Suzhou orchard 3"})
}

/// `qcss tx invoke --chaincode traceability --fn F --args '[ARG]'`.
fn invoke(net: &Network, n: usize, who: &str, f: &str, arg: Value) -> String {
    let args = json!([arg]).to_string();
    let out = net.cli(
        &[
            "tx",
            "invoke",
            "--chaincode",
            CC,
            "--fn",
            f,
            "--args",
            &args,
        ],
        &net.conn(n, who),
    );
    assert!(out.contains("code: VALID"), "{f}: {out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loquat_juice_through_the_gateway_and_the_cli() {
    let started = std::time::Instant::now();
    let d = tempfile::tempdir().expect("tempdir");
    let net = Network::start(
        d.path(),
        NetworkOptions {
            example_policy: None,
            ..NetworkOptions::default()
        },
    );
    let (org1, org2, org3) = (&net.orgs[0], &net.orgs[1], &net.orgs[2]);
    org1.enroll("producer", "client", Some("enterprise"));
    org1.enroll("uht1", "client", Some("device"));
    org2.enroll("labtech", "client", Some("lab"));
    org2.enroll("driver", "client", Some("logistics"));
    org3.enroll("inspector", "client", Some("regulator"));
    org3.enroll("consumer", "client", Some("consumer"));
    // The channel default endorsement policy (MAJORITY of the orgs), as the
    // contract's README recommends; inspections add the lab's seal policy.
    net.deploy("traceability", "1.0", 1, &traceability_wasm(), "", &[]);
    eprintln!(
        "network up and contract deployed in {:?}",
        started.elapsed()
    );

    // UCES and the QCSS index: the genesis config, proposed by Org1's admin
    // and applied when Org2's approves (a majority of the channel's three
    // orgs; governed from here on by a majority of the orgs it lists).
    let genesis = json!({
        "orgs": ["Org1MSP", "Org2MSP", "Org3MSP"],
        "validators": [{"msp": "Org3MSP", "cert_sha256": "ab".repeat(32)}],
        "vote_window_secs": 86_400,
        "daily_limit": 3,
        "penalties": {"credit_initial": 100, "credit_max": 200, "credit_gain": 5,
                      "credit_penalty": 30, "bar_after": 2, "bar_secs": 86_400},
        "rewards": {"epoch_secs": 86_400, "scan_points": 1, "eval_points": 5,
                    "max_points": 100, "rate": 100_000_000, "max_batch": 50}
    });
    invoke(&net, 1, "admin", "gov_init", genesis);
    invoke(
        &net,
        2,
        "admin",
        "gov_approve",
        json!({"id": "genesis-Org1MSP"}),
    );

    let mut producer = net.gateway_as(1, 1, "producer").await;
    let mut regulator = net.gateway_as(3, 3, "inspector").await;
    let mut driver = net.gateway_as(2, 2, "driver").await;
    let loquat = gs1("0690123456001");
    let juice = gs1("0690123456002");
    let (h1, h2) = (format!("{loquat}/H1"), format!("{loquat}/H2"));
    let jb = format!("{juice}/LJ2025A");

    // Permit (上链许可): applied and approved with `qcss tx invoke`.
    invoke(
        &net,
        1,
        "producer",
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "fruit and juice",
               "valid_until": now() + 365 * 24 * 3600}),
    );
    let out = invoke(
        &net,
        3,
        "inspector",
        "approve_permit",
        json!({"msp": "Org1MSP", "reason": "ISO 9001 certificate checked"}),
    );
    assert!(out.contains(r#""status":"active""#), "{out}");
    let out = net.cli(
        &[
            "tx",
            "query",
            "--chaincode",
            CC,
            "--fn",
            "get_permit",
            "--args",
            r#"["Org1MSP"]"#,
        ],
        &net.conn(2, "driver"),
    );
    assert!(out.contains(r#""status":"active""#), "{out}");

    // Products, harvest lots, a transformation into the juice batch.
    submit(
        &mut producer,
        "register_product",
        json!({"gtin": loquat, "name": "Loquat, fresh", "category": "fruit"}),
    )
    .await;
    submit(
        &mut producer,
        "register_product",
        json!({"gtin": juice, "name": "Loquat juice 330 ml", "category": "beverage"}),
    )
    .await;
    for (lot, kg) in [("H1", 1000), ("H2", 800)] {
        submit(
            &mut producer,
            "register_batch",
            batch_args(&loquat, lot, kg, "KGM"),
        )
        .await;
    }
    submit(
        &mut producer,
        "add_event",
        json!({"target": h1, "biz_step": "harvesting", "read_point": "orchard 3",
               "attachments": [{"sha256": SHA, "name": "field.jpg", "media_type": "image/jpeg"}]}),
    )
    .await;
    let out = submit(
        &mut producer,
        "transform",
        json!({"transformation_id": "T-2025-001",
               "inputs": [{"batch": h1, "quantity": 600}, {"batch": h2, "quantity": 800}],
               "output": batch_args(&juice, "LJ2025A", 24, "H87"),
               "location": "factory line 1"}),
    )
    .await;
    assert_eq!(out["id"], jb);
    for step in ["sterilising", "filling"] {
        submit(
            &mut producer,
            "add_event",
            json!({"target": jb, "biz_step": step, "disposition": "in_progress",
                   "event_time": now() - 60, "event_time_zone_offset": "+08:00",
                   "read_point": "line 1", "data": {"temperature_c": 137}}),
        )
        .await;
    }

    // IoT: a UHT sensor of Org1 signs its readings; one is out of limits.
    submit(
        &mut producer,
        "set_limits",
        json!({"batch": jb, "limits": [{"type": "qcss:UHTTemperature", "unit": "CEL", "min": 135.0, "max": 150.0}]}),
    )
    .await;
    let device_cert = std::fs::read_to_string(org1.dir.join("uht1/cert.pem")).expect("cert");
    submit(
        &mut producer,
        "bind_device",
        json!({"device": "uht-1", "device_cert_pem": device_cert, "batch": jb}),
    )
    .await;
    let mut device = net.gateway_as(1, 1, "uht1").await;
    let alerts = submit(
        &mut device,
        "submit_readings",
        json!({"device": "uht-1", "batch": jb, "readings": [
            {"type": "qcss:UHTTemperature", "value": 137.2, "unit": "CEL", "time": now() - 30},
            {"type": "qcss:UHTTemperature", "value": 121.5, "unit": "CEL", "time": now() - 20}]}),
    )
    .await;
    assert_eq!(alerts.as_array().map(Vec::len), Some(1), "{alerts}");

    // The lab: accredited by the regulator; an inspection endorsed without
    // the lab org's peer is invalid, with it valid.
    let lab = submit(
        &mut regulator,
        "accredit_lab",
        json!({"msp": "Org2MSP", "name": "Zhejiang food lab", "scope": "GB 7101 beverages"}),
    )
    .await;
    assert_eq!(lab["endorsement_policy"], "OR('Org2MSP.peer')");
    let inspection = json!({"batch": jb, "result": "pass", "standard": "GB 7101-2022",
        "report_sha256": SHA,
        "measurements": [{"name": "total_sugar", "value": 9.8, "unit": "g/100ml", "min": 5.0, "max": 12.0}]})
    .to_string();
    let mut lab_at_org1 = net.gateway_as(1, 2, "labtech").await;
    let (env, tx_id) = lab_at_org1
        .endorse(
            CC,
            "record_inspection",
            &[inspection.as_bytes()],
            &["Org1MSP".into(), "Org3MSP".into()],
        )
        .await
        .expect("endorsed by Org1 and Org3");
    lab_at_org1.send(env, &tx_id).await.expect("ordered");
    assert_eq!(
        lab_at_org1.commit_status(&tx_id).await.unwrap().0,
        TxValidationCode::EndorsementPolicyFailure,
        "an inspection without the lab's peer"
    );
    assert!(
        query(&mut producer, "get_batch", &jb).await["conformance"].is_null(),
        "the invalid inspection changed nothing"
    );
    // Through its own peer (the Gateway adds a second org for MAJORITY).
    invoke(
        &net,
        2,
        "labtech",
        "record_inspection",
        serde_json::from_str(&inspection).unwrap(),
    );
    assert_eq!(
        query(&mut producer, "get_batch", &jb).await["conformance"],
        "conformant"
    );

    // Custody: Org1 ships the juice to Org2's warehouse; Org2 carries,
    // receives and stores it.
    submit(
        &mut producer,
        "add_event",
        json!({"target": jb, "biz_step": "shipping", "destination": "Org2MSP", "carrier": "Org2MSP"}),
    )
    .await;
    submit(
        &mut driver,
        "add_event",
        json!({"target": jb, "biz_step": "transporting", "data": {"truck": "Z-1234"}}),
    )
    .await;
    let e = submit(
        &mut driver,
        "add_event",
        json!({"target": jb, "biz_step": "receiving", "biz_location": "Hangzhou DC"}),
    )
    .await;
    assert_eq!(e["source"], "Org1MSP");
    submit(
        &mut driver,
        "add_event",
        json!({"target": jb, "biz_step": "storing", "biz_location": "Hangzhou DC"}),
    )
    .await;
    let b = query(&mut producer, "get_batch", &jb).await;
    assert_eq!(
        (&b["owner"], &b["custodian"]),
        (&json!("Org1MSP"), &json!("Org2MSP"))
    );

    // Unit codes: a batch key made and registered with the CLI, 24 codes
    // issued offline (nothing on the ledger), checked offline.
    let height = net.height(1);
    let pubkey = net.cli(&["codes", "keygen", "--out", "lj2025a.key"], &[]);
    let pubkey = pubkey.trim().to_owned();
    assert_eq!(pubkey.len(), 43, "{pubkey}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("lj2025a.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    net.cli(
        &[
            "codes",
            "issue",
            "--batch",
            "LJ2025A",
            "--gtin",
            &juice,
            "--from",
            "1",
            "--to",
            "24",
            "--key",
            "lj2025a.key",
            "--base",
            BASE,
            "--out",
            "codes.txt",
        ],
        &[],
    );
    assert_eq!(net.height(1), height, "issuing codes writes nothing");
    let codes: Vec<String> = std::fs::read_to_string(d.path().join("codes.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 24);
    assert!(
        codes[4].starts_with(&format!("{BASE}/01/{juice}/10/LJ2025A/21/5?8030=")),
        "{}",
        codes[4]
    );
    // `--pubkey=` form: a base64url key may start with '-'.
    let pk = format!("--pubkey={pubkey}");
    let out = net.cli(&["codes", "verify", &codes[4], &pk], &[]);
    assert!(out.starts_with("GENUINE"), "{out}");
    let out = net.cli(
        &["codes", "register", "--batch", &jb, "--key", "lj2025a.key"],
        &net.conn(1, "producer"),
    );
    assert!(out.contains(&pubkey), "{out}");

    // A good, never scanned code: its whole verified story.
    let out = net.cli(&["trace", &codes[1]], &net.conn(3, "consumer"));
    eprintln!("{out}");
    assert!(out.starts_with("Verdict:    GENUINE"), "{out}");
    assert!(!out.contains("RECALLED"), "{out}");
    assert!(out.contains(&format!("Trace of:   {jb}/2")), "{out}");
    assert!(out.contains("Loquat juice 330 ml"), "{out}");
    assert!(out.contains("Org1MSP active, valid until"), "{out}");
    assert!(
        out.contains("held by Org2MSP, conformance conformant"),
        "{out}"
    );
    assert!(out.contains(&format!("Made from:  {h1}, {h2}")), "{out}");
    for step in [
        "commissioning",
        "sterilising",
        "filling",
        "sensor_reporting",
        "inspecting",
        "shipping",
        "transporting",
        "receiving",
        "storing",
    ] {
        assert!(out.contains(&format!(" {step} ")), "{step} missing:\n{out}");
    }
    assert!(out.contains("by Org2MSP at Hangzhou DC"), "{out}");
    assert!(out.contains("(Org1MSP -> Org2MSP)"), "{out}");
    assert!(out.contains("+08:00  sterilising"), "{out}");
    assert!(out.contains("Inspections (1):"), "{out}");
    assert!(
        out.contains("PASS  by lab Org2MSP to GB 7101-2022: total_sugar 9.8 g/100ml [5..12]"),
        "{out}"
    );
    assert!(out.contains("IoT alerts (1):"), "{out}");
    assert!(
        out.contains(
            "qcss:UHTTemperature 121.5 CEL from device Org1MSP/uht-1 outside limits [135..150]"
        ),
        "{out}"
    );
    let v: Value =
        serde_json::from_str(&net.cli(&["trace", &codes[1], "--json"], &net.conn(2, "driver")))
            .expect("trace --json");
    assert_eq!(v["verdict"], "genuine");
    assert_eq!(v["target"], format!("{jb}/2"));
    assert_eq!(v["inspections"][0]["lab"], "Org2MSP");

    // Scans: a consumer scans and claims bottle 5 in Hangzhou; the same
    // code scanned in Shenzhen is a clone.
    let consumer = net.conn(3, "consumer");
    let out = net.cli(&["scan", &codes[4], "--location", "Hangzhou"], &consumer);
    assert!(out.starts_with("Verdict:    GENUINE"), "{out}");
    assert!(out.contains("scanned 1 time(s); first"), "{out}");
    let out = net.cli(
        &["scan", &codes[4], "--location", "Hangzhou", "--claim"],
        &consumer,
    );
    assert!(out.contains("claimed"), "{out}");
    let out = net.cli(&["scan", &codes[4], "--location", "Shenzhen"], &consumer);
    eprintln!("{out}");
    assert!(out.contains("POSSIBLE COUNTERFEIT"), "{out}");
    assert!(out.contains("already claimed by a consumer"), "{out}");
    assert!(
        out.contains("first scanned in Hangzhou, now scanned in Shenzhen"),
        "{out}"
    );
    let out = net.cli(&["trace", &codes[4]], &consumer);
    assert!(out.contains("POSSIBLE COUNTERFEIT"), "{out}");
    assert!(out.contains("scanned 3 time(s)"), "{out}");
    let (ok, _, err) = net.cli_any(
        &["scan", &codes[6], "--location", "Hangzhou"],
        &net.conn(1, "producer"),
    );
    assert!(!ok && err.contains("only a consumer identity"), "{err}");

    // A forged code: refused as forged, online and offline; nothing written.
    let forged = codes[2].replace("/21/3?", "/21/23?");
    let (ok, out, err) = net.cli_any(&["trace", &forged], &consumer);
    eprintln!("{out}");
    assert!(!ok, "a forged code must fail: {out}");
    assert!(
        out.starts_with("FORGED: this code was not issued by the brand"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "counterfeit code: the signature is not valid for batch {jb}"
        )),
        "{out}"
    );
    assert!(err.contains("forged code"), "{err}");
    let (ok, out, _) = net.cli_any(&["trace", &forged, "--json"], &consumer);
    assert!(!ok);
    let v: Value = serde_json::from_str(&out).expect("forged --json");
    assert_eq!(v["verdict"], "forged");
    let (ok, out, _) = net.cli_any(&["scan", &forged, "--location", "Hangzhou"], &consumer);
    assert!(!ok && out.starts_with("FORGED"), "{out}");
    let (ok, out, _) = net.cli_any(&["codes", "verify", &forged, &pk], &[]);
    assert!(!ok && out.starts_with("FORGED"), "{out}");
    // A code for a serial beyond the batch, correctly signed, is refused too.
    net.cli(
        &[
            "codes",
            "issue",
            "--batch",
            &jb,
            "--from",
            "25",
            "--to",
            "25",
            "--key",
            "lj2025a.key",
            "--base",
            BASE,
            "--out",
            "extra.txt",
        ],
        &[],
    );
    let extra = std::fs::read_to_string(d.path().join("extra.txt")).unwrap();
    let (ok, out, _) = net.cli_any(&["trace", extra.trim()], &consumer);
    assert!(
        !ok && out.starts_with("INVALID: this serial was never part of the batch"),
        "{out}"
    );

    // Recall: the regulator recalls harvest lot H1; the juice made from it
    // is recalled with it, and every scan and trace shows it first.
    let out = net.cli(
        &[
            "recall",
            &h1,
            "--reason",
            "pesticide residue above GB 2763 limit",
        ],
        &net.conn(3, "inspector"),
    );
    assert!(out.contains("recalled 2 batch(es)"), "{out}");
    assert!(out.contains(&jb), "{out}");
    let out = net.cli(&["trace", &codes[1]], &consumer);
    eprintln!("{out}");
    assert!(
        out.starts_with(&"!".repeat(72)),
        "the recall comes first: {out}"
    );
    assert!(out.contains("RECALLED: do not sell or consume"), "{out}");
    assert!(
        out.contains(&format!("recall of batch {h1} by Org3MSP (regulator)")),
        "{out}"
    );
    assert!(
        out.contains("reason: pesticide residue above GB 2763 limit"),
        "{out}"
    );
    assert!(out.contains(" holding "), "{out}");
    let out = net.cli(&["scan", &codes[7], "--location", "Hangzhou"], &consumer);
    assert!(out.contains("RECALLED"), "{out}");
    let out = net.cli(&["trace", &h1], &consumer);
    assert!(out.contains(&format!("Used in:    {jb}")), "{out}");
    assert!(out.contains("RECALLED"), "{out}");
    let v: Value = serde_json::from_str(&net.cli(&["trace", &jb, "--json"], &consumer)).unwrap();
    assert_eq!(v["recall"]["origin"], h1);
    assert!(v.get("verdict").is_none(), "batches have no code verdict");
    // The graphs, for a person: the juice downstream of the harvest lot, the
    // harvest lot upstream of the juice, both marked recalled.
    let out = net.cli(&["trace", &h1, "--downstream"], &consumer);
    assert!(out.starts_with(&h1), "{out}");
    assert!(out.contains("-> ") && out.contains(&jb), "{out}");
    assert!(out.contains("RECALLED"), "{out}");
    let out = net.cli(&["trace", &jb, "--upstream"], &consumer);
    assert!(
        out.starts_with(&jb) && out.contains("<- ") && out.contains(&h1),
        "{out}"
    );

    // The QCSS index moved with the story (inspections, the recall), the
    // same on every peer; `qcss index` prints it as terms that add up.
    let shown = net.cli(&["index", "show", &juice], &consumer);
    assert!(
        shown.starts_with(&format!("QCSS index of gtin {juice}: ")),
        "{shown}"
    );
    assert!(
        shown.contains("contribution") && shown.contains("history"),
        "{shown}"
    );
    let record: Value =
        serde_json::from_str(&net.cli(&["index", "explain", &juice, "--json"], &consumer)).unwrap();
    let terms = record["terms"].as_array().expect("terms");
    assert_eq!(terms.len(), 5, "{record}");
    let sum: u64 = terms
        .iter()
        .map(|t| t["contribution"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, record["index"].as_u64().unwrap(), "{record}");
    assert!(
        record["refs"].as_object().is_some_and(|r| !r.is_empty()),
        "{record}"
    );
    for n in 2..=3 {
        let other: Value = serde_json::from_str(&net.cli(
            &["index", "explain", &juice, "--json"],
            &net.conn(n, "client1"),
        ))
        .unwrap();
        assert_eq!(other["index"], record["index"], "org{n}");
        assert_eq!(other["inputs"], record["inputs"], "org{n}");
    }
    let shown = net.cli(&["index", "explain", "Org1MSP"], &consumer);
    assert!(
        shown.contains("QCSS index of enterprise Org1MSP"),
        "{shown}"
    );
    assert!(shown.contains("records behind each term"), "{shown}");
    let err = net.cli_err(&["index", "show", "Org9MSP"], &consumer);
    assert!(
        err.contains("index_get Org9MSP") && err.contains("no QCSS index"),
        "{err}"
    );

    // Every peer holds the same story.
    let h = net.height(1);
    net.wait_heights(h, std::time::Duration::from_secs(20));
    let infos: Vec<_> = (1..=3).map(|n| net.ledger_info(n)).collect();
    assert_eq!(infos[0], infos[1]);
    assert_eq!(infos[0], infos[2]);
    eprintln!("story done in {:?}", started.elapsed());
}
