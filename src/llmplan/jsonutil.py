"""Plain JSON from results that hold numpy scalars, tuples and non-finite floats; and the checks
every document a client sends goes through (nesting depth, size, control characters), done
without recursion so that a hostile document costs no more than its size."""

from __future__ import annotations

import re
from typing import Any

from .errors import LlmplanError

MAX_DEPTH = 32  # a scenario nests 4 levels, a catalog entry 5: 32 leaves room and stops recursion bombs
MAX_NODES = 1_000_000
# C0 control characters other than tab, newline and carriage return: PostgreSQL refuses NUL in
# text, and the others are terminal escapes, never part of a name or a note
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def jsonable(x: Any) -> Any:
    """Non-finite floats become null (JSON has no Infinity); tuples become lists."""
    if hasattr(x, "item") and not isinstance(x, (list, dict, tuple)):  # numpy scalars
        x = x.item()
    if isinstance(x, float):
        return x if x == x and abs(x) != float("inf") else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x


def check_document(doc: Any, label: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Refuse a document nested deeper than `max_depth`, with more than `max_nodes` values
    (aliases counted as copies), or with control characters in a key or a string. Iterative:
    the cost is bounded by the limits, not by the document."""
    count = 0
    stack: list[tuple[Any, int, str]] = [(doc, 0, "")]
    while stack:
        x, depth, where = stack.pop()
        count += 1
        if count > max_nodes:
            raise LlmplanError(f"{label}: expands to more than {max_nodes:,} values (YAML aliases that repeat "
                               "aliases count as copies); write the values out, or a smaller document")
        if isinstance(x, str):
            if _CONTROL.search(x):
                raise LlmplanError(f"{label}{where}: control character "
                                   f"{_CONTROL.search(x).group()!r} in text; remove it")  # type: ignore[union-attr]
        elif isinstance(x, (dict, list, tuple)):
            if depth >= max_depth:
                raise LlmplanError(f"{label}: nested more than {max_depth} levels deep; a scenario or catalog "
                                   "entry needs a handful")
            if isinstance(x, dict):
                for k, v in x.items():
                    path = f"{where}.{k}" if isinstance(k, str) and len(where) < 200 else where
                    stack.append((k, depth + 1, where))
                    stack.append((v, depth + 1, path))
            else:
                stack.extend((v, depth + 1, where) for v in x)
