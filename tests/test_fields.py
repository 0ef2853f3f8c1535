"""nodekit.fields: the vector fields (MLP time inputs, linear fields, the cubic demo field, the conv field)."""

from __future__ import annotations

import math

import pytest
import torch

from nodekit.fields import ConvField, CubicMLPField, LinearField, MLPField
from nodekit.measure.stability import jacobian_eigenvalues


def test_cubic_field_layers_steepen_like_the_square_of_the_radius() -> None:
    torch.manual_seed(0)
    field = CubicMLPField()
    (steep_10, width_10), (steep_100, width_100) = field.steepest_layer(10.0), field.steepest_layer(100.0)
    assert 50 < steep_100 / steep_10 < 200  # ~ (100 / 10)^2
    assert 50 < width_10 / width_100 < 200
    # The located layer really is where the field is steep: compare with random points on the circle.
    angles = torch.rand(1000) * 2 * math.pi
    ring = 100.0 * torch.stack([angles.cos(), angles.sin()], dim=-1)
    assert jacobian_eigenvalues(field, ring).abs().max() < steep_100



def test_mlp_field_time_inputs():
    torch.manual_seed(0)
    z = torch.randn(5, 3)
    none, first, every = (MLPField(3, hidden=(8, 8), time=t) for t in ("none", "input", "every layer"))
    assert [layer.in_features for layer in none.layers] == [3, 8, 8]
    assert [layer.in_features for layer in first.layers] == [4, 8, 8]
    assert [layer.in_features for layer in every.layers] == [4, 9, 9]
    for field in (first, every):
        assert not torch.allclose(field(torch.tensor(0.0), z), field(torch.tensor(1.0), z)), "t must matter"
    assert torch.equal(none(torch.tensor(0.0), z), none(torch.tensor(1.0), z))
    with pytest.raises(ValueError, match="unknown time input 'always'"):
        MLPField(3, time="always")


def test_linear_field_from_a_matrix_draws_no_random_numbers():
    A = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    field = LinearField(matrix=A)
    assert torch.equal(torch.rand(2), expected), "building a field from a matrix must not consume random numbers"
    assert field.matrix.dtype == torch.float64 and torch.equal(field.matrix, A)
    z = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    assert torch.equal(field(torch.tensor(0.0), z), z @ A.T)
    with pytest.raises(ValueError, match=r"matrix must be square, got shape \(2, 3\)"):
        LinearField(matrix=torch.zeros(2, 3))


@pytest.mark.parametrize("time_dependent", [False, True])
def test_conv_field_depends_only_on_the_direction_of_the_state(time_dependent: bool) -> None:
    torch.manual_seed(0)
    field = ConvField(8, time_dependent=time_dependent, layers=4, bias=False)
    z, t = torch.randn(3, 8, 5, 5), torch.tensor(0.7)
    ref = field(t, z)
    for c in (0.3, 2.0, 300.0):  # exact up to GroupNorm's eps (1e-5 against a per-group variance of c^2)
        assert ((field(t, c * z) - ref).norm() / ref.norm()).item() < 1e-4
    assert not torch.allclose(field(t, -z), ref, atol=1e-2)  # homogeneous for c > 0 only


def test_conv_field_layers_and_bias_set_the_parameter_count() -> None:
    c = 16
    # four bias-free 3x3 convolutions and five GroupNorms (weight and bias per channel): the rajatvd/NeuralODE field
    assert sum(p.numel() for p in ConvField(c, time_dependent=False, layers=4, bias=False).parameters()) == 4 * c * c * 9 + 5 * 2 * c
    # Chen et al.'s default: two convolutions with a time channel and biases, three GroupNorms
    assert sum(p.numel() for p in ConvField(c).parameters()) == 2 * (c * (c + 1) * 9 + c) + 3 * 2 * c
    with pytest.raises(ValueError, match="layers must be an integer >= 1"):
        ConvField(c, layers=0)

def test_sine_field_jacobian_matches_autograd_and_its_equilibria():
    from nodekit.fields import SineField
    from nodekit.measure.stability import jacobians

    field = SineField(5).double()
    z = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(field.jacobian(z), jacobians(field, z), atol=1e-12)
    # W z + b = 0 at z* = -W⁻¹ b: an equilibrium with Jacobian -W
    w, b = field.linear.weight.detach(), field.linear.bias.detach()
    z_star = -torch.linalg.solve(w, b)[None]
    assert field(torch.zeros(()), z_star).abs().max() < 1e-12
    assert torch.allclose(field.jacobian(z_star)[0], -w)
