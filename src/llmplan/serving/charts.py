"""Simulation time series as charts (:mod:`llmplan.charts`): latency, queue and utilisation over
time, for `llmplan simulate --plot` (.html: interactive and offline; .svg: the first chart)."""

from __future__ import annotations

from typing import Any

from .. import charts


def specs(result: dict[str, Any]) -> list[charts.Spec]:
    s = result["series"]
    hours = [t / 3600 for t in s["t_s"]]

    def chart(lines: dict[str, Any], title: str, y_title: str, y_format: str = ",.3~s") -> charts.Spec:
        return charts.line(hours, lines, title=title, x_title="time (hours)", y_title=y_title, y_format=y_format,
                           x_format=",.2~f")

    return [chart({"TTFT p50": s["ttft_ms_p50"], "TTFT p95": s["ttft_ms_p95"]},
                  "Time to first token (requests arriving in each interval)", "TTFT (ms)", ",.0f"),
            chart({"TPOT p50": s["tpot_ms_p50"], "TPOT p95": s["tpot_ms_p95"]}, "Time per output token",
                  "TPOT (ms)", ",.1f"),
            chart({"queue": s["queue"], "running": s["running"]}, "Requests waiting and running", "requests", ",.0f"),
            chart({"KV cache used": s["kv_util"], "GPU busy": s["busy"]}, "Utilisation", "share of capacity", ".0%")]


def document(result: dict[str, Any], suffix: str) -> str:
    """The --plot file: every chart on one HTML page, or the first chart as SVG."""
    all_specs = specs(result)
    if suffix == ".html":
        return charts.page("llmplan simulation", all_specs)
    return charts.svg(all_specs[0])
