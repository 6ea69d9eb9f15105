//! Aggregation (EPCIS AggregationEvent): units packed into cases (SSCC),
//! cases onto pallets, and unpacked; a container shows its contents.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::{Deserialize, Serialize};

use crate::events::beyond_quantity;
use crate::ids::{UnitId, check_sscc};
use crate::model::{Container, Recall};
use crate::store::{Tx, key, load, load_batch, load_unit, save, unit_key};

/// How deep containers nest (unit → case → pallet → … ).
const MAX_DEPTH: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// The case or pallet, an SSCC (18 digits).
    parent: String,
    /// Unit ids `{gtin}/{lot}/{serial}` or SSCCs; for `unpack`, empty = all.
    #[serde(default)]
    children: Vec<String>,
    event_time: Option<i64>,
    read_point: Option<String>,
}

/// `pack`: the holder of the units' batches packs them (or cases it owns)
/// into a container, created on first use.
pub fn pack(ctx: &mut Context, p: Json<Pack>) -> Result<Json<Container>, Error> {
    let mut tx = Tx::new(ctx)?;
    let p = p.0;
    check_sscc(&p.parent)?;
    if p.children.is_empty() {
        return Err(Error::new("nothing to pack: children is empty"));
    }
    let event_time = tx.event_time("event_time", p.event_time)?;
    let ckey = key("container", &[&p.parent])?;
    let mut container = match load::<Container>(ctx, &ckey)? {
        Some(c) => {
            require_container_owner(ctx, &c, &tx)?;
            c
        }
        None => Container {
            sscc: p.parent.clone(),
            owner: tx.msp().to_owned(),
            children: Vec::new(),
            parent: None,
            events: 0,
        },
    };
    for (i, child) in p.children.iter().enumerate() {
        if p.children[..i].contains(child) || container.children.contains(child) {
            return Err(Error::new(format!("{child} is already in {}", p.parent)));
        }
        if child.contains('/') {
            let unit = UnitId::parse(child)?;
            let batch = load_batch(ctx, &unit.batch)?;
            if unit.serial > batch.quantity {
                return Err(beyond_quantity(unit.serial, &batch));
            }
            if batch.custodian != tx.msp() {
                return Err(Error::new(format!(
                    "access denied: batch {} is held by {}; {} cannot pack its units",
                    batch.id,
                    batch.custodian,
                    tx.msp()
                )));
            }
            if let Some(r) = &batch.recall {
                return Err(Error::new(format!(
                    "batch {} is recalled ({})",
                    batch.id, r.reason
                )));
            }
            let mut u = load_unit(ctx, &unit)?;
            if let Some(parent) = &u.parent {
                return Err(Error::new(format!(
                    "unit {child} is already packed in {parent}"
                )));
            }
            if u.claimed.is_some() {
                return Err(Error::new(format!(
                    "unit {child} was claimed by a consumer"
                )));
            }
            u.parent = Some(p.parent.clone());
            save(ctx, &unit_key(&unit)?, &u)?;
        } else {
            check_sscc(child)?;
            if *child == p.parent || ancestors(ctx, &container)?.contains(child) {
                return Err(Error::new(format!(
                    "packing {child} into {} would make a cycle",
                    p.parent
                )));
            }
            let k = key("container", &[child])?;
            let mut c: Container =
                load(ctx, &k)?.ok_or_else(|| Error::new(format!("unknown container {child}")))?;
            require_container_owner(ctx, &c, &tx)?;
            if let Some(parent) = &c.parent {
                return Err(Error::new(format!(
                    "container {child} is already packed in {parent}"
                )));
            }
            c.parent = Some(p.parent.clone());
            save(ctx, &k, &c)?;
        }
        container.children.push(child.clone());
    }
    let mut event = aggregation_event(&mut tx, &p.parent, "ADD", "packing", p.children);
    event.event_time = event_time;
    event.read_point = p.read_point;
    save(
        ctx,
        &key(
            "aggregation",
            &[&p.parent, &format!("{:08}", container.events)],
        )?,
        &event,
    )?;
    container.events += 1;
    save(ctx, &ckey, &container)?;
    ctx.set_event("Packed", &container.sscc)?;
    Ok(Json(container))
}

/// `unpack`: the container's owner (or the holder of every batch in it)
/// takes children out; no children listed = all.
pub fn unpack(ctx: &mut Context, p: Json<Pack>) -> Result<Json<Container>, Error> {
    let mut tx = Tx::new(ctx)?;
    let p = p.0;
    check_sscc(&p.parent)?;
    let event_time = tx.event_time("event_time", p.event_time)?;
    let ckey = key("container", &[&p.parent])?;
    let mut container: Container =
        load(ctx, &ckey)?.ok_or_else(|| Error::new(format!("unknown container {}", p.parent)))?;
    require_container_owner(ctx, &container, &tx)?;
    let out = if p.children.is_empty() {
        container.children.clone()
    } else {
        p.children
    };
    for child in &out {
        if !container.children.contains(child) {
            return Err(Error::new(format!("{child} is not in {}", p.parent)));
        }
        if child.contains('/') {
            let unit = UnitId::parse(child)?;
            let mut u = load_unit(ctx, &unit)?;
            u.parent = None;
            save(ctx, &unit_key(&unit)?, &u)?;
        } else {
            let k = key("container", &[child])?;
            if let Some(mut c) = load::<Container>(ctx, &k)? {
                c.parent = None;
                save(ctx, &k, &c)?;
            }
        }
    }
    container.children.retain(|c| !out.contains(c));
    let mut event = aggregation_event(&mut tx, &p.parent, "DELETE", "unpacking", out);
    event.event_time = event_time;
    event.read_point = p.read_point;
    save(
        ctx,
        &key(
            "aggregation",
            &[&p.parent, &format!("{:08}", container.events)],
        )?,
        &event,
    )?;
    container.events += 1;
    save(ctx, &ckey, &container)?;
    ctx.set_event("Unpacked", &container.sscc)?;
    Ok(Json(container))
}

/// What scanning a container shows.
#[derive(Serialize)]
pub struct Contents {
    sscc: String,
    owner: String,
    parent: Option<String>,
    /// Recalls of batches inside (a container holding a recalled batch is
    /// recalled); filled for the container scanned, not for nested ones.
    recalls: Vec<Recall>,
    /// Every batch inside, at any depth.
    batches: Vec<String>,
    /// Units inside, at any depth.
    units: Vec<String>,
    /// Direct children, containers with their own contents.
    children: Vec<Child>,
}

#[derive(Serialize)]
struct Child {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    contents: Option<Contents>,
}

/// `container_contents`: anyone; the container, nested to any depth, with
/// the batches inside and their recalls.
pub fn container_contents(ctx: &mut Context, sscc: String) -> Result<Json<Contents>, Error> {
    check_sscc(&sscc)?;
    contents(ctx, &sscc, 0).map(Json)
}

fn contents(ctx: &mut Context, sscc: &str, depth: usize) -> Result<Contents, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(format!(
            "containers nest deeper than {MAX_DEPTH}"
        )));
    }
    let c: Container = load(ctx, &key("container", &[sscc])?)?
        .ok_or_else(|| Error::new(format!("unknown container {sscc}")))?;
    let mut out = Contents {
        sscc: c.sscc,
        owner: c.owner,
        parent: c.parent,
        recalls: Vec::new(),
        batches: Vec::new(),
        units: Vec::new(),
        children: Vec::new(),
    };
    for child in c.children {
        if child.contains('/') {
            let unit = UnitId::parse(&child)?;
            let batch = unit.batch.id();
            if !out.batches.contains(&batch) {
                out.batches.push(batch);
            }
            out.units.push(child.clone());
            out.children.push(Child {
                id: child,
                contents: None,
            });
        } else {
            let inner = contents(ctx, &child, depth + 1)?;
            for b in &inner.batches {
                if !out.batches.contains(b) {
                    out.batches.push(b.clone());
                }
            }
            out.units.extend(inner.units.iter().cloned());
            out.children.push(Child {
                id: child,
                contents: Some(inner),
            });
        }
    }
    // Recalls are looked up once, for the container scanned.
    for b in out.batches.iter().filter(|_| depth == 0) {
        let batch = load_batch(ctx, &crate::ids::BatchId::parse(b)?)?;
        if let Some(r) = batch.recall {
            out.recalls.push(r);
        }
    }
    Ok(out)
}

fn aggregation_event(
    tx: &mut Tx,
    parent: &str,
    action: &str,
    step: &str,
    children: Vec<String>,
) -> crate::model::Event {
    crate::model::Event {
        event_id: tx.next_event_id(),
        kind: "AggregationEvent".to_owned(),
        action: Some(action.to_owned()),
        biz_step: step.to_owned(),
        actor: tx.msp().to_owned(),
        event_time: tx.now,
        event_time_zone_offset: "+00:00".to_owned(),
        record_time: tx.now,
        parent: Some(parent.to_owned()),
        children,
        ..Default::default()
    }
}

/// The container's owner, or an organisation holding every batch inside.
fn require_container_owner(ctx: &mut Context, c: &Container, tx: &Tx) -> Result<(), Error> {
    if c.owner == tx.msp() {
        return Ok(());
    }
    let inside = contents(ctx, &c.sscc, 0)?;
    let mut holds_all = !inside.batches.is_empty();
    for b in &inside.batches {
        let batch = load_batch(ctx, &crate::ids::BatchId::parse(b)?)?;
        holds_all &= batch.custodian == tx.msp();
    }
    if holds_all {
        Ok(())
    } else {
        Err(Error::new(format!(
            "access denied: container {} belongs to {}",
            c.sscc, c.owner
        )))
    }
}

fn ancestors(ctx: &mut Context, c: &Container) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut next = c.parent.clone();
    while let Some(p) = next {
        if out.len() > MAX_DEPTH {
            break;
        }
        let pc: Option<Container> = load(ctx, &key("container", &[&p])?)?;
        out.push(p);
        next = pc.and_then(|x| x.parent);
    }
    Ok(out)
}
