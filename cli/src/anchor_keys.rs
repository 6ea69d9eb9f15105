//! `qcss anchor keyset …`: registering and rotating a consortium's anchor
//! keys when each org holds its key on its own machine (docs/anchor.md).
//!
//! - `propose` reads the public chain and writes an unsigned proposal: the
//!   consortium, the key version (0 registers, current + 1 rotates), the
//!   new keys and quorum, the digest to sign, and who must sign it (every
//!   new key for a registration; a quorum of the current keys for a
//!   rotation).
//! - `sign` recomputes the digest from the proposal's fields (the file's
//!   `digest` is only compared, never trusted), refuses a key that is not
//!   an expected signer, and adds its signature; the file is rewritten
//!   atomically.
//! - `submit` counts the valid signatures, names the missing signers when
//!   there are too few, checks that the chain's key set is still the one
//!   the proposal was made against, and submits `RegisterConsortium`.
//!
//! `qcss anchor register` (every key file in one place, as `network up`
//! does) is the same proposal, signed by every key at once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use qcss_anchor::Hash32;
use qcss_anchor::statement::{MAX_KEYS, keys_digest, majority};
use qcss_dpos::address::{Address, Keypair, Sig, verify};
use qcss_dpos::state::Consortium;
use qcss_dpos::tx::{KeySet, TxKind};

use crate::chain::read_key;
use crate::wallet::submit;

/// The proposal file's format tag.
const FORMAT: &str = "qcss-anchor-keyset-v1";
/// Largest proposal file read: 31 keys and 31 signatures take ~10 KB.
const MAX_PROPOSAL_BYTES: u64 = 64 * 1024;

/// `qcss anchor keyset …`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysetCommand {
    /// Write an unsigned registration or rotation proposal (reads the chain).
    Propose(ProposeArgs),
    /// Add one org's signature to a proposal (checks it first).
    Sign(SignArgs),
    /// Check the signatures and submit the proposal to the public chain.
    Submit(SubmitArgs),
}

/// `qcss anchor keyset propose`
#[derive(Debug, Args)]
pub(crate) struct ProposeArgs {
    /// A public-chain node's API address (host:port).
    #[arg(long)]
    pub node: String,
    /// The consortium id (64 hex; `GET /api/anchor/status` on a peer gives it).
    #[arg(long)]
    pub consortium: String,
    /// The new key set, one per org, in order: addresses (qcss1…) or 64 hex.
    #[arg(long = "key", required = true, num_args = 1..)]
    pub keys: Vec<String>,
    /// Signatures an anchor will need; default: a majority of the keys.
    #[arg(long)]
    pub quorum: Option<u16>,
    /// Where to write the proposal (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// `qcss anchor keyset sign`
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The proposal file (rewritten with the signature added).
    pub proposal: PathBuf,
    /// This org's anchor key file (for a rotation: its current, registered key).
    #[arg(long)]
    pub key: PathBuf,
    /// Optionally, a chain node: also check that the proposal's version and
    /// signers are the chain's current ones.
    #[arg(long)]
    pub node: Option<String>,
}

/// `qcss anchor keyset submit`
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The signed proposal file.
    pub proposal: PathBuf,
    /// A public-chain node's API address (host:port).
    #[arg(long)]
    pub node: String,
    /// The wallet key file that pays the fee.
    #[arg(long)]
    pub payer: PathBuf,
}

/// Runs `qcss anchor keyset …`.
pub(crate) fn run(cmd: KeysetCommand) -> Result<()> {
    match cmd {
        KeysetCommand::Propose(a) => propose(&a),
        KeysetCommand::Sign(a) => sign(&a),
        KeysetCommand::Submit(a) => submit_cmd(&a),
    }
}

/// Registration or rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// A new consortium: every new key signs (proof of possession).
    Registration,
    /// A new key set for a registered consortium: a quorum of the current keys signs.
    Rotation,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Registration => "registration",
            Kind::Rotation => "rotation",
        })
    }
}

/// One signer's signature over the proposal's digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Signature {
    /// Who signed (one of `signers`).
    pub signer: Address,
    /// Ed25519 over the digest, hex.
    pub sig: Sig,
}

/// A key-set proposal, as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Proposal {
    /// Always [`FORMAT`].
    pub format: String,
    /// Registration or rotation.
    pub kind: Kind,
    /// The consortium.
    pub consortium_id: Hash32,
    /// 0 for a registration, the chain's current version + 1 for a rotation.
    pub key_version: u64,
    /// The new keys, one per org.
    pub keys: Vec<Address>,
    /// The new quorum.
    pub quorum: u16,
    /// `keys_digest(consortium_id, key_version, keys, quorum)`: what is
    /// signed. Informational: `sign` and `submit` recompute it.
    pub digest: Hash32,
    /// Who signs: the new keys (registration) or the current ones (rotation).
    pub signers: Vec<Address>,
    /// How many of `signers` must sign: all (registration) or the current quorum.
    pub need: u16,
    /// The signatures so far.
    pub sigs: Vec<Signature>,
}

/// The consortium as the chain has it now; `None` if it is not registered.
pub(crate) fn on_chain(node: &str, consortium: &Hash32) -> Result<Option<Consortium>> {
    let (status, body) = crate::network_status::http(
        node,
        "GET",
        &format!("/v1/consortium/{consortium}"),
        None,
        (
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(10),
        ),
    )
    .with_context(|| format!("asking {node} for consortium {consortium}"))?;
    match status {
        404 => Ok(None),
        200 => {
            let v: qcss_dpos::api::ConsortiumView = serde_json::from_str(&body)
                .with_context(|| format!("{node}: unexpected consortium answer"))?;
            Ok(Some(v.consortium))
        }
        s => bail!("{node} answers HTTP {s} for consortium {consortium}: {body:.300}"),
    }
}

fn list(keys: &[Address]) -> String {
    keys.iter()
        .map(Address::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Proposal {
    /// A proposal for `keys` and `quorum`: a registration when `current` is
    /// `None`, else a rotation of `current`.
    pub(crate) fn new(
        consortium_id: Hash32,
        keys: Vec<Address>,
        quorum: u16,
        current: Option<&Consortium>,
    ) -> Result<Self> {
        let (kind, key_version, signers, need) = match current {
            None => (Kind::Registration, 0, keys.clone(), keys.len() as u16),
            Some(c) => (Kind::Rotation, c.key_version + 1, c.keys.clone(), c.quorum),
        };
        let mut p = Self {
            format: FORMAT.into(),
            kind,
            consortium_id,
            key_version,
            digest: Hash32([0; 32]),
            keys,
            quorum,
            signers,
            need,
            sigs: Vec::new(),
        };
        p.digest = p.computed_digest();
        p.check()?;
        Ok(p)
    }

    fn computed_digest(&self) -> Hash32 {
        let raw: Vec<[u8; 32]> = self.keys.iter().map(|k| k.0).collect();
        keys_digest(&self.consortium_id, self.key_version, &raw, self.quorum)
    }

    /// Checks the fields against the chain's rules and returns the digest
    /// recomputed from them (refusing a file whose `digest` differs).
    pub(crate) fn check(&self) -> Result<Hash32> {
        if self.format != FORMAT {
            bail!(
                "not a key-set proposal: format {:.40?}, expected {FORMAT:?}",
                self.format
            );
        }
        let n = self.keys.len();
        if n == 0 || n > MAX_KEYS {
            bail!("the proposal lists {n} keys; a key set has 1 … {MAX_KEYS}");
        }
        if self.quorum < majority(n) || usize::from(self.quorum) > n {
            bail!(
                "quorum {} for {n} keys: it must be a majority, {} … {n}",
                self.quorum,
                majority(n)
            );
        }
        let mut sorted = self.keys.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            bail!("key {} is listed twice", w[0]);
        }
        let m = self.signers.len();
        if m == 0 || m > MAX_KEYS || self.need == 0 || usize::from(self.need) > m {
            bail!(
                "the proposal needs {} of {m} signers: not a valid signing set",
                self.need
            );
        }
        match self.kind {
            Kind::Registration => {
                if self.key_version != 0 || self.signers != self.keys || usize::from(self.need) != n
                {
                    bail!(
                        "a registration is key version 0, signed by every new key; this proposal says version {}, {} of [{}]",
                        self.key_version,
                        self.need,
                        list(&self.signers)
                    );
                }
            }
            Kind::Rotation => {
                if self.key_version == 0 {
                    bail!("a rotation has key version 1 or more");
                }
            }
        }
        if self.sigs.len() > m {
            bail!("{} signatures for {m} signers", self.sigs.len());
        }
        let digest = self.computed_digest();
        if self.digest != digest {
            bail!(
                "the proposal's digest {} is not the digest of its fields ({digest}): the file was altered or is corrupt; do not sign or submit it",
                self.digest
            );
        }
        Ok(digest)
    }

    /// Reads and checks a proposal file.
    pub(crate) fn read(path: &Path) -> Result<(Self, Hash32)> {
        let bytes =
            crate::whole_file::read_bounded(path, MAX_PROPOSAL_BYTES, ": not a key-set proposal")?;
        let p: Proposal = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a key-set proposal", path.display()))?;
        let digest = p.check().with_context(|| format!("{}", path.display()))?;
        Ok((p, digest))
    }

    /// Adds `key`'s signature. `Ok(false)` if it had signed already.
    pub(crate) fn add_signature(&mut self, key: &Keypair) -> Result<bool> {
        let digest = self.check()?;
        let me = key.address();
        if !self.signers.contains(&me) {
            bail!(
                "key {me} is not one of the keys that sign this {} ({}): [{}]",
                self.kind,
                match self.kind {
                    Kind::Registration => "every new key",
                    Kind::Rotation => "the consortium's current keys",
                },
                list(&self.signers)
            );
        }
        if self
            .sigs
            .iter()
            .any(|s| s.signer == me && verify(&me, &digest, &s.sig))
        {
            return Ok(false);
        }
        self.sigs.retain(|s| s.signer != me);
        self.sigs.push(Signature {
            signer: me,
            sig: key.sign(&digest),
        });
        // In the signers' order, so the file reads the same whoever signs first.
        let order = |a: &Address| self.signers.iter().position(|s| s == a);
        let mut sigs = std::mem::take(&mut self.sigs);
        sigs.sort_by_key(|s| order(&s.signer));
        self.sigs = sigs;
        Ok(true)
    }

    /// The valid signatures as the chain wants them (index into `signers`),
    /// and the signers still missing.
    pub(crate) fn tally(&self, digest: &Hash32) -> (Vec<(u16, Sig)>, Vec<Address>) {
        let mut valid = Vec::new();
        let mut missing = Vec::new();
        for (i, who) in self.signers.iter().enumerate() {
            match self
                .sigs
                .iter()
                .find(|s| s.signer == *who && verify(who, digest, &s.sig))
            {
                Some(s) => valid.push((i as u16, s.sig)),
                None => missing.push(*who),
            }
        }
        (valid, missing)
    }

    /// Refuses a proposal made against another key set than the chain's now.
    pub(crate) fn check_against(&self, current: Option<&Consortium>) -> Result<()> {
        match (self.kind, current) {
            (Kind::Registration, None) => Ok(()),
            (Kind::Registration, Some(c)) => bail!(
                "consortium {} is already registered (key version {}, {} keys): propose a rotation instead",
                self.consortium_id,
                c.key_version,
                c.keys.len()
            ),
            (Kind::Rotation, None) => bail!(
                "consortium {} is not registered on this chain: propose a registration",
                self.consortium_id
            ),
            (Kind::Rotation, Some(c)) => {
                if c.key_version + 1 != self.key_version
                    || c.keys != self.signers
                    || c.quorum != self.need
                {
                    bail!(
                        "the chain's key set is not the one this rotation was proposed against: the chain is at key version {} ({} keys, quorum {}), the proposal replaces version {} ({} keys, quorum {}); propose again",
                        c.key_version,
                        c.keys.len(),
                        c.quorum,
                        self.key_version - 1,
                        self.signers.len(),
                        self.need
                    );
                }
                Ok(())
            }
        }
    }

    /// Checks the signatures and the chain, then submits. Returns the
    /// transaction's id.
    pub(crate) fn submit(&self, node: &str, payer: &Keypair) -> Result<Hash32> {
        let digest = self.check()?;
        let (sigs, missing) = self.tally(&digest);
        if sigs.len() < usize::from(self.need) {
            bail!(
                "{} of the {} needed signatures for this {}; missing (no valid signature): {}",
                sigs.len(),
                self.need,
                self.kind,
                list(&missing)
            );
        }
        self.check_against(on_chain(node, &self.consortium_id)?.as_ref())?;
        let ks = KeySet {
            consortium_id: self.consortium_id,
            keys: self.keys.clone(),
            quorum: self.quorum,
            sigs,
        };
        let out = submit(
            node,
            payer,
            TxKind::RegisterConsortium(Box::new(ks)),
            None,
            None,
            true,
        )
        .with_context(|| format!("submitting the {}", self.kind))?;
        Ok(out.id)
    }

    fn summary(&self) -> String {
        format!(
            "{} of consortium {}: key version {}, {} keys [{}], quorum {}",
            self.kind,
            self.consortium_id,
            self.key_version,
            self.keys.len(),
            list(&self.keys),
            self.quorum
        )
    }

    /// Writes the file: a new one, or the old one replaced atomically.
    fn write(&self, path: &Path, create_new: bool) -> Result<()> {
        let body = serde_json::to_vec_pretty(self)?;
        if create_new {
            crate::whole_file::write_new(path, &body)
        } else {
            crate::whole_file::replace(path, &body)
        }
    }
}

/// Parses a key given as an address (qcss1…) or 64 hex digits.
pub(crate) fn parse_key(text: &str) -> Result<Address> {
    let t = text.trim();
    t.parse::<Address>().or_else(|e| {
        let mut b = [0u8; 32];
        hex::decode_to_slice(t, &mut b)
            .map(|()| Address(b))
            .map_err(|_| anyhow!("key {t:.80}: neither an address ({e}) nor 64 hex digits"))
    })
}

fn parse_consortium(text: &str) -> Result<Hash32> {
    text.trim()
        .parse()
        .map_err(|_| anyhow!("--consortium must be 64 hex digits, not {text:.80?}"))
}

fn propose(a: &ProposeArgs) -> Result<()> {
    let consortium = parse_consortium(&a.consortium)?;
    if a.keys.len() > MAX_KEYS {
        bail!(
            "{} keys given; a key set has at most {MAX_KEYS}",
            a.keys.len()
        );
    }
    let keys = a
        .keys
        .iter()
        .map(|k| parse_key(k))
        .collect::<Result<Vec<_>>>()?;
    let quorum = a.quorum.unwrap_or_else(|| majority(keys.len()));
    let current = on_chain(&a.node, &consortium)?;
    let p = Proposal::new(consortium, keys, quorum, current.as_ref())?;
    p.write(&a.out, true)?;
    println!("{}", p.summary());
    println!(
        "digest {}; to be signed by {} of [{}]: each runs `qcss anchor keyset sign {} --key ORG-ANCHOR-KEY.json`",
        p.digest,
        p.need,
        list(&p.signers),
        a.out.display()
    );
    Ok(())
}

fn sign(a: &SignArgs) -> Result<()> {
    let key = read_key(&a.key)?;
    let (mut p, _) = Proposal::read(&a.proposal)?;
    if let Some(node) = &a.node {
        p.check_against(on_chain(node, &p.consortium_id)?.as_ref())?;
    }
    println!("signing the {}", p.summary());
    let added = p.add_signature(&key)?;
    if added {
        p.write(&a.proposal, false)?;
    }
    let digest = p.check()?;
    let (valid, missing) = p.tally(&digest);
    println!(
        "{} {}: {} of {} needed signatures{}",
        if added {
            "signed by"
        } else {
            "already signed by"
        },
        key.address(),
        valid.len(),
        p.need,
        if missing.is_empty() {
            String::new()
        } else {
            format!("; not yet signed by {}", list(&missing))
        }
    );
    Ok(())
}

fn submit_cmd(a: &SubmitArgs) -> Result<()> {
    let (p, _) = Proposal::read(&a.proposal)?;
    let payer = read_key(&a.payer)?;
    let id = p.submit(&a.node, &payer)?;
    println!("{} accepted in transaction {id}", p.summary());
    Ok(())
}

/// Registers `keys` (each signs: proof of possession) with `quorum`, all
/// key files being at hand (`qcss anchor register`, `network up`).
pub(crate) fn register_all(
    node: &str,
    consortium: Hash32,
    keys: &[Keypair],
    quorum: u16,
    payer: &Keypair,
) -> Result<()> {
    let mut p = Proposal::new(
        consortium,
        keys.iter().map(Keypair::address).collect(),
        quorum,
        None,
    )?;
    for k in keys {
        p.add_signature(k)?;
    }
    p.submit(node, payer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Keypair {
        Keypair::from_secret([n; 32])
    }

    #[test]
    fn signing_recomputes_the_digest_and_tallies_who_is_missing() {
        let keys: Vec<Keypair> = (1..=4).map(key).collect();
        let addrs: Vec<Address> = keys.iter().map(Keypair::address).collect();
        let c = Hash32([9; 32]);
        let mut p = Proposal::new(c, addrs.clone(), 3, None).unwrap();
        assert_eq!(p.kind, Kind::Registration);
        assert!(p.add_signature(&keys[0]).unwrap());
        assert!(!p.add_signature(&keys[0]).unwrap(), "idempotent");
        assert!(p.add_signature(&keys[2]).unwrap());
        let d = p.check().unwrap();
        let (valid, missing) = p.tally(&d);
        assert_eq!(valid.iter().map(|v| v.0).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(missing, [addrs[1], addrs[3]]);
        let err = p.submit("127.0.0.1:1", &key(9)).unwrap_err().to_string();
        assert!(err.contains("2 of the 4 needed"), "{err}");
        assert!(err.contains(&addrs[1].to_string()), "{err}");
        // A stranger cannot sign.
        let err = p.add_signature(&key(7)).unwrap_err().to_string();
        assert!(err.contains("is not one of the keys"), "{err}");
        // A changed field no longer matches the digest.
        let mut t = p.clone();
        t.quorum = 4;
        assert!(t.check().unwrap_err().to_string().contains("altered"));
        let mut t = p.clone();
        t.keys.swap(0, 1);
        t.signers.swap(0, 1);
        assert!(t.check().unwrap_err().to_string().contains("altered"));
        // Bad sets are refused before anything is signed.
        assert!(Proposal::new(c, addrs.clone(), 2, None).is_err());
        assert!(Proposal::new(c, vec![addrs[0], addrs[0]], 2, None).is_err());
    }

    #[test]
    fn a_rotation_is_signed_by_the_current_keys_at_the_next_version() {
        let old: Vec<Keypair> = (1..=3).map(key).collect();
        let new: Vec<Address> = (4..=6).map(|n| key(n).address()).collect();
        let current = Consortium {
            keys: old.iter().map(Keypair::address).collect(),
            quorum: 2,
            key_version: 4,
            last: None,
            rewards: Default::default(),
        };
        let mut p = Proposal::new(Hash32([1; 32]), new.clone(), 2, Some(&current)).unwrap();
        assert_eq!((p.kind, p.key_version, p.need), (Kind::Rotation, 5, 2));
        assert!(
            p.add_signature(&key(4)).is_err(),
            "a new key does not sign a rotation"
        );
        p.add_signature(&old[1]).unwrap();
        p.add_signature(&old[0]).unwrap();
        let d = p.check().unwrap();
        assert_eq!(
            d,
            keys_digest(
                &Hash32([1; 32]),
                5,
                &new.iter().map(|k| k.0).collect::<Vec<_>>(),
                2
            )
        );
        assert_eq!(p.tally(&d).0.len(), 2);
        p.check_against(Some(&current)).unwrap();
        let mut moved = current.clone();
        moved.key_version = 5;
        assert!(
            p.check_against(Some(&moved))
                .unwrap_err()
                .to_string()
                .contains("propose again")
        );
        assert!(p.check_against(None).is_err());
    }
}
