"""Plan jobs: kept in the store, run in the budgeted pool (web/compute.py), owned by the server
process that took them.

The owner stamps a heartbeat on its unfinished jobs every `HEARTBEAT_S` seconds (and on every
change). A job is failed for want of an owner only when that heartbeat is older than
`stale_s` (LLMPLAN_JOB_STALE_S, 30 s by default): another server process starting on the same
store, or one of `--workers` being respawned, leaves the jobs of live processes alone. While a
job waits for a worker its queue position is kept in the store, so any process answers it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import LlmplanError
from ..store.db import Store
from .compute import Pool

log = logging.getLogger("llmplan.web")

HEARTBEAT_S = 5.0
STALE_S = 30.0


def stale_seconds() -> float:
    try:
        return float(os.environ.get("LLMPLAN_JOB_STALE_S", STALE_S))
    except ValueError:
        raise LlmplanError(f"LLMPLAN_JOB_STALE_S={os.environ['LLMPLAN_JOB_STALE_S']!r} is not a number") from None


class JobRunner:
    def __init__(self, store: Store, pool: Pool, stale_s: float | None = None):
        self.store, self.pool = store, pool
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stale_s = stale_seconds() if stale_s is None else stale_s
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._beating = False
        store.fail_stale_jobs(self.stale_s)

    def submit(self, scenario: Any, doc: dict[str, Any], rows: tuple, tag: str, extra: dict[str, Any],
               save: Callable[..., int]) -> dict[str, Any]:
        """Queue a plan; `save(doc, status, tag, seconds, **fields)` stores its run."""
        jid = uuid.uuid4().hex[:12]
        self.store.add_job(jid, self.owner)
        with self._lock:
            self._pending.add(jid)
        self._beat()
        t0 = time.perf_counter()

        def on_event(kind: str, value: Any) -> None:
            if kind == "position":
                self.store.update_job(jid, only_status="queued", queue_position=value,
                                      progress=f"queued: {value - 1} ahead")
            elif kind == "start":
                self.store.update_job(jid, status="running", progress="started")
            elif kind == "progress":
                self.store.update_job(jid, progress=value)

        def finish(future) -> None:
            try:
                self._finish(jid, future, doc, tag, extra, save, time.perf_counter() - t0)
            except Exception:  # noqa: BLE001 - a callback's exception would vanish: log it
                log.exception("plan job %s: its result could not be stored", jid)
            finally:
                with self._lock:
                    self._pending.discard(jid)

        try:
            ticket = self.pool.submit("plan", (scenario, rows), on_event=on_event)
        except LlmplanError as exc:  # the queue is full: the job never existed for the client
            with self._lock:
                self._pending.discard(jid)
            self.store.update_job(jid, status="failed", progress="failed", error=str(exc))
            raise
        ticket.future.add_done_callback(finish)
        job = self.store.get_job(jid)
        out = {"job_id": jid, "status_url": f"/api/jobs/{jid}", "status": job["status"]}
        if job["status"] == "queued":
            out["queue_position"] = job["queue_position"]
        return out

    def _finish(self, jid: str, future, doc, tag, extra, save, seconds: float) -> None:
        exc = future.exception()
        if exc is None:
            data, html, md = future.result()
            rid = save(doc, "done", tag, seconds, result={**data, **extra}, report_html=html, report_md=md)
            self.store.update_job(jid, status="done", progress="done", run_id=rid)
            return
        error = str(exc) if isinstance(exc, LlmplanError) else f"internal error: {exc.__class__.__name__}"
        if isinstance(exc, LlmplanError):
            log.info("plan job %s failed: %s", jid, error)
        else:
            log.error("plan job %s failed", jid, exc_info=exc)
        try:
            save(doc, "failed", tag, seconds, error=error)
        finally:
            self.store.update_job(jid, status="failed", progress="failed", error=error)

    def _beat(self) -> None:
        """Start the heartbeat thread unless it runs; it stops when this process has no job left."""
        with self._lock:
            if self._beating:
                return
            self._beating = True
        threading.Thread(target=self._heartbeats, name="llmplan-job-heartbeat", daemon=True).start()

    def _heartbeats(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self._lock:
                if not self._pending:
                    self._beating = False
                    return
            try:
                self.store.heartbeat(self.owner)
            except Exception:  # noqa: BLE001 - a store hiccup: the next beat retries
                log.warning("job heartbeat failed; retrying in %s s", HEARTBEAT_S, exc_info=True)

    def status(self, jid: str) -> dict[str, Any]:
        """The job as the API shows it; one whose owner stopped beating is failed first."""
        import datetime as dt

        self.store.fail_stale_jobs(self.stale_s, jid)
        job = self.store.get_job(jid)
        end = job["updated_at"] if job["status"] in ("done", "failed") else None

        def aware(t):
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)

        start = aware(job["created_at"])
        out = {k: job[k] for k in ("id", "status", "progress", "run_id", "error")}
        out["seconds"] = round(((aware(end) if end else dt.datetime.now(dt.UTC)) - start).total_seconds(), 2)
        if job["status"] == "queued":
            out["queue_position"] = job["queue_position"]
        if job["run_id"] is not None:
            out["run_url"] = f"/api/runs/{job['run_id']}"
            out["report_url"] = f"/api/runs/{job['run_id']}/report.html"
        return out

