"""nodekit.measure.stability: Jacobians of fields and their eigenvalues."""

from __future__ import annotations

import torch

from nodekit.fields import LinearField, MLPField
from nodekit.measure.stability import jacobian_eigenvalues, jacobians


def test_jacobians_and_eigenvalues() -> None:
    torch.manual_seed(0)
    field = LinearField()
    z = torch.randn(4, 2)
    assert torch.allclose(jacobians(field, z), field.matrix.expand(4, 2, 2))
    assert jacobian_eigenvalues(field, z).shape == (4, 2)
    mlp = MLPField(2)
    jac = jacobians(mlp, z)
    numeric = torch.autograd.functional.jacobian(lambda x: mlp(torch.zeros(()), x[None])[0], z[1])
    assert torch.allclose(jac[1], numeric, atol=1e-6)

