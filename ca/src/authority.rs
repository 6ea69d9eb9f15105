//! The CA's rules: who may register what, how enrollment is checked, what a
//! certificate gets, and revocation. No networking here: [`crate::server`]
//! maps gRPC onto these methods, and tests call them directly on a real
//! store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prost::Message;
use qcss_network::certgen::{
    CertAuthority, CertGenError, HF_AFFILIATION, HF_ENROLLMENT_ID, HF_TYPE, STANDARD_ATTRIBUTES,
    SigningProfile, parse_reason,
};
use qcss_network::identity::{ATTRIBUTES_OID, CertInfo, certs_from_pem, decode_attributes};
use qcss_network::msp::{Msp, MspConfig, unix_now};
use qcss_network::{Role, signing};
use qcss_proto::qcss::ca as pb;
use x509_parser::prelude::*;

use crate::config::CaConfig;
use crate::error::CaError;
use crate::secret;
use crate::store::{AuditEvent, CertRecord, Change, IdentityRecord, Store};

/// Name of the identity created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Files under the CA home.
#[derive(Debug, Clone)]
pub struct HomeLayout {
    /// Root certificate for signing identities.
    pub ca_cert: PathBuf,
    /// Its key (0600).
    pub ca_key: PathBuf,
    /// TLS root certificate.
    pub tls_ca_cert: PathBuf,
    /// Its key (0600).
    pub tls_ca_key: PathBuf,
    /// The CA server's own TLS certificate.
    pub server_tls_cert: PathBuf,
    /// Its key (0600).
    pub server_tls_key: PathBuf,
    /// The bootstrap admin's secret (0600), written once.
    pub bootstrap_secret: PathBuf,
    /// The sled store.
    pub store: PathBuf,
}

impl HomeLayout {
    /// The layout under `home`.
    pub fn new(home: &Path) -> Self {
        HomeLayout {
            ca_cert: home.join("ca-cert.pem"),
            ca_key: home.join("ca-key.pem"),
            tls_ca_cert: home.join("tls-ca-cert.pem"),
            tls_ca_key: home.join("tls-ca-key.pem"),
            server_tls_cert: home.join("server-tls-cert.pem"),
            server_tls_key: home.join("server-tls-key.pem"),
            bootstrap_secret: home.join("bootstrap-admin.secret"),
            store: home.join("store"),
        }
    }
}

/// A certificate just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The issuing CA's certificate, PEM.
    pub ca_cert_pem: String,
    /// Serial, hex.
    pub serial: String,
}

/// What a checked CSR yields.
struct CheckedCsr {
    spki_der: Vec<u8>,
}

/// Rate-limit state for wrong secrets of one name.
#[derive(Debug, Default)]
struct Failures {
    times: Vec<i64>,
    locked_until: i64,
}

/// The certificate authority.
pub struct Authority {
    cfg: CaConfig,
    ca: CertAuthority,
    tls_ca: CertAuthority,
    store: Store,
    /// Validates callers of signed requests: our root plus our current CRL.
    msp: Msp,
    /// Serialises every state change, so counts and CRL numbers never race.
    write: Mutex<()>,
    failures: Mutex<HashMap<String, Failures>>,
    nonces: Mutex<HashMap<Vec<u8>, i64>>,
}

impl Authority {
    /// Renews the CA server's own TLS certificate when it expires within a
    /// day (as at start); true when it wrote a new pair, which the server
    /// then serves without a restart (`server::serve` checks hourly).
    pub fn renew_server_tls(&self) -> Result<bool, CaError> {
        let _w = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ensure_server_tls(&self.cfg, &HomeLayout::new(&self.cfg.home), &self.tls_ca)
    }
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("name", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

fn setup<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> CaError + '_ {
    move |e| CaError::Setup(format!("{what}: {e}"))
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::Setup(format!("{}: {e}", path.display())))
}

fn write_public(path: &Path, text: &str) -> Result<(), CaError> {
    std::fs::write(path, text).map_err(|e| CaError::Setup(format!("{}: {e}", path.display())))
}

fn write_secret(path: &Path, text: &str) -> Result<(), CaError> {
    signing::write_private_file(path, text.as_bytes())
        .map_err(|e| CaError::Setup(format!("{}: {e}", path.display())))
}

fn gen_err(e: CertGenError) -> CaError {
    match e {
        CertGenError::BadSan(h) => CaError::InvalidArgument {
            field: "hosts",
            message: format!("{h:?} is neither a DNS name nor an IP address"),
        },
        other => CaError::Setup(other.to_string()),
    }
}

impl Authority {
    /// Opens the CA at `cfg.home`, creating its keys, certificates, store and
    /// bootstrap admin on first start. Returns the bootstrap admin's secret
    /// when it was just created (print it once; it is also in a 0600 file).
    pub fn open(cfg: CaConfig) -> Result<(Self, Option<String>), CaError> {
        cfg.check()?;
        std::fs::create_dir_all(&cfg.home).map_err(setup("cannot create home"))?;
        let l = HomeLayout::new(&cfg.home);
        let fresh = !l.ca_key.exists();
        let (ca, tls_ca) = if fresh {
            let ca = CertAuthority::new_root(&cfg.name, &cfg.org, cfg.ca_days).map_err(gen_err)?;
            let tls_ca =
                CertAuthority::new_root(&format!("tls.{}", cfg.name), &cfg.org, cfg.ca_days)
                    .map_err(gen_err)?;
            write_secret(&l.ca_key, &ca.key_pem())?;
            write_public(&l.ca_cert, ca.cert_pem())?;
            write_secret(&l.tls_ca_key, &tls_ca.key_pem())?;
            write_public(&l.tls_ca_cert, tls_ca.cert_pem())?;
            (ca, tls_ca)
        } else {
            let ca = CertAuthority::from_pem(&read(&l.ca_cert)?, &read(&l.ca_key)?)
                .map_err(setup("root CA"))?;
            let tls_ca = CertAuthority::from_pem(&read(&l.tls_ca_cert)?, &read(&l.tls_ca_key)?)
                .map_err(setup("TLS CA"))?;
            (ca, tls_ca)
        };
        ensure_server_tls(&cfg, &l, &tls_ca)?;
        let store = Store::open(&l.store)?;
        let msp = Msp::new(MspConfig {
            msp_id: cfg.msp_id.clone(),
            root_certs: vec![ca.cert_pem().to_string()],
            ..Default::default()
        })
        .map_err(setup("MSP"))?;
        let auth = Authority {
            cfg,
            ca,
            tls_ca,
            store,
            msp,
            write: Mutex::new(()),
            failures: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
        };
        auth.refresh_msp_crl()?;
        let secret = if auth.store.is_empty() {
            Some(auth.bootstrap(&l)?)
        } else {
            None
        };
        Ok((auth, secret))
    }

    fn bootstrap(&self, l: &HomeLayout) -> Result<String, CaError> {
        let secret = secret::generate()?;
        let rec = IdentityRecord {
            name: BOOTSTRAP_ADMIN.into(),
            role: Role::Admin.as_str().into(),
            attributes: BTreeMap::new(),
            max_enrollments: -1,
            enrollments: 0,
            secret: secret::hash(&secret)?,
            registrar_roles: Role::ALL.iter().map(|r| r.as_str().to_string()).collect(),
            revoked: false,
            registered_by: "bootstrap".into(),
            registered_at: unix_now(),
        };
        write_secret(&l.bootstrap_secret, &format!("{secret}\n"))?;
        self.store.apply(Change {
            identities: vec![rec],
            audit: vec![audit(
                "bootstrap",
                "register",
                BOOTSTRAP_ADMIN,
                "role=admin",
            )],
            ..Default::default()
        })?;
        Ok(secret)
    }

    /// The configuration.
    pub fn config(&self) -> &CaConfig {
        &self.cfg
    }

    /// The store (read access for tests and tools).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// CA info.
    pub fn info(&self) -> pb::InfoResponse {
        pb::InfoResponse {
            ca_name: self.cfg.name.clone(),
            root_cert_pem: self.ca.cert_pem().to_string(),
            tls_root_cert_pem: self.tls_ca.cert_pem().to_string(),
            msp_id: self.cfg.msp_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            max_request_bytes: self.cfg.max_request_bytes as u64,
        }
    }

    /// Registers an identity. `signed` must come from a registrar.
    pub fn register(&self, signed: &pb::SignedRequest) -> Result<String, CaError> {
        let (caller, req): (IdentityRecord, pb::RegisterRequest) =
            self.authenticate(signed, "Register", |r: &pb::RegisterRequest| {
                r.stamp.clone()
            })?;
        let name = req.name.trim();
        check_name(name)?;
        let role: Role = req.role.parse().map_err(|e| CaError::InvalidArgument {
            field: "role",
            message: format!("{e}"),
        })?;
        require_registrar(&caller, role)?;
        for r in &req.registrar_roles {
            let rr: Role = r.parse().map_err(|e| CaError::InvalidArgument {
                field: "registrar_roles",
                message: format!("{e}"),
            })?;
            if role != Role::Admin {
                return Err(CaError::InvalidArgument {
                    field: "registrar_roles",
                    message: "only admins can be registrars".into(),
                });
            }
            require_registrar(&caller, rr)?;
        }
        let mut attributes = BTreeMap::new();
        for a in &req.attributes {
            check_attr(&a.name, &a.value)?;
            attributes.insert(a.name.clone(), a.value.clone());
        }
        let max = match req.max_enrollments {
            0 => self.cfg.default_max_enrollments,
            n if n < -1 => {
                return Err(CaError::InvalidArgument {
                    field: "max_enrollments",
                    message: format!("{n} (use -1 for unlimited)"),
                });
            }
            n => n,
        };
        let secret = if req.secret.is_empty() {
            secret::generate()?
        } else if req.secret.len() < 8 || req.secret.len() > 128 {
            return Err(CaError::InvalidArgument {
                field: "secret",
                message: "must be 8 to 128 characters".into(),
            });
        } else {
            req.secret.clone()
        };
        let _w = self.lock_writes()?;
        if self.store.identity(name)?.is_some() {
            return Err(CaError::AlreadyRegistered(name.to_string()));
        }
        let rec = IdentityRecord {
            name: name.to_string(),
            role: role.as_str().to_string(),
            attributes,
            max_enrollments: max,
            enrollments: 0,
            secret: secret::hash(&secret)?,
            registrar_roles: req.registrar_roles.clone(),
            revoked: false,
            registered_by: caller.name.clone(),
            registered_at: unix_now(),
        };
        let detail = format!("role={} attrs={:?} max={}", rec.role, rec.attributes, max);
        self.store.apply(Change {
            identities: vec![rec],
            audit: vec![audit(&caller.name, "register", name, &detail)],
            ..Default::default()
        })?;
        tracing::info!(registrar = %caller.name, %name, role = %role, "registered");
        Ok(secret)
    }

    /// Enrolls with name + secret + CSR.
    pub fn enroll(&self, req: &pb::EnrollRequest) -> Result<Issued, CaError> {
        let size = req.encoded_len();
        if size > self.cfg.max_request_bytes {
            return Err(CaError::Oversize {
                size,
                max: self.cfg.max_request_bytes,
            });
        }
        let name = req.name.as_str();
        self.check_lockout(name)?;
        let rec = self
            .store
            .identity(name)?
            .ok_or_else(|| CaError::UnknownName(name.to_string()))?;
        if !secret::verify(&req.secret, &rec.secret) {
            self.record_failure(name);
            return Err(CaError::WrongSecret(name.to_string()));
        }
        if rec.revoked {
            return Err(CaError::Revoked(format!("identity {name:?}")));
        }
        let csr = check_csr(&req.csr_pem, &rec, &self.cfg.org)?;
        let profile = Profile::parse(&req.profile)?;
        let _w = self.lock_writes()?;
        // Re-read under the lock: a concurrent enrollment may have used the last slot.
        let mut rec = self
            .store
            .identity(name)?
            .ok_or_else(|| CaError::UnknownName(name.to_string()))?;
        if rec.max_enrollments >= 0 && rec.enrollments >= rec.max_enrollments as u32 {
            return Err(CaError::EnrollmentsExhausted {
                name: name.to_string(),
                max: rec.max_enrollments,
            });
        }
        let issued = self.issue(&rec, profile, &req.hosts, &csr)?;
        rec.enrollments += 1;
        self.store.apply(Change {
            identities: vec![rec.clone()],
            certs: vec![cert_record(&rec.name, profile, &issued.serial)],
            audit: vec![audit(
                name,
                "enroll",
                name,
                &format!("profile={} serial={}", profile.as_str(), issued.serial),
            )],
            ..Default::default()
        })?;
        if let Ok(mut f) = self.failures.lock() {
            f.remove(name);
        }
        tracing::info!(%name, profile = profile.as_str(), serial = %issued.serial, "enrolled");
        Ok(issued)
    }

    /// Reenrolls the caller of a signed request (a new key is allowed).
    pub fn reenroll(&self, signed: &pb::SignedRequest) -> Result<Issued, CaError> {
        let (caller, req): (IdentityRecord, pb::ReenrollRequest) =
            self.authenticate(signed, "Reenroll", |r: &pb::ReenrollRequest| {
                r.stamp.clone()
            })?;
        let csr = check_csr(&req.csr_pem, &caller, &self.cfg.org)?;
        let profile = Profile::parse(&req.profile)?;
        let _w = self.lock_writes()?;
        let issued = self.issue(&caller, profile, &req.hosts, &csr)?;
        self.store.apply(Change {
            certs: vec![cert_record(&caller.name, profile, &issued.serial)],
            audit: vec![audit(
                &caller.name,
                "reenroll",
                &caller.name,
                &format!("profile={} serial={}", profile.as_str(), issued.serial),
            )],
            ..Default::default()
        })?;
        tracing::info!(name = %caller.name, serial = %issued.serial, "reenrolled");
        Ok(issued)
    }

    /// Revokes a name (all its certificates) or one serial; returns the
    /// serials revoked and the new CRLs.
    pub fn revoke(&self, signed: &pb::SignedRequest) -> Result<pb::RevokeResponse, CaError> {
        let (caller, req): (IdentityRecord, pb::RevokeRequest) =
            self.authenticate(signed, "Revoke", |r: &pb::RevokeRequest| r.stamp.clone())?;
        let reason = parse_reason(&req.reason).ok_or_else(|| CaError::InvalidArgument {
            field: "reason",
            message: format!("{:?} is not an RFC 5280 reason", req.reason),
        })?;
        let _w = self.lock_writes()?;
        let now = unix_now();
        let mut change = Change {
            bump_crl: true,
            ..Default::default()
        };
        let mut revoked = Vec::new();
        match (req.name.is_empty(), req.serial.is_empty()) {
            (false, true) => {
                let mut rec = self
                    .store
                    .identity(&req.name)?
                    .ok_or_else(|| CaError::UnknownName(req.name.clone()))?;
                require_registrar(&caller, parse_role(&rec.role)?)?;
                rec.revoked = true;
                for mut c in self.store.certs()? {
                    if c.name == rec.name && c.revoked_at.is_none() {
                        c.revoked_at = Some(now);
                        c.reason = Some(reason);
                        revoked.push(c.serial.clone());
                        change.certs.push(c);
                    }
                }
                change.audit.push(audit(
                    &caller.name,
                    "revoke",
                    &rec.name,
                    &format!("reason={reason} serials={revoked:?}"),
                ));
                change.identities.push(rec);
            }
            (true, false) => {
                let serial = req.serial.to_ascii_lowercase();
                let mut c = self
                    .store
                    .cert(&serial)?
                    .ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
                let owner = self
                    .store
                    .identity(&c.name)?
                    .ok_or_else(|| CaError::UnknownName(c.name.clone()))?;
                require_registrar(&caller, parse_role(&owner.role)?)?;
                if c.revoked_at.is_some() {
                    return Err(CaError::Revoked(format!("certificate {serial}")));
                }
                c.revoked_at = Some(now);
                c.reason = Some(reason);
                revoked.push(serial.clone());
                change.audit.push(audit(
                    &caller.name,
                    "revoke",
                    &serial,
                    &format!("reason={reason} owner={}", c.name),
                ));
                change.certs.push(c);
            }
            _ => {
                return Err(CaError::InvalidArgument {
                    field: "name/serial",
                    message: "give exactly one of name and serial".into(),
                });
            }
        }
        self.store.apply(change)?;
        self.refresh_msp_crl()?;
        let (crl_pem, tls_crl_pem, _) = self.crls()?;
        tracing::info!(by = %caller.name, ?revoked, "revoked");
        Ok(pb::RevokeResponse {
            revoked,
            crl_pem,
            tls_crl_pem,
        })
    }

    /// The current CRLs (signing, TLS) and their number, freshly signed.
    pub fn crls(&self) -> Result<(String, String, u64), CaError> {
        let number = self.store.crl_number()?;
        let mut sign = Vec::new();
        let mut tls = Vec::new();
        for c in self.store.certs()? {
            if let (Some(at), Ok(serial)) = (c.revoked_at, hex::decode(&c.serial)) {
                let entry = (serial, at, c.reason.unwrap_or(0));
                if c.profile == "tls" {
                    tls.push(entry)
                } else {
                    sign.push(entry)
                }
            }
        }
        let days = self.cfg.crl_days;
        Ok((
            self.ca.crl(number, &sign, days).map_err(gen_err)?,
            self.tls_ca.crl(number, &tls, days).map_err(gen_err)?,
            number,
        ))
    }

    fn refresh_msp_crl(&self) -> Result<(), CaError> {
        let (sign, _, _) = self.crls()?;
        self.msp.set_crls(vec![sign]).map_err(setup("CRL"))
    }

    fn issue(
        &self,
        rec: &IdentityRecord,
        profile: Profile,
        hosts: &[String],
        csr: &CheckedCsr,
    ) -> Result<Issued, CaError> {
        let spki = rcgen::SubjectPublicKeyInfo::from_der(&csr.spki_der)
            .map_err(|e| CaError::BadCsr(format!("public key: {e}")))?;
        let serial = qcss_network::certgen::random_serial().map_err(gen_err)?;
        let (cert_pem, ca_cert_pem) = match profile {
            Profile::Sign => {
                if !hosts.is_empty() {
                    return Err(CaError::InvalidArgument {
                        field: "hosts",
                        message: "only the tls profile takes hosts".into(),
                    });
                }
                let p = SigningProfile {
                    name: rec.name.clone(),
                    org: self.cfg.org.clone(),
                    role: parse_role(&rec.role)?,
                    attributes: rec.attributes.clone(),
                };
                (
                    self.ca
                        .issue_signing(&p, &spki, &serial, self.cfg.cert_days)
                        .map_err(gen_err)?,
                    self.ca.cert_pem().to_string(),
                )
            }
            Profile::Tls => {
                if hosts.len() > 32 {
                    return Err(CaError::InvalidArgument {
                        field: "hosts",
                        message: format!("{} hosts; at most 32", hosts.len()),
                    });
                }
                let mut all = vec![rec.name.clone()];
                all.extend(hosts.iter().filter(|h| **h != rec.name).cloned());
                (
                    self.tls_ca
                        .issue_tls(
                            &rec.name,
                            &self.cfg.org,
                            &all,
                            &spki,
                            &serial,
                            self.cfg.cert_days,
                        )
                        .map_err(gen_err)?,
                    self.tls_ca.cert_pem().to_string(),
                )
            }
        };
        Ok(Issued {
            cert_pem,
            ca_cert_pem,
            serial: hex::encode(serial),
        })
    }

    /// Checks a signed request: size, caller certificate (issued here, valid,
    /// not revoked), signature, freshness, nonce; returns the caller's record
    /// and the decoded inner request.
    fn authenticate<R: Message + Default>(
        &self,
        signed: &pb::SignedRequest,
        method: &str,
        stamp: impl Fn(&R) -> Option<pb::RequestStamp>,
    ) -> Result<(IdentityRecord, R), CaError> {
        let size = signed.encoded_len();
        if size > self.cfg.max_request_bytes {
            return Err(CaError::Oversize {
                size,
                max: self.cfg.max_request_bytes,
            });
        }
        let ident = self
            .msp
            .validate_serialized(&self.cfg.msp_id, &signed.certificate)
            .map_err(|e| match e {
                qcss_network::msp::MspError::Revoked { serial, .. } => {
                    CaError::Revoked(format!("caller certificate {serial}"))
                }
                other => CaError::BadCaller(other.to_string()),
            })?;
        signing::verify(
            &ident.cert.public_key,
            &signed_bytes(method, &signed.request),
            &signed.signature,
        )
        .map_err(|_| CaError::BadSignature)?;
        let req = R::decode(signed.request.as_slice()).map_err(|e| CaError::InvalidArgument {
            field: "request",
            message: format!("not a {method} request: {e}"),
        })?;
        let st = stamp(&req).ok_or(CaError::InvalidArgument {
            field: "stamp",
            message: "missing".into(),
        })?;
        let now = unix_now();
        let window = self.cfg.request_window_secs;
        if (st.timestamp - now).abs() > window {
            return Err(CaError::StaleRequest {
                timestamp: st.timestamp,
                window_secs: window,
            });
        }
        if st.nonce.len() < 16 || st.nonce.len() > 64 {
            return Err(CaError::InvalidArgument {
                field: "nonce",
                message: "must be 16 to 64 bytes".into(),
            });
        }
        let rec = self
            .store
            .identity(&ident.cert.common_name)?
            .ok_or_else(|| {
                CaError::BadCaller(format!(
                    "{:?} is not registered here",
                    ident.cert.common_name
                ))
            })?;
        if rec.revoked {
            return Err(CaError::Revoked(format!("identity {:?}", rec.name)));
        }
        // Remember the nonce last, so a refused request does not burn it.
        let mut nonces = self
            .nonces
            .lock()
            .map_err(|_| CaError::Store("nonce cache poisoned".into()))?;
        nonces.retain(|_, exp| *exp >= now);
        if nonces.contains_key(&st.nonce) {
            return Err(CaError::Replay);
        }
        nonces.insert(st.nonce.clone(), now + 2 * window);
        Ok((rec, req))
    }

    fn check_lockout(&self, name: &str) -> Result<(), CaError> {
        let now = unix_now();
        if let Ok(f) = self.failures.lock()
            && let Some(st) = f.get(name)
            && st.locked_until > now
        {
            return Err(CaError::RateLimited {
                name: name.to_string(),
                retry_after_secs: (st.locked_until - now) as u64,
            });
        }
        Ok(())
    }

    fn record_failure(&self, name: &str) {
        let now = unix_now();
        let lockout = self.cfg.lockout_secs;
        if let Ok(mut f) = self.failures.lock() {
            if f.len() > 100_000 {
                f.retain(|_, s| s.locked_until > now);
            }
            let st = f.entry(name.to_string()).or_default();
            st.times.retain(|t| *t > now - lockout);
            st.times.push(now);
            if st.times.len() >= self.cfg.max_failed_attempts as usize {
                st.locked_until = now + lockout;
                st.times.clear();
                tracing::warn!(%name, "too many wrong secrets; locked");
            }
        }
    }

    fn lock_writes(&self) -> Result<std::sync::MutexGuard<'_, ()>, CaError> {
        self.write
            .lock()
            .map_err(|_| CaError::Store("write lock poisoned".into()))
    }
}

/// The bytes a signed request's signature covers.
pub fn signed_bytes(method: &str, request: &[u8]) -> Vec<u8> {
    let mut v = format!("qcss.ca/{method}\n").into_bytes();
    v.extend_from_slice(request);
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Sign,
    Tls,
}

impl Profile {
    fn parse(s: &str) -> Result<Self, CaError> {
        match s {
            "" | "sign" => Ok(Profile::Sign),
            "tls" => Ok(Profile::Tls),
            other => Err(CaError::InvalidArgument {
                field: "profile",
                message: format!("{other:?} (expected sign or tls)"),
            }),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Profile::Sign => "sign",
            Profile::Tls => "tls",
        }
    }
}

fn parse_role(s: &str) -> Result<Role, CaError> {
    s.parse()
        .map_err(|e| CaError::Store(format!("stored role: {e}")))
}

fn require_registrar(caller: &IdentityRecord, role: Role) -> Result<(), CaError> {
    if caller.role != Role::Admin.as_str() || caller.registrar_roles.is_empty() {
        return Err(CaError::NotARegistrar {
            caller: caller.name.clone(),
            role: caller.role.clone(),
        });
    }
    if !caller.registrar_roles.iter().any(|r| r == role.as_str()) {
        return Err(CaError::RoleNotAllowed {
            registrar: caller.name.clone(),
            role: role.as_str().into(),
            allowed: caller.registrar_roles.join(","),
        });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), CaError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CaError::InvalidArgument {
            field: "name",
            message: format!("{name:?}: 1-64 characters of letters, digits, - _ . @"),
        })
    }
}

fn check_attr(name: &str, value: &str) -> Result<(), CaError> {
    if STANDARD_ATTRIBUTES.contains(&name) {
        return Err(CaError::InvalidArgument {
            field: "attributes",
            message: format!("{name} is set by the CA on every certificate, not registered"),
        });
    }
    if name.is_empty() || name.len() > 64 || value.len() > 256 || name.contains('=') {
        return Err(CaError::InvalidArgument {
            field: "attributes",
            message: format!("{name:?}: names 1-64 characters without '=', values up to 256"),
        });
    }
    Ok(())
}

/// Parses and checks a CSR against the registration: valid signature, P-256 or Ed25519
/// key, and nothing asked for (CN, role OU, attributes) beyond what was
/// registered (or, for Fabric CA's standard attributes, what the CA sets:
/// the name, the role and the org `org`).
fn check_csr(pem: &str, rec: &IdentityRecord, org: &str) -> Result<CheckedCsr, CaError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| CaError::BadCsr(format!("not PEM: {e}")))?;
    if p.label != "CERTIFICATE REQUEST" && p.label != "NEW CERTIFICATE REQUEST" {
        return Err(CaError::BadCsr(format!("PEM label is {:?}", p.label)));
    }
    let (_, csr) = X509CertificationRequest::from_der(&p.contents)
        .map_err(|e| CaError::BadCsr(format!("malformed: {e}")))?;
    csr.verify_signature()
        .map_err(|_| CaError::BadCsr("signature does not match its public key".into()))?;
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    qcss_network::identity::spki_key(spki).map_err(|e| {
        CaError::BadCsr(match e {
            qcss_network::identity::IdentityError::WeakKey => {
                "key is a weak or invalid Ed25519 key (anyone could sign for it)".into()
            }
            _ => "key is neither ECDSA P-256 nor Ed25519".into(),
        })
    })?;
    for cn in info.subject.iter_common_name() {
        let cn = cn.as_str().unwrap_or_default();
        if cn != rec.name {
            return Err(CaError::CsrNotAllowed {
                name: rec.name.clone(),
                asked: format!("CN={cn}"),
                registered: format!("CN={}", rec.name),
            });
        }
    }
    for ou in info.subject.iter_organizational_unit() {
        let ou = ou.as_str().unwrap_or_default();
        if ou.parse::<Role>().is_ok() && ou != rec.role {
            return Err(CaError::CsrNotAllowed {
                name: rec.name.clone(),
                asked: format!("role {ou}"),
                registered: format!("role {}", rec.role),
            });
        }
    }
    for attr in info.iter_attributes() {
        if let ParsedCriAttribute::ExtensionRequest(er) = attr.parsed_attribute() {
            for ext in &er.extensions {
                if ext
                    .oid
                    .iter()
                    .is_some_and(|it| it.eq(ATTRIBUTES_OID.iter().copied()))
                {
                    let asked =
                        decode_attributes(ext.value).map_err(|e| CaError::BadCsr(e.to_string()))?;
                    for (k, v) in asked {
                        let set_by_ca = match k.as_str() {
                            HF_ENROLLMENT_ID => Some(rec.name.as_str()),
                            HF_TYPE => Some(rec.role.as_str()),
                            HF_AFFILIATION => Some(org),
                            _ => None,
                        };
                        let allowed = match set_by_ca {
                            Some(value) => value == v,
                            None => rec.attributes.get(&k) == Some(&v),
                        };
                        if !allowed {
                            return Err(CaError::CsrNotAllowed {
                                name: rec.name.clone(),
                                asked: format!("attribute {k}={v}"),
                                registered: format!("attributes {:?}", rec.attributes),
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(CheckedCsr {
        spki_der: spki.raw.to_vec(),
    })
}

fn cert_record(name: &str, profile: Profile, serial: &str) -> CertRecord {
    CertRecord {
        serial: serial.to_string(),
        name: name.to_string(),
        profile: profile.as_str().to_string(),
        issued_at: unix_now(),
        revoked_at: None,
        reason: None,
    }
}

fn audit(actor: &str, action: &str, subject: &str, detail: &str) -> AuditEvent {
    AuditEvent {
        seq: 0,
        at: unix_now(),
        actor: actor.to_string(),
        action: action.to_string(),
        subject: subject.to_string(),
        detail: detail.to_string(),
    }
}

/// Issues the CA server's TLS certificate if missing, if its hosts changed
/// or if it expires within a day; says whether it issued one.
fn ensure_server_tls(
    cfg: &CaConfig,
    l: &HomeLayout,
    tls_ca: &CertAuthority,
) -> Result<bool, CaError> {
    if l.server_tls_cert.exists() && l.server_tls_key.exists() {
        let pem = read(&l.server_tls_cert)?;
        let current =
            CertInfo::from_pem(pem.as_bytes()).map_err(setup("server TLS certificate"))?;
        let fresh = current.not_after > unix_now() + 86400;
        let named = |h: &String| current.sans.iter().any(|s| s.eq_ignore_ascii_case(h));
        if fresh && cfg.tls_hosts.iter().all(named) {
            return Ok(false);
        }
    }
    let key = signing::SigningKey::generate().map_err(setup("key"))?;
    let serial = qcss_network::certgen::random_serial().map_err(gen_err)?;
    let rk = qcss_network::certgen::rcgen_key(&key).map_err(gen_err)?;
    let cert = tls_ca
        .issue_tls(
            &cfg.name,
            &cfg.org,
            &cfg.tls_hosts,
            &rk,
            &serial,
            cfg.cert_days,
        )
        .map_err(gen_err)?;
    key.write_pem_file(&l.server_tls_key)
        .map_err(setup("server TLS key"))?;
    write_public(&l.server_tls_cert, &cert)?;
    // Sanity: what we wrote parses.
    certs_from_pem(cert.as_bytes()).map_err(setup("server TLS certificate"))?;
    Ok(true)
}
