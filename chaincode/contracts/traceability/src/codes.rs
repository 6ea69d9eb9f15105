//! One item, one code: verifying unit codes with no per-unit record, and
//! consumer scans and claims with clone detection.
//!
//! A code is checked against the Ed25519 key registered for its batch (host
//! call `verify_ed25519`), then its serial against the batch quantity. The
//! per-unit record (`unit/…`) is created by the first scan, claim or pack:
//! issuing codes writes nothing.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::{Deserialize, Serialize};

use crate::events::beyond_quantity;
use crate::ids::{UnitCode, base64url_decode, check_text};
use crate::model::{Batch, Product, Recall, Scan, Unit};
use crate::store::{Tx, key, load, load_batch, load_product, load_unit, save, unit_key};

/// Scans of one code after which it is flagged as possibly cloned.
pub const MAX_SCANS: u32 = 5;

/// What verifying or scanning a code shows; the recall comes first.
#[derive(Serialize)]
pub struct Verification {
    pub recall: Option<Recall>,
    pub counterfeit_warning: Option<String>,
    pub unit: String,
    pub product: Product,
    pub batch: Batch,
    pub permit: PermitSummary,
    pub scans: u32,
    pub first_scan: Option<Scan>,
    pub claimed: Option<Scan>,
    pub container: Option<String>,
}

/// The batch owner's permit as a scan shows it.
#[derive(Serialize)]
pub struct PermitSummary {
    pub msp: String,
    pub status: String,
    pub valid_until: Option<i64>,
    pub expired: bool,
    /// SHA-256 of the approved certificate's document (kept off-chain, in
    /// MDSS if the producer stored it there), its issuer and scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateSummary>,
}

/// The approved certificate as a scan shows it.
#[derive(Serialize)]
pub struct CertificateSummary {
    pub sha256: String,
    pub issuer: String,
    pub scope: String,
}

/// Reads `msp`'s permit status at `now`.
pub fn permit_summary(ctx: &mut Context, msp: &str, now: i64) -> Result<PermitSummary, Error> {
    let permit: Option<crate::model::Permit> = load(ctx, &key("permit", &[msp])?)?;
    let approved = permit.as_ref().and_then(|p| p.certificate.as_ref());
    let valid_until = approved.map(|c| c.valid_until);
    let certificate = approved.map(|c| CertificateSummary {
        sha256: c.certificate_sha256.clone(),
        issuer: c.issuer.clone(),
        scope: c.scope.clone(),
    });
    Ok(PermitSummary {
        msp: msp.to_owned(),
        status: permit.map_or_else(|| "none".to_owned(), |p| p.status),
        valid_until,
        expired: valid_until.is_some_and(|t| t <= now),
        certificate,
    })
}

/// Parses `uri` and checks its signature and serial; returns the code and its batch.
pub fn check_code(ctx: &mut Context, uri: &str) -> Result<(UnitCode, Batch), Error> {
    let code = UnitCode::parse(uri)?;
    let batch = load_batch(ctx, &code.unit.batch)?;
    let key_b64 = batch
        .code_key
        .as_deref()
        .ok_or_else(|| Error::new(format!("batch {} has no code key registered", batch.id)))?;
    let public_key = base64url_decode(key_b64)
        .ok_or_else(|| Error::new(format!("batch {}'s code key is malformed", batch.id)))?;
    if !ctx.verify_ed25519(&public_key, &code.signed_message(), &code.signature)? {
        return Err(Error::new(format!(
            "counterfeit code: the signature is not valid for batch {} (forged, altered, or issued for another batch)",
            batch.id
        )));
    }
    if code.unit.serial > batch.quantity {
        return Err(beyond_quantity(code.unit.serial, &batch));
    }
    Ok((code, batch))
}

fn verification(
    ctx: &mut Context,
    now: i64,
    batch: Batch,
    unit: &Unit,
) -> Result<Verification, Error> {
    let product = load_product(ctx, &batch.gtin)?;
    let permit = permit_summary(ctx, &batch.owner, now)?;
    Ok(Verification {
        recall: batch.recall.clone(),
        counterfeit_warning: (!unit.clone_warnings.is_empty())
            .then(|| format!("possible counterfeit: {}", unit.clone_warnings.join("; "))),
        unit: unit.id.clone(),
        product,
        batch,
        permit,
        scans: unit.scans,
        first_scan: unit.first_scan.clone(),
        claimed: unit.claimed.clone(),
        container: unit.parent.clone(),
    })
}

/// `verify_code`: anyone; a query that writes nothing.
pub fn verify_code(ctx: &mut Context, uri: String) -> Result<Json<Verification>, Error> {
    let now = ctx.tx_timestamp()?.seconds;
    let (code, batch) = check_code(ctx, &uri)?;
    let unit = load_unit(ctx, &code.unit)?;
    verification(ctx, now, batch, &unit).map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanArgs {
    code: String,
    /// Where the scan happened, coarse (city or region code, or a GLN).
    location: String,
}

/// `scan`: a consumer identity (or the platform's gateway identity with
/// `consumer=true`, on a consumer's behalf) records a scan.
pub fn scan(ctx: &mut Context, a: Json<ScanArgs>) -> Result<Json<Verification>, Error> {
    record(ctx, a.0, false)
}

/// `claim`: a consumer claims (decommissions) the unit they bought; a code
/// claimed before is flagged, not refused, so the clone is on record.
pub fn claim(ctx: &mut Context, a: Json<ScanArgs>) -> Result<Json<Verification>, Error> {
    record(ctx, a.0, true)
}

fn record(ctx: &mut Context, a: ScanArgs, claiming: bool) -> Result<Json<Verification>, Error> {
    let tx = Tx::new(ctx)?;
    tx.require(
        "consumer",
        if claiming {
            "claim a unit"
        } else {
            "record a scan"
        },
    )?;
    check_text("location", &a.location, 128)?;
    let (code, batch) = check_code(ctx, &a.code)?;
    let mut unit = load_unit(ctx, &code.unit)?;
    let scan = Scan {
        time: tx.now,
        location: a.location.clone(),
        msp: tx.msp().to_owned(),
        tx_id: tx.tx_id.clone(),
    };
    let mut warnings = Vec::new();
    if let Some(c) = &unit.claimed {
        warnings.push(format!(
            "already claimed by a consumer at {} in {}",
            c.time, c.location
        ));
    }
    if let Some(first) = &unit.first_scan
        && first.location != a.location
    {
        warnings.push(format!(
            "first scanned in {}, now scanned in {}",
            first.location, a.location
        ));
    }
    unit.scans += 1;
    if unit.scans > MAX_SCANS {
        warnings.push(format!("scanned {} times", unit.scans));
    }
    for w in warnings {
        // Keep one warning of each kind (the scan count one is updated).
        let kind = w.split_whitespace().next().unwrap_or_default().to_owned();
        unit.clone_warnings.retain(|x| !x.starts_with(&kind));
        unit.clone_warnings.push(w);
    }
    if unit.first_scan.is_none() {
        unit.first_scan = Some(scan.clone());
    }
    unit.last_scan = Some(scan.clone());
    if claiming && unit.claimed.is_none() {
        unit.claimed = Some(scan);
        unit.claimed_by = Some(crate::uces::author_id(ctx, &tx)?);
    }
    save(ctx, &unit_key(&code.unit)?, &unit)?;
    crate::rewards::note_scan(ctx, &tx, &unit.id)?;
    let result = verification(ctx, tx.now, batch, &unit)?;
    match &result.counterfeit_warning {
        Some(w) => ctx.set_event("CounterfeitWarning", &(&unit.id, w))?,
        None => ctx.set_event("Scanned", &unit.id)?,
    }
    Ok(Json(result))
}
