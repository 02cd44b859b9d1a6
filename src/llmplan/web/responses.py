"""Response models of the computation routes: each result model with the catalog it was computed
with (the OpenAPI response schemas; the routes serialise with ``response_model_exclude_unset``, so
the JSON is the computation's own, keys neither added nor dropped)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..cost.results import TcoResult
from ..planner.results import PlanResult
from ..results import Result
from ..serving.results import CapacityResult, SimulateResult


class Stamp(Result):
    catalog_version: str = Field(description="the catalog the result was computed with (bundled plus overrides)")
    overrides_in_force: list[dict[str, Any]] = Field(description="the catalog overrides in force")


class SimulateResponse(SimulateResult, Stamp):
    pass


class CapacityResponse(CapacityResult, Stamp):
    pass


class TcoResponse(TcoResult, Stamp):
    pass


class PlanResponse(PlanResult, Stamp):
    run_id: int = Field(description="the run kept in the store")
    run_url: str
    report_url: str


# route options: the result's own keys, none added
EXACT: dict[str, Any] = {"response_model_exclude_unset": True}
