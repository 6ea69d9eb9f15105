//! `qcss network up --demo` as a newcomer runs it: a whole consortium of
//! real processes, the demo story, `network status`, `trace` of the three
//! printed codes, more codes issued with the batch code key the demo kept,
//! `network down`, and `up` again on the same data.

use std::path::Path;
use std::time::Duration;

use qcss_tests::{NetworkDown, qcss, qcss_ok};

fn contract() -> String {
    qcss_tests::peers::traceability_wasm().display().to_string()
}

/// The `qcss trace '<code>' --peer ...` lines `up --demo` printed.
fn trace_lines(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter_map(|l| l.split_once("qcss trace ").map(|(_, rest)| rest))
        .map(|rest| {
            let (code, conn) = rest
                .strip_prefix('\'')
                .and_then(|r| r.split_once('\''))
                .expect("quoted code");
            std::iter::once(code.to_string())
                .chain(conn.split_whitespace().map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn network_up_demo_status_trace_down_and_up_again() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    let _down = NetworkDown(dir);
    let c = contract();
    let out = qcss_ok(
        dir,
        &["network", "up", "--dir", "net", "--demo", "--contract", &c],
    );
    assert!(out.contains("network up in"), "{out}");
    assert!(out.contains("definition committed in block"), "{out}");
    let lines = trace_lines(&out);
    assert_eq!(lines.len(), 3, "three codes to try:\n{out}");

    // The batch code keys are kept (0600, under the producer's folder) and
    // said where; with one, `qcss codes issue` gives the very codes printed.
    let keys: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(batch, file)| batch.contains("/LJ2026") && file.ends_with(".key"))
        .collect();
    assert_eq!(keys.len(), 2, "two batch code keys written:\n{out}");
    for (_, file) in &keys {
        assert!(file.contains("orgs/producer/"), "{file}");
        let mode = std::fs::metadata(dir.join(file))
            .expect("key file")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600,
            "{file}"
        );
    }
    let (batch, file) = keys
        .iter()
        .find(|(b, _)| b.ends_with("/LJ2026A"))
        .expect("LJ2026A's key");
    let issued = qcss_ok(
        dir,
        &[
            "codes",
            "issue",
            "--batch",
            batch,
            "--from",
            "1",
            "--to",
            "24",
            "--key",
            file,
            "--base",
            "https://q.example.com",
        ],
    );
    assert!(
        issued.lines().any(|c| c == lines[0][0]),
        "the written key issues the printed genuine code {}:\n{issued}",
        lines[0][0]
    );

    let status = qcss_ok(dir, &["network", "status", "--dir", "net"]);
    // 4 CAs, 3 orderers, 4 peers, 3 public-chain nodes, the anchoring bridge.
    assert_eq!(
        status.matches("up  ").count(),
        4 + 3 + 4 + 3 + 1,
        "{status}"
    );

    let trace = |args: &[String]| {
        let a: Vec<&str> = std::iter::once("trace")
            .chain(args.iter().map(String::as_str))
            .collect();
        let o = qcss(dir, &a);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // The demo batches as EPCIS: GS1's schema accepts them; the juice lot's
    // transformation is the same event in its export and in the harvest
    // lot's; the lab's test result is a testres business transaction.
    let juice = batch.split('/').next().expect("GTIN").to_owned();
    let export = |lot: &str, loquat: bool| -> serde_json::Value {
        let id = if loquat {
            format!("{}/{lot}", qcss_tests::trace::gs1("0690123456001"))
        } else {
            format!("{juice}/{lot}")
        };
        let file = format!("{lot}.epcis.json");
        let mut a = vec!["epcis", "export", "--batch", &id, "--out", &file];
        a.extend(lines[0][1..].iter().map(String::as_str));
        qcss_ok(dir, &a);
        let path = dir.join(&file);
        if let Some(r) = qcss_tests::epcis_schema_check(&[&path]) {
            r.unwrap_or_else(|e| panic!("GS1's EPCIS 2.0 schema refuses {lot}:\n{e}"));
        }
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("export")).expect("JSON");
        if let Some(hashes) = qcss_tests::reference_event_hashes(&path) {
            let ids: Vec<&str> = doc["epcisBody"]["eventList"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["eventID"].as_str().expect("eventID"))
                .collect();
            assert_eq!(ids, hashes, "{lot}: eventID = CBV 2.0 event hash");
        }
        doc
    };
    let lj = export("LJ2026A", false);
    let h1 = export("H1", true);
    let transformation = |doc: &serde_json::Value| -> serde_json::Value {
        doc["epcisBody"]["eventList"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["transformationID"] == "urn:qcss:transformation:T-LJ2026A")
            .cloned()
            .unwrap_or_else(|| panic!("no T-LJ2026A in {doc:#}"))
    };
    let t = transformation(&lj);
    assert_eq!(t, transformation(&h1), "one transformation, one event");
    assert_eq!(
        t["inputQuantityList"][0]["uom"], "KGM",
        "600 KGM of loquats stay kilograms: {t:#}"
    );
    let inspection = lj["epcisBody"]["eventList"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["bizStep"] == "inspecting")
        .cloned()
        .expect("the lab's inspection");
    assert_eq!(
        inspection["bizTransactionList"][0]["type"], "testres",
        "{inspection:#}"
    );
    assert!(
        inspection["bizTransactionList"][0]["bizTransaction"]
            .as_str()
            .is_some_and(|u| u.starts_with("urn:qcss:inspection:")),
        "{inspection:#}"
    );
    assert!(
        inspection["qcss:data"].get("bizTransaction").is_none(),
        "{inspection:#}"
    );

    // The CLI finds the peer, identity and channel in the network's folder:
    // the printed line names only it; --org/--as pick others; explicit
    // flags win.
    assert_eq!(lines[0].len(), 3, "{out}");
    assert_eq!(lines[0][1], "--dir", "{out}");
    assert!(Path::new(&lines[0][2]).ends_with("net"), "{out}");
    let info = qcss_ok(
        dir,
        &[
            "ledger", "info", "--dir", "net", "--org", "producer", "--as", "admin",
        ],
    );
    assert!(info.contains("height"), "{info}");
    let e = qcss(
        dir,
        &[
            "ledger",
            "info",
            "--dir",
            "net",
            "--org",
            "producer",
            "--peer",
            "127.0.0.1:1",
        ],
    );
    assert!(
        !e.status.success(),
        "an explicit --peer wins over the org's"
    );
    let e = qcss(dir, &["ledger", "info", "--dir", "net", "--org", "nobody"]);
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("no org \"nobody\""),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );

    let good = trace(&lines[0]);
    assert!(
        good.contains("sterilising"),
        "timeline of the good code:\n{good}"
    );
    assert!(!good.to_uppercase().contains("RECALL"), "{good}");
    let recalled = trace(&lines[1]);
    assert!(recalled.to_uppercase().contains("RECALL"), "{recalled}");
    let forged = trace(&lines[2]);
    assert!(
        forged.to_lowercase().contains("counterfeit") || forged.to_lowercase().contains("forged"),
        "{forged}"
    );

    let heights = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("peer-"))
            .map(|l| {
                l.split("height ")
                    .nth(1)
                    .unwrap_or("")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    let before = heights(&status);
    qcss_ok(dir, &["network", "down", "--dir", "net"]);
    let e = qcss(dir, &["network", "status", "--dir", "net"]);
    assert!(!e.status.success(), "status fails with the network down");

    let out = qcss_ok(dir, &["network", "up", "--dir", "net"]);
    assert!(out.contains("resuming"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    let status = qcss_ok(dir, &["network", "status", "--dir", "net"]);
    // Nothing lost; a block may have been added meanwhile (the anchor
    // bridge records the receipt of an anchor that became irreversible).
    let after = heights(&status);
    let num = |v: &[String]| -> Vec<u64> { v.iter().map(|h| h.parse().unwrap()).collect() };
    assert_eq!(after.len(), before.len(), "{status}");
    assert!(
        num(&after)
            .iter()
            .zip(num(&before))
            .all(|(a, b)| *a >= b && *a <= b + 2),
        "heights after a restart {after:?}, before {before:?}"
    );
    let again = trace(&lines[0]);
    assert!(
        again.contains("sterilising"),
        "same data after a restart:\n{again}"
    );
}

/// The same `network up`, each org on a host of its own: a network
/// namespace per org with its own address, which the org's CA, peer and
/// orderer listen on and its certificates name. Nothing may assume one host.
#[test]
fn network_up_across_hosts_in_network_namespaces() {
    use qcss_tests::netns::Netns;
    if let Err(e) = Netns::available() {
        eprintln!(
            "SKIPPED: cannot create network namespaces here ({e}); run as root with iproute2"
        );
        return;
    }
    let net = Netns::create(4).expect("network namespaces");
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    let _down = NetworkDown(dir);
    let hosts: Vec<String> = (1..=4).map(|i| net.ip(i)).collect();
    let ns1 = net.ns(1);
    let template = format!(
        "ip netns exec {}{{org}}",
        ns1.strip_suffix('1')
            .expect("namespace names end in the node number")
    );
    let c = contract();
    let out = qcss_ok(
        dir,
        &[
            "network",
            "up",
            "--dir",
            "net",
            "--demo",
            "--contract",
            &c,
            "--hosts",
            &hosts.join(","),
            "--exec-prefix",
            &template,
        ],
    );
    for h in &hosts {
        assert!(out.contains(&format!("peer {h}:")), "org on {h}:\n{out}");
    }
    assert!(!out.contains("peer 127.0.0.1"), "{out}");
    let status = qcss_ok(dir, &["network", "status", "--dir", "net"]);
    // 4 CAs, 3 orderers, 4 peers, 3 public-chain nodes on the first
    // three orgs' hosts, and the anchoring bridge on the first org's.
    assert_eq!(
        status.matches("up  ").count(),
        4 + 3 + 4 + 3 + 1,
        "{status}"
    );
    for (i, h) in hosts.iter().take(3).enumerate() {
        assert!(
            status.contains(&format!("chain{}", i + 1)) && status.contains(&format!("up    {h}:")),
            "chain{} on {h}:\n{status}",
            i + 1
        );
    }
    let lines = trace_lines(&out);
    let a: Vec<&str> = std::iter::once("trace")
        .chain(lines[0].iter().map(String::as_str))
        .collect();
    let good = qcss_ok(dir, &a);
    assert!(good.contains("receiving"), "{good}");
    qcss_ok(dir, &["network", "down", "--dir", "net"]);
}
