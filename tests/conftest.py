from __future__ import annotations

from pathlib import Path

import pytest

from llmplan.catalog import Catalog, load_catalog

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "data" / "bench"  # the development measurements, in the repository (data/bench/README.md)


def dev_perf_files() -> list[Path]:
    """The performance measurements the shipped calibration is fitted on: every data/bench/perf_*.csv
    but a superseded version (perf_dev.csv, kept for its recorded hash, beside perf_dev_v2.csv)."""
    from llmplan.perf.cases import bench_files

    return bench_files([str(BENCH / "perf_*.csv")])[0]


@pytest.fixture(scope="session")
def cat() -> Catalog:
    return load_catalog()


@pytest.fixture(autouse=True)
def _no_user_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the bundled catalog only, whatever the developer's environment says."""
    monkeypatch.delenv("LLMPLAN_CATALOG", raising=False)
