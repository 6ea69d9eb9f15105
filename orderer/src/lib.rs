//! The QCSS ordering service (not built yet; see issue "Raft ordering service").
//!
//! Will hold: the openraft log store and state machine over sled, block cutting
//! (MaxMessageCount, PreferredMaxBytes, AbsoluteMaxBytes, BatchTimeout), and
//! Fabric's `AtomicBroadcast` service (`Broadcast` and `Deliver`).
