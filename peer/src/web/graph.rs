//! A batch's transformation graph — what went into it (`trace_upstream`)
//! and what was made from it (`trace_downstream`) — merged, laid out in
//! columns by distance from the batch, and drawn as inline SVG on the
//! server (no script library).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Value, json};

use crate::web::html::esc;

/// Merges the contract's upstream and downstream graphs of `root`: nodes
/// by id, edges once, each node with its `depth` (negative upstream).
pub(crate) fn merge(root: &str, upstream: &Value, downstream: &Value) -> Value {
    let mut nodes: BTreeMap<String, Value> = BTreeMap::new();
    let mut edges: BTreeSet<(String, String, u64)> = BTreeSet::new();
    for g in [upstream, downstream] {
        for n in g["nodes"].as_array().into_iter().flatten() {
            if let Some(id) = n["id"].as_str() {
                nodes.entry(id.to_owned()).or_insert_with(|| n.clone());
            }
        }
        for e in g["edges"].as_array().into_iter().flatten() {
            if let (Some(i), Some(o)) = (e["input"].as_str(), e["output"].as_str()) {
                edges.insert((
                    i.to_owned(),
                    o.to_owned(),
                    e["quantity"].as_u64().unwrap_or(0),
                ));
            }
        }
    }
    let depth = depths(root, &edges);
    let nodes: Vec<Value> = nodes
        .into_values()
        .map(|mut n| {
            let id = n["id"].as_str().unwrap_or_default().to_owned();
            n["depth"] = json!(depth.get(&id).copied().unwrap_or(0));
            n
        })
        .collect();
    json!({
        "root": root,
        "nodes": nodes,
        "edges": edges.into_iter().map(|(i, o, q)| json!({"input": i, "output": o, "quantity": q})).collect::<Vec<_>>(),
    })
}

/// Distance from `root`: inputs one column left, outputs one right
/// (breadth-first, so the shortest way wins).
fn depths(root: &str, edges: &BTreeSet<(String, String, u64)>) -> BTreeMap<String, i64> {
    let mut depth = BTreeMap::from([(root.to_owned(), 0i64)]);
    let mut queue = VecDeque::from([root.to_owned()]);
    while let Some(id) = queue.pop_front() {
        let d = depth[&id];
        for (i, o, _) in edges {
            let (next, nd) = if *o == id && d <= 0 {
                (i, d - 1)
            } else if *i == id && d >= 0 {
                (o, d + 1)
            } else {
                continue;
            };
            if !depth.contains_key(next) {
                depth.insert(next.clone(), nd);
                queue.push_back(next.clone());
            }
        }
    }
    depth
}

const BOX_W: i64 = 210;
const BOX_H: i64 = 58;
const GAP_X: i64 = 70;
const GAP_Y: i64 = 18;
const PAD: i64 = 10;

/// The merged graph as an SVG image: one box per batch (the root bold,
/// recalled ones red, each a link to its explorer page), arrows from
/// input to output with the quantity used.
pub(crate) fn svg(graph: &Value) -> String {
    let nodes = graph["nodes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let root = graph["root"].as_str().unwrap_or_default();
    let mut columns: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for n in nodes {
        columns
            .entry(n["depth"].as_i64().unwrap_or(0))
            .or_default()
            .push(n);
    }
    let min_depth = columns.keys().next().copied().unwrap_or(0);
    let mut pos: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let rows = columns.values().map(Vec::len).max().unwrap_or(1) as i64;
    for (d, col) in &columns {
        for (r, n) in col.iter().enumerate() {
            let x = PAD + (d - min_depth) * (BOX_W + GAP_X);
            let y = PAD + r as i64 * (BOX_H + GAP_Y);
            pos.insert(n["id"].as_str().unwrap_or_default(), (x, y));
        }
    }
    let width = PAD * 2 + columns.len().max(1) as i64 * (BOX_W + GAP_X) - GAP_X;
    let height = PAD * 2 + rows * (BOX_H + GAP_Y) - GAP_Y;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"graph\" role=\"img\" width=\"{width}\" height=\"{height}\" \
viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\
<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#475569\"/></marker></defs>"
    );
    for e in graph["edges"].as_array().into_iter().flatten() {
        let (Some(a), Some(b)) = (
            e["input"].as_str().and_then(|i| pos.get(i)),
            e["output"].as_str().and_then(|o| pos.get(o)),
        ) else {
            continue;
        };
        let (x1, y1) = (a.0 + BOX_W, a.1 + BOX_H / 2);
        let (x2, y2) = (b.0, b.1 + BOX_H / 2);
        let mid = (x1 + x2) / 2;
        s.push_str(&format!(
            "<path class=\"edge\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" fill=\"none\" stroke=\"#475569\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\
<text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\" fill=\"#334155\">{}</text>",
            (y1 + y2) / 2 - 4,
            esc(&e["quantity"].to_string())
        ));
    }
    for n in nodes {
        let id = n["id"].as_str().unwrap_or_default();
        let Some((x, y)) = pos.get(id) else { continue };
        let recalled = n["recalled"].as_bool() == Some(true);
        let (fill, stroke) = match (recalled, id == root) {
            (true, _) => ("#fee2e2", "#b91c1c"),
            (false, true) => ("#dcfce7", "#15803d"),
            (false, false) => ("#f8fafc", "#64748b"),
        };
        let width = if id == root { 3 } else { 1 };
        let mut second = format!(
            "{} {} · {}",
            n["available"].as_u64().unwrap_or(0),
            n["uom"].as_str().unwrap_or(""),
            n["custodian"].as_str().unwrap_or("")
        );
        if recalled {
            second = format!("RECALLED · {second}");
        } else if let Some(c) = n["conformance"].as_str() {
            second = format!("{c} · {second}");
        }
        s.push_str(&format!(
            "<a href=\"/explorer/batch/{href}\"><g class=\"node{cls}\" data-id=\"{idq}\">\
<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"8\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"/>\
<text x=\"{tx}\" y=\"{ty1}\" font-weight=\"bold\" fill=\"#0f172a\">{idq}</text>\
<text x=\"{tx}\" y=\"{ty2}\" fill=\"#334155\">{second}</text></g></a>",
            href = esc(id),
            cls = if recalled { " recalled" } else { "" },
            idq = esc(id),
            tx = x + 8,
            ty1 = y + 22,
            ty2 = y + 42,
            second = esc(&second),
        ));
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, recalled: bool) -> Value {
        json!({"id": id, "owner": "P", "custodian": "P", "quantity": 10, "available": 5, "uom": "KGM", "conformance": null, "recalled": recalled})
    }

    #[test]
    fn merges_and_lays_out_by_distance() {
        let up = json!({"root": "j/A", "nodes": [node("j/A", false), node("l/H1", false)],
                        "edges": [{"input": "l/H1", "output": "j/A", "quantity": 600}]});
        let down = json!({"root": "j/A", "nodes": [node("j/A", false), node("x/P", true)],
                          "edges": [{"input": "j/A", "output": "x/P", "quantity": 3}]});
        let g = merge("j/A", &up, &down);
        let depth = |id: &str| {
            g["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["id"] == id)
                .unwrap()["depth"]
                .as_i64()
                .unwrap()
        };
        assert_eq!((depth("l/H1"), depth("j/A"), depth("x/P")), (-1, 0, 1));
        assert_eq!(g["edges"].as_array().unwrap().len(), 2);
        let svg = svg(&g);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("class=\"edge\"").count(), 2);
        assert!(svg.contains("RECALLED"));
        assert!(svg.contains("href=\"/explorer/batch/l/H1\""));
    }

    #[test]
    fn a_lonely_batch_is_one_box() {
        let g = merge(
            "a/b",
            &json!({"nodes": [node("a/b", false)], "edges": []}),
            &json!({}),
        );
        assert_eq!(svg(&g).matches("<rect").count(), 1);
    }
}
