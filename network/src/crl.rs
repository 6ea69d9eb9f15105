//! Reading a certificate revocation list as a channel admin must: who
//! signed it, its number, how many certificates it revokes.
//!
//! [`verify_crl`] accepts a CRL only if its signature checks out against
//! one of the given CA certificates whose subject is the CRL's issuer, and
//! only if it carries a CRL number (RFC 5280 §5.2.3): the number is what
//! tells a newer list from an older one, so that a channel never goes back
//! to a list that revokes less. The MSP (`crate::msp`) then uses the list;
//! this module decides nothing about channels.

use x509_parser::prelude::*;

use crate::identity::certs_from_pem;
use crate::msp::crls_from_pem;

/// A CRL whose signature was checked against one of an org's CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCrl {
    /// The issuer's name as text, e.g. `CN=ca.org1, O=Org1`.
    pub issuer: String,
    /// The issuer's name as DER: which CA's list this is.
    pub issuer_der: Vec<u8>,
    /// Its CRL number.
    pub number: u128,
    /// How many certificates it revokes.
    pub revoked: usize,
    /// The CRL itself, DER.
    pub der: Vec<u8>,
}

/// Why a CRL is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// It is not a DER (or PEM) X.509 CRL.
    #[error("not a readable CRL: {0}")]
    Malformed(String),
    /// It has no CRL number, so it cannot be ordered against other lists.
    #[error("the CRL of {issuer} has no CRL number")]
    NoNumber {
        /// Its issuer.
        issuer: String,
    },
    /// Its number is longer than 16 bytes (RFC 5280 allows 20; QCSS CAs
    /// count from 0 in 8).
    #[error("the CRL of {issuer} has a CRL number longer than 16 bytes")]
    NumberTooLarge {
        /// Its issuer.
        issuer: String,
    },
    /// None of the given CA certificates is its issuer, or none of their
    /// keys verifies its signature.
    #[error("the CRL of {issuer} is not signed by any of {msp_id}'s CAs ({cas})")]
    UnknownIssuer {
        /// Its issuer as the CRL names it.
        issuer: String,
        /// The org whose CAs were tried.
        msp_id: String,
        /// The subjects of those CAs.
        cas: String,
    },
}

/// Checks one CRL (DER) against `cas` (CA certificates, DER) of org
/// `msp_id`: a CA whose subject is the CRL's issuer must have signed it,
/// and it must carry a CRL number.
pub fn verify_crl(der: &[u8], cas: &[Vec<u8>], msp_id: &str) -> Result<VerifiedCrl, CrlError> {
    let (_, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| CrlError::Malformed(e.to_string()))?;
    let issuer = crl.issuer().to_string();
    let issuer_der = crl.issuer().as_raw().to_vec();
    let mut subjects = Vec::new();
    let mut signed = false;
    for ca in cas {
        let Ok((_, cert)) = X509Certificate::from_der(ca) else {
            continue;
        };
        subjects.push(cert.subject().to_string());
        if cert.subject().as_raw() == issuer_der.as_slice()
            && crl.verify_signature(cert.public_key()).is_ok()
        {
            signed = true;
            break;
        }
    }
    if !signed {
        return Err(CrlError::UnknownIssuer {
            issuer,
            msp_id: msp_id.to_owned(),
            cas: subjects.join("; "),
        });
    }
    let number = crl
        .crl_number()
        .ok_or_else(|| CrlError::NoNumber {
            issuer: issuer.clone(),
        })?
        .to_u64_digits();
    let number = match number.as_slice() {
        [] => 0,
        [lo] => u128::from(*lo),
        [lo, hi] => u128::from(*hi) << 64 | u128::from(*lo),
        _ => return Err(CrlError::NumberTooLarge { issuer }),
    };
    Ok(VerifiedCrl {
        revoked: crl.iter_revoked_certificates().count(),
        issuer,
        issuer_der,
        number,
        der: der.to_vec(),
    })
}

/// Every CRL in `pems` (PEM texts, each with one or more `X509 CRL`
/// blocks), checked with [`verify_crl`] against the CA certificates in
/// `ca_pems` (PEM).
pub fn verify_crls(
    pems: &[String],
    ca_pems: &[&String],
    msp_id: &str,
) -> Result<Vec<VerifiedCrl>, CrlError> {
    let mut cas = Vec::new();
    for pem in ca_pems {
        cas.extend(certs_from_pem(pem.as_bytes()).unwrap_or_default());
    }
    let mut out = Vec::new();
    for pem in pems {
        for der in crls_from_pem(pem.as_bytes()).map_err(CrlError::Malformed)? {
            out.push(verify_crl(&der, &cas, msp_id)?);
        }
    }
    Ok(out)
}

/// The subject name (DER) of a certificate (DER), if it parses: what a
/// CRL's issuer is compared with.
pub fn subject_der(cert_der: &[u8]) -> Option<Vec<u8>> {
    X509Certificate::from_der(cert_der)
        .ok()
        .map(|(_, c)| c.subject().as_raw().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certgen::CertAuthority;

    fn der(pem: &str) -> Vec<u8> {
        crls_from_pem(pem.as_bytes()).unwrap().remove(0)
    }

    fn ca_der(ca: &CertAuthority) -> Vec<u8> {
        certs_from_pem(ca.cert_pem().as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn a_crl_is_read_only_with_its_issuers_key() {
        let ca = CertAuthority::new_root("ca.org1", "Org1", 30).unwrap();
        let other = CertAuthority::new_root("ca.org2", "Org2", 30).unwrap();
        // Same name as Org1's CA, another key: an impostor.
        let impostor = CertAuthority::new_root("ca.org1", "Org1", 30).unwrap();
        let crl = ca.crl(7, &[(vec![1, 2, 3], 1_700_000_000, 1)], 7).unwrap();

        let v = verify_crl(&der(&crl), &[ca_der(&other), ca_der(&ca)], "Org1MSP").unwrap();
        assert_eq!((v.number, v.revoked), (7, 1));
        assert!(v.issuer.contains("ca.org1"), "{}", v.issuer);

        for cas in [vec![ca_der(&other)], vec![ca_der(&impostor)], vec![]] {
            let e = verify_crl(&der(&crl), &cas, "Org1MSP").unwrap_err();
            assert!(
                matches!(&e, CrlError::UnknownIssuer { msp_id, .. } if msp_id == "Org1MSP"),
                "{e}"
            );
            assert!(
                e.to_string().contains("not signed by any of Org1MSP's CAs"),
                "{e}"
            );
        }
        let e = verify_crl(b"junk", &[ca_der(&ca)], "Org1MSP").unwrap_err();
        assert!(matches!(e, CrlError::Malformed(_)), "{e}");

        let ca_pem = ca.cert_pem().to_owned();
        let all = verify_crls(std::slice::from_ref(&crl), &[&ca_pem], "Org1MSP").unwrap();
        assert_eq!(all.len(), 1);
        assert!(verify_crls(&["junk".into()], &[&ca_pem], "Org1MSP").is_err());
    }
}
