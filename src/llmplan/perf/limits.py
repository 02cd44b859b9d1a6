"""How many sequences an engine runs at once, the bound every load estimate starts from."""

from __future__ import annotations

from ..catalog import Catalog
from ..errors import LlmplanError
from ..memory.fit import fit as memory_fit
from ..specs import Deployment

GROWING_ANSWER_SHARE = 0.5  # blocks taken as a sequence grows: on average over its life it holds half its answer


def reserves_answer(d: Deployment) -> bool:
    """The engine takes KV blocks for the whole answer at admission (execution.kv_admission ``reserve``)."""
    return d.engine.execution.kv_admission == "reserve"


def held_tokens(d: Deployment, input_len: float, output_len: float) -> float:
    """The KV tokens a sequence holds on average over its life: its prompt and half its answer where blocks are
    taken as it grows, its prompt and its whole answer where the engine reserves them at admission."""
    return input_len + output_len * answer_share(d)


def answer_share(d: Deployment) -> float:
    """The share of a sequence's answer its KV blocks hold on average over its life (:func:`held_tokens`)."""
    return 1.0 if reserves_answer(d) else GROWING_ANSWER_SHARE


def engine_limit(d: Deployment, cat: Catalog, input_len: float, output_len: float, *,
                 memory_fraction: float | None = None, max_num_seqs: int | None = None,
                 max_num_batched_tokens: int | None = None, strict: bool = False,
                 kv_capacity_tokens: float | None = None) -> float:
    """Sequences the engine runs at once: its max_num_seqs, or what the KV cache holds when
    KV blocks are allocated as sequences grow (on average a sequence holds I + O/2 tokens), or, for an engine
    that reserves them at admission (execution.kv_admission ``reserve``, TensorRT-LLM), I + O each.
    The keyword arguments override the engine's defaults as its server flags do
    (``--gpu-memory-utilization``, ``--max-num-seqs``, ``--max-num-batched-tokens``). `strict`:
    a deployment with no memory left for the KV cache is refused (it cannot serve) rather than
    given a limit of one sequence. `kv_capacity_tokens`: the KV cache where
    the caller has already fitted the deployment's memory (at its served context)."""
    occupancy = max(int(held_tokens(d, input_len, output_len)), 1)
    if kv_capacity_tokens is not None and not strict:
        return float(max(1.0, min(max_num_seqs or d.engine.defaults.max_num_seqs, kv_capacity_tokens / occupancy)))
    mem = memory_fit(d, tuple(cat.gguf_types), context_tokens=min(occupancy, d.model.max_context),
                     memory_fraction=memory_fraction, max_num_batched_tokens=max_num_batched_tokens,
                     max_num_seqs=max_num_seqs)
    if strict and mem.kv_capacity_tokens <= 0:
        why = mem.reasons[0] if mem.reasons else "no memory left for the KV cache"
        raise LlmplanError(f"{d.model.id} does not fit {d.layout.num_gpus} × {d.accelerator.id} with {d.engine.id}: "
                           f"{why}")
    kv_bound = mem.kv_capacity_tokens / occupancy
    return float(max(1.0, min(max_num_seqs or d.engine.defaults.max_num_seqs, kv_bound)))
