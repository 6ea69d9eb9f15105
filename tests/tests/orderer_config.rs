//! Config transactions end to end: three `qcss orderer` processes; a
//! `CONFIG_UPDATE` signed by org admins (see `qcss_orderer::config_update`)
//! becomes a config block, and the change takes effect at that block on
//! every node — a new org's members may write (and connect over TLS), new
//! batch parameters cut blocks, a replaced CRL revokes, an added consenter
//! catches up and votes, a removed one stops taking part (Raft membership
//! follows the consenter set: `qcss_orderer::membership`). Updates that
//! lack admin signatures, are stale, conflict, remove a majority of the
//! consenters or add an unusable one are refused with a clear status and
//! order nothing. One update goes through the `qcss channel update` CLI.

use std::time::{Duration, Instant};

use qcss_network::SigningIdentity;
use qcss_network::block::{config_from_block, is_config_block, last_config_index};
use qcss_network::channel::{BatchConfig, ChannelConfig};
use qcss_network::orderer_client::OrdererClient;
use qcss_orderer::config_update::{ConfigUpdate, build_update_envelope, sign_update};
use qcss_proto::common::{Envelope, Status};
use qcss_proto::orderer::BroadcastResponse;
use qcss_tests::chain::{block_sizes, identical_chains, tx};
use qcss_tests::cluster::{CHANNEL, Cluster, ClusterOptions, Org, revoke};

/// Sends one envelope and returns the answer.
async fn send(client: &mut OrdererClient, env: Envelope) -> BroadcastResponse {
    client.broadcast(vec![env]).await.unwrap().remove(0)
}

/// The configuration in force, as node 1 serves it.
async fn current(c: &Cluster) -> ChannelConfig {
    let mut client = c.client(1, "client1").await;
    client
        .current_config(&c.identity("client1"), CHANNEL)
        .await
        .unwrap()
        .1
}

/// An update from the current configuration to `change(config)`, signed by
/// `signers`, submitted (as a CONFIG_UPDATE envelope from `signers[0]`)
/// through node `node`; returns the answer.
async fn update(
    c: &Cluster,
    node: usize,
    signers: &[&SigningIdentity],
    change: impl FnOnce(&mut ChannelConfig),
) -> BroadcastResponse {
    let now = current(c).await;
    let mut next = now.clone();
    change(&mut next);
    let mut u = ConfigUpdate::propose(&now, next);
    for s in signers {
        sign_update(&mut u, s).unwrap();
    }
    let (env, _) = build_update_envelope(&u, signers[0]).unwrap();
    let mut client = c.client(node, "client1").await;
    send(&mut client, env).await
}

/// Whether node `node` refuses a client presenting the TLS pair in `dir`.
/// With TLS 1.3 the server judges the client's certificate after the
/// client finished its side of the handshake, so a refusal may show only on
/// the first call.
async fn tls_refused(c: &Cluster, node: usize, dir: &std::path::Path, probe: Envelope) -> bool {
    match c.client_with_tls(node, dir).await {
        Err(_) => true,
        Ok(mut client) => client
            .broadcast_partial(vec![probe], Duration::from_secs(10))
            .await
            .1
            .is_some(),
    }
}

/// The block number a SUCCESS names.
fn block_of(r: &BroadcastResponse) -> u64 {
    assert_eq!(r.status, Status::Success as i32, "{}", r.info);
    qcss_network::envelope::ordered_block(&r.info)
        .unwrap_or_else(|| panic!("no block number in {:?}", r.info))
}

/// Waits until every node runs configuration `seq`.
fn wait_sequence(c: &Cluster, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if c.live()
            .iter()
            .all(|&i| c.metric(i, "qcss_orderer_config_sequence") == Some(seq as f64))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("not every node reached config sequence {seq}");
}

/// Adds `org` to the channel, signed by `signers`; returns the config block.
async fn add_org(c: &Cluster, org: &Org, signers: &[&SigningIdentity]) -> u64 {
    let o = org.org_config();
    let r = update(c, 1, signers, move |cfg| cfg.orgs.push(o)).await;
    block_of(&r)
}

#[test]
fn adding_an_org_takes_effect_at_its_block() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::start(tmp.path(), ClusterOptions::default());
    c.wait_leader(Duration::from_secs(20));
    let org2 = Org::start(&tmp.path().join("org2"), "Org2MSP", &["client2"]);
    let client2 = org2.identity("client2");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Before: Org2's client can neither connect (its TLS root is not
        // trusted) nor write (over an Org1 TLS connection).
        let probe = tx(&client2, b"probe").0;
        assert!(
            tls_refused(&c, 2, &org2.dir.join("client2"), probe).await,
            "an Org2 TLS client was served before Org2 was added"
        );
        let mut via_org1 = c.client(2, "client1").await;
        let r = send(&mut via_org1, tx(&client2, b"too early").0).await;
        assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);
        assert!(r.info.contains("not a member"), "{}", r.info);

        let n = add_org(&c, &org2, &[&c.admin()]).await;
        wait_sequence(&c, 1);
        println!("Org2MSP added by config block {n}");

        // After, on every node: Org2's client connects with its own TLS
        // certificate and its envelopes are ordered after block n.
        let mut ids = Vec::new();
        for node in 1..=3 {
            let mut own = c
                .client_with_tls(node, &org2.dir.join("client2"))
                .await
                .unwrap_or_else(|e| panic!("node {node} refused Org2's TLS client: {e}"));
            let (env, id) = tx(&client2, format!("welcome {node}").as_bytes());
            let r = send(&mut own, env).await;
            assert!(block_of(&r) > n);
            ids.push(id);
        }
        c.wait_height(n + 2, Duration::from_secs(10));
        let (blocks, seen) = identical_chains(&c).await;
        assert!(is_config_block(&blocks[n as usize]));
        let cfg = config_from_block(&blocks[n as usize]).unwrap();
        assert_eq!(cfg.sequence, 1);
        assert!(cfg.orgs.iter().any(|o| o.msp.msp_id == "Org2MSP"));
        for b in &blocks[n as usize..] {
            assert_eq!(
                last_config_index(b).unwrap(),
                n,
                "LAST_CONFIG after the config block"
            );
        }
        for id in &ids {
            assert!(seen[id][0] > n);
        }
    });
    println!(
        "adding_an_org_takes_effect_at_its_block took {:?}",
        t0.elapsed()
    );
}

#[test]
fn batch_parameters_change_at_their_block() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let opts = ClusterOptions {
        batch: BatchConfig {
            max_message_count: 10,
            batch_timeout_ms: 50,
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Cluster::start(tmp.path(), opts);
    let leader = c.wait_leader(Duration::from_secs(20)) as usize;
    let me = c.identity("client1");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = c.client(leader, "client1").await;
        let burst = |tag: &str| -> Vec<Envelope> {
            (0..100)
                .map(|i| tx(&me, format!("{tag}-{i}").as_bytes()).0)
                .collect()
        };
        let single = async |client: &mut OrdererClient, tag: &str| {
            let t = Instant::now();
            let r = send(client, tx(&me, tag.as_bytes()).0).await;
            block_of(&r);
            t.elapsed()
        };
        let r = client.broadcast(burst("before")).await.unwrap();
        let before_blocks: Vec<u64> = r.iter().map(block_of).collect();
        let lone_before = single(&mut client, "lone-before").await;

        let r = update(&c, leader, &[&c.admin()], |cfg| {
            cfg.batch.max_message_count = 1000;
            cfg.batch.batch_timeout_ms = 1500;
        })
        .await;
        let n = block_of(&r);
        wait_sequence(&c, 1);

        let r = client.broadcast(burst("after")).await.unwrap();
        let after_blocks: Vec<u64> = r.iter().map(block_of).collect();
        let lone_after = single(&mut client, "lone-after").await;
        c.wait_height(n + 1, Duration::from_secs(10));
        let (blocks, _) = identical_chains(&c).await;
        let sizes = block_sizes(&blocks);
        let max_in = |bs: &[u64]| bs.iter().map(|b| sizes[*b as usize - 1]).max().unwrap();
        println!(
            "block sizes {sizes:?}; config block {n}; one envelope took {lone_before:?} \
             before and {lone_after:?} after"
        );
        assert!(before_blocks.iter().all(|b| *b < n));
        assert!(after_blocks.iter().all(|b| *b > n));
        assert!(max_in(&before_blocks) <= 10, "MaxMessageCount 10 before");
        assert!(max_in(&after_blocks) > 10, "MaxMessageCount 1000 after");
        assert!(
            lone_before < Duration::from_millis(1000),
            "BatchTimeout 50 ms before"
        );
        assert!(
            lone_after >= Duration::from_millis(1400),
            "BatchTimeout 1.5 s after"
        );
    });
    println!(
        "batch_parameters_change_at_their_block took {:?}",
        t0.elapsed()
    );
}

#[test]
fn updates_without_enough_admins_or_otherwise_invalid_are_refused() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::start(tmp.path(), ClusterOptions::default());
    c.wait_leader(Duration::from_secs(20));
    let org2 = Org::start(&tmp.path().join("org2"), "Org2MSP", &["client2"]);
    let (admin1, admin2) = (c.admin(), org2.identity("admin"));
    let client2 = org2.identity("client2");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // One org: MAJORITY of admins is Org1's admin alone.
        add_org(&c, &org2, &[&admin1]).await;
        wait_sequence(&c, 1);
        let h0 = c.metric(1, "qcss_orderer_height").unwrap();
        let slower = |cfg: &mut ChannelConfig| cfg.batch.batch_timeout_ms = 200;

        // Two orgs: MAJORITY needs both admins.
        let r = update(&c, 2, &[&admin1], slower).await;
        println!("only Org1's admin: {} {}", r.status, r.info);
        assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);
        assert!(
            r.info
                .contains("does not satisfy the channel's Admins policy")
                && r.info.contains("MAJORITY Admins"),
            "{}",
            r.info
        );
        // A client's signature is not an admin's.
        let r = update(&c, 3, &[&admin1, &client2], slower).await;
        assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);
        assert!(r.info.contains("Admins policy"), "{}", r.info);
        // A signature over something else.
        let now = current(&c).await;
        let mut u = ConfigUpdate::propose(&now, now.clone());
        sign_update(&mut u, &admin1).unwrap();
        sign_update(&mut u, &admin2).unwrap();
        u.config.batch.batch_timeout_ms = 999;
        let (env, _) = build_update_envelope(&u, &admin1).unwrap();
        let r = send(&mut c.client(1, "client1").await, env).await;
        assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);
        assert!(r.info.contains("signature"), "{}", r.info);
        // Stale: based on sequence 0.
        let mut stale = ConfigUpdate::propose(&now, now.clone());
        stale.sequence = 1;
        stale.config.sequence = 1;
        sign_update(&mut stale, &admin1).unwrap();
        sign_update(&mut stale, &admin2).unwrap();
        let (env, _) = build_update_envelope(&stale, &admin1).unwrap();
        let r = send(&mut c.client(1, "client1").await, env).await;
        assert_eq!(r.status, Status::BadRequest as i32, "{}", r.info);
        assert!(r.info.contains("sequence 1"), "{}", r.info);
        // A configuration that does not build.
        let r = update(&c, 1, &[&admin1, &admin2], |cfg| {
            cfg.batch.max_message_count = 0
        })
        .await;
        assert_eq!(r.status, Status::BadRequest as i32, "{}", r.info);
        assert!(r.info.contains("invalid"), "{}", r.info);
        // Removing two of three consenters at once.
        let r = update(&c, 1, &[&admin1, &admin2], |cfg| {
            cfg.consenters.truncate(1);
        })
        .await;
        println!("remove 2 of 3 consenters: {} {}", r.status, r.info);
        assert_eq!(r.status, Status::BadRequest as i32, "{}", r.info);
        assert!(r.info.contains("would remove 2 of 3 at once"), "{}", r.info);
        // Adding a consenter whose signing certificate is a client's.
        let client_pem = std::fs::read_to_string(c.dir.join("client1/cert.pem")).unwrap();
        let r = update(&c, 2, &[&admin1, &admin2], move |cfg| {
            let mut c4 = cfg.consenters[0].clone();
            c4.id = 4;
            c4.address = "127.0.0.1:1".into();
            c4.tls_cert_pem = client_pem.clone();
            c4.identity_cert_pem = client_pem;
            cfg.consenters.push(c4);
        })
        .await;
        println!("add a client as consenter: {} {}", r.status, r.info);
        assert_eq!(r.status, Status::BadRequest as i32, "{}", r.info);
        assert!(r.info.contains("not orderer"), "{}", r.info);
        // A consenter change is an admin change like any other.
        let r = update(&c, 3, &[&admin1], |cfg| {
            cfg.consenters.pop();
        })
        .await;
        assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);
        assert!(r.info.contains("Admins policy"), "{}", r.info);

        std::thread::sleep(Duration::from_millis(300));
        for i in 1..=3 {
            assert_eq!(
                c.metric(i, "qcss_orderer_height").unwrap(),
                h0,
                "nothing ordered"
            );
        }
        wait_sequence(&c, 1);

        // Two conflicting updates with the same sequence, both properly
        // signed, through two nodes at once: exactly one is applied.
        let now = current(&c).await;
        let mut envs = Vec::new();
        for timeout in [300, 400] {
            let mut next = now.clone();
            next.batch.batch_timeout_ms = timeout;
            let mut u = ConfigUpdate::propose(&now, next);
            sign_update(&mut u, &admin1).unwrap();
            sign_update(&mut u, &admin2).unwrap();
            envs.push(build_update_envelope(&u, &admin2).unwrap().0);
        }
        let (mut a, mut b) = (c.client(1, "client1").await, c.client(3, "client1").await);
        let (e1, e2) = (envs.remove(0), envs.remove(0));
        let (r1, r2) = tokio::join!(send(&mut a, e1), send(&mut b, e2));
        println!(
            "conflicting updates: {} {:?} / {} {:?}",
            r1.status, r1.info, r2.status, r2.info
        );
        let ok = [&r1, &r2]
            .iter()
            .filter(|r| r.status == Status::Success as i32)
            .count();
        assert_eq!(ok, 1, "exactly one of two conflicting updates applies");
        let loser = if r1.status == Status::Success as i32 {
            &r2
        } else {
            &r1
        };
        assert_eq!(loser.status, Status::BadRequest as i32, "{}", loser.info);
        assert!(loser.info.contains("sequence"), "{}", loser.info);
        wait_sequence(&c, 2);
        c.wait_height(h0 as u64 + 1, Duration::from_secs(10));
        let (blocks, _) = identical_chains(&c).await;
        assert_eq!(
            blocks.len() as f64,
            h0 + 1.0,
            "one config block, nothing else"
        );
    });
    println!(
        "updates_without_enough_admins_or_otherwise_invalid_are_refused took {:?}",
        t0.elapsed()
    );
}

#[test]
fn replacing_a_crl_revokes_a_client() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let opts = ClusterOptions {
        extra_clients: vec!["client2".into()],
        ..Default::default()
    };
    let c = Cluster::start(tmp.path(), opts);
    c.wait_leader(Duration::from_secs(20));
    let client2 = c.identity("client2");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut own = c.client(2, "client2").await;
        let (env, before) = tx(&client2, b"still trusted");
        block_of(&send(&mut own, env).await);

        let (crl, tls_crl) = revoke(&c.dir, &c.ca, "client2");
        // Revoked at the CA, but the channel has the old CRL: still accepted.
        let (env, limbo) = tx(&client2, b"revoked at the CA only");
        block_of(&send(&mut own, env).await);

        let r = update(&c, 1, &[&c.admin()], move |cfg| {
            cfg.orgs[0].msp.crls = vec![crl, tls_crl];
        })
        .await;
        let n = block_of(&r);
        wait_sequence(&c, 1);
        println!("CRL replaced by config block {n}");

        for node in 1..=3 {
            let mut via_client1 = c.client(node, "client1").await;
            let r = send(&mut via_client1, tx(&client2, b"after").0).await;
            assert_eq!(
                r.status,
                Status::Forbidden as i32,
                "node {node}: {}",
                r.info
            );
            assert!(r.info.contains("revoked"), "node {node}: {}", r.info);
            // Its TLS certificate is revoked too: new connections fail.
            let probe = tx(&c.identity("client1"), b"probe").0;
            assert!(
                tls_refused(&c, node, &c.dir.join("client2"), probe).await,
                "node {node} still accepts client2's TLS certificate"
            );
        }
        let r = send(
            &mut c.client(1, "client1").await,
            tx(&c.identity("client1"), b"ok").0,
        )
        .await;
        assert!(block_of(&r) > n, "others still write");
        let (_, seen) = identical_chains(&c).await;
        assert!(seen[&before][0] < n && seen[&limbo][0] < n);
    });
    println!("replacing_a_crl_revokes_a_client took {:?}", t0.elapsed());
}

/// Waits until every live node reports `value` for metric `name`.
fn wait_metric(c: &Cluster, name: &str, value: f64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if c.live().iter().all(|&i| c.metric(i, name) == Some(value)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let got: Vec<_> = c.live().iter().map(|&i| c.metric(i, name)).collect();
    panic!("{name} is not {value} on every node within {timeout:?}: {got:?}");
}

/// Orders `n` envelopes from `client1` through node `node`; returns the
/// highest block they went into.
async fn order(c: &Cluster, node: usize, tag: &str, n: usize) -> u64 {
    let me = c.identity("client1");
    let envs = (0..n)
        .map(|i| tx(&me, format!("{tag}-{i}").as_bytes()).0)
        .collect();
    let r = c
        .client(node, "client1")
        .await
        .broadcast(envs)
        .await
        .unwrap();
    r.iter().map(block_of).max().unwrap()
}

#[test]
fn a_fourth_consenter_catches_up_and_votes() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let opts = ClusterOptions::default();
    let mut c = Cluster::start(tmp.path(), opts.clone());
    c.wait_leader(Duration::from_secs(20));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Some history before the new node exists.
    rt.block_on(async {
        for round in 0..5 {
            order(&c, 1 + round % 3, &format!("before-{round}"), 20).await;
        }
    });
    // The new orderer starts with the genesis block and its CA-issued
    // identity; it is no consenter yet and waits.
    let (id, consenter) = c.prepare_node(&opts, None);
    c.start_node(id);
    let n = rt.block_on(async {
        let r = update(&c, 2, &[&c.admin()], move |cfg| {
            cfg.consenters.push(consenter)
        })
        .await;
        block_of(&r)
    });
    println!(
        "consenter {id} added by config block {n} after {:?}",
        t0.elapsed()
    );
    wait_metric(&c, "qcss_orderer_raft_voters", 4.0, Duration::from_secs(30));
    wait_metric(
        &c,
        "qcss_orderer_raft_learners",
        0.0,
        Duration::from_secs(5),
    );
    println!("4 voters after {:?}", t0.elapsed());
    assert!(
        c.metric(id, "qcss_orderer_snapshots_installed_total")
            .unwrap_or(0.0)
            >= 1.0,
        "the new node starts from a snapshot holding the chain up to its config block"
    );
    rt.block_on(async {
        // It orders (forwarding to the leader) and holds the identical chain,
        // every block signed by a consenter of its time.
        let b = order(&c, id, "via-new", 10).await;
        assert!(b > n);
        c.wait_height(b + 1, Duration::from_secs(10));
        identical_chains(&c).await;
    });
    // Without one old node, the 4-node cluster still has its quorum (3).
    let leader = c.wait_leader(Duration::from_secs(10)) as usize;
    let victim = (1..=3).find(|&i| i != leader).unwrap();
    c.kill9(victim);
    rt.block_on(async {
        let b = order(&c, id, "three-of-four", 10).await;
        c.wait_height(b + 1, Duration::from_secs(10));
        let (blocks, _) = identical_chains(&c).await;
        assert_eq!(
            config_from_block(&blocks[n as usize])
                .unwrap()
                .consenters
                .len(),
            4
        );
    });
    assert_eq!(c.metric(id, "qcss_orderer_raft_voters"), Some(4.0));
    println!(
        "a_fourth_consenter_catches_up_and_votes took {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_removed_consenter_stops_taking_part_via_the_cli() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(tmp.path(), ClusterOptions::default());
    let leader = c.wait_leader(Duration::from_secs(20)) as usize;
    let gone = (1..=3).rev().find(|&i| i != leader).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(order(&c, 1, "before", 10));

    // The consortium admin's workflow: fetch the configuration, edit it,
    // create the update, sign it, submit it.
    let dir = c.dir.clone();
    let conn = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(
            [
                "--orderer",
                c.addrs[leader - 1].as_str(),
                "--tls-root",
                "ca/tls-ca-cert.pem",
                "--identity",
                "admin",
                // The bootstrap admin has no TLS pair: connect with client1's.
                "--tls-dir",
                "client1",
                "--channel",
                CHANNEL,
            ]
            .map(String::from),
        );
        v
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        qcss_tests::qcss_ok(&dir, &a)
    };
    run(conn(&["channel", "config", "--out", "current.json"]));
    let mut next = ChannelConfig::from_json(&std::fs::read(dir.join("current.json")).unwrap())
        .expect("current.json");
    next.consenters.retain(|k| k.id != gone as u64);
    std::fs::write(dir.join("next.json"), next.to_json()).unwrap();
    let out = run(conn(&[
        "channel",
        "update",
        "create",
        "--config",
        "next.json",
        "--out",
        "update.json",
    ]));
    println!("{out}");
    assert!(out.contains(&format!("- consenter {gone}")), "{out}");
    // Unsigned, it is refused and nothing is ordered.
    let submit = conn(&["channel", "update", "submit", "--update", "update.json"]);
    let submit: Vec<&str> = submit.iter().map(String::as_str).collect();
    let err = qcss_tests::qcss_err(&dir, &submit);
    assert!(
        err.contains("FORBIDDEN") && err.contains("Admins policy"),
        "{err}"
    );
    let out = run(vec![
        "channel".into(),
        "update".into(),
        "sign".into(),
        "--update".into(),
        "update.json".into(),
        "--identity".into(),
        "admin".into(),
    ]);
    assert!(out.contains("1 signature(s)"), "{out}");
    let out = run(conn(&[
        "channel",
        "update",
        "submit",
        "--update",
        "update.json",
    ]));
    println!("{out}");
    let n: u64 = out
        .split("committed in block ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no block number in {out:?}"));

    // Raft membership follows: two voters on the remaining nodes.
    let rest: Vec<usize> = (1..=3).filter(|&i| i != gone).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rest
        .iter()
        .any(|&i| c.metric(i, "qcss_orderer_raft_voters") != Some(2.0))
    {
        assert!(
            Instant::now() < deadline,
            "membership did not drop node {gone}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "node {gone} removed by block {n}; 2 voters after {:?}",
        t0.elapsed()
    );
    // The rest order; the removed node's chain stops at the config block.
    let b = rt.block_on(order(&c, rest[0], "after", 20));
    assert!(b > n);
    std::thread::sleep(Duration::from_millis(500));
    let h_gone = c.metric(gone, "qcss_orderer_height").unwrap() as u64;
    assert_eq!(
        h_gone,
        n + 1,
        "the removed node took no part after its removal"
    );
    // Its Raft traffic is refused; without it the two remaining voters order.
    c.kill9(gone);
    rt.block_on(async {
        let b = order(&c, rest[1], "two", 5).await;
        c.wait_height(b + 1, Duration::from_secs(10));
        let (blocks, _) = identical_chains(&c).await;
        let cfg = config_from_block(&blocks[n as usize]).unwrap();
        assert_eq!(cfg.consenters.len(), 2);
    });

    // Removing the leader itself (one of two: half, allowed): it keeps
    // leading until the membership without it commits, then steps down and
    // the last consenter leads alone.
    let leader = c.wait_leader(Duration::from_secs(10)) as usize;
    let last = *rest.iter().find(|&&i| i != leader).unwrap();
    let r = rt.block_on(update(&c, last, &[&c.admin()], move |cfg| {
        cfg.consenters.retain(|k| k.id != leader as u64)
    }));
    let m = block_of(&r);
    println!(
        "leader {leader} removed by block {m} after {:?}",
        t0.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.metric(last, "qcss_orderer_raft_leader") != Some(last as f64)
        || c.metric(last, "qcss_orderer_raft_voters") != Some(1.0)
    {
        assert!(
            Instant::now() < deadline,
            "node {last} did not take over alone"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("node {last} leads alone after {:?}", t0.elapsed());
    c.kill9(leader);
    rt.block_on(async {
        let b = order(&c, last, "alone", 5).await;
        assert!(b > m);
        identical_chains(&c).await;
    });
    println!(
        "a_removed_consenter_stops_taking_part_via_the_cli took {:?}",
        t0.elapsed()
    );
}
