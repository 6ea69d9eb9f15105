//! Trace queries (anyone): a unit's or batch's full history, the
//! transformation graph upstream and downstream to any depth; and the
//! regulator's and auditor's read-all (`audit`).

use qcss_chaincode_sdk::{Context, Error, Json, partial_key_range, split_composite_key};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::codes::{PermitSummary, check_code, permit_summary};
use crate::ids::{BatchId, Target};
use crate::model::{Batch, Product, Recall, Unit};
use crate::store::{key, load, load_batch, load_product};
use crate::uces::PublicEvaluation;

/// A unit's or batch's history; the recall comes first.
#[derive(Serialize)]
pub struct TraceReport {
    recall: Option<Recall>,
    counterfeit_warning: Option<String>,
    target: String,
    product: Product,
    batch: Batch,
    permit: PermitSummary,
    unit: Option<Unit>,
    /// The unit's consumer evaluation, as anyone may see it (`uces_get`'s
    /// public view, with its photos once it is valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation: Option<PublicEvaluation>,
    /// The containers the unit is in, innermost first.
    containers: Vec<String>,
    /// EPCIS events in record order (for a unit: the batch's and its own).
    timeline: Vec<Box<RawValue>>,
    inspections: Vec<Box<RawValue>>,
    alerts: Vec<Box<RawValue>>,
    /// Direct inputs and outputs (see `trace_upstream`/`trace_downstream`).
    upstream: Vec<String>,
    downstream: Vec<String>,
}

#[derive(Deserialize)]
struct SerialOnly {
    serial: Option<u64>,
}

/// `trace`: `id` is a unit code URI (checked like `verify_code`), a unit id
/// `{gtin}/{lot}/{serial}` or a batch id `{gtin}/{lot}`.
pub fn trace(ctx: &mut Context, id: String) -> Result<Json<TraceReport>, Error> {
    let now = ctx.tx_timestamp()?.seconds;
    let (target, batch) = if id.contains('?') {
        let (code, batch) = check_code(ctx, &id)?;
        (Target::Unit(code.unit), batch)
    } else {
        let target = Target::parse(&id)?;
        let batch = load_batch(ctx, target.batch())?;
        if let Some(s) = target.serial()
            && s > batch.quantity
        {
            return Err(crate::events::beyond_quantity(s, &batch));
        }
        (target, batch)
    };
    let bid = target.batch().clone();
    let (unit, evaluation) = match &target {
        Target::Unit(u) => (
            Some(crate::store::load_unit(ctx, u)?),
            crate::uces::public_evaluation(ctx, u)?,
        ),
        Target::Batch(_) => (None, None),
    };
    let mut containers = Vec::new();
    let mut next = unit.as_ref().and_then(|u| u.parent.clone());
    while let Some(c) = next {
        if containers.len() > 8 {
            break;
        }
        let container: Option<crate::model::Container> = load(ctx, &key("container", &[&c])?)?;
        containers.push(c);
        next = container.and_then(|x| x.parent);
    }
    let mut timeline = Vec::new();
    for (_, raw) in rows(ctx, "event", &bid)? {
        let keep = match target.serial() {
            None => true,
            Some(s) => serde_json::from_slice::<SerialOnly>(&raw)?
                .serial
                .is_none_or(|x| x == s),
        };
        if keep {
            timeline.push(raw_value(raw)?);
        }
    }
    let inspections = rows(ctx, "inspection", &bid)?
        .into_iter()
        .map(|(_, v)| raw_value(v))
        .collect::<Result<_, _>>()?;
    let alerts = rows(ctx, "alert", &bid)?
        .into_iter()
        .map(|(_, v)| raw_value(v))
        .collect::<Result<_, _>>()?;
    let product = load_product(ctx, &batch.gtin)?;
    let permit = permit_summary(ctx, &batch.owner, now)?;
    let counterfeit_warning = unit
        .as_ref()
        .filter(|u| !u.clone_warnings.is_empty())
        .map(|u| format!("possible counterfeit: {}", u.clone_warnings.join("; ")));
    Ok(Json(TraceReport {
        recall: batch.recall.clone(),
        counterfeit_warning,
        target: match &target {
            Target::Unit(u) => u.id(),
            Target::Batch(b) => b.id(),
        },
        upstream: batch.inputs.iter().map(|q| q.batch.clone()).collect(),
        downstream: batch.outputs.clone(),
        product,
        batch,
        permit,
        unit,
        evaluation,
        containers,
        timeline,
        inspections,
        alerts,
    }))
}

/// A transformation graph.
#[derive(Serialize)]
pub struct Graph {
    root: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

#[derive(Serialize)]
struct Node {
    id: String,
    owner: String,
    custodian: String,
    quantity: u64,
    available: u64,
    uom: String,
    conformance: Option<String>,
    recalled: bool,
}

/// `input` went into `output` (`quantity` of the input's unit).
#[derive(Serialize)]
struct Edge {
    input: String,
    output: String,
    quantity: u64,
}

/// `trace_upstream`: every batch that went into `batch`, to any depth.
pub fn trace_upstream(ctx: &mut Context, batch: String) -> Result<Json<Graph>, Error> {
    graph(ctx, &batch, true).map(Json)
}

/// `trace_downstream`: every batch made from `batch`, to any depth.
pub fn trace_downstream(ctx: &mut Context, batch: String) -> Result<Json<Graph>, Error> {
    graph(ctx, &batch, false).map(Json)
}

fn graph(ctx: &mut Context, root: &str, upstream: bool) -> Result<Graph, Error> {
    let root_id = BatchId::parse(root)?;
    let mut g = Graph {
        root: root_id.id(),
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    let mut queue = std::collections::VecDeque::from([root_id.id()]);
    let mut seen = std::collections::BTreeSet::new();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let b = load_batch(ctx, &BatchId::parse(&id)?)?;
        if upstream {
            for q in &b.inputs {
                g.edges.push(Edge {
                    input: q.batch.clone(),
                    output: b.id.clone(),
                    quantity: q.quantity,
                });
                queue.push_back(q.batch.clone());
            }
        } else {
            for out in &b.outputs {
                let o = load_batch(ctx, &BatchId::parse(out)?)?;
                let quantity = o
                    .inputs
                    .iter()
                    .find(|q| q.batch == b.id)
                    .map_or(0, |q| q.quantity);
                g.edges.push(Edge {
                    input: b.id.clone(),
                    output: out.clone(),
                    quantity,
                });
                queue.push_back(out.clone());
            }
        }
        g.nodes.push(Node {
            id: b.id,
            owner: b.owner,
            custodian: b.custodian,
            quantity: b.quantity,
            available: b.available,
            uom: b.uom,
            conformance: b.conformance,
            recalled: b.recall.is_some(),
        });
    }
    Ok(g)
}

/// Object kinds `audit` lists.
pub const AUDIT_KINDS: &[&str] = &[
    "permit",
    "lab",
    "product",
    "batch",
    "transformation",
    "event",
    "inspection",
    "alert",
    "container",
    "aggregation",
    "unit",
    "device",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditArgs {
    kind: String,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Rows per page (default and maximum 500).
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct AuditPage {
    rows: Vec<AuditRow>,
    /// Pass as `after` to read the next page; absent on the last page.
    next: Option<String>,
}

#[derive(Serialize)]
struct AuditRow {
    /// The key's attributes joined by `/` (e.g. `{gtin}/{lot}/{seq}`).
    id: String,
    value: Box<RawValue>,
}

/// `audit`: a regulator or auditor reads every record of one kind, by pages.
pub fn audit(ctx: &mut Context, a: Json<AuditArgs>) -> Result<Json<AuditPage>, Error> {
    let caller = ctx.caller()?;
    if caller.attr("regulator") != Some("true") && caller.attr("auditor") != Some("true") {
        return Err(Error::new(
            "access denied: only a regulator or auditor identity may audit the ledger",
        ));
    }
    let a = a.0;
    if !AUDIT_KINDS.contains(&a.kind.as_str()) {
        return Err(Error::new(format!(
            "unknown kind {:?}: one of {}",
            a.kind,
            AUDIT_KINDS.join(", ")
        )));
    }
    let limit = a.limit.unwrap_or(500).clamp(1, 500);
    let (mut start, end) = partial_key_range(&a.kind, &[])?;
    if let Some(after) = a.after {
        if !(start <= after && after < end) {
            return Err(Error::new("`after` is not a key of this kind"));
        }
        start = format!("{after}\u{0}");
    }
    let page = ctx.range_bytes(&start, &end, limit)?;
    let next = page
        .more
        .then(|| page.rows.last().map(|(k, _)| k.clone()))
        .flatten();
    let rows = page
        .rows
        .into_iter()
        .map(|(k, v)| {
            let (_, attrs) = split_composite_key(&k)?;
            Ok(AuditRow {
                id: attrs.join("/"),
                value: raw_value(v)?,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Json(AuditPage { rows, next }))
}

/// Every row of `kind/{gtin}/{lot}/…`, following pages.
fn rows(ctx: &mut Context, kind: &str, batch: &BatchId) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let (mut start, end) = partial_key_range(kind, &[&batch.gtin, &batch.lot])?;
    let mut out = Vec::new();
    loop {
        let page = ctx.range_bytes(&start, &end, 0)?;
        let more = page.more;
        out.extend(page.rows);
        match out.last() {
            Some((k, _)) if more => start = format!("{k}\u{0}"),
            _ => return Ok(out),
        }
    }
}

fn raw_value(bytes: Vec<u8>) -> Result<Box<RawValue>, Error> {
    Ok(RawValue::from_string(String::from_utf8(bytes)?)?)
}
