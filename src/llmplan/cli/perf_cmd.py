"""`llmplan estimate`, `llmplan validate`, `llmplan calibrate`: speed, accuracy, calibration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..units import fmt_sig
from . import render
from .lazy import load_catalog
from .spec_options import spec_options

if TYPE_CHECKING:
    from ..perf.estimate import EstimateReport


def register(app: typer.Typer) -> None:
    @app.command("estimate")
    @spec_options(("EstimateRequest", ("context_tokens", "gpu_memory_utilization", "block_size")))
    def estimate_command(
        values: dict[str, Any],
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """How fast MODEL serves on --gpu: TTFT, TPOT, throughput, bounds, with an interval."""
        from ..perf.estimate import EstimateRequest, estimate

        req = render.validated(EstimateRequest, values)
        render.emit(estimate(req, load_catalog(catalog)), as_json, print_estimate)

    @app.command("validate")
    def validate_command(
        files: list[str] = typer.Argument(..., help="Benchmark-case CSV files or quoted globs (DESIGN.md "
                                           "'Benchmark cases'); row ids must be unique across them."),
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Predict every row's metric from its conditions and compare with the measured value."""
        from ..perf.cases import bench_files
        from ..perf.validate import validate

        paths, skipped = bench_files(files)
        result = validate(paths, load_catalog(catalog))
        result["files"] = [str(p) for p in paths] + skipped
        render.emit(result, as_json, print_validation)

    @app.command("calibrate")
    def calibrate_command(
        data: list[str] | None = typer.Option(None, "--data", help="Development CSV to fit the bundled calibration "
                                                 "on (all levels of the hierarchy); repeat it or give a quoted glob "
                                                 "for several files."),
        from_file: Path | None = typer.Option(None, "--from", help="Your measurements: benchmark-case CSV, or the "
                                                 "JSON that `vllm bench serve` writes (then give --model/--gpu)."),
        out: Path | None = typer.Option(None, "--out", help="Calibration YAML to write (default: with --from, "
                                           "calibration.yaml in the first --catalog directory)."),
        date: str | None = typer.Option(None, "--date", help="Date recorded in the file (default today)."),
        model: str | None = typer.Option(None, "--model", help="For vLLM JSON: the model served."),
        gpu: str | None = typer.Option(None, "--gpu", help="For vLLM JSON: the accelerator."),
        num_gpus: int | None = typer.Option(None, "--num-gpus"),
        tp: int | None = typer.Option(None, "--tp"),
        precision: str | None = typer.Option(None, "--precision"),
        engine: str = typer.Option("vllm", "--engine", help="For vLLM JSON: the engine (vllm)."),
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Fit efficiency factors per engine × hardware family and write them as a catalog file."""
        from ..perf.calibrate_cmd import run_calibrate

        day = date or dt.date.today().isoformat()
        summary = run_calibrate(data=data, from_file=from_file, out=out, date=day, catalog_dirs=catalog,
                                model=model, gpu=gpu, num_gpus=num_gpus, tp=tp, precision=precision, engine=engine)
        if as_json:
            render.print_json(summary)
        else:
            render.console().print(f"wrote {summary['out']}: {summary['entries']} calibration entries from "
                                   f"{summary['rows']} measurements ({summary['unsupported']} unsupported); "
                                   f"fit median error {summary['mdape_pct']:.1f} %; {summary['intervals']}")


def print_estimate(r: EstimateReport) -> None:
    from rich.table import Table

    con = render.console()
    con.print(f"[bold]{r.model}[/bold] on {r.num_gpus} × {r.gpu} (TP {r.tp} × PP {r.pp}), {r.engine_profile}, "
              f"{r.precision} weights ({r.compute_dtype} math), KV {r.kv_precision}")
    load = f"{r.request_rate:g} requests/s" if r.request_rate else f"concurrency {r.concurrency:g}"
    con.print(f"{r.input_tokens:,} input + {r.output_tokens:,} output tokens per request, {load}")
    if not r.fits:
        con.print(f"[bold red]DOES NOT FIT: {r.does_not_fit}.[/bold red] The figures below are what this layout "
                  "would do if it fitted; `llmplan fit` lists layouts and formats that do.")
    t = Table(title="Prediction (80 % range from calibration residuals)", title_justify="left")
    for col in ("metric", "value", "range", "definition"):
        t.add_column(col, overflow="fold")
    if r.saturation is not None:
        con.print(f"[bold red]{r.saturation.message}[/bold red]")
    rows = [
        (
            "TTFT",
            "unbounded (saturated)" if r.ttft_ms is None else f"{r.ttft_ms:,.1f} ms",
            r.intervals.get("ttft_ms"),
            r.definitions["ttft_ms"],
        ),
        ("TPOT", "none (one output token)" if r.tpot_ms is None else f"{r.tpot_ms:,.2f} ms",
         r.intervals.get("tpot_ms"), r.definitions["tpot_ms"]),
        (
            "output throughput",
            f"{r.output_tok_s:,.0f} tok/s",
            r.intervals["output_tok_s"],
            r.definitions["output_tok_s"],
        ),
    ]
    for name, value, iv, definition in rows:
        t.add_row(name, value, f"{fmt_sig(iv.low)} – {fmt_sig(iv.high)}" if iv else "", definition)
    t.add_row("total throughput", f"{r.total_tok_s:,.0f} tok/s", "", r.definitions["total_tok_s"])
    t.add_row("max throughput", f"{r.max_throughput_output_tok_s:,.0f} tok/s", "",
              f"engine saturated at {r.max_batch:,.0f} sequences")
    t.add_row("batch-1 prefill", f"{r.prefill_tok_s:,.0f} tok/s", "", r.definitions["prefill_tok_s"])
    t.add_row("batch-1 decode", f"{r.decode_tok_s:,.1f} tok/s", "", r.definitions["decode_tok_s"])
    con.print(t)
    label = {"memory": "memory-bound kernels", "compute": "compute-bound kernels"}
    for name, ph in r.phases.items():
        split = ", ".join(f"{label.get(k, k)} {v:,.2f} ms" for k, v in ph.split_ms.items())
        con.print(f"{name}: {ph.time_ms:,.2f} ms, [bold]{ph.bound}-bound[/bold] ({split}; at the fitted "
                  f"efficiencies all bytes alone {ph.alone_ms['memory']:,.2f} ms, all FLOPs alone "
                  f"{ph.alone_ms['compute']:,.2f} ms; roofline at the achievable matmul rate, rated bandwidth "
                  f"{ph.roofline_ms:,.2f} ms)")
    c = r.calibration
    con.print(f"[dim]calibration {c['id']} ({c['level']}, {c['n_rows']} rows, fit median error "
              f"{c['mdape_pct']:.1f} %)[/dim]")
    for n in r.notes:
        con.print(f"  [dim]• {n}[/dim]")


def print_validation(result: dict) -> None:
    from rich.table import Table

    con = render.console()
    t = Table(title=f"{len(result['rows'])} rows", title_justify="left")
    for col in ("id", "metric", "measured", "predicted", "error %", "status"):
        t.add_column(col)
    for r in result["rows"]:
        err = "" if r["error_pct"] is None else f"{r['error_pct']:+.1f}"
        t.add_row(r["id"], r["metric"], fmt_sig(r['measured'], 4) if r["measured"] is not None else "",
                  fmt_sig(r['predicted'], 4) if r["predicted"] is not None else "", err,
                  r["status"] if r["status"] == "ok" else f"unsupported: {r['reason']}")
    con.print(t)
    s = Table(title="Summary", title_justify="left")
    for col in ("metric", "n", "MdAPE %", "within ±25 %"):
        s.add_column(col)
    for m, v in sorted(result["summary"]["by_metric"].items()):
        s.add_row(m, str(v["n"]), f"{v['mdape_pct']:.1f}", f"{v['within_25_pct']:.0f} %")
    o = result["summary"]["overall"]
    if o["mdape_pct"] is None:  # no row could be predicted (e.g. every row names an engine the catalog lacks)
        s.add_row("[bold]overall[/bold]", str(o["n"]), "–", "–")
    else:
        s.add_row("[bold]overall[/bold]", str(o["n"]), f"{o['mdape_pct']:.1f}", f"{o['within_25_pct']:.0f} %")
    for sc, v in sorted(result["summary"].get("by_scenario", {}).items()):
        s.add_row(f"scenario {sc}", str(v["n"]), f"{v['mdape_pct']:.1f}", f"{v['within_25_pct']:.0f} %")
    con.print(s)
    con.print(f"unsupported rows: {o['unsupported']}")
