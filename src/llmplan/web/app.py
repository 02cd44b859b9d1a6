"""REST API (OpenAPI at /docs and /openapi.json) and the pages, over a Store.

Request bodies are the same pydantic models as the Python API and the scenario files: a
scenario saved here is the YAML file a CLI user runs. Every computation runs under a budget in a
bounded pool of worker processes and stops when its client goes away. Errors are JSON: 400 for a
request the user can fix (the same one-line messages as the CLI, budgets included), 404 for a
missing object, 409 for a catalog override that would shadow or clash, a scenario name that reads as
another's, or a store that holds as many runs or scenarios as it keeps, 413 for an oversized body,
422 for a body that does not validate, 429 when the queue is full.

The routes live in `routes/`, one module per resource; `context.py` holds what they share."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import LlmplanError, SpecError, describe, suggest_fields
from ..store.db import NotFound, Store, StoreFull
from . import overrides as ovr
from .compute import Budget, Busy, Cancelled
from .context import ClientGone, Context, catalog_version, log, scenario_from
from .openapi import ERROR_RESPONSES, document_errors
from .routes import routers
from .security import HEADERS, MAX_BODY_BYTES, Auth, BodyLimit, Guard, Origins


def create_app(database: str | None = None, auth: Auth | None = None, origins: Origins | None = None,
               budget: Budget | None = None) -> FastAPI:
    """The app over a store. `auth` defaults to LLMPLAN_AUTH_TOKEN / LLMPLAN_AUTH_BASIC, `origins`
    to LLMPLAN_ALLOWED_HOSTS / LLMPLAN_PUBLIC_URL / LLMPLAN_TRUSTED_PROXIES (loopback names only
    when none is set), `budget` to the LLMPLAN_*_BUDGET settings (web/compute.py)."""
    _log_level_from_env()
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
    for router in routers(ctx):
        app.include_router(router)
    app.add_middleware(Guard, auth=auth, origins=origins)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # outermost: counts every body
    return app


def _log_level_from_env() -> None:
    """A server process started by `serve --workers N` logs at the parent's --log-level."""
    import logging
    import os

    level = os.environ.get("LLMPLAN_LOG_LEVEL", "").upper()
    root = logging.getLogger("llmplan")
    if level in ("DEBUG", "INFO", "WARNING", "ERROR") and not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)


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


def _error(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**HEADERS, **(headers or {})})


def _handlers(app: FastAPI) -> None:
    """Every error as JSON `{"error": ...}` with the security headers, the framework's own included."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, {"error": str(exc.detail)}, exc.headers)

    @app.exception_handler(NotFound)
    async def _nf(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, {"error": str(exc)})

    @app.exception_handler(StoreFull)
    async def _full(_: Request, exc: StoreFull) -> JSONResponse:
        return _error(409, {"error": str(exc)})

    @app.exception_handler(ovr.Conflict)
    async def _conflict(_: Request, exc: ovr.Conflict) -> JSONResponse:
        return _error(409, {"error": str(exc)})

    @app.exception_handler(Busy)
    async def _busy(_: Request, exc: Busy) -> JSONResponse:
        return _error(429, {"error": str(exc)}, {"retry-after": "30"})

    @app.exception_handler(LlmplanError)
    async def _bad(_: Request, exc: LlmplanError) -> JSONResponse:
        body: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, SpecError):
            body["field"] = exc.field
        return _error(400, body)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{**e, "loc": tuple(p for p in e.get("loc", ()) if p != "body")} for e in exc.errors()]
        bad_json = next((e for e in errs if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            where = bad_json["loc"][0] if bad_json["loc"] else None
            why = (bad_json.get("ctx") or {}).get("error") or "not valid JSON"
            at = f" at character {where}" if isinstance(where, int) else ""
            return _error(422, {"error": f"the body is not valid JSON: {why}{at}",
                                "details": [{"loc": list(bad_json["loc"]), "msg": why}]})
        model = _body_model(request)
        if model is not None:
            errs = suggest_fields(model, errs)
        field, reason = describe(errs)
        message = reason if field == "(top level)" else f"{field}: {reason}"
        return _error(422, {"error": message,
                            "details": [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errs[:20]]})

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, exc: ClientGone) -> JSONResponse:
        return _error(499, {"error": "the client went away; the computation was stopped"})

    @app.exception_handler(Cancelled)
    async def _cancelled(_: Request, exc: Cancelled) -> JSONResponse:
        return _error(499, {"error": "the computation was cancelled"})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:  # the last resort: JSON, the headers
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, {"error": f"internal error ({exc.__class__.__name__}); the server log has the details"})


def _body_model(request: Request) -> Any:
    """The pydantic model of the route's JSON body, for 'did you mean' on unknown fields."""
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(field, "type_", None) or getattr(getattr(field, "field_info", None), "annotation", None)
    return model if isinstance(model, type) and hasattr(model, "model_fields") else None


__all__ = ["create_app", "catalog_version", "scenario_from"]
