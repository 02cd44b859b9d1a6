// Catalog browser: id, name, source and date of every entry of a kind.
"use strict";
const $ = (id) => document.getElementById(id);
let entries = [];

function render() {
  const f = $("filter").value.toLowerCase();
  const t = $("entries");
  t.innerHTML = "<tr><td><b>id</b></td><td><b>name</b></td><td><b>source</b></td><td><b>as of</b></td></tr>";
  for (const e of entries) {
    if (f && !JSON.stringify(e).toLowerCase().includes(f)) continue;
    const row = t.insertRow();
    row.insertCell().textContent = e.id;
    row.insertCell().textContent = e.name || "";
    const src = row.insertCell();
    src.className = "src";
    src.textContent = e.source;
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
