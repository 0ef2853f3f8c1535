"""Time nodekit's solvers against torchdiffeq on the same problems.

    python benchmarks/solvers.py [--quick] [--threads N]

Two vector fields, float32, integrated over t in [0, 1]:

* ``mlp``:  32-dim state, 32 -> 64 -> 64 -> 32 tanh MLP, batch 128;
* ``conv``: 16 x 28 x 28 state, conv3x3 -> GroupNorm -> ReLU -> conv3x3 -> GroupNorm, batch 32.

Each field is solved with rk4 (20 fixed steps; torchdiffeq's "rk4" is the 3/8 rule, also four
evaluations per step) and with dopri5 (rtol = atol = 1e-5). For every case the table gives the
median time of a forward solve under ``torch.no_grad()`` and of a forward + backward pass
(``ys.sum().backward()``), the ratio nodekit / torchdiffeq (< 1: nodekit faster; also for the
fastest repeat), the NFE of each library, the largest difference between the two libraries'
outputs and each one's error against a float64 reference, and the solver's overhead over the
bare field: solve time / time of the same number of field evaluations alone.

The libraries are timed alternately (the order flips every repeat) after warm-up runs, with
``time.perf_counter``; the thread count is left as torch sets it unless ``--threads`` is given.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchdiffeq
from torch import Tensor, nn

import nodekit


class MLPField(nn.Module):
    def __init__(self, dim: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, dim)
        )

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.net(y)


class ConvField(nn.Module):
    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(4, channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(4, channels),
        )

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.net(y)


@dataclass
class Problem:
    name: str
    field: nn.Module
    y0: Tensor


def problems() -> list[Problem]:
    torch.manual_seed(0)
    return [
        Problem("mlp", MLPField(), torch.randn(128, 32)),
        Problem("conv", ConvField(), torch.randn(32, 16, 28, 28)),
    ]


T = torch.tensor([0.0, 1.0])
CASES = {
    "rk4": dict(method="rk4", options={"step_size": 0.05}),
    "dopri5": dict(method="dopri5", rtol=1e-5, atol=1e-5),
}


class Counted(nn.Module):
    """Counts the evaluations of a field (used once per case, outside the timed runs)."""

    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field, self.nfe = field, 0

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return self.field(t, y)


def run_nodekit(field: nn.Module, y0: Tensor, case: dict) -> Tensor:
    return nodekit.odeint(field, y0, T, **case)


def run_torchdiffeq(field: nn.Module, y0: Tensor, case: dict) -> Tensor:
    return torchdiffeq.odeint(field, y0, T, **case)


def reference(field: nn.Module, y0: Tensor) -> Tensor:
    """The solution at ``T`` to about 1e-8 (far below the errors compared): torchdiffeq's
    dopri5 in float64."""
    field64 = copy.deepcopy(field).double()
    with torch.no_grad():
        return torchdiffeq.odeint(field64, y0.double(), T.double(), rtol=1e-8, atol=1e-8)


def forward_only(run: Callable, field: nn.Module, y0: Tensor, case: dict) -> Callable[[], None]:
    def go() -> None:
        with torch.no_grad():
            run(field, y0, case)

    return go


def forward_backward(run: Callable, field: nn.Module, y0: Tensor, case: dict) -> Callable[[], None]:
    def go() -> None:
        field.zero_grad(set_to_none=True)
        run(field, y0, case).sum().backward()

    return go


def bare_forward(field: nn.Module, y0: Tensor, nfe: int) -> Callable[[], None]:
    t = T[0]

    def go() -> None:
        with torch.no_grad():
            for _ in range(nfe):
                field(t, y0)

    return go


def bare_forward_backward(field: nn.Module, y0: Tensor, nfe: int) -> Callable[[], None]:
    t = T[0]

    def go() -> None:
        field.zero_grad(set_to_none=True)
        total = sum(field(t, y0).sum() for _ in range(nfe))
        total.backward()

    return go


def time_alternating(
    fns: list[Callable[[], None]], budget: float, min_repeats: int, max_repeats: int
) -> tuple[list[float], list[float], int]:
    """Median and minimum seconds of each function over alternating repeats (the order flips
    every repeat), and the number of repeats.

    One warm-up call each also estimates the cost, so that cheap cases get more repeats
    (at most ``max_repeats``) within about ``budget`` seconds, and every case gets at least
    ``min_repeats``.
    """
    start = time.perf_counter()
    for fn in fns:
        fn()
    per_round = time.perf_counter() - start
    repeats = max(min_repeats, min(max_repeats, int(budget / max(per_round, 1e-9))))
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(ts) for ts in times], [min(ts) for ts in times], repeats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: as is)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # Seconds per table row (4 timed functions), and the least and most repeats per row.
    budget, min_repeats, max_repeats = (1.0, 3, 15) if args.quick else (2.0, 5, 41)

    print(
        f"torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, threads {torch.get_num_threads()}, "
        "float32, t in [0, 1]; median of n repeats, libraries alternating"
    )
    header = (
        f"{'problem':<7} {'method':<7} {'mode':<8} {'nodekit ms':>10} {'tdq ms':>9} {'ratio':>6} {'(min)':>6} "
        f"{'NFE nk':>6} {'NFE tdq':>7} {'|nk-tdq|':>8} {'err nk':>8} {'err tdq':>8} {'ovh nk':>6} {'ovh tdq':>7} "
        f"{'n':>3}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for prob in problems():
        field, y0 = prob.field, prob.y0
        exact = reference(field, y0)
        for cname, case in CASES.items():
            # NFE and outputs, once, outside the timed runs.
            counted = Counted(field)
            with torch.no_grad():
                y_nk = run_nodekit(counted, y0, case)
                nfe_nk, counted.nfe = counted.nfe, 0
                y_td = run_torchdiffeq(counted, y0, case)
                nfe_td = counted.nfe
            diff = (y_nk - y_td).abs().max().item()
            err_nk, err_td = ((y - exact).abs().max().item() for y in (y_nk, y_td))
            for mode, make, bare in (
                ("fwd", forward_only, bare_forward),
                ("fwd+bwd", forward_backward, bare_forward_backward),
            ):
                medians, mins, n = time_alternating(
                    [
                        make(run_nodekit, field, y0, case),
                        make(run_torchdiffeq, field, y0, case),
                        bare(field, y0, nfe_nk),
                        bare(field, y0, nfe_td),
                    ],
                    budget,
                    min_repeats,
                    max_repeats,
                )
                t_nk, t_td, t_bare_nk, t_bare_td = medians
                ratio, ratio_min = t_nk / t_td, mins[0] / mins[1]
                ratios.append(ratio)
                print(
                    f"{prob.name:<7} {cname:<7} {mode:<8} {1e3 * t_nk:>10.2f} {1e3 * t_td:>9.2f} {ratio:>6.2f} "
                    f"{ratio_min:>6.2f} {nfe_nk:>6d} {nfe_td:>7d} {diff:>8.1e} {err_nk:>8.1e} {err_td:>8.1e} "
                    f"{t_nk / t_bare_nk:>6.2f} {t_td / t_bare_td:>7.2f} {n:>3d}",
                    flush=True,
                )
    print("-" * len(header))
    geo = torch.tensor(ratios).log().mean().exp().item()
    print(
        f"ratio = nodekit / torchdiffeq median time (< 1: nodekit faster), geometric mean {geo:.2f}; (min): the "
        "same for the fastest repeat, less sensitive to other load on the machine.\n"
        "|nk-tdq| = max difference of the two outputs; err = max error against float64 dopri5 at 1e-8.\n"
        "ovh = median solve time / median time of the same NFE bare field evaluations "
        "(fwd: forward only; fwd+bwd: forward and backward). n = repeats."
    )


if __name__ == "__main__":
    main(sys.argv[1:])
