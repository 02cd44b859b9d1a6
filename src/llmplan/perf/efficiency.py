"""The calibrated efficiencies every estimate runs with: the calibration table from the catalog,
the closest group for a deployment (engine × accelerator family × architecture class, then the
fallbacks of :func:`lookup`), and the efficiency arrays built from it. Fitting the table to
measurements is :mod:`llmplan.perf.calibrate`."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import Calibration
from ..specs import Deployment
from .physics import Efficiency

ANY = "*"
# name, transform (eff: in (0, 1) via a logistic; pos: > 0 via a log), starting point and prior
# of the pooled fit (deliberately vague: sigma 2 in transformed units). The engine-only ones (calibrate.ENGINE_ONLY)
# stay at it in pooled and family fits, so it is what an engine without rows of its own gets: for the activation
# passes 20, between the counts fitted for the engines that fuse their norms and activations (SGLang about 10,
# TensorRT-LLM about 24 on Hopper) rather than llama.cpp's unfused 90-250.
PARAMS: tuple[tuple[str, str, float], ...] = (
    ("eta_bw", "eff", 0.6),
    ("eta_flops", "eff", 0.4),
    ("step_overhead_s", "pos", 2e-3),
    ("request_overhead_s", "pos", 5e-3),
    ("eta_moe", "eff", 0.8),
    ("eta_kernel", "pos", 1.0),
    ("activation_passes", "pos", 20.0),
)
NAMES = tuple(p[0] for p in PARAMS)
Key = tuple[str, str, str]  # (engine, family, arch), each possibly ANY


class Fitted(Protocol):
    """A fitted group (:class:`llmplan.perf.calibrate.GroupFit`): its parameters by name."""

    params: dict[str, float]


def efficiency_arrays(cases: list[Any], params: list[dict[str, float]]) -> Efficiency:
    """Per-case efficiencies (arrays). Weight-only formats run at their kernel's catalog ratio to
    16-bit (carried by the machine) times `eta_kernel`, an engine's own factor: pooled and
    family fits keep it at 1 rather than lend one engine's kernels to another."""
    return Efficiency(**{name: np.array([p[name] for p in params], dtype=float) for name in NAMES})


def model_arch(m: Any) -> str:
    return "mla" if m.mla else ("moe" if m.moe else "dense")


LEVELS = (("engine", "family", "arch"), ("engine", "family"), ("engine", "arch"), ("engine",), ("family", "arch"),
          ("family",), ("arch",), ())


def lookup(table: dict[Key, Any], engine: str, family: str, arch: str = ANY) -> tuple[Any, str]:
    """The closest fit, from engine × family × arch down to the pooled fit, and which level was
    used ('engine×family', 'family×arch', 'pooled' …)."""
    given = {"engine": engine, "family": family, "arch": arch}
    for names in LEVELS:
        if "arch" in names and arch == ANY:
            continue
        key = tuple(given[n] if n in names else ANY for n in ("engine", "family", "arch"))
        if key in table:
            return table[key], "×".join(names) or "pooled"
    raise KeyError("no calibration at all: run `llmplan calibrate`")


def slower(e: Efficiency, factor: float) -> Efficiency:
    """The efficiencies of an engine `factor` times slower in everything it computes, reads and schedules
    (bandwidth and FLOP efficiencies divided, per-step and per-request overheads multiplied; the
    collectives, measured separately, unchanged)."""
    return dataclasses.replace(e, eta_bw=e.eta_bw / factor, eta_flops=e.eta_flops / factor,
                               step_overhead_s=e.step_overhead_s * factor,
                               request_overhead_s=e.request_overhead_s * factor)


def deployment_efficiency(d: Deployment, cat: Catalog) -> tuple[Efficiency, Calibration, str]:
    """The calibrated efficiencies of deployment `d`: the closest calibration group (engine ×
    accelerator family × architecture class, then the fallbacks of :func:`lookup`). Returns
    (efficiency, the calibration used, its level)."""
    cal, level = lookup(table_from_catalog(cat), d.engine.id, d.accelerator.family, model_arch(d.model))
    return Efficiency(**params_of(cal)), cal, level


def table_from_catalog(cat: Catalog) -> dict[Key, Calibration]:
    """The calibrations by (engine, family, arch); built once per catalog's calibration list."""
    cached = _TABLES.get(id(cat.calibrations))
    if cached is not None and cached[0] is cat.calibrations:
        return cached[1]
    table = {(c.engine, c.family, c.arch): c for c in cat.calibrations}
    if len(_TABLES) >= 8:  # a few catalogs at a time (overrides build their own): the oldest goes
        _TABLES.pop(next(iter(_TABLES)))
    _TABLES[id(cat.calibrations)] = (cat.calibrations, table)
    return table


_TABLES: dict[int, tuple[Any, dict[Key, Calibration]]] = {}


def params_of(c: Calibration | Fitted) -> dict[str, float]:
    """The parameters of a catalog calibration, or of a fit (anything with `params`)."""
    if isinstance(c, Calibration):
        return {name: getattr(c, name) for name in NAMES}
    return c.params
