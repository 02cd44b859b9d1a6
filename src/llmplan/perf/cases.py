"""Benchmark cases (DESIGN.md "Benchmark cases"): read a CSV row's conditions, build the
deployment and load it describes, and predict its metric as the benchmark ran — for many
rows at once.

Only the conditions are read (model, hardware, layout, precision, engine, lengths,
concurrency, request rate, scenario, the protocol columns `num_prompts` and `length_dist`,
and the benchmark settings the notes record: context depth, micro-batch size, flash attention,
data-parallel attention (``--enable-dp-attention``), the server's memory fraction, sequence limit
and step budget flags). ``value`` is never read here.

How each protocol is predicted (docs/accuracy.md): blank `num_prompts` is a long steady
state (:mod:`.scenarios`); N prompts sent at once (`max_throughput`) or at most C in flight
(`fixed_concurrency`) is a finite run with a start-up wave, a queue and a tail
(:mod:`.finite`); N prompts arriving at a rate (`server`) is the steady state at that rate
over a run that lasts until the last request is done.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from ..catalog import Catalog
from ..errors import LayoutError, LlmplanError
from ..specs import FitRequest, resolve
from . import finite
from .limits import engine_limit
from .physics import Efficiency, Machine, StageShape
from .scenarios import LoadResult, closed_loop, decode_step, lockstep_loop, open_loop, prefill_time
from .shape import is_dequant, machine, stage_shape

_T = TypeVar("_T")

METRICS = ("total_tok_s", "output_tok_s", "output_tok_s_per_gpu", "ttft_ms", "tpot_ms", "itl_ms", "prefill_tok_s",
           "decode_tok_s", "e2e_latency_s", "requests_s")
SCENARIOS = ("max_throughput", "server", "fixed_concurrency", "batch1")
REQUIRED = ("id", "model", "hardware", "engine", "scenario", "metric")

_DEPTH = re.compile(r"@ ?d(\d+)")
# how a row states flash attention on or off: llama-bench / llama-batched-bench printouts (flash_attn 1,
# "fa": 0), command lines (-fa 1, --flash-attn on / off / auto)
_FLASH = re.compile(r"(?:\bflash[-_ ]attn\b|(?<![\w-])-fa\b|\bfa\b\"?)[ =:\"]*(1|0|on|off|true|false)\b", re.I)
_UBATCH = re.compile(r"n_ubatch[ =](\d+)")
_DP_ATTENTION = re.compile(r"--enable[-_]dp[-_]attention\b")  # SGLang's flag, as a command line in the notes
_NUMBER = r"[ =](\d+(?:\.\d+)?|\.\d+)(?!\w|\.\d)"


def flash_attention(notes: str) -> bool | None:
    """Flash attention as a row's notes state it (``flash_attn 1``, ``-fa 0``, ``--flash-attn on``), else None
    (the engine profile's default applies; ``auto`` states nothing)."""
    m = _FLASH.search(notes)
    return None if m is None else m.group(1).lower() in ("1", "on", "true")


def engine_flags(notes: str, engine: Any) -> dict[str, float | int]:
    """The server settings a row's notes record from the engine's command line, by the flag names
    the engine catalog gives for it (``--gpu-memory-utilization`` / ``--max-num-seqs`` /
    ``--max-num-batched-tokens`` for vLLM, ``--mem-fraction-static`` / ``--max-running-requests`` /
    ``--chunked-prefill-size`` for SGLang, …; ``-`` and ``_`` alike): the share of device memory
    the engine takes (hence its KV cache), the sequences it runs at once and its step budget. They
    override the engine's defaults for that row; a flag the notes do not name keeps the default."""
    names = {"memory_fraction": engine.memory.memory_fraction_flag,
             "max_num_seqs": engine.defaults.max_num_seqs_flag,
             "max_num_batched_tokens": engine.defaults.max_num_batched_tokens_flag}
    out: dict[str, float | int] = {}
    for key, flag in names.items():
        if not flag or not flag.startswith("--"):
            continue
        pattern = "--" + "".join("[-_]" if ch in "-_" else re.escape(ch) for ch in flag[2:]) + _NUMBER
        if m := re.search(pattern, notes):
            value = float(m.group(1))
            if key == "memory_fraction":
                if 0 < value <= 1:
                    out[key] = value
            elif value >= 1 and value == int(value):
                out[key] = int(value)
    return out


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
    num_prompts: float  # requests the run sent in all; inf for a steady-state run
    in_sigma: float  # lognormal shape of the input lengths (0: fixed)
    out_sigma: float
    in_cap: float  # longest input the dataset's sampler keeps (inf: none)
    out_cap: float
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
    order: dict[str, int] = field(default_factory=dict)  # row id -> position in the files read


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
    from ..specs import offers_dp_attention, row_engine_version, with_dp_attention

    hint = row_engine_version(notes)  # the engine version (or date) the row ran: its profile's defaults
    try:
        d = resolve(req, cat, engine_hint=hint)
    except LayoutError:
        if req.tp is not None or req.pp is None:
            raise
        # a source that gives only the GPU count (its TP/DP split in notes) may fill pp with a default 1
        req = req.model_copy(update={"pp": None})
        d = resolve(req, cat, engine_hint=hint)
    bench_kv = d.engine.benchmark_kv_precision.get(d.weight_format.id)
    if bench_kv and req.kv_precision is None and d.engine.benchmark_tool and d.engine.benchmark_tool in notes:
        # the engine's own benchmark tool picks the KV format for these weights (engines catalog)
        d = resolve(req.model_copy(update={"kv_precision": bench_kv}), cat, engine_hint=hint)
    i = max(_f(row.get("input_len"), 0.0), 0.0)
    o = max(_f(row.get("output_len"), 0.0), 0.0)
    dm = _DEPTH.search(notes)
    depth = float(dm.group(1)) if dm else 0.0
    if scenario == "batch1" and metric in ("decode_tok_s", "tpot_ms", "itl_ms") and dm:
        depth = i  # llama-bench tg rows put the context depth in input_len
    fa = flash_attention(notes)
    if fa is not None and fa != d.engine.execution.flash_attention:  # the run's own -fa, over the profile's default
        ex = d.engine.execution.model_copy(update={"flash_attention": fa})
        d = dataclasses.replace(d, engine=d.engine.model_copy(update={"execution": ex}))
    if _DP_ATTENTION.search(notes) and offers_dp_attention(d.engine, d.model, d.layout.tp):  # the run's own flag
        d = dataclasses.replace(d, engine=with_dp_attention(d.engine, True, d.layout, cat, d.model))
    um = _UBATCH.search(notes)
    flags = engine_flags(notes, d.engine)
    chunk = float(um.group(1)) if um else float(flags.get("max_num_batched_tokens",
                                                            d.engine.defaults.max_num_batched_tokens))
    # a served run needs room for its KV cache; a batch-1 speed does not depend on the limit
    seqs, batched = flags.get("max_num_seqs"), flags.get("max_num_batched_tokens")
    limit = engine_limit(d, cat, i, o, memory_fraction=flags.get("memory_fraction"),
                         max_num_seqs=None if seqs is None else int(seqs),
                         max_num_batched_tokens=None if batched is None else int(batched),
                         strict=scenario != "batch1")
    kv_elem = d.kv_format.bits / 8
    mach, dtype = machine(d)
    return Case(
        id=row["id"], group=row.get("group", ""), metric=metric, scenario=scenario, engine=d.engine.id,
        family=d.accelerator.family, num_gpus=d.layout.num_gpus, input_len=i, output_len=o,
        concurrency=_f(row.get("concurrency")), request_rate=_f(row.get("request_rate")), depth=depth,
        num_prompts=_num_prompts(row), **length_shape(row, cat, i, o), chunk=chunk, limit=limit,
        shape=stage_shape(d, tuple(cat.gguf_types), kv_elem), machine=mach, compute_dtype=dtype,
        dequant=is_dequant(d.weight_format, dtype),
    )


def _num_prompts(row: dict[str, str]) -> float:
    n = _f(row.get("num_prompts"))
    if math.isnan(n):
        return math.inf
    if n < 1 or n != int(n):
        raise LlmplanError(f"num_prompts {row.get('num_prompts')!r} is not a whole number of requests ≥ 1")
    return n


def length_shape(row: dict[str, str], cat: Catalog, input_len: float, output_len: float) -> dict[str, float]:
    """The spread of request lengths around the row's means: none for `fixed` (or blank: not
    stated, read as the stated lengths), else the workload preset named like the dataset
    (`sharegpt`): its lognormal shape (p95 / mean) and its caps, scaled to the row's means."""
    name = (row.get("length_dist") or "").strip()
    if name in ("", "fixed"):
        return {"in_sigma": 0.0, "out_sigma": 0.0, "in_cap": math.inf, "out_cap": math.inf}
    from ..serving.workload import Lengths

    p = cat.workload_presets.find(name)
    if p is None or p.input_mean is None or p.input_p95 is None or p.output_p95 is None:
        raise LlmplanError(f"length_dist {name!r} has no workload preset with input and output p95 in the catalog; "
                           "add one (input/output mean and p95, with its source) or give 'fixed'")
    sig_in = Lengths(mean=p.input_mean, p95=p.input_p95).sigma()
    sig_out = Lengths(mean=p.output_mean or 1.0, p95=p.output_p95).sigma()
    return {"in_sigma": sig_in if input_len > 0 else 0.0, "out_sigma": sig_out if output_len > 0 else 0.0,
            "in_cap": float(p.input_max or math.inf), "out_cap": float(p.output_max or math.inf)}


def protocol_label(c: Case) -> str:
    """The row's scenario as its benchmark ran: steady state, or a finite run of N prompts."""
    if c.scenario == "batch1" or not math.isfinite(c.num_prompts):
        return c.scenario
    return f"{c.scenario}, N prompts"


def bench_files(patterns: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The CSV files named by `patterns` (paths, or globs such as ``data/bench/perf_*.csv``), in
    order, each once. A file that a glob matched is skipped when the same glob matched a later
    version of it (``perf_dev.csv`` beside ``perf_dev_v2.csv``: the same rows with more columns);
    files named outright are always read. Returns the files and a note for each skipped one."""
    out: list[Path] = []
    notes: list[str] = []
    for pat in patterns:
        p = Path(pat)
        if p.exists() or not any(ch in str(pat) for ch in "*?["):
            matched = [p]
        else:
            matched = sorted(p.parent.glob(p.name))
            if not matched:
                raise LlmplanError(f"{pat}: no file matches")
            stems = {m.stem for m in matched}
            for m in list(matched):
                newer = sorted((s for s in stems if re.fullmatch(re.escape(m.stem) + r"_v\d+", s)),
                               key=lambda s: int(s.rsplit("_v", 1)[1]))
                if newer:
                    matched.remove(m)
                    notes.append(f"{m.name} skipped: superseded by {newer[-1]}.csv")
        out += [m for m in matched if m not in out]
    return out, notes


def read_cases(paths: Path | list[Path], cat: Catalog) -> CaseSet:
    """The rows of one or more benchmark-case CSV files (the same row id in two files is refused)."""
    out = CaseSet()
    seen: dict[str, str] = {}
    for path in [paths] if isinstance(paths, Path) else paths:
        _read_one(Path(path), cat, out, seen)
    return out


def _read_one(path: Path, cat: Catalog, out: CaseSet, seen: dict[str, str]) -> None:
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
            rid = row.get("id") or "?"
            if rid in seen:
                raise LlmplanError(f"{path}: row id {rid!r} is already in {seen[rid]}; ids must be unique "
                                   "across the files read together")
            seen[rid] = path.name
            out.order[rid] = len(out.order)
            measured = _f(row.get("value"))
            try:
                case = build_case(row, cat)
            except (LlmplanError, ValueError) as exc:
                msg = str(exc).split("\n")[0]
                out.unsupported.append(Unsupported(rid, row.get("metric", "?"), msg, row.get("group", ""), measured))
                continue
            out.cases.append(dataclasses.replace(case, measured=measured))


def _stack(items: Sequence[_T], cls: type[_T]) -> _T:
    fields = dataclasses.fields(cast(Any, cls))  # cls is one of the physics dataclasses
    return cls(**{f.name: np.array([getattr(x, f.name) for x in items], dtype=float) for f in fields})


@dataclass(frozen=True)
class Stacked:
    cases: list[Case]
    shape: StageShape
    machine: Machine
    arrays: dict[str, np.ndarray]


def stack(cases: list[Case]) -> Stacked:
    arr = {k: np.array([getattr(c, k) for c in cases], dtype=float)
           for k in ("input_len", "output_len", "concurrency", "request_rate", "depth", "num_prompts", "chunk",
                     "limit", "num_gpus", "in_sigma", "out_sigma", "in_cap", "out_cap")}
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
    # serving, steady state
    closed = closed_loop(s, m, e, conc, i, o, np.maximum(a["limit"], 1.0), a["chunk"])
    pre_all, _, _ = prefill_time(s, m, e, np.maximum(conc * i, 1.0), 0.0, a["chunk"])
    # max throughput: all requests queued, the engine runs `conc` (its limit, or the batch the source set)
    engine = np.maximum(np.minimum(a["limit"], conc), 1.0)
    saturated = closed_loop(s, m, e, engine, i, o, engine, a["chunk"])
    rate = np.where(np.isnan(a["request_rate"]), 1e12, a["request_rate"])
    opened = open_loop(s, m, e, rate, i, o, np.maximum(a["limit"], 1.0), a["chunk"], a["num_prompts"])
    finite_vals = _finite_runs(st, e, conc)

    out = np.full(len(st.cases), np.nan)
    for k, c in enumerate(st.cases):
        if c.scenario == "batch1":
            vals = {
                "prefill_tok_s": i[k] / pre_t[k],
                "decode_tok_s": 1 / dec1[k],
                "ttft_ms": 1e3 * (pre_t[k] + dec1[k]),
                "tpot_ms": 1e3 * dec1[k],
                "itl_ms": 1e3 * dec1[k],
                "output_tok_s": 1 / dec1[k],
                "e2e_latency_s": pre_t[k] + max(o[k] - 1, 0) * dec1[k],
            }
        elif c.scenario == "fixed_concurrency" and c.metric in ("prefill_tok_s", "decode_tok_s"):
            # batch speeds by definition (llama-batched-bench, benchmarks/measure_gpu.py): no serving loop
            vals = {"prefill_tok_s": conc[k] * i[k] / pre_b[k], "decode_tok_s": conc[k] / dec_b[k],
                    "output_tok_s": conc[k] / dec_b[k], "tpot_ms": 1e3 * dec_b[k], "itl_ms": 1e3 * dec_b[k]}
        elif k in finite_vals:
            vals = finite_vals[k]
        else:
            r = opened if c.scenario == "server" else saturated if c.scenario == "max_throughput" else closed
            vals = _load_metrics(r, k, a["num_gpus"][k])
            if c.scenario == "max_throughput":
                # a batch admitted at once is prefilled in order: the mean request waits for half of it
                req_s = np.asarray(e.request_overhead_s)
                vals["ttft_ms"] = 1e3 * (float(pre_all[k]) / 2 + float(pre_t[k]) / 2
                                         + float(req_s[k] if np.ndim(req_s) else req_s))
        out[k] = vals.get(c.metric, np.nan)
    return out


def _finite_runs(st: Stacked, e: Efficiency, conc) -> dict[int, dict[str, float]]:
    """The metrics of the rows whose benchmark sent N prompts (docs/accuracy.md)."""
    a = st.arrays
    rows = [k for k, c in enumerate(st.cases) if math.isfinite(c.num_prompts) and c.scenario != "batch1"
            and not (c.scenario == "fixed_concurrency" and c.metric in ("prefill_tok_s", "decode_tok_s"))]
    out: dict[int, dict[str, float]] = {}
    for scen in ("server", "batch"):
        idx = np.array([k for k in rows if (st.cases[k].scenario == "server") == (scen == "server")], dtype=int)
        if not len(idx):
            continue
        s, m, ec = finite.columns(st.shape, idx), finite.columns(st.machine, idx), finite.columns(e, idx)
        lim = np.maximum(a["limit"][idx], 1.0)
        n, i, o, chunk = a["num_prompts"][idx], a["input_len"][idx], a["output_len"][idx], a["chunk"][idx]
        if scen == "server":
            r = finite.poisson_run(s, m, ec, a["request_rate"][idx], n, i, o, lim, chunk, a["out_sigma"][idx],
                                   a["out_cap"][idx])
        else:
            r = _burst_runs(st, e, idx, s, m, ec, conc[idx], lim)
        for j, k in enumerate(idx):
            out[int(k)] = {"ttft_ms": 1e3 * float(r.ttft_s[j]), "tpot_ms": 1e3 * float(r.tpot_s[j]),
                           "itl_ms": 1e3 * float(r.itl_s[j]), "e2e_latency_s": float(r.e2e_s[j]),
                           "output_tok_s": float(r.output_tok_s[j]), "total_tok_s": float(r.total_tok_s[j]),
                           "output_tok_s_per_gpu": float(r.output_tok_s[j]) / a["num_gpus"][k],
                           "requests_s": float(r.requests_s[j])}
    return out


def _burst_runs(st: Stacked, e: Efficiency, idx, s, m, ec, conc, lim) -> finite.RunResult:
    """N prompts sent at once (max_throughput) or at most C at a time (fixed_concurrency)."""
    a = st.arrays
    n, i, o, chunk = a["num_prompts"][idx], a["input_len"][idx], a["output_len"][idx], a["chunk"][idx]
    capped = np.array([st.cases[k].scenario == "fixed_concurrency" for k in idx])
    clients = np.where(capped, conc, n)  # sent together: C, or the whole run
    engine = np.where(capped, lim, np.minimum(lim, conc))  # a max-throughput row's concurrency is its batch
    wave = np.minimum(clients, n)
    admitted = np.maximum(np.minimum(wave, engine), 1.0)
    lengths, weights = finite.length_blocks(np.maximum(o, 1.0), a["out_sigma"][idx], a["out_cap"][idx], admitted)
    in_len, in_w = finite.length_blocks(np.maximum(i, 1.0), a["in_sigma"][idx], a["in_cap"][idx], 1e6)
    pre_ctx = (in_w * in_len ** 2).sum(axis=1) / np.maximum(2 * i, 1.0)  # queries attend to half their prompt
    queued = np.maximum(wave - admitted, 0.0)
    b = finite.burst(s, m, ec, admitted, i, pre_ctx, lengths, weights, chunk,
                     first=queued - np.floor(queued / admitted) * admitted)
    # after the wave: a closed-loop client at C, or an engine kept full by its queue; with fixed
    # lengths requests stay in step (lockstep), with a dataset's lengths they come one at a time
    fixed = (a["out_sigma"][idx] == 0) & (a["in_sigma"][idx] == 0)

    def steady(users, limit):
        lock = lockstep_loop(s, m, ec, users[:, None], i[:, None], o[:, None], limit[:, None], chunk[:, None])
        lump = closed_loop(s, m, ec, users[:, None], i[:, None], o[:, None], limit[:, None], chunk[:, None],
                           lumps=True)
        return LoadResult(
            **{
                f.name: np.where(
                    fixed, np.asarray(getattr(lock, f.name))[:, 0], np.asarray(getattr(lump, f.name))[:, 0]
                )
                for f in dataclasses.fields(lock)
            }
        )

    full = np.minimum(engine, np.where(capped, clients, engine))
    overhead = np.asarray(e.request_overhead_s, dtype=float) * np.ones(len(st.cases))
    return finite.run(b, prompts=n, wave=wave, admitted=admitted, input_mean=i, output_mean=o,
                      steady=steady(np.where(capped, clients, full), full), loaded=steady(engine, engine),
                      overhead_s=overhead[idx])


def _load_metrics(r, k: int, n_gpus: float) -> dict[str, float]:
    out = float(r.output_tok_s[k])
    return {
        "ttft_ms": 1e3 * float(r.ttft_s[k]),
        "tpot_ms": 1e3 * float(r.tpot_s[k]),
        "itl_ms": 1e3 * float(r.tpot_s[k]),
        "output_tok_s": out,
        "output_tok_s_per_gpu": out / n_gpus,
        "total_tok_s": float(r.total_tok_s[k]),
        "requests_s": float(r.requests_s[k]),
        "e2e_latency_s": float(r.e2e_s[k]),
        "decode_tok_s": out,
        "prefill_tok_s": float(r.total_tok_s[k] - r.output_tok_s[k]),
    }
