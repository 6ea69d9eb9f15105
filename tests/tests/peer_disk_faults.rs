//! Issue 15, items 5 and 6, on a real network (three orgs, three orderers):
//! a peer whose ledger has a damaged block says so, never serves the block,
//! endorses nothing and repairs it from the ordering service; a peer whose
//! disk fills up says so, backs off, and catches up without a restart once
//! space is freed. Every peer ends with the same chain and state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qcss_peer::ledger::{Ledger, RECENT_ON_OPEN, RawTree};
use qcss_proto::protos::TxValidationCode;
use qcss_tests::http_get;
use qcss_tests::peers::{Network, NetworkOptions};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `/healthz` of org `n`'s peer: (status, body).
fn health(net: &Network, n: usize) -> (u16, String) {
    http_get(&net.peer_ops[n - 1], "/healthz").unwrap_or((0, String::new()))
}

/// Polls `/healthz` of org `n`'s peer until `want` holds; the last answer.
fn wait_health(
    net: &Network,
    n: usize,
    timeout: Duration,
    want: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let (code, body) = health(net, n);
        if want(code, &body) {
            return (code, body);
        }
        if Instant::now() > deadline {
            panic!("peer {n}: /healthz never became as expected; last: {code} {body}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A labelled Prometheus figure, e.g. `name{kind="block"}`.
fn labelled_metric(net: &Network, n: usize, series: &str) -> f64 {
    let (_, body) = http_get(&net.peer_ops[n - 1], "/metrics").unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `text` without ANSI colour sequences (the logs are coloured).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Blocks `from..=to` from org `n`'s peer `Deliver` as its `client1`: the
/// numbers delivered, and the status the stream ended with, if an error.
async fn deliver(net: &Network, n: usize, from: u64, to: u64) -> (Vec<u64>, Option<tonic::Status>) {
    use qcss_network::orderer_client::{Seek, seek_envelope};
    use qcss_proto::protos::deliver_client::DeliverClient;
    use qcss_proto::protos::deliver_response::Type;
    let org = &net.orgs[n - 1];
    let me = org.identity("client1");
    let env = seek_envelope(
        &me,
        qcss_tests::peers::CHANNEL,
        Seek::Number(from),
        Seek::Number(to),
        false,
    )
    .unwrap();
    let ch = net.channel_as(n, n, "client1").await;
    let mut stream = DeliverClient::new(ch)
        .deliver(tokio_stream::iter(vec![env]))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(r)) => match r.r#type {
                Some(Type::Block(b)) => got.push(b.header.unwrap().number),
                _ => return (got, None),
            },
            Ok(None) => return (got, None),
            Err(s) => return (got, Some(s)),
        }
    }
}

/// Whether `log` says block `n` was repaired from a `source` (`orderer`,
/// `peer`).
fn repaired_from(log: &str, n: u64, source: &str) -> bool {
    log.lines().any(|l| {
        l.contains("damaged block repaired")
            && l.contains(&format!("block={n} "))
            && l.contains(&format!("from={source} "))
    })
}

fn peer_toml(net: &Network, n: usize) -> PathBuf {
    net.dir.join(format!("peer{n}.toml"))
}

fn ledger_dir(net: &Network, n: usize) -> PathBuf {
    net.dir.join(format!("peer{n}-data/ledger"))
}

/// Chain and state of every running peer agree.
fn assert_same_ledgers(net: &Network) {
    let infos: Vec<_> = (1..=3).map(|n| net.ledger_info(n)).collect();
    assert_eq!(infos[0], infos[1], "peers 1 and 2 differ");
    assert_eq!(infos[0], infos[2], "peers 1 and 3 differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_blocks_and_state_are_refused_reported_and_repaired() {
    let d = tmp();
    let mut net = Network::start(d.path(), NetworkOptions::default());
    let mut g = net.gateway(1).await;
    let mut blocks = Vec::new();
    for i in 0..40 {
        let k = format!("k{i}");
        let c = g
            .submit("example", "put", &[k.as_bytes(), b"v"])
            .await
            .unwrap();
        assert_eq!(c.code, TxValidationCode::Valid);
        blocks.push(c.block);
    }
    let h = net.height(1);
    net.wait_heights(h, Duration::from_secs(30));
    // A block near the tip (checked when the peer opens its ledger), one
    // far below it (found only by the scrub), and a state record.
    let (recent, old) = (blocks[37], blocks[2]);
    assert!(
        recent + 1 < h && old + RECENT_ON_OPEN + 1 < h,
        "{recent} {old} {h}"
    );

    // Stop org3's peer and damage them through sled, as flipped bytes on
    // disk would.
    net.peers[2].take().unwrap().stop();
    let (original, original_state) = {
        let ledger = Ledger::open(&ledger_dir(&net, 3)).unwrap();
        let b = ledger.block(recent).unwrap().unwrap();
        let s = ledger.state_hash().unwrap();
        for n in [recent, old] {
            ledger
                .tamper_raw(
                    RawTree::Blocks,
                    &n.to_be_bytes(),
                    Some(b"\x0a\x05flipped bytes"),
                )
                .unwrap();
        }
        ledger
            .tamper_raw(RawTree::State, b"example\0k5", Some(&[9]))
            .unwrap();
        (b, s)
    };

    // Restart it with no orderer and no other peer it can reach, so nothing
    // repairs it yet, and a scrub every second.
    let good_toml = std::fs::read_to_string(peer_toml(&net, 3)).unwrap();
    let scrub = "[ledger]\nscrub_interval_secs = 1\n";
    let no_orderers = "orderers = [\"127.0.0.1:1\"]\n";
    let no_peers =
        "[gateway.endorsers]\nOrg1MSP = [\"127.0.0.1:1\"]\nOrg2MSP = [\"127.0.0.1:1\"]\n";
    std::fs::write(
        peer_toml(&net, 3),
        format!("{good_toml}{no_orderers}{scrub}{no_peers}"),
    )
    .unwrap();
    net.start_peer(3);
    let (code, body) = wait_health(&net, 3, Duration::from_secs(30), |c, b| {
        c == 503 && b.contains(&format!(" {old} (")) && b.contains("state corrupt")
    });
    assert!(
        body.contains("ledger.integrity") && body.contains(&format!("{recent} (does not decode")),
        "the health check names the blocks: {code} {body}"
    );
    assert!(
        labelled_metric(
            &net,
            3,
            "qcss_peer_ledger_corruptions_total{kind=\"block\"}"
        ) >= 2.0
    );
    assert!(
        labelled_metric(
            &net,
            3,
            "qcss_peer_ledger_corruptions_total{kind=\"state\"}"
        ) >= 1.0
    );
    assert!(
        net.metric(3, "qcss_peer_ledger_scrubs_total")
            .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(net.metric(3, "qcss_peer_ledger_corrupt_blocks"), Some(2.0));
    // Never served: the query names the block and the damage.
    for n in [recent, old] {
        let err = net.cli_err(
            &["ledger", "block", &n.to_string()],
            &net.conn(3, "client1"),
        );
        assert!(
            err.contains(&format!("block {n} is corrupt on disk")),
            "{err}"
        );
    }
    // Deliver streams up to the damaged block, then ends with UNAVAILABLE
    // naming it: never its bytes.
    let (got, status) = deliver(&net, 3, 0, recent).await;
    assert_eq!(got, (0..old).collect::<Vec<_>>());
    let status = status.expect("the stream ends with an error");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    assert!(
        status
            .message()
            .contains(&format!("block {old} is corrupt on disk")),
        "{status}"
    );
    // Nothing is endorsed meanwhile: UNAVAILABLE, with the reason.
    let mut g3 = net.gateway(3).await;
    let e = g3
        .evaluate("example", "get", &[b"k0"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not endorse") && e.contains("ledger integrity"),
        "{e}"
    );
    drop(g3);
    // Logged at once, naming the block; then rate-limited.
    let log = plain(&net.peer_log(3));
    let lines = log.matches("ledger corruption detected").count();
    assert!((1..=2).contains(&lines), "{lines} log lines: {log}");
    assert!(log.contains(&format!("blocks={recent}")), "{log}");

    // With its orderers back, it repairs the blocks (the old one once the
    // scrub finds it again: a new process knows only what it checked),
    // rebuilds the state and is healthy again.
    net.peers[2].take().unwrap().stop();
    std::fs::write(peer_toml(&net, 3), format!("{good_toml}{scrub}")).unwrap();
    net.start_peer(3);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = plain(&net.peer_log(3));
        let repaired = |n: u64| repaired_from(&log, n, "orderer");
        if repaired(recent)
            && repaired(old)
            && log.contains("damaged state repaired: rebuilt from the blocks")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no repair: {log}");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_health(&net, 3, Duration::from_secs(30), |c, _| c == 200);
    assert!(
        net.metric(3, "qcss_peer_ledger_repairs_total")
            .unwrap_or(0.0)
            >= 2.0
    );
    let c = g
        .submit("example", "put", &[b"after", b"repair"])
        .await
        .unwrap();
    assert_eq!(c.code, TxValidationCode::Valid);
    net.wait_heights(c.block + 1, Duration::from_secs(30));
    assert_same_ledgers(&net);
    let (got, status) = deliver(&net, 3, 0, recent).await;
    assert!(status.is_none(), "{status:?}");
    assert_eq!(got, (0..=recent).collect::<Vec<_>>());
    let mut g3 = net.gateway(3).await;
    assert_eq!(
        g3.evaluate("example", "get", &[b"after"]).await.unwrap(),
        b"repair"
    );
    assert_eq!(g3.evaluate("example", "get", &[b"k5"]).await.unwrap(), b"v");
    drop(g3);

    // With no orderer reachable, another org's peer serves the block (it is
    // checked against the chain all the same).
    net.peers[2].take().unwrap().stop();
    Ledger::open(&ledger_dir(&net, 3))
        .unwrap()
        .tamper_raw(RawTree::Blocks, &recent.to_be_bytes(), Some(b"\x0a\x01"))
        .unwrap();
    let log_len = net.peer_log(3).len();
    std::fs::write(peer_toml(&net, 3), format!("{good_toml}{no_orderers}")).unwrap();
    net.start_peer(3);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !repaired_from(&plain(&net.peer_log(3)[log_len..]), recent, "peer") {
        assert!(
            Instant::now() < deadline,
            "not repaired from a peer: {}",
            net.peer_log(3)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, body) = health(&net, 3);
    assert!(!body.contains("ledger.integrity"), "{code} {body}");

    // Offline: the repaired block is the original, and the ledger verifies.
    net.peers[2].take().unwrap().stop();
    let ledger = Ledger::open(&ledger_dir(&net, 3)).unwrap();
    let repaired = ledger.block(recent).unwrap().unwrap();
    assert_eq!(repaired.header, original.header);
    assert_eq!(repaired.data, original.data);
    assert_eq!(
        repaired.metadata.as_ref().unwrap().metadata[2],
        original.metadata.as_ref().unwrap().metadata[2],
        "the validation codes are the ones committed"
    );
    assert_ne!(
        ledger.state_hash().unwrap(),
        original_state,
        "state moved on"
    );
    let report = ledger.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
}

/// Writes zeros to `path` until the device is full.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = f.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_health_and_the_peer_catches_up_once_space_is_freed() {
    let d = tmp();
    let data3 = d.path().join("peer3-data");
    std::fs::create_dir_all(&data3).unwrap();
    let Some(_tmpfs) = qcss_tests::Tmpfs::mount(&data3, 48) else {
        return;
    };
    let mut net = Network::start(d.path(), NetworkOptions::default());
    let mut g = net.gateway(1).await;
    let c = g
        .submit("example", "put", &[b"before", b"full"])
        .await
        .unwrap();
    net.wait_heights(c.block + 1, Duration::from_secs(30));

    // Fill org3's disk, then keep transacting until its store fails.
    let filler = data3.join("filler");
    let filled = fill(&filler);
    eprintln!("filled {} MiB", filled >> 20);
    let value = vec![b'x'; 32 * 1024];
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut i = 0;
    let body = loop {
        let k = format!("full{i}");
        let c = g
            .submit("example", "put", &[k.as_bytes(), &value])
            .await
            .unwrap();
        assert_eq!(c.code, TxValidationCode::Valid);
        i += 1;
        let (code, body) = health(&net, 3);
        if code == 503 && body.contains("disk full") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the full disk never showed: {code} {body}"
        );
    };
    assert!(body.contains("ledger.store"), "{body}");
    // It backs off instead of retrying every 0.3 s: after 4 s of failures
    // the wait is 4 s and growing, so at most a few attempts in the next 6 s
    // (twenty without backoff).
    let lines = |net: &Network| {
        plain(&net.peer_log(3))
            .matches("ledger store failed; committing stops")
            .count()
    };
    std::thread::sleep(Duration::from_secs(4));
    let before = lines(&net);
    std::thread::sleep(Duration::from_secs(6));
    let during = lines(&net) - before;
    eprintln!("store-failure log lines: {before} in the first 4 s, {during} in the next 6 s");
    assert!(before >= 1, "the failure is logged");
    assert!(during <= 3, "{during} log lines in 6 s: not backing off");
    // The others keep committing meanwhile.
    for j in 0..3 {
        let k = format!("meanwhile{j}");
        let c = g
            .submit("example", "put", &[k.as_bytes(), b"v"])
            .await
            .unwrap();
        assert_eq!(c.code, TxValidationCode::Valid);
    }
    assert!(net.height(3) < net.height(1), "org3 should be stuck");

    // Space returns: it reopens its store and catches up, same process.
    std::fs::remove_file(&filler).unwrap();
    let pid = net.peers[2].as_ref().unwrap().pid();
    let h = net.height(1);
    net.wait_heights(h, Duration::from_secs(60));
    wait_health(&net, 3, Duration::from_secs(30), |c, _| c == 200);
    assert!(
        net.peers[2].as_mut().unwrap().try_wait().is_none(),
        "the peer exited"
    );
    assert_eq!(net.peers[2].as_ref().unwrap().pid(), pid);
    let log = plain(&net.peer_log(3));
    assert!(log.contains("ledger store reopened"), "{log}");
    for l in log.lines().filter(|l| l.contains("store")) {
        eprintln!("peer3: {l}");
    }
    let c = g
        .submit("example", "put", &[b"after", b"space"])
        .await
        .unwrap();
    net.wait_heights(c.block + 1, Duration::from_secs(30));
    assert_same_ledgers(&net);
    let v = net
        .gateway(3)
        .await
        .evaluate("example", "get", &[b"after"])
        .await;
    assert_eq!(v.unwrap(), b"space");

    // Nothing lost or duplicated: the stopped peer's ledger verifies.
    net.peers[2].take().unwrap().stop();
    let report = Ledger::open(&ledger_dir(&net, 3))
        .unwrap()
        .verify()
        .unwrap();
    assert!(report.is_consistent(), "{report:?}");
}
