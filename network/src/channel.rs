//! The channel configuration: which orgs are members (their MSPs), who
//! orders (the consenters), how blocks are cut, and which policies govern
//! reading, writing and administration.
//!
//! QCSS keeps Fabric's *envelope* for configuration (a `CONFIG` transaction
//! in block 0 and in every config block) but not Fabric's deeply nested
//! `ConfigEnvelope` tree: the payload data is this compact [`ChannelConfig`]
//! as JSON. `proto/README.md` lists this as a deliberate difference.
//!
//! [`Channel`] is the live form: MSPs built, policies parsed, ready to answer
//! "may this signer write?" quickly.

use std::collections::BTreeMap;

use crate::msp::{Msp, MspConfig, MspError};
use crate::policy::{Policy, PolicyError, SignaturePolicy, SignerInfo};

/// How the leader cuts blocks. Defaults favour low latency.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Cut when this many envelopes are pending (Fabric's MaxMessageCount).
    pub max_message_count: u32,
    /// Cut when pending envelopes reach this many bytes (PreferredMaxBytes).
    pub preferred_max_bytes: u32,
    /// No envelope may be larger than this (AbsoluteMaxBytes).
    pub absolute_max_bytes: u32,
    /// Cut whatever is pending this long after the first envelope arrived (BatchTimeout), ms.
    pub batch_timeout_ms: u64,
    /// How far, in seconds and either way, a transaction's timestamp may be
    /// from the time the ordering leader stamps on its block. The orderer
    /// leaves out, and every validator marks invalid, a transaction outside
    /// it; endorsers refuse proposals outside it of their own clock. This is
    /// what makes a contract's "now" (the transaction timestamp) trustworthy
    /// to within this many seconds. QCSS extension; Fabric checks nothing.
    pub tx_time_window_secs: u64,
}

/// The largest AbsoluteMaxBytes a channel may set: Fabric's default gRPC
/// receive limit (100 MB). Every node sizes its gRPC decode limits from the
/// channel's AbsoluteMaxBytes, so this also bounds what a node will buffer.
pub const ABSOLUTE_MAX_BYTES_CEILING: u32 = 100 * 1024 * 1024;

/// Room for what wraps an envelope in a gRPC request (Gateway's
/// `SubmitRequest`: tx id, channel id) above AbsoluteMaxBytes.
pub const GRPC_ENVELOPE_OVERHEAD: usize = 64 * 1024;

/// The largest block any channel can cut, as a gRPC message: the cutter
/// adds an envelope (at most AbsoluteMaxBytes) to a batch still under
/// PreferredMaxBytes (at most AbsoluteMaxBytes), so a block's envelopes stay
/// under twice the ceiling, plus room for header and metadata. Clients that
/// receive blocks (Deliver, block repair) decode no more than this; a
/// stream may cross a config block that raises AbsoluteMaxBytes, so they
/// use the ceiling rather than the configuration they started with.
pub const GRPC_BLOCK_LIMIT: usize =
    2 * (ABSOLUTE_MAX_BYTES_CEILING as usize + GRPC_ENVELOPE_OVERHEAD);

/// Default of [`BatchConfig::tx_time_window_secs`]: clocks of consortium
/// nodes are NTP-synchronised to well under a second, and a transaction
/// normally reaches a block within a few seconds of its proposal.
pub const DEFAULT_TX_TIME_WINDOW_SECS: u64 = 60;

impl BatchConfig {
    /// Whether a transaction timestamp of `tx_secs` (seconds since the
    /// epoch) is within [`Self::tx_time_window_secs`] of `reference_ms`
    /// (milliseconds since the epoch); `Err` says by how much it is not.
    pub fn check_tx_time(&self, tx_secs: i64, reference_ms: u64) -> Result<(), String> {
        let reference = i128::from(reference_ms) / 1000;
        let skew = i128::from(tx_secs) - reference;
        if skew.unsigned_abs() <= u128::from(self.tx_time_window_secs) {
            return Ok(());
        }
        Err(format!(
            "transaction timestamp {tx_secs} is {} s {} the reference time {reference} \
             (allowed: {} s either way)",
            skew.unsigned_abs(),
            if skew < 0 { "before" } else { "after" },
            self.tx_time_window_secs
        ))
    }

    /// The gRPC decode limit of a service whose largest legitimate request
    /// is one envelope (Broadcast, Deliver, Gateway, Endorser): the
    /// channel's AbsoluteMaxBytes plus [`GRPC_ENVELOPE_OVERHEAD`].
    pub fn grpc_message_limit(&self) -> usize {
        self.absolute_max_bytes as usize + GRPC_ENVELOPE_OVERHEAD
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_message_count: 500,
            preferred_max_bytes: 2 * 1024 * 1024,
            absolute_max_bytes: 10 * 1024 * 1024,
            batch_timeout_ms: 50,
            tx_time_window_secs: DEFAULT_TX_TIME_WINDOW_SECS,
        }
    }
}

/// One ordering node of the channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consenter {
    /// Raft node id (unique, > 0).
    pub id: u64,
    /// gRPC address other nodes and clients use (host:port).
    pub address: String,
    /// The org running it.
    pub msp_id: String,
    /// Its TLS certificate, PEM: Raft traffic is accepted only from these.
    pub tls_cert_pem: String,
    /// Its signing certificate, PEM: block signatures must come from these.
    pub identity_cert_pem: String,
}

/// A member organisation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    /// Its MSP.
    pub msp: MspConfig,
    /// Its peers' gRPC addresses (used by Gateways to reach endorsers).
    #[serde(default)]
    pub peer_endpoints: Vec<String>,
    /// The organisation's name as people read it (the consumer page shows
    /// it instead of the MSP id); none: pages show the MSP id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<DisplayName>,
    /// The org's X25519 public key for confidential MDSS files, 64 hex
    /// digits: uploaders wrap a file's key to it, so that the org's members
    /// holding the secret can read the file (`docs/files.md`). Published
    /// here, where a change needs the channel's Admins policy, so no org can
    /// substitute another's key. None: the org cannot be named a reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_key: Option<String>,
}

/// The longest display name accepted, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// An organisation's name in English and Chinese; at least one is given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayName {
    /// English name, e.g. `Suzhou Dongshan Loquat Co.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
    /// Chinese name, e.g. `苏州东山枇杷有限公司`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zh: Option<String>,
}

impl DisplayName {
    /// The name in Chinese (`zh = true`) or English, else the other one.
    pub fn pick(&self, zh: bool) -> Option<&str> {
        let (first, second) = if zh {
            (&self.zh, &self.en)
        } else {
            (&self.en, &self.zh)
        };
        first.as_deref().or(second.as_deref())
    }

    /// Refuses an empty name, a name with control characters or
    /// surrounding spaces, or one longer than [`MAX_DISPLAY_NAME_CHARS`].
    fn check(&self, msp_id: &str) -> Result<(), ChannelError> {
        if self.en.is_none() && self.zh.is_none() {
            return Err(ChannelError::Invalid(format!(
                "org {msp_id}: display_name needs en or zh"
            )));
        }
        for (lang, name) in [("en", &self.en), ("zh", &self.zh)] {
            let Some(name) = name else { continue };
            let n = name.chars().count();
            if n == 0
                || n > MAX_DISPLAY_NAME_CHARS
                || name.trim() != name
                || name.chars().any(char::is_control)
            {
                return Err(ChannelError::Invalid(format!(
                    "org {msp_id}: display_name.{lang} must be 1 to {MAX_DISPLAY_NAME_CHARS} characters, \
                     without control characters or surrounding spaces"
                )));
            }
        }
        Ok(())
    }
}

/// Channel-level policies, as policy strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelPolicies {
    /// Who may read blocks (Deliver).
    pub readers: String,
    /// Who may submit transactions (Broadcast).
    pub writers: String,
    /// Who must sign configuration updates.
    pub admins: String,
    /// Default endorsement policy for chaincode.
    pub endorsement: String,
    /// Who must approve a chaincode definition before it can be committed.
    pub lifecycle: String,
}

impl Default for ChannelPolicies {
    fn default() -> Self {
        ChannelPolicies {
            readers: "ANY Readers".into(),
            writers: "ANY Writers".into(),
            admins: "MAJORITY Admins".into(),
            endorsement: "MAJORITY Endorsement".into(),
            lifecycle: "MAJORITY Endorsement".into(),
        }
    }
}

/// The whole channel configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The channel name.
    pub channel_id: String,
    /// Increases by one with every configuration change.
    #[serde(default)]
    pub sequence: u64,
    /// Member organisations.
    pub orgs: Vec<OrgConfig>,
    /// Ordering nodes.
    pub consenters: Vec<Consenter>,
    /// Block cutting.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Policies.
    #[serde(default)]
    pub policies: ChannelPolicies,
}

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A structural problem (empty channel id, duplicate org, bad consenter ...).
    #[error("channel config: {0}")]
    Invalid(String),
    /// An org's MSP does not build.
    #[error(transparent)]
    Msp(#[from] MspError),
    /// A policy does not parse.
    #[error("channel config policy {name}: {source}")]
    Policy {
        /// Which policy.
        name: &'static str,
        /// The parse error.
        source: PolicyError,
    },
    /// The JSON does not decode.
    #[error("channel config JSON: {0}")]
    Json(String),
}

impl ChannelConfig {
    /// Decodes the JSON form.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ChannelError> {
        serde_json::from_slice(bytes).map_err(|e| ChannelError::Json(e.to_string()))
    }

    /// The canonical JSON form (what goes into config blocks).
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The org-level sub-policies implicit-meta policies refer to, as Fabric's
/// defaults: Readers = any member, Writers = admins and clients, Admins =
/// admins, Endorsement = peers.
fn org_policies(msp_id: &str) -> Result<BTreeMap<String, SignaturePolicy>, PolicyError> {
    let p = |s: String| SignaturePolicy::parse(&s);
    Ok(BTreeMap::from([
        ("Readers".to_string(), p(format!("OR('{msp_id}.member')"))?),
        (
            "Writers".to_string(),
            p(format!("OR('{msp_id}.admin', '{msp_id}.client')"))?,
        ),
        ("Admins".to_string(), p(format!("OR('{msp_id}.admin')"))?),
        (
            "Endorsement".to_string(),
            p(format!("OR('{msp_id}.peer')"))?,
        ),
    ]))
}

/// A consenter's TLS and signing certificates, as DER.
type ConsenterDer = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The live channel: MSPs and parsed policies.
#[derive(Debug)]
pub struct Channel {
    config: ChannelConfig,
    msps: BTreeMap<String, Msp>,
    org_ids: Vec<String>,
    org_policies: BTreeMap<String, BTreeMap<String, SignaturePolicy>>,
    readers: Policy,
    writers: Policy,
    admins: Policy,
    endorsement: Policy,
    lifecycle: Policy,
    /// DER of each consenter's (TLS, signing) certificates, parallel to
    /// `config.consenters`: parsed once here, since every Raft call and every
    /// block signature check looks a consenter up.
    consenter_der: Vec<ConsenterDer>,
}

impl Channel {
    /// Builds and checks a channel from its configuration.
    pub fn new(config: ChannelConfig) -> Result<Self, ChannelError> {
        let bad = |m: String| Err(ChannelError::Invalid(m));
        if config.channel_id.is_empty()
            || !config
                .channel_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return bad(format!(
                "channel id {:?} must be lowercase letters, digits, '-' or '.'",
                config.channel_id
            ));
        }
        if config.orgs.is_empty() {
            return bad("no member orgs".into());
        }
        let mut msps = BTreeMap::new();
        let mut org_policies_map = BTreeMap::new();
        for org in &config.orgs {
            let id = org.msp.msp_id.clone();
            if msps.contains_key(&id) {
                return bad(format!("org {id} listed twice"));
            }
            if let Some(name) = &org.display_name {
                name.check(&id)?;
            }
            if let Some(key) = &org.file_key
                && (key.len() != 64
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            {
                return bad(format!(
                    "org {id}: file_key must be 64 lower-case hex digits (an X25519 public key)"
                ));
            }
            msps.insert(id.clone(), Msp::new(org.msp.clone())?);
            org_policies_map.insert(
                id.clone(),
                org_policies(&id).map_err(|source| ChannelError::Policy {
                    name: "org",
                    source,
                })?,
            );
        }
        let mut ids = std::collections::BTreeSet::new();
        for c in &config.consenters {
            if c.id == 0 || !ids.insert(c.id) {
                return bad(format!("consenter id {} is zero or repeated", c.id));
            }
            if !msps.contains_key(&c.msp_id) {
                return bad(format!(
                    "consenter {} belongs to unknown org {}",
                    c.id, c.msp_id
                ));
            }
        }
        if config.consenters.is_empty() {
            return bad("no consenters".into());
        }
        let b = &config.batch;
        if b.max_message_count == 0
            || b.preferred_max_bytes == 0
            || b.absolute_max_bytes < b.preferred_max_bytes
            || b.batch_timeout_ms == 0
            || b.tx_time_window_secs == 0
        {
            return bad("batch: counts, timeout and tx_time_window_secs must be > 0 and absolute_max_bytes >= preferred_max_bytes".into());
        }
        if b.absolute_max_bytes > ABSOLUTE_MAX_BYTES_CEILING {
            return bad(format!(
                "batch: absolute_max_bytes {} is over the ceiling of {ABSOLUTE_MAX_BYTES_CEILING} bytes",
                b.absolute_max_bytes
            ));
        }
        let parse = |name: &'static str, s: &str| {
            Policy::parse(s).map_err(|source| ChannelError::Policy { name, source })
        };
        let p = &config.policies;
        // A certificate that does not parse simply matches nothing, as before.
        let der = |pem: &str| crate::identity::certs_from_pem(pem.as_bytes()).unwrap_or_default();
        let consenter_der = config
            .consenters
            .iter()
            .map(|c| (der(&c.tls_cert_pem), der(&c.identity_cert_pem)))
            .collect();
        Ok(Channel {
            consenter_der,
            readers: parse("readers", &p.readers)?,
            writers: parse("writers", &p.writers)?,
            admins: parse("admins", &p.admins)?,
            endorsement: parse("endorsement", &p.endorsement)?,
            lifecycle: parse("lifecycle", &p.lifecycle)?,
            org_ids: msps.keys().cloned().collect(),
            org_policies: org_policies_map,
            msps,
            config,
        })
    }

    /// The configuration this was built from.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// The channel id.
    pub fn id(&self) -> &str {
        &self.config.channel_id
    }

    /// The MSP of a member org.
    pub fn msp(&self, msp_id: &str) -> Option<&Msp> {
        self.msps.get(msp_id)
    }

    /// All member MSP ids.
    pub fn org_ids(&self) -> &[String] {
        &self.org_ids
    }

    fn eval(&self, p: &Policy, signers: &[SignerInfo]) -> bool {
        p.evaluate(signers, &self.org_ids, &self.org_policies)
    }

    /// Whether the signers satisfy the Readers policy.
    pub fn readers_ok(&self, signers: &[SignerInfo]) -> bool {
        self.eval(&self.readers, signers)
    }
    /// Whether the signers satisfy the Writers policy.
    pub fn writers_ok(&self, signers: &[SignerInfo]) -> bool {
        self.eval(&self.writers, signers)
    }
    /// Whether the signers satisfy the Admins policy.
    pub fn admins_ok(&self, signers: &[SignerInfo]) -> bool {
        self.eval(&self.admins, signers)
    }
    /// Whether the signers satisfy the channel's default endorsement policy.
    pub fn endorsement_ok(&self, signers: &[SignerInfo]) -> bool {
        self.eval(&self.endorsement, signers)
    }
    /// Whether the signers satisfy the lifecycle policy.
    pub fn lifecycle_ok(&self, signers: &[SignerInfo]) -> bool {
        self.eval(&self.lifecycle, signers)
    }
    /// Evaluates any policy in this channel's context (implicit-meta policies
    /// refer to the member orgs' sub-policies).
    pub fn evaluate(&self, p: &Policy, signers: &[SignerInfo]) -> bool {
        self.eval(p, signers)
    }

    /// The consenter whose TLS certificate is `tls_cert_der`, if any.
    pub fn consenter_by_tls(&self, tls_cert_der: &[u8]) -> Option<&Consenter> {
        self.consenter_where(|(tls, _)| tls.iter().any(|d| d == tls_cert_der))
    }

    /// The consenter whose signing certificate is `cert_der`, if any.
    pub fn consenter_by_identity(&self, cert_der: &[u8]) -> Option<&Consenter> {
        self.consenter_where(|(_, id)| id.iter().any(|d| d == cert_der))
    }

    fn consenter_where(&self, matches: impl Fn(&ConsenterDer) -> bool) -> Option<&Consenter> {
        self.consenter_der
            .iter()
            .position(matches)
            .and_then(|i| self.config.consenters.get(i))
    }

    /// Every member org's TLS roots and CRLs (PEM), for building TLS configs.
    pub fn tls_roots_and_crls(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut roots = Vec::new();
        let mut crls = Vec::new();
        for o in &self.config.orgs {
            roots.extend(o.msp.tls_root_certs.iter().map(|s| s.as_bytes().to_vec()));
            crls.extend(o.msp.crls.iter().map(|s| s.as_bytes().to_vec()));
        }
        (roots, crls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certgen::CertAuthority;

    fn config(display_name: Option<DisplayName>) -> ChannelConfig {
        let ca = CertAuthority::new_root("ca", "org1", 30).unwrap();
        ChannelConfig {
            channel_id: "qcss".into(),
            sequence: 0,
            orgs: vec![OrgConfig {
                msp: MspConfig {
                    msp_id: "Org1MSP".into(),
                    root_certs: vec![ca.cert_pem().to_owned()],
                    ..Default::default()
                },
                peer_endpoints: vec![],
                display_name,
                file_key: None,
            }],
            consenters: vec![Consenter {
                id: 1,
                address: "127.0.0.1:7050".into(),
                msp_id: "Org1MSP".into(),
                tls_cert_pem: String::new(),
                identity_cert_pem: String::new(),
            }],
            batch: BatchConfig::default(),
            policies: ChannelPolicies::default(),
        }
    }

    fn name(en: Option<&str>, zh: Option<&str>) -> Option<DisplayName> {
        Some(DisplayName {
            en: en.map(str::to_owned),
            zh: zh.map(str::to_owned),
        })
    }

    #[test]
    fn display_names_are_optional_bounded_and_round_trip() {
        // None: the JSON is what it was before display names existed.
        let plain = config(None);
        assert!(Channel::new(plain.clone()).is_ok());
        assert!(
            !String::from_utf8(plain.to_json())
                .unwrap()
                .contains("display_name")
        );
        let named = config(name(Some("Loquat Co."), Some("枇杷公司")));
        let ch = Channel::new(named.clone()).unwrap();
        let back = ChannelConfig::from_json(&named.to_json()).unwrap();
        assert_eq!(back, named);
        let n = ch.config().orgs[0].display_name.as_ref().unwrap();
        assert_eq!(
            (n.pick(false), n.pick(true)),
            (Some("Loquat Co."), Some("枇杷公司"))
        );
        let only_zh = name(None, Some("枇杷公司")).unwrap();
        assert_eq!(only_zh.pick(false), Some("枇杷公司"), "the other language");

        let long = "枇".repeat(MAX_DISPLAY_NAME_CHARS + 1);
        for bad in [
            name(None, None),
            name(Some(""), None),
            name(Some(" padded"), None),
            name(None, Some("line\nbreak")),
            name(None, Some(&long)),
        ] {
            let e = Channel::new(config(bad.clone())).unwrap_err();
            assert!(e.to_string().contains("display_name"), "{bad:?}: {e}");
        }
        let longest = "枇".repeat(MAX_DISPLAY_NAME_CHARS);
        assert!(Channel::new(config(name(None, Some(&longest)))).is_ok());
        assert!(
            ChannelConfig::from_json(br#"{"channel_id":"qcss","orgs":[{"msp":{"msp_id":"A","root_certs":[]},"display_name":{"fr":"x"}}],"consenters":[]}"#).is_err(),
            "unknown languages are refused"
        );
    }

    #[test]
    fn file_keys_are_64_lower_hex_digits() {
        let mut c = config(None);
        c.orgs[0].file_key = Some("ab".repeat(32));
        let ch = Channel::new(c.clone()).unwrap();
        assert_eq!(ch.config().orgs[0].file_key, c.orgs[0].file_key);
        assert_eq!(ChannelConfig::from_json(&c.to_json()).unwrap(), c);
        for bad in [
            "ab".repeat(31),
            "AB".repeat(32),
            "zz".repeat(32),
            String::new(),
        ] {
            c.orgs[0].file_key = Some(bad.clone());
            let e = Channel::new(c.clone()).unwrap_err();
            assert!(e.to_string().contains("file_key"), "{bad:?}: {e}");
        }
    }
}
