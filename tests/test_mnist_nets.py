"""The MNIST models of chapter 4 (ResNet, RK-Net, ODE-Net), their measurements, and fit's backward NFE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from nodekit.classification import tolerance_sweep, training_step_memory
from nodekit.models import (
    MNIST_MODELS,
    PUBLISHED_MNIST,
    ODEBlock,
    ResBlock,
    backward_nfe,
    count_parameters,
    forward_nfe,
    mnist_model,
)
from nodekit.models.fields import ConvField
from nodekit.train import TrainConfig, fit



@pytest.mark.parametrize("name", MNIST_MODELS)
def test_parameter_counts_at_paper_width_are_near_the_published_ones(name: str) -> None:
    published = PUBLISHED_MNIST[name]["params"]
    assert abs(count_parameters(mnist_model(name, 64)) - published) / published < 0.06


def test_resnet_has_about_three_times_the_parameters_of_the_ode_nets() -> None:
    counts = {name: count_parameters(mnist_model(name, 64)) for name in MNIST_MODELS}
    assert counts["RK-Net"] == counts["ODE-Net"]
    assert 2.5 < counts["ResNet"] / counts["ODE-Net"] < 3.0


@pytest.mark.parametrize("name", MNIST_MODELS)
@pytest.mark.parametrize("width", [8, 16])
def test_logits_shape_and_width(name: str, width: int) -> None:
    torch.manual_seed(0)
    model = mnist_model(name, width)
    out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert model.encoder(torch.randn(2, 1, 28, 28)).shape == (2, width, 6, 6)


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="ResNet, RK-Net, ODE-Net"):
        mnist_model("VGG")


def test_resnet_block_is_one_euler_step_of_its_field() -> None:
    torch.manual_seed(0)
    field = ConvField(8, time_dependent=False)
    z = torch.randn(3, 8, 6, 6)
    euler = ODEBlock(field, t1=1.0, method="euler", options={"step_size": 1.0})
    torch.testing.assert_close(ResBlock(field)(z), euler(z))
    assert euler.last_stats.nfe == 1


def test_resnet_is_six_residual_blocks_with_fields_of_their_own() -> None:
    model = mnist_model("ResNet", 8)
    blocks = [m for m in model.block if isinstance(m, ResBlock)]
    assert len(blocks) == 6
    assert len({id(b.field) for b in blocks}) == 6


def test_rknet_backpropagates_and_odenet_uses_the_adjoint() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    rk, ode = mnist_model("RK-Net", 4, tol=1e-5), mnist_model("ODE-Net", 4, tol=1e-5)
    ode.load_state_dict(rk.state_dict())
    assert not rk.block.adjoint and ode.block.adjoint
    assert rk.block.method == ode.block.method == "dopri5"
    grads = []
    for model in (rk, ode):
        F.cross_entropy(model(x), y).backward()
        assert forward_nfe(model) > 0
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert backward_nfe(rk) == 0 and backward_nfe(ode) > 0
    # Same function, two gradient routes: at a tight tolerance the gradients agree (at 1e-3 they
    # differ by tens of per cent on this untrained model).
    assert F.cosine_similarity(grads[0], grads[1], dim=0) > 0.99


def test_fit_records_backward_nfe_per_batch_and_epoch(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path))
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(24, 1, 28, 28), torch.randint(0, 10, (24,)))
    for name in ("ODE-Net", "ResNet"):
        model = mnist_model(name, 4, tol=1e-2)
        history = fit(model, data, data, TrainConfig(epochs=2, batch_size=8), name=f"bnfe-{name}", progress=False)
        assert len(history.backward_nfe) == 2 and len(history.batch_backward_nfe) == 6
        if name == "ODE-Net":
            assert all(n > 0 for n in history.batch_backward_nfe)
            assert history.backward_nfe[0] == pytest.approx(sum(history.batch_backward_nfe[:3]) / 3)
        else:
            assert history.backward_nfe == [0.0, 0.0]
    # The cached run reloads with its backward NFE (same initial weights: the cache key includes them).
    def ode_net():
        torch.manual_seed(1)
        return mnist_model("ODE-Net", 4, tol=1e-2)

    first = fit(ode_net(), data, data, TrainConfig(epochs=2, batch_size=8), name="bnfe-reload", progress=False)
    again = fit(ode_net(), data, data, TrainConfig(epochs=2, batch_size=8), name="bnfe-reload", progress=False)
    assert again.batch_backward_nfe == first.batch_backward_nfe and again.seconds == first.seconds


def test_tolerance_sweep_restores_tolerances_and_costs_more_when_tight() -> None:
    torch.manual_seed(0)
    model = mnist_model("ODE-Net", 4, tol=1e-3).train()
    data = TensorDataset(torch.randn(20, 1, 28, 28), torch.randint(0, 10, (20,)))
    results = tolerance_sweep(model, data, [1e-1, 1e-5], batch_size=10)
    assert [r.tol for r in results] == [1e-1, 1e-5]
    assert results[0].nfe < results[1].nfe
    assert all(0.0 <= r.accuracy <= 1.0 and r.seconds > 0 for r in results)
    assert (model.block.rtol, model.block.atol) == (1e-3, 1e-3) and model.training
    with pytest.raises(ValueError, match="ODEBlock"):
        tolerance_sweep(mnist_model("ResNet", 4), data, [1e-3])


def test_training_step_memory_adjoint_needs_less_than_backprop() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    rk = mnist_model("RK-Net", 8, tol=1e-4)
    ode = mnist_model("ODE-Net", 8, tol=1e-4)
    ode.load_state_dict(rk.state_dict())
    mib = {name: training_step_memory(name, m, 8, 1e-4, x, y) for name, m in (("RK-Net", rk), ("ODE-Net", ode))}
    assert mib["RK-Net"] > 1.5 * mib["ODE-Net"] > 0
