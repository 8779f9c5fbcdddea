"""Data preprocessing from the CS231n notes, fitted on the training split only.

Statistics are computed once, in float64 NumPy on the host, from training
images; :func:`apply_preprocessing` is a pure ``jnp`` function of those
statistics (it runs under ``jit``/``vmap``) and is applied unchanged to
validation and test data, so nothing about held-out data leaks into training.

References:
  CS231n notes, "Neural Networks Part 2: Setting up the Data and the Loss",
  section Data Preprocessing (https://cs231n.github.io/neural-networks-2/).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jax231.types import Array, ArrayLike

METHODS = ("mean_image", "per_channel", "pca", "whiten")


class Preprocessing(NamedTuple):
    """Fitted statistics of one preprocessing method.

    Attributes:
      method: one of ``'mean_image'``, ``'per_channel'``, ``'pca'``, ``'whiten'``.
      mean: the mean image ``(*image_shape)`` (``mean_image``, ``pca``,
        ``whiten``) or the per-channel mean ``(C,)`` (``per_channel``).
      scale: per-channel standard deviation ``(C,)`` for ``per_channel``; for
        ``whiten`` ``sqrt(S_k + epsilon)`` of the kept eigenvalues ``(k,)``;
        ones otherwise.
      components: ``(D, k)`` leading eigenvectors ``U[:, :k]`` of the
        covariance (columns sorted by decreasing eigenvalue) for ``pca`` and
        ``whiten``; ``None`` otherwise.
      eigenvalues: ``(k,)`` kept eigenvalues ``S[:k]``, or ``None``.
    """

    method: str
    mean: np.ndarray
    scale: np.ndarray
    components: Optional[np.ndarray] = None
    eigenvalues: Optional[np.ndarray] = None


# ``method`` is static: a Preprocessing can be passed to jitted functions.
jax.tree_util.register_pytree_node(
    Preprocessing,
    lambda p: ((p.mean, p.scale, p.components, p.eigenvalues), p.method),
    lambda method, children: Preprocessing(method, *children),
)


def fit_preprocessing(
    train_images: ArrayLike,
    *,
    method: str,
    num_components: Optional[int] = None,
    epsilon: float = 1e-5,
) -> Preprocessing:
    """Fits preprocessing statistics on training images (float64, on the host).

    With ``X`` the ``(N, D)`` matrix of flattened training images:

    * ``mean_image``: ``mu = mean_n X[n]``; apply ``x - mu``.
    * ``per_channel``: ``mu_c``, ``sigma_c`` over examples and pixels of channel
      ``c``; apply ``(x - mu_c) / sigma_c``.
    * ``pca``: ``cov = (X - mu)^T (X - mu) / N = U diag(S) U^T``; apply
      ``(x - mu) U[:, :k]`` (``k = num_components``, default ``D``).
    * ``whiten``: as ``pca``, then divide by ``sqrt(S[:k] + epsilon)``.

    Eigenvector signs are fixed (largest-magnitude entry positive) so the same
    data give the same statistics.

    Args:
      train_images: ``(N, *image_shape)`` training images only.
      method: one of ``'mean_image'``, ``'per_channel'``, ``'pca'``, ``'whiten'``.
      num_components: components kept by ``pca``/``whiten`` (``1..D``).
      epsilon: added to eigenvalues before the whitening square root.

    Returns:
      A :class:`Preprocessing` for :func:`apply_preprocessing`.

    Note:
      ``pca``/``whiten`` form a ``D x D`` covariance: for CIFAR-10 (``D = 3072``)
      that is about a minute on two CPU cores.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    x = np.asarray(train_images)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"train_images: expected (N >= 2, ...) images, got shape {x.shape}")
    if x.dtype == np.uint8:
        x = x / 255.0
    x = x.astype(np.float64)
    if method != "pca" and method != "whiten" and num_components is not None:
        raise ValueError(f"num_components: only used by 'pca' and 'whiten', got {num_components} for {method!r}")
    if method == "mean_image":
        mean = x.mean(axis=0)
        return Preprocessing(method, mean.astype(np.float32), np.ones((), np.float32))
    if method == "per_channel":
        axes = tuple(range(x.ndim - 1))
        mean, std = x.mean(axis=axes), x.std(axis=axes)
        if np.any(std == 0):
            raise ValueError(f"train_images: a channel is constant (std {std}); per_channel would divide by 0")
        return Preprocessing(method, mean.astype(np.float32), std.astype(np.float32))
    flat = x.reshape(x.shape[0], -1)
    d = flat.shape[1]
    k = d if num_components is None else int(num_components)
    if not 1 <= k <= d:
        raise ValueError(f"num_components: expected 1 <= k <= D = {d}, got {num_components}")
    mean = flat.mean(axis=0)
    centred = flat - mean
    cov = centred.T @ centred / flat.shape[0]
    eigenvalues, vectors = np.linalg.eigh(cov)
    order = np.argsort(eigenvalues)[::-1][:k]
    eigenvalues, vectors = np.maximum(eigenvalues[order], 0.0), vectors[:, order]
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(k)])
    vectors = vectors * np.where(signs == 0, 1.0, signs)
    scale = np.sqrt(eigenvalues + epsilon) if method == "whiten" else np.ones(k)
    return Preprocessing(
        method,
        mean.reshape(x.shape[1:]).astype(np.float32),
        scale.astype(np.float32),
        vectors.astype(np.float32),
        eigenvalues.astype(np.float32),
    )


def apply_preprocessing(stats: Preprocessing, images: ArrayLike) -> Array:
    """Applies fitted statistics to a batch ``(B, *image_shape)`` (pure, jittable).

    Returns:
      ``(B, *image_shape)`` float32 for ``mean_image``/``per_channel``;
      ``(B, k)`` for ``pca``/``whiten``.
    """
    if not isinstance(stats, Preprocessing):
        raise ValueError(f"stats: expected a Preprocessing from fit_preprocessing, got {type(stats)}")
    x = jnp.asarray(images)
    if x.dtype == jnp.uint8:
        x = x / 255.0
    x = x.astype(jnp.float32)
    image_shape = tuple(np.shape(stats.mean)) if stats.method != "per_channel" else None
    if image_shape is not None and tuple(x.shape[1:]) != image_shape:
        raise ValueError(f"images: expected (B, {', '.join(map(str, image_shape))}), got {x.shape}")
    if stats.method == "per_channel" and x.shape[-1] != np.shape(stats.mean)[0]:
        raise ValueError(f"images: expected {np.shape(stats.mean)[0]} channels, got shape {x.shape}")
    if stats.method in ("mean_image", "per_channel"):
        return (x - stats.mean) / stats.scale
    flat = (x - stats.mean).reshape(x.shape[0], -1)
    return (flat @ stats.components) / stats.scale  # type: ignore[operator]  # pca/whiten have components
