"""Classification + localization: the multi-task loss and the box metric of one object per image."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from jax231.detection import _boxes
from jax231.types import Array, ArrayLike

BOX_LOSSES = ("l2", "smooth_l1")


def smooth_l1(x: ArrayLike, *, beta: float = 1.0) -> Array:
    """Huber / smooth-L1: :math:`0.5 x^2/\\beta` for :math:`|x| < \\beta`, else :math:`|x| - 0.5\\beta`."""
    x = jnp.abs(jnp.asarray(x))
    return jnp.where(x < beta, 0.5 * x**2 / beta, x - 0.5 * beta)


def localization_loss(
    outputs: Mapping[str, ArrayLike],
    classes: ArrayLike,
    boxes: ArrayLike,
    *,
    image_size: int,
    box_weight: float = 10.0,
    box_loss: str = "smooth_l1",
    beta: float = 0.02,
) -> tuple[Array, dict[str, Array]]:
    """The notes' multi-task loss: softmax cross-entropy plus a weighted box regression.

    .. math:: L = -\\log p(\\hat c) + \\lambda \\sum_{k=1}^{4} \\ell(b_k - \\hat b_k)

    with :math:`b` the predicted and :math:`\\hat b` the true ``(cx, cy, w, h)`` as fractions
    of the image, :math:`\\ell` = :math:`x^2` (``'l2'``) or :func:`smooth_l1` with ``beta``
    (``'smooth_l1'``), :math:`\\lambda` = ``box_weight``.

    Args:
      outputs: ``{'logits': (N, C), 'boxes': (N, 4)}`` from :func:`jax231.models.localizer`.
      classes: ``(N,)`` int labels.
      boxes: ``(N, 4)`` xyxy pixel boxes.
      image_size: side of the square images.

    Returns:
      ``(per-example loss (N,), {'class': (N,), 'box': (N,)})``.
    """
    if box_loss not in BOX_LOSSES:
        raise ValueError(f"box_loss: expected one of {BOX_LOSSES}, got {box_loss!r}")
    logits, pred = jnp.asarray(outputs["logits"]), jnp.asarray(outputs["boxes"])
    target = _boxes.convert_boxes(jnp.asarray(boxes, pred.dtype), source="xyxy", target="cxcywh") / image_size
    if target.shape != pred.shape:
        raise ValueError(f"boxes: expected shape {pred.shape[:1] + (4,)}, got shape {jnp.shape(boxes)}")
    log_p = jax.nn.log_softmax(logits, axis=-1)
    cls = -jnp.take_along_axis(log_p, jnp.asarray(classes, jnp.int32)[:, None], axis=-1)[:, 0]
    diff = pred - target
    box = jnp.sum(diff**2 if box_loss == "l2" else smooth_l1(diff, beta=beta), axis=-1)
    return cls + box_weight * box, {"class": cls, "box": box}


def predicted_boxes(outputs: Mapping[str, ArrayLike], *, image_size: int) -> Array:
    """The localizer's boxes as xyxy pixels, ``(N, 4)``."""
    return _boxes.convert_boxes(jnp.asarray(outputs["boxes"]) * image_size, source="cxcywh", target="xyxy")


def matched_iou(pred: ArrayLike, target: ArrayLike) -> Array:
    """IoU of each predicted box with its own target (the diagonal of :func:`pairwise_iou`), ``(N,)``."""
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    wh = jnp.clip(jnp.minimum(pred[:, 2:], target[:, 2:]) - jnp.maximum(pred[:, :2], target[:, :2]), 0.0)
    inter = wh[:, 0] * wh[:, 1]
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area(pred) + area(target) - inter
    return jnp.where(union > 0, inter / jnp.maximum(union, 1e-9), 0.0)
