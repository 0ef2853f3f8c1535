"""nodekit.models.classifiers: Chen et al.'s ResNet / RK-Net / ODE-Net, the small ODE-net, the rajatvd conv ODE-net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nodekit.book.published import CHEN_MNIST
from nodekit.fields import ConvField
from nodekit.models import (
    MNIST_MODELS,
    ODEBlock,
    ResBlock,
    backward_nfe,
    conv_odenet,
    count_parameters,
    forward_nfe,
    mnist_model,
    small_mnist_odenet,
    tisode,
    yan_cnn,
    yan_odenet,
)


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_parameter_counts_at_paper_width_are_near_the_published_ones(name: str) -> None:
    published = CHEN_MNIST[name]["params"]
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


def test_conv_field_and_small_odenet_shapes():
    field = ConvField(8)
    x = torch.randn(2, 8, 6, 6)
    assert field(torch.tensor(0.3), x).shape == x.shape
    net = small_mnist_odenet(channels=8, method="euler", options={"step_size": 0.5})
    logits = net(torch.randn(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    assert forward_nfe(net) == 2
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())


def test_published_models_have_about_140k_parameters():
    counts = [count_parameters(m) for m in (yan_cnn(), yan_odenet(), tisode())]
    assert all(135_000 <= c <= 145_000 for c in counts), counts
    assert count_parameters(yan_cnn(8, pool=4)) < 5_000


@pytest.mark.parametrize("make", [lambda: yan_cnn(8), lambda: yan_odenet(8), lambda: tisode(8, pool=4)])
def test_models_map_digits_to_logits(make):
    assert make()(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_conv_odenet_small_and_large_have_the_released_parameter_counts() -> None:
    assert count_parameters(conv_odenet(16, 7)) == 17_418
    assert count_parameters(conv_odenet(64, 28)) == 650_634


def test_conv_odenet_max_pooling_is_deterministic_and_fractional_pooling_is_not() -> None:
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        net = conv_odenet(t1=0.5, method="euler", options={"step_size": 0.25}).eval()
        assert torch.equal(net(x), net(x))
        assert forward_nfe(net) == 2
        fractional = conv_odenet(pooling="fractional", t1=0.5, method="euler", options={"step_size": 0.25}).eval()
        assert not torch.equal(fractional(x), fractional(x))
    with pytest.raises(ValueError, match="unknown pooling"):
        conv_odenet(pooling="avg")


def test_conv_odenet_random_end_time_reaches_the_block() -> None:
    net = conv_odenet(t1=100.0, t1_range=(10.0, 100.0), method="euler", options={"step_size": 20.0})
    net(torch.rand(2, 1, 28, 28))
    assert 10.0 <= net.block.last_t1 <= 100.0
