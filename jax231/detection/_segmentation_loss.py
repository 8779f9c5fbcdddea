r"""The soft Dice loss of a segmenter and its sum with the pixel cross-entropy.

The pixel cross-entropy averages over pixels, so on canvases that are mostly background the
digit pixels, and the confusions between digit classes that mean IoU punishes, carry little
weight. The soft Dice loss (Milletari et al., "V-Net", 2016) scores every class's overlap as a
ratio instead, so a class with few pixels weighs as much as the background:

.. math::

    D_{nc} = \frac{2\sum_{ij} p_{nijc}\,y_{nijc} + s}{\sum_{ij} p_{nijc} + \sum_{ij} y_{nijc} + s},
    \qquad L^{\text{dice}}_n = 1 - \frac{1}{C}\sum_c D_{nc},

with :math:`p = \mathrm{softmax}(\text{logits})`, :math:`y` the one-hot labels and the
smoothing :math:`s` (a class absent from image :math:`n` and never predicted scores
:math:`D = 1`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax231.detection._masks import pixel_cross_entropy
from jax231.types import Array, ArrayLike


def _check_labels(logits: Array, labels: ArrayLike) -> None:
    if logits.ndim != 4 or jnp.shape(labels) != logits.shape[:3]:
        raise ValueError(
            f"labels: expected shape {logits.shape[:3]} (the logits' (N, H, W)), got shape {jnp.shape(labels)}"
        )


def soft_dice_loss(*, logits: ArrayLike, labels: ArrayLike, smooth: float = 1.0) -> Array:
    """Per-image soft Dice loss averaged over classes: ``(N, H, W, C), (N, H, W) -> (N,)``.

    Args:
      logits: per-pixel class scores.
      labels: per-pixel classes in ``[0, C)``.
      smooth: the :math:`s` of the module docstring (> 0).

    Returns:
      :math:`L^{\\text{dice}}_n` in ``[0, 1)`` per image.
    """
    logits = jnp.asarray(logits)
    _check_labels(logits, labels)
    if not smooth > 0:
        raise ValueError(f"smooth: expected a positive float, got {smooth!r}")
    p = jax.nn.softmax(logits, axis=-1)
    y = jax.nn.one_hot(jnp.asarray(labels, jnp.int32), logits.shape[-1], dtype=p.dtype)
    inter = jnp.sum(p * y, axis=(1, 2))
    dice = (2.0 * inter + smooth) / (jnp.sum(p, axis=(1, 2)) + jnp.sum(y, axis=(1, 2)) + smooth)
    return 1.0 - jnp.mean(dice, axis=-1)


def check_dice_weight(dice_weight) -> float:
    """``dice_weight`` as a float, or ``ValueError`` unless it is a finite number >= 0."""
    if (
        isinstance(dice_weight, bool)
        or not isinstance(dice_weight, (int, float))
        or not 0 <= dice_weight < float("inf")
    ):
        raise ValueError(f"dice_weight: expected a finite number >= 0, got {dice_weight!r}")
    return float(dice_weight)


def segmentation_loss(
    *, logits: ArrayLike, labels: ArrayLike, dice_weight: float = 1.0, smooth: float = 1.0
) -> tuple[Array, dict[str, Array]]:
    """Pixel cross-entropy plus ``dice_weight`` times the soft Dice loss, per image.

    Returns:
      ``(values (N,), {'cross_entropy': (N,), 'dice': (N,)})``, the ``(values, {term: values})``
      form of a :func:`jax231.training.fit` loss (the terms are reported as ``train_loss/<term>``).
    """
    dice_weight = check_dice_weight(dice_weight)
    ce = pixel_cross_entropy(logits=logits, labels=labels)
    dice = soft_dice_loss(logits=logits, labels=labels, smooth=smooth)
    return ce + dice_weight * dice, {"cross_entropy": ce, "dice": dice}
