"""Whether adding replicas can meet a latency SLO at all.

More replicas lower the load on each, so the best any number of them can do is one request
alone on one replica: its TTFT, its TPOT (the batch-1 decode step) and its E2E. When that
floor already misses a limit, the layout is infeasible and capacity must say so instead of
multiplying replicas. TPOT barely depends on the request's length (the context read grows
slowly), so the floor is compared with every TPOT percentile; TTFT and E2E grow with the
lengths, so the floor at the mean lengths is compared with the p95/p99 limits only (a p95
request is longer than the mean one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import Slo
from ..specs import Deployment
from .physics import Efficiency, Machine, StageShape
from .scenarios import closed_loop, decode_step

ADVICE = {
    "memory": "weights with fewer bits, a higher-bandwidth accelerator, or more tensor parallelism",
    "compute": "an accelerator with more FLOP/s, a format with faster math (FP8/FP4), or more tensor parallelism",
    "interconnect": "a faster interconnect (NVLink instead of PCIe), or fewer GPUs per replica",
    "overhead": "an engine with less per-step overhead (CUDA graphs), or speculative decoding",
}


@dataclass(frozen=True)
class LatencyFloor:
    """One request alone on one replica, at the workload's mean lengths."""

    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    tpot_bound: str  # what bounds the batch-1 decode step: memory, compute, interconnect or overhead
    decodes: bool = True  # a token follows the first (else no TPOT limit applies)


def latency_floor(s: StageShape, m: Machine, e: Efficiency, input_len: float, output_len: float,
                  chunk: float) -> LatencyFloor:
    alone = closed_loop(s, m, e, 1.0, input_len, output_len, 1.0, chunk)
    step = decode_step(s, m, e, 1.0, input_len)  # the shortest context: a lower bound on every request's step
    parts = {"memory": float(np.max(step.memory)), "compute": float(np.max(step.compute)),
             "interconnect": float(np.max(step.comm)), "overhead": float(np.max(step.overhead))}
    roof = max(parts["memory"], parts["compute"])
    shown = {"memory" if parts["memory"] >= parts["compute"] else "compute": roof,
             "interconnect": parts["interconnect"], "overhead": parts["overhead"]}
    ttft = 1e3 * float(np.asarray(alone.ttft_s))
    tpot = 1e3 * float(np.max(step.total))
    return LatencyFloor(ttft_ms=ttft, tpot_ms=tpot, e2e_ms=ttft + max(output_len - 1, 0) * tpot,
                        tpot_bound=max(shown, key=lambda k: shown[k]), decodes=output_len > 1)


def infeasible_reason(floor: LatencyFloor, slo: Slo | None) -> str | None:
    """Why no number of replicas of this layout meets `slo`, or None when the floor is within it."""
    if slo is None:
        return None
    checks = [("TPOT", floor.tpot_ms, p) for p in (50, 95, 99)] if floor.decodes else []
    checks += [("TTFT", floor.ttft_ms, p) for p in (95, 99)] + [("E2E", floor.e2e_ms, p) for p in (95, 99)]
    for metric, ms, p in checks:
        limit = getattr(slo, f"{metric.lower()}_p{p}_ms")
        if limit and ms > limit:
            why = f"{metric} floor {ms:,.1f} ms > {limit:,.0f} ms SLO (p{p}) with one request alone on one replica"
            fix = ADVICE[floor.tpot_bound] if metric != "TTFT" else ADVICE["compute"]
            bound = f"; the decode step is {floor.tpot_bound}-bound" if metric != "TTFT" else ""
            return f"infeasible with this layout: {why}{bound}: more replicas cannot help; use {fix}"
    return None


def layout_infeasible(d: Deployment, cat: Catalog, input_len: float, output_len: float, chunk: float,
                      slo: Slo | None) -> str | None:
    """The check `capacity` runs before adding replicas: deployment `d`'s latency floor at the
    workload's mean lengths against its SLO (None: replicas can help)."""
    from .efficiency import deployment_efficiency
    from .shape import machine, stage_shape

    e, _, _ = deployment_efficiency(d, cat)
    floor = latency_floor(stage_shape(d, tuple(cat.gguf_types), d.kv_format.bits / 8), machine(d)[0], e,
                          input_len, output_len, chunk)
    return infeasible_reason(floor, slo)
