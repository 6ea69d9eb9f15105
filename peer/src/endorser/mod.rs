//! The endorser (being written): simulates proposals with wasm chaincode and signs the results.
