"""The TensorFlow-free front of :func:`load` (TensorFlow is imported on first call)."""

from __future__ import annotations

from typing import Iterator, Optional, Union

import numpy as np

from jax231.pipelines._augment import Augment
from jax231.pipelines._preprocessing import Preprocessing


def load(
    name: str,
    split: str,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    data_dir: Optional[str] = None,
    drop_remainder: Optional[bool] = None,
    num_epochs: Optional[int] = 1,
    preprocess: Union[None, str, Preprocessing] = None,
    fit_split: Optional[str] = None,
    augment: Union[None, bool, dict, Augment] = None,
    shard: Optional[tuple[int, int]] = None,
    shuffle_buffer: Optional[int] = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of a dataset, ready for a jitted step.

    Yields ``{'image': float32 (B, *image_shape), 'label': int32 (B,)}``.
    ``uint8`` pixels are scaled to ``[0, 1]``; after ``preprocess`` with
    ``'pca'``/``'whiten'`` images are ``(B, k)`` vectors. Shapes: mnist1d
    ``(B, 40, 1)`` signals (time, channel: NWC for 1-D convolutions, ``(T, D)``
    for RNNs), digits ``(B, 8, 8, 1)``, CIFAR ``(B, 32, 32, 3)``.

    Pipeline: read (TFDS, or the arrays of :func:`load_arrays`) -> shuffle
    (buffer = whole split by default) -> repeat ``num_epochs`` -> batch ->
    augment (vectorised tf.data ops on the host CPU, seeded by ``(seed,
    batch index)``) -> preprocess -> prefetch. Augmenting on the device with
    :func:`augment_batch` inside the train step measured 5-8x cheaper per
    image (:data:`AUGMENT_PLACEMENT`); ``augment=`` here is the host-side
    alternative.
    Shuffling reshuffles every epoch from the op seed ``seed`` (and
    TensorFlow's global seed, if a program sets one), so epoch ``e``'s order is a fixed function of
    ``(seed, e)``: the same seed gives the same batches in any process,
    another seed another order. A named ``preprocess`` is fitted on the whole
    ``fit_split`` (not this host's ``shard``), so all hosts agree.

    Names: any TFDS name (must be prepared in ``data_dir``: no download is
    attempted); ``'mnist1d'`` and ``'digits'`` (TFDS builders generated
    locally on first use into ``$JAX231_DATA_DIR/tfds``); ``'cifar10_shared'``
    (the ``../shared/datasets`` CIFAR-10 JPEG copy, checked and extracted once to
    the cache); ``'imagefolder:<path>'`` (``split/label/*.jpg``, the
    ``tfds.ImageFolder`` layout and order); ``'npz:<path>'`` (see
    :func:`._arrays.npz_raw` for the keys).

    Args:
      name: dataset name (above).
      split: split with optional TFDS slicing, e.g. ``'train[:90%]'`` for
        training and ``'train[90%:]'`` for validation.
      batch_size: examples per batch.
      shuffle: shuffle (training); also the default of ``drop_remainder``.
      seed: shuffling and augmentation seed.
      data_dir: TFDS data folder (cache root for ``cifar10_shared``).
      drop_remainder: drop the last partial batch (default: ``shuffle``).
      num_epochs: passes over the data; ``None`` repeats forever.
      preprocess: fitted :class:`Preprocessing`, or a method name fitted on
        ``fit_split`` (never on ``split`` itself unless they are the same).
      fit_split: training split to fit a named ``preprocess`` on.
      augment: ``True`` (pad-crop 4 and flip), a dict or an :class:`Augment`;
        training only (requires ``shuffle=True``).
      shard: ``(process_index, process_count)``: this host's contiguous part
        (``tfds.even_splits``) in multi-host runs.
      shuffle_buffer: shuffle buffer size (default: the whole split, capped at
        100,000 for TFDS sources).

    Returns:
      An iterator of dicts of NumPy arrays.

    Raises:
      ValueError: unknown name (with close matches), dataset not prepared
        (with how to prepare it), corrupt image (naming the file), empty split.
    """
    from jax231.pipelines import _loader  # Imports TensorFlow, kept off the GPUs.

    return _loader.load(
        name,
        split,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        data_dir=data_dir,
        drop_remainder=drop_remainder,
        num_epochs=num_epochs,
        preprocess=preprocess,
        fit_split=fit_split,
        augment=augment,
        shard=shard,
        shuffle_buffer=shuffle_buffer,
    )
