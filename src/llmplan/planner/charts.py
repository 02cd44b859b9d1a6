"""The plan report's charts as Vega-Lite specs (rendered by :mod:`llmplan.charts`): TCO by option,
cumulative cost of owning against renting and APIs, TCO against TTFT for every ranked option, and
the excluded options by reason."""

from __future__ import annotations

import math
from typing import Any

from .. import charts


def _label(o: dict[str, Any]) -> str:
    """A bar's label: the option's id (unique), shortened only by dropping the model's organisation."""
    model = (o.get("model") or "").split("/")[-1]
    parts = [o["deployment"].replace("_", " ") + ":", model, o.get("precision") or "",
             f"{o['num_gpus']} × {o['hardware']}" if o.get("hardware") else (o.get("engine") or "")]
    return " ".join(p for p in parts if p)


def tco_bars(r: dict[str, Any]) -> charts.Spec | None:
    values: dict[str, float] = {}
    group: dict[str, str] = {}
    rec = r.get("recommendation")
    if rec:
        key = "recommended — " + _label(rec)
        values[key], group[key] = rec["tco_usd"], "recommended"
    for o in r["alternatives"]:
        key = _label(o)
        if key not in values:
            values[key], group[key] = o["tco_usd"], "alternative"
    for kind, o in r["references"].items():
        key = f"cheapest {kind.replace('_', ' ')} — {_label(o)}" + ("" if o["allowed"] else " (not allowed)")
        if key not in values:
            values[key], group[key] = o["tco_usd"], "reference" if o["allowed"] else "reference, not allowed"
    if not values:
        return None
    return charts.bars(values, title=f"TCO over {r['horizon_years']:g} years", x_title="TCO (USD)",
                       x_format="$,.0f", colour_by=group,
                       subtitle="the recommendation, the next-best options and the cheapest rented references")


def cumulative(r: dict[str, Any]) -> charts.Spec | None:
    """Cumulative spend by month: owning the recommendation (capex up front, then opex) against the
    cheapest cloud-GPU and API options, break-even months marked."""
    rec = r.get("recommendation")
    if not rec or rec["deployment"] != "on_prem" or not r["references"]:
        return None
    months = list(range(int(round(r["horizon_years"] * 12)) + 1))
    capex, opex_m = rec["details"]["capex_usd"], rec["details"]["opex_usd_per_year"] / 12
    lines = {"own (recommended)": [capex + opex_m * m for m in months]}
    markers = {}
    for kind, o in r["references"].items():
        per_m = o["tco_usd"] / (r["horizon_years"] * 12)
        name = f"cheapest {kind.replace('_', ' ')}" + ("" if o["allowed"] else " (not allowed)")
        lines[name] = [per_m * m for m in months]
        if o["breakeven_month"] is not None:
            markers[f"break-even vs {kind.replace('_', ' ')}: month {o['breakeven_month']}"] = o["breakeven_month"]
    return charts.line(months, lines, title="Cumulative cost", x_title="month", y_title="cumulative cost (USD)",
                       y_format=charts.USD_AXIS, tip_format=charts.USD_TIP, x_format="d", integer_x=True,
                       markers=markers, subtitle="owning: purchase up front, then running costs; renting and "
                                                 "APIs: even monthly spend")


def tco_vs_ttft(r: dict[str, Any]) -> charts.Spec | None:
    """TCO against TTFT p95 for every ranked option with a latency; the Pareto front ringed."""
    ranked = r["_search"]["ranked"]
    front = {o["id"] for o in r["pareto"]}
    pts = [{"id": o.id, "deployment": o.deployment.replace("_", " "), "tco_usd": o.tco_usd,
            "ttft_ms": o.ttft_p95_ms, "score": o.quality_score, "pareto": o.id in front,
            "quality": (o.details.get("quality") or {}).get("label", "no published quality figure")}
           for o in ranked if o.ttft_p95_ms is not None and math.isfinite(o.tco_usd)]
    if not pts:
        return None
    bench = r["ranking"]["benchmark_name"]
    return charts.scatter(pts, title="TCO against TTFT p95 at peak",
                          subtitle=f"every ranked option; size: {bench}; ringed: the Pareto front of cost × "
                                   "latency × quality",
                          x=("ttft_ms", "TTFT p95 at peak (ms)", ",.0f"), y=("tco_usd", "TCO (USD)", charts.USD_AXIS),
                          colour=("deployment", "deployment"), size=("score", bench), ring="pareto",
                          tooltip=[("id", "option", None), ("tco_usd", "TCO (USD)", charts.USD_TIP),
                                   ("ttft_ms", "TTFT p95 (ms)", ",.0f"), ("quality", "quality", None)])


def excluded(r: dict[str, Any]) -> charts.Spec | None:
    counts = {k: float(v) for k, v in r["rejected_counts"].items()}
    if not counts:
        return None
    return charts.bars(counts, title="Excluded options by reason", x_title="options excluded", x_format=",.0f",
                       subtitle="the first rule each excluded option failed")


def specs(r: dict[str, Any]) -> list[charts.Spec]:
    return [s for s in (tco_bars(r), cumulative(r), tco_vs_ttft(r), excluded(r)) if s is not None]


def figures(r: dict[str, Any]) -> str:
    return "".join(charts.figure(s) for s in specs(r))
