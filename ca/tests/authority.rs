//! The CA's rules, called directly on a real sled store on disk: every bad
//! input is refused with an error naming what was wrong, and leaves the
//! store byte-for-byte unchanged.

use qcss_ca::authority::{Authority, signed_bytes};
use qcss_ca::client::{make_csr, sign_request, stamp};
use qcss_ca::{CaConfig, CaError};
use qcss_network::signing::{KeyKind, SigningKey};
use qcss_network::{MspId, SigningIdentity};
use qcss_proto::qcss::ca as pb;

struct Ca {
    auth: Authority,
    _dir: tempfile::TempDir,
    admin: SigningIdentity,
}

fn open() -> (Authority, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CaConfig {
        home: dir.path().join("ca"),
        max_failed_attempts: 3,
        ..Default::default()
    };
    let (auth, secret) = Authority::open(cfg).unwrap();
    (auth, secret.unwrap(), dir)
}

fn enroll(auth: &Authority, name: &str, secret: &str) -> Result<SigningIdentity, CaError> {
    enroll_kind(auth, name, secret, KeyKind::P256)
}

fn enroll_kind(
    auth: &Authority,
    name: &str,
    secret: &str,
    kind: KeyKind,
) -> Result<SigningIdentity, CaError> {
    let key = SigningKey::generate_kind(kind).unwrap();
    let issued = auth.enroll(&pb::EnrollRequest {
        name: name.into(),
        secret: secret.into(),
        csr_pem: make_csr(&key, name).unwrap(),
        profile: String::new(),
        hosts: vec![],
    })?;
    Ok(SigningIdentity::new(MspId("Org1MSP".into()), issued.cert_pem.into_bytes(), key).unwrap())
}

fn setup() -> Ca {
    let (auth, secret, dir) = open();
    let admin = enroll(&auth, "admin", &secret).unwrap();
    Ca {
        auth,
        _dir: dir,
        admin,
    }
}

fn reg(who: &SigningIdentity, name: &str, role: &str, attrs: &[(&str, &str)]) -> pb::SignedRequest {
    let req = pb::RegisterRequest {
        stamp: Some(stamp().unwrap()),
        name: name.into(),
        role: role.into(),
        attributes: attrs
            .iter()
            .map(|(k, v)| pb::Attribute {
                name: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        max_enrollments: 0,
        secret: String::new(),
        registrar_roles: vec![],
    };
    sign_request(who, "Register", &req).unwrap()
}

/// Asserts `f` fails with an error whose text contains `needle` and that the store did not change.
fn refused<T: std::fmt::Debug>(
    ca: &Ca,
    needle: &str,
    f: impl FnOnce(&Authority) -> Result<T, CaError>,
) {
    let before = ca.auth.store().fingerprint().unwrap();
    let err = f(&ca.auth).expect_err("request should have been refused");
    assert!(
        err.to_string().contains(needle),
        "error {err:?} does not mention {needle:?}"
    );
    assert_eq!(
        ca.auth.store().fingerprint().unwrap(),
        before,
        "store changed after: {err}"
    );
}

#[test]
fn register_enroll_and_audit() {
    let ca = setup();
    let secret = ca
        .auth
        .register(&reg(&ca.admin, "lab1", "client", &[("lab", "true")]))
        .unwrap();
    let lab = enroll(&ca.auth, "lab1", &secret).unwrap();
    assert_eq!(lab.cert.kinds(), vec!["lab"]);
    assert_eq!(lab.cert.role, Some(qcss_network::Role::Client));
    let log = ca.auth.store().audit_log().unwrap();
    let actions: Vec<_> = log
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("register", "admin"),
            ("enroll", "admin"),
            ("register", "lab1"),
            ("enroll", "lab1")
        ]
    );
    assert!(log.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
}

/// An Ed25519 key in the CSR gets an Ed25519 certificate from the P-256
/// CA; the identity signs, is a valid member of the CA's MSP, and can act
/// as a registrar like any other.
#[test]
fn ed25519_identities_enroll_and_act() {
    let ca = setup();
    let req = pb::RegisterRequest {
        stamp: Some(stamp().unwrap()),
        name: "sub".into(),
        role: "admin".into(),
        registrar_roles: vec!["client".into()],
        ..Default::default()
    };
    let secret = ca
        .auth
        .register(&sign_request(&ca.admin, "Register", &req).unwrap())
        .unwrap();
    let sub = enroll_kind(&ca.auth, "sub", &secret, KeyKind::Ed25519).unwrap();
    assert_eq!(sub.cert.public_key.len(), 32);
    assert_eq!(sub.key().kind(), KeyKind::Ed25519);
    let sig = sub.sign(b"m").unwrap();
    qcss_network::signing::verify(&sub.cert.public_key, b"m", &sig).unwrap();
    // It signs a request the CA checks: a registration.
    ca.auth.register(&reg(&sub, "c9", "client", &[])).unwrap();
}

#[test]
fn wrong_secret_unknown_name_and_lockout() {
    let ca = setup();
    let secret = ca
        .auth
        .register(&reg(&ca.admin, "bob", "client", &[]))
        .unwrap();
    refused(&ca, "unknown name \"nobody\"", |a| {
        enroll(a, "nobody", "whatever1")
    });
    refused(&ca, "wrong enrollment secret for \"bob\"", |a| {
        enroll(a, "bob", "wrong-secret")
    });
    refused(&ca, "wrong enrollment secret", |a| {
        enroll(a, "bob", "wrong-secret")
    });
    refused(&ca, "wrong enrollment secret", |a| {
        enroll(a, "bob", "wrong-secret")
    });
    // Third failure locked the name: even the right secret waits.
    refused(
        &ca,
        "too many failed enrollment attempts for \"bob\"",
        |a| enroll(a, "bob", &secret),
    );
}

#[test]
fn enrollments_are_counted_and_exhausted() {
    let ca = setup();
    let mut r = pb::RegisterRequest {
        stamp: Some(stamp().unwrap()),
        name: "once".into(),
        role: "client".into(),
        max_enrollments: 1,
        ..Default::default()
    };
    let secret = ca
        .auth
        .register(&sign_request(&ca.admin, "Register", &r).unwrap())
        .unwrap();
    enroll(&ca.auth, "once", &secret).unwrap();
    refused(&ca, "\"once\" has used all 1 of its enrollments", |a| {
        enroll(a, "once", &secret)
    });
    // Registering the same name again is refused too.
    r.stamp = Some(stamp().unwrap());
    refused(&ca, "\"once\" is already registered", |a| {
        a.register(&sign_request(&ca.admin, "Register", &r).unwrap())
    });
}

#[test]
fn registrars_are_limited_to_their_roles() {
    let ca = setup();
    let req = pb::RegisterRequest {
        stamp: Some(stamp().unwrap()),
        name: "sub-admin".into(),
        role: "admin".into(),
        registrar_roles: vec!["client".into()],
        ..Default::default()
    };
    let s = ca
        .auth
        .register(&sign_request(&ca.admin, "Register", &req).unwrap())
        .unwrap();
    let sub = enroll(&ca.auth, "sub-admin", &s).unwrap();
    ca.auth.register(&reg(&sub, "c1", "client", &[])).unwrap();
    refused(
        &ca,
        "registrar \"sub-admin\" may not act on role peer",
        |a| a.register(&reg(&sub, "p1", "peer", &[])),
    );
    let cs = ca
        .auth
        .register(&reg(&ca.admin, "plain", "client", &[]))
        .unwrap();
    let plain = enroll(&ca.auth, "plain", &cs).unwrap();
    refused(&ca, "\"plain\" (role client) is not a registrar", |a| {
        a.register(&reg(&plain, "x1", "client", &[]))
    });
    refused(&ca, "invalid role", |a| {
        a.register(&reg(&ca.admin, "x2", "wizard", &[]))
    });
    refused(&ca, "invalid name", |a| {
        a.register(&reg(&ca.admin, "bad name!", "client", &[]))
    });
}

#[test]
fn bad_csrs_are_refused() {
    let ca = setup();
    let secret = ca
        .auth
        .register(&reg(&ca.admin, "carol", "client", &[("lab", "true")]))
        .unwrap();
    let req = |csr: String| pb::EnrollRequest {
        name: "carol".into(),
        secret: secret.clone(),
        csr_pem: csr,
        profile: String::new(),
        hosts: vec![],
    };
    refused(&ca, "bad CSR: not PEM", |a| {
        a.enroll(&req("garbage".into()))
    });
    // Flip one byte inside the signed part: the signature no longer matches.
    let key = SigningKey::generate().unwrap();
    let good = make_csr(&key, "carol").unwrap();
    let der = pem_body(&good);
    let mut bad = der.clone();
    let i = bad.len() / 2;
    bad[i] ^= 0x01;
    refused(&ca, "bad CSR", |a| {
        a.enroll(&req(to_pem("CERTIFICATE REQUEST", &bad)))
    });
    // A CSR for another name.
    refused(&ca, "asks for CN=mallory", |a| {
        a.enroll(&req(make_csr(&key, "mallory").unwrap()))
    });
    // A CSR asking for a role it was not registered with.
    refused(&ca, "asks for role admin", |a| {
        a.enroll(&req(csr_with(&key, "carol", Some("admin"), None)))
    });
    // A CSR asking for an attribute it was not registered with.
    refused(&ca, "asks for attribute regulator=true", |a| {
        a.enroll(&req(csr_with(
            &key,
            "carol",
            None,
            Some(("regulator", "true")),
        )))
    });
    // Asking for what it has is fine.
    a_ok(ca.auth.enroll(&req(csr_with(
        &key,
        "carol",
        Some("client"),
        Some(("lab", "true")),
    ))));
    // Oversize.
    let huge = "A".repeat(100 * 1024);
    refused(&ca, "exceeds the limit", |a| a.enroll(&req(huge)));
    // Bad TLS hosts.
    refused(&ca, "invalid hosts", |a| {
        a.enroll(&pb::EnrollRequest {
            profile: "tls".into(),
            hosts: vec!["not a host".into()],
            ..req(make_csr(&key, "carol").unwrap())
        })
    });
}

fn a_ok<T, E: std::fmt::Debug>(r: Result<T, E>) {
    r.unwrap();
}

#[test]
fn signed_requests_reject_replay_forgery_staleness_and_revoked_callers() {
    let ca = setup();
    let signed = reg(&ca.admin, "dave", "client", &[]);
    ca.auth.register(&signed).unwrap();
    refused(&ca, "replayed", |a| a.register(&signed));
    // Tampered body.
    let mut forged = reg(&ca.admin, "erin", "client", &[]);
    forged.request.push(0);
    refused(&ca, "signature does not verify", |a| a.register(&forged));
    // Signed for another method.
    let mut other = reg(&ca.admin, "erin", "client", &[]);
    other.signature = ca
        .admin
        .sign(&signed_bytes("Revoke", &other.request))
        .unwrap();
    refused(&ca, "signature does not verify", |a| a.register(&other));
    // Stale timestamp.
    let mut old = pb::RegisterRequest {
        stamp: Some(stamp().unwrap()),
        name: "erin".into(),
        role: "client".into(),
        ..Default::default()
    };
    if let Some(s) = old.stamp.as_mut() {
        s.timestamp -= 3600;
    }
    refused(&ca, "more than 300 s", |a| {
        a.register(&sign_request(&ca.admin, "Register", &old).unwrap())
    });
    // A certificate from a foreign CA.
    let (foreign, fs, _d) = open();
    let stranger = enroll(&foreign, "admin", &fs).unwrap();
    refused(&ca, "caller certificate refused", |a| {
        a.register(&reg(&stranger, "erin", "client", &[]))
    });
    // A revoked admin can no longer register or reenroll.
    let s = ca
        .auth
        .register(
            &sign_request(
                &ca.admin,
                "Register",
                &pb::RegisterRequest {
                    stamp: Some(stamp().unwrap()),
                    name: "admin2".into(),
                    role: "admin".into(),
                    registrar_roles: vec!["client".into()],
                    ..Default::default()
                },
            )
            .unwrap(),
        )
        .unwrap();
    let admin2 = enroll(&ca.auth, "admin2", &s).unwrap();
    let rev = pb::RevokeRequest {
        stamp: Some(stamp().unwrap()),
        name: "admin2".into(),
        reason: "keyCompromise".into(),
        ..Default::default()
    };
    let r = ca
        .auth
        .revoke(&sign_request(&ca.admin, "Revoke", &rev).unwrap())
        .unwrap();
    assert_eq!(r.revoked, vec![admin2.cert.serial_hex.clone()]);
    assert!(r.crl_pem.contains("BEGIN X509 CRL"));
    refused(&ca, "is revoked", |a| {
        a.register(&reg(&admin2, "x3", "client", &[]))
    });
    let re = pb::ReenrollRequest {
        stamp: Some(stamp().unwrap()),
        csr_pem: make_csr(&SigningKey::generate().unwrap(), "admin2").unwrap(),
        profile: String::new(),
        hosts: vec![],
    };
    refused(&ca, "is revoked", |a| {
        a.reenroll(&sign_request(&admin2, "Reenroll", &re).unwrap())
    });
    refused(&ca, "identity \"admin2\" is revoked", |a| {
        enroll(a, "admin2", &s)
    });
    refused(&ca, "give exactly one of name and serial", |a| {
        a.revoke(
            &sign_request(
                &ca.admin,
                "Revoke",
                &pb::RevokeRequest {
                    stamp: Some(stamp().unwrap()),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    });
}

#[test]
fn reenroll_with_a_new_key_keeps_the_name_and_role() {
    let ca = setup();
    let s = ca
        .auth
        .register(&reg(&ca.admin, "frank", "peer", &[]))
        .unwrap();
    let frank = enroll(&ca.auth, "frank", &s).unwrap();
    let key = SigningKey::generate().unwrap();
    let re = pb::ReenrollRequest {
        stamp: Some(stamp().unwrap()),
        csr_pem: make_csr(&key, "frank").unwrap(),
        profile: String::new(),
        hosts: vec![],
    };
    let issued = ca
        .auth
        .reenroll(&sign_request(&frank, "Reenroll", &re).unwrap())
        .unwrap();
    let again =
        SigningIdentity::new(MspId("Org1MSP".into()), issued.cert_pem.into_bytes(), key).unwrap();
    assert_eq!(again.cert.common_name, "frank");
    assert_eq!(again.cert.role, Some(qcss_network::Role::Peer));
    assert_ne!(again.cert.serial_hex, frank.cert.serial_hex);
}

#[test]
fn restart_keeps_root_identities_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CaConfig {
        home: dir.path().join("ca"),
        ..Default::default()
    };
    let (root, secret) = {
        let (auth, bootstrap) = Authority::open(cfg.clone()).unwrap();
        let admin = enroll(&auth, "admin", &bootstrap.unwrap()).unwrap();
        let r = pb::RegisterRequest {
            stamp: Some(stamp().unwrap()),
            name: "twice".into(),
            role: "client".into(),
            max_enrollments: 2,
            ..Default::default()
        };
        let s = auth
            .register(&sign_request(&admin, "Register", &r).unwrap())
            .unwrap();
        enroll(&auth, "twice", &s).unwrap();
        (auth.info().root_cert_pem, s)
    };
    let (auth, bootstrap) = Authority::open(cfg).unwrap();
    assert!(bootstrap.is_none(), "no second bootstrap admin on restart");
    assert_eq!(auth.info().root_cert_pem, root);
    enroll(&auth, "twice", &secret).unwrap();
    let err = enroll(&auth, "twice", &secret).unwrap_err();
    assert!(err.to_string().contains("used all 2"), "{err}");
}

fn pem_body(pem: &str) -> Vec<u8> {
    use rustls_pki_types::CertificateSigningRequestDer;
    use rustls_pki_types::pem::PemObject;
    CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn to_pem(label: &str, der: &[u8]) -> String {
    qcss_network::signing::pem_encode(label, der)
}

/// A CSR with an OU and/or an attribute-extension request.
fn csr_with(key: &SigningKey, cn: &str, ou: Option<&str>, attr: Option<(&str, &str)>) -> String {
    let kp = qcss_network::certgen::rcgen_key(key).unwrap();
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, cn);
    if let Some(ou) = ou {
        dn.push(rcgen::DnType::OrganizationalUnitName, ou);
    }
    params.distinguished_name = dn;
    if let Some((k, v)) = attr {
        let attrs = std::collections::BTreeMap::from([(k.to_string(), v.to_string())]);
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                qcss_network::identity::ATTRIBUTES_OID,
                qcss_network::identity::encode_attributes(&attrs),
            ));
    }
    params.serialize_request(&kp).unwrap().pem().unwrap()
}

/// The server's own TLS certificate is renewed while the CA runs when it
/// expires within a day, and left alone otherwise.
#[test]
fn the_server_tls_certificate_is_renewed_before_it_expires() {
    let (auth, _secret, dir) = open();
    let home = dir.path().join("ca");
    assert!(!auth.renew_server_tls().unwrap(), "a fresh one is kept");
    // Replace it by one from the same TLS CA that expires in an hour.
    let read = |f: &str| std::fs::read_to_string(home.join(f)).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &read("tls-ca-cert.pem"),
        rcgen::KeyPair::from_pem(&read("tls-ca-key.pem")).unwrap(),
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    p.not_after = soon.into();
    let cert_file = auth_server_cert(&home);
    std::fs::write(&cert_file, p.signed_by(&key, &issuer).unwrap().pem()).unwrap();
    let before = std::fs::read(&cert_file).unwrap();
    assert!(auth.renew_server_tls().unwrap(), "renewed");
    let after = std::fs::read(&cert_file).unwrap();
    assert_ne!(after, before);
    let info = qcss_network::CertInfo::from_pem(&after).unwrap();
    assert!(info.not_after > qcss_network::msp::unix_now() + 86_400);
    assert!(!auth.renew_server_tls().unwrap(), "and then kept");
}

fn auth_server_cert(home: &std::path::Path) -> std::path::PathBuf {
    qcss_ca::authority::HomeLayout::new(home).server_tls_cert
}
