// The plan page: edit YAML, plan, save; every request goes to this app only.
"use strict";
const $ = (id) => document.getElementById(id);

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function call(method, url, body) {
  const r = await fetch(url, { method, headers: { "content-type": "application/json" },
                               body: body ? JSON.stringify(body) : undefined });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function money(v) { return v == null ? "—" : "$" + Math.round(v).toLocaleString("en-US"); }

async function plan() {
  status("Planning… (a few seconds)");
  $("run").disabled = true;
  try {
    const job = await call("POST", "/api/jobs/plan", { yaml: $("yaml").value });
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
    const r = { ...run.result, run_id: run.id, report_url: st.report_url };
    const rec = r.recommendation;
    $("summary").innerHTML = "";
    const div = document.createElement("div");
    div.className = "rec";
    div.id = "recommendation";
    div.textContent = rec
      ? `Recommended: ${rec.model} ${rec.precision || ""} on ${rec.num_gpus || ""} ${rec.hardware || rec.deployment}` +
        ` — TCO ${money(rec.tco_usd)}, $${rec.cost_per_million_tokens_usd.toFixed(3)} per 1M tokens`
      : "No compliant option: " + r.why_none;
    $("summary").appendChild(div);
    $("report").src = r.report_url;
    for (const fmt of ["pdf", "html", "json", "csv"]) $(fmt).href = `/api/runs/${r.run_id}/report.${fmt}`;
    $("downloads").hidden = false;
    status(`Run ${r.run_id} done.`);
  } catch (e) {
    status(e.message, true);
  } finally {
    $("run").disabled = false;
  }
}

async function save() {
  try {
    const s = await call("POST", "/api/scenarios", { yaml: $("yaml").value });
    status(`Saved as scenario ${s.id}, version ${s.version}.`);
    await listSaved();
  } catch (e) {
    status(e.message, true);
  }
}

async function listSaved() {
  const items = await call("GET", "/api/scenarios");
  $("saved").innerHTML = "";
  for (const s of items) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "#";
    a.textContent = `${s.name} (v${s.version})`;
    a.onclick = async (ev) => {
      ev.preventDefault();
      const full = await call("GET", `/api/scenarios/${s.id}`);
      $("yaml").value = full.latest.yaml;
      status(`Loaded scenario ${s.id} v${full.latest.version}.`);
    };
    li.appendChild(a);
    $("saved").appendChild(li);
  }
}

let timer = null;
let body = null;  // the last valid scenario's fields

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

function fillForm() {
  for (const el of document.querySelectorAll("#form [data-path]")) {
    if (el === document.activeElement) continue;
    const v = getPath(body, el.dataset.path);
    el.value = v == null ? "" : Array.isArray(v) ? v.join(", ") : (typeof v === "object" ? "" : v);
  }
}

async function formChanged(ev) {
  const el = ev.target;
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
    $("valid").textContent = "✓ valid scenario";
    $("valid").className = "ok";
  } catch (e) {
    $("valid").textContent = "✗ " + e.message;
    $("valid").className = "error";
  }
}

let edits = 0;  // answers to older edits are dropped (they can arrive after newer ones)

function validateSoon() {
  clearTimeout(timer);
  const mine = ++edits;
  timer = setTimeout(async () => {
    try {
      const v = await call("POST", "/api/scenarios/validate", { yaml: $("yaml").value });
      if (mine !== edits) return;
      $("valid").textContent = v.ok ? "✓ valid scenario" : "✗ " + v.error;
      $("valid").className = v.ok ? "ok" : "error";
      if (v.ok) { body = v.body; fillForm(); }
    } catch (e) {
      $("valid").textContent = "✗ " + e.message;
      $("valid").className = "error";
    }
  }, 400);
}

async function init() {
  $("run").onclick = plan;
  $("save").onclick = save;
  $("yaml").addEventListener("input", validateSoon);
  for (const el of document.querySelectorAll("#form [data-path]")) el.addEventListener("change", formChanged);
  const r = await fetch("/static/example.yaml");
  $("yaml").value = await r.text();
  validateSoon();
  await listSaved();
}
init();
