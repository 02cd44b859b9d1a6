// The plan page: edit a scenario (form and YAML), plan it, save it (new scenario or new version),
// load, archive, explain an option; every request goes to this app only.
"use strict";
const $ = (id) => document.getElementById(id);
let body = null;     // the last valid scenario's fields (the form edits these)
let loaded = null;   // the saved scenario being edited: {id, name, version, yaml}
let edits = 0;       // answers to older edits are dropped (they can arrive after newer ones)
let timer = null;
let lastRun = null;
let yamlDirty = false;  // the YAML was typed in and `body` does not hold it yet

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function call(method, url, data) {
  const r = await fetch(url, { method, headers: { "content-type": "application/json" },
                               body: data ? JSON.stringify(data) : undefined });
  if (r.status === 204) return null;
  const out = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(out.error || r.statusText);
  return out;
}

const money = (v) => v == null ? "—" : "$" + Math.round(v).toLocaleString("en-US");
const when = (iso) => iso ? iso.slice(0, 16).replace("T", " ") : "";

function setLoaded(s) {
  loaded = s;
  $("loaded").hidden = !s;
  $("loaded").textContent = s ? `Editing saved scenario #${s.id} “${s.name}”, version ${s.version}` : "";
  $("save-version").disabled = !s;
  $("archive").disabled = !s;
}

// ------------------------------------------------------------------ planning

async function plan() {
  status("Planning… (a few seconds)");
  $("run").disabled = true;
  try {
    const text = $("yaml").value;
    const saved = loaded && loaded.yaml === text ? `?scenario_id=${loaded.id}&version=${loaded.version}` : "";
    const job = await call("POST", "/api/jobs/plan" + saved, { yaml: text });
    let st;
    for (;;) {  // poll while the job waits for a worker or runs; stop at done or failed
      st = await call("GET", job.status_url);
      if (st.status !== "queued" && st.status !== "running") break;
      status(st.status === "queued"
        ? `Waiting for a worker: position ${st.queue_position ?? "?"} in the queue (${st.seconds.toFixed(1)} s)`
        : `Planning… ${st.progress} (${st.seconds.toFixed(1)} s)`);
      await new Promise((ok) => setTimeout(ok, 250));
    }
    if (st.status === "failed") throw new Error(st.error);
    const run = await call("GET", st.run_url);
    showResult(run, st.report_url);
    status(`Run ${run.id} done.`);
  } catch (e) {
    status(e.message, true);
  } finally {
    $("run").disabled = false;
  }
}

function showResult(run, reportUrl) {
  const r = run.result;
  const rec = r.recommendation;
  lastRun = run.id;
  const div = document.createElement("div");
  div.id = "recommendation";
  if (rec) {
    div.className = "rec";
    div.textContent = `Recommended: ${rec.model} ${rec.precision || ""} on ${rec.num_gpus || ""} ${rec.hardware || rec.deployment}` +
      ` — TCO ${money(rec.tco_usd)}, $${rec.cost_per_million_tokens_usd.toFixed(3)} per 1M tokens`;
  } else {
    div.className = "warn";
    const d = r.why_none_detail || {};
    const head = document.createElement("strong");
    head.textContent = "No compliant option. ";
    const why = document.createElement("span");
    why.textContent = r.why_none || "";
    div.append(head, why);
    if (d.decided_by) {
      const p = document.createElement("p");
      p.className = "deciding";
      p.textContent = `Deciding rule: ${d.decided_by}` + (d.field ? `; change: ${d.field}` : "") +
        ". Explain any excluded option below.";
      div.append(p);
    }
  }
  $("summary").replaceChildren(div);
  optionIds(r);
  $("explain-box").hidden = false;
  $("explanation").textContent = "";
  $("report").src = reportUrl;
  $("report").hidden = false;
  for (const fmt of ["pdf", "json", "csv"]) $(fmt).href = `/api/runs/${run.id}/report.${fmt}`;
  $("html").href = `/api/runs/${run.id}/report.html?download=true`;
  $("downloads").hidden = false;
}

function optionIds(r) {
  const ids = [r.recommendation, ...(r.alternatives || [])].filter(Boolean).map((o) => o.id)
    .concat((r.rejected || []).map((x) => x.option));
  const list = $("option-ids");
  list.replaceChildren(...ids.slice(0, 500).map((id) => { const o = document.createElement("option"); o.value = id; return o; }));
  // no recommendation: preselect an option excluded by the rule that decided (latency, memory …)
  const rule = r.why_none_detail?.decided_by;
  const decided = rule && (r.rejected || []).find((x) => (x.reasons?.[0] || "").startsWith(rule + ":"));
  $("explain-option").value = r.recommendation ? r.recommendation.id : ((decided || r.rejected?.[0])?.option || "");
}

async function explainOption() {
  const option = $("explain-option").value.trim();
  const out = $("explanation");
  if (!option || lastRun == null) return;
  out.textContent = "Explaining…";
  out.className = "";
  try {
    const info = await call("GET", `/api/runs/${lastRun}/explain?option=${encodeURIComponent(option)}`);
    out.replaceChildren(explanation(info));
  } catch (e) {
    out.textContent = e.message;
    out.className = "error";
  }
}

function explanation(info) {
  const box = document.createElement("div");
  const h = document.createElement("p");
  const ul = document.createElement("ul");
  const item = (t) => { const li = document.createElement("li"); li.textContent = t; ul.append(li); };
  if (info.status === "rejected") {
    h.textContent = `${info.option}: excluded`;
    info.reasons.forEach(item);
  } else if (info.status === "several") {
    h.textContent = `${info.option}: ${info.ranked.length} ranked and ${info.rejected.length} excluded option(s) start with this id`;
    info.ranked.forEach((o) => item(`ranked: ${o}`));
    info.rejected.forEach((x) => item(`excluded: ${x.option}: ${x.reasons.join("; ")}`));
  } else {
    h.textContent = `${info.option}: ranked` + (info.rank ? ` #${info.rank}` : "");
    item(`TCO ${money(info.tco_usd)}; $${(info.cost_per_million_tokens_usd ?? 0).toFixed(3)} per 1M tokens`);
    if (info.ttft_p95_ms != null) item(`TTFT p95 ${Math.round(info.ttft_p95_ms)} ms; TPOT p95 ${Math.round(info.tpot_p95_ms)} ms`
      + (info.answer_start_p95_ms != null && info.details?.thinking_tokens_mean
        ? `; answer start p95 ${(info.answer_start_p95_ms / 1000).toFixed(1)} s (after the thinking)` : ""));
    if (info.hardware) item(`${info.num_gpus} × ${info.hardware}, ${info.replicas} replica(s) of TP ${info.tp}`
      + (info.details?.dp_attention ? ", attention data-parallel" : ""));
    for (const n of info.details?.notes || []) item(n);
  }
  box.append(h, ul);
  return box;
}

// ------------------------------------------------------------------ saving and loading

async function saveNew() {
  try {
    const text = $("yaml").value;
    const s = await call("POST", "/api/scenarios", { yaml: text });
    setLoaded({ id: s.id, name: s.name, version: s.version, yaml: text });
    status(`Saved as scenario ${s.id}, version ${s.version}.`);
    await listSaved();
  } catch (e) {
    status(e.message, true);
  }
}

async function saveVersion() {
  if (!loaded) return;
  try {
    const text = $("yaml").value;
    const s = await call("PUT", `/api/scenarios/${loaded.id}`, { yaml: text });
    setLoaded({ id: s.id, name: s.name, version: s.version, yaml: text });
    status(`Saved scenario ${s.id} as version ${s.version}.`);
    await listSaved();
  } catch (e) {
    status(e.message, true);
  }
}

async function archive() {
  if (!loaded) return;
  try {
    await call("DELETE", `/api/scenarios/${loaded.id}`);
    status(`Archived scenario ${loaded.id} (every version kept; hidden from the list).`);
    setLoaded(null);
    await listSaved();
  } catch (e) {
    status(e.message, true);
  }
}

async function load(id) {
  const full = await call("GET", `/api/scenarios/${id}`);
  ++edits;  // answers to edits of the previous scenario are dropped
  clearTimeout(timer);
  $("yaml").value = full.latest.yaml;
  body = full.latest.body;
  yamlDirty = false;
  fillForm(true);
  setLoaded({ id: full.id, name: full.name, version: full.latest.version, yaml: full.latest.yaml });
  status(`Loaded scenario ${full.id} v${full.latest.version}.`);
  validateSoon();
}

async function listSaved() {
  const items = await call("GET", "/api/scenarios?limit=1000");
  const names = {};
  for (const s of items) names[s.name] = (names[s.name] || 0) + 1;
  $("saved").replaceChildren(...items.map((s) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "#";
    a.dataset.id = s.id;
    a.textContent = s.name;
    a.onclick = (ev) => { ev.preventDefault(); load(s.id).catch((e) => status(e.message, true)); };
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = ` #${s.id} · v${s.version} · ${when(s.updated_at)}` + (names[s.name] > 1 ? " · same name as another" : "");
    li.append(a, meta);
    return li;
  }));
}

// ------------------------------------------------------------------ form ⇄ YAML

function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = (o[k] = typeof o[k] === "object" && o[k] !== null ? o[k] : {});
  if (value === "" || value === undefined) delete o[keys.at(-1)];
  else o[keys.at(-1)] = value;
}

function fillForm(all) {
  for (const el of document.querySelectorAll("#form [data-path]")) {
    if (!all && el === document.activeElement) continue;
    const v = getPath(body, el.dataset.path);
    el.value = v == null ? "" : Array.isArray(v) ? v.join(", ") : (typeof v === "object" ? "" : v);
  }
}

async function formChanged(ev) {
  const el = ev.target;
  clearTimeout(timer);
  if (yamlDirty) {  // the YAML typed last is the base of this edit, never an older scenario
    const v = await call("POST", "/api/scenarios/validate", { yaml: $("yaml").value }).catch((e) => ({ error: e.message }));
    if (!v.ok) { valid(false, `${v.error} — fix the YAML before editing the form`); return; }
    body = v.body;
    yamlDirty = false;
  }
  const mine = ++edits;
  const fields = structuredClone(body || {});
  let v = el.value.trim();
  if (el.dataset.list) v = v ? v.split(",").map((x) => x.trim()).filter(Boolean) : "";
  else if (el.type === "number" && v !== "") v = Number(v);
  setPath(fields, el.dataset.path, v);
  try {
    const r = await fetch("/api/scenarios/yaml", { method: "POST", headers: { "content-type": "application/json" },
                                                   body: JSON.stringify({ scenario: fields }) });
    const text = await r.text();
    if (mine !== edits) return;
    if (!r.ok) throw new Error(JSON.parse(text).error);
    $("yaml").value = text;
    body = fields;
    valid(true);
  } catch (e) {
    if (mine === edits) valid(false, e.message);
  }
}

function valid(ok, error) {
  $("valid").textContent = ok ? "✓ valid scenario" : "✗ " + error;
  $("valid").className = ok ? "ok" : "error";
}

function validateSoon() {
  clearTimeout(timer);
  const mine = ++edits;
  timer = setTimeout(async () => {
    try {
      const v = await call("POST", "/api/scenarios/validate", { yaml: $("yaml").value });
      if (mine !== edits) return;
      valid(v.ok, v.error);
      if (v.ok) { body = v.body; yamlDirty = false; fillForm(false); }
    } catch (e) {
      if (mine === edits) valid(false, e.message);
    }
  }, 400);
}

async function init() {
  $("run").onclick = plan;
  $("save").onclick = saveNew;
  $("save-version").onclick = saveVersion;
  $("archive").onclick = archive;
  $("explain").onclick = explainOption;
  $("explain-option").addEventListener("keydown", (ev) => { if (ev.key === "Enter") explainOption(); });
  $("yaml").addEventListener("input", () => { yamlDirty = true; validateSoon(); });
  for (const el of document.querySelectorAll("#form [data-path]")) el.addEventListener("change", formChanged);
  const r = await fetch("/static/example.yaml");
  const example = await r.text();
  // the example fills an empty editor only: what the user typed or pasted while it loaded stays
  if (!yamlDirty && !$("yaml").value.trim()) {
    $("yaml").value = example;
    validateSoon();
  }
  await listSaved();
}
init();
