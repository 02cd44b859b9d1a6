"""The performance model's step time, specialised to plain floats for the simulator's inner
loop (the same formulas as `perf.physics.step_time`, checked against it in the tests)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..perf.physics import ACT_BYTES, Efficiency, Machine, StageShape, activation_time, attention_rate, flops_rate


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
    dp_ranks: float  # data-parallel attention: the TP size (1: none; physics.prompt_imbalance_flops) ...
    p_lin: float  # ... and the attention projections' FLOPs per token
    scores: float  # seconds per (query, key) pair of unfused attention (its scores' memory pass; 0 when fused)
    window: float
    sliding: float
    comm_layers: float  # all-reduces per step: 2 per layer (0 without tensor parallelism)
    lib_lat: float  # one all-reduce with the library: latency (s) ...
    lib_k: float  # ... plus this many seconds per token of the step
    own_lat: float  # the engine's own all-reduce kernel (inf where it has none)
    own_k: float
    apart: bool  # prompts run in steps of their own (vLLM V0 without chunked prefill)
    bw: float  # effective bytes/s
    peak: float  # effective FLOP/s
    pp: float
    overhead: float
    act: float  # seconds per token and stage pass of the kernels between the GEMMs (physics.activation_time)
    eta_moe: float

    @classmethod
    def build(cls, s: StageShape, m: Machine, e: Efficiency) -> StepModel:
        def f(x: object) -> float:
            return float(x)  # type: ignore[arg-type]

        tp = f(m.tp)
        layers = f(s.layers)
        moe = f(e.eta_moe)
        per_token = f(s.hidden) * ACT_BYTES * 2 * (tp - 1) / tp  # bytes x 2 (TP-1)/TP, as physics.allreduce_s
        return cls(
            dense_bytes=f(s.dense_weight_bytes),
            expert_bytes=f(s.expert_bytes_per_layer) * f(s.moe_layers) * f(s.num_experts),
            n_experts=f(s.num_experts),
            k_over_e=(f(s.experts_per_token) / f(s.num_experts)) if f(s.num_experts) else 0.0,
            kv_bytes=f(s.kv_bytes_per_token),
            state_equiv=f(s.state_tokens_equiv),
            flops_tok=f(s.flops_per_token) + f(s.expert_flops_per_token) * (1 / moe - 1),
            # attention FLOPs per pair, scaled so that dividing by the GEMMs' rate gives attention's own time
            attn=f(s.attn_flops_per_ctx_token) * f(flops_rate(m, e)) / f(attention_rate(m, e)),
            dp_ranks=f(s.dp_attention_ranks),
            p_lin=f(s.attn_linear_flops_per_token),
            scores=f(m.scores_bytes) * f(s.attn_scores_per_pair) / (f(m.bandwidth) * f(e.eta_bw)),
            window=f(s.window),
            sliding=f(s.sliding_fraction),
            comm_layers=2 * layers if tp > 1 else 0.0,
            lib_lat=f(m.ar_latency_s),
            lib_k=per_token / f(m.ar_bus_bw),
            own_lat=f(m.ar_custom_latency_s),
            own_k=per_token / f(m.ar_custom_bus_bw),
            apart=f(m.mixed_prefill) < 0.5,
            bw=f(m.bandwidth) * f(e.eta_bw),
            peak=f(flops_rate(m, e)),
            pp=f(m.pp),
            overhead=f(e.step_overhead_s),
            act=f(activation_time(s, m, e, 1.0)),
            eta_moe=moe,
        )

    def _comm(self, tokens: float) -> float:
        """All-reduce time of a step carrying `tokens` tokens (the measured cost, physics.allreduce_s)."""
        return _comm(self.comm_layers, self.lib_lat, self.lib_k, self.own_lat, self.own_k, tokens)

    def _experts(self, tokens: float) -> float:
        if not self.n_experts:
            return 0.0
        return self.expert_bytes * (1.0 - (1.0 - self.k_over_e) ** tokens) / self.eta_moe

    def step(self, n_dec: float, sum_ctx: float, p_tok: float = 0.0, p_ctx: float = 0.0) -> float:
        """One step: `n_dec` decoding sequences holding `sum_ctx` tokens of context in all, and
        `p_tok` prompt tokens whose queries attend to `p_ctx` keys in all. An engine that keeps
        prompts out of decode steps (vLLM V0 without chunked prefill) runs them as a step of their own."""
        if p_tok > 0 and n_dec > 0 and self.apart:
            return self.step(n_dec, sum_ctx) + self.step(0.0, 0.0, p_tok, p_ctx)
        tokens = n_dec + p_tok
        mb = min(max(tokens, 1.0), self.pp) if self.pp > 1 else 1.0
        attended = sum_ctx if self.sliding == 0 else (
            (1 - self.sliding) * sum_ctx + self.sliding * min(sum_ctx, n_dec * self.window))
        t_sc = self.scores * (attended + p_ctx) / mb  # unfused attention: a pass of its own (physics.scores_time)
        kv_read = (sum_ctx + n_dec * self.state_equiv) * self.kv_bytes / mb
        i_lin, i_att = _imbalance(self.dp_ranks, self.p_lin, self.attn, p_tok / mb, p_ctx / mb)
        lin_c = (self.flops_tok * tokens / mb + i_lin) / self.peak
        att_c = (self.attn * (attended + p_ctx) / mb + i_att) / self.peak
        if self.dp_ranks > 1 and n_dec > 0:  # the busiest GPU's decode attention (physics.decode_imbalance)
            f = _decode_factor(self.dp_ranks, n_dec / mb)
            kv_read = kv_read * f
            lin_c = lin_c + (f - 1) * self.p_lin * n_dec / mb / self.peak
            att_c = att_c + (f - 1) * self.attn * attended / mb / self.peak
        lin_m = (self.dense_bytes + self._experts(tokens / mb)) / self.bw
        att_m = kv_read / self.bw
        comm = self._comm(tokens / mb)
        factor = max(mb, self.pp)
        # the linear layers' roofline plus attention's (physics module docstring)
        return factor * (max(lin_m, lin_c) + max(att_m, att_c) + t_sc + self.act * tokens / mb + comm) + self.overhead

    def stretch(self, n: float, sum_ctx: float, m: int) -> float:
        """Total time of `m` decode-only steps with `n` sequences, context growing by n a step.
        The linear layers' time does not depend on the context; attention's memory and compute
        times are each linear in it, and their max switches at most once."""
        if m <= 0:
            return 0.0
        if self.sliding or self.pp > 1:  # not linear: sum step by step at the ends and the middle
            return m * self.step(n, sum_ctx + n * (m - 1) / 2)
        e = self._experts(n)
        f = _decode_factor(self.dp_ranks, n) if self.dp_ranks > 1 and n > 0 else 1.0  # physics.decode_imbalance
        lin_m = (self.dense_bytes + e) / self.bw
        lin_c = (self.flops_tok * n + (f - 1) * self.p_lin * n) / self.peak
        a_m = n * self.state_equiv * self.kv_bytes * f / self.bw
        b_m = self.kv_bytes * f / self.bw + self.scores
        a_c = 0.0
        b_c = self.attn * f / self.peak + self.scores
        fixed = m * (max(lin_m, lin_c) + self.act * n + self._comm(n) + self.overhead)
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


def _imbalance(ranks: float, lin: float, attn: float, p_tok: float, p_ctx: float) -> tuple[float, float]:
    """physics.prompt_imbalance_flops in floats, for one microbatch: `p_ctx` keys attended by its `p_tok` prompt
    tokens in all, so a prompt is 2 p_ctx / p_tok tokens long (at most the microbatch's). Returns the extra
    FLOPs as (attention projections, attention itself)."""
    if ranks <= 1 or p_tok <= 0:
        return 0.0, 0.0
    prompt = min(2 * p_ctx / p_tok, p_tok)
    extra = min(ranks, max(1.0, ranks * prompt / p_tok)) - 1
    return extra * lin * p_tok, extra * attn * p_ctx


def _decode_factor(ranks: float, n_dec: float) -> float:
    """physics.decode_imbalance in floats: the busiest GPU's decode attention over the average, min(TP, max(1, TP /
    n)) for `n_dec` decoding sequences."""
    return min(ranks, max(1.0, ranks / n_dec))


def _comm(layers: float, lib_lat: float, lib_k: float, own_lat: float, own_k: float, tokens: float) -> float:
    """2 all-reduces per layer, each the faster of the library and the engine's own kernel."""
    if not layers:
        return 0.0
    lib, own = lib_lat + lib_k * tokens, own_lat + own_k * tokens
    return layers * (lib if lib <= own else own)


def compiled(sm: StepModel):
    """`sm.step` and `sm.stretch` as closures over local constants, for the simulator's inner loop:
    the same arithmetic in the same order (results bit-identical), without attribute look-ups; and `run`,
    a decode-only run (below)."""
    step, stretch = _general(sm)
    if not (sm.n_experts or sm.sliding or sm.pp > 1 or sm.dp_ranks > 1):
        return _dense(sm, stretch)

    def run(n: int, sum_ctx: float, steps: int, horizon: float) -> tuple[int, float]:
        """A run of at most `steps` decode steps of `n` sequences, stopping at the step in progress `horizon`
        seconds from now (counted at the first step's duration): (steps taken, their time)."""
        if horizon < math.inf:
            until = int(horizon / step(n, sum_ctx)) + 1
            if until < steps:
                steps = until if until > 1 else 1
        return steps, stretch(n, sum_ctx, steps)

    return step, stretch, run


def _general(sm: StepModel):
    dense, expert, n_exp, k_over_e, moe = sm.dense_bytes, sm.expert_bytes, sm.n_experts, sm.k_over_e, sm.eta_moe
    kv, state, flops, attn, window, sliding = sm.kv_bytes, sm.state_equiv, sm.flops_tok, sm.attn, sm.window, sm.sliding
    sc, dp, p_lin = sm.scores, sm.dp_ranks, sm.p_lin
    bw, peak, pp, overhead, act = sm.bw, sm.peak, sm.pp, sm.overhead, sm.act
    comm_args = (sm.comm_layers, sm.lib_lat, sm.lib_k, sm.own_lat, sm.own_k)
    apart = sm.apart

    def experts(tokens: float) -> float:
        if not n_exp:
            return 0.0
        return expert * (1.0 - (1.0 - k_over_e) ** tokens) / moe

    def step(n_dec: float, sum_ctx: float, p_tok: float = 0.0, p_ctx: float = 0.0) -> float:
        if apart and p_tok > 0 and n_dec > 0:
            return step(n_dec, sum_ctx) + step(0.0, 0.0, p_tok, p_ctx)
        tokens = n_dec + p_tok
        mb = min(max(tokens, 1.0), pp) if pp > 1 else 1.0
        attended = sum_ctx if sliding == 0 else ((1 - sliding) * sum_ctx + sliding * min(sum_ctx, n_dec * window))
        t_sc = sc * (attended + p_ctx) / mb
        kv_read = (sum_ctx + n_dec * state) * kv / mb
        i_lin, i_att = _imbalance(dp, p_lin, attn, p_tok / mb, p_ctx / mb)
        lin_c = (flops * tokens / mb + i_lin) / peak
        att_c = (attn * (attended + p_ctx) / mb + i_att) / peak
        if dp > 1 and n_dec > 0:
            f = _decode_factor(dp, n_dec / mb)
            kv_read = kv_read * f
            lin_c = lin_c + (f - 1) * p_lin * n_dec / mb / peak
            att_c = att_c + (f - 1) * attn * attended / mb / peak
        lin_m = (dense + experts(tokens / mb)) / bw
        att_m = kv_read / bw
        comm = _comm(*comm_args, tokens / mb)
        factor = max(mb, pp)
        return factor * (max(lin_m, lin_c) + max(att_m, att_c) + t_sc + act * tokens / mb + comm) + overhead

    def lin(a: float, b: float, j0: int, j1: int, sum_ctx: float, n: float) -> float:
        cnt = j1 - j0
        return cnt * (a + b * sum_ctx) + b * n * (j1 * (j1 - 1) - j0 * (j0 - 1)) / 2 if cnt > 0 else 0.0

    b_m, b_c = kv / bw + sc, attn / peak + sc

    def stretch(n: float, sum_ctx: float, m: int) -> float:
        if m <= 0:
            return 0.0
        if sliding or pp > 1:
            return m * step(n, sum_ctx + n * (m - 1) / 2)
        lin_m = (dense + experts(n)) / bw
        if dp > 1 and n > 0:  # the busiest GPU's decode attention (physics.decode_imbalance)
            f = _decode_factor(dp, n)
            lin_c = (flops * n + (f - 1) * p_lin * n) / peak
            a_m = n * state * kv * f / bw
            bm, bc = kv * f / bw + sc, attn * f / peak + sc
        else:
            lin_c = flops * n / peak
            a_m = n * state * kv / bw
            bm, bc = b_m, b_c
        a_c = 0.0
        fixed = m * (max(lin_m, lin_c) + act * n + _comm(*comm_args, n) + overhead)
        s_end = sum_ctx + n * (m - 1)
        mem_start, mem_end = a_m + bm * sum_ctx >= a_c + bc * sum_ctx, a_m + bm * s_end >= a_c + bc * s_end
        if mem_start == mem_end:
            return fixed + (lin(a_m, bm, 0, m, sum_ctx, n) if mem_start else lin(a_c, bc, 0, m, sum_ctx, n))
        s_star = (a_c - a_m) / (bm - bc) if bm != bc else sum_ctx
        j = int(min(max(math.ceil((s_star - sum_ctx) / n), 0), m)) if n else 0
        first = lin(a_m, bm, 0, j, sum_ctx, n) if mem_start else lin(a_c, bc, 0, j, sum_ctx, n)
        second = lin(a_m, bm, j, m, sum_ctx, n) if mem_end else lin(a_c, bc, j, m, sum_ctx, n)
        return fixed + first + second

    return step, stretch


def _dense(sm: StepModel, general_stretch):
    """A dense model on one pipeline stage without sliding layers: the same sums, with the terms that
    are exactly 0 or 1 there dropped (x + 0.0, x / 1.0 and 1.0 × x are exact in floating point). Its
    `run` sums the steps itself (most simulated events are decode runs), and `stretch` is that run
    uncut."""
    dense, kv, state, flops, attn, sc = sm.dense_bytes, sm.kv_bytes, sm.state_equiv, sm.flops_tok, sm.attn, sm.scores
    bw, peak, overhead, act, inf = sm.bw, sm.peak, sm.overhead, sm.act, math.inf
    comm_args = (sm.comm_layers, sm.lib_lat, sm.lib_k, sm.own_lat, sm.own_k)
    apart, comm = sm.apart, bool(sm.comm_layers)
    b_m, b_c = kv / bw + sc, attn / peak + sc

    def step(n_dec: float, sum_ctx: float, p_tok: float = 0.0, p_ctx: float = 0.0) -> float:
        if apart and p_tok > 0 and n_dec > 0:
            return step(n_dec, sum_ctx) + step(0.0, 0.0, p_tok, p_ctx)
        tokens = n_dec + p_tok
        lin_m, lin_c = dense / bw, flops * tokens / peak
        att_m, att_c = (sum_ctx + n_dec * state) * kv / bw, attn * (sum_ctx + p_ctx) / peak
        busy = (lin_m if lin_m >= lin_c else lin_c) + (att_m if att_m >= att_c else att_c) + sc * (sum_ctx + p_ctx)
        return busy + act * tokens + _comm(*comm_args, tokens) + overhead

    if not comm:  # one GPU per stage: no all-reduce (x + 0.0 is exact, so the same floats)
        def step(n_dec: float, sum_ctx: float, p_tok: float = 0.0, p_ctx: float = 0.0) -> float:  # noqa: F811
            if apart and p_tok > 0 and n_dec > 0:
                return step(n_dec, sum_ctx) + step(0.0, 0.0, p_tok, p_ctx)
            lin_m, lin_c = dense / bw, flops * (n_dec + p_tok) / peak
            att_m, att_c = (sum_ctx + n_dec * state) * kv / bw, attn * (sum_ctx + p_ctx) / peak
            return ((lin_m if lin_m >= lin_c else lin_c) + (att_m if att_m >= att_c else att_c)
                    + sc * (sum_ctx + p_ctx) + act * (n_dec + p_tok) + overhead)

    def run(n: float, sum_ctx: float, steps: int, horizon: float) -> tuple[int, float]:
        """`run` of :func:`compiled`: cut at the step in progress `horizon` seconds on (counted at the first
        step's duration), then the closed-form sum."""
        if horizon < inf:
            first = step(n, sum_ctx)
            until = int(horizon / first) + 1
            if until < steps:
                steps = until if until > 1 else 1
        if steps <= 0:
            return steps, 0.0
        lin_m, lin_c = dense / bw, flops * n / peak
        a_m = n * state * kv / bw
        s_end = sum_ctx + n * (steps - 1)
        mem_start, mem_end = a_m + b_m * sum_ctx >= b_c * sum_ctx, a_m + b_m * s_end >= b_c * s_end
        if mem_start != mem_end:
            return steps, general_stretch(n, sum_ctx, steps)
        a, b = (a_m, b_m) if mem_start else (0.0, b_c)
        lin = lin_m if lin_m >= lin_c else lin_c
        per_step = lin + act * n
        fixed = steps * (per_step + _comm(*comm_args, n) + overhead) if comm else steps * (per_step + overhead)
        return steps, fixed + (steps * (a + b * sum_ctx) + b * n * (steps * (steps - 1)) / 2)

    def stretch(n: float, sum_ctx: float, m: int) -> float:
        return run(n, sum_ctx, m, inf)[1]

    return step, stretch, run
