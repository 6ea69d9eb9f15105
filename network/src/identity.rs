//! Certificates as QCSS reads them: who (CN, org), which role (OU), which
//! attributes (Fabric's attribute extension), and the public key.
//!
//! [`CertInfo`] is the parsed view of one X.509 certificate; it does not say
//! whether the certificate is trustworthy — that is [`crate::msp::Msp`]'s job.

use std::collections::BTreeMap;
use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;

use crate::role::Role;
use crate::signing::{self, CryptoError, SigningKey};

/// OID of the attribute extension, the one Fabric CA uses
/// (`1.2.3.4.5.6.7.8.1`), holding JSON `{"attrs":{"name":"value",...}}`.
/// Keeping Fabric's OID and format means Fabric's client-identity libraries
/// read QCSS attributes too.
pub const ATTRIBUTES_OID: &[u64] = &[1, 2, 3, 4, 5, 6, 7, 8, 1];

/// The QCSS participant kinds. A certificate carries a kind as an attribute
/// whose name is the kind and whose value is `"true"` (e.g. `lab=true`);
/// one identity may hold several (a regulator that is also an auditor).
pub const KINDS: [&str; 8] = [
    "enterprise",
    "lab",
    "regulator",
    "logistics",
    "retailer",
    "consumer",
    "device",
    "auditor",
];

/// Why a certificate or identity could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not a PEM certificate.
    #[error("not a PEM certificate: {0}")]
    NotPem(String),
    /// The DER does not parse as X.509.
    #[error("malformed X.509 certificate: {0}")]
    Malformed(String),
    /// The public key is neither ECDSA P-256 nor Ed25519.
    #[error("certificate key is neither ECDSA P-256 nor Ed25519")]
    UnsupportedKey,
    /// An Ed25519 key that is not a point of the curve or is one of its
    /// small-order points, for which anyone can make signatures that verify:
    /// a certificate for it would prove nothing about who signed.
    #[error("certificate key is a weak or invalid Ed25519 key (anyone could sign for it)")]
    WeakKey,
    /// The subject has an OU that is not a role, or several role OUs.
    #[error("certificate role: {0}")]
    BadRole(String),
    /// The attribute extension is not the expected JSON.
    #[error("malformed attribute extension: {0}")]
    BadAttributes(String),
    /// Key and certificate do not belong together.
    #[error("private key does not match certificate")]
    KeyMismatch,
    /// A key problem.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Reading identity files failed.
    #[error("{path}: {message}")]
    Io {
        /// The file concerned.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// The parsed, not-yet-trusted content of an X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The DER bytes.
    pub der: Vec<u8>,
    /// SHA-256 of the DER: identifies the identity (policy "counts once" key, cache key).
    pub id: [u8; 32],
    /// Subject common name (the enrolled name).
    pub common_name: String,
    /// Subject organization, if any.
    pub organization: Option<String>,
    /// Role from the subject OU, if the certificate has one.
    pub role: Option<Role>,
    /// Attributes from the attribute extension (empty if absent).
    pub attributes: BTreeMap<String, String>,
    /// Serial number, lowercase hex, no leading zeros stripped beyond DER's.
    pub serial_hex: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// The public key: an uncompressed P-256 point (65 bytes) or an
    /// Ed25519 key (32 bytes); [`crate::signing::KeyKind::of_public_key`]
    /// tells which.
    pub public_key: Vec<u8>,
    /// Whether the key-usage extension allows digitalSignature (true if absent).
    pub can_sign: bool,
    /// Whether this is a CA certificate (basicConstraints CA:TRUE).
    pub is_ca: bool,
    /// DNS and IP subject alternative names, as strings.
    pub sans: Vec<String>,
}

impl CertInfo {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| IdentityError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(IdentityError::Malformed(
                "trailing bytes after certificate".into(),
            ));
        }
        let public_key = spki_key(cert.public_key())?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_string();
        let organization = subject
            .iter_organization()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_string);
        let mut role = None;
        for ou in subject.iter_organizational_unit() {
            let Ok(text) = ou.as_str() else { continue };
            if let Ok(r) = text.parse::<Role>() {
                if role.is_some_and(|old| old != r) {
                    return Err(IdentityError::BadRole(format!(
                        "several role OUs ({} and {r})",
                        role.map(|x: Role| x.as_str()).unwrap_or_default()
                    )));
                }
                role = Some(r);
            }
        }
        let mut attributes = BTreeMap::new();
        let mut can_sign = true;
        let mut is_ca = false;
        let mut sans = Vec::new();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::KeyUsage(ku) => can_sign = ku.digital_signature(),
                ParsedExtension::BasicConstraints(bc) => is_ca = bc.ca,
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => sans.push(d.to_string()),
                            GeneralName::IPAddress(ip) => {
                                if let Some(s) = ip_to_string(ip) {
                                    sans.push(s)
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {
                    if ext
                        .oid
                        .iter()
                        .is_some_and(|it| it.eq(ATTRIBUTES_OID.iter().copied()))
                    {
                        attributes = decode_attributes(ext.value)?;
                    }
                }
            }
        }
        Ok(CertInfo {
            der: der.to_vec(),
            id: signing::sha256(der),
            common_name,
            organization,
            role,
            attributes,
            serial_hex: hex::encode(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            public_key,
            can_sign,
            is_ca,
            sans,
        })
    }

    /// Parses the first certificate of a PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Self, IdentityError> {
        let der = first_cert_der(pem)?;
        Self::from_der(&der)
    }

    /// The QCSS kinds this certificate holds (`lab`, `regulator`, ...).
    pub fn kinds(&self) -> Vec<&'static str> {
        KINDS
            .iter()
            .copied()
            .filter(|k| self.attributes.get(*k).is_some_and(|v| v == "true"))
            .collect()
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        signing::pem_encode("CERTIFICATE", &self.der)
    }
}

fn ip_to_string(ip: &[u8]) -> Option<String> {
    match ip.len() {
        4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(ip);
            Some(std::net::Ipv6Addr::from(b).to_string())
        }
        _ => None,
    }
}

/// The key of a SubjectPublicKeyInfo if it is one QCSS signs with: an
/// uncompressed P-256 point or an Ed25519 key.
pub fn spki_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<Vec<u8>, IdentityError> {
    use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};
    let key = spki.subject_public_key.data.to_vec();
    let alg = &spki.algorithm;
    let p256 = alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && alg
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_none_or(|curve| curve == OID_EC_P256)
        && key.len() == 65
        && key[0] == 4;
    // RFC 8410: the algorithm identifier has no parameters.
    let ed25519 = alg.algorithm == OID_SIG_ED25519 && alg.parameters.is_none() && key.len() == 32;
    if ed25519 {
        let point = curve25519_dalek::edwards::CompressedEdwardsY::from_slice(&key)
            .ok()
            .and_then(|c| c.decompress());
        if point.is_none_or(|p| p.is_small_order()) {
            return Err(IdentityError::WeakKey);
        }
    }
    if p256 || ed25519 {
        Ok(key)
    } else {
        Err(IdentityError::UnsupportedKey)
    }
}

/// Encodes attributes as the extension value Fabric CA writes.
pub fn encode_attributes(attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let v = serde_json::json!({ "attrs": attrs });
    // Serialising a map of strings cannot fail.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Decodes the attribute extension value.
pub fn decode_attributes(value: &[u8]) -> Result<BTreeMap<String, String>, IdentityError> {
    #[derive(serde::Deserialize)]
    struct Ext {
        attrs: BTreeMap<String, String>,
    }
    serde_json::from_slice::<Ext>(value)
        .map(|e| e.attrs)
        .map_err(|e| IdentityError::BadAttributes(e.to_string()))
}

/// Every certificate in a PEM text, as DER.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, IdentityError> {
    let mut out = Vec::new();
    for c in CertificateDer::pem_slice_iter(pem) {
        let c = c.map_err(|e| IdentityError::NotPem(e.to_string()))?;
        out.push(c.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err(IdentityError::NotPem("no CERTIFICATE block found".into()));
    }
    Ok(out)
}

fn first_cert_der(pem: &[u8]) -> Result<Vec<u8>, IdentityError> {
    certs_from_pem(pem)?
        .into_iter()
        .next()
        .ok_or_else(|| IdentityError::NotPem("no CERTIFICATE block found".into()))
}

/// An MSP id, such as `Org1MSP` or `LabMSP`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct MspId(pub String);

impl MspId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MspId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MspId {
    fn from(s: &str) -> Self {
        MspId(s.to_string())
    }
}

/// Fabric's serialized identity: the MSP id and the PEM certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedIdentity {
    /// The org's MSP id.
    pub msp_id: MspId,
    /// The signing certificate, PEM.
    pub cert_pem: Vec<u8>,
}

/// A local identity that can sign: certificate plus private key.
#[derive(Debug)]
pub struct SigningIdentity {
    /// The org's MSP id.
    pub msp_id: MspId,
    /// The parsed certificate.
    pub cert: CertInfo,
    /// The certificate PEM exactly as issued (what goes into serialized identities).
    pub cert_pem: Vec<u8>,
    key: SigningKey,
}

impl SigningIdentity {
    /// Pairs a certificate with its key, checking they match.
    pub fn new(msp_id: MspId, cert_pem: Vec<u8>, key: SigningKey) -> Result<Self, IdentityError> {
        let cert = CertInfo::from_pem(&cert_pem)?;
        if cert.public_key != key.public_key() {
            return Err(IdentityError::KeyMismatch);
        }
        Ok(SigningIdentity {
            msp_id,
            cert,
            cert_pem,
            key,
        })
    }

    /// Loads `DIR/cert.pem` and `DIR/key.pem`, the layout `qcss ca enroll --out DIR` writes.
    pub fn load_dir(msp_id: MspId, dir: &Path) -> Result<Self, IdentityError> {
        let cert_path = dir.join("cert.pem");
        let cert_pem = std::fs::read(&cert_path).map_err(|e| IdentityError::Io {
            path: cert_path.display().to_string(),
            message: e.to_string(),
        })?;
        let key = SigningKey::read_pem_file(&dir.join("key.pem"))?;
        Self::new(msp_id, cert_pem, key)
    }

    /// Signs `msg` with the identity's key (see [`SigningKey::sign`]).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key.sign(msg)
    }

    /// The serialized identity others use to check this identity's signatures.
    pub fn serialized(&self) -> SerializedIdentity {
        SerializedIdentity {
            msp_id: self.msp_id.clone(),
            cert_pem: self.cert_pem.clone(),
        }
    }

    /// The private key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }
}
