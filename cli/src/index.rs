//! `qcss index show|explain GTIN|ENTERPRISE`: the QCSS index of a product
//! or an enterprise as the traceability contract keeps it (`index_get`,
//! `index_explain`), each term's weight, value and contribution, the
//! records behind each term, and the index's recent history.

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::network::CONTRACT;
use crate::peer::Conn;

/// `qcss index …`
#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// The index, its UCES coefficient, each term's contribution and history.
    Show(IndexArgs),
    /// The same, with the inputs and the records behind each term.
    Explain(IndexArgs),
}

#[derive(Debug, Args)]
pub(crate) struct IndexArgs {
    #[command(flatten)]
    conn: Conn,
    /// A product's GTIN (14 digits) or an enterprise's MSP id.
    subject: String,
    /// Print the contract's JSON record as it is.
    #[arg(long)]
    json: bool,
}

/// Runs `qcss index …`.
pub(crate) fn run(cmd: IndexCommand) -> Result<()> {
    let (a, function) = match cmd {
        IndexCommand::Show(a) => (a, "index_get"),
        IndexCommand::Explain(a) => (a, "index_explain"),
    };
    let rt = tokio::runtime::Runtime::new()?;
    let bytes = rt.block_on(async {
        let mut g = a.conn.gateway().await?;
        g.evaluate(CONTRACT, function, &[a.subject.as_bytes()])
            .await
            .map_err(|e| anyhow!("{function} {}: {e}", a.subject))
    })?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{function} answered something that is not JSON: {e}"))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v, function == "index_explain"));
    }
    Ok(())
}

/// 10,000 = 100.00 %.
fn pct(v: &Value) -> String {
    match v.as_i64() {
        Some(n) => format!("{}.{:02} %", n / 100, (n % 100).abs()),
        None => "-".into(),
    }
}

/// Unix seconds as UTC time; anything else as it is.
fn when(v: &Value) -> String {
    match v.as_u64() {
        Some(t) => crate::wallet::utc(t.saturating_mul(1000)),
        None => text(v),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The record as a few lines a person reads.
fn render(v: &Value, explain: bool) -> String {
    let mut out = format!(
        "QCSS index of {} {}: {}\n",
        text(&v["kind"]),
        text(&v["subject"]),
        pct(&v["index"])
    );
    out.push_str(&format!(
        "UCES coefficient: {}   config version {}   updated at {}\n",
        match (v["coefficient"].as_i64(), v["evaluations"].as_u64()) {
            (Some(c), Some(n)) => format!(
                "{}.{:03} of 5 from {n} valid evaluation{}",
                c / 1000,
                c % 1000,
                if n == 1 { "" } else { "s" }
            ),
            (Some(c), None) => format!("{}.{:03} of 5", c / 1000, c % 1000),
            _ => text(&v["coefficient"]),
        },
        text(&v["config_version"]),
        when(&v["updated_at"])
    ));
    if v["pending_more"] == true {
        out.push_str(
            "(more changes wait than one read folds: these figures lag until the bridge's `index_fold` catches up)\n",
        );
    }
    out.push_str(&format!(
        "\n{:<16} {:>9} {:>9} {:>13}\n",
        "term", "weight", "value", "contribution"
    ));
    for t in v["terms"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} {:>9} {:>9} {:>13}\n",
            text(&t["name"]),
            pct(&t["weight"]),
            pct(&t["value"]),
            pct(&t["contribution"])
        ));
    }
    if explain {
        if let Some(refs) = v["refs"].as_object() {
            out.push_str("\nrecords behind each term (count, the smallest ids):\n");
            for (term, r) in refs {
                let ids: Vec<String> = r["ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                out.push_str(&format!(
                    "  {term}: {} {}\n",
                    text(&r["count"]),
                    ids.join(", ")
                ));
            }
        }
        if !v["inputs"].is_null() {
            out.push_str(&format!("\ninputs: {}\n", v["inputs"]));
        }
        if !v["permit"].is_null() {
            out.push_str(&format!("permit: {}\n", v["permit"]));
        }
    }
    let history = v["history"].as_array().cloned().unwrap_or_default();
    if !history.is_empty() {
        out.push_str("\nhistory (time, event, index):\n");
        for h in history {
            out.push_str(&format!(
                "  {}  {:<24} {}\n",
                when(&h["time"]),
                text(&h["event"]),
                pct(&h["index"])
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_as_terms_that_add_up() {
        let v = serde_json::json!({
            "kind": "gtin", "subject": "06901234560015", "index": 7235,
            "coefficient": 3412, "evaluations": 2, "config_version": 2, "updated_at": 1764720000,
            "terms": [
                {"name": "producer", "weight": 3000, "value": 8000, "contribution": 2400},
                {"name": "uces", "weight": 2000, "value": 6824, "contribution": 1364}
            ],
            "refs": {"producer": {"count": 1, "ids": ["inspection/x/1"]}},
            "history": [{"time": 1764720000, "event": "InspectionRecorded", "index": 7235}]
        });
        let s = render(&v, true);
        assert!(
            s.contains("QCSS index of gtin 06901234560015: 72.35 %"),
            "{s}"
        );
        assert!(
            s.contains("UCES coefficient: 3.412 of 5 from 2 valid evaluations"),
            "{s}"
        );
        assert!(s.contains("producer"), "{s}");
        assert!(s.contains("30.00 %") && s.contains("24.00 %"), "{s}");
        assert!(s.contains("producer: 1 inspection/x/1"), "{s}");
        assert!(s.contains("InspectionRecorded"), "{s}");
        assert!(!render(&v, false).contains("records behind"), "{s}");
    }
}
