//! The validator's rules for writes to the `_lifecycle` namespace, as
//! [`KeyRule`]s (see [`crate::validator::PolicyProvider::key_rule`]). They
//! hold whichever chaincode a transaction claims to invoke, so a dishonest
//! peer cannot forge another org's approval or commit a definition alone:
//!
//! | write | needs |
//! |---|---|
//! | `approvals/{name}/{seq}/{X}` = a canonical definition of `name` at `seq`, X a channel org | an endorsement by a peer of X, and a creator who is an admin of X |
//! | `definitions/{name}` = a canonical definition of `name` | endorsements satisfying the channel's lifecycle policy (`policies.lifecycle`, default `MAJORITY Endorsement`: peers of a majority of orgs) |
//! | a delete, a metadata (key-level policy) write, any other key or value | forbidden (`INVALID_WRITESET`) |
//!
//! The namespace itself has the policy [`LIFECYCLE_NAMESPACE_POLICY`] (any
//! one valid peer of a channel org), so read-only lifecycle transactions
//! (queries submitted anyway) are valid when endorsed by any peer.
//!
//! What the validator cannot see, the endorsers check: a commit endorsed by
//! a peer only if that peer's org approved the definition and the approving
//! orgs satisfy the lifecycle policy; an approval only for sequence =
//! committed + 1 (MVCC on `definitions/{name}` keeps that true at commit).

use qcss_network::channel::Channel;
use qcss_network::policy::Policy;

use crate::lifecycle::definition::{Definition, LifecycleKey};
use crate::validator::{KeyRule, KeyWrite};

/// The endorsement policy of the `_lifecycle` namespace itself.
pub const LIFECYCLE_NAMESPACE_POLICY: &str = "ANY Endorsement";

/// The rule for writing `key` of `_lifecycle` on `channel`.
pub fn key_rule(channel: &Channel, key: &str, write: KeyWrite<'_>) -> KeyRule {
    let forbid = |why: &str| KeyRule::Forbidden(why.to_owned());
    let value = match write {
        KeyWrite::Put(v) => v,
        KeyWrite::Delete => return forbid("_lifecycle keys are never deleted"),
        KeyWrite::Metadata => return forbid("_lifecycle keys carry no key-level policy"),
    };
    let Some(parsed) = LifecycleKey::parse(key) else {
        return forbid(
            "not a _lifecycle key (definitions/{name} or approvals/{name}/{sequence}/{msp_id})",
        );
    };
    let definition = match Definition::from_bytes(value) {
        Ok(d) if d.is_canonical() => d,
        Ok(_) => return forbid("the definition is not in canonical form"),
        Err(e) => return KeyRule::Forbidden(e.to_string()),
    };
    match parsed {
        LifecycleKey::Definition { name } => {
            if definition.name != name {
                return forbid("the definition's name is not the key's");
            }
            match Policy::parse(&channel.config().policies.lifecycle) {
                Ok(endorsement) => KeyRule::Require {
                    endorsement,
                    creator: None,
                },
                // The channel parsed it when it was built; fail closed anyway.
                Err(e) => KeyRule::Forbidden(format!("the channel's lifecycle policy: {e}")),
            }
        }
        LifecycleKey::Approval {
            name,
            sequence,
            msp_id,
        } => {
            if definition.name != name || definition.sequence != sequence {
                return forbid("the approved definition's name or sequence is not the key's");
            }
            if channel.msp(msp_id).is_none() {
                return forbid("the approving org is not a member of the channel");
            }
            match (
                Policy::parse(&format!("OR('{msp_id}.peer')")),
                Policy::parse(&format!("OR('{msp_id}.admin')")),
            ) {
                (Ok(endorsement), Ok(creator)) => KeyRule::Require {
                    endorsement,
                    creator: Some(creator),
                },
                _ => forbid("the approving org's MSP id cannot be named in a policy"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use qcss_chaincode::CodeHash;

    use super::*;
    use crate::lifecycle::definition::{approval_key, definition_key};
    use crate::validator::fixture::Network;

    fn def(name: &str, sequence: u64) -> Definition {
        Definition {
            name: name.into(),
            version: "1".into(),
            sequence,
            code_hash: CodeHash::of(b"x"),
            endorsement_policy: String::new(),
        }
        .canonical("MAJORITY Endorsement")
        .unwrap()
    }

    fn policy(s: &str) -> Policy {
        Policy::parse(s).unwrap()
    }

    #[test]
    fn each_write_gets_its_rule() {
        let net = Network::new("rules", &["Org1MSP", "Org2MSP"]).unwrap();
        let ch = net.channel().unwrap();
        let put = |key: &str, d: &Definition| key_rule(&ch, key, KeyWrite::Put(&d.to_bytes()));
        assert_eq!(
            put(&definition_key("cc"), &def("cc", 3)),
            KeyRule::Require {
                endorsement: policy("MAJORITY Endorsement"),
                creator: None
            }
        );
        assert_eq!(
            put(&approval_key("cc", 2, "Org2MSP"), &def("cc", 2)),
            KeyRule::Require {
                endorsement: policy("OR('Org2MSP.peer')"),
                creator: Some(policy("OR('Org2MSP.admin')"))
            }
        );
        let forbidden = |r: KeyRule| matches!(r, KeyRule::Forbidden(_));
        assert!(forbidden(put(&definition_key("cc"), &def("other", 1))));
        assert!(forbidden(put(
            &approval_key("cc", 2, "Org2MSP"),
            &def("cc", 1)
        )));
        assert!(forbidden(put(
            &approval_key("cc", 1, "Org9MSP"),
            &def("cc", 1)
        )));
        assert!(forbidden(put("junk", &def("cc", 1))));
        let mut raw = def("cc", 1);
        raw.endorsement_policy = "or('Org1MSP.peer')".into();
        assert!(forbidden(put(&definition_key("cc"), &raw)));
        assert!(forbidden(key_rule(
            &ch,
            &definition_key("cc"),
            KeyWrite::Put(b"garbage")
        )));
        assert!(forbidden(key_rule(
            &ch,
            &definition_key("cc"),
            KeyWrite::Delete
        )));
        assert!(forbidden(key_rule(
            &ch,
            &definition_key("cc"),
            KeyWrite::Metadata
        )));
    }
}
