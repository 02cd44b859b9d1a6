"""The README's claims that the code can check: catalog counts and the quickstart's sample output."""

from __future__ import annotations

import re
from pathlib import Path

from llmplan.catalog import load_catalog

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_catalog_counts_in_the_readme_are_the_catalogs():
    text = " ".join(README.split())
    m = re.search(r"(\d+) open-weight models, (\d+) accelerators .*?, (\d+) weight formats .*? and (\d+) engine "
                  r"profiles", text)
    assert m, "the README's catalog sentence changed: update this test with it"
    cat = load_catalog()
    assert tuple(int(x) for x in m.groups()) == (len(cat.models), len(cat.accelerators), len(cat.quant_formats),
                                                 len(cat.engines))


def test_quickstart_sample_is_the_committed_report():
    """The quickstart prints examples/reports/internal-assistant/report.md (the golden report, regenerated
    by `llmplan plan … --out`); every line the README shows must be a line of it, in order."""
    block = README.split("llmplan plan examples/internal-assistant.yaml\n```")[1]
    sample = block.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    report = (REPO / "examples" / "reports" / "internal-assistant" / "report.md").read_text(encoding="utf-8")
    lines = report.splitlines()
    pos = 0
    for line in sample:
        if not line.strip() or line.endswith("(see the full report)"):
            continue
        assert line in lines[pos:], f"README quickstart line not in the committed report (in order): {line!r}"
        pos = lines.index(line, pos) + 1
