"""Typed rows of the catalog files.

Every row carries its provenance (`source`, `as_of`). Facts that are unknown stay
``None``: a missing number is never guessed. Units are in the field names
(``_gib`` = 2**30 bytes, ``_gb_s`` = 10**9 bytes per second, ``_tflops`` = 10**12
operations per second, ``_w`` = watts, ``_usd`` = US dollars).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ..strict import StrictModel

_DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class _Strict(StrictModel):
    """Unknown keys are an error: a typo in a catalog file must not pass silently."""

    # patterns compile with Python's re: pydantic-core's default (Rust regex) builds a Unicode automaton for
    # `\w{0,199}` that took 60 ms of every command's start
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False,
                              regex_engine="python-re")


def _check_date(value: str) -> str:
    value = str(value).strip()
    if not _DATE_RE.match(value):
        raise ValueError(f"{value!r} is not a date (use YYYY-MM-DD, YYYY-MM or YYYY)")
    parts = [int(p) for p in value.split("-")] + [1, 1]
    _dt.date(parts[0], parts[1], parts[2])  # raises on 2024-13-40
    return value


Date = Annotated[str, BeforeValidator(lambda v: _check_date(str(v))),
                 Field(description="ISO date, YYYY-MM-DD (or YYYY-MM, YYYY)")]

# a --reasoning-parser name: it goes on a serve line and into reports, so no space, quote or markup
ParserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]  # never read as an option
BlockSide = Annotated[int, Field(ge=1, le=65536, strict=True)]  # a quantization block's side, in elements
# one word of a serve line taken from the catalog (a flag or its value): no space, quote or shell syntax
ServeArg = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.=-]{1,64}$")]
_KWARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _template_kwargs(v: Any) -> Any:
    """Chat-template kwargs as one canonical JSON object (a mapping in YAML, or its JSON text): names are
    identifiers, values booleans, numbers or printable text, so the object goes into a serve line and a report
    as it is."""
    if v is None:
        return v
    try:
        obj = json.loads(v) if isinstance(v, str) else v
    except ValueError:
        raise ValueError("not a JSON object") from None
    if not isinstance(obj, dict) or not obj:
        raise ValueError("a non-empty mapping of chat-template kwargs, e.g. {enable_thinking: false}")
    for key, value in obj.items():
        if not isinstance(key, str) or not _KWARG.fullmatch(key):
            raise ValueError(f"{key!r} is not a chat-template kwarg name")
        if not isinstance(value, bool | int | float | str):
            raise ValueError(f"{key}: a boolean, number or text")
        _check_printable(value if isinstance(value, str) else "")
    return json.dumps(obj, allow_nan=False)


def _check_printable(v: Any) -> Any:
    """Text (or texts) that reach reports and serve lines: no control or format characters (line breaks, bidi)."""
    for text in ([v] if isinstance(v, str) else v or ()):
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text):
            raise ValueError("no control or format characters (line breaks, bidi overrides)")
    return v


class Provenance(_Strict):
    """Where a fact comes from and when it was true."""

    source: str = Field(description="URL(s) or document the facts of this entry come from; ' ; ' separates several")
    as_of: Date = Field(description="date the source describes (or was read)")
    notes: str | None = Field(default=None, description="caveats, derivations")

    @field_validator("source")
    @classmethod
    def _source_non_empty(cls, v: str) -> str:
        if not str(v).strip():
            raise ValueError("source must not be empty")
        return str(v).strip()


class Entry(Provenance):
    """A catalog entry: an id users type, aliases they may type instead."""

    id: str = Field(description="canonical id, lower-case for hardware/formats/engines, the Hugging Face id for models")
    aliases: tuple[str, ...] = Field(default=(), description="other names users may type")
    name: str | None = Field(default=None, description="human-readable name")

    @field_validator("name")
    @classmethod
    def _display_name(cls, v: str | None) -> str | None:
        from ..names import check_name

        return v if v is None else check_name(v)


# --------------------------------------------------------------------------------------
# Accelerators
# --------------------------------------------------------------------------------------

TENSOR_GROUPS = ("embedding", "lm_head", "attention", "mlp", "experts", "shared_experts", "router", "norms")
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")


class DenseTflops(_Strict):
    """Dense (no sparsity) peak rates, 10**12 op/s. int8 is TOPS. Missing = not supported."""

    fp32: float | None = None
    tf32: float | None = None
    bf16: float | None = None
    fp16: float | None = None
    fp8: float | None = None
    int8: float | None = None
    fp4: float | None = None

    def get(self, dtype: str) -> float | None:
        return getattr(self, dtype)


class Interconnect(_Strict):
    kind: str = Field(
        description="nvlink3, nvlink4, nvlink5, nvlink-c2c, infinity-fabric, hccs, gaudi-roce, pcie4, pcie5, "
        "ultrafusion, none"
    )
    bandwidth_gb_s: float | None = Field(
        default=None, description="scale-up bandwidth per GPU, per direction, 10**9 B/s")
    domain_size: int | None = Field(default=None, description="GPUs in one scale-up domain (8 for HGX, 72 for NVL72)")


class Price(_Strict):
    usd: float = Field(gt=0)
    as_of: Date
    source: str
    basis: str | None = Field(default=None, description="what the price is: list price, street price, HGX board / 8 …")
    estimate: bool = Field(default=False, description="not a quote or listing for this part: derived from comparable "
                           "parts (basis says how); low_usd/high_usd give its range")
    low_usd: float | None = Field(default=None, gt=0, description="low end of the plausible range (estimates)")
    high_usd: float | None = Field(default=None, gt=0, description="high end of the plausible range (estimates)")

    @model_validator(mode="after")
    def _range(self) -> Price:
        if self.estimate and (self.low_usd is None or self.high_usd is None or not self.basis):
            raise ValueError("an estimated price needs low_usd, high_usd and a basis saying how it was derived")
        lo = self.low_usd if self.low_usd is not None else self.usd
        hi = self.high_usd if self.high_usd is not None else self.usd
        if not lo <= self.usd <= hi:
            raise ValueError("usd must lie within [low_usd, high_usd]")
        return self


class ExportControl(_Strict):
    us_china: Literal["license_required", "not_controlled", "china_specific", "restricted_by_origin", "unknown"] = (
        Field(description="status under US export rules for a buyer in China")
    )
    regime: str | None = Field(default=None, description="e.g. ECCN 3A090, 2023 advanced-computing rule")
    notes: str | None = None


# a measured matmul rate may exceed the rated peak: GeForce ratings assume the base boost clock, and the cards run
# faster (RTX 5090 BF16 measured 14 % above its FP32-accumulate rating); more than this is a data-type mix-up
MAX_MEASURED_OVER_RATED = 1.25


class Accelerator(Entry):
    vendor: str
    family: str = Field(
        description="architecture family, used to group calibration (ampere, ada, hopper, blackwell, cdna3, "
        "apple-m2, ascend, gaudi …)"
    )
    kind: Literal["datacenter", "workstation", "consumer", "soc", "npu"]
    form_factor: str | None = None
    memory_gib: float = Field(gt=0, description="device memory (HBM/GDDR/unified), 2**30 bytes")
    memory_type: str | None = None
    usable_memory_gib: float | None = Field(
        default=None, gt=0, description="memory the runtime reports as total (e.g. torch 'total capacity'); "
        "for unified memory the default GPU working-set limit")
    memory_bandwidth_gb_s: float = Field(gt=0, description="peak memory bandwidth, 10**9 B/s")
    dense_tflops: DenseTflops
    matmul_tflops: DenseTflops | None = Field(
        default=None, description="measured maximum achievable dense matmul rate per data type, 10**12 op/s: the "
        "best of a search over GEMM shapes (mamf-finder) or a comparable published measurement. The physics computes "
        "with this share of the peak (perf/shape.py matmul_fraction); a chip without it takes the catalog's typical "
        "share (the median of the measured ones). GeForce cards measure above their rating (they boost above the "
        "clock it assumes), up to MAX_MEASURED_OVER_RATED times it")
    matmul_source: str | None = Field(default=None, description="the measurement behind matmul_tflops")
    tdp_w: float | None = Field(default=None, gt=0, description="board / module power limit, watts")
    tdp_estimated: bool = Field(default=False, description="tdp_w is an estimate (from the spec class or the "
                                "system's power supply; notes say how), not the vendor's figure")
    interconnect: Interconnect
    pcie_gen: int | None = None
    typical_server: str | None = Field(default=None, description="server catalog id or description")
    max_per_server: int | None = Field(default=None, ge=1, description="most of these devices one server/node holds")
    price: Price | None = Field(default=None, description="purchase price per device: a dated quote/listing, or a "
                                "labelled estimate with its range (Price.estimate)")
    sold_separately: bool = Field(default=True, description="false for parts only rented in a cloud (AWS A10G): "
                                  "they have no purchase price")
    designer_country: str | None = Field(default=None, description="ISO 3166 alpha-2 code of the designer")
    fab: str | None = Field(default=None, description="foundry and node, e.g. 'TSMC 4N'")
    fab_country: str | None = Field(default=None, description="ISO code where the die is fabricated")
    export_control: ExportControl | None = None
    release_year: int | None = None

    def half_rate_bf16(self) -> bool:
        """A GeForce card: FP16 rated more than 1.5 × BF16, BF16's FP32 accumulate running at half the tensor rate.
        A BF16 matmul measurement there is of that half-rate path, which runs below the power limit and above the
        rated clock; it tells nothing of the full-rate paths (FP16 accumulate, FP8, FP4, INT8)."""
        fp16, bf16 = self.dense_tflops.get("fp16"), self.dense_tflops.get("bf16")
        return fp16 is not None and bf16 is not None and fp16 > 1.5 * bf16

    def matmul_shares(self) -> dict[str, float]:
        """The measured matmul rate over the rated dense peak, for each data type measured (empty without one)."""
        got = self.matmul_tflops.model_dump() if self.matmul_tflops else {}
        return {k: m / r for k, m in got.items() if m is not None and (r := self.dense_tflops.get(k))}

    @model_validator(mode="after")
    def _sane(self) -> Accelerator:
        t = self.dense_tflops
        if t.fp32 is not None:
            for name in ("bf16", "fp16"):
                v = t.get(name)
                if v is not None and v < t.fp32:
                    raise ValueError(f"dense_tflops.{name} ({v}) is below fp32 ({t.fp32})")
        lowp = t.bf16 or t.fp16
        if lowp is None:
            raise ValueError("dense_tflops needs bf16 or fp16")
        if t.fp8 is not None and t.fp8 < lowp:
            raise ValueError(f"dense_tflops.fp8 ({t.fp8}) is below bf16/fp16 ({lowp})")
        if (self.matmul_tflops is None) != (self.matmul_source is None):
            raise ValueError("matmul_tflops needs matmul_source (and the reverse)")
        if self.matmul_tflops is not None and not any(v is not None for v in self.matmul_tflops.model_dump().values()):
            raise ValueError("matmul_tflops names no data type: give at least one measured rate, or leave it out")
        for name, measured in (self.matmul_tflops.model_dump() if self.matmul_tflops else {}).items():
            rated = t.get(name)
            if measured is None:
                continue
            if rated is None:
                raise ValueError(f"matmul_tflops.{name} ({measured}) needs dense_tflops.{name} (the rating it is a "
                                 "share of)")
            if measured > MAX_MEASURED_OVER_RATED * rated:
                raise ValueError(f"matmul_tflops.{name} ({measured}) is more than {MAX_MEASURED_OVER_RATED:g} × "
                                 f"dense_tflops.{name} ({rated}): check the data type and the rating")
        if self.usable_memory_gib is not None and self.usable_memory_gib > self.memory_gib:
            raise ValueError("usable_memory_gib exceeds memory_gib")
        return self


# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------


class HostBom(_Strict):
    """The server without its accelerators (CPUs, memory, NICs, drives, chassis, power supplies):
    what it adds to the bill and to the power. `basis` says how the figures were obtained (a quote,
    or the rule they were derived by)."""

    cost_usd: float = Field(ge=0, description="host price, USD, accelerators excluded")
    cost_low_usd: float | None = Field(default=None, ge=0, description="low end of the plausible range")
    cost_high_usd: float | None = Field(default=None, ge=0, description="high end of the plausible range")
    power_w: float = Field(ge=0, description="host maximum power beyond the accelerators, watts")
    estimate: bool = Field(default=False, description="derived by a rule, not a quote for this server")
    cpu: str | None = None
    memory: str | None = None
    nics: str | None = None
    chassis: str | None = None
    basis: str = Field(description="how cost and power were obtained")
    source: str
    as_of: Date

    @model_validator(mode="after")
    def _range(self) -> HostBom:
        lo = self.cost_low_usd if self.cost_low_usd is not None else self.cost_usd
        hi = self.cost_high_usd if self.cost_high_usd is not None else self.cost_usd
        if not lo <= self.cost_usd <= hi:
            raise ValueError("cost_usd must lie within [cost_low_usd, cost_high_usd]")
        if self.estimate and (self.cost_low_usd is None or self.cost_high_usd is None):
            raise ValueError("an estimated host cost needs cost_low_usd and cost_high_usd")
        return self


class Server(Entry):
    """A buying unit: a chassis that holds up to `max_gpus` accelerators (a PCIe server or a
    workstation, sold with 1..max cards), a board sold whole (HGX, OAM, Gaudi, Atlas), or an
    appliance that is a whole computer with one all-in price and power (DGX Spark, Mac Studio,
    a GH200 node)."""

    kind: Literal["board", "pcie", "workstation", "appliance"] = Field(
        description="board: the accelerators come as one baseboard of max_gpus; pcie / workstation: cards are "
        "installed one by one up to max_gpus; appliance: a whole computer (price and power are all-in)")
    accelerators: tuple[str, ...] = Field(min_length=1, description="accelerator catalog ids this configuration is "
                                          "sold with")
    max_gpus: int = Field(ge=1, description="accelerators the chassis or board holds")
    gpu_counts: tuple[int, ...] = Field(default=(), description="accelerator counts it is sold with (default: "
                                        "max_gpus for boards and appliances, 1..max_gpus for pcie and workstations)")
    host: HostBom | None = Field(default=None, description="the server without its accelerators (not for appliances)")
    price: Price | None = Field(default=None, description="appliances: the all-in price (default: the "
                                "accelerator's price, which for these parts is the whole machine's)")
    max_power_w: float | None = Field(default=None, gt=0, description="appliances: maximum system power at the wall; "
                                      "others: the vendor's maximum system power where published")
    idle_power_w: float | None = Field(default=None, gt=0, description="appliances: measured idle power at the wall")
    facility: Literal["datacenter", "office"] = Field(
        description="datacenter: racked, pays colocation by contracted kW and needs a top-of-rack switch; office: "
        "under a desk, no colocation, on the office network")
    rack_units: int | None = Field(default=None, ge=1)
    network: str | None = Field(default=None, description="networking per node, e.g. '8x 400Gb/s InfiniBand NDR'")
    network_gbps: float | None = Field(default=None, ge=0, description="network bandwidth per node, 10**9 bit/s")

    @model_validator(mode="after")
    def _consistent(self) -> Server:
        if self.kind == "appliance":
            if self.host is not None:
                raise ValueError("an appliance has one all-in price and power: no host")
            if self.max_power_w is None:
                raise ValueError("an appliance needs max_power_w (its all-in power)")
        elif self.host is None:
            raise ValueError(f"a {self.kind} server needs its host (cost and power without the accelerators)")
        if any(n < 1 or n > self.max_gpus for n in self.gpu_counts):
            raise ValueError("gpu_counts must lie within 1..max_gpus")
        if self.price is not None and self.kind != "appliance":
            raise ValueError("only appliances carry an all-in price (others: accelerator price + host cost)")
        return self

    @property
    def counts(self) -> tuple[int, ...]:
        """The accelerator counts this server is sold with."""
        if self.gpu_counts:
            return tuple(sorted(set(self.gpu_counts)))
        if self.kind in ("pcie", "workstation"):
            return tuple(range(1, self.max_gpus + 1))
        return (self.max_gpus,)

    @property
    def accelerator(self) -> str:
        return "/".join(self.accelerators)

    @property
    def gpu_count(self) -> int:
        return self.max_gpus


class LicenceBundle(_Strict):
    """Years of a licence that come with an accelerator's purchase."""

    accelerator: str = Field(description="accelerator catalog id")
    years: float = Field(gt=0)
    source: str


class SoftwareLicence(Entry):
    """A software subscription that may be charged to a deployment: only when the scenario asks for
    it or the chosen engine requires it, never by default."""

    vendor: str
    basis: Literal["per_gpu", "per_server"]
    usd_per_year: float = Field(gt=0, description="per GPU or per server and year, list price")
    low_usd_per_year: float = Field(gt=0)
    high_usd_per_year: float = Field(gt=0)
    accelerator_vendors: tuple[str, ...] = Field(default=(), description="accelerator vendors it licenses (empty: any)")
    required_by_engines: tuple[str, ...] = Field(default=(), description="engine ids that need it in production")
    bundled: tuple[LicenceBundle, ...] = Field(
        default=(), description="accelerators whose purchase includes years of it"
    )

    @model_validator(mode="after")
    def _range(self) -> SoftwareLicence:
        if not self.low_usd_per_year <= self.usd_per_year <= self.high_usd_per_year:
            raise ValueError("usd_per_year must lie within [low_usd_per_year, high_usd_per_year]")
        return self


class ResalePoint(_Strict):
    age_years: float = Field(ge=0)
    pct: float = Field(ge=0, le=100, description="resale price as % of the purchase price")
    low_pct: float = Field(ge=0, le=100)
    high_pct: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _range(self) -> ResalePoint:
        if not self.low_pct <= self.pct <= self.high_pct:
            raise ValueError("pct must lie within [low_pct, high_pct]")
        return self


class ResaleCurve(Entry):
    """Resale value of accelerated servers by age: credited at the end of the horizon."""

    points: tuple[ResalePoint, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _ordered(self) -> ResaleCurve:
        ages = [p.age_years for p in self.points]
        if ages != sorted(ages) or len(set(ages)) != len(ages) or ages[0] != 0:
            raise ValueError("points must start at age 0 and increase in age")
        return self


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


class MoE(_Strict):
    num_experts: int = Field(ge=1, description="routed experts per MoE layer")
    experts_per_token: int = Field(ge=1)
    num_shared_experts: int = Field(default=0, ge=0)
    expert_intermediate_size: int = Field(ge=1)
    shared_expert_intermediate_size: int | None = Field(
        default=None, description="total intermediate size of the shared expert(s); default num_shared × expert size")
    num_dense_layers: int = Field(
        default=0, ge=0, description="leading layers with a dense MLP (DeepSeek first_k_dense_replace)"
    )
    moe_layer_step: int = Field(
        default=1, ge=1, description="every N-th layer is MoE (Llama-4 Maverick interleave_moe_layer_step=2)"
    )
    dense_intermediate_size: int | None = Field(
        default=None, description="MLP size of the non-MoE layers; default the model's intermediate_size"
    )


class MLA(_Strict):
    """Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2)."""

    kv_lora_rank: int
    q_lora_rank: int | None = None
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int


class LinearAttention(_Strict):
    """Linear-attention / SSM layers that keep a constant-size state (Qwen3-Next gated DeltaNet)."""

    num_layers: int = Field(ge=1)
    num_key_heads: int
    num_value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int = 4


class ReasoningParsers(_Strict):
    """A thinking model's reasoning parser in each engine's own names (an engine not named gets none)."""

    vllm: ParserName | None = Field(default=None, description="vLLM's --reasoning-parser name")
    sglang: ParserName | None = Field(default=None, description="SGLang's --reasoning-parser name")

    def for_engine(self, engine: str) -> str | None:
        """The name under engine id `engine` (None: the catalog names none for that engine)."""
        return getattr(self, engine) if engine in type(self).model_fields else None


class Model(Entry):
    family: str
    architecture: str = Field(description="Hugging Face model_type (llama, qwen2, deepseek_v3 …)")
    organization: str
    country: str = Field(description="ISO code of the organisation's home country")
    license: str
    license_class: Literal["permissive", "commercial_with_conditions", "non_commercial", "unknown"]
    license_excludes: tuple[str, ...] = Field(default=(), description="ISO codes or country groups (EU) whose "
                                              "residents and companies the licence grants no rights to run the "
                                              "weights (Llama 4's multimodal models: the EU); end users of a "
                                              "service built on them are not excluded")
    commercial_use: bool | None = Field(description="whether the licence allows commercial use (None: unknown)")
    release_date: Date | None = None
    variant_of: str | None = Field(default=None, description="catalog id of the entry whose architecture this one "
                                   "shares (an Instruct of its Base): the loader copies the architecture fields "
                                   "(VARIANT_FIELDS) from it, so they are written once")
    tuning: Literal["base", "instruct"] = Field(
        default="instruct", description="base: a pre-trained checkpoint (no chat template, not for serving users); "
        "instruct: post-trained for chat/instructions (Instruct, -it, chat, reasoning releases)")
    native_precision: str = Field(default="bf16", description="format the weights are published in")
    reasoning: Literal["always", "switchable"] | None = Field(
        default=None, description="the model thinks (writes a reasoning trace) before its answer: always, or by "
        "default with a per-request switch to turn it off (`reasoning_off` says how); None: it answers directly")
    reasoning_off: str | None = Field(default=None, description="how a client turns thinking off (switchable)")
    thinking_off_kwargs: str | None = Field(
        default=None, description="the chat-template kwargs that turn a switchable model's thinking off (Qwen3, "
        "GLM-4.5: {enable_thinking: false}), as a JSON object: what a server that takes default kwargs is given "
        "when the plan sized the model with thinking off")
    reasoning_parser: ReasoningParsers | None = Field(
        default=None, description="the engine's --reasoning-parser for the model's trace (the server returns the "
        "trace apart from the answer), per engine id: the names differ (vLLM deepseek_r1, SGLang deepseek-r1); a "
        "plain name is vLLM's (the form of older catalog overrides)")
    checkpoints: tuple[Checkpoint, ...] = Field(
        default=(), description="quantized or renamed checkpoints of this architecture"
    )

    num_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    intermediate_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    tie_word_embeddings: bool = False
    max_context: int = Field(ge=1)
    mlp_gated: bool = Field(default=True, description="SwiGLU/GeGLU (3 matrices) vs plain MLP (2)")
    attention_bias: bool = Field(default=False, description="q/k/v projections carry biases")
    sliding_window: int | None = Field(default=None, description="window of the sliding-window layers, tokens")
    num_sliding_window_layers: int = Field(
        default=0, ge=0, description="layers that use the sliding window (rest: full attention)"
    )
    moe: MoE | None = None
    mla: MLA | None = None
    linear_attention: LinearAttention | None = None
    num_mtp_layers: int = Field(default=0, ge=0, description="multi-token-prediction layers shipped with the weights")

    total_params: float = Field(gt=0, description="parameters as published (model card / safetensors), count")
    active_params: float | None = Field(default=None, gt=0, description="parameters used per token (MoE), count")
    config_source: str = Field(description="URL of the config.json the architecture is taken from")

    @field_validator("reasoning_off", "license_excludes")
    @classmethod
    def _printable(cls, v: Any) -> Any:
        return _check_printable(v)

    @field_validator("reasoning_parser", mode="before")
    @classmethod
    def _parser_per_engine(cls, v: Any) -> Any:
        return {"vllm": v} if isinstance(v, str) else v

    @field_validator("thinking_off_kwargs", mode="before")
    @classmethod
    def _thinking_off_kwargs(cls, v: Any) -> Any:
        return _template_kwargs(v)

    @model_validator(mode="after")
    def _sane(self) -> Model:
        if (self.reasoning == "switchable") != (self.reasoning_off is not None):
            raise ValueError("reasoning_off (how a client turns thinking off) goes with reasoning: switchable")
        if self.thinking_off_kwargs is not None and self.reasoning != "switchable":
            raise ValueError("thinking_off_kwargs goes with reasoning: switchable")
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_kv_heads")
        if self.num_sliding_window_layers and not self.sliding_window:
            raise ValueError("num_sliding_window_layers needs sliding_window")
        if self.num_sliding_window_layers > self.num_layers:
            raise ValueError("num_sliding_window_layers exceeds num_layers")
        if self.moe and self.moe.experts_per_token > self.moe.num_experts:
            raise ValueError("moe.experts_per_token exceeds moe.num_experts")
        if self.active_params and self.active_params > self.total_params:
            raise ValueError("active_params exceeds total_params")
        return self


class Checkpoint(_Strict):
    """A published checkpoint of an architecture in another format (…-FP8, …-AWQ, a GGUF repo)."""

    id: str
    precision: str = Field(description="quant format id of the weights")
    kv_precision: str | None = Field(default=None, description="KV format the checkpoint ships scales for")
    keeps_16bit: tuple[Literal[TENSOR_GROUPS], ...] | None = Field(  # type: ignore[valid-type]
        default=None, description="tensor groups this checkpoint leaves in 16 bit (from its quantization_config), "
        "where it differs from the format's default")
    unquantized_layers: tuple[int, ...] = Field(
        default=(), description="decoder layers left entirely in 16 bit (negative: from the end, -1 = last)")
    quant_method: str | None = Field(default=None, description="quantization_config.quant_method (fp8, fbgemm_fp8, "
                                     "compressed-tensors …): engines treat methods differently")
    formats: tuple[str, ...] = Field(default=(), description="other weight formats the same repository holds (a GGUF "
                                     "repository has one file per llama.cpp type)")
    weight_block_size: tuple[BlockSide, BlockSide] | None = Field(default=None, description="block-wise quantization "
                                                      "(quantization_config.weight_block_size, e.g. [128, 128]): a "
                                                      "tensor-parallel split of a layer's output dimension must be a "
                                                      "whole number of blocks (its first element) for the engine to "
                                                      "load it")
    file: str | None = Field(default=None, pattern=r"^[\w.{}+-][\w.{}/+-]{0,199}$",
                             description="GGUF repositories: the file name with {QUANT} for the "
                             "upper-case type (default: the repository name without -GGUF, then -{QUANT}.gguf); "
                             "letters, digits and . _ - + / { } only")
    source: str | None = None

    @field_validator("file")
    @classmethod
    def _file_name(cls, v: str | None) -> str | None:
        if v is not None and ".." in v:
            raise ValueError(f"{v!r}: a file inside the repository, without '..'")
        return v

    @field_validator("id")
    @classmethod
    def _repo_id(cls, v: str) -> str:
        from .ids import id_problem

        why = id_problem(v)
        if why or " " in v:
            raise ValueError(why or f"{v!r} is not a repository id (no spaces)")
        return v


Model.model_rebuild()

# What a variant (variant_of) takes from its base entry: the architecture and its provenance, not its name,
# aliases, checkpoints, release or licence (an Instruct can be licensed differently from its Base).
VARIANT_FIELDS = ("family", "architecture", "organization", "country", "license", "license_class", "license_excludes",
                  "commercial_use",
                  "native_precision", "num_layers", "hidden_size", "num_attention_heads", "num_kv_heads", "head_dim",
                  "intermediate_size", "vocab_size", "tie_word_embeddings", "max_context", "mlp_gated",
                  "attention_bias", "sliding_window", "num_sliding_window_layers", "moe", "mla", "linear_attention",
                  "num_mtp_layers", "total_params", "active_params")


# --------------------------------------------------------------------------------------
# Quantization formats
# --------------------------------------------------------------------------------------


class QualityPoint(_Strict):
    size_class: Literal["small", "medium", "large", "any"] = Field(
        description="small < 10B, medium 10-40B, large > 40B parameters")
    recovery_pct: float = Field(gt=0, le=110)
    metric: str
    source: str
    as_of: Date | None = Field(default=None, description="date of the study the figure comes from")


class GgufMixRule(_Strict):
    """One tensor-type override of a GGUF quantization mix (llama.cpp ``llama_tensor_get_type``).

    Rules are tried in order; the first that matches a tensor wins, the rest of the
    tensors get the format's ``gguf_type``.
    """

    tensor: Literal["token_embd", "output", "attn_q", "attn_k", "attn_v", "attn_output",
                    "ffn_gate", "ffn_up", "ffn_down", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]
    type: str = Field(description="gguf block type id")
    layers: Literal["all", "use_more_bits", "first_eighth"] = Field(
        default="all", description="which layers: all; llama.cpp use_more_bits(i, n) "
        "(i < n/8 or i >= 7n/8 or (i - n/8) % 3 == 2); the first n/8")
    min_gqa: int | None = Field(default=None, description="only when num_attention_heads / num_kv_heads >= this")
    moe: bool | None = Field(default=None, description="only for MoE (true) or dense (false) models")


class QuantFormat(Entry):
    kind: Literal["float", "int", "gguf", "fp4"]
    weight_bits: float | None = Field(
        default=None, gt=0, description="effective bits per quantized weight including scales/zero-points"
    )
    gguf_type: str | None = Field(
        default=None, description="GGUF block type of the bulk of the weights (bits come from that type)"
    )
    gguf_mix: tuple[GgufMixRule, ...] = Field(default=(), description="tensors the mix stores in another GGUF type")
    activation_bits: int = Field(default=16)
    compute_dtype: Literal["bf16", "fp16", "fp8", "int8", "fp4"] = Field(
        description="data type of the matmuls where the hardware runs the format natively"
    )
    fallback_compute_dtype: str | None = Field(
        default=None, description="math type where the chip lacks native support (weight-only dequant)"
    )
    native_families: tuple[str, ...] = Field(
        default=(), description="accelerator families that run compute_dtype natively; empty = all"
    )
    keeps_16bit: tuple[Literal[TENSOR_GROUPS], ...] = Field(  # type: ignore[valid-type]
        default=(), description="tensor groups that stay 16 bit (embedding, lm_head, attention, router, norms …)")
    gguf_equivalent: str | None = Field(
        default=None, description="format id of the GGUF file llama.cpp uses for this format"
    )
    llama_ftype: int | None = Field(default=None, ge=0, description="enum llama_ftype value (GGUF general.file_type)")
    engines: tuple[str, ...] = Field(default=(), description="engines that load the format")
    quality: tuple[QualityPoint, ...] = ()

    @model_validator(mode="after")
    def _bits(self) -> QuantFormat:
        if (self.weight_bits is None) == (self.gguf_type is None):
            raise ValueError("give exactly one of weight_bits or gguf_type")
        return self


# --------------------------------------------------------------------------------------
# Absolute model quality: benchmarks and the published scores of each model
# --------------------------------------------------------------------------------------

TASKS = ("general", "chat", "reasoning", "code")


class Benchmark(Entry):
    """One benchmark as one source runs it (scores from different harnesses are not comparable)."""

    task: Literal["general", "chat", "reasoning", "code"] = Field(
        description="the task this benchmark stands for when a scenario names the task (one bundled benchmark per task)"
    )
    scale: Literal["percent", "rating"] = Field(
        description="percent: accuracy 0-100, quantization recovery multiplies it; rating: a preference rating "
        "(Elo/Bradley-Terry), on which a recovery percentage has no meaning")
    harness: str = Field(description="who ran it and how (harness, shots, metric), so scores are comparable")
    resolution: float = Field(gt=0, description="differences smaller than this are not told apart (about the 95 % "
                              "interval of a difference between two scores; notes say how it was derived)")
    floor: float | None = Field(default=None, description="score of random guessing, where there is one")


class Score(_Strict):
    value: float = Field(description="the published score, on the benchmark's scale")
    source: str = Field(description="URL of the table the score was read from")
    as_of: Date
    precision: str | None = Field(default=None, description="weights the score was measured with, when the source says")
    thinking_off: float | None = Field(default=None, description="the same weights' score with thinking turned off "
                                       "(a switchable model), where the source lists it apart: the planner ranks on "
                                       "it when the workload turns thinking off")
    notes: str | None = None

    @field_validator("source")
    @classmethod
    def _source_non_empty(cls, v: str) -> str:
        if not str(v).strip():
            raise ValueError("source must not be empty")
        return str(v).strip()


class ModelQuality(Entry):
    """Published absolute scores of one catalog model (id = the model's catalog id)."""

    scores: dict[str, Score] = Field(description="benchmark id -> score")

    @model_validator(mode="after")
    def _some(self) -> ModelQuality:
        if not self.scores:
            raise ValueError("a model_quality entry needs at least one score")
        return self


class KvFormat(Entry):
    bits: float = Field(gt=0, description="bits per stored element including scales")
    native_families: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    quality: tuple[QualityPoint, ...] = ()


class GgufType(Entry):
    """A ggml block type: block_size weights stored in type_size bytes."""

    block_size: int = Field(ge=1)
    type_size_bytes: int = Field(ge=1)
    fallback_type: str | None = Field(
        default=None, description="type llama.cpp uses when a row is not a multiple of block_size"
    )
    ggml_type_id: int | None = Field(
        default=None, ge=0, description="enum ggml_type value, as stored in GGUF tensor infos"
    )

    @property
    def bits_per_weight(self) -> float:
        return self.type_size_bytes * 8 / self.block_size


# --------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------


class WeightPadding(_Strict):
    """vLLM on ROCm pads each FP8 weight row by 256 bytes for memory locality (VLLM_ROCM_FP8_PADDING)."""

    bytes_per_row: int = Field(ge=1)
    families: tuple[str, ...] = Field(description="accelerator families where the padding applies")
    quant_methods: tuple[str, ...] = Field(default=("fp8",), description="checkpoint quant methods it applies to "
                                           "(a checkpoint with none recorded counts as the first)")
    row_bytes_multiple: int = Field(
        default=512, ge=1, description="padding only when a row's bytes are a multiple of this"
    )


class EngineMemory(_Strict):
    cap_mode: Literal["fraction_of_total", "fraction_of_free_after_weights", "exact"] = Field(
        description="how the engine sizes its KV pool: fraction_of_total (vLLM gpu_memory_utilization, SGLang "
        "mem_fraction_static: the parts in within_fraction plus the KV pool fill the fraction of total memory); "
        "fraction_of_free_after_weights (TensorRT-LLM kv_cache_free_gpu_memory_fraction: a fraction of what is "
        "free once everything else is loaded); exact (llama.cpp allocates KV for n_ctx and nothing more)")
    within_fraction: tuple[Literal["weights", "activations", "context", "cuda_graphs", "comm_buffers"], ...] = Field(
        default=("weights", "activations", "context", "cuda_graphs", "comm_buffers"),
        description="with fraction_of_total: the parts counted inside the fraction; the others must fit in the rest")
    memory_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="default gpu_memory_utilization / mem_fraction_static / kv_cache_free_gpu_memory_fraction",
    )
    memory_fraction_flag: str | None = None
    block_size_tokens: int = Field(default=1, ge=1, description="KV allocation granularity")
    context_gib: float = Field(
        ge=0, description="CUDA/HIP context and allocator reserve per GPU outside the engine's tensors"
    )
    cuda_graph_gib: float = Field(default=0, ge=0, description="memory CUDA graphs hold per GPU")
    comm_buffer_gib: float = Field(default=0, ge=0, description="NCCL/RCCL buffers per GPU when TP/PP > 1")
    activation_bytes_per_token_model: Literal["mlp_peak", "none"] = "mlp_peak"
    reserves_activations: bool = Field(
        default=True, description="the KV pool is what is left after a profiled activation peak"
    )
    fp8_weight_padding: WeightPadding | None = Field(
        default=None, description="extra bytes per weight row the engine adds to FP8 linear weights on some hardware")
    duplicates_tied_embeddings: bool = Field(
        default=False,
        description="stores a separate lm_head copy even when the "
        "checkpoint ties it to the embedding (TensorRT-LLM share_embedding_table off)",
    )


class DefaultsTier(_Strict):
    """Scheduler defaults an engine picks from the device it starts on (vLLM's
    `get_batch_defaults`, SGLang's `_handle_gpu_memory_settings`). A tier applies when the
    device's reported memory is in [min_memory_gib, max_memory_gib), its name contains none of
    `name_excludes` and the TP size is at least `min_tp`; the first tier that applies wins."""

    min_memory_gib: float = Field(default=0, ge=0, description="device memory as the runtime reports it, GiB")
    max_memory_gib: float | None = Field(default=None, gt=0, description="exclusive upper bound, GiB")
    name_excludes: tuple[str, ...] = Field(default=(), description="device-name substrings that disqualify "
                                           "(vLLM: 'a100'), matched case-insensitively on the catalog id and name")
    families: tuple[str, ...] = Field(default=(), description="only these accelerator families (empty: any)")
    excluded_families: tuple[str, ...] = Field(default=(), description="families the tier never applies to (a "
                                               "platform that does not report its memory to the engine)")
    min_tp: int = Field(default=1, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    cuda_graph_max_bs: int | None = Field(default=None, ge=0)
    memory_fraction: float | None = Field(default=None, gt=0, le=1)


class LongContextRule(_Strict):
    """vLLM V0: a model whose max_model_len exceeds `above_tokens` gets chunked prefill with a
    small chunk; others run whole prompts in one step (`max(max_model_len, floor)` tokens)."""

    above_tokens: int = Field(ge=1)
    max_num_batched_tokens: int = Field(ge=1, description="the chunk when the rule applies")
    unchunked_floor_tokens: int = Field(ge=1, description="otherwise max_num_batched_tokens = max(max_model_len, this)")


class ReservedMemoryRule(_Strict):
    """SGLang ≥ 0.5 sizes mem_fraction_static from what it reserves, in MiB:
    ``base + max(chunk, min_chunk) × per_chunk_token + cuda_graph_max_bs × per_graph_seq +
    tp × pp × per_rank``, at least `floor_mib` on devices above `floor_above_gib`; fraction =
    round((memory − reserved) / memory, 3)."""

    base_mib: float = Field(ge=0)
    min_chunk_tokens: int = Field(ge=0)
    per_chunk_token_mib: float = Field(ge=0)
    per_graph_seq_mib: float = Field(ge=0)
    per_rank_mib: float = Field(ge=0)
    floor_mib: float = Field(default=0, ge=0)
    floor_above_gib: float = Field(default=0, ge=0)


class EngineDefaults(_Strict):
    max_num_seqs: int = Field(ge=1)
    max_num_batched_tokens: int = Field(ge=1)
    max_num_seqs_flag: str | None = None
    max_num_batched_tokens_flag: str | None = None
    chunked_prefill: bool = Field(default=True, description="prefills are split into chunks of max_num_batched_tokens; "
                                  "without it a whole prompt up to the context length is one step, so "
                                  "max_num_batched_tokens is at least the context length")
    cuda_graph_max_bs: int | None = Field(default=None, ge=0, description="largest decode batch captured in a CUDA "
                                          "graph (larger batches run eagerly)")
    tiers: tuple[DefaultsTier, ...] = Field(default=(), description="device-dependent defaults, resolved per "
                                            "accelerator (see DefaultsTier)")
    long_context: LongContextRule | None = None
    reserved_memory: ReservedMemoryRule | None = None


class EngineExecution(_Strict):
    """How the engine runs a model by default (what a user gets without extra flags)."""

    moe_parallel: Literal["tp", "ep"] = Field(default="tp", description="routed experts split across the TP group "
                                              "(each GPU a slice of every expert) or whole experts per GPU")
    dp_attention: bool = Field(default=False, description="attention data-parallel across the TP group (SGLang "
                               "--enable-dp-attention): each GPU runs all heads for its share of the sequences and "
                               "holds only their KV cache")
    dp_attention_option: str | None = Field(default=None, description="the flag that enables DP attention, if any")
    dp_attention_mla_only: bool = Field(default=False, description="DP attention only for multi-head latent attention "
                                        "(DeepSeek-style) models (SGLang 0.4.0-0.4.5)")
    mla_kv_replicated: bool = Field(default=True, description="MLA's latent KV cache is stored whole on every TP rank")
    custom_allreduce: tuple[str, ...] = Field(default=(), description="interconnect kinds on which the engine uses "
                                              "its own one-shot all-reduce for small messages instead of NCCL")
    custom_allreduce_max_gpus_pcie: int = Field(default=0, ge=0, description="largest TP group the custom all-reduce "
                                                "serves on PCIe (vLLM: 2)")
    mixes_unchunked_prefill: bool = Field(default=True, description="without chunked prefill, a whole prompt still "
                                          "shares its step with running decodes (TensorRT-LLM in-flight batching); "
                                          "false: prompts run in steps of their own and decodes wait (vLLM V0)")
    speculative: str | None = Field(default=None, description="speculative decoding on by default (none: off)")
    kv_admission: Literal["on_demand", "reserve"] = Field(
        default="on_demand", description="how the scheduler takes KV blocks: on_demand, as a sequence grows (a "
        "sequence holds its prompt and half its answer on average; preempted when the cache fills, vLLM, SGLang); "
        "reserve, for the whole prompt and answer at admission, so that a started request is never evicted "
        "(TensorRT-LLM's default GUARANTEED_NO_EVICT)")
    flash_attention: bool = Field(default=True, description="attention runs as one fused kernel (FlashAttention-"
                                  "class: the scores stay on chip); false: the scores go through memory, "
                                  "the entry's unfused_attention_bytes each (llama.cpp before flash attention was "
                                  "its default)")


class EngineProfile(Provenance):
    """An engine version whose defaults differ from the newest (the entry's own fields).

    Selected by `engine@version` (e.g. ``vllm@0.6``), a request's ``engine_version``, or a
    benchmark row's version; versions compare numerically, a profile covering
    ``[from_version, until_version)``. `released` lets a date select it."""

    version: str = Field(description="label users type after '@', e.g. '0.6'")
    from_version: str = Field(description="first version the profile describes (inclusive); build numbers for "
                              "llama.cpp")
    until_version: str | None = Field(default=None, description="first version it no longer describes (exclusive)")
    released: Date | None = Field(default=None, description="release date of from_version")
    until_released: Date | None = Field(default=None, description="date the next profile's version was released: "
                                        "a benchmark dated before it (and after `released`) selects this profile")
    name: str | None = None
    defaults: EngineDefaults
    memory: dict[str, object] = Field(default_factory=dict, description="EngineMemory fields that differ")
    execution: EngineExecution | None = None
    formats: tuple[str, ...] | None = None
    kernels: tuple[str, ...] | None = Field(default=None, description="weight-only kernel ids (kernels catalog) this "
                                            "version uses; default the entry's")


class Engine(Entry):
    kind: Literal["gpu-server", "local"]
    parallelism: tuple[Literal["tp", "pp", "ep", "layer_split"], ...]
    offline_capable: bool = True
    accelerators: tuple[str, ...] = Field(default=(), description="accelerator families it runs on; empty = any")
    not_on: tuple[str, ...] = Field(default=(), description="accelerator families it has no backend for, where "
                                    "`accelerators` is empty (llama.cpp: no Intel Gaudi backend)")
    formats: tuple[str, ...] = Field(default=(), description="weight formats it loads; empty = any")
    family_formats: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="accelerator family -> the formats it loads there, where fewer than "
        "`formats` (a backend plugin with its own quantization support, e.g. vLLM Ascend)")
    memory: EngineMemory
    defaults: EngineDefaults
    version: str | None = Field(default=None, description="engine version the defaults describe")
    from_version: str | None = Field(default=None, description="first version the entry's own defaults describe; "
                                     "older versions are in `profiles`")
    released: Date | None = None
    execution: EngineExecution = Field(default_factory=EngineExecution)
    unfused_attention_bytes: float | None = Field(default=None, ge=0, le=64, description="bytes each attention score "
                                                  "(one query, one key, one head) moves through memory when "
                                                  "attention is not fused (execution.flash_attention false, by "
                                                  "default or as a benchmark ran): written, read back by the "
                                                  "softmax, read by the value product")
    kernels: tuple[str, ...] = Field(default=(), description="weight-only GEMM kernels (kernels catalog) it uses")
    benchmark_tool: str | None = Field(default=None, description="the engine's own benchmark command, as a "
                                       "benchmark row's notes name it (trtllm-bench)")
    benchmark_kv_precision: dict[str, str] = Field(
        default_factory=dict, description="weight format -> the KV-cache format `benchmark_tool` runs it with "
        "where the row names none (trtllm-bench: FP8 for FP8 and NVFP4 weights)")
    profiles: tuple[EngineProfile, ...] = Field(default=(), description="older versions with other defaults")
    plugin_of: str | None = Field(default=None, description="the engine this entry is a hardware plugin of (vLLM "
                                  "on Gaudi: vllm-gaudi): a scenario naming that engine gets this one on its "
                                  "accelerators")
    default_host: str | None = Field(default=None, description="the address its server binds without `host_flag` "
                                     "(127.0.0.1 or localhost: reachable from this machine only)")
    host_flag: str | None = None
    reasoning_parser_flag: str | None = Field(default=None, pattern=r"^--[a-z][a-z0-9_-]{0,63}$", description="the "
                                              "option that names the model's reasoning parser (the model's "
                                              "`reasoning_parser` under this engine's id gives the name)")
    template_kwargs_flag: str | None = Field(default=None, pattern=r"^--[a-z][a-z0-9_-]{0,63}$", description="the "
                                             "option whose JSON object is every request's default chat-template "
                                             "kwargs (a request's own override them): given a switchable model's "
                                             "`thinking_off_kwargs`, it turns thinking off server-side")
    thinking_off_args: tuple[ServeArg, ...] = Field(default=(), max_length=8, description="arguments that turn a "
                                                    "switchable model's thinking off server-side whatever its "
                                                    "template kwargs (llama-server: --jinja --reasoning-budget 0); "
                                                    "they come before `template_kwargs_flag`")
    api_key_flag: str | None = Field(default=None, pattern=r"^--[a-z][a-z0-9_-]{0,63}$", description="the option that "
                                     "makes its OpenAI-compatible server require a key (clients send it as a Bearer "
                                     "token); None: it has none, and the serve line says to keep it on a private "
                                     "network behind an authenticating proxy")
    api_key_note: str | None = Field(default=None, description="what the key leaves open, said in the serve line's "
                                     "comment (vLLM checks it on some path prefixes only)")

    @field_validator("api_key_note")
    @classmethod
    def _printable(cls, v: Any) -> Any:
        return _check_printable(v)

    @model_validator(mode="after")
    def _unfused_bytes(self) -> Engine:
        unfused = not self.execution.flash_attention or any(
            p.execution is not None and not p.execution.flash_attention for p in self.profiles)
        if unfused and self.unfused_attention_bytes is None:
            raise ValueError("execution.flash_attention is false (here or in a profile): give unfused_attention_bytes, "
                             "the bytes each attention score moves through memory")
        return self

    def runs_on(self, family: str) -> bool:
        """Whether it has a backend for accelerator `family`."""
        return (not self.accelerators or family in self.accelerators) and family not in self.not_on

    def loads_on(self, fmt: str, family: str) -> bool:
        """Whether it loads weight format `fmt` on accelerator `family`, as far as `family_formats` limits it
        (the engine-wide `formats` list is checked where the format is chosen)."""
        there = self.family_formats.get(family)
        return there is None or fmt in there


# --------------------------------------------------------------------------------------
# Measured collectives and kernels (facts the physics uses instead of fitted constants)
# --------------------------------------------------------------------------------------


class Collective(Entry):
    """A published all-reduce measurement on one scale-up fabric: a small-message time and a
    large-message bus bandwidth (nccl-tests' busbw = algbw × 2 (n − 1) / n), for `gpus` GPUs.
    One all-reduce of S bytes costs ``latency + S × 2 (n − 1) / n / busbw``."""

    interconnect: str = Field(description="Interconnect.kind it was measured on (nvlink4, pcie4 …)")
    library: Literal["nccl", "rccl", "hccl", "custom"] = Field(
        description="nccl/rccl/hccl, or an engine's own one-shot all-reduce (custom)")
    gpus: int = Field(ge=2)
    link_gb_s: float = Field(gt=0, description="scale-up bandwidth per GPU and direction of the measured platform; "
                             "another platform of the same fabric gets busbw scaled by its own link")
    accelerator_kinds: tuple[str, ...] = Field(default=(), description="Accelerator.kind values it applies to "
                                               "(PCIe: GeForce cards have no peer-to-peer); empty = any")
    measured_on: str = Field(description="the hardware of the measurement")
    latency_us: float = Field(gt=0, description="time of one small all-reduce, microseconds")
    latency_bytes: float = Field(gt=0, description="message size of that time, bytes")
    per_hop_us: float | None = Field(
        default=None,
        ge=0,
        description="added latency per extra ring hop, from two "
        "measurements at different GPU counts (latency(n) = latency + per_hop × (n − gpus))",
    )
    bus_bandwidth_gb_s: float = Field(gt=0, description="large-message bus bandwidth, 10**9 B/s")
    bandwidth_bytes: float = Field(gt=0, description="message size of that bandwidth, bytes")
    estimate: bool = Field(default=False, description="not a measurement on this fabric: derived, with its range")
    low_factor: float | None = Field(default=None, gt=0, description="estimates: low end of the cost / this cost")
    high_factor: float | None = Field(default=None, gt=0, description="estimates: high end of the cost / this cost")
    basis: str | None = Field(default=None, description="estimates: how the numbers were derived")

    @model_validator(mode="after")
    def _estimate_has_range(self) -> Collective:
        if self.estimate and (self.low_factor is None or self.high_factor is None or not self.basis):
            raise ValueError("an estimate needs low_factor, high_factor and basis")
        return self


class WeightOnlyKernel(Entry):
    """A GEMM kernel for weights stored narrower than the math (AWQ/GPTQ via Marlin/Machete,
    llama.cpp's quantized matmuls): its large-batch (compute-bound) throughput relative to the
    16-bit GEMM on the same chip. Memory-bound decode reads the narrow weights at the 16-bit
    kernels' bandwidth efficiency (Marlin: close to the ideal 3.87× at batch 16–32)."""

    engines: tuple[str, ...] = Field(default=(), description="engine ids that use it; empty = any engine (a fallback)")
    formats: tuple[str, ...] = Field(default=(), description="weight format ids; empty = every weight-only format")
    format_kinds: tuple[str, ...] = Field(default=(), description="QuantFormat.kind values (gguf) instead of ids")
    families: tuple[str, ...] = Field(default=(), description="accelerator families; empty = any")
    prefill_compute_ratio: float = Field(gt=0, le=1, description="compute-bound throughput / 16-bit GEMM throughput")
    estimate: bool = Field(default=False, description="not measured for this kernel: derived, with its range")
    low: float | None = Field(default=None, gt=0, description="estimates: low end of the ratio")
    high: float | None = Field(default=None, gt=0, description="estimates: high end of the ratio")
    basis: str | None = Field(default=None, description="estimates: how the ratio was derived")
    stands_in_for_math: bool = Field(default=False, description="the engine loads these formats on these families, "
                                     "whose chips lack the format's math, by running them weight-only with this kernel "
                                     "(FP8 checkpoints on Ampere via FP8 Marlin)")
    dense_only: bool = Field(default=False, description="the kernel does not run MoE expert layers (the engine's fused "
                             "MoE kernel has no such path): MoE models are not served this way")

    @model_validator(mode="after")
    def _estimate_has_range(self) -> WeightOnlyKernel:
        if self.estimate and (self.low is None or self.high is None or not self.basis):
            raise ValueError("an estimate needs low, high and basis")
        return self


# --------------------------------------------------------------------------------------
# Calibration (written by `llmplan calibrate`, not by hand)
# --------------------------------------------------------------------------------------


class Calibration(Entry):
    """Efficiency factors of one engine × hardware family × architecture class, fitted to
    measurements.

    ``engine``, ``family`` or ``arch`` is ``*`` for a pooled fit (used where no closer one
    exists). All-reduce costs come from the collectives catalog and weight-only GEMM rates
    from the kernels catalog, so neither is fitted.
    """

    engine: str
    family: str
    arch: str = Field(default="*", description="dense, moe, mla (DeepSeek-style latent attention, MoE) or *")
    eta_bw: float = Field(gt=0, le=1, description="achieved / peak memory bandwidth")
    eta_flops: float = Field(gt=0, le=1, description="achieved / peak FLOP/s")
    step_overhead_s: float = Field(ge=0, description="per engine step")
    request_overhead_s: float = Field(ge=0, description="per request before its first token")
    eta_moe: float = Field(default=1.0, gt=0, le=1, description="routed-expert kernels relative to dense ones "
                           "(grouped GEMMs, routing); files written before it existed mean 1")
    eta_kernel: float = Field(default=1.0, gt=0, le=10, description="weight-only GEMM kernels' achieved compute rate "
                              "relative to their catalog ratio (fitted per engine; 1 in pooled and family fits)")
    activation_passes: float = Field(default=0.0, ge=0, le=1000, description="hidden-size 16-bit vectors each token "
                                     "reads or writes per layer in the kernels between the GEMMs (norms, residual "
                                     "adds, activation functions); files written before it existed mean 0")
    eta_bw_dequant: float | None = Field(default=None, gt=0, le=1, description="obsolete (files written before "
                                         "weight-only kernels were catalogued); read but not used")
    eta_flops_dequant: float | None = Field(default=None, gt=0, le=1, description="obsolete; read but not used")
    collective_latency_s: float | None = Field(default=None, ge=0, description="obsolete (all-reduce costs are "
                                               "measured figures of the collectives catalog); read but not used")
    n_rows: int = Field(ge=0, description="measurements fitted")
    groups: tuple[str, ...] = Field(default=(), description="source groups of those measurements")
    engine_rows: dict[str, int] = Field(default_factory=dict, description="those measurements per engine (a "
                                        "fallback level says which engines it was fitted on); files written "
                                        "before it existed leave it empty")
    log_error_p10: float = Field(description="10th percentile of ln(measured / predicted)")
    log_error_p90: float = Field(description="90th percentile of ln(measured / predicted)")
    mdape_pct: float = Field(ge=0, description="median absolute percentage error of the fit")
    interval_scale: float | None = Field(default=None, gt=0, description="factor the residual band is "
                                         "scaled by for the 80 % interval, fitted on sources held out of the fit "
                                         "(perf/intervals.py); files written before it existed use a hand-set one")


# --------------------------------------------------------------------------------------
# Workload presets and 24-hour profiles
# --------------------------------------------------------------------------------------


_TTFT = ("time to the first token (ms) at p{}: from sending the request to the first token the model writes; "
         "for a model that thinks, the first token of its reasoning trace (see answer_start_p{}_ms)")
_ANSWER_START = ("time to the answer (ms) at p{}: from sending the request to the first token of the answer, "
                 "after the thinking; for a model that does not think under the workload it equals the TTFT. "
                 "Hold a reasoning model to it where users wait for the answer (the interface hides the thinking)")
_TPOT = "time per output token (ms) at p{}: the decode time after the first token over the tokens after it"
_E2E = "end-to-end time (ms) at p{}: from sending the request to its last token"


class Slo(_Strict):
    """Latency limits (milliseconds) at p50/p95/p99, and the share of requests that must meet all."""

    ttft_p50_ms: float | None = Field(default=None, gt=0, description=_TTFT.format(50, 50))
    ttft_p95_ms: float | None = Field(default=None, gt=0, description=_TTFT.format(95, 95))
    ttft_p99_ms: float | None = Field(default=None, gt=0, description=_TTFT.format(99, 99))
    answer_start_p50_ms: float | None = Field(default=None, gt=0, description=_ANSWER_START.format(50))
    answer_start_p95_ms: float | None = Field(default=None, gt=0, description=_ANSWER_START.format(95))
    answer_start_p99_ms: float | None = Field(default=None, gt=0, description=_ANSWER_START.format(99))
    tpot_p50_ms: float | None = Field(default=None, gt=0, description=_TPOT.format(50))
    tpot_p95_ms: float | None = Field(default=None, gt=0, description=_TPOT.format(95))
    tpot_p99_ms: float | None = Field(default=None, gt=0, description=_TPOT.format(99))
    e2e_p50_ms: float | None = Field(default=None, gt=0, description=_E2E.format(50))
    e2e_p95_ms: float | None = Field(default=None, gt=0, description=_E2E.format(95))
    e2e_p99_ms: float | None = Field(default=None, gt=0, description=_E2E.format(99))
    goodput_pct: float = Field(default=95.0, gt=0, le=100, description="requests meeting every per-request limit")


class WorkloadPreset(Entry):
    """A named workload (lengths, SLOs, daily profile) or a 24-hour profile (hourly_weights only)."""

    input_mean: float | None = Field(default=None, gt=0)
    input_p95: float | None = Field(default=None, gt=0)
    output_mean: float | None = Field(default=None, gt=0)
    output_p95: float | None = Field(default=None, gt=0)
    input_max: float | None = Field(default=None, gt=0)  # longest prompt a dataset's benchmark sampler keeps
    output_max: float | None = Field(default=None, gt=0)
    shared_prefix_share: float = Field(default=0.0, ge=0, lt=1)
    slo: Slo | None = None
    profile: str | None = None
    hourly_weights: tuple[float, ...] | None = None
    days_per_year: float | None = Field(default=None, ge=1, le=366, description="days a year a profile's day "
                                        "runs (weekdays less public holidays for office hours); the rest carry no load")

    @model_validator(mode="after")
    def _shape(self) -> WorkloadPreset:
        if self.hourly_weights is not None:
            if len(self.hourly_weights) != 24 or min(self.hourly_weights) < 0 or sum(self.hourly_weights) <= 0:
                raise ValueError("hourly_weights needs 24 non-negative numbers, not all zero")
            if self.days_per_year is None:
                raise ValueError("a 24-hour profile needs days_per_year (365 for every day, ~250 for working days)")
        elif self.days_per_year is not None:
            raise ValueError("days_per_year belongs to a 24-hour profile (hourly_weights), not to a workload")
        elif self.input_mean is None or self.output_mean is None:
            raise ValueError("a workload preset needs input_mean and output_mean (or hourly_weights for a profile)")
        for mean, p95, name in ((self.input_mean, self.input_p95, "input"), (self.output_mean, self.output_p95,
                                                                               "output")):
            if mean is not None and p95 is not None and p95 < mean:
                raise ValueError(f"{name}_p95 is below {name}_mean")
        return self


# --------------------------------------------------------------------------------------
# Economics: cloud GPU offers, API prices, regions, cost assumptions
# --------------------------------------------------------------------------------------


class CloudOffer(Entry):
    """A rentable GPU instance type in one region, priced per GPU-hour."""

    provider: str
    provider_country: str = Field(description="ISO code of the provider's legal home (its jurisdiction)")
    region: str = Field(description="provider's region name, e.g. eu-central-1")
    region_country: str = Field(description="ISO code of the country the region's data centres are in")
    sovereign: bool = Field(default=False, description="offered as a sovereign cloud (operated under local "
                            "jurisdiction, e.g. EU-owned operator or a dedicated sovereign region)")
    accelerator: str = Field(description="accelerator catalog id")
    gpus_per_instance: int = Field(ge=1)
    instance_type: str | None = None
    usd_per_gpu_hour_on_demand: float | None = Field(default=None, gt=0)
    usd_per_gpu_hour_1y: float | None = Field(default=None, gt=0, description="1-year commitment, paid used or not")
    usd_per_gpu_hour_3y: float | None = Field(default=None, gt=0, description="3-year commitment, paid used or not")
    usd_per_gpu_hour_spot: float | None = Field(default=None, gt=0, description="interruptible")

    @model_validator(mode="after")
    def _some_price(self) -> CloudOffer:
        if not any((self.usd_per_gpu_hour_on_demand, self.usd_per_gpu_hour_1y, self.usd_per_gpu_hour_3y,
                    self.usd_per_gpu_hour_spot)):
            raise ValueError("an offer needs at least one price")
        return self


class NativePrice(_Strict):
    """A price list in the provider's own currency and the dated, sourced rate it was converted at."""

    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code the provider bills in, e.g. EUR")
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    usd_per_currency_unit: float = Field(gt=0, description="exchange rate used for the *_usd_per_mtok fields")
    rate_source: str = Field(min_length=1, description="where the exchange rate comes from")
    rate_as_of: Date


class ApiPrice(Entry):
    """A per-token API: prices per million tokens (USD; a non-USD price list is kept in `native`)."""

    provider: str
    provider_country: str = Field(description="ISO code of the provider's legal home")
    model: str = Field(description="the provider's model name")
    catalog_model: str | None = Field(default=None, description="catalog model id when it serves open weights")
    weights: Literal["open", "closed"]
    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    cached_input_usd_per_mtok: float | None = Field(default=None, ge=0)
    data_regions: tuple[str, ...] = Field(default=("global",), description="where requests may be processed: "
                                          "ISO codes, 'EU', 'US' or 'global' (no guarantee)")
    regional_multiplier: float = Field(default=1.0, ge=1, description="price multiplier of this regional offering")
    native: NativePrice | None = Field(default=None, description="the provider's price in its own currency; the USD "
                                       "fields must equal it times usd_per_currency_unit")

    @model_validator(mode="after")
    def _converted(self) -> ApiPrice:
        n = self.native
        if n is None:
            return self
        pairs = [("input", n.input_per_mtok, self.input_usd_per_mtok),
                 ("output", n.output_per_mtok, self.output_usd_per_mtok)]
        if n.cached_input_per_mtok is not None:
            pairs.append(("cached_input", n.cached_input_per_mtok, self.cached_input_usd_per_mtok or 0.0))
        for name, native, usd in pairs:
            if abs(native * n.usd_per_currency_unit - usd) > 0.0005 + 1e-3 * usd:
                raise ValueError(f"{name}_usd_per_mtok ({usd}) is not native.{name}_per_mtok ({native} {n.currency}) "
                                 f"x usd_per_currency_unit ({n.usd_per_currency_unit})")
        return self


class Provider(Entry):
    """A cloud or API provider: its jurisdiction and where its regions are (used by `catalog import-prices`)."""

    country: str = Field(description="ISO code of the provider's legal home (its jurisdiction)")
    sovereign: bool = Field(default=False, description="offers its cloud as sovereign (see CloudOffer.sovereign)")
    gpuhunt_names: tuple[str, ...] = Field(default=(), description="provider names in dstackai/gpuhunt (file stem)")
    litellm_names: tuple[str, ...] = Field(default=(), description="litellm_provider values in BerriAI/litellm")
    first_party: bool = Field(default=False, description="sells API access to its own (closed) models")
    data_regions: tuple[str, ...] = Field(default=("global",), description="where its API processes requests")
    locations: dict[str, str] = Field(default_factory=dict, description="region/location name -> ISO country; a key "
                                      "ending in '*' matches every location with that prefix")

    def country_of(self, location: str) -> str | None:
        loc = location.strip().lower()
        exact = {k.lower(): v for k, v in self.locations.items() if not k.endswith("*")}
        if loc in exact:
            return exact[loc]
        prefixes = sorted((k[:-1].lower() for k in self.locations if k.endswith("*")), key=len, reverse=True)
        for pre in prefixes:
            if loc.startswith(pre):
                return next(v for k, v in self.locations.items() if k.lower() == pre + "*")
        return None


class Region(Entry):
    """Where on-premise hardware runs: energy price, grid carbon, facilities, currency."""

    country: str = Field(description="ISO code")
    electricity_usd_per_kwh: float = Field(gt=0)
    electricity_estimate: bool = Field(default=False, description="no published price for this band: the figure is "
                                       "derived from comparable sourced figures (electricity_basis says how), with "
                                       "its plausible range in electricity_low/high_usd_per_kwh")
    electricity_low_usd_per_kwh: float | None = Field(
        default=None, gt=0, description="low end of the range (estimates)"
    )
    electricity_high_usd_per_kwh: float | None = Field(
        default=None, gt=0, description="high end of the range (estimates)"
    )
    electricity_basis: str | None = Field(default=None, description="how the estimate and its range were derived, "
                                          "from which sourced figures")
    carbon_g_per_kwh: float = Field(ge=0)
    pue: float = Field(ge=1, le=3, description="typical power usage effectiveness")
    colocation_usd_per_kw_month: float | None = Field(default=None, ge=0)
    currency: str = Field(default="USD")
    usd_per_currency_unit: float = Field(default=1.0, gt=0, description="exchange rate used for display")

    @model_validator(mode="after")
    def _electricity_range(self) -> Region:
        lo, hi = self.electricity_low_usd_per_kwh, self.electricity_high_usd_per_kwh
        if self.electricity_estimate and (lo is None or hi is None or not self.electricity_basis):
            raise ValueError("an estimated electricity price needs electricity_low_usd_per_kwh, "
                             "electricity_high_usd_per_kwh and an electricity_basis saying how it was derived")
        if not self.electricity_estimate and (lo is not None or hi is not None or self.electricity_basis):
            raise ValueError("electricity_low/high_usd_per_kwh and electricity_basis describe an estimate: "
                             "set electricity_estimate: true")
        if lo is not None and hi is not None and not lo <= self.electricity_usd_per_kwh <= hi:
            raise ValueError("electricity_usd_per_kwh must lie within "
                             "[electricity_low_usd_per_kwh, electricity_high_usd_per_kwh]")
        return self


class CostAssumption(Entry):
    """A default cost input with its plausible range (used by the Monte Carlo and the tornado)."""

    value: float
    low: float
    high: float
    unit: str

    @model_validator(mode="after")
    def _range(self) -> CostAssumption:
        if not self.low <= self.value <= self.high:
            raise ValueError("value must lie within [low, high]")
        return self


# --------------------------------------------------------------------------------------
# Policy: country groups and policy presets
# --------------------------------------------------------------------------------------


class CountryGroup(Entry):
    """A named set of countries a policy may refer to (EU, EEA …)."""

    members: tuple[str, ...] = Field(description="ISO 3166 alpha-2 codes")


class PolicyPreset(Entry):
    """A ready-made sovereignty / compliance policy; `policy` holds Policy fields."""

    policy: dict[str, object]
    reasoning: str


KIND_MODELS: dict[str, type[Entry]] = {
    "accelerators": Accelerator,
    "servers": Server,
    "models": Model,
    "quant_formats": QuantFormat,
    "benchmarks": Benchmark,
    "model_quality": ModelQuality,
    "kv_formats": KvFormat,
    "gguf_types": GgufType,
    "engines": Engine,
    "calibrations": Calibration,
    "collectives": Collective,
    "kernels": WeightOnlyKernel,
    "workload_presets": WorkloadPreset,
    "cloud_offers": CloudOffer,
    "api_prices": ApiPrice,
    "regions": Region,
    "providers": Provider,
    "cost_assumptions": CostAssumption,
    "software_licences": SoftwareLicence,
    "resale_curves": ResaleCurve,
    "country_groups": CountryGroup,
    "policy_presets": PolicyPreset,
}
