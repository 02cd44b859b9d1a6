"""The plan report as a printable PDF (WeasyPrint): a one-page executive summary, then the
assumptions with their sources, then the detail (the HTML report's sections and charts)."""

from __future__ import annotations

import html
from typing import Any

from ..catalog import Catalog
from ..units import days_text, fmt_sig
from .report import attention_words

e = html.escape


def _usd(v: float | None) -> str:
    return "—" if v is None else f"${v:,.0f}"


def _bought_rows(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """What is bought and where the money goes (owned recommendations)."""
    d = rec.get("details") or {}
    if rec.get("deployment") != "on_prem" or "purchase" not in d:
        return []
    p, c = d["purchase"], d["cost"]
    oi = c["opex_items_usd_per_year"]
    return [
        ("Bought", p["placement"]),
        ("GPUs needed / bought", d["notes"][0]),
        (
            "Capex",
            f"{_usd(c['capex_usd'])} (" + ", ".join(f"{k} {_usd(v)}" for k, v in c["capex_items_usd"].items()) + ")",
        ),
        (
            "Opex per year",
            f"{_usd(c['opex_usd_per_year'])} ("
            + ", ".join(f"{k} {_usd(v)}" for k, v in oi.items())
            + f"; {c['staff_fte']:.2f} FTE)",
        ),
        ("Resale at the horizon", f"−{_usd(c['residual_value_usd'])} ({c['residual_value_pct']:.1f} % of hardware)"),
    ]


def summary_html(result: dict[str, Any]) -> str:
    r = result
    rec = r.get("recommendation")
    w = r["workload"]
    rows = []
    if rec:
        rows = [("Recommendation", f"{rec['model']} ({rec['precision'] or 'provider precision'}), "
                                   f"{rec['deployment']}"),
                ("Hardware", f"{rec['num_gpus']} × {rec['hardware']} in {rec['servers']} server(s), "
                             f"{rec['replicas']} replica(s) of TP {rec['tp']}{attention_words(rec)}"
                             if rec["hardware"] else "—"),
                *_bought_rows(rec),
                (f"TCO over {r['horizon_years']:g} years", _usd(rec["tco_usd"])),
                ("Cost per 1M tokens", f"${rec['cost_per_million_tokens_usd']:,.3f}"),
                ("Latency at peak (p95)", f"TTFT {rec['ttft_p95_ms']:,.0f} ms, TPOT {rec['tpot_p95_ms']:,.0f} ms"
                 + (f", answer start {rec['answer_start_p95_ms'] / 1e3:,.1f} s" if _thinks(rec) else "")
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
            f"<p class='sub'>Executive summary — {w['requests_per_day']:,.0f} requests/day on "
            f"{days_text(w['days_per_year'])} (peak "
            f"{fmt_sig(w['peak_rate_per_s'])}/s); SLO {e(slo)}; policy: {e(', '.join(r['policy']['deployment']))}</p>"
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
    rows += _purchase_sources(rec, cat)
    for x in cat.cost_assumptions:
        rows.append((x.name or x.id, f"{x.value:g} {x.unit} (range {x.low:g}–{x.high:g})", x.source, x.as_of))
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


def _purchase_sources(rec: dict[str, Any], cat: Catalog) -> list[tuple[str, str, str, str]]:
    """The buying units, their hosts, the licences and the resale curve behind the recommendation."""
    d = rec.get("details") or {}
    if "purchase" not in d:
        return []
    rows = []
    for line in d["purchase"]["lines"]:
        s = cat.server(line["server"])
        rows.append((f"{s.id}: {s.name}", f"{line['count']} × {line['gpus_each']} accelerators", s.source, s.as_of))
        if s.host is not None:
            h = s.host
            rng = f" (range ${h.cost_low_usd:,.0f}–${h.cost_high_usd:,.0f})" if h.estimate else ""
            rows.append(
                (
                    f"{s.id} host (without accelerators)",
                    f"${h.cost_usd:,.0f}{rng}, {h.power_w:,.0f} W; {h.basis}",
                    h.source,
                    h.as_of,
                )
            )
    for lic in d["cost"]["licences"]:
        rows.append((f"licence: {lic['name']}", f"${lic['usd_per_year']:,.0f} per {lic['basis'].split('_')[1]}-year, "
                     f"{lic['bundled_years']:g} year(s) bundled ({lic['why']})", lic["source"], lic["as_of"]))
    for c in cat.resale_curves:
        rows.append((f"resale curve {c.id}", ", ".join(f"{p.age_years:g} y: {p.pct:g} %" for p in c.points), c.source,
                     c.as_of))
    return rows


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


def _thinks(rec: dict[str, Any]) -> bool:
    """The recommendation thinks before it answers, and its answer start is known (runs saved before it was
    computed have none)."""
    return bool(rec["details"].get("thinking_tokens_mean")) and rec.get("answer_start_p95_ms") is not None
