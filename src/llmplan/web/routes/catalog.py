"""The catalog in force (bundled entries and overrides), one kind or one entry at a time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..context import Context, EntryId, Kind, table


def router(ctx: Context) -> APIRouter:
    r = APIRouter()

    @r.get("/api/catalog/{kind}")
    def catalog_list(kind: Kind) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in table(kind, ctx.overrides().catalog)]

    @r.get("/api/catalog/{kind}/{entry_id:path}")
    def catalog_entry(kind: Kind, entry_id: EntryId) -> dict[str, Any]:
        return table(kind, ctx.overrides().catalog).get(entry_id).model_dump(mode="json")

    return r
