"""Butcher tableaus: a Runge–Kutta method is data, run by one generic stepper."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients of an explicit Runge–Kutta method.

    ``a[i]`` holds the coefficients of stage ``i`` on the earlier stages (``a[0] == ()``),
    ``b`` the weights of the solution, ``c`` the stage times as fractions of the step.
    ``b_error`` (embedded methods only) are the weights of ``y_high - y_low``.
    """

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_error: tuple[float, ...] | None = None

    @property
    def stages(self) -> int:
        return len(self.c)


EULER = ButcherTableau("euler", 1, c=(0.0,), a=((),), b=(1.0,))

MIDPOINT = ButcherTableau("midpoint", 2, c=(0.0, 0.5), a=((), (0.5,)), b=(0.0, 1.0))

RK4 = ButcherTableau(
    "rk4",
    4,
    c=(0.0, 0.5, 0.5, 1.0),
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
)

# Dormand & Prince (1980), RK5(4)7M. The 7th stage is evaluated at the new solution, so it is
# the first stage of the next step (FSAL). Error weights are b(5th order) - b(4th order).
DOPRI5 = ButcherTableau(
    "dopri5",
    5,
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    b_error=(
        71 / 57600,
        0.0,
        -71 / 16695,
        71 / 1920,
        -17253 / 339200,
        22 / 525,
        -1 / 40,
    ),
)

# Weights of Hairer's 4th-order continuous extension of DOPRI5 (the "d" coefficients of the
# dense output in Hairer, Nørsett & Wanner, Solving ODEs I, section II.6), on stages 1..7.
DOPRI5_DENSE = (
    -12715105075 / 11282082432,
    0.0,
    87487479700 / 32700410799,
    -10690763975 / 1880347072,
    701980252875 / 199316789632,
    -1453857185 / 822651844,
    69997945 / 29380423,
)
