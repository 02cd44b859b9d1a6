"""Catalog overrides: list (in force or why not), add, enable or disable, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from ...errors import LlmplanError
from .. import overrides as ovr
from ..context import Context, EntryId, Flag, Kind, OverrideState, table


def router(ctx: Context) -> APIRouter:
    r = APIRouter()
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

    @r.get("/api/overrides")
    def overrides() -> list[dict[str, Any]]:
        """Every stored override (latest revision): enabled, in force, replacing a built-in entry, or why not."""
        return listing(ctx.overrides())

    @r.post("/api/overrides/{kind}", status_code=201)
    def override_add(kind: Kind, entry: dict[str, Any] = Body(...),
                     replace: Annotated[bool, Query(description="allow replacing a built-in entry of this id"),
                                        Flag] = False) -> dict[str, Any]:
        """Store a user catalog entry: the catalog schema of its kind, the id grammar, at most 64 KiB and
        200 overrides; replacing a built-in entry needs ?replace=true; a name another entry has is refused (409)."""
        table(kind)
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

    @r.patch("/api/overrides/{kind}/{entry_id:path}")
    def override_state(kind: Kind, entry_id: EntryId, body: OverrideState) -> dict[str, Any]:
        """Enable or disable an override (disabled: stored, listed, not used)."""
        table(kind)
        return store.set_override_enabled(kind, entry_id, body.enabled)

    @r.delete("/api/overrides/{kind}/{entry_id:path}", status_code=204)
    def override_delete(kind: Kind, entry_id: EntryId) -> Response:
        """Delete an override with all its revisions; the built-in entry (if any) is used again."""
        table(kind)
        store.delete_override(kind, entry_id)
        return Response(status_code=204)

    return r
