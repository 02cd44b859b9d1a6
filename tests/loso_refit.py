"""The leave-one-source-out refit the accuracy test checks, run as its own process: `python tests/loso_refit.py OUT`.

Eight refits of the calibration (one per source group held out, ~6 min of CPU), so conftest.py starts it in a
second process when the session begins and the rest of the suite runs meanwhile; it writes the held-out rows
(:func:`llmplan.perf.accuracy.leave_one_source_out`) to OUT as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "data" / "bench"


def main(out: str) -> None:
    from llmplan.catalog import load_catalog
    from llmplan.perf.accuracy import leave_one_source_out
    from llmplan.perf.cases import bench_files, read_cases

    cs = read_cases(bench_files([str(BENCH / "perf_*.csv")])[0], load_catalog())
    rows = leave_one_source_out(cs)
    Path(out).write_text(json.dumps(rows), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
