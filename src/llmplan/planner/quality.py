"""Model quality: the published absolute score of a model on a benchmark (catalog model_quality.yaml), and
the share of it a weight format keeps (published recovery per format and size class, quant_formats.yaml).

For a benchmark on a percent scale the planner's figure is ``score × recovery / 100``; on a rating scale
(an arena rating) a recovery percentage has no meaning, so the 16-bit model's rating is reported with the
recovery beside it. A model without a published score has no figure: it is labelled, never given a 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..catalog import Catalog
from ..catalog.schema import Benchmark, Model, QuantFormat
from ..errors import LlmplanError

SIZES = ("small", "medium", "large")


def size_class(m: Model) -> str:
    b = m.total_params / 1e9
    return "small" if b < 10 else "medium" if b <= 40 else "large"


def quality_recovery_pct(fmt: QuantFormat, m: Model) -> float | None:
    """% of the 16-bit model's quality the format keeps (None: no published figure).

    The model's own published precision counts as 100 (its benchmarks were run on it). Among
    the format's figures, the model's size class is preferred, then 'any', then the nearest
    size class (bigger models lose less, so a smaller class's figure is the cautious choice).
    Published recoveries above 100 % are within the noise of the 16-bit model and count as 100."""
    if fmt.id in ("bf16", "fp16") or fmt.id == m.native_precision:
        return 100.0
    if not fmt.quality:
        return None
    want = size_class(m)
    pts = {q.size_class: q.recovery_pct for q in fmt.quality}
    if want in pts:
        return min(pts[want], 100.0)
    if "any" in pts:
        return min(pts["any"], 100.0)
    order = sorted((abs(SIZES.index(s) - SIZES.index(want)), SIZES.index(s) > SIZES.index(want), s)
                   for s in pts if s in SIZES)
    return min(pts[order[0][2]], 100.0) if order else None


def format_bits(fmt: QuantFormat, cat: Catalog) -> float:
    """Bits per weight of the bulk of the weights (GGUF: its block type)."""
    if fmt.weight_bits is not None:
        return fmt.weight_bits
    return cat.gguf_types.get(fmt.gguf_type or "").bits_per_weight


def off_native(fmt: QuantFormat, m: Model, cat: Catalog) -> str | None:
    """Why `fmt` cannot be planned for a model published in another quantized format (None: it can).

    A model published in a quantized format (gpt-oss in MXFP4, DeepSeek-V3 in FP8) is planned in that format,
    or in another one only where a checkpoint of it is published: a wider format adds no quality over the
    published weights, and re-quantizing already-quantized weights compounds two errors that no published
    recovery figure measures (recoveries are measured from 16-bit weights)."""
    native = cat.quant_formats.find(m.native_precision)
    if native is None or native.id in ("bf16", "fp16") or fmt.id == native.id:
        return None
    published = {c.precision for c in m.checkpoints} | {f for c in m.checkpoints for f in c.formats}
    if fmt.id in published or set(fmt.aliases) & published:
        return None
    if format_bits(fmt, cat) > format_bits(native, cat):
        return (f"{m.id} is published in {native.id}; {fmt.id} has more bits, adds no quality and has no published "
                "checkpoint")
    return (f"{m.id} is published in {native.id}; {fmt.id} would re-quantize already-quantized weights (no published "
            "checkpoint or recovery figure for that)")


def benchmark(task: str, benchmark_id: str | None, cat: Catalog) -> Benchmark:
    """The benchmark a scenario ranks on: the one named, else the catalog's benchmark for the task."""
    if benchmark_id:
        return cat.benchmarks.get(benchmark_id)
    found = [b for b in cat.benchmarks if b.task == task]
    if not found:
        raise LlmplanError(f"quality.task {task!r}: no catalog benchmark stands for this task "
                           f"(known: {sorted({b.task for b in cat.benchmarks})})")
    return found[0]


@dataclass(frozen=True)
class Figure:
    """One option's quality on one benchmark."""

    benchmark: str
    benchmark_name: str
    scale: str
    model_score: float | None  # the model's published score (16-bit weights)
    recovery_pct: float | None  # of the weight format, for the model's size class
    score: float | None  # what the planner ranks and floors on (percent: model_score × recovery)
    source: str | None
    as_of: str | None
    thinking_off: bool = False  # the source's rating of the same weights with thinking turned off

    @property
    def label(self) -> str:
        if self.model_score is None:
            return f"no published quality figure for {self.benchmark_name}"
        rec = "provider precision not published" if self.recovery_pct is None else f"{self.recovery_pct:.1f} % recovery"
        if self.scale == "rating":
            mode = ", thinking off" if self.thinking_off else ""
            return f"{self.benchmark_name} {self.model_score:,.0f} (16-bit rating{mode}; {rec})"
        if self.score is None:
            return f"{self.benchmark_name} {self.model_score:.1f} at 16 bit ({rec})"
        return f"{self.benchmark_name} {self.score:.1f} ({self.model_score:.1f} × {rec})"

    def public(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "scale": self.scale, "model_score": self.model_score,
                "recovery_pct": self.recovery_pct, "score": self.score, "source": self.source,
                "as_of": self.as_of, "label": self.label, "thinking_off": self.thinking_off}


def figure(m: Model, fmt: QuantFormat | None, bench: Benchmark, cat: Catalog, thinking_off: bool = False) -> Figure:
    """`fmt` None: a per-token API, whose serving precision is not published. `thinking_off`: the workload turns
    thinking off; a switchable model is then scored as the source rates it without thinking, where it does."""
    entry = cat.model_quality.find(m.id)
    sc = entry.scores.get(bench.id) if entry is not None and entry.id == m.id else None
    rec = quality_recovery_pct(fmt, m) if fmt is not None else None
    off = sc is not None and thinking_off and m.reasoning == "switchable" and sc.thinking_off is not None
    value = None if sc is None else (sc.thinking_off if off else sc.value)
    score = None
    if value is not None:
        score = value if bench.scale == "rating" else (value * rec / 100 if rec is not None else None)
    return Figure(bench.id, bench.name or bench.id, bench.scale, value, rec, score,
                  sc.source if sc else None, sc.as_of if sc else None, bool(off))


def floor_reasons(m: Model, fmt: QuantFormat, mins: dict[str, float], cat: Catalog,
                  thinking_off: bool = False) -> list[str]:
    """Why (m, fmt) misses the scenario's floors (quality.min), empty when it meets them all."""
    out = []
    for bid, lo in mins.items():
        f = figure(m, fmt, cat.benchmarks.get(bid), cat, thinking_off)
        if f.model_score is None:
            out.append(f"no published quality figure for {m.id} on {f.benchmark_name} (floor {lo:g})")
        elif f.score is None:
            out.append(f"{fmt.id} has no published recovery figure, so {m.id}'s {f.benchmark_name} after "
                       f"quantization is unknown (floor {lo:g})")
        elif f.score < lo:
            out.append(f"{m.id} in {fmt.id} scores {f.score:.1f} on {f.benchmark_name} "
                       f"({f.model_score:.1f} × {f.recovery_pct:.1f} %), below the floor {lo:g}"
                       if f.scale == "percent" else
                       f"{m.id} rates {f.score:,.0f} on {f.benchmark_name}, below the floor {lo:g}")
    return out


def check_spec(task: str, benchmark_id: str | None, mins: dict[str, float], cat: Catalog) -> None:
    """Every benchmark a scenario names exists (an unknown one raises with the closest ids)."""
    benchmark(task, benchmark_id, cat)
    for bid in mins:
        cat.benchmarks.get(bid)
