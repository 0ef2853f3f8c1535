"""A random model's prediction averaged over its noise: the decision a randomised defence makes.

A model that draws fresh noise in every forward pass (a neural SDE, dropout kept at test time) has
a random prediction; the honest accuracy of such a model is that of its *mean* prediction, and an
attack on it must aim at that mean (Athalye et al. 2018).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["MeanPrediction", "mean_prediction"]


class MeanPrediction(nn.Module):
    """``log (1/k) Σ_j softmax(model(x))_j`` over ``k = draws`` forward passes of a random ``model``.

    The ``k`` draws run as one batch (the input repeated ``k`` times), so the model must draw
    independent noise per row (as :class:`~nodekit.models.sde.SDEBlock` does). The output is a
    log-probability: its argmax is the averaged prediction, and cross-entropy on it is ``−log`` of
    the mean probability of the true class, an expectation loss that gradient attacks can follow
    (its gradient is the average of the draws' gradients of ``log p``, each weighted by its ``p``).

    A deterministic ``encoder`` in front of the random ``model`` runs once per input and only its
    output is repeated: the same numbers as averaging ``model(encoder(x))``, for a fraction of the
    cost. :func:`mean_prediction` splits an :class:`~nodekit.models.classifiers.ODENet` so.
    """

    def __init__(self, model: nn.Module, draws: int = 20, encoder: nn.Module | None = None) -> None:
        super().__init__()
        if not (isinstance(draws, int) and draws >= 1):
            raise ValueError(f"draws (noise draws averaged per input) must be an integer >= 1, got {draws!r}")
        self.model, self.draws, self.encoder = model, draws, encoder

    def forward(self, x: Tensor) -> Tensor:
        n = len(x)
        if self.encoder is not None:
            x = self.encoder(x)
        logits = self.model(x.repeat(self.draws, *([1] * (x.dim() - 1))))
        log_p = torch.log_softmax(logits, dim=1).view(self.draws, n, -1)
        return torch.logsumexp(log_p, dim=0) - math.log(self.draws)

    def extra_repr(self) -> str:
        return f"draws={self.draws}"


def mean_prediction(net: nn.Module, draws: int = 20) -> MeanPrediction:
    """The :class:`MeanPrediction` of an ``ODENet``-shaped ``net`` (``encoder``, random ``block``,
    ``decoder``) over ``draws`` draws, its deterministic encoder run once per input."""
    parts = [getattr(net, name, None) for name in ("encoder", "block", "decoder")]
    if any(p is None for p in parts):
        raise ValueError(f"mean_prediction needs a net with encoder, block and decoder (an ODENet); got a "
                         f"{type(net).__name__}: use MeanPrediction(model, draws) for any other random model")
    encoder, block, decoder = parts
    return MeanPrediction(nn.Sequential(block, decoder), draws, encoder=encoder)
