"""`simulate` and `capacity` answers as typed models (see :mod:`llmplan.results`)."""

from __future__ import annotations

from pydantic import Field

from ..results import Num, Result


class Percentiles(Result):
    """Over the requests (None where none completed)."""

    p50: Num | None = None
    p95: Num | None = None
    p99: Num | None = None
    mean: Num | None = None


class SloCheck(Result):
    limit: Num
    value: Num | None = None
    ok: bool


class ServeDeployment(Result):
    """The deployment simulated, as resolved from the request and the catalog."""

    model: str
    gpu: str
    engine: str
    precision: str
    num_gpus_per_replica: int
    tp: int
    pp: int
    replicas: int
    router: str
    seed: int
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_capacity_tokens: int
    workload_note: str | None = Field(default=None, description="how the workload was read for this model (a "
                                      "model that thinks, with no thinking_tokens stated)")


class RunSummary(Result):
    """What one simulated run served and how fast."""

    requests: int
    completed: int
    replicas: int
    duration_s: Num
    requests_s: Num
    output_tok_s: Num
    total_tok_s: Num
    ttft_ms: Percentiles
    tpot_ms: Percentiles
    e2e_ms: Percentiles
    answer_start_ms: Percentiles | None = Field(default=None, description="time to the first token of the answer, "
                                                "after the thinking (the TTFT for requests that do not think); runs "
                                                "saved before it existed have none")
    thinking_tokens_mean: Num | None = Field(default=None, description="the thinking the requests carried apart "
                                             "from their answers, on average (None: none)")
    goodput_pct: Num = Field(description="share of requests that met every latency SLO")
    slo: dict[str, SloCheck] = Field(description="each SLO: its limit, the simulated value, whether it is met")
    slo_met: bool
    mean_in_system: Num
    mean_wait_to_first_token_ms: Num
    queue_max: Num
    queue_mean: Num
    kv_util_mean: Num
    gpu_busy_pct: Num
    preemptions: int
    simulated: str | None = Field(default=None, description="capacity checks: how the run was simulated")


class SimulateResult(RunSummary):
    """`llmplan simulate` / `POST /api/simulate`."""

    deployment: ServeDeployment
    offered_load_pct: Num = Field(description="the peak rate as a share of what the replicas serve saturated")
    replica_capacity_req_s: Num
    overloaded: bool
    warning: str | None = None
    series: dict[str, list[Num | None]] = Field(description="time series, one value per sample (t_s: its time)")


class CapacityCheck(Result):
    requests: int
    replicas_simulated: int
    basis: str


class CapacityResult(Result):
    """`llmplan capacity` / `POST /api/capacity`: feasible with its replicas, or not with the reason."""

    feasible: bool
    replicas: int | None = None
    gpus: int | None = None
    servers: int | None = None
    peak_rate_per_s: Num
    replica_capacity_req_s: Num
    analytic_first_guess: int | None = None
    replicas_needed_at_least: int | None = None
    headroom_pct: Num | None = Field(default=None, description="how far the peak could grow before the replicas "
                                     "saturate (replicas × replica_capacity_req_s / peak − 1), not where the SLOs "
                                     "stop holding, which comes earlier")
    utilisation_by_hour_pct: list[Num] | None = None
    mean_utilisation_pct: Num | None = None
    at_peak: RunSummary | None = None
    one_fewer: RunSummary | None = None
    simulations: int | None = None
    check_requests: int | None = None
    check: CapacityCheck | None = None
    deployment: ServeDeployment
    reason: str | None = None
    at_max_replicas: RunSummary | None = None
