"""Typed requests at the boundary of the Python API, and their resolution against the
catalog into a concrete :class:`Deployment` (model, accelerator, formats, engine, layout).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, StrictBool, StringConstraints

from .catalog import Catalog
from .catalog.schema import (
    Accelerator,
    Collective,
    Engine,
    EngineDefaults,
    KvFormat,
    Model,
    QuantFormat,
    WeightOnlyKernel,
)
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


@dataclass(frozen=True)
class Cli:
    """How a request field appears on the command line: its flags (none: the positional argument),
    and its help where the field's description does not read as one. A request class's ``CLI`` table
    (merged down the class hierarchy) is the one place an option is declared; the commands' options
    are generated from it (`python -m llmplan.cli.gen_options`)."""

    flags: tuple[str, ...] = ()
    help: str | None = None
    unset: bool = False  # no default on the command line: a rule needs to know whether the option was given


class FitRequest(StrictModel):
    """What `llmplan fit` is asked. Names are catalog ids or aliases."""

    CLI: ClassVar[dict[str, Cli]] = {
        "model": Cli(help="Catalog model id/alias, or a path to config.json, a model directory or a .gguf file."),
        "gpu": Cli(("--gpu", "-g"), "Accelerator id or alias (see `llmplan catalog gpus`)."),
        "num_gpus": Cli(("--num-gpus", "-n"), "GPUs of one replica."),
        "tp": Cli(("--tp",)),
        "pp": Cli(("--pp",)),
        "ep": Cli(("--ep",), "Expert-parallel size (1 or --tp)."),
        "precision": Cli(("--precision", "-p"), "Weight format, e.g. bf16, fp8, int4-awq, q4_k_m "
                         "(default: the checkpoint's)."),
        "kv_precision": Cli(("--kv-precision",)),
        "context_tokens": Cli(("--context", "-c"), "Tokens per sequence, input + output (default: model max)."),
        "concurrency": Cli(("--concurrency",), "Sequences held at once at --context."),
        "engine": Cli(("--engine", "-e"), "Engine id (vllm, sglang, trtllm, llamacpp, nim, gaudi), optionally "
                      "@version (vllm@0.6, sglang@0.4.6): that version's defaults. Default: the newest profile."),
        "engine_version": Cli(("--engine-version",)),
        "gpu_memory_utilization": Cli(("--gpu-memory-utilization",)),
        "max_num_batched_tokens": Cli(("--max-num-batched-tokens",)),
        "max_num_seqs": Cli(("--max-num-seqs",)),
        "block_size": Cli(("--block-size",)),
        "dp_attention": Cli(("--dp-attention/--no-dp-attention",), "Attention data-parallel across the TP group "
                            "(SGLang --enable-dp-attention): each GPU holds the KV cache of its own sequences only."),
    }

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "llama-3.1-70b", "gpu": "h100-sxm", "num_gpus": 2, "precision": "fp8", "context_tokens": 8192,
         "concurrency": 16}]})

    model: NameOrPath = Field(
        description="catalog id/alias, or a path to config.json, a model directory or a .gguf file"
    )
    gpu: Name = Field(description="accelerator id or alias")
    num_gpus: int | None = Field(default=None, ge=1, le=MAX_GPUS, description="GPUs of one replica (default tp × pp)")
    tp: int | None = Field(default=None, ge=1, le=MAX_GPUS, description="tensor-parallel size")
    pp: int | None = Field(
        default=None, ge=1, le=MAX_GPUS, description="pipeline-parallel size (llama.cpp: layer split)"
    )
    ep: int | None = Field(default=None, ge=1, le=MAX_GPUS, description="expert-parallel size (1 or tp)")
    precision: Name | None = Field(
        default=None, description="weight format (default: the checkpoint's or the model's native format)"
    )
    kv_precision: Name | None = Field(
        default=None, description="KV-cache format (default: the checkpoint's, else 16 bit)"
    )
    context_tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        description="tokens per sequence (input + output); default the model's max context",
    )
    concurrency: int = Field(default=1, ge=1, le=MAX_TOKENS, description="sequences held at once at that context")
    engine: Name = Field(default="vllm", description="serving engine id, optionally with a version: vllm@0.6, "
                         "sglang@0.4.6 (default: the newest profile)")
    engine_version: Name | None = Field(default=None, description="engine version whose defaults apply (e.g. 0.6.3, "
                                        "or a llama.cpp build number); same as engine@version")
    gpu_memory_utilization: float | None = Field(default=None, ge=0.01, le=1,
                                                 description="override the engine's memory fraction")
    max_num_batched_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS,
                                               description="largest prefill chunk (activation peak)")
    max_num_seqs: int | None = Field(default=None, ge=1, le=MAX_TOKENS)
    block_size: int | None = Field(default=None, ge=1, le=4096, description="KV block size in tokens")
    dp_attention: StrictBool | None = Field(default=None, description="attention data-parallel across the TP group "
                                            "(SGLang --enable-dp-attention; default: the engine's own default)")


@dataclass(frozen=True)
class Layout:
    num_gpus: int
    tp: int
    pp: int
    ep: int


@dataclass(frozen=True)
class AllReduceCost:
    """One all-reduce of S bytes on the TP group: ``latency_s + S × 2 (n − 1) / n / bus_bw``
    with the library (NCCL/RCCL/HCCL), or with the engine's own one-shot kernel where it has
    one on this fabric (the faster of the two applies)."""

    latency_s: float
    bus_bw: float  # B/s
    custom_latency_s: float = math.inf
    custom_bus_bw: float = math.inf
    basis: str = ""


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
    engine_profile: str = ""  # which version profile of the engine applies, in words
    allreduce: AllReduceCost | None = None  # measured all-reduce cost on this TP group (None: TP 1)
    kernel: WeightOnlyKernel | None = None  # the weight-only GEMM kernel, when the weights are dequantized
    estimates: tuple[str, ...] = ()  # facts used that are labelled estimates, each with its range and basis


def offers_dp_attention(engine: Engine, model: Model, tp: int) -> bool:
    """Whether the engine (as this version ships) can run this model's attention data-parallel over a TP group of
    `tp` GPUs: it has the option, for this kind of attention, and there is a group to spread the sequences over."""
    ex = engine.execution
    return bool(ex.dp_attention_option) and tp > 1 and (not ex.dp_attention_mla_only or model.mla is not None)


def dp_attention_unmodelled(d: Deployment, chunk: int) -> str:
    """What the speed model leaves out of data-parallel attention with a prefill budget of `chunk` tokens, in words
    (the planner's and estimate's)."""
    tp = d.layout.tp
    return (f"{d.engine.id} gives each of the {tp} attention ranks 1/{tp} of the prefill chunk ({chunk // tp:,} of "
            f"{chunk:,} tokens) and prefills the ranks' prompts together; the speed model runs a prompt's whole chunk "
            "on the one GPU that holds it, which understates data-parallel attention at load once prompts are longer "
            f"than {chunk // tp:,} tokens")


def with_dp_attention(engine: Engine, wanted: bool | None, layout: Layout, cat: Catalog, model: Model) -> Engine:
    """The engine with data-parallel attention on or off as asked (None: its default). An engine (or engine version)
    without the option, one that offers it only for MLA models given another, or a layout without a TP group to
    spread the attention over, is refused."""
    if wanted is None or (not wanted and not engine.execution.dp_attention):
        return engine
    if wanted and not engine.execution.dp_attention and not engine.execution.dp_attention_option:
        able = [e for e in cat.engines if e.execution.dp_attention_option]
        if any(e.id == engine.id for e in able):  # an older version of an engine whose newest has it
            raise LayoutError(f"{engine.id} {engine.version or ''} has no data-parallel attention: it came in a later "
                              f"version; use --engine {engine.id} (the newest) or leave --dp-attention out")
        names = ", ".join(f"{e.id} ({e.execution.dp_attention_option})" for e in able) or "no engine in the catalog"
        raise LayoutError(f"{engine.id} {engine.version or ''} has no data-parallel attention in the catalog "
                          f"(execution.dp_attention_option); engines with it: {names}")
    if wanted and engine.execution.dp_attention_mla_only and model.mla is None:
        raise LayoutError(f"{engine.id} {engine.version or ''} runs data-parallel attention only for multi-head latent "
                          f"attention (DeepSeek-style) models, and {model.id} has none; use a newer version "
                          "(--engine without @version) or leave --dp-attention out")
    if wanted and layout.tp < 2:
        raise LayoutError("data-parallel attention spreads the sequences over the TP group: give --tp 2 or more")
    return engine.model_copy(update={"execution": engine.execution.model_copy(update={"dp_attention": wanted})})


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
        if req.pp is None:
            raise LayoutError(f"--num-gpus {n} is more than {model.id} can use: with TP {tp} it needs PP {pp}, and "
                              f"pipeline stages cannot outnumber its {model.num_layers} layers (at most "
                              f"{tp * model.num_layers} GPUs at TP {tp}); for more throughput use replicas "
                              f"(`llmplan capacity`)")
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
            "keep tensor parallelism inside a server and add pipeline stages "
            f"(e.g. --tp {domain} --pp {-(-tp // domain)})"
        )


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, min(n, 64) + 1) if n % d == 0)


def default_precision(model: Model, checkpoint_precision: str | None) -> str:
    return checkpoint_precision or model.native_precision


def default_kv_name(fmt: QuantFormat) -> str:
    """The KV-cache format an engine uses unless told otherwise: the activations' 16-bit type."""
    return "fp16" if fmt.compute_dtype == "fp16" else "bf16"


def resolve(req: FitRequest, cat: Catalog, model: Model | None = None, checkpoint_precision: str | None = None,
            checkpoint_kv: str | None = None, keeps: tuple[str, ...] | None = None,
            model_source: str | None = None, engine_hint: tuple[str | None, str | None] | None = None) -> Deployment:
    """Resolve names against the catalog. `model` is given when it was imported from a file;
    `engine_hint` (version, date) is what a benchmark row records about its engine: it selects
    the closest profile instead of refusing an unknown version."""
    ckpt = None
    if model is None:
        model, ckpt = cat.checkpoint(req.model)
        if ckpt is not None:
            checkpoint_precision, checkpoint_kv, keeps = ckpt.precision, ckpt.kv_precision, ckpt.keeps_16bit
    acc = cat.accelerator(req.gpu)
    base_name, at_version = split_engine(req.engine)
    if at_version and req.engine_version and version_key(at_version) != version_key(req.engine_version):
        raise LlmplanError(f"engine {req.engine!r} and engine_version {req.engine_version!r} disagree; give one")
    named = cat.engine(base_name)
    plugin = hardware_plugin(named, acc.family, cat)
    if plugin is not None:  # the engine runs on this family through its hardware plugin (vLLM on Gaudi)
        engine, profile = select_profile(plugin, None)
    elif engine_hint is not None and not (at_version or req.engine_version):
        engine, profile = select_profile(named, engine_hint[0], engine_hint[1], strict=False)
    else:
        engine, profile = select_profile(named, at_version or req.engine_version)
    fmt = cat.quant_format(req.precision or default_precision(model, checkpoint_precision))
    if req.precision and checkpoint_precision and fmt.id != cat.quant_format(checkpoint_precision).id:
        keeps, ckpt = None, None  # another format than the checkpoint's: its own overrides no longer apply
    if engine.formats and fmt.id not in engine.formats:
        alt = fmt.gguf_equivalent
        if alt and alt in engine.formats:
            fmt = cat.quant_format(alt)
        else:
            raise LlmplanError(f"{engine.id} does not load {fmt.id} weights; it loads: {', '.join(engine.formats)}")
    kv_name = req.kv_precision or checkpoint_kv or default_kv_name(fmt)
    kv = cat.kv_format(kv_name)
    if not engine.loads_on(fmt.id, acc.family):
        raise LlmplanError(f"{engine.id} on {acc.family} does not load {fmt.id} weights; it loads there: "
                           f"{', '.join(engine.family_formats[acc.family])} (engines catalog, family_formats)")
    if not engine.runs_on(acc.family):
        able = [e.id for e in cat.engines if e.runs_on(acc.family)]
        raise LlmplanError(f"{engine.id} does not run on {acc.id} ({acc.family}); it runs on: "
                           f"{', '.join(engine.accelerators) or 'any family but ' + ', '.join(engine.not_on)}. "
                           f"Engines for {acc.family}: "
                           f"{', '.join(able) or 'none in the catalog'} (--engine)")
    layout = resolve_layout(req, model, acc, engine)
    usable, basis = usable_memory(acc, cat)
    link, link_basis = link_bandwidth(acc, cat)
    engine = engine_on_device(engine, acc, usable, layout.tp, layout.pp, model, req.context_tokens)
    engine = with_dp_attention(engine, req.dp_attention, layout, cat, model)
    allreduce, estimates = allreduce_cost(acc, layout.tp, engine, cat, link)
    kernel = weight_only_kernel(engine, fmt, acc, cat)
    return Deployment(model, acc, fmt, kv, engine, layout, keeps, model_source or model.id, usable, basis,
                      link_gb_s=link, link_basis=link_basis,
                      unquantized_layers=ckpt.unquantized_layers if ckpt else (),
                      quant_method=ckpt.quant_method if ckpt else None, engine_profile=profile,
                      allreduce=allreduce, kernel=kernel, estimates=tuple(estimates))


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
    return (
        acc.memory_gib * ratio,
        f"datasheet × {ratio:.4f} (median reported/datasheet of {len(ratios)} {acc.vendor} devices)",
    )


def link_bandwidth(acc: Accelerator, cat: Catalog) -> tuple[float, str]:
    """Scale-up bandwidth per device and direction, GB/s.

    The catalog's value where there is one; otherwise the lowest value among devices of
    the same kind that have one (a conservative stand-in, stated in the answer).
    """
    if acc.interconnect.bandwidth_gb_s:
        return acc.interconnect.bandwidth_gb_s, "catalog"
    if (acc.max_per_server or 1) <= 1 and (acc.interconnect.domain_size or 1) <= 1:
        return 0.0, "single device"
    known = [
        a.interconnect.bandwidth_gb_s for a in cat.accelerators if a.kind == acc.kind and a.interconnect.bandwidth_gb_s
    ]
    if not known:
        return 0.0, "unknown"
    return min(known), f"not in the catalog: the lowest {acc.kind} link, {min(known):g} GB/s, stands in"


# --------------------------------------------------------------------------------------
# Engine versions: which profile of an engine applies, and its defaults on this device
# --------------------------------------------------------------------------------------

_NUM = re.compile(r"\d+(?:\.\d+)*")
_BUILD = re.compile(r"\bbuild\s+\w+\s+\((\d+)\)|\bb(\d{3,5})\b")
_NOTE_VERSION = re.compile(r"version='([^']*)'")
_NOTE_DATE = re.compile(r"\bdate=(\d{4}-\d{2}(?:-\d{2})?)")
_NAMED_VERSION = re.compile(r"(?i)\b(?:vllm|sglang|tensorrt-llm|trt-llm|llama\.cpp|nim)\s+v?(\d+\.\d+(?:\.\d+)*)")


def version_key(version: str) -> tuple[int, ...]:
    """'0.6.3.post1' -> (0, 6, 3); 'b6918' or '6918' -> (6918,). Versions compare as tuples."""
    m = _NUM.search(version)
    if not m:
        raise LlmplanError(f"engine version {version!r} has no number (use e.g. 0.6, 0.4.6 or a build number)")
    return tuple(int(x) for x in m.group(0).split("."))


def row_engine_version(notes: str) -> tuple[str | None, str | None]:
    """The engine version and date a benchmark row's notes record (docs/performance.md):

    * ``version='…'`` (the normalisation section): a llama.cpp ``build <hash> (NNNN)`` gives the
      build number, otherwise the first dotted number (``'0.14.0'``, ``'1.0 (PyTorch backend)'``);
    * else a version named after the engine anywhere (``vLLM 0.6.3``, ``SGLang 0.4.6.post1``);
    * ``date=YYYY-MM`` gives the date, used when no version is stated.
    Returns (version or None, date or None)."""
    version = None
    m = _NOTE_VERSION.search(notes or "")
    if m:
        b = _BUILD.search(m.group(1))
        n = _NUM.search(m.group(1))
        version = (b.group(1) or b.group(2)) if b else (n.group(0) if n and "." in n.group(0) else None)
    if version is None:
        named = _NAMED_VERSION.search(notes or "")
        version = named.group(1) if named else None
    d = _NOTE_DATE.search(notes or "")
    return version, (d.group(1) if d else None)


def hardware_plugin(engine: Engine, family: str, cat: Catalog) -> Engine | None:
    """The entry that runs `engine` on accelerator `family` through a hardware plugin (catalog `plugin_of`:
    vLLM on Gaudi), where the engine itself has no backend there; else None."""
    if engine.runs_on(family):
        return None
    return next((p for p in cat.engines if p.plugin_of == engine.id and family in p.accelerators), None)


def split_engine(name: str) -> tuple[str, str | None]:
    """'vllm@0.6' -> ('vllm', '0.6'); 'vllm' -> ('vllm', None)."""
    base, sep, version = name.partition("@")
    return base.strip(), (version.strip() or None) if sep else None


def _in_range(v: tuple[int, ...], lo: str | None, hi: str | None) -> bool:
    return (lo is None or v >= version_key(lo)) and (hi is None or v < version_key(hi))


def _refuse_unknown_newer(engine: Engine, v: tuple[int, ...], version: str) -> None:
    """A version newer than the newest the catalog describes is not silently read as that one."""
    newest = re.match(r"\d+\.\d+(?:\.\d+)*", engine.version or "")
    known = version_key(newest.group(0)) if newest else None
    if newest and known and v[:len(known)] > known:  # 0.31.2 is the 0.31 the catalog describes; 0.32 is not
        raise LlmplanError(f"{engine.id}@{version} is newer than the newest {engine.id} the catalog describes "
                           f"({newest.group(0)}); use --engine {engine.id} for that one, or describe the new "
                           f"version's defaults in a catalog override (docs/catalog.md)")


def select_profile(engine: Engine, version: str | None = None, date: str | None = None,
                   strict: bool = True) -> tuple[Engine, str]:
    """The engine as the given version ships (defaults, memory, execution, kernels), and the
    profile used in words. No version: the newest (the entry itself), unless `date` falls in
    an older profile's release window. `strict`: a version no profile covers is an error;
    otherwise (benchmark rows) the oldest profile stands in for older versions."""
    chosen = None
    if version is not None:
        chosen = next((p for p in engine.profiles if p.version == version), None)
        if chosen is None:
            v = version_key(version)
            if engine.from_version is None or v < version_key(engine.from_version):
                chosen = next((p for p in engine.profiles if _in_range(v, p.from_version, p.until_version)), None)
                if chosen is None and engine.profiles:
                    oldest = min(engine.profiles, key=lambda p: version_key(p.from_version))
                    if v < version_key(oldest.from_version) and not strict:
                        chosen = oldest
                    elif strict:
                        known = ", ".join(f"{engine.id}@{p.version}" for p in engine.profiles)
                        raise LlmplanError(
                            f"no {engine.id} profile covers version {version}; known: {known}, "
                            f"or {engine.id} (newest{', from ' + engine.from_version if engine.from_version else ''})"
                        )
            elif strict:
                _refuse_unknown_newer(engine, v, version)
    elif date is not None:
        chosen = next((p for p in engine.profiles if p.until_released and date < p.until_released
                       and (p.released is None or date >= p.released)), None)
    if chosen is None:
        return engine, f"{engine.id} {engine.version or 'newest'}"
    update: dict[str, object] = {"defaults": chosen.defaults, "version": f"{chosen.version} ({chosen.name or ''})"}
    if chosen.memory:
        update["memory"] = engine.memory.model_validate({**engine.memory.model_dump(), **chosen.memory})
    if chosen.execution is not None:
        update["execution"] = chosen.execution
    if chosen.formats is not None:
        update["formats"] = chosen.formats
    if chosen.kernels is not None:
        update["kernels"] = chosen.kernels
    return engine.model_copy(update=update), f"{engine.id}@{chosen.version}: {chosen.name or chosen.version}"


def _tier(engine: Engine, acc: Accelerator, usable_gib: float, tp: int):
    names = f"{acc.id} {acc.name or ''}".lower()
    for t in engine.defaults.tiers:
        if usable_gib < t.min_memory_gib or (t.max_memory_gib is not None and usable_gib >= t.max_memory_gib):
            continue
        if any(x.lower() in names for x in t.name_excludes) or (t.families and acc.family not in t.families) \
                or acc.family in t.excluded_families:
            continue
        if tp >= t.min_tp:
            return t
    return None


def engine_on_device(engine: Engine, acc: Accelerator, usable_gib: float, tp: int, pp: int,
                     model: Model, max_model_len: int | None = None) -> Engine:
    """The engine's defaults resolved for this device and model: the memory tier (vLLM
    `get_batch_defaults`, SGLang `_handle_gpu_memory_settings`), the long-context chunking rule
    of vLLM V0 (on the served max_model_len: the request's context, else the model's), and
    SGLang's reserved-memory fraction. The result has no tiers left."""
    d = engine.defaults
    t = _tier(engine, acc, usable_gib, tp)
    seqs = (t.max_num_seqs if t and t.max_num_seqs else None) or d.max_num_seqs
    tokens = (t.max_num_batched_tokens if t and t.max_num_batched_tokens else None) or d.max_num_batched_tokens
    graphs = t.cuda_graph_max_bs if t and t.cuda_graph_max_bs is not None else d.cuda_graph_max_bs
    chunked = d.chunked_prefill
    if d.long_context is not None:
        rule = d.long_context
        served = max_model_len or model.max_context
        chunked = served > rule.above_tokens
        tokens = rule.max_num_batched_tokens if chunked else max(served, rule.unchunked_floor_tokens)
    fraction = engine.memory.memory_fraction
    if t and t.memory_fraction is not None:
        fraction = t.memory_fraction
    elif d.reserved_memory is not None:
        fraction = _reserved_fraction(d, usable_gib, tokens, graphs or 0, tp, pp)
    defaults = EngineDefaults.model_validate({**d.model_dump(), "max_num_seqs": seqs, "max_num_batched_tokens": tokens,
                                              "chunked_prefill": chunked, "cuda_graph_max_bs": graphs, "tiers": (),
                                              "long_context": None, "reserved_memory": None})
    memory = (
        engine.memory.model_copy(update={"memory_fraction": fraction})
        if fraction != engine.memory.memory_fraction
        else engine.memory
    )
    return engine.model_copy(update={"defaults": defaults, "memory": memory})


def _reserved_fraction(d: EngineDefaults, usable_gib: float, chunk: int, graphs: int, tp: int, pp: int) -> float:
    r = d.reserved_memory
    assert r is not None
    mem_mib = usable_gib * 1024
    reserved = (r.base_mib + max(chunk, r.min_chunk_tokens) * r.per_chunk_token_mib + graphs * r.per_graph_seq_mib
                + tp * pp * r.per_rank_mib)
    if r.floor_above_gib and usable_gib > r.floor_above_gib:
        reserved = max(reserved, r.floor_mib)
    return min(max(round((mem_mib - reserved) / mem_mib, 3), 0.05), 1.0)


# --------------------------------------------------------------------------------------
# Measured facts the physics uses: all-reduce on the TP group, weight-only GEMM kernels
# --------------------------------------------------------------------------------------


def _fabric(acc: Accelerator, tp: int) -> str:
    """The fabric a TP group of `tp` devices talks over: the scale-up link, or PCIe when the
    group is larger than the link's domain (bridged pairs)."""
    kind = acc.interconnect.kind
    domain = acc.interconnect.domain_size or 1
    if not kind.startswith("pcie") and tp > domain and acc.pcie_gen:
        return f"pcie{acc.pcie_gen}"
    return kind


def _nearest(entries: list[Collective], link: float, tp: int) -> Collective | None:
    if not entries:
        return None
    return min(entries, key=lambda e: (abs(math.log(link / e.link_gb_s)) if link > 0 else 0.0, abs(e.gpus - tp),
                                       e.id))


def allreduce_cost(acc: Accelerator, tp: int, engine: Engine, cat: Catalog,
                   link_gb_s: float) -> tuple[AllReduceCost | None, list[str]]:
    """The measured all-reduce cost on `tp` devices of `acc` (None for TP 1), and the
    estimates it rests on. Where the entry gives a cost per ring hop (two measurements), the
    latency is linear in the GPU count; otherwise a ring on more devices than measured scales it
    by hops, (n − 1) / (n_meas − 1), and a smaller one keeps the measured time. busbw is scaled
    by the link rate when the measured platform's link differs."""
    if tp <= 1:
        return None, []
    fabric = _fabric(acc, tp)
    link = link_gb_s if fabric == acc.interconnect.kind else 0.0
    pool = [c for c in cat.collectives if c.interconnect == fabric
            and (not c.accelerator_kinds or acc.kind in c.accelerator_kinds)]
    lib = _nearest([c for c in pool if c.library != "custom"], link, tp)
    if lib is None:
        raise LlmplanError(f"no all-reduce measurement for {fabric} ({acc.id}, TP {tp}) in the collectives catalog; "
                           "add one (latency_us, bus_bandwidth_gb_s, source) in a catalog override")
    ex = engine.execution
    custom_ok = fabric in ex.custom_allreduce or (fabric.startswith("pcie") and tp <= ex.custom_allreduce_max_gpus_pcie)
    custom = _nearest([c for c in pool if c.library == "custom"], link, tp) if custom_ok else None
    notes = []

    def scaled(c: Collective, hops: bool) -> tuple[float, float]:
        if hops and c.per_hop_us is not None:  # two measurements: a fixed part and a cost per ring hop
            lat = max(c.latency_us + c.per_hop_us * (tp - c.gpus), c.per_hop_us) * 1e-6
        else:  # a larger ring adds hops; a smaller one is not credited below the measured time (fixed costs)
            lat = c.latency_us * 1e-6 * (max((tp - 1) / (c.gpus - 1), 1.0) if hops else 1.0)
        bw = c.bus_bandwidth_gb_s * 1e9 * (link / c.link_gb_s if link > 0 else 1.0)
        if c.estimate:
            notes.append(f"all-reduce on {fabric} from '{c.id}', an estimate ({c.low_factor:g}–{c.high_factor:g}× "
                         f"of the cost): {c.basis}")
        return lat, bw

    lat, bw = scaled(lib, hops=True)
    c_lat, c_bw = scaled(custom, hops=False) if custom else (math.inf, math.inf)
    basis = f"{lib.id} ({lib.measured_on})" + (f"; small messages: {custom.id}" if custom else "")
    return AllReduceCost(lat, bw, c_lat, c_bw, basis), notes


def weight_only_kernel(engine: Engine, fmt: QuantFormat, acc: Accelerator, cat: Catalog) -> WeightOnlyKernel | None:
    """The weight-only GEMM kernel the engine runs `fmt` with on `acc`: the most specific
    catalog entry (engine, format and family named); a fallback entry names none of them."""
    def fits(k: WeightOnlyKernel) -> bool:
        if k.engines and engine.id not in k.engines:
            return False
        if engine.kernels and k.engines and k.id not in engine.kernels:
            return False
        if k.formats and fmt.id not in k.formats:
            return False
        if k.format_kinds and fmt.kind not in k.format_kinds:
            return False
        return not k.families or acc.family in k.families

    found = [k for k in cat.kernels if fits(k)]
    if not found:
        return None
    return max(found, key=lambda k: (bool(k.engines), bool(k.formats or k.format_kinds), bool(k.families), k.id))
