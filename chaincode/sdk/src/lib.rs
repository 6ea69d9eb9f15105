//! The chaincode SDK (being written).
