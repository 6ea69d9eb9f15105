//! A peer's TLS certificate renewed in place: `qcss ca reenroll
//! --tls-hosts` writes a new pair into the peer's directory, SIGHUP (or the
//! `tls_reload_secs` timer) makes the running peer serve it on new
//! connections and present it to the orderers, with no restart; a pair whose
//! key is not the certificate's is refused with the reason and the old pair
//! stays in service.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qcss_tests::peers::{Network, NetworkOptions};
use qcss_tests::qcss_ok;

/// The leaf certificate the server at `addr` presents, as PEM, read with
/// openssl (the client side of the handshake is `client`'s TLS pair).
fn served_cert(addr: &str, client: &Path) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "localhost"])
        .arg("-cert")
        .arg(client.join("tls-cert.pem"))
        .arg("-key")
        .arg(client.join("tls-key.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----");
    let end = text
        .find("-----END CERTIFICATE-----")
        .map(|e| e + "-----END CERTIFICATE-----".len());
    match (begin, end) {
        (Some(b), Some(e)) => text[b..e].to_string(),
        _ => String::new(),
    }
}

fn leaf(file: &Path) -> String {
    let pem = std::fs::read_to_string(file).expect("cert file");
    let e = pem
        .find("-----END CERTIFICATE-----")
        .expect("a certificate")
        + "-----END CERTIFICATE-----".len();
    pem[pem.find("-----BEGIN").expect("a certificate")..e].to_string()
}

fn hup(pid: u32) {
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

fn wait_served(addr: &str, client: &Path, want: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = served_cert(addr, client);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the peer still serves another certificate:\n{got}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_peer_serves_a_renewed_tls_pair_without_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let net = Network::start(
        tmp.path(),
        NetworkOptions {
            orgs: 1,
            ..NetworkOptions::default()
        },
    );
    let org = &net.orgs[0];
    let peer_dir = org.dir.join("peer1");
    let client = org.dir.join("client1");
    let addr = net.peer_addrs[0].clone();
    let pid = net.peers[0].as_ref().expect("peer running").pid();
    let invoke = |value: &str| {
        net.cli(
            &[
                "tx",
                "invoke",
                "--chaincode",
                "example",
                "--fn",
                "put",
                "--args",
                &format!(r#"["size","{value}"]"#),
            ],
            &net.conn(1, "client1"),
        )
    };
    let old = leaf(&peer_dir.join("tls-cert.pem"));
    assert_eq!(served_cert(&addr, &client), old, "serves its first pair");
    assert!(invoke("S").contains("code: VALID"));

    // Renew the pair with the org's CA, in place; tell the peer.
    let mut a = vec![
        "ca",
        "reenroll",
        "--identity",
        "peer1",
        "--tls-hosts",
        "localhost,127.0.0.1",
    ];
    let conn = org.ca.conn_args();
    a.extend(conn.iter().map(String::as_str));
    qcss_ok(&org.dir, &a);
    let new = leaf(&peer_dir.join("tls-cert.pem"));
    assert_ne!(new, old, "reenroll wrote a new certificate");
    hup(pid);
    wait_served(&addr, &client, &new, "after SIGHUP");
    // New client connections, and the peer's own to the orderers (a
    // transaction is endorsed, ordered and committed), work with it.
    assert!(invoke("M").contains("code: VALID"));
    let log = net.peer_log(1);
    assert!(
        log.contains("TLS certificate renewed"),
        "the peer says so:\n{log}"
    );

    // A pair whose key is not the certificate's is refused with the reason;
    // the peer keeps serving the pair it has.
    let good_key = std::fs::read(peer_dir.join("tls-key.pem")).expect("key");
    std::fs::copy(client.join("tls-key.pem"), peer_dir.join("tls-key.pem")).expect("copy");
    hup(pid);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !net
        .peer_log(1)
        .contains("does not belong to the TLS certificate")
    {
        assert!(Instant::now() < deadline, "no refusal in the log");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served_cert(&addr, &client), new, "still the good pair");
    assert!(invoke("L").contains("code: VALID"));
    std::fs::write(peer_dir.join("tls-key.pem"), good_key).expect("restore");
    assert!(net.peers[0].is_some(), "never restarted");
}
