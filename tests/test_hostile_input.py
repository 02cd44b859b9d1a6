"""Hostile input to the CLI and the loaders: exit code 2 and one clear line, never a traceback,
never a hang, nothing written."""

from __future__ import annotations

import os
import time

import pytest

from llmplan.cli import main

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *[f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)],
        "notes: x",
        "gpu_price_usd_bomb: *i",
    ])


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    _, err = capsys.readouterr()
    return code, err


@pytest.mark.parametrize("body, message", [
    (BOMB.replace("gpu_price_usd_bomb: *i", "models: *i"), ""),
    (BOMB.replace("gpu_price_usd_bomb: *i", "policy: {preset: *i}"), ""),
    ("workload: {requests_per_day: .nan}", "workload.requests_per_day"),
    ("workload: {requests_per_day: .inf}", "workload.requests_per_day"),
    ("workload: {requests_per_day: 1e400}", "workload.requests_per_day"),
    ("workload: {requests_per_day: -5}", "workload.requests_per_day"),
    ("finance: {horizon_years: 100000000000000000000000}", "finance.horizon_years"),
    ("models: 7", "models"),
    ("!!python/object/apply:os.system ['echo pwned']", "YAML tag '!!python/object/apply:os.system' is not accepted"),
    ("a: !!binary aGVsbG8=", ""),
    ("\t- tab", "not valid YAML"),
])
def test_plan_rejects_hostile_scenarios(capsys, tmp_path, body, message):
    f = tmp_path / "s.yaml"
    f.write_text(body)
    t0 = time.perf_counter()
    code, err = cli(capsys, "plan", str(f), "--out", str(tmp_path / "out"))
    assert time.perf_counter() - t0 < 20
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_alias_bomb_is_refused_by_size(tmp_path, capsys):
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB.replace("gpu_price_usd_bomb: *i", "notes_list: *i").replace("notes: x\n", ""))
    import yaml

    from llmplan.errors import LlmplanError
    from llmplan.yamlguard import check_expanded_size

    with pytest.raises(LlmplanError, match="expands to more than"):
        check_expanded_size(yaml.safe_load(f.read_text()), "bomb")
    code, err = cli(capsys, "plan", str(f))
    assert code == 2 and "expands to more than" in err


def test_binary_empty_huge_and_directory(capsys, tmp_path):
    b = tmp_path / "bin.yaml"
    b.write_bytes(os.urandom(4096))
    assert cli(capsys, "plan", str(b)) == (2, f"error: {b}: not a UTF-8 text file\n")
    e = tmp_path / "empty.yaml"
    e.write_text("")
    assert "is empty" in cli(capsys, "plan", str(e))[1]
    h = tmp_path / "huge.yaml"
    with h.open("wb") as fh:  # 100 MB, sparse: refused on its size before it is read
        fh.truncate(100 * 2**20)
    code, err = cli(capsys, "plan", str(h))
    assert code == 2 and "over the" in err and "limit" in err
    code, err = cli(capsys, "plan", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_catalog_override_bomb(capsys, tmp_path):
    d = tmp_path / "cat"
    d.mkdir()
    (d / "x.yaml").write_text("schema_version: 1\nkind: policy_presets\n" + BOMB.replace(
        "gpu_price_usd_bomb: *i", "entries: [{id: p, source: s, as_of: '2026', reasoning: r, policy: {x: *i}}]"
    ).replace("notes: x\n", ""))
    code, err = cli(capsys, "catalog", "gpus", "--catalog", str(d))
    assert code == 2 and "expands to more than" in err
