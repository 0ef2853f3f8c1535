"""nodekit.measure.memory: peak memory in a fresh process, adjoint vs backprop, training steps."""

from __future__ import annotations

import subprocess

import torch

from nodekit.measure.memory import peak_memory, training_step_memory
from nodekit.models import (
    mnist_model,
)


def test_training_step_memory_adjoint_needs_less_than_backprop() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    rk = mnist_model("RK-Net", 8, tol=1e-4)
    ode = mnist_model("ODE-Net", 8, tol=1e-4)
    ode.load_state_dict(rk.state_dict())
    mib = {name: training_step_memory(name, m, 8, 1e-4, x, y) for name, m in (("RK-Net", rk), ("ODE-Net", ode))}
    assert mib["RK-Net"] > 1.5 * mib["ODE-Net"] > 0


def test_memory_child_runs_with_the_callers_thread_count(monkeypatch) -> None:
    seen: dict[str, str] = {}

    def fake_run(command, *, env, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(command, 0, '{"baseline_mb": 1.0, "peak_mb": 3.0, "seconds": 0.1}\n', "")

    monkeypatch.setattr("nodekit.measure.memory.subprocess.run", fake_run)
    result = peak_memory("nodekit.measure.gradients:memory_workload", route="adjoint", steps=10)
    assert result.extra_mb == 2.0
    assert seen["OMP_NUM_THREADS"] == seen["MKL_NUM_THREADS"] == str(torch.get_num_threads())


def test_adjoint_memory_is_flat_and_backprop_memory_grows() -> None:
    def extra(route: str, steps: int) -> float:
        return peak_memory("nodekit.measure.gradients:memory_workload", route=route, steps=steps, batch=4).extra_mb

    adjoint_10, adjoint_300 = extra("adjoint", 10), extra("adjoint", 300)
    backprop_10, backprop_300 = extra("backprop", 10), extra("backprop", 300)
    assert adjoint_300 <= 1.2 * adjoint_10 + 2.0
    # Backprop keeps ~10 activations of 4x16x14x14 floats (~0.5 MB) per Euler step.
    assert backprop_300 - backprop_10 >= 100



def test_saved_tensor_bytes_grows_with_the_steps_of_backprop_and_not_of_the_adjoint():
    from nodekit.fields import SineField
    from nodekit.measure.memory import saved_tensor_bytes
    from nodekit.models.sde import DropoutDiffusion, SDEBlock

    torch.manual_seed(0)
    field, z = SineField(8), torch.randn(16, 8, requires_grad=True)

    def saved(steps, **kw):
        block = SDEBlock(field, DropoutDiffusion(0.9), t1=1.0, dt=1.0 / steps, **kw)
        return saved_tensor_bytes(lambda: block(z))

    assert saved(40) > 3 * saved(10)
    adjoint = dict(adjoint=True, method="reversible_heun", sde_type="stratonovich")
    assert saved(40, **adjoint) <= 1.1 * saved(10, **adjoint)
    assert saved(40, **adjoint) < saved(40) / 10
    x = torch.randn(4, 4, requires_grad=True)
    assert saved_tensor_bytes(lambda: (x * x).sum()) == 4 * 4 * 4  # x saved once for the product
