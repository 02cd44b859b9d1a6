"""The planner's search: enumerate models × formats × accelerators × engines × layouts, drop
what the policy forbids or what does not fit (each with its reason), estimate speed, size the
replicas for the workload's peak at its SLOs (analytically; confirmed by the simulator for the
finalists), cost every survivor over the horizon, rank by TCO and keep the Pareto front of
cost, latency and quality. Cloud-GPU and API options compete in the same ranking when the
policy allows them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import Accelerator, Engine, Model, QuantFormat, Slo
from ..cost.model import HOURS_PER_YEAR, api_cost, onprem
from ..cost.ownership import buy, configurations, fleet_load
from ..cost.tco import Finance, bought_note, cost_lines, on_demand_replicas, purchase_summary
from ..errors import LlmplanError
from ..memory.fit import fit as memory_fit
from ..perf.efficiency import deployment_efficiency, slower
from ..perf.intervals import slow_end
from ..perf.limits import answer_share, engine_limit
from ..perf.poisson import capacity, poisson_latency
from ..perf.scenarios import closed_loop
from ..perf.shape import compute_dtype, machine, stage_shape
from ..serving.cluster import slo_limits
from ..serving.workload import (
    Workload,
    days_per_year,
    for_model,
    hourly_weights,
    preset,
    samples_thinking,
    thinking_of,
    thinks,
)
from ..specs import (
    Deployment,
    FitRequest,
    dp_attention_unmodelled,
    hardware_plugin,
    offers_dp_attention,
    resolve,
    weight_only_kernel,
)
from ..units import fmt_sig
from . import policy as pol
from . import quality as qual
from .quality import quality_recovery_pct
from .scenario import Scenario
from .serve_config import serve_command, thinking_off_server_side

TP_CHOICES = (1, 2, 4, 8)
Z999 = 3.09  # standard normal quantile of p99.9
# the simulated p95s must sit this far inside the SLO limits: one simulated hour is one sample of
# a bursty process, and another hour (another seed) lands a few per cent either side
SLO_HEADROOM = 0.9


def tightened(slo: Slo) -> Slo:
    """The SLO the sizing and the simulator's confirmation hold an option to: every latency limit × SLO_HEADROOM
    and the share of requests allowed to miss × SLO_HEADROOM too (goodput 95 % -> 95.5 %), so that another
    simulated hour of the same load, a few per cent either side, still meets the SLO as stated."""
    update: dict[str, float] = {k: v * SLO_HEADROOM for k, v in slo.model_dump().items()
                                if k.endswith("_ms") and v is not None}
    update["goodput_pct"] = 100 - (100 - slo.goodput_pct) * SLO_HEADROOM
    return slo.model_copy(update=update)


@dataclass
class Option:
    id: str
    deployment: str  # on_prem | cloud_gpu | api
    model: str
    precision: str | None
    hardware: str | None
    engine: str | None
    num_gpus: int = 0
    tp: int = 0
    pp: int = 0
    replicas: int = 0
    servers: int = 0
    tco_usd: float = math.inf
    cost_per_million_tokens_usd: float = math.inf
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    answer_start_p95_ms: float | None = None  # to the first token of the answer (the TTFT where it does not think)
    quality_recovery_pct: float | None = None
    quality_score: float | None = None  # absolute, on the scenario's ranking benchmark (None: no published figure)
    serve_command: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    _ctx: dict[str, Any] = field(default_factory=dict, repr=False)

    def public(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("id", "deployment", "model", "precision", "hardware", "engine", "num_gpus",
                                           "servers", "tp", "pp", "replicas", "tco_usd", "cost_per_million_tokens_usd",
                                           "ttft_p95_ms", "tpot_p95_ms", "answer_start_p95_ms",
                                           "quality_recovery_pct", "quality_score",
                                           "serve_command")}
        d["details"] = self.details
        return d


def gpu_failure_left(o: Option) -> tuple[int, int] | None:
    """(replicas still serving with one GPU failed, replicas the peak needs) for an owned option bought
    without spares (availability none): the failed GPU takes its replica down (a tensor-parallel group stops
    whole). None for other options."""
    need = o.details.get("replicas_needed")
    if o.deployment != "on_prem" or not need:
        return None
    bought = o._ctx.get("bought", {}).get(need)
    if bought is None or bought.purchase.mode != "none":
        return None
    return int(bought.purchase.replicas) - 1, int(need)


def short_after_gpu_failure(o: Option) -> bool:
    """An owned option bought without spares leaves fewer replicas than the peak needs with one GPU failed (rented
    GPUs, APIs and options with spares: False, the question does not arise)."""
    left = gpu_failure_left(o)
    return left is not None and left[0] < left[1]


def ranking_cost(o: Option, failure_tie_pct: float = 0.0) -> float:
    """The TCO the ranking compares: an option that falls short of the peak with one GPU failed counts
    `failure_tie_pct` % dearer (quality.failure_tie_pct: one server as one TP-4 replica instead of two TP-2 ones
    is not worth losing the service to one GPU for $45 over four years)."""
    return o.tco_usd * (1 + failure_tie_pct / 100) if failure_tie_pct and short_after_gpu_failure(o) else o.tco_usd


def rank_key(o: Option, failure_tie_pct: float = 0.0) -> tuple:
    """Cheapest first (:func:`ranking_cost`); at equal cost the better absolute quality (an unknown one last), then
    the better recovery, then the lower latency."""
    return (ranking_cost(o, failure_tie_pct), -o.quality_score if o.quality_score is not None else math.inf,
            -(o.quality_recovery_pct or 0.0), o.ttft_p95_ms if o.ttft_p95_ms is not None else math.inf, o.id)


def rank(options: list[Option], tolerance_pct: float, resolution: float, failure_tie_pct: float = 0.0) -> list[Option]:
    """The ranking rule: options whose cost (:func:`ranking_cost`: the TCO, `failure_tie_pct` % more for one that
    falls short of the peak with one GPU failed) is within `tolerance_pct` of the cheapest TCO are ordered by
    absolute quality, best first, where scores closer than `resolution` to the best remaining one count as a tie
    settled by rank_key (cost); options without a published figure follow them, then everything beyond the
    tolerance by rank_key. A much better model a few per cent dearer wins; a marginally better one does not
    outweigh its price."""
    by_cost = sorted(options, key=lambda o: rank_key(o, failure_tie_pct))
    if not by_cost or not math.isfinite(by_cost[0].tco_usd):
        return by_cost
    # the band is measured from the cheapest TCO (as the report says it), its members by their ranking cost
    limit = min(o.tco_usd for o in by_cost) * (1 + tolerance_pct / 100)
    band = [o for o in by_cost if ranking_cost(o, failure_tie_pct) <= limit]
    known = [o for o in band if o.quality_score is not None]
    out: list[Option] = []
    while known:
        best = max(o.quality_score for o in known)  # type: ignore[type-var]
        tier = [o for o in known if o.quality_score >= best - resolution]  # type: ignore[operator]
        out += tier  # already in rank_key order
        known = [o for o in known if o.quality_score < best - resolution]  # type: ignore[operator]
    return out + [o for o in band if o.quality_score is None] + [o for o in by_cost
                                                                  if ranking_cost(o, failure_tie_pct) > limit]


def _with_quality(options: list[Option], bench, cat: Catalog, thinking_off: bool = False) -> list[Option]:
    """Each option's absolute quality on the ranking benchmark (API: the provider's precision is unknown);
    `thinking_off`: the workload turns thinking off (a switchable model is scored without it, where rated so)."""
    for o in options:
        if "quality" not in o.details:
            fmt = cat.quant_format(o.precision) if o.precision else None
            f = qual.figure(cat.model(o.model), fmt, bench, cat, thinking_off)
            o.quality_score = f.score
            o.details["quality"] = f.public()
    return options


@dataclass
class Rejection:
    option: str
    reasons: list[str]


def check_names(s: Scenario, cat: Catalog) -> None:
    """Every catalog name in the scenario resolves (an unknown one raises with the closest ids)."""
    if isinstance(s.models, list):
        for n in s.models:
            cat.model(n)
    if isinstance(s.hardware, list):
        for n in s.hardware:
            cat.accelerator(n)
    for n in s.engines:
        cat.engine(n)
    for n in s.precisions or []:
        cat.quant_format(n)
    if s.policy.preset:
        cat.policy_presets.get(s.policy.preset)
    if s.workload.preset:
        cat.workload_presets.get(s.workload.preset)
    if s.finance.region:
        cat.regions.get(s.finance.region)
    qual.check_spec(s.quality.task, s.quality.benchmark, s.quality.min, cat)


def scenario_workload(s: Scenario, cat: Catalog) -> Workload:
    w = s.workload
    base = preset(w.preset, cat) if w.preset else Workload()
    upd = {k: v for k, v in w.model_dump(exclude_none=True).items() if k not in ("preset",)}
    if "slo" in upd:
        upd["slo"] = w.slo
    for k in ("input_tokens", "output_tokens", "thinking_tokens"):
        if k in upd:
            upd[k] = getattr(w, k)
    return base.model_copy(update=upd)


def candidate_models(s: Scenario, cat: Catalog) -> list[Model]:
    if isinstance(s.models, list):
        return [cat.model(name) for name in s.models]
    c = s.models
    out = []
    for m in cat.models:
        if m.tuning == "base":  # constraints choose models to serve; a base model is planned only when named
            continue
        b = m.total_params / 1e9
        if c.min_params_b is not None and b < c.min_params_b or c.max_params_b is not None and b > c.max_params_b:
            continue
        if c.licenses is not None:
            allowed: set[str] = set()
            for x in c.licenses:
                allowed |= set(pol.COMMERCIAL) if x == "commercial" else {x}
            if m.license_class not in allowed:
                continue
        if c.countries is not None and m.country not in c.countries:
            continue
        if c.min_context is not None and m.max_context < c.min_context:
            continue
        if c.families is not None and m.family not in c.families:
            continue
        out.append(m)
    out.sort(key=lambda m: -m.total_params)
    return out[: c.max_models]


def candidate_hardware(s: Scenario, cat: Catalog) -> list[Accelerator]:
    if isinstance(s.hardware, list):
        return list(dict.fromkeys(cat.accelerator(n) for n in s.hardware))
    c = s.hardware
    out = []
    for a in cat.accelerators:
        if c.vendors is not None and not pol.vendor_named(a.vendor, c.vendors):
            continue
        if c.countries is not None and (a.designer_country or "") not in c.countries:
            continue
        if c.min_memory_gib is not None and a.memory_gib < c.min_memory_gib:
            continue
        if c.max_price_usd is not None and (a.price is None or a.price.usd > c.max_price_usd):
            continue
        if c.kinds is not None and a.kind not in c.kinds:
            continue
        out.append(a)
    return out


@dataclass
class Sizing:
    replicas: int
    per_replica_req_s: float
    concurrency: float  # mean decoding sequences at that rate (serving_slots sets max_num_seqs from it)
    limit: float  # sequences the engine runs at once (max_num_seqs or what the KV cache holds)
    kv_tokens: float  # the KV cache in tokens
    alone_s: float  # one request of the mean lengths alone: its time in the engine (for the engines' active share)
    max_num_seqs: int  # the sequence slots the plan sets (serving_slots), the ones the rate was sized with


def size_replicas(d: Deployment, cat: Catalog, w: Workload, peak: float, max_context: float = math.inf,
                  slow: float = 1.0, kv_tokens: float | None = None, max_num_seqs: int | None = None) -> Sizing | str:
    """Analytic: the highest per-replica Poisson request rate at which the SLO holds as the simulator will
    judge it (:func:`llmplan.perf.poisson.capacity`: every SLO percentile over the workload's length
    distributions, and the goodput share, with the limits tightened by SLO_HEADROOM), then
    replicas = ⌈peak / rate⌉: the replicas that carry the peak. Availability spares are placed by the
    purchase, in other servers (:mod:`llmplan.cost.purchase`). A string says why no rate works: one request
    at a time already misses (the p95 prompt's TTFT, the p95 answer's end-to-end), or the queue does.
    `slow`: the engine taken that many times slower than predicted (:func:`llmplan.perf.efficiency.slower`).
    `kv_tokens`: the replica's KV cache at that context, where the caller has it (else fitted here); it bounds
    the sequences the engine runs (:func:`llmplan.perf.limits.engine_limit`) and the admission wait.
    `max_num_seqs`: the engine's slots as already planned (else :func:`serving_slots` of the concurrency at the
    rate sized with the engine's default); below the default, the rate is sized again with them."""
    shape = stage_shape(d, tuple(cat.gguf_types), d.kv_format.bits / 8)
    mach, _ = machine(d)
    e, _, _ = deployment_efficiency(d, cat)
    if slow != 1.0:
        e = slower(e, slow)
    li, lo = w.lengths("input"), w.lengths("output")
    thinking = thinking_of(w, d.model)  # the answer starts after it (its share of the output)
    i, o = li.mean, lo.mean
    i95, o95 = li.p95 or i, lo.p95 or o
    kv = float(memory_fit(d, tuple(cat.gguf_types), context_tokens=int(min(max_context, d.model.max_context)))
               .kv_capacity_tokens) if kv_tokens is None else kv_tokens
    limit = engine_limit(d, cat, i, o, kv_capacity_tokens=kv)
    chunk = float(d.engine.defaults.max_num_batched_tokens)
    # one request at a time (the mean, the p95 prompt, the p95 answer), and the engine full (its saturation)
    r = closed_loop(shape, mach, e, np.array([1.0, 1.0, 1.0, max(limit, 1.0)]), np.array([i, i95, i, i]),
                    np.array([o, o, o95, o]), limit, chunk)
    long_prompt = long_answer = r
    ttft_ms = 1e3 * float(np.asarray(long_prompt.ttft_s)[1])
    tpot_ms = 1e3 * float(np.asarray(r.tpot_s)[0])
    e2e_ms = 1e3 * float(np.asarray(long_answer.e2e_s)[2])
    # the answer starts after the thinking, a TPOT a token: the p95 of TTFT(prompt) + thinking × TPOT over
    # independent prompt and thinking lengths, as for_model sums lengths (the means, plus the root of the two
    # excesses' squares); the sum of the two p95s would overstate it
    answer_ms = ttft_ms
    if thinking is not None:
        ttft_mean_ms = 1e3 * float(np.asarray(r.ttft_s)[0])
        answer_ms = ttft_mean_ms + thinking.mean * tpot_ms + math.hypot(
            ttft_ms - ttft_mean_ms, ((thinking.p95 or thinking.mean) - thinking.mean) * tpot_ms)
    # the same margin inside the SLO as the simulator's confirmation (tightened): an option the sizing accepts
    # is one the confirmation can accept
    tight = tightened(w.slo)
    limits = slo_limits(tight)
    alone = {"ttft_ms": ttft_ms, "answer_start_ms": answer_ms, "tpot_ms": tpot_ms, "e2e_ms": e2e_ms}
    if any(alone[k] > v for k, v in limits.items()):
        held = (f", answer start {answer_ms / 1e3:,.1f} s (p95 over the prompts and the thinking, "
                f"{thinking.mean:,.0f} tokens on average, {thinking.p95 or thinking.mean:,.0f} at p95)"
                if thinking is not None and "answer_start_ms" in limits else "")
        return (f"SLO unattainable (×{SLO_HEADROOM:g} headroom): even one request at a time takes TTFT "
                f"{ttft_ms:,.0f} ms (p95 prompt), TPOT {tpot_ms:,.1f} ms, end-to-end {e2e_ms / 1e3:,.1f} s "
                f"(p95 answer){held}")
    slo_s = {f"{k[:-3]}": v / 1e3 for k, v in tight.model_dump().items()
             if k.endswith("_ms") and v is not None}  # ttft_p95_ms -> ttft_p95
    per_request_s = {k[:-3]: v / 1e3 for k, v in limits.items()}
    saturation = float(np.asarray(r.requests_s)[3])
    if float(np.max(shape.num_experts)) > 0:  # a MoE: the even spread reads more experts than a lumped prompt does
        saturation = max(saturation, lumped_saturation(shape, mach, e, limit, i, o, chunk))
    share = answer_share(d)
    sized = partial(capacity, shape, mach, e, saturation, li, lo, chunk, limit, slo_s, per_request_s,
                    tight.goodput_pct / 100, max_context, w.shared_prefix_share, kv_tokens=kv,
                    thinking_lengths=thinking, answer_share=share)  # the rate, at a count of slots
    default = int(d.engine.defaults.max_num_seqs)
    rate, res, k_pass, concurrency = sized(slots=float(default))
    if rate <= 0:
        return _no_rate(res, slo_s, li.p95 or i)
    seqs = min(max_num_seqs or serving_slots(concurrency, default), default)
    at_rate = partial(poisson_latency, shape, mach, e, [rate], li, lo, chunk, limit, percentiles=(),
                      max_context=max_context, prefix_share=w.shared_prefix_share, kv_tokens=kv, with_e2e=False,
                      thinking_lengths=thinking, answer_share=share)
    if seqs < default and _slots_bind(at_rate, float(seqs), float(np.asarray(res["admission_wait_p"])[k_pass])):
        # the plan sets --max-num-seqs below the engine's default: the rate is the one those slots carry (a full
        # engine queues admissions sooner; the simulator's check and the serve command use the same slots); where
        # no rate holds with them, the engine keeps its default
        again = sized(slots=float(seqs))
        rate, concurrency, seqs = (again[0], again[3], seqs) if again[0] > 0 else (rate, concurrency, default)
    replicas = max(1, math.ceil(peak / rate))
    return Sizing(replicas, rate, concurrency, float(limit), kv, float(np.asarray(r.e2e_s)[0]), seqs)


def _slots_bind(at_rate: Callable[..., dict[str, np.ndarray]], slots: float, p_default: float) -> bool:
    """Whether `slots` (fewer than the engine's default) make a request wait for admission more often, by more
    than 1e-4, than the default did at the last grid rate that passed (`p_default`, at or below the rate);
    `at_rate`: :func:`llmplan.perf.poisson.poisson_latency` at the sized rate, given the slots. Else the rate sized
    with the default stands and a second sizing would only repeat it."""
    at = at_rate(slots=slots)
    return not bool(at["stable"][0]) or float(at["admission_wait_p"][0]) > p_default + 1e-4


def _no_rate(res: dict[str, Any], slo_s: dict[str, float], p95_prompt: float) -> str:
    """Why no Poisson rate meets the SLO (`res`: the capacity grid's metrics)."""
    # the answer start can miss where one request alone passes: a p99 limit over a long thinking tail
    late = [f"{name}_ms: {100 * float(res[f'exceed_{name}'][0]):.1f} % of answers start after the limit, "
            f"{100 - int(name.split('_p')[1])} % allowed" for name in slo_s
            if name.startswith("answer_start") and res[f"exceed_{name}"][0] > 1 - int(name.split("_p")[1]) / 100]
    return (f"SLO unattainable (×{SLO_HEADROOM:g} headroom) at any Poisson rate: "
            + (f"the answer start, after the thinking, misses even at 1/512 of the saturation rate ({late[0]})"
               if late else f"the prompts' queue (the long tail of {p95_prompt:,.0f}-token p95 prompts) misses "
               "even at 1/512 of the saturation rate") + f" (goodput {100 * float(res['goodput'][0]):.1f} %)")


def lumped_saturation(shape, mach, e, limit: float, i: float, o: float, chunk: float) -> float:
    """The engine full (`limit` sequences), each prompt whole in a share of the decode steps (chunked prefill, as
    the simulator runs them): requests/s. For a MoE the sizing tries rates up to the higher of this and the
    saturation with the prompts spread evenly over the steps, which is far lower for a small MoE (every step would
    read the experts of a few more tokens); the queue's own stability then finds the edge below it."""
    lumped = closed_loop(shape, mach, e, np.array([max(limit, 1.0)]), np.array([i]), np.array([o]), limit, chunk,
                         lumps=True)
    return float(np.asarray(lumped.requests_s)[0])


MIN_SLOTS = 16  # --max-num-seqs at least this (a slot costs nothing in a paged KV cache until it is used)


def serving_slots(concurrency: float, default: int) -> int:
    """--max-num-seqs for a replica whose mean decoding concurrency is C: room for its Poisson fluctuation (twice
    the mean plus four standard deviations, √C), at least MIN_SLOTS, never above the engine's `default`. A slot is
    held from admission, also while the prompt waits behind another's prefill: a long prompt lets the requests
    that arrive meanwhile fill the slots together, which the birth-death closed form does not see. At 8 slots
    the simulator lost a point of goodput against 16 at the same rate (94.6 against 95.4 %, Qwen3-30B-A3B int4
    on an RTX 5090 at 1.05 requests/s; the closed form: 95.5 % with either)."""
    return min(max(math.ceil(2 * concurrency + 4 * math.sqrt(concurrency)), MIN_SLOTS), default)




def _finance(s: Scenario, acc: Accelerator) -> Finance:
    f = s.finance
    return Finance(horizon_years=f.horizon_years, region=f.region, electricity_usd_per_kwh=f.electricity_usd_per_kwh,
                   pue=f.pue, discount_rate=f.discount_rate, depreciation_years=f.depreciation_years,
                   staff_usd_per_fte_year=f.staff_usd_per_fte_year, gpu_price_usd=f.gpu_price_usd.get(acc.id),
                   gpu_tdp_w=f.gpu_tdp_w.get(acc.id), licences=tuple(f.licences),
                   residual_value_pct=f.residual_value_pct, staff_fte_base=f.staff_fte_base,
                   staff_fte_per_server=f.staff_fte_per_server,
                   colocation_usd_per_kw_month=f.colocation_usd_per_kw_month, facility=f.facility)


def plan(s: Scenario, cat: Catalog, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Search. `progress`, when given, is called with a short description of each stage."""
    say = progress or (lambda _msg: None)
    check_names(s, cat)
    policy = pol.resolve_policy(s.policy, cat)
    w = scenario_workload(s, cat)
    if w.requests_per_day is None and w.rate_per_s is None:
        raise LlmplanError("the scenario's workload needs requests_per_day or rate_per_s")
    weights = hourly_weights(w.profile, cat) if w.requests_per_day is not None else np.full(24, 1 / 24)
    per_day = w.requests_per_day if w.requests_per_day is not None else (w.rate_per_s or 0) * 86400
    rate_h = per_day * weights / 3600
    peak, mean_rate = float(rate_h.max()), float(rate_h.mean())
    i_mean, o_mean = w.lengths("input").mean, w.lengths("output").mean
    days = days_per_year(w, cat)  # the days a year that carry this day's load (office hours: working days)
    tokens_year = per_day * days * (i_mean + o_mean)
    horizon = s.finance.horizon_years
    tokens_h = tokens_year * horizon
    options: list[Option] = []
    rejected: list[Rejection] = []
    models = candidate_models(s, cat)
    hardware = candidate_hardware(s, cat)
    engines = [cat.engine(e) for e in s.engines]
    if not models:
        raise LlmplanError("no catalog model matches the scenario's model constraints")
    if not hardware:
        vendors = ", ".join(sorted({a.vendor for a in cat.accelerators}))
        raise LlmplanError(f"no catalog accelerator matches the scenario's hardware constraints (hardware.vendors "
                           f"are the catalog's: {vendors}; see llmplan catalog gpus)")
    bench = qual.benchmark(s.quality.task, s.quality.benchmark, cat)
    say(f"checking {len(models)} model(s) × {len(hardware)} accelerator(s) × {len(engines)} engine(s)")
    loads = {m.id: _model_load(w, m) for m in models}  # what each model serves (a model that thinks: more output)
    candidates = _candidates(models, hardware, engines, w, loads, s, cat, policy, rejected)
    say(f"sizing {len(candidates)} candidate(s) cheapest purchase first")
    options += _with_quality(_search_layouts(candidates, s, cat, peak, rate_h, tokens_h, rejected),
                             bench, cat, w.thinking_off)
    say(f"simulating the finalists among {len(options)} option(s)")
    options = _confirm_finalists(options, cat, s, rejected, bench.resolution)
    say("pricing cloud GPUs and APIs")
    owned = rank(options, s.quality.cost_tolerance_pct, bench.resolution, s.quality.failure_tie_pct)
    # cloud: the best owned configurations rented instead
    refs: dict[str, Option | None] = {}
    if "cloud_gpu" in s.alternatives:
        extra, refs["cloud_gpu"] = _cloud(owned, s, cat, policy, rate_h, days, horizon, tokens_h, rejected)
        options += extra
    if "api" in s.alternatives:
        extra, refs["api"] = _api(models, s, cat, policy, per_day * days, i_mean, loads, horizon, tokens_h, rejected)
        options += extra
    ranked = rank(_with_quality(options, bench, cat, w.thinking_off), s.quality.cost_tolerance_pct, bench.resolution,
                  s.quality.failure_tie_pct)
    _check_recommendation(ranked, cat, s, say)
    return {
        "ranked": ranked,
        "benchmark": bench,
        "rejected": rejected,
        "references": refs,
        "workload": w,
        "peak_rate_per_s": peak,
        "mean_rate_per_s": mean_rate,
        "requests_per_day": per_day,
        "days_per_year": days,
        "tokens_per_year": tokens_year,
        "policy": policy,
        "candidates": {
            "models": [m.id for m in models],
            "hardware": [a.id for a in hardware],
            "engines": [e.id for e in engines],
        },
    }


def _rule_out(v: pol.Verdict, m: Model, fmt: QuantFormat, a: Accelerator, eng: Engine, s: Scenario, cat: Catalog,
              policy: pol.Policy) -> float | None:
    """Add to `v` what rules out (model, format, accelerator, engine) before any layout is tried:
    the engine's policy and hardware, quality floors, math the chip lacks. Returns the format's
    quality recovery %."""
    v.merge(pol.owned_rule(eng, policy))
    q = quality_recovery_pct(fmt, m)
    if not eng.loads_on(fmt.id, a.family):
        v.fail("engine", f"{eng.id} on {a.family} does not load {fmt.id} weights; it loads there: "
                         f"{', '.join(eng.family_formats[a.family])}")
    if not eng.runs_on(a.family):
        able = [f"{e.id} ({e.name})" if e.name else e.id for e in cat.engines
                if e.accelerators and a.family in e.accelerators]
        v.fail("engine", f"{eng.id} does not run on {a.family}"
               + (f"; add to the scenario's engines one that does: {', '.join(able)}" if able else ""))
    if q is None and s.min_quality_recovery_pct > 0:
        v.fail("quality", f"no published quality figure for {fmt.id}")
    elif q is not None and q < s.min_quality_recovery_pct:
        v.fail(
            "quality",
            f"{fmt.id} keeps {q:.1f} % of quality, below the {s.min_quality_recovery_pct:g} % floor",
        )
    off = qual.off_native(fmt, m, cat)
    if off:
        v.fail("quality", off)
    for why in qual.floor_reasons(m, fmt, s.quality.min, cat, bool(s.workload.thinking_off)):
        v.fail("quality", why)
    if compute_dtype(fmt, a) != fmt.compute_dtype and fmt.compute_dtype in ("fp8", "fp4", "int8") \
            and fmt.id not in (m.native_precision,) and eng.loads_on(fmt.id, a.family):
        no_math = _no_math_reason(m, fmt, a, eng, cat)
        if no_math:
            v.fail("hardware support", no_math)
    return q


def _no_math_reason(m: Model, fmt: QuantFormat, a: Accelerator, eng: Engine, cat: Catalog) -> str | None:
    """Why a format whose math the chip lacks is not offered there; None where the engine runs it weight-only
    with a kernel the catalog names for it (FP8 on Ampere via FP8 Marlin): the memory it saves can cut the GPU
    count, and the speed model prices the weight-only path."""
    k = weight_only_kernel(eng, fmt, a, cat)
    if k is not None and k.stands_in_for_math and fmt.id in k.formats:
        if k.dense_only and m.moe:
            return (f"{a.id} does not run {fmt.compute_dtype} math natively, and {eng.id}'s {k.id} kernel, which "
                    f"stands in for it on {a.family}, does not run MoE expert layers")
        return None
    if a.dense_tflops.get(fmt.compute_dtype) is not None:  # the chip has the math; the format's kernels do not
        return (f"{fmt.id} ({fmt.name or fmt.id}) has kernels for {', '.join(fmt.native_families)} only (quant "
                f"formats catalog, native_families); {a.id} ({a.family}) runs {fmt.compute_dtype} math, but the "
                f"catalog names no {eng.id} kernel for {fmt.id} there")
    return (f"{a.id} does not run {fmt.compute_dtype} math natively, and the catalog names no kernel with which "
            f"{eng.id} runs {fmt.id} there weight-only: it would only save memory, at an unmeasured rate")


CONFIRM_TOP = 3


def _confirm_finalists(owned: list[Option], cat: Catalog, s: Scenario, rejected: list[Rejection],
                       resolution: float) -> list[Option]:
    """Simulate the best-ranked options until the top CONFIRM_TOP are all confirmed; one that cannot
    meet its SLOs in the simulator even with more replicas is rejected with the simulated figures."""
    done: set[str] = set()
    while True:
        owned[:] = rank(owned, s.quality.cost_tolerance_pct, resolution, s.quality.failure_tie_pct)
        todo = [o for o in owned[:CONFIRM_TOP] if o.id not in done]
        if not todo:
            return owned
        for o in todo:
            confirm(o, cat, s)
            done.add(o.id)
            twin = o._ctx.get("twin")
            if not o._ctx["confirmed"]:
                sim = o.details["simulated"]
                bad = [f"{k} {v['value']:,.0f} > {v['limit']:,.0f}" for k, v in sim["slo"].items()
                       if not v["ok"] and v["value"] is not None]
                tried = sim["tried_replicas"]
                rejected.append(Rejection(o.id, [
                    f"latency: the simulated peak hour misses the SLO (×{SLO_HEADROOM:g} headroom) even with "
                    f"{max(tried)} replicas ({'; '.join(bad)}): prefill or decode itself is too slow"]))
                owned.remove(o)
                if twin is not None:  # the layout's other attention arrangement, set aside for it, is back
                    rejected.remove(twin[1])
                    _latency_at_peak(twin[0], cat)  # its figures at the peak, as every ranked option has
                    owned.append(twin[0])
            elif twin is not None:  # the simulator may have added replicas: the figures the rejection quotes
                twin[1].reasons[0] = superseded(o, twin[0])


def candidate_formats(eng: Engine, s: Scenario, cat: Catalog) -> list[QuantFormat]:
    ids = s.precisions or list(eng.formats) or [f.id for f in cat.quant_formats]
    out = [cat.quant_format(i) for i in ids if not eng.formats or cat.quant_format(i).id in eng.formats]
    kept = {f.id for f in out}
    # fp16 and bf16 cost the same: keep one (bf16 unless only fp16 was asked for)
    return [f for f in out if not (f.id == "fp16" and "bf16" in kept)]


@dataclass
class Candidate:
    """A model × format × accelerator × engine that passed the policy, engine, quality and hardware checks."""
    m: Model
    fmt: QuantFormat
    a: Accelerator
    eng: Engine
    q: float | None
    base_id: str
    w: Workload  # the load this model serves (with its thinking, for a model that thinks)
    stated: Workload  # the workload as the scenario states it (the simulator samples thinking and answer apart)


def _candidates(models: list[Model], hardware: list[Accelerator], engines: list[Engine], stated: Workload,
                loads: dict[str, Workload | str], s: Scenario, cat: Catalog, policy: pol.Policy,
                rejected: list[Rejection]) -> list[Candidate]:
    """Every model × format × accelerator × engine the rules allow (the others rejected, with their reasons),
    under the scenario's `stated` workload.
    An engine that runs on an accelerator through a hardware plugin with an entry of its own (vLLM on Gaudi:
    the vllm-gaudi plugin) is that entry there."""
    model_ok = {m.id: pol.model_rule(m, policy, cat) for m in models}
    hw_ok = {a.id: pol.hardware_rule(a, policy) for a in hardware}
    out: list[Candidate] = []
    for m in models:
        for a in hardware:
            for eng in _engines_on(engines, a, cat):
                for fmt in candidate_formats(eng, s, cat):
                    base_id = f"{m.id}:{fmt.id}:{a.id}:{eng.id}"
                    v = pol.Verdict().merge(model_ok[m.id]).merge(hw_ok[a.id])
                    q = _rule_out(v, m, fmt, a, eng, s, cat, policy)
                    load = loads[m.id]
                    if isinstance(load, str):
                        v.fail("workload", load)
                    if not v.ok or isinstance(load, str):
                        rejected.append(Rejection(base_id, v.reasons))
                        continue
                    out.append(Candidate(m, fmt, a, eng, q, base_id, load, stated))
    return out


def _engines_on(engines: list[Engine], a: Accelerator, cat: Catalog) -> list[Engine]:
    """The scenario's engines on accelerator `a`: one that does not run on its family is replaced by its
    hardware plugin for that family (catalog `plugin_of`), unless the scenario names the plugin too."""
    out: list[Engine] = []
    for eng in engines:
        plugin = hardware_plugin(eng, a.family, cat)
        if plugin is None:
            out.append(eng)
        elif plugin not in engines:
            out.append(plugin)
    return out


def _model_load(w: Workload, m: Model) -> Workload | str:
    """The workload `m` serves, or why it cannot be planned (a model that thinks, with no thinking_tokens)."""
    try:
        return for_model(w, m)
    except LlmplanError as exc:
        return str(exc)


def serve_context(w: Workload) -> int:
    """The context each replica serves (--max-model-len): p99.9 prompt + p99.9 output, in whole KiB of tokens."""
    return 1024 * math.ceil((w.lengths("input").quantile(Z999) + w.lengths("output").quantile(Z999)) / 1024)


# An owned layout whose cost floor (the cheapest purchase holding ONE replica, drawing idle power) is above
# prune_factor × the best owned TCO the analytic sizing has found so far cannot be recommended (the ranking
# band is 1 + cost_tolerance_pct/100 times the cheapest) and would only lengthen the lists of dearer options
# (alternatives, Pareto front): it is excluded with that reason, unsized. Layouts are sized cheapest floor
# first. The factor is the ranking band, and at least PRUNE_FACTOR (the report's lists reach that far).
PRUNE_FACTOR = 1.5


def prune_factor(s: Scenario) -> float:
    return max(PRUNE_FACTOR, 1 + s.quality.cost_tolerance_pct / 100)


def _tps(a: Accelerator, eng: Engine, s: Scenario) -> list[int]:
    domain = max(a.max_per_server or 1, a.interconnect.domain_size or 1)
    return [t for t in TP_CHOICES if t <= min(s.max_gpus_per_replica, domain)] if "tp" in eng.parallelism else [1]


def cost_floor_usd(d: Deployment, cat: Catalog, f: Finance, s: Scenario) -> float:
    """A lower bound on the TCO of any owned option of this accelerator, engine and layout size: the cheapest
    purchase that holds one replica (with the availability spares), at idle draw. More replicas need at
    least that purchase, and busy GPUs draw more."""
    return float(np.asarray(onprem(buy(d, cat, f, 1, s.availability.mode, lambda _placed: 0.0).x).tco_usd))


def _search_layouts(cands: list[Candidate], s: Scenario, cat: Catalog, peak: float, rate_h: np.ndarray,
                    tokens_h: float, rejected: list[Rejection]) -> list[Option]:
    """Every TP layout of every candidate, grouped by accelerator × engine × TP (one purchase floor each),
    sized and costed in order of that floor; groups whose floor exceeds prune_factor × the best TCO found
    so far are excluded with the figures (never dropped silently)."""
    groups: dict[tuple[str, str, int], list[tuple[Candidate, int]]] = {}
    for c in cands:
        for tp in _tps(c.a, c.eng, s):
            groups.setdefault((c.a.id, c.eng.id, tp), []).append((c, tp))
    finance = {a.id: _finance(s, a) for a in {c.a.id: c.a for c in cands}.values()}
    resolved: dict[str, Deployment] = {}
    floors: dict[tuple[str, str, int], float] = {}
    for key, members in groups.items():
        for c, tp in members:
            oid = f"{c.base_id}:tp{tp}"
            try:
                d = resolve(FitRequest(model=c.m.id, gpu=c.a.id, tp=tp, precision=c.fmt.id, engine=c.eng.id), cat)
            except LlmplanError as exc:
                rejected.append(Rejection(oid, [f"layout: {exc}"]))
                resolved[oid] = None  # type: ignore[assignment]
                continue
            resolved[oid] = d
            try:
                floors[key] = cost_floor_usd(d, cat, finance[c.a.id], s)
            except LlmplanError:
                floors[key] = 0.0  # the costing itself says why, per option, below
            break
    out: list[Option] = []
    best = math.inf
    factor = prune_factor(s)
    for key in sorted(groups, key=lambda k: (floors.get(k, 0.0), k)):
        floor = floors.get(key, 0.0)
        for c, tp in groups[key]:
            oid = f"{c.base_id}:tp{tp}"
            if oid in resolved and resolved[oid] is None:
                continue  # already rejected (layout)
            if floor > factor * best:
                why = (f"cost floor: the cheapest purchase holding one replica already costs {_usd0(floor)} over the "
                       f"horizon, more than {factor:g} × the best TCO the analytic sizing found, {_usd0(best)} "
                       "(not sized)")
                rejected.append(Rejection(oid, [why]))
                continue
            o = _layout(c, tp, resolved.get(oid), s, cat, peak, rate_h, tokens_h, finance[c.a.id], rejected)
            o = _dp_attention_variant(o, c, tp, s, cat, peak, rate_h, tokens_h, finance[c.a.id], rejected)
            if o is None:
                continue
            if o.tco_usd > factor * best:
                rejected.append(_sized_above(o, factor, best))
                continue
            best = min(best, o.tco_usd)
            out.append(o)
    # an option sized before the best was found (a cheap floor, many replicas) is held to the final best too
    rejected += [_sized_above(o, factor, best) for o in out if o.tco_usd > factor * best]
    kept = [o for o in out if o.tco_usd <= factor * best]
    for o in kept:  # the latencies at the peak, of the options kept only
        _latency_at_peak(o, cat)
    return kept


def _sized_above(o: Option, factor: float, best: float) -> Rejection:
    """A sized option whose TCO is above `factor` × the best TCO found: excluded, with the figures."""
    return Rejection(o.id, [f"cost floor: sized at {o.details['replicas_needed']} replica(s) its TCO "
                            f"{_usd0(o.tco_usd)} is more than {factor:g} × the best TCO the analytic sizing found, "
                            f"{_usd0(best)}"])


def _usd0(v: float) -> str:
    return f"${v:,.0f}" if math.isfinite(v) else "—"


DP_ATTENTION = ":dp-attention"  # the option id's suffix where attention runs data-parallel


def dp_attention_twin(eng: Engine, m: Model, tp: int) -> bool:
    """Whether the planner also sizes this layout with data-parallel attention: the engine offers it without
    running it by default, and the TP group replicates KV (an MLA latent, or fewer KV heads than GPUs)."""
    return offers_dp_attention(eng, m, tp) and not eng.execution.dp_attention and (m.mla is not None
                                                                                  or tp > m.num_kv_heads)


def _dp_attention_variant(plain: Option | None, c: Candidate, tp: int, s: Scenario, cat: Catalog, peak: float,
                          rate_h: np.ndarray, tokens_h: float, f: Finance, rejected: list[Rejection]) -> Option | None:
    """Where the engine can run attention data-parallel (SGLang --enable-dp-attention) and the layout gains from it
    (a TP group over an MLA model, whose latent cache TP replicates, or over fewer KV heads than GPUs), the same
    layout sized with it too: the cheaper of the two is kept, the other rejected naming it."""
    if not dp_attention_twin(c.eng, c.m, tp):
        return plain
    try:
        d = resolve(FitRequest(model=c.m.id, gpu=c.a.id, tp=tp, precision=c.fmt.id, engine=c.eng.id,
                               dp_attention=True), cat)
    except LlmplanError as exc:
        rejected.append(Rejection(f"{c.base_id}:tp{tp}{DP_ATTENTION}", [f"layout: {exc}"]))
        return plain
    long_prompt = c.w.lengths("input").p95 or c.w.lengths("input").mean
    if long_prompt > d.engine.defaults.max_num_batched_tokens // tp:  # see dp_attention_unmodelled
        rejected.append(Rejection(f"{c.base_id}:tp{tp}{DP_ATTENTION}", [
            f"not sized: {dp_attention_unmodelled(d, d.engine.defaults.max_num_batched_tokens)}, and this "
            f"workload's p95 prompt is {long_prompt:,.0f} tokens; measure it (the layout without it is sized)"]))
        return plain
    dp = _layout(c, tp, d, s, cat, peak, rate_h, tokens_h, f, rejected, DP_ATTENTION)  # its own reasons, if any
    if dp is None:
        return plain
    dp.details["dp_attention"] = True
    if plain is None:
        return dp
    keep, drop = (dp, plain) if dp.tco_usd < plain.tco_usd else (plain, dp)
    why = Rejection(drop.id, [superseded(keep, drop)])
    rejected.append(why)
    keep._ctx["twin"] = (drop, why)  # back in the running if the simulator turns `keep` down (_confirm_finalists)
    return keep


def superseded(keep: Option, drop: Option) -> str:
    """Why the dearer of a layout's two attention arrangements is not offered."""
    how = "with" if keep.details.get("dp_attention") else "without"

    def sized(o: Option) -> str:
        rate = o.details["per_replica_req_s"]
        return f"{_usd0(o.tco_usd)} ({o.details['replicas_needed']} replica(s) of {rate:.3g} requests/s)"

    return (f"superseded: the same layout {how} data-parallel attention ({keep.id}) costs {sized(keep)} over the "
            f"horizon against {sized(drop)}")


def _layout(c: Candidate, tp: int, d: Deployment | None, s: Scenario, cat: Catalog, peak: float,
            rate_h: np.ndarray, tokens_h: float, f: Finance, rejected: list[Rejection],
            variant: str = "") -> Option | None:
    """Memory, sizing and purchase of one layout (None: rejected, with its reason); `variant` suffixes its id."""
    m, fmt, a, eng, w = c.m, c.fmt, c.a, c.eng, c.w
    oid = f"{c.base_id}:tp{tp}{variant}"
    if d is None:
        try:
            d = resolve(FitRequest(model=m.id, gpu=a.id, tp=tp, precision=fmt.id, engine=eng.id), cat)
        except LlmplanError as exc:
            rejected.append(Rejection(oid, [f"layout: {exc}"]))
            return None
    ctx = int(min(serve_context(w), m.max_context))
    mem = memory_fit(d, tuple(cat.gguf_types), context_tokens=ctx)
    if not mem.fits:
        rejected.append(Rejection(oid, [f"memory: {r}" for r in mem.reasons]))
        return None
    sz = size_replicas(d, cat, w, peak, ctx, kv_tokens=float(mem.kv_capacity_tokens))
    if isinstance(sz, str):
        rejected.append(Rejection(oid, [f"latency: {sz}"]))
        return None
    try:
        configurations(a, d.layout.num_gpus, cat, f)
    except LlmplanError as exc:
        rejected.append(Rejection(oid, [f"cost: {exc}"]))
        return None
    o = Option(id=oid, deployment="on_prem", model=m.id, precision=fmt.id, hardware=a.id, engine=eng.id,
               quality_recovery_pct=c.q,
               details={"per_replica_req_s": sz.per_replica_req_s, "kv_capacity_tokens": mem.kv_capacity_tokens,
                        "context_tokens": ctx, "thinking_tokens_mean": w.lengths("thinking").mean
                        if thinks(m, w) else None})
    o._ctx = {"d": d, "sizing": sz, "finance": f, "w": w, "stated": c.stated, "peak": peak, "rate_h": rate_h,
              "tokens_h": tokens_h, "days": days_per_year(w, cat)}
    try:
        _cost_owned(o, sz.replicas, cat, s, latency=False)
    except LlmplanError as exc:
        rejected.append(Rejection(oid, [f"cost: {exc}"]))
        return None
    return o


def serving_replicas(o: Option, need: int, cat: Catalog, s: Scenario) -> int:
    """Replicas left to carry the load when the worst single server (n_plus_1) or one half
    (ha_pair) is down, for the purchase that places `need` replicas (none: all placed)."""
    return _bought(o, need, cat, s).purchase.serving_replicas


def option_load(o: Option) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """The option's load for the energy bill (:func:`llmplan.cost.ownership.fleet_load`): the day's hourly
    rates on replicas that each carry the SLO-bound rate."""
    c = o._ctx
    return fleet_load(c["rate_h"], o.details["per_replica_req_s"], c["sizing"].alone_s, c["days"])


def _bought(o: Option, need: int, cat: Catalog, s: Scenario):
    """The purchase for `need` replicas of the option (cached on the option)."""
    c = o._ctx
    cache = c.setdefault("bought", {})
    if need not in cache:
        utilisation_of, active_of = option_load(o)
        cache[need] = buy(c["d"], cat, c["finance"], need, s.availability.mode, utilisation_of, active_of=active_of)
    return cache[need]


def _cost_owned(o: Option, replicas: int, cat: Catalog, s: Scenario, latency: bool = True) -> None:
    """The cheapest purchase that places `replicas` (the replicas that carry the peak) with the
    availability spares in other servers, its TCO, and the latency at the peak on the replicas
    left after the worst failure the mode plans for. Free slots of the servers bought run more
    replicas."""
    c = o._ctx
    d = c["d"]
    owned = _bought(o, replicas, cat, s)
    p, x = owned.purchase, owned.x
    r = onprem(x)
    tco = float(r.tco_usd)
    serving = p.serving_replicas
    rate = o.details["per_replica_req_s"]
    o.num_gpus, o.tp, o.pp, o.replicas, o.servers = p.gpus, d.layout.tp, d.layout.pp, p.replicas, p.servers
    o.tco_usd = tco
    o.cost_per_million_tokens_usd = tco / c["tokens_h"] * 1e6 if c["tokens_h"] else math.inf
    seqs = c["sizing"].max_num_seqs  # --max-num-seqs: the slots the rate was sized with (serving_slots)
    w = c["w"]
    off = d.model.reasoning == "switchable" and w.thinking_off
    modes = pol.resolve_policy(s.policy, cat).deployment  # a preset's modes count
    o.serve_command = serve_command(d, o.details["context_tokens"], seqs, o.details.get("kv_capacity_tokens"),
                                    air_gapped="air_gapped" in modes,  # a requirement (planner/policy.py)
                                    thinking_off=off, replicas_per_server=p.replicas // max(p.servers, 1))
    summary = purchase_summary(owned, rate, c["peak"])
    spares = {"n_plus_1": 1, "ha_pair": replicas}.get(s.availability.mode, 0)
    # sized with thinking off: turned off by the server, or left to every client (no server-side switch)
    o.details["thinking_off_by"] = (("server" if thinking_off_server_side(d.engine, d.model) else "clients")
                                    if off else None)
    o.details.update({
        "capex_usd": float(r.capex_usd), "opex_usd_per_year": float(r.opex_usd_per_year),
        "utilisation_pct": x.utilisation_pct, "active_pct": x.active_pct, "serving_replicas": serving,
        "replicas_needed": replicas,
        "availability_spare_replicas": spares, "purchase": summary, "cost": cost_lines(r, x, owned),
        "energy_kwh_per_year": float(r.energy_kwh_per_year),
        "emissions_kg_per_year": float(r.emissions_kg_per_year), "max_num_seqs": int(seqs),
        "latency_basis": "analytic (p95 at the peak hour, Poisson arrivals)",
        "notes": [bought_note(summary, "at the SLO-bound rate of the sizing"), *owned.notes]})
    if latency:
        _latency_at_peak(o, cat)


def _latency_at_peak(o: Option, cat: Catalog) -> None:
    """The analytic p95 latencies at the peak on the replicas left after the worst planned failure (Poisson
    arrivals over the workload's length distributions: :func:`llmplan.perf.poisson.poisson_latency`), the answer
    start after the thinking of a model that thinks."""
    c = o._ctx
    d, sz, w = c["d"], c["sizing"], c["w"]
    shape = stage_shape(d, tuple(cat.gguf_types), d.kv_format.bits / 8)
    mach, _ = machine(d)
    e, _, _ = deployment_efficiency(d, cat)
    at = poisson_latency(shape, mach, e, c["peak"] / o.details["serving_replicas"], w.lengths("input"),
                         w.lengths("output"), float(d.engine.defaults.max_num_batched_tokens), sz.limit,
                         percentiles=(95,), max_context=o.details["context_tokens"], prefix_share=w.shared_prefix_share,
                         slots=float(o.details["max_num_seqs"]), kv_tokens=sz.kv_tokens, with_e2e=False,
                         thinking_lengths=thinking_of(w, d.model), answer_share=answer_share(d))
    o.ttft_p95_ms, o.tpot_p95_ms = float(1e3 * at["ttft_p95"][0]), float(1e3 * at["tpot_p95"][0])
    o.answer_start_p95_ms = float(1e3 * at["answer_start_p95"][0])


SIM_MIN_REQUESTS, SIM_MAX_REQUESTS = 1500, 5000
SIM_HOURS = 3  # independent peak hours (seeds) the replica count must pass
# least-loaded co-simulation costs requests × replicas in time and memory: past this many serving
# replicas a slice of them is simulated with its share of the peak (bounded work at any rate)
SIM_MAX_REPLICAS = 32


def _check_recommendation(ranked: list[Option], cat: Catalog, s: Scenario, say: Callable[[str], None]) -> None:
    """An owned recommendation's load ceiling in the simulator and its purchase at the slow end of the speed
    prediction's interval (both in the report's 'What would change the answer')."""
    if ranked and ranked[0].deployment == "on_prem":
        say("simulating the recommendation's load ceiling")
        ranked[0].details["load_ceiling"] = load_ceiling(ranked[0], cat, s)
        ranked[0].details["speed_risk"] = speed_risk(ranked[0], cat)


def speed_risk(o: Option, cat: Catalog) -> dict[str, Any]:
    """The purchase at the slow end of the speed prediction's 80 % interval (its calibration's residuals,
    widened for a less specific calibration level): the per-replica SLO-bound rate sized again with the engine
    that much slower, what the serving replicas then carry, and the replicas the peak would then need."""
    c = o._ctx
    d, w, peak = c["d"], c["w"], c["peak"]
    _, cal, level = deployment_efficiency(d, cat)
    factor = slow_end(cal, level)
    serving = o.details["serving_replicas"]
    out: dict[str, Any] = {"slow_factor": factor, "calibration": cal.id, "level": level, "peak_req_s": peak,
                           "serving_replicas": serving}
    sz = size_replicas(d, cat, w, peak, o.details["context_tokens"], slow=factor, kv_tokens=c["sizing"].kv_tokens,
                       max_num_seqs=c["sizing"].max_num_seqs)
    if isinstance(sz, str):
        return {**out, "unattainable": sz, "per_replica_req_s": None, "carried_req_s": None,
                "replicas_needed": None}
    return {**out, "unattainable": None, "per_replica_req_s": sz.per_replica_req_s,
            "carried_req_s": serving * sz.per_replica_req_s, "replicas_needed": sz.replicas}


CEILING_STEP = 0.95  # the load ceiling's search steps down 5 % at a time
CEILING_STEPS = 12
CEILING_HOURS = 6  # independent peak hours the ceiling must hold in (one hour's arrivals decide near it)


def simulated_load(o: Option, rate: float) -> tuple[Workload, bool]:
    """The workload the simulator serves option `o` at a Poisson `rate`, and whether its requests carry their
    thinking apart from their answers (:func:`llmplan.serving.workload.generate`'s `thinks`): for a model that
    thinks, the workload as stated (each request samples its thinking, then its answer), else the load."""
    split = samples_thinking(o._ctx["stated"], o._ctx["d"].model)
    w = o._ctx["stated" if split else "w"]
    return w.model_copy(update={"requests_per_day": None, "trace": None, "rate_per_s": rate, "arrival": "poisson"}), \
        split


def _simulated_hour(o: Option, cat: Catalog, spec: Any, rate: float, serving: int, seed: int, n: int,
                    slo: Any) -> dict[str, Any]:
    """One simulated peak hour: `n` requests arriving at `rate` (Poisson, the workload's lengths) on `serving`
    replicas behind a least-loaded router, judged at `slo`; past SIM_MAX_REPLICAS a slice of them carrying its
    share of the rate (a larger pool balances better). A model that thinks writes each request's thinking and
    then its answer, sampled apart (so that the answer start is known)."""
    from ..serving.cluster import simulate_cluster, summarize
    from ..serving.workload import generate

    k = min(serving, SIM_MAX_REPLICAS)
    share = rate if serving <= SIM_MAX_REPLICAS else rate * k / serving
    sim_w, split = simulated_load(o, share)
    reqs = generate(sim_w, cat, seed=seed, num_requests=n, max_context=o.details["context_tokens"], thinks=split)
    return summarize(simulate_cluster(spec, reqs, k, router="least-loaded"), slo,
                     warmup_s=float(reqs.arrival_s[min(len(reqs) - 1, len(reqs) // 20)]))


def _hours_met(o: Option, cat: Catalog, rate: float, serving: int, seed: int) -> int:
    """Of CEILING_HOURS independent peak hours at `rate`, how many meet the scenario's own SLO."""
    from ..serving.cluster import replica_spec

    spec = replica_spec(o._ctx["d"], cat, max_num_seqs=o.details["max_num_seqs"],
                        context_tokens=o.details["context_tokens"])
    share = rate * min(serving, SIM_MAX_REPLICAS) / serving
    n = int(min(max(share * 3600, SIM_MIN_REQUESTS), SIM_MAX_REQUESTS))
    return sum(_simulated_hour(o, cat, spec, rate, serving, seed + h * 7919, n, o._ctx["w"].slo)["slo_met"]
               for h in range(CEILING_HOURS))


def load_ceiling(o: Option, cat: Catalog, s: Scenario) -> dict[str, Any]:
    """The peak the purchase carries, checked in the simulator: the analytic SLO-bound rate of its serving
    replicas, then 5 % lower at a time (not below today's peak) until CEILING_HOURS simulated peak hours
    (seeds the sizing did not use) all meet the scenario's SLO. Near the ceiling one hour's arrivals decide,
    so the analytic rate (an expectation) can miss in some hours; the report gives both."""
    serving = o.details["serving_replicas"]
    analytic = serving * o.details["per_replica_req_s"]
    seed = s.seed + 104_729  # not a seed the confirmation uses (seed + k × 7919, small k)
    met_at_analytic = _hours_met(o, cat, analytic, serving, seed)
    rate, met = analytic, met_at_analytic
    peak = o._ctx["peak"]
    for _ in range(CEILING_STEPS):  # no lower than today's peak: the confirmation sized the purchase for it
        if met == CEILING_HOURS or rate * CEILING_STEP < peak:
            break
        rate *= CEILING_STEP
        met = _hours_met(o, cat, rate, serving, seed)
    return {"analytic_req_s": analytic, "simulated_req_s": rate if met == CEILING_HOURS else None,
            "lowest_tried_req_s": rate, "met_at_lowest": met, "hours": CEILING_HOURS,
            "met_at_analytic": met_at_analytic, "serving_replicas": serving}


def confirm(o: Option, cat: Catalog, s: Scenario) -> None:
    """Simulate the peak hour (Poisson arrivals at the peak rate, the workload's length
    distributions) on the replicas left when the spares are down, with the SLO limits tightened
    by SLO_HEADROOM. When the analytic count misses, try 4× as many replicas: if that misses too,
    the latency is out of reach of more replicas (prefill itself is too slow); otherwise bisect
    for the fewest that pass. The count is then checked on SIM_HOURS − 1 more independent hours (the worst is
    reported). The
    option's latencies become the simulated p95s."""
    from ..serving.cluster import replica_spec

    c = o._ctx
    d, w, peak = c["d"], c["w"], c["peak"]
    spec = replica_spec(d, cat, max_num_seqs=o.details["max_num_seqs"], context_tokens=o.details["context_tokens"])
    n = int(min(max(peak * 3600, SIM_MIN_REQUESTS), SIM_MAX_REQUESTS))
    slo = tightened(w.slo)
    memo: dict[tuple[int, int], dict[str, Any]] = {}

    def sim(replicas: int, hour: int = 0) -> dict[str, Any]:
        if (replicas, hour) not in memo:
            memo[replicas, hour] = _simulated_hour(o, cat, spec, peak, serving_replicas(o, replicas, cat, s),
                                                   s.seed + hour * 7919, n, slo)
        return memo[replicas, hour]

    start = replicas = o.details["replicas_needed"]
    if not sim(replicas)["slo_met"]:
        hi = 4 * replicas
        if sim(hi)["slo_met"]:
            lo = replicas  # fails
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if sim(mid)["slo_met"] else (mid, hi)
            replicas = hi
        else:
            replicas = hi
    for _ in range(3):  # the other hours
        if not sim(replicas)["slo_met"] or all(sim(replicas, h)["slo_met"] for h in range(1, SIM_HOURS)):
            break
        replicas += 1
    results = [sim(replicas, h) for h in range(SIM_HOURS)]
    ok = all(r["slo_met"] for r in results)
    # report the worst hour (the lowest goodput)
    res = min(results, key=lambda r: r["goodput_pct"])
    if replicas != start and ok:
        _cost_owned(o, replicas, cat, s)
    o.ttft_p95_ms, o.tpot_p95_ms = res["ttft_ms"]["p95"], res["tpot_ms"]["p95"]
    o.answer_start_p95_ms = res["answer_start_ms"]["p95"]
    o.details.update(
        {
            "latency_basis": f"simulated peak hour, worst of {SIM_HOURS} ({n:,} requests at {fmt_sig(peak)}/s on "
            f"{o.details['serving_replicas']} serving replicas)",
            "simulated": {
                "slo_met": ok,
                "goodput_pct": res["goodput_pct"],
                "ttft_ms": res["ttft_ms"],
                "tpot_ms": res["tpot_ms"],
                **({"answer_start_ms": res["answer_start_ms"]} if res["thinking_tokens_mean"] is not None else {}),
                "slo": res["slo"],
                "slo_headroom": SLO_HEADROOM,
                "hours_simulated": SIM_HOURS,
                "added_replicas": replicas - start,
                "tried_replicas": sorted({r for r, _ in memo}),
            },
        }
    )
    c["confirmed"] = ok


def _cloud(owned: list[Option], s: Scenario, cat: Catalog, policy, rate_h: np.ndarray, days: float, horizon: float,
           tokens_h: float, rejected: list[Rejection]) -> tuple[list[Option], Option | None]:
    """The best owned configurations rented instead: per configuration, the cheapest allowed offer
    and pricing (on-demand follows the hourly load on the `days` a year that carry it, nothing on the others;
    commitments pay for every hour). Also returns
    the cheapest offer of all, allowed or not, as a reference for the report."""
    out: list[Option] = []
    reference: Option | None = None
    seen = set()
    verdicts = {x.id: pol.cloud_rule(x, policy, cat) for x in cat.cloud_offers}
    hw = {o.hardware for o in owned}
    for x in cat.cloud_offers:  # one rejection per offer, not per configuration
        if x.accelerator in hw and not verdicts[x.id].ok:
            rejected.append(Rejection(f"cloud:{x.id}", verdicts[x.id].reasons))
    for o in owned:
        key = (o.model, o.precision, o.hardware, o.engine, o.tp)
        if key in seen:
            continue
        seen.add(key)
        per_replica = o.details["per_replica_req_s"]
        serving = o.details.get("serving_replicas", o.replicas)
        spares = o.details.get("availability_spare_replicas", o.replicas - serving)
        need_h = on_demand_replicas(rate_h, per_replica, spares)  # on the days with load
        gpu_per_replica = o.num_gpus // max(o.replicas, 1)
        used_hours = float(need_h.sum() * days * gpu_per_replica)
        committed_gpus = (math.ceil(float(rate_h.max()) / per_replica) + spares) * gpu_per_replica
        best: dict[bool, tuple] = {}
        for x in cat.cloud_offers:
            if x.accelerator != o.hardware:
                continue
            v = verdicts[x.id]
            for kind, committed in (("on_demand", False), ("1y", True), ("3y", True)):
                price = getattr(x, f"usd_per_gpu_hour_{kind}")  # spot cannot hold a latency SLO
                if price is None or (kind == "3y" and horizon < 3) or (kind == "1y" and horizon < 1):
                    continue
                hours = committed_gpus * HOURS_PER_YEAR if committed else used_hours
                total = hours * price * horizon
                for allowed in {v.ok, False}:
                    if allowed not in best or total < best[allowed][0]:
                        best[allowed] = (total, x, kind, price, v, committed_gpus if committed else o.num_gpus)
        for allowed, (total, x, kind, price, v, gpus) in best.items():
            opt = Option(
                id=f"{o.id}:cloud:{x.id}:{kind}", deployment="cloud_gpu", model=o.model, precision=o.precision,
                hardware=o.hardware, engine=o.engine, num_gpus=gpus, tp=o.tp, pp=o.pp,
                replicas=gpus // max(gpu_per_replica, 1), servers=0, tco_usd=total,
                cost_per_million_tokens_usd=total / tokens_h * 1e6 if tokens_h else math.inf,
                ttft_p95_ms=o.ttft_p95_ms, tpot_p95_ms=o.tpot_p95_ms, answer_start_p95_ms=o.answer_start_p95_ms,
                quality_recovery_pct=o.quality_recovery_pct,
                serve_command=o.serve_command,
                details={"provider": x.provider, "region": x.region, "region_country": x.region_country,
                         "sovereign": x.sovereign, "pricing": kind, "usd_per_gpu_hour": price, "offer": x.id,
                         "gpu_hours_per_year": (gpus * HOURS_PER_YEAR if kind != "on_demand" else used_hours),
                         "allowed": v.ok, "policy_reasons": v.reasons, "source": x.source, "as_of": x.as_of,
                         "latency_basis": "as the owned configuration it rents",
                         "thinking_tokens_mean": o.details.get("thinking_tokens_mean"),
                         **({"dp_attention": True} if o.details.get("dp_attention") else {})})
            if allowed:
                if len(out) < 10:
                    out.append(opt)
            elif reference is None or opt.tco_usd < reference.tco_usd:
                reference = opt
    allowed_best = min(out, key=lambda o: o.tco_usd) if out else None
    if allowed_best is not None and (reference is None or allowed_best.tco_usd <= reference.tco_usd):
        reference = allowed_best
    return out, reference


def _api(models: list[Model], s: Scenario, cat: Catalog, policy, requests_year: float, i_mean: float,
         loads: dict[str, Workload | str], horizon: float, tokens_h: float,
         rejected: list[Rejection]) -> tuple[list[Option], Option | None]:
    """The same models behind APIs, billed for a year's prompts and outputs (a model that thinks is billed for
    its thinking as output tokens, as the APIs do)."""
    cached = cat.cost_assumptions.get("api_cached_share_pct").value
    ids = {m.id for m in models}
    out: list[Option] = []
    reference: Option | None = None
    for p in cat.api_prices:
        if p.catalog_model not in ids:
            continue
        m = cat.model(p.catalog_model)
        v = pol.api_rule(p, policy, cat, m)
        oid = f"{m.id}:api:{p.id}"
        load = loads[m.id]
        if isinstance(load, str):
            rejected.append(Rejection(oid, [f"workload: {load}"]))
            continue
        in_tok, out_tok = requests_year * i_mean, requests_year * load.lengths("output").mean
        thinking = load.lengths("thinking").mean if thinks(m, load) else None
        total = float(api_cost(in_tok, out_tok, cached, p.input_usd_per_mtok, p.output_usd_per_mtok,
                               p.cached_input_usd_per_mtok if p.cached_input_usd_per_mtok is not None
                               else p.input_usd_per_mtok)) * horizon
        opt = Option(
            id=oid, deployment="api", model=m.id, precision=None, hardware=None, engine=None, tco_usd=total,
            cost_per_million_tokens_usd=total / tokens_h * 1e6 if tokens_h else math.inf,
            quality_recovery_pct=None,
            details={"provider": p.provider, "api_model": p.model, "data_regions": list(p.data_regions),
                     "provider_country": p.provider_country, "allowed": v.ok, "policy_reasons": v.reasons,
                     "source": p.source, "as_of": p.as_of, "thinking_tokens_mean": thinking,
                     "latency_basis": "not modelled for third-party APIs (their SLAs apply)"})
        if reference is None or (v.ok, -total) > (reference.details["allowed"], -reference.tco_usd):
            reference = opt
        if not v.ok:
            rejected.append(Rejection(oid, v.reasons))
            continue
        out.append(opt)
    return out, reference
