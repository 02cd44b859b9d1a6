"""The planner: scenario files, policy rules, the search, its report and `llmplan plan`."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmplan.cli import main
from llmplan.errors import LlmplanError
from llmplan.planner import load_scenario, parse_scenario
from llmplan.planner import policy as pol
from llmplan.planner.report import explain, pareto, run, text
from llmplan.planner.scenario import Policy
from llmplan.planner.search import ranking_cost, short_after_gpu_failure
from llmplan.planner.serve_config import serve_command
from llmplan.serving.api import ServeRequest, simulate
from llmplan.specs import FitRequest, resolve

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
OPTION_KEYS = {"model", "precision", "hardware", "num_gpus", "servers", "tp", "pp", "replicas", "engine", "deployment",
               "tco_usd", "cost_per_million_tokens_usd", "ttft_p95_ms", "tpot_p95_ms", "quality_recovery_pct",
               "serve_command"}

ISSUE_EXAMPLE = """
schema_version: 1
name: Internal assistant for 3,000 employees
workload:
  requests_per_day: 60000
  profile: office-hours
  input_tokens: {mean: 1800, p95: 6000}
  output_tokens: {mean: 400, p95: 1200}
  slo: {ttft_p95_ms: 2000, tpot_p95_ms: 80}
models: [meta-llama/Llama-3.3-70B-Instruct, Qwen/Qwen2.5-72B-Instruct]
min_quality_recovery_pct: 97
hardware: [h100-sxm, h200, mi300x, l40s]
engines: [vllm]
policy:
  deployment: [on_prem]
  data_residency: [EU]
  deny_hardware_countries: []
  allow_export_controlled: true
  model_licenses: [commercial]
finance:
  horizon_years: 4
  electricity_usd_per_kwh: 0.20
  pue: 1.35
  discount_rate: 0.08
alternatives: [cloud_gpu, api]
"""


@pytest.fixture(scope="module")
def results(cat):
    return {p.stem: run(load_scenario(p), cat) for p in EXAMPLES}


# --------------------------------------------------------------------------- scenario files


def test_issue_example_loads_as_written():
    s = parse_scenario(yaml.safe_load(ISSUE_EXAMPLE))
    assert s.workload.requests_per_day == 60000 and s.workload.slo.ttft_p95_ms == 2000
    assert s.hardware == ["h100-sxm", "h200", "mi300x", "l40s"] and s.finance.pue == 1.35
    assert s.policy.deployment == ["on_prem"] and s.policy.data_residency == ["EU"]
    assert yaml.safe_load((REPO / "examples" / "internal-assistant.yaml").read_text()) == \
        yaml.safe_load(ISSUE_EXAMPLE)


def test_every_scenario_field_has_a_default_and_a_description():
    from llmplan.planner import scenario as sc

    for cls in (sc.Scenario, sc.ScenarioWorkload, sc.ModelConstraints, sc.HardwareConstraints, sc.Policy,
                sc.ScenarioFinance, sc.Availability):
        for name, f in cls.model_fields.items():
            assert not f.is_required(), (cls.__name__, name)
            assert f.description, (cls.__name__, name)
    assert sc.Scenario() is not None


@pytest.mark.parametrize("doc, message", [
    ({"schema_version": 2}, "schema_version 2 is not supported"),
    ({"workload": {"requests_per_day": -5}}, "workload.requests_per_day"),
    ({"policy": {"deployment": ["moon"]}}, "policy.deployment.0"),
    ({"hardwre": ["h100-sxm"]}, "hardwre: unknown field; did you mean 'hardware'?"),
    ({"policy": {"model_licenses": ["gpl-only"]}}, "policy.model_licenses.0"),
])
def test_invalid_scenarios_name_the_field(doc, message):
    with pytest.raises(LlmplanError, match=re.escape(message)):
        parse_scenario(doc)


def test_unknown_names_suggest_the_closest(cat):
    s = parse_scenario({"models": ["meta-llama/Llama-3.3-70B-Instruc"], "hardware": ["h100-sxm"],
                        "workload": {"requests_per_day": 1000}})
    with pytest.raises(LlmplanError, match="Llama-3.3-70B-Instruct"):
        run(s, cat)
    s = parse_scenario({"models": ["Qwen/Qwen3-8B"], "hardware": ["h100-sxn"], "workload": {"requests_per_day": 1000}})
    with pytest.raises(LlmplanError, match="h100-sxm"):
        run(s, cat)


def test_models_and_hardware_by_constraint(cat):
    from llmplan.planner.search import candidate_hardware, candidate_models

    s = parse_scenario({"models": {"min_params_b": 7, "max_params_b": 35, "licenses": ["permissive"],
                                   "countries": ["FR", "US"], "max_models": 50},
                        "hardware": {"vendors": ["NVIDIA"], "min_memory_gib": 80, "max_price_usd": 40000}})
    ms = candidate_models(s, cat)
    assert ms and all(7 <= m.total_params / 1e9 <= 35 and m.license_class == "permissive" and m.country in ("FR", "US")
                      for m in ms)
    hw = candidate_hardware(s, cat)
    assert hw and all(a.vendor == "NVIDIA" and a.memory_gib >= 80 and a.price and a.price.usd <= 40000 for a in hw)


# --------------------------------------------------------------------------- policy rules (hand cases)


def test_licence_classes_and_origin(cat):
    p = Policy(model_licenses=["commercial"], deny_model_countries=["CN"])
    assert pol.model_rule(cat.model("meta-llama/Llama-3.3-70B-Instruct"), p, cat).ok  # with conditions
    v = pol.model_rule(cat.model("mistralai/Mistral-Large-Instruct-2411"), p, cat)
    assert not v.ok and v.reasons[0].startswith("model licence:")
    v = pol.model_rule(cat.model("Qwen/Qwen3-8B"), p, cat)
    assert not v.ok and "model origin" in v.reasons[0]
    assert not pol.model_rule(cat.model("meta-llama/Llama-3.3-70B-Instruct"), Policy(model_licenses=["permissive"]),
                              cat).ok


def test_llama_4_is_not_licensed_to_an_eu_buyer_running_it(cat):
    """Llama 4's acceptable-use policy grants EU-based companies no rights to its multimodal models; an end user
    of a service built on them (an API's customer) is not excluded. The buyer's country decides; without one,
    data that must stay in the EU is taken as an EU buyer, and the reason says how to state otherwise."""
    m = cat.model("meta-llama/Llama-4-Maverick-17B-128E-Instruct")

    def ok(runs_weights=True, **kw):
        return pol.model_rule(m, Policy(**kw), cat, runs_weights=runs_weights)

    v = ok(data_residency=["EU"])
    assert not v.ok and "grants no rights" in v.reasons[0] and "policy.buyer_country" in v.reasons[0]
    assert not ok(buyer_country="FR").ok and not ok(data_residency=["DE"], buyer_country="IT").ok
    assert ok(data_residency=["EU"], buyer_country="US").ok and ok().ok and ok(data_residency=["US", "DE"]).ok
    assert ok(runs_weights=False, data_residency=["EU"]).ok
    assert pol.model_rule(cat.model("meta-llama/Llama-3.3-70B-Instruct"), Policy(data_residency=["EU"]), cat).ok


def test_export_control_for_a_buyer_in_china(cat):
    p = Policy(buyer_country="CN", allow_export_controlled=False)
    assert not pol.hardware_rule(cat.accelerator("h100-sxm"), p).ok
    assert pol.hardware_rule(cat.accelerator("ascend-910b"), p).ok
    assert pol.hardware_rule(cat.accelerator("h100-sxm"), Policy(buyer_country="DE", allow_export_controlled=False)).ok
    assert pol.hardware_rule(cat.accelerator("h100-sxm"), Policy(buyer_country="CN")).ok  # allowed by choice


def test_hardware_vendor_and_country(cat):
    p = Policy(deny_hardware_countries=["CN"], allow_hardware_vendors=["NVIDIA", "AMD"])
    assert pol.hardware_rule(cat.accelerator("mi300x"), p).ok
    assert not pol.hardware_rule(cat.accelerator("ascend-910b"), p).ok
    assert not pol.hardware_rule(cat.accelerator("gaudi3"), p).ok


def test_air_gapped_needs_an_offline_engine_and_no_cloud(cat):
    p = Policy(deployment=["air_gapped"])
    assert pol.owned_rule(cat.engine("vllm"), p).ok
    online_only = cat.engine("vllm").model_copy(update={"offline_capable": False})
    v = pol.owned_rule(online_only, p)
    assert not v.ok and v.reasons[0].startswith("air-gapped:")
    assert not pol.owned_rule(online_only, Policy(deployment=["on_prem", "air_gapped"])).ok  # a requirement
    assert pol.owned_rule(online_only, Policy(deployment=["on_prem"])).ok
    assert not pol.cloud_rule(next(iter(cat.cloud_offers)), Policy(deployment=["air_gapped", "public_cloud"]), cat).ok
    offer = next(iter(cat.cloud_offers))
    v = pol.cloud_rule(offer, p, cat)
    assert not v.ok and v.reasons[0].startswith("air-gapped:")
    api = next(iter(cat.api_prices))
    assert not pol.api_rule(api, p, cat, None).ok


def test_data_residency_expands_groups(cat):
    assert {"DE", "FR", "FI"} <= pol.expand_regions(["EU"], cat)
    p = Policy(deployment=["sovereign_cloud", "public_cloud"], data_residency=["EU"])
    for o in cat.cloud_offers:
        assert pol.cloud_rule(o, p, cat).ok == (o.region_country in pol.expand_regions(["EU"], cat)), o.id
    p = Policy(deployment=["api"], data_residency=["EU"])
    for a in cat.api_prices:
        if pol.api_rule(a, p, cat, None).ok:
            assert set(a.data_regions) <= {"EU"} | pol.expand_regions(["EU"], cat), a.id


def test_presets_resolve_and_scenario_fields_win(cat):
    p = pol.resolve_policy(Policy(preset="eu-gdpr-strict", deployment=["on_prem"]), cat)
    assert p.deployment == ["on_prem"] and p.data_residency == ["EU"] and "US" in p.deny_provider_countries
    for preset in cat.policy_presets:
        assert preset.reasoning.strip()
        pol.resolve_policy(Policy(preset=preset.id), cat)


# --------------------------------------------------------------------------- serving configuration


def test_serve_commands_per_engine(cat):
    """More per engine and format in test_serve_config.py."""
    d = resolve(FitRequest(model="Qwen/Qwen2.5-72B-Instruct", gpu="h100-sxm", tp=4, precision="fp8"), cat)
    cmd = serve_command(d, 8192, 256)  # no FP8 checkpoint published: vLLM quantizes the 16-bit one on load
    assert cmd.startswith("vllm serve Qwen/Qwen2.5-72B-Instruct --tensor-parallel-size 4")
    assert "--max-model-len 8192" in cmd and "--max-num-seqs 256" in cmd and "--quantization fp8" in cmd
    assert "--gpu-memory-utilization" in cmd
    d = resolve(FitRequest(model="meta-llama/Llama-3.3-70B-Instruct", gpu="h100-sxm", tp=2, pp=2, precision="int4-awq",
                           engine="sglang"), cat)
    cmd = serve_command(d, 4096, 64)
    assert cmd.startswith("python -m sglang.launch_server") and "--tp 2" in cmd and "--pp-size 2" in cmd
    assert "quantize it yourself" in cmd and "--quantization" not in cmd
    d = resolve(FitRequest(model="Qwen/Qwen3-8B", gpu="rtx-4090", precision="q4_k_m", engine="llamacpp"), cat)
    cmd = serve_command(d, 4096, 4)
    assert cmd.startswith("llama-server -m Qwen3-8B-Q4_K_M.gguf --ctx-size 16384 --parallel 4")
    assert "from Qwen/Qwen3-8B-GGUF" in cmd


# --------------------------------------------------------------------------- the search


def test_issue_example_plan_contract(results):
    r = results["internal-assistant"]
    rec = r["recommendation"]
    assert OPTION_KEYS <= set(rec)
    assert rec["deployment"] == "on_prem" and rec["hardware"] in ("h100-sxm", "h200-sxm", "mi300x", "l40s")
    assert rec["quality_recovery_pct"] >= 97
    assert rec["serve_command"].startswith("vllm serve ")
    assert r["alternatives"] and all(OPTION_KEYS <= set(a) for a in r["alternatives"])
    # the recommendation is within the cost tolerance of the cheapest option, and nothing in that band
    # scores better on the ranking benchmark by more than its resolution
    ranked = r["_search"]["ranked"]
    cheapest = min(o.tco_usd for o in ranked)
    assert rec["tco_usd"] <= cheapest * 1.10
    band = [o for o in ranked if o.tco_usd <= cheapest * 1.10 and o.quality_score is not None]
    assert all(o.quality_score <= rec["quality_score"] + r["ranking"]["resolution"] for o in band)
    # l40s has no purchase price in the catalog: excluded with that reason, not silently
    l40s = [x for x in r["rejected"] if ":l40s:" in x["option"]]
    assert l40s and all(x["reasons"] for x in l40s)


def test_every_rejection_has_a_reason(results):
    for name, r in results.items():
        assert r["rejected"], name
        for x in r["rejected"]:
            assert x["option"] and x["reasons"], (name, x)
            assert all(re.match(r"^[a-z -]+: \S", reason) for reason in x["reasons"]), (name, x)
        assert sum(r["rejected_counts"].values()) == len(r["rejected"])


def test_ranking_and_pareto(results):
    for name, r in results.items():
        ranked = r["_search"]["ranked"]
        if not ranked:
            continue
        tol, res = r["ranking"]["cost_tolerance_pct"], r["ranking"]["resolution"]
        cost = {o.id: ranking_cost(o, r["ranking"]["failure_tie_pct"]) for o in ranked}  # the TCO, or 1 % more
        limit = min(o.tco_usd for o in ranked) * (1 + tol / 100)  # from the cheapest TCO, as the report says
        inside = [o for o in ranked if cost[o.id] <= limit]
        assert ranked[:len(inside)] == inside, name  # the tolerance band first
        rest = [cost[o.id] for o in ranked[len(inside):]]
        assert rest == sorted(rest), name  # then by cost
        known = [o for o in inside if o.quality_score is not None]
        assert inside[:len(known)] == known, name  # unknown quality after known within the band
        for i, a in enumerate(known):  # a later option is never better by more than the resolution
            assert all(b.quality_score <= a.quality_score + res for b in known[i + 1:]), (name, a.id)
        front = pareto(ranked)
        q = {o.id: (o.quality_score if o.quality_score is not None else -math.inf) for o in ranked}
        stops = {o.id: short_after_gpu_failure(o) for o in ranked}
        for o in front:  # nothing strictly better on all four axes
            for p in ranked:
                better = (p.tco_usd <= o.tco_usd and (p.ttft_p95_ms or math.inf) <= (o.ttft_p95_ms or math.inf)
                          and q[p.id] >= q[o.id] and stops[p.id] <= stops[o.id])
                strictly = (p.tco_usd < o.tco_usd or (p.ttft_p95_ms or math.inf) < (o.ttft_p95_ms or math.inf)
                            or q[p.id] > q[o.id] or stops[p.id] < stops[o.id])
                assert not (better and strictly), (name, o.id, p.id)
        if ranked:
            assert ranked[0].id in {o.id for o in front} or ranked[0].deployment == "api"


def test_availability_adds_spares(cat):
    base = {"workload": {"requests_per_day": 20000, "profile": "flat", "slo": {"ttft_p95_ms": 3000},
                         "thinking_off": True},
            "models": ["Qwen/Qwen3-8B"], "hardware": ["h100-pcie"], "precisions": ["bf16"], "alternatives": [],
            "policy": {"deployment": ["on_prem"]}}
    n = {}
    for mode in ("none", "n_plus_1", "ha_pair"):
        r = run(parse_scenario({**base, "availability": {"mode": mode}}), cat)
        rec = r["recommendation"]
        n[mode] = (rec["replicas"], rec["details"]["serving_replicas"])
    assert n["n_plus_1"][0] - n["n_plus_1"][1] >= 1
    assert n["ha_pair"][0] >= 2 * n["ha_pair"][1]
    assert n["ha_pair"][0] >= n["n_plus_1"][0] >= n["none"][0]


def test_recommendations_meet_their_slos_in_the_simulator(results, tmp_path, cat):
    """An independent run of `llmplan simulate`'s engine on the recommended deployment at the
    scenario's peak rate, with the spares down."""
    checked = 0
    for name, r in results.items():
        rec = r["recommendation"]
        if rec is None or rec["deployment"] != "on_prem":
            continue
        s = load_scenario(REPO / "examples" / f"{name}.yaml")
        w = r["_search"]["workload"]
        wf = tmp_path / f"{name}.yaml"
        doc = w.model_dump(mode="json", exclude_none=True, exclude={"requests_per_day", "profile", "trace"})
        wf.write_text(yaml.safe_dump({**doc, "rate_per_s": r["workload"]["peak_rate_per_s"]}))
        req = ServeRequest(model=rec["model"], gpu=rec["hardware"], tp=rec["tp"], pp=rec["pp"],
                           precision=rec["precision"], engine=rec["engine"], workload=str(wf),
                           replicas=rec["details"]["serving_replicas"], router="least-loaded", num_requests=4000,
                           seed=s.seed + 1, max_num_seqs=rec["details"]["max_num_seqs"],
                           context_tokens=rec["details"]["context_tokens"])
        out = simulate(req, cat)
        assert out["slo_met"], (name, out["slo"])
        checked += 1
    assert checked >= 4


def test_no_compliant_option_is_an_answer_not_an_error(cat):
    s = parse_scenario({"workload": {"requests_per_day": 1000}, "models": ["Qwen/Qwen3-8B"], "hardware": ["h100-sxm"],
                        "policy": {"deny_model_countries": ["CN"]}})
    r = run(s, cat)
    assert r["recommendation"] is None and "why_none" in r
    assert "model origin" in r["rejected_counts"]
    assert "No compliant option" in text(r)


# --------------------------------------------------------------------------- property: policy is never broken

SMALL_MODELS = ["Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B", "mistralai/Mistral-7B-Instruct-v0.2",
                "google/gemma-3-12b-it", "huggyllama/llama-7b", "microsoft/phi-4"]
HARDWARE = ["h100-pcie", "l4", "rtx-4090", "mi300x", "ascend-910b", "gaudi3", "a100-sxm-80gb"]
DEPLOYMENTS = ["on_prem", "air_gapped", "sovereign_cloud", "public_cloud", "api"]


@st.composite
def scenarios(draw):
    policy = {
        "deployment": draw(st.lists(st.sampled_from(DEPLOYMENTS), min_size=1, max_size=5, unique=True)),
        "data_residency": draw(st.one_of(st.none(), st.lists(st.sampled_from(["EU", "US", "CN", "FI", "DE"]),
                                                             min_size=1, max_size=2, unique=True))),
        "model_licenses": draw(st.lists(st.sampled_from(["permissive", "commercial_with_conditions", "non_commercial",
                                                         "commercial"]), min_size=1, max_size=2, unique=True)),
        "deny_model_countries": draw(st.lists(st.sampled_from(["CN", "US", "FR"]), max_size=1)),
        "deny_hardware_countries": draw(st.lists(st.sampled_from(["CN", "US"]), max_size=1)),
        "allow_export_controlled": draw(st.booleans()),
        "buyer_country": draw(st.sampled_from(["DE", "CN", "US"])),
        "deny_provider_countries": draw(st.lists(st.sampled_from(["US", "CN"]), max_size=1)),
    }
    return {
        "workload": {"requests_per_day": draw(st.sampled_from([500, 5000, 50000])), "profile": "office-hours",
                     "input_tokens": {"mean": 1000, "p95": 3000}, "output_tokens": {"mean": 200, "p95": 600},
                     "slo": {"ttft_p95_ms": 3000, "tpot_p95_ms": 100}},
        "models": draw(st.lists(st.sampled_from(SMALL_MODELS), min_size=1, max_size=2, unique=True)),
        "hardware": draw(st.lists(st.sampled_from(HARDWARE), min_size=1, max_size=2, unique=True)),
        "precisions": ["bf16", "fp8", "int4-awq"],
        "engines": draw(st.lists(st.sampled_from(["vllm", "sglang", "gaudi"]), min_size=1, max_size=2, unique=True)),
        "min_quality_recovery_pct": draw(st.sampled_from([0, 98, 99.5])),
        "max_gpus_per_replica": 2,
        "policy": policy,
    }


def _check_compliant(o: dict, s, cat) -> None:
    p = pol.resolve_policy(s.policy, cat)
    modes = set(p.deployment)
    m = cat.model(o["model"])
    assert m.license_class in pol.licence_classes(p)
    assert m.country not in p.deny_model_countries
    if o["deployment"] == "api":
        assert "api" in modes and "air_gapped" not in modes
        allowed = pol.expand_regions(p.data_residency, cat)
        if allowed is not None:
            assert pol.expand_regions(o["details"]["data_regions"], cat) <= allowed
        assert o["details"]["provider_country"] not in p.deny_provider_countries
        return
    a = cat.accelerator(o["hardware"])
    assert (a.designer_country or "unknown") not in p.deny_hardware_countries
    if not p.allow_export_controlled:
        assert pol.export_rule(a, p).ok
    if o["quality_recovery_pct"] is not None:
        assert o["quality_recovery_pct"] >= s.min_quality_recovery_pct
    if o["deployment"] == "on_prem":
        assert modes & {"on_prem", "air_gapped"}
        if "air_gapped" in modes:
            assert cat.engine(o["engine"]).offline_capable
    else:
        assert o["deployment"] == "cloud_gpu" and "air_gapped" not in modes
        d = o["details"]
        assert ("sovereign_cloud" in modes or "public_cloud" in modes) if d["sovereign"] else "public_cloud" in modes
        allowed = pol.expand_regions(p.data_residency, cat)
        assert allowed is None or d["region_country"] in allowed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=scenarios())
def test_no_recommendation_breaks_its_policy(doc, cat):
    s = parse_scenario(doc)
    r = run(s, cat)
    for o in [r["recommendation"], *r["alternatives"]]:
        if o is not None:
            _check_compliant(o, s, cat)
    for o in r["_search"]["ranked"]:
        _check_compliant(o.public(), s, cat)
    assert all(x["reasons"] for x in r["rejected"])


# --------------------------------------------------------------------------- golden reports

_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _close(a: str, b: str) -> bool:
    """Same text, numbers equal within 0.5 % or 1 unit of their last digit (platform float noise)."""
    if _NUM.sub("#", a) != _NUM.sub("#", b):
        return False
    for x, y in zip(_NUM.findall(a), _NUM.findall(b), strict=True):
        fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
        if abs(fx - fy) > max(5e-3 * max(abs(fx), abs(fy)), 1.0 if "." not in x else 10 ** -len(x.split(".")[1])):
            return False
    return True


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_golden_reports(path, results):
    golden = (REPO / "examples" / "reports" / path.stem / "report.md").read_text(encoding="utf-8")
    now = text(results[path.stem])
    diff = [(g, n) for g, n in zip(golden.splitlines(), now.splitlines(), strict=False) if not _close(g, n)]
    assert len(golden.splitlines()) == len(now.splitlines()) and not diff, (
        f"{path.name}: the report changed; if intended, regenerate with "
        f"`llmplan plan {path.relative_to(REPO)} --out examples/reports/{path.stem}`\n" +
        "\n".join(f"- {g}\n+ {n}" for g, n in diff[:5]))
    data = json.loads((REPO / "examples" / "reports" / path.stem / "plan.json").read_text())
    rec = results[path.stem]["recommendation"]
    assert (data["recommendation"] or {}).get("id") == (rec or {}).get("id")


def test_at_least_five_examples_with_reports():
    assert len(EXAMPLES) >= 5
    for p in EXAMPLES:
        for f in ("report.md", "report.html", "plan.json"):
            assert (REPO / "examples" / "reports" / p.stem / f).is_file(), (p.stem, f)


# --------------------------------------------------------------------------- CLI


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_plan_json(capsys):
    code, out, _ = cli(capsys, "plan", str(REPO / "examples" / "china-ascend.yaml"), "--json")
    assert code == 0
    r = json.loads(out)
    assert {"recommendation", "alternatives", "pareto", "rejected", "references", "rejected_counts"} <= set(r)
    assert OPTION_KEYS <= set(r["recommendation"])
    assert r["recommendation"]["hardware"] == "ascend-910b"  # US parts need an export licence for a buyer in CN
    assert all({"option", "reasons"} <= set(x) for x in r["rejected"])


def test_cli_plan_out_writes_a_self_contained_report(capsys, tmp_path):
    out_dir = tmp_path / "report"
    code, out, _ = cli(capsys, "plan", str(REPO / "examples" / "eu-bank-airgapped.yaml"), "--out", str(out_dir))
    assert code == 0 and "## Recommendation" in out
    page = (out_dir / "report.html").read_text()
    assert "<script src" not in page and "<link" not in page  # the chart library is inline, nothing is fetched
    assert page.count("<figure class='llmplan-chart'") >= 3 and "window.vegaEmbed" in page
    # outside the inline library (whose strings name schemas and its editor, never fetched: checked in
    # Chromium by tests/test_browser.py) no address but the SVG/XML namespaces
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    markup = re.sub(r"<script type='application/json' class='chart-spec'>.*?</script>", "", markup, flags=re.S)
    assert "<svg" in markup
    assert set(re.findall(r"https?://[^\"'\s)]+", markup)) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert json.loads((out_dir / "plan.json").read_text())["recommendation"]["deployment"] == "on_prem"
    assert sorted(p.name for p in out_dir.iterdir()) == ["plan.json", "report.html", "report.md"]


def test_cli_explain(capsys):
    path = str(REPO / "examples" / "internal-assistant.yaml")
    code, out, _ = cli(capsys, "plan", path, "--explain", "meta-llama/Llama-3.3-70B-Instruct:bf16:h100-sxm:vllm:tp1")
    assert code == 0 and "excluded" in out and "memory:" in out
    code, out, _ = cli(capsys, "plan", path, "--json")
    rec = json.loads(out)["recommendation"]["id"]
    code, out, _ = cli(capsys, "plan", path, "--explain", rec)
    assert code == 0 and "ranked #1" in out and "serve_command" in out
    code, _, err = cli(capsys, "plan", path, "--explain", rec.replace("vllm", "vlm"))
    assert code == 2 and "did you mean" in err and "Traceback" not in err


@pytest.mark.parametrize("body, message", [
    ("workload: [1, 2", "not valid YAML"),
    ("- a list", "a scenario is a mapping"),
    ("", "the scenario is empty"),
    ("models: [no-such-model]\nworkload: {requests_per_day: 10}", "unknown model"),
    ("workload: {requests_per_day: 0}", "workload.requests_per_day"),
])
def test_cli_bad_scenarios_exit_2(capsys, tmp_path, body, message):
    f = tmp_path / "s.yaml"
    f.write_text(body)
    code, _, err = cli(capsys, "plan", str(f))
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_missing_file_and_bad_out(capsys, tmp_path):
    code, _, err = cli(capsys, "plan", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such scenario file" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli(capsys, "plan", str(REPO / "examples" / "china-ascend.yaml"), "--out", str(blocker))
    assert code == 2 and "not a directory" in err and blocker.read_text() == "x"


def test_explain_prefix_lists_matches(results):
    r = results["internal-assistant"]
    info = explain(r, "meta-llama/Llama-3.3-70B-Instruct:bf16:h100-sxm")
    assert info["status"] == "several" and (info["ranked"] or info["rejected"])


def test_cost_floor_is_a_lower_bound_and_pruned_layouts_are_listed(results, cat):
    """The purchase floor that prunes layouts never exceeds the TCO of an option it stands for, and every
    pruned layout is excluded with the floor and the best TCO it was compared with."""
    from llmplan.planner.search import cost_floor_usd, prune_factor

    pruned = 0
    for name, r in results.items():
        s = load_scenario(REPO / "examples" / f"{name}.yaml")
        owned = [o for o in r["_search"]["ranked"] if o.deployment == "on_prem"]
        for o in owned:
            floor = cost_floor_usd(o._ctx["d"], cat, o._ctx["finance"], s)
            assert 0 < floor <= o.tco_usd * (1 + 1e-9), (name, o.id, floor, o.tco_usd)
        for x in r["rejected"]:
            if x["reasons"][0].startswith("cost floor:"):
                pruned += 1
                assert f"{prune_factor(s):g} × the best TCO the analytic sizing found, $" in x["reasons"][0]
    assert pruned > 0


def test_reports_read_as_advice(results, cat):
    """Every recommendation comes with what to buy, why, the cost line by line and what would change the
    answer; the price threshold is the one at which the cost model makes the other option cheaper."""
    from dataclasses import replace

    from llmplan.cost.model import onprem

    checked = 0
    for name, r in results.items():
        if r["recommendation"] is None:
            continue
        md = text(r)
        for head in ("## What to buy", "## Why", "## What would change the answer"):
            assert head in md, (name, head)
        a = r["advice"]
        assert a["why"], name
        rec = r["_search"]["ranked"][0]
        if rec.deployment != "on_prem":
            continue
        assert "## Cost, line by line" in md
        b = a["what_to_buy"]
        assert b["gpus_bought"] >= b["gpus_needed"] > 0
        assert sum(x["count"] * x["gpus_each"] for x in b["servers"]) == b["gpus_bought"]
        if b["racks"]:
            k = b["racks"]
            assert k["racks"] == max(math.ceil((b["rack_units"] or 0) / k["rack_units_per_rack"]),
                                     math.ceil(b["contracted_kw"] / k["kw_per_rack"] - 1e-9), 1)
        changes = {c["change"]: c for c in a["what_would_change"]}
        load, lc = changes["load"], rec.details["load_ceiling"]
        analytic = rec.details["serving_replicas"] * rec.details["per_replica_req_s"]
        assert load["analytic_req_s"] == pytest.approx(analytic) == pytest.approx(lc["analytic_req_s"])
        # the ceiling quoted is the simulator-checked one (never above the analytic rate), else the analytic one
        quoted = lc["simulated_req_s"] if lc["simulated_req_s"] is not None else analytic
        assert load["ceiling_req_s"] == pytest.approx(quoted) and quoted <= analytic * (1 + 1e-12)
        assert load["factor"] == pytest.approx(quoted / r["workload"]["peak_rate_per_s"])
        assert f"{lc['hours']} peak hours" in load["text"]
        if "gpu_price" in changes:
            c = changes["gpu_price"]
            other = next(o for o in r["_search"]["ranked"] if o.id == c["option"])
            x = rec._ctx["bought"][rec.details["replicas_needed"]].x
            assert float(onprem(replace(x, gpu_price_usd=c["threshold_usd"])).tco_usd) == pytest.approx(other.tco_usd)
            assert c["threshold_usd"] >= c["now_usd"]
            checked += 1
    assert checked >= 3


def test_a_single_point_of_failure_is_said_and_priced(results, cat):
    """Review finding: internal-assistant recommends one server with availability none and the report did not
    say that one failure stops the service. Where one server down leaves fewer replicas than the peak needs,
    'What would change the answer' says so and prices a spare in another server (n_plus_1) with the same
    cost model; a plan that asked for spares, or whose servers survive one failure, gets no such line."""
    from llmplan.cost.model import onprem
    from llmplan.cost.ownership import buy
    from llmplan.planner.search import option_load

    said = 0
    for name, r in results.items():
        rec = r["_search"]["ranked"][0] if r["recommendation"] else None
        if rec is None or rec.deployment != "on_prem":
            continue
        need = rec.details["replicas_needed"]
        p = rec._ctx["bought"][need].purchase
        changes = [c for c in r["advice"]["what_would_change"] if c["change"] == "availability"]
        single = p.mode == "none" and p.replicas - p.largest_slots < need
        assert bool(changes) == single, name
        if not single:
            continue
        c = changes[0]
        assert c["replicas_after_server_failure"] == p.replicas - p.largest_slots
        c_ = rec._ctx
        utilisation_of, active_of = option_load(rec)
        spare = buy(c_["d"], cat, c_["finance"], need, "n_plus_1", utilisation_of, active_of=active_of)
        extra = float(onprem(spare.x).tco_usd) - float(onprem(rec._ctx["bought"][need].x).tco_usd)
        assert c["n_plus_1_extra_usd"] == pytest.approx(extra) and extra > 0
        assert "availability.mode: n_plus_1" in c["text"] and c["text"] in text(r)
        said += 1
    assert said >= 1


def test_markdown_report_escapes_the_scenario_name(tmp_path, capsys):
    doc = yaml.safe_load(ISSUE_EXAMPLE)
    doc["name"] = "*Team* [x](https://example.com) `rm` <b>&"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert main(["plan", str(path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert md.splitlines()[0] == "# Plan: \\*Team\\* \\[x\\](https://example.com) \\`rm\\` &lt;b>&amp;"
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<em>Team</em>" not in page and 'href="https://example.com"' not in page and "<b>" not in page


def test_fp8_on_ampere_runs_weight_only_where_the_engine_has_a_kernel_for_it(cat):
    """FP8 checkpoints on Ampere: vLLM serves dense models weight-only through FP8 Marlin (kernels.yaml), so
    the memory saving is offered; MoE models and formats with no such kernel stay excluded, with the reason."""
    from llmplan.planner.search import _no_math_reason

    vllm, a100 = cat.engine("vllm"), cat.accelerator("a100-sxm-80gb")
    dense, moe = cat.model("meta-llama/Llama-3.1-8B-Instruct"), cat.model("Qwen/Qwen3-30B-A3B")
    assert _no_math_reason(dense, cat.quant_format("fp8"), a100, vllm, cat) is None
    why = _no_math_reason(moe, cat.quant_format("fp8"), a100, vllm, cat)
    assert why and "fp8-marlin" in why and "MoE" in why
    why = _no_math_reason(dense, cat.quant_format("nvfp4"), cat.accelerator("h100-sxm"), vllm, cat)
    assert why and "no kernel" in why
    why = _no_math_reason(dense, cat.quant_format("fp8"), a100, cat.engine("sglang"), cat)
    assert why and "no kernel" in why  # the catalog has no FP8 Marlin figure for SGLang
    # and the option is then sized and priced like any other
    s = parse_scenario({
        "schema_version": 1, "name": "fp8 on A100",
        "workload": {"requests_per_day": 20000, "input_tokens": {"mean": 800}, "output_tokens": {"mean": 200}},
        "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["a100-sxm-80gb"],
        "engines": ["vllm"], "alternatives": []})
    from llmplan.planner.search import plan

    ids = {o.id for o in plan(s, cat)["ranked"]}
    assert any(":fp8:a100-sxm-80gb:vllm:" in i for i in ids), sorted(ids)[:5]


def test_the_first_alternative_is_the_runner_up_the_advice_names(results):
    """The report's table and its 'Why' agree on who comes second: an engine variant is an alternative, a
    format twin with the same cost and quality is not."""
    checked = 0
    for name, r in results.items():
        why = " ".join(r["advice"].get("why", []))
        m = re.search(r"Against the runner-up (\S+):", why)
        if not m or not r["alternatives"]:
            continue
        assert r["alternatives"][0]["id"] == m.group(1), name
        rec = r["recommendation"]
        for o in r["alternatives"]:
            same = all(o[k] == rec[k] for k in ("deployment", "model", "hardware", "engine"))
            assert not (same and o["tco_usd"] == rec["tco_usd"]), (name, o["id"])  # no format twin
        checked += 1
    assert checked >= 4


def test_speed_risk_sizes_the_purchase_at_the_slow_end_of_the_interval(results, cat):
    """The report's speed risk repeats the sizing with the engine as slow as the 80 % interval's slow end:
    never more capacity than the point prediction, and the replicas it asks for carry the peak."""
    from llmplan.perf.efficiency import Efficiency, slower

    e = Efficiency(0.8, 0.6, 0.004, 0.02, 0.9, 1.0)
    assert slower(e, 1.0) == e
    s2 = slower(e, 2.0)
    assert (s2.eta_bw, s2.eta_flops, s2.step_overhead_s, s2.request_overhead_s) == (0.4, 0.3, 0.008, 0.04)
    checked = 0
    for name, r in results.items():
        rec = r["_search"]["ranked"][0]
        if rec.deployment != "on_prem":
            continue
        risk = rec.details["speed_risk"]
        assert risk["slow_factor"] >= 1
        change = next(c for c in r["advice"]["what_would_change"] if c["change"] == "speed")
        assert "80 % interval" in change["text"], name
        if risk["unattainable"]:
            assert "cannot be met" in change["text"]
        else:
            assert risk["per_replica_req_s"] <= rec.details["per_replica_req_s"] * (1 + 1e-9), name
            assert risk["replicas_needed"] * risk["per_replica_req_s"] >= risk["peak_req_s"] * (1 - 1e-9)
        checked += 1
    assert checked >= 4


def test_a_cost_tie_is_called_one_and_a_clear_win_is_not(results):
    """Two options a fraction of a percent apart (vLLM against SGLang on the same 4 × H200) are a tie on cost the
    report calls one, saying what is left to decide on the same servers; a runner-up more than
    quality.cost_tie_pct dearer is a plain cost win. Both read the same option's figures."""
    from llmplan.planner.advice import _cost_tie, _runner_up

    ties = wins = 0
    pair = None
    for name, r in results.items():
        rec = r["_search"]["ranked"][0]
        ru = _runner_up(rec, r["_search"]["ranked"])
        why = " ".join(r["advice"]["why"])
        near = next(c for c in r["advice"]["what_would_change"] if c["change"] == "nearest_alternative")
        if ru is None or "scores higher" in why or "falls short of the peak with one GPU failed" in why:
            continue
        tie = abs(ru.tco_usd - rec.tco_usd) < 0.01 * rec.tco_usd
        assert _cost_tie(rec, ru, 1.0) == tie == near["cost_tie"] == ("a tie on cost" in why), name
        if tie and (rec.model, rec.hardware) == (ru.model, ru.hardware) and rec.engine != ru.engine:
            assert f"with {ru.engine} instead of {rec.engine}" in why, name
        ties += tie
        wins += not tie
        pair = (rec, ru) if tie else pair
    assert ties >= 2 and wins >= 1 and pair is not None
    assert _cost_tie(*pair, 1.0) and not _cost_tie(*pair, 0.0)  # 0 turns it off


def test_the_spare_capacity_and_the_slow_end_read_the_validated_figures(results):
    """What the replicas beyond the need could carry is quoted at the simulator-checked rate where the plan has
    one (the load line's ceiling per serving replica), not at the analytic rate the simulator did not hold; and
    where the slow end of the speed interval needs more replicas, the report prices them."""
    checked = priced = 0
    for name, r in results.items():
        rec = r["_search"]["ranked"][0]
        buy = r["advice"]["what_to_buy"]
        if rec.deployment != "on_prem" or buy["replicas_placed"] <= buy["replicas_needed"]:
            continue
        lc = rec.details.get("load_ceiling")
        more = buy["replicas_placed"] - buy["replicas_needed"]
        if lc and lc["simulated_req_s"] is not None:
            assert buy["extra_capacity_basis"] == "simulated", name
            assert buy["extra_capacity_req_s"] == pytest.approx(more * lc["simulated_req_s"]
                                                                 / rec.details["serving_replicas"]), name
        else:
            assert buy["extra_capacity_basis"] == "analytic", name
        checked += 1
        speed = next(c for c in r["advice"]["what_would_change"] if c["change"] == "speed")
        if speed.get("replicas_needed") and speed["replicas_needed"] > speed["serving_replicas"]:
            assert re.search(r"\$[\d,]+ more over the horizon", speed["text"]), name
            priced += 1
    assert checked >= 2 and priced >= 1


def test_a_format_rejected_on_a_chip_says_the_true_reason(cat):
    """W4A8-AWQ on a chip that has FP8 math (B200, Gaudi 3) is out because the format's kernels cover Ada and
    Hopper only, not because the chip lacks FP8; where the engine does not load the format there at all, that
    is the one hardware reason given."""
    from llmplan.planner.search import _rule_out

    s = load_scenario(REPO / "examples" / "internal-assistant.yaml")
    policy = pol.resolve_policy(s.policy, cat)
    m, f = cat.model("meta-llama/Llama-3.3-70B-Instruct"), cat.quant_format("w4a8")

    def reasons(gpu, engine):
        v = pol.Verdict()
        _rule_out(v, m, f, cat.accelerator(gpu), cat.engine(engine), s, cat, policy)
        return " | ".join(v.reasons)

    for gpu, engine in (("b200", "trtllm"), ("gaudi3", "gaudi")):
        r = reasons(gpu, engine)
        assert "has kernels for ada, hopper only" in r and "does not run fp8 math" not in r
    r = reasons("mi300x", "vllm")
    assert "does not load w4a8" in r and "hardware support" not in r
    assert "does not run fp8 math natively" in reasons("a100-sxm", "vllm")


REASONING = """
schema_version: 1
name: reasoning
workload:
  requests_per_day: 50000
  input_tokens: {mean: 1000, p95: 3000}
  output_tokens: {mean: 300, p95: 900}
  slo: {ttft_p95_ms: 3000, tpot_p95_ms: 60}
models: [Qwen/Qwen2.5-7B-Instruct, deepseek-ai/DeepSeek-R1-Distill-Qwen-7B, Qwen/Qwen3-8B]
hardware: [h100-sxm]
engines: [vllm]
precisions: [bf16]
alternatives: []
"""


def test_a_model_that_thinks_needs_its_thinking_stated_and_serves_it(cat):
    """R1-Distill-Qwen-7B always thinks and Qwen3 thinks unless turned off: with no thinking_tokens their load
    is unknown and they are excluded with the fact to state; with it, the distill serves thinking + answer (its
    replica carries fewer requests than Qwen2.5-7B, the same architecture answering directly), and Qwen3 with
    thinking off is served as it answers, the serve line saying what clients must send."""
    doc = yaml.safe_load(REASONING)
    r = run(parse_scenario(doc), cat)
    why = {x["option"]: " ".join(x["reasons"]) for x in r["rejected"]}
    assert "set workload.thinking_tokens" in why["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B:bf16:h100-sxm:vllm"]
    assert "workload.thinking_off" in why["Qwen/Qwen3-8B:bf16:h100-sxm:vllm"]
    doc["workload"] |= {"thinking_tokens": {"mean": 1500, "p95": 5000}, "thinking_off": True}
    r = run(parse_scenario(doc), cat)
    by_model = {o.model: o for o in r["_search"]["ranked"] if o.deployment == "on_prem"}
    distill, plain = by_model["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"], by_model["Qwen/Qwen2.5-7B-Instruct"]
    assert distill.details["thinking_tokens_mean"] == 1500 and plain.details["thinking_tokens_mean"] is None
    assert distill.details["per_replica_req_s"] < 0.5 * plain.details["per_replica_req_s"]
    qwen3 = by_model["Qwen/Qwen3-8B"]
    assert qwen3.details["thinking_tokens_mean"] is None and "enable_thinking" in qwen3.serve_command
    assert "--default-chat-template-kwargs" in qwen3.serve_command  # vLLM turns it off server-side


def test_an_answer_start_tail_past_one_request_alone_says_so(cat):
    """One request alone (the p95 of its TTFT + thinking × TPOT: 39.5 s) is within a p99 answer-start
    limit of 60 s (54 s with the headroom), but the thinking's p99 (~10,600 tokens of a lognormal with mean 1,500
    and p95 5,000, ~84 s at ~8 ms a token) is not, at any rate: the reason names the answer start, not the
    prompts' queue."""
    from llmplan.planner.search import size_replicas
    from llmplan.serving.workload import Slo, Workload, for_model

    d = resolve(FitRequest(model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", gpu="h100-sxm", precision="bf16",
                           engine="vllm"), cat)
    w = Workload(requests_per_day=50000, input_tokens={"mean": 1000, "p95": 3000}, output_tokens={"mean": 300,
                 "p95": 900}, thinking_tokens={"mean": 1500, "p95": 5000}, slo=Slo(answer_start_p99_ms=60000))
    why = size_replicas(d, cat, for_model(w, d.model), 1.0, 32768)
    assert isinstance(why, str) and "at any Poisson rate: the answer start, after the thinking, misses" in why
    assert "answer_start_p99_ms: " in why and "prompts' queue" not in why


def _reasoning_plan(cat, models: list[str], answer_start_ms: float | None) -> dict:
    doc = yaml.safe_load(REASONING)
    doc["models"] = models
    doc["workload"] |= {"requests_per_day": 400000, "thinking_tokens": {"mean": 1500, "p95": 5000}}
    if answer_start_ms is not None:
        doc["workload"]["slo"]["answer_start_p95_ms"] = answer_start_ms
    return run(parse_scenario(doc), cat)


def test_an_answer_start_slo_holds_a_model_that_thinks_to_its_answer(cat):
    """R1-Distill-Qwen-7B thinks 1,500 tokens on average (p95 5,000) at ~8 ms a token on one H100: its TTFT (~0.1
    s) meets the 3 s TTFT SLO while its answer starts ~40 s after the request at p95. An answer-start limit of
    40 s (36 s with the headroom) excludes one GPU, the reason naming the answer start (39.8 s for one request
    alone: the p95 of TTFT + thinking × TPOT, the thinking's tail dominating); 60 s resizes it: a replica
    carries fewer requests and the peak needs more of them. Qwen2.5-7B, which does not think, starts its answer
    with its first token. The simulator checks the answer start of each request, and the report gives it at the
    peak."""
    tp1 = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B:bf16:h100-sxm:vllm:tp1"
    plain = {o.id: o for o in _reasoning_plan(cat, ["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"], None)["_search"]
             ["ranked"] if o.deployment == "on_prem"}
    r = _reasoning_plan(cat, ["Qwen/Qwen2.5-7B-Instruct", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"], 40000)
    why = {x["option"]: " ".join(x["reasons"]) for x in r["rejected"]}
    start = re.search(r"answer start (\d+\.\d) s \(p95 over the prompts and the thinking, 1,500 tokens on average, "
                      r"5,000 at p95\)", why.get(tp1, ""))
    assert start and 36 < float(start.group(1)) < 45  # over the 36 s the headroom leaves, with the thinking's tail
    assert why[tp1].startswith("latency: SLO unattainable") and tp1 in plain
    qwen = next(o for o in r["_search"]["ranked"] if o.model == "Qwen/Qwen2.5-7B-Instruct")
    assert qwen.answer_start_p95_ms == qwen.ttft_p95_ms
    r = _reasoning_plan(cat, ["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"], 60000)
    sized = {o.id: o for o in r["_search"]["ranked"] if o.deployment == "on_prem"}
    from llmplan.planner.search import simulated_load  # the confirmation's load, and planner_consistency's

    best = next(iter(sized))  # the cheapest layout that meets 60 s
    sim_w, thinks = simulated_load(sized[best], 2.0)
    assert thinks and sim_w.rate_per_s == 2.0 and sim_w.output_tokens.mean == 300  # the answer: thinking apart
    assert sized[best].details["per_replica_req_s"] < 0.7 * plain[best].details["per_replica_req_s"]  # it binds
    # one GPU, resized, needs more replicas: ranked, or left out by the cost floor with the sizing it had
    if tp1 in sized:
        replicas = sized[tp1].details["replicas_needed"]
    else:
        floor = " ".join(next(x["reasons"] for x in r["rejected"] if x["option"] == tp1))
        replicas = int(re.search(r"cost floor: sized at (\d+) replica", floor).group(1))
    assert replicas >= 2 * plain[tp1].details["replicas_needed"]  # 5 against 2 (2026-12-07)
    rec = r["recommendation"]
    sim = rec["details"]["simulated"]
    assert sim["slo_met"] and sim["slo"]["answer_start_p95_ms"]["limit"] == pytest.approx(60000 * 0.9)
    assert rec["answer_start_p95_ms"] == sim["answer_start_ms"]["p95"] > 100 * rec["ttft_p95_ms"]
    report = text(r)
    assert f"answer start p95 {rec['answer_start_p95_ms'] / 1e3:,.1f} s (simulated peak hour" in report
    assert "answer_start_p95_ms 60000" in report  # the SLO as stated


def test_thinking_and_answer_lengths_add_up():
    from llmplan.serving.workload import Workload, for_model

    w = Workload(rate_per_s=1, output_tokens={"mean": 400, "p95": 1200}, thinking_tokens={"mean": 1000, "p95": 3000})
    from llmplan.catalog import load_catalog

    c = load_catalog()
    both = for_model(w, c.model("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")).lengths("output")
    assert both.mean == 1400 and both.p95 == pytest.approx(1400 + math.hypot(800, 2000))
    assert for_model(w, c.model("Qwen/Qwen2.5-7B-Instruct")) is w
    off = w.model_copy(update={"thinking_off": True})
    assert for_model(off, c.model("Qwen/Qwen3-8B")) is off
    assert for_model(off, c.model("openai/gpt-oss-20b")).lengths("output").mean == 1400  # always reasons
    with pytest.raises(LlmplanError, match="thinking_tokens"):
        for_model(Workload(rate_per_s=1), c.model("openai/gpt-oss-20b"))


def test_vllm_on_gaudi_is_its_hardware_plugin(cat):
    """A scenario naming vLLM plans Gaudi through the vLLM Hardware Plugin for Intel Gaudi (the catalog's gaudi
    entry, plugin_of vllm), as it plans Ascend through vLLM-Ascend; naming both plans it once."""
    from llmplan.planner.search import _engines_on

    gaudi, h100 = cat.accelerator("gaudi3"), cat.accelerator("h100-sxm")
    assert [e.id for e in _engines_on([cat.engine("vllm")], gaudi, cat)] == ["gaudi"]
    assert [e.id for e in _engines_on([cat.engine("vllm"), cat.engine("gaudi")], gaudi, cat)] == ["gaudi"]
    assert [e.id for e in _engines_on([cat.engine("vllm"), cat.engine("sglang")], h100, cat)] == ["vllm", "sglang"]
    doc = {"workload": {"requests_per_day": 20000, "input_tokens": 1000, "output_tokens": 200,
                        "slo": {"ttft_p95_ms": 3000, "tpot_p95_ms": 100}},
           "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["gaudi3"], "engines": ["vllm"],
           "precisions": ["bf16"], "alternatives": [], "policy": {"deployment": ["on_prem"]}}
    rec = run(parse_scenario(doc), cat)["recommendation"]
    assert rec["engine"] == "gaudi" and rec["serve_command"].startswith("vllm serve ")


def test_the_why_says_which_option_survives_a_failed_gpu(results):
    """With no spares bought, a failed GPU stops its replica: the reasons compare what the recommendation and
    the runner-up have left against what the peak needs, from their purchases."""
    from llmplan.planner.advice import gpu_failure_left

    for r in results.values():
        ranked = r["_search"]["ranked"]
        rec = ranked[0]
        left = gpu_failure_left(rec)
        lines = [x for x in r["advice"]["why"] if x.startswith("With one GPU failed")]
        if left is None:
            assert not lines
            continue
        bought = rec._ctx["bought"][rec.details["replicas_needed"]].purchase
        assert left == (bought.replicas - 1, rec.details["replicas_needed"])
        for line in lines:
            survives = line.startswith("With one GPU failed, this option still carries the peak")
            assert survives == (left[0] >= left[1])
    ia = results["internal-assistant"]["advice"]["why"]  # cheaper and surviving, or dearer and ranked first for it
    assert any(x.startswith("With one GPU failed, this option still carries the peak")
               or ("but the runner-up falls short of the peak with one GPU failed" in x
                   and x.endswith("that ranks it first."))
               for x in ia)


def test_a_country_field_says_how_to_write_norway(cat):
    """YAML 1.1 turns an unquoted NO into false: a country field says so (and how to quote it) instead of 'not a
    valid string', and never reads a boolean as a country; quoted, Norway is in the EEA, not the EU, so Llama 4's
    exclusion does not reach it."""
    from llmplan.errors import SpecError

    with pytest.raises(SpecError, match="write it in quotes, 'NO'"):
        parse_scenario(yaml.safe_load("policy: {buyer_country: NO}\nworkload: {requests_per_day: 1000}"))
    with pytest.raises(SpecError, match="not true/false"):
        parse_scenario({"policy": {"data_residency": [False, "EU"]}, "workload": {"requests_per_day": 1000}})
    p = parse_scenario(yaml.safe_load("policy: {buyer_country: 'NO', data_residency: ['NO', SE]}\n"
                                      "workload: {requests_per_day: 1000}")).policy
    assert p.buyer_country == "NO" and p.data_residency == ["NO", "SE"]
    assert pol.model_rule(cat.model("meta-llama/Llama-4-Scout-17B-16E-Instruct"), p, cat).ok
    v = pol.model_rule(cat.model("meta-llama/Llama-4-Scout-17B-16E-Instruct"), Policy(buyer_country="DE"), cat)
    assert not v.ok and v.reasons[0].startswith("licence territory:")


def test_one_request_alone_starts_its_answer_at_the_p95_of_the_sum_not_the_sum_of_p95s(cat):
    """TTFT(prompt) + thinking × TPOT over independent prompt and thinking lengths: its p95 is the means plus the
    root of the two excesses' squares (as for_model sums lengths), less than the p95 prompt's TTFT plus the p95
    thinking's time. A limit between the two passes the one-request check (the simulator judges the rest)."""
    from llmplan.planner.search import size_replicas
    from llmplan.serving.workload import Slo, Workload, for_model

    d = resolve(FitRequest(model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", gpu="h100-sxm", precision="bf16",
                           engine="vllm"), cat)
    base = dict(requests_per_day=20000, input_tokens={"mean": 4000, "p95": 30000}, output_tokens=200,
                thinking_tokens={"mean": 300, "p95": 900})
    probe = size_replicas(d, cat, for_model(Workload(**base, slo=Slo(answer_start_p95_ms=1.0)), d.model), 1.0, 65536)
    got = float(re.search(r"answer start ([\d.,]+) s", probe).group(1))  # the p95 of the sum, seconds
    ttft95 = float(re.search(r"TTFT ([\d,]+) ms \(p95 prompt\)", probe).group(1).replace(",", "")) / 1e3
    tpot = float(re.search(r"TPOT ([\d.]+) ms", probe).group(1)) / 1e3
    sum_of_p95 = ttft95 + 900 * tpot
    assert got < sum_of_p95 - 0.1
    limit_ms = 1e3 * (got + sum_of_p95) / 2 / 0.9  # between the two, with the headroom
    w = for_model(Workload(**base, slo=Slo(answer_start_p95_ms=limit_ms)), d.model)
    assert not isinstance(size_replicas(d, cat, w, 0.1, 65536), str)


def test_no_ranked_option_costs_more_than_the_prune_band_over_the_best(results):
    """Layouts are sized cheapest purchase floor first, so one sized before the best was found (L40S at TP 4:
    a cheap floor, 404 replicas of a model whose TTFT alone nearly fills the limit, $39.6 M) escaped the
    1.5 × best cut. It is held to the final best as well, and says so among the rejections."""
    from llmplan.planner.search import prune_factor

    for name, r in results.items():
        owned = [o for o in r["_search"]["ranked"] if o.deployment == "on_prem"]
        if not owned:
            continue
        best = min(o.tco_usd for o in owned)
        factor = prune_factor(load_scenario(REPO / "examples" / f"{name}.yaml"))
        assert all(o.tco_usd <= factor * best + 1e-6 for o in owned), name
    why = {x["option"]: x["reasons"][0] for x in results["internal-assistant"]["rejected"]}
    # the docstring's L40S at TP 4 is never ranked: held to the final best, or (since the share of prompts whose own
    # TTFT is over the limit counts the part of each length bin above it) refused outright at any rate
    assert re.match(r"cost floor: sized at \d+ replica|latency: SLO unattainable",
                    why["meta-llama/Llama-3.3-70B-Instruct:fp8:l40s:vllm:tp4"])
    quoted = 0
    for name, r in results.items():  # every cost-floor rejection quotes a TCO above the band over the best
        factor = prune_factor(load_scenario(REPO / "examples" / f"{name}.yaml"))
        for x in r["rejected"]:
            m = re.match(r"cost floor: sized at [\d,]+ replica\(s\) its TCO \$([\d,]+) is more than [\d.]+ × the best "
                         r"TCO the analytic sizing found, \$([\d,]+)", x["reasons"][0])
            if m:
                tco, best = (float(g.replace(",", "")) for g in m.groups())
                assert tco > factor * best - 1, (name, x["option"])
                quoted += 1
    assert quoted > 10


def test_alternatives_and_the_pareto_front_give_a_thinking_models_answer_start():
    """A model that thinks starts its answer long after its first token: where one is listed, the alternatives
    table gains an answer-start column (seconds for it, the TTFT for a model that does not think) and its
    Pareto line says when its answer starts; without one the table is as before."""
    from llmplan.planner.report import _alternative_lines, md_text

    def opt(oid, ttft, answer):
        return {"id": oid, "deployment": "on_prem", "tco_usd": 1.0, "cost_per_million_tokens_usd": 1.0,
                "ttft_p95_ms": ttft, "tpot_p95_ms": 50.0, "answer_start_p95_ms": answer, "quality": None,
                "quality_recovery_pct": 100.0,
                "details": {"latency_basis": "simulated"}}

    r = {"alternatives": [opt("a", 191.0, 242_100.0), opt("b", 107.0, 107.0)],
         "ranking": {"benchmark_name": "MMLU-Pro"}}
    lines = _alternative_lines(r, md_text)
    assert "| TTFT p95 | answer start p95 | TPOT p95 |" in lines[2]
    assert "| 191 ms | 242.1 s | 50 ms |" in lines[4] and "| 107 ms | 107 ms | 50 ms |" in lines[5]
    assert "answer start" not in _alternative_lines({**r, "alternatives": [opt("b", 107.0, 107.0)]}, md_text)[2]


def test_a_switchable_model_with_thinking_off_is_ranked_on_its_thinking_off_rating(cat):
    """LMArena rates Qwen3-235B-A22B 1,365 with thinking and 1,391 without (a separate arena entry,
    Qwen3-235B-A22B-no-thinking); a plan that turns thinking off ranks it on the latter, and says so."""
    from llmplan.planner import quality as qual

    m, fmt, bench = cat.models.get("Qwen/Qwen3-235B-A22B"), cat.quant_format("fp8"), cat.benchmarks.get("arena_text")
    on, off = qual.figure(m, fmt, bench, cat), qual.figure(m, fmt, bench, cat, thinking_off=True)
    assert (on.score, off.score) == (1365.0, 1391.0) and "thinking off" in off.label and "thinking off" not in on.label
    r1 = cat.models.get("deepseek-ai/DeepSeek-R1")  # always thinks: no thinking-off figure applies
    assert qual.figure(r1, fmt, bench, cat, thinking_off=True).score == qual.figure(r1, fmt, bench, cat).score


def test_thinking_plus_answer_past_the_longest_generation_is_a_clear_error(cat):
    """Each length within its bounds, their sum past the 10,000,000 tokens a request may generate: the scenario
    is refused where both are stated (so no stored scenario can never run), and where the answer comes from the
    preset the plan says so instead of failing inside (it was an internal error, HTTP 500)."""
    from llmplan.errors import LlmplanError

    doc = {"name": "x", "models": ["deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"], "hardware": ["h100-sxm"],
           "engines": ["vllm"], "workload": {"preset": "chat", "requests_per_day": 1000,
                                             "output_tokens": 10, "thinking_tokens": {"mean": 100000, "p95": 10000000}}}
    with pytest.raises(LlmplanError, match=r"thinking_tokens \+ output_tokens come to"):
        parse_scenario(doc)
    doc["workload"].pop("output_tokens")
    doc["workload"]["thinking_tokens"] = 10_000_000
    r = run(parse_scenario(doc), cat)  # the model that thinks is excluded, naming the sum
    why = " ".join(" ".join(x["reasons"]) for x in r["rejected"])
    assert r["recommendation"] is None and "thinking_tokens + output_tokens come to" in why


def test_newcomer_mistakes_get_a_fix_or_a_warning(cat):
    """Newcomer review: (1) hardware.vendors [nvidia] matched nothing (the catalog writes NVIDIA; Intel's is
    'Intel (Habana Labs)'): vendor names match whatever their case, by the whole name or its first word, and
    a constraint that matches nothing lists the catalog's vendors; (2) requests_per_day with rate_per_s dropped
    one silently; (3) an API recommended under an SLO never said the SLO was not checked for it."""
    from llmplan.errors import LlmplanError
    from llmplan.planner.policy import vendor_named
    from llmplan.planner.search import candidate_hardware

    assert vendor_named("NVIDIA", ["nvidia"]) and vendor_named("Intel (Habana Labs)", ["intel"])
    assert not vendor_named("AMD", ["nvidia"]) and not vendor_named("Intel (Habana Labs)", ["habana"])
    base = {"name": "x", "models": ["Qwen/Qwen3-8B"], "engines": ["vllm"],
            "workload": {"preset": "chat", "requests_per_day": 2000, "thinking_off": True}}
    hw = candidate_hardware(parse_scenario({**base, "hardware": {"vendors": ["nvidia"]}}), cat)
    assert hw and all(a.vendor == "NVIDIA" for a in hw)
    with pytest.raises(LlmplanError, match="NVIDIA"):
        run(parse_scenario({**base, "hardware": {"vendors": ["nvidiaa"]}}), cat)
    with pytest.raises(LlmplanError, match="requests_per_day or rate_per_s, not both"):
        parse_scenario({**base, "hardware": ["h100-sxm"], "workload": {**base["workload"], "rate_per_s": 3}})
    api = {**base, "models": ["openai/gpt-oss-120b"], "hardware": ["h100-sxm"], "alternatives": ["api"],
           "workload": {"preset": "chat", "requests_per_day": 2000, "thinking_tokens": {"mean": 2000, "p95": 6000},
                        "slo": {"ttft_p95_ms": 2000, "answer_start_p95_ms": 3000}}}
    r = run(parse_scenario(api), cat)
    assert r["recommendation"]["deployment"] == "api"
    assert "answer_start_p95_ms 3000" in text(r) and "is not checked for it" in text(r)


def test_the_sizing_holds_the_goodput_share_with_the_same_headroom_as_the_limits():
    """Another simulated hour lands a few per cent either side: the planner held the latency limits 10 % inside
    the SLO but the goodput share at its stated value, and two ranked options then met 94.8-94.9 % with another
    seed against 95. The share allowed to miss is tightened by the same 10 %: 95 % is held at 95.5 %."""
    from llmplan.catalog.schema import Slo
    from llmplan.planner.search import tightened

    t = tightened(Slo(ttft_p95_ms=2000, answer_start_p95_ms=10000, goodput_pct=95))
    assert t.ttft_p95_ms == pytest.approx(1800) and t.answer_start_p95_ms == pytest.approx(9000)
    assert t.goodput_pct == pytest.approx(95.5) and t.tpot_p95_ms is None
    assert tightened(Slo(goodput_pct=100)).goodput_pct == 100


DP_SCENARIO = {"schema_version": 1, "name": "DeepSeek long answers",
               "workload": {"requests_per_day": 2_000_000, "profile": "flat", "input_tokens": {"mean": 300, "p95": 600},
                            "output_tokens": {"mean": 1500, "p95": 3000},
                            "slo": {"ttft_p95_ms": 5000, "tpot_p95_ms": 100}},
               "models": ["deepseek-ai/DeepSeek-V3"], "hardware": ["h200"], "engines": ["sglang"],
               "finance": {"horizon_years": 3}}


def test_the_planner_sizes_sglang_with_and_without_dp_attention_and_keeps_the_cheaper(cat):
    """SGLang over an MLA model at TP 8: the same layout sized with data-parallel attention too. Short prompts and
    long answers fill the KV cache, which TP replicates 8 times: DP attention holds 6.5 x the sequences and halves
    the replicas; its serve line turns it on; the plain layout is rejected naming the one that supersedes it. Where
    the prompts are longer than an attention rank's share of the prefill chunk (moe-public-service), which the speed
    model does not capture, DP attention is not sized and the plain layouts stand."""
    p = run(parse_scenario(DP_SCENARIO), cat)
    best = p["recommendation"]
    assert best["id"].endswith(":tp8:dp-attention") and best["details"]["dp_attention"] is True
    assert "--enable-dp-attention --dp-size 8" in best["serve_command"]
    speed = next(a["text"] for a in p["advice"]["what_would_change"] if a["change"] == "speed")
    assert "data-parallel attention is modelled" in speed and "not calibrated" in speed
    plain = next(r for r in p["rejected"] if r["option"] == "deepseek-ai/DeepSeek-V3:fp8:h200-sxm:sglang:tp8")
    assert plain["reasons"][0].startswith("superseded: the same layout with data-parallel attention")
    assert best["id"] in plain["reasons"][0]
    moe = json.loads((Path(__file__).parents[1] / "examples/reports/moe-public-service/plan.json").read_text())
    lost = [r["reasons"][0] for r in moe["rejected"] if r["option"].endswith(":dp-attention")]
    assert any(r.startswith("not sized: sglang gives each of the 8 attention ranks") for r in lost)
    assert not any(r.startswith("superseded") for r in lost)  # sized where a rank's share holds the p95 prompt
    # a DP twin that cannot run says why as any option does (DeepSeek-V3 on 2 x H200 does not hold its weights)
    twins = [r["reasons"][0] for r in p["rejected"] if r["option"].endswith(":dp-attention")]
    assert any(r.startswith("memory:") for r in twins)


def test_a_layout_set_aside_for_its_dp_attention_twin_comes_back_when_the_simulator_turns_the_twin_down(cat,
                                                                                                       monkeypatch):
    """The cheaper attention arrangement is chosen on the analytic sizing; the simulator has the last word. When
    it rejects the data-parallel twin, the plain layout it superseded is sized, confirmed and offered again, and
    no rejection still says it was superseded."""
    import llmplan.planner.search as search

    real = search.confirm

    def turned_down(o, cat_, s):
        if not o.id.endswith(search.DP_ATTENTION):
            return real(o, cat_, s)
        o._ctx["confirmed"] = False
        o.details["simulated"] = {"slo": {"ttft_p95_ms": {"ok": False, "value": 9e3, "limit": 4.5e3}},
                                  "tried_replicas": [2, 8]}

    monkeypatch.setattr(search, "confirm", turned_down)
    real_latency, at_peak = search._latency_at_peak, []

    def latency(o, cat_):
        at_peak.append(o.id)
        return real_latency(o, cat_)

    monkeypatch.setattr(search, "_latency_at_peak", latency)
    p = run(parse_scenario(DP_SCENARIO), cat)
    assert p["recommendation"]["id"] == "deepseek-ai/DeepSeek-V3:fp8:h200-sxm:sglang:tp8"
    assert "deepseek-ai/DeepSeek-V3:fp8:h200-sxm:sglang:tp8" in at_peak  # its analytic figures, as every option's
    reasons = {r["option"]: r["reasons"][0] for r in p["rejected"]}
    assert reasons["deepseek-ai/DeepSeek-V3:fp8:h200-sxm:sglang:tp8:dp-attention"].startswith("latency: the simulated")
    assert not any(r.startswith("superseded") for r in reasons.values())


def test_the_web_search_budget_counts_the_dp_attention_twins(cat):
    from llmplan.planner.search import TP_CHOICES, candidate_formats
    from llmplan.web.tasks import search_size

    s = parse_scenario(DP_SCENARIO)
    tps = [t for t in TP_CHOICES if t <= 8]
    twins = len([t for t in tps if t > 1])  # an MLA model: every TP group replicates its latent cache
    assert search_size(s, cat) == (len(tps) + twins) * len(candidate_formats(cat.engine("sglang"), s, cat))


def test_dp_attention_is_not_sized_where_its_per_rank_prefill_chunk_matters(results):
    """SGLang gives each attention rank 1/TP of the prefill chunk and prefills the ranks' prompts together; the
    speed model runs a prompt's whole chunk on one GPU, which understates DP attention once prompts are longer than
    the rank's share. With moe-public-service's prompts (p95 8,000 tokens, 1,024 a rank at TP 8) the planner does
    not size the twin (it had priced DeepSeek-V3 on 8 x MI300X with it at 25 replicas against 2), and says why."""
    why = {x["option"]: x["reasons"][0] for x in results["moe-public-service"]["rejected"]}
    dp = why["deepseek-ai/DeepSeek-V3:fp8:mi300x:sglang:tp8:dp-attention"]
    assert dp.startswith("not sized: sglang gives each of the 8 attention ranks 1/8 of the prefill chunk")
    assert "p95 prompt is 8,000 tokens" in dp
    assert not any(r.startswith("superseded") for o, r in why.items() if o.endswith(":dp-attention"))
