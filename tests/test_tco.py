"""TCO orchestration: the JSON contract (every line item visible), what is bought, licences,
staff, facility, resale, Monte Carlo and sensitivity, and clear refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llmplan.catalog import load_catalog
from llmplan.catalog.loader import dump_entries
from llmplan.cli import main
from llmplan.cost.model import onprem
from llmplan.cost.tco import Finance, TcoRequest, tco
from llmplan.cost.uncertainty import monte_carlo, tornado
from llmplan.errors import LlmplanError

from .test_cost_model import ROUND

CAT = load_catalog()
KEYS = {"capex_usd", "capex_items_usd", "opex_usd_per_year", "opex_items_usd_per_year", "licences", "purchase",
        "residual_value_usd", "residual_value_pct", "power_kw", "staff_fte", "tco_usd", "npv_usd",
        "cost_per_million_tokens_usd", "energy_kwh_per_year", "emissions_kg_per_year", "alternatives"}
CAPEX = {"hardware", "installation", "network", "storage"}
OPEX = {"energy", "colocation", "maintenance", "staff", "software"}
RANGES = {"electricity_usd_per_kwh": (0.05, 0.10, 0.2), "staff_fte_base": (0.1, 0.25, 0.4),
          "host_cost_usd": (30_000.0, 50_000.0, 60_000.0)}


def _req(**kw) -> TcoRequest:
    base = dict(model="meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", workload="chat", requests_per_day=200_000,
                draws=2000, finance=Finance(region="us-il"))
    base.update(kw)
    return TcoRequest(**base)


def _adds_up(r: dict) -> None:
    assert set(r["capex_items_usd"]) == CAPEX and set(r["opex_items_usd_per_year"]) == OPEX
    assert r["capex_usd"] == pytest.approx(sum(r["capex_items_usd"].values()))
    assert r["opex_usd_per_year"] == pytest.approx(sum(r["opex_items_usd_per_year"].values()))
    assert r["tco_usd"] == pytest.approx(r["capex_usd"] + r["opex_usd_per_year"] * r["horizon_years"]
                                         - r["residual_value_usd"])
    p = r["purchase"]
    assert r["capex_items_usd"]["hardware"] == pytest.approx(sum(x["count"] * x["hardware_usd_each"]
                                                                 for x in p["lines"]))
    assert p["gpus_bought"] == sum(x["count"] * x["gpus_each"] for x in p["lines"]) == r["deployment"]["gpus"]
    assert all(v >= 0 for v in (*r["capex_items_usd"].values(), *r["opex_items_usd_per_year"].values()))


def test_tco_json_shows_every_line_item(capsys, tmp_path):
    code = main(["tco", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--workload", "chat",
                 "--requests-per-day", "200000", "--region", "us-il", "--draws", "500", "--availability", "n_plus_1",
                 "--chart", str(tmp_path / "c.html"), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    r = json.loads(out.out)
    assert KEYS <= set(r)
    _adds_up(r)
    p = r["purchase"]
    assert {"lines", "gpus_needed", "gpus_bought", "idle_gpus", "placement", "extra_capacity_req_s",
            "replicas_after_worst_failure", "contracted_kw"} <= set(p)
    assert p["servers"] >= 2 and p["replicas_after_worst_failure"] >= p["replicas_needed"]
    for line in p["lines"]:
        assert {"server", "count", "gpus_each", "host_usd_each", "gpu_price_usd", "max_power_w_each"} <= set(line)
    assert r["power_kw"]["contracted"] == pytest.approx(p["contracted_kw"])
    assert r["power_kw"]["metered_average"] <= r["power_kw"]["contracted"]
    assert r["capex_items_usd"]["network"] > 0  # two ToR switches (availability) and the fabric
    for a in r["alternatives"]:
        assert {"name", "tco_usd", "cost_per_million_tokens_usd", "breakeven_month"} <= set(a)
        assert a["breakeven_month"] is None or 0 <= a["breakeven_month"] <= 48
    assert any(a["kind"] == "cloud_gpu" for a in r["alternatives"])
    page = (tmp_path / "c.html").read_text()
    assert "<svg" in page and "cdn" not in page.lower()


def test_tco_text_names_the_purchase_and_the_line_items(capsys):
    assert main(["tco", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "mi300x", "--requests-per-day", "20000",
                 "--draws", "0", "--no-cloud", "--no-api"]) == 0
    out = capsys.readouterr().out
    assert "Bought: 1 × mi300x-8gpu with 8 × mi300x" in out
    assert "GPU(s) needed for the peak, 8 bought" in out and "could carry" in out
    for item in ("capex: network", "opex/year: colocation", "opex/year: staff", "resale value"):
        assert item in out


def test_tokens_and_cost_per_million_are_consistent():
    r = tco(_req(), CAT)
    tokens = r["workload"]["tokens_per_year"] * r["horizon_years"]
    assert r["cost_per_million_tokens_usd"] == pytest.approx(r["tco_usd"] / tokens * 1e6)
    # the chat preset's office-hours day runs on the catalog's 250 working days, not on 365
    assert r["workload"]["days_per_year"] == 250
    assert r["workload"]["tokens_per_year"] == pytest.approx(200_000 * 250 * (1000 + 300))
    _adds_up(r)


def test_idle_days_carry_no_tokens_and_no_rented_hours(tmp_path):
    """The same office-hours day on every day of the year: tokens, the API bill and the on-demand GPU hours
    scale by 365/250; owning costs more energy (the engines work on more days) but no more hardware."""
    import yaml

    f = tmp_path / "w.yaml"
    f.write_text(yaml.safe_dump({"input_tokens": 1000, "output_tokens": 300, "profile": "office-hours",
                                 "days_per_year": 365}))
    api = ("together-llama-3.1-8b",)
    weekdays, everyday = tco(_req(draws=0, api_ids=api), CAT), tco(_req(draws=0, api_ids=api, workload=str(f)), CAT)
    assert everyday["workload"]["tokens_per_year"] == pytest.approx(weekdays["workload"]["tokens_per_year"] * 365 / 250)
    assert everyday["workload"]["utilisation_pct"] == pytest.approx(weekdays["workload"]["utilisation_pct"] * 365 / 250)

    def alt(r, kind):
        return next(a["tco_usd"] for a in r["alternatives"] if a.get("pricing") == kind or a["kind"] == kind)

    assert alt(everyday, "on_demand") == pytest.approx(alt(weekdays, "on_demand") * 365 / 250)
    assert alt(everyday, "api") == pytest.approx(alt(weekdays, "api") * 365 / 250)
    assert everyday["capex_usd"] == weekdays["capex_usd"]
    assert everyday["opex_items_usd_per_year"]["energy"] > weekdays["opex_items_usd_per_year"]["energy"]


def test_licences_follow_what_is_deployed():
    vllm = tco(_req(draws=0), CAT)
    assert vllm["licences"] == [] and vllm["opex_items_usd_per_year"]["software"] == 0
    nim = tco(_req(engine="nim", draws=0, fixed_replicas=2), CAT)
    (lic,) = nim["licences"]
    assert lic["id"] == "nvidia-ai-enterprise" and lic["why"] == "required by nim" and lic["bundled_years"] == 0
    gpus = nim["deployment"]["gpus"]
    assert nim["opex_items_usd_per_year"]["software"] == pytest.approx(4500 * gpus)
    # H100 NVL includes 5 years: nothing to pay over 4, two years over 7
    nvl = tco(_req(gpu="h100-nvl", engine="nim", draws=0, fixed_replicas=1), CAT)
    assert nvl["licences"][0]["bundled_years"] == 5 and nvl["opex_items_usd_per_year"]["software"] == 0
    nvl7 = tco(_req(gpu="h100-nvl", engine="nim", draws=0, fixed_replicas=1,
                    finance=Finance(region="us-il", horizon_years=7)), CAT)
    assert nvl7["licences"][0]["paid_years"] == 2
    assert nvl7["opex_items_usd_per_year"]["software"] == pytest.approx(4500 * nvl7["deployment"]["gpus"] * 2 / 7)
    # asked for on AMD: not applicable, not charged, and said so
    amd = tco(_req(gpu="mi300x", draws=0, finance=Finance(licences=("nvidia-ai-enterprise",))), CAT)
    assert amd["licences"] == [] and any("does not apply to AMD" in n for n in amd["notes"])


def test_staff_scales_with_the_fleet_and_the_facility():
    one = tco(_req(draws=0, fixed_replicas=1, gpu="l40s", requests_per_day=100_000,
                   finance=Finance(gpu_price_usd=8000)), CAT)  # a load one L40S carries
    many = tco(_req(draws=0, fixed_replicas=40, gpu="l40s", finance=Finance(gpu_price_usd=8000)), CAT)
    base = CAT.cost_assumptions.get("staff_fte_base_datacenter").value
    per = CAT.cost_assumptions.get("staff_fte_per_server").value
    assert one["staff_fte"] == pytest.approx(base + per * one["purchase"]["servers"])
    assert many["staff_fte"] == pytest.approx(base + per * many["purchase"]["servers"])
    assert many["purchase"]["servers"] > one["purchase"]["servers"]
    desk = tco(_req(draws=0, fixed_replicas=1, gpu="rtx-4090", requests_per_day=5000), CAT)
    assert desk["purchase"]["facility"] == "office"
    assert desk["staff_fte"] == pytest.approx(CAT.cost_assumptions.get("staff_fte_base_office").value
                                              + CAT.cost_assumptions.get("staff_fte_per_workstation").value)
    assert desk["opex_items_usd_per_year"]["colocation"] == 0 and desk["capex_items_usd"]["network"] == 0
    racked = tco(_req(draws=0, fixed_replicas=1, gpu="rtx-pro-6000", requests_per_day=5000,
                      finance=Finance(region="us-il", facility="datacenter")), CAT)
    assert racked["purchase"]["facility"] == "datacenter" and racked["purchase"]["lines"][0]["kind"] == "pcie"
    assert racked["opex_items_usd_per_year"]["colocation"] > 0 and racked["staff_fte"] == pytest.approx(base + per)
    with pytest.raises(LlmplanError, match="rtx-4090 is not sold as a rack server"):
        tco(_req(draws=0, fixed_replicas=1, gpu="rtx-4090", requests_per_day=5000,
                 finance=Finance(facility="datacenter")), CAT)


def test_colocation_by_contracted_kw_and_resale_from_the_curve():
    r = tco(_req(draws=0, fixed_replicas=1), CAT)
    rate = CAT.regions.get("us-il").colocation_usd_per_kw_month or CAT.cost_assumptions.get(
        "colocation_usd_per_kw_month").value
    contracted = sum(x["count"] * x["max_power_w_each"] for x in r["purchase"]["lines"]) / 1000
    assert r["opex_items_usd_per_year"]["colocation"] == pytest.approx(contracted * rate * 12)
    assert r["residual_value_pct"] == pytest.approx(17.5)  # the curve at 4 years
    assert r["residual_value_usd"] == pytest.approx(0.175 * r["capex_items_usd"]["hardware"])


def test_replicas_below_the_peak_are_refused(capsys):
    with pytest.raises(LlmplanError, match="cannot carry the peak"):
        tco(_req(requests_per_day=5_000_000, fixed_replicas=1, draws=0), CAT)
    code = main(["tco", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--requests-per-day", "5000000",
                 "--replicas", "1", "--draws", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "the peak needs at least" in err and "Traceback" not in err


def test_utilisation_and_power_never_exceed_their_limits():
    for n in (1, 3, 12):
        r = tco(_req(requests_per_day=100_000, fixed_replicas=n, draws=0), CAT)
        assert 0 < r["workload"]["utilisation_pct"] <= 100
        assert r["power_kw"]["metered_average"] <= r["power_kw"]["contracted"]


def test_single_server_under_availability_is_refused(capsys):
    with pytest.raises(LlmplanError, match="spare capacity in another server"):
        tco(_req(draws=0, fixed_replicas=1, availability="n_plus_1", max_servers=1), CAT)
    code = main(["tco", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--requests-per-day", "1000",
                 "--availability", "ha_pair", "--max-servers", "1", "--draws", "0"])
    assert code == 2 and "another server" in capsys.readouterr().err


def test_zero_uncertainty_monte_carlo_equals_the_deterministic_result(tmp_path):
    d = tmp_path / "cat"
    d.mkdir()
    entries = [{"id": a.id, "value": a.value, "low": a.value, "high": a.value, "unit": a.unit, "source": "test",
                "as_of": "2026-01-01"} for a in CAT.cost_assumptions]
    (d / "flat.yaml").write_text(dump_entries("cost_assumptions", entries))
    cat = load_catalog([d])
    r = tco(_req(draws=3000, finance=Finance(region="us-il", residual_value_pct=20, server_price_usd=40_000)), cat)
    u = r["uncertainty"]
    assert u["varied"] == []
    assert u["tco_usd"]["p10"] == u["tco_usd"]["p50"] == u["tco_usd"]["p90"] == pytest.approx(r["tco_usd"])


def test_estimated_prices_are_labelled_and_vary(tmp_path):
    d = tmp_path / "cat"
    d.mkdir()
    acc = CAT.accelerator("l40s").model_dump(mode="json", exclude_none=True)
    acc["price"] = {"usd": 7500, "as_of": "2026-01-01", "source": "test", "estimate": True, "low_usd": 6000,
                    "high_usd": 10000, "basis": "from comparable PCIe cards"}
    (d / "acc.yaml").write_text(dump_entries("accelerators", [acc]))
    r = tco(_req(gpu="l40s", draws=2000, fixed_replicas=1, requests_per_day=100_000), load_catalog([d]))
    assert any("l40s price $7,500 is an estimate ($6,000–$10,000)" in n for n in r["notes"])
    assert "gpu_price_usd" in r["uncertainty"]["varied"]
    row = next(x for x in r["sensitivity"] if x["assumption"] == "gpu_price_usd")
    assert (row["low"], row["value"], row["high"]) == (6000, 7500, 10000)


def test_monte_carlo_is_seeded_and_spreads():
    a = monte_carlo(ROUND, RANGES, 5000, 1, 1e12, None)
    b = monte_carlo(ROUND, RANGES, 5000, 1, 1e12, None)
    assert a == b
    assert a["tco_usd"]["p10"] < a["tco_usd"]["p50"] < a["tco_usd"]["p90"]
    c = monte_carlo(ROUND, RANGES, 5000, 2, 1e12, None)
    assert c["tco_usd"]["p50"] != a["tco_usd"]["p50"]


def test_user_fixed_assumptions_are_not_varied():
    r = tco(_req(draws=500, finance=Finance(electricity_usd_per_kwh=0.1, pue=1.5, residual_value_pct=10)), CAT)
    varied = r["uncertainty"]["varied"]
    assert "electricity_usd_per_kwh" not in varied and "pue" not in varied and "residual_pct" not in varied
    assert "residual_pct" in tco(_req(draws=500), CAT)["uncertainty"]["varied"]  # the resale band otherwise


def test_tornado_ranks_by_swing():
    rows = tornado(ROUND, RANGES)
    swings = [r["swing_usd"] for r in rows]
    assert swings == sorted(swings, reverse=True) and swings[0] > 0
    top = rows[0]
    lo = float(onprem(replace(ROUND, **{top["assumption"]: top["low"]})).tco_usd)
    assert top["tco_at_low_usd"] == pytest.approx(lo)


def test_hybrid_is_never_worse_than_either_extreme():
    r = tco(_req(workload="chat", requests_per_day=400_000, draws=0), CAT)
    h = r["hybrid"]
    if h is None:
        pytest.skip("no on-demand offer for this accelerator")
    rent_all = next(a["tco_usd"] for a in r["alternatives"] if a.get("pricing") == "on_demand")
    assert h["tco_usd"] <= min(r["tco_usd"], rent_all) * 1.000001 + 1


def test_missing_purchase_price_and_tdp_are_clear_errors(capsys, tmp_path):
    acc = CAT.accelerator("l40s").model_dump(mode="json", exclude_none=True)
    acc.pop("price", None)
    acc.pop("tdp_w", None)
    (tmp_path / "acc.yaml").write_text(dump_entries("accelerators", [acc]))
    argv = ["tco", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l40s", "--requests-per-day", "1000", "--draws", "0",
            "--replicas", "1", "--catalog", str(tmp_path)]
    assert main(argv) == 2
    assert "no purchase price for l40s; give --gpu-price" in capsys.readouterr().err
    assert main([*argv, "--gpu-price", "8000"]) == 2
    assert "no TDP for l40s; give --gpu-tdp" in capsys.readouterr().err
    assert main([*argv, "--gpu-price", "8000", "--gpu-tdp", "350", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["assumptions"]["gpu_tdp_w"] == 350 and r["opex_items_usd_per_year"]["energy"] > 0


def test_economics_catalog_references_resolve():
    for o in CAT.cloud_offers:
        assert o.accelerator in CAT.accelerators.entries, o.id
        assert len(o.provider_country) == 2 and len(o.region_country) == 2 or o.region_country == "unspecified"
    for p in CAT.api_prices:
        assert p.catalog_model is None or p.catalog_model in CAT.models, p.id
    for a in CAT.cost_assumptions:
        assert a.low <= a.value <= a.high
    assert len(CAT.cloud_offers) >= 50 and len(CAT.api_prices) >= 50 and len(CAT.regions) >= 5


def test_renting_on_demand_pays_for_the_spares_and_no_cloud_means_no_cloud_hybrid():
    """On demand follows the hourly need plus the spares the availability asks for (as the planner rents them);
    without cloud_gpu among the alternatives the hybrid split never rents GPUs."""
    def on_demand(r):
        return next(a["tco_usd"] for a in r["alternatives"] if a.get("pricing") == "on_demand")

    none = tco(_req(draws=0, alternatives=("cloud_gpu",)), CAT)
    spare = tco(_req(draws=0, alternatives=("cloud_gpu",), availability="n_plus_1"), CAT)
    assert on_demand(spare) > on_demand(none)
    assert tco(_req(draws=0, alternatives=()), CAT)["hybrid"] is None
