"""Planning: a scenario now (its run kept), a saved version, or in the background as a job."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool

from ...errors import LlmplanError
from ...planner.scenario import Scenario
from .. import overrides as ovr
from ..context import Context, DbId, IdQ, ScenarioIn, VersionQ, scenario_from
from ..responses import EXACT, PlanResponse
from ..tasks import check_search_size


def router(ctx: Context) -> APIRouter:
    r = APIRouter()

    async def scenario(body: ScenarioIn) -> tuple[Scenario, dict[str, Any], ovr.OverrideSet]:
        ov = await run_in_threadpool(ctx.overrides)
        s, doc, _ = await run_in_threadpool(scenario_from, body, ov.catalog)
        check_search_size(s, ov.catalog, ctx.budget.max_search)
        return s, doc, ov

    async def plan_now(request: Request, s: Scenario, doc: dict[str, Any], ov: ovr.OverrideSet,
                       sid: int | None = None, version: int | None = None) -> dict[str, Any]:
        t0, tag = time.perf_counter(), ctx.tag(ov)
        await run_in_threadpool(ctx.store.room_for_run)  # a full store refuses before the work, not after
        try:
            data, html, md = await ctx.compute(request, "plan", s, ov.rows)
        except LlmplanError as exc:
            await run_in_threadpool(ctx.save_run, doc, "failed", tag, time.perf_counter() - t0, sid, version,
                                    error=str(exc))
            raise
        data = {**data, **ctx.stamp(ov)}
        rid = await run_in_threadpool(ctx.save_run, doc, "done", tag, time.perf_counter() - t0, sid, version,
                                      result=data, report_html=html, report_md=md)
        return {"run_id": rid, "run_url": f"/api/runs/{rid}", "report_url": f"/api/runs/{rid}/report.html", **data}

    @r.post("/api/plan", response_model=PlanResponse, **EXACT)
    async def plan(body: ScenarioIn, request: Request) -> dict[str, Any]:
        """Run the planner on a scenario (fields or YAML) without saving the scenario; the run is kept."""
        s, doc, ov = await scenario(body)
        return await plan_now(request, s, doc, ov)

    @r.post("/api/scenarios/{sid}/runs", status_code=201, response_model=PlanResponse, **EXACT)
    async def scenario_run(sid: DbId, request: Request, version: VersionQ | None = None) -> dict[str, Any]:
        """Plan a saved version (the latest unless `version` is given)."""
        s, doc, v = await run_in_threadpool(ctx.scenario_of, sid, version)
        ov = await run_in_threadpool(ctx.overrides)
        check_search_size(s, ov.catalog, ctx.budget.max_search)
        return await plan_now(request, s, doc, ov, sid, v)

    @r.post("/api/jobs/plan", status_code=202)
    async def plan_job(body: ScenarioIn, scenario_id: IdQ = None,
                       version: VersionQ | None = None) -> dict[str, Any]:
        """Start a plan in the background; poll `status_url` for its queue position, progress and run.
        With `scenario_id` and `version`, the body is that saved version's YAML and the run is kept
        with it (compare shows which version it planned). Jobs are kept in the store and owned by the
        server process running them, which beats a heartbeat: a job is failed only when its owner
        stopped, never because another process started."""
        s, doc, ov = await scenario(body)  # a bad scenario fails now, not in the job
        await run_in_threadpool(ctx.store.room_for_run)
        tag = ctx.tag(ov)
        sid, ver = await run_in_threadpool(_saved, ctx, body, scenario_id, version)

        def save(doc, status, tag, seconds, **fields):
            return ctx.save_run(doc, status, tag, seconds, sid, ver, **fields)

        return await run_in_threadpool(ctx.jobs.submit, s, doc, ov.rows, tag, ctx.stamp(ov), save)

    @r.get("/api/jobs/{jid}")
    def job_status(jid: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        """status (queued, running, done, failed), queue_position while queued, progress, and the run."""
        return ctx.jobs.status(jid)

    return r


def _saved(ctx: Context, body: ScenarioIn, sid: int | None, version: int | None) -> tuple[int | None, int | None]:
    """The saved version a plan job belongs to: both ids, and the body must be its YAML as stored."""
    if sid is None and version is None:
        return None, None
    if sid is None or version is None:
        raise LlmplanError("give both scenario_id and version, or neither")
    stored = ctx.store.get_version(sid, version)
    if body.yaml is None or body.yaml != stored["yaml"]:
        raise LlmplanError(f"the scenario differs from scenario {sid} v{version} as saved: save it as a new version "
                           "first, or plan it without scenario_id")
    return sid, version
