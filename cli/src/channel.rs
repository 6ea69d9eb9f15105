//! `qcss channel config` and `qcss channel update create|sign|submit`: read
//! the configuration in force and change it with a config update that a
//! majority of org admins sign, each on their own machine, by passing one
//! file around (like Fabric's `peer channel signconfigtx`):
//!
//! ```sh
//! qcss channel config --orderer o1:7050 --tls-root tls-ca.pem --identity admin1 \
//!     --channel ch --out current.json            # edit a copy into next.json
//! qcss channel update create --orderer ... --identity admin1 --channel ch \
//!     --config next.json --out update.json       # unsigned, sequence = current + 1
//! qcss channel update sign --update update.json --identity admin1   # each admin
//! qcss channel update submit --update update.json --orderer ... --identity admin1
//! ```
//!
//! One change needs no round of signatures: `qcss channel update crl` puts
//! an org's current CRLs (fetched from its CA) into the channel, signed by
//! that org's admin alone (see `qcss_orderer::crl_update` for why that is
//! safe, and docs/ca.md, "What happens when you revoke").

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use qcss_network::channel::ChannelConfig;
use qcss_network::orderer_client::OrdererClient;
use qcss_network::{MspId, SigningIdentity};
use qcss_orderer::config_update::{ConfigUpdate, build_update_envelope, sign_update};
use qcss_proto::common::Status;

#[derive(Debug, Subcommand)]
pub(crate) enum UpdateCommand {
    /// Write an unsigned update from the configuration in force to --config.
    Create(CreateArgs),
    /// Add the signature of the identity in --identity to an update file.
    Sign(SignArgs),
    /// Submit a signed update (optionally signing it first with --sign
    /// identities); prints the config block it became.
    Submit(SubmitArgs),
    /// Put your org's current CRLs (from its CA, or files) into the channel:
    /// one config update signed by your org's admin (--identity) alone.
    Crl(CrlArgs),
}

/// How to reach an orderer, as whom.
#[derive(Debug, Args)]
pub(crate) struct OrdererConn {
    /// An orderer's address (host:port).
    #[arg(long)]
    orderer: String,
    /// TLS root certificate(s) of the orderers, PEM; repeatable.
    #[arg(long, required = true)]
    tls_root: Vec<PathBuf>,
    /// Directory of the identity to sign envelopes with: cert.pem, key.pem,
    /// msp_id (as `qcss ca enroll` writes).
    #[arg(long)]
    identity: PathBuf,
    /// Directory with the TLS pair to connect with (tls-cert.pem,
    /// tls-key.pem); default: --identity.
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// The channel.
    #[arg(long)]
    channel: String,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    #[command(flatten)]
    conn: OrdererConn,
    /// Write the configuration here instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    conn: OrdererConn,
    /// The whole new configuration, JSON (its sequence is ignored).
    #[arg(long)]
    config: PathBuf,
    /// Where to write the update.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The update file; the signature is added to it.
    #[arg(long)]
    update: PathBuf,
    /// Directory of the admin identity that signs (cert.pem, key.pem, msp_id).
    #[arg(long)]
    identity: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    conn: OrdererConn,
    /// The update file.
    #[arg(long)]
    update: PathBuf,
    /// Also sign with the identity in this directory before submitting
    /// (not written back to the file); repeatable.
    #[arg(long)]
    sign: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CrlArgs {
    #[command(flatten)]
    conn: OrdererConn,
    /// Your org's CA (host:port): its CRLs (signing and TLS) are fetched, freshly signed.
    #[arg(long, required_unless_present = "crl", conflicts_with = "crl")]
    ca_url: Option<String>,
    /// The CA's TLS root certificate (its home's tls-ca-cert.pem).
    #[arg(long, requires = "ca_url")]
    ca_tls_root: Option<PathBuf>,
    /// CRL files (PEM) to publish instead of asking the CA; repeatable.
    #[arg(long)]
    crl: Vec<PathBuf>,
}

impl OrdererConn {
    /// A connection described by other commands' flags (`qcss ca revoke --update-channel`).
    pub(crate) fn new(
        orderer: String,
        tls_root: Vec<PathBuf>,
        identity: PathBuf,
        tls_dir: Option<PathBuf>,
        channel: String,
    ) -> Self {
        OrdererConn {
            orderer,
            tls_root,
            identity,
            tls_dir,
            channel,
        }
    }
}

/// `qcss channel config`.
pub(crate) fn config(a: ConfigArgs) -> Result<()> {
    let (_, cfg) = runtime()?.block_on(fetch_current(&a.conn))?;
    let text = serde_json::to_string_pretty(&cfg)?;
    match a.out {
        Some(out) => {
            write(&out, text.as_bytes())?;
            println!(
                "configuration of channel {} (sequence {}) written to {}",
                cfg.channel_id,
                cfg.sequence,
                out.display()
            );
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// `qcss channel update ...`.
pub(crate) fn update(cmd: UpdateCommand) -> Result<()> {
    match cmd {
        UpdateCommand::Create(a) => create(a),
        UpdateCommand::Sign(a) => sign(a),
        UpdateCommand::Submit(a) => submit(a),
        UpdateCommand::Crl(a) => runtime()?.block_on(crl(a)),
    }
}

fn create(a: CreateArgs) -> Result<()> {
    let next = ChannelConfig::from_json(&read(&a.config)?)?;
    let (block, current) = runtime()?.block_on(fetch_current(&a.conn))?;
    let u = ConfigUpdate::propose(&current, next);
    write(&a.out, &u.to_json())?;
    println!(
        "update of channel {} from sequence {} (config block {block}) to {} written to {}",
        u.channel_id,
        current.sequence,
        u.sequence,
        a.out.display()
    );
    print_changes(&current, &u.config);
    Ok(())
}

fn sign(a: SignArgs) -> Result<()> {
    let mut u = ConfigUpdate::from_json(&read(&a.update)?)?;
    let who = load_identity(&a.identity)?;
    sign_update(&mut u, &who)?;
    write(&a.update, &u.to_json())?;
    println!(
        "signed update of channel {} to sequence {} as {} ({}); {} signature(s) now",
        u.channel_id,
        u.sequence,
        who.cert.common_name,
        who.msp_id.0,
        u.signatures.len()
    );
    Ok(())
}

fn submit(a: SubmitArgs) -> Result<()> {
    let mut u = ConfigUpdate::from_json(&read(&a.update)?)?;
    if u.channel_id != a.conn.channel {
        bail!(
            "the update is for channel {}, not {}",
            u.channel_id,
            a.conn.channel
        );
    }
    for dir in &a.sign {
        sign_update(&mut u, &load_identity(dir)?)?;
    }
    let submitter = load_identity(&a.conn.identity)?;
    let (tx_id, block) = runtime()?.block_on(broadcast_update(&a.conn, &u, &submitter))?;
    println!(
        "config update {tx_id} committed in block {block}: channel {} is at sequence {}",
        u.channel_id, u.sequence
    );
    Ok(())
}

/// Broadcasts `update` as `submitter`; its tx id and the block it became.
async fn broadcast_update(
    conn: &OrdererConn,
    update: &ConfigUpdate,
    submitter: &SigningIdentity,
) -> Result<(String, String)> {
    let (env, tx_id) = build_update_envelope(update, submitter)?;
    let mut client = connect(conn).await?;
    let r = client
        .broadcast(vec![env])
        .await
        .map_err(|e| anyhow::anyhow!("broadcast failed: {}", e.message()))?
        .into_iter()
        .next()
        .context("the orderer closed the stream without an answer")?;
    let status = Status::try_from(r.status).unwrap_or(Status::Unknown);
    if status != Status::Success {
        bail!(
            "config update refused: {}: {}",
            status.as_str_name(),
            r.info
        );
    }
    let block = qcss_network::envelope::ordered_block(&r.info)
        .map_or_else(|| r.info.clone(), |b| b.to_string());
    Ok((tx_id, block))
}

/// `qcss channel update crl`.
async fn crl(a: CrlArgs) -> Result<()> {
    let crls = match (&a.ca_url, &a.ca_tls_root) {
        (Some(url), Some(root)) => {
            let admin = load_identity(&a.conn.identity)?;
            let mut ca = qcss_ca::client::CaClient::connect(url, &read(root)?, None).await?;
            let info = ca.info().await?;
            if info.msp_id != admin.msp_id.0 {
                bail!(
                    "the CA at {url} issues identities of {}, but --identity is an admin of {}",
                    info.msp_id,
                    admin.msp_id.0
                );
            }
            let r = ca.crl().await?;
            vec![r.crl_pem, r.tls_crl_pem]
        }
        (Some(_), None) => bail!("--ca-url needs --ca-tls-root (the CA's tls-ca-cert.pem)"),
        _ => a
            .crl
            .iter()
            .map(|p| {
                String::from_utf8(read(p)?).with_context(|| format!("{} is not text", p.display()))
            })
            .collect::<Result<_>>()?,
    };
    println!("{}", publish_crls(&a.conn, crls).await?);
    Ok(())
}

/// Puts `crls` (PEM) in place of the CRLs of --identity's org in the
/// channel: one config update, signed by that admin alone, submitted and
/// waited for. Checks locally first what the orderers will check (so the
/// admin reads why before anything is sent); if the channel already has
/// lists with these numbers, changes nothing. Returns what it did, in words.
pub(crate) async fn publish_crls(conn: &OrdererConn, crls: Vec<String>) -> Result<String> {
    let admin = load_identity(&conn.identity)?;
    let msp_id = admin.msp_id.0.clone();
    // Another admin's update may take the sequence first: build it again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (block, current) = fetch_current(conn).await?;
        let Some(i) = current.orgs.iter().position(|o| o.msp.msp_id == msp_id) else {
            bail!(
                "{msp_id} (of --identity) is not a member of channel {}",
                conn.channel
            );
        };
        let org = &current.orgs[i];
        let mut next = current.clone();
        next.orgs[i].msp.crls = crls.clone();
        if qcss_orderer::crl_update::already_in_force(org, &next.orgs[i]) {
            return Ok(format!(
                "channel {} already has these CRLs of {msp_id} (config block {block}); nothing to do",
                conn.channel
            ));
        }
        qcss_orderer::crl_update::check_crls(&current, org, &next.orgs[i])?;
        let mut u = ConfigUpdate::propose(&current, next);
        sign_update(&mut u, &admin)?;
        match broadcast_update(conn, &u, &admin).await {
            Ok((tx_id, at)) => {
                return Ok(format!(
                    "CRLs of {msp_id} in force on channel {} from block {at} (config update {tx_id}, sequence {})",
                    conn.channel, u.sequence
                ));
            }
            Err(e) if attempt < 3 && e.to_string().contains("but the channel is at sequence") => {
                tracing::info!(error = %e, "the channel moved on; building the update again");
            }
            Err(e) => return Err(e),
        }
    }
}

/// What an update changes, in a few lines for the admin to check.
fn print_changes(from: &ChannelConfig, to: &ChannelConfig) {
    let ids = |c: &ChannelConfig| -> Vec<String> {
        c.orgs.iter().map(|o| o.msp.msp_id.clone()).collect()
    };
    let (a, b) = (ids(from), ids(to));
    for o in b.iter().filter(|o| !a.contains(o)) {
        println!("  + org {o}");
    }
    for o in a.iter().filter(|o| !b.contains(o)) {
        println!("  - org {o}");
    }
    for c in &to.consenters {
        match from.consenters.iter().find(|o| o.id == c.id) {
            None => println!("  + consenter {} at {} ({})", c.id, c.address, c.msp_id),
            Some(o) if o != c => println!("  ~ consenter {} certificates", c.id),
            Some(_) => {}
        }
    }
    for c in &from.consenters {
        if !to.consenters.iter().any(|n| n.id == c.id) {
            println!("  - consenter {} at {}", c.id, c.address);
        }
    }
    if from.batch != to.batch {
        println!("  ~ batch parameters");
    }
    if from.policies != to.policies {
        println!("  ~ policies");
    }
}

async fn fetch_current(c: &OrdererConn) -> Result<(u64, ChannelConfig)> {
    let me = load_identity(&c.identity)?;
    let mut client = connect(c).await?;
    client
        .current_config(&me, &c.channel)
        .await
        .map_err(|e| anyhow::anyhow!("reading the configuration of {}: {e}", c.channel))
}

async fn connect(c: &OrdererConn) -> Result<OrdererClient> {
    let mut roots = Vec::new();
    for r in &c.tls_root {
        roots.push(read(r)?);
    }
    let tls = c.tls_dir.as_ref().unwrap_or(&c.identity);
    let cert = read(&tls.join("tls-cert.pem"))?;
    let key = read(&tls.join("tls-key.pem"))?;
    OrdererClient::connect(&c.orderer, &roots, &cert, &key)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

fn load_identity(dir: &Path) -> Result<SigningIdentity> {
    let msp = std::fs::read_to_string(dir.join("msp_id"))
        .with_context(|| format!("cannot read {}", dir.join("msp_id").display()))?;
    SigningIdentity::load_dir(MspId(msp.trim().to_string()), dir)
        .with_context(|| format!("cannot load identity from {}", dir.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

fn write(p: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))
}
