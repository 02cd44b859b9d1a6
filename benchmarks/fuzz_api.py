"""A longer fuzz of the REST API than CI runs: `python benchmarks/fuzz_api.py [--examples N]`.

Runs tests/test_api_fuzz.py (schemathesis, every operation of the OpenAPI document, valid and
invalid requests, on SQLite and on a throwaway PostgreSQL) with N examples per operation and
prints the cases run and the status codes they got. Any 5xx, undocumented status or content
type, response off its schema, or accepted schema-violating request fails the run."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=200, help="examples per operation and backend (CI: 40)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        report = Path(d) / "fuzz.json"
        env = {**os.environ, "LLMPLAN_FUZZ_EXAMPLES": str(args.examples), "LLMPLAN_FUZZ_REPORT": str(report)}
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "tests/test_api_fuzz.py"], cwd=REPO, env=env)
        wall = time.perf_counter() - t0
        seen = json.loads(report.read_text()) if report.exists() else {}
    for backend, counts in sorted(seen.items()):
        codes = ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items()) if k != "cases")
        fivexx = sum(v for k, v in counts.items() if k.startswith("5"))
        print(f"{backend:10s} {counts.get('cases', 0):,} cases, {fivexx} server errors ({codes})")
    print(f"{args.examples} examples per operation; {wall:.0f} s; pytest exit code {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
