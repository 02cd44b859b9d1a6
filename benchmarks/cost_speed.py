"""Monte Carlo speed: `python benchmarks/cost_speed.py` — 10,000 draws for one configuration
under 1 s (the TCO of an 8 × H100 server with every uncertain input drawn from its range), and
the purchase decision for 1-1,000 replicas."""

from __future__ import annotations

import sys
import time

from llmplan.catalog import load_catalog
from llmplan.cost.ownership import buy
from llmplan.cost.tco import Finance
from llmplan.cost.uncertainty import monte_carlo, tornado
from llmplan.specs import FitRequest, resolve


def main() -> int:
    cat = load_catalog()
    d = resolve(FitRequest(model="meta-llama/Llama-3.3-70B-Instruct", gpu="h100-sxm", num_gpus=8), cat)
    f = Finance(region="us-il")
    owned = buy(d, cat, f, 1, "none", lambda placed: 50.0)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        r = monte_carlo(owned.x, owned.ranges, 10_000, 0, 1e11, None)
        best = min(best, time.perf_counter() - t0)
    t0 = time.perf_counter()
    tornado(owned.x, owned.ranges)
    tor = time.perf_counter() - t0
    d1 = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="l40s"), cat)
    t0 = time.process_time()
    for need in (1, 10, 100, 1000):
        buy(d1, cat, Finance(gpu_price_usd=8000), need, "n_plus_1", lambda placed: 50.0)
    choice = (time.process_time() - t0) / 4
    p = r["tco_usd"]
    print(f"Monte Carlo, 10,000 draws of {len(r['varied'])} inputs: {best * 1e3:.1f} ms (target < 1 s); "
          f"TCO P10/P50/P90 {p['p10']:,.0f} / {p['p50']:,.0f} / {p['p90']:,.0f} USD; tornado {tor * 1e3:.1f} ms; "
          f"purchase choice (L40S, n_plus_1, 1-1,000 replicas) {choice * 1e3:.1f} ms CPU each")
    return 0 if best < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
