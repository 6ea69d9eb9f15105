//! `qcss chaincode package|install|approve|commit|list`: the chaincode
//! lifecycle through a peer (see docs/lifecycle.md).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use qcss_chaincode::{ChaincodePackage, CodeHash};
use qcss_peer::lifecycle::{
    Definition, LIFECYCLE_NAMESPACE, MAX_PACKAGE_BYTES, approve_args, commit_args,
    decode_definitions, decode_installed, decode_installed_list, install_args,
    query_definitions_args, query_installed_args,
};
use qcss_proto::protos::TxValidationCode;

use crate::peer::Conn;

#[derive(Debug, Subcommand)]
pub(crate) enum ChaincodeCommand {
    /// Wrap a wasm module into a package file (name, version, policy).
    Package(PackageArgs),
    /// Install a package on the peer (an admin of the peer's org).
    Install(InstallArgs),
    /// Approve a definition for your org (an admin; endorsed by your peer).
    Approve(DefinitionArgs),
    /// Commit a definition approved by enough orgs.
    Commit(DefinitionArgs),
    /// List the committed definitions and the packages installed on the peer.
    List(Conn),
}

#[derive(Debug, Args)]
pub(crate) struct PackageArgs {
    /// Chaincode name.
    #[arg(long)]
    name: String,
    /// Version label.
    #[arg(long)]
    version: String,
    /// The wasm module.
    #[arg(long)]
    wasm: PathBuf,
    /// Suggested endorsement policy (empty: the channel's default).
    #[arg(long, default_value = "")]
    policy: String,
    /// Where to write the package.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    #[command(flatten)]
    conn: Conn,
    /// The package file (from `qcss chaincode package`).
    package: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct DefinitionArgs {
    #[command(flatten)]
    conn: Conn,
    /// Chaincode name.
    #[arg(long)]
    name: String,
    /// Version label.
    #[arg(long)]
    version: String,
    /// Sequence: 1 for the first definition, +1 per upgrade.
    #[arg(long)]
    sequence: u64,
    /// The code hash (hex SHA-256 of the wasm) ...
    #[arg(long, conflicts_with = "package")]
    code_hash: Option<String>,
    /// ... or the package file to take it from.
    #[arg(long)]
    package: Option<PathBuf>,
    /// Endorsement policy (empty: the channel's default).
    #[arg(long, default_value = "")]
    policy: String,
}

impl DefinitionArgs {
    fn definition(&self) -> Result<Definition> {
        let code_hash = match (&self.code_hash, &self.package) {
            (Some(h), _) => h
                .parse::<CodeHash>()
                .map_err(|e| anyhow!("--code-hash: {e}"))?,
            (None, Some(p)) => read_package(p)?.code_hash(),
            (None, None) => bail!("give --code-hash or --package"),
        };
        Ok(Definition {
            name: self.name.clone(),
            version: self.version.clone(),
            sequence: self.sequence,
            code_hash,
            endorsement_policy: self.policy.clone(),
        })
    }
}

fn read_package(p: &PathBuf) -> Result<ChaincodePackage> {
    let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
    ChaincodePackage::from_bytes(&bytes, MAX_PACKAGE_BYTES)
        .map_err(|e| anyhow!("{}: {e}", p.display()))
}

fn done(what: &str, c: &qcss_peer::client::Committed) -> Result<()> {
    println!(
        "{what}: tx {} {} in block {}",
        c.tx_id,
        c.code.as_str_name(),
        c.block
    );
    if c.code != TxValidationCode::Valid {
        bail!(
            "{what} transaction {} is invalid: {}",
            c.tx_id,
            c.code.as_str_name()
        );
    }
    Ok(())
}

pub(crate) fn run(cmd: ChaincodeCommand) -> Result<()> {
    if let ChaincodeCommand::Package(a) = &cmd {
        let wasm =
            std::fs::read(&a.wasm).with_context(|| format!("cannot read {}", a.wasm.display()))?;
        let p = ChaincodePackage::new(&a.name, &a.version, &a.policy, wasm)?;
        std::fs::write(&a.out, p.to_bytes())
            .with_context(|| format!("cannot write {}", a.out.display()))?;
        println!(
            "package {} {} code hash {} written to {}",
            a.name,
            a.version,
            p.code_hash().to_hex(),
            a.out.display()
        );
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(async move {
        match cmd {
            ChaincodeCommand::Package(_) => unreachable!("handled above"),
            ChaincodeCommand::Install(a) => {
                let bytes = std::fs::read(&a.package)
                    .with_context(|| format!("cannot read {}", a.package.display()))?;
                let mut g = a.conn.gateway().await?;
                let r = g
                    .evaluate_args(LIFECYCLE_NAMESPACE, &install_args(&bytes))
                    .await
                    .map_err(|e| anyhow!(e))?;
                let i = decode_installed(&r)?;
                println!(
                    "installed {} {} code hash {}",
                    i.name,
                    i.version,
                    i.code_hash.to_hex()
                );
            }
            ChaincodeCommand::Approve(a) => {
                let d = a.definition()?;
                let mut g = a.conn.gateway().await?;
                let own = g.signer().msp_id.as_str().to_owned();
                let c = g
                    .submit_args(LIFECYCLE_NAMESPACE, &approve_args(&d), &[own])
                    .await
                    .map_err(|e| anyhow!(e))?;
                done(&format!("approved {} sequence {}", d.name, d.sequence), &c)?;
            }
            ChaincodeCommand::Commit(a) => {
                let d = a.definition()?;
                let mut g = a.conn.gateway().await?;
                let c = g
                    .submit_args(LIFECYCLE_NAMESPACE, &commit_args(&d), &[])
                    .await
                    .map_err(|e| anyhow!(e))?;
                done(&format!("committed {} sequence {}", d.name, d.sequence), &c)?;
            }
            ChaincodeCommand::List(conn) => {
                let mut g = conn.gateway().await?;
                let defs = g
                    .evaluate_args(LIFECYCLE_NAMESPACE, &query_definitions_args())
                    .await
                    .map_err(|e| anyhow!(e))?;
                let installed = g
                    .evaluate_args(LIFECYCLE_NAMESPACE, &query_installed_args())
                    .await
                    .map(|r| decode_installed_list(&r))
                    .map_err(|e| anyhow!(e));
                println!("committed:");
                for d in decode_definitions(&defs)? {
                    println!(
                        "  {} {} sequence {} code {} policy {}",
                        d.name,
                        d.version,
                        d.sequence,
                        d.code_hash.to_hex(),
                        d.endorsement_policy
                    );
                }
                match installed {
                    Ok(Ok(list)) => {
                        println!("installed on this peer:");
                        for i in list {
                            println!("  {} {} code {}", i.name, i.version, i.code_hash.to_hex());
                        }
                    }
                    // Only admins of the peer's org may list installed packages.
                    Ok(Err(e)) => println!("installed on this peer: (not readable: {e})"),
                    Err(e) => println!("installed on this peer: (not readable: {e})"),
                }
            }
        }
        Ok(())
    })
}
