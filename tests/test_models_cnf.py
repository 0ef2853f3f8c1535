"""Continuous normalizing flows (nodekit.models.cnf): closed forms, traces, adjoint gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch

from nodekit.data.densities import (
    evaluate_on_grid,
    toy_density,
)
from nodekit.fields import LinearField, MLPField
from nodekit.models.cnf import (
    CNF,
    exact_trace,
    hutchinson_trace,
    hutchinson_variance,
    linear_flow_log_prob,
    sample_probe,
    standard_normal_log_prob,
)
from nodekit.training import DensityTask, TrainConfig, train_model

LINEAR_FLOWS = {
    "stable focus (non-symmetric)": [[-1.0, -1.0], [1.0, -1.0]],
    "shear (non-normal)": [[0.5, 2.0], [0.0, -0.3]],
    "centre (trace 0)": [[0.0, -1.0], [1.0, 0.0]],
    "stable node": [[-1.0, 0.0], [0.0, -2.0]],
    "expanding, non-symmetric": [[0.3, -0.8], [0.4, 0.2]],
}


def random_field(dim: int, seed: int = 0) -> MLPField:
    torch.manual_seed(seed)
    return MLPField(dim, hidden=(32, 32), time="every layer").double()



@pytest.mark.parametrize("A", LINEAR_FLOWS.values(), ids=LINEAR_FLOWS.keys())
def test_linear_flow_matches_closed_form(A):
    A = torch.tensor(A, dtype=torch.float64)
    T = 0.8
    flow = CNF(LinearField(matrix=A), dim=2, t1=T, rtol=1e-10, atol=1e-10).double()
    x = 1.5 * torch.randn(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        log_p = flow.log_prob(x)
    assert (log_p - linear_flow_log_prob(x, A, T)).abs().max() <= 1e-5


def test_exact_trace_matches_jacobian():
    field = random_field(3)
    z = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.3, dtype=torch.float64)
    f = field(t, z)
    expected = torch.stack(
        [torch.trace(torch.autograd.functional.jacobian(lambda v: field(t, v[None])[0], z[i].detach())) for i in range(5)]
    )
    assert torch.allclose(exact_trace(f, z), expected, atol=1e-12)


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_hutchinson_is_unbiased(kind):
    """Mean over many probes within 4 standard errors of the exact trace, at every point."""
    field = random_field(4, seed=1)
    points, probes = 6, 20_000
    z0 = torch.randn(points, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    z = z0.repeat_interleave(probes, dim=0).requires_grad_(True)
    t = torch.tensor(0.2, dtype=torch.float64)
    f = field(t, z)
    probe = sample_probe(z, kind, torch.Generator().manual_seed(3))
    estimates = hutchinson_trace(f, z, probe).detach().reshape(points, probes)
    exact = exact_trace(f, z).detach().reshape(points, probes)[:, 0]
    standard_error = estimates.std(dim=1) / math.sqrt(probes)
    assert ((estimates.mean(dim=1) - exact).abs() <= 4 * standard_error).all()
    assert (estimates.var(dim=1) > 0).all()


def test_probe_moments():
    like = torch.empty(200_000, 3, dtype=torch.float64)
    for kind in ("gaussian", "rademacher"):
        eps = sample_probe(like, kind, torch.Generator().manual_seed(0))
        second_moment = eps.T @ eps / len(eps)
        assert torch.allclose(second_moment, torch.eye(3, dtype=torch.float64), atol=0.02)
    rademacher = sample_probe(like, "rademacher")
    assert set(rademacher.unique().tolist()) == {-1.0, 1.0}


def test_hutchinson_variance_matches_theory_on_linear_field():
    """Var(εᵀAε) = 2‖A_s‖²_F (Gaussian) and 2(‖A_s‖²_F − Σ a_ii²) (Rademacher)."""
    A = torch.tensor([[0.5, 2.0], [0.0, -0.3]], dtype=torch.float64)
    sym_sq = ((A + A.T) / 2).pow(2).sum().item()
    theory = {"gaussian": 2 * sym_sq, "rademacher": 2 * (sym_sq - 0.5**2 - 0.3**2)}
    z = torch.zeros(100_000, 2, dtype=torch.float64, requires_grad=True)
    f = z @ A.T
    for kind, var in theory.items():
        assert hutchinson_variance(A, kind).item() == pytest.approx(var)
        est = hutchinson_trace(f, z, sample_probe(z, kind, torch.Generator().manual_seed(1)))
        assert abs(est.var().item() - var) <= 0.05 * var


def test_hutchinson_probe_is_fixed_within_a_solve():
    """Each solve draws one probe; the same generator seed gives the same estimate."""
    flow = CNF(random_field(2), dim=2, trace="hutchinson", method="rk4", options={"step_size": 0.1}).double()
    x = torch.randn(10, 2, dtype=torch.float64)
    with torch.no_grad():
        a = flow.log_prob(x, generator=torch.Generator().manual_seed(5))
        b = flow.log_prob(x, generator=torch.Generator().manual_seed(5))
        c = flow.log_prob(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    probe = sample_probe(x, "rademacher", torch.Generator().manual_seed(5))
    assert probe.shape == (10, 2) and set(probe.unique().tolist()) <= {-1.0, 1.0}


def test_sample_then_log_prob_round_trip():
    torch.manual_seed(0)
    flow = CNF(MLPField(2, hidden=(32, 32), time="every layer"), dim=2, t1=0.5, rtol=1e-7, atol=1e-7).double()
    with torch.no_grad():
        z0 = flow.base_sample(200, torch.Generator().manual_seed(1))
        path, log_p_forward = flow.sample_with_log_prob(z0)
        z0_back, _ = flow.to_base(path[-1])
        log_p_backward = flow.log_prob(path[-1])
    assert (z0_back - z0).abs().max() <= 1e-5
    assert (log_p_backward - log_p_forward[-1]).abs().max() <= 1e-5


def test_trained_density_integrates_to_one():
    """A briefly trained flow on 8 Gaussians: its density sums to ≈1 over a 2-D grid."""
    torch.manual_seed(0)
    flow = CNF(MLPField(2, hidden=(32, 32), time="every layer"), dim=2, t1=0.5, rtol=1e-3, atol=1e-3)
    history = train_model(flow, DensityTask(toy_density("8gaussians"), steps_per_epoch=60),
                          TrainConfig(epochs=1, lr=5e-3, batch_size=100), name="test", use_cache=False, progress=False)
    assert history.batch_loss[-1] < history.batch_loss[0]
    flow.rtol = flow.atol = 1e-5
    assert abs(evaluate_on_grid(flow.log_prob, extent=7.0, resolution=140).mass - 1) <= 0.01


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_adjoint_gradients_match_backprop(trace):
    """CNF(adjoint=True) gives the gradients of backprop through the solver; the Hutchinson
    probe drawn for the forward solve is the one the backward solve uses."""
    x = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        flow = CNF(MLPField(2, hidden=(16, 16), time="every layer"), dim=2, trace=trace, rtol=1e-10, atol=1e-10, adjoint=adjoint).double()
        flow.log_prob(x, generator=torch.Generator().manual_seed(1)).mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in flow.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-8)


def test_hutchinson_probe_is_bound_to_its_own_solve_under_the_adjoint():
    """Two forward solves (different batches and probes) before one backward pass: each adjoint
    backward solve must use its own forward solve's probe, as backprop does by construction."""
    x1 = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x2 = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        flow = CNF(MLPField(2, hidden=(16, 16), time="every layer"), dim=2, trace="hutchinson", rtol=1e-10,
                   atol=1e-10, adjoint=adjoint).double()
        first = flow.log_prob(x1, generator=torch.Generator().manual_seed(2)).mean()
        second = flow.log_prob(x2, generator=torch.Generator().manual_seed(3)).mean()
        (first + second).backward()
        grads.append(torch.cat([p.grad.flatten() for p in flow.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(trace="jacobian"), "unknown trace 'jacobian'; choose one of: exact, hutchinson"),
        (dict(probe="uniform"), "unknown probe 'uniform'; choose one of: rademacher, gaussian"),
        (dict(t1=0.0), "t1 must be positive"),
        (dict(dim=0), "dim must be a positive int"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs, match):
    args = dict(field=MLPField(2, hidden=(4,), time="every layer"), dim=2) | kwargs
    with pytest.raises(ValueError, match=match):
        CNF(**args)


def test_bad_inputs_are_clear_errors():
    flow = CNF(MLPField(2, hidden=(4,), time="every layer"), dim=2)
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \(batch, 2\), got \(5, 3\)"):
        flow.log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"got \(2,\); reshape"):
        flow.log_prob(torch.zeros(2))
    with pytest.raises(ValueError, match=r"time t must lie in \(0, t1=0.5\]"):
        flow.log_prob(torch.zeros(4, 2), t=0.7)
    with pytest.raises(ValueError, match="n must be a positive int"):
        flow.sample(0)
    with pytest.raises(ValueError, match="sampling times must start at 0"):
        flow.sample(3, times=[0.1, 0.5])
    with pytest.raises(ValueError, match="unknown probe 'normal'"):
        sample_probe(torch.zeros(2, 2), "normal")
    with pytest.raises(ValueError, match="unknown probe 'normal'"):
        hutchinson_variance(torch.eye(2), "normal")
    with pytest.raises(ValueError, match=r"matrix must be square, got shape \(2, 3\)"):
        LinearField(matrix=torch.zeros(2, 3))


def test_standard_normal_log_prob():
    z = torch.randn(7, 3, dtype=torch.float64)
    expected = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)).log_prob(z)
    assert torch.allclose(standard_normal_log_prob(z), expected)

