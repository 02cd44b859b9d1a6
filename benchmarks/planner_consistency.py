"""Analytic vs simulated: `python benchmarks/planner_consistency.py [EXAMPLE ...] [--max-options N]`.

For every on-premise option `llmplan plan` ranks on the examples (default: all six), two checks:

1. Per-replica capacity. The planner sizes replicas from an analytic per-replica rate (the highest request
   rate at which one replica meets the SLO limits with the planner's SLO_HEADROOM). The simulator's figure is
   the highest Poisson rate at which ONE replica, simulated for CAPACITY_REQUESTS requests of the workload's
   lengths at the planner's context, meets the same tightened SLO (bisection on the rate, SIM_STEPS simulations).
   They should agree within 10 %.
2. The option as planned. Its serving replicas at the peak rate, least-loaded router, simulated with a seed
   the planner never used: it must meet the scenario's SLOs (without the headroom).

Prints one row per option and the counts; exit status 1 when any option fails either check. `--max-options N`
checks the N best-ranked owned options per example (the test runs one small example this way)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

TOLERANCE_PCT = 10.0
SIM_STEPS = 7  # bisection steps on the rate: the bracket [0.5, 2] × analytic narrows to ±0.5 %
OTHER_SEED = 104_729  # a prime the planner's seeds (seed + k × 7919) never reach for small k
CAPACITY_REQUESTS = 20_000  # per simulated rate: the p95 of 5,000 moved the capacity ±10–30 % between seeds
# Lengths one per equal-probability stratum: with independent draws the capacity hung on how many of the heavy
# prompt tail's rare long prompts one seed drew (this seed drew a light tail: Llama-3.3-70B FP8 on 2 × H100 PCIe
# in eu-bank-airgapped measured +3.2 % against the analytic rate with it and +17…+32 % with other seeds)
STRATIFIED = True


def simulated_capacity(o, cat, s) -> float:
    """The highest Poisson rate one replica serves within the tightened SLO (bisection on the rate; the lengths
    stratified, STRATIFIED)."""
    from llmplan.planner.search import simulated_load, tightened
    from llmplan.serving.cluster import replica_spec, simulate_cluster, summarize
    from llmplan.serving.workload import generate

    c = o._ctx
    d, w = c["d"], c["w"]
    spec = replica_spec(d, cat, max_num_seqs=o.details["max_num_seqs"], context_tokens=o.details["context_tokens"])
    slo = tightened(w.slo)
    analytic = o.details["per_replica_req_s"]

    def ok(rate: float) -> bool:
        sim_w, thinks = simulated_load(o, rate)  # a model that thinks: thinking and answer sampled apart
        n = CAPACITY_REQUESTS
        reqs = generate(sim_w, cat, seed=s.seed + OTHER_SEED, num_requests=n, max_context=o.details["context_tokens"],
                        thinks=thinks, stratified=STRATIFIED)
        res = summarize(simulate_cluster(spec, reqs, 1, router="round-robin"), slo,
                        warmup_s=float(reqs.arrival_s[min(len(reqs) - 1, len(reqs) // 20)]))
        return bool(res["slo_met"])

    lo, hi = 0.5 * analytic, 2.0 * analytic
    if not ok(lo):
        lo, hi = 0.0, lo
    elif ok(hi):
        return hi  # at least twice the analytic figure
    for _ in range(SIM_STEPS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def option_meets_slo(o, cat, s) -> dict[str, Any]:
    """The planned option (serving replicas, peak rate, least-loaded) with another seed, at the real SLO."""
    from llmplan.planner.search import (
        SIM_MAX_REPLICAS,
        SIM_MAX_REQUESTS,
        SIM_MIN_REQUESTS,
        simulated_load,
    )
    from llmplan.serving.cluster import replica_spec, simulate_cluster, summarize
    from llmplan.serving.workload import generate

    c = o._ctx
    d, w, peak = c["d"], c["w"], c["peak"]
    serving = o.details["serving_replicas"]
    k = min(serving, SIM_MAX_REPLICAS)
    rate = peak * k / serving
    spec = replica_spec(d, cat, max_num_seqs=o.details["max_num_seqs"], context_tokens=o.details["context_tokens"])
    n = int(min(max(rate * 3600, SIM_MIN_REQUESTS), SIM_MAX_REQUESTS))
    sim_w, thinks = simulated_load(o, rate)  # a model that thinks: thinking and answer sampled apart
    reqs = generate(sim_w, cat, seed=s.seed + OTHER_SEED + 1, num_requests=n, max_context=o.details["context_tokens"],
                    thinks=thinks)
    return summarize(simulate_cluster(spec, reqs, k, router="least-loaded"), w.slo,
                     warmup_s=float(reqs.arrival_s[min(len(reqs) - 1, len(reqs) // 20)]))


def check(path: Path, cat, max_options: int | None = None) -> list[dict[str, Any]]:
    from llmplan.planner import load_scenario
    from llmplan.planner.search import plan

    s = load_scenario(path)
    p = plan(s, cat)
    owned = [o for o in p["ranked"] if o.deployment == "on_prem"]
    # one option per distinct configuration (fp8 and int8 with equal figures are the same physics)
    seen, rows = set(), []
    for o in owned:
        key = (o.model, o.precision, o.hardware, o.engine, o.tp)
        if key in seen:
            continue
        seen.add(key)
        if max_options is not None and len(rows) >= max_options:
            break
        sim_cap = simulated_capacity(o, cat, s)
        res = option_meets_slo(o, cat, s)
        analytic = o.details["per_replica_req_s"]
        err = 100 * (analytic - sim_cap) / sim_cap if sim_cap > 0 else float("inf")
        rows.append({"scenario": path.stem, "option": o.id, "analytic_req_s": analytic, "simulated_req_s": sim_cap,
                     "error_pct": err, "capacity_ok": abs(err) <= TOLERANCE_PCT, "serving_replicas":
                     o.details["serving_replicas"], "slo_met": res["slo_met"], "goodput_pct": res["goodput_pct"],
                     "ttft_p95_ms": res["ttft_ms"]["p95"], "tpot_p95_ms": res["tpot_ms"]["p95"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    from llmplan.catalog import load_catalog

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("examples", nargs="*", help="example stems (default: all)")
    ap.add_argument("--max-options", type=int, default=None)
    a = ap.parse_args(argv)
    cat = load_catalog()
    paths = sorted((REPO / "examples").glob("*.yaml"))
    if a.examples:
        paths = [p for p in paths if p.stem in a.examples]
    rows: list[dict[str, Any]] = []
    print(f"{'option':72} {'analytic':>8} {'sim':>7} {'err %':>6} {'reps':>4} {'SLO':>4} {'goodput':>7} "
          f"{'TTFT p95':>9} {'TPOT p95':>8}")
    for path in paths:
        for r in check(path, cat, a.max_options):
            rows.append(r)
            print(f"{r['option'][:72]:72} {r['analytic_req_s']:8.3f} {r['simulated_req_s']:7.3f} "
                  f"{r['error_pct']:6.1f} {r['serving_replicas']:4d} {'ok' if r['slo_met'] else 'MISS':>4} "
                  f"{r['goodput_pct']:7.1f} {r['ttft_p95_ms']:9.0f} {r['tpot_p95_ms']:8.1f}", flush=True)
    cap_ok = sum(r["capacity_ok"] for r in rows)
    slo_ok = sum(r["slo_met"] for r in rows)
    errs = sorted(abs(r["error_pct"]) for r in rows)
    med = errs[len(errs) // 2] if errs else float("nan")
    print(f"options: {len(rows)}; capacity within {TOLERANCE_PCT:g} %: {cap_ok} (median |error| {med:.1f} %, largest "
          f"{max(errs, default=float('nan')):.1f} %); meet the SLO with another seed: {slo_ok}")
    return 0 if rows and cap_ok == len(rows) and slo_ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
