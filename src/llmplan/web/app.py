"""REST API (OpenAPI at /docs and /openapi.json) and the plan page, over a Store.

Request bodies are the same pydantic models as the Python API and the scenario files: a
scenario saved here is the YAML file a CLI user runs. Every computation runs under a budget in a
bounded pool of worker processes and stops when its client goes away. Errors are JSON: 400 for a
request the user can fix (the same one-line messages as the CLI, budgets included), 404 for a
missing object, 409 for a catalog override that would shadow or clash, 413 for an oversized body,
422 for a body that does not validate, 429 when the queue is full."""

from __future__ import annotations

import asyncio
import hashlib
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..cost.tco import TcoRequest
from ..errors import LlmplanError, SpecError, describe
from ..perf.estimate import EstimateRequest
from ..planner.scenario import Scenario, parse_scenario
from ..serving.api import ServeRequest
from ..specs import NAME_MAX_CHARS, FitRequest
from ..store.db import NotFound, Store
from ..yamlguard import load_yaml
from . import overrides as ovr
from .compute import Budget, Busy, Cancelled, pool_for
from .jobs import JobRunner
from .layout import PAGES, page
from .openapi import ERROR_RESPONSES, document_errors
from .security import HEADERS, MAX_BODY_BYTES, Auth, BodyLimit, Guard, Origins
from .tasks import check_search_size

KINDS = ovr.KINDS
MAX_SCENARIO_VALUES = 100_000  # a scenario has a few dozen


@lru_cache(maxsize=1)
def catalog_version() -> str:
    """llmplan version + a hash of the bundled catalog files: which facts a run used."""
    h = hashlib.sha256()
    data = resources.files("llmplan.catalog") / "data"
    for f in sorted(data.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".yaml"):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


MAX_DB_ID = 2**31 - 1  # the largest key the store holds (INTEGER: 32 bits on PostgreSQL)
DbId = Annotated[int, PathParam(ge=1, le=MAX_DB_ID)]
VersionQ = Annotated[int, Query(ge=1, le=MAX_DB_ID)]
Kind = Annotated[str, PathParam(max_length=40)]
EntryId = Annotated[str, PathParam(max_length=NAME_MAX_CHARS)]


class ScenarioIn(BaseModel):
    """A scenario to save: the scenario itself (as in a YAML file), or its YAML text."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "internal assistant", "comment": "first draft", "scenario": {
            "name": "internal assistant", "workload": {"preset": "chat", "requests_per_day": 20000},
            "models": ["llama-3.1-8b"], "hardware": ["h100-sxm", "l40s"], "policy": {"deployment": ["on_prem"]}}}]})

    name: str | None = Field(default=None, max_length=200, description="default: the scenario's own name")
    scenario: dict[str, Any] | None = Field(default=None, description="the scenario fields, as in the YAML file")
    yaml: str | None = Field(default=None, max_length=MAX_BODY_BYTES, description="or the YAML text itself")
    comment: str | None = Field(default=None, max_length=500, description="what changed in this version")


class MeasurementsIn(BaseModel):
    """Benchmark measurements to keep for calibration."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"source": "our vllm bench serve run, 2026-11-20", "rows": [
            {"model": "llama-3.1-8b", "hardware": "l40s", "num_gpus": 1, "tp": 1, "precision": "bf16",
             "engine": "vllm", "input_len": 1000, "output_len": 200, "concurrency": 16, "scenario": "server",
             "metric": "output_tok_s", "value": 1450.0, "unit": "tok/s"}]}]})

    source: str = Field(min_length=1, max_length=500, description="where the measurements come from")
    rows: list[dict[Annotated[str, StringConstraints(max_length=100)], str | int | float | bool | None]] = Field(
        min_length=1, max_length=100_000,
        description="one object per measurement, keyed by the benchmark CSV columns (finite numbers)")


class OverrideState(BaseModel):
    """Switch an override on or off (it stays stored either way)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="false: computations ignore it until it is enabled again")


def scenario_from(body: ScenarioIn, cat) -> tuple[Scenario, dict[str, Any], str]:
    """The scenario of a request (fields or YAML), validated, its names checked against `cat`."""
    import yaml

    if (body.scenario is None) == (body.yaml is None):
        raise LlmplanError("give exactly one of 'scenario' (fields) or 'yaml' (text)")
    if body.yaml is not None:
        doc = load_yaml(body.yaml, "yaml", max_nodes=MAX_SCENARIO_VALUES)
        if not isinstance(doc, dict):
            raise LlmplanError("yaml: a scenario is a mapping of fields (name, workload, models, hardware, policy …)")
        text = body.yaml
    else:
        doc = body.scenario
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    s = parse_scenario(doc, "scenario")
    from ..planner.search import check_names

    check_names(s, cat)
    return s, doc, text


class ClientGone(Exception):
    """The client of a synchronous computation went away; the computation was stopped."""


def create_app(database: str | None = None, auth: Auth | None = None, origins: Origins | None = None,
               budget: Budget | None = None) -> FastAPI:
    """The app over a store. `auth` defaults to LLMPLAN_AUTH_TOKEN / LLMPLAN_AUTH_BASIC, `origins`
    to LLMPLAN_ALLOWED_HOSTS / LLMPLAN_PUBLIC_URL / LLMPLAN_TRUSTED_PROXIES (loopback names only
    when none is set), `budget` to the LLMPLAN_*_BUDGET settings (web/compute.py)."""
    store = Store(database)
    auth = auth if auth is not None else Auth.from_env()
    origins = origins if origins is not None else Origins.from_settings()
    budget = budget if budget is not None else Budget.from_env()
    app = FastAPI(title="llmplan", version=__version__, description=__doc__, docs_url=None, redoc_url=None,
                  responses=ERROR_RESPONSES)
    app.openapi_version = "3.0.3"  # the bundled Swagger UI (4.x) renders 3.0 documents
    ctx = Context(store, budget)
    app.state.store, app.state.auth, app.state.origins, app.state.budget, app.state.ctx = \
        store, auth, origins, budget, ctx
    _static(app)
    _handlers(app)
    document_errors(app)
    _meta_routes(app, ctx)
    _compute_routes(app, ctx)
    _plan_routes(app, ctx)
    _scenario_routes(app, ctx)
    _run_routes(app, ctx)
    _override_routes(app, ctx)
    for path, label, *_ in PAGES:  # the pages: one layout around each page's content
        app.add_api_route(path, _page_route(path), methods=["GET"], response_class=HTMLResponse,
                          summary=f"the {label} page")
    app.add_middleware(Guard, auth=auth, origins=origins)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # outermost: counts every body
    return app


class Context:
    """What the routes share: the store, the pool, the job runner, the overrides in force."""

    def __init__(self, store: Store, budget: Budget):
        self.store, self.budget = store, budget
        self.pool = pool_for(budget)
        self.jobs = JobRunner(store, self.pool)
        self._overrides: tuple[tuple, ovr.OverrideSet] | None = None

    def overrides(self) -> ovr.OverrideSet:
        """The overrides in force, rebuilt only when the store's fingerprint of them changes."""
        fp = self.store.override_fingerprint()
        cached = self._overrides
        if cached is None or cached[0] != fp:
            cached = self._overrides = (fp, ovr.build(self.store.overrides()))
        return cached[1]

    @staticmethod
    def tag(ov: ovr.OverrideSet) -> str:
        return catalog_version() + (f"+overrides-{ov.digest}" if ov.digest else "")

    def stamp(self, ov: ovr.OverrideSet) -> dict[str, Any]:
        """What every result carries: the catalog it was computed with."""
        return {"catalog_version": self.tag(ov), "overrides_in_force": list(ov.in_force)}

    async def compute(self, request: Request, task: str, *args: Any) -> Any:
        """Run `task` in the pool; stop it (off the queue, or its worker killed) when the client goes."""
        ticket = self.pool.submit(task, args)
        fut = asyncio.wrap_future(ticket.future)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=0.25)
            if done:
                return fut.result()
            if await request.is_disconnected():
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody waits for it now
                self.pool.cancel(ticket)
                raise ClientGone()

    def save_run(self, doc: dict[str, Any], status: str, tag: str, seconds: float, sid: int | None = None,
                 version: int | None = None, **fields: Any) -> int:
        return self.store.add_run(doc, status, tag, __version__, seconds=seconds, scenario_id=sid, version=version,
                                  **fields)


def _static(app: FastAPI) -> None:
    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:  # the interactive API docs from the swagger-ui-bundle package, not a CDN
        return HTMLResponse("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>llmplan API</title>"
                            "<link rel='stylesheet' href='/swagger/swagger-ui.css'></head><body>"
                            "<div id='swagger-ui'></div><script src='/swagger/swagger-ui-bundle.js'></script>"
                            "<script src='/static/swagger-init.js'></script></body></html>")


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**HEADERS, **(headers or {})})


def _handlers(app: FastAPI) -> None:
    """Every error as JSON `{"error": ...}` with the security headers, the framework's own included."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, {"error": str(exc.detail)}, exc.headers)

    @app.exception_handler(NotFound)
    async def _nf(_: Request, exc: NotFound):
        return _error(404, {"error": str(exc)})

    @app.exception_handler(ovr.Conflict)
    async def _conflict(_: Request, exc: ovr.Conflict):
        return _error(409, {"error": str(exc)})

    @app.exception_handler(Busy)
    async def _busy(_: Request, exc: Busy):
        return _error(429, {"error": str(exc)}, {"retry-after": "30"})

    @app.exception_handler(LlmplanError)
    async def _bad(_: Request, exc: LlmplanError):
        body: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, SpecError):
            body["field"] = exc.field
        return _error(400, body)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        errs = [{**e, "loc": tuple(p for p in e.get("loc", ()) if p != "body")} for e in exc.errors()]
        field, reason = describe(errs)
        return _error(422, {"error": f"{field}: {reason}",
                            "details": [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errs[:20]]})

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, exc: ClientGone):
        return _error(499, {"error": "the client went away; the computation was stopped"})

    @app.exception_handler(Cancelled)
    async def _cancelled(_: Request, exc: Cancelled):
        return _error(499, {"error": "the computation was cancelled"})

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception):  # the last resort: still JSON, still the headers
        return _error(500, {"error": f"internal error ({exc.__class__.__name__}); the server log has the details"})


def _meta_routes(app: FastAPI, ctx: Context) -> None:
    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Version, catalog version (with the overrides in force), schema revision, budgets and queue."""
        ov = ctx.overrides()
        return {"status": "ok", "version": __version__, "catalog_version": ctx.tag(ov),
                "schema_revision": ctx.store.schema_revision(), "overrides": ov.public(),
                "budget": ctx.budget.public(),
                "computations": {"running": ctx.pool.running(), "queued": ctx.pool.waiting()}}

    @app.get("/api/catalog/{kind}")
    def catalog_list(kind: Kind) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in _table(kind, ctx.overrides().catalog)]

    @app.get("/api/catalog/{kind}/{entry_id:path}")
    def catalog_entry(kind: Kind, entry_id: EntryId) -> dict[str, Any]:
        return _table(kind, ctx.overrides().catalog).get(entry_id).model_dump(mode="json")

    @app.post("/api/measurements", status_code=201)
    def measurements_add(body: MeasurementsIn) -> dict[str, Any]:
        """Store calibration measurements: {"source": "...", "rows": [{...}, ...]} (the benchmark CSV columns)."""
        if not body.source.strip():
            raise SpecError("source", "say where the measurements come from")
        return {"stored": ctx.store.add_measurements(body.rows, body.source.strip())}

    @app.get("/api/measurements")
    def measurements() -> list[dict[str, Any]]:
        return ctx.store.measurements()


def _compute_routes(app: FastAPI, ctx: Context) -> None:
    async def run(request: Request, task: str, req: Any, *extra: Any) -> dict[str, Any]:
        ov = await run_in_threadpool(ctx.overrides)
        out = await ctx.compute(request, task, req, ov.rows, *extra)
        return {**out, **ctx.stamp(ov)}

    @app.post("/api/fit")
    async def fit(req: FitRequest, request: Request) -> dict[str, Any]:
        """Memory per GPU by component (the `llmplan fit` request; `model` is a catalog id)."""
        return await run(request, "fit", req)

    @app.post("/api/estimate")
    async def estimate(req: EstimateRequest, request: Request) -> dict[str, Any]:
        """Speed of one deployment: TTFT, TPOT, throughput and their bounds (the `llmplan estimate` request)."""
        return await run(request, "estimate", req)

    @app.post("/api/simulate")
    async def simulate(req: ServeRequest, request: Request) -> dict[str, Any]:
        """Simulate a deployment under a workload (the `llmplan simulate` request)."""
        return await run(request, "simulate", req, ctx.budget.memory_mib * 2**20)

    @app.post("/api/capacity")
    async def capacity(req: ServeRequest, request: Request) -> dict[str, Any]:
        """Fewest replicas that meet the workload's SLOs (the `llmplan capacity` request)."""
        return await run(request, "capacity", req)

    @app.post("/api/tco")
    async def tco(req: TcoRequest, request: Request) -> dict[str, Any]:
        """On-premise TCO with cloud and API alternatives (the `llmplan tco` / `compare` request)."""
        return await run(request, "tco", req)


def _plan_routes(app: FastAPI, ctx: Context) -> None:
    async def scenario(body: ScenarioIn) -> tuple[Scenario, dict[str, Any], ovr.OverrideSet]:
        ov = await run_in_threadpool(ctx.overrides)
        s, doc, _ = await run_in_threadpool(scenario_from, body, ov.catalog)
        check_search_size(s, ov.catalog, ctx.budget.max_search)
        return s, doc, ov

    async def plan_now(request: Request, s: Scenario, doc: dict[str, Any], ov: ovr.OverrideSet,
                       sid: int | None = None, version: int | None = None) -> dict[str, Any]:
        t0, tag = time.perf_counter(), ctx.tag(ov)
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

    @app.post("/api/plan")
    async def plan(body: ScenarioIn, request: Request) -> dict[str, Any]:
        """Run the planner on a scenario (fields or YAML) without saving the scenario; the run is kept."""
        s, doc, ov = await scenario(body)
        return await plan_now(request, s, doc, ov)

    @app.post("/api/scenarios/{sid}/runs", status_code=201)
    async def scenario_run(sid: DbId, request: Request, version: VersionQ | None = None) -> dict[str, Any]:
        """Plan a saved version (the latest unless `version` is given)."""
        sc = await run_in_threadpool(ctx.store.get_scenario, sid)
        v = await run_in_threadpool(ctx.store.get_version, sid, version) if version is not None else sc["latest"]
        ov = await run_in_threadpool(ctx.overrides)
        s = parse_scenario(v["body"], f"scenario {sid} v{v['version']}")
        check_search_size(s, ov.catalog, ctx.budget.max_search)
        return await plan_now(request, s, v["body"], ov, sid, v["version"])

    @app.post("/api/jobs/plan", status_code=202)
    async def plan_job(body: ScenarioIn) -> dict[str, Any]:
        """Start a plan in the background; poll `status_url` for its queue position, progress and run.
        Jobs are kept in the store and owned by the server process running them, which beats a
        heartbeat: a job is failed only when its owner stopped, never because another process started."""
        s, doc, ov = await scenario(body)  # a bad scenario fails now, not in the job
        tag = ctx.tag(ov)

        def save(doc, status, tag, seconds, **fields):
            return ctx.save_run(doc, status, tag, seconds, **fields)

        return await run_in_threadpool(ctx.jobs.submit, s, doc, ov.rows, tag, ctx.stamp(ov), save)

    @app.get("/api/jobs/{jid}")
    def job_status(jid: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        """status (queued, running, done, failed), queue_position while queued, progress, and the run."""
        return ctx.jobs.status(jid)


def _scenario_routes(app: FastAPI, ctx: Context) -> None:
    store = ctx.store

    @app.post("/api/scenarios/validate")
    def scenario_validate(body: ScenarioIn) -> dict[str, Any]:
        """Check a scenario without saving or running it: {ok, error}."""
        try:
            s, _, _ = scenario_from(body, ctx.overrides().catalog)
        except LlmplanError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "error": None, "name": s.name, "body": s.model_dump(mode="json", exclude_unset=True)}

    @app.post("/api/scenarios/yaml", response_class=PlainTextResponse)
    def scenario_to_yaml(body: ScenarioIn) -> str:
        """The YAML file for scenario fields (the form editor's other half)."""
        return scenario_from(body, ctx.overrides().catalog)[2]

    @app.get("/api/scenarios")
    def scenarios(archived: bool = False) -> list[dict[str, Any]]:
        return store.list_scenarios(archived)

    @app.post("/api/scenarios", status_code=201)
    def scenario_create(body: ScenarioIn) -> dict[str, Any]:
        s, doc, text = scenario_from(body, ctx.overrides().catalog)
        return store.create_scenario(body.name or s.name, doc, text, body.comment)

    @app.get("/api/scenarios/{sid}")
    def scenario_get(sid: DbId) -> dict[str, Any]:
        return store.get_scenario(sid)

    @app.put("/api/scenarios/{sid}")
    def scenario_save(sid: DbId, body: ScenarioIn) -> dict[str, Any]:
        """Save a new version (nothing is overwritten)."""
        s, doc, text = scenario_from(body, ctx.overrides().catalog)
        return store.save_version(sid, doc, text, body.comment, body.name)

    @app.delete("/api/scenarios/{sid}", status_code=204)
    def scenario_archive(sid: DbId) -> Response:
        """Archive: hidden from the list, every version kept."""
        store.archive(sid)
        return Response(status_code=204)

    @app.get("/api/scenarios/{sid}/versions/{version}")
    def scenario_version(sid: DbId, version: DbId) -> dict[str, Any]:
        return store.get_version(sid, version)

    @app.get("/api/scenarios/{sid}/versions/{version}/scenario.yaml", response_class=PlainTextResponse)
    def scenario_yaml(sid: DbId, version: DbId) -> str:
        return store.get_version(sid, version)["yaml"]

    @app.get("/api/scenarios/{sid}/diff", response_class=PlainTextResponse)
    def scenario_diff(sid: DbId, a: VersionQ, b: VersionQ) -> str:
        return store.diff(sid, a, b)


def _run_routes(app: FastAPI, ctx: Context) -> None:
    @app.get("/api/runs")
    def runs(scenario_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None) -> list[dict[str, Any]]:
        return ctx.store.list_runs(scenario_id)

    @app.get("/api/runs/{rid}")
    def run_get(rid: DbId) -> dict[str, Any]:
        return ctx.store.get_run(rid)

    @app.get("/api/runs/{rid}/report.{fmt}")
    async def run_report(rid: DbId, fmt: Annotated[str, PathParam(max_length=8)], request: Request) -> Response:
        """html, md, json, csv or pdf. The PDF is rendered (in the pool, under the budget) once per run and kept."""
        if fmt not in ("html", "md", "json", "csv", "pdf"):
            raise NotFound(f"no report format {fmt!r} (html, md, json, csv, pdf)")
        r = await run_in_threadpool(ctx.store.get_run, rid, True)
        if r["status"] != "done":
            raise LlmplanError(f"run {rid} failed ({r['error']}); it has no report")
        if fmt == "html":
            return HTMLResponse(r["report_html"])
        if fmt == "md":
            return PlainTextResponse(r["report_md"], media_type="text/markdown")
        if fmt == "json":
            return JSONResponse(r["result"])
        if fmt == "csv":
            return PlainTextResponse(_csv(r["result"]), media_type="text/csv")
        pdf = await run_in_threadpool(ctx.store.run_pdf, rid)
        if pdf is None:
            ov = await run_in_threadpool(ctx.overrides)
            pdf = await ctx.compute(request, "pdf", r["result"], r["report_html"], ov.rows)
            await run_in_threadpool(ctx.store.set_run_pdf, rid, pdf)
        return Response(pdf, media_type="application/pdf",
                        headers={"content-disposition": f'attachment; filename="llmplan-run-{rid}.pdf"'})


def _override_routes(app: FastAPI, ctx: Context) -> None:
    store = ctx.store

    def listing(ov: ovr.OverrideSet) -> list[dict[str, Any]]:
        state = {(o["kind"], o["id"]): o for o in ov.in_force}
        off = {(o["kind"], o["id"]): o for o in ov.not_in_force}
        out = []
        for o in store.overrides():
            k = (o["kind"], o["entry_id"])
            out.append({**o, "in_force": k in state, "replaces_builtin": state.get(k, {}).get("replaces_builtin"),
                        "reason": off.get(k, {}).get("reason")})
        return out

    @app.get("/api/overrides")
    def overrides() -> list[dict[str, Any]]:
        """Every stored override (latest revision): enabled, in force, replacing a built-in entry, or why not."""
        return listing(ctx.overrides())

    @app.post("/api/overrides/{kind}", status_code=201)
    def override_add(kind: Kind, entry: dict[str, Any] = Body(...),
                     replace: Annotated[bool, Query(description="allow replacing a built-in entry of this id")]
                     = False) -> dict[str, Any]:
        """Store a user catalog entry: the catalog schema of its kind, the id grammar, at most 64 KiB and
        200 overrides; replacing a built-in entry needs ?replace=true; a name another entry has is refused (409)."""
        _table(kind)
        current = ctx.overrides()
        stored = store.overrides()
        if store.override_revisions() >= ovr.MAX_REVISIONS:
            raise LlmplanError(f"the store holds {ovr.MAX_REVISIONS:,} override revisions, the most it keeps; delete "
                               "overrides first")
        e = ovr.check_new(kind, entry, current, stored, replace)
        out = store.add_override(kind, e.id, e.model_dump(mode="json"))
        now = {(o["kind"], o["id"]): o for o in ctx.overrides().in_force}
        return {**out, "in_force": (kind, e.id) in now,
                "replaces_builtin": now.get((kind, e.id), {}).get("replaces_builtin")}

    @app.patch("/api/overrides/{kind}/{entry_id:path}")
    def override_state(kind: Kind, entry_id: EntryId, body: OverrideState) -> dict[str, Any]:
        """Enable or disable an override (disabled: stored, listed, not used)."""
        _table(kind)
        return store.set_override_enabled(kind, entry_id, body.enabled)

    @app.delete("/api/overrides/{kind}/{entry_id:path}", status_code=204)
    def override_delete(kind: Kind, entry_id: EntryId) -> Response:
        """Delete an override with all its revisions; the built-in entry (if any) is used again."""
        _table(kind)
        store.delete_override(kind, entry_id)
        return Response(status_code=204)


def _page_route(path: str):
    def serve() -> HTMLResponse:
        return HTMLResponse(page(path))

    return serve


def _table(kind: str, cat=None):
    from ..catalog import load_catalog

    attr = KINDS.get(kind)
    if attr is None:
        raise NotFound(f"no catalog {kind!r}; one of {', '.join(KINDS)}")
    return getattr(cat or load_catalog(), attr)


def _csv(result: dict[str, Any]) -> str:
    import csv
    import io

    cols = ["rank", "id", "deployment", "model", "precision", "hardware", "engine", "num_gpus", "servers", "tp", "pp",
            "replicas", "tco_usd", "cost_per_million_tokens_usd", "ttft_p95_ms", "tpot_p95_ms", "quality_recovery_pct"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    opts = ([result["recommendation"]] if result.get("recommendation") else []) + result.get("alternatives", [])
    for i, o in enumerate(opts, 1):
        w.writerow([i] + [o.get(c) for c in cols[1:]])
    return buf.getvalue()


__all__ = ["create_app", "catalog_version", "scenario_from"]
