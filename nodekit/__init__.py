"""nodekit: the small PyTorch library behind the Neural ODE book."""

from .errors import MaxStepsExceededError, NonFiniteStateError, SolverError, StepSizeUnderflowError
from .solvers import METHODS, Solution, SolverStats, odeint, solve

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "MaxStepsExceededError",
    "NonFiniteStateError",
    "Solution",
    "SolverError",
    "SolverStats",
    "StepSizeUnderflowError",
    "odeint",
    "solve",
]
