//! The client side of the Gateway: what the CLI, tests and benchmarks use
//! to talk to a peer. [`GatewayClient::submit`] is the one call that does
//! endorse → sign → submit → wait for commit, as Fabric's SDKs do.

use std::time::Duration;

use prost::Message;
use qcss_network::SigningIdentity;
use qcss_network::envelope::creator_bytes;
use qcss_proto::common::Envelope;
use qcss_proto::common::Payload;
use qcss_proto::gateway::gateway_client::GatewayClient as RawGateway;
use qcss_proto::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, EndorseRequest,
    EvaluateRequest, SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest,
};
use qcss_proto::orderer::seek_position::Type as Pos;
use qcss_proto::orderer::{SeekNextCommit, SeekPosition, SeekSpecified};
use qcss_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ProposalResponsePayload, Transaction, TxValidationCode,
};
use tonic::transport::Channel;

use crate::endorser::build_proposal;

/// What a submitted transaction came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Its tx id.
    pub tx_id: String,
    /// Its validation code.
    pub code: TxValidationCode,
    /// The block it is in.
    pub block: u64,
    /// The chaincode's response payload (as endorsed).
    pub result: Vec<u8>,
}

/// A Gateway connection with a signing identity.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    inner: RawGateway<Channel>,
    signer: std::sync::Arc<SigningIdentity>,
    channel: String,
}

/// Connects to a peer over mTLS, trusting `tls_roots` and presenting the
/// TLS pair `(cert, key)` (PEM).
pub async fn connect(
    addr: &str,
    tls_roots: &[Vec<u8>],
    client_tls: (&[u8], &[u8]),
) -> Result<Channel, String> {
    let tls = qcss_network::tls::client_tls_for_addr(tls_roots, Some(client_tls), addr);
    qcss_network::tls::connect(addr, tls)
        .await
        .map_err(|e| format!("cannot connect to peer {addr}: {e}"))
}

fn status_text(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

impl GatewayClient {
    /// A client over `ch` signing as `signer` on `channel`.
    pub fn new(ch: Channel, signer: std::sync::Arc<SigningIdentity>, channel: &str) -> Self {
        GatewayClient {
            inner: RawGateway::new(ch)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
            signer,
            channel: channel.to_owned(),
        }
    }

    /// The identity this client signs with.
    pub fn signer(&self) -> &SigningIdentity {
        &self.signer
    }

    /// Evaluates `function(args)` of `chaincode` on the peer: its response
    /// payload; nothing is ordered.
    pub async fn evaluate(
        &mut self,
        chaincode: &str,
        function: &str,
        args: &[&[u8]],
    ) -> Result<Vec<u8>, String> {
        self.evaluate_args(chaincode, &full_args(function, args))
            .await
    }

    /// [`GatewayClient::evaluate`] with the function as `all[0]`.
    pub async fn evaluate_args<A: AsRef<[u8]>>(
        &mut self,
        chaincode: &str,
        all: &[A],
    ) -> Result<Vec<u8>, String> {
        let (proposal, tx_id) = build_proposal(&self.signer, &self.channel, chaincode, all)
            .map_err(|e| e.to_string())?;
        let r = self
            .inner
            .evaluate(EvaluateRequest {
                transaction_id: tx_id,
                channel_id: self.channel.clone(),
                proposed_transaction: Some(proposal),
                target_organizations: vec![],
            })
            .await
            .map_err(|s| status_text(&s))?
            .into_inner();
        Ok(r.result.map(|r| r.payload).unwrap_or_default())
    }

    /// Endorses `function(args)` (by the orgs the peer chooses, or exactly
    /// `orgs`) and returns the signed transaction and its tx id, not yet
    /// submitted.
    pub async fn endorse(
        &mut self,
        chaincode: &str,
        function: &str,
        args: &[&[u8]],
        orgs: &[String],
    ) -> Result<(Envelope, String), String> {
        self.endorse_args(chaincode, &full_args(function, args), orgs)
            .await
    }

    /// [`GatewayClient::endorse`] with the function as `all[0]`.
    pub async fn endorse_args<A: AsRef<[u8]>>(
        &mut self,
        chaincode: &str,
        all: &[A],
        orgs: &[String],
    ) -> Result<(Envelope, String), String> {
        let (proposal, tx_id) = build_proposal(&self.signer, &self.channel, chaincode, all)
            .map_err(|e| e.to_string())?;
        let r = self
            .inner
            .endorse(EndorseRequest {
                transaction_id: tx_id.clone(),
                channel_id: self.channel.clone(),
                proposed_transaction: Some(proposal),
                endorsing_organizations: orgs.to_vec(),
            })
            .await
            .map_err(|s| status_text(&s))?
            .into_inner();
        let mut env = r
            .prepared_transaction
            .ok_or("the Gateway returned no prepared transaction")?;
        env.signature = self.signer.sign(&env.payload).map_err(|e| e.to_string())?;
        Ok((env, tx_id))
    }

    /// Sends a signed transaction to the orderers through the Gateway.
    pub async fn send(&mut self, env: Envelope, tx_id: &str) -> Result<(), String> {
        self.inner
            .submit(SubmitRequest {
                transaction_id: tx_id.to_owned(),
                channel_id: self.channel.clone(),
                prepared_transaction: Some(env),
            })
            .await
            .map_err(|s| status_text(&s))?;
        Ok(())
    }

    /// Waits until `tx_id` is committed; its code and block.
    pub async fn commit_status(&mut self, tx_id: &str) -> Result<(TxValidationCode, u64), String> {
        let request = CommitStatusRequest {
            transaction_id: tx_id.to_owned(),
            channel_id: self.channel.clone(),
            identity: creator_bytes(&self.signer),
        }
        .encode_to_vec();
        let signature = self.signer.sign(&request).map_err(|e| e.to_string())?;
        let r = self
            .inner
            .commit_status(SignedCommitStatusRequest { request, signature })
            .await
            .map_err(|s| status_text(&s))?
            .into_inner();
        let code =
            TxValidationCode::try_from(r.result).unwrap_or(TxValidationCode::InvalidOtherReason);
        Ok((code, r.block_number))
    }

    /// Endorse, sign, submit and wait for commit: one call.
    pub async fn submit(
        &mut self,
        chaincode: &str,
        function: &str,
        args: &[&[u8]],
    ) -> Result<Committed, String> {
        self.submit_args(chaincode, &full_args(function, args), &[])
            .await
    }

    /// [`GatewayClient::submit`] with the function as `all[0]`, endorsed by
    /// exactly `orgs` (empty: as the peer chooses).
    pub async fn submit_args<A: AsRef<[u8]>>(
        &mut self,
        chaincode: &str,
        all: &[A],
        orgs: &[String],
    ) -> Result<Committed, String> {
        let (env, tx_id) = self.endorse_args(chaincode, all, orgs).await?;
        let result = response_payload(&env).unwrap_or_default();
        self.send(env, &tx_id).await?;
        let (code, block) = self.commit_status(&tx_id).await?;
        Ok(Committed {
            tx_id,
            code,
            block,
            result,
        })
    }

    /// Streams `chaincode`'s events from block `start` (or from the next
    /// commit), resuming after `after_tx_id` in the start block.
    pub async fn chaincode_events(
        &mut self,
        chaincode: &str,
        start: Option<u64>,
        after_tx_id: Option<&str>,
    ) -> Result<tonic::Streaming<ChaincodeEventsResponse>, String> {
        let position = match start {
            Some(n) => Pos::Specified(SeekSpecified { number: n }),
            None => Pos::NextCommit(SeekNextCommit {}),
        };
        let request = ChaincodeEventsRequest {
            channel_id: self.channel.clone(),
            chaincode_id: chaincode.to_owned(),
            identity: creator_bytes(&self.signer),
            start_position: Some(SeekPosition {
                r#type: Some(position),
            }),
            after_transaction_id: after_tx_id.unwrap_or_default().to_owned(),
        }
        .encode_to_vec();
        let signature = self.signer.sign(&request).map_err(|e| e.to_string())?;
        Ok(self
            .inner
            .chaincode_events(SignedChaincodeEventsRequest { request, signature })
            .await
            .map_err(|s| status_text(&s))?
            .into_inner())
    }
}

fn full_args<'a>(function: &'a str, args: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(function.as_bytes());
    all.extend_from_slice(args);
    all
}

/// The chaincode response payload inside a (prepared) transaction envelope.
pub fn response_payload(env: &Envelope) -> Option<Vec<u8>> {
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let tx = Transaction::decode(payload.data.as_slice()).ok()?;
    let cap = ChaincodeActionPayload::decode(tx.actions.first()?.payload.as_slice()).ok()?;
    let prp =
        ProposalResponsePayload::decode(cap.action?.proposal_response_payload.as_slice()).ok()?;
    let ca = ChaincodeAction::decode(prp.extension.as_slice()).ok()?;
    Some(ca.response?.payload)
}

/// How long clients wait for a peer by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
