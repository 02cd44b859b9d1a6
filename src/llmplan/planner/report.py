"""The plan as data (JSON), as text (terminal and golden files) and as a self-contained HTML
report (embedded SVG charts, no network) that can be forwarded."""

from __future__ import annotations

import difflib
import html
import math
import re
import unicodedata
from collections import Counter
from typing import Any

import numpy as np

from ..catalog import Catalog
from ..cost.model import breakeven_month as cost_breakeven
from ..errors import LlmplanError
from ..units import days_text, fmt_sig
from . import policy as pol
from .advice import advice
from .scenario import Scenario
from .search import Option, gpu_failure_left, plan, rank_key, short_after_gpu_failure

TOP_ALTERNATIVES = 5
MAX_PARETO = 15


def run(s: Scenario, cat: Catalog, progress=None) -> dict[str, Any]:
    """Search, then shape the result: recommendation, alternatives, Pareto front, references,
    rejections with reasons. The private search objects travel under '_search' for --explain."""
    p = plan(s, cat, progress)
    ranked: list[Option] = p["ranked"]
    w = p["workload"]
    horizon = s.finance.horizon_years
    rec = ranked[0] if ranked else None
    result: dict[str, Any] = {
        "scenario": {"name": s.name, "schema_version": s.schema_version, "notes": s.notes},
        "workload": {
            "requests_per_day": p["requests_per_day"], "peak_rate_per_s": p["peak_rate_per_s"],
            "mean_rate_per_s": p["mean_rate_per_s"], "days_per_year": p["days_per_year"],
            "tokens_per_year": p["tokens_per_year"],
            "input_tokens_mean": w.lengths("input").mean, "output_tokens_mean": w.lengths("output").mean,
            "slo": w.slo.model_dump(exclude_none=True), "availability": s.availability.mode,
        },
        "horizon_years": horizon,
        "finance_given": s.finance.model_dump(exclude_unset=True),
        "policy": p["policy"].model_dump(exclude_none=True),
        "assumptions": pol.assumptions(s.policy, cat),
        "ranking": _ranking(s, p["benchmark"], ranked),
        "candidates": p["candidates"],
        "recommendation": _public(rec) if rec else None,
        "alternatives": [_public(o) for o in _alternatives(ranked)],
        "pareto": [_public(o, brief=True) for o in pareto(ranked)],
        "references": {},
        "rejected": [{"option": r.option, "reasons": r.reasons} for r in p["rejected"]],
        "rejected_counts": dict(Counter(r.reasons[0].split(":")[0] for r in p["rejected"]).most_common()),
        "options_ranked": len(ranked),
    }
    for kind, ref in p["references"].items():
        if ref is None:
            continue
        d = _public(ref)
        d["allowed"] = ref.details.get("allowed", True)
        d["policy_reasons"] = ref.details.get("policy_reasons", [])
        d["breakeven_month"] = breakeven_month(rec, ref, horizon) if rec and rec.deployment == "on_prem" else None
        result["references"][kind] = d
    if rec is None:
        result["why_none"], result["why_none_detail"] = why_none(p, s, cat)
    result["advice"] = advice(rec, p, cat, s.quality.cost_tolerance_pct, s.quality.failure_tie_pct,
                              s.quality.cost_tie_pct)
    result["_search"] = p
    return result


def _ranking(s: Scenario, bench, ranked: list[Option]) -> dict[str, Any]:
    """The ranking rule as data and as the one sentence the report prints."""
    tol = s.quality.cost_tolerance_pct
    cheapest = min((o.tco_usd for o in ranked), default=None)
    name = bench.name or bench.id
    what = ("the 16-bit model's rating" if bench.scale == "rating" else "the score after quantization (published "
            "score × the format's recovery)")
    sentence = (f"Ranking: options within {tol:g} % of the cheapest TCO"
                + (f" ({_usd(cheapest)})" if cheapest is not None else "")
                + f" are ordered by {name}, {what}, differences under {bench.resolution:g} counting as ties settled by "
                "cost; options without a published figure follow, then the rest by TCO (quality.cost_tolerance_pct, "
                "default 10 %; quality.task picks the benchmark)." if tol > 0 else
                "Ranking: by TCO alone (quality.cost_tolerance_pct is 0); quality is shown, not weighed.")
    tie = s.quality.failure_tie_pct
    if tie > 0:
        sentence += (f" An option bought without spares that falls short of the peak with one GPU failed counts as "
                     f"{tie:g} % dearer than it is, for the band and the order (quality.failure_tie_pct, default 1 %).")
    return {"benchmark": bench.id, "benchmark_name": name, "scale": bench.scale, "resolution": bench.resolution,
            "cost_tolerance_pct": tol, "failure_tie_pct": tie, "harness": bench.harness, "source": bench.source,
            "as_of": bench.as_of, "sentence": sentence}


_FIELDS = {"memory": "hardware (more memory per accelerator) or max_gpus_per_replica",
           "latency": "workload.slo (or faster hardware)", "cost": "finance.gpu_price_usd",
           "quality": "quality.min or min_quality_recovery_pct", "engine": "engines or hardware",
           "hardware support": "precisions or hardware", "layout": "max_gpus_per_replica or hardware"}


def why_none(p: dict[str, Any], s: Scenario, cat: Catalog) -> tuple[str, dict[str, Any]]:
    """Why nothing was ranked: the deciding rule, the scenario field behind it and, for the policy, the
    value that would change the answer (the policy filter re-run with that one field relaxed)."""
    c = p["candidates"]
    models = [cat.model(m) for m in c["models"]]
    hardware = [cat.accelerator(a) for a in c["hardware"]]
    engines = [cat.engine(e) for e in c["engines"]]
    info = pol.explain_no_option(p["policy"], models, hardware, engines, cat, cloud="cloud_gpu" in s.alternatives,
                                 api="api" in s.alternatives)
    if info is not None:
        rules = ", ".join(f"{r} ({n})" for r, n in info["rules"].items())
        msg = f"No candidate passes the policy (of {info['candidates']}, rejected by: {rules})."
        for x in info["relaxations"][:3]:
            msg += (f" Setting {x['field']}: {_value(x['value'])} would let {x['passes']} pass the policy "
                    f"({', '.join(x['rules'])} decided; e.g. {x['examples'][0]}).")
        if not info["relaxations"]:
            msg += " No single policy field, relaxed alone, lets any candidate pass."
        else:
            msg += " Memory and latency are then checked as usual."
        return msg, {"decided_by": "policy", **info}
    counts = Counter(r.reasons[0].split(":")[0] for r in p["rejected"] if not r.option.startswith(("cloud:",)))
    rule, n = next(iter(counts.most_common(1)), ("", 0))
    field = _FIELDS.get(rule, "the scenario's constraints")
    msg = (f"Candidates pass the policy, but none survives {rule} ({n} option(s) excluded by it; see the "
           f"examples below): change {field}.")
    return msg, {"decided_by": rule, "field": field, "count": n}


def _value(v: Any) -> str:
    if v is None:
        return "unset (no restriction)"
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v).lower() if isinstance(v, bool) else str(v)


def _public(o: Option, brief: bool = False) -> dict[str, Any]:
    d = o.public()
    d["quality"] = o.details.get("quality")
    d["short_with_one_gpu_failed"] = None if gpu_failure_left(o) is None else short_after_gpu_failure(o)
    if brief:
        d.pop("details")
        d.pop("serve_command")
    return d


def _alternatives(ranked: list[Option]) -> list[Option]:
    """The next-best options that differ from those already shown as the runner-up is chosen
    (:func:`llmplan.planner.advice._runner_up`): in model, hardware, engine or deployment, or in a weight
    format with other figures; not just in TP degree, nor a format twin with the same cost and quality."""
    seen: set[tuple] = set()
    twins: set[tuple] = set()
    out = []
    for o in ranked:
        base = (o.deployment, o.model, o.hardware, o.engine)
        key, twin = (*base, o.precision), (*base, o.tco_usd, o.quality_score)
        if key in seen or twin in twins:
            continue
        seen.add(key)
        twins.add(twin)
        out.append(o)
        if len(out) > TOP_ALTERNATIVES:
            break
    return out[1:]


def pareto(ranked: list[Option]) -> list[Option]:
    """Options no other beats on TCO, TTFT p95, absolute quality (the ranking benchmark, after quantization) and
    carrying the peak with one GPU failed (an owned option bought without spares that would stop counts as worse
    there; every other as able) at once, cheapest first. An unknown latency or quality counts as the worst
    (API options: cost only, so they join when nothing is cheaper)."""
    pts = [(o, o.tco_usd, o.ttft_p95_ms if o.ttft_p95_ms is not None else math.inf,
            -o.quality_score if o.quality_score is not None else math.inf,
            1 if short_after_gpu_failure(o) else 0) for o in ranked]
    front = []
    for o, c, t, q, f in pts:
        dominated = any((c2 <= c and t2 <= t and q2 <= q and f2 <= f) and (c2 < c or t2 < t or q2 < q or f2 < f)
                        for _, c2, t2, q2, f2 in pts)
        if not dominated:
            front.append(o)
    front.sort(key=rank_key)
    # equal points (fp16/bf16, same model on two TP degrees with equal figures) once
    uniq, keys = [], set()
    for o in front:
        k = (round(o.tco_usd), round(o.ttft_p95_ms or 0), o.quality_score, short_after_gpu_failure(o))
        if k not in keys:
            keys.add(k)
            uniq.append(o)
    return uniq[:MAX_PARETO]


def breakeven_month(owned: Option, alt: Option, horizon_years: float) -> int | None:
    """First month at which owning has cost no more in total than the alternative: capex up
    front plus monthly opex, against the alternative's even monthly spend (residual value not
    counted: a cautious break-even)."""
    months = np.arange(int(round(horizon_years * 12)) + 1)
    capex = owned.details.get("capex_usd", 0.0)
    opex_m = owned.details.get("opex_usd_per_year", 0.0) / 12
    return cost_breakeven(capex + opex_m * months, alt.tco_usd / (horizon_years * 12) * months)


def explain(result: dict[str, Any], option_id: str) -> dict[str, Any]:
    """Everything known about one option: its figures if it was ranked, its reasons if not."""
    p = result["_search"]
    for rank, o in enumerate(p["ranked"], 1):
        if o.id == option_id:
            return {"option": o.id, "status": "ranked", "rank": rank, **_public(o)}
    reasons = [r.reasons for r in p["rejected"] if r.option == option_id]
    if reasons:
        return {"option": option_id, "status": "rejected", "reasons": [x for rs in reasons for x in rs]}
    # a partial id: all options it prefixes
    hits = [r for r in p["rejected"] if r.option.startswith(option_id)]
    hits_ok = [o for o in p["ranked"] if o.id.startswith(option_id)]
    if hits or hits_ok:
        return {"option": option_id, "status": "several", "ranked": [o.id for o in hits_ok][:50],
                "rejected": [{"option": r.option, "reasons": r.reasons} for r in hits][:50]}
    ids = [o.id for o in p["ranked"]] + [r.option for r in p["rejected"]]
    near = difflib.get_close_matches(option_id, ids, n=3, cutoff=0.5)
    hint = (
        f"; did you mean {' or '.join(near)}?" if near else "; option ids are printed by `llmplan plan` and in its JSON"
    )
    raise LlmplanError(f"no option {option_id!r} in this plan{hint}")


def public_json(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------


def _usd(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"${v:,.0f}"


def _ms(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:,.0f} ms"


def _thinks(o: dict[str, Any]) -> bool:
    """Whether an option's model thinks before it answers (its answer starts after its first token)."""
    a, t = o.get("answer_start_p95_ms"), o.get("ttft_p95_ms")
    return a is not None and t is not None and a > t


def _answer(o: dict[str, Any]) -> str:
    """An option's answer start p95 (seconds where it thinks; its TTFT otherwise)."""
    return _s(o["answer_start_p95_ms"]) if _thinks(o) else _ms(o.get("answer_start_p95_ms"))


def _s(v_ms: float) -> str:
    """A time in milliseconds as seconds, 0.1 s apart ('42.2 s')."""
    return "—" if not math.isfinite(v_ms) else f"{v_ms / 1e3:,.1f} s"


def _thinking_lines(rec: dict[str, Any]) -> list[str]:
    """What the recommendation's thinking adds: tokens, and that the answer starts after them (the answer start,
    workload.slo.answer_start_p95_ms; from the TPOT where a saved run has no answer start)."""
    d = rec["details"]
    if not d.get("thinking_tokens_mean"):
        return []
    think = d["thinking_tokens_mean"]
    if rec.get("answer_start_p95_ms") is not None:
        later = (f"at p95 {_s(rec['answer_start_p95_ms'])} after the request (the answer start; "
                 "workload.slo.answer_start_p95_ms holds it to a limit)")
    elif rec.get("tpot_p95_ms"):
        tpot = rec["tpot_p95_ms"]
        later = f"about {think * tpot / 1e3:,.0f} s later ({think:,.0f} × TPOT p95 {tpot:,.0f} ms)"
    else:
        later = f"{think:,.0f} × TPOT later"
    return [f"- thinking: the model reasons before each answer, {think:,.0f} tokens on average "
            "(workload.thinking_tokens), generated and paid for as output; TPOT and the load count them, and the TTFT "
            f"is to the first token of the trace: the answer itself starts {later}"]


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} %"


def _quality(o: dict[str, Any]) -> str:
    q = o.get("quality")
    if q is None:
        return _pct(o["quality_recovery_pct"])
    if q["model_score"] is None:
        return "no published figure"
    if q["scale"] == "rating":
        return f"{q['model_score']:,.0f} (rec. {_pct(q['recovery_pct'])})"
    if q["score"] is None:
        return f"{q['model_score']:.1f} at 16 bit (rec. —)"
    return f"{q['score']:.1f} ({q['model_score']:.1f} × {_pct(q['recovery_pct'])})"


def _layout(o: dict[str, Any]) -> str:
    if o["deployment"] == "api":
        return f"{o['details']['provider']} API ({o['details']['api_model']})" if "details" in o else "API"
    where = ""
    if o["deployment"] == "cloud_gpu" and "details" in o:
        where = f" rented from {o['details']['provider']} {o['details']['region']} ({o['details']['pricing']})"
    servers = f" in {o['servers']} server(s)" if o["servers"] else ""
    return (f"{o['replicas']} × {o['num_gpus'] // max(o['replicas'], 1)} {o['hardware']} (TP {o['tp']}, PP {o['pp']}"
            f"{attention_words(o)}) = {o['num_gpus']} GPUs{servers}, {o['engine']}{where}")


def attention_words(o: dict[str, Any]) -> str:
    """', attention data-parallel' for an option sized with data-parallel attention, else nothing."""
    return ", attention data-parallel" if o.get("details", {}).get("dp_attention") else ""


def owned_lines(d: dict[str, Any], horizon: float) -> list[str]:
    """What is bought, where the spares are, and every cost line item (the report's buyer view)."""
    p, c = d["purchase"], d["cost"]
    ci, oi = c["capex_items_usd"], c["opex_items_usd_per_year"]
    units = f", {p['rack_units']} U" if p["rack_units"] else ""
    where = (f"under a desk (no colocation), {p['contracted_kw']:,.2f} kW maximum" if p["facility"] == "office" else
             f"in a data centre{units}, {p['contracted_kw']:,.1f} kW contracted")
    out = [f"- bought: {p['placement']} — {where}",
           f"- {d['notes'][0]}",
           f"- capex {_usd(c['capex_usd'])}: hardware {_usd(ci['hardware'])}, installation {_usd(ci['installation'])}, "
           f"network {_usd(ci['network'])}, storage {_usd(ci['storage'])}",
           f"- opex {_usd(c['opex_usd_per_year'])}/year: energy {_usd(oi['energy'])} "
           f"({c['power_kw']['metered_average']:,.2f} kW average; engines working {d['active_pct']:.0f} % of the time, "
           f"utilisation {d['utilisation_pct']:.0f} %), "
           f"colocation {_usd(oi['colocation'])}, maintenance {_usd(oi['maintenance'])}, staff {_usd(oi['staff'])} "
           f"({c['staff_fte']:.2f} FTE), software {_usd(oi['software'])}",
           f"- resale value at {horizon:g} years: {_usd(c['residual_value_usd'])} ({c['residual_value_pct']:.1f} % of "
           f"hardware), subtracted from the TCO; {d['energy_kwh_per_year']:,.0f} kWh/year"]
    for lic in c["licences"]:
        paid = f"paid for {lic['paid_years']:g} year(s)" if lic["paid_years"] else "no payment within the horizon"
        out.append(f"- licence: {lic['name']} ({lic['why']}), ${lic['usd_per_year']:,.0f} per "
                   f"{'GPU' if lic['basis'] == 'per_gpu' else 'server'} and year × {lic['units']:g}, "
                   f"{lic['bundled_years']:g} year(s) included; {paid}")
    out += [f"- note: {n}" for n in d["notes"][1:]]
    return out


def advice_lines(a: dict[str, Any] | None, rec: dict[str, Any], horizon: float, q: Any = str) -> list[str]:
    """The buyer's sections: what to buy, why, the cost line by line, what would change the answer."""
    if a is None:
        return []
    b = a["what_to_buy"]
    out = ["## What to buy", ""]
    if b["kind"] != "on_prem":
        out += [f"- {q(b['summary'])}", ""]
    else:
        for x in b["servers"]:
            out.append(f"- {x['count']} × {q(x['name'])} ({q(x['server'])}), {x['gpus_each']} × "
                       f"{q(x['accelerator'])} each, {_usd(x['hardware_usd_each'])} each, "
                       f"{x['max_power_w_each'] / 1000:,.1f} kW maximum"
                       + (f", {x['rack_units_each']} U" if x["rack_units_each"] else ""))
        more = b["gpus_bought"] - b["gpus_needed"]
        out.append(f"- GPUs: {b['gpus_needed']} needed for the peak, {b['gpus_bought']} bought"
                   + (f"; the {more} beyond the need could carry {fmt_sig(b['extra_capacity_req_s'])} requests/s more"
                      + (" at the simulator-checked rate per replica" if b.get("extra_capacity_basis") == "simulated"
                         else " at the analytic SLO-bound rate per replica, not simulated")
                      if more > 0 else "")
                   + ("" if b["availability"] == "none" else f" (they include the {b['availability']} spares: "
                      f"{b['serving_after_worst_failure']} replica(s) serve with the worst server down)"))
        if b["racks"]:
            k = b["racks"]
            units = f"{b['rack_units']} U" if b["rack_units"] else "rack units not in the catalog"
            out.append(f"- space and power: {units} and {b['contracted_kw']:,.1f} kW contracted: "
                       f"{k['racks']} rack(s) of {k['rack_units_per_rack']:g} U / {k['kw_per_rack']:g} kW "
                       f"(decided by {k['decided_by']}; cost assumptions rack_units_per_rack, kw_per_rack)")
        else:
            out.append(f"- space and power: under a desk, {b['contracted_kw']:,.2f} kW maximum (no rack, no "
                       "colocation)")
        out.append(f"- placement: {q(b['placement'])}")
        out.append("")
    out += ["## Why", ""] + [f"- {q(x)}" for x in a["why"]] + [""]
    if rec["deployment"] == "on_prem":
        out += ["## Cost, line by line", ""] + owned_lines(rec["details"], horizon)[2:] + [""]  # after what/GPUs
    if a["what_would_change"]:
        out += ["## What would change the answer", ""] + [f"- {q(x['text'])}" for x in a["what_would_change"]] + [""]
    return out


_MD_ALWAYS = re.compile(r"[\\`*\[\]|~!]")
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")  # an underscore not inside a word can open emphasis


def md_text(value: Any) -> str:
    """`value` as Markdown text that renders as itself: the characters that make links, images,
    emphasis, code, table cells or strikethrough are backslash-escaped (an underscore inside a word,
    as in on_prem or q4_k_m, is left alone: CommonMark does not read it). `&` and `<` become
    entities in `markdown()`. Used for everything a user can name: the scenario, policy values,
    catalog names (stored overrides are user entries) and the reasons that quote them."""
    return _MD_UNDERSCORE.sub(r"\\_", _MD_ALWAYS.sub(lambda m: "\\" + m.group(), str(value)))


def code_span(text: str) -> str:
    """`text` as one Markdown code span whatever it holds (catalog entries, and stored overrides, reach the
    serve line): a fence of more backticks than its longest run, padded where the text starts or ends with
    one, and each control or format character (a line break would end the list item; a bidi override would
    reorder the line) shown as its \\uXXXX escape."""
    shown = "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    fence = "`" * (max((len(r) for r in re.findall("`+", shown)), default=0) + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def _plain(value: Any) -> str:
    return str(value)


def _alternative_lines(r: dict[str, Any], q: Any) -> list[str]:
    """The table of the best options after the recommendation."""
    out: list[str] = []
    if r["alternatives"]:
        # a model that thinks starts its answer long after its first token: the table then gives the answer start
        late = any(_thinks(o) for o in r["alternatives"])
        out += [
            "## Top alternatives",
            "",
            "| option | deployment | TCO | per 1M tok | TTFT p95 | " + ("answer start p95 | " if late else "")
            + f"TPOT p95 | latency from | {r['ranking']['benchmark_name']} (score × recovery) |",
            "|---|---|---:|---:|---:|" + ("---:|" if late else "") + "---:|---|---:|",
        ]
        for o in r["alternatives"]:
            basis = o["details"].get("latency_basis", "")
            basis = "simulator" if basis.startswith("simulated") else "model" if basis.startswith("analytic") else \
                "owned twin" if basis.startswith("as the owned") else "—"
            answer = (f"{_answer(o)} | " if late else "")
            out.append(
                f"| {q(o['id'])} | {o['deployment']} | {_usd(o['tco_usd'])} | "
                f"${o['cost_per_million_tokens_usd']:,.3f} | {_ms(o['ttft_p95_ms'])} | {answer}"
                f"{_ms(o['tpot_p95_ms'])} | {basis} | {_quality(o)} |"
            )
        out += ["", "Latency 'model': the analytic p95 at the peak hour (Poisson arrivals over the workload's "
                "lengths); 'simulator': the worst p95 of three simulated peak hours; 'owned twin': a rented GPU "
                "option, whose latency is that of the owned configuration it rents.", ""]
    return out


def _reference_lines(r: dict[str, Any], q: Any) -> list[str]:
    """The cheapest rented GPU and API, and whether owning breaks even against them."""
    rec = r["recommendation"]
    out: list[str] = []
    if r["references"]:
        out += ["## Cheapest cloud GPU and API", ""]
        for kind, o in r["references"].items():
            be = o["breakeven_month"]
            be_s = "" if rec is None or rec["deployment"] != "on_prem" else (
                f"; owning breaks even in month {be}" if be is not None else "; owning does not break even within "
                                                                              "the horizon")
            allowed = "allowed" if o["allowed"] else "NOT allowed: " + "; ".join(map(q, o["policy_reasons"]))
            out.append(f"- {kind}: {q(o['id'])}: {_usd(o['tco_usd'])} (${o['cost_per_million_tokens_usd']:,.3f} per 1M "
                       f"tokens){be_s} — {allowed}")
        out.append("")
    return out


def text(result: dict[str, Any], q: Any = _plain) -> str:
    """The report as text (what `llmplan plan` prints); `q=md_text` for Markdown, where each name
    from a user or the catalog is escaped."""
    r = result
    w = r["workload"]
    out = [f"# Plan: {q(r['scenario']['name'])}", ""]
    slo = ", ".join(f"{k} {v:g}" for k, v in w["slo"].items())
    out.append(f"Workload: {w['requests_per_day']:,.0f} requests/day on {days_text(w['days_per_year'])}, "
               f"peak {fmt_sig(w['peak_rate_per_s'])}/s, "
               f"{w['input_tokens_mean']:,.0f} in / {w['output_tokens_mean']:,.0f} out tokens (mean), "
               f"{w['tokens_per_year'] / 1e9:,.2f} B tokens/year; SLO {slo or 'none'}; availability "
               f"{w['availability']}; horizon {r['horizon_years']:g} years")
    pol = r["policy"]
    out.append(f"Policy: deployment {', '.join(map(q, pol['deployment']))}; data residency "
               f"{', '.join(map(q, pol.get('data_residency') or ['anywhere']))}; licences "
               f"{', '.join(map(q, pol['model_licenses']))}")
    for a in r.get("assumptions", []):
        out.append(f"Assumption: {q(a)}")
    rk = r["ranking"]
    where = rk["source"].split(" ; ")[0].removeprefix("https://").removeprefix("http://")  # text, not a link
    out.append(f"Quality: {rk['benchmark_name']} as published by the {rk['harness'].split(':')[0]} "
               f"({where}, {rk['as_of']}). {rk['sentence']}")
    out.append("")
    rec = r["recommendation"]
    if rec is None:
        out += ["## No compliant option", "", r["why_none"], ""]
    else:
        out += ["## Recommendation", "",
                f"- option: {q(rec['id'])}",
                f"- model: {q(rec['model'])} in {q(rec['precision'] or 'provider precision')}: "
                f"{rec['quality']['label'] if rec.get('quality') else _pct(rec['quality_recovery_pct'])}",
                f"- deployment: {rec['deployment']}: {_layout(rec)}",
                f"- TCO over {r['horizon_years']:g} years: {_usd(rec['tco_usd'])}; "
                f"${rec['cost_per_million_tokens_usd']:,.3f} per 1M tokens"]
        d = rec["details"]
        out += _thinking_lines(rec)
        if rec["ttft_p95_ms"] is not None:
            answer = rec.get("answer_start_p95_ms") if d.get("thinking_tokens_mean") else None
            out.append(f"- latency at peak: TTFT p95 {_ms(rec['ttft_p95_ms'])}, TPOT p95 {_ms(rec['tpot_p95_ms'])}"
                       + (f", answer start p95 {_s(answer)}" if answer is not None else "")
                       + f" ({d.get('latency_basis')})")
        else:  # an API: its latency is the provider's, not modelled, so the plan cannot say the SLO holds
            out.append(f"- latency: {d.get('latency_basis') or 'not modelled'}: the SLO ({q(slo or 'none')}) is "
                       "not checked for it; measure the provider's latency before relying on it")
        if rec["serve_command"]:
            cmd = rec["serve_command"]
            out.append(f"{_SERVE}{code_span(cmd) if q is md_text else '`' + cmd + '`'}")
        out.append("")
        out += advice_lines(r["advice"], rec, r["horizon_years"], q)
    out += _alternative_lines(r, q) + _reference_lines(r, q)
    if r["pareto"]:
        out += [f"## Pareto front (cost, TTFT p95, {r['ranking']['benchmark_name']}, one GPU failed): "
                f"{len(r['pareto'])} option(s)", ""]
        for o in r["pareto"]:
            out.append(f"- {q(o['id'])}: {_usd(o['tco_usd'])}, TTFT p95 {_ms(o['ttft_p95_ms'])}"
                       + (f" (answer start p95 {_answer(o)}, after its thinking)" if _thinks(o) else "")
                       + f", {r['ranking']['benchmark_name']} {_quality(o)}"
                       + ("; short of the peak with one GPU failed" if o.get("short_with_one_gpu_failed") else ""))
        out.append("")
    out += [f"## Excluded: {len(r['rejected'])} option(s)", ""]
    for reason, n in r["rejected_counts"].items():
        example = next(x for x in r["rejected"] if x["reasons"][0].startswith(reason + ":"))
        out.append(f"- {q(reason)}: {n} (e.g. {q(example['option'])}: {q(example['reasons'][0].split(': ', 1)[1])})")
    out += ["", "Explain any option: llmplan plan SCENARIO --explain OPTION_ID", ""]
    return "\n".join(out)


def markdown(result: dict[str, Any]) -> str:
    """The text report as a Markdown file (report.md): whatever a user typed (a scenario name,
    policy values quoted in reasons) cannot become HTML where the file is rendered, because `&`
    and `<` are written as entities (Markdown shows them as the characters), and every name is
    escaped (`md_text`): no link, image, emphasis or table cell comes from a name. The serve line is one code
    span (`code_span`), which Markdown shows literally, entities too: it keeps its `&` and `<` as they are."""
    def line(s: str) -> str:
        if s.startswith(_SERVE) and _ONE_SPAN.fullmatch(s[len(_SERVE):]):
            return s
        return s.replace("&", "&amp;").replace("<", "&lt;")
    return "\n".join(line(s) for s in text(result, md_text).split("\n"))


_SERVE = "- serve: "
_ONE_SPAN = re.compile(r"(`+)( ?)(?:(?!\1).)*?\2\1", re.S)  # one code span: a fence, its text, the same fence


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

def md_html(md: str) -> str:
    """Markdown as HTML (markdown-it-py, CommonMark with tables; raw HTML in the text is escaped, so
    user text never becomes markup). A line break inside a paragraph is kept."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table").render(md)


def html_report(result: dict[str, Any], standalone: bool = True) -> str:
    """One page: the text report's sections as HTML, with its charts (static SVG, live in a browser).
    `standalone`: the chart library inline, a self-contained file; else linked from the web app."""
    from .. import charts
    from . import charts as plan_charts

    r = result
    e = html.escape
    body = [md_html(text(r, md_text).split("\n", 1)[1]), plan_charts.figures(r)]
    rows = "".join(f"<tr><td>{e(x['option'])}</td><td>{e('; '.join(x['reasons']))}</td></tr>" for x in r["rejected"])
    body.append(f"<details><summary>All {len(r['rejected'])} excluded options with reasons</summary>"
                f"<table border='1' cellpadding='3' style='border-collapse:collapse;font-size:12px'>"
                f"<tr><th>option</th><th>reasons</th></tr>{rows}</table></details>")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{e(r['scenario']['name'])} — llmplan</title>"
            "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}code{font-size:12px;background:#f4f4f4;"
            "word-break:break-all}h2{border-bottom:1px solid #ddd;margin-top:1.4em}"
            "@media print{details{display:none}h2{break-after:avoid}}" f"{charts.FIGURE_CSS}</style></head><body>"
            f"<h1>{e(r['scenario']['name'])}</h1>{''.join(body)}"
            "<p style='color:#666;font-size:12px'>Generated offline by llmplan from its catalog (every figure "
            f"carries a source and date in the catalog files).</p>{charts.scripts(inline=standalone)}</body></html>\n")
