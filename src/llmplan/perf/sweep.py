"""A vectorised sweep: every model × accelerator × weight format × TP × concurrency at once.

Per (model, format) the weights are summed once by how they split under tensor
parallelism (perf/shape.py's split_sums, the same derivation as a single estimate) and the
stage shape is taken for each TP size (shape_from_sums); every other dimension is a numpy
axis, so a million configurations cost a few array operations. Pipeline parallelism is 1
and the engine is one profile (its calibration per hardware family), as in `llmplan
estimate`; the result is the same physics, not a shortcut (tests/test_perf.py checks equality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import Model, QuantFormat
from ..errors import LlmplanError
from ..memory.kv import kv_layout_per_stage
from ..memory.weights import bits_groups, groups_with_engine_copies
from ..specs import (
    allreduce_cost,
    default_kv_name,
    link_bandwidth,
    select_profile,
    split_engine,
    weight_only_kernel,
)
from ..units import GB, TERA
from .efficiency import lookup, model_arch, params_of, table_from_catalog
from .physics import Efficiency, Machine, StageShape
from .scenarios import closed_prompts, mixed_step
from .shape import attention_dtype, compute_dtype, is_dequant, peak_tflops, scores_bytes, shape_from_sums, split_sums


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


def sweep(cat: Catalog, engine: str = "vllm", formats: list[str] | None = None, tps=(1, 2, 4, 8),
          concurrency=(1, 2, 4, 8, 16, 32, 64, 128), input_tokens: int = 1000, output_tokens: int = 200) -> SweepResult:
    base, version = split_engine(engine)
    eng, _ = select_profile(cat.engine(base), version)
    fmt_ids = formats or [f.id for f in cat.quant_formats if not eng.formats or f.id in eng.formats]
    fmts = [cat.quant_format(f) for f in fmt_ids]
    types = tuple(cat.gguf_types)
    accs = list(cat.accelerators)
    models = list(cat.models)
    tp = np.asarray(tps, dtype=float)
    conc = np.asarray(concurrency, dtype=float)

    rows = []  # one per (model, format): the weights summed by how they split, then the shape per TP size
    dup = eng.memory.duplicates_tied_embeddings
    for m in models:
        one_stage = [range(m.num_layers)]
        for f in fmts:
            kv_bytes = cat.kv_format(default_kv_name(f)).bits / 8  # the engine's default KV cache
            kvs = [kv_layout_per_stage(m, kv_bytes, int(t), 1, 1)[0] for t in tp]
            groups = groups_with_engine_copies(bits_groups(m, f, None, types, ()), m, dup)
            ss = split_sums(groups, one_stage, 0)
            rows.append((m, f, [shape_from_sums(m, ss, int(t), 1, kv) for t, kv in zip(tp, kvs, strict=True)]))
    n_mf = len(rows)

    def col(fn) -> np.ndarray:
        return np.array([fn(r) for r in rows], dtype=float)[:, None, None, None]

    kvh = col(lambda r: r[0].num_kv_heads)
    mla = col(lambda r: 1.0 if r[0].mla else 0.0)
    t4 = tp[None, None, :, None]
    shape = _stage_shapes(rows)
    # hardware axis: peak, weight-only kernels for each (format, accelerator), computed once per format and
    # indexed by each row's format; bandwidth, link; calibration per (family, architecture class)
    fi = np.array([fmts.index(r[1]) for r in rows])
    dtypes = [[compute_dtype(f, a) for a in accs] for f in fmts]
    peak = np.array([[peak_tflops(a, dt) * TERA for a, dt in zip(accs, fd, strict=True)]
                     for fd in dtypes])[fi][:, :, None, None]
    attn_peak = np.array([[peak_tflops(a, attention_dtype(a, dt, default_kv_name(f))) * TERA
                           for a, dt in zip(accs, fd, strict=True)] for f, fd in zip(fmts, dtypes, strict=True)])
    attn_peak = attn_peak[fi][:, :, None, None]
    bw = np.array([a.memory_bandwidth_gb_s * GB for a in accs])[None, :, None, None]
    link = np.array([(a.interconnect.bandwidth_gb_s or 1.0) * GB for a in accs])[None, :, None, None]
    table = table_from_catalog(cat)
    archs = sorted({model_arch(r[0]) for r in rows})
    cal_by = {(a.family, arch): params_of(lookup(table, eng.id, a.family, arch)[0]) for a in accs for arch in archs}
    ai = np.array([archs.index(model_arch(r[0])) for r in rows])

    def hw(name: str) -> np.ndarray:
        per_arch = np.array([[cal_by[(a.family, arch)][name] for a in accs] for arch in archs])
        return per_arch[ai][:, :, None, None]

    e = Efficiency(eta_bw=hw("eta_bw"), eta_flops=hw("eta_flops"), step_overhead_s=hw("step_overhead_s"),
                   eta_moe=hw("eta_moe"), eta_kernel=hw("eta_kernel"), activation_passes=hw("activation_passes"))
    weight_only = np.array([[1.0 if is_dequant(f, dt) else 0.0 for dt in fd]
                            for f, fd in zip(fmts, dtypes, strict=True)])[fi][:, :, None, None]
    ratio = np.array([[_kernel_ratio(eng, f, a, cat) for a in accs] for f in fmts])[fi][:, :, None, None]
    ar = _allreduce_arrays(eng, accs, tp, cat)
    mixed = np.array([1.0 if _mixes(eng, r[0]) else 0.0 for r in rows])[:, None, None, None]
    mach = Machine(peak_flops=peak, bandwidth=bw, link_bandwidth=link, tp=t4, pp=1.0, ar_latency_s=ar[0],
                   ar_bus_bw=ar[1], ar_custom_latency_s=ar[2], ar_custom_bus_bw=ar[3], flops_ratio=ratio,
                   weight_only=weight_only, mixed_prefill=mixed, scores_bytes=scores_bytes(eng),
                   attn_peak_flops=attn_peak)
    c4 = conc[None, None, None, :]
    step = mixed_step(shape, mach, e, c4, float(input_tokens), float(output_tokens),
                      closed_prompts(c4, float(input_tokens), float(output_tokens)))
    tpot = np.broadcast_to(step.total, (n_mf, len(accs), len(tp), len(conc)))
    heads = col(lambda r: r[0].num_attention_heads)
    ok_tp = (heads % t4 == 0) & ((mla > 0) | (kvh % t4 == 0) | (t4 % kvh == 0))
    max_tp = np.array([max(a.max_per_server or 1, a.interconnect.domain_size or 1) for a in accs])[None, :, None, None]
    valid = np.broadcast_to(ok_tp & (t4 <= max_tp) & np.isfinite(peak), tpot.shape) & np.isfinite(tpot)
    return SweepResult([r[0].id for r in rows], [r[1].id for r in rows], [a.id for a in accs], tp, conc, tpot,
                       c4 / tpot, valid)


def _stage_shapes(rows: list[tuple]) -> StageShape:
    """The model axis: each field of the per-TP shapes (perf/shape.py) as a [model·format, 1, TP, 1] array."""
    return StageShape(**{f.name: np.array([[float(getattr(sh, f.name)) for sh in r[2]] for r in rows])[:, None, :, None]
                         for f in fields(StageShape)})


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
