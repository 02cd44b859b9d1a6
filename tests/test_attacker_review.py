"""Web and API hardening, round three: each finding of the attacker review
(/work/shared/reviews/attacker.md, run on the round-two code), reproduced over HTTP against SQLite
and a real PostgreSQL, and now refused or right. docs/reliability.md ("Round three") lists them
with the figures before and after."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from llmplan.web.app import create_app

from .test_hardening import BASE, SMALL, client, database, pg  # noqa: F401 (fixtures: SQLite and PostgreSQL)

# ------------------------------------------------------------------ 4. YAML tags

@pytest.mark.parametrize("tag, shown", [("!!python/object/apply:os.system ['id']", "!!python/object/apply:os.system"),
                                        ("!!python/name:os.system ''", "!!python/name:os.system"),
                                        ("!foo bar", "!foo"), ("!!binary aGk=", "!!binary"), ("!!set {a, b}", "!!set"),
                                        ("!!str llama", "!!str"), ("!<tag:evil.example,2026:x> y", "tag:evil")])
def test_yaml_tags_are_refused_naming_the_tag(client, tag, shown):
    before = client.get("/api/scenarios").json()
    text = f"name: t\nworkload: {{preset: chat, requests_per_day: 1000}}\nmodels: [llama-3.1-8b]\nnotes: {tag}\n"
    for url in ("/api/scenarios", "/api/scenarios/yaml", "/api/jobs/plan", "/api/plan"):
        r = client.post(url, json={"yaml": text})
        assert r.status_code == 400 and "YAML tag" in r.json()["error"] and shown in r.json()["error"], (url, r.text)
    r = client.post("/api/scenarios/validate", json={"yaml": text}).json()
    assert not r["ok"] and shown in r["error"]
    assert client.get("/api/scenarios").json() == before


# ------------------------------------------------------------------ 7. cross-site reads (Fetch Metadata)

BROWSER = {
    "sec-fetch-mode": "cors",
    "sec-fetch-dest": "empty",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131",
}


def test_cross_site_reads_are_refused_by_fetch_metadata(client):
    sid = client.post("/api/scenarios", json={"scenario": SMALL}).json()["id"]
    run = client.post("/api/plan", json={"scenario": SMALL}).json()["run_id"]
    reads = ["/api/scenarios", f"/api/scenarios/{sid}", "/api/runs", f"/api/runs/{run}", f"/api/runs/{run}/report.json",
             "/api/overrides", "/api/catalog/gpus", "/api/health"]
    for url in reads:
        for site in ("cross-site", "same-site"):
            r = client.get(url, headers={**BROWSER, "sec-fetch-site": site})
            assert r.status_code == 403 and "Sec-Fetch-Site" in r.json()["error"], (url, site, r.status_code)
            assert r.headers["content-security-policy"]
            r = client.get(url, headers={**BROWSER, "sec-fetch-mode": "no-cors", "sec-fetch-dest": "script",
                                         "sec-fetch-site": site})
            assert r.status_code == 403, (url, site)
        for site in ("same-origin", "none"):
            assert client.get(url, headers={**BROWSER, "sec-fetch-site": site}).status_code == 200, (url, site)
        assert client.get(url).status_code == 200  # curl, scripts: no Fetch Metadata
    # a link to a report followed from another site opens it (a top-level navigation nobody else reads) ...
    nav = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    assert client.get(f"/api/runs/{run}/report.html", headers=nav).status_code == 200
    # ... but not inside a frame or an object on that site, and never as a write
    for dest in ("iframe", "object", "embed"):
        assert client.get(f"/api/runs/{run}/report.html", headers={**nav, "sec-fetch-dest": dest}).status_code == 403
    r = client.post("/api/scenarios", json={"scenario": SMALL}, headers={**nav, "origin": "http://localhost"})
    assert r.status_code == 403


# ------------------------------------------------------------------ 6. slow clients (slowloris)

@pytest.fixture
def served(database, monkeypatch):
    """A real uvicorn server (the protocol `llmplan serve` runs) with a 1 s header timeout."""
    import socket
    import threading
    import time

    import uvicorn

    from llmplan.web.server import TimedH11Protocol

    monkeypatch.setenv("LLMPLAN_HEADER_TIMEOUT_S", "1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(database), host="127.0.0.1", port=port, http=TimedH11Protocol,
                                           log_level="error", lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    t.join(10)


def _drip(port, parts, gap_s):
    """Send `parts` with `gap_s` between them; return what the server answered before closing (or
    None if it was still waiting 8 s after the last part: the connection was held)."""
    import socket
    import time

    s = socket.create_connection(("127.0.0.1", port))
    got = b""
    try:
        for p in parts:
            try:
                s.sendall(p)
            except OSError:
                break  # the server closed it
            time.sleep(gap_s)
        s.settimeout(8)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk
    except TimeoutError:
        return None
    finally:
        s.close()


def test_slow_headers_and_stalled_bodies_are_cut_off(served):
    head = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 20
    # slowloris: a header byte every 0.3 s would hold the connection for ever; the headers are due in 1 s
    got = _drip(served, [head[i:i + 1] for i in range(len(head))], 0.3)
    assert got is not None and got.startswith(b"HTTP/1.1 408") and b'"error"' in got, got
    assert b"content-security-policy" in got.lower()
    # a connection that sends nothing at all
    got = _drip(served, [], 0)
    assert got is not None and got.startswith(b"HTTP/1.1 408"), got
    # a body that stops arriving: the connection is closed, nothing stored
    body = b'{"scenario": {"name": "stalled"}}'
    post = (b"POST /api/scenarios HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
    got = _drip(served, [post, body[:10], b"", b"", b""], 0.6)  # then nothing for 1.8 s
    assert got is not None and b"201" not in got
    # a client within the limits is served, a kept-alive connection too
    got = _drip(served, [b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n",
                         b"GET /api/scenarios HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"], 0.3)
    assert got is not None and got.count(b"HTTP/1.1 200") == 2, got
    import httpx

    assert httpx.get(f"http://127.0.0.1:{served}/api/scenarios").json() == []


# ------------------------------------------------------------------ 5. one text rule for names

def _entry(client, kind, eid, **changes):
    e = client.get(f"/api/catalog/{kind}/{eid}").json()
    e.update(changes)
    return e


@pytest.mark.parametrize(
    "bad, why",
    [
        ("a\u202eb", "U+202E"),
        ("\u2066x\u2069", "U+2066"),
        ("pay\u200broll", "U+200B"),
        ("a\tb", "U+0009"),
        ("line\u2028two", "U+2028"),
        ("\u0430dmin", "Cyrillic and Latin"),
        ("pay\ue000", "private-use"),
        ("\u03bfpen", "Greek and Latin"),
    ],
)
def test_names_with_invisible_or_mixed_script_characters_are_refused(client, bad, why):
    for url, body in (("/api/scenarios", {"scenario": {**SMALL, "name": bad}}),
                      ("/api/scenarios", {"scenario": SMALL, "name": bad}),
                      ("/api/scenarios", {"yaml": f"name: {bad!r}\nmodels: [llama-3.1-8b]\n".replace("'", '"')
                                          if "\\" not in repr(bad) else 'name: "' + bad.encode("unicode_escape")
                                          .decode() + '"\nmodels: [llama-3.1-8b]\n'}),
                      ("/api/plan", {"scenario": {**SMALL, "name": bad}}),  # a run's name is its scenario's
                      ("/api/jobs/plan", {"scenario": {**SMALL, "name": bad}})):
        r = client.post(url, json=body)
        assert r.status_code in (400, 422) and why in r.json()["error"], (url, body, r.status_code, r.text[:300])
    assert client.get("/api/scenarios").json() == [] and client.get("/api/runs").json() == []
    for field in ("id", "aliases", "name"):
        value = [bad] if field == "aliases" else bad
        r = client.post("/api/overrides/models", json=_entry(client, "models", "llama-3.1-8b",
                                                             **{"id": "my-llama", "aliases": [], field: value}))
        assert r.status_code == 400 and (why in r.json()["error"] or "not a catalog name" in r.json()["error"]), \
            (field, r.text[:300])
    assert client.get("/api/overrides").json() == []


def test_names_are_compared_nfkc_casefolded(client):
    first = client.post("/api/scenarios", json={"scenario": {**SMALL, "name": "Budget 2027"}})
    assert first.status_code == 201
    assert (
        client.post("/api/scenarios", json={"scenario": {**SMALL, "name": "Budget 2027"}}).status_code == 201
    )  # a twin
    for lookalike in ("ＢＵＤＧＥＴ ２０２７", "budget 2027", "BUDGET 2027"):
        r = client.post("/api/scenarios", json={"scenario": {**SMALL, "name": lookalike}})
        assert r.status_code == 409 and "Budget 2027" in r.json()["error"], r.text
        r = client.put(f"/api/scenarios/{first.json()['id'] + 1}", json={"scenario": SMALL, "name": lookalike})
        assert r.status_code == 409
    assert len(client.get("/api/scenarios").json()) == 2
    # catalog names: a full-width or upper-case copy of a built-in name shadows it: refused like any clash
    for eid, aliases in (("ｈ１００ｓｘｍ", []), ("my-gpu", ["Ｈ１００ ＳＸＭ"]), ("my-gpu", ["H100-SXM"])):
        r = client.post("/api/overrides/gpus", json=_entry(client, "gpus", "h100-sxm", id=eid, aliases=aliases))
        assert r.status_code == 409 and "already names" in r.json()["error"], (eid, aliases, r.text)
    # and a look-alike resolves to the entry it looks like, never to another one
    fit = client.post("/api/fit", json={"model": "llama-3.1-8b", "gpu": "Ｈ１００－ＳＸＭ"})
    assert fit.status_code == 200 and fit.json()["gpu"] == "h100-sxm", fit.text[:300]


# ------------------------------------------------------------------ 3. names in the Markdown and HTML reports

def test_names_cannot_become_markup_in_the_reports(client):
    from markdown_it import MarkdownIt

    evil = "[click](https://evil.example) *bold* _em_ ~~gone~~ | cell ![img](https://evil.example/x.png) <b>&amp;"
    run = client.post("/api/plan", json={"scenario": {**SMALL, "name": evil}}).json()["run_id"]
    md = client.get(f"/api/runs/{run}/report.md").text
    title = md.splitlines()[0]
    assert title == ("# Plan: \\[click\\](https://evil.example) \\*bold\\* \\_em\\_ \\~\\~gone\\~\\~ \\| cell "
                     "\\!\\[img\\](https://evil.example/x.png) &lt;b>&amp;amp;"), title
    for renderer in (MarkdownIt("commonmark"), MarkdownIt("commonmark").enable("table").enable("strikethrough")):
        html = renderer.render(md)
        first = html.split("</h1>")[0]
        for tag in ("<a", "<img", "<em", "<strong", "<s>", "<del", "<b>", "<td"):
            assert tag not in first, (tag, first)
        assert evil.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in first  # shown as typed
    page = client.get(f"/api/runs/{run}/report.html").text
    assert 'href="https://evil.example' not in page and 'src="https://evil' not in page
    assert "<h1>[click](https://evil.example) *bold*" in page  # the HTML title: the name as text


# ------------------------------------------------------------------ 2. stored lists are paged and capped

def test_lists_are_paged_newest_runs_first(client):
    ids = [client.post("/api/scenarios", json={"scenario": {**SMALL, "name": f"s{i}"}}).json()["id"] for i in range(5)]
    r = client.get("/api/scenarios", params={"limit": 2, "offset": 1})
    assert r.status_code == 200 and r.headers["x-total-count"] == "5" and [x["id"] for x in r.json()] == ids[1:3]
    assert [x["name"] for x in r.json()] == ["s1", "s2"] and all(x["version"] == 1 for x in r.json())
    assert client.get("/api/scenarios", params={"limit": 1001}).status_code == 422
    assert client.get("/api/scenarios", params={"offset": -1}).status_code == 422
    runs = [client.post(f"/api/scenarios/{i}/runs").json()["run_id"] for i in ids[:3]]
    r = client.get("/api/runs", params={"limit": 2})
    assert r.headers["x-total-count"] == "3" and [x["id"] for x in r.json()] == runs[::-1][:2]  # newest first
    assert r.json()[0]["name"] == "s2" and r.json()[0]["recommendation"]["id"]
    r = client.get("/api/runs", params={"limit": 2, "offset": 2})
    assert [x["id"] for x in r.json()] == [runs[0]]
    r = client.get("/api/runs", params={"scenario_id": ids[1]})
    assert r.headers["x-total-count"] == "1" and [x["id"] for x in r.json()] == [runs[1]]


def test_listing_runs_reads_no_result_or_report(client, database):
    """The list reads the name and summary columns, never the result, reports or scenario blobs."""
    import re

    from sqlalchemy import event

    client.post("/api/plan", json={"scenario": SMALL})
    engine = client.app.state.store.engine
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001
        seen.append(statement.lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get("/api/runs").json()[0]["recommendation"]["tco_usd"] > 0
        assert client.get("/api/scenarios").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    reads = [s for s in seen if s.lstrip().startswith("select")]
    assert reads
    for blob in ("runs.result", "runs.report_html", "runs.report_md", "runs.scenario", "runs.report_pdf",
                 "scenario_versions.body", "scenario_versions.yaml"):
        assert not any(re.search(re.escape(blob) + r"\b", s) for s in reads), (blob, reads)


def test_the_store_caps_runs_and_scenarios_and_runs_can_be_deleted(database, monkeypatch):
    monkeypatch.setenv("LLMPLAN_MAX_RUNS", "2")
    monkeypatch.setenv("LLMPLAN_MAX_SCENARIOS", "2")
    monkeypatch.setenv("LLMPLAN_MAX_VERSIONS", "2")
    c = TestClient(create_app(database), base_url=BASE)
    for _ in range(2):
        assert c.post("/api/scenarios", json={"scenario": SMALL}).status_code == 201
    assert c.put("/api/scenarios/2", json={"scenario": SMALL}).status_code == 200
    r = c.put("/api/scenarios/2", json={"scenario": SMALL})
    assert r.status_code == 409 and "LLMPLAN_MAX_VERSIONS=2" in r.json()["error"]
    assert c.get("/api/scenarios/2").json()["version"] == 2
    r = c.post("/api/scenarios", json={"scenario": SMALL})
    assert r.status_code == 409 and "LLMPLAN_MAX_SCENARIOS=2" in r.json()["error"]
    c.delete("/api/scenarios/1")  # archived scenarios are kept, so they still count
    assert c.post("/api/scenarios", json={"scenario": SMALL}).status_code == 409
    first = c.post("/api/plan", json={"scenario": SMALL}).json()["run_id"]
    c.post("/api/plan", json={"scenario": SMALL})
    for url in ("/api/plan", "/api/jobs/plan"):
        r = c.post(url, json={"scenario": SMALL})
        assert r.status_code == 409 and "LLMPLAN_MAX_RUNS=2" in r.json()["error"] and "DELETE" in r.json()["error"]
    assert c.get("/api/runs").headers["x-total-count"] == "2"
    assert c.delete(f"/api/runs/{first}").status_code == 204
    assert c.get(f"/api/runs/{first}").status_code == 404
    assert c.get(f"/api/runs/{first}/report.md").status_code == 404
    assert c.delete(f"/api/runs/{first}").status_code == 404
    assert c.post("/api/plan", json={"scenario": SMALL}).status_code == 200
    # a job's run can be deleted: the job stays, without it
    c.delete(f"/api/runs/{c.get('/api/runs').json()[0]['id']}")
    from .test_hardening import wait_job

    job = c.post("/api/jobs/plan", json={"scenario": SMALL}).json()
    done = wait_job(c, job["status_url"])
    assert done["status"] == "done"
    assert c.delete(f"/api/runs/{done['run_id']}").status_code == 204
    assert c.get(job["status_url"]).json()["run_id"] is None


def test_migration_fills_run_names_and_summaries(database):
    """A store at 0003 with a run in it: after the upgrade the list shows its name and recommendation."""
    import json as _json

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from llmplan.store import Store
    from llmplan.store import db as dbmod

    eng = dbmod._engine(database)
    cfg = Config()
    cfg.set_main_option("script_location", str(dbmod.MIGRATIONS))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    result = {"recommendation": {"id": "opt-1", "deployment": "on_prem", "tco_usd": 123.0,
                                 "cost_per_million_tokens_usd": 1.5, "details": {"big": "x" * 1000}}}
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO runs (scenario, status, result, catalog_version, llmplan_version, created_at) "
                          "VALUES (:s, 'done', :r, 'c', 'v', CURRENT_TIMESTAMP)"),
                     {"s": _json.dumps({"name": "old run"}), "r": _json.dumps(result)})
    eng.dispose()
    st = Store(database)
    assert st.schema_revision() == "0004"
    page, total = st.list_runs()
    assert total == 1 and page[0]["name"] == "old run"
    assert page[0]["recommendation"] == {"id": "opt-1", "deployment": "on_prem", "tco_usd": 123.0,
                                         "cost_per_million_tokens_usd": 1.5}


# ------------------------------------------------------------------ 8. overrides: one pass, cached

def test_overrides_are_applied_in_one_pass_and_cached(client, monkeypatch):
    from llmplan.web import overrides as ovr

    gpu = client.get("/api/catalog/gpus/h100-sxm").json()
    for i in range(12):
        r = client.post(
            "/api/overrides/gpus", json={**gpu, "id": f"lab-gpu-{i}", "aliases": [], "name": f"Lab GPU {i}"}
        )
        assert r.status_code == 201, r.text
    calls = {"with_entries": 0, "build": 0}
    real_with, real_build = ovr.with_entries, ovr.build

    def counting_with(*a, **k):
        calls["with_entries"] += 1
        return real_with(*a, **k)

    def counting_build(*a, **k):
        calls["build"] += 1
        return real_build(*a, **k)

    monkeypatch.setattr(ovr, "with_entries", counting_with)
    monkeypatch.setattr(ovr, "build", counting_build)
    ovr._build.cache_clear()
    ovr.from_rows.cache_clear()
    client.app.state.ctx._overrides = None
    for _ in range(5):  # several requests: the set is built once (the store's fingerprint did not change) ...
        assert client.get("/api/overrides").status_code == 200
        assert client.post("/api/scenarios/validate", json={"scenario": {**SMALL, "hardware": ["lab-gpu-3"]}}
                           ).json()["ok"]
    assert calls == {"with_entries": 1, "build": 1}, calls  # ... and in one pass: 12 entries, one catalog rebuild
    ov = client.app.state.ctx.overrides()
    assert len(ov.in_force) == 12 and "lab-gpu-11" in ov.catalog.accelerators.entries
    # a worker rebuilds a state once, whatever number of computations it runs
    assert ovr.from_rows(ov.rows) is ovr.from_rows(tuple(tuple(r) for r in ov.rows))
    assert calls["with_entries"] == 1  # the same state: the same cached build
    fit = client.post("/api/fit", json={"model": "llama-3.1-8b", "gpu": "lab-gpu-7"})
    assert fit.status_code == 200 and len(fit.json()["overrides_in_force"]) == 12
    # two stored entries that clash (written before the checks): the later one is left out, named
    ovr._build.cache_clear()
    stored = client.app.state.store.overrides()
    clash = {**stored[0], "entry_id": "lab-gpu-x", "body": {**stored[0]["body"], "id": "lab-gpu-x",
                                                            "aliases": ["lab-gpu-0"]}}
    built = ovr.build([*stored, clash])
    assert len(built.in_force) == 12 and built.not_in_force[0]["id"] == "lab-gpu-x"
    assert "already names" in built.not_in_force[0]["reason"]


# ------------------------------------------------------------------ the new settings: bad values are one clear error

def test_settings_are_checked(monkeypatch):
    from llmplan.errors import LlmplanError
    from llmplan.store import db as dbmod
    from llmplan.web.server import header_timeout_s

    assert header_timeout_s() == 10.0 and header_timeout_s(2.5) == 2.5
    for bad in ("abc", "0", "-1", "1e9"):
        monkeypatch.setenv("LLMPLAN_HEADER_TIMEOUT_S", bad)
        with pytest.raises(LlmplanError, match="LLMPLAN_HEADER_TIMEOUT_S|header timeout"):
            header_timeout_s()
    for bad in ("0", "-5", "ten", "1.5", "99999999999"):
        monkeypatch.setenv("LLMPLAN_MAX_RUNS", bad)
        with pytest.raises(LlmplanError, match="LLMPLAN_MAX_RUNS"):
            dbmod.limit_from_env("LLMPLAN_MAX_RUNS", 10)
    monkeypatch.setenv("LLMPLAN_MAX_RUNS", "25")
    assert dbmod.limit_from_env("LLMPLAN_MAX_RUNS", 10) == 25


def test_serve_refuses_a_bad_header_timeout():
    from typer.testing import CliRunner

    from llmplan.cli import app

    r = CliRunner().invoke(app, ["serve", "--header-timeout", "0"])
    assert r.exit_code == 2 and "header-timeout" in r.output
    r = CliRunner().invoke(app, ["serve", "--max-runs", "0"])
    assert r.exit_code == 2 and "max-runs" in r.output
