"""The plan as advice a buyer can act on: what to buy (servers, GPUs, racks, kW), why this option and not
the runner-up, and what would change the answer (thresholds computed from the cost model and the sizing,
not guessed). Works on the search's Option objects; returns plain data for plan.json and the report."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..catalog import Catalog
from ..cost.model import onprem
from ..cost.ownership import assumption, buy
from ..errors import LlmplanError
from ..units import fmt_sig
from .search import Option, gpu_failure_left, option_load, short_after_gpu_failure

POLICY_FIELDS = {"deployment": "policy.deployment", "data residency": "policy.data_residency",
                 "hardware vendor": "policy.allow_hardware_vendors / deny_hardware_vendors",
                 "hardware origin": "policy.allow_hardware_countries / deny_hardware_countries",
                 "provider jurisdiction": "policy.allow_provider_countries / deny_provider_countries",
                 "export control": "policy.allow_export_controlled", "model licence": "policy.model_licenses",
                 "licence territory": "policy.buyer_country",
                 "model origin": "policy.allow_model_countries / deny_model_countries"}


def _share(part: float, whole: float) -> str:
    pct = 100 * part / whole if whole else math.inf
    return "under 0.1 %" if pct < 0.1 else f"{pct:.1f} %"


def _usd(v: float) -> str:
    return f"${v:,.0f}" if math.isfinite(v) else "—"


def what_to_buy(rec: Option, cat: Catalog) -> dict[str, Any]:
    """Servers by model with their GPUs, GPUs needed against bought, racks and contracted power."""
    if rec.deployment == "api":
        return {"kind": "api", "summary": f"nothing to buy: {rec.details['provider']} API "
                                          f"({rec.details['api_model']}), billed per token"}
    if rec.deployment == "cloud_gpu":
        d = rec.details
        return {"kind": "cloud_gpu", "summary": f"nothing to buy: rent {rec.num_gpus} × {rec.hardware} from "
                                                f"{d['provider']} {d['region']} ({d['pricing']}, "
                                                f"${d['usd_per_gpu_hour']:,.2f} per GPU-hour)"}
    p = rec.details["purchase"]
    ru_per_rack, kw_per_rack = assumption(cat, "rack_units_per_rack")[0], assumption(cat, "kw_per_rack")[0]
    servers = [{"server": x["server"], "name": x["name"], "count": x["count"], "gpus_each": x["gpus_each"],
                "accelerator": rec.hardware, "replicas_each": x["replicas_each"],
                "hardware_usd_each": x["hardware_usd_each"], "max_power_w_each": x["max_power_w_each"],
                "rack_units_each": x["rack_units_each"]} for x in p["lines"]]
    racks = None
    if p["facility"] == "datacenter":
        by_space = math.ceil((p["rack_units"] or 0) / ru_per_rack) if p["rack_units"] else 0
        by_power = math.ceil(p["contracted_kw"] / kw_per_rack - 1e-9)
        racks = {"racks": max(by_space, by_power, 1), "by_rack_units": by_space, "by_power": by_power,
                 "rack_units_per_rack": ru_per_rack, "kw_per_rack": kw_per_rack,
                 "decided_by": "power" if by_power > by_space else "space"}
    extra, basis = _extra_capacity(rec, p)
    return {"kind": "on_prem", "servers": servers, "facility": p["facility"], "gpus_needed": p["gpus_needed"],
            "gpus_bought": p["gpus_bought"], "idle_gpus": p["idle_gpus"], "replicas_needed": p["replicas_needed"],
            "replicas_placed": p["replicas_placed"], "serving_after_worst_failure": p["replicas_after_worst_failure"],
            "extra_capacity_req_s": extra, "extra_capacity_basis": basis, "rack_units": p["rack_units"],
            "contracted_kw": p["contracted_kw"], "racks": racks, "placement": p["placement"],
            "availability": p["availability"]}


def _extra_capacity(rec: Option, p: dict[str, Any]) -> tuple[float, str]:
    """What the replicas beyond the need could carry: at the simulator-checked rate per serving replica where the
    plan has one (:func:`llmplan.planner.search.load_ceiling`), else at the analytic SLO-bound rate, said so."""
    lc = rec.details.get("load_ceiling")
    serving = rec.details.get("serving_replicas") or 0
    if lc is not None and lc.get("simulated_req_s") is not None and serving > 0:
        more = max(p["replicas_placed"] - p["replicas_needed"], 0)
        return more * lc["simulated_req_s"] / serving, "simulated"
    return p["extra_capacity_req_s"], "analytic"


def _runner_up(rec: Option, ranked: list[Option]) -> Option | None:
    """The best-ranked option that differs from the recommendation in model, hardware, engine or deployment
    (not only in TP degree, nor only in a weight format with the same figures)."""
    key = (rec.deployment, rec.model, rec.hardware, rec.engine)
    same = (rec.tco_usd, rec.quality_score)
    return next((o for o in ranked[1:] if (o.deployment, o.model, o.hardware, o.engine) != key
                 or (o.precision != rec.precision and (o.tco_usd, o.quality_score) != same)), None)


def _cost_tie(rec: Option, ru: Option, cost_tie_pct: float) -> bool:
    """The two TCOs differ by less than quality.cost_tie_pct of the recommendation's."""
    return cost_tie_pct > 0 and abs(ru.tco_usd - rec.tco_usd) < cost_tie_pct / 100 * rec.tco_usd


def _tie_text(rec: Option, ru: Option, cost_tie_pct: float, quality: str) -> str:
    """Why a cost tie is one, and what is left to decide it on the same hardware."""
    dc = ru.tco_usd - rec.tco_usd
    text = (f"{_usd(abs(dc))} ({_share(abs(dc), rec.tco_usd)}) apart over the horizon ({_usd(rec.tco_usd)} "
            f"against {_usd(ru.tco_usd)}), under quality.cost_tie_pct ({cost_tie_pct:g} %), less than the cost "
            f"model can tell apart{quality}.")
    same = rec.deployment == "on_prem" and (rec.deployment, rec.model, rec.hardware, rec.num_gpus) == (
        ru.deployment, ru.model, ru.hardware, ru.num_gpus)
    latency = rec.ttft_p95_ms is not None and ru.ttft_p95_ms is not None
    if same and rec.engine != ru.engine:
        text += (f" The same model on as many {rec.hardware} with {ru.engine} instead of {rec.engine}: either serves "
                 "the load, so the engine your team operates" + (", or the latency below," if latency else "")
                 + " can decide.")
    elif same and rec.precision != ru.precision:
        text += (f" The same model on as many {rec.hardware} in {ru.precision} instead of {rec.precision}: quality "
                 "after quantization" + (" and the latency below decide." if latency else " decides."))
    return text


def _price_slope(o: Option) -> float:
    """d TCO / d (price of one GPU), from the cost model itself (linear in the price)."""
    x = o._ctx["bought"][o.details["replicas_needed"]].x
    base = float(np.asarray(onprem(x).tco_usd))
    return float(np.asarray(onprem(replace(x, gpu_price_usd=x.gpu_price_usd + 1000.0)).tco_usd)) - base


def why(rec: Option, ranked: list[Option], references: dict[str, Option | None], rejected: list,
        tolerance_pct: float, resolution: float, bench_name: str, failure_tie_pct: float,
        cost_tie_pct: float) -> list[str]:
    """The deciding reasons, in the order a buyer asks: against the runner-up (cost or quality), against
    cheaper options the policy forbids, and what the SLO excluded."""
    out: list[str] = []
    ru = _runner_up(rec, ranked)
    if ru is not None:
        dc = ru.tco_usd - rec.tco_usd
        cheapest = min(o.tco_usd for o in ranked)
        band = cheapest * (1 + tolerance_pct / 100)
        q_rec, q_ru = rec.quality_score, ru.quality_score
        won_on_failure = False  # dearer, ranked first because the runner-up falls short with one GPU failed
        if (tolerance_pct > 0 and rec.tco_usd <= band and ru.tco_usd <= band and q_rec is not None
                and (q_ru is None or q_rec > q_ru + resolution)):
            out.append(f"Against the runner-up {ru.id}: both cost within {tolerance_pct:g} % of the cheapest option, "
                       f"and this one scores higher on {bench_name} ({q_rec:.1f} against "
                       + (f"{q_ru:.1f}" if q_ru is not None else "no published figure")
                       + f"); it costs {_usd(abs(dc))} {'less' if dc >= 0 else 'more'} over the horizon.")
        elif dc > 0 and not _cost_tie(rec, ru, cost_tie_pct):
            out.append(f"Against the runner-up {ru.id}: {_usd(dc)} ({_share(dc, ru.tco_usd)}) cheaper over the "
                       f"horizon ({_usd(rec.tco_usd)} against {_usd(ru.tco_usd)})"
                       + (f", at {bench_name} {q_rec:,.1f} against {q_ru:,.1f}"
                          if q_rec is not None and q_ru is not None else "") + ".")
        elif won_on_failure := dc < 0 and short_after_gpu_failure(ru) and not short_after_gpu_failure(rec):
            left, need = gpu_failure_left(ru) or (0, 0)
            out.append(f"Against the runner-up {ru.id}: {_usd(-dc)} ({_share(-dc, ru.tco_usd)}) dearer over the "
                       f"horizon ({_usd(rec.tco_usd)} against {_usd(ru.tco_usd)}), but the runner-up falls short of "
                       f"the peak with one GPU failed ({left} replica(s) left, {need} needed) and this option does not "
                       f"(until the repair, which on most servers takes the whole server down: schedule it off-peak): "
                       f"within quality.failure_tie_pct ({failure_tie_pct:g} % of the TCO) that ranks it first.")
        elif dc != 0 and _cost_tie(rec, ru, cost_tie_pct):
            out.append(f"Against the runner-up {ru.id}: a tie on cost, " + _tie_text(
                rec, ru, cost_tie_pct, f", at {bench_name} {q_rec:,.1f} against {q_ru:,.1f}"
                if q_rec is not None and q_ru is not None else ""))
        elif dc == 0:
            out.append(f"Against the runner-up {ru.id}: the same cost ({_usd(rec.tco_usd)}); the tie is settled by "
                       f"quality, then latency.")
        else:
            out.append(f"Against the runner-up {ru.id}: {_usd(-dc)} ({_share(-dc, ru.tco_usd)}) dearer over the "
                       f"horizon ({_usd(rec.tco_usd)} against {_usd(ru.tco_usd)}), ranked first on quality, then "
                       "latency.")
        if not won_on_failure:  # else the line above said it
            out += _gpu_failure_line(rec, ru)
        out += _thinking_off_line(rec, ru)
        if rec.ttft_p95_ms is not None and ru.ttft_p95_ms is not None:
            thinking = any(o.details.get("thinking_tokens_mean") for o in (rec, ru))
            a, b = rec.answer_start_p95_ms, ru.answer_start_p95_ms
            out.append(f"Latency at the peak: TTFT p95 {rec.ttft_p95_ms:,.0f} ms against {ru.ttft_p95_ms:,.0f} ms, "
                       f"TPOT p95 {rec.tpot_p95_ms:,.1f} ms against {ru.tpot_p95_ms:,.1f} ms"
                       + (f", answer start p95 {a / 1e3:,.1f} s against {b / 1e3:,.1f} s (after the thinking)"
                          if thinking and a is not None and b is not None else "") + "; both within the SLO.")
    for kind, ref in references.items():
        if ref is None or ref.details.get("allowed", True) or ref.tco_usd >= rec.tco_usd:
            continue
        reasons = "; ".join(ref.details.get("policy_reasons", []))
        out.append(f"The cheapest {'API' if kind == 'api' else 'rented GPU'} option, {ref.id} at {_usd(ref.tco_usd)}, "
                   f"is cheaper but the policy forbids it ({reasons}).")
    slow = [r for r in rejected if r.reasons and r.reasons[0].startswith("latency:")]
    if slow:
        out.append(f"{len(slow)} layout(s) were excluded because they cannot meet the latency SLO, e.g. "
                   f"{slow[0].option} ({slow[0].reasons[0].split(': ', 1)[1]}).")
    return out


def _load_change(rec: Option, peak: float, per_day: float) -> list[dict[str, Any]]:
    """How much more peak load the purchase carries: the simulator-checked ceiling where the plan has one
    (:func:`llmplan.planner.search.load_ceiling`), else the analytic SLO-bound rate."""
    serving = rec.details["serving_replicas"]
    lc = rec.details.get("load_ceiling")
    analytic = serving * rec.details["per_replica_req_s"]
    if peak <= 0:
        return []
    if lc is None:
        cap, how = analytic, "the analytic SLO-bound rate, not simulated"
    elif lc["simulated_req_s"] is None:
        cap, how = analytic, (f"the analytic SLO-bound rate; the simulator met the SLO there in "
                              f"{lc['met_at_analytic']} of {lc['hours']} peak hours, and in {lc['met_at_lowest']} of "
                              f"{lc['hours']} at {fmt_sig(lc['lowest_tried_req_s'])}/s: the SLO holds only marginally")
    else:
        cap = lc["simulated_req_s"]
        how = (f"the simulator meets the SLO there in {lc['hours']} of {lc['hours']} peak hours" if cap == analytic else
               f"the simulator meets the SLO there in {lc['hours']} of {lc['hours']} peak hours; at the analytic "
               f"SLO-bound rate, {fmt_sig(analytic)}/s, it met it in {lc['met_at_analytic']} of {lc['hours']}")
    return [{"change": "load", "threshold_requests_per_day": per_day * cap / peak, "factor": cap / peak,
             "ceiling_req_s": cap, "analytic_req_s": analytic,
             "text": f"Load: the purchase carries a peak of up to {fmt_sig(cap)} requests/s on its {serving} serving "
                     f"replica(s) ({how}; today {fmt_sig(peak)}/s), that is up to {per_day * cap / peak:,.0f} "
                     f"requests/day with this daily profile (×{cap / peak:.2f} today's); beyond that it needs more "
                     "servers, and the ranking may change."}]


def _other_purchase(rec: Option, cat: Catalog, need: int, mode: str) -> tuple[Any, float, float]:
    """The option bought for `need` replicas in availability `mode` instead, with the TCO of the purchase it has
    and what the other adds to it: (purchase, TCO, extra TCO). Raises LlmplanError where it cannot be bought."""
    c = rec._ctx
    utilisation_of, active_of = option_load(rec)
    other = buy(c["d"], cat, c["finance"], need, mode, utilisation_of, active_of=active_of)
    base = float(np.asarray(onprem(c["bought"][rec.details["replicas_needed"]].x).tco_usd))
    return other, base, float(np.asarray(onprem(other.x).tco_usd)) - base


def _slow_purchase(rec: Option, need: int, cat: Catalog) -> str:
    """What the purchase for `need` replicas (same availability mode) adds to the option's TCO: the price of the
    option to keep open while the speed is measured."""
    base = rec._ctx["bought"][rec.details["replicas_needed"]].purchase
    try:
        more, tco, extra = _other_purchase(rec, cat, need, base.mode)
    except LlmplanError as exc:
        return f" (that purchase cannot be priced: {exc})"
    return (f" ({more.purchase.gpus} GPUs in {more.purchase.servers} server(s) instead of {base.gpus} in "
            f"{base.servers}: {_usd(extra)} more over the horizon, {_share(extra, tco)}, the price of keeping "
            "that option open)")


def _speed_change(rec: Option, cat: Catalog) -> list[dict[str, Any]]:
    """The purchase if the hardware runs at the slow end of the speed prediction's 80 % interval
    (:func:`llmplan.planner.search.speed_risk`)."""
    r = rec.details.get("speed_risk")
    if r is None:
        return []
    pct = 100 / r["slow_factor"]
    head = (f"Speed: at the slow end of the speed prediction's 80 % interval ({rec.engine} on {rec.hardware} "
            f"at {pct:.0f} % of the predicted speed; calibration {r['calibration']}, {r['level']})")
    serving, peak = r["serving_replicas"], r["peak_req_s"]
    if r["unattainable"]:
        tail = f", the SLO cannot be met by adding replicas ({r['unattainable']})."
    elif r["replicas_needed"] <= serving:
        tail = (f", the {serving} serving replica(s) carry {fmt_sig(r['carried_req_s'])} requests/s against "
                f"today's peak of {fmt_sig(peak)}/s: the SLO still holds.")
    else:
        tail = (f", the {serving} serving replica(s) carry {fmt_sig(r['carried_req_s'])} requests/s against "
                f"today's peak of {fmt_sig(peak)}/s: the peak would need {r['replicas_needed']} replicas"
                + _slow_purchase(rec, r["replicas_needed"], cat) + ". Measure one server at the peak's lengths "
                "before buying the rest.")
    if rec.details.get("dp_attention"):
        flag = rec._ctx["d"].engine.execution.dp_attention_option  # the engine's own flag (engines catalog)
        tail += (" Its data-parallel attention is modelled (the KV cache held once, a prompt's attention on one GPU),"
                 " not calibrated: no benchmark in the calibration data runs it, so this interval does not cover it;"
                 f" measure one server with and without {flag} before buying the rest.")
    return [{"change": "speed", **r, "text": head + tail}]


def _gpu_failure_line(rec: Option, ru: Option) -> list[str]:
    """Where the recommendation and the runner-up differ in surviving one failed GPU, say so: a few dollars
    should not hide that one of them stops with a single GPU."""
    a, b = gpu_failure_left(rec), gpu_failure_left(ru)
    if a is None or b is None or (a[0] >= a[1]) == (b[0] >= b[1]):
        return []
    if a[0] >= a[1]:
        return [f"With one GPU failed, this option still carries the peak ({a[0]} replica(s) left, {a[1]} needed); "
                f"the runner-up would not ({b[0]} left, {b[1]} needed)."]
    return [f"With one GPU failed, the runner-up would still carry the peak ({b[0]} replica(s) left, {b[1]} needed) "
            f"and this option would not ({a[0]} left, {a[1]} needed): weigh that against the cost difference."]


def _thinking_off_line(rec: Option, ru: Option) -> list[str]:
    """Where the plan was sized with thinking off and the recommendation's server cannot turn it off itself, the
    sizing holds only while every client sends the switch: say so, and whether the runner-up's server does it."""
    if rec.details.get("thinking_off_by") != "clients":
        return []
    line = (f"Thinking off rests on every client: {rec.engine} has no server-side switch for {rec.model} in the "
            "catalog's version, so a request without it thinks, generates more than this sizing counts and starts "
            "its answer later")
    if ru.details.get("thinking_off_by") == "server":
        line += f"; the runner-up's server ({ru.engine}) turns it off itself"
    return [line + "."]


def _availability_change(rec: Option, cat: Catalog) -> list[dict[str, Any]]:
    """With availability none, what one server failure leaves, and what a spare in another server
    (n_plus_1) would add to the TCO: a single point of failure said, and priced, not implied."""
    need = rec.details["replicas_needed"]
    bought = rec._ctx.get("bought", {}).get(need)
    if bought is None or bought.purchase.mode != "none":
        return []
    p = bought.purchase
    left = p.replicas - p.largest_slots
    if left >= need:
        return []
    out = {"change": "availability", "replicas_needed": need, "replicas_after_server_failure": left}
    head = (f"Availability: none was asked (availability.mode), and with one server down {left} of the {need} "
            f"replica(s) the peak needs remain" + (": the service stops until it is repaired" if left == 0 else "")
            + ". ")
    try:
        spare, base, extra = _other_purchase(rec, cat, need, "n_plus_1")
    except LlmplanError as exc:
        return [{**out, "text": head + f"A spare in another server is not possible here: {exc}."}]
    return [{**out, "n_plus_1_extra_usd": extra, "n_plus_1_servers": spare.purchase.servers,
             "text": head + f"A spare in another server (availability.mode: n_plus_1, {spare.purchase.servers} servers "
                            f"for {spare.purchase.replicas} replica(s)) adds {_usd(extra)} ({_share(extra, base)}) to "
                            "this option's TCO; plan with it to see whether the ranking changes."}]


def what_would_change(rec: Option, ranked: list[Option], references: dict[str, Option | None], peak: float,
                      per_day: float, tolerance_pct: float, cat: Catalog,
                      cost_tie_pct: float) -> list[dict[str, Any]]:
    """The nearest alternative and the input changes that flip the choice, each computed."""
    out: list[dict[str, Any]] = []
    ru = _runner_up(rec, ranked)
    if rec.deployment == "on_prem":
        out += _load_change(rec, peak, per_day)
        out += _speed_change(rec, cat)
        out += _availability_change(rec, cat)
        slope = _price_slope(rec)
        x = rec._ctx["bought"][rec.details["replicas_needed"]].x
        p0 = x.gpu_price_usd
        # the nearest option whose cost does not move with this accelerator's purchase price
        other = next((o for o in ranked[1:] if not (o.deployment == "on_prem" and o.hardware == rec.hardware)
                      and o.tco_usd >= rec.tco_usd), None)
        if other is not None and slope > 0 and p0 > 0:
            flip = p0 + (other.tco_usd - rec.tco_usd) / slope * 1000.0
            out.append({"change": "gpu_price", "accelerator": rec.hardware, "now_usd": p0, "threshold_usd": flip,
                        "option": other.id,
                        "text": f"Price: above {_usd(flip)} per {rec.hardware} (now {_usd(p0)}; each $1,000 more "
                                f"adds {_usd(slope)} to this option's TCO) {other.id} ({_usd(other.tco_usd)}) "
                                "costs less; set finance.gpu_price_usd to a quote to check."})
    if rec.deployment in ("api", "cloud_gpu"):
        owned = next((o for o in ranked if o.deployment == "on_prem"), None)
        if owned is not None and owned.tco_usd > rec.tco_usd > 0:
            pct = 100 * (owned.tco_usd / rec.tco_usd - 1)
            what = "per-token prices" if rec.deployment == "api" else "GPU-hour prices"
            out.append({"change": "rent_price", "option": owned.id, "threshold_pct": pct,
                        "text": f"Price: if the {what} of {rec.id} rose by more than {pct:,.0f} %, owning "
                                f"{owned.id} ({_usd(owned.tco_usd)} over the horizon) would cost less."})
    if ru is not None:
        tie = _cost_tie(rec, ru, cost_tie_pct)
        out.append({"change": "nearest_alternative", "option": ru.id, "tco_usd": ru.tco_usd,
                    "delta_usd": ru.tco_usd - rec.tco_usd, "cost_tie": tie,
                    "text": f"Nearest alternative: {ru.id} at {_usd(ru.tco_usd)} "
                            f"({'+' if ru.tco_usd >= rec.tco_usd else '−'}{_usd(abs(ru.tco_usd - rec.tco_usd))})"
                            + (f", a tie on cost (under quality.cost_tie_pct, {cost_tie_pct:g} %)" if tie else "")
                            + "."})
    for ref in references.values():
        if ref is None or ref.details.get("allowed", True) or ref.tco_usd >= rec.tco_usd:
            continue
        fields = sorted({POLICY_FIELDS.get(r.split(":", 1)[0], "the policy") for r in
                         ref.details.get("policy_reasons", [])})
        out.append({"change": "policy", "option": ref.id, "tco_usd": ref.tco_usd, "fields": fields,
                    "text": f"Policy: allowing {ref.id} (change {', '.join(fields)}) would save "
                            f"{_usd(rec.tco_usd - ref.tco_usd)} over the horizon ({_usd(ref.tco_usd)})."})
    return out


def advice(rec: Option | None, p: dict[str, Any], cat: Catalog, tolerance_pct: float,
           failure_tie_pct: float, cost_tie_pct: float) -> dict[str, Any] | None:
    if rec is None:
        return None
    bench = p["benchmark"]
    refs = p["references"]
    return {"what_to_buy": what_to_buy(rec, cat),
            "why": why(rec, p["ranked"], refs, p["rejected"], tolerance_pct, bench.resolution,
                       bench.name or bench.id, failure_tie_pct, cost_tie_pct),
            "what_would_change": what_would_change(rec, p["ranked"], refs, p["peak_rate_per_s"],
                                                   p["requests_per_day"], tolerance_pct, cat, cost_tie_pct)}
