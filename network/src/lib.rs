//! Shared identity, MSP, policy and mTLS code (being written).
