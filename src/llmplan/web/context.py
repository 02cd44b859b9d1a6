"""What the routers share: the request bodies that are not specs, the Context (store, pool, job
runner, overrides in force) and the helpers that turn a request into a validated scenario."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from fastapi import Path as PathParam
from fastapi import Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from .. import __version__
from ..errors import LlmplanError
from ..planner.scenario import Scenario, parse_scenario
from ..specs import NAME_MAX_CHARS
from ..store.db import Store
from ..yamlguard import load_yaml
from . import overrides as ovr
from .compute import Budget, pool_for
from .jobs import JobRunner
from .security import MAX_BODY_BYTES

log = logging.getLogger("llmplan.web")

KINDS = ovr.KINDS
MAX_SCENARIO_VALUES = 100_000  # a scenario has a few dozen
MAX_DB_ID = 2**31 - 1  # the largest key the store holds (INTEGER: 32 bits on PostgreSQL)


def _whole(v: Any) -> Any:
    """A whole number in a URL is digits only: pydantic's lax parsing would take '0.0' or ' 1' for an int."""
    if isinstance(v, str) and not (v.isascii() and v.isdigit()):
        raise ValueError("a whole number (digits only)")
    return v


Whole = BeforeValidator(_whole)


def _flag(v: Any) -> Any:
    """A flag in a URL is true or false: pydantic's lax parsing would also take 1, 0, yes, off …"""
    if isinstance(v, str) and v.lower() not in ("true", "false"):
        raise ValueError("true or false")
    return v


Flag = BeforeValidator(_flag)
FlagQ = Annotated[bool, Query(description="true or false"), Flag]
DbId = Annotated[int, PathParam(ge=1, le=MAX_DB_ID), Whole]
VersionQ = Annotated[int, Query(ge=1, le=MAX_DB_ID), Whole]
IdQ = Annotated[int | None, Query(ge=1, le=MAX_DB_ID), Whole]
MAX_PAGE = 1000  # the most items one list answer holds
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"items per page (at most {MAX_PAGE:,}); the "
                                                             "X-Total-Count header says how many there are"), Whole]
Offset = Annotated[int, Query(ge=0, le=MAX_DB_ID, description="items to skip"), Whole]
PAGED: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"X-Total-Count": {"description": "how many items there are in all pages",
                                        "schema": {"type": "integer", "minimum": 0}}}}}
Kind = Annotated[str, PathParam(max_length=40)]
EntryId = Annotated[str, PathParam(max_length=NAME_MAX_CHARS)]


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

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        from ..names import check_name

        return v if v is None else check_name(v)


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


def scenario_from(body: ScenarioIn, cat: Any) -> tuple[Scenario, dict[str, Any], str]:
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

    def scenario_of(self, sid: int, version: int | None) -> tuple[Scenario, dict[str, Any], int]:
        """A saved version (the latest unless `version` is given), parsed."""
        sc = self.store.get_scenario(sid)
        v = self.store.get_version(sid, version) if version is not None else sc["latest"]
        return parse_scenario(v["body"], f"scenario {sid} v{v['version']}"), v["body"], v["version"]


def table(kind: str, cat: Any = None) -> Any:
    """The catalog table of `kind` (404 for an unknown kind)."""
    from ..catalog import load_catalog
    from ..store.db import NotFound

    attr = KINDS.get(kind)
    if attr is None:
        raise NotFound(f"no catalog {kind!r}; one of {', '.join(KINDS)}")
    return getattr(cat or load_catalog(), attr)
