"""Typed requests at the boundary of the Python API, and their resolution against the
catalog into a concrete :class:`Deployment` (model, accelerator, formats, engine, layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from .catalog import Catalog
from .catalog.schema import Accelerator, Engine, KvFormat, Model, QuantFormat
from .errors import LayoutError, LlmplanError
from .strict import StrictModel

MAX_GPUS = 100_000
# smallest meaningful values: below them a rate, a day or a horizon underflows to zero in a division
MIN_RATE_PER_S = 1e-6  # one request in 11.6 days
MIN_REQUESTS_PER_DAY = 1e-3
MIN_YEARS = 1 / 12  # a month
NAME_MAX_CHARS = 200  # a catalog id, alias, country or vendor
PATH_MAX_CHARS = 4096  # a local file (PATH_MAX on Linux)
Name = Annotated[str, StringConstraints(max_length=NAME_MAX_CHARS)]
NameOrPath = Annotated[str, StringConstraints(max_length=PATH_MAX_CHARS)]
MAX_TOKENS = 100_000_000


class FitRequest(StrictModel):
    """What `llmplan fit` is asked. Names are catalog ids or aliases."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "llama-3.1-70b", "gpu": "h100-sxm", "num_gpus": 2, "precision": "fp8", "context_tokens": 8192,
         "concurrency": 16}]})

    model: NameOrPath = Field(description="catalog id/alias, or a path to config.json, a model directory or a .gguf file")
    gpu: Name = Field(description="accelerator id or alias")
    num_gpus: int | None = Field(default=None, ge=1, le=MAX_GPUS, description="GPUs of one replica (default tp × pp)")
    tp: int | None = Field(default=None, ge=1, le=MAX_GPUS, description="tensor-parallel size")
    pp: int | None = Field(default=None, ge=1, le=MAX_GPUS, description="pipeline-parallel size (llama.cpp: layer split)")
    ep: int | None = Field(default=None, ge=1, le=MAX_GPUS, description="expert-parallel size (1 or tp)")
    precision: Name | None = Field(default=None, description="weight format (default: the checkpoint's or the model's native format)")
    kv_precision: Name | None = Field(default=None, description="KV-cache format (default: the checkpoint's, else 16 bit)")
    context_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS,
                                       description="tokens per sequence (input + output); default the model's max context")
    concurrency: int = Field(default=1, ge=1, le=MAX_TOKENS, description="sequences held at once at that context")
    engine: Name = Field(default="vllm", description="serving engine id")
    gpu_memory_utilization: float | None = Field(default=None, ge=0.01, le=1,
                                                 description="override the engine's memory fraction")
    max_num_batched_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS,
                                               description="largest prefill chunk (activation peak)")
    max_num_seqs: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    block_size: int | None = Field(default=None, ge=1, le=4096, description="KV block size in tokens")


@dataclass(frozen=True)
class Layout:
    num_gpus: int
    tp: int
    pp: int
    ep: int


@dataclass(frozen=True)
class Deployment:
    """A request resolved against the catalog."""

    model: Model
    accelerator: Accelerator
    weight_format: QuantFormat
    kv_format: KvFormat
    engine: Engine
    layout: Layout
    keeps_16bit: tuple[str, ...] | None  # checkpoint override of the format's 16-bit groups
    model_source: str  # catalog id or the file it was imported from
    usable_memory_gib: float  # memory the runtime sees on one device
    usable_memory_basis: str  # where that number comes from
    link_gb_s: float = 0.0  # scale-up link bandwidth per GPU per direction (0 when a single device)
    link_basis: str = "catalog"
    unquantized_layers: tuple[int, ...] = ()  # checkpoint layers kept whole in 16 bit
    quant_method: str | None = None  # the checkpoint's quantization_config.quant_method


def resolve_layout(req: FitRequest, model: Model, acc: Accelerator, engine: Engine) -> Layout:
    """Fill in TP/PP/EP from what the user gave, and reject impossible layouts."""
    splits_layers_only = "tp" not in engine.parallelism
    tp, pp, n = req.tp, req.pp, req.num_gpus
    if splits_layers_only:
        if tp not in (None, 1):
            raise LayoutError(
                f"{engine.id} has no tensor parallelism (it splits layers across GPUs); "
                f"use --num-gpus {req.num_gpus or tp} or --pp {tp} instead of --tp {tp}")
        tp = 1
        pp = pp or n or 1
    elif tp is None and pp is None:
        n = n or 1
        domain = max(acc.max_per_server or 1, acc.interconnect.domain_size or 1)
        tp = _default_tp(n, domain, model)
        pp = n // tp
    elif tp is None:
        assert pp is not None
        tp = (n // pp) if n else 1
        if n and n % pp:
            raise LayoutError(f"--num-gpus {n} is not a multiple of --pp {pp}")
    elif pp is None:
        pp = (n // tp) if n else 1
        if n and n % tp:
            raise LayoutError(f"--num-gpus {n} is not a multiple of --tp {tp}")
    if n is not None and n != tp * pp:
        raise LayoutError(f"--num-gpus {n} does not equal --tp {tp} × --pp {pp} = {tp * pp}")
    n = tp * pp
    _check_tp(tp, model, acc)
    if pp > model.num_layers:
        raise LayoutError(f"--pp {pp} exceeds the {model.num_layers} layers of {model.id}")
    ep = req.ep or 1
    if ep > 1:
        if model.moe is None:
            raise LayoutError(f"--ep {ep} needs a mixture-of-experts model; {model.id} is dense")
        if ep != tp:
            raise LayoutError(f"--ep must be 1 or equal to --tp ({tp}): experts are spread over the TP group")
        if model.moe.num_experts % ep:
            raise LayoutError(f"--ep {ep} does not divide the {model.moe.num_experts} experts of {model.id}")
        if "ep" not in engine.parallelism:
            raise LayoutError(f"{engine.id} has no expert parallelism")
    return Layout(n, tp, pp, ep)


def _default_tp(n: int, domain: int, model: Model) -> int:
    """The largest TP that divides the GPUs, fits one scale-up domain and suits the heads;
    the remaining factor becomes pipeline stages."""
    for t in range(min(n, domain), 0, -1):
        heads_ok = model.num_attention_heads % t == 0 and (
            model.mla is not None or model.num_kv_heads % t == 0 or t % model.num_kv_heads == 0)
        if n % t == 0 and heads_ok:
            return t
    return 1


def _check_tp(tp: int, model: Model, acc: Accelerator) -> None:
    if tp == 1:
        return
    if model.num_attention_heads % tp:
        raise LayoutError(
            f"--tp {tp} does not divide the {model.num_attention_heads} attention heads of {model.id}; "
            f"use one of {_divisors(model.num_attention_heads)}")
    if not model.mla and model.num_kv_heads % tp and tp % model.num_kv_heads:
        raise LayoutError(f"--tp {tp} and the {model.num_kv_heads} KV heads of {model.id} do not divide each other")
    domain = max(acc.max_per_server or 1, acc.interconnect.domain_size or 1)
    if tp > domain:
        raise LayoutError(
            f"--tp {tp} spans more GPUs than one {acc.id} server holds ({domain}); "
            f"keep tensor parallelism inside a server and add pipeline stages (e.g. --tp {domain} --pp {-(-tp // domain)})")


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, min(n, 64) + 1) if n % d == 0)


def default_precision(model: Model, checkpoint_precision: str | None) -> str:
    return checkpoint_precision or model.native_precision


def resolve(req: FitRequest, cat: Catalog, model: Model | None = None, checkpoint_precision: str | None = None,
            checkpoint_kv: str | None = None, keeps: tuple[str, ...] | None = None,
            model_source: str | None = None) -> Deployment:
    """Resolve names against the catalog. `model` is given when it was imported from a file."""
    ckpt = None
    if model is None:
        model, ckpt = cat.checkpoint(req.model)
        if ckpt is not None:
            checkpoint_precision, checkpoint_kv, keeps = ckpt.precision, ckpt.kv_precision, ckpt.keeps_16bit
    acc = cat.accelerator(req.gpu)
    engine = cat.engine(req.engine)
    fmt = cat.quant_format(req.precision or default_precision(model, checkpoint_precision))
    if req.precision and checkpoint_precision and fmt.id != cat.quant_format(checkpoint_precision).id:
        keeps, ckpt = None, None  # another format than the checkpoint's: its own overrides no longer apply
    if engine.formats and fmt.id not in engine.formats:
        alt = fmt.gguf_equivalent
        if alt and alt in engine.formats:
            fmt = cat.quant_format(alt)
        else:
            raise LlmplanError(f"{engine.id} does not load {fmt.id} weights; it loads: {', '.join(engine.formats)}")
    kv_name = req.kv_precision or checkpoint_kv or ("fp16" if fmt.compute_dtype == "fp16" else "bf16")
    kv = cat.kv_format(kv_name)
    if engine.accelerators and acc.family not in engine.accelerators:
        raise LlmplanError(f"{engine.id} does not run on {acc.id} ({acc.family}); it runs on: "
                           f"{', '.join(engine.accelerators)}")
    layout = resolve_layout(req, model, acc, engine)
    usable, basis = usable_memory(acc, cat)
    link, link_basis = link_bandwidth(acc, cat)
    return Deployment(model, acc, fmt, kv, engine, layout, keeps, model_source or model.id, usable, basis,
                      link_gb_s=link, link_basis=link_basis,
                      unquantized_layers=ckpt.unquantized_layers if ckpt else (),
                      quant_method=ckpt.quant_method if ckpt else None)


def usable_memory(acc: Accelerator, cat: Catalog) -> tuple[float, str]:
    """Memory the runtime reports for one device, GiB.

    The catalog's sourced value where there is one; otherwise the device's memory times
    the median reported/datasheet ratio of the same vendor's devices of the same kind
    that have a sourced value (drivers and ECC keep a few hundred MiB).
    """
    if acc.usable_memory_gib:
        return acc.usable_memory_gib, "catalog"
    ratios = sorted(a.usable_memory_gib / a.memory_gib for a in cat.accelerators
                    if a.usable_memory_gib and a.vendor == acc.vendor and (a.kind == "soc") == (acc.kind == "soc"))
    if not ratios:
        return acc.memory_gib, "datasheet (no reported value for this vendor)"
    mid = len(ratios) // 2
    ratio = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    return acc.memory_gib * ratio, f"datasheet × {ratio:.4f} (median reported/datasheet of {len(ratios)} {acc.vendor} devices)"


def link_bandwidth(acc: Accelerator, cat: Catalog) -> tuple[float, str]:
    """Scale-up bandwidth per device and direction, GB/s.

    The catalog's value where there is one; otherwise the lowest value among devices of
    the same kind that have one (a conservative stand-in, stated in the answer).
    """
    if acc.interconnect.bandwidth_gb_s:
        return acc.interconnect.bandwidth_gb_s, "catalog"
    if (acc.max_per_server or 1) <= 1 and (acc.interconnect.domain_size or 1) <= 1:
        return 0.0, "single device"
    known = [a.interconnect.bandwidth_gb_s for a in cat.accelerators if a.kind == acc.kind and a.interconnect.bandwidth_gb_s]
    if not known:
        return 0.0, "unknown"
    return min(known), f"not in the catalog: the lowest {acc.kind} link, {min(known):g} GB/s, stands in"
