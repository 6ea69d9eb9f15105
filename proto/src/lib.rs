//! Protobuf types and gRPC stubs of QCSS.
//!
//! Two families live here, both generated at build time from `proto/` by
//! protox + prost + tonic (see `build.rs`):
//! - Fabric's client-facing surface ([`common`], [`msp`], [`protos`] a.k.a.
//!   [`peer`], [`rwset`], [`kvrwset`], [`orderer`], [`gateway`]), with Fabric's
//!   package names and field numbers, so bytes and gRPC paths match Fabric 2.4+;
//! - QCSS's own services under [`qcss`] (e.g. `qcss::ca`), which Fabric does not have.
//!
//! These prost structs are wire types: use them at the edges (gRPC handlers,
//! block and envelope codecs) and convert to the crates' own domain types
//! inside. [`hash`] holds the block-header hash and the Merkle tree over a
//! block's envelopes. Start with `proto/README.md`, then `fabric/common/common.proto`.

pub mod codec;
pub mod hash;

/// Fabric package `common`: envelopes, headers, blocks, policies, MSP principals.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod common {
    tonic::include_proto!("common");
}

/// Fabric package `msp`: `SerializedIdentity`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod msp {
    tonic::include_proto!("msp");
}

/// Fabric package `protos` (the peer): proposals, responses, transactions,
/// chaincode specs and events, and the peer `Deliver` service.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod protos {
    tonic::include_proto!("protos");
}

/// Alias of [`protos`], Fabric's peer package under its directory name.
pub use protos as peer;

/// Fabric package `rwset`: transaction read-write sets per namespace.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod rwset {
    tonic::include_proto!("rwset");
}

/// Fabric package `kvrwset`: key-value reads, writes and versions.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod kvrwset {
    tonic::include_proto!("kvrwset");
}

/// Fabric package `orderer`: `SeekInfo` and the `AtomicBroadcast` service.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod orderer {
    tonic::include_proto!("orderer");
}

/// Fabric package `gateway`: the `Gateway` service of Fabric's client SDKs.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod gateway {
    tonic::include_proto!("gateway");
}

/// QCSS's own packages (`qcss.*`), not part of Fabric: one submodule per
/// package found under `proto/qcss/` at build time (e.g. `qcss::ca`).
pub mod qcss {
    include!(concat!(env!("OUT_DIR"), "/qcss_modules.rs"));
}
