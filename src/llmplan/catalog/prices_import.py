"""Offline import of a newer price list into catalog override files.

Two public price-map formats are read:

* ``gpuhunt`` — a dstackai/gpuhunt per-provider catalog CSV (``aws.csv``, ``gcp.csv`` …) with the columns
  ``instance_name,location,price,cpu,memory,gpu_count,gpu_name,gpu_memory,spot,...`` (price in USD per
  instance-hour; one row per instance, location and on-demand/spot). Writes ``cloud_offers.yaml``.
* ``litellm`` — BerriAI/litellm's ``model_prices_and_context_window.json`` (model key -> ``input_cost_per_token``,
  ``output_cost_per_token``, ``cache_read_input_token_cost``, ``litellm_provider``, ``mode`` …; USD per token).
  Writes ``api_prices.yaml``.

Provider jurisdiction and region countries come from the catalog's ``providers`` table, GPU names are
resolved through the accelerator catalog's aliases and checked against the row's GPU memory; a name, provider
or location the catalog does not know is reported and its rows skipped, never guessed. The whole file is
validated before anything is written; a bad file raises :class:`PriceImportError` and writes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import LlmplanError
from . import Catalog, normalize_name
from .loader import MAX_FILE_BYTES, dump_entries
from .schema import ApiPrice, CloudOffer, Provider

FORMATS = ("gpuhunt", "litellm")
GPUHUNT_COLUMNS = ("instance_name", "location", "price", "gpu_count", "gpu_name", "gpu_memory", "spot")
MEMORY_TOLERANCE = 0.06  # a listed GPU memory within 6 % of the catalog's (GB vs GiB, usable vs nominal)


class PriceImportError(LlmplanError):
    """A price file that cannot be imported (unreadable, wrong format, no usable row)."""


@dataclass
class ImportResult:
    kind: str
    entries: list[dict[str, Any]]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PriceImportError(f"{path}: cannot read ({exc.strerror})") from None
    if not path.is_file():
        raise PriceImportError(f"{path}: not a file")
    if size > 64 * MAX_FILE_BYTES:
        raise PriceImportError(f"{path}: {size} bytes is too large for a price file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise PriceImportError(f"{path}: not a UTF-8 text file") from None


def file_date(path: Path) -> str:
    """The file's modification date (UTC), the as_of of its prices when no --as-of is given."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC).date().isoformat()


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", "-".join(parts).lower()).strip("-")


def _number(value: str, what: str, row: int, path: Path) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise PriceImportError(f"{path}: row {row}: {what} {value!r} is not a number") from None
    if x != x or x in (float("inf"), float("-inf")) or x < 0:
        raise PriceImportError(f"{path}: row {row}: {what} {value!r} is not a non-negative number")
    return x


def find_provider(cat: Catalog, name: str, fmt: str) -> Provider | None:
    key = normalize_name(name)
    for p in cat.providers:
        names = p.gpuhunt_names if fmt == "gpuhunt" else p.litellm_names
        if key in {normalize_name(n) for n in names}:
            return p
    return None


def resolve_gpu(cat: Catalog, name: str, memory_gb: float | None) -> str | None:
    """A gpuhunt GPU name (+ its memory) -> an accelerator id, only when the catalog's aliases say so."""
    candidates = [f"{name} {memory_gb:g}GB", f"{name}{memory_gb:g}GB"] if memory_gb else []
    for guess in (*candidates, name):
        acc = cat.accelerators.find(guess)
        if acc is None:
            continue
        if memory_gb and abs(acc.memory_gib - memory_gb) > MEMORY_TOLERANCE * acc.memory_gib:
            continue  # the alias names another memory size: not this part
        return acc.id
    return None


def _gpuhunt_rows(text: str, path: Path) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    cols = set(reader.fieldnames or ())
    missing = [c for c in GPUHUNT_COLUMNS if c not in cols]
    if missing:
        raise PriceImportError(f"{path}: not a gpuhunt catalog CSV (missing column(s) {', '.join(missing)}; "
                               f"expected {','.join(GPUHUNT_COLUMNS)},...)")
    try:
        return list(reader)
    except csv.Error as exc:
        raise PriceImportError(f"{path}: not a valid CSV ({exc})") from None


def import_gpuhunt(cat: Catalog, path: Path, as_of: str, provider_name: str | None = None) -> ImportResult:
    rows = _gpuhunt_rows(_read_text(path), path)
    pname = provider_name or path.stem
    provider = find_provider(cat, pname, "gpuhunt")
    if provider is None:
        known = sorted({n for p in cat.providers for n in p.gpuhunt_names})
        raise PriceImportError(f"{path}: unknown gpuhunt provider {pname!r} (from the file name; pass --provider); "
                               f"the providers table knows: {', '.join(known)}")
    res = ImportResult("cloud_offers", [])
    offers: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(rows, start=2):
        price = _number(r["price"], "price", i, path)
        count = int(_number(r["gpu_count"] or "0", "gpu_count", i, path))
        if count < 1 or price <= 0:
            res.skip("no GPU or no price")
            continue
        memory = _number(r["gpu_memory"], "gpu_memory", i, path) if r["gpu_memory"] else None
        acc = resolve_gpu(cat, r["gpu_name"], memory)
        if acc is None:
            res.skip(f"unknown GPU {r['gpu_name']} {memory or '?'}GB")
            continue
        country = provider.country_of(r["location"])
        if country is None:
            res.skip(f"location {r['location']!r} not in the providers table")
            continue
        _add_offer(offers, provider, r, acc, count, price, country, path, as_of)
    res.entries = list(offers.values())
    return res


def _add_offer(offers: dict[str, dict[str, Any]], provider: Provider, r: dict[str, str], acc: str, count: int,
               price: float, country: str, path: Path, as_of: str) -> None:
    oid = _slug(provider.id, r["instance_name"], r["location"])
    spot = r["spot"].strip().lower() in ("true", "1", "yes")
    o = offers.setdefault(oid, {
        "id": oid, "provider": provider.name or provider.id, "provider_country": provider.country,
        "region": r["location"], "region_country": country, "sovereign": provider.sovereign, "accelerator": acc,
        "gpus_per_instance": count, "instance_type": r["instance_name"],
        "source": f"{path.name} (dstackai/gpuhunt catalog CSV, provider {provider.id}) imported with "
                  f"`llmplan catalog import-prices` ; {provider.source}",
        "as_of": as_of, "notes": f"USD per instance-hour / {count} GPUs; provider jurisdiction and region country "
                                 f"from the catalog's providers table ({provider.id})."})
    key = "usd_per_gpu_hour_spot" if spot else "usd_per_gpu_hour_on_demand"
    per_gpu = round(price / count, 6)
    o[key] = min(per_gpu, o.get(key, per_gpu))  # several zones of one location: the cheapest


def _litellm_doc(text: str, path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceImportError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not any(isinstance(v, dict) and "litellm_provider" in v for v in doc.values()):
        raise PriceImportError(f"{path}: not a litellm model_prices_and_context_window.json (expected an object of "
                               "model keys with litellm_provider, input_cost_per_token, output_cost_per_token)")
    return doc


def import_litellm(cat: Catalog, path: Path, as_of: str) -> ImportResult:
    doc = _litellm_doc(_read_text(path), path)
    res = ImportResult("api_prices", [])
    for key, v in doc.items():
        if key == "sample_spec" or not isinstance(v, dict) or v.get("mode", "chat") != "chat":
            continue
        entry = _litellm_entry(cat, key, v, path, as_of, res)
        if entry is not None:
            res.entries.append(entry)
    return res


def _per_mtok(v: dict[str, Any], name: str, key: str, path: Path) -> float | None:
    x = v.get(name)
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x or x < 0 or x == float("inf"):
        raise PriceImportError(f"{path}: {key}: {name} {x!r} is not a non-negative number")
    return round(float(x) * 1e6, 6)


def _litellm_entry(cat: Catalog, key: str, v: dict[str, Any], path: Path, as_of: str,
                   res: ImportResult) -> dict[str, Any] | None:
    inp = _per_mtok(v, "input_cost_per_token", key, path)
    out = _per_mtok(v, "output_cost_per_token", key, path)
    if inp is None or out is None:
        res.skip("no input/output price")
        return None
    provider = find_provider(cat, str(v.get("litellm_provider", "")), "litellm")
    if provider is None:
        res.skip(f"provider {v.get('litellm_provider')!r} not in the providers table")
        return None
    model_name = key.split("/", 1)[1] if key.startswith(f"{v.get('litellm_provider')}/") else key
    model = cat.models.find(model_name) or cat.models.find(model_name.rsplit("/", 1)[-1])
    if model is None and not provider.first_party:
        res.skip("model not in the catalog and the provider serves others' models (open or closed unknown)")
        return None
    e: dict[str, Any] = {
        "id": _slug(provider.id, model_name),
        "provider": provider.name or provider.id,
        "provider_country": provider.country,
        "model": model_name,
        "catalog_model": model.id if model else None,
        "weights": "open" if model else "closed",
        "input_usd_per_mtok": inp,
        "output_usd_per_mtok": out,
        "cached_input_usd_per_mtok": _per_mtok(v, "cache_read_input_token_cost", key, path),
        "data_regions": list(provider.data_regions),
        "source": f"{path.name} (BerriAI/litellm model_prices_and_context_window.json, key {key}) imported with "
        f"`llmplan catalog import-prices`" + (f" ; {v['source']}" if isinstance(v.get("source"), str) else ""),
        "as_of": as_of,
        "notes": "USD per token x 1e6. weights: open when the model is in the model catalog, closed for a "
        "first-party provider's own model; provider country from the catalog's providers table.",
    }
    return {k: x for k, x in e.items() if x is not None}


def run_import(cat: Catalog, path: Path, fmt: str, as_of: str | None = None,
               provider: str | None = None) -> ImportResult:
    if fmt not in FORMATS:
        raise PriceImportError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    date = as_of or file_date(path) if path.exists() else as_of or ""
    res = import_gpuhunt(cat, path, date, provider) if fmt == "gpuhunt" else import_litellm(cat, path, date)
    if not res.entries:
        why = "; ".join(f"{n} x {r}" for r, n in sorted(res.skipped.items())) or "the file has no rows"
        raise PriceImportError(f"{path}: no row could be imported ({why})")
    _replace_existing(cat, res)
    _validate(res, path)
    return res


def _replace_existing(cat: Catalog, res: ImportResult) -> None:
    """An imported entry whose id names an existing catalog entry (its id or an alias, up to
    punctuation: aws-p5.48xlarge-… is aws-p5-48xlarge-…) takes that entry's id, so the override
    replaces it instead of clashing with it."""
    table = getattr(cat, res.kind)
    for e in res.entries:
        existing = table.find(e["id"])
        if existing is not None:
            e["id"] = existing.id


def _validate(res: ImportResult, path: Path) -> None:
    model = CloudOffer if res.kind == "cloud_offers" else ApiPrice
    seen: set[str] = set()
    for e in res.entries:
        if e["id"] in seen:
            raise PriceImportError(f"{path}: two rows give the id {e['id']!r}")
        seen.add(e["id"])
        try:
            model.model_validate(e)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise PriceImportError(f"{path}: {e['id']}: {loc}: {first['msg']}") from None


def write_override(res: ImportResult, out_dir: Path) -> Path:
    """Write ``<kind>.yaml`` into out_dir atomically (a temporary file renamed into place)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{res.kind}.yaml"
    text = dump_entries(res.kind, res.entries)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{res.kind}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def summary(res: ImportResult) -> Iterable[str]:
    yield f"{len(res.entries)} {res.kind.replace('_', ' ')} imported"
    for reason, n in sorted(res.skipped.items(), key=lambda x: -x[1]):
        yield f"skipped {n} row(s): {reason}"
