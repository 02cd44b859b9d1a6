"""The plan report as a printable PDF (WeasyPrint): a one-page executive summary, then the
assumptions with their sources, then the detail (the HTML report's sections and charts)."""

from __future__ import annotations

import html
from typing import Any

from ..catalog import Catalog

e = html.escape


def _usd(v: float | None) -> str:
    return "—" if v is None else f"${v:,.0f}"


def summary_html(result: dict[str, Any]) -> str:
    r = result
    rec = r.get("recommendation")
    w = r["workload"]
    rows = []
    if rec:
        rows = [("Recommendation", f"{rec['model']} ({rec['precision'] or 'provider precision'}), "
                                   f"{rec['deployment']}"),
                ("Hardware", f"{rec['num_gpus']} × {rec['hardware']} in {rec['servers']} server(s), "
                             f"{rec['replicas']} replica(s) of TP {rec['tp']}" if rec["hardware"] else "—"),
                (f"TCO over {r['horizon_years']:g} years", _usd(rec["tco_usd"])),
                ("Cost per 1M tokens", f"${rec['cost_per_million_tokens_usd']:,.3f}"),
                ("Latency at peak (p95)", f"TTFT {rec['ttft_p95_ms']:,.0f} ms, TPOT {rec['tpot_p95_ms']:,.0f} ms"
                 if rec.get("ttft_p95_ms") is not None else "—"),
                ("Quality", (rec.get("quality") or {}).get("label")
                 or (f"{rec['quality_recovery_pct']:.1f} % recovery" if rec.get("quality_recovery_pct") else "—"))]
    for kind, o in r.get("references", {}).items():
        be = o.get("breakeven_month")
        rows.append((f"Cheapest {kind.replace('_', ' ')}",
                     f"{_usd(o['tco_usd'])} ({'allowed' if o['allowed'] else 'not allowed by the policy'})"
                     + (f"; owning breaks even in month {be}" if be is not None else "")))
    excluded = ", ".join(f"{k} {v}" for k, v in list(r["rejected_counts"].items())[:5])
    rows.append(("Options excluded", f"{len(r['rejected'])} ({excluded})"))
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    slo = ", ".join(f"{k} {v:g}" for k, v in w["slo"].items())
    return (f"<section class='summary'><h1>{e(r['scenario']['name'])}</h1>"
            f"<p class='sub'>Executive summary — {w['requests_per_day']:,.0f} requests/day (peak "
            f"{w['peak_rate_per_s']:.3g}/s); SLO {e(slo)}; policy: {e(', '.join(r['policy']['deployment']))}</p>"
            f"<table class='kv'>{table}</table>"
            + (f"<p><b>Serve with</b></p><pre>{e(rec['serve_command'])}</pre>" if rec and rec.get("serve_command")
               else "") + "</section>")


def assumptions_html(result: dict[str, Any], cat: Catalog) -> str:
    rows = []
    rec = result.get("recommendation") or {}
    if rec.get("hardware"):
        a = cat.accelerator(rec["hardware"])
        price = f"${a.price.usd:,.0f}" if a.price else "scenario"
        rows.append((f"{a.id} purchase price", price, a.source, a.as_of))
    if rec.get("model"):
        m = cat.model(rec["model"])
        rows.append((f"{m.id} architecture and licence", m.license, m.source, m.as_of))
    for x in cat.cost_assumptions:
        rows.append((x.name, f"{x.value:g} {x.unit} (range {x.low:g}–{x.high:g})", x.source, x.as_of))
    for kind, o in result.get("references", {}).items():
        d = o.get("details", {})
        if d.get("source"):
            rows.append((f"cheapest {kind} price", _usd(o["tco_usd"]), d["source"], d.get("as_of", "")))
    body = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td class='src'>{e(str(c))}</td><td>{e(str(d))}</td></tr>"
                   for a, b, c, d in rows)
    given = result.get("finance_given") or {}
    note = ("Scenario overrides: " + ", ".join(f"{k} = {v}" for k, v in given.items())) if given else \
        "The scenario overrides none of these defaults."
    return (f"<section class='assumptions'><h2>Assumptions and sources</h2><p>{e(note)}</p>"
            f"<table class='grid'><tr><th>assumption</th><th>value</th><th>source</th><th>as of</th></tr>{body}"
            "</table></section>")


CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font-family: 'DejaVu Sans', sans-serif; font-size: 10pt; color: #222; }
section.summary, section.assumptions { break-after: page; }
h1 { font-size: 18pt; margin: 0 0 4pt; } h2 { font-size: 13pt; border-bottom: 1px solid #ccc; }
.sub { color: #555; }
table { border-collapse: collapse; width: 100%; }
table.kv th { text-align: left; width: 32%; padding: 4pt; background: #f2f5f9; }
table.kv td, table.grid td, table.grid th { padding: 3pt; border: 1px solid #ccc; vertical-align: top; }
td.src { font-size: 7pt; word-break: break-all; }
pre, code { font-size: 8pt; white-space: pre-wrap; word-break: break-all; }
svg { max-width: 100%; height: auto; }
details { display: none; }
"""


def pdf_bytes(result: dict[str, Any], detail_html: str, cat: Catalog) -> bytes:
    from weasyprint import HTML

    body = detail_html.split("<body>", 1)[-1].rsplit("</body>", 1)[0]
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style></head><body>"
           f"{summary_html(result)}{assumptions_html(result, cat)}<section class='detail'>{body}</section>"
           "</body></html>")
    return HTML(string=doc).write_pdf()
