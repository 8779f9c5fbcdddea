"""Occlusion sensitivity: how much the true-class probability drops when a patch is hidden.

.. math:: S_{rc} = p_y(x) - p_y(x \\odot (1 - M_{rc}) + v M_{rc})

for the mask ``M_rc`` of the ``P x P`` patch at ``(r * stride, c * stride)`` and the fill
value ``v``; large values mark the regions the decision depends on.

References:
  Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014;
  CS231n lecture 12.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jax231.types import Array, ArrayLike
from jax231.visualize import _checks

__all__ = ["occlusion_sensitivity"]


def occlusion_sensitivity(
    logits_fn: _checks.LogitsFn,
    images: ArrayLike,
    labels: ArrayLike,
    *,
    patch_size: int,
    stride: int | None = None,
    fill: float = 0.0,
) -> Array:
    """``(N, n_r, n_c)`` drops of the labels' softmax probabilities, one per patch position.

    Patch positions are ``0, stride, ...`` up to ``H - patch_size`` (and likewise along
    W), so ``n_r = (H - P) // stride + 1``; the positions are scanned by ``lax.map``.

    Args:
      logits_fn: ``images -> (N, K)`` class scores.
      images: ``(N, H, W, C)`` float images.
      labels: the class whose probability is watched (int or ``(N,)``).
      patch_size: ``P``, between 1 and ``min(H, W)``.
      stride: step between patch positions (default ``P``).
      fill: the value of occluded pixels.

    Raises:
      ValueError: for a patch size or stride out of range, labels out of range.
    """
    images = _checks.check_images("images", images)
    labels = _checks.check_classes("labels", labels, _checks.num_classes_of(logits_fn, images), images.shape[0])
    _, height, width, _ = images.shape
    if not isinstance(patch_size, int) or not 1 <= patch_size <= min(height, width):
        raise ValueError(f"patch_size: expected an int in [1, {min(height, width)}], got {patch_size!r}")
    stride = patch_size if stride is None else stride
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: expected an int >= 1, got {stride!r}")

    def probability(x):
        return jnp.take_along_axis(jax.nn.softmax(logits_fn(x), axis=-1), labels[:, None], axis=1)[:, 0]

    rows = jnp.arange(0, height - patch_size + 1, stride)
    cols = jnp.arange(0, width - patch_size + 1, stride)
    corners = jnp.stack(jnp.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)
    ii = jnp.arange(height)[:, None]
    jj = jnp.arange(width)[None, :]

    def occluded_probability(corner):
        r, c = corner[0], corner[1]
        mask = ((ii >= r) & (ii < r + patch_size) & (jj >= c) & (jj < c + patch_size))[None, :, :, None]
        return probability(jnp.where(mask, jnp.asarray(fill, images.dtype), images))

    drops = probability(images)[None, :] - lax.map(jax.jit(occluded_probability), corners)  # (P, N)
    return drops.T.reshape(images.shape[0], len(rows), len(cols))
