"""Whole splits in memory, without TensorFlow where the source allows it.

``load_arrays`` serves the on-device epoch path (``lax.scan`` over an epoch held
on the accelerator) and machines where TensorFlow is absent: mnist1d, digits,
``npz:`` files, image folders and the shared CIFAR-10 copy are read with NumPy,
scikit-learn and PIL. Only other TFDS names import TensorFlow, lazily.
"""

from __future__ import annotations

import functools
import os
import random
from typing import Optional

import numpy as np

from jax231.pipelines import _canvas, _common

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DIGITS_TEST_SIZE = 360  # 1,797 digits -> 1,437 train / 360 test, stratified, seed 0.


# --------------------------------------------------------------------------
# Raw sources: base split name -> (images, labels) with their stored dtypes.
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def mnist1d_raw() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST-1D from ``make_dataset(get_dataset_args())`` (seed 42, 4,000/1,000).

    Generated in memory (nothing is downloaded or pickled); NumPy's and
    Python's global random states, which the package reseeds, are restored.
    Signals become float32 ``(N, 40, 1)`` (time, channel).
    """
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    out = {}
    for split, (x, y) in {"train": ("x", "y"), "test": ("x_test", "y_test")}.items():
        images = np.asarray(data[x], np.float32)[..., None]
        labels = np.asarray(data[y], np.int32)
        images.flags.writeable = labels.flags.writeable = False
        out[split] = (images, labels)
    return out


@functools.lru_cache(maxsize=1)
def digits_raw() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's 8x8 digits scaled to ``[0, 1]`` (``/16``), fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    train, test = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_SIZE, random_state=0, stratify=labels
    )
    out = {}
    for split, idx in (("train", np.sort(train)), ("test", np.sort(test))):
        x, y = images[idx], labels[idx]
        x.flags.writeable = y.flags.writeable = False
        out[split] = (x, y)
    return out


def _as_nhwc(images: np.ndarray, where: str) -> np.ndarray:
    if images.ndim in (2, 3):  # (N, T) signals or (N, H, W) grey images
        return images[..., None]
    if images.ndim == 4:
        return images
    raise ValueError(f"{where}: expected images of rank 2, 3 or 4, got shape {images.shape}")


def npz_raw(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads a user's ``.npz``: ``x_<split>``/``y_<split>`` pairs, or ``image``/``label``.

    ``x_train, y_train, x_test, y_test`` (Keras layout) give splits ``train``
    and ``test`` (any ``x_<split>``/``y_<split>`` pair works); a file with
    ``image`` and ``label`` holds one split, ``train``. Images of shape
    ``(N, T)`` or ``(N, H, W)`` get a trailing channel axis.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"name: npz file {path!r} does not exist")
    with np.load(path, allow_pickle=False) as f:
        keys = set(f.files)
        pairs = {}
        if {"image", "label"} <= keys:
            pairs["train"] = ("image", "label")
        for key in keys:
            if key.startswith("x_") and "y_" + key[2:] in keys:
                pairs[key[2:]] = (key, "y_" + key[2:])
        if not pairs:
            raise ValueError(
                f"name: {path!r} holds keys {sorted(keys)}; expected x_train/y_train "
                "(and x_test/y_test...) or image/label"
            )
        out = {}
        for split, (kx, ky) in pairs.items():
            x, y = _as_nhwc(f[kx], f"{path}:{kx}"), np.asarray(f[ky]).reshape(-1)
            if len(x) != len(y):
                raise ValueError(f"{path}: {kx} has {len(x)} rows but {ky} has {len(y)}")
            out[split] = (x, y.astype(np.int32))
    return out


def imagefolder_examples(root: str) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """Lists ``split/label/*.jpg`` exactly as ``tfds.ImageFolder`` orders them.

    Files are sorted, then shuffled with ``random.Random(split_name)``, and the
    class names are the sorted label folder names (so labels agree with TFDS).
    """
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"name: image folder {root!r} does not exist")
    splits: dict[str, list[tuple[str, str]]] = {}
    labels: set[str] = set()
    for split in sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))):
        split_dir = os.path.join(root, split)
        examples = []
        for label in sorted(
            d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d))
        ):
            labels.add(label)
            label_dir = os.path.join(split_dir, label)
            files = [
                os.path.join(label_dir, f)
                for f in os.listdir(label_dir)
                if f.lower().endswith(_IMAGE_SUFFIXES)
            ]
            examples.extend((p, label) for p in sorted(files))
        random.Random(split).shuffle(examples)
        splits[split] = examples
    return splits, sorted(labels)


def decode_image(path: str) -> np.ndarray:
    """Decodes one image file with PIL; a ``ValueError`` names the file if it is corrupt.

    PIL's JPEG decoding equals ``tf.io.decode_jpeg(..., dct_method='INTEGER_ACCURATE')``
    (TensorFlow's default fast IDCT differs by up to 4 levels on CIFAR-10).
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            array = np.asarray(img)
    except Exception as err:  # PIL raises several types for a bad file.
        raise ValueError(f"corrupt image file {path}: {type(err).__name__}: {err}") from err
    return array[..., None] if array.ndim == 2 else array


def imagefolder_split(root: str, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decodes one split of an image folder into ``uint8 (N, H, W, C)`` and labels."""
    splits, class_names = imagefolder_examples(root)
    if split not in splits:
        raise ValueError(f"split: {split!r} is not one of the folders {sorted(splits)} in {root}")
    examples = splits[split]
    if not examples:
        raise ValueError(f"split: {root}/{split} holds no .jpg/.jpeg/.png images")
    index = {name: i for i, name in enumerate(class_names)}
    images = [decode_image(path) for path, _ in examples]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"{root}/{split}: images differ in shape {sorted(shapes)}; resize them first")
    labels = np.array([index[label] for _, label in examples], np.int32)
    return np.stack(images), labels, class_names


def cifar10_shared_raw(split: str, data_dir: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """One split of the shared CIFAR-10 copy, decoded once and cached as ``.npz``."""
    folder = _common.extract_cifar10_shared(data_dir)
    cache = folder / f".decoded-{split}.npz"
    if cache.exists():
        with np.load(cache) as f:
            return f["image"], f["label"]
    images, labels, _ = imagefolder_split(str(folder), split)
    tmp = folder / f".decoded-{split}.{os.getpid()}.tmp.npz"
    np.savez(tmp, image=images, label=labels)
    os.replace(tmp, cache)
    return images, labels


def canvas_split(name: str, split: str) -> dict[str, np.ndarray]:
    """One split of a digit-canvas dataset (:mod:`._canvas`), drawn once per process."""
    if split not in ("train", "test"):
        raise ValueError(f"split: {name} has splits ['test', 'train'], got {split!r}")
    return _canvas.canvas_raw(name, digits_raw, _cifar_train_test)[split]


def _cifar_train_test(split: str) -> np.ndarray:
    return cifar10_shared_raw(split)[0]


# --------------------------------------------------------------------------
# Public entry points.
# --------------------------------------------------------------------------
def to_float(images: np.ndarray) -> np.ndarray:
    """``uint8`` pixels -> float32 in ``[0, 1]``; other dtypes -> float32 unchanged."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    return images.astype(np.float32, copy=False)


def local_splits(name: str, data_dir: Optional[str] = None) -> Optional[dict[str, int]]:
    """Split sizes of a source read without TFDS, or ``None`` for a TFDS name."""
    if name in _canvas.CANVAS_DATASETS:
        spec = _canvas.CANVAS_DATASETS[name]
        return {"train": spec.num_train, "test": spec.num_test}
    if name in _common.OFFLINE_BUILDERS:
        raw = mnist1d_raw() if name == "mnist1d" else digits_raw()
        return {k: len(v[1]) for k, v in raw.items()}
    if name == _common.CIFAR10_SHARED:
        return {"train": 50_000, "test": 10_000}
    if name.startswith("npz:"):
        return {k: len(v[1]) for k, v in npz_raw(name[4:]).items()}
    if name.startswith("imagefolder:"):
        return {k: len(v) for k, v in imagefolder_examples(name[12:])[0].items()}
    return None


def raw_split(name: str, split: str, data_dir: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """A whole base split (no slicing) of a local source in its stored dtype."""
    if name == "mnist1d":
        return mnist1d_raw()[split]
    if name == "digits":
        return digits_raw()[split]
    if name in _canvas.CANVAS_DATASETS:
        canvases = canvas_split(name, split)
        return canvases["image"], canvases["label"]
    if name == _common.CIFAR10_SHARED:
        if split not in ("train", "test"):
            raise ValueError(f"split: {name} has splits ['test', 'train'], got {split!r}")
        return cifar10_shared_raw(split, data_dir)
    if name.startswith("npz:"):
        return npz_raw(name[4:])[split]
    if name.startswith("imagefolder:"):
        return imagefolder_split(name[12:], split)[:2]
    raise ValueError(f"name: {name!r} is not a local source")


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
    name = resolve_name(name)
    sizes = local_splits(name, data_dir)
    if sizes is None:
        from jax231.pipelines import _loader  # Imports TensorFlow.

        return _loader.tfds_arrays(name, split, data_dir=data_dir, shard=shard)
    base, indices = _common.split_indices(split, sizes, shard)
    if name in _canvas.CANVAS_DATASETS:  # Masks, boxes and classes too (see _canvas.make_canvases).
        return {key: value[indices] for key, value in canvas_split(name, base).items()}
    images, labels = raw_split(name, base, data_dir)
    return {"image": to_float(images[indices]), "label": labels[indices].astype(np.int32)}


def resolve_name(name: str) -> str:
    """Validates a dataset name; unknown names raise with close matches."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a dataset name string, got {name!r}")
    if name in _common.OFFLINE_BUILDERS or name == _common.CIFAR10_SHARED:
        return name
    if name in _canvas.CANVAS_DATASETS:
        return name
    if name.startswith(("npz:", "imagefolder:")):
        return name
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        if name.split("/")[0] in _common.KNOWN_TFDS_IMAGE:
            raise ValueError(
                f"name: {name!r} is a TFDS dataset but tensorflow_datasets is not installed "
                "here; install tensorflow-datasets or use an offline name "
                f"({sorted(_common.OFFLINE_BUILDERS) + [_common.CIFAR10_SHARED]}, 'npz:', 'imagefolder:')"
            ) from None
        raise _common.close_matches_error(
            name, [*_common.OFFLINE_BUILDERS, _common.CIFAR10_SHARED, *_common.KNOWN_TFDS_IMAGE]
        ) from None
    from jax231.pipelines import _builders  # noqa: F401  Registers mnist1d and digits.

    builders = tfds.list_builders(with_community_datasets=False)
    if name.split(":")[0].split("/")[0] not in builders:
        raise _common.close_matches_error(
            name, builders + [_common.CIFAR10_SHARED, *_common.OFFLINE_BUILDERS]
        )
    return name


def info(name: str, *, data_dir: Optional[str] = None) -> _common.DatasetInfo:
    """Number of classes, image shape, split sizes and class names of a dataset.

    Reads metadata only for TFDS names (no download); local sources are read.
    """
    name = resolve_name(name)
    if name == _common.CIFAR10_SHARED:
        return _common.DatasetInfo(
            name, 10, (32, 32, 3), {"train": 50_000, "test": 10_000}, _common.CIFAR10_CLASSES
        )
    sizes = local_splits(name, data_dir)
    if sizes is not None:
        first = next(iter(sizes))
        if name.startswith("imagefolder:"):
            splits, classes = imagefolder_examples(name[12:])
            shape = decode_image(splits[first][0][0]).shape
            return _common.DatasetInfo(name, len(classes), shape, sizes, tuple(classes))
        images, labels = raw_split(name, first, data_dir)
        if name.startswith("npz:"):
            num_classes = int(max(int(raw_split(name, s)[1].max()) for s in sizes)) + 1
        else:
            num_classes = 10
        classes = tuple(str(i) for i in range(num_classes))
        return _common.DatasetInfo(name, num_classes, tuple(images.shape[1:]), sizes, classes)
    from jax231.pipelines import _loader

    return _loader.tfds_info(name, data_dir=data_dir)
