"""Exceptions raised by nodekit. Each message names the problem and a fix."""


class SolverError(RuntimeError):
    """Base class for failures during an ODE solve."""


class NonFiniteStateError(SolverError):
    """The state or the vector field became NaN or infinite."""


class StepSizeUnderflowError(SolverError):
    """An adaptive solver shrank its step below what the time variable can resolve."""


class MaxStepsExceededError(SolverError):
    """A solve needed more steps than ``max_num_steps`` allows."""
