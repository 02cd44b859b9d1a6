"""Output files named on the command line (--chart, --plot, --series-csv): checked before the work
starts, written whole or not at all, and every failure is one line naming the option."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LlmplanError


def check_destination(path: Path, flag: str, suffixes: tuple[str, ...]) -> None:
    """Refuse a destination that cannot be written before any computation runs."""
    if path.suffix.lower() not in suffixes:
        raise LlmplanError(f"{flag} writes {', '.join(suffixes[:-1])} or {suffixes[-1]} files, not {path.name!r}"
                           if len(suffixes) > 1 else f"{flag} writes {suffixes[0]} files, not {path.name!r}")
    if path.is_dir():
        raise LlmplanError(f"{flag} {path}: is a folder; give a file name such as {path / ('chart' + suffixes[0])}")
    parent = path.parent
    if not parent.is_dir():
        raise LlmplanError(f"{flag} {path}: the folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise LlmplanError(f"{flag} {path}: the folder {parent} is not writable")


def write_atomic(path: Path, data: str | bytes, flag: str) -> None:
    """Write to a temporary file beside `path`, then rename: a failure leaves no partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8", newline="")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LlmplanError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from None
