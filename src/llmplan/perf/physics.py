"""Step times from first principles: the roofline of each phase plus communication and
per-step engine overhead. Every function works on floats or numpy arrays (broadcasting),
so the same code serves one estimate and a sweep of 100,000 configurations.

One engine *step* processes ``decode_tokens`` tokens of running sequences (one each) and
``prefill_tokens`` new prompt tokens (chunked prefill). Its time on one pipeline stage is::

    linear    = max(weights touched / (bandwidth × eta_bw),
                    2 × active params × tokens / (peak × kernel ratio × eta_flops))
    attention = max(KV read / (bandwidth × eta_bw), attention FLOPs / (attention peak × eta_flops))
    t_comm    = 2 all-reduces per layer × min(library, engine's custom kernel), each
                latency + 2 (TP−1)/TP × tokens × hidden × 2 B / busbw    (measured, collectives catalog)
    t_scores  = bytes per attention score × heads × (query, key) pairs / (bandwidth × eta_bw)
                (0 where a fused kernel keeps the scores on chip: FlashAttention-class engines)
    t_act     = activation passes × tokens × hidden × layers × 2 B / (bandwidth × eta_bw)
                (the hidden-state traffic of the kernels between the GEMMs: norms, residual adds,
                rotary, activation functions, GEMM inputs and outputs; fitted per engine, fewer
                passes where it fuses more)
    t_step    = linear + attention + t_scores + t_act + t_comm + overhead

``peak`` is the chip's measured achievable matmul rate in the GEMMs' data type (perf/shape.py); attention's
math runs on the KV cache's values, in 16 bit or, where FP8/FP4 GEMMs run over an FP8 cache, FP8 (never at an
FP4 or weight-only GEMM's rate), so it has a peak of its own (``Machine.attn_peak_flops``).

The linear layers (GEMMs over the weights) and attention (over each sequence's KV cache) are
kernels that run one after the other, each bound by its own resource: a large decode batch
makes the GEMMs compute-bound while its attention still streams the KV cache from memory,
and the two times add (a single ``max(all bytes / bandwidth, all FLOPs / peak)`` would let the
KV reads hide under the GEMMs' arithmetic). With ``eta ≤ 1``, the kernel ratio (weight-only
GEMMs: compute-bound rate relative to 16-bit, kernels catalog) ≤ 1.2 and ``overhead ≥ 0``, no
step is ever faster than the roofline ``max(bytes / bandwidth, FLOPs / peak)``. Pipeline
parallelism runs the stages one after another for a token (latency adds up); tensor
parallelism divides the work per GPU. An engine that does not mix prompts into decode steps
(vLLM V0 without chunked prefill) runs them as steps of their own: the two times add instead
of overlapping.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..units import Arr

ACT_BYTES = 2  # activations exchanged between GPUs in bf16/fp16


@dataclass(frozen=True)
class StageShape:
    """What one GPU of one pipeline stage holds and does, per token (float or array fields)."""

    weight_bytes: Arr  # all weights the GPU holds (dense + every expert)
    dense_weight_bytes: Arr  # weights read for every token (attention, dense MLP, shared experts, head)
    expert_bytes_per_layer: Arr  # one routed expert of one MoE layer, on this GPU
    moe_layers: Arr  # MoE layers on the stage
    num_experts: Arr  # routed experts per MoE layer (0 for dense models)
    experts_per_token: Arr
    flops_per_token: Arr  # 2 × active linear parameters on this GPU
    attn_layers: Arr  # attention layers on the stage (full + sliding)
    attn_flops_per_ctx_token: Arr  # 4 × heads/TP × head dim × attention layers: FLOPs per (query, key) pair
    attn_scores_per_pair: Arr  # heads/TP × attention layers: attention scores per (query, key) pair on this GPU
    kv_bytes_per_token: Arr  # KV cache bytes per context token on this GPU (all its layers)
    window: Arr  # sliding-window length for sliding layers (inf when none)
    sliding_fraction: Arr  # share of the stage's attention layers that are sliding
    layers: Arr  # decoder layers on the stage
    hidden: Arr
    state_tokens_equiv: Arr = 0.0  # linear-attention state per sequence, in KV-token equivalents
    expert_flops_per_token: Arr = 0.0  # the routed experts' share of flops_per_token
    mla: Arr = 0.0  # 1 for multi-head latent attention (DeepSeek-style): the calibration's architecture class
    # data-parallel attention: the TP size (1: attention split by heads). The batch's sequences spread over the
    # GPUs, but a prompt's attention runs whole on the one GPU that holds its sequence: the step waits for it
    dp_attention_ranks: Arr = 1.0
    attn_linear_flops_per_token: Arr = 0.0  # attention projections' share of flops_per_token (1/TP of a token's)


@dataclass(frozen=True)
class Machine:
    peak_flops: Arr  # FLOP/s of the format's compute data type
    bandwidth: Arr  # B/s
    link_bandwidth: Arr  # B/s per direction, scale-up link (PCIe for cards without one); datasheet, for display
    tp: Arr
    pp: Arr
    ar_latency_s: Arr = 0.0  # one small all-reduce on the TP group, library (measured)
    ar_bus_bw: Arr = math.inf  # all-reduce bus bandwidth, B/s (nccl-tests busbw)
    ar_custom_latency_s: Arr = math.inf  # the engine's own one-shot all-reduce, where it has one
    ar_custom_bus_bw: Arr = math.inf
    flops_ratio: Arr = 1.0  # weight-only GEMM kernel: compute-bound rate / 16-bit rate (1: native formats)
    weight_only: Arr = 0.0  # 1 when the weights are dequantized for 16-bit math (a weight-only kernel runs)
    mixed_prefill: Arr = 1.0  # 1: prompt tokens share steps with decodes; 0: prompts run in steps of their own
    scores_bytes: Arr = 0.0  # bytes each attention score moves through memory where the engine does not fuse
    # attention (engines catalog unfused_attention_bytes); 0: a fused kernel keeps the scores on chip
    attn_peak_flops: Arr = 0.0  # FLOP/s of attention's math (perf/shape.py attention_dtype); 0: the GEMMs' peak


@dataclass(frozen=True)
class Efficiency:
    """Calibrated factors (per engine × hardware family × architecture class)."""

    eta_bw: Arr  # achieved / peak memory bandwidth, ≤ 1
    eta_flops: Arr  # achieved / peak FLOP/s, ≤ 1
    step_overhead_s: Arr  # per engine step (scheduling, kernel launches, sampling), ≥ 0
    request_overhead_s: Arr = 0.0  # per request before its first token (API, tokenizer, admission), ≥ 0
    eta_moe: Arr = 1.0  # routed-expert kernels (grouped GEMMs, routing, token shuffles) relative to dense, ≤ 1
    eta_kernel: Arr = 1.0  # weight-only kernels' achieved rate relative to their catalog ratio (engine-level fit)
    activation_passes: Arr = 0.0  # hidden-size 16-bit vectors each token reads or writes per layer between GEMMs


def experts_touched(num_experts, experts_per_token, tokens):
    """Expected distinct experts per MoE layer hit by `tokens` tokens routing top-k of E:
    ``E × (1 − (1 − k/E)^tokens)`` (0 for dense models)."""
    e = np.asarray(num_experts, dtype=float)
    safe_e = np.where(e > 0, e, 1.0)
    frac = 1.0 - np.power(1.0 - np.asarray(experts_per_token, dtype=float) / safe_e, tokens)
    return np.where(e > 0, e * frac, 0.0)


def weight_bytes_touched(s: StageShape, tokens, eta_moe=1.0):
    """Weight bytes one GPU reads in a step of `tokens` tokens: the dense weights once, and the routed
    experts the tokens hit. Expert bytes count at 1/eta_moe (MoE kernels relative to dense ones)."""
    experts = experts_touched(s.num_experts, s.experts_per_token, tokens) * s.moe_layers * s.expert_bytes_per_layer
    return s.dense_weight_bytes + experts / eta_moe


def attended(context, window, sliding_fraction):
    """Keys each query attends to, averaged over full and sliding layers."""
    return (1 - sliding_fraction) * context + sliding_fraction * np.minimum(context, window)


def step_flops_split(s: StageShape, decode_tokens, decode_context, prefill_tokens, prefill_context, eta_moe=1.0):
    """FLOPs of a step as (linear layers, attention): the linear layers for every token, attention per
    (query, key) pair. Prefill queries attend on average to half their prompt plus what precedes it.
    Expert FLOPs count at 1/eta_moe. Data-parallel attention's imbalance adds to each its share."""
    per_token = s.flops_per_token + s.expert_flops_per_token * (1 / eta_moe - 1)
    linear = per_token * (decode_tokens + prefill_tokens)
    attn = s.attn_flops_per_ctx_token * (
        decode_tokens * attended(decode_context, s.window, s.sliding_fraction)
        + prefill_tokens * attended(prefill_context, s.window, s.sliding_fraction))
    if not _dp_attention(s):
        return linear, attn
    p_lin, p_attn = prompt_imbalance_flops(s, prefill_tokens, prefill_context)
    d_lin, d_attn = decode_imbalance_flops(s, decode_tokens, decode_context)
    return linear + p_lin + d_lin, attn + p_attn + d_attn


def _dp_attention(s: StageShape) -> bool:
    """Whether attention runs data-parallel anywhere in `s` (a float on the common path: no array test)."""
    r = s.dp_attention_ranks
    return r > 1 if isinstance(r, (int, float)) else bool(np.any(np.asarray(r) > 1))


def imbalance(ranks, prefill_tokens, prompt_tokens):
    """Data-parallel attention: the busiest GPU's share of a step's prompt attention over the average share. A
    prompt runs whole on the GPU that holds its sequence and the GPUs wait for each other at every layer, so
    with k = prefill / prompt prompts in the step the busiest carries max(one prompt, prefill / TP):
    ``min(TP, max(1, TP × prompt / prefill))`` (1 without data-parallel attention)."""
    r = np.asarray(ranks, dtype=float)
    p = np.maximum(np.asarray(prefill_tokens, dtype=float), 1e-9)
    return np.where(r > 1, np.minimum(r, np.maximum(1.0, r * np.asarray(prompt_tokens, dtype=float) / p)), 1.0)


def prompt_imbalance_flops(s: StageShape, prefill_tokens, prefill_context):
    """The extra FLOPs of the busiest GPU where attention runs data-parallel (:func:`imbalance`; the prompt's
    length is twice the context its queries attend to on average), as (attention projections, attention
    itself); (0, 0) without."""
    if not _dp_attention(s):
        return 0.0, 0.0
    ctx = attended(prefill_context, s.window, s.sliding_fraction)
    extra = imbalance(s.dp_attention_ranks, prefill_tokens, np.minimum(2 * np.asarray(prefill_context), prefill_tokens)
                      ) - 1
    return (extra * s.attn_linear_flops_per_token * prefill_tokens,
            extra * s.attn_flops_per_ctx_token * prefill_tokens * ctx)


def decode_imbalance(s: StageShape, decode_tokens):
    """Data-parallel attention in a decode step: a sequence's attention (its projections, KV read and scores) runs
    on the one GPU that holds it, so with fewer sequences than GPUs the busiest carries a whole one where the
    average is decode / TP: :func:`imbalance` with one-token prompts, ``min(TP, max(1, TP / decode))``; 1 without
    data-parallel attention."""
    return imbalance(s.dp_attention_ranks, decode_tokens, 1.0)


def decode_imbalance_flops(s: StageShape, decode_tokens, decode_context):
    """The extra FLOPs of the busiest GPU's decode attention where attention runs data-parallel
    (:func:`decode_imbalance`), as (attention projections, attention itself); (0, 0) without."""
    if not _dp_attention(s):
        return 0.0, 0.0
    extra = decode_imbalance(s, decode_tokens) - 1
    return (extra * decode_tokens * s.attn_linear_flops_per_token,
            extra * decode_tokens * s.attn_flops_per_ctx_token * attended(decode_context, s.window, s.sliding_fraction))


def scores_time(s: StageShape, m: Machine, e: Efficiency, decode_tokens, decode_context, prefill_tokens,
                prefill_context):
    """Attention that is not fused (llama.cpp without flash attention): the scores of every (query, key) pair and
    head are written to memory and read back by the softmax and the value product, `m.scores_bytes` each, a
    memory-bound pass of its own after the step's other kernels. 0 where the engine fuses attention."""
    pairs = (decode_tokens * attended(decode_context, s.window, s.sliding_fraction)
             + prefill_tokens * attended(prefill_context, s.window, s.sliding_fraction))
    return m.scores_bytes * s.attn_scores_per_pair * pairs / (m.bandwidth * e.eta_bw)


def allreduce_s(m: Machine, nbytes):
    """One all-reduce of `nbytes` on the TP group: the faster of the library and the engine's
    custom kernel, each ``latency + nbytes × 2 (TP−1)/TP / busbw`` (nccl-tests' busbw)."""
    tp = np.asarray(m.tp, dtype=float)
    f = 2 * (tp - 1) / tp
    lib = m.ar_latency_s + nbytes * f / m.ar_bus_bw
    custom = m.ar_custom_latency_s + nbytes * f / m.ar_custom_bus_bw
    return np.minimum(lib, custom)


def activation_time(s: StageShape, m: Machine, e: Efficiency, tokens):
    """The memory-bound kernels between the GEMMs (norms, residual adds, rotary, activation functions, the
    GEMMs' inputs and outputs): `activation_passes` hidden-size 16-bit vectors per token and layer, read or
    written at the achieved bandwidth. The count is fitted per engine (a fusing engine makes fewer passes)."""
    act_bytes = np.asarray(e.activation_passes) * np.asarray(tokens, dtype=float) * s.hidden * ACT_BYTES * s.layers
    return act_bytes / (m.bandwidth * e.eta_bw)


def comm_time(s: StageShape, m: Machine, tokens):
    """Tensor-parallel all-reduces: two per layer (after attention and after the MLP)."""
    tp = np.asarray(m.tp, dtype=float)
    return np.where(tp > 1, 2 * s.layers * allreduce_s(m, np.asarray(tokens, dtype=float) * s.hidden * ACT_BYTES),
                    0.0)


@dataclass(frozen=True)
class StepTime:
    total: Arr
    memory: Arr
    compute: Arr
    comm: Arr
    overhead: Arr
    floor: Arr = 0.0  # the roofline of the step's work: max(bytes / bandwidth, FLOPs / rate) of each pass
    memory_bound: Arr = 0.0  # the part of the step spent in memory-bound kernels (the rest of its busy time: compute)


def flops_rate(m: Machine, e: Efficiency):
    """Achieved FLOP/s: peak × efficiency, for weight-only formats also × the kernel's ratio to
    16-bit (catalog) × its fitted efficiency; never above the peak."""
    kernel = np.where(np.asarray(m.weight_only) > 0.5, m.flops_ratio * np.asarray(e.eta_kernel), 1.0)
    return m.peak_flops * np.minimum(e.eta_flops * kernel, 1.0)


def attention_rate(m: Machine, e: Efficiency):
    """Achieved FLOP/s of attention's math: its own peak (attention runs on the KV cache's 16-bit or FP8 values,
    not at an FP4 or weight-only GEMM's rate) × eta_flops; the GEMMs' rate where the machine gives none."""
    own = np.asarray(m.attn_peak_flops, dtype=float)
    return np.where(own > 0, own * np.minimum(e.eta_flops, 1.0), flops_rate(m, e))


def _one_pass(s: StageShape, m: Machine, e: Efficiency, decode_tokens, decode_context, prefill_tokens,
              prefill_context):
    """A step's (memory time, compute time, busy time, memory-bound part of the busy time, all-reduce time) on one
    GPU: the busy time is the linear layers' roofline plus attention's (module docstring), plus the memory-bound
    passes of their own (unfused attention's scores, the activations between the GEMMs), which count as memory
    time only (the compute time is the FLOPs alone)."""
    kv_read = decode_tokens * (decode_context + s.state_tokens_equiv)  # the busiest GPU's, under DP attention
    if _dp_attention(s):
        kv_read = kv_read * decode_imbalance(s, decode_tokens)
    bw, rate = m.bandwidth * e.eta_bw, flops_rate(m, e)
    lin_mem = weight_bytes_touched(s, decode_tokens + prefill_tokens, e.eta_moe) / bw
    att_mem = kv_read * s.kv_bytes_per_token / bw
    lin_flops, att_flops = step_flops_split(s, decode_tokens, decode_context, prefill_tokens, prefill_context,
                                            e.eta_moe)
    lin_cmp, att_cmp = lin_flops / rate, att_flops / attention_rate(m, e)
    # memory-bound passes of their own: unfused attention's scores, the activations between the GEMMs
    passes = (scores_time(s, m, e, decode_tokens, decode_context, prefill_tokens, prefill_context)
              + activation_time(s, m, e, decode_tokens + prefill_tokens))
    busy = np.maximum(lin_mem, lin_cmp) + np.maximum(att_mem, att_cmp) + passes
    by_memory = np.where(lin_mem >= lin_cmp, lin_mem, 0.0) + np.where(att_mem >= att_cmp, att_mem, 0.0) + passes
    return (lin_mem + att_mem + passes, lin_cmp + att_cmp, busy, by_memory,
            comm_time(s, m, decode_tokens + prefill_tokens))


def stage_time(s: StageShape, m: Machine, e: Efficiency, decode_tokens, decode_context, prefill_tokens,
               prefill_context) -> StepTime:
    """One pipeline stage processing one microbatch: memory, compute, communication. Where the
    engine keeps prompts out of decode steps (``mixed_prefill`` 0), the decode pass and the
    prompt pass run one after the other."""
    mem, cmp, busy, by_mem, comm = _one_pass(s, m, e, decode_tokens, decode_context, prefill_tokens, prefill_context)
    mixed = busy + comm
    apart = _apart(m, decode_tokens, prefill_tokens)
    if not np.any(apart):
        return StepTime(total=mixed, memory=mem, compute=cmp, comm=comm, overhead=0 * mem, floor=np.maximum(mem, cmp),
                        memory_bound=by_mem)
    d_mem, d_cmp, d_busy, d_by_mem, d_comm = _one_pass(s, m, e, decode_tokens, decode_context, 0.0, 0.0)
    lump, share = _prompt_steps(m, decode_tokens, prefill_tokens, prefill_context)
    p_mem, p_cmp, p_busy, p_by_mem, p_comm = _one_pass(s, m, e, 0.0, 0.0, lump, prefill_context)
    split = d_busy + d_comm + share * (p_busy + p_comm)
    split_floor = np.maximum(d_mem, d_cmp) + share * np.maximum(p_mem, p_cmp)
    return StepTime(total=np.where(apart, split, mixed), memory=np.where(apart, d_mem + share * p_mem, mem),
                    compute=np.where(apart, d_cmp + share * p_cmp, cmp),
                    comm=np.where(apart, d_comm + share * p_comm, comm), overhead=0 * mem,
                    floor=np.where(apart, split_floor, np.maximum(mem, cmp)),
                    memory_bound=np.where(apart, d_by_mem + share * p_by_mem, by_mem))


def _apart(m: Machine, decode_tokens, prefill_tokens):
    """Steps whose prompt tokens run in a step of their own (the engine does not mix them)."""
    return (np.asarray(m.mixed_prefill) < 0.5) & (np.asarray(prefill_tokens) > 0) & (np.asarray(decode_tokens) > 0)


def _prompt_steps(m: Machine, decode_tokens, prefill_tokens, prefill_context):
    """An engine that keeps prompts out of decode steps runs each prompt whole (its queries
    attend on average to half of it, so it is ``2 × prefill_context`` tokens long): per decode
    step it spends ``prefill_tokens / prompt`` such prompt steps. Returns (prompt, that share)."""
    p = np.asarray(prefill_tokens, dtype=float)
    lump = np.maximum(p, 2 * np.asarray(prefill_context, dtype=float))
    share = np.where(_apart(m, decode_tokens, prefill_tokens), p / np.maximum(lump, 1e-9), 0.0)
    return lump, share


def step_time(s: StageShape, m: Machine, e: Efficiency, decode_tokens, decode_context, prefill_tokens=0.0,
              prefill_context=0.0, microbatches=None, steady=True) -> StepTime:
    """Time of one engine step: every sequence in the batch advances once through all stages.

    The step's tokens run as ``microbatches`` (default: as many as there are pipeline
    stages, at most one per token). In steady state (continuous batching) consecutive steps
    keep the pipeline full, so a step costs ``max(microbatches, PP)`` stage times; a single
    isolated pass (one prompt's prefill) pays the pipeline fill: ``microbatches + PP − 1``.
    """
    pp = np.asarray(m.pp, dtype=float)
    tokens = np.asarray(decode_tokens, dtype=float) + prefill_tokens
    mb = np.clip(tokens, 1.0, np.maximum(pp, 1.0)) if microbatches is None else np.asarray(microbatches, dtype=float)
    st = stage_time(s, m, e, decode_tokens / mb, decode_context, prefill_tokens / mb, prefill_context)
    factor = np.maximum(mb, pp) if steady else mb + pp - 1
    # a prompt kept out of the decode step is a step of its own: one more step overhead
    overhead = e.step_overhead_s * (1 + _prompt_steps(m, decode_tokens, prefill_tokens, prefill_context)[1])
    return StepTime(total=factor * st.total + overhead, memory=factor * st.memory,
                    compute=factor * st.compute, comm=factor * st.comm, overhead=overhead + 0 * st.total,
                    floor=factor * st.floor, memory_bound=factor * st.memory_bound)


def roofline_step(s: StageShape, m: Machine, decode_tokens, decode_context, prefill_tokens=0.0, prefill_context=0.0):
    """The physical floor of a step: ``max(bytes / bandwidth, FLOPs / peak)`` of its work (as if every kernel
    overlapped every other), perfect efficiency, peak-rate kernels, no overhead, no communication, attention
    fused, and the cheaper of the two ways to carry the prompts: overlapping the decodes, or
    whole in steps of their own (which reads an MoE's experts once per prompt instead of in every
    decode step that carries a slice of it)."""
    ideal = Efficiency(eta_bw=1.0, eta_flops=1.0, step_overhead_s=0.0, request_overhead_s=0.0, eta_moe=1.0)
    def floor(arrangement: float):
        mm = dataclasses.replace(m, flops_ratio=1.0, weight_only=0.0, mixed_prefill=arrangement, scores_bytes=0.0)
        return np.asarray(step_time(s, mm, ideal, decode_tokens, decode_context, prefill_tokens, prefill_context).floor)

    return np.minimum(floor(1.0), floor(0.0))
