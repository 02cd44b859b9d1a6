"""Charts: Vega-Lite specs with titled axes and units, rendered in-process by the bundled library
(static SVG/PNG, no network), embedded so a page can make them live."""

from __future__ import annotations

import json
import re

from llmplan import charts


def test_line_leaves_out_series_without_values_and_titles_axes_with_units():
    spec = charts.line([0, 1, 2], {"own": [100.0, 150.0, 200.0], "api": [None, None, None]}, title="Cumulative cost",
                       x_title="month", y_title="cumulative cost (USD)", y_format=charts.USD_AXIS, x_format="d",
                       integer_x=True, markers={"break-even: month 1": 1})
    rows = spec["layer"][0]["encoding"], spec["data"]["values"]
    assert {r["series"] for r in rows[1]} == {"own"}  # nothing drawn for "api": no legend entry either
    assert rows[0]["color"]["sort"] == ["own"]
    svg = charts.svg(spec)
    assert ">month<" in svg and ">cumulative cost (USD)<" in svg and "break-even: month 1" in svg
    assert "e+" not in svg and ">$200<" in svg  # money written as money, never 2e+02
    ticks = re.findall(r">(\d+)</text>", svg)
    assert set(ticks) <= {"0", "1", "2"}  # whole months only


def test_bars_keep_every_label_whole():
    labels = {f"on prem: Qwen2.5-72B-Instruct fp8 4 × h100-sxm variant {i}": 1000.0 * i for i in range(1, 4)}
    svg = charts.svg(charts.bars(labels, title="TCO", x_title="TCO (USD)", x_format="$,.0f"))
    for label in labels:
        assert label.replace("×", "&#215;") in svg or label in svg  # no truncation into identical rows


def test_figure_embeds_the_spec_safely_and_the_static_svg():
    spec = charts.bars({"</script><script>alert(1)</script>": 1.0}, title="x", x_title="n")
    html = charts.figure(spec)
    assert html.count("</script>") == 1  # the label cannot close the JSON holder
    holder = html.split("class='chart-spec'>", 1)[1].rsplit("</script>", 1)[0]
    assert json.loads(holder)["data"]["values"][0]["label"].startswith("</script>")
    assert "<svg" in html


def test_png_and_standalone_page_work_offline():
    spec = charts.line([0, 1], {"a": [1.0, 2.0]}, title="t", x_title="x", y_title="y (ms)")
    assert charts.png(spec)[:8] == b"\x89PNG\r\n\x1a\n"
    page = charts.page("t", [spec])
    assert "<script src" not in page and "window.vegaEmbed" in page
    assert charts.standalone(f"<p>{charts.LINKED}</p>").count("window.vegaEmbed") == 1
