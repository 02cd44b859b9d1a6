"""`llmplan simulate` and `llmplan capacity`: serving under load."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import typer

from ..units import fmt_sig
from . import render
from .files import check_destination, write_atomic
from .lazy import load_catalog
from .spec_options import spec_options


def register(app: typer.Typer) -> None:

    @app.command("simulate")
    @spec_options(("ServeRequest", ("concurrency", "block_size")))
    def simulate_command(
        values: dict[str, Any],
        series_csv: Path | None = typer.Option(None, "--series-csv", help="Write the time series as CSV."),
        plot: Path | None = typer.Option(None, "--plot", help="Write latency and queue over time (.html or .svg)."),
        dask: str | None = typer.Option(None, "--dask", help="Dask scheduler address for the replicas."),
        processes: int = typer.Option(1, "--processes", help="Local processes for independent replicas."),
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Simulate continuous batching on N replicas under a workload; latency percentiles, goodput, queues."""
        from ..serving.api import ServeRequest

        req = render.validated(ServeRequest, values)
        if plot is not None:
            check_destination(plot, "--plot", (".html", ".svg"))
        if series_csv is not None:
            check_destination(series_csv, "--series-csv", (".csv",))
        from ..serving.api import simulate

        result = simulate(req, load_catalog(catalog), dask_address=dask, processes=processes)
        if series_csv is not None:
            write_series(series_csv, result["series"])
        if plot is not None:
            write_plot(plot, result)
        render.emit(result, as_json, print_simulation)

    @app.command("capacity")
    @spec_options(("ServeRequest", ("concurrency", "block_size", "replicas", "num_requests", "duration_s",
                                    "sample_s")))
    def capacity_command(
        values: dict[str, Any],
        processes: int = typer.Option(1, "--processes", help="Local processes for independent replicas."),
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Replicas, GPUs and servers that meet the workload's SLOs at its peak hour."""
        from ..serving.api import ServeRequest, capacity

        req = render.validated(ServeRequest, values)
        render.emit(capacity(req, load_catalog(catalog), processes=processes), as_json, print_capacity)


def write_series(path: Path, series: dict[str, list]) -> None:
    keys = list(series)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(keys)
    for row in zip(*(series[k] for k in keys), strict=True):
        w.writerow(["" if v is None else v for v in row])
    write_atomic(path, buf.getvalue(), "--series-csv")


def write_plot(path: Path, result: dict[str, Any]) -> None:
    from ..serving.charts import document

    write_atomic(path, document(result, path.suffix.lower()), "--plot")


def _p(d: dict, k: str) -> str:
    v = d.get(k)
    return "—" if v is None else f"{v:,.1f}"


def print_simulation(r: dict[str, Any]) -> None:
    from rich.table import Table

    con = render.console()
    dep = r["deployment"]
    con.print(f"[bold]{dep['model']}[/bold]: {dep['replicas']} replica(s) × {dep['num_gpus_per_replica']} × "
              f"{dep['gpu']} ({dep['engine']}, {dep['precision']}, router {dep['router']}, seed {dep['seed']})")
    con.print(
        f"{r['completed']:,} of {r['requests']:,} requests in {r['duration_s']:,.0f} s: "
        f"{r['requests_s']:,.2f} req/s, {r['output_tok_s']:,.0f} output tok/s, {r['total_tok_s']:,.0f} total tok/s"
    )
    t = Table(title="Latency (ms)", title_justify="left")
    for col in ("metric", "p50", "p95", "p99", "mean"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for k in ("ttft_ms", "tpot_ms", "e2e_ms"):
        t.add_row(k.replace("_ms", "").upper(), *(_p(r[k], p) for p in ("p50", "p95", "p99", "mean")))
    if _answer_shown(r):
        t.add_row("answer start", *(_p(r["answer_start_ms"], p) for p in ("p50", "p95", "p99", "mean")))
    con.print(t)
    slo = r["slo"]
    for k, v in slo.items():
        mark = "[green]✓[/green]" if v["ok"] else "[red]✗[/red]"
        val = "—" if v["value"] is None else f"{v['value']:,.1f}"
        con.print(f"  {mark} {k}: {val} (limit {v['limit']:,.0f})")
    con.print(f"SLOs {'met' if r['slo_met'] else 'NOT met'}; goodput {r['goodput_pct']:.1f} %; GPU busy "
              f"{r['gpu_busy_pct']:.0f} %; mean KV use {100 * r['kv_util_mean']:.0f} %; queue max "
              f"{r['queue_max']:.0f}; preemptions {r['preemptions']}")
    if dep.get("workload_note"):
        con.print(f"[yellow]Note: {dep['workload_note']}[/yellow]")


_SLO_WORDS = {"ttft_p95_ms": ("TTFT p95 ≤", " ms"), "answer_start_p95_ms": ("answer start p95 ≤", " ms"),
              "tpot_p95_ms": ("TPOT p95 ≤", " ms"), "e2e_p95_ms": ("end-to-end p95 ≤", " ms"),
              "goodput_pct": ("goodput ≥", " %")}


def _answer_shown(r: dict[str, Any]) -> bool:
    """Whether a run's answer start is worth a line of its own: the requests thought before answering (else it
    is the TTFT), or the SLO holds it."""
    return r.get("answer_start_ms") is not None and (r.get("thinking_tokens_mean") is not None
                                                     or any(k.startswith("answer_start") for k in r.get("slo", {})))


def _slos(slo: dict[str, Any]) -> str:
    """The workload's SLO limits in words: 'TTFT p95 ≤ 2,000 ms, …'."""
    parts = []
    for key, v in slo.items():
        words, unit = _SLO_WORDS.get(key, (key + " limit", ""))
        parts.append(f"{words} {v['limit']:,.0f}{unit}")
    return ", ".join(parts) or "none set"


def print_capacity(r: dict[str, Any]) -> None:
    con = render.console()
    dep = r["deployment"]
    if dep.get("workload_note"):
        con.print(f"[yellow]Note: {dep['workload_note']}[/yellow]")
    if not r["feasible"]:
        con.print(f"[bold red]No replica count meets the SLOs[/bold red]: {r['reason']}")
        return
    con.print(f"[bold]{r['replicas']} replica(s)[/bold] of {dep['num_gpus_per_replica']} × {dep['gpu']} = "
              f"[bold]{r['gpus']} GPUs[/bold] in {r['servers']} server(s) meet the SLOs at the peak of "
              f"{r['peak_rate_per_s']:,.2f} requests/s (analytic first guess {r['analytic_first_guess']}, "
              f"{r['simulations']} simulations of {r['check_requests']:,} requests).")
    con.print(f"Headroom to saturation at peak {r['headroom_pct']:.0f} % (the replicas saturate at "
              f"{fmt_sig(r['replicas'] * r['replica_capacity_req_s'])} requests/s; the SLOs stop holding before that: "
              "`llmplan simulate --rate` a growth rate to see where); utilisation over the day mean "
              f"{r['mean_utilisation_pct']:.0f} %, peak hour {max(r['utilisation_by_hour_pct']):.0f} %.")
    a = r["at_peak"]
    con.print(f"SLOs: {_slos(a.get('slo') or {})}.")
    answer = f"answer start p95 {_p(a['answer_start_ms'], 'p95')} ms, " if _answer_shown(a) else ""
    con.print(f"At peak: TTFT p95 {_p(a['ttft_ms'], 'p95')} ms, TPOT p95 {_p(a['tpot_ms'], 'p95')} ms, {answer}"
              f"goodput {a['goodput_pct']:.1f} %.")
    if r.get("one_fewer"):
        f = r["one_fewer"]
        failed = [k for k, v in f["slo"].items() if not v["ok"]]
        con.print(f"[dim]With one replica fewer: {', '.join(failed) or 'SLOs met'} "
                  f"(TTFT p95 {_p(f['ttft_ms'], 'p95')} ms).[/dim]")
