"""Calibration: fit the efficiency factors of each engine × hardware family × architecture
class (dense, MoE, MLA) to measurements.

Seven parameters per group (memory-bandwidth efficiency, compute efficiency, per-step
overhead, per-request overhead, routed-expert efficiency, an engine's weight-only kernel
efficiency relative to the catalog's kernel ratio, and the activation passes of the kernels
between the GEMMs), fitted by robust least squares (soft-L1)
on ``ln(predicted / measured)``. What is measured elsewhere is not fitted: the all-reduce
costs come from the collectives catalog, the weight-only GEMM rates from the kernels catalog. Groups
are fitted in a hierarchy so that a group with few rows borrows
strength from its parent, and combinations without rows fall back to pooled fits:

    * / * / *               all rows (weak prior)
    * / family / *          one family, all engines (prior: * / * / *)
    engine / * / *          one engine, all families (prior: * / * / *)
    engine / family / *     (prior: engine / * / *)
    … / arch                each of these split by architecture class where the rows have
                            more than one class (prior: the same level without the split)

The result is deterministic: same data and date, same file.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog.loader import dump_entries
from ..errors import LlmplanError
from .cases import Case, CaseSet, Stacked, predict, stack
from .efficiency import ANY, NAMES, PARAMS, Key, efficiency_arrays, lookup, params_of

PRIOR = {name: value for name, _, value in PARAMS}
SIGMA = {"pooled": 2.0, "engine": 1.0, "family": 1.0, "group": 0.5}
# Parameters that belong to an engine's software (API server, tokenizer, admission, which kernels it fuses), not
# to the hardware: pooled and per-family fits keep them at the prior instead of borrowing another engine's (an
# engine without rows of its own, vLLM, would otherwise take llama.cpp's unfused activation passes on the
# families where llama.cpp rows dominate).
ENGINE_ONLY = ("request_overhead_s", "eta_kernel", "activation_passes")
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


def arch_of(c: Case) -> str:
    """The architecture class a case is calibrated with: mla, moe or dense."""
    if float(c.shape.mla) > 0:
        return "mla"
    return "moe" if float(c.shape.num_experts) > 0 else "dense"


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
    arch: str = ANY
    engine_rows: tuple[tuple[str, int], ...] = ()  # rows per engine, most first


# split a level by architecture class (dense / moe / mla) where its rows hold more than one
SPLIT_ARCH = True


def fit_all(cs: CaseSet, base: dict[Key, Any] | None = None, split_arch: bool | None = None) -> dict[Key, GroupFit]:
    """Fit every level of the hierarchy to the cases. With `base` (an existing calibration
    table), only engine × family × arch groups are fitted, each with the base's closest fit as
    prior: a user's few measurements adjust the bundled calibration instead of replacing it."""
    split = SPLIT_ARCH if split_arch is None else split_arch
    cases = [c for c in cs.cases if math.isfinite(c.measured) and c.measured > 0]
    if not cases:
        raise LlmplanError("no usable measurements to calibrate on (every row was unsupported or had no value)")
    measured = np.array([c.measured for c in cases])
    archs = [arch_of(c) for c in cases]
    fits: dict[Key, GroupFit] = {}

    def run(idx: list[int], prior: dict[str, float], sigma: float, key: Key) -> dict[str, float]:
        sub = [cases[i] for i in idx]
        st = stack(sub)
        p = _fit(st, measured[idx], prior, sigma, frozen=ENGINE_ONLY if key[0] == ANY else ())
        errs = np.log(measured[idx] / predict(st, efficiency_arrays(sub, [p] * len(sub))))
        per_engine = Counter(c.engine for c in sub)
        fits[key] = GroupFit(key[0], key[1], p, len(sub), tuple(sorted({c.group for c in sub})), errs, key[2],
                             tuple(sorted(per_engine.items(), key=lambda kv: (-kv[1], kv[0]))))
        return p

    def by_arch(idx: list[int], parent: dict[str, float], sigma: float, engine: str, family: str) -> None:
        classes = sorted({archs[i] for i in idx})
        if not split or len(classes) < 2:
            return
        for a in classes:
            sub = [i for i in idx if archs[i] == a]
            if len(sub) >= MIN_ROWS:
                run(sub, parent, sigma, (engine, family, a))

    if base is not None:
        for eng, fam, a in sorted({(c.engine, c.family, archs[k]) for k, c in enumerate(cases)}):
            sub = [i for i, c in enumerate(cases) if (c.engine, c.family, archs[i]) == (eng, fam, a)]
            run(sub, params_of(lookup(base, eng, fam, a)[0]), SIGMA["group"], (eng, fam, a))
        return fits
    every = list(range(len(cases)))
    pooled = run(every, PRIOR, SIGMA["pooled"], (ANY, ANY, ANY))
    by_arch(every, pooled, SIGMA["family"], ANY, ANY)
    for fam in sorted({c.family for c in cases}):
        idx = [i for i, c in enumerate(cases) if c.family == fam]
        if len(idx) >= MIN_ROWS:
            by_arch(idx, run(idx, pooled, SIGMA["family"], (ANY, fam, ANY)), SIGMA["group"], ANY, fam)
    for eng in sorted({c.engine for c in cases}):
        idx = [i for i, c in enumerate(cases) if c.engine == eng]
        if len(idx) < MIN_ROWS:
            continue
        eng_p = run(idx, pooled, SIGMA["engine"], (eng, ANY, ANY))
        by_arch(idx, eng_p, SIGMA["group"], eng, ANY)
        for fam in sorted({cases[i].family for i in idx}):
            sub = [i for i in idx if cases[i].family == fam]
            if len(sub) >= MIN_ROWS:
                by_arch(sub, run(sub, eng_p, SIGMA["group"], (eng, fam, ANY)), SIGMA["group"], eng, fam)
    return fits


def case_params(table: dict[Key, Any], c: Case) -> dict[str, float]:
    """The calibrated parameters a benchmark case is predicted with."""
    return params_of(lookup(table, c.engine, c.family, arch_of(c))[0])


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


def calibration_entries(fits: dict[Key, GroupFit], data: Path | list[Path], date: str,
                        scale_of: Callable[[Key], float | None] = lambda _key: None) -> list[dict[str, Any]]:
    """The entries of a calibration file; `scale_of` gives each entry's interval factor (perf/intervals.py)."""
    out = []
    for (eng, fam, arch), g in sorted(fits.items()):
        scale = scale_of((eng, fam, arch))
        errs = g.log_errors[np.isfinite(g.log_errors)]
        out.append({
            "id": f"{eng.replace(ANY, 'any engine')} on {fam.replace(ANY, 'any hardware')}"
                  + ("" if arch == ANY else f", {arch} models"),
            "engine": eng,
            "family": fam,
            "arch": arch,
            **{k: _round(v) for k, v in g.params.items()},
            "n_rows": g.n_rows,
            "groups": list(g.groups),
            "engine_rows": dict(g.engine_rows),
            "log_error_p10": _round(float(np.percentile(errs, 10))) if len(errs) else 0.0,
            "log_error_p90": _round(float(np.percentile(errs, 90))) if len(errs) else 0.0,
            "mdape_pct": _round(float(np.median(np.abs(np.expm1(errs))) * 100)) if len(errs) else 0.0,
            **({} if scale is None else {"interval_scale": _round(scale, 4)}),
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
