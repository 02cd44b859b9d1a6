"""llmplan: plan self-hosted LLM deployments — memory, speed, serving, cost and policy, offline.

The public API is imported on first use (PEP 562), so `import llmplan` — and the command line —
start without loading pydantic, numpy and the catalog until a computation needs them."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_WHERE = {"fit": "api", "fit_request": "api", "estimate": "api", "simulate": "api", "capacity": "api", "tco": "api",
          "plan": "api", "FitReport": "api", "Catalog": "catalog", "load_catalog": "catalog", "LlmplanError": "errors",
          "SpecError": "errors", "UnknownIdError": "errors", "FitRequest": "specs",
          "SimulateResult": "serving.results", "CapacityResult": "serving.results", "TcoResult": "cost.results",
          "PlanResult": "planner.results"}

__all__ = [
    "fit",
    "fit_request",
    "estimate",
    "simulate",
    "capacity",
    "tco",
    "plan",
    "FitReport",
    "FitRequest",
    "SimulateResult",
    "CapacityResult",
    "TcoResult",
    "PlanResult",
    "Catalog",
    "load_catalog",
    "LlmplanError",
    "SpecError",
    "UnknownIdError",
    "__version__",
]

if TYPE_CHECKING:
    from .api import FitReport, capacity, estimate, fit, fit_request, plan, simulate, tco
    from .catalog import Catalog, load_catalog
    from .cost.results import TcoResult
    from .errors import LlmplanError, SpecError, UnknownIdError
    from .planner.results import PlanResult
    from .serving.results import CapacityResult, SimulateResult
    from .specs import FitRequest


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmplan' has no attribute {name!r}")
