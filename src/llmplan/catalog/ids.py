"""The catalog's id grammar, defined once: what an id or an alias may look like.

Every bundled id and alias follows it (tested), and so must every entry users add: catalog
overrides stored through the REST API and entries in user catalog files. A name that follows it
is never read as a path by the importers: it starts with a letter or a digit (never ``/``, ``.``
or ``~``), has no ``..`` and no ``//``, no backslash, and does not end like a file the importers
read (``.json``, ``.gguf``, ``.safetensors``, ``.yaml``/``.yml``). The web app also never calls
the importers (:func:`llmplan.importers.set_local_files`); the grammar is the second wall."""

from __future__ import annotations

import re

ID_MAX_CHARS = 200
ID_PATTERN = re.compile(r"[^\W_][\w ./,()+-]{0,199}")  # letters and digits of any script (Österreich)
FILE_SUFFIXES = (".json", ".gguf", ".safetensors", ".yaml", ".yml")
GRAMMAR = (
    "a letter or digit (any script), then up to 199 letters, digits, spaces and . _ / , ( ) + -; no '..' or '//', "
    f"not ending in {', '.join(FILE_SUFFIXES)}"
)


def id_problem(name: object) -> str | None:
    """Why `name` is not a valid catalog id or alias, or None when it is."""
    if not isinstance(name, str):
        return f"expected text, got {type(name).__name__}"
    if not ID_PATTERN.fullmatch(name):
        return f"{name[:60]!r} is not a catalog name ({GRAMMAR})"
    if ".." in name or "//" in name:
        return f"{name!r} is not a catalog name: it contains '..' or '//' ({GRAMMAR})"
    if name.lower().endswith(FILE_SUFFIXES) or name != name.strip():
        return f"{name!r} is not a catalog name: a file name, or spaces around it ({GRAMMAR})"
    from ..names import name_problem

    return name_problem(name)  # the one text rule for names: no invisible characters, no mixed-script look-alikes


def check_names(entry_id: str, aliases: tuple[str, ...] | list[str], label: str) -> None:
    """Raise ValueError (the loaders turn it into their own error) when the id or an alias breaks the grammar."""
    for what, name in [("id", entry_id), *(("alias", a) for a in aliases)]:
        why = id_problem(name)
        if why:
            raise ValueError(f"{label}: {what} {why}")
