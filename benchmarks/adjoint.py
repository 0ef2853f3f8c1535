"""Time and memory of nodekit's adjoint against torchdiffeq.odeint_adjoint.

    python benchmarks/adjoint.py [--quick] [--threads N] [--skip-memory]

Time: a forward and backward pass (loss = mean of the squared final state, float32, t in [0, 1])
through two fields, with both libraries' adjoints at the same settings:

* ``mlp``:  32-dim state, 32 -> 64 -> 64 -> 32 tanh MLP (nodekit.fields.MLPField), batch 128;
* ``conv``: 16 x 14 x 14 state, the book's ConvField (GroupNorm, ReLU, time-aware 3x3 convs), batch 16.

Cases: rk4 with 20 fixed steps (torchdiffeq's rk4 is the 3/8 rule, also 4 evaluations per
step), dopri5 at rtol = atol = 1e-5 forwards and backwards, and ``dopri5-sum``: the conv field
with the loss summed instead of averaged, so the adjoint is 50,000 times larger and the backward
error control has real work to do. The table gives the median time, the ratio nodekit /
torchdiffeq (< 1: nodekit faster), forward and backward NFE (field evaluations counted by a
wrapper; each backward evaluation is one f and one vector-Jacobian product), and each library's
relative gradient error ``|g - g_ref| / |g_ref|`` against a float64 reference: torchdiffeq's
adjoint at rtol = atol = 1e-8.

Memory: peak RSS of one forward and backward pass of the conv field (batch 8, Euler steps over
[0, 1]) in a fresh process per point (nodekit.measure.memory), for 10, 100 and 1000 steps: backprop
through nodekit's solver, nodekit's adjoint, torchdiffeq's adjoint.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable

import torch
import torchdiffeq
from solvers import Counted, time_alternating  # benchmarks/solvers.py
from torch import Tensor, nn

import nodekit
from nodekit.measure.memory import peak_memory
from nodekit.fields import ConvField, MLPField

T = torch.tensor([0.0, 1.0])
CASES: dict[str, dict] = {
    "rk4": dict(method="rk4", options={"step_size": 0.05}),
    "dopri5": dict(method="dopri5", rtol=1e-5, atol=1e-5),
    "dopri5-sum": dict(method="dopri5", rtol=1e-5, atol=1e-5),
}
MEMORY_STEPS = (10, 100, 1000)
MEMORY_ROUTES = {"backprop": "backprop (nodekit)", "adjoint": "adjoint (nodekit)", "torchdiffeq": "adjoint (torchdiffeq)"}


def problems() -> dict[str, tuple[nn.Module, Tensor]]:
    torch.manual_seed(0)
    return {
        "mlp": (MLPField(32, hidden=64, layers=2), torch.randn(128, 32)),
        "conv": (ConvField(16), torch.randn(16, 16, 14, 14)),
    }


def mean_loss(ys: Tensor) -> Tensor:
    return ys[-1].square().mean()


def sum_loss(ys: Tensor) -> Tensor:
    return ys[-1].square().sum()


def gradient(odeint: Callable, field: nn.Module, y0: Tensor, loss: Callable, **kw) -> Tensor:
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss(odeint(field, y0, T.to(y0), **kw)), list(field.parameters()))])


def reference_gradient(field: nn.Module, y0: Tensor) -> Tensor:
    """Gradient of :func:`mean_loss` (that of :func:`sum_loss` is ``y0.numel()`` times it)."""
    field64 = copy.deepcopy(field).double()
    return gradient(torchdiffeq.odeint_adjoint, field64, y0.double(), mean_loss, rtol=1e-8, atol=1e-8).float()


def nfe_and_gradient(odeint: Callable, field: nn.Module, y0: Tensor, loss: Callable, case: dict) -> tuple[int, int, Tensor]:
    counted = Counted(field)
    ys = odeint(counted, y0, T, **case)
    forward = counted.nfe
    grads = torch.autograd.grad(loss(ys), list(field.parameters()))
    return forward, counted.nfe - forward, torch.cat([g.reshape(-1) for g in grads])


def pass_of(odeint: Callable, field: nn.Module, y0: Tensor, loss: Callable, case: dict) -> Callable[[], None]:
    def go() -> None:
        field.zero_grad(set_to_none=True)
        loss(odeint(field, y0, T, **case)).backward()

    return go


def time_table(budget: float, min_repeats: int, max_repeats: int) -> list[float]:
    header = (
        f"{'problem':<7} {'case':<10} {'nodekit ms':>10} {'tdq ms':>9} {'ratio':>6} {'(min)':>6} "
        f"{'NFE nk fwd+bwd':>15} {'NFE tdq fwd+bwd':>16} {'err nk':>8} {'err tdq':>8} {'n':>3}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for name, (field, y0) in problems().items():
        mean_ref = reference_gradient(field, y0)
        for cname, case in CASES.items():
            if cname == "dopri5-sum" and name != "conv":
                continue
            loss, ref = (sum_loss, mean_ref * y0.numel()) if cname == "dopri5-sum" else (mean_loss, mean_ref)
            rows = {}
            for lib, odeint in (("nk", nodekit.odeint_adjoint), ("tdq", torchdiffeq.odeint_adjoint)):
                fwd, bwd, g = nfe_and_gradient(odeint, field, y0, loss, case)
                rows[lib] = (fwd, bwd, ((g - ref).norm() / ref.norm()).item())
            medians, mins, n = time_alternating(
                [pass_of(nodekit.odeint_adjoint, field, y0, loss, case), pass_of(torchdiffeq.odeint_adjoint, field, y0, loss, case)],
                budget, min_repeats, max_repeats,
            )
            ratio = medians[0] / medians[1]
            ratios.append(ratio)
            nk, td = rows["nk"], rows["tdq"]
            print(
                f"{name:<7} {cname:<10} {1e3 * medians[0]:>10.1f} {1e3 * medians[1]:>9.1f} {ratio:>6.2f} "
                f"{mins[0] / mins[1]:>6.2f} {f'{nk[0]}+{nk[1]}':>15} {f'{td[0]}+{td[1]}':>16} "
                f"{nk[2]:>8.1e} {td[2]:>8.1e} {n:>3d}",
                flush=True,
            )
    print("-" * len(header))
    return ratios


def memory_table() -> None:
    print("\nPeak memory of one forward + backward pass (conv field, batch 8, Euler), MiB above the baseline:")
    header = f"{'route':<22}" + "".join(f"{f'{s} steps':>12}" for s in MEMORY_STEPS) + f"{'1000/10':>9}"
    print(header)
    print("-" * len(header))
    extra: dict[str, list[float]] = {}
    for route, label in MEMORY_ROUTES.items():
        extra[route] = [
            peak_memory("nodekit.measure.gradients:memory_workload", route=route, steps=s, batch=8).extra_mb for s in MEMORY_STEPS
        ]
        cells = "".join(f"{mb:>12.1f}" for mb in extra[route])
        print(f"{label:<22}{cells}{extra[route][-1] / extra[route][0]:>9.2f}", flush=True)
    print("-" * len(header))
    ratio = [a / b for a, b in zip(extra["adjoint"], extra["torchdiffeq"])]
    print("memory ratio nodekit adjoint / torchdiffeq adjoint: " + ", ".join(f"{r:.2f}" for r in ratio))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: as is)")
    parser.add_argument("--skip-memory", action="store_true", help="only the time table")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    budget, min_repeats, max_repeats = (1.0, 3, 9) if args.quick else (3.0, 5, 31)
    print(
        f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, threads {torch.get_num_threads()}, "
        "float32, t in [0, 1]; forward + backward pass; median of n repeats, libraries alternating"
    )
    ratios = time_table(budget, min_repeats, max_repeats)
    geo = torch.tensor(ratios).log().mean().exp().item()
    print(
        f"ratio = nodekit / torchdiffeq median time (< 1: nodekit faster), geometric mean {geo:.2f}; (min): the same "
        "for the fastest repeat.\nerr = |g - g_ref| / |g_ref| for the parameter gradient, g_ref from torchdiffeq's "
        "adjoint in float64 at rtol = atol = 1e-8."
    )
    if not args.skip_memory:
        memory_table()


if __name__ == "__main__":
    main(sys.argv[1:])
