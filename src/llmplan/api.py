"""The public Python API. The CLI (and later the web app) are thin layers over it.

>>> import llmplan
>>> r = llmplan.fit("meta-llama/Llama-3.1-70B-Instruct", gpu="h100-sxm", num_gpus=2)
>>> r.fits, r.kv_capacity_tokens  # doctest: +SKIP
>>> e = llmplan.estimate("llama-3.1-8b", gpu="l40s", input_tokens=1000, output_tokens=200, concurrency=16)
>>> result = llmplan.plan("examples/internal-assistant.yaml")  # doctest: +SKIP

Every function validates its arguments first: anything wrong raises
:class:`llmplan.errors.SpecError` (a :class:`LlmplanError`) whose ``field`` names the argument
(``"concurrency"``, ``"finance.pue"``, ``"workload.rate_per_s"``) and whose message says what is
wrong; names unknown to the catalog raise :class:`UnknownIdError` with the closest ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .catalog import Catalog, load_catalog
from .errors import SpecError, validated
from .importers import import_model, looks_like_path
from .memory.fit import FitResult
from .memory.fit import fit as _fit
from .memory.params import active_param_count, param_count
from .specs import FitRequest, resolve

if TYPE_CHECKING:
    from .perf.estimate import EstimateReport

KV_SIZING = ("KV cache is sized for `concurrency` sequences of `context_tokens` tokens each "
             "(input + output), rounded up to the engine's KV block size.")


class Component(BaseModel):
    component: str
    bytes: int
    note: str = ""


class FitReport(BaseModel):
    """The answer to "does it fit?" — bytes are integers; per-GPU values are for the busiest GPU."""

    model_config = ConfigDict(frozen=True)

    model: str
    model_name: str | None
    gpu: str
    engine: str
    precision: str
    kv_precision: str
    num_gpus: int
    tp: int
    pp: int
    ep: int
    context_tokens: int
    concurrency: int
    total_params: int
    active_params: int
    weights_bytes: int = Field(description="whole model, summed over its GPUs")
    weights_by_group_bytes: dict[str, int]
    kv_cache_bytes_per_token: int = Field(description="whole model, every attention layer")
    kv_cache_bytes_per_token_per_gpu: int
    per_gpu_memory_bytes: int = Field(description="the device's memory (datasheet)")
    per_gpu_capacity_bytes: int = Field(description="memory the runtime can use on one GPU")
    per_gpu_required_bytes: int
    per_gpu_breakdown: list[Component]
    per_gpu_kv_pool_bytes: int = Field(description="memory the engine gives the KV cache on one GPU")
    headroom_bytes: int
    fits: bool
    kv_capacity_tokens: int = Field(description="tokens the KV pool holds, over all sequences")
    max_concurrency: int = Field(description="sequences of context_tokens the KV pool holds at once")
    max_context_tokens: int = Field(description="longest single sequence the KV pool holds")
    engine_settings: dict[str, Any]
    reasons: list[str]
    notes: list[str]
    kv_sizing: str = KV_SIZING
    sources: dict[str, str]


def _report(r: FitResult) -> FitReport:
    d = r.deployment
    s = r.settings
    breakdown = [
        Component(component="weights", bytes=r.per_gpu_weights_bytes, note=f"{d.weight_format.id}"),
        Component(component="activations", bytes=r.per_gpu_activation_bytes,
                  note=f"peak of a {s.max_num_batched_tokens:,}-token prefill chunk"),
        Component(component="runtime", bytes=r.per_gpu_runtime_bytes,
                  note="CUDA context, non-torch allocations, communication buffers"),
        Component(component="cuda_graphs", bytes=r.per_gpu_cuda_graph_bytes, note="captured decode graphs"),
        Component(component="kv_cache", bytes=r.per_gpu_kv_required_bytes,
                  note=f"{r.concurrency} × {r.context_tokens:,} tokens, {d.kv_format.id}"),
        Component(component="engine_reserve", bytes=r.per_gpu_engine_reserved_bytes,
                  note="left unused by the engine's memory fraction"),
    ]
    m = d.model
    return FitReport(
        model=d.model_source, model_name=m.name, gpu=d.accelerator.id, engine=d.engine.id,
        precision=d.weight_format.id, kv_precision=d.kv_format.id,
        num_gpus=d.layout.num_gpus, tp=d.layout.tp, pp=d.layout.pp, ep=d.layout.ep,
        context_tokens=r.context_tokens, concurrency=r.concurrency,
        total_params=param_count(m), active_params=active_param_count(m),
        weights_bytes=r.weights_bytes, weights_by_group_bytes=r.weights_by_group_bytes,
        kv_cache_bytes_per_token=r.kv_cache_bytes_per_token,
        kv_cache_bytes_per_token_per_gpu=r.kv_cache_bytes_per_token_per_gpu,
        per_gpu_memory_bytes=r.per_gpu_memory_bytes, per_gpu_capacity_bytes=r.per_gpu_capacity_bytes,
        per_gpu_required_bytes=r.per_gpu_required_bytes, per_gpu_breakdown=breakdown,
        per_gpu_kv_pool_bytes=r.per_gpu_kv_pool_bytes,
        headroom_bytes=r.headroom_bytes, fits=r.fits, kv_capacity_tokens=r.kv_capacity_tokens,
        max_concurrency=r.max_concurrency, max_context_tokens=r.max_context_tokens,
        engine_settings={
            "memory_fraction": s.memory_fraction, "memory_fraction_flag": d.engine.memory.memory_fraction_flag,
            "block_size": s.block_size, "max_num_batched_tokens": s.max_num_batched_tokens,
            "max_num_seqs": s.max_num_seqs, "cap_mode": d.engine.memory.cap_mode,
        },
        reasons=r.reasons, notes=r.notes,
        sources={"model": m.config_source, "gpu": d.accelerator.source, "precision": d.weight_format.source,
                 "engine": d.engine.source},
    )


def fit_request(req: FitRequest, catalog: Catalog | None = None) -> FitReport:
    cat = catalog or load_catalog()
    if looks_like_path(req.model):
        imp = import_model(req.model, cat)
        d = resolve(req, cat, model=imp.model, checkpoint_precision=imp.precision, checkpoint_kv=imp.kv_precision,
                    model_source=str(imp.path))
        exact = imp.tensor_bytes if (imp.tensor_bytes and d.weight_format.id == imp.precision) else None
    else:
        d = resolve(req, cat)
        exact = None
    result = _fit(d, tuple(cat.gguf_types), context_tokens=req.context_tokens, concurrency=req.concurrency,
                  memory_fraction=req.gpu_memory_utilization, max_num_batched_tokens=req.max_num_batched_tokens,
                  max_num_seqs=req.max_num_seqs, block_size=req.block_size, exact_tensor_bytes=exact)
    return _report(result)


def fit(model: str, gpu: str, *, catalog_dirs: Iterable[str | os.PathLike[str]] = (), **options: Any) -> FitReport:
    """Does `model` fit on `gpu`? Options are the fields of :class:`FitRequest`
    (num_gpus, tp, pp, ep, precision, kv_precision, context_tokens, concurrency, engine …)."""
    req = validated(FitRequest, {"model": model, "gpu": gpu, **options})
    return fit_request(req, load_catalog(catalog_dirs))


def estimate(model: str, gpu: str, *, catalog_dirs: Iterable[str | os.PathLike[str]] = (),
             **options: Any) -> EstimateReport:
    """How fast does it serve? `input_tokens` and `output_tokens` are required; the other
    options are the fields of :class:`llmplan.perf.estimate.EstimateRequest` (concurrency or
    request_rate, speculative decoding, and everything `fit` takes)."""
    from .perf.estimate import EstimateRequest
    from .perf.estimate import estimate as _estimate

    req = validated(EstimateRequest, {"model": model, "gpu": gpu, **options})
    return _estimate(req, load_catalog(catalog_dirs))


def simulate(model: str, gpu: str, *, workload: str = "chat", catalog_dirs: Iterable[str | os.PathLike[str]] = (),
             **options: Any) -> dict[str, Any]:
    """Serve a workload (a preset id or a workload YAML file) on `replicas` replicas with the
    event-driven simulator. Options are the fields of :class:`llmplan.serving.api.ServeRequest`.
    Returns the JSON-ready dict that :class:`llmplan.SimulateResult` describes (``model_validate`` it
    for attribute access)."""
    from .serving.api import ServeRequest
    from .serving.api import simulate as _simulate

    req = validated(ServeRequest, {"model": model, "gpu": gpu, "workload": workload, **options})
    return _simulate(req, load_catalog(catalog_dirs))


def capacity(model: str, gpu: str, *, workload: str = "chat", catalog_dirs: Iterable[str | os.PathLike[str]] = (),
             **options: Any) -> dict[str, Any]:
    """The fewest replicas that meet the workload's SLOs at its peak hour (same options as :func:`simulate`).
    Returns the dict that :class:`llmplan.CapacityResult` describes."""
    from .serving.api import ServeRequest
    from .serving.api import capacity as _capacity

    req = validated(ServeRequest, {"model": model, "gpu": gpu, "workload": workload, **options})
    return _capacity(req, load_catalog(catalog_dirs))


def tco(model: str, gpu: str, *, catalog_dirs: Iterable[str | os.PathLike[str]] = (),
        **options: Any) -> dict[str, Any]:
    """What does it cost over its life, against cloud GPUs and APIs? Options are the fields of
    :class:`llmplan.cost.tco.TcoRequest` (workload, requests_per_day or rate_per_s, fixed_replicas,
    draws, alternatives, api_ids) and ``finance`` (a mapping of :class:`llmplan.cost.tco.Finance` fields).
    Returns the dict that :class:`llmplan.TcoResult` describes."""
    from .cost.tco import TcoRequest
    from .cost.tco import tco as _tco

    req = validated(TcoRequest, {"model": model, "gpu": gpu, **options})
    return _tco(req, load_catalog(catalog_dirs))


def plan(scenario: Any, *, catalog_dirs: Iterable[str | os.PathLike[str]] = (),
         progress: Any = None) -> dict[str, Any]:
    """The best compliant deployment for a scenario: a :class:`llmplan.planner.Scenario`, a
    mapping of its fields, or the path of a scenario YAML file. Returns the planner's result
    (``llmplan.planner.report.public_json`` makes it the JSON of `llmplan plan --json`, which
    :class:`llmplan.PlanResult` describes)."""
    from pathlib import Path

    from .planner.report import run
    from .planner.scenario import Scenario, load_scenario, parse_scenario

    if isinstance(scenario, Scenario):
        s = scenario
    elif isinstance(scenario, dict):
        s = parse_scenario(scenario)
    elif isinstance(scenario, (str, os.PathLike)):
        s = load_scenario(Path(scenario))
    else:
        raise SpecError("scenario", f"expected a Scenario, a mapping or a file path, got {type(scenario).__name__}")
    return run(s, load_catalog(catalog_dirs), progress=progress)
