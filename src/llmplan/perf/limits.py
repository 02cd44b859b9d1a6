"""How many sequences an engine runs at once, the bound every load estimate starts from."""

from __future__ import annotations

from ..catalog import Catalog
from ..memory.fit import fit as memory_fit
from ..specs import Deployment


def engine_limit(d: Deployment, cat: Catalog, input_len: float, output_len: float) -> float:
    """Sequences the engine runs at once: its max_num_seqs, or what the KV cache holds when
    KV blocks are allocated as sequences grow (on average a sequence holds I + O/2 tokens)."""
    occupancy = max(int(input_len + output_len / 2), 1)
    mem = memory_fit(d, tuple(cat.gguf_types), context_tokens=min(occupancy, d.model.max_context))
    kv_bound = mem.kv_capacity_tokens / occupancy
    return float(max(1.0, min(d.engine.defaults.max_num_seqs, kv_bound)))
