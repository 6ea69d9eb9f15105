//! What `qcss network` tells about a network: the summary `up` prints,
//! `network status`, and the probes used to see whether a node is up (TCP
//! connects, small bounded HTTP requests to operations endpoints and APIs,
//! figures read from one scrape of `/metrics`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::network::{CONTRACT, NetworkInfo, alive, read_pids};

/// Whether something accepts a TCP connection at `addr` within 200 ms.
pub(crate) fn tcp_open(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)).ok())
        .is_some()
}

/// A GET on an operations endpoint: (status, body); `None` if nothing
/// answers within half a second or the answer takes over 2 s.
pub(crate) fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    http(
        addr,
        "GET",
        path,
        None,
        (Duration::from_millis(500), Duration::from_secs(2)),
    )
    .ok()
}

/// Largest answer [`http`] reads (a chain node's status with 31 producers
/// is ~10 KiB, a history of 500 transactions well under 1 MiB, a node's
/// `/metrics` tens of KiB).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// One HTTP/1.1 request (`Connection: close`) to a node's operations
/// endpoint or API: (status, body). `timeouts` are (connect, read/write).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    (connect, io): (Duration, Duration),
) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let a: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("address {addr:?} is not host:port"))?;
    let mut s = std::net::TcpStream::connect_timeout(&a, connect)
        .with_context(|| format!("nothing answers at {addr}"))?;
    s.set_read_timeout(Some(io))?;
    s.set_write_timeout(Some(io))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.take(MAX_ANSWER as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_ANSWER {
        bail!("{addr}: answer over {MAX_ANSWER} bytes");
    }
    let text = String::from_utf8(buf).context("answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    Ok((status, body.to_owned()))
}

/// One scrape of a node's `/metrics`, read for several figures.
pub(crate) struct Scrape(String);

impl Scrape {
    /// GETs `ops`'s `/metrics`; `None` if it does not answer.
    pub(crate) fn of(ops: &str) -> Option<Scrape> {
        http_get(ops, "/metrics").map(|(_, body)| Scrape(body))
    }

    /// One unlabelled figure.
    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.0
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// The soonest certificate expiry the node exports, seconds.
    fn min_expiry(&self) -> Option<f64> {
        self.0
            .lines()
            .filter(|l| l.starts_with("qcss_cert_expiry_seconds{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .reduce(f64::min)
    }
}

/// One figure from a node's `/metrics` (unlabelled).
pub(crate) fn metric(ops: &str, name: &str) -> Option<f64> {
    Scrape::of(ops)?.get(name)
}

/// The status line's note on a node's soonest certificate expiry.
fn expiry_note(secs: Option<f64>) -> String {
    match secs {
        None => String::new(),
        Some(s) if s <= 0.0 => "  certificate EXPIRED".into(),
        Some(s) if s < 30.0 * 86_400.0 => {
            format!(
                "  certificate expires in {:.0} days (RENEW SOON)",
                s / 86_400.0
            )
        }
        Some(s) => format!("  certificates valid {:.0} more days", s / 86_400.0),
    }
}

/// `qcss network status`: each node's health, the Raft leader, heights,
/// certificate expiry, the public chain; an error if any node is down.
pub(crate) fn status(dir: &Path) -> Result<()> {
    let info: NetworkInfo = serde_json::from_slice(
        &std::fs::read(dir.join("network.json"))
            .with_context(|| format!("no network in {} (network.json missing)", dir.display()))?,
    )?;
    let pids = read_pids(dir);
    let running = |name: &str| pids.get(name).is_some_and(|p| alive(*p));
    let mut healthy = true;
    for o in &info.orgs {
        let ca_ok = running(&format!("ca-{}", o.name)) && tcp_open(&o.ca);
        healthy &= ca_ok;
        let expiry = Scrape::of(&o.ca_ops).and_then(|m| m.min_expiry());
        println!(
            "ca-{:<12} {}  {}{}",
            o.name,
            if ca_ok { "up  " } else { "DOWN" },
            o.ca,
            expiry_note(expiry)
        );
    }
    for x in &info.orderers {
        let h = http_get(&x.ops, "/healthz");
        let ok = matches!(h, Some((200, _)));
        healthy &= ok;
        let m = Scrape::of(&x.ops);
        let figure = |name| m.as_ref().and_then(|m| m.get(name)).unwrap_or(0.0);
        let leader = figure("qcss_orderer_raft_leader");
        let height = figure("qcss_orderer_height");
        println!(
            "orderer{:<8} {}  {}  height {height}  leader {leader}{}{}",
            x.id,
            if ok { "up  " } else { "DOWN" },
            x.addr,
            expiry_note(m.as_ref().and_then(Scrape::min_expiry)),
            h.filter(|(s, _)| *s != 200)
                .map(|(_, b)| format!("  {b}"))
                .unwrap_or_default()
        );
    }
    for o in &info.orgs {
        let h = http_get(&o.peer_ops, "/healthz");
        let ok = matches!(h, Some((200, _)));
        healthy &= ok;
        let m = Scrape::of(&o.peer_ops);
        let height = m
            .as_ref()
            .and_then(|m| m.get("qcss_peer_ledger_height"))
            .unwrap_or(0.0);
        let expiry = m.as_ref().and_then(Scrape::min_expiry);
        println!(
            "peer-{:<11} {}  {}  height {height}{}",
            o.name,
            if ok { "up  " } else { "DOWN" },
            o.peer,
            expiry_note(expiry)
        );
    }
    if let Some(chain) = &info.chain {
        healthy &= crate::network_chain::status(chain, running);
    }
    if !healthy {
        bail!("some nodes are down or unhealthy");
    }
    Ok(())
}

/// What `up` prints once the network runs: every endpoint, identities,
/// commands to try, the demo's codes and the public chain.
pub(crate) fn print_summary(
    dir: &Path,
    info: &NetworkInfo,
    demo: Option<&crate::network_demo::DemoCodes>,
) {
    // The binary as it was run (it may not be on PATH), so lines can be pasted.
    let q = std::env::current_exe()
        .ok()
        .and_then(|p| {
            let cwd = std::env::current_dir().ok()?;
            Some(
                p.strip_prefix(&cwd)
                    .map(|r| r.display().to_string())
                    .unwrap_or_else(|_| p.display().to_string()),
            )
        })
        .unwrap_or_else(|| "qcss".into());
    println!();
    println!(
        "channel {} — {} orgs, {} orderers; files in {}",
        info.channel,
        info.orgs.len(),
        info.orderers.len(),
        dir.display()
    );
    for o in &info.orgs {
        println!(
            "  {:<10} {:<13} peer {}  (ops {})  CA {}  identities orgs/{}/{{{}}}",
            o.name,
            o.msp_id,
            o.peer,
            o.peer_ops,
            o.ca,
            o.name,
            o.identities.keys().cloned().collect::<Vec<_>>().join(",")
        );
    }
    for x in &info.orderers {
        println!("  orderer{}   {}  (ops {})", x.id, x.addr, x.ops);
    }
    let o = &info.orgs[info.orgs.len().min(4) - 1];
    if !o.web.is_empty() {
        println!(
            "  explorer   http://{}/explorer  (each peer serves one: `web` in network.json)",
            o.web
        );
    }
    // Read commands find the peer, identity and channel in the network's
    // folder (`--dir`, default qcss-net; `--org`, `--as` to pick others).
    let default_dir = std::env::current_dir().map(|c| c.join("qcss-net"));
    let conn = if dir == Path::new("qcss-net") || default_dir.is_ok_and(|d| d == dir) {
        String::new()
    } else {
        format!(" --dir {}", dir.display())
    };
    println!();
    println!(
        "Commands that talk to a peer (trace, ledger, tx, epcis, chaincode) act as {}'s user1 on its peer by default{}; --org ORG and --as NAME pick another org and identity, --peer/--identity/--channel say it outright.",
        o.name,
        if conn.is_empty() {
            String::new()
        } else {
            format!(" (with{conn})")
        }
    );
    match demo {
        Some(d) => {
            println!("Unit codes from the loquat-juice story — try:");
            println!("  genuine, with history:  {q} trace '{}'{conn}", d.good);
            println!("  recalled batch:         {q} trace '{}'{conn}", d.recalled);
            println!("  forged:                 {q} trace '{}'{conn}", d.forged);
            // The juice's GTIN, from its code's Digital Link path.
            if let Some(gtin) = d.good.split("/01/").nth(1).and_then(|r| r.get(..14)) {
                println!("The juice's QCSS index and what it is made of:");
                println!("  {q} index explain {gtin}{conn}");
            }
            if !o.web.is_empty() {
                let page = |c: &str| {
                    c.find("/01/")
                        .map_or_else(String::new, |i| format!("http://{}{}", o.web, &c[i..]))
                };
                println!("Or open their verify pages in a browser:");
                println!("  genuine:  {}", page(&d.good));
                println!("  recalled: {}", page(&d.recalled));
                println!("  forged:   {}", page(&d.forged));
            }
            if !d.keys.is_empty() {
                println!("Batch code keys (PKCS#8, mode 0600; keep them secret):");
                for (batch, file) in &d.keys {
                    println!("  {batch}: {file}");
                }
                if let Some((batch, file)) = d.keys.first() {
                    println!(
                        "  more codes and QR images: {q} codes issue --batch {batch} --from 1 --to 24 --key {file} --base {} --qr qr/",
                        crate::network_demo::BASE
                    );
                }
            }
        }
        None => {
            println!(
                "Try:  {q} tx query --chaincode {CONTRACT} --fn get_permit --args '[\"ProducerMSP\"]'{conn}"
            );
            println!("      (run with --demo for a whole story and unit codes to trace)");
        }
    }
    if let Some(chain) = &info.chain {
        println!();
        println!(
            "public chain {} — {} nodes holding the 31 producer keys; keys and configs in {}/chain",
            &chain.chain_id[..16],
            chain.nodes.len(),
            dir.display()
        );
        for n in &chain.nodes {
            println!(
                "  {:<10} API http://{}/v1/status  (ops {})  {} producer keys",
                n.name, n.api, n.ops, n.producers
            );
        }
        if let Some(n) = chain.nodes.first() {
            println!("  explorer:      http://{}/explorer", n.api);
        }
        println!("  chain status:  {q} chain status{conn}");
        if let Some(d) = &chain.demo {
            println!(
                "  demo wallet:   {q} wallet balance --key {}/{}{conn}   ({})",
                dir.display(),
                d.consumer_key,
                d.consumer
            );
        }
        println!(
            "  table-9 bucket keys (mode 0600): {}/chain/keys/{{cornerstone,private,public,marketing,business,team,foundation,advisors}}.json",
            dir.display()
        );
    }
    println!(
        "Status: {q} network status --dir {}    Stop: {q} network down --dir {}",
        dir.display(),
        dir.display()
    );
}
