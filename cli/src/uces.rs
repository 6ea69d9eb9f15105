//! `qcss uces …`: UCES evaluations through a peer's Gateway (traceability
//! README, "UCES, the QCSS index and rewards"). A real-name consumer who
//! claimed a unit (`qcss scan --claim`) evaluates it once; the channel's
//! validators approve or reject within the window; anyone finalizes a lapsed
//! one. Text and photos stay off the ledger: only their SHA-256 is sent.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use qcss_chaincode::unit_code::UnitCode;

use crate::network::CONTRACT;
use crate::peer::Conn;

/// Photos an evaluation may name (the contract's bound).
const MAX_PHOTOS: usize = 9;
/// Largest text or photo file hashed (a photo, not a film).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `qcss uces …`
#[derive(Debug, Subcommand)]
pub(crate) enum UcesCommand {
    /// Evaluate a unit you claimed (a real-name consumer), once.
    Evaluate(EvaluateArgs),
    /// Approve or reject an evaluation (a validator of its set).
    Vote(VoteArgs),
    /// Reject an evaluation whose voting window lapsed (anyone).
    Finalize(UnitArgs),
    /// An evaluation (the whole record for its author, validators,
    /// regulators and auditors; scores and status for anyone else).
    Show(UnitArgs),
    /// Your own standing: credit, valid and rejected evaluations, bar.
    Me(MeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EvaluateArgs {
    #[command(flatten)]
    conn: Conn,
    /// The unit: its code (a GS1 Digital Link URL) or `GTIN/LOT/SERIAL`.
    unit: String,
    /// Overall score, 1–5.
    #[arg(long)]
    overall: u8,
    /// Quality, 1–5.
    #[arg(long)]
    quality: u8,
    /// Taste or performance, 1–5.
    #[arg(long)]
    performance: u8,
    /// Authenticity, 1–5.
    #[arg(long)]
    authenticity: u8,
    /// A text file with the review: its SHA-256 is recorded, not the text.
    #[arg(long)]
    text: Option<PathBuf>,
    /// A photo file (repeatable, at most 9): its SHA-256 is recorded.
    #[arg(long = "photo")]
    photos: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VoteArgs {
    #[command(flatten)]
    conn: Conn,
    /// The evaluated unit: its code or `GTIN/LOT/SERIAL`.
    unit: String,
    /// Approve (the default is to say which).
    #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
    approve: bool,
    /// Reject.
    #[arg(long)]
    reject: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UnitArgs {
    #[command(flatten)]
    conn: Conn,
    /// The evaluated unit: its code or `GTIN/LOT/SERIAL`.
    unit: String,
}

#[derive(Debug, Args)]
pub(crate) struct MeArgs {
    #[command(flatten)]
    conn: Conn,
}

/// `GTIN/LOT/SERIAL` from a unit code or as given.
pub(crate) fn unit_id(unit: &str) -> Result<String> {
    if unit.contains("/01/") {
        let c = UnitCode::parse(unit).map_err(|e| anyhow!("not a unit code: {e}"))?;
        return Ok(format!("{}/{}/{}", c.gtin, c.lot, c.serial));
    }
    let parts: Vec<&str> = unit.split('/').collect();
    match parts.as_slice() {
        [g, l, s] if !g.is_empty() && !l.is_empty() && s.parse::<u64>().is_ok() => {
            Ok(unit.to_owned())
        }
        _ => bail!("{:.80?} is neither a unit code nor GTIN/LOT/SERIAL", unit),
    }
}

/// SHA-256 (hex) of a file, bounded.
fn file_sha256(p: &PathBuf) -> Result<String> {
    let len = std::fs::metadata(p)
        .with_context(|| format!("reading {}", p.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!(
            "{} is {len} bytes; at most {MAX_FILE_BYTES} are hashed",
            p.display()
        );
    }
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    Ok(hex::encode(qcss_network::signing::sha256(&bytes)))
}

/// Submits (or evaluates) `function(arg)` and returns the contract's JSON.
fn call(conn: &Conn, function: &str, arg: &str, write: bool) -> Result<Value> {
    if write {
        Ok(conn.submit_json(CONTRACT, function, arg.as_bytes())?.1)
    } else {
        conn.evaluate_json(CONTRACT, function, arg.as_bytes())
    }
}

/// Runs `qcss uces …`.
pub(crate) fn run(cmd: UcesCommand) -> Result<()> {
    let v = match cmd {
        UcesCommand::Evaluate(a) => {
            if a.photos.len() > MAX_PHOTOS {
                bail!("at most {MAX_PHOTOS} photos");
            }
            let mut arg = json!({
                "unit": unit_id(&a.unit)?,
                "scores": {"overall": a.overall, "quality": a.quality,
                           "performance": a.performance, "authenticity": a.authenticity},
                "photo_sha256": a.photos.iter().map(file_sha256).collect::<Result<Vec<_>>>()?,
            });
            if let Some(t) = &a.text {
                arg["text_sha256"] = json!(file_sha256(t)?);
            }
            call(&a.conn, "uces_evaluate", &arg.to_string(), true)?
        }
        UcesCommand::Vote(a) => {
            let arg = json!({"unit": unit_id(&a.unit)?, "approve": a.approve && !a.reject});
            call(&a.conn, "uces_vote", &arg.to_string(), true)?
        }
        UcesCommand::Finalize(a) => {
            let arg = json!({"unit": unit_id(&a.unit)?});
            call(&a.conn, "uces_finalize", &arg.to_string(), true)?
        }
        UcesCommand::Show(a) => call(&a.conn, "uces_get", &unit_id(&a.unit)?, false)?,
        UcesCommand::Me(a) => call(&a.conn, "uces_me", "", false)?,
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unit_id;

    #[test]
    fn units_are_named_by_code_or_by_gtin_lot_serial() {
        assert_eq!(
            unit_id("06901234560022/LJ2026A/5").unwrap(),
            "06901234560022/LJ2026A/5"
        );
        let code = "https://q.example.com/01/06901234560022/10/LJ2026A/21/5?8030=7x0py9Y7SIyjya9mqdg2QHxmGzzsj78mRLWSrnWX-Tm8Ml_FgPgDA3pwrkYIAhZqmZq2XnXkYNsSbmqbWUkTAg";
        assert_eq!(unit_id(code).unwrap(), "06901234560022/LJ2026A/5");
        assert!(unit_id("06901234560022/LJ2026A").is_err());
        assert!(unit_id("a/b/c").is_err());
    }
}
