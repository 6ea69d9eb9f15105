//! `qcss peer start`, `qcss tx invoke|query`, `qcss ledger ...`: run a peer
//! and talk to one through its Gateway.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use prost::Message;
use qcss_network::{MspId, SigningIdentity};
use qcss_peer::client::GatewayClient;
use qcss_peer::node::{PeerConfig, QSCC};
use qcss_proto::protos::TxValidationCode;

#[derive(Debug, Subcommand)]
pub(crate) enum PeerCommand {
    /// Run one peer (see docs/peer.md for the config file).
    Start(StartArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The peer's TOML configuration.
    #[arg(long)]
    config: PathBuf,
}

/// How to reach a peer and as whom.
///
/// `--peer`, `--identity` and `--channel` (or `QCSS_PEER`, `QCSS_IDENTITY`,
/// `QCSS_CHANNEL`) say it outright. Whatever is not given comes from the
/// network `qcss network up` wrote (`--dir`, default `qcss-net`): the
/// `--org`'s peer (default: the org `network up` prints, logistics), the
/// client identity `--as` (default `user1`) under `orgs/{org}/`, and the
/// network's channel. Explicit flags always win.
#[derive(Debug, Args, Clone)]
pub(crate) struct Conn {
    /// The peer's gRPC address (Gateway); default: the --org's peer.
    #[arg(long, env = "QCSS_PEER")]
    pub peer: Option<String>,
    /// The client's enrollment directory (cert.pem, key.pem, msp_id,
    /// tls-cert.pem, tls-key.pem, tls-ca.pem), as `qcss ca enroll` writes
    /// it; default: DIR/orgs/{org}/{as}.
    #[arg(long, env = "QCSS_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// TLS root certificates to trust for the peer (PEM); default: the
    /// identity's own tls-ca.pem.
    #[arg(long = "tls-root")]
    pub tls_roots: Vec<PathBuf>,
    /// The channel; default: the network's.
    #[arg(long, env = "QCSS_CHANNEL")]
    pub channel: Option<String>,
    /// The folder `qcss network up` wrote, where the defaults come from.
    #[arg(long = "dir", default_value = "qcss-net")]
    pub net_dir: PathBuf,
    /// The org whose peer and identity to use: its name (producer, lab,
    /// regulator, logistics, ...) or MSP id; default: logistics (the fourth
    /// org, or the last if fewer), as `network up` prints.
    #[arg(long)]
    pub org: Option<String>,
    /// The client identity to act as, a folder under the org's
    /// (`admin`, `user1`, `consumer1`, ...).
    #[arg(long = "as", default_value = "user1")]
    pub act_as: String,
}

/// A [`Conn`] with its defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub peer: String,
    pub identity: PathBuf,
    pub channel: String,
    /// The peer's web address, when it came from the network folder.
    pub web: Option<String>,
}

impl Conn {
    fn read(p: &Path) -> Result<Vec<u8>> {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    }

    /// The peer, identity and channel: as given, the rest from `--dir`'s
    /// network.json.
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        if let (Some(peer), Some(identity), Some(channel)) =
            (&self.peer, &self.identity, &self.channel)
        {
            return Ok(Resolved {
                peer: peer.clone(),
                identity: identity.clone(),
                channel: channel.clone(),
                web: None,
            });
        }
        let path = self.net_dir.join("network.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "give --peer, --identity and --channel (or QCSS_PEER, QCSS_IDENTITY, QCSS_CHANNEL), or --dir the folder `qcss network up` wrote: cannot read {}",
                path.display()
            )
        })?;
        let info: crate::network::NetworkInfo =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let org = match &self.org {
            Some(o) => info
                .orgs
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(o) || x.msp_id.eq_ignore_ascii_case(o))
                .ok_or_else(|| {
                    let names: Vec<&str> = info.orgs.iter().map(|x| x.name.as_str()).collect();
                    anyhow!(
                        "{} has no org {o:?}; its orgs: {}",
                        path.display(),
                        names.join(", ")
                    )
                })?,
            None => info
                .orgs
                .get(info.orgs.len().min(4).saturating_sub(1))
                .ok_or_else(|| anyhow!("{} lists no orgs", path.display()))?,
        };
        let identity = match &self.identity {
            Some(i) => i.clone(),
            None => {
                let dir = self.net_dir.join("orgs").join(&org.name).join(&self.act_as);
                if !dir.join("cert.pem").exists() {
                    let names: Vec<&str> = org.identities.keys().map(String::as_str).collect();
                    bail!(
                        "no identity {:?} in {} (--as): {} has {}",
                        self.act_as,
                        dir.display(),
                        org.name,
                        names.join(", ")
                    );
                }
                dir
            }
        };
        Ok(Resolved {
            web: (self.peer.is_none() && !org.web.is_empty()).then(|| org.web.clone()),
            peer: self.peer.clone().unwrap_or_else(|| org.peer.clone()),
            identity,
            channel: self.channel.clone().unwrap_or_else(|| info.channel.clone()),
        })
    }

    /// The channel (see [`Conn::resolve`]).
    pub(crate) fn channel(&self) -> Result<String> {
        Ok(self.resolve()?.channel)
    }

    /// Submits `f(arg)` to `cc` and waits for its commit: the committed
    /// transaction and its JSON result (null when empty). The contract's
    /// refusal, or an invalid commit, is the error.
    pub(crate) fn submit_json(
        &self,
        cc: &str,
        f: &str,
        arg: &[u8],
    ) -> Result<(qcss_peer::client::Committed, serde_json::Value)> {
        let c = tokio::runtime::Runtime::new()
            .context("starting the async runtime")?
            .block_on(async {
                let mut g = self.gateway().await?;
                g.submit(cc, f, &[arg])
                    .await
                    .map_err(|e| anyhow!("{f}: {}", e.contract_message()))
            })?;
        if c.code != TxValidationCode::Valid {
            bail!(
                "the {f} transaction {} is invalid: {}",
                c.tx_id,
                c.code.as_str_name()
            );
        }
        let v = if c.result.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&c.result).with_context(|| format!("{f}'s result"))?
        };
        Ok((c, v))
    }

    /// Evaluates `f(arg)` on the peer (nothing is ordered): its JSON result,
    /// or the contract's refusal as the error.
    pub(crate) fn evaluate_json(&self, cc: &str, f: &str, arg: &[u8]) -> Result<serde_json::Value> {
        let r = tokio::runtime::Runtime::new()
            .context("starting the async runtime")?
            .block_on(async {
                let mut g = self.gateway().await?;
                g.evaluate(cc, f, &[arg])
                    .await
                    .map_err(|e| anyhow!("{f}: {}", e.contract_message()))
            })?;
        serde_json::from_slice(&r).with_context(|| format!("{f}'s result"))
    }

    /// A Gateway client.
    pub(crate) async fn gateway(&self) -> Result<GatewayClient> {
        let (ch, r) = self.grpc().await?;
        Ok(GatewayClient::new(
            ch,
            Arc::new(load_signer(&r.identity)?),
            &r.channel,
        ))
    }

    /// An mTLS gRPC channel to the peer, with the identity's TLS key.
    pub(crate) async fn grpc(&self) -> Result<(tonic::transport::Channel, Resolved)> {
        let r = self.resolve()?;
        let roots = if self.tls_roots.is_empty() {
            vec![Self::read(&r.identity.join("tls-ca.pem"))?]
        } else {
            self.tls_roots
                .iter()
                .map(|p| Self::read(p))
                .collect::<Result<_>>()?
        };
        let cert = Self::read(&r.identity.join("tls-cert.pem"))?;
        let key = Self::read(&r.identity.join("tls-key.pem"))?;
        let ch = qcss_peer::client::connect(&r.peer, &roots, (&cert, &key))
            .await
            .map_err(|e| anyhow!(e))?;
        Ok((ch, r))
    }
}

/// A Gateway client at `peer` as the identity in `dir` (`msp_id`,
/// `cert.pem`, `key.pem`, and `tls-ca.pem`, `tls-cert.pem`, `tls-key.pem`
/// for mutual TLS), on `channel`.
pub(crate) async fn gateway_at(peer: &str, dir: &Path, channel: &str) -> Result<GatewayClient> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).with_context(|| format!("reading {}/{name}", dir.display()))
    };
    let (roots, cert, key) = (
        read("tls-ca.pem")?,
        read("tls-cert.pem")?,
        read("tls-key.pem")?,
    );
    let ch = qcss_peer::client::connect(peer, &[roots], (&cert, &key))
        .await
        .map_err(|e| anyhow!(e))?;
    Ok(GatewayClient::new(ch, Arc::new(load_signer(dir)?), channel))
}

/// The signing identity enrolled in `dir`.
fn load_signer(dir: &Path) -> Result<SigningIdentity> {
    let msp = std::fs::read_to_string(dir.join("msp_id"))
        .with_context(|| format!("cannot read {}/msp_id", dir.display()))?;
    SigningIdentity::load_dir(MspId(msp.trim().to_owned()), dir)
        .map_err(|e| anyhow!("identity {}: {e}", dir.display()))
}

#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Endorse, sign, submit and wait for commit; prints tx id, code, block.
    Invoke(CallArgs),
    /// Evaluate on the peer (nothing is ordered); prints the result.
    Query(CallArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    #[command(flatten)]
    conn: Conn,
    /// The chaincode.
    #[arg(long)]
    chaincode: String,
    /// The contract function.
    #[arg(long = "fn")]
    function: String,
    /// Its arguments, a JSON array of strings (each passed as one argument).
    #[arg(long, default_value = "[]")]
    args: String,
}

fn parse_args(json: &str) -> Result<Vec<Vec<u8>>> {
    let v: Vec<serde_json::Value> =
        serde_json::from_str(json).context("--args must be a JSON array")?;
    Ok(v.into_iter()
        .map(|a| match a {
            serde_json::Value::String(s) => s.into_bytes(),
            other => other.to_string().into_bytes(),
        })
        .collect())
}

fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => format!("0x{}", hex::encode(bytes)),
    }
}

pub(crate) fn run(cmd: PeerCommand) -> Result<()> {
    match cmd {
        PeerCommand::Start(a) => start(a),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

pub(crate) fn run_tx(cmd: TxCommand) -> Result<()> {
    runtime()?.block_on(async move {
        match cmd {
            TxCommand::Invoke(a) => {
                let args = parse_args(&a.args)?;
                let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                let mut g = a.conn.gateway().await?;
                let c = g
                    .submit(&a.chaincode, &a.function, &refs)
                    .await
                    .map_err(|e| anyhow!(e))?;
                println!("tx_id: {}", c.tx_id);
                println!("code: {}", c.code.as_str_name());
                println!("block: {}", c.block);
                println!("result: {}", printable(&c.result));
                if c.code != TxValidationCode::Valid {
                    bail!(
                        "transaction {} is invalid: {}",
                        c.tx_id,
                        c.code.as_str_name()
                    );
                }
                Ok(())
            }
            TxCommand::Query(a) => {
                let args = parse_args(&a.args)?;
                let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                let mut g = a.conn.gateway().await?;
                let r = g
                    .evaluate(&a.chaincode, &a.function, &refs)
                    .await
                    .map_err(|e| anyhow!(e))?;
                println!("{}", printable(&r));
                Ok(())
            }
        }
    })
}

#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Height and the hash of the newest block.
    Info(Conn),
    /// One block, as JSON (header, transactions with codes).
    Block(BlockArgs),
    /// One transaction: its block, position and validation code.
    Tx(TxArgs),
    /// Every write to a key (regulators, auditors and admins only).
    History(HistoryArgs),
    /// Re-check a stopped peer's whole chain and state hash offline.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BlockArgs {
    #[command(flatten)]
    conn: Conn,
    /// Block number.
    number: u64,
}

#[derive(Debug, Args)]
pub(crate) struct TxArgs {
    #[command(flatten)]
    conn: Conn,
    /// Transaction id.
    tx_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    conn: Conn,
    /// Namespace (chaincode name).
    #[arg(long)]
    chaincode: String,
    /// The key.
    key: String,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The peer's configuration (its data_dir is checked); the peer must be
    /// stopped.
    #[arg(long)]
    config: PathBuf,
}

async fn qscc(conn: &Conn, function: &str, args: &[&str]) -> Result<Vec<u8>> {
    let mut g = conn.gateway().await?;
    let channel = conn.channel()?;
    let mut all: Vec<&[u8]> = vec![channel.as_bytes()];
    all.extend(args.iter().map(|a| a.as_bytes()));
    g.evaluate(QSCC, function, &all)
        .await
        .map_err(|e| anyhow!(e))
}

pub(crate) fn run_ledger(cmd: LedgerCommand) -> Result<()> {
    if let LedgerCommand::Verify(a) = cmd {
        let cfg = PeerConfig::load(&a.config)?;
        let ledger = qcss_peer::ledger::Ledger::open(&cfg.data_dir.join("ledger"))
            .context("opening the ledger (is the peer still running?)")?;
        let report = ledger.verify()?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        if !report.is_consistent() {
            bail!("the ledger is NOT consistent");
        }
        return Ok(());
    }
    runtime()?.block_on(async move {
        match cmd {
            LedgerCommand::Info(c) => {
                let b = qscc(&c, "GetChainInfo", &[]).await?;
                let i = qcss_proto::common::BlockchainInfo::decode(b.as_slice())?;
                let s: serde_json::Value =
                    serde_json::from_slice(&qscc(&c, "GetStateHash", &[]).await?)?;
                println!(
                    "{}",
                    serde_json::json!({
                        "height": i.height,
                        "current_block_hash": hex::encode(&i.current_block_hash),
                        "previous_block_hash": hex::encode(&i.previous_block_hash),
                        "state_hash": s["state_hash"],
                    })
                );
            }
            LedgerCommand::Block(a) => {
                let b = qscc(&a.conn, "GetBlockByNumber", &[&a.number.to_string()]).await?;
                let block = qcss_proto::common::Block::decode(b.as_slice())?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&block_json(&block, &a.conn.channel()?))?
                );
            }
            LedgerCommand::Tx(a) => {
                let b = qscc(&a.conn, "GetTransactionByID", &[&a.tx_id]).await?;
                let t = qcss_proto::protos::ProcessedTransaction::decode(b.as_slice())?;
                let code = TxValidationCode::try_from(t.validation_code)
                    .map_or("?".to_owned(), |c| c.as_str_name().to_owned());
                let blk = qscc(&a.conn, "GetBlockByTxID", &[&a.tx_id]).await?;
                let block = qcss_proto::common::Block::decode(blk.as_slice())?;
                println!(
                    "{}",
                    serde_json::json!({
                        "tx_id": a.tx_id,
                        "block": block.header.map(|h| h.number),
                        "code": code,
                        "envelope_bytes": t.transaction_envelope.map(|e| e.encoded_len()),
                    })
                );
            }
            LedgerCommand::History(a) => {
                let b = qscc(&a.conn, "GetHistoryForKey", &[&a.chaincode, &a.key]).await?;
                let entries: Vec<serde_json::Value> = serde_json::from_slice(&b)?;
                let out: Vec<serde_json::Value> = entries
                    .into_iter()
                    .map(|mut e| {
                        if let Some(v) = e.get("value").cloned()
                            && let Ok(bytes) = serde_json::from_value::<Vec<u8>>(v)
                        {
                            e["value"] = serde_json::Value::String(printable(&bytes));
                        }
                        e
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            LedgerCommand::Verify(_) => unreachable!("handled above"),
        }
        Ok(())
    })
}

/// A block for people: number, hashes, and each transaction's id and code.
fn block_json(block: &qcss_proto::common::Block, channel: &str) -> serde_json::Value {
    let f = qcss_peer::node::filtered_block(block, channel);
    let h = block.header.clone().unwrap_or_default();
    serde_json::json!({
        "number": h.number,
        "previous_hash": hex::encode(&h.previous_hash),
        "data_hash": hex::encode(&h.data_hash),
        "hash": hex::encode(qcss_network::block::block_hash(block)),
        "transactions": f.filtered_transactions.iter().map(|t| serde_json::json!({
            "tx_id": t.txid,
            "code": TxValidationCode::try_from(t.tx_validation_code)
                .map_or("?".to_owned(), |c| c.as_str_name().to_owned()),
        })).collect::<Vec<_>>(),
    })
}

fn start(a: StartArgs) -> Result<()> {
    let cfg = PeerConfig::load(&a.config)?;
    runtime()?.block_on(async move {
        let (listener, ops, addr, ops_addr) =
            crate::orderer::bind_node(&cfg.listen, cfg.ops_listen.as_deref()).await?;
        println!(
            "qcss peer of {} listening on {addr}{}",
            cfg.msp_id,
            ops_addr
                .map(|a| format!(" (operations {a})"))
                .unwrap_or_default()
        );
        qcss_peer::node::run(cfg, listener, ops, crate::ca::shutdown_signal()).await?;
        Ok(())
    })
}
