"""`llmplan plan SCENARIO.yaml`: the ranked, explained, policy-compliant recommendation."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import typer

from ..errors import LlmplanError
from . import render
from .lazy import load_catalog


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_command(
        scenario: Path = typer.Argument(..., help="Scenario YAML file (see examples/ and docs/planner.md)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Write report.html, report.md and plan.json "
                                           "into this directory (created if missing)."),
        explain: str | None = typer.Option(None, "--explain", help="Explain one option by its id (or an id "
                                              "prefix): its figures if ranked, its reasons if excluded."),
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Search for the cheapest deployment that meets the scenario's workload, SLOs and policy."""
        from ..jsonutil import jsonable
        from ..planner import load_scenario
        from ..planner.report import explain as explain_option
        from ..planner.report import html_report, markdown, public_json, run, text

        s = load_scenario(scenario)
        result = run(s, load_catalog(catalog))
        if explain is not None:
            info = explain_option(result, explain)
            if as_json:
                render.print_json(jsonable(info))
            else:
                _print_explain(info)
            return
        data = jsonable(public_json(result))
        if out is not None:
            write_report(out, data, markdown(result), html_report(result))
        if as_json:
            render.print_json(data)
        else:
            typer.echo(text(result).rstrip("\n"))
            if out is not None:
                typer.echo(f"\nReport written to {out}/report.html (with plan.json and report.md)")


def write_report(out: Path, data: dict, md: str, page: str) -> None:
    """All three files or none: each is written to a temporary file in `out` and renamed."""
    if out.exists() and not out.is_dir():
        raise LlmplanError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        staged = []
        for name, body in (("plan.json", json.dumps(data, indent=2) + "\n"), ("report.md", md),
                           ("report.html", page)):
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            staged.append((tmp, out / name))
        for tmp, final in staged:
            os.replace(tmp, final)
    except OSError as exc:
        for tmp, _ in locals().get("staged", []):
            Path(tmp).unlink(missing_ok=True)
        raise LlmplanError(f"--out {out}: cannot write the report ({exc.strerror or exc})") from None


def _print_explain(info: dict) -> None:
    if info["status"] == "rejected":
        typer.echo(f"{info['option']}: excluded")
        for r in info["reasons"]:
            typer.echo(f"  - {r}")
    elif info["status"] == "several":
        typer.echo(f"{info['option']}: {len(info['ranked'])} ranked and {len(info['rejected'])} excluded option(s) "
                   "start with this id")
        for o in info["ranked"]:
            typer.echo(f"  ranked: {o}")
        for r in info["rejected"]:
            typer.echo(f"  excluded: {r['option']}: {'; '.join(r['reasons'])}")
    else:
        typer.echo(f"{info['option']}: ranked #{info['rank']}")
        for k in ("deployment", "model", "precision", "hardware", "engine", "num_gpus", "servers", "tp", "pp",
                  "replicas", "tco_usd", "cost_per_million_tokens_usd", "ttft_p95_ms", "tpot_p95_ms",
                  "answer_start_p95_ms", "quality_recovery_pct", "serve_command"):
            v = info.get(k)
            typer.echo(f"  {k}: {_num(v)}" if isinstance(v, float) else f"  {k}: {v}")
        for k, v in info["details"].items():
            if k not in ("simulated", "notes"):
                typer.echo(f"  {k}: {_num(v)}" if isinstance(v, float) else f"  {k}: {v}")
        for n in info["details"].get("notes", []) or []:
            typer.echo(f"  note: {n}")


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3g}"
