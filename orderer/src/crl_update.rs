//! CRL-only config updates: how one org publishes its revocations into the
//! channel without waiting for the other orgs' admins.
//!
//! A config update that changes nothing but one org's CRLs needs only that
//! org's Admins policy (`OR('OrgXMSP.admin')`), as Fabric modifies an org's
//! MSP under the org's own Admins policy — instead of the channel's Admins
//! policy (MAJORITY by default) every other change needs. That is safe
//! because of what such an update may carry, checked by [`check_crls`] on
//! every CRL-only update whoever signed it:
//!
//! - every CRL is signed by one of the org's own CAs (signing or TLS, root
//!   or intermediate): an org can only revoke its own certificates;
//! - for each issuer, the new CRL is the one in force or has a greater CRL
//!   number, and no issuer's CRL is dropped: revocations are never rolled
//!   back (a list with a lower number revokes less);
//! - no CRL names as its issuer a CA name another org's CA also has (every
//!   node's TLS checks all orgs' CRLs at once, and would apply the list to
//!   that org's certificates too — and refuse them all);
//! - nothing else changes — not the org's roots, admins or endpoints, not
//!   another org, nothing channel-wide ([`classify`] says what else changed,
//!   and an update signed only by that org's admins is then refused).

use qcss_network::channel::{ChannelConfig, OrgConfig};
use qcss_network::crl::{VerifiedCrl, subject_der, verify_crls};
use qcss_network::identity::certs_from_pem;

use crate::config_update::ConfigUpdateError;

/// What an update changes, as far as CRLs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlChange {
    /// No org's CRLs change.
    None,
    /// Only the CRLs of this org (its MSP id) change.
    Only(String),
    /// The CRLs of this org change, and so does what `also` lists.
    More {
        /// The org whose CRLs change (the first, if several do).
        msp_id: String,
        /// Everything else that changes, e.g. `Org1MSP's root_certs`.
        also: Vec<String>,
    },
}

/// Compares `next` with `current` (sequence aside): does it change one
/// org's CRLs only?
pub fn classify(current: &ChannelConfig, next: &ChannelConfig) -> CrlChange {
    let crls_changed: Vec<&str> = next
        .orgs
        .iter()
        .filter(|n| {
            current
                .orgs
                .iter()
                .find(|c| c.msp.msp_id == n.msp.msp_id)
                .is_some_and(|c| c.msp.crls != n.msp.crls)
        })
        .map(|n| n.msp.msp_id.as_str())
        .collect();
    let Some(first) = crls_changed.first() else {
        return CrlChange::None;
    };
    let mut also: Vec<String> = crls_changed[1..]
        .iter()
        .map(|o| format!("{o}'s CRLs"))
        .collect();
    also.extend(other_changes(current, next));
    // Belt and braces against a field added later and not listed in
    // `other_changes`: with the CRLs and sequence put back, the update
    // must be the current configuration exactly.
    if also.is_empty() {
        let mut masked = next.clone();
        masked.sequence = current.sequence;
        for (m, c) in masked.orgs.iter_mut().zip(&current.orgs) {
            m.msp.crls = c.msp.crls.clone();
        }
        if masked != *current {
            also.push("other configuration fields".into());
        }
    }
    if also.is_empty() {
        CrlChange::Only((*first).to_owned())
    } else {
        CrlChange::More {
            msp_id: (*first).to_owned(),
            also,
        }
    }
}

/// What differs between `a` and `b` besides sequence and CRLs, in words.
fn other_changes(a: &ChannelConfig, b: &ChannelConfig) -> Vec<String> {
    let mut out = Vec::new();
    if a.channel_id != b.channel_id {
        out.push("the channel id".into());
    }
    if a.consenters != b.consenters {
        out.push("the consenters".into());
    }
    if a.batch != b.batch {
        out.push("the batch parameters".into());
    }
    if a.policies != b.policies {
        out.push("the channel policies".into());
    }
    let ids = |c: &ChannelConfig| c.orgs.iter().map(|o| o.msp.msp_id.clone()).collect();
    let (ids_a, ids_b): (Vec<String>, Vec<String>) = (ids(a), ids(b));
    if ids_a != ids_b {
        out.push("the member orgs".into());
        return out;
    }
    for (x, y) in a.orgs.iter().zip(&b.orgs) {
        out.extend(
            org_changes(x, y)
                .into_iter()
                .map(|f| format!("{}'s {f}", x.msp.msp_id)),
        );
    }
    out
}

/// The fields of one org that differ, CRLs aside.
fn org_changes(x: &OrgConfig, y: &OrgConfig) -> Vec<&'static str> {
    let (m, n) = (&x.msp, &y.msp);
    [
        ("root_certs", m.root_certs != n.root_certs),
        (
            "intermediate_certs",
            m.intermediate_certs != n.intermediate_certs,
        ),
        ("tls_root_certs", m.tls_root_certs != n.tls_root_certs),
        (
            "tls_intermediate_certs",
            m.tls_intermediate_certs != n.tls_intermediate_certs,
        ),
        ("admins", m.admins != n.admins),
        ("peer_endpoints", x.peer_endpoints != y.peer_endpoints),
        ("display_name", x.display_name != y.display_name),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(f, _)| f)
    .collect()
}

/// Checks the CRLs of a CRL-only update of org `current.msp.msp_id` (see
/// the module comment): each of `next`'s CRLs is signed by one of the org's
/// CAs, no two have the same issuer, and for every issuer with a CRL in
/// force the new one is the same list or has a greater CRL number.
///
/// Deterministic: no clock, the same answer on every orderer.
pub fn check_crls(
    channel: &ChannelConfig,
    current: &OrgConfig,
    next: &OrgConfig,
) -> Result<(), ConfigUpdateError> {
    let msp = &current.msp;
    let msp_id = &msp.msp_id;
    let refuse = |why: String| Err(ConfigUpdateError::Crl(format!("{msp_id}: {why}")));
    let cas: Vec<&String> = msp.ca_certs().collect();
    let new = verify_crls(&next.msp.crls, &cas, msp_id)
        .map_err(|e| ConfigUpdateError::Crl(format!("{msp_id}: {e}")))?;
    for (i, a) in new.iter().enumerate() {
        if new[..i].iter().any(|b| b.issuer_der == a.issuer_der) {
            return refuse(format!("two CRLs of {} in one update", a.issuer));
        }
    }
    for o in channel.orgs.iter().filter(|o| &o.msp.msp_id != msp_id) {
        let m = &o.msp;
        for pem in m.ca_certs() {
            for der in certs_from_pem(pem.as_bytes()).unwrap_or_default() {
                let same = subject_der(&der)
                    .is_some_and(|subject| new.iter().any(|n| n.issuer_der == subject));
                if same {
                    return refuse(format!(
                        "one of its CRLs names as issuer a CA name that {} also uses: nodes \
                         would apply it to {}'s certificates too and refuse them (give each \
                         org's CAs their own names)",
                        m.msp_id, m.msp_id
                    ));
                }
            }
        }
    }
    for old in in_force(&msp.crls, &cas, msp_id) {
        let Some(n) = new.iter().find(|n| n.issuer_der == old.issuer_der) else {
            return refuse(format!(
                "the update drops the CRL of {} (number {}, {} revoked): revocations cannot be \
                 withdrawn by a CRL update",
                old.issuer, old.number, old.revoked
            ));
        };
        if n.der != old.der && n.number <= old.number {
            return refuse(format!(
                "the CRL of {} has number {}, not greater than the {} in force: an older or \
                 equal list cannot replace it (nothing newer to publish, or a rollback of \
                 revocations)",
                n.issuer, n.number, old.number
            ));
        }
    }
    Ok(())
}

/// Whether `next`'s CRLs are `current`'s lists again: for every CA, the
/// same CRL number (a fresh signature of the same list). Publishing them
/// would change nothing, and [`check_crls`] would refuse it.
pub fn already_in_force(current: &OrgConfig, next: &OrgConfig) -> bool {
    let m = &current.msp;
    let cas: Vec<&String> = m.ca_certs().collect();
    let read = |crls| verify_crls(crls, &cas, &m.msp_id);
    match (read(&m.crls), read(&next.msp.crls)) {
        (Ok(old), Ok(new)) => {
            !new.is_empty()
                && old.len() == new.len()
                && new.iter().all(|n| {
                    old.iter()
                        .any(|o| o.issuer_der == n.issuer_der && o.number == n.number)
                })
        }
        _ => false,
    }
}

/// The CRLs in force that read as [`verify_crl`] reads them; one that does
/// not (put there by a full Admins-policy update) constrains nothing.
///
/// [`verify_crl`]: qcss_network::crl::verify_crl
fn in_force(crls: &[String], cas: &[&String], msp_id: &str) -> Vec<VerifiedCrl> {
    crls.iter()
        .filter_map(|pem| verify_crls(std::slice::from_ref(pem), cas, msp_id).ok())
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use qcss_network::Role;
    use qcss_network::channel::Channel;
    use qcss_network::msp::unix_now;
    use qcss_proto::common::Status;

    use super::*;
    use crate::config_update::{ConfigUpdate, sign_update, verify_update};
    use crate::fixtures::{TestOrg, channel_config};

    struct World {
        org1: TestOrg,
        org2: TestOrg,
        cfg: ChannelConfig,
        channel: Channel,
    }

    /// Two orgs (so the channel's MAJORITY needs both admins); Org1's CRL
    /// number 3 is in force.
    fn world() -> World {
        let (org1, org2) = (TestOrg::new(1), TestOrg::new(2));
        let orderer = org1.identity("orderer1", Role::Orderer);
        let mut cfg = channel_config(&[&org1, &org2], &orderer);
        cfg.orgs[0].msp.crls = vec![org1.crl(3, &[])];
        World {
            channel: Channel::new(cfg.clone()).unwrap(),
            org1,
            org2,
            cfg,
        }
    }

    impl World {
        /// The update from the configuration in force to `change`d, signed by `by`.
        fn update(
            &self,
            change: impl FnOnce(&mut ChannelConfig),
            by: &[&qcss_network::SigningIdentity],
        ) -> Result<Channel, ConfigUpdateError> {
            let mut next = self.cfg.clone();
            change(&mut next);
            let mut u = ConfigUpdate::propose(&self.cfg, next);
            for s in by {
                sign_update(&mut u, s).unwrap();
            }
            verify_update(&self.channel, &u, unix_now())
        }
    }

    #[test]
    fn one_orgs_admin_publishes_its_newer_crl() {
        let w = world();
        let admin1 = w.org1.identity("admin1", Role::Admin);
        let mallory = w.org1.identity("mallory", Role::Client);
        let crl = w.org1.crl(4, &[&mallory]);
        let next = w
            .update(|c| c.orgs[0].msp.crls = vec![crl.clone()], &[&admin1])
            .unwrap();
        let msp = next.msp("Org1MSP").unwrap();
        let der = qcss_network::identity::certs_from_pem(&mallory.cert_pem).unwrap();
        let e = msp.validate(&der[0]).unwrap_err();
        assert!(e.to_string().contains("revoked"), "{e}");
        // Not the other org's admin, nor Org1's client.
        for by in [
            w.org2.identity("admin2", Role::Admin),
            w.org1.identity("client1", Role::Client),
        ] {
            let e = w
                .update(|c| c.orgs[0].msp.crls = vec![crl.clone()], &[&by])
                .unwrap_err();
            assert!(
                matches!(e, ConfigUpdateError::NotAuthorized { .. }),
                "{}: {e}",
                by.cert.common_name
            );
            assert!(e.to_string().contains("OR('Org1MSP.admin')"), "{e}");
        }
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let w = world();
        let admin1 = w.org1.identity("admin1", Role::Admin);
        let admin2 = w.org2.identity("admin2", Role::Admin);
        let first_listed = w.org1.crl(4, &[]);
        type Case<'a> = (&'a str, Box<dyn FnOnce(&mut ChannelConfig) + 'a>, &'a str);
        let cases: Vec<Case> = vec![
            (
                "same number",
                Box::new(|c| c.orgs[0].msp.crls = vec![w.org1.crl(3, &[])]),
                "has number 3, not greater than the 3 in force",
            ),
            (
                "lower number",
                Box::new(|c| c.orgs[0].msp.crls = vec![w.org1.crl(2, &[])]),
                "has number 2, not greater than the 3 in force",
            ),
            (
                "another org's CA",
                Box::new(|c| c.orgs[0].msp.crls = vec![w.org2.crl(9, &[])]),
                "is not signed by any of Org1MSP's CAs",
            ),
            (
                "CRL dropped",
                Box::new(|c| c.orgs[0].msp.crls.clear()),
                "drops the CRL of",
            ),
            (
                "two lists of one CA",
                Box::new(|c| c.orgs[0].msp.crls = vec![w.org1.crl(5, &[]), w.org1.crl(6, &[])]),
                "two CRLs of",
            ),
            (
                "not a CRL",
                Box::new(|c| c.orgs[0].msp.crls = vec!["junk".into()]),
                "not a readable CRL",
            ),
        ];
        for (what, change, needle) in cases {
            let e = w.update(change, &[&admin1]).expect_err(what);
            assert!(matches!(e, ConfigUpdateError::Crl(_)), "{what}: {e}");
            assert!(e.to_string().contains(needle), "{what}: {e}");
            assert!(e.to_string().contains("Org1MSP"), "{what}: {e}");
            assert_eq!(e.status(), Status::BadRequest, "{what}");
        }
        let (org, mut again) = (&w.cfg.orgs[0], w.cfg.orgs[0].clone());
        again.msp.crls = vec![w.org1.crl(3, &[])];
        assert!(
            already_in_force(org, &again),
            "a fresh signature of number 3"
        );
        again.msp.crls = vec![w.org1.crl(4, &[])];
        assert!(!already_in_force(org, &again));
        // The checks hold even when the channel's Admins policy is met.
        let e = w
            .update(
                |c| c.orgs[0].msp.crls = vec![w.org1.crl(2, &[])],
                &[&admin1, &admin2],
            )
            .unwrap_err();
        assert!(matches!(e, ConfigUpdateError::Crl(_)), "{e}");
        // A CRL listed for the first time has nothing to be newer than.
        w.update(
            |c| c.orgs[1].msp.crls = vec![w.org2.crl(0, &[])],
            &[&admin2],
        )
        .unwrap();
        w.update(|c| c.orgs[0].msp.crls = vec![first_listed], &[&admin1])
            .unwrap();
    }

    #[test]
    fn a_crl_named_like_another_orgs_ca_is_refused() {
        // Two orgs whose CAs share a name: Org2's nodes would match Org1's
        // list to their own certificates.
        let org1 = TestOrg::with_ca_name(1, "ca.shared");
        let org2 = TestOrg::with_ca_name(2, "ca.shared");
        let orderer = org1.identity("orderer1", Role::Orderer);
        let cfg = channel_config(&[&org1, &org2], &orderer);
        let channel = Channel::new(cfg.clone()).unwrap();
        let mut next = cfg.clone();
        next.orgs[0].msp.crls = vec![org1.crl(1, &[])];
        let mut u = ConfigUpdate::propose(&cfg, next);
        sign_update(&mut u, &org1.identity("admin1", Role::Admin)).unwrap();
        let e = verify_update(&channel, &u, unix_now()).unwrap_err();
        assert!(matches!(e, ConfigUpdateError::Crl(_)), "{e}");
        assert!(e.to_string().contains("Org2MSP also uses"), "{e}");
    }

    #[test]
    fn an_update_that_changes_more_than_the_crls_needs_the_channel_admins() {
        let w = world();
        let admin1 = w.org1.identity("admin1", Role::Admin);
        let admin2 = w.org2.identity("admin2", Role::Admin);
        let crl = w.org1.crl(4, &[]);
        let other_root = TestOrg::new(9).org_config().msp.root_certs;
        type Case<'a> = (Box<dyn Fn(&mut ChannelConfig) + 'a>, &'a str);
        let cases: Vec<Case> = vec![
            (
                Box::new(|c| c.orgs[0].msp.root_certs.extend(other_root.clone())),
                "Org1MSP's root_certs",
            ),
            (
                Box::new(|c| c.orgs[0].peer_endpoints.push("127.0.0.1:9".into())),
                "Org1MSP's peer_endpoints",
            ),
            (
                Box::new(|c| c.orgs[1].msp.crls = vec![w.org2.crl(1, &[])]),
                "Org2MSP's CRLs",
            ),
            (
                Box::new(|c| c.batch.batch_timeout_ms = 7),
                "the batch parameters",
            ),
            (
                Box::new(|c| c.policies.admins = "ANY Admins".into()),
                "the channel policies",
            ),
        ];
        for (change, needle) in &cases {
            let with_crl = |c: &mut ChannelConfig| {
                c.orgs[0].msp.crls = vec![crl.clone()];
                change(c);
            };
            let e = w.update(with_crl, &[&admin1]).unwrap_err();
            assert!(
                matches!(e, ConfigUpdateError::NotOnlyCrls { .. }),
                "{needle}: {e}"
            );
            assert!(e.to_string().contains(needle), "{e}");
            assert!(
                e.to_string()
                    .contains("may change nothing but Org1MSP's CRLs"),
                "{e}"
            );
            assert_eq!(e.status(), Status::Forbidden);
        }
        // With the channel's Admins policy met, such an update is a plain one.
        let (change, _) = &cases[3];
        w.update(
            |c| {
                c.orgs[0].msp.crls = vec![crl.clone()];
                change(c);
            },
            &[&admin1, &admin2],
        )
        .unwrap();
        assert_eq!(classify(&w.cfg, &w.cfg), CrlChange::None);
    }
}
