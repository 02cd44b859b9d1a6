"""`llmplan estimate`: how fast a deployment serves, with the bound of each phase, the split
of its time, and an interval from the calibration residuals of its engine × hardware family."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..catalog import Catalog
from ..memory.fit import dp_attention
from ..memory.fit import fit as memory_fit
from ..specs import MIN_RATE_PER_S, Cli, FitRequest, dp_attention_unmodelled, resolve
from ..units import fmt_sig
from .efficiency import deployment_efficiency
from .intervals import entry_scale, interval
from .limits import engine_limit
from .physics import StepTime, roofline_step
from .scenarios import closed_loop, decode_step, mixed_step, open_loop, prefill_time, step_room
from .shape import compute_dtype, compute_rate_note, is_dequant, machine, stage_shape

METRIC_DEFINITIONS = {
    "ttft_ms": "time to first token per request, from arrival (queueing + prefill interleaved with other "
               "requests' decode), as the client sees it",
    "tpot_ms": "time per output token after the first: (E2E - TTFT) / (output tokens - 1); mean ITL is close to it",
    "output_tok_s": "generated tokens per second over all GPUs of one replica",
    "total_tok_s": "input + output tokens per second over all GPUs of one replica",
    "max_throughput_output_tok_s": "output tokens per second with the engine saturated (all requests queued at "
                                   "once), batch bounded by the KV cache and max_num_seqs",
    "prefill_tok_s": "batch-1 prompt processing: input tokens / prefill time of one sequence (llama.cpp pp)",
    "decode_tok_s": "batch-1 generation: tokens / decode time of one sequence (llama.cpp tg)",
}


class EstimateRequest(FitRequest):
    CLI: ClassVar[dict[str, Cli]] = {
        "input_tokens": Cli(("--input", "-i")),
        "output_tokens": Cli(("--output", "-o")),
        "concurrency": Cli(("--concurrency",), "Requests in flight (closed loop); default 1 unless --request-rate "
                           "is given.", unset=True),
        "request_rate": Cli(("--request-rate",)),
        "num_requests": Cli(("--num-requests",), "With --request-rate: a finite run of this many requests "
                            "(a benchmark) instead of an endless load."),
        "spec_tokens": Cli(("--spec-tokens",)),
        "spec_acceptance": Cli(("--spec-acceptance",), "Acceptance rate of a draft token."),
        "spec_draft_cost": Cli(("--spec-draft-cost",), "Cost of a draft token relative to a decode step."),
    }

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "llama-3.1-8b", "gpu": "l40s", "input_tokens": 1000, "output_tokens": 200, "concurrency": 16}]})

    input_tokens: int = Field(ge=1, le=10_000_000, description="prompt tokens per request")
    output_tokens: int = Field(ge=1, le=10_000_000, description="generated tokens per request")
    concurrency: int = Field(default=1, ge=1, le=1_000_000, description="requests in flight (closed loop)")
    request_rate: float | None = Field(
        default=None, ge=MIN_RATE_PER_S, le=1e6, description="offered requests/s (open loop); replaces concurrency"
    )
    num_requests: int | None = Field(default=None, ge=1, le=100_000_000, description="with request_rate: a finite run "
                                     "of this many requests (a benchmark); without it the load is endless")
    spec_tokens: int = Field(default=0, ge=0, le=16, description="speculative decoding: draft tokens per step")
    spec_acceptance: float = Field(default=0.0, ge=0, lt=1, description="probability each draft token is accepted")
    spec_draft_cost: float = Field(default=0.0, ge=0, le=1, description="cost of one draft token relative to a "
                                   "target-model decode step (MTP head ≈ 1/layers, a small draft model its size ratio)")

    @model_validator(mode="after")
    def _one_load(self) -> EstimateRequest:
        """A closed loop (concurrency) or an open one (request_rate): never both, never half of one."""
        if self.request_rate is not None and "concurrency" in self.model_fields_set:
            raise ValueError("give concurrency (requests held in flight) or request_rate (requests arriving per "
                             "second), not both")
        if self.num_requests is not None and self.request_rate is None:
            raise ValueError("num_requests is the length of a run at request_rate: give request_rate too")
        return self


class PhaseBreakdown(BaseModel):
    time_ms: float
    bound: str = Field(description="compute | memory | interconnect | overhead: the largest share of the time")
    split_ms: dict[str, float] = Field(description="the step's time by cause, adding up to time_ms: memory (kernels "
                                       "bound by memory bandwidth), compute (kernels bound by FLOPs), interconnect, "
                                       "overhead")
    alone_ms: dict[str, float] = Field(description="each resource alone: all the step's bytes at the sustained "
                                       "bandwidth (memory), all its FLOPs at the sustained rate (compute)")
    roofline_ms: float = Field(description="the physical floor: every matmul at the chip's measured achievable rate "
                               "(or the median measured share of its datasheet peak), every byte at the rated "
                               "bandwidth, no overhead")


class Interval(BaseModel):
    low: float
    high: float


class Saturation(BaseModel):
    """An offered rate beyond what the deployment serves: there is no steady state."""

    offered_requests_s: float
    max_requests_s: float = Field(description="the most the deployment serves at these lengths")
    unbounded: bool = Field(description="an endless load: the queue grows without bound, no TTFT exists")
    queue_delay_s: float | None = Field(description="a finite run of num_requests: the mean wait in the queue")
    message: str


class EstimateReport(BaseModel):
    model: str
    gpu: str
    engine: str
    precision: str
    kv_precision: str
    compute_dtype: str
    num_gpus: int
    tp: int
    pp: int
    input_tokens: int
    output_tokens: int
    concurrency: float = Field(description="sequences the engine runs at once under this load")
    request_rate: float | None
    engine_profile: str = Field(description="the engine version whose defaults apply")
    ttft_ms: float | None = Field(description="None when the offered rate saturates an endless load (see saturation)")
    tpot_ms: float | None = Field(description="None for one-token answers: no token follows the first")
    per_stream_tok_s: float | None = Field(description="tokens per second one request sees after its first "
                                           "(1000 / TPOT); None for one-token answers")
    e2e_s: float | None
    output_tok_s: float
    output_tok_s_per_gpu: float
    total_tok_s: float
    requests_s: float
    saturated: bool
    fits: bool = Field(default=True, description="false: the model does not fit this layout's memory; the figures "
                       "are what it would do if it did (`does_not_fit` says why)")
    does_not_fit: str | None = Field(default=None, description="why the model does not fit this layout")
    saturation: Saturation | None = Field(default=None, description="set when the offered rate exceeds what the "
                                          "deployment serves")
    max_batch: float = Field(description="most sequences the engine runs at once (max_num_seqs or KV capacity)")
    max_throughput_output_tok_s: float
    prefill_tok_s: float
    decode_tok_s: float
    bound: dict[str, str]
    phases: dict[str, PhaseBreakdown]
    intervals: dict[str, Interval] = Field(description="80 % range from the calibration residuals")
    calibration: dict[str, Any]
    speculative: dict[str, float] | None
    definitions: dict[str, str] = METRIC_DEFINITIONS
    notes: list[str]


def _phase(st: StepTime, roof: float) -> PhaseBreakdown:
    # the step's kernels run one after the other, each bound by memory or by compute (physics module docstring):
    # the split adds their times up, and the bound is where most of the time goes
    by_memory = float(np.max(st.memory_bound))
    busy = float(np.max(st.total - st.comm - st.overhead))
    split = {"memory": by_memory, "compute": busy - by_memory,
             "interconnect": float(np.max(st.comm)), "overhead": float(np.max(st.overhead))}
    bound = max(split, key=lambda k: split[k])
    alone = {"memory": float(np.max(st.memory)), "compute": float(np.max(st.compute))}
    return PhaseBreakdown(time_ms=1e3 * float(np.max(st.total)), bound=bound,
                          split_ms={k: round(1e3 * v, 4) for k, v in split.items()},
                          alone_ms={k: round(1e3 * v, 4) for k, v in alone.items()}, roofline_ms=1e3 * roof)


@dataclass(frozen=True)
class _Spec:
    k: int
    a: float
    draft: float

    @property
    def tokens_per_step(self) -> float:
        if self.k == 0:
            return 1.0
        return (1 - self.a ** (self.k + 1)) / (1 - self.a)


def _resolve(req: EstimateRequest, cat: Catalog):
    from ..importers import import_model, looks_like_path

    if looks_like_path(req.model):
        imp = import_model(req.model, cat)
        return resolve(req, cat, model=imp.model, checkpoint_precision=imp.precision, checkpoint_kv=imp.kv_precision,
                       model_source=str(imp.path))
    return resolve(req, cat)


def _saturation(req: EstimateRequest, load, o: float) -> Saturation | None:
    """An offered rate beyond what the deployment serves: the most it serves, and (for a
    finite run of N requests) the mean wait ``N/2 × (1/μ − 1/λ)``; an endless load has none."""
    if req.request_rate is None or not bool(np.asarray(load.saturated)):
        return None
    mu = float(np.asarray(load.requests_s))
    unbounded = req.num_requests is None
    wait = None if req.num_requests is None else req.num_requests / 2 * (1 / mu - 1 / req.request_rate)
    msg = (f"saturated: the deployment serves at most {fmt_sig(mu)} req/s at these lengths "
           f"({mu * o:,.0f} output tok/s) and {req.request_rate:g} req/s are offered; ")
    msg += ("the queue grows without bound, so there is no steady-state TTFT (add replicas, or give "
            "--num-requests for a finite run)" if unbounded else
            f"a run of {req.num_requests:,} requests queues each for {wait:,.1f} s on average")
    return Saturation(offered_requests_s=req.request_rate, max_requests_s=mu, unbounded=unbounded,
                      queue_delay_s=wait, message=msg)


def _intervals(values: dict[str, float | None], lo: float, hi: float) -> dict[str, Interval]:
    out = {}
    for k, v in values.items():
        if v is None:
            continue
        # a time scales inversely with a speed: measured/predicted of a speed is predicted/measured of a time
        a, b = (v / hi, v / lo) if k.endswith("_ms") else (v * lo, v * hi)
        out[k] = Interval(low=min(a, b), high=max(a, b))
    return out


def _engines_of(cal, engine: str) -> str:
    """Which engines a fallback fit's rows come from, e.g. ': 400 trtllm, 31 llamacpp; none of vllm, so it is
    predicted as those engines ran'. Empty for files written before the counts were kept."""
    if not cal.engine_rows:
        return ""
    named = ", ".join(f"{n:,} {eng}" for eng, n in cal.engine_rows.items())
    mine = cal.engine_rows.get(engine, 0)
    if not mine:
        return f": {named}; none of {engine}, so it is predicted as those engines ran"
    return f": {named}"


def _notes(d, mem, level: str, cal, widen: float, load, sat: Saturation | None, dequant: bool) -> list[str]:
    notes = [f"engine defaults of {d.engine_profile} on {d.accelerator.id}: max_num_seqs "
             f"{d.engine.defaults.max_num_seqs}, max_num_batched_tokens {d.engine.defaults.max_num_batched_tokens}"
             f"{'' if d.engine.defaults.chunked_prefill else ' (no chunked prefill)'}"]
    if not level.startswith("engine×family"):
        notes.append(f"no calibration data for {d.engine.id} on {d.accelerator.family}: using the {level} fit "
                     f"({cal.id}, {cal.n_rows} rows{_engines_of(cal, d.engine.id)}); the interval is its residual "
                     f"band scaled ×{widen:.2f}, "
                     + ("the factor fitted on sources held out of the calibration" if cal.interval_scale is not None
                        else "the hand-set widening of a calibration file without fitted factors"))
    if not mem.fits:
        notes.append("the model does not fit this layout (see `llmplan fit`): " + "; ".join(mem.reasons))
    if sat is not None:
        notes.append(sat.message)
    elif bool(np.asarray(load.saturated)):
        notes.append("the load exceeds what the engine runs at once: requests queue and TTFT includes the wait")
    notes.append(compute_rate_note(d.accelerator, compute_dtype(d.weight_format, d.accelerator)))
    if d.allreduce is not None:
        notes.append(f"all-reduce: {d.allreduce.basis}")
    if dp_attention(d):
        notes.append(f"data-parallel attention over the {d.layout.tp} GPUs ({d.engine.execution.dp_attention_option}): "
                     "the KV cache is held once and the attention weights whole on every GPU; a prompt's attention "
                     "runs on the GPU that holds its sequence (the busiest carries max(one prompt, prefill / TP)), "
                     "and so does a decoding sequence's (with fewer sequences than GPUs, the step waits for the one "
                     "reading a whole sequence's cache); sequences assumed spread evenly otherwise")
    if dequant and d.kernel is not None:
        k = d.kernel
        notes.append(f"weight-only kernel {k.id}: prefill at {k.prefill_compute_ratio:g}× the 16-bit GEMM rate"
                     + (f" (an estimate, {k.low:g}–{k.high:g}: {k.basis})" if k.estimate else ""))
    return notes + list(d.estimates)


def estimate(req: EstimateRequest, cat: Catalog) -> EstimateReport:
    d = _resolve(req, cat)
    gguf = tuple(cat.gguf_types)
    shape = stage_shape(d, gguf, d.kv_format.bits / 8)
    mach, dtype = machine(d)
    e, cal, level = deployment_efficiency(d, cat)
    settings_chunk = float(req.max_num_batched_tokens or d.engine.defaults.max_num_batched_tokens)
    i, o = float(req.input_tokens), float(req.output_tokens)
    limit = engine_limit(d, cat, i, o) if not req.max_num_seqs else float(req.max_num_seqs)
    spec = _Spec(req.spec_tokens, req.spec_acceptance, req.spec_draft_cost)

    if req.request_rate is not None:
        load = open_loop(shape, mach, e, req.request_rate, i, o, limit, settings_chunk,
                         req.num_requests if req.num_requests else np.inf)
    else:
        load = closed_loop(shape, mach, e, float(req.concurrency), i, o, limit, settings_chunk)
    running = float(np.asarray(load.running))
    # the decode phase as the load runs it: its prompt tokens per step (the other clients' in a closed
    # loop; with speculative decoding a request takes fewer steps, so each carries more of them)
    prompts = float(np.minimum(float(np.asarray(load.prompt_tokens)) * (spec.tokens_per_step if spec.k else 1.0),
                               step_room(running * (spec.k + 1), settings_chunk)))  # at most the step's budget
    mixed = mixed_step(shape, mach, e, running * (spec.k + 1), i, o, prompts)
    tpot = float(np.asarray(load.tpot_s))
    if spec.k:
        # speculative decoding: each step verifies k + 1 tokens per sequence (plus k draft passes)
        # and yields on average (1 − a^(k+1)) / (1 − a) of them
        tpot = (float(np.asarray(mixed.total)) * (1 + spec.k * spec.draft)) / spec.tokens_per_step
    sat_info = _saturation(req, load, o)
    ttft = None if sat_info is not None and sat_info.unbounded else float(np.asarray(load.ttft_s))
    e2e = None if ttft is None else ttft + max(o - 1, 0) * tpot
    req_s = float(np.asarray(load.requests_s)) if not spec.k or e2e is None else \
        min(running / e2e, req.request_rate or math.inf)
    sat = closed_loop(shape, mach, e, limit, i, o, limit, settings_chunk)
    pre1, pre_st, _ = prefill_time(shape, mach, e, i, 0.0, settings_chunk)
    dec1 = decode_step(shape, mach, e, 1.0, i + o / 2)
    roof_pre = float(roofline_step(shape, mach, 0.0, 0.0, i, i / 2))
    roof_dec = float(roofline_step(shape, mach, running * (spec.k + 1), i + o / 2, prompts, i / 2))
    phases = {"prefill": _phase(pre_st, roof_pre)}
    if o > 1:  # a one-token answer has no decode step of its own
        phases["decode"] = _phase(mixed, roof_dec)
    widen = entry_scale(cal, level)
    tpot_ms = 1e3 * tpot if o > 1 else None  # one output token: no time per token after the first
    intervals = _intervals({"ttft_ms": None if ttft is None else 1e3 * ttft, "tpot_ms": tpot_ms,
                            "output_tok_s": req_s * o},
                           *interval(1.0, (cal.log_error_p10, cal.log_error_p90), widen))
    mem = memory_fit(d, gguf, context_tokens=min(int(i + o), d.model.max_context), concurrency=1)
    misfit = [] if mem.fits else list(mem.reasons)
    if i + o > d.model.max_context:
        misfit.insert(0, f"a request of {int(i):,} + {int(o):,} tokens is longer than the model's context window "
                         f"({d.model.max_context:,} tokens)")
    notes = _notes(
        d, mem, level, cal, widen, load, sat_info, mach.flops_ratio != 1.0 or is_dequant(d.weight_format, dtype)
    )
    if dp_attention(d) and i > settings_chunk // d.layout.tp:
        notes.append(f"not modelled: {dp_attention_unmodelled(d, int(settings_chunk))} (this prompt: {i:,.0f}); "
                     "with several such prompts in flight, measure it")
    return EstimateReport(
        model=d.model_source, gpu=d.accelerator.id, engine=d.engine.id, engine_profile=d.engine_profile,
        precision=d.weight_format.id, kv_precision=d.kv_format.id, compute_dtype=dtype, num_gpus=d.layout.num_gpus,
        tp=d.layout.tp, pp=d.layout.pp, input_tokens=req.input_tokens, output_tokens=req.output_tokens,
        concurrency=running, request_rate=req.request_rate, ttft_ms=None if ttft is None else 1e3 * ttft,
        tpot_ms=tpot_ms, per_stream_tok_s=None if tpot_ms is None else 1 / tpot, e2e_s=e2e, output_tok_s=req_s * o,
        output_tok_s_per_gpu=req_s * o / d.layout.num_gpus, total_tok_s=req_s * (i + o), requests_s=req_s,
        saturated=bool(np.asarray(load.saturated)), saturation=sat_info, max_batch=limit,
        fits=not misfit, does_not_fit="; ".join(misfit) or None,
        max_throughput_output_tok_s=float(np.asarray(sat.output_tok_s)) * (spec.tokens_per_step if spec.k else 1.0),
        prefill_tok_s=i / float(pre1), decode_tok_s=spec.tokens_per_step / float(dec1.total) if spec.k
        else 1 / float(dec1.total),
        bound={k: v.bound for k, v in phases.items()}, phases=phases, intervals=intervals,
        calibration={"id": cal.id, "level": level, "n_rows": cal.n_rows, "mdape_pct": cal.mdape_pct,
                     "eta_bw": e.eta_bw, "eta_flops": e.eta_flops, "step_overhead_ms": 1e3 * e.step_overhead_s,
                     "activation_passes": e.activation_passes},
        speculative={"draft_tokens": spec.k, "acceptance": spec.a, "tokens_per_step": spec.tokens_per_step}
        if spec.k else None,
        notes=notes,
    )
