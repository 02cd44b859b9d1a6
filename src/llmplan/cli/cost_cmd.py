"""`llmplan tco` and `llmplan compare`: what owning costs against cloud GPUs and APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..units import days_text
from . import render
from .files import check_destination, write_atomic
from .lazy import load_catalog
from .spec_options import spec_options


def register(app: typer.Typer) -> None:
    for name, doc, printer in (
        ("tco", "On-premise TCO of a deployment sized for a workload, with its cloud and API alternatives.", print_tco),
        ("compare", "The same workload on-premise, on rented GPUs and through APIs, side by side.", print_compare),
    ):
        _register(app, name, doc, printer)


# ServeRequest options that size or simulate a fleet by hand: TCO sizes it (--replicas is fixed_replicas)
NOT_FOR_TCO = ("concurrency", "block_size", "replicas", "router", "num_requests", "duration_s", "sample_s")


def _register(app: typer.Typer, name: str, doc: str, printer) -> None:
    @spec_options(("TcoRequest", NOT_FOR_TCO), ("Finance", ()))
    def command(
        values: dict[str, Any],
        finance: dict[str, Any],
        no_cloud: bool = typer.Option(False, "--no-cloud", help="Leave out rented GPUs."),
        no_api: bool = typer.Option(False, "--no-api", help="Leave out per-token APIs."),
        chart: Path | None = typer.Option(None, "--chart", help="Cumulative cost chart: .png, .html or .svg."),
        catalog: list[Path] = typer.Option([], "--catalog", help=render.CATALOG_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        if chart is not None:
            check_destination(chart, "--chart", (".png", ".html", ".svg"))
        from ..cost.tco import Finance, TcoRequest, tco

        fin = render.validated(Finance, finance)
        alts = tuple(a for a, off in (("cloud_gpu", no_cloud), ("api", no_api)) if not off)
        req = render.validated(TcoRequest, {**values, "finance": fin, "alternatives": alts})
        result = tco(req, load_catalog(catalog))
        if chart is not None:
            from ..cost.charts import render as render_chart

            write_atomic(chart, render_chart(chart.suffix, result), "--chart")
        render.emit(result, as_json, printer)

    command.__doc__ = doc
    app.command(name)(command)


def _usd(v: float | None) -> str:
    return "—" if v is None else f"${v:,.0f}"


def print_tco(r: dict[str, Any]) -> None:
    from rich.table import Table

    con = render.console()
    d, w, p = r["deployment"], r["workload"], r["purchase"]
    con.print(f"[bold]{d['model']}[/bold] on {d['gpu']}: {d['replicas_needed']} replica(s) of {d['gpus_per_replica']} "
              f"GPU(s) carry the peak; {w['requests_per_day']:,.0f} requests/day on {days_text(w['days_per_year'])}, "
              f"{w['tokens_per_year'] / 1e9:,.2f} B tokens/year, utilisation {w['utilisation_pct']:.1f} %, engines "
              f"working {w['active_pct']:.0f} % of the time")
    con.print(f"Bought: {p['placement']} (" + (f"under a desk, {p['contracted_kw']:,.2f} kW maximum)"
              if p["facility"] == "office" else f"data centre, {p['contracted_kw']:,.1f} kW contracted)"))
    t = Table(title=f"Owning it for {r['horizon_years']:g} years", title_justify="left")
    t.add_column("item")
    t.add_column("USD", justify="right")
    for line in p["lines"]:
        t.add_row(f"  {line['count']} × {line['server']}: host {_usd(line['host_usd_each'])} + {line['gpus_each']} × "
                  f"{_usd(line['gpu_price_usd'])}" + (" (host estimated)" if line["host_estimate"] else ""),
                  _usd(line["count"] * line["hardware_usd_each"]))
    for k, v in r["capex_items_usd"].items():
        t.add_row(f"capex: {k}", _usd(v))
    t.add_row("[bold]capex[/bold]", f"[bold]{_usd(r['capex_usd'])}[/bold]")
    for k, v in r["opex_items_usd_per_year"].items():
        extra = f" ({r['staff_fte']:.2f} FTE)" if k == "staff" else ""
        t.add_row(f"opex/year: {k}{extra}", _usd(v))
    t.add_row("[bold]opex per year[/bold]", f"[bold]{_usd(r['opex_usd_per_year'])}[/bold]")
    t.add_row(f"resale value ({r['residual_value_pct']:.1f} % at {r['horizon_years']:g} years), subtracted",
              "−" + _usd(r["residual_value_usd"]))
    t.add_row("[bold]TCO[/bold]", f"[bold]{_usd(r['tco_usd'])}[/bold]")
    t.add_row("NPV", _usd(r["npv_usd"]))
    t.add_row("per 1M tokens", f"${r['cost_per_million_tokens_usd']:,.3f}")
    con.print(t)
    for lic in r["licences"]:
        con.print(f"Licence {lic['name']} ({lic['why']}): ${lic['usd_per_year']:,.0f}/{lic['basis'].split('_')[1]}"
                  f"/year × {lic['units']:g}, {lic['bundled_years']:g} year(s) included, {lic['paid_years']:g} paid")
    con.print(f"Energy {r['energy_kwh_per_year']:,.0f} kWh/year ({r['energy_kwh_per_million_tokens']:.3f} kWh per "
              f"1M tokens), {r['emissions_kg_per_year']:,.0f} kg CO2e/year")
    print_compare(r, header=False)


def print_compare(r: dict[str, Any], header: bool = True) -> None:
    from rich.table import Table

    con = render.console()
    if header:
        d = r["deployment"]
        con.print(f"[bold]{d['model']}[/bold]: {r['workload']['requests_per_day']:,.0f} requests/day on "
                  f"{days_text(r['workload']['days_per_year'])} over "
                  f"{r['horizon_years']:g} years")
    t = Table(title="Alternatives", title_justify="left")
    for col in ("option", "TCO", "per 1M tokens", "break-even month"):
        t.add_column(col, justify="left" if col == "option" else "right")
    t.add_row("[bold]own (on-premise)[/bold]", _usd(r["tco_usd"]), f"${r['cost_per_million_tokens_usd']:,.3f}", "")
    for a in sorted(r["alternatives"], key=lambda a: a["tco_usd"]):
        be = "never" if a["breakeven_month"] is None else str(a["breakeven_month"])
        t.add_row(a["name"], _usd(a["tco_usd"]), f"${a['cost_per_million_tokens_usd']:,.3f}", be)
    con.print(t)
    h = r.get("hybrid")
    if h:
        con.print(
            f"Hybrid optimum: own {h['owned_replicas']} of {h['all_owned_replicas']} replica(s), the rest via "
            f"{h['peaks_via']}: {_usd(h['tco_usd'])} (owned {_usd(h['owned_usd'])}, burst {_usd(h['burst_usd'])})"
        )
    u = r.get("uncertainty")
    if u:
        p = u["tco_usd"]
        con.print(f"TCO P10/P50/P90: {_usd(p['p10'])} / {_usd(p['p50'])} / {_usd(p['p90'])} ({u['draws']:,} draws)")
        note = point_vs_range(r["tco_usd"], p, r.get("sensitivity") or [])
        if note:
            con.print(f"[dim]{note}[/dim]")
        if "breakeven_month" in u:
            con.print(breakeven_line(u))
    s = r.get("sensitivity")
    if s:
        top = ", ".join(f"{x['assumption']} ±{x['swing_pct_of_tco'] / 2:.0f} %" for x in s[:4])
        con.print(f"[dim]Most sensitive assumptions: {top}[/dim]")
    for n in r.get("notes", []):
        con.print(f"  [dim]• {n}[/dim]")


def _month(m: float | None) -> str:
    return "never within the horizon" if m is None else f"month {m:,.0f}"


def breakeven_line(u: dict[str, Any]) -> str:
    """The break-even month's P10/P50/P90; a draw that never breaks even within the horizon says so."""
    b = u["breakeven_month"]
    share = u.get("breakeven_within_horizon_pct")
    ps = [b["p10"], b["p50"], b["p90"]]
    if all(m is None for m in ps):
        return f"Break-even vs {b['against']}: never within the horizon (P10, P50 and P90 of the draws)" + \
            (f"; {share:.0f} % of draws break even" if share else "")
    return (f"Break-even vs {b['against']}: P10 {_month(ps[0])}, P50 {_month(ps[1])}, P90 {_month(ps[2])}"
            + (f" ({share:.0f} % of draws break even within the horizon)" if share is not None else ""))


def point_vs_range(point: float, p: dict[str, float | None], sensitivity: list[dict[str, Any]]) -> str:
    """Why the point TCO (every input at its catalog value) can sit away from the Monte Carlo median,
    or outside its P10–P90: the draws come from each input's (low, value, high) range, and ranges with
    more room on one side move the draws that way. Empty when the point is within 5 % of the median."""
    lo, mid, hi = p.get("p10"), p.get("p50"), p.get("p90")
    if lo is None or mid is None or hi is None or abs(mid - point) <= 0.05 * abs(point):
        return ""
    where = ("below the P10" if point < lo else "above the P90" if point > hi
             else f"{'below' if point < mid else 'above'} the median")
    up = point < mid
    skewed = [x for x in sensitivity if ((x["high"] - x["value"]) - (x["value"] - x["low"])) * (1 if up else -1) > 0]
    ex = ", ".join(f"{x['assumption']} {x['value']:g} in {x['low']:g}–{x['high']:g}" for x in skewed[:3])
    toward, away = ("up", "down") if up else ("down", "up")
    return (f"The point TCO ({_usd(point)}) lies {where}: it takes each assumption at its catalog value, the draws "
            f"take their ranges, and {len(skewed)} of {len(sensitivity)} ranges reach further {toward} than {away}"
            + (f" ({ex})." if ex else "."))
