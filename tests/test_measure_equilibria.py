"""nodekit.measure.equilibria: Hurwitz and Gershgorin tests, and equilibria found by flow + Newton."""

from __future__ import annotations

import torch

from nodekit.fields import LinearField, SineField
from nodekit.measure.equilibria import (
    find_equilibria,
    is_diagonally_dominant,
    is_hurwitz,
    max_real_eigenvalue,
)


def test_dominant_negative_diagonal_matrices_are_hurwitz():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 5, 5, generator=g)
    a.diagonal(dim1=1, dim2=2).copy_(-(a.abs().sum(2) + 1e-3))
    assert is_diagonally_dominant(a).all() and is_hurwitz(a).all()


def test_the_tests_reject_what_they_should():
    assert not is_hurwitz(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))  # eigenvalue 0
    assert not is_hurwitz(torch.tensor([[0.1, -1.0], [1.0, 0.1]]))  # unstable focus
    assert is_hurwitz(torch.tensor([[-0.1, -5.0], [5.0, -0.1]]))  # stable focus, not dominant
    assert not is_diagonally_dominant(torch.tensor([[-0.1, -5.0], [5.0, -0.1]]))
    assert not is_diagonally_dominant(torch.tensor([[2.0, 0.0], [0.0, -1.0]]))  # a positive diagonal entry
    assert max_real_eigenvalue(torch.tensor([[-1.0, 0.0], [0.0, -3.0]])).item() == -1.0


def test_equilibrium_of_a_stable_linear_field_is_the_origin():
    field = LinearField(matrix=torch.tensor([[-1.0, 2.0], [-2.0, -1.0]], dtype=torch.float64))
    z, residual = find_equilibria(field, torch.tensor([[3.0, -1.0], [0.5, 0.5]], dtype=torch.float64), t1=5.0)
    assert z.abs().max() < 1e-8 and residual.max() < 1e-8


def test_equilibria_of_the_sine_field_solve_w_z_plus_b_in_pi_z():
    torch.manual_seed(0)
    field = SineField(3).double()
    with torch.no_grad():
        field.linear.weight.copy_(torch.eye(3, dtype=torch.float64) + 0.1)
    z, residual = find_equilibria(field, torch.rand(4, 3, dtype=torch.float64))
    assert residual.max() < 1e-8
    multiples = field.linear(z).detach() / torch.pi
    assert (multiples - multiples.round()).abs().max() < 1e-6
    assert is_hurwitz(field.jacobian(z)).all()  # the flow only settles at stable equilibria
