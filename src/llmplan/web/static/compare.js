// Compare page: the recommendation of each chosen run, side by side; a run without a compliant
// option says so (never "TCO 0").
"use strict";
const $ = (id) => document.getElementById(id);
const NONE = "no option";
const rec = (r) => r.result.recommendation;
const num = (v, digits) => v == null ? "—" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits,
                                                                                 minimumFractionDigits: digits });
const FIELDS = [
  ["scenario", (r) => r.scenario_id ? `${r.name} (scenario ${r.scenario_id} v${r.scenario_version})` : `${r.name} (unsaved)`],
  ["recommendation", (r) => rec(r) ? rec(r).id : `${NONE}: ${r.result.why_none_detail?.decided_by ?? "see the report"}`],
  ["model", (r) => rec(r)?.model ?? NONE],
  ["precision", (r) => rec(r) ? rec(r).precision : NONE],
  ["deployment", (r) => rec(r)?.deployment ?? NONE],
  ["hardware", (r) => { const o = rec(r); return !o ? NONE : o.hardware ? `${o.num_gpus} × ${o.hardware}` : "—"; }],
  ["TCO (USD)", (r) => rec(r) ? "$" + num(rec(r).tco_usd, 0) : NONE],
  ["per 1M tokens (USD)", (r) => rec(r) ? "$" + num(rec(r).cost_per_million_tokens_usd, 3) : NONE],
  ["TTFT p95 (ms)", (r) => rec(r) ? num(rec(r).ttft_p95_ms, 0) : NONE],
  ["TPOT p95 (ms)", (r) => rec(r) ? num(rec(r).tpot_p95_ms, 0) : NONE],
  ["answer start p95 (ms)", (r) => rec(r) ? num(rec(r).answer_start_p95_ms, 0) : NONE],
  ["quality (%)", (r) => rec(r) ? num(rec(r).quality_recovery_pct, 1) : NONE],
  ["excluded options", (r) => r.result.rejected.length],
  ["catalog version", (r) => r.catalog_version],
];

async function getJSON(url) {
  const r = await fetch(url);
  const d = await r.json();
  if (!r.ok) throw new Error(d.error || r.statusText);
  return d;
}

async function init() {
  // newest first (the API's order), the latest 200; older runs stay in the API (limit, offset)
  const r0 = await fetch("/api/runs?limit=200");
  const runs = await r0.json();
  if (!r0.ok) throw new Error(runs.error || r0.statusText);
  const total = Number(r0.headers.get("x-total-count") || runs.length);
  if (total > runs.length) $("status").textContent = `Showing the ${runs.length} newest of ${total} runs.`;
  for (const r of runs.filter((x) => x.status === "done")) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = r.id;
    label.append(box, ` run ${r.id}: `, `${r.name} — ${r.recommendation?.id ?? NONE} (${r.created_at.slice(0, 16).replace("T", " ")})`);
    li.append(label);
    $("runs").appendChild(li);
  }
  $("compare").onclick = compare;
}

async function compare() {
  const ids = [...document.querySelectorAll("#runs input:checked")].map((x) => x.value);
  if (ids.length < 2) { $("status").textContent = "Tick at least two runs."; return; }
  $("status").textContent = "Loading…";
  const runs = await Promise.all(ids.map((id) => getJSON(`/api/runs/${id}`)));
  const t = $("table");
  t.innerHTML = "";
  const head = t.insertRow();
  head.insertCell().textContent = "";
  for (const r of runs) head.insertCell().textContent = `run ${r.id}`;
  for (const [label, f] of FIELDS) {
    const row = t.insertRow();
    row.insertCell().textContent = label;
    for (const r of runs) row.insertCell().textContent = String(f(r) ?? "—");
  }
  $("status").textContent = "";
}
init();
