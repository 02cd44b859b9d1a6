"""The catalog's entry points without importing the catalog (pydantic, the schema) until they are
called: the command line imports these, so that `llmplan --help` stays fast."""

from __future__ import annotations

from typing import Any


def load_catalog(*args: Any, **kwargs: Any) -> Any:
    from ..catalog import load_catalog as load

    return load(*args, **kwargs)


def normalize_name(name: str) -> str:
    from ..catalog import normalize_name as norm

    return norm(name)
