"""Scenario files: what a deployment must serve and what it is allowed to be (YAML, versioned,
one pydantic model; every field has a default and a description)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..catalog.schema import Slo
from ..errors import LlmplanError, validated
from ..serving.workload import Lengths, Tokens, generated
from ..specs import MIN_RATE_PER_S, MIN_REQUESTS_PER_DAY, MIN_YEARS, Name
from ..strict import StrictModel
from ..yamlguard import load_yaml

SCHEMA_VERSION = 1
Price = Annotated[float, Field(gt=0, le=1e8)]  # USD per accelerator
MAX_SCENARIO_BYTES = 1 * 2**20
Deployment = Literal["on_prem", "air_gapped", "sovereign_cloud", "public_cloud", "api"]
LicenseClass = Literal["permissive", "commercial_with_conditions", "non_commercial", "commercial"]


class _Strict(StrictModel):
    pass


class ScenarioWorkload(_Strict):
    """The load: a preset to start from, and any field of it to change."""

    preset: Name | None = Field(default=None, description="chat, rag, summarization, code-completion, agents")
    requests_per_day: float | None = Field(
        default=None,
        ge=MIN_REQUESTS_PER_DAY,
        le=1e10,
        description="requests in a day, spread over the profile's 24 hours",
    )
    rate_per_s: float | None = Field(
        default=None, ge=MIN_RATE_PER_S, le=1e6, description="constant traffic instead of a day"
    )
    profile: Name | list[float] | None = Field(
        default=None, description="flat, office-hours, global-consumer, 24 weights"
    )
    days_per_year: float | None = Field(
        default=None, ge=1, le=366, description="days a year with this load (default: the profile's; office "
        "hours: 250 working days)"
    )
    input_tokens: Lengths | Tokens | None = Field(
        default=None, description="prompt length: a number or {mean, p95} (lognormal)"
    )
    output_tokens: Lengths | Tokens | None = Field(
        default=None, description="answer length: a number or {mean, p95} (lognormal)"
    )
    shared_prefix_share: float | None = Field(
        default=None, ge=0, lt=1, description="share of each prompt served from the prefix cache"
    )
    thinking_tokens: Lengths | Tokens | None = Field(
        default=None, description="tokens a reasoning model thinks before its answer, on top of output_tokens: a "
        "number or {mean, p95}; needed for models that think (DeepSeek-R1 and its distills, gpt-oss, Qwen3)"
    )
    thinking_off: bool | None = Field(
        default=None, strict=True, description="clients turn thinking off where the model allows it (Qwen3)"
    )
    slo: Slo | None = Field(
        default=None, description="latency limits: ttft/tpot/e2e at p50/p95/p99 in ms, and goodput_pct"
    )

    @model_validator(mode="after")
    def _one_load(self) -> ScenarioWorkload:
        if self.requests_per_day is not None and self.rate_per_s is not None:
            raise ValueError("give requests_per_day or rate_per_s, not both (one would be ignored)")
        return self

    @model_validator(mode="after")
    def _generated_fits(self) -> ScenarioWorkload:
        """Thinking + answer must be a length a request may generate (where both are stated here; an answer
        from the preset is checked when the plan combines them)."""
        if self.thinking_tokens is not None and self.output_tokens is not None:
            def as_lengths(v: Lengths | int) -> Lengths:
                return v if isinstance(v, Lengths) else Lengths(mean=float(v))
            generated(as_lengths(self.output_tokens), as_lengths(self.thinking_tokens))
        return self


class ModelConstraints(_Strict):
    """Choose models by constraint instead of by name."""

    min_params_b: float | None = Field(default=None, ge=0, description="smallest total size, billions of parameters")
    max_params_b: float | None = Field(default=None, ge=0, description="largest total size, billions of parameters")
    licenses: list[LicenseClass] | None = Field(
        default=None, description="licence classes allowed (commercial = permissive + commercial_with_conditions)"
    )
    countries: list[Name] | None = Field(default=None, description="organisation countries allowed")
    min_context: int | None = Field(default=None, ge=1, description="shortest acceptable maximum context, tokens")
    families: list[Name] | None = Field(default=None, description="catalog model families (llama, qwen, mistral …)")
    max_models: int = Field(default=8, ge=1, le=100, description="keep the largest N matching models")


class HardwareConstraints(_Strict):
    """Choose accelerators by constraint instead of by name."""

    vendors: list[Name] | None = Field(
        default=None, description="accelerator vendors allowed, as in the catalog (NVIDIA, AMD …)"
    )
    countries: list[Name] | None = Field(default=None, description="designer countries allowed")
    min_memory_gib: float | None = Field(default=None, ge=0, description="smallest memory per accelerator, GiB")
    max_price_usd: float | None = Field(default=None, gt=0, description="per accelerator")
    kinds: list[Literal["datacenter", "workstation", "consumer", "soc", "npu"]] | None = Field(
        default=None, description="accelerator kinds: datacenter, workstation, consumer, soc, npu"
    )


class QualitySpec(_Strict):
    """How absolute model quality enters the plan: the task it is judged on, floors, and the cost band within
    which the better model wins."""

    task: Literal["general", "chat", "reasoning", "code"] = Field(
        default="general", description="what the deployment is for; picks the benchmark options are ranked on: "
        "general = MMLU-Pro, chat = LMArena rating, reasoning = GPQA, code = HumanEval+ (catalog benchmarks.yaml)")
    benchmark: Name | None = Field(default=None, description="rank on this catalog benchmark instead of the task's")
    min: dict[Name, Annotated[float, Field(ge=0, le=10000)]] = Field(
        default_factory=dict, description="floors per benchmark id, e.g. {mmlu_pro: 45}: on a percent benchmark "
        "the score after quantization (score × recovery), on a rating the 16-bit rating; a model without a "
        "published figure on a floored benchmark is excluded")
    cost_tolerance_pct: float = Field(
        default=10, ge=0, le=100, description="options whose TCO is within this % of the cheapest are ordered by "
        "quality on the ranking benchmark (differences under its resolution are ties, settled by cost); the "
        "rest by TCO. 0 ranks by TCO alone")
    cost_tie_pct: float = Field(
        default=1, ge=0, le=100, description="two options whose TCOs differ by less than this % of the "
        "recommendation's are reported as a tie on cost (the report then says what else separates them); the "
        "order is unchanged. 0: never")
    failure_tie_pct: float = Field(
        default=1, ge=0, le=100, description="an owned option bought without spares that falls short of the peak "
        "with one GPU failed (a failed GPU stops its replica: fewer left than the peak needs) counts as this % "
        "dearer in the ranking, so the same server as two replicas instead of one wins a near tie; 0: by cost alone")


COUNTRY_FIELDS = ("data_residency", "buyer_country", "allow_hardware_countries", "deny_hardware_countries",
                   "allow_provider_countries", "deny_provider_countries", "allow_model_countries",
                   "deny_model_countries")


class Policy(_Strict):
    """Sovereignty and compliance rules; every candidate is checked against each."""

    @field_validator(*COUNTRY_FIELDS, mode="before")
    @classmethod
    def _norway(cls, v: Any) -> Any:
        """YAML 1.1 reads an unquoted NO (Norway) as false: say so rather than 'not a valid string'."""
        if isinstance(v, bool) or (isinstance(v, list) and any(isinstance(x, bool) for x in v)):
            raise ValueError("a country code, not true/false (YAML reads an unquoted NO, Norway, as false: "
                             "write it in quotes, 'NO')")
        return v

    preset: Name | None = Field(default=None, description="start from a built-in policy (eu-gdpr-strict, …)")
    deployment: list[Deployment] = Field(
        default=["on_prem", "sovereign_cloud", "public_cloud", "api"],
        description="allowed modes: on_prem, air_gapped, sovereign_cloud, public_cloud, api; air_gapped is a "
        "requirement (owned hardware with no network path out: no cloud, no API), so the default, which allows "
        "every other mode, leaves it out",
    )
    data_residency: list[Name] | None = Field(default=None, description="where data may be processed: ISO codes or "
                                             "groups (EU, EEA); None: anywhere")
    buyer_country: Name | None = Field(default=None, description="ISO code of the buyer, for export controls; "
                                       "default: the one country of data_residency when it names a single "
                                       "country (stated in the report as an assumption)")
    allow_export_controlled: bool = Field(default=True, description="accelerators under export licensing for the "
                                          "buyer's country are acceptable")
    allow_hardware_vendors: list[Name] | None = Field(
        default=None, description="only these accelerator vendors (None: any)"
    )
    deny_hardware_vendors: list[Name] = Field(default_factory=list, description="never these accelerator vendors")
    allow_hardware_countries: list[Name] | None = Field(
        default=None, description="only accelerators designed in these countries (None: any)"
    )
    deny_hardware_countries: list[Name] = Field(
        default_factory=list, description="never accelerators designed in these countries"
    )
    allow_provider_countries: list[Name] | None = Field(
        default=None, description="only cloud/API providers under these jurisdictions (None: any)"
    )
    deny_provider_countries: list[Name] = Field(
        default_factory=list, description="never cloud/API providers under these jurisdictions"
    )
    model_licenses: list[LicenseClass] = Field(default=["commercial"], description="permissive, "
                                               "commercial_with_conditions, non_commercial; commercial = the first two")
    allow_model_countries: list[Name] | None = Field(
        default=None, description="only models from developers in these countries (None: any)"
    )
    deny_model_countries: list[Name] = Field(
        default_factory=list, description="never models from developers in these countries"
    )


class ScenarioFinance(_Strict):
    horizon_years: float = Field(default=4, ge=MIN_YEARS, le=30, description="years the deployment is costed over")
    region: Name | None = Field(
        default=None, description="catalog region id for electricity, carbon, PUE and colocation defaults"
    )
    electricity_usd_per_kwh: float | None = Field(
        default=None, ge=0, le=10, description="override the region's electricity price"
    )
    pue: float | None = Field(default=None, ge=1, le=3, description="override the region's power usage effectiveness")
    discount_rate: float | None = Field(default=None, ge=0, le=1, description="per year, as a fraction, for the NPV")
    depreciation_years: float | None = Field(
        default=None, ge=MIN_YEARS, le=30, description="straight-line depreciation of the hardware"
    )
    staff_usd_per_fte_year: float | None = Field(
        default=None, ge=0, le=1e7, description="loaded cost of one operations FTE"
    )
    staff_fte_base: float | None = Field(default=None, ge=0, le=100, description="FTE to run the deployment whatever "
                                         "its size (default: the catalog's, by facility)")
    staff_fte_per_server: float | None = Field(default=None, ge=0, le=100, description="FTE per server on top of "
                                               "the base")
    residual_value_pct: float | None = Field(default=None, ge=0, le=100, description="resale value at the horizon, "
                                             "% of hardware (default: the catalog's resale curve)")
    colocation_usd_per_kw_month: float | None = Field(default=None, ge=0, le=1e4, description="colocation per kW of "
                                                      "contracted capacity (the servers' maximum power)")
    licences: list[Name] = Field(default_factory=list, description="software licences to pay for (catalog ids, "
                                 "e.g. nvidia-ai-enterprise); the engine adds what it requires (NIM), nothing else "
                                 "is charged")
    gpu_price_usd: dict[Name, Price] = Field(default_factory=dict, description="purchase price per accelerator id")
    gpu_tdp_w: dict[Name, Annotated[float, Field(gt=0, le=1e5)]] = Field(
        default_factory=dict, description="power limit (W) per accelerator id, where the catalog has none")
    facility: Literal["datacenter", "office"] | None = Field(
        default=None, description="buy only rack servers (datacenter: colocation by contracted kW, switches, "
        "data-centre staff) or only machines under a desk (office); default: whichever is cheaper")


class Availability(_Strict):
    mode: Literal["none", "n_plus_1", "ha_pair"] = Field(
        default="none", description="n_plus_1: the fleet carries the peak with any one server down; ha_pair: two "
        "independent halves in separate servers, each carrying the peak. Both place the spares in other servers")


class Scenario(_Strict):
    schema_version: int = Field(default=SCHEMA_VERSION, description="version of this file format (1)")
    name: str = Field(default="unnamed scenario", max_length=200, description="title of the plan and its report")
    notes: str | None = Field(default=None, max_length=5000, description="free text carried into the report")
    workload: ScenarioWorkload = Field(
        default_factory=ScenarioWorkload, description="what must be served, and its SLOs"
    )
    models: list[Name] | ModelConstraints = Field(
        default_factory=ModelConstraints, description="model ids, or constraints that choose them from the catalog"
    )
    min_quality_recovery_pct: float = Field(
        default=0, ge=0, le=100, description="drop formats that keep less than this % of the 16-bit quality"
    )
    quality: QualitySpec = Field(
        default_factory=QualitySpec, description="absolute model quality: task, floors, cost tolerance of the ranking"
    )
    hardware: list[Name] | HardwareConstraints = Field(
        default_factory=HardwareConstraints,
        description="accelerator ids, or constraints that choose them from the catalog",
    )
    engines: list[Name] = Field(default=["vllm"], description="serving engines to consider (catalog ids)")
    precisions: list[Name] | None = Field(default=None, description="weight formats to consider (default: all "
                                         "the engine loads)")
    max_gpus_per_replica: int = Field(default=8, ge=1, le=64, description="largest tensor-parallel group tried")
    availability: Availability = Field(default_factory=Availability, description="spare capacity for failures")
    policy: Policy = Field(default_factory=Policy, description="sovereignty and compliance rules")
    finance: ScenarioFinance = Field(
        default_factory=ScenarioFinance, description="cost assumptions over the catalog defaults"
    )
    alternatives: list[Literal["cloud_gpu", "api"]] = Field(
        default=["cloud_gpu", "api"], description="also price these: cloud_gpu (rented GPUs), api (per-token APIs)"
    )
    seed: int = Field(default=0, ge=0, description="seed of the simulator's random arrivals and lengths")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        from ..names import check_name

        return check_name(v)

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is not supported (this llmplan reads {SCHEMA_VERSION})")
        return v

    @field_validator("models", "hardware", "engines")
    @classmethod
    def _not_empty(cls, v: object, info: ValidationInfo) -> object:
        if isinstance(v, list) and not v:
            what = {"models": "model ids (`llmplan catalog models`) or constraints such as {min_params_b: 30}",
                    "hardware": "accelerator ids (`llmplan catalog gpus`) or constraints such as {vendors: [NVIDIA]}",
                    "engines": "engine ids (`llmplan catalog engines`)"}[info.field_name or ""]
            raise ValueError(f"an empty list leaves nothing to plan: give {what}, or leave the field out for the "
                             "default")
        return v


def load_scenario(path: Path) -> Scenario:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise LlmplanError(f"{path}: no such scenario file") from None
    except OSError as exc:
        raise LlmplanError(f"{path}: cannot read ({exc.strerror})") from None
    if path.is_dir():
        raise LlmplanError(f"{path}: is a directory, expected a scenario YAML file")
    if size > MAX_SCENARIO_BYTES:
        raise LlmplanError(f"{path}: {size:,} bytes is over the {MAX_SCENARIO_BYTES:,}-byte limit for a scenario")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LlmplanError(f"{path}: not a UTF-8 text file") from None
    doc = load_yaml(text, str(path))  # the guarded loader: duplicate keys, nesting, alias bombs
    if doc is None:
        raise LlmplanError(f"{path}: the scenario is empty")
    if not isinstance(doc, dict):
        raise LlmplanError(f"{path}: a scenario is a mapping of fields (name, workload, models, hardware, policy …)")
    return parse_scenario(doc, str(path))


def parse_scenario(doc: dict, label: str = "scenario") -> Scenario:
    return validated(Scenario, doc, label)
