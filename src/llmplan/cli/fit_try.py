"""What to try when a model does not fit: fewer bits (the formats that fit), more GPUs (the fewest
that fit), a smaller model of the same family — each found by running the same fit again."""

from __future__ import annotations

from typing import Any

from ..errors import LlmplanError

GPU_COUNTS = (2, 3, 4, 6, 8, 12, 16, 24, 32)


def _fits(req: Any, cat: Any, **change: Any) -> Any | None:
    from ..api import fit_request

    try:
        r = fit_request(req.model_copy(update=change), cat)
    except LlmplanError:
        return None
    return r if r.fits else None


def _bits(f: Any, cat: Any) -> float | None:
    """Bits per weight of a format: its own figure, or its GGUF block type's."""
    if f.weight_bits is not None:
        return float(f.weight_bits)
    t = cat.gguf_types.find(f.gguf_type) if f.gguf_type else None
    return t.bits_per_weight if t is not None else None


def fewer_bits(req: Any, r: Any, cat: Any) -> str | None:
    bits = _bits(cat.quant_format(r.precision), cat)
    eng = cat.engine(r.engine)
    sized = [(b, f) for f in cat.quant_formats if (b := _bits(f, cat)) is not None]
    found = []
    for b, f in sorted(sized, key=lambda x: -x[0]):
        if bits is not None and b < bits and (not eng.formats or f.id in eng.formats):
            ok = _fits(req, cat, precision=f.id)
            if ok is not None:
                found.append(f"{f.id} ({b:.3g} bits, headroom {ok.headroom_bytes / 2**30:,.1f} GiB)")
    if not found:
        return None
    return f"fewer bits: --precision {', '.join(found[:4])} fit{'s' if len(found) == 1 else ''} on these GPUs"


def more_gpus(req: Any, r: Any, cat: Any) -> str | None:
    for n in GPU_COUNTS:
        if n > r.num_gpus:
            ok = _fits(req, cat, num_gpus=n, tp=None, pp=None)
            if ok is not None:
                return f"more GPUs: --num-gpus {n} fits at {r.precision} (TP {ok.tp} × PP {ok.pp})"
    return None


def smaller_model(req: Any, r: Any, cat: Any) -> str | None:
    try:
        m = cat.model(r.model)
    except LlmplanError:  # a model read from a local file
        return None
    if not m.family:
        return None
    smaller = sorted((x for x in cat.models if x.family == m.family and (x.total_params or 0) < (m.total_params or 0)),
                     key=lambda x: -(x.total_params or 0))
    for x in smaller:
        ok = _fits(req, cat, model=x.id, precision=req.precision) or _fits(req, cat, model=x.id, precision=None)
        if ok is not None:
            return f"a smaller model of the {m.family} family: {x.id} ({(x.total_params or 0) / 1e9:,.1f} B) fits"
    return None


def suggestions(req: Any, r: Any, cat: Any) -> list[str]:
    """Computed alternatives for a fit that failed (empty when it fits)."""
    if r.fits:
        return []
    return [s for s in (fewer_bits(req, r, cat), more_gpus(req, r, cat), smaller_model(req, r, cat)) if s]
