"""nodekit: the small PyTorch library behind the Neural ODE book."""

from .errors import MaxStepsExceededError, NonFiniteStateError, SolverError, StepSizeUnderflowError
from .solvers import METHODS, Solution, SolverStats, odeint, solve
from .adjoint import odeint_adjoint

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
    "odeint_adjoint",
    "solve",
]
