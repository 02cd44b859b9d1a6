"""What the CLI says when an answer is "no": a model name that is a closed model, a path that is
not there, the layout it chose for a GPU count, and what to try when a model does not fit —
each computed from the catalog and the request, never a canned sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import LlmplanError, UnknownIdError

PATH_PREFIXES = ("./", "../", "/", "~", ".\\")
PATH_SUFFIXES = (".json", ".gguf", ".safetensors")


def check_model_path(name: str) -> None:
    """A MODEL written as a path (./dir, /abs, ~/x, dir/, *.gguf …) that does not exist: say so,
    rather than looking it up as a catalog name."""
    if not (name.startswith(PATH_PREFIXES) or name.endswith(("/", "\\")) or name.lower().endswith(PATH_SUFFIXES)):
        return
    if not Path(name).expanduser().exists():
        raise LlmplanError(f"{name}: no such path (MODEL is a catalog id — `llmplan catalog models` — or a "
                           "config.json, a model directory or a .gguf file)")


def _norm(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def closed_model(exc: UnknownIdError) -> str | None:
    """For an unknown model that the catalog knows as a closed model served by an API: one line
    saying it cannot be self-hosted and which open families can."""
    if exc.kind != "model":
        return None
    from ..catalog import load_catalog

    cat = load_catalog()
    name = _norm(exc.name.split("/")[-1])
    hits = [p for p in cat.api_prices if p.weights == "closed" and _norm(p.model.split("/")[-1]) == name]
    if not hits:
        return None
    providers = sorted({p.provider for p in hits})
    families = sorted({m.family for m in cat.models if m.family})
    return (f"{exc.name!r} is a closed model (weights not published; served only through the API of "
            f"{', '.join(providers)}), so it cannot be self-hosted (its price: `llmplan catalog api-prices --filter "
            f"{exc.name}`); open families in the catalog: {', '.join(families)} (`llmplan catalog models`)")


def layout_note(req: Any, r: Any, cat: Any) -> str | None:
    """When --num-gpus was given without --tp/--pp and the chosen tensor-parallel size is not all
    the GPUs: which layout was chosen, why, and which GPU counts give tensor parallel over all."""
    if not req.num_gpus or req.num_gpus == 1 or req.tp is not None or req.pp is not None or r.tp == r.num_gpus:
        return None
    eng = cat.engine(r.engine)
    if "tp" not in eng.parallelism:
        return None
    m, acc = cat.model(r.model), cat.accelerator(r.gpu)
    domain = max(acc.max_per_server or 1, acc.interconnect.domain_size or 1)
    ok = [t for t in range(2, domain + 1) if _tp_ok(t, m)]
    why = (f"TP {r.num_gpus} does not divide the {m.num_attention_heads} attention heads / {m.num_kv_heads} KV heads"
           if not _tp_ok(r.num_gpus, m) else f"{r.gpu} joins at most {domain} GPUs in one scale-up domain")
    return (f"layout chosen for --num-gpus {r.num_gpus}: TP {r.tp} × PP {r.pp} ({why}); tensor parallel over all "
            f"GPUs works with --num-gpus {', '.join(map(str, ok)) or '1'}, or set --tp and --pp yourself")


def _tp_ok(t: int, m: Any) -> bool:
    return m.num_attention_heads % t == 0 and (m.mla is not None or m.num_kv_heads % t == 0
                                                or t % m.num_kv_heads == 0)
