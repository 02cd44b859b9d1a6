"""`llmplan fit`: does a model fit on given GPUs, and with what headroom."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from . import render
from .spec_options import spec_options

if TYPE_CHECKING:
    from ..api import FitReport


def register(app: typer.Typer) -> None:
    @app.command("fit")
    @spec_options(("FitRequest", ()))
    def fit_command(
        values: dict[str, Any],
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Does MODEL fit on --gpu? Memory per GPU by component, KV capacity, max context and concurrency;
        when it does not, what would (fewer bits, more GPUs, a smaller model)."""
        from ..api import fit_request
        from ..catalog import load_catalog
        from ..specs import FitRequest
        from . import fit_try, hints

        hints.check_model_path(values["model"])
        req = render.validated(FitRequest, values)
        cat = load_catalog(catalog)
        r = fit_request(req, cat)
        extra = [n for n in (hints.layout_note(req, r, cat),) if n] + \
            [f"try {t}" for t in fit_try.suggestions(req, r, cat)]
        render.emit(r.model_copy(update={"notes": [*extra, *r.notes]}) if extra else r, as_json, print_fit)


def print_fit(r: FitReport) -> None:
    from rich.table import Table

    from ..units import fmt_bytes, fmt_count

    con = render.console()
    layout = f"{r.num_gpus} × {r.gpu}" + (f" (TP {r.tp} × PP {r.pp}" + (f", EP {r.ep}" if r.ep > 1 else "") + ")"
                                          if r.num_gpus > 1 else "")
    con.print(f"[bold]{r.model_name or r.model}[/bold] on {layout}, {r.engine}, weights {r.precision}, "
              f"KV {r.kv_precision}")
    con.print(f"{fmt_count(r.total_params)} parameters ({fmt_count(r.active_params)} active); "
              f"weights {fmt_bytes(r.weights_bytes)} in all; KV cache {r.kv_cache_bytes_per_token:,} bytes per token")
    t = Table(title="Memory per GPU (busiest GPU)", title_justify="left")
    t.add_column("component")
    t.add_column("size", justify="right")
    t.add_column("note", style="dim")
    for c in r.per_gpu_breakdown:
        t.add_row(c.component.replace("_", " "), fmt_bytes(c.bytes), c.note)
    t.add_row("[bold]required[/bold]", f"[bold]{fmt_bytes(r.per_gpu_required_bytes)}[/bold]", "")
    t.add_row("capacity", fmt_bytes(r.per_gpu_capacity_bytes), f"device {fmt_bytes(r.per_gpu_memory_bytes)}")
    con.print(t)
    verdict = "[bold green]FITS[/bold green]" if r.fits else "[bold red]DOES NOT FIT[/bold red]"
    head = fmt_bytes(abs(r.headroom_bytes))
    # the sign is the memory's, not the verdict's: a context past the model's window does not fit with memory to spare
    con.print(f"{verdict}: headroom {head if r.headroom_bytes >= 0 else '-' + head} per GPU. "
              f"KV pool holds {r.kv_capacity_tokens:,} tokens: {r.max_concurrency:,} sequences of "
              f"{r.context_tokens:,} tokens, or one of up to {r.max_context_tokens:,}.")
    for reason in r.reasons:
        con.print(f"  [red]✗[/red] {reason}")
    for note in r.notes:
        if note.startswith("try "):
            con.print(f"  [yellow]→[/yellow] {note}")
        else:
            con.print(f"  [dim]• {note}[/dim]")
    con.print(f"[dim]{r.kv_sizing}[/dim]")
