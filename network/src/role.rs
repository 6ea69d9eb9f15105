//! The role an identity plays in its organisation, read from the certificate's OU
//! (Fabric's "node OUs").

use std::fmt;
use std::str::FromStr;

/// The role an identity plays in its organisation.
///
/// Carried in the certificate subject as an organizational unit (`OU=admin`,
/// `OU=peer`, ...), as Fabric's node OUs do. Policies name roles in principals
/// such as `'Org1.peer'`; the pseudo-role `member` in a principal matches any role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Administers the org: signs config updates, approves chaincode, registers identities.
    Admin,
    /// Runs a peer: endorses and commits.
    Peer,
    /// Runs an orderer (consenter).
    Orderer,
    /// Submits transactions and queries.
    Client,
}

impl Role {
    /// All roles, in a fixed order.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Peer, Role::Orderer, Role::Client];

    /// The OU string used in certificates and policy principals.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Peer => "peer",
            Role::Orderer => "orderer",
            Role::Client => "client",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `admin`, `peer`, `orderer`, `client`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected admin, peer, orderer or client)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "peer" => Ok(Role::Peer),
            "orderer" => Ok(Role::Orderer),
            "client" => Ok(Role::Client),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}
