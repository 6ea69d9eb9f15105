//! The QCSS peer (not built yet; see issue "Peer").
//!
//! Will hold: the ledger (block store, versioned state, history and tx index in
//! sled), the endorser that runs wasm chaincode, the validator and committer,
//! and Fabric's `Gateway` and `Deliver` services.
