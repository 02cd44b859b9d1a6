"""Finite benchmark runs in closed form: N prompts sent at once, or at most C in flight.

A steady-state formula (:mod:`.scenarios`) describes an engine that has been busy forever.
A benchmark run of N prompts is not that: it starts empty, fills up in a start-up wave,
may drain a queue, and ends with a tail in which fewer and fewer sequences run. This module
predicts such a run from the same step-time physics, vectorised over many runs at once.

The burst (K requests admitted together, K at most the engine's limit). Chunked prefill
takes ``n_p = K Ī / B_eff`` steps of ``B_eff`` prompt tokens (the step budget less the
decoding sequences); request j's prefill ends at step ``s_j``, spread evenly over the wave,
and it then decodes ``o_j − 1`` more tokens, one per step. The sequences running at step k
are therefore::

    d(k) = K / n_p × Σ_b w_b × |[0, n_p] ∩ [k − o_b + 1, k]|

for output-length blocks b (weights w_b, lengths o_b: one block for fixed lengths; for a
dataset, quantile blocks whose top block is the single longest of the K requests). Their
contexts sum to ``d(k) Ī + ages``. Each step's time is the physics' step time at that state;
the run's clock ``T(k) = ∫ τ(d(k)) dk`` is integrated with Simpson's rule between the
profile's kinks. From it: makespan ``T(S)``, each request's first token ``T(s_j)`` (the
wave's TTFT is the queue of the prefills before it), its TPOT ``(T(s_j + o_j − 1) −
T(s_j)) / (o_j − 1)``, and the token-weighted inter-token latency.

Beyond the burst. Requests that find the engine full (W > K sent at once) are admitted as
the burst's requests complete (``c_j``: the burst's completion times, then one engine cycle
``K / μ`` later for each further round, μ the steady-state request rate); a client that
keeps C in flight sends the rest as earlier ones finish, each then seeing the steady state.
The makespan is ``T_burst(K) + (N − K) / μ``: a burst's ramp-up and tail, with the steady
state in between. Checked against the discrete-event simulator on a grid of cases in
tests/test_finite.py (agreement stated in docs/accuracy.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .physics import Efficiency, Machine, StageShape, step_time

# survival edges of the output-length blocks above the single longest request: a coarse bulk
# and a log-spaced tail (the longest requests make the tail of an all-at-once run)
BULK_SURVIVAL = (1.0, 0.8, 0.6, 0.4)
TAIL_BLOCKS = 12


def _phi(x):
    from scipy.special import ndtr  # imported here: estimating never needs scipy

    return ndtr(x)


def _phi_inv(p):
    from scipy.special import ndtri

    return ndtri(p)


def length_blocks(mean, sigma, cap, count):
    """Blocks of the lengths of `count` requests drawn from a lognormal with this mean and
    shape σ (0: every length equals the mean), clipped at `cap`: (lengths, weights), each
    (rows, blocks). Block b covers a range of quantiles; its length is the conditional mean
    there, its weight the share of requests. The top block is the longest single request
    (share 1/count), so its length is the expected maximum of the run."""
    mean, sigma, cap, count = np.broadcast_arrays(*(np.asarray(x, dtype=float).reshape(-1, 1)
                                                    for x in (mean, sigma, cap, count)))
    top = 1.0 / np.maximum(count, 1.0)
    bulk = np.array(BULK_SURVIVAL)[None, :] + 0 * mean
    steps = np.arange(1, TAIL_BLOCKS)[None, :] / (TAIL_BLOCKS - 1)
    tail = BULK_SURVIVAL[-1] * (top / BULK_SURVIVAL[-1]) ** steps  # log-spaced down to one request
    surv = np.maximum(np.concatenate([bulk, tail], axis=1), top)  # nothing finer than one request
    q = 1.0 - np.concatenate([surv, np.zeros_like(mean)], axis=1)
    weights = np.diff(q, axis=1)
    wide = sigma > 0
    s = np.where(wide, sigma, 1.0)
    mu = np.log(mean) - s * s / 2
    for _ in range(3):  # clipping at the cap lowers the mean: shift the distribution until it matches
        part = _clipped_partial_mean(mu, s, cap, q)
        mu = mu + np.log(mean / np.maximum(part.sum(axis=1, keepdims=True), 1e-30))
    part = _clipped_partial_mean(mu, s, cap, q)
    lengths = np.where(wide & (weights > 0), part / np.maximum(weights, 1e-300), mean)
    return np.maximum(lengths, 1.0), weights


def _clipped_partial_mean(mu, sigma, cap, q):
    """∫ min(X, cap) over each quantile interval [q_i, q_i+1] of X = exp(mu + sigma Z)."""
    with np.errstate(divide="ignore"):
        z = _phi_inv(np.clip(q, 0.0, 1.0))
    zc = (np.log(cap) - mu) / sigma
    lo, hi = z[:, :-1], z[:, 1:]
    below = np.exp(mu + sigma * sigma / 2) * (_phi(np.minimum(hi, zc) - sigma) - _phi(np.minimum(lo, zc) - sigma))
    finite_cap = np.where(np.isfinite(cap), cap, 0.0)
    return below + finite_cap * (_phi(np.maximum(hi, zc)) - _phi(np.maximum(lo, zc)))


@dataclass(frozen=True)
class Burst:
    makespan_s: object
    ttft_s: object  # mean over the burst's requests, from the burst's start
    tpot_s: object  # mean over requests of (E2E − TTFT) / (o − 1)
    itl_s: object  # mean over all inter-token gaps (token-weighted)
    e2e_s: object
    done_first_s: object  # mean time of the burst's first `first` completions
    done_all_s: object  # mean time of all its completions


def columns(obj, idx=None):
    """A physics dataclass with every array field as a column (rows, 1) (rows `idx` only, when
    given), to broadcast over a run's points."""
    def col(x):
        a = np.asarray(x, dtype=float)
        if a.ndim == 0:
            return x
        return (a if idx is None else a[idx])[:, None]

    return dataclasses.replace(obj, **{f.name: col(getattr(obj, f.name)) for f in dataclasses.fields(obj)})


def _profile(k, n_p, count, lengths, weights, input_mean):
    """Running sequences d(k), the sum of their contexts, and the requests completed by step k
    (k: rows × points)."""
    kk = k[:, :, None]
    lo = np.maximum(0.0, kk - lengths[:, None, :] + 1.0)
    hi = np.minimum(kk, n_p[:, :, None])
    span = np.maximum(hi - lo, 0.0)
    dens = (count / n_p)[:, :, None] * weights[:, None, :]
    d = (dens * span).sum(axis=2)
    age = (dens * span * (kk - (lo + hi) / 2)).sum(axis=2)
    started = count * np.minimum(k / n_p, 1.0)
    return d, d * input_mean + np.maximum(age, 0.0), started - d


def _kinks(n_p, lengths):
    """Where the running-count profile bends: 0, n_p, o_b − 1 and o_b − 1 + n_p (sorted)."""
    kinks = np.concatenate([np.zeros_like(n_p), n_p, lengths - 1.0, lengths - 1.0 + n_p], axis=1)
    return np.sort(np.maximum(kinks, 0.0), axis=1)


def _wave_steps(count, input_mean, lengths, weights, chunk):
    """Prefill steps of the start-up wave: the prompts over the step budget left by the decoders
    already running (their mean over the wave; one fixed-point pass)."""
    n0 = np.maximum(count * input_mean / chunk, 1.0)
    a = np.maximum(lengths - 1.0, 0.0)
    mean_min = np.where(a < n0, a - a * a / (2 * n0), n0 / 2)  # mean over k in [0, n0] of min(k, o − 1)
    decoding = (count / n0) * (weights * mean_min).sum(axis=1, keepdims=True)
    budget = np.maximum(chunk - decoding, chunk / 8)
    return np.maximum(count * input_mean / budget, 1.0)


def burst(s: StageShape, m: Machine, e: Efficiency, count, input_mean, prefill_context, lengths, weights, chunk,
          first=0.0) -> Burst:
    """`count` requests admitted together (rows); output lengths as blocks (rows, blocks).
    `first`: how many of its completions to average in `done_first_s`.
    `s`, `m`, `e` hold one row per run as columns (rows, 1) or scalars."""
    def col(x):
        return np.asarray(x, dtype=float).reshape(-1, 1) + np.zeros((len(lengths), 1))

    count, input_mean, chunk, first = col(count), col(input_mean), col(chunk), col(first)
    n_p = _wave_steps(count, input_mean, lengths, weights, chunk)
    kinks = _kinks(n_p, lengths)
    a, b = kinks[:, :-1], kinks[:, 1:]
    h = b - a
    pts = np.concatenate([a, (a + b) / 2, b], axis=1)  # each interval's ends and middle
    wave = np.tile((a + b) / 2 < n_p, 3)  # an interval lies wholly in the wave or after it
    d, ctx, done = _profile(pts, n_p, count, lengths, weights, input_mean)
    tau = step_time(s, m, e, decode_tokens=d, decode_context=ctx / np.maximum(d, 1e-9),
                    prefill_tokens=np.where(wave, count * input_mean / n_p, 0.0), prefill_context=col(prefill_context)
                    ).total
    ta, tm, tb = np.split(tau, 3, axis=1)
    da, dm, db = np.split(d, 3, axis=1)
    span = h / 6 * (ta + 4 * tm + tb)  # Simpson on each interval
    ends = np.concatenate([np.zeros((len(h), 1)), np.cumsum(span, axis=1)], axis=1)
    trap = h / 4 * (ta + 2 * tm + tb)
    half = ends[:, :-1] + h / 4 * (ta + tm) * np.where(trap > 0, span / np.where(trap > 0, trap, 1.0), 1.0)
    x = np.empty((len(h), 2 * h.shape[1] + 1))
    x[:, 0::2], x[:, 1::2] = kinks, (a + b) / 2
    clock = np.empty_like(x)
    clock[:, 0::2], clock[:, 1::2] = ends, half
    at = _Interp(x, clock)
    wave_step = at(n_p) / n_p  # a first token comes at the end of its step: half a step after the fluid mean
    ttft = at.integral(n_p) / n_p + wave_step / 2
    dec = lengths - 1.0
    window = (at.integral(n_p + dec) - at.integral(dec) - at.integral(n_p)) / n_p  # mean over s of T(s+o−1) − T(s)
    w_dec = weights * (dec > 0)
    tpot = (w_dec * window / np.maximum(dec, 1.0)).sum(axis=1) / np.maximum(w_dec.sum(axis=1), 1e-300)
    e2e = (weights * (at.integral(n_p + dec) - at.integral(dec)) / n_p).sum(axis=1) + wave_step[:, 0] / 2
    gaps = (h / 6 * (ta * da + 4 * tm * dm + tb * db)).sum(axis=1)
    tokens = (h / 6 * (da + 4 * dm + db)).sum(axis=1)
    done_x = np.concatenate([done[:, :1], np.split(done, 3, axis=1)[2]], axis=1)
    return Burst(makespan_s=ends[:, -1], ttft_s=ttft[:, 0],
                 tpot_s=np.where(w_dec.sum(axis=1) > 0, tpot, np.nan), itl_s=gaps / np.maximum(tokens, 1e-300),
                 e2e_s=e2e, done_first_s=_mean_completion(ends, done_x, np.minimum(first, count))[:, 0],
                 done_all_s=_mean_completion(ends, done_x, count)[:, 0])


def _mean_completion(clock, done, first):
    """Mean time of the first `first` completions of the burst (`done`: completions by each kink)."""
    dc = np.maximum(np.diff(done, axis=1), 0.0)
    tmid = (clock[:, 1:] + clock[:, :-1]) / 2
    zero = np.zeros((len(clock), 1))
    cum_n = np.concatenate([zero, np.cumsum(dc, axis=1)], axis=1)
    cum_t = np.concatenate([zero, np.cumsum(dc * tmid, axis=1)], axis=1)
    return _Interp(cum_n, cum_t)(first) / np.maximum(first, 1e-300)


class _Interp:
    """Linear interpolation of y(x) per row (x non-decreasing along each row), vectorised over rows by
    offsetting each row onto its own stretch of one axis; `integral(x)` is ∫_0^x y."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.span = float(np.nanmax(x)) + 1.0 if x.size else 1.0
        self.off = np.arange(len(x))[:, None] * self.span * 2
        inc = (y[:, 1:] + y[:, :-1]) / 2 * np.diff(x, axis=1)
        self.cum = np.concatenate([np.zeros((len(x), 1)), np.cumsum(inc, axis=1)], axis=1)

    def _at(self, values, q):
        q = np.minimum(np.maximum(q, self.x[:, :1]), self.x[:, -1:])
        return np.interp((q + self.off).ravel(), (self.x + self.off).ravel(), values.ravel()).reshape(q.shape)

    def __call__(self, q):
        return self._at(self.y, np.asarray(q, dtype=float) + np.zeros((len(self.x), 1)))

    def integral(self, q):
        q = np.asarray(q, dtype=float) + np.zeros((len(self.x), 1))
        base = self._at(self.cum, q)
        beyond = np.maximum(q - self.x[:, -1:], 0.0) * self.y[:, -1:]  # past the end the clock keeps its last value
        return base + beyond


@dataclass(frozen=True)
class RunResult:
    makespan_s: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    itl_s: np.ndarray
    e2e_s: np.ndarray
    requests_s: np.ndarray
    output_tok_s: np.ndarray
    total_tok_s: np.ndarray


def run(b: Burst, *, prompts, wave, admitted, input_mean, output_mean, steady, loaded, overhead_s) -> RunResult:
    """A finite run of `prompts` requests of which `wave` are sent at once, `admitted` (the
    burst `b`) run at once and the rest of the wave waits for their completions; the other
    `prompts − wave` are sent by a closed-loop client as earlier ones finish. `steady` is the
    steady state (LoadResult) the run settles into, `loaded` the state a request admitted
    into a full engine sees (its TTFT and E2E from admission). Means over all requests."""
    n, w, k = prompts, wave, admitted
    mu = np.asarray(steady.requests_s, dtype=float)
    queued = w - k
    rounds = np.floor(queued / k)
    rest = queued - rounds * k
    cycle = k / mu
    waited = (rounds * k * b.done_all_s + cycle * k * rounds * (rounds - 1) / 2 + rest * b.done_first_s
              + rest * rounds * cycle) / np.maximum(queued, 1e-300)  # mean admission time of the wave's queue
    later = n - w
    ttft = (k * (b.ttft_s + overhead_s) + queued * (waited + loaded.ttft_s) + later * steady.ttft_s) / n
    e2e = (k * (b.e2e_s + overhead_s) + queued * (waited + loaded.e2e_s) + later * steady.e2e_s) / n
    tpot = (k * b.tpot_s + (n - k) * steady.tpot_s) / n
    itl = (k * b.itl_s + (n - k) * steady.tpot_s) / n
    span = b.makespan_s + (n - k) / mu + overhead_s
    return RunResult(
        span, ttft, tpot, itl, e2e, n / span, n * output_mean / span, n * (input_mean + output_mean) / span
    )


POISSON_STEPS = 48


def poisson_run(s: StageShape, m: Machine, e: Efficiency, rate, prompts, input_mean, output_mean, limit,
                chunk, output_sigma=0.0, output_cap=np.inf) -> RunResult:
    """N requests arriving at `rate` (Poisson), from an idle engine: a fluid model of its load.
    The requests in the engine, c, relax towards ``λ × E2E(c)`` (Little's law at the steady state
    of that load) with time constant E2E(c); beyond the engine's limit a queue builds at
    ``λ − μ`` and drains after the last arrival. Each arrival sees the TTFT of the load then (plus
    the queue's wait); ITL is time-weighted by the sequences decoding; the run ends when the last
    arrival is done — with a dataset's lengths, when the longest of the requests then in flight is.
    A run much longer than E2E is the steady state of :func:`.scenarios.open_loop`;
    a short one never leaves its ramp-up (what a 500-request run near saturation measures). An
    arrival also waits for the step in progress: the mean residual ``E[τ²] / 2 E[τ]`` of the mix
    of decode steps and steps carrying a prompt (:func:`.scenarios.lumpy_steps`)."""
    from .scenarios import _at, lumpy_steps

    def col(x):
        return np.asarray(x, dtype=float).reshape(-1, 1)

    lam, n, i, o, lim, chunk = (col(x) for x in (rate, prompts, input_mean, output_mean, limit, chunk))
    span = (n - 1) / lam
    dt = span / POISSON_STEPS
    def at(c):
        return _at(s, m, e, c, i, o, chunk, lumps=True)

    _, _, e2e_full = at(lim)
    mu = lim / np.maximum(e2e_full - e.request_overhead_s, 1e-12)
    c, q = np.zeros_like(lam), np.zeros_like(lam)
    sums = {k: np.zeros_like(lam) for k in ("ttft", "e2e", "tpot", "busy", "tokens")}
    for _ in range(POISSON_STEPS):
        ttft, tpot, e2e = at(np.maximum(c, 1.0))
        share, heavy, light = lumpy_steps(s, m, e, np.maximum(c, 1.0), i, o, chunk)
        residual = (share * heavy ** 2 + (1 - share) * light ** 2) / (2 * (share * heavy + (1 - share) * light))
        wait = q / mu + np.minimum(c, 1.0) * residual
        sums["ttft"] += ttft + wait
        sums["e2e"] += e2e + wait
        sums["tpot"] += tpot
        sums["busy"] += c * dt
        sums["tokens"] += c / tpot * dt
        target = np.minimum(lam * e2e, lim)
        c = target + (c - target) * np.exp(-dt / e2e)
        q = np.maximum(q + np.where(lam * e2e > lim, lam - mu, -mu) * dt, 0.0)
    ttft_end, tpot_end, tail = at(np.maximum(c / 2, 1.0))
    longest, _ = length_blocks(o, output_sigma, output_cap, np.maximum(c, 1.0))
    tail = np.maximum(tail, ttft_end + (longest[:, -1:] - 1) * tpot_end)
    end = span + q / mu + tail
    first = at(np.ones_like(lam))
    steps = POISSON_STEPS
    one = n <= 1  # a single request: nothing else in the engine
    def pick(many, alone):
        return np.where(one, alone, many)[:, 0]

    itl = sums["busy"] / np.maximum(sums["tokens"], 1e-300)
    return RunResult(makespan_s=pick(end, first[2]), ttft_s=pick(sums["ttft"] / steps, first[0]),
                     tpot_s=pick(sums["tpot"] / steps, first[1]), itl_s=pick(itl, first[1]),
                     e2e_s=pick(sums["e2e"] / steps, first[2]), requests_s=pick(n / end, n / first[2]),
                     output_tok_s=pick(n * o / end, n * o / first[2]),
                     total_tok_s=pick(n * (i + o) / end, n * (i + o) / first[2]))
