"""The REST API fuzzed from its own OpenAPI document (schemathesis), on SQLite and on a real
PostgreSQL: valid and invalid requests for every operation, and every response must be no 5xx,
a documented status code and content type, and match its schema (4xx: the JSON ErrorBody);
requests the schema rules out must be refused.

`LLMPLAN_FUZZ_EXAMPLES` sets the examples per operation (CI: 40; `benchmarks/fuzz_api.py` runs
more) and `LLMPLAN_FUZZ_REPORT` a file for the counts of cases and status codes."""

from __future__ import annotations

import collections
import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from llmplan.web.app import create_app as _create_app
from llmplan.web.security import Origins

from .pg import postgres_url


def create_app(url):
    """The app as the fuzzer reaches it: by the test client's name, "testserver"."""
    return _create_app(url, origins=Origins(hosts=("testserver",)))

EXAMPLES = int(os.environ.get("LLMPLAN_FUZZ_EXAMPLES", "40"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance,
          response_headers_conformance, negative_data_rejection]
SEEN: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


class Backend:
    """The ASGI app the fuzzer calls: the app over the store of the current backend."""

    def __init__(self):
        self.name, self.app = "sqlite", create_app("sqlite://")  # serves the OpenAPI document at load

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


BACKEND = Backend()
schema = schemathesis.openapi.from_asgi("/openapi.json", BACKEND)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    if request.param == "sqlite":
        BACKEND.name, BACKEND.app = "sqlite", create_app(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 's.db'}")
        yield BACKEND.name
        return
    with postgres_url() as url:
        BACKEND.name, BACKEND.app = "postgresql", create_app(url)
        yield BACKEND.name
        BACKEND.app.state.store.engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    path = os.environ.get("LLMPLAN_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({k: dict(v) for k, v in SEEN.items()}, f, indent=1, sort_keys=True)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_within_its_schema(case, backend):
    response = case.call_and_validate(checks=CHECKS)
    SEEN[backend][str(response.status_code)] += 1
    SEEN[backend]["cases"] += 1


def test_the_document_is_openapi_30_without_2020_keywords():
    """The bundled Swagger UI reads OpenAPI 3.0: numeric exclusive bounds are booleans there,
    null is `nullable`, and `const`/`examples`/`propertyNames` do not exist."""
    from fastapi.testclient import TestClient

    doc = TestClient(create_app("sqlite://")).get("/openapi.json").json()
    assert doc["openapi"].startswith("3.0")
    bad = []

    def walk(node, where):
        if isinstance(node, dict):
            for k in ("exclusiveMinimum", "exclusiveMaximum"):
                if k in node and not isinstance(node[k], bool):
                    bad.append((where, k))
            if {"type": "null"} in node.get("anyOf", []):
                bad.append((where, "anyOf null"))
            bad.extend((where, k) for k in ("const", "propertyNames") if k in node)
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(doc["components"], "components")
    walk(doc["paths"], "paths")
    assert not bad, bad[:10]
    errors = [(p, m, c) for p, ops in doc["paths"].items() for m, op in ops.items()
              for c, r in op["responses"].items() if c.startswith("4")
              and r["content"] != {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}]
    assert not errors, errors[:5]
