"""Typed result models (issue 15): simulate, capacity, tco and plan answers validate against their
models with every key declared (the OpenAPI schema is complete), and the models change nothing:
the JSON a user gets, from the Python API or from the web API (response_model), is the
computation's own, keys neither added nor dropped, ints staying ints."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from llmplan.cost.results import TcoResult
from llmplan.cost.tco import TcoRequest, tco
from llmplan.jsonutil import jsonable
from llmplan.planner import parse_scenario
from llmplan.planner.report import public_json, run
from llmplan.planner.results import PlanResult
from llmplan.results import Result
from llmplan.serving.api import ServeRequest, capacity, simulate
from llmplan.serving.results import CapacityResult, SimulateResult

REPO = Path(__file__).resolve().parent.parent
SERVE = {"model": "llama-3.1-8b", "gpu": "l40s", "workload": "chat"}


def undeclared(m: Any, where: str = "") -> list[str]:
    """Keys a model kept without declaring them, anywhere inside `m`."""
    out = []
    if isinstance(m, BaseModel):
        out += [f"{where}.{k}" for k in (m.model_extra or {})]
        for k in type(m).model_fields:
            out += undeclared(getattr(m, k), f"{where}.{k}")
    elif isinstance(m, dict):
        for k, v in m.items():
            out += undeclared(v, f"{where}.{k}")
    elif isinstance(m, list):
        for i, v in enumerate(m):
            out += undeclared(v, f"{where}[{i}]")
    return out


def same_json(model: type[Result], d: dict[str, Any]) -> None:
    m = model.model_validate(d)
    assert undeclared(m) == [], f"declare these in {model.__name__}"
    # the same keys and values, ints staying ints (a JSON object's keys have no order: RFC 8259)
    assert json.dumps(m.as_json(), sort_keys=True) == json.dumps(d, sort_keys=True)


def test_simulate_result(cat):
    same_json(SimulateResult, jsonable(simulate(ServeRequest(**SERVE, rate_per_s=2, num_requests=300), cat)))


def test_simulate_result_overloaded(cat):
    d = jsonable(simulate(ServeRequest(**SERVE, rate_per_s=500, num_requests=300), cat))
    assert d["overloaded"] and "warning" in d
    same_json(SimulateResult, d)


def test_capacity_result_feasible_and_not(cat):
    same_json(CapacityResult, jsonable(capacity(ServeRequest(**SERVE, rate_per_s=2), cat)))
    d = jsonable(capacity(ServeRequest(**SERVE, rate_per_s=1e6), cat))
    assert d["feasible"] is False and "reason" in d
    same_json(CapacityResult, d)


def test_tco_result_with_and_without_draws(cat):
    same_json(TcoResult, jsonable(tco(TcoRequest(**SERVE, requests_per_day=20000, draws=50), cat)))
    same_json(TcoResult, jsonable(tco(TcoRequest(**SERVE, requests_per_day=20000, draws=0, fixed_replicas=2), cat)))


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "examples" / "reports").iterdir()))
def test_plan_result_of_every_golden_report(example):
    same_json(PlanResult, json.loads((REPO / "examples" / "reports" / example / "plan.json").read_text()))


def test_plan_result_without_an_option(cat):
    from .test_policy_explain import CN

    doc = copy.deepcopy(CN)
    doc["policy"]["data_residency"] = ["CN", "HK"]
    d = jsonable(public_json(run(parse_scenario(doc), cat)))
    assert d["recommendation"] is None and d["why_none"]
    same_json(PlanResult, d)


def test_a_float_field_keeps_an_int_an_int():
    d = {"p50": 3, "p95": 4.5, "p99": None, "mean": 2}
    from llmplan.serving.results import Percentiles

    assert json.dumps(Percentiles.model_validate(d).as_json(), sort_keys=True) == json.dumps(d, sort_keys=True)


def test_the_web_api_answers_the_computation_s_own_json(tmp_path, cat):
    from fastapi.testclient import TestClient

    from llmplan.web.app import create_app

    client = TestClient(create_app(f"sqlite:///{tmp_path / 'db.sqlite'}"), base_url="http://127.0.0.1")
    body = {**SERVE, "rate_per_s": 2, "num_requests": 300}
    r = client.post("/api/simulate", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    stamp = {k: got.pop(k) for k in ("catalog_version", "overrides_in_force")}
    assert stamp["overrides_in_force"] == []
    assert got == jsonable(simulate(ServeRequest(**body), cat))
    schema = client.get("/openapi.json").json()
    for path, name in (("/api/simulate", "SimulateResponse"), ("/api/capacity", "CapacityResponse"),
                       ("/api/tco", "TcoResponse"), ("/api/plan", "PlanResponse")):
        ok = schema["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].endswith("/" + name)


def test_an_undeclared_key_is_found():
    d = {"p50": 1, "p95": 2, "p99": 3, "mean": 1.5, "p999": 4}
    from llmplan.serving.results import Percentiles

    assert undeclared({"x": [Percentiles.model_validate(d)]}) == [".x[0].p999"]
