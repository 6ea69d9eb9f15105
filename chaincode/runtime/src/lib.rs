//! The chaincode runtime (being written).
