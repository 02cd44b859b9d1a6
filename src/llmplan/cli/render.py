"""Shared output helpers for the CLI: JSON printing, consoles, input validation."""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from .. import errors

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


def console() -> Any:
    from rich.console import Console

    # a pipe or a file gets wide lines; a terminal gets its own width
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def print_json(obj: BaseModel | list[Any] | dict[str, Any]) -> None:
    if hasattr(obj, "model_dump_json"):
        sys.stdout.write(obj.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def emit(obj: Any, as_json: bool, show: Any) -> None:
    """Print `obj` as JSON, or hand it to the command's human printer."""
    if as_json:
        print_json(obj)
    else:
        show(obj)


CATALOG_HELP = "Directory of catalog YAML files that add or override entries (also LLMPLAN_CATALOG)."

# request fields set by something other than their own option (the others: the generated options table)
_FLAG = {"alternatives": "--no-cloud / --no-api", "finance": "the finance options"}


def validated(model: type[M], values: dict[str, Any], flags: dict[str, str] | None = None) -> M:
    """Build a request model; a validation error becomes one line naming the option (`flags`: a
    command's own option names where they differ from the shared ones)."""
    from .spec_options import flag as spec_flag

    names = {**_FLAG, **(flags or {})}

    def flag(field: str) -> str:
        top = field.split(".")[0]
        if top.startswith("("):
            return field
        return names.get(top) or spec_flag(model.__name__, top) or "--" + top.replace("_", "-")

    try:
        return errors.validated(model, {k: v for k, v in values.items() if v is not None}, name=flag)
    except errors.SpecError as exc:
        if exc.field != "(top level)":
            raise
        # a rule across options: name them as typed on the command line
        reason = re.sub(r"\b[a-z][a-z0-9_]*\b", lambda m: flag(m.group(0)) if m.group(0) in values else m.group(0),
                        exc.reason)
        raise errors.LlmplanError(reason) from None
