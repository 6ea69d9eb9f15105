//! The public QCSS chain as separate `qcss chain start` processes on
//! 127.0.0.1 with short slots: three nodes holding the 31 producer keys
//! (11/10/10) agree and finalize; the wallet moves tokens and every refusal
//! names its reason without changing state; a node killed and restarted
//! catches up from its peers; a keyless node started from scratch syncs the
//! whole chain; the API refuses garbage and oversize bodies. With finality
//! votes on, the same three processes finalize about a slot after
//! production.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qcss_tests::{NodeProc, free_port, http_get, http_post, qcss_err, qcss_ok};

struct ChainNode {
    name: String,
    config: PathBuf,
    api: String,
    ops: String,
    p2p: String,
}

fn json(addr: &str, path: &str) -> serde_json::Value {
    qcss_tests::get_json(addr, path, 0)
}

fn status(n: &ChainNode) -> serde_json::Value {
    json(&n.api, "/v1/status")
}

fn lib(n: &ChainNode) -> u64 {
    status(n)["lib_height"].as_u64().expect("lib_height")
}

fn block_id(n: &ChainNode, h: u64) -> String {
    json(&n.api, &format!("/v1/block/{h}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Polls every 100 ms until `cond`; fails after `secs` with `what`.
fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Three fresh addresses: peer-to-peer, API, operations.
fn ports() -> (String, String, String) {
    let a = || format!("127.0.0.1:{}", free_port());
    (a(), a(), a())
}

/// Writes a node configuration holding producer keys `keys` (1-based).
fn config(
    dir: &Path,
    name: &str,
    keys: &[usize],
    peers: &[&str],
    (p2p, api, ops): (String, String, String),
) -> ChainNode {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("\"keys/producer-{k:02}.json\""))
        .collect();
    // `host:port`, or a pinned entry given as TOML (`{ addr = …, cert_sha256 = … }`).
    let peers: Vec<String> = peers
        .iter()
        .map(|p| {
            if p.starts_with('{') {
                p.to_string()
            } else {
                format!("\"{p}\"")
            }
        })
        .collect();
    let toml = format!(
        "genesis = \"genesis.json\"\ndata_dir = \"{name}\"\nlisten = \"{p2p}\"\napi = \"{api}\"\nops = \"{ops}\"\npeers = [{}]\nproducer_keys = [{}]\n",
        peers.join(", "),
        keys.join(", ")
    );
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    ChainNode {
        name: name.into(),
        config,
        api,
        ops,
        p2p,
    }
}

fn start(n: &ChainNode, logs: &Path) -> NodeProc {
    NodeProc::start(
        &["chain", "start", "--config", n.config.to_str().unwrap()],
        "chain node ready",
        &logs.join(format!("{}.log", n.name)),
    )
}

/// A genesis in `d/chain` (300 ms slots, `extra` genesis flags) and the
/// configurations of three nodes holding the 31 keys dealt round-robin:
/// 11, 10 and 10. Ports first, so each configuration names the others.
fn three_nodes(d: &Path, extra: &[&str]) -> Vec<ChainNode> {
    let mut args = vec![
        "chain",
        "genesis",
        "--out",
        "chain",
        "--slot-ms",
        "300",
        "--start-in",
        "2",
    ];
    args.extend_from_slice(extra);
    qcss_ok(d, &args);
    let chain = d.join("chain");
    let addrs: Vec<_> = (0..3).map(|_| ports()).collect();
    let deal = |i: usize| -> Vec<usize> { (1..=31).filter(|k| (k - 1) % 3 == i).collect() };
    (0..3)
        .map(|i| {
            let others: Vec<&str> = addrs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| a.0.as_str())
                .collect();
            config(
                &chain,
                &format!("node{}", i + 1),
                &deal(i),
                &others,
                addrs[i].clone(),
            )
        })
        .collect()
}

#[test]
fn chain_nodes_finalize_move_tokens_refuse_bad_transactions_and_resync() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let chain = d.join("chain");
    // Production-implied finality (votes are the default; the next test).
    let nodes = three_nodes(d, &["--finality-votes=false"]);
    let mut procs: Vec<Option<NodeProc>> = nodes.iter().map(|n| Some(start(n, d))).collect();

    // Finality: 21 distinct producers must build on a block; each node
    // holds 10 or 11 keys, so it takes all three.
    wait_until(60, "every node to finalize 5 blocks", || {
        nodes.iter().all(|n| lib(n) >= 5)
    });
    let common = nodes.iter().map(lib).min().unwrap();
    let id = block_id(&nodes[0], common);
    for n in &nodes[1..] {
        assert_eq!(block_id(n, common), id, "{} disagrees at {common}", n.name);
    }
    for n in &nodes {
        let (s, body) = http_get(&n.ops, "/healthz").unwrap();
        assert_eq!(s, 200, "{} /healthz: {body}", n.name);
        let (_, m) = http_get(&n.ops, "/metrics").unwrap();
        assert!(m.contains("qcss_chain_irreversible_height "), "{m}");
    }

    // The wallet: fund a new account from the marketing bucket.
    let api = nodes[0].api.clone();
    let w = qcss_ok(d, &["wallet", "new", "--key", "w.json"]);
    let who = w.trim().to_owned();
    let out = qcss_ok(
        d,
        &[
            "wallet",
            "transfer",
            &who,
            "100",
            "--key",
            "chain/keys/marketing.json",
            "--node",
            &api,
        ],
    );
    assert!(out.contains("included"), "{out}");
    let acct = json(&api, &format!("/v1/account/{who}"));
    assert_eq!(acct["account"]["balance"], 100 * 100_000_000u64, "{acct}");

    // Refusals, each with its reason and no state change.
    let before = json(&api, &format!("/v1/account/{who}"));
    let e = qcss_err(
        d,
        &[
            "wallet", "transfer", &who, "1000", "--key", "w.json", "--node", &api,
        ],
    );
    assert!(e.contains("needs") && e.contains("but has"), "{e}");
    let mut typo = who.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'q' { 'p' } else { 'q' });
    let e = qcss_err(
        d,
        &[
            "wallet", "transfer", &typo, "1", "--key", "w.json", "--node", &api,
        ],
    );
    assert!(e.contains("checksum"), "{e}");
    let e = qcss_err(
        d,
        &[
            "wallet",
            "transfer",
            &who,
            "1",
            "--key",
            "w.json",
            "--node",
            &api,
            "--chain-id",
            &"00".repeat(32),
        ],
    );
    assert!(e.contains("wrong chain"), "{e}");
    let e = qcss_err(
        d,
        &[
            "wallet",
            "withdraw",
            "--key",
            "chain/keys/producer-01.json",
            "--node",
            &api,
        ],
    );
    // (whether the producer has earned a block reward yet depends on timing)
    assert!(
        (e.contains("nothing has unlocked yet") && e.contains("unlocks at slot"))
            || e.contains("has no locked rewards"),
        "{e}"
    );
    assert_eq!(json(&api, &format!("/v1/account/{who}")), before);

    // A replayed transaction: the funding transfer, resubmitted as it was.
    let hist = qcss_ok(d, &["wallet", "history", &who, "--node", &api, "--json"]);
    let hist: serde_json::Value = serde_json::from_str(&hist).unwrap();
    let stx: qcss_dpos::tx::SignedTx = serde_json::from_value(hist[0]["tx"].clone())
        .expect("history holds the signed transaction");
    let (s, body) = http_post(&api, "/v1/tx", hex_encode(&stx.encode()).as_bytes());
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("already used"), "{body}");
    // Garbage and oversize bodies.
    let (s, body) = http_post(&api, "/v1/tx", b"zz-not-hex");
    assert_eq!(s, 400, "{body}");
    let (s, body) = http_post(&api, "/v1/tx", b"00ff");
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("transaction"), "{body}");
    // Over the largest kind's limit (a reward batch, 512 KiB): refused
    // before it is read; under it but over a transfer's: refused by kind.
    let (s, _) = http_post(&api, "/v1/tx", &vec![b'0'; 3 << 20]);
    assert_eq!(s, 413);
    let (s, body) = http_post(&api, "/v1/tx", &vec![b'0'; 64 * 1024]);
    assert_eq!(s, 400, "{body}");
    let (s, body) = http_get(&api, "/v1/account/not-an-address").unwrap();
    assert_eq!(s, 400, "{body}");
    let (s, _) = http_get(&api, "/v1/headers?from=1&count=100000").unwrap();
    assert_eq!(s, 400);
    let headers = json(&api, "/v1/headers?from=1&count=3");
    assert_eq!(headers.as_array().map(Vec::len), Some(3), "{headers}");

    // The explorer: the funding transfer on the account's page and in its
    // block's; producers and candidates on the front page; search redirects.
    let included = hist[0]["height"].as_u64().expect("height");
    let (s, page) = http_get(&api, &format!("/explorer/account/{who}")).unwrap();
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("100.00000000 QCSS"), "{page}");
    assert!(page.contains("transfer 100.00000000 QCSS to"), "{page}");
    assert!(
        page.contains(&format!("href=\"/explorer/block/{included}\"")),
        "{page}"
    );
    let (s, page) = http_get(&api, &format!("/explorer/block/{included}")).unwrap();
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("transfer 100.00000000 QCSS"), "{page}");
    let (s, page) = http_get(&api, "/explorer").unwrap();
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("Active producers") && page.contains("Newest blocks"),
        "{page}"
    );
    let producer = &status(&nodes[0])["producers"][0]["address"];
    assert!(page.contains(producer.as_str().unwrap()), "{page}");
    let answer = raw_get(&api, &format!("/explorer/search?q={who}"));
    assert!(
        answer.starts_with("HTTP/1.1 303")
            && answer.contains(&format!("location: /explorer/account/{who}")),
        "{answer}"
    );
    for bad in [
        "/explorer/account/qcss1nope",
        "/explorer/block/x",
        "/explorer/block/99999999",
    ] {
        let (s, page) = http_get(&api, bad).unwrap();
        assert_eq!(s, 404, "{bad}: {page}");
        assert!(!page.contains("<script"), "{page}");
    }
    let (s, page) = http_get(&api, "/explorer/search?q=%3Cscript%3E").unwrap();
    assert_eq!(s, 404);
    assert!(!page.contains("<script>"), "{page}");

    // Kill node 3 (10 keys): the other 21 keys still finalize.
    procs[2].take().unwrap().kill9();
    let lib_before = lib(&nodes[0]);
    wait_until(60, "finality to go on without node 3", || {
        lib(&nodes[0]) >= lib_before + 10
    });
    // Restarted, it catches up from its peers.
    procs[2] = Some(start(&nodes[2], d));
    let target = lib(&nodes[0]);
    wait_until(60, "node 3 to catch up", || lib(&nodes[2]) >= target);
    assert_eq!(block_id(&nodes[2], target), block_id(&nodes[0], target));
    assert_eq!(
        json(&nodes[2].api, &format!("/v1/account/{who}"))["account"]["balance"],
        100 * 100_000_000u64
    );

    // A keyless node from scratch syncs the whole chain over TLS, from one
    // peer pinned to its certificate (made in its data directory on first
    // start) and one not pinned.
    let cert1 = qcss_dpos::p2p::TlsIdentity::load_or_create(&chain.join("node1"))
        .unwrap()
        .cert_sha256();
    let pinned = format!(
        "{{ addr = \"{}\", cert_sha256 = \"{cert1}\" }}",
        nodes[0].p2p
    );
    let fresh = config(&chain, "fresh", &[], &[&pinned, &nodes[1].p2p], ports());
    let _fresh = start(&fresh, d);
    let target = lib(&nodes[0]);
    wait_until(60, "the fresh node to sync", || lib(&fresh) >= target);
    assert_eq!(block_id(&fresh, target), block_id(&nodes[0], target));
    assert_eq!(block_id(&fresh, 1), block_id(&nodes[1], 1));
    assert!(
        status(&fresh)["local_producers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (_, m) = http_get(&fresh.ops, "/metrics").unwrap();
    assert!(
        m.contains("qcss_chain_p2p_dropped_links_total{reason=\"garbage\"} 0"),
        "{m}"
    );

    // Configuration mistakes are refused with their reason.
    let bad_pin = config(
        &chain,
        "bad-pin",
        &[],
        &[&format!(
            "{{ addr = \"{}\", cert_sha256 = \"abc\" }}",
            nodes[0].p2p
        )],
        ports(),
    );
    let e = qcss_err(
        d,
        &[
            "chain",
            "start",
            "--config",
            bad_pin.config.to_str().unwrap(),
        ],
    );
    assert!(e.contains("cert_sha256 must be 64 hex digits"), "{e}");
    let unknown = chain.join("unknown.toml");
    let text = std::fs::read_to_string(&fresh.config).unwrap() + "[p2p]\nmax_linkz = 3\n";
    std::fs::write(&unknown, text).unwrap();
    let e = qcss_err(
        d,
        &["chain", "start", "--config", unknown.to_str().unwrap()],
    );
    assert!(
        e.contains("unknown field") && e.contains("max_linkz"),
        "{e}"
    );
}

/// A GET's whole answer, head included.
fn raw_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// With finality votes (Casper FFG, dpos/README.md; the default) the same three
/// processes (11/10/10 keys, each node voting with every key it holds)
/// finalize a block about one slot after it is produced instead of ≈ 20
/// blocks behind; with the 10-key node killed the other 21 keys still
/// finalize; and a keyless node started from scratch finalizes too, though
/// it never saw the votes that justified the chain before it joined.
#[test]
fn finality_votes_finalize_blocks_about_a_slot_after_production() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let chain = d.join("chain");
    let nodes = three_nodes(d, &[]);
    let mut procs: Vec<Option<NodeProc>> = nodes.iter().map(|n| Some(start(n, d))).collect();
    // How far the LIB trails the head, at its best over a few samples (a
    // sample can fall between a block and its child's votes).
    let lag = |n: &ChainNode| {
        (0..10)
            .map(|_| {
                let s = status(n);
                std::thread::sleep(Duration::from_millis(50));
                s["head_height"].as_u64().unwrap() - s["lib_height"].as_u64().unwrap()
            })
            .min()
            .unwrap()
    };
    wait_until(60, "every node to finalize 20 blocks", || {
        nodes.iter().all(|n| lib(n) >= 20)
    });
    for n in &nodes {
        // Production-implied finality trails by 20 blocks (the test above).
        let l = lag(n);
        assert!(l <= 3, "{}: the LIB trails the head by {l} blocks", n.name);
    }
    let common = nodes.iter().map(lib).min().unwrap();
    let id = block_id(&nodes[0], common);
    for n in &nodes[1..] {
        assert_eq!(block_id(n, common), id, "{} disagrees at {common}", n.name);
    }

    // Kill node 3 (10 keys): 21 keys are exactly a quorum.
    procs[2].take().unwrap().kill9();
    let before = lib(&nodes[0]);
    wait_until(60, "finality to go on without node 3", || {
        lib(&nodes[0]) >= before + 10
    });
    assert!(lag(&nodes[0]) <= 3);

    // A keyless node from scratch: syncs, then finalizes by the votes it
    // receives from then on.
    let fresh = config(
        &chain,
        "fresh",
        &[],
        &[&nodes[0].p2p, &nodes[1].p2p],
        ports(),
    );
    let _fresh = start(&fresh, d);
    let target = lib(&nodes[0]);
    wait_until(60, "the fresh node to sync", || lib(&fresh) >= target + 5);
    assert_eq!(block_id(&fresh, target), block_id(&nodes[0], target));
    assert!(lag(&fresh) <= 3, "the fresh node finalizes by votes too");
    // Honest producers leave no equivocation evidence.
    let said = qcss_ok(
        d,
        &[
            "wallet",
            "evidence",
            "--list",
            "--key",
            "chain/keys/marketing.json",
            "--node",
            &nodes[0].api,
        ],
    );
    assert!(said.contains("holds no equivocation evidence"), "{said}");
    drop(procs);
}
