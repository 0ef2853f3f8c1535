"""The three MNIST classifiers of Chen et al. (2018), section 7.1: ResNet, RK-Net and ODE-Net.

All three share a downsampling stem (28×28 → 7×7), the convolutional field of
:class:`~nodekit.models.ConvField` and a pooled linear head; they differ in how the field is used:

* **ResNet**: six residual blocks ``z + f_k(z)``, each with a field of its own (no time input),
  i.e. six explicit Euler steps of size 1 through six different fields;
* **RK-Net**: one time-dependent field solved from t = 0 to 1 by an adaptive Runge–Kutta solver
  (dopri5), gradients by backpropagation through the solver's operations;
* **ODE-Net**: the same field and solver, gradients by the adjoint method (memory flat in depth).

``width`` sets the number of channels (64 in the paper; the quick profile uses fewer).
"""

from __future__ import annotations

from torch import Tensor, nn

from .classifiers import ODENet
from .fields import ConvField, group_norm
from .ode_block import ODEBlock

__all__ = ["MNIST_MODELS", "PUBLISHED_MNIST", "ResBlock", "mnist_model", "mnist_resnet", "mnist_rknet", "mnist_odenet"]

MNIST_MODELS: tuple[str, ...] = ("ResNet", "RK-Net", "ODE-Net")

#: Chen et al. (2018), table 1 (as quoted in Lopatin's notes): test error, parameters, memory, time.
PUBLISHED_MNIST: dict[str, dict[str, str | float]] = {
    "ResNet": {"test_error": 0.41, "params": 0.60e6, "memory": "O(L)", "time": "O(L)"},
    "RK-Net": {"test_error": 0.47, "params": 0.22e6, "memory": "O(L̃)", "time": "O(L̃)"},
    "ODE-Net": {"test_error": 0.42, "params": 0.22e6, "memory": "O(1)", "time": "O(L̃)"},
}


def mnist_stem(width: int = 64) -> nn.Sequential:
    """Chen et al.'s downsampling: 3×3 conv, then two strided 4×4 convs (28 → 14 → 7), with norms."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, 1),
        group_norm(width), nn.ReLU(),
        nn.Conv2d(width, width, 4, 2, 1),
        group_norm(width), nn.ReLU(),
        nn.Conv2d(width, width, 4, 2, 1),
    )


def mnist_head(width: int = 64, classes: int = 10) -> nn.Sequential:
    """Norm, ReLU, global average pool, linear layer to the class logits."""
    return nn.Sequential(group_norm(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


class ResBlock(nn.Module):
    """A residual block ``z + f(z)``: one explicit Euler step of size 1 through the field ``f``."""

    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field

    def forward(self, z: Tensor) -> Tensor:
        return z + self.field(z.new_zeros(()), z)


def mnist_resnet(width: int = 64, blocks: int = 6) -> ODENet:
    """Stem, ``blocks`` residual blocks with fields of their own (time-independent ConvFields), head."""
    body = nn.Sequential(*(ResBlock(ConvField(width, time_dependent=False)) for _ in range(blocks)))
    return ODENet(mnist_stem(width), body, mnist_head(width))  # type: ignore[arg-type]


def _ode_model(width: int, adjoint: bool, tol: float, method: str) -> ODENet:
    block = ODEBlock(ConvField(width), t1=1.0, method=method, rtol=tol, atol=tol, adjoint=adjoint)
    return ODENet(mnist_stem(width), block, mnist_head(width))


def mnist_rknet(width: int = 64, tol: float = 1e-3, method: str = "dopri5") -> ODENet:
    """Stem, one ODE block solved by ``method`` with backpropagation through the solver, head."""
    return _ode_model(width, adjoint=False, tol=tol, method=method)


def mnist_odenet(width: int = 64, tol: float = 1e-3, method: str = "dopri5") -> ODENet:
    """Stem, one ODE block solved by ``method`` with gradients by the adjoint method, head."""
    return _ode_model(width, adjoint=True, tol=tol, method=method)


def mnist_model(name: str, width: int = 64, tol: float = 1e-3) -> ODENet:
    """One of :data:`MNIST_MODELS` by name, at ``width`` channels (``tol`` for the ODE blocks)."""
    if name == "ResNet":
        return mnist_resnet(width)
    if name == "RK-Net":
        return mnist_rknet(width, tol)
    if name == "ODE-Net":
        return mnist_odenet(width, tol)
    raise ValueError(f"unknown MNIST model {name!r}; choose one of {', '.join(MNIST_MODELS)}")
