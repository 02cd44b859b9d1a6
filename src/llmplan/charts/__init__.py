"""Charts: Vega-Lite specifications, rendered by one bundled library everywhere.

The library is Vega / Vega-Lite as the `vl-convert-python` package ships it: the same JavaScript
draws the interactive chart in the web app and in the self-contained HTML report (hover for
values, zoom, export as SVG/PNG), and renders the static SVG/PNG in-process, without a browser
or the network, for the PDF, the CLI's --chart/--plot files and pages without scripts. A chart is
a figure holding its static SVG and its spec as JSON; `charts.js` replaces the SVG with the live
view of the same spec (same renderer, so they look the same).

Builders (`line`, `bars`, `scatter`) take plain data and return specs with titled axes that name
their units; `svg`, `png` and `figure` render them.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

Spec = dict[str, Any]

WIDTH = 640
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
CONFIG: Spec = {
    "font": "DejaVu Sans, Verdana, sans-serif",
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "labelLimit": 0, "gridColor": "#eee"},
    "legend": {"orient": "bottom", "labelLimit": 0, "columns": 2, "labelFontSize": 11, "titleFontSize": 11},
    "title": {"anchor": "start", "fontSize": 14, "subtitleFontSize": 11, "subtitleColor": "#555"},
    "view": {"stroke": None},
    "range": {"category": COLOURS},
}
USD_AXIS = "$,.3~s"  # $48.2k, $1.25M: three significant digits, SI suffix
USD_TIP = "$,.0f"
EMBED_OPTIONS: Spec = {"renderer": "svg", "ast": True,  # ast + interpreter: no eval, the page's CSP holds
                       "actions": {"export": True, "source": False, "compiled": False, "editor": False}}
_LOCK = threading.Lock()


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _base(title: str, subtitle: str | None, data: list[dict[str, Any]], height: int) -> Spec:
    t: Spec = {"text": title}
    if subtitle:
        t["subtitle"] = subtitle
    return {"title": t, "width": WIDTH, "height": height, "data": {"values": data}, "config": CONFIG}


def line(x: Sequence[float], series: Mapping[str, Sequence[float | None]], *, title: str, x_title: str,
         y_title: str, y_format: str = ",.3~s", x_format: str = ",.3~r", tip_format: str | None = None,
         markers: dict[str, float] | None = None, subtitle: str | None = None, integer_x: bool = False,
         height: int = 280) -> Spec:
    """Lines over a shared x; a series with no finite value is left out (so is its legend entry).
    `markers`: labelled vertical rules (e.g. break-even months). Drag or scroll to zoom."""
    rows = [{"x": a, "y": b, "series": name} for name, ys in series.items()
            for a, b in zip(x, ys, strict=False) if _finite(b)]
    order = [name for name, ys in series.items() if any(_finite(b) for b in ys)]
    spec = _base(title, subtitle, rows, height)
    xaxis: Spec = {"title": x_title, "format": x_format}
    if integer_x:
        xaxis["tickMinStep"] = 1
    tip = [{"field": "series", "title": "series"}, {"field": "x", "title": x_title, "format": x_format},
           {"field": "y", "title": y_title, "format": tip_format or y_format}]
    spec["layer"] = [{
        "mark": {"type": "line", "point": {"size": 18, "filled": True}, "strokeWidth": 2, "tooltip": True},
        "params": [{"name": "zoom", "select": "interval", "bind": "scales"}],
        "encoding": {"x": {"field": "x", "type": "quantitative", "axis": xaxis, "scale": {"nice": False}},
                     "y": {"field": "y", "type": "quantitative", "axis": {"title": y_title, "format": y_format}},
                     "color": {"field": "series", "type": "nominal", "title": None, "sort": order},
                     "tooltip": tip}}]
    if markers:
        spec["layer"] += _marker_layers(markers, x_title, x_format)
    return spec


def _marker_layers(markers: dict[str, float], x_title: str, x_format: str) -> list[Spec]:
    data = {"values": [{"x": v, "label": k, "row": i} for i, (k, v) in enumerate(markers.items())]}
    x = {"field": "x", "type": "quantitative"}
    return [{"data": data, "mark": {"type": "rule", "strokeDash": [4, 3], "color": "#555", "tooltip": True},
             "encoding": {"x": x, "tooltip": [{"field": "label", "title": "marker"},
                                              {"field": "x", "title": x_title, "format": x_format}]}},
            {"data": data, "mark": {"type": "text", "align": "left", "dx": 4, "baseline": "top", "fontSize": 10,
                                    "color": "#333"},
             "encoding": {"x": x, "y": {"value": 4}, "yOffset": {"field": "row", "type": "quantitative",
                                                                 "scale": {"range": [0, 14]}, "legend": None},
                          "text": {"field": "label"}}}]


def bars(values: dict[str, float], *, title: str, x_title: str, x_format: str = ",.0f",
         subtitle: str | None = None, colour_by: dict[str, str] | None = None) -> Spec:
    """Horizontal bars, one per (unique, untruncated) label, largest first, each with its value."""
    rows = [{"label": k, "value": v, "group": (colour_by or {}).get(k, "")} for k, v in values.items() if _finite(v)]
    spec = _base(title, subtitle, rows, max(60, 24 * len(rows)))
    enc: Spec = {"y": {"field": "label", "type": "nominal", "sort": "-x", "axis": {"title": None}},
                 "x": {"field": "value", "type": "quantitative", "axis": {"title": x_title, "format": x_format}},
                 "tooltip": [{"field": "label", "title": "option"},
                             {"field": "value", "title": x_title, "format": x_format}]}
    if colour_by:
        enc["color"] = {"field": "group", "type": "nominal", "title": None}
    spec["encoding"] = enc
    spec["layer"] = [{"mark": {"type": "bar", "tooltip": True, **({} if colour_by else {"color": COLOURS[0]})}},
                     {"mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 10},
                      "encoding": {"text": {"field": "value", "type": "quantitative", "format": x_format},
                                   "color": {"value": "#222"}}}]
    return spec


def scatter(points: list[dict[str, Any]], *, title: str, x: tuple[str, str, str], y: tuple[str, str, str],
            colour: tuple[str, str], size: tuple[str, str] | None = None, ring: str | None = None,
            tooltip: list[tuple[str, str, str | None]], subtitle: str | None = None, log: bool = False) -> Spec:
    """Points; `x`/`y`: (field, axis title with unit, format); `colour`/`size`: (field, legend title);
    `ring`: a boolean field drawn with a black outline; `tooltip`: (field, title, format) on hover."""
    spec = _base(title, subtitle, points, 320)
    scale = {"type": "log"} if log else {"zero": False}
    enc: Spec = {
        "x": {"field": x[0], "type": "quantitative", "axis": {"title": x[1], "format": x[2]}, "scale": scale},
        "y": {"field": y[0], "type": "quantitative", "axis": {"title": y[1], "format": y[2]}, "scale": scale},
        "color": {"field": colour[0], "type": "nominal", "title": colour[1]},
        "tooltip": [{"field": f, "title": t, **({"format": fmt} if fmt else {})} for f, t, fmt in tooltip]}
    if size:
        enc["size"] = {
            "field": size[0],
            "type": "quantitative",
            "title": size[1],
            "scale": {"range": [20, 160], "zero": False},
        }
    if ring:
        enc["stroke"] = {"condition": {"test": f"datum['{ring}']", "value": "black"}, "value": None}
        enc["strokeWidth"] = {"condition": {"test": f"datum['{ring}']", "value": 1.5}, "value": 0}
    spec["mark"] = {"type": "circle", "opacity": 0.7, "tooltip": True}
    spec["params"] = [{"name": "zoom", "select": "interval", "bind": "scales"}]
    spec["encoding"] = enc
    return spec


# ------------------------------------------------------------------------------------ rendering


@lru_cache(maxsize=1)
def vl_version() -> str:
    """The Vega-Lite version the bundled library renders with (the newest it ships)."""
    import vl_convert

    return vl_convert.get_vegalite_versions()[-1]


def warm() -> None:
    """Start the in-process renderer (its first chart costs ~0.4 s of CPU; later ones ~40 ms)."""
    svg({"mark": "point", "data": {"values": [{"a": 1}]}, "encoding": {"x": {"field": "a", "type": "quantitative"}}})


def svg(spec: Spec) -> str:
    """The static SVG of `spec`, rendered in-process (no browser, no network)."""
    import vl_convert

    with _LOCK:
        return vl_convert.vegalite_to_svg(spec, vl_version=vl_version(), allowed_base_urls=[])


def png(spec: Spec, scale: float = 2.0) -> bytes:
    import vl_convert

    with _LOCK:
        return vl_convert.vegalite_to_png(spec, vl_version=vl_version(), scale=scale, allowed_base_urls=[])


def spec_json(spec: Spec) -> str:
    """The spec as JSON safe inside a <script type="application/json"> element."""
    return json.dumps(spec, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")


def figure(spec: Spec, static: bool = True) -> str:
    """A chart in a page: its static SVG (what the PDF prints and a page without scripts shows) and
    its spec, which charts.js turns into the live view."""
    title = spec.get("title", {}).get("text", "chart")
    body = svg(spec) if static else ""
    return (f"<figure class='llmplan-chart' role='img' aria-label='{escape(title, quote=True)}'>"
            f"<div class='chart-view'>{body}</div>"
            f"<script type='application/json' class='chart-spec'>{spec_json(spec)}</script></figure>")


STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
LINKED = "<script src='/vendor/vega.js'></script><script src='/static/charts.js'></script>"


def _cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("LLMPLAN_CACHE_DIR") or platformdirs.user_cache_dir("llmplan"))


@lru_cache(maxsize=1)
def library_js() -> str:
    """Vega, Vega-Lite and Vega-Embed as one script, from the installed vl-convert package (built
    once, ~1.5 s, then kept in the user cache directory under the package's version)."""
    import vl_convert

    # vl_convert's bundled stub omits __version__, which the module has at run time
    path = _cache_dir() / f"vega-bundle-{vl_convert.__version__}-{vl_version()}.js"  # type: ignore[attr-defined]
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    with _LOCK:
        # the stub marks `snippet` required; at run time it defaults to the snippet that assigns the globals
        text = vl_convert.javascript_bundle(vl_version=vl_version())  # type: ignore[call-arg]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: built again next time
    return text


def loader_js() -> str:
    return (STATIC / "charts.js").read_text(encoding="utf-8")


def scripts(inline: bool) -> str:
    """The scripts that make the figures live: linked from the app, or inline in a standalone file."""
    if not inline:
        return LINKED
    lib = library_js().replace("</script", "<\\/script")
    return f"<script>{lib}</script><script>{loader_js()}</script>"


def standalone(page: str) -> str:
    """A page made by the app (scripts linked) as one self-contained file (scripts inline)."""
    return page.replace(LINKED, scripts(inline=True), 1) if LINKED in page else page


def page(title: str, specs: list[Spec], inline: bool = True) -> str:
    """A standalone HTML page of charts (the CLI's --chart / --plot .html)."""
    figs = "\n".join(figure(s) for s in specs)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{figs}{scripts(inline)}</body></html>\n")


FIGURE_CSS = ("figure.llmplan-chart{margin:1em 0}figure.llmplan-chart svg{display:block;max-width:100%;height:auto}"
              "#vg-tooltip-element{font-family:sans-serif;font-size:12px}")
CSS = "body{font-family:sans-serif;max-width:980px;margin:1em auto;padding:0 1em}" + FIGURE_CSS
