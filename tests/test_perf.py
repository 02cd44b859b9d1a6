"""The performance model: hand-computed physics, the roofline as a hard floor, the commands."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmplan.catalog import load_catalog
from llmplan.cli import main
from llmplan.errors import LlmplanError
from llmplan.perf.estimate import EstimateRequest, estimate
from llmplan.perf.physics import (
    Efficiency,
    Machine,
    StageShape,
    comm_time,
    experts_touched,
    roofline_step,
    step_time,
)
from llmplan.perf.shape import compute_dtype, machine, stage_shape
from llmplan.specs import FitRequest, resolve

CAT = load_catalog()


def shape(**kw) -> StageShape:
    base = dict(weight_bytes=16e9, dense_weight_bytes=16e9, expert_bytes_per_layer=0.0, moe_layers=0.0,
                num_experts=0.0, experts_per_token=0.0, flops_per_token=16e9, attn_layers=32.0,
                attn_flops_per_ctx_token=4 * 32 * 128 * 32, attn_scores_per_pair=32 * 32, kv_bytes_per_token=131072.0,
                window=math.inf, sliding_fraction=0.0, layers=32.0, hidden=4096.0)
    base.update(kw)
    return StageShape(**base)


MACH = Machine(peak_flops=1e15, bandwidth=3e12, link_bandwidth=450e9, tp=1, pp=1)
IDEAL = Efficiency(1.0, 1.0, 0.0, 0.0)


def test_experts_touched_formula():
    # E (1 - (1 - k/E)^B): one token touches k experts, many tokens approach E
    assert experts_touched(8, 2, 1) == pytest.approx(2)
    assert experts_touched(8, 2, 2) == pytest.approx(8 * (1 - 0.75 ** 2))
    assert experts_touched(256, 8, 10_000) == pytest.approx(256)
    assert experts_touched(0, 0, 5) == 0


def test_decode_step_is_weight_read_at_batch_one():
    t = step_time(shape(), MACH, IDEAL, decode_tokens=1.0, decode_context=0.0)
    assert float(t.total) == pytest.approx(16e9 / 3e12)  # 5.33 ms: read every weight once


def test_kv_read_and_attention_grow_with_context():
    a = step_time(shape(), MACH, IDEAL, 1.0, 1000.0).total
    b = step_time(shape(), MACH, IDEAL, 1.0, 100_000.0).total
    assert float(b - a) == pytest.approx(99_000 * 131072 / 3e12)


def test_prefill_is_compute_bound_by_hand():
    t = step_time(shape(), MACH, IDEAL, decode_tokens=0.0, decode_context=0.0, prefill_tokens=4096.0,
                  prefill_context=2048.0)
    flops = 16e9 * 4096 + 4 * 32 * 128 * 32 * 4096 * 2048
    assert float(t.compute) == pytest.approx(flops / 1e15)
    assert float(t.total) == pytest.approx(flops / 1e15)


def test_a_big_decode_batch_adds_its_gemms_compute_to_its_attentions_kv_reads_by_hand():
    """1,000 sequences decoding at a context of 4,000: the GEMMs are compute-bound (16 GFLOP × 1,000 / 1 PFLOP/s =
    16 ms, over the 5.3 ms weight read) while attention streams the KV cache (1,000 × 4,000 × 131,072 B / 3 TB/s =
    174.8 ms, over its 2.1 ms of FLOPs). The kernels run one after the other: 16 + 174.8 ms, not max(5.3 + 174.8,
    16 + 2.1) ms; the roofline stays the whole step's max(bytes / bandwidth, FLOPs / peak)."""
    n, ctx = 1000.0, 4000.0
    t = step_time(shape(), MACH, IDEAL, decode_tokens=n, decode_context=ctx)
    gemm_s, weights_s = 16e9 * n / 1e15, 16e9 / 3e12
    kv_s, attn_s = n * ctx * 131072 / 3e12, 4 * 32 * 128 * 32 * n * ctx / 1e15
    assert float(t.total) == pytest.approx(gemm_s + kv_s)
    assert float(t.memory) == pytest.approx(weights_s + kv_s) and float(t.compute) == pytest.approx(gemm_s + attn_s)
    assert float(roofline_step(shape(), MACH, n, ctx)) == pytest.approx(weights_s + kv_s)
    # at batch 1 both parts are memory-bound: the sum of the reads, as one roofline gives
    one = step_time(shape(), MACH, IDEAL, decode_tokens=1.0, decode_context=ctx)
    assert float(one.total) == pytest.approx(weights_s + ctx * 131072 / 3e12)


def test_unfused_attention_moves_its_scores_through_memory_by_hand():
    """llama.cpp without flash attention: every (query, key) pair's 32 heads × 32 layers of scores pass through
    memory, 20 bytes each, as a pass of its own after the step's other kernels. A 4,096-token prompt (queries
    attend to 2,048 keys on average): 20 × 1,024 × 4,096 × 2,048 B = 171.8 GB, 57.3 ms at 3 TB/s on top of the
    compute-bound step; fused (0 bytes) it is the plain step, and the roofline stays the fused one."""
    fused = step_time(shape(), MACH, IDEAL, 0.0, 0.0, prefill_tokens=4096.0, prefill_context=2048.0)
    unfused = step_time(shape(), dataclasses.replace(MACH, scores_bytes=20.0), IDEAL, 0.0, 0.0, prefill_tokens=4096.0,
                        prefill_context=2048.0)
    assert float(unfused.total - fused.total) == pytest.approx(20 * 32 * 32 * 4096 * 2048 / 3e12)
    # decoding reads its context's scores too: one token attending to 100,000 keys
    d0 = step_time(shape(), MACH, IDEAL, 1.0, 100_000.0).total
    d1 = step_time(shape(), dataclasses.replace(MACH, scores_bytes=20.0), IDEAL, 1.0, 100_000.0).total
    assert float(d1 - d0) == pytest.approx(20 * 32 * 32 * 100_000 / 3e12)
    floor = roofline_step(shape(), dataclasses.replace(MACH, scores_bytes=20.0), 0.0, 0.0, 4096.0, 2048.0)
    assert float(floor) == pytest.approx(float(fused.total))


def test_activation_passes_move_the_hidden_state_through_memory_by_hand():
    """The kernels between the GEMMs (norms, residual adds, rotary, activation functions): 10 passes of a
    4,096-wide 16-bit vector per token and layer. 4,096 prompt tokens × 32 layers: 10 × 4,096 × 4,096 × 2 × 32 B
    = 10.7 GB, 7.16 ms at 3 TB/s × 0.5, on top of the step without them; one decoding token pays 1/4,096 of it.
    The roofline does not count them (it is the floor of the GEMMs' and attention's own work)."""
    e0, e10 = Efficiency(0.5, 1.0, 0.0, 0.0), Efficiency(0.5, 1.0, 0.0, 0.0, activation_passes=10.0)
    without = step_time(shape(), MACH, e0, 0.0, 0.0, prefill_tokens=4096.0, prefill_context=2048.0)
    with_passes = step_time(shape(), MACH, e10, 0.0, 0.0, prefill_tokens=4096.0, prefill_context=2048.0)
    assert float(with_passes.total - without.total) == pytest.approx(10 * 4096 * 4096 * 2 * 32 / 1.5e12)
    assert float(with_passes.memory_bound - without.memory_bound) == pytest.approx(10 * 4096 * 4096 * 2 * 32 / 1.5e12)
    d0, d1 = (step_time(shape(), MACH, e, 1.0, 1000.0).total for e in (e0, e10))
    assert float(d1 - d0) == pytest.approx(10 * 4096 * 2 * 32 / 1.5e12)
    floor = roofline_step(shape(), MACH, 0.0, 0.0, 4096.0, 2048.0)
    assert float(floor) < float(with_passes.total)


def test_activation_passes_are_the_whole_hidden_state_on_every_tensor_parallel_gpu():
    """Under TP every GPU runs the norms and residual adds on the whole hidden state after each all-reduce, and the
    fitted pass count was fitted that way (dividing the traffic by TP fitted worse: leave-one-source-out 16.0 against
    14.7 %): at TP 4 a token's activation passes cost each GPU what they cost one GPU alone."""
    e10 = Efficiency(0.5, 1.0, 0.0, 0.0, activation_passes=10.0)
    tp4 = dataclasses.replace(MACH, tp=4)
    extra = [float(step_time(shape(), m, e10, 0.0, 0.0, 4096.0, 2048.0).total
                   - step_time(shape(), m, Efficiency(0.5, 1.0, 0.0, 0.0), 0.0, 0.0, 4096.0, 2048.0).total)
             for m in (MACH, tp4)]
    assert extra[1] == pytest.approx(extra[0]) == pytest.approx(10 * 4096 * 4096 * 2 * 32 / 1.5e12)


def test_a_calibration_written_before_the_activation_passes_means_none():
    """A calibration file from before the seventh parameter loads, with 0 passes: the model it was fitted with."""
    from llmplan.catalog.schema import Calibration
    from llmplan.perf.efficiency import params_of

    shipped = next(iter(CAT.calibrations))
    old = {k: v for k, v in shipped.model_dump().items() if k != "activation_passes"}
    c = Calibration.model_validate(old)
    assert c.activation_passes == 0.0 and params_of(c)["activation_passes"] == 0.0
    assert shipped.activation_passes > 0  # the shipped one has them


def test_llamacpp_flash_attention_follows_the_build_and_the_row():
    """llama.cpp builds before the 'auto' default (b6327, 2025-08) ran attention unfused unless -fa was given; a
    benchmark row that states flash attention overrides the profile. The May-2024 llama-bench rows (XJD) lose
    more prefill speed at 4,096 tokens than at 512, as the score traffic grows with the prompt."""
    from llmplan.perf.cases import build_case, flash_attention
    from llmplan.perf.shape import scores_bytes

    assert (flash_attention("flash_attn 1"), flash_attention("-fa 0"), flash_attention("--flash-attn on"),
            flash_attention("--flash-attn auto"), flash_attention("-ngl 99")) == (True, False, True, None, None)
    new = resolve(FitRequest(model="meta-llama/Meta-Llama-3-8B", gpu="rtx-4090", precision="q4_k_m",
                             engine="llamacpp"), CAT)
    assert scores_bytes(new.engine) == 0.0
    for version in ("2024.05", "2024.06"):
        old = resolve(FitRequest(model="meta-llama/Meta-Llama-3-8B", gpu="rtx-4090", precision="q4_k_m",
                                 engine=f"llamacpp@{version}"), CAT)
        assert scores_bytes(old.engine) == 20.0
    row = {"id": "x", "model": "meta-llama/Meta-Llama-3-8B", "hardware": "rtx-4090", "num_gpus": "1", "tp": "1",
           "precision": "q4_k_m", "engine": "llamacpp", "input_len": "512", "output_len": "0", "scenario": "batch1",
           "metric": "prefill_tok_s", "notes": "llama-bench pp512; date=2024-05"}
    assert float(build_case(row, CAT).machine.scores_bytes) == 20.0
    assert float(build_case(dict(row, notes="llama-bench -fa 1 pp512; date=2024-05"), CAT).machine.scores_bytes) == 0
    assert float(build_case(dict(row, notes="llama-bench -fa 0; date=2026-01"), CAT).machine.scores_bytes) == 20.0
    assert float(build_case(dict(row, notes="llama-bench; date=2026-01"), CAT).machine.scores_bytes) == 0.0


def test_an_engine_that_does_not_fuse_attention_must_say_how_many_bytes():
    from pydantic import ValidationError

    from llmplan.catalog.schema import Engine

    e = CAT.engines.get("llamacpp").model_dump()
    e["unfused_attention_bytes"] = None
    with pytest.raises(ValidationError, match="unfused_attention_bytes"):
        Engine.model_validate(e)


def test_tensor_parallel_all_reduce_by_hand():
    # measured all-reduce figures: NCCL 20 us + busbw 370 GB/s; a custom kernel 10 us + 50 GB/s
    m = Machine(1e15, 3e12, 450e9, tp=4, pp=1, ar_latency_s=20e-6, ar_bus_bw=370e9, ar_custom_latency_s=10e-6,
                ar_custom_bus_bw=50e9)
    # two per layer, each the faster of latency + 2 (TP-1)/TP x tokens x hidden x 2 bytes / busbw
    small = 8 * 4096 * 2  # 64 KiB: the custom kernel (10 + 1.97 us) beats NCCL (20 + 0.27 us)
    assert float(comm_time(shape(), m, 8.0)) == pytest.approx(2 * 32 * (10e-6 + 1.5 * small / 50e9))
    big = 4096 * 4096 * 2  # 32 MiB: NCCL (20 + 136 us) beats the custom kernel (10 + 1007 us)
    assert float(comm_time(shape(), m, 4096.0)) == pytest.approx(2 * 32 * (20e-6 + 1.5 * big / 370e9))
    assert float(comm_time(shape(), Machine(1e15, 3e12, 450e9, tp=1, pp=1), 8.0)) == 0.0


def test_pipeline_stages_add_up_for_one_sequence():
    half = shape(weight_bytes=8e9, dense_weight_bytes=8e9, flops_per_token=8e9, layers=16.0)
    two = Machine(1e15, 3e12, 450e9, tp=1, pp=2)
    one = step_time(shape(), MACH, IDEAL, 1.0, 0.0).total
    assert float(step_time(half, two, IDEAL, 1.0, 0.0).total) == pytest.approx(float(one))


def test_measured_matmul_rate_scales_the_compute_peak_only():
    """The physics computes with the matmul rate a chip was measured to reach (catalog matmul_tflops: mamf-finder
    for H100 / A100, John Carmack's measurement for the power-limited DGX Spark, a crowd-sourced PyTorch table for
    workstation and GeForce cards), a type without its own measurement
    at the share of its nearest measured type, and a chip without any at the median measured share; bandwidth stays
    the rated one."""
    from pydantic import ValidationError

    from llmplan.catalog.loader import typical_matmul_share
    from llmplan.catalog.schema import Accelerator
    from llmplan.perf.shape import matmul_fraction

    h100, spark, a100 = CAT.accelerator("h100-sxm"), CAT.accelerator("dgx-spark"), CAT.accelerator("a100-sxm-80gb")
    assert matmul_fraction(h100, "bf16") == pytest.approx(794.5 / 989.4)
    assert matmul_fraction(h100, "fp8") == pytest.approx(1402.6 / 1978.9)
    assert matmul_fraction(a100, "fp16") == pytest.approx(271.2 / 312)  # fp16 takes bf16's share
    assert matmul_fraction(CAT.accelerator("b200"), "fp4") == pytest.approx(3432.5 / 4500)  # fp4 takes fp8's
    from llmplan.catalog.loader import bundled_files, read_file

    shipped = [a for p in bundled_files() if p.name == "accelerators.yaml" for a in read_file(p, trusted=True)[1]]
    shares = sorted(m / a.dense_tflops.get(k) for a in shipped if a.matmul_tflops
                    for k, m in a.matmul_tflops.model_dump().items()
                    if m is not None and not (k == "bf16" and a.half_rate_bf16()))  # GeForce's half-rate BF16: out
    assert len(shares) >= 20 and typical_matmul_share() == pytest.approx(float(np.median(shares)))
    assert 0.7 < typical_matmul_share() < 0.8
    d = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="dgx-spark", precision="q4_k_m",
                           engine="llamacpp"), CAT)
    mach, dtype = machine(d)
    assert float(mach.peak_flops) == pytest.approx(60e12)  # fp16: the measured 60 of 125 rated
    assert float(mach.bandwidth) == pytest.approx(spark.memory_bandwidth_gb_s * 1e9)
    rated = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="rtx-6000-ada", precision="q4_k_m",
                               engine="llamacpp"), CAT)
    assert CAT.accelerator("rtx-6000-ada").matmul_tflops is None
    assert float(machine(rated)[0].peak_flops) == pytest.approx(
        CAT.accelerator("rtx-6000-ada").dense_tflops.fp16 * 1e12 * typical_matmul_share())
    # a GeForce card measures above its rating (it boosts above the clock the rating assumes): taken as measured
    g = CAT.accelerator("rtx-5090")
    assert g.matmul_tflops.bf16 > g.dense_tflops.bf16 and matmul_fraction(g, "bf16") == pytest.approx(
        g.matmul_tflops.bf16 / g.dense_tflops.bf16)
    # its BF16 runs at half rate (FP16 rated twice it): its full-rate paths take the median share, not BF16's
    from llmplan.perf.shape import compute_rate_note

    assert g.dense_tflops.fp16 == 2 * g.dense_tflops.bf16
    for dtype in ("fp16", "fp8", "fp4"):
        assert matmul_fraction(g, dtype) == pytest.approx(typical_matmul_share())
    assert "half-rate BF16 path" in compute_rate_note(g, "fp16")
    assert compute_rate_note(g, "bf16").startswith(f"compute at {g.matmul_tflops.bf16:,.0f} TFLOPS, 114 % of")
    assert "the card runs above the clock it assumes" in compute_rate_note(g, "bf16")
    l40s = CAT.accelerator("l40s")
    assert matmul_fraction(l40s, "fp16") == pytest.approx(264.0 / 362.05)  # its own
    assert matmul_fraction(l40s, "fp8") == pytest.approx(269.2 / 362.05)  # bf16's, named in the note
    assert "the share of its measured bf16 matmul rate" in compute_rate_note(l40s, "fp8")
    # an override measuring a GeForce card's FP8 lends it to FP4, not to BF16 (nor BF16 to FP8)
    both = Accelerator.model_validate({**g.model_dump(), "matmul_tflops": {"bf16": 238.0, "fp8": 380.0}})
    assert matmul_fraction(both, "fp4") == pytest.approx(380.0 / g.dense_tflops.fp8)
    assert matmul_fraction(both, "fp16") == pytest.approx(typical_matmul_share())
    with pytest.raises(ValidationError, match="matmul_source"):
        Accelerator.model_validate({**spark.model_dump(), "matmul_source": None})
    with pytest.raises(ValidationError, match=r"matmul_tflops.fp16 \(160.0\) is more than 1.25 × dense_tflops.fp16"):
        Accelerator.model_validate({**spark.model_dump(), "matmul_tflops": {"fp16": 160}})  # rated 125
    with pytest.raises(ValidationError, match="matmul_tflops.fp8 .* needs dense_tflops.fp8"):
        Accelerator.model_validate({**spark.model_dump(), "matmul_tflops": {"fp8": 100}})  # no fp8 rating
    with pytest.raises(ValidationError, match="names no data type"):
        Accelerator.model_validate({**spark.model_dump(), "matmul_tflops": {}})


def test_attention_runs_at_the_kv_caches_rate_not_an_fp4_gemms():
    """NVFP4 GEMMs run at the FP4 rate, but attention works on the 16-bit (or FP8) KV cache: its math is priced at
    that type's measured rate; 16-bit and weight-only formats keep one rate for both (without the weight-only
    kernel's ratio, which is the GEMMs')."""
    from llmplan.perf.physics import Efficiency, attention_rate, flops_rate

    b200 = CAT.accelerator("b200")

    def mach(precision, kv, gpu="b200", engine="trtllm"):
        return machine(resolve(FitRequest(model="Qwen/Qwen3-30B-A3B", gpu=gpu, precision=precision, engine=engine,
                                          kv_precision=kv), CAT))

    m16, dtype = mach("nvfp4", "bf16")
    assert dtype == "fp4" and float(m16.peak_flops) == pytest.approx(9000e12 * 3432.5 / 4500)
    assert float(m16.attn_peak_flops) == pytest.approx(b200.matmul_tflops.bf16 * 1e12)
    assert float(mach("nvfp4", "fp8")[0].attn_peak_flops) == pytest.approx(b200.matmul_tflops.fp8 * 1e12)
    m_bf16 = mach("bf16", "bf16")[0]
    assert float(m_bf16.attn_peak_flops) == pytest.approx(float(m_bf16.peak_flops))
    e = Efficiency(eta_bw=0.8, eta_flops=0.6, step_overhead_s=0.0)
    assert float(attention_rate(m16, e)) == pytest.approx(0.6 * b200.matmul_tflops.bf16 * 1e12)
    assert float(attention_rate(dataclasses.replace(m16, attn_peak_flops=0.0), e)) == pytest.approx(
        float(flops_rate(m16, e)))


def test_compute_dtype_follows_hardware():
    fp8 = CAT.quant_format("fp8")
    assert compute_dtype(fp8, CAT.accelerator("h100-sxm")) == "fp8"
    assert compute_dtype(fp8, CAT.accelerator("a100-sxm-80gb")) == "bf16"  # no FP8 on Ampere: weight-only
    assert compute_dtype(CAT.quant_format("int4-awq"), CAT.accelerator("h100-sxm")) == "bf16"
    assert compute_dtype(CAT.quant_format("q4_k_m"), CAT.accelerator("rtx-4090")) == "fp16"


def _random_deploy(draw):
    model = draw(st.sampled_from(sorted(m.id for m in CAT.models if m.total_params < 150e9)))
    gpu = draw(st.sampled_from(sorted(a.id for a in CAT.accelerators if a.kind in ("datacenter", "workstation"))))
    family = CAT.accelerator(gpu).family  # formats vLLM loads there
    vllm = CAT.engine("vllm")
    fmt = draw(st.sampled_from([f for f in ("bf16", "fp8", "int4-awq", "int8") if vllm.loads_on(f, family)]))
    m = CAT.model(model)
    tps = [t for t in (1, 2, 4, 8) if m.num_attention_heads % t == 0 and
           (m.mla or m.num_kv_heads % t == 0 or t % m.num_kv_heads == 0)
           and t <= (CAT.accelerator(gpu).max_per_server or 1)]
    tp = draw(st.sampled_from(tps))
    return resolve(FitRequest(model=model, gpu=gpu, tp=tp, precision=fmt), CAT)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), batch=st.floats(1, 512), context=st.floats(0, 65536), prefill=st.floats(0, 16384),
       eta_bw=st.floats(0.05, 1.0), eta_fl=st.floats(0.05, 1.0), overhead=st.floats(0, 0.05), apart=st.booleans())
def test_no_prediction_beats_the_roofline(data, batch, context, prefill, eta_bw, eta_fl, overhead, apart):
    d = _random_deploy(data.draw)
    s = stage_shape(d, tuple(CAT.gguf_types), d.kv_format.bits / 8)
    m, _ = machine(d)
    if apart:  # an engine that runs prompts in steps of their own (vLLM V0 without chunked prefill)
        m = dataclasses.replace(m, mixed_prefill=0.0)
    e = Efficiency(eta_bw, eta_fl, overhead, 0.0, activation_passes=data.draw(st.floats(0, 100)))
    t = step_time(s, m, e, batch, context, prefill, context / 2)
    floor = roofline_step(s, m, batch, context, prefill, context / 2)
    assert float(t.total) >= float(floor) * (1 - 1e-12)
    # and the floor itself is at least reading the weights once, and doing the matmuls at peak
    assert float(floor) >= s.dense_weight_bytes / m.bandwidth * (1 - 1e-12)
    assert float(floor) >= s.flops_per_token * (batch + prefill) / m.peak_flops * (1 - 1e-9)  # pp = 1 here


def test_the_roofline_of_an_moe_takes_the_cheaper_prompt_arrangement():
    """An engine that runs whole prompts in steps of their own (vLLM V0) reads an MoE's experts once per
    prompt; spreading the same prompt tokens over every decode step touches most experts in each. At batch 1
    the first is cheaper, so the floor is that arrangement, not the mixed one (found by
    tests/test_api_properties.py: Qwen3-30B-A3B on an A100, 121 + 8 tokens, decode 25.6 ms under a 25.7 ms
    'floor')."""
    d = resolve(FitRequest(model="Qwen/Qwen3-30B-A3B", gpu="a100-sxm-80gb", engine="vllm-v0"), CAT)
    s = stage_shape(d, tuple(CAT.gguf_types), d.kv_format.bits / 8)
    m, _ = machine(d)
    ideal = Efficiency(1.0, 1.0, 0.0, 0.0)
    args = (1.0, 125.0, 121 / 8, 60.5)  # one sequence decoding; its prompt's share of a step
    apart = step_time(s, dataclasses.replace(m, mixed_prefill=0.0, flops_ratio=1.0, weight_only=0.0), ideal, *args)
    mixed = step_time(s, dataclasses.replace(m, mixed_prefill=1.0, flops_ratio=1.0, weight_only=0.0), ideal, *args)
    assert float(apart.total) < 0.5 * float(mixed.total)  # the experts: ~6 % + 1/8 of all, against ~64 %
    assert float(roofline_step(s, m, *args)) == pytest.approx(float(apart.floor))
    assert float(apart.floor) <= float(apart.total) < float(mixed.floor)


@pytest.mark.parametrize("output_tokens", [2, 8, 64])
def test_one_client_decodes_in_steps_of_its_own(capsys, output_tokens):
    """Review finding: at concurrency 1 with short answers, the closed loop spread C × I / O prompt
    tokens over every decode step, so one client's TPOT carried its own next prompt (Llama-3.1-8B
    on an H100, 4,000 + 8 tokens: TPOT 22.1 ms against a batch-1 decode of 8.3 ms). One client
    alone never decodes beside a prompt: its TPOT is the batch-1 decode step, and its throughput
    O tokens per (prefill + (O − 1) decode steps)."""
    code = main(["estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--input", "4000",
                 "--output", str(output_tokens), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0
    assert r["tpot_ms"] == pytest.approx(1e3 / r["decode_tok_s"], rel=1e-9)
    e2e_s = (r["ttft_ms"] + (output_tokens - 1) * r["tpot_ms"]) / 1e3
    assert r["output_tok_s"] == pytest.approx(output_tokens / e2e_s, rel=1e-9)


@given(clients=st.integers(1, 512), input_len=st.floats(1, 1e5), output_len=st.integers(2, 4096))
def test_a_closed_loop_prefills_each_prompt_once(clients, input_len, output_len):
    """Work conservation in a closed loop: over one request's cycle, its own prompt (its TTFT step)
    and the prompts in its O − 1 decode steps add up to one prompt per client."""
    from llmplan.perf.scenarios import closed_prompts

    total = (output_len - 1) * float(closed_prompts(clients, input_len, output_len)) + input_len
    assert total == pytest.approx(clients * input_len, rel=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), clients=st.integers(2, 256), input_len=st.floats(16, 32768), output_len=st.integers(1, 4))
def test_a_closed_loop_of_short_answers_cannot_outrun_its_prompts(data, clients, input_len, output_len):
    """Review finding: 64 clients sending 4,000-token prompts for one-token answers were served at 398
    requests/s (1.59 M tokens/s, 60× the batch-1 prefill rate): with no decode steps, the other clients'
    prompts went uncounted (and 50 requests/s of them were "not saturated"). Each cycle prefills every
    running client's prompt, so the requests per second, closed or open loop, never beat doing all of them
    at the roofline."""
    from llmplan.perf.scenarios import closed_loop, open_loop

    d = _random_deploy(data.draw)
    s = stage_shape(d, tuple(CAT.gguf_types), d.kv_format.bits / 8)
    m, _ = machine(d)
    e = Efficiency(0.8, 0.6, 1e-3, 0.0)
    r = closed_loop(s, m, e, float(clients), input_len, float(output_len), float(clients), 8192.0)
    floor = roofline_step(s, m, 0.0, 0.0, clients * input_len, input_len / 2)
    assert float(r.requests_s) <= clients / float(floor) * (1 + 1e-9)
    flood = open_loop(s, m, e, 1e6, input_len, float(output_len), float(clients), 8192.0)  # arrivals far beyond it
    assert bool(flood.saturated) and float(flood.requests_s) <= clients / float(floor) * (1 + 1e-9)


def test_estimate_ranges_never_print_in_scientific_notation(capsys):
    """Review finding: a throughput range printed as '1.62e+04 – 3.78e+04'."""
    from llmplan.units import fmt_sig

    assert [fmt_sig(x) for x in (12_345.0, 999.4, 3.134, 0.0123, -23_456.0)] == \
        ["12,300", "999", "3.13", "0.0123", "-23,500"]
    code = main(["estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--input", "200", "--output", "200",
                 "--concurrency", "256"])
    out = capsys.readouterr().out
    assert code == 0 and "output throughput" in out
    assert "e+0" not in out


def test_validate_prints_measured_and_predicted_values_as_plain_figures(capsys, tmp_path):
    """The validate table printed throughputs as '2.534e+04'; four significant figures, grouped, instead."""
    src = Path(__file__).resolve().parent.parent / "data" / "bench" / "perf_dev_v2.csv"
    head = src.read_text(encoding="utf-8").splitlines()[:6]  # TRT-LLM v1 rows: tens of thousands of tok/s
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(head) + "\n", encoding="utf-8")
    assert main(["validate", str(rows)]) == 0
    out = capsys.readouterr().out
    assert "e+0" not in out and re.search(r"\d{2},\d{3}", out)


def test_estimate_contract_and_interval(capsys):
    code = main(["estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--input", "1000",
                 "--output", "200", "--concurrency", "16", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0
    for k in ("ttft_ms", "tpot_ms", "output_tok_s", "total_tok_s", "max_throughput_output_tok_s", "bound"):
        assert k in r
    assert set(r["bound"]) == {"prefill", "decode"}
    assert r["bound"]["prefill"] in ("compute", "memory", "interconnect", "overhead")
    for k, iv in r["intervals"].items():
        assert iv["low"] <= r[k] <= iv["high"], k
    assert r["total_tok_s"] == pytest.approx(r["output_tok_s"] * 1200 / 200)
    assert r["definitions"]["ttft_ms"]
    assert r["max_throughput_output_tok_s"] >= r["output_tok_s"] * 0.999


def test_more_load_more_throughput_and_latency():
    base = dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", input_tokens=1000, output_tokens=200)
    low = estimate(EstimateRequest(**base, concurrency=1), CAT)
    high = estimate(EstimateRequest(**base, concurrency=64), CAT)
    assert high.output_tok_s > low.output_tok_s
    assert high.tpot_ms >= low.tpot_ms
    assert low.tpot_ms == pytest.approx(1000 / low.decode_tok_s, rel=0.35)


def test_a_one_token_answer_has_no_tpot(capsys):
    """No token follows the first: TPOT is undefined (None in JSON, 'none' in the table), and there is no decode
    phase to break down; the TTFT and throughput remain."""
    base = dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", input_tokens=4000, concurrency=4)
    one = estimate(EstimateRequest(**base, output_tokens=1), CAT)
    assert one.tpot_ms is None and one.per_stream_tok_s is None and "tpot_ms" not in one.intervals
    assert set(one.phases) == {"prefill"} and one.ttft_ms > 0 and one.output_tok_s > 0
    two = estimate(EstimateRequest(**base, output_tokens=2), CAT)
    assert two.tpot_ms > 0 and set(two.phases) == {"prefill", "decode"}
    assert main(["estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "-i", "4000", "-o", "1"]) == 0
    assert "none (one output token)" in capsys.readouterr().out


def test_a_step_holds_at_most_the_token_budget():
    """Decodes go first and a step holds at most max_num_batched_tokens: 64 clients' 4,000-token prompts do not
    all land in the 7 decode steps of an 8-token answer (36,000 prompt tokens a step); they wait for later steps.
    A smaller budget makes shorter steps (a lower TPOT) and a longer wait for the first token, for about the
    same throughput, since the prompts' work is the same."""
    base = dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", input_tokens=4000, output_tokens=8,
                concurrency=64)
    small = estimate(EstimateRequest(**base, max_num_batched_tokens=4096), CAT)
    big = estimate(EstimateRequest(**base, max_num_batched_tokens=16384), CAT)
    assert small.tpot_ms < 0.7 * big.tpot_ms and small.ttft_ms > big.ttft_ms
    assert small.total_tok_s == pytest.approx(big.total_tok_s, rel=0.15)
    # the breakdown's decode step is the step the TPOT is made of, and speculation still shortens it
    r = estimate(EstimateRequest(**base), CAT)
    assert r.phases["decode"].time_ms == pytest.approx(r.tpot_ms, rel=0.01)
    spec = estimate(EstimateRequest(**base, spec_tokens=3, spec_acceptance=0.7, spec_draft_cost=0.05), CAT)
    assert spec.tpot_ms < r.tpot_ms


def test_the_phase_breakdown_adds_up_to_the_step_and_names_its_largest_part():
    """The kernels of a step run one after the other, each bound by memory or by compute: the split adds up to the
    step time and the bound is its largest part. In a big FP8 decode batch the GEMMs are compute-bound while
    attention streams the KV cache, so "compute-bound" comes with all bytes alone taking longer than all FLOPs
    alone, which the breakdown shows apart (alone_ms) instead of as the split."""
    r = estimate(EstimateRequest(model="meta-llama/Llama-3.3-70B-Instruct", gpu="h100-sxm", tp=2, precision="fp8",
                                 input_tokens=1000, output_tokens=1000, concurrency=128), CAT)
    for ph in r.phases.values():
        assert sum(ph.split_ms.values()) == pytest.approx(ph.time_ms, rel=1e-3)
        assert ph.bound == max(ph.split_ms, key=lambda k: ph.split_ms[k])
        assert ph.alone_ms["memory"] >= ph.split_ms["memory"] - 1e-6
        assert ph.alone_ms["compute"] >= ph.split_ms["compute"] - 1e-6
    dec = r.phases["decode"]
    assert dec.bound == "compute" and dec.alone_ms["memory"] > dec.alone_ms["compute"]
    assert 0 < dec.split_ms["memory"] < dec.alone_ms["memory"]


def test_tensor_parallel_lowers_tpot():
    base = dict(model="meta-llama/Llama-3.1-70B-Instruct", gpu="h100-sxm", input_tokens=500, output_tokens=200)
    tp2 = estimate(EstimateRequest(**base, tp=2), CAT)
    tp8 = estimate(EstimateRequest(**base, tp=8), CAT)
    assert tp8.tpot_ms < tp2.tpot_ms


def test_speculative_decoding_is_an_input():
    base = dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", input_tokens=500, output_tokens=200)
    plain = estimate(EstimateRequest(**base), CAT)
    spec = estimate(EstimateRequest(**base, spec_tokens=3, spec_acceptance=0.7, spec_draft_cost=0.05), CAT)
    none_accepted = estimate(EstimateRequest(**base, spec_tokens=3, spec_acceptance=0.0, spec_draft_cost=0.05), CAT)
    assert spec.tpot_ms < plain.tpot_ms < none_accepted.tpot_ms
    assert spec.speculative["tokens_per_step"] == pytest.approx((1 - 0.7 ** 4) / 0.3)


def test_engines_differ_on_the_same_hardware():
    base = dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="rtx-4090", input_tokens=512, output_tokens=128,
                precision="bf16")
    a = estimate(EstimateRequest(**base, engine="llamacpp"), CAT)
    b = estimate(EstimateRequest(**base, engine="trtllm"), CAT)
    assert a.decode_tok_s != b.decode_tok_s


@pytest.mark.parametrize("argv, needle", [
    (["estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--input", "0", "--output", "10"], "--input"),
    (["estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--output", "10"], "--input"),
    (["estimate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--input", "5", "--output", "5",
      "--spec-acceptance", "1.5"], "--spec-acceptance"),
    (["validate", "/nonexistent.csv"], "cannot read"),
    (["calibrate"], "--data"),
])
def test_perf_commands_bad_input(capsys, argv, needle):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_validate_rejects_a_csv_without_the_columns(tmp_path, capsys):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    assert main(["validate", str(p)]) == 2
    assert "missing columns" in capsys.readouterr().err


def test_validate_contract_on_a_small_file(tmp_path, capsys):
    from .conftest import BENCH

    lines = (BENCH / "perf_dev_v2.csv").read_text().splitlines()
    picked = [lines[0]] + lines[1:1141:40]
    bad = "X-1,X,some/unknown-model,h100-sxm,1,1,1,1,bf16,,vllm,100,100,,,batch1,,,decode_tok_s,10,tok/s,,"
    (tmp_path / "cases.csv").write_text("\n".join(picked + [bad]) + "\n")
    assert main(["validate", str(tmp_path / "cases.csv"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["rows"]) == len(picked)
    row = r["rows"][0]
    assert set(row) >= {"id", "predicted", "measured", "error_pct", "status", "reason"}
    unknown = next(x for x in r["rows"] if x["id"] == "X-1")
    assert unknown["status"] == "unsupported" and "unknown model" in unknown["reason"]
    s = r["summary"]
    assert set(s) == {"by_metric", "by_scenario", "overall"}
    assert set(s["overall"]) >= {"n", "mdape_pct", "within_25_pct", "unsupported"}
    assert s["overall"]["unsupported"] == 1
    assert 0 <= s["overall"]["within_25_pct"] <= 100


def test_validate_summary_when_no_row_can_be_predicted(tmp_path, capsys):
    """A file whose every row names an engine the catalog lacks (data/bench/ext has such sources)
    prints its per-row reasons and an empty summary, exit 0, instead of failing on the summary."""
    from .conftest import BENCH

    header = (BENCH / "perf_dev_v2.csv").read_text().splitlines()[0]
    row = ("E-1,E,meta-llama/Llama-2-7b-chat-hf,a100-sxm-80gb,1,1,1,1,fp16,,lmdeploy,128,128,16,,fixed_concurrency,"
           "fixed,48,output_tok_s,1272.47,tok/s,,")
    (tmp_path / "ext.csv").write_text(header + "\n" + row + "\n")
    assert main(["validate", str(tmp_path / "ext.csv")]) == 0
    out = capsys.readouterr().out
    assert "unknown engine 'lmdeploy'" in out and "unsupported rows: 1" in out
    assert main(["validate", str(tmp_path / "ext.csv"), "--json"]) == 0
    o = json.loads(capsys.readouterr().out)["summary"]["overall"]
    assert o["n"] == 0 and o["mdape_pct"] is None and o["unsupported"] == 1


def test_calibration_is_reproducible(tmp_path):
    from llmplan.cli import main as cli

    from .conftest import BENCH

    lines = (BENCH / "perf_dev_v2.csv").read_text().splitlines()
    # two source groups (the interval factors hold each out in turn: three fits per run), batch-speed rows
    # that predict fast
    rows = [ln for ln in lines[1:] if ",XJD," in ln or ",LCPP," in ln][::6]
    (tmp_path / "small.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    outs = []
    for k in range(2):
        out = tmp_path / f"cal{k}.yaml"
        assert cli(["calibrate", "--data", str(tmp_path / "small.csv"), "--out", str(out), "--date", "2026-01-02"]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    assert "as_of: '2026-01-02'" in outs[0] and "sha256" in outs[0]
    # several source groups: the interval factors are fitted (each group held out in turn), one per entry
    assert outs[0].count("interval_scale:") == outs[0].count("  engine:")
    # the written file is a valid user catalog override
    d = tmp_path / "cat"
    d.mkdir()
    (d / "calibration.yaml").write_text(outs[0])
    assert len(load_catalog([d]).calibrations) >= 1


def test_shipped_calibration_matches_a_rerun():
    """The calibration in the package was fitted on the development files as they are now (a file
    added to data/bench/ without re-running `llmplan calibrate` fails here)."""
    from llmplan.perf.calibrate import fit_all, sha256
    from llmplan.perf.cases import read_cases

    from .conftest import dev_perf_files

    shipped = {c.id: c for c in CAT.calibrations}
    pooled = shipped["any engine on any hardware"]
    for f in dev_perf_files():
        assert f"{f.name} (sha256 {sha256(f)[:16]}" in pooled.source, f.name
    assert pooled.n_rows >= 1000
    assert all(0 < c.eta_bw <= 1 and 0 < c.eta_flops <= 1 and c.step_overhead_s >= 0 for c in shipped.values())
    del fit_all, read_cases  # the full refit runs in benchmarks (10 s), not here


def test_user_calibration_from_vllm_json(tmp_path, capsys):
    result = {"completed": 100, "total_input_tokens": 100_000, "total_output_tokens": 20_000,
              "request_rate": 4.0, "max_concurrency": None, "mean_ttft_ms": 80.0, "mean_tpot_ms": 14.0,
              "mean_itl_ms": 14.0, "output_throughput": 800.0, "request_throughput": 4.0,
              "total_token_throughput": 4800.0}
    (tmp_path / "run.json").write_text(json.dumps(result))
    d = tmp_path / "mycat"
    d.mkdir()
    code = main(["calibrate", "--from", str(tmp_path / "run.json"), "--model", "meta-llama/Llama-3.1-8B-Instruct",
                 "--gpu", "h100-sxm", "--catalog", str(d), "--date", "2026-01-02", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["rows"] == 6 and (d / "calibration.yaml").is_file()
    cal = load_catalog([d]).calibrations
    mine = next(c for c in cal if c.engine == "vllm" and c.family == "hopper")
    assert mine.n_rows == 6
    # the estimate now uses the user's calibration for vLLM on Hopper
    assert main(["estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--input", "1000", "--output",
                 "200", "--request-rate", "4", "--catalog", str(d), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["calibration"]["level"] == "engine×family×arch"  # Llama-3.1-8B: a dense model
    assert np.isfinite(r["ttft_ms"])


@pytest.mark.parametrize(("model", "fmt", "tp"), [
    ("meta-llama/Llama-3.1-70B", "fp8", 2),  # dense, GQA split over TP
    ("Qwen/Qwen3-4B", "bf16", 1),  # tied embeddings: the engine's lm_head copy
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", "bf16", 4),  # linear attention state, MoE
    ("google/gemma-2-27b-it", "fp8", 2),  # sliding window, tied
    ("deepseek-ai/DeepSeek-V3", "fp8", 8),  # MLA, MoE
])
def test_sweep_agrees_with_the_single_estimate_path(model, fmt, tp):
    """The sweep takes its stage shapes from perf/shape.py (one derivation): its step time equals the
    single-configuration path's for every architecture kind."""
    from llmplan.perf.cases import is_dequant
    from llmplan.perf.efficiency import efficiency_arrays, lookup, model_arch, params_of, table_from_catalog
    from llmplan.perf.scenarios import closed_prompts, mixed_step
    from llmplan.perf.sweep import sweep

    res = sweep(CAT, engine="vllm", formats=["bf16", "fp8"], tps=(1, 2, 4, 8), concurrency=(1, 16),
                input_tokens=1000, output_tokens=200)
    assert res.configurations == len(CAT.models) * 2 * len(CAT.accelerators) * 4 * 2
    i = next(k for k, (m, f) in enumerate(zip(res.models, res.formats, strict=True)) if m == model and f == fmt)
    a = res.accelerators.index("h100-sxm")
    t = [1, 2, 4, 8].index(tp)
    d = resolve(FitRequest(model=model, gpu="h100-sxm", tp=tp, precision=fmt), CAT)
    s = stage_shape(d, tuple(CAT.gguf_types), d.kv_format.bits / 8)
    m, dtype = machine(d)
    cal = params_of(lookup(table_from_catalog(CAT), "vllm", "hopper", model_arch(d.model))[0])

    class C:
        dequant = is_dequant(d.weight_format, dtype)

    e = efficiency_arrays([C()], [cal])
    # the sweep's concurrency is a closed loop of clients: the other 15 send the prompts of a step
    one = float(mixed_step(s, m, e, 16.0, 1000.0, 200.0, closed_prompts(16.0, 1000.0, 200.0)).total[0])
    assert res.valid[i, a, t, 1]
    assert res.tpot_s[i, a, t, 1] == pytest.approx(one, rel=1e-9)


@pytest.fixture(scope="module")
def dev_validation():
    from llmplan.perf.validate import validate

    from .conftest import dev_perf_files

    return validate(dev_perf_files(), CAT)


def test_every_development_row_is_predictable(dev_validation):
    bad = [(r["id"], r["reason"]) for r in dev_validation["rows"] if r["status"] != "ok"]
    assert not bad


# Metrics that miss the ≤ 20 % target, each with its reason (reported in docs/accuracy.md, not hidden)
# and a bound it must stay within.
DOCUMENTED_MISSES = {
    "ttft_ms": (30.0, "the TensorRT-LLM v0.14 Triton online-serving rows at TP4 (Llama-3.1-70B on H100/H200): "
                      "all-reduce is now the measured NVLink cost (about 8 ms of a 60 ms prefill) instead of a "
                      "fitted latency that also absorbed what else makes TP4 slower there (thinner per-GPU "
                      "GEMMs, Triton request handling); those rows are predicted about 25 % too fast"),
    "tpot_ms": (25.0, "all 20 rows are SGLang on Ascend with prefill/decode disaggregation and MTP speculative "
                      "decoding, which the model does not represent; the only SGLang source, so its fit leans on "
                      "the pooled prior (23.4 % since the TensorRT-LLM rows run with their benchmark's FP8 KV "
                      "cache and admission, which moved that prior)"),
}


def test_shipped_calibration_meets_the_accuracy_targets(dev_validation):
    """Regression guard for the targets of the performance issue (measured in benchmarks/accuracy_report.py)."""
    s = dev_validation["summary"]
    assert s["overall"]["within_25_pct"] >= 70
    assert s["overall"]["mdape_pct"] <= 15
    for metric, v in s["by_metric"].items():
        if v["n"] >= 10:
            limit = DOCUMENTED_MISSES.get(metric, (20.0, ""))[0]
            assert v["mdape_pct"] <= limit, (metric, v)


def test_validation_reports_each_protocol(dev_validation):
    """Rows are scored by how their benchmark ran: finite runs of N prompts apart from steady states."""
    by = dev_validation["summary"]["by_scenario"]
    assert {"batch1", "max_throughput", "max_throughput, N prompts", "fixed_concurrency",
            "fixed_concurrency, N prompts", "server, N prompts"} <= set(by)
    assert sum(v["n"] for v in by.values()) == dev_validation["summary"]["overall"]["n"]


def test_several_benchmark_files_and_globs(tmp_path):
    """Files are read together (ids unique across them); a glob skips a file beside a later
    version of itself; an explicitly named file is always read."""
    from llmplan.perf.cases import bench_files, read_cases

    from .conftest import BENCH

    lines = (BENCH / "perf_dev_v2.csv").read_text().splitlines()
    (tmp_path / "perf_a.csv").write_text("\n".join([lines[0], *lines[1:6]]) + "\n")
    (tmp_path / "perf_a_v2.csv").write_text("\n".join([lines[0], *lines[6:9]]) + "\n")
    (tmp_path / "perf_b.csv").write_text("\n".join([lines[0], *lines[9:11]]) + "\n")
    files, notes = bench_files([str(tmp_path / "perf_*.csv")])
    assert [f.name for f in files] == ["perf_a_v2.csv", "perf_b.csv"]
    assert notes == ["perf_a.csv skipped: superseded by perf_a_v2.csv"]
    assert len(read_cases(files, CAT).cases) == 5
    files, _ = bench_files([str(tmp_path / "perf_a.csv"), str(tmp_path / "perf_b.csv")])
    assert len(read_cases(files, CAT).cases) == 7
    (tmp_path / "perf_c.csv").write_text("\n".join([lines[0], lines[1]]) + "\n")
    with pytest.raises(LlmplanError, match="already in perf_a.csv"):
        read_cases([tmp_path / "perf_a.csv", tmp_path / "perf_c.csv"], CAT)
    assert main(["validate", str(tmp_path / "perf_*.csv"), "--json"]) == 0


def test_protocol_columns_are_read_and_checked(tmp_path, capsys):
    from llmplan.perf.cases import build_case

    from .conftest import BENCH

    header, first = (BENCH / "perf_dev_v2.csv").read_text().splitlines()[:2]
    row = dict(zip(header.split(","), next(__import__("csv").reader([first])), strict=True))
    assert build_case(dict(row, num_prompts="500", length_dist="sharegpt"), CAT).out_sigma > 1.0
    assert build_case(dict(row, num_prompts="", length_dist="fixed"), CAT).num_prompts == math.inf
    with pytest.raises(LlmplanError, match="length_dist 'sonnet'"):
        build_case(dict(row, length_dist="sonnet"), CAT)
    with pytest.raises(LlmplanError, match="num_prompts"):
        build_case(dict(row, num_prompts="2.5"), CAT)


def test_server_flags_in_notes_set_the_engine_limit_and_an_unfit_row_is_refused():
    """A row whose notes record `--gpu-memory-utilization` runs with that KV cache, not the engine's
    default one; `--max-num-seqs` caps the sequences; a served row that cannot hold its weights is
    refused instead of being predicted at one sequence."""
    from llmplan.perf.cases import build_case, engine_flags

    row = {"id": "x", "model": "Qwen/Qwen2-7B-Instruct", "hardware": "a100-sxm-80gb", "num_gpus": "1", "tp": "1",
           "precision": "bf16", "engine": "vllm", "input_len": "1024", "output_len": "1024",
           "scenario": "max_throughput", "num_prompts": "500", "length_dist": "fixed", "metric": "output_tok_s",
           "notes": "vllm serve ... (no flags)"}
    vllm, sglang = CAT.engines.find("vllm"), CAT.engines.find("sglang")
    assert engine_flags("vllm serve m --gpu-memory-utilization 0.25 --max-num-seqs 12 --max_num_batched_tokens "
                        "8192.", vllm) == {"memory_fraction": 0.25, "max_num_seqs": 12, "max_num_batched_tokens": 8192}
    assert engine_flags("--mem-fraction-static=0.8 --max-running-requests 64 --max-num-seqs 3", sglang) == {
        "memory_fraction": 0.8, "max_num_seqs": 64}  # another engine's flag is not this one's
    assert engine_flags("kv_cache_free_gpu_mem_fraction 0.95 in most cases", CAT.engines.find("trtllm")) == {}
    default = build_case(row, CAT)
    quarter = build_case(dict(row, notes="--gpu-memory-utilization 0.25"), CAT)
    assert quarter.limit < default.limit / 3  # 0.25 of 80 GB less 15 GB of weights vs 0.92 of it
    assert build_case(dict(row, notes="--max-num-seqs 12"), CAT).limit == 12
    assert build_case(dict(row, notes="--max-num-batched-tokens 8192"), CAT).chunk == 8192
    with pytest.raises(LlmplanError, match="does not fit"):
        build_case(dict(row, notes="--gpu-memory-utilization 0.15"), CAT)
    assert build_case(dict(row, scenario="batch1", metric="decode_tok_s", notes="--gpu-memory-utilization 0.15"),
                      CAT).limit == 1


def test_tensorrt_llm_reserves_the_answer_and_its_benchmark_tool_runs_fp8_weights_with_an_fp8_kv_cache():
    """TensorRT-LLM's default scheduler (GUARANTEED_NO_EVICT) admits a request with KV for its prompt and whole
    answer: 300,000 cached tokens hold 300,000 / (1,000 + 1,000) = 150 sequences, where vLLM, taking blocks as
    sequences grow, holds 300,000 / (1,000 + 500) = 200. trtllm-bench runs FP8 and NVFP4 weights with an FP8 KV
    cache (engines catalog, benchmark_kv_precision): a row that names the tool gets it, one that does not or
    that names its own KV format keeps it."""
    from llmplan.perf.cases import build_case
    from llmplan.perf.limits import engine_limit

    def dep(engine):
        return resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", precision="fp8",
                                  engine=engine), CAT)

    assert engine_limit(dep("trtllm"), CAT, 1000, 1000, kv_capacity_tokens=300_000) == 150
    assert engine_limit(dep("vllm"), CAT, 1000, 1000, kv_capacity_tokens=300_000) == 200
    row = {"id": "x", "model": "meta-llama/Llama-3.1-8B", "hardware": "h100-sxm", "num_gpus": "1", "tp": "1",
           "precision": "fp8", "engine": "trtllm", "input_len": "128", "output_len": "2048",
           "scenario": "max_throughput", "metric": "output_tok_s", "notes": "trtllm-bench throughput; version 0.17"}
    bench, plain = build_case(row, CAT), build_case(dict(row, notes="a served run; version 0.17"), CAT)
    own = build_case(dict(row, kv_precision="bf16"), CAT)
    kv = {k: float(c.shape.kv_bytes_per_token) for k, c in (("bench", bench), ("plain", plain), ("own", own))}
    assert kv["bench"] == pytest.approx(kv["plain"] / 2) and kv["own"] == kv["plain"]
    assert bench.limit > 1.9 * plain.limit  # the same cache holds twice the FP8 tokens
    sixteen = build_case(dict(row, precision="bf16"), CAT)  # 16-bit weights keep a 16-bit cache
    assert float(sixteen.shape.kv_bytes_per_token) == pytest.approx(kv["plain"])


def test_interval_band_of_a_fresh_fit_is_its_residual_percentiles():
    from types import SimpleNamespace

    from llmplan.perf.accuracy import band

    fit = SimpleNamespace(log_errors=np.log(np.array([0.5, 1.0, 1.0, 1.0, 2.0, np.nan])))
    # np.percentile (linear) of [ln 0.5, 0, 0, 0, ln 2]: p10 = 0.6 ln 0.5, p90 = 0.6 ln 2
    lo, hi = band(fit)
    assert lo == pytest.approx(0.6 * math.log(0.5)) and hi == pytest.approx(0.6 * math.log(2.0))
    shipped = SimpleNamespace(log_error_p10=-0.2, log_error_p90=0.3)
    assert band(shipped) == (-0.2, 0.3)


def test_interval_coverage_counts_only_scored_rows():
    from llmplan.perf.accuracy import coverage_pct

    rows = [{"covered": True}, {"covered": False}, {"covered": True}, {"status": "unsupported"}]
    assert coverage_pct(rows) == pytest.approx(200 / 3)
    assert coverage_pct([{"status": "unsupported"}]) is None


def test_dp_attention_a_prompt_runs_on_one_gpu_and_the_cache_holds_more_sequences():
    """With data-parallel attention the GPUs wait at every layer for the one prefilling a prompt: the busiest
    carries max(one prompt, prefill / TP); a lone prompt's first token comes later than under TP, while the KV
    cache (not replicated) holds many more sequences."""
    from llmplan.perf.physics import imbalance

    assert [float(imbalance(8, p, 2000)) for p in (2000, 8000, 16000, 64000)] == [8.0, 2.0, 1.0, 1.0]
    assert float(imbalance(1, 2000, 2000)) == 1.0

    def run(dp, conc):
        return estimate(EstimateRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8",
                                        engine="sglang", input_tokens=2000, output_tokens=500, concurrency=conc,
                                        dp_attention=dp), CAT)

    assert run(True, 1).ttft_ms > 1.5 * run(None, 1).ttft_ms
    assert any(n.startswith("data-parallel attention over the 8 GPUs") for n in run(True, 1).notes)
    assert not any("data-parallel attention" in n for n in run(None, 1).notes)
    assert run(True, 1).max_batch > 5 * run(None, 1).max_batch
    busy_tp, busy_dp = run(None, 512), run(True, 512)
    assert busy_dp.ttft_ms < busy_tp.ttft_ms / 10  # under TP 512 sequences do not fit: a queue; here they do
    row = {"id": "x", "model": "deepseek-ai/DeepSeek-V3", "hardware": "h200", "num_gpus": "8", "tp": "8",
           "precision": "fp8", "engine": "sglang", "input_len": "2000", "output_len": "500", "concurrency": "512",
           "scenario": "fixed_concurrency", "metric": "output_tok_s"}
    from llmplan.perf.cases import build_case

    plain = build_case(row, CAT)
    flagged = build_case({**row, "notes": "python -m sglang.launch_server --tp 8 --dp 8 --enable-dp-attention"}, CAT)
    assert float(plain.shape.dp_attention_ranks) == 1.0 and float(flagged.shape.dp_attention_ranks) == 8.0
    assert flagged.limit > 5 * plain.limit


def test_dp_attention_decode_with_fewer_sequences_than_gpus_reads_a_whole_sequence():
    """With data-parallel attention a decoding sequence's KV cache is read by the one GPU that holds it: with one
    sequence on 8 GPUs the step waits for that GPU to read all of it (DeepSeek-V3's 70,272 bytes per token), not
    an eighth; with 8 sequences each GPU reads one, the same time, where TP (the latent replicated) reads all 8.
    MLA's absorbed attention runs all 128 heads over each cached latent, so on that GPU its FLOPs and its reads
    are close: where that GPU is memory-bound TP takes exactly 8 times as long; where it is compute-bound (attention
    at the 16-bit rate over a 16-bit cache), TP, its FLOPs split and its reads not, takes 8 times the reads, less
    than 8 times the DP GPU's time."""
    from llmplan.perf.physics import decode_imbalance
    from llmplan.perf.shape import stage_shape
    from llmplan.serving.cluster import replica_spec

    def model(dp):
        d = resolve(FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8", engine="sglang",
                               dp_attention=dp), CAT)
        return d, replica_spec(d, CAT).model

    d, dp = model(True)
    _, tp = model(None)
    s = stage_shape(d, tuple(CAT.gguf_types), 2)
    assert [float(decode_imbalance(s, n)) for n in (1, 2, 4, 8, 16)] == [8.0, 4.0, 2.0, 1.0, 1.0]
    one = dp.step(1, 100_000) - dp.step(1, 0)  # the whole sequence's attention, on one GPU
    assert dp.kv_bytes * 8 == pytest.approx(70_272)
    assert one == pytest.approx(100_000 * 8 * max(dp.kv_bytes / dp.bw, dp.attn / dp.peak), rel=1e-9)
    assert dp.step(8, 800_000) - dp.step(8, 0) == pytest.approx(one, rel=1e-9)
    # under TP every GPU reads all 8 latents and runs 1/8 of the heads: memory-bound, 7 to 8 times as long
    assert tp.step(8, 800_000) - tp.step(8, 0) == pytest.approx(800_000 * 70_272 / tp.bw, rel=1e-9)
    tp_extra = tp.step(8, 800_000) - tp.step(8, 0)
    if dp.kv_bytes / dp.bw >= dp.attn / dp.peak:  # memory-bound on that GPU: the same bytes, all on each
        assert tp_extra == pytest.approx(8 * one, rel=1e-9)
    else:  # compute-bound there: TP's FLOPs are split, only its reads are not
        assert tp_extra == pytest.approx(8 * 100_000 * 8 * dp.kv_bytes / dp.bw, rel=1e-9)
        assert tp_extra < 8 * one
    # the simulator's decode runs (closed-form sums) charge the same
    assert dp.stretch(1, 100_000, 3) == pytest.approx(sum(dp.step(1, 100_000 + j) for j in range(3)), rel=1e-9)


def test_estimate_says_when_dp_attentions_per_rank_chunk_is_not_modelled():
    def notes(i):
        return estimate(EstimateRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8",
                                        engine="sglang", input_tokens=i, output_tokens=200, concurrency=64,
                                        dp_attention=True), CAT).notes

    assert any(n.startswith("not modelled: sglang gives each of the 8 attention ranks 1/8") for n in notes(4000))
    assert not any(n.startswith("not modelled") for n in notes(800))  # within a rank's 1,024 tokens
