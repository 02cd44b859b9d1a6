"""YAML from users, read defensively: one loader (`load_yaml`) for scenarios, the web app's YAML,
workload files and user catalog files.

- Safe construction only (no Python tags); dates stay text (the schemas check them).
- A key given twice in one mapping is an error (a silent "last one wins" hides typos).
- Nesting deeper than `MAX_DEPTH` is refused from the parser's event stream, before any
  recursive composition: a 1,000-deep document costs its scan, not a RecursionError.
- Alias bombs ("billion laughs"): safe_load builds shared references, so a few hundred bytes can
  stand for billions of nodes that validation or JSON output would then walk;
  `check_expanded_size` walks the document as if every alias were copied and stops at a limit.
- Tags (`!!python/object`, `!!binary`, `!!set`, any `!local` tag) are refused in the same scan,
  naming the tag: a user document is plain mappings, lists and scalars, typed by the schemas.
- Integers too long to convert (Python refuses > 4,300 digits) and every other parser error are
  one line naming the document, never a traceback."""

from __future__ import annotations

from typing import Any

import yaml

from .errors import LlmplanError
from .jsonutil import MAX_DEPTH, MAX_NODES, check_document

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class GuardedLoader(_BASE):  # type: ignore[misc, valid-type]
    """Safe YAML that refuses duplicate keys and leaves dates as strings."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201 - PyYAML's signature
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if dup:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


GuardedLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in _BASE.yaml_implicit_resolvers.items()
}


EVENTS_SEEN = [0]  # parser events scanned by check_depth, all calls together (tests read it: refusals are early)


def check_depth(text: str, label: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Scan the parser's events (no composition, no recursion): refuse deep nesting, more than
    `max_nodes` values written out and any explicit tag, before anything is built."""
    depth = count = 0
    opening = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    closing = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    for ev in yaml.parse(text, Loader=_BASE):
        EVENTS_SEEN[0] += 1
        if isinstance(ev, closing):
            depth -= 1
            continue
        count += 1
        if count > max_nodes:
            raise LlmplanError(f"{label}: more than {max_nodes:,} values; write a smaller document")
        tag = getattr(ev, "tag", None)
        if tag is not None and not (isinstance(ev, yaml.ScalarEvent) and tag == "!"):  # '!' = plain "non-specific"
            mark = getattr(ev, "start_mark", None)
            where = f" line {mark.line + 1}:" if mark is not None else ""
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise LlmplanError(f"{label}:{where} YAML tag {shown[:80]!r} is not accepted; write plain values (a "
                               "scenario or catalog file needs no tags)")
        if isinstance(ev, opening):
            depth += 1
            if depth > max_depth:
                mark = getattr(ev, "start_mark", None)
                where = f" line {mark.line + 1}:" if mark is not None else ""
                raise LlmplanError(f"{label}:{where} nested more than {max_depth} levels deep; a scenario or catalog "
                                   "file needs a handful")


def load_yaml(text: str, label: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Any:
    """Parse user YAML safely (see the module doc); errors are LlmplanError naming `label`."""
    try:
        check_depth(text, label, max_depth, max_nodes)
        doc = yaml.load(text, Loader=GuardedLoader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise LlmplanError(yaml_error(exc, label)) from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:  # e.g. an integer of 5,000 digits
        raise LlmplanError(f"{label}: not valid YAML ({str(exc).splitlines()[0][:200]})") from None
    check_document(doc, label, max_depth, max_nodes)
    return doc


def check_expanded_size(doc: Any, label: str, limit: int = MAX_NODES) -> None:
    count = 0
    stack = [doc]
    while stack:
        x = stack.pop()
        count += 1
        if count > limit:
            raise LlmplanError(f"{label}: the YAML expands to more than {limit:,} values (aliases that repeat "
                               "aliases); write the values out instead")
        if isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)


def yaml_error(exc: Exception, label: str) -> str:
    """One line for a YAML parse error: where (line) and what."""
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark is not None else ""
    return f"{label}:{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})"
