"""Every computation the web app runs (fit, estimate, simulate, capacity, TCO, plans, PDF
reports) runs under a budget, in a bounded pool of worker processes:

- **CPU time**: each computation may use `Budget.cpu_s` seconds of CPU (RLIMIT_CPU in the
  worker; the kernel's SIGXCPU stops it), with a wall-clock backstop of 3 × that + 30 s;
- **memory**: a worker's address space may grow by `Budget.memory_mib` (RLIMIT_AS); past it an
  allocation fails and the computation stops;
- **the client**: a synchronous request whose client goes away is cancelled (taken off the
  queue, or its worker killed and replaced);
- **the pool**: `Budget.workers` processes; at most `Budget.queue` computations wait, each with
  its position (jobs show it); more get 429.

A stopped computation is reported (`BudgetExceeded`: a 4xx that names the budget and the setting
that raises it); requests whose inputs alone imply more work are refused before they start
(web/tasks.py). Workers are fresh interpreters that import the models and the catalog once and
serve many computations; one stopped for its budget or its client is replaced; they end with the
server (a lifeline pipe)."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import LlmplanError

ENV = {"cpu_s": "LLMPLAN_CPU_BUDGET_S", "memory_mib": "LLMPLAN_MEMORY_BUDGET_MIB",
       "workers": "LLMPLAN_COMPUTE_WORKERS", "queue": "LLMPLAN_QUEUE", "max_search": "LLMPLAN_MAX_SEARCH"}
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # one core per computation
WORKER_IDLE_S = 120.0


@dataclass(frozen=True)
class Budget:
    cpu_s: float = 120.0  # CPU seconds per computation
    memory_mib: int = 2048  # address space a computation may add to its worker
    workers: int = 0  # worker processes (0: one per core)
    queue: int = 64  # computations that may wait for a worker
    max_search: int = 20_000  # planner options (model × format × accelerator × engine × TP) per plan

    @classmethod
    def from_env(cls, **given: Any) -> Budget:
        """Settings from the arguments, else from LLMPLAN_* variables, else the defaults."""
        out = cls()
        for name, var in ENV.items():
            v = given.get(name)
            if v is None and os.environ.get(var):
                try:
                    v = type(getattr(out, name))(os.environ[var])
                except ValueError:
                    raise LlmplanError(f"{var}={os.environ[var]!r} is not a number") from None
            if v is not None:
                if v <= 0 and name != "workers" or v < 0:
                    raise LlmplanError(f"{var} must be positive, got {v}")
                out = replace(out, **{name: v})
        return out

    @property
    def pool_size(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)

    def public(self) -> dict[str, Any]:
        return {"cpu_s": self.cpu_s, "memory_mib": self.memory_mib, "workers": self.pool_size, "queue": self.queue,
                "max_search": self.max_search}


class BudgetExceeded(LlmplanError):
    """A computation stopped by its budget (HTTP 400, with the budget named)."""


class Busy(LlmplanError):
    """Every worker busy and the queue full (HTTP 429)."""


class Cancelled(Exception):
    """Cancelled before it finished (its client went away)."""


class WorkerFailed(Exception):
    """The worker process ended without an answer (HTTP 500, with the exit status)."""


@dataclass(eq=False)
class Ticket:
    """One computation: its future, its place in the queue (0 once running) and its events."""

    task: str
    args: tuple
    cpu_s: float
    on_event: Callable[[str, Any], None] | None = None
    future: Future = field(default_factory=Future)
    position: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    seq: int = 0

    def event(self, kind: str, value: Any) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, value)
            except Exception:  # noqa: BLE001 - a reporting failure must not lose the computation
                pass


class Pool:
    """The worker processes and their queue (see the module doc)."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self._queue: deque[Ticket] = deque()
        self._cv = threading.Condition()
        self._slots: list[threading.Thread] = []
        self._workers: dict[int, _Worker] = {}
        self._closed = False
        self._seq = itertools.count(1)
        self._running = 0

    # ------------------------------------------------------------------ clients

    def submit(self, task: str, args: tuple, cpu_s: float | None = None,
               on_event: Callable[[str, Any], None] | None = None) -> Ticket:
        t = Ticket(task, args, cpu_s or self.budget.cpu_s, on_event, seq=next(self._seq))
        with self._cv:
            if len(self._queue) >= self.budget.queue:
                raise Busy(f"{len(self._queue)} computations are already waiting for the "
                           f"{self.budget.pool_size} worker(s); try again in a minute")
            self._queue.append(t)
            self._start()
            self._cv.notify()
            waiting = list(self._queue)
        self._announce(waiting)
        return t

    def cancel(self, t: Ticket) -> None:
        """Take it off the queue, or stop its worker if it runs."""
        t.cancelled.set()
        with self._cv:
            queued = t in self._queue
            if queued:
                self._queue.remove(t)
            waiting = list(self._queue)
        if queued:
            t.future.set_exception(Cancelled())
            self._announce(waiting)

    def waiting(self) -> int:
        with self._cv:
            return len(self._queue)

    def running(self) -> int:
        with self._cv:
            return self._running

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for w in list(self._workers.values()):
            w.kill()

    # ------------------------------------------------------------------ slots

    def _start(self) -> None:
        if self._slots:
            return
        for k, v in zip(THREAD_ENV, ("1", "1", "1"), strict=True):
            os.environ.setdefault(k, v)
        for i in range(self.budget.pool_size):
            th = threading.Thread(target=self._slot, args=(i,), name=f"llmplan-compute-{i}", daemon=True)
            self._slots.append(th)
            th.start()

    @staticmethod
    def _announce(waiting: list[Ticket]) -> None:
        for i, t in enumerate(waiting, 1):
            if t.position != i and t.position != 0:  # 0: started meanwhile
                t.position = i
                t.event("position", i)

    def _next(self, i: int) -> Ticket | None:
        """The next ticket for slot `i`; a worker idle for WORKER_IDLE_S is ended meanwhile (memory
        back to the machine; the next computation starts a fresh one)."""
        with self._cv:
            while not self._queue and not self._closed:
                if not self._cv.wait(WORKER_IDLE_S) and not self._queue and i in self._workers:
                    self._workers.pop(i).kill()
            if self._closed:
                return None
            t = self._queue.popleft()
            waiting = list(self._queue)
        self._announce(waiting)
        return t

    def _slot(self, i: int) -> None:
        while (t := self._next(i)) is not None:
            t.position = 0
            t.event("start", None)
            with self._cv:
                self._running += 1
            try:
                w = self._workers.get(i)
                if w is None or not w.alive():
                    w = self._workers[i] = _Worker(self.budget.memory_mib)
                result = w.run(t)
            except BaseException as exc:  # noqa: BLE001 - every outcome goes to the future
                w = self._workers.get(i)
                if w is not None and (isinstance(exc, (Cancelled, BudgetExceeded, WorkerFailed)) or not w.alive()):
                    w.kill()
                    self._workers.pop(i, None)
                if not t.future.done():
                    t.future.set_exception(exc)
            else:
                if not t.future.done():
                    t.future.set_result(result)
            finally:
                with self._cv:
                    self._running -= 1


class _Worker:
    """A worker process: a fresh interpreter (no fork of this threaded server, no main-module
    re-import) that speaks pickles over two pipes and ends when the third (its lifeline) closes."""

    def __init__(self, memory_mib: int):
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        task_r, task_w = os.pipe()
        answer_r, answer_w = os.pipe()
        life_r, self._life_w = os.pipe()
        env = {**os.environ, **{k: os.environ.get(k, "1") for k in THREAD_ENV}}
        code = "import sys; from llmplan.web.tasks import worker_main; worker_main(*map(int, sys.argv[1:]))"
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", code, str(task_r), str(answer_w), str(life_r),
                                          str(memory_mib)], pass_fds=(task_r, answer_w, life_r), env=env,
                                         stdin=subprocess.DEVNULL)
        finally:
            for fd in (task_r, answer_w, life_r):
                os.close(fd)
        self._send = Connection(task_w, readable=False)
        self.conn = Connection(answer_r, writable=False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(5)
        except Exception:  # noqa: BLE001
            pass
        for c in (self.conn, self._send):
            c.close()
        try:
            os.close(self._life_w)
        except OSError:
            pass

    def run(self, t: Ticket) -> Any:
        try:
            self._send.send((t.task, t.args, t.cpu_s))
        except (OSError, ValueError):
            self.kill()
            raise WorkerFailed("the computation's process could not be reached") from None
        deadline = time.monotonic() + 3 * t.cpu_s + 30
        while True:
            if t.cancelled.is_set():
                self.kill()
                raise Cancelled()
            if time.monotonic() > deadline:
                self.kill()
                raise BudgetExceeded(f"stopped after {3 * t.cpu_s + 30:,.0f} s of wall-clock time (3 × the CPU "
                                     f"budget of {t.cpu_s:,.0f} s + 30 s); {ENV['cpu_s']} or serve --cpu-budget "
                                     "raises it")
            if not self.conn.poll(0.1):
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.kill()
                    raise WorkerFailed(f"the computation's process ended without an answer (exit status {code})")
                continue
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                try:
                    self.proc.wait(5)
                except Exception:  # noqa: BLE001
                    pass
                code = self.proc.returncode
                self.kill()
                raise WorkerFailed(f"the computation's process ended without an answer (exit status {code})") from None
            kind = msg[0]
            if kind == "progress":
                t.event("progress", msg[1])
                continue
            if kind == "ok":
                return msg[1]
            raise _rebuild(msg, t.cpu_s)


def _rebuild(msg: tuple, cpu_s: float) -> BaseException:
    """The worker's answer ("error"/"budget"/"internal", class name, message, extra) as the
    exception to raise here."""
    from ..errors import SpecError
    from ..store.db import NotFound

    kind, cls, text, extra = msg
    if kind == "budget":
        return BudgetExceeded(text)
    if kind == "internal":
        return RuntimeError(f"{cls}: {text}")
    if cls == "SpecError" and extra:
        return SpecError(extra["field"], extra["reason"], extra.get("label"))
    if cls == "NotFound":
        return NotFound(text)
    return LlmplanError(text)


_POOLS: dict[tuple[int, int, int], Pool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(budget: Budget) -> Pool:
    """One pool per process and setting (apps made with the same budget share it)."""
    key = (budget.pool_size, budget.memory_mib, budget.queue)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = Pool(budget)
        return _POOLS[key]
