//! Test fixtures: orgs with their own root CA (made with `certgen`),
//! identities in any role, and channel configurations over them.

use std::collections::BTreeMap;

use qcss_network::certgen::{CertAuthority, SigningProfile, random_serial, rcgen_key};
use qcss_network::channel::{ChannelConfig, ChannelPolicies, Consenter, OrgConfig};
use qcss_network::msp::MspConfig;
use qcss_network::signing::SigningKey;
use qcss_network::{MspId, Role, SigningIdentity};

/// The channel of the fixtures.
pub(crate) const CHANNEL: &str = "unit";

/// An org and its root CA.
pub(crate) struct TestOrg {
    /// `OrgNMSP`.
    pub msp_id: String,
    ca: CertAuthority,
}

impl TestOrg {
    /// Org number `n`.
    pub(crate) fn new(n: u32) -> Self {
        TestOrg {
            msp_id: format!("Org{n}MSP"),
            ca: CertAuthority::new_root(&format!("ca.org{n}"), &format!("Org{n}"), 365).unwrap(),
        }
    }

    /// Org number `n` whose CA is named `ca_name` (CN and O).
    pub(crate) fn with_ca_name(n: u32, ca_name: &str) -> Self {
        TestOrg {
            msp_id: format!("Org{n}MSP"),
            ca: CertAuthority::new_root(ca_name, ca_name, 365).unwrap(),
        }
    }

    /// A fresh identity of this org in `role`.
    pub(crate) fn identity(&self, name: &str, role: Role) -> SigningIdentity {
        let key = SigningKey::generate().unwrap();
        let profile = SigningProfile {
            name: name.into(),
            org: self.msp_id.clone(),
            role,
            attributes: BTreeMap::new(),
        };
        let pem = self
            .ca
            .issue_signing(
                &profile,
                &rcgen_key(&key).unwrap(),
                &random_serial().unwrap(),
                30,
            )
            .unwrap();
        SigningIdentity::new(MspId(self.msp_id.clone()), pem.into_bytes(), key).unwrap()
    }

    /// A CRL of this org's CA numbered `number` that revokes `revoked`.
    pub(crate) fn crl(&self, number: u64, revoked: &[&SigningIdentity]) -> String {
        let list: Vec<(Vec<u8>, i64, u8)> = revoked
            .iter()
            .map(|i| (hex::decode(&i.cert.serial_hex).unwrap(), 1_700_000_000, 1))
            .collect();
        self.ca.crl(number, &list, 7).unwrap()
    }

    /// Its entry in a channel configuration.
    pub(crate) fn org_config(&self) -> OrgConfig {
        OrgConfig {
            msp: MspConfig {
                msp_id: self.msp_id.clone(),
                root_certs: vec![self.ca.cert_pem().to_string()],
                ..Default::default()
            },
            peer_endpoints: vec![],
            display_name: None,
            file_key: None,
        }
    }
}

/// A channel of `orgs` with one consenter, `orderer` (of the first org).
pub(crate) fn channel_config(orgs: &[&TestOrg], orderer: &SigningIdentity) -> ChannelConfig {
    let pem = String::from_utf8(orderer.cert_pem.clone()).unwrap();
    ChannelConfig {
        channel_id: CHANNEL.into(),
        sequence: 0,
        orgs: orgs.iter().map(|o| o.org_config()).collect(),
        consenters: vec![Consenter {
            id: 1,
            address: "127.0.0.1:7050".into(),
            msp_id: orgs[0].msp_id.clone(),
            tls_cert_pem: pem.clone(),
            identity_cert_pem: pem,
        }],
        batch: Default::default(),
        policies: ChannelPolicies::default(),
    }
}
