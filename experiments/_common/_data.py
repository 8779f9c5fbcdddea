"""Whole datasets as on-device arrays, with a validation split carved from train."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from experiments._common._cli import UsageError
from jax231 import pipelines

from experiments._common._registry import dataset_name, dataset_registry

Arrays = dict[str, Any]
"""``{'image': float32 (N, ...), 'label': int32 (N,)}``."""


class Splits(NamedTuple):
    """Train / val / test arrays of one dataset.

    Attributes:
      train: training examples (train split minus the last ``val_size``).
      val: the last ``val_size`` examples of the train split (used for early stopping,
        time-to-target and model selection).
      test: the dataset's test split (reported only).
      num_classes: number of labels.
      input_shape: shape of one example, without the batch axis (e.g. ``(40, 1)``).
    """

    train: Arrays
    val: Arrays
    test: Arrays
    num_classes: int
    input_shape: tuple[int, ...]


def take(arrays: Arrays, count: int | None) -> Arrays:
    """The first ``count`` examples of every array (all of them when ``count`` is None)."""
    if count is None:
        return arrays
    return {k: v[:count] for k, v in arrays.items()}


def load_splits(
    name: str,
    *,
    val_size: int,
    train_size: int | None = None,
    test_size: int | None = None,
    data_dir: str | None = None,
    extra_datasets: tuple[str, ...] = (),
) -> Splits:
    """Loads ``name`` through :func:`jax231.pipelines.load_arrays` and carves a val split.

    Args:
      name: dataset name (see :data:`experiments._common.DATASET_NAMES`), or an open-ended
        ``tfds:<name>`` / ``npz:<path>`` / ``imagefolder:<path>``.
      val_size: number of examples taken from the *end* of the train split as val.
      train_size: keep only the first ``train_size`` training examples (None: all).
      test_size: keep only the first ``test_size`` test examples (None: all).
      data_dir: passed to the pipelines loader.
      extra_datasets: further accepted names (e.g. mocked TFDS names in tests).

    Raises:
      UsageError: unknown dataset, or a val split as large as the train split.
    """
    registry = dataset_registry(extra=extra_datasets)
    full = {k: np.asarray(v) for k, v in registry.get(name, split="train", data_dir=data_dir).items()}
    test = {k: np.asarray(v) for k, v in registry.get(name, split="test", data_dir=data_dir).items()}
    num_train = len(full["label"])
    if not 0 < val_size < num_train:
        raise UsageError(
            f"--config.val_size: expected 0 < val_size < {num_train} (train size of {name}); got {val_size}"
        )
    train = {k: v[: num_train - val_size] for k, v in full.items()}
    val = {k: v[num_train - val_size :] for k, v in full.items()}
    num_classes = int(pipelines.info(dataset_name(name)).num_classes)
    return Splits(
        train=take(train, train_size),
        val=val,
        test=take(test, test_size),
        num_classes=num_classes,
        input_shape=tuple(full["image"].shape[1:]),
    )
