"""From step times to what users measure: batch-1 speeds, TTFT, TPOT and throughput at a
concurrency, at an offered request rate, and with the engine saturated.

All functions are vectorised (numpy arrays or floats). The metric definitions are those of
DESIGN.md: TTFT from arrival to first token under continuous batching (queueing + prefill
interleaved with other requests' decode); TPOT the mean time per output token after the
first; output throughput over all GPUs of the deployment.

Continuous batching in steady state: with C sequences in flight, every engine step advances
each of them by one token and, by work conservation, carries on average ``C × I / O`` new
prompt tokens (chunked prefill). So ``TPOT(C)`` is the time of such a mixed step, and the
output throughput ``C / TPOT(C)``. Sequences beyond the engine's limit (``max_num_seqs``, or
what the KV cache holds) wait in a queue.

In a closed loop a request's own prompt never shares a step with its own decodes: the prompts
that land in its O − 1 decode steps are those of the other C − 1 clients, one each per cycle,
``(C − 1) × I / (O − 1)`` tokens a step (:func:`closed_prompts`). One client alone decodes in
steps of its own, whatever the lengths; with many clients this is the ``C × I / O`` above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .physics import Efficiency, Machine, StageShape, step_time

BISECTION_STEPS = 20  # resolution of Little's-law solutions: 2^-20 (one in a million) of the engine's limit
BRACKET_POINTS = 32  # points per round of the bracket search (5 bits a round)


def prefill_time(s: StageShape, m: Machine, e: Efficiency, tokens, context_before, chunk, batch_decode=0.0,
                 decode_context=0.0):
    """Prefill `tokens` prompt tokens (after `context_before` cached ones) in chunks of at
    most `chunk` tokens, each chunk step also carrying `batch_decode` running sequences."""
    tokens = np.asarray(tokens, dtype=float)
    room = np.maximum(chunk - batch_decode, np.maximum(chunk / 4, 1.0))
    n = np.maximum(1.0, np.ceil(tokens / room))
    # the n chunks flow through the pipeline stages one after another (fill + drain once)
    st = step_time(s, m, e, decode_tokens=batch_decode * n, decode_context=decode_context, prefill_tokens=tokens,
                   prefill_context=context_before + tokens / 2, microbatches=n, steady=False)
    return st.total + (n - 1) * e.step_overhead_s, st, n


def decode_step(s: StageShape, m: Machine, e: Efficiency, batch, context):
    return step_time(s, m, e, decode_tokens=batch, decode_context=context)


def open_prompts(concurrency, input_len, output_len):
    """Prompt tokens per decode step with requests arriving independently (an open loop):
    ``C × I / O``, C the mean number of requests in the engine (Little's law)."""
    return concurrency * np.asarray(input_len, dtype=float) / np.maximum(output_len, 1.0)


def closed_prompts(concurrency, input_len, output_len):
    """Prompt tokens per decode step of a request in a closed loop of C clients: the other
    C − 1 clients send one prompt each while it decodes its O − 1 tokens. Zero for one client."""
    return (np.maximum(np.asarray(concurrency, dtype=float) - 1.0, 0.0) * np.asarray(input_len, dtype=float)
            / np.maximum(np.asarray(output_len, dtype=float) - 1.0, 1.0))


def mixed_step(s: StageShape, m: Machine, e: Efficiency, concurrency, input_len, output_len, prompt_tokens=None):
    """One step of continuous batching at `concurrency`: every sequence decodes one token and
    the step carries its share of new prompts, `prompt_tokens` (default :func:`open_prompts`,
    C × I / O tokens)."""
    o = np.maximum(output_len, 1.0)
    per_step = open_prompts(concurrency, input_len, output_len) if prompt_tokens is None else prompt_tokens
    return step_time(s, m, e, decode_tokens=concurrency, decode_context=input_len + o / 2,
                     prefill_tokens=per_step, prefill_context=input_len / 2)


def lumpy_steps(s: StageShape, m: Machine, e: Efficiency, concurrency, input_len, output_len, chunk,
                prompt_tokens=None):
    """Steps at `concurrency` when new prompts come one at a time (requests arriving at a rate,
    or replacing finished ones out of step): the same `prompt_tokens` per step on average
    (default C × I / O), but carried whole by a share f of the steps. Returns (f, the time of
    such a heavy step with ``lump = min(I, budget)`` prompt tokens, the time of a decode-only step)."""
    o = np.maximum(output_len, 1.0)
    i = np.asarray(input_len, dtype=float)
    per_step = open_prompts(concurrency, i, o) if prompt_tokens is None else prompt_tokens
    lump = np.maximum(np.minimum(i, np.maximum(chunk - concurrency, chunk / 8)), 1.0)
    share = np.clip(per_step / lump, 1e-9, 1.0)
    heavy = step_time(s, m, e, decode_tokens=concurrency, decode_context=i + o / 2, prefill_tokens=per_step / share,
                      prefill_context=i / 2).total
    light = decode_step(s, m, e, concurrency, i + o / 2).total
    return share, heavy, light


def lumpy_step_s(s: StageShape, m: Machine, e: Efficiency, concurrency, input_len, output_len, chunk,
                 prompt_tokens=None):
    """The mean step time of :func:`lumpy_steps`, ``f × τ(C, lump) + (1 − f) × τ(C, 0)``: a prompt
    that lands in a step mostly decoding is not hidden under that step's memory time, as the even
    spread of :func:`mixed_step` assumes."""
    share, heavy, light = lumpy_steps(s, m, e, concurrency, input_len, output_len, chunk, prompt_tokens)
    return share * heavy + (1 - share) * light


@dataclass(frozen=True)
class LoadResult:
    ttft_s: object
    tpot_s: object
    e2e_s: object
    requests_s: object
    output_tok_s: object
    total_tok_s: object
    running: object  # sequences the engine runs at once
    saturated: object  # bool array: the offered load exceeds what the engine serves
    prompt_tokens: object  # prompt tokens per decode step (open_prompts or closed_prompts, at most step_room)


def _at(s, m, e, c, i, o, chunk, lumps=False, closed=False):
    """TTFT, TPOT, E2E with `c` sequences in the engine (no queue); `lumps`: prompts arrive one at
    a time (:func:`lumpy_step_s`) instead of evenly spread; `closed`: `c` clients each waiting for
    their last answer (:func:`closed_prompts`) rather than independent arrivals."""
    # decodes go first and a step holds at most `chunk` tokens: prompt tokens beyond the rest of the budget
    # wait for later steps (their time shows in the TTFT, through the bound of :func:`prompts_floor_s`)
    per_step = step_prompts(c, i, o, chunk, closed)
    tpot = lumpy_step_s(s, m, e, c, i, o, chunk, per_step) if lumps else mixed_step(s, m, e, c, i, o, per_step).total
    ttft, _, _ = prefill_time(s, m, e, i, 0.0, chunk, batch_decode=np.maximum(c - 1, 0.0),
                              decode_context=i + np.maximum(o, 1.0) / 2)
    ttft = ttft + e.request_overhead_s
    e2e = ttft + np.maximum(o - 1, 0.0) * tpot
    return ttft, tpot, e2e


def step_room(decoding, chunk):
    """Prompt tokens a step has room for once `decoding` sequences have their token (decodes are scheduled
    first; a step holds at most `chunk` tokens, and at least a quarter of it goes to prompts, as in
    :func:`prefill_time`)."""
    return np.maximum(chunk - decoding, np.maximum(chunk / 4, 1.0))


def step_prompts(c, i, o, chunk, closed=False):
    """Prompt tokens a decode step carries with `c` sequences decoding: :func:`closed_prompts` (or
    :func:`open_prompts`), at most the room the step's budget leaves (:func:`step_room`)."""
    return np.minimum((closed_prompts if closed else open_prompts)(c, i, o), step_room(c, chunk))


def prompts_floor_s(s: StageShape, m: Machine, e: Efficiency, count, input_len, output_len=1.0, chunk=np.inf):
    """A lower bound on the time to prefill `count` prompts of `input_len` tokens: in steps of at most `chunk`
    tokens (each also decoding the sequences already past their prompt: `count` × (O − 1) decode tokens over
    the whole run), else all in one step, the weights read once. Whatever the answers' lengths, an engine
    serves at most `count` requests per this time (with one-token answers no decode step carries the prompts,
    so nothing else bounds it)."""
    i, o = np.asarray(input_len, dtype=float), np.maximum(np.asarray(output_len, dtype=float), 1.0)
    total = count * i
    steps = np.maximum(total / step_room(0.0, chunk), 1.0)
    decoding = np.minimum(count * (o - 1) / steps, count)  # decode tokens per step while the prompts go through
    steps = np.maximum(total / step_room(decoding, chunk), 1.0)
    return steps * step_time(s, m, e, decode_tokens=decoding, decode_context=i + o / 2,
                             prefill_tokens=total / steps, prefill_context=i / 2).total


def closed_loop(s: StageShape, m: Machine, e: Efficiency, clients, input_len, output_len, limit, chunk,
                lumps=False) -> LoadResult:
    """`clients` users each sending the next request as soon as the last one finished.
    The engine runs at most `limit` of them; the rest wait (their TTFT includes the wait)."""
    i, o = np.asarray(input_len, dtype=float), np.asarray(output_len, dtype=float)
    running = np.minimum(clients, limit)
    ttft, tpot, e2e = _at(s, m, e, running, i, o, chunk, lumps, closed=True)
    # a request's own overhead (API, tokenizer) keeps its client waiting, but when requests queue the
    # engine is never idle for it: then only the engine's time per request counts
    busy = np.where(clients >= limit, e2e - e.request_overhead_s, e2e)
    # work conservation: each cycle the engine prefills every running client's prompt once. The decode steps
    # carry the other clients' prompts (closed_prompts), but a one-token answer has none, so that work is
    # bounded here: at least all of it in one step, the weights read once. Where it binds, the prompts queue
    # and the wait shows in the TTFT.
    prefill_all = prompts_floor_s(s, m, e, running, i, o, chunk)
    prefill_bound = prefill_all > busy
    busy = np.maximum(busy, prefill_all)
    req_s = running / busy
    cycle = clients / req_s  # each client's request-to-request time
    ttft_client = np.where((clients > running) | prefill_bound, cycle - np.maximum(o - 1, 0.0) * tpot, ttft)
    return LoadResult(ttft_client, tpot, ttft_client + np.maximum(o - 1, 0.0) * tpot, req_s, req_s * o,
                      req_s * (i + o), running, clients > running,
                      step_prompts(running, i, o, chunk, closed=True))


def lockstep_loop(s: StageShape, m: Machine, e: Efficiency, clients, input_len, output_len, limit,
                  chunk) -> LoadResult:
    """`clients` closed-loop users sending requests of fixed lengths (a client capped at C in
    flight, or an engine kept full by a queue). Requests that start together finish together,
    so their replacements arrive together: the start-up wave repeats every O steps. Of each
    period, ``n_h = C I / B`` steps (at least one) carry the prompts of the replacements, the
    other ``O − n_h`` decode only; a request's TTFT is one such heavy step, its E2E one period.
    Where the prompts need more than a period (``n_h ≥ O``) the wave never ends, and the
    uniform mix of :func:`closed_loop` is the steady state."""
    i, o = np.asarray(input_len, dtype=float), np.asarray(output_len, dtype=float)
    running = np.minimum(clients, limit)
    budget = np.maximum(chunk - running, chunk / 8)
    heavy = np.maximum(running * i / budget, 1.0)
    ctx = i + np.maximum(o, 1.0) / 2
    t_heavy = step_time(s, m, e, decode_tokens=running * (1 - 1 / heavy), decode_context=ctx,
                        prefill_tokens=running * i / heavy, prefill_context=i / 2).total
    t_dec = decode_step(s, m, e, running, ctx).total
    tpot = ((heavy - 1) * t_heavy + np.maximum(o - heavy, 0.0) * t_dec) / np.maximum(o - 1, 1.0)
    ttft = t_heavy + e.request_overhead_s
    e2e = ttft + np.maximum(o - 1, 0.0) * tpot
    busy = np.where(clients >= limit, e2e - e.request_overhead_s, e2e)
    req_s = running / busy
    ttft_client = np.where(clients > running, clients / req_s - np.maximum(o - 1, 0.0) * tpot, ttft)
    mine = LoadResult(ttft_client, tpot, ttft_client + np.maximum(o - 1, 0.0) * tpot, req_s, req_s * o,
                      req_s * (i + o), running, clients > running,
                      step_prompts(running, i, o, chunk))
    uniform = closed_loop(s, m, e, clients, i, o, limit, chunk, lumps=True)
    wave = heavy < np.maximum(o, 1.0)
    return LoadResult(**{f: np.where(wave, getattr(mine, f), getattr(uniform, f)) for f in mine.__dataclass_fields__})


def open_loop(s: StageShape, m: Machine, e: Efficiency, rate, input_len, output_len, limit, chunk,
              num_requests=np.inf) -> LoadResult:
    """Requests arriving at `rate` per second. Below capacity the engine holds C sequences
    with C = rate × E2E(C) (Little's law, solved by bisection); above it, the engine runs at
    its limit and a run of `num_requests` requests queues: the mean wait is
    ``N/2 × (1/μ − 1/λ)`` for N requests arriving at λ and served at μ."""
    i, o = np.asarray(input_len, dtype=float), np.asarray(output_len, dtype=float)
    rate = np.asarray(rate, dtype=float)
    limit = np.asarray(limit, dtype=float) + 0 * rate
    _, _, e2e_max = _at(s, m, e, limit, i, o, chunk)
    mu = limit / np.maximum(e2e_max, prompts_floor_s(s, m, e, limit, i, o, chunk))  # at most the prompts' own rate
    saturated = rate >= mu
    # Little's law by a K-ary bracket search: each round evaluates K − 1 points of the bracket at once
    # (one vectorised step-time call) and keeps the sub-interval where C = rate × E2E(C) crosses over,
    # the same answer as bisection to a relative 2^-BISECTION_STEPS of the limit in far fewer calls
    lo, hi = np.zeros_like(limit), limit.copy()
    # the bracket's points on a LEADING axis, so that per-row arrays in s, m, e (validation) still broadcast
    frac = (np.arange(1, BRACKET_POINTS) / BRACKET_POINTS).reshape((BRACKET_POINTS - 1,) + (1,) * lo.ndim)
    for _ in range(-(-BISECTION_STEPS // int(np.log2(BRACKET_POINTS)))):
        width = hi - lo
        mids = lo + width * frac
        _, _, e2e = _at(s, m, e, np.maximum(mids, 1e-9), i, o, chunk)
        too_few = rate * e2e > mids
        n = np.where(too_few.all(0), BRACKET_POINTS - 1, np.argmax(~too_few, axis=0))
        lo, hi = lo + width * n / BRACKET_POINTS, lo + width * (n + 1) / BRACKET_POINTS
    c = np.where(saturated, limit, np.maximum(hi, 1.0))
    ttft, tpot, e2e = _at(s, m, e, c, i, o, chunk)
    served = np.where(saturated, mu, rate)
    wait = np.where(saturated & np.isfinite(num_requests),
                    np.asarray(num_requests, dtype=float) / 2 * (1 / mu - 1 / np.maximum(rate, 1e-12)), 0.0)
    wait = np.where(np.isfinite(wait), wait, 0.0)
    return LoadResult(ttft + wait, tpot, e2e + wait, served, served * o, served * (i + o), c, saturated,
                      step_prompts(c, i, o, chunk))
