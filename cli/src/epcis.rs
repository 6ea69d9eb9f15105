//! `qcss epcis export|import`: a batch's ledger history as an EPCIS 2.0
//! JSON-LD document that GS1's EPCIS 2.0 JSON schema accepts, and EPCIS 2.0
//! events recorded through the traceability contract
//! (`chaincode/contracts/traceability/README.md`, "EPCIS 2.0 / CBV 2.0
//! mapping" and "EPCIS export/import"). Thin: query, map, submit, print.
//!
//! Every exported event's `eventID` is its CBV 2.0 event hash
//! ([`crate::epcis_hash`]), so the same event has the same id in every
//! export; a transformation is one event whichever of its batches is
//! exported. Locations are URIs: GLN-based ones (a GLN, an SGLN URN or a
//! GS1 Digital Link with AI 414 in the record) as the canonical Digital
//! Link `https://id.gs1.org/414/{GLN}[/254/{ext}]`; free text (the
//! fallback) as `urn:qcss:location:{MSP}:{percent-encoded text}` with the
//! text itself in the `qcss:name` extension.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use qcss_network::clock;
use qcss_peer::client::GatewayClient;
use qcss_proto::protos::TxValidationCode;
use serde_json::{Map, Value, json};

use crate::peer::Conn;

const DEFAULT_CHAINCODE: &str = "traceability";
const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
const QCSS_VOC: &str = "https://qcss.dev/voc/";
const QCSS_BIZ_STEP: &str = "https://qcss.dev/voc/bizstep/";
const DL: &str = "https://id.gs1.org";
const LOCATION: &str = "urn:qcss:location:";
const INSPECTION: &str = "urn:qcss:inspection:";
const TRANSFORMATION_ID: &str = "urn:qcss:transformation:";
const MSP_PARTY: &str = "urn:qcss:msp:";
const SHA256_URN: &str = "urn:qcss:sha256:";
/// QCSS's own business steps (everything else is CBV 2.0, kept short).
const QCSS_STEPS: &[&str] = &[
    "harvesting",
    "washing",
    "pressing",
    "blending",
    "sterilising",
    "filling",
    "bottling",
    "labelling",
    "cooling",
];

/// `qcss epcis ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum EpcisCommand {
    /// Write a batch's events (from `trace`) as an EPCIS 2.0 JSON-LD document.
    Export(ExportArgs),
    /// Record the events of an EPCIS 2.0 JSON document (`add_event`,
    /// `transform`, `pack`/`unpack`); one report line per event; fails if
    /// any event was refused.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// The batch id `GTIN/LOT`.
    #[arg(long)]
    batch: String,
    /// Write the document here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// The EPCIS 2.0 JSON(-LD) document.
    file: PathBuf,
    /// Record every ObjectEvent against this batch `GTIN/LOT` instead of
    /// the document's object (a unit's serial is kept).
    #[arg(long)]
    batch: Option<String>,
}

pub(crate) fn run(cmd: EpcisCommand) -> Result<()> {
    match cmd {
        EpcisCommand::Export(a) => export(a),
        EpcisCommand::Import(a) => import(a),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

async fn evaluate(g: &mut GatewayClient, cc: &str, f: &str, arg: &str) -> Result<Value> {
    let bytes = g
        .evaluate(cc, f, &[arg.as_bytes()])
        .await
        .map_err(|e| anyhow!("{f} {arg}: {}", e.contract_message()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{f}: the answer is not JSON"))
}

// ---------------------------------------------------------------- time

/// Unix seconds as RFC 3339 in the zone `offset` (`±hh:mm`; `Z` for UTC).
pub(crate) fn rfc3339(t: i64, offset: &str) -> String {
    let l = clock::local_time(t, Some(offset));
    let zone = if l.zone == "UTC" { "Z" } else { &l.zone };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        l.year, l.month, l.day, l.hour, l.minute, l.second
    )
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`) → Unix seconds
/// (fractions dropped).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[n..];
    }
    let off = clock::parse_offset(if rest == "z" { "Z" } else { rest })?;
    Some(clock::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - off)
}

fn now_utc() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    rfc3339(t, "Z")
}

// ---------------------------------------------------------------- identifiers

/// `{gtin}/{lot}[/{serial}]` → GS1 Digital Link.
fn digital_link(id: &str) -> String {
    let mut p = id.splitn(3, '/');
    let (gtin, lot, serial) = (p.next().unwrap_or(""), p.next().unwrap_or(""), p.next());
    match serial {
        Some(s) => format!("{DL}/01/{gtin}/10/{lot}/21/{s}"),
        None => format!("{DL}/01/{gtin}/10/{lot}"),
    }
}

fn sscc_link(sscc: &str) -> String {
    format!("{DL}/00/{sscc}")
}

/// A GS1 Digital Link (any resolver) or an EPC URN → the contract's id:
/// `{gtin}/{lot}[/{serial}]`, or an SSCC.
fn ledger_id(uri: &str) -> Option<String> {
    // EPC URNs (sgtin, lgtin, sscc) through their canonical Digital Link.
    let canonical;
    let uri = if uri.starts_with("urn:epc:") {
        canonical = crate::epcis_hash::normalise_gs1(uri)?;
        canonical.as_str()
    } else {
        uri
    };
    let path = match uri.find("://") {
        Some(i) => &uri[i + 3..][uri[i + 3..].find('/')?..],
        None => uri,
    };
    let path = path.split(['?', '#']).next()?;
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    match seg.as_slice() {
        ["00", sscc] => Some((*sscc).to_owned()),
        ["01", gtin, "10", lot] => Some(format!("{gtin}/{lot}")),
        ["01", gtin, "10", lot, "21", serial] => Some(format!("{gtin}/{lot}/{serial}")),
        // A contract id given as is.
        [gtin, lot] if gtin.len() == 14 => Some(format!("{gtin}/{lot}")),
        _ => None,
    }
}

/// A container (SSCC, 18 digits) or a unit id.
fn child_link(id: &str) -> String {
    if id.len() == 18 && id.bytes().all(|b| b.is_ascii_digit()) {
        sscc_link(id)
    } else {
        digital_link(id)
    }
}

fn biz_step_out(step: &str) -> String {
    if QCSS_STEPS.contains(&step) {
        format!("{QCSS_BIZ_STEP}{step}")
    } else {
        step.to_owned()
    }
}

/// A bizStep or disposition as the contract spells it: CBV short names; the
/// CBV URIs (`https://ref.gs1.org/cbv/BizStep-shipping`,
/// `urn:epcglobal:cbv:bizstep:shipping`) and QCSS URIs are shortened.
fn short_vocab(v: &str) -> String {
    for p in [
        QCSS_BIZ_STEP,
        "https://ref.gs1.org/cbv/BizStep-",
        "https://ref.gs1.org/cbv/Disp-",
        "urn:epcglobal:cbv:bizstep:",
        "urn:epcglobal:cbv:disp:",
        "cbv:BizStep-",
        "cbv:Disp-",
    ] {
        if let Some(s) = v.strip_prefix(p) {
            return s.to_owned();
        }
    }
    v.to_owned()
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------- export

fn export(a: ExportArgs) -> Result<()> {
    let doc = runtime()?.block_on(async {
        let mut g = a.conn.gateway().await?;
        export_doc(&mut g, &a.chaincode, &a.batch).await
    })?;
    let text = pretty(&doc) + "\n";
    let n = doc["epcisBody"]["eventList"].as_array().map_or(0, Vec::len);
    match &a.out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!("{n} event(s) of {} written to {}", a.batch, p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

async fn export_doc(g: &mut GatewayClient, cc: &str, batch: &str) -> Result<Value> {
    let report = evaluate(g, cc, "trace", batch).await?;
    let mut batches: BTreeMap<String, Value> = BTreeMap::new();
    batches.insert(
        report["batch"]["id"].as_str().unwrap_or(batch).to_owned(),
        report["batch"].clone(),
    );
    let mut timelines: BTreeMap<String, Value> = BTreeMap::new();
    let mut list = Vec::new();
    for e in report["timeline"].as_array().into_iter().flatten() {
        let event = if e["type"] == "TransformationEvent" {
            let t = transformation(g, cc, e, &mut batches, &mut timelines).await?;
            transformation_to_epcis(&t)
        } else {
            to_epcis(e)
        };
        list.push(with_event_id(event));
    }
    Ok(json!({
        "@context": [EPCIS_CONTEXT, {"qcss": QCSS_VOC}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": now_utc(),
        "epcisBody": {"eventList": list},
    }))
}

/// The prefixes of the exported documents' `@context`, for the event hash.
fn prefixes() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("qcss".into(), json!(QCSS_VOC));
    m
}

/// `event` with its CBV 2.0 event hash as `eventID`.
fn with_event_id(mut event: Value) -> Value {
    let id = crate::epcis_hash::event_hash(&event, &prefixes());
    event["eventID"] = json!(id);
    event
}

/// The order keys are written in: `@context`, `type`, `eventID` first (a
/// business transaction's, source's or destination's `type` before its
/// value, as the CBV lists them and GS1's hash tools read them), then the
/// others in code point order.
fn key_rank(k: &str) -> (u8, &str) {
    match k {
        "@context" => (0, k),
        "type" => (1, k),
        "eventID" => (2, k),
        _ => (3, k),
    }
}

/// `v` as indented JSON (two spaces), keys in [`key_rank`] order.
fn pretty(v: &Value) -> String {
    let mut out = String::new();
    write_pretty(v, 0, &mut out);
    out
}

fn write_pretty(v: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize| "  ".repeat(d);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by_key(|k| key_rank(k));
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                write_pretty(&m[k.as_str()], depth + 1, out);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_pretty(x, depth + 1, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

async fn fetch_batch(
    g: &mut GatewayClient,
    cc: &str,
    cache: &mut BTreeMap<String, Value>,
    id: &str,
) -> Result<Value> {
    if let Some(b) = cache.get(id) {
        return Ok(b.clone());
    }
    let b = evaluate(g, cc, "get_batch", id).await?;
    cache.insert(id.to_owned(), b.clone());
    Ok(b)
}

/// One transformation as recorded, whichever batch's timeline it came
/// from: the contract keeps a copy in the output's timeline (the output's
/// registration, at its site) and one in each input's (at the
/// transformation's time and location); both give the same
/// [`Transformation`].
#[derive(Debug, Clone, PartialEq)]
struct Transformation {
    id: String,
    event_time: i64,
    offset: String,
    record_time: Option<i64>,
    actor: Option<String>,
    /// (batch, quantity, uom) consumed.
    inputs: Vec<(String, Option<u64>, Option<String>)>,
    /// The output batch: (id, quantity, uom, production date, site).
    output: (
        String,
        Option<u64>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    /// Where it happened (`transform`'s `location`).
    location: Option<String>,
}

async fn transformation(
    g: &mut GatewayClient,
    cc: &str,
    e: &Value,
    batches: &mut BTreeMap<String, Value>,
    timelines: &mut BTreeMap<String, Value>,
) -> Result<Transformation> {
    let tid = str_field(e, "transformation_id").unwrap_or("").to_owned();
    let output_id = e["children"][0]
        .as_str()
        .or_else(|| str_field(e, "batch"))
        .unwrap_or("")
        .to_owned();
    let out = fetch_batch(g, cc, batches, &output_id).await?;
    let recorded_inputs: Vec<Value> = match out["inputs"].as_array() {
        Some(a) if !a.is_empty() => a.clone(),
        _ => e["inputs"].as_array().cloned().unwrap_or_default(),
    };
    let mut inputs = Vec::new();
    for q in &recorded_inputs {
        let id = q["batch"].as_str().unwrap_or("").to_owned();
        let b = fetch_batch(g, cc, batches, &id).await?;
        inputs.push((
            id,
            q["quantity"].as_u64(),
            str_field(&b, "uom").map(str::to_owned),
        ));
    }
    // The transformation's time and location are on the inputs' copies
    // (the output's copy has the output's registration time instead): from
    // the output's timeline, read them from the first input's.
    let mut input_copy = None;
    if e["batch"].as_str() == Some(output_id.as_str())
        && let Some((first, _, _)) = inputs.first()
    {
        let first = first.clone();
        if !timelines.contains_key(&first) {
            let r = evaluate(g, cc, "trace", &first).await?;
            timelines.insert(first.clone(), r["timeline"].clone());
        }
        input_copy = timelines[&first]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["type"] == "TransformationEvent" && x["transformation_id"] == tid.as_str())
            .cloned();
    }
    let copy = input_copy.as_ref().unwrap_or(e);
    let location = str_field(copy, "read_point").map(str::to_owned);
    Ok(Transformation {
        id: tid,
        event_time: copy["event_time"].as_i64().unwrap_or(0),
        offset: str_field(copy, "event_time_zone_offset")
            .unwrap_or("+00:00")
            .to_owned(),
        record_time: e["record_time"].as_i64(),
        actor: str_field(e, "actor").map(str::to_owned),
        inputs,
        output: (
            output_id,
            out["quantity"].as_u64(),
            str_field(&out, "uom").map(str::to_owned),
            str_field(&out, "production_date").map(str::to_owned),
            str_field(&out, "site").map(str::to_owned),
        ),
        location,
    })
}

fn quantity_element(id: &str, quantity: Option<u64>, uom: Option<&str>) -> Value {
    let mut q = json!({"epcClass": digital_link(id)});
    if let Some(n) = quantity {
        q["quantity"] = json!(n);
        if let Some(uom) = uom {
            q["uom"] = json!(uom);
        }
    }
    q
}

/// The GS1 check digit is right for these digits.
fn check_digit_ok(digits: &str) -> bool {
    let (body, last) = digits.split_at(digits.len() - 1);
    last.parse::<u32>().ok() == Some(qcss_chaincode::unit_code::gs1_check_digit(body))
}

/// A recorded place as an EPCIS location (`readPoint` / `bizLocation`):
/// GLN-based records as the canonical GS1 Digital Link (AI 414, with AI
/// 254 for an SGLN's extension), other URIs as written, and free text —
/// the fallback — as `urn:qcss:location:{MSP}:{text}` (percent-encoded)
/// with the text itself in `qcss:name`.
fn location(place: &str, msp: &str) -> Value {
    let place = place.trim();
    if place.len() == 13 && place.bytes().all(|b| b.is_ascii_digit()) && check_digit_ok(place) {
        return json!({"id": format!("{DL}/414/{place}")});
    }
    if let Some(dl) = crate::epcis_hash::normalise_gs1(place).filter(|d| d.contains("/414/")) {
        return json!({"id": dl});
    }
    if is_uri(place) {
        return json!({"id": place});
    }
    json!({
        "id": format!("{LOCATION}{}:{}", percent_encode(msp), percent_encode(place)),
        "qcss:name": place,
    })
}

/// The place a location stands for, as the contract records it: the free
/// text of a QCSS fallback location, otherwise the URI.
fn place_of(loc: &Value) -> Option<String> {
    if let Some(name) = loc.get("qcss:name").and_then(Value::as_str) {
        return Some(name.to_owned());
    }
    let id = id_of(loc)?;
    if let Some(rest) = id.strip_prefix(LOCATION)
        && let Some((_, text)) = rest.split_once(':')
        && let Some(t) = percent_decode(text)
    {
        return Some(t);
    }
    Some(id)
}

/// An absolute URI: a scheme, `:`, and only characters RFC 3986 allows.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut sc = scheme.bytes();
    sc.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sc.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) use qcss_peer::web::percent_encode;

/// `%XX` decoded; `None` for a bad escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    qcss_peer::web::percent_decode(s, false)
}

/// A transformation as one EPCIS TransformationEvent (without `eventID`).
fn transformation_to_epcis(t: &Transformation) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!("TransformationEvent"));
    o.insert("eventTime".into(), json!(rfc3339(t.event_time, &t.offset)));
    o.insert("eventTimeZoneOffset".into(), json!(t.offset));
    if let Some(r) = t.record_time {
        o.insert("recordTime".into(), json!(rfc3339(r, "Z")));
    }
    let inputs: Vec<Value> = t
        .inputs
        .iter()
        .map(|(id, q, uom)| quantity_element(id, *q, uom.as_deref()))
        .collect();
    o.insert("inputQuantityList".into(), json!(inputs));
    let (out, quantity, uom, date, site) = &t.output;
    o.insert(
        "outputQuantityList".into(),
        json!([quantity_element(out, *quantity, uom.as_deref())]),
    );
    if !t.id.is_empty() {
        o.insert(
            "transformationID".into(),
            json!(format!("{TRANSFORMATION_ID}{}", percent_encode(&t.id))),
        );
    }
    // The output batch is commissioned, active, at its site.
    o.insert("bizStep".into(), json!("commissioning"));
    o.insert("disposition".into(), json!("active"));
    let msp = t.actor.as_deref().unwrap_or("");
    if let Some(l) = &t.location {
        o.insert("readPoint".into(), location(l, msp));
    }
    if let Some(s) = site {
        o.insert("bizLocation".into(), location(s, msp));
    }
    if let Some(d) = date {
        o.insert("qcss:output".into(), json!({"production_date": d}));
    }
    if let Some(a) = &t.actor {
        o.insert("qcss:actor".into(), json!(a));
    }
    Value::Object(o)
}

/// One contract event (`src/model.rs` `Event`, not a transformation) as an
/// EPCIS 2.0 event (without `eventID`).
fn to_epcis(e: &Value) -> Value {
    let kind = e["type"].as_str().unwrap_or("ObjectEvent");
    let offset = str_field(e, "event_time_zone_offset").unwrap_or("+00:00");
    let msp = str_field(e, "actor").unwrap_or("");
    let mut o = Map::new();
    o.insert("type".into(), json!(kind));
    let t = e["event_time"].as_i64().unwrap_or(0);
    o.insert("eventTime".into(), json!(rfc3339(t, offset)));
    o.insert("eventTimeZoneOffset".into(), json!(offset));
    if let Some(r) = e["record_time"].as_i64() {
        o.insert("recordTime".into(), json!(rfc3339(r, "Z")));
    }
    let batch = e["batch"].as_str().unwrap_or("");
    match kind {
        "AggregationEvent" => {
            if let Some(a) = str_field(e, "action") {
                o.insert("action".into(), json!(a));
            }
            if let Some(p) = str_field(e, "parent") {
                o.insert("parentID".into(), json!(sscc_link(p)));
            }
            let children: Vec<Value> = e["children"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|c| json!(child_link(c)))
                .collect();
            o.insert("childEPCs".into(), json!(children));
        }
        _ => {
            o.insert(
                "action".into(),
                json!(str_field(e, "action").unwrap_or("OBSERVE")),
            );
            match e["serial"].as_u64() {
                Some(s) => {
                    o.insert(
                        "epcList".into(),
                        json!([digital_link(&format!("{batch}/{s}"))]),
                    );
                }
                None => {
                    o.insert(
                        "quantityList".into(),
                        json!([quantity_element(batch, None, None)]),
                    );
                }
            }
        }
    }
    if let Some(s) = str_field(e, "biz_step") {
        o.insert("bizStep".into(), json!(biz_step_out(s)));
    }
    if let Some(d) = str_field(e, "disposition") {
        o.insert("disposition".into(), json!(d));
    }
    if let Some(r) = str_field(e, "read_point") {
        o.insert("readPoint".into(), location(r, msp));
    }
    if let Some(r) = str_field(e, "biz_location") {
        o.insert("bizLocation".into(), location(r, msp));
    }
    let mut data = e["data"].clone();
    // A lab's test result is a business transaction (CBV type testres).
    if let Some(bt) = data.get("bizTransaction").cloned()
        && let Some(id) = bt["id"].as_str()
    {
        let kind = bt["type"].as_str().unwrap_or("testres");
        o.insert(
            "bizTransactionList".into(),
            json!([{"type": kind, "bizTransaction": format!("{INSPECTION}{}", percent_encode(id))}]),
        );
        if let Some(m) = data.as_object_mut() {
            m.remove("bizTransaction");
        }
    }
    if let Some(s) = str_field(e, "source") {
        o.insert(
            "sourceList".into(),
            json!([{"type": "owning_party", "source": format!("{MSP_PARTY}{s}")}]),
        );
    }
    if let Some(d) = str_field(e, "destination") {
        o.insert(
            "destinationList".into(),
            json!([{"type": "owning_party", "destination": format!("{MSP_PARTY}{d}")}]),
        );
    }
    if let Some(sensors) = e["sensors"].as_array().filter(|s| !s.is_empty()) {
        let report: Vec<Value> = sensors
            .iter()
            .map(|r| {
                json!({"type": r["type"], "value": r["value"], "uom": r["unit"],
                       "time": rfc3339(r["time"].as_i64().unwrap_or(0), offset)})
            })
            .collect();
        o.insert(
            "sensorElementList".into(),
            json!([{"sensorReport": report}]),
        );
    }
    if let Some(att) = e["attachments"].as_array().filter(|a| !a.is_empty()) {
        let certs: Vec<Value> = att
            .iter()
            .filter_map(|a| a["sha256"].as_str())
            .map(|h| json!(format!("{SHA256_URN}{h}")))
            .collect();
        o.insert("certificationInfo".into(), json!(certs));
        o.insert("qcss:attachments".into(), json!(att));
    }
    if !msp.is_empty() {
        o.insert("qcss:actor".into(), json!(msp));
    }
    if !data.is_null() && data.as_object().is_none_or(|m| !m.is_empty()) {
        o.insert("qcss:data".into(), data);
    }
    Value::Object(o)
}

// ---------------------------------------------------------------- import

#[path = "epcis_import.rs"]
mod import;
use import::{id_of, import};

#[cfg(test)]
mod tests {
    use super::import::{Mapped, map_event};
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = 1_764_000_000;
        assert_eq!(rfc3339(t, "Z"), "2025-11-24T16:00:00Z");
        assert_eq!(rfc3339(t, "+08:00"), "2025-11-25T00:00:00+08:00");
        assert_eq!(rfc3339(t, "-05:30"), "2025-11-24T10:30:00-05:30");
        for off in ["Z", "+08:00", "-05:30", "+00:00"] {
            assert_eq!(parse_rfc3339(&rfc3339(t, off)), Some(t));
        }
        assert_eq!(parse_rfc3339("2025-11-24T16:00:00.123Z"), Some(t));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_rfc3339("2025-11-24"), None);
    }

    /// An event written the way GS1's examples write them: EPC URNs, old
    /// CBV URNs, an SGLN read point.
    #[test]
    fn maps_epc_urns_and_old_cbv_urns() {
        let e = json!({"type": "ObjectEvent", "action": "OBSERVE",
            "eventTime": "2013-06-08T14:58:56.591Z", "eventTimeZoneOffset": "+02:00",
            "quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.011111.4444", "quantity": 10, "uom": "KGM"}],
            "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
            "disposition": "urn:epcglobal:cbv:disp:in_transit",
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"}});
        let Mapped::Call(f, arg) = map_event(&e, None) else {
            panic!("skipped")
        };
        assert_eq!(f, "add_event");
        let gtin = qcss_chaincode::unit_code::with_check_digit("0401234511111");
        assert_eq!(arg["target"], format!("{gtin}/4444"));
        assert_eq!(arg["biz_step"], "shipping");
        assert_eq!(arg["disposition"], "in_transit");
        assert_eq!(arg["read_point"], "urn:epc:id:sgln:4012345.00001.0");
        // Exported again, the SGLN is the canonical Digital Link.
        assert_eq!(
            location("urn:epc:id:sgln:4012345.00001.0", "Org1MSP"),
            json!({"id": format!(
                "https://id.gs1.org/414/{}",
                qcss_chaincode::unit_code::with_check_digit("401234500001")
            )})
        );
        // A bare GLN with its check digit is a GLN; with a wrong one, text.
        let gln = qcss_chaincode::unit_code::with_check_digit("690123400001");
        assert_eq!(
            location(&gln, "Org1MSP")["id"],
            format!("https://id.gs1.org/414/{gln}")
        );
        let wrong = format!("{}{}", &gln[..12], (gln.as_bytes()[12] - b'0' + 1) % 10);
        assert_eq!(
            location(&wrong, "Org1MSP")["id"],
            format!("urn:qcss:location:Org1MSP:{wrong}")
        );
        let free = location("cold room 2", "Org1MSP");
        assert_eq!(free["id"], "urn:qcss:location:Org1MSP:cold%20room%202");
        assert_eq!(place_of(&free).as_deref(), Some("cold room 2"));
        let Mapped::Call(_, arg) = map_event(
            &json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "storing",
                    "quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.011111.4444"}],
                    "bizLocation": {"id": free["id"]}}),
            None,
        ) else {
            panic!("skipped")
        };
        assert_eq!(arg["biz_location"], "cold room 2");
    }

    #[test]
    fn documents_list_type_first() {
        let v = json!({"epcisBody": {"eventList": [{"sourceList": [{"source": "urn:x", "type": "owning_party"}],
                       "eventID": "ni:x", "type": "ObjectEvent", "a": [], "b": {}}]},
                       "type": "EPCISDocument", "@context": ["c"]});
        let text = pretty(&v);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        let at = |s: &str| text.find(s).unwrap();
        assert!(at("\"@context\"") < at("\"type\": \"EPCISDocument\""));
        assert!(at("\"type\": \"ObjectEvent\"") < at("\"eventID\""));
        assert!(at("\"eventID\"") < at("\"a\": []"));
        assert!(at("\"type\": \"owning_party\"") < at("\"source\": \"urn:x\""));
    }

    #[test]
    fn identifiers() {
        assert_eq!(
            digital_link("06901234560015/H1"),
            "https://id.gs1.org/01/06901234560015/10/H1"
        );
        assert_eq!(
            ledger_id("https://q.example.com/01/06901234560015/10/H1/21/5?8030=x").as_deref(),
            Some("06901234560015/H1/5")
        );
        assert_eq!(
            ledger_id(&digital_link("06901234560015/H1")).as_deref(),
            Some("06901234560015/H1")
        );
        assert_eq!(
            ledger_id(&sscc_link("006901234000000017")).as_deref(),
            Some("006901234000000017")
        );
        assert_eq!(
            short_vocab("https://ref.gs1.org/cbv/BizStep-shipping"),
            "shipping"
        );
        assert_eq!(short_vocab(&biz_step_out("harvesting")), "harvesting");
    }

    #[test]
    fn export_then_map_gives_the_same_add_event() {
        let e = json!({"event_id": "tx1:0", "type": "ObjectEvent", "action": "OBSERVE",
            "batch": "06901234560015/H1", "serial": null, "biz_step": "harvesting",
            "disposition": "in_progress", "actor": "Org1MSP", "event_time": 1_764_000_000,
            "event_time_zone_offset": "+08:00", "record_time": 1_764_000_100,
            "read_point": "orchard 3", "biz_location": null, "destination": "Org2MSP",
            "attachments": [{"sha256": "ab", "name": "f.jpg", "media_type": null}],
            "data": {"truck": "Z-1"}});
        let x = to_epcis(&e);
        assert_eq!(x["bizStep"], "https://qcss.dev/voc/bizstep/harvesting");
        assert_eq!(x["certificationInfo"][0], "urn:qcss:sha256:ab");
        let Mapped::Call(f, arg) = map_event(&x, None) else {
            panic!("skipped")
        };
        assert_eq!(f, "add_event");
        assert_eq!(
            arg,
            json!({"target": "06901234560015/H1", "biz_step": "harvesting",
                   "disposition": "in_progress", "event_time": 1_764_000_000,
                   "event_time_zone_offset": "+08:00", "read_point": "orchard 3",
                   "destination": "Org2MSP",
                   "attachments": [{"sha256": "ab", "name": "f.jpg", "media_type": null}],
                   "data": {"truck": "Z-1"}})
        );
        let Mapped::Call(_, arg) = map_event(&x, Some("06901234560015/H9")) else {
            panic!("skipped")
        };
        assert_eq!(arg["target"], "06901234560015/H9");
        let mut c = x.clone();
        c["action"] = json!("ADD");
        c["bizStep"] = json!("commissioning");
        assert!(matches!(map_event(&c, None), Mapped::Skip(_)));
    }

    #[test]
    fn a_transformation_keeps_its_time_zone() {
        let x = json!({"type": "TransformationEvent",
            "eventTime": "2026-06-01T08:00:00+08:00", "eventTimeZoneOffset": "+08:00",
            "transformationID": "urn:qcss:transformation:T-1",
            "inputQuantityList": [{"epcClass": "https://id.gs1.org/01/06901234560015/10/H1",
                                   "quantity": 600, "uom": "KGM"}],
            "outputQuantityList": [{"epcClass": "https://id.gs1.org/01/06901234560022/10/LJ1",
                                    "quantity": 24}]});
        let Mapped::Call(f, arg) = map_event(&x, None) else {
            panic!("skipped")
        };
        assert_eq!(f, "transform");
        assert_eq!(arg["event_time_zone_offset"], "+08:00", "{arg}");
        assert_eq!(arg["event_time"], 1_780_272_000, "{arg}");
    }
}
