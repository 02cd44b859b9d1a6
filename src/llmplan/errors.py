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


def spec_error(exc: Any, label: str | None = None, name: Callable[[str], str] | None = None,
               error: type[LlmplanError] | None = None) -> LlmplanError:
    """The first error of a pydantic ``ValidationError`` as the project's own error, naming the field.

    `name` turns the dotted field path into what the user typed (a CLI flag, say); `error`
    picks a more specific class than :class:`SpecError` (an import error keeps its class)."""
    errs = exc.errors()
    first = errs[0] if errs else {"loc": (), "msg": "invalid input"}
    field = ".".join(str(p) for p in first.get("loc", ())) or "(top level)"
    shown = name(field) if name else field
    reason = str(first.get("msg", "invalid"))
    if len(errs) > 1:
        reason += f" (+{len(errs) - 1} more)"
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
