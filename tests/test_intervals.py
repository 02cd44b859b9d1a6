"""The 80 % interval of a speed prediction: in-sample residual band × a factor per calibration level, fitted on
sources held out of the fit (perf/intervals.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmplan.catalog import load_catalog
from llmplan.perf.efficiency import ANY, LEVELS, lookup
from llmplan.perf.intervals import (
    ALL_LEVELS,
    HAND_SET,
    MIN_ROWS,
    entry_scale,
    fit_scales,
    interval,
    level_name,
    needed_scale,
    scale_for,
    scales_of,
    slow_end,
)

CAT = load_catalog()


def _row(level: str, e: float, band: tuple[float, float] = (-0.1, 0.2), **kw) -> dict:
    return {"level": level, "log_error": e, "band": list(band), "status": "ok", **kw}


def test_needed_scale_by_hand():
    assert needed_scale(0.4, -0.1, 0.2) == pytest.approx(2.0)  # 0.2 × 2 reaches 0.4
    assert needed_scale(-0.05, -0.1, 0.2) == pytest.approx(0.5)
    assert needed_scale(0.0, -0.1, 0.2) == 0.0
    # a band wholly above zero is taken from zero on its low side (-1e-3)
    assert needed_scale(-0.01, 0.05, 0.2) == pytest.approx(10.0)


def test_fit_scales_is_the_80th_percentile_of_the_needed_factors_per_level():
    # 40 rows at one level needing 0.1, 0.2 … 4.0 (errors 0.02·k against a band top of 0.2)
    rows = [_row("engine×family", 0.02 * k) for k in range(1, 41)]
    # 10 rows at another level: too few for a factor of its own
    rows += [_row("pooled", 0.2 * 5) for _ in range(10)]
    s = fit_scales(rows)
    # the smallest factor covering 80 % of the 40: the 32nd smallest need, 3.2
    assert s["engine×family"] == pytest.approx(3.2)
    # over all 50 needs (0.1 … 4.0 and ten of 5.0) the 80th percentile is the 40th value, 4.0
    assert s[ALL_LEVELS] == pytest.approx(4.0)
    # 'pooled' had too few rows of its own: the factor fitted on all of them
    assert scale_for(s, "pooled") == pytest.approx(4.0)
    assert MIN_ROWS > 10
    # rows that could not be predicted do not count
    assert fit_scales([{"level": "pooled", "log_error": None, "band": [-0.1, 0.1]}]) == {}


def test_a_fallback_level_is_never_narrower_than_a_fit_it_stands_in_for():
    from llmplan.perf.intervals import coarser_not_narrower

    # as fitted on the development data: 'arch' (Gaudi and Ascend rows only) came out below engine×arch
    s = coarser_not_narrower({"arch": 1.01, "engine": 1.55, "engine×arch": 1.72, "engine×family×arch": 1.33}, 1.49)
    assert s["arch"] == s["engine"] == s["pooled"] == 1.72  # all generalise engine×arch
    assert s["engine×family×arch"] == 1.33  # the most specific level keeps its own fit
    assert s["engine×family"] == s["family×arch"] == s["family"] == 1.49  # no rows of their own: all rows' factor
    # every level lookup can fall back to gets a factor, and coarser levels are never narrower
    levels = ["×".join(x) or "pooled" for x in LEVELS]
    assert set(levels) <= set(s)
    for a in levels:
        for b in levels:
            if b != "pooled" and (a == "pooled" or set(a.split("×")) < set(b.split("×"))):
                assert s[a] >= s[b], (a, b)


def test_the_fitted_factor_covers_80_percent_of_the_rows_it_was_fitted_on():
    rows = [_row("engine", 0.3 * math.sin(k) + 0.05, band=(-0.08, 0.12)) for k in range(200)]
    w = fit_scales(rows)["engine"]
    inside = [interval(1.0, r["band"], w)[0] <= math.exp(r["log_error"]) <= interval(1.0, r["band"], w)[1]
              for r in rows]
    assert 0.80 <= sum(inside) / len(inside) < 0.81


@given(lo=st.floats(-2, 2), hi=st.floats(-2, 2), w1=st.floats(0.01, 10), w2=st.floats(0.01, 10),
       pred=st.floats(1e-3, 1e6))
def test_an_interval_holds_its_prediction_and_widens_with_the_factor(lo, hi, w1, w2, pred):
    lo, hi = min(lo, hi), max(lo, hi)
    a1, b1 = interval(pred, (lo, hi), min(w1, w2))
    a2, b2 = interval(pred, (lo, hi), max(w1, w2))
    assert a1 <= pred * (1 + 1e-12) and b1 >= pred * (1 - 1e-12)
    assert a2 <= a1 * (1 + 1e-12) and b2 >= b1 * (1 - 1e-12)


def test_level_names_are_the_ones_lookup_reports():
    table = {(e, f, a): object() for e in ("trtllm", ANY) for f in ("hopper", ANY) for a in ("dense", ANY)}
    for key in table:
        e, f, a = key
        _, level = lookup({key: table[key]}, "trtllm" if e == ANY else e, "hopper" if f == ANY else f,
                          "dense" if a == ANY else a)
        assert level == level_name(*key)


def test_shipped_calibration_carries_a_fitted_factor_on_every_entry():
    """`llmplan calibrate` on the development data fits the factors (the file says how): every entry has one,
    entries of one level share it, and estimate / speed risk use it rather than the hand-set widening."""
    cals = CAT.calibrations
    assert cals and all(c.interval_scale is not None and 0.5 <= c.interval_scale <= 5 for c in cals)
    by_level: dict[str, set[float]] = {}
    for c in cals:
        by_level.setdefault(level_name(c.engine, c.family, c.arch), set()).add(c.interval_scale)
    assert all(len(v) == 1 for v in by_level.values()), by_level
    # a fallback is never narrower than a level it stands in for
    one = {lvl: next(iter(v)) for lvl, v in by_level.items()}
    assert one["arch"] >= one["engine×arch"] and one["pooled"] == max(one.values())
    c = next(iter(cals))
    level = level_name(c.engine, c.family, c.arch)
    assert entry_scale(c, level) == c.interval_scale
    assert slow_end(c, level) == pytest.approx(math.exp(max(0.0, -c.log_error_p10 * c.interval_scale)))
    assert scales_of(cals)[level] == c.interval_scale


def test_a_file_without_factors_uses_the_hand_set_widening():
    c = next(iter(CAT.calibrations)).model_copy(update={"interval_scale": None})
    assert entry_scale(c, "pooled") == HAND_SET["pooled"] == 2.0
    assert entry_scale(c, "engine×family") == 1.0


def test_cross_fitted_factors_never_see_the_rows_they_score():
    """The factors for a held-out value are fitted only on rows that do not share it: a group whose own errors
    are enormous does not widen its own interval."""
    from llmplan.perf.accuracy import cross_fitted

    calm = [_row("engine×family", 0.01 * (k % 20), group="A", engine="e", family="f", predicted=1.0,
                 measured=math.exp(0.01 * (k % 20))) for k in range(60)]
    wild = [_row("engine×family", 3.0, group="B", engine="e", family="f", predicted=1.0, measured=math.exp(3.0))
            for _ in range(60)]
    rows = cross_fitted(calm + wild, calm + wild, "group")
    b = [r for r in rows if r["group"] == "B"]
    assert not any(r["covered"] for r in b)  # fitted on A's calm rows only
    a = [r for r in rows if r["group"] == "A"]
    assert all(r["covered"] for r in a)  # fitted on B's wild rows: very wide


def test_one_source_group_cannot_fit_the_factors_and_says_so(tmp_path, capsys):
    import json

    from llmplan.cli import main

    from .conftest import BENCH

    lines = (BENCH / "perf_dev_v2.csv").read_text().splitlines()
    one = [ln for ln in lines[1:] if ",MAN-NIM," in ln]
    assert len(one) >= 10
    (tmp_path / "one.csv").write_text("\n".join([lines[0], *one]) + "\n")
    out = tmp_path / "cal.yaml"
    assert main(["calibrate", "--data", str(tmp_path / "one.csv"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "not fitted" in summary["intervals"] and "interval_scale" not in out.read_text()


def test_estimate_scales_its_band_by_the_entry_factor_and_says_where_it_comes_from():
    from llmplan.perf.efficiency import deployment_efficiency
    from llmplan.perf.estimate import EstimateRequest, estimate
    from llmplan.specs import resolve

    req = EstimateRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="ascend-910b", engine="vllm",
                          input_tokens=1000, output_tokens=200, concurrency=16)
    r = estimate(req, CAT)
    _, cal, level = deployment_efficiency(resolve(req, CAT), CAT)
    assert level == "family×arch"  # no vLLM rows on Ascend: a fallback level
    note = next(n for n in r.notes if "no calibration data" in n)
    assert f"×{cal.interval_scale:.2f}" in note and "held out" in note
    # the TPOT interval is the band scaled by the factor, turned around for a time
    tpot = r.intervals["tpot_ms"]
    lo, hi = min(cal.log_error_p10, 0.0), max(cal.log_error_p90, 0.0)
    assert tpot.low == pytest.approx(r.tpot_ms / math.exp(hi * cal.interval_scale))
    assert tpot.high == pytest.approx(r.tpot_ms / math.exp(lo * cal.interval_scale))
