"""The only module that opens catalog files.

A catalog file is YAML with three top-level keys::

    schema_version: 1
    kind: accelerators          # one of schema.KIND_MODELS
    entries:
      - id: h100-sxm
        ...

The bundled files live in ``llmplan/catalog/data``. Users add or override entries with
their own files in one or more directories (``--catalog DIR`` or the ``LLMPLAN_CATALOG``
environment variable, ``os.pathsep``-separated): an entry whose id matches a bundled
entry replaces it whole; any other entry is added. Every entry is validated with the
same schema, and an invalid one stops loading with ``file: entry: field: reason``.
"""

from __future__ import annotations

import functools
import os
import statistics
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import CatalogError, LlmplanError
from ..yamlguard import yaml_error
from .schema import KIND_MODELS, VARIANT_FIELDS, Accelerator, Entry, Model

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """Safe YAML (no object construction) that leaves dates as strings for the schema to check."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in _BASE_LOADER.yaml_implicit_resolvers.items()
}

SCHEMA_VERSION = 1
ENV_VAR = "LLMPLAN_CATALOG"
MAX_FILE_BYTES = 16 * 2**20


def bundled_files() -> list[Path]:
    root = resources.files("llmplan.catalog") / "data"
    return sorted(Path(str(p)) for p in root.iterdir() if str(p).endswith((".yaml", ".yml")))


def user_dirs(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    dirs = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    dirs += [Path(p) for p in extra]
    for d in dirs:
        if not d.is_dir():
            raise CatalogError(f"catalog directory {str(d)!r} does not exist or is not a directory")
    return dirs


def _format_validation(path: Path, label: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(entry)"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{path}: {label}: {loc}: {first['msg']}{more}"


def _with_base(item: dict, local: dict[str, Entry], known: dict[str, Entry]) -> dict:
    """A model entry with ``variant_of``: the base entry's architecture fields under the entry's own."""
    base_id = item.get("variant_of")
    if not base_id:
        return item
    base = local.get(str(base_id)) or known.get(str(base_id))
    if base is None:
        raise ValueError(f"variant_of: no model {base_id!r} before this entry (give the base entry's exact id, "
                         "earlier in this file or in a file loaded before it)")
    if not isinstance(base, Model):
        raise ValueError(f"variant_of: {base_id!r} is not a model entry")
    inherited = base.model_dump(include=set(VARIANT_FIELDS), exclude_unset=True)
    return {**inherited, "config_source": base.config_source, **item}


def _bundled_yaml(text: str) -> Any:
    """A bundled catalog file parsed, from the user cache when this exact text was parsed before (a
    marshal of plain data, keyed by the text's hash: ~2 ms instead of ~80 ms for the whole catalog,
    which keeps the command line's start fast). No cache directory, or an unreadable entry: parsed."""
    import hashlib
    import marshal
    import os

    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    try:
        import platformdirs

        cache = Path(os.environ.get("LLMPLAN_CACHE_DIR") or platformdirs.user_cache_dir("llmplan")) / "catalog"
        return marshal.loads((cache / f"{key}.marshal").read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        pass
    doc = yaml.load(text, Loader=_Loader)  # noqa: S506 (safe loader)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{key}.{os.getpid()}.tmp"
        tmp.write_bytes(marshal.dumps(doc))
        tmp.replace(cache / f"{key}.marshal")
    except (OSError, ValueError, NameError):
        pass
    return doc


def read_file(path: Path, trusted: bool = False, known: dict[str, Entry] | None = None) -> tuple[str, list[Entry]]:
    """Parse and validate one catalog file; returns (kind, entries). `known`: entries of the same kind loaded
    before this file (a model's ``variant_of`` may name one of them)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise CatalogError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES} byte limit for a catalog file")
    try:
        text = path.read_text(encoding="utf-8")
        if trusted:
            doc = _bundled_yaml(text)
        else:  # the guarded loader: duplicate keys, nesting, alias bombs
            from ..yamlguard import load_yaml

            doc = load_yaml(text, str(path), max_nodes=5_000_000)
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as exc:
        raise CatalogError(yaml_error(exc, str(path))) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. an impossible date 2024-13-01
        raise CatalogError(f"{path}: not valid YAML ({exc})") from None
    except LlmplanError as exc:  # the loader reports its own error type
        raise CatalogError(str(exc)) from None
    if not isinstance(doc, dict):
        raise CatalogError(f"{path}: expected a mapping with keys schema_version, kind, entries")
    unknown = set(doc) - {"schema_version", "kind", "entries", "description"}
    if unknown:
        raise CatalogError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; expected schema_version, kind, entries"
        )
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise CatalogError(f"{path}: schema_version must be {SCHEMA_VERSION}, got {doc.get('schema_version')!r}")
    kind = doc.get("kind")
    if kind not in KIND_MODELS:
        raise CatalogError(f"{path}: kind must be one of {sorted(KIND_MODELS)}, got {kind!r}")
    raw = doc.get("entries")
    if not isinstance(raw, list):
        raise CatalogError(f"{path}: 'entries' must be a list")
    model = KIND_MODELS[kind]
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        label = f"entry {i + 1}"
        if isinstance(item, dict) and "id" in item:
            label += f" ({item['id']})"
        if not isinstance(item, dict):
            raise CatalogError(f"{path}: {label}: expected a mapping")
        try:
            if kind == "models":
                item = _with_base(item, {e.id: e for e in entries}, known or {})
            entry = model.model_validate(item)
        except ValidationError as exc:
            raise CatalogError(_format_validation(path, label, exc)) from None
        except ValueError as exc:
            raise CatalogError(f"{path}: {label}: {exc}") from None
        if not trusted:
            try:
                check_entry_names(entry, label)
            except ValueError as exc:
                raise CatalogError(f"{path}: {exc}") from None
        if entry.id in seen:
            raise CatalogError(f"{path}: {label}: duplicate id {entry.id!r}")
        seen.add(entry.id)
        entries.append(entry)
    return kind, entries


def check_entry_names(entry: Entry, label: str) -> None:
    """The entry's id, aliases and checkpoint ids follow the catalog's id grammar (catalog.ids)."""
    from .ids import check_names

    names = (*entry.aliases, *(c.id for c in getattr(entry, "checkpoints", ())))
    check_names(entry.id, names, label)


def validate_override(kind: str, body: object, label: str) -> Entry:
    """One user entry given as data (a catalog override stored by the web app): the schema of its
    kind and the id grammar. Raises CatalogError with `label: field: reason`."""
    if kind not in KIND_MODELS:
        raise CatalogError(f"{label}: kind must be one of {sorted(KIND_MODELS)}, got {kind!r}")
    if not isinstance(body, dict):
        raise CatalogError(f"{label}: expected a mapping")
    try:
        entry = KIND_MODELS[kind].model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(entry)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CatalogError(f"{label}: {loc}: {first['msg']}{more}") from None
    try:
        check_entry_names(entry, label)
    except ValueError as exc:
        raise CatalogError(str(exc)) from None
    return entry


def load_entries(extra_dirs: Iterable[str | os.PathLike[str]] = ()) -> tuple[dict[str, dict[str, Entry]], list[str]]:
    """All entries by kind and id, bundled first, user files on top. Returns (entries, overridden ids)."""
    by_kind: dict[str, dict[str, Entry]] = {k: {} for k in KIND_MODELS}
    for path in bundled_files():
        kind, entries = read_file(path, trusted=True, known=by_kind["models"])
        for e in entries:
            if e.id in by_kind[kind]:
                raise CatalogError(f"{path}: duplicate id {e.id!r} across bundled {kind} files")
            by_kind[kind][e.id] = e
    overridden: list[str] = []
    for d in user_dirs(extra_dirs):
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            kind, entries = read_file(path, known=by_kind["models"])
            for e in entries:
                if e.id in by_kind[kind]:
                    overridden.append(f"{kind}:{e.id}")
                by_kind[kind][e.id] = e
    return by_kind, overridden


def dump_entries(kind: str, entries: list[dict[str, Any]]) -> str:
    """YAML text of a catalog file (used by `llmplan calibrate` and tests)."""
    return yaml.safe_dump({"schema_version": SCHEMA_VERSION, "kind": kind, "entries": entries},
                          sort_keys=False, allow_unicode=True)


@functools.lru_cache(maxsize=1)
def typical_matmul_share() -> float:
    """The share of its rated peak a chip without a matmul measurement is taken to reach: the median of every
    measured share (each chip and data type, ``Accelerator.matmul_shares``) in the bundled accelerators file, but a
    GeForce card's half-rate BF16 (``Accelerator.half_rate_bf16``: above its rating, and not the path the median
    stands in for). Fixed by that file (``LLMPLAN_CATALOG`` is not read), so an override that measures its own chip
    moves no other's."""
    shares = [v for path in bundled_files() if path.name == "accelerators.yaml"
              for a in read_file(path, trusted=True)[1] if isinstance(a, Accelerator)
              for k, v in a.matmul_shares().items() if not (k == "bf16" and a.half_rate_bf16())]
    if not shares:
        raise CatalogError("the accelerators catalog has no matmul_tflops measurement to take a typical share from")
    return statistics.median(shares)
