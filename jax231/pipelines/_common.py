"""Names, cache folders and split slicing shared by every pipeline module.

Nothing here imports TensorFlow: the in-memory paths (:func:`load_arrays`) must
work on a machine where only JAX is installed.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pathlib
import re
import shutil
import tarfile
import tempfile
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

OFFLINE_BUILDERS = {"mnist1d": "mnist1d", "digits": "digits"}
"""Short name -> registered TFDS name of the builders defined in :mod:`._builders`."""

CIFAR10_SHARED = "cifar10_shared"
CIFAR10_SHA256 = "ae7dd36e2f81683afbde96fe0b1f2dc2ccc2aa40725e93ff113828b655baae7b"
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
_ARCHIVE_NAME = pathlib.Path("shared") / "datasets" / "cifar10-jpeg.tar.gz"
DEFAULT_SHARED_ARCHIVE = _REPO_ROOT.parent / _ARCHIVE_NAME
"""``../shared/datasets/cifar10-jpeg.tar.gz`` beside the checkout (the development machines' copy)."""

# Common TFDS image-classification names, recognised (and offered as close
# matches) where TFDS is not installed.
KNOWN_TFDS_IMAGE = (
    "mnist",
    "fashion_mnist",
    "kmnist",
    "emnist",
    "cifar10",
    "cifar100",
    "svhn_cropped",
    "stl10",
    "imagenette",
    "imagenet2012",
    "oxford_flowers102",
)


class DatasetInfo(NamedTuple):
    """What a training script needs to know about a dataset before reading it.

    Attributes:
      name: the name given to :func:`jax231.pipelines.load`.
      num_classes: number of labels (``label`` lies in ``[0, num_classes)``).
      image_shape: shape of one ``image`` as yielded (``(40, 1)`` for mnist1d,
        ``(8, 8, 1)`` for digits, ``(32, 32, 3)`` for CIFAR).
      splits: split name -> number of examples.
      class_names: readable label names, index = label.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, ...]
    splits: dict[str, int]
    class_names: tuple[str, ...]


def cache_dir() -> pathlib.Path:
    """Returns ``$JAX231_DATA_DIR`` or ``~/.cache/jax231`` (created on demand)."""
    root = os.environ.get("JAX231_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "jax231")
    path = pathlib.Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def close_matches_error(name: str, candidates: Sequence[str]) -> ValueError:
    """A ``ValueError`` for an unknown dataset name, listing the closest names."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=5, cutoff=0.5)
    hint = f" Close matches: {matches}." if matches else ""
    return ValueError(
        f"name: unknown dataset {name!r}.{hint} Offline names: "
        f"{sorted(OFFLINE_BUILDERS) + [CIFAR10_SHARED]}, 'imagefolder:<path>', "
        "'npz:<path>', or any TFDS dataset name."
    )


def sha256_of(path: os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shared_archive_candidates(repo_root: Optional[os.PathLike] = None) -> list[pathlib.Path]:
    """Where the CIFAR-10 JPEG archive is looked for, in order.

    1. ``$JAX231_CIFAR10_ARCHIVE`` when set (and then only it);
    2. ``<repo_root>/../shared/datasets/cifar10-jpeg.tar.gz`` (beside the checkout);
    3. ``<repo_root>/shared/datasets/cifar10-jpeg.tar.gz`` (``repo_root`` defaults to this
       checkout; inside it, git-ignored: the copy that
       travels with the working tree to an accelerator machine, ``benchmarks/gpu/prepare.sh``).
    """
    override = os.environ.get("JAX231_CIFAR10_ARCHIVE")
    if override:
        return [pathlib.Path(override)]
    root = pathlib.Path(_REPO_ROOT if repo_root is None else repo_root)
    return [root.parent / _ARCHIVE_NAME, root / _ARCHIVE_NAME]


def shared_archive(repo_root: Optional[os.PathLike] = None) -> pathlib.Path:
    """Path of the CIFAR-10 JPEG archive: the first of :func:`shared_archive_candidates` that
    exists, else the first candidate (whose absence the caller reports)."""
    candidates = shared_archive_candidates(repo_root)
    return next((path for path in candidates if path.exists()), candidates[0])


def extract_cifar10_shared(data_dir: Optional[os.PathLike] = None) -> pathlib.Path:
    """Verifies and extracts the shared CIFAR-10 copy once; returns its folder.

    The archive's sha256 is checked before extraction. Extraction goes to a
    temporary folder that is renamed into place, so concurrent callers and an
    interrupted run never leave a half-written dataset behind.

    Args:
      data_dir: cache root; default :func:`cache_dir`.

    Returns:
      The folder holding ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``.
    """
    root = pathlib.Path(data_dir) if data_dir is not None else cache_dir()
    target = root / "cifar10-jpeg"
    if (target / ".complete").exists():
        return target
    archive = shared_archive()
    if not archive.exists():
        where = " or ".join(str(path) for path in shared_archive_candidates())
        raise FileNotFoundError(
            f"name: {CIFAR10_SHARED!r} needs the CIFAR-10 JPEG archive at {where}, which "
            "is absent. Copy cifar10-jpeg.tar.gz there (see ../shared/datasets/README.md) "
            "or set $JAX231_CIFAR10_ARCHIVE to its path."
        )
    digest = sha256_of(archive)
    if digest != CIFAR10_SHA256:
        raise ValueError(
            f"{archive}: sha256 {digest} differs from the expected {CIFAR10_SHA256}; "
            "the archive is corrupt or another file."
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".cifar10-jpeg-", dir=root))
    try:
        with tarfile.open(archive) as tar:
            kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, **kwargs)
        # The archive may hold the splits at its top or under one folder.
        inner = tmp
        if not (inner / "train").is_dir():
            subdirs = [p for p in tmp.iterdir() if p.is_dir()]
            if len(subdirs) == 1 and (subdirs[0] / "train").is_dir():
                inner = subdirs[0]
        os.chmod(inner, 0o755)  # mkdtemp made it private.
        (inner / ".complete").write_text(CIFAR10_SHA256)
        try:
            os.rename(inner, target)
        except OSError:  # Another process finished first.
            if not (target / ".complete").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------
# Split slicing with the TFDS grammar, for arrays held in memory.
# --------------------------------------------------------------------------
_SLICE = re.compile(r"^(?P<name>[\w\-]+)(\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?$")


def _boundary(text: Optional[str], n: int) -> Optional[int]:
    if text is None:
        return None
    if text.endswith("%"):
        pct = int(text[:-1])
        if not -100 <= pct <= 100:
            raise ValueError(f"split: percent boundaries lie in [-100, 100], got {text!r}")
        # TFDS's default rounding ('closest').
        return int(round(pct * n / 100.0))
    return int(text)


def parse_split(split: str) -> tuple[str, Optional[str], Optional[str]]:
    """Splits ``'train[10%:90%]'`` into ``('train', '10%', '90%')``."""
    if not isinstance(split, str):
        raise ValueError(f"split: expected a string like 'train' or 'train[:90%]', got {split!r}")
    match = _SLICE.match(split.replace(" ", ""))
    if match is None:
        raise ValueError(f"split: expected 'name', 'name[a:b]' with integers or percents (TFDS slicing), got {split!r}")
    return match["name"], match["start"], match["stop"]


def split_indices(split: str, sizes: dict[str, int], shard: Optional[tuple[int, int]] = None) -> tuple[str, np.ndarray]:
    """Indices of the examples of ``split`` (TFDS slicing and ``tfds.even_splits``).

    Args:
      split: ``'train'``, ``'train[:90%]'``, ``'test[100:200]'``...
      sizes: split name -> number of examples.
      shard: ``(index, count)``: the contiguous ``index``-th of ``count`` even
        parts, the first ``n % count`` parts one example longer (as
        ``tfds.even_splits(..., drop_remainder=False)``).

    Returns:
      ``(base split name, int64 indices)``.
    """
    name, start, stop = parse_split(split)
    if name not in sizes:
        raise ValueError(f"split: {name!r} is not one of the available splits {sorted(sizes)}")
    n = sizes[name]
    lo, hi, _ = slice(_boundary(start, n), _boundary(stop, n)).indices(n)
    indices = np.arange(lo, max(lo, hi), dtype=np.int64)
    if shard is not None:
        indices = np.array_split(indices, check_shard(shard)[1])[shard[0]]
    if indices.size == 0:
        raise ValueError(f"split: {split!r} (shard {shard}) of {n} examples is empty; widen the slice.")
    return name, indices


def check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """Validates ``shard=(process_index, process_count)``."""
    try:
        index, count = (int(s) for s in shard)
    except (TypeError, ValueError):
        raise ValueError(f"shard: expected (process_index, process_count), got {shard!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard: expected 0 <= process_index < process_count, got {shard!r}")
    return index, count
