"""The cost formulas against hand computation, and their invariants."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmplan.cost.model import (
    OnPremInputs,
    api_cost,
    breakeven_month,
    cloud_fleet_cost,
    discounted_monthly,
    onprem,
)

# one 8-GPU server with a host, a ToR switch, storage and one per-GPU licence with no bundled years
ROUND = OnPremInputs(
    servers=1, gpus=8, gpu_price_usd=25_000, host_cost_usd=50_000, gpu_tdp_w=700, host_power_w=1200,
    horizon_years=4, residual_pct=20, install_pct=10, storage_servers=1, storage_usd_per_server=5_000,
    tor_switches=1, tor_switch_usd=10_000, fabric_servers=0, fabric_usd_per_server=1_000,
    maintenance_pct_per_year=10, staff_fte_base=0.25, staff_fte_per_server=0.25, staff_usd_per_fte_year=150_000,
    electricity_usd_per_kwh=0.10, pue=1.5, colocation_usd_per_kw_month=100, utilisation_pct=50, active_pct=50,
    busy_power_pct_of_tdp=80, light_power_pct_of_tdp=40, idle_power_pct_of_tdp=20, host_power_draw_pct=50,
    discount_rate_pct=0,
    carbon_g_per_kwh=400, depreciation_years=5, licences=((8_000.0, 0.0),))


def test_single_server_by_hand():
    r = onprem(ROUND)
    # hardware: host 50,000 + 8 × 25,000; installation 10 %; one ToR switch 10,000; storage 5,000
    assert r.capex_hardware_usd == 250_000
    assert r.capex_items == {"hardware": 250_000, "installation": 25_000, "network": 10_000, "storage": 5_000}
    assert r.capex_usd == 290_000
    # metered: GPUs working half the time at half load: 20 % + (40 − 20) % × 0.5 + (80 − 40) % × 0.5 = 50 % (with
    # active = utilisation, idle + (busy − idle) × utilisation) of 700 W × 8 = 2,800 W; host 50 % of 1,200 W = 600 W
    assert r.it_kw == pytest.approx(3.4)
    assert r.energy_kwh_per_year == pytest.approx(3.4 * 1.5 * 8760)
    # contracted: the maximum, 8 × 700 + 1,200 W = 6.8 kW, whatever the utilisation
    assert r.contracted_kw == pytest.approx(6.8)
    items = r.opex_items_per_year
    assert items["energy"] == pytest.approx(3.4 * 1.5 * 8760 * 0.10)
    assert items["colocation"] == pytest.approx(6.8 * 100 * 12)
    assert items["maintenance"] == pytest.approx(25_000)
    assert items["staff"] == pytest.approx((0.25 + 0.25 * 1) * 150_000)
    assert items["software"] == pytest.approx(8_000)
    opex = 4_467.6 + 8_160 + 25_000 + 75_000 + 8_000
    assert r.opex_usd_per_year == pytest.approx(opex)
    assert r.residual_usd == pytest.approx(50_000)  # 20 % resale of 250,000
    assert r.tco_usd == pytest.approx(290_000 + 4 * opex - 50_000)
    assert r.npv_usd == pytest.approx(r.tco_usd)  # at a 0 % discount rate
    assert r.emissions_kg_per_year == pytest.approx(3.4 * 1.5 * 8760 * 0.4)
    assert r.depreciation_usd_per_year == pytest.approx(250_000 / 5)


def test_energy_counts_the_time_the_engines_work_not_only_their_load():
    """Review finding: at 12 % utilisation the report billed the GPUs near idle although a continuous-batching
    engine steps whenever any request is in flight. Hand-computed: working 80 % of the time at 50 % load,
    20 % + (40 − 20) % × 0.8 + (80 − 40) % × 0.5 = 56 % of 700 W × 8 = 3,136 W, plus the host's 600 W; an active
    share below the utilisation counts as the utilisation."""
    r = onprem(replace(ROUND, active_pct=80))
    assert r.it_kw == pytest.approx(3.736)
    assert r.energy_kwh_per_year == pytest.approx(3.736 * 1.5 * 8760)
    assert onprem(replace(ROUND, active_pct=10)).it_kw == pytest.approx(onprem(ROUND).it_kw)


def test_active_share_of_a_day_by_hand():
    """Poisson arrivals: an engine is idle with probability e^(−λR). Ten hours at 1 request/s of 2 s each, and
    fourteen without traffic: 10/24 × (1 − e^−2) = 36.03 %."""
    import math

    from llmplan.cost.model import active_pct

    assert active_pct([0.0] * 14 + [1.0] * 10, 2.0) == pytest.approx(100 * 10 / 24 * (1 - math.exp(-2)))
    assert active_pct([0.0] * 24, 5.0) == 0.0


def test_fleet_load_counts_the_idle_days():
    """Ten hours a day at 1 request/s on 250 days a year, two replicas of 2 req/s, one request alone 2 s: the
    year's utilisation is 250/365 × mean(0.25 over 10 hours) and the active share 250/365 of the day's."""
    import numpy as np

    from llmplan.cost.model import active_pct
    from llmplan.cost.ownership import fleet_load

    rate_h = np.array([0.0] * 14 + [1.0] * 10)
    util_of, active_of = fleet_load(rate_h, 2.0, 2.0, 250)
    assert util_of(2) == pytest.approx(100 * 250 / 365 * 10 / 24 * 0.25)
    assert active_of(2) == pytest.approx(250 / 365 * active_pct(rate_h / 2, 2.0))
    assert fleet_load(rate_h, 2.0, 2.0, 365)[0](2) == pytest.approx(100 * 10 / 24 * 0.25)
    assert fleet_load(rate_h, 2.0, 2.0, 250, override_pct=70.0)[0](2) == 70.0


def test_colocation_is_billed_on_contracted_kw_not_on_draw():
    busy, idle = onprem(replace(ROUND, utilisation_pct=100)), onprem(replace(ROUND, utilisation_pct=1))
    assert busy.opex_items_per_year["colocation"] == idle.opex_items_per_year["colocation"]
    assert busy.opex_items_per_year["energy"] > idle.opex_items_per_year["energy"]
    assert busy.it_kw <= busy.contracted_kw  # metered draw never exceeds the maximum


def test_bundled_licence_years_are_not_paid():
    three = onprem(replace(ROUND, licences=((8_000.0, 3.0),)))
    assert three.licence_usd_horizon == pytest.approx(8_000)  # only the 4th year
    assert three.opex_items_per_year["software"] == pytest.approx(2_000)
    assert onprem(replace(ROUND, licences=((8_000.0, 5.0),))).licence_usd_horizon == 0
    cum = three.cumulative_by_month(48)
    other = three.opex_usd_per_year - 2_000
    assert cum[36] == pytest.approx(290_000 + other * 3)  # nothing paid for the licence in 3 years
    assert cum[47] == pytest.approx(290_000 + other / 12 * 47 + 8_000 / 12 * 11)
    # NPV at 0 %: the same total; at 8 % the licence paid late is worth less than paid evenly
    assert three.npv_usd == pytest.approx(three.tco_usd)
    r8 = onprem(replace(ROUND, licences=((8_000.0, 3.0),), discount_rate_pct=8))
    q = 1.08 ** (-1 / 12)
    explicit = (290_000 + sum(other / 12 * q**m for m in range(1, 49)) + sum(8_000 / 12 * q**m for m in range(37, 49))
                - 50_000 / 1.08**4)
    assert r8.npv_usd == pytest.approx(explicit)


def test_npv_by_explicit_sum():
    x = replace(ROUND, discount_rate_pct=8)
    r = onprem(x)
    q = 1.08 ** (-1 / 12)
    opex = r.opex_usd_per_year
    explicit = 290_000 + sum(opex / 12 * q**m for m in range(1, 49)) - 50_000 / 1.08**4
    assert r.npv_usd == pytest.approx(explicit)
    assert discounted_monthly(1.0, 1, 0) == pytest.approx(12)


def test_breakeven_month_by_hand():
    r = onprem(ROUND)
    owned = r.cumulative_by_month(48)
    rent = cloud_fleet_cost(8, 8760, 3.0, 4, committed=True)
    assert rent == pytest.approx(8 * 8760 * 3.0 * 4)
    rented = np.arange(49) * rent / 48
    # 290,000 + 10,052.3 m <= 17,520 m  ->  m >= 38.8
    assert breakeven_month(owned, rented) == 39
    assert breakeven_month(owned, rented * 0.1) is None


def test_api_cost_by_hand():
    # 1M input (40 % cached), 0.5M output at $2 / $0.5 cached / $8 per 1M
    assert api_cost(1e6, 5e5, 40, 2.0, 8.0, 0.5) == pytest.approx(0.6 * 2 + 0.4 * 0.5 + 0.5 * 8)


def test_commitment_is_paid_whether_used_or_not():
    assert cloud_fleet_cost(8, 1000, 2.0, 1, committed=False) == pytest.approx(16_000)
    assert cloud_fleet_cost(8, 1000, 2.0, 1, committed=True) == pytest.approx(8 * 8760 * 2.0)


PRICES = ("host_cost_usd", "gpu_price_usd", "electricity_usd_per_kwh", "colocation_usd_per_kw_month",
          "staff_usd_per_fte_year", "storage_usd_per_server", "tor_switch_usd", "fabric_usd_per_server",
          "maintenance_pct_per_year", "install_pct", "licence_price_factor")


@settings(max_examples=200, deadline=None)
@given(price=st.sampled_from(PRICES), base=st.floats(0, 1e6), bump=st.floats(0, 1e6),
       util=st.floats(1, 100), years=st.floats(0.5, 10), rate=st.floats(0, 20), resale=st.floats(0, 100),
       free=st.floats(0, 10))
def test_costs_are_non_negative_and_monotone_in_every_price(price, base, bump, util, years, rate, resale, free):
    x = replace(ROUND, utilisation_pct=util, horizon_years=years, discount_rate_pct=rate, residual_pct=resale,
                fabric_servers=1, licences=((8_000.0, free),), **{price: base})
    lo, hi = onprem(x), onprem(replace(x, **{price: base + bump}))
    for r in (lo, hi):
        assert r.capex_usd >= 0 and r.opex_usd_per_year >= 0 and r.energy_kwh_per_year >= 0
        assert r.tco_usd >= 0 and r.npv_usd >= 0
        assert r.capex_usd == pytest.approx(sum(r.capex_items.values()))
        assert r.opex_usd_per_year == pytest.approx(sum(r.opex_items_per_year.values()))
        assert r.tco_usd == pytest.approx(
            r.capex_usd + r.opex_usd_per_year * years - r.residual_usd, rel=1e-9, abs=1e-6
        )
    assert hi.tco_usd >= lo.tco_usd - 1e-6
    assert hi.npv_usd >= lo.npv_usd - 1e-6


@settings(max_examples=100, deadline=None)
@given(a=st.floats(0, 100), b=st.floats(0, 100), tok=st.floats(0, 1e12), cached=st.floats(0, 100))
def test_api_cost_monotone(a, b, tok, cached):
    assert 0 <= api_cost(tok, tok, cached, a, a, a) <= api_cost(tok, tok, cached, a + b, a + b, a + b) + 1e-9
