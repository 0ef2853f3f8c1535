"""nodekit.measure.masking: per-example outcomes, the fixed-step copy and the worst case."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nodekit.attacks import PGD
from nodekit.fields import LinearField
from nodekit.measure.masking import audit, correct_under, fixed_step_copy, worst_case
from nodekit.models import ODEBlock, ODENet


def linear_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))


def data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(12, 1, 2, 2, generator=g), torch.randint(0, 3, (12,), generator=g)


def test_clean_outcomes_are_the_argmax_correctness():
    model, (x, y) = linear_classifier(), data()
    with torch.no_grad():
        expected = model(x).argmax(1) == y
    assert torch.equal(correct_under(model, x, y, batch_size=5), expected)


def test_a_large_attack_fools_at_least_as_often_and_transfer_from_itself_equals_white_box():
    model, (x, y) = linear_classifier(), data()
    attack = PGD(0.5, steps=10)
    white = correct_under(model, x, y, attack, batch_size=5)
    assert white.sum() <= correct_under(model, x, y).sum()
    assert torch.equal(correct_under(model, x, y, attack, source=model, batch_size=5), white)


def test_worst_case_is_correct_only_under_every_attack():
    out = {"a": torch.tensor([True, True, False, True]), "b": torch.tensor([True, False, False, True])}
    assert worst_case(out).tolist() == [True, False, False, True]
    with pytest.raises(ValueError, match="at least one"):
        worst_case({})
    with pytest.raises(ValueError, match="different numbers"):
        worst_case({"a": torch.ones(2, dtype=torch.bool), "b": torch.ones(3, dtype=torch.bool)})


def test_audit_holds_clean_and_every_attack():
    model, (x, y) = linear_classifier(), data()
    out = audit(model, x, y, {"pgd": PGD(0.1, steps=3), "transfer": (PGD(0.1, steps=3), linear_classifier())},
                progress=False)
    assert set(out) == {"clean", "pgd", "transfer"} and all(len(v) == 12 for v in out.values())


def test_fixed_step_copy_changes_the_solver_of_a_copy_only():
    block = ODEBlock(LinearField(matrix=-torch.eye(4)), t1=1.0, method="dopri5", rtol=1e-5, atol=1e-5)
    model = ODENet(nn.Flatten(), block, nn.Linear(4, 3))
    copy = fixed_step_copy(model, "rk4", 0.25)
    assert copy.block.method == "rk4" and copy.block.options == {"step_size": 0.25}
    assert model.block.method == "dopri5"
    assert torch.equal(copy.decoder.weight, model.decoder.weight)
    x = torch.rand(3, 1, 2, 2)
    assert torch.allclose(copy(x), model(x), atol=1e-4)
    with pytest.raises(ValueError, match="ODEBlock"):
        fixed_step_copy(linear_classifier())
