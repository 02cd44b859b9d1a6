"""Uncertainty: Monte Carlo over the cost assumptions' ranges (seeded, vectorised) and a
tornado table ranking which assumption moves the TCO most."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import Region
from .model import MONTHS_PER_YEAR, OnPremInputs, onprem

# catalog assumption id -> OnPremInputs field
FIELD_OF = {
    "depreciation_years": "depreciation_years", "residual_value_pct": "residual_value_pct",
    "maintenance_pct_per_year": "maintenance_pct_per_year", "install_pct": "install_pct",
    "network_usd_per_gpu": "network_usd_per_gpu", "storage_usd_per_server": "storage_usd_per_server",
    "staff_fte_per_server": "staff_fte_per_server", "staff_loaded_usd_per_fte_year": "staff_usd_per_fte_year",
    "software_usd_per_gpu_year": "software_usd_per_gpu_year", "discount_rate_pct": "discount_rate_pct",
    "pue": "pue", "electricity_usd_per_kwh": "electricity_usd_per_kwh",
    "colocation_usd_per_kw_month": "colocation_usd_per_kw_month",
    "gpu_power_draw_pct_of_tdp": "busy_power_pct_of_tdp", "idle_power_pct_of_tdp": "idle_power_pct_of_tdp",
    "utilisation_pct": "utilisation_pct",
}


def estimated_electricity_note(region: Region | None, finance: Any) -> str | None:
    """The label for a region whose electricity price is an estimate (none when the user gave a price)."""
    if region is None or not region.electricity_estimate:
        return None
    if getattr(finance, "electricity_usd_per_kwh", None) is not None:
        return None
    basis = (region.electricity_basis or "").removeprefix("[estimate] ")
    return (f"electricity price for {region.name or region.id} is an estimate ({region.electricity_low_usd_per_kwh:.3f}"
            f"–{region.electricity_high_usd_per_kwh:.3f} USD/kWh): {basis}")


def _region(cat: Catalog, finance: Any) -> Region | None:
    rid = getattr(finance, "region", None)
    return cat.regions.get(rid) if rid else None


def uncertain_inputs(x: OnPremInputs, cat: Catalog, fixed: set[str],
                     region: Region | None = None) -> dict[str, tuple[float, float, float]]:
    """(low, mode, high) per OnPremInputs field that stays uncertain: the catalog's range around the
    value actually used, unless the user fixed it. A field the region set keeps its value as mode; a
    region's estimated electricity price brings its own range."""
    out = {}
    for aid, fname in FIELD_OF.items():
        if fname in fixed or fname == "utilisation_pct":  # utilisation comes from the workload, not a guess
            continue
        a = cat.cost_assumptions.find(aid)
        if a is None or a.low == a.high:
            continue
        mode = float(getattr(x, fname))
        lo, hi = min(a.low, mode), max(a.high, mode)
        if fname == "electricity_usd_per_kwh" and region is not None and region.electricity_estimate:
            lo, hi = region.electricity_low_usd_per_kwh, region.electricity_high_usd_per_kwh
        if fname == "network_usd_per_gpu" and x.network_usd_per_gpu == 0:
            continue  # one server: no scale-out network to be uncertain about
        out[fname] = (lo, mode, hi)
    return out


def _fixed(finance: Any) -> set[str]:
    names = {f: f for f in ("electricity_usd_per_kwh", "pue", "depreciation_years", "residual_value_pct",
                            "maintenance_pct_per_year", "staff_fte_per_server", "staff_usd_per_fte_year",
                            "software_usd_per_gpu_year", "colocation_usd_per_kw_month")}
    fixed = {f for f, attr in names.items() if getattr(finance, attr, None) is not None}
    if getattr(finance, "discount_rate", None) is not None:
        fixed.add("discount_rate_pct")
    return fixed


def _pcts(v: np.ndarray) -> dict[str, float | None]:
    out = {}
    for p in (10, 50, 90):
        q = float(np.percentile(v, p, method="nearest"))  # no interpolation between "never" (inf) values
        out[f"p{p}"] = q if math.isfinite(q) else None
    return out


def monte_carlo(x: OnPremInputs, cat: Catalog, finance: Any, draws: int, seed: int, tokens_horizon: float,
                alternative: dict[str, Any] | None) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    ranges = uncertain_inputs(x, cat, _fixed(finance), _region(cat, finance))
    drawn = {f: (rng.triangular(lo, mode, hi, draws) if hi > lo else np.full(draws, mode))
             for f, (lo, mode, hi) in ranges.items()}
    xs = replace(x, **drawn)
    r = onprem(xs)
    tco = np.broadcast_to(np.asarray(r.tco_usd, dtype=float), (draws,))
    out: dict[str, Any] = {
        "draws": draws, "seed": seed, "varied": sorted(ranges),
        "tco_usd": _pcts(tco),
        "cost_per_million_tokens_usd": _pcts(tco * 1e6 / tokens_horizon) if tokens_horizon else None,
    }
    if alternative is not None:
        months = int(round(x.horizon_years * MONTHS_PER_YEAR))
        alt_monthly = alternative["tco_usd"] / max(months, 1)
        opex_m = np.broadcast_to(np.asarray(r.opex_usd_per_year, dtype=float), (draws,)) / MONTHS_PER_YEAR
        capex = np.broadcast_to(np.asarray(r.capex_usd, dtype=float), (draws,))
        gain = alt_monthly - opex_m
        m = np.where(gain > 0, np.ceil(capex / np.where(gain > 0, gain, 1)), np.inf)
        m = np.where(m <= months, m, np.inf)
        out["breakeven_month"] = {"against": alternative["name"], **_pcts(m)}
        out["breakeven_within_horizon_pct"] = float(100 * np.mean(np.isfinite(m)))
    return out


def tornado(x: OnPremInputs, cat: Catalog, finance: Any) -> list[dict[str, Any]]:
    """Each uncertain assumption at its low and high end, the others at their values; ranked by swing."""
    base = float(np.asarray(onprem(x).tco_usd))
    rows = []
    for f, (lo, mode, hi) in uncertain_inputs(x, cat, _fixed(finance), _region(cat, finance)).items():
        t_lo = float(np.asarray(onprem(replace(x, **{f: lo})).tco_usd))
        t_hi = float(np.asarray(onprem(replace(x, **{f: hi})).tco_usd))
        rows.append({"assumption": f, "low": lo, "value": mode, "high": hi, "tco_at_low_usd": t_lo,
                     "tco_at_high_usd": t_hi, "swing_usd": abs(t_hi - t_lo),
                     "swing_pct_of_tco": 100 * abs(t_hi - t_lo) / base if base else 0.0})
    rows.sort(key=lambda r: -r["swing_usd"])
    return rows
