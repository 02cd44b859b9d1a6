"""The REST API and the store, against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from datetime import UTC

from llmplan.store import Store
from llmplan.web.app import create_app

from .pg import postgres_url

REPO = Path(__file__).resolve().parents[1]
BASE = "http://localhost"  # a loopback name: the app refuses Host headers it does not answer to
ASCEND = (REPO / "examples" / "china-ascend.yaml").read_text()
EXAMPLE = (REPO / "src" / "llmplan" / "web" / "static" / "example.yaml").read_text()


@pytest.fixture(scope="module")
def pg():
    with postgres_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("pg")
    # a fresh schema per test: drop what an earlier test made
    from sqlalchemy import create_engine, text

    eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    eng.dispose()
    return url


@pytest.fixture
def client(database):
    return TestClient(create_app(database), base_url=BASE)


def test_store_migrates_on_open(database):
    st = Store(database)
    assert st.schema_revision() == "0004"
    Store(database)  # idempotent


def test_scenario_versions_are_never_overwritten(client):
    s = client.post("/api/scenarios", json={"yaml": ASCEND, "comment": "first"}).json()
    assert s["version"] == 1 and s["name"] == "China-domestic stack on Ascend"
    v2 = client.put(f"/api/scenarios/{s['id']}", json={"yaml": ASCEND.replace("80000", "90000"),
                                                       "comment": "more traffic"}).json()
    assert v2["version"] == 2 and [v["version"] for v in v2["versions"]] == [1, 2]
    assert "requests_per_day: 80000" in client.get(f"/api/scenarios/{s['id']}/versions/1").json()["yaml"]
    diff = client.get(f"/api/scenarios/{s['id']}/diff", params={"a": 1, "b": 2}).text
    assert "-  requests_per_day: 80000" in diff and "+  requests_per_day: 90000" in diff
    yaml_text = client.get(f"/api/scenarios/{s['id']}/versions/2/scenario.yaml").text
    assert yaml_text == ASCEND.replace("80000", "90000")  # the file a CLI user runs
    assert client.delete(f"/api/scenarios/{s['id']}").status_code == 204
    assert client.get("/api/scenarios").json() == []
    assert client.get(f"/api/scenarios/{s['id']}").json()["versions"][-1]["version"] == 2  # archived, kept


def test_plan_runs_are_stored_with_their_catalog_version(client):
    s = client.post("/api/scenarios", json={"yaml": ASCEND}).json()
    r = client.post(f"/api/scenarios/{s['id']}/runs")
    assert r.status_code == 201
    run = r.json()
    assert run["recommendation"]["hardware"] == "ascend-910b"
    stored = client.get(f"/api/runs/{run['run_id']}").json()
    assert stored["status"] == "done" and stored["scenario_id"] == s["id"] and stored["scenario_version"] == 1
    assert stored["catalog_version"] == client.get("/api/health").json()["catalog_version"]
    assert stored["result"]["recommendation"]["id"] == run["recommendation"]["id"]
    html = client.get(f"/api/runs/{run['run_id']}/report.html")
    assert html.status_code == 200 and "<svg" in html.text
    csv = client.get(f"/api/runs/{run['run_id']}/report.csv").text.splitlines()
    assert csv[0].startswith("rank,id,deployment") and csv[1].startswith("1,")
    assert client.get(f"/api/runs/{run['run_id']}/report.json").json()["recommendation"]
    assert client.get(f"/api/runs/{run['run_id']}/report.pdfx").status_code == 404
    pdf = client.get(f"/api/runs/{run['run_id']}/report.pdf")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-" and len(pdf.content) > 10_000
    assert [x["id"] for x in client.get("/api/runs", params={"scenario_id": s["id"]}).json()] == [run["run_id"]]


@pytest.mark.parametrize("body, status, message", [
    ({"yaml": "workload: [1"}, 400, "not valid YAML"),
    ({"yaml": "- a"}, 400, "a scenario is a mapping"),
    ({"scenario": {"hardwre": ["h100-sxm"]}}, 400, "hardwre: unknown field; did you mean 'hardware'?"),
    ({"scenario": {"models": ["Qwen/Qwen3-8"], "workload": {"requests_per_day": 10}}}, 400, "did you mean"),
    ({}, 400, "exactly one of"),
    ({"yaml": 5}, 422, "yaml"),
])
def test_bad_requests_get_json_errors_and_write_nothing(client, body, status, message):
    before = client.get("/api/scenarios").json()
    r = client.post("/api/scenarios", json=body)
    assert r.status_code == status and message in r.json()["error"], r.json()
    assert client.get("/api/scenarios").json() == before


def test_missing_objects_are_404_json(client):
    for url in ("/api/scenarios/999", "/api/runs/999", "/api/catalog/nope", "/api/scenarios/999/versions/1"):
        r = client.get(url)
        assert r.status_code == 404 and "error" in r.json(), url
    s = client.post("/api/scenarios", json={"yaml": ASCEND}).json()
    assert client.get(f"/api/scenarios/{s['id']}/versions/7").status_code == 404


def test_fit_and_catalog(client):
    r = client.post("/api/fit", json={"model": "meta-llama/Llama-3.3-70B-Instruct", "gpu": "h100-sxm", "num_gpus": 4})
    assert r.status_code == 200 and r.json()["fits"] is True
    r = client.post("/api/fit", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxn"})
    assert r.status_code == 400 and "h100-sxm" in r.json()["error"]
    r = client.post("/api/fit", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm", "num_gpus": -1})
    assert r.status_code == 422 and r.json()["error"].startswith("num_gpus")
    # over HTTP a name is a catalog entry, never a path on the server
    for body in ({"model": "/etc/passwd", "gpu": "h100-sxm"}, {"model": "./", "gpu": "h100-sxm"}):
        r = client.post("/api/fit", json=body)
        assert r.status_code == 400 and "unknown model" in r.json()["error"], r.json()
    r = client.post("/api/simulate", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm", "workload": "/etc/hosts",
                                           "rate_per_s": 1})
    assert r.status_code == 400 and "preset" in r.json()["error"]
    gpus = client.get("/api/catalog/gpus").json()
    assert all(g["source"] and g["as_of"] for g in gpus)
    assert client.get("/api/catalog/gpus/H100 SXM5 80GB").json()["id"] == "h100-sxm"


def test_overrides_are_validated_and_versioned(client):
    entry = client.get("/api/catalog/gpus/h100-sxm").json()
    entry["price"] = {**(entry.get("price") or {}), "usd": 20000.0}
    assert client.post("/api/overrides/gpus", json=entry).status_code == 409  # shadowing is explicit
    a = client.post("/api/overrides/gpus?replace=true", json=entry)
    b = client.post("/api/overrides/gpus", json=entry)
    assert a.status_code == 201 and (a.json()["revision"], b.json()["revision"]) == (1, 2)
    assert [o["revision"] for o in client.get("/api/overrides").json()] == [2]
    bad = client.post("/api/overrides/gpus", json={"id": "x"})
    assert bad.status_code == 400 and "gpus entry" in bad.json()["error"]
    # the override is what computations use from now on, and runs say so
    assert client.get("/api/catalog/gpus/h100-sxm").json()["price"]["usd"] == 20000.0
    run = client.post("/api/plan", json={"yaml": ASCEND}).json()
    assert "+overrides-" in client.get(f"/api/runs/{run['run_id']}").json()["catalog_version"]


def test_oversized_body_is_refused(client):
    r = client.post("/api/plan", content=b"x" * (2 * 2**20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()
    before = client.get("/api/scenarios").json()

    def chunks():  # no Content-Length: the body is counted as it streams in
        for _ in range(40):
            yield b"x" * 65536

    r = client.post("/api/scenarios", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()
    assert client.get("/api/scenarios").json() == before


def test_framework_refusals_have_the_same_json_shape(client):
    """Unparseable JSON, unknown routes, wrong methods, repeated query parameters, ids beyond the store."""
    cases = [
        client.post("/api/fit", content=b"{not json", headers={"content-type": "application/json"}),
        client.get("/api/nope"),
        client.put("/api/fit", json={}),
        client.get("/api/runs?scenario_id=1&scenario_id=2"),
        client.get(f"/api/scenarios/{2**31}"),
        client.post("/api/fit", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm", "concurrency": True}),
        client.post("/api/measurements", content=b'{"source": "x", "rows": [{"v": NaN}]}',
                    headers={"content-type": "application/json"}),
    ]
    assert [r.status_code for r in cases] == [422, 404, 405, 400, 422, 422, 422]
    for r in cases:
        body = r.json()
        assert set(body) <= {"error", "field", "details"} and body["error"], body
    assert client.get("/api/measurements").json() == []


def test_simulation_refuses_a_deployment_that_does_not_fit(client):
    r = client.post("/api/simulate", json={"model": "meta-llama/Llama-3.1-405B", "gpu": "l40s", "workload": "chat",
                                           "rate_per_s": 1, "num_requests": 10})
    assert r.status_code == 400 and "does not fit" in r.json()["error"]


def test_in_memory_sqlite_store_works_across_threads():
    c = TestClient(create_app("sqlite://"), base_url=BASE)
    assert c.post("/api/scenarios", json={"yaml": ASCEND}).status_code == 201
    assert len(c.get("/api/scenarios").json()) == 1


def test_pages_and_assets_are_local(client):
    page = client.get("/").text
    assert "/static/plan.js" in page
    assert "/static/compare.js" in client.get("/compare").text
    acc = client.get("/accuracy").text
    assert "MdAPE" in acc and acc.count("<svg") >= 2 and "https://" not in acc
    for asset in ("/static/plan.js", "/static/compare.js", "/static/style.css", "/static/example.yaml"):
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert "http://" not in r.text and "https://" not in r.text, asset
    assert "http" not in page.replace("http-equiv", "")
    assert client.get("/openapi.json").json()["info"]["title"] == "llmplan"
    # one layout: every page has the same navigation, its own link marked current, one <main>
    for path in ("/", "/fit", "/compare", "/catalog", "/accuracy"):
        html = client.get(path).text
        assert html.startswith("<!doctype html>") and html.count("<main") == 1 and html.count("<nav>") == 1
        assert f'<a href="{path}" aria-current="page">' in html and html.count("aria-current") == 1


def test_bad_database_url_is_one_line_error():
    from llmplan.errors import LlmplanError

    with pytest.raises(LlmplanError, match="not supported"):
        Store("mysql://x@localhost/db")
    with pytest.raises(LlmplanError, match="cannot open the store"):
        Store("postgresql://nobody@127.0.0.1:1/none")


def test_serving_and_cost_endpoints(client):
    r = client.post("/api/simulate", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm", "workload": "chat",
                                           "rate_per_s": 2, "num_requests": 300})
    assert r.status_code == 200 and r.json()["completed"] > 0
    r = client.post("/api/capacity", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm", "workload": "chat",
                                           "rate_per_s": 5, "num_requests": 500})
    assert r.status_code == 200 and r.json()["replicas"] >= 1
    r = client.post("/api/tco", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm", "workload": "chat",
                                      "requests_per_day": 10000, "draws": 0})
    assert r.status_code == 200 and r.json()["tco_usd"] > 0
    r = client.post("/api/estimate", json={"model": "Qwen/Qwen3-8B", "gpu": "h100-sxm", "input_tokens": 512,
                                           "output_tokens": 128})
    assert r.status_code == 200 and r.json()["tpot_ms"] > 0


def test_validate_and_measurements(client):
    assert client.post("/api/scenarios/validate", json={"yaml": ASCEND}).json()["ok"] is True
    v = client.post("/api/scenarios/validate", json={"yaml": "hardware: [h100-sxn]"}).json()
    assert v["ok"] is False and "h100-sxm" in v["error"]
    assert client.get("/api/scenarios").json() == []
    y = client.post("/api/scenarios/yaml", json={"scenario": {"name": "n", "hardware": ["h100-sxm"]}})
    assert y.status_code == 200 and "hardware:\n- h100-sxm" in y.text
    y = client.post("/api/scenarios/yaml", json={"scenario": {"hardware": ["nope-gpu"]}})
    assert y.status_code == 400 and "unknown accelerator" in y.json()["error"]
    r = client.post("/api/measurements", json={"source": "lab run 2026-11", "rows": [{"gpu": "h100-sxm", "x": 1}]})
    assert r.status_code == 201 and r.json()["stored"] == 1
    assert client.get("/api/measurements").json()[0]["source"] == "lab run 2026-11"
    assert client.post("/api/measurements", json={"rows": []}).status_code == 422


def test_plan_jobs_report_progress_and_their_run(client):
    import time

    r = client.post("/api/jobs/plan", json={"yaml": ASCEND})
    assert r.status_code == 202
    url = r.json()["status_url"]
    seen = set()
    for _ in range(400):
        st = client.get(url).json()
        seen.add(st["progress"])
        if st["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert st["status"] == "done", st
    assert client.get(st["run_url"]).json()["result"]["recommendation"]["hardware"] == "ascend-910b"
    assert seen - {"done"}  # at least one stage was reported while running
    bad = client.post("/api/jobs/plan", json={"yaml": "hardware: [nope-gpu]"})
    assert bad.status_code == 400 and "unknown accelerator" in bad.json()["error"]
    assert client.get("/api/jobs/doesnotexist").status_code == 404


def test_concurrent_saves_lose_no_version(database):
    from concurrent.futures import ThreadPoolExecutor

    st = Store(database)
    sid = st.create_scenario("c", {"name": "c"}, "name: c\n")["id"]

    def save(i: int) -> int:
        return Store.save_version(st, sid, {"name": f"c{i}"}, f"name: c{i}\n", f"save {i}")["version"]

    with ThreadPoolExecutor(8) as pool:
        told = list(pool.map(save, range(40)))
    versions = st.get_scenario(sid)["versions"]
    assert [v["version"] for v in versions] == list(range(1, 42))
    assert {v["comment"] for v in versions[1:]} == {f"save {i}" for i in range(40)}
    # each client is told the number of its own save, not whichever is latest when the answer is read
    assert [st.get_version(sid, n)["body"]["name"] for n in told] == [f"c{i}" for i in range(40)]
    # catalog overrides of one entry are numbered the same way
    with ThreadPoolExecutor(8) as pool:
        revs = list(pool.map(lambda i: st.add_override("gpus", "h100-sxm", {"i": i})["revision"], range(24)))
    assert sorted(revs) == list(range(1, 25))


def test_security_headers_and_csrf(client):
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "unsafe-inline" not in r.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "SAMEORIGIN"
    # a cross-site form post: wrong content type, foreign origin
    r = client.post("/api/scenarios", content=b"yaml=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "JSON" in r.json()["error"]
    r = client.post("/api/scenarios", json={"yaml": ASCEND}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    assert client.get("/api/scenarios").json() == []
    r = client.post("/api/scenarios", json={"yaml": ASCEND}, headers={"origin": BASE})
    assert r.status_code == 201


def test_authentication(database):
    import base64

    from llmplan.web.security import Auth

    c = TestClient(create_app(database, Auth(token="s3cret-token", basic="ana:pw")), base_url=BASE)
    assert c.get("/api/health").status_code == 200  # for load balancers
    r = c.get("/api/scenarios")
    assert r.status_code == 401 and r.json() == {"error": "authentication required"}
    assert c.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/scenarios", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    basic = base64.b64encode(b"ana:pw").decode()
    assert c.get("/", headers={"authorization": f"Basic {basic}"}).status_code == 200
    assert c.get("/", headers={"authorization": "Basic !!!"}).status_code == 401


def test_serve_refuses_a_public_address_without_auth(monkeypatch, capsys):
    from llmplan.cli import main

    monkeypatch.delenv("LLMPLAN_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("LLMPLAN_AUTH_BASIC", raising=False)
    code = main(["serve", "--host", "0.0.0.0", "--database", "sqlite:///:memory:"])
    err = capsys.readouterr().err
    assert code == 2 and "LLMPLAN_AUTH_TOKEN" in err


def test_migration_from_the_previous_schema_keeps_data(database):
    """A store at revision 0001 (before jobs) with data in it upgrades to the current schema."""
    from alembic import command
    from alembic.config import Config

    from llmplan.store import db as dbmod

    eng = dbmod._engine(database)
    cfg = Config()
    cfg.set_main_option("script_location", str(dbmod.MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    from sqlalchemy import text

    with eng.begin() as conn:
        conn.execute(text("INSERT INTO scenarios (id, name, created_at, archived) VALUES (1, 'old', "
                          "CURRENT_TIMESTAMP, false)"))
        conn.execute(text("INSERT INTO scenario_versions (scenario_id, version, body, yaml, created_at) VALUES "
                          "(1, 1, '{\"name\": \"old\"}', 'name: old', CURRENT_TIMESTAMP)"))
    eng.dispose()
    st = Store(database)
    assert st.schema_revision() == "0004"
    assert st.get_scenario(1)["latest"]["yaml"] == "name: old"
    st.add_job("j1")  # the new table works


def test_a_job_whose_owner_stopped_beating_reads_as_failed(database):
    """A job left queued or running by a process that stopped (its heartbeat older than the
    timeout) is failed with the reason when read; one whose owner beats is left alone."""
    from datetime import datetime, timedelta

    st = Store(database)
    st.add_job("interrupted", owner="gone:1:x")
    st.add_job("alive", owner="elsewhere:2:y")
    st.update_job("interrupted", heartbeat_at=datetime.now(UTC) - timedelta(minutes=10))
    c = TestClient(create_app(database), base_url=BASE)  # a new server process on the same store
    job = c.get("/api/jobs/interrupted").json()
    assert job["status"] == "failed" and "stopped" in job["error"] and "heartbeat" in job["error"]
    assert c.get("/api/jobs/alive").json()["status"] == "queued"


def test_a_process_killed_while_saving_leaves_the_store_consistent(database):
    """A writer is SIGKILLed in the middle of a stream of saves: every version that exists is
    whole (its YAML matches its body) and the numbers have no gap."""
    import signal
    import subprocess
    import sys
    import time

    st = Store(database)
    sid = st.create_scenario("k", {"name": "k0"}, "name: k0\n")["id"]
    code = ("import sys; from llmplan.store import Store; st = Store(sys.argv[1]); i = 0\n"
            "while True:\n"
            "    i += 1; st.save_version(int(sys.argv[2]), {'name': f'k{i}', 'pad': 'x' * 20000}, "
            "f'name: k{i}\\n', f'save {i}')\n")
    p = subprocess.Popen([sys.executable, "-c", code, database, str(sid)])
    deadline = time.time() + 30
    while time.time() < deadline and len(Store(database).get_scenario(sid)["versions"]) < 20:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    st = Store(database)
    versions = st.get_scenario(sid)["versions"]
    assert len(versions) >= 20
    assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    for v in versions[1:]:
        full = st.get_version(sid, v["version"])
        assert full["yaml"] == f"name: {full['body']['name']}\n" and full["comment"] == f"save {v['version'] - 1}"
    st.save_version(sid, {"name": "after"}, "name: after\n")  # and it still takes writes


def test_no_secrets_in_logs(tmp_path):
    """`llmplan serve` with a token and a basic-auth password, asked with right and wrong
    credentials, and a database URL with a password it cannot reach: neither secret is printed."""
    import base64
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LLMPLAN_AUTH_TOKEN": "tok-0f9a8b7c6d", "LLMPLAN_AUTH_BASIC": "ana:pw-5e4d3c2b"}
    p = subprocess.Popen([sys.executable, "-m", "llmplan.cli", "serve", "--port", str(port), "--database",
                          f"sqlite:///{tmp_path / 's.db'}", "--log-level", "debug"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(base + "/api/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        basic = base64.b64encode(b"ana:pw-5e4d3c2b").decode()
        assert httpx.get(base + "/api/scenarios", headers={"authorization": "Bearer tok-0f9a8b7c6d"}).status_code == 200
        assert httpx.get(base + "/api/scenarios", headers={"authorization": f"Basic {basic}"}).status_code == 200
        assert httpx.get(base + "/api/scenarios", headers={"authorization": "Bearer tok-wrong"}).status_code == 401
        assert httpx.post(base + "/api/fit", json={"model": "x", "gpu": "y"},
                          headers={"authorization": "Bearer tok-0f9a8b7c6d"}).status_code == 400
    finally:
        p.terminate()
        out = p.communicate(timeout=20)[0].decode()
    bad_db = subprocess.run([sys.executable, "-m", "llmplan.cli", "serve", "--database",
                             "postgresql://u:db-pw-9z8y7x@127.0.0.1:1/x"], capture_output=True, text=True, timeout=60)
    assert bad_db.returncode == 2 and "cannot open the store" in bad_db.stderr
    logs = out + bad_db.stdout + bad_db.stderr
    for secret in ("tok-0f9a8b7c6d", "pw-5e4d3c2b", basic, "db-pw-9z8y7x"):
        assert secret not in logs


def test_concurrent_saves_from_processes_lose_no_version(database, tmp_path):
    """Three processes save 15 versions each of one scenario at once: 45 new versions, no gap,
    and every number a process was given holds that process's body."""
    import subprocess
    import sys

    st = Store(database)
    sid = st.create_scenario("p", {"name": "p"}, "name: p\n")["id"]
    code = ("import sys; from llmplan.store import Store; st = Store(sys.argv[1]); me = sys.argv[3]\n"
            "for i in range(15):\n"
            "    v = st.save_version(int(sys.argv[2]), {'name': f'{me}-{i}'}, f'name: {me}-{i}\\n')\n"
            "    print(v['version'], f'{me}-{i}', flush=True)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, database, str(sid), f"w{k}"], stdout=subprocess.PIPE,
                              text=True) for k in range(3)]
    told = {}
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        told.update(dict((int(n), name) for n, name in (line.split() for line in out.splitlines())))
    versions = st.get_scenario(sid)["versions"]
    assert [v["version"] for v in versions] == list(range(1, 47)) and len(told) == 45
    assert all(st.get_version(sid, n)["body"]["name"] == name for n, name in told.items())


def test_background_job_failures_are_logged_not_swallowed(database, caplog):
    """A plan job that fails with a bug (not a user error) is logged with its traceback; the job and the
    run say "internal error" without the details."""
    import logging
    from concurrent.futures import Future

    from llmplan.store.db import Store
    from llmplan.web.jobs import JobRunner

    store = Store(database)
    runner = JobRunner(store, pool=None)  # the pool is not used by _finish
    store.add_job("j1", runner.owner)
    fut: Future = Future()
    try:
        raise ZeroDivisionError("boom in the planner")
    except ZeroDivisionError as exc:
        fut.set_exception(exc)
    saved = []
    with caplog.at_level(logging.ERROR, logger="llmplan.web"):
        runner._finish("j1", fut, {"name": "x"}, "tag", {}, lambda *a, **k: saved.append((a, k)), 0.1)
    rec = next(r for r in caplog.records if "plan job j1 failed" in r.getMessage())
    assert rec.exc_info and rec.exc_info[0] is ZeroDivisionError and "boom in the planner" in caplog.text
    job = store.get_job("j1")
    assert job["status"] == "failed" and job["error"] == "internal error: ZeroDivisionError"
    assert saved[0][1]["error"] == "internal error: ZeroDivisionError"


def test_explain_endpoint_answers_from_the_run(client):
    import yaml

    doc = yaml.safe_load(EXAMPLE)
    doc["workload"]["slo"]["ttft_p95_ms"] = 1  # nothing meets a 1 ms TTFT: every option excluded
    r = client.post("/api/plan", json={"scenario": doc})
    assert r.status_code == 200 and r.json()["recommendation"] is None
    run = r.json()
    assert run["why_none_detail"]["decided_by"] == "latency"
    option = next(x for x in run["rejected"] if x["reasons"][0].startswith("latency"))["option"]
    e = client.get(f"/api/runs/{run['run_id']}/explain", params={"option": option}).json()
    assert e["status"] == "rejected" and e["reasons"][0].startswith("latency")
    bad = client.get(f"/api/runs/{run['run_id']}/explain", params={"option": "no-such-option"})
    assert bad.status_code == 400 and "no option 'no-such-option'" in bad.json()["error"]
    html = client.get(f"/api/runs/{run['run_id']}/report.html?download=true")
    assert "attachment" in html.headers["content-disposition"] and "window.vegaEmbed" in html.text


def test_request_errors_say_how_to_fix_them(client):
    r = client.post("/api/fit", json={"model": "llama-3.1-8b", "gpu": "l40s", "contxt_tokens": 100})
    assert r.status_code == 422 and "did you mean 'context_tokens'" in r.json()["error"]
    r = client.post("/api/fit", content=b'{"model": "llama-3.1-8b", "gpu": "l40s",}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"].startswith("the body is not valid JSON: ") and "character 40" in r.json()["error"]
    r = client.post("/api/estimate", json={"model": "llama-3.1-8b", "gpu": "l40s", "input_tokens": 10,
                                           "output_tokens": 5, "concurrency": 3, "request_rate": 1})
    assert r.status_code == 422 and r.json()["error"].startswith("give concurrency")


@pytest.mark.parametrize("url", ["/api/runs?offset=0.0", "/api/runs?limit=2.5", "/api/scenarios?offset=%201",
                                 "/api/runs?scenario_id=1.0", "/api/runs/1.0", "/api/scenarios?limit=%EF%BC%91",
                                 "/api/scenarios?archived=1", "/api/scenarios?archived=yes"])
def test_whole_numbers_in_urls_are_digits_only(client, url):
    """The fuzzer's find: pydantic's lax int parsing took offset=0.0 (and ' 1', a full-width digit) and answered
    200; a number in a URL is now digits only, a flag true or false, else a 422 with a JSON body."""
    r = client.get(url)
    assert r.status_code == 422, (url, r.status_code, r.text)
    assert client.get("/api/runs?offset=0&limit=5").status_code == 200
    assert client.get("/api/scenarios?archived=true").status_code == 200


@pytest.mark.parametrize("field, value", [("thinking_tokens", -1), ("thinking_tokens", 0), ("input_tokens", -1),
                                          ("output_tokens", 2 ** 64), ("days_per_year", 5e-324),
                                          ("thinking_off", "yes")])
def test_token_counts_and_days_are_bounded_before_any_work(client, field, value):
    """Attacker review: unbounded token counts reached Lengths deep in the planner (500, and a stored scenario
    that could never run); a vanishing days_per_year made the cost per token infinite (500 after a saved run)."""
    before = client.get("/api/runs").json()
    body = {"scenario": {"workload": {"requests_per_day": 20000, field: value},
                         "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["h100-sxm"]}}
    r = client.post("/api/plan", json=body)
    assert 400 <= r.status_code < 500 and field in r.json()["error"], (r.status_code, r.text)
    assert client.post("/api/scenarios/validate", json=body).json()["ok"] is False
    assert client.get("/api/runs").json() == before


def test_the_api_takes_an_answer_start_slo(client):
    """workload.slo.answer_start_p95_ms: a positive time is taken (validated, planned, and each option carries
    answer_start_p95_ms, here the TTFT: Llama does not think); 0 or a negative one is a 4xx naming the field,
    before any work."""
    body = {"scenario": {"workload": {"requests_per_day": 20000, "slo": {"answer_start_p95_ms": 0}},
                         "models": ["meta-llama/Llama-3.1-8B-Instruct"], "hardware": ["h100-sxm"],
                         "alternatives": []}}
    before = client.get("/api/runs").json()
    for bad in (0, -5):
        body["scenario"]["workload"]["slo"]["answer_start_p95_ms"] = bad
        r = client.post("/api/plan", json=body)
        assert 400 <= r.status_code < 500 and "answer_start_p95_ms" in r.json()["error"], (r.status_code, r.text)
        assert client.post("/api/scenarios/validate", json=body).json()["ok"] is False
    assert client.get("/api/runs").json() == before
    body["scenario"]["workload"]["slo"]["answer_start_p95_ms"] = 4000
    assert client.post("/api/scenarios/validate", json=body).json()["ok"] is True
    r = client.post("/api/plan", json=body)
    assert r.status_code == 200, r.text
    rec = r.json()["recommendation"]
    assert rec["answer_start_p95_ms"] == rec["ttft_p95_ms"]
    assert rec["details"]["simulated"]["slo"]["answer_start_p95_ms"]["limit"] == pytest.approx(3600)
