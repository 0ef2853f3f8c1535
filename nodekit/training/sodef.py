"""SODEF's three training phases (Kang et al. 2021, as in their released code), on :func:`~nodekit.training.loop.fit`.

1. the encoder against the fixed :func:`~nodekit.models.sodef.simplex_head` (cross-entropy);
2. the field alone on the stored features, by the :class:`~.regularizers.LyapunovRegularizer`
   only: ``f`` is evaluated at the features, never integrated;
3. the field frozen, a new linear head on the features flowed to ``T``.

:func:`train_ode_head` trains the comparison model: the same field, not regularised, jointly with a
new head by cross-entropy through the ODE (a plain ODE block on the same features).
:func:`train_sde_head` trains SODEF_p (seed 003, section 7): SODEF's field, now driving an SDE with
the diffusion of dropout at keep probability ``p``, fine-tuned with a new head through the SDE
solve, the Lyapunov terms kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from ..fields import SineField
from ..models.classifiers import ODENet
from ..models.ode_block import ODEBlock
from ..models.sde import DropoutDiffusion, SDEBlock
from ..models.sodef import FeatureStage, simplex_head, sodef_net
from .loop import History, TrainConfig, fit
from .regularizers import LyapunovRegularizer

__all__ = ["FlowStage", "SODEFConfig", "SODEFModels", "encode", "flow_features", "no_loss", "train_ode_head",
           "train_sde_head", "train_sodef"]


def no_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """A zero loss: phase 2's objective is the regulariser alone."""
    return outputs.new_zeros(())


@dataclass(frozen=True)
class SODEFConfig:
    """Epochs and learning rates of the three phases (the released code: Adam; 1e-4 / 1e-2 / 1e-2,
    batch 128 / 32 / 128, 25 / 15 / 5 epochs on full MNIST), the integration time and tolerance of
    phase 3 and of evaluation (T = 5, dopri5 at 1e-5), and the regulariser."""

    phase1: TrainConfig = TrainConfig(epochs=6, lr=1e-3)
    phase2: TrainConfig = TrainConfig(epochs=30, lr=1e-2, batch_size=128)
    phase3: TrainConfig = TrainConfig(epochs=5, lr=1e-2)
    t1: float = 5.0
    tol: float = 1e-5
    regularizer: LyapunovRegularizer = LyapunovRegularizer()

    def with_seed(self, seed: int) -> SODEFConfig:
        """The same configuration with every phase seeded by ``seed``."""
        return replace(self, phase1=replace(self.phase1, seed=seed), phase2=replace(self.phase2, seed=seed),
                       phase3=replace(self.phase3, seed=seed))


@dataclass
class SODEFModels:
    """What :func:`train_sodef` returns: the encoder with its simplex head (``backbone``, phase 1),
    the untrained field it started from (``initial_field``), the SODEF model (phase 3), the
    features, and the three phases' histories."""

    backbone: nn.Sequential
    initial_field: SineField
    sodef: ODENet
    train_features: TensorDataset
    test_features: TensorDataset
    history: dict[str, History]


@torch.no_grad()
def encode(encoder: nn.Module, data: TensorDataset | torch.utils.data.Dataset, batch_size: int = 500) -> TensorDataset:
    """The encoder's features of every example (eval mode), with their labels."""
    was_training = encoder.training
    encoder.eval()
    xs, ys = [], []
    for x, y in torch.utils.data.DataLoader(data, batch_size=batch_size):
        xs.append(encoder(x))
        ys.append(torch.as_tensor(y))
    encoder.train(was_training)
    return TensorDataset(torch.cat(xs), torch.cat(ys))


@torch.no_grad()
def flow_features(block: ODEBlock, features: TensorDataset) -> TensorDataset:
    """The stored features flowed to the block's end time by its (frozen) field, with their labels."""
    z, y = features.tensors
    return TensorDataset(block(z), y)


def train_sodef(
    encoder: nn.Module, train, test, config: SODEFConfig = SODEFConfig(), *, name: str = "sodef",
    features: int = 64, classes: int = 10, progress: bool = True,
) -> SODEFModels:
    """Run the three phases (each cached by :func:`~nodekit.training.loop.fit`) and return the models.

    Phase 3 trains the head on the features flowed once to ``T`` by the frozen field, which is
    what training it behind the frozen ODE block computes (up to the solver's tolerance), without
    solving again every epoch.
    """
    head = simplex_head(features, classes)
    backbone = nn.Sequential(encoder, head)
    history = {"phase 1": fit(backbone, train, test, config.phase1, name=f"{name}-phase1", progress=progress)}
    for p in encoder.parameters():
        p.requires_grad_(False)
    backbone.eval()
    train_z, test_z = encode(encoder, train), encode(encoder, test)

    torch.manual_seed(config.phase1.seed + 1)
    field = SineField(features)
    initial_field = copy.deepcopy(field)
    history["phase 2"] = fit(
        FeatureStage(field, head), train_z, test_z, config.phase2, name=f"{name}-phase2", loss_fn=no_loss,
        regularizer=config.regularizer, progress=progress,
    )
    for p in field.parameters():
        p.requires_grad_(False)
    # Seeded here: a phase trained in this process draws from torch's global generator (its data
    # loaders do), one loaded from the cache does not; the new head must not depend on which.
    torch.manual_seed(config.phase1.seed + 2)
    model = sodef_net(encoder, field, features=features, classes=classes, t1=config.t1, tol=config.tol)
    history["phase 3"] = fit(
        model.decoder, flow_features(model.block, train_z), flow_features(model.block, test_z), config.phase3,
        name=f"{name}-phase3", progress=progress,
    )
    return SODEFModels(backbone, initial_field, model.eval(), train_z, test_z, history)


def train_ode_head(
    encoder: nn.Module, field: nn.Module, train_features: TensorDataset, test_features: TensorDataset,
    config: TrainConfig, *, t1: float = 5.0, tol: float = 1e-5, classes: int = 10, name: str = "ode-head",
    progress: bool = True,
) -> tuple[ODENet, History]:
    """The plain ODE block: ``field`` (a copy, trainable) and a new linear head trained together by
    cross-entropy through the solve to ``t1`` on the encoder's stored features; no stability terms."""
    field = copy.deepcopy(field).requires_grad_(True)
    features = train_features.tensors[0].shape[1]
    torch.manual_seed(config.seed + 2)  # the new head, independent of what ran (or was cached) before
    model = sodef_net(encoder, field, features=features, classes=classes, t1=t1, tol=tol)
    tail = nn.Sequential(model.block, model.decoder)
    history = fit(tail, train_features, test_features, config, name=name, progress=progress)
    return model.eval(), history


class FlowStage(nn.Module):
    """``head(block(z))`` on stored features ``z``, exposing the block's ``field`` for the
    :class:`~nodekit.training.regularizers.LyapunovRegularizer`."""

    def __init__(self, block: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.block, self.head = block, head

    @property
    def field(self) -> nn.Module:
        """The block's drift."""
        return self.block.field

    def forward(self, z: Tensor) -> Tensor:
        return self.head(self.block(z))


def train_sde_head(
    encoder: nn.Module, field: nn.Module, keep: float, train_features: TensorDataset, test_features: TensorDataset,
    config: TrainConfig, *, t1: float = 10.0, dt: float = 0.25, regularizer: LyapunovRegularizer | None = LyapunovRegularizer(),
    classes: int = 10, name: str = "sodef-sde", progress: bool = True,
) -> tuple[ODENet, History]:
    """SODEF_p: the Itô SDE ``dz = f dt + √((1−p)/p) f dW`` from the encoder's features to ``t1``,
    solved by Euler–Maruyama with step ``dt`` (:class:`~nodekit.models.sde.SDEBlock`'s default),
    then a new linear head.

    ``field`` (a copy, trainable; SODEF's trained field) and the head are trained together by
    cross-entropy through the SDE on the stored features plus ``regularizer`` at them (SODEF's
    Lyapunov terms; None for none); the encoder stays frozen. ``keep = 1`` is the same fine-tuning
    without noise. The block's noise is seeded by ``config.seed``.
    """
    field = copy.deepcopy(field).requires_grad_(True)
    features = train_features.tensors[0].shape[1]
    torch.manual_seed(config.seed + 2)  # the new head, independent of what ran (or was cached) before
    block = SDEBlock(field, DropoutDiffusion(keep), t1=t1, dt=dt, seed=config.seed)
    stage = FlowStage(block, nn.Linear(features, classes))
    history = fit(stage, train_features, test_features, config, name=name, regularizer=regularizer, progress=progress)
    block.reseed()
    return ODENet(encoder, block, stage.head).eval(), history
