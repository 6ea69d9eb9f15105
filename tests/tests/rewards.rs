//! UCES and consumer rewards, the whole story on a real network
//! (`qcss network up --demo` with one-minute reward epochs: consortium,
//! public chain and the anchoring bridge as processes on 127.0.0.1):
//!
//! - the demo's consumer bound its public-chain wallet and scanned a bottle;
//!   here it claims units and evaluates them (`qcss uces evaluate`), the
//!   regulator's validator approves one (valid at > ½ of a set of one) and
//!   rejects another (the penalty: credit down, no reward); every refusal
//!   (evaluation without a claim, twice, by a non-consumer, a vote by a
//!   non-validator, a double vote) says why and changes nothing;
//! - the product's UCES coefficient moves with the valid evaluation, the
//!   same on every org's peer;
//! - the bridge computes each ended epoch's batch on the ledger, every org's
//!   peer signs it, and the public chain pays exactly the points earned
//!   (1 QCSS a point: two first scans and one valid evaluation), locked; the
//!   lock matures and the consumer withdraws, once (a second withdrawal
//!   within the interval is refused);
//! - with one-entry parts on the chain (`--reward-part-entries 1`, so the
//!   demo freezes pages of one address), a second real-name consumer binds
//!   a wallet, both scan in one epoch, and the bridge pays that epoch in two
//!   parts, each signed by every org's peer from its own ledger;
//! - a replayed batch (quorum-signed, already paid), an under-signed batch,
//!   a part out of order and a batch over the epoch's budget are refused
//!   by the chain.

use std::path::Path;
use std::time::{Duration, Instant};

use qcss_dpos::address::{Address, Keypair, Sig};
use qcss_dpos::hash::Hash32;
use qcss_dpos::rewards::{RewardBatch, RewardEntry};
use qcss_dpos::tx::TxKind;
use qcss_tests::{NetworkDown, chain_submit, demo_codes, qcss_err, qcss_ok};
use serde_json::Value;

fn json(addr: &str, path: &str) -> Value {
    qcss_tests::get_json(addr, path, 30)
}

fn key(path: &Path) -> Keypair {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut s = [0u8; 32];
    hex::decode_to_slice(v["secret"].as_str().unwrap(), &mut s).unwrap();
    Keypair::from_secret(s)
}

/// Polls every second until `cond` gives a value; fails after `secs`.
fn wait_for<T>(secs: u64, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The account's locked rewards, base units (matured or not).
fn locked(node: &str, addr: &str) -> u64 {
    json(node, &format!("/v1/account/{addr}"))["locks"]
        .as_array()
        .map(|l| l.iter().filter_map(|x| x["amount"].as_u64()).sum())
        .unwrap_or(0)
}

const QCSS: u64 = 100_000_000;

#[test]
fn evaluations_votes_penalties_and_rewards_paid_on_the_public_chain() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    let net = dir.join("net");
    let _down = NetworkDown(dir);
    let contract = qcss_tests::peers::traceability_wasm().display().to_string();
    let out = qcss_ok(
        dir,
        &[
            "network",
            "up",
            "--dir",
            "net",
            "--demo",
            "--contract",
            &contract,
            "--reward-epoch-secs",
            "60",
            "--reward-lock-slots",
            "21",
            "--withdraw-interval-slots",
            "100000",
            "--reward-part-entries",
            "1",
        ],
    );
    assert!(out.contains("consumer1 bound reward address"), "{out}");
    let codes = demo_codes(&out);
    let good = codes[0].clone();
    let info: Value =
        serde_json::from_slice(&std::fs::read(net.join("network.json")).unwrap()).unwrap();
    let node = info["chain"]["nodes"][0]["api"]
        .as_str()
        .unwrap()
        .to_owned();
    let cid = info["chain"]["anchor"]["consortium_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wallet = net.join(info["chain"]["demo"]["consumer_key"].as_str().unwrap());
    let consumer = key(&wallet);
    let addr = consumer.address().to_string();
    let gtin = "06901234560022";
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--dir", "net"]);
        qcss_ok(dir, &all)
    };
    let refuse = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--dir", "net"]);
        qcss_err(dir, &all)
    };
    let me =
        || -> Value { serde_json::from_str(&run(&["uces", "me", "--as", "consumer1"])).unwrap() };
    let coefficient = |org: &str| -> u64 {
        let v: Value =
            serde_json::from_str(&run(&["index", "show", gtin, "--json", "--org", org])).unwrap();
        v["coefficient"].as_u64().expect("coefficient")
    };
    let before = coefficient("producer");
    // Binding again from the CLI (both keys sign) keeps the same address.
    let bound = run(&[
        "rewards",
        "bind",
        "--key",
        wallet.to_str().unwrap(),
        "--as",
        "consumer1",
    ]);
    assert!(bound.contains(&addr) && bound.contains("bound"), "{bound}");

    let key_file = net.join(format!("orgs/producer/codes/{gtin}-LJ2026A.key"));
    // Unit codes `from..=to` of the good lot, issued offline with the batch key.
    let issue = |from: &str, to: &str| -> Vec<String> {
        qcss_ok(
            dir,
            &[
                "codes",
                "issue",
                "--batch",
                &format!("{gtin}/LJ2026A"),
                "--from",
                from,
                "--to",
                to,
                "--key",
                key_file.to_str().unwrap(),
                "--base",
                "https://q.example.com",
            ],
        )
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
    };
    // A second unit of the good lot.
    let other = issue("9", "9").remove(0);
    fn evaluate<'a>(code: &'a str, who: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "uces",
            "evaluate",
            code,
            "--overall",
            "5",
            "--quality",
            "4",
            "--performance",
            "5",
            "--authenticity",
            "5",
        ];
        a.extend(who);
        a
    }

    // ------------------------------------------------ refusals before a claim
    let e = refuse(&evaluate(&good, &["--as", "consumer1"]));
    assert!(e.contains("you have not claimed unit"), "{e}");
    run(&[
        "scan",
        "--claim",
        &good,
        "--location",
        "Hangzhou",
        "--as",
        "consumer1",
    ]);
    let e = refuse(&evaluate(&good, &["--as", "user1"]));
    assert!(e.contains("consumer"), "{e}");
    assert_eq!(me()["valid"], 0);

    // ------------------------------------------------ a valid evaluation
    // With a photo, which the producer's peer serves as a public file.
    let photo = dir.join("bottle.png");
    std::fs::write(&photo, b"\x89PNG\r\n\x1a\n a photo of bottle 1").unwrap();
    let photo = photo.to_str().unwrap();
    run(&[
        "files",
        "put",
        photo,
        "--public",
        "--media-type",
        "image/png",
        "--org",
        "producer",
    ]);
    let photo_sha = qcss_network::signing::sha256(&std::fs::read(photo).unwrap());
    let photo_sha = hex::encode(photo_sha);
    let mut with_photo = evaluate(&good, &["--as", "consumer1", "--photo"]);
    with_photo.push(photo);
    let v: Value = serde_json::from_str(&run(&with_photo)).unwrap();
    assert_eq!(v["status"], "pending", "{v}");
    let e = refuse(&evaluate(&good, &["--as", "consumer1"]));
    assert!(e.contains("already evaluated"), "{e}");
    let e = refuse(&["uces", "vote", &good, "--approve", "--org", "lab"]);
    assert!(e.contains("is not a validator"), "{e}");
    let v: Value = serde_json::from_str(&run(&[
        "uces",
        "vote",
        &good,
        "--approve",
        "--org",
        "regulator",
    ]))
    .unwrap();
    assert_eq!(v["status"], "valid", "{v}");
    let e = refuse(&["uces", "vote", &good, "--reject", "--org", "regulator"]);
    assert!(e.contains("already"), "{e}");
    let m = me();
    assert_eq!(
        (m["valid"].as_u64(), m["credit"].as_u64()),
        (Some(1), Some(105)),
        "{m}"
    );
    let shown: Value = serde_json::from_str(&run(&["uces", "show", &good])).unwrap();
    assert_eq!(shown["status"], "valid", "{shown}");
    assert!(
        shown.get("author").is_none(),
        "no identity on public reads: {shown}"
    );

    // The coefficient moves with it, the same at every org's peer.
    let after = coefficient("producer");
    assert!(after > before, "coefficient {before} -> {after}");
    for org in ["lab", "regulator", "logistics"] {
        assert_eq!(coefficient(org), after, "{org}'s peer");
    }
    // The verify page shows it: the index, the coefficient with its one
    // valid evaluation, a bar per term and the trend.
    let web = info["orgs"][0]["web"].as_str().unwrap();
    let (status, page) = qcss_tests::http_get(web, &good[good.find("/01/").unwrap()..]).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("id=\"qcss-index\""), "{page}");
    assert!(page.contains("from 1 valid evaluation<"), "{page}");
    assert_eq!(page.matches("class=\"term\"").count(), 5, "{page}");
    assert!(page.contains("<polyline"), "{page}");
    // And the valid evaluation, with its photo shown from this peer's
    // store, marked as matching the hash on the ledger.
    assert!(page.contains("id=\"evaluation\""), "{page}");
    assert!(
        page.contains(&format!(
            "<img class=\"photo\" src=\"/files/sha256/{photo_sha}\""
        )),
        "{page}"
    );
    assert!(page.contains("✓ hash verified"), "{page}");

    // ------------------------------------------------ a rejected evaluation
    run(&[
        "scan",
        "--claim",
        &other,
        "--location",
        "Hangzhou",
        "--as",
        "consumer1",
    ]);
    run(&evaluate(&other, &["--as", "consumer1"]));
    let v: Value = serde_json::from_str(&run(&[
        "uces",
        "vote",
        &other,
        "--reject",
        "--org",
        "regulator",
    ]))
    .unwrap();
    assert_eq!(v["status"], "rejected", "{v}");
    let m = me();
    assert_eq!(
        (
            m["valid"].as_u64(),
            m["rejected"].as_u64(),
            m["credit"].as_u64()
        ),
        (Some(1), Some(1), Some(75)),
        "penalty: credit 105 - 30: {m}"
    );
    assert_eq!(
        coefficient("producer"),
        after,
        "a rejected evaluation does not count"
    );

    // ------------------------------------------------ rewards on the public chain
    // Points: the demo's first scan (1), the first claim of unit 9 (1), the
    // valid evaluation (5); the claim of unit 5 was not a first scan, and
    // the rejected evaluation earns nothing. 1 QCSS a point.
    let want = 7 * QCSS;
    let paid = wait_for(240, "7 QCSS of rewards locked on the public chain", || {
        let l = locked(&node, &addr);
        assert!(l <= want, "paid {l} > {want}: paid twice?");
        (l == want).then_some(l)
    });
    assert_eq!(paid, want);
    // Matured after 21 slots (at most three more): withdraw once.
    wait_for(120, "the rewards to mature", || {
        let a = json(&node, &format!("/v1/account/{addr}"));
        (a["matured"].as_u64() == Some(want)).then_some(())
    });
    let liquid = |a: &Value| a["account"]["balance"].as_u64().unwrap_or(0);
    let before_w = liquid(&json(&node, &format!("/v1/account/{addr}")));
    let w = run(&["wallet", "withdraw", "--key", wallet.to_str().unwrap()]);
    assert!(w.contains("withdrawing 7.00000000 QCSS"), "{w}");
    let after_w = liquid(&json(&node, &format!("/v1/account/{addr}")));
    assert!(after_w > before_w + 6 * QCSS, "{before_w} -> {after_w}");

    // ------------------------------------------------ an epoch paid in two parts
    let logistics = net.join("orgs/logistics");
    let ca = info["orgs"][3]["ca"].as_str().unwrap();
    let ca_conn = ["--url", ca, "--tls-root", "ca/tls-ca-cert.pem"];
    let mut reg = vec![
        "ca",
        "register",
        "--identity",
        "admin",
        "--name",
        "consumer2",
        "--role",
        "client",
        "--kind",
        "consumer",
        "--attr",
        "real_name=verified",
    ];
    reg.extend(ca_conn);
    let secret = qcss_ok(&logistics, &reg);
    let mut enroll = vec![
        "ca",
        "enroll",
        "--name",
        "consumer2",
        "--secret",
        secret.trim(),
        "--out",
        "consumer2",
        "--tls-hosts",
        "localhost",
    ];
    enroll.extend(ca_conn);
    qcss_ok(&logistics, &enroll);
    let wallet2 = net.join("consumer2-wallet.json");
    qcss_ok(dir, &["wallet", "new", "--key", wallet2.to_str().unwrap()]);
    let addr2 = key(&wallet2).address().to_string();
    run(&[
        "rewards",
        "bind",
        "--key",
        wallet2.to_str().unwrap(),
        "--as",
        "consumer2",
    ]);
    let fresh = issue("10", "11");
    assert_eq!(fresh.len(), 2, "{fresh:?}");
    // Both first scans in one epoch: start right after an epoch begins.
    let epoch_slots = json(&node, "/v1/status")["reward_epoch_slots"]
        .as_u64()
        .unwrap();
    let slot = || json(&node, "/v1/status")["head_slot"].as_u64().unwrap();
    let two = wait_for(120, "the start of a reward epoch", || {
        let s = slot();
        (s % epoch_slots < 10).then_some(s / epoch_slots)
    });
    for (code, who) in [(&fresh[0], "consumer1"), (&fresh[1], "consumer2")] {
        run(&["scan", code, "--location", "Hangzhou", "--as", who]);
    }
    assert_eq!(slot() / epoch_slots, two, "both scans within one epoch");
    wait_for(240, "1 QCSS locked for each consumer", || {
        (locked(&node, &addr) == QCSS && locked(&node, &addr2) == QCSS).then_some(())
    });
    // Every peer splits that epoch into two parts of one entry each.
    let peers: Vec<String> = info["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["web"].as_str().unwrap().to_owned())
        .collect();
    for p in &peers {
        let part = |n: u32| json(p, &format!("/api/rewards/sign?chain_epoch={two}&part={n}"));
        let (p0, p1) = (part(0), part(1));
        assert_eq!(
            (p0["parts"].as_u64(), p1["parts"].as_u64()),
            (Some(2), Some(2)),
            "{p0}"
        );
        let mut got = vec![
            p0["entries"][0][0].as_str().unwrap().to_owned(),
            p1["entries"][0][0].as_str().unwrap().to_owned(),
        ];
        assert_eq!(p0["entries"].as_array().unwrap().len(), 1, "{p0}");
        assert!(got[0] < got[1], "parts in address order");
        got.sort();
        let mut want = vec![
            hex::encode(consumer.address().0),
            hex::encode(key(&wallet2).address().0),
        ];
        want.sort();
        assert_eq!(got, want);
        let (s, body) =
            qcss_tests::http_get(p, &format!("/api/rewards/sign?chain_epoch={two}&part=2"))
                .unwrap();
        assert!(
            s == 400 && body.contains("part 2 of an epoch in 2 parts"),
            "{s} {body}"
        );
    }

    // ------------------------------------------------ replay and under-signed
    // The bridge stops here: the next epoch is driven by hand.
    let pids: Value =
        serde_json::from_slice(&std::fs::read(net.join("pids.json")).unwrap()).unwrap();
    let pid = pids["anchor"].as_u64().expect("bridge pid");
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let view = json(&node, &format!("/v1/consortium/{cid}"));
    let last_paid = view["consortium"]["rewards"]["last_paid_epoch"]
        .as_u64()
        .expect("an epoch paid");
    let keys: Vec<Address> =
        serde_json::from_value(view["consortium"]["keys"].clone()).expect("keys");
    let batch_of = |s: &[&Value]| -> RewardBatch {
        let first = s[0];
        let entries = first["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let mut a = [0u8; 32];
                hex::decode_to_slice(e[0].as_str().unwrap(), &mut a).unwrap();
                RewardEntry {
                    address: Address(a),
                    amount: e[1].as_u64().unwrap(),
                }
            })
            .collect();
        let sigs = s
            .iter()
            .map(|x| {
                let mut k = [0u8; 32];
                hex::decode_to_slice(x["key"].as_str().unwrap(), &mut k).unwrap();
                let index = keys.iter().position(|r| r.0 == k).expect("key registered");
                let mut sig = [0u8; 64];
                hex::decode_to_slice(x["sig"].as_str().unwrap(), &mut sig).unwrap();
                (index as u16, Sig(sig))
            })
            .collect();
        RewardBatch {
            consortium_id: serde_json::from_value(first["consortium_id"].clone()).unwrap(),
            epoch: first["chain_epoch"].as_u64().unwrap(),
            part: first["part"].as_u64().unwrap() as u32,
            parts: first["parts"].as_u64().unwrap() as u32,
            entries,
            digest: serde_json::from_value::<Hash32>(first["digest"].clone()).unwrap(),
            sigs,
        }
    };
    let sign_all = |epoch: u64| -> Vec<Value> {
        peers
            .iter()
            .map(|p| json(p, &format!("/api/rewards/sign?chain_epoch={epoch}")))
            .collect()
    };
    let payer = key(&net.join("chain/keys/bridge.json"));
    // Replay: the paid epoch again, signed by every org.
    let signed = sign_all(last_paid);
    let all: Vec<&Value> = signed.iter().collect();
    let (s, body) = chain_submit(&node, &payer, TxKind::RewardBatch(Box::new(batch_of(&all))));
    assert!(
        s >= 400 && body.contains("already paid"),
        "replay: {s} {body}"
    );
    // The next epoch, once over, computed on the ledger by hand.
    let next = last_paid + 1;
    let sched = json(&peers[0], "/api/rewards/schedule");
    let e = next - sched["first_chain_epoch"].as_u64().unwrap();
    wait_for(150, "the next reward epoch to end", || {
        let st = json(&node, "/v1/status");
        (st["head_slot"].as_u64().unwrap() >= (next + 1) * epoch_slots).then_some(())
    });
    run(&[
        "tx",
        "invoke",
        "--chaincode",
        "traceability",
        "--fn",
        "rewards_epoch",
        "--args",
        &format!("[\"{{\\\"epoch\\\": {e}}}\"]"),
    ]);
    let signed = wait_for(60, "every peer to sign the next epoch", || {
        let v: Vec<Value> = peers
            .iter()
            .map(|p| qcss_tests::get_json(p, &format!("/api/rewards/sign?chain_epoch={next}"), 30))
            .collect();
        v.iter().all(|x| x["sig"].is_string()).then_some(v)
    });
    let (s, body) = chain_submit(
        &node,
        &payer,
        TxKind::RewardBatch(Box::new(batch_of(&[&signed[0]]))),
    );
    assert!(
        s >= 400 && body.contains("valid signatures from distinct keys, got 1"),
        "under-signed: {s} {body}"
    );
    // A part the chain does not expect next is refused before any signature
    // is looked at.
    let st = json(&node, "/v1/status");
    let chain_id: Hash32 = serde_json::from_value(st["chain_id"].clone()).unwrap();
    let mut early = batch_of(&[&signed[0]]);
    (early.part, early.parts, early.sigs) = (1, 2, Vec::new());
    early.digest = early.compute_digest(&chain_id);
    let (s, body) = chain_submit(&node, &payer, TxKind::RewardBatch(Box::new(early)));
    assert!(
        s >= 400 && body.contains(&format!("expected part 0 of epoch {next}")),
        "out of order: {s} {body}"
    );
    // A batch asking more than the epoch's budget is refused before any
    // signature is looked at (the amounts come from the ledger; here one
    // consumer is given the whole budget and one base unit more).
    let budget = st["reward_epoch_budget"].as_u64().unwrap();
    let mut greedy = batch_of(&[&signed[0]]);
    greedy.entries = vec![RewardEntry {
        address: consumer.address(),
        amount: budget + 1,
    }];
    greedy.sigs = Vec::new();
    greedy.digest = greedy.compute_digest(&chain_id);
    let (s, body) = chain_submit(&node, &payer, TxKind::RewardBatch(Box::new(greedy)));
    assert!(
        s >= 400
            && body.contains(&format!(
                "budget {budget}, paid 0, batch asks {}",
                budget + 1
            )),
        "over budget: {s} {body}"
    );
    // Nothing was paid for it; nothing more than earned for the consumers.
    let view = json(&node, &format!("/v1/consortium/{cid}"));
    assert_eq!(
        view["consortium"]["rewards"]["last_paid_epoch"].as_u64(),
        Some(last_paid)
    );
    assert_eq!((locked(&node, &addr), locked(&node, &addr2)), (QCSS, QCSS));
    let e = refuse(&["wallet", "withdraw", "--key", wallet.to_str().unwrap()]);
    assert!(
        e.contains("nothing") || e.contains("next withdrawal"),
        "{e}"
    );
}
