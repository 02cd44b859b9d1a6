"""Calibration: fit the efficiency factors of each engine × hardware family to measurements.

Four parameters per group (memory-bandwidth efficiency, compute efficiency, per-step
overhead, per-collective latency), fitted by robust least squares (soft-L1) on
``ln(predicted / measured)``. Groups are fitted in a hierarchy so that a family with few
rows borrows strength from its engine, and engines or families without rows fall back to
pooled fits:

    * / *          all rows (weak prior)
    engine / *     one engine, all families (prior: * / *)
    * / family     one family, all engines (prior: * / *)
    engine/family  (prior: engine / *)

The result is deterministic: same data and date, same file.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import Catalog
from ..catalog.loader import dump_entries
from ..catalog.schema import Calibration
from ..errors import LlmplanError
from ..specs import Deployment
from .cases import Case, CaseSet, Stacked, predict, stack
from .physics import Efficiency

ANY = "*"
# name, transform (eff: in (0, 1) via a logistic; pos: > 0 via a log), starting point and prior
# of the pooled fit (deliberately vague: sigma 2 in transformed units)
PARAMS: tuple[tuple[str, str, float], ...] = (
    ("eta_bw", "eff", 0.6),
    ("eta_bw_dequant", "eff", 0.5),
    ("eta_flops", "eff", 0.4),
    ("eta_flops_dequant", "eff", 0.3),
    ("step_overhead_s", "pos", 2e-3),
    ("collective_latency_s", "pos", 2e-5),
    ("request_overhead_s", "pos", 5e-3),
    ("eta_moe", "eff", 0.8),
)
NAMES = tuple(p[0] for p in PARAMS)
PRIOR = {name: value for name, _, value in PARAMS}
SIGMA = {"pooled": 2.0, "engine": 1.0, "family": 1.0, "group": 0.5}
# Parameters that belong to an engine's software (API server, tokenizer, admission), not to the
# hardware: pooled and per-family fits keep them at the prior instead of borrowing another engine's.
ENGINE_ONLY = ("request_overhead_s",)
FROZEN_SIGMA = 1e-3
LOSS_SCALE = 0.15  # soft-L1 turns linear beyond ~15 % log error: outliers do not dominate
MIN_ROWS = 3


def _to_z(p: dict[str, float]) -> np.ndarray:
    z = []
    for name, kind, _ in PARAMS:
        v = p[name]
        if kind == "eff":
            v = min(max(v, 1e-4), 1 - 1e-4)
            z.append(math.log(v / (1 - v)))
        else:
            z.append(math.log(max(v, 1e-9)))
    return np.array(z)


def _from_z(z: np.ndarray) -> dict[str, float]:
    out = {}
    for (name, kind, _), x in zip(PARAMS, z, strict=True):
        out[name] = float(1 / (1 + math.exp(-x))) if kind == "eff" else float(math.exp(x))
    return out


def efficiency_arrays(cases: list[Case], params: list[dict[str, float]]) -> Efficiency:
    """Per-case efficiencies: weight-only quantized formats use their own efficiency factors."""
    deq = np.array([c.dequant for c in cases], dtype=bool)

    def col(name: str) -> np.ndarray:
        return np.array([p[name] for p in params], dtype=float)

    return Efficiency(eta_bw=np.where(deq, col("eta_bw_dequant"), col("eta_bw")),
                      eta_flops=np.where(deq, col("eta_flops_dequant"), col("eta_flops")),
                      step_overhead_s=col("step_overhead_s"), collective_latency_s=col("collective_latency_s"),
                      request_overhead_s=col("request_overhead_s"), eta_moe=col("eta_moe"))


def _fit(st: Stacked, measured: np.ndarray, prior: dict[str, float], sigma: float,
         frozen: tuple[str, ...] = ()) -> dict[str, float]:
    z0 = _to_z(prior)
    n = len(st.cases)
    sig = np.array([FROZEN_SIGMA if name in frozen else sigma for name in NAMES])

    def residuals(z: np.ndarray) -> np.ndarray:
        e = efficiency_arrays(st.cases, [_from_z(z)] * n)
        pred = predict(st, e)
        r = np.log(np.maximum(pred, 1e-30) / measured)
        r = np.where(np.isfinite(r), r, 5.0)
        return np.concatenate([r, (z - z0) / sig * math.sqrt(LOSS_SCALE)])

    from scipy.optimize import (
        least_squares,  # imported here: estimating never needs scipy
    )

    sol = least_squares(residuals, z0, loss="soft_l1", f_scale=LOSS_SCALE, method="trf", max_nfev=300)
    return _from_z(sol.x)


@dataclass(frozen=True)
class GroupFit:
    engine: str
    family: str
    params: dict[str, float]
    n_rows: int
    groups: tuple[str, ...]
    log_errors: np.ndarray


def _subset(cases: list[Case], keep: Callable[[Case], bool]) -> list[int]:
    return [i for i, c in enumerate(cases) if keep(c)]


def fit_all(cs: CaseSet, base: dict[tuple[str, str], Any] | None = None) -> dict[tuple[str, str], GroupFit]:
    """Fit every level of the hierarchy to the cases. With `base` (an existing calibration
    table), only engine × family groups are fitted, each with the base's closest fit as prior:
    a user's few measurements adjust the bundled calibration instead of replacing it."""
    cases = [c for c in cs.cases if math.isfinite(c.measured) and c.measured > 0]
    if not cases:
        raise LlmplanError("no usable measurements to calibrate on (every row was unsupported or had no value)")
    measured = np.array([c.measured for c in cases])
    fits: dict[tuple[str, str], GroupFit] = {}

    def run(idx: list[int], prior: dict[str, float], sigma: float, engine: str, family: str) -> dict[str, float]:
        sub = [cases[i] for i in idx]
        st = stack(sub)
        p = _fit(st, measured[idx], prior, sigma, frozen=ENGINE_ONLY if engine == ANY else ())
        errs = np.log(measured[idx] / predict(st, efficiency_arrays(sub, [p] * len(sub))))
        fits[(engine, family)] = GroupFit(engine, family, p, len(sub), tuple(sorted({c.group for c in sub})), errs)
        return p

    if base is not None:
        for eng, fam in sorted({(c.engine, c.family) for c in cases}):
            sub = [i for i, c in enumerate(cases) if (c.engine, c.family) == (eng, fam)]
            prior = params_of(lookup(base, eng, fam)[0])
            run(sub, prior, SIGMA["group"], eng, fam)
        return fits
    pooled = run(list(range(len(cases))), PRIOR, SIGMA["pooled"], ANY, ANY)
    engines = sorted({c.engine for c in cases})
    families = sorted({c.family for c in cases})
    for fam in families:
        idx = _subset(cases, lambda c, f=fam: c.family == f)
        if len(idx) >= MIN_ROWS:
            run(idx, pooled, SIGMA["family"], ANY, fam)
    for eng in engines:
        idx = _subset(cases, lambda c, e=eng: c.engine == e)
        if len(idx) < MIN_ROWS:
            continue
        eng_p = run(idx, pooled, SIGMA["engine"], eng, ANY)
        for fam in sorted({cases[i].family for i in idx}):
            sub = [i for i in idx if cases[i].family == fam]
            if len(sub) >= MIN_ROWS:
                run(sub, eng_p, SIGMA["group"], eng, fam)
    return fits


def lookup(table: dict[tuple[str, str], Any], engine: str, family: str) -> tuple[Any, str]:
    """The closest fit: engine/family, engine/*, */family, */*; and which level was used."""
    for key, level in (((engine, family), "engine×family"), ((engine, ANY), "engine"), ((ANY, family), "family"),
                       ((ANY, ANY), "pooled")):
        if key in table:
            return table[key], level
    raise KeyError("no calibration at all: run `llmplan calibrate`")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _round(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def data_source(data: Path | list[Path], n_rows: int) -> str:
    """Where a calibration entry comes from: the files it was fitted on, each with the start of
    its SHA-256 (one file keeps the form the shipped file has always had)."""
    files = [data] if isinstance(data, Path) else data
    if len(files) == 1:
        return f"fitted by `llmplan calibrate` on {files[0].name} (sha256 {sha256(files[0])[:16]}…, {n_rows} rows)"
    named = ", ".join(f"{f.name} (sha256 {sha256(f)[:16]}…)" for f in files)
    return f"fitted by `llmplan calibrate` on {named}: {n_rows} rows"


def calibration_entries(fits: dict[tuple[str, str], GroupFit], data: Path | list[Path],
                        date: str) -> list[dict[str, Any]]:
    out = []
    for (eng, fam), g in sorted(fits.items()):
        errs = g.log_errors[np.isfinite(g.log_errors)]
        out.append({
            "id": f"{eng.replace(ANY, 'any engine')} on {fam.replace(ANY, 'any hardware')}",
            "engine": eng,
            "family": fam,
            **{k: _round(v) for k, v in g.params.items()},
            "n_rows": g.n_rows,
            "groups": list(g.groups),
            "log_error_p10": _round(float(np.percentile(errs, 10))) if len(errs) else 0.0,
            "log_error_p90": _round(float(np.percentile(errs, 90))) if len(errs) else 0.0,
            "mdape_pct": _round(float(np.median(np.abs(np.expm1(errs))) * 100)) if len(errs) else 0.0,
            "source": data_source(data, g.n_rows),
            "as_of": date,
        })
    return out


def write_calibration(entries: list[dict[str, Any]], out: Path) -> None:
    text = ("# Written by `llmplan calibrate`; do not edit by hand. Re-run it to reproduce this file.\n"
            + dump_entries("calibrations", entries))
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)  # atomic: a failed run leaves the old file


def deployment_efficiency(d: Deployment, cat: Catalog) -> tuple[Efficiency, Calibration, str]:
    """The calibrated efficiencies of deployment `d`: the closest calibration group (engine ×
    accelerator family, then the fallbacks of :func:`lookup`), with the dequantizing-kernel
    factors for weight-only formats. Returns (efficiency, the calibration used, its level)."""
    from .cases import is_dequant
    from .shape import machine

    cal, level = lookup(table_from_catalog(cat), d.engine.id, d.accelerator.family)
    p = params_of(cal)
    deq = is_dequant(d.weight_format, machine(d)[1])
    e = Efficiency(p["eta_bw_dequant" if deq else "eta_bw"], p["eta_flops_dequant" if deq else "eta_flops"],
                   p["step_overhead_s"], p["collective_latency_s"], p["request_overhead_s"], p["eta_moe"])
    return e, cal, level


def table_from_catalog(cat: Catalog) -> dict[tuple[str, str], Calibration]:
    return {(c.engine, c.family): c for c in cat.calibrations}


def params_of(c: Calibration | GroupFit) -> dict[str, float]:
    if isinstance(c, GroupFit):
        return c.params
    return {name: getattr(c, name) for name in NAMES}
