"""Workloads: how requests arrive and how long they are, and the SLOs they must meet.

Arrivals: a constant rate, Poisson at a rate, requests per day shaped by a 24-hour profile
(a preset name or 24 weights), or a trace file (CSV ``timestamp_s,input_tokens,output_tokens``
or JSONL with those keys). Lengths: fixed, lognormal from a mean and a p95, or the trace's
own. All sampling is seeded (numpy ``Generator``), so a workload and a seed give the same
requests on every machine.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from ..catalog import Catalog
from ..catalog.schema import Model, Slo
from ..errors import LlmplanError
from ..specs import MIN_RATE_PER_S, MIN_REQUESTS_PER_DAY, Name, NameOrPath
from ..strict import StrictModel

Z95 = 1.6448536269514722  # standard normal 95th percentile
MAX_TRACE_BYTES = 512 * 2**20
MAX_REQUESTS = 20_000_000


MAX_TOKENS = 10_000_000  # the longest prompt or generation a workload may state (Lengths, Tokens)
# a fixed token length, as bounded as a Lengths mean (0, a negative or a 20-digit count is refused up front)
Tokens = Annotated[int, Field(ge=1, le=MAX_TOKENS)]


class Lengths(StrictModel):
    """Token lengths: fixed (p95 omitted or equal to the mean) or lognormal with this mean and p95,
    lengths above `max` set to `max` (a benchmark sampler's cap, e.g. ShareGPT's)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mean: float = Field(ge=1, le=MAX_TOKENS)
    p95: float | None = Field(default=None, ge=1, le=MAX_TOKENS)
    max: float | None = Field(default=None, ge=1, le=MAX_TOKENS)

    @model_validator(mode="after")
    def _order(self) -> Lengths:
        if self.p95 is not None and self.p95 < self.mean:
            raise ValueError("p95 must not be below the mean")
        if self.max is not None and self.max < self.mean:
            raise ValueError("max must not be below the mean")
        return self

    def sigma(self) -> float:
        """Lognormal shape from mean and p95: ln(p95/mean) = 1.645 σ − σ²/2 (smaller root)."""
        if self.p95 is None or self.p95 <= self.mean:
            return 0.0
        r = math.log(self.p95 / self.mean)
        disc = Z95 * Z95 - 2 * r
        return Z95 - math.sqrt(disc) if disc > 0 else Z95  # beyond ≈3.9× the mean: the widest lognormal

    def quantile(self, z: float) -> float:
        """The length at `z` standard deviations of the underlying normal (3.09: p99.9)."""
        s = self.sigma()
        return self.mean if s == 0 else math.exp(math.log(self.mean) - s * s / 2 + z * s)

    def sample(self, rng: np.random.Generator, n: int, cap: int, stratified: bool = False) -> np.ndarray:
        """`n` lengths, independent draws; `stratified`: one from each of n equal-probability strata, in random
        order (Latin hypercube: the sample's share of long lengths is the distribution's, where independent draws
        of a heavy tail leave it to chance)."""
        s = self.sigma()
        if s == 0:
            x = np.full(n, self.mean)
        elif stratified:
            from scipy.special import ndtri

            u = (rng.permutation(n) + rng.uniform(size=n)) / max(n, 1)
            x = np.exp(math.log(self.mean) - s * s / 2 + s * ndtri(u))
        else:
            x = rng.lognormal(math.log(self.mean) - s * s / 2, s, n)
        top = min(cap, self.max) if self.max is not None else cap
        return np.clip(np.rint(x), 1, top).astype(np.int64)


class Workload(StrictModel):
    """How requests arrive, how long they are, and the SLOs (one pydantic model, every field documented)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    arrival: Literal["poisson", "constant"] = Field(default="poisson", description="inter-arrival process")
    rate_per_s: float | None = Field(default=None, ge=MIN_RATE_PER_S, le=1e6, description="requests per second")
    requests_per_day: float | None = Field(
        default=None, ge=MIN_REQUESTS_PER_DAY, le=1e10, description="shaped by `profile`"
    )
    profile: Name | list[float] = Field(default="flat", description="24-hour profile: a preset id or 24 weights")
    days_per_year: float | None = Field(default=None, ge=1, le=366, description="days a year with this day's "
                                        "load, the others idle (default: the profile's; 365 for 24 weights)")
    trace: NameOrPath | None = Field(default=None, description="CSV timestamp_s,input_tokens,output_tokens or JSONL")
    input_tokens: Lengths | Tokens = Field(default=1000, description="prompt tokens: fixed or {mean, p95}")
    output_tokens: Lengths | Tokens = Field(default=200, description="generated tokens: fixed or {mean, p95}")
    shared_prefix_share: float = Field(default=0.0, ge=0, lt=1, description="share of each prompt that is a "
                                       "common prefix (system prompt) served from the prefix cache")
    thinking_tokens: Lengths | Tokens | None = Field(default=None, description="tokens a reasoning model writes "
                                                  "before its answer (its thinking), on top of output_tokens: "
                                                  "fixed or {mean, p95}; needed to plan a model that thinks")
    thinking_off: bool = Field(default=False, strict=True, description="clients turn thinking off where the model "
                               "allows it (Qwen3: enable_thinking false); a model that always thinks still does")
    slo: Slo = Field(default_factory=Slo)

    @model_validator(mode="after")
    def _one_source(self) -> Workload:
        given = [x is not None for x in (self.rate_per_s, self.requests_per_day, self.trace)]
        if sum(given) > 1:
            raise ValueError("give one of rate_per_s, requests_per_day or trace")
        if isinstance(self.profile, list) and (len(self.profile) != 24 or min(self.profile) < 0
                                               or sum(self.profile) <= 0):
            raise ValueError("profile needs 24 non-negative weights, not all zero")
        if self.thinking_tokens is not None:  # what a model that thinks generates must be a length too
            generated(self.lengths("output"), self.lengths("thinking"))
        return self

    def lengths(self, which: str) -> Lengths:
        v = {"input": self.input_tokens, "output": self.output_tokens, "thinking": self.thinking_tokens}[which]
        if v is None:
            raise LlmplanError(f"the workload gives no {which}_tokens")
        return v if isinstance(v, Lengths) else Lengths(mean=float(v))


def thinks(m: Model, w: Workload) -> bool:
    """Whether `m` writes a reasoning trace before each answer under `w`."""
    return m.reasoning == "always" or (m.reasoning == "switchable" and not w.thinking_off)


ANSWER_START_KEYS = tuple(f"answer_start_p{p}_ms" for p in (50, 95, 99))


def samples_thinking(w: Workload, m: Model) -> bool:
    """Whether the requests `m` gets under `w` carry their thinking apart from the answer (:func:`generate`'s
    `thinks`): `m` thinks and the workload states how much, with lengths (a trace gives whole outputs)."""
    return thinks(m, w) and w.thinking_tokens is not None and not w.trace


def thinking_of(w: Workload, m: Model) -> Lengths | None:
    """The thinking `m` writes before each answer under `w` (None: it does not think, or the workload does not
    say how much, its output_tokens then taken as all it generates). An SLO on the answer start of a model that
    thinks, where the workload does not say how much, is an error."""
    if not thinks(m, w):
        return None
    if w.thinking_tokens is None:
        _unknown_thinking(w, m, "the workload states no thinking_tokens")
        return None
    return w.lengths("thinking")


def _unknown_thinking(w: Workload, m: Model, why: str) -> None:
    """`m` thinks and `w` does not give its thinking (`why`): an error where the SLO holds the answer start."""
    limited = [k for k in ANSWER_START_KEYS if getattr(w.slo, k) is not None]
    if limited:
        raise LlmplanError(f"{m.id} thinks before it answers ({m.reasoning}) and {why}: the SLO's {limited[0]} "
                           "(the start of the answer, after the thinking) cannot be judged; state "
                           "workload.thinking_tokens ({mean, p95}) with lengths, or hold the TTFT instead")


def stated_load(w: Workload, m: Model) -> tuple[Workload, str | None]:
    """For the commands that model one deployment under a workload (simulate, capacity, tco): the load `m`
    serves where the workload states its thinking (:func:`for_model`); else the workload as given, with a note
    when `m` thinks (its output_tokens are then taken as all it generates, the thinking included). An SLO on
    the answer start of a model that thinks needs the thinking of each request: an error where the workload
    does not give it (no thinking_tokens, or a trace)."""
    if thinks(m, w) and not samples_thinking(w, m):
        _unknown_thinking(w, m, "a trace gives each request's whole output, not its thinking" if w.trace else
                          "the workload states no thinking_tokens")
    if w.thinking_tokens is not None or w.thinking_off:
        return for_model(w, m), None
    if thinks(m, w):
        return w, (f"{m.id} thinks before it answers ({m.reasoning}): the workload's output_tokens are taken as "
                   "all it generates, its thinking included; state thinking_tokens (or thinking_off) in a workload "
                   "file to add it as the planner does")
    return w, None


def for_model(w: Workload, m: Model) -> Workload:
    """The load `m` serves: a model that thinks generates its thinking and then the answer, so its output is
    thinking_tokens + output_tokens (the sum's p95 from the two excesses over their means, as for independent
    lengths: mean_a + mean_b + √(Δa² + Δb²)). A model that thinks where the workload states no thinking_tokens
    is an error naming that fact."""
    if not thinks(m, w):
        return w
    if w.thinking_tokens is None:
        how = f", or set workload.thinking_off: true ({m.reasoning_off})" if m.reasoning == "switchable" else ""
        raise LlmplanError(f"{m.id} thinks before it answers ({m.reasoning}) and the workload states no "
                           f"thinking_tokens: its load is unknown; set workload.thinking_tokens ({{mean, p95}}){how}")
    try:
        both = generated(w.lengths("output"), w.lengths("thinking"))
    except ValueError as exc:
        raise LlmplanError(str(exc)) from None
    return w.model_copy(update={"output_tokens": both})


def generated(o: Lengths, t: Lengths) -> Lengths:
    """What a model that thinks generates: thinking `t` and then answer `o` (the sum's p95 from the two excesses
    over their means, as for independent lengths). A ValueError names the fields when the sum passes the
    longest length a workload may state."""
    mean = o.mean + t.mean
    excess = math.hypot((o.p95 or o.mean) - o.mean, (t.p95 or t.mean) - t.mean)
    top = mean + excess
    if top > MAX_TOKENS:
        raise ValueError(f"thinking_tokens + output_tokens come to {top:,.0f} tokens (mean {mean:,.0f}, and the p95s' "
                         f"excesses), more than the {MAX_TOKENS:,} a request may generate; lower either")
    return Lengths(mean=mean, p95=top if excess > 0 else None)


def preset(name: str, cat: Catalog, **overrides: Any) -> Workload:
    """A built-in workload (chat, rag, summarization, code-completion, agents)."""
    p = cat.workload_presets.get(name)
    if p.input_mean is None:
        raise LlmplanError(f"{p.id!r} is a 24-hour profile, not a workload; workloads: "
                           f"{', '.join(x.id for x in cat.workload_presets if x.input_mean)}")
    base: dict[str, Any] = dict(  # checked by Workload's validation
        input_tokens=Lengths(mean=p.input_mean, p95=p.input_p95, max=p.input_max),
        output_tokens=Lengths(mean=p.output_mean or 1, p95=p.output_p95, max=p.output_max),
        shared_prefix_share=p.shared_prefix_share,
        slo=p.slo or Slo(), profile=p.profile or "flat")
    base.update(overrides)
    return Workload(**base)


def days_per_year(w: Workload, cat: Catalog) -> float:
    """Days a year that carry `requests_per_day`: the workload's own figure, else its profile's (office hours:
    working days), else every day (a constant rate, or 24 weights given without days_per_year)."""
    if w.days_per_year is not None:
        return w.days_per_year
    if w.requests_per_day is not None and isinstance(w.profile, str):
        d = cat.workload_presets.get(w.profile).days_per_year
        if d is not None:
            return d
    return 365.0


def hourly_weights(profile: str | list[float], cat: Catalog) -> np.ndarray:
    if isinstance(profile, list):
        w = np.asarray(profile, dtype=float)
    else:
        p = cat.workload_presets.get(profile)
        if p.hourly_weights is None:
            raise LlmplanError(f"{p.id!r} is a workload, not a 24-hour profile")
        w = np.asarray(p.hourly_weights, dtype=float)
    return w / w.sum()


@dataclass(frozen=True)
class Requests:
    """Generated (or read) requests, sorted by arrival time."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray  # every token generated: the thinking, if any, and then the answer
    cached_tokens: np.ndarray  # prompt tokens served from the prefix cache
    # the first output tokens of each request that are its thinking (a model that thinks, its thinking sampled
    # apart from the answer: :func:`generate`'s `thinks`); None: the requests carry no thinking, the answer starts
    # with the first token
    thinking_tokens: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arrival_s)


def _arrivals(rng: np.random.Generator, kind: str, rate: float, n: int) -> np.ndarray:
    if kind == "constant":
        return np.arange(n) / rate
    return np.cumsum(rng.exponential(1 / rate, n))


def generate(w: Workload, cat: Catalog, *, seed: int = 0, num_requests: int | None = None,
             duration_s: float | None = None, hours: tuple[int, int] | None = None,
             max_context: int = 10_000_000, thinks: bool = False, stratified: bool = False) -> Requests:
    """Requests for a workload: `num_requests` or `duration_s` at a rate; with requests_per_day,
    the day (or the `hours` window [start, end)) under the 24-hour profile. `thinks`: the model thinks
    (:func:`samples_thinking`) and `w` is the workload as stated, its output_tokens the answer: each request
    writes a thinking of w.thinking_tokens and then an answer of w.output_tokens (sampled apart, after the
    prompts and answers, so that a seed gives the same prompts and answers either way), its output their sum
    and its thinking kept (:class:`Requests`). `stratified`: lengths one per equal-probability stratum
    (:meth:`Lengths.sample`), for a measurement that should not hang on how many of a heavy tail's rare long
    prompts a seed happens to draw."""
    rng = np.random.default_rng(seed)
    if w.trace:
        if thinks:  # a trace's outputs are whole: it does not say how much of each is thinking
            raise LlmplanError("a trace gives each request's whole output, not its thinking")
        return read_trace(Path(w.trace), w.shared_prefix_share)
    if w.requests_per_day is not None:
        weights = hourly_weights(w.profile, cat)
        h0, h1 = hours or (0, 24)
        _check_count(w.requests_per_day * float(np.sum(weights[h0:h1])) / float(np.sum(weights)))
        arr = []
        for h in range(h0, h1):
            lam = w.requests_per_day * weights[h] / 3600
            if lam <= 0:
                continue
            k = rng.poisson(lam * 3600) if w.arrival == "poisson" else int(round(lam * 3600))
            t = np.sort(rng.uniform(0, 3600, k)) if w.arrival == "poisson" else np.arange(k) / lam
            arr.append(h * 3600 + t)
        arrival = np.concatenate(arr) if arr else np.zeros(0)
        arrival = arrival - h0 * 3600
    else:
        rate = w.rate_per_s
        if rate is None:
            raise LlmplanError("the workload needs rate_per_s, requests_per_day or a trace")
        if num_requests is None:
            if duration_s is None:
                raise LlmplanError("give a number of requests or a duration")
            num_requests = int(math.ceil(rate * duration_s))
        _check_count(num_requests)
        arrival = _arrivals(rng, w.arrival, rate, num_requests)
    n = len(arrival)
    _check_count(n)
    inp = w.lengths("input").sample(rng, n, max_context, stratified)
    out = w.lengths("output").sample(rng, n, max_context, stratified)
    thinking = w.lengths("thinking").sample(rng, n, max_context, stratified) if thinks else None
    if thinking is not None:
        out = out + thinking
    out = np.minimum(out, np.maximum(max_context - inp, 1))
    cached = np.floor(inp * w.shared_prefix_share).astype(np.int64)
    if n:
        cached[0] = 0  # the first request fills the cache
    # an output cut at the context keeps at most that much thinking (its answer then starts no earlier than its end)
    return Requests(arrival, inp, out, cached, None if thinking is None else np.minimum(thinking, out))


def _check_count(n: float) -> None:
    """Refuse before allocating: a day at 1e10 requests or a month at 1e6/s would need terabytes."""
    if n > MAX_REQUESTS:
        raise LlmplanError(f"{n:,.0f} requests is over the limit of {MAX_REQUESTS:,} for one simulation; "
                           "shorten the duration or lower the rate")


def read_trace(path: Path, prefix_share: float = 0.0) -> Requests:
    try:
        size = path.stat().st_size
    except OSError:
        raise LlmplanError(f"{path}: no such trace file") from None
    if size > MAX_TRACE_BYTES:
        raise LlmplanError(f"{path}: {size:,} bytes is over the {MAX_TRACE_BYTES:,}-byte trace limit")
    rows: list[tuple[float, int, int]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LlmplanError(f"{path}: not a UTF-8 text file") from None
    if path.suffix.lower() in (".jsonl", ".json"):
        for k, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                rows.append((float(d["timestamp_s"]), int(d["input_tokens"]), int(d["output_tokens"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise LlmplanError(f"{path}:{k}: expected a JSON object with timestamp_s, input_tokens, "
                                   "output_tokens") from None
    else:
        reader = csv.DictReader(text.splitlines())
        need = {"timestamp_s", "input_tokens", "output_tokens"}
        if not need <= set(reader.fieldnames or []):
            raise LlmplanError(f"{path}: a trace CSV needs the columns timestamp_s,input_tokens,output_tokens")
        for k, r in enumerate(reader, 2):
            try:
                rows.append((float(r["timestamp_s"]), int(r["input_tokens"]), int(r["output_tokens"])))
            except (TypeError, ValueError):
                raise LlmplanError(f"{path}:{k}: timestamp_s must be a number and the lengths integers") from None
    if not rows:
        raise LlmplanError(f"{path}: the trace has no requests")
    a = np.array(rows, dtype=float)
    if (a[:, 1] < 1).any() or (a[:, 2] < 1).any() or not np.isfinite(a).all() or (a[:, 0] < 0).any():
        raise LlmplanError(f"{path}: lengths must be ≥ 1 and timestamps finite and ≥ 0")
    a = a[np.argsort(a[:, 0], kind="stable")]
    inp = a[:, 1].astype(np.int64)
    cached = np.floor(inp * prefix_share).astype(np.int64)
    cached[0] = 0
    return Requests(a[:, 0] - a[0, 0], inp, a[:, 2].astype(np.int64), cached)


def peak_rate(w: Workload, cat: Catalog) -> float:
    """Requests per second in the busiest hour (or the constant rate)."""
    if w.requests_per_day is not None:
        return float(w.requests_per_day * hourly_weights(w.profile, cat).max() / 3600)
    if w.rate_per_s is not None:
        return w.rate_per_s
    if w.trace:
        r = read_trace(Path(w.trace))
        span = max(float(r.arrival_s[-1]), 1.0)
        return len(r) / span
    raise LlmplanError("the workload needs rate_per_s, requests_per_day or a trace")
