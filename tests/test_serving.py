"""Serving under load: the simulator against queueing theory and the performance model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmplan.catalog import load_catalog
from llmplan.catalog.schema import Slo
from llmplan.cli import main
from llmplan.errors import LlmplanError
from llmplan.perf.estimate import EstimateRequest, estimate
from llmplan.serving.cluster import replica_spec, simulate_cluster, summarize
from llmplan.serving.simulator import EngineLimits, simulate_replica
from llmplan.serving.workload import (
    Lengths,
    Requests,
    Workload,
    days_per_year,
    generate,
    peak_rate,
    read_trace,
)
from llmplan.specs import FitRequest, resolve

CAT = load_catalog()
D = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm"), CAT)
SPEC = replica_spec(D, CAT)


def _fixed(rate: float, n: int, i: int = 500, o: int = 50, seed: int = 7) -> Requests:
    return generate(Workload(rate_per_s=rate, input_tokens=i, output_tokens=o), CAT, seed=seed, num_requests=n)


def _service_time(limits: EngineLimits, i: int = 500, o: int = 50) -> float:
    r = simulate_replica(SPEC.model, limits, _fixed(1e-4, 20, i, o))
    return float(np.mean(r.finish_s - r.admitted_s))


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_one_at_a_time_matches_pollaczek_khinchine(rho):
    """M/D/1: mean wait = λ E[S²] / (2 (1 − ρ)) within 5 %."""
    limits = EngineLimits(1, 8192, 10**7)
    s = _service_time(limits)
    lam = rho / s
    reqs = _fixed(lam, 60_000, seed=11)
    r = simulate_replica(SPEC.model, limits, reqs)
    wait = float(np.mean(r.admitted_s - reqs.arrival_s))
    pk = lam * s * s / (2 * (1 - rho))
    assert wait == pytest.approx(pk, rel=0.05)


@pytest.mark.parametrize("replicas, router", [(1, "round-robin"), (3, "round-robin"), (3, "least-loaded")])
def test_littles_law_holds(replicas, router):
    w = Workload(rate_per_s=30, input_tokens=Lengths(mean=800, p95=2500), output_tokens=Lengths(mean=150, p95=500))
    reqs = generate(w, CAT, seed=3, num_requests=6000)
    c = simulate_cluster(SPEC, reqs, replicas, router)
    e2e = c.finish_s - reqs.arrival_s
    assert np.isfinite(e2e).all()
    span = c.end_s  # the system starts and ends empty
    L = c.area_in_system / span
    lam_w = len(reqs) / span * float(e2e.mean())
    assert L == pytest.approx(lam_w, rel=0.02)


def test_low_load_ttft_is_the_predicted_prefill():
    reqs = _fixed(0.01, 30, i=2000, o=20)
    r = simulate_replica(SPEC.model, SPEC.limits, reqs)
    ttft = r.first_token_s - reqs.arrival_s
    est = estimate(EstimateRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", input_tokens=2000,
                                   output_tokens=20), CAT)
    predicted_prefill_s = 2000 / est.prefill_tok_s
    assert np.allclose(ttft, ttft[0])
    assert float(ttft[0]) == pytest.approx(predicted_prefill_s, rel=0.01)


@pytest.mark.parametrize("prompt", [2000, 30000])
def test_sliding_window_prompts_attend_to_the_window_in_the_simulator_too(prompt):
    """gpt-oss-120b has sliding-window layers (128 tokens): a long prompt's queries there attend to the window,
    not to every earlier position. The simulator's chunked prefill (4 chunks of 8,192 for 30,000 tokens) takes
    what the performance model's prefill takes; counting every position was 26 % slower at 30,000 tokens."""
    from llmplan.perf.efficiency import deployment_efficiency
    from llmplan.perf.scenarios import prefill_time
    from llmplan.perf.shape import machine, stage_shape

    d = resolve(FitRequest(model="openai/gpt-oss-120b", gpu="h200-sxm", precision="mxfp4", engine="vllm"), CAT)
    spec = replica_spec(d, CAT)
    assert spec.model.sliding > 0 and spec.model.window < prompt
    reqs = generate(Workload(rate_per_s=1e-3, input_tokens=prompt, output_tokens=1), CAT, seed=3, num_requests=3)
    r = simulate_replica(spec.model, spec.limits, reqs)
    ttft = r.first_token_s - reqs.arrival_s
    e = deployment_efficiency(d, CAT)[0]
    svc = prefill_time(stage_shape(d, tuple(CAT.gguf_types), d.kv_format.bits / 8), machine(d)[0], e,
                       np.array([float(prompt)]), np.array([0.0]), float(spec.limits.max_num_batched_tokens))[0]
    assert np.allclose(ttft, ttft[0])
    assert float(ttft[0]) == pytest.approx(float(np.asarray(svc).ravel()[0]), rel=0.01)


def test_throughput_never_exceeds_the_maximum():
    w = Workload(rate_per_s=400, input_tokens=1000, output_tokens=200)
    reqs = generate(w, CAT, seed=5, num_requests=20_000)
    c = simulate_cluster(SPEC, reqs)
    s = summarize(c, w.slo)
    est = estimate(EstimateRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", input_tokens=1000,
                                   output_tokens=200), CAT)
    assert s["output_tok_s"] <= est.max_throughput_output_tok_s * 1.05
    assert s["output_tok_s"] >= est.max_throughput_output_tok_s * 0.5  # saturated, not idle


def test_seeded_and_identical_across_execution_modes():
    w = Workload(rate_per_s=40, input_tokens=Lengths(mean=700, p95=2000), output_tokens=Lengths(mean=120, p95=400))
    a = generate(w, CAT, seed=42, num_requests=3000)
    b = generate(w, CAT, seed=42, num_requests=3000)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.output_tokens, b.output_tokens)
    one = simulate_cluster(SPEC, a, 4, "round-robin", processes=1)
    many = simulate_cluster(SPEC, a, 4, "round-robin", processes=2)
    assert np.array_equal(one.finish_s, many.finish_s) and np.array_equal(one.first_token_s, many.first_token_s)


def test_kv_pressure_preempts_and_still_finishes_everything():
    small = EngineLimits(max_num_seqs=256, max_num_batched_tokens=4096, kv_capacity_tokens=30_000)
    reqs = generate(Workload(rate_per_s=50, input_tokens=1000, output_tokens=Lengths(mean=400, p95=1200)), CAT,
                    seed=9, num_requests=3000)
    r = simulate_replica(SPEC.model, small, reqs)
    assert r.preemptions > 0
    assert np.isfinite(r.finish_s).all() and (r.finish_s >= r.first_token_s).all()


def test_an_engine_that_reserves_the_answer_admits_fewer_and_never_preempts():
    """TensorRT-LLM's GUARANTEED_NO_EVICT: a request is admitted only with KV room for its prompt and its whole
    answer. With room for 10 sequences of 1,400 tokens (1,000 in, 400 out) a burst of 300 runs at most 10 at
    once (the on-demand engine packs more, growing into the cache, and preempts); the KV never exceeds the cache,
    nothing is preempted and everything finishes."""
    cap = 10 * 1400
    reqs = generate(Workload(rate_per_s=1000, input_tokens=1000, output_tokens=400), CAT, seed=3, num_requests=300)
    runs = {}
    for reserve in (False, True):
        lim = EngineLimits(max_num_seqs=256, max_num_batched_tokens=4096, kv_capacity_tokens=cap,
                           reserve_answer=reserve)
        runs[reserve] = simulate_replica(SPEC.model, lim, reqs, sample_s=0.05)
    kept, grown = runs[True], runs[False]
    assert kept.preemptions == 0 and grown.preemptions > 0
    assert max(kept.series["running"]) <= 10 < max(grown.series["running"])
    assert max(kept.series["kv_util"]) <= 1.0
    assert np.isfinite(kept.finish_s).all() and (kept.finish_s >= kept.first_token_s).all()
    # the reservation is KV room, not work: one request alone has the same first token and end either way
    one = generate(Workload(rate_per_s=1, input_tokens=1000, output_tokens=4000), CAT, seed=1, num_requests=1)
    alone = [simulate_replica(SPEC.model, EngineLimits(256, 8192, 10**6, reserve_answer=r), one) for r in (0, 1)]
    assert alone[1].first_token_s[0] == alone[0].first_token_s[0] and alone[1].finish_s[0] == alone[0].finish_s[0]


def test_the_kv_cache_is_empty_when_every_request_has_finished():
    """What a request takes at admission it gives back when it finishes, also when its answer is its first token
    (which takes no block), in both admission modes and with preemptions."""
    from llmplan.serving.simulator import Replica

    reqs = generate(Workload(rate_per_s=50, input_tokens=1000, output_tokens=Lengths(mean=40, p95=400)), CAT,
                    seed=5, num_requests=2000)
    reqs.output_tokens[::3] = 1  # a third answer with their first token
    for reserve in (False, True):
        r = Replica(SPEC.model, EngineLimits(256, 4096, 30_000, reserve_answer=reserve), reqs)
        r.incoming.extend(range(len(reqs)))
        r.advance_to(float("inf"))
        assert r.kv == 0 and r.n_adm == 0, (reserve, r.kv)
        assert reserve or r.preemptions > 0


def test_prefix_cache_hits_shorten_ttft():
    base = dict(rate_per_s=2, input_tokens=4000, output_tokens=50)
    cold = generate(Workload(**base), CAT, seed=1, num_requests=200)
    warm = generate(Workload(**base, shared_prefix_share=0.75), CAT, seed=1, num_requests=200)
    t_cold = simulate_replica(SPEC.model, SPEC.limits, cold)
    t_warm = simulate_replica(SPEC.model, SPEC.limits, warm)
    assert np.median(t_warm.first_token_s - warm.arrival_s) < 0.5 * np.median(t_cold.first_token_s - cold.arrival_s)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 512), ctx=st.floats(0, 5e6), m=st.integers(1, 400))
def test_closed_form_stretch_equals_the_sum_of_steps(n, ctx, m):
    sm = SPEC.model
    total = sum(sm.step(n, ctx + n * j) for j in range(m))
    assert sm.stretch(n, ctx, m) == pytest.approx(total, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 64), ctx=st.floats(0, 2e5), m=st.integers(1, 400))
def test_unfused_attention_stretch_equals_the_sum_of_steps(n, ctx, m):
    """llama.cpp without flash attention: the scores' pass grows with the context like the KV read, so the
    closed-form decode run still equals its steps summed."""
    sm = _models()["unfused"]
    assert sm.scores > 0
    total = sum(sm.step(n, ctx + n * j) for j in range(m))
    assert sm.stretch(n, ctx, m) == pytest.approx(total, rel=1e-9, abs=1e-12)


def test_unfused_step_model_matches_the_performance_model():
    from llmplan.perf.efficiency import efficiency_arrays, lookup, params_of, table_from_catalog
    from llmplan.perf.physics import step_time
    from llmplan.perf.shape import machine, stage_shape

    d = resolve(FitRequest(model="meta-llama/Meta-Llama-3-8B", gpu="rtx-4090", precision="q4_k_m",
                           engine="llamacpp@2024.05"), CAT)
    s = stage_shape(d, tuple(CAT.gguf_types), 2)
    m, _ = machine(d)
    assert float(m.scores_bytes) == 20.0

    class C:
        dequant = True

    e = efficiency_arrays([C()], [params_of(lookup(table_from_catalog(CAT), "llamacpp", "ada", "dense")[0])])
    sm = replica_spec(d, CAT).model
    for n, ctx, p, pc in ((1, 100, 0, 0), (4, 4 * 3000, 512, 512 * 300), (1, 0, 4096, 4096 * 2048)):
        ref = float(step_time(s, m, e, n, ctx / n if n else 0, p, pc / p if p else 0).total[0])
        assert sm.step(n, ctx, p, pc) == pytest.approx(ref, rel=1e-9)


def test_step_model_matches_the_performance_model_with_dp_attention():
    """The simulator's step charges a prompt's attention to the one GPU holding it as physics does."""
    from llmplan.perf.efficiency import deployment_efficiency
    from llmplan.perf.physics import step_time
    from llmplan.perf.shape import machine, stage_shape

    d = resolve(FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8", engine="sglang",
                           dp_attention=True), CAT)
    s = stage_shape(d, tuple(CAT.gguf_types), 2)
    m, _ = machine(d)
    e, _, _ = deployment_efficiency(d, CAT)
    sm = replica_spec(d, CAT).model
    for n, ctx, p, pc in ((1, 100, 0, 0), (64, 64 * 3000, 2048, 2048 * 1024), (8, 8 * 100, 16384, 16384 * 1000)):
        ref = float(step_time(s, m, e, n, ctx / n if n else 0, p, pc / p if p else 0).total)
        assert sm.step(n, ctx, p, pc) == pytest.approx(ref, rel=1e-9)
    # with pipeline stages too: each microbatch's prompts are charged as physics charges them
    d2 = resolve(FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h100-sxm", tp=8, pp=2, num_gpus=16,
                            precision="fp8", engine="sglang", dp_attention=True), CAT)
    s2, (m2, _), (e2, _, _) = stage_shape(d2, tuple(CAT.gguf_types), 2), machine(d2), deployment_efficiency(d2, CAT)
    sm2 = replica_spec(d2, CAT).model
    for n, ctx, p, pc in ((8, 8 * 100, 16000, 16000 * 1000), (64, 64 * 3000, 4000, 4000 * 1000), (1, 100, 2000, 2e6)):
        ref = float(step_time(s2, m2, e2, n, ctx / n, p, pc / p).total)
        assert sm2.step(n, ctx, p, pc) == pytest.approx(ref, rel=1e-9)
    lone, spread = sm.step(8, 800, 2048, 2048 * 1024), sm.step(8, 800, 16384, 16384 * 1024)
    assert lone > spread / 8 * 2  # one prompt on one GPU costs more than its share of eight


def test_step_model_matches_the_performance_model():
    from llmplan.perf.cases import is_dequant
    from llmplan.perf.efficiency import efficiency_arrays, lookup, params_of, table_from_catalog
    from llmplan.perf.physics import step_time
    from llmplan.perf.shape import machine, stage_shape

    s = stage_shape(D, tuple(CAT.gguf_types), 2)
    m, dt = machine(D)

    class C:
        dequant = is_dequant(D.weight_format, dt)

    e = efficiency_arrays([C()], [params_of(lookup(table_from_catalog(CAT), "vllm", "hopper", "dense")[0])])
    # the last: GEMMs compute-bound, attention memory-bound (the two add: physics module docstring)
    for n, ctx, p, pc in ((1, 100, 0, 0), (64, 64 * 3000, 512, 512 * 300), (256, 1e6, 0, 0), (2048, 2048 * 2000, 0, 0)):
        ref = float(step_time(s, m, e, n, ctx / n if n else 0, p, pc / p if p else 0).total[0])
        assert SPEC.model.step(n, ctx, p, pc) == pytest.approx(ref, rel=1e-9)
    big = step_time(s, m, e, 2048, 2000.0)
    assert float(big.total[0]) > float(big.floor[0]) * 1.05  # the mixed regime, where the split matters


# ---------------------------------------------------------------- workloads


def test_lognormal_lengths_hit_mean_and_p95():
    x = Lengths(mean=1000, p95=3000).sample(np.random.default_rng(0), 400_000, 10**7)
    assert x.mean() == pytest.approx(1000, rel=0.02)
    assert np.percentile(x, 95) == pytest.approx(3000, rel=0.03)


def test_stratified_lengths_hold_the_tail_share_that_independent_draws_leave_to_chance():
    # 20,000 prompts of mean 1,500 and p95 6,000: the share above the 99.5th percentile is 0.5 % in each
    # stratified sample (one draw per 1/20,000 of probability), while independent draws scatter it (sd ~0.05 %)
    w = Lengths(mean=1500, p95=6000)
    cut = w.quantile(2.5758)  # the 99.5th percentile
    strat = [np.mean(w.sample(np.random.default_rng(k), 20_000, 10**7, stratified=True) > cut) for k in range(20)]
    free = [np.mean(w.sample(np.random.default_rng(k), 20_000, 10**7) > cut) for k in range(20)]
    assert max(abs(s - 0.005) for s in strat) <= 1.5 / 20_000
    assert np.std(free) > 5 * np.std(strat)
    x = w.sample(np.random.default_rng(1), 20_000, 10**7, stratified=True)
    assert np.percentile(x, 95) == pytest.approx(w.quantile(1.6449), rel=0.005)
    assert not np.all(np.diff(x) >= 0)  # in random order, not sorted by stratum
    r = generate(Workload(rate_per_s=1.0, input_tokens=w, output_tokens=Lengths(mean=300, p95=900)), CAT, seed=3,
                 num_requests=1000, stratified=True)
    assert np.array_equal(r.input_tokens, generate(Workload(rate_per_s=1.0, input_tokens=w, output_tokens=Lengths(
        mean=300, p95=900)), CAT, seed=3, num_requests=1000, stratified=True).input_tokens)  # seeded


def test_requests_per_day_follow_the_profile():
    w = Workload(requests_per_day=48_000, profile="office-hours", input_tokens=100, output_tokens=10)
    reqs = generate(w, CAT, seed=0)
    assert len(reqs) == pytest.approx(48_000, rel=0.03)
    by_hour = np.bincount((reqs.arrival_s // 3600).astype(int), minlength=24)
    assert by_hour[10] > 10 * by_hour[3]
    assert peak_rate(w, CAT) == pytest.approx(by_hour.max() / 3600, rel=0.1)


def test_days_a_year_come_from_the_profile_unless_given():
    """Office hours run on working days (the catalog's 250); a flat day, a constant rate or 24 weights given
    without a figure run every day; the workload's own figure wins."""
    office = Workload(requests_per_day=1000, profile="office-hours")
    assert days_per_year(office, CAT) == CAT.workload_presets.get("office-hours").days_per_year == 250
    assert days_per_year(office.model_copy(update={"days_per_year": 300.0}), CAT) == 300
    assert days_per_year(Workload(requests_per_day=1000, profile="flat"), CAT) == 365
    assert days_per_year(Workload(rate_per_s=1.0), CAT) == 365
    assert days_per_year(Workload(requests_per_day=1000, profile=[1.0] * 24), CAT) == 365


def test_a_profile_without_days_a_year_is_rejected():
    from pydantic import ValidationError

    from llmplan.catalog.schema import WorkloadPreset

    base = dict(id="p", source="s", as_of="2025-01-01", hourly_weights=[1.0] * 24)
    assert WorkloadPreset(**base, days_per_year=250).days_per_year == 250
    with pytest.raises(ValidationError, match="days_per_year"):
        WorkloadPreset(**base)
    with pytest.raises(ValidationError, match="days_per_year"):
        WorkloadPreset(id="w", source="s", as_of="2025-01-01", input_mean=10, output_mean=5, days_per_year=250)


def test_traces(tmp_path):
    (tmp_path / "t.csv").write_text("timestamp_s,input_tokens,output_tokens\n5,100,10\n1,200,20\n")
    r = read_trace(tmp_path / "t.csv")
    assert r.arrival_s.tolist() == [0.0, 4.0] and r.input_tokens.tolist() == [200, 100]
    (tmp_path / "t.jsonl").write_text('{"timestamp_s": 0, "input_tokens": 5, "output_tokens": 3}\n')
    assert len(read_trace(tmp_path / "t.jsonl")) == 1
    (tmp_path / "bad.csv").write_text("time,in,out\n1,2,3\n")
    with pytest.raises(LlmplanError, match="columns"):
        read_trace(tmp_path / "bad.csv")
    (tmp_path / "neg.csv").write_text("timestamp_s,input_tokens,output_tokens\n1,0,3\n")
    with pytest.raises(LlmplanError, match="≥ 1"):
        read_trace(tmp_path / "neg.csv")


def test_presets_state_their_assumptions():
    for p in CAT.workload_presets:
        assert p.source and p.as_of
        if p.input_mean is not None:
            assert p.notes and p.slo is not None


# ---------------------------------------------------------------- commands


def test_simulate_command(capsys, tmp_path):
    code = main(["simulate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--workload", "chat", "--rate",
                 "5", "--requests", "2000", "--replicas", "2", "--series-csv", str(tmp_path / "s.csv"),
                 "--plot", str(tmp_path / "p.html"), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    r = json.loads(out.out)
    for k in ("ttft_ms", "tpot_ms", "e2e_ms", "requests_s", "output_tok_s", "goodput_pct", "slo", "series"):
        assert k in r
    assert r["completed"] == 2000 and r["replicas"] == 2
    assert (tmp_path / "s.csv").read_text().startswith("queue,")
    page = (tmp_path / "p.html").read_text()
    # four charts, each a static SVG with its spec, the chart library inline (nothing fetched)
    assert page.count("<figure class='llmplan-chart'") == 4 and "<script src" not in page
    import re

    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    markup = re.sub(r"<script type='application/json' class='chart-spec'>.*?</script>", "", markup, flags=re.S)
    assert "<svg" in markup and ">TTFT (ms)<" in markup and ">time (hours)<" in markup
    assert set(re.findall(r"https?://[^\"'\s)]+", markup)) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def test_capacity_command(capsys):
    code = main(["capacity", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l40s", "--workload", "chat", "--rate",
                 "8", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    r = json.loads(out.out)
    assert r["feasible"] and r["replicas"] >= 1 and r["at_peak"]["slo_met"]
    if r["replicas"] > 1:
        assert r["one_fewer"] is None or not r["one_fewer"]["slo_met"]
    assert len(r["utilisation_by_hour_pct"]) == 24


@pytest.mark.parametrize("argv, needle", [
    (["simulate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--workload", "nope"], "neither a preset"),
    (["simulate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--workload", "chat"], "no arrival rate"),
    (["simulate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--workload", "chat", "--rate", "-1"], "--rate"),
    (["simulate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--workload", "chat", "--rate", "1", "--router",
      "random"], "--router"),
    (["simulate", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--workload", "chat", "--rate", "1", "--plot",
      "x.png"], ".html or .svg"),
])
def test_serving_commands_bad_input(capsys, argv, needle):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_workload_file(tmp_path, capsys):
    (tmp_path / "w.yaml").write_text("preset: rag\nrate_per_s: 1\nslo: {ttft_p95_ms: 5000}\n")
    assert main(["simulate", "Qwen/Qwen3-8B", "--gpu", "h100-sxm", "--workload", str(tmp_path / "w.yaml"),
                 "--requests", "300", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["slo"]) == {"ttft_p95_ms", "goodput_pct"}
    (tmp_path / "bad.yaml").write_text("rate_per_s: 1\ncolour: red\n")
    assert main(["simulate", "Qwen/Qwen3-8B", "--gpu", "h100-sxm", "--workload", str(tmp_path / "bad.yaml")]) == 2
    assert "colour" in capsys.readouterr().err


def test_dask_cluster_gives_the_same_results_as_local_processes():
    distributed = pytest.importorskip("distributed")  # installed by the test extra
    w = Workload(rate_per_s=30, input_tokens=Lengths(mean=600, p95=1800), output_tokens=Lengths(mean=100, p95=300))
    reqs = generate(w, CAT, seed=8, num_requests=2000)
    local = simulate_cluster(SPEC, reqs, 3, "round-robin", processes=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc:
        remote = simulate_cluster(SPEC, reqs, 3, "round-robin", dask_address=lc.scheduler_address)
    assert np.array_equal(local.finish_s, remote.finish_s)
    assert np.array_equal(local.first_token_s, remote.first_token_s)


@pytest.mark.parametrize("options", [
    {"rate_per_s": 1e6, "duration_s": 1e6},  # 10^12 requests: refused before any array is made
    {"requests_per_day": 1e10},
])
def test_huge_workloads_are_refused_before_allocating(options):
    import llmplan

    with pytest.raises(LlmplanError, match="over the limit"):
        llmplan.simulate("llama-3.1-8b", "l40s", **options)


def test_time_series_step_widens_for_sparse_arrivals():
    """Requests days apart at a 60 s step would fill memory with samples; the step widens instead."""
    import llmplan

    r = llmplan.simulate("llama-3.1-8b", "l40s", rate_per_s=1e-6, num_requests=50, seed=1)
    t = r["series"]["t_s"]
    assert r["completed"] == 50 and 1000 < len(t) <= 50_001
    assert t[1] - t[0] > 60


def test_capacity_says_at_once_when_one_request_alone_misses_the_slo():
    import llmplan

    r = llmplan.capacity("llama-3.1-8b", "l40s", requests_per_day=1000, max_num_batched_tokens=1)
    assert r["feasible"] is False and "one request alone" in r["reason"] and "TTFT" in r["reason"]
    ok = llmplan.capacity("llama-3.1-8b", "l40s", requests_per_day=1000)
    assert ok["feasible"] is True


@pytest.mark.parametrize("rate, seed", [(20, 3), (40, 4)])
def test_least_loaded_is_at_least_as_good_as_round_robin(rate, seed):
    """Four identical replicas, Poisson arrivals: routing each request to the replica with the fewest
    requests outstanding at its arrival (every replica advanced to that time first) never does worse
    on TTFT p95 than round-robin. (Comparing counts as last seen, the router piled requests onto
    the first replicas: it did worse than round-robin.)"""
    w = Workload(rate_per_s=rate, input_tokens=Lengths(mean=1000, p95=3500), output_tokens=Lengths(mean=300, p95=900))
    reqs = generate(w, CAT, seed=seed, num_requests=4000)
    p95 = {router: summarize(simulate_cluster(SPEC, reqs, 4, router), Slo())["ttft_ms"]["p95"]
           for router in ("round-robin", "least-loaded")}
    assert p95["least-loaded"] <= p95["round-robin"], p95


def test_least_loaded_sees_completions_since_its_last_choice():
    """Two replicas; request A is long, B short. When C arrives after B finished, replica 1 (B's)
    is empty and replica 0 still holds A: C must go to replica 1 (stale counts said 1 and 1)."""
    reqs = Requests(np.array([0.0, 0.001, 5.0]), np.array([100, 100, 100]), np.array([2000, 2, 10]),
                    np.zeros(3, dtype=np.int64))
    c = simulate_cluster(SPEC, reqs, 2, "least-loaded")
    alone = simulate_replica(SPEC.model, SPEC.limits, Requests(np.array([0.0]), np.array([100]), np.array([10]),
                                                                np.zeros(1, dtype=np.int64)))
    ttft_c = c.first_token_s[2] - 5.0
    assert ttft_c == pytest.approx(alone.first_token_s[0], rel=1e-6)  # C ran alone: it did not share A's replica


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 512), ctx=st.floats(0, 5e6), m=st.integers(1, 400), p=st.integers(0, 8192),
       which=st.sampled_from(["dense", "moe", "pp", "sliding", "unfused", "dp_attention"]))
def test_compiled_step_functions_are_bit_identical_to_the_step_model(n, ctx, m, p, which):
    """The simulator's closures (serving.stepmodel.compiled) are the StepModel's formulas with the
    look-ups (and, for a dense single-stage model, the exact 0/1 terms) removed: same floats."""
    from llmplan.serving.stepmodel import compiled

    sm = _models()[which]
    step, stretch, run = compiled(sm)
    assert step(n, ctx, p, p * 100.0) == sm.step(n, ctx, p, p * 100.0)
    assert step(n, ctx) == sm.step(n, ctx)
    assert stretch(n, ctx, m) == sm.stretch(n, ctx, m)
    # a decode run cut at the step in progress `horizon` seconds on (counted at the first step's duration)
    for horizon in (math.inf, 0.0, sm.step(n, ctx) * m / 3, sm.step(n, ctx) * (m + 5)):
        until = m if horizon == math.inf else min(m, max(1, int(horizon / sm.step(n, ctx)) + 1))
        assert run(n, ctx, m, horizon) == (until, sm.stretch(n, ctx, until))


def _models() -> dict[str, object]:
    if not hasattr(_models, "cache"):
        picks = {"dense": FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm"),
                 "moe": FitRequest(model="Qwen/Qwen3-30B-A3B", gpu="h100-sxm", precision="fp8"),
                 "pp": FitRequest(model="meta-llama/Llama-3.1-70B-Instruct", gpu="h100-sxm", tp=4, pp=2, num_gpus=8),
                 "sliding": FitRequest(model="google/gemma-3-27b-it", gpu="h100-sxm"),
                 "unfused": FitRequest(model="meta-llama/Meta-Llama-3-8B", gpu="rtx-4090", precision="q4_k_m",
                                       engine="llamacpp@2024.05"),
                 "dp_attention": FitRequest(model="deepseek-ai/DeepSeek-V3", gpu="h200", tp=8, precision="fp8",
                                            engine="sglang", dp_attention=True)}
        _models.cache = {k: replica_spec(resolve(r, CAT), CAT).model for k, r in picks.items()}
    return _models.cache


def test_a_workload_that_states_thinking_adds_it_to_what_the_model_generates(tmp_path):
    """simulate/capacity/tco: a workload file with thinking_tokens serves thinking + answer for a model that
    thinks (a distill of R1 here) and nothing more for one that does not; without it, tco says how the output
    was taken."""
    from llmplan.cost.tco import TcoRequest, tco
    from llmplan.serving.api import ServeRequest, capacity, simulate

    (tmp_path / "t.yaml").write_text("input_tokens: 500\noutput_tokens: 100\nthinking_tokens: 400\nrate_per_s: 1\n")
    (tmp_path / "n.yaml").write_text("input_tokens: 500\noutput_tokens: 100\nrate_per_s: 1\n")

    def out_per_request(model, wl):
        r = simulate(ServeRequest(model=model, gpu="h100-sxm", workload=str(tmp_path / wl), num_requests=400), CAT)
        return r["output_tok_s"] / r["requests_s"]

    assert out_per_request("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "t.yaml") == pytest.approx(500, rel=0.02)
    assert out_per_request("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "n.yaml") == pytest.approx(100, rel=0.02)
    assert out_per_request("Qwen/Qwen2.5-7B-Instruct", "t.yaml") == pytest.approx(100, rel=0.02)
    notes = tco(TcoRequest(model="Qwen/Qwen3-8B", gpu="h100-sxm", workload=str(tmp_path / "n.yaml"), draws=0,
                           alternatives=()), CAT)["notes"]
    assert any("thinks before it answers" in n and "thinking_tokens" in n for n in notes)
    # tco: the cost per 1M tokens counts the workload's own tokens; an API bills the thinking as output
    api = ("ovhcloud-deepseek-r1-distill-llama-70b",)
    r = tco(TcoRequest(model="deepseek-ai/DeepSeek-R1-Distill-Llama-70B", gpu="h100-sxm", tp=4, precision="fp8",
                       workload=str(tmp_path / "t.yaml"), draws=0, alternatives=("api",), api_ids=api), CAT)
    assert r["workload"]["output_tokens_mean"] == 100
    assert r["workload"]["tokens_per_year"] == pytest.approx(86400 * 365 * 600)
    p = CAT.api_prices.get(api[0])
    billed = 86400 * 365 * 4 * (500 * p.input_usd_per_mtok + 500 * p.output_usd_per_mtok) / 1e6
    assert r["alternatives"][0]["tco_usd"] == pytest.approx(billed, rel=0.05)  # cached-input share aside
    cap = capacity(ServeRequest(model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", gpu="h100-sxm", workload="chat",
                                requests_per_day=2000), CAT)
    assert "thinks before it answers" in cap["deployment"]["workload_note"]


def test_one_token_answers_hold_no_tpot_limit(tmp_path):
    """Classification-like loads (one output token) have no TPOT: a TPOT limit in the SLO holds vacuously in the
    simulator, the latency floor and the analytic sizing (they were reported impossible with 128 replicas)."""
    from llmplan.planner import parse_scenario
    from llmplan.planner.report import run
    from llmplan.serving.api import ServeRequest, capacity

    (tmp_path / "w.yaml").write_text("input_tokens: 2000\noutput_tokens: 1\nrequests_per_day: 200000\n"
                                     "profile: flat\nslo: {ttft_p95_ms: 1000, tpot_p95_ms: 50}\n")
    cap = capacity(ServeRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm",
                                workload=str(tmp_path / "w.yaml")), CAT)
    assert cap["feasible"] and cap["at_peak"]["slo"]["tpot_p95_ms"] == {"limit": 50, "value": None, "ok": True}
    doc = {"workload": {"requests_per_day": 200000, "profile": "flat", "input_tokens": 2000, "output_tokens": 1,
                        "slo": {"ttft_p95_ms": 1000, "tpot_p95_ms": 50}},
           "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["h100-sxm"], "precisions": ["bf16"],
           "alternatives": [], "policy": {"deployment": ["on_prem"]}}
    assert run(parse_scenario(doc), CAT)["recommendation"] is not None


def _hand_run(thinking):
    """Four requests at t = 0, 1, 2, 3 s, each decoding 11 tokens (first token, then 10 more evenly spaced):
    first tokens at 0.5, 1.5, 2.5, 3.5 s and finishes 10 s after them (1 s a token)."""
    from llmplan.serving.cluster import ClusterResult

    arrival = np.array([0.0, 1.0, 2.0, 3.0])
    reqs = Requests(arrival, np.full(4, 100), np.full(4, 11), np.zeros(4, dtype=np.int64),
                    None if thinking is None else np.array(thinking))
    series = {k: np.zeros(1) for k in ("queue", "running", "kv_util", "busy")}
    return ClusterResult(reqs, arrival + 0.5, arrival + 10.5, 1, [10.0], 13.5, 42.0, 0, series)


def test_the_answer_starts_after_the_thinking_in_the_summary():
    """Hand-computed: thinking 0, 2, 5 and 10 tokens of 11: the answer starts at first + 10 s × T / 10, so
    0.5, 2.5, 5.5, 10.5 s after arrival (T = 10: the last token, the finish); 11 tokens of thinking (an output
    cut at the context) is capped at the finish. Percentiles as numpy's over those; with limits of 4 s on the
    answer start (p95) the check fails and goodput counts the requests within it (2 of 4); with no thinking the
    answer start is the TTFT (0.5 s each)."""
    from llmplan.serving.cluster import request_metrics

    m = request_metrics(_hand_run([0, 2, 5, 10]))
    assert m["answer_start_ms"] == pytest.approx([500.0, 2500.0, 5500.0, 10500.0])
    assert m["ttft_ms"] == pytest.approx([500.0] * 4)
    assert request_metrics(_hand_run([0, 0, 0, 11]))["answer_start_ms"][3] == pytest.approx(10500.0)
    s = summarize(_hand_run([0, 2, 5, 10]), Slo(ttft_p95_ms=1000, answer_start_p95_ms=4000))
    assert s["answer_start_ms"]["p50"] == pytest.approx(4000.0)
    assert s["answer_start_ms"]["p95"] == pytest.approx(5500 + 0.85 * 5000)  # numpy's: 2.85 of the way up
    assert s["slo"]["answer_start_p95_ms"] == {"limit": 4000, "value": pytest.approx(9750.0), "ok": False}
    assert s["slo"]["ttft_p95_ms"]["ok"] and not s["slo_met"]
    assert s["goodput_pct"] == pytest.approx(50.0) and s["thinking_tokens_mean"] == pytest.approx(4.25)
    plain = summarize(_hand_run(None), Slo(answer_start_p95_ms=4000))
    assert plain["answer_start_ms"] == plain["ttft_ms"] and plain["slo_met"] and plain["thinking_tokens_mean"] is None


def test_a_model_that_thinks_samples_its_thinking_and_answer_apart():
    """`thinks`: each request writes its thinking and then its answer, sampled apart after the prompts and
    answers, so a seed gives the same prompts and answers as without thinking and the output is their sum
    (the mean the sum of the means); cut at the context, the thinking is at most the output. A trace gives
    whole outputs: no thinking to split."""
    w = Workload(rate_per_s=5, input_tokens=Lengths(mean=800, p95=2500), output_tokens=Lengths(mean=300, p95=900),
                 thinking_tokens=Lengths(mean=1500, p95=5000))
    plain = generate(w, CAT, seed=4, num_requests=20_000)
    split = generate(w, CAT, seed=4, num_requests=20_000, thinks=True)
    assert plain.thinking_tokens is None and split.thinking_tokens is not None
    assert (split.arrival_s == plain.arrival_s).all() and (split.input_tokens == plain.input_tokens).all()
    assert (split.output_tokens - split.thinking_tokens == plain.output_tokens).all()
    assert split.output_tokens.mean() == pytest.approx(1800, rel=0.03)
    short = generate(w, CAT, seed=4, num_requests=2000, thinks=True, max_context=4000)
    assert (short.thinking_tokens <= short.output_tokens).all()
    assert (short.output_tokens <= np.maximum(4000 - short.input_tokens, 1)).all()
    full = generate(w, CAT, seed=4, num_requests=2000, thinks=True)
    assert (short.thinking_tokens < full.thinking_tokens).any()  # some were cut
    with pytest.raises(LlmplanError, match="not its thinking"):
        generate(w.model_copy(update={"rate_per_s": None, "trace": "x.csv"}), CAT, thinks=True)


def test_an_answer_start_slo_needs_the_thinking_of_a_model_that_thinks(tmp_path, capsys):
    """simulate and capacity hold a reasoning model's answer start where the workload states its thinking (each
    request then thinks, then answers), print it beside the TTFT, and refuse it, exit 2 with the fix, where it
    does not (the answer start cannot be judged)."""
    f = tmp_path / "w.yaml"
    f.write_text("rate_per_s: 0.5\ninput_tokens: 1000\noutput_tokens: {mean: 300, p95: 900}\n"
                 "thinking_tokens: {mean: 1500, p95: 5000}\nslo: {ttft_p95_ms: 3000, answer_start_p95_ms: 20000}\n")
    argv = ["simulate", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "--gpu", "h100-sxm", "-w", str(f),
            "--requests", "400"]
    assert main([*argv, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["thinking_tokens_mean"] == pytest.approx(1500, rel=0.15)
    assert r["answer_start_ms"]["p95"] > 10 * r["ttft_ms"]["p95"]  # ~5,000 tokens at ~8 ms after a 0.1 s TTFT
    check = r["slo"]["answer_start_p95_ms"]
    assert check["limit"] == 20000 and check["value"] == r["answer_start_ms"]["p95"] and not check["ok"]
    assert r["slo"]["ttft_p95_ms"]["ok"] and not r["slo_met"]
    assert main(argv) == 0
    assert "answer start" in capsys.readouterr().out
    f.write_text("rate_per_s: 0.5\ninput_tokens: 1000\noutput_tokens: 300\nslo: {answer_start_p95_ms: 20000}\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "answer_start_p95_ms" in err and "thinking_tokens" in err and "Traceback" not in err


def test_capacity_sizes_for_the_answer_start(tmp_path, capsys):
    """capacity holds the answer start like the other limits: named among the SLOs and at the peak; a limit one
    request alone misses (1,500 tokens of thinking at ~8 ms each after its TTFT: ~12 s against 10 s) is
    infeasible at once, the reason naming the answer start."""
    f = tmp_path / "w.yaml"
    body = "rate_per_s: 1\ninput_tokens: 1000\noutput_tokens: 300\nthinking_tokens: {mean: 1500, p95: 5000}\n"
    f.write_text(body + "slo: {ttft_p95_ms: 3000, answer_start_p95_ms: 60000}\n")
    argv = ["capacity", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "--gpu", "h100-sxm", "-w", str(f)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "answer start p95 ≤ 60,000 ms" in out and "At peak: TTFT p95" in out and ", answer start p95 " in out
    f.write_text(body + "slo: {answer_start_p95_ms: 10000}\n")
    assert main([*argv, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert not r["feasible"] and "an answer start (after 1,500 tokens of thinking)" in r["reason"]
