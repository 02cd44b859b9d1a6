"""The base of every input model (requests, scenarios, workloads, catalog entries): unknown
keys are an error, numbers are finite, and true/false is not a number.

Pydantic's lax mode reads ``true`` as 1 for an int or float field; a scenario saying
``concurrency: true`` or an API call sending ``"pue": false`` is a mistake to report, not a
value to guess. Numeric strings ("16") and numpy integers stay accepted."""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def alternatives(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly optional) union annotation, `Annotated` unwrapped."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in alternatives(a)]
    if typing.get_origin(annotation) is typing.Annotated:
        return alternatives(typing.get_args(annotation)[0])
    return [annotation]


@cache
def _numeric_fields(cls: type[BaseModel]) -> frozenset[str]:
    """Fields that take a number and not a boolean."""
    out = set()
    for name, f in cls.model_fields.items():
        kinds = alternatives(f.annotation)
        if any(k in (int, float) for k in kinds) and bool not in kinds:
            out.add(name)
    return frozenset(out)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in _numeric_fields(cls):
            raise ValueError(f"expected a number, not {str(value).lower()}")
        return value
