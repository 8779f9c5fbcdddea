"""Whole splits in memory, without TensorFlow where the source allows it.

``load_arrays`` serves the on-device epoch path (``lax.scan`` over an epoch held
on the accelerator) and machines where TensorFlow is absent: every local
:class:`~jax231.pipelines._sources.Source` (mnist1d, digits, ``npz:`` files, image
folders, the shared CIFAR-10 copy) is read with NumPy, scikit-learn and PIL; only
TFDS names go through TensorFlow.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from jax231.pipelines import _common
from jax231.pipelines._sources import (  # noqa: F401  Re-exported for tests and callers.
    cifar10_shared_raw,
    decode_image,
    digits_raw,
    imagefolder_examples,
    imagefolder_split,
    mnist1d_raw,
    npz_raw,
    resolve_name,
    source,
    to_float,
)

__all__ = ["info", "load_arrays", "local_splits", "raw_split"]


def local_splits(name: str, data_dir: Optional[str] = None) -> Optional[dict[str, int]]:
    """Split sizes of a source read without TFDS, or ``None`` for a TFDS name."""
    src = source(name, data_dir=data_dir)
    return src.split_sizes() if src.local else None


def raw_split(name: str, split: str, data_dir: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole base split (no slicing) of a local source in its stored dtype."""
    src = source(name, data_dir=data_dir)
    if not src.local:
        raise ValueError(f"name: expected a local source, got {name!r}")
    return src.read(split)


def load_arrays(
    name: str,
    split: str,
    *,
    data_dir: Optional[str] = None,
    shard: Optional[tuple[int, int]] = None,
) -> dict[str, np.ndarray]:
    """Reads a whole split into memory: ``{'image': float32, 'label': int32}``.

    The same examples in the same order as ``load(name, split, shuffle=False)``;
    TFDS slicing (``'train[:90%]'``, ``'train[90%:]'``) and ``shard`` follow
    TFDS's rounding. ``uint8`` pixels are scaled to ``[0, 1]``.

    Works without TensorFlow for ``mnist1d``, ``digits``, ``cifar10_shared``,
    ``imagefolder:<path>`` and ``npz:<path>``; any other name is read through
    TFDS (``data_dir`` as in ``tfds.load``).

    Args:
      name: dataset name (see :func:`jax231.pipelines.load`).
      split: split, with optional TFDS slicing.
      data_dir: TFDS data folder, or the cache root for ``cifar10_shared``.
      shard: ``(process_index, process_count)`` for multi-host reading.

    Returns:
      ``{'image': (N, *image_shape) float32, 'label': (N,) int32}``.
    """
    src = source(name, data_dir=data_dir)
    if not src.local:
        from jax231.pipelines import _loader  # The one deferred import: TensorFlow.

        return _loader.tfds_arrays(src.name, split, data_dir=src.data_dir, shard=shard)
    base, indices = _common.split_indices(split, src.split_sizes(), shard)
    out = {key: value[indices] for key, value in src.arrays(base).items()}
    out["image"], out["label"] = to_float(out["image"]), out["label"].astype(np.int32)
    return out


def info(name: str, *, data_dir: Optional[str] = None) -> _common.DatasetInfo:
    """Number of classes, image shape, split sizes and class names of a dataset.

    Reads metadata only for TFDS names (no download); local sources are read.
    """
    src = source(name, data_dir=data_dir)
    if not src.local:
        from jax231.pipelines import _loader  # The one deferred import: TensorFlow.

        return _loader.tfds_info(src.name, data_dir=src.data_dir)
    return src.info()
