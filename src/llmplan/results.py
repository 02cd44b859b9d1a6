"""The base of the computations' answers (simulate, capacity, tco, plan) as typed models.

The computations build their answers as JSON-ready dicts; these models describe that JSON (they
are the OpenAPI response schemas of the web API) without changing it: numbers keep their int or
float kind (:data:`Num`), a key the dict does not have is not added (serialise with
``exclude_unset``), and a key a model does not declare is kept, not dropped (tests check on real
runs that every key is declared, so the schema stays complete)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .units import Num


class Result(BaseModel):
    """A computation's answer, as the JSON it is sent as."""

    model_config = ConfigDict(extra="allow")

    def as_json(self) -> dict[str, Any]:
        """The JSON object the model was validated from: its keys, no more and no fewer."""
        return self.model_dump(mode="json", exclude_unset=True)


__all__ = ["Num", "Result"]
