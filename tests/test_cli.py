"""End-to-end tests of the `llmplan` command: JSON contracts, tables, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llmplan.cli import main

FIT_KEYS = {"weights_bytes", "kv_cache_bytes_per_token", "per_gpu_required_bytes", "per_gpu_capacity_bytes", "fits",
            "kv_capacity_tokens", "max_concurrency", "max_context_tokens"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_json_contract(capsys):
    code, out, _ = run(capsys, "fit", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100 SXM5 80GB",
                       "--num-gpus", "2", "--context", "8192", "--concurrency", "4", "--json")
    assert code == 0
    r = json.loads(out)
    assert FIT_KEYS <= set(r)
    assert isinstance(r["fits"], bool) and r["fits"]
    assert all(isinstance(r[k], int) for k in FIT_KEYS - {"fits"})
    assert r["kv_cache_bytes_per_token"] == 327_680
    assert r["tp"] == 2 and r["gpu"] == "h100-sxm"
    assert r["per_gpu_required_bytes"] <= r["per_gpu_capacity_bytes"]
    assert r["max_concurrency"] >= 4


def test_fit_json_does_not_fit(capsys):
    code, out, _ = run(capsys, "fit", "meta-llama/Llama-3.1-405B", "--gpu", "l4", "--context", "4096", "--json")
    assert code == 0  # a valid question with the answer "no"
    r = json.loads(out)
    assert r["fits"] is False and r["reasons"]
    assert r["per_gpu_required_bytes"] > r["per_gpu_capacity_bytes"]


def test_fit_headroom_keeps_its_sign_when_something_else_does_not_fit(capsys):
    # 8B on an 80 GB H100 has memory to spare at 200,000 tokens; it is the model's 131,072-token window that fails
    code, out, _ = run(capsys, "fit", "llama-3.1-8b", "--gpu", "h100-sxm", "--context", "200000")
    assert code == 0 and "DOES NOT FIT" in out and "131,072-token maximum" in out
    line = next(ln for ln in out.splitlines() if "headroom" in ln)
    assert "headroom -" not in line, line


def test_fit_table(capsys):
    code, out, _ = run(capsys, "fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "rtx-4090", "--context", "8192")
    assert code == 0
    for word in ("weights", "kv cache", "activations", "FITS", "Memory per GPU"):
        assert word in out


def test_fit_gguf_on_llamacpp_layer_split(capsys):
    code, out, _ = run(capsys, "fit", "meta-llama/Meta-Llama-3-70B", "--gpu", "rtx-3090", "--num-gpus", "2",
                       "--engine", "llamacpp", "--precision", "q4_k_m", "--context", "4096", "--json")
    assert code == 0
    r = json.loads(out)
    assert r["tp"] == 1 and r["pp"] == 2 and r["precision"] == "q4_k_m"


@pytest.mark.parametrize("argv, needle", [
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxn"], "did you mean 'h100-sxm'"),
    (["fit", "meta-llama/Llama-3.1-8B-Instuct", "--gpu", "h100-sxm"], "did you mean"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--tp", "3"], "does not divide the 32 attention heads"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--tp", "16"], "more GPUs than one h100-sxm server"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--num-gpus", "4", "--tp", "2", "--pp", "1"],
     "does not equal"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--precision", "q9_z"], "unknown quantization format"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--engine", "llamacpp", "--tp", "2"],
     "no tensor parallelism"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--ep", "2", "--tp", "2"], "mixture-of-experts"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--concurrency", "0"], "--concurrency"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--gpu-memory-utilization", "1.5"],
     "--gpu-memory-utilization"),
    (["fit", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--num-gpus", "two"], "--num-gpus"),
    (["catalog", "spaceships"], "unknown list"),
    (["show", "zzzz-not-a-thing"], "unknown catalog entry"),
])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert needle in err
    assert "Traceback" not in err + out


def test_malformed_model_file_exit_2(capsys, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{nope")
    code, _, err = run(capsys, "fit", str(bad), "--gpu", "h100-sxm")
    assert code == 2 and "not valid JSON" in err
    empty = tmp_path / "empty-model-dir"
    empty.mkdir()
    code, _, err = run(capsys, "fit", str(empty), "--gpu", "h100-sxm")
    assert code == 2 and "no config.json" in err


def test_bad_catalog_override_exit_2(capsys, tmp_path):
    (tmp_path / "x.yaml").write_text("schema_version: 1\nkind: accelerators\nentries:\n  - id: q\n")
    code, _, err = run(capsys, "catalog", "gpus", "--catalog", str(tmp_path))
    assert code == 2 and "x.yaml" in err and "entry 1 (q)" in err


def test_catalog_json_lists(capsys):
    for what, minimum in (("gpus", 30), ("models", 40), ("formats", 20), ("engines", 6)):
        code, out, _ = run(capsys, "catalog", what, "--json")
        assert code == 0
        rows = json.loads(out)
        assert len(rows) >= minimum
        for r in rows:
            assert r["id"] and isinstance(r["aliases"], list) and r["source"] and r["as_of"]


def test_catalog_filter_and_table(capsys):
    code, out, _ = run(capsys, "catalog", "gpus", "--filter", "amd", "--json")
    ids = {r["id"] for r in json.loads(out)}
    assert {"mi300x", "mi325x"} <= ids and "h100-sxm" not in ids
    code, out, _ = run(capsys, "catalog", "models", "--filter", "qwen3")
    assert code == 0 and "Qwen/Qwen3-8B" in out


def test_show_entry_with_sources(capsys):
    code, out, _ = run(capsys, "show", "H100 SXM5 80GB", "--json")
    d = json.loads(out)
    assert d["id"] == "h100-sxm" and d["kind"] == "accelerators" and d["source"]
    code, out, _ = run(capsys, "show", "meta-llama/Llama-3.1-8B-Instruct", "--json")
    d = json.loads(out)
    assert d["computed_params"] == 8_030_261_248
    code, out, _ = run(capsys, "show", "q4_k_m")
    assert code == 0 and "q4_k_m" in out


def test_console_script_end_to_end(tmp_path):
    """The installed `llmplan` entry point, in a subprocess, exits 2 on bad input without a traceback."""
    exe = [sys.executable, "-c", "from llmplan.cli import entry; entry()"]
    ok = subprocess.run([*exe, "fit", "Qwen/Qwen3-8B", "--gpu", "l40s", "--json"], capture_output=True, text=True,
                        env={**os.environ, "LLMPLAN_CATALOG": ""}, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["fits"] is True
    bad = subprocess.run([*exe, "fit", "Qwen/Qwen3-8B", "--gpu", "l40x"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "l40s" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
