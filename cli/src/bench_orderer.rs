//! `qcss bench orderer`: starts a local three-node ordering cluster as child
//! processes (identities made in-process, real mTLS, real sled, real Raft),
//! then measures ordered envelopes/s and broadcast-to-commit latency at
//! several client counts. Envelopes are signed before the timed run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use prost::Message;
use qcss_network::certgen::{CertAuthority, SigningProfile, random_serial, rcgen_key};
use qcss_network::channel::{BatchConfig, ChannelConfig, ChannelPolicies, Consenter, OrgConfig};
use qcss_network::msp::MspConfig;
use qcss_network::orderer_client::OrdererClient;
use qcss_network::signing::{KeyKind, SigningKey};
use qcss_network::{MspId, Role, SigningIdentity, envelope};
use qcss_proto::common::{Envelope, HeaderType, Status};
use tokio_stream::StreamExt;

#[derive(Debug, Args)]
pub(crate) struct OrdererBenchArgs {
    /// Client counts to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// Envelopes per client count (split over the clients).
    #[arg(long, default_value_t = 20_000)]
    envelopes: usize,
    /// Payload bytes per envelope (the signed envelope is ~1 KiB larger).
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// MaxMessageCount of the channel.
    #[arg(long, default_value_t = 500)]
    max_message_count: u32,
    /// BatchTimeout of the channel, ms.
    #[arg(long, default_value_t = 50)]
    batch_timeout_ms: u64,
    /// Offered load in envelopes/s over all clients (0 = as fast as the streams go).
    /// Run once unpaced to find the peak, then at half of it for the latency target.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Signing key type of the client and the orderers (`p256` or
    /// `ed25519`); TLS keys stay P-256.
    #[arg(long, default_value = "p256")]
    key_type: KeyKind,
    /// Working directory (identities, data, logs); a fresh temporary one if absent.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One point of the sweep.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Point {
    /// Concurrent clients (one Broadcast stream each, spread over the nodes).
    pub clients: usize,
    /// Envelopes answered SUCCESS.
    pub ordered: usize,
    /// Envelopes answered otherwise.
    pub failed: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Ordered envelopes per second.
    pub per_sec: f64,
    /// Broadcast-to-SUCCESS latency percentiles, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

struct Cluster {
    children: Vec<Child>,
    addrs: Vec<String>,
    roots: Vec<Vec<u8>>,
    client_tls: (Vec<u8>, Vec<u8>),
    client: SigningIdentity,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(qcss_network::ports::free_port()?)
}

/// Writes cert.pem/key.pem (+ tls-cert.pem/tls-key.pem) for `name`.
fn identity(
    ca: &CertAuthority,
    tls_ca: &CertAuthority,
    dir: &Path,
    name: &str,
    role: Role,
    kind: KeyKind,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let key = SigningKey::generate_kind(kind)?;
    let profile = SigningProfile {
        name: name.into(),
        org: "Bench".into(),
        role,
        attributes: BTreeMap::new(),
    };
    let cert = ca.issue_signing(&profile, &rcgen_key(&key)?, &random_serial()?, 30)?;
    key.write_pem_file(&dir.join("key.pem"))?;
    std::fs::write(dir.join("cert.pem"), cert)?;
    let tkey = SigningKey::generate()?;
    let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let tcert = tls_ca.issue_tls(
        name,
        "Bench",
        &hosts,
        &rcgen_key(&tkey)?,
        &random_serial()?,
        30,
    )?;
    tkey.write_pem_file(&dir.join("tls-key.pem"))?;
    std::fs::write(dir.join("tls-cert.pem"), tcert)?;
    Ok(())
}

fn start_cluster(dir: &Path, a: &OrdererBenchArgs) -> Result<Cluster> {
    let ca = CertAuthority::new_root("ca.bench", "Bench", 30)?;
    let tls_ca = CertAuthority::new_root("tlsca.bench", "Bench", 30)?;
    for i in 1..=3 {
        identity(
            &ca,
            &tls_ca,
            &dir.join(format!("orderer{i}")),
            &format!("orderer{i}"),
            Role::Orderer,
            a.key_type,
        )?;
    }
    identity(
        &ca,
        &tls_ca,
        &dir.join("client"),
        "client",
        Role::Client,
        a.key_type,
    )?;
    let addrs: Vec<String> = (0..3)
        .map(|_| free_port().map(|p| format!("127.0.0.1:{p}")))
        .collect::<Result<_>>()?;
    let read = |p: PathBuf| std::fs::read_to_string(&p).with_context(|| p.display().to_string());
    let config = ChannelConfig {
        channel_id: "bench".into(),
        sequence: 0,
        orgs: vec![OrgConfig {
            msp: MspConfig {
                msp_id: "BenchMSP".into(),
                root_certs: vec![ca.cert_pem().to_string()],
                tls_root_certs: vec![tls_ca.cert_pem().to_string()],
                ..Default::default()
            },
            peer_endpoints: vec![],
            display_name: None,
            file_key: None,
        }],
        consenters: (1..=3)
            .map(|i| {
                Ok(Consenter {
                    id: i,
                    address: addrs[i as usize - 1].clone(),
                    msp_id: "BenchMSP".into(),
                    tls_cert_pem: read(dir.join(format!("orderer{i}/tls-cert.pem")))?,
                    identity_cert_pem: read(dir.join(format!("orderer{i}/cert.pem")))?,
                })
            })
            .collect::<Result<_>>()?,
        batch: BatchConfig {
            max_message_count: a.max_message_count,
            batch_timeout_ms: a.batch_timeout_ms,
            ..Default::default()
        },
        policies: ChannelPolicies::default(),
    };
    qcss_network::channel::Channel::new(config.clone())?;
    std::fs::write(
        dir.join("genesis.block"),
        qcss_network::block::genesis_block(&config).encode_to_vec(),
    )?;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 1..=3 {
        let toml = format!(
            "node_id = {i}\nmsp_id = \"BenchMSP\"\nidentity_dir = \"orderer{i}\"\n\
             tls_cert = \"orderer{i}/tls-cert.pem\"\ntls_key = \"orderer{i}/tls-key.pem\"\n\
             genesis_block = \"genesis.block\"\ndata_dir = \"data{i}\"\nlisten = \"{}\"\n",
            addrs[i - 1]
        );
        let cfg = dir.join(format!("orderer{i}.toml"));
        std::fs::write(&cfg, toml)?;
        let log = std::fs::File::create(dir.join(format!("orderer{i}.log")))?;
        let mut child = Command::new(&exe)
            .args(["--log", "warn", "orderer", "start", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let out = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        if !line.starts_with("qcss orderer") {
            bail!(
                "orderer {i} did not start; see {}",
                dir.join(format!("orderer{i}.log")).display()
            );
        }
        children.push(child);
    }
    Ok(Cluster {
        children,
        addrs,
        roots: vec![tls_ca.cert_pem().as_bytes().to_vec()],
        client_tls: (
            std::fs::read(dir.join("client/tls-cert.pem"))?,
            std::fs::read(dir.join("client/tls-key.pem"))?,
        ),
        client: SigningIdentity::load_dir(MspId("BenchMSP".into()), &dir.join("client"))?,
    })
}

fn sign(c: &Cluster, n: usize, payload: usize, tag: &str) -> Result<Vec<Envelope>> {
    (0..n)
        .map(|i| {
            let mut data = format!("{tag}-{i}-").into_bytes();
            data.resize(payload.max(data.len()), b'x');
            Ok(envelope::build(&c.client, "bench", HeaderType::EndorserTransaction, data)?.0)
        })
        .collect()
}

async fn run_point(c: &Cluster, clients: usize, envs: Vec<Envelope>, rate: f64) -> Result<Point> {
    let per = envs.len().div_ceil(clients.max(1));
    let mut chunks: Vec<Vec<Envelope>> = Vec::new();
    let mut it = envs.into_iter();
    for _ in 0..clients {
        chunks.push(it.by_ref().take(per).collect());
    }
    let mut conns = Vec::new();
    for k in 0..clients {
        conns.push(
            OrdererClient::connect(
                &c.addrs[k % c.addrs.len()],
                &c.roots,
                &c.client_tls.0,
                &c.client_tls.1,
            )
            .await
            .map_err(anyhow::Error::msg)?,
        );
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (client, chunk) in conns.into_iter().zip(chunks) {
        let per_client_rate = if rate > 0.0 {
            rate / clients.max(1) as f64
        } else {
            0.0
        };
        tasks.push(tokio::spawn(stream_chunk(client, chunk, per_client_rate)));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await??;
        lat.extend(l);
        failed += f;
    }
    let seconds = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Point {
        clients,
        ordered: lat.len(),
        failed,
        seconds,
        per_sec: lat.len() as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
    })
}

/// Sends a chunk on one Broadcast stream; returns SUCCESS latencies (ms) and failures.
async fn stream_chunk(
    mut client: OrdererClient,
    chunk: Vec<Envelope>,
    rate: f64,
) -> Result<(Vec<f64>, usize)> {
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::with_capacity(chunk.len())));
    let s2 = sent.clone();
    let n = chunk.len();
    let (tx, rx) = tokio::sync::mpsc::channel::<Envelope>(1024);
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for (i, e) in chunk.into_iter().enumerate() {
            if rate > 0.0 {
                // Open-loop pacing: envelope i leaves at start + i/rate.
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
            }
            if let Ok(mut v) = s2.lock() {
                v.push(Instant::now());
            }
            if tx.send(e).await.is_err() {
                break;
            }
        }
    });
    let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut responses = client.broadcast_stream(outbound).await?;
    let mut lat = Vec::with_capacity(n);
    let mut failed = 0;
    let mut i = 0;
    while let Some(r) = responses.next().await {
        let r = r?;
        let t0 = sent
            .lock()
            .ok()
            .and_then(|v| v.get(i).copied())
            .unwrap_or_else(Instant::now);
        if r.status == Status::Success as i32 {
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
        i += 1;
        if i == n {
            break;
        }
    }
    Ok((lat, failed + (n - i)))
}

pub(crate) fn run(a: OrdererBenchArgs) -> Result<()> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("qcss-bench-orderer-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Runtime::new()?;
    let points = rt.block_on(async {
        let cluster = start_cluster(&dir, &a)?;
        // Wait for a leader: retry a warm-up envelope until it is ordered.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut cl = OrdererClient::connect(&cluster.addrs[0], &cluster.roots, &cluster.client_tls.0, &cluster.client_tls.1)
                .await
                .map_err(anyhow::Error::msg)?;
            let r = cl.broadcast(sign(&cluster, 1, a.payload, "warmup")?).await?;
            if r.first().is_some_and(|r| r.status == Status::Success as i32) {
                break;
            }
            if Instant::now() > deadline {
                bail!("the cluster did not elect a leader within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !a.json {
            println!("3 orderers, {} identities", a.key_type);
        }
        let mut points = Vec::new();
        for &c in &a.clients {
            let envs = sign(&cluster, a.envelopes, a.payload, &format!("c{c}"))?;
            let p = run_point(&cluster, c, envs, a.rate).await?;
            if !a.json {
                println!(
                    "clients {:>4}: {:>9.0} envelopes/s  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  ({} ordered, {} failed)",
                    p.clients, p.per_sec, p.p50_ms, p.p99_ms, p.max_ms, p.ordered, p.failed
                );
            }
            points.push(p);
        }
        Ok::<_, anyhow::Error>(points)
    })?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "nodes": 3, "key_type": a.key_type.to_string(), "payload_bytes": a.payload, "offered_rate": a.rate, "envelopes_per_point": a.envelopes,
                "max_message_count": a.max_message_count, "batch_timeout_ms": a.batch_timeout_ms,
                "points": points,
            }))?
        );
    }
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
