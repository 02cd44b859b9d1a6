"""Typer commands whose deployment options come from the request specs (generated, see
:mod:`llmplan.cli.gen_options`), as vLLM builds its engine arguments from `EngineArgs`: an option
is declared once, on its request class, and every command built on that class offers it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection
from typing import Any

import typer

from .options_generated import OPTIONS


def spec_options(*specs: tuple[str, Collection[str]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command `fn(values_1, …, values_k, **own_options)`: typer sees the options of each
    (spec name, fields left out) in `specs` first, then `fn`'s own keyword options; `fn` gets, for
    each spec, the dict of its field values keyed by field name (ready for the request class)."""
    chosen = [[(name, row) for name, row in OPTIONS[spec].items() if name not in skip] for spec, skip in specs]
    for spec, skip in specs:
        unknown = set(skip) - set(OPTIONS[spec])
        if unknown:
            raise KeyError(f"{spec} has no command-line option {sorted(unknown)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(fn).parameters.values())[len(specs):]
        params = [_parameter(name, row) for group in chosen for name, row in group]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            values = [{name: kwargs.pop(name) for name, _ in group} for group in chosen]
            return fn(*values, **kwargs)

        # typer reads parameters through inspect.signature, which honours __signature__ (unknown to mypy)
        command.__signature__ = inspect.Signature([*params, *own])  # type: ignore[attr-defined]
        return command

    return decorate


def _parameter(name: str, row: tuple[Any, Any, tuple[str, ...], str | None]) -> inspect.Parameter:
    typ, default, flags, help_ = row
    if isinstance(default, list):
        default = list(default)  # each command its own copy
    info = typer.Option(default, *flags, help=help_) if flags else typer.Argument(default, help=help_)
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=info, annotation=typ)


def flag(spec: str, field: str) -> str | None:
    """The option a request field is given by on the command line (its first flag; MODEL for the
    positional argument), or None when it has none."""
    row = OPTIONS.get(spec, {}).get(field)
    if row is None:
        return None
    return row[2][0] if row[2] else field.upper()
