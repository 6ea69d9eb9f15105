//! Property test of the traceability contract's transformation graph: for
//! 20 seeds, a random DAG of batches and transformations (consuming random
//! quantities of random earlier batches; some attempts over-consume and must
//! be refused, changing nothing) is built in the real wasm contract and in an
//! in-memory model, and every batch's `trace_upstream` / `trace_downstream`
//! (nodes, edges with quantities) and `get_batch` availability must match the
//! model. The PRNG is an inline xorshift64*, so every run is reproducible.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod common;

use common::{contract_wasm, who};
use qcss_chaincode::unit_code::with_check_digit as gs1;
use qcss_chaincode::{
    Caller, CodeHash, Invocation, InvokeError, Limits, MemoryState, Runtime, Simulation, Timestamp,
    Version,
};
use serde_json::{Value, json};

const T0: i64 = 1_764_000_000;
const YEAR: i64 = 365 * 24 * 3600;
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SEEDS: u64 = 20;
const ROOT_BATCHES: usize = 5;
const TRANSFORMS: usize = 20;

/// xorshift64* (Vigna): small, seedable, good enough to pick graphs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Never zero; spread small seeds.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The runtime with an in-memory ledger; each successful submit is one block.
struct Ledger<'r> {
    rt: &'r Runtime,
    code: CodeHash,
    state: MemoryState,
    block: u64,
}

impl<'r> Ledger<'r> {
    fn new(rt: &'r Runtime, code: CodeHash) -> Self {
        Ledger {
            rt,
            code,
            state: MemoryState::new(),
            block: 0,
        }
    }

    fn invoke(&mut self, caller: &Caller, f: &str, arg: &str) -> Result<Simulation, InvokeError> {
        self.block += 1;
        let inv = Invocation {
            namespace: "traceability".into(),
            function: f.into(),
            args: vec![arg.as_bytes().to_vec()],
            tx_id: format!("tx{:05}", self.block),
            channel: "qcss".into(),
            channel_orgs: Vec::new(),
            timestamp: Timestamp {
                seconds: T0,
                nanos: 0,
            },
            caller: caller.clone(),
        };
        self.rt.invoke(&self.code, &inv, &self.state)
    }

    fn submit(&mut self, caller: &Caller, f: &str, args: Value) -> Value {
        let arg = args.to_string();
        let sim = self
            .invoke(caller, f, &arg)
            .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
        self.state.apply(
            &sim,
            Version {
                block: self.block,
                tx: 0,
            },
        );
        payload(&sim)
    }

    fn query(&mut self, caller: &Caller, f: &str, arg: &str) -> Value {
        let sim = self
            .invoke(caller, f, arg)
            .unwrap_or_else(|e| panic!("{f} {arg}: {e}"));
        assert!(sim.writes.is_empty(), "{f} is a query but wrote");
        payload(&sim)
    }

    /// Expects a contract error containing `expected`; nothing is committed
    /// and the contract produced no writes.
    fn refuse(&mut self, caller: &Caller, f: &str, args: Value, expected: &str) {
        let before = self.state.clone();
        let arg = args.to_string();
        match self.invoke(caller, f, &arg) {
            Err(InvokeError::Contract { message, .. }) => assert!(
                message.contains(expected),
                "{f}: expected an error containing {expected:?}, got {message:?}"
            ),
            Err(e) => panic!("{f}: expected a contract error, got {e}"),
            Ok(_) => panic!("{f} {arg}: expected refusal {expected:?}, but it succeeded"),
        }
        assert_eq!(self.state, before);
    }
}

fn payload(sim: &Simulation) -> Value {
    if sim.response.payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&sim.response.payload).expect("JSON payload")
    }
}

/// The model: every batch's quantity and availability, and every edge
/// `(input, output, quantity)`.
#[derive(Default)]
struct Model {
    /// id → (quantity, available)
    batches: BTreeMap<String, (u64, u64)>,
    /// In creation order.
    order: Vec<String>,
    edges: Vec<(String, String, u64)>,
}

impl Model {
    fn add(&mut self, id: &str, quantity: u64) {
        self.batches.insert(id.to_owned(), (quantity, quantity));
        self.order.push(id.to_owned());
    }

    /// The closure of `root` (itself included) and the edges reached from it.
    fn walk(&self, root: &str, upstream: bool) -> (BTreeSet<String>, Vec<(String, String, u64)>) {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([root.to_owned()]);
        let mut edges = Vec::new();
        while let Some(id) = queue.pop_front() {
            if !seen.insert(id.clone()) {
                continue;
            }
            for e in &self.edges {
                let (from, to) = if upstream { (&e.1, &e.0) } else { (&e.0, &e.1) };
                if *from == id {
                    edges.push(e.clone());
                    queue.push_back(to.clone());
                }
            }
        }
        edges.sort();
        (seen, edges)
    }
}

fn batch_args(gtin: &str, lot: &str, quantity: u64) -> Value {
    json!({"gtin": gtin, "lot": lot, "quantity": quantity, "uom": "KGM",
           "production_date": "2025-06-01", "site": "line 1"})
}

fn run(seed: u64, rt: &Runtime, code: CodeHash) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    let mut l = Ledger::new(rt, code);
    let factory = who("FactoryMSP", &["enterprise"]);
    let regulator = who("RegulatorMSP", &["regulator"]);
    let anyone = who("PlatformMSP", &["consumer"]);
    l.submit(
        &factory,
        "apply_permit",
        json!({"certificate_sha256": SHA, "issuer": "CQC", "scope": "all", "valid_until": T0 + YEAR}),
    );
    l.submit(&regulator, "approve_permit", json!({"msp": "FactoryMSP"}));
    let gtins: Vec<String> = (1..=3).map(|k| gs1(&format!("069012345600{k}"))).collect();
    for g in &gtins {
        l.submit(
            &factory,
            "register_product",
            json!({"gtin": g, "name": format!("product {g}"), "category": "test"}),
        );
    }

    let mut m = Model::default();
    let mut lot = 0;
    let mut new_lot = |rng: &mut Rng| {
        lot += 1;
        let g = &gtins[rng.range(0, gtins.len() as u64 - 1) as usize];
        (g.clone(), format!("L{lot}"))
    };
    for _ in 0..ROOT_BATCHES {
        let (g, lot) = new_lot(&mut rng);
        let q = rng.range(1, 500);
        l.submit(&factory, "register_batch", batch_args(&g, &lot, q));
        m.add(&format!("{g}/{lot}"), q);
    }

    let mut refused = 0;
    let mut tid = 0;
    for _ in 0..TRANSFORMS {
        // Pick 1..=3 distinct earlier batches.
        let n = rng.range(1, 3.min(m.order.len() as u64)) as usize;
        let mut picked: Vec<String> = Vec::new();
        while picked.len() < n {
            let id = &m.order[rng.range(0, m.order.len() as u64 - 1) as usize];
            if !picked.contains(id) {
                picked.push(id.clone());
            }
        }
        let over = if rng.chance(25) {
            Some(rng.range(0, n as u64 - 1) as usize)
        } else {
            // Only batches with something left can be consumed.
            picked.retain(|id| m.batches[id].1 > 0);
            if picked.is_empty() {
                continue;
            }
            None
        };
        let inputs: Vec<(String, u64)> = picked
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let avail = m.batches[id].1;
                let q = if over == Some(i) {
                    avail + rng.range(1, 50)
                } else if avail == 0 {
                    // Refused anyway (the over-consumed input comes later or
                    // earlier); any positive quantity.
                    1
                } else {
                    rng.range(1, avail)
                };
                (id.clone(), q)
            })
            .collect();
        let (g, out_lot) = new_lot(&mut rng);
        let out_q = rng.range(1, 300);
        tid += 1;
        let args = json!({
            "transformation_id": format!("T-{seed}-{tid}"),
            "inputs": inputs.iter().map(|(b, q)| json!({"batch": b, "quantity": q})).collect::<Vec<_>>(),
            "output": batch_args(&g, &out_lot, out_q),
        });
        // The first input that asks for more than is left is the one refused.
        let first_bad = inputs.iter().find(|(b, q)| *q > m.batches[b].1);
        match first_bad {
            Some((b, q)) => {
                let left = m.batches[b].1;
                l.refuse(
                    &factory,
                    "transform",
                    args,
                    &format!("batch {b} has only {left} KGM left, cannot consume {q}"),
                );
                refused += 1;
            }
            None => {
                let out = l.submit(&factory, "transform", args);
                let out_id = format!("{g}/{out_lot}");
                assert_eq!(out["id"], out_id.as_str(), "seed {seed}");
                for (b, q) in &inputs {
                    m.batches.get_mut(b).unwrap().1 -= q;
                    m.edges.push((b.clone(), out_id.clone(), *q));
                }
                m.add(&out_id, out_q);
            }
        }
    }

    for id in &m.order {
        let b = l.query(&anyone, "get_batch", id);
        let (quantity, available) = m.batches[id];
        assert_eq!(b["quantity"], quantity, "seed {seed} {id}");
        assert_eq!(b["available"], available, "seed {seed} {id}");
        for upstream in [true, false] {
            let f = if upstream {
                "trace_upstream"
            } else {
                "trace_downstream"
            };
            let g = l.query(&anyone, f, id);
            let ctx = format!("seed {seed} {f} {id}");
            assert_eq!(g["root"], id.as_str(), "{ctx}");
            let nodes = g["nodes"].as_array().unwrap();
            assert_eq!(nodes[0]["id"], id.as_str(), "{ctx}: root first");
            let ids: Vec<String> = nodes
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
                .collect();
            let set: BTreeSet<String> = ids.iter().cloned().collect();
            assert_eq!(set.len(), ids.len(), "{ctx}: a node listed twice");
            for n in nodes {
                let (q, a) = m.batches[n["id"].as_str().unwrap()];
                assert_eq!(n["quantity"], q, "{ctx}");
                assert_eq!(n["available"], a, "{ctx}");
                assert_eq!(n["uom"], "KGM", "{ctx}");
                assert_eq!(n["recalled"], false, "{ctx}");
            }
            let mut edges: Vec<(String, String, u64)> = g["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["input"].as_str().unwrap().to_owned(),
                        e["output"].as_str().unwrap().to_owned(),
                        e["quantity"].as_u64().unwrap(),
                    )
                })
                .collect();
            edges.sort();
            let (want_nodes, want_edges) = m.walk(id, upstream);
            assert_eq!(set, want_nodes, "{ctx}: nodes");
            assert_eq!(edges, want_edges, "{ctx}: edges");
        }
    }
    (m.edges.len(), refused)
}

#[test]
fn random_transformation_graphs_match_the_model() {
    let rt = Runtime::new(Limits::default());
    let code = rt
        .install(&contract_wasm("traceability"))
        .expect("traceability installs");
    let (mut edges, mut refused) = (0, 0);
    for seed in 1..=SEEDS {
        let (e, r) = run(seed, &rt, code);
        edges += e;
        refused += r;
    }
    eprintln!("{SEEDS} graphs: {edges} edges, {refused} refused over-consumptions");
    assert!(refused > 0, "no over-consumption was tried");
    assert!(
        edges > SEEDS as usize * 5,
        "graphs too small: {edges} edges"
    );
}
