"""nodekit: the small PyTorch library behind the Neural ODE book.

``import nodekit`` is cheap: the solver entry points and errors below, and every submodule
(``nodekit.models``, ``nodekit.training``, ``nodekit.attacks``, ``nodekit.data``,
``nodekit.measure``, ``nodekit.book``, ...), load on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "odeint": "solvers",
    "solve": "solvers",
    "METHODS": "solvers",
    "Solution": "solvers",
    "SolverStats": "solvers",
    "odeint_adjoint": "adjoint",
    "SolverError": "errors",
    "NonFiniteStateError": "errors",
    "StepSizeUnderflowError": "errors",
    "MaxStepsExceededError": "errors",
}
_SUBMODULES = (
    "adjoint", "attacks", "book", "data", "errors", "fields", "measure", "models", "paths", "solvers", "training",
)

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'nodekit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
