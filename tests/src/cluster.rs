//! A test ordering cluster: one CA process, identities enrolled through the
//! CLI, a channel genesis block, and N `qcss orderer start` processes — on
//! 127.0.0.1, or each in a network namespace of its own
//! ([`ClusterOptions::netns`], see [`crate::netns`]). [`Org`] is a further
//! organisation (its own CA process) for config-update tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qcss_network::channel::{BatchConfig, ChannelConfig, ChannelPolicies, Consenter, OrgConfig};
use qcss_network::msp::MspConfig;
use qcss_network::orderer_client::OrdererClient;
use qcss_network::{MspId, SigningIdentity};

use crate::load::Connector;
use crate::netns::Netns;
use crate::{CaNode, NodeProc, free_port, http_get, qcss_ok};

/// The channel every test cluster uses.
pub const CHANNEL: &str = "qcss-test";

/// A running cluster.
pub struct Cluster {
    /// Working directory (identities, configs, data, logs).
    pub dir: PathBuf,
    /// The org's CA.
    pub ca: CaNode,
    /// Orderer processes (None while stopped), index i = node id i+1.
    pub nodes: Vec<Option<NodeProc>>,
    /// gRPC address of each orderer.
    pub addrs: Vec<String>,
    /// Operations address of each orderer.
    pub ops: Vec<String>,
    /// The namespaces the nodes run in, if [`ClusterOptions::netns`].
    /// (Declared last: nodes are killed before their namespaces go.)
    pub net: Option<Netns>,
}

/// Tunables for a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of orderers.
    pub nodes: usize,
    /// Block cutting.
    pub batch: BatchConfig,
    /// Raft snapshot interval (entries).
    pub snapshot_every: u64,
    /// Raft entries kept behind a snapshot.
    pub keep_logs: u64,
    /// Run each node in a network namespace of its own (needs root and
    /// `ip`; check [`Netns::available`] first).
    pub netns: bool,
    /// Client identities to enroll besides `client1` and `revoked1`.
    pub extra_clients: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            batch: BatchConfig::default(),
            snapshot_every: 2000,
            keep_logs: 500,
            netns: false,
            extra_clients: Vec::new(),
        }
    }
}

/// Registers `name` with `role` (signed by the identity in `dir/admin`) and
/// enrolls it into `dir/name` with a TLS pair for localhost and 127.0.0.1.
pub fn enroll(dir: &Path, conn: &[String], name: &str, role: &str) {
    enroll_with_hosts(dir, conn, name, role, "localhost,127.0.0.1");
}

fn enroll_with_hosts(dir: &Path, conn: &[String], name: &str, role: &str, hosts: &str) {
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
        hosts,
    ];
    e.extend(conn.iter().map(String::as_str));
    qcss_ok(dir, &e);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

impl Cluster {
    /// Sets up and starts a cluster in `dir`.
    pub fn start(dir: &Path, opts: ClusterOptions) -> Cluster {
        let ca = CaNode::start(&dir.join("ca"), 0);
        let conn = ca.conn_args();
        let s = ca.bootstrap_secret.clone().expect("fresh CA");
        let mut a = vec![
            "ca", "enroll", "--name", "admin", "--secret", &s, "--out", "admin",
        ];
        a.extend(conn.iter().map(String::as_str));
        qcss_ok(dir, &a);
        let net = opts.netns.then(|| {
            Netns::create(opts.nodes).unwrap_or_else(|e| panic!("network namespaces: {e}"))
        });
        for i in 1..=opts.nodes {
            let hosts = match &net {
                Some(n) => format!("localhost,127.0.0.1,{}", n.ip(i)),
                None => "localhost,127.0.0.1".to_string(),
            };
            enroll_with_hosts(dir, &conn, &format!("orderer{i}"), "orderer", &hosts);
        }
        for name in ["client1", "revoked1"]
            .into_iter()
            .chain(opts.extra_clients.iter().map(String::as_str))
        {
            enroll(dir, &conn, name, "client");
        }
        let mut r = vec![
            "ca",
            "revoke",
            "--identity",
            "admin",
            "--name",
            "revoked1",
            "--crl-out",
            "crl.pem",
        ];
        r.extend(conn.iter().map(String::as_str));
        qcss_ok(dir, &r);

        let (addrs, ops): (Vec<String>, Vec<String>) = match &net {
            // Each namespace has its own ports.
            Some(n) => (1..=opts.nodes)
                .map(|i| (format!("{}:7050", n.ip(i)), format!("{}:9443", n.ip(i))))
                .unzip(),
            None => (0..opts.nodes)
                .map(|_| {
                    (
                        format!("127.0.0.1:{}", free_port()),
                        format!("127.0.0.1:{}", free_port()),
                    )
                })
                .unzip(),
        };
        let home = dir.join("ca");
        let config = ChannelConfig {
            channel_id: CHANNEL.into(),
            sequence: 0,
            orgs: vec![OrgConfig {
                msp: MspConfig {
                    msp_id: "Org1MSP".into(),
                    root_certs: vec![read(&home.join("ca-cert.pem"))],
                    tls_root_certs: vec![read(&home.join("tls-ca-cert.pem"))],
                    crls: vec![read(&dir.join("crl.pem"))],
                    ..Default::default()
                },
                peer_endpoints: vec![],
                display_name: None,
                file_key: None,
            }],
            consenters: (1..=opts.nodes)
                .map(|i| Consenter {
                    id: i as u64,
                    address: addrs[i - 1].clone(),
                    msp_id: "Org1MSP".into(),
                    tls_cert_pem: read(&dir.join(format!("orderer{i}/tls-cert.pem"))),
                    identity_cert_pem: read(&dir.join(format!("orderer{i}/cert.pem"))),
                })
                .collect(),
            batch: opts.batch.clone(),
            policies: ChannelPolicies::default(),
        };
        std::fs::write(dir.join("channel.json"), config.to_json()).expect("writing channel.json");
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
        for i in 1..=opts.nodes {
            write_node_config(dir, i, &addrs[i - 1], &ops[i - 1], &opts, None);
        }
        let mut c = Cluster {
            dir: dir.to_path_buf(),
            ca,
            nodes: (0..opts.nodes).map(|_| None).collect(),
            addrs,
            ops,
            net,
        };
        for i in 1..=opts.nodes {
            c.start_node(i);
        }
        c
    }

    /// Prepares one more orderer (not started, not yet a consenter): enrolls
    /// `orderer<id>` at the CA, picks its ports and writes its node config
    /// with the channel's genesis block (and `join_block`, if given, relative
    /// to the cluster dir). Returns its id and the consenter entry a config
    /// update adds.
    pub fn prepare_node(
        &mut self,
        opts: &ClusterOptions,
        join_block: Option<&str>,
    ) -> (usize, Consenter) {
        assert!(
            self.net.is_none(),
            "prepare_node: not with network namespaces"
        );
        let id = self.nodes.len() + 1;
        let name = format!("orderer{id}");
        enroll(&self.dir, &self.ca.conn_args(), &name, "orderer");
        let addr = format!("127.0.0.1:{}", free_port());
        let ops = format!("127.0.0.1:{}", free_port());
        write_node_config(&self.dir, id, &addr, &ops, opts, join_block);
        self.nodes.push(None);
        self.addrs.push(addr.clone());
        self.ops.push(ops);
        let consenter = Consenter {
            id: id as u64,
            address: addr,
            msp_id: "Org1MSP".into(),
            tls_cert_pem: read(&self.dir.join(format!("{name}/tls-cert.pem"))),
            identity_cert_pem: read(&self.dir.join(format!("{name}/cert.pem"))),
        };
        (id, consenter)
    }

    /// Starts (or restarts) node `id`.
    pub fn start_node(&mut self, id: usize) {
        let cfg = self.dir.join(format!("orderer{id}.toml"));
        let log = self.dir.join(format!("orderer{id}.log"));
        let cfg = cfg.display().to_string();
        let args = ["orderer", "start", "--config", &cfg];
        let p = match &self.net {
            Some(n) => {
                NodeProc::start_wrapped("ip", &n.exec_prefix(id), &args, "qcss orderer", &log)
            }
            None => NodeProc::start(&args, "qcss orderer", &log),
        };
        self.nodes[id - 1] = Some(p);
    }

    /// Cuts node `id` off from the other nodes (not from the test), in
    /// both directions. Needs [`ClusterOptions::netns`].
    pub fn partition(&self, id: usize) {
        let n = self.net.as_ref().expect("partition needs a netns cluster");
        n.isolate(id).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Undoes [`Cluster::partition`].
    pub fn heal(&self, id: usize) {
        let n = self.net.as_ref().expect("heal needs a netns cluster");
        n.heal(id).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Node `id`'s log so far.
    pub fn log(&self, id: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("orderer{id}.log"))).unwrap_or_default()
    }

    /// How to reach the nodes with `name`'s TLS pair (for tasks).
    pub fn connector(&self, name: &str) -> Connector {
        let d = self.dir.join(name);
        Connector {
            addrs: self.addrs.clone(),
            roots: self.tls_roots(),
            cert: std::fs::read(d.join("tls-cert.pem")).expect("tls cert"),
            key: std::fs::read(d.join("tls-key.pem")).expect("tls key"),
        }
    }

    /// The live node ids.
    pub fn live(&self) -> Vec<usize> {
        (1..=self.nodes.len())
            .filter(|i| self.nodes[i - 1].is_some())
            .collect()
    }

    /// The bootstrap admin of Org1 (signs config updates).
    pub fn admin(&self) -> SigningIdentity {
        self.identity("admin")
    }

    /// SIGKILLs node `id`.
    pub fn kill9(&mut self, id: usize) {
        if let Some(p) = self.nodes[id - 1].take() {
            p.kill9();
        }
    }

    /// A signing identity enrolled in this cluster's org.
    pub fn identity(&self, name: &str) -> SigningIdentity {
        SigningIdentity::load_dir(MspId("Org1MSP".into()), &self.dir.join(name)).expect("identity")
    }

    /// The consortium TLS roots.
    pub fn tls_roots(&self) -> Vec<Vec<u8>> {
        vec![std::fs::read(self.dir.join("ca/tls-ca-cert.pem")).expect("tls root")]
    }

    /// A Broadcast/Deliver client to node `id` using `name`'s TLS pair.
    pub async fn client(&self, id: usize, name: &str) -> OrdererClient {
        self.client_with_tls(id, &self.dir.join(name))
            .await
            .expect("connect")
    }

    /// A client to node `id` presenting the TLS pair in `dir`, trusting
    /// Org1's TLS root (the orderers'); the error if the handshake fails.
    pub async fn client_with_tls(&self, id: usize, d: &Path) -> Result<OrdererClient, String> {
        OrdererClient::connect(
            &self.addrs[id - 1],
            &self.tls_roots(),
            &std::fs::read(d.join("tls-cert.pem")).expect("tls cert"),
            &std::fs::read(d.join("tls-key.pem")).expect("tls key"),
        )
        .await
    }

    /// A metric's value from node `id`'s operations endpoint.
    pub fn metric(&self, id: usize, name: &str) -> Option<f64> {
        let (_, body) = http_get(&self.ops[id - 1], "/metrics").ok()?;
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// Waits until the live nodes agree on a leader; returns its id.
    pub fn wait_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let leaders: Vec<u64> = (1..=self.nodes.len())
                .filter(|i| self.nodes[i - 1].is_some())
                .filter_map(|i| self.metric(i, "qcss_orderer_raft_leader"))
                .map(|v| v as u64)
                .collect();
            if !leaders.is_empty() && leaders[0] != 0 && leaders.iter().all(|l| *l == leaders[0]) {
                return leaders[0];
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no agreed leader within {timeout:?}");
    }

    /// Waits until every live node reports height >= `h`.
    pub fn wait_height(&self, h: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ok = (1..=self.nodes.len())
                .filter(|i| self.nodes[i - 1].is_some())
                .all(|i| self.metric(i, "qcss_orderer_height").unwrap_or(0.0) as u64 >= h);
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let hs: Vec<_> = (1..=self.nodes.len())
            .map(|i| self.metric(i, "qcss_orderer_height"))
            .collect();
        panic!("nodes did not reach height {h} within {timeout:?}: {hs:?}");
    }
}

/// Writes `orderer<i>.toml` in `dir`.
fn write_node_config(
    dir: &Path,
    i: usize,
    addr: &str,
    ops: &str,
    opts: &ClusterOptions,
    join_block: Option<&str>,
) {
    let join = join_block
        .map(|b| format!("join_block = \"{b}\"\n"))
        .unwrap_or_default();
    let toml = format!(
        "node_id = {i}\nmsp_id = \"Org1MSP\"\nidentity_dir = \"orderer{i}\"\n\
         tls_cert = \"orderer{i}/tls-cert.pem\"\ntls_key = \"orderer{i}/tls-key.pem\"\n\
         genesis_block = \"genesis.block\"\n{join}data_dir = \"data{i}\"\nlisten = \"{addr}\"\n\
         ops_listen = \"{ops}\"\n\n[raft]\nsnapshot_every = {}\nkeep_logs = {}\n",
        opts.snapshot_every, opts.keep_logs
    );
    std::fs::write(dir.join(format!("orderer{i}.toml")), toml).expect("writing config");
}

/// A further organisation for config-update tests: its own CA process, its
/// bootstrap admin (`DIR/admin`) and clients enrolled with TLS certificates.
pub struct Org {
    /// Its MSP id.
    pub msp_id: String,
    /// Working directory (the CA home is `DIR/ca`).
    pub dir: PathBuf,
    /// Its CA.
    pub ca: CaNode,
}

impl Org {
    /// Starts the CA in `dir/ca` and enrolls `admin` and `clients`.
    pub fn start(dir: &Path, msp_id: &str, clients: &[&str]) -> Org {
        std::fs::create_dir_all(dir).expect("org dir");
        let ca = CaNode::start(&dir.join("ca"), 0);
        let conn = ca.conn_args();
        let s = ca.bootstrap_secret.clone().expect("fresh CA");
        let mut a = vec![
            "ca", "enroll", "--name", "admin", "--secret", &s, "--out", "admin",
        ];
        a.extend(conn.iter().map(String::as_str));
        qcss_ok(dir, &a);
        for c in clients {
            enroll(dir, &conn, c, "client");
        }
        Org {
            msp_id: msp_id.into(),
            dir: dir.to_path_buf(),
            ca,
        }
    }

    /// The org's channel-config entry (roots, TLS roots, no CRL).
    pub fn org_config(&self) -> OrgConfig {
        let home = self.dir.join("ca");
        OrgConfig {
            msp: MspConfig {
                msp_id: self.msp_id.clone(),
                root_certs: vec![read(&home.join("ca-cert.pem"))],
                tls_root_certs: vec![read(&home.join("tls-ca-cert.pem"))],
                ..Default::default()
            },
            peer_endpoints: vec![],
            display_name: None,
            file_key: None,
        }
    }

    /// A signing identity of this org.
    pub fn identity(&self, name: &str) -> SigningIdentity {
        SigningIdentity::load_dir(MspId(self.msp_id.clone()), &self.dir.join(name))
            .expect("identity")
    }
}

/// Revokes `name` at `ca` (as the CA's `admin` in `dir`) and returns the
/// CA's new CRLs (PEM): (signing certificates, TLS certificates).
pub fn revoke(dir: &Path, ca: &CaNode, name: &str) -> (String, String) {
    let conn = ca.conn_args();
    let mut r = vec!["ca", "revoke", "--identity", "admin", "--name", name];
    r.extend(conn.iter().map(String::as_str));
    qcss_ok(dir, &r);
    let (out, tls_out) = (format!("crl-{name}.pem"), format!("tls-crl-{name}.pem"));
    let mut c = vec!["ca", "crl", "--out", &out, "--tls-out", &tls_out];
    c.extend(conn.iter().map(String::as_str));
    qcss_ok(dir, &c);
    (read(&dir.join(&out)), read(&dir.join(&tls_out)))
}
