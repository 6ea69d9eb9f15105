//! How QCSS certificates look, and the code that makes them.
//!
//! The CA issues with these functions, and tests use them to build fixtures,
//! so a certificate the MSP accepts is defined in one place:
//! - a CA certificate: `CA:TRUE`, keyCertSign + cRLSign;
//! - a signing certificate: `CN=<name>, OU=<role>, O=<org>`, digitalSignature,
//!   no EKU, attributes in Fabric's attribute extension
//!   ([`crate::identity::ATTRIBUTES_OID`], `{"attrs":{...}}`): always Fabric
//!   CA's standard `hf.EnrollmentID` (the name), `hf.Type` (the role) and
//!   `hf.Affiliation` (the org), beside the registered ones;
//! - a TLS certificate: `CN=<name>, O=<org>`, digitalSignature + keyEncipherment,
//!   EKU serverAuth + clientAuth, SANs from the requested hosts, each once;
//! - a CRL: numbered, signed by the issuing CA, with reasons; `thisUpdate`
//!   is the signing time (not back-dated) and no revocation is later.
//!
//! Serial numbers are 16 random bytes (positive). Keys are always ECDSA P-256.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, RevokedCertParams, SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;

use crate::identity::{ATTRIBUTES_OID, encode_attributes};
use crate::role::Role;
use crate::signing::{KeyKind, SigningKey};

/// Why a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertGenError {
    /// rcgen refused the parameters or key.
    #[error("certificate generation: {0}")]
    Rcgen(String),
    /// A SAN is neither an IP address nor a valid DNS name.
    #[error("invalid subject alternative name {0:?}")]
    BadSan(String),
    /// The random generator failed.
    #[error("random number generator failed")]
    Rng,
}

impl From<rcgen::Error> for CertGenError {
    fn from(e: rcgen::Error) -> Self {
        CertGenError::Rcgen(e.to_string())
    }
}

/// Fabric CA's standard attribute: the enrollment id (the CN).
pub const HF_ENROLLMENT_ID: &str = "hf.EnrollmentID";
/// Fabric CA's standard attribute: the identity type (`admin`, `peer`,
/// `orderer`, `client`: the role).
pub const HF_TYPE: &str = "hf.Type";
/// Fabric CA's standard attribute: the affiliation (here the org name).
pub const HF_AFFILIATION: &str = "hf.Affiliation";
/// The attributes every signing certificate carries, set from the profile;
/// registrations may not set them.
pub const STANDARD_ATTRIBUTES: [&str; 3] = [HF_ENROLLMENT_ID, HF_TYPE, HF_AFFILIATION];

/// What goes into a signing certificate's subject and extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningProfile {
    /// The enrolled name (CN).
    pub name: String,
    /// The org name (O).
    pub org: String,
    /// The role (OU).
    pub role: Role,
    /// Attributes (kinds as `kind=true`, plus free pairs). Fabric CA's
    /// standard ones ([`STANDARD_ATTRIBUTES`]) are added from the fields
    /// above and override any given here.
    pub attributes: BTreeMap<String, String>,
}

impl SigningProfile {
    /// The attributes the certificate carries: the registered ones plus
    /// `hf.EnrollmentID`, `hf.Type` and `hf.Affiliation`.
    pub fn certificate_attributes(&self) -> BTreeMap<String, String> {
        let mut attrs = self.attributes.clone();
        attrs.insert(HF_ENROLLMENT_ID.to_owned(), self.name.clone());
        attrs.insert(HF_TYPE.to_owned(), self.role.as_str().to_owned());
        attrs.insert(HF_AFFILIATION.to_owned(), self.org.clone());
        attrs
    }
}

/// A CA that can issue: its certificate (PEM) and key.
pub struct CertAuthority {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertAuthority { key: <redacted> }")
    }
}

/// Turns our key into rcgen's.
pub fn rcgen_key(key: &SigningKey) -> Result<KeyPair, CertGenError> {
    let der = PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec());
    let alg = match key.kind() {
        KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
    };
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(&der, alg)?)
}

/// A random positive 16-byte serial number.
pub fn random_serial() -> Result<Vec<u8>, CertGenError> {
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| CertGenError::Rng)?;
    b[0] &= 0x7f;
    b[0] |= 0x01; // never a leading zero byte, so DER and hex forms agree
    Ok(b.to_vec())
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    // Back-date a little so a peer whose clock is a minute behind still accepts it.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
}

impl CertAuthority {
    /// Creates a self-signed root CA with a new key.
    pub fn new_root(common_name: &str, org: &str, days: u32) -> Result<Self, CertGenError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, org);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
        validity(&mut params, days);
        let cert = params.self_signed(&key)?;
        Ok(CertAuthority {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Loads an existing CA from its certificate and PKCS#8 key PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertGenError> {
        let key = KeyPair::from_pem(key_pem)?;
        // Check now that the pair works as an issuer.
        Issuer::from_ca_cert_pem(cert_pem, &key)?;
        Ok(CertAuthority {
            cert_pem: cert_pem.to_string(),
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key, PKCS#8 PEM (secret).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn issuer(&self) -> Result<Issuer<'_, &KeyPair>, CertGenError> {
        Ok(Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?)
    }

    /// Issues a signing certificate for `public_key`.
    pub fn issue_signing(
        &self,
        profile: &SigningProfile,
        public_key: &impl PublicKeyData,
        serial: &[u8],
        days: u32,
    ) -> Result<String, CertGenError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, profile.name.as_str());
        dn.push(DnType::OrganizationalUnitName, profile.role.as_str());
        dn.push(DnType::OrganizationName, profile.org.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                ATTRIBUTES_OID,
                encode_attributes(&profile.certificate_attributes()),
            ));
        validity(&mut params, days);
        Ok(params.signed_by(public_key, &self.issuer()?)?.pem())
    }

    /// Issues a TLS certificate (server and client auth) for `public_key`,
    /// with each of `hosts` in the SAN once (`127.0.0.1` given twice, or a
    /// name in two cases, is listed once).
    pub fn issue_tls(
        &self,
        name: &str,
        org: &str,
        hosts: &[String],
        public_key: &impl PublicKeyData,
        serial: &[u8],
        days: u32,
    ) -> Result<String, CertGenError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, org);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(serial));
        for h in hosts {
            let s = san(h)?;
            if !params.subject_alt_names.contains(&s) {
                params.subject_alt_names.push(s);
            }
        }
        validity(&mut params, days);
        Ok(params.signed_by(public_key, &self.issuer()?)?.pem())
    }

    /// Signs a CRL numbered `number` listing `revoked` (serial, Unix time, reason code).
    ///
    /// `thisUpdate` is now (whole seconds): a CRL says what was revoked when
    /// it was signed, so it is not back-dated. A revocation time after that
    /// (a clock that stepped back since) is listed as `thisUpdate`, so that
    /// no entry is later than the list itself.
    pub fn crl(
        &self,
        number: u64,
        revoked: &[(Vec<u8>, i64, u8)],
        next_update_days: u32,
    ) -> Result<String, CertGenError> {
        let now_secs = OffsetDateTime::now_utc().unix_timestamp();
        let now = OffsetDateTime::from_unix_timestamp(now_secs)
            .map_err(|e| CertGenError::Rcgen(e.to_string()))?;
        let mut certs = Vec::new();
        for (serial, at, reason) in revoked {
            certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: OffsetDateTime::from_unix_timestamp((*at).min(now_secs))
                    .unwrap_or(now),
                reason_code: Some(reason_code(*reason)),
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(i64::from(next_update_days.max(1))),
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer()?)?.pem()?)
    }
}

/// Maps an RFC 5280 reason code to rcgen's enum (unknown codes → unspecified).
fn reason_code(code: u8) -> rcgen::RevocationReason {
    use rcgen::RevocationReason as R;
    match code {
        1 => R::KeyCompromise,
        2 => R::CaCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        6 => R::CertificateHold,
        9 => R::PrivilegeWithdrawn,
        10 => R::AaCompromise,
        _ => R::Unspecified,
    }
}

/// Parses an RFC 5280 reason name (`keyCompromise`, `superseded`, ...) or number.
pub fn parse_reason(s: &str) -> Option<u8> {
    let code = match s.to_ascii_lowercase().as_str() {
        "" | "unspecified" => 0,
        "keycompromise" => 1,
        "cacompromise" => 2,
        "affiliationchanged" => 3,
        "superseded" => 4,
        "cessationofoperation" => 5,
        "certificatehold" => 6,
        "privilegewithdrawn" => 9,
        "aacompromise" => 10,
        n => n
            .parse::<u8>()
            .ok()
            .filter(|c| matches!(c, 0..=6 | 9 | 10))?,
    };
    Some(code)
}

fn san(host: &str) -> Result<SanType, CertGenError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        });
    if !ok {
        return Err(CertGenError::BadSan(host.to_string()));
    }
    // DNS names are case-insensitive: one spelling, so a name given in two
    // cases is listed once.
    Ok(SanType::DnsName(
        host.to_ascii_lowercase()
            .try_into()
            .map_err(|_| CertGenError::BadSan(host.to_string()))?,
    ))
}
