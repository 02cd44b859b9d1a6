"""The `tco` answer as a typed model (see :mod:`llmplan.results`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..results import Num, Result
from ..serving.results import CapacityResult


class TcoDeployment(Result):
    model: str
    gpu: str
    engine: str
    precision: str
    replicas: int = Field(description="replicas bought (with availability spares)")
    replicas_needed: int = Field(description="replicas that carry the peak")
    gpus_per_replica: int
    gpus: int
    servers: int
    tp: int
    pp: int
    availability: str


class TcoWorkload(Result):
    requests_per_day: Num
    days_per_year: Num
    input_tokens_mean: Num
    output_tokens_mean: Num
    tokens_per_year: Num
    peak_rate_per_s: Num
    replica_capacity_req_s: Num
    utilisation_pct: Num
    active_pct: Num = Field(description="share of time the engines have a request in flight (the energy bill)")


class PowerKw(Result):
    contracted: Num = Field(description="what a colocation contract is sized on: every GPU at TDP, hosts at maximum")
    metered_average: Num


class SensitivityRow(Result):
    """One uncertain assumption at its low and high end, the others at their values."""

    assumption: str
    low: Num
    value: Num
    high: Num
    tco_at_low_usd: Num
    tco_at_high_usd: Num
    swing_usd: Num
    swing_pct_of_tco: Num


class TcoResult(Result):
    """`llmplan tco` / `compare`, `POST /api/tco`: owning against renting GPUs and buying API tokens."""

    deployment: TcoDeployment
    purchase: dict[str, Any] = Field(description="the servers bought: lines, placement, failure domains, power")
    workload: TcoWorkload
    horizon_years: Num
    capex_usd: Num
    capex_items_usd: dict[str, Num]
    opex_usd_per_year: Num
    opex_items_usd_per_year: dict[str, Num]
    licences: list[dict[str, Any]]
    residual_value_usd: Num
    residual_value_pct: Num
    depreciation_usd_per_year: Num
    tco_usd: Num
    npv_usd: Num
    power_kw: PowerKw
    staff_fte: Num
    energy_kwh_per_year: Num
    emissions_kg_per_year: Num
    cost_per_million_tokens_usd: Num
    energy_kwh_per_million_tokens: Num
    emissions_kg_per_million_tokens: Num
    cumulative_usd_by_month: list[Num]
    alternatives: list[dict[str, Any]] = Field(description="rented GPUs (per pricing) and APIs, each with its TCO "
                                               "and break-even month")
    hybrid: dict[str, Any] | None = Field(description="owning the base load and sending peaks elsewhere")
    assumptions: dict[str, Any] = Field(description="every input of the cost model, as used")
    capacity_plan: CapacityResult | None = Field(description="the capacity plan that sized the replicas (none when "
                                                 "they were given)")
    notes: list[str]
    uncertainty: dict[str, Any] | None = Field(default=None, description="Monte Carlo percentiles (with draws)")
    sensitivity: list[SensitivityRow] | None = Field(default=None, description="tornado: the swing of each "
                                                     "uncertain assumption (with draws)")
