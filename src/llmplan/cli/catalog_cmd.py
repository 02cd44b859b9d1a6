"""`llmplan catalog …` and `llmplan show ID`: browse the catalog with every fact's source."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..errors import LlmplanError, UnknownIdError
from ..units import fmt_count
from . import render
from .lazy import load_catalog, normalize_name

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..catalog.schema import Entry

LISTS = {
    "gpus": ("accelerators",),
    "models": ("models",),
    "formats": ("quant_formats", "kv_formats"),
    "engines": ("engines",),
    "servers": ("servers",),
    "gguf-types": ("gguf_types",),
    "workloads": ("workload_presets",),
    "cloud-offers": ("cloud_offers",),
    "api-prices": ("api_prices",),
    "regions": ("regions",),
    "cost-assumptions": ("cost_assumptions",),
    "providers": ("providers",),
    "calibrations": ("calibrations",),
    "quality": ("model_quality",),
    "benchmarks": ("benchmarks",),
    "collectives": ("collectives",),
    "kernels": ("kernels",),
}
KIND_LABEL = {"quant_formats": "weights", "kv_formats": "kv_cache"}


def _words(e: Entry) -> list[str]:
    return [e.id, e.name or "", *e.aliases] + [str(getattr(e, f, "") or "") for f in
                                               ("vendor", "family", "organization", "kind", "architecture")]


def _matches(e: Entry, needle: str) -> bool:
    if not needle:
        return True
    hay = _words(e)
    n = needle.lower()
    return any(n in h.lower() for h in hay) or normalize_name(needle) in normalize_name(" ".join(hay))


def entries(cat: Catalog, what: str, needle: str = "") -> list[tuple[str, Entry]]:
    rows = [(kind, e) for kind in LISTS[what] for e in getattr(cat, kind) if _matches(e, needle)]
    if needle and not rows:
        import difflib

        vocab = {w.lower(): w for kind in LISTS[what] for e in getattr(cat, kind) for h in _words(e)
                 for w in (h, *h.split()) if w}
        near = [vocab[w] for w in difflib.get_close_matches(needle.lower(), sorted(vocab), n=3, cutoff=0.6)]
        hint = f"; did you mean {' or '.join(repr(w) for w in near)}?" if near else f"; list them all with " \
            f"`llmplan catalog {what}`"
        raise LlmplanError(f"no {what} entry matches --filter {needle!r}{hint}")
    return rows


def _dump(kind: str, e: Entry) -> dict[str, Any]:
    d = e.model_dump(mode="json")
    d["aliases"] = list(e.aliases) + [c.id for c in getattr(e, "checkpoints", ())]
    if kind in KIND_LABEL:
        d["type"] = KIND_LABEL[kind]
    return d


def register(app: typer.Typer) -> None:
    @app.command("catalog")
    def catalog_command(
        what: str = typer.Argument(
            ...,
            help="gpus | models | formats | engines | servers | gguf-types | workloads "
            "| calibrations | cloud-offers | api-prices | regions | cost-assumptions "
            "| providers | quality | benchmarks | collectives | kernels, or import-prices FILE",
        ),
        file: Path | None = typer.Argument(
            None, help="With import-prices: a gpuhunt catalog CSV or litellm model_prices_and_context_window.json."
        ),
        filter_: str = typer.Option(
            "", "--filter", "-f", help="Keep entries whose id, alias, name, vendor or family contains TEXT."
        ),
        catalog: list[Path] = typer.Option([], "--catalog", help="Directory of override YAML files."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
        fmt: str = typer.Option(
            "", "--format", help="import-prices: gpuhunt | litellm (default: from the file's extension, .csv or .json)."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="import-prices: directory to write the override file into (use it with --catalog DIR)."
        ),
        as_of: str | None = typer.Option(
            None, "--as-of", help="import-prices: date of the prices (default: the file's modification date)."
        ),
        provider: str | None = typer.Option(
            None, "--provider", help="import-prices (gpuhunt): provider name (default: the file name, e.g. aws.csv)."
        ),
    ) -> None:
        """List catalog entries (each with its source and date), or import a newer price list offline."""
        if what == "import-prices":
            _import_prices(load_catalog(catalog), file, fmt, out, as_of, provider)
            return
        if file is not None:
            raise LlmplanError(f"unexpected argument {str(file)!r}: only import-prices takes a FILE")
        if what not in LISTS:
            raise LlmplanError(f"unknown list {what!r}; choose one of: {', '.join(LISTS)}, import-prices")
        rows = entries(load_catalog(catalog), what, filter_)
        if as_json:
            render.print_json([_dump(k, e) for k, e in rows])
            return
        _table(what, rows)

    @app.command("show")
    def show_command(
        name: str = typer.Argument(..., help="Any catalog id or alias (model, GPU, format, engine, server)."),
        catalog: list[Path] = typer.Option([], "--catalog", help="Directory of override YAML files."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Every field of one entry, with its source."""
        cat = load_catalog(catalog)
        kind, entry = find_any(cat, name)
        data = _dump(kind, entry)
        data["kind"] = kind
        if kind == "models":
            from ..memory.params import active_param_count, param_count

            data["computed_params"] = param_count(entry)  # type: ignore[arg-type]
            data["computed_active_params"] = active_param_count(entry)  # type: ignore[arg-type]
        if as_json:
            render.print_json(data)
            return
        _show(data)


def _import_prices(cat: Catalog, file: Path | None, fmt: str, out: Path | None, as_of: str | None,
                   provider: str | None) -> None:
    from ..catalog.prices_import import run_import, summary, write_override

    if file is None or out is None:
        raise LlmplanError("usage: llmplan catalog import-prices FILE --out DIR [--format gpuhunt|litellm] "
                           "[--as-of YYYY-MM-DD] [--provider NAME]")
    if not fmt:
        fmt = {".csv": "gpuhunt", ".json": "litellm"}.get(file.suffix.lower(), "")
        if not fmt:
            raise LlmplanError(f"{file}: cannot tell the format from the extension; pass --format gpuhunt|litellm")
    if out.exists() and not out.is_dir():
        raise LlmplanError(f"--out {str(out)!r} exists and is not a directory")
    res = run_import(cat, file, fmt, as_of, provider)
    target = write_override(res, out)
    for line in summary(res):
        render.console().print(line)
    render.console().print(f"wrote {target} (use it with --catalog {out})")


def find_any(cat: Catalog, name: str) -> tuple[str, Entry]:
    order = ("models", "accelerators", "quant_formats", "kv_formats", "engines", "servers", "gguf_types",
             "workload_presets", "calibrations", "cloud_offers", "api_prices", "regions", "cost_assumptions",
             "providers", "collectives", "kernels")
    for kind in order:
        found = getattr(cat, kind).find(name)
        if found is not None:
            return kind, found
    suggestions: list[str] = []
    for kind in order:
        suggestions += getattr(cat, kind).suggest(name, 2)
    raise UnknownIdError("catalog entry", name, suggestions[:4])


def _show(data: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(show_header=False, title=f"{data['id']} ({data['kind']})", title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in data.items():
        if v in (None, [], (), "") or k in ("id", "kind"):
            continue
        t.add_row(k, _fmt(v))
    render.console().print(t)


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items() if x not in (None, [], ""))
    if isinstance(v, list):
        return "; ".join(_fmt(x) for x in v)
    if isinstance(v, float) and v >= 1e6:
        return fmt_count(v)
    return str(v)


def _score(e: Any, bench: str) -> str:
    sc = e.scores.get(bench)
    return "" if sc is None else f"{sc.value:g}"


_COLUMNS: dict[str, list[tuple[str, Any]]] = {
    "accelerators": [
        ("id", lambda e: e.id),
        ("vendor", lambda e: e.vendor),
        ("memory GiB", lambda e: f"{e.memory_gib:g}"),
        ("GB/s", lambda e: f"{e.memory_bandwidth_gb_s:,.0f}"),
        ("bf16 TFLOP/s", lambda e: _num(e.dense_tflops.bf16 or e.dense_tflops.fp16)),
        ("fp8", lambda e: _num(e.dense_tflops.fp8)),
        ("TDP W", lambda e: _num(e.tdp_w)),
        ("link", lambda e: e.interconnect.kind),
        ("price $", lambda e: _num(e.price.usd if e.price else None)),
        ("as of", lambda e: e.as_of),
    ],
    "models": [
        ("id", lambda e: e.id),
        ("params", lambda e: fmt_count(e.total_params)),
        ("active", lambda e: fmt_count(e.active_params) if e.active_params else ""),
        ("layers", lambda e: str(e.num_layers)),
        ("kv heads", lambda e: "MLA" if e.mla else str(e.num_kv_heads)),
        ("context", lambda e: f"{e.max_context:,}"),
        ("licence", lambda e: e.license_class),
        ("org", lambda e: f"{e.organization} ({e.country})"),
    ],
    "quant_formats": [
        ("id", lambda e: e.id),
        ("type", lambda e: "weights"),
        ("bits", lambda e: f"{e.weight_bits:g}" if e.weight_bits else f"gguf {e.gguf_type}"),
        ("compute", lambda e: e.compute_dtype),
        ("engines", lambda e: ", ".join(e.engines)),
    ],
    "kv_formats": [
        ("id", lambda e: e.id),
        ("type", lambda e: "kv cache"),
        ("bits", lambda e: f"{e.bits:g}"),
        ("compute", lambda e: ""),
        ("engines", lambda e: ", ".join(e.engines)),
    ],
    "engines": [
        ("id", lambda e: e.id),
        ("kind", lambda e: e.kind),
        ("parallelism", lambda e: ", ".join(e.parallelism)),
        ("memory cap", lambda e: f"{e.memory.cap_mode} {e.memory.memory_fraction or ''}"),
        ("block", lambda e: str(e.memory.block_size_tokens)),
        ("version", lambda e: e.version or ""),
    ],
    "servers": [
        ("id", lambda e: e.id),
        ("kind", lambda e: f"{e.kind}, {e.facility}"),
        ("accelerators", lambda e: f"{'1–' if len(e.counts) > 1 else ''}{e.max_gpus} × {e.accelerator}"),
        ("host $", lambda e: _num(e.host.cost_usd) if e.host else "all-in"),
        ("host W", lambda e: _num(e.host.power_w) if e.host else f"{_num(e.max_power_w)} all-in"),
        ("U", lambda e: _num(e.rack_units)),
    ],
    "workload_presets": [
        ("id", lambda e: e.id),
        ("name", lambda e: e.name or ""),
        (
            "input mean/p95",
            lambda e: f"{e.input_mean:,.0f} / {e.input_p95 or e.input_mean:,.0f}" if e.input_mean else "",
        ),
        (
            "output mean/p95",
            lambda e: f"{e.output_mean:,.0f} / {e.output_p95 or e.output_mean:,.0f}" if e.output_mean else "",
        ),
        ("profile", lambda e: e.profile or ("24 weights" if e.hourly_weights else "")),
    ],
    "cloud_offers": [
        ("id", lambda e: e.id),
        ("provider", lambda e: f"{e.provider} ({e.provider_country})"),
        ("region", lambda e: f"{e.region} ({e.region_country})"),
        ("GPU", lambda e: f"{e.gpus_per_instance} × {e.accelerator}"),
        ("$/GPU-h on-demand", lambda e: _num(e.usd_per_gpu_hour_on_demand)),
        ("1y", lambda e: _num(e.usd_per_gpu_hour_1y)),
        ("3y", lambda e: _num(e.usd_per_gpu_hour_3y)),
        ("spot", lambda e: _num(e.usd_per_gpu_hour_spot)),
        ("sovereign", lambda e: "yes" if e.sovereign else ""),
        ("as of", lambda e: e.as_of),
    ],
    "api_prices": [
        ("id", lambda e: e.id),
        ("provider", lambda e: f"{e.provider} ({e.provider_country})"),
        ("model", lambda e: e.model),
        ("weights", lambda e: e.weights),
        ("$ in/1M", lambda e: f"{e.input_usd_per_mtok:g}"),
        ("$ out/1M", lambda e: f"{e.output_usd_per_mtok:g}"),
        ("data", lambda e: ", ".join(e.data_regions)),
        ("as of", lambda e: e.as_of),
    ],
    "regions": [
        ("id", lambda e: e.id),
        ("name", lambda e: e.name or ""),
        ("$/kWh", lambda e: f"{e.electricity_usd_per_kwh:.4f}" + (" est." if e.electricity_estimate else "")),
        ("g CO2/kWh", lambda e: f"{e.carbon_g_per_kwh:g}"),
        ("PUE", lambda e: f"{e.pue:g}"),
        ("colo $/kW-mo", lambda e: _num(e.colocation_usd_per_kw_month)),
        ("as of", lambda e: e.as_of),
    ],
    "providers": [
        ("id", lambda e: e.id),
        ("name", lambda e: e.name or ""),
        ("country", lambda e: e.country),
        ("sovereign", lambda e: "yes" if e.sovereign else ""),
        ("gpuhunt", lambda e: ", ".join(e.gpuhunt_names)),
        ("litellm", lambda e: ", ".join(e.litellm_names)),
        ("locations", lambda e: str(len(e.locations))),
        ("as of", lambda e: e.as_of),
    ],
    "cost_assumptions": [
        ("id", lambda e: e.id),
        ("value", lambda e: f"{e.value:g}"),
        ("range", lambda e: f"{e.low:g} – {e.high:g}"),
        ("unit", lambda e: e.unit),
        ("as of", lambda e: e.as_of),
    ],
    "calibrations": [
        ("id", lambda e: e.id),
        ("rows", lambda e: str(e.n_rows)),
        ("η bw", lambda e: f"{e.eta_bw:.2f}"),
        ("η flops", lambda e: f"{e.eta_flops:.2f}"),
        ("step ms", lambda e: f"{1e3 * e.step_overhead_s:.2f}"),
        ("act passes", lambda e: f"{e.activation_passes:.1f}"),
        ("fit MdAPE %", lambda e: f"{e.mdape_pct:.1f}"),
    ],
    "model_quality": [
        ("model", lambda e: e.id),
        *[(b, partial(_score, bench=b)) for b in ("mmlu_pro", "gpqa", "arena_text", "humaneval_plus")],
        ("as of", lambda e: e.as_of),
    ],
    "benchmarks": [
        ("id", lambda e: e.id),
        ("task", lambda e: e.task),
        ("scale", lambda e: e.scale),
        ("resolution", lambda e: f"{e.resolution:g}"),
        ("harness", lambda e: e.harness.split(":")[0]),
        ("as of", lambda e: e.as_of),
    ],
    "collectives": [
        ("id", lambda e: e.id),
        ("fabric", lambda e: e.interconnect),
        ("library", lambda e: e.library),
        ("GPUs", lambda e: str(e.gpus)),
        ("latency µs", lambda e: f"{e.latency_us:g}"),
        ("busbw GB/s", lambda e: f"{e.bus_bandwidth_gb_s:g}"),
        ("estimate", lambda e: "yes" if e.estimate else ""),
        ("as of", lambda e: e.as_of),
    ],
    "kernels": [
        ("id", lambda e: e.id),
        ("engines", lambda e: ", ".join(e.engines) or "any"),
        ("families", lambda e: ", ".join(e.families) or "any"),
        ("prefill ratio", lambda e: f"{e.prefill_compute_ratio:g}"),
        ("estimate", lambda e: f"{e.low:g}–{e.high:g}" if e.estimate else ""),
        ("as of", lambda e: e.as_of),
    ],
    "gguf_types": [
        ("id", lambda e: e.id),
        ("block", lambda e: str(e.block_size)),
        ("bytes", lambda e: str(e.type_size_bytes)),
        ("bits/weight", lambda e: f"{e.bits_per_weight:.4g}"),
    ],
}


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:g}"


def _table(what: str, rows: list[tuple[str, Entry]]) -> None:
    from rich.table import Table

    kinds = LISTS[what]
    cols = _COLUMNS[kinds[0]]
    t = Table(title=f"{len(rows)} {what}", title_justify="left")
    for i, (name, _) in enumerate(cols):
        t.add_column(name, no_wrap=i == 0, overflow="fold")
    for kind, e in rows:
        t.add_row(*[f(e) for _, f in _COLUMNS[kind]])
    render.console().print(t)
