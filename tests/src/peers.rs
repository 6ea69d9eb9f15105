//! A test consortium: N orgs, each with its own CA process and one peer,
//! plus three orderers (Org1's), all real `qcss` processes on 127.0.0.1
//! with CA-issued identities, a genesis block naming every org's peer
//! endpoint, and the example contract installed, approved and committed
//! through the CLI.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qcss_network::channel::{BatchConfig, ChannelConfig, ChannelPolicies, Consenter, OrgConfig};
use qcss_network::msp::MspConfig;
use qcss_network::{MspId, SigningIdentity};
use qcss_peer::client::GatewayClient;

use crate::{CaNode, NodeProc, free_port, http_get, qcss, qcss_ok};

/// The channel of every test consortium.
pub const CHANNEL: &str = "qcss-test";

/// Where the example contract's wasm is built by `chaincode/build-contracts.sh`.
pub fn example_wasm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chaincode/contracts/build/example.wasm")
}

/// One org: its CA and working directory (`DIR/orgN`).
pub struct TestOrg {
    /// `OrgNMSP`.
    pub msp_id: String,
    /// Its directory: `ca/`, `admin/`, `peer1/`, `client1/`, ...
    pub dir: PathBuf,
    /// Its CA process.
    pub ca: CaNode,
}

fn enroll(
    dir: &Path,
    conn: &[String],
    (name, role, kind): (&str, &str, Option<&str>),
    key_type: &str,
) {
    let mut a = vec![
        "ca",
        "register",
        "--identity",
        "admin",
        "--name",
        name,
        "--role",
        role,
    ];
    if let Some(attrs) = kind {
        a.extend(["--kind", attrs]);
    }
    a.extend(conn.iter().map(String::as_str));
    let secret = qcss_ok(dir, &a).trim().to_string();
    let mut e = vec![
        "ca",
        "enroll",
        "--name",
        name,
        "--secret",
        &secret,
        "--out",
        name,
        "--tls-hosts",
        "localhost,127.0.0.1",
        "--key-type",
        key_type,
    ];
    e.extend(conn.iter().map(String::as_str));
    qcss_ok(dir, &e);
}

impl TestOrg {
    fn start(dir: &Path, msp_id: &str) -> TestOrg {
        std::fs::create_dir_all(dir).expect("org dir");
        // Each org's CAs get their own names (ca.orgN, tls.ca.orgN): CRLs
        // are told apart by their issuer's name.
        let org = msp_id.trim_end_matches("MSP");
        let name = format!("ca.{}", org.to_lowercase());
        let ca = CaNode::start_with(
            &dir.join("ca"),
            0,
            &["--msp-id", msp_id, "--name", &name, "--org", org],
        );
        let conn = ca.conn_args();
        let s = ca.bootstrap_secret.clone().expect("fresh CA");
        let mut a = vec![
            "ca",
            "enroll",
            "--name",
            "admin",
            "--secret",
            &s,
            "--out",
            "admin",
            "--tls-hosts",
            "localhost,127.0.0.1",
        ];
        a.extend(conn.iter().map(String::as_str));
        qcss_ok(dir, &a);
        enroll(dir, &conn, ("peer1", "peer", None), "p256");
        enroll(dir, &conn, ("client1", "client", None), "p256");
        enroll(dir, &conn, ("client2", "client", None), "p256");
        TestOrg {
            msp_id: msp_id.into(),
            dir: dir.to_path_buf(),
            ca,
        }
    }

    /// Enrolls a further identity (with a TLS pair) in this org.
    pub fn enroll(&self, name: &str, role: &str, kind: Option<&str>) {
        enroll(&self.dir, &self.ca.conn_args(), (name, role, kind), "p256");
    }

    /// As [`TestOrg::enroll`], with a signing key of `key_type` (`p256` or
    /// `ed25519`).
    pub fn enroll_key(&self, name: &str, role: &str, kind: Option<&str>, key_type: &str) {
        enroll(
            &self.dir,
            &self.ca.conn_args(),
            (name, role, kind),
            key_type,
        );
    }

    /// A signing identity of this org.
    pub fn identity(&self, name: &str) -> SigningIdentity {
        SigningIdentity::load_dir(MspId(self.msp_id.clone()), &self.dir.join(name))
            .expect("identity")
    }

    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Orgs (one peer each).
    pub orgs: usize,
    /// Batch parameters.
    pub batch: BatchConfig,
    /// Deploy the example contract (install on every peer, approve by every
    /// org, commit) with this endorsement policy ("" = channel default).
    pub example_policy: Option<String>,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            orgs: 3,
            batch: BatchConfig::default(),
            example_policy: Some(String::new()),
        }
    }
}

/// A running consortium.
pub struct Network {
    /// Working directory.
    pub dir: PathBuf,
    /// The orgs, `orgs[0]` is Org1MSP.
    pub orgs: Vec<TestOrg>,
    /// Orderer processes (index = node id - 1).
    pub orderers: Vec<Option<NodeProc>>,
    /// Orderer addresses.
    pub orderer_addrs: Vec<String>,
    /// Orderer operations addresses.
    pub orderer_ops: Vec<String>,
    /// Peer processes, one per org.
    pub peers: Vec<Option<NodeProc>>,
    /// Peer gRPC addresses.
    pub peer_addrs: Vec<String>,
    /// Peer operations addresses.
    pub peer_ops: Vec<String>,
}

impl Network {
    /// Sets up and starts everything in `dir`.
    pub fn start(dir: &Path, opts: NetworkOptions) -> Network {
        let orgs: Vec<TestOrg> = (1..=opts.orgs)
            .map(|i| TestOrg::start(&dir.join(format!("org{i}")), &format!("Org{i}MSP")))
            .collect();
        let conn1 = orgs[0].ca.conn_args();
        for i in 1..=3 {
            enroll(
                &orgs[0].dir,
                &conn1,
                (&format!("orderer{i}"), "orderer", None),
                "p256",
            );
        }
        let orderer_addrs: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let orderer_ops: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let peer_addrs: Vec<String> = (0..opts.orgs)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let peer_ops: Vec<String> = (0..opts.orgs)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let config = ChannelConfig {
            channel_id: CHANNEL.into(),
            sequence: 0,
            orgs: orgs
                .iter()
                .enumerate()
                .map(|(i, o)| OrgConfig {
                    msp: MspConfig {
                        msp_id: o.msp_id.clone(),
                        root_certs: vec![o.read("ca/ca-cert.pem")],
                        tls_root_certs: vec![o.read("ca/tls-ca-cert.pem")],
                        ..Default::default()
                    },
                    peer_endpoints: vec![peer_addrs[i].clone()],
                    display_name: None,
                    // The org's key for confidential MDSS files, made as an
                    // operator would: the secret at `orgN/files-key`.
                    file_key: Some(
                        qcss_ok(&o.dir, &["files", "keygen", "--out", "files-key"])
                            .trim()
                            .to_owned(),
                    ),
                })
                .collect(),
            consenters: (1..=3)
                .map(|i| Consenter {
                    id: i as u64,
                    address: orderer_addrs[i - 1].clone(),
                    msp_id: "Org1MSP".into(),
                    tls_cert_pem: orgs[0].read(&format!("orderer{i}/tls-cert.pem")),
                    identity_cert_pem: orgs[0].read(&format!("orderer{i}/cert.pem")),
                })
                .collect(),
            batch: opts.batch.clone(),
            policies: ChannelPolicies::default(),
        };
        std::fs::write(dir.join("channel.json"), config.to_json()).expect("channel.json");
        qcss_ok(
            dir,
            &[
                "channel",
                "genesis",
                "--config",
                "channel.json",
                "--out",
                "genesis.block",
            ],
        );
        for i in 1..=3 {
            let toml = format!(
                "node_id = {i}\nmsp_id = \"Org1MSP\"\nidentity_dir = \"org1/orderer{i}\"\n\
                 tls_cert = \"org1/orderer{i}/tls-cert.pem\"\ntls_key = \"org1/orderer{i}/tls-key.pem\"\n\
                 genesis_block = \"genesis.block\"\ndata_dir = \"orderer{i}-data\"\nlisten = \"{}\"\n\
                 ops_listen = \"{}\"\n",
                orderer_addrs[i - 1],
                orderer_ops[i - 1],
            );
            std::fs::write(dir.join(format!("orderer{i}.toml")), toml).expect("orderer config");
        }
        for (i, o) in orgs.iter().enumerate() {
            let n = i + 1;
            let toml = format!(
                "msp_id = \"{}\"\nidentity_dir = \"org{n}/peer1\"\ntls_cert = \"org{n}/peer1/tls-cert.pem\"\n\
                 tls_key = \"org{n}/peer1/tls-key.pem\"\ngenesis_block = \"genesis.block\"\n\
                 data_dir = \"peer{n}-data\"\nlisten = \"{}\"\nops_listen = \"{}\"\n",
                o.msp_id, peer_addrs[i], peer_ops[i]
            );
            std::fs::write(dir.join(format!("peer{n}.toml")), toml).expect("peer config");
        }
        let mut net = Network {
            dir: dir.to_path_buf(),
            orderers: (0..3).map(|_| None).collect(),
            orderer_addrs,
            orderer_ops,
            peers: (0..opts.orgs).map(|_| None).collect(),
            peer_addrs,
            peer_ops,
            orgs,
        };
        for i in 1..=3 {
            net.start_orderer(i);
        }
        for i in 1..=opts.orgs {
            net.start_peer(i);
        }
        if let Some(policy) = &opts.example_policy {
            net.deploy("example", "1.0", 1, &example_wasm(), policy, &[]);
        }
        net
    }

    /// Starts (or restarts) orderer `id` (1-based).
    pub fn start_orderer(&mut self, id: usize) {
        let cfg = self
            .dir
            .join(format!("orderer{id}.toml"))
            .display()
            .to_string();
        let log = self.dir.join(format!("orderer{id}.log"));
        self.orderers[id - 1] = Some(NodeProc::start(
            &["orderer", "start", "--config", &cfg],
            "qcss orderer",
            &log,
        ));
    }

    /// Starts (or restarts) the peer of org `n` (1-based).
    pub fn start_peer(&mut self, n: usize) {
        let cfg = self.dir.join(format!("peer{n}.toml")).display().to_string();
        let log = self.dir.join(format!("peer{n}.log"));
        self.peers[n - 1] = Some(NodeProc::start(
            &["peer", "start", "--config", &cfg],
            "qcss peer",
            &log,
        ));
    }

    /// SIGKILLs the peer of org `n`.
    pub fn kill_peer(&mut self, n: usize) {
        if let Some(p) = self.peers[n - 1].take() {
            p.kill9();
        }
    }

    /// SIGKILLs orderer `id`.
    pub fn kill_orderer(&mut self, id: usize) {
        if let Some(p) = self.orderers[id - 1].take() {
            p.kill9();
        }
    }

    /// `qcss tx invoke` of the example contract's `put key value` through
    /// org `n`'s peer as its `client1`; the CLI's output.
    pub fn put_example(&self, n: usize, key: &str, value: &str) -> String {
        self.cli(
            &[
                "tx",
                "invoke",
                "--chaincode",
                "example",
                "--fn",
                "put",
                "--args",
                &format!(r#"["{key}","{value}"]"#),
            ],
            &self.conn(n, "client1"),
        )
    }

    /// Changes the channel configuration with a config update that Org1's
    /// admin signs (enough when Org1 is the only org): `edit` changes the
    /// configuration in force, fetched from orderer 1. Returns what
    /// `qcss channel update create` printed (the changes); panics unless
    /// the update commits.
    pub fn update_config(&self, edit: impl FnOnce(&mut ChannelConfig)) -> String {
        let conn = |args: &[&str]| {
            let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            v.extend(
                [
                    "--orderer",
                    self.orderer_addrs[0].as_str(),
                    "--tls-root",
                    "org1/ca/tls-ca-cert.pem",
                    "--identity",
                    "org1/admin",
                    "--tls-dir",
                    "org1/client1",
                    "--channel",
                    CHANNEL,
                ]
                .map(String::from),
            );
            v
        };
        let run = |args: Vec<String>| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            qcss_ok(&self.dir, &a)
        };
        run(conn(&["channel", "config", "--out", "current.json"]));
        let mut next = ChannelConfig::from_json(
            &std::fs::read(self.dir.join("current.json")).expect("config"),
        )
        .expect("current.json");
        edit(&mut next);
        std::fs::write(self.dir.join("next.json"), next.to_json()).expect("next.json");
        let changes = run(conn(&[
            "channel",
            "update",
            "create",
            "--config",
            "next.json",
            "--out",
            "update.json",
        ]));
        run([
            "channel",
            "update",
            "sign",
            "--update",
            "update.json",
            "--identity",
            "org1/admin",
        ]
        .map(String::from)
        .to_vec());
        let out = run(conn(&[
            "channel",
            "update",
            "submit",
            "--update",
            "update.json",
        ]));
        assert!(out.contains("committed in block"), "{out}");
        changes
    }

    /// The peer log of org `n` so far.
    pub fn peer_log(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("peer{n}.log"))).unwrap_or_default()
    }

    /// CLI connection arguments: `--peer` of org `n`'s peer, as `who` of org `n`.
    pub fn conn(&self, n: usize, who: &str) -> Vec<String> {
        vec![
            "--peer".into(),
            self.peer_addrs[n - 1].clone(),
            "--identity".into(),
            format!("org{n}/{who}"),
            "--channel".into(),
            CHANNEL.into(),
        ]
    }

    /// Runs `qcss ARGS CONN` from the network directory; must succeed.
    pub fn cli(&self, args: &[&str], conn: &[String]) -> String {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(conn.iter().map(String::as_str));
        qcss_ok(&self.dir, &a)
    }

    /// Packages `wasm`, installs it on every peer (as each org's admin),
    /// approves it by `approvers` (every org if empty) and commits it.
    pub fn deploy(
        &self,
        name: &str,
        version: &str,
        sequence: u64,
        wasm: &Path,
        policy: &str,
        approvers: &[usize],
    ) {
        let pkg = format!("{name}-{version}.pkg");
        let wasm = wasm.display().to_string();
        qcss_ok(
            &self.dir,
            &[
                "chaincode",
                "package",
                "--name",
                name,
                "--version",
                version,
                "--wasm",
                &wasm,
                "--policy",
                policy,
                "--out",
                &pkg,
            ],
        );
        for n in 1..=self.orgs.len() {
            self.cli(&["chaincode", "install", &pkg], &self.conn(n, "admin"));
        }
        let seq = sequence.to_string();
        let def = [
            "--name",
            name,
            "--version",
            version,
            "--sequence",
            &seq,
            "--package",
            &pkg,
            "--policy",
            policy,
        ];
        let approvers: Vec<usize> = if approvers.is_empty() {
            (1..=self.orgs.len()).collect()
        } else {
            approvers.to_vec()
        };
        for n in approvers {
            let mut a = vec!["chaincode", "approve"];
            a.extend(def);
            self.cli(&a, &self.conn(n, "admin"));
        }
        let mut a = vec!["chaincode", "commit"];
        a.extend(def);
        self.cli(&a, &self.conn(1, "admin"));
        // Every peer has the definition once it has the commit's block.
        let h = self.height(1);
        self.wait_heights(h, Duration::from_secs(30));
    }

    /// An mTLS channel to org `n`'s peer with the TLS pair of `who` of org `m`.
    pub async fn channel_as(&self, n: usize, m: usize, who: &str) -> tonic::transport::Channel {
        let d = self.orgs[m - 1].dir.join(who);
        let root = std::fs::read(self.orgs[n - 1].dir.join("ca/tls-ca-cert.pem")).expect("root");
        let cert = std::fs::read(d.join("tls-cert.pem")).expect("tls cert");
        let key = std::fs::read(d.join("tls-key.pem")).expect("tls key");
        qcss_peer::client::connect(&self.peer_addrs[n - 1], &[root], (&cert, &key))
            .await
            .expect("connect to peer")
    }

    /// A Gateway client to org `n`'s peer as `who` of org `m`.
    pub async fn gateway_as(&self, n: usize, m: usize, who: &str) -> GatewayClient {
        let ch = self.channel_as(n, m, who).await;
        GatewayClient::new(ch, Arc::new(self.orgs[m - 1].identity(who)), CHANNEL)
    }

    /// A Gateway client to org `n`'s peer as its `client1`.
    pub async fn gateway(&self, n: usize) -> GatewayClient {
        self.gateway_as(n, n, "client1").await
    }

    /// A Prometheus figure of org `n`'s peer.
    pub fn metric(&self, n: usize, name: &str) -> Option<f64> {
        scrape(&self.peer_ops[n - 1], name)
    }

    /// A Prometheus figure of orderer `id` (1-based).
    pub fn orderer_metric(&self, id: usize, name: &str) -> Option<f64> {
        scrape(&self.orderer_ops[id - 1], name)
    }

    /// Org `n`'s peer's ledger height (from its metrics; 0 if down).
    pub fn height(&self, n: usize) -> u64 {
        self.metric(n, "qcss_peer_ledger_height").unwrap_or(0.0) as u64
    }

    /// Waits until every running peer has at least height `h`.
    pub fn wait_heights(&self, h: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let hs: Vec<u64> = (1..=self.peers.len())
                .filter(|n| self.peers[n - 1].is_some())
                .map(|n| self.height(n))
                .collect();
            if hs.iter().all(|x| *x >= h) {
                return;
            }
            if Instant::now() > deadline {
                panic!("peers did not reach height {h} within {timeout:?}: {hs:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `qcss ledger info` of org `n`'s peer, as JSON.
    pub fn ledger_info(&self, n: usize) -> serde_json::Value {
        let out = self.cli(&["ledger", "info"], &self.conn(n, "client1"));
        serde_json::from_str(out.trim()).expect("ledger info JSON")
    }

    /// Runs the CLI expecting failure; its stderr.
    pub fn cli_err(&self, args: &[&str], conn: &[String]) -> String {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(conn.iter().map(String::as_str));
        let out = qcss(&self.dir, &a);
        assert!(
            !out.status.success(),
            "qcss {a:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for p in self.peers.iter_mut().chain(self.orderers.iter_mut()) {
            if let Some(p) = p.take() {
                p.kill9();
            }
        }
    }
}

/// Where the traceability contract's wasm is built by
/// `chaincode/build-contracts.sh`.
pub fn traceability_wasm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chaincode/contracts/build/traceability.wasm")
}

impl Network {
    /// Runs `qcss ARGS CONN` from the network directory, whatever its
    /// outcome: (success, stdout, stderr).
    pub fn cli_any(&self, args: &[&str], conn: &[String]) -> (bool, String, String) {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(conn.iter().map(String::as_str));
        let out = qcss(&self.dir, &a);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// An unlabelled Prometheus figure `name` from the operations port at `ops`.
fn scrape(ops: &str, name: &str) -> Option<f64> {
    let (_, body) = http_get(ops, "/metrics").ok()?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
