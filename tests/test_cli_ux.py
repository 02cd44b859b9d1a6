"""The command line as a new user meets it: a fast start (guarded by the modules `--help` and `fit`
load, not by a timer), hints that name commands and flags that exist, and answers that say what
to try. Expected values are derived by hand in the comments."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmplan.cli import main

HEAVY = ("numpy", "scipy", "pandas", "fastapi", "starlette", "sqlalchemy", "uvicorn", "vl_convert", "weasyprint",
         "matplotlib", "llmplan.cost", "llmplan.serving", "llmplan.planner", "llmplan.perf", "llmplan.web")


def loaded_after(*argv: str) -> set[str]:
    code = ("import sys\nfrom llmplan.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    return set(p.stderr.split())


def _heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_help_loads_neither_pydantic_nor_the_catalog():
    mods = loaded_after("--help")
    assert "llmplan.cli" in mods
    assert not _heavy(mods), _heavy(mods)
    assert not {"pydantic", "yaml", "llmplan.catalog", "llmplan.api"} & mods


def test_fit_loads_only_the_memory_path():
    mods = loaded_after("fit", "llama-3.1-8b", "--gpu", "h100-sxm", "--json")
    assert "llmplan.memory.fit" in mods
    assert not _heavy(mods), _heavy(mods)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (code, err)
    return err


def test_unknown_region_names_the_command_that_lists_regions(capsys):
    err = one_line_error(capsys, "tco", "llama-3.1-8b", "--gpu", "h100-sxm", "--requests-per-day", "1000",
                         "--region", "narnia")
    assert "`llmplan catalog regions`" in err
    assert run(capsys, "catalog", "regions")[0] == 0  # the command the hint names exists


def test_every_list_hint_names_an_existing_list():
    from llmplan.catalog import _LABELS
    from llmplan.cli.catalog_cmd import LISTS
    from llmplan.errors import _LIST_CMD, _where

    assert set(_LIST_CMD.values()) <= set(LISTS)
    for label in _LABELS.values():
        hint = _where(label)
        if "llmplan catalog " in hint:
            assert hint.split("`llmplan catalog ")[1].split("`")[0].split()[0] in LISTS, (label, hint)


def test_show_unknown_entry_hints_a_search_that_exists(capsys):
    err = one_line_error(capsys, "show", "nonexistent-thing")
    assert "catalog catalog" not in err and "`llmplan catalog models --filter TEXT`" in err


def test_simulate_names_the_flag_as_typed(capsys):
    err = one_line_error(capsys, "simulate", "llama-3.1-8b", "--gpu", "h100-sxm", "--workload", "chat", "--rate", "-1")
    assert err.startswith("error: --rate: ") and "--rate-per-s" not in err


def test_horizon_bound_is_written_readably(capsys):
    err = one_line_error(capsys, "tco", "llama-3.1-8b", "--gpu", "h100-sxm", "--requests-per-day", "1000",
                         "--horizon-years", "0")
    # the bound is 1/12 year = 0.0833…: four significant digits and what it is
    assert "at least 0.08333 (1 month" in err and "0.0833333" not in err


def test_missing_model_path_is_no_such_path(capsys, tmp_path):
    err = one_line_error(capsys, "fit", str(tmp_path / "missing-dir") + "/", "--gpu", "h100-sxm")
    assert "no such path" in err and "unknown model" not in err
    err = one_line_error(capsys, "fit", "./missing-dir/", "--gpu", "h100-sxm")
    assert "no such path" in err


def test_scenario_field_typo_gets_did_you_mean(capsys, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nworkload: {request_per_day: 100}\nmodels: [llama-3.1-8b]\nhardware: [h100-sxm]\n")
    err = one_line_error(capsys, "plan", str(f))
    assert "workload.request_per_day" in err and "did you mean 'requests_per_day'" in err


def test_closed_model_is_called_closed(capsys):
    err = one_line_error(capsys, "fit", "gpt-4o", "--gpu", "h100-sxm")
    assert "closed model" in err and "OpenAI" in err and "self-hosted" in err
    assert "gpt-j" in err  # listed as an open family, not offered as "did you mean"
    assert "did you mean" not in err and "llama-3" in err


def test_num_gpus_3_says_the_layout_it_chose(capsys):
    code, out, _ = run(capsys, "fit", "llama-3.1-8b", "--gpu", "h100-sxm", "--num-gpus", "3", "--context", "8192",
                       "--json")
    r = json.loads(out)
    assert code == 0 and (r["tp"], r["pp"]) == (1, 3)
    # Llama-3.1-8B: 32 attention heads, 8 KV heads; TP 3 divides neither. On an 8-GPU NVLink server the TP
    # sizes that divide both: 2, 4, 8
    note = next(n for n in r["notes"] if n.startswith("layout chosen"))
    assert "TP 1 × PP 3" in note and "32 attention heads / 8 KV heads" in note and "--num-gpus 2, 4, 8" in note


def test_does_not_fit_suggests_what_fits(capsys):
    # Llama-3.3-70B bf16 on 2 × H100, 16 sequences of 8,192 tokens: weights 141 GB / 2 = 70.6 GB per GPU plus
    # KV 16 × 8,192 × 327,680 B / 2 = 21.5 GB per GPU > the ~73 GiB budget; at fp8 35 + 21.5 GB fits.
    args = ("fit", "meta-llama/Llama-3.3-70B-Instruct", "--gpu", "h100-sxm", "--num-gpus", "2", "--context", "8192",
            "--concurrency", "16")
    code, out, _ = run(capsys, *args, "--json")
    r = json.loads(out)
    assert code == 0 and not r["fits"]
    tries = [n for n in r["notes"] if n.startswith("try ")]
    bits = next(t for t in tries if t.startswith("try fewer bits"))
    gpus = next(t for t in tries if t.startswith("try more GPUs"))
    assert "fp8" in bits
    n = int(gpus.split("--num-gpus ")[1].split()[0])
    # each suggestion, run as the user would, fits
    for extra in (("--precision", "fp8"), ("--num-gpus", str(n))):
        a = list(args)
        if extra[0] == "--num-gpus":
            a[a.index("--num-gpus") + 1] = extra[1]
        else:
            a += list(extra)
        assert json.loads(run(capsys, *a, "--json")[1])["fits"], extra
    smaller = next((t for t in tries if t.startswith("try a smaller model")), None)
    assert smaller is not None and "llama-3" in smaller


def test_fitting_answer_has_no_suggestions(capsys):
    r = json.loads(run(capsys, "fit", "llama-3.1-8b", "--gpu", "h100-sxm", "--context", "8192", "--json")[1])
    assert r["fits"] and not [n for n in r["notes"] if n.startswith("try ")]


def test_breakeven_never_within_horizon_is_said_in_words():
    from llmplan.cli.cost_cmd import breakeven_line

    u = {"breakeven_month": {"against": "API x", "p10": None, "p50": None, "p90": None},
         "breakeven_within_horizon_pct": 0.0}
    line = breakeven_line(u)
    assert "None" not in line and "never within the horizon" in line
    u = {"breakeven_month": {"against": "API x", "p10": 14.0, "p50": 20.0, "p90": None},
         "breakeven_within_horizon_pct": 62.0}
    line = breakeven_line(u)
    assert "P10 month 14" in line and "P90 never within the horizon" in line and "62 %" in line


def test_point_tco_outside_the_range_is_explained():
    from llmplan.cli.cost_cmd import point_vs_range

    sens = [{"assumption": "staff_fte_base", "low": 0.1, "value": 0.25, "high": 0.6},   # 0.35 up, 0.15 down
            {"assumption": "pue", "low": 1.2, "value": 1.4, "high": 1.5}]              # 0.1 up, 0.2 down
    note = point_vs_range(100.0, {"p10": 110.0, "p50": 130.0, "p90": 160.0}, sens)
    assert "below the P10" in note and "1 of 2 ranges reach further up" in note and "staff_fte_base" in note
    assert point_vs_range(130.0, {"p10": 110.0, "p50": 131.0, "p90": 160.0}, sens) == ""  # near the median


@pytest.mark.parametrize("argv", [("tco", "llama-3.1-8b", "--gpu", "h100-sxm", "--requests-per-day", "10000")])
def test_tco_output_has_no_none(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "None" not in out and "Break-even vs" in out


# --- a hurried user's mistakes (newcomer review, 2026-12) -------------------------------------------

def test_output_file_in_a_missing_folder_is_refused_before_the_work(capsys, tmp_path):
    target = tmp_path / "no-such-folder" / "cost.png"
    err = one_line_error(capsys, "tco", "llama-3.1-8b", "--gpu", "l40s", "--rate", "1", "--draws", "0",
                         "--chart", str(target))
    assert "--chart" in err and "does not exist" in err
    assert not target.parent.exists()


def test_plot_with_an_unknown_suffix_names_the_formats(capsys, tmp_path):
    err = one_line_error(capsys, "simulate", "llama-3.1-8b", "--gpu", "l40s", "-w", "chat", "--rate", "1",
                         "--plot", str(tmp_path / "x.pdf"))
    assert "--plot" in err and ".html" in err and ".svg" in err


def test_engine_version_newer_than_the_catalog_is_refused(capsys):
    err = one_line_error(capsys, "estimate", "llama-3.1-8b", "--gpu", "l40s", "-i", "100", "-o", "10",
                         "--engine", "vllm@99")
    assert "vllm@99" in err and "newer than the newest" in err


def test_llamacpp_build_numbers_after_the_old_profile_are_the_newest(capsys):
    code, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--gpu", "rtx-4090", "-p", "q4_k_m", "-i", "100",
                    "-o", "10", "--engine", "llamacpp@6918", "--json")
    assert code == 0 and "2024.05" not in json.loads(out)["engine_profile"]


def test_rate_and_concurrency_together_are_refused(capsys):
    err = one_line_error(capsys, "estimate", "llama-3.1-8b", "--gpu", "l40s", "-i", "100", "-o", "10",
                         "--request-rate", "2", "--concurrency", "4")
    assert "--concurrency" in err and "--request-rate" in err and "not both" in err


def test_estimate_that_does_not_fit_says_so_first(capsys):
    code, out, _ = run(capsys, "estimate", "llama-3.3-70b", "--gpu", "l40s", "-i", "1000", "-o", "100")
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert any(ln.startswith("DOES NOT FIT") for ln in lines[:5]), lines[:5]


def test_request_longer_than_the_context_window_does_not_fit(capsys):
    # Llama 3.1 8B's window is 131,072 tokens; 200,000 + 100 is longer
    code, out, _ = run(capsys, "estimate", "llama-3.1-8b", "--gpu", "h100-sxm", "-i", "200000", "-o", "100", "--json")
    r = json.loads(out)
    assert code == 0 and r["fits"] is False and "context window" in r["does_not_fit"]


@pytest.mark.parametrize("value, hint", [("Europe", "EU, EEA"), ("Germany", "did you mean DE")])
def test_unknown_residency_region_is_refused_with_a_hint(capsys, tmp_path, value, hint):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nworkload: {requests_per_day: 100}\nmodels: [llama-3.1-8b]\nhardware: [l40s]\n"
                 f"policy: {{data_residency: [{value}]}}\n")
    err = one_line_error(capsys, "plan", str(f))
    assert "policy.data_residency" in err and repr(value) in err and hint in err


def test_filter_that_matches_nothing_suggests_a_word(capsys):
    err = one_line_error(capsys, "catalog", "gpus", "--filter", "nvidai")
    assert "did you mean 'NVIDIA'" in err


def test_engine_that_does_not_run_on_apple_names_one_that_does(capsys):
    err = one_line_error(capsys, "fit", "llama-3.1-8b", "--gpu", "apple-m4-max-40c")
    assert "vllm does not run on apple-m4-max-40c" in err and "llamacpp" in err.split("Engines for")[1]


def test_too_many_gpus_is_explained_without_a_flag_never_typed(capsys):
    err = one_line_error(capsys, "fit", "llama-3.1-8b", "--gpu", "h100-sxm", "--num-gpus", "100000")
    assert "--num-gpus 100000" in err and "--pp" not in err and "32 layers" in err


def test_capacity_states_its_slos_and_json_flags_are_booleans(capsys):
    argv = ("capacity", "llama-3.1-8b", "--gpu", "h100-sxm", "-w", "chat", "--rate", "2")
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "SLOs: TTFT p95 ≤" in out
    code, out, _ = run(capsys, *argv, "--json")
    assert all(isinstance(v["ok"], bool) for v in json.loads(out)["at_peak"]["slo"].values())


def test_empty_model_list_says_what_to_give(capsys, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\nworkload: {requests_per_day: 100}\nmodels: []\nhardware: [l40s]\n")
    err = one_line_error(capsys, "plan", str(f))
    assert "models: an empty list leaves nothing to plan" in err and "llmplan catalog models" in err


@pytest.mark.parametrize("value", [0, -1])
def test_an_answer_start_limit_must_be_positive(capsys, tmp_path, value):
    """workload.slo.answer_start_p95_ms is a time like the other limits: 0 or negative is refused, one line
    naming the field, exit 2; a positive one is taken (the model does not think: it is the TTFT)."""
    from llmplan.catalog.schema import Slo

    with pytest.raises(ValueError, match="answer_start_p99_ms"):
        Slo(answer_start_p99_ms=value)
    f = tmp_path / "s.yaml"
    body = ("name: x\nworkload: {{requests_per_day: 2000, slo: {{answer_start_p95_ms: {}}}}}\n"
            "models: [meta-llama/Llama-3.1-8B-Instruct]\nhardware: [h100-sxm]\nalternatives: []\n")
    f.write_text(body.format(value))
    err = one_line_error(capsys, "plan", str(f))
    assert "workload.slo.answer_start_p95_ms: must be more than 0" in err
    f.write_text(body.format(3000))
    code, out, _ = run(capsys, "plan", str(f))
    assert code == 0 and "answer_start_p95_ms 3000" in out and "## Recommendation" in out
