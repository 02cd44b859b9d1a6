"""The app's routes, one router per resource: meta (health, measurements), catalog, the
computations (fit, estimate, simulate, capacity, tco), plans and jobs, scenarios, runs and their
reports, catalog overrides, and the pages. Each module's `router(ctx)` builds its APIRouter over
the shared :class:`~llmplan.web.context.Context`."""

from __future__ import annotations

from fastapi import APIRouter

from ..context import Context
from . import calc, catalog, meta, overrides, pages, plans, runs, scenarios

MODULES = (meta, catalog, calc, plans, scenarios, runs, overrides, pages)


def routers(ctx: Context) -> list[APIRouter]:
    return [m.router(ctx) for m in MODULES]
