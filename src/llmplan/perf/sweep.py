"""A vectorised sweep: every model × accelerator × weight format × TP × concurrency at once.

Per (model, format) the weights are summed once by how they split under tensor
parallelism (sharded, replicated, KV heads, experts); every other dimension is a numpy
axis, so a million configurations cost a few array operations. Pipeline parallelism is 1
and the engine is one profile (its calibration per hardware family), as in `llmplan
estimate`; the result is the same physics, not a shortcut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import Model, QuantFormat
from ..errors import LlmplanError
from ..memory.kv import kv_bytes_per_layer_token
from ..memory.params import layer_plan, tensors
from ..memory.weights import NORM_BITS, gguf_bits, use_more_bits
from ..specs import allreduce_cost, link_bandwidth, select_profile, split_engine, weight_only_kernel
from ..units import GB, TERA
from .efficiency import lookup, model_arch, params_of, table_from_catalog
from .physics import Efficiency, Machine, StageShape
from .scenarios import mixed_step
from .shape import ATTN_FLOPS_PER_PAIR_DIM, FLOPS_PER_PARAM, compute_dtype, is_dequant, peak_tflops

KINDS = ("shard", "replicate", "kv_heads", "experts")


@dataclass(frozen=True)
class SweepResult:
    models: list[str]
    formats: list[str]
    accelerators: list[str]
    tps: np.ndarray
    concurrency: np.ndarray
    tpot_s: np.ndarray  # [model·format, accelerator, tp, concurrency]
    output_tok_s: np.ndarray
    valid: np.ndarray  # TP fits the heads and one server; the format suits the engine

    @property
    def configurations(self) -> int:
        return int(self.tpot_s.size)


def _bits(fmt: QuantFormat, t, layer, m: Model, types) -> float:
    if fmt.gguf_type:
        return gguf_bits(fmt, t, layer, m, types)
    return NORM_BITS if t.group in fmt.keeps_16bit or t.group == "norms" else float(fmt.weight_bits or 16)


def _layer_classes(layers: tuple[int, ...], n: int) -> dict[tuple[bool, bool], list[int]]:
    """Layers grouped by the two facts GGUF mix rules look at: use_more_bits, and first eighth."""
    out: dict[tuple[bool, bool], list[int]] = {}
    for i in layers:
        out.setdefault((use_more_bits(i, n), i < n // 8), []).append(i)
    return out


def _sums(m: Model, fmt: QuantFormat, types) -> tuple[dict[str, float], dict[str, float]]:
    """Bytes and FLOPs per token, by tensor-parallel split kind (the embedding is a lookup: no FLOPs)."""
    by, fl = dict.fromkeys(KINDS, 0.0), dict.fromkeys(KINDS, 0.0)
    k_over_e = m.moe.experts_per_token / m.moe.num_experts if m.moe else 0.0
    for t in tensors(m):
        kind = "experts" if t.group == "experts" else t.tp
        if t.layers and fmt.gguf_type:
            bits = sum(len(ls) * _bits(fmt, t, ls[0], m, types)
                       for ls in _layer_classes(t.layers, m.num_layers).values())
        else:
            bits = _bits(fmt, t, t.layers[0] if t.layers else None, m, types) * max(1, len(t.layers))
        if t.group == "embedding":
            continue  # a lookup: neither read whole per step nor multiplied
        by[kind] += t.params_per_layer * bits / 8
        fl[kind] += FLOPS_PER_PARAM * t.params * (k_over_e if kind == "experts" else 1)
    return by, fl


def sweep(cat: Catalog, engine: str = "vllm", formats: list[str] | None = None, tps=(1, 2, 4, 8),
          concurrency=(1, 2, 4, 8, 16, 32, 64, 128), input_tokens: int = 1000, output_tokens: int = 200) -> SweepResult:
    base, version = split_engine(engine)
    eng, _ = select_profile(cat.engine(base), version)
    fmt_ids = formats or [f.id for f in cat.quant_formats if not eng.formats or f.id in eng.formats]
    fmts = [cat.quant_format(f) for f in fmt_ids]
    types = {g.id: g for g in cat.gguf_types}
    accs = list(cat.accelerators)
    models = list(cat.models)
    tp = np.asarray(tps, dtype=float)
    conc = np.asarray(concurrency, dtype=float)

    rows = []  # one per (model, format)
    for m in models:
        plan = layer_plan(m)
        n_attn = len(plan.full_layers) + len(plan.sliding_layers)
        kv_layer = kv_bytes_per_layer_token(m, 2.0)
        pair_dim = (2 * m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) / 2 if m.mla else m.head_dim
        for f in fmts:
            by, fl = _sums(m, f, types)
            rows.append((m, f, by, fl, n_attn, kv_layer, pair_dim))
    n_mf = len(rows)

    def col(fn) -> np.ndarray:
        return np.array([fn(r) for r in rows], dtype=float)[:, None, None, None]

    kvh = col(lambda r: r[0].num_kv_heads)
    mla = col(lambda r: 1.0 if r[0].mla else 0.0)
    t4 = tp[None, None, :, None]
    shape = _stage_shapes(rows, t4)
    # hardware axis: peak for each (format, accelerator), bandwidth, link, calibration per family
    peak = np.array([[peak_tflops(a, compute_dtype(r[1], a)) * TERA for a in accs] for r in rows])[:, :, None, None]
    bw = np.array([a.memory_bandwidth_gb_s * GB for a in accs])[None, :, None, None]
    link = np.array([(a.interconnect.bandwidth_gb_s or 1.0) * GB for a in accs])[None, :, None, None]
    table = table_from_catalog(cat)
    cal = [[params_of(lookup(table, eng.id, a.family, model_arch(r[0]))[0]) for a in accs] for r in rows]

    def hw(name: str) -> np.ndarray:
        return np.array([[c[name] for c in cr] for cr in cal])[:, :, None, None]

    e = Efficiency(eta_bw=hw("eta_bw"), eta_flops=hw("eta_flops"), step_overhead_s=hw("step_overhead_s"),
                   eta_moe=hw("eta_moe"), eta_kernel=hw("eta_kernel"))
    weight_only = np.array([[1.0 if is_dequant(r[1], compute_dtype(r[1], a)) else 0.0 for a in accs]
                            for r in rows])[:, :, None, None]
    ratio = np.array([[_kernel_ratio(eng, r[1], a, cat) for a in accs] for r in rows])[:, :, None, None]
    ar = _allreduce_arrays(eng, accs, tp, cat)
    mixed = np.array([1.0 if _mixes(eng, r[0]) else 0.0 for r in rows])[:, None, None, None]
    mach = Machine(peak_flops=peak, bandwidth=bw, link_bandwidth=link, tp=t4, pp=1.0, ar_latency_s=ar[0],
                   ar_bus_bw=ar[1], ar_custom_latency_s=ar[2], ar_custom_bus_bw=ar[3], flops_ratio=ratio,
                   weight_only=weight_only, mixed_prefill=mixed)
    c4 = conc[None, None, None, :]
    step = mixed_step(shape, mach, e, c4, float(input_tokens), float(output_tokens))
    tpot = np.broadcast_to(step.total, (n_mf, len(accs), len(tp), len(conc)))
    heads = col(lambda r: r[0].num_attention_heads)
    ok_tp = (heads % t4 == 0) & ((mla > 0) | (kvh % t4 == 0) | (t4 % kvh == 0))
    max_tp = np.array([max(a.max_per_server or 1, a.interconnect.domain_size or 1) for a in accs])[None, :, None, None]
    valid = np.broadcast_to(ok_tp & (t4 <= max_tp) & np.isfinite(peak), tpot.shape) & np.isfinite(tpot)
    return SweepResult([r[0].id for r in rows], [r[1].id for r in rows], [a.id for a in accs], tp, conc, tpot,
                       c4 / tpot, valid)


def _stage_shapes(rows: list[tuple], t4: np.ndarray) -> StageShape:
    """The model axis: what one GPU holds and does per token, for each (model, format) row × TP size."""

    def col(fn) -> np.ndarray:
        return np.array([fn(r) for r in rows], dtype=float)[:, None, None, None]

    kvh = col(lambda r: r[0].num_kv_heads)
    mla = col(lambda r: 1.0 if r[0].mla else 0.0)
    kv_share = np.where((mla > 0) | (t4 == 1), 1.0, np.ceil(kvh / t4) / kvh)
    dense = col(lambda r: r[2]["shard"]) / t4 + col(lambda r: r[2]["replicate"]) + col(lambda r: r[2]["kv_heads"]) * \
        np.where(t4 == 1, 1.0, np.ceil(kvh / t4) / kvh)
    experts_total = col(lambda r: r[2]["experts"]) / t4
    moe_layers = col(lambda r: len(layer_plan(r[0]).moe_layers))
    n_exp = col(lambda r: r[0].moe.num_experts if r[0].moe else 0)
    flops = (col(lambda r: r[3]["shard"] + r[3]["experts"]) / t4 + col(lambda r: r[3]["replicate"])
             + col(lambda r: r[3]["kv_heads"]) * kv_share)
    expert_flops = col(lambda r: r[3]["experts"]) / t4
    attn_layers = col(lambda r: r[4])
    shape = StageShape(
        weight_bytes=dense + experts_total, dense_weight_bytes=dense,  # embedding excluded (a lookup)
        expert_bytes_per_layer=np.where(n_exp > 0, experts_total / np.maximum(moe_layers * n_exp, 1), 0.0),
        moe_layers=moe_layers, num_experts=n_exp, experts_per_token=col(lambda r: r[0].moe.experts_per_token
                                                                           if r[0].moe else 0),
        flops_per_token=flops,
        attn_layers=attn_layers,
        attn_flops_per_ctx_token=ATTN_FLOPS_PER_PAIR_DIM * col(lambda r: r[0].num_attention_heads) / t4
        * col(lambda r: r[6]) * attn_layers,
        kv_bytes_per_token=col(lambda r: r[5]) * kv_share * attn_layers,
        window=col(lambda r: r[0].sliding_window or math.inf),
        sliding_fraction=col(lambda r: (r[0].num_sliding_window_layers / r[4]) if r[4] else 0.0),
        layers=col(lambda r: r[0].num_layers), hidden=col(lambda r: r[0].hidden_size),
        expert_flops_per_token=expert_flops,
    )
    return shape


def _kernel_ratio(eng, fmt: QuantFormat, acc, cat: Catalog) -> float:
    if not is_dequant(fmt, compute_dtype(fmt, acc)):
        return 1.0
    k = weight_only_kernel(eng, fmt, acc, cat)
    return k.prefill_compute_ratio if k else math.nan  # nan: no kernel figure, the configuration is not valid


def _allreduce_arrays(eng, accs, tp: np.ndarray, cat: Catalog) -> list[np.ndarray]:
    """Measured all-reduce parameters per (accelerator, TP): library latency and busbw, custom
    kernel latency and busbw; NaN where the catalog has no figure (the configuration is then
    not valid)."""
    out = np.zeros((4, len(accs), len(tp)))
    for i, a in enumerate(accs):
        link = link_bandwidth(a, cat)[0]
        for j, t in enumerate(tp):
            try:
                c, _ = allreduce_cost(a, int(t), eng, cat, link)
            except LlmplanError:
                out[:, i, j] = math.nan
                continue
            out[:, i, j] = (c.latency_s, c.bus_bw, c.custom_latency_s, c.custom_bus_bw) if c else (0, math.inf,
                                                                                                  math.inf, math.inf)
    return [x[None, :, :, None] for x in out]


def _mixes(eng, m: Model) -> bool:
    """Whether prompts share steps with decodes for this model (vLLM V0's long-context rule)."""
    d = eng.defaults
    chunked = m.max_context > d.long_context.above_tokens if d.long_context else d.chunked_prefill
    return chunked or eng.execution.mixes_unchunked_prefill
