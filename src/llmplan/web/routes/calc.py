"""The computations of one deployment: fit, estimate, simulate, capacity, tco (the CLI's requests)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from ...cost.tco import TcoRequest
from ...perf.estimate import EstimateRequest
from ...serving.api import ServeRequest
from ...specs import FitRequest
from ..context import Context
from ..responses import EXACT, CapacityResponse, SimulateResponse, TcoResponse


def router(ctx: Context) -> APIRouter:
    r = APIRouter()

    async def run(request: Request, task: str, req: Any, *extra: Any) -> dict[str, Any]:
        ov = await run_in_threadpool(ctx.overrides)
        out = await ctx.compute(request, task, req, ov.rows, *extra)
        return {**out, **ctx.stamp(ov)}

    @r.post("/api/fit")
    async def fit(req: FitRequest, request: Request) -> dict[str, Any]:
        """Memory per GPU by component (the `llmplan fit` request; `model` is a catalog id)."""
        return await run(request, "fit", req)

    @r.post("/api/estimate")
    async def estimate(req: EstimateRequest, request: Request) -> dict[str, Any]:
        """Speed of one deployment: TTFT, TPOT, throughput and their bounds (the `llmplan estimate` request)."""
        return await run(request, "estimate", req)

    @r.post("/api/simulate", response_model=SimulateResponse, **EXACT)
    async def simulate(req: ServeRequest, request: Request) -> dict[str, Any]:
        """Simulate a deployment under a workload (the `llmplan simulate` request)."""
        return await run(request, "simulate", req, ctx.budget.memory_mib * 2**20)

    @r.post("/api/capacity", response_model=CapacityResponse, **EXACT)
    async def capacity(req: ServeRequest, request: Request) -> dict[str, Any]:
        """Fewest replicas that meet the workload's SLOs (the `llmplan capacity` request)."""
        return await run(request, "capacity", req)

    @r.post("/api/tco", response_model=TcoResponse, **EXACT)
    async def tco(req: TcoRequest, request: Request) -> dict[str, Any]:
        """On-premise TCO with cloud and API alternatives (the `llmplan tco` / `compare` request)."""
        return await run(request, "tco", req)

    return r
