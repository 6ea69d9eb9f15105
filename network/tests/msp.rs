//! MSP validation against real certificates made by `certgen`.

use std::collections::BTreeMap;

use qcss_network::certgen::{CertAuthority, SigningProfile, rcgen_key};
use qcss_network::identity::certs_from_pem;
use qcss_network::msp::{Msp, MspConfig, MspError, unix_now};
use qcss_network::signing::SigningKey;
use qcss_network::{CertInfo, Role};

struct Issued {
    der: Vec<u8>,
    serial: Vec<u8>,
}

fn issue(ca: &CertAuthority, name: &str, role: Role, attrs: &[(&str, &str)]) -> Issued {
    let key = SigningKey::generate().unwrap();
    let serial = qcss_network::certgen::random_serial().unwrap();
    let profile = SigningProfile {
        name: name.into(),
        org: "Org1".into(),
        role,
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    };
    let pem = ca
        .issue_signing(&profile, &rcgen_key(&key).unwrap(), &serial, 30)
        .unwrap();
    Issued {
        der: certs_from_pem(pem.as_bytes()).unwrap().remove(0),
        serial,
    }
}

fn msp_for(ca: &CertAuthority) -> Msp {
    Msp::new(MspConfig {
        msp_id: "Org1MSP".into(),
        root_certs: vec![ca.cert_pem().to_string()],
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn every_role_validates_with_its_role_and_attributes() {
    let ca = CertAuthority::new_root("ca.org1", "Org1", 365).unwrap();
    let msp = msp_for(&ca);
    for role in Role::ALL {
        let c = issue(
            &ca,
            &format!("{role}1"),
            role,
            &[("lab", "true"), ("site", "Putian")],
        );
        let v = msp.validate(&c.der).unwrap();
        assert_eq!(v.role, role);
        assert_eq!(v.msp_id.as_str(), "Org1MSP");
        assert_eq!(
            v.attributes().get("site").map(String::as_str),
            Some("Putian")
        );
        assert_eq!(v.cert.kinds(), vec!["lab"]);
        assert_eq!(v.cert.common_name, format!("{role}1"));
    }
}

#[test]
fn foreign_ca_expired_ca_cert_and_garbage_are_refused() {
    let ca = CertAuthority::new_root("ca.org1", "Org1", 365).unwrap();
    let other = CertAuthority::new_root("ca.evil", "Org1", 365).unwrap();
    let msp = msp_for(&ca);
    let foreign = issue(&other, "mallory", Role::Admin, &[]);
    assert!(matches!(
        msp.validate(&foreign.der),
        Err(MspError::UntrustedChain { .. })
    ));
    let good = issue(&ca, "alice", Role::Client, &[]);
    let in_a_year = unix_now() + 366 * 86400;
    assert!(matches!(
        msp.validate_at(&good.der, in_a_year),
        Err(MspError::Expired { .. })
    ));
    let ca_der = certs_from_pem(ca.cert_pem().as_bytes()).unwrap().remove(0);
    assert!(matches!(
        msp.validate(&ca_der),
        Err(MspError::NotASigningCertificate { .. })
    ));
    assert!(matches!(
        msp.validate(b"not a certificate"),
        Err(MspError::BadCertificate { .. })
    ));
    assert!(matches!(
        msp.validate_serialized("Org2MSP", ca.cert_pem().as_bytes()),
        Err(MspError::WrongMsp { .. })
    ));
}

#[test]
fn revocation_takes_effect_when_crls_change_even_if_cached() {
    let ca = CertAuthority::new_root("ca.org1", "Org1", 365).unwrap();
    let msp = msp_for(&ca);
    let bob = issue(&ca, "bob", Role::Client, &[]);
    let carol = issue(&ca, "carol", Role::Client, &[]);
    msp.validate(&bob.der).unwrap(); // now cached
    let crl = ca
        .crl(1, &[(bob.serial.clone(), unix_now(), 1)], 7)
        .unwrap();
    msp.set_crls(vec![crl]).unwrap();
    let err = msp.validate(&bob.der).unwrap_err();
    assert!(matches!(err, MspError::Revoked { .. }), "{err}");
    assert!(err.to_string().contains(&hex_serial(&bob.serial)));
    msp.validate(&carol.der).unwrap();
}

#[test]
fn listed_admin_is_admin_without_the_ou() {
    let ca = CertAuthority::new_root("ca.org1", "Org1", 365).unwrap();
    let c = issue(&ca, "ops", Role::Client, &[]);
    let pem = CertInfo::from_der(&c.der).unwrap().to_pem();
    let msp = Msp::new(MspConfig {
        msp_id: "Org1MSP".into(),
        root_certs: vec![ca.cert_pem().to_string()],
        admins: vec![pem],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(msp.validate(&c.der).unwrap().role, Role::Admin);
}

#[test]
fn bad_config_is_named() {
    let err = Msp::new(MspConfig {
        msp_id: "X".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("no root certificates"), "{err}");
}

fn hex_serial(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

/// A public key given as raw bytes, to certify keys no honest party has.
struct RawEd25519([u8; 32]);

impl rcgen::PublicKeyData for RawEd25519 {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

/// Ed25519 identities validate like P-256 ones; a certificate for a
/// small-order Ed25519 key (for which anyone can make a signature that
/// verifies) or for bytes that are not a point is refused, even from the
/// org's own CA.
#[test]
fn ed25519_identities_validate_and_weak_keys_are_refused() {
    use qcss_network::identity::IdentityError;
    use qcss_network::signing::KeyKind;
    let ca = CertAuthority::new_root("ca.org1", "Org1", 365).unwrap();
    let msp = msp_for(&ca);
    let profile = SigningProfile {
        name: "ed1".into(),
        org: "Org1".into(),
        role: Role::Client,
        attributes: BTreeMap::new(),
    };
    let key = SigningKey::generate_kind(KeyKind::Ed25519).unwrap();
    let serial = qcss_network::certgen::random_serial().unwrap();
    let pem = ca
        .issue_signing(&profile, &rcgen_key(&key).unwrap(), &serial, 30)
        .unwrap();
    let der = certs_from_pem(pem.as_bytes()).unwrap().remove(0);
    let v = msp.validate(&der).unwrap();
    assert_eq!(v.cert.public_key, key.public_key());
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1; // y = 1: the neutral element, order 1
    let mut order_two = [0u8; 32];
    // y = -1 mod p: the point of order 2.
    order_two.copy_from_slice(
        &hex::decode("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f").unwrap(),
    );
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2; // y = 2 has no x on the curve
    for weak in [identity_point, order_two, not_a_point] {
        let serial = qcss_network::certgen::random_serial().unwrap();
        let pem = ca
            .issue_signing(&profile, &RawEd25519(weak), &serial, 30)
            .unwrap();
        let der = certs_from_pem(pem.as_bytes()).unwrap().remove(0);
        assert_eq!(CertInfo::from_der(&der), Err(IdentityError::WeakKey));
        assert!(msp.validate(&der).is_err());
    }
}
