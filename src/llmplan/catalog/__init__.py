"""The catalog: facts about accelerators, servers, models, formats and engines.

``load_catalog()`` returns a :class:`Catalog` whose lookups accept an id or any alias,
case- and punctuation-insensitively, and answer an unknown name with the closest ids.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import CatalogError, UnknownIdError
from .loader import load_entries
from .schema import (
    Accelerator,
    ApiPrice,
    Benchmark,
    Calibration,
    Checkpoint,
    CloudOffer,
    Collective,
    CostAssumption,
    CountryGroup,
    Engine,
    Entry,
    GgufType,
    KvFormat,
    Model,
    ModelQuality,
    PolicyPreset,
    Provider,
    QuantFormat,
    Region,
    ResaleCurve,
    Server,
    SoftwareLicence,
    WeightOnlyKernel,
    WorkloadPreset,
)

E = TypeVar("E", bound=Entry)

__all__ = ["Catalog", "Table", "load_catalog", "normalize_name", "with_entries"]


def normalize_name(name: str) -> str:
    """'H100 SXM5 80GB' -> 'h100sxm580gb': the key aliases are matched on (and clashes found by):
    NFKC case-folded (`llmplan.names.name_key`: 'Ｈ１００' is 'h100'), letters and digits only."""
    if name.isascii():  # the common case, and the same result: NFKC and case folding leave ASCII as lower()
        return _NOT_ALNUM.sub("", name.lower())
    from ..names import name_key

    return "".join(ch for ch in name_key(name) if ch.isalnum())


_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@dataclass(frozen=True)
class Table(Generic[E]):
    """Entries of one kind, looked up by id or alias."""

    kind: str
    entries: dict[str, E]
    _index: dict[str, str] = field(default_factory=dict, repr=False)
    clashes: list[tuple[str, str, str]] = field(default_factory=list, repr=False)  # (name, its entry, taken by)

    def __post_init__(self) -> None:
        for e in self.entries.values():
            for name in (e.id, *e.aliases, *_checkpoint_ids(e)):
                owner = self._index.setdefault(normalize_name(name), e.id)
                if owner != e.id:
                    self.clashes.append((name, e.id, owner))

    def __iter__(self) -> Iterator[E]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> E | None:
        if name in self.entries:
            return self.entries[name]
        key = self._index.get(normalize_name(name))
        return self.entries[key] if key else None

    def get(self, name: str) -> E:
        found = self.find(name)
        if found is None:
            raise UnknownIdError(self.kind, name, self.suggest(name))
        return found

    def suggest(self, name: str, n: int = 3) -> list[str]:
        key = normalize_name(name)
        close = difflib.get_close_matches(key, list(self._index), n=n * 3, cutoff=0.6)
        ids = list(dict.fromkeys(self._index[c] for c in close))
        if not ids and key:
            ids = [self._index[k] for k in self._index if key in k or k in key]
            ids = list(dict.fromkeys(ids))
        return ids[:n]


def _checkpoint_ids(e: Entry) -> Iterable[str]:
    return [c.id for c in getattr(e, "checkpoints", ())]


@dataclass(frozen=True)
class Catalog:
    accelerators: Table[Accelerator]
    servers: Table[Server]
    models: Table[Model]
    quant_formats: Table[QuantFormat]
    benchmarks: Table[Benchmark]
    model_quality: Table[ModelQuality]
    kv_formats: Table[KvFormat]
    gguf_types: Table[GgufType]
    engines: Table[Engine]
    calibrations: Table[Calibration]
    workload_presets: Table[WorkloadPreset]
    cloud_offers: Table[CloudOffer]
    api_prices: Table[ApiPrice]
    regions: Table[Region]
    software_licences: Table[SoftwareLicence]
    resale_curves: Table[ResaleCurve]
    cost_assumptions: Table[CostAssumption]
    country_groups: Table[CountryGroup]
    policy_presets: Table[PolicyPreset]
    providers: Table[Provider]
    collectives: Table[Collective]
    kernels: Table[WeightOnlyKernel]
    overridden: tuple[str, ...] = ()

    def accelerator(self, name: str) -> Accelerator:
        return self.accelerators.get(name)

    def model(self, name: str) -> Model:
        return self.models.get(name)

    def quant_format(self, name: str) -> QuantFormat:
        return self.quant_formats.get(name)

    def kv_format(self, name: str) -> KvFormat:
        return self.kv_formats.get(name)

    def engine(self, name: str) -> Engine:
        return self.engines.get(name)

    def server(self, name: str) -> Server:
        return self.servers.get(name)

    def checkpoint(self, name: str) -> tuple[Model, Checkpoint | None]:
        """A model id, alias or checkpoint id -> (model, the checkpoint when `name` names one)."""
        model = self.models.get(name)
        key = normalize_name(name)
        return model, next((c for c in model.checkpoints if normalize_name(c.id) == key), None)


_LABELS = {
    "accelerators": "accelerator",
    "servers": "server",
    "models": "model",
    "quant_formats": "quantization format",
    "benchmarks": "quality benchmark",
    "model_quality": "model quality entry",
    "kv_formats": "KV-cache format",
    "gguf_types": "GGUF type",
    "engines": "engine",
    "calibrations": "calibration",
    "workload_presets": "workload preset",
    "cloud_offers": "cloud GPU offer",
    "api_prices": "API price",
    "regions": "region",
    "software_licences": "software licence",
    "resale_curves": "resale curve",
    "cost_assumptions": "cost assumption",
    "country_groups": "country group",
    "policy_presets": "policy preset",
    "providers": "provider",
    "collectives": "collective measurement",
    "kernels": "weight-only kernel",
}


def _check_quality(by_kind: dict[str, dict[str, Entry]]) -> None:
    """Quality entries name catalog models and benchmarks exactly (a typo must not leave a model unscored)."""
    models, benchmarks = by_kind["models"], by_kind["benchmarks"]
    for q in by_kind["model_quality"].values():
        if q.id not in models:
            raise CatalogError(f"model_quality {q.id!r}: no catalog model has this id (use the model's exact id)")
        for b in q.scores:  # type: ignore[attr-defined]
            if b not in benchmarks:
                raise CatalogError(f"model_quality {q.id!r}: unknown benchmark {b!r}; known: {sorted(benchmarks)}")


def _build(extra_dirs: tuple[str, ...]) -> Catalog:
    by_kind, overridden = load_entries(extra_dirs)
    _check_quality(by_kind)
    tables = {k: Table(_LABELS[k], v) for k, v in by_kind.items()}
    _refuse_clashes(tables)
    return Catalog(**tables, overridden=tuple(overridden))  # type: ignore[arg-type]


def _refuse_clashes(tables: dict[str, Table]) -> None:
    """A name (id, alias or checkpoint id) that two entries claim would silently resolve to the
    first: an error instead (the bundled catalog has none; user entries must not add one)."""
    for kind, t in tables.items():
        if t.clashes:
            name, entry, owner = t.clashes[0]
            raise CatalogError(f"{kind}: {entry!r} names itself {name!r}, which already names {owner!r}; "
                               "remove that alias or give the entry the other's id to replace it")


def with_entries(base: Catalog, extra: dict[str, list[Entry]]) -> Catalog:
    """`base` with `extra` entries (by catalog kind) added, or replacing the entry of the same id
    whole; a name another entry already answers to is a CatalogError. Used for the web app's
    stored overrides, which live in memory (no files)."""
    tables = {}
    for kind in _LABELS:
        t: Table = getattr(base, kind)
        if extra.get(kind):
            entries = dict(t.entries)
            entries.update({e.id: e for e in extra[kind]})
            t = Table(_LABELS[kind], entries)
        tables[kind] = t
    _refuse_clashes(tables)
    overridden = [f"{k}:{e.id}" for k, es in extra.items() for e in es if e.id in getattr(base, k).entries]
    return Catalog(**tables, overridden=(*base.overridden, *overridden))


@functools.lru_cache(maxsize=8)
def _cached(extra_dirs: tuple[str, ...], env: str, stamp: tuple[tuple[str, int, int], ...]) -> Catalog:
    return _build(extra_dirs)


def _stamp(dirs: tuple[str, ...], env: str) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the user files: a changed file means a new catalog."""
    out = []
    for d in (*dirs, *[p for p in env.split(os.pathsep) if p.strip()]):
        try:
            for f in sorted(os.scandir(d), key=lambda x: x.name):
                if f.name.endswith((".yaml", ".yml")):
                    st = f.stat()
                    out.append((f.path, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((d, -1, -1))  # missing: the loader reports it
    return tuple(out)


def load_catalog(extra_dirs: Iterable[str | os.PathLike[str]] = ()) -> Catalog:
    """The bundled catalog plus user directories (arguments and ``LLMPLAN_CATALOG``)."""
    dirs = tuple(str(d) for d in extra_dirs)
    env = os.environ.get("LLMPLAN_CATALOG", "")
    return _cached(dirs, env, _stamp(dirs, env))
