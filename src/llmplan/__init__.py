"""llmplan: plan self-hosted LLM deployments — memory, speed, serving, cost and policy, offline."""

from .api import FitReport, capacity, estimate, fit, fit_request, plan, simulate, tco
from .catalog import Catalog, load_catalog
from .errors import LlmplanError, SpecError, UnknownIdError
from .specs import FitRequest

__version__ = "0.1.0"

__all__ = ["fit", "fit_request", "estimate", "simulate", "capacity", "tco", "plan", "FitReport", "FitRequest", "Catalog", "load_catalog",
           "LlmplanError", "SpecError", "UnknownIdError", "__version__"]
