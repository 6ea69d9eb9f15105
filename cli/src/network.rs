//! `qcss network up|status|down`: a whole consortium on this machine, as
//! separate `qcss` child processes — one CA and one peer per org, three (or
//! five) Raft orderers — configured by one TOML file per node under DIR, so
//! the same files run the same nodes on other hosts (docs/deploy.md).
//!
//! `up` on an empty DIR creates everything: CAs, identities (enrolled over
//! gRPC through `qcss ca register|enroll`), the genesis block, node
//! configurations; starts the nodes; installs, approves and commits the
//! traceability contract. `up` on an existing DIR starts the same nodes on
//! their data. The processes outlive the command (own process group); their
//! PIDs are recorded in `DIR/pids.json` for `down`. This module only
//! orchestrates processes and calls the client libraries: every rule lives
//! in the node crates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use prost::Message;
use qcss_chaincode::ChaincodePackage;
use qcss_network::block::genesis_block;
use qcss_network::channel::{
    BatchConfig, Channel, ChannelConfig, ChannelPolicies, Consenter, DisplayName, OrgConfig,
};
use qcss_network::msp::MspConfig;
use qcss_network::signing::KeyKind;
use qcss_network::{MspId, SigningIdentity};
use qcss_peer::client::GatewayClient;
use qcss_peer::lifecycle::{
    Definition, LIFECYCLE_NAMESPACE, approve_args, commit_args, install_args,
};
use qcss_proto::protos::TxValidationCode;
use serde::{Deserialize, Serialize};

use crate::network_status::{http_get, metric, tcp_open};

/// The channel `network up` creates.
pub(crate) const CHANNEL: &str = "qcss";
/// The contract it deploys.
pub(crate) const CONTRACT: &str = "traceability";

#[derive(Debug, Subcommand)]
pub(crate) enum NetworkCommand {
    /// Create (or resume) and start a local consortium.
    Up(UpArgs),
    /// Each node's health, the Raft leader, ledger heights, certificates.
    Status(DirArgs),
    /// Stop the processes `up` started.
    Down(DirArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DirArgs {
    /// The network's directory.
    #[arg(long, default_value = "qcss-net")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The network's directory (created if missing; resumed if it exists).
    #[arg(long, default_value = "qcss-net")]
    dir: PathBuf,
    /// Organisations, one CA and one peer each: producer, lab, regulator,
    /// logistics, then Org5, Org6, ...
    #[arg(long, default_value_t = 4)]
    orgs: usize,
    /// Raft orderers.
    #[arg(long, default_value_t = 3)]
    orderers: usize,
    /// Also run the loquat-juice story and print unit codes to try.
    #[arg(long)]
    demo: bool,
    /// The traceability contract's wasm.
    #[arg(long, default_value = "chaincode/contracts/build/traceability.wasm")]
    contract: PathBuf,
    /// One address per org (comma-separated, in org order): its CA, peer and
    /// the orderers it hosts listen there, and their certificates name it.
    /// Default: 127.0.0.1 for all.
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
    /// A command prefix that runs an org's nodes where its address lives,
    /// with `{org}` replaced by the org's index (1-based), e.g.
    /// `ip netns exec qcss-{org}` (tests/tests/network.rs).
    #[arg(long)]
    exec_prefix: Option<String>,
    /// Public-chain nodes to run beside the consortium, holding the 31
    /// producer keys between them (0: no public chain).
    #[arg(long, default_value_t = 3)]
    chain_nodes: usize,
    /// The public chain's slot length in ms (the white paper's 30,000 is
    /// the production default; short here so a local chain moves).
    #[arg(long, default_value_t = 1_000)]
    chain_slot_ms: u64,
    /// Consumer reward epochs, seconds (the demo's UCES config and the
    /// public chain's reward epochs alike, so that they line up; a whole
    /// number of chain slots, at least 60). Fixed when the chain is created.
    #[arg(long, default_value_t = 86_400)]
    reward_epoch_secs: u64,
    /// Slots a reward stays locked on the public chain (default: the white
    /// paper's 20,160); shorter only to try rewards out.
    #[arg(long)]
    reward_lock_slots: Option<u64>,
    /// Least slots between two withdrawals of matured rewards (default: the
    /// white paper's 86,400).
    #[arg(long)]
    withdraw_interval_slots: Option<u64>,
    /// Entries in one part of a reward batch on the public chain (default:
    /// the white paper's 10,000); fewer only to try epochs paid in parts.
    #[arg(long)]
    reward_part_entries: Option<u32>,
    /// The signing keys of every identity (admins, peers, orderers,
    /// users): p256 (ECDSA, what every Fabric client speaks) or ed25519
    /// (Fabric 3 clients; several times cheaper to verify, and peers
    /// batch-verify them). TLS keys are P-256 either way. Fixed when the
    /// network is created.
    #[arg(long, default_value = "p256")]
    key_type: KeyKind,
}

/// One org of the local network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrgInfo {
    /// Short name (directory under `orgs/`).
    pub name: String,
    /// The address its nodes listen on.
    #[serde(default = "localhost")]
    pub host: String,
    /// Its index, 1-based (for `exec_prefix`).
    #[serde(default)]
    pub index: usize,
    /// MSP id.
    pub msp_id: String,
    /// CA address.
    pub ca: String,
    /// CA operations address.
    #[serde(default)]
    pub ca_ops: String,
    /// Peer gRPC address.
    pub peer: String,
    /// Peer operations address.
    pub peer_ops: String,
    /// Peer web address (verify page, explorer, JSON API); empty for a
    /// network created before the peers served one.
    #[serde(default)]
    pub web: String,
    /// Identities enrolled: name → (role, kinds).
    pub identities: BTreeMap<String, (String, Vec<String>)>,
}

/// One orderer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrdererInfo {
    /// Consenter id.
    pub id: u64,
    /// Hosting org (directory name).
    pub org: String,
    /// gRPC address.
    pub addr: String,
    /// Operations address.
    pub ops: String,
}

/// What `up` created: `DIR/network.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetworkInfo {
    /// The channel.
    pub channel: String,
    /// Orgs.
    pub orgs: Vec<OrgInfo>,
    /// Orderers.
    pub orderers: Vec<OrdererInfo>,
    /// Whether the contract is committed.
    pub contract_deployed: bool,
    /// The command prefix nodes are started with (`{org}` = org index).
    #[serde(default)]
    pub exec_prefix: Option<String>,
    /// The codes of the demo story, once it ran.
    #[serde(default)]
    pub demo: Option<crate::network_demo::DemoCodes>,
    /// The public chain beside the consortium (none for a network created
    /// with `--chain-nodes 0`, or before the chain existed: `up` adds it).
    #[serde(default)]
    pub chain: Option<crate::network_chain::ChainInfo>,
    /// The identities' signing key type (`p256` for a network created
    /// before Ed25519 identities existed).
    #[serde(default)]
    pub key_type: KeyKind,
    /// Whether the example contract is committed too, as `example`
    /// (`qcss bench fabric-client` deploys it when it first runs).
    #[serde(default)]
    pub example_deployed: bool,
}

/// Reads `DIR/network.json`.
pub(crate) fn read_info(dir: &Path) -> Result<NetworkInfo> {
    let bytes = std::fs::read(dir.join("network.json"))
        .with_context(|| format!("no network in {} (network.json missing)", dir.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}/network.json is not a network description",
            dir.display()
        )
    })
}

/// The default orgs: (directory, MSP id, kinds of its `user1`).
const ORGS: [(&str, &str, &str); 4] = [
    ("producer", "ProducerMSP", "enterprise"),
    ("lab", "LabMSP", "lab"),
    ("regulator", "RegulatorMSP", "regulator"),
    ("logistics", "LogisticsMSP", "logistics,retailer"),
];

/// The default orgs' display names in the channel configuration (English,
/// Chinese), in `ORGS` order; further orgs have none (pages show their MSP
/// id).
const DISPLAY_NAMES: [(&str, &str); 4] = [
    ("Suzhou Dongshan Loquat Co.", "苏州东山枇杷有限公司"),
    ("Zhejiang Food Inspection Centre", "浙江省食品检验中心"),
    ("Market Regulation Bureau", "市场监督管理局"),
    ("Hangzhou Cold Chain Logistics", "杭州冷链物流有限公司"),
];

fn org_names(n: usize) -> Vec<(String, String, String)> {
    (0..n)
        .map(|i| match ORGS.get(i) {
            Some((d, m, k)) => ((*d).into(), (*m).into(), (*k).into()),
            None => (
                format!("org{}", i + 1),
                format!("Org{}MSP", i + 1),
                "enterprise".into(),
            ),
        })
        .collect()
}

/// A port for a node of this network (see `qcss_network::ports`).
pub(crate) fn free_port() -> Result<u16> {
    Ok(qcss_network::ports::free_port()?)
}

fn localhost() -> String {
    "127.0.0.1".into()
}

/// An address on `host` with a port free on this machine (a network
/// namespace has ports of its own, all free).
pub(crate) fn addr(host: &str) -> Result<String> {
    Ok(format!("{host}:{}", free_port()?))
}

pub(crate) fn abs(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// Prints a progress line and times the step.
pub(crate) struct Progress {
    started: Instant,
}

impl Progress {
    /// Steps timed from now.
    pub(crate) fn new() -> Self {
        Progress {
            started: Instant::now(),
        }
    }

    pub(crate) fn step(&self, what: &str) {
        println!("[{:6.1}s] {what}", self.started.elapsed().as_secs_f64());
    }
}

/// Runs this binary with `args` in `dir`; its stdout on success.
pub(crate) fn qcss(dir: &Path, args: &[&str]) -> Result<String> {
    let exe = std::env::current_exe().context("locating the qcss binary")?;
    let out = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env("QCSS_LOG", "warn")
        .output()
        .with_context(|| format!("running qcss {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "qcss {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Registers `who` (role `role`, QCSS kinds `kinds`, comma-separated, may be
/// empty) with the CA at `ca` as the org's admin, and enrolls it into
/// `org_dir/who` with a TLS certificate for `tls_hosts`. `org_dir` holds the
/// admin's identity and `ca/tls-ca-cert.pem`.
pub(crate) fn register_and_enroll(
    org_dir: &Path,
    ca: &str,
    who: &str,
    role: &str,
    kinds: &str,
    tls_hosts: &str,
    key_type: KeyKind,
) -> Result<()> {
    let conn = ["--url", ca, "--tls-root", "ca/tls-ca-cert.pem"];
    let mut r = vec![
        "ca",
        "register",
        "--identity",
        "admin",
        "--name",
        who,
        "--role",
        role,
    ];
    if !kinds.is_empty() {
        r.extend(["--kind", kinds]);
    }
    // The demo's consumer is one whose real name the platform checked: it
    // may bind a reward address and evaluate what it claimed (UCES).
    if kinds.split(',').any(|k| k == "consumer") {
        r.extend(["--attr", "real_name=verified"]);
    }
    r.extend(conn);
    let secret = qcss(org_dir, &r)?;
    let mut e = vec![
        "ca",
        "enroll",
        "--name",
        who,
        "--secret",
        secret.trim(),
        "--out",
        who,
        "--tls-hosts",
        tls_hosts,
        "--key-type",
        key_type.as_str(),
    ];
    e.extend(conn);
    qcss(org_dir, &e)?;
    Ok(())
}

/// PIDs of the processes `up` started, by node name.
pub(crate) type Pids = BTreeMap<String, u32>;

#[path = "network_procs.rs"]
mod procs;
pub(crate) use procs::{alive, exec_prefix, read_pids, spawn, wait, write_pids};

fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
}

pub(crate) fn run(cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Up(a) => up(a),
        NetworkCommand::Status(a) => crate::network_status::status(&a.dir),
        NetworkCommand::Down(a) => down(&a.dir),
    }
}

fn up(a: UpArgs) -> Result<()> {
    let started = Instant::now();
    let p = Progress { started };
    let dir = abs(&a.dir)?;
    std::fs::create_dir_all(&dir)?;
    let info_path = dir.join("network.json");
    let mut pids = read_pids(&dir);
    let mut info = if info_path.exists() {
        p.step(&format!("resuming the network in {}", dir.display()));
        serde_json::from_slice::<NetworkInfo>(&std::fs::read(&info_path)?)?
    } else {
        if dir.join("orgs").exists() {
            bail!(
                "{} holds a network that was never completed (no network.json): stop it with `qcss network down --dir {}` and remove the directory",
                dir.display(),
                dir.display()
            );
        }
        if a.orgs < 1 {
            bail!("--orgs must be at least 1");
        }
        if a.orderers != 3 && a.orderers != 5 {
            bail!("--orderers must be 3 or 5 (a Raft majority survives one or two failures)");
        }
        if !a.contract.exists() {
            bail!(
                "the traceability contract is not built ({} is missing): run chaincode/build-contracts.sh, or scripts/network-up.sh which does",
                a.contract.display()
            );
        }
        create(&dir, &a, &p, &mut pids)?
    };
    if info.chain.is_none() && a.chain_nodes > 0 {
        info.chain = Some(crate::network_chain::create(
            &dir,
            &info,
            &crate::network_chain::ChainShape {
                nodes: a.chain_nodes,
                slot_ms: a.chain_slot_ms,
                reward_epoch_secs: a.reward_epoch_secs,
                reward_lock_slots: a.reward_lock_slots,
                withdraw_interval_slots: a.withdraw_interval_slots,
                reward_part_entries: a.reward_part_entries,
            },
            &p,
        )?);
        std::fs::write(&info_path, serde_json::to_vec_pretty(&info)?)?;
    }
    if let Some(chain) = &info.chain {
        crate::network_chain::link_peers(&dir, &info, chain)?;
    }
    start_all(&dir, &info, &p, &mut pids)?;
    if let Some(chain) = &info.chain {
        crate::network_chain::start(&dir, &info, chain, &p, &mut pids)?;
    }
    if !info.contract_deployed {
        deploy(&dir, &info, &abs(&a.contract)?, &p)?;
        info.contract_deployed = true;
        std::fs::write(&info_path, serde_json::to_vec_pretty(&info)?)?;
    }
    if let Some(chain) = info.chain.as_mut()
        && !chain.nodes.is_empty()
    {
        if chain.anchor.is_none() {
            chain.anchor =
                crate::network_chain::anchor_setup(&dir, &info.orgs, &info.channel, chain, &p)?;
            std::fs::write(&info_path, serde_json::to_vec_pretty(&info)?)?;
        }
        if let Some(chain) = &info.chain
            && chain.anchor.is_some()
        {
            crate::network_chain::anchor_start(&dir, &info, &p, &mut pids)?;
        }
    }
    if a.demo
        && let Some(chain) = info.chain.as_mut()
        && chain.demo.is_none()
    {
        p.step("moving demo tokens on the public chain");
        chain.demo = Some(crate::network_chain::demo(&dir, chain)?);
        std::fs::write(&info_path, serde_json::to_vec_pretty(&info)?)?;
    }
    if a.demo && info.demo.is_none() {
        p.step("running the loquat-juice story");
        let rt = tokio::runtime::Runtime::new()?;
        info.demo = Some(rt.block_on(crate::network_demo::run(&dir, &info, &p))?);
        std::fs::write(&info_path, serde_json::to_vec_pretty(&info)?)?;
    }
    crate::network_status::print_summary(&dir, &info, info.demo.as_ref());
    println!("network up in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Everything a new network needs, written under `dir`.
fn create(dir: &Path, a: &UpArgs, p: &Progress, pids: &mut Pids) -> Result<NetworkInfo> {
    let names = org_names(a.orgs);
    if !a.hosts.is_empty() && a.hosts.len() != a.orgs {
        bail!(
            "--hosts names {} addresses for {} orgs",
            a.hosts.len(),
            a.orgs
        );
    }
    let mut orgs = Vec::new();
    // CAs first: every identity comes from its org's CA over gRPC.
    for (i, (name, msp_id, _)) in names.iter().enumerate() {
        let host = a.hosts.get(i).cloned().unwrap_or_else(localhost);
        let ca = addr(&host)?;
        let ca_ops = addr(&host)?;
        let home = dir.join("orgs").join(name).join("ca");
        std::fs::create_dir_all(&home)?;
        let toml = format!(
            "home = \"ca\"\nlisten = \"{ca}\"\nname = \"{name}-ca\"\norg = \"{name}\"\nmsp_id = \"{msp_id}\"\ntls_hosts = [\"localhost\", \"127.0.0.1\", \"{host}\"]\nops_listen = \"{ca_ops}\"\n"
        );
        let cfg = dir.join("orgs").join(name).join("ca.toml");
        std::fs::write(&cfg, toml)?;
        orgs.push(OrgInfo {
            name: name.clone(),
            index: i + 1,
            peer: addr(&host)?,
            peer_ops: addr(&host)?,
            web: addr(&host)?,
            host,
            msp_id: msp_id.clone(),
            ca,
            ca_ops,
            identities: BTreeMap::new(),
        });
    }
    for o in &orgs {
        let cfg = format!("orgs/{}/ca.toml", o.name);
        let prefix = exec_prefix(a.exec_prefix.as_deref(), o);
        spawn(
            dir,
            &format!("ca-{}", o.name),
            &prefix,
            &["ca", "start", "--config", &cfg],
            pids,
        )?;
    }
    for o in &orgs {
        let secret = dir
            .join("orgs")
            .join(&o.name)
            .join("ca/bootstrap-admin.secret");
        wait(
            dir,
            &format!("ca-{}", o.name),
            Duration::from_secs(30),
            || secret.exists() && tcp_open(&o.ca),
        )?;
    }
    p.step(&format!("{} CAs started", orgs.len()));

    let orderers: Vec<OrdererInfo> = (1..=a.orderers)
        .map(|i| {
            let host = &orgs[(i - 1) % orgs.len()];
            Ok(OrdererInfo {
                id: i as u64,
                org: host.name.clone(),
                addr: addr(&host.host)?,
                ops: addr(&host.host)?,
            })
        })
        .collect::<Result<_>>()?;
    for (i, o) in orgs.iter_mut().enumerate() {
        let odir = dir.join("orgs").join(&o.name);
        let conn = ["--url", &o.ca, "--tls-root", "ca/tls-ca-cert.pem"];
        let tls_hosts = format!("localhost,127.0.0.1,{}", o.host);
        let secret = read(&odir.join("ca/bootstrap-admin.secret"))?;
        let mut e = vec![
            "ca",
            "enroll",
            "--name",
            "admin",
            "--secret",
            secret.trim(),
            "--out",
            "admin",
            "--tls-hosts",
            &tls_hosts,
            "--key-type",
            a.key_type.as_str(),
        ];
        e.extend(conn);
        qcss(&odir, &e)?;
        o.identities
            .insert("admin".into(), ("admin".into(), vec![]));
        let mut wanted: Vec<(String, &str, String)> = vec![
            ("peer0".into(), "peer", String::new()),
            ("user1".into(), "client", names[i].2.clone()),
        ];
        match o.name.as_str() {
            "producer" => wanted.push(("sensor1".into(), "client", "device".into())),
            "regulator" => wanted.push(("auditor1".into(), "client", "auditor".into())),
            "logistics" => wanted.push(("consumer1".into(), "client", "consumer".into())),
            _ => {}
        }
        for ord in orderers.iter().filter(|x| x.org == o.name) {
            wanted.push((format!("orderer{}", ord.id), "orderer", String::new()));
        }
        for (who, role, kinds) in wanted {
            register_and_enroll(&odir, &o.ca, &who, role, &kinds, &tls_hosts, a.key_type)?;
            let kinds: Vec<String> = kinds
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect();
            o.identities.insert(who, (role.into(), kinds));
        }
    }
    p.step("identities registered and enrolled (signing and TLS certificates)");

    let config = ChannelConfig {
        channel_id: CHANNEL.into(),
        sequence: 0,
        orgs: orgs
            .iter()
            .map(|o| {
                let home = dir.join("orgs").join(&o.name).join("ca");
                // The org's key for confidential MDSS files: the secret
                // beside its identities, the public half in the channel.
                let secret = qcss_mdss::OrgSecretKey::generate()?;
                crate::files_sealed::write_secret(
                    &dir.join("orgs").join(&o.name).join("files-key"),
                    &secret,
                )?;
                Ok(OrgConfig {
                    file_key: Some(secret.public_key().to_hex()),
                    msp: MspConfig {
                        msp_id: o.msp_id.clone(),
                        root_certs: vec![read(&home.join("ca-cert.pem"))?],
                        tls_root_certs: vec![read(&home.join("tls-ca-cert.pem"))?],
                        ..Default::default()
                    },
                    peer_endpoints: vec![o.peer.clone()],
                    display_name: DISPLAY_NAMES.get(o.index.wrapping_sub(1)).map(|(en, zh)| {
                        DisplayName {
                            en: Some((*en).to_owned()),
                            zh: Some((*zh).to_owned()),
                        }
                    }),
                })
            })
            .collect::<Result<_>>()?,
        consenters: orderers
            .iter()
            .map(|x| {
                let d = dir
                    .join("orgs")
                    .join(&x.org)
                    .join(format!("orderer{}", x.id));
                let msp_id = orgs
                    .iter()
                    .find(|o| o.name == x.org)
                    .map(|o| o.msp_id.clone())
                    .unwrap_or_default();
                Ok(Consenter {
                    id: x.id,
                    address: x.addr.clone(),
                    msp_id,
                    tls_cert_pem: read(&d.join("tls-cert.pem"))?,
                    identity_cert_pem: read(&d.join("cert.pem"))?,
                })
            })
            .collect::<Result<_>>()?,
        batch: BatchConfig::default(),
        policies: ChannelPolicies::default(),
    };
    Channel::new(config.clone())?;
    std::fs::write(dir.join("channel.json"), config.to_json())?;
    std::fs::write(
        dir.join("genesis.block"),
        genesis_block(&config).encode_to_vec(),
    )?;
    p.step(&format!("genesis block of channel {CHANNEL} written"));

    for x in &orderers {
        let id = format!("orgs/{}/orderer{}", x.org, x.id);
        let msp_id = &orgs
            .iter()
            .find(|o| o.name == x.org)
            .expect("host org")
            .msp_id;
        let toml = format!(
            "node_id = {}\nmsp_id = \"{msp_id}\"\nidentity_dir = \"{id}\"\ntls_cert = \"{id}/tls-cert.pem\"\n\
             tls_key = \"{id}/tls-key.pem\"\ngenesis_block = \"genesis.block\"\ndata_dir = \"data/orderer{}\"\n\
             listen = \"{}\"\nops_listen = \"{}\"\n",
            x.id, x.id, x.addr, x.ops
        );
        std::fs::write(dir.join(format!("orderer{}.toml", x.id)), toml)?;
    }
    for o in &orgs {
        let id = format!("orgs/{}/peer0", o.name);
        // The org's anchor key: its peer signs anchor statements with it.
        let anchor_key = format!("orgs/{}/anchor-key.json", o.name);
        crate::chain::write_key(&dir.join(&anchor_key), &crate::chain::new_key()?)?;
        let toml = format!(
            "msp_id = \"{}\"\nidentity_dir = \"{id}\"\ntls_cert = \"{id}/tls-cert.pem\"\ntls_key = \"{id}/tls-key.pem\"\n\
             genesis_block = \"genesis.block\"\ndata_dir = \"data/peer-{}\"\nlisten = \"{}\"\nops_listen = \"{}\"\n\n\
             [web]\nlisten = \"{}\"\nidentity_dir = \"orgs/{}/user1\"\n\n\
             [anchor]\nkey = \"{anchor_key}\"\n",
            o.msp_id, o.name, o.peer, o.peer_ops, o.web, o.name
        );
        std::fs::write(dir.join(format!("peer-{}.toml", o.name)), toml)?;
    }
    let info = NetworkInfo {
        channel: CHANNEL.into(),
        orgs,
        orderers,
        contract_deployed: false,
        exec_prefix: a.exec_prefix.clone(),
        demo: None,
        chain: None,
        key_type: a.key_type,
        example_deployed: false,
    };
    std::fs::write(dir.join("network.json"), serde_json::to_vec_pretty(&info)?)?;
    p.step("node configurations written (one TOML file per node)");
    Ok(info)
}

/// Starts every node not running and waits until each is healthy.
fn start_all(dir: &Path, info: &NetworkInfo, p: &Progress, pids: &mut Pids) -> Result<()> {
    let prefix_of = |org: &str| {
        info.orgs
            .iter()
            .find(|o| o.name == org)
            .map(|o| exec_prefix(info.exec_prefix.as_deref(), o))
            .unwrap_or_default()
    };
    for o in &info.orgs {
        let cfg = format!("orgs/{}/ca.toml", o.name);
        let args = ["ca", "start", "--config", &cfg];
        spawn(
            dir,
            &format!("ca-{}", o.name),
            &prefix_of(&o.name),
            &args,
            pids,
        )?;
    }
    for x in &info.orderers {
        let cfg = format!("orderer{}.toml", x.id);
        let args = ["orderer", "start", "--config", &cfg];
        spawn(
            dir,
            &format!("orderer{}", x.id),
            &prefix_of(&x.org),
            &args,
            pids,
        )?;
    }
    for o in &info.orgs {
        let cfg = format!("peer-{}.toml", o.name);
        let args = ["peer", "start", "--config", &cfg];
        spawn(
            dir,
            &format!("peer-{}", o.name),
            &prefix_of(&o.name),
            &args,
            pids,
        )?;
    }
    for o in &info.orgs {
        wait(
            dir,
            &format!("ca-{}", o.name),
            Duration::from_secs(30),
            || tcp_open(&o.ca),
        )?;
    }
    for x in &info.orderers {
        wait(
            dir,
            &format!("orderer{}", x.id),
            Duration::from_secs(60),
            || matches!(http_get(&x.ops, "/healthz"), Some((200, _))),
        )?;
    }
    p.step(&format!(
        "{} orderers up, Raft leader elected",
        info.orderers.len()
    ));
    for o in &info.orgs {
        wait(
            dir,
            &format!("peer-{}", o.name),
            Duration::from_secs(60),
            || matches!(http_get(&o.peer_ops, "/healthz"), Some((200, _))),
        )?;
    }
    p.step(&format!("{} peers up and pulling blocks", info.orgs.len()));
    Ok(())
}

/// An mTLS channel to `org`'s peer with the TLS pair of `who` of `as_org`,
/// trusting `org`'s TLS CA.
pub(crate) async fn peer_channel(
    dir: &Path,
    org: &OrgInfo,
    as_org: &OrgInfo,
    who: &str,
) -> Result<tonic::transport::Channel> {
    let d = dir.join("orgs").join(&as_org.name).join(who);
    let root = std::fs::read(dir.join("orgs").join(&org.name).join("ca/tls-ca-cert.pem"))?;
    let cert = std::fs::read(d.join("tls-cert.pem"))?;
    let key = std::fs::read(d.join("tls-key.pem"))?;
    qcss_peer::client::connect(&org.peer, &[root], (&cert, &key))
        .await
        .map_err(|e| anyhow!(e))
}

/// A Gateway client to `org`'s peer as `who` of that org.
pub(crate) async fn gateway(
    dir: &Path,
    info: &NetworkInfo,
    org: &OrgInfo,
    who: &str,
) -> Result<GatewayClient> {
    let d = dir.join("orgs").join(&org.name).join(who);
    let ch = peer_channel(dir, org, org, who).await?;
    let signer = SigningIdentity::load_dir(MspId(org.msp_id.clone()), &d)
        .map_err(|e| anyhow!("{}: {e}", d.display()))?;
    Ok(GatewayClient::new(ch, Arc::new(signer), &info.channel))
}

/// Installs the contract on every peer, approves it by every org, commits.
fn deploy(dir: &Path, info: &NetworkInfo, wasm: &Path, p: &Progress) -> Result<()> {
    deploy_contract(dir, info, CONTRACT, wasm, p)
}

/// Installs `wasm` as chaincode `name` 1.0 on every peer, has every org
/// approve it (default endorsement policy) and commits it, then waits until
/// every peer has applied the definition.
pub(crate) fn deploy_contract(
    dir: &Path,
    info: &NetworkInfo,
    name: &str,
    wasm: &Path,
    p: &Progress,
) -> Result<()> {
    let wasm = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let package = ChaincodePackage::new(name, "1.0", "", wasm)?;
    let bytes = package.to_bytes();
    std::fs::write(dir.join(format!("{name}.pkg")), &bytes)?;
    let definition = Definition {
        name: name.into(),
        version: "1.0".into(),
        sequence: 1,
        code_hash: package.code_hash(),
        endorsement_policy: String::new(),
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        for o in &info.orgs {
            let mut g = gateway(dir, info, o, "admin").await?;
            g.evaluate_args(LIFECYCLE_NAMESPACE, &install_args(&bytes))
                .await
                .map_err(|e| anyhow!("installing on {}'s peer: {e}", o.name))?;
        }
        p.step(&format!("{name} contract installed on every peer"));
        for o in &info.orgs {
            let mut g = gateway(dir, info, o, "admin").await?;
            let c = g
                .submit_args(
                    LIFECYCLE_NAMESPACE,
                    &approve_args(&definition),
                    std::slice::from_ref(&o.msp_id),
                )
                .await
                .map_err(|e| anyhow!("approval by {}: {e}", o.msp_id))?;
            if c.code != TxValidationCode::Valid {
                bail!("approval by {} is {}", o.msp_id, c.code.as_str_name());
            }
        }
        p.step("definition approved by every org");
        let mut g = gateway(dir, info, &info.orgs[0], "admin").await?;
        let c = g
            .submit_args(LIFECYCLE_NAMESPACE, &commit_args(&definition), &[])
            .await
            .map_err(|e| anyhow!("committing the definition: {e}"))?;
        if c.code != TxValidationCode::Valid {
            bail!("the commit is {}", c.code.as_str_name());
        }
        p.step(&format!("definition committed in block {}", c.block));
        // Every peer applies it at that block.
        let want = c.block + 1;
        for o in &info.orgs {
            wait(
                dir,
                &format!("peer-{}", o.name),
                Duration::from_secs(30),
                || metric(&o.peer_ops, "qcss_peer_ledger_height").unwrap_or(0.0) as u64 >= want,
            )?;
        }
        Ok(())
    })
}

fn down(dir: &Path) -> Result<()> {
    let pids = read_pids(dir);
    if pids.is_empty() {
        println!("nothing recorded as running in {}", dir.display());
        return Ok(());
    }
    // Peers first, then orderers, then CAs: nothing is left waiting on a
    // node already gone.
    let order = |n: &String| {
        if n.starts_with("peer") || n.starts_with("chain") {
            0
        } else if n.starts_with("orderer") {
            1
        } else {
            2
        }
    };
    let mut names: Vec<&String> = pids.keys().collect();
    names.sort_by_key(|n| order(n));
    for name in names {
        let pid = pids[name];
        if !alive(pid) {
            continue;
        }
        signal(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            signal(pid, rustix::process::Signal::KILL);
            println!("{name} (pid {pid}) killed after 10 s");
        } else {
            println!("{name} (pid {pid}) stopped");
        }
    }
    write_pids(dir, &Pids::new())?;
    Ok(())
}

/// Sends `sig` to process `pid` (gone already: nothing to do).
fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, sig);
    }
}
