//! The client side of the Gateway: what the CLI, tests and benchmarks use
//! to talk to a peer. [`GatewayClient::submit`] is the one call that does
//! endorse → sign → submit → wait for commit, as Fabric's SDKs do.

use std::time::Duration;

use prost::Message;
use qcss_network::SigningIdentity;
use qcss_network::envelope::creator_bytes;
use qcss_network::signing::CryptoError;
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

/// Why a Gateway call failed. Callers tell a retryable failure
/// ([`ClientError::is_retryable`]) from a final one, and read a contract's
/// own refusal ([`ClientError::contract_message`]) without parsing text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No connection to the peer.
    #[error("cannot connect to peer {addr}: {source}")]
    Connect {
        /// The peer's address.
        addr: String,
        /// What the transport said.
        #[source]
        source: tonic::transport::Error,
    },
    /// Signing a proposal or request failed (the key, or the random source).
    #[error("signing: {0}")]
    Sign(#[from] CryptoError),
    /// The peer answered with a gRPC error (a contract's refusal arrives
    /// this way, as the Gateway relays it).
    #[error("{:?}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// The Gateway's answer lacks what it must carry.
    #[error("the Gateway returned {0}")]
    Malformed(&'static str),
}

impl ClientError {
    /// The gRPC status, if the peer answered with one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            ClientError::Status(s) => Some(s),
            _ => None,
        }
    }

    /// Whether trying again (later, or at another peer) may succeed: no
    /// connection, or the peer or ordering service is busy or unavailable,
    /// or an ABORTED that is not a contract's refusal (endorsements that
    /// differed, an orderer that refused during a change). A contract's
    /// refusal (ABORTED relaying its response) is final: the same proposal
    /// gets the same answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connect { .. } => true,
            ClientError::Status(s) => match s.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::ResourceExhausted => true,
                tonic::Code::Aborted => relayed_reason(s.message()) == s.message(),
                _ => false,
            },
            _ => false,
        }
    }

    /// What a person should read: for a chaincode refusal relayed by the
    /// Gateway ("… status 400: reason"), the contract's reason alone;
    /// otherwise the gRPC message (or the whole error).
    pub fn contract_message(&self) -> String {
        match self {
            ClientError::Status(s) => relayed_reason(s.message()).to_owned(),
            other => other.to_string(),
        }
    }
}

/// The contract's reason inside a Gateway message that relays a chaincode
/// response (`… chaincode response status 400: reason`), else the message.
fn relayed_reason(m: &str) -> &str {
    let b = m.as_bytes();
    for (i, _) in m.match_indices("status ") {
        let d = &b[i + 7..];
        if d.len() > 5 && d[..3].iter().all(u8::is_ascii_digit) && &d[3..5] == b": " {
            return &m[i + 12..];
        }
    }
    m
}

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
) -> Result<Channel, ClientError> {
    let tls = qcss_network::tls::client_tls_for_addr(tls_roots, Some(client_tls), addr);
    qcss_network::tls::connect(addr, tls)
        .await
        .map_err(|source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        })
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
    ) -> Result<Vec<u8>, ClientError> {
        self.evaluate_args(chaincode, &full_args(function, args))
            .await
    }

    /// [`GatewayClient::evaluate`] with the function as `all[0]`.
    pub async fn evaluate_args<A: AsRef<[u8]>>(
        &mut self,
        chaincode: &str,
        all: &[A],
    ) -> Result<Vec<u8>, ClientError> {
        let (proposal, tx_id) = build_proposal(&self.signer, &self.channel, chaincode, all)?;
        let r = self
            .inner
            .evaluate(EvaluateRequest {
                transaction_id: tx_id,
                channel_id: self.channel.clone(),
                proposed_transaction: Some(proposal),
                target_organizations: vec![],
            })
            .await
            .map_err(ClientError::Status)?
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
    ) -> Result<(Envelope, String), ClientError> {
        self.endorse_args(chaincode, &full_args(function, args), orgs)
            .await
    }

    /// [`GatewayClient::endorse`] with the function as `all[0]`.
    pub async fn endorse_args<A: AsRef<[u8]>>(
        &mut self,
        chaincode: &str,
        all: &[A],
        orgs: &[String],
    ) -> Result<(Envelope, String), ClientError> {
        let (proposal, tx_id) = build_proposal(&self.signer, &self.channel, chaincode, all)?;
        let r = self
            .inner
            .endorse(EndorseRequest {
                transaction_id: tx_id.clone(),
                channel_id: self.channel.clone(),
                proposed_transaction: Some(proposal),
                endorsing_organizations: orgs.to_vec(),
            })
            .await
            .map_err(ClientError::Status)?
            .into_inner();
        let mut env = r
            .prepared_transaction
            .ok_or(ClientError::Malformed("no prepared transaction"))?;
        env.signature = self.signer.sign(&env.payload)?;
        Ok((env, tx_id))
    }

    /// Sends a signed transaction to the orderers through the Gateway.
    pub async fn send(&mut self, env: Envelope, tx_id: &str) -> Result<(), ClientError> {
        self.inner
            .submit(SubmitRequest {
                transaction_id: tx_id.to_owned(),
                channel_id: self.channel.clone(),
                prepared_transaction: Some(env),
            })
            .await
            .map_err(ClientError::Status)?;
        Ok(())
    }

    /// Waits until `tx_id` is committed; its code and block.
    pub async fn commit_status(
        &mut self,
        tx_id: &str,
    ) -> Result<(TxValidationCode, u64), ClientError> {
        let request = CommitStatusRequest {
            transaction_id: tx_id.to_owned(),
            channel_id: self.channel.clone(),
            identity: creator_bytes(&self.signer),
        }
        .encode_to_vec();
        let signature = self.signer.sign(&request)?;
        let r = self
            .inner
            .commit_status(SignedCommitStatusRequest { request, signature })
            .await
            .map_err(ClientError::Status)?
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
    ) -> Result<Committed, ClientError> {
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
    ) -> Result<Committed, ClientError> {
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
    ) -> Result<tonic::Streaming<ChaincodeEventsResponse>, ClientError> {
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
        let signature = self.signer.sign(&request)?;
        Ok(self
            .inner
            .chaincode_events(SignedChaincodeEventsRequest { request, signature })
            .await
            .map_err(ClientError::Status)?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_reasons_and_retryable_failures() {
        let relayed = ClientError::Status(tonic::Status::aborted(
            "failed to endorse: chaincode response status 400: batch LJ2026B is recalled",
        ));
        assert_eq!(relayed.contract_message(), "batch LJ2026B is recalled");
        assert!(!relayed.is_retryable(), "a contract's refusal is final");
        let differed = ClientError::Status(tonic::Status::aborted("endorsements differ"));
        assert!(differed.is_retryable());
        let plain = ClientError::Status(tonic::Status::permission_denied("not a member"));
        assert_eq!(plain.contract_message(), "not a member");
        assert!(!plain.is_retryable());
        assert!(ClientError::Status(tonic::Status::unavailable("no leader")).is_retryable());
        assert!(!ClientError::Malformed("x").is_retryable());
    }
}
