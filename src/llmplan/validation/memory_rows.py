"""Check the memory model against measured rows (``data/bench/memory_dev.csv``).

Each row is predicted from its conditions only (model, hardware, layout, precision,
engine, max_model_len, gpu_memory_utilization); ``value`` is read only to score.
"""

from __future__ import annotations

import csv
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..api import fit_request
from ..catalog import Catalog, load_catalog
from ..errors import LlmplanError
from ..memory.weights import tensor_bytes, with_engine_copies
from ..specs import FitRequest, resolve
from ..units import GIB, MIB

WEIGHT_METRICS = {"weights_gib", "weights_bytes_file", "engine_size_mib"}
KV_METRICS = {"kv_cache_gib", "kv_cache_tokens", "num_gpu_blocks", "max_concurrency_x"}
TARGET_PCT = {"weights": 3.0, "kv": 5.0}
# Rows whose file was not produced by the tool whose rules the format follows; reported, not hidden.
DOCUMENTED_MISSES = {
    "MEM-0070": "Google's QAT GGUF export, not llama-quantize: its token embedding is stored at higher "
                "precision than llama-quantize's q4_0 rules give",
}
# a device for rows whose figure does not depend on it (file sizes): any big-memory GPU
_ANY_DEVICE = "h200-sxm"


@dataclass(frozen=True)
class RowResult:
    id: str
    metric: str
    category: str  # weights | kv | other
    measured: float
    predicted: float | None
    reason: str = ""

    @property
    def error_pct(self) -> float | None:
        if self.predicted is None or not self.measured:
            return None
        return (self.predicted - self.measured) / self.measured * 100


def _category(metric: str) -> str:
    return "weights" if metric in WEIGHT_METRICS else "kv" if metric in KV_METRICS else "other"


def _int(v: str) -> int | None:
    return int(float(v)) if v and v.strip() else None


def _unit_bytes(unit: str) -> float:
    u = unit.lower()
    return MIB if u.startswith("mib") else GIB


_VERSION = re.compile(r"version='([^']*)'")


def engine_for(row: dict[str, str]) -> str:
    """The engine profile for a row: vLLM before 0.7 ran the V0 engine (a condition the notes record)."""
    engine = row["engine"] or "vllm"
    if engine == "vllm":
        notes = row.get("notes", "")
        m = _VERSION.search(notes)
        version = m.group(1) if m else ""
        if "V0 engine" in notes or re.match(r"(vLLM )?0\.[0-6]\.", version):
            return "vllm-v0"
    return engine


def predict(row: dict[str, str], cat: Catalog) -> float:
    metric = row["metric"]
    engine = engine_for(row)
    req = FitRequest(
        model=row["model"], gpu=row["hardware"] or _ANY_DEVICE, num_gpus=_int(row["num_gpus"]),
        tp=_int(row["tp"]), precision=row["precision"] or None, kv_precision=row["kv_precision"] or None,
        engine=engine, context_tokens=_int(row["max_model_len"]),
        gpu_memory_utilization=float(row["gpu_memory_utilization"]) if row["gpu_memory_utilization"] else None,
    )
    if metric in ("weights_bytes_file", "engine_size_mib"):
        d = resolve(req.model_copy(update={"num_gpus": None, "tp": None}), cat)
        tb = with_engine_copies(tensor_bytes(d.model, d.weight_format, d.keeps_16bit, tuple(cat.gguf_types)),
                                d.model, d.engine.memory.duplicates_tied_embeddings)
        return sum(x.n_bytes for x in tb) / _unit_bytes(row["unit"])
    r = fit_request(req, cat)
    s = r.engine_settings
    if metric == "weights_gib":
        return next(c.bytes for c in r.per_gpu_breakdown if c.component == "weights") / GIB
    if metric == "kv_cache_gib":
        return r.per_gpu_kv_pool_bytes / GIB
    if metric == "kv_cache_tokens":
        return r.kv_capacity_tokens
    if metric == "num_gpu_blocks":
        return r.kv_capacity_tokens / s["block_size"]
    if metric == "max_concurrency_x":
        return r.kv_capacity_tokens / r.context_tokens
    if metric == "total_gpu_memory_gib":
        return r.per_gpu_capacity_bytes / GIB
    if metric == "peak_torch_memory_gib":
        comp = {c.component: c.bytes for c in r.per_gpu_breakdown}
        return (comp["weights"] + comp["activations"]) / GIB
    if metric == "non_torch_memory_gib":
        return next(c.bytes for c in r.per_gpu_breakdown if c.component == "runtime") / GIB
    if metric == "gpu_mem_used_mib_nvidia_smi":
        reserve = next(c.bytes for c in r.per_gpu_breakdown if c.component == "engine_reserve")
        used = r.per_gpu_capacity_bytes - reserve
        return used / MIB
    raise LlmplanError(f"metric {metric!r} is not predicted")


def evaluate(path: Path, cat: Catalog | None = None) -> list[RowResult]:
    cat = cat or load_catalog()
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            measured = float(row["value"])
            try:
                pred: float | None = predict(row, cat)
                reason = ""
            except LlmplanError as exc:
                pred, reason = None, str(exc)
            out.append(RowResult(row["id"], row["metric"], _category(row["metric"]), measured, pred, reason))
    return out


def summary(results: list[RowResult]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for cat in ("weights", "kv", "other"):
        errs = [abs(r.error_pct) for r in results if r.category == cat and r.error_pct is not None]
        n_all = sum(1 for r in results if r.category == cat)
        if not n_all:
            continue
        limit = TARGET_PCT.get(cat)
        out[cat] = {
            "n": n_all,
            "predicted": len(errs),
            "mdape_pct": statistics.median(errs) if errs else float("nan"),
            "max_ape_pct": max(errs) if errs else float("nan"),
            "within_target": sum(1 for e in errs if limit is not None and e <= limit),
            "target_pct": limit if limit is not None else float("nan"),
        }
    return out
