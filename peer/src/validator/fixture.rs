//! Test and benchmark support: a consortium made in-process (one root CA per
//! org, peers, clients, an orderer), and transactions built exactly as a
//! Fabric client and endorsing peers build them, so the validator is tested
//! on real bytes.
//!
//! The transaction path, Fabric's: a client makes a [`Proposal`] (channel
//! header of type `ENDORSER_TRANSACTION` with a `ChaincodeHeaderExtension`,
//! signature header with creator and nonce, `ChaincodeProposalPayload`
//! holding a `ChaincodeInvocationSpec`; tx id = hex(SHA-256(nonce ‖
//! creator))); each peer signs the same `ProposalResponsePayload` (proposal
//! hash, and a `ChaincodeAction` with the read-write set, response and
//! chaincode id) as an [`endorse`]ment over `payload ‖ endorser`; the client
//! assembles the `Transaction` ([`Proposal::transaction_payload`], as
//! Fabric's `CreateSignedTx`) and signs the envelope ([`sign_envelope`]).
//! Each step is public so tests can tamper between them; [`TxBuilder`] does
//! them all. [`RwSet`] builds read-write sets.
//!
//! Not for production use: nothing here is checked, and keys live in memory.

use std::collections::HashMap;

use prost::Message;
use qcss_network::block::{genesis_block, new_block, orderer_metadata, sign_block};
use qcss_network::certgen::{
    CertAuthority, CertGenError, SigningProfile, random_serial, rcgen_key,
};
use qcss_network::channel::{
    BatchConfig, Channel, ChannelConfig, ChannelError, ChannelPolicies, Consenter, OrgConfig,
};
use qcss_network::envelope::{compute_tx_id, creator_bytes, new_nonce};
use qcss_network::identity::IdentityError;
use qcss_network::msp::{MspConfig, unix_now};
use qcss_network::signing::{CryptoError, KeyKind, SigningKey};
use qcss_network::{MspId, Role, SigningIdentity};
use qcss_proto::common::{
    Block, ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use qcss_proto::kvrwset::{
    KvMetadataEntry, KvMetadataWrite, KvRead, KvWrite, KvrwSet, QueryReads, RangeQueryInfo,
    range_query_info::ReadsInfo,
};
use qcss_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeHeaderExtension,
    ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload, ChaincodeSpec,
    Endorsement, Proposal as PbProposal, ProposalResponsePayload, Response, SignedProposal,
    Transaction, TransactionAction,
};
use qcss_proto::rwset::{NsReadWriteSet, TxReadWriteSet};

use crate::ledger::{Ledger, Version};
use crate::validator::policy::KEY_POLICY_ENTRY;
use crate::validator::transaction::proposal_hash;

/// Days the fixture's certificates are valid.
const CERT_DAYS: u32 = 30;

/// Why a fixture could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// Key generation or signing failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A certificate or CRL could not be made.
    #[error(transparent)]
    CertGen(#[from] CertGenError),
    /// An issued certificate could not be paired with its key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The channel configuration does not build.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// An org the fixture does not have.
    #[error("no org {0:?} in this network")]
    UnknownOrg(String),
}

/// One org: its CA, its default peer and client, and what it revoked.
struct Org {
    msp_id: String,
    ca: CertAuthority,
    peer: SigningIdentity,
    client: SigningIdentity,
    revoked: Vec<(Vec<u8>, i64, u8)>,
}

/// A consortium for tests: orgs with their CAs and identities, an orderer,
/// and the channel configuration that ties them together.
pub struct Network {
    orgs: Vec<Org>,
    orderer: SigningIdentity,
    config: ChannelConfig,
    kind: KeyKind,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("channel", &self.config.channel_id)
            .field(
                "orgs",
                &self.orgs.iter().map(|o| &o.msp_id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Issues a signing identity of `msp_id` from `ca`, with a key of `kind`.
fn issue(
    ca: &CertAuthority,
    msp_id: &str,
    (name, role): (&str, Role),
    kind: KeyKind,
) -> Result<SigningIdentity, FixtureError> {
    let key = SigningKey::generate_kind(kind)?;
    let profile = SigningProfile {
        name: name.into(),
        org: msp_id.trim_end_matches("MSP").into(),
        role,
        attributes: Default::default(),
    };
    let pem = ca.issue_signing(&profile, &rcgen_key(&key)?, &random_serial()?, CERT_DAYS)?;
    Ok(SigningIdentity::new(
        MspId(msp_id.into()),
        pem.into_bytes(),
        key,
    )?)
}

impl Network {
    /// A channel `channel_id` whose members are `msp_ids` (e.g. `Org1MSP`),
    /// each with its own root CA, a peer `peer0` and a client `client0`;
    /// one consenter, an orderer identity of the first org; default policies.
    pub fn new(channel_id: &str, msp_ids: &[&str]) -> Result<Network, FixtureError> {
        Self::with_key_kind(channel_id, msp_ids, KeyKind::P256)
    }

    /// As [`Network::new`], every identity (and every one
    /// [`Network::issue`] makes later) with a key of `kind`.
    pub fn with_key_kind(
        channel_id: &str,
        msp_ids: &[&str],
        kind: KeyKind,
    ) -> Result<Network, FixtureError> {
        let mut orgs = Vec::with_capacity(msp_ids.len());
        for id in msp_ids {
            let org = id.trim_end_matches("MSP");
            let ca = CertAuthority::new_root(&format!("ca.{org}"), org, 365)?;
            orgs.push(Org {
                msp_id: id.to_string(),
                peer: issue(&ca, id, ("peer0", Role::Peer), kind)?,
                client: issue(&ca, id, ("client0", Role::Client), kind)?,
                ca,
                revoked: Vec::new(),
            });
        }
        let first = msp_ids.first().copied().unwrap_or("Org1MSP");
        let orderer = match orgs.first() {
            Some(o) => issue(&o.ca, first, ("orderer0", Role::Orderer), kind)?,
            None => return Err(FixtureError::UnknownOrg(first.into())),
        };
        let cert = String::from_utf8_lossy(&orderer.cert_pem).into_owned();
        let config = ChannelConfig {
            channel_id: channel_id.into(),
            sequence: 0,
            orgs: orgs
                .iter()
                .map(|o| OrgConfig {
                    msp: MspConfig {
                        msp_id: o.msp_id.clone(),
                        root_certs: vec![o.ca.cert_pem().to_string()],
                        ..Default::default()
                    },
                    peer_endpoints: vec![],
                    display_name: None,
                    file_key: None,
                })
                .collect(),
            consenters: vec![Consenter {
                id: 1,
                address: "127.0.0.1:7050".into(),
                msp_id: first.into(),
                tls_cert_pem: cert.clone(),
                identity_cert_pem: cert,
            }],
            batch: BatchConfig::default(),
            policies: ChannelPolicies::default(),
        };
        Channel::new(config.clone())?;
        Ok(Network {
            orgs,
            orderer,
            config,
            kind,
        })
    }

    fn org(&self, msp_id: &str) -> Result<&Org, FixtureError> {
        self.orgs
            .iter()
            .find(|o| o.msp_id == msp_id)
            .ok_or_else(|| FixtureError::UnknownOrg(msp_id.into()))
    }

    /// The channel id.
    pub fn channel_id(&self) -> &str {
        &self.config.channel_id
    }

    /// The channel configuration (with the CRLs issued so far).
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// A live channel built from the current configuration.
    pub fn channel(&self) -> Result<Channel, FixtureError> {
        Ok(Channel::new(self.config.clone())?)
    }

    /// The org's peer `peer0`.
    pub fn peer(&self, msp_id: &str) -> Result<&SigningIdentity, FixtureError> {
        Ok(&self.org(msp_id)?.peer)
    }

    /// The org's client `client0`.
    pub fn client(&self, msp_id: &str) -> Result<&SigningIdentity, FixtureError> {
        Ok(&self.org(msp_id)?.client)
    }

    /// The orderer that signs blocks (the channel's only consenter).
    pub fn orderer(&self) -> &SigningIdentity {
        &self.orderer
    }

    /// Issues another identity of `msp_id` in `role`.
    pub fn issue(
        &self,
        msp_id: &str,
        name: &str,
        role: Role,
    ) -> Result<SigningIdentity, FixtureError> {
        issue(&self.org(msp_id)?.ca, msp_id, (name, role), self.kind)
    }

    /// Revokes `identity`: its org's CA issues a new CRL, which replaces the
    /// org's CRLs in the configuration. Build a new [`Network::channel`].
    pub fn revoke(&mut self, identity: &SigningIdentity) -> Result<(), FixtureError> {
        let msp_id = identity.msp_id.as_str();
        let org = self
            .orgs
            .iter_mut()
            .find(|o| o.msp_id == msp_id)
            .ok_or_else(|| FixtureError::UnknownOrg(msp_id.into()))?;
        let serial = hex::decode(&identity.cert.serial_hex)
            .map_err(|e| IdentityError::Malformed(format!("serial: {e}")))?;
        org.revoked.push((serial, unix_now(), 1));
        let crl = org.ca.crl(org.revoked.len() as u64, &org.revoked, 7)?;
        for o in &mut self.config.orgs {
            if o.msp.msp_id == msp_id {
                o.msp.crls = vec![crl.clone()];
            }
        }
        Ok(())
    }

    /// The channel's genesis block (unsigned, as Fabric's are).
    pub fn genesis(&self) -> Block {
        genesis_block(&self.config)
    }

    /// Block `number` after `previous_hash` holding `envelopes`, signed by
    /// the orderer.
    pub fn block(
        &self,
        number: u64,
        previous_hash: &[u8],
        envelopes: Vec<Vec<u8>>,
    ) -> Result<Block, FixtureError> {
        let mut block = new_block(number, previous_hash, envelopes);
        sign_block(
            &mut block,
            &self.orderer,
            orderer_metadata(0, 1, number, None, None),
        )?;
        Ok(block)
    }

    /// The signed block that follows `ledger`'s last one.
    pub fn next_block(
        &self,
        ledger: &Ledger,
        envelopes: Vec<Vec<u8>>,
    ) -> Result<Block, FixtureError> {
        let previous = ledger
            .last_block_hash()
            .map(|h| h.to_vec())
            .unwrap_or_default();
        self.block(ledger.height(), &previous, envelopes)
    }

    /// A transaction of `msp_id`'s client invoking `chaincode` on this channel.
    pub fn tx<'a>(&'a self, msp_id: &str, chaincode: &str) -> Result<TxBuilder<'a>, FixtureError> {
        Ok(TxBuilder::new(
            self.client(msp_id)?,
            self.channel_id(),
            chaincode,
        ))
    }
}

/// A read-write set under construction, namespace by namespace in the order
/// first named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RwSet {
    namespaces: Vec<(String, KvrwSet)>,
}

fn pb_version(v: Version) -> qcss_proto::kvrwset::Version {
    qcss_proto::kvrwset::Version {
        block_num: v.block,
        tx_num: u64::from(v.tx),
    }
}

impl RwSet {
    /// Empty.
    pub fn new() -> Self {
        RwSet::default()
    }

    fn ns(&mut self, ns: &str) -> &mut KvrwSet {
        let i = match self.namespaces.iter().position(|(n, _)| n == ns) {
            Some(i) => i,
            None => {
                self.namespaces.push((ns.to_owned(), KvrwSet::default()));
                self.namespaces.len() - 1
            }
        };
        &mut self.namespaces[i].1
    }

    /// Records a read of `key` at `version` (`None`: it did not exist).
    pub fn read(mut self, ns: &str, key: &str, version: Option<Version>) -> Self {
        self.ns(ns).reads.push(KvRead {
            key: key.into(),
            version: version.map(pb_version),
        });
        self
    }

    /// Records a range scan of `[start, end)` that returned `rows`;
    /// `exhausted` if it ran to the end of the range.
    pub fn range(
        mut self,
        ns: &str,
        start: &str,
        end: &str,
        exhausted: bool,
        rows: &[(&str, Version)],
    ) -> Self {
        self.ns(ns).range_queries_info.push(RangeQueryInfo {
            start_key: start.into(),
            end_key: end.into(),
            itr_exhausted: exhausted,
            reads_info: Some(ReadsInfo::RawReads(QueryReads {
                kv_reads: rows
                    .iter()
                    .map(|(k, v)| KvRead {
                        key: (*k).into(),
                        version: Some(pb_version(*v)),
                    })
                    .collect(),
            })),
        });
        self
    }

    /// Records a write of `value` to `key`.
    pub fn write(mut self, ns: &str, key: &str, value: &[u8]) -> Self {
        self.ns(ns).writes.push(KvWrite {
            key: key.into(),
            is_delete: false,
            value: value.to_vec(),
        });
        self
    }

    /// Records a delete of `key`.
    pub fn delete(mut self, ns: &str, key: &str) -> Self {
        self.ns(ns).writes.push(KvWrite {
            key: key.into(),
            is_delete: true,
            value: Vec::new(),
        });
        self
    }

    /// Sets (`Some`) or removes (`None`) `key`'s key-level policy.
    pub fn key_policy(mut self, ns: &str, key: &str, policy: Option<&str>) -> Self {
        self.ns(ns).metadata_writes.push(KvMetadataWrite {
            key: key.into(),
            entries: policy
                .map(|p| KvMetadataEntry {
                    name: KEY_POLICY_ENTRY.into(),
                    value: p.as_bytes().to_vec(),
                })
                .into_iter()
                .collect(),
        });
        self
    }

    /// The `TxReadWriteSet` (data model KV).
    pub fn to_proto(&self) -> TxReadWriteSet {
        TxReadWriteSet {
            data_model: 0,
            ns_rwset: self
                .namespaces
                .iter()
                .map(|(ns, kv)| NsReadWriteSet {
                    namespace: ns.clone(),
                    rwset: kv.encode_to_vec(),
                    collection_hashed_rwset: vec![],
                })
                .collect(),
        }
    }

    /// The marshaled `TxReadWriteSet` (what goes into `ChaincodeAction.results`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }
}

/// A client's chaincode proposal: the header and payload bytes every later
/// step refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The tx id in the channel header.
    pub tx_id: String,
    /// The chaincode invoked.
    pub chaincode: String,
    /// Marshaled `ChannelHeader`.
    pub channel_header: Vec<u8>,
    /// Marshaled `SignatureHeader`.
    pub signature_header: Vec<u8>,
    /// Marshaled `ChaincodeProposalPayload` (no transient data).
    pub payload: Vec<u8>,
}

impl Proposal {
    /// `creator` invokes `chaincode` on `channel_id` with `args` (the
    /// function name first, as Fabric clients send it), now, with a fresh
    /// nonce.
    pub fn new(
        creator: &SigningIdentity,
        channel_id: &str,
        chaincode: &str,
        args: &[&[u8]],
    ) -> Result<Proposal, FixtureError> {
        let nonce = new_nonce()?;
        let creator = creator_bytes(creator);
        let tx_id = compute_tx_id(&nonce, &creator);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let cc_id = ChaincodeId {
            name: chaincode.into(),
            ..Default::default()
        };
        let ch = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            version: 0,
            timestamp: Some(prost_types::Timestamp {
                seconds: now.as_secs() as i64,
                nanos: now.subsec_nanos() as i32,
            }),
            channel_id: channel_id.into(),
            tx_id: tx_id.clone(),
            epoch: 0,
            extension: ChaincodeHeaderExtension {
                chaincode_id: Some(cc_id.clone()),
            }
            .encode_to_vec(),
            tls_cert_hash: vec![],
        };
        let spec = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                r#type: 0,
                chaincode_id: Some(cc_id),
                input: Some(ChaincodeInput {
                    args: args.iter().map(|a| a.to_vec()).collect(),
                    decorations: HashMap::new(),
                    is_init: false,
                }),
                timeout: 0,
            }),
        };
        Ok(Proposal {
            tx_id,
            chaincode: chaincode.into(),
            channel_header: ch.encode_to_vec(),
            signature_header: SignatureHeader { creator, nonce }.encode_to_vec(),
            payload: ChaincodeProposalPayload {
                input: spec.encode_to_vec(),
                transient_map: HashMap::new(),
            }
            .encode_to_vec(),
        })
    }

    /// Rewrites the channel header (e.g. to forge the tx id); the proposal
    /// hash changes with it.
    pub fn edit_channel_header(&mut self, edit: impl FnOnce(&mut ChannelHeader)) {
        let mut ch = ChannelHeader::decode(self.channel_header.as_slice()).unwrap_or_default();
        edit(&mut ch);
        self.tx_id = ch.tx_id.clone();
        self.channel_header = ch.encode_to_vec();
    }

    /// The proposal as a client sends it to a peer, signed by `creator`.
    pub fn signed(&self, creator: &SigningIdentity) -> Result<SignedProposal, FixtureError> {
        let proposal_bytes = PbProposal {
            header: Header {
                channel_header: self.channel_header.clone(),
                signature_header: self.signature_header.clone(),
            }
            .encode_to_vec(),
            payload: self.payload.clone(),
            extension: vec![],
        }
        .encode_to_vec();
        let signature = creator.sign(&proposal_bytes)?;
        Ok(SignedProposal {
            proposal_bytes,
            signature,
        })
    }

    /// Fabric's proposal hash of this proposal.
    pub fn hash(&self) -> [u8; 32] {
        proposal_hash(&self.channel_header, &self.signature_header, &self.payload)
    }

    /// The `ProposalResponsePayload` a peer returns for this proposal, whose
    /// simulation gave `results` (a marshaled `TxReadWriteSet`): response
    /// 200 with payload `ok`, chaincode id with version `1.0`, no event.
    pub fn response_payload(&self, results: Vec<u8>) -> Vec<u8> {
        let action = ChaincodeAction {
            results,
            events: vec![],
            response: Some(Response {
                status: 200,
                message: String::new(),
                payload: b"ok".to_vec(),
            }),
            chaincode_id: Some(ChaincodeId {
                name: self.chaincode.clone(),
                version: "1.0".into(),
                ..Default::default()
            }),
        };
        ProposalResponsePayload {
            proposal_hash: self.hash().to_vec(),
            extension: action.encode_to_vec(),
        }
        .encode_to_vec()
    }

    /// The transaction's `Payload` bytes, as Fabric's `CreateSignedTx`
    /// builds them: the proposal's header, and one action whose header is
    /// the proposal's signature header and whose payload carries the
    /// proposal payload, the response payload and the endorsements.
    pub fn transaction_payload(&self, prp: Vec<u8>, endorsements: Vec<Endorsement>) -> Vec<u8> {
        let cap = ChaincodeActionPayload {
            chaincode_proposal_payload: self.payload.clone(),
            action: Some(ChaincodeEndorsedAction {
                proposal_response_payload: prp,
                endorsements,
            }),
        };
        let tx = Transaction {
            actions: vec![TransactionAction {
                header: self.signature_header.clone(),
                payload: cap.encode_to_vec(),
            }],
        };
        Payload {
            header: Some(Header {
                channel_header: self.channel_header.clone(),
                signature_header: self.signature_header.clone(),
            }),
            data: tx.encode_to_vec(),
        }
        .encode_to_vec()
    }
}

/// `peer`'s endorsement of a proposal response payload: its serialized
/// identity and its signature over `prp ‖ identity`.
pub fn endorse(peer: &SigningIdentity, prp: &[u8]) -> Result<Endorsement, FixtureError> {
    let endorser = creator_bytes(peer);
    let mut signed = Vec::with_capacity(prp.len() + endorser.len());
    signed.extend_from_slice(prp);
    signed.extend_from_slice(&endorser);
    Ok(Endorsement {
        signature: peer.sign(&signed)?,
        endorser,
    })
}

/// The marshaled `Envelope` of `payload`, signed by `signer`.
pub fn sign_envelope(signer: &SigningIdentity, payload: Vec<u8>) -> Result<Vec<u8>, FixtureError> {
    let signature = signer.sign(&payload)?;
    Ok(Envelope { payload, signature }.encode_to_vec())
}

/// A built transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    /// Its tx id.
    pub tx_id: String,
    /// The marshaled, signed envelope (what goes into a block).
    pub envelope: Vec<u8>,
}

/// Builds a signed, endorsed transaction in one go.
#[derive(Debug)]
pub struct TxBuilder<'a> {
    creator: &'a SigningIdentity,
    channel_id: String,
    chaincode: String,
    args: Vec<Vec<u8>>,
    rwset: RwSet,
    endorsers: Vec<&'a SigningIdentity>,
}

impl<'a> TxBuilder<'a> {
    /// `creator` invokes `chaincode` on `channel_id`, args `["invoke"]`, no
    /// reads or writes, no endorsers yet.
    pub fn new(creator: &'a SigningIdentity, channel_id: &str, chaincode: &str) -> Self {
        TxBuilder {
            creator,
            channel_id: channel_id.into(),
            chaincode: chaincode.into(),
            args: vec![b"invoke".to_vec()],
            rwset: RwSet::new(),
            endorsers: Vec::new(),
        }
    }

    /// Sets the arguments (function first).
    pub fn args(mut self, args: &[&[u8]]) -> Self {
        self.args = args.iter().map(|a| a.to_vec()).collect();
        self
    }

    /// Sets the read-write set the endorsers return.
    pub fn rwset(mut self, rwset: RwSet) -> Self {
        self.rwset = rwset;
        self
    }

    /// Adds an endorser.
    pub fn endorsed_by(mut self, peer: &'a SigningIdentity) -> Self {
        self.endorsers.push(peer);
        self
    }

    /// Proposes, endorses and signs.
    pub fn build(self) -> Result<Tx, FixtureError> {
        let args: Vec<&[u8]> = self.args.iter().map(Vec::as_slice).collect();
        let proposal = Proposal::new(self.creator, &self.channel_id, &self.chaincode, &args)?;
        let prp = proposal.response_payload(self.rwset.to_bytes());
        let endorsements = self
            .endorsers
            .iter()
            .map(|p| endorse(p, &prp))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = sign_envelope(
            self.creator,
            proposal.transaction_payload(prp, endorsements),
        )?;
        Ok(Tx {
            tx_id: proposal.tx_id,
            envelope,
        })
    }
}
