//! Text rendering of the traceability contract's answers for `qcss trace`
//! and `qcss scan`: a unit's or batch's timeline, inspections, alerts,
//! recalls and the verdict, as plain lines for a terminal.

use serde_json::Value;

pub(super) fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub(super) fn line(out: &mut String, label: &str, text: &str) {
    let label = format!("{label}:");
    out.push_str(&format!("{label:<12}{text}\n"));
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss` in the zone `offset` (`±hh:mm`).
fn time_text(secs: &Value, offset: Option<&str>) -> String {
    let Some(t) = secs.as_i64() else {
        return "-".into();
    };
    let l = qcss_network::clock::local_time(t, offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {}",
        l.year, l.month, l.day, l.hour, l.minute, l.second, l.zone
    )
}

pub(super) fn recall_banner(out: &mut String, recall: &Value) {
    if recall.is_null() {
        return;
    }
    let bar = "!".repeat(72);
    out.push_str(&format!(
        "{bar}\n!! RECALLED: do not sell or consume this product\n"
    ));
    let by = if recall["by_regulator"].as_bool() == Some(true) {
        format!("{} (regulator)", str_of(&recall["by"]))
    } else {
        str_of(&recall["by"])
    };
    out.push_str(&format!(
        "!! recall of batch {} by {by} at {}\n!! reason: {}\n{bar}\n",
        str_of(&recall["origin"]),
        time_text(&recall["time"], None),
        str_of(&recall["reason"]),
    ));
}

pub(super) fn verdict_lines(out: &mut String, v: &Value) {
    match v["counterfeit_warning"].as_str() {
        Some(w) => {
            line(
                out,
                "Verdict",
                "POSSIBLE COUNTERFEIT: the code is genuine, but it looks copied",
            );
            line(out, "Warning", w);
        }
        None => line(
            out,
            "Verdict",
            "GENUINE: signed by the batch's code key registered on the ledger",
        ),
    }
}

pub(super) fn product_lines(out: &mut String, p: &Value, b: &Value, permit: &Value) {
    line(
        out,
        "Product",
        &format!(
            "{} (GTIN {}, {}), by {}",
            str_of(&p["name"]),
            str_of(&p["gtin"]),
            str_of(&p["category"]),
            str_of(&p["owner"])
        ),
    );
    line(
        out,
        "Batch",
        &format!(
            "{}: {} {}, produced {} at {}",
            str_of(&b["id"]),
            str_of(&b["quantity"]),
            str_of(&b["uom"]),
            str_of(&b["production_date"]),
            str_of(&b["site"])
        ),
    );
    let mut status = format!(
        "held by {}, conformance {}, disposition {}",
        str_of(&b["custodian"]),
        b["conformance"].as_str().unwrap_or("not inspected"),
        str_of(&b["disposition"])
    );
    if let Some(s) = b["shipment"].as_object() {
        status.push_str(&format!(
            ", in transit {} -> {}",
            str_of(&s["from"]),
            str_of(&s["to"])
        ));
    }
    line(out, "Status", &status);
    let expired = permit["expired"].as_bool() == Some(true);
    let mut ptext = format!(
        "{} {}{}",
        str_of(&permit["msp"]),
        str_of(&permit["status"]),
        if expired { " (EXPIRED)" } else { "" }
    );
    if !permit["valid_until"].is_null() {
        ptext.push_str(&format!(
            ", valid until {}",
            time_text(&permit["valid_until"], None)
        ));
    }
    if permit["status"] != "active" || expired {
        ptext.push_str("  << the producer's on-chain permit is not in force");
    }
    line(out, "Permit", &ptext);
    let cert = &permit["certificate"];
    if !cert.is_null() {
        line(
            out,
            "Certificate",
            &format!(
                "{}, {} (document SHA-256 {})",
                str_of(&cert["issuer"]),
                str_of(&cert["scope"]),
                str_of(&cert["sha256"])
            ),
        );
    }
}

fn scan_text(s: &Value) -> String {
    format!(
        "{} in {} ({})",
        time_text(&s["time"], None),
        str_of(&s["location"]),
        str_of(&s["msp"])
    )
}

pub(super) fn scans_text(count: &Value, first: &Value, claimed: &Value) -> String {
    let mut t = format!("scanned {} time(s)", count.as_u64().unwrap_or(0));
    if !first.is_null() {
        t.push_str(&format!("; first {}", scan_text(first)));
    }
    if !claimed.is_null() {
        t.push_str(&format!("; claimed {}", scan_text(claimed)));
    }
    t
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(str_of).collect())
        .unwrap_or_default()
}

fn event_line(e: &Value) -> String {
    let mut t = format!(
        "  {}  {:<16} {:<14} by {}",
        time_text(&e["event_time"], e["event_time_zone_offset"].as_str()),
        str_of(&e["biz_step"]),
        e["disposition"].as_str().unwrap_or(""),
        str_of(&e["actor"]),
    );
    let place: Vec<String> = [&e["read_point"], &e["biz_location"]]
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if !place.is_empty() {
        t.push_str(&format!(" at {}", place.join(", ")));
    }
    if let Some(s) = e["serial"].as_u64() {
        t.push_str(&format!(" [unit {s}]"));
    }
    if e["source"].is_string() || e["destination"].is_string() {
        t.push_str(&format!(
            " ({} -> {})",
            e["source"].as_str().unwrap_or("?"),
            e["destination"].as_str().unwrap_or("?")
        ));
    }
    if let Some(inputs) = e["inputs"].as_array().filter(|a| !a.is_empty()) {
        let ins: Vec<String> = inputs
            .iter()
            .map(|q| format!("{} x{}", str_of(&q["batch"]), str_of(&q["quantity"])))
            .collect();
        t.push_str(&format!(
            " {} from {}",
            e["transformation_id"].as_str().unwrap_or(""),
            ins.join(" + ")
        ));
    }
    if let Some(sensors) = e["sensors"].as_array().filter(|a| !a.is_empty()) {
        let rs: Vec<String> = sensors
            .iter()
            .map(|r| {
                format!(
                    "{}={}{}",
                    str_of(&r["type"]),
                    str_of(&r["value"]),
                    str_of(&r["unit"])
                )
            })
            .collect();
        t.push_str(&format!(" readings {}", rs.join(", ")));
    }
    if let Some(n) = e["attachments"].as_array().map(Vec::len).filter(|n| *n > 0) {
        t.push_str(&format!(" ({n} attachment(s))"));
    }
    let ch = &e["data"]["iotChannel"];
    if let Some(id) = ch["id"].as_str() {
        // A settled IoT state channel (docs/iot.md): its summary, not its JSON.
        t.push_str(&format!(
            " IoT channel {}… settled: {} readings from {} (state seq {}, root {}…)",
            id.get(..16).unwrap_or(id),
            str_of(&ch["readings"]),
            str_of(&e["data"]["device"]),
            str_of(&ch["seq"]),
            ch["root"].as_str().and_then(|r| r.get(..16)).unwrap_or("?"),
        ));
    } else if !e["data"].is_null() {
        let mut d = e["data"].to_string();
        if d.chars().count() > 100 {
            d = d.chars().take(97).chain("...".chars()).collect();
        }
        t.push_str(&format!(" {d}"));
    }
    t
}

fn inspection_line(i: &Value) -> String {
    let ms: Vec<String> = i["measurements"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let bounds = match (m["min"].as_f64(), m["max"].as_f64()) {
                        (Some(lo), Some(hi)) => format!(" [{lo}..{hi}]"),
                        (Some(lo), None) => format!(" [>= {lo}]"),
                        (None, Some(hi)) => format!(" [<= {hi}]"),
                        (None, None) => String::new(),
                    };
                    format!(
                        "{} {} {}{bounds}",
                        str_of(&m["name"]),
                        str_of(&m["value"]),
                        str_of(&m["unit"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "  {}  {:<5} by lab {} to {}: {}; report sha256 {}",
        time_text(&i["inspected_at"], None),
        str_of(&i["result"]).to_uppercase(),
        str_of(&i["lab"]),
        str_of(&i["standard"]),
        ms.join(", "),
        str_of(&i["report_sha256"]),
    )
}

fn alert_line(a: &Value) -> String {
    let r = &a["reading"];
    let l = &a["limit"];
    format!(
        "  {}  {} {} {} from device {} outside limits [{}..{}]",
        time_text(&r["time"], None),
        str_of(&r["type"]),
        str_of(&r["value"]),
        str_of(&r["unit"]),
        str_of(&a["device"]),
        l["min"].as_f64().map_or("-".into(), |x| x.to_string()),
        l["max"].as_f64().map_or("-".into(), |x| x.to_string()),
    )
}

/// A consumer evaluation's public view: status, votes, scores, and the
/// photos' hashes once it is valid.
fn evaluation_text(e: &Value) -> String {
    let s = &e["scores"];
    let mut t = format!(
        "{} ({} for, {} against); overall {}/5, quality {}/5, performance {}/5, authenticity {}/5",
        str_of(&e["status"]),
        e["approvals"].as_u64().unwrap_or(0),
        e["rejections"].as_u64().unwrap_or(0),
        str_of(&s["overall"]),
        str_of(&s["quality"]),
        str_of(&s["performance"]),
        str_of(&s["authenticity"]),
    );
    let photos = list(&e["photo_sha256"]);
    if !photos.is_empty() {
        t.push_str(&format!("; photos SHA-256 {}", photos.join(", ")));
    }
    t
}

/// A trace report for people: the recall first, the verdict for a code,
/// then product, batch, permit, unit, timeline, inspections, alerts.
pub(super) fn render_trace(v: &Value, code: bool) -> String {
    let mut out = String::new();
    recall_banner(&mut out, &v["recall"]);
    if code {
        verdict_lines(&mut out, v);
    } else if let Some(w) = v["counterfeit_warning"].as_str() {
        line(&mut out, "Warning", w);
    }
    line(&mut out, "Trace of", &str_of(&v["target"]));
    product_lines(&mut out, &v["product"], &v["batch"], &v["permit"]);
    if let Some(u) = v["unit"].as_object() {
        line(
            &mut out,
            "Scans",
            &scans_text(&u["scans"], &u["first_scan"], &u["claimed"]),
        );
    }
    if v["evaluation"].is_object() {
        line(&mut out, "Evaluation", &evaluation_text(&v["evaluation"]));
    }
    let containers = list(&v["containers"]);
    if !containers.is_empty() {
        line(&mut out, "Packed in", &containers.join(" in "));
    }
    let up = list(&v["upstream"]);
    if !up.is_empty() {
        line(&mut out, "Made from", &up.join(", "));
    }
    let down = list(&v["downstream"]);
    if !down.is_empty() {
        line(&mut out, "Used in", &down.join(", "));
    }
    let section = |out: &mut String, title: &str, items: &Value, f: fn(&Value) -> String| {
        let items = items.as_array().cloned().unwrap_or_default();
        out.push_str(&format!("\n{title} ({}):\n", items.len()));
        if items.is_empty() {
            out.push_str("  none\n");
        }
        for i in &items {
            out.push_str(&f(i));
            out.push('\n');
        }
    };
    section(&mut out, "Timeline", &v["timeline"], event_line);
    section(&mut out, "Inspections", &v["inspections"], inspection_line);
    section(&mut out, "IoT alerts", &v["alerts"], alert_line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_permit_certificate_is_printed_when_approved() {
        let permit = json!({"msp": "ProducerMSP", "status": "active", "valid_until": 0,
            "certificate": {"sha256": "ab", "issuer": "CQC", "scope": "HACCP"}});
        let mut out = String::new();
        product_lines(&mut out, &json!({}), &json!({}), &permit);
        assert!(out.contains("CQC, HACCP (document SHA-256 ab)"), "{out}");
        let mut out = String::new();
        product_lines(&mut out, &json!({}), &json!({}), &json!({"status": "none"}));
        assert!(!out.contains("Certificate"), "{out}");
    }

    #[test]
    fn an_evaluation_is_one_line() {
        let v = json!({"target": "g/B/3", "evaluation": {"status": "valid", "approvals": 3,
            "rejections": 0, "scores": {"overall": 5, "quality": 4, "performance": 4,
            "authenticity": 5}, "photo_sha256": ["ab", "cd"]}});
        let out = render_trace(&v, false);
        assert!(
            out.contains("valid (3 for, 0 against); overall 5/5, quality 4/5, performance 4/5, authenticity 5/5; photos SHA-256 ab, cd"),
            "{out}"
        );
        assert!(!render_trace(&json!({"target": "g/B"}), false).contains("Evaluation"));
    }

    #[test]
    fn dates_and_offsets() {
        assert_eq!(time_text(&json!(0), None), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            time_text(&json!(1_764_000_000), Some("+08:00")),
            "2025-11-25 00:00:00 +08:00"
        );
        assert_eq!(
            time_text(&json!(951_782_400), None),
            "2000-02-29 00:00:00 UTC"
        );
    }
}
