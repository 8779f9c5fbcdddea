"""Dataset sources: each kind of dataset name is one :class:`Source` object behind one registry.

Kinds (``SOURCES``, a :class:`jax231._registry.Registry`): ``mnist1d`` and
``digits`` (generated offline), ``cifar10_shared`` (the shared JPEG copy),
``npz:<path>``, ``imagefolder:<path>``, and ``tfds:<name>`` for any TFDS name
(a bare TFDS name resolves to it). A source answers three questions: its split
sizes, one whole base split in its stored dtype, and its :class:`DatasetInfo`.
Local sources are read with NumPy, scikit-learn and PIL; a :class:`TfdsSource` is
read by :mod:`._loader` through TensorFlow (imported by :mod:`._arrays` and :mod:`._api`
when first needed: the one deferred import).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import random
import zipfile
from typing import Any, Optional

import numpy as np
from mnist1d.data import get_dataset_args, make_dataset
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

try:
    import tensorflow_datasets as tfds  # Lazy about TensorFlow itself; may be absent.
except ImportError:  # No TFDS: the local sources still work.
    tfds = None

from jax231._registry import Registry
from jax231._validation import check_examples
from jax231.pipelines import _canvas, _common

__all__ = [
    "Cifar10SharedSource",
    "DigitsSource",
    "ImageFolderSource",
    "Mnist1dSource",
    "NpzSource",
    "SOURCES",
    "Source",
    "TfdsSource",
    "resolve_name",
    "source",
    "to_float",
]

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DIGITS_TEST_SIZE = 360  # 1,797 digits -> 1,437 train / 360 test, stratified, seed 0.


# --------------------------------------------------------------------------
# Raw readers: base split name -> (images, labels) with their stored dtypes.
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def mnist1d_raw() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST-1D from ``make_dataset(get_dataset_args())`` (seed 42, 4,000/1,000).

    Generated in memory (nothing is downloaded or pickled); NumPy's and
    Python's global random states, which the package reseeds, are restored.
    Signals become float32 ``(N, 40, 1)`` (time, channel).
    """
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002  restored below
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
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
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    train, test = train_test_split(np.arange(len(labels)), test_size=DIGITS_TEST_SIZE, random_state=0, stratify=labels)
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
    if not os.path.isfile(path):
        raise FileNotFoundError(f"name: expected an existing .npz file, got {path!r}")
    try:
        return _read_npz(path)
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"name: expected a readable .npz file, got {path!r} ({type(err).__name__}: {err})") from None
    except ValueError as err:  # np.load(allow_pickle=False) on a pickle: refused, it would run code
        if "allow_pickle" not in str(err):
            raise
        raise ValueError(
            f"name: expected a .npz file, got {path!r}, a pickle (refused: loading it would run code)"
        ) from None


def _npz_array(f: Any, key: str, path: str) -> np.ndarray:
    try:
        return np.asarray(f[key])
    except ValueError as err:  # allow_pickle=False refuses object arrays: data never runs code.
        if "allow_pickle" not in str(err):
            raise
        raise ValueError(
            f"name: expected numeric arrays in {path!r}, got a pickled object array "
            f"{key!r} (refused: loading it would run code)"
        ) from None


def _read_npz(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
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
            x, y = _as_nhwc(_npz_array(f, kx, path), f"{path}:{kx}"), _npz_array(f, ky, path)
            if len(x) != len(y):
                raise ValueError(f"{path}: {kx} has {len(x)} rows but {ky} has {len(y)}")
            y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
            # At the door: finite pixels, integer labels >= 0 (-1 would wrap, 2.7 would truncate).
            out[split] = (x, check_examples(f"name: {path!r} split {split!r}", x, y))
    return out


def imagefolder_examples(root: str) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """Lists ``split/label/*.jpg`` exactly as ``tfds.ImageFolder`` orders them.

    Files are sorted, then shuffled with ``random.Random(split_name)``, and the
    class names are the sorted label folder names (so labels agree with TFDS).
    """
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"name: expected an existing image folder, got {root!r}")
    splits: dict[str, list[tuple[str, str]]] = {}
    labels: set[str] = set()
    for split in sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))):
        split_dir = os.path.join(root, split)
        examples: list[tuple[str, str]] = []
        for label in sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d))):
            labels.add(label)
            label_dir = os.path.join(split_dir, label)
            files = [os.path.join(label_dir, f) for f in os.listdir(label_dir) if f.lower().endswith(_IMAGE_SUFFIXES)]
            examples.extend((p, label) for p in sorted(files))
        random.Random(split).shuffle(examples)
        splits[split] = examples
    return splits, sorted(labels)


def decode_image(path: str) -> np.ndarray:
    """Decodes one image file with PIL; a ``ValueError`` names the file if it is corrupt.

    PIL's JPEG decoding equals ``tf.io.decode_jpeg(..., dct_method='INTEGER_ACCURATE')``
    (TensorFlow's default fast IDCT differs by up to 4 levels on CIFAR-10).
    """
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
    folder = _common.extract_cifar10_shared(None if data_dir is None else pathlib.Path(data_dir))
    cache = folder / f".decoded-{split}.npz"
    if cache.exists():
        with np.load(cache) as f:
            return f["image"], f["label"]
    images, labels, _ = imagefolder_split(str(folder), split)
    tmp = folder / f".decoded-{split}.{os.getpid()}.tmp.npz"
    np.savez(tmp, image=images, label=labels)
    os.replace(tmp, cache)
    return images, labels


def to_float(images: np.ndarray) -> np.ndarray:
    """``uint8`` pixels -> float32 in ``[0, 1]``; other dtypes -> float32 unchanged."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    return images.astype(np.float32, copy=False)


# --------------------------------------------------------------------------
# Sources.
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Source:
    """One dataset: its split sizes, its base splits, its metadata.

    Attributes:
      name: the dataset name as given to :func:`jax231.pipelines.load`.
      data_dir: TFDS data folder, or the cache root for ``cifar10_shared``.
      local: read without TensorFlow (``False`` only for :class:`TfdsSource`).
    """

    name: str
    data_dir: Optional[str] = None
    local = True

    def split_sizes(self) -> dict[str, int]:
        """Split name -> number of examples."""
        raise NotImplementedError

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """A whole base split (no slicing) in its stored dtype: ``(images, int labels)``."""
        raise NotImplementedError

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        """Every feature of a whole base split: ``{'image', 'label'}`` (more for richer sources)."""
        images, labels = self.read(split)
        return {"image": images, "label": labels}

    def info(self) -> _common.DatasetInfo:
        """Number of classes, image shape, split sizes, class names (10 digits by default)."""
        sizes = self.split_sizes()
        images, _ = self.read(next(iter(sizes)))
        return _common.DatasetInfo(self.name, 10, tuple(images.shape[1:]), sizes, tuple(str(i) for i in range(10)))


class Mnist1dSource(Source):
    """MNIST-1D, generated in memory (:func:`mnist1d_raw`)."""

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v[1]) for k, v in mnist1d_raw().items()}

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return mnist1d_raw()[split]


class DigitsSource(Source):
    """scikit-learn's 8x8 digits with a fixed stratified split (:func:`digits_raw`)."""

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v[1]) for k, v in digits_raw().items()}

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return digits_raw()[split]


class Cifar10SharedSource(Source):
    """The shared CIFAR-10 JPEG copy, extracted and decoded once into the cache."""

    def split_sizes(self) -> dict[str, int]:
        return {"train": 50_000, "test": 10_000}

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in ("train", "test"):
            raise ValueError(f"split: expected one of 'test', 'train' for {self.name}, got {split!r}")
        return cifar10_shared_raw(split, self.data_dir)

    def info(self) -> _common.DatasetInfo:
        return _common.DatasetInfo(self.name, 10, (32, 32, 3), self.split_sizes(), _common.CIFAR10_CLASSES)


@dataclasses.dataclass(frozen=True)
class NpzSource(Source):
    """A user's ``.npz`` file (:func:`npz_raw`); ``num_classes`` is max label + 1 over the splits."""

    path: str = ""

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v[1]) for k, v in npz_raw(self.path).items()}

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return npz_raw(self.path)[split]

    def info(self) -> _common.DatasetInfo:
        raw = npz_raw(self.path)
        num_classes = max(int(labels.max()) for _, labels in raw.values()) + 1
        images = next(iter(raw.values()))[0]
        return _common.DatasetInfo(
            self.name,
            num_classes,
            tuple(images.shape[1:]),
            {k: len(v[1]) for k, v in raw.items()},
            tuple(str(i) for i in range(num_classes)),
        )


@dataclasses.dataclass(frozen=True)
class ImageFolderSource(Source):
    """``split/label/*.jpg`` in the ``tfds.ImageFolder`` layout and order."""

    path: str = ""

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in imagefolder_examples(self.path)[0].items()}

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels, _ = imagefolder_split(self.path, split)
        return images, labels

    def info(self) -> _common.DatasetInfo:
        splits, classes = imagefolder_examples(self.path)
        first = next(iter(splits))
        shape = decode_image(splits[first][0][0]).shape
        return _common.DatasetInfo(
            self.name, len(classes), shape, {k: len(v) for k, v in splits.items()}, tuple(classes)
        )


@dataclasses.dataclass(frozen=True)
class TfdsSource(Source):
    """Any TFDS name. It is read through TFDS and tf.data by :mod:`._loader` (which
    imports TensorFlow), so this object only names the dataset: :func:`load_arrays`,
    :func:`info` and :func:`load` dispatch on ``local``."""

    local = False

    def split_sizes(self) -> dict[str, int]:
        raise ValueError(f"name: expected a local source, got the TFDS name {self.name!r}")

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        raise ValueError(f"name: expected a local source, got the TFDS name {self.name!r}")

    def info(self) -> _common.DatasetInfo:
        raise ValueError(f"name: expected a local source, got the TFDS name {self.name!r}")


def canvas_split(name: str, split: str) -> dict[str, np.ndarray]:
    """One split of a digit-canvas dataset (:mod:`._canvas`), drawn once per process."""
    if split not in ("train", "test"):
        raise ValueError(f"split: expected one of 'test', 'train' for {name}, got {split!r}")
    return _canvas.canvas_raw(name, digits_raw, lambda s: cifar10_shared_raw(s)[0])[split]


class CanvasSource(Source):
    """Digit canvases (:mod:`._canvas`): images with per-pixel class masks (``'label'``),
    instance masks, boxes, classes, object counts and left-to-right order."""

    def split_sizes(self) -> dict[str, int]:
        spec = _canvas.CANVAS_DATASETS[self.name]
        return {"train": spec.num_train, "test": spec.num_test}

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        return canvas_split(self.name, split)

    def read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        data = self.arrays(split)
        return data["image"], data["label"]


def _prefixed(cls: Any, prefix: str) -> Any:
    def factory(path: str, *, data_dir: Optional[str] = None) -> Source:
        return cls(name=f"{prefix}{path}", data_dir=data_dir, path=path)

    factory.__name__ = f"{cls.__name__}_factory"
    return factory


def _named(cls: type, name: str) -> Any:
    def factory(*, data_dir: Optional[str] = None) -> Source:
        return cls(name=name, data_dir=data_dir)

    factory.__name__ = name
    return factory


def _tfds(tfds_name: str, *, data_dir: Optional[str] = None) -> Source:
    return TfdsSource(name=tfds_name, data_dir=data_dir)


SOURCES: Registry[Source] = Registry("dataset")
"""Every dataset kind: fixed names, then the ``tfds:``, ``npz:`` and ``imagefolder:`` families."""

SOURCES.register(_named(Mnist1dSource, "mnist1d"))
SOURCES.register(_named(DigitsSource, "digits"))
SOURCES.register(_named(Cifar10SharedSource, _common.CIFAR10_SHARED))
for _canvas_name in _canvas.CANVAS_DATASETS:
    SOURCES.register(_named(CanvasSource, _canvas_name))
SOURCES.register_prefix("tfds:", _tfds)
SOURCES.register_prefix("npz:", _prefixed(NpzSource, "npz:"))
SOURCES.register_prefix("imagefolder:", _prefixed(ImageFolderSource, "imagefolder:"))


def resolve_name(name: str) -> str:
    """Validates a dataset name; unknown names raise with close matches.

    A ``tfds:<name>`` spelling resolves to the bare TFDS name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a dataset name string, got {name!r}")
    if name.startswith("tfds:") and len(name) > 5:
        name = name[5:]
    if name in SOURCES:
        return name
    if tfds is None:
        if name.split("/")[0] in _common.KNOWN_TFDS_IMAGE:
            raise ValueError(
                f"name: {name!r} is a TFDS dataset but tensorflow_datasets is not installed "
                "here; install tensorflow-datasets or use an offline name "
                f"({', '.join([*SOURCES.names, 'npz:<path>', 'imagefolder:<path>'])})"
            )
        raise _common.close_matches_error(name, [*SOURCES.names, *_common.KNOWN_TFDS_IMAGE])
    # The offline builders are registered with TFDS by jax231.pipelines' __init__.
    builders = tfds.list_builders(with_community_datasets=False)
    if name.split(":")[0].split("/")[0] not in builders:
        raise _common.close_matches_error(name, [*builders, *SOURCES.names])
    return name


def source(name: str, *, data_dir: Optional[str] = None) -> Source:
    """The :class:`Source` of a dataset name (validated by :func:`resolve_name`)."""
    name = resolve_name(name)
    if name in SOURCES:
        return SOURCES.get(name, data_dir=data_dir)
    return SOURCES.get("tfds:" + name, data_dir=data_dir)
