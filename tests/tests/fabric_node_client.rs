//! The proof of Fabric wire compatibility: Hyperledger Fabric's official
//! Node client, `@hyperledger/fabric-gateway` from npm, drives the test
//! network with ordinary, unchanged Fabric client code
//! (`tests/node/gateway-check.js`): mTLS with a CA-issued identity,
//! evaluate, submit, submitAsync and commit status, chaincode events, block
//! and filtered block events, and a failing transaction.
//!
//! Needs Node.js and `npm ci --prefix tests/node` (done by `.ci/run`); the
//! test fails, rather than skips, when they are missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qcss_tests::peers::{CHANNEL, Network, NetworkOptions};
use serde_json::Value;

/// `tests/node`.
fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Fails clearly unless Node.js and the npm packages are installed.
fn require_node_client() {
    let modules = node_dir().join("node_modules/@hyperledger/fabric-gateway");
    assert!(
        modules.is_dir(),
        "{} is missing: run `npm ci --prefix tests/node` (from the repository root; \
         .ci/run does) to install Fabric's Node client",
        modules.display()
    );
    let version = Command::new("node").arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "`node` cannot be run ({version:?}): install Node.js 20 or newer"
    );
}

/// Runs `node tests/node/gateway-check.js` with `env`; its JSON line.
fn run_gateway_check(env: &[(&str, String)], timeout: Duration) -> Value {
    let mut cmd = Command::new("node");
    cmd.arg(node_dir().join("gateway-check.js"))
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("starting node");
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("waiting for node").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("node output");
            panic!(
                "gateway-check.js did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("node output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "gateway-check.js failed ({})\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line from gateway-check.js\nstdout: {stdout}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The block numbers of a list of (full or filtered) blocks.
fn numbers(blocks: &Value) -> Vec<u64> {
    blocks
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {blocks}"))
        .iter()
        .map(|b| num(&b["number"]))
        .collect()
}

/// The transaction `tx_id` in the list of blocks, with its block number.
fn find_tx<'a>(blocks: &'a Value, tx_id: &Value) -> Option<(u64, &'a Value)> {
    blocks.as_array()?.iter().find_map(|b| {
        b["transactions"]
            .as_array()?
            .iter()
            .find(|t| t["txId"] == *tx_id)
            .map(|t| (num(&b["number"]), t))
    })
}

/// Runs gateway-check.js as `who` of the first org and checks everything it
/// reports; returns the key and value it wrote and the emit's block.
fn check_run(
    net: &Network,
    who: &str,
    run_id: &str,
    (key_type, curve): (&str, Option<&str>),
) -> (String, String, u64) {
    let org1 = &net.orgs[0];
    let client = org1.dir.join(who);
    let file = |p: PathBuf| p.display().to_string();
    let env = [
        ("PEER_ENDPOINT", net.peer_addrs[0].clone()),
        ("TLS_ROOT_CERT", file(org1.dir.join("ca/tls-ca-cert.pem"))),
        ("CERT", file(client.join("cert.pem"))),
        ("KEY", file(client.join("key.pem"))),
        ("TLS_CERT", file(client.join("tls-cert.pem"))),
        ("TLS_KEY", file(client.join("tls-key.pem"))),
        ("MSP_ID", org1.msp_id.clone()),
        ("CHANNEL", CHANNEL.to_string()),
        ("CHAINCODE", "example".to_string()),
        ("RUN_ID", run_id.to_string()),
        ("TIMEOUT_MS", "30000".to_string()),
    ];
    let out = run_gateway_check(&env, Duration::from_secs(180));
    let show = serde_json::to_string_pretty(&out).unwrap_or_default();
    eprintln!("gateway-check.js: {show}");

    // The CA's certificates' keys, read by node's crypto as they are.
    assert_eq!(out["keyType"], key_type, "{show}");
    assert_eq!(out["curve"].as_str(), curve, "{show}");

    // submitTransaction, then evaluateTransaction reads the value back.
    let key = format!("node-{run_id}");
    let value = format!("value from the Fabric Node client {run_id}");
    assert_eq!(out["put"]["key"], key.as_str(), "{show}");
    assert_eq!(out["get"], value.as_str(), "{show}");

    // submitAsync + getStatus: VALID, in a block.
    let put = &out["putAsync"];
    assert_eq!(put["codeName"], "VALID", "{show}");
    assert_eq!(put["code"], 0, "{show}");
    assert_eq!(put["successful"], true, "{show}");
    assert_eq!(put["statusTransactionId"], put["transactionId"], "{show}");
    let put_block = num(&put["blockNumber"]);
    assert!(put_block > 0, "{show}");
    let emit = &out["emit"];
    assert_eq!(emit["codeName"], "VALID", "{show}");
    let emit_block = num(&emit["blockNumber"]);
    assert!(emit_block > put_block, "{show}");

    // The chaincode event, as emitted.
    let ev = &out["chaincodeEvent"];
    assert_eq!(ev["chaincodeName"], "example", "{show}");
    assert_eq!(
        ev["eventName"],
        format!("node-event-{run_id}").as_str(),
        "{show}"
    );
    assert_eq!(
        ev["payload"],
        format!("payload {run_id}").as_str(),
        "{show}"
    );
    assert_eq!(ev["transactionId"], emit["transactionId"], "{show}");
    assert_eq!(num(&ev["blockNumber"]), emit_block, "{show}");

    // Block events: consecutive blocks from the put's to the emit's, each
    // holding its transaction with its validation code.
    let expected: Vec<u64> = (put_block..=emit_block).collect();
    assert_eq!(numbers(&out["blocks"]), expected, "{show}");
    let (at, tx) = find_tx(&out["blocks"], &put["transactionId"]).expect("put tx in a block");
    assert_eq!((at, &tx["code"]), (put_block, &Value::from("VALID")));
    assert_eq!(tx["channel"], CHANNEL, "{show}");
    assert_eq!(tx["type"], 3, "ENDORSER_TRANSACTION: {show}");
    let (at, tx) = find_tx(&out["blocks"], &emit["transactionId"]).expect("emit tx in a block");
    assert_eq!((at, &tx["code"]), (emit_block, &Value::from("VALID")));

    // Filtered block events: the same blocks, the event without its payload.
    assert_eq!(numbers(&out["filteredBlocks"]), expected, "{show}");
    for b in out["filteredBlocks"].as_array().expect("filtered blocks") {
        assert_eq!(b["channel"], CHANNEL, "{show}");
    }
    let (at, tx) =
        find_tx(&out["filteredBlocks"], &emit["transactionId"]).expect("emit tx, filtered");
    assert_eq!((at, &tx["code"]), (emit_block, &Value::from("VALID")));
    assert_eq!(
        tx["events"],
        serde_json::json!([{"chaincodeId": "example", "eventName": format!("node-event-{run_id}")}]),
        "{show}"
    );

    // Listeners opened at the next commit see the transaction committed
    // after them: the event, and its block (full and filtered) last.
    let live = &out["live"];
    assert_eq!(live["codeName"], "VALID", "{show}");
    let live_block = num(&live["blockNumber"]);
    assert!(live_block > emit_block, "{show}");
    assert_eq!(
        live["event"]["eventName"],
        format!("node-live-{run_id}").as_str(),
        "{show}"
    );
    assert_eq!(live["event"]["payload"], format!("live {run_id}").as_str());
    assert_eq!(live["event"]["transactionId"], live["transactionId"]);
    assert_eq!(num(&live["event"]["blockNumber"]), live_block, "{show}");
    for list in ["blocks", "filteredBlocks"] {
        let ns = numbers(&live[list]);
        assert!(
            ns.first().is_some_and(|f| *f > emit_block) && ns.last() == Some(&live_block),
            "{list} from the next commit: {show}"
        );
        assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "{show}");
        let (at, tx) = find_tx(&live[list], &live["transactionId"]).expect("live tx");
        assert_eq!((at, &tx["code"]), (live_block, &Value::from("VALID")));
    }

    // Resumed from a checkpoint after the first event: the live one is next.
    let resumed = &out["resumedEvent"];
    assert_eq!(resumed["transactionId"], live["transactionId"], "{show}");
    assert_eq!(num(&resumed["blockNumber"]), live_block, "{show}");

    // A failing transaction function: an EndorseError carrying the
    // contract's message (and a GatewayError when evaluated).
    let message = format!("deliberate failure {run_id}");
    // Both in the message and, as Fabric's Gateway does, in an ErrorDetail
    // naming the endorsing org.
    let carries = |e: &Value| {
        e["message"].as_str().is_some_and(|m| m.contains(&message))
            && e["details"].as_array().is_some_and(|ds| {
                ds.iter().any(|d| {
                    d["message"].as_str().is_some_and(|m| m.contains(&message))
                        && d["mspId"] == "Org1MSP"
                })
            })
    };
    let sf = &out["submitFail"];
    assert_eq!(sf["thrown"], true, "{show}");
    assert_eq!(sf["isEndorseError"], true, "{show}");
    assert!(carries(sf), "{show}");
    let ef = &out["evaluateFail"];
    assert_eq!(ef["isGatewayError"], true, "{show}");
    assert!(carries(ef), "{show}");

    (key, value, emit_block)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_node_client_drives_the_network() {
    require_node_client();
    let d = tempfile::tempdir().expect("tempdir");
    let net = Network::start(d.path(), NetworkOptions::default());
    let org1 = &net.orgs[0];
    // The same script as an ECDSA P-256 identity (what the CA issues by
    // default) and as an Ed25519 one (Fabric 3's hash.none signer), in a
    // network whose peers and orderers are P-256: every verifier takes both.
    org1.enroll_key("edclient", "client", None, "ed25519");
    let mut written = Vec::new();
    for (who, key_type, curve) in [
        ("client1", "ec", Some("prime256v1")),
        ("edclient", "ed25519", None),
    ] {
        let run_id = format!("t{}{who}", std::process::id());
        written.push(check_run(&net, who, &run_id, (key_type, curve)));
    }
    let (key, value, emit_block) = written.pop().expect("two runs");
    let (key0, value0, _) = written.pop().expect("two runs");

    // What the Node client wrote is on every peer.
    net.wait_heights(emit_block + 1, Duration::from_secs(20));
    for n in 1..=3 {
        let mut g = net.gateway(n).await;
        for (key, value) in [(&key0, &value0), (&key, &value)] {
            let v = g
                .evaluate("example", "get", &[key.as_bytes()])
                .await
                .expect("get");
            assert_eq!(v, value.as_bytes(), "peer {n}");
        }
    }
}
