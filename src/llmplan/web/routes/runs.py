"""Plan runs: the list, one run, its report (html, md, json, csv, pdf) and the explanation of any
of its options (`llmplan plan --explain` over HTTP)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from ... import charts
from ...errors import LlmplanError
from ...planner.scenario import parse_scenario
from ...specs import NAME_MAX_CHARS
from ...store.db import NotFound
from ..context import PAGED, Context, DbId, FlagQ, IdQ, Limit, Offset

FORMATS = ("html", "md", "json", "csv", "pdf")
CSV_COLUMNS = ["rank", "id", "deployment", "model", "precision", "hardware", "engine", "num_gpus", "servers", "tp",
               "pp", "replicas", "tco_usd", "cost_per_million_tokens_usd", "ttft_p95_ms", "tpot_p95_ms",
               "answer_start_p95_ms", "quality_recovery_pct"]


def router(ctx: Context) -> APIRouter:
    r = APIRouter()

    @r.get("/api/runs", responses=PAGED)
    def runs(response: Response, scenario_id: IdQ = None,
             limit: Limit = 100, offset: Offset = 0) -> list[dict[str, Any]]:
        """Runs, newest first, a page at a time (`limit`, `offset`); `X-Total-Count` is how many there are.
        Each item is the run's summary (no result, no report)."""
        page, total = ctx.store.list_runs(scenario_id, limit, offset)
        response.headers["x-total-count"] = str(total)
        return page

    @r.get("/api/runs/{rid}")
    def run_get(rid: DbId) -> dict[str, Any]:
        return ctx.store.get_run(rid)

    @r.delete("/api/runs/{rid}", status_code=204)
    def run_delete(rid: DbId) -> Response:
        """Delete a run with its reports (the store keeps at most LLMPLAN_MAX_RUNS runs)."""
        ctx.store.delete_run(rid)
        return Response(status_code=204)

    @r.get("/api/runs/{rid}/report.{fmt}")
    async def run_report(rid: DbId, fmt: Annotated[str, PathParam(max_length=8)], request: Request,
                         download: FlagQ = False) -> Response:
        """html, md, json, csv or pdf. `?download=true`: the HTML as one self-contained file (the chart
        library inline). The PDF is rendered (in the pool, under the budget) once per run and kept."""
        if fmt not in FORMATS:
            raise NotFound(f"no report format {fmt!r} ({', '.join(FORMATS)})")
        run = await run_in_threadpool(ctx.store.get_run, rid, True)
        if run["status"] != "done":
            raise LlmplanError(f"run {rid} failed ({run['error']}); it has no report")
        if fmt == "pdf":
            return await _pdf(ctx, request, rid, run)
        return await run_in_threadpool(_report, rid, run, fmt, download)

    @r.get("/api/runs/{rid}/explain")
    async def run_explain(rid: DbId, request: Request,
                          option: Annotated[str, Query(min_length=1, max_length=NAME_MAX_CHARS * 4,
                                                       description="an option id, or an id prefix")]
                          ) -> dict[str, Any]:
        """One option of a run: its figures if ranked, the rules that excluded it if not (what
        `llmplan plan SCENARIO --explain OPTION` prints). Options the run kept are answered at once;
        any other is found by planning the run's scenario again."""
        run = await run_in_threadpool(ctx.store.get_run, rid)
        if run["status"] != "done":
            raise LlmplanError(f"run {rid} failed ({run['error']}); it has no options to explain")
        found = explain_stored(run["result"], option)
        if found is not None:
            return found
        s = parse_scenario(run["scenario"], f"run {rid}")
        ov = await run_in_threadpool(ctx.overrides)
        return await ctx.compute(request, "explain", s, option, ov.rows)

    return r


def _report(rid: int, run: dict[str, Any], fmt: str, download: bool) -> Response:
    if fmt == "html":
        if not download:
            return HTMLResponse(run["report_html"])
        return HTMLResponse(charts.standalone(run["report_html"]),
                            headers={"content-disposition": f'attachment; filename="llmplan-run-{rid}.html"'})
    if fmt == "md":
        return PlainTextResponse(run["report_md"], media_type="text/markdown")
    if fmt == "json":
        return JSONResponse(run["result"])
    return PlainTextResponse(to_csv(run["result"]), media_type="text/csv")


async def _pdf(ctx: Context, request: Request, rid: int, run: dict[str, Any]) -> Response:
    pdf = await run_in_threadpool(ctx.store.run_pdf, rid)
    if pdf is None:
        ov = await run_in_threadpool(ctx.overrides)
        pdf = await ctx.compute(request, "pdf", run["result"], run["report_html"], ov.rows)
        await run_in_threadpool(ctx.store.set_run_pdf, rid, pdf)
    return Response(pdf, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="llmplan-run-{rid}.pdf"'})


def explain_stored(result: dict[str, Any], option: str) -> dict[str, Any] | None:
    """The explanation from what a run kept (the options shown and every excluded one), or None."""
    shown = ([result["recommendation"]] if result.get("recommendation") else []) + result.get("alternatives", []) \
        + result.get("pareto", [])
    for o in shown:
        if o["id"] == option:
            return {"option": option, "status": "ranked", **o}
    reasons = [x for rj in result.get("rejected", []) if rj["option"] == option for x in rj["reasons"]]
    if reasons:
        return {"option": option, "status": "rejected", "reasons": reasons}
    return None


def to_csv(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    opts = ([result["recommendation"]] if result.get("recommendation") else []) + result.get("alternatives", [])
    for i, o in enumerate(opts, 1):
        w.writerow([i] + [o.get(c) for c in CSV_COLUMNS[1:]])
    return buf.getvalue()
