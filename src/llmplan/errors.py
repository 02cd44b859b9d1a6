"""The project's own errors. Every one carries a message a user can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


class LlmplanError(Exception):
    """Base class: the CLI prints the message on one line and exits with code 2."""


class CatalogError(LlmplanError):
    """A catalog file is malformed or an entry is invalid."""


class UnknownIdError(LlmplanError):
    """A model, accelerator, format or engine name matched nothing in the catalog."""

    def __init__(self, kind: str, name: str, suggestions: list[str]):
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} {name!r}{hint} (list them with `llmplan catalog {_LIST_CMD.get(kind, kind)}`)")


_LIST_CMD = {
    "accelerator": "gpus",
    "model": "models",
    "quantization format": "formats",
    "KV-cache format": "formats",
    "engine": "engines",
    "server": "servers",
    "quality benchmark": "benchmarks",
    "model quality entry": "quality",
}


class LayoutError(LlmplanError):
    """An impossible parallel layout (TP not dividing the heads, more GPUs than a server holds …)."""


class ImportFileError(LlmplanError):
    """A local model file (config.json, safetensors, GGUF) cannot be read."""


class SpecError(LlmplanError):
    """A request, scenario or workload that does not validate. `field` is the dotted path of
    the first offending field (``"workload.rate_per_s"``), `reason` what is wrong with it."""

    def __init__(self, field: str, reason: str, label: str | None = None):
        self.field = field
        self.reason = reason
        self.label = label
        super().__init__(f"{label}: {field}: {reason}" if label else f"{field}: {reason}")


_TYPE_TAGS = frozenset({"int", "float", "str", "bool", "none", "list", "dict", "tuple", "set", "bytes"})


def _field_path(loc: tuple) -> str:
    """The fields of a pydantic error location, without the union-member tags pydantic adds
    (``("input_tokens", "Lengths")`` → ``"input_tokens"``, ``("models", "list[str]", 0)`` → ``"models.0"``)."""
    parts = [str(p) for p in loc
             if isinstance(p, int) or (isinstance(p, str) and p.isidentifier() and not p[:1].isupper()
                                       and p not in _TYPE_TAGS)]
    return ".".join(parts)


def describe(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """(field, reason) of the most specific error: the deepest field, so that a value which
    took one branch of a union (a mapping for ``list[str] | Constraints``) is reported inside
    that branch; messages of the same field (a union's alternatives) are joined with "or"."""
    if not errors:
        return "(top level)", "invalid input"
    paths = [_field_path(tuple(e.get("loc", ()))) for e in errors]
    field = max(paths, key=lambda p: p.count(".") + bool(p))
    msgs: list[str] = []
    for e in errors:
        msg = str(e.get("msg")).removeprefix("Value error, ")
        if _field_path(tuple(e.get("loc", ()))) == field and msg not in msgs:
            msgs.append(msg)
    reason = "; or ".join(msgs[:3])
    others = sum(1 for e in errors if _field_path(tuple(e.get("loc", ()))) != field)
    if others:
        reason += f" (+{others} more)"
    return field or "(top level)", reason


def spec_error(exc: Any, label: str | None = None, name: Callable[[str], str] | None = None,
               error: type[LlmplanError] | None = None) -> LlmplanError:
    """The first error of a pydantic ``ValidationError`` as the project's own error, naming the field.

    `name` turns the dotted field path into what the user typed (a CLI flag, say); `error`
    picks a more specific class than :class:`SpecError` (an import error keeps its class)."""
    field, reason = describe(exc.errors())
    shown = name(field) if name else field
    if error is not None and error is not SpecError:
        return error(f"{label}: {shown}: {reason}" if label else f"{shown}: {reason}")
    return SpecError(shown, reason, label)


def validated(model: type[M], values: Any, label: str | None = None,
              name: Callable[[str], str] | None = None) -> M:
    """``model.model_validate(values)``, raising :class:`SpecError` naming the field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise spec_error(exc, label, name) from None
