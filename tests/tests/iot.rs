//! IoT state channels on a real network (three orgs, each with its CA and
//! peer, three orderers; the traceability contract deployed), driven
//! through `qcss iot` with a device and a gateway talking over TCP:
//!
//! - 100,000 readings exchanged off the ledger and settled in one
//!   transaction by a cooperative close; one reading's proof verifies
//!   against the settled root read from the ledger, a tampered one does
//!   not; that reading, out of limits, raises an alert on the batch, beside
//!   the settlement's own min/max alert, where `qcss trace` shows alerts;
//! - a stale unilateral close beaten by a challenge, a lower challenge
//!   refused, a challenge after the deadline refused, then settle;
//! - a channel id for another ledger refused at open, and a state signed
//!   for it refused at close;
//! - equivocation evidence (two device-signed states with one seq)
//!   recorded as a quality incident, and not twice.

use std::path::Path;
use std::time::{Duration, Instant};

use qcss_iot::keys::Key;
use qcss_iot::{Channel, ChannelParams, Party, Reading, SignedState};
use qcss_tests::peers::{Network, NetworkOptions, traceability_wasm};
use qcss_tests::trace::{CC, SHA, gs1, now, submit};
use serde_json::{Value, json};

const READINGS: u64 = 100_000;
const SPIKE: u64 = 54_321;

fn key(path: &Path) -> Key {
    let v: Value = serde_json::from_slice(&std::fs::read(path).expect("key file")).expect("JSON");
    let mut s = [0u8; 32];
    hex::decode_to_slice(v["secret"].as_str().expect("secret"), &mut s).expect("hex");
    Key::from_secret(s)
}

fn invoke_err(net: &Network, who: &str, f: &str, arg: &Value) -> String {
    let args = json!([arg]).to_string();
    net.cli_err(
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
        &net.conn(1, who),
    )
}

fn simulate(net: &Network, batch: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "iot",
        "simulate",
        "--device",
        "Org1MSP/truck-7",
        "--device-key",
        "device-key.json",
        "--gateway-key",
        "gateway-key.json",
        "--batch",
        batch,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = net.cli(&args, &net.conn(1, "producer"));
    serde_json::from_str(out.lines().last().expect("a summary")).expect("JSON summary")
}

fn show(net: &Network, channel: &str) -> Value {
    serde_json::from_str(&net.cli(&["iot", "show", channel], &net.conn(2, "driver")))
        .expect("JSON record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iot_channels_settle_dispute_prove_and_alert() {
    let started = Instant::now();
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
    org1.enroll("sensor7", "client", Some("device"));
    org2.enroll("driver", "client", Some("logistics"));
    org3.enroll("inspector", "client", Some("regulator"));
    net.deploy("traceability", "1.0", 1, &traceability_wasm(), "", &[]);
    eprintln!(
        "network up and contract deployed in {:?}",
        started.elapsed()
    );

    // A permit, a product, a batch, and a device bound with its channel key.
    let mut producer = net.gateway_as(1, 1, "producer").await;
    let mut regulator = net.gateway_as(3, 3, "inspector").await;
    submit(
        &mut producer,
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "cold chain",
               "valid_until": now() + 365 * 24 * 3600}),
    )
    .await;
    submit(
        &mut regulator,
        "approve_permit",
        json!({"msp": "Org1MSP", "reason": "checked"}),
    )
    .await;
    let gtin = gs1("0690123456003");
    let batch = format!("{gtin}/CC2026A");
    submit(
        &mut producer,
        "register_product",
        json!({"gtin": gtin, "name": "Chilled loquat juice", "category": "beverage"}),
    )
    .await;
    submit(
        &mut producer,
        "register_batch",
        json!({"gtin": gtin, "lot": "CC2026A", "quantity": 1000, "uom": "H87",
               "production_date": "2026-06-01", "site": "line 2"}),
    )
    .await;
    let device_pub = net.cli(&["iot", "keygen", "device-key.json"], &[]);
    let device_pub = device_pub.trim();
    assert_eq!(device_pub.len(), 64, "{device_pub}");
    let device_cert = std::fs::read_to_string(org1.dir.join("sensor7/cert.pem")).expect("cert");
    submit(
        &mut producer,
        "bind_device",
        json!({"device": "truck-7", "device_cert_pem": device_cert, "batch": batch,
               "channel_key": device_pub}),
    )
    .await;

    // 1. 100,000 readings over TCP, settled by one cooperative close.
    let t = Instant::now();
    let spike = format!("{SPIKE}=12.5");
    let s = simulate(
        &net,
        &batch,
        &[
            "--readings",
            &READINGS.to_string(),
            "--per-update",
            "1000",
            "--spike",
            &spike,
        ],
    );
    eprintln!(
        "100,000 readings simulated and settled in {:?}: {s}",
        t.elapsed()
    );
    assert_eq!(s["readings"], READINGS);
    assert_eq!(s["updates"], 100);
    assert_eq!(s["status"], "settled");
    let big = s["channel"].as_str().expect("channel id").to_owned();
    let rec = show(&net, &big);
    assert_eq!(rec["status"], "settled");
    let settled: SignedState = serde_json::from_value(rec["state"].clone()).expect("state");
    assert_eq!(settled.state.count, READINGS);
    assert!(settled.state.is_final);
    assert_eq!(settled.state.max, vec![12.5]);
    assert_eq!(settled.state.root.to_string(), s["root"].as_str().unwrap());
    // The settlement's alert: the state's max is above the schema's 8 °C.
    assert_eq!(rec["alerts"].as_array().map(Vec::len), Some(1), "{rec}");

    // One reading's proof against the settled root from the ledger.
    net.cli(
        &[
            "iot",
            "prove",
            &big,
            &SPIKE.to_string(),
            "--out",
            "spike.json",
        ],
        &[],
    );
    let out = net.cli(&["iot", "verify", "spike.json"], &net.conn(2, "driver"));
    assert!(
        out.starts_with(&format!("verified: reading {SPIKE} ")),
        "{out}"
    );
    assert!(out.contains("gs1:Temperature=12.5CEL"), "{out}");
    let mut forged: Value =
        serde_json::from_slice(&std::fs::read(d.path().join("spike.json")).unwrap()).unwrap();
    forged["proof"]["reading"]["values"][0] = json!(7.5);
    std::fs::write(d.path().join("forged.json"), forged.to_string()).unwrap();
    let err = net.cli_err(&["iot", "verify", "forged.json"], &net.conn(2, "driver"));
    assert!(err.contains("NOT verified"), "{err}");
    // An in-limit reading proves fine but raises nothing.
    net.cli(&["iot", "prove", &big, "7", "--out", "seven.json"], &[]);
    net.cli(&["iot", "verify", "seven.json"], &net.conn(3, "inspector"));
    let err = net.cli_err(&["iot", "alert", &big, "7"], &net.conn(3, "inspector"));
    assert!(err.contains("within the schema's limits"), "{err}");
    // The spike, proven, raises its own alert on the batch.
    net.cli(
        &["iot", "alert", &big, &SPIKE.to_string()],
        &net.conn(3, "inspector"),
    );
    let err = net.cli_err(
        &["iot", "alert", &big, &SPIKE.to_string()],
        &net.conn(3, "inspector"),
    );
    assert!(err.contains("already raised"), "{err}");
    let trace: Value =
        serde_json::from_str(&net.cli(&["trace", &batch, "--json"], &net.conn(2, "driver")))
            .expect("trace JSON");
    let alerts = trace["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 2, "{trace}");
    assert!(
        alerts
            .iter()
            .all(|a| a["reading"]["value"] == 12.5 && a["device"] == "Org1MSP/truck-7")
    );
    let text = net.cli(&["trace", &batch], &net.conn(2, "driver"));
    assert!(text.contains("IoT channel"), "{text}");

    // 2. A stale unilateral close beaten by a challenge; a challenge after
    //    the deadline refused.
    let s = simulate(
        &net,
        &batch,
        &[
            "--readings",
            "50",
            "--per-update",
            "10",
            "--challenge-secs",
            "6",
            "--close",
            "none",
        ],
    );
    let small = s["channel"].as_str().expect("channel id").to_owned();
    let closing = net.cli(
        &["iot", "close", &small, "--seq", "2"],
        &net.conn(2, "driver"),
    );
    assert!(
        closing.contains("closing (state seq 2, 20 readings"),
        "{closing}"
    );
    let err = net.cli_err(&["iot", "settle", &small], &net.conn(2, "driver"));
    assert!(err.contains("challenge window runs until"), "{err}");
    let closed_at = Instant::now();
    net.cli(
        &["iot", "challenge", &small, "--seq", "5"],
        &net.conn(1, "producer"),
    );
    let err = net.cli_err(
        &["iot", "challenge", &small, "--seq", "4"],
        &net.conn(1, "producer"),
    );
    assert!(
        err.contains("does not replace the registered seq 5"),
        "{err}"
    );
    // Wait out the window (6 s from the close's transaction time).
    std::thread::sleep(Duration::from_secs(8).saturating_sub(closed_at.elapsed()));
    let err = net.cli_err(
        &["iot", "challenge", &small, "--seq", "5"],
        &net.conn(1, "producer"),
    );
    assert!(err.contains("challenge window"), "{err}");
    assert!(err.contains("ended"), "{err}");
    let out = net.cli(&["iot", "settle", &small], &net.conn(3, "inspector"));
    assert!(out.contains("settled (state seq 5, 50 readings"), "{out}");

    // 3. A channel id for another ledger, and a state signed for it.
    let rec = show(&net, &small);
    let mut params: ChannelParams = serde_json::from_value(rec["params"].clone()).unwrap();
    let (dk, gk) = (
        key(&d.path().join("device-key.json")),
        key(&d.path().join("gateway-key.json")),
    );
    params.nonce += 1;
    params.ledger = "another-ledger".into();
    let open = json!({"device": "Org1MSP/truck-7", "batch": batch,
        "gateway_key": params.gateway_key, "schema": params.schema,
        "challenge_secs": 600, "nonce": params.nonce, "channel": params.id().to_string()});
    let err = invoke_err(&net, "producer", "iot_open", &open);
    assert!(
        err.contains("does not match the parameters on ledger"),
        "{err}"
    );
    let mut other = Channel::open(params.clone()).unwrap();
    let st = other
        .apply(
            &[Reading {
                seq: 0,
                time: now(),
                values: vec![4.0],
            }],
            true,
        )
        .unwrap()
        .clone();
    let foreign = SignedState {
        device_sig: dk.sign(&st, Party::Device),
        gateway_sig: gk.sign(&st, Party::Gateway),
        state: st,
    };
    let err = invoke_err(
        &net,
        "producer",
        "iot_close",
        &json!({"channel": params.id().to_string(), "state": foreign}),
    );
    assert!(err.contains("unknown IoT channel"), "{err}");
    // The same state shown for a real, open channel names the mismatch.
    let mut open_real = open.clone();
    open_real["nonce"] = json!(params.nonce + 1);
    open_real["channel"] = Value::Null;
    let args = json!([open_real]).to_string();
    let opened = net.cli(
        &[
            "tx",
            "invoke",
            "--chaincode",
            CC,
            "--fn",
            "iot_open",
            "--args",
            &args,
        ],
        &net.conn(1, "producer"),
    );
    assert!(opened.contains("VALID"), "{opened}");
    let mut real: ChannelParams = serde_json::from_value(rec["params"].clone()).unwrap();
    real.nonce = params.nonce + 1;
    real.challenge_secs = 600;
    let real_id = real.id().to_string();
    assert_eq!(show(&net, &real_id)["status"], "open");
    let err = invoke_err(
        &net,
        "producer",
        "iot_close",
        &json!({"channel": real_id, "state": foreign}),
    );
    assert!(
        err.contains("belongs to channel") && err.contains(&real_id),
        "{err}"
    );

    // 4. Equivocation: the device signed two different states with seq 3.
    let s = simulate(
        &net,
        &batch,
        &["--readings", "40", "--per-update", "10", "--close", "none"],
    );
    let eq = s["channel"].as_str().expect("channel id").to_owned();
    let store = d.path().join("qcss-iot").join(&eq);
    let states: Vec<SignedState> = std::fs::read_to_string(store.join("states.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let honest = &states[2];
    assert_eq!(honest.state.seq, 3);
    let params: ChannelParams =
        serde_json::from_slice(&std::fs::read(store.join("params.json")).unwrap()).unwrap();
    let mut fork = Channel::open(params).unwrap();
    let mut seq = 0;
    for _ in 0..3 {
        let rs: Vec<Reading> = (0..10)
            .map(|i| Reading {
                seq: seq + i,
                time: now(),
                values: vec![2.0],
            })
            .collect();
        seq += 10;
        fork.apply(&rs, false).unwrap();
    }
    let twin = fork.state().clone();
    assert_eq!(twin.seq, 3);
    assert_ne!(twin, honest.state);
    let one = |s: &qcss_iot::State, sig: qcss_iot::Signature| json!({"state": hex::encode(s.encode()), "sig": sig});
    std::fs::write(
        d.path().join("a.json"),
        one(&honest.state, honest.device_sig).to_string(),
    )
    .unwrap();
    std::fs::write(
        d.path().join("b.json"),
        one(&twin, dk.sign(&twin, Party::Device)).to_string(),
    )
    .unwrap();
    std::fs::write(
        d.path().join("c.json"),
        one(&twin, gk.sign(&twin, Party::Gateway)).to_string(),
    )
    .unwrap();
    let err = net.cli_err(
        &[
            "iot", "evidence", &eq, "--party", "device", "--a", "a.json", "--b", "c.json",
        ],
        &net.conn(3, "inspector"),
    );
    assert!(err.contains("device signature"), "{err}");
    let out = net.cli(
        &[
            "iot", "evidence", &eq, "--party", "device", "--a", "a.json", "--b", "b.json",
        ],
        &net.conn(3, "inspector"),
    );
    assert!(
        out.contains("equivocation by the device Org1MSP/truck-7 at seq 3 recorded"),
        "{out}"
    );
    let err = net.cli_err(
        &[
            "iot", "evidence", &eq, "--party", "device", "--a", "b.json", "--b", "a.json",
        ],
        &net.conn(3, "inspector"),
    );
    assert!(err.contains("already recorded"), "{err}");
    assert_eq!(show(&net, &eq)["incidents"], 1);
    let trace: Value =
        serde_json::from_str(&net.cli(&["trace", &batch, "--json"], &net.conn(2, "driver")))
            .unwrap();
    assert!(trace.to_string().contains("iotEquivocation"), "{trace}");
    eprintln!("iot test done in {:?}", started.elapsed());
}
