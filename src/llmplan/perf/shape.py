"""From a resolved deployment to the numbers the physics needs: what one GPU of the busiest
pipeline stage holds and does per token, and the hardware rates that apply to the format."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..catalog.loader import typical_matmul_share
from ..catalog.schema import Accelerator, Engine, GgufType, Model, QuantFormat
from ..errors import LlmplanError
from ..memory.fit import dp_attention, engine_bits_groups
from ..memory.kv import KvLayout, kv_layout_per_stage, linear_state_bytes_per_layer
from ..memory.weights import BitsGroup, memo_by_identity, pp_stages, split_share, stage_of
from ..specs import Deployment
from ..units import GB, TERA, bits_to_bytes
from .physics import Machine, StageShape

# Two FLOPs (multiply and add) per parameter per token, for a matmul
FLOPS_PER_PARAM = 2
# Attention per (query, key) pair and head dimension: QK^T and PV, two FLOPs each
ATTN_FLOPS_PER_PAIR_DIM = 4


def compute_dtype(fmt: QuantFormat, acc: Accelerator) -> str:
    """The matmul data type the format runs in on this chip.

    Weight-only formats compute in bf16; W8A8/FP4 formats use their low-precision math
    only where the chip runs it natively (else the catalog's fallback, then bf16); chips
    without bf16 use fp16.
    """
    want: str = fmt.compute_dtype
    native = acc.dense_tflops.get(want) is not None and (not fmt.native_families or acc.family in fmt.native_families)
    if not native:
        want = fmt.fallback_compute_dtype or "bf16"
        if acc.dense_tflops.get(want) is None and want in ("fp8", "int8", "fp4"):
            want = "bf16"
    if acc.dense_tflops.get(want) is None:
        want = "fp16" if acc.dense_tflops.fp16 else "bf16"
    return want


# A data type without its own matmul measurement takes the share of the peak measured in the nearest one
# (same tensor cores: fp16 and bf16 run at one rate on datacenter parts, FP4 on the FP8 path's tiles)
_NEAREST_MEASURED = {"fp16": ("bf16",), "bf16": ("fp16", "fp8"), "fp8": ("bf16", "fp16"),
                     "fp4": ("fp8", "bf16", "fp16"), "int8": ("fp8", "bf16", "fp16"), "tf32": ("bf16", "fp16"),
                     "fp32": ("bf16", "fp16")}


def matmul_donor(acc: Accelerator, dtype: str) -> str | None:
    """The measured type whose share `dtype` computes with: its own, else the nearest measured one
    (_NEAREST_MEASURED); on a GeForce card (``Accelerator.half_rate_bf16``) BF16 and the full-rate types lend each
    other nothing: its BF16 measurement is of the half-rate path, below the power limit and above the rated clock
    (RTX 4090 100 %, RTX 5090 114 % of their ratings). Borrowed for llama.cpp's FP16-accumulate GEMMs, it predicted
    the RTX 4090 and 3090 prefill rows 33 % too fast (median), held out with their source, against 5 % with the
    median share. None: no measurement applies."""
    shares = acc.matmul_shares()
    half = acc.half_rate_bf16()
    return next((name for name in (dtype, *_NEAREST_MEASURED.get(dtype, ())) if name in shares
                 and (name == dtype or not (half and "bf16" in (name, dtype)))), None)


def matmul_fraction(acc: Accelerator, dtype: str) -> float:
    """The share of the rated dense peak the physics computes with: measured for the chip where the catalog has it
    (:func:`matmul_donor`), else the typical share of the measured chips (the bundled catalog's median:
    :func:`llmplan.catalog.loader.typical_matmul_share`)."""
    donor = matmul_donor(acc, dtype)
    return typical_matmul_share() if donor is None else acc.matmul_shares()[donor]


def compute_rate_note(acc: Accelerator, dtype: str) -> str:
    """What `llmplan estimate` says about the compute rate it used for `acc` in `dtype`: the rate, its share of the
    datasheet figure (which on a GeForce card's BF16 is the FP32-accumulate one, and measures above 100 %), and
    where the share comes from."""
    rated = acc.dense_tflops.get(dtype) or 0.0
    donor = matmul_donor(acc, dtype)
    share = typical_matmul_share() if donor is None else acc.matmul_shares()[donor]
    head = (f"compute at {rated * share:,.0f} TFLOPS, {share * 100:.0f} % of the datasheet {dtype} peak of {acc.id} "
            f"({rated:,.0f})")
    if donor is None:
        why = (f"its measured {', '.join(acc.matmul_shares())} rate is of its half-rate BF16 path, not of {dtype}"
               if acc.half_rate_bf16() and acc.matmul_shares() else
               "no measured matmul rate for this chip and type in the catalog (matmul_tflops)")
        return f"{head}: {why}, so the median measured share; add your own measurement in a catalog override"
    first = (acc.matmul_source or "").split()[0]  # the source's first URL
    whose = "its measured matmul rate" if donor == dtype else f"the share of its measured {donor} matmul rate"
    boost = ("; above 100 %: the rating is FP32-accumulate BF16, and the card runs above the clock it assumes"
             if share > 1 and acc.half_rate_bf16() else "")
    return f"{head}, {whose} ({first}){boost}"


def peak_tflops(acc: Accelerator, dtype: str) -> float:
    """Achievable dense TFLOP/s of `acc` in `dtype` (the type :func:`compute_dtype` chose): the rated peak times
    :func:`matmul_fraction`. The calibrated eta_flops is the engine's share of this rate."""
    peak = acc.dense_tflops.get(dtype)
    if peak is None:
        raise LlmplanError(f"{acc.id} has no dense_tflops.{dtype} in the catalog (nor bf16/fp16 to fall back on)")
    return peak * matmul_fraction(acc, dtype)


def is_dequant(fmt: QuantFormat, dtype: str) -> bool:
    """Weights stored narrower than the math they feed: kernels dequantize on the fly."""
    bits = fmt.weight_bits if fmt.weight_bits is not None else 8.0  # every GGUF mix is below 16 bit
    return bits < 15.5 and dtype in ("bf16", "fp16")


def kernel_ratio(d: Deployment, dtype: str) -> float:
    """Compute-bound rate of the weight-only GEMM kernel relative to 16-bit (kernels catalog);
    1 for formats the chip runs natively."""
    if not is_dequant(d.weight_format, dtype):
        return 1.0
    if d.kernel is None:
        raise LlmplanError(
            f"no weight-only kernel in the kernels catalog for {d.engine.id} running {d.weight_format.id} "
            f"on {d.accelerator.family}; add one (prefill_compute_ratio with its source)"
        )
    return d.kernel.prefill_compute_ratio


def attention_dtype(acc: Accelerator, dtype: str, kv_format: str) -> str:
    """The data type attention's math runs in, where the GEMMs run in `dtype`: the GEMMs' where they run 16-bit;
    over an FP8 KV cache FP8 where the chip has it (16-bit GEMMs over an FP8 cache keep 16-bit attention: a
    simplification, vLLM's FlashAttention-3 backend can run FP8 there); else the chip's 16-bit type (no engine
    here runs attention in FP4 or INT8)."""
    if dtype in ("bf16", "fp16"):
        return dtype
    if kv_format == "fp8" and acc.dense_tflops.fp8 is not None:
        return "fp8"
    return "bf16" if acc.dense_tflops.bf16 is not None else "fp16"


def machine(d: Deployment) -> tuple[Machine, str]:
    acc = d.accelerator
    dtype = compute_dtype(d.weight_format, acc)
    peak = peak_tflops(acc, dtype)
    if d.layout.tp > 1 and not d.link_gb_s:
        raise LlmplanError(f"{acc.id} has no scale-up link bandwidth in the catalog, needed for --tp {d.layout.tp}; "
                           "add interconnect.bandwidth_gb_s in a catalog override")
    link = d.link_gb_s or math.inf  # one device: no tensor-parallel traffic
    ar = d.allreduce
    ex = d.engine.execution
    mixed = d.engine.defaults.chunked_prefill or ex.mixes_unchunked_prefill
    return Machine(peak_flops=peak * TERA, bandwidth=acc.memory_bandwidth_gb_s * GB, link_bandwidth=link * GB,
                   tp=d.layout.tp, pp=d.layout.pp,
                   ar_latency_s=ar.latency_s if ar else 0.0, ar_bus_bw=ar.bus_bw if ar else math.inf,
                   ar_custom_latency_s=ar.custom_latency_s if ar else math.inf,
                   ar_custom_bus_bw=ar.custom_bus_bw if ar else math.inf,
                   flops_ratio=kernel_ratio(d, dtype), weight_only=1.0 if is_dequant(d.weight_format, dtype) else 0.0,
                   mixed_prefill=1.0 if mixed else 0.0, scores_bytes=scores_bytes(d.engine),
                   attn_peak_flops=peak_tflops(acc, attention_dtype(acc, dtype, d.kv_format.id)) * TERA), dtype


def scores_bytes(engine: Engine) -> float:
    """Bytes each attention score moves through memory: 0 where the engine fuses attention (the scores stay on
    chip), else the catalog's unfused_attention_bytes (llama.cpp without flash attention)."""
    if engine.execution.flash_attention:
        return 0.0
    if engine.unfused_attention_bytes is None:
        raise LlmplanError(f"{engine.id} runs attention unfused here but the catalog gives no unfused_attention_bytes "
                           "(bytes per attention score through memory); add it in a catalog override")
    return engine.unfused_attention_bytes


def stage_shape(d: Deployment, gguf_types: tuple[GgufType, ...], kv_bytes_per_elem: float) -> StageShape:
    """The busiest pipeline stage, per GPU (memoised on the weight table and the layout)."""
    groups = engine_bits_groups(d, gguf_types)
    lay = d.layout
    dp = dp_attention(d)
    return memo_by_identity(("stage_shape", lay.tp, lay.pp, lay.ep, kv_bytes_per_elem, dp), groups,
                            lambda: _stage_shape(d, groups, kv_bytes_per_elem, dp))


def _stage_shape(d: Deployment, groups: tuple[BitsGroup, ...], kv_bytes_per_elem: float, dp: bool) -> StageShape:
    m, lay = d.model, d.layout
    stages = pp_stages(m.num_layers, lay.pp)
    kvs = kv_layout_per_stage(m, kv_bytes_per_elem, lay.tp, lay.pp, 1, dp)
    shapes = [shape_from_sums(m, split_sums(groups, stages, i), lay.tp, lay.ep, kvs[i], dp)
              for i in range(len(stages))]
    return max(shapes, key=lambda sh: float(sh.weight_bytes))  # the first of equals: max keeps it


SPLITS = ("shard", "replicate", "kv_heads")


@dataclass(frozen=True)
class SplitSums:
    """One pipeline stage's weights before tensor parallelism splits them: bytes and FLOPs per token by
    how each tensor splits (SPLITS) and what it is (`attention` and `dense`: read for every token; `experts`:
    routed; `embedding`: a lookup, held but neither read whole per step nor multiplied), and the stage's layers."""

    bytes: dict[tuple[str, str], float]  # (what, split) -> bytes
    flops: dict[tuple[str, str], float]  # (what, split) -> FLOPs per token, all experts counted
    moe_layers: int
    layers: int


def split_sums(groups: tuple[BitsGroup, ...], stages: list[range], i: int) -> SplitSums:
    """The sums of stage `i` (tensors outside the layers: the embedding on the first stage, the head and
    final norm on the last, as :func:`llmplan.memory.weights.stage_of` places them)."""
    stage, whole = stages[i], len(stages) == 1
    by: dict[tuple[str, str], float] = {}
    fl: dict[tuple[str, str], float] = {}
    moe: set[int | None] = set()
    for g in groups:
        t = g.tensor
        if g.layers == (None,):
            n = 1 if stage_of(t, None, stages) == i else 0
        else:
            n = len(g.layers) if whole else sum(1 for x in g.layers if x in stage)
        if not n:
            continue
        what = t.group if t.group in ("experts", "embedding", "attention") else "dense"
        key = (what, t.tp)
        by[key] = by.get(key, 0.0) + n * bits_to_bytes(t.params_per_layer, g.bits)
        if what != "embedding":
            fl[key] = fl.get(key, 0.0) + n * FLOPS_PER_PARAM * t.params_per_layer
        if what == "experts":
            moe.update(g.layers if whole else (x for x in g.layers if x in stage))
    return SplitSums(by, fl, len(moe), len(stage))


def shape_from_sums(m: Model, ss: SplitSums, tp: int, ep: int, kv: KvLayout, dp_attention: bool = False) -> StageShape:
    """What one GPU of the stage holds and does per token with TP `tp` and EP `ep`. With data-parallel attention
    (`dp_attention`) each GPU holds the attention weights whole and runs them for its own 1/TP of the tokens:
    the bytes are the whole tensors', the FLOPs per token of the batch a 1/TP share (the KV cache: `kv`)."""
    kvh = m.num_kv_heads

    def total(sums: dict[tuple[str, str], float], *whats: str, held: bool = True) -> float:
        def share(what: str, split: str) -> float:
            if what == "attention" and dp_attention:
                return 1.0 if held else 1 / tp
            return split_share(split, what == "experts", tp, ep, kvh)
        return sum(v * share(what, split) for (what, split), v in sums.items() if what in whats)

    k_over_e = (m.moe.experts_per_token / m.moe.num_experts) if m.moe else 0.0
    expert_bytes = total(ss.bytes, "experts")
    expert_flops = total(ss.flops, "experts") * k_over_e
    attn_layers = kv.full_layers + kv.sliding_layers
    heads_per_gpu = m.num_attention_heads / tp
    if m.mla:
        pair_dim = (2 * m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) / 2  # absorbed: QK over 576, PV over 512
    else:
        pair_dim = m.head_dim
    per_expert = expert_bytes / (ss.moe_layers * m.moe.num_experts) if (m.moe and ss.moe_layers) else 0.0
    token_bytes = kv.token_bytes()
    state = kv.linear_layers * kv.linear_state_bytes_per_layer
    return StageShape(
        weight_bytes=total(ss.bytes, "dense", "attention", "experts", "embedding"),
        dense_weight_bytes=total(ss.bytes, "dense", "attention"),
        expert_bytes_per_layer=per_expert,
        moe_layers=ss.moe_layers,
        num_experts=m.moe.num_experts if m.moe else 0.0,
        experts_per_token=m.moe.experts_per_token if m.moe else 0.0,
        flops_per_token=total(ss.flops, "dense", "attention", held=False) + expert_flops,
        attn_layers=attn_layers,
        attn_flops_per_ctx_token=ATTN_FLOPS_PER_PAIR_DIM * heads_per_gpu * pair_dim * attn_layers,
        attn_scores_per_pair=heads_per_gpu * attn_layers,
        kv_bytes_per_token=token_bytes,
        window=float(m.sliding_window) if m.sliding_window else math.inf,
        sliding_fraction=(kv.sliding_layers / attn_layers) if attn_layers else 0.0,
        layers=ss.layers,
        hidden=m.hidden_size,
        state_tokens_equiv=(state / token_bytes) if token_bytes else 0.0,
        expert_flops_per_token=expert_flops,
        mla=1.0 if m.mla else 0.0,
        dp_attention_ranks=float(tp) if dp_attention else 1.0,
        attn_linear_flops_per_token=total(ss.flops, "attention", held=False),
    )


__all__ = ["SplitSums", "compute_dtype", "is_dequant", "kernel_ratio", "linear_state_bytes_per_layer", "machine",
           "scores_bytes", "shape_from_sums", "split_sums", "stage_shape"]
