"""A benchmark run in the simulator, measured the way benchmark clients measure it
(`vllm bench serve`, `sglang.bench_serving`, `trtllm-bench`): N prompts sent all at once, at
most C in flight, or arriving at a rate; means of TTFT, TPOT and ITL over the requests;
throughput over the run's makespan (first send to last token).

It is the reference the closed forms of :mod:`llmplan.perf.finite` are checked against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cluster import ReplicaSpec
from .simulator import ReplicaResult, closed_loop, simulate_replica
from .workload import Requests


@dataclass(frozen=True)
class BenchResult:
    makespan_s: float
    ttft_ms: float  # mean over requests
    tpot_ms: float  # mean over requests with more than one output token of (E2E − TTFT) / (o − 1)
    itl_ms: float  # mean over all inter-token gaps (token-weighted)
    e2e_s: float
    output_tok_s: float
    total_tok_s: float
    requests_s: float


def run_benchmark(spec: ReplicaSpec, input_tokens: np.ndarray, output_tokens: np.ndarray, *,
                  concurrency: int | None = None, rate_per_s: float | None = None, seed: int = 0) -> BenchResult:
    """N = len(input_tokens) prompts: all at once (neither `concurrency` nor `rate_per_s`), at most
    `concurrency` in flight, or Poisson arrivals at `rate_per_s` (seeded)."""
    n = len(input_tokens)
    if rate_per_s:
        gaps = np.random.default_rng(seed).exponential(1 / rate_per_s, n)
        arrival = np.concatenate([[0.0], np.cumsum(gaps[1:])])
    else:
        arrival = np.zeros(n)
    reqs = Requests(arrival, np.asarray(input_tokens, dtype=np.int64), np.asarray(output_tokens, dtype=np.int64),
                    np.zeros(n, dtype=np.int64))
    if concurrency:
        res = closed_loop(spec.model, spec.limits, reqs, concurrency, sample_s=math.inf)
    else:
        res = simulate_replica(spec.model, spec.limits, reqs, sample_s=math.inf)
    return measure(reqs, res)


def measure(reqs: Requests, res: ReplicaResult) -> BenchResult:
    ttft = res.first_token_s - reqs.arrival_s
    e2e = res.finish_s - reqs.arrival_s
    out = reqs.output_tokens.astype(float)
    many = out > 1
    span = float(res.finish_s.max() - reqs.arrival_s.min())
    tokens_out = float(out.sum())
    return BenchResult(
        makespan_s=span, ttft_ms=1e3 * float(ttft.mean()),
        tpot_ms=1e3 * float(((e2e - ttft)[many] / (out[many] - 1)).mean()) if many.any() else math.nan,
        itl_ms=1e3 * float((e2e - ttft)[many].sum() / (out[many] - 1).sum()) if many.any() else math.nan,
        e2e_s=float(e2e.mean()), output_tok_s=tokens_out / span,
        total_tok_s=(tokens_out + float(reqs.input_tokens.sum())) / span, requests_s=len(out) / span)
