"""Train/eval mode of a model, switched for a while and restored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Run ``models`` in eval mode and restore each one's previous train/eval mode afterwards."""
    before = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, was_training in zip(models, before):
            m.train(was_training)
