"""A region whose electricity price is a labelled estimate: the cost model says so and draws from its range."""

from __future__ import annotations

import pytest

from llmplan.catalog import load_catalog
from llmplan.cost.ownership import _assumptions, estimated_electricity_note
from llmplan.cost.tco import Finance, TcoRequest, tco

CAT = load_catalog()


def _req(**finance) -> TcoRequest:
    return TcoRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", workload="chat",
                      requests_per_day=50_000, fixed_replicas=1, draws=500, finance=Finance(**finance))


def test_tco_notes_say_the_regions_price_is_an_estimate_with_its_range():
    r = tco(_req(region="gb"), CAT)
    gb = CAT.regions.get("gb")
    label = [n for n in r["notes"] if n.startswith("electricity price for United Kingdom is an estimate")]
    assert len(label) == 1
    assert f"({gb.electricity_low_usd_per_kwh:.3f}–{gb.electricity_high_usd_per_kwh:.3f} USD/kWh)" in label[0]
    assert "DESNZ" in label[0]  # the basis, not just the word
    assert r["assumptions"]["electricity_usd_per_kwh"] == gb.electricity_usd_per_kwh


def test_no_estimate_note_for_a_sourced_region_or_a_price_the_user_gave():
    assert not [n for n in tco(_req(region="de"), CAT)["notes"] if "is an estimate (" in n and "electricity" in n]
    r = tco(_req(region="gb", electricity_usd_per_kwh=0.2), CAT)
    assert not [n for n in r["notes"] if n.startswith("electricity price")]
    assert r["assumptions"]["electricity_usd_per_kwh"] == 0.2
    assert estimated_electricity_note(CAT, Finance()) is None


def test_monte_carlo_and_tornado_use_the_estimated_regions_range():
    jp = CAT.regions.get("jp")
    _, ranges = _assumptions(CAT, Finance(region="jp"), "datacenter")
    assert ranges["electricity_usd_per_kwh"] == (jp.electricity_low_usd_per_kwh, jp.electricity_usd_per_kwh,
                                                 jp.electricity_high_usd_per_kwh)
    # without the region the catalog's global range applies, which is wider
    _, glob = _assumptions(CAT, Finance(), "datacenter")
    g_lo, _, g_hi = glob["electricity_usd_per_kwh"]
    assert g_lo < jp.electricity_low_usd_per_kwh and g_hi > jp.electricity_high_usd_per_kwh
    r = tco(_req(region="jp"), CAT)
    row = next(x for x in r["sensitivity"] if x["assumption"] == "electricity_usd_per_kwh")
    assert (row["low"], row["high"]) == (jp.electricity_low_usd_per_kwh, jp.electricity_high_usd_per_kwh)
    assert "electricity_usd_per_kwh" in r["uncertainty"]["varied"]
    fixed = tco(_req(region="jp", electricity_usd_per_kwh=0.15), CAT)
    assert "electricity_usd_per_kwh" not in fixed["uncertainty"]["varied"]


def test_a_region_price_outside_its_own_range_cannot_load():
    gb = CAT.regions.get("gb")
    with pytest.raises(ValueError, match="must lie within"):
        gb.model_validate({**gb.model_dump(), "electricity_usd_per_kwh": gb.electricity_high_usd_per_kwh * 1.1})
