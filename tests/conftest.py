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


# The leave-one-source-out refit (tests/loso_refit.py) is minutes of CPU: when its test is selected it starts in
# a second process as the session begins, and its test moves to the end, so the rest of the suite runs meanwhile.
LOSO_TEST = "test_leave_one_source_out_holds_the_documented_figures"
_LOSO_KEY = pytest.StashKey[tuple]()


@pytest.hookimpl(trylast=True)  # after -k, -m, --deselect and --lf have chosen the tests that run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    import os
    import subprocess
    import sys
    import tempfile

    loso = [it for it in items if it.name == LOSO_TEST]
    if not loso or config.option.collectonly:
        return
    items[:] = [it for it in items if it.name != LOSO_TEST] + loso
    out = Path(tempfile.mkdtemp(prefix="llmplan-loso-"))
    log = open(out / "stderr.txt", "wb")  # noqa: SIM115 (closed in pytest_unconfigure)
    env = {k: v for k, v in os.environ.items() if k != "LLMPLAN_CATALOG"}  # the bundled catalog, as in the tests
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("loso_refit.py")), str(out / "rows.json")],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    config.stash[_LOSO_KEY] = (proc, out, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    started = config.stash.get(_LOSO_KEY, None)
    if started is not None:
        import shutil

        proc, out, log = started
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture()
def loso_rows(request: pytest.FixtureRequest) -> list[dict]:
    """The leave-one-source-out rows of the background refit (waits for it; 30 min at most)."""
    import json
    import subprocess

    started = request.config.stash.get(_LOSO_KEY, None)
    assert started is not None, "the refit starts only when its test is collected"
    proc, out, _ = started
    try:
        rc = proc.wait(timeout=1800)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the leave-one-source-out refit ran past 30 min")
    tail = (out / "stderr.txt").read_text(encoding="utf-8", errors="replace")[-3000:]
    assert rc == 0, f"tests/loso_refit.py failed (exit {rc}):\n{tail}"
    return json.loads((out / "rows.json").read_text(encoding="utf-8"))
