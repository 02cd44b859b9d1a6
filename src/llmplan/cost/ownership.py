"""Owning a deployment: the configurations an accelerator is sold in (with their prices and
power from the catalog), the purchase that carries the replicas (:mod:`llmplan.cost.purchase`),
the licences what is deployed needs, and the inputs of the cost model for that fleet.

Every catalog fact a figure depends on is either present, an explicit estimate (labelled in the
notes, its range handed to the Monte Carlo) or an error naming the fact and how to supply it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import Accelerator, Server
from ..errors import LlmplanError
from ..specs import Deployment
from .model import OnPremInputs, active_pct, onprem
from .purchase import Config, Purchase, check_failure_domains, choose

# OnPremInputs field <- cost assumption id, per facility (the others are the same everywhere)
COMMON_FIELDS = {
    "maintenance_pct_per_year": "maintenance_pct_per_year", "staff_usd_per_fte_year": "staff_loaded_usd_per_fte_year",
    "discount_rate_pct": "discount_rate_pct", "electricity_usd_per_kwh": "electricity_usd_per_kwh",
    "busy_power_pct_of_tdp": "gpu_power_draw_pct_of_tdp", "idle_power_pct_of_tdp": "idle_power_pct_of_tdp",
    "light_power_pct_of_tdp": "light_load_power_pct_of_tdp",
    "host_power_draw_pct": "host_power_draw_pct_of_max", "depreciation_years": "depreciation_years",
}
FACILITY_FIELDS = {
    "datacenter": {"pue": "pue", "colocation_usd_per_kw_month": "colocation_usd_per_kw_month",
                   "install_pct": "install_pct", "storage_usd_per_server": "storage_usd_per_server",
                   "tor_switch_usd": "tor_switch_usd", "fabric_usd_per_server": "fabric_usd_per_server",
                   "staff_fte_base": "staff_fte_base_datacenter", "staff_fte_per_server": "staff_fte_per_server"},
    "office": {"pue": "office_pue", "staff_fte_base": "staff_fte_base_office",
               "staff_fte_per_server": "staff_fte_per_workstation"},
}
# what an office deployment does not pay (fixed at zero, never varied)
OFFICE_ZERO = ("colocation_usd_per_kw_month", "install_pct", "storage_usd_per_server", "tor_switch_usd",
               "fabric_usd_per_server")
# Finance field -> OnPremInputs field, where a user value fixes the input
FINANCE_FIXES = {
    "electricity_usd_per_kwh": "electricity_usd_per_kwh", "pue": "pue", "depreciation_years": "depreciation_years",
    "maintenance_pct_per_year": "maintenance_pct_per_year", "staff_fte_per_server": "staff_fte_per_server",
    "staff_fte_base": "staff_fte_base", "staff_usd_per_fte_year": "staff_usd_per_fte_year",
    "colocation_usd_per_kw_month": "colocation_usd_per_kw_month",
}
RESALE_CURVE = "accelerated-servers"


def assumption(cat: Catalog, name: str) -> tuple[float, float, float]:
    a = cat.cost_assumptions.find(name)
    if a is None:
        raise LlmplanError(f"the catalog has no cost assumption {name!r} (cost_assumptions.yaml)")
    return a.value, a.low, a.high


def field_map(facility: str) -> dict[str, str]:
    """OnPremInputs field -> cost assumption id for a facility."""
    return {**COMMON_FIELDS, **FACILITY_FIELDS[facility]}


# ---------------------------------------------------------------------------------------- prices


def gpu_price(acc: Accelerator, f: Any, notes: list[str]) -> tuple[float, float, float]:
    """(price, low, high) per accelerator; an estimate is labelled; missing is an error."""
    given = getattr(f, "gpu_price_usd", None)
    if given is not None:
        return given, given, given
    p = acc.price
    if p is None:
        raise LlmplanError(f"the catalog has no purchase price for {acc.id}; give --gpu-price (USD per device; "
                           "finance.gpu_price_usd in a scenario or the Python API)")
    lo = p.low_usd if p.low_usd is not None else p.usd
    hi = p.high_usd if p.high_usd is not None else p.usd
    if p.estimate:
        notes.append(f"{acc.id} price ${p.usd:,.0f} is an estimate (${lo:,.0f}–${hi:,.0f}): {p.basis}")
    return p.usd, lo, hi


def gpu_power(acc: Accelerator, f: Any, notes: list[str]) -> float:
    given = getattr(f, "gpu_tdp_w", None)
    if given is not None:
        return given
    if acc.tdp_w is None:
        raise LlmplanError(f"the catalog has no TDP for {acc.id}; give --gpu-tdp (watts per device; "
                           "finance.gpu_tdp_w in a scenario or the Python API)")
    if acc.tdp_estimated:
        notes.append(f"{acc.id} TDP {acc.tdp_w:,.0f} W is an estimate (see the accelerator's notes)")
    return acc.tdp_w


def _config(s: Server, acc: Accelerator, n: int, gpr: int, price: tuple[float, float, float], tdp: float | None,
            f: Any) -> Config:
    return _priced(s, acc, n, gpr, price, tdp, f)


def _priced(s: Server, acc: Accelerator, n: int, gpr: int, price: tuple[float, float, float], tdp: float | None,
            f: Any) -> Config:
    host_given = getattr(f, "server_price_usd", None)
    if s.kind == "appliance":
        if s.price is not None:
            lo = s.price.low_usd if s.price.low_usd is not None else s.price.usd
            hi = s.price.high_usd if s.price.high_usd is not None else s.price.usd
            price = (s.price.usd, lo, hi)
        return Config(s.id, s.name or s.id, s.kind, s.facility, acc.id, n, n // gpr, price[0], 0.0, 0.0, 0.0,
                      float(s.max_power_w or 0.0), 0.0, s.rack_units, False, price[1], price[2])
    assert s.host is not None and tdp is not None
    h = s.host
    host = host_given if host_given is not None else h.cost_usd
    lo = host_given if host_given is not None else (h.cost_low_usd if h.cost_low_usd is not None else h.cost_usd)
    hi = host_given if host_given is not None else (h.cost_high_usd if h.cost_high_usd is not None else h.cost_usd)
    return Config(s.id, s.name or s.id, s.kind, s.facility, acc.id, n, n // gpr, price[0], host, lo, hi, tdp,
                  h.power_w, s.rack_units, h.estimate and host_given is None, price[1], price[2])


def configurations(acc: Accelerator, gpus_per_replica: int, cat: Catalog, f: Any) -> tuple[list[Config], list[str]]:
    """Every configuration the catalog sells `acc` in that holds at least one replica."""
    servers = [s for s in cat.servers if acc.id in s.accelerators]
    if not servers:
        raise LlmplanError(f"no server in the catalog holds {acc.id}: add a buying unit for it to a servers catalog "
                           "file (kind: servers, with its host cost and power) to cost it on premise")
    facility = getattr(f, "facility", None)
    if facility and not [s for s in servers if s.facility == facility]:
        where = "a rack server" if facility == "datacenter" else "a machine under a desk"
        raise LlmplanError(f"{acc.id} is not sold as {where} in the catalog (facility: {facility}); its buying units: "
                           + ", ".join(s.id for s in servers))
    servers = [s for s in servers if not facility or s.facility == facility]
    notes: list[str] = []
    appliance_only = all(s.kind == "appliance" and s.price is not None for s in servers)
    price = (0.0, 0.0, 0.0) if appliance_only else gpu_price(acc, f, notes)
    tdp = None if all(s.kind == "appliance" for s in servers) else gpu_power(acc, f, notes)
    out = []
    for s in servers:
        for n in s.counts:
            if n % gpus_per_replica == 0 or s.kind == "board" or s.kind == "appliance":
                c = _config(s, acc, n, gpus_per_replica, price, tdp, f)
                if c.slots >= 1:
                    out.append(c)
    if not out:
        biggest = max(s.max_gpus for s in servers)
        raise LlmplanError(f"a replica of {gpus_per_replica} × {acc.id} does not fit in any catalog server (the "
                           f"largest holds {biggest}); a replica lives inside one server")
    return out, notes


# -------------------------------------------------------------------------------------- licences


def licence_charges(d: Deployment, cat: Catalog, f: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The licences this deployment pays: those the scenario asks for and those its engine needs,
    where they apply to the accelerator, after the years bundled with it. Nothing else."""
    asked = {cat.software_licences.get(i).id for i in (getattr(f, "licences", None) or ())}
    needed = {lic.id for lic in cat.software_licences if d.engine.id in lic.required_by_engines}
    out, notes = [], []
    for lid in sorted(asked | needed):
        lic = cat.software_licences.get(lid)
        why = "asked for by the scenario" if lid in asked else f"required by {d.engine.id}"
        if lic.accelerator_vendors and d.accelerator.vendor not in lic.accelerator_vendors:
            if lid in needed:
                raise LlmplanError(f"{d.engine.id} needs {lic.name or lic.id}, which does not license "
                                   f"{d.accelerator.vendor} accelerators")
            notes.append(f"{lic.name or lic.id} ({why}) does not apply to {d.accelerator.vendor} accelerators: not "
                         "charged")
            continue
        years = max((b.years for b in lic.bundled if b.accelerator == d.accelerator.id), default=0.0)
        out.append({"id": lic.id, "name": lic.name or lic.id, "basis": lic.basis, "usd_per_year": lic.usd_per_year,
                    "low_usd_per_year": lic.low_usd_per_year, "high_usd_per_year": lic.high_usd_per_year,
                    "bundled_years": years, "why": why, "source": lic.source, "as_of": lic.as_of})
        if years:
            notes.append(f"{lic.name or lic.id}: {years:g} years come with each {d.accelerator.id}; paid after that")
    extra = getattr(f, "software_usd_per_gpu_year", None)
    if extra:
        out.append({"id": "user-given", "name": "software licences (given)", "basis": "per_gpu",
                    "usd_per_year": extra, "low_usd_per_year": extra, "high_usd_per_year": extra,
                    "bundled_years": 0.0, "why": "given (software_usd_per_gpu_year)", "source": "user", "as_of": ""})
    return out, notes


# ------------------------------------------------------------------------------- fleet -> inputs


def resale_pct(cat: Catalog, age_years: float) -> tuple[float, float, float]:
    """(value, low, high) % of the purchase price the resale curve gives at an age (linear between
    points, the last point's beyond it)."""
    curve = cat.resale_curves.find(RESALE_CURVE)
    if curve is None:
        raise LlmplanError(f"the catalog has no resale curve {RESALE_CURVE!r} (resale.yaml); give "
                           "finance.residual_value_pct")
    ages = [p.age_years for p in curve.points]
    return tuple(float(np.interp(age_years, ages, [getattr(p, k) for p in curve.points]))  # type: ignore[return-value]
                 for k in ("pct", "low_pct", "high_pct"))


@dataclass
class Owned:
    """A fleet bought for a deployment, priced: the cost model's inputs and what the Monte Carlo
    may vary about them."""

    purchase: Purchase
    x: OnPremInputs
    ranges: dict[str, tuple[float, float, float]]  # OnPremInputs field -> (low, value, high)
    licences: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def _assumptions(cat: Catalog, f: Any, facility: str) -> tuple[dict[str, float], dict[str, tuple[float, float, float]]]:
    vals: dict[str, float] = {}
    ranges: dict[str, tuple[float, float, float]] = {}
    for fld, aid in field_map(facility).items():
        v, lo, hi = assumption(cat, aid)
        vals[fld] = v
        if hi > lo:  # a collapsed range is a certainty, whatever value ends up used
            ranges[fld] = (lo, v, hi)
    if facility == "office":
        vals.update({k: 0.0 for k in OFFICE_ZERO})
    region = cat.regions.get(f.region) if getattr(f, "region", None) else None
    if region is not None:
        vals["electricity_usd_per_kwh"] = region.electricity_usd_per_kwh
        e_lo, e_hi = region.electricity_low_usd_per_kwh, region.electricity_high_usd_per_kwh
        if region.electricity_estimate and e_lo is not None and e_hi is not None:
            # the region's own range replaces the catalog's global one (an estimate always has both ends)
            ranges["electricity_usd_per_kwh"] = (e_lo, region.electricity_usd_per_kwh, e_hi)
        if facility == "datacenter":
            vals["pue"] = region.pue
            if region.colocation_usd_per_kw_month is not None:
                vals["colocation_usd_per_kw_month"] = region.colocation_usd_per_kw_month
    for fin, fld in FINANCE_FIXES.items():
        fixed = getattr(f, fin, None)
        if fixed is not None and (facility == "datacenter" or fld not in OFFICE_ZERO):
            vals[fld] = fixed
            ranges.pop(fld, None)
    if getattr(f, "discount_rate", None) is not None:
        vals["discount_rate_pct"] = f.discount_rate * 100
        ranges.pop("discount_rate_pct", None)
    for fld, v in vals.items():  # the range always holds the value actually used (e.g. a region's)
        if fld in ranges:
            lo, _, hi = ranges[fld]
            ranges[fld] = (min(lo, v), v, max(hi, v))
    carbon = region.carbon_g_per_kwh if region is not None else assumption(cat, "carbon_g_per_kwh")[0]
    vals["carbon_g_per_kwh"] = carbon
    return vals, ranges


def estimated_electricity_note(cat: Catalog, f: Any) -> str | None:
    """The label for a region whose electricity price is an estimate (none when the user gave a price)."""
    region = cat.regions.get(f.region) if getattr(f, "region", None) else None
    if region is None or not region.electricity_estimate or getattr(f, "electricity_usd_per_kwh", None) is not None:
        return None
    basis = (region.electricity_basis or "").removeprefix("[estimate] ")
    return (f"electricity price for {region.name or region.id} is an estimate ({region.electricity_low_usd_per_kwh:.3f}"
            f"–{region.electricity_high_usd_per_kwh:.3f} USD/kWh): {basis}")


def fleet_inputs(p: Purchase, cat: Catalog, f: Any, utilisation_pct: float, licences: list[dict[str, Any]],
                 active_pct: float | None = None) -> tuple[OnPremInputs, dict[str, tuple[float, float, float]]]:
    """The cost model's inputs for purchase `p` and the ranges the Monte Carlo draws from. `active_pct`: the
    share of time the engines have a request in flight (:func:`llmplan.cost.model.active_pct`); None where the
    caller has no time-of-day load (it is then taken as the utilisation: working only in proportion to load)."""
    vals, ranges = _assumptions(cat, f, p.facility)
    horizon = f.horizon_years
    c0 = p.lines[0][0]
    multi = p.servers > 1 and p.facility == "datacenter"
    tors = 0
    if p.facility == "datacenter":
        per_tor = int(assumption(cat, "servers_per_tor_switch")[0])
        tors = -(-p.servers // per_tor) * (2 if p.mode != "none" else 1)
    if getattr(f, "residual_value_pct", None) is not None:
        residual = (f.residual_value_pct,) * 3
    else:
        residual = resale_pct(cat, horizon)
        ranges["residual_pct"] = (residual[1], residual[0], residual[2])
    host = sum(c.host_usd * n for c, n in p.lines)
    host_lo, host_hi = sum(c.host_low_usd * n for c, n in p.lines), sum(c.host_high_usd * n for c, n in p.lines)
    if host_hi > host_lo:
        ranges["host_cost_usd"] = (host_lo, host, host_hi)
    if c0.gpu_low_usd is not None and c0.gpu_high_usd is not None:
        ranges["gpu_price_usd"] = (c0.gpu_low_usd, c0.gpu_price_usd, c0.gpu_high_usd)
    units = {"per_gpu": p.gpus, "per_server": p.servers}
    lic = tuple((l_["usd_per_year"] * units[l_["basis"]], l_["bundled_years"]) for l_ in licences)
    x = OnPremInputs(
        servers=p.servers, gpus=p.gpus, gpu_price_usd=c0.gpu_price_usd, host_cost_usd=host, gpu_tdp_w=c0.gpu_max_w,
        host_power_w=sum(c.host_max_w * n for c, n in p.lines), horizon_years=horizon, residual_pct=residual[0],
        install_pct=vals["install_pct"], storage_servers=p.servers if p.facility == "datacenter" else 0,
        storage_usd_per_server=vals["storage_usd_per_server"], tor_switches=tors, tor_switch_usd=vals["tor_switch_usd"],
        fabric_servers=p.servers if multi else 0, fabric_usd_per_server=vals["fabric_usd_per_server"],
        maintenance_pct_per_year=vals["maintenance_pct_per_year"], staff_fte_base=vals["staff_fte_base"],
        staff_fte_per_server=vals["staff_fte_per_server"], staff_usd_per_fte_year=vals["staff_usd_per_fte_year"],
        electricity_usd_per_kwh=vals["electricity_usd_per_kwh"], pue=vals["pue"],
        colocation_usd_per_kw_month=vals["colocation_usd_per_kw_month"], utilisation_pct=utilisation_pct,
        active_pct=utilisation_pct if active_pct is None else max(active_pct, utilisation_pct),
        busy_power_pct_of_tdp=vals["busy_power_pct_of_tdp"], idle_power_pct_of_tdp=vals["idle_power_pct_of_tdp"],
        light_power_pct_of_tdp=vals["light_power_pct_of_tdp"],
        host_power_draw_pct=vals["host_power_draw_pct"], discount_rate_pct=vals["discount_rate_pct"],
        carbon_g_per_kwh=vals["carbon_g_per_kwh"], depreciation_years=vals["depreciation_years"], licences=lic)
    for fld in ("storage_usd_per_server", "tor_switch_usd", "fabric_usd_per_server"):
        if getattr(x, {"storage_usd_per_server": "storage_servers", "tor_switch_usd": "tor_switches",
                       "fabric_usd_per_server": "fabric_servers"}[fld]) == 0:
            ranges.pop(fld, None)  # nothing bought: nothing to be uncertain about
    if p.facility == "office":
        for fld in OFFICE_ZERO:
            ranges.pop(fld, None)
    paid = [l_ for l_ in licences if l_["bundled_years"] < horizon and l_["usd_per_year"] > 0]
    if paid:
        base = sum(l_["usd_per_year"] for l_ in paid)
        ranges["licence_price_factor"] = (sum(l_["low_usd_per_year"] for l_ in paid) / base, 1.0,
                                          sum(l_["high_usd_per_year"] for l_ in paid) / base)
    # the accounting life and the discount rate do not move the cash TCO the Monte Carlo reports
    return x, {k: v for k, v in ranges.items() if v[2] > v[0] and k not in ("depreciation_years", "discount_rate_pct")}


_UNIT_COSTS: dict[tuple, tuple[Catalog, tuple[float, float]]] = {}  # the catalog is kept: its id stays its own


def _unit_cost(c: Config, cat: Catalog, f: Any, licences: list[dict[str, Any]]) -> tuple[float, float]:
    """(cost over the horizon of one more server of `c` in a multi-server fleet, what a lone server
    saves): the cost model at idle draw (the busy draw follows the load, not the purchase).
    Memoised: the planner asks for the same configurations for every model and format."""
    dump = f.model_dump_json() if hasattr(f, "model_dump_json") else repr(f)
    key = (c, id(cat), dump, tuple((l_["id"], l_["usd_per_year"], l_["basis"], l_["bundled_years"]) for l_ in licences))
    hit = _UNIT_COSTS.get(key)
    if hit is None or hit[0] is not cat:
        if len(_UNIT_COSTS) > 4096:
            _UNIT_COSTS.clear()
        hit = _UNIT_COSTS[key] = (cat, _unit_cost_of(c, cat, f, licences))
    return hit[1]


def _unit_part(unit: dict[Config, tuple[float, float]], which: int, c: Config) -> float:
    """One part of a configuration's unit cost: 0 its TCO, 1 what buying it alone saves."""
    return unit[c][which]


def _unit_cost_of(c: Config, cat: Catalog, f: Any, licences: list[dict[str, Any]]) -> tuple[float, float]:
    one = Purchase(((c, 1),), max(1, c.gpus // max(c.slots, 1)), c.slots, "none")
    x, _ = fleet_inputs(one, cat, f, 0.0, licences)
    x = replace(x, staff_fte_base=0.0, tor_switches=0.0, fabric_servers=1.0 if c.facility == "datacenter" else 0.0)
    return float(np.asarray(onprem(x).tco_usd)), float(np.asarray(x.fabric_servers * x.fabric_usd_per_server))


def fleet_load(rate_h: np.ndarray, per_replica_req_s: float, alone_s: float, days_per_year: float,
               override_pct: float | None = None) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """`buy`'s load callables for a fleet that places `placed` replicas, each carrying `per_replica_req_s`: its
    mean utilisation % over the year (the day's hourly rates `rate_h` on `days_per_year` days, no load on the
    others; or `override_pct`, `--utilisation`), and the share of the year's time % its engines have a request
    in flight (:func:`llmplan.cost.model.active_pct`, one request alone taking `alone_s`)."""
    year_share = min(days_per_year, 365.0) / 365.0

    def utilisation_of(placed: int) -> float:
        if override_pct is not None:
            return override_pct
        cap = placed * per_replica_req_s
        return min(100.0, float(100 * year_share * np.mean(rate_h / cap))) if cap > 0 else 0.0

    def active_of(placed: int) -> float:
        return year_share * active_pct(rate_h / placed, alone_s) if placed else 0.0

    return utilisation_of, active_of


def buy(d: Deployment, cat: Catalog, f: Any, need: int, mode: str, utilisation_of: Callable[[int], float],
        max_servers: int | None = None, active_of: Callable[[int], float] | None = None) -> Owned:
    """The cheapest fleet that places `need` replicas of `d` under availability `mode`: per facility
    (racked servers, or machines under desks) the cheapest purchase, then the cheaper facility by
    the full cost model. `utilisation_of(replicas placed)` gives the fleet's mean utilisation %, `active_of`
    the share of time its engines have a request in flight (see :func:`fleet_inputs`)."""
    g = d.layout.num_gpus
    configs, notes = configurations(d.accelerator, g, cat, f)
    licences, lic_notes = licence_charges(d, cat, f)
    best: Owned | None = None
    errors = []
    for facility in ("datacenter", "office"):
        cs = [c for c in configs if c.facility == facility]
        if not cs:
            continue
        unit = {c: _unit_cost(c, cat, f, licences) for c in cs}
        try:
            p = choose(cs, need, mode, g, partial(_unit_part, unit, 0), partial(_unit_part, unit, 1), max_servers)
            check_failure_domains(p)
        except LlmplanError as exc:
            errors.append(str(exc))
            continue
        x, ranges = fleet_inputs(p, cat, f, utilisation_of(p.replicas), licences,
                                 None if active_of is None else active_of(p.replicas))
        owned = Owned(p, x, ranges, licences, [*notes, *lic_notes])
        if best is None or float(np.asarray(onprem(x).tco_usd)) < float(np.asarray(onprem(best.x).tco_usd)):
            best = owned
    if best is None:
        raise LlmplanError(errors[0] if errors else f"no configuration of {d.accelerator.id} can be bought")
    best.notes += _purchase_notes(best)
    if (label := estimated_electricity_note(cat, f)) is not None:
        best.notes.append(label)
    return best


def _purchase_notes(o: Owned) -> list[str]:
    p = o.purchase
    out = []
    for c, _ in p.lines:
        if c.host_estimate:
            out.append(f"{c.server_id} host ${c.host_usd:,.0f} (${c.host_low_usd:,.0f}–${c.host_high_usd:,.0f}) is "
                       "an estimate by a stated rule (servers.yaml)")
    return list(dict.fromkeys(out))
