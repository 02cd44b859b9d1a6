"""Health (versions, budgets, queue) and the calibration measurements."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ... import __version__
from ...errors import SpecError
from ..context import Context, MeasurementsIn


def router(ctx: Context) -> APIRouter:
    r = APIRouter()

    @r.get("/api/health")
    def health() -> dict[str, Any]:
        """Version, catalog version (with the overrides in force), schema revision, budgets and queue."""
        ov = ctx.overrides()
        return {"status": "ok", "version": __version__, "catalog_version": ctx.tag(ov),
                "schema_revision": ctx.store.schema_revision(), "overrides": ov.public(),
                "budget": ctx.budget.public(),
                "computations": {"running": ctx.pool.running(), "queued": ctx.pool.waiting()}}

    @r.post("/api/measurements", status_code=201)
    def measurements_add(body: MeasurementsIn) -> dict[str, Any]:
        """Store calibration measurements: {"source": "...", "rows": [{...}, ...]} (the benchmark CSV columns)."""
        if not body.source.strip():
            raise SpecError("source", "say where the measurements come from")
        return {"stored": ctx.store.add_measurements(body.rows, body.source.strip())}

    @r.get("/api/measurements")
    def measurements() -> list[dict[str, Any]]:
        return ctx.store.measurements()

    return r
