"""The accuracy targets guarded by a refit, not by the shipped file: the calibration is fitted again without each
source group in turn (tests/loso_refit.py, started by conftest.py in a second process) and the held-out rows
must meet issue 13's targets, as docs/accuracy.md reports them."""

from __future__ import annotations

from llmplan.perf.accuracy import (
    COVERAGE_PCT,
    LOSO_GROUP_MDAPE_PCT,
    LOSO_MDAPE_PCT,
    LOSO_WITHIN_25_PCT,
    coverage_pct,
    cross_fitted,
    loso_figures,
)
from llmplan.perf.validate import summarize

# A target docs/accuracy.md reports as missed, with the figure it reports: the guard holds it there (1.5 points of
# slack), so a change that makes it worse fails; one that meets the target fails too, until this line goes.
DOCUMENTED_GROUP_MISSES = {"family blackwell": 29.6}


def test_leave_one_source_out_holds_the_documented_figures(loso_rows):
    rows = cross_fitted(loso_rows, loso_rows, "group")  # the intervals the report gives them
    fig = loso_figures(rows)
    assert summarize(rows)["overall"]["n"] >= 1000, "the refit scored fewer rows than the data holds"
    assert fig["mdape_pct"] <= LOSO_MDAPE_PCT, fig
    assert fig["within_25_pct"] >= LOSO_WITHIN_25_PCT, fig
    assert COVERAGE_PCT[0] <= fig["coverage_pct"] <= COVERAGE_PCT[1], fig
    missed = {g: round(m, 1) for g, m in fig["groups"].items() if m > LOSO_GROUP_MDAPE_PCT}
    assert missed.keys() == DOCUMENTED_GROUP_MISSES.keys(), (missed, fig["groups"])
    for g, documented in DOCUMENTED_GROUP_MISSES.items():
        assert fig["groups"][g] <= documented + 1.5, (g, fig["groups"][g])
    # the one source group whose engine (SGLang) and hardware family (Ascend) no other group has: a new
    # family and engine at once stays within the documented error, and its interval holds a fair share
    ascend = [r for r in rows if r["held_out"] == "MAN-ASCEND"]
    assert len(ascend) >= 30 and {r["family"] for r in ascend} == {"ascend"}
    assert not [r for r in rows if r["family"] == "ascend" and r["held_out"] != "MAN-ASCEND"]
    assert summarize(ascend)["overall"]["mdape_pct"] <= 25.0
    assert (coverage_pct(ascend) or 0) >= 50.0
