"""Engine profiles by version, defaults resolved per device, measured all-reduce costs and
weight-only kernels: every expected value is worked out by hand from the catalog entries'
sourced numbers (engines.yaml, collectives.yaml, kernels.yaml)."""

from __future__ import annotations

import math

import pytest

from llmplan.catalog import load_catalog
from llmplan.errors import LlmplanError
from llmplan.perf.estimate import EstimateRequest, estimate
from llmplan.perf.feasibility import LatencyFloor, infeasible_reason
from llmplan.perf.physics import Efficiency, Machine, step_time
from llmplan.perf.shape import machine, stage_shape
from llmplan.specs import FitRequest, resolve, row_engine_version, select_profile

CAT = load_catalog()


def _d(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", **kw):
    return resolve(FitRequest(model=model, gpu=gpu, **kw), CAT)


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize(
    "notes, expected",
    [
        ("x || norm: src_engine='TensorRT-LLM' version='0.17'; date=2025-02 (v0.17 data)", ("0.17", "2025-02")),
        (
            "llama-bench || norm: src_engine='llama.cpp (CUDA)' version='build 2f68ce7cf (6918)'; date=2025-11-02",
            ("6918", "2025-11-02"),
        ),
        (
            "snapshots || norm: version='unspecified (May 2024 build, LLAMA_CUBLAS / Metal)'; date=2024-05",
            (None, "2024-05"),
        ),
        ("served with vLLM 0.6.3 at 16 clients", ("0.6.3", None)),
        ("SGLang 0.4.6.post1, DP attention", ("0.4.6", None)),
        ("no version here", (None, None)),
    ],
)
def test_row_engine_version(notes, expected):
    assert row_engine_version(notes) == expected


@pytest.mark.parametrize("version, profile", [("0.6.3", "0.6"), ("0.5.1", "0.4"), ("0.5.3", "0.6"), ("0.8.5", "0.8"),
                                              ("0.10.2", "0.9"), ("0.27.1", "0.9")])
def test_a_version_selects_the_profile_covering_it(version, profile):
    eng, label = select_profile(CAT.engine("vllm"), version)
    assert label.startswith(f"vllm@{profile}:")


def test_newest_and_unknown_versions():
    eng, label = select_profile(CAT.engine("vllm"), "0.31.0")
    assert eng is CAT.engine("vllm")  # at or past the entry's from_version: the entry itself
    with pytest.raises(LlmplanError, match="no vllm profile covers version 0.3"):
        select_profile(CAT.engine("vllm"), "0.3")
    # a benchmark row older than every profile gets the oldest one instead of an error
    assert select_profile(CAT.engine("vllm"), "0.3", strict=False)[1].startswith("vllm@0.4:")


def test_a_date_selects_llama_cpp_before_mmq():
    assert select_profile(CAT.engine("llamacpp"), None, "2024-05")[1].startswith("llamacpp@2024.05")
    assert select_profile(CAT.engine("llamacpp"), None, "2025-11")[0] is CAT.engine("llamacpp")
    assert select_profile(CAT.engine("llamacpp"), "6918", None, strict=False)[0] is CAT.engine("llamacpp")


def test_engine_at_version_and_engine_version_agree_or_fail():
    assert _d(engine="vllm@0.6").engine_profile == _d(engine="vllm", engine_version="0.6.2").engine_profile
    with pytest.raises(LlmplanError, match="disagree"):
        _d(engine="vllm@0.6", engine_version="0.9")


# ---------------------------------------------------------------- defaults per device


@pytest.mark.parametrize("gpu, seqs, tokens", [
    ("h100-sxm", 1024, 8192),  # 79.65 GiB >= 70, not an A100
    ("a100-sxm-80gb", 256, 2048),  # >= 70 GiB but 'a100' in the name
    ("l40s", 256, 2048),  # 48 GiB
    ("b200", 1024, 16384),  # >= 160 GiB
])
def test_vllm_batch_defaults_follow_device_memory(gpu, seqs, tokens):
    d = _d(gpu=gpu).engine.defaults
    assert (d.max_num_seqs, d.max_num_batched_tokens) == (seqs, tokens)


def test_vllm_0_8_had_no_a100_exclusion():
    d = _d(gpu="a100-sxm-80gb", engine="vllm@0.8").engine.defaults
    assert (d.max_num_seqs, d.max_num_batched_tokens) == (1024, 8192)


def test_vllm_v0_chunks_only_long_context_models():
    long = _d(engine="vllm@0.6").engine.defaults  # Llama 3.1: 131,072 tokens > 32,768
    assert long.chunked_prefill and long.max_num_batched_tokens == 512
    short = _d(model="meta-llama/Meta-Llama-3-8B", engine="vllm@0.6").engine.defaults  # 8,192 tokens
    assert not short.chunked_prefill and short.max_num_batched_tokens == 8192  # max(8192, 2048)
    old = _d(engine="vllm@0.4").engine.defaults  # no long-context rule before 0.5.3
    assert not old.chunked_prefill and old.max_num_batched_tokens == 131_072
    assert machine(_d(model="meta-llama/Meta-Llama-3-8B", engine="vllm@0.6"))[0].mixed_prefill == 0.0
    assert machine(_d(engine="vllm"))[0].mixed_prefill == 1.0


def test_sglang_memory_fraction_from_reserved_memory():
    # H100 reports 79.65 GiB = 81,561.6 MiB; tier < 160 GiB: chunk 8192, CUDA graphs 256 (TP < 4), 512 (TP >= 4)
    one = _d(engine="sglang")
    reserved = 512 + 8192 * 1.5 + 256 * 2 + 1 * 128  # 13,440 MiB (above the 10,240 floor)
    assert one.engine.memory.memory_fraction == round((81_561.6 - reserved) / 81_561.6, 3) == 0.835
    eight = _d(model="meta-llama/Llama-3.1-70B", engine="sglang", tp=8)
    reserved8 = 512 + 8192 * 1.5 + 512 * 2 + 8 * 128  # 14,848 MiB
    assert eight.engine.memory.memory_fraction == round((81_561.6 - reserved8) / 81_561.6, 3) == 0.818
    assert eight.engine.defaults.cuda_graph_max_bs == 512


def test_sglang_0_4_fraction_by_tp():
    d = _d(model="meta-llama/Llama-3.1-70B", engine="sglang@0.4", tp=8)
    assert d.engine.memory.memory_fraction == 0.81 and d.engine.defaults.max_num_batched_tokens == 8192
    small = _d(gpu="rtx-4090", engine="sglang@0.4")  # 23.6 GiB < 25,000 MiB
    assert small.engine.defaults.max_num_batched_tokens == 2048 and small.engine.memory.memory_fraction == 0.88


# ---------------------------------------------------------------- all-reduce


def test_pcie_all_reduce_from_measurements():
    # 4 x L40S: peer-to-peer PCIe 4.0 entry measured at 6.2 us on 2 GPUs, 2.14 us per extra hop; busbw 24.7 GB/s
    d = _d(model="meta-llama/Llama-3.1-70B", gpu="l40s", tp=4, precision="fp8")
    ar = d.allreduce
    assert ar.latency_s == pytest.approx((6.2 + 2 * 2.14) * 1e-6)  # measured at 2 GPUs + 2 hops at 2.14 us
    assert ar.bus_bw == pytest.approx(24.7e9)
    assert math.isinf(ar.custom_latency_s)  # vLLM's custom all-reduce serves at most 2 PCIe GPUs
    # a batch-1 decode step: 2 all-reduces x 80 layers of 8192 x 2 bytes each
    m = machine(d)[0]
    s = stage_shape(d, tuple(CAT.gguf_types), 2)
    t = step_time(s, m, Efficiency(1, 1, 0), 1.0, 1000.0)
    assert float(t.comm) == pytest.approx(160 * (10.48e-6 + 8192 * 2 * 1.5 / 24.7e9))  # 1.8 ms, not 72 ms


def test_nvlink_uses_the_faster_of_nccl_and_the_custom_kernel():
    ar = _d(model="meta-llama/Llama-3.1-70B", tp=8).allreduce
    assert (ar.latency_s, ar.bus_bw) == (pytest.approx(20.2e-6), pytest.approx(370e9))
    assert (ar.custom_latency_s, ar.custom_bus_bw) == (pytest.approx(10.1e-6), pytest.approx(52.6e9))
    two = _d(model="meta-llama/Llama-3.1-70B", tp=2).allreduce
    assert two.latency_s == pytest.approx(20.2e-6)  # a smaller ring is not credited below the measured time
    assert two.custom_latency_s == pytest.approx(9.5e-6)


def test_bridged_pairs_and_link_scaling():
    a40 = _d(gpu="a40", tp=2).allreduce  # NVLink bridge: the 2-GPU bridge entry, busbw scaled 56.25 / 50
    assert a40.latency_s == pytest.approx(13.4e-6) and a40.bus_bw == pytest.approx(21.4e9 * 56.25 / 50)
    a40x4 = _d(model="meta-llama/Llama-3.1-70B", gpu="a40", tp=4).allreduce  # beyond the pair: PCIe 4.0
    assert a40x4.bus_bw == pytest.approx(24.7e9)
    g2 = _d(model="meta-llama/Llama-3.1-70B", gpu="gaudi2", tp=8, engine="gaudi", precision="bf16").allreduce
    assert g2.bus_bw == pytest.approx(513e9 * 262.5 / 525)


# ---------------------------------------------------------------- weight-only kernels


@pytest.mark.parametrize("gpu, precision, engine, kernel, ratio", [
    ("h100-sxm", "int4-awq", "vllm", "machete", 1.0),
    ("a100-sxm-80gb", "int4-awq", "vllm", "marlin", 0.95),
    ("rtx-4090", "q4_k_m", "llamacpp", "llamacpp-cuda-mmq", 1.0),
    ("rtx-4090", "q4_k_m", "llamacpp@2024.05", "llamacpp-cuda-cublas-dequant", 0.84),
    ("apple-m2-ultra-76c", "q4_k_m", "llamacpp", "llamacpp-metal", 0.915),
    ("h100-sxm", "fp8", "vllm", None, 1.0),  # native FP8 math: no weight-only kernel applies
])
def test_weight_only_prefill_runs_at_the_kernels_rate(gpu, precision, engine, kernel, ratio):
    d = _d(gpu=gpu, precision=precision, engine=engine)
    m, dtype = machine(d)
    assert m.flops_ratio == ratio
    if kernel:
        assert d.kernel.id == kernel
        # compute-bound prefill of 4096 tokens: the GEMMs' 16-bit FLOPs over the kernel's share of the peak,
        # attention's over the 16-bit peak (attention is not a weight-only GEMM)
        s = stage_shape(d, tuple(CAT.gguf_types), 2)
        t = step_time(s, m, Efficiency(1, 1, 0), 0.0, 0.0, 4096.0, 2048.0)
        assert float(m.attn_peak_flops) == pytest.approx(float(m.peak_flops))
        compute = (s.flops_per_token * 4096 / (m.peak_flops * ratio)
                   + s.attn_flops_per_ctx_token * 4096 * 2048 / m.attn_peak_flops)
        # (plus, for llama.cpp builds without flash attention, the scores' own memory pass: memory time, not FLOPs)
        scores = float(m.scores_bytes) * float(s.attn_scores_per_pair) * 4096 * 2048 / float(m.bandwidth)
        assert float(t.compute) == pytest.approx(compute)
        assert float(t.total) == pytest.approx(compute + scores)


# ---------------------------------------------------------------- MLA and experts under TP


def test_mla_latent_cache_is_read_whole_on_every_tp_rank():
    d = _d(model="deepseek-ai/DeepSeek-V3", gpu="h200-sxm", tp=8, precision="fp8")
    s = stage_shape(d, tuple(CAT.gguf_types), 2)
    assert s.kv_bytes_per_token == 61 * (512 + 64) * 2  # 70,272 B: replicated, not divided by 8
    assert s.attn_flops_per_ctx_token == 4 * (128 / 8) * ((2 * 512 + 64) / 2) * 61  # heads split, latent whole
    assert s.mla == 1.0


def test_expert_bytes_per_gpu_are_the_same_split_by_tp_or_ep():
    tp = stage_shape(_d(model="deepseek-ai/DeepSeek-V3", gpu="h200-sxm", tp=8, precision="fp8"),
                     tuple(CAT.gguf_types), 2)
    ep = stage_shape(_d(model="deepseek-ai/DeepSeek-V3", gpu="h200-sxm", tp=8, ep=8, precision="fp8"),
                     tuple(CAT.gguf_types), 2)
    # TP: 1/8 of each of 256 experts; EP: 32 whole experts - the same bytes per GPU and per touched expert
    assert ep.expert_bytes_per_layer == pytest.approx(tp.expert_bytes_per_layer)


# ---------------------------------------------------------------- engines that keep prompts apart


def test_v0_without_chunking_runs_prompts_as_steps_of_their_own():
    from .test_perf import shape

    mixed = Machine(1e15, 3e12, 450e9, tp=1, pp=1)
    apart = Machine(1e15, 3e12, 450e9, tp=1, pp=1, mixed_prefill=0.0)
    e = Efficiency(1.0, 1.0, 2e-3)
    s = shape()
    # 16 decodes at context 1000 and, per step, 80 prompt tokens of 1000-token prompts (context 500)
    dec = step_time(s, mixed, e, 16.0, 1000.0).total - 2e-3
    prompt = step_time(s, mixed, e, 0.0, 0.0, 1000.0, 500.0).total - 2e-3
    t = step_time(s, apart, e, 16.0, 1000.0, 80.0, 500.0).total
    assert float(t) == pytest.approx(float(dec) + 0.08 * float(prompt) + 2e-3 * 1.08)
    assert float(step_time(s, mixed, e, 16.0, 1000.0, 80.0, 500.0).total) < float(t)


# ---------------------------------------------------------------- saturation and feasibility


def test_estimate_says_saturated_instead_of_a_ttft():
    base = dict(model="llama-3.1-70b", gpu="l40s", tp=4, precision="fp8", input_tokens=1000, output_tokens=200)
    r = estimate(EstimateRequest(**base, request_rate=1000.0), CAT)
    assert r.saturation is not None and r.saturation.unbounded and r.ttft_ms is None and r.e2e_s is None
    assert r.saturation.message.startswith("saturated: the deployment serves at most")
    assert "ttft_ms" not in r.intervals
    mu = r.saturation.max_requests_s
    assert r.requests_s == pytest.approx(mu) and mu < 1000
    finite = estimate(EstimateRequest(**base, request_rate=1000.0, num_requests=500), CAT)
    assert finite.saturation.queue_delay_s == pytest.approx(500 / 2 * (1 / mu - 1 / 1000.0))
    assert finite.ttft_ms is not None and finite.ttft_ms / 1e3 > finite.saturation.queue_delay_s
    calm = estimate(EstimateRequest(**base, request_rate=0.01), CAT)
    assert calm.saturation is None and calm.ttft_ms is not None


def test_infeasible_when_the_floor_misses_the_slo():
    from llmplan.catalog.schema import Slo

    floor = LatencyFloor(ttft_ms=300, tpot_ms=95, e2e_ms=300 + 199 * 95, tpot_bound="interconnect")
    why = infeasible_reason(floor, Slo(tpot_p50_ms=80))
    assert why.startswith("infeasible with this layout: TPOT floor 95.0 ms > 80 ms SLO (p50)")
    assert "faster interconnect" in why
    assert infeasible_reason(floor, Slo(tpot_p50_ms=100, ttft_p95_ms=500)) is None
    # TTFT at the mean lengths is only a floor for the tail, not the median
    assert infeasible_reason(floor, Slo(ttft_p50_ms=200)) is None
    assert "TTFT floor 300.0 ms > 200 ms SLO (p95)" in infeasible_reason(floor, Slo(ttft_p95_ms=200))


def test_vllm_ascend_does_not_report_memory_so_the_smallest_tier_applies():
    # vllm-ascend's NPUPlatform.get_device_total_memory raises: get_batch_defaults sees 0 bytes
    d = _d(model="Qwen/Qwen3-32B", gpu="ascend-910c", engine="vllm").engine.defaults
    assert (d.max_num_seqs, d.max_num_batched_tokens) == (256, 2048)


def test_versions_newer_than_the_newest_described_are_refused():
    assert select_profile(CAT.engine("vllm"), "0.31.4")[0] is CAT.engine("vllm")  # a patch of the newest
    with pytest.raises(LlmplanError, match="newer than the newest vllm"):
        select_profile(CAT.engine("vllm"), "0.32")
    # benchmark rows (strict=False) keep the newest profile for later versions
    assert select_profile(CAT.engine("vllm"), "0.32", strict=False)[0] is CAT.engine("vllm")


def test_vllm_on_ascend_loads_only_what_vllm_ascend_supports():
    """vLLM Ascend's quantization guide (v0.23.0) loads W8A8/W4A8 checkpoints, not AWQ: a request for AWQ on
    a 910B is refused naming what loads there, and W8A8 (int8) resolves."""
    from llmplan.specs import FitRequest, resolve

    with pytest.raises(LlmplanError, match="vllm on ascend does not load int4-awq"):
        resolve(FitRequest(model="Qwen/Qwen3-32B", gpu="ascend-910b", precision="int4-awq"), CAT)
    w8a8 = resolve(FitRequest(model="Qwen/Qwen3-32B", gpu="ascend-910b", precision="int8"), CAT)
    assert w8a8.weight_format.id == "int8"
    # the same format on a GPU family without a narrower list is unaffected
    assert resolve(FitRequest(model="Qwen/Qwen3-32B", gpu="h100-sxm", precision="int4-awq"), CAT)
