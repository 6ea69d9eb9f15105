//! The client side of the traceability contract
//! (`chaincode/contracts/traceability`): `qcss trace` (a unit's or batch's
//! verified history), `qcss codes keygen|issue|verify|register` (one item,
//! one code), `qcss scan` and `qcss recall`. Everything else the contract
//! does is `qcss tx invoke --chaincode traceability --fn F --args '[{..}]'`
//! (see the contract's README, "CLI"). Thin: parse, call, print.

use std::io::Write;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use qcss_chaincode::unit_code::{
    BatchKey, UnitCode, UnitCodeError, base64url_decode, issue_codes, verify_code,
};
use qcss_proto::protos::TxValidationCode;
use serde_json::{Value, json};

use crate::peer::Conn;
use crate::trace_render::{
    line, product_lines, recall_banner, render_trace, scans_text, str_of, verdict_lines,
};

const DEFAULT_CHAINCODE: &str = "traceability";

/// `qcss trace TARGET`.
#[derive(Debug, Args)]
pub(crate) struct TraceArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// A unit code (GS1 Digital Link URI, as in the QR code), a unit id
    /// `GTIN/LOT/SERIAL` or a batch id `GTIN/LOT`.
    target: String,
    /// Print the contract's JSON (with a `verdict` for unit codes).
    #[arg(long)]
    json: bool,
    /// Print the batch's upstream graph (what it was made from, to any depth).
    #[arg(long, conflicts_with = "downstream")]
    upstream: bool,
    /// Print the batch's downstream graph (what was made from it).
    #[arg(long)]
    downstream: bool,
}

/// `qcss codes ...`: one item, one code.
#[derive(Debug, Subcommand)]
pub(crate) enum CodesCommand {
    /// Make a batch code key (Ed25519, PKCS#8, written 0600); prints its
    /// public key, to register with `qcss codes register` (`set_code_key`)
    /// or `register_batch`'s `code_key`.
    Keygen(KeygenArgs),
    /// Issue unit codes offline (nothing is written to the ledger), one URI
    /// per line.
    Issue(IssueArgs),
    /// Check a unit code's signature offline against a batch public key.
    Verify(VerifyArgs),
    /// Register a batch's code key on the ledger (`set_code_key`, once per
    /// batch, by the batch owner).
    Register(RegisterArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the private key (refused if the file exists).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// The lot (AI 10), or the batch id `GTIN/LOT`.
    #[arg(long, alias = "lot")]
    batch: String,
    /// The GTIN-14 (AI 01); optional when `--batch` is `GTIN/LOT`.
    #[arg(long)]
    gtin: Option<String>,
    /// First serial (from 1).
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Last serial (at most the batch quantity, or the ledger refuses the code).
    #[arg(long)]
    to: u64,
    /// The batch's private key (`qcss codes keygen`).
    #[arg(long)]
    key: PathBuf,
    /// The resolver base, e.g. `https://q.example.com`.
    #[arg(long)]
    base: String,
    /// Write the codes here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write one QR image per code into this directory
    /// (`{GTIN}-{LOT}-{SERIAL}.svg`), encoding the code URI.
    #[arg(long)]
    qr: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The unit code URI.
    code: String,
    /// The batch's public key: 64 hex digits, or base64url (43 characters,
    /// as registered on the ledger; it may start with '-').
    #[arg(long, allow_hyphen_values = true)]
    pubkey: String,
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// The batch id `GTIN/LOT`.
    #[arg(long)]
    batch: String,
    /// The batch's private key (only its public half is sent).
    #[arg(long)]
    key: PathBuf,
}

/// `qcss scan CODE --location L [--claim]`.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// The unit code URI.
    code: String,
    /// Where the scan happens, coarse (city, region code or GLN).
    #[arg(long)]
    location: String,
    /// Claim (decommission) the unit: the consumer bought it.
    #[arg(long)]
    claim: bool,
    /// Print the contract's JSON.
    #[arg(long)]
    json: bool,
}

/// `qcss recall BATCH --reason R`.
#[derive(Debug, Args)]
pub(crate) struct RecallArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// The batch id `GTIN/LOT`; every batch made from it is recalled too.
    batch: String,
    /// Why (shown to everyone who scans a unit of it).
    #[arg(long)]
    reason: String,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// How the ledger judged a unit code it refused.
fn refusal_verdict(message: &str) -> Option<(&'static str, &'static str)> {
    if message.contains("counterfeit code") {
        Some((
            "forged",
            "FORGED: this code was not issued by the brand (its signature is not valid). Do not trust this product.",
        ))
    } else if message.contains("is beyond batch") {
        Some((
            "invalid",
            "INVALID: this serial was never part of the batch. Treat the product as counterfeit.",
        ))
    } else if message.contains("unknown batch") || message.contains("no code key") {
        Some((
            "unknown",
            "UNKNOWN: the ledger has no such batch or no code key for it. Treat the product as suspect.",
        ))
    } else if message.contains("malformed unit code") {
        Some(("invalid", "INVALID: this is not a QCSS unit code."))
    } else {
        None
    }
}

/// Prints the verdict for a code the ledger refused (`reason`: the
/// contract's own message, `ClientError::contract_message`) and returns the error.
fn refused(code: &str, message: &str, json_out: bool) -> Result<()> {
    let reason = message;
    if let Some((verdict, text)) = refusal_verdict(message) {
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"verdict": verdict, "code": code, "error": reason})
                )?
            );
        } else {
            println!("{text}\n  code:   {code}\n  ledger: {reason}");
        }
        bail!("{verdict} code: {reason}");
    }
    bail!("{reason}")
}

fn is_code(target: &str) -> bool {
    target.contains('?')
}

pub(crate) fn run_trace(a: TraceArgs) -> Result<()> {
    if a.upstream || a.downstream {
        return run_graph(&a);
    }
    let result = runtime()?.block_on(async {
        let mut g = a.conn.gateway().await?;
        Ok::<_, anyhow::Error>(
            g.evaluate(&a.chaincode, "trace", &[a.target.as_bytes()])
                .await,
        )
    })?;
    let bytes = match result {
        Ok(b) => b,
        Err(e) if is_code(&a.target) => return refused(&a.target, &e.contract_message(), a.json),
        Err(e) => bail!("{}", e.contract_message()),
    };
    let mut report: Value = serde_json::from_slice(&bytes).context("the trace is not JSON")?;
    if a.json {
        if is_code(&a.target) {
            report["verdict"] = json!(code_verdict(&report));
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_trace(&report, is_code(&a.target)));
        if let Some(line) = anchoring_line(&a.conn) {
            println!("{line}");
        }
    }
    Ok(())
}

/// How far the peer's ledger is anchored on the public chain, from its web
/// API (`/api/anchor/status`), when the network folder names the web port.
fn anchoring_line(conn: &crate::peer::Conn) -> Option<String> {
    let web = conn.resolve().ok()?.web?;
    let st: Value = crate::wallet::get_json(&web, "/api/anchor/status").ok()?;
    let a = st.get("anchored")?;
    if a.is_null() {
        return None;
    }
    let height = st["height"].as_u64().unwrap_or(0);
    let due = a["next_due_secs"].as_u64().map_or_else(String::new, |s| {
        format!(" The next anchor is due in about {s} s.")
    });
    Some(match a["irreversible"].as_array() {
        Some(i) if i.len() == 3 => {
            let size = i[1].as_u64().unwrap_or(0);
            format!(
                "Anchored: blocks 0…{} of {height} are fixed on the public QCSS chain (anchor {}, public block {}, irreversible){}; `qcss anchor prove TXID` gives a proof anyone can check offline.{due}",
                size.saturating_sub(1),
                i[0],
                i[2],
                if size < height {
                    "; the newer blocks go into the next anchor"
                } else {
                    ""
                }
            )
        }
        _ => format!(
            "Not yet anchored on the public QCSS chain; the bridge anchors within its cadence (anchor.toml).{due}"
        ),
    })
}

/// `qcss trace BATCH --upstream|--downstream`: the contract's graph, as an
/// indented tree from the batch (a batch reached twice is printed once and
/// referred to after).
fn run_graph(a: &TraceArgs) -> Result<()> {
    let (f, arrow) = if a.upstream {
        ("trace_upstream", "<-")
    } else {
        ("trace_downstream", "->")
    };
    let bytes = runtime()?.block_on(async {
        let mut g = a.conn.gateway().await?;
        g.evaluate(&a.chaincode, f, &[a.target.as_bytes()])
            .await
            .map_err(|e| anyhow!("{}", e.contract_message()))
    })?;
    let v: Value = serde_json::from_slice(&bytes).context("the graph is not JSON")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let nodes: std::collections::BTreeMap<String, &Value> = v["nodes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|x| Some((x["id"].as_str()?.to_owned(), x)))
                .collect()
        })
        .unwrap_or_default();
    let mut children: std::collections::BTreeMap<String, Vec<(String, u64)>> = Default::default();
    for e in v["edges"].as_array().into_iter().flatten() {
        let (i, o) = (
            e["input"].as_str().unwrap_or(""),
            e["output"].as_str().unwrap_or(""),
        );
        let q = e["quantity"].as_u64().unwrap_or(0);
        let (from, to) = if a.upstream { (o, i) } else { (i, o) };
        children
            .entry(from.to_owned())
            .or_default()
            .push((to.to_owned(), q));
    }
    let describe = |id: &str| match nodes.get(id) {
        Some(n) => format!(
            "{id}  ({} {} of {}, held by {}, {}{})",
            n["available"].as_u64().unwrap_or(0),
            n["uom"].as_str().unwrap_or(""),
            n["quantity"].as_u64().unwrap_or(0),
            n["custodian"].as_str().unwrap_or("?"),
            n["conformance"].as_str().unwrap_or("?"),
            if n["recalled"].as_bool().unwrap_or(false) {
                ", RECALLED"
            } else {
                ""
            }
        ),
        None => id.to_owned(),
    };
    let root = v["root"].as_str().unwrap_or(&a.target).to_owned();
    println!("{}", describe(&root));
    let mut seen = std::collections::BTreeSet::new();
    let mut stack: Vec<(String, u64, usize)> = children
        .get(&root)
        .map(|c| c.iter().rev().map(|(id, q)| (id.clone(), *q, 1)).collect())
        .unwrap_or_default();
    while let Some((id, q, depth)) = stack.pop() {
        let again = !seen.insert(id.clone());
        println!(
            "{}{arrow} {q} {}{}",
            "  ".repeat(depth),
            describe(&id),
            if again { "  (see above)" } else { "" }
        );
        if !again && let Some(c) = children.get(&id) {
            stack.extend(c.iter().rev().map(|(i, q)| (i.clone(), *q, depth + 1)));
        }
    }
    Ok(())
}

fn code_verdict(v: &Value) -> &'static str {
    if v["counterfeit_warning"].is_string() {
        "possible_counterfeit"
    } else {
        "genuine"
    }
}

pub(crate) fn run_scan(a: ScanArgs) -> Result<()> {
    let f = if a.claim { "claim" } else { "scan" };
    let arg = json!({"code": a.code, "location": a.location}).to_string();
    let result = runtime()?.block_on(async {
        let mut g = a.conn.gateway().await?;
        Ok::<_, anyhow::Error>(g.submit(&a.chaincode, f, &[arg.as_bytes()]).await)
    })?;
    let c = match result {
        Ok(c) => c,
        Err(e) => return refused(&a.code, &e.contract_message(), a.json),
    };
    if c.code != TxValidationCode::Valid {
        bail!(
            "the {f} transaction {} is invalid: {}",
            c.tx_id,
            c.code.as_str_name()
        );
    }
    let mut v: Value = serde_json::from_slice(&c.result).context("the scan result is not JSON")?;
    if a.json {
        v["verdict"] = json!(code_verdict(&v));
        v["tx_id"] = json!(c.tx_id);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut out = String::new();
    recall_banner(&mut out, &v["recall"]);
    verdict_lines(&mut out, &v);
    line(&mut out, "Unit", &str_of(&v["unit"]));
    product_lines(&mut out, &v["product"], &v["batch"], &v["permit"]);
    line(
        &mut out,
        "Scans",
        &scans_text(&v["scans"], &v["first_scan"], &v["claimed"]),
    );
    if let Some(c) = v["container"].as_str() {
        line(&mut out, "Packed in", c);
    }
    line(
        &mut out,
        "Recorded",
        &format!("{} in block {} (tx {})", f, c.block, c.tx_id),
    );
    print!("{out}");
    Ok(())
}

pub(crate) fn run_recall(a: RecallArgs) -> Result<()> {
    let arg = json!({"batch": a.batch, "reason": a.reason}).to_string();
    let c = runtime()?.block_on(async {
        let mut g = a.conn.gateway().await?;
        g.submit(&a.chaincode, "recall", &[arg.as_bytes()])
            .await
            .map_err(|e| anyhow!("{}", e.contract_message()))
    })?;
    if c.code != TxValidationCode::Valid {
        bail!(
            "the recall transaction {} is invalid: {}",
            c.tx_id,
            c.code.as_str_name()
        );
    }
    let ids: Vec<String> = serde_json::from_slice(&c.result).context("recall result")?;
    println!("recalled {} batch(es) in block {}:", ids.len(), c.block);
    for id in ids {
        println!("  {id}");
    }
    println!("tx_id: {}", c.tx_id);
    Ok(())
}

pub(crate) fn run_codes(cmd: CodesCommand) -> Result<()> {
    match cmd {
        CodesCommand::Keygen(a) => keygen(&a),
        CodesCommand::Issue(a) => issue(&a),
        CodesCommand::Verify(a) => verify(&a),
        CodesCommand::Register(a) => register(a),
    }
}

fn keygen(a: &KeygenArgs) -> Result<()> {
    let (key, pkcs8) = BatchKey::generate()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&a.out)
        .with_context(|| format!("cannot create {} (it must not exist)", a.out.display()))?;
    f.write_all(&pkcs8)?;
    f.sync_all()?;
    println!("{}", key.public_key_b64url());
    eprintln!(
        "batch code key written to {} (keep it secret); register its public key above with\n  qcss codes register --batch GTIN/LOT --key {} --peer ... --identity ... --channel ...",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

fn load_key(path: &Path) -> Result<BatchKey> {
    let der = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    BatchKey::from_pkcs8(&der).with_context(|| format!("{}", path.display()))
}

/// Serials issued per step; each step is split across the cores.
const ISSUE_CHUNK: u64 = 65_536;

fn issue(a: &IssueArgs) -> Result<()> {
    let (gtin, lot) = match (a.batch.split_once('/'), &a.gtin) {
        (Some((g, l)), None) => (g.to_owned(), l.to_owned()),
        (Some((g, l)), Some(g2)) if g == g2 => (g.to_owned(), l.to_owned()),
        (Some(_), Some(g2)) => bail!("--batch {} names another GTIN than --gtin {g2}", a.batch),
        (None, Some(g)) => (g.clone(), a.batch.clone()),
        (None, None) => bail!("--gtin is required when --batch is a lot, not GTIN/LOT"),
    };
    if a.from == 0 || a.to < a.from {
        bail!("serials run from 1: need 1 <= --from <= --to");
    }
    let key = load_key(&a.key)?;
    // Check the inputs once before spending the cores.
    issue_codes(&key, &a.base, &gtin, &lot, a.from..=a.from)?;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut start = a.from;
    loop {
        let end = start.saturating_add(ISSUE_CHUNK - 1).min(a.to);
        let parts = split(start..=end, threads);
        let codes = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|r| s.spawn(|| issue_codes(&key, &a.base, &gtin, &lot, r)))
                .collect();
            handles
                .into_iter()
                .map(|h| -> Result<Vec<String>> {
                    Ok(h.join()
                        .map_err(|_| anyhow!("an issuing thread panicked"))??)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for code in codes.iter().flatten() {
            writeln!(out, "{code}")?;
        }
        if let Some(dir) = &a.qr {
            write_qr_images(dir, codes.iter().flatten())?;
        }
        if end == a.to {
            break;
        }
        start = end + 1;
    }
    out.flush()?;
    eprintln!(
        "issued {} unit codes for batch {gtin}/{lot} (serials {}..={}); nothing was written to the ledger",
        a.to - a.from + 1,
        a.from,
        a.to
    );
    Ok(())
}

/// One SVG QR image per unit code URI, named after its unit.
fn write_qr_images<'a>(dir: &Path, codes: impl Iterator<Item = &'a String>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for code in codes {
        let c = UnitCode::parse(code)?;
        let svg = qrcode::QrCode::new(code.as_bytes())
            .with_context(|| format!("{code} does not fit a QR code"))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .build();
        let path = dir.join(format!("{}-{}-{}.svg", c.gtin, c.lot, c.serial));
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// `r` in at most `n` consecutive, non-empty ranges.
fn split(r: RangeInclusive<u64>, n: u64) -> Vec<RangeInclusive<u64>> {
    let (lo, hi) = (*r.start(), *r.end());
    let per = (hi - lo + 1).div_ceil(n.max(1));
    let mut out = Vec::new();
    let mut s = lo;
    while s <= hi {
        let e = s.saturating_add(per - 1).min(hi);
        out.push(s..=e);
        if e == hi {
            break;
        }
        s = e + 1;
    }
    out
}

fn parse_pubkey(text: &str) -> Result<Vec<u8>> {
    let text = text.trim();
    let key = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text)?
    } else {
        base64url_decode(text)
            .ok_or_else(|| anyhow!("--pubkey must be 64 hex digits or base64url (43 characters)"))?
    };
    if key.len() != 32 {
        bail!("--pubkey must be a 32-byte Ed25519 public key");
    }
    Ok(key)
}

fn verify(a: &VerifyArgs) -> Result<()> {
    let key = parse_pubkey(&a.pubkey)?;
    match verify_code(&key, &a.code) {
        Ok(c) => {
            println!(
                "GENUINE: signature valid for batch {}/{}, serial {}",
                c.gtin, c.lot, c.serial
            );
            println!(
                "  (offline check only: the ledger also checks the serial against the batch quantity, recalls and scans — use `qcss trace`)"
            );
            Ok(())
        }
        Err(UnitCodeError::BadSignature { .. }) => {
            let batch = UnitCode::parse(&a.code)
                .map(|c| format!("{}/{}", c.gtin, c.lot))
                .unwrap_or_default();
            println!(
                "FORGED: the signature is not valid for batch {batch} under this key (forged, altered, or issued for another batch)"
            );
            bail!("forged code")
        }
        Err(e) => {
            println!("INVALID: {e}");
            bail!("invalid code")
        }
    }
}

fn register(a: RegisterArgs) -> Result<()> {
    let key = load_key(&a.key)?;
    let public_key = key.public_key_b64url();
    let arg = json!({"batch": a.batch, "public_key": public_key}).to_string();
    let c = runtime()?.block_on(async {
        let mut g = a.conn.gateway().await?;
        g.submit(&a.chaincode, "set_code_key", &[arg.as_bytes()])
            .await
            .map_err(|e| anyhow!("{}", e.contract_message()))
    })?;
    if c.code != TxValidationCode::Valid {
        bail!(
            "the set_code_key transaction {} is invalid: {}",
            c.tx_id,
            c.code.as_str_name()
        );
    }
    println!(
        "code key {public_key} registered for batch {} in block {} (tx {})",
        a.batch, c.block, c.tx_id
    );
    Ok(())
}

// ---------------------------------------------------------------- rendering

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_evenly() {
        assert_eq!(split(1..=10, 3), vec![1..=4, 5..=8, 9..=10]);
        assert_eq!(split(5..=5, 4), vec![5..=5]);
        assert_eq!(split(1..=2, 8), vec![1..=1, 2..=2]);
    }

    #[test]
    fn public_keys_in_hex_or_base64url() {
        let (key, _) = BatchKey::generate().unwrap();
        let hex_key = hex::encode(key.public_key());
        assert_eq!(parse_pubkey(&hex_key).unwrap(), key.public_key());
        assert_eq!(
            parse_pubkey(&key.public_key_b64url()).unwrap(),
            key.public_key()
        );
        assert!(parse_pubkey("abcd").is_err());
    }

    #[test]
    fn qr_images_are_named_after_their_units() {
        let (key, _) = BatchKey::generate().unwrap();
        let codes = issue_codes(
            &key,
            "https://q.example.com",
            "06901234560022",
            "LJ2026A",
            1..=2,
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("qcss-qr-{}", std::process::id()));
        write_qr_images(&dir, codes.iter()).unwrap();
        let svg = std::fs::read_to_string(dir.join("06901234560022-LJ2026A-2.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusals_are_classified() {
        let e = "Aborted: evaluation failed on Org1MSP: status 500: counterfeit code: the signature is not valid for batch x/y";
        assert_eq!(refusal_verdict(e).unwrap().0, "forged");
        assert_eq!(
            refusal_verdict("serial 11 is beyond batch x's quantity 10")
                .unwrap()
                .0,
            "invalid"
        );
        assert!(refusal_verdict("access denied").is_none());
    }
}
