//! Printing a load point and drawing the throughput/latency chart (SVG).

use super::*;

pub(super) fn print_point(p: &Point, cores: usize) {
    println!(
        "clients {:>3} (in flight {:>3}): {:>7.1} tx/s committed VALID   latency p50 {:.0} p95 {:.0} p99 {:.0} max {:.0} ms",
        p.clients,
        p.in_flight,
        p.committed_tx_per_sec,
        p.latency_ms.p50,
        p.latency_ms.p95,
        p.latency_ms.p99,
        p.latency_ms.max
    );
    println!(
        "  submitted {} in {:.1} s, valid {}, invalid {:?}, failed {} (warm-up: {} failed)",
        p.submitted,
        p.seconds,
        p.committed_valid,
        p.invalid_by_code,
        p.failed_by_reason.values().sum::<u64>(),
        p.warmup_failed
    );
    for (reason, n) in &p.failed_by_reason {
        println!("    {n} x {reason}");
    }
    for (f, v) in &p.by_function {
        println!(
            "  {f:<15} submitted {:>6} valid {:>6}  p50 {:>6.0} ms  p99 {:>6.0} ms",
            v["submitted"],
            v["valid"],
            v["p50_ms"].as_f64().unwrap_or(0.0),
            v["p99_ms"].as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "  verify_code queries: {} answered ({} failed), p50 {:.0} ms, p99 {:.0} ms",
        p.queries["answered"],
        p.queries["failed"],
        p.queries["p50_ms"].as_f64().unwrap_or(0.0),
        p.queries["p99_ms"].as_f64().unwrap_or(0.0)
    );
    let b = &p.blocks;
    println!(
        "  blocks {}..={}: {} blocks, tx/block mean {:.1} p50 {} p90 {} max {}; histogram {:?}; endorsements/tx {:.2}",
        b.first,
        b.last,
        b.count,
        b.mean_txs,
        b.p50_txs,
        b.p90_txs,
        b.max_txs,
        b.histogram,
        b.endorsements_per_tx
    );
    let mut cpu: Vec<(&String, f64)> = p
        .cpu
        .iter()
        .map(|(n, v)| (n, v["cpu_secs"].as_f64().unwrap_or(0.0)))
        .collect();
    cpu.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "  CPU seconds (window {:.1} s, {} cores = {:.1} CPU-s available): total {:.1} = {:.0}%",
        p.seconds,
        cores,
        p.seconds * cores as f64,
        p.cpu_total_secs,
        100.0 * p.cpu_total_secs / (p.seconds * cores as f64).max(1e-9)
    );
    println!(
        "    {}",
        cpu.iter()
            .filter(|(_, s)| *s >= 0.05)
            .map(|(n, s)| format!("{n} {s:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  crypto floor (rates before the load) {:.0} tx/s ({:.2} signs + {:.2} verifies per tx) -> {:.0}% of it",
        p.floor.floor_tx_per_sec,
        p.floor.signs_per_tx,
        p.floor.verifies_per_tx,
        100.0 * p.floor.fraction_of_floor
    );
}

/// A hand-written SVG: committed tx/s and p50/p99 latency against clients.
pub(super) fn svg(points: &[Point], title: &str) -> String {
    let (w, h) = (720.0, 420.0);
    let (l, r, top, bot) = (70.0, 70.0, 40.0, 60.0);
    let pw = w - l - r;
    let ph = h - top - bot;
    let n = points.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            l + pw / 2.0
        } else {
            l + pw * i as f64 / (n - 1) as f64
        }
    };
    let nice = |v: f64| {
        let v = v.max(1e-9);
        let m = 10f64.powf(v.log10().floor());
        [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|k| k * m)
            .find(|c| *c >= v)
            .unwrap_or(10.0 * m)
    };
    let tmax = nice(
        points
            .iter()
            .map(|p| p.committed_tx_per_sec)
            .fold(0.0, f64::max)
            * 1.1,
    );
    let lmax = nice(points.iter().map(|p| p.latency_ms.p99).fold(0.0, f64::max) * 1.1);
    let yt = |v: f64| top + ph * (1.0 - v / tmax);
    let yl = |v: f64| top + ph * (1.0 - v / lmax);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        title.replace('&', "&amp;").replace('<', "&lt;")
    );
    for k in 0..=5 {
        let f = k as f64 / 5.0;
        let y = top + ph * (1.0 - f);
        s += &format!(
            "<line x1=\"{l}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1f77b4\">{:.0}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">{:.0}</text>\n",
            l + pw,
            l - 6.0,
            y + 4.0,
            tmax * f,
            l + pw + 6.0,
            y + 4.0,
            lmax * f
        );
    }
    for (i, p) in points.iter().enumerate() {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            top + ph + 18.0,
            p.clients
        );
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">clients</text>\n\
         <text x=\"16\" y=\"{:.1}\" fill=\"#1f77b4\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">committed tx/s</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\" transform=\"rotate(90 {:.1} {:.1})\" text-anchor=\"middle\">latency ms (p50 dashed, p99 solid)</text>\n\
         <rect x=\"{l}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#444\"/>\n",
        l + pw / 2.0,
        h - 20.0,
        top + ph / 2.0,
        top + ph / 2.0,
        w - 16.0,
        top + ph / 2.0,
        w - 16.0,
        top + ph / 2.0
    );
    let line = |ys: Vec<f64>, color: &str, dash: &str| {
        let pts: Vec<String> = ys
            .iter()
            .enumerate()
            .map(|(i, y)| format!("{:.1},{:.1}", x(i), y))
            .collect();
        let mut out = format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" {dash}/>\n",
            pts.join(" ")
        );
        for (i, y) in ys.iter().enumerate() {
            out += &format!(
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                x(i)
            );
        }
        out
    };
    s += &line(
        points.iter().map(|p| yt(p.committed_tx_per_sec)).collect(),
        "#1f77b4",
        "",
    );
    s += &line(
        points.iter().map(|p| yl(p.latency_ms.p99)).collect(),
        "#d62728",
        "",
    );
    s += &line(
        points.iter().map(|p| yl(p.latency_ms.p50)).collect(),
        "#d62728",
        "stroke-dasharray=\"5,4\"",
    );
    if let Some(f) = points.first().map(|p| p.floor.floor_tx_per_sec)
        && f > 0.0
        && f <= tmax
    {
        s += &format!(
            "<line x1=\"{l}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#1f77b4\" stroke-dasharray=\"2,3\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1f77b4\">crypto floor {f:.0} tx/s</text>\n",
            l + pw,
            l + 6.0,
            yt(f) - 4.0,
            y = yt(f)
        );
    }
    s += "</svg>\n";
    s
}
