"""`llmplan catalog import-prices`: gpuhunt CSV and litellm JSON -> catalog override files, bad files refused.

The fixtures in tests/data/prices are written by hand in the documented column layouts (gpuhunt
storage v2 CSV; litellm model_prices_and_context_window.json); their numbers are invented. Expected
values below are computed by hand from those rows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from llmplan.catalog import load_catalog
from llmplan.cli import main

DATA = Path(__file__).parent / "data" / "prices"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _entries(path: Path) -> dict[str, dict]:
    doc = yaml.safe_load(path.read_text())
    return {e["id"]: e for e in doc["entries"]}


def test_gpuhunt_csv_becomes_cloud_offers(tmp_path, capsys):
    code, out, err = run(capsys, "catalog", "import-prices", str(DATA / "aws.csv"), "--out", str(tmp_path),
                         "--as-of", "2026-11-01")
    assert code == 0, err
    offers = _entries(tmp_path / "cloud_offers.yaml")
    # an offer the catalog already has takes its id (the override replaces it); a new one keeps its slug
    assert load_catalog().cloud_offers.find("aws-p5.48xlarge-eu-north-1").id == "aws-p5-48xlarge-eu-north-1"
    p5 = offers["aws-p5-48xlarge-eu-north-1"]
    assert p5["accelerator"] == "h100-sxm" and p5["region_country"] == "SE" and p5["provider_country"] == "US"
    assert p5["usd_per_gpu_hour_on_demand"] == 60.0 / 8  # the cheaper of two zones ($60 and $64 per 8 GPUs)
    assert p5["usd_per_gpu_hour_spot"] == 24.0 / 8
    assert p5["as_of"] == "2026-11-01" and "aws.csv" in p5["source"] and "gpuhunt" in p5["source"]
    assert offers["aws-p4d-24xlarge-eu-west-1"]["accelerator"] == "a100-sxm-40gb"  # A100 + 40 GB
    assert offers["aws-p4d-24xlarge-eu-west-1"]["region_country"] == "IE"
    assert offers["aws-g6e-xlarge-us-east-1"]["accelerator"] == "l40s"
    assert len(offers) == 3
    assert "unknown GPU Trainium1" in out and "mars-central-1" in out and "no GPU" in out  # reported, not guessed


def test_imported_offers_load_as_a_catalog_override(tmp_path, capsys):
    assert run(capsys, "catalog", "import-prices", str(DATA / "aws.csv"), "--out", str(tmp_path))[0] == 0
    cat = load_catalog([tmp_path])
    offer = cat.cloud_offers.get("aws-p5.48xlarge-eu-north-1")
    assert offer.usd_per_gpu_hour_on_demand == 7.5
    assert len(offer.as_of) == 10  # the file's modification date when no --as-of is given
    code, out, _ = run(capsys, "catalog", "cloud-offers", "--catalog", str(tmp_path), "--filter", "eu-north-1",
                       "--json")
    assert code == 0 and "aws-p5-48xlarge-eu-north-1" in {e["id"] for e in json.loads(out)}


def test_litellm_json_becomes_api_prices(tmp_path, capsys):
    src = DATA / "model_prices_and_context_window.json"
    code, out, err = run(capsys, "catalog", "import-prices", str(src), "--out", str(tmp_path), "--as-of", "2026-11-02")
    assert code == 0, err
    prices = _entries(tmp_path / "api_prices.yaml")
    gpt = prices["openai-gpt-test-1"]
    assert (gpt["input_usd_per_mtok"], gpt["output_usd_per_mtok"], gpt["cached_input_usd_per_mtok"]) == (
        2.5,
        10.0,
        1.25,
    )
    assert gpt["weights"] == "closed" and gpt["provider_country"] == "US"
    llama = prices["together-meta-llama-llama-3.3-70b-instruct"]
    assert llama["weights"] == "open" and llama["catalog_model"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert llama["input_usd_per_mtok"] == pytest.approx(0.88)
    assert len(prices) == 2  # embedding ignored; unknown provider and unknown third-party model reported
    assert "nowhere" in out and "open or closed unknown" in out
    load_catalog([tmp_path]).api_prices.get("openai-gpt-test-1")


@pytest.mark.parametrize("name, text, expect", [
    ("aws.csv", "", "missing column"),
    ("aws.csv", "instance_name,location,price\np5,us-east-1,1\n", "missing column(s) gpu_count"),
    ("aws.csv", "instance_name,location,price,gpu_count,gpu_name,gpu_memory,spot\np5,us-east-1,abc,8,H100,80,False\n",
     "row 2: price 'abc' is not a number"),
    ("aws.csv", "instance_name,location,price,gpu_count,gpu_name,gpu_memory,spot\np5,us-east-1,-1,8,H100,80,False\n",
     "not a non-negative number"),
    ("aws.csv", "instance_name,location,price,gpu_count,gpu_name,gpu_memory,spot\nx,us-east-1,1,1,NoSuchGPU,1,False\n",
     "no row could be imported"),
    ("nocloud.csv", "instance_name,location,price,gpu_count,gpu_name,gpu_memory,spot\n", "unknown gpuhunt provider"),
    ("prices.json", "{not json", "not valid JSON"),
    ("prices.json", "[1, 2]", "not a litellm"),
    ("prices.json", '{"m": {"litellm_provider": "openai", "input_cost_per_token": "x", "output_cost_per_token": 1}}',
     "is not a non-negative number"),
])
def test_bad_file_one_line_exit_2_nothing_written(tmp_path, capsys, name, text, expect):
    f = tmp_path / name
    f.write_text(text)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "catalog", "import-prices", str(f), "--out", str(out_dir))
    assert code == 2 and expect in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_bad_arguments(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for argv, expect in [
        (("catalog", "import-prices", str(DATA / "aws.csv")), "usage: llmplan catalog import-prices"),
        (("catalog", "import-prices", str(DATA / "aws.csv"), "--out", str(tmp_path / "file")), "not a directory"),
        (("catalog", "import-prices", str(tmp_path / "nope.csv"), "--out", str(tmp_path)), "cannot read"),
        (("catalog", "import-prices", str(tmp_path / "file"), "--out", str(tmp_path)), "--format"),
        (("catalog", "import-prices", str(DATA / "aws.csv"), "--out", str(tmp_path), "--format", "xls"),
         "unknown format"),
        (("catalog", "import-prices", str(DATA / "aws.csv"), "--out", str(tmp_path), "--as-of", "2026-13-45"),
         "as_of"),
        (("catalog", "gpus", "extra"), "only import-prices takes a FILE"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and expect in err, (argv, err)


def test_provider_from_option_and_unknown_location(tmp_path, capsys):
    f = tmp_path / "export.csv"
    shutil.copy(DATA / "aws.csv", f)
    code, _, err = run(capsys, "catalog", "import-prices", str(f), "--out", str(tmp_path / "o"), "--provider", "aws")
    assert code == 0, err
    assert (tmp_path / "o" / "cloud_offers.yaml").is_file()


def test_providers_table_gives_jurisdiction_and_region_country(cat):
    aws = cat.providers.get("aws")
    assert aws.country == "US" and aws.country_of("eu-central-1") == "DE" and aws.country_of("us-west-2") == "US"
    assert aws.country_of("xx-nowhere-1") is None
    assert cat.providers.get("gcp").country_of("europe-west4-a") == "NL"  # prefix key
    for p in cat.providers:
        assert len(p.country) == 2 and p.source.startswith("https://"), p.id
