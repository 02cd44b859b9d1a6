"""The web app's computations, as they run in a worker process of the budgeted pool
(web/compute.py): each gets its typed inputs and the overrides in force, builds that catalog,
and returns JSON-ready data. In a worker, local files are off (`set_local_files(False)`): a name
is a catalog entry, whatever the store holds.

Also the checks that refuse, before anything runs, requests whose inputs alone imply more work
than the budget allows (`search_size`, the simulator's size in serving/api.py)."""

from __future__ import annotations

import os
import resource
import signal
import threading
from collections.abc import Callable
from typing import Any

from ..catalog import Catalog, load_catalog
from ..errors import LlmplanError, SpecError
from ..jsonutil import jsonable

load_catalog()  # imported by the fork server: every worker starts with the bundled catalog parsed
from .. import api as _api  # noqa: E402,F401 - and with the models imported
from ..planner import report as _report  # noqa: E402,F401


class _CpuBudget(BaseException):
    """Raised in the worker by SIGXCPU (RLIMIT_CPU reached); a BaseException so no handler eats it."""


def catalog(rows: tuple) -> Catalog:
    from .overrides import from_rows

    return from_rows(rows).catalog if rows else load_catalog()


def catalog_names(req: Any, cat: Catalog) -> Any:
    """Over HTTP, names must be catalog entries, never server paths (the CLI's `./model-dir/`,
    `model.gguf` or `workload.yaml` would read the server's disk)."""
    name = getattr(req, "model", None)
    if isinstance(name, str) and cat.models.find(name) is None:
        cat.model(name)  # raises with the closest catalog ids
    wl = getattr(req, "workload", None)
    if isinstance(wl, str) and cat.workload_presets.find(wl) is None:
        ids = ", ".join(x.id for x in cat.workload_presets if x.input_mean)
        raise LlmplanError(f"workload: over the API, a workload preset id ({ids}); files are for the CLI")
    return req


def fit(req, rows, progress=None) -> dict[str, Any]:
    from ..api import fit_request

    cat = catalog(rows)
    return fit_request(catalog_names(req, cat), cat).model_dump(mode="json")


def estimate(req, rows, progress=None) -> dict[str, Any]:
    from ..perf.estimate import estimate as run

    cat = catalog(rows)
    return run(catalog_names(req, cat), cat).model_dump(mode="json")


def simulate(req, rows, max_bytes=None, progress=None) -> dict[str, Any]:
    from ..serving.api import simulate as run

    cat = catalog(rows)
    return jsonable(run(catalog_names(req, cat), cat, max_bytes=max_bytes))


def capacity(req, rows, progress=None) -> dict[str, Any]:
    from ..serving.api import capacity as run

    cat = catalog(rows)
    return jsonable(run(catalog_names(req, cat), cat))


def tco(req, rows, progress=None) -> dict[str, Any]:
    from ..cost.tco import tco as run

    cat = catalog(rows)
    return jsonable(run(catalog_names(req, cat), cat))


def plan(scenario, rows, progress=None) -> tuple[dict[str, Any], str, str]:
    """The planner's result as JSON, its HTML report (charts linked from the app) and its Markdown report."""
    from ..planner.report import html_report, markdown, public_json, run

    result = run(scenario, catalog(rows), progress)
    _chart_runtime()
    return jsonable(public_json(result)), html_report(result, standalone=False), markdown(result)


def explain(scenario, option_id: str, rows, progress=None) -> dict[str, Any]:
    """`llmplan plan --explain`: one option's figures if ranked, its reasons if excluded."""
    from ..planner.report import explain as explain_option
    from ..planner.report import run

    return jsonable(explain_option(run(scenario, catalog(rows), progress), option_id))


_CHARTS_WARM = False


def _chart_runtime() -> None:
    """Start the chart renderer (an embedded JavaScript engine that reserves ~32 GiB of address space
    up front, not memory) with the address-space limit lifted for that moment only; the limit is then
    set again with the same allowance above what the worker now holds."""
    global _CHARTS_WARM
    if _CHARTS_WARM:
        return
    from .. import charts

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    before = _vm_bytes()
    if soft != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        charts.warm()
    finally:
        if soft != resource.RLIM_INFINITY and before is not None:
            grown = max(0, (_vm_bytes() or before) - before)
            resource.setrlimit(resource.RLIMIT_AS, (soft + grown if hard == resource.RLIM_INFINITY
                                                    else min(soft + grown, hard), hard))
    _CHARTS_WARM = True


def pdf(result, report_html, rows, progress=None) -> bytes:
    from ..planner.pdf import pdf_bytes

    return pdf_bytes(result, report_html, catalog(rows))


TASKS: dict[str, Callable[..., Any]] = {
    "fit": fit, "estimate": estimate, "simulate": simulate, "capacity": capacity, "tco": tco, "plan": plan,
    "pdf": pdf, "explain": explain}


def search_size(s, cat: Catalog) -> int:
    """How many options (model × format × accelerator × engine × TP) the planner would examine, a layout it also
    sizes with data-parallel attention counted twice."""
    from ..planner.search import TP_CHOICES, candidate_formats, candidate_hardware, candidate_models, dp_attention_twin

    models = candidate_models(s, cat)
    engines = [cat.engine(e) for e in s.engines]
    total = 0
    for a in candidate_hardware(s, cat):
        domain = max(a.max_per_server or 1, a.interconnect.domain_size or 1)
        for eng in engines:
            tps = [t for t in TP_CHOICES if t <= min(s.max_gpus_per_replica, domain)] \
                if "tp" in eng.parallelism else [1]
            twins = sum(1 for m in models for t in tps if dp_attention_twin(eng, m, t))
            total += (len(models) * len(tps) + twins) * len(candidate_formats(eng, s, cat))
    return total


def check_search_size(s, cat: Catalog, limit: int) -> None:
    n = search_size(s, cat)
    if n > limit:
        raise SpecError("models", f"the search would examine {n:,} options (models × formats × accelerators × engines "
                                  f"× tensor-parallel sizes), over the budget of {limit:,}: name fewer models or "
                                  "accelerators, lower models.max_models, or list the engines and precisions")


# ---------------------------------------------------------------------------------- the worker


def worker_main(task_fd: int, answer_fd: int, lifeline_fd: int, memory_mib: int) -> None:
    """A worker process: run tasks read from `task_fd`, answer on `answer_fd`, until the server
    goes (`lifeline_fd` reaches end of file)."""
    from multiprocessing.connection import Connection

    from ..importers import set_local_files

    tasks, conn = Connection(task_fd, writable=False), Connection(answer_fd, readable=False)
    threading.Thread(target=_watch, args=(lifeline_fd,), daemon=True).start()
    set_local_files(False)
    _limit_memory(memory_mib)
    signal.signal(signal.SIGXCPU, _on_xcpu)
    while True:
        try:
            task, args, cpu_s = tasks.recv()
        except (EOFError, OSError):
            return
        if _run(conn, task, args, cpu_s, memory_mib):
            return  # after a stop the process state is suspect: the pool starts a fresh one


def _run(conn, task: str, args: tuple, cpu_s: float, memory_mib: int) -> bool:
    """Run one task and send its answer; True when the worker should end."""
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    try:
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        resource.setrlimit(resource.RLIMIT_CPU, (int(used + cpu_s) + 1, hard))
        out = TASKS[task](*args, progress=lambda msg: conn.send(("progress", str(msg))))
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        conn.send(("ok", out))
        return False
    except _CpuBudget:
        _send(conn, ("budget", "cpu", f"stopped: the computation used its CPU budget of {cpu_s:,.0f} s; make it "
                                      "smaller (fewer models, accelerators or requests) or raise the budget "
                                      "(serve --cpu-budget, LLMPLAN_CPU_BUDGET_S)", None))
        return True
    except MemoryError:
        _send(conn, ("budget", "memory", f"stopped: the computation needed more than its memory budget of "
                                         f"{memory_mib:,} MiB; make it smaller or raise the budget (serve "
                                         "--memory-budget, LLMPLAN_MEMORY_BUDGET_MIB)", None))
        return True
    except SpecError as exc:
        _send(conn, ("error", "SpecError", str(exc), {"field": exc.field, "reason": exc.reason, "label": exc.label}))
    except LlmplanError as exc:
        _send(conn, ("error", exc.__class__.__name__, str(exc), None))
    except Exception as exc:  # noqa: BLE001 - a 500 with the class for the client; the traceback for the log
        import traceback

        _send(conn, ("internal", exc.__class__.__name__, str(exc)[:300], traceback.format_exc()[-4000:]))
    finally:
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        except (ValueError, OSError):
            pass
    return False


def _send(conn, msg: tuple) -> None:
    try:
        conn.send(msg)
    except (OSError, ValueError):
        pass


def _on_xcpu(signum, frame) -> None:  # noqa: ANN001
    raise _CpuBudget()


def _watch(fd: int) -> None:
    """End this process when the server goes (the pipe's other end closes)."""
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    os._exit(0)


def _vm_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None


def _limit_memory(memory_mib: int) -> None:
    """Let the address space grow by `memory_mib` beyond what the worker holds at start."""
    vm = _vm_bytes()
    if vm is None:
        return
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = vm + memory_mib * 2**20
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
