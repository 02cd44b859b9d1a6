"""The `plan` answer as a typed model (see :mod:`llmplan.results`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..results import Num, Result


class PlanOption(Result):
    """One deployment option: owned, rented GPUs or an API."""

    id: str
    deployment: str = Field(description="on_prem | cloud_gpu | api")
    model: str
    precision: str | None
    hardware: str | None
    engine: str | None
    num_gpus: int
    servers: int
    tp: int
    pp: int
    replicas: int
    tco_usd: Num
    cost_per_million_tokens_usd: Num
    ttft_p95_ms: Num | None
    tpot_p95_ms: Num | None
    answer_start_p95_ms: Num | None = Field(default=None, description="to the first token of the answer, after the "
                                            "thinking (the TTFT for a model that does not think); none for an API, "
                                            "and in runs saved before it existed")
    quality_recovery_pct: Num | None
    quality_score: Num | None
    serve_command: str | None = None
    details: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    allowed: bool | None = Field(default=None, description="references: whether the policy allows it")
    policy_reasons: list[str] | None = None
    breakeven_month: Num | None = None
    short_with_one_gpu_failed: bool | None = Field(
        default=None, description="owned and bought without spares: one failed GPU leaves fewer replicas than the "
        "peak needs (quality.failure_tie_pct); none for other options and in runs saved before it existed")


class Rejection(Result):
    option: str
    reasons: list[str]


class PlanResult(Result):
    """`llmplan plan --json`, the body of `POST /api/plan` and a run's result."""

    scenario: dict[str, Any]
    workload: dict[str, Any]
    horizon_years: Num
    finance_given: dict[str, Any]
    policy: dict[str, Any]
    assumptions: list[str]
    ranking: dict[str, Any] = Field(description="the ranking rule as data, and the sentence the report prints")
    candidates: dict[str, list[str]]
    recommendation: PlanOption | None
    alternatives: list[PlanOption]
    pareto: list[PlanOption]
    references: dict[str, PlanOption] = Field(description="the cheapest cloud GPU and API, allowed or not")
    rejected: list[Rejection]
    rejected_counts: dict[str, int]
    options_ranked: int
    advice: dict[str, Any] | None = Field(default=None, description="the buyer's sections as data: what_to_buy "
                                          "(servers, GPUs needed and bought, racks, kW), why (against the "
                                          "runner-up), what_would_change (thresholds that flip the answer)")
    why_none: str | None = None
    why_none_detail: dict[str, Any] | None = None
