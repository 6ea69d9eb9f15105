//! Anchoring end to end on `qcss network up --demo` (consortium, public
//! chain and the bridge as real processes on 127.0.0.1):
//!
//! - the bridge anchors; a proof of a consortium transaction verifies
//!   offline, and a proof tampered in any step fails naming that step;
//! - the bridge killed after signing, after submitting and after its
//!   receipt resumes without a gap or a duplicate seq;
//! - the public chain refuses an under-signed anchor, an out-of-sequence
//!   anchor and a rewritten history even when every org signs it;
//! - `anchor audit` re-checks every anchor, and against a peer whose history
//!   differs (an adversary serving forged roots) names the first block.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use qcss_anchor::Hash32;
use qcss_anchor::mmr::{ConsistencyProof, MemStore};
use qcss_anchor::statement::{MMR, Statement, block_leaf};
use qcss_dpos::address::{Keypair, Sig};
use qcss_dpos::tx::{AnchorTx, TxKind};
use qcss_tests::{NetworkDown, demo_codes, http_get, qcss, qcss_bin, qcss_err, qcss_ok};
use serde_json::{Value, json};

/// GETs JSON; a peer's web port rate-limits per IP, so a 429 waits and retries.
fn json(addr: &str, path: &str) -> Value {
    qcss_tests::get_json(addr, path, 30)
}

fn key(path: &Path) -> Keypair {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut s = [0u8; 32];
    hex::decode_to_slice(v["secret"].as_str().unwrap(), &mut s).unwrap();
    Keypair::from_secret(s)
}

/// Signs and posts `kind` from `payer`; the node's answer.
fn submit(node: &str, payer: &Keypair, kind: TxKind) -> (u16, String) {
    qcss_tests::chain_submit(node, payer, kind)
}

/// Runs the bridge once, until it anchored or found nothing new (a round
/// right after a crash may meet its own earlier transaction and fail).
fn bridge_once(net: &Path, failpoint: Option<&str>) -> std::process::Output {
    let mut c = std::process::Command::new(qcss_bin());
    c.current_dir(net)
        .args(["anchor", "start", "--config", "anchor.toml", "--once"]);
    if let Some(f) = failpoint {
        c.env("QCSS_ANCHOR_FAILPOINT", f);
    }
    c.output().expect("run the bridge")
}

fn settle(net: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = bridge_once(net, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && (text.contains("anchored seq") || text.contains("nothing new")) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the bridge does not settle: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// New consortium blocks: consumer scans of a demo code.
fn new_blocks(dir: &Path, code: &str, n: usize) {
    for _ in 0..n {
        qcss_ok(
            dir,
            &[
                "scan",
                code,
                "--location",
                "Hangzhou",
                "--dir",
                "net",
                "--org",
                "logistics",
                "--as",
                "consumer1",
            ],
        );
    }
}

fn last_anchor(node: &str, cid: &str) -> Value {
    json(node, &format!("/v1/consortium/{cid}"))["consortium"]["last"].clone()
}

/// The MMR of the honest peer's first `size` blocks with block `fork_at`'s
/// hash changed: a rewritten history.
fn rewritten_history(honest: &str, fork_at: u64, size: u64) -> MemStore {
    let mut forged = MemStore::default();
    for n in 0..size {
        let v = json(
            honest,
            &format!("/api/anchor/inclusion?block={n}&size={}", n + 1),
        );
        let mut h: [u8; 32] = v["block_hash"]
            .as_str()
            .unwrap()
            .parse::<Hash32>()
            .unwrap()
            .0;
        if n == fork_at {
            h[0] ^= 0xff;
        }
        forged.append(&MMR, block_leaf(n, &Hash32(h)));
    }
    forged
}

/// A peer that lies: it serves the honest roots for sizes up to `fork_at`
/// and roots over a history whose block `fork_at` was rewritten after.
fn forged_peer(honest: &str, fork_at: u64, upto: u64) -> String {
    let forged = rewritten_history(honest, fork_at, upto);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(&s);
            if r.read_line(&mut line).is_err() {
                continue;
            }
            // Read the rest of the head before answering.
            let mut rest = String::new();
            while r.read_line(&mut rest).is_ok_and(|n| n > 2) {
                rest.clear();
            }
            let size: u64 = line
                .split("size=")
                .nth(1)
                .and_then(|x| x.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let peaks: Vec<Hash32> = qcss_anchor::mmr::peak_positions(size)
                .into_iter()
                .filter_map(|p| forged.nodes.get(&p).copied())
                .collect();
            let body = format!(r#"{{"size":{size},"root":"{}"}}"#, MMR.bag(&peaks));
            let _ = write!(
                &s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn anchors_proofs_crash_safety_refusals_and_audit() {
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
        ],
    );
    assert!(out.contains("anchoring bridge running"), "{out}");
    let good = demo_codes(&out)[0].clone();
    let info: Value =
        serde_json::from_slice(&std::fs::read(net.join("network.json")).unwrap()).unwrap();
    let web = info["orgs"][0]["web"].as_str().unwrap().to_owned();
    let node = info["chain"]["nodes"][0]["api"]
        .as_str()
        .unwrap()
        .to_owned();
    let cid = info["chain"]["anchor"]["consortium_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // ------------------------------------------------ the running bridge anchors
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(net.join("anchor-receipts.jsonl"))
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no anchor within 120 s");
        std::thread::sleep(Duration::from_secs(1));
    }
    // Stop it: the rest of the test drives the bridge step by step.
    let pids: Value =
        serde_json::from_slice(&std::fs::read(net.join("pids.json")).unwrap()).unwrap();
    let pid = pids["anchor"].as_u64().expect("bridge pid");
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    settle(&net);

    // ------------------------------------------------ where users see it
    // Every peer, not just this one: `qcss trace` below asks the lab's.
    let deadline = Instant::now() + Duration::from_secs(60);
    for org in info["orgs"].as_array().unwrap() {
        let w = org["web"].as_str().unwrap();
        while json(w, "/api/anchor/status")["anchored"]["irreversible"].is_null() {
            assert!(
                Instant::now() < deadline,
                "the peer at {w} never reads the anchor from the chain"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let trace = qcss_ok(dir, &["trace", &good, "--dir", "net"]);
    assert!(trace.contains("Anchored: blocks 0…"), "{trace}");
    let page_path = &good[good.find("/01/").unwrap()..];
    let (s, page) = http_get(&web, page_path).unwrap();
    assert_eq!(s, 200);
    assert!(
        page.contains("id=\"anchored\"") && page.contains("anchored on the public QCSS chain"),
        "{page}"
    );
    // Each event says whether it is anchored; anchored ones link their proof.
    assert!(page.contains("class=\"tag anchored\""), "{page}");
    let link = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|l| l.starts_with("/api/anchor/proof?id="))
        .expect("a proof link on the verify page")
        .to_owned();
    let ops = info["orgs"][0]["peer_ops"].as_str().unwrap();
    let (_, metrics) = http_get(ops, "/metrics").unwrap();
    let anchored_blocks = metrics
        .lines()
        .find_map(|l| l.strip_prefix("qcss_peer_anchored_blocks "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("qcss_peer_anchored_blocks");
    assert!(anchored_blocks > 0.0, "{metrics}");
    assert!(
        metrics.contains("qcss_peer_anchor_lag_blocks "),
        "{metrics}"
    );
    assert!(
        metrics.contains("qcss_peer_anchor_mmr_seconds_total "),
        "{metrics}"
    );

    // ------------------------------------------------ proof and offline verification
    let anchored = last_anchor(&node, &cid)["mmr_size"].as_u64().unwrap();
    let block = json(&web, &format!("/api/block/{}", anchored - 1));
    let tx_id = block["transactions"][0]["tx_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Irreversible before proving (the bridge waited for it).
    qcss_ok(
        &net,
        &[
            "anchor",
            "checkpoint",
            "--node",
            &node,
            "--genesis",
            "chain/genesis.json",
            "--out",
            "cp.json",
        ],
    );
    let said = qcss_ok(
        &net,
        &[
            "anchor",
            "prove",
            &tx_id,
            "--peer",
            &web,
            "--node",
            &node,
            "--out",
            "proof.json",
        ],
    );
    assert!(said.contains("proof of"), "{said}");
    let verdict = qcss_ok(
        &net,
        &[
            "anchor",
            "verify",
            "proof.json",
            "--public-checkpoint",
            "cp.json",
        ],
    );
    assert!(verdict.starts_with("VALID"), "{verdict}");
    assert!(
        verdict.contains(&format!("consortium block {}", anchored - 1)),
        "{verdict}"
    );
    // The verify page's download is the same proof format, checked offline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let downloaded = loop {
        let (s, body) = http_get(&web, &link).unwrap();
        if s == 200 {
            break body;
        }
        assert!(s == 409 && Instant::now() < deadline, "{link}: {s} {body}");
        std::thread::sleep(Duration::from_secs(1));
    };
    std::fs::write(net.join("page-proof.json"), &downloaded).unwrap();
    let verdict = qcss_ok(
        &net,
        &[
            "anchor",
            "verify",
            "page-proof.json",
            "--public-checkpoint",
            "cp.json",
        ],
    );
    assert!(verdict.starts_with("VALID"), "{link}: {verdict}");
    let proof: Value =
        serde_json::from_slice(&std::fs::read(net.join("proof.json")).unwrap()).unwrap();
    let flip = |v: &mut Value| {
        let s = v.as_str().unwrap().to_owned();
        let i = s.len() / 2;
        let c = if &s[i..=i] == "0" { "1" } else { "0" };
        *v = Value::String(format!("{}{c}{}", &s[..i], &s[i + 1..]));
    };
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut p = proof.clone();
    flip(&mut p["consortium"]["envelope"]);
    cases.push(("consortium-tx", p));
    let mut p = proof.clone();
    flip(&mut p["consortium"]["header"]["data_hash"]);
    cases.push(("consortium-tx", p));
    let mut p = proof.clone();
    p["consortium"]["header"]["number"] = Value::from(anchored + 5);
    cases.push(("mmr", p));
    let mut p = proof.clone();
    if p["mmr"]["path"].as_array().unwrap().is_empty() {
        flip(&mut p["mmr"]["peaks"][0]);
    } else {
        flip(&mut p["mmr"]["path"][0]);
    }
    cases.push(("mmr", p));
    let mut p = proof.clone();
    flip(&mut p["anchor"]["tx"]);
    cases.push(("anchor-tx", p));
    let mut p = proof.clone();
    p["anchor"]["quorum"] = Value::from(4);
    p["anchor"]["keys"].as_array_mut().unwrap().swap(0, 1);
    cases.push(("anchor-tx", p));
    let mut p = proof.clone();
    flip(&mut p["public"]["block"]["sig"]);
    cases.push(("public-block", p));
    // `network up` runs finality votes: irreversibility is shown by a
    // certificate (a quorum of votes on the link from the last header to
    // its child), not by the headers of 21 producers.
    assert!(verdict.contains("by finality votes"), "{verdict}");
    let votes = proof["public"]["certificate"]["votes"].as_array().unwrap();
    assert!(votes.len() >= 21, "{} votes", votes.len());
    let mut p = proof.clone();
    p["public"]["certificate"]["votes"]
        .as_array_mut()
        .unwrap()
        .truncate(20);
    cases.push(("irreversible", p));
    let mut p = proof.clone();
    flip(&mut p["public"]["certificate"]["votes"][3][1]);
    p["public"]["certificate"]["votes"]
        .as_array_mut()
        .unwrap()
        .truncate(21);
    cases.push(("irreversible", p));
    let mut p = proof.clone();
    flip(&mut p["public"]["certificate"]["target"]["sig"]);
    cases.push(("irreversible", p));
    let mut p = proof.clone();
    p["public"]["certificate"]["votes"][1] = p["public"]["certificate"]["votes"][0].clone();
    cases.push(("irreversible", p));
    // Without the certificate, the few headers it needs are far from the
    // 21 producers production-implied irreversibility asks for.
    let mut p = proof.clone();
    p["public"].as_object_mut().unwrap().remove("certificate");
    cases.push(("irreversible", p));
    for (i, (step, p)) in cases.iter().enumerate() {
        let f = net.join(format!("tampered-{i}.json"));
        std::fs::write(&f, serde_json::to_vec(p).unwrap()).unwrap();
        let out = qcss(
            &net,
            &[
                "anchor",
                "verify",
                f.to_str().unwrap(),
                "--public-checkpoint",
                "cp.json",
            ],
        );
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "tampered proof {i} passed");
        assert!(
            text.contains(&format!("step {step} failed")),
            "case {i}: want step {step}: {text}"
        );
    }

    // ------------------------------------------------ crash at every step, resume
    for fp in ["after-sign", "after-submit", "after-receipt"] {
        new_blocks(dir, &good, 2);
        let out = bridge_once(&net, Some(fp));
        assert_eq!(
            out.status.code(),
            Some(86),
            "failpoint {fp}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        settle(&net);
    }
    let last = last_anchor(&node, &cid);
    let seq = last["seq"].as_u64().unwrap();
    assert!(seq >= 3, "{last}");
    // No gap and no duplicate: the audit walks every seq back to 0.
    let audit = qcss_ok(
        &net,
        &[
            "anchor",
            "audit",
            "--consortium",
            &cid,
            "--node",
            &node,
            "--peer",
            &web,
        ],
    );
    assert!(
        audit.contains(&format!("{} anchors (seq 0…{seq})", seq + 1)),
        "{audit}"
    );
    assert!(audit.contains("matches every anchor"), "{audit}");
    let receipts: Vec<u64> = std::fs::read_to_string(net.join("anchor-receipts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        receipts.windows(2).all(|w| w[0] < w[1]),
        "receipts {receipts:?}"
    );

    // ------------------------------------------------ receipts on the ledger
    // Each bridge round records the newest irreversible anchor's receipt
    // through the Gateway (system chaincode `_anchor`, endorsed by a majority
    // of orgs' peers, each checking it against its own ledger and what it
    // saw on the public chain).
    let query = |f: &str, args: &str| {
        qcss(
            dir,
            &[
                "tx",
                "query",
                "--dir",
                "net",
                "--chaincode",
                "_anchor",
                "--fn",
                f,
                "--args",
                args,
            ],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let ledger = loop {
        let out = bridge_once(&net, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let listed = query("ListReceipts", "[]");
        let list: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap_or_default();
        if list.last().is_some_and(|r| r["seq"] == seq) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "no receipt of seq {seq} on the ledger: {text}{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&listed.stderr)
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    // Nothing else happens, so the receipt's block is not anchored (that
    // would make another receipt, forever), once the peers indexed it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = bridge_once(&net, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && !text.contains("anchored seq"),
            "{text}"
        );
        if text.contains("only anchor receipts") {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let newest = ledger.last().unwrap();
    assert_eq!(newest["mmr_size"], last["mmr_size"], "{newest} vs {last}");
    assert_eq!(newest["mmr_root"], last["mmr_root"], "{newest} vs {last}");
    assert_eq!(
        newest["public_height"], last["height"],
        "{newest} vs {last}"
    );
    let got = query("GetReceipt", &format!("[\"{seq}\"]"));
    assert!(got.status.success(), "{got:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&got.stdout).unwrap(),
        *newest
    );
    // A receipt the peers did not see on the chain, a forged root, and a
    // second receipt for the same anchor are refused at endorsement.
    let record = |r: &Value| {
        qcss_err(
            dir,
            &[
                "tx",
                "invoke",
                "--dir",
                "net",
                "--chaincode",
                "_anchor",
                "--fn",
                "RecordReceipt",
                "--args",
                &json!([r.to_string()]).to_string(),
            ],
        )
    };
    let mut r = newest.clone();
    let said = record(&r);
    assert!(said.contains("already recorded"), "{said}");
    r["seq"] = Value::from(seq + 100);
    let said = record(&r);
    assert!(said.contains("has not seen anchor seq"), "{said}");
    let mut r = newest.clone();
    let root = r["mmr_root"].as_str().unwrap();
    r["mmr_root"] = Value::from(format!(
        "{}{}",
        if root.starts_with('0') { "1" } else { "0" },
        &root[1..]
    ));
    let said = record(&r);
    assert!(said.contains("MMR root over blocks"), "{said}");

    // Having seen several anchors come, the peer says when the next is due.
    let status = json(&web, "/api/anchor/status");
    assert!(status["anchored"]["next_due_secs"].is_u64(), "{status}");
    let (_, page) = http_get(&web, page_path).unwrap();
    assert!(page.contains("The next anchor is due in about"), "{page}");

    // ------------------------------------------------ the public chain refuses
    let org_keys: Vec<Keypair> = ["producer", "lab", "regulator", "logistics"]
        .iter()
        .map(|o| key(&net.join(format!("orgs/{o}/anchor-key.json"))))
        .collect();
    let payer = key(&net.join("chain/keys/bridge.json"));
    let prev_size = last["mmr_size"].as_u64().unwrap();
    let prev_root: Hash32 = serde_json::from_value(last["mmr_root"].clone()).unwrap();
    new_blocks(dir, &good, 1);
    // The scan committed at logistics' peer; org 0's peer may not have it yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = json(&web, "/api/anchor/status");
        if status["mmr_size"].as_u64().unwrap() > prev_size {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{web} never indexed a block past {prev_size}: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let size = status["mmr_size"].as_u64().unwrap();
    let root: Hash32 = serde_json::from_value(status["mmr_root"].clone()).unwrap();
    // Every ordered block certifies, in the metadata the orderers sign, the
    // root over the blocks before it: the peer's root is the orderers' too.
    for n in [1, size / 2, size - 1] {
        let r = json(&web, &format!("/api/anchor/root?size={n}"));
        assert_eq!(r["certified_in_block"], r["root"], "block {n}: {r}");
    }
    let consistency: ConsistencyProof = serde_json::from_value(json(
        &web,
        &format!("/api/anchor/consistency?from={prev_size}&to={size}"),
    ))
    .unwrap();
    let last_hash = json(
        &web,
        &format!("/api/anchor/inclusion?block={}&size={size}", size - 1),
    )["block_hash"]
        .as_str()
        .unwrap()
        .parse::<Hash32>()
        .unwrap();
    let cid_hash: Hash32 = cid.parse().unwrap();
    let make = |seq: u64, root: Hash32, consistency: ConsistencyProof, signers: &[usize]| {
        let statement = Statement {
            consortium_id: cid_hash,
            seq,
            mmr_size: size,
            mmr_root: root,
            last_block_hash: last_hash,
            prev_size,
            prev_root,
        };
        let d = statement.digest();
        let sigs: Vec<(u16, Sig)> = signers
            .iter()
            .map(|&i| (i as u16, org_keys[i].sign(&d)))
            .collect();
        TxKind::Anchor(Box::new(AnchorTx {
            statement,
            consistency,
            sigs,
            prev_anchor_height: last["height"].as_u64().unwrap(),
        }))
    };
    let (s, body) = submit(
        &node,
        &payer,
        make(seq + 1, root, consistency.clone(), &[0, 1]),
    );
    assert_eq!(s, 422, "under-signed: {body}");
    assert!(body.contains("needs 3 valid signatures"), "{body}");
    let (s, body) = submit(
        &node,
        &payer,
        make(seq + 2, root, consistency.clone(), &[0, 1, 2, 3]),
    );
    assert_eq!(s, 422, "out of sequence: {body}");
    assert!(body.contains("is not the next"), "{body}");
    // Every org colludes to anchor a history whose block 2 was rewritten.
    let rewritten = rewritten_history(&web, 2, size);
    let forged_proof = ConsistencyProof::build(&rewritten, &MMR, prev_size, size).unwrap();
    let (s, body) = submit(
        &node,
        &payer,
        make(
            seq + 1,
            rewritten.peaks.root(&MMR),
            forged_proof,
            &[0, 1, 2, 3],
        ),
    );
    assert_eq!(s, 422, "rewritten history: {body}");
    assert!(body.contains("does not extend"), "{body}");
    // The honest anchor with the quorum is accepted.
    let (s, body) = submit(&node, &payer, make(seq + 1, root, consistency, &[1, 2, 3]));
    assert_eq!(s, 200, "honest anchor: {body}");

    // ------------------------------------------------ audit names the rewritten block
    let liar = forged_peer(&web, 3, prev_size);
    let out = qcss(
        &net,
        &[
            "anchor",
            "audit",
            "--consortium",
            &cid,
            "--node",
            &node,
            "--peer",
            &liar,
            "--reference",
            &web,
        ],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "audit passed a forged history");
    assert!(
        text.contains("block 3 is the first whose hash differs"),
        "{text}"
    );
}
