"""nodekit's adjoint method: gradients with respect to y0, the parameters and the output times
agree with backprop through the solver, with torchdiffeq's adjoint and with finite differences;
its statistics, its memory (flat in the number of steps), the ODE block option, and its errors."""

from __future__ import annotations

import pytest
import torch
import torchdiffeq
from problems import F64, assert_close, conv, linear, weighted_loss
from torch import Tensor, nn
from torch.func import functional_call

import nodekit
from nodekit import MaxStepsExceededError, NonFiniteStateError, odeint_adjoint
from nodekit.adjoint import solve_adjoint
from nodekit.fields import ConvField, MLPField
from nodekit.measure.gradients import loss_gradients


def mlp() -> tuple[nn.Module, Tensor]:
    torch.manual_seed(0)
    return MLPField(2, hidden=16, time="input").double(), torch.randn(4, 2, dtype=F64)


FIELDS = {"mlp": mlp, "linear": linear, "conv": conv}


TIMES = {
    "increasing": [0.0, 0.4, 1.1, 1.5],
    "decreasing": [1.5, 0.9, 0.2, 0.0],
}


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
    field, y0 = MLPField(2, hidden=4, layers=1, time="input").double(), torch.randn(2, 2, dtype=F64)
    names = [n for n, _ in field.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in field.parameters()]
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64, requires_grad=True)

    def solution(y0: Tensor, t: Tensor, *ps: Tensor) -> Tensor:
        def f(s: Tensor, z: Tensor) -> Tensor:
            return functional_call(field, dict(zip(names, ps)), (s, z))

        return odeint_adjoint(f, y0, t, method="rk4", options={"step_size": 0.02}, adjoint_params=ps)

    assert torch.autograd.gradcheck(solution, (y0.requires_grad_(True), t, *params), atol=1e-6, rtol=1e-5)


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
        field.layers[-1].weight.mul_(3.0)
    errors = []
    for tol in (1e-3, 1e-6, 1e-9):
        sol = solve_adjoint(field, y0, torch.tensor([0.0, 3.0], dtype=F64), rtol=tol, atol=tol)
        sol.ys[-1].sum().backward()
        errors.append(sol.backward.reconstruction_error)
    assert errors[0] > errors[1] > errors[2]


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


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_a_single_time_returns_y0_with_the_identity_gradient(method: str) -> None:
    """As torchdiffeq: ys = y0 stacked, dL/dy0 = dL/dys[0], zero gradients for the parameters and t."""
    field = MLPField(2, hidden=4).double()
    grad_out = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]], dtype=F64)
    results = []
    for odeint in (odeint_adjoint, torchdiffeq.odeint_adjoint):
        field.zero_grad(set_to_none=True)
        y0 = torch.tensor([[0.3, -0.7], [1.0, 2.0]], dtype=F64, requires_grad=True)
        t = torch.tensor([0.5], dtype=F64, requires_grad=True)
        ys = odeint(field, y0, t, method=method)
        ys.backward(grad_out)
        results.append((ys.detach(), y0.grad, t.grad, [p.grad for p in field.parameters()]))
    (ys, y0_grad, t_grad, p_grads), (ys_tdq, y0_grad_tdq, t_grad_tdq, p_grads_tdq) = results
    assert ys.shape == (1, 2, 2) and torch.equal(ys, ys_tdq) and torch.equal(ys[0], y0.detach())
    assert torch.equal(y0_grad, grad_out[0]) and torch.equal(y0_grad, y0_grad_tdq)
    assert torch.equal(t_grad, t_grad_tdq) and not t_grad.any()
    for ours, theirs in zip(p_grads, p_grads_tdq):
        assert torch.equal(ours, theirs) and not ours.any()
    sol = solve_adjoint(field, y0.detach(), [0.5], method=method)
    assert sol.stats.nfe == 0 and sol.stats.steps == 0


def test_per_element_tolerances_need_float_adjoint_tolerances() -> None:
    field = MLPField(2, hidden=4).double()
    y0, t = torch.ones(3, 2, dtype=F64, requires_grad=True), torch.tensor([0.0, 1.0], dtype=F64)
    rtol = torch.tensor([1e-8, 1e-4], dtype=F64)
    with pytest.raises(ValueError, match=r"adjoint_rtol \(which defaults to rtol\) must be a float.*shape \(2,\)"):
        odeint_adjoint(field, y0, t, rtol=rtol)
    ys = odeint_adjoint(field, y0, t, rtol=rtol, adjoint_rtol=1e-8)
    assert torch.equal(ys.detach(), nodekit.odeint(field, y0.detach(), t, rtol=rtol))
    ys.sum().backward()
    assert torch.isfinite(y0.grad).all()


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
    assert sol.backward.nfe < 20 * sol.backward.intervals
    # The value, not just finiteness: backprop through a float64 solve of the same loss.
    exact = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        exact.weight.copy_(field.weight)
    ys = nodekit.odeint(lambda t, z: exact(z), y0.double(), torch.linspace(0, 0.225, 10, dtype=torch.float64), rtol=1e-10, atol=1e-12)
    (ys - ys.detach() * 1.01).abs().mean().backward()
    reference = exact.weight.grad.float()
    assert torch.allclose(field.weight.grad, reference, rtol=1e-3, atol=1e-3 * reference.abs().max().item())



class AdjointLogged(nn.Module):
    """The linear field with forward and adjoint step callbacks that record ``(kind, t0, y0, dt)``."""

    def __init__(self) -> None:
        super().__init__()
        self.field, self.log = linear()[0], []
        for kind in ("step", "accept_step", "reject_step"):
            for suffix in ("", "_adjoint"):
                setattr(self, f"callback_{kind}{suffix}", self._recorder(kind + suffix))

    def _recorder(self, kind: str):
        return lambda t0, y0, dt: self.log.append((kind, t0, y0, dt))

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.field(t, y)


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_adjoint_callbacks_are_called_during_backward(method):
    field = AdjointLogged()
    y0 = linear()[1].requires_grad_(True)
    t = torch.tensor([0.0, 0.4, 1.1], dtype=F64)
    options = {"step_size": 0.1} if method == "rk4" else {}
    sol = solve_adjoint(field, y0, t, rtol=1e-8, atol=1e-8, method=method, options=options)
    assert field.log and all(not kind.endswith("_adjoint") for kind, *_ in field.log)
    forward_calls = len(field.log)
    sol.ys.square().sum().backward()
    backward = field.log[forward_calls:]
    kinds = [kind for kind, *_ in backward]
    assert backward and all(kind.endswith("_adjoint") for kind in kinds)
    stats = sol.backward
    assert kinds.count("step_adjoint") == stats.steps
    if method == "dopri5":
        assert kinds.count("accept_step_adjoint") == stats.accepted_steps
        assert kinds.count("reject_step_adjoint") == stats.rejected_steps
    n_aug = 2 * y0.numel() + sum(p.numel() for p in field.parameters())
    t0s = torch.stack([t0 for kind, t0, _, _ in backward if kind == "step_adjoint"])
    assert t0s[0] == t[-1] and (t0s.diff() <= 0).all() and t0s[-1] >= t[0]
    assert all(y.shape == (n_aug,) and dt.shape == () and dt > 0 for _, _, y, dt in backward)
