//! `qcss rewards …`: paying consumer rewards from the public chain's DApp
//! reward pool (dpos/README.md, "Consumer rewards"), with the consortium's
//! anchor keys signing each batch part on their own machines, as
//! `qcss anchor keyset` does for key sets.
//!
//! - The batch file (format `qcss-reward-batch-v1`) is written by whoever
//!   computed the epoch's rewards (the consortium's reward contract): chain
//!   id, consortium, epoch, part i of n, the sorted entries; `digest` and
//!   `sigs` may be absent.
//! - `sign` recomputes the digest from the fields (a `digest` in the file is
//!   only compared, never trusted), checks the entry rules, and adds the
//!   org's signature; with `--node` it also checks the chain id and that the
//!   key is one of the consortium's registered anchor keys. The file is
//!   rewritten atomically.
//! - `submit` maps the signatures onto the registered keys, names the
//!   missing ones when there are fewer than the quorum, and submits the
//!   `RewardBatch` transaction paid by `--payer`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use qcss_dpos::address::{Address, Keypair, Sig, verify};
use qcss_dpos::api::StatusView;
use qcss_dpos::hash::Hash32;
use qcss_dpos::rewards::{RewardBatch, RewardEntry, reward_digest};
use qcss_dpos::tx::TxKind;

use crate::anchor_keys::{Signature, on_chain};
use crate::chain::read_key;
use crate::wallet::{get_json, qcss, submit};

/// The batch file's format tag.
const FORMAT: &str = "qcss-reward-batch-v1";
/// Largest batch file read: 10,000 entries of ~110 bytes of JSON, plus
/// 31 signatures, with room to spare.
const MAX_BATCH_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Most entries read from a file (the chain's own limit is a genesis
/// parameter, 10,000 for the white paper; the chain refuses what is over it).
const MAX_FILE_ENTRIES: usize = 50_000;

/// `qcss rewards …`
#[derive(Debug, Subcommand)]
pub(crate) enum RewardsCommand {
    /// Add one org's signature to a batch file (recomputes the digest first).
    Sign(SignArgs),
    /// Check the signatures against the chain and submit the batch.
    Submit(SubmitArgs),
    /// Bind a public-chain address to a real-name consumer identity (both
    /// keys sign), so that its scans and valid evaluations earn rewards.
    Bind(BindArgs),
}

/// `qcss rewards bind`
#[derive(Debug, Args)]
pub(crate) struct BindArgs {
    #[command(flatten)]
    pub conn: crate::peer::Conn,
    /// The wallet key file of the address to bind (`qcss wallet new`).
    #[arg(long)]
    pub key: PathBuf,
}

/// The traceability contract's author id of an identity: SHA-256 of
/// `qcss-uces-author-v1 NUL channel NUL msp NUL certificate PEM` (the
/// contract's `uces::author_id`).
pub(crate) fn author_id(channel: &str, msp: &str, cert_pem: &str) -> String {
    let m = [
        b"qcss-uces-author-v1\0".as_slice(),
        channel.as_bytes(),
        b"\0",
        msp.as_bytes(),
        b"\0",
        cert_pem.trim().as_bytes(),
    ]
    .concat();
    hex::encode(qcss_network::signing::sha256(&m))
}

/// The `bind_reward_address` argument for the identity enrolled in
/// `identity` on `channel`, signed by `key` (traceability README, "Rewards").
pub(crate) fn binding_args(
    identity: &Path,
    channel: &str,
    key: &Keypair,
) -> Result<serde_json::Value> {
    let read = |name: &str| {
        std::fs::read_to_string(identity.join(name))
            .with_context(|| format!("reading {}/{name}", identity.display()))
    };
    let msp = read("msp_id")?;
    let cert = read("cert.pem")?;
    let address = hex::encode(key.address().0);
    let author = author_id(channel, msp.trim(), &cert);
    let message = format!("qcss-reward-binding-v1\n{channel}\n{author}\n{address}");
    let sig = key
        .sign_message(message.as_bytes())
        .ok_or_else(|| anyhow!("the binding message is too short to sign"))?;
    Ok(serde_json::json!({"address": address, "signature": hex::encode(sig.0)}))
}

fn bind(a: &BindArgs) -> Result<()> {
    let key = read_key(&a.key)?;
    let r = a.conn.resolve()?;
    let args = binding_args(&r.identity, &r.channel, &key)?.to_string();
    let (c, _) = a.conn.submit_json(
        crate::network::CONTRACT,
        "bind_reward_address",
        args.as_bytes(),
    )?;
    println!(
        "{} bound to the identity in {} (transaction {}): its first scans and valid evaluations earn rewards from now on",
        key.address(),
        r.identity.display(),
        c.tx_id
    );
    Ok(())
}

/// `qcss rewards sign`
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The batch file (rewritten with the signature and digest added).
    pub batch: PathBuf,
    /// This org's anchor key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Optionally, a chain node: also check the chain id and that the key
    /// is one of the consortium's registered anchor keys.
    #[arg(long)]
    pub node: Option<String>,
}

/// `qcss rewards submit`
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The signed batch file.
    #[arg(long)]
    pub batch: PathBuf,
    /// A public-chain node's API address (host:port).
    #[arg(long)]
    pub node: String,
    /// The wallet key file that pays the fee.
    #[arg(long)]
    pub payer: PathBuf,
}

/// A batch part, as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The public chain (the digest commits to it).
    pub chain_id: Hash32,
    /// The paying consortium.
    pub consortium_id: Hash32,
    /// The reward epoch.
    pub epoch: u64,
    /// This part, 0 … parts − 1.
    pub part: u32,
    /// Parts in the epoch.
    pub parts: u32,
    /// Sorted by address, no duplicates, amounts (base units) > 0.
    pub entries: Vec<RewardEntry>,
    /// The digest; informational (recomputed and compared).
    #[serde(default)]
    pub digest: Option<Hash32>,
    /// The signatures so far.
    #[serde(default)]
    pub sigs: Vec<Signature>,
}

impl BatchFile {
    /// Checks the fields (the chain's entry rules, the format, a digest in
    /// the file) and returns the digest recomputed from them.
    pub(crate) fn check(&self) -> Result<Hash32> {
        if self.format != FORMAT {
            bail!(
                "not a reward batch: format {:.40?}, expected {FORMAT:?}",
                self.format
            );
        }
        if self.parts == 0 || self.part >= self.parts {
            bail!(
                "part {} of {}: parts are numbered 0 … parts − 1",
                self.part,
                self.parts
            );
        }
        if self.entries.len() > MAX_FILE_ENTRIES {
            bail!(
                "{} entries; a part has at most {MAX_FILE_ENTRIES}",
                self.entries.len()
            );
        }
        for (i, w) in self.entries.windows(2).enumerate() {
            if w[0].address >= w[1].address {
                bail!(
                    "entry {}: {} — entries must be sorted by address with no duplicates",
                    i + 1,
                    w[1].address
                );
            }
        }
        if let Some(i) = self.entries.iter().position(|e| e.amount == 0) {
            bail!("entry {i}: amount 0; every amount must be positive");
        }
        if self.sigs.len() > 64 {
            bail!(
                "{} signatures: a consortium has at most 31 keys",
                self.sigs.len()
            );
        }
        let d = reward_digest(
            &self.chain_id,
            &self.consortium_id,
            self.epoch,
            self.part,
            self.parts,
            &self.entries,
        );
        if let Some(given) = self.digest
            && given != d
        {
            bail!(
                "the file's digest {given} is not the digest of its fields ({d}): the file was altered or is corrupt; do not sign or submit it"
            );
        }
        Ok(d)
    }

    /// Reads and checks a batch file (size-limited before parsing).
    pub(crate) fn read(path: &Path) -> Result<(Self, Hash32)> {
        let bytes = crate::whole_file::read_bounded(
            path,
            MAX_BATCH_FILE_BYTES,
            ": split the epoch into more parts",
        )?;
        let b: BatchFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a reward batch file", path.display()))?;
        let d = b.check().with_context(|| format!("{}", path.display()))?;
        Ok((b, d))
    }

    /// Adds `key`'s signature (and the digest). `Ok(false)` if it had signed.
    pub(crate) fn add_signature(&mut self, key: &Keypair) -> Result<bool> {
        let d = self.check()?;
        self.digest = Some(d);
        let me = key.address();
        if self
            .sigs
            .iter()
            .any(|s| s.signer == me && verify(&me, &d, &s.sig))
        {
            return Ok(false);
        }
        self.sigs.retain(|s| s.signer != me);
        self.sigs.push(Signature {
            signer: me,
            sig: key.sign(&d),
        });
        self.sigs.sort_by_key(|s| s.signer);
        Ok(true)
    }

    /// The valid signatures as the chain wants them (index into the
    /// registered `keys`) and the registered keys that have not signed.
    pub(crate) fn tally(&self, d: &Hash32, keys: &[Address]) -> (Vec<(u16, Sig)>, Vec<Address>) {
        let mut valid = Vec::new();
        let mut missing = Vec::new();
        for (i, who) in keys.iter().enumerate() {
            match self
                .sigs
                .iter()
                .find(|s| s.signer == *who && verify(who, d, &s.sig))
            {
                Some(s) => valid.push((i as u16, s.sig)),
                None => missing.push(*who),
            }
        }
        (valid, missing)
    }

    /// The transaction's payload with `sigs`.
    pub(crate) fn to_batch(&self, digest: Hash32, sigs: Vec<(u16, Sig)>) -> RewardBatch {
        RewardBatch {
            consortium_id: self.consortium_id,
            epoch: self.epoch,
            part: self.part,
            parts: self.parts,
            entries: self.entries.clone(),
            digest,
            sigs,
        }
    }

    fn summary(&self) -> String {
        let total: u128 = self.entries.iter().map(|e| u128::from(e.amount)).sum();
        format!(
            "reward batch of consortium {}: epoch {}, part {} of {}, {} entries, {}",
            self.consortium_id,
            self.epoch,
            self.part + 1,
            self.parts,
            self.entries.len(),
            qcss(u64::try_from(total).unwrap_or(u64::MAX))
        )
    }

    /// Writes the file atomically (temporary file, synced, renamed).
    fn write(&self, path: &Path) -> Result<()> {
        crate::whole_file::replace(path, &serde_json::to_vec_pretty(self)?)
    }
}

/// The registered anchor keys and quorum of the batch's consortium, after
/// checking that the node is on the batch's chain.
fn chain_keys(node: &str, b: &BatchFile) -> Result<(Vec<Address>, u16)> {
    let st: StatusView = get_json(node, "/v1/status")?;
    if st.chain_id != b.chain_id {
        bail!(
            "the batch is for chain {}, the node at {node} is on chain {}",
            b.chain_id,
            st.chain_id
        );
    }
    let c = on_chain(node, &b.consortium_id)?.ok_or_else(|| {
        anyhow!(
            "consortium {} has no anchor keys registered on this chain",
            b.consortium_id
        )
    })?;
    Ok((c.keys, c.quorum))
}

/// Runs `qcss rewards …`.
pub(crate) fn run(cmd: RewardsCommand) -> Result<()> {
    match cmd {
        RewardsCommand::Bind(a) => bind(&a),
        RewardsCommand::Sign(a) => {
            let key = read_key(&a.key)?;
            let (mut b, _) = BatchFile::read(&a.batch)?;
            if let Some(node) = &a.node {
                let (keys, _) = chain_keys(node, &b)?;
                if !keys.contains(&key.address()) {
                    bail!(
                        "key {} is not one of consortium {}'s registered anchor keys",
                        key.address(),
                        b.consortium_id
                    );
                }
            }
            println!("signing the {}", b.summary());
            let added = b.add_signature(&key)?;
            if added {
                b.write(&a.batch)?;
            }
            println!(
                "{} {}; digest {}; {} signatures in the file",
                if added {
                    "signed by"
                } else {
                    "already signed by"
                },
                key.address(),
                b.check()?,
                b.sigs.len()
            );
            Ok(())
        }
        RewardsCommand::Submit(a) => {
            let (b, d) = BatchFile::read(&a.batch)?;
            let payer = read_key(&a.payer)?;
            let (keys, quorum) = chain_keys(&a.node, &b)?;
            let (sigs, missing) = b.tally(&d, &keys);
            if sigs.len() < usize::from(quorum) {
                bail!(
                    "{} of the {quorum} needed signatures of the registered anchor keys; not signed: {}",
                    sigs.len(),
                    missing
                        .iter()
                        .map(Address::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            // The quorum is enough: extra signatures only cost verification.
            let sigs = sigs.into_iter().take(usize::from(quorum)).collect();
            let kind = TxKind::RewardBatch(Box::new(b.to_batch(d, sigs)));
            let out = submit(&a.node, &payer, kind, None, None, true)
                .with_context(|| format!("submitting the {}", b.summary()))?;
            match out.height {
                Some(h) => println!(
                    "{} paid in transaction {} at height {h}",
                    b.summary(),
                    out.id
                ),
                None => println!("{} paid in transaction {}", b.summary(), out.id),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: Vec<RewardEntry>) -> BatchFile {
        BatchFile {
            format: FORMAT.into(),
            chain_id: Hash32([1; 32]),
            consortium_id: Hash32([2; 32]),
            epoch: 4,
            part: 0,
            parts: 2,
            entries,
            digest: None,
            sigs: vec![],
        }
    }

    fn entries(n: u8) -> Vec<RewardEntry> {
        (1..=n)
            .map(|i| RewardEntry {
                address: Address([i; 32]),
                amount: u64::from(i) * 100,
            })
            .collect()
    }

    #[test]
    fn signing_recomputes_the_digest_and_submit_maps_signers_to_key_indexes() {
        let keys: Vec<Keypair> = (1..=3u8).map(|n| Keypair::from_secret([n; 32])).collect();
        let registered: Vec<Address> = keys.iter().map(Keypair::address).collect();
        let mut b = file(entries(3));
        assert!(b.add_signature(&keys[2]).unwrap());
        assert!(
            !b.add_signature(&keys[2]).unwrap(),
            "signing twice adds nothing"
        );
        let d = b.check().unwrap();
        assert_eq!(b.digest, Some(d));
        let (valid, missing) = b.tally(&d, &registered);
        assert_eq!(valid.iter().map(|v| v.0).collect::<Vec<_>>(), vec![2]);
        assert_eq!(missing, registered[..2].to_vec());
        // The transaction carries exactly the digest the chain recomputes.
        let tx = b.to_batch(d, valid);
        assert_eq!(tx.compute_digest(&b.chain_id), d);

        // An altered amount after signing: the file's digest no longer
        // matches and nobody signs or submits it.
        b.entries[0].amount += 1;
        assert!(b.check().is_err());
        assert!(b.add_signature(&keys[0]).is_err());
    }

    #[test]
    fn unsorted_duplicate_and_zero_entries_are_refused_before_signing() {
        let mut e = entries(3);
        e.swap(0, 1);
        assert!(file(e).check().is_err());
        let mut e = entries(3);
        e[2].address = e[1].address;
        assert!(file(e).check().is_err());
        let mut e = entries(3);
        e[1].amount = 0;
        assert!(file(e).check().is_err());
        let mut f = file(entries(1));
        f.part = 2;
        assert!(f.check().is_err());
        assert!(file(entries(3)).check().is_ok());
    }
}
