"""`llmplan serve` on a throwaway SQLite store and a free loopback port, for the benchmarks that attack
or load it over HTTP (benchmarks/hardening.py, benchmarks/attacker_review.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(prefix: str) -> Iterator[tuple[httpx.Client, int, str]]:
    """(client, port, database URL) of a running server, its workers warmed up; stopped on exit."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    db = f"sqlite:///{tmp / 'store.db'}"
    server = subprocess.Popen([sys.executable, "-m", "llmplan.cli", "serve", "--port", str(port), "--database", db],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
    try:
        for _ in range(400):
            try:
                c.get("/api/health")
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        c.post("/api/fit", json={"model": "llama-3.1-8b", "gpu": "h100-sxm"})  # workers up
        yield c, port, db
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
