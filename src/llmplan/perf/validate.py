"""`llmplan validate FILE.csv`: predict each row's metric from its conditions, compare with
the measurement, and summarise per metric and overall (DESIGN.md "Benchmark cases")."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import Catalog
from .calibrate import case_params
from .cases import CaseSet, predict, protocol_label, read_cases, stack
from .efficiency import efficiency_arrays, table_from_catalog

WITHIN = 25.0


def predictions(cs: CaseSet, table: dict) -> np.ndarray:
    if not cs.cases:
        return np.array([])
    st = stack(cs.cases)
    e = efficiency_arrays(cs.cases, [case_params(table, c) for c in cs.cases])
    return predict(st, e)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok" and r["error_pct"] is not None]

    def stats(sub: list[dict[str, Any]]) -> dict[str, Any]:
        errs = [abs(r["error_pct"]) for r in sub]
        return {"n": len(sub), "mdape_pct": statistics.median(errs) if errs else None,
                "within_25_pct": 100.0 * sum(e <= WITHIN for e in errs) / len(errs) if errs else None}

    by_metric = {m: stats([r for r in ok if r["metric"] == m]) for m in sorted({r["metric"] for r in ok})}
    scenarios = sorted({r["scenario"] for r in ok if r.get("scenario")})
    by_scenario = {sc: stats([r for r in ok if r.get("scenario") == sc]) for sc in scenarios}
    overall = stats(ok)
    overall["unsupported"] = sum(1 for r in rows if r["status"] != "ok")
    return {"by_metric": by_metric, "by_scenario": by_scenario, "overall": overall}


def validate(paths: Path | list[Path], cat: Catalog, table: dict | None = None) -> dict[str, Any]:
    """Predict every row of the files (DESIGN.md "Benchmark cases") and score it."""
    cs = read_cases(paths, cat)
    pred = predictions(cs, table if table is not None else table_from_catalog(cat))
    rows: list[dict[str, Any]] = []
    for c, p in zip(cs.cases, pred, strict=True):
        measured = c.measured if math.isfinite(c.measured) else None
        good = bool(np.isfinite(p)) and p > 0
        err = (p - measured) / measured * 100 if (good and measured) else None
        rows.append({"id": c.id, "metric": c.metric, "scenario": protocol_label(c), "group": c.group,
                     "predicted": float(p) if good else None, "measured": measured,
                     "error_pct": err, "status": "ok" if good else "unsupported",
                     "reason": None if good else "the model gives no finite value for this metric"})
    for u in cs.unsupported:
        rows.append({"id": u.id, "metric": u.metric, "scenario": None, "group": u.group, "predicted": None,
                     "measured": u.measured if math.isfinite(u.measured) else None, "error_pct": None,
                     "status": "unsupported", "reason": u.reason})
    rows.sort(key=lambda r: cs.order.get(r["id"], len(cs.order)))
    return {"rows": rows, "summary": summarize(rows)}
