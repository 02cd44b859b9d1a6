"""The attacker's findings of issue 14, measured against a real `llmplan serve` on loopback:
`python benchmarks/hardening.py`. Starts the server (SQLite in a temporary directory, default
budgets), replays each finding over HTTP and prints what it answers and how long it takes; the
planner at the largest allowed rate is also run in a separate process for its CPU time and peak
memory. The figures in docs/reliability.md come from this script."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from served import served

REPO = Path(__file__).resolve().parents[1]
ASSISTANT = (REPO / "examples" / "internal-assistant.yaml").read_text()


def timed(f, *a, **k):
    t0 = time.perf_counter()
    r = f(*a, **k)
    return r, time.perf_counter() - t0


def planner_cost(per_day: float) -> str:
    """CPU seconds and peak RSS of the planner on the internal-assistant example at `per_day`, in a fresh process."""
    code = (
        "import sys, time, resource, yaml; from llmplan.catalog import load_catalog; "
        "from llmplan.planner.scenario import parse_scenario; from llmplan.planner.report import run; "
        "d = yaml.safe_load(open(sys.argv[1])); d['workload']['requests_per_day'] = float(sys.argv[2]); "
        "s = parse_scenario(d); c = load_catalog(); t = time.process_time(); r = run(s, c); "
        "print(round(time.process_time() - t, 1), round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "
        "r['recommendation']['replicas'])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "examples" / "internal-assistant.yaml"), str(per_day)],
                         capture_output=True, text=True, timeout=900)
    cpu, rss, replicas = out.stdout.split()
    return f"{cpu} s CPU, peak RSS {rss} MiB, {int(replicas):,} replicas"


def overrides(c: httpx.Client, db: str) -> None:
    model = c.get("/api/catalog/models/llama-3.1-8b").json()
    gpu = c.get("/api/catalog/gpus/h100-sxm").json()
    print("1. override ids that are paths")
    r = c.post("/api/overrides/models", json={**model, "id": "/dev/zero", "aliases": []})
    print(f"   POST an override with id /dev/zero: {r.status_code} {r.json()['error'][:90]}")
    from llmplan.store import Store

    Store(db).add_override("models", "/dev/zero", {**model, "id": "/dev/zero", "aliases": []})  # held anyway
    r, t = timed(c.post, "/api/fit", json={"model": "/dev/zero", "gpu": "l40s"})
    print(f"   the same id held in the store, POST /api/fit: {r.status_code} in {t * 1e3:.0f} ms "
          f"({r.json()['error'][:40]}…)")
    print("2. overrides that take the app down")
    before = len(list(Path(tempfile.gettempdir()).glob("llmplan-overrides-*")))
    codes = [c.post("/api/overrides/gpus", json={**gpu, "id": f"big-{i}", "aliases": [], "notes": "x" * 900_000})
             .status_code for i in range(20)]
    after = len(list(Path(tempfile.gettempdir()).glob("llmplan-overrides-*")))
    print(f"   20 GPU overrides with 0.9 MB notes: answered {sorted(set(codes))} ({len(codes)}); GET /api/catalog/gpus "
          f"{c.get('/api/catalog/gpus').status_code}; override folders made {after - before}")
    r = c.post("/api/overrides/gpus", json={**gpu, "memory_gib": 8000.0})
    print(f"   a silent 8,000 GiB h100-sxm: {r.status_code}; with ?replace=true: "
          f"{c.post('/api/overrides/gpus?replace=true', json={**gpu, 'memory_gib': 8000.0}).status_code}, "
          f"health lists {c.get('/api/health').json()['overrides']['in_force']}")
    print(f"   DELETE it: {c.delete('/api/overrides/gpus/h100-sxm').status_code}")


def hang_up(c: httpx.Client, port: int) -> float:
    """Seconds from a client hanging up on a long plan to its worker stopping."""
    body = json.dumps({"yaml": ASSISTANT.replace("60000", "1e8")}).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /api/plan HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                 + f"content-length: {len(body)}\r\n\r\n".encode() + body)
    while c.get("/api/health").json()["computations"]["running"] == 0:
        time.sleep(0.02)
    time.sleep(1)
    sock.close()
    t0 = time.perf_counter()
    while c.get("/api/health").json()["computations"]["running"]:
        time.sleep(0.02)
    return time.perf_counter() - t0


def work(c: httpx.Client, port: int) -> None:
    print("3. unbounded work")
    print(f"   planner, internal-assistant at 1e10 requests/day: {planner_cost(1e10)}")
    big = {"models": {"max_models": 100}, "max_gpus_per_replica": 64, "availability": {"mode": "ha_pair"},
           "workload": {"preset": "chat", "requests_per_day": 1e5}}
    r, t = timed(c.post, "/api/plan", json={"scenario": big})
    print(f"   max_models 100, 64 GPUs per replica, ha_pair: {r.status_code} in {t * 1e3:.0f} ms: "
          f"{r.json()['error'][:70]}…")
    r, t = timed(c.post, "/api/simulate", json={"model": "llama-3.1-8b", "gpu": "h100-sxm", "workload": "chat",
                                                "rate_per_s": 1e6, "num_requests": 20_000_000})
    print(f"   simulate 20 million requests: {r.status_code} in {t * 1e3:.0f} ms: {r.json()['error'][:80]}…")
    print(f"   a 12 s plan whose client hangs up after 1 s: its worker stopped {hang_up(c, port):.2f} s after")
    t0 = time.perf_counter()
    jobs = [c.post("/api/jobs/plan", json={"yaml": ASSISTANT}).json() for _ in range(30)]
    positions = [j.get("queue_position") or 0 for j in jobs]
    lat = []
    while True:
        st = [c.get(j["status_url"]).json()["status"] for j in jobs]
        lat.append(timed(c.get, "/api/scenarios")[1])
        if all(s in ("done", "failed") for s in st):
            break
        time.sleep(0.2)
    print(f"   30 plan jobs at once: queue positions up to {max(positions)}, {st.count('done')} done in "
          f"{time.perf_counter() - t0:.0f} s; GET /api/scenarios meanwhile p50 {np.median(lat) * 1e3:.0f} ms, "
          f"max {max(lat) * 1e3:.0f} ms")
    rid = c.post("/api/plan", json={"yaml": ASSISTANT}).json()["run_id"]
    t1, t2 = (timed(c.get, f"/api/runs/{rid}/report.pdf")[1] for _ in range(2))
    print(f"   PDF report: first GET {t1:.1f} s (rendered), second {t2 * 1e3:.0f} ms (kept with the run)")


def edges(c: httpx.Client, port: int) -> None:
    print("4. DNS rebinding")
    r = c.post("/api/scenarios", json={"yaml": ASSISTANT}, headers={"host": f"rebind.evil.example:{port}",
                                                                     "origin": f"http://rebind.evil.example:{port}"})
    print(f"   POST /api/scenarios with Host rebind.evil.example: {r.status_code}")
    print("6. deep and gigantic documents")
    deep = "workload:\n" + "".join("  " * (i + 1) + "-\n" for i in range(1000))
    for url in ("/api/scenarios/validate", "/api/scenarios/yaml", "/api/scenarios", "/api/jobs/plan"):
        r, t = timed(c.post, url, json={"yaml": deep})
        print(
            f"   YAML 1,000 deep to {url}: {r.status_code} in {t * 1e3:.0f} ms ({(r.json().get('error') or '')[:50]}…)"
        )
    r, t = timed(c.post, "/api/scenarios", json={"yaml": "workload: {requests_per_day: " + "9" * 5000 + "}"})
    print(f"   a 5,000-digit integer: {r.status_code} in {t * 1e3:.0f} ms")
    print("8. capacity at the edges (llama-3.1-8b on one L40S, chat)")
    for rate in (1e6, 1000.0):
        r = c.post("/api/capacity", json={"model": "llama-3.1-8b", "gpu": "l40s", "workload": "chat",
                                          "rate_per_s": rate}).json()
        if r["feasible"]:
            print(
                f"   {rate:g} req/s: {r['replicas']} replicas, peak utilisation "
                f"{max(r['utilisation_by_hour_pct']):.0f} %, check of {r['check']['requests']:,} requests "
                f"({r['check']['basis']})"
            )
        else:
            print(f"   {rate:g} req/s: infeasible: {r['reason'][:110]}…")


def main() -> None:
    with served("llmplan-hardening-") as (c, port, db):
        overrides(c, db)
        work(c, port)
        edges(c, port)
    print(f"(client CPU {resource.getrusage(resource.RUSAGE_SELF).ru_utime:.1f} s)")


if __name__ == "__main__":
    main()
