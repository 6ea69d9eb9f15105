//! The certificate authority end to end: a real `qcss ca start` process on
//! 127.0.0.1, driven through the `qcss ca` CLI over TLS, checked with the MSP
//! and with openssl.

use std::path::Path;

use qcss_network::msp::{Msp, MspConfig, MspError};
use qcss_network::{CertInfo, Role};
use qcss_tests::{CaNode, have_openssl, openssl, qcss_err, qcss_ok};

fn args<'a>(conn: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = rest.to_vec();
    v.extend(conn.iter().map(String::as_str));
    v
}

/// Registers and enrolls `name`; returns its identity directory.
fn register_enroll(
    dir: &Path,
    conn: &[String],
    name: &str,
    role: &str,
    extra: &[&str],
    tls: bool,
) -> std::path::PathBuf {
    let mut a = vec![
        "ca",
        "register",
        "--identity",
        "admin",
        "--name",
        name,
        "--role",
        role,
    ];
    a.extend_from_slice(extra);
    let secret = qcss_ok(dir, &args(conn, &a)).trim().to_string();
    assert_eq!(secret.len(), 24, "generated secret: {secret:?}");
    let out = dir.join(name);
    let out_s = out.display().to_string();
    let mut e = vec![
        "ca", "enroll", "--name", name, "--secret", &secret, "--out", &out_s,
    ];
    if tls {
        e.extend_from_slice(&["--tls-hosts", "localhost,127.0.0.1"]);
    }
    qcss_ok(dir, &args(conn, &e));
    out
}

fn msp(home: &Path, crls: Vec<String>) -> Msp {
    Msp::new(MspConfig {
        msp_id: "Org1MSP".into(),
        root_certs: vec![std::fs::read_to_string(home.join("ca-cert.pem")).unwrap()],
        crls,
        ..Default::default()
    })
    .unwrap()
}

fn cert_der(dir: &Path, file: &str) -> Vec<u8> {
    let pem = std::fs::read(dir.join(file)).unwrap();
    qcss_network::identity::certs_from_pem(&pem)
        .unwrap()
        .remove(0)
}

/// (name, role, extra register flags, expected kinds, with TLS)
type Person = (
    &'static str,
    Role,
    &'static [&'static str],
    &'static [&'static str],
    bool,
);

#[test]
fn enroll_every_kind_validate_revoke_and_restart() {
    assert!(have_openssl(), "openssl is required (.ci/run installs it)");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = dir.join("ca-home");
    let ca = CaNode::start(&home, 0);
    let conn = ca.conn_args();
    let secret = ca
        .bootstrap_secret
        .clone()
        .expect("bootstrap secret printed once");
    let file_secret = std::fs::read_to_string(home.join("bootstrap-admin.secret")).unwrap();
    assert_eq!(file_secret.trim(), secret);

    qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca", "enroll", "--name", "admin", "--secret", &secret, "--out", "admin",
            ],
        ),
    );
    let key_mode = std::fs::metadata(dir.join("admin/key.pem")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
        0o600
    );

    // (name, role, extra register flags, expected kinds, with TLS)
    let people: [Person; 8] = [
        (
            "org1-admin",
            Role::Admin,
            &["--registrar-roles", "client"],
            &[],
            false,
        ),
        ("peer0", Role::Peer, &[], &[], true),
        ("orderer0", Role::Orderer, &[], &[], true),
        (
            "app1",
            Role::Client,
            &["--kind", "enterprise"],
            &["enterprise"],
            true,
        ),
        (
            "lab1",
            Role::Client,
            &["--kind", "lab", "--attr", "accreditation=CNAS-L1234"],
            &["lab"],
            false,
        ),
        (
            "regulator1",
            Role::Client,
            &["--kind", "regulator,auditor"],
            &["regulator", "auditor"],
            false,
        ),
        (
            "consumer1",
            Role::Client,
            &["--kind", "consumer"],
            &["consumer"],
            false,
        ),
        (
            "sensor-7",
            Role::Client,
            &["--kind", "device", "--attr", "model=TH-20"],
            &["device"],
            false,
        ),
    ];
    let m = msp(&home, vec![]);
    for (name, role, extra, kinds, tls) in people {
        let id = register_enroll(dir, &conn, name, role.as_str(), extra, tls);
        let v = m.validate(&cert_der(&id, "cert.pem")).unwrap();
        assert_eq!(v.role, role, "{name}");
        assert_eq!(v.cert.common_name, name);
        assert_eq!(v.cert.kinds(), kinds.to_vec(), "{name}");
        let ca_pem = home.join("ca-cert.pem").display().to_string();
        let cert = id.join("cert.pem").display().to_string();
        let (ok, text) = openssl(&["verify", "-CAfile", &ca_pem, &cert]);
        assert!(ok, "openssl verify {name}: {text}");
        if tls {
            let tls_ca = home.join("tls-ca-cert.pem").display().to_string();
            let tcert = id.join("tls-cert.pem").display().to_string();
            let (ok, text) = openssl(&["verify", "-CAfile", &tls_ca, &tcert]);
            assert!(ok, "openssl verify TLS {name}: {text}");
            let tinfo = CertInfo::from_der(&cert_der(&id, "tls-cert.pem")).unwrap();
            assert!(tinfo.sans.contains(&"127.0.0.1".to_string()));
            // A TLS certificate is not a signing identity.
            assert!(m.validate(&cert_der(&id, "tls-cert.pem")).is_err());
        }
    }
    let lab = CertInfo::from_der(&cert_der(&dir.join("lab1"), "cert.pem")).unwrap();
    assert_eq!(
        lab.attributes.get("accreditation").map(String::as_str),
        Some("CNAS-L1234")
    );

    // Bad inputs through the CLI name what was wrong.
    let e = qcss_err(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "enroll",
                "--name",
                "peer0",
                "--secret",
                "not-the-secret",
                "--out",
                "x",
            ],
        ),
    );
    assert!(e.contains("wrong enrollment secret for \"peer0\""), "{e}");
    let e = qcss_err(
        dir,
        &args(
            &conn,
            &[
                "ca", "enroll", "--name", "ghost", "--secret", "whatever", "--out", "x",
            ],
        ),
    );
    assert!(e.contains("unknown name \"ghost\""), "{e}");
    let e = qcss_err(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "register",
                "--identity",
                "app1",
                "--name",
                "z",
                "--role",
                "client",
            ],
        ),
    );
    assert!(e.contains("is not a registrar"), "{e}");
    let e = qcss_err(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "register",
                "--identity",
                "org1-admin",
                "--name",
                "z",
                "--role",
                "peer",
            ],
        ),
    );
    assert!(e.contains("may not act on role peer"), "{e}");
    let e = qcss_err(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "register",
                "--identity",
                "admin",
                "--name",
                "z",
                "--role",
                "client",
                "--kind",
                "wizard",
            ],
        ),
    );
    assert!(e.contains("unknown kind \"wizard\""), "{e}");

    // Revoke app1: its certificates appear in the new CRLs, the MSP refuses it,
    // and it cannot reenroll.
    let app1_serial = CertInfo::from_der(&cert_der(&dir.join("app1"), "cert.pem"))
        .unwrap()
        .serial_hex;
    let out = qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "revoke",
                "--identity",
                "admin",
                "--name",
                "app1",
                "--reason",
                "keyCompromise",
                "--crl-out",
                "crl.pem",
            ],
        ),
    );
    assert!(out.contains(&app1_serial), "{out}");
    let (ok, text) = openssl(&[
        "crl",
        "-in",
        &dir.join("crl.pem").display().to_string(),
        "-noout",
        "-text",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.to_lowercase().contains(&app1_serial),
        "CRL lists the serial: {text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    qcss_ok(
        dir,
        &args(
            &conn,
            &["ca", "crl", "--out", "crl2.pem", "--tls-out", "tls-crl.pem"],
        ),
    );
    let crl = std::fs::read_to_string(dir.join("crl2.pem")).unwrap();
    let m2 = msp(&home, vec![crl]);
    assert!(matches!(
        m2.validate(&cert_der(&dir.join("app1"), "cert.pem")),
        Err(MspError::Revoked { .. })
    ));
    m2.validate(&cert_der(&dir.join("lab1"), "cert.pem"))
        .unwrap();
    let (ok, text) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &dir.join("crl2.pem").display().to_string(),
        "-CAfile",
        &home.join("ca-cert.pem").display().to_string(),
        &dir.join("app1/cert.pem").display().to_string(),
    ]);
    assert!(
        !ok && text.contains("revoked"),
        "openssl must see the revocation: {text}"
    );
    let e = qcss_err(dir, &args(&conn, &["ca", "reenroll", "--identity", "app1"]));
    assert!(e.contains("revoked"), "{e}");

    // Reenroll lab1 with a new key: files replaced, new serial, same role.
    let before = CertInfo::from_der(&cert_der(&dir.join("lab1"), "cert.pem")).unwrap();
    qcss_ok(dir, &args(&conn, &["ca", "reenroll", "--identity", "lab1"]));
    let after = CertInfo::from_der(&cert_der(&dir.join("lab1"), "cert.pem")).unwrap();
    assert_ne!(before.serial_hex, after.serial_hex);
    assert_ne!(before.public_key, after.public_key);
    assert_eq!(after.kinds(), vec!["lab"]);

    // Restart on the same home: same root, identities and counts kept, no new bootstrap.
    let root_before = std::fs::read(home.join("ca-cert.pem")).unwrap();
    let twice = qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "register",
                "--identity",
                "admin",
                "--name",
                "twice",
                "--role",
                "client",
                "--max-enrollments",
                "2",
            ],
        ),
    )
    .trim()
    .to_string();
    qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca", "enroll", "--name", "twice", "--secret", &twice, "--out", "twice",
            ],
        ),
    );
    ca.stop();
    let ca = CaNode::start(&home, 0);
    assert!(
        ca.bootstrap_secret.is_none(),
        "restart must not create another bootstrap admin"
    );
    let conn = ca.conn_args();
    assert_eq!(
        std::fs::read(home.join("ca-cert.pem")).unwrap(),
        root_before
    );
    let info = qcss_ok(dir, &args(&conn, &["ca", "info", "--json"]));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(
        info["root_cert_pem"].as_str().unwrap().as_bytes(),
        root_before.as_slice()
    );
    qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca", "enroll", "--name", "twice", "--secret", &twice, "--out", "twice",
            ],
        ),
    );
    let e = qcss_err(
        dir,
        &args(
            &conn,
            &[
                "ca", "enroll", "--name", "twice", "--secret", &twice, "--out", "twice",
            ],
        ),
    );
    assert!(e.contains("used all 2"), "{e}");
    // Revocations survive the restart too.
    let e = qcss_err(dir, &args(&conn, &["ca", "reenroll", "--identity", "app1"]));
    assert!(e.contains("revoked"), "{e}");
    ca.stop();
}

#[test]
fn oversize_request_is_refused_over_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = CaNode::start(&tmp.path().join("ca"), 0);
    let root = std::fs::read(ca.tls_root()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = qcss_ca::client::CaClient::connect(&ca.addr, &root, None)
            .await
            .unwrap();
        let err = c
            .enroll_raw(qcss_proto::qcss::ca::EnrollRequest {
                name: "admin".into(),
                secret: "x".into(),
                csr_pem: "A".repeat(200 * 1024),
                ..Default::default()
            })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("too large") || text.contains("exceeds"),
            "{text}"
        );
        // The CA still serves normally afterwards.
        assert_eq!(c.info().await.unwrap().msp_id, "Org1MSP");
    });
}

/// The month number of an openssl date's month name.
fn month(name: &str) -> i64 {
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    months
        .iter()
        .position(|m| *m == name)
        .unwrap_or_else(|| panic!("month {name:?}")) as i64
        + 1
}

/// An openssl text date (`Dec  3 04:40:00 2026 GMT`) as Unix seconds.
fn openssl_time(s: &str) -> i64 {
    let p: Vec<&str> = s.split_whitespace().collect();
    assert!(p.len() == 5 && p[4] == "GMT", "openssl date {s:?}");
    let hms: Vec<i64> = p[2].split(':').map(|x| x.parse().unwrap()).collect();
    let days = qcss_network::clock::days_from_civil(
        p[3].parse().unwrap(),
        month(p[0]),
        p[1].parse().unwrap(),
    );
    days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// The dates after `label` (e.g. `Last Update: `) on each line of `text`.
fn openssl_dates(text: &str, label: &str) -> Vec<i64> {
    text.lines()
        .filter_map(|l| l.split_once(label).map(|(_, d)| openssl_time(d.trim())))
        .collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What Fabric's chaincode and client libraries read, checked with openssl
/// as an outsider sees it: every enrolled signing certificate (admin, peer,
/// orderer, client) carries Fabric CA's attribute extension (OID
/// 1.2.3.4.5.6.7.8.1, `{"attrs":{...}}`) with `hf.EnrollmentID`, `hf.Type`
/// and `hf.Affiliation` beside the registered attributes; a TLS certificate
/// names each host once even when asked twice (the CA's own and an
/// enrolled one); a CRL's `thisUpdate` is its signing time, not earlier,
/// and no revocation in it is later.
#[test]
fn fabric_ca_attributes_single_sans_and_crl_not_backdated() {
    assert!(have_openssl(), "openssl is required (.ci/run installs it)");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = dir.join("ca-home");
    let ca = CaNode::start_with(
        &home,
        0,
        &[
            "--org",
            "producer",
            "--tls-host",
            "localhost,127.0.0.1,127.0.0.1",
        ],
    );
    let conn = ca.conn_args();
    let secret = ca.bootstrap_secret.clone().expect("bootstrap secret");
    qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca", "enroll", "--name", "admin", "--secret", &secret, "--out", "admin",
            ],
        ),
    );
    let x509 = |path: &Path| {
        let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", path.to_str().unwrap()]);
        assert!(ok, "{text}");
        text
    };
    // The extension's value is the JSON itself; openssl prints it as text.
    let attrs = |path: &Path| -> serde_json::Value {
        let text = x509(path);
        let (_, after) = text
            .split_once("1.2.3.4.5.6.7.8.1:")
            .unwrap_or_else(|| panic!("no attribute extension in {}:\n{text}", path.display()));
        let line = after
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"))
            .trim();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}\n{text}"))
    };
    let admin = attrs(&dir.join("admin/cert.pem"));
    assert_eq!(
        admin,
        serde_json::json!({"attrs": {"hf.EnrollmentID": "admin", "hf.Type": "admin",
                                     "hf.Affiliation": "producer"}})
    );
    for (name, role, extra, more) in [
        ("peer0", "peer", &[][..], serde_json::json!({})),
        ("orderer1", "orderer", &[], serde_json::json!({})),
        (
            "lab1",
            "client",
            &["--kind", "lab", "--attr", "accreditation=CNAS-L1234"][..],
            serde_json::json!({"lab": "true", "accreditation": "CNAS-L1234"}),
        ),
    ] {
        let id = register_enroll(dir, &conn, name, role, extra, false);
        let mut want = serde_json::json!({"hf.EnrollmentID": name, "hf.Type": role,
                                          "hf.Affiliation": "producer"});
        for (k, v) in more.as_object().unwrap() {
            want[k] = v.clone();
        }
        assert_eq!(attrs(&id.join("cert.pem"))["attrs"], want, "{name}");
        // Still a valid identity of its role for the MSP.
        let v = msp(&home, vec![])
            .validate(&cert_der(&id, "cert.pem"))
            .unwrap();
        assert_eq!(v.role.as_str(), role);
    }
    // The standard attributes are the CA's to set.
    let e = qcss_err(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "register",
                "--identity",
                "admin",
                "--name",
                "eve",
                "--role",
                "client",
                "--attr",
                "hf.EnrollmentID=admin",
            ],
        ),
    );
    assert!(e.contains("hf.EnrollmentID is set by the CA"), "{e}");

    // SANs: 127.0.0.1 asked twice (by the CA's config, by an enrollment)
    // is listed once.
    let ip_once = |text: &str, what: &str| {
        assert_eq!(
            text.matches("IP Address:127.0.0.1").count(),
            1,
            "{what}: {text}"
        );
    };
    ip_once(&x509(&home.join("server-tls-cert.pem")), "CA server TLS");
    let secret = qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "register",
                "--identity",
                "admin",
                "--name",
                "peer1",
                "--role",
                "peer",
            ],
        ),
    );
    qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "enroll",
                "--name",
                "peer1",
                "--secret",
                secret.trim(),
                "--out",
                "peer1",
                "--tls-hosts",
                "localhost,127.0.0.1,127.0.0.1,LOCALHOST",
            ],
        ),
    );
    let tls = x509(&dir.join("peer1/tls-cert.pem"));
    ip_once(&tls, "enrolled TLS");
    assert_eq!(
        tls.to_ascii_lowercase().matches("dns:localhost").count(),
        1,
        "{tls}"
    );

    // The CRL: thisUpdate no earlier than the request, revocations no later.
    let before = unix_now();
    qcss_ok(
        dir,
        &args(
            &conn,
            &[
                "ca",
                "revoke",
                "--identity",
                "admin",
                "--name",
                "lab1",
                "--reason",
                "superseded",
                "--crl-out",
                "crl.pem",
            ],
        ),
    );
    let after = unix_now();
    let (ok, text) = openssl(&[
        "crl",
        "-noout",
        "-text",
        "-in",
        dir.join("crl.pem").to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let this_update = openssl_dates(&text, "Last Update: ");
    assert_eq!(this_update.len(), 1, "{text}");
    let this_update = this_update[0];
    assert!(
        (before..=after).contains(&this_update),
        "thisUpdate {this_update} is outside the request's {before}..={after}:\n{text}"
    );
    let revoked = openssl_dates(&text, "Revocation Date: ");
    assert_eq!(revoked.len(), 1, "{text}");
    assert!(revoked[0] <= this_update, "{text}");
    // openssl accepts the fresh CRL at once and sees the revocation.
    let (ok, text) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        dir.join("crl.pem").to_str().unwrap(),
        "-CAfile",
        home.join("ca-cert.pem").to_str().unwrap(),
        dir.join("lab1/cert.pem").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
}
