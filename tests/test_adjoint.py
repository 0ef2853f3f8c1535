"""nodekit's adjoint method: gradients with respect to y0, the parameters and the output times
agree with backprop through the solver, with torchdiffeq's adjoint and with finite differences;
its statistics, its memory (flat in the number of steps), the ODE block option, and its errors."""

from __future__ import annotations

import subprocess

import pytest
import torch
import torchdiffeq
from torch import Tensor, nn
from torch.func import functional_call

import nodekit
from nodekit import MaxStepsExceededError, NonFiniteStateError, odeint_adjoint
from nodekit.adjoint import solve_adjoint
from nodekit.gradients import Gradients, backprop_vs_adjoint, loss_gradients
from nodekit.memory import peak_memory
from nodekit.models import ConcatConv2d, ConvField, MLPField, ODEBlock, small_mnist_odenet

F64 = torch.float64


class Linear(nn.Module):
    """z' = W z + b sin(t): linear in z, explicitly time dependent."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[-0.5, -1.0], [1.0, -0.3]], dtype=F64))
        self.b = nn.Parameter(torch.tensor([0.3, -0.2], dtype=F64))

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return z @ self.w.T + self.b * torch.sin(t)


def mlp() -> tuple[nn.Module, Tensor]:
    torch.manual_seed(0)
    return MLPField(2, hidden=16, time_dependent=True).double(), torch.randn(4, 2, dtype=F64)


def linear() -> tuple[nn.Module, Tensor]:
    return Linear(), torch.tensor([[1.0, 0.5], [-0.3, 0.8]], dtype=F64)


class SmoothConv(nn.Module):
    """Two time-aware 3x3 convolutions with a tanh between them: a conv field smooth enough
    for fixed-step gradients to converge at the method's order (ReLU kinks slow that down)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = ConcatConv2d(channels, channels), ConcatConv2d(channels, channels)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.conv2(t, torch.tanh(self.conv1(t, z)))


def conv() -> tuple[nn.Module, Tensor]:
    torch.manual_seed(1)
    return SmoothConv(4).double(), torch.randn(2, 4, 5, 5, dtype=F64)


FIELDS = {"mlp": mlp, "linear": linear, "conv": conv}
TIMES = {
    "increasing": [0.0, 0.4, 1.1, 1.5],
    "decreasing": [1.5, 0.9, 0.2, 0.0],
}


def weighted_loss(shape: torch.Size) -> callable:
    """A loss of the states at every output time, with fixed random weights."""
    weights = torch.randn(shape, dtype=F64, generator=torch.Generator().manual_seed(7))
    return lambda ys: (weights * ys).sum() + 0.1 * ys[-1].square().sum()


def assert_close(a: Gradients, b: Gradients, rtol: float) -> None:
    scale = b.max_abs()
    for name, diff in a.max_abs_diff(b).items():
        assert diff <= rtol * max(scale[name], 1.0), f"{name}: max |diff| {diff:.2e}"


@pytest.mark.parametrize("times", TIMES)
@pytest.mark.parametrize("name", FIELDS)
def test_adjoint_agrees_with_backprop_and_torchdiffeq(name: str, times: str) -> None:
    field, y0 = FIELDS[name]()
    t = torch.tensor(TIMES[times], dtype=F64)
    loss = weighted_loss((len(t), *y0.shape))
    rk4 = dict(method="rk4", options={"step_size": 0.02})
    tight = dict(method="dopri5", rtol=1e-10, atol=1e-10)
    backprop = loss_gradients("backprop", field, y0, t, loss, **rk4)
    assert_close(loss_gradients("adjoint", field, y0, t, loss, **rk4), backprop, rtol=1e-6)
    assert_close(loss_gradients("adjoint", field, y0, t, loss, **tight), backprop, rtol=1e-6)
    assert_close(loss_gradients("torchdiffeq", field, y0, t, loss, **tight), backprop, rtol=1e-6)


def test_adjoint_on_the_book_conv_field() -> None:
    """The book's ConvField (GroupNorm, ReLU). Its kinks slow the convergence of fixed-step
    gradients with respect to t (the grid moves with t), so t is compared between the two
    adjoints only, at a moderate tolerance."""
    torch.manual_seed(1)
    field, y0 = ConvField(4).double(), torch.randn(1, 4, 4, 4, dtype=F64)
    t = torch.tensor(TIMES["increasing"], dtype=F64)
    loss = weighted_loss((len(t), *y0.shape))
    rk4 = dict(method="rk4", options={"step_size": 0.02})
    ours, backprop = (loss_gradients(route, field, y0, t, loss, **rk4) for route in ("adjoint", "backprop"))
    for name in ("y0", "params"):
        assert (getattr(ours, name) - getattr(backprop, name)).abs().max() <= 1e-4 * backprop.max_abs()[name]
    adaptive = dict(method="dopri5", rtol=1e-6, atol=1e-6)
    ours = loss_gradients("adjoint", field, y0, t, loss, **adaptive)
    assert_close(ours, loss_gradients("torchdiffeq", field, y0, t, loss, **adaptive), rtol=2e-3)


def test_adjoint_passes_gradcheck_against_finite_differences() -> None:
    """torch.autograd.gradcheck in float64, with the parameters as explicit inputs (adjoint_params)."""
    torch.manual_seed(0)
    field, y0 = MLPField(2, hidden=4, layers=1, time_dependent=True).double(), torch.randn(2, 2, dtype=F64)
    names = [n for n, _ in field.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in field.parameters()]
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64, requires_grad=True)

    def solution(y0: Tensor, t: Tensor, *ps: Tensor) -> Tensor:
        def f(s: Tensor, z: Tensor) -> Tensor:
            return functional_call(field, dict(zip(names, ps)), (s, z))

        return odeint_adjoint(f, y0, t, method="rk4", options={"step_size": 0.02}, adjoint_params=ps)

    assert torch.autograd.gradcheck(solution, (y0.requires_grad_(True), t, *params), atol=1e-6, rtol=1e-5)


def test_all_routes_agree_with_finite_differences_on_the_conv_field() -> None:
    field, y0 = conv()
    y0 = y0[:1, :, :3, :3]
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    loss = weighted_loss((len(t), *y0.shape))
    # 0.0245 does not divide the intervals, so t ± eps keeps the number of steps (and the
    # discrete solution stays smooth in t).
    rk4 = dict(method="rk4", options={"step_size": 0.0245})
    reference = loss_gradients("finite differences", field, y0, t, loss, eps=1e-6, **rk4)
    for route in ("backprop", "adjoint"):
        assert_close(loss_gradients(route, field, y0, t, loss, **rk4), reference, rtol=1e-6)
    # torchdiffeq's fixed-grid solvers keep one grid over [t0, tN] and interpolate the outputs.
    assert_close(loss_gradients("torchdiffeq", field, y0, t, loss, **rk4), reference, rtol=1e-4)


def test_time_gradients_with_an_adaptive_forward_solve() -> None:
    """nodekit's dopri5 refuses t.requires_grad under backprop; the adjoint differentiates t."""
    field, y0 = linear()
    t = torch.tensor([0.0, 0.7, 1.2], dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match="does not differentiate"):
        nodekit.odeint(field, y0, t)
    odeint_adjoint(field, y0, t, rtol=1e-10, atol=1e-10).sum().backward()
    expected = torch.autograd.grad(torchdiffeq.odeint_adjoint(field, y0, t, rtol=1e-10, atol=1e-10).sum(), t)[0]
    assert torch.allclose(t.grad, expected, atol=1e-7)


def test_forward_matches_solve_and_stats_count_the_backward_pass() -> None:
    field, y0 = mlp()
    t = torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=F64, requires_grad=True)
    sol = solve_adjoint(field, y0, t, rtol=1e-8, atol=1e-8)
    plain = nodekit.solve(field, y0, t.detach(), rtol=1e-8, atol=1e-8)
    assert torch.equal(sol.ys.detach(), plain.ys) and sol.stats == plain.stats
    assert sol.backward.intervals == 0 and sol.backward.nfe == 0  # nothing until backward()
    sol.ys.square().sum().backward()
    back = sol.backward
    assert back.intervals == 3 and back.field_nfe == 3
    assert back.nfe >= 3 * 8  # dopri5: initial evaluation, starting step, >= 1 step of 6 per interval
    assert back.accepted_steps >= 3
    assert 0 <= back.reconstruction_error < 1e-6


def test_backward_nfe_is_the_augmented_evaluation_count() -> None:
    field, y0 = linear()
    calls = {"n": 0}

    class Counted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = field

        def forward(self, t: Tensor, z: Tensor) -> Tensor:
            calls["n"] += 1
            return self.inner(t, z)

    sol = solve_adjoint(Counted(), y0, torch.tensor([0.0, 1.0], dtype=F64), method="rk4", options={"step_size": 0.1})
    forward_calls = calls["n"]
    sol.ys[-1].sum().backward()
    assert forward_calls == sol.stats.nfe == 40
    assert calls["n"] - forward_calls == sol.backward.nfe == 40


def test_reconstruction_error_shrinks_with_the_tolerance() -> None:
    field, y0 = mlp()
    with torch.no_grad():
        field.net[-1].weight.mul_(3.0)
    errors = []
    for tol in (1e-3, 1e-6, 1e-9):
        sol = solve_adjoint(field, y0, torch.tensor([0.0, 3.0], dtype=F64), rtol=tol, atol=tol)
        sol.ys[-1].sum().backward()
        errors.append(sol.backward.reconstruction_error)
    assert errors[0] > errors[1] > errors[2]


def test_memory_child_runs_with_the_callers_thread_count(monkeypatch) -> None:
    seen: dict[str, str] = {}

    def fake_run(command, *, env, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(command, 0, '{"baseline_mb": 1.0, "peak_mb": 3.0, "seconds": 0.1}\n', "")

    monkeypatch.setattr("nodekit.memory.subprocess.run", fake_run)
    result = peak_memory("nodekit.gradients:memory_workload", route="adjoint", steps=10)
    assert result.extra_mb == 2.0
    assert seen["OMP_NUM_THREADS"] == seen["MKL_NUM_THREADS"] == str(torch.get_num_threads())


def test_adjoint_memory_is_flat_and_backprop_memory_grows() -> None:
    def extra(route: str, steps: int) -> float:
        return peak_memory("nodekit.gradients:memory_workload", route=route, steps=steps, batch=4).extra_mb

    adjoint_10, adjoint_300 = extra("adjoint", 10), extra("adjoint", 300)
    backprop_10, backprop_300 = extra("backprop", 10), extra("backprop", 300)
    assert adjoint_300 <= 1.2 * adjoint_10 + 2.0
    # Backprop keeps ~10 activations of 4x16x14x14 floats (~0.5 MB) per Euler step.
    assert backprop_300 - backprop_10 >= 100


def test_ode_block_adjoint_option() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), ODEBlock(MLPField(4, hidden=16), rtol=1e-9, atol=1e-9), nn.Linear(4, 2))
    model = model.double()
    x, y = torch.randn(8, 3, dtype=F64), torch.randint(0, 2, (8,))
    loss = nn.functional.cross_entropy
    costs = backprop_vs_adjoint(model, x, y, loss, repeats=2)
    backprop, adjoint = costs["backprop"], costs["adjoint"]
    assert model[1].adjoint is False  # restored
    assert backprop.seconds > 0 and adjoint.seconds > 0
    assert backprop.backward_nfe == 0 and adjoint.backward_nfe > 0
    assert adjoint.forward_nfe == backprop.forward_nfe
    assert (adjoint.gradient - backprop.gradient).abs().max() <= 1e-6 * backprop.gradient.abs().max()
    block = ODEBlock(MLPField(2), adjoint=True)
    assert "adjoint=True" in repr(block) and "adjoint" not in repr(ODEBlock(MLPField(2)))
    block(torch.randn(5, 2)).sum().backward()
    assert block.last_backward_stats.nfe > 0 and block.last_stats.nfe > 0
    conv_net = small_mnist_odenet(channels=4, adjoint=True)
    conv_net(torch.randn(2, 1, 28, 28)).sum().backward()
    assert conv_net.block.last_backward_stats.intervals == 1


# ---------------------------------------------------------------------------------------------
# Errors name the problem and the fix.


def test_func_must_be_a_module_or_bring_its_parameters() -> None:
    with pytest.raises(TypeError, match="nn.Module.*adjoint_params"):
        odeint_adjoint(lambda t, z: -z, torch.ones(2), torch.tensor([0.0, 1.0]))
    ys = odeint_adjoint(lambda t, z: -z, torch.ones(2), torch.tensor([0.0, 1.0]), adjoint_params=())
    assert torch.allclose(ys[-1], torch.exp(torch.tensor(-1.0)).expand(2), atol=1e-6)
    with pytest.raises(TypeError, match="adjoint_params must be tensors"):
        odeint_adjoint(lambda t, z: -z, torch.ones(2), torch.tensor([0.0, 1.0]), adjoint_params=[1.0])


def test_bad_inputs_are_reported_before_solving() -> None:
    field = MLPField(2)
    with pytest.raises(TypeError, match="y0 must be a torch.Tensor"):
        odeint_adjoint(field, [1.0, 2.0], torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="strictly increasing or strictly decreasing"):
        odeint_adjoint(field, torch.ones(3, 2), torch.tensor([0.0, 1.0, 0.5]))
    with pytest.raises(ValueError, match="pass adjoint_options"):
        odeint_adjoint(field, torch.ones(3, 2), torch.tensor([0.0, 1.0]), method="rk4",
                       options={"step_size": 0.1}, adjoint_method="dopri5")
    with pytest.raises(ValueError, match="unknown method"):
        odeint_adjoint(field, torch.ones(3, 2), torch.tensor([0.0, 1.0]), adjoint_method="heun",
                       adjoint_options={}).sum().backward()


def test_non_finite_loss_gradient_is_named() -> None:
    field = MLPField(2)
    ys = odeint_adjoint(field, torch.ones(3, 2), torch.tensor([0.0, 1.0]))
    with pytest.raises(NonFiniteStateError, match="gradient of the loss"):
        (ys[-1] * torch.tensor(float("inf"))).sum().backward()


def test_backward_solve_failures_say_where_they_happened() -> None:
    field = MLPField(2)
    ys = odeint_adjoint(field, torch.ones(3, 2), torch.tensor([0.0, 1.0]), method="euler",
                        options={"step_size": 0.1}, adjoint_options={"step_size": 0.1, "max_num_steps": 5})
    with pytest.raises(MaxStepsExceededError, match="adjoint's backward solve from t=1 to t=0.*max_num_steps"):
        ys.sum().backward()


def test_unknown_route_and_bad_memory_target() -> None:
    field, y0 = linear()
    with pytest.raises(ValueError, match="unknown route"):
        loss_gradients("guess", field, y0, torch.tensor([0.0, 1.0], dtype=F64), lambda ys: ys.sum())
    with pytest.raises(ValueError, match="package.module:function"):
        peak_memory("nodekit.gradients.memory_workload")
    with pytest.raises(RuntimeError, match="failed in the child"):
        peak_memory("nodekit.gradients:memory_workload", route="guess", steps=10)


def test_backward_solve_copes_with_large_states_and_a_small_adjoint() -> None:
    """States of 1e10 beside an adjoint of 1e-3 (chapter 3's exploding system): the usual
    starting-step heuristic would start the backward solve at ~1e-8, below float32's resolution of
    t, because dL/dθ starts at zero and grows fast; the adjoint starts from the forward pass's
    mean step instead."""
    field = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        field.weight.copy_(torch.tensor([[0.3, -0.2], [0.1, 0.4]]))

    class Field(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = field

        def forward(self, t: Tensor, z: Tensor) -> Tensor:
            return self.linear(z)

    y0 = torch.tensor([[3e10, -1e10], [5.0, 2.0], [2e6, 1e6]])
    sol = solve_adjoint(Field(), y0, torch.linspace(0, 0.225, 10), rtol=1e-7, atol=1e-9)
    (sol.ys - sol.ys.detach() * 1.01).abs().mean().backward()
    assert torch.isfinite(field.weight.grad).all()
    assert sol.backward.nfe < 20 * sol.backward.intervals
