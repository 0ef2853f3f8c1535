"""Execution profiles: ``quick`` (2-core CPU, minutes) and ``full`` (paper scale, GPU)."""

from __future__ import annotations

from typing import TypeVar

PROFILES: dict[str, str] = {
    "quick": "a 2-core CPU in minutes per chapter: MNIST 5k subset, few epochs, few seeds",
    "full": "paper scale on a GPU: full data sets, the papers' epochs, 3-5 seeds",
}
"""The known profiles and what each one runs."""

T = TypeVar("T")


class UnknownProfileError(ValueError):
    """Raised for a profile name that is not in :data:`PROFILES`."""


def check_profile(profile: str) -> str:
    """Return ``profile`` if known, else raise an error listing the known profiles."""
    if profile not in PROFILES:
        known = "\n".join(f"  {name:6s} {what}" for name, what in PROFILES.items())
        raise UnknownProfileError(
            f"unknown profile {profile!r}; choose one of:\n{known}\n"
            f"e.g. `make book PROFILE=quick` or papermill `-p profile quick`."
        )
    return profile


def select(profile: str, **settings: T) -> T:
    """Pick the settings of ``profile`` from keyword arguments named after the profiles.

    >>> select("quick", quick=dict(epochs=2), full=dict(epochs=100))
    {'epochs': 2}
    """
    check_profile(profile)
    missing = sorted(set(PROFILES) - set(settings))
    unknown = sorted(set(settings) - set(PROFILES))
    if missing or unknown:
        raise ValueError(
            f"select() needs one setting per profile {sorted(PROFILES)}; "
            f"missing {missing}, unknown {unknown}"
        )
    return settings[profile]
