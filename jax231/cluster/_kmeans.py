"""k-means clustering: Lloyd's algorithm as one jitted ``lax.while_loop``, k-means++ seeding.

Lloyd's algorithm alternates the two steps that each lower the within-cluster sum of
squares (the *inertia*) ``J = sum_i ||x_i - mu_{c_i}||^2``:

1. assignment: ``c_i = argmin_k ||x_i - mu_k||^2``;
2. update: ``mu_k = mean{x_i : c_i = k}`` (an empty cluster keeps its centroid).

It stops when the squared centroid shift ``sum_k ||mu_k^new - mu_k||^2`` is at most
``tol * mean_j Var(x_{:, j})`` (scikit-learn's criterion) or after ``max_iters``
updates; the returned labels are then recomputed from the returned centroids, so
labels and centroids always agree.

References:
  CS231n lecture 13 (unsupervised learning); Lloyd, "Least squares quantization in
  PCM", 1982; Arthur & Vassilvitskii, "k-means++: the advantages of careful
  seeding", SODA 2007.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.types import Array, ArrayLike, PRNGKey

__all__ = ["KMeansResult", "assign", "kmeans", "kmeans_plusplus"]


class KMeansResult(NamedTuple):
    """The fitted clustering.

    Attributes:
      centroids: ``(K, D)`` cluster centres.
      labels: ``(N,)`` int32 index of the nearest centroid of every point.
      inertia: float scalar, ``sum_i ||x_i - mu_{c_i}||^2``.
      num_iters: int32 scalar, the number of Lloyd updates made.
    """

    centroids: Array
    labels: Array
    inertia: Array
    num_iters: Array


def _check_points(x: ArrayLike) -> Array:
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x: expected a (N, D) array of points with N >= 1, got shape {x.shape}")
    return x


def _squared_distances(x: Array, centroids: Array) -> Array:
    """``(N, K)`` matrix ``||x_i - mu_k||^2 = ||x_i||^2 - 2 x_i . mu_k + ||mu_k||^2``."""
    return (
        jnp.sum(x * x, axis=1, keepdims=True) - 2.0 * x @ centroids.T + jnp.sum(centroids * centroids, axis=1)[None, :]
    )


def assign(x: ArrayLike, centroids: ArrayLike) -> tuple[Array, Array]:
    """The assignment step: nearest centroid of every point and the inertia.

    Args:
      x: ``(N, D)`` points.
      centroids: ``(K, D)`` centres.

    Returns:
      ``(labels (N,) int32, inertia scalar)``.
    """
    d2 = _squared_distances(jnp.asarray(x), jnp.asarray(centroids))
    labels = jnp.argmin(d2, axis=1).astype(jnp.int32)
    return labels, jnp.maximum(jnp.take_along_axis(d2, labels[:, None], axis=1), 0.0).sum()


def _update(x: Array, labels: Array, centroids: Array) -> Array:
    """The update step: the mean of each cluster's points (empty clusters keep their centroid)."""
    one_hot = jax.nn.one_hot(labels, centroids.shape[0], dtype=x.dtype)  # (N, K)
    counts = one_hot.sum(axis=0)
    sums = one_hot.T @ x
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centroids)


def kmeans_plusplus(rng: PRNGKey, x: ArrayLike, num_clusters: int) -> Array:
    """k-means++ seeding: each new centre is drawn with probability proportional to ``D(x)^2``.

    ``D(x)`` is the distance of ``x`` to the nearest centre chosen so far; the first
    centre is uniform. (scikit-learn's greedy variant, which tries several candidates per
    centre, draws differently; pass these centroids to both to compare Lloyd's steps.)

    Args:
      rng: PRNG key.
      x: ``(N, D)`` points.
      num_clusters: ``K``, 1 <= K <= N.

    Returns:
      ``(K, D)`` initial centroids (rows of ``x``).
    """
    x = _check_points(x)
    _check_num_clusters(num_clusters, x.shape[0])
    keys = jax.random.split(rng, num_clusters)
    first = jax.random.randint(keys[0], (), 0, x.shape[0])
    centroids = jnp.zeros((num_clusters, x.shape[1]), x.dtype).at[0].set(x[first])
    nearest = jnp.sum((x - x[first]) ** 2, axis=1)

    def add_centre(k, carry):
        centroids, nearest = carry
        idx = jax.random.choice(keys[k], x.shape[0], p=nearest / jnp.maximum(nearest.sum(), 1e-30))
        nearest = jnp.minimum(nearest, jnp.sum((x - x[idx]) ** 2, axis=1))
        return centroids.at[k].set(x[idx]), nearest

    centroids, _ = lax.fori_loop(1, num_clusters, add_centre, (centroids, nearest))
    return centroids


def _check_num_clusters(num_clusters: int, num_points: int) -> None:
    if not isinstance(num_clusters, int) or not 1 <= num_clusters <= num_points:
        raise ValueError(f"num_clusters: expected an int in [1, {num_points}] (number of points), got {num_clusters!r}")


def _lloyd(x: Array, centroids: Array, max_iters: int, tol: float) -> KMeansResult:
    threshold = tol * jnp.mean(jnp.var(x, axis=0))

    def cond(carry):
        _, shift, it = carry
        return (it < max_iters) & (shift > threshold)

    def body(carry):
        centroids, _, it = carry
        labels, _ = assign(x, centroids)
        new = _update(x, labels, centroids)
        return new, jnp.sum((new - centroids) ** 2), it + 1

    init = (centroids, jnp.asarray(jnp.inf, x.dtype), jnp.asarray(0, jnp.int32))
    centroids, _, num_iters = lax.while_loop(cond, body, init)
    labels, inertia = assign(x, centroids)
    return KMeansResult(centroids, labels, inertia, num_iters)


_lloyd_jit = jax.jit(_lloyd, static_argnames=("max_iters",))


def kmeans(
    x: ArrayLike, init: ArrayLike | int, *, rng: PRNGKey | None = None, max_iters: int = 300, tol: float = 1e-4
) -> KMeansResult:
    """Lloyd's k-means from given centroids, or from k-means++ seeds.

    Args:
      x: ``(N, D)`` points.
      init: ``(K, D)`` initial centroids, or the number of clusters ``K`` (then seeded by
        :func:`kmeans_plusplus` with ``rng``).
      rng: PRNG key, needed when ``init`` is an int.
      max_iters: the most Lloyd updates.
      tol: relative tolerance on the squared centroid shift (scaled by the mean
        per-feature variance of ``x``, as scikit-learn does).

    Returns:
      A :class:`KMeansResult`.

    Raises:
      ValueError: for a non-2-D ``x``, centroids of the wrong width, ``K`` out of
        ``[1, N]``, ``max_iters < 1`` or ``tol < 0``.

    Examples:
      >>> result = kmeans(points, 3, rng=jax.random.key(0))
      >>> result.labels.shape == (len(points),)
    """
    x = _check_points(x)
    if not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"max_iters: expected an int >= 1, got {max_iters!r}")
    if not tol >= 0:
        raise ValueError(f"tol: expected a number >= 0, got {tol!r}")
    if isinstance(init, int):
        if rng is None:
            raise ValueError("rng: expected a PRNG key to seed k-means++ (init is a cluster count), got None")
        centroids = kmeans_plusplus(rng, x, init)
    else:
        centroids = jnp.asarray(init, x.dtype)
        if centroids.ndim != 2 or centroids.shape[1] != x.shape[1]:
            raise ValueError(f"init: expected (K, {x.shape[1]}) centroids, got shape {centroids.shape}")
        _check_num_clusters(int(centroids.shape[0]), x.shape[0])
    return _lloyd_jit(x, centroids, max_iters, tol)
