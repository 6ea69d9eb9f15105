//! Fabric wire compatibility of the generated code.
//!
//! (a) gRPC paths: every generated client is plugged, through a recorder that
//! notes the request path, into the matching generated server with a stub
//! implementation. The test checks the literal path the client sent
//! (`/<package>.<Service>/<Method>`, as Fabric's SDKs send it) and that the
//! server routed that path to the right trait method (a wrong package or
//! service name would give a different path, and the server would answer
//! `Unimplemented`).
//!
//! (b) golden bytes: messages encoded by prost are compared with bytes
//! derived by hand from the protobuf wire format and Fabric's field numbers,
//! and decoded back.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use prost::Message;
use tonic::body::Body;
use tonic::codegen::{Service, http, tokio_stream};
use tonic::server::NamedService;
use tonic::{Code, Request, Response, Status, Streaming};

use qcss_proto::common::{self, Envelope};
use qcss_proto::gateway::{self, gateway_client::GatewayClient, gateway_server};
use qcss_proto::kvrwset::{
    KvMetadataEntry, KvMetadataWrite, KvRead, KvWrite, KvrwSet, QueryReads, RangeQueryInfo,
    Version, range_query_info,
};
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::orderer::{
    self, SeekInfo, SeekNewest, SeekNextCommit, SeekOldest, SeekPosition, SeekSpecified,
    atomic_broadcast_client::AtomicBroadcastClient, atomic_broadcast_server, seek_info,
    seek_position,
};
use qcss_proto::peer::{self, deliver_client::DeliverClient, deliver_server};

// ---------------------------------------------------------------------------
// (a) gRPC paths
// ---------------------------------------------------------------------------

type Paths = Arc<Mutex<Vec<String>>>;

/// Tower service that records each request's path, then forwards it.
#[derive(Clone)]
struct Recorder<S> {
    inner: S,
    paths: Paths,
}

impl<S> Service<http::Request<Body>> for Recorder<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        self.paths.lock().unwrap().push(req.uri().path().to_owned());
        self.inner.call(req)
    }
}

fn recorder<S>(inner: S) -> (Recorder<S>, Paths) {
    let paths = Paths::default();
    (
        Recorder {
            inner,
            paths: paths.clone(),
        },
        paths,
    )
}

/// Every stub method fails with `Aborted` and names itself in the message.
fn hit(method: &str) -> Status {
    Status::aborted(method)
}

/// Checks that the call went out on `path` and reached the stub's `method`.
fn assert_routed<T: std::fmt::Debug>(
    result: Result<T, Status>,
    paths: &Paths,
    path: &str,
    method: &str,
) {
    assert_eq!(
        paths.lock().unwrap().last().map(String::as_str),
        Some(path),
        "client request path"
    );
    let status = result.expect_err("stub always fails");
    assert_eq!(status.code(), Code::Aborted, "{path}: {status:?}");
    assert_eq!(
        status.message(),
        method,
        "{path} routed to the wrong method"
    );
}

struct GatewayStub;

#[tonic::async_trait]
impl gateway_server::Gateway for GatewayStub {
    async fn endorse(
        &self,
        _: Request<gateway::EndorseRequest>,
    ) -> Result<Response<gateway::EndorseResponse>, Status> {
        Err(hit("endorse"))
    }
    async fn submit(
        &self,
        _: Request<gateway::SubmitRequest>,
    ) -> Result<Response<gateway::SubmitResponse>, Status> {
        Err(hit("submit"))
    }
    async fn commit_status(
        &self,
        _: Request<gateway::SignedCommitStatusRequest>,
    ) -> Result<Response<gateway::CommitStatusResponse>, Status> {
        Err(hit("commit_status"))
    }
    async fn evaluate(
        &self,
        _: Request<gateway::EvaluateRequest>,
    ) -> Result<Response<gateway::EvaluateResponse>, Status> {
        Err(hit("evaluate"))
    }
    type ChaincodeEventsStream =
        tokio_stream::Empty<Result<gateway::ChaincodeEventsResponse, Status>>;
    async fn chaincode_events(
        &self,
        _: Request<gateway::SignedChaincodeEventsRequest>,
    ) -> Result<Response<Self::ChaincodeEventsStream>, Status> {
        Err(hit("chaincode_events"))
    }
}

struct PeerDeliverStub;

#[tonic::async_trait]
impl deliver_server::Deliver for PeerDeliverStub {
    type DeliverStream = tokio_stream::Empty<Result<peer::DeliverResponse, Status>>;
    async fn deliver(
        &self,
        _: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        Err(hit("deliver"))
    }
    type DeliverFilteredStream = tokio_stream::Empty<Result<peer::DeliverResponse, Status>>;
    async fn deliver_filtered(
        &self,
        _: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverFilteredStream>, Status> {
        Err(hit("deliver_filtered"))
    }
    type DeliverWithPrivateDataStream = tokio_stream::Empty<Result<peer::DeliverResponse, Status>>;
    async fn deliver_with_private_data(
        &self,
        _: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverWithPrivateDataStream>, Status> {
        Err(hit("deliver_with_private_data"))
    }
}

struct OrdererStub;

#[tonic::async_trait]
impl atomic_broadcast_server::AtomicBroadcast for OrdererStub {
    type BroadcastStream = tokio_stream::Empty<Result<orderer::BroadcastResponse, Status>>;
    async fn broadcast(
        &self,
        _: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        Err(hit("broadcast"))
    }
    type DeliverStream = tokio_stream::Empty<Result<orderer::DeliverResponse, Status>>;
    async fn deliver(
        &self,
        _: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        Err(hit("deliver"))
    }
}

fn origin() -> http::Uri {
    http::Uri::from_static("http://fabric.test")
}

fn envelopes() -> impl tokio_stream::Stream<Item = Envelope> {
    tokio_stream::iter(vec![Envelope::default()])
}

#[test]
fn service_names_are_fabrics() {
    assert_eq!(
        <gateway_server::GatewayServer<GatewayStub> as NamedService>::NAME,
        "gateway.Gateway"
    );
    assert_eq!(
        <deliver_server::DeliverServer<PeerDeliverStub> as NamedService>::NAME,
        "protos.Deliver"
    );
    assert_eq!(
        <atomic_broadcast_server::AtomicBroadcastServer<OrdererStub> as NamedService>::NAME,
        "orderer.AtomicBroadcast"
    );
    assert_eq!(
        <qcss_proto::protos::endorser_server::EndorserServer<EndorserStub> as NamedService>::NAME,
        "protos.Endorser"
    );
}

struct EndorserStub;

#[tonic::async_trait]
impl qcss_proto::protos::endorser_server::Endorser for EndorserStub {
    async fn process_proposal(
        &self,
        _: tonic::Request<qcss_proto::protos::SignedProposal>,
    ) -> Result<tonic::Response<qcss_proto::protos::ProposalResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stub"))
    }
}

#[tokio::test]
async fn gateway_paths() {
    let (svc, paths) = recorder(gateway_server::GatewayServer::new(GatewayStub));
    let mut client = GatewayClient::with_origin(svc, origin());

    let r = client.endorse(gateway::EndorseRequest::default()).await;
    assert_routed(r, &paths, "/gateway.Gateway/Endorse", "endorse");
    let r = client.submit(gateway::SubmitRequest::default()).await;
    assert_routed(r, &paths, "/gateway.Gateway/Submit", "submit");
    let r = client
        .commit_status(gateway::SignedCommitStatusRequest::default())
        .await;
    assert_routed(r, &paths, "/gateway.Gateway/CommitStatus", "commit_status");
    let r = client.evaluate(gateway::EvaluateRequest::default()).await;
    assert_routed(r, &paths, "/gateway.Gateway/Evaluate", "evaluate");
    let r = client
        .chaincode_events(gateway::SignedChaincodeEventsRequest::default())
        .await;
    assert_routed(
        r,
        &paths,
        "/gateway.Gateway/ChaincodeEvents",
        "chaincode_events",
    );
}

#[tokio::test]
async fn peer_deliver_paths() {
    let (svc, paths) = recorder(deliver_server::DeliverServer::new(PeerDeliverStub));
    let mut client = DeliverClient::with_origin(svc, origin());

    let r = client.deliver(envelopes()).await;
    assert_routed(r, &paths, "/protos.Deliver/Deliver", "deliver");
    let r = client.deliver_filtered(envelopes()).await;
    assert_routed(
        r,
        &paths,
        "/protos.Deliver/DeliverFiltered",
        "deliver_filtered",
    );
    let r = client.deliver_with_private_data(envelopes()).await;
    assert_routed(
        r,
        &paths,
        "/protos.Deliver/DeliverWithPrivateData",
        "deliver_with_private_data",
    );
}

#[tokio::test]
async fn orderer_paths() {
    let (svc, paths) = recorder(atomic_broadcast_server::AtomicBroadcastServer::new(
        OrdererStub,
    ));
    let mut client = AtomicBroadcastClient::with_origin(svc, origin());

    let r = client.broadcast(envelopes()).await;
    assert_routed(r, &paths, "/orderer.AtomicBroadcast/Broadcast", "broadcast");
    let r = client.deliver(envelopes()).await;
    assert_routed(r, &paths, "/orderer.AtomicBroadcast/Deliver", "deliver");
}

#[tokio::test]
async fn unknown_path_is_unimplemented() {
    // The control for the tests above: a path with another package name is
    // not routed.
    let mut server = gateway_server::GatewayServer::new(GatewayStub);
    let req = http::Request::builder()
        .uri("http://fabric.test/protos.Gateway/Endorse")
        .header("content-type", "application/grpc")
        .body(Body::empty())
        .unwrap();
    let resp = server.call(req).await.unwrap();
    assert_eq!(
        resp.headers().get("grpc-status").unwrap(),
        &(Code::Unimplemented as i32).to_string()
    );
}

// ---------------------------------------------------------------------------
// (b) golden bytes
// ---------------------------------------------------------------------------
//
// Wire format reminder: a field starts with the varint key
// (field_number << 3) | wire_type, wire type 0 = varint, 2 = length-delimited
// (then a varint length and the bytes). proto3 omits fields holding their
// default value (0, false, empty). Keys used below:
//   field 1: varint 08, len 0a    field 2: varint 10, len 12
//   field 3: varint 18, len 1a    field 4: varint 20, len 22
//   field 5: varint 28, len 2a    field 6: varint 30, len 32
//   field 7: varint 38, len 3a    field 8: varint 40, len 42

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn assert_golden<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M, hex: &str) {
    let expected = unhex(hex);
    assert_eq!(msg.encode_to_vec(), expected, "encoding of {msg:?}");
    assert_eq!(&M::decode(expected.as_slice()).unwrap(), msg, "decoding");
}

#[test]
fn golden_serialized_identity() {
    // msp.SerializedIdentity { mspid = 1 (string), id_bytes = 2 (bytes) }
    //   0a 07 "Org1MSP"  = 4f 72 67 31 4d 53 50
    //   12 04 "cert"     = 63 65 72 74
    let id = SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: b"cert".to_vec(),
    };
    assert_golden(&id, "0a07 4f7267314d5350  1204 63657274");
}

#[test]
fn golden_channel_header_with_timestamp() {
    // common.ChannelHeader: type = 1, version = 2 (0, omitted), timestamp = 3,
    // channel_id = 4, tx_id = 5, epoch = 6, extension = 7, tls_cert_hash = 8.
    //   08 03                          type ENDORSER_TRANSACTION (3)
    //   1a 08 <Timestamp>              google.protobuf.Timestamp, 1+5+2 = 8 bytes:
    //     08 80 e2 cf aa 06              seconds = 1_700_000_000 = 0x6553f100;
    //                                    7-bit groups low first: 00 62 4f 2a 06,
    //                                    continuation bit on all but the last
    //     10 05                          nanos = 5
    //   22 09 "mychannel"              6d 79 63 68 61 6e 6e 65 6c
    //   2a 02 "ab"                     61 62
    //   30 07                          epoch 7
    //   3a 01 01                       extension
    //   42 01 ff                       tls_cert_hash
    let header = common::ChannelHeader {
        r#type: common::HeaderType::EndorserTransaction as i32,
        version: 0,
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        }),
        channel_id: "mychannel".into(),
        tx_id: "ab".into(),
        epoch: 7,
        extension: vec![0x01],
        tls_cert_hash: vec![0xff],
    };
    assert_golden(
        &header,
        "0803 1a08 0880e2cfaa06 1005 2209 6d796368616e6e656c 2a02 6162 3007 3a0101 4201ff",
    );
}

#[test]
fn golden_seek_info() {
    // orderer.SeekInfo: start = 1, stop = 2, behavior = 3, error_response = 4,
    // content_type = 5. SeekPosition oneof: newest = 1, oldest = 2,
    // specified = 3, next_commit = 4. SeekSpecified.number = 1.
    //   0a 02 | 0a 00                  start: SeekPosition{newest: SeekNewest{}}
    //   12 0d | 1a 0b | 08 ff*9 01     stop: SeekPosition{specified{number: u64::MAX}};
    //                                  u64::MAX as a varint is nine ff and 01
    //   18 01                          behavior FAIL_IF_NOT_READY
    //   20 01                          error_response BEST_EFFORT
    //   28 01                          content_type HEADER_WITH_SIG
    let info = SeekInfo {
        start: Some(SeekPosition {
            r#type: Some(seek_position::Type::Newest(SeekNewest {})),
        }),
        stop: Some(SeekPosition {
            r#type: Some(seek_position::Type::Specified(SeekSpecified {
                number: u64::MAX,
            })),
        }),
        behavior: seek_info::SeekBehavior::FailIfNotReady as i32,
        error_response: seek_info::SeekErrorResponse::BestEffort as i32,
        content_type: seek_info::SeekContentType::HeaderWithSig as i32,
    };
    assert_golden(
        &info,
        "0a02 0a00  120d 1a0b 08 ffffffffffffffffff 01  1801 2001 2801",
    );

    // The other two oneof arms: oldest (2) and next_commit (4), both empty.
    let oldest = SeekPosition {
        r#type: Some(seek_position::Type::Oldest(SeekOldest {})),
    };
    assert_golden(&oldest, "1200");
    let next = SeekPosition {
        r#type: Some(seek_position::Type::NextCommit(SeekNextCommit {})),
    };
    assert_golden(&next, "2200");
    // Defaults: BLOCK_UNTIL_READY, STRICT, BLOCK are 0 and encode to nothing.
    assert_golden(&SeekInfo::default(), "");
}

#[test]
fn golden_kv_rwset() {
    // kvrwset.KVRWSet: reads = 1, range_queries_info = 2, writes = 3,
    // metadata_writes = 4.
    // KVRead { key = 1, version = 2 }, Version { block_num = 1, tx_num = 2 }:
    //   0a 09 | 0a 01 6b | 12 04 | 08 01 10 02
    // RangeQueryInfo { start_key = 1, end_key = 2, itr_exhausted = 3,
    //   raw_reads = 4 (QueryReads, empty) }:
    //   12 0a | 0a 01 61 | 12 01 62 | 18 01 | 22 00
    // KVWrite { key = 1, is_delete = 2, value = 3 }:
    //   1a 06 | 0a 01 6b | 1a 01 76            key "k", value "v"
    //   1a 05 | 0a 01 64 | 10 01               key "d", deleted
    // KVMetadataWrite { key = 1, entries = 2 }, KVMetadataEntry { name = 1, value = 2 }:
    //   22 0b | 0a 01 6b | 12 06 | 0a 01 6e 12 01 78
    let set = KvrwSet {
        reads: vec![KvRead {
            key: "k".into(),
            version: Some(Version {
                block_num: 1,
                tx_num: 2,
            }),
        }],
        range_queries_info: vec![RangeQueryInfo {
            start_key: "a".into(),
            end_key: "b".into(),
            itr_exhausted: true,
            reads_info: Some(range_query_info::ReadsInfo::RawReads(QueryReads {
                kv_reads: vec![],
            })),
        }],
        writes: vec![
            KvWrite {
                key: "k".into(),
                is_delete: false,
                value: b"v".to_vec(),
            },
            KvWrite {
                key: "d".into(),
                is_delete: true,
                value: vec![],
            },
        ],
        metadata_writes: vec![KvMetadataWrite {
            key: "k".into(),
            entries: vec![KvMetadataEntry {
                name: "n".into(),
                value: b"x".to_vec(),
            }],
        }],
    };
    assert_golden(
        &set,
        "0a09 0a016b 1204 0801 1002 \
         120a 0a0161 120162 1801 2200 \
         1a06 0a016b 1a0176 \
         1a05 0a0164 1001 \
         220b 0a016b 1206 0a016e 120178",
    );
}

#[test]
fn golden_proposal_response() {
    // protos.ProposalResponse: version = 1, timestamp = 2, (no 3), response = 4,
    // payload = 5, endorsement = 6. Response { status = 1 }, 200 as a varint
    // is c8 01. Endorsement { endorser = 1, signature = 2 }.
    //   08 01 | 12 02 08 01 | 22 03 08 c8 01 | 2a 01 70 | 32 06 0a 01 65 12 01 73
    let resp = peer::ProposalResponse {
        version: 1,
        timestamp: Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 0,
        }),
        response: Some(peer::Response {
            status: 200,
            message: String::new(),
            payload: vec![],
        }),
        payload: b"p".to_vec(),
        endorsement: Some(peer::Endorsement {
            endorser: b"e".to_vec(),
            signature: b"s".to_vec(),
        }),
        interest: None,
    };
    assert_golden(&resp, "0801 12020801 220308c801 2a0170 32060a0165120173");
}

#[test]
fn golden_commit_status_response() {
    // gateway.CommitStatusResponse { result = 1 (TxValidationCode), block_number = 2 }:
    //   08 0b (MVCC_READ_CONFLICT = 11) | 10 2a (42)
    let resp = gateway::CommitStatusResponse {
        result: peer::TxValidationCode::MvccReadConflict as i32,
        block_number: 42,
    };
    assert_golden(&resp, "080b 102a");
}

#[test]
fn tx_validation_codes_are_fabrics() {
    let expected: &[(i32, &str)] = &[
        (0, "VALID"),
        (1, "NIL_ENVELOPE"),
        (2, "BAD_PAYLOAD"),
        (3, "BAD_COMMON_HEADER"),
        (4, "BAD_CREATOR_SIGNATURE"),
        (5, "INVALID_ENDORSER_TRANSACTION"),
        (6, "INVALID_CONFIG_TRANSACTION"),
        (7, "UNSUPPORTED_TX_PAYLOAD"),
        (8, "BAD_PROPOSAL_TXID"),
        (9, "DUPLICATE_TXID"),
        (10, "ENDORSEMENT_POLICY_FAILURE"),
        (11, "MVCC_READ_CONFLICT"),
        (12, "PHANTOM_READ_CONFLICT"),
        (13, "UNKNOWN_TX_TYPE"),
        (14, "TARGET_CHAIN_NOT_FOUND"),
        (15, "MARSHAL_TX_ERROR"),
        (16, "NIL_TXACTION"),
        (17, "EXPIRED_CHAINCODE"),
        (18, "CHAINCODE_VERSION_CONFLICT"),
        (19, "BAD_HEADER_EXTENSION"),
        (20, "BAD_CHANNEL_HEADER"),
        (21, "BAD_RESPONSE_PAYLOAD"),
        (22, "BAD_RWSET"),
        (23, "ILLEGAL_WRITESET"),
        (24, "INVALID_WRITESET"),
        (25, "INVALID_CHAINCODE"),
        (254, "NOT_VALIDATED"),
        (255, "INVALID_OTHER_REASON"),
    ];
    for &(value, name) in expected {
        let code = peer::TxValidationCode::try_from(value).expect(name);
        assert_eq!(code.as_str_name(), name);
    }
    let defined = (0..=1000)
        .filter(|v| peer::TxValidationCode::try_from(*v).is_ok())
        .count();
    assert_eq!(defined, expected.len(), "no values beyond Fabric's");
}

#[test]
fn other_enum_values_are_fabrics() {
    use common::{BlockMetadataIndex as B, HeaderType as H, Status as S};
    assert_eq!(
        [S::Success, S::BadRequest, S::Forbidden, S::NotFound].map(|s| s as i32),
        [200, 400, 403, 404]
    );
    assert_eq!(
        [
            S::RequestEntityTooLarge,
            S::InternalServerError,
            S::NotImplemented,
            S::ServiceUnavailable
        ]
        .map(|s| s as i32),
        [413, 500, 501, 503]
    );
    assert_eq!(
        [
            H::Message,
            H::Config,
            H::ConfigUpdate,
            H::EndorserTransaction,
            H::OrdererTransaction,
            H::DeliverSeekInfo,
            H::ChaincodePackage
        ]
        .map(|h| h as i32),
        [0, 1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        [
            B::Signatures,
            B::LastConfig,
            B::TransactionsFilter,
            B::Orderer,
            B::CommitHash
        ]
        .map(|b| b as i32),
        [0, 1, 2, 3, 4]
    );
}

#[test]
fn envelope_and_block_golden() {
    // common.Envelope { payload = 1, signature = 2 }: 0a 01 50 | 12 01 53
    assert_golden(
        &Envelope {
            payload: b"P".to_vec(),
            signature: b"S".to_vec(),
        },
        "0a0150 120153",
    );
    // common.Block { header = 1, data = 2, metadata = 3 };
    // BlockHeader { number = 1, previous_hash = 2, data_hash = 3 };
    // BlockData { data = 1 (repeated bytes) }; BlockMetadata { metadata = 1 }.
    //   0a 08 | 08 05 | 12 01 aa | 1a 01 bb      header: number 5
    //   12 03 | 0a 01 01                          data: one envelope [01]
    //   1a 04 | 0a 00 0a 00                       metadata: two empty entries
    let block = common::Block {
        header: Some(common::BlockHeader {
            number: 5,
            previous_hash: vec![0xaa],
            data_hash: vec![0xbb],
        }),
        data: Some(common::BlockData {
            data: vec![vec![0x01]],
        }),
        metadata: Some(common::BlockMetadata {
            metadata: vec![vec![], vec![]],
        }),
    };
    assert_golden(&block, "0a08 0805 1201aa 1a01bb 1203 0a0101 1a04 0a00 0a00");
}
