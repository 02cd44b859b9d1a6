"""Parameter inventory: every weight tensor of a model, from its architecture.

Tensor names follow GGUF (``token_embd``, ``attn_q``, ``ffn_down_exps`` …) so that
the llama.cpp quantization mixes can address them; each tensor also belongs to one
tensor *group* (embedding, lm_head, attention, mlp, experts, shared_experts, router,
norms) that weight-only formats use to say what stays in 16 bit, and carries how it is
split under tensor parallelism.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from ..catalog.schema import Model

TpSplit = Literal["shard", "replicate", "kv_heads"]


@dataclass(frozen=True)
class Tensor:
    name: str
    group: str
    rows: int  # output features
    cols: int  # input features: the row length that quantization blocks must divide
    layers: tuple[int, ...] = ()  # layer indices; () = not a per-layer tensor
    copies: int = 1  # routed experts stored side by side
    tp: TpSplit = "shard"

    @property
    def params_per_layer(self) -> int:
        return self.rows * self.cols * self.copies

    @property
    def params(self) -> int:
        return self.params_per_layer * max(1, len(self.layers))


@dataclass(frozen=True)
class LayerPlan:
    """Which layer does what: attention kind and MLP kind per layer index."""

    n_layers: int
    linear_layers: tuple[int, ...]
    sliding_layers: tuple[int, ...]
    full_layers: tuple[int, ...]
    moe_layers: tuple[int, ...]
    dense_layers: tuple[int, ...]


def _spread(indices: tuple[int, ...], k: int) -> tuple[int, ...]:
    """k of the indices, evenly spaced, each the last of its group (every 6th of 6 …)."""
    n = len(indices)
    if k <= 0:
        return ()
    return tuple(indices[round((j + 1) * n / k) - 1] for j in range(k))


@functools.lru_cache(maxsize=256)
def layer_plan(m: Model) -> LayerPlan:
    """Assign attention and MLP kinds to layer indices.

    Counts come from the catalog; positions follow the usual patterns (the global or
    full-attention layer closes each group: Gemma-3 5 local + 1 global, Qwen3-Next
    3 linear + 1 full, Llama-4 Maverick MoE on every 2nd layer).
    """
    n = m.num_layers
    every = tuple(range(n))
    n_lin = m.linear_attention.num_layers if m.linear_attention else 0
    attn = _spread(every, n - n_lin)
    linear = tuple(i for i in every if i not in set(attn))
    full = _spread(attn, len(attn) - m.num_sliding_window_layers)
    sliding = tuple(i for i in attn if i not in set(full))
    if m.moe:
        step = m.moe.moe_layer_step
        moe = tuple(i for i in every if i >= m.moe.num_dense_layers and (i + 1) % step == 0)
    else:
        moe = ()
    dense = tuple(i for i in every if i not in set(moe))
    return LayerPlan(n, linear, sliding, full, moe, dense)


def _attention(m: Model, layers: tuple[int, ...]) -> list[Tensor]:
    h, hd = m.hidden_size, m.head_dim
    if not layers:
        return []
    if m.mla:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        out: list[Tensor] = []
        if a.q_lora_rank:
            out += [Tensor("attn_q_a", "attention", a.q_lora_rank, h, layers, tp="replicate"),
                    Tensor("attn_q_b", "attention", m.num_attention_heads * qk, a.q_lora_rank, layers)]
        else:
            out += [Tensor("attn_q", "attention", m.num_attention_heads * qk, h, layers)]
        out += [
            Tensor("attn_kv_a_mqa", "attention", a.kv_lora_rank + a.qk_rope_head_dim, h, layers, tp="replicate"),
            Tensor("attn_kv_b", "attention", m.num_attention_heads * (a.qk_nope_head_dim + a.v_head_dim),
                   a.kv_lora_rank, layers),
            Tensor("attn_output", "attention", h, m.num_attention_heads * a.v_head_dim, layers),
            Tensor("attn_norms", "norms", 1, a.kv_lora_rank + (a.q_lora_rank or 0), layers, tp="replicate"),
        ]
        return out
    q_rows = m.num_attention_heads * hd
    kv_rows = m.num_kv_heads * hd
    out = [
        Tensor("attn_q", "attention", q_rows, h, layers),
        Tensor("attn_k", "attention", kv_rows, h, layers, tp="kv_heads"),
        Tensor("attn_v", "attention", kv_rows, h, layers, tp="kv_heads"),
        Tensor("attn_output", "attention", h, q_rows, layers),
    ]
    if m.attention_bias:
        out.append(Tensor("attn_bias", "norms", 1, q_rows + 2 * kv_rows, layers, tp="replicate"))
    return out


def _linear_attention(m: Model, layers: tuple[int, ...]) -> list[Tensor]:
    la = m.linear_attention
    if not la or not layers:
        return []
    h = m.hidden_size
    qk = la.num_key_heads * la.key_head_dim
    v = la.num_value_heads * la.value_head_dim
    return [
        Tensor("ssm_in", "attention", 2 * qk + 2 * v + 2 * la.num_value_heads, h, layers),
        Tensor("ssm_conv1d", "attention", 2 * qk + v, la.conv_kernel, layers),
        Tensor("ssm_out", "attention", h, v, layers),
        Tensor("ssm_norms", "norms", 1, la.value_head_dim + 2 * la.num_value_heads, layers, tp="replicate"),
    ]


def _mlp(m: Model, layers: tuple[int, ...], inter: int) -> list[Tensor]:
    if not layers:
        return []
    h = m.hidden_size
    out = [Tensor("ffn_up", "mlp", inter, h, layers), Tensor("ffn_down", "mlp", h, inter, layers)]
    if m.mlp_gated:
        out.insert(0, Tensor("ffn_gate", "mlp", inter, h, layers))
    else:
        out.append(Tensor("ffn_bias", "norms", 1, inter + h, layers, tp="replicate"))
    return out


def _moe(m: Model, layers: tuple[int, ...]) -> list[Tensor]:
    e = m.moe
    if not e or not layers:
        return []
    h, ie = m.hidden_size, e.expert_intermediate_size
    out = [
        Tensor("ffn_gate_inp", "router", e.num_experts, h, layers, tp="replicate"),
        Tensor("ffn_gate_exps", "experts", ie, h, layers, copies=e.num_experts),
        Tensor("ffn_up_exps", "experts", ie, h, layers, copies=e.num_experts),
        Tensor("ffn_down_exps", "experts", h, ie, layers, copies=e.num_experts),
    ]
    shared = e.shared_expert_intermediate_size or e.num_shared_experts * ie
    if shared:
        out += [
            Tensor("ffn_gate_shexp", "shared_experts", shared, h, layers),
            Tensor("ffn_up_shexp", "shared_experts", shared, h, layers),
            Tensor("ffn_down_shexp", "shared_experts", h, shared, layers),
        ]
    return out


@functools.lru_cache(maxsize=256)
def tensors(m: Model) -> tuple[Tensor, ...]:
    """All weight tensors of the model (without multi-token-prediction layers)."""
    plan = layer_plan(m)
    h = m.hidden_size
    attn_layers = tuple(sorted(plan.full_layers + plan.sliding_layers))
    out: list[Tensor] = [Tensor("token_embd", "embedding", m.vocab_size, h)]
    out += _attention(m, attn_layers)
    out += _linear_attention(m, plan.linear_layers)
    dense_inter = (m.moe.dense_intermediate_size if m.moe and m.moe.dense_intermediate_size else m.intermediate_size)
    out += _mlp(m, plan.dense_layers, dense_inter)
    out += _moe(m, plan.moe_layers)
    out.append(Tensor("layer_norms", "norms", 1, 2 * h, tuple(range(m.num_layers)), tp="replicate"))
    out.append(Tensor("output_norm", "norms", 1, h, tp="replicate"))
    if not m.tie_word_embeddings:
        out.append(Tensor("output", "lm_head", m.vocab_size, h))
    return tuple(out)


def param_count(m: Model) -> int:
    return sum(t.params for t in tensors(m))


def active_param_count(m: Model) -> int:
    """Parameters one token touches: routed experts count top-k of E; the embedding
    table is a lookup (its rows are not multiplied), the lm_head is."""
    total = 0
    for t in tensors(m):
        if t.group == "embedding":
            continue
        if t.group == "experts" and m.moe:
            total += t.params // m.moe.num_experts * m.moe.experts_per_token
        else:
            total += t.params
    return total


def params_by_group(m: Model) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in tensors(m):
        out[t.group] = out.get(t.group, 0) + t.params
    return out
