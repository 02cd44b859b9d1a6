"""Simulator speed targets: `python benchmarks/simulator_speed.py`.

1. 1,000,000 requests on one replica in under 10 s of CPU time.
2. A day of traffic on 100 replicas in under 60 s of CPU time: office-hours profile, each
   replica at 3 requests/s in the peak hour (≈ 10.9 M requests), all replicas in this one
   process (`--processes N` or `--dask` spread the independent replicas over cores or a
   cluster: the same CPU time, less wall time).

Measured as CPU time of this process (`time.process_time()`), so that a machine shared with
other work gives the same answer; run it pinned to one core (`taskset -c 0 python …`) for
the figure the targets mean. Exit code 1 if a target is missed.
"""

from __future__ import annotations

import sys
import time

from llmplan.catalog import load_catalog
from llmplan.serving.cluster import replica_spec, simulate_cluster
from llmplan.serving.workload import Lengths, Workload, generate
from llmplan.specs import FitRequest, resolve

TARGET_ONE_S, TARGET_DAY_S = 10.0, 60.0


def main() -> int:
    cat = load_catalog()
    d = resolve(FitRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm"), cat)
    spec = replica_spec(d, cat)
    chat = dict(input_tokens=Lengths(mean=1000, p95=3500), output_tokens=Lengths(mean=300, p95=900))

    reqs = generate(Workload(rate_per_s=12, **chat), cat, seed=1, num_requests=1_000_000)
    t0 = time.process_time()
    c = simulate_cluster(spec, reqs)
    one = time.process_time() - t0
    print(f"1 replica, {len(reqs):,} requests ({c.end_s / 3600:,.1f} h simulated): {one:.2f} s CPU "
          f"(target < {TARGET_ONE_S:.0f} s)")

    weights = cat.workload_presets.get("office-hours").hourly_weights
    per_day = 100 * 3 * 3600 * sum(weights) / max(weights)
    reqs = generate(Workload(requests_per_day=per_day, profile="office-hours", **chat), cat, seed=2)
    t0 = time.process_time()
    c = simulate_cluster(spec, reqs, replicas=100, processes=1)
    many = time.process_time() - t0
    print(f"100 replicas, a day of office-hours traffic ({len(reqs):,} requests): {many:.2f} s CPU "
          f"(target < {TARGET_DAY_S:.0f} s)")
    ok = one < TARGET_ONE_S and many < TARGET_DAY_S
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
