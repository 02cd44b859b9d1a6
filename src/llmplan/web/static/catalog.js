// Catalog browser: the figures of every entry of a kind, each with its source (links) and date.
"use strict";
const $ = (id) => document.getElementById(id);
let entries = [];

const n = (v, digits = 0) => v == null ? "—" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });
const usd = (v, digits = 0) => v == null ? "—" : "$" + n(v, digits);
const params = (v) => v == null ? "—" : v >= 1e9 ? n(v / 1e9, 1) + " B" : n(v / 1e6, 0) + " M";
function price(p) {
  if (!p) return "not in the catalog";
  const range = p.low_usd != null ? ` (range ${usd(p.low_usd)}–${usd(p.high_usd)})` : "";
  return usd(p.usd) + range + (p.estimate ? " — estimate" : "") + (p.basis ? `; ${p.basis}` : "");
}
// per kind: [column title with unit, value of an entry]
const COLUMNS = {
  gpus: [["memory (GiB)", (e) => n(e.memory_gib, 0)], ["bandwidth (GB/s)", (e) => n(e.memory_bandwidth_gb_s)],
         ["dense TFLOPS bf16 / fp8 / fp4", (e) => ["bf16", "fp8", "fp4"].map((k) => n(e.dense_tflops?.[k])).join(" / ")],
         ["TDP (W)", (e) => n(e.tdp_w) + (e.tdp_estimated ? " (estimate)" : "")],
         ["price (USD)", (e) => price(e.price)]],
  models: [["parameters (total / active)", (e) => `${params(e.total_params)} / ${params(e.active_params)}`],
           ["layers", (e) => n(e.num_layers)], ["KV heads × dim", (e) => `${n(e.num_kv_heads)} × ${n(e.head_dim)}`],
           ["max context (tokens)", (e) => n(e.max_context)], ["licence", (e) => e.license],
           ["origin", (e) => `${e.organization ?? ""} (${e.country ?? "?"})`]],
  formats: [["bits / weight", (e) => n(e.weight_bits, 2)], ["compute", (e) => e.compute_dtype],
            ["engines", (e) => (e.engines || []).join(", ")],
            ["quality recovery (%)", (e) => (e.quality || []).map((q) => `${q.size_class} ${n(q.recovery_pct, 1)}`).join("; ") || "—"]],
  engines: [["kind", (e) => e.kind], ["parallelism", (e) => (e.parallelism || []).join(", ")],
            ["offline", (e) => e.offline_capable ? "yes" : "no"], ["KV block (tokens)", (e) => n(e.memory?.block_size_tokens)]],
  servers: [["kind", (e) => e.kind], ["accelerators", (e) => (e.accelerators || []).join(", ")],
            ["GPUs", (e) => n(e.max_gpus)],
            ["host cost (USD)", (e) => e.host ? usd(e.host.cost_usd) + (e.host.estimate ? ` (estimate, ${usd(e.host.cost_low_usd)}–${usd(e.host.cost_high_usd)})` : "") : "—"],
            ["host power (W)", (e) => n(e.host?.power_w)], ["max power (W)", (e) => n(e.max_power_w)]],
  "cloud-offers": [["provider / region", (e) => `${e.provider} ${e.region} (${e.region_country})`],
                   ["accelerator", (e) => `${e.gpus_per_instance} × ${e.accelerator}`],
                   ["USD per GPU-hour on demand / 1y / 3y / spot", (e) => ["usd_per_gpu_hour_on_demand", "usd_per_gpu_hour_1y",
                     "usd_per_gpu_hour_3y", "usd_per_gpu_hour_spot"].map((k) => usd(e[k], 2)).join(" / ")],
                   ["sovereign", (e) => e.sovereign ? "yes" : "no"]],
  "api-prices": [["provider", (e) => `${e.provider} (${e.provider_country})`], ["weights", (e) => e.weights],
                 ["USD per 1M tokens in / out / cached", (e) => [e.input_usd_per_mtok, e.output_usd_per_mtok,
                   e.cached_input_usd_per_mtok].map((v) => usd(v, 2)).join(" / ")],
                 ["data regions", (e) => (e.data_regions || []).join(", ")]],
  regions: [["electricity (USD/kWh)", (e) => usd(e.electricity_usd_per_kwh, 3) + (e.electricity_estimate
             ? ` (estimate, ${usd(e.electricity_low_usd_per_kwh, 3)}–${usd(e.electricity_high_usd_per_kwh, 3)})` : "")],
            ["carbon (g CO2e/kWh)", (e) => n(e.carbon_g_per_kwh)], ["PUE", (e) => n(e.pue, 2)],
            ["colocation (USD/kW-month)", (e) => usd(e.colocation_usd_per_kw_month)]],
  "cost-assumptions": [["value", (e) => `${n(e.value, 3)} ${e.unit ?? ""}`], ["range", (e) => `${n(e.low, 3)}–${n(e.high, 3)}`]],
  workloads: [["input tokens mean / p95", (e) => `${n(e.input_mean)} / ${n(e.input_p95)}`],
              ["output tokens mean / p95", (e) => `${n(e.output_mean)} / ${n(e.output_p95)}`]],
  calibrations: [["engine × family", (e) => `${e.engine} × ${e.family}`], ["η bandwidth / FLOPs", (e) => `${n(e.eta_bw, 3)} / ${n(e.eta_flops, 3)}`],
                 ["rows", (e) => n(e.n_rows)], ["MdAPE (%)", (e) => n(e.mdape_pct, 1)]],
};

function sources(cell, text) {
  for (const [i, part] of String(text || "").split(" ; ").entries()) {
    if (i) cell.append(" ; ");
    const m = part.match(/^(https?:\/\/\S+)(.*)$/);
    if (m) {
      const a = document.createElement("a");
      a.href = m[1];
      a.title = m[1];
      let host = m[1];
      try { host = new URL(m[1]).hostname.replace(/^www\./, ""); } catch (err) { /* shown whole */ }
      a.textContent = host;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      cell.append(a, m[2]);
    } else cell.append(part);
  }
}

function render() {
  const f = $("filter").value.toLowerCase();
  const cols = COLUMNS[$("kind").value] || [];
  const t = $("entries");
  t.innerHTML = "";
  const head = t.createTHead().insertRow();
  for (const h of ["id", "name", ...cols.map((c) => c[0]), "source", "as of"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.append(th);
  }
  const tbody = t.createTBody();
  for (const e of entries) {
    if (f && !JSON.stringify(e).toLowerCase().includes(f)) continue;
    const row = tbody.insertRow();
    row.insertCell().textContent = e.id;
    row.insertCell().textContent = e.name || "";
    for (const [, get] of cols) {
      let v;
      try { v = get(e); } catch (err) { v = "—"; }
      row.insertCell().textContent = v ?? "—";
    }
    const src = row.insertCell();
    src.className = "src";
    sources(src, e.source);
    row.insertCell().textContent = e.as_of;
  }
}

async function load() {
  const r = await fetch(`/api/catalog/${$("kind").value}`);
  entries = await r.json();
  render();
}
$("kind").addEventListener("change", load);
$("filter").addEventListener("input", render);
load();

// The stored catalog overrides: what is in force, what replaces a built-in entry, and why one is not.
async function overrides() {
  const t = $("override-list");
  const list = await (await fetch("/api/overrides")).json();
  t.innerHTML = "";
  if (!list.length) {
    $("override-status").textContent = "No override is stored: every computation uses the catalog as shipped.";
    return;
  }
  $("override-status").textContent = "";
  const head = t.insertRow();
  for (const h of ["kind", "id", "revision", "state", ""]) head.insertCell().innerHTML = `<b>${h}</b>`;
  for (const o of list) {
    const row = t.insertRow();
    row.insertCell().textContent = o.kind;
    row.insertCell().textContent = o.entry_id;
    row.insertCell().textContent = o.revision;
    row.insertCell().textContent = o.in_force
      ? (o.replaces_builtin ? "in force, replaces the built-in entry" : "in force, added")
      : `not in force: ${o.reason || "disabled"}`;
    const cell = row.insertCell();
    const toggle = document.createElement("button");
    toggle.textContent = o.enabled ? "Disable" : "Enable";
    toggle.addEventListener("click", () => change("PATCH", o, { enabled: !o.enabled }));
    const del = document.createElement("button");
    del.textContent = "Delete";
    del.addEventListener("click", () => change("DELETE", o));
    cell.append(toggle, " ", del);
  }
}

async function change(method, o, body) {
  const url = `/api/overrides/${o.kind}/${o.entry_id.split("/").map(encodeURIComponent).join("/")}`;
  const r = await fetch(url, { method, headers: { "content-type": "application/json" },
                               body: body ? JSON.stringify(body) : undefined });
  $("override-status").textContent = r.ok ? `${o.kind}/${o.entry_id}: ${method === "DELETE" ? "deleted" : "changed"}.`
    : (await r.json()).error;
  await overrides();
  await load();
}
overrides();
