//! The orderer's error type.

/// Why the orderer could not start or a storage operation failed.
/// (A refused envelope is not an error: it is a Broadcast status.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrdererError {
    /// The configuration or genesis block is unusable.
    #[error("orderer config: {0}")]
    Config(String),
    /// The store failed or holds something unreadable.
    #[error("orderer store: {0}")]
    Store(String),
    /// Raft failed.
    #[error("raft: {0}")]
    Raft(String),
    /// Network setup failed (TLS, listening).
    #[error("orderer network: {0}")]
    Network(String),
}

impl From<sled::Error> for OrdererError {
    fn from(e: sled::Error) -> Self {
        OrdererError::Store(e.to_string())
    }
}
