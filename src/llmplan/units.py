"""Units: the only place where 1000-vs-1024 arithmetic lives.

Names in the code carry their unit: ``_bytes``, ``_gib`` (2**30 bytes), ``_gb`` (10**9
bytes), ``_gb_s`` (10**9 bytes per second), ``_tflops`` (10**12 op/s), ``_s``, ``_ms``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # numpy stays out of the import path of modules that only annotate with Arr
    import numpy as np

KIB = 2**10
MIB = 2**20
GIB = 2**30
GB = 10**9
TERA = 10**12
BITS_PER_BYTE = 8

Num = int | float  # a count or a measure: the type of arithmetic inputs that take either
Arr: TypeAlias = "float | np.ndarray"  # one figure, or an array of them (sweeps, Monte Carlo draws)


def gib_to_bytes(gib: float) -> int:
    return int(round(gib * GIB))


def bytes_to_gib(n_bytes: float) -> float:
    return n_bytes / GIB


def bits_to_bytes(n_params: float, bits: float) -> float:
    """Bytes that n_params values of `bits` bits each occupy."""
    return n_params * bits / BITS_PER_BYTE


def fmt_bytes(n_bytes: float) -> str:
    """Human form for tables: GiB above 1 GiB, MiB below."""
    if abs(n_bytes) >= GIB:
        return f"{n_bytes / GIB:,.2f} GiB"
    return f"{n_bytes / MIB:,.1f} MiB"


def fmt_count(n: float) -> str:
    """1.2e9 -> '1.20 B'."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:,.2f} {suffix}"
    return f"{n:,.0f}"


def fmt_sig(x: float, digits: int = 3) -> str:
    """`digits` significant figures, never in scientific notation above 1: 12,345 -> '12,300',
    3.134 -> '3.13' (what ``:.3g`` gives below 10^digits)."""
    if x != 0 and math.isfinite(x) and abs(x) >= 10 ** digits:
        return f"{round(x, digits - 1 - math.floor(math.log10(abs(x)))):,.0f}"
    return f"{x:,.{digits}g}"


def days_text(days_per_year: float) -> str:
    """'every day' for 365 days a year or more, else '250 days a year'."""
    return "every day" if days_per_year >= 365 else f"{days_per_year:,.4g} days a year"
