//! Config transactions: how a channel's configuration changes.
//!
//! A change is a [`ConfigUpdate`] — the channel id, the new sequence
//! (current + 1) and the *whole* new [`ChannelConfig`] — signed by enough org
//! admins to satisfy the **current** configuration's Admins policy (MAJORITY
//! of the orgs' admins by default). Admins sign offline ([`sign_update`]
//! over [`ConfigUpdate::signing_bytes`]); any member then submits it with
//! Broadcast as a `CONFIG_UPDATE` envelope ([`build_update_envelope`]).
//!
//! Broadcast checks it with [`verify_update`] (refusing it with a clear
//! status), the leader cuts it into a batch of its own, and every orderer
//! checks it again when applying that batch, against the configuration in
//! force at that point of the chain and at the time in the update envelope's
//! header — so a stale or conflicting update is refused identically
//! everywhere. An accepted update becomes a config block: one unsigned
//! CONFIG envelope carrying the new configuration and the update envelope
//! (`qcss_network::block::ConfigEnvelope`); later blocks name it as their
//! LAST_CONFIG. The live channel (MSPs, CRLs, policies, batch parameters,
//! TLS roots) is swapped when that block is applied.
//!
//! One exception to the Admins policy: an update that changes only one
//! org's CRLs needs only that org's admins, and its CRLs must be that org's
//! CAs' and newer than those in force (`crate::crl_update`). This is how a
//! revocation reaches the channel in one block (`qcss channel update crl`).
//!
//! What may change: orgs (add, remove, replace MSPs and CRLs), peer
//! endpoints, batch parameters, policies and the consenter set (add,
//! remove, or renew a consenter's certificates; see [`check_consenters`]
//! for what is refused). Raft membership follows the consenter set once the
//! config block is applied (`crate::membership`). Not supported: the channel
//! id, a consenter's address or org ([`ConfigUpdateError::NotSupported`]).

use prost::Message;
use qcss_network::channel::{Channel, ChannelConfig, ChannelError};
use qcss_network::identity::certs_from_pem;
use qcss_network::policy::{Policy, SignerInfo};
use qcss_network::signing::{self, CryptoError};
use qcss_network::{SigningIdentity, envelope};
use qcss_proto::common::{Envelope, HeaderType, Status};
use qcss_proto::msp::SerializedIdentity;

use crate::crl_update::{self, CrlChange};

/// Domain separation for admin signatures over an update.
const SIGNING_DOMAIN: &[u8] = b"qcss.config_update/v1\n";

/// A proposed configuration change and the admins' signatures over it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    /// The channel it changes.
    pub channel_id: String,
    /// The sequence it creates: the current configuration's + 1. Also
    /// `config.sequence`.
    pub sequence: u64,
    /// The complete new configuration.
    pub config: ChannelConfig,
    /// Admins' signatures over [`ConfigUpdate::signing_bytes`].
    #[serde(default)]
    pub signatures: Vec<ConfigSignature>,
}

/// One admin's signature over an update.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSignature {
    /// The signer's serialized identity (Fabric `msp.SerializedIdentity`
    /// protobuf bytes), hex.
    pub creator: String,
    /// ECDSA signature (DER, low-S), hex.
    pub signature: String,
}

/// The part of an update that admins sign.
#[derive(serde::Serialize)]
struct Signed<'a> {
    channel_id: &'a str,
    sequence: u64,
    config: &'a ChannelConfig,
}

/// Why an update is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigUpdateError {
    /// The update does not decode.
    #[error("config update: malformed: {0}")]
    Malformed(String),
    /// It names another channel.
    #[error("config update is for channel {got:?}, not {want:?}")]
    WrongChannel {
        /// The channel it names.
        got: String,
        /// This channel.
        want: String,
    },
    /// It does not follow the current configuration.
    #[error(
        "config update has sequence {got} but the channel is at sequence {current}: it must be {}",
        current + 1
    )]
    Sequence {
        /// The sequence of the configuration in force.
        current: u64,
        /// The sequence the update carries.
        got: u64,
    },
    /// A signature does not check out.
    #[error("config update signature {index}: {reason}")]
    BadSignature {
        /// Its position in `signatures`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The valid signatures do not satisfy the current Admins policy.
    #[error(
        "config update signed by [{}] does not satisfy the channel's Admins policy {policy:?}",
        signers.join(", ")
    )]
    NotAuthorized {
        /// The policy text.
        policy: String,
        /// Who signed ("MSP role CN").
        signers: Vec<String>,
    },
    /// A CRL-only update signed only by that org's admins (not by enough
    /// for the channel's Admins policy) also changes something else.
    #[error(
        "config update signed only by {msp_id}'s admins may change nothing but {msp_id}'s CRLs, \
         but it also changes {}; other changes need the channel's Admins policy",
        also.join(", ")
    )]
    NotOnlyCrls {
        /// The org whose admins signed.
        msp_id: String,
        /// What else it changes.
        also: Vec<String>,
    },
    /// A CRL-only update whose CRLs are refused (see `crate::crl_update`):
    /// which org and why.
    #[error("config update: CRL refused: {0}")]
    Crl(String),
    /// The new configuration does not build.
    #[error("config update: the new configuration is invalid: {0}")]
    InvalidConfig(#[from] ChannelError),
    /// A change to the consenter set that would be unsafe or that names an
    /// unusable consenter (which one and why is in the message).
    #[error("config update: consenter change refused: {0}")]
    Consenters(String),
    /// A change QCSS cannot make yet.
    #[error("config update: {0} is not supported yet")]
    NotSupported(String),
    /// Signing failed.
    #[error("config update: signing failed: {0}")]
    Crypto(#[from] CryptoError),
}

impl ConfigUpdateError {
    /// The Broadcast status this refusal is answered with.
    pub fn status(&self) -> Status {
        match self {
            ConfigUpdateError::BadSignature { .. }
            | ConfigUpdateError::NotAuthorized { .. }
            | ConfigUpdateError::NotOnlyCrls { .. } => Status::Forbidden,
            ConfigUpdateError::NotSupported(_) => Status::NotImplemented,
            ConfigUpdateError::Crypto(_) => Status::InternalServerError,
            _ => Status::BadRequest,
        }
    }
}

impl ConfigUpdate {
    /// An unsigned update from `current` to `new` (whose channel id and
    /// sequence are set to follow `current`).
    pub fn propose(current: &ChannelConfig, mut new: ChannelConfig) -> ConfigUpdate {
        new.channel_id = current.channel_id.clone();
        new.sequence = current.sequence + 1;
        ConfigUpdate {
            channel_id: current.channel_id.clone(),
            sequence: new.sequence,
            config: new,
            signatures: Vec::new(),
        }
    }

    /// The bytes every admin signs: a domain tag and the canonical JSON of
    /// (channel id, sequence, config).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut v = SIGNING_DOMAIN.to_vec();
        let signed = Signed {
            channel_id: &self.channel_id,
            sequence: self.sequence,
            config: &self.config,
        };
        // Plain data: serialising cannot fail.
        v.extend(serde_json::to_vec(&signed).unwrap_or_default());
        v
    }

    /// The JSON form (what a `CONFIG_UPDATE` envelope's data holds, and what
    /// admins pass around to sign).
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes the JSON form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigUpdateError> {
        serde_json::from_slice(bytes).map_err(|e| ConfigUpdateError::Malformed(e.to_string()))
    }
}

/// Adds `signer`'s signature to `update` (an admin does this offline).
pub fn sign_update(
    update: &mut ConfigUpdate,
    signer: &SigningIdentity,
) -> Result<(), ConfigUpdateError> {
    let signature = signer.sign(&update.signing_bytes())?;
    update.signatures.push(ConfigSignature {
        creator: hex::encode(envelope::creator_bytes(signer)),
        signature: hex::encode(signature),
    });
    Ok(())
}

/// The `CONFIG_UPDATE` envelope `submitter` broadcasts for `update`, and its
/// tx id. The submitter must satisfy the channel's Writers policy; the
/// authority comes from the admins' signatures inside.
pub fn build_update_envelope(
    update: &ConfigUpdate,
    submitter: &SigningIdentity,
) -> Result<(Envelope, String), ConfigUpdateError> {
    Ok(envelope::build(
        submitter,
        &update.channel_id,
        HeaderType::ConfigUpdate,
        update.to_json(),
    )?)
}

/// Checks `update` against the configuration in force (`channel`) as of
/// `at` (Unix seconds, for certificate validity): channel, sequence, every
/// signature, the Admins policy, and that the new configuration builds and
/// changes only what may change. Returns the new live channel.
///
/// Deterministic: the same inputs give the same answer on every node.
pub fn verify_update(
    channel: &Channel,
    update: &ConfigUpdate,
    at: i64,
) -> Result<Channel, ConfigUpdateError> {
    let current = channel.config();
    if update.channel_id != current.channel_id {
        return Err(ConfigUpdateError::WrongChannel {
            got: update.channel_id.clone(),
            want: current.channel_id.clone(),
        });
    }
    if update.config.channel_id != current.channel_id {
        return Err(ConfigUpdateError::NotSupported(
            "changing the channel id".into(),
        ));
    }
    for got in [update.sequence, update.config.sequence] {
        if got != current.sequence + 1 {
            return Err(ConfigUpdateError::Sequence {
                current: current.sequence,
                got,
            });
        }
    }
    let signed = update.signing_bytes();
    let mut signers = Vec::with_capacity(update.signatures.len());
    let mut names = Vec::with_capacity(update.signatures.len());
    for (index, s) in update.signatures.iter().enumerate() {
        let bad = |reason: String| ConfigUpdateError::BadSignature { index, reason };
        let creator = hex::decode(&s.creator).map_err(|e| bad(format!("creator: {e}")))?;
        let sig = hex::decode(&s.signature).map_err(|e| bad(format!("signature: {e}")))?;
        let id = SerializedIdentity::decode(creator.as_slice())
            .map_err(|e| bad(format!("creator: {e}")))?;
        let msp = channel.msp(&id.mspid).ok_or_else(|| {
            bad(format!(
                "signer's MSP {:?} is not a member of the channel",
                id.mspid
            ))
        })?;
        let der = certs_from_pem(&id.id_bytes)
            .map_err(|e| bad(format!("creator certificate: {e}")))?
            .into_iter()
            .next()
            .ok_or_else(|| bad("creator has no certificate".into()))?;
        let v = msp.validate_at(&der, at).map_err(|e| bad(e.to_string()))?;
        signing::verify(&v.cert.public_key, &signed, &sig)
            .map_err(|e| bad(format!("by {} ({}): {e}", v.cert.common_name, v.msp_id)))?;
        names.push(format!("{} {} {}", v.msp_id, v.role, v.cert.common_name));
        signers.push(SignerInfo::from(&v));
    }
    let admins = channel.admins_ok(&signers);
    match crl_update::classify(current, &update.config) {
        CrlChange::Only(msp_id) => {
            // One org publishing its revocations: its own admins suffice.
            if !admins && !org_admins_ok(channel, &msp_id, &signers) {
                return Err(ConfigUpdateError::NotAuthorized {
                    policy: format!(
                        "{} or, for a change of {msp_id}'s CRLs only, OR('{msp_id}.admin')",
                        current.policies.admins
                    ),
                    signers: names,
                });
            }
            let org = |c: &'_ ChannelConfig| {
                c.orgs
                    .iter()
                    .find(|o| o.msp.msp_id == msp_id)
                    .cloned()
                    .ok_or_else(|| ConfigUpdateError::Malformed(format!("no org {msp_id}")))
            };
            crl_update::check_crls(current, &org(current)?, &org(&update.config)?)?;
        }
        CrlChange::More { msp_id, also }
            if !admins && org_admins_ok(channel, &msp_id, &signers) =>
        {
            return Err(ConfigUpdateError::NotOnlyCrls { msp_id, also });
        }
        _ if !admins => {
            return Err(ConfigUpdateError::NotAuthorized {
                policy: current.policies.admins.clone(),
                signers: names,
            });
        }
        _ => {}
    }
    let next = Channel::new(update.config.clone())?;
    check_consenters(channel, &next, at)?;
    Ok(next)
}

/// Whether `signers` satisfy org `msp_id`'s Admins policy (`OR('MSP.admin')`).
fn org_admins_ok(channel: &Channel, msp_id: &str, signers: &[SignerInfo]) -> bool {
    Policy::parse(&format!("OR('{msp_id}.admin')")).is_ok_and(|p| channel.evaluate(&p, signers))
}

/// Checks a change of the consenter set from `current` to `next` (already
/// built, so its MSPs judge the new consenters) at time `at`:
///
/// - at least one consenter remains, and no more than half of the current
///   ones are removed at once (the ones that stay must be able to commit
///   the membership change, and a majority of the old set must agree to it);
/// - a consenter that stays keeps its address and org (to move one, remove
///   it and add it under a new id);
/// - every added consenter, and every one whose certificates change, has a
///   signing certificate its org's MSP accepts at `at` with role orderer, a
///   TLS certificate that parses and is valid at `at`, and an address
///   (`host:port`) and certificates no other consenter uses.
///
/// Deterministic, like [`verify_update`].
pub fn check_consenters(
    current: &Channel,
    next: &Channel,
    at: i64,
) -> Result<(), ConfigUpdateError> {
    let refuse = |m: String| Err(ConfigUpdateError::Consenters(m));
    let old = &current.config().consenters;
    let new = &next.config().consenters;
    if new.is_empty() {
        return refuse("the channel must keep at least one consenter".into());
    }
    let removed: Vec<u64> = old
        .iter()
        .filter(|o| !new.iter().any(|n| n.id == o.id))
        .map(|o| o.id)
        .collect();
    if removed.len() * 2 > old.len() {
        return refuse(format!(
            "removing consenters {removed:?} would remove {} of {} at once; \
             remove at most {} per update",
            removed.len(),
            old.len(),
            old.len() / 2
        ));
    }
    let mut addresses = std::collections::BTreeSet::new();
    let mut tls = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for c in new {
        if !addresses.insert(c.address.as_str()) {
            return refuse(format!(
                "consenter {}: address {} is already used by another consenter",
                c.id, c.address
            ));
        }
        if !tls.insert(c.tls_cert_pem.trim()) || !ids.insert(c.identity_cert_pem.trim()) {
            return refuse(format!(
                "consenter {}: its certificates are already another consenter's",
                c.id
            ));
        }
        let before = old.iter().find(|o| o.id == c.id);
        if let Some(o) = before {
            if o.address != c.address || o.msp_id != c.msp_id {
                return Err(ConfigUpdateError::NotSupported(format!(
                    "changing consenter {}'s address or org (remove it and add it under a new id)",
                    c.id
                )));
            }
            if o == c {
                continue;
            }
        }
        check_new_consenter(next, c, at).map_err(|why| {
            ConfigUpdateError::Consenters(format!("consenter {} ({}): {why}", c.id, c.address))
        })?;
    }
    Ok(())
}

/// The checks on one added (or re-certified) consenter.
fn check_new_consenter(
    next: &Channel,
    c: &qcss_network::channel::Consenter,
    at: i64,
) -> Result<(), String> {
    match c.address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
        _ => return Err(format!("address {:?} is not host:port", c.address)),
    }
    let one = |pem: &str, what: &str| -> Result<Vec<u8>, String> {
        let mut certs =
            certs_from_pem(pem.as_bytes()).map_err(|e| format!("{what} certificate: {e}"))?;
        if certs.len() != 1 {
            return Err(format!(
                "{what} certificate: expected one PEM certificate, found {}",
                certs.len()
            ));
        }
        Ok(certs.remove(0))
    };
    let id_der = one(&c.identity_cert_pem, "signing")?;
    let msp = next
        .msp(&c.msp_id)
        .ok_or_else(|| format!("org {} is not a member", c.msp_id))?;
    let v = msp
        .validate_at(&id_der, at)
        .map_err(|e| format!("signing certificate: {e}"))?;
    if v.role != qcss_network::Role::Orderer {
        return Err(format!(
            "signing certificate {} has role {}, not orderer",
            v.cert.common_name, v.role
        ));
    }
    let tls_der = one(&c.tls_cert_pem, "TLS")?;
    let info =
        qcss_network::CertInfo::from_der(&tls_der).map_err(|e| format!("TLS certificate: {e}"))?;
    if info.is_ca {
        return Err("TLS certificate is a CA certificate".into());
    }
    if at < info.not_before || at > info.not_after {
        return Err("TLS certificate is expired or not yet valid".into());
    }
    Ok(())
}

/// The time a `CONFIG_UPDATE` envelope says it was made (Unix seconds), the
/// instant certificates are checked at when the update is applied.
pub fn envelope_time(opened: &envelope::OpenedEnvelope) -> i64 {
    opened
        .channel_header
        .timestamp
        .as_ref()
        .map(|t| t.seconds)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use qcss_network::Role;
    use qcss_network::msp::unix_now;

    use super::*;
    use crate::fixtures::{TestOrg, channel_config};

    struct World {
        org1: TestOrg,
        org2: TestOrg,
        admin1: SigningIdentity,
        admin2: SigningIdentity,
        client2: SigningIdentity,
        orderer: SigningIdentity,
    }

    fn world() -> World {
        let (org1, org2) = (TestOrg::new(1), TestOrg::new(2));
        World {
            admin1: org1.identity("admin1", Role::Admin),
            admin2: org2.identity("admin2", Role::Admin),
            client2: org2.identity("client2", Role::Client),
            orderer: org1.identity("orderer1", Role::Orderer),
            org1,
            org2,
        }
    }

    fn signed(
        current: &ChannelConfig,
        next: ChannelConfig,
        by: &[&SigningIdentity],
    ) -> ConfigUpdate {
        let mut u = ConfigUpdate::propose(current, next);
        for s in by {
            sign_update(&mut u, s).unwrap();
        }
        u
    }

    #[test]
    fn one_org_admin_adds_a_second_org() {
        let w = world();
        let cfg = channel_config(&[&w.org1], &w.orderer);
        let channel = Channel::new(cfg.clone()).unwrap();
        let mut next = cfg.clone();
        next.orgs.push(w.org2.org_config());
        let u = signed(&cfg, next, &[&w.admin1]);
        let new = verify_update(&channel, &u, unix_now()).unwrap();
        assert_eq!(new.config().sequence, 1);
        assert!(new.msp("Org2MSP").is_some());
    }

    #[test]
    fn majority_of_two_orgs_needs_both_admins() {
        let w = world();
        let cfg = channel_config(&[&w.org1, &w.org2], &w.orderer);
        let channel = Channel::new(cfg.clone()).unwrap();
        let mut next = cfg.clone();
        next.batch.batch_timeout_ms = 500;
        let cases: Vec<(Vec<&SigningIdentity>, bool)> = vec![
            (vec![&w.admin1], false),
            (vec![&w.admin2], false),
            (vec![&w.admin1, &w.client2], false),
            (vec![&w.admin1, &w.admin1], false),
            (vec![&w.admin1, &w.admin2], true),
            (vec![&w.admin2, &w.client2, &w.admin1], true),
        ];
        for (by, ok) in cases {
            let u = signed(&cfg, next.clone(), &by);
            let r = verify_update(&channel, &u, unix_now());
            match (ok, r) {
                (true, Ok(c)) => assert_eq!(c.config().batch.batch_timeout_ms, 500),
                (false, Err(ConfigUpdateError::NotAuthorized { policy, signers })) => {
                    assert_eq!(policy, "MAJORITY Admins");
                    assert_eq!(signers.len(), by.len());
                }
                (ok, r) => panic!("{} signers, expected ok={ok}: {r:?}", by.len()),
            }
        }
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let w = world();
        let cfg = channel_config(&[&w.org1], &w.orderer);
        let channel = Channel::new(cfg.clone()).unwrap();
        let good = || signed(&cfg, cfg.clone(), &[&w.admin1]);
        type Case = (
            &'static str,
            Box<dyn Fn(&mut ConfigUpdate)>,
            &'static str,
            Status,
        );
        let cases: Vec<Case> = vec![
            (
                "other channel",
                Box::new(|u| u.channel_id = "other".into()),
                "is for channel",
                Status::BadRequest,
            ),
            (
                "stale sequence",
                Box::new(|u| u.sequence = 0),
                "sequence 0",
                Status::BadRequest,
            ),
            (
                "config sequence differs",
                Box::new(|u| u.config.sequence = 5),
                "sequence 5",
                Status::BadRequest,
            ),
            (
                "changed after signing",
                Box::new(|u| u.config.batch.max_message_count = 7),
                "signature 0",
                Status::Forbidden,
            ),
            (
                "garbage signature",
                Box::new(|u| u.signatures[0].signature = "zz".into()),
                "signature 0",
                Status::Forbidden,
            ),
            (
                "channel renamed",
                Box::new(|u| u.config.channel_id = "renamed".into()),
                "not supported yet",
                Status::NotImplemented,
            ),
            (
                "unsigned",
                Box::new(|u| u.signatures.clear()),
                "Admins policy",
                Status::Forbidden,
            ),
        ];
        for (what, change, needle, status) in cases {
            let mut u = good();
            change(&mut u);
            let e = verify_update(&channel, &u, unix_now()).expect_err(what);
            assert!(e.to_string().contains(needle), "{what}: {e}");
            assert_eq!(e.status(), status, "{what}");
        }
        // Validly signed, but the new configuration does not build.
        let mut bad = cfg.clone();
        bad.batch.max_message_count = 0;
        let e = verify_update(&channel, &signed(&cfg, bad, &[&w.admin1]), unix_now()).unwrap_err();
        assert!(matches!(e, ConfigUpdateError::InvalidConfig(_)), "{e}");
    }

    #[test]
    fn consenter_changes_are_checked() {
        let w = world();
        let o = |n: u32| w.org1.identity(&format!("orderer{n}"), Role::Orderer);
        let orderers: Vec<SigningIdentity> = (1..=4).map(o).collect();
        let consenter = |i: usize| {
            let pem = String::from_utf8(orderers[i].cert_pem.clone()).unwrap();
            qcss_network::channel::Consenter {
                id: i as u64 + 1,
                address: format!("127.0.0.1:{}", 7050 + i),
                msp_id: "Org1MSP".into(),
                tls_cert_pem: pem.clone(),
                identity_cert_pem: pem,
            }
        };
        let mut cfg = channel_config(&[&w.org1], &orderers[0]);
        cfg.consenters = (0..3).map(consenter).collect();
        let channel = Channel::new(cfg.clone()).unwrap();
        let check = |change: &dyn Fn(&mut ChannelConfig)| {
            let mut next = cfg.clone();
            change(&mut next);
            verify_update(&channel, &signed(&cfg, next, &[&w.admin1]), unix_now())
        };
        // Accepted: add one, remove one, renew one's certificates.
        let added = check(&|c| c.consenters.push(consenter(3))).unwrap();
        assert_eq!(added.config().consenters.len(), 4);
        check(&|c| {
            c.consenters.remove(1);
        })
        .unwrap();
        let renewed = w.org1.identity("orderer1-renewed", Role::Orderer);
        check(&|c| {
            let pem = String::from_utf8(renewed.cert_pem.clone()).unwrap();
            c.consenters[0].identity_cert_pem = pem.clone();
            c.consenters[0].tls_cert_pem = pem;
        })
        .unwrap();
        // Refused.
        let with = |f: fn(&mut qcss_network::channel::Consenter)| {
            let mut c4 = consenter(3);
            f(&mut c4);
            c4
        };
        let client_pem = String::from_utf8(w.client2.cert_pem.clone()).unwrap();
        let admin_pem = String::from_utf8(w.admin1.cert_pem.clone()).unwrap();
        type Case<'a> = (&'a str, Box<dyn Fn(&mut ChannelConfig) + 'a>, &'a str);
        let cases: Vec<Case> = vec![
            (
                "majority removed",
                Box::new(|c| c.consenters.truncate(1)),
                "would remove 2 of 3 at once",
            ),
            (
                "duplicate id",
                Box::new(|c| c.consenters.push(with(|c| c.id = 2))),
                "zero or repeated",
            ),
            (
                "duplicate address",
                Box::new(|c| {
                    c.consenters
                        .push(with(|c| c.address = "127.0.0.1:7050".into()))
                }),
                "already used",
            ),
            (
                "same certificates as another",
                Box::new(|c| {
                    let mut c4 = consenter(3);
                    c4.tls_cert_pem = c.consenters[0].tls_cert_pem.clone();
                    c.consenters.push(c4);
                }),
                "already another consenter's",
            ),
            (
                "bad address",
                Box::new(|c| c.consenters.push(with(|c| c.address = "nowhere".into()))),
                "not host:port",
            ),
            (
                "garbage certificate",
                Box::new(|c| c.consenters.push(with(|c| c.tls_cert_pem = "junk".into()))),
                "TLS certificate",
            ),
            (
                "certificate of another org",
                Box::new(move |c| {
                    let mut c4 = consenter(3);
                    c4.identity_cert_pem = client_pem.clone();
                    c.consenters.push(c4);
                }),
                "signing certificate",
            ),
            (
                "not an orderer",
                Box::new(move |c| {
                    let mut c4 = consenter(3);
                    c4.identity_cert_pem = admin_pem.clone();
                    c.consenters.push(c4);
                }),
                "not orderer",
            ),
        ];
        for (what, change, needle) in cases {
            let e = check(&*change).expect_err(what);
            assert!(e.to_string().contains(needle), "{what}: {e}");
            assert_eq!(e.status(), Status::BadRequest, "{what}");
        }
        let e = check(&|c| c.consenters.clear()).unwrap_err();
        assert!(e.to_string().contains("no consenters"), "{e}");
        let e = check(&|c| c.consenters[0].address = "127.0.0.1:7059".into()).unwrap_err();
        assert_eq!(e.status(), Status::NotImplemented, "{e}");
    }

    #[test]
    fn signatures_survive_the_json_round_trip() {
        let w = world();
        let cfg = channel_config(&[&w.org1], &w.orderer);
        let channel = Channel::new(cfg.clone()).unwrap();
        let mut next = cfg.clone();
        next.orgs.push(w.org2.org_config());
        let u = signed(&cfg, next, &[&w.admin1]);
        let back = ConfigUpdate::from_json(&u.to_json()).unwrap();
        assert_eq!(back.signing_bytes(), u.signing_bytes());
        verify_update(&channel, &back, unix_now()).unwrap();
        assert!(ConfigUpdate::from_json(b"{\"channel_id\":1}").is_err());
    }

    #[test]
    fn certificates_are_judged_at_the_given_time() {
        let w = world();
        let cfg = channel_config(&[&w.org1], &w.orderer);
        let channel = Channel::new(cfg.clone()).unwrap();
        let u = signed(&cfg, cfg.clone(), &[&w.admin1]);
        // Long before the admin's certificate was issued.
        let e = verify_update(&channel, &u, 1_000_000).unwrap_err();
        assert!(e.to_string().contains("expired or not yet valid"), "{e}");
        verify_update(&channel, &u, unix_now()).unwrap();
    }
}
