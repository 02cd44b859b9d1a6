"""Invariants of the memory model over random configurations (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmplan.catalog import load_catalog
from llmplan.memory.fit import fit
from llmplan.memory.kv import kv_layout_per_stage
from llmplan.specs import FitRequest, resolve

CAT = load_catalog()
MODELS = sorted(m.id for m in CAT.models)
GPUS = sorted(a.id for a in CAT.accelerators if a.kind in ("datacenter", "workstation"))
FORMATS = ["bf16", "fp8", "int4-awq", "int8"]
VLLM = CAT.engine("vllm")


def _loads(gpu: str, fmt: str) -> bool:
    """vLLM (the default engine) loads this format on this accelerator's family (engines catalog)."""
    return VLLM.loads_on(fmt, CAT.accelerator(gpu).family)


# (gpu, format) pairs the default engine serves, and the GPUs where it loads every format compared below
PAIRS = [(g, f) for g in GPUS for f in FORMATS if _loads(g, f)]
GPUS_ALL_WIDTHS = [g for g in GPUS if all(_loads(g, f) for f in ("bf16", "fp8", "int4-awq"))]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tps(model_id: str) -> list[int]:
    m = CAT.model(model_id)
    out = []
    for tp in (1, 2, 4, 8):
        if m.num_attention_heads % tp == 0 and (m.mla or m.num_kv_heads % tp == 0 or tp % m.num_kv_heads == 0):
            out.append(tp)
    return out


def _fit(model, gpu, tp, fmt="bf16", context=4096, concurrency=1, pp=1):
    req = FitRequest(model=model, gpu=gpu, tp=tp, pp=pp, precision=fmt)
    return fit(resolve(req, CAT), tuple(CAT.gguf_types), context_tokens=context, concurrency=concurrency)


@SETTINGS
@given(model=st.sampled_from(MODELS), pair=st.sampled_from(PAIRS), context=st.integers(1, 32768))
def test_more_tensor_parallel_gpus_never_need_more_memory_per_gpu(model, pair, context):
    """Weights, activations and KV per GPU never grow with TP (fixed overheads aside)."""
    gpu, fmt = pair
    if CAT.model(model).max_context < context:
        context = CAT.model(model).max_context
    prev = None
    for tp in _tps(model):
        if tp > (CAT.accelerator(gpu).max_per_server or 1):
            break
        r = _fit(model, gpu, tp, fmt, context)
        load = r.per_gpu_weights_bytes + r.per_gpu_activation_bytes + r.per_gpu_kv_required_bytes
        if prev is not None:
            assert load <= prev * (1 + 1e-9) + 1
        prev = load


@SETTINGS
@given(model=st.sampled_from(MODELS), a=st.integers(1, 200_000), b=st.integers(1, 200_000),
       tp=st.sampled_from([1, 2, 4, 8]), kv_bytes=st.sampled_from([0.5, 1, 2]))
def test_kv_per_sequence_grows_with_context(model, a, b, tp, kv_bytes):
    m = CAT.model(model)
    if tp not in _tps(model):
        tp = 1
    for lay in kv_layout_per_stage(m, kv_bytes, tp, 1, 16):
        lo, hi = sorted((a, b))
        assert 0 < lay.sequence_bytes(lo) <= lay.sequence_bytes(hi)


@SETTINGS
@given(model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS), concurrency=st.integers(1, 64),
       context=st.integers(256, 16384))
def test_fit_is_monotone_in_concurrency_and_consistent(model, gpu, concurrency, context):
    m = CAT.model(model)
    context = min(context, m.max_context)
    tp = max(t for t in _tps(model) if t <= (CAT.accelerator(gpu).max_per_server or 1))
    r = _fit(model, gpu, tp, "bf16", context, concurrency)
    assert r.fits == (r.per_gpu_required_bytes <= r.per_gpu_capacity_bytes and not r.reasons)
    assert r.kv_capacity_tokens >= 0 and r.max_concurrency >= 0 and 0 <= r.max_context_tokens <= m.max_context
    if r.fits and concurrency > 1:
        assert _fit(model, gpu, tp, "bf16", context, concurrency - 1).fits
    if r.fits:
        assert r.max_concurrency >= concurrency


@SETTINGS
@given(model=st.sampled_from(MODELS), gpu=st.sampled_from(GPUS_ALL_WIDTHS))
def test_fewer_weight_bits_never_need_more_weight_memory(model, gpu):
    tp = _tps(model)[0]
    sizes = [_fit(model, gpu, tp, fmt).weights_bytes for fmt in ("bf16", "fp8", "int4-awq")]
    assert sizes[0] >= sizes[1] >= sizes[2] > 0


def test_bigger_memory_never_holds_fewer_tokens():
    small = _fit("meta-llama/Llama-3.1-8B-Instruct", "l40s", 1)
    big = _fit("meta-llama/Llama-3.1-8B-Instruct", "h200-sxm", 1)
    assert big.kv_capacity_tokens > small.kv_capacity_tokens
