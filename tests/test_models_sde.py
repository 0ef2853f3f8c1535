"""SDE blocks: reproducible noise, the dropout diffusion, solver choices and their errors."""

import resource
import subprocess
import sys

import pytest
import torch

from nodekit.fields import LinearField, SineField
from nodekit.models.ode_block import ODEBlock
from nodekit.models.sde import (
    DropoutDiffusion,
    MultiplicativeNoise,
    SDEBlock,
    dropout_residual,
    keep_to_sigma,
    reseed,
    sde_blocks,
)


def block(keep=0.9, **kw):
    torch.manual_seed(0)
    return SDEBlock(SineField(4), DropoutDiffusion(keep), t1=1.0, dt=0.1, **kw)


def test_the_same_seed_gives_the_same_noise_and_a_new_draw_differs():
    b, z = block(), torch.randn(8, 4)
    first, second = b(z), b(z)
    assert not torch.equal(first, second)  # every forward pass draws new noise
    b.reseed()
    assert torch.equal(b(z), first)
    other = block(seed=1)
    assert not torch.equal(other(z), first)


def test_rows_of_a_batch_get_independent_noise():
    z = torch.randn(1, 4).repeat(64, 1)
    out = block(keep=0.5)(z)
    assert out.std(0).min() > 1e-3


def test_keep_one_is_the_ode():
    torch.manual_seed(0)
    field, z = SineField(4), torch.randn(8, 4)
    sde = SDEBlock(field, DropoutDiffusion(1.0), t1=1.0, dt=0.01, method="midpoint", sde_type="stratonovich")
    ode = ODEBlock(field, t1=1.0, rtol=1e-8, atol=1e-8)
    assert torch.allclose(sde(z), ode(z), atol=1e-5)


def test_dropout_diffusion_is_sigma_times_the_drift():
    assert keep_to_sigma(0.9) == pytest.approx((0.1 / 0.9) ** 0.5)
    drift = torch.randn(3, 4)
    assert torch.allclose(DropoutDiffusion(0.75)(None, None, drift), (0.25 / 0.75) ** 0.5 * drift)


def test_euler_maruyama_on_gbm_has_the_ito_mean():
    # E z_t = z0 e^{λt} for dz = λz dt + σz dW (Itô)
    lam, sigma = -0.5, 0.8
    b = SDEBlock(LinearField(matrix=torch.tensor([[lam]], dtype=torch.float64)), MultiplicativeNoise(sigma),
                 t1=1.0, dt=0.01)
    out = b(torch.ones(20000, 1, dtype=torch.float64))
    se = out.std() / len(out) ** 0.5
    assert abs(out.mean().item() - torch.exp(torch.tensor(lam)).item()) < 4 * se


def test_gradients_flow_by_backprop_and_by_the_adjoint():
    z = torch.randn(4, 4, requires_grad=True)
    grads = []
    for kw in (dict(), dict(adjoint=True, method="reversible_heun", sde_type="stratonovich")):
        b = block(**kw)
        (g,) = torch.autograd.grad(b(z).square().sum(), z)
        grads.append(g)
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_a_step_that_does_not_divide_float64_time_finishes():
    # torchsde's Brownian interval, asked for a rounding-sized last step, grew without bound
    code = ("import torch; from nodekit.fields import LinearField; from nodekit.models.sde import *; "
            "b = SDEBlock(LinearField(matrix=torch.tensor([[-0.1]], dtype=torch.float64)), DropoutDiffusion(1.0), "
            "t1=10, dt=0.1); print(b(torch.ones(1, 1, dtype=torch.float64)).item())")
    def cap_memory():  # the failure was unbounded memory growth: fail fast instead of filling the machine
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          preexec_fn=cap_memory)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) == pytest.approx(0.99**100, rel=1e-9)  # Euler: 100 steps of (1 − 0.1 · 0.1)


def test_reseed_reaches_every_block():
    net = torch.nn.Sequential(block(), block())
    assert len(sde_blocks(net)) == 2
    z = torch.randn(2, 4)
    reseed(net, 5)
    a = net(z)
    reseed(net, 5)
    assert torch.equal(net(z), a)
    with pytest.raises(ValueError, match="has none"):
        reseed(torch.nn.Linear(2, 2), 0)


def test_dropout_residual_has_the_dropout_variance():
    field = LinearField(matrix=torch.eye(1, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    out = dropout_residual(field, torch.ones(100000, 1, dtype=torch.float64), t1=1.0, steps=1, keep=0.8, generator=g)
    # one step: z + z γ/p with γ ~ Bernoulli(0.8): mean 2, variance (1 − p)/p
    assert out.mean().item() == pytest.approx(2.0, abs=0.01)
    assert out.var().item() == pytest.approx(0.25, rel=0.03)


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="euler", sde_type="stratonovich"), "pass sde_type='ito'"),
    (dict(method="reversible_heun"), "pass sde_type='stratonovich'"),
    (dict(sde_type="levy"), "unknown sde_type"),
    (dict(dt=0.0), "dt"),
    (dict(dt=2.0), "dt"),
    (dict(t1=-1.0), "t1"),
])
def test_bad_settings_name_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SDEBlock(SineField(2), DropoutDiffusion(0.9), **{"t1": 1.0, "dt": 0.1, **kwargs})


@pytest.mark.parametrize("keep", [0.0, 1.5, -0.1])
def test_bad_keep_probability(keep):
    with pytest.raises(ValueError, match="keep"):
        DropoutDiffusion(keep)


def test_a_state_that_is_not_a_batch_of_vectors():
    with pytest.raises(ValueError, match="flatten"):
        block()(torch.randn(2, 2, 2))
