"""The memory model against hand computation."""

from __future__ import annotations

import math

import pytest

from llmplan.memory.fit import fit
from llmplan.memory.kv import kv_bytes_per_token, kv_layout_per_stage
from llmplan.memory.params import active_param_count, layer_plan, param_count, tensors
from llmplan.memory.runtime import activation_bytes_per_token
from llmplan.memory.weights import (
    pp_stages,
    tensor_bytes,
    use_more_bits,
    weights_per_stage,
)
from llmplan.specs import Deployment, FitRequest, Layout, resolve
from llmplan.units import GIB

from . import factories as f

# ---------------------------------------------------------------- KV cache per token


def test_kv_llama31_70b_bf16(cat):
    # 80 layers x 2 (K, V) x 8 KV heads x 128 head dim x 2 bytes
    assert kv_bytes_per_token(cat.model("meta-llama/Llama-3.1-70B"), 2) == 80 * 2 * 8 * 128 * 2 == 327_680


def test_kv_deepseek_v3_mla_bf16(cat):
    # 61 layers x (kv_lora_rank 512 + rope 64) x 2 bytes
    assert kv_bytes_per_token(cat.model("deepseek-ai/DeepSeek-V3"), 2) == 61 * (512 + 64) * 2 == 70_272


def test_kv_fp8_halves(cat):
    m = cat.model("meta-llama/Llama-3.1-8B")
    assert kv_bytes_per_token(m, 1) == 32 * 2 * 8 * 128 == 65_536


def test_kv_split_over_tp_and_replicated_beyond_kv_heads():
    m = f.model(num_kv_heads=2, num_attention_heads=8)
    per_layer = 2 * 2 * 32 * 2  # K+V x 2 heads x 32 x 2 bytes
    one = kv_layout_per_stage(m, 2, tp=1, pp=1, block_size=1)[0]
    two = kv_layout_per_stage(m, 2, tp=2, pp=1, block_size=1)[0]
    eight = kv_layout_per_stage(m, 2, tp=8, pp=1, block_size=1)[0]
    assert one.token_bytes() == 4 * per_layer
    assert two.token_bytes() == 4 * per_layer / 2
    assert eight.token_bytes() == 4 * per_layer / 2  # 2 KV heads on 8 ranks: one head each, replicated


def test_kv_mla_is_replicated_on_every_rank(cat):
    m = cat.model("deepseek-ai/DeepSeek-V3")
    assert kv_layout_per_stage(m, 2, 8, 1, 1)[0].token_bytes() == 70_272


def test_kv_pipeline_stages_hold_their_layers():
    m = f.model(num_layers=5)
    stages = kv_layout_per_stage(m, 2, tp=1, pp=2, block_size=1)
    assert [s.full_layers for s in stages] == [3, 2]


def test_sliding_window_caps_the_sequence():
    m = f.model(num_layers=4, sliding_window=128, num_sliding_window_layers=4)
    lay = kv_layout_per_stage(m, 2, 1, 1, block_size=16)[0]
    per_tok = lay.token_bytes()
    assert lay.sequence_bytes(64) == 64 * per_tok
    assert lay.sequence_bytes(100_000) == lay.sequence_bytes(10_000)  # capped
    assert lay.sequence_bytes(100_000) <= (128 + 32) * per_tok


def test_gemma3_pattern_five_local_one_global(cat):
    m = cat.model("google/gemma-3-27b-it")
    plan = layer_plan(m)
    assert len(plan.sliding_layers) == m.num_sliding_window_layers
    assert len(plan.full_layers) == m.num_layers - m.num_sliding_window_layers
    assert plan.full_layers[0] == 5  # the 6th layer is the first global one


def test_linear_attention_state_is_constant(cat):
    m = cat.model("Qwen/Qwen3-Next-80B-A3B-Instruct")
    lay = kv_layout_per_stage(m, 2, 1, 1, block_size=16)[0]
    assert lay.linear_layers == m.linear_attention.num_layers
    assert lay.full_layers == m.num_layers - m.linear_attention.num_layers
    growth = lay.sequence_bytes(2048) - lay.sequence_bytes(1024)
    assert growth == pytest.approx(1024 * lay.token_bytes())
    assert lay.sequence_bytes(16) > 16 * lay.token_bytes()  # the state is there from the first token


def test_block_rounding():
    m = f.model()
    lay = kv_layout_per_stage(m, 2, 1, 1, block_size=16)[0]
    assert lay.sequence_bytes(17) == lay.sequence_bytes(32) == 32 * lay.token_bytes()


# ---------------------------------------------------------------- parameters and weights


def test_param_count_by_hand():
    m = f.model()  # 4 layers, h 256, 8 heads x 32, 2 KV heads, inter 512, vocab 1000, untied
    attn = 256 * 256 + 2 * 256 * 64 + 256 * 256
    mlp = 3 * 256 * 512
    norms = 2 * 256
    expected = 2 * 1000 * 256 + 4 * (attn + mlp + norms) + 256
    assert param_count(m) == expected
    assert active_param_count(m) == expected - 1000 * 256  # the embedding lookup is not a matmul


def test_moe_active_params_by_hand():
    m = f.model(moe={"num_experts": 8, "experts_per_token": 2, "expert_intermediate_size": 128})
    experts = 3 * 256 * 128
    assert param_count(m) - active_param_count(m) == 4 * 6 * experts + 1000 * 256


def test_llama31_8b_bf16_weights_exact(cat):
    m = cat.model("meta-llama/Llama-3.1-8B")
    assert param_count(m) == 8_030_261_248  # the safetensors total on the model card
    tb = tensor_bytes(m, cat.quant_format("bf16"), None, tuple(cat.gguf_types))
    assert sum(x.n_bytes for x in tb) == 2 * 8_030_261_248


def test_weight_only_format_keeps_embedding_and_head_in_16_bit(cat):
    m = cat.model("meta-llama/Llama-3.1-8B")
    awq = cat.quant_format("int4-awq")
    tb = tensor_bytes(m, awq, None, tuple(cat.gguf_types))
    emb = sum(x.n_bytes for x in tb if x.tensor.group in ("embedding", "lm_head"))
    assert emb == 2 * 128_256 * 4096 * 2
    linear = sum(x.n_bytes for x in tb if x.tensor.group in ("attention", "mlp"))
    n_linear = sum(x.tensor.params_per_layer for x in tb if x.tensor.group in ("attention", "mlp"))
    assert linear == pytest.approx(n_linear * awq.weight_bits / 8)


def test_use_more_bits_matches_llama_cpp():
    # llama.cpp: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
    n = 32
    picked = [i for i in range(n) if use_more_bits(i, n)]
    assert picked[:4] == [0, 1, 2, 3] and picked[-4:] == [28, 29, 30, 31]
    assert 6 in picked and 5 not in picked
    assert len(picked) == 16


def test_gguf_q8_0_is_8_5_bits(cat):
    assert cat.gguf_types.get("q8_0").bits_per_weight == 8.5
    assert cat.gguf_types.get("q4_k").bits_per_weight == 4.5
    assert cat.gguf_types.get("q6_k").bits_per_weight == 6.5625


def test_gguf_fallback_when_rows_do_not_divide_the_block(cat):
    # a 2880-wide model (gpt-oss) cannot use 256-weight k-quant blocks
    m = f.model(hidden_size=2880, num_attention_heads=8, head_dim=360, num_kv_heads=2, intermediate_size=2880)
    fmt = cat.quant_format("q4_k_m")
    tb = tensor_bytes(m, fmt, None, tuple(cat.gguf_types))
    q = next(x for x in tb if x.tensor.name == "attn_q")
    assert q.bits != cat.gguf_types.get("q4_k").bits_per_weight


def test_tp_shards_weights_and_pp_splits_layers():
    m = f.model(num_layers=4)
    tb = tensor_bytes(m, f.bf16(), None, ())
    total = sum(x.n_bytes for x in tb)
    one = weights_per_stage(tb, m, 1, 1, 1)
    assert one == [total]
    two = weights_per_stage(tb, m, 2, 1, 1)[0]
    norms = sum(x.n_bytes for x in tb if x.tensor.tp == "replicate")
    assert two == pytest.approx((total - norms) / 2 + norms)
    stages = weights_per_stage(tb, m, 1, 2, 1)
    assert sum(stages) == pytest.approx(total)
    assert pp_stages(5, 2) == [range(0, 3), range(3, 5)]


# ---------------------------------------------------------------- activations and the pool


def test_activation_per_token_by_hand():
    m = f.model()  # gated MLP: residual 3h + gate/up 2I + act I
    assert activation_bytes_per_token(m, tp=1) == (3 * 256 + 3 * 512) * 2
    assert activation_bytes_per_token(m, tp=2) == (3 * 256 + 3 * 512 / 2) * 2


def _deploy(m=None, g=None, e=None, tp=1, pp=1) -> Deployment:
    g = g or f.gpu()
    return Deployment(m or f.model(), g, f.bf16(), f.kv16(), e or f.engine(), Layout(tp * pp, tp, pp, 1), None,
                      "test", g.usable_memory_gib, "catalog")


def test_fraction_of_total_pool_by_hand():
    d = _deploy()
    r = fit(d, (), context_tokens=1024, concurrency=1)
    m = d.model
    weights = param_count(m) * 2
    act = 2048 * activation_bytes_per_token(m, 1)
    expected_pool = 0.9 * 80 * GIB - weights - act - 0.5 * GIB
    assert r.per_gpu_kv_pool_bytes == round(expected_pool)
    per_token = 4 * 2 * 2 * 32 * 2
    assert r.kv_capacity_tokens == int(expected_pool // (16 * per_token)) * 16
    assert r.max_context_tokens == m.max_context  # a tiny model holds its whole context
    assert r.fits
    assert r.per_gpu_required_bytes <= r.per_gpu_capacity_bytes


def test_within_fraction_moves_parts_outside():
    inside = fit(_deploy(), (), context_tokens=1024)
    outside = fit(_deploy(e=f.engine(memory={"within_fraction": ["weights"]})), (), context_tokens=1024)
    assert outside.per_gpu_kv_pool_bytes > inside.per_gpu_kv_pool_bytes


def test_free_after_weights_pool_by_hand():
    e = f.engine(memory={"cap_mode": "fraction_of_free_after_weights", "memory_fraction": 0.9})
    d = _deploy(e=e)
    r = fit(d, (), context_tokens=1024)
    weights = param_count(d.model) * 2
    act = 2048 * activation_bytes_per_token(d.model, 1)
    assert r.per_gpu_kv_pool_bytes == round(0.9 * (80 * GIB - weights - act - 0.5 * GIB))


def test_does_not_fit_when_weights_exceed_memory():
    m = f.model(hidden_size=8192, intermediate_size=28672, num_layers=80, num_attention_heads=64, num_kv_heads=8,
                head_dim=128, vocab_size=128256)
    r = fit(_deploy(m=m), (), context_tokens=8192)
    assert not r.fits
    assert r.kv_capacity_tokens == 0 and r.max_concurrency == 0 and r.max_context_tokens == 0
    assert "no memory left for the KV cache" in r.reasons[0]
    assert r.per_gpu_required_bytes > r.per_gpu_capacity_bytes


def test_too_much_concurrency_does_not_fit_and_says_how_much_would():
    d = _deploy()
    r = fit(d, (), context_tokens=4096, concurrency=10**6)
    assert not r.fits
    assert f"at most {r.max_concurrency} sequences" in r.reasons[0]
    assert fit(d, (), context_tokens=4096, concurrency=r.max_concurrency).fits
    assert not fit(d, (), context_tokens=4096, concurrency=r.max_concurrency + 1).fits


def test_context_beyond_model_maximum_is_reported():
    r = fit(_deploy(), (), context_tokens=10_000)
    assert not r.fits and "exceeds" in r.reasons[-1]


# ---------------------------------------------------------------- real catalog, end to end


def test_llama70b_bf16_needs_more_than_one_h100(cat):
    req = FitRequest(model="meta-llama/Llama-3.1-70B-Instruct", gpu="h100-sxm", context_tokens=8192)
    r1 = fit(resolve(req, cat), tuple(cat.gguf_types), context_tokens=8192)
    assert not r1.fits
    req4 = req.model_copy(update={"num_gpus": 4})
    r4 = fit(resolve(req4, cat), tuple(cat.gguf_types), context_tokens=8192)
    assert r4.fits and r4.weights_bytes == r1.weights_bytes
    assert r4.per_gpu_weights_bytes == pytest.approx(r1.weights_bytes / 4, rel=0.001)


def test_checkpoint_alias_brings_its_format(cat):
    d = resolve(FitRequest(model="meta-llama/Llama-3.1-405B-Instruct-FP8", gpu="h200-sxm", num_gpus=8), cat)
    assert d.weight_format.id == "fp8"
    d2 = resolve(FitRequest(model="meta-llama/Llama-3.1-405B-Instruct-FP8", gpu="h200-sxm", num_gpus=8,
                            precision="bf16"), cat)
    assert d2.weight_format.id == "bf16"


def test_weights_round_trip_gib():
    assert math.isclose(2 * 8_030_261_248 / GIB, 14.957, rel_tol=1e-3)


def test_tensor_inventory_names_are_gguf_names(cat):
    names = {t.name for t in tensors(cat.model("mistralai/Mixtral-8x7B-v0.1"))}
    assert {"token_embd", "output", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate_inp",
            "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"} <= names


def test_dp_attention_splits_the_kv_cache_and_holds_the_attention_weights_whole(cat):
    """SGLang --enable-dp-attention: each of the TP GPUs runs every head for its own sequences, so MLA's latent
    (replicated under TP) is held once: 1/8 per GPU on average; the attention weights are whole on every GPU; a
    sequence lives whole on one GPU (one sequence of 8,192 tokens needs its full 8,192 × 70,272 bytes there)."""
    from llmplan.errors import LayoutError

    m = cat.model("deepseek-ai/DeepSeek-V3")
    assert kv_layout_per_stage(m, 2, 8, 1, 1, dp_attention=True)[0].token_bytes() == 70_272 / 8
    gqa = f.model(num_kv_heads=2, num_attention_heads=8)
    assert kv_layout_per_stage(gqa, 2, 8, 1, 1, dp_attention=True)[0].token_bytes() == 4 * 2 * 2 * 32 * 2 / 8

    def req(dp):
        return FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8", engine="sglang",
                          context_tokens=8192, dp_attention=dp)

    tp_, dp_ = (fit(resolve(req(dp), cat), tuple(cat.gguf_types), context_tokens=8192) for dp in (None, True))
    attention = tp_.weights_by_group_bytes["attention"]
    # q_a and kv_a (1,536 and 576 rows of 7,168, FP8: 1 byte each, 61 layers) are replicated under TP already;
    # the other attention tensors were split 8 ways and are now whole: 7/8 more of them
    replicated = 61 * (1536 + 576) * 7168
    assert dp_.per_gpu_weights_bytes - tp_.per_gpu_weights_bytes == (attention - replicated) * 7 / 8
    assert dp_.per_gpu_kv_required_bytes == 8192 * 70_272  # one sequence, whole on one GPU
    assert dp_.kv_capacity_tokens > 5 * tp_.kv_capacity_tokens
    assert any("data-parallel attention" in n and "no less KV" not in n for n in dp_.notes)
    gqa8 = fit(resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", tp=8, engine="sglang",
                                  dp_attention=True), cat), tuple(cat.gguf_types), context_tokens=8192)
    assert any("holds no less KV here: TP 8 already splits the 8 KV heads" in n for n in gqa8.notes)
    for bad in (FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8", engine="vllm",
                           dp_attention=True),
                FitRequest(model="Qwen/Qwen3-8B", gpu="h200", tp=1, engine="sglang", dp_attention=True)):
        with pytest.raises(LayoutError, match="data-parallel attention"):
            resolve(bad, cat)


def test_dp_attention_as_each_sglang_version_had_it(cat):
    """SGLang 0.3 had no DP attention, 0.4.0-0.4.5 had it for DeepSeek (MLA) models only (engines catalog, LMSYS
    v0.4 release post); the newest runs it for any model. The planner sizes a DP twin only where the version has it."""
    from llmplan.errors import LayoutError
    from llmplan.planner.search import dp_attention_twin
    from llmplan.specs import select_profile

    with pytest.raises(LayoutError, match="sglang 0.3 .*has no data-parallel attention: it came in a later version"):
        resolve(FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8", engine="sglang@0.3",
                           dp_attention=True), cat)
    with pytest.raises(LayoutError, match="only for multi-head latent attention"):
        resolve(FitRequest(model="Qwen/Qwen3-235B-A22B", gpu="h200", tp=8, precision="fp8", engine="sglang@0.4",
                           dp_attention=True), cat)
    assert resolve(FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8",
                              engine="sglang@0.4", dp_attention=True), cat).engine.execution.dp_attention
    assert resolve(FitRequest(model="Qwen/Qwen3-235B-A22B", gpu="h200", tp=8, precision="fp8", engine="sglang",
                              dp_attention=True), cat).engine.execution.dp_attention
    qwen, ds = cat.model("Qwen/Qwen3-235B-A22B"), cat.model("deepseek-ai/DeepSeek-V3")
    v03, v04, new = (select_profile(cat.engine("sglang"), v)[0] for v in ("0.3", "0.4", None))
    assert [dp_attention_twin(e, qwen, 8) for e in (v03, v04, new)] == [False, False, True]
    assert [dp_attention_twin(e, ds, 8) for e in (v03, v04, new)] == [False, True, True]
