"""How wide the 80 % interval of a speed prediction is.

A calibration entry's band is the 10th–90th percentile of its own residuals, ln(measured / predicted), on the
rows it was fitted to. For a setup from a source the fit never saw that band is too narrow. So `llmplan
calibrate` refits without each source group in turn, predicts the group held out, and, for each level of the
fallback hierarchy (engine × family × arch … pooled), fits the factor by which the in-sample band must be
scaled for 80 % of those held-out measurements to fall inside it. Each calibration entry carries the factor of
its level (`interval_scale`); `llmplan estimate`, `llmplan validate` and the planner's speed risk widen the band
by it. One number per level, fitted on held-out rows: no hand-set widening where the data can say how wide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .efficiency import ANY, LEVELS

COVERAGE = 0.80  # the interval's nominal coverage
MIN_ROWS = 30  # a level with fewer held-out rows takes the factor fitted on all of them
ALL_LEVELS = "*"
# calibration files written before the factors were fitted: the band is widened by these hand-set factors
# for a fallback level (the figures llmplan used until 2026-12; a rerun of `llmplan calibrate` replaces them)
HAND_SET = {"engine×family×arch": 1.0, "engine×family": 1.0, "engine×arch": 1.5, "engine": 1.5, "family×arch": 1.5,
            "family": 1.5, "arch": 2.0, "pooled": 2.0}


def level_name(engine: str, family: str, arch: str) -> str:
    """The level of the hierarchy an entry keyed (engine, family, arch) sits at, named as
    :func:`llmplan.perf.efficiency.lookup` names the level it used ('engine×family', 'arch', 'pooled' …)."""
    names = [n for n, v in (("engine", engine), ("family", family), ("arch", arch)) if v != ANY]
    return "×".join(names) or "pooled"


def needed_scale(log_error: float, lo: float, hi: float) -> float:
    """The smallest factor w with lo·w ≤ log_error ≤ hi·w (a band on one side of zero is taken from zero,
    so a factor can always reach the value)."""
    lo, hi = min(lo, -1e-3), max(hi, 1e-3)
    return log_error / hi if log_error > 0 else log_error / lo if log_error < 0 else 0.0


def fit_scales(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per level, the smallest factor that puts 80 % of the held-out rows inside their scaled band; a level
    with fewer than MIN_ROWS rows takes the factor fitted on every row (also kept as ALL_LEVELS); then no level
    is narrower than a more specific one (:func:`coarser_not_narrower`).
    Each row: 'level', 'log_error' (ln measured / predicted) and 'band' (the fit's in-sample p10, p90)."""
    need: dict[str, list[float]] = {}
    for r in rows:
        if r.get("log_error") is None:
            continue
        need.setdefault(r["level"], []).append(needed_scale(r["log_error"], *r["band"]))
    every = [w for ws in need.values() for w in ws]
    if not every:
        return {}

    def q(ws: list[float]) -> float:  # the k-th smallest need covers k rows: k = ⌈0.8 n⌉
        return float(np.sort(np.asarray(ws))[math.ceil(COVERAGE * len(ws) - 1e-9) - 1])

    fitted = {lvl: q(ws) for lvl, ws in need.items() if len(ws) >= MIN_ROWS}
    return coarser_not_narrower(fitted, q(every))


def coarser_not_narrower(fitted: dict[str, float], every: float) -> dict[str, float]:
    """The factor of every level of the fallback hierarchy: its own fit (`fitted`, levels with enough held-out
    rows), else the one fitted on all held-out rows (`every`), raised to at least the fitted factor of every
    more specific level it stands in for (engine×arch → engine → pooled …). A fallback knows less than the fits
    below it, so a setup with no data of its own never gets a relatively narrower interval than one with data
    (a level fitted on a few sources can otherwise come out lower: 'arch' ×1.01 on the Gaudi and Ascend rows,
    engine×arch ×1.72)."""
    names = {"×".join(level) or "pooled": set(level) for level in LEVELS}  # the levels lookup falls back through
    out = {lvl: max([fitted.get(lvl, every)] + [w for m, w in fitted.items() if names.get(m, set()) > own])
           for lvl, own in names.items()}
    out[ALL_LEVELS] = every
    return out


def scale_for(scales: dict[str, float], level: str) -> float:
    """The factor fitted for `level`, or the one fitted on all held-out rows where that level had too few."""
    return scales.get(level, scales[ALL_LEVELS])


def entry_scale(cal: Any, level: str) -> float:
    """The factor a calibration entry's band is widened by: its fitted `interval_scale`, or for a file written
    before the factors were fitted, the hand-set widening of its level."""
    fitted = getattr(cal, "interval_scale", None)
    return float(fitted) if fitted is not None else HAND_SET[level]


def interval(predicted: float, band: tuple[float, float], scale: float) -> tuple[float, float]:
    """The 80 % range of a measured value around `predicted` (a value in the metric's own direction); it
    always holds the prediction itself."""
    lo, hi = min(band[0], 0.0), max(band[1], 0.0)
    return predicted * float(np.exp(lo * scale)), predicted * float(np.exp(hi * scale))


def scales_of(calibrations: Iterable[Any]) -> dict[str, float]:
    """The fitted factor of each level, as a calibration file carries them (entries without one are skipped)."""
    out = {level_name(c.engine, c.family, c.arch): float(c.interval_scale) for c in calibrations
           if getattr(c, "interval_scale", None) is not None}
    if out:
        out[ALL_LEVELS] = max(out.values())
    return out


def slow_end(cal: Any, level: str) -> float:
    """How many times slower than predicted the slow end of the 80 % interval is (≥ 1): the calibration's
    10th percentile of ln(measured / predicted speed), scaled by its level's factor as `llmplan estimate`'s
    interval is."""
    return float(np.exp(max(0.0, -cal.log_error_p10 * entry_scale(cal, level))))
