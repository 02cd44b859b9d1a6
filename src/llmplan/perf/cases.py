"""Benchmark cases (DESIGN.md "Benchmark cases"): read a CSV row's conditions, build the
deployment and load it describes, and predict its metric — for many rows at once.

Only the conditions are read (model, hardware, layout, precision, engine, lengths,
concurrency, request rate, scenario, and the benchmark settings the notes record: context
depth, number of requests, micro-batch size). ``value`` is never read here.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import Catalog
from ..catalog.schema import QuantFormat
from ..errors import LayoutError, LlmplanError
from ..memory.fit import fit as memory_fit
from ..specs import Deployment, FitRequest, resolve
from .physics import Efficiency, Machine, StageShape
from .scenarios import closed_loop, decode_step, open_loop, prefill_time
from .shape import machine, stage_shape

METRICS = ("total_tok_s", "output_tok_s", "output_tok_s_per_gpu", "ttft_ms", "tpot_ms", "itl_ms", "prefill_tok_s",
           "decode_tok_s", "e2e_latency_s", "requests_s")
SCENARIOS = ("max_throughput", "server", "fixed_concurrency", "batch1")
REQUIRED = ("id", "model", "hardware", "engine", "scenario", "metric")

_DEPTH = re.compile(r"@ ?d(\d+)")
_REQUESTS = re.compile(r"\b(\d+) requests\b")
_UBATCH = re.compile(r"n_ubatch[ =](\d+)")


@dataclass(frozen=True)
class Case:
    """One row's conditions, resolved."""

    id: str
    group: str
    metric: str
    scenario: str
    engine: str
    family: str
    num_gpus: int
    input_len: float
    output_len: float
    concurrency: float  # nan when not given
    request_rate: float  # nan when not given
    depth: float
    num_requests: float  # inf when not given
    chunk: float
    limit: float  # sequences the engine runs at once (engine maximum, or what the KV cache holds)
    shape: StageShape
    machine: Machine
    compute_dtype: str
    dequant: bool  # weights stored below 16 bit and dequantized for 16-bit math (GGUF, AWQ/GPTQ, weight-only)
    measured: float = math.nan  # filled by the reader for scoring only; never used to predict


@dataclass
class Unsupported:
    id: str
    metric: str
    reason: str
    group: str = ""
    measured: float = math.nan


@dataclass
class CaseSet:
    cases: list[Case] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)


def _f(v: str | None, default: float = math.nan) -> float:
    try:
        return float(v) if v not in (None, "") else default
    except ValueError:
        return default


def _i(v: str | None) -> int | None:
    x = _f(v)
    return None if math.isnan(x) else int(x)


def build_case(row: dict[str, str], cat: Catalog) -> Case:
    for k in REQUIRED:
        if not (row.get(k) or "").strip():
            raise LlmplanError(f"missing {k}")
    metric, scenario = row["metric"].strip(), row["scenario"].strip()
    if metric not in METRICS:
        raise LlmplanError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    if scenario not in SCENARIOS:
        raise LlmplanError(f"scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
    notes = row.get("notes", "") or ""
    engine = row["engine"].strip()
    req = FitRequest(model=row["model"].strip(), gpu=row["hardware"].strip(), num_gpus=_i(row.get("num_gpus")),
                     tp=_i(row.get("tp")), pp=_i(row.get("pp")), precision=(row.get("precision") or None),
                     kv_precision=(row.get("kv_precision") or None), engine=engine)
    ep = _i(row.get("ep"))
    if ep and ep > 1:
        req = req.model_copy(update={"ep": ep})
    from ..specs import row_engine_version

    hint = row_engine_version(notes)  # the engine version (or date) the row ran: its profile's defaults
    try:
        d = resolve(req, cat, engine_hint=hint)
    except LayoutError:
        if req.tp is not None or req.pp is None:
            raise
        # a source that gives only the GPU count (its TP/DP split in notes) may fill pp with a default 1
        d = resolve(req.model_copy(update={"pp": None}), cat, engine_hint=hint)
    i = max(_f(row.get("input_len"), 0.0), 0.0)
    o = max(_f(row.get("output_len"), 0.0), 0.0)
    dm = _DEPTH.search(notes)
    depth = float(dm.group(1)) if dm else 0.0
    if scenario == "batch1" and metric in ("decode_tok_s", "tpot_ms", "itl_ms") and dm:
        depth = i  # llama-bench tg rows put the context depth in input_len
    nm = _REQUESTS.search(notes)
    um = _UBATCH.search(notes)
    chunk = float(um.group(1)) if um else float(d.engine.defaults.max_num_batched_tokens)
    limit = engine_limit(d, cat, i, o)
    kv_elem = d.kv_format.bits / 8
    mach, dtype = machine(d)
    return Case(
        id=row["id"], group=row.get("group", ""), metric=metric, scenario=scenario, engine=d.engine.id,
        family=d.accelerator.family, num_gpus=d.layout.num_gpus, input_len=i, output_len=o,
        concurrency=_f(row.get("concurrency")), request_rate=_f(row.get("request_rate")), depth=depth,
        num_requests=float(nm.group(1)) if nm else math.inf, chunk=chunk, limit=limit,
        shape=stage_shape(d, tuple(cat.gguf_types), kv_elem), machine=mach, compute_dtype=dtype,
        dequant=is_dequant(d.weight_format, dtype),
    )


def is_dequant(fmt: QuantFormat, compute_dtype: str) -> bool:
    """Weights stored narrower than the math they feed: kernels dequantize on the fly."""
    bits = fmt.weight_bits if fmt.weight_bits is not None else 8.0  # every GGUF mix is below 16 bit
    return bits < 15.5 and compute_dtype in ("bf16", "fp16")


def engine_limit(d: Deployment, cat: Catalog, input_len: float, output_len: float) -> float:
    """Sequences the engine runs at once: its max_num_seqs, or what the KV cache holds when
    KV blocks are allocated as sequences grow (on average a sequence holds I + O/2 tokens)."""
    occupancy = max(int(input_len + output_len / 2), 1)
    mem = memory_fit(d, tuple(cat.gguf_types), context_tokens=min(occupancy, d.model.max_context))
    kv_bound = mem.kv_capacity_tokens / occupancy
    return float(max(1.0, min(d.engine.defaults.max_num_seqs, kv_bound)))


def read_cases(path: Path, cat: Catalog) -> CaseSet:
    out = CaseSet()
    try:
        f = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise LlmplanError(f"{path}: cannot read ({exc.strerror})") from None
    with f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise LlmplanError(f"{path}: not a benchmark-case CSV (missing columns: {', '.join(missing)})")
        for row in reader:
            measured = _f(row.get("value"))
            try:
                case = build_case(row, cat)
            except (LlmplanError, ValueError) as exc:
                msg = str(exc).split("\n")[0]
                out.unsupported.append(Unsupported(row.get("id", "?"), row.get("metric", "?"), msg,
                                                   row.get("group", ""), measured))
                continue
            out.cases.append(dataclasses.replace(case, measured=measured))
    return out


def _stack(items: list[object], cls: type) -> object:
    return cls(**{f.name: np.array([getattr(x, f.name) for x in items], dtype=float)
                  for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class Stacked:
    cases: list[Case]
    shape: StageShape
    machine: Machine
    arrays: dict[str, np.ndarray]


def stack(cases: list[Case]) -> Stacked:
    arr = {k: np.array([getattr(c, k) for c in cases], dtype=float)
           for k in ("input_len", "output_len", "concurrency", "request_rate", "depth", "num_requests", "chunk",
                     "limit", "num_gpus")}
    return Stacked(cases, _stack([c.shape for c in cases], StageShape), _stack([c.machine for c in cases], Machine),
                   arr)


def predict(st: Stacked, e: Efficiency) -> np.ndarray:
    """Each case's metric, in its unit, for per-case efficiencies `e` (arrays)."""
    s, m, a = st.shape, st.machine, st.arrays
    i, o = a["input_len"], a["output_len"]
    conc = np.where(np.isnan(a["concurrency"]), a["limit"], a["concurrency"])
    # batch-1 speeds
    pre_t, _, _ = prefill_time(s, m, e, np.maximum(i, 1.0), a["depth"], a["chunk"])
    dec1 = decode_step(s, m, e, 1.0, a["depth"] + np.maximum(o, 1.0) / 2).total
    # many sequences processed together, no serving (llama-batched-bench)
    pre_b, _, _ = prefill_time(s, m, e, np.maximum(conc * i, 1.0), a["depth"], a["chunk"])
    dec_b = decode_step(s, m, e, conc, i + np.maximum(o, 1.0) / 2).total
    # serving
    closed = closed_loop(s, m, e, conc, i, o, np.maximum(a["limit"], 1.0), a["chunk"])
    pre_all, _, _ = prefill_time(s, m, e, np.maximum(conc * i, 1.0), 0.0, a["chunk"])
    # max throughput: all requests queued, the engine runs `conc` (its limit, or the batch the source set)
    saturated = closed_loop(s, m, e, conc, i, o, np.maximum(np.minimum(a["limit"], conc), 1.0), a["chunk"])
    rate = np.where(np.isnan(a["request_rate"]), 1e12, a["request_rate"])
    opened = open_loop(s, m, e, rate, i, o, np.maximum(a["limit"], 1.0), a["chunk"], a["num_requests"])

    out = np.full(len(st.cases), np.nan)
    for k, c in enumerate(st.cases):
        if c.scenario == "batch1":
            vals = {"prefill_tok_s": i[k] / pre_t[k], "decode_tok_s": 1 / dec1[k], "ttft_ms": 1e3 * (pre_t[k] + dec1[k]),
                    "tpot_ms": 1e3 * dec1[k], "itl_ms": 1e3 * dec1[k],
                    "output_tok_s": 1 / dec1[k], "e2e_latency_s": pre_t[k] + max(o[k] - 1, 0) * dec1[k]}
        elif c.scenario == "fixed_concurrency" and c.metric in ("prefill_tok_s", "decode_tok_s"):
            # batch speeds by definition (llama-batched-bench, benchmarks/measure_gpu.py): no serving loop
            vals = {"prefill_tok_s": conc[k] * i[k] / pre_b[k], "decode_tok_s": conc[k] / dec_b[k],
                    "output_tok_s": conc[k] / dec_b[k], "tpot_ms": 1e3 * dec_b[k], "itl_ms": 1e3 * dec_b[k]}
        else:
            if c.scenario == "server" or (c.scenario == "max_throughput" and c.metric == "ttft_ms"
                                          and math.isfinite(c.num_requests)):
                r = opened
            else:
                r = saturated if c.scenario == "max_throughput" else closed
            vals = _load_metrics(r, k, a["num_gpus"][k])
            if c.scenario == "max_throughput" and not math.isfinite(c.num_requests):
                # a batch admitted at once is prefilled in order: the mean request waits for half of it
                vals["ttft_ms"] = 1e3 * (float(pre_all[k]) / 2 + float(pre_t[k]) / 2 + float(e.request_overhead_s[k]
                                         if np.ndim(e.request_overhead_s) else e.request_overhead_s))
        out[k] = vals.get(c.metric, np.nan)
    return out


def _load_metrics(r, k: int, n_gpus: float) -> dict[str, float]:
    out = float(r.output_tok_s[k])
    return {"ttft_ms": 1e3 * float(r.ttft_s[k]), "tpot_ms": 1e3 * float(r.tpot_s[k]), "itl_ms": 1e3 * float(r.tpot_s[k]),
            "output_tok_s": out, "output_tok_s_per_gpu": out / n_gpus, "total_tok_s": float(r.total_tok_s[k]),
            "requests_s": float(r.requests_s[k]), "e2e_latency_s": float(r.e2e_s[k]),
            "decode_tok_s": out, "prefill_tok_s": float(r.total_tok_s[k] - r.output_tok_s[k])}
