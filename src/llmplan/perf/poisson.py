"""Poisson arrivals on one replica in closed form: the TTFT, TPOT and end-to-end percentiles over
requests whose prompt and answer lengths follow the workload's distributions, the share of requests
that meet per-request limits (goodput), and the highest rate that meets an SLO. The planner sizes
replicas with it, so that its figures are the ones the simulator then measures.

The engine (as the simulator runs it) admits prompts first come, first served, and fills each step
with up to `chunk` prompt tokens alongside every decoding sequence (chunked prefill):

* prefill is an M/G/1 queue: Poisson arrivals at λ, service S(x) = the prefill of a prompt of x tokens
  with C sequences decoding in the same steps, x from the prompt distribution (a heavy tail makes E[S²]
  and the wait large). Wait: Pollaczek–Khinchine mean ``W = λ E[S²] / (2 (1 − ρ))``, ``ρ = λ E[S]``,
  and a tail that goes from the residual of the prompt being prefilled (light traffic: a heavy prompt
  tail gives the wait a heavy tail) to an exponential (heavy traffic);
* a prompt's first token comes at the end of the step that holds its last chunk, and that step also
  carries the prompts that arrived meanwhile (up to the chunk budget): TTFT(x) = wait + S(x) + that
  co-batched work + the request overhead;
* decode: a step of C sequences takes τ(C); the time prefill adds to decode steps is a share
  ``ρ_a = λ E[ΔS]`` of the engine's time, so the mean TPOT is ``τ(C) / (1 − ρ_a)``, and C solves
  Little's law ``C = λ (E[o] − 1) TPOT`` (a fixed point); a request with an answer of o tokens sees the
  prefill work that arrives during its own decode, which stretches it (a busy period: its variance grows
  as (1 − ρ_a)⁻³), so short answers spread the widest; and the number of sequences decoding beside it
  varies (M/G/∞) around C;
* admission: a request holds a sequence slot (max_num_seqs) and its KV blocks from admission to its last
  token, and waits when no slot is free (M/G/c in the Allen–Cunneen approximation, the slots sharing one
  engine: a birth-death chain whose residences grow with the slots busy, Erlang C where the step does not
  grow with the batch; the requests bunched behind long prompts' prefill, in Hayward's approximation) or
  when the tokens in flight (a compound Poisson sum: a few long prompts fill the cache) leave no room for
  its prompt; that wait adds to the prompt queue's;
* the answer of a model that thinks starts after its thinking, T tokens after the first: answer start =
  TTFT + T × the mean TPOT, its tail a mixture over the thinking lengths of the TTFT's tail shifted by each
  (``P(answer start > t) = Σⱼ wⱼ P(TTFT > t − Tⱼ TPOT)``); without thinking it is the TTFT;
* goodput: P(TTFT and answer start within their limits) × P(TPOT within its limit) × P(end-to-end within its
  limit) (the first two move together: one term, :func:`_shares_above`).

Lengths enter as QUAD points of each (lognormal) distribution, one per probability bin, finer in the
tail (WEIGHTS).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from .limits import GROWING_ANSWER_SHARE
from .physics import Efficiency, Machine, StageShape
from .scenarios import decode_step, prefill_time

# probability bins of each length distribution, finer in the tail (the longest prompts make the queue)
# (narrow around the 95th and 99th percentiles, where SLOs sit: a percentile of a mixture of point masses
# lands on the next point, so a wide bin there would move it)
P_EDGES = np.array([0, .125, .25, .375, .45, .5, .55, .625, .75, .875, .9, .925, .94, .95, .96, .975, .985, .99, .995,
                    .999, .9999, 1])
WEIGHTS = np.diff(P_EDGES)
QUAD = len(WEIGHTS)
_Z = np.array([NormalDist().inv_cdf(float(p)) for p in (P_EDGES[:-1] + P_EDGES[1:]) / 2])
# the bins' edges as normal scores (the outer ones held just inside ±8: nothing lies beyond), and where each
# inner edge sits between the points on either side (a fraction of the way from one to the next)
_ZE = np.array([NormalDist().inv_cdf(float(min(max(p, 1e-15), 1 - 1e-15))) for p in P_EDGES])
_EDGE_FRAC = (_ZE[1:-1] - _Z[:-1]) / (_Z[1:] - _Z[:-1])


def _half_density(za: np.ndarray, zb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A half bin from normal score za to zb, the normal density φ taken as linear across it: the share of its
    probability below the fraction f of the way is f (a + b f), a = 2 φ(za) / (φ(za) + φ(zb)), b = 1 − a (so that
    f = 1 gives all of it)."""
    pa, pb = np.exp(-za ** 2 / 2), np.exp(-zb ** 2 / 2)
    tot = pa + pb
    ok = tot > 1e-30
    a = np.where(ok, 2 * pa / np.where(ok, tot, 1.0), 1.0)
    return a, 1.0 - a


_HALF_DENSITY = (_half_density(_ZE[:-1], _Z), _half_density(_Z, _ZE[1:]))
T_STEPS = 24  # bisection steps of a percentile (to 2^-24 of its bracket)
GRID_POINTS, GRID_ROUNDS = 64, 3  # one rate: a percentile to 63^-3 of its bracket
C_POINTS = 24  # decoding concurrencies the step times are evaluated at (1 … the engine's limit)
C_LOW = (0.03, 0.15, 0.5)  # and below one sequence on average (a small replica at a few requests a minute)
RATE_POINTS = 40  # rates tried between 1/512 of the saturation rate and it (17 % apart)
_RATE_GRID = np.geomspace(1 / 512, 1.0, RATE_POINTS)
FINE_RATE_POINTS = 7  # rates tried between the last grid rate that holds and the next (2.0 % apart)
SATURATION_MARGIN = 0.9  # the capacity stays this share of the highest rate at which the queue holds
_RATE_GRID.flags.writeable = False


def length_points(lengths, cap: float = np.inf) -> np.ndarray:
    """QUAD lengths, one per probability bin (WEIGHTS) of the workload's (lognormal) distribution, capped
    at the longest the engine serves."""
    s = lengths.sigma()
    if s == 0:
        x = np.full(QUAD, float(lengths.mean))
    else:
        x = np.exp(np.log(lengths.mean) - s * s / 2 + _Z * s)
    top = min(cap, lengths.max) if lengths.max is not None else cap
    return np.minimum(x, top)


# The prompt queue's moments (E[S²] of the prefill times, the residual tail, E[ΔS²], E[ΔS³]) are dominated by
# the longest prompts, whose time grows faster than their length: one point per bin understates them (E[S²] by
# ~10 % for lognormal prompts of σ = 1 and a prefill growing as length^1.3, uncapped). They are integrated over SUB
# points per bin instead, each bin's times interpolated log-log in the length between the points the physics is
# evaluated at (`_fine`). SUB = 4 leaves E[S²] 3 % short of 64 points there (8: 1.4 %, for 6 % more planning CPU);
# with the context cap every plan has, the share of requests over a limit moves by under 1e-6 from 4 to 8.
SUB = 4
_P_SUB = (P_EDGES[:-1, None] + (np.arange(SUB) + 0.5) / SUB * WEIGHTS[:, None]).ravel()
_Z_SUB = np.array([NormalDist().inv_cdf(float(p)) for p in _P_SUB])
W_SUB = np.repeat(WEIGHTS / SUB, SUB)
W_SUB.flags.writeable = False


def fine_spec(lengths, x: np.ndarray, cap: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_fine_spec` of the lengths' mean, spread and cap (memoised: the planner asks for the same few)."""
    top = min(cap, lengths.max) if lengths.max is not None else cap
    return _fine_spec(float(lengths.mean), float(lengths.sigma()), float(top), tuple(np.asarray(x, dtype=float)))


@functools.lru_cache(maxsize=256)
def _fine_spec(mean: float, s: float, top: float,
               x_points: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the SUB points of each bin of lognormal lengths (`mean`, σ `s`, capped at `top` as
    :func:`length_points` caps them) fall between the bins' points `x_points` (Q,), for :func:`_fine`: a
    (Q, Q × SUB) matrix of log-interpolation weights (each sub-point's log length between the two points around
    it) and those two points' indices (beyond the outer points the last segment's slope carries on, up to the
    cap)."""
    x = np.array(x_points)
    xs = np.full(len(_Z_SUB), mean) if s == 0 else np.exp(np.log(mean) - s * s / 2 + _Z_SUB * s)
    lx, lxs = np.log(np.maximum(x, 1.0)), np.log(np.maximum(np.minimum(xs, top), 1.0))
    i0 = np.clip(np.searchsorted(lx, lxs, side="right") - 1, 0, max(len(lx) - 2, 0))
    i1 = np.minimum(i0 + 1, len(lx) - 1)
    span = lx[i1] - lx[i0]
    frac = np.where(span > 0, (lxs - lx[i0]) / np.where(span > 0, span, 1.0), 0.0)
    mix = np.zeros((len(lx), len(lxs)))
    cols = np.arange(len(lxs))
    np.add.at(mix, (i0, cols), 1 - frac)
    np.add.at(mix, (i1, cols), frac)
    for a in (mix, i0, i1):
        a.flags.writeable = False
    return mix, i0, i1


def _fine(v: np.ndarray, spec) -> np.ndarray:
    """Values (R, Q) at the bins' points, at the SUB points of each bin (R, Q × SUB): log-log interpolation
    (a time growing as a power of the length is exact; `spec` from :func:`fine_spec`), weights W_SUB; linear
    where a point around the sub-point is 0 (the log would take the whole segment to 0)."""
    mix, i0, i1 = spec
    out = np.exp(np.log(np.maximum(v, 1e-300)) @ mix)
    if not (v <= 0).any():
        return out
    zero = (v[..., i0] <= 0) | (v[..., i1] <= 0)
    return np.where(zero, v @ mix, out)


def decoding_context(x_mean: float, o: np.ndarray) -> float:
    """The context (tokens) a decoding sequence holds, averaged over decoding time: its prompt plus what it has
    generated. An answer of o tokens decodes for o steps, so long answers weigh more: the time average of the
    generated part is E[o²] / (2 E[o]), i.e. E[o] / 2 × (1 + cv²), not E[o] / 2 (prompt and answer lengths
    independent). `o`: the answer lengths, one per probability bin (WEIGHTS)."""
    o_mean = float(o @ WEIGHTS)
    return x_mean + float((o * o) @ WEIGHTS) / (2 * o_mean) if o_mean > 0 else x_mean


@functools.lru_cache(maxsize=256)
def _concurrency_grid(limit: float) -> np.ndarray:
    """Decoding concurrencies (time averages) C_LOW and 1 … `limit` on a geometric grid, `limit` itself included
    (a column)."""
    g = np.unique(np.concatenate([C_LOW, np.geomspace(1.0, limit, C_POINTS), [limit]]))[:, None]
    g.flags.writeable = False
    return g


def _poisson_at_least(k: int, c: np.ndarray) -> np.ndarray:
    """P(N ≥ k) for N Poisson with mean `c` (k ≥ 1): one minus the probabilities of 0 … k − 1, summed in log space
    (numpy alone: importing scipy.special for its incomplete gamma cost the planner 0.15 s)."""
    j = np.arange(k)
    log_pmf = np.log(np.maximum(c, 1e-300))[..., None] * j - c[..., None] - _log_factorials(k - 1)
    return np.maximum(1.0 - np.exp(log_pmf).sum(-1), 0.0)


@functools.lru_cache(maxsize=64)
def _seen_grid(limit: float) -> np.ndarray:
    """:func:`_seen_count` on the concurrency grid of `limit` (memoised: one grid per engine limit)."""
    g = _seen_count(_concurrency_grid(max(limit, 1.0)), limit)
    g.flags.writeable = False
    return g


def _seen_count(c: np.ndarray, limit: float) -> np.ndarray:
    """The decoding sequences a decoding request's steps carry on average: itself and the others, which are
    Poisson with the time-average mean `c` (an M/G/∞ population as one of its members sees it), so 1 + c rather
    than c (a replica averaging 1 decoding sequence serves each request in steps of 2 on average, and one averaging
    0.3 in steps of 1.3), at most `limit`: 1 + E[min(N, m)], m = limit − 1, E[(N − m)⁺] = c P(N ≥ m) − m P(N ≥ m + 1).
    What a step costs per sequence matters most here for a mixture of experts, whose second sequence reads
    experts the first did not."""
    m = max(limit - 1.0, 0.0)
    if m <= 0:
        return np.ones_like(c)
    lo = math.floor(m)  # a fractional limit: between the integers around it
    frac = m - lo
    over = np.zeros_like(c)
    near = c > m - 12 * math.sqrt(m) - 12  # else P(N ≥ m) < 10⁻²⁰ (the Poisson tail): nothing over the limit
    if near.any():
        cn = c[near]
        excess = [cn * _poisson_at_least(k, cn) - k * _poisson_at_least(k + 1, cn) if k > 0 else cn
                  for k in (lo, lo + 1)]
        over[near] = (1 - frac) * excess[0] + frac * excess[1]
    # near the limit the clipped Poisson's mean falls under C itself, while a member of a population averaging C
    # sees at least C (E[K²] / E[K] ≥ E[K]): not below C (an M/M/c's in-service view is ~0.1–0.3 above that there)
    return np.maximum(1 + c - np.maximum(over, 0.0), np.minimum(c, limit))


def _quantile(tail, p: float, hi) -> np.ndarray:
    """The t where tail(t) = 1 − p/100 (tail decreasing in t), per element, in [0, hi]. One rate: two rounds
    of a 64-point grid (each one vectorised call, the bracket narrowed 63-fold); several: bisection."""
    target = 1 - p / 100
    hi = np.asarray(hi, dtype=float).copy()
    lo = np.zeros_like(hi)
    if hi.shape == (1,):
        for _ in range(GRID_ROUNDS):
            ts = np.linspace(lo[0], hi[0], GRID_POINTS)
            above = tail(ts) > target
            k = int(np.argmin(above)) if not above.all() else GRID_POINTS - 1
            lo, hi = np.array([ts[max(k - 1, 0)]]), np.array([ts[k]])
        return hi
    for _ in range(T_STEPS):
        mid = (lo + hi) / 2
        above = tail(mid) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return hi


def _wmean(a: np.ndarray) -> np.ndarray:
    """The probability-weighted mean over the last (length) axis, kept as an axis."""
    return (a @ WEIGHTS)[..., None]


def _erfc(x):
    """Complementary error function, vectorised (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7)."""
    x = np.asarray(x, dtype=float)
    z = np.abs(x)
    t = 1 / (1 + 0.3275911 * z)
    y = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152073 + t * 1.061405429))))
    r = y * np.exp(-z * z)
    return np.where(x >= 0, r, 2 - r)


def _decoding_concurrency(s: StageShape, m: Machine, e: Efficiency, lam: np.ndarray, x: np.ndarray, o_mean: float,
                          ctx: float, chunk: float, limit: float, prefix_share: float,
                          fine) -> tuple[np.ndarray, ...]:
    """The decoding concurrency C at each rate (Little's law), with the prefill service times of the prompt
    lengths, their chunk counts, the decode step and the time each prompt adds to the decodes at that C;
    `within`: the load fits in the engine's limit."""
    # Little's law for the decoding concurrency C: the step times are evaluated once on a grid of C, and for
    # each rate C solves C = λ (E[o] − 1) τ(C) / (1 − λ E[ΔS(C)]) (interpolated between grid points)
    cg = _concurrency_grid(max(limit, 1.0))
    # a shared prefix (`prefix_share` of each prompt) comes from the prefix cache: only the rest is prefilled
    svc_g, _, n_g = prefill_time(s, m, e, x * (1 - prefix_share), x * prefix_share, chunk,
                                 batch_decode=np.maximum(cg - 1, 0.0), decode_context=ctx)
    svc_g = np.asarray(svc_g, dtype=float) * np.ones((len(cg), 1))  # (G, Q)
    tau_g = np.asarray(decode_step(s, m, e, cg, ctx).total, dtype=float) * np.ones((len(cg), 1))  # (G, 1)
    # the step as a decoding request meets it, at the count it sees (within the grid: ≥ 1, ≤ the limit)
    seen_g = np.interp(_seen_grid(float(limit))[:, 0], cg[:, 0], tau_g[:, 0])[:, None]
    added_g = np.maximum(svc_g - n_g * tau_g, 0.0)
    ea_g = _fine(added_g, fine) @ W_SUB  # (G,): over the SUB points of each bin (`fine`: :func:`fine_spec`)
    room = np.maximum(1 - lam * ea_g[None, :], 0.0)  # (R, G)
    need = np.where(room > 0, lam * max(o_mean - 1, 0.0) * seen_g[:, 0][None, :] / np.maximum(room, 1e-12), np.inf)
    f = need - cg[:, 0][None, :]  # > 0: more sequences than C would be in flight
    fits = f <= 0
    j = np.where(fits.any(-1), np.argmax(fits, axis=-1), len(cg) - 1)  # first grid C that holds the load
    i0 = np.maximum(j - 1, 0)
    rows = np.arange(len(f))
    f0, f1 = f[rows, i0][:, None], f[rows, j][:, None]
    crossing = (j[:, None] > 0) & np.isfinite(f0) & np.isfinite(f1) & (f0 != f1)
    t = np.where(crossing, f0 / np.where(f0 != f1, f0 - f1, 1.0), 1.0)
    t = np.clip(t, 0.0, 1.0)  # (R, 1)
    c = cg[i0] * (1 - t) + cg[j] * t  # (R, 1)
    svc = svc_g[i0] * (1 - t) + svc_g[j] * t  # (R, Q)
    n = np.broadcast_to(n_g, svc_g.shape)[j]  # chunks of each prompt (R, Q)
    tau = tau_g[i0] * (1 - t) + tau_g[j] * t  # (R, 1)
    tau_seen = seen_g[i0] * (1 - t) + seen_g[j] * t  # (R, 1)
    added = np.maximum(svc - n * tau, 0.0)
    within = fits.any(-1)[:, None]  # the load fits in the engine's limit
    # the step time's slope in C (s per sequence) at the solution, from the grid interval that holds it
    k1 = np.maximum(j, 1) if len(cg) > 1 else j
    k0 = np.maximum(k1 - 1, 0)
    dc = cg[k1, 0] - cg[k0, 0]
    slope = np.where(dc > 0, (tau_g[k1, 0] - tau_g[k0, 0]) / np.where(dc > 0, dc, 1.0), 0.0)[:, None]  # (R, 1)
    return c, svc, n, tau_seen, added, within, slope


def _window_variance(lam: np.ndarray, residence: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Variance of the decoding concurrency averaged over a request's decode window D. The sequences in
    decode are an M/G/∞ system: Poisson arrivals at λ, residence S (an answer's decode time), so
    Cov(C(t), C(t + h)) = λ E[(S − h)⁺] and the variance of the mean over D is
    (2 / D²) ∫₀ᴰ (D − h) λ E[(S − h)⁺] dh = (2λ / D²) E[D S m − (D + S) m² / 2 + m³ / 3], m = min(S, D)
    (λ E[S] = E[C] as D → 0; λ E[S²] / D as D → ∞). `residence`, `window`: (R, Q) over the answer lengths."""
    sj = residence[:, None, :]  # (R, 1, Q): the other sequences' residences
    dq = np.maximum(window[:, :, None], 1e-12)  # (R, Q, 1): this request's window
    mm = np.minimum(sj, dq)
    inner = dq * sj * mm - (dq + sj) * mm ** 2 / 2 + mm ** 3 / 3  # (R, Q, Q)
    return 2 * lam * (inner @ WEIGHTS) / dq[..., 0] ** 2


@functools.lru_cache(maxsize=64)
def _log_factorials(c: int) -> np.ndarray:
    """ln k! for k = 0 … c."""
    out = np.array([math.lgamma(k + 1) for k in range(c + 1)])
    out.flags.writeable = False
    return out


def _slots_full(lam: np.ndarray, residence: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """P(all c slots busy) for Poisson arrivals at `lam` (R, 1) to c slots whose requests each stay
    `residence[:, n - 1]` (R, K ≥ c) while n slots are busy: a birth-death chain, p_n = p_{n-1} λ / μ_n with
    μ_n = n / residence_n, past c every slot busy (μ_c). Where the residence does not depend on n this is Erlang's
    C formula for an M/M/c queue with offered load λ × residence. `c`: each row's slots (R,), integers 1 … K
    (default K). Summed in log space; 1 where the chain has no steady state (λ ≥ μ_c)."""
    k = residence.shape[-1]
    rows = np.arange(len(lam))
    cc = np.full(len(lam), k) if c is None else np.asarray(c, dtype=int)
    mu = np.arange(1, k + 1)[None, :] / np.maximum(residence, 1e-300)  # (R, K)
    log_p = np.concatenate([np.zeros_like(lam), np.cumsum(np.log(np.maximum(lam, 1e-300)) - np.log(mu), -1)], -1)
    r = lam[:, 0] / mu[rows, cc - 1]  # (R,)
    held = r < 1
    log_full = log_p[rows, cc] - np.log(np.where(held, 1 - r, 1.0))  # log Σ_{n ≥ c} p_n
    below = np.where(np.arange(k)[None, :] < cc[:, None], log_p[:, :-1], -np.inf)  # p_0 … p_{c-1}
    top = np.maximum(below.max(-1), log_full)
    full = np.exp(log_full - top)
    return np.where(held, full / (np.exp(below - top[:, None]).sum(-1) + full), 1.0)[:, None]


def _slot_residence(eb: np.ndarray, ed: np.ndarray, step_ratio: Callable[[np.ndarray], np.ndarray] | None):
    """R_n, a request's residence with n slots busy, as a function of the counts n ((K,) or (R, K)) -> (R, K):
    E[before decode] `eb` + E[decode] `ed` (R, 1) × `step_ratio` at the sequences then decoding, n × ed / (eb + ed)
    (at least one); the mean residence at every n where `step_ratio` is None."""
    er = eb + ed
    share = np.where(er > 0, ed / np.maximum(er, 1e-300), 0.0)

    def residence(busy: np.ndarray) -> np.ndarray:
        busy = np.broadcast_to(busy, (len(er), busy.shape[-1]))
        if step_ratio is None:
            return np.broadcast_to(er, busy.shape)
        return eb + ed * step_ratio(np.maximum(busy * share, 1.0))

    return residence


def _prefill_count(lam: np.ndarray, wq: np.ndarray, es: np.ndarray, es2: np.ndarray, es3: np.ndarray,
                   rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the number of requests waiting for or in prefill (the M/G/1 prompt queue, FIFO): the
    arrivals during a request's sojourn T = W + S, so a Poisson count mixed over T: E = λ E[T],
    Var = λ E[T] + λ² Var(T), Var(T) = Var(W) + Var(S), Var(W) = E[W]² + λ E[S³] / (3 (1 − ρ)) (Takács). `wq`:
    the mean wait E[W]; `es`, `es2`, `es3`: the service's first three moments (each (R, 1)). A heavy prompt tail
    makes the count bunch: one long prompt holds everyone who arrives while it is prefilled."""
    var_w = wq ** 2 + lam * es3 / np.maximum(3 * (1 - rho), 1e-12)
    mean = lam * (wq + es)
    return mean, mean + lam ** 2 * (var_w + np.maximum(es2 - es ** 2, 0.0))


def _peakedness(decoding: np.ndarray, prefill_count: tuple[np.ndarray, np.ndarray] | None,
                ok: np.ndarray) -> np.ndarray:
    """The peakedness z (variance / mean, at least 1) of the count of requests holding slots: those waiting for or
    in prefill (`prefill_count`: their mean and variance, :func:`_prefill_count`; bunched behind long prompts)
    plus those decoding (mean `decoding` = λ E[decode], counted as Poisson). 1 where no count is given."""
    if prefill_count is None:
        return np.ones_like(decoding)
    mean, var = prefill_count
    return np.where(ok, np.maximum((var + decoding) / np.maximum(mean + decoding, 1e-300), 1.0), 1.0)


def _slots_busy(lam: np.ndarray, residence: Callable[[np.ndarray], np.ndarray], slots: float,
                ok: np.ndarray, peak: np.ndarray | None = None) -> np.ndarray:
    """P(all `slots` busy) at each rate `lam` (R, 1) where `ok` (else 0): :func:`_slots_full` over the residences
    `residence` (:func:`_slot_residence`); a fractional count interpolates between the integers around it (past
    the lower integer's steady state, that one counts as always full). `peak` (R, 1): the peakedness z of the requests'
    count (variance / mean, 1 for Poisson), taken in Hayward's approximation: c / z slots, λ / z arrivals, each
    scaled slot standing for z busy ones. z is held at most c (at least one scaled slot: a single slot's chain is
    already exact, P(wait) = its load whatever the bunching), and a scaled slot's residence at most the one with
    every slot busy."""
    z = np.ones_like(lam) if peak is None else np.minimum(np.maximum(peak, 1.0), max(slots, 1.0))
    c = slots / z  # (R, 1), ≥ 1
    lo = np.maximum(np.floor(c), 1.0)
    frac = c - lo
    lam_safe = np.where(ok, lam / z, 0.0)
    res = residence(np.minimum(np.arange(1.0, float(lo.max()) + 2.0)[None, :] * z, slots))  # (R, K)
    p = _slots_full(lam_safe, res, lo[:, 0].astype(int))
    if (frac > 0).any():
        p = p * (1 - frac) + _slots_full(lam_safe, res, lo[:, 0].astype(int) + 1) * frac
    return np.where(ok, np.minimum(np.maximum(p, 0.0), 1.0), 0.0)


def _admission_wait(lam: np.ndarray, before_decode: np.ndarray, decode: np.ndarray, x: np.ndarray, o: np.ndarray,
                    slots: float, kv_tokens: float, answer_share: float = GROWING_ANSWER_SHARE,
                    step_ratio: Callable[[np.ndarray], np.ndarray] | None = None,
                    prefill_count: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, ...]:
    """The wait for admission: a request holds one of `slots` sequence slots (max_num_seqs) and its KV blocks
    from admission to its last token, its residence R = `before_decode` (R, Q over the prompt lengths `x`) +
    `decode` (R, Q over the answer lengths `o`), every prompt length with every answer length.

    * slots: an M/G/c queue in the Allen–Cunneen approximation whose servers share one engine: with n slots busy
      about n × E[decode] / E[R] sequences decode, each step takes `step_ratio`(that count) × the step the mean
      TPOT was taken at, and a residence is E[before decode] + E[decode] × that ratio (R_n). P(wait) = the
      birth-death chain's P(all c busy) (:func:`_slots_full`; Erlang C(c, λ E[R]) where the step does not grow
      with the batch, `step_ratio` None), mean wait given one 1 / (c / R_c − λ) × (1 + c_s²) / 2 (c_s: the
      residences' coefficient of variation): a full engine runs every sequence slower, so it frees slots slower
      than the mean residence says (a small MoE's step doubles from 1 to 4 sequences). A fractional c
      interpolates between the integers around it. The requests in flight are more bunched than Poisson where
      they wait behind a long prompt's prefill: `prefill_count` (the mean and variance of the prompt queue's
      count, :func:`_prefill_count`) gives their peakedness z, taken in Hayward's approximation (c / z slots,
      λ / z arrivals, a wait z times as long);
    * KV cache: the tokens held by the sequences in flight are a compound Poisson sum (M/G/∞, each holding its
      prompt and `answer_share` of its answer on average over its residence: half where blocks are taken as it
      grows, all of it where the engine reserves them at admission): mean λ E[R occ], variance λ E[R occ²], third
      cumulant λ E[R occ³] (a few long prompts fill it); a prompt of x tokens waits while that sum exceeds
      `kv_tokens` − x (less the mean answer where the answer is reserved at admission; a shifted-gamma tail),
      for E[R] (1 + c_s²) / 2 given a wait: the sequences in flight turn over while nothing behind it is admitted.

    Exponential given a wait. Returns (P(wait), mean wait, stable), each (R, 1)."""
    fin = np.isfinite(before_decode).all(-1, keepdims=True) & np.isfinite(decode).all(-1, keepdims=True)
    b, d = np.where(fin, before_decode, 0.0), np.where(fin, decode, 0.0)  # (R, Q) each
    # prompt and answer lengths are independent: every moment over the pairs is a sum of products of moments
    # over each (no (Q, Q) array)
    eb, ed = _wmean(b), _wmean(d)
    er = eb + ed
    a = lam * er
    residence = _slot_residence(eb, ed, step_ratio)
    r_full = residence(np.array([float(slots)]))  # (R, 1): every slot busy
    ok = fin & (lam * r_full < slots)
    # a load more than 12 √c + 12 below c waits for a slot with probability under 10⁻²⁰ (Poisson tail)
    slots_near = bool((ok & (lam * r_full > slots - 12 * math.sqrt(slots) - 12)).any())
    kv_near = np.zeros_like(ok)
    # the KV cache can fill only if more sequences than the slots, or than the Poisson count in flight can
    # reach (a + 12 √a + 12), could hold it at the longest prompt and answer
    a_top = float(np.max(np.where(ok, a, 0.0)))
    in_flight = min(slots, a_top + 12 * math.sqrt(a_top) + 12)
    if kv_tokens < in_flight * (float(np.max(x)) + float(np.max(o)) * answer_share):
        # occ = x + y (y: the answer's share held); E[R occⁿ] = Σⱼ C(n, j) (E[b xʲ] E[yⁿ⁻ʲ] + E[xʲ] E[d yⁿ⁻ʲ])
        xp = x.reshape(-1)[None, :] ** np.arange(4)[:, None]  # (4, Q): x⁰ … x³
        yp = (o.reshape(-1) * answer_share)[None, :] ** np.arange(4)[:, None]
        bx, dy = b @ (xp * WEIGHTS).T, d @ (yp * WEIGHTS).T  # (R, 4): E[b xʲ], E[d yʲ]
        mx, my = xp @ WEIGHTS, yp @ WEIGHTS  # (4,): E[xʲ], E[yʲ]
        k1, k2, k3 = (lam * sum(math.comb(n, j) * (bx[:, j:j + 1] * my[n - j] + mx[j] * dy[:, n - j:n - j + 1])
                                for j in range(n + 1)) for n in (1, 2, 3))
        ok = ok & (k1 < kv_tokens)
        sd = np.sqrt(np.maximum(k2, 1e-300))
        kv_near = ok & (k1 + 12 * sd + float(np.max(x)) >= kv_tokens)  # else P(no room) < 10⁻²⁰
    if not slots_near and not kv_near.any():
        return np.where(ok, 0.0, 1.0), np.where(ok, 0.0, np.inf), ok
    cs2 = np.where(er > 0, (_wmean(b ** 2) + 2 * eb * ed + _wmean(d ** 2)) / np.maximum(er, 1e-300) ** 2 - 1, 0.0)
    factor = (1 + cs2) / 2
    z = np.minimum(_peakedness(lam * ed, prefill_count, ok), max(slots, 1.0))  # as _slots_busy holds it
    p_slot = _slots_busy(lam, residence, slots, ok, z) if slots_near else np.zeros_like(er)
    wait = p_slot * z / np.maximum(slots / np.maximum(r_full, 1e-300) - np.where(ok, lam, 0.0), 1e-12) * factor
    p_kv = np.zeros_like(er)
    near = kv_near[:, 0]
    if near.any():
        k1n, sdn = k1[near], sd[near]
        tail = _skewed_tail(k1n, sdn, k3[near] / sdn ** 3)
        # (1, Q): what a prompt of x leaves; an engine that reserves the answer at admission needs room for it too
        # (its mean: the prompt's own answer length is independent of the prompt's)
        own = float(o.reshape(-1) @ WEIGHTS) if answer_share >= 1.0 else 0.0
        room = np.maximum(kv_tokens - x.reshape(-1)[None, :] - own, 0.0)
        p_kv[near] = np.minimum(np.maximum(tail(room) @ WEIGHTS, 0.0), 1.0)[:, None]
        # given a wait, no later prompt is admitted before it (first come, first served): it waits for the
        # sequences in flight to turn over, about their residence
        wait = wait + p_kv * er * factor
    p_any = np.where(ok, 1 - (1 - p_slot) * (1 - p_kv), 1.0)
    return p_any, np.where(ok, wait, np.inf), ok


def _residual_tail(svc: np.ndarray, es: np.ndarray, weights: np.ndarray):
    """P(S_e > u) = E[(S − u)⁺] / E[S] as a function of u (R, Q), for the service times `svc` (R, Q, weighted by
    WEIGHTS; `es`: their mean, (R, 1)): suffix sums over each row's sorted times, looked up with one search over
    the rows laid end to end."""
    n_rows, q = svc.shape
    if (svc[:, 1:] >= svc[:, :-1]).all():  # the prompt lengths come sorted, and so do their prefill times
        s_sorted, w_sorted = svc, np.broadcast_to(weights, svc.shape)
    else:
        order = np.argsort(svc, axis=1)
        s_sorted, w_sorted = np.take_along_axis(svc, order, axis=1), weights[order]
    zeros = np.zeros((n_rows, 1))
    suffix_w = np.concatenate([np.cumsum(w_sorted[:, ::-1], axis=1)[:, ::-1], zeros], axis=1)  # (R, Q + 1)
    suffix_ws = np.concatenate([np.cumsum((w_sorted * s_sorted)[:, ::-1], axis=1)[:, ::-1], zeros], axis=1)
    top = float(s_sorted.max()) if s_sorted.size else 0.0
    offset = np.arange(n_rows)[:, None] * (top + 1.0)
    flat = (np.maximum(s_sorted, 0.0) + offset).ravel()
    rows = np.arange(n_rows)[:, None]

    def tail(u: np.ndarray) -> np.ndarray:
        uc = np.minimum(np.maximum(u, 0.0), top)
        k = np.searchsorted(flat, (uc + offset).ravel(), side="right").reshape(u.shape) - rows * q
        k = np.minimum(np.maximum(k, 0), q)
        return np.where(u >= top, 0.0, (suffix_ws[rows, k] - uc * suffix_w[rows, k]) / es)

    return tail


def _context_variance(x: np.ndarray, o: np.ndarray) -> float:
    """Variance of a decoding sequence's context over decoding time (prompt plus what it has generated; an answer
    of o tokens decodes for o steps, its context running from x to x + o): E_t[c²] − E_t[c]² with
    E_t[c] = E[x] + E[o²] / (2 E[o]) (:func:`decoding_context`) and E_t[c²] = E[x²] + E[x] E[o²] / E[o] +
    E[o³] / (3 E[o]), prompt and answer lengths independent."""
    ex, ex2 = float(x @ WEIGHTS), float((x * x) @ WEIGHTS)
    eo, eo2, eo3 = float(o @ WEIGHTS), float((o * o) @ WEIGHTS), float((o ** 3) @ WEIGHTS)
    if eo <= 0:
        return max(ex2 - ex * ex, 0.0)
    mean = ex + eo2 / (2 * eo)
    return max(ex2 + ex * eo2 / eo + eo3 / (3 * eo) - mean * mean, 0.0)


def _tpot_spread(lam, d, steps, ea2, ea3, rho_a, slope, stable, ctx_slope=0.0,
                 ctx_var=0.0, cross=None) -> tuple[np.ndarray, np.ndarray]:
    """The standard deviation and skewness of a request's TPOT (R, Q) over its answer length. It varies
    with the prefill work that arrives during its decode, which stretches the decode and so lets more work
    in: a busy period started by the request's own steps S0 = steps τ (Takács), with cumulants
    κ₁ = S0 / (1 − ρ_a), κ₂ = S0 λ E[ΔS²] / (1 − ρ_a)³, κ₃ = S0 (λ E[ΔS³] / (1 − ρ_a)⁴ + 3 λ² E[ΔS²]² / (1 − ρ_a)⁵)
    (one long prompt during a short answer: a heavy right tail); and with the number of sequences decoding
    beside it, averaged over that time (M/G/∞, :func:`_window_variance`), through the step time's slope in
    C (taken as symmetric). The sequences beside it differ in context, and a step reads each one's: a sequence
    of context c costs b_n + b_ctx c, so the step time varies as E[(b_n + b_ctx c)²] = slope² + b_ctx² Var(c)
    times the count's variance (`ctx_slope` b_ctx, seconds per context token; `ctx_var` Var(c) over decoding
    time: a few long prompts in flight slow every step while they decode). The two are not independent: a prompt
    arriving during the decode stalls it by ΔS and then decodes beside it, b = slope + b_ctx (x − E[x]) a step
    for as many of its steps as overlap, and a long prompt does both at length; `cross` (E[ΔS b] (R, 1), M (1, Q)
    = E[∫₀^steps min(o′, s) ds] over the other answers o′, E[ΔS² b] (R, 1)) adds the two compound Poisson sums'
    joint cumulants, 2 λ E[ΔS b] τ M / ((1 − ρ_a)³ steps²) to the variance and 3 λ E[ΔS² b] τ M / ((1 − ρ_a)⁴
    steps³) to the third cumulant (the terms of a higher order in b are small)."""
    d_fin = np.where(stable, d, 0.0)
    # the window variance scales as λ τ when every residence and window is τ × its steps: the (Q, Q) sum once
    var_c = lam * (d_fin / steps) * _window_variance(np.ones((1, 1)), steps, steps)
    free = np.maximum(1 - rho_a, 1e-9)
    s0 = d_fin * free
    k2 = lam * s0 * ea2 / free ** 3 / steps ** 2
    k3 = lam * s0 * (ea3 / free ** 4 + 3 * lam * ea2 ** 2 / free ** 5) / steps ** 3
    var_t = k2 + ((slope / free) ** 2 + (ctx_slope / free) ** 2 * ctx_var) * var_c
    if cross is not None:  # τ = d (1 − ρ_a) / steps: the step without prompts
        tau_m = (d_fin * free / steps) * cross[1]
        var_t = var_t + 2 * lam * cross[0] * tau_m / (free ** 3 * steps ** 2)
        k3 = k3 + 3 * lam * cross[2] * tau_m / (free ** 4 * steps ** 3)
    sd = np.where(stable, np.sqrt(np.maximum(var_t, 0.0)), 0.0)
    skew = np.where(stable & (sd > 0), k3 / np.maximum(sd, 1e-300) ** 3, 0.0)
    return sd, skew


def _skewed_tail(mean, sd, skew):
    """P(X > t) as a function of t, for X with this mean, standard deviation and skewness: a shifted gamma
    distribution (shape 4 / γ², scale σ γ / 2), its tail by the Wilson–Hilferty cube-root normal
    approximation; the normal tail where the skew is negligible. What does not depend on t is computed once."""
    sd = np.maximum(sd, 1e-12)
    skewed = skew > 1e-3
    g = np.maximum(skew, 1e-3)
    k = 4 / g ** 2
    theta = sd * g / 2
    v = 1 / (9 * k)
    shift = mean - k * theta
    inv_k, one_v, sq_v = 1 / k, 1 - v, np.sqrt(2 * v)

    def tail(t):
        x = np.maximum((t - shift) / theta, 0.0)  # the gamma variable
        z = np.where(skewed, (np.cbrt(x * inv_k) - one_v) / sq_v, (t - mean) / (sd * np.sqrt(2)))
        return np.where(skewed & (x <= 0), 1.0, 0.5 * _erfc(z))  # nothing lies below the shift

    return tail


def _share_above(k: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """t -> P(k(X) > t) within each of X's probability bins (WEIGHTS): `k` (..., Q) the value at each bin's point
    (its middle probability, normal score _Z), t broadcast against it. A bin that straddles t counts the share of
    it above t rather than all or nothing (a TTFT limit inside the 97.5–98.5 % bin of the prompt lengths moved the
    share of requests over it by up to that bin's 1 %). Within a bin, log k is taken as linear in the normal
    score between the points (a power of a lognormal length: a prefill time grows about as the prompt), flat
    beyond the first and the last; each half bin holds half its probability, spread over its normal scores by
    the normal density taken as linear across the half (a trapezoid: exact at both ends, no erfc per time)."""
    lk = np.log(np.maximum(k, 1e-300))
    # log k at the inner bin edges, interpolated in the normal score between the points on either side
    inner = lk[..., :-1] + (lk[..., 1:] - lk[..., :-1]) * _EDGE_FRAC
    prepared = []
    for i, (va, vb) in enumerate(((np.concatenate([lk[..., :1], inner], axis=-1), lk),
                                  (lk, np.concatenate([inner, lk[..., -1:]], axis=-1)))):
        dv = vb - va  # the half bin's log k runs from va to vb
        flat = np.abs(dv) <= 1e-12  # all or nothing: a step at va (reached once log t passes it)
        up = flat | (dv > 0)  # the share above t is the part beyond the crossing, 1 − below
        inv = np.where(flat, 1e300, 1.0 / np.where(flat, 1.0, dv))  # flat: a step (overflow to ±inf, clipped)
        prepared.append((va, inv, np.where(flat, 1.0, 0.0), np.where(up, 1.0, 0.0), np.where(up, -1.0, 1.0),
                         *_HALF_DENSITY[i]))

    def share(t: np.ndarray) -> np.ndarray:
        lt = np.log(np.maximum(t, 1e-300))
        halves = []
        for va, inv, shift, base, sign, da, dd in prepared:
            with np.errstate(over="ignore", invalid="ignore"):
                f = np.clip((lt - va) * inv + shift, 0.0, 1.0)  # how far across the half log k reaches log t
            halves.append(base + sign * (f * (da + dd * f)))  # f (da + dd f): the half's probability below
        return 0.5 * (halves[0] + halves[1])

    return share


def _ttft_tail(rho: np.ndarray, wq: np.ndarray, wq_all: np.ndarray, p_admit: np.ndarray, svc: np.ndarray,
              ttft_k: np.ndarray, stable: np.ndarray, own_k: OwnTTFT | None = None,
              svc_weights: np.ndarray = WEIGHTS):
    """P(TTFT > t) as a function of t (R,): the TTFT without the wait `ttft_k` (R, Q over the prompt lengths)
    plus the wait. P(wait > 0) = 1 − (1 − ρ)(1 − P(admission wait)); given a wait, its mean m1 (`wq_all`: the
    prompt queue's `wq` and the admission wait) and a shape that goes from light to heavy traffic: the residual
    S_e of the prompt in service (P(S_e > u) = E[(S − u)⁺] / E[S], scaled to the mean: in light traffic one
    waits for the prompt being prefilled, so a heavy prompt tail gives the wait a heavy tail) with weight
    (1 − ρ) × the prompt queue's share of the wait, an exponential (heavy traffic, and the admission wait) with
    the rest. Without a wait, the prompt's own TTFT is over t in the share of its bin :func:`_share_above` gives;
    `own_k` (:class:`OwnTTFT`; None: `ttft_k` (R, Q) throughout, nothing co-batched) splits it: the prompts
    that arrive meanwhile share its last step or none does, and a mean of the two would put a whole bin near
    the limit on one side. Given a wait W, those arriving during it share its last step too, so its TTFT passes
    t when W + min(λ E[S] W, the room's work) passes t − its own TTFT (a long wait brings its own co-batched
    work: in the simulator a short prompt that waited 1 s shares its step with a 0.8 s chunk of a long prompt
    that arrived meanwhile, a stretch the mean co-batched work of every prompt misses). And at least the single
    big jump of a heavy-tailed prompt queue (a long prompt that arrived y before still holds u of work when
    S > u + (1 − ρ) y: λ ∫ P(S > u + (1 − ρ) y) dy = ρ / (1 − ρ) P(S_e > u) such prompts on average, so
    P(wait > u) ≈ 1 − exp(−ρ / (1 − ρ) P(S_e > u)) for large u (Pakes–Veraverbeke: the drift (1 − ρ) y is an
    average, so not a strict bound); an asymptote, taken at most as the mixture's value at its mean m1, so that
    it only ever lifts the tail beyond it): at moderate load and with very long prompts the mixture decays faster
    than the wait behind the longest of them."""
    pw = np.where(stable, 1 - (1 - rho) * (1 - p_admit), 1.0)
    m1 = np.where(stable & (pw > 0), wq_all / np.maximum(pw, 1e-300), 0.0)
    m1_safe = np.maximum(m1, 1e-300)
    svc_f = np.where(stable, svc, 0.0)  # (R, N) prefill times with weights `svc_weights` (N)
    es_f = np.maximum((svc_f @ svc_weights)[:, None], 1e-300)
    es_e = ((svc_f ** 2) @ svc_weights)[:, None] / (2 * es_f)  # E[S_e], the mean residual of the prompt in service
    residual_scale = es_e / m1_safe
    residual = _residual_tail(svc_f, es_f, svc_weights)
    if own_k is None:
        zero = np.zeros_like(ttft_k)
        own_k = OwnTTFT(np.ones_like(ttft_k), ttft_k, ttft_k, ttft_k, zero, zero)
    alone = own_k.p_alone[:, None, :]
    # (2, R, 1, Q): its bins' shares over t alone and with co-batched prompts, for (R, K, 1) times (one call)
    own = _share_above(np.stack([own_k.alone_s, own_k.with_s])[:, :, None, :])
    w_residual = np.where(stable, (1 - rho) * np.where(wq_all > 0, wq / np.maximum(wq_all, 1e-300), 0.0), 0.0)
    jumps = np.where(stable, rho / np.maximum(1 - rho, 1e-9), 0.0)  # (R, 1): ρ / (1 − ρ)
    at_mean = pw * (w_residual * residual(np.where(stable, es_e, 0.0))
                    + (1 - w_residual) * math.exp(-1.0))  # the mixture at m1 (the residual there: at E[S_e])

    def tail(t: np.ndarray) -> np.ndarray:  # t: (R,), or (R, K): K times at each rate
        two = t.ndim == 2
        tt = t[:, :, None] if two else t[:, None]
        k0, a, cap_w, p, wr, scale, m, jr, cap = (
            v[:, None, :] if two else v for v in (own_k.no_wait_s, own_k.cowork_per_s, own_k.cowork_cap_s, pw,
                                                  w_residual, residual_scale, m1_safe, jumps, at_mean))
        gap = np.maximum(tt - k0, 0.0)
        # the wait W that makes TTFT t: W + min(a W, cap) = gap, a W the co-batched work that arrived meanwhile
        gap = np.where(gap * a <= cap_w * (1 + a), gap / (1 + a), gap - cap_w)
        # TTFT > t when the prompt's own TTFT is (no wait needed) or the wait exceeds the gap: p f(gap) is both
        # given a wait (f(0) = 1), and without one (1 − p) the share of the prompt's bin whose own TTFT is over t
        w = p * (wr * residual((gap * scale).reshape(len(gap), -1)).reshape(gap.shape)
                 + (1 - wr) * np.exp(-np.minimum(gap / m, 700.0)))
        big = 1 - np.exp(-jr * residual(gap.reshape(len(gap), -1)).reshape(gap.shape))  # one big jump
        w = np.maximum(w, np.minimum(big, cap))
        s_alone, s_with = own((tt if two else tt[:, None])[None])
        sh = (alone * s_alone + (1 - alone) * s_with).reshape(gap.shape)
        whole = ((s_alone >= 1.0) & (s_with >= 1.0)).reshape(gap.shape)
        w = np.where(whole, 1.0, np.minimum(w + (1 - p) * sh, 1.0))  # a bin wholly over t: 1 exactly
        return np.where(stable if two else stable[:, 0], w @ WEIGHTS, 1.0)

    return tail


def _tpot_tails(s: StageShape, m: Machine, e: Efficiency, lam, c, ctx: float, x, o, added, rho_a, slope, tpot_mean,
                stable, chunks, fine, added_f):
    """P(TPOT > t) over the requests (:func:`_tpot_tail`) and the standard deviation at each answer length: the
    spread of :func:`_tpot_spread` (its context term from the step time's cost per context token at the
    solution's concurrency, a 10 % longer context), its tail a shifted gamma, and at least the chance that one
    prompt arriving during the decode stalls it past t on its own (:func:`_jump_tail`). The moments over the
    prompt lengths are taken over the SUB points of each bin (`fine`: :func:`fine_spec`; `added_f`: `added` there)."""
    steps = np.maximum(o - 1, 1.0)[None, :]  # (1, Q)
    d = steps * tpot_mean  # decode time of each answer length (R, Q)
    c_safe = np.maximum(np.where(stable, c, 1.0), 1.0)
    both = np.asarray(decode_step(s, m, e, c_safe, np.array([[ctx, 1.1 * ctx]])).total, dtype=float)  # (R, 2)
    ctx_slope = (both[:, 1:] - both[:, :1]) / (0.1 * max(ctx, 1.0) * c_safe)
    ctx_slope = np.maximum(ctx_slope, 0.0)
    x0 = x.reshape(-1)
    a_f, x_f, w = np.where(stable, added_f, 0.0), _fine(x0, fine), W_SUB
    b = slope + ctx_slope * (x_f - float(x_f @ w))[None, :]  # (R, N): what each prompt then adds a step
    a2 = a_f * a_f
    e_ab, e_aab, ea2, ea3 = (((a_f * b) @ w)[:, None], ((a2 * b) @ w)[:, None], (a2 @ w)[:, None],
                             ((a2 * a_f) @ w)[:, None])
    others = np.maximum(o - 1, 0.0)[:, None]  # (Q', 1): the steps each other answer decodes
    s_q = steps[0][None, :]  # (1, Q)
    overlap = np.where(others <= s_q, others * s_q - others ** 2 / 2, s_q ** 2 / 2)  # ∫₀^steps min(o′, s) ds
    sd, skew = _tpot_spread(lam, d, steps, ea2, ea3, rho_a, slope, stable,
                            ctx_slope, _context_variance(x0, o), (e_ab, (WEIGHTS @ overlap)[None, :], e_aab))
    gamma, jump = _skewed_tail(tpot_mean, sd, skew), _jump_tail(lam, steps, added, rho_a, tpot_mean, stable,
                                                                    chunks)
    return _tpot_tail(lambda t: np.maximum(gamma(t), jump(t)), o, stable), sd


def _jump_tail(lam, steps, added, rho_a, tpot_mean, stable, chunks=None):
    """P(TPOT > t) from one prompt alone: the time prompts add to the decodes is heavy-tailed (a prompt's
    attention grows with its square), and a sum of such terms exceeds a high level through its largest (the
    single big jump of subexponential sums), which a moment-matched gamma misses. Given a jump ΔS = a_i (the
    prompt-length points, ΔS rising with the length), the rest of the sum holds only the smaller ones, whose
    load is ρ_<i = λ Σ_{j<i} w_j a_j: TPOT_i = (τ + a_i / steps) / (1 − ρ_<i), τ the step without prompts, and a
    prompt at least that large arrives during the decode (Poisson, λ × steps × τ / (1 − ρ_<i)) with
    P(ΔS ≥ a_i) (log-interpolated between the bins' midpoints, against TPOT_i). Below the smallest jump's
    TPOT, and below the mean TPOT, the body is the gamma's (0 here); beyond the largest nothing reaches (0)."""
    free = np.maximum(1 - rho_a, 1e-9)
    tau = np.where(stable, tpot_mean * free, 0.0)  # (R, 1)
    add = np.maximum.accumulate(np.where(stable, added, 0.0), axis=-1)  # (R, Qx)
    load = lam * add * WEIGHTS
    rest = np.maximum(1 - (np.cumsum(load, -1) - load), 1e-9)  # 1 − ρ_<i (R, Qx)
    # a prompt of n chunks adds its time over n steps: an answer of fewer steps meets at most that many of them,
    # a_i / n_i a step, so a_i / max(steps, n_i) a token (`chunks`: n_i, (R, Qx); None: every prompt one step)
    per = steps[:, :, None] if chunks is None else np.maximum(steps[:, :, None], np.asarray(chunks)[:, None, :])
    t_i = (tau[:, :, None] + add[:, None, :] / per) / rest[:, None, :]  # (R, Qo, Qx)
    t_i = np.maximum.accumulate(t_i, axis=-1)  # rising in i (a chunk boundary can dip it)
    rate_i = np.where(stable, lam, 0.0)[:, :, None] * steps[:, :, None] * tau[:, :, None] / rest[:, None, :]
    log_surv = np.log(1 - (P_EDGES[:-1] + P_EDGES[1:]) / 2)
    q = len(log_surv)

    def tail(t):  # t: (R, 1), or one rate's (K, 1) times -> (R or K, Qo)
        n = len(t)
        k = (t_i < t[:, :, None]).sum(-1)  # (n, Qo): the jumps too small to reach t
        lo, hi = np.maximum(k - 1, 0), np.minimum(k, q - 1)
        rows = np.arange(n)[:, None] if len(t_i) == n else np.zeros((n, 1), dtype=int)  # one rate: K times
        cols = np.arange(t_i.shape[1])[None, :]
        t0, t1 = t_i[rows, cols, lo], t_i[rows, cols, hi]
        f = np.where(t1 > t0, (t - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0)
        ls = log_surv[lo] + f * (log_surv[hi] - log_surv[lo])
        r = rate_i[rows, cols, hi]
        p = 1 - np.exp(-r * np.exp(ls))
        # an exceedance beyond the mean (below it, the many small jumps together are the gamma's body)
        below = t < np.broadcast_to(np.where(stable, tpot_mean, np.inf), (n, 1))
        return np.where((k == 0) | (k >= q) | below, 0.0, p)

    return tail


def _tpot_tail(tpot_k, o: np.ndarray, stable: np.ndarray):
    """P(TPOT > t) as a function of t (R,), from `tpot_k` (the tail at each answer length `o`): TPOT exists for
    the answers longer than one token, so the tail is over those (none: nothing exceeds a limit)."""
    has_tpot = (o > 1) * WEIGHTS
    share = float(has_tpot.sum())

    def tail(t):  # t: (R,)
        if share <= 0:
            return np.where(stable[:, 0], 0.0, 1.0)
        return np.where(stable[:, 0], tpot_k(t[:, None]) @ has_tpot / share, 1.0)

    return tail


def _answer_start_tails(ttft_tail, thinking: np.ndarray | None, tpot_mean: np.ndarray):
    """P(answer start > t) as a function of t (R,), and P(TTFT > a or answer start > b) as one of a and b (R,).
    The answer starts after the thinking, T tokens after the first, each taking the mean TPOT: answer start =
    TTFT + T × TPOT, so P(answer start > t) = Σⱼ wⱼ P(TTFT > t − Tⱼ TPOT) and P(TTFT > a or answer start > b)
    = Σⱼ wⱼ P(TTFT > min(a, b − Tⱼ TPOT)), over the thinking lengths Tⱼ (`thinking`: QUAD points with weights
    WEIGHTS, equal ones merged). None: the model does not think, and its answer starts with the first token."""
    if thinking is None:
        return ttft_tail, lambda a, b: ttft_tail(np.minimum(a, b))
    points, where = np.unique(thinking, return_inverse=True)
    weights = np.bincount(where.ravel(), WEIGHTS, len(points))
    delay = tpot_mean[:, :1] * points[None, :]  # (R, J): the time the thinking takes

    def either(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ttft_tail(np.minimum(a[:, None], b[:, None] - delay)) @ weights

    return (lambda t: either(np.full_like(t, np.inf), t)), either


class OwnTTFT(NamedTuple):
    """A prompt's own TTFT (its prefill, the request overhead and the prompts that share its last step), each
    (R, Q) over the prompt lengths, for :func:`_ttft_tail`. Without a wait, the prompts arriving during its first
    n − 1 chunk steps share its last step or none does: `p_alone` (P(none does)), `alone_s`, `with_s` (given one or
    more). Given a wait W, those arriving during it join too: TTFT = `no_wait_s` + W + min(`cowork_per_s` W,
    `cowork_cap_s`) (their work, λ W × the mean prompt's, up to the room left in its last step)."""

    p_alone: np.ndarray
    alone_s: np.ndarray
    with_s: np.ndarray
    no_wait_s: np.ndarray
    cowork_per_s: np.ndarray
    cowork_cap_s: np.ndarray


def _own_ttft(lam, wq, svc, n, es, x, chunk: float, prefix_share: float, overhead,
              stable) -> tuple[np.ndarray, OwnTTFT]:
    """A prompt's TTFT without the wait, (R, Q) over the prompt lengths `x`: its prefill `svc` (`n` chunks), the
    request overhead, and the prompts queued behind it when its last chunk's step is formed (those that arrived
    while it waited and during its first n − 1 chunk steps; one arriving during a step waits for the next), which
    share that step up to the budget. Returns (the mean, :class:`OwnTTFT`): they are there or not, and a mean for
    every prompt would put a whole bin near a limit on one side; and those that arrived while it waited are as
    many as its wait was long, so a long wait brings more of them (a share of requests over a limit is set by the
    long waits)."""
    x_mean = float(x[0] @ WEIGHTS)
    tokens = x_mean * (1 - prefix_share)
    per_token = es / max(tokens, 1.0)
    room = np.maximum(chunk - np.mod(x * (1 - prefix_share), chunk), 0.0)
    own_steps = lam * svc * (n - 1) / np.maximum(n, 1.0)  # (R, Q): arrivals during its first n − 1 chunk steps
    arrivals = lam * np.where(stable, wq, 0.0) + own_steps
    mean = svc + np.minimum(room, arrivals * tokens) * per_token + overhead
    alone = np.exp(-own_steps)
    with_co = np.minimum(room, own_steps * tokens / np.maximum(1 - alone, 1e-300)) * per_token
    no_wait = svc + np.minimum(room, own_steps * tokens) * per_token + overhead
    left = np.maximum(room - own_steps * tokens, 0.0)  # the room those arriving during its chunk steps leave
    return mean, OwnTTFT(alone, svc + overhead, svc + with_co + overhead, no_wait, lam * es * np.ones_like(svc),
                         left * per_token)


def _step_ratio(s: StageShape, m: Machine, e: Efficiency, slots: float, ctx: float,
                tau: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The decode step with k sequences decoding (k from 1 to `slots` + 1, interpolated between the counts it is
    evaluated at; beyond, the last: pass the most the engine runs at once) over the step `tau` (R, 1) the mean TPOT
    was taken at: how much slower a fuller engine decodes (:func:`_slot_residence`)."""
    top = math.ceil(max(slots, 1.0)) + 1.0  # every count up to 64, then 64 more spread geometrically
    counts = np.unique(np.concatenate([np.arange(1.0, min(top, 64.0) + 1.0), np.round(np.geomspace(1.0, top, 64))]))
    table: list[np.ndarray] = []  # the steps, evaluated when first asked (only a queue near its slots asks)

    def ratio(k: np.ndarray) -> np.ndarray:
        if not table:
            table.append(np.asarray(decode_step(s, m, e, counts, ctx).total, dtype=float) * np.ones(len(counts)))
        return np.interp(k, counts, table[0]) / np.maximum(tau, 1e-300)

    return ratio


def _poisson_latency(s: StageShape, m: Machine, e: Efficiency, rate, input_lengths, output_lengths, chunk: float,
                    limit: float, limits_s: dict[str, float] | None = None,
                    percentiles: tuple[int, ...] = (50, 95, 99), max_context: float = np.inf,
                    at_s: dict[str, float] | None = None, prefix_share: float = 0.0, slots: float | None = None,
                    kv_tokens: float = np.inf, with_e2e: bool = True,
                    thinking_lengths=None, answer_share: float = GROWING_ANSWER_SHARE) -> dict[str, np.ndarray]:
    """Latency percentiles (seconds, keys like ``ttft_p95``) at Poisson `rate` (an array: one result per
    rate), with at most `limit` sequences in the engine. Admission waits for one of `slots` sequence slots
    (default: `limit`) and, where `kv_tokens` is given, for room in a KV cache of that many tokens.
    `limits_s` (per-request limits, seconds, keys ttft / answer_start / tpot / e2e): also the goodput share in
    [0, 1]. Unstable (ρ ≥ 1, more sequences than the limit, or more KV than the cache): infinite latencies,
    goodput 0. `with_e2e`: also the end-to-end percentiles. `thinking_lengths`: the thinking a model that thinks
    writes before its answer (its share of `output_lengths`), for the answer start (``answer_start_p95``,
    :func:`_answer_start_tails`); None: the answer starts with the first token (answer start = TTFT).
    `answer_share`: the share of its answer a sequence's KV blocks hold on average (0.5 taken as it grows, 1
    reserved at admission: :func:`llmplan.perf.limits.answer_share`)."""
    lam = np.atleast_1d(np.asarray(rate, dtype=float))[:, None]  # (R, 1)
    x = length_points(input_lengths, max_context)[None, :]  # (1, Q)
    o = np.minimum(length_points(output_lengths, max_context), np.maximum(max_context - x[0], 1.0))  # (Q,)
    o_mean = float(o @ WEIGHTS)
    ctx = decoding_context(float(input_lengths.mean), o)
    fine = fine_spec(input_lengths, x[0], max_context)
    c, svc, n, tau, added, within, slope = _decoding_concurrency(s, m, e, lam, x, o_mean, ctx, chunk, limit,
                                                                  prefix_share, fine)
    svc_f = _fine(svc, fine)  # (R, Q × SUB): the prefill times over the SUB points of each bin
    es, es2 = (svc_f @ W_SUB)[:, None], ((svc_f ** 2) @ W_SUB)[:, None]
    rho = lam * es
    added_f = _fine(added, fine)
    rho_a = lam * (added_f @ W_SUB)[:, None]
    stable = (rho < 1) & (rho_a < 1) & within
    wq = np.where(stable, lam * es2 / np.maximum(2 * (1 - rho), 1e-12), np.inf)
    tpot_mean = np.where(stable, tau / np.maximum(1 - rho_a, 1e-9), np.inf)
    ttft_k, own_k = _own_ttft(lam, wq, svc, n, _wmean(svc), x, chunk, prefix_share, e.request_overhead_s, stable)
    # a request holds a sequence slot and its KV blocks from admission to its last token: when none is free it
    # waits before its prompt queues (:func:`_admission_wait`); the two waits add
    n_slots = limit if slots is None else slots
    queued = _prefill_count(lam, np.where(stable, wq, 0.0), es, es2, ((svc_f ** 3) @ W_SUB)[:, None], rho)
    p_admit, ws, admit_ok = _admission_wait(
        lam, np.where(stable, wq + ttft_k, np.inf), np.where(stable, np.maximum(o - 1, 0.0)[None, :] * tpot_mean,
                                                               np.inf), x, o, n_slots, kv_tokens, answer_share,
        _step_ratio(s, m, e, min(n_slots, max(limit, 1.0)), ctx, tau), queued)
    stable = stable & admit_ok
    tpot_mean = np.where(stable, tpot_mean, np.inf)
    wq_all = np.where(stable, wq + ws, np.inf)
    ttft_tail = _ttft_tail(rho, wq, wq_all, p_admit, svc_f, ttft_k, stable, own_k, W_SUB)

    tpot_tail, sd = _tpot_tails(s, m, e, lam, c, ctx, x, o, added, rho_a, slope, tpot_mean, stable, n, fine,
                                added_f)
    ttft_mean = np.where(stable, wq_all + _wmean(ttft_k), np.inf)
    e2e_k = np.where(stable, np.where(stable, ttft_mean, 0.0) + np.maximum(o - 1, 0.0)[None, :]
                     * np.where(stable, tpot_mean, 0.0), np.inf)  # (R, Q) over answer lengths

    e2e_above: list[Callable[[np.ndarray], np.ndarray]] = []  # built when first asked (few SLOs limit it)

    def e2e_tail(t):
        if not e2e_above:
            e2e_above.append(_share_above(e2e_k))
        return np.where(stable[:, 0], e2e_above[0](t[:, None]) @ WEIGHTS, 1.0)

    st = stable[:, 0]
    thinking = None if thinking_lengths is None else length_points(thinking_lengths, max_context)
    answer_tail, either = _answer_start_tails(ttft_tail, thinking, tpot_mean)
    hi_ttft = np.where(st, ttft_k.max(-1) + 60 * np.where(st, wq_all[:, 0], 0.0) + 1.0, 1.0)
    his = {"ttft": hi_ttft, "tpot": np.where(st, tpot_mean[:, 0] + 30 * sd.max(-1) + 1e-3, 1.0)}
    if with_e2e:
        his["e2e"] = np.where(st, e2e_k.max(-1) * 1.01 + 1e-3, 1.0)
    if thinking is not None:  # else the answer starts with the first token: its percentiles are the TTFT's
        his["answer_start"] = np.where(st, hi_ttft + float(thinking.max()) * tpot_mean[:, 0], 1.0)
    out: dict[str, np.ndarray] = {"rho": rho[:, 0], "rho_decode": rho_a[:, 0], "concurrency": c[:, 0],
                                  "wait_mean_s": np.where(st, wq_all[:, 0], np.inf), "admission_wait_p": p_admit[:, 0],
                                  "tpot_mean": tpot_mean[:, 0], "ttft_mean": ttft_mean[:, 0],
                                  "answer_start_mean": ttft_mean[:, 0] + (0.0 if thinking is None else float(
                                      thinking @ WEIGHTS) * tpot_mean[:, 0]), "stable": st}
    tails = {"ttft": ttft_tail, "answer_start": answer_tail, "tpot": tpot_tail, "e2e": e2e_tail}
    out.update({f"{key}_p{p}": np.where(st, _quantile(tails[key], p, hi), np.inf) for p in percentiles
                for key, hi in his.items()})
    out.update({f"answer_start_p{p}": out[f"ttft_p{p}"] for p in percentiles if thinking is None})
    out.update(_shares_above(tails, st, at_s, limits_s, either))
    return out


def _shares_above(tails: dict[str, Callable[[np.ndarray], np.ndarray]], st: np.ndarray,
                  at_s: dict[str, float] | None, limits_s: dict[str, float] | None,
                  either: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """The share of requests above each limit of `at_s` (``exceed_ttft_p95`` …) and, given per-request
    `limits_s`, the share within all of them (``goodput``); `st`: which rates are stable. The TTFT and the answer
    start of a request move together (the answer starts a thinking after the first token): where both have a
    limit, the share above either is `either`'s (a, b) -> P(TTFT > a or answer start > b), not a product."""
    out: dict[str, np.ndarray] = {}
    at_limit: dict[tuple[str, float], np.ndarray] = {}  # an SLO percentile and goodput often share a limit

    def share_above(key: str, lim: float) -> np.ndarray:
        if (key, lim) not in at_limit:
            at_limit[key, lim] = tails[key](np.full(len(st), lim))
        return at_limit[key, lim]

    for key, lim in (at_s or {}).items():  # ttft_p95 -> P(TTFT > lim): the share of requests above the limit
        out[f"exceed_{key}"] = share_above(key.split("_p")[0], lim)
    if limits_s is not None:
        good = st.astype(float)
        keys = [k for k in ("ttft", "answer_start", "tpot", "e2e") if k in limits_s]
        if "ttft" in keys and "answer_start" in keys:
            keys = [k for k in keys if k not in ("ttft", "answer_start")]
            n = len(st)
            good = good * (1 - either(np.full(n, limits_s["ttft"]), np.full(n, limits_s["answer_start"])))
        for key in keys:
            good = good * (1 - share_above(key, limits_s[key]))
        out["goodput"] = np.where(st, good, 0.0)
    return out


def poisson_latency(*args, **kwargs) -> dict[str, np.ndarray]:
    """See :func:`_poisson_latency`; unstable rates carry infinities that are masked out of every result."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _poisson_latency(*args, **kwargs)


def capacity(s: StageShape, m: Machine, e: Efficiency, saturation_rate: float, input_lengths, output_lengths,
             chunk: float, limit: float, slo_s: dict[str, float], per_request_s: dict[str, float],
             goodput: float, max_context: float = np.inf, prefix_share: float = 0.0, slots: float | None = None,
             kv_tokens: float = np.inf, thinking_lengths=None,
             answer_share: float = GROWING_ANSWER_SHARE) -> tuple[float, dict[str, np.ndarray], int, float]:
    """The highest Poisson rate (requests/s) at which every SLO percentile in `slo_s` (keys like
    ``ttft_p95`` or ``answer_start_p95``, seconds) holds and the goodput share reaches `goodput`. Rates are tried
    on a geometric grid up to `saturation_rate` (one vectorised evaluation), then, where the next fails by more
    than twice the share allowed, on :data:`FINE_RATE_POINTS` rates between the last that passes and it (a tail
    share can go from 10⁻¹⁴ to 0.6 across one grid step near the saturation), and each limit's margin is
    interpolated linearly between the last rate that passes and the next; the capacity is the lowest of those
    crossings, at most :data:`SATURATION_MARGIN` of the highest rate at which the queue holds (found on as many
    rates between the last tried that holds and the next, where that binds).
    Returns (rate, the metrics on the grid, index of the last grid rate that passes (-1: none passes; the rate
    can fall below that grid rate where the hold binds), the mean decoding concurrency at the rate returned).
    `slots`, `kv_tokens`, `thinking_lengths`, `answer_share`: see :func:`poisson_latency`."""
    grid = saturation_rate * _RATE_GRID

    def margins(rates: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Each limit's margin (rows: the SLO percentiles, then goodput; columns: the rates), ≥ 0 where it holds:
        for an SLO at percentile p the share of requests above its limit is at most 1 − p/100, for goodput the
        share within every limit reaches it; -inf where the queue does not hold."""
        res = poisson_latency(s, m, e, rates, input_lengths, output_lengths, chunk, limit, per_request_s, (),
                              max_context, slo_s, prefix_share, slots, kv_tokens, thinking_lengths=thinking_lengths,
                              answer_share=answer_share)
        rows = [1 - res[f"exceed_{name}"] / (1 - int(name.split("_p")[1]) / 100) for name in slo_s]
        rows.append((res["goodput"] - goodput) / max(goodput, 1e-9))
        return np.where(res["stable"][None, :], np.array(rows, dtype=float), -np.inf), res

    def refine(rates: np.ndarray, mg: np.ndarray, conc: np.ndarray, i: int) -> tuple[np.ndarray, ...]:
        """The rates, margins and concurrencies with FINE_RATE_POINTS rates put between rates[i] and the next."""
        between = rates[i] * (rates[i + 1] / rates[i]) ** (np.arange(1, FINE_RATE_POINTS + 1) / (FINE_RATE_POINTS + 1))
        mg_b, res_b = margins(between)
        return (np.concatenate([rates[:i + 1], between, rates[i + 1:]]),
                np.concatenate([mg[:, :i + 1], mg_b, mg[:, i + 1:]], axis=1),
                np.concatenate([conc[:i + 1], np.asarray(res_b["concurrency"], dtype=float), conc[i + 1:]]))

    mg, r = margins(grid)
    ok = (mg >= 0).all(axis=0)
    if not ok.any():
        return 0.0, r, -1, float(np.asarray(r["concurrency"], dtype=float)[0])
    k = int(np.max(np.nonzero(ok)[0]))
    rates, conc = grid, np.asarray(r["concurrency"], dtype=float)
    if k < len(grid) - 1 and not (mg[:, k + 1] >= -1).all():
        # the next rate fails by more than twice the share allowed (or the queue does not hold there): the margins
        # are far from linear between the two, so look between them (a second evaluation, about as dear as the grid)
        rates, mg, conc = refine(rates, mg, conc, k)
    j = int(np.max(np.nonzero((mg >= 0).all(axis=0))[0]))
    rate, at = float(rates[j]), float(conc[j])
    if j < len(rates) - 1 and np.isfinite(mg[:, j + 1]).all():
        # each limit's margin interpolated linearly to its crossing (it passes at j and one fails at j + 1, so
        # t < 1); the first crossing, and the concurrency there
        t = float(min(a / (a - b) for a, b in zip(mg[:, j], mg[:, j + 1], strict=True) if b < 0))
        rate = float(rates[j] + (rates[j + 1] - rates[j]) * t)
        at = float(conc[j] + (conc[j + 1] - conc[j]) * t) if np.isfinite(conc[j + 1]) else at
    # near the saturation the queue's latency grows without bound and the closed forms lose their grip: hold
    # SATURATION_MARGIN of the highest rate at which the queue holds
    held_at = int(np.max(np.nonzero(np.isfinite(mg).all(axis=0))[0]))
    if rate > SATURATION_MARGIN * rates[held_at] and held_at < len(rates) - 1:
        # that rate is known only to within a grid step: look between it and the next, where the queue fails
        rates, mg, conc = refine(rates, mg, conc, held_at)
    edge = float(rates[np.max(np.nonzero(np.isfinite(mg).all(axis=0))[0])])
    if rate > SATURATION_MARGIN * edge:
        rate = SATURATION_MARGIN * edge
        held = np.isfinite(conc)
        if held.any():  # linear in the rate between the two rates around it
            at = float(np.interp(rate, rates[held], conc[held]))
    return rate, r, k, at
