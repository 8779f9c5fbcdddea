"""Where ``load_arrays('cifar10_shared')`` looks for the CIFAR-10 JPEG archive, and in which order."""

from __future__ import annotations

import pathlib
import re

import pytest

from jax231 import pipelines
from jax231.pipelines import _common

NAME = pathlib.Path("shared") / "datasets" / "cifar10-jpeg.tar.gz"


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A fake checkout ``<tmp>/repo`` with no archive anywhere and no override."""
    monkeypatch.delenv("JAX231_CIFAR10_ARCHIVE", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    return repo


def _touch(path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_beside_the_checkout_comes_first(checkout):
    inside, beside = _touch(checkout / NAME), _touch(checkout.parent / NAME)
    assert _common.shared_archive(checkout) == beside
    beside.unlink()
    assert _common.shared_archive(checkout) == inside


def test_the_copy_inside_the_checkout_is_found_alone(checkout):
    inside = _touch(checkout / NAME)
    assert _common.shared_archive(checkout) == inside


def test_environment_override_wins_even_when_absent(checkout, monkeypatch, tmp_path):
    _touch(checkout / NAME), _touch(checkout.parent / NAME)
    monkeypatch.setenv("JAX231_CIFAR10_ARCHIVE", str(tmp_path / "elsewhere.tar.gz"))
    assert _common.shared_archive_candidates(checkout) == [tmp_path / "elsewhere.tar.gz"]
    assert _common.shared_archive(checkout) == tmp_path / "elsewhere.tar.gz"


def test_nothing_found_names_both_places(checkout):
    assert _common.shared_archive_candidates(checkout) == [checkout.parent / NAME, checkout / NAME]
    assert _common.shared_archive(checkout) == checkout.parent / NAME


def test_missing_archive_error_lists_every_candidate(tmp_path, monkeypatch):
    monkeypatch.delenv("JAX231_CIFAR10_ARCHIVE", raising=False)
    monkeypatch.setattr(_common, "_REPO_ROOT", tmp_path / "repo")
    beside, inside = (str(p) for p in (tmp_path / NAME, tmp_path / "repo" / NAME))
    with pytest.raises(FileNotFoundError, match=f"{re.escape(beside)} or {re.escape(inside)}"):
        pipelines.load_arrays("cifar10_shared", "test", data_dir=str(tmp_path / "cache"))
