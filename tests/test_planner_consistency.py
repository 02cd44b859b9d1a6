"""The planner's analytic sizing against the simulator (benchmarks/planner_consistency.py) on one small
example: every ranked configuration checked has an analytic per-replica capacity within 10 % of the
simulated one, and meets its SLOs when the simulator runs it with a seed the planner never used."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("planner_consistency", REPO / "benchmarks" / "planner_consistency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_analytic_capacity_matches_the_simulator(cat):
    bench = _bench()
    rows = bench.check(REPO / "examples" / "china-ascend.yaml", cat, max_options=2)
    assert len(rows) == 2
    for r in rows:
        assert abs(r["error_pct"]) <= bench.TOLERANCE_PCT, r
        assert r["slo_met"], r
