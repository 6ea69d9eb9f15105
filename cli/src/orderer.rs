//! `qcss orderer ...` and `qcss channel genesis|inspect`: run an ordering
//! node; make a channel's genesis block. (`qcss channel config|update` are
//! in `channel.rs`.)

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use prost::Message;
use qcss_network::block::{config_from_block, genesis_block};
use qcss_network::channel::{Channel, ChannelConfig};
use qcss_orderer::OrdererConfig;

#[derive(Debug, Subcommand)]
pub(crate) enum OrdererCommand {
    /// Run one orderer node (see docs/orderer.md for the config file).
    Start(StartArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The node's TOML configuration.
    #[arg(long)]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChannelCommand {
    /// Write a channel's genesis block from its configuration (JSON).
    Genesis(GenesisArgs),
    /// Print the channel configuration a config block carries, as JSON.
    Inspect(InspectArgs),
    /// Fetch the configuration in force from an orderer, as JSON.
    Config(crate::channel::ConfigArgs),
    /// Change the configuration: create an update, have admins sign it, submit it.
    #[command(subcommand)]
    Update(crate::channel::UpdateCommand),
}

#[derive(Debug, Args)]
pub(crate) struct GenesisArgs {
    /// The channel configuration, JSON (see docs/orderer.md).
    #[arg(long)]
    config: PathBuf,
    /// Where to write the genesis block.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// A block file.
    block: PathBuf,
}

pub(crate) fn run(cmd: OrdererCommand) -> Result<()> {
    match cmd {
        OrdererCommand::Start(a) => start(a),
    }
}

pub(crate) fn run_channel(cmd: ChannelCommand) -> Result<()> {
    match cmd {
        ChannelCommand::Config(a) => crate::channel::config(a),
        ChannelCommand::Update(u) => crate::channel::update(u),
        ChannelCommand::Genesis(a) => {
            let text = std::fs::read(&a.config)
                .with_context(|| format!("cannot read {}", a.config.display()))?;
            let cfg = ChannelConfig::from_json(&text)?;
            // Refuse to write a genesis block no node could start from.
            Channel::new(cfg.clone())?;
            let block = genesis_block(&cfg);
            std::fs::write(&a.out, block.encode_to_vec())
                .with_context(|| format!("cannot write {}", a.out.display()))?;
            println!(
                "genesis block for channel {} ({} orgs, {} consenters) written to {}",
                cfg.channel_id,
                cfg.orgs.len(),
                cfg.consenters.len(),
                a.out.display()
            );
            Ok(())
        }
        ChannelCommand::Inspect(a) => {
            let bytes = std::fs::read(&a.block)
                .with_context(|| format!("cannot read {}", a.block.display()))?;
            let block =
                qcss_proto::common::Block::decode(bytes.as_slice()).context("not a block")?;
            let cfg = config_from_block(&block)?;
            println!("{}", serde_json::to_string_pretty(&cfg)?);
            Ok(())
        }
    }
}

fn start(a: StartArgs) -> Result<()> {
    let cfg = OrdererConfig::load(&a.config)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = rt.block_on(async move {
        let (listener, ops, addr, ops_addr) =
            bind_node(&cfg.listen, cfg.ops_listen.as_deref()).await?;
        println!(
            "qcss orderer {} listening on {addr}{}",
            cfg.node_id,
            ops_addr
                .map(|a| format!(" (operations {a})"))
                .unwrap_or_default()
        );
        qcss_orderer::node::run(cfg, listener, ops, crate::ca::shutdown_signal()).await?;
        Ok(())
    });
    // Blocking tasks stuck on a failed disk must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// Binds a node's gRPC and operations listeners, naming the address in the
/// error (a port already taken is the classic start failure); returns them
/// with their bound addresses.
pub(crate) async fn bind_node(
    listen: &str,
    ops_listen: Option<&str>,
) -> Result<(
    tokio::net::TcpListener,
    Option<tokio::net::TcpListener>,
    std::net::SocketAddr,
    Option<std::net::SocketAddr>,
)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let ops = match ops_listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (operations)"))?,
        ),
        None => None,
    };
    let addr = listener.local_addr()?;
    let ops_addr = ops.as_ref().and_then(|l| l.local_addr().ok());
    Ok((listener, ops, addr, ops_addr))
}
