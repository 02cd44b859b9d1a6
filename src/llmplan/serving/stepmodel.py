"""The performance model's step time, specialised to plain floats for the simulator's inner
loop (the same formulas as `perf.physics.step_time`, checked against it in the tests)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..perf.physics import ACT_BYTES, Efficiency, Machine, StageShape, allreduce_s, flops_rate


@dataclass
class StepModel:
    dense_bytes: float
    expert_bytes: float  # bytes of all routed experts of the stage (one GPU)
    n_experts: float
    k_over_e: float
    kv_bytes: float
    state_equiv: float
    flops_tok: float  # expert FLOPs already scaled by 1 / eta_moe
    attn: float
    window: float
    sliding: float
    comm_layers: float  # all-reduces per step: 2 per layer (0 without tensor parallelism)
    comm_bytes: float  # bytes each all-reduce moves per token
    machine: Machine  # for the measured all-reduce cost
    bw: float  # effective bytes/s
    peak: float  # effective FLOP/s
    pp: float
    overhead: float
    eta_moe: float

    @classmethod
    def build(cls, s: StageShape, m: Machine, e: Efficiency) -> StepModel:
        def f(x: object) -> float:
            return float(x)  # type: ignore[arg-type]

        tp = f(m.tp)
        layers = f(s.layers)
        moe = f(e.eta_moe)
        return cls(
            dense_bytes=f(s.dense_weight_bytes), expert_bytes=f(s.expert_bytes_per_layer) * f(s.moe_layers)
            * f(s.num_experts), n_experts=f(s.num_experts),
            k_over_e=(f(s.experts_per_token) / f(s.num_experts)) if f(s.num_experts) else 0.0,
            kv_bytes=f(s.kv_bytes_per_token), state_equiv=f(s.state_tokens_equiv),
            flops_tok=f(s.flops_per_token) + f(s.expert_flops_per_token) * (1 / moe - 1), attn=f(s.attn_flops_per_ctx_token),
            window=f(s.window), sliding=f(s.sliding_fraction), comm_layers=2 * layers if tp > 1 else 0.0,
            comm_bytes=f(s.hidden) * ACT_BYTES, machine=m,
            bw=f(m.bandwidth) * f(e.eta_bw), peak=f(flops_rate(m, e)), pp=f(m.pp),
            overhead=f(e.step_overhead_s), eta_moe=moe)

    def _comm(self, tokens: float) -> float:
        """All-reduce time of a step carrying `tokens` tokens (the measured cost, physics.allreduce_s)."""
        if not self.comm_layers:
            return 0.0
        return self.comm_layers * float(allreduce_s(self.machine, tokens * self.comm_bytes))

    def _experts(self, tokens: float) -> float:
        if not self.n_experts:
            return 0.0
        return self.expert_bytes * (1.0 - (1.0 - self.k_over_e) ** tokens) / self.eta_moe

    def step(self, n_dec: float, sum_ctx: float, p_tok: float = 0.0, p_ctx: float = 0.0) -> float:
        """One step: `n_dec` decoding sequences holding `sum_ctx` tokens of context in all, and
        `p_tok` prompt tokens whose queries attend to `p_ctx` keys in all. An engine that keeps
        prompts out of decode steps (vLLM V0 without chunked prefill) runs them as a step of their own."""
        if p_tok > 0 and n_dec > 0 and float(self.machine.mixed_prefill) < 0.5:
            return self.step(n_dec, sum_ctx) + self.step(0.0, 0.0, p_tok, p_ctx)
        tokens = n_dec + p_tok
        mb = min(max(tokens, 1.0), self.pp) if self.pp > 1 else 1.0
        attended = sum_ctx if self.sliding == 0 else (
            (1 - self.sliding) * sum_ctx + self.sliding * min(sum_ctx, n_dec * self.window))
        t_mem = (self.dense_bytes + self._experts(tokens / mb) + (sum_ctx + n_dec * self.state_equiv) * self.kv_bytes
                 / mb) / self.bw
        t_cmp = (self.flops_tok * tokens + self.attn * (attended + p_ctx)) / mb / self.peak
        comm = self._comm(tokens / mb)
        factor = max(mb, self.pp)
        return factor * (max(t_mem, t_cmp) + comm) + self.overhead

    def stretch(self, n: float, sum_ctx: float, m: int) -> float:
        """Total time of `m` decode-only steps with `n` sequences, context growing by n a step.
        Memory and compute time are each linear in the context; their max switches at most once."""
        if m <= 0:
            return 0.0
        if self.sliding or self.pp > 1:  # not linear: sum step by step at the ends and the middle
            return m * self.step(n, sum_ctx + n * (m - 1) / 2)
        e = self._experts(n)
        a_m = (self.dense_bytes + e + n * self.state_equiv * self.kv_bytes) / self.bw
        b_m = self.kv_bytes / self.bw
        a_c = self.flops_tok * n / self.peak
        b_c = self.attn / self.peak
        fixed = m * (self._comm(n) + self.overhead)
        s_end = sum_ctx + n * (m - 1)

        def lin(a: float, b: float, j0: int, j1: int) -> float:  # Σ_{j=j0}^{j1-1} a + b (S + j n)
            cnt = j1 - j0
            return cnt * (a + b * sum_ctx) + b * n * (j1 * (j1 - 1) - j0 * (j0 - 1)) / 2 if cnt > 0 else 0.0

        mem_start, mem_end = a_m + b_m * sum_ctx >= a_c + b_c * sum_ctx, a_m + b_m * s_end >= a_c + b_c * s_end
        if mem_start == mem_end:
            return fixed + (lin(a_m, b_m, 0, m) if mem_start else lin(a_c, b_c, 0, m))
        # crossing: a_m + b_m S = a_c + b_c S
        s_star = (a_c - a_m) / (b_m - b_c) if b_m != b_c else sum_ctx
        j = int(min(max(math.ceil((s_star - sum_ctx) / n), 0), m)) if n else 0
        first = lin(a_m, b_m, 0, j) if mem_start else lin(a_c, b_c, 0, j)
        second = lin(a_m, b_m, j, m) if mem_end else lin(a_c, b_c, j, m)
        return fixed + first + second
