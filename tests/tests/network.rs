//! `qcss network up --demo` as a newcomer runs it: a whole consortium of
//! real processes, the demo story, `network status`, `trace` of the three
//! printed codes, `network down`, and `up` again on the same data.

use std::path::Path;
use std::time::Duration;

use qcss_tests::{NetworkDown, qcss, qcss_ok};

fn contract() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chaincode/contracts/build/traceability.wasm")
        .display()
        .to_string()
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

    let status = qcss_ok(dir, &["network", "status", "--dir", "net"]);
    assert_eq!(status.matches("up  ").count(), 4 + 3 + 4, "{status}");

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
    assert_eq!(heights(&status), before, "same heights after a restart");
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
    assert_eq!(status.matches("up  ").count(), 4 + 3 + 4, "{status}");
    let lines = trace_lines(&out);
    let a: Vec<&str> = std::iter::once("trace")
        .chain(lines[0].iter().map(String::as_str))
        .collect();
    let good = qcss_ok(dir, &a);
    assert!(good.contains("receiving"), "{good}");
    qcss_ok(dir, &["network", "down", "--dir", "net"]);
}
