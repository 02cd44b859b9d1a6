"""A discrete-event simulation of continuous batching on one engine replica.

Each engine step advances every decoding sequence by one token and, while prompts wait,
carries a chunk of prompt tokens (chunked prefill) up to ``max_num_batched_tokens``. New
requests are admitted when a sequence slot (``max_num_seqs``) and KV blocks for their prompt
are free; when decoding sequences outgrow the KV cache the newest is preempted (its KV freed,
recomputed later, as vLLM does). An engine that reserves KV blocks for the whole sequence at
admission (``reserve_answer``: TensorRT-LLM's GUARANTEED_NO_EVICT) admits a request only with room
for its prompt and its answer, and never preempts. Prefix-cache hits skip the cached share of a prompt. Every
step's duration comes from the performance model (:class:`StepModel`).

Between events (an arrival, a finished prefill, a finished sequence, a full KV cache) the
batch does not change, so runs of decode-only steps are summed in closed form: the loop does
work per event, not per token, which is what lets a million requests run in seconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from heapq import heappop, heappush

import numpy as np

from .stepmodel import StepModel, compiled
from .workload import Requests

NAN = float("nan")


@dataclass(frozen=True)
class EngineLimits:
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_capacity_tokens: int
    block_size: int = 16
    reserve_answer: bool = False  # KV blocks for prompt and answer taken at admission (no growth, no preemption)


@dataclass
class ReplicaResult:
    first_token_s: np.ndarray
    finish_s: np.ndarray
    admitted_s: np.ndarray
    busy_s: float
    end_s: float
    area_in_system: float  # ∫ (requests in the replica) dt, for Little's law
    preemptions: int
    steps: int
    series: dict[str, list[float]] = field(default_factory=dict)


MAX_SERIES_POINTS = 200_000  # per replica; the cluster widens the step so that arrivals span at most 50,000

class Replica:
    """One engine replica; requests are pushed with :meth:`submit` in arrival order."""

    def __init__(self, model: StepModel, limits: EngineLimits, reqs: Requests, sample_s: float = 60.0):
        self.m, self.lim = model, limits
        self._step, _, self._run = compiled(model)  # a step with prompts; a decode-only run
        self._sliding, self._window = model.sliding, model.window  # prompts attend to the window on sliding layers
        self._max_tok, self._kv_cap = limits.max_num_batched_tokens, limits.kv_capacity_tokens
        self._max_seqs = limits.max_num_seqs
        self._grow = 0 if limits.reserve_answer else 1  # KV tokens a sequence takes per token it writes
        self.inp = reqs.input_tokens.tolist()  # prompt tokens to (re)compute: grows on preemption
        self.out = reqs.output_tokens.tolist()  # output tokens still to generate
        self.cached = reqs.cached_tokens.tolist()
        self.arrival = reqs.arrival_s.tolist()
        n = len(self.inp)
        self.first = [NAN] * n
        self.finish = [NAN] * n
        self.admit = [NAN] * n
        self.t = 0.0
        self.k = 0  # decode steps so far
        self.incoming: deque[int] = deque()  # submitted, arrival in the future
        self.waiting: deque[int] = deque()
        self.prefill: deque[list[int]] = deque()  # [rid, tokens left, tokens done]
        self.heap: list[tuple[int, int, int]] = []  # (finish step, rid, generation)
        self.gen = [0] * n  # bumped on preemption: heap entries of an older generation are stale
        self.k0 = [-1] * n  # per request: the step k when it began decoding (-1: not decoding) ...
        self.c0 = [0] * n  # ... and its context then
        self.order: list[int] = []  # decoders in admission order (preemption takes the last)
        self.n_adm = 0
        self.n_dec = 0
        self.sum_ctx = 0.0
        self.kv = 0  # tokens held in the KV cache (prompts reserved at admission; answers too with reserve_answer)
        self.held = [0] * n  # per request: the KV tokens reserved at admission
        self.idle = 0.0  # time with nothing to run: busy time is t - idle (summed once, not per step)
        self.preemptions = 0
        self.sample_s = sample_s
        self.next_sample = 0.0
        self.series: dict[str, list[float]] = {"t_s": [], "queue": [], "running": [], "kv_util": [], "busy": []}
        self._busy_mark = 0.0
        self.feed: deque[int] = deque()  # closed loop: sent one by one as requests finish (see `closed_loop`)

    # ------------------------------------------------------------------ bookkeeping
    def outstanding(self) -> int:
        return len(self.incoming) + len(self.waiting) + self.n_adm  # not yet arrived, queued, admitted

    def submit(self, rid: int) -> None:
        self.incoming.append(rid)

    def _sample(self) -> None:
        if len(self.series["t_s"]) >= MAX_SERIES_POINTS:  # a drain far beyond the last arrival: stop recording
            self.next_sample = math.inf
            return
        while self.t >= self.next_sample and len(self.series["t_s"]) < MAX_SERIES_POINTS:
            s = self.series
            s["t_s"].append(self.next_sample)
            s["queue"].append(float(len(self.waiting)))
            s["running"].append(float(self.n_dec + len(self.prefill)))
            s["kv_util"].append(self.kv / self.lim.kv_capacity_tokens)
            busy = self.t - self.idle
            s["busy"].append(min(1.0, (busy - self._busy_mark) / self.sample_s) if self.next_sample else 0.0)
            self._busy_mark = busy
            self.next_sample += self.sample_s

    def _send_next(self, t: float) -> None:
        """A closed-loop client sends its next request the moment one finishes."""
        nxt = self.feed.popleft()
        self.arrival[nxt] = t
        self.incoming.append(nxt)

    def _preempt(self) -> None:
        """Free KV by sending the newest decoding sequences back to the queue (recomputed later)."""
        while self.kv > self.lim.kv_capacity_tokens and self.n_dec > 1:
            rid = self.order.pop()
            if self.k0[rid] < 0:
                continue
            ctx = self.c0[rid] + (self.k - self.k0[rid])
            self.k0[rid] = -1
            self.gen[rid] += 1
            self.n_dec -= 1
            self.sum_ctx -= ctx
            self.kv -= ctx if self._grow else self.held[rid]  # (a reserving engine never gets here: see advance_to)
            self.n_adm -= 1
            generated = ctx - self.inp[rid]  # first token + the decode steps so far
            self.inp[rid] = ctx  # recompute prompt and generated tokens as a new prompt
            self.out[rid] -= generated
            self.cached[rid] = 0
            self.waiting.appendleft(rid)
            self.preemptions += 1

    def _prefill_step(self, t: float, k: int, n_dec: int, n_adm: int, sum_ctx: float,
                      kv: int) -> tuple[float, int, int, int, float, int]:
        """One step carrying prompt chunks (and every decoding sequence); the prompts it finishes (a prefix
        of the FIFO) start decoding, or finish if one token was all they asked for. The loop's counters in
        and out: (t, k, n_dec, n_adm, sum_ctx, kv)."""
        max_tok, prefill = self._max_tok, self.prefill
        budget = max_tok - n_dec if max_tok > n_dec else max(1, max_tok // 8)
        item = prefill[0]
        if len(prefill) == 1 and item[1] <= budget and not self._sliding:  # one whole prompt (or its rest):
            take, start = item[1], item[2]  # `_chunks` with its sums of one term written out (0 + x is exact)
            p_tok, p_ctx, done = take, take * (start + take / 2), 1
            item[1], item[2] = 0, start + take
        else:
            p_tok, p_ctx, done = self._chunks(budget)
        t = t + self._step(n_dec, sum_ctx, p_tok, p_ctx)
        k += 1
        grow = self._grow
        sum_ctx, kv = sum_ctx + n_dec, kv + n_dec * grow
        first, out, inp, gen, k0, c0 = self.first, self.out, self.inp, self.gen, self.k0, self.c0
        for _ in range(done):
            rid = prefill.popleft()[0]
            if first[rid] != first[rid]:  # NaN: a recomputed sequence's client already had its first token
                first[rid] = t
            o = out[rid]
            ctx = inp[rid] + 1
            if o <= 1:  # done with its first token, which took no KV block: it frees what it held
                self.finish[rid] = t
                kv -= self.held[rid]
                n_adm -= 1
                if self.feed:
                    self._send_next(t)
                continue
            k0[rid] = k
            c0[rid] = ctx
            heappush(self.heap, (k + o - 1, rid, gen[rid]))
            self.order.append(rid)
            n_dec += 1
            sum_ctx += ctx
            kv += grow
        return t, k, n_dec, n_adm, sum_ctx, kv

    # ------------------------------------------------------------------ the loop
    def advance_to(self, t_end: float) -> None:
        """Run until the engine is idle with nothing arriving before `t_end` (or past `t_end`: the
        step in progress at `t_end` completes). A replica already past `t_end` does nothing.

        One event per pass: arrivals, admission, a step with prompt chunks or a decode-only run or idle time,
        retirement, preemption. The counters live in locals (the hot path) and go back to `self` where a helper
        reads them (whole numbers: summing them in another order gives the same floats)."""
        if self.t >= t_end or not (self.incoming or self.waiting or self.prefill or self.n_dec):
            return  # past `t_end`, or idle with nothing submitted (a router's call on a replica at rest)
        inc, arr, waiting, heap, prefill = self.incoming, self.arrival, self.waiting, self.heap, self.prefill
        inp, cached, admit, gen, k0, c0, finish, feed, order = (self.inp, self.cached, self.admit, self.gen, self.k0,
                                                                 self.c0, self.finish, self.feed, self.order)
        max_seqs, kv_cap, run, pop = self._max_seqs, self._kv_cap, self._run, heappop
        grow, held, out = self._grow, self.held, self.out
        t, k, n_dec, n_adm, sum_ctx, kv, idle = self.t, self.k, self.n_dec, self.n_adm, self.sum_ctx, self.kv, self.idle
        next_sample = self.next_sample
        while True:
            while inc and arr[inc[0]] <= t:  # arrivals
                waiting.append(inc.popleft())
            while waiting and n_adm < max_seqs:  # admission: FIFO, while a slot and KV for the prompt are free
                rid = waiting[0]
                size = inp[rid] if grow else inp[rid] + out[rid]
                if kv + size > kv_cap and n_adm > 0:
                    break
                held[rid] = size
                waiting.popleft()
                if admit[rid] != admit[rid]:  # NaN: first admission (a preempted sequence keeps its first)
                    admit[rid] = t
                kv += size
                n_adm += 1
                prefill.append([rid, inp[rid] - cached[rid], cached[rid]])  # [rid, tokens left, tokens done]
            if prefill:
                t, k, n_dec, n_adm, sum_ctx, kv = self._prefill_step(t, k, n_dec, n_adm, sum_ctx, kv)
            elif n_dec:
                # a decode-only run until a sequence finishes, the KV cache fills, the next arrival or `t_end`
                steps = heap[0][0] - k if heap else 1  # ≥ 1: finishes due by step k are done
                room = (kv_cap - kv) // n_dec if grow else steps
                if room < steps:
                    steps = room if room > 0 else 1
                nxt = arr[inc[0]] if inc else t_end
                if nxt > t_end:
                    nxt = t_end
                # stop where the step in progress at the next arrival (or t_end) ends
                steps, dt = run(n_dec, sum_ctx, steps, nxt - t)
                t = t + dt
                k += steps
                grown = n_dec * steps
                sum_ctx = sum_ctx + grown
                kv += grown * grow
            else:  # idle until the next arrival
                if not inc:
                    break
                nxt = arr[inc[0]]
                if nxt > t_end:
                    break
                idle += nxt - t
                t = nxt
            while heap and heap[0][0] <= k:  # retire the sequences whose last token came at or before step k
                _, rid, g = pop(heap)
                if g != gen[rid]:  # preempted since: a stale entry
                    continue
                ctx = c0[rid] + (k - k0[rid])
                k0[rid], finish[rid] = -1, t
                n_dec, n_adm, sum_ctx, kv = n_dec - 1, n_adm - 1, sum_ctx - ctx, kv - (ctx if grow else held[rid])
                if feed:
                    self._send_next(t)
                if len(order) > 2 * n_dec + 64:  # drop the retired from the preemption order now and then
                    order[:] = [r for r in order if k0[r] >= 0]
            if kv > kv_cap:
                self.t, self.k, self.n_dec, self.n_adm, self.sum_ctx, self.kv = t, k, n_dec, n_adm, sum_ctx, kv
                self._preempt()
                n_dec, n_adm, sum_ctx, kv = self.n_dec, self.n_adm, self.sum_ctx, self.kv
            if t >= next_sample:
                self.t, self.n_dec, self.kv, self.idle = t, n_dec, kv, idle
                self._sample()
                next_sample = self.next_sample
            if t >= t_end:
                break
        self.t, self.k, self.n_dec, self.n_adm, self.sum_ctx, self.kv, self.idle = t, k, n_dec, n_adm, sum_ctx, kv, idle

    def _chunks(self, budget: int) -> tuple[int, float, int]:
        """Take prompt chunks from the FIFO up to `budget` tokens: (tokens, keys they attend to, prompts
        finished)."""
        p_tok, p_ctx, done = 0, 0.0, 0
        sliding, window = self._sliding, self._window
        for item in self.prefill:
            if budget <= 0:
                break
            left = item[1]
            take = left if left < budget else budget
            start = item[2]
            keys = take * (start + take / 2)  # the chunk's queries attend to every earlier position ...
            if sliding:  # ... except on sliding layers, where each sees at most `window` keys
                below = min(max(window - start, 0.0), take)
                keys = (1 - sliding) * keys + sliding * (below * (start + below / 2) + (take - below) * window)
            p_ctx += keys
            item[1] = left - take
            item[2] += take
            budget -= take
            p_tok += take
            if left == take:
                done += 1
        return p_tok, p_ctx, done

    def result(self) -> ReplicaResult:
        self._sample()
        n = len(self.first)
        first, finish, admit, arrival = (np.fromiter(x, float, n) for x in (self.first, self.finish, self.admit,
                                                                            self.arrival))
        # ∫ (requests in the replica) dt = Σ (finish − arrival) over its requests, all finished by now (time
        # queued at the router counts: a request is in the system from its arrival)
        area = float(np.nansum(finish - arrival))
        return ReplicaResult(first, finish, admit, self.t - self.idle, self.t, area, self.preemptions, self.k,
                             self.series)


def simulate_replica(model: StepModel, limits: EngineLimits, reqs: Requests, sample_s: float = 60.0) -> ReplicaResult:
    """All requests on one replica."""
    r = Replica(model, limits, reqs, sample_s)
    r.incoming.extend(range(len(reqs)))
    r.advance_to(math.inf)
    return r.result()


def closed_loop(model: StepModel, limits: EngineLimits, reqs: Requests, clients: int,
                sample_s: float = 60.0) -> ReplicaResult:
    """A client that keeps at most `clients` requests in flight (``--max-concurrency``): the first
    `clients` are sent at time 0, each further one when an earlier one finishes. The requests'
    arrival times are ignored (and overwritten with the send times)."""
    reqs.arrival_s[:] = 0.0
    r = Replica(model, limits, reqs, sample_s)
    n = len(reqs)
    r.incoming.extend(range(min(clients, n)))
    r.feed.extend(range(min(clients, n), n))
    r.advance_to(math.inf)
    out = r.result()
    reqs.arrival_s[:] = r.arrival
    return out
