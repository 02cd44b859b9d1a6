"""`llmplan calibrate`: fit on the development data (all levels), or adjust the bundled
calibration with a user's own measurements (CSV rows or `vllm bench serve` JSON results)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import load_catalog
from ..errors import LlmplanError
from .accuracy import interval_scales
from .calibrate import calibration_entries, fit_all, write_calibration
from .cases import bench_files, read_cases
from .efficiency import Key, lookup, table_from_catalog
from .intervals import entry_scale, level_name, scale_for

VLLM_METRICS = {"mean_ttft_ms": "ttft_ms", "mean_tpot_ms": "tpot_ms", "mean_itl_ms": "itl_ms",
                "output_throughput": "output_tok_s", "request_throughput": "requests_s",
                "total_token_throughput": "total_tok_s"}
COLUMNS = ["id", "group", "model", "hardware", "num_gpus", "tp", "pp", "ep", "precision", "kv_precision", "engine",
           "input_len", "output_len", "concurrency", "request_rate", "scenario", "length_dist", "num_prompts", "metric",
           "value", "unit", "source_url", "notes"]


def vllm_json_to_csv(path: Path, model: str | None, gpu: str | None, num_gpus: int | None, tp: int | None,
                     precision: str | None, engine: str) -> Path:
    """Rows in the benchmark-case schema from the JSON `vllm bench serve --save-result` writes."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LlmplanError(f"{path}: not a readable JSON file ({exc})") from None
    docs = doc if isinstance(doc, list) else [doc]
    if not model or not gpu:
        raise LlmplanError("a vLLM benchmark JSON does not record the hardware: give --model and --gpu "
                           "(and --num-gpus/--tp, --precision if not the defaults)")
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    for k, d in enumerate(docs):
        if not isinstance(d, dict) or not d.get("completed"):
            raise LlmplanError(f"{path}: result {k + 1} is not a vllm bench serve result (no 'completed')")
        n = float(d["completed"])
        i = float(d.get("total_input_tokens", 0)) / n
        o = float(d.get("total_output_tokens", 0)) / n
        rate = d.get("request_rate")
        conc = d.get("max_concurrency")
        finite_rate = isinstance(rate, int | float) and np.isfinite(rate)
        scenario = "server" if finite_rate else "fixed_concurrency" if conc else "max_throughput"
        for key, metric in VLLM_METRICS.items():
            if d.get(key) is None:
                continue
            w.writerow(
                {
                    "id": f"{path.stem}-{k + 1}-{metric}",
                    "group": path.stem,
                    "model": model,
                    "hardware": gpu,
                    "num_gpus": num_gpus or "",
                    "tp": tp or "",
                    "precision": precision or "",
                    "engine": engine,
                    "input_len": f"{i:.1f}",
                    "output_len": f"{o:.1f}",
                    "concurrency": conc or "",
                    "request_rate": rate if finite_rate else "",
                    "scenario": scenario,
                    "num_prompts": int(n),
                    "length_dist": "",
                    "metric": metric,
                    "value": d[key],
                    "source_url": str(path),
                    "notes": f"vllm bench serve result; {int(n)} requests",
                }
            )
    return _write_temp(out.getvalue())


def _write_temp(text: str) -> Path:
    import tempfile

    fd, name = tempfile.mkstemp(prefix="llmplan-", suffix=".csv")
    with open(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(name)


def _interval_scales(cs: Any, base: dict | None) -> tuple[Callable[[Key], float | None], str]:
    """Each entry's interval factor (perf/intervals.py) and a line saying where it comes from. A full fit
    refits without each source group in turn (one refit per group); a user's adjustment keeps the factor of
    the bundled entry closest to each group it fits."""
    if base is not None:
        def from_base(key: Key) -> float:
            cal, level = lookup(base, *key)
            return entry_scale(cal, level)
        return from_base, "interval factors kept from the bundled calibration"
    scales = interval_scales(cs)
    if not scales:
        return (lambda _key: None), ("interval factors not fitted (the data has one source group; at least two "
                                     "are needed to hold one out): intervals use the hand-set widening")
    return (lambda key: scale_for(scales, level_name(*key))), (
        "interval factors fitted on each source group held out in turn: "
        + ", ".join(f"{k} ×{v:.2f}" for k, v in sorted(scales.items())))


def run_calibrate(*, data: list[str] | None, from_file: Path | None, out: Path | None, date: str,
                  catalog_dirs: list[Path], model: str | None, gpu: str | None, num_gpus: int | None,
                  tp: int | None, precision: str | None, engine: str) -> dict[str, Any]:
    if (not data) == (from_file is None):
        raise LlmplanError("give either --data (fit the whole calibration) or --from (adjust it with your "
                           "measurements)")
    cat = load_catalog(catalog_dirs)
    srcs, skipped = bench_files(data or []) if data or from_file is None else ([from_file], [])
    for src in srcs:
        if not src.is_file():
            raise LlmplanError(f"{src}: no such file")
    csv_paths = srcs
    if from_file is not None and from_file.suffix.lower() == ".json":
        csv_paths = [vllm_json_to_csv(from_file, model, gpu, num_gpus, tp, precision, engine)]
    cs = read_cases(csv_paths, cat)
    base = None if data is not None else table_from_catalog(cat)
    fits = fit_all(cs, base)
    if out is None:
        if data is not None or not catalog_dirs:
            raise LlmplanError("give --out FILE (or, with --from, a --catalog DIR to write calibration.yaml into)")
        out = Path(catalog_dirs[0]) / "calibration.yaml"
    scale_of, note = _interval_scales(cs, base)
    entries = calibration_entries(fits, srcs if len(srcs) > 1 else srcs[0], date, scale_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_calibration(entries, out)
    errs = np.concatenate([g.log_errors for g in fits.values() if (g.engine, g.family, g.arch) != ("*", "*", "*")] or
                          [g.log_errors for g in fits.values()])
    return {"out": str(out), "files": [str(p) for p in srcs] + skipped, "entries": len(entries),
            "rows": len(cs.cases), "unsupported": len(cs.unsupported), "intervals": note,
            "mdape_pct": float(np.median(np.abs(np.expm1(errs)))) * 100}
