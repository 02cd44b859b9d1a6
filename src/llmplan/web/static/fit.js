// Quick fit: memory by component and speed, recomputed as the inputs change.
"use strict";
const $ = (id) => document.getElementById(id);

async function getJSON(url, body) {
  const r = await fetch(url, body ? { method: "POST", headers: { "content-type": "application/json" },
                                      body: JSON.stringify(body) } : undefined);
  const d = await r.json();
  if (!r.ok) throw new Error(d.error || r.statusText);
  return d;
}

function fill(select, entries, pick) {
  for (const e of entries) {
    const o = document.createElement("option");
    o.value = e.id;
    o.textContent = e.name ? `${e.id} — ${e.name}` : e.id;
    select.appendChild(o);
  }
  if (pick) select.value = pick;
}

const gib = (b) => (b / 2 ** 30).toFixed(2) + " GiB";
let seq = 0;

async function update() {
  const mine = ++seq;
  const req = { model: $("model").value, gpu: $("gpu").value, num_gpus: +$("num_gpus").value,
                context_tokens: +$("context").value, concurrency: +$("concurrency").value };
  if ($("precision").value) req.precision = $("precision").value;
  $("status").textContent = "Computing…";
  $("status").className = "";
  try {
    const fit = await getJSON("/api/fit", req);
    if (mine !== seq) return;
    $("verdict").textContent = fit.fits
      ? `FITS — KV pool holds ${fit.kv_capacity_tokens.toLocaleString("en-US")} tokens (up to ${fit.max_concurrency} sequences of this context)`
      : `DOES NOT FIT — ${(fit.reasons || []).join("; ")}`;
    $("verdict").className = fit.fits ? "rec" : "error";
    const t = $("components");
    t.innerHTML = "<tr><td><b>component</b></td><td><b>per GPU</b></td></tr>";
    for (const c of fit.per_gpu_breakdown || []) {
      const row = t.insertRow();
      row.insertCell().textContent = c.component;
      row.insertCell().textContent = gib(c.bytes);
    }
    $("speed").textContent = "";
    if (fit.fits) {
      const est = await getJSON("/api/estimate", { ...req, input_tokens: 1024, output_tokens: 256,
                                                  concurrency: Math.min(req.concurrency, fit.max_concurrency || 1) });
      if (mine !== seq) return;
      $("speed").textContent = `At ${est.concurrency} concurrent requests of 1,024 in / 256 out: ` +
        `TTFT ${est.ttft_ms.toFixed(0)} ms, TPOT ${est.tpot_ms === null ? "none" : est.tpot_ms.toFixed(1) + " ms"}, ` +
        `${Math.round(est.output_tok_s).toLocaleString("en-US")} output tok/s`;
    }
    $("status").textContent = "";
  } catch (e) {
    if (mine !== seq) return;
    $("status").textContent = e.message;
    $("status").className = "error";
  }
}

async function init() {
  const [models, gpus, formats] = await Promise.all([getJSON("/api/catalog/models"), getJSON("/api/catalog/gpus"),
                                                     getJSON("/api/catalog/formats")]);
  fill($("model"), models, "meta-llama/Llama-3.3-70B-Instruct");
  fill($("gpu"), gpus, "h100-sxm");
  fill($("precision"), formats);
  for (const el of document.querySelectorAll("#form select, #form input")) el.addEventListener("change", update);
  await update();
}
init();
