"""A discrete-event simulation of continuous batching on one engine replica.

Each engine step advances every decoding sequence by one token and, while prompts wait,
carries a chunk of prompt tokens (chunked prefill) up to ``max_num_batched_tokens``. New
requests are admitted when a sequence slot (``max_num_seqs``) and KV blocks for their prompt
are free; when decoding sequences outgrow the KV cache the newest is preempted (its KV freed,
recomputed later, as vLLM does). Prefix-cache hits skip the cached share of a prompt. Every
step's duration comes from the performance model (:class:`StepModel`).

Between events (an arrival, a finished prefill, a finished sequence, a full KV cache) the
batch does not change, so runs of decode-only steps are summed in closed form: the loop does
work per event, not per token, which is what lets a million requests run in seconds.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

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
        self._step, self._stretch = compiled(model)
        self._sliding, self._window = model.sliding, model.window  # prompts attend to the window on sliding layers
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
        self.dec_start: dict[int, tuple[int, int]] = {}  # rid -> (k when decoding began, context then)
        self.order: list[int] = []  # decoders in admission order (preemption takes the last)
        self.n_adm = 0
        self.n_dec = 0
        self.sum_ctx = 0.0
        self.kv = 0  # tokens held in the KV cache (prompts reserved at admission)
        self.busy = 0.0
        self.area = 0.0
        self.preemptions = 0
        self.steps = 0
        self.in_system = 0
        self.sample_s = sample_s
        self.next_sample = 0.0
        self.series: dict[str, list[float]] = {"t_s": [], "queue": [], "running": [], "kv_util": [], "busy": []}
        self._busy_mark = 0.0
        self.feed: deque[int] = deque()  # closed loop: sent one by one as requests finish (see `closed_loop`)

    # ------------------------------------------------------------------ bookkeeping
    def outstanding(self) -> int:
        return len(self.incoming) + self.in_system

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
            s["busy"].append(min(1.0, (self.busy - self._busy_mark) / self.sample_s) if self.next_sample else 0.0)
            self._busy_mark = self.busy
            self.next_sample += self.sample_s

    def _send_next(self) -> None:
        """A closed-loop client sends its next request the moment one finishes."""
        nxt = self.feed.popleft()
        self.arrival[nxt] = self.t
        self.incoming.append(nxt)

    def _finish_due(self) -> None:
        """Retire the sequences whose last token came at or before step k. (The counters are whole
        numbers, so summing them in another order gives the same floats.)"""
        heap, gen, dec_start, k, pop = self.heap, self.gen, self.dec_start, self.k, heapq.heappop
        finish, t, feed = self.finish, self.t, self.feed
        n_dec, sum_ctx, kv, n_adm, in_system = self.n_dec, self.sum_ctx, self.kv, self.n_adm, self.in_system
        while heap and heap[0][0] <= k:
            _, rid, g = pop(heap)
            if g != gen[rid]:
                continue
            k0, c0 = dec_start.pop(rid)
            ctx = c0 + (k - k0)
            n_dec -= 1
            sum_ctx -= ctx
            finish[rid] = t
            kv -= ctx
            n_adm -= 1
            in_system -= 1
            if feed:
                self._send_next()
        self.n_dec, self.sum_ctx, self.kv, self.n_adm, self.in_system = n_dec, sum_ctx, kv, n_adm, in_system
        if len(self.order) > 2 * n_dec + 64:
            self.order = [r for r in self.order if r in dec_start]

    def _preempt(self) -> None:
        """Free KV by sending the newest decoding sequences back to the queue (recomputed later)."""
        while self.kv > self.lim.kv_capacity_tokens and self.n_dec > 1:
            rid = self.order.pop()
            if rid not in self.dec_start:
                continue
            k0, c0 = self.dec_start.pop(rid)
            ctx = c0 + (self.k - k0)
            self.gen[rid] += 1
            self.n_dec -= 1
            self.sum_ctx -= ctx
            self.kv -= ctx
            self.n_adm -= 1
            generated = ctx - self.inp[rid]  # first token + the decode steps so far
            self.inp[rid] = ctx  # recompute prompt and generated tokens as a new prompt
            self.out[rid] -= generated
            self.cached[rid] = 0
            self.waiting.appendleft(rid)
            self.preemptions += 1

    # ------------------------------------------------------------------ the loop
    def advance_to(self, t_end: float) -> None:
        """Run until the engine is idle with nothing arriving before `t_end` (or past `t_end`: the
        step in progress at `t_end` completes). A replica already past `t_end` does nothing."""
        if self.t >= t_end:
            return
        inc, arr, waiting, heap, prefill = self.incoming, self.arrival, self.waiting, self.heap, self.prefill
        inp, cached, admit = self.inp, self.cached, self.admit
        max_seqs, kv_cap, step, stretch = self.lim.max_num_seqs, self.lim.kv_capacity_tokens, self._step, self._stretch
        while True:
            t = self.t
            while inc and arr[inc[0]] <= t:  # arrivals
                rid = inc.popleft()
                waiting.append(rid)
                self.in_system += 1
                self.area += t - arr[rid]  # it has been in the system (queued at the router) since it arrived
            n_adm = self.n_adm
            if waiting and n_adm < max_seqs:  # admission: a sequence slot and KV for the prompt
                kv = self.kv
                while waiting and n_adm < max_seqs:
                    rid = waiting[0]
                    size = inp[rid]
                    if kv + size > kv_cap and n_adm > 0:
                        break
                    waiting.popleft()
                    if admit[rid] != admit[rid]:  # NaN: first admission (a preempted sequence keeps its first)
                        admit[rid] = t
                    kv += size
                    n_adm += 1
                    prefill.append([rid, size - cached[rid], cached[rid]])
                self.kv, self.n_adm = kv, n_adm
            if prefill:
                self._prefill_step()
            elif self.n_dec:
                # a decode-only run until the next event: a sequence finishing, the KV cache full, the
                # next arrival, or `t_end` (where the caller may hand over a new request)
                n_dec, k, sum_ctx = self.n_dec, self.k, self.sum_ctx
                steps = heap[0][0] - k if heap else 1  # ≥ 1: finishes due by step k are done
                room = (kv_cap - self.kv) // n_dec
                if room < steps:
                    steps = room if room > 0 else 1
                nxt = arr[inc[0]] if inc else t_end
                if nxt > t_end:
                    nxt = t_end
                if nxt < math.inf:  # stop where the step in progress at the next arrival (or t_end) ends
                    until = int((nxt - t) / step(n_dec, sum_ctx)) + 1
                    if until < steps:
                        steps = until if until > 1 else 1
                dt = stretch(n_dec, sum_ctx, steps)
                self.area += self.in_system * dt
                self.t = t + dt
                self.busy += dt
                self.steps += steps
                k += steps
                self.k = k
                self.sum_ctx = sum_ctx + n_dec * steps
                self.kv += n_dec * steps
                if heap and heap[0][0] <= k:
                    self._finish_due()
                if self.kv > kv_cap:
                    self._preempt()
            else:
                if not inc:
                    return
                nxt = arr[inc[0]]
                if nxt > t_end:
                    return
                self.area += self.in_system * (nxt - t)
                self.t = nxt
            if self.t >= self.next_sample:
                self._sample()
            if self.t >= t_end:
                return

    def _prefill_step(self) -> None:
        """One step carrying prompt chunks (and every decoding sequence)."""
        n_dec, max_tok, prefill = self.n_dec, self.lim.max_num_batched_tokens, self.prefill
        budget = max_tok - n_dec
        if budget <= 0:
            budget = max(1, max_tok // 8)
        p_tok, p_ctx, done = 0, 0.0, 0
        sliding, window = self._sliding, self._window
        for item in prefill:
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
        dt = self._step(n_dec, self.sum_ctx, p_tok, p_ctx)
        self.area += self.in_system * dt
        t = self.t + dt
        self.t = t
        self.busy += dt
        self.steps += 1
        k = self.k + 1
        self.k = k
        sum_ctx, kv = self.sum_ctx + n_dec, self.kv + n_dec
        if done:
            first, out, inp, gen, dec_start, push, heap = (self.first, self.out, self.inp, self.gen, self.dec_start,
                                                           heapq.heappush, self.heap)
            for _ in range(done):  # finished prompts (a prefix of the FIFO) start decoding
                rid = prefill.popleft()[0]
                if first[rid] != first[rid]:  # NaN: a recomputed sequence's client already had its first token
                    first[rid] = t
                o = out[rid]
                ctx = inp[rid] + 1
                if o <= 1:  # done with its first token
                    self.finish[rid] = t
                    kv -= ctx
                    self.n_adm -= 1
                    self.in_system -= 1
                    if self.feed:
                        self._send_next()
                    continue
                dec_start[rid] = (k, ctx)
                push(heap, (k + o - 1, rid, gen[rid]))
                self.order.append(rid)
                n_dec += 1
                sum_ctx += ctx
                kv += 1
            self.n_dec = n_dec
        self.sum_ctx, self.kv = sum_ctx, kv
        heap = self.heap
        if heap and heap[0][0] <= k:
            self._finish_due()
        if self.kv > self.lim.kv_capacity_tokens:
            self._preempt()

    def result(self) -> ReplicaResult:
        self._sample()
        return ReplicaResult(np.array(self.first), np.array(self.finish), np.array(self.admit), self.busy, self.t,
                             self.area, self.preemptions, self.steps, self.series)


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
