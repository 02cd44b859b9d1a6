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

from .stepmodel import StepModel
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

    def _advance(self, dt: float) -> None:
        self.area += self.in_system * dt
        self.t += dt
        self.busy += dt

    def _arrive_until(self, t: float) -> None:
        inc, arr = self.incoming, self.arrival
        while inc and arr[inc[0]] <= t:
            rid = inc.popleft()
            self.waiting.append(rid)
            self.in_system += 1
            self.area += t - arr[rid]  # it has been in the system (queued at the router) since it arrived

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

    def _admit(self) -> None:
        lim = self.lim
        while self.waiting and self.n_adm < lim.max_num_seqs:
            rid = self.waiting[0]
            need = self.inp[rid] - self.cached[rid]
            if self.kv + self.inp[rid] > lim.kv_capacity_tokens and self.n_adm > 0:
                break
            self.waiting.popleft()
            self.admit[rid] = self.t if math.isnan(self.admit[rid]) else self.admit[rid]
            self.kv += self.inp[rid]
            self.n_adm += 1
            self.prefill.append([rid, need, self.cached[rid]])

    def _start_decode(self, rid: int) -> None:
        if math.isnan(self.first[rid]):
            self.first[rid] = self.t  # a recomputed sequence's client already had its first token
        o = self.out[rid]
        ctx = self.inp[rid] + 1
        if o <= 1:
            self._retire(rid, ctx)
            return
        self.dec_start[rid] = (self.k, ctx)
        heapq.heappush(self.heap, (self.k + o - 1, rid, self.gen[rid]))
        self.order.append(rid)
        self.n_dec += 1
        self.sum_ctx += ctx
        self.kv += 1

    def _retire(self, rid: int, ctx: int) -> None:
        self.finish[rid] = self.t
        self.kv -= ctx
        self.n_adm -= 1
        self.in_system -= 1
        if self.feed:  # a closed-loop client sends its next request the moment one finishes
            nxt = self.feed.popleft()
            self.arrival[nxt] = self.t
            self.incoming.append(nxt)

    def _finish_due(self) -> None:
        heap = self.heap
        while heap and heap[0][0] <= self.k:
            _, rid, g = heapq.heappop(heap)
            if g != self.gen[rid]:
                continue
            k0, c0 = self.dec_start.pop(rid)
            ctx = c0 + (self.k - k0)
            self.n_dec -= 1
            self.sum_ctx -= ctx
            self._retire(rid, ctx)
        if len(self.order) > 2 * self.n_dec + 64:
            self.order = [r for r in self.order if r in self.dec_start]

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
        m, lim = self.m, self.lim
        while True:
            self._arrive_until(self.t)
            self._admit()
            if self.prefill:
                budget = lim.max_num_batched_tokens - self.n_dec
                if budget <= 0:
                    budget = max(1, lim.max_num_batched_tokens // 8)
                p_tok, p_ctx, done = 0, 0.0, []
                for item in self.prefill:
                    if budget <= 0:
                        break
                    take = min(item[1], budget)
                    p_ctx += take * (item[2] + take / 2)
                    item[1] -= take
                    item[2] += take
                    budget -= take
                    p_tok += take
                    if item[1] == 0:
                        done.append(item)
                dt = m.step(self.n_dec, self.sum_ctx, p_tok, p_ctx)
                self._advance(dt)
                self.steps += 1
                self.k += 1
                self.sum_ctx += self.n_dec
                self.kv += self.n_dec
                for item in done:  # finished prompts are a prefix of the FIFO
                    self.prefill.popleft()
                    self._start_decode(item[0])
                self._finish_due()
                if self.kv > lim.kv_capacity_tokens:
                    self._preempt()
            elif self.n_dec:
                # decode-only run until the next event
                steps = self.heap[0][0] - self.k if self.heap else 1
                room = (lim.kv_capacity_tokens - self.kv) // max(self.n_dec, 1)
                steps = max(1, min(steps, room if room > 0 else 1))
                # stop at the next arrival, and where the caller will hand over a new request
                nxt = min(self.arrival[self.incoming[0]] if self.incoming else math.inf, t_end)
                if nxt < math.inf:
                    one = m.step(self.n_dec, self.sum_ctx)
                    steps = max(1, min(steps, int((nxt - self.t) / one) + 1))
                dt = m.stretch(self.n_dec, self.sum_ctx, steps)
                self._advance(dt)
                self.steps += steps
                self.k += steps
                self.sum_ctx += self.n_dec * steps
                self.kv += self.n_dec * steps
                self._finish_due()
                if self.kv > lim.kv_capacity_tokens:
                    self._preempt()
            else:
                if not self.incoming:
                    return
                nxt = self.arrival[self.incoming[0]]
                if nxt > t_end:
                    return
                self.area += self.in_system * (nxt - self.t)
                self.t = nxt
            if self.t >= self.next_sample:
                self._sample()
            if self.t >= t_end:
                return

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
