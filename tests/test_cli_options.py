"""The command-line options are generated from the request specs (issue 15): the generated table is
current, every request field with a `CLI` entry is an option of the commands built on its class,
and a bad value names the option the user typed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from llmplan.cli import app, gen_options
from llmplan.cli.options_generated import OPTIONS

runner = CliRunner()


def test_the_generated_options_are_current():
    with open(gen_options.TARGET, encoding="utf-8") as f:
        on_disk = f.read()
    assert on_disk == gen_options.render(), "run `python -m llmplan.cli.gen_options` and commit the result"


def test_every_cli_entry_is_a_field_of_its_class():
    for name, cls in gen_options.specs().items():
        assert set(gen_options.cli_table(cls)) <= set(cls.model_fields), name
        assert set(OPTIONS[name]) == set(gen_options.cli_table(cls))


def test_an_entry_for_a_missing_field_is_refused():
    from llmplan.specs import Cli, FitRequest

    class Broken(FitRequest):
        CLI = {"no_such_field": Cli(("--nope",))}

    with pytest.raises(KeyError, match="no_such_field"):
        gen_options.rows(Broken)


@pytest.mark.parametrize(("command", "spec", "left_out"), [
    ("fit", "FitRequest", set()),
    ("estimate", "EstimateRequest", {"context_tokens", "gpu_memory_utilization", "block_size"}),
    ("simulate", "ServeRequest", {"concurrency", "block_size"}),
    ("capacity", "ServeRequest", {"concurrency", "block_size", "replicas", "num_requests", "duration_s",
                                  "sample_s"}),
    ("tco", "TcoRequest", {"concurrency", "block_size", "replicas", "router", "num_requests", "duration_s",
                           "sample_s"}),
])
def test_a_command_offers_its_spec_s_options(command, spec, left_out):
    out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    for field, (_, _, flags, _) in OPTIONS[spec].items():
        if flags and field not in left_out:
            for flag in flags[0].split("/"):  # an on/off pair: both forms offered
                assert flag in out, (command, flag)
    for field in left_out:
        flags = OPTIONS[spec][field][2]
        if flags and flags[0] not in {f for r in OPTIONS[spec].values() if r is not OPTIONS[spec][field]
                                      for f in r[2]}:
            assert f"{flags[0]} " not in out, (command, flags[0])


def test_tco_takes_the_finance_options():
    out = runner.invoke(app, ["tco", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    for field, (_, _, flags, _) in OPTIONS["Finance"].items():
        assert flags[0] in out, field


def test_a_bad_value_names_the_option_typed():
    r = runner.invoke(app, ["simulate", "llama-3.1-8b", "-g", "l40s", "-w", "chat", "--requests", "0"])
    assert r.exit_code != 0
    assert "--requests" in (r.output + str(r.exception))
