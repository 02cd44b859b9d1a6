"""Does it fit? Per-GPU memory of a deployment, the KV pool the engine leaves, and what
that pool holds (tokens, sequences, the longest context).

Every GPU of a pipeline stage holds the same share; the answer is the worst stage.
The KV pool depends on how the engine caps its memory (``EngineMemory.cap_mode``):

* ``fraction_of_total`` (vLLM ``gpu_memory_utilization``, SGLang ``mem_fraction_static``):
  ``pool = f × M − (the parts the engine counts inside its fraction)``; the other parts
  must fit in ``(1 − f) × M`` (``EngineMemory.within_fraction`` says which: vLLM counts
  weights, activations and CUDA graphs; SGLang only weights).
* ``fraction_of_free_after_weights`` (TensorRT-LLM):
  ``pool = f × (M − weights − activations − runtime − graphs)``.
* ``exact`` (llama.cpp): ``pool = M − weights − compute buffer − runtime``; the cache
  itself is allocated for exactly ``context × concurrency`` tokens.

``M`` is the memory the runtime sees on one GPU. ``required`` adds the KV the request
needs and what the engine's cap holds back, so ``fits ⇔ required ≤ M``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..catalog.schema import GgufType
from ..specs import Deployment
from ..units import GIB, gib_to_bytes
from .kv import KvLayout, kv_bytes_per_token, kv_layout_per_stage, kv_tp_share
from .runtime import activation_peak_bytes
from .weights import (
    BitsGroup,
    TensorBytes,
    bits_groups,
    bytes_by_group,
    groups_with_engine_copies,
    padding_per_stage,
    tensor_bytes,
    weights_per_stage,
    with_engine_copies,
)


@dataclass(frozen=True)
class EngineSettings:
    memory_fraction: float | None
    block_size: int
    max_num_batched_tokens: int
    max_num_seqs: int


@dataclass(frozen=True)
class StageMemory:
    """One GPU of one pipeline stage, bytes."""

    weights: float
    activations: float
    runtime: float  # CUDA context, non-torch allocations, comm buffers
    cuda_graphs: float
    kv_pool: float
    engine_reserved: float  # what the engine's memory cap leaves unused
    kv: KvLayout


@dataclass(frozen=True)
class FitResult:
    deployment: Deployment
    settings: EngineSettings
    context_tokens: int
    concurrency: int
    weights_bytes: int
    weights_by_group_bytes: dict[str, int]
    kv_cache_bytes_per_token: int
    kv_cache_bytes_per_token_per_gpu: int
    per_gpu_memory_bytes: int
    per_gpu_weights_bytes: int
    per_gpu_activation_bytes: int
    per_gpu_runtime_bytes: int
    per_gpu_cuda_graph_bytes: int
    per_gpu_kv_required_bytes: int
    per_gpu_engine_reserved_bytes: int
    per_gpu_kv_pool_bytes: int
    per_gpu_required_bytes: int
    per_gpu_capacity_bytes: int
    fits: bool
    kv_capacity_tokens: int
    max_concurrency: int
    max_context_tokens: int
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def headroom_bytes(self) -> int:
        return self.per_gpu_capacity_bytes - self.per_gpu_required_bytes


_ENGINE_TB: dict[tuple, tuple] = {}


def _by_identity(kind: str, d: Deployment, gguf_types: tuple[GgufType, ...], compute):
    """Memoised by the identity of the catalog entries (the planner asks thousands of times for a few
    dozen tables; hashing a model, a format and the GGUF types for the cached `tensor_bytes` cost
    more than the look-up). The entry keeps the objects, so their ids cannot be reused meanwhile."""
    first = gguf_types[0] if gguf_types else None
    dup = d.engine.memory.duplicates_tied_embeddings
    key = (kind, id(d.model), id(d.weight_format), d.keeps_16bit, id(first), len(gguf_types), d.unquantized_layers,
           dup)
    hit = _ENGINE_TB.get(key)
    if hit is not None and hit[0] is d.model and hit[1] is d.weight_format and hit[2] is first:
        return hit[3]
    value = compute(dup)
    if len(_ENGINE_TB) >= 4096:
        _ENGINE_TB.clear()
    _ENGINE_TB[key] = (d.model, d.weight_format, first, value)
    return value


def engine_tensor_bytes(d: Deployment, gguf_types: tuple[GgufType, ...]) -> tuple[TensorBytes, ...]:
    """The weights as the engine stores them, one row per (tensor, layer): the format's bytes plus the
    engine's own copies."""
    return _by_identity("rows", d, gguf_types, lambda dup: with_engine_copies(tensor_bytes(
        d.model, d.weight_format, d.keeps_16bit, gguf_types, d.unquantized_layers), d.model, dup))


def engine_bits_groups(d: Deployment, gguf_types: tuple[GgufType, ...]) -> tuple[BitsGroup, ...]:
    """The same weights as :func:`engine_tensor_bytes`, grouped by tensor and width (the speed model's input)."""
    return _by_identity("groups", d, gguf_types, lambda dup: groups_with_engine_copies(bits_groups(
        d.model, d.weight_format, d.keeps_16bit, gguf_types, d.unquantized_layers), d.model, dup))


def usable_memory_bytes(d: Deployment) -> int:
    return gib_to_bytes(d.usable_memory_gib)


def engine_settings(d: Deployment, fraction: float | None, batched: int | None, seqs: int | None,
                    block: int | None, context_tokens: int) -> EngineSettings:
    mem, dfl = d.engine.memory, d.engine.defaults
    default_batched = dfl.max_num_batched_tokens if dfl.chunked_prefill else max(dfl.max_num_batched_tokens,
                                                                                  context_tokens)
    return EngineSettings(
        memory_fraction=fraction if fraction is not None else mem.memory_fraction,
        block_size=block or mem.block_size_tokens,
        max_num_batched_tokens=batched or default_batched,
        max_num_seqs=seqs or dfl.max_num_seqs,
    )


def _stage_memory(d: Deployment, s: EngineSettings, m_bytes: int, weights: float, kv: KvLayout,
                  context_tokens: int, concurrency: int) -> StageMemory:
    mem = d.engine.memory
    lay = d.layout
    if mem.reserves_activations:
        tokens = s.max_num_batched_tokens
    else:  # llama.cpp: compute buffer for one micro-batch
        tokens = min(s.max_num_batched_tokens, context_tokens * concurrency)
    act = activation_peak_bytes(d.model, tokens, s.max_num_seqs, lay.tp)
    context = mem.context_gib * GIB
    comm = mem.comm_buffer_gib * GIB if lay.num_gpus > 1 else 0.0
    graphs = mem.cuda_graph_gib * GIB
    parts = {"weights": weights, "activations": act, "context": context, "cuda_graphs": graphs,
             "comm_buffers": comm}
    f = s.memory_fraction if s.memory_fraction is not None else 1.0
    if mem.cap_mode == "fraction_of_total":
        inside = sum(v for k, v in parts.items() if k in mem.within_fraction)
        pool = f * m_bytes - inside
        reserved = (1 - f) * m_bytes - (sum(parts.values()) - inside)
    elif mem.cap_mode == "fraction_of_free_after_weights":
        free = m_bytes - sum(parts.values())
        pool = f * free
        reserved = (1 - f) * free
    else:  # exact
        pool = m_bytes - sum(parts.values())
        reserved = 0.0
    runtime = context + comm
    return StageMemory(weights, act, runtime, graphs, pool, reserved, kv)


def _max_context(kv: KvLayout, pool: float, limit: int) -> int:
    """Longest single sequence whose KV fits the pool (binary search; sequence bytes grow with length)."""
    if pool <= 0 or kv.sequence_bytes(1) > pool:
        return 0
    if kv.sequence_bytes(limit) <= pool:
        return limit
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if kv.sequence_bytes(mid) <= pool:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _capacity_tokens(kv: KvLayout, pool: float, context: int) -> int:
    if pool <= 0:
        return 0
    if not kv.sliding_layers and not kv.linear_layers:
        per_block = kv.block_size * kv.token_bytes()
        return int(pool // per_block) * kv.block_size if per_block else 0
    return int(pool * context // kv.sequence_bytes(context))


def fit(d: Deployment, gguf_types: tuple[GgufType, ...], context_tokens: int | None = None, concurrency: int = 1,
        memory_fraction: float | None = None, max_num_batched_tokens: int | None = None,
        max_num_seqs: int | None = None, block_size: int | None = None,
        exact_tensor_bytes: tuple[TensorBytes, ...] | None = None) -> FitResult:
    """Memory of deployment `d`; `exact_tensor_bytes` replaces the format's estimate (a GGUF file's own sizes)."""
    m, lay = d.model, d.layout
    context = context_tokens or m.max_context
    s = engine_settings(d, memory_fraction, max_num_batched_tokens, max_num_seqs, block_size, context)
    kv_elem_bytes = d.kv_format.bits / 8
    tb = exact_tensor_bytes or engine_tensor_bytes(d, gguf_types)
    stage_weights = _stage_weights(d, tb)
    stage_kv = kv_layout_per_stage(m, kv_elem_bytes, lay.tp, lay.pp, s.block_size, dp_attention(d))
    m_bytes = usable_memory_bytes(d)
    stages = [_stage_memory(d, s, m_bytes, w, kv, context, concurrency)
              for w, kv in zip(stage_weights, stage_kv, strict=True)]

    # with data-parallel attention a sequence lives on one GPU whole (its layout holds 1/TP of each on
    # average): the busiest GPU holds ceil(concurrency / TP) of them
    ranks = lay.tp if dp_attention(d) else 1
    kv_needed = [st.kv.sequence_bytes(context) * ranks * math.ceil(concurrency / ranks) for st in stages]
    required = [st.weights + st.activations + st.runtime + st.cuda_graphs + max(st.engine_reserved, 0.0) + need
                for st, need in zip(stages, kv_needed, strict=True)]
    worst = max(range(len(stages)), key=lambda i: (required[i] - m_bytes, -stages[i].kv_pool))
    st = stages[worst]
    capacity_tokens = min(_capacity_tokens(x.kv, x.kv_pool, context) for x in stages)
    max_conc = min(int(x.kv_pool // (x.kv.sequence_bytes(context) * ranks)) * ranks if x.kv_pool > 0 else 0
                   for x in stages)
    max_ctx = min(_max_context(x.kv, x.kv_pool / ranks, m.max_context) for x in stages)

    reasons: list[str] = []
    if st.kv_pool <= 0:
        reasons.append(f"no memory left for the KV cache: weights, activations and runtime take "
                       f"{(st.weights + st.activations + st.runtime) / GIB:.1f} GiB of the "
                       f"{_budget_text(d, s, m_bytes)} per GPU")
    elif kv_needed[worst] > st.kv_pool:
        reasons.append(f"the KV cache for {concurrency} × {context:,} tokens needs {kv_needed[worst] / GIB:.2f} GiB "
                       f"per GPU but {st.kv_pool / GIB:.2f} GiB is free for it "
                       f"(at most {max_conc} sequences of that length, or one of {max_ctx:,} tokens)")
    if st.engine_reserved < 0:
        reasons.append(f"activations, runtime and CUDA graphs need {-st.engine_reserved / GIB:.2f} GiB more than "
                       f"{d.engine.id} leaves outside its memory fraction ({s.memory_fraction}); lower "
                       f"{d.engine.memory.memory_fraction_flag or 'the memory fraction'}")
    if context > m.max_context:
        reasons.append(f"context {context:,} exceeds the {m.max_context:,}-token maximum of {m.id}")
    by_group = {k: int(round(v)) for k, v in bytes_by_group(tb).items()}
    parts = {
        "per_gpu_weights_bytes": int(round(st.weights)),
        "per_gpu_activation_bytes": int(round(st.activations)),
        "per_gpu_runtime_bytes": int(round(st.runtime)),
        "per_gpu_cuda_graph_bytes": int(round(st.cuda_graphs)),
        "per_gpu_kv_required_bytes": int(round(kv_needed[worst])),
        "per_gpu_engine_reserved_bytes": int(round(max(st.engine_reserved, 0.0))),
    }
    per_token = kv_bytes_per_token(m, kv_elem_bytes)
    return FitResult(
        deployment=d,
        settings=s,
        context_tokens=context,
        concurrency=concurrency,
        weights_bytes=sum(by_group.values()),
        weights_by_group_bytes=by_group,
        kv_cache_bytes_per_token=int(round(per_token)),
        kv_cache_bytes_per_token_per_gpu=int(round(st.kv.token_bytes())),
        per_gpu_memory_bytes=gib_to_bytes(d.accelerator.memory_gib),
        **parts,
        per_gpu_kv_pool_bytes=int(round(max(st.kv_pool, 0.0))),
        per_gpu_required_bytes=sum(parts.values()),  # the breakdown adds up to the total, to the byte
        per_gpu_capacity_bytes=m_bytes,
        fits=not reasons,
        kv_capacity_tokens=capacity_tokens,
        max_concurrency=max_conc,
        max_context_tokens=max_ctx,
        reasons=reasons,
        notes=_layout_notes(d),
    )


def dp_attention(d: Deployment) -> bool:
    """Attention runs data-parallel across the TP group (the engine's execution, or as the deployment asked)."""
    return d.engine.execution.dp_attention and d.layout.tp > 1


def _stage_weights(d: Deployment, tb: tuple[TensorBytes, ...]) -> list[float]:
    """Weight bytes per GPU of each pipeline stage, with the engine's FP8 row padding where it applies."""
    m, lay = d.model, d.layout
    stage_weights = weights_per_stage(tb, m, lay.tp, lay.pp, lay.ep, dp_attention(d))
    pad = d.engine.memory.fp8_weight_padding
    if pad and d.weight_format.id == "fp8" and d.accelerator.family in pad.families and (
            (d.quant_method or pad.quant_methods[0]) in pad.quant_methods):
        extra = padding_per_stage(tb, m, lay.tp, lay.pp, pad.bytes_per_row, pad.row_bytes_multiple)
        stage_weights = [w + e for w, e in zip(stage_weights, extra, strict=True)]
    return stage_weights


def _layout_notes(d: Deployment) -> list[str]:
    """What the layout does to memory that the numbers alone do not say."""
    m, lay = d.model, d.layout
    notes: list[str] = []
    if d.usable_memory_basis != "catalog":
        notes.append(f"usable memory per GPU {d.usable_memory_gib:.2f} GiB: {d.usable_memory_basis}")
    if dp_attention(d):
        notes.append(f"data-parallel attention ({d.engine.execution.dp_attention_option}): each of the {lay.tp} GPUs "
                     f"runs every attention head for its own 1/{lay.tp} of the sequences and holds only their KV "
                     "cache; the attention weights are whole on every GPU"
                     + ("" if m.mla or lay.tp > m.num_kv_heads else
                        f" (it holds no less KV here: TP {lay.tp} already splits the {m.num_kv_heads} KV heads)"))
    elif m.mla and lay.tp > 1:
        notes.append("MLA keeps one latent KV per token on every TP rank (replicated, not split)")
    elif not m.mla and lay.tp > m.num_kv_heads:
        notes.append(f"{m.num_kv_heads} KV heads on {lay.tp} TP ranks: each rank keeps one head (replicated)")
    if m.sliding_window and m.num_sliding_window_layers:
        notes.append(f"{m.num_sliding_window_layers} of {m.num_layers} layers keep at most the "
                     f"{m.sliding_window:,}-token window")
    return notes


def _budget_text(d: Deployment, s: EngineSettings, m_bytes: int) -> str:
    if s.memory_fraction is not None and d.engine.memory.cap_mode == "fraction_of_total":
        return f"{s.memory_fraction * m_bytes / GIB:.1f} GiB budget ({s.memory_fraction:g} × {m_bytes / GIB:.1f} GiB)"
    return f"{m_bytes / GIB:.1f} GiB"


__all__ = ["FitResult", "EngineSettings", "dp_attention", "fit", "kv_tp_share", "usable_memory_bytes"]
