//! TLS certificates renewed in place: `qcss ca reenroll --tls-hosts` writes
//! a new pair into a node's directory, SIGHUP (or the `tls_reload_secs`
//! timer) makes the running node serve it on new connections and present it
//! on new outgoing ones, with no restart: a peer (towards the orderers) and
//! every orderer of the cluster in turn. The other consenters admit an
//! orderer by the TLS certificate the channel configuration names for it, so
//! an orderer keeps its old pair until a config update names the new one,
//! then switches (its Raft clients reconnect with it). A pair whose key is
//! not the certificate's is refused with the reason and the old pair stays
//! in service.

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

/// Reenrolls the TLS pair of `name` (a directory of the org) in place.
fn reenroll_tls(org: &qcss_tests::peers::TestOrg, name: &str) -> String {
    let mut a = vec![
        "ca",
        "reenroll",
        "--identity",
        name,
        "--tls-hosts",
        "localhost,127.0.0.1",
    ];
    let conn = org.ca.conn_args();
    a.extend(conn.iter().map(String::as_str));
    let before = leaf(&org.dir.join(name).join("tls-cert.pem"));
    qcss_ok(&org.dir, &a);
    let after = leaf(&org.dir.join(name).join("tls-cert.pem"));
    assert_ne!(after, before, "reenroll wrote a new certificate for {name}");
    after
}

/// A config update, signed by Org1's admin (the only org), that names
/// `cert` as consenter `id`'s TLS certificate.
fn name_consenter_cert(net: &Network, id: u64, cert: &str) {
    let out = net.update_config(|next| {
        let k = next
            .consenters
            .iter_mut()
            .find(|k| k.id == id)
            .expect("consenter");
        k.tls_cert_pem = format!("{cert}\n");
    });
    assert!(
        out.contains(&format!("~ consenter {id} certificates")),
        "{out}"
    );
}

fn hup(pid: u32) {
    qcss_tests::signal(pid, "-HUP");
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
    let invoke = |value: &str| net.put_example(1, "size", value);
    let old = leaf(&peer_dir.join("tls-cert.pem"));
    assert_eq!(served_cert(&addr, &client), old, "serves its first pair");
    assert!(invoke("S").contains("code: VALID"));

    // Renew the pair with the org's CA, in place; tell the peer.
    let new = reenroll_tls(org, "peer1");
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

    // Every orderer in turn: renewed files wait for the channel
    // configuration; once it names the new certificate the orderer serves
    // it, and whichever leads, the cluster keeps ordering over connections
    // made with the renewed pairs.
    let orderer_log = |i: usize| {
        std::fs::read_to_string(net.dir.join(format!("orderer{i}.log"))).unwrap_or_default()
    };
    for i in 1..=3 {
        let addr = net.orderer_addrs[i - 1].clone();
        let opid = net.orderers[i - 1].as_ref().expect("orderer running").pid();
        let old = served_cert(&addr, &client);
        let new = reenroll_tls(org, &format!("orderer{i}"));
        hup(opid);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !orderer_log(i).contains("does not name it for consenter") {
            assert!(Instant::now() < deadline, "orderer{i} did not say it waits");
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(served_cert(&addr, &client), old, "orderer{i} waits");
        name_consenter_cert(&net, i as u64, &new);
        hup(opid);
        wait_served(&addr, &client, &new, &format!("orderer{i}"));
        assert!(invoke(&format!("O{i}")).contains("code: VALID"));
    }
    assert!(
        net.peers[0].as_ref().map(|p| p.pid()) == Some(pid),
        "never restarted"
    );
}

/// A peer put back in service with a TLS certificate that has already
/// expired: clients refuse it, naming the expiry; the pair is renewed with
/// the CA (reenrolling is signed with the signing identity, not the TLS
/// key) and the running peer serves it, without another restart.
#[test]
fn a_peer_whose_tls_certificate_expired_is_renewed_in_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut net = Network::start(
        tmp.path(),
        NetworkOptions {
            orgs: 1,
            ..NetworkOptions::default()
        },
    );
    let org_dir = net.orgs[0].dir.clone();
    let peer_dir = org_dir.join("peer1");
    let client = org_dir.join("client1");
    // An expired certificate for the peer's own key, from the org's TLS CA.
    let key_pem = std::fs::read_to_string(peer_dir.join("tls-key.pem")).expect("key");
    let key = rcgen::KeyPair::from_pem(&key_pem).expect("peer TLS key");
    let ca_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(org_dir.join("ca/tls-ca-key.pem")).expect("TLS CA key"),
    )
    .expect("TLS CA key");
    let ca_pem = std::fs::read_to_string(org_dir.join("ca/tls-ca-cert.pem")).expect("TLS CA");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).expect("issuer");
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params");
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2025, 1, 1);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "peer1");
    let expired = p.signed_by(&key, &issuer).expect("expired cert").pem();
    net.kill_peer(1);
    std::fs::write(peer_dir.join("tls-cert.pem"), &expired).expect("write");
    net.start_peer(1);
    let pid = net.peers[0].as_ref().expect("peer").pid();
    let invoke = || {
        net.cli_any(
            &[
                "tx",
                "invoke",
                "--chaincode",
                "example",
                "--fn",
                "put",
                "--args",
                r#"["size","XS"]"#,
            ],
            &net.conn(1, "client1"),
        )
    };
    let (ok, out, err) = invoke();
    assert!(
        !ok,
        "a client accepted an expired server certificate: {out}"
    );
    assert!(err.to_lowercase().contains("expired"), "{err}");

    let new = reenroll_tls(&net.orgs[0], "peer1");
    hup(pid);
    wait_served(&net.peer_addrs[0], &client, &new, "after renewal");
    let (ok, out, err) = invoke();
    assert!(ok && out.contains("code: VALID"), "{out}\n{err}");
    assert_eq!(
        net.peers[0].as_ref().map(|p| p.pid()),
        Some(pid),
        "no restart"
    );
}
