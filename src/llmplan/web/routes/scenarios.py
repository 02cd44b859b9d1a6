"""Saved scenarios: validate, convert to YAML, create, save new versions (nothing is overwritten),
archive, read a version, diff two."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from ...errors import LlmplanError
from ...names import name_key
from .. import overrides as ovr
from ..context import PAGED, Context, DbId, FlagQ, Limit, Offset, ScenarioIn, VersionQ, scenario_from


def router(ctx: Context) -> APIRouter:
    r = APIRouter()
    store = ctx.store

    @r.post("/api/scenarios/validate")
    def scenario_validate(body: ScenarioIn) -> dict[str, Any]:
        """Check a scenario without saving or running it: {ok, error}."""
        try:
            s, _, _ = scenario_from(body, ctx.overrides().catalog)
        except LlmplanError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "error": None, "name": s.name, "body": s.model_dump(mode="json", exclude_unset=True)}

    @r.post("/api/scenarios/yaml", response_class=PlainTextResponse)
    def scenario_to_yaml(body: ScenarioIn) -> str:
        """The YAML file for scenario fields (the form editor's other half)."""
        return scenario_from(body, ctx.overrides().catalog)[2]

    @r.get("/api/scenarios", responses=PAGED)
    def scenarios(response: Response, archived: FlagQ = False, limit: Limit = 100, offset: Offset = 0
                  ) -> list[dict[str, Any]]:
        """Saved scenarios, oldest first, a page at a time (`limit`, `offset`); `X-Total-Count` is how many
        there are. The store keeps at most LLMPLAN_MAX_SCENARIOS (archived ones included)."""
        page, total = store.list_scenarios(archived, limit, offset)
        response.headers["x-total-count"] = str(total)
        return page

    def lookalike(name: str, sid: int | None = None) -> None:
        """A name that equals another scenario's once case and width are ignored (NFKC case-folded), but is
        not spelled the same, would pass for it in the list: 409. The same name twice is allowed (twins are
        told apart by their ids)."""
        key = name_key(name)
        for other in store.scenario_names():
            if other["id"] != sid and other["name"] != name and name_key(other["name"]) == key:
                raise ovr.Conflict(f"name {name[:100]!r} reads as scenario #{other['id']} {other['name'][:100]!r} "
                                   "(the same once case and character width are ignored): use exactly that name (a "
                                   "twin, told apart by its id) or another one")

    @r.post("/api/scenarios", status_code=201)
    def scenario_create(body: ScenarioIn) -> dict[str, Any]:
        s, doc, text = scenario_from(body, ctx.overrides().catalog)
        lookalike(body.name or s.name)
        return store.create_scenario(body.name or s.name, doc, text, body.comment)

    @r.get("/api/scenarios/{sid}")
    def scenario_get(sid: DbId) -> dict[str, Any]:
        return store.get_scenario(sid)

    @r.put("/api/scenarios/{sid}")
    def scenario_save(sid: DbId, body: ScenarioIn) -> dict[str, Any]:
        """Save a new version (nothing is overwritten)."""
        s, doc, text = scenario_from(body, ctx.overrides().catalog)
        if body.name:
            lookalike(body.name, sid)
        return store.save_version(sid, doc, text, body.comment, body.name)

    @r.delete("/api/scenarios/{sid}", status_code=204)
    def scenario_archive(sid: DbId) -> Response:
        """Archive: hidden from the list, every version kept."""
        store.archive(sid)
        return Response(status_code=204)

    @r.get("/api/scenarios/{sid}/versions/{version}")
    def scenario_version(sid: DbId, version: DbId) -> dict[str, Any]:
        return store.get_version(sid, version)

    @r.get("/api/scenarios/{sid}/versions/{version}/scenario.yaml", response_class=PlainTextResponse)
    def scenario_yaml(sid: DbId, version: DbId) -> str:
        return store.get_version(sid, version)["yaml"]

    @r.get("/api/scenarios/{sid}/diff", response_class=PlainTextResponse)
    def scenario_diff(sid: DbId, a: VersionQ, b: VersionQ) -> str:
        return store.diff(sid, a, b)

    return r
