//! `qcss ca ...`: run a certificate authority, or act against one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use qcss_ca::client::{CaClient, write_enrollment};
use qcss_ca::{Authority, CaConfig};
use qcss_network::signing::KeyKind;
use qcss_network::{MspId, SigningIdentity};
use qcss_proto::qcss::ca as pb;

#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Run a CA server (creates its root, TLS CA and bootstrap admin on first start).
    Start(StartArgs),
    /// Register a new identity (signed by a registrar); prints its enrollment secret.
    Register(RegisterArgs),
    /// Enroll: make a key and CSR locally, get a certificate, write them to --out.
    Enroll(EnrollArgs),
    /// Reenroll an identity with a new key; replaces the files in --identity.
    Reenroll(ReenrollArgs),
    /// Revoke a name (all its certificates) or one certificate by serial.
    Revoke(RevokeArgs),
    /// Fetch the current CRLs.
    Crl(CrlArgs),
    /// Show the CA's name, MSP id and roots.
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// TOML configuration file (see docs/ca.md); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Home directory: keys, certificates, store.
    #[arg(long)]
    home: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:7054.
    #[arg(long)]
    listen: Option<String>,
    /// CA name (CN of the root).
    #[arg(long)]
    name: Option<String>,
    /// Organization name.
    #[arg(long)]
    org: Option<String>,
    /// MSP id of the identities this CA issues.
    #[arg(long)]
    msp_id: Option<String>,
    /// Hosts (DNS or IP) for the CA's own TLS certificate; repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    tls_host: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// CA address (host:port).
    #[arg(long, env = "QCSS_CA_URL", default_value = "127.0.0.1:7054")]
    url: String,
    /// The CA's TLS root certificate (its home's tls-ca-cert.pem).
    #[arg(long, env = "QCSS_CA_TLS_ROOT")]
    tls_root: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    conn: Conn,
    /// Directory with the registrar's cert.pem and key.pem.
    #[arg(long)]
    identity: PathBuf,
    /// Name to register.
    #[arg(long)]
    name: String,
    /// admin, peer, orderer or client.
    #[arg(long)]
    role: String,
    /// QCSS kind (enterprise, lab, regulator, logistics, retailer, consumer, device, auditor); repeatable.
    #[arg(long, value_delimiter = ',')]
    kind: Vec<String>,
    /// Free attribute name=value; repeatable.
    #[arg(long = "attr")]
    attrs: Vec<String>,
    /// Enrollments allowed (-1 unlimited, 0 = the CA's default).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    max_enrollments: i32,
    /// Set the secret instead of letting the CA generate one.
    #[arg(long)]
    secret: Option<String>,
    /// For admins: roles the new identity may register; comma-separated.
    #[arg(long, value_delimiter = ',')]
    registrar_roles: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct EnrollArgs {
    #[command(flatten)]
    conn: Conn,
    /// Registered name.
    #[arg(long)]
    name: String,
    /// Enrollment secret (or set QCSS_ENROLL_SECRET).
    #[arg(long, env = "QCSS_ENROLL_SECRET", hide_env_values = true)]
    secret: String,
    /// Output directory: cert.pem, key.pem (0600), ca.pem, msp_id.
    #[arg(long)]
    out: PathBuf,
    /// Also enroll a TLS certificate for these hosts: tls-cert.pem, tls-key.pem, tls-ca.pem.
    #[arg(long, value_delimiter = ',')]
    tls_hosts: Vec<String>,
    /// The signing key's type: p256 (ECDSA, what every Fabric client
    /// speaks) or ed25519 (Fabric 3 clients; cheaper for every node to
    /// verify). TLS keys are always P-256.
    #[arg(long, default_value = "p256")]
    key_type: KeyKind,
}

#[derive(Debug, Args)]
pub(crate) struct ReenrollArgs {
    #[command(flatten)]
    conn: Conn,
    /// Directory with the current cert.pem and key.pem; replaced on success.
    #[arg(long)]
    identity: PathBuf,
    /// Reenroll the TLS pair for these hosts instead.
    #[arg(long, value_delimiter = ',')]
    tls_hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    conn: Conn,
    /// Directory with the registrar's cert.pem and key.pem.
    #[arg(long)]
    identity: PathBuf,
    /// Revoke every certificate of this name.
    #[arg(long, conflicts_with = "serial", required_unless_present = "serial")]
    name: Option<String>,
    /// Revoke one certificate by serial (hex).
    #[arg(long)]
    serial: Option<String>,
    /// RFC 5280 reason (keyCompromise, superseded, cessationOfOperation, ...).
    #[arg(long, default_value = "unspecified")]
    reason: String,
    /// Write the new signing CRL here.
    #[arg(long)]
    crl_out: Option<PathBuf>,
    /// Then put the new CRLs into this channel at once: a config update
    /// signed by --identity, which must be an admin of the org (as `qcss
    /// channel update crl`). Without it, nothing changes in any channel.
    #[arg(long, requires_all = ["orderer", "orderer_tls_root"])]
    update_channel: Option<String>,
    /// With --update-channel: an orderer's address (host:port).
    #[arg(long, requires = "update_channel")]
    orderer: Option<String>,
    /// With --update-channel: the orderers' TLS root certificate(s); repeatable.
    #[arg(long, requires = "update_channel")]
    orderer_tls_root: Vec<PathBuf>,
    /// With --update-channel: the TLS pair to reach the orderer with
    /// (tls-cert.pem, tls-key.pem); default: --identity.
    #[arg(long, requires = "update_channel")]
    tls_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CrlArgs {
    #[command(flatten)]
    conn: Conn,
    /// Write the signing-certificate CRL here.
    #[arg(long)]
    out: PathBuf,
    /// Write the TLS-certificate CRL here.
    #[arg(long)]
    tls_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    conn: Conn,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also write ca-cert.pem and tls-ca-cert.pem to this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn run(cmd: CaCommand) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        match cmd {
            CaCommand::Start(a) => start(a).await,
            CaCommand::Register(a) => register(a).await,
            CaCommand::Enroll(a) => enroll(a).await,
            CaCommand::Reenroll(a) => reenroll(a).await,
            CaCommand::Revoke(a) => revoke(a).await,
            CaCommand::Crl(a) => crl(a).await,
            CaCommand::Info(a) => info(a).await,
        }
    })
}

async fn start(a: StartArgs) -> Result<()> {
    let mut cfg = match &a.config {
        Some(p) => CaConfig::load(p)?,
        None => CaConfig::default(),
    };
    if let Some(h) = a.home {
        cfg.home = h;
    } else if a.config.is_none() {
        bail!("give --home DIR or --config FILE");
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(n) = a.name {
        cfg.name = n;
    }
    if let Some(o) = a.org {
        cfg.org = o;
    }
    if let Some(m) = a.msp_id {
        cfg.msp_id = m;
    }
    if !a.tls_host.is_empty() {
        cfg.tls_hosts = a.tls_host;
    }
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let home = cfg.home.clone();
    let (auth, secret) = tokio::task::spawn_blocking(move || Authority::open(cfg)).await??;
    let addr = listener.local_addr()?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        name = %auth.config().name,
        msp_id = %auth.config().msp_id,
        %addr,
        home = %home.display(),
        "qcss ca started"
    );
    println!(
        "qcss ca listening on {addr} (name {}, MSP {})",
        auth.config().name,
        auth.config().msp_id
    );
    println!("TLS root: {}", home.join("tls-ca-cert.pem").display());
    if let Some(s) = secret {
        println!(
            "bootstrap admin: name 'admin', secret {s} (shown once; also in {})",
            home.join("bootstrap-admin.secret").display()
        );
    }
    let registry = qcss_network::ops::Registry::new();
    let l = qcss_ca::authority::HomeLayout::new(&home);
    let certs: Vec<(String, i64)> = [
        ("root", &l.ca_cert),
        ("tls-root", &l.tls_ca_cert),
        ("server-tls", &l.server_tls_cert),
    ]
    .into_iter()
    .filter_map(|(label, p)| {
        let pem = std::fs::read(p).ok()?;
        let c = qcss_network::CertInfo::from_pem(&pem).ok()?;
        Some((label.to_owned(), c.not_after))
    })
    .collect();
    qcss_network::ops::watch_cert_expiry(&registry, certs, auth.config().cert_warn_days);
    if let Some(ops) = auth.config().ops_listen.clone() {
        let l = tokio::net::TcpListener::bind(&ops)
            .await
            .with_context(|| format!("cannot listen on {ops} (operations)"))?;
        let o = qcss_network::ops::Ops::new(registry.clone());
        tokio::spawn(qcss_network::ops::serve(l, o, std::future::pending()));
    }
    let auth = Arc::new(auth);
    if let Some(p) = auth.config().publish_crls.clone() {
        tokio::spawn(publish_crls(auth.clone(), p));
    }
    qcss_ca::server::serve(auth, listener, &registry, shutdown_signal()).await?;
    tracing::info!("qcss ca stopped");
    Ok(())
}

/// The CA's delegated publisher (`[publish_crls]`): whenever the CRL
/// number moved past what it last published (and once at start, to catch
/// up), it publishes the CA's CRLs into the channel as the delegated admin;
/// a failure is logged and retried with backoff, up to every 30 s.
async fn publish_crls(auth: Arc<Authority>, p: qcss_ca::config::PublishCrls) {
    let base = std::time::Duration::from_millis(p.poll_ms.max(50));
    tracing::info!(channel = %p.channel, orderer = %p.orderer, "publishing CRLs after every revocation");
    let conn = crate::channel::OrdererConn::new(
        p.orderer,
        p.orderer_tls_roots,
        p.admin_dir,
        p.tls_dir,
        p.channel,
    );
    let mut published = None;
    let mut pause = base;
    loop {
        tokio::time::sleep(pause).await;
        let a = auth.clone();
        let crls = match tokio::task::spawn_blocking(move || {
            let number = a.store().crl_number()?;
            if published == Some(number) {
                return Ok(None);
            }
            a.crls().map(Some)
        })
        .await
        {
            Ok(Ok(Some(c))) => c,
            Ok(Ok(None)) => continue,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the CRLs to publish");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "CRL task failed");
                continue;
            }
        };
        let (sign, tls, number) = crls;
        match crate::channel::publish_crls(&conn, vec![sign, tls]).await {
            Ok(done) => {
                tracing::info!(crl_number = number, "{done}");
                published = Some(number);
                pause = base;
            }
            Err(e) => {
                tracing::warn!(crl_number = number, error = %format!("{e:#}"), "publishing CRLs failed; will retry");
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn connect(c: &Conn) -> Result<CaClient> {
    let root = std::fs::read(&c.tls_root)
        .with_context(|| format!("cannot read TLS root {}", c.tls_root.display()))?;
    Ok(CaClient::connect(&c.url, &root, None).await?)
}

fn load_identity(dir: &Path) -> Result<SigningIdentity> {
    let msp = std::fs::read_to_string(dir.join("msp_id")).unwrap_or_default();
    SigningIdentity::load_dir(MspId(msp.trim().to_string()), dir)
        .with_context(|| format!("cannot load identity from {}", dir.display()))
}

async fn register(a: RegisterArgs) -> Result<()> {
    let who = load_identity(&a.identity)?;
    let mut attributes = Vec::new();
    for k in &a.kind {
        if !qcss_network::identity::KINDS.contains(&k.as_str()) {
            bail!(
                "unknown kind {k:?}; expected one of {}",
                qcss_network::identity::KINDS.join(", ")
            );
        }
        attributes.push(pb::Attribute {
            name: k.clone(),
            value: "true".into(),
        });
    }
    for kv in &a.attrs {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--attr {kv:?}: expected name=value");
        };
        attributes.push(pb::Attribute {
            name: k.to_string(),
            value: v.to_string(),
        });
    }
    let mut client = connect(&a.conn).await?;
    let secret = client
        .register(
            &who,
            pb::RegisterRequest {
                stamp: None,
                name: a.name,
                role: a.role,
                attributes,
                max_enrollments: a.max_enrollments,
                secret: a.secret.unwrap_or_default(),
                registrar_roles: a.registrar_roles,
            },
        )
        .await?;
    println!("{secret}");
    Ok(())
}

async fn enroll(a: EnrollArgs) -> Result<()> {
    let mut client = connect(&a.conn).await?;
    let info = client.info().await?;
    let e = client.enroll(&a.name, &a.secret, None, a.key_type).await?;
    write_enrollment(&a.out, "", &e)?;
    std::fs::write(a.out.join("msp_id"), format!("{}\n", info.msp_id))?;
    println!(
        "enrolled {} (serial {}) into {}",
        a.name,
        e.serial,
        a.out.display()
    );
    if !a.tls_hosts.is_empty() {
        let t = client
            .enroll(&a.name, &a.secret, Some(&a.tls_hosts), KeyKind::P256)
            .await?;
        write_enrollment(&a.out, "tls-", &t)?;
        println!(
            "TLS certificate for {} (serial {})",
            a.tls_hosts.join(","),
            t.serial
        );
    }
    Ok(())
}

async fn reenroll(a: ReenrollArgs) -> Result<()> {
    let who = load_identity(&a.identity)?;
    let mut client = connect(&a.conn).await?;
    if a.tls_hosts.is_empty() {
        let e = client.reenroll(&who, None).await?;
        write_enrollment(&a.identity, "", &e)?;
        println!(
            "reenrolled {} (new serial {})",
            who.cert.common_name, e.serial
        );
    } else {
        let e = client.reenroll(&who, Some(&a.tls_hosts)).await?;
        write_enrollment(&a.identity, "tls-", &e)?;
        println!(
            "reenrolled TLS for {} (new serial {})",
            who.cert.common_name, e.serial
        );
    }
    Ok(())
}

async fn revoke(a: RevokeArgs) -> Result<()> {
    let who = load_identity(&a.identity)?;
    let mut client = connect(&a.conn).await?;
    let r = client
        .revoke(&who, a.name.as_deref(), a.serial.as_deref(), &a.reason)
        .await?;
    for s in &r.revoked {
        println!("revoked {s}");
    }
    if let Some(p) = a.crl_out {
        std::fs::write(&p, &r.crl_pem).with_context(|| format!("writing {}", p.display()))?;
    }
    match (a.update_channel, a.orderer) {
        (Some(channel), Some(orderer)) => {
            let conn = crate::channel::OrdererConn::new(
                orderer,
                a.orderer_tls_root,
                a.identity,
                a.tls_dir,
                channel,
            );
            let done = crate::channel::publish_crls(&conn, vec![r.crl_pem, r.tls_crl_pem])
                .await
                .context("revoked at the CA, but the channel still has the old CRLs")?;
            println!("{done}");
            Ok(())
        }
        _ => {
            println!(
                "revoked at the CA: channels accept these certificates until their CRLs are \
                 updated (qcss channel update crl, --update-channel, or the CA's publish_crls)"
            );
            Ok(())
        }
    }
}

async fn crl(a: CrlArgs) -> Result<()> {
    let mut client = connect(&a.conn).await?;
    let r = client.crl().await?;
    std::fs::write(&a.out, &r.crl_pem).with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(p) = a.tls_out {
        std::fs::write(&p, &r.tls_crl_pem).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("CRL number {} written to {}", r.crl_number, a.out.display());
    Ok(())
}

async fn info(a: InfoArgs) -> Result<()> {
    let mut client = connect(&a.conn).await?;
    let i = client.info().await?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca-cert.pem"), &i.root_cert_pem)?;
        std::fs::write(dir.join("tls-ca-cert.pem"), &i.tls_root_cert_pem)?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "ca_name": i.ca_name, "msp_id": i.msp_id, "version": i.version,
                "max_request_bytes": i.max_request_bytes,
                "root_cert_pem": i.root_cert_pem, "tls_root_cert_pem": i.tls_root_cert_pem,
            })
        );
    } else {
        println!("CA {} (MSP {}), qcss {}", i.ca_name, i.msp_id, i.version);
        println!("max request: {} bytes", i.max_request_bytes);
    }
    Ok(())
}
