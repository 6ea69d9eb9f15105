//! Issue 15: a Jepsen-style history checker for the ordering service under
//! a mixed nemesis.
//!
//! Three `qcss orderer` processes (real mTLS, sled on disk, Raft) take load
//! from several concurrent clients for about half a minute. Each client
//! sends uniquely identifiable envelopes in small Broadcast streams to
//! nodes it picks at random, and records what it learnt about each one:
//! acknowledged (SUCCESS, with the block the answer named), already ordered
//! (a retry answered "duplicate tx id"), refused (any other definitive
//! status), or indeterminate (a timeout, a broken stream or connection, or
//! SERVICE_UNAVAILABLE — the orderer's "maybe ordered, retry"). An
//! indeterminate envelope is retried on another node with the *same bytes*
//! until it settles or the clients give up.
//!
//! Meanwhile a nemesis, driven by a seed (printed; `QCSS_NEMESIS_SEED`
//! overrides it), faults one node at a time so a quorum always exists:
//! SIGKILL (often the leader) and a restart 1–4 s later, SIGSTOP for 1–4 s
//! then SIGCONT, and — where network namespaces can be made — a partition
//! of a few seconds then a heal. Each action is logged with its time.
//!
//! Where namespaces are unavailable (or `QCSS_NEMESIS_NO_NETNS` is set) the
//! nodes run on 127.0.0.1 and the partitions are skipped, which is said on
//! stderr; otherwise each node runs in a namespace this test makes (as in
//! `orderer_faults.rs`).
//!
//! After healing, the test waits for a leader and checks that a fresh batch
//! is acknowledged through every node (liveness), that every node's chain
//! is byte-identical and valid, and then the history ([`check_history`]):
//! every acknowledged envelope is in the chain exactly once, in the block
//! its answer named; every "already ordered" one exactly once; no refused
//! envelope is in the chain; nothing is in the chain twice; nothing is in
//! the chain that no client sent; an indeterminate one at most once. It
//! prints a summary (figures only: nothing here asserts on timing but the
//! liveness bound). `QCSS_NEMESIS_SECS` changes the load's length.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qcss_network::channel::BatchConfig;
use qcss_network::orderer_client::OrdererClient;
use qcss_proto::common::{Envelope, Status};
use qcss_proto::orderer::BroadcastResponse;
use qcss_tests::chain::{identical_chains, tx};
use qcss_tests::cluster::{Cluster, ClusterOptions};
use qcss_tests::load::Connector;
use qcss_tests::netns::Netns;
use qcss_tests::signal;
use tokio_stream::StreamExt;

/// The seed when `QCSS_NEMESIS_SEED` is not set (the number).
const DEFAULT_SEED: u64 = 15;
/// Concurrent clients.
const CLIENTS: usize = 4;
/// Envelopes per Broadcast stream.
const CHUNK: usize = 4;
/// Longest wait for the stream to open or for each next answer; past it
/// the rest of the chunk is indeterminate.
const ANSWER_WAIT: Duration = Duration::from_secs(6);
/// How long after the load clients keep retrying indeterminate envelopes.
const SETTLE: Duration = Duration::from_secs(20);
/// Fresh envelopes per node in the liveness check, and its bound.
const LIVENESS_PER_NODE: usize = 10;
const LIVENESS_BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The history and its checker (pure: unit-tested below with bad histories).

/// What a client learnt about one envelope, finally.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// SUCCESS; the block the answer named, if it named one.
    Acked { block: Option<u64> },
    /// A retry was answered "duplicate tx id": an earlier attempt was ordered.
    AlreadyOrdered,
    /// A definitive answer other than SUCCESS: it must not be ordered.
    Refused { status: i32, info: String },
    /// No definitive answer: it may be ordered, at most once.
    Indeterminate,
}

/// One envelope a client sent.
#[derive(Debug, Clone)]
struct Record {
    tx_id: String,
    fate: Fate,
    /// Times its bytes were sent (1 = never retried).
    attempts: u32,
}

/// A broken rule of the history.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Violation {
    /// A tx id is in the chain more than once.
    Duplicated { tx_id: String, blocks: Vec<u64> },
    /// Acknowledged, but not in the chain.
    AckedMissing { tx_id: String },
    /// Acknowledged in one block, found in another.
    AckedWrongBlock {
        tx_id: String,
        named: u64,
        found: u64,
    },
    /// Answered "duplicate tx id", but not in the chain.
    AlreadyOrderedMissing { tx_id: String },
    /// Answered "duplicate tx id" the first time it was ever sent.
    AlreadyOrderedFirstAttempt { tx_id: String },
    /// Refused, yet ordered.
    RefusedCommitted { tx_id: String, blocks: Vec<u64> },
    /// In the chain, but no client sent it.
    Phantom { tx_id: String, blocks: Vec<u64> },
}

/// Checks `history` against `chain` (tx id -> the blocks it is in, as
/// `verify_chain` returns it); every violation, sorted.
fn check_history(history: &[Record], chain: &HashMap<String, Vec<u64>>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut sent = HashSet::new();
    for r in history {
        sent.insert(r.tx_id.as_str());
        let at = chain.get(&r.tx_id).map(Vec::as_slice).unwrap_or(&[]);
        let tx_id = r.tx_id.clone();
        match &r.fate {
            Fate::Acked { block } => match (at, block) {
                ([], _) => out.push(Violation::AckedMissing { tx_id }),
                ([found], Some(named)) if found != named => out.push(Violation::AckedWrongBlock {
                    tx_id,
                    named: *named,
                    found: *found,
                }),
                // More than once: reported below as Duplicated.
                _ => {}
            },
            Fate::AlreadyOrdered => {
                if r.attempts < 2 {
                    out.push(Violation::AlreadyOrderedFirstAttempt {
                        tx_id: tx_id.clone(),
                    });
                }
                if at.is_empty() {
                    out.push(Violation::AlreadyOrderedMissing { tx_id });
                }
            }
            Fate::Refused { .. } => {
                if !at.is_empty() {
                    out.push(Violation::RefusedCommitted {
                        tx_id,
                        blocks: at.to_vec(),
                    });
                }
            }
            Fate::Indeterminate => {}
        }
    }
    for (tx_id, blocks) in chain {
        if blocks.len() > 1 {
            out.push(Violation::Duplicated {
                tx_id: tx_id.clone(),
                blocks: blocks.clone(),
            });
        }
        if !sent.contains(tx_id.as_str()) {
            out.push(Violation::Phantom {
                tx_id: tx_id.clone(),
                blocks: blocks.clone(),
            });
        }
    }
    out.sort();
    out
}

#[test]
fn the_checker_reports_every_kind_of_violation() {
    let rec = |id: &str, fate: Fate, attempts: u32| Record {
        tx_id: id.into(),
        fate,
        attempts,
    };
    let acked = |b| Fate::Acked { block: Some(b) };
    let refused = Fate::Refused {
        status: Status::Forbidden as i32,
        info: "no".into(),
    };
    let chain: HashMap<String, Vec<u64>> = [
        ("ok", vec![1]),
        ("ok-unnamed", vec![2]),
        ("retried", vec![2]),
        ("maybe", vec![3]),
        ("twice", vec![1, 4]),
        ("moved", vec![5]),
        ("refused", vec![5]),
        ("early-dup", vec![3]),
        ("ghost", vec![6]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let good = vec![
        rec("ok", acked(1), 1),
        rec("ok-unnamed", Fate::Acked { block: None }, 1),
        rec("retried", Fate::AlreadyOrdered, 3),
        rec("maybe", Fate::Indeterminate, 2),
        rec("never", Fate::Indeterminate, 4),
        rec("declined", refused.clone(), 1),
    ];
    let good_chain: HashMap<String, Vec<u64>> = chain
        .iter()
        .filter(|(k, _)| good.iter().any(|r| &r.tx_id == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(check_history(&good, &good_chain), vec![]);

    let mut bad = good.clone();
    bad.extend([
        rec("twice", acked(1), 1),
        rec("moved", acked(4), 1),
        rec("lost", acked(7), 2),
        rec("lost-dup", Fate::AlreadyOrdered, 2),
        rec("early-dup", Fate::AlreadyOrdered, 1),
        rec("refused", refused, 1),
    ]);
    let s = String::from;
    assert_eq!(
        check_history(&bad, &chain),
        vec![
            Violation::Duplicated {
                tx_id: s("twice"),
                blocks: vec![1, 4]
            },
            Violation::AckedMissing { tx_id: s("lost") },
            Violation::AckedWrongBlock {
                tx_id: s("moved"),
                named: 4,
                found: 5
            },
            Violation::AlreadyOrderedMissing {
                tx_id: s("lost-dup")
            },
            Violation::AlreadyOrderedFirstAttempt {
                tx_id: s("early-dup")
            },
            Violation::RefusedCommitted {
                tx_id: s("refused"),
                blocks: vec![5]
            },
            Violation::Phantom {
                tx_id: s("ghost"),
                blocks: vec![6]
            },
        ]
    );
    // An indeterminate envelope ordered twice is still a duplicate.
    let twice: HashMap<String, Vec<u64>> = [(s("maybe"), vec![3, 8])].into();
    assert_eq!(
        check_history(&[rec("maybe", Fate::Indeterminate, 2)], &twice),
        vec![Violation::Duplicated {
            tx_id: s("maybe"),
            blocks: vec![3, 8]
        }]
    );
}

// ---------------------------------------------------------------------------
// The clients.

/// splitmix64: a tiny seeded generator, so a schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration of `lo..=hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// Counters shared by the clients, for the summary.
#[derive(Debug, Default)]
struct Stats {
    /// Envelope sends, retries included.
    attempts: AtomicUsize,
    /// SERVICE_UNAVAILABLE answers.
    unavailable: AtomicUsize,
    /// Streams that failed, ended early or timed out, by why.
    broken_streams: std::sync::Mutex<BTreeMap<&'static str, usize>>,
    /// Connections that could not be made.
    connect_failures: AtomicUsize,
    /// When each acknowledgement (or "already ordered") arrived.
    settled_at: std::sync::Mutex<Vec<Instant>>,
}

/// What one client does.
struct Client {
    /// Its number (in its envelopes' bodies).
    k: usize,
    tag: String,
    connector: Connector,
    me: qcss_network::SigningIdentity,
    rng: Rng,
    /// The node of its first stream (then random).
    first_node: Option<usize>,
    /// At most this many new envelopes.
    quota: usize,
    /// No new envelopes after this.
    load_end: Instant,
    /// No more retries after this (what is left stays indeterminate).
    settle_end: Instant,
    stats: Arc<Stats>,
}

/// Sends `envs` on one Broadcast stream: the answers received, in order,
/// and why the stream stopped early if it did. Every step is bounded, so a
/// SIGSTOPped or partitioned node cannot hang the client.
async fn send(
    client: &mut OrdererClient,
    envs: Vec<Envelope>,
) -> (Vec<BroadcastResponse>, Option<&'static str>) {
    let n = envs.len();
    let opened = tokio::time::timeout(
        ANSWER_WAIT,
        client.broadcast_stream(tokio_stream::iter(envs)),
    )
    .await;
    let mut stream = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return (Vec::new(), Some("stream refused")),
        Err(_) => return (Vec::new(), Some("stream did not open in time")),
    };
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(ANSWER_WAIT, stream.next()).await {
            Ok(Some(Ok(r))) => out.push(r),
            Ok(Some(Err(_))) => return (out, Some("stream failed")),
            Ok(None) => return (out, Some("stream ended early")),
            Err(_) => return (out, Some("no answer in time")),
        }
    }
    (out, None)
}

impl Client {
    /// A node other than `avoid` (the one that just failed), at random.
    fn pick(&mut self, n: usize, avoid: Option<usize>) -> usize {
        loop {
            let node = self.rng.below(n as u64) as usize + 1;
            if Some(node) != avoid || n == 1 {
                return node;
            }
        }
    }

    async fn run(mut self) -> Vec<Record> {
        let n = self.connector.addrs.len();
        let mut records: Vec<Record> = Vec::new();
        let mut envs: Vec<Envelope> = Vec::new();
        // Indices of envelopes not yet settled (sent again on the next stream).
        let mut pending: Vec<usize> = Vec::new();
        let mut conns: HashMap<usize, OrdererClient> = HashMap::new();
        let mut avoid = None;
        loop {
            let now = Instant::now();
            if now >= self.settle_end {
                break;
            }
            // Signed only when first sent, so its timestamp is fresh.
            while now < self.load_end && records.len() < self.quota && pending.len() < CHUNK {
                let body = format!("{}-c{}-{}", self.tag, self.k, records.len());
                let (env, tx_id) = tx(&self.me, body.as_bytes());
                pending.push(records.len());
                records.push(Record {
                    tx_id,
                    fate: Fate::Indeterminate,
                    attempts: 0,
                });
                envs.push(env);
            }
            if pending.is_empty() {
                break;
            }
            let node = match (self.first_node.take(), avoid) {
                (Some(f), _) => f,
                (None, a) => self.pick(n, a),
            };
            if let std::collections::hash_map::Entry::Vacant(e) = conns.entry(node) {
                match self.connector.connect(node).await {
                    Ok(c) => {
                        e.insert(c);
                    }
                    Err(_) => {
                        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                        avoid = Some(node);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            let conn = conns.get_mut(&node).expect("connected above");
            for &i in &pending {
                records[i].attempts += 1;
            }
            self.stats
                .attempts
                .fetch_add(pending.len(), Ordering::Relaxed);
            let (answers, broken) =
                send(conn, pending.iter().map(|&i| envs[i].clone()).collect()).await;
            let mut again = Vec::new();
            let mut settled = 0;
            for (k, &i) in pending.iter().enumerate() {
                let Some(r) = answers.get(k) else {
                    again.push(i);
                    continue;
                };
                let status = Status::try_from(r.status).unwrap_or(Status::Unknown);
                records[i].fate = match status {
                    Status::Success => {
                        settled += 1;
                        Fate::Acked {
                            block: qcss_network::envelope::ordered_block(&r.info),
                        }
                    }
                    Status::BadRequest if r.info.contains("duplicate tx id") => {
                        settled += 1;
                        Fate::AlreadyOrdered
                    }
                    Status::ServiceUnavailable => {
                        self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                        again.push(i);
                        continue;
                    }
                    _ => Fate::Refused {
                        status: r.status,
                        info: r.info.clone(),
                    },
                };
            }
            if settled > 0 {
                let now = Instant::now();
                let mut at = self.stats.settled_at.lock().expect("not poisoned");
                at.extend(std::iter::repeat_n(now, settled));
            }
            avoid = None;
            if let Some(why) = broken {
                let mut b = self.stats.broken_streams.lock().expect("not poisoned");
                *b.entry(why).or_default() += 1;
                // The connection may be to a dead or frozen node: drop it.
                conns.remove(&node);
                avoid = Some(node);
            } else if !again.is_empty() {
                avoid = Some(node);
            }
            let pause = if again.is_empty() { 30 } else { 150 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            pending = again;
        }
        records
    }
}

// ---------------------------------------------------------------------------
// The nemesis.

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// Prints a timestamped line (seconds since the test started).
fn say(t0: Instant, what: &str) {
    eprintln!("[{:>7.3}s] {what}", t0.elapsed().as_secs_f64());
}

/// The leader the live nodes report (the first non-zero answer), if any.
fn leader_now(c: &Cluster) -> Option<usize> {
    c.live()
        .iter()
        .filter_map(|&i| c.metric(i, "qcss_orderer_raft_leader"))
        .map(|v| v as usize)
        .find(|l| (1..=c.nodes.len()).contains(l))
}

/// Faults one node at a time until `end`, healing each before the next.
/// Returns the number of actions of each kind.
fn nemesis(
    c: &mut Cluster,
    seed: u64,
    partitions: bool,
    t0: Instant,
    end: Instant,
) -> BTreeMap<&'static str, usize> {
    let mut rng = Rng(seed);
    let mut done: BTreeMap<&'static str, usize> = BTreeMap::new();
    // Leave time for the longest fault and its recovery before `end`.
    while Instant::now() + Duration::from_secs(7) < end {
        // Every draw is made every round, so the schedule depends on the seed only.
        let quiet = rng.millis(1000, 3000);
        let kind = rng.below(if partitions { 3 } else { 2 });
        let at_leader = rng.below(2) == 0;
        let random_node = rng.below(c.nodes.len() as u64) as usize + 1;
        let length = rng.millis(1000, 4000);
        std::thread::sleep(quiet);
        let leader = leader_now(c);
        let (node, role) = match leader {
            Some(l) if at_leader => (l, "leader"),
            Some(l) if l == random_node => (random_node, "leader"),
            _ => (random_node, "follower"),
        };
        match kind {
            0 => {
                say(t0, &format!("nemesis: SIGKILL node {node} ({role})"));
                c.kill9(node);
                std::thread::sleep(length);
                say(t0, &format!("nemesis: restarting node {node}"));
                c.start_node(node);
                say(t0, &format!("nemesis: node {node} is up again"));
                *done.entry("kill+restart").or_default() += 1;
            }
            1 => {
                let pid = c.nodes[node - 1].as_ref().expect("all nodes run").pid();
                say(t0, &format!("nemesis: SIGSTOP node {node} ({role})"));
                signal(pid, "-STOP");
                std::thread::sleep(length);
                signal(pid, "-CONT");
                say(t0, &format!("nemesis: SIGCONT node {node}"));
                *done.entry("stop+cont").or_default() += 1;
            }
            _ => {
                say(t0, &format!("nemesis: partition node {node} ({role})"));
                c.partition(node);
                std::thread::sleep(length);
                c.heal(node);
                say(t0, &format!("nemesis: healed node {node}"));
                *done.entry("partition+heal").or_default() += 1;
            }
        }
    }
    done
}

// ---------------------------------------------------------------------------
// The test.

#[test]
fn mixed_nemesis_history_is_exactly_once_in_one_order() {
    let t0 = Instant::now();
    let seed = env_u64("QCSS_NEMESIS_SEED").unwrap_or(DEFAULT_SEED);
    let load_for = Duration::from_secs(env_u64("QCSS_NEMESIS_SECS").unwrap_or(32));
    eprintln!("nemesis seed {seed} (set QCSS_NEMESIS_SEED to replay or vary it)");
    let partitions = if std::env::var_os("QCSS_NEMESIS_NO_NETNS").is_some() {
        Err("QCSS_NEMESIS_NO_NETNS is set".to_string())
    } else {
        Netns::available()
    };
    if let Err(why) = &partitions {
        eprintln!(
            "\n*** network namespaces are unavailable ({why}): the nodes run on 127.0.0.1 \
             and the nemesis does NOT partition (kills and pauses only). ***\n"
        );
    }
    let partitions = partitions.is_ok();

    let tmp = tempfile::tempdir().unwrap();
    let dir = if std::env::var_os("QCSS_TEST_KEEP").is_some() {
        let p = tmp.keep();
        eprintln!("keeping {}", p.display());
        p
    } else {
        tmp.path().to_path_buf()
    };
    let opts = ClusterOptions {
        netns: partitions,
        batch: BatchConfig {
            batch_timeout_ms: 20,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut c = Cluster::start(&dir, opts);
    let first = c.wait_leader(Duration::from_secs(30));
    say(t0, &format!("cluster up, node {first} leads"));
    // Dropped before the cluster: tasks end before their nodes are killed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stats = Arc::new(Stats::default());
    let connector = c.connector("client1");
    let tag = format!("nemesis-{seed}");

    let load_start = Instant::now();
    let load_end = load_start + load_for;
    let settle_end = load_end + SETTLE;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let client = Client {
                k,
                tag: tag.clone(),
                connector: connector.clone(),
                me: c.identity("client1"),
                rng: Rng(seed ^ (k as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d)),
                first_node: None,
                quota: usize::MAX,
                load_end,
                settle_end,
                stats: stats.clone(),
            };
            rt.spawn(client.run())
        })
        .collect();
    say(
        t0,
        &format!("{CLIENTS} clients load the cluster for {load_for:?}"),
    );
    let actions = nemesis(&mut c, seed, partitions, t0, load_end);
    say(t0, "nemesis done: every node runs, unpaused and connected");
    assert_eq!(c.live().len(), 3, "every node runs again");

    let leader = c.wait_leader(Duration::from_secs(20));
    say(t0, &format!("node {leader} leads after healing"));
    let mut history: Vec<Record> = rt.block_on(async {
        let mut all = Vec::new();
        for t in clients {
            all.extend(t.await.expect("client task"));
        }
        all
    });
    say(t0, "clients done");

    // Liveness: a fresh batch through every node, acknowledged in time.
    let asked = Instant::now();
    let fresh: Vec<Record> = rt.block_on(async {
        let tasks: Vec<_> = (1..=3)
            .map(|node| {
                let client = Client {
                    k: node,
                    tag: format!("{tag}-fresh"),
                    connector: connector.clone(),
                    me: c.identity("client1"),
                    rng: Rng(seed.wrapping_add(node as u64)),
                    first_node: Some(node),
                    quota: LIVENESS_PER_NODE,
                    load_end: asked + LIVENESS_BOUND,
                    settle_end: asked + LIVENESS_BOUND,
                    stats: stats.clone(),
                };
                tokio::spawn(client.run())
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("liveness client"));
        }
        all
    });
    // A client stuck on its first chunks never signs the rest of its quota:
    // those count as not acknowledged too.
    let not_acked: Vec<&Record> = fresh
        .iter()
        .filter(|r| !matches!(r.fate, Fate::Acked { .. } | Fate::AlreadyOrdered))
        .collect();
    assert!(
        fresh.len() == 3 * LIVENESS_PER_NODE && not_acked.is_empty(),
        "liveness: after healing, {} of {} fresh envelopes were not acknowledged within \
         {LIVENESS_BOUND:?}: {not_acked:?}",
        3 * LIVENESS_PER_NODE - fresh.len() + not_acked.len(),
        3 * LIVENESS_PER_NODE
    );
    say(
        t0,
        &format!(
            "liveness: {} fresh envelopes acknowledged in {:?}",
            fresh.len(),
            asked.elapsed()
        ),
    );
    history.extend(fresh);

    // Convergence: identical, valid chains on all three nodes.
    let (blocks, chain) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(90), identical_chains(&c))
            .await
            .expect("reading and comparing the chains took over 90 s")
    });
    say(
        t0,
        &format!(
            "chains identical and valid on nodes {:?}: {} blocks",
            c.live(),
            blocks.len()
        ),
    );

    let violations = check_history(&history, &chain);

    // The summary: figures, not assertions.
    let count = |f: &dyn Fn(&Fate) -> bool| {
        let of: Vec<&Record> = history.iter().filter(|r| f(&r.fate)).collect();
        let committed = of.iter().filter(|r| chain.contains_key(&r.tx_id)).count();
        (of.len(), committed)
    };
    let (acked, acked_in) = count(&|f| matches!(f, Fate::Acked { .. }));
    let (already, already_in) = count(&|f| matches!(f, Fate::AlreadyOrdered));
    let (refused, refused_in) = count(&|f| matches!(f, Fate::Refused { .. }));
    let (indet, indet_in) = count(&|f| matches!(f, Fate::Indeterminate));
    let retried = history.iter().filter(|r| r.attempts > 1).count();
    // The longest stretch of the load in which no client heard of progress.
    let mut at = stats.settled_at.lock().expect("not poisoned").clone();
    at.sort();
    let (gap, gap_from) = at
        .iter()
        .chain([&load_end])
        .scan(load_start, |last, &t| {
            let g = (t.saturating_duration_since(*last), *last);
            *last = t.max(*last);
            Some(g)
        })
        .filter(|(_, from)| *from < load_end)
        .max()
        .unwrap_or((Duration::ZERO, load_start));
    eprintln!(
        "\n=== nemesis summary (seed {seed}) ===\n\
         envelopes sent:        {} ({} sends, {retried} envelopes retried)\n\
         acknowledged:          {acked} (committed {acked_in})\n\
         already ordered (dup): {already} (committed {already_in})\n\
         refused:               {refused} (committed {refused_in})\n\
         indeterminate:         {indet} (committed {indet_in})\n\
         along the way:         {} SERVICE_UNAVAILABLE, {} failed connections, \
         broken streams {:?}\n\
         longest stall:         {gap:.1?} without an acknowledgement, from t={:.1?}\n\
         nemesis actions:       {actions:?}{}\n\
         final height:          {} blocks, {} transactions\n\
         took:                  {:?}\n",
        history.len(),
        stats.attempts.load(Ordering::Relaxed),
        stats.unavailable.load(Ordering::Relaxed),
        stats.connect_failures.load(Ordering::Relaxed),
        stats.broken_streams.lock().expect("not poisoned"),
        gap_from.duration_since(t0),
        if partitions {
            ""
        } else {
            " (no partitions: namespaces unavailable)"
        },
        blocks.len(),
        chain.len(),
        t0.elapsed()
    );
    for r in history
        .iter()
        .filter(|r| matches!(r.fate, Fate::Refused { .. }))
        .take(5)
    {
        eprintln!("refused: {} {:?}", r.tx_id, r.fate);
    }
    assert!(
        violations.is_empty(),
        "{} history violations (seed {seed}), first ones: {:#?}",
        violations.len(),
        &violations[..violations.len().min(20)]
    );
    assert!(acked > 0, "the load acknowledged nothing");
}
