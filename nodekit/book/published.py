"""Every number the book takes from the literature, with its source, in one place.

Each table is a :class:`PublishedTable`: where it comes from (the paper and table, and the seed
document that quotes it), its columns, and one row per model, values exactly as published
(strings where the paper gives ``mean ± std`` or a complexity). Chapters put them beside their
measurements; the reproduction scoreboard lists them all (:data:`TABLES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHEN_MNIST", "CROCE_SODEF", "DUPONT_MNIST", "END_TIME_NFE", "END_TIME_TABLE", "HUANG_SONET", "KANG_TABLE6",
    "PublishedTable", "ROBUSTBENCH_SODEF", "SODEF_SEED_MNIST", "TABLES", "YAN_OTHER_DATA", "YAN_TABLE1",
    "YAN_TABLE2", "YAN_TABLE3",
]


@dataclass(frozen=True)
class PublishedTable:
    """A published table: ``source`` (paper, table; the seed document quoting it), ``cite`` (the
    bibliography key), ``columns`` and ``rows`` (model → one value per column)."""

    source: str
    cite: str
    columns: tuple[str, ...]
    rows: dict[str, tuple[Any, ...]]

    def __post_init__(self) -> None:
        for name, values in self.rows.items():
            if len(values) != len(self.columns):
                raise ValueError(f"{self.source}: row {name!r} has {len(values)} values for {len(self.columns)} columns")

    def __getitem__(self, row: str) -> dict[str, Any]:
        """The row ``row`` as ``{column: value}``."""
        return dict(zip(self.columns, self.rows[row]))

    def values(self, row: str) -> list[Any]:
        """The row's values, in column order."""
        return list(self.rows[row])


CHEN_MNIST = PublishedTable(
    source="Chen et al. (2018), Table 1 (MNIST), as quoted in Lopatin's notes (seed 004)",
    cite="chen2018neural",
    columns=("test_error", "params", "memory", "time"),
    rows={
        "1-Layer MLP": (1.60, 0.24e6, "–", "–"),
        "ResNet": (0.41, 0.60e6, "O(L)", "O(L)"),
        "RK-Net": (0.47, 0.22e6, "O(L̃)", "O(L̃)"),
        "ODE-Net": (0.42, 0.22e6, "O(1)", "O(L̃)"),
    },
)
"""Chen et al. (2018), Table 1: MNIST test error %, parameters, memory and time of four classifiers."""

YAN_TABLE1 = PublishedTable(
    source="Yan et al. (2020), Table 1 (MNIST, natural training), accuracy %, as quoted in seed 000",
    cite="yan2020robustness",
    columns=("clean", "σ=50", "σ=75", "σ=100", "FGSM-0.15", "FGSM-0.3", "FGSM-0.5"),
    rows={
        "CNN": ("–", "98.1 ± 0.7", "85.8 ± 4.3", "56.4 ± 5.6", "63.4 ± 2.3", "24.0 ± 8.9", "8.3 ± 3.2"),
        "ODENet": ("–", "98.7 ± 0.6", "90.6 ± 5.4", "73.2 ± 8.6", "83.5 ± 0.9", "42.1 ± 2.4", "14.3 ± 2.1"),
    },
)
"""Yan et al. (2020), Table 1 (MNIST, natural training), accuracy %."""

YAN_OTHER_DATA = PublishedTable(
    source="Yan et al. (2020), Table 1, SVHN and ImgNet10 rows (means; the paper gives ± 0.5 to 3.9), seed 000",
    cite="yan2020robustness",
    columns=("σ (3 levels)", "FGSM (3 radii)", "published: Gaussian", "published: FGSM"),
    rows={
        "SVHN CNN": ("15 / 25 / 35", "3/255, 5/255, 8/255", "90.0 / 76.3 / 60.9", "29.2 / 13.7 / 5.4"),
        "SVHN ODENet": ("15 / 25 / 35", "3/255, 5/255, 8/255", "95.7 / 88.1 / 78.2", "58.2 / 43.0 / 30.9"),
        "ImgNet10 CNN": ("10 / 15 / 25", "5/255, 8/255, 16/255", "80.1 / 63.3 / 40.8", "28.5 / 18.1 / 9.4"),
        "ImgNet10 ODENet": ("10 / 15 / 25", "5/255, 8/255, 16/255", "81.9 / 67.5 / 48.7", "36.2 / 27.2 / 14.4"),
    },
)
"""Yan et al. (2020), Table 1, SVHN and ImgNet10 rows (means; the paper gives ± 0.5 to 3.9), seed 000."""

YAN_TABLE2 = PublishedTable(
    source="Yan et al. (2020), Table 2 (MNIST, Gaussian augmentation), accuracy %, seed 000",
    cite="yan2020robustness",
    columns=("clean", "σ=100", "FGSM-0.3", "FGSM-0.5", "PGD-0.2", "PGD-0.3"),
    rows={
        "CNN": ("–", "98.7 ± 0.1", "54.2 ± 1.1", "15.8 ± 1.3", "32.9 ± 3.7", "0.0 ± 0.0"),
        "ODENet": ("–", "99.4 ± 0.1", "71.5 ± 1.1", "19.9 ± 1.2", "64.7 ± 1.8", "13.0 ± 0.2"),
    },
)
"""Yan et al. (2020), Table 2 (MNIST, Gaussian augmentation), accuracy %, seed 000."""

YAN_TABLE3 = PublishedTable(
    source="Yan et al. (2020), Table 3 (MNIST, adversarial training with FGSM-0.3), accuracy %, seed 000",
    cite="yan2020robustness",
    columns=("clean", "σ=100", "FGSM-0.3", "FGSM-0.5", "PGD-0.3"),
    rows={
        "CNN": ("–", "58.0", "98.4", "21.1", "5.3"),
        "ODENet": ("–", "84.2", "99.1", "36.0", "12.3"),
        "TisODE": ("–", "87.9", "99.1", "66.5", "78.9"),
    },
)
"""Yan et al. (2020), Table 3 (MNIST, adversarial training with FGSM-0.3), accuracy %, seed 000."""

DUPONT_MNIST = PublishedTable(
    source="Dupont et al. (2019), Table 1 (MNIST test accuracy, mean ± std over 5 runs)",
    cite="dupont2019augmented",
    columns=("test_accuracy",),
    rows={"NODE": ("96.4 ± 0.5 %",), "ANODE": ("98.2 ± 0.1 %",)},
)
"""Dupont et al. (2019), Table 1: MNIST test accuracy of the NODE and the ANODE."""



# --------------------------------------------------------------------------------------------- #
# End time, adversarial training and steady states (chapter 7)
# --------------------------------------------------------------------------------------------- #

END_TIME_TABLE = PublishedTable(
    source="rajatvd (2019), the end-time table of the blog post (seed 001): MNIST test accuracy %, "
           "(clean, FGSM-0.3) at test end time t; time-invariant 4-conv field, dopri5 rtol = atol = 1e-3",
    cite="rajatvd2019neural",
    columns=("t=1", "t=10", "t=100", "t=500"),
    rows={
        "small, T=10": ((49.45, 0.0), (98.64, 9.34), (26.35, 12.83), (9.94, 8.09)),
        "small, T=10-100": ((61.54, 0.0), (98.46, 0.52), (98.31, 23.64), (94.35, 11.67)),
        "small, T=100": ((37.58, 0.0), (66.43, 0.0), (98.52, 13.25), (72.16, 14.16)),
        "large, T=10": ((97.06, 0.18), (98.93, 30.76), (91.43, 28.20), (9.35, 8.57)),
        "large, T=10-100": ((72.84, 0.15), (99.08, 70.67), (99.11, 85.98), (94.66, 62.29)),
        "large, T=100": ((78.88, 0.59), (98.85, 83.13), (99.01, 92.62), (96.68, 78.60)),
    },
)
"""Rows: network ("small" ≈ 17k, "large" ≈ 655k parameters) and training end time T (10-100: random
per call); each value is (clean, FGSM-0.3) accuracy % as published."""

END_TIME_NFE = PublishedTable(
    source="rajatvd (2019), seed 001: forward NFE at training end time 1, natural vs adversarial training",
    cite="rajatvd2019neural",
    columns=("NFE",),
    rows={"natural, T=1": ("20-30",), "adversarial, T=1": ("in the 100s",)},
)
"""rajatvd (2019): forward NFE at training end time 1, natural vs adversarial training."""


# SODEF and its audits (chapter 8)
# --------------------------------------------------------------------------------------------- #

SODEF_SEED_MNIST = PublishedTable(
    source="seed 003, section 7 (SODEF_p on MNIST, T = 10, L2 PGD and gradient-free SPSA at ε = 0.5), accuracy %",
    cite="kang2021stable",
    columns=("clean", "PGD", "SPSA"),
    rows={"SODEF (p = 1)": ("96.2", "45.2", "40.5"), "SODEF (p = 0.99)": ("97.0", "46.0", "40.1"),
          "SODEF (p = 0.9)": ("98.5", "51.2", "49.4"), "SODEF (p = 0.75)": ("89.1", "30.0", "35.8")},
)
"""Seed 003, section 7: SODEF_p on MNIST (p the keep probability of the dropout diffusion (8);
p = 1 is SODEF), clean / L2 PGD / SPSA at ε = 0.5 (the text names SimBA, "SGSA [4]", the table SPSA)."""

KANG_TABLE6 = PublishedTable(
    source="Kang et al. (2021), Table 6 (MNIST, T = 5, L∞ attacks), accuracy %",
    cite="kang2021stable",
    columns=("clean", "FGSM-0.3", "PGD-0.3"),
    rows={
        "no ODE": ("99.45", "10.03", "0.31"),
        "ODE": ("99.42", "29.6", "1.56"),
        "TisODE": ("99.43", "36.70", "1.82"),
        "SODEF": ("99.44", "63.36", "45.25"),
    },
)
"""Kang et al. (2021), Table 6: MNIST clean / FGSM-0.3 / PGD-0.3 of no ODE, ODE, TisODE and SODEF."""

ROBUSTBENCH_SODEF = PublishedTable(
    source="RobustBench, CIFAR-10 L∞ ε = 8/255 leaderboard, accuracy %",
    cite="croce2021robustbench",
    columns=("AutoAttack (reported)", "best known"),
    rows={
        "SODEF on Rebuffi2021 (flagged unreliable)": ("71.28", "64.20"),
        "Rebuffi2021, the base model without SODEF": ("66.56", "–"),
    },
)
"""RobustBench, CIFAR-10 L∞ 8/255: SODEF on Rebuffi2021, reported vs best known, and the base model."""

CROCE_SODEF = PublishedTable(
    source="Croce et al. (2022), SODEF on CIFAR-10 (AutoAttack + transfer APGD from the base + feature-space APGD, "
           "the same 1,000 points), accuracy %",
    cite="croce2022evaluating",
    columns=("SODEF", "base without SODEF"),
    rows={"worst case of the adaptive attacks": ("64.1–64.2", "65.0")},
)
"""Croce et al. (2022): SODEF vs its base model under their adaptive attacks (CIFAR-10)."""

HUANG_SONET = PublishedTable(
    source="Huang et al. (2022), SONet on CIFAR-10, accuracy % (conclusion: the robustness of adaptive solvers "
           "'mainly comes from the obfuscated gradients')",
    cite="huang2022adversarial",
    columns=("PGD-20", "PGD-1000"),
    rows={"SONet": ("61.62", "24.25")},
)
"""Huang et al. (2022): SONet on CIFAR-10 under PGD-20 and PGD-1000."""


TABLES: dict[str, PublishedTable] = {
    "chen-mnist": CHEN_MNIST,
    "yan-table1": YAN_TABLE1,
    "yan-other-data": YAN_OTHER_DATA,
    "yan-table2": YAN_TABLE2,
    "yan-table3": YAN_TABLE3,
    "dupont-mnist": DUPONT_MNIST,
    "end-time": END_TIME_TABLE,
    "end-time-nfe": END_TIME_NFE,
    "sodef-seed-mnist": SODEF_SEED_MNIST,
    "kang-table6": KANG_TABLE6,
    "robustbench-sodef": ROBUSTBENCH_SODEF,
    "croce-sodef": CROCE_SODEF,
    "huang-sonet": HUANG_SONET,
}
"""Every published table, by a short name (for the scoreboard)."""
