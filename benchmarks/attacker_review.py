"""The attacker review's findings of round three, measured against a real `llmplan serve` on
loopback: `python benchmarks/attacker_review.py`. Starts the server (SQLite in a temporary
directory, default settings), replays each finding over HTTP and prints what it answers. Run it
with PYTHONPATH pointing at an older tree to get the "before" column of docs/reliability.md
(requests an older server does not know are answered as it answers them). The CPU time of
refusing deep documents is in benchmarks/hardening.py (finding 6 of round two)."""

from __future__ import annotations

import copy
import json
import socket
import statistics
import sys
import time

import httpx
from served import served

SMALL = {"name": "small", "workload": {"preset": "chat", "requests_per_day": 20000}, "models": ["llama-3.1-8b"],
         "hardware": ["h100-sxm"], "policy": {"deployment": ["on_prem"]}, "alternatives": []}


def p50_ms(f, n: int = 20) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def lists(c: httpx.Client, db: str) -> None:
    print("2. stored lists")
    run = c.post("/api/plan", json={"scenario": SMALL}).json()["run_id"]
    from sqlalchemy import create_engine, text

    eng = create_engine(db)
    with eng.begin() as conn:  # 500 copies of that run, straight into the store
        cols = [r[1] for r in conn.execute(text("PRAGMA table_info(runs)"))]
        keep = [x for x in cols if x not in ("id", "report_pdf")]
        for _ in range(500):
            conn.execute(text(f"INSERT INTO runs ({', '.join(keep)}) SELECT {', '.join(keep)} FROM runs WHERE id = :r"),
                         {"r": run})
    eng.dispose()
    r = c.get("/api/runs")
    print(f"   GET /api/runs with 501 runs: {len(r.json())} items, {len(r.content):,} bytes, "
          f"X-Total-Count {r.headers.get('x-total-count')}, p50 {p50_ms(lambda: c.get('/api/runs'), 10):.0f} ms")
    r = c.get("/api/runs", params={"limit": 20})
    print(f"   GET /api/runs?limit=20: {r.status_code}, {len(r.json())} items, "
          f"p50 {p50_ms(lambda: c.get('/api/runs', params={'limit': 20})):.0f} ms")
    r = c.delete(f"/api/runs/{run}")
    print(f"   DELETE /api/runs/{run}: {r.status_code}")


def markdown(c: httpx.Client) -> None:
    from markdown_it import MarkdownIt

    print("3. names in report.md")
    evil = "[click](https://evil.example) *bold* | ![img](https://evil.example/x.png)"
    rid = c.post("/api/plan", json={"scenario": {**SMALL, "name": evil}}).json()["run_id"]
    html = MarkdownIt("commonmark").render(c.get(f"/api/runs/{rid}/report.md").text).split("</h1>")[0]
    print(f"   scenario name {evil!r}: the rendered title has {html.count('<a ')} link(s), {html.count('<img')} "
          f"image(s), {html.count('<em')} emphasis")


def tags(c: httpx.Client) -> None:
    print("4. YAML tags")
    for tag in ("!!python/object/apply:os.system ['id']", "!!str llama", "!foo bar"):
        r = c.post("/api/scenarios", json={"yaml": f"name: t\nmodels: [llama-3.1-8b]\nnotes: {tag}\n"})
        print(f"   notes: {tag}: {r.status_code} {r.text[:110]}")


def names(c: httpx.Client) -> None:
    print("5. names")
    for name in ("a\u202eb", "pay\u200broll", "\u0430dmin"):
        r = c.post("/api/scenarios", json={"scenario": {**SMALL, "name": name}})
        print(f"   scenario name {name!r}: {r.status_code} {r.text[:100]}")
    c.post("/api/scenarios", json={"scenario": {**SMALL, "name": "Budget"}})
    r = c.post("/api/scenarios", json={"scenario": {**SMALL, "name": "ＢＵＤＧＥＴ"}})
    print(f"   'ＢＵＤＧＥＴ' after 'Budget': {r.status_code} {r.text[:100]}")
    gpu = c.get("/api/catalog/gpus/h100-sxm").json()
    r = c.post("/api/overrides/gpus", json={**gpu, "id": "ｈ１００ｓｘｍ", "aliases": []})
    print(f"   GPU override 'ｈ１００ｓｘｍ' (full-width h100sxm): {r.status_code} {r.text[:100]}")
    if r.status_code == 201:
        c.delete("/api/overrides/gpus/ｈ１００ｓｘｍ")


def slowloris(port: int, n: int = 50) -> None:
    print(f"6. slow headers: {n} connections sending a header byte every second")
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n")
        s.setblocking(False)
        socks.append(s)
    t0 = time.time()
    open_at = {}
    answers = set()
    while time.time() - t0 < 25:
        time.sleep(1)
        alive = 0
        for s in socks:
            if s.fileno() < 0:
                continue
            try:
                s.sendall(b"X")
                data = s.recv(65536)
                if data == b"":
                    s.close()
                    continue
                answers.add(data.split(b"\r\n", 1)[0].decode())
                s.close()
                continue
            except BlockingIOError:
                alive += 1
            except OSError:
                s.close()
                continue
        open_at[round(time.time() - t0)] = alive
    held = {k: v for k, v in open_at.items() if k in (5, 9, 12, 15, 20, 25)}
    print(f"   connections still held after s: {held}; answers: {sorted(answers) or 'none'}")
    for s in socks:
        s.close()


def cross_site(c: httpx.Client) -> None:
    print("7. cross-site reads")
    for site in ("cross-site", "same-origin"):
        r = c.get(
            "/api/scenarios", headers={"sec-fetch-site": site, "sec-fetch-mode": "cors", "sec-fetch-dest": "empty"}
        )
        print(f"   GET /api/scenarios, Sec-Fetch-Site: {site}: {r.status_code}")


def overrides(c: httpx.Client) -> None:
    print("8. 200 GPU overrides of 8 KB each in force")
    before = p50_ms(lambda: c.post("/api/fit", json={"model": "llama-3.1-8b", "gpu": "h100-sxm"}))
    gpu = c.get("/api/catalog/gpus/h100-sxm").json()
    for i in range(200):
        e = copy.deepcopy(gpu)
        e.update(id=f"lab-gpu-{i}", aliases=[], name=f"Lab GPU {i}")
        e["notes"] = "n" * 8000
        r = c.post("/api/overrides/gpus", json=e)
        if r.status_code != 201:
            print(f"   override {i}: {r.status_code} {r.text[:100]}")
            break
    t0 = time.perf_counter()
    c.post("/api/fit", json={"model": "llama-3.1-8b", "gpu": "lab-gpu-5"})
    first = (time.perf_counter() - t0) * 1e3
    after = p50_ms(lambda: c.post("/api/fit", json={"model": "llama-3.1-8b", "gpu": "lab-gpu-5"}), 40)
    print(f"   POST /api/fit p50: {before:.0f} ms with none; {after:.0f} ms with 200 (first call {first:.0f} ms)")


def main() -> None:
    with served("llmplan-review3-") as (c, port, db):
        lists(c, db)
        markdown(c)
        tags(c)
        names(c)
        cross_site(c)
        slowloris(port)
        overrides(c)
    print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
