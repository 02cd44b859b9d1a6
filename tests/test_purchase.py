"""The purchase decision: which servers carry the replicas, where the spares live, against
hand-computed cases, brute force and its invariants; and the catalog's buying units."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmplan.cost.ownership import buy, configurations, resale_pct
from llmplan.cost.purchase import Config, Purchase, check_failure_domains, choose, min_cover
from llmplan.cost.tco import Finance
from llmplan.errors import LlmplanError
from llmplan.specs import FitRequest, resolve


def cfg(name: str, gpus: int, slots: int, host: float = 10.0, card: float = 5.0) -> Config:
    return Config(name, name, "pcie", "datacenter", "x", gpus, slots, card, host, host, host, 300.0, 500.0)


def cost(c: Config) -> float:
    return c.hardware_usd


def total(p: Purchase) -> float:
    return sum(cost(c) * n for c, n in p.lines)


# --------------------------------------------------------------------------- hand-computed cases


def test_three_tp2_replicas_in_four_card_chassis():
    # a 4-card chassis sold with 2 or 4 cards (TP 2: 1 or 2 replicas), host 10, card 5:
    # 2 cards = 20 for 1 replica, 4 cards = 30 for 2. Three replicas: 30 + 20 = 50 beats 30 + 30 and 3 × 20
    two, four = cfg("c4", 2, 1), cfg("c4", 4, 2)
    p = choose([two, four], 3, "none", 2, cost)
    assert sorted((c.gpus, n) for c, n in p.lines) == [(2, 1), (4, 1)]
    assert total(p) == 50 and p.replicas == 3 and p.gpus == 6 and p.idle_gpus == 0
    # an 8-slot chassis (host 15) with 6 cards holds the three for 15 + 30 = 45: one server wins
    six = Config("c8", "c8", "pcie", "datacenter", "x", 6, 3, 5.0, 15.0, 15.0, 15.0, 300.0, 500.0)
    p = choose([two, four, six], 3, "none", 2, cost)
    assert p.lines == ((six, 1),) and total(p) == 45


def test_one_replica_buys_one_card_not_a_board():
    one_card = cfg("pcie", 1, 1, host=12, card=8)  # 20
    board = cfg("board", 8, 8, host=50, card=25)  # 250
    p = choose([one_card, board], 1, "none", 1, cost)
    assert p.lines == ((one_card, 1),) and p.gpus == 1
    # when only the board is sold, it is bought whole and its free slots run more replicas
    p = choose([board], 1, "none", 1, cost)
    assert p.gpus == 8 and p.replicas == 8 and p.replicas_needed == 1 and p.serving_replicas == 8


def test_n_plus_1_with_one_replica_buys_two_servers():
    one_card = cfg("pcie", 1, 1, host=12, card=8)
    two_card = cfg("pcie", 2, 2, host=12, card=8)
    p = choose([one_card, two_card], 1, "n_plus_1", 1, cost)
    assert p.lines == ((one_card, 2),) and p.servers == 2 and p.serving_replicas == 1
    assert "any one server down" in p.placement()
    check_failure_domains(p)


def test_n_plus_1_places_the_spare_where_losing_the_largest_still_carries_the_peak():
    # need 3 with 1- and 2-slot servers: {2, 2} loses 2 -> 2 left (not enough); {2, 2, 1} loses 2 -> 3
    a, b = cfg("s1", 1, 1, host=10, card=5), cfg("s2", 2, 2, host=10, card=5)  # 15, 20
    p = choose([a, b], 3, "n_plus_1", 1, cost)
    # candidates: largest b (20) + cover 3 with {a, b}: b + a = 35 -> 55; largest a (15) + 3 × a = 45 -> 60
    assert total(p) == 55 and p.servers == 3 and p.serving_replicas == 3


def test_ha_pair_buys_two_independent_halves():
    a, b = cfg("s1", 1, 1, host=10, card=5), cfg("s2", 2, 2, host=10, card=5)
    p = choose([a, b], 2, "ha_pair", 1, cost)
    assert p.lines == ((b, 2),) and p.serving_replicas == 2 and total(p) == 40
    assert "two independent halves" in p.placement()


def test_a_lone_server_saves_the_fabric():
    small = cfg("s1", 1, 1, host=10, card=0)  # 10 each in a multi-server fleet
    big = cfg("s2", 2, 2, host=21, card=0)  # 21, but 19 when it is the only server (saves 2 of fabric)
    p = choose([small, big], 2, "none", 1, cost, single_saving=lambda c: 2.0)
    assert p.lines == ((big, 1),)
    p = choose([small, big], 2, "none", 1, cost, single_saving=lambda c: 0.5)
    assert p.lines == ((small, 2),)


def test_availability_needs_another_server():
    board = cfg("board", 8, 8)
    with pytest.raises(LlmplanError, match="spare capacity in another server"):
        choose([board], 1, "n_plus_1", 1, cost, max_servers=1)
    with pytest.raises(LlmplanError, match="spare capacity in another server"):
        check_failure_domains(Purchase(((board, 1),), 1, 1, "ha_pair"))
    with pytest.raises(LlmplanError, match="more than the 2 allowed"):
        choose([cfg("s1", 1, 1)], 4, "none", 1, cost, max_servers=2)


# --------------------------------------------------------------------------- brute force and properties


def brute_cover(items, need):
    best = math.inf
    bound = need + 1
    for counts in itertools.product(range(bound), repeat=len(items)):
        if sum(n * s for n, (s, _) in zip(counts, items, strict=True)) >= need:
            best = min(best, sum(n * c for n, (_, c) in zip(counts, items, strict=True)))
    return best


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8), st.integers(1, 100)), min_size=1, max_size=3), st.integers(1, 12))
def test_min_cover_is_optimal(items, need):
    got, counts = min_cover(items, need)
    assert got == pytest.approx(brute_cover(items, need))
    assert sum(n * s for n, (s, _) in zip(counts, items, strict=True)) >= need


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8), st.integers(1, 50)), min_size=1, max_size=3), st.integers(1, 400))
def test_min_cover_large_needs_match_the_plain_dynamic_programme(items, need):
    got, counts = min_cover(items, need)
    dp = [0.0] + [math.inf] * need
    for r in range(1, need + 1):
        dp[r] = min(c + dp[max(0, r - s)] for s, c in items)
    assert got == pytest.approx(dp[need])


configs_st = st.lists(st.tuples(st.integers(1, 8), st.integers(1, 60), st.integers(0, 40)), min_size=1, max_size=4)


def _configs(spec):
    return [cfg(f"c{i}", s, s, host=h, card=k) for i, (s, k, h) in enumerate(spec)]


@settings(max_examples=150, deadline=None)
@given(configs_st, st.integers(1, 12), st.sampled_from(["none", "n_plus_1", "ha_pair"]))
def test_losing_any_one_server_leaves_enough(spec, need, mode):
    p = choose(_configs(spec), need, mode, 1, cost)
    assert p.replicas >= need
    servers = [c for c, n in p.lines for _ in range(n)]
    if mode == "n_plus_1":
        assert len(servers) >= 2
        for i in range(len(servers)):
            assert sum(c.slots for j, c in enumerate(servers) if j != i) >= need
    if mode == "ha_pair":
        assert len(servers) >= 2 and len(servers) % 2 == 0
        half = [c for c, n in p.lines for _ in range(n // 2)]
        assert sum(c.slots for c in half) >= need  # either half alone carries the peak
    assert p.serving_replicas >= need


@settings(max_examples=150, deadline=None)
@given(configs_st, st.integers(1, 12), st.sampled_from(["none", "n_plus_1", "ha_pair"]))
def test_more_replicas_never_cost_less(spec, need, mode):
    cs = _configs(spec)
    assert total(choose(cs, need + 1, mode, 1, cost)) >= total(choose(cs, need, mode, 1, cost)) - 1e-9


@settings(max_examples=80, deadline=None)
@given(configs_st, st.integers(1, 6))
def test_n_plus_1_is_the_cheapest_survivable_set(spec, need):
    cs = _configs(spec)
    got = total(choose(cs, need, "n_plus_1", 1, cost))
    best = math.inf
    for counts in itertools.product(range(need + 2), repeat=len(cs)):
        servers = [c for c, n in zip(cs, counts, strict=True) for _ in range(n)]
        if len(servers) >= 2 and all(sum(c.slots for j, c in enumerate(servers) if j != i) >= need
                                     for i in range(len(servers))):
            best = min(best, sum(cost(c) for c in servers))
    assert got == pytest.approx(best)


# --------------------------------------------------------------------------- the catalog's buying units


def _d(cat, gpu, tp=1, model="meta-llama/Llama-3.1-8B-Instruct", engine="vllm"):
    return resolve(FitRequest(model=model, gpu=gpu, tp=tp, engine=engine), cat)


def test_one_l40s_replica_buys_a_one_card_server(cat):
    o = buy(_d(cat, "l40s"), cat, Finance(gpu_price_usd=8000), 1, "none", lambda placed: 10.0)
    assert o.purchase.servers == 1 and o.purchase.gpus == 1 and o.purchase.lines[0][0].kind == "pcie"
    two = buy(_d(cat, "l40s"), cat, Finance(gpu_price_usd=8000), 1, "n_plus_1", lambda placed: 10.0)
    assert two.purchase.servers == 2 and two.purchase.gpus == 2


def test_boards_are_bought_whole_and_the_report_says_so(cat):
    o = buy(_d(cat, "mi300x"), cat, Finance(), 1, "none", lambda placed: 10.0)
    assert o.purchase.gpus == 8 and o.purchase.replicas == 8 and o.purchase.replicas_needed == 1
    h100 = buy(_d(cat, "h100-sxm"), cat, Finance(), 1, "none", lambda placed: 10.0)
    assert h100.purchase.gpus == 4  # the 4-GPU HGX board is a real, smaller buying unit


def test_every_accelerator_with_a_server_has_a_priced_host(cat):
    for s in cat.servers:
        if s.kind == "appliance":
            assert s.host is None and s.max_power_w, s.id
        else:
            h = s.host
            assert h.cost_usd > 0 and h.power_w > 0 and h.basis.strip() and h.source.strip(), s.id
            if h.estimate:
                assert h.cost_low_usd < h.cost_usd < h.cost_high_usd, s.id
    for aid in ("l40s", "h100-nvl", "rtx-pro-6000", "rtx-4090", "rtx-5090", "h100-sxm", "h200-sxm", "b200", "mi300x",
                "mi325x", "mi355x", "gaudi3", "ascend-910b", "dgx-spark", "apple-m3-ultra-80c"):
        assert any(aid in s.accelerators for s in cat.servers), aid
    assert {s.kind for s in cat.servers} == {"board", "pcie", "workstation", "appliance"}


def test_catalog_sources_are_public_and_dated(cat):
    local = re.compile(r"(^|[\s;(])(/work/|/home/|shared/research|src/llmplan)")
    for s in cat.servers:
        for src in [s.source, *( [s.host.source] if s.host else [])]:
            assert not local.search(src), (s.id, src)
        assert s.as_of and (s.host is None or s.host.as_of)
    for lic in cat.software_licences:
        assert lic.source and lic.as_of and not local.search(lic.source)
        assert all(b.source.strip() and b.accelerator in cat.accelerators.entries for b in lic.bundled)
        assert set(lic.required_by_engines) <= set(cat.engines.entries)
    for c in cat.resale_curves:
        assert c.source and c.as_of and not local.search(c.source)
    for a in cat.cost_assumptions:
        assert not local.search(a.source), a.id


def test_appliances_have_one_all_in_price_and_power(cat):
    d = resolve(FitRequest(model="Qwen/Qwen3-8B", gpu="dgx-spark", engine="llamacpp", precision="q4_k_m"), cat)
    o = buy(d, cat, Finance(), 1, "none", lambda placed: 10.0)
    x = o.x
    assert x.host_cost_usd == 0 and x.host_power_w == 0
    assert x.gpu_price_usd == cat.accelerator("dgx-spark").price.usd and x.gpu_tdp_w == 240
    assert x.colocation_usd_per_kw_month == 0 and x.tor_switches == 0 and x.install_pct == 0


def test_a_replica_lives_inside_one_server(cat):
    with pytest.raises(LlmplanError, match="does not fit in any catalog server"):
        configurations(cat.accelerator("rtx-4090"), 8, cat, Finance())


def test_missing_facts_are_errors_that_say_how_to_supply_them(cat):
    acc = cat.accelerator("ascend-910c").model_copy(update={"price": None, "tdp_w": None})
    with pytest.raises(LlmplanError, match="--gpu-price"):
        configurations(acc, 1, cat, Finance())
    with pytest.raises(LlmplanError, match="no TDP for ascend-910c; give --gpu-tdp"):
        configurations(acc, 1, cat, Finance(gpu_price_usd=20000))
    configs, _ = configurations(acc, 1, cat, Finance(gpu_price_usd=20000, gpu_tdp_w=600))
    assert configs and all(c.gpu_max_w == 600 for c in configs)
    with pytest.raises(LlmplanError, match="no server in the catalog holds a10g"):  # rented only (AWS G5)
        configurations(cat.accelerator("a10g"), 1, cat, Finance(gpu_price_usd=3000, gpu_tdp_w=150))


def test_resale_curve_interpolates(cat):
    assert resale_pct(cat, 3) == (30, 20, 35)
    assert resale_pct(cat, 3.5)[0] == pytest.approx((30 + 17.5) / 2)
    assert resale_pct(cat, 20)[0] == pytest.approx(2.5)  # beyond the last point: its value
