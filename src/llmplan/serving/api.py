"""`llmplan simulate` and `llmplan capacity`: the serving simulator and capacity planning."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field, ValidationError

from ..catalog import Catalog
from ..errors import LlmplanError, spec_error
from ..perf.limits import held_tokens
from ..perf.scenarios import closed_loop
from ..perf.shape import machine, stage_shape
from ..specs import (
    MIN_RATE_PER_S,
    MIN_REQUESTS_PER_DAY,
    Cli,
    Deployment,
    FitRequest,
    NameOrPath,
    resolve,
)
from ..units import fmt_sig
from .cluster import ReplicaSpec, replica_spec, simulate_cluster, summarize
from .workload import Workload, generate, hourly_weights, peak_rate, preset, samples_thinking, stated_load

MAX_CHECK_REQUESTS = 40_000
MAX_WORKLOAD_BYTES = 1 * 2**20
MAX_REPLICAS = 10_000


class ServeRequest(FitRequest):
    """A deployment (as for `fit`) and a workload to serve."""

    CLI: ClassVar[dict[str, Cli]] = {
        "workload": Cli(("--workload", "-w"), "Preset (chat, rag, summarization, code-completion, agents) or a "
                        "workload YAML file."),
        "rate_per_s": Cli(("--rate",), "Requests per second, the same all day (Poisson arrivals unless the "
                          "workload says constant)."),
        "requests_per_day": Cli(("--requests-per-day",), "Shaped by the workload's profile."),
        "replicas": Cli(("--replicas", "-r")),
        "router": Cli(("--router",), "round-robin or least-loaded."),
        "num_requests": Cli(("--requests",), "Requests to simulate (default 10,000 at a rate; a whole day with "
                            "--requests-per-day)."),
        "duration_s": Cli(("--duration",), "Seconds of arrivals instead."),
        "seed": Cli(("--seed",)),
        "sample_s": Cli(("--sample",), "Time-series resolution, seconds."),
    }

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "llama-3.1-8b", "gpu": "l40s", "workload": "chat", "rate_per_s": 2, "num_requests": 500}]})

    workload: NameOrPath = Field(description="a workload preset id (chat, rag, …) or a workload YAML file")
    rate_per_s: float | None = Field(
        default=None, ge=MIN_RATE_PER_S, le=1e6, description="override: requests per second"
    )
    requests_per_day: float | None = Field(
        default=None, ge=MIN_REQUESTS_PER_DAY, le=1e10, description="override: requests per day"
    )
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    router: Literal["round-robin", "least-loaded"] = "round-robin"
    num_requests: int | None = Field(default=None, ge=1, le=20_000_000)
    duration_s: float | None = Field(default=None, ge=0.001, le=30 * 86400)
    seed: int = Field(default=0, ge=0)
    sample_s: float = Field(default=60.0, ge=0.1, le=86400, description="time-series resolution")


def load_workload(name: str, cat: Catalog) -> Workload:
    from ..importers import local_files_allowed

    if cat.workload_presets.find(name) is not None:
        return preset(name, cat)
    if not local_files_allowed():
        ids = ", ".join(x.id for x in cat.workload_presets if x.input_mean)
        raise LlmplanError(f"workload: a workload preset id here ({ids}); workload files are read by the CLI only")
    p = Path(name)
    if not p.suffix or not p.exists():
        hint = ", ".join(x.id for x in cat.workload_presets if x.input_mean)
        raise LlmplanError(f"workload {name!r} is neither a preset ({hint}) nor a workload file")
    from ..yamlguard import load_yaml

    try:
        if p.stat().st_size > MAX_WORKLOAD_BYTES:
            raise LlmplanError(f"{p}: over the {MAX_WORKLOAD_BYTES:,}-byte limit for a workload file")
        doc = load_yaml(p.read_text(encoding="utf-8"), str(p))
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmplanError(f"{p}: not a readable YAML workload ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise LlmplanError(f"{p}: a workload file is a mapping of Workload fields")
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


# memory the simulator holds, measured on this implementation (benchmarks: 303 B per request on
# one replica, 169 B per request per replica when least-loaded routing co-simulates them), with margin
SIM_BYTES_PER_REQUEST = 400
SIM_BYTES_PER_COSIM_CELL = 200
MAX_COSIM_CELLS = 20_000_000  # requests × co-simulated replicas (least-loaded): the router's own loop


def expected_requests(req: ServeRequest, w: Workload) -> int | None:
    """How many requests a simulation will generate, known before anything is allocated (None for a trace)."""
    if w.trace:
        return None
    if w.requests_per_day is not None:
        return int(w.requests_per_day)
    if req.num_requests is not None:
        return req.num_requests
    if req.duration_s is not None and w.rate_per_s is not None:
        return int(math.ceil(w.rate_per_s * req.duration_s))
    return 10_000


def check_simulation_size(req: ServeRequest, w: Workload, max_bytes: int | None = None) -> None:
    """Refuse up front a simulation whose size alone rules it out: least-loaded routing over more
    request × replica pairs than MAX_COSIM_CELLS, or more memory than `max_bytes` (a budget)."""
    n = expected_requests(req, w)
    if n is None:
        return
    cosim = req.router == "least-loaded" and req.replicas > 1
    cells = n * req.replicas if cosim else 0
    if cells > MAX_COSIM_CELLS:
        raise LlmplanError(f"least-loaded routing co-simulates every replica: {n:,} requests × {req.replicas:,} "
                           f"replicas is over the limit of {MAX_COSIM_CELLS:,}; use round-robin (replicas simulated "
                           "independently) or fewer requests")
    need = n * SIM_BYTES_PER_REQUEST + cells * SIM_BYTES_PER_COSIM_CELL
    if max_bytes is not None and need > max_bytes:
        raise LlmplanError(
            f"simulating {n:,} requests{f' on {req.replicas:,} co-simulated replicas' if cosim else ''} "
            f"needs about {need / 2**20:,.0f} MiB, over the memory budget of {max_bytes / 2**20:,.0f} MiB; "
            "simulate fewer requests (num_requests, duration_s) or ask the operator for a larger budget"
        )


def simulate(req: ServeRequest, cat: Catalog, dask_address: str | None = None, processes: int = 1,
             max_bytes: int | None = None) -> dict[str, Any]:
    d = resolve(req, cat)
    given = _workload(req, cat)
    w, note = stated_load(given, d.model)  # a workload that states the model's thinking adds it
    split = samples_thinking(given, d.model)  # each request then writes its thinking, and then its answer
    check_simulation_size(req, w, max_bytes)
    spec = replica_spec(d, cat, req.max_num_seqs, req.max_num_batched_tokens, req.gpu_memory_utilization)
    n = req.num_requests
    if n is None and req.duration_s is None and w.rate_per_s is not None:
        n = 10_000
    reqs = generate(given if split else w, cat, seed=req.seed, num_requests=n, duration_s=req.duration_s,
                    max_context=min(req.context_tokens or d.model.max_context, d.model.max_context), thinks=split)
    if not len(reqs):
        raise LlmplanError("the workload generated no requests")
    c = simulate_cluster(spec, reqs, req.replicas, req.router, req.sample_s, dask_address, processes)
    out = summarize(c, w.slo)
    out["deployment"] = _describe(d, spec, req, note)
    out.update(offered_load(d, cat, spec, w, req.replicas))
    series = dict(c.series)
    series.update(_latency_series(c, c.sample_s, len(series["t_s"])))
    out["series"] = {k: [round(float(x), 6) if np.isfinite(x) else None for x in v] for k, v in series.items()}
    return out


def offered_load(d: Deployment, cat: Catalog, spec: ReplicaSpec, w: Workload, replicas: int) -> dict[str, Any]:
    """The peak rate against what the replicas can serve saturated; past 100 % the queue grows for as
    long as arrivals last, so the simulated latencies depend on how long the simulation runs: said."""
    lam = peak_rate(w, cat)
    mu = float(np.asarray(replica_model(d, cat, spec, w).requests_s)[0])
    pct = 100 * lam / (replicas * mu)
    out: dict[str, Any] = {"offered_load_pct": pct, "replica_capacity_req_s": mu, "overloaded": pct > 100}
    if pct > 100:
        out["warning"] = (f"overloaded: the peak of {fmt_sig(lam, 4)} requests/s is {pct:,.0f} % of what {replicas:,} "
                          f"replica(s) serve saturated ({fmt_sig(mu)} requests/s each); the queue grows for as long as "
                          "requests arrive, so these latencies hold only for this many requests. `llmplan "
                          "capacity` sizes the replicas")
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


def _describe(d: Deployment, spec: ReplicaSpec, req: ServeRequest, note: str | None) -> dict[str, Any]:
    return {"workload_note": note,
            "model": d.model_source, "gpu": d.accelerator.id, "engine": d.engine.id, "precision": d.weight_format.id,
            "num_gpus_per_replica": d.layout.num_gpus, "tp": d.layout.tp, "pp": d.layout.pp,
            "replicas": req.replicas, "router": req.router, "seed": req.seed,
            "max_num_seqs": spec.limits.max_num_seqs, "max_num_batched_tokens": spec.limits.max_num_batched_tokens,
            "kv_capacity_tokens": spec.limits.kv_capacity_tokens}


def replica_model(d: Deployment, cat: Catalog, spec: ReplicaSpec, w: Workload):
    """The analytic closed-loop model of one replica at the workload's mean lengths, at two loads:
    [0] saturated (as many requests as the engine runs at once), [1] one request alone."""
    from ..perf.efficiency import deployment_efficiency

    shape = stage_shape(d, tuple(cat.gguf_types), d.kv_format.bits / 8)
    mach, _ = machine(d)
    e, _, _ = deployment_efficiency(d, cat)
    i, o = w.lengths("input").mean, w.lengths("output").mean
    limit = max(1.0, min(spec.limits.max_num_seqs, spec.limits.kv_capacity_tokens / held_tokens(d, i, o)))
    return closed_loop(shape, mach, e, np.array([limit, 1.0]), i, o, limit, float(spec.limits.max_num_batched_tokens))


def replica_capacity_req_s(d: Deployment, cat: Catalog, spec: ReplicaSpec, w: Workload) -> float:
    """Analytic saturated throughput of one replica (requests/s) for the workload's mean lengths."""
    return float(np.asarray(replica_model(d, cat, spec, w).requests_s)[0])


def alone_too_slow(model, slo, thinking_mean: float) -> str | None:
    """Why no number of replicas can meet the tail SLOs, when one request alone (mean lengths,
    nothing else running; `model` from :func:`replica_model`) already misses a p95/p99 limit. Its answer
    starts after its `thinking_mean` thinking tokens (0: the model does not think), each a TPOT."""
    ttft, tpot = 1e3 * float(np.asarray(model.ttft_s)[1]), 1e3 * float(np.asarray(model.tpot_s)[1])
    alone = {"ttft": ttft, "tpot": tpot, "answer_start": ttft + thinking_mean * tpot}
    for metric, ms in alone.items():
        for p in (95, 99):
            limit = getattr(slo, f"{metric}_p{p}_ms")
            if limit and ms > limit:
                name = f"an answer start (after {thinking_mean:,.0f} tokens of thinking)" \
                    if metric == "answer_start" else f"a {metric.upper()}"
                return (f"one request alone, with nothing else running, has {name} of {ms:,.0f} ms "
                        f"at the workload's mean lengths, over the p{p} limit of {limit:,.0f} ms: more replicas "
                        "cannot help (a faster accelerator, more tensor parallelism or a smaller format can)")
    return None


CHECK_SPAN_S = 600  # the peak simulated for each check: ten minutes of one replica's share, at least
MIN_CHECK_REQUESTS = 2000
SLICE_REPLICAS = 16  # least-loaded routing: replicas co-simulated (a slice carrying its share of the peak)


def check_requests(w: Workload, cat: Catalog, lam: float, replicas: int, router: str, seed: int,
                   max_context: int, thinks: bool) -> tuple[Any, int, str]:
    """The requests one capacity check simulates for `replicas` replicas at the peak rate `lam`,
    the replicas simulated, and what stands for what (`thinks`: as :func:`generate`'s). Every check is a
    long steady run per replica (CHECK_SPAN_S of its share, MIN_CHECK_REQUESTS at least), never a
    fixed-size burst spread over many replicas:

    - round-robin: replica i gets every N-th request of the Poisson stream, so its arrivals are a
      renewal process with Erlang-N gaps (mean N / lam); one replica fed exactly that stands for
      each of the N identical replicas;
    - least-loaded: a slice of min(N, SLICE_REPLICAS) replicas co-simulated with their share of
      the peak (a larger pool balances at least as well, so the slice is conservative)."""
    if router == "round-robin" or replicas == 1:
        sim, rate = 1, lam / replicas
    else:
        sim = min(replicas, SLICE_REPLICAS)
        rate = lam * sim / replicas
    n = int(min(MAX_CHECK_REQUESTS, max(MIN_CHECK_REQUESTS, rate * CHECK_SPAN_S)))
    reqs = generate(w.model_copy(update={"rate_per_s": rate, "requests_per_day": None, "trace": None}), cat,
                    seed=seed, num_requests=n, max_context=max_context, thinks=thinks)
    if sim == 1 and replicas > 1:
        if w.arrival == "poisson":
            gaps = np.random.default_rng([seed, replicas]).gamma(replicas, 1 / lam, n)
        else:
            gaps = np.full(n, replicas / lam)
        reqs = dataclasses.replace(reqs, arrival_s=np.cumsum(gaps))
        basis = f"one of {replicas:,} round-robin replicas: every {replicas:,}-th request of the peak stream"
    elif sim < replicas:
        basis = f"a slice of {sim} of {replicas:,} least-loaded replicas with {sim}/{replicas:,} of the peak"
    else:
        basis = f"all {replicas:,} replicas"
    return reqs, sim, basis


def capacity(req: ServeRequest, cat: Catalog, processes: int = 1) -> dict[str, Any]:
    """Fewest replicas that meet the SLOs at the peak hour, the utilisation hour by hour and the
    headroom. Never fewer than peak / (one replica's saturated throughput): below that the queue
    grows without bound, whatever a finite simulation shows; then bisection on the simulator
    (each check a long steady run per replica, see :func:`check_requests`) from an analytic guess."""
    from ..perf.feasibility import layout_infeasible

    d = resolve(req, cat)
    given = _workload(req, cat)
    w, note = stated_load(given, d.model)  # a workload that states the model's thinking adds it
    split = samples_thinking(given, d.model)  # each request then writes its thinking, and then its answer
    spec = replica_spec(d, cat, req.max_num_seqs, req.max_num_batched_tokens, req.gpu_memory_utilization)
    lam = peak_rate(w, cat)
    model = replica_model(d, cat, spec, w)
    mu = float(np.asarray(model.requests_s)[0])
    no = {"feasible": False, "peak_rate_per_s": lam, "replica_capacity_req_s": mu,
          "deployment": _describe(d, spec, req, note)}
    why = layout_infeasible(d, cat, w.lengths("input").mean, w.lengths("output").mean,
                            float(spec.limits.max_num_batched_tokens), w.slo) \
        or alone_too_slow(model, w.slo, given.lengths("thinking").mean if split else 0.0)
    if why:
        return no | {"reason": why}
    floor = math.ceil(lam / mu * (1 - 1e-12))  # the fewest replicas at or below 100 % utilisation
    if floor > MAX_REPLICAS:
        return no | {"reason": f"at {fmt_sig(lam, 4)} requests/s the deployment needs at least {floor:,} replicas (one "
                               f"serves at most {fmt_sig(mu)} requests/s at the workload's mean lengths), over the "
                               f"{MAX_REPLICAS:,} replicas this tool plans; use a larger or faster deployment "
                               "per replica, or split the traffic", "replicas_needed_at_least": floor}
    guess = min(MAX_REPLICAS, max(floor, math.ceil(lam / (0.85 * mu))))
    tried: dict[int, dict[str, Any]] = {}
    checks: dict[int, dict[str, Any]] = {}

    def check(r: int) -> bool:
        if r not in tried:
            reqs, sim, basis = check_requests(given if split else w, cat, lam, r, req.router, req.seed,
                                              d.model.max_context, split)
            warmup = float(reqs.arrival_s[min(len(reqs) - 1, len(reqs) // 10)])
            c = simulate_cluster(spec, reqs, sim, req.router, req.sample_s, None, processes)
            tried[r] = summarize(c, w.slo, warmup_s=warmup) | {"simulated": basis}
            checks[r] = {"requests": len(reqs), "replicas_simulated": sim, "basis": basis}
        return bool(tried[r]["slo_met"])

    hi = _search_replicas(check, guess, floor)
    if hi is None:
        top = max(tried)
        return no | {
            "reason": f"the SLOs are not met even with {top:,} replicas: the latency of a single request "
            "on this deployment exceeds them (see `llmplan estimate`)",
            "at_max_replicas": tried[top],
        }
    weights = hourly_weights(w.profile, cat) if w.requests_per_day is not None else np.full(24, 1 / 24)
    hourly_rate = (w.requests_per_day * weights / 3600) if w.requests_per_day is not None else np.full(24, lam)
    util = [float(x) for x in 100 * hourly_rate / (hi * mu)]
    gpus = hi * d.layout.num_gpus
    per_server = d.accelerator.max_per_server or 1
    return {
        "feasible": True, "replicas": hi, "gpus": gpus, "servers": math.ceil(gpus / per_server),
        "peak_rate_per_s": lam, "replica_capacity_req_s": mu, "analytic_first_guess": guess,
        "replicas_needed_at_least": floor, "headroom_pct": 100 * (hi * mu / lam - 1),
        "utilisation_by_hour_pct": util, "mean_utilisation_pct": float(np.mean(util)), "at_peak": tried[hi],
        "one_fewer": tried.get(hi - 1), "simulations": len(tried), "check_requests": checks[hi]["requests"],
        "check": checks[hi], "deployment": _describe(d, spec, req, note) | {"replicas": hi},
    }


def _search_replicas(check, guess: int, floor: int) -> int | None:
    """The fewest replicas ≥ `floor` for which `check` passes (doubling up from `guess`, then
    bisecting), or None when even 64 × guess (at most MAX_REPLICAS) fails."""
    hi = guess
    while not check(hi):
        if hi >= MAX_REPLICAS or hi >= 64 * guess:
            return None
        hi = min(2 * hi, MAX_REPLICAS)
    lo = max(floor - 1, hi // 2 if hi != guess else guess // 2)
    if hi == guess:
        while lo >= floor and check(lo):
            hi, lo = lo, max(floor - 1, lo // 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if check(mid):
            hi = mid
        else:
            lo = mid
    return hi
