"""The OpenAPI document: every 4xx answer documented as one JSON shape (:class:`ErrorBody`), and
the document written as OpenAPI 3.0, which the bundled Swagger UI reads (pydantic writes JSON
Schema 2020-12). Fuzzed against the running app in tests/test_api_fuzz.py."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


class ErrorBody(BaseModel):
    """Every 4xx answer: what is wrong and how to fix it."""

    error: str = Field(description="one line: what is wrong and how to fix it")
    field: str | None = Field(default=None, description="the offending field (dotted path), when there is one")
    details: list[dict[str, Any]] | None = Field(default=None, description="every validation error (422)")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        400: "invalid input: unknown names (with the closest ones), impossible layouts, values out of range, "
             "a computation over its budget (refused up front or stopped), documents nested too deep",
        401: "authentication required (when the server runs with LLMPLAN_AUTH_TOKEN or LLMPLAN_AUTH_BASIC)",
        403: "cross-origin state-changing request refused (CSRF protection)",
        404: "no such scenario, version, run, job, catalog or entry",
        409: "a catalog override that would replace a built-in entry without ?replace=true, or claims a taken name",
        413: "request body over 1 MiB",
        415: "a state-changing request must carry JSON",
        421: "the Host header is not a name this server answers to (DNS rebinding; see serve --allowed-host)",
        422: "the request does not match its schema",
        429: "every worker busy and the queue full; retry after the Retry-After seconds",
    }.items()}



def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` OpenAPI 3.0 with every 4xx an ErrorBody in JSON, whatever the
    route's own media type (a text/plain YAML route still answers errors in JSON)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema["components"] = openapi30(schema.get("components", {}))
            schema["paths"] = openapi30(schema.get("paths", {}))
            for ops in schema["paths"].values():
                for op in ops.values():
                    for code, resp in op.get("responses", {}).items():
                        if code.startswith("4"):
                            resp["content"] = ERROR_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema


def openapi30(node: Any) -> Any:
    """Pydantic writes JSON Schema 2020-12; the document says OpenAPI 3.0 (what the bundled
    Swagger UI reads): numeric exclusive bounds become minimum + exclusiveMinimum: true, a
    null alternative becomes nullable, const becomes a one-value enum, propertyNames goes."""
    if isinstance(node, list):
        return [openapi30(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi30(v) for k, v in node.items() if k != "propertyNames"}
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        v = out.get(exclusive)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[bound], out[exclusive] = v, True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list) and out["examples"] and "properties" in out:
        out["example"] = out.pop("examples")[0]
    alts = out.get("anyOf")
    if isinstance(alts, list) and {"type": "null"} in alts:
        rest = [a for a in alts if a != {"type": "null"}]
        out["nullable"] = True
        if len(rest) == 1:
            del out["anyOf"]
            only = rest[0]
            if "$ref" in only:
                out["allOf"] = [only]
            else:
                out.update({k: v for k, v in only.items() if k not in out})
        else:
            out["anyOf"] = rest
    return out
