"""Weight memory: bits per tensor under a quantization format, split over GPUs.

Weight-only and W8A8/FP4 formats store the quantized linear layers at the format's
effective bits per weight (scales and zero-points included) and leave the tensor
groups in ``keeps_16bit`` in 16 bit. GGUF formats pick a ggml block type per tensor
following llama.cpp's mix rules (``gguf_mix``), with the block type's fallback when a
row is not a multiple of its block size. Norms and biases are 16 bit (32 in GGUF).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

from ..catalog.schema import GgufMixRule, GgufType, Model, QuantFormat
from ..errors import CatalogError
from ..units import bits_to_bytes
from .params import Tensor, tensors

NORM_BITS = 16
GGUF_NORM_BITS = 32


@dataclass(frozen=True)
class TensorBytes:
    tensor: Tensor
    layer: int | None  # None: not a per-layer tensor
    n_bytes: float
    bits: float


def use_more_bits(i: int, n: int) -> bool:
    """llama.cpp ``use_more_bits``: first and last eighth, and every third layer between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _rule_matches(rule: GgufMixRule, t: Tensor, layer: int | None, m: Model) -> bool:
    if rule.tensor != t.name:
        return False
    if rule.min_gqa is not None and m.num_attention_heads // m.num_kv_heads < rule.min_gqa:
        return False
    if rule.moe is not None and rule.moe != (m.moe is not None):
        return False
    if layer is None or rule.layers == "all":
        return True
    if rule.layers == "use_more_bits":
        return use_more_bits(layer, m.num_layers)
    return layer < m.num_layers // 8  # first_eighth


def _gguf_type(name: str, types: dict[str, GgufType]) -> GgufType:
    try:
        return types[name]
    except KeyError:
        raise CatalogError(f"GGUF type {name!r} is not in the gguf_types catalog") from None


def gguf_bits(fmt: QuantFormat, t: Tensor, layer: int | None, m: Model, types: dict[str, GgufType]) -> float:
    if t.group == "norms" or t.name == "ssm_conv1d":
        return GGUF_NORM_BITS
    name = fmt.gguf_type or ""
    # llama.cpp quantizes a tied token_embd as it would the output tensor it stands in for
    as_t = replace(t, name="output") if t.name == "token_embd" and m.tie_word_embeddings else t
    for rule in fmt.gguf_mix:
        if _rule_matches(rule, as_t, layer, m):
            name = rule.type
            break
    gt = _gguf_type(name, types)
    for _ in range(3):  # a fallback may itself need a fallback
        if t.cols % gt.block_size == 0 or not gt.fallback_type:
            break
        gt = _gguf_type(gt.fallback_type, types)
    return gt.bits_per_weight


def _bits(fmt: QuantFormat, keeps: tuple[str, ...], t: Tensor) -> float:
    if t.group == "norms" or t.group in keeps:
        return NORM_BITS
    assert fmt.weight_bits is not None
    return fmt.weight_bits


@dataclass(frozen=True)
class BitsGroup:
    """Layers of one tensor stored at the same bits per weight; ``layers == (None,)``: not a per-layer tensor."""

    tensor: Tensor
    layers: tuple[int | None, ...]
    bits: float


@functools.lru_cache(maxsize=2048)
def bits_groups(m: Model, fmt: QuantFormat, keeps: tuple[str, ...] | None, gguf_types: tuple[GgufType, ...],
                unquantized_layers: tuple[int, ...] = ()) -> tuple[BitsGroup, ...]:
    """Bits per weight of every tensor of the model in the format, the layers that share a width grouped.

    ``keeps`` overrides the format's 16-bit tensor groups and ``unquantized_layers``
    lists decoder layers kept whole in 16 bit (a checkpoint's own quantization_config);
    ``gguf_types`` is the catalog's ggml block types. The one place a tensor's width is decided:
    :func:`tensor_bytes` (memory) and the speed model's stage sums both read it.
    """
    types = {g.id: g for g in gguf_types}
    keep = fmt.keeps_16bit if keeps is None else keeps
    whole16 = {i % m.num_layers for i in unquantized_layers}
    out: list[BitsGroup] = []
    n = m.num_layers
    for t in tensors(m):
        layers: tuple[int | None, ...] = t.layers or (None,)
        if not fmt.gguf_type and not whole16:  # one width for every layer
            out.append(BitsGroup(t, layers, _bits(fmt, keep, t)))
            continue
        by_class: dict[tuple[bool, bool] | None, float] = {}  # GGUF mix rules read a layer only through these
        by_bits: dict[float, list[int | None]] = {}
        for layer in layers:
            if layer in whole16:
                bits = float(NORM_BITS)
            elif fmt.gguf_type:
                cls = None if layer is None else (use_more_bits(layer, n), layer < n // 8)
                if cls not in by_class:
                    by_class[cls] = gguf_bits(fmt, t, layer, m, types)
                bits = by_class[cls]
            else:
                bits = _bits(fmt, keep, t)
            by_bits.setdefault(bits, []).append(layer)
        out.extend(BitsGroup(t, tuple(ls), b) for b, ls in by_bits.items())
    return tuple(out)


@functools.lru_cache(maxsize=512)
def tensor_bytes(m: Model, fmt: QuantFormat, keeps: tuple[str, ...] | None,
                 gguf_types: tuple[GgufType, ...], unquantized_layers: tuple[int, ...] = ()) -> tuple[TensorBytes, ...]:
    """Bytes of every (tensor, layer) of the model in the format (:func:`bits_groups`, one row per layer)."""
    per_tensor: dict[int, tuple[Tensor, dict[int | None, float]]] = {}
    for g in bits_groups(m, fmt, keeps, gguf_types, unquantized_layers):
        per_tensor.setdefault(id(g.tensor), (g.tensor, {}))[1].update(dict.fromkeys(g.layers, g.bits))
    out: list[TensorBytes] = []
    for t, bits_of in per_tensor.values():
        for layer in (t.layers or (None,)):
            bits = bits_of[layer]
            out.append(TensorBytes(t, layer, bits_to_bytes(t.params_per_layer, bits), bits))
    return tuple(out)


def split_share(tp_kind: str, expert: bool, tp: int, ep: int, num_kv_heads: int) -> float:
    """Fraction of a tensor one GPU of a TP group holds, by how the tensor splits (`tp_kind`: shard,
    replicate, kv_heads) and whether it is a routed expert (split over EP when EP > 1)."""
    if expert and ep > 1:
        return 1 / ep
    if tp_kind == "replicate" or tp == 1:
        return 1.0
    if tp_kind == "kv_heads":
        return math.ceil(num_kv_heads / tp) / num_kv_heads
    return 1 / tp


def tp_share(t: Tensor, tp: int, ep: int, num_kv_heads: int, dp_attention: bool = False) -> float:
    """Fraction of a tensor one GPU of a TP group holds; with data-parallel attention every GPU holds the
    attention weights whole (it runs every head for its own sequences)."""
    if dp_attention and t.group == "attention":
        return 1.0
    return split_share(t.tp, t.group == "experts", tp, ep, num_kv_heads)


def pp_stages(n_layers: int, pp: int) -> list[range]:
    """Contiguous layer ranges per pipeline stage, the remainder spread over the first stages."""
    base, extra = divmod(n_layers, pp)
    out, start = [], 0
    for s in range(pp):
        size = base + (1 if s < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


def stage_of(t: Tensor, layer: int | None, stages: list[range]) -> int:
    if layer is not None:
        for s, r in enumerate(stages):
            if layer in r:
                return s
    if t.name == "token_embd":
        return 0
    return len(stages) - 1  # output norm and lm_head sit on the last stage


MEMO_MAX = 4096
_MEMO: dict[tuple, tuple] = {}


def memo_by_identity(key: tuple, tb: tuple, compute):
    """`compute()` once per weight table `tb` (by identity: tables come from the cached :func:`tensor_bytes`,
    and hashing one would cost as much as the sum itself) and the rest of `key`. The entry holds `tb`, so
    its id cannot be reused while the entry lives; the memo is emptied when it grows past MEMO_MAX."""
    k = (id(tb), *key)
    hit = _MEMO.get(k)
    if hit is not None and hit[0] is tb:
        return hit[1]
    if len(_MEMO) >= MEMO_MAX:
        _MEMO.clear()
    value = compute()
    _MEMO[k] = (tb, value)
    return value


def weights_per_stage(tb: tuple[TensorBytes, ...], m: Model, tp: int, pp: int, ep: int,
                      dp_attention: bool = False) -> list[float]:
    """Bytes one GPU of each pipeline stage holds."""

    def compute() -> tuple[float, ...]:
        stages = pp_stages(m.num_layers, pp)
        per = [0.0] * pp
        for x in tb:
            share = tp_share(x.tensor, tp, ep, m.num_kv_heads, dp_attention)
            per[stage_of(x.tensor, x.layer, stages)] += x.n_bytes * share
        return tuple(per)

    return list(memo_by_identity(("weights_per_stage", m.num_layers, m.num_kv_heads, tp, pp, ep, dp_attention), tb,
                                 compute))


def bytes_by_group(tb: tuple[TensorBytes, ...]) -> dict[str, float]:
    def compute() -> dict[str, float]:
        out: dict[str, float] = {}
        for x in tb:
            out[x.tensor.group] = out.get(x.tensor.group, 0.0) + x.n_bytes
        return out

    return dict(memo_by_identity(("bytes_by_group",), tb, compute))


def with_engine_copies(tb: tuple[TensorBytes, ...], m: Model, duplicates_tied: bool) -> tuple[TensorBytes, ...]:
    """Add the lm_head copy an engine stores even when the checkpoint ties it to the embedding."""
    if not (m.tie_word_embeddings and duplicates_tied):
        return tb
    # the same table each time for the same `tb`, so what is memoised on it is found again
    return memo_by_identity(("with_engine_copies",), tb, lambda: tb + tuple(
        TensorBytes(replace(x.tensor, name="output", group="lm_head"), None, x.n_bytes, x.bits)
        for x in tb if x.tensor.group == "embedding"))


def groups_with_engine_copies(groups: tuple[BitsGroup, ...], m: Model, duplicates_tied: bool) -> tuple[BitsGroup, ...]:
    """:func:`with_engine_copies` for bits groups: the lm_head copy of a tied embedding."""
    if not (m.tie_word_embeddings and duplicates_tied):
        return groups
    return memo_by_identity(("groups_with_engine_copies",), groups, lambda: groups + tuple(
        BitsGroup(replace(g.tensor, name="output", group="lm_head"), (None,), g.bits)
        for g in groups if g.tensor.group == "embedding"))


ROW_PARALLEL = {"attn_output", "ffn_down", "ffn_down_shexp", "ssm_out"}


def padding_per_stage(tb: tuple[TensorBytes, ...], m: Model, tp: int, pp: int, bytes_per_row: int,
                      row_bytes_multiple: int) -> list[float]:
    """Bytes an engine adds per GPU by padding every row of each 8-bit linear weight.

    Column-parallel weights split their rows (output features) over TP; row-parallel
    ones (attention output, MLP down) keep all rows and split the row length.
    """
    stages = pp_stages(m.num_layers, pp)
    per = [0.0] * pp
    for x in tb:
        t = x.tensor
        if x.bits != 8 or t.group not in ("attention", "mlp", "shared_experts") or x.layer is None:
            continue
        row_parallel = t.name in ROW_PARALLEL
        rows = t.rows if row_parallel else t.rows / tp
        row_len = t.cols / tp if row_parallel else t.cols
        if row_len % row_bytes_multiple == 0:
            per[stage_of(t, x.layer, stages)] += rows * bytes_per_row
    return per
