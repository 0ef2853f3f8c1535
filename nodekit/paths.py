"""Where nodekit keeps files: the repository checkout, the model cache and the data root.

Run from a checkout of the book (an editable install), the cache and data live in the
repository (``<repo>/_build/cache``, ``<repo>/data``). Installed as a plain package, nodekit has
no repository: they go to the user's cache folder (``$XDG_CACHE_HOME/nodekit`` or
``~/.cache/nodekit``), never inside site-packages. ``$NODEKIT_CACHE`` and ``$NODEKIT_DATA``
override both, read at call time.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_dir", "repo_root", "user_cache_root"]

_PACKAGE = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """The book's checkout holding this nodekit, or None when nodekit is installed as a package."""
    candidate = _PACKAGE.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "_toc.yml").is_file():
        return candidate
    return None


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/nodekit`` (default ``~/.cache/nodekit``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nodekit"


def cache_dir() -> Path:
    """Trained models: ``$NODEKIT_CACHE``, else ``<repo>/_build/cache``, else the user cache's ``models``."""
    env = os.environ.get("NODEKIT_CACHE")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    return root / "_build" / "cache" if root is not None else user_cache_root() / "models"


def data_dir() -> Path:
    """The data root: ``$NODEKIT_DATA``, else ``<repo>/data``, else the user cache's ``data``."""
    env = os.environ.get("NODEKIT_DATA")
    if env:
        return Path(env).expanduser()
    root = repo_root()
    return root / "data" if root is not None else user_cache_root() / "data"
