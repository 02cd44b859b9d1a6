"""N replicas behind a router, the metrics users read, and the deployment → simulator glue.

Routers: ``round-robin`` (request i goes to replica i mod N: the replicas are independent and
run in parallel — local processes, or a Dask cluster when an address is given — with results
identical either way) and ``least-loaded`` (each request goes to the replica with the fewest
requests outstanding at its arrival: every replica is first advanced to the arrival time, to
within the engine step in progress; the replicas are co-simulated in arrival order in one
process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..catalog import Catalog
from ..errors import LlmplanError
from ..memory.fit import fit as memory_fit
from ..perf.efficiency import deployment_efficiency
from ..perf.limits import reserves_answer
from ..perf.shape import machine, stage_shape
from ..specs import Deployment
from .simulator import EngineLimits, Replica, ReplicaResult, simulate_replica
from .stepmodel import StepModel
from .workload import Requests, Slo

Router = Literal["round-robin", "least-loaded"]


@dataclass(frozen=True)
class ReplicaSpec:
    model: StepModel
    limits: EngineLimits


def replica_spec(d: Deployment, cat: Catalog, max_num_seqs: int | None = None,
                 max_num_batched_tokens: int | None = None, memory_fraction: float | None = None,
                 context_tokens: int | None = None) -> ReplicaSpec:
    """The step model and engine limits of one replica of deployment `d`, served with a context of
    `context_tokens` (the planner's `--max-model-len`; default the model's, at most 32,768); a deployment
    with no memory left for the KV cache cannot serve, and is refused."""
    gguf = tuple(cat.gguf_types)
    shape = stage_shape(d, gguf, d.kv_format.bits / 8)
    mach, _ = machine(d)
    e, _, _ = deployment_efficiency(d, cat)
    mem = memory_fit(d, gguf, context_tokens=context_tokens or min(d.model.max_context, 32768),
                     memory_fraction=memory_fraction, max_num_batched_tokens=max_num_batched_tokens)
    if mem.kv_capacity_tokens <= 0:
        why = mem.reasons[0] if mem.reasons else "no memory left for the KV cache"
        raise LlmplanError(f"{d.model.id} does not fit {d.layout.num_gpus} × {d.accelerator.id} with {d.engine.id}: "
                           f"{why}; see `llmplan fit` for a layout that does")
    limits = EngineLimits(
        max_num_seqs=max_num_seqs or d.engine.defaults.max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens or d.engine.defaults.max_num_batched_tokens,
        kv_capacity_tokens=max(mem.kv_capacity_tokens, 1), block_size=mem.settings.block_size,
        reserve_answer=reserves_answer(d))
    return ReplicaSpec(StepModel.build(shape, mach, e), limits)


def _subset(reqs: Requests, idx: np.ndarray) -> Requests:
    return Requests(reqs.arrival_s[idx], reqs.input_tokens[idx], reqs.output_tokens[idx], reqs.cached_tokens[idx],
                    None if reqs.thinking_tokens is None else reqs.thinking_tokens[idx])


def _run_one(args: tuple[ReplicaSpec, Requests, float]) -> ReplicaResult:
    spec, reqs, sample_s = args
    return simulate_replica(spec.model, spec.limits, reqs, sample_s)


@dataclass
class ClusterResult:
    requests: Requests
    first_token_s: np.ndarray
    finish_s: np.ndarray
    replicas: int
    busy_s: list[float]
    end_s: float
    area_in_system: float
    preemptions: int
    series: dict[str, np.ndarray]  # summed over replicas (kv_util, busy averaged)
    sample_s: float = 60.0  # the series' step (wider than asked when the arrivals span a long time)


SERIES_POINTS = 50_000


def series_step(sample_s: float, reqs: Requests) -> float:
    """The time-series step: as asked, or wider so that the arrivals span at most SERIES_POINTS
    (a day at 0.1 s, or requests days apart, would otherwise fill memory with samples)."""
    span = float(reqs.arrival_s.max()) if len(reqs) else 0.0
    return max(sample_s, span / SERIES_POINTS)


def simulate_cluster(spec: ReplicaSpec, reqs: Requests, replicas: int = 1, router: Router = "round-robin",
                     sample_s: float = 60.0, dask_address: str | None = None, processes: int = 1) -> ClusterResult:
    n = len(reqs)
    sample_s = series_step(sample_s, reqs)
    first = np.full(n, math.nan)
    finish = np.full(n, math.nan)
    results: list[ReplicaResult]
    if router == "round-robin" or replicas == 1:
        parts = [np.arange(i, n, replicas) for i in range(replicas)]
        jobs = [(spec, _subset(reqs, p), sample_s) for p in parts]
        results = _map(jobs, dask_address, processes)
        for p, r in zip(parts, results, strict=True):
            first[p], finish[p] = r.first_token_s, r.finish_s
    elif router == "least-loaded":
        reps = [Replica(spec.model, spec.limits, reqs, sample_s) for _ in range(replicas)]
        owner = np.empty(n, dtype=np.int64)
        arrival = reqs.arrival_s.tolist()
        best = replicas - 1
        for rid in range(n):
            t = arrival[rid]
            for rep in reps:  # the state at the arrival, not as last seen: completions since then count
                rep.advance_to(t)
            # fewest outstanding; ties go round-robin (the next replica after the last one chosen)
            last = best
            best = min(range(replicas), key=lambda j: (reps[j].outstanding(), (j - last - 1) % replicas))
            reps[best].submit(rid)
            owner[rid] = best
        for rep in reps:
            rep.advance_to(math.inf)
        results = [r.result() for r in reps]
        for j, r in enumerate(results):
            mine = owner == j
            first[mine], finish[mine] = r.first_token_s[mine], r.finish_s[mine]
    else:
        raise ValueError(router)
    length = max(len(r.series["t_s"]) for r in results)
    series: dict[str, np.ndarray] = {}
    for key in ("queue", "running", "kv_util", "busy"):
        arr = np.zeros(length)
        for r in results:
            v = np.asarray(r.series[key])
            arr[: len(v)] += v
        series[key] = arr / (len(results) if key in ("kv_util", "busy") else 1)
    series["t_s"] = np.arange(length) * sample_s
    return ClusterResult(reqs, first, finish, replicas, [r.busy_s for r in results], max(r.end_s for r in results),
                         sum(r.area_in_system for r in results), sum(r.preemptions for r in results), series,
                         sample_s)


def _map(jobs: list[Any], dask_address: str | None, processes: int) -> list[ReplicaResult]:
    """Run independent replicas: on a Dask cluster, in local processes, or in this process."""
    if dask_address:
        try:
            from dask.distributed import Client
        except ImportError:
            from ..errors import LlmplanError

            raise LlmplanError("--dask needs the dask[distributed] package: pip install 'dask[distributed]'") from None
        with Client(dask_address) as client:
            return list(client.gather(client.map(_run_one, jobs)))
    if processes > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(processes, len(jobs))) as pool:
            return list(pool.map(_run_one, jobs))
    return [_run_one(j) for j in jobs]


# ---------------------------------------------------------------------------------- metrics

PCTS = (50, 95, 99)


def _pcts(x: np.ndarray) -> dict[str, float | None]:
    x = x[np.isfinite(x)]
    out: dict[str, float | None] = {f"p{p}": float(np.percentile(x, p)) if len(x) else None for p in PCTS}
    out["mean"] = float(x.mean()) if len(x) else None
    return out


METRICS = ("ttft", "answer_start", "tpot", "e2e")  # the latencies an SLO holds (Slo: `{metric}_p{p}_ms`)


def answer_start_s(first_s: np.ndarray, finish_s: np.ndarray, output_tokens: np.ndarray,
                   thinking_tokens: np.ndarray | None) -> np.ndarray:
    """When each request's answer starts: its first token, or for a request that thinks first the token after
    its thinking. The tokens after the first come evenly spaced, so after T thinking tokens of an output of o the
    answer starts at first + (finish − first) × T / (o − 1), no later than the finish."""
    if thinking_tokens is None:
        return first_s
    steps = np.maximum(output_tokens.astype(float) - 1, 1.0)
    share = np.minimum(thinking_tokens / steps, 1.0)
    return np.where(thinking_tokens > 0, np.minimum(first_s + (finish_s - first_s) * share, finish_s), first_s)


def request_metrics(c: ClusterResult) -> dict[str, np.ndarray]:
    r = c.requests
    ttft = c.first_token_s - r.arrival_s
    e2e = c.finish_s - r.arrival_s
    out = r.output_tokens.astype(float)
    tpot = np.where(out > 1, (e2e - ttft) / np.maximum(out - 1, 1), np.nan)
    answer = answer_start_s(c.first_token_s, c.finish_s, r.output_tokens, r.thinking_tokens) - r.arrival_s
    return {"ttft_ms": 1e3 * ttft, "answer_start_ms": 1e3 * answer, "tpot_ms": 1e3 * tpot, "e2e_ms": 1e3 * e2e}


def slo_limits(slo: Slo) -> dict[str, float]:
    """Per-request limits for goodput: the tightest limit given for each metric."""
    out = {}
    for metric in METRICS:
        vals = [getattr(slo, f"{metric}_p{p}_ms") for p in PCTS if getattr(slo, f"{metric}_p{p}_ms")]
        if vals:
            out[f"{metric}_ms"] = min(vals)
    return out


def summarize(c: ClusterResult, slo: Slo, warmup_s: float = 0.0) -> dict[str, Any]:
    r = c.requests
    m = request_metrics(c)
    keep = r.arrival_s >= warmup_s
    done = np.isfinite(c.finish_s) & keep
    span = max(c.end_s - warmup_s, 1e-9)
    t_first, t_last = float(r.arrival_s[keep].min()) if keep.any() else 0.0, c.end_s
    window = max(t_last - t_first, 1e-9)
    out_tokens = float(r.output_tokens[done].sum())
    in_tokens = float(r.input_tokens[done].sum())
    limits = slo_limits(slo)
    good = done.copy()
    for k, lim in limits.items():
        v = m[k]
        good &= np.where(np.isnan(v), True, v <= lim)
    goodput_pct = 100.0 * good.sum() / max(done.sum(), 1)
    pct = {k: _pcts(v[keep]) for k, v in m.items()}
    checks = {}
    for metric in METRICS:
        for p in PCTS:
            lim = getattr(slo, f"{metric}_p{p}_ms")
            if lim:
                val = pct[f"{metric}_ms"][f"p{p}"]
                # a run whose answers are all one token long has no TPOT to hold to a limit
                vacuous = metric == "tpot" and val is None and done.any() and not (r.output_tokens[done] > 1).any()
                checks[f"{metric}_p{p}_ms"] = {"limit": lim, "value": val,
                                               "ok": bool(vacuous or (val is not None and val <= lim))}
    checks["goodput_pct"] = {"limit": slo.goodput_pct, "value": goodput_pct, "ok": bool(goodput_pct >= slo.goodput_pct)}
    busy = [b / max(c.end_s, 1e-9) for b in c.busy_s]
    wait = np.mean(c.first_token_s[done] - r.arrival_s[done]) if done.any() else math.nan
    return {
        "requests": int(keep.sum()), "completed": int(done.sum()), "replicas": c.replicas,
        "duration_s": span, "requests_s": float(done.sum()) / window, "output_tok_s": out_tokens / window,
        "total_tok_s": (out_tokens + in_tokens) / window,
        "ttft_ms": pct["ttft_ms"], "tpot_ms": pct["tpot_ms"], "e2e_ms": pct["e2e_ms"],
        "answer_start_ms": pct["answer_start_ms"],
        "thinking_tokens_mean": float(r.thinking_tokens[keep].mean())
        if r.thinking_tokens is not None and keep.any() else None,
        "goodput_pct": goodput_pct, "slo": checks, "slo_met": all(v["ok"] for v in checks.values()),
        "mean_in_system": c.area_in_system / max(c.end_s, 1e-9), "mean_wait_to_first_token_ms": 1e3 * float(wait),
        "queue_max": float(c.series["queue"].max()) if len(c.series["queue"]) else 0.0,
        "queue_mean": float(c.series["queue"].mean()) if len(c.series["queue"]) else 0.0,
        "kv_util_mean": float(c.series["kv_util"].mean()) if len(c.series["kv_util"]) else 0.0,
        "gpu_busy_pct": 100.0 * float(np.mean(busy)), "preemptions": c.preemptions,
    }
