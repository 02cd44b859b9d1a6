"""Rewrite the README quickstart's sample output from the committed report of the bundled example
(examples/reports/internal-assistant/report.md, itself written by `llmplan plan … --out`).

    python scripts/readme_sample.py          # rewrite README.md in place
    python scripts/readme_sample.py --check  # exit 1 when the README is stale

The sample is the report's head (the recommendation and the advice, up to "Top alternatives"), then one line pointing at
the rest; tests/test_readme.py checks that every line shown is a line of the report."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = "llmplan plan examples/internal-assistant.yaml\n```\n\n```text\n"
KEEP_UNTIL = "## Top alternatives"
TAIL = "## Top alternatives, cheapest cloud GPU and API, Pareto front, excluded options … (see the full report)"


def sample() -> str:
    report = (REPO / "examples" / "reports" / "internal-assistant" / "report.md").read_text(encoding="utf-8")
    head = report.split(KEEP_UNTIL, 1)[0].rstrip("\n")
    return f"{head}\n\n{TAIL}\n"


def rewritten(readme: str) -> str:
    before, rest = readme.split(COMMAND, 1)
    _, after = rest.split("```", 1)
    return f"{before}{COMMAND}{sample()}```{after}"


def main(argv: list[str]) -> int:
    path = REPO / "README.md"
    old = path.read_text(encoding="utf-8")
    new = rewritten(old)
    if "--check" in argv:
        if new != old:
            print("README.md's quickstart sample is stale: run python scripts/readme_sample.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
