//! MDSS keeps its copies by itself: four orgs' peers as real processes,
//! each running the file keeper every second with K = 3 copies of a file
//! (1 of a video). A file put at org1 reaches exactly three orgs without
//! anyone asking; a video stays at one; two of the three holders lose
//! their copy (K − 1) and get it back; a damaged chunk at org1 is repaired
//! from another org's copy without a request. Real mTLS, real disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qcss_tests::http_get;
use qcss_tests::peers::{Network, NetworkOptions};

const FILES: &str = "\n[files]\nchunk_bytes = 65536\nkeep_secs = 1\nrescrub_secs = 2\n\
                     [files.replication]\ndefault_copies = 3\n\
                     [files.replication.per_kind]\nvideo = 1\n";
const ORGS: usize = 4;

fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn metric(ops: &str, name: &str) -> f64 {
    let (_, body) = http_get(ops, "/metrics").expect("metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {ops}/metrics"))
}

/// Which orgs' peers hold `id` (an intact copy).
fn holders(net: &Network, id: &str) -> Vec<usize> {
    (1..=ORGS)
        .filter(|&n| {
            let (ok, out, _) = net.cli_any(&["files", "verify", id], &net.conn(n, "client1"));
            ok && out.contains("intact")
        })
        .collect()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let Some(state) = f() else { return };
        assert!(Instant::now() < deadline, "{what} within {secs} s: {state}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The store files at a peer: `id`'s manifest and every chunk.
fn store_files(dir: &Path, n: usize, id: &str) -> Vec<PathBuf> {
    let root = dir.join(format!("peer{n}-data/files"));
    let mut out = vec![root.join("manifests").join(&id[..2]).join(id)];
    for sub in std::fs::read_dir(root.join("chunks")).expect("chunks dir") {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out
}

#[test]
fn files_reach_k_orgs_survive_k_minus_1_losses_and_heal_damage() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut net = Network::start(
        d.path(),
        NetworkOptions {
            orgs: ORGS,
            example_policy: None,
            ..NetworkOptions::default()
        },
    );
    for n in 1..=ORGS {
        net.kill_peer(n);
        let p = d.path().join(format!("peer{n}.toml"));
        let mut toml = std::fs::read_to_string(&p).unwrap();
        toml.push_str(FILES);
        std::fs::write(&p, toml).unwrap();
        net.start_peer(n);
    }
    let org1 = net.conn(1, "client1");
    let ops1 = net.peer_ops[0].clone();

    // Put at org1 only: the keeper copies it to two more orgs, no further.
    std::fs::write(d.path().join("report.pdf"), content(200_000, 1)).unwrap();
    let id = net
        .cli(
            &[
                "files",
                "put",
                "report.pdf",
                "--media-type",
                "application/pdf",
            ],
            &org1,
        )
        .trim()
        .to_owned();
    let mut held = Vec::new();
    wait_for("3 copies of the report", 60, || {
        held = holders(&net, &id);
        (held.len() != 3).then(|| format!("held by orgs {held:?}"))
    });
    assert!(held.contains(&1), "{held:?}");
    // A video's K is 1: it stays where it was put, pass after pass.
    std::fs::write(d.path().join("clip.mp4"), content(100_000, 2)).unwrap();
    let clip = net
        .cli(
            &["files", "put", "clip.mp4", "--media-type", "video/mp4"],
            &org1,
        )
        .trim()
        .to_owned();
    let passes = metric(&ops1, "qcss_peer_files_keeper_passes_total");
    wait_for("three more keeper passes", 30, || {
        let now = metric(&ops1, "qcss_peer_files_keeper_passes_total");
        (now < passes + 3.0).then(|| format!("{now} passes"))
    });
    assert_eq!(holders(&net, &clip), vec![1]);
    assert_eq!(metric(&ops1, "qcss_peer_files"), 2.0);
    assert_eq!(metric(&ops1, "qcss_peer_files_under_replicated"), 0.0);
    assert_eq!(metric(&ops1, "qcss_peer_files_copies_made_total"), 2.0);

    // K − 1 = 2 of the 3 holders lose their copy (everything in their store).
    let losers: Vec<usize> = held.iter().copied().filter(|&n| n != 1).collect();
    for &n in &losers {
        for f in store_files(d.path(), n, &id) {
            std::fs::remove_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
        let (ok, _, err) = net.cli_any(&["files", "stat", &id], &net.conn(n, "client1"));
        assert!(!ok && err.contains("NotFound"), "org{n}: {err}");
    }
    wait_for("the lost copies back", 60, || {
        let now = holders(&net, &id);
        (now != held).then(|| format!("held by orgs {now:?}, want {held:?}"))
    });
    assert_eq!(metric(&ops1, "qcss_peer_files_copies_made_total"), 4.0);

    // A flipped byte in a chunk at org1: found and repaired from another org.
    let first = content(200_000, 1)[..65536].to_vec();
    let chunk = store_files(d.path(), 1, &id)
        .into_iter()
        .skip(1)
        .find(|p| std::fs::read(p).unwrap() == first)
        .expect("the report's first chunk at org1");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[7] ^= 0x40;
    std::fs::write(&chunk, &bytes).unwrap();
    wait_for("org1's copy repaired", 30, || {
        let (ok, out, err) = net.cli_any(&["files", "verify", &id], &org1);
        (!ok || !out.contains("intact")).then(|| format!("{out}{err}"))
    });
    assert!(metric(&ops1, "qcss_peer_files_damage_found_total") >= 1.0);
    assert!(metric(&ops1, "qcss_peer_files_repaired_total") >= 1.0);
    let (s, body) = http_get(&ops1, "/healthz").unwrap();
    assert_eq!(s, 200, "{body}");
    net.cli(&["files", "get", &id, "--out", "back"], &org1);
    assert_eq!(
        std::fs::read(d.path().join("back")).unwrap(),
        content(200_000, 1)
    );
}

/// A client's read that finds org1's copy damaged (gRPC `Get` refused with
/// DataLoss) makes the keeper repair it from org2 at once — its periodic
/// pass is an hour away — and the next read gets the right bytes. Then the
/// same through another org: org2, repairing its lost copy from org1, reads
/// a chunk org1 finds damaged (`GetChunk` refused), and org1 repairs its
/// copy at once from org3's.
#[test]
fn a_damaged_read_triggers_a_repair_at_once() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut net = Network::start(
        d.path(),
        NetworkOptions {
            orgs: 3,
            example_policy: None,
            ..NetworkOptions::default()
        },
    );
    // Keeper passes an hour apart: only reads trigger repairs here.
    for n in 1..=3 {
        net.kill_peer(n);
        let p = d.path().join(format!("peer{n}.toml"));
        let mut toml = std::fs::read_to_string(&p).unwrap();
        toml.push_str("\n[files]\nchunk_bytes = 65536\nkeep_secs = 3600\n");
        std::fs::write(&p, toml).unwrap();
        net.start_peer(n);
    }
    let (org1, org2) = (net.conn(1, "client1"), net.conn(2, "client1"));
    let body = content(200_000, 9);
    std::fs::write(d.path().join("report.pdf"), &body).unwrap();
    let id = net
        .cli(
            &[
                "files",
                "put",
                "report.pdf",
                "--media-type",
                "application/pdf",
            ],
            &org2,
        )
        .trim()
        .to_owned();
    // org1 takes a copy from org2, then one of its chunks rots.
    net.cli(&["files", "repair", &id, "--from-org", "Org2MSP"], &org1);
    let root = d.path().join("peer1-data/files/chunks");
    let chunk = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|s| std::fs::read_dir(s.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .next()
        .expect("a chunk at org1");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[100] ^= 0x55;
    std::fs::write(&chunk, bytes).unwrap();
    let repaired = metric(&net.peer_ops[0], "qcss_peer_files_repaired_total");

    let (ok, _, err) = net.cli_any(&["files", "get", &id, "--out", "got.pdf"], &org1);
    assert!(!ok && err.contains("DataLoss"), "{err}");
    wait_for("the copy repaired after the read", 30, || {
        let now = metric(&net.peer_ops[0], "qcss_peer_files_repaired_total");
        (now < repaired + 1.0).then(|| format!("{now} repairs"))
    });
    net.cli(&["files", "get", &id, "--out", "got.pdf"], &org1);
    assert_eq!(std::fs::read(d.path().join("got.pdf")).unwrap(), body);
    assert!(
        net.peer_log(1).contains("a read found this copy damaged"),
        "the peer says why it repairs"
    );

    // Through another org's repair: org3 takes a copy, org1's chunk rots
    // again, org2 loses its copy and asks org1 for it.
    let org3 = net.conn(3, "client1");
    net.cli(&["files", "repair", &id, "--from-org", "Org2MSP"], &org3);
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[100] ^= 0x55;
    std::fs::write(&chunk, bytes).unwrap();
    for f in store_files(d.path(), 2, &id) {
        std::fs::remove_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let repaired = metric(&net.peer_ops[0], "qcss_peer_files_repaired_total");
    let (ok, _, err) = net.cli_any(&["files", "repair", &id, "--from-org", "Org1MSP"], &org2);
    assert!(!ok, "org1 served a damaged chunk: {err}");
    wait_for("org1's copy repaired after another org's read", 30, || {
        let now = metric(&net.peer_ops[0], "qcss_peer_files_repaired_total");
        (now < repaired + 1.0).then(|| format!("{now} repairs"))
    });
    net.cli(&["files", "repair", &id, "--from-org", "Org1MSP"], &org2);
    net.cli(&["files", "get", &id, "--out", "got2.pdf"], &org2);
    assert_eq!(std::fs::read(d.path().join("got2.pdf")).unwrap(), body);
}
