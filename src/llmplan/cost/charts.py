"""Cumulative cost over the horizon as a chart (:mod:`llmplan.charts`, one library for every chart):
a standalone HTML page (interactive, works offline), an SVG or a PNG rendered in-process."""

from __future__ import annotations

from typing import Any

from .. import charts
from ..errors import LlmplanError


def series(result: dict[str, Any]) -> tuple[list[int], dict[str, list[float]], dict[str, float]]:
    months = list(range(len(result["cumulative_usd_by_month"])))
    lines = {"own (on-premise)": result["cumulative_usd_by_month"]}
    markers = {}
    for a in result["alternatives"]:
        lines[a["name"]] = a["cumulative_usd_by_month"]
        if a["breakeven_month"] is not None:
            markers[f"break-even vs {a['name']}: month {a['breakeven_month']}"] = a["breakeven_month"]
    return months, lines, markers


def spec(result: dict[str, Any]) -> charts.Spec:
    months, lines, markers = series(result)
    return charts.line(months, lines, title=f"Cumulative cost over {result['horizon_years']:g} years",
                       x_title="month", y_title="cumulative cost (USD)", y_format=charts.USD_AXIS,
                       tip_format=charts.USD_TIP, x_format="d", integer_x=True, markers=markers, height=360,
                       subtitle="owning: purchase up front, then running costs; renting and APIs: monthly spend")


def render(path_suffix: str, result: dict[str, Any]) -> bytes | str:
    """The cumulative-cost chart in the format a file suffix asks for (.png, .svg or .html)."""
    s = spec(result)
    suffix = path_suffix.lower()
    if suffix == ".png":
        return charts.png(s)
    if suffix == ".svg":
        return charts.svg(s)
    if suffix == ".html":
        return charts.page("llmplan: cost of owning vs renting vs APIs", [s])
    raise LlmplanError("--chart writes .png, .html or .svg")
