"""`llmplan tco` / `llmplan compare`: the cost of owning a deployment over its life against
renting the same GPUs and paying per-token APIs, with break-even, hybrid, uncertainty and energy.

Inputs come from the catalog (prices, server data, regions, cost assumptions with ranges) and
the user's overrides; the formulas are in :mod:`llmplan.cost.model`.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field

from ..catalog import Catalog
from ..catalog.schema import ApiPrice, CloudOffer
from ..errors import LlmplanError
from ..serving.api import ServeRequest, capacity, load_workload, replica_capacity_req_s, replica_model
from ..serving.cluster import replica_spec
from ..serving.workload import days_per_year, hourly_weights, stated_load
from ..specs import MIN_YEARS, Cli, Deployment, Name, NameOrPath, resolve
from ..strict import StrictModel
from ..units import fmt_sig
from .model import (
    MONTHS_PER_YEAR,
    OnPremInputs,
    OnPremResult,
    api_cost,
    breakeven_month,
    cloud_fleet_cost,
    onprem,
)
from .ownership import Owned, assumption, buy, fleet_load


class Finance(StrictModel):
    """Overrides of the catalog's cost assumptions (all optional)."""

    CLI: ClassVar[dict[str, Cli]] = {
        "gpu_tdp_w": Cli(("--gpu-tdp",)),
        "licences": Cli(("--licence",), "Software licence to pay for (catalog id, e.g. nvidia-ai-enterprise; "
                        "repeatable). The engine adds what it requires."),
        "residual_value_pct": Cli(("--residual-pct",)),
        "facility": Cli(("--facility",), "Buy only rack servers (datacenter) or only machines under a desk "
                        "(office); default: the cheaper."),
        "horizon_years": Cli(("--horizon-years",)),
        "region": Cli(("--region",), "Region id for energy, carbon, PUE, colocation."),
        "electricity_usd_per_kwh": Cli(("--electricity",), "USD per kWh."),
        "pue": Cli(("--pue",)),
        "discount_rate": Cli(("--discount-rate",)),
        "depreciation_years": Cli(("--depreciation-years",)),
        "utilisation_pct": Cli(("--utilisation",), "Override the workload's %."),
        "gpu_price_usd": Cli(("--gpu-price",), "USD per accelerator."),
        "server_price_usd": Cli(("--server-price",), "USD per server without GPUs."),
        "staff_usd_per_fte_year": Cli(("--staff-cost",), "USD per FTE-year, loaded."),
    }

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    horizon_years: float = Field(default=4, ge=MIN_YEARS, le=30)
    region: Name | None = Field(default=None, description="region id (electricity, carbon, PUE, colocation)")
    electricity_usd_per_kwh: float | None = Field(default=None, ge=0, le=10)
    pue: float | None = Field(default=None, ge=1, le=3)
    discount_rate: float | None = Field(default=None, ge=0, le=1, description="per year, as a fraction (0.08)")
    depreciation_years: float | None = Field(default=None, ge=MIN_YEARS, le=30, description="accounting life for "
                                             "the reported straight-line depreciation (not the cash TCO)")
    residual_value_pct: float | None = Field(default=None, ge=0, le=100, description="resale value at the "
                                             "horizon, % of hardware (default: the catalog's resale curve)")
    maintenance_pct_per_year: float | None = Field(default=None, ge=0, le=100)
    staff_fte_base: float | None = Field(default=None, ge=0, le=100, description="FTE to run the deployment "
                                         "whatever its size")
    staff_fte_per_server: float | None = Field(default=None, ge=0, le=100, description="FTE per server on top")
    staff_usd_per_fte_year: float | None = Field(default=None, ge=0, le=1e7)
    licences: tuple[Name, ...] = Field(default=(), description="software licence ids to pay for (catalog "
                                       "software_licences, e.g. nvidia-ai-enterprise); engines add what they need")
    software_usd_per_gpu_year: float | None = Field(default=None, ge=0, le=1e6, description="other software "
                                                    "you pay per GPU and year (charged as given)")
    colocation_usd_per_kw_month: float | None = Field(default=None, ge=0, le=1e4, description="per kW of "
                                                      "contracted capacity (the servers' maximum power)")
    utilisation_pct: float | None = Field(default=None, ge=0.1, le=100)
    gpu_price_usd: float | None = Field(default=None, gt=0, le=1e8, description="per accelerator (appliances: "
                                        "the machine)")
    gpu_tdp_w: float | None = Field(default=None, gt=0, le=1e5, description="watts per accelerator, where the "
                                    "catalog has none")
    server_price_usd: float | None = Field(default=None, ge=0, le=1e9, description="host without its GPUs, per "
                                           "server")
    facility: Literal["datacenter", "office"] | None = Field(default=None, description="buy only rack servers "
                                                             "(datacenter) or only machines under a desk (office); "
                                                             "default: whichever is cheaper")


class TcoRequest(ServeRequest):
    """A deployment, a workload, the finance assumptions and the alternatives to compare."""

    CLI: ClassVar[dict[str, Cli]] = {
        "fixed_replicas": Cli(("--replicas",), "Replicas that carry the load (default: sized for the workload's "
                              "SLOs by `capacity`); fewer than the peak needs is refused."),
        "availability": Cli(("--availability",), "none, n_plus_1 (the peak carried with any one server down) or "
                            "ha_pair (two independent halves)."),
        "max_servers": Cli(("--max-servers",)),
        "api_ids": Cli(("--api",), "API price id to compare (repeatable)."),
        "draws": Cli(("--draws",)),
    }

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "llama-3.1-8b", "gpu": "h100-sxm", "workload": "chat", "requests_per_day": 50000,
         "fixed_replicas": 1, "draws": 200, "finance": {"horizon_years": 4, "region": "eu"}}]})

    workload: NameOrPath = "chat"
    finance: Finance = Field(default_factory=Finance)
    alternatives: tuple[Literal["cloud_gpu", "api"], ...] = ("cloud_gpu", "api")
    api_ids: tuple[Name, ...] = Field(default=(), description="API price ids to compare (default: the cheapest "
                                     "host of the same open model)")
    draws: int = Field(default=10_000, ge=0, le=1_000_000, description="Monte Carlo draws (0: none)")
    fixed_replicas: int | None = Field(default=None, ge=1, le=100_000, description="replicas that carry the load "
                                       "(default: capacity planning at the workload's peak); availability "
                                       "spares are added in other servers")
    availability: Literal["none", "n_plus_1", "ha_pair"] = Field(default="none", description="spare capacity in "
                                                                 "another server: n_plus_1 or ha_pair")
    max_servers: int | None = Field(default=None, ge=1, le=100_000, description="most servers the site can take")


def _num(x: object) -> float:
    return float(np.asarray(x))


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def peak_need(peak_req_s: float, replica_req_s: float) -> int:
    """Replicas that carry the peak at all (each at most at its saturated rate)."""
    return max(1, math.ceil(peak_req_s / replica_req_s - 1e-9)) if replica_req_s > 0 else 1


def _replicas(req: TcoRequest, cat: Catalog, peak: float, mu: float, processes: int) -> tuple[int, Any]:
    """Replicas that carry the load: given (and checked against the peak) or capacity-planned."""
    floor = peak_need(peak, mu)
    if req.fixed_replicas:
        if req.fixed_replicas < floor:
            raise LlmplanError(f"{req.fixed_replicas} replica(s) (--replicas, fixed_replicas) cannot carry the peak of "
                               f"{fmt_sig(peak)} requests/s: one replica serves at most {fmt_sig(mu)}/s (saturated), "
                               f"so the peak needs at least {floor}; leave it out to size for the SLOs")
        return req.fixed_replicas, None
    plan = capacity(req, cat, processes=processes)
    if not plan["feasible"]:
        raise LlmplanError("no number of replicas meets the workload's SLOs: " + plan["reason"])
    return max(plan["replicas"], floor), plan


def purchase_summary(o: Owned, per_replica_req_s: float, peak: float) -> dict[str, Any]:
    """What was bought, what it holds, where the spares are and what the idle capacity could carry."""
    p = o.purchase
    needed = p.replicas_needed * p.gpus_per_replica
    spare_req_s = max(p.replicas - p.replicas_needed, 0) * per_replica_req_s
    lines = [{"server": c.server_id, "name": c.server_name, "kind": c.kind, "facility": c.facility, "count": n,
              "gpus_each": c.gpus, "replicas_each": c.slots, "host_usd_each": c.host_usd,
              "gpu_price_usd": c.gpu_price_usd, "hardware_usd_each": c.hardware_usd, "max_power_w_each": c.max_w,
              "rack_units_each": c.rack_units, "host_estimate": c.host_estimate} for c, n in p.lines]
    return {"lines": lines, "servers": p.servers, "facility": p.facility, "availability": p.mode,
            "gpus_needed": needed, "gpus_bought": p.gpus, "idle_gpus": p.idle_gpus,
            "replicas_needed": p.replicas_needed, "replicas_placed": p.replicas,
            "replicas_after_worst_failure": p.serving_replicas, "placement": p.placement(),
            "extra_capacity_req_s": spare_req_s, "peak_rate_per_s": peak,
            "rack_units": sum((c.rack_units or 0) * n for c, n in p.lines) or None,
            "contracted_kw": sum(c.max_w * n for c, n in p.lines) / 1000}


def bought_note(s: dict[str, Any], basis: str) -> str:
    more = s["gpus_bought"] - s["gpus_needed"]
    text = f"{s['gpus_needed']} GPU(s) needed for the peak, {s['gpus_bought']} bought"
    if more > 0:
        text += (f"; the {more} beyond the need ({s['replicas_placed'] - s['replicas_needed']} more replica(s)"
                 + (f", {s['idle_gpus']} GPU(s) idle" if s["idle_gpus"] else "")
                 + f") could carry {fmt_sig(s['extra_capacity_req_s'])} requests/s more ({basis})")
        if s["availability"] != "none":
            text += "; that includes the availability spares"
    return text


def _workload(req: TcoRequest, cat: Catalog) -> Any:
    w = load_workload(req.workload, cat)
    if req.rate_per_s is not None:
        w = w.model_copy(update={"rate_per_s": req.rate_per_s, "requests_per_day": None, "trace": None})
    if req.requests_per_day is not None:
        w = w.model_copy(update={"requests_per_day": req.requests_per_day, "rate_per_s": None, "trace": None})
    if w.requests_per_day is None and w.rate_per_s is None:
        raise LlmplanError("the workload needs requests per day or a rate: give --requests-per-day or --rate")
    return w


def tco(req: TcoRequest, cat: Catalog, processes: int = 1) -> dict[str, Any]:
    """Owning the deployment (what is bought and every cost line), against renting and APIs."""
    d = resolve(req, cat)
    given = _workload(req, cat)
    w, thinking_note = stated_load(given, d.model)  # what the model generates: its thinking + the answer
    spec = replica_spec(d, cat, req.max_num_seqs, req.max_num_batched_tokens, req.gpu_memory_utilization)
    mu = replica_capacity_req_s(d, cat, spec, w)
    # traffic by hour (requests/s), the replicas each hour needs, tokens per year
    weights = hourly_weights(w.profile, cat) if w.requests_per_day is not None else np.full(24, 1 / 24)
    per_day = w.requests_per_day if w.requests_per_day is not None else (w.rate_per_s or 0) * 86400
    rate_h = per_day * weights / 3600
    replicas, plan = _replicas(req, cat, float(rate_h.max()), mu, processes)
    need_h = on_demand_replicas(rate_h, mu)
    i_mean, o_mean = given.lengths("input").mean, given.lengths("output").mean
    days = days_per_year(w, cat)  # the days a year that carry this day's load (office hours: working days)
    in_tok_year = per_day * days * i_mean
    out_tok_year = per_day * days * o_mean  # the workload's own answers: the cost per 1M tokens counts these
    billed_out_year = per_day * days * w.lengths("output").mean  # an API bills a model's thinking as output
    tokens_horizon = (in_tok_year + out_tok_year) * req.finance.horizon_years

    alone_s = float(np.asarray(replica_model(d, cat, spec, w).e2e_s)[1])  # one request of the mean lengths
    util_of, active_of = fleet_load(rate_h, mu, alone_s, days, req.finance.utilisation_pct)
    owned = buy(d, cat, req.finance, replicas, req.availability, util_of, req.max_servers, active_of=active_of)
    x, p = owned.x, owned.purchase
    notes = list(owned.notes)
    summary = purchase_summary(owned, mu, float(rate_h.max()))
    notes.insert(0, bought_note(summary, "at saturation"))
    if thinking_note:
        notes.append(thinking_note)
    r = onprem(x)
    months = int(round(req.finance.horizon_years * MONTHS_PER_YEAR))
    owned_cum = r.cumulative_by_month(months)
    per_m = 1e6 / tokens_horizon if tokens_horizon else math.nan
    spares = {"n_plus_1": 1, "ha_pair": replicas}.get(req.availability, 0)
    rented_gpus = (replicas + spares) * d.layout.num_gpus
    alts = []
    if "cloud_gpu" in req.alternatives:
        alts += cloud_alternatives(d, cat, rented_gpus, on_demand_replicas(rate_h, mu, spares), days,
                                   req.finance.horizon_years, months, owned_cum, per_m)
    if "api" in req.alternatives:
        api = api_alternatives(d, cat, req.api_ids, in_tok_year, billed_out_year, req.finance.horizon_years, months,
                               owned_cum, per_m)
        if not api:
            notes.append(f"no API in the catalog serves {d.model.id}; compare others with --api ID "
                         "(`llmplan catalog api-prices`)")
        alts += api
    same_api, api_usd_per_req_s_year = _same_api(alts, req.finance.horizon_years, per_day)
    hybrid = hybrid_split(d, cat, req.finance, need_h, days, req.finance.horizon_years, replicas, util_of,
                          active_of, "cloud_gpu" in req.alternatives, rate_h, mu, api_usd_per_req_s_year,
                          same_api["name"] if same_api else None)
    out: dict[str, Any] = {
        "deployment": {"model": d.model_source, "gpu": d.accelerator.id, "engine": d.engine.id,
                       "precision": d.weight_format.id, "replicas": p.replicas, "replicas_needed": replicas,
                       "gpus_per_replica": d.layout.num_gpus, "gpus": p.gpus, "servers": p.servers,
                       "tp": d.layout.tp, "pp": d.layout.pp, "availability": req.availability},
        "purchase": summary,
        "workload": {"requests_per_day": per_day, "days_per_year": days, "input_tokens_mean": i_mean,
                     "output_tokens_mean": o_mean,
                     "tokens_per_year": in_tok_year + out_tok_year, "peak_rate_per_s": float(rate_h.max()),
                     "replica_capacity_req_s": mu, "utilisation_pct": x.utilisation_pct, "active_pct": x.active_pct},
        "horizon_years": req.finance.horizon_years,
        **cost_lines(r, x, owned),
        "cost_per_million_tokens_usd": _num(r.tco_usd) * per_m,
        "energy_kwh_per_million_tokens": _num(r.energy_kwh_per_year) * req.finance.horizon_years * per_m,
        "emissions_kg_per_million_tokens": _num(r.emissions_kg_per_year) * req.finance.horizon_years * per_m,
        "cumulative_usd_by_month": [_round(v) for v in owned_cum.tolist()],
        "alternatives": alts, "hybrid": hybrid,
        "assumptions": {f.name: _plain(getattr(x, f.name)) for f in fields(x)},
        "capacity_plan": plan, "notes": notes,
    }
    if req.draws:
        from .uncertainty import monte_carlo, tornado

        cheapest = min((a for a in alts), key=lambda a: a["tco_usd"], default=None)
        out["uncertainty"] = monte_carlo(x, owned.ranges, req.draws, req.seed, tokens_horizon, cheapest)
        out["sensitivity"] = tornado(x, owned.ranges)
    return out


def _same_api(alts: list[dict], horizon: float, per_day: float) -> tuple[dict | None, float | None]:
    """The same model behind an API, and its price per (request/s sustained for a year): its yearly bill over
    the mean request rate (None without one)."""
    same_api = next((a for a in alts if a["kind"] == "api" and a.get("same_model")), None)
    if same_api is None or not per_day:
        return same_api, None
    return same_api, same_api["tco_usd"] / horizon / (per_day / 86400)


def _plain(v: Any) -> Any:
    return [list(t) for t in v] if isinstance(v, tuple) else v


def cost_lines(r: OnPremResult, x: OnPremInputs, owned: Owned) -> dict[str, Any]:
    """Every line item of owning, with the totals they add up to."""
    return {
        "capex_usd": _num(r.capex_usd),
        "capex_items_usd": {k: _num(v) for k, v in r.capex_items.items()},
        "opex_usd_per_year": _num(r.opex_usd_per_year),
        "opex_items_usd_per_year": {k: _num(v) for k, v in r.opex_items_per_year.items()},
        "licences": [{**lic, "units": x.gpus if lic["basis"] == "per_gpu" else x.servers,
                      "paid_years": max(0.0, x.horizon_years - lic["bundled_years"])} for lic in owned.licences],
        "residual_value_usd": _num(r.residual_usd), "residual_value_pct": _num(x.residual_pct),
        "depreciation_usd_per_year": _num(r.depreciation_usd_per_year),
        "tco_usd": _num(r.tco_usd), "npv_usd": _num(r.npv_usd),
        "power_kw": {"contracted": _num(r.contracted_kw), "metered_average": _num(r.it_kw)},
        "staff_fte": _num(x.staff_fte_base + x.staff_fte_per_server * x.servers),
        "energy_kwh_per_year": _num(r.energy_kwh_per_year),
        "emissions_kg_per_year": _num(r.emissions_kg_per_year),
    }


def _offer_price(o: CloudOffer, kind: str) -> float | None:
    return getattr(o, f"usd_per_gpu_hour_{kind}")


PRICINGS = (("on_demand", False), ("spot", False), ("1y", True), ("3y", True))


def on_demand_replicas(rate_h: np.ndarray, per_replica_req_s: float, spares: int = 0) -> np.ndarray:
    """Replicas rented on demand each hour of a loaded day: those the hour's rate needs plus the spares the
    availability asks for, none in an hour without load (a profile's idle days rent nothing at all)."""
    return np.where(rate_h > 0, np.ceil(rate_h / per_replica_req_s) + spares, 0)


def cloud_alternatives(d: Deployment, cat: Catalog, gpus: int, need_h: np.ndarray, days: float, horizon: float,
                       months: int, owned_cum: np.ndarray, per_m: float, offers: list[CloudOffer] | None = None,
                       ) -> list[dict]:
    """The same accelerator rented: the cheapest offer per pricing model. On-demand and spot follow
    the hourly need (autoscaled replicas) on the `days` a year that carry the load; commitments pay the whole
    fleet every hour of the term."""
    offers = offers if offers is not None else [o for o in cat.cloud_offers if o.accelerator == d.accelerator.id]
    gpu_hours_used = float(need_h.sum() * days * d.layout.num_gpus)
    out = []
    for kind, committed in PRICINGS:
        priced = [(p, o) for o in offers if (p := _offer_price(o, kind)) is not None]
        if not priced:
            continue
        price, offer = min(priced, key=lambda t: (t[0], t[1].id))
        total = cloud_fleet_cost(gpus, gpu_hours_used / max(gpus, 1), price, horizon, committed)
        cum = np.arange(months + 1) * total / max(months, 1)
        out.append({"name": f"cloud {kind.replace('_', '-')} ({offer.provider} {offer.region})", "kind": "cloud_gpu",
                    "pricing": kind, "offer": offer.id, "usd_per_gpu_hour": price, "tco_usd": total,
                    "cost_per_million_tokens_usd": total * per_m,
                    "breakeven_month": breakeven_month(owned_cum, cum),
                    "cumulative_usd_by_month": [_round(v) for v in cum.tolist()],
                    "provider_country": offer.provider_country, "region_country": offer.region_country,
                    "sovereign": offer.sovereign, "source": offer.source, "as_of": offer.as_of})
    return out


def api_alternatives(d: Deployment, cat: Catalog, ids: tuple[str, ...], in_tok: float, out_tok: float,
                     horizon: float, months: int, owned_cum: np.ndarray, per_m: float,
                     prices: list[ApiPrice] | None = None) -> list[dict]:
    cached_share = assumption(cat, "api_cached_share_pct")[0]
    pool = prices if prices is not None else list(cat.api_prices)
    chosen: list[ApiPrice] = [cat.api_prices.get(i) for i in ids]
    if not ids:
        same = [p for p in pool if p.catalog_model == d.model.id]

        def bill(p: ApiPrice) -> float:
            return float(api_cost(in_tok, out_tok, cached_share, p.input_usd_per_mtok, p.output_usd_per_mtok,
                                  p.cached_input_usd_per_mtok if p.cached_input_usd_per_mtok is not None
                                  else p.input_usd_per_mtok))

        if same:  # the same open model served by a host: the like-for-like comparison
            chosen.append(min(same, key=lambda p: (bill(p), p.id)))
    out = []
    for p in chosen:
        cached = p.cached_input_usd_per_mtok if p.cached_input_usd_per_mtok is not None else p.input_usd_per_mtok
        total = float(api_cost(in_tok, out_tok, cached_share, p.input_usd_per_mtok, p.output_usd_per_mtok, cached)
                      ) * horizon
        cum = np.arange(months + 1) * total / max(months, 1)
        same_model = p.catalog_model == d.model.id
        out.append({"name": f"API {p.provider} {p.model}", "kind": "api", "api": p.id, "same_model": same_model,
                    "tco_usd": total, "cost_per_million_tokens_usd": total * per_m,
                    "breakeven_month": breakeven_month(owned_cum, cum),
                    "cumulative_usd_by_month": [_round(v) for v in cum.tolist()],
                    "provider_country": p.provider_country, "data_regions": list(p.data_regions),
                    "weights": p.weights, "source": p.source, "as_of": p.as_of})
    return out


def hybrid_split(d: Deployment, cat: Catalog, f: Finance, need_h: np.ndarray, days: float, horizon: float,
                 replicas: int, util_of: Any, active_of: Any, rent: bool, rate_h: np.ndarray | None = None,
                 mu: float = 0.0, api_usd_per_req_s_year: float | None = None,
                 api_name: str | None = None) -> dict[str, Any] | None:
    """Own k replicas for the base load and send the rest of each hour's traffic elsewhere: to
    on-demand replicas rented hour by hour, or to the same model behind an API. k runs from 0
    (nothing owned) to the peak (everything owned); the cheapest total over the horizon wins.
    Each k is bought as the cheapest purchase that holds k replicas."""
    offers = [o for o in cat.cloud_offers
              if rent and o.accelerator == d.accelerator.id and o.usd_per_gpu_hour_on_demand]  # rent: cloud allowed
    price = min(o.usd_per_gpu_hour_on_demand for o in offers) if offers else None  # type: ignore[type-var]
    if price is None and api_usd_per_req_s_year is None:
        return None
    best: dict[str, Any] | None = None
    for k in range(0, int(max(need_h.max(), replicas)) + 1):
        owned = _num(onprem(buy(d, cat, f, k, "none", util_of, active_of=active_of).x).tco_usd) if k else 0.0
        options = []
        if price is not None:
            rented_h = float(np.maximum(need_h - k, 0).sum() * days * d.layout.num_gpus)
            options.append(("cloud on-demand", rented_h * price * horizon, {"rented_gpu_hours_per_year": rented_h,
                                                                              "usd_per_gpu_hour": price}))
        if api_usd_per_req_s_year is not None and rate_h is not None:
            overflow = float(np.maximum(rate_h - k * mu, 0).mean())  # mean req/s beyond the owned capacity
            options.append((api_name or "API", overflow * api_usd_per_req_s_year * horizon,
                            {"overflow_requests_per_s_mean": overflow}))
        for via, burst, extra in options:
            total = owned + burst
            if best is None or total < best["tco_usd"] - 1e-9:
                best = {"owned_replicas": k, "peaks_via": via, "tco_usd": total, "owned_usd": owned,
                        "burst_usd": burst, **extra}
    assert best is not None
    best["all_owned_replicas"] = replicas
    return best
