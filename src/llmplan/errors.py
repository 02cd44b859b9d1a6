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
        super().__init__(f"unknown {kind} {name!r}{hint} ({_where(kind)})")


_LIST_CMD = {  # catalog kind (its label) -> the `llmplan catalog LIST` that lists it
    "accelerator": "gpus",
    "model": "models",
    "quantization format": "formats",
    "KV-cache format": "formats",
    "engine": "engines",
    "server": "servers",
    "quality benchmark": "benchmarks",
    "model quality entry": "quality",
    "GGUF type": "gguf-types",
    "calibration": "calibrations",
    "workload preset": "workloads",
    "cloud GPU offer": "cloud-offers",
    "API price": "api-prices",
    "region": "regions",
    "cost assumption": "cost-assumptions",
    "provider": "providers",
}


def _where(kind: str) -> str:
    """Where the user finds the names of `kind`: a command that exists."""
    if kind in _LIST_CMD:
        return f"list them with `llmplan catalog {_LIST_CMD[kind]}`"
    if kind == "catalog entry":
        return (
            "search a list with `llmplan catalog models --filter TEXT`; also gpus, formats, engines, servers, regions"
        )
    return "see the catalog files, docs/catalog.md"


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
        msg = _readable(e)
        if _field_path(tuple(e.get("loc", ()))) == field and msg not in msgs:
            msgs.append(msg)
    reason = "; or ".join(msgs[:3])
    others = sum(1 for e in errors if _field_path(tuple(e.get("loc", ()))) != field)
    if others:
        reason += f" (+{others} more)"
    return field or "(top level)", reason


_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def _number(v: Any) -> str:
    """A bound as a person writes it: 0.08333 (1 month), not 0.08333333333333333."""
    if not isinstance(v, float):
        return str(v)
    text = f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.12f}".rstrip("0")
    months = v * 12
    if 0 < v < 1 and abs(months - round(months)) < 1e-9:
        text += f" ({round(months)} month{'s' if round(months) != 1 else ''} in years)"
    return text


def _readable(e: dict[str, Any]) -> str:
    """One pydantic error's message, bounds written readably and unknown fields with the closest name."""
    kind, ctx = e.get("type"), e.get("ctx") or {}
    if kind in _BOUNDS and _BOUNDS[kind][0] in ctx:
        return f"must be {_BOUNDS[kind][1]} {_number(ctx[_BOUNDS[kind][0]])}"
    return str(e.get("msg")).removeprefix("Value error, ")


def _model_at(model: Any, loc: tuple) -> Any:
    """The pydantic model class that holds the field at `loc` (None when the path leaves models)."""
    import typing

    from pydantic import BaseModel

    cls = model
    for part in loc[:-1]:
        if isinstance(part, int) or cls is None:
            continue
        info = cls.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            continue
        todo, cls = [info.annotation], None
        while todo:
            t = todo.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                cls = t
                break
            todo.extend(typing.get_args(t))
    return cls


def suggest_fields(model: Any, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unknown fields (pydantic's extra_forbidden) with the closest field name of their model."""
    import difflib

    out = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        cls = _model_at(model, loc) if e.get("type") == "extra_forbidden" and loc else None
        if cls is not None:
            names = [a for n, f in cls.model_fields.items() for a in (n, f.alias) if a]
            near = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
            e = {**e, "msg": f"unknown field; did you mean {near[0]!r}?" if near
                 else f"unknown field; the fields here are {', '.join(sorted(set(names)))}"}
        out.append(e)
    return out


def spec_error(exc: Any, label: str | None = None, name: Callable[[str], str] | None = None,
               error: type[LlmplanError] | None = None, model: Any = None) -> LlmplanError:
    """The first error of a pydantic ``ValidationError`` as the project's own error, naming the field.

    `name` turns the dotted field path into what the user typed (a CLI flag, say); `error`
    picks a more specific class than :class:`SpecError` (an import error keeps its class)."""
    errs = exc.errors()
    field, reason = describe(suggest_fields(model, errs) if model is not None else errs)
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
        raise spec_error(exc, label, name, model=model) from None
