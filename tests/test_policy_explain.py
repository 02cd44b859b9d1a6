"""Policy that explains itself: buyer_country defaults, and a no-option answer that names the rule, the
scenario field and the value that would change it."""

from __future__ import annotations

import copy

from llmplan.planner import parse_scenario
from llmplan.planner import policy as pol
from llmplan.planner.report import run, text
from llmplan.planner.scenario import Policy

CN = {"name": "CN data, no US hardware",
      "workload": {"requests_per_day": 20000, "profile": "flat", "input_tokens": 1000, "output_tokens": 200,
                   "slo": {"ttft_p95_ms": 3000, "tpot_p95_ms": 100}},
      "models": ["Qwen/Qwen2.5-32B-Instruct"], "hardware": ["ascend-910b", "h100-sxm", "h20"], "alternatives": [],
      "policy": {"deployment": ["on_prem"], "data_residency": ["CN"], "deny_hardware_countries": ["US"],
                 "allow_export_controlled": False}}


def test_buyer_country_defaults_from_a_single_country_residency(cat):
    p = pol.resolve_policy(Policy(data_residency=["CN"]), cat)
    assert p.buyer_country == "CN"
    assert pol.resolve_policy(Policy(data_residency=["EU"]), cat).buyer_country is None  # a group, not a country
    assert pol.resolve_policy(Policy(data_residency=["CN", "HK"]), cat).buyer_country is None
    assert pol.resolve_policy(Policy(data_residency=["CN"], buyer_country="DE"), cat).buyer_country == "DE"
    assert pol.assumptions(Policy(data_residency=["CN"]), cat)[0].startswith("policy.buyer_country CN")
    assert pol.assumptions(Policy(data_residency=["CN"], buyer_country="CN"), cat) == []


def test_unknown_buyer_is_not_silently_outside_china(cat):
    v = pol.export_rule(cat.accelerator("ascend-910b"), Policy(allow_export_controlled=False))
    assert not v.ok and "policy.buyer_country" in v.reasons[0] and "outside China" not in v.reasons[0]
    assert pol.export_rule(cat.accelerator("ascend-910b"), Policy(buyer_country="CN")).ok


def test_cn_residency_with_us_hardware_denied_plans_on_ascend(cat):
    """The expert's scenario: data in CN, US hardware denied, no buyer_country given."""
    r = run(parse_scenario(CN), cat)
    assert r["recommendation"] is not None and r["recommendation"]["hardware"] == "ascend-910b"
    report = text(r)
    assert "Assumption: policy.buyer_country CN, taken from data_residency [CN]" in report


def test_no_option_names_the_field_and_the_value_that_changes_the_answer(cat):
    doc = copy.deepcopy(CN)
    doc["policy"]["data_residency"] = ["CN", "HK"]  # two places: no buyer country to assume
    r = run(parse_scenario(doc), cat)
    assert r["recommendation"] is None
    msg = r["why_none"]
    assert "policy.buyer_country: CN" in msg and "export control" in msg
    assert r["why_none_detail"]["decided_by"] == "policy"
    # the value it names does change the answer
    doc["policy"]["buyer_country"] = "CN"
    assert run(parse_scenario(doc), cat)["recommendation"]["hardware"] == "ascend-910b"


def test_no_option_by_hardware_origin_names_the_deny_list(cat):
    doc = copy.deepcopy(CN)
    doc["policy"] = {"deployment": ["on_prem"], "deny_hardware_countries": ["US", "CN"]}
    r = run(parse_scenario(doc), cat)
    assert r["recommendation"] is None
    first = r["why_none_detail"]["relaxations"][0]
    assert first["field"] == "policy.deny_hardware_countries" and "hardware origin" in first["rules"]
    assert "Setting policy.deny_hardware_countries: [" in r["why_none"]
    doc["policy"]["deny_hardware_countries"] = first["value"]
    assert run(parse_scenario(doc), cat)["recommendation"] is not None


def test_no_option_after_the_policy_names_the_rule_and_field(cat):
    doc = copy.deepcopy(CN)
    doc["policy"] = {"deployment": ["on_prem"]}
    doc["hardware"] = ["h100-sxm"]
    doc["workload"]["slo"] = {"ttft_p95_ms": 1, "tpot_p95_ms": 100}  # no hardware prefills 1,000 tokens in 1 ms
    r = run(parse_scenario(doc), cat)
    assert r["recommendation"] is None and r["why_none_detail"]["decided_by"] == "latency"
    assert "workload.slo" in r["why_none"]
