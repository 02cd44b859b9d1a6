"""KV cache: bytes per token and per sequence, whole model and per GPU.

Per layer and token:

* full attention: ``2 (K and V) × n_kv_heads × head_dim × bytes(kv dtype)``
* MLA (DeepSeek-V3, Kimi-K2): one latent of ``kv_lora_rank + qk_rope_head_dim``
  elements (no separate K and V)
* sliding-window layers: as full attention, but a sequence holds at most the window
* linear-attention / SSM layers: no per-token cache; a constant state per sequence

Under tensor parallelism the KV heads are split across ranks; when there are fewer KV
heads than ranks each rank keeps one (replicated). MLA's single latent is replicated
on every rank. With data-parallel attention (SGLang --enable-dp-attention) each rank runs every
head for its own share of the sequences and holds only their cache: 1/TP of it, whatever the
heads. Under pipeline parallelism each stage holds its own layers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ..catalog.schema import Model
from .params import layer_plan
from .weights import pp_stages

LINEAR_STATE_BYTES = 2  # conv and recurrent state kept in the model dtype (vLLM mamba_ssm_cache_dtype=auto)


def kv_bytes_per_layer_token(m: Model, kv_bytes: float) -> float:
    """One layer, one token, all KV heads."""
    if m.mla:
        return (m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) * kv_bytes
    return 2 * m.num_kv_heads * m.head_dim * kv_bytes


def kv_tp_share(m: Model, tp: int, dp_attention: bool = False) -> float:
    """Fraction of a layer's per-token KV one TP rank holds (on average over the sequences: with
    data-parallel attention a rank holds the whole cache of 1/TP of them)."""
    if tp == 1:
        return 1.0
    if dp_attention:
        return 1 / tp
    if m.mla:
        return 1.0
    return math.ceil(m.num_kv_heads / tp) / m.num_kv_heads


def linear_state_bytes_per_layer(m: Model) -> float:
    """Constant per-sequence state of one linear-attention layer (conv + recurrent)."""
    la = m.linear_attention
    if la is None:
        return 0.0
    conv = (2 * la.num_key_heads * la.key_head_dim + la.num_value_heads * la.value_head_dim) * (la.conv_kernel - 1)
    recurrent = la.num_value_heads * la.key_head_dim * la.value_head_dim
    return (conv + recurrent) * LINEAR_STATE_BYTES


@dataclass(frozen=True)
class KvLayout:
    """Per-GPU KV cost of one sequence on the busiest pipeline stage."""

    full_layers: int
    sliding_layers: int
    linear_layers: int
    window: int
    token_bytes_per_layer: float  # already divided by the TP share
    linear_state_bytes_per_layer: float  # per GPU
    block_size: int

    def sequence_bytes(self, context_tokens: int) -> float:
        """Bytes one sequence of `context_tokens` holds on this GPU, rounded up to whole blocks."""
        b = self.block_size
        padded = math.ceil(context_tokens / b) * b
        in_window = min(padded, math.ceil((self.window + 1) / b) * b + b) if self.window else padded
        return (self.full_layers * padded * self.token_bytes_per_layer
                + self.sliding_layers * in_window * self.token_bytes_per_layer
                + self.linear_layers * self.linear_state_bytes_per_layer)

    def token_bytes(self) -> float:
        """Marginal bytes per token while a sequence is within the window."""
        return (self.full_layers + self.sliding_layers) * self.token_bytes_per_layer


def kv_bytes_per_token(m: Model, kv_bytes: float) -> float:
    """Whole model, one token, every attention layer (sliding layers counted inside their window)."""
    plan = layer_plan(m)
    return (len(plan.full_layers) + len(plan.sliding_layers)) * kv_bytes_per_layer_token(m, kv_bytes)


def kv_layout_per_stage(m: Model, kv_bytes: float, tp: int, pp: int, block_size: int,
                        dp_attention: bool = False) -> list[KvLayout]:
    """The KV layout one GPU of each pipeline stage holds (`dp_attention`: see :func:`kv_tp_share`)."""
    return list(_kv_layout_per_stage(m, kv_bytes, tp, pp, block_size, dp_attention))


@functools.lru_cache(maxsize=1024)
def _kv_layout_per_stage(m: Model, kv_bytes: float, tp: int, pp: int, block_size: int,
                         dp_attention: bool) -> tuple[KvLayout, ...]:
    plan = layer_plan(m)
    share = kv_tp_share(m, tp, dp_attention)
    la = m.linear_attention
    if la is None or tp == 1:
        lin_share = 1.0
    else:
        lin_share = 1 / tp if dp_attention else math.ceil(la.num_value_heads / tp) / la.num_value_heads
    out = []
    for stage in pp_stages(m.num_layers, pp):
        s = set(stage)
        out.append(KvLayout(
            full_layers=sum(1 for i in plan.full_layers if i in s),
            sliding_layers=sum(1 for i in plan.sliding_layers if i in s),
            linear_layers=sum(1 for i in plan.linear_layers if i in s),
            window=m.sliding_window or 0,
            token_bytes_per_layer=kv_bytes_per_layer_token(m, kv_bytes) * share,
            linear_state_bytes_per_layer=linear_state_bytes_per_layer(m) * lin_share,
            block_size=block_size,
        ))
    return tuple(out)
