"""Uncertainty: Monte Carlo over the uncertain inputs' ranges (seeded, vectorised) and a tornado
table ranking which input moves the TCO most.

The ranges come with the fleet (:func:`llmplan.cost.ownership.fleet_inputs`): the catalog's cost
assumptions around the values actually used (a region's, say), the purchase's own facts (an
estimated accelerator price, a host cost derived by a rule, the resale band at the horizon, the
licence price band), never an input the user fixed or one that buys nothing (no switch, no
colocation under a desk)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from .model import MONTHS_PER_YEAR, OnPremInputs, onprem

Ranges = dict[str, tuple[float, float, float]]  # OnPremInputs field -> (low, value, high)


def _pcts(v: np.ndarray) -> dict[str, float | None]:
    out = {}
    for p in (10, 50, 90):
        q = float(np.percentile(v, p, method="nearest"))  # no interpolation between "never" (inf) values
        out[f"p{p}"] = q if math.isfinite(q) else None
    return out


def monte_carlo(x: OnPremInputs, ranges: Ranges, draws: int, seed: int, tokens_horizon: float,
                alternative: dict[str, Any] | None) -> dict[str, Any]:
    """Each uncertain input drawn from a triangular distribution (low, value, high)."""
    rng = np.random.default_rng(seed)
    drawn: dict[str, Any] = {f: (rng.triangular(lo, mode, hi, draws) if hi > lo else np.full(draws, mode))
             for f, (lo, mode, hi) in sorted(ranges.items())}
    xs = replace(x, **drawn)
    r = onprem(xs)
    tco = np.broadcast_to(np.asarray(r.tco_usd, dtype=float), (draws,))
    out: dict[str, Any] = {
        "draws": draws, "seed": seed, "varied": sorted(ranges),
        "tco_usd": _pcts(tco),
        "cost_per_million_tokens_usd": _pcts(tco * 1e6 / tokens_horizon) if tokens_horizon else None,
    }
    if alternative is not None:
        months = int(round(float(np.asarray(x.horizon_years)) * MONTHS_PER_YEAR))
        alt_monthly = alternative["tco_usd"] / max(months, 1)
        opex_m = np.broadcast_to(np.asarray(r.opex_usd_per_year, dtype=float), (draws,)) / MONTHS_PER_YEAR
        capex = np.broadcast_to(np.asarray(r.capex_usd, dtype=float), (draws,))
        gain = alt_monthly - opex_m
        m = np.where(gain > 0, np.ceil(capex / np.where(gain > 0, gain, 1)), np.inf)
        m = np.where(m <= months, m, np.inf)
        out["breakeven_month"] = {"against": alternative["name"], **_pcts(m)}
        out["breakeven_within_horizon_pct"] = float(100 * np.mean(np.isfinite(m)))
    return out


def tornado(x: OnPremInputs, ranges: Ranges) -> list[dict[str, Any]]:
    """Each uncertain input at its low and high end, the others at their values; ranked by swing."""
    base = float(np.asarray(onprem(x).tco_usd))
    rows: list[dict[str, Any]] = []
    for f, (lo, mode, hi) in ranges.items():
        at_lo: dict[str, Any] = {f: lo}
        at_hi: dict[str, Any] = {f: hi}
        t_lo = float(np.asarray(onprem(replace(x, **at_lo)).tco_usd))
        t_hi = float(np.asarray(onprem(replace(x, **at_hi)).tco_usd))
        rows.append({"assumption": f, "low": lo, "value": mode, "high": hi, "tco_at_low_usd": t_lo,
                     "tco_at_high_usd": t_hi, "swing_usd": abs(t_hi - t_lo),
                     "swing_pct_of_tco": 100 * abs(t_hi - t_lo) / base if base else 0.0})
    rows.sort(key=lambda r: (-r["swing_usd"], r["assumption"]))
    return rows
