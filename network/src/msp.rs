//! The membership service provider: which certificates belong to an org, in
//! which role, and whether they are still good.
//!
//! [`Msp::validate`] checks the chain to one of the org's roots (through its
//! intermediates), the validity period, the key usage (digitalSignature),
//! revocation against the org's CRLs, and reads the role and attributes.
//! Results are cached per certificate (SHA-256 of the DER), so the hot path —
//! every signature of every transaction — does not re-walk the chain; the
//! cache is cleared when the CRLs change and an entry is never trusted past
//! the certificate's own expiry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use crate::identity::{CertInfo, IdentityError, MspId, certs_from_pem};
use crate::role::Role;

/// Most entries kept in the validation cache before it is cleared.
const CACHE_LIMIT: usize = 100_000;

/// An org's membership definition, as it appears in the channel configuration.
/// All certificates and CRLs are PEM text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MspConfig {
    /// The MSP id, e.g. `Org1MSP`.
    pub msp_id: String,
    /// Root CA certificates for signing identities.
    pub root_certs: Vec<String>,
    /// Intermediate CA certificates for signing identities.
    #[serde(default)]
    pub intermediate_certs: Vec<String>,
    /// Root CA certificates for TLS.
    #[serde(default)]
    pub tls_root_certs: Vec<String>,
    /// Intermediate CA certificates for TLS.
    #[serde(default)]
    pub tls_intermediate_certs: Vec<String>,
    /// Certificate revocation lists (signing and TLS).
    #[serde(default)]
    pub crls: Vec<String>,
    /// Certificates that are admins even without `OU=admin`.
    #[serde(default)]
    pub admins: Vec<String>,
}

impl MspConfig {
    /// Every CA certificate of the org (PEM): signing and TLS, roots and
    /// intermediates — the CAs whose CRLs it may publish.
    pub fn ca_certs(&self) -> impl Iterator<Item = &String> {
        self.root_certs
            .iter()
            .chain(&self.intermediate_certs)
            .chain(&self.tls_root_certs)
            .chain(&self.tls_intermediate_certs)
    }
}

/// Why an identity is not accepted by an MSP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MspError {
    /// The MSP configuration itself is unusable.
    #[error("MSP {msp_id}: bad configuration: {message}")]
    BadConfig {
        /// The MSP concerned.
        msp_id: String,
        /// What is wrong.
        message: String,
    },
    /// The certificate could not be read.
    #[error("MSP {msp_id}: {source}")]
    BadCertificate {
        /// The MSP concerned.
        msp_id: String,
        /// The parse error.
        source: IdentityError,
    },
    /// The identity names another MSP than this one.
    #[error("identity belongs to MSP {claimed}, not {msp_id}")]
    WrongMsp {
        /// This MSP.
        msp_id: String,
        /// The MSP the identity claims.
        claimed: String,
    },
    /// The chain does not lead to one of the org's roots.
    #[error("MSP {msp_id}: certificate {serial} does not chain to the org's root: {reason}")]
    UntrustedChain {
        /// The MSP concerned.
        msp_id: String,
        /// Serial of the certificate, hex.
        serial: String,
        /// webpki's reason.
        reason: String,
    },
    /// Outside its validity period.
    #[error("MSP {msp_id}: certificate {serial} is expired or not yet valid")]
    Expired {
        /// The MSP concerned.
        msp_id: String,
        /// Serial of the certificate, hex.
        serial: String,
    },
    /// Listed in one of the org's CRLs.
    #[error("MSP {msp_id}: certificate {serial} is revoked")]
    Revoked {
        /// The MSP concerned.
        msp_id: String,
        /// Serial of the certificate, hex.
        serial: String,
    },
    /// Key usage does not allow digital signatures, or it is a CA certificate.
    #[error("MSP {msp_id}: certificate {serial} may not sign ({why})")]
    NotASigningCertificate {
        /// The MSP concerned.
        msp_id: String,
        /// Serial of the certificate, hex.
        serial: String,
        /// Why.
        why: &'static str,
    },
    /// No role OU and not listed as admin.
    #[error("MSP {msp_id}: certificate {serial} has no role (OU admin, peer, orderer or client)")]
    NoRole {
        /// The MSP concerned.
        msp_id: String,
        /// Serial of the certificate, hex.
        serial: String,
    },
}

/// An identity an MSP has accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedIdentity {
    /// The org.
    pub msp_id: MspId,
    /// Its role (admin if listed in the MSP's admins).
    pub role: Role,
    /// The certificate.
    pub cert: CertInfo,
}

impl ValidatedIdentity {
    /// Attributes from the certificate.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.cert.attributes
    }
}

struct Inner {
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    admins: HashSet<[u8; 32]>,
}

/// One org's membership service provider.
pub struct Msp {
    id: MspId,
    config: RwLock<MspConfig>,
    inner: RwLock<Inner>,
    cache: Mutex<HashMap<[u8; 32], Arc<ValidatedIdentity>>>,
}

impl std::fmt::Debug for Msp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Msp")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Msp {
    /// Builds an MSP from its configuration.
    pub fn new(config: MspConfig) -> Result<Self, MspError> {
        let inner = build_inner(&config)?;
        Ok(Msp {
            id: MspId(config.msp_id.clone()),
            config: RwLock::new(config),
            inner: RwLock::new(inner),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The MSP id.
    pub fn id(&self) -> &MspId {
        &self.id
    }

    /// A copy of the configuration.
    pub fn config(&self) -> MspConfig {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Replaces the CRLs (PEM) and forgets every cached validation.
    pub fn set_crls(&self, crls: Vec<String>) -> Result<(), MspError> {
        let mut cfg = self.config();
        cfg.crls = crls;
        let inner = build_inner(&cfg)?;
        if let (Ok(mut i), Ok(mut c)) = (self.inner.write(), self.config.write()) {
            *i = inner;
            *c = cfg;
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        Ok(())
    }

    /// Validates a signing certificate (DER) now, using the cache.
    pub fn validate(&self, cert_der: &[u8]) -> Result<Arc<ValidatedIdentity>, MspError> {
        let now = unix_now();
        let id = crate::signing::sha256(cert_der);
        if let Some(hit) = self.cached(&id, now) {
            return Ok(hit);
        }
        let v = Arc::new(self.validate_at(cert_der, now)?);
        self.remember(id, &v);
        Ok(v)
    }

    /// A cached validation under `id`, if its certificate is still valid at `now`.
    fn cached(&self, id: &[u8; 32], now: i64) -> Option<Arc<ValidatedIdentity>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(id)
            .filter(|hit| hit.cert.not_after >= now)
            .cloned()
    }

    fn remember(&self, id: [u8; 32], v: &Arc<ValidatedIdentity>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(id, v.clone());
        }
    }

    /// Validates a serialized identity: the MSP id must be this one.
    pub fn validate_serialized(
        &self,
        msp_id: &str,
        cert_pem: &[u8],
    ) -> Result<Arc<ValidatedIdentity>, MspError> {
        if msp_id != self.id.0 {
            return Err(MspError::WrongMsp {
                msp_id: self.id.0.clone(),
                claimed: msp_id.to_string(),
            });
        }
        // The hot path (every proposal and transaction): a certificate seen
        // before, found by the hash of its PEM without decoding it. A SHA-256
        // of PEM text and one of DER cannot collide in practice, so both
        // share the cache.
        let pem_id = crate::signing::sha256(cert_pem);
        if let Some(hit) = self.cached(&pem_id, unix_now()) {
            return Ok(hit);
        }
        let der = certs_from_pem(cert_pem)
            .map_err(|source| self.bad_cert(source))?
            .remove(0);
        let v = self.validate(&der)?;
        self.remember(pem_id, &v);
        Ok(v)
    }

    /// Validates a certificate at a given time (Unix seconds), bypassing the cache.
    pub fn validate_at(&self, cert_der: &[u8], now: i64) -> Result<ValidatedIdentity, MspError> {
        let cert = CertInfo::from_der(cert_der).map_err(|source| self.bad_cert(source))?;
        let serial = cert.serial_hex.clone();
        let msp_id = self.id.0.clone();
        if now < cert.not_before || now > cert.not_after {
            return Err(MspError::Expired { msp_id, serial });
        }
        if cert.is_ca {
            return Err(MspError::NotASigningCertificate {
                msp_id,
                serial,
                why: "it is a CA certificate",
            });
        }
        if !cert.can_sign {
            return Err(MspError::NotASigningCertificate {
                msp_id,
                serial,
                why: "key usage lacks digitalSignature",
            });
        }
        let inner = self.inner.read().map_err(|_| MspError::BadConfig {
            msp_id: msp_id.clone(),
            message: "lock poisoned".into(),
        })?;
        let der = CertificateDer::from(cert_der);
        let ee = EndEntityCert::try_from(&der).map_err(|e| MspError::UntrustedChain {
            msp_id: msp_id.clone(),
            serial: serial.clone(),
            reason: format!("{e:?}"),
        })?;
        let crl_refs: Vec<&CertRevocationList<'static>> = inner.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(RevocationCheckDepth::Chain)
                // A CRL from an issuer we hold no list for is simply absent, not a failure.
                .with_status_policy(UnknownStatusPolicy::Allow)
                .build()
        });
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
        // Signing certificates have no EKU; if one is present it must allow client auth.
        let usage = KeyUsage::required_if_present(EKU_CLIENT_AUTH);
        let result = ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &inner.anchors,
            &inner.intermediates,
            time,
            usage,
            revocation,
            None,
        );
        match result {
            Ok(_) => {}
            Err(webpki::Error::CertRevoked) => return Err(MspError::Revoked { msp_id, serial }),
            Err(webpki::Error::CertExpired { .. }) | Err(webpki::Error::CertNotValidYet { .. }) => {
                return Err(MspError::Expired { msp_id, serial });
            }
            Err(e) => {
                return Err(MspError::UntrustedChain {
                    msp_id,
                    serial,
                    reason: format!("{e:?}"),
                });
            }
        }
        let role = if inner.admins.contains(&cert.id) {
            Role::Admin
        } else {
            cert.role.ok_or(MspError::NoRole {
                msp_id: msp_id.clone(),
                serial,
            })?
        };
        Ok(ValidatedIdentity {
            msp_id: self.id.clone(),
            role,
            cert,
        })
    }

    fn bad_cert(&self, source: IdentityError) -> MspError {
        MspError::BadCertificate {
            msp_id: self.id.0.clone(),
            source,
        }
    }
}

/// DER content of the id-kp-clientAuth OID (1.3.6.1.5.5.7.3.2).
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

fn build_inner(cfg: &MspConfig) -> Result<Inner, MspError> {
    let bad = |message: String| MspError::BadConfig {
        msp_id: cfg.msp_id.clone(),
        message,
    };
    if cfg.root_certs.is_empty() {
        return Err(bad("no root certificates".into()));
    }
    let mut anchors = Vec::new();
    for pem in &cfg.root_certs {
        for der in certs_from_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))? {
            let der = CertificateDer::from(der);
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| bad(format!("root certificate: {e:?}")))?
                .to_owned();
            anchors.push(anchor);
        }
    }
    let mut intermediates = Vec::new();
    for pem in &cfg.intermediate_certs {
        for der in certs_from_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))? {
            intermediates.push(CertificateDer::from(der));
        }
    }
    let mut crls = Vec::new();
    for pem in &cfg.crls {
        for der in crls_from_pem(pem.as_bytes()).map_err(bad)? {
            let owned =
                OwnedCertRevocationList::from_der(&der).map_err(|e| bad(format!("CRL: {e:?}")))?;
            crls.push(CertRevocationList::from(owned));
        }
    }
    let mut admins = HashSet::new();
    for pem in &cfg.admins {
        for der in certs_from_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))? {
            admins.insert(crate::signing::sha256(&der));
        }
    }
    Ok(Inner {
        anchors,
        intermediates,
        crls,
        admins,
    })
}

/// Every `X509 CRL` block in a PEM text, as DER.
pub fn crls_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateRevocationListDer;
    use rustls_pki_types::pem::PemObject;
    let mut out = Vec::new();
    for c in CertificateRevocationListDer::pem_slice_iter(pem) {
        out.push(
            c.map_err(|e| format!("not a PEM CRL: {e}"))?
                .as_ref()
                .to_vec(),
        );
    }
    if out.is_empty() {
        return Err("no X509 CRL block found".into());
    }
    Ok(out)
}

/// Current Unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl From<&ValidatedIdentity> for crate::policy::SignerInfo {
    fn from(v: &ValidatedIdentity) -> Self {
        crate::policy::SignerInfo::new(v.cert.id, v.msp_id.as_str(), v.role)
    }
}
