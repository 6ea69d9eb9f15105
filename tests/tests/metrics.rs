//! Every node's `/metrics`, as Prometheus' own checker reads it: a network
//! brought up by `qcss network up` (its CA, its peer, three orderers and
//! three public-chain nodes) is
//! scraped and each page piped to `promtool check metrics`, which rejects
//! malformed exposition text and names that contradict their type (a gauge
//! called `..._total`, a counter without it). Certificate expiry is computed
//! at scrape time, so the two figures for the peer's signing certificate
//! agree.
//!
//! promtool comes with Debian's `prometheus` package (`.ci/run` installs it);
//! without it the test says so and passes only outside CI.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use qcss_tests::{NetworkDown, http_get, qcss_ok, standard_tools_required};

fn contract() -> String {
    qcss_tests::peers::traceability_wasm().display().to_string()
}

/// `promtool check metrics` on `text`: (success, what it printed).
fn promtool_check(text: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool");
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), said))
}

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
        .parse()
        .expect("a number")
}

#[test]
fn every_nodes_metrics_pass_promtool_and_expiry_is_computed_at_scrape_time() {
    if promtool_check("").is_none() {
        assert!(
            !standard_tools_required(),
            "promtool is not installed (apt-get install -y prometheus)"
        );
        eprintln!(
            "SKIPPED: promtool is not installed (apt-get install -y prometheus); .ci/run installs it"
        );
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    let _down = NetworkDown(dir);
    let c = contract();
    qcss_ok(
        dir,
        &[
            "network",
            "up",
            "--dir",
            "net",
            "--orgs",
            "1",
            "--contract",
            &c,
        ],
    );
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("net/network.json")).expect("network.json"))
            .expect("network.json is JSON");
    let org = &info["orgs"][0];
    let mut nodes = vec![
        ("CA".to_string(), org["ca_ops"].as_str().expect("ca_ops")),
        (
            "peer".to_string(),
            org["peer_ops"].as_str().expect("peer_ops"),
        ),
    ];
    for o in info["orderers"].as_array().expect("orderers") {
        nodes.push((
            format!("orderer{}", o["id"]),
            o["ops"].as_str().expect("orderer ops"),
        ));
    }
    for n in info["chain"]["nodes"].as_array().expect("chain nodes") {
        nodes.push((
            n["name"].as_str().expect("name").to_string(),
            n["ops"].as_str().expect("chain ops"),
        ));
    }
    assert_eq!(nodes.len(), 8, "{info}");

    // An expiry set once at start would lag by now.
    std::thread::sleep(Duration::from_secs(3));
    for (node, ops) in &nodes {
        let (status, page) = http_get(ops, "/metrics").expect("scrape");
        assert_eq!(status, 200, "{node} /metrics: {page}");
        assert!(page.contains("# TYPE "), "{node} /metrics: {page}");
        let (ok, said) = promtool_check(&page).expect("promtool");
        assert!(
            ok && said.trim().is_empty(),
            "promtool check metrics refuses {node}'s /metrics:\n{said}\n--- page ---\n{page}"
        );
    }

    let (_, peer) = http_get(nodes[1].1, "/metrics").expect("scrape");
    assert!(
        peer.contains("# TYPE qcss_peer_signature_check_seconds_total counter\n"),
        "{peer}"
    );
    let left = sample(&peer, "qcss_peer_cert_expiry_seconds");
    let labelled = sample(&peer, "qcss_cert_expiry_seconds{cert=\"signing\"}");
    assert!(
        (left - labelled).abs() <= 1.0,
        "the signing certificate expires in {left} s by one metric and {labelled} s by the other"
    );
}
