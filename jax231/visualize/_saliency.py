"""Saliency maps: the gradient of the class score with respect to the pixels.

.. math:: M_{ij} = \\max_c \\left| \\frac{\\partial s_y(x)}{\\partial x_{ijc}} \\right|

for the (unnormalised) score ``s_y`` of class ``y``.

References:
  Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image
  Classification Models and Saliency Maps", ICLR Workshop 2014; CS231n lecture 12 and
  assignment 3 ("Network visualization").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax231.types import Array, ArrayLike
from jax231.visualize import _checks

__all__ = ["class_score_gradients", "saliency_maps"]


def class_score_gradients(logits_fn: _checks.LogitsFn, images: ArrayLike, labels: ArrayLike) -> Array:
    """``d s_{y_n}(x_n) / d x_n`` for every image, shape of ``images``.

    The scores of the batch are summed before differentiating, which gives every
    image's own gradient because examples do not interact in inference mode.

    Args:
      logits_fn: ``images -> (N, K)`` class scores.
      images: ``(N, H, W, C)`` float images.
      labels: the class ``y`` of each image (int or ``(N,)`` ints in ``[0, K)``).

    Raises:
      ValueError: for non-image input or labels out of range.
    """
    images = _checks.check_images("images", images)
    labels = _checks.check_classes("labels", labels, _checks.num_classes_of(logits_fn, images), images.shape[0])

    def total_score(x):
        return jnp.take_along_axis(logits_fn(x), labels[:, None], axis=1).sum()

    return jax.grad(total_score)(images)


def saliency_maps(logits_fn: _checks.LogitsFn, images: ArrayLike, labels: ArrayLike) -> Array:
    """``(N, H, W)`` saliency: the largest absolute class-score gradient over the channels."""
    return jnp.abs(class_score_gradients(logits_fn, images, labels)).max(axis=-1)
