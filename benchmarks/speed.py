"""Speed targets: `python benchmarks/speed.py`.

1. A vectorised sweep of every catalog model × accelerator × weight format × TP ∈ {1, 2, 4, 8}
   × 8 concurrency levels (well over 100,000 configurations) in under 1 s of CPU on one core, timed end to
   end on the first run in the process (the weights summed per model × format through perf/shape.py, then the
   array evaluation); later runs find the sums cached and are shown too.
2. `llmplan estimate` cold start (a fresh process) under 1 s.
3. `llmplan validate` on all the benchmark data in data/bench (every protocol, finite runs through the
   simulator where a closed form cannot do it) under 30 s of CPU.
Exit code 1 if a target is missed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from llmplan.catalog import load_catalog  # noqa: E402
from llmplan.perf.sweep import sweep  # noqa: E402

TARGET_S = 1.0
VALIDATE_TARGET_S = 30.0
BENCH = Path(__file__).resolve().parents[1] / "data" / "bench"
ESTIMATE = [sys.executable, "-c", "from llmplan.cli import entry; entry()", "estimate",
            "meta-llama/Llama-3.3-70B-Instruct", "--gpu", "h100-sxm", "--num-gpus", "4", "--input", "2000",
            "--output", "400", "--concurrency", "32", "--json"]


def main() -> int:
    cat = load_catalog()
    times = []
    for _ in range(3):
        t0 = time.process_time()
        res = sweep(cat, engine="vllm")
        times.append(time.process_time() - t0)
    first, best = times[0], min(times)
    n, valid = res.configurations, int(res.valid.sum())
    print(f"sweep: {n:,} configurations ({valid:,} valid layouts) of {len(set(res.models))} models × "
          f"{len(res.accelerators)} accelerators × {len(set(res.formats))} formats × TP {[int(t) for t in res.tps]} × "
          f"{len(res.concurrency)} concurrency levels: first run {first:.3f} s CPU ({n / first:,.0f} configurations/s; "
          f"target < {TARGET_S:.0f} s), sums cached {best:.3f} s")
    cold = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(ESTIMATE, check=True, capture_output=True)
        cold.append(time.perf_counter() - t0)
    med = statistics.median(cold)
    print(f"llmplan estimate cold start: median {med:.3f} s of 5 (target < {TARGET_S:.0f} s)")
    from llmplan.perf.cases import bench_files
    from llmplan.perf.validate import validate

    paths, _ = bench_files([str(BENCH / "perf_*.csv")])
    t0 = time.process_time()
    rows = len(validate(paths, cat)["rows"])
    validate_s = time.process_time() - t0
    print(f"llmplan validate on {rows:,} rows of {len(paths)} file(s): {validate_s:.1f} s CPU "
          f"(target < {VALIDATE_TARGET_S:.0f} s)")
    ok = first < TARGET_S and med < TARGET_S and n > 100_000 and validate_s < VALIDATE_TARGET_S
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
