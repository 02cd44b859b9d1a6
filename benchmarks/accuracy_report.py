"""Regenerate docs/accuracy.md and its plots: `python benchmarks/accuracy_report.py [--cache DIR] [CSV ...]`.

Default data: every data/bench/perf_*.csv but a superseded version (data/bench/README.md).

Runs `llmplan validate` on the development data with the shipped calibration (in-sample)
and a leave-one-source-out cross-validation (calibrate without a source, predict it: the
honest figure for a setup that is not in our data), and writes the tables and two log-log
predicted-vs-measured plots (SVG, offline).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

from llmplan.catalog import load_catalog
from llmplan.perf.accuracy import (
    by_group,
    coverage_pct,
    cross_fitted,
    leave_one_source_out,
    leave_out,
    loso_figures,
    loso_targets,
    scored,
    svg_scatter,
)
from llmplan.perf.cases import bench_files, read_cases
from llmplan.perf.efficiency import table_from_catalog
from llmplan.perf.intervals import ALL_LEVELS, MIN_ROWS, scales_of
from llmplan.perf.validate import summarize

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "data" / "bench" / "perf_*.csv")
DOCS = ROOT / "docs"
TARGET_MDAPE, TARGET_WITHIN = 20.0, 70.0


def _fig(rows: list[dict]) -> str:
    o = summarize(rows)["overall"]
    cov = coverage_pct(rows)
    if not o["n"]:
        return "— | — | —"
    return f"{o['mdape_pct']:.1f} % | {o['within_25_pct']:.0f} % | {'—' if cov is None else f'{cov:.0f} %'}"


def leave_out_section(rows: list[dict], splits: dict[str, list[dict]]) -> list[str]:
    """The honest figures first: whole sources, engines and hardware families held out of the fit."""
    loso = splits["sources"]
    engines = sorted({r["engine"] for r in rows})
    families = sorted({r["family"] for r in rows})

    def per(key: str, values: list[str], out_split: str) -> list[str]:
        out = [f"| {key} | rows | held out with its source: MdAPE | within ±25 % | coverage | the whole {key} held "
               "out: MdAPE | within ±25 % | coverage |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for v in values:
            a = [r for r in loso if r[key] == v]
            b = [r for r in splits[out_split] if r[key] == v]
            out.append(f"| {v} | {len([r for r in rows if r[key] == v])} | {_fig(a)} | {_fig(b)} |")
        return out

    met = loso_targets(loso_figures(loso))
    return [
        "## For a setup that is not in the data",
        "",
        "Each split fits the calibration without the rows held out and predicts them. The 80 % interval is the "
        "one `llmplan estimate` prints: the fit's in-sample residual band scaled by the factor of its calibration "
        "level, which `llmplan calibrate` fits so that 80 % of the measurements of a source held out of the fit "
        "fall inside (perf/intervals.py; the factors are listed below). Here each held-out set gets the factors "
        "fitted on the leave-one-source-out rows that do not share its source, engine or family (cross-fitted: "
        "those rows were predicted by fits that did include it, a small leak). Coverage: the share of measured "
        "values inside the interval.",
        "",
        "| split | held out in turn | MdAPE | within ±25 % | 80 % interval coverage |",
        "| --- | --- | ---: | ---: | ---: |",
        f"| leave-one-source-out | each source group ({len({r['held_out'] for r in loso})}) | {_fig(loso)} |",
        f"| leave-one-engine-out | each engine ({len(engines)}) | {_fig(splits['engines'])} |",
        f"| leave-one-family-out | each hardware family ({len(families)}) | {_fig(splits['families'])} |",
        f"| in-sample (the shipped calibration) | nothing | {_fig(rows)} |",
        "",
        "Targets: " + "; ".join(f"{k}: **{'met' if v else 'missed'}**" for k, v in met.items()) + ".",
        "",
        "`tests/test_accuracy_refit.py` guards these figures with a refit, not the shipped file: the test suite fits "
        "the calibration again without each source group (tests/loso_refit.py, about 6 min of CPU in a second "
        "process while the other tests run) and fails where a target met here is missed, or where a missed one "
        "gets worse than reported.",
        "",
        "By engine:",
        "",
        *per("engine", engines, "engines"),
        "",
        "By hardware family:",
        "",
        *per("family", families, "families"),
        "",
    ]


def interval_section(cat, by_source: list[dict]) -> list[str]:
    """The shipped interval factors per calibration level and the held-out rows each was fitted on."""
    shipped = scales_of(cat.calibrations)
    counts = Counter(r["level"] for r in by_source if r.get("log_error") is not None)
    few = [lvl for lvl in shipped if lvl != ALL_LEVELS and counts.get(lvl, 0) < MIN_ROWS]
    return [
        "### How wide the intervals are",
        "",
        "`llmplan calibrate` refits without each source group in turn and, per calibration level, finds the "
        "factor by which the fit's in-sample residual band (10th–90th percentile) must be scaled for 80 % of "
        "the held-out measurements to fall inside. The shipped factors:",
        "",
        "| calibration level | held-out rows | factor |",
        "| --- | ---: | ---: |",
        *[f"| {lvl} | {counts.get(lvl, 0)} | ×{shipped[lvl]:.2f} |" for lvl in sorted(shipped) if lvl != ALL_LEVELS],
        "",
        (f"Levels with fewer than {MIN_ROWS} held-out rows ({', '.join(sorted(few))}) take the factor fitted on "
         "all held-out rows. " if few else "")
        + "A fallback level then takes at least the factor of every more specific level it stands in for (a "
        "setup with no data of its own is never given a relatively narrower interval than one with data).",
        "",
    ]


def table(summary: dict, loso: dict, by: str = "by_metric") -> list[str]:
    head = "metric" if by == "by_metric" else "scenario (as the benchmark ran)"
    out = [
        f"| {head} | rows | MdAPE (calibrated) | within ±25 % | MdAPE (leave-one-source-out) | within ±25 % (LOSO) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m, s in sorted(summary[by].items()):
        lo = loso[by].get(m, {})
        out.append(f"| {m} | {s['n']} | {s['mdape_pct']:.1f} % | {s['within_25_pct']:.0f} % | "
                   f"{lo.get('mdape_pct', float('nan')):.1f} % | {lo.get('within_25_pct', float('nan')):.0f} % |")
    o, lo = summary["overall"], loso["overall"]
    out.append(f"| **all** | {o['n']} | **{o['mdape_pct']:.1f} %** | **{o['within_25_pct']:.0f} %** | "
               f"**{lo['mdape_pct']:.1f} %** | **{lo['within_25_pct']:.0f} %** |")
    return out


def protocol_section() -> list[str]:
    """How each benchmark protocol is predicted, and the closed forms' agreement with the simulator
    (measured now, on the grid of llmplan.validation.finite_runs)."""
    from llmplan.validation import finite_runs

    errs = finite_runs.grid_errors()
    agree = finite_runs.summary(errs)
    sat = finite_runs.near_saturation()
    names = {"output_tok_s": "output throughput", "ttft_ms": "mean TTFT", "tpot_ms": "mean TPOT",
             "itl_ms": "mean ITL", "e2e_latency_s": "mean E2E"}
    return [
        "## How each benchmark is predicted",
        "",
        "A row is predicted as its benchmark was run (columns `scenario`, `num_prompts`, `length_dist`; "
        "DESIGN.md \"Benchmark cases\"):",
        "",
        "- **Blank `num_prompts`**: a long steady state (`perf/scenarios.py`): batch-1 speeds; a closed loop "
        "of C clients; the engine saturated at its sequence limit (max throughput); requests at a rate "
        "(Little's law).",
        "- **`max_throughput` with N prompts** (all sent at once: `vllm bench serve` at rate `inf`, "
        "`benchmark_throughput.py`, `trtllm-bench`): the engine admits up to its limit K; the start-up wave "
        "prefills K prompts in chunks of the step budget, so the mean TTFT is the queue of that wave; the rest "
        "wait for completions; the tail runs fewer and fewer sequences. Throughput is tokens over the makespan "
        "`T_burst(K) + (N − K) / μ` (`perf/finite.py`).",
        "- **`fixed_concurrency` with N prompts** (at most C in flight): the first C start together (a wave, "
        "as above); later requests are sent as earlier ones finish. With fixed lengths those requests finish "
        "together and their replacements arrive together: the wave repeats every O steps (lockstep), and a "
        "later request's TTFT is one step carrying the replacements' prompts. With a dataset's lengths they "
        "come one at a time, each prompt carried whole by one step.",
        "- **`server` with N prompts and a rate**: a fluid model of the load from an idle engine — the "
        "requests in flight relax towards `λ × E2E` with time constant E2E, a queue builds beyond the engine's "
        "limit; each arrival waits for the step in progress; the run ends when the last request is done.",
        "- **Lengths**: `fixed` (or blank) is every request at the stated lengths; `sharegpt` is the catalog "
        "workload preset `sharegpt` (ShareGPT as vLLM and SGLang sample it: lognormal shape from its mean and "
        "p95, capped at 1,024 prompt and 2,044 output tokens; sources in the catalog), scaled to the row's "
        "means. The longest request of an all-at-once run, which sets its tail, is the expected maximum of N "
        "draws.",
        "",
        "### Finite runs against the simulator",
        "",
        f"The closed forms are checked against the discrete-event simulator running the same protocol on "
        f"{len(errs)} grid points (Llama-3.1-8B on H100 and L40S; fixed 512/256, 2048/128, 128/1024 and "
        "ShareGPT lengths; 16–4,000 prompts at once, at concurrency 16, 64 and 1,500, and at 2 requests/s; "
        "`tests/test_finite.py`), with the same efficiencies on both sides. |closed form − simulator| / "
        "simulator:",
        "",
        "| metric | points | median | 90th percentile | largest |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {names[m]} | {a['n']} | {a['median_pct']:.1f} % | {a['p90_pct']:.1f} % | {a['max_pct']:.1f} % |"
          for m, a in agree.items()],
        "",
        "Left out: runs with more sequences in flight than the KV cache holds, where the simulator preempts "
        "and recomputes and the analytic model caps admission at what fits (the analytic model's KV-limited "
        "admission is the next modelling task), and rate-driven runs near saturation, where the simulator's "
        "queue fluctuates beyond the fluid model (500 prompts of 512/256 tokens at 40 requests/s on one H100: "
        f"TTFT {sat['ttft_ms']:+.0f} %, TPOT {sat['tpot_ms']:+.0f} %, output throughput {sat['output_tok_s']:+.0f} %).",
        "",
    ]


WEB_PAGE = Path(__file__).resolve().parents[1] / "src" / "llmplan" / "web" / "pages" / "accuracy.html"


def write_web_page(lines: list[str], rows, loso_rows) -> None:
    """The same report as the content of a web app page (/accuracy; the app adds its layout),
    charts inline, shipped in the package."""
    from llmplan.planner.report import md_html

    body = [x for x in lines[2:] if not x.startswith("![")]
    svgs = svg_scatter(rows, "calibrated (in-sample)") + svg_scatter(loso_rows, "leave-one-source-out")
    WEB_PAGE.write_text(
        "<main class='single'><section><h2>How accurate is llmplan? Predicted against measured</h2>"
        f"{md_html(chr(10).join(body))}<div>{svgs}</div></section></main>\n", encoding="utf-8")


EXT = ROOT / "data" / "bench" / "ext" / "perf_*.csv"


def cached_splits(cs, paths: list[Path], cache: Path | None) -> dict[str, list[dict]]:
    """The three held-out splits (24-odd refits, ~15 min of CPU); with --cache DIR they are kept under a key
    of everything they depend on (the data, the catalog and the perf code), so a rerun that changes only the
    report's text reuses them."""
    def compute() -> dict[str, list[dict]]:
        return {"sources": leave_one_source_out(cs), "engines": leave_out(cs, lambda c: c.engine),
                "families": leave_out(cs, lambda c: c.family)}

    if cache is None:
        return compute()
    src = ROOT / "src" / "llmplan"
    inputs = sorted([*paths, *(src / "catalog" / "data").glob("*.yaml"), *(src / "perf").glob("*.py"),
                     *(src / "serving").glob("*.py"), *(src / "memory").glob("*.py"), src / "specs.py"])
    h = hashlib.sha256()
    for f in inputs:
        h.update(f.name.encode() + f.read_bytes())
    path = cache / f"accuracy-splits-{h.hexdigest()[:16]}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    out = compute()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out), encoding="utf-8")
    return out


def unseen_section(cat, eff_table) -> list[str]:
    """Sources added after the calibration (data/bench/ext): predicted with the shipped calibration, never
    fitted on — the closest thing here to an independent test."""
    try:
        paths, _ = bench_files([str(EXT)])
    except Exception:  # no such folder in this checkout
        return []
    cs = read_cases(paths, cat)
    rows = scored(cs, eff_table)
    by = by_group(rows)
    n_unsup = len(cs.unsupported) + sum(r["status"] != "ok" for r in rows)
    n_unfit = sum("does not fit" in u.reason for u in cs.unsupported)
    return [
        "## Sources never used for calibration",
        "",
        f"`data/bench/ext/` holds {len(rows) + len(cs.unsupported):,} rows from {len(paths)} newer published sources "
        "(vLLM and SGLang on H100/H200/B200/MI300X/MI325X/MI355X/A100, large MoE models, vLLM-Ascend, batch-1 "
        "decode tables; data/bench/README.md lists them). They are not in the calibration: each is predicted "
        f"with the shipped one, as a user's new setup would be. {n_unsup - n_unfit:,} rows name an engine or format "
        "the catalog does not model (LMDeploy, MLX, MLC-LLM, TGI, ExLlamaV2, W4A4) and are counted as unsupported"
        + (f", as are {n_unfit:,} served rows whose deployment, as the row states it, leaves no memory for the KV "
           "cache (`llmplan validate` says \"does not fit\")" if n_unfit else "") + ".",
        "",
        "| source group | rows predicted | MdAPE | within ±25 % | 80 % interval coverage |",
        "| --- | ---: | ---: | ---: | ---: |",
        *[f"| {g} | {s['n']} | {_fig([r for r in rows if r['group'] == g])} |" for g, s in by.items() if s["n"]],
        f"| **all** | {summarize(rows)['overall']['n']} | {_fig(rows)} |",
        "",
    ]


def main() -> int:
    args = sys.argv[1:]
    cache = None
    if "--cache" in args:
        i = args.index("--cache")
        cache = Path(args[i + 1])
        del args[i:i + 2]
    paths, _ = bench_files(args or [DEFAULT])
    cat = load_catalog()
    cs = read_cases(paths, cat)
    eff_table = table_from_catalog(cat)
    rows = scored(cs, eff_table)
    summary = summarize(rows)
    summary["overall"]["unsupported"] = len(cs.unsupported)
    raw = cached_splits(cs, paths, cache)
    splits = {name: cross_fitted(raw[name], raw["sources"], key)
              for name, key in (("sources", "group"), ("engines", "engine"), ("families", "family"))}
    loso_rows = splits["sources"]
    loso = summarize(loso_rows)
    DOCS.mkdir(exist_ok=True)
    (DOCS / "accuracy-calibrated.svg").write_text(svg_scatter(rows, "calibrated (in-sample)"), encoding="utf-8")
    (DOCS / "accuracy-loso.svg").write_text(svg_scatter(loso_rows, "leave-one-source-out"), encoding="utf-8")
    groups_in, groups_out = by_group(rows), by_group(loso_rows)
    lines = [
        "# How accurate is llmplan?",
        "",
        f"Generated by `python benchmarks/accuracy_report.py` on {dt.date.today().isoformat()} from "
        f"{', '.join(f'`data/bench/{p.name}`' for p in paths)} ({len(rows)} measured rows, "
        f"{len(cs.unsupported)} unsupported). Every prediction uses "
        "the row's conditions only (model, hardware, layout, precision, engine, lengths, concurrency or request "
        "rate, scenario); the measured value is used only to score it, and to calibrate.",
        "",
        *leave_out_section(rows, splits),
        *interval_section(cat, raw["sources"]),
        *unseen_section(cat, eff_table),
        "## By metric, scenario and source",
        "",
        "Two figures for each metric. **Calibrated**: the shipped calibration, fitted on these same rows "
        "(`llmplan validate`). **Leave-one-source-out** (LOSO): for each source group, the calibration is fitted "
        "without it and the group is predicted — the number to expect for a setup that is not in our data. "
        "Targets: median absolute percentage error (MdAPE) ≤ 20 % for each metric with ≥ 10 rows; ≥ 70 % of "
        "rows within ±25 %.",
        "",
        *table(summary, loso),
        "",
        "By scenario, as each benchmark ran (`, N prompts`: a finite run of `num_prompts` requests; "
        "without it, a long steady state):",
        "",
        *table(summary, loso, "by_scenario"),
        "",
        "By source group (overall MdAPE / within ±25 %):",
        "",
        "| group | rows | calibrated | leave-one-source-out |",
        "| --- | ---: | --- | --- |",
        *[
            f"| {g} | {s['n']} | {s['mdape_pct']:.1f} % / {s['within_25_pct']:.0f} % | "
            f"{groups_out[g]['mdape_pct']:.1f} % / {groups_out[g]['within_25_pct']:.0f} % |"
            for g, s in groups_in.items()
        ],
        "",
        "Predicted against measured (log-log; the solid line is perfect, the dashed lines ±25 %):",
        "",
        "![calibrated](accuracy-calibrated.svg) ![leave-one-source-out](accuracy-loso.svg)",
        "",
        *protocol_section(),
        "## Metric definitions",
        "",
        "TTFT: per request, arrival to first token, including queueing and prefill interleaved with other "
        "requests' decode. TPOT: (E2E − TTFT) / (output tokens − 1); ITL is compared with it. Output throughput: "
        "generated tokens per second over all GPUs of the deployment (`_per_gpu` divides by their number). "
        "Max throughput: the engine saturated. Batch-1 speeds: llama.cpp `pp`/`tg` style, one sequence.",
        "",
        "## What the figures mean for you",
        "",
        "The development data are dominated by TensorRT-LLM on NVIDIA Hopper and llama.cpp on consumer GPUs; "
        "there are no vLLM rows, so vLLM predictions use the pooled fit of their hardware family and carry a "
        "wider interval (`llmplan estimate` says which calibration level it used). Leave-one-source-out removes "
        "whole engines or vendors at once (e.g. all SGLang/Ascend rows), so its error is the realistic one for "
        "a new engine × hardware combination.",
        "",
        "Known misses, reported rather than tuned away: `tpot_ms` (23.4 % in-sample, over the 20 % target): all "
        "20 rows are SGLang on Ascend with prefill/decode disaggregation and MTP speculative decoding (below); "
        "SGLang has no other source, so its fit leans on the pooled prior. `ttft_ms` (15.5 % in-sample, 21.9 % "
        "before the activation passes between the GEMMs were counted): the TensorRT-LLM v0.14 Triton "
        "online-serving rows at TP4 (Llama-3.1-70B on H100/H200) are predicted too fast, since all-reduce is the "
        "measured NVLink cost (collectives catalog) rather than a fitted latency that also absorbed what else "
        "makes TP4 slower there (thinner per-GPU GEMMs, Triton request handling). Family `blackwell` held out "
        "with its source (29.6 %; 32 % before the activation passes): all 69 rows are TensorRT-LLM 1.0 on "
        "B200/GB200 (NVFP4, mostly MoE); without them Blackwell is predicted from the Hopper rows' "
        "efficiencies, about 30 % faster than measured (Qwen3-30B-A3B +87 % on B200, +121 % on GB200). Published "
        "matmul measurements put B200 at the same fraction of its datasheet peak as Hopper (mamf-finder, "
        "ml-engineering: BF16 77.6 % against 80.3 % on H100 SXM, FP8 76.3 % against 70.9 %; the physics computes "
        "with these measured rates, catalog `matmul_tflops`), so the gap is that "
        "engine's PyTorch backend on Blackwell, which no hardware term transfers; the GB200 rows, on a faster "
        "GPU, are often slower than the B200's (a Grace host). `output_tok_s_per_gpu`: 18 of its 24 rows are "
        "SGLang on Ascend with prefill/decode "
        "disaggregation and MTP speculative decoding, which the model does not represent; predicted as their "
        "benchmark ran on one engine, the start-up wave's prefill lands on the decode steps, which on a "
        "disaggregated deployment it does not. The TensorRT-LLM "
        "`trtllm-bench` rows leave `num_prompts` blank (their notes do not give the dataset size), so they are "
        "predicted as a steady state.",
    ]
    (DOCS / "accuracy.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_web_page(lines, rows, loso_rows)
    print("\n".join(table(summary, loso)))
    ok = summary["overall"]["within_25_pct"] >= TARGET_WITHIN and all(
        s["mdape_pct"] <= TARGET_MDAPE for s in summary["by_metric"].values() if s["n"] >= 10)
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
