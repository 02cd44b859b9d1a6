"""Memory model vs measured rows: `python benchmarks/memory_accuracy.py [CSV]`.

Default CSV: data/bench/memory_dev.csv (in the repository). Prints every row
and, per category, the median and maximum absolute error and how many rows meet the
target (weights within 3 %, KV cache within 5 %). Exit code 1 if a row misses its target,
other than the documented misses (each printed with its reason).
"""

from __future__ import annotations

import sys
from pathlib import Path

from llmplan.validation.memory_rows import (
    DOCUMENTED_MISSES,
    TARGET_PCT,
    evaluate,
    summary,
)

DEFAULT = Path(__file__).resolve().parents[1] / "data" / "bench" / "memory_dev.csv"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    results = evaluate(path)
    print(f"{'id':<10} {'metric':<28} {'measured':>12} {'predicted':>12} {'error':>8}")
    for r in results:
        pred = f"{r.predicted:12.4g}" if r.predicted is not None else f"{'—':>12}"
        err = f"{r.error_pct:+7.1f}%" if r.error_pct is not None else f"  {r.reason[:60]}"
        print(f"{r.id:<10} {r.metric:<28} {r.measured:12.4g} {pred} {err}")
    ok = True
    for cat, s in summary(results).items():
        print(
            f"{cat:<8} n={s['n']:.0f} predicted={s['predicted']:.0f} median |err|={s['mdape_pct']:.2f}% "
            f"max |err|={s['max_ape_pct']:.2f}%"
            + (f" within {s['target_pct']:.0f}%: {s['within_target']:.0f}/{s['n']:.0f}" if cat in TARGET_PCT else "")
        )
    for r in results:
        limit = TARGET_PCT.get(r.category)
        if limit is not None and (r.error_pct is None or abs(r.error_pct) > limit):
            if r.id in DOCUMENTED_MISSES:
                print(f"documented miss {r.id}: {DOCUMENTED_MISSES[r.id]}")
            else:
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
