"""Property tests over the public Python API (`llmplan.fit/estimate/simulate/tco/plan`).

Valid specs never crash: the answer is a result or the project's own error (a layout that
cannot exist, a format the engine cannot load), never a Python exception. Invalid specs, made
from each field's declared type and bounds (not from the validator's verdict), always raise
:class:`llmplan.SpecError` whose ``field`` is that field and whose message names it."""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal

import pytest
from annotated_types import Ge, Gt, Le, Lt, MaxLen
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import llmplan
from llmplan import LlmplanError, SpecError
from llmplan.catalog import load_catalog
from llmplan.cost.tco import TcoRequest
from llmplan.perf.estimate import EstimateRequest
from llmplan.planner.scenario import Scenario
from llmplan.serving.api import ServeRequest
from llmplan.serving.workload import Lengths
from llmplan.specs import FitRequest
from llmplan.strict import alternatives as members

CAT = load_catalog()
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)

# -------------------------------------------------------------------- the specs and their API calls

BASE: dict[str, dict[str, Any]] = {
    "fit": {"model": "llama-3.1-8b", "gpu": "l40s"},
    "estimate": {"model": "llama-3.1-8b", "gpu": "l40s", "input_tokens": 500, "output_tokens": 100},
    "simulate": {"model": "llama-3.1-8b", "gpu": "l40s", "workload": "chat", "rate_per_s": 1.0, "num_requests": 50},
    "tco": {"model": "llama-3.1-8b", "gpu": "h100-sxm", "draws": 0, "fixed_replicas": 1, "requests_per_day": 1e4},
    "plan": {},
}
SPEC: dict[str, type[BaseModel]] = {"fit": FitRequest, "estimate": EstimateRequest, "simulate": ServeRequest,
                                    "tco": TcoRequest, "plan": Scenario}
# a nested model created from nothing needs its required fields
REQUIRED: dict[type[BaseModel], dict[str, Any]] = {Lengths: {"mean": 100.0}}


def call(api: str, doc: dict[str, Any]) -> Any:
    if api == "plan":
        return llmplan.plan(doc)
    return getattr(llmplan, api)(**doc)


# -------------------------------------------------------------------- reading a field's declared type

def constraints(annotation: Any, metadata: list[Any] = ()) -> list[Any]:
    """Bounds declared on a field or inside its `Annotated` alternatives (Ge, Gt, Le, Lt, MaxLen)."""
    out = [x for m in metadata for x in ([MaxLen(m.max_length)] if getattr(m, "max_length", None) else [m])]
    alts = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    for a in alts:
        if typing.get_origin(a) is typing.Annotated:
            for m in typing.get_args(a)[1:]:
                out.extend(getattr(m, "metadata", None) or [m])
                if getattr(m, "max_length", None) is not None:
                    out.append(MaxLen(m.max_length))
    return [m for m in out if isinstance(m, (Ge, Gt, Le, Lt, MaxLen))]


def has_text(t: Any) -> bool:
    t = members(t)
    return any(m is str or any(has_text(a) for a in typing.get_args(m) if a is not Ellipsis
                               and typing.get_origin(m) in (list, tuple, dict)) for m in t)


def is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every field of a spec, nested models included, as (path, FieldInfo)."""
    out = []
    for name, f in model.model_fields.items():
        out.append((prefix + (name,), f))
        for m in members(f.annotation):
            if is_model(m):
                out.extend(fields(m, prefix + (name,)))
    return out


def _accepts(t: Any, v: Any) -> bool:
    """Could a value of this JSON shape be valid for type `t`? (generous: True when unsure)."""
    origin = typing.get_origin(t)
    if t is type(None):
        return v is None
    if t is Any:
        return True
    if origin is Literal:
        return v in typing.get_args(t)
    if t is str:
        return isinstance(v, str)
    if t is bool:
        return isinstance(v, bool)
    if t is int:
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()) or \
            (isinstance(v, str) and v.strip().lstrip("+-").isdigit())
    if t is float:
        if isinstance(v, str):
            try:
                float(v)
                return True
            except ValueError:
                return False
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if origin in (list, tuple) or t in (list, tuple):
        return isinstance(v, list)
    if origin is dict or t is dict or is_model(t):
        return isinstance(v, dict)
    return True


def invalid_values(f: Any) -> list[tuple[Any, tuple]]:
    """Values this field's declaration rules out, each with the path suffix pydantic reports."""
    kinds = members(f.annotation)
    numeric = [k for k in kinds if k in (int, float)]
    out: list[tuple[Any, tuple]] = []
    for v in ("zz-not-valid", 7, 2.5, [1], {"zz": 1}, True):
        if not any(_accepts(k, v) for k in kinds):
            out.append((v, ()))
    bounds = constraints(f.annotation, f.metadata)
    if numeric:
        step = 1 if float not in numeric else 0.5
        for m in bounds:
            if isinstance(m, Ge):
                out.append((m.ge - step, ()))
            elif isinstance(m, Gt):
                out.append((m.gt, ()))
            elif isinstance(m, Le):
                out.append((m.le + step if float in numeric else m.le + 1, ()))
            elif isinstance(m, Lt):
                out.append((m.lt, ()))
        if float in numeric:
            out += [(math.nan, ()), (math.inf, ()), (-math.inf, ())]
    if str in kinds:
        out += [("x" * (m.max_length + 1), ()) for m in bounds if isinstance(m, MaxLen)]
    for k in kinds:
        origin, args = typing.get_origin(k), typing.get_args(k)
        if origin in (list, tuple) and args:
            item = members(args[0])
            if any(typing.get_origin(i) is Literal or i is float for i in item):
                out.append((["zz-not-valid"], (0,)))
            out += [(["x" * (m.max_length + 1)], (0,)) for m in constraints(args[0]) if isinstance(m, MaxLen)]
        if origin is dict and len(args) == 2:
            out.append(({"h100": "zz-not-valid"}, ("h100",)))
            out.append(({"h100": math.nan}, ("h100",)))
            out += [({"h100": -1.0}, ("h100",)) for m in constraints(args[1]) if isinstance(m, (Ge, Gt))][:1]
            out += [({"x" * (m.max_length + 1): 1.0}, ()) for m in constraints(args[0]) if isinstance(m, MaxLen)]
    return out


def set_in(doc: dict[str, Any], path: tuple[str, ...], value: Any, spec: type[BaseModel]) -> dict[str, Any]:
    """A copy of `doc` with `value` at `path`, creating nested models (with their required fields)."""
    out = dict(doc)
    if len(path) == 1:
        out[path[0]] = value
        return out
    f = spec.model_fields[path[0]]
    sub = next(m for m in members(f.annotation) if is_model(m))
    inner = out.get(path[0])
    base = inner if isinstance(inner, dict) else dict(REQUIRED.get(sub, {}))
    out[path[0]] = set_in(base, path[1:], value, sub)
    return out


CASES = [(api, path, value, suffix)
         for api, spec in SPEC.items()
         for path, f in fields(spec)
         for value, suffix in invalid_values(f)]
CASES += [(api, path + ("zz_unknown_field",), 1, ())  # an unknown key inside every nested model
          for api, spec in SPEC.items() for path, f in fields(spec) if any(is_model(m) for m in members(f.annotation))]
CASES += [(api, ("zz_unknown_field",), 1, ()) for api in SPEC]


def test_the_invalid_cases_cover_every_field_of_every_spec():
    covered = {(api, p) for api, p, _, _ in CASES}
    missing = [(api, ".".join(p)) for api, spec in SPEC.items() for p, f in fields(spec)
               if f.annotation is not bool and (api, p) not in covered]
    assert not missing, f"fields with no invalid value drawn: {missing}"
    assert len(CASES) > 300


def test_every_text_field_has_a_length_limit():
    """A name of a million characters is refused at the boundary, not fed to a fuzzy matcher or the file system."""
    unbounded = [(api, ".".join(p)) for api, spec in SPEC.items() for p, f in fields(spec)
                 if has_text(f.annotation) and not _text_bounded(f)]
    assert not unbounded, unbounded


def _text_bounded(f: Any) -> bool:
    if any(isinstance(m, MaxLen) for m in constraints(f.annotation, f.metadata)):
        return True
    # containers: every text part (list items, dict keys) carries its own limit
    for k in members(f.annotation):
        for a in typing.get_args(k):
            if a is not Ellipsis and has_text(a) and not any(isinstance(m, MaxLen) for m in constraints(a)):
                return False
        if k is str:
            return False
    return True
    assert len(CASES) > 300


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CASES))
def test_invalid_specs_raise_spec_error_naming_the_field(case):
    api, path, value, suffix = case
    doc = set_in(BASE[api], path, value, SPEC[api])
    with pytest.raises(SpecError) as info:
        call(api, doc)
    err = info.value
    want = ".".join(map(str, path + suffix))
    assert err.field == want or err.field.startswith(want + "."), (doc, err.field, str(err))
    assert path[-1] in str(err)


@pytest.mark.parametrize("api", sorted(SPEC))
def test_every_invalid_field_is_reported_on_its_own(api):
    """Exhaustively, not by sampling: every drawn invalid value of every field."""
    bad = []
    for a, path, value, suffix in CASES:
        if a != api:
            continue
        try:
            call(api, set_in(BASE[api], path, value, SPEC[api]))
            bad.append((".".join(path), value, "accepted"))
        except SpecError as err:
            want = ".".join(map(str, path + suffix))
            if not (err.field == want or err.field.startswith(want + ".")):
                bad.append((".".join(path), value, err.field))
        except LlmplanError as err:
            bad.append((".".join(path), value, f"{type(err).__name__}: {err}"))
    assert not bad, bad


# -------------------------------------------------------------------- valid specs never crash

MODELS = [m.id for m in CAT.models]
GPUS = [a.id for a in CAT.accelerators]
ENGINES = [e.id for e in CAT.engines]
FORMATS = [None] + [f.id for f in CAT.quant_formats if not f.id.startswith("gguf")][:16]

deployment = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS), "gpu": st.sampled_from(GPUS),
}, optional={
    "engine": st.sampled_from(ENGINES), "precision": st.sampled_from(FORMATS),
    "tp": st.sampled_from([1, 2, 4, 8]), "pp": st.sampled_from([1, 2]),
    "context_tokens": st.integers(1, 2_000_000), "concurrency": st.integers(1, 4096),
    "gpu_memory_utilization": st.floats(0.05, 1.0),
})


@FAST
@given(deployment)
def test_valid_fit_specs_answer_or_refuse_cleanly(doc):
    try:
        r = llmplan.fit(**doc)
    except LlmplanError:
        assume(False)  # a clean refusal; hypothesis fails the test if nearly every case is refused
    assert r.fits == (r.headroom_bytes >= 0) or not r.fits
    assert r.per_gpu_required_bytes == sum(c.bytes for c in r.per_gpu_breakdown)
    assert min(r.weights_bytes, r.kv_capacity_tokens, r.per_gpu_kv_pool_bytes) >= 0


@FAST
@given(deployment, st.integers(1, 200_000), st.integers(1, 20_000), st.one_of(st.none(), st.floats(0.01, 1000)))
def test_valid_estimates_answer_or_refuse_cleanly_and_respect_the_roofline(doc, i, o, rate):
    doc = {**doc, "input_tokens": i, "output_tokens": o}
    if rate is not None:
        doc["request_rate"] = rate
    try:
        r = llmplan.estimate(**doc)
    except LlmplanError:
        assume(False)  # a clean refusal; hypothesis fails the test if nearly every case is refused
    assert r.phases, "an estimate without its phases"
    for phase in r.phases.values():
        assert phase.time_ms >= phase.roofline_ms * (1 - 1e-9)
    # an endless load beyond what the deployment serves has no TTFT: the answer says 'saturated' instead
    unbounded = r.saturation is not None and r.saturation.unbounded
    assert (r.ttft_ms is None) == unbounded and (not unbounded or r.saturation.message.startswith("saturated"))
    assert (r.tpot_ms is None) == (o <= 1), "TPOT is defined exactly when a token follows the first"
    numbers = [r.output_tok_s, r.max_throughput_output_tok_s] + ([] if unbounded else [r.ttft_ms]) \
        + ([] if o <= 1 else [r.tpot_ms])
    assert all(math.isfinite(x) and x > 0 for x in numbers), numbers


finance = st.fixed_dictionaries({}, optional={
    "horizon_years": st.floats(0.5, 30), "pue": st.floats(1, 3), "discount_rate": st.floats(0, 1),
    "electricity_usd_per_kwh": st.floats(0, 10), "depreciation_years": st.floats(0.5, 30),
    "utilisation_pct": st.floats(1, 100), "residual_value_pct": st.floats(0, 100),
    "region": st.sampled_from([r.id for r in CAT.regions]),
})


@FAST
@given(
    st.sampled_from(
        ["llama-3.1-8b", "qwen2.5-7b-instruct", "llama-3.3-70b-instruct", "mistralai/Mistral-Small-24B-Instruct-2501"]
    ),
    st.sampled_from(["h100-sxm", "h200-sxm", "mi300x", "l40s", "rtx-4090", "gaudi3"]),
    finance,
    st.integers(1, 6),
    st.floats(1e2, 1e7),
    st.floats(100, 1e5),
)
def test_valid_tco_specs_answer_or_refuse_cleanly_with_non_negative_costs(model, gpu, fin, replicas, per_day, price):
    try:
        r = llmplan.tco(model, gpu, finance={**fin, "gpu_price_usd": price}, fixed_replicas=replicas,
                        requests_per_day=per_day, draws=0)
    except LlmplanError:
        assume(False)  # a clean refusal; hypothesis fails the test if nearly every case is refused
    money = [r["capex_usd"], r["tco_usd"], r["npv_usd"], r["cost_per_million_tokens_usd"],
             *r["opex_items_usd_per_year"].values()]
    assert all(math.isfinite(x) and x >= 0 for x in money), money
    for alt in r["alternatives"]:
        assert alt["tco_usd"] >= 0
