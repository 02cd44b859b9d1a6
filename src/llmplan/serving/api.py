"""`llmplan simulate` and `llmplan capacity`: the serving simulator and capacity planning."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import ConfigDict, Field, ValidationError

from ..catalog import Catalog
from ..errors import LlmplanError, spec_error
from ..perf.scenarios import closed_loop
from ..perf.shape import machine, stage_shape
from ..specs import (
    MIN_RATE_PER_S,
    MIN_REQUESTS_PER_DAY,
    Deployment,
    FitRequest,
    NameOrPath,
    resolve,
)
from .cluster import ReplicaSpec, replica_spec, simulate_cluster, summarize
from .workload import Workload, generate, hourly_weights, peak_rate, preset

MAX_CHECK_REQUESTS = 40_000
MAX_REPLICAS = 10_000


class ServeRequest(FitRequest):
    """A deployment (as for `fit`) and a workload to serve."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "llama-3.1-8b", "gpu": "l40s", "workload": "chat", "rate_per_s": 2, "num_requests": 500}]})

    workload: NameOrPath = Field(description="a workload preset id (chat, rag, …) or a workload YAML file")
    rate_per_s: float | None = Field(default=None, ge=MIN_RATE_PER_S, le=1e6, description="override: requests per second")
    requests_per_day: float | None = Field(default=None, ge=MIN_REQUESTS_PER_DAY, le=1e10, description="override: requests per day")
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    router: Literal["round-robin", "least-loaded"] = "round-robin"
    num_requests: int | None = Field(default=None, ge=1, le=20_000_000)
    duration_s: float | None = Field(default=None, ge=0.001, le=30 * 86400)
    seed: int = Field(default=0, ge=0)
    sample_s: float = Field(default=60.0, ge=0.1, le=86400, description="time-series resolution")


def load_workload(name: str, cat: Catalog) -> Workload:
    if cat.workload_presets.find(name) is not None:
        return preset(name, cat)
    p = Path(name)
    if not p.suffix or not p.exists():
        hint = ", ".join(x.id for x in cat.workload_presets if x.input_mean)
        raise LlmplanError(f"workload {name!r} is neither a preset ({hint}) nor a workload file")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LlmplanError(f"{p}: not a readable YAML workload ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise LlmplanError(f"{p}: a workload file is a mapping of Workload fields")
    from ..yamlguard import check_expanded_size

    check_expanded_size(doc, str(p))
    base = doc.pop("preset", None)
    try:
        return preset(base, cat, **doc) if base else Workload(**doc)
    except ValidationError as exc:
        raise spec_error(exc, str(p)) from None


def _workload(req: ServeRequest, cat: Catalog) -> Workload:
    w = load_workload(req.workload, cat)
    if req.rate_per_s is not None:
        w = w.model_copy(update={"rate_per_s": req.rate_per_s, "requests_per_day": None, "trace": None})
    if req.requests_per_day is not None:
        w = w.model_copy(update={"requests_per_day": req.requests_per_day, "rate_per_s": None, "trace": None})
    if w.rate_per_s is None and w.requests_per_day is None and not w.trace:
        raise LlmplanError("the workload has no arrival rate: give --rate or --requests-per-day")
    return w


def simulate(req: ServeRequest, cat: Catalog, dask_address: str | None = None, processes: int = 1) -> dict[str, Any]:
    d = resolve(req, cat)
    w = _workload(req, cat)
    spec = replica_spec(d, cat, req.max_num_seqs, req.max_num_batched_tokens, req.gpu_memory_utilization)
    n = req.num_requests
    if n is None and req.duration_s is None and w.rate_per_s is not None:
        n = 10_000
    reqs = generate(w, cat, seed=req.seed, num_requests=n, duration_s=req.duration_s,
                    max_context=min(req.context_tokens or d.model.max_context, d.model.max_context))
    if not len(reqs):
        raise LlmplanError("the workload generated no requests")
    c = simulate_cluster(spec, reqs, req.replicas, req.router, req.sample_s, dask_address, processes)
    out = summarize(c, w.slo)
    out["deployment"] = _describe(d, spec, req)
    series = dict(c.series)
    series.update(_latency_series(c, c.sample_s, len(series["t_s"])))
    out["series"] = {k: [round(float(x), 6) if np.isfinite(x) else None for x in v] for k, v in series.items()}
    return out


def _latency_series(c, sample_s: float, length: int) -> dict[str, np.ndarray]:
    """TTFT and TPOT percentiles of the requests arriving in each time bucket."""
    from .cluster import request_metrics

    m = request_metrics(c)
    bucket = np.minimum((c.requests.arrival_s // sample_s).astype(np.int64), max(length - 1, 0))
    out = {f"{k}_{p}": np.full(length, np.nan) for k in ("ttft_ms", "tpot_ms") for p in ("p50", "p95")}
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(length + 1))
    for b in range(length):
        idx = order[bounds[b]:bounds[b + 1]]
        for k in ("ttft_ms", "tpot_ms"):
            v = m[k][idx]
            v = v[np.isfinite(v)]
            if len(v):
                out[f"{k}_p50"][b], out[f"{k}_p95"][b] = np.percentile(v, [50, 95])
    return out


def _describe(d: Deployment, spec: ReplicaSpec, req: ServeRequest) -> dict[str, Any]:
    return {"model": d.model_source, "gpu": d.accelerator.id, "engine": d.engine.id, "precision": d.weight_format.id,
            "num_gpus_per_replica": d.layout.num_gpus, "tp": d.layout.tp, "pp": d.layout.pp,
            "replicas": req.replicas, "router": req.router, "seed": req.seed,
            "max_num_seqs": spec.limits.max_num_seqs, "max_num_batched_tokens": spec.limits.max_num_batched_tokens,
            "kv_capacity_tokens": spec.limits.kv_capacity_tokens}


def replica_model(d: Deployment, cat: Catalog, spec: ReplicaSpec, w: Workload):
    """The analytic closed-loop model of one replica at the workload's mean lengths, at two loads:
    [0] saturated (as many requests as the engine runs at once), [1] one request alone."""
    from ..perf.calibrate import deployment_efficiency

    shape = stage_shape(d, tuple(cat.gguf_types), d.kv_format.bits / 8)
    mach, _ = machine(d)
    e, _, _ = deployment_efficiency(d, cat)
    i, o = w.lengths("input").mean, w.lengths("output").mean
    occupancy = i + o / 2
    limit = max(1.0, min(spec.limits.max_num_seqs, spec.limits.kv_capacity_tokens / occupancy))
    return closed_loop(shape, mach, e, np.array([limit, 1.0]), i, o, limit, float(spec.limits.max_num_batched_tokens))


def replica_capacity_req_s(d: Deployment, cat: Catalog, spec: ReplicaSpec, w: Workload) -> float:
    """Analytic saturated throughput of one replica (requests/s) for the workload's mean lengths."""
    return float(np.asarray(replica_model(d, cat, spec, w).requests_s)[0])


def alone_too_slow(model, slo) -> str | None:
    """Why no number of replicas can meet the tail SLOs, when one request alone (mean lengths,
    nothing else running; `model` from :func:`replica_model`) already misses a p95/p99 limit."""
    alone = {"ttft": 1e3 * float(np.asarray(model.ttft_s)[1]), "tpot": 1e3 * float(np.asarray(model.tpot_s)[1])}
    for metric, ms in alone.items():
        for p in (95, 99):
            limit = getattr(slo, f"{metric}_p{p}_ms")
            if limit and ms > limit:
                return (f"one request alone, with nothing else running, has a {metric.upper()} of {ms:,.0f} ms "
                        f"at the workload's mean lengths, over the p{p} limit of {limit:,.0f} ms: more replicas "
                        "cannot help (a faster accelerator, more tensor parallelism or a smaller format can)")
    return None


def capacity(req: ServeRequest, cat: Catalog, processes: int = 1) -> dict[str, Any]:
    """Fewest replicas that meet the SLOs at the peak hour (bisection on the simulator, from an
    analytic first guess), the utilisation hour by hour and the headroom."""
    from ..perf.feasibility import layout_infeasible

    d = resolve(req, cat)
    w = _workload(req, cat)
    spec = replica_spec(d, cat, req.max_num_seqs, req.max_num_batched_tokens, req.gpu_memory_utilization)
    lam = peak_rate(w, cat)
    model = replica_model(d, cat, spec, w)
    mu = float(np.asarray(model.requests_s)[0])
    why = layout_infeasible(d, cat, w.lengths("input").mean, w.lengths("output").mean,
                            float(spec.limits.max_num_batched_tokens), w.slo) or alone_too_slow(model, w.slo)
    if why:
        return {"feasible": False, "peak_rate_per_s": lam, "replica_capacity_req_s": mu, "reason": why,
                "deployment": _describe(d, spec, req)}
    guess = max(1, math.ceil(lam / (0.85 * mu)))
    peak = w.model_copy(update={"rate_per_s": lam, "requests_per_day": None, "trace": None})
    n_check = int(min(MAX_CHECK_REQUESTS, max(2000, lam * 600)))
    reqs = generate(peak, cat, seed=req.seed, num_requests=n_check, max_context=d.model.max_context)
    warmup = float(reqs.arrival_s[min(len(reqs) - 1, len(reqs) // 10)])
    tried: dict[int, dict[str, Any]] = {}

    def check(r: int) -> bool:
        if r not in tried:
            c = simulate_cluster(spec, reqs, r, req.router, req.sample_s, None, processes)
            tried[r] = summarize(c, w.slo, warmup_s=warmup)
        return bool(tried[r]["slo_met"])

    hi = guess
    while not check(hi):
        if hi >= MAX_REPLICAS or hi >= 64 * guess:
            floor = tried[hi]
            return {"feasible": False, "peak_rate_per_s": lam, "replica_capacity_req_s": mu,
                    "reason": "the SLOs are not met even with " f"{hi} replicas: the latency of a single request "
                    "on this deployment exceeds them (see `llmplan estimate`)", "at_max_replicas": floor,
                    "deployment": _describe(d, spec, req)}
        hi *= 2
    lo = 0
    if hi == guess:
        lo = max(0, guess // 2)
        while lo > 0 and check(lo):
            hi, lo = lo, lo // 2
    else:
        lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if check(mid):
            hi = mid
        else:
            lo = mid
    best = tried[hi]
    weights = hourly_weights(w.profile, cat) if w.requests_per_day is not None else np.full(24, 1 / 24)
    hourly_rate = (w.requests_per_day * weights / 3600) if w.requests_per_day is not None else np.full(24, lam)
    util = [float(x) for x in 100 * hourly_rate / (hi * mu)]
    gpus = hi * d.layout.num_gpus
    per_server = d.accelerator.max_per_server or 1
    return {
        "feasible": True, "replicas": hi, "gpus": gpus, "servers": math.ceil(gpus / per_server),
        "peak_rate_per_s": lam, "replica_capacity_req_s": mu, "analytic_first_guess": guess,
        "headroom_pct": 100 * (hi * mu / lam - 1), "utilisation_by_hour_pct": util,
        "mean_utilisation_pct": float(np.mean(util)), "at_peak": best,
        "one_fewer": tried.get(hi - 1), "simulations": len(tried), "check_requests": n_check,
        "deployment": _describe(d, spec, req) | {"replicas": hi},
    }
