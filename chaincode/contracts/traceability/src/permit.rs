//! The on-chain permit (上链许可): an enterprise applies with its quality
//! certificate; a regulator approves, rejects, suspends and reinstates.
//! Every change is appended to the permit's history.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::Deserialize;

use crate::ids::{check_msp, check_sha256, check_text};
use crate::model::{Certificate, Permit, PermitChange};
use crate::store::{Tx, key, load, save};

/// `apply_permit`: an enterprise applies (first time or renewal).
pub fn apply_permit(ctx: &mut Context, cert: Json<Certificate>) -> Result<Json<Permit>, Error> {
    let tx = Tx::new(ctx)?;
    tx.require("enterprise", "apply for an on-chain permit")?;
    let cert = cert.0;
    check_sha256("certificate_sha256", &cert.certificate_sha256)?;
    check_text("issuer", &cert.issuer, 256)?;
    check_text("scope", &cert.scope, 1024)?;
    if cert.valid_until <= tx.now {
        return Err(Error::new(format!(
            "the certificate expired at {} (transaction time {})",
            cert.valid_until, tx.now
        )));
    }
    let k = key("permit", &[tx.msp()])?;
    let mut permit = load::<Permit>(ctx, &k)?.unwrap_or_else(|| Permit {
        msp: tx.msp().to_owned(),
        status: "applied".to_owned(),
        certificate: None,
        pending: None,
        history: Vec::new(),
    });
    if permit.pending.is_some() {
        return Err(Error::new(format!(
            "organisation {} already has an application pending",
            tx.msp()
        )));
    }
    if permit.status == "suspended" {
        return Err(Error::new(format!(
            "organisation {}'s permit is suspended: only a regulator can reinstate it",
            tx.msp()
        )));
    }
    if permit.status == "rejected" {
        permit.status = "applied".to_owned();
    }
    change(&mut permit, &tx, "applied", None, Some(&cert));
    permit.pending = Some(cert);
    save(ctx, &k, &permit)?;
    ctx.set_event("PermitApplied", &permit.msp)?;
    Ok(Json(permit))
}

/// Arguments of the regulator's permit decisions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    msp: String,
    reason: Option<String>,
}

/// `approve_permit`: a regulator grants the pending application.
pub fn approve_permit(ctx: &mut Context, d: Json<Decision>) -> Result<Json<Permit>, Error> {
    decide(ctx, d.0, "approve", |p, tx| {
        let cert = p.pending.take().ok_or_else(|| nothing_pending(&p.msp))?;
        if cert.valid_until <= tx.now {
            return Err(Error::new(format!(
                "the pending certificate of {} expired at {}",
                p.msp, cert.valid_until
            )));
        }
        p.certificate = Some(cert);
        if p.status != "suspended" {
            p.status = "active".to_owned();
        }
        Ok("approved")
    })
}

/// `reject_permit`: a regulator refuses the pending application (reason required).
pub fn reject_permit(ctx: &mut Context, d: Json<Decision>) -> Result<Json<Permit>, Error> {
    decide(ctx, d.0, "reject", |p, _| {
        p.pending.take().ok_or_else(|| nothing_pending(&p.msp))?;
        if p.certificate.is_none() {
            p.status = "rejected".to_owned();
        }
        Ok("rejected")
    })
}

/// `suspend_permit`: a regulator suspends an active permit (reason required).
pub fn suspend_permit(ctx: &mut Context, d: Json<Decision>) -> Result<Json<Permit>, Error> {
    decide(ctx, d.0, "suspend", |p, _| {
        if p.status != "active" {
            return Err(Error::new(format!(
                "organisation {}'s permit is {}, not active",
                p.msp, p.status
            )));
        }
        p.status = "suspended".to_owned();
        Ok("suspended")
    })
}

/// `reinstate_permit`: a regulator lifts a suspension (reason required).
pub fn reinstate_permit(ctx: &mut Context, d: Json<Decision>) -> Result<Json<Permit>, Error> {
    decide(ctx, d.0, "reinstate", |p, _| {
        if p.status != "suspended" {
            return Err(Error::new(format!(
                "organisation {}'s permit is {}, not suspended",
                p.msp, p.status
            )));
        }
        p.status = "active".to_owned();
        Ok("reinstated")
    })
}

/// `get_permit`: anyone reads a permit with its history.
pub fn get_permit(ctx: &mut Context, msp: String) -> Result<Json<Permit>, Error> {
    load(ctx, &key("permit", &[&msp])?)?
        .map(Json)
        .ok_or_else(|| Error::new(format!("organisation {msp} has no on-chain permit")))
}

fn decide(
    ctx: &mut Context,
    d: Decision,
    verb: &str,
    apply: impl FnOnce(&mut Permit, &Tx) -> Result<&'static str, Error>,
) -> Result<Json<Permit>, Error> {
    let tx = Tx::new(ctx)?;
    tx.require("regulator", &format!("{verb} a permit"))?;
    check_msp(&d.msp)?;
    if verb != "approve" {
        check_text("reason", d.reason.as_deref().unwrap_or(""), 1024)?;
    }
    let k = key("permit", &[&d.msp])?;
    let mut permit: Permit = load(ctx, &k)?
        .ok_or_else(|| Error::new(format!("organisation {} has no on-chain permit", d.msp)))?;
    let action = apply(&mut permit, &tx)?;
    let sha = permit
        .certificate
        .as_ref()
        .map(|c| c.certificate_sha256.clone());
    permit.history.push(PermitChange {
        action: action.to_owned(),
        by: tx.msp().to_owned(),
        time: tx.now,
        tx_id: tx.tx_id.clone(),
        reason: d.reason,
        certificate_sha256: sha,
    });
    save(ctx, &k, &permit)?;
    crate::index::on_permit(ctx, &tx, &permit.msp)?;
    ctx.set_event("PermitChanged", &permit.msp)?;
    Ok(Json(permit))
}

fn change(
    permit: &mut Permit,
    tx: &Tx,
    action: &str,
    reason: Option<String>,
    cert: Option<&Certificate>,
) {
    permit.history.push(PermitChange {
        action: action.to_owned(),
        by: tx.msp().to_owned(),
        time: tx.now,
        tx_id: tx.tx_id.clone(),
        reason,
        certificate_sha256: cert.map(|c| c.certificate_sha256.clone()),
    });
}

fn nothing_pending(msp: &str) -> Error {
    Error::new(format!(
        "organisation {msp} has no pending permit application"
    ))
}
