//! A client for the CA, used by the `qcss ca` commands and by tests: it
//! makes keys and CSRs locally (the CA never sees a private key) and signs
//! requests with the caller's identity.

use std::path::Path;

use prost::Message;
use qcss_network::SigningIdentity;
use qcss_network::certgen::rcgen_key;
use qcss_network::msp::unix_now;
use qcss_network::signing::{KeyKind, SigningKey};
use qcss_proto::qcss::ca as pb;
use qcss_proto::qcss::ca::certificate_authority_client::CertificateAuthorityClient;
use ring::rand::SecureRandom;
use tonic::transport::Channel;

use crate::authority::signed_bytes;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Could not connect.
    #[error("cannot connect to CA at {addr}: {message}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The CA refused (its message names what was wrong).
    #[error("CA refused ({code:?}): {message}")]
    Refused {
        /// The gRPC status code.
        code: tonic::Code,
        /// The CA's message.
        message: String,
    },
    /// A local file or key problem.
    #[error("{0}")]
    Local(String),
}

/// A connected CA client.
#[derive(Debug, Clone)]
pub struct CaClient {
    inner: CertificateAuthorityClient<Channel>,
}

/// A key and certificate obtained from the CA.
#[derive(Debug)]
pub struct Enrollment {
    /// The new private key.
    pub key: SigningKey,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The issuing CA certificate, PEM.
    pub ca_cert_pem: String,
    /// Serial, hex.
    pub serial: String,
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Refused {
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

fn local<E: std::fmt::Display>(e: E) -> ClientError {
    ClientError::Local(e.to_string())
}

impl CaClient {
    /// Connects over TLS to `addr` (host:port), trusting the CA's TLS root
    /// (`tls_root_pem`); optionally presents a TLS client identity.
    pub async fn connect(
        addr: &str,
        tls_root_pem: &[u8],
        tls_identity: Option<(&[u8], &[u8])>,
    ) -> Result<Self, ClientError> {
        let tls =
            qcss_network::tls::client_tls_for_addr(&[tls_root_pem.to_vec()], tls_identity, addr);
        let ch = qcss_network::tls::connect(addr, tls)
            .await
            .map_err(|e| ClientError::Connect {
                addr: addr.to_string(),
                message: qcss_network::tls::error_chain(&e),
            })?;
        Ok(CaClient {
            inner: CertificateAuthorityClient::new(ch).max_decoding_message_size(4 << 20),
        })
    }

    /// CA info.
    pub async fn info(&mut self) -> Result<pb::InfoResponse, ClientError> {
        Ok(self.inner.info(pb::InfoRequest {}).await?.into_inner())
    }

    /// Registers an identity; returns its enrollment secret.
    pub async fn register(
        &mut self,
        registrar: &SigningIdentity,
        mut req: pb::RegisterRequest,
    ) -> Result<String, ClientError> {
        req.stamp = Some(stamp()?);
        let signed = sign_request(registrar, "Register", &req)?;
        Ok(self.inner.register(signed).await?.into_inner().secret)
    }

    /// Enrolls `name` with `secret`, generating a new key of `kind`;
    /// `hosts` non-empty asks for a TLS certificate (whose key is always
    /// P-256: every TLS stack speaks it).
    pub async fn enroll(
        &mut self,
        name: &str,
        secret: &str,
        tls_hosts: Option<&[String]>,
        kind: KeyKind,
    ) -> Result<Enrollment, ClientError> {
        let kind = if tls_hosts.is_some() {
            KeyKind::P256
        } else {
            kind
        };
        let key = SigningKey::generate_kind(kind).map_err(local)?;
        let csr_pem = make_csr(&key, name)?;
        let resp = self
            .inner
            .enroll(pb::EnrollRequest {
                name: name.to_string(),
                secret: secret.to_string(),
                csr_pem,
                profile: if tls_hosts.is_some() { "tls" } else { "sign" }.into(),
                hosts: tls_hosts.map(<[String]>::to_vec).unwrap_or_default(),
            })
            .await?
            .into_inner();
        Ok(Enrollment {
            key,
            cert_pem: resp.cert_pem,
            ca_cert_pem: resp.ca_cert_pem,
            serial: resp.serial,
        })
    }

    /// Sends a raw enroll request (tests use it to send malformed CSRs).
    pub async fn enroll_raw(
        &mut self,
        req: pb::EnrollRequest,
    ) -> Result<pb::EnrollResponse, ClientError> {
        Ok(self.inner.enroll(req).await?.into_inner())
    }

    /// Reenrolls `who` with a new key (`tls_hosts` for a TLS certificate):
    /// of the same kind as its current signing key, P-256 for TLS.
    pub async fn reenroll(
        &mut self,
        who: &SigningIdentity,
        tls_hosts: Option<&[String]>,
    ) -> Result<Enrollment, ClientError> {
        let kind = match tls_hosts {
            Some(_) => KeyKind::P256,
            None => who.key().kind(),
        };
        let key = SigningKey::generate_kind(kind).map_err(local)?;
        let req = pb::ReenrollRequest {
            stamp: Some(stamp()?),
            csr_pem: make_csr(&key, &who.cert.common_name)?,
            profile: if tls_hosts.is_some() { "tls" } else { "sign" }.into(),
            hosts: tls_hosts.map(<[String]>::to_vec).unwrap_or_default(),
        };
        let signed = sign_request(who, "Reenroll", &req)?;
        let resp = self.inner.reenroll(signed).await?.into_inner();
        Ok(Enrollment {
            key,
            cert_pem: resp.cert_pem,
            ca_cert_pem: resp.ca_cert_pem,
            serial: resp.serial,
        })
    }

    /// Revokes a name or a serial.
    pub async fn revoke(
        &mut self,
        registrar: &SigningIdentity,
        name: Option<&str>,
        serial: Option<&str>,
        reason: &str,
    ) -> Result<pb::RevokeResponse, ClientError> {
        let req = pb::RevokeRequest {
            stamp: Some(stamp()?),
            name: name.unwrap_or_default().to_string(),
            serial: serial.unwrap_or_default().to_string(),
            reason: reason.to_string(),
        };
        let signed = sign_request(registrar, "Revoke", &req)?;
        Ok(self.inner.revoke(signed).await?.into_inner())
    }

    /// Sends an already signed request to `Register` (tests: replays).
    pub async fn register_signed(
        &mut self,
        signed: pb::SignedRequest,
    ) -> Result<String, ClientError> {
        Ok(self.inner.register(signed).await?.into_inner().secret)
    }

    /// The current CRLs.
    pub async fn crl(&mut self) -> Result<pb::CrlResponse, ClientError> {
        Ok(self.inner.get_crl(pb::GetCrlRequest {}).await?.into_inner())
    }
}

/// A fresh freshness stamp.
pub fn stamp() -> Result<pb::RequestStamp, ClientError> {
    let mut nonce = vec![0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| ClientError::Local("random number generator failed".into()))?;
    Ok(pb::RequestStamp {
        timestamp: unix_now(),
        nonce,
    })
}

/// Wraps and signs an inner request.
pub fn sign_request<M: Message>(
    who: &SigningIdentity,
    method: &str,
    req: &M,
) -> Result<pb::SignedRequest, ClientError> {
    let request = req.encode_to_vec();
    let signature = who.sign(&signed_bytes(method, &request)).map_err(local)?;
    Ok(pb::SignedRequest {
        request,
        certificate: who.cert_pem.clone(),
        signature,
    })
}

/// A PKCS#10 CSR for `key` with `CN=name`.
pub fn make_csr(key: &SigningKey, name: &str) -> Result<String, ClientError> {
    let kp = rcgen_key(key).map_err(local)?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&kp).map_err(local)?;
    csr.pem().map_err(local)
}

/// Writes an enrollment to `dir` as `{prefix}cert.pem`, `{prefix}key.pem`
/// (0600) and `{prefix}ca.pem`.
pub fn write_enrollment(dir: &Path, prefix: &str, e: &Enrollment) -> Result<(), ClientError> {
    std::fs::create_dir_all(dir).map_err(|err| local(format!("{}: {err}", dir.display())))?;
    let w = |name: &str, text: &str| {
        let p = dir.join(format!("{prefix}{name}"));
        std::fs::write(&p, text).map_err(|err| local(format!("{}: {err}", p.display())))
    };
    e.key
        .write_pem_file(&dir.join(format!("{prefix}key.pem")))
        .map_err(local)?;
    w("cert.pem", &e.cert_pem)?;
    w("ca.pem", &e.ca_cert_pem)?;
    Ok(())
}

/// Verifies that a certificate PEM matches a key (used before overwriting files).
pub fn cert_matches_key(cert_pem: &str, key: &SigningKey) -> bool {
    qcss_network::CertInfo::from_pem(cert_pem.as_bytes())
        .map(|c| c.public_key == key.public_key())
        .unwrap_or(false)
}
