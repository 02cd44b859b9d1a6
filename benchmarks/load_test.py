"""Load test of `llmplan serve` on loopback: `python benchmarks/load_test.py`.

Starts the server (one worker per core) in a subprocess on 127.0.0.1 (a fresh SQLite store in a temporary directory),
offers RATE requests/s (open loop: each request is due at its time, latency counted from then, so
queueing shows) to /api/fit and /api/estimate, at most REQUESTS requests and DEADLINE_S seconds, then 20
concurrent plan jobs, and prints
throughput and latency percentiles. Target (issue 8): fit/estimate ≥ 200 requests/s with p99
under 100 ms on a 2-core machine; every plan job finishes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

REQUESTS, RATE, CLIENTS, DEADLINE_S, PLAN_JOBS = 2000, 200.0, 32, 60.0, 20
REPO = Path(__file__).resolve().parents[1]
FIT = {"model": "meta-llama/Llama-3.3-70B-Instruct", "gpu": "h100-sxm", "num_gpus": 4, "context_tokens": 8192}
EST = {**FIT, "input_tokens": 1024, "output_tokens": 256, "concurrency": 8}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hammer(base: str, path: str, body: dict) -> dict:
    lat: list[float] = []
    errors = 0
    t_end = time.perf_counter() + DEADLINE_S

    def one(i: int) -> None:
        nonlocal errors
        due = start + i / RATE  # open loop: request i is due at i / RATE, whatever the server does
        if due > t_end:
            return
        time.sleep(max(0.0, due - time.perf_counter()))
        r = client.post(base + path, json=body)
        lat.append(time.perf_counter() - due)  # latency from when it was due: queueing included
        errors += r.status_code != 200

    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as client:
        for _ in range(50):  # warm-up
            client.post(base + path, json=body)
        start = t0 = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(one, range(REQUESTS)))
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1e3
    return {"path": path, "requests": len(a), "errors": errors, "req_s": len(a) / wall,
            "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def plans(base: str) -> dict:
    y = (REPO / "examples" / "china-ascend.yaml").read_text()
    t0 = time.perf_counter()
    with httpx.Client(timeout=30) as c:
        ids = [c.post(base + "/api/jobs/plan", json={"yaml": y}).json()["job_id"] for _ in range(PLAN_JOBS)]
        done: dict[str, str] = {}
        while len(done) < len(ids) and time.perf_counter() - t0 < 600:
            for j in ids:
                if j not in done:
                    st = c.get(f"{base}/api/jobs/{j}").json()["status"]
                    if st not in ("queued", "running"):
                        done[j] = st
            time.sleep(0.5)
    return {"jobs": PLAN_JOBS, "done": sum(v == "done" for v in done.values()),
            "failed": sum(v == "failed" for v in done.values()), "seconds": time.perf_counter() - t0}


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LLMPLAN_DATABASE": f"sqlite:///{tmp}/store.db"}
        env.pop("LLMPLAN_AUTH_TOKEN", None)
        env.pop("LLMPLAN_AUTH_BASIC", None)
        workers = str(os.cpu_count() or 1)
        srv = subprocess.Popen([sys.executable, "-m", "llmplan.cli", "serve", "--port", str(port), "--workers",
                                workers], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            results = [hammer(base, "/api/fit", FIT), hammer(base, "/api/estimate", EST)]
            p = plans(base)
        finally:
            srv.terminate()
            srv.wait(10)
    ok = True
    for r in results:
        met = r["req_s"] >= 0.98 * RATE and r["p99_ms"] < 100 and r["errors"] == 0  # offered rate held
        ok &= met
        print(f"{r['path']:14} {r['requests']:5d} requests, {r['errors']} errors: {r['req_s']:6.0f} req/s, "
              f"p50 {r['p50_ms']:5.1f} ms, p99 {r['p99_ms']:5.1f} ms  {'target met' if met else 'target NOT met'}")
    print(f"plan jobs: {p['done']}/{p['jobs']} done, {p['failed']} failed, in {p['seconds']:.1f} s")
    ok &= p["done"] == p["jobs"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
