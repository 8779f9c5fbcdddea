"""``load``: a dataset name -> an iterator of NumPy batches, through TFDS and tf.data.

TensorFlow is kept off the GPUs (``tf.config.set_visible_devices([], 'GPU')``
when this module is imported) so that JAX owns the accelerator.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Optional, Union

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from jax231._validation import check_positive_int, check_seed
from jax231.pipelines import (
    _builders,  # noqa: F401  Registers mnist1d and digits.
    _common,
    _sources,
    _tf_augment,
)
from jax231.pipelines._augment import Augment, as_augment
from jax231.pipelines._preprocessing import Preprocessing, fit_preprocessing

try:
    tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # GPUs already initialised by someone else: leave them.
    pass

_SHUFFLE_CAP = 100_000  # Largest shuffle buffer of a streaming TFDS source.
_CACHE_BYTES = 2 << 30  # Cache decoded TFDS splits in memory below this size.


def _tfds_dir(name: str, data_dir: Optional[str]) -> Optional[str]:
    if data_dir is not None:
        return os.fspath(data_dir)
    if name in _common.OFFLINE_BUILDERS:
        return str(_common.cache_dir() / "tfds")
    return None  # TFDS's default (~/tensorflow_datasets or $TFDS_DATA_DIR).


def _builder(name: str, data_dir: Optional[str]):
    builder = tfds.builder(_common.OFFLINE_BUILDERS.get(name, name), data_dir=_tfds_dir(name, data_dir))
    if name in _common.OFFLINE_BUILDERS and not builder.is_prepared():
        builder.download_and_prepare()  # Local generation, no network.
    return builder


def _not_prepared(name: str, builder, err: Exception) -> ValueError:
    return ValueError(
        f"name: TFDS dataset {name!r} is not prepared in {builder.data_dir!r} and this "
        "machine cannot download it. Prepare it on a networked machine with "
        f"`tfds build {name} --data_dir=DIR` (or `tfds.load({name!r}, data_dir=DIR)`), copy "
        "DIR here and pass data_dir=DIR (or set $TFDS_DATA_DIR). Offline alternatives: "
        f"'mnist1d', 'digits', '{_common.CIFAR10_SHARED}', 'imagefolder:<path>', 'npz:<path>'. "
        f"({type(err).__name__}: {err})"
    )


def _tfds_split(split: str, shard: Optional[tuple[int, int]]):
    _common.parse_split(split)
    if shard is None:
        return split
    index, count = _common.check_shard(shard)
    return tfds.even_splits(split, count)[index]


def _tfds_dataset(name: str, split: str, data_dir, shard) -> tuple[tf.data.Dataset, int, Any]:
    """A TFDS split as ``(image, label)`` tuples, its size, and the builder."""
    builder = _builder(name, data_dir)
    tfds_split = _tfds_split(split, shard)
    n = None
    if builder.info.splits:  # Metadata known: check the slice before reading.
        try:
            n = builder.info.splits[tfds_split].num_examples
        except (KeyError, ValueError) as err:
            raise ValueError(f"split: {split!r} is not valid for {name!r}: {err}") from err
        if n == 0:
            raise ValueError(f"split: {split!r} (shard {shard}) of {name!r} is empty; widen the slice.")
    try:
        ds = builder.as_dataset(split=tfds_split, shuffle_files=False)
    except (AssertionError, FileNotFoundError, tfds.core.DatasetNotFoundError) as err:
        raise _not_prepared(name, builder, err) from err
    if n is None:  # No split metadata (e.g. under tfds.testing.mock_data): count.
        n = int(ds.cardinality())
        if n < 0:
            n = int(ds.reduce(0, lambda count, _: count + 1))
        if n == 0:
            raise ValueError(f"split: {split!r} (shard {shard}) of {name!r} is empty.")
    ds = ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds, n, builder


def tfds_arrays(name: str, split: str, *, data_dir=None, shard=None) -> dict[str, np.ndarray]:
    """:func:`load_arrays` for TFDS names: the whole split as one batch."""
    ds, n, _ = _tfds_dataset(name, split, data_dir, shard)
    images, labels = next(iter(tfds.as_numpy(ds.batch(n))))
    return {"image": _sources.to_float(images), "label": labels.astype(np.int32)}


def tfds_info(name: str, *, data_dir=None) -> _common.DatasetInfo:
    """:func:`info` for TFDS names, from TFDS's metadata (nothing is downloaded)."""
    builder = tfds.builder(_common.OFFLINE_BUILDERS.get(name, name), data_dir=_tfds_dir(name, data_dir))
    features = builder.info.features
    label = features["label"]
    return _common.DatasetInfo(
        name=name,
        num_classes=int(label.num_classes),
        image_shape=tuple(features["image"].shape),
        splits={k: v.num_examples for k, v in builder.info.splits.items()},
        class_names=tuple(label.names),
    )


def _tf_preprocess(stats: Preprocessing):
    mean = tf.constant(stats.mean, tf.float32)
    scale = tf.constant(stats.scale, tf.float32)
    components = None if stats.components is None else tf.constant(stats.components, tf.float32)

    def fn(x):
        if components is None:
            return (x - mean) / scale
        flat = tf.reshape(x - mean, [tf.shape(x)[0], -1])
        return tf.matmul(flat, components) / scale

    return fn


def _check_options(batch_size, num_epochs, seed) -> None:
    check_positive_int("batch_size", batch_size)
    if num_epochs is not None:
        check_positive_int("num_epochs", num_epochs)
    check_seed("seed", seed)


def _fit_images(src: _sources.Source, split: str) -> np.ndarray:
    """The float32 images of ``split``: what a named preprocessing is fitted on."""
    if not src.local:
        return tfds_arrays(src.name, split, data_dir=src.data_dir)["image"]
    base, indices = _common.split_indices(split, src.split_sizes())
    return _sources.to_float(src.read(base)[0][indices])


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
    """Implementation of :func:`jax231.pipelines.load` (documented there)."""
    _check_options(batch_size, num_epochs, seed)
    src = _sources.source(name, data_dir=data_dir)
    name = src.name
    if drop_remainder is None:
        drop_remainder = bool(shuffle)
    cfg = as_augment(augment)
    if cfg is not None and not shuffle:
        raise ValueError(
            "augment: augmentation is for training pipelines only; pass shuffle=True "
            "(evaluation data is never augmented)"
        )
    if isinstance(preprocess, str):
        if fit_split is None:
            raise ValueError(
                f"fit_split: preprocess={preprocess!r} needs the training split to fit on "
                "(e.g. fit_split='train[:90%]'), so validation data never leaks into it"
            )
        preprocess = fit_preprocessing(_fit_images(src, fit_split), method=preprocess)
    elif preprocess is not None and not isinstance(preprocess, Preprocessing):
        raise ValueError(f"preprocess: expected None, a method name or a Preprocessing, got {preprocess!r}")

    if src.local and name not in _common.OFFLINE_BUILDERS:
        # 1. In-memory source: shuffle indices, gather whole batches.
        base, indices = _common.split_indices(split, src.split_sizes(), shard)
        raw_images, raw_labels = src.read(base)
        images = tf.constant(raw_images[indices])
        labels = tf.constant(raw_labels[indices].astype(np.int32))
        n = len(indices)
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(shuffle_buffer or n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat(num_epochs).batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    else:
        # 1'. TFDS source: stream, cache decoded examples when small.
        ds, n, builder = _tfds_dataset(name, split, data_dir, shard)
        feature = builder.info.features["image"]
        nbytes = n * int(np.prod([d or 1 for d in feature.shape])) * np.dtype(feature.np_dtype).itemsize
        if nbytes <= _CACHE_BYTES and num_epochs != 1:
            ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(shuffle_buffer or min(n, _SHUFFLE_CAP), seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat(num_epochs).batch(batch_size, drop_remainder=drop_remainder)
    if drop_remainder and n < batch_size:
        raise ValueError(
            f"batch_size: {batch_size} exceeds the {n} examples of split {split!r} with "
            "drop_remainder=True, so no batch would come out"
        )

    # 2. Per batch: to float, augment, preprocess.
    preprocess_fn = _tf_preprocess(preprocess) if preprocess is not None else None

    def finish(step, batch):
        x, y = batch
        x = tf.cast(x, tf.float32) / 255.0 if x.dtype == tf.uint8 else tf.cast(x, tf.float32)
        if cfg is not None:
            x = _tf_augment.augment(x, tf.stack([tf.cast(seed, tf.int64), step]), cfg)
        if preprocess_fn is not None:
            x = preprocess_fn(x)
        return {"image": x, "label": y}

    ds = ds.enumerate().map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return _numpy_iterator(ds)


def _numpy_iterator(ds: tf.data.Dataset) -> Iterator[dict[str, np.ndarray]]:
    yield from ds.as_numpy_iterator()
