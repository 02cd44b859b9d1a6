"""`llmplan tco` / `llmplan compare`: the cost of owning a deployment over its life against
renting the same GPUs and paying per-token APIs, with break-even, hybrid, uncertainty and energy.

Inputs come from the catalog (prices, server data, regions, cost assumptions with ranges) and
the user's overrides; the formulas are in :mod:`llmplan.cost.model`.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from ..catalog import Catalog
from ..catalog.schema import Accelerator, ApiPrice, CloudOffer, Server
from ..errors import LlmplanError
from ..serving.api import ServeRequest, capacity, load_workload, replica_capacity_req_s
from ..serving.cluster import replica_spec
from ..serving.workload import hourly_weights
from ..specs import MIN_YEARS, Deployment, Name, NameOrPath, resolve
from ..strict import StrictModel
from .model import (
    MONTHS_PER_YEAR,
    OnPremInputs,
    api_cost,
    breakeven_month,
    cloud_fleet_cost,
    onprem,
)
from .uncertainty import FIELD_OF, estimated_electricity_note


class Finance(StrictModel):
    """Overrides of the catalog's cost assumptions (all optional)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    horizon_years: float = Field(default=4, ge=MIN_YEARS, le=30)
    region: Name | None = Field(default=None, description="region id (electricity, carbon, PUE, colocation)")
    electricity_usd_per_kwh: float | None = Field(default=None, ge=0, le=10)
    pue: float | None = Field(default=None, ge=1, le=3)
    discount_rate: float | None = Field(default=None, ge=0, le=1, description="per year, as a fraction (0.08)")
    depreciation_years: float | None = Field(default=None, ge=MIN_YEARS, le=30)
    residual_value_pct: float | None = Field(default=None, ge=0, le=100)
    maintenance_pct_per_year: float | None = Field(default=None, ge=0, le=100)
    staff_fte_per_server: float | None = Field(default=None, ge=0, le=100)
    staff_usd_per_fte_year: float | None = Field(default=None, ge=0, le=1e7)
    software_usd_per_gpu_year: float | None = Field(default=None, ge=0, le=1e6)
    colocation_usd_per_kw_month: float | None = Field(default=None, ge=0, le=1e4)
    utilisation_pct: float | None = Field(default=None, ge=0.1, le=100)
    gpu_price_usd: float | None = Field(default=None, gt=0, le=1e8)
    server_price_usd: float | None = Field(default=None, ge=0, le=1e9, description="host without its GPUs")


class TcoRequest(ServeRequest):
    """A deployment, a workload, the finance assumptions and the alternatives to compare."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "llama-3.1-8b", "gpu": "h100-sxm", "workload": "chat", "requests_per_day": 50000,
         "fixed_replicas": 1, "draws": 200, "finance": {"horizon_years": 4, "region": "eu"}}]})

    workload: NameOrPath = "chat"
    finance: Finance = Field(default_factory=Finance)
    alternatives: tuple[Literal["cloud_gpu", "api"], ...] = ("cloud_gpu", "api")
    api_ids: tuple[Name, ...] = Field(default=(), description="API price ids to compare (default: the cheapest "
                                     "host of the same open model)")
    draws: int = Field(default=10_000, ge=0, le=1_000_000, description="Monte Carlo draws (0: none)")
    fixed_replicas: int | None = Field(default=None, ge=1, le=100_000, description="replicas owned (default: "
                                       "capacity planning at the workload's peak)")


def _assumption(cat: Catalog, name: str) -> tuple[float, float, float]:
    a = cat.cost_assumptions.find(name)
    if a is None:
        raise LlmplanError(f"the catalog has no cost assumption {name!r}")
    return a.value, a.low, a.high


def _server_for(acc: Accelerator, cat: Catalog) -> Server | None:
    if acc.typical_server:
        s = cat.servers.find(acc.typical_server)
        if s is not None:
            return s
    return next((s for s in cat.servers if s.accelerator == acc.id), None)


def hardware_prices(acc: Accelerator, cat: Catalog, f: Finance) -> tuple[float, float, float, int, list[str]]:
    """(GPU price, host price per server, host power W, GPUs per server, notes). Boards with a
    server entry (HGX, OAM) are bought whole; cards without one are added one by one."""
    notes = []
    srv = _server_for(acc, cat)
    per_server = srv.gpu_count if srv else (acc.max_per_server or 1)
    gpu_price = f.gpu_price_usd or (acc.price.usd if acc.price else None)
    if gpu_price is None and srv and srv.total_cost_usd and srv.host_cost_usd is not None:
        gpu_price = (srv.total_cost_usd - srv.host_cost_usd) / srv.gpu_count
    if gpu_price is None:
        raise LlmplanError(f"the catalog has no purchase price for {acc.id}; give --gpu-price (USD per device; finance.gpu_price_usd in a scenario or the Python API)")
    if f.server_price_usd is not None:
        host = f.server_price_usd
    elif srv and srv.host_cost_usd is not None:
        host = srv.host_cost_usd
    elif srv and srv.total_cost_usd:
        host = max(srv.total_cost_usd - srv.gpu_count * gpu_price, 0.0)
        notes.append(f"host price = {srv.id} total {srv.total_cost_usd:,.0f} − {srv.gpu_count} × GPU price")
    else:
        pct, _, _ = _assumption(cat, "host_cost_pct_of_gpus")
        host = per_server * gpu_price * pct / 100
        notes.append(f"no server price for {acc.id}: host (non-GPU) cost taken as {pct:g} % of its GPUs")
    if srv and srv.host_power_w is not None:
        host_w = srv.host_power_w
    else:
        pct, _, _ = _assumption(cat, "host_power_pct_of_gpu_tdp")
        host_w = per_server * (acc.tdp_w or 0) * pct / 100
        notes.append(f"host power taken as {pct:g} % of the GPUs' TDP")
    if not acc.tdp_w:
        notes.append(f"{acc.id} has no TDP in the catalog: its energy is not counted")
    return gpu_price, host, host_w, per_server, notes


def onprem_inputs(d: Deployment, cat: Catalog, f: Finance, servers: float, utilisation_pct: float,
                  gpus: float | None = None) -> tuple[OnPremInputs, list[str]]:
    """Inputs for `servers` servers; `gpus` when cards are installed one by one (no whole boards)."""
    acc = d.accelerator
    gpu_price, host, host_w, per_server, notes = hardware_prices(acc, cat, f)
    region = cat.regions.get(f.region) if f.region else None
    vals = {field: _assumption(cat, aid)[0] for aid, field in FIELD_OF.items()}  # keyed by OnPremInputs field
    if region is not None:
        vals["electricity_usd_per_kwh"] = region.electricity_usd_per_kwh
        vals["pue"] = region.pue
        if region.colocation_usd_per_kw_month is not None:
            vals["colocation_usd_per_kw_month"] = region.colocation_usd_per_kw_month
    for k in vals:
        v = getattr(f, k, None)
        if v is not None:
            vals[k] = v
    if f.discount_rate is not None:
        vals["discount_rate_pct"] = f.discount_rate * 100
    vals["utilisation_pct"] = f.utilisation_pct or utilisation_pct
    if (label := estimated_electricity_note(region, f)) is not None:
        notes.append(label)
    carbon = region.carbon_g_per_kwh if region else _assumption(cat, "carbon_g_per_kwh")[0]
    return OnPremInputs(
        servers=servers, gpus_per_server=per_server, server_price_usd=host, gpu_price_usd=gpu_price,
        gpu_tdp_w=acc.tdp_w or 0.0, host_power_w=host_w, horizon_years=f.horizon_years,
        depreciation_years=vals["depreciation_years"], residual_value_pct=vals["residual_value_pct"],
        install_pct=vals["install_pct"], network_usd_per_gpu=vals["network_usd_per_gpu"] if servers > 1 else 0.0,
        storage_usd_per_server=vals["storage_usd_per_server"],
        maintenance_pct_per_year=vals["maintenance_pct_per_year"],
        staff_fte_per_server=vals["staff_fte_per_server"], staff_usd_per_fte_year=vals["staff_usd_per_fte_year"],
        software_usd_per_gpu_year=vals["software_usd_per_gpu_year"],
        electricity_usd_per_kwh=vals["electricity_usd_per_kwh"], pue=vals["pue"],
        colocation_usd_per_kw_month=vals["colocation_usd_per_kw_month"], utilisation_pct=vals["utilisation_pct"],
        busy_power_pct_of_tdp=vals["busy_power_pct_of_tdp"], idle_power_pct_of_tdp=vals["idle_power_pct_of_tdp"],
        discount_rate_pct=vals["discount_rate_pct"], carbon_g_per_kwh=carbon, gpus=gpus), notes


def _num(x: object) -> float:
    return float(np.asarray(x))


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def tco(req: TcoRequest, cat: Catalog, processes: int = 1) -> dict[str, Any]:
    d = resolve(req, cat)
    w = load_workload(req.workload, cat)
    if req.rate_per_s is not None:
        w = w.model_copy(update={"rate_per_s": req.rate_per_s, "requests_per_day": None, "trace": None})
    if req.requests_per_day is not None:
        w = w.model_copy(update={"requests_per_day": req.requests_per_day, "rate_per_s": None, "trace": None})
    if w.requests_per_day is None and w.rate_per_s is None:
        raise LlmplanError("the workload needs requests per day or a rate: give --requests-per-day or --rate")
    spec = replica_spec(d, cat, req.max_num_seqs, req.max_num_batched_tokens, req.gpu_memory_utilization)
    mu = replica_capacity_req_s(d, cat, spec, w)
    notes: list[str] = []
    if req.fixed_replicas:
        replicas = req.fixed_replicas
        plan = None
    else:
        plan = capacity(req, cat, processes=processes)
        if not plan["feasible"]:
            raise LlmplanError("no number of replicas meets the workload's SLOs: " + plan["reason"])
        replicas = plan["replicas"]
    # traffic by hour (requests/s), the replicas each hour needs, tokens per year
    weights = hourly_weights(w.profile, cat) if w.requests_per_day is not None else np.full(24, 1 / 24)
    per_day = w.requests_per_day if w.requests_per_day is not None else (w.rate_per_s or 0) * 86400
    rate_h = per_day * weights / 3600
    need_h = np.where(rate_h > 0, np.ceil(rate_h / mu), 0)
    i_mean, o_mean = w.lengths("input").mean, w.lengths("output").mean
    in_tok_year = per_day * 365 * i_mean
    out_tok_year = per_day * 365 * o_mean
    tokens_horizon = (in_tok_year + out_tok_year) * req.finance.horizon_years
    util = float(100 * np.mean(rate_h / (replicas * mu))) if replicas * mu > 0 else 0.0
    gpus = replicas * d.layout.num_gpus
    gpus_per_server = hardware_prices(d.accelerator, cat, req.finance)[3]
    servers = math.ceil(gpus / gpus_per_server)
    whole_boards = _server_for(d.accelerator, cat) is not None
    x, more = onprem_inputs(d, cat, req.finance, servers, util, gpus=None if whole_boards else gpus)
    notes += more
    if whole_boards and servers * gpus_per_server > gpus:
        notes.append(f"{gpus} GPUs are needed; servers are bought whole: {servers} × {gpus_per_server} = "
                     f"{servers * gpus_per_server} GPUs ({servers * gpus_per_server - gpus} spare)")
    r = onprem(x)
    months = int(round(req.finance.horizon_years * MONTHS_PER_YEAR))
    owned_cum = r.cumulative_by_month(months)
    per_m = 1e6 / tokens_horizon if tokens_horizon else math.nan
    alts = []
    if "cloud_gpu" in req.alternatives:
        alts += cloud_alternatives(d, cat, gpus, need_h, req.finance.horizon_years, months, owned_cum, per_m)
    if "api" in req.alternatives:
        api = api_alternatives(d, cat, req.api_ids, in_tok_year, out_tok_year, req.finance.horizon_years, months,
                               owned_cum, per_m)
        if not api:
            notes.append(f"no API in the catalog serves {d.model.id}; compare others with --api ID "
                         "(`llmplan catalog api-prices`)")
        alts += api
    same_api = next((a for a in alts if a["kind"] == "api" and a.get("same_model")), None)
    api_usd_per_req_s_year = None
    if same_api is not None and per_day:
        # the API's price per (request/s sustained for a year): its yearly bill / mean request rate
        api_usd_per_req_s_year = same_api["tco_usd"] / req.finance.horizon_years / (per_day / 86400)
    hybrid = hybrid_split(d, cat, x, need_h, req.finance.horizon_years, replicas, rate_h, mu, api_usd_per_req_s_year,
                          same_api["name"] if same_api else None)
    out: dict[str, Any] = {
        "deployment": {"model": d.model_source, "gpu": d.accelerator.id, "engine": d.engine.id,
                       "precision": d.weight_format.id, "replicas": replicas, "gpus_per_replica": d.layout.num_gpus,
                       "gpus": gpus, "servers": servers, "tp": d.layout.tp, "pp": d.layout.pp},
        "workload": {"requests_per_day": per_day, "input_tokens_mean": i_mean, "output_tokens_mean": o_mean,
                     "tokens_per_year": in_tok_year + out_tok_year, "peak_rate_per_s": float(rate_h.max()),
                     "replica_capacity_req_s": mu, "utilisation_pct": util},
        "horizon_years": req.finance.horizon_years,
        "capex_usd": _num(r.capex_usd),
        "capex_items_usd": {k: _num(v) for k, v in r.capex_items.items()},
        "opex_usd_per_year": _num(r.opex_usd_per_year),
        "opex_items_usd_per_year": {k: _num(v) for k, v in r.opex_items_per_year.items()},
        "residual_value_usd": _num(r.residual_usd),
        "depreciation_usd_per_year": _num(r.depreciation_usd_per_year),
        "tco_usd": _num(r.tco_usd), "npv_usd": _num(r.npv_usd),
        "cost_per_million_tokens_usd": _num(r.tco_usd) * per_m,
        "energy_kwh_per_year": _num(r.energy_kwh_per_year),
        "emissions_kg_per_year": _num(r.emissions_kg_per_year),
        "energy_kwh_per_million_tokens": _num(r.energy_kwh_per_year) * req.finance.horizon_years * per_m,
        "emissions_kg_per_million_tokens": _num(r.emissions_kg_per_year) * req.finance.horizon_years * per_m,
        "cumulative_usd_by_month": [_round(v) for v in owned_cum.tolist()],
        "alternatives": alts, "hybrid": hybrid,
        "assumptions": {f.name: getattr(x, f.name) for f in fields(x)},
        "capacity_plan": plan, "notes": notes,
    }
    if req.draws:
        from .uncertainty import monte_carlo, tornado

        cheapest = min((a for a in alts), key=lambda a: a["tco_usd"], default=None)
        out["uncertainty"] = monte_carlo(x, cat, req.finance, req.draws, req.seed, tokens_horizon, cheapest)
        out["sensitivity"] = tornado(x, cat, req.finance)
    return out


def _offer_price(o: CloudOffer, kind: str) -> float | None:
    return getattr(o, f"usd_per_gpu_hour_{kind}")


PRICINGS = (("on_demand", False), ("spot", False), ("1y", True), ("3y", True))


def cloud_alternatives(d: Deployment, cat: Catalog, gpus: int, need_h: np.ndarray, horizon: float, months: int,
                       owned_cum: np.ndarray, per_m: float, offers: list[CloudOffer] | None = None) -> list[dict]:
    """The same accelerator rented: the cheapest offer per pricing model. On-demand and spot follow
    the hourly need (autoscaled replicas); commitments pay the whole fleet every hour of the term."""
    offers = offers if offers is not None else [o for o in cat.cloud_offers if o.accelerator == d.accelerator.id]
    gpu_hours_used = float(need_h.sum() * 365 * d.layout.num_gpus)
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
    cached_share = _assumption(cat, "api_cached_share_pct")[0]
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


def hybrid_split(d: Deployment, cat: Catalog, x: OnPremInputs, need_h: np.ndarray, horizon: float,
                 replicas: int, rate_h: np.ndarray | None = None, mu: float = 0.0,
                 api_usd_per_req_s_year: float | None = None, api_name: str | None = None) -> dict[str, Any] | None:
    """Own k replicas for the base load and send the rest of each hour's traffic elsewhere: to
    on-demand replicas rented hour by hour, or to the same model behind an API. k runs from 0
    (nothing owned) to the peak (everything owned); the cheapest total over the horizon wins."""
    offers = [o for o in cat.cloud_offers if o.accelerator == d.accelerator.id and o.usd_per_gpu_hour_on_demand]
    price = min(o.usd_per_gpu_hour_on_demand for o in offers) if offers else None  # type: ignore[type-var]
    if price is None and api_usd_per_req_s_year is None:
        return None
    per_server = x.gpus_per_server
    best: dict[str, Any] | None = None
    for k in range(0, int(max(need_h.max(), replicas)) + 1):
        gpus = k * d.layout.num_gpus
        owned = _num(onprem(replace(x, servers=math.ceil(gpus / per_server),
                                    gpus=None if x.gpus is None else gpus)).tco_usd) if k else 0.0
        options = []
        if price is not None:
            rented_h = float(np.maximum(need_h - k, 0).sum() * 365 * d.layout.num_gpus)
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
