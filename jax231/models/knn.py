"""k-nearest-neighbour classification: distances, majority vote, k-fold cross-validation.

No training: the "model" is the training set. Distances have no Python loop
over examples: L2 uses the expansion
:math:`\\|a - b\\|^2 = \\|a\\|^2 + \\|b\\|^2 - 2\\, a \\cdot b` (one matrix
product), L1 broadcasts ``|a_i - b_j|`` over blocks of features. Test rows are
processed in chunks with ``lax.map`` (one compiled loop, padded to a whole number
of chunks), so memory is bounded by ``chunk_size x num_train`` distances (times
a block of 64 features for L1) and 50,000 x 10,000 problems fit:
:func:`predict` and :func:`cross_validate` never hold the full distance matrix.

Votes: the labels of the ``k`` nearest training points are one-hot encoded and
summed, and ``argmax`` returns the first maximum, so ties go to the smallest
label (as ``np.argmax(np.bincount(...))`` in the course and scikit-learn's
``KNeighborsClassifier``).

References:
  CS231n notes, "Image Classification: Data-driven Approach, k-Nearest Neighbor,
  train/val/test splits" (https://cs231n.github.io/classification/); assignment 1.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax231._validation import check_positive_int
from jax231.types import Array, ArrayLike

__all__ = ["METRICS", "distances", "predict", "predict_many", "cross_validate"]

METRICS = ("l1", "l2")
_L1_FEATURE_BLOCK = 64
_MEMORY_BUDGET = 1 << 24  # floats held per chunk (64 MiB in float32)


# ----------------------------------------------------------------------------
# Validation.
# ----------------------------------------------------------------------------


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")


def _as_rows(name: str, x: ArrayLike) -> Array:
    x = jnp.asarray(x)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (num_examples, ...) with at least one example, got {x.shape}")
    return x.reshape(x.shape[0], -1)


def _check_pair(x_test: Array, x_train: Array) -> None:
    if x_test.shape[1] != x_train.shape[1]:
        raise ValueError(
            f"x_test and x_train must have the same number of features per example, got "
            f"{x_test.shape[1]} and {x_train.shape[1]}"
        )


def _check_labels(y_train: ArrayLike, num_train: int) -> Array:
    y = jnp.asarray(y_train)
    if y.shape != (num_train,) or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"y_train must be an integer array of shape ({num_train},), got {y.dtype} {y.shape}")
    return y


def _check_k(k: int, num_train: int, *, argument: str = "k") -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= num_train:
        raise ValueError(
            f"{argument} must be an integer with 1 <= {argument} <= {num_train} (the training set size), got {k!r}"
        )


def _num_classes(y: Array, num_classes: Optional[int]) -> int:
    if num_classes is not None:
        check_positive_int("num_classes", num_classes)
    try:
        labels = np.asarray(y)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        if num_classes is None:
            raise ValueError("num_classes must be given when y_train is traced (e.g. under jit)") from None
        return int(num_classes)  # traced labels: their range cannot be checked
    limit = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.min() < 0 or labels.max() >= limit:
        raise ValueError(
            f"labels must lie in [0, num_classes) = [0, {limit}), got values in [{labels.min()}, {labels.max()}]"
        )
    return limit


def _chunk(chunk_size: Optional[int], num_test: int, num_train: int, metric: str) -> int:
    if chunk_size is None:
        per_row = num_train * (_L1_FEATURE_BLOCK if metric == "l1" else 1)
        max_chunk = max(1, _MEMORY_BUDGET // per_row)
        # Balance the chunks so the padded last chunk wastes less than one row per chunk.
        num_chunks = max(1, -(-num_test // max_chunk))
        chunk_size = max(1, -(-num_test // num_chunks))
    else:
        check_positive_int("chunk_size", chunk_size)
    return int(min(chunk_size, num_test))


# ----------------------------------------------------------------------------
# Kernels (jit-compiled, static chunk size and metric).
# ----------------------------------------------------------------------------


def _block_distances(a: Array, b: Array, metric: str) -> Array:
    """Distances between the rows of ``a`` (c, D) and ``b`` (N, D), no Python loop: (c, N)."""
    if metric == "l2":
        # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b; clipped at 0 against round-off.
        cross = jnp.matmul(a, b.T, precision=lax.Precision.HIGHEST)
        sq = jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :] - 2.0 * cross
        return jnp.sqrt(jnp.maximum(sq, 0.0))
    # L1: accumulate |a - b| over blocks of features, bounding memory to c x N x block.
    dim = a.shape[1]
    blocks = -(-dim // _L1_FEATURE_BLOCK)
    pad = blocks * _L1_FEATURE_BLOCK - dim  # zero features add |0 - 0| = 0
    a_b = jnp.pad(a, ((0, 0), (0, pad))).reshape(a.shape[0], blocks, _L1_FEATURE_BLOCK)
    b_b = jnp.pad(b, ((0, 0), (0, pad))).reshape(b.shape[0], blocks, _L1_FEATURE_BLOCK)

    def add_block(total, j):
        diff = jnp.abs(a_b[:, None, j, :] - b_b[None, :, j, :])
        return total + jnp.sum(diff, axis=-1), None

    total0 = jnp.zeros((a.shape[0], b.shape[0]), jnp.result_type(a, b))
    return lax.scan(add_block, total0, jnp.arange(blocks))[0]


def _map_chunks(fn, x_test: Array, chunk_size: int) -> Array:
    """Applies ``fn`` to chunks of ``chunk_size`` test rows with ``lax.map``; concatenates results."""
    m = x_test.shape[0]
    num_chunks = -(-m // chunk_size)
    padded = jnp.pad(x_test, ((0, num_chunks * chunk_size - m), (0, 0)))
    out = lax.map(fn, padded.reshape(num_chunks, chunk_size, -1))
    return out.reshape(num_chunks * chunk_size, *out.shape[2:])[:m]


@functools.partial(jax.jit, static_argnames=("metric", "chunk_size"))
def _distances(x_test: Array, x_train: Array, metric: str, chunk_size: int) -> Array:
    return _map_chunks(lambda a: _block_distances(a, x_train, metric), x_test, chunk_size)


@functools.partial(jax.jit, static_argnames=("ks", "metric", "num_classes", "chunk_size"))
def _predict_ks(
    x_train: Array, y_train: Array, x_test: Array, ks: tuple[int, ...], metric: str, num_classes: int, chunk_size: int
) -> Array:
    k_max = max(ks)

    def chunk_predictions(a: Array) -> Array:  # (c, D) -> (c, len(ks))
        d = _block_distances(a, x_train, metric)
        _, nearest = lax.top_k(-d, k_max)  # (c, k_max), nearest first
        labels = y_train[nearest]
        onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.int32)  # (c, k_max, C)
        counts = jnp.cumsum(onehot, axis=1)  # counts[:, k-1] = votes among the k nearest
        votes = counts[:, jnp.asarray(ks) - 1, :]  # (c, len(ks), C)
        return jnp.argmax(votes, axis=-1).astype(jnp.int32)  # first max = smallest label

    return _map_chunks(chunk_predictions, x_test, chunk_size).T  # (len(ks), M)


# ----------------------------------------------------------------------------
# Public API.
# ----------------------------------------------------------------------------


def distances(x_test: ArrayLike, x_train: ArrayLike, *, metric: str = "l2", chunk_size: Optional[int] = None) -> Array:
    """All pairwise distances between test and training examples, without a Python loop.

    .. math::
        d_{L1}(a, b) = \\sum_p |a_p - b_p|, \\qquad
        d_{L2}(a, b) = \\sqrt{\\|a\\|^2 + \\|b\\|^2 - 2\\, a \\cdot b}

    Examples are flattened (``(M, 32, 32, 3)`` becomes ``(M, 3072)``).

    Args:
      x_test: ``(M, ...)`` test examples.
      x_train: ``(N, ...)`` training examples (same per-example size).
      metric: ``'l1'`` or ``'l2'``.
      chunk_size: test rows per chunk; default keeps a chunk's working set
        under 2**24 floats.

    Returns:
      ``(M, N)`` distances: ``dists[i, j]`` between ``x_test[i]`` and ``x_train[j]``.

    Raises:
      ValueError: for an unknown metric or mismatched shapes.
    """
    _check_metric(metric)
    a, b = _as_rows("x_test", x_test), _as_rows("x_train", x_train)
    _check_pair(a, b)
    dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
    return _distances(a.astype(dtype), b.astype(dtype), metric, _chunk(chunk_size, a.shape[0], b.shape[0], metric))


def predict_many(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    *,
    ks: Sequence[int],
    metric: str = "l2",
    num_classes: Optional[int] = None,
    chunk_size: Optional[int] = None,
) -> Array:
    """kNN predictions for several ``k`` at once (one distance computation).

    Args:
      x_train: ``(N, ...)`` training examples.
      y_train: ``(N,)`` integer labels in ``[0, num_classes)``.
      x_test: ``(M, ...)`` examples to classify.
      ks: the values of ``k``, each in ``[1, N]``.
      metric: ``'l1'`` or ``'l2'``.
      num_classes: number of classes; ``max(y_train) + 1`` when None.
      chunk_size: test rows per chunk (see :func:`distances`).

    Returns:
      ``(len(ks), M)`` int32 labels.

    Raises:
      ValueError: for an unknown metric, mismatched shapes, or a ``k`` outside ``[1, N]``.
    """
    _check_metric(metric)
    a, b = _as_rows("x_test", x_test), _as_rows("x_train", x_train)
    _check_pair(a, b)
    y = _check_labels(y_train, b.shape[0])
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must contain at least one value of k")
    for i, k in enumerate(ks):
        _check_k(k, b.shape[0], argument=f"ks[{i}]" if len(ks) > 1 else "k")
    ks = tuple(int(k) for k in ks)
    classes = _num_classes(y, num_classes)
    dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
    chunk = _chunk(chunk_size, a.shape[0], b.shape[0], metric)
    return _predict_ks(b.astype(dtype), y, a.astype(dtype), ks, metric, classes, chunk)


def predict(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    *,
    k: int = 1,
    metric: str = "l2",
    num_classes: Optional[int] = None,
    chunk_size: Optional[int] = None,
) -> Array:
    """Labels of ``x_test`` by majority vote among the ``k`` nearest training examples.

    Ties in the vote go to the smallest label.

    Args:
      x_train: ``(N, ...)`` training examples.
      y_train: ``(N,)`` integer labels.
      x_test: ``(M, ...)`` examples to classify.
      k: number of neighbours, ``1 <= k <= N``.
      metric: ``'l1'`` or ``'l2'``.
      num_classes: number of classes; ``max(y_train) + 1`` when None (required under jit).
      chunk_size: test rows per chunk (see :func:`distances`).

    Returns:
      ``(M,)`` int32 predicted labels.

    Raises:
      ValueError: for ``k < 1`` or ``k > N``, an unknown metric or mismatched shapes.
    """
    return predict_many(
        x_train, y_train, x_test, ks=(k,), metric=metric, num_classes=num_classes, chunk_size=chunk_size
    )[0]


def cross_validate(
    x: ArrayLike,
    y: ArrayLike,
    *,
    ks: Sequence[int],
    num_folds: int = 5,
    metric: str = "l2",
    num_classes: Optional[int] = None,
    chunk_size: Optional[int] = None,
) -> Array:
    """k-fold cross-validation of kNN: the accuracy of every ``k`` on every fold.

    The examples are split in order into ``num_folds`` contiguous folds
    (``np.array_split``, as the course's assignment and scikit-learn's
    ``KFold(shuffle=False)``: the first ``n % num_folds`` folds get one extra
    example); fold ``f`` is classified using the other folds as training set.

    Args:
      x: ``(n, ...)`` examples.
      y: ``(n,)`` integer labels.
      ks: values of ``k`` to evaluate; each must be at most the training size of every fold.
      num_folds: number of folds, ``2 <= num_folds <= n``.
      metric: ``'l1'`` or ``'l2'``.
      num_classes: number of classes; ``max(y) + 1`` when None.
      chunk_size: test rows per chunk (see :func:`distances`).

    Returns:
      ``(len(ks), num_folds)`` float32 accuracies: ``acc[i, f]`` for ``k = ks[i]`` on fold ``f``.

    Raises:
      ValueError: for a bad ``num_folds``, a ``k`` outside ``[1, smallest training size]``,
        mismatched shapes or an unknown metric.
    """
    rows = _as_rows("x", x)
    n = rows.shape[0]
    labels = _check_labels(y, n)
    if not isinstance(num_folds, (int, np.integer)) or not 2 <= num_folds <= n:
        raise ValueError(f"num_folds must be an integer in [2, {n}] (the number of examples), got {num_folds!r}")
    classes = _num_classes(labels, num_classes)
    folds = np.array_split(np.arange(n), num_folds)
    smallest_train = n - max(len(f) for f in folds)
    for i, k in enumerate(ks):
        _check_k(k, smallest_train, argument=f"ks[{i}]")
    accuracies = []
    for fold in folds:
        train_idx = np.setdiff1d(np.arange(n), fold)
        preds = predict_many(
            rows[train_idx],
            labels[train_idx],
            rows[fold],
            ks=ks,
            metric=metric,
            num_classes=classes,
            chunk_size=chunk_size,
        )
        accuracies.append(jnp.mean(preds == labels[fold][None, :], axis=1))
    return jnp.stack(accuracies, axis=1).astype(jnp.float32)
