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


TRTLLM_SCENARIO = """\
schema_version: 1
name: TensorRT-LLM with long prompts (KV-limited; the answer reserved at admission)
workload:
  requests_per_day: 60000
  input_tokens: {mean: 6000, p95: 12000}
  output_tokens: {mean: 600, p95: 1500}
  slo: {ttft_p95_ms: 3000, tpot_p95_ms: 80}
models: [meta-llama/Llama-3.1-70B-Instruct]
hardware: [h100-sxm]
engines: [trtllm]
precisions: [fp8]
alternatives: []
"""


def test_an_engine_that_reserves_the_answer_matches_the_simulator_too(cat, tmp_path):
    """TensorRT-LLM admits a request with KV for its prompt and whole answer (engines catalog kv_admission): the
    analytic admission wait and the simulator both hold that reservation, and agree within 10 % where the KV
    cache binds."""
    bench = _bench()
    path = tmp_path / "trtllm.yaml"
    path.write_text(TRTLLM_SCENARIO)
    rows = bench.check(path, cat, max_options=1)
    assert len(rows) == 1 and ":trtllm:" in rows[0]["option"]
    assert abs(rows[0]["error_pct"]) <= bench.TOLERANCE_PCT, rows[0]
    assert rows[0]["slo_met"], rows[0]
