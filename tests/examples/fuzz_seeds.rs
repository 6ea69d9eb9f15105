//! Writes the seed corpus: real encodings made with the crates' own
//! encoders (what a node receives from an honest sender), one folder per
//! target, so fuzzing starts from deep inside each format.
//!
//! `cargo run -p qcss-tests --example fuzz_seeds -- fuzz/seeds` (fuzz/README.md)

use std::path::Path;

use prost::Message as _;
use qcss_dpos::address::Keypair;
use qcss_dpos::block::Block;
use qcss_dpos::hash::Hash32;
use qcss_dpos::runner::Wire;
use qcss_dpos::tx::{Tx, TxKind};
use qcss_iot::params::{ChannelParams, Measure, PublicKey, Schema};
use qcss_iot::reading::Reading;
use qcss_iot::state::{Signature, State};
use qcss_iot::wire::Message;
use qcss_mdss::manifest::Manifest;
use qcss_mdss::{ChunkHash, MediaType};
use qcss_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader};
use qcss_proto::msp::SerializedIdentity;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("seed folder");
    std::fs::write(d.join(name), bytes).expect("seed file");
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds DIR");
    let dir = Path::new(&dir);

    // A Fabric transaction envelope, every layer filled in.
    let creator = SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
            .to_vec(),
    }
    .encode_to_vec();
    let ch = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 0,
        timestamp: Some(prost_types_ts()),
        channel_id: "qcss".into(),
        tx_id: "ab".repeat(32),
        epoch: 0,
        extension: vec![1, 2, 3],
        tls_cert_hash: vec![],
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: SignatureHeader {
                creator,
                nonce: vec![9; 24],
            }
            .encode_to_vec(),
        }),
        data: b"transaction".to_vec(),
    };
    let env = Envelope {
        payload: payload.encode_to_vec(),
        signature: vec![0x30; 70],
    };
    write(dir, "envelope", "transaction", &env.encode_to_vec());

    for (i, p) in [
        "OR('Org1MSP.peer', 'Org2MSP.peer')",
        "AND('Org1MSP.member', OutOf(2, 'Org2MSP.admin', 'Org3MSP.client', 'Org4MSP.peer'))",
        "MAJORITY Endorsement",
        "ANY Readers",
    ]
    .iter()
    .enumerate()
    {
        write(dir, "policy", &format!("p{i}"), p.as_bytes());
    }

    // A transfer, a vote and a block carrying both, alone and as link frames.
    let key = Keypair::from_secret([7; 32]);
    let chain_id = Hash32([3; 32]);
    let tx = |nonce, kind| {
        Tx {
            chain_id,
            sender: key.address(),
            nonce,
            fee: 1_000,
            expiry_slot: 99,
            kind,
        }
        .sign(&key)
    };
    let t1 = tx(
        0,
        TxKind::Transfer {
            to: Keypair::from_secret([8; 32]).address(),
            amount: 5,
        },
    );
    let t2 = tx(
        1,
        TxKind::Vote {
            producers: vec![key.address()],
        },
    );
    let block = Block::build(
        &key,
        chain_id,
        7,
        9,
        Hash32([1; 32]),
        1,
        Hash32([2; 32]),
        vec![t1.clone(), t2],
    );
    write(dir, "chain_wire", "tx", &t1.encode());
    write(dir, "chain_wire", "block", &block.encode());
    write(
        dir,
        "chain_wire",
        "wire_tx",
        &qcss_dpos::codec::encode(&Wire::Tx(t1)),
    );
    write(
        dir,
        "chain_wire",
        "wire_block",
        &qcss_dpos::codec::encode(&Wire::Block(block)),
    );
    write(
        dir,
        "chain_wire",
        "wire_sync",
        &qcss_dpos::codec::encode(&Wire::SyncRequest(12)),
    );

    let manifest = Manifest {
        size: 300_000,
        chunk_size: 262_144,
        media_type: MediaType::new("application/pdf").expect("media type"),
        encryption: None,
        chunks: vec![ChunkHash::of(b"one"), ChunkHash::of(b"two")],
    };
    write(dir, "mdss_manifest", "pdf", &manifest.encode());

    let params = ChannelParams {
        ledger: "qcss".into(),
        device: "FactoryMSP/uht-1".into(),
        device_key: PublicKey([4; 32]),
        gateway: format!("FactoryMSP:{}", "cd".repeat(32)),
        gateway_key: PublicKey([5; 32]),
        batch: "06901234560022/LJ1".into(),
        schema: Schema(vec![Measure {
            kind: "gs1:Temperature".into(),
            unit: "CEL".into(),
            min: Some(2.0),
            max: Some(8.0),
        }]),
        challenge_secs: 3600,
        nonce: 1,
    };
    let reading = Reading {
        seq: 0,
        time: 1_764_000_000,
        values: vec![4.5],
    };
    let state = State {
        channel: params.id(),
        seq: 1,
        count: 1,
        root: qcss_anchor::Hash32([9; 32]),
        last_time: 1_764_000_000,
        min: vec![4.5],
        max: vec![4.5],
        is_final: false,
    };
    write(dir, "iot_wire", "params", &params.encode());
    write(dir, "iot_wire", "reading", &reading.encode());
    write(dir, "iot_wire", "state", &state.encode());
    let update = Message::Update {
        state,
        device_sig: Signature([6; 64]),
        readings: vec![reading],
    }
    .frame();
    // Message::decode takes a frame's body, without its 4-byte length.
    write(dir, "iot_wire", "update", &update[4..]);
    let ack = Message::Ack {
        seq: 1,
        gateway_sig: Signature([7; 64]),
    }
    .frame();
    write(dir, "iot_wire", "ack", &ack[4..]);

    let (batch_key, _) = qcss_chaincode::unit_code::BatchKey::generate().expect("batch key");
    let codes = qcss_chaincode::unit_code::issue_codes(
        &batch_key,
        "https://q.example.com",
        "06901234560022",
        "LJ2026A",
        1..=2,
    )
    .expect("codes");
    for (i, c) in codes.iter().enumerate() {
        write(dir, "unit_code", &format!("code{i}"), c.as_bytes());
    }
    // A package around the smallest valid wasm module (magic and version).
    let pkg = qcss_chaincode::package::ChaincodePackage::new(
        "traceability",
        "1.0",
        "OR('Org1MSP.peer', 'Org2MSP.peer')",
        b"\0asm\x01\0\0\0".to_vec(),
    )
    .expect("package");
    write(dir, "chaincode_package", "package", &pkg.to_bytes());

    // Enrollment requests with a real CSR, for a signing and a TLS certificate.
    let key = qcss_network::signing::SigningKey::generate().expect("key");
    let csr = qcss_ca::client::make_csr(&key, "admin").expect("csr");
    for (name, profile, hosts) in [
        ("sign", "", vec![]),
        (
            "tls",
            "tls",
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        ),
    ] {
        let req = qcss_proto::qcss::ca::EnrollRequest {
            name: "admin".into(),
            secret: "secret".into(),
            csr_pem: csr.clone(),
            profile: profile.into(),
            hosts,
        };
        write(dir, "ca_enroll", name, &req.encode_to_vec());
    }
}

fn prost_types_ts() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_764_000_000,
        nanos: 0,
    }
}
