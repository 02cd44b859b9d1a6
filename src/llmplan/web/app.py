"""REST API (OpenAPI at /docs and /openapi.json) and the plan page, over a Store.

Request bodies are the same pydantic models as the Python API and the scenario files: a
scenario saved here is the YAML file a CLI user runs. Errors are JSON: 400 for a request the
user can fix (the same one-line messages as the CLI), 404 for a missing object, 422 for a body
that does not validate, 413 for an oversized body."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from fastapi import Body, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..catalog import load_catalog
from ..cost.tco import TcoRequest
from ..errors import LlmplanError, SpecError, describe, validated
from ..jsonutil import jsonable
from ..perf.estimate import EstimateRequest
from ..planner.scenario import Scenario, parse_scenario
from ..serving.api import ServeRequest
from ..specs import NAME_MAX_CHARS, FitRequest
from ..store.db import NotFound, Store
from ..yamlguard import check_expanded_size, yaml_error
from .layout import PAGES, page
from .openapi import ERROR_RESPONSES, document_errors
from .security import MAX_BODY_BYTES, Auth, BodyLimit, install

KINDS = {"gpus": "accelerators", "models": "models", "formats": "quant_formats", "engines": "engines",
         "servers": "servers", "cloud-offers": "cloud_offers", "api-prices": "api_prices", "regions": "regions",
         "cost-assumptions": "cost_assumptions", "workloads": "workload_presets", "policy-presets": "policy_presets",
         "calibrations": "calibrations"}


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


R = TypeVar("R", bound=BaseModel)
MAX_DB_ID = 2**31 - 1  # the largest key the store holds (INTEGER: 32 bits on PostgreSQL)
DbId = Annotated[int, PathParam(ge=1, le=MAX_DB_ID)]
VersionQ = Annotated[int, Query(ge=1, le=MAX_DB_ID)]
Kind = Annotated[str, PathParam(max_length=40)]


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


def _scenario_from(body: ScenarioIn, cat=None) -> tuple[Scenario, dict[str, Any], str]:
    if (body.scenario is None) == (body.yaml is None):
        raise LlmplanError("give exactly one of 'scenario' (fields) or 'yaml' (text)")
    if body.yaml is not None:
        try:
            doc = yaml.safe_load(body.yaml)
        except yaml.YAMLError as exc:
            raise LlmplanError(yaml_error(exc, "yaml")) from None
        if not isinstance(doc, dict):
            raise LlmplanError("yaml: a scenario is a mapping of fields (name, workload, models, hardware, policy …)")
        check_expanded_size(doc, "yaml")
        text = body.yaml
    else:
        doc = body.scenario
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    s = parse_scenario(doc, "scenario")
    from ..planner.search import check_names

    check_names(s, cat or load_catalog())
    return s, doc, text


def overrides_dir(overrides: list[dict[str, Any]]) -> tuple[Path | None, str]:
    """The store's catalog overrides as catalog files in a directory named by their hash (so a
    change makes a new directory and the catalog cache sees new files); (None, '') without any."""
    import json
    import tempfile

    from ..catalog.loader import dump_entries

    if not overrides:
        return None, ""
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:12]
    d = Path(tempfile.gettempdir()) / f"llmplan-overrides-{digest}"
    if not d.exists():
        tmp = Path(tempfile.mkdtemp(prefix="llmplan-overrides-"))
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for o in overrides:
            by_kind.setdefault(KINDS[o["kind"]], []).append(o["body"])
        for kind, entries in by_kind.items():
            (tmp / f"{kind}.yaml").write_text(dump_entries(kind, entries), encoding="utf-8")
        try:
            tmp.rename(d)
        except OSError:  # another request made it first
            pass
    return d, digest


def create_app(database: str | None = None, auth: Auth | None = None) -> FastAPI:
    """The app over a store; `auth` defaults to LLMPLAN_AUTH_TOKEN / LLMPLAN_AUTH_BASIC."""
    store = Store(database)
    auth = auth if auth is not None else Auth.from_env()

    def catalog():
        """The bundled catalog with the store's overrides on top (what every computation uses)."""
        d, _ = overrides_dir(store.overrides())
        return load_catalog([d] if d else [])

    def catalog_tag() -> str:
        _, digest = overrides_dir(store.overrides())
        return catalog_version() + (f"+overrides-{digest}" if digest else "")

    # the interactive API docs are served from the swagger-ui-bundle package, not a CDN
    app = FastAPI(title="llmplan", version=__version__, description=__doc__, docs_url=None, redoc_url=None,
                  responses=ERROR_RESPONSES)
    app.openapi_version = "3.0.3"  # the bundled Swagger UI (4.x) renders 3.0 documents
    app.state.store = store
    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>llmplan API</title>"
                            "<link rel='stylesheet' href='/swagger/swagger-ui.css'></head><body>"
                            "<div id='swagger-ui'></div><script src='/swagger/swagger-ui-bundle.js'></script>"
                            "<script src='/static/swagger-init.js'></script></body></html>")

    install(app, auth)
    app.state.auth = auth

    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # outermost: counts every body

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        """The framework's own refusals (unparseable JSON, no such route, wrong method) in the same shape."""
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    document_errors(app)

    @app.exception_handler(NotFound)
    async def _nf(_: Request, exc: NotFound):
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(LlmplanError)
    async def _bad(_: Request, exc: LlmplanError):
        body = {"error": str(exc)}
        if isinstance(exc, SpecError):
            body["field"] = exc.field
        return JSONResponse(body, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        errs = [{**e, "loc": tuple(p for p in e.get("loc", ()) if p != "body")} for e in exc.errors()]
        field, reason = describe(errs)
        return JSONResponse({"error": f"{field}: {reason}",
                             "details": [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errs[:20]]},
                            status_code=422)

    # -------------------------------------------------------------- meta and catalog

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "catalog_version": catalog_version(),
                "schema_revision": store.schema_revision()}

    @app.get("/api/catalog/{kind}")
    def catalog_list(kind: Kind) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in _table(kind, catalog())]

    @app.get("/api/catalog/{kind}/{entry_id:path}")
    def catalog_entry(kind: Kind, entry_id: Annotated[str, PathParam(max_length=NAME_MAX_CHARS)]) -> dict[str, Any]:
        t = _table(kind, catalog())
        return t.get(entry_id).model_dump(mode="json")

    # -------------------------------------------------------------- single questions

    @app.post("/api/fit")
    def fit(req: FitRequest) -> dict[str, Any]:
        """Memory per GPU by component (the `llmplan fit` request; `model` is a catalog id)."""
        from ..api import fit_request

        return fit_request(_catalog_names(req, catalog()), catalog()).model_dump(mode="json")

    @app.post("/api/estimate")
    def estimate(req: EstimateRequest) -> dict[str, Any]:
        """Speed of one deployment: TTFT, TPOT, throughput and their bounds (the `llmplan estimate` request)."""
        from ..perf.estimate import estimate

        return estimate(_catalog_names(req, catalog()), catalog()).model_dump(mode="json")

    @app.post("/api/simulate")
    def simulate(req: ServeRequest) -> dict[str, Any]:
        """Simulate a deployment under a workload (the `llmplan simulate` request)."""
        from ..serving.api import simulate

        return jsonable(simulate(_catalog_names(req, catalog()), catalog()))

    @app.post("/api/capacity")
    def capacity(req: ServeRequest) -> dict[str, Any]:
        """Fewest replicas that meet the workload's SLOs (the `llmplan capacity` request)."""
        from ..serving.api import capacity

        return jsonable(capacity(_catalog_names(req, catalog()), catalog()))

    @app.post("/api/tco")
    def tco(req: TcoRequest) -> dict[str, Any]:
        """On-premise TCO with cloud and API alternatives (the `llmplan tco` / `compare` request)."""
        from ..cost.tco import tco

        return jsonable(tco(_catalog_names(req, catalog()), catalog()))

    @app.post("/api/scenarios/validate")
    def scenario_validate(body: ScenarioIn) -> dict[str, Any]:
        """Check a scenario without saving or running it: {ok, error}."""
        try:
            s, _, _ = _scenario_from(body, catalog())
        except LlmplanError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "error": None, "name": s.name, "body": s.model_dump(mode="json", exclude_unset=True)}

    @app.post("/api/scenarios/yaml", response_class=PlainTextResponse)
    def scenario_to_yaml(body: ScenarioIn) -> str:
        """The YAML file for scenario fields (the form editor's other half)."""
        _, _, text = _scenario_from(body, catalog())
        return text

    @app.post("/api/measurements", status_code=201)
    def measurements_add(body: MeasurementsIn) -> dict[str, Any]:
        """Store calibration measurements: {"source": "...", "rows": [{...}, ...]} (the benchmark CSV columns)."""
        if not body.source.strip():
            raise SpecError("source", "say where the measurements come from")
        return {"stored": store.add_measurements(body.rows, body.source.strip())}

    @app.get("/api/measurements")
    def measurements() -> list[dict[str, Any]]:
        return store.measurements()

    # -------------------------------------------------------------- plans

    def _plan(s: Scenario, doc: dict[str, Any], sid: int | None = None, version: int | None = None,
              progress=None) -> dict[str, Any]:
        from ..planner.report import html_report, public_json, run, text

        t0 = time.perf_counter()
        try:
            result = run(s, catalog(), progress)
        except LlmplanError as exc:
            store.add_run(doc, "failed", catalog_tag(), __version__, error=str(exc), scenario_id=sid,
                          version=version, seconds=time.perf_counter() - t0)
            raise
        data = jsonable(public_json(result))
        rid = store.add_run(doc, "done", catalog_tag(), __version__, result=data, report_html=html_report(result),
                            report_md=text(result), seconds=time.perf_counter() - t0, scenario_id=sid,
                            version=version)
        return {"run_id": rid, "run_url": f"/api/runs/{rid}", "report_url": f"/api/runs/{rid}/report.html", **data}

    @app.post("/api/plan")
    def plan(body: ScenarioIn) -> dict[str, Any]:
        """Run the planner on a scenario (fields or YAML) without saving the scenario; the run is kept."""
        s, doc, _ = _scenario_from(body, catalog())
        return _plan(s, doc)

    lost = store.fail_unfinished_jobs("the server restarted before the job finished; run the plan again")
    app.state.failed_on_start = lost

    @app.post("/api/jobs/plan", status_code=202)
    def plan_job(body: ScenarioIn) -> dict[str, Any]:
        """Start a plan in the background; poll `status_url` for progress and the result's run.
        Jobs are kept in the store: one a restart interrupted reads as failed, never as lost."""
        s, doc, _ = _scenario_from(body, catalog())  # a bad scenario fails now, not in the job
        jid = uuid.uuid4().hex[:12]
        store.add_job(jid)

        def work() -> None:
            def progress(msg: str) -> None:
                store.update_job(jid, progress=msg)

            try:
                out = _plan(s, doc, progress=progress)
                store.update_job(jid, status="done", progress="done", run_id=out["run_id"])
            except LlmplanError as exc:
                store.update_job(jid, status="failed", progress="failed", error=str(exc))
            except Exception as exc:  # noqa: BLE001 - reported to the client, never a traceback page
                store.update_job(jid, status="failed", progress="failed",
                                 error=f"internal error: {exc.__class__.__name__}")

        threading.Thread(target=work, daemon=True).start()
        return {"job_id": jid, "status_url": f"/api/jobs/{jid}"}

    @app.get("/api/jobs/{jid}")
    def job_status(jid: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        job = store.get_job(jid)
        end = job["updated_at"] if job["status"] != "running" else None
        start = job.pop("created_at")
        job.pop("updated_at")
        import datetime as _dt

        def aware(t):
            return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)

        job["seconds"] = round(((aware(end) if end else _dt.datetime.now(_dt.timezone.utc)) - aware(start))
                               .total_seconds(), 2)
        if job["run_id"] is not None:
            job["run_url"] = f"/api/runs/{job['run_id']}"
            job["report_url"] = f"/api/runs/{job['run_id']}/report.html"
        return job

    # -------------------------------------------------------------- scenarios

    @app.get("/api/scenarios")
    def scenarios(archived: bool = False) -> list[dict[str, Any]]:
        return store.list_scenarios(archived)

    @app.post("/api/scenarios", status_code=201)
    def scenario_create(body: ScenarioIn) -> dict[str, Any]:
        s, doc, text = _scenario_from(body, catalog())
        return store.create_scenario(body.name or s.name, doc, text, body.comment)

    @app.get("/api/scenarios/{sid}")
    def scenario_get(sid: DbId) -> dict[str, Any]:
        return store.get_scenario(sid)

    @app.put("/api/scenarios/{sid}")
    def scenario_save(sid: DbId, body: ScenarioIn) -> dict[str, Any]:
        """Save a new version (nothing is overwritten)."""
        s, doc, text = _scenario_from(body, catalog())
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

    @app.post("/api/scenarios/{sid}/runs", status_code=201)
    def scenario_run(sid: DbId, version: VersionQ | None = None) -> dict[str, Any]:
        sc = store.get_scenario(sid)
        v = store.get_version(sid, version) if version is not None else sc["latest"]
        return _plan(parse_scenario(v["body"], f"scenario {sid} v{v['version']}"), v["body"], sid, v["version"])

    # -------------------------------------------------------------- runs and reports

    @app.get("/api/runs")
    def runs(scenario_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None) -> list[dict[str, Any]]:
        return store.list_runs(scenario_id)

    @app.get("/api/runs/{rid}")
    def run_get(rid: DbId) -> dict[str, Any]:
        return store.get_run(rid)

    @app.get("/api/runs/{rid}/report.{fmt}")
    def run_report(rid: DbId, fmt: Annotated[str, PathParam(max_length=8)]) -> Response:
        r = store.get_run(rid, with_reports=True)
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
        if fmt == "pdf":
            from ..planner.pdf import pdf_bytes

            return Response(pdf_bytes(r["result"], r["report_html"], catalog()), media_type="application/pdf",
                            headers={"content-disposition": f'attachment; filename="llmplan-run-{rid}.pdf"'})
        raise NotFound(f"no report format {fmt!r} (html, md, json, csv, pdf)")

    # -------------------------------------------------------------- overrides and measurements

    @app.get("/api/overrides")
    def overrides() -> list[dict[str, Any]]:
        return store.overrides()

    @app.post("/api/overrides/{kind}", status_code=201)
    def override_add(kind: Kind, entry: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Store a user catalog entry (validated against the catalog schema of its kind)."""
        from ..catalog.schema import KIND_MODELS

        _table(kind)
        cls = KIND_MODELS[KINDS[kind]]
        e = validated(cls, entry, f"{kind} entry")
        return store.add_override(kind, e.id, e.model_dump(mode="json"))

    # -------------------------------------------------------------- pages

    for path, label, *_ in PAGES:  # the pages: one layout around each page's content
        app.add_api_route(path, _page_route(path), methods=["GET"], response_class=HTMLResponse,
                          summary=f"the {label} page")

    return app


def _page_route(path: str):
    def serve() -> HTMLResponse:
        return HTMLResponse(page(path))

    return serve


def _catalog_names(req: R, cat=None) -> R:
    """Over HTTP, names must be catalog entries, never server paths (the CLI's `./model-dir/`,
    `model.gguf` or `workload.yaml` would read the server's disk)."""
    cat = cat or load_catalog()
    name = getattr(req, "model", None)
    if isinstance(name, str) and cat.models.find(name) is None:
        cat.model(name)  # raises with the closest catalog ids
    wl = getattr(req, "workload", None)
    if isinstance(wl, str) and cat.workload_presets.find(wl) is None:
        ids = ", ".join(x.id for x in cat.workload_presets)
        raise LlmplanError(f"workload: over the API, a workload preset id ({ids}); files are for the CLI")
    return req


def _table(kind: str, cat=None):
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
