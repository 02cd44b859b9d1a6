"""Catalog overrides kept in the store, applied in memory (no files) on top of the catalog.

An override is a catalog entry a user posted over the REST API. It follows the catalog's schema
and id grammar (`catalog.ids`); its JSON is at most `MAX_OVERRIDE_BYTES` and there are at most
`MAX_OVERRIDES` of them (`MAX_REVISIONS` rows with their history). Replacing a built-in entry is
explicit (`?replace=true`, else 409); a name another entry already answers to is refused (409).
All of them together are at most `MAX_TOTAL_BYTES` (every computation carries them to its
worker). Overrides can be disabled and deleted. The catalog a computation uses is the base catalog plus
the enabled overrides that still validate; anything stored that does not (an entry written by
an older version, two entries that clash) is left out and listed, never silently used."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..catalog import Catalog, load_catalog, with_entries
from ..catalog.loader import validate_override
from ..catalog.schema import Entry
from ..errors import CatalogError, LlmplanError

KINDS = {"gpus": "accelerators", "models": "models", "formats": "quant_formats", "engines": "engines",
         "servers": "servers", "cloud-offers": "cloud_offers", "api-prices": "api_prices", "regions": "regions",
         "cost-assumptions": "cost_assumptions", "workloads": "workload_presets", "policy-presets": "policy_presets",
         "calibrations": "calibrations"}
MAX_OVERRIDES = 200
MAX_OVERRIDE_BYTES = 64 * 1024
MAX_TOTAL_BYTES = 2 * 2**20  # all overrides together: every computation carries them to its worker
MAX_REVISIONS = 5000


class Conflict(LlmplanError):
    """The override would shadow an entry without saying so, or claims a name already taken (HTTP 409)."""


@dataclass(frozen=True)
class OverrideSet:
    """The catalog with the store's overrides, which of them are in force and which are not."""

    catalog: Catalog
    in_force: tuple[dict[str, Any], ...]  # kind, id, revision, replaces_builtin
    not_in_force: tuple[dict[str, Any], ...]  # kind, id, revision, reason
    rows: tuple[tuple[str, str, int, str], ...]  # (kind, id, revision, body JSON) in force: rebuilds it elsewhere
    digest: str  # "" when none is in force

    def public(self) -> dict[str, Any]:
        return {"count": len(self.in_force), "digest": self.digest or None, "in_force": list(self.in_force),
                "not_in_force": list(self.not_in_force)}


def build(stored: list[dict[str, Any]]) -> OverrideSet:
    """The override set of the store's rows (`Store.overrides()`), cached by their content."""
    key = json.dumps([[o["kind"], o["entry_id"], o["revision"], o.get("enabled", True), o["body"]]
                      for o in stored], sort_keys=True, default=str)
    return _build(key)


@functools.lru_cache(maxsize=16)
def _build(key: str) -> OverrideSet:
    """In one pass: every stored entry validated once, the catalog rebuilt once with all of them.
    Only when that catalog refuses them together (two names that clash) are they added one at a
    time, to tell which one is left out and why."""
    base = load_catalog()
    skipped: list[dict[str, Any]] = []
    valid: list[tuple[dict[str, Any], str, Entry, Any]] = []
    for kind, entry_id, revision, enabled, body in json.loads(key):
        label = {"kind": kind, "id": entry_id, "revision": revision}
        if not enabled:
            skipped.append(label | {"reason": "disabled"})
            continue
        try:
            entry = _entry(kind, body, f"override {kind}/{entry_id}")
            if entry.id != entry_id:
                raise CatalogError(f"its body's id {entry.id!r} is not {entry_id!r}")
        except (LlmplanError, KeyError) as exc:
            skipped.append(label | {"reason": f"invalid: {exc}"})
            continue
        valid.append((label, kind, entry, body))
    by_kind: dict[str, list[Entry]] = {}
    for _, kind, entry, _ in valid:
        by_kind.setdefault(KINDS[kind], []).append(entry)
    try:
        cat = with_entries(base, by_kind) if valid else base
        kept = valid
    except CatalogError:  # a clash among them: find it by adding them one by one
        cat, kept = base, []
        for item in valid:
            label, kind, entry, _ = item
            try:
                cat = with_entries(cat, {KINDS[kind]: [entry]})
            except CatalogError as exc:
                skipped.append(label | {"reason": f"invalid: {exc}"})
                continue
            kept.append(item)
    in_force = [label | {"replaces_builtin": entry.id in getattr(base, KINDS[kind]).entries}
                for label, kind, entry, _ in kept]
    rows = [(kind, entry.id, label["revision"], json.dumps(body, sort_keys=True)) for label, kind, entry, body in kept]
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:12] if rows else ""
    return OverrideSet(cat, tuple(in_force), tuple(skipped), tuple(rows), digest)


@functools.lru_cache(maxsize=16)
def from_rows(rows: tuple[tuple[str, str, int, str], ...]) -> OverrideSet:
    """The same set rebuilt from `OverrideSet.rows` (what a worker process is sent); cached by the
    rows themselves, so a worker builds each state of the overrides once, not once per computation."""
    return build([{"kind": k, "entry_id": i, "revision": r, "enabled": True, "body": json.loads(b)}
                  for k, i, r, b in rows])


def _entry(kind: str, body: Any, label: str) -> Entry:
    if kind not in KINDS:
        raise CatalogError(f"{label}: no catalog {kind!r}; one of {', '.join(KINDS)}")
    return validate_override(KINDS[kind], body, label)


def check_new(kind: str, body: Any, current: OverrideSet, stored: list[dict[str, Any]], replace: bool) -> Entry:
    """Validate an override about to be stored (`stored`: the store's overrides now), against the
    catalog it will join."""
    size = len(json.dumps(body))
    if size > MAX_OVERRIDE_BYTES:
        raise LlmplanError(f"{kind} entry: {size:,} bytes of JSON is over the {MAX_OVERRIDE_BYTES:,}-byte limit "
                           "for one override")
    others = sum(len(json.dumps(o["body"])) for o in stored if (o["kind"], o["entry_id"]) != (kind, body.get("id")))
    if others + size > MAX_TOTAL_BYTES:
        raise LlmplanError(
            f"the overrides would hold {others + size:,} bytes of JSON, over the {MAX_TOTAL_BYTES:,}-byte "
            "limit for all of them together; delete some first"
        )
    stored_entries = len(stored)
    entry = _entry(kind, body, f"{kind} entry")
    table = getattr(current.catalog, KINDS[kind])
    ours = {o["id"] for o in current.in_force + current.not_in_force if o["kind"] == kind}
    if entry.id not in ours and stored_entries >= MAX_OVERRIDES:
        raise LlmplanError(f"{stored_entries} overrides are stored, the most a store keeps; delete some first "
                           "(DELETE /api/overrides/{kind}/{id})")
    if entry.id in table.entries and entry.id not in ours and not replace:
        raise Conflict(f"{entry.id!r} is a built-in {table.kind}; to replace it for every computation, post "
                       "again with ?replace=true (GET /api/health then lists it as replacing a built-in entry)")
    try:
        with_entries(current.catalog, {KINDS[kind]: [entry]})
    except CatalogError as exc:
        raise Conflict(str(exc)) from None
    return entry
