// Keeps the explorer's front page live: every 2 s, if the ledger grew,
// redraw the latest blocks and transactions from /api/blocks. The page is
// complete without this script.
(function () {
  "use strict";
  var heightEl = document.getElementById("height");
  var blocksEl = document.getElementById("blocks");
  var txsEl = document.getElementById("txs");
  if (!heightEl || !blocksEl || !txsEl) return;
  var height = Number(heightEl.getAttribute("data-height"));

  function cell(row, content, href, cls) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = content;
      if (cls) a.className = cls;
      td.appendChild(a);
    } else {
      td.textContent = content;
      if (cls) td.className = cls;
    }
    row.appendChild(td);
    return td;
  }
  function tag(td, code, n) {
    var s = document.createElement("span");
    s.className = "tag " + (code === "VALID" ? "VALID" : "bad");
    s.textContent = n === undefined ? code : code + " \u00d7" + n;
    td.appendChild(s);
    td.appendChild(document.createTextNode(" "));
  }
  function when(secs) {
    if (typeof secs !== "number") return "-";
    return new Date(secs * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }
  function draw(data) {
    var bRows = document.createDocumentFragment();
    var tRows = document.createDocumentFragment();
    var shown = 0;
    data.blocks.forEach(function (b) {
      var r = document.createElement("tr");
      r.setAttribute("data-number", b.number);
      cell(r, String(b.number), "/explorer/block/" + b.number);
      cell(r, b.hash.slice(0, 16), null, "mono");
      cell(r, String(b.tx_count));
      var codes = cell(r, "");
      Object.keys(b.codes).forEach(function (c) { tag(codes, c, b.codes[c]); });
      cell(r, when(b.time));
      bRows.appendChild(r);
      b.transactions.slice().reverse().forEach(function (t) {
        if (shown >= 20) return;
        shown++;
        var tr = document.createElement("tr");
        if (t.tx_id) cell(tr, t.tx_id.slice(0, 16), "/explorer/tx/" + encodeURIComponent(t.tx_id), "mono");
        else cell(tr, "-");
        cell(tr, String(b.number), "/explorer/block/" + b.number);
        cell(tr, t.chaincode ? t.chaincode + (t.function ? "." + t.function : "") : t.type);
        cell(tr, t.creator_msp || "-");
        tag(cell(tr, ""), t.code);
        tRows.appendChild(tr);
      });
    });
    blocksEl.replaceChildren(bRows);
    txsEl.replaceChildren(tRows);
  }
  function poll() {
    fetch("/api/blocks?limit=10", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || data.height === height) return;
        height = data.height;
        heightEl.textContent = String(height);
        heightEl.setAttribute("data-height", String(height));
        draw(data);
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
