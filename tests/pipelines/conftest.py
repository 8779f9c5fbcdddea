"""Fixtures of the pipeline tests: a private TFDS folder and small on-disk datasets."""

import os

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """A fresh TFDS data folder: the offline builders are generated into it once."""
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def ordered_npz(tmp_path_factory):
    """An ``npz`` whose image values equal their row index (so leaks are visible).

    ``x_train[i]`` is a 4x4x3 image filled with ``i`` (float32), 100 rows;
    ``x_test`` has 30 rows filled with ``1000 + i``; labels are ``i % 5``.
    """
    path = tmp_path_factory.mktemp("npz") / "ordered.npz"
    train = np.broadcast_to(np.arange(100, dtype=np.float32)[:, None, None, None], (100, 4, 4, 3))
    test = np.broadcast_to(1000 + np.arange(30, dtype=np.float32)[:, None, None, None], (30, 4, 4, 3))
    np.savez(path, x_train=train, y_train=np.arange(100) % 5, x_test=test, y_test=np.arange(30) % 5)
    return "npz:" + os.fspath(path)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """A tiny ``split/label/*.png`` folder: 3 classes, 7 train and 4 test images of 6x5 RGB."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 7), ("test", 4)):
        for i in range(count):
            label = ("cat", "dog", "emu")[i % 3]
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return os.fspath(root)
