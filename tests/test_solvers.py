"""nodekit's ODE solvers: convergence orders, adaptive error control, dense output, agreement
with torchdiffeq, shapes and dtypes, gradients, error messages and solver statistics."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torchdiffeq
from torch import Tensor, nn

from nodekit import (
    MaxStepsExceededError,
    NonFiniteStateError,
    StepSizeUnderflowError,
    odeint,
    solve,
)
from nodekit.solvers.dopri5 import Dopri5Solver, _Step

FIXED = ("euler", "midpoint", "rk4")
ORDER = {"euler": 1, "midpoint": 2, "rk4": 4}
STAGES = {"euler": 1, "midpoint": 2, "rk4": 4}
F64 = torch.float64


# --------------------------------------------------------------------------------------------
# Problems with closed-form solutions (float64). ``exact(t)`` is the solution through the
# problem's own initial condition, evaluated at all times ``t`` (stacked along dim 0); a solve
# may start anywhere on it from ``y0 = exact(t[:1])[0]``.


@dataclass
class Problem:
    name: str
    field: Callable[[Tensor, Tensor], Tensor]
    exact: Callable[[Tensor], Tensor]
    t: Tensor  # default output times

    def y0(self, t: Tensor) -> Tensor:
        return self.exact(t[:1])[0]

    def error(self, ys: Tensor, t: Tensor) -> float:
        return (ys - self.exact(t)).abs().max().item()


def decay_sine() -> Problem:
    """y' = -y + sin t: y = (y(0) + 1/2) e^{-t} + (sin t - cos t) / 2."""
    c = torch.tensor([1.0, -0.5, 2.0], dtype=F64) + 0.5
    return Problem(
        "decay_sine",
        lambda t, y: -y + torch.sin(t),
        lambda t: c * torch.exp(-t)[:, None] + ((torch.sin(t) - torch.cos(t)) / 2)[:, None],
        torch.linspace(0, 2, 5, dtype=F64),
    )


def rotation() -> Problem:
    """A batch of 2-D states under y' = A y (a decaying rotation): y(t) = exp(A t) y(0)."""
    a = torch.tensor([[-0.1, -2.0], [2.0, -0.1]], dtype=F64)
    y0 = torch.tensor([[1.0, 0.0], [0.3, -0.7], [-1.2, 0.4], [0.0, 2.0]], dtype=F64)
    return Problem(
        "rotation",
        lambda t, y: y @ a.T,
        lambda t: torch.einsum("tij,bj->tbi", torch.linalg.matrix_exp(a * t[:, None, None]), y0),
        torch.linspace(0, 2, 5, dtype=F64),
    )


def t_times_y() -> Problem:
    """y' = t y: y = y(0) exp(t^2 / 2)."""
    y0 = torch.tensor([0.5, -1.0], dtype=F64)
    return Problem(
        "t_times_y",
        lambda t, y: t * y,
        lambda t: y0 * torch.exp(t**2 / 2)[:, None],
        torch.linspace(0, 1.5, 4, dtype=F64),
    )


# The three below follow torchdiffeq's own test problems (tests/problems.py).


def constant() -> Problem:
    """y' = a + (y - (a t + b))^5, whose solution through y(0) = b is the line a t + b."""
    a, b = 0.2, torch.tensor([3.0, -1.0], dtype=F64)
    return Problem(
        "constant",
        lambda t, y: a + (y - (a * t + b)) ** 5,
        lambda t: a * t[:, None] + b,
        torch.linspace(0, 1, 5, dtype=F64),
    )


def sine() -> Problem:
    """y' = 2y/t + t^4 sin 2t - t^2 + 4t^3 (from t = 1; the field is singular at 0)."""

    def exact(t: Tensor) -> Tensor:
        y = (
            -0.5 * t**4 * torch.cos(2 * t)
            + 0.5 * t**3 * torch.sin(2 * t)
            + 0.25 * t**2 * torch.cos(2 * t)
            - t**3
            + 2 * t**4
            + (math.pi - 0.25) * t**2
        )
        return y[:, None]

    return Problem(
        "sine",
        lambda t, y: 2 * y / t + t**4 * torch.sin(2 * t) - t**2 + 4 * t**3,
        exact,
        torch.linspace(1, 2, 5, dtype=F64),
    )


def linear() -> Problem:
    """y' = A y with a random 10 x 10 skew-symmetric-plus-decay matrix: y(t) = exp(A t) y(0)."""
    g = torch.Generator().manual_seed(0)
    u = torch.randn(10, 10, generator=g, dtype=F64) * 0.3
    a = u - u.T - 0.1 * torch.eye(10, dtype=F64)
    y0 = torch.randn(10, generator=g, dtype=F64)
    return Problem(
        "linear",
        lambda t, y: a @ y,
        lambda t: torch.einsum("tij,j->ti", torch.linalg.matrix_exp(a * t[:, None, None]), y0),
        torch.linspace(0, 1, 5, dtype=F64),
    )


def by_name(makers: list[Callable[[], Problem]]) -> dict:
    return dict(argvalues=makers, ids=[m.__name__ for m in makers])


class MLPField(nn.Module):
    """A small time-dependent MLP field, for gradients and the comparison with torchdiffeq."""

    def __init__(self, dim: int = 2, hidden: int = 8, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng():  # deterministic weights, global RNG untouched
            torch.manual_seed(seed)
            self.lin1, self.lin2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.lin2(torch.tanh(self.lin1(y))) * torch.cos(t)


class Counted:
    """Wraps a field and records the times it is evaluated at."""

    def __init__(self, field: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.field, self.times = field, []

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        self.times.append(float(t))
        return self.field(t, y)


def loglog_slope(hs: list[float], errors: list[float]) -> float:
    x, y = torch.tensor(hs, dtype=F64).log(), torch.tensor(errors, dtype=F64).log()
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x * x).sum())


# --------------------------------------------------------------------------------------------
# Convergence of the fixed-step methods.

STEP_SIZES = {
    "euler": [2.0**-k for k in range(5, 10)],
    "midpoint": [2.0**-k for k in range(4, 9)],
    "rk4": [2.0**-k for k in range(2, 7)],
}


@pytest.mark.parametrize("make", **by_name([decay_sine, rotation, t_times_y]))
@pytest.mark.parametrize("method", FIXED)
def test_fixed_step_empirical_order(make, method):
    prob = make()
    errors = [
        prob.error(odeint(prob.field, prob.y0(prob.t), prob.t, method=method, options={"step_size": h}), prob.t)
        for h in STEP_SIZES[method]
    ]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert loglog_slope(STEP_SIZES[method], errors) == pytest.approx(ORDER[method], abs=0.15)


# --------------------------------------------------------------------------------------------
# dopri5: error control and dense output.

TOLS = [10.0**-k for k in range(3, 11)]


@pytest.mark.parametrize("make", **by_name([decay_sine, rotation, t_times_y, sine, linear]))
def test_dopri5_error_follows_tolerance(make):
    prob = make()
    y0, scale = prob.y0(prob.t), prob.exact(prob.t).abs().max().item()
    errors, nfes = [], []
    for tol in TOLS:
        sol = solve(prob.field, y0, prob.t, rtol=tol, atol=tol, method="dopri5")
        errors.append(prob.error(sol.ys, prob.t))
        nfes.append(sol.stats.nfe)
        assert errors[-1] <= 10 * tol * max(1.0, scale), (tol, errors[-1])
    assert all(a < b for a, b in zip(nfes, nfes[1:])), nfes
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-5 * errors[0]


@pytest.mark.parametrize("make", **by_name([decay_sine, rotation, sine, linear]))
@pytest.mark.parametrize("tol", [1e-4, 1e-8])
def test_dopri5_dense_output(make, tol):
    """50 outputs cost no more evaluations than 2 and are accurate to about the tolerance;
    stepping to each output instead (interpolate=False) agrees."""
    prob = make()
    t = torch.linspace(float(prob.t[0]), float(prob.t[-1]), 50, dtype=F64)
    y0, scale = prob.y0(t), max(1.0, prob.exact(t).abs().max().item())
    dense = solve(prob.field, y0, t, rtol=tol, atol=tol)
    ends = solve(prob.field, y0, t[[0, -1]], rtol=tol, atol=tol)
    stepped = solve(prob.field, y0, t, rtol=tol, atol=tol, options={"interpolate": False})
    assert dense.stats == ends.stats
    assert dense.stats.accepted_steps < len(t) - 1 <= stepped.stats.accepted_steps
    assert prob.error(dense.ys, t) <= 10 * tol * scale
    assert prob.error(stepped.ys, t) <= 10 * tol * scale
    torch.testing.assert_close(dense.ys, stepped.ys, rtol=0, atol=20 * tol * scale)
    assert torch.equal(dense.ys[-1], ends.ys[-1])


@pytest.mark.parametrize("make", **by_name([decay_sine, rotation]))
def test_dopri5_interpolant_is_fourth_order(make):
    """The output inside one step (midway) is Hairer's 4th-order continuous extension: its
    error shrinks like h^5 (a cubic Hermite interpolant, without the last term, gives h^4)."""
    prob = make()
    t0 = float(prob.t[0]) + 0.1
    hs = [0.2, 0.1, 0.05, 0.025]
    errors = []
    for h in hs:
        t = torch.tensor([t0, t0 + h / 2, t0 + h], dtype=F64)
        # Loose tolerances and first_step=h: a single accepted step, interpolated at h / 2.
        sol = solve(prob.field, prob.y0(t), t, rtol=1.0, atol=1.0, options={"first_step": h})
        assert sol.stats.steps == 1
        errors.append((sol.ys[1] - prob.exact(t)[1]).abs().max().item())
    assert loglog_slope(hs, errors) == pytest.approx(5.0, abs=0.3)


def test_dopri5_without_interpolation_lands_on_each_output():
    """With interpolate=False an output is the end of a step: the same state as a solve that
    stops there, and the field is evaluated at every output time."""
    prob = decay_sine()
    t = torch.tensor([0.0, 0.3, 1.1, 2.0], dtype=F64)
    field = Counted(prob.field)
    full = solve(field, prob.y0(t), t, rtol=1e-8, atol=1e-8, options={"interpolate": False})
    for i in range(1, len(t)):
        part = solve(prob.field, prob.y0(t), t[: i + 1], rtol=1e-8, atol=1e-8, options={"interpolate": False})
        assert torch.equal(part.ys[-1], full.ys[i])
        assert min(abs(s - float(t[i])) for s in field.times) < 1e-14
    assert max(field.times) <= float(t[-1]) + 1e-14  # never beyond the last output time


def test_dopri5_interpolant_is_continuous_and_matches_step_ends():
    """Hairer's dense output of one step: y0 and y1 at its ends, slopes k1 and k7 there (so
    the interpolant is C^1 across steps), and a smooth curve on a fine output grid."""
    prob = rotation()
    y0, t = prob.y0(prob.t), torch.tensor([0.0, 0.4], dtype=F64)
    solver = Dopri5Solver(rtol=1e-3, atol=1e-3)
    k1 = prob.field(t[0], y0)
    y1, ks, _ = solver._attempt(prob.field, 0.0, y0, k1, 0.4, t)
    step = _Step(0.0, 0.4, y0, y1, ks)
    assert torch.equal(step.interpolate(0.0), y0)
    torch.testing.assert_close(step.interpolate(0.4), y1, rtol=0, atol=1e-15)
    d = 1e-6
    slope_start = (step.interpolate(d) - step.interpolate(0.0)) / d
    slope_end = (step.interpolate(0.4) - step.interpolate(0.4 - d)) / d
    torch.testing.assert_close(slope_start, ks[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(slope_end, ks[-1], rtol=0, atol=1e-5)

    # Public API: a loose tolerance makes few long steps; 2001 outputs straddle their ends.
    fine = torch.linspace(0, 2, 2001, dtype=F64)
    sol = solve(prob.field, prob.y0(fine), fine, rtol=1e-3, atol=1e-3)
    assert sol.stats.accepted_steps < 20
    speed = prob.field(fine, prob.exact(fine)).abs().max().item()  # bounds |y'| along the curve
    jumps = (sol.ys[1:] - sol.ys[:-1]).abs().max().item()
    assert jumps <= 1.1 * speed * float(fine[1] - fine[0])


# --------------------------------------------------------------------------------------------
# Agreement with torchdiffeq and with the exact solutions.

TDQ_PROBLEMS = [constant, sine, linear]


def mlp_problem() -> tuple[nn.Module, Tensor, Tensor]:
    field = MLPField(dim=3, hidden=16).double()
    y0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    return field, y0, torch.linspace(0, 1, 5, dtype=F64)


def tdq_cases() -> list:
    cases = [pytest.param(m, id=m.__name__) for m in TDQ_PROBLEMS]
    return cases + [pytest.param(None, id="mlp")]


def setup_problem(make):
    if make is None:
        field, y0, t = mlp_problem()
        return field, y0, t, None
    prob = make()
    return prob.field, prob.y0(prob.t), prob.t, prob


@pytest.mark.parametrize("make", tdq_cases())
@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_low_order_methods_match_torchdiffeq_to_rounding(make, method):
    field, y0, t, _ = setup_problem(make)
    options = {"step_size": 0.05}  # divides every interval between the outputs evenly
    ours = odeint(field, y0, t, method=method, options=options)
    theirs = torchdiffeq.odeint(field, y0, t, method=method, options=options)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", tdq_cases())
def test_rk4_matches_torchdiffeq_and_exact(make):
    """torchdiffeq's "rk4" is the 3/8 rule, ours the classic tableau: both are 4th order, so
    they agree at a small step (and with the exact solution)."""
    field, y0, t, prob = setup_problem(make)
    options = {"step_size": 0.01}
    ours = odeint(field, y0, t, method="rk4", options=options)
    theirs = torchdiffeq.odeint(field, y0, t, method="rk4", options=options)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    if prob is not None:
        assert prob.error(ours, t) < 1e-6


@pytest.mark.parametrize("make", tdq_cases())
def test_dopri5_matches_torchdiffeq_and_exact(make):
    field, y0, t, prob = setup_problem(make)
    ours = odeint(field, y0, t, rtol=1e-10, atol=1e-10, method="dopri5")
    theirs = torchdiffeq.odeint(field, y0, t, rtol=1e-10, atol=1e-10, method="dopri5")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    if prob is not None:
        assert prob.error(ours, t) < 1e-6


# --------------------------------------------------------------------------------------------
# Shapes, dtypes, time direction, list times.

ALL_METHODS = (*FIXED, "dopri5")


def options_for(method: str) -> dict:
    return {"step_size": 0.01} if method in FIXED else {}


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_any_shape_and_dtype(method, dtype):
    y0 = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0)).to(dtype)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=dtype)
    ys = odeint(lambda t, y: -y + torch.sin(t), y0, t, method=method, options=options_for(method))
    assert ys.shape == (3, 3, 4, 5) and ys.dtype == dtype
    t4 = t.view(-1, 1, 1, 1)
    exact = (y0 + 0.5) * torch.exp(-t4) + (torch.sin(t4) - torch.cos(t4)) / 2
    tol = 1e-2 if method == "euler" else 1e-4
    torch.testing.assert_close(ys, exact, rtol=0, atol=tol)
    assert torch.equal(ys[0], y0)


@pytest.mark.parametrize("make", **by_name([decay_sine, rotation, t_times_y]))
@pytest.mark.parametrize("method", ALL_METHODS)
def test_backwards_in_time(make, method):
    prob = make()
    t = prob.t.flip(0)
    ys = odeint(prob.field, prob.y0(t), t, rtol=1e-9, atol=1e-9, method=method, options=options_for(method))
    # Bounds just above the errors of the same solves forwards; a sign slip gives O(1) errors.
    assert prob.error(ys, t) < {"euler": 0.1, "midpoint": 1e-3}.get(method, 1e-6)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_times_as_a_list(method):
    y0 = torch.tensor([1.0, 2.0], dtype=F64)
    field = lambda t, y: -y * t  # noqa: E731
    from_list = solve(field, y0, [0.0, 0.5, 1.0], method=method, options=options_for(method))
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    from_tensor = solve(field, y0, t, method=method, options=options_for(method))
    assert from_list.ts.dtype == F64 and torch.equal(from_list.ts, from_tensor.ts)
    assert torch.equal(from_list.ys, from_tensor.ys)


# --------------------------------------------------------------------------------------------
# Gradients through the solver.


def functional_solve(field: nn.Module, method: str, t: Tensor, **kwargs):
    """``(y0, *params) -> ys`` with the field's parameters as explicit inputs, for gradcheck."""
    names = [n for n, _ in field.named_parameters()]

    def run(y0: Tensor, *params: Tensor) -> Tensor:
        def f(s: Tensor, y: Tensor) -> Tensor:
            return torch.func.functional_call(field, dict(zip(names, params)), (s, y))

        return odeint(f, y0, t, method=method, **kwargs)

    return run


GRAD_CASES = {
    "euler": dict(options={"step_size": 0.1}),
    "midpoint": dict(options={"step_size": 0.1}),
    "rk4": dict(options={"step_size": 0.1}),
    "dopri5": dict(rtol=1e-9, atol=1e-9),
}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_gradients_wrt_state_and_parameters(method):
    field = MLPField(dim=2, hidden=4).double()
    y0 = torch.tensor([[0.5, -0.3], [1.0, 0.2]], dtype=F64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in field.parameters()]
    run = functional_solve(field, method, torch.tensor([0.0, 0.4, 1.0], dtype=F64), **GRAD_CASES[method])
    assert torch.autograd.gradcheck(run, (y0, *params))


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("times", [[0.0, 0.33, 0.8], [0.8, 0.33, 0.0]], ids=["forward", "backward"])
def test_fixed_step_gradients_wrt_times(method, times):
    field = MLPField(dim=2, hidden=4).double()
    y0 = torch.tensor([0.5, -0.3], dtype=F64)
    t = torch.tensor(times, dtype=F64, requires_grad=True)

    def run(t: Tensor) -> Tensor:
        return odeint(field, y0, t, method=method, options={"step_size": 0.1})

    assert torch.autograd.gradcheck(run, (t,))


def test_dopri5_refuses_gradients_wrt_times():
    t = torch.tensor([0.0, 1.0], dtype=F64, requires_grad=True)
    pattern = r"does not differentiate with respect to the output times t; pass t\.detach\(\), or use a fixed-step"
    with pytest.raises(ValueError, match=pattern):
        odeint(lambda t, y: -y, torch.ones(2, dtype=F64), t, method="dopri5")


# --------------------------------------------------------------------------------------------
# Errors: each names the problem and the fix.

Y0 = torch.ones(2, dtype=F64)
T01 = torch.tensor([0.0, 1.0], dtype=F64)


def decay(t: Tensor, y: Tensor) -> Tensor:
    return -y


def bad(name: str, error: type, pattern: str, **kwargs) -> pytest.param:
    return pytest.param(kwargs, error, pattern, id=name)


BAD_INPUTS = [
    bad("unknown method", ValueError, r"unknown method 'rk45'; known methods: euler, midpoint, rk4, dopri5",
        method="rk45"),
    bad("unknown fixed-step option", ValueError,
        r"unknown option\(s\) \['step'\] for method 'rk4'; accepted: step_size, max_num_steps",
        method="rk4", options={"step": 0.1}),
    bad("unknown dopri5 option", ValueError,
        r"unknown option\(s\) \['step_size'\] for method 'dopri5'; accepted: first_step, max_num_steps",
        options={"step_size": 0.1}),
    bad("step_size zero", ValueError, r"options\['step_size'\] must be a finite number > 0, got 0\.0",
        method="euler", options={"step_size": 0.0}),
    bad("step_size infinite", ValueError, r"options\['step_size'\] must be a finite number > 0, got inf",
        method="rk4", options={"step_size": math.inf}),
    bad("step_size NaN", ValueError, r"options\['step_size'\] must be a finite number > 0, got nan",
        method="midpoint", options={"step_size": math.nan}),
    bad("fixed-step max_num_steps zero", ValueError,
        r"options\['max_num_steps'\] must be an integer >= 1, got 0", method="rk4", options={"max_num_steps": 0}),
    bad("first_step negative", ValueError,
        r"options\['first_step'\] must be a finite number > 0, got -0\.1.*leave it out",
        options={"first_step": -0.1}),
    bad("first_step zero", ValueError, r"options\['first_step'\] must be a finite number > 0, got 0",
        options={"first_step": 0}),
    bad("first_step infinite", ValueError, r"options\['first_step'\] must be a finite number > 0, got inf",
        options={"first_step": math.inf}),
    bad("safety negative", ValueError, r"options\['safety'\] must be in \(0, 1\], got -1", options={"safety": -1}),
    bad("safety above 1", ValueError, r"options\['safety'\] must be in \(0, 1\], got 1\.5",
        options={"safety": 1.5}),
    bad("ifactor below 1", ValueError, r"options\['ifactor'\] must be >= 1, got 0\.5", options={"ifactor": 0.5}),
    bad("dfactor 1", ValueError, r"options\['dfactor'\] must be in \(0, 1\), got 1", options={"dfactor": 1}),
    bad("dfactor zero", ValueError, r"options\['dfactor'\] must be in \(0, 1\), got 0\.0",
        options={"dfactor": 0.0}),
    bad("max_num_steps zero", ValueError, r"options\['max_num_steps'\] must be an integer >= 1, got 0",
        options={"max_num_steps": 0}),
    bad("max_num_steps not an integer", ValueError,
        r"options\['max_num_steps'\] must be an integer >= 1, got 100\.5", options={"max_num_steps": 100.5}),
    bad("min_step negative", ValueError, r"options\['min_step'\] must be a finite number >= 0, got -1e-06",
        options={"min_step": -1e-6}),
    bad("safety not a number", ValueError, r"options\['safety'\] must be in \(0, 1\], got '0\.9'",
        options={"safety": "0.9"}),
    bad("negative rtol", ValueError, r"rtol and atol must be non-negative", rtol=-1.0),
    bad("2-D t", ValueError, r"t must be a 1-D tensor.*shape \(2, 2\).*torch\.tensor\(\[t0, t1\]\)",
        t=torch.zeros(2, 2)),
    bad("non-monotonic t", ValueError,
        r"strictly increasing or strictly decreasing.*t\[1\]=1 and t\[2\]=0\.5 break the order.*sort",
        t=torch.tensor([0.0, 1.0, 0.5])),
    bad("repeated time", ValueError, r"strictly increasing.*drop duplicates.*torch\.unique",
        t=torch.tensor([0.0, 0.0, 1.0])),
    bad("empty t", ValueError, r"t needs at least one time \(the start\), got none", t=torch.tensor([])),
    bad("NaN in t", ValueError, r"t contains NaN or Inf", t=torch.tensor([0.0, float("nan")])),
    bad("y0 not a tensor", TypeError, r"y0 must be a torch\.Tensor, got list.*torch\.as_tensor", y0=[1.0, 2.0]),
    bad("tuple y0", TypeError,
        r"y0 must be one tensor.*tuple of 2 tensors.*torch\.cat\(\[p\.reshape\(-1\) for p in y0\]\)",
        y0=(torch.ones(2, dtype=F64), torch.ones(3, dtype=F64))),
    bad("complex y0", TypeError,
        r"complex states are not supported \(dtype torch\.complex128\).*torch\.view_as_real\(y0\)",
        y0=torch.ones(2, dtype=torch.complex128)),
    bad("integer y0", TypeError, r"floating-point tensor, got dtype torch\.int64; use y0\.float\(\)",
        y0=torch.ones(2, dtype=torch.int64)),
    bad("non-finite y0", NonFiniteStateError, r"y0 contains NaN or Inf.*clean the initial state",
        y0=torch.tensor([1.0, float("inf")])),
    bad("shape mismatch", ValueError,
        r"returned shape \(3,\) but y0 has shape \(2,\).*dy/dt with the same shape as the state",
        func=lambda t, y: torch.zeros(3)),
    bad("dtype mismatch", TypeError,
        r"returned dtype torch\.float32 but y0 has dtype torch\.float64.*model\.double\(\)",
        func=lambda t, y: y.float()),
    bad("field returns no tensor", TypeError, r"must return a tensor, got list", func=lambda t, y: y.tolist()),
    bad("field not callable", TypeError, r"func must be callable as func\(t, y\), got str", func="f"),
    bad("NaN field at the start, backwards", NonFiniteStateError,
        r"NaN or Inf at t=2, the start of the solve; check the vector field",
        func=lambda t, y: y * float("nan"), t=[2.0, 1.0]),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD_INPUTS)
def test_bad_input_is_explained(kwargs, error, pattern):
    args = dict(func=decay, y0=Y0, t=T01) | kwargs
    with pytest.raises(error, match=pattern):
        solve(**args)


def test_option_limits_are_accepted():
    """The ends of the accepted ranges are valid (and 0-dim tensors as numbers, as before)."""
    options = {"safety": 1.0, "ifactor": 1.0, "dfactor": 0.999, "min_step": 0.0, "max_num_steps": 10**6}
    assert torch.isfinite(odeint(decay, Y0, T01, options=options)).all()
    ys = odeint(decay, Y0, T01, method="rk4", options={"step_size": torch.tensor(0.1), "max_num_steps": 10})
    assert torch.equal(ys, odeint(decay, Y0, T01, method="rk4", options={"step_size": 0.1}))


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("t", [[0.3], [-2.0]], ids=["positive", "negative"])
def test_a_single_time_returns_y0_as_torchdiffeq(method, t):
    counted = Counted(decay)
    y0 = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64, requires_grad=True)
    sol = solve(counted, y0, t, method=method)
    theirs = torchdiffeq.odeint(decay, y0, torch.tensor(t, dtype=F64), method=method)
    assert sol.ys.shape == theirs.shape == (1, 1, 3) and torch.equal(sol.ys, theirs)
    assert sol.stats.nfe == sol.stats.steps == 0 and counted.times == []
    assert sol.ts.tolist() == t
    grad_out = torch.arange(3.0, dtype=F64).view(1, 1, 3)
    (grad,) = torch.autograd.grad(sol.ys, y0, grad_out)
    assert torch.equal(grad, grad_out[0])
    assert torch.equal(odeint(decay, y0, torch.tensor(t, dtype=F64), method=method), sol.ys)


def test_per_element_tolerances_match_torchdiffeq():
    """rtol/atol as tensors broadcast to the state, as in torchdiffeq: equal entries give exactly
    the float solve; mixed ones agree with torchdiffeq far below the loosest tolerance (1e-4 or
    1e-5 would give errors of ~1e-5) and cost fewer steps than the tightest alone."""
    prob = linear()
    y0, t = prob.y0(prob.t), prob.t
    uniform = solve(prob.field, y0, t, rtol=torch.full((10,), 1e-6, dtype=F64), atol=1e-8)
    scalar = solve(prob.field, y0, t, rtol=1e-6, atol=1e-8)
    assert torch.equal(uniform.ys, scalar.ys) and uniform.stats == scalar.stats
    rtol = torch.logspace(-10, -4, 10, dtype=F64)
    atol = torch.tensor(1e-10, dtype=torch.float32)  # 0-dim, another dtype: a float, as before
    mixed = solve(prob.field, y0, t, rtol=rtol, atol=atol)
    theirs = torchdiffeq.odeint(prob.field, y0, t, rtol=rtol, atol=atol)
    torch.testing.assert_close(mixed.ys, theirs, rtol=0, atol=1e-8)
    tight = solve(prob.field, y0, t, rtol=1e-10, atol=1e-10).stats.steps
    loose = solve(prob.field, y0, t, rtol=1e-4, atol=1e-10).stats.steps
    assert loose < mixed.stats.steps < tight
    rot = rotation()  # states (4, 2): per-feature tolerances broadcast over the batch
    rtol = torch.tensor([1e-9, 1e-5], dtype=F64)
    ours = odeint(rot.field, rot.y0(rot.t), rot.t, rtol=rtol, atol=1e-10)
    theirs = torchdiffeq.odeint(rot.field, rot.y0(rot.t), rot.t, rtol=rtol, atol=1e-10)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-8)


BAD_TOLERANCES = [
    bad("rtol of the wrong shape", ValueError,
        r"rtol of shape \(3,\) does not broadcast to y0's shape \(2,\); pass a float, or per-element rtol",
        rtol=torch.full((3,), 1e-6)),
    bad("atol larger than the state", ValueError, r"atol of shape \(2, 2\) does not broadcast to y0's shape \(2,\)",
        atol=torch.full((2, 2), 1e-6)),
    bad("rtol and atol that do not broadcast", ValueError,
        r"rtol of shape \(2,\) and atol of shape \(3,\) do not broadcast together",
        rtol=torch.full((2,), 1e-6), atol=torch.full((3,), 1e-6)),
    bad("a negative rtol element", ValueError, r"rtol and atol must be non-negative and not both zero",
        rtol=torch.tensor([1e-6, -1e-6])),
    bad("both zero in one element", ValueError, r"rtol and atol must be non-negative and not both zero",
        rtol=torch.tensor([1e-6, 0.0]), atol=torch.tensor([1e-6, 0.0])),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD_TOLERANCES)
def test_bad_tolerances_are_explained(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        solve(decay, Y0, T01, **kwargs)


def test_per_element_tolerances_in_messages():
    rtol = torch.tensor([1e-8, 1e-4], dtype=F64)
    pattern = r"took 5 steps.*\(rtol=1e-08 to 0\.0001 per element, atol=1e-09\)"
    with pytest.raises(MaxStepsExceededError, match=pattern):
        odeint(decay, Y0, torch.tensor([0.0, 100.0], dtype=F64), rtol=rtol, options={"max_num_steps": 5})


def test_the_tuple_state_recipe_in_the_error_works():
    """Two parts (x of shape (2,), v of shape (3,)) solved as the one flat state the error suggests."""
    x0, v0 = torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([0.5, -1.0, 3.0], dtype=F64)

    def field(t: Tensor, y: Tensor) -> Tensor:
        x, v = torch.split(y, [2, 3])
        return torch.cat([-x.reshape(-1), 2 * v.reshape(-1)])

    ys = odeint(field, torch.cat([p.reshape(-1) for p in (x0, v0)]), T01)
    ours = tuple(torch.split(ys[-1], [2, 3]))
    theirs = torchdiffeq.odeint(lambda t, y: (-y[0], 2 * y[1]), (x0, v0), T01)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b[-1], rtol=1e-6, atol=0)


def test_the_complex_state_recipe_in_the_error_works():
    """y' = i w y with complex y, solved as the real state of twice the size the error suggests."""
    w = torch.tensor([1.0, -2.5], dtype=F64)
    y0 = torch.tensor([1.0 + 0.5j, -0.3j], dtype=torch.complex128)

    def field(t: Tensor, y: Tensor) -> Tensor:
        return 1j * w * y

    ys = odeint(lambda t, y: torch.view_as_real(field(t, torch.view_as_complex(y))), torch.view_as_real(y0), T01)
    exact = y0 * torch.exp(1j * w * T01[:, None])
    torch.testing.assert_close(torch.view_as_complex(ys), exact, rtol=0, atol=1e-7)


def nan_between(lo: float, hi: float) -> Callable[[Tensor, Tensor], Tensor]:
    """-y, except NaN for lo < t < hi."""

    def field(t: Tensor, y: Tensor) -> Tensor:
        return y * float("nan") if lo < t < hi else -y

    return field


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize(
    "times, interval",
    [([0.0, 1.0, 2.0, 3.0], "between t=1 and t=2"), ([3.0, 2.0, 1.0, 0.0], "between t=2 and t=1")],
    ids=["forward", "backward"],
)
def test_fixed_step_nan_mid_solve_names_the_interval(method, times, interval):
    with pytest.raises(NonFiniteStateError, match=rf"NaN or Inf {interval}.*try a smaller step_size"):
        odeint(nan_between(1.4, 1.6), Y0, times, method=method, options={"step_size": 0.1})


@pytest.mark.parametrize(
    "field, t_blowup",
    [
        (lambda t, y: 100 * y**2, 0.01),  # y = 1 / (1 - 100 t)
        (lambda t, y: y**3, 0.5),  # y = 1 / sqrt(1 - 2 t)
    ],
    ids=["100y^2", "y^3"],
)
def test_dopri5_step_underflow_on_blow_up_is_prompt(field, t_blowup):
    counted = Counted(field)
    with pytest.raises(StepSizeUnderflowError, match=r"step size underflowed.*stiff or unstable") as info:
        odeint(counted, torch.ones(1, dtype=F64), T01, method="dopri5")
    assert f"at t={t_blowup:g}" in str(info.value)
    assert len(counted.times) < 3000  # a few hundred steps, not max_num_steps of them


def test_dopri5_nan_field_underflows_and_says_so():
    with pytest.raises(StepSizeUnderflowError, match=r"at t=0\.5 \(the trial step produced NaN/Inf\)"):
        odeint(nan_between(0.5, 2.0), Y0, T01, method="dopri5")


def test_dopri5_underflow_backwards_reports_real_time():
    with pytest.raises(StepSizeUnderflowError, match=r"at t=-0\.5[: ]"):
        odeint(lambda t, y: -(y**3), torch.ones(1, dtype=F64), [0.0, -1.0], method="dopri5")


def test_max_num_steps_fixed_grid():
    options = {"step_size": 0.01, "max_num_steps": 100}
    assert solve(decay, Y0, T01, method="rk4", options=options).stats.accepted_steps == 100
    options["step_size"] = 0.0099
    with pytest.raises(MaxStepsExceededError, match=r"needs 102 steps.*max_num_steps=100.*larger step_size"):
        odeint(decay, Y0, T01, method="rk4", options=options)
    with pytest.raises(MaxStepsExceededError, match=r"needs 1000000 steps.*max_num_steps=10000"):
        odeint(decay, Y0, T01, method="euler", options={"step_size": 1e-6})  # refused before stepping


def test_max_num_steps_dopri5():
    counted = Counted(decay)
    t = torch.tensor([0.0, 100.0], dtype=F64)
    pattern = r"took 5 steps and reached t=.* of 100.*options\['max_num_steps'\]"
    with pytest.raises(MaxStepsExceededError, match=pattern):
        odeint(counted, Y0, t, method="dopri5", options={"max_num_steps": 5})
    assert len(counted.times) == 2 + 6 * 5


# --------------------------------------------------------------------------------------------
# Solver statistics.


@pytest.mark.parametrize("method", FIXED)
def test_fixed_step_statistics(method):
    counted = Counted(lambda t, y: -y + t)
    t = torch.tensor([0.0, 0.35, 1.0], dtype=F64)  # 4 + 7 steps of at most 0.1
    sol = solve(counted, Y0, t, method=method, options={"step_size": 0.1})
    assert sol.stats.accepted_steps == 11 and sol.stats.rejected_steps == 0
    assert sol.stats.nfe == 11 * STAGES[method] == len(counted.times)
    assert sol.method == method and torch.equal(sol.ts, t)


@pytest.mark.parametrize("first_step", [None, 0.5])
@pytest.mark.parametrize("make", **by_name([decay_sine, t_times_y]))
def test_dopri5_statistics(make, first_step):
    prob = make()
    counted = Counted(prob.field)
    options = {} if first_step is None else {"first_step": first_step}
    sol = solve(counted, prob.y0(prob.t), prob.t, rtol=1e-8, atol=1e-8, options=options)
    stats = sol.stats
    assert stats.accepted_steps > 0 and stats.steps == stats.accepted_steps + stats.rejected_steps
    initial = 1 if first_step is None else 0  # the extra evaluation of the step selection
    assert stats.nfe == 1 + initial + 6 * stats.steps == len(counted.times)
    if first_step is not None:
        assert stats.rejected_steps > 0  # 0.5 is far too long a first step at 1e-8


# --------------------------------------------------------------------------------------------
# Step callbacks (torchdiffeq's callback_step / callback_accept_step / callback_reject_step).


class Logged(nn.Module):
    """A field whose step callbacks record ``(kind, t0, y0, dt)`` for every call."""

    def __init__(self, field: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.field, self.log = field, []

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.field(t, y)

    def callback_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.log.append(("step", t0, y0, dt))

    def callback_accept_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.log.append(("accept", t0, y0, dt))

    def callback_reject_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.log.append(("reject", t0, y0, dt))

    def calls(self, kind: str) -> list[tuple[Tensor, Tensor, Tensor]]:
        return [entry[1:] for entry in self.log if entry[0] == kind]


def assert_step_arguments(calls: list, y0: Tensor) -> None:
    for t0, y, dt in calls:
        assert isinstance(t0, Tensor) and t0.shape == () and isinstance(dt, Tensor) and dt.shape == ()
        assert y.shape == y0.shape and y.dtype == y0.dtype and dt > 0


# torchdiffeq warns that its fixed-step solvers ignore the accept / reject callbacks (nodekit also does not call them).
@pytest.mark.filterwarnings("ignore:Solver 'rk4' does not support callbacks")
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
def test_rk4_calls_callback_step_once_per_step_as_torchdiffeq(reverse):
    prob = decay_sine()
    t = torch.tensor([0.0, 0.35, 1.0], dtype=F64)  # 4 + 7 steps of at most 0.1
    t = t.flip(0) if reverse else t
    logged = Logged(prob.field)
    sol = solve(logged, prob.y0(t), t, method="rk4", options={"step_size": 0.1})
    steps = logged.calls("step")
    assert len(steps) == sol.stats.accepted_steps == 11 and len(logged.log) == 11  # no accept calls
    assert_step_arguments(steps, sol.ys[0])
    t0s = torch.stack([t0 for t0, _, _ in steps])
    assert t0s[0] == t[0] and ((t0s.diff() < 0) if reverse else (t0s.diff() > 0)).all()
    assert torch.equal(steps[0][1], sol.ys[0])
    # torchdiffeq calls it at the same steps, given one interval of 10 steps of 0.1.
    t = t[[0, -1]]
    ours, theirs = Logged(prob.field), Logged(prob.field)
    solve(ours, prob.y0(t), t, method="rk4", options={"step_size": 0.1})
    torchdiffeq.odeint(theirs, prob.y0(t), t, method="rk4", options={"step_size": 0.1})
    for (t_a, _, dt_a), (t_b, _, dt_b) in zip(ours.calls("step"), theirs.calls("step"), strict=True):
        torch.testing.assert_close(t_a, t_b, rtol=0, atol=1e-12)
        torch.testing.assert_close(dt_a, dt_b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
@pytest.mark.parametrize("make", **by_name([decay_sine, t_times_y]))
def test_dopri5_callbacks_follow_accepted_and_rejected_steps(make, reverse):
    prob = make()
    t = prob.t.flip(0) if reverse else prob.t
    logged = Logged(prob.field)
    sol = solve(logged, prob.y0(t), t, rtol=1e-8, atol=1e-8, options={"first_step": 0.5})
    stats = sol.stats
    assert stats.rejected_steps > 0  # 0.5 is far too long a first step at 1e-8
    assert len(logged.calls("accept")) == stats.accepted_steps
    assert len(logged.calls("reject")) == stats.rejected_steps
    assert len(logged.calls("step")) == stats.steps
    # Each trial step: callback_step, then accept or reject with the same arguments.
    for (kind, *trial), (outcome, *result) in zip(logged.log[::2], logged.log[1::2], strict=True):
        assert kind == "step" and outcome in ("accept", "reject")
        assert all(torch.equal(a, b) for a, b in zip(trial, result))
    assert_step_arguments(logged.calls("step"), sol.ys[0])
    t0s = torch.stack([t0 for t0, _, _ in logged.calls("accept")])
    assert t0s[0] == t[0] and ((t0s.diff() < 0) if reverse else (t0s.diff() > 0)).all()


def test_dopri5_callbacks_match_torchdiffeq_on_the_same_steps():
    """On a constant field every step is exact, so both controllers accept each step and grow it
    tenfold: nodekit and torchdiffeq take the same steps (nodekit cuts the last one at t[-1])."""
    y0, t = torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([0.0, 3.0], dtype=F64)
    ours, theirs = (Logged(lambda t, y: torch.ones_like(y)) for _ in range(2))
    sol = solve(ours, y0, t, options={"first_step": 0.01})
    torchdiffeq.odeint(theirs, y0, t, method="dopri5", options={"first_step": 0.01})
    assert sol.stats.accepted_steps == 4 and sol.stats.rejected_steps == 0
    assert [kind for kind, *_ in ours.log] == [kind for kind, *_ in theirs.log]
    for (t_a, y_a, _), (t_b, y_b, _) in zip(ours.calls("step"), theirs.calls("step"), strict=True):
        torch.testing.assert_close(t_a, t_b.to(F64), rtol=0, atol=1e-12)
        torch.testing.assert_close(y_a, y_b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_callbacks_do_not_change_the_solution(method):
    prob = decay_sine()
    plain = solve(prob.field, prob.y0(prob.t), prob.t, method=method, options=options_for(method))
    logged = Logged(prob.field)
    with_callbacks = solve(logged, prob.y0(prob.t), prob.t, method=method, options=options_for(method))
    assert logged.log and torch.equal(plain.ys, with_callbacks.ys) and plain.stats == with_callbacks.stats
