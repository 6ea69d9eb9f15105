//! Anchoring against real public-chain processes (`qcss chain start` on
//! 127.0.0.1, short slots), without a consortium network:
//!
//! - the anchor keys registered org by org from separate key files
//!   (`qcss anchor keyset propose|sign|submit`), a tampered proposal and a
//!   stranger's key refused by `sign`, too few signatures refused locally
//!   naming who is missing; a rotation signed by a quorum of the old keys
//!   accepted, by a minority refused by the chain; after it an anchor
//!   signed by the old keys is refused and one by the new keys accepted,
//!   and the bridge (`anchor start --once`) anchors through peers holding
//!   the new keys, not through peers still holding the old ones;
//! - an orphaned anchor: the bridge submits through a minority node cut off
//!   (by a byte-forwarding proxy in this process) from the majority; when
//!   the link heals the minority's branch loses, the bridge notices and
//!   resubmits, and the anchor ends irreversible on the winning branch,
//!   anchored once, with the first transaction nowhere in the final chain.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qcss_anchor::Hash32;
use qcss_anchor::mmr::{ConsistencyProof, MemStore, peak_positions};
use qcss_anchor::statement::{MMR, Statement, block_leaf};
use qcss_dpos::address::{Keypair, Sig};
use qcss_dpos::tx::{AnchorTx, KeySet, Tx, TxKind};
use qcss_tests::{NodeProc, free_port, http_get, http_post, qcss, qcss_bin, qcss_err, qcss_ok};
use serde_json::Value;

/// GETs JSON (a 429 waits and asks again).
fn json(addr: &str, path: &str) -> Value {
    qcss_tests::get_json(addr, path, 20)
}

/// Polls every 200 ms until `cond`; fails after `secs` with `what`.
fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

fn key(path: &Path) -> Keypair {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut s = [0u8; 32];
    hex::decode_to_slice(v["secret"].as_str().unwrap(), &mut s).unwrap();
    Keypair::from_secret(s)
}

/// `qcss chain genesis` in `d/chain` with `slot_ms` slots.
fn genesis(d: &Path, slot_ms: u64) -> PathBuf {
    qcss_ok(
        d,
        &[
            "chain",
            "genesis",
            "--out",
            "chain",
            "--slot-ms",
            &slot_ms.to_string(),
            "--start-in",
            "2",
        ],
    );
    d.join("chain")
}

/// A chain node holding producer keys `keys`, dialling `peers` (p2p addresses).
struct ChainNode {
    api: String,
    p2p: String,
    _proc: NodeProc,
}

fn start_node(chain: &Path, name: &str, keys: RangeInclusive<usize>, peers: &[&str]) -> ChainNode {
    let a = || format!("127.0.0.1:{}", free_port());
    let (p2p, api, ops) = (a(), a(), a());
    let keys: Vec<String> = keys
        .map(|k| format!("\"keys/producer-{k:02}.json\""))
        .collect();
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    let toml = format!(
        "genesis = \"genesis.json\"\ndata_dir = \"{name}\"\nlisten = \"{p2p}\"\napi = \"{api}\"\nops = \"{ops}\"\npeers = [{}]\nproducer_keys = [{}]\n",
        peers.join(", "),
        keys.join(", ")
    );
    let config = chain.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let proc = NodeProc::start(
        &["chain", "start", "--config", config.to_str().unwrap()],
        "chain node ready",
        &chain.join(format!("{name}.log")),
    );
    ChainNode {
        api,
        p2p,
        _proc: proc,
    }
}

fn nonce(node: &str, who: &Keypair) -> u64 {
    json(node, &format!("/v1/account/{}", who.address()))["account"]["nonce"]
        .as_u64()
        .unwrap()
}

/// Signs and posts `kind` from `payer`: the node's answer. On 200, waits
/// until a block includes it.
fn post(node: &str, payer: &Keypair, kind: TxKind) -> (u16, String) {
    let st = json(node, "/v1/status");
    let n = nonce(node, payer);
    let tx = Tx {
        chain_id: serde_json::from_value(st["chain_id"].clone()).unwrap(),
        sender: payer.address(),
        nonce: n,
        fee: st["min_fee"].as_u64().unwrap(),
        expiry_slot: st["clock_slot"].as_u64().unwrap() + 100,
        kind,
    };
    let (s, body) = http_post(
        node,
        "/v1/tx",
        hex::encode(tx.sign(payer).encode()).as_bytes(),
    );
    if s == 200 {
        wait_until(30, "the transaction to be included", || {
            nonce(node, payer) > n
        });
    }
    (s, body)
}

/// A made-up consortium history: block `n` has hash `H(n)`.
#[derive(Default)]
struct History {
    store: MemStore,
    hashes: Vec<Hash32>,
}

impl History {
    fn grow(&mut self, to: u64) {
        while (self.hashes.len() as u64) < to {
            let n = self.hashes.len() as u64;
            let h = qcss_anchor::hash::hash_parts(b"test-block", &[&n.to_be_bytes()]);
            self.store.append(&MMR, block_leaf(n, &h));
            self.hashes.push(h);
        }
    }

    fn size(&self) -> u64 {
        self.hashes.len() as u64
    }

    fn root(&self, size: u64) -> Hash32 {
        if size == 0 {
            return MMR.empty_root();
        }
        let peaks: Vec<Hash32> = peak_positions(size)
            .into_iter()
            .map(|p| self.store.nodes[&p])
            .collect();
        MMR.bag(&peaks)
    }

    fn statement(&self, consortium_id: Hash32, seq: u64, prev_size: u64, size: u64) -> Statement {
        Statement {
            consortium_id,
            seq,
            mmr_size: size,
            mmr_root: self.root(size),
            last_block_hash: self.hashes[size as usize - 1],
            prev_size,
            prev_root: self.root(prev_size),
        }
    }

    fn consistency(&self, from: u64, to: u64) -> ConsistencyProof {
        ConsistencyProof::build(&self.store, &MMR, from, to).unwrap()
    }

    /// An anchor of blocks `0…size−1` after `prev_size`, signed by `signers`.
    fn anchor(
        &self,
        cid: Hash32,
        seq: u64,
        prev: (u64, u64),
        size: u64,
        signers: &[(u16, &Keypair)],
    ) -> TxKind {
        let (prev_size, prev_height) = prev;
        let statement = self.statement(cid, seq, prev_size, size);
        let d = statement.digest();
        let sigs: Vec<(u16, Sig)> = signers.iter().map(|(i, k)| (*i, k.sign(&d))).collect();
        TxKind::Anchor(Box::new(AnchorTx {
            statement,
            consistency: self.consistency(prev_size, size),
            sigs,
            prev_anchor_height: prev_height,
        }))
    }
}

fn consortium(node: &str, cid: &str) -> Option<Value> {
    let (s, body) = http_get(node, &format!("/v1/consortium/{cid}")).expect("API answers");
    match s {
        404 => None,
        200 => Some(serde_json::from_str::<Value>(&body).unwrap()["consortium"].clone()),
        _ => panic!("consortium {cid}: {s} {body}"),
    }
}

fn address(k: &Keypair) -> String {
    k.address().to_string()
}

#[test]
fn anchor_keys_registered_and_rotated_org_by_org() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let chain = genesis(d, 300);
    let node = start_node(&chain, "node", 1..=31, &[]);
    let api = node.api.as_str();
    wait_until(60, "the node to produce", || {
        json(api, "/v1/status")["head_height"].as_u64().unwrap_or(0) >= 2
    });
    let payer_file = chain.join("keys/foundation.json");
    let payer_arg = payer_file.to_str().unwrap();
    let payer = key(&payer_file);
    let cid_hash = qcss_anchor::hash::hash_parts(b"test-consortium", &[b"keys"]);
    let cid = cid_hash.to_hex();

    // Four orgs, each with its own key file in its own folder.
    let org_file = |o: usize, round: usize| d.join(format!("org{o}/anchor-{round}.json"));
    for o in 1..=4 {
        std::fs::create_dir_all(d.join(format!("org{o}"))).unwrap();
        let f = org_file(o, 1);
        qcss_ok(d, &["wallet", "new", "--key", f.to_str().unwrap()]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }
    let old: Vec<Keypair> = (1..=4).map(|o| key(&org_file(o, 1))).collect();
    let mut args = vec![
        "anchor".to_owned(),
        "keyset".into(),
        "propose".into(),
        "--node".into(),
        api.into(),
        "--consortium".into(),
        cid.clone(),
        "--out".into(),
        "reg.json".into(),
    ];
    for k in &old {
        args.extend(["--key".into(), address(k)]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = qcss_ok(d, &argv);
    assert!(
        out.contains("registration") && out.contains("key version 0") && out.contains("quorum 3"),
        "{out}"
    );
    let err = qcss_err(d, &argv);
    assert!(err.contains("must not exist"), "{err}");

    let sign = |file: &str, who: &Path| -> std::process::Output {
        qcss(
            d,
            &[
                "anchor",
                "keyset",
                "sign",
                file,
                "--key",
                who.to_str().unwrap(),
            ],
        )
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();

    // Tampered proposals: a field changed (the digest kept), or the digest.
    let proposal: Value =
        serde_json::from_slice(&std::fs::read(d.join("reg.json")).unwrap()).unwrap();
    let mut t = proposal.clone();
    t["quorum"] = Value::from(4);
    let mut t2 = proposal.clone();
    let stranger = Keypair::from_secret([42; 32]);
    t2["keys"][3] = Value::from(address(&stranger));
    t2["signers"][3] = Value::from(address(&stranger));
    let mut t3 = proposal.clone();
    t3["digest"] = Value::from("00".repeat(32));
    for (i, t) in [t, t2, t3].iter().enumerate() {
        let f = format!("tampered-{i}.json");
        std::fs::write(d.join(&f), serde_json::to_vec(t).unwrap()).unwrap();
        let o = sign(&f, &org_file(1, 1));
        assert!(!o.status.success(), "tampered proposal {i} was signed");
        assert!(
            stderr(&o).contains("was altered"),
            "case {i}: {}",
            stderr(&o)
        );
    }
    // A key that is not one of the signers.
    let outsider = d.join("outsider.json");
    qcss_ok(d, &["wallet", "new", "--key", outsider.to_str().unwrap()]);
    let o = sign("reg.json", &outsider);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not one of the keys"),
        "{}",
        stderr(&o)
    );

    // Three orgs sign, each with its own file; signing twice changes nothing.
    for o in 1..=3 {
        let out = sign("reg.json", &org_file(o, 1));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let before = std::fs::read(d.join("reg.json")).unwrap();
    let again = sign("reg.json", &org_file(2, 1));
    assert!(
        stdout(&again).contains("already signed"),
        "{}",
        stdout(&again)
    );
    assert_eq!(std::fs::read(d.join("reg.json")).unwrap(), before);
    // Too few: refused locally, naming the org that is missing.
    let submit = |file: &str| {
        qcss(
            d,
            &[
                "anchor", "keyset", "submit", file, "--node", api, "--payer", payer_arg,
            ],
        )
    };
    let o = submit("reg.json");
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("3 of the 4 needed"), "{e}");
    assert!(
        e.contains(&address(&old[3])) && !e.contains(&address(&old[0])),
        "{e}"
    );
    assert!(consortium(api, &cid).is_none(), "nothing reached the chain");
    let out = sign("reg.json", &org_file(4, 1));
    assert!(stdout(&out).contains("4 of 4"), "{}", stdout(&out));
    let o = submit("reg.json");
    assert!(o.status.success(), "{}", stderr(&o));
    let c = consortium(api, &cid).expect("registered");
    assert_eq!(c["key_version"], 0);
    assert_eq!(c["quorum"], 3);
    let registered: Vec<String> = c["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(registered, old.iter().map(address).collect::<Vec<_>>());
    // The same registration again is refused before it is sent.
    let o = submit("reg.json");
    assert!(stderr(&o).contains("already registered"), "{}", stderr(&o));

    // Seq 0, signed by a quorum of the registered keys.
    let mut history = History::default();
    history.grow(5);
    let anchor =
        |h: &History, seq: u64, prev: (u64, u64), size: u64, keys: &[Keypair], idx: &[u16]| {
            let s: Vec<(u16, &Keypair)> = idx.iter().map(|&i| (i, &keys[usize::from(i)])).collect();
            h.anchor(cid_hash, seq, prev, size, &s)
        };
    let (s, body) = post(
        api,
        &payer,
        anchor(&history, 0, (0, 0), 5, &old, &[0, 1, 3]),
    );
    assert_eq!(s, 200, "seq 0: {body}");
    let last = consortium(api, &cid).unwrap()["last"].clone();
    assert_eq!(last["seq"], 0, "{last}");
    let seq0_height = last["height"].as_u64().unwrap();

    // ------------------------------------------------ rotation
    for o in 1..=4 {
        let f = org_file(o, 2);
        qcss_ok(d, &["wallet", "new", "--key", f.to_str().unwrap()]);
    }
    let new: Vec<Keypair> = (1..=4).map(|o| key(&org_file(o, 2))).collect();
    let mut args: Vec<String> = args[..7].to_vec();
    args.extend(["--out".into(), "rot.json".into()]);
    for k in &new {
        args.extend(["--key".into(), address(k)]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = qcss_ok(d, &argv);
    assert!(
        out.contains("rotation") && out.contains("key version 1"),
        "{out}"
    );
    // A new key is not a signer of its own rotation.
    let o = sign("rot.json", &org_file(1, 2));
    assert!(
        stderr(&o).contains("is not one of the keys"),
        "{}",
        stderr(&o)
    );
    for o in [1, 2] {
        let out = sign("rot.json", &org_file(o, 1));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let o = submit("rot.json");
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("2 of the 3 needed"),
        "{e}"
    );
    assert!(
        e.contains(&address(&old[2])) && e.contains(&address(&old[3])),
        "{e}"
    );
    // The chain itself refuses the minority (sent around the local check).
    let rot: Value = serde_json::from_slice(&std::fs::read(d.join("rot.json")).unwrap()).unwrap();
    let sigs: Vec<(u16, Sig)> = rot["sigs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let who = s["signer"].as_str().unwrap();
            let i = old.iter().position(|k| address(k) == who).unwrap() as u16;
            (i, serde_json::from_value(s["sig"].clone()).unwrap())
        })
        .collect();
    assert_eq!(sigs.len(), 2);
    let minority = KeySet {
        consortium_id: cid_hash,
        keys: new.iter().map(Keypair::address).collect(),
        quorum: 3,
        sigs,
    };
    let (s, body) = post(api, &payer, TxKind::RegisterConsortium(Box::new(minority)));
    assert_eq!(s, 422, "minority rotation: {body}");
    assert!(
        body.contains("key rotation") && body.contains("needs 3"),
        "{body}"
    );
    assert_eq!(consortium(api, &cid).unwrap()["key_version"], 0);
    let out = sign("rot.json", &org_file(4, 1));
    assert!(out.status.success(), "{}", stderr(&out));
    let o = submit("rot.json");
    assert!(o.status.success(), "{}", stderr(&o));
    let c = consortium(api, &cid).unwrap();
    assert_eq!(c["key_version"], 1, "{c}");
    assert_eq!(c["keys"][0].as_str().unwrap(), address(&new[0]));
    assert_eq!(c["last"]["seq"], 0, "the anchors survive the rotation");
    // The rotation cannot be replayed.
    let o = submit("rot.json");
    assert!(stderr(&o).contains("propose again"), "{}", stderr(&o));
    // And `sign --node` checks the proposal against the chain before signing.
    let o = qcss(
        d,
        &[
            "anchor",
            "keyset",
            "sign",
            "rot.json",
            "--key",
            org_file(3, 1).to_str().unwrap(),
            "--node",
            api,
        ],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("propose again"),
        "{}",
        stderr(&o)
    );

    // ------------------------------------------------ anchoring after the rotation
    history.grow(9);
    let (s, body) = post(
        api,
        &payer,
        anchor(&history, 1, (5, seq0_height), 9, &old, &[0, 1, 2, 3]),
    );
    assert_eq!(s, 422, "old keys after rotation: {body}");
    assert!(body.contains("needs 3 valid signatures"), "{body}");
    let (s, body) = post(
        api,
        &payer,
        anchor(&history, 1, (5, seq0_height), 9, &new, &[1, 2, 3]),
    );
    assert_eq!(s, 200, "new keys after rotation: {body}");
    let last = consortium(api, &cid).unwrap()["last"].clone();
    assert_eq!(
        (last["seq"].as_u64(), last["mmr_size"].as_u64()),
        (Some(1), Some(9))
    );

    // ------------------------------------------------ the bridge after the rotation
    // It reads the key set from the chain each round: peers still signing
    // with the old keys are not counted, peers with the new keys anchor.
    history.grow(12);
    let history = Arc::new(Mutex::new(history));
    let bridge = |name: &str, keys: &[Keypair]| -> std::process::Output {
        let peers: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", stub_peer(cid_hash, k.clone(), history.clone())))
            .collect();
        let config = d.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "peers = [{}]\nchain_nodes = [\"{api}\"]\nkey = \"{payer_arg}\"\nreceipts = \"{name}.jsonl\"\n",
                peers.join(", ")
            ),
        )
        .unwrap();
        qcss(
            d,
            &[
                "anchor",
                "start",
                "--once",
                "--config",
                config.to_str().unwrap(),
            ],
        )
    };
    let o = bridge("old-peers", &old[..3]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("0 of 3 needed signatures"),
        "{}",
        stderr(&o)
    );
    let o = bridge("new-peers", &new[1..]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("anchored seq 2"), "{}", stdout(&o));
    eprintln!("anchor keys test: {:?}", started.elapsed());
}

// ---------------------------------------------------------------- orphaned anchor

/// A byte-forwarding TCP proxy whose link can be cut and healed (it works
/// for any transport: plain TCP or TLS).
struct Proxy {
    addr: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                for (from, to) in [(&inbound, &outbound), (&outbound, &inbound)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
                list.push(inbound);
                list.push(outbound);
            }
        });
        Proxy { addr, cut, open }
    }

    /// Closes every forwarded connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// A stand-in for an org's peer web API: `/api/anchor/{status,sign,consistency}`
/// over `history`, signing with `key` (the bridge is the real one).
fn stub_peer(cid: Hash32, key: Keypair, history: Arc<Mutex<History>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(&s);
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut rest = String::new();
            while r.read_line(&mut rest).is_ok_and(|n| n > 2) {
                rest.clear();
            }
            let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let q = |name: &str| -> u64 {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let h = history.lock().unwrap();
            let (status, body) = match path {
                "/api/anchor/status" => (
                    200,
                    serde_json::json!({ "consortium_id": cid, "mmr_size": h.size() }),
                ),
                "/api/anchor/sign" if q("size") <= h.size() && q("prev_size") < q("size") => {
                    let st = h.statement(cid, q("seq"), q("prev_size"), q("size"));
                    let d = st.digest();
                    (
                        200,
                        serde_json::json!({
                            "statement": st,
                            "key": hex::encode(key.address().0),
                            "sig": hex::encode(key.sign(&d).0),
                        }),
                    )
                }
                "/api/anchor/consistency" if q("to") <= h.size() && q("from") <= q("to") => (
                    200,
                    serde_json::to_value(h.consistency(q("from"), q("to"))).unwrap(),
                ),
                _ => (404, serde_json::json!({ "error": "not here" })),
            };
            drop(h);
            let body = body.to_string();
            let _ = write!(
                &s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// The bridge process, killed when dropped.
struct Bridge(std::process::Child);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn r0_tx(path: &Path) -> String {
    receipts(path)[0]["tx_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn receipts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The anchor transactions (consortium `cid`) a node's best chain holds
/// from `payer`: (seq, tx id).
fn anchors_on_chain(node: &str, payer: &Keypair) -> Vec<(u64, String)> {
    let list = json(
        node,
        &format!("/v1/account/{}/history?blocks=2000", payer.address()),
    );
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let seq = e["tx"]["tx"]["kind"]["Anchor"]["statement"]["seq"].as_u64()?;
            Some((seq, e["id"].as_str()?.to_owned()))
        })
        .collect()
}

#[test]
fn an_orphaned_anchor_is_resubmitted_by_the_bridge() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let chain = genesis(d, 300);
    // The majority holds 21 producer keys (enough for irreversibility on
    // its own), the minority 10 and reaches it only through the proxy.
    let majority = start_node(&chain, "majority", 1..=21, &[]);
    let proxy = Proxy::start(majority.p2p.clone());
    let minority = start_node(&chain, "minority", 22..=31, &[&proxy.addr]);
    let (maj, min) = (majority.api.as_str(), minority.api.as_str());
    let lib = |n: &str| json(n, "/v1/status")["lib_height"].as_u64().unwrap();
    wait_until(90, "both nodes to finalize 3 blocks", || {
        lib(maj) >= 3 && lib(min) >= 3
    });

    // The consortium: three orgs, quorum 2, registered on both nodes.
    let cid = qcss_anchor::hash::hash_parts(b"test-consortium", &[b"orphan"]);
    let orgs: Vec<PathBuf> = (1..=3).map(|o| d.join(format!("org{o}.json"))).collect();
    for f in &orgs {
        qcss_ok(d, &["wallet", "new", "--key", f.to_str().unwrap()]);
    }
    let payer_file = chain.join("keys/foundation.json");
    let payer = key(&payer_file);
    let cid_hex = cid.to_hex();
    let mut args = vec![
        "anchor",
        "register",
        "--consortium",
        &cid_hex,
        "--node",
        maj,
        "--payer",
        payer_file.to_str().unwrap(),
    ];
    for f in &orgs {
        args.extend(["--org-key", f.to_str().unwrap()]);
    }
    qcss_ok(d, &args);
    wait_until(30, "the minority to see the registration", || {
        consortium(min, &cid_hex).is_some()
    });

    let history = Arc::new(Mutex::new(History::default()));
    history.lock().unwrap().grow(5);
    let peers: Vec<String> = orgs
        .iter()
        .map(|f| stub_peer(cid, key(f), history.clone()))
        .collect();

    // ------------------------------------------------ partition, then the bridge anchors on the minority
    proxy.cut();
    std::thread::sleep(Duration::from_secs(1));
    let receipts_file = d.join("receipts.jsonl");
    let config = d.join("anchor.toml");
    std::fs::write(
        &config,
        format!(
            "peers = [{}]\nchain_nodes = [\"{min}\"]\nkey = \"{}\"\nevery_blocks = 1\nevery_secs = 1\nreceipts = \"{}\"\n",
            peers.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", "),
            payer_file.display(),
            receipts_file.display()
        ),
    )
    .unwrap();
    let bridge_log = d.join("bridge.log");
    let _bridge = Bridge(
        std::process::Command::new(qcss_bin())
            .args(["anchor", "start", "--config", config.to_str().unwrap()])
            .env("QCSS_LOG", "info")
            .stdout(std::fs::File::create(d.join("bridge.out")).unwrap())
            .stderr(std::fs::File::create(&bridge_log).unwrap())
            .spawn()
            .expect("start the bridge"),
    );
    let mut first: Option<(String, u64)> = None;
    wait_until(60, "the minority to include anchor seq 0", || {
        first = consortium(min, &cid_hex)
            .and_then(|c| c["last"].as_object().cloned())
            .map(|l| {
                (
                    l["tx_id"].as_str().unwrap().to_owned(),
                    l["height"].as_u64().unwrap(),
                )
            });
        first.is_some()
    });
    let (orphan_tx, orphan_height) = first.unwrap();
    assert!(
        consortium(maj, &cid_hex).unwrap()["last"].is_null(),
        "the majority saw the minority's anchor: the partition did not hold"
    );
    assert!(
        receipts(&receipts_file).is_empty(),
        "irreversible on a minority?"
    );
    // The majority finalizes past the height the minority put the anchor at.
    wait_until(
        60,
        "the majority to finalize past the anchor's height",
        || lib(maj) > orphan_height + 3,
    );
    assert!(consortium(maj, &cid_hex).unwrap()["last"].is_null());

    // ------------------------------------------------ heal: the minority's branch loses
    proxy.heal();
    wait_until(
        90,
        "the bridge to resubmit and reach irreversibility",
        || !receipts(&receipts_file).is_empty(),
    );
    let log = std::fs::read_to_string(&bridge_log).unwrap();
    assert!(log.contains("orphaned"), "the bridge never noticed: {log}");
    for l in log
        .lines()
        .filter(|l| l.contains("orphaned") || l.contains("anchored seq"))
    {
        eprintln!("bridge: {l}");
    }
    eprintln!(
        "orphaned: seq 0 in transaction {orphan_tx} at minority height {orphan_height}; resubmitted as {}",
        r0_tx(&receipts_file)
    );
    let r = receipts(&receipts_file);
    assert_eq!(r[0]["seq"], 0, "{r:?}");
    let second = r[0]["tx_id"].as_str().unwrap().to_owned();
    assert_ne!(
        second, orphan_tx,
        "the orphaned transaction itself came back"
    );

    // One more anchor, so the seqs are seen contiguous through the resubmission.
    history.lock().unwrap().grow(8);
    wait_until(90, "anchor seq 1", || receipts(&receipts_file).len() >= 2);
    let seqs: Vec<u64> = receipts(&receipts_file)
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs[..2], [0, 1], "{seqs:?}");
    for n in [maj, min] {
        let anchors = anchors_on_chain(n, &payer);
        assert_eq!(
            anchors.iter().filter(|(s, _)| *s == 0).count(),
            1,
            "{n}: seq 0 anchored once: {anchors:?}"
        );
        assert!(
            anchors.iter().all(|(_, id)| *id != orphan_tx),
            "{n}: the orphaned transaction is on the final chain: {anchors:?}"
        );
        assert!(anchors.iter().any(|(_, id)| *id == second), "{anchors:?}");
    }
    let audit = qcss_ok(
        d,
        &["anchor", "audit", "--consortium", &cid_hex, "--node", maj],
    );
    assert!(audit.contains("(seq 0…"), "{audit}");
    eprintln!("orphaned anchor test: {:?}", started.elapsed());
}
