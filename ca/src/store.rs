//! The CA's sled store: identities, issued certificates, the audit log and
//! counters. Every change is one multi-tree transaction, so a crash leaves
//! either the whole change or none of it.

use std::collections::BTreeMap;
use std::path::Path;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::error::CaError;
use crate::secret::SecretHash;

/// A registered identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityRecord {
    /// The name (certificate CN).
    pub name: String,
    /// admin, peer, orderer or client.
    pub role: String,
    /// Attributes written into its certificates.
    pub attributes: BTreeMap<String, String>,
    /// Enrollments allowed; -1 = unlimited.
    pub max_enrollments: i32,
    /// Enrollments used.
    pub enrollments: u32,
    /// Hash of the enrollment secret.
    pub secret: SecretHash,
    /// Roles this identity may register (admins only).
    pub registrar_roles: Vec<String>,
    /// Whether the identity was revoked (no more enrollments).
    pub revoked: bool,
    /// Who registered it.
    pub registered_by: String,
    /// When, Unix seconds.
    pub registered_at: i64,
}

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertRecord {
    /// Serial, hex.
    pub serial: String,
    /// The identity it was issued to.
    pub name: String,
    /// `sign` or `tls`.
    pub profile: String,
    /// Issue time, Unix seconds.
    pub issued_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason code, if revoked.
    pub reason: Option<u8>,
}

/// One audited operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// Who did it (enrolled name, or the name enrolling).
    pub actor: String,
    /// register, enroll, reenroll, revoke, bootstrap.
    pub action: String,
    /// The name or serial acted on.
    pub subject: String,
    /// Details (role, profile, serials).
    pub detail: String,
}

/// A change to apply atomically.
#[derive(Debug, Default)]
pub struct Change {
    /// Identity records to write.
    pub identities: Vec<IdentityRecord>,
    /// Certificate records to write.
    pub certs: Vec<CertRecord>,
    /// Audit events to append (seq is assigned here).
    pub audit: Vec<AuditEvent>,
    /// Bump the CRL number.
    pub bump_crl: bool,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    identities: sled::Tree,
    certs: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
}

const AUDIT_SEQ: &[u8] = b"audit_seq";
const CRL_NUMBER: &[u8] = b"crl_number";

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Records are plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, CaError> {
    serde_json::from_slice(b).map_err(|e| CaError::Store(format!("corrupt record: {e}")))
}

fn get_u64(t: &TransactionalTree, k: &[u8]) -> Result<u64, ConflictableTransactionError<CaError>> {
    Ok(t.get(k)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, CaError> {
        let db = sled::open(dir)
            .map_err(|e| CaError::Store(format!("cannot open {}: {e}", dir.display())))?;
        Ok(Store {
            identities: db.open_tree("identities")?,
            certs: db.open_tree("certs")?,
            audit: db.open_tree("audit")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    /// An identity by name.
    pub fn identity(&self, name: &str) -> Result<Option<IdentityRecord>, CaError> {
        self.identities
            .get(name.as_bytes())?
            .map(|v| dec(&v))
            .transpose()
    }

    /// A certificate record by serial (hex).
    pub fn cert(&self, serial: &str) -> Result<Option<CertRecord>, CaError> {
        self.certs
            .get(serial.as_bytes())?
            .map(|v| dec(&v))
            .transpose()
    }

    /// Every certificate record.
    pub fn certs(&self) -> Result<Vec<CertRecord>, CaError> {
        self.certs.iter().map(|r| dec(&r?.1)).collect()
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEvent>, CaError> {
        self.audit.iter().map(|r| dec(&r?.1)).collect()
    }

    /// The current CRL number.
    pub fn crl_number(&self) -> Result<u64, CaError> {
        Ok(self
            .meta
            .get(CRL_NUMBER)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// Whether the store has no identities yet (first start).
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Applies a change atomically and flushes it to disk.
    pub fn apply(&self, change: Change) -> Result<(), CaError> {
        let at = (&self.identities, &self.certs, &self.audit, &self.meta).transaction(
            |(ids, certs, audit, meta)| {
                for r in &change.identities {
                    ids.insert(r.name.as_bytes(), enc(r))?;
                }
                for c in &change.certs {
                    certs.insert(c.serial.as_bytes(), enc(c))?;
                }
                let mut seq = get_u64(meta, AUDIT_SEQ)?;
                for e in &change.audit {
                    seq += 1;
                    let mut e = e.clone();
                    e.seq = seq;
                    audit.insert(&seq.to_be_bytes(), enc(&e))?;
                }
                meta.insert(AUDIT_SEQ, &seq.to_be_bytes())?;
                if change.bump_crl {
                    let n = get_u64(meta, CRL_NUMBER)? + 1;
                    meta.insert(CRL_NUMBER, &n.to_be_bytes())?;
                }
                Ok(())
            },
        );
        at.map_err(|e: TransactionError<CaError>| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => CaError::Store(e.to_string()),
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// SHA-256 over every key and value of every tree: equal before and
    /// after a refused request proves the request changed nothing.
    pub fn fingerprint(&self) -> Result<[u8; 32], CaError> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for t in [&self.identities, &self.certs, &self.audit, &self.meta] {
            ctx.update(&t.name());
            for kv in t.iter() {
                let (k, v) = kv?;
                ctx.update(&(k.len() as u64).to_be_bytes());
                ctx.update(&k);
                ctx.update(&(v.len() as u64).to_be_bytes());
                ctx.update(&v);
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Ok(out)
    }
}
