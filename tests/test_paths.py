"""nodekit.paths: cache and data folders in a checkout, outside one, and under the environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodekit import paths


def test_in_a_checkout_the_folders_are_in_the_repository(monkeypatch):
    monkeypatch.delenv("NODEKIT_CACHE", raising=False)
    monkeypatch.delenv("NODEKIT_DATA", raising=False)
    root = Path(paths.__file__).resolve().parent.parent
    assert paths.repo_root() == root
    assert paths.cache_dir() == root / "_build" / "cache"
    assert paths.data_dir() == root / "data"


def test_environment_variables_win(monkeypatch, tmp_path):
    monkeypatch.setenv("NODEKIT_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("NODEKIT_DATA", str(tmp_path / "d"))
    assert paths.cache_dir() == tmp_path / "c" and paths.data_dir() == tmp_path / "d"


def test_installed_as_a_package_the_folders_go_to_the_user_cache(monkeypatch, tmp_path):
    """Installed non-editable, nodekit lives in site-packages: nothing may be written there."""
    site = tmp_path / "site-packages" / "nodekit"
    site.mkdir(parents=True)
    monkeypatch.setattr(paths, "_PACKAGE", site)
    monkeypatch.delenv("NODEKIT_CACHE", raising=False)
    monkeypatch.delenv("NODEKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.repo_root() is None
    assert paths.cache_dir() == tmp_path / "xdg" / "nodekit" / "models"
    assert paths.data_dir() == tmp_path / "xdg" / "nodekit" / "data"
    assert site not in paths.cache_dir().parents and site not in paths.data_dir().parents


@pytest.mark.parametrize("variable", ["NODEKIT_CACHE", "NODEKIT_DATA"])
def test_a_tilde_is_expanded(monkeypatch, variable):
    monkeypatch.setenv(variable, "~/somewhere")
    folder = paths.cache_dir() if variable == "NODEKIT_CACHE" else paths.data_dir()
    assert folder == Path.home() / "somewhere"
