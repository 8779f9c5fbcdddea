"""Anchors of a region proposal network: the grid of reference boxes, their IoU labels, sampling.

Faster R-CNN places :math:`k` anchors (``len(sizes) * len(aspect_ratios)``) at every cell of a
stride-:math:`s` feature map. The anchor of size :math:`a` and aspect ratio :math:`r = h/w` at
cell :math:`(i, j)` is centred at :math:`((j + \\tfrac12) s, (i + \\tfrac12) s)` with

.. math:: w = a / \\sqrt r,\\qquad h = a \\sqrt r \\qquad (w h = a^2).

Each anchor is labelled by its IoU with the ground truth (:func:`label_anchors`): positive
(1), negative (0) or ignored (-1); a fixed number of them, at most a fraction positive, is
drawn for the loss (:func:`sample_balanced`, fixed shapes under ``jit``).

References:
  Ren et al., "Faster R-CNN", 2015, section 3.1; CS231n lecture 11.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231.detection import _boxes
from jax231.types import Array, ArrayLike, PRNGKey


def _check_positive_floats(name: str, values: Sequence[float]) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a non-empty sequence of positive numbers, got {values!r}") from None
    if not out or min(out) <= 0 or not np.all(np.isfinite(out)):
        raise ValueError(f"{name}: expected a non-empty sequence of positive numbers, got {values!r}")
    return out


def anchor_grid(
    feature_size: tuple[int, int], *, stride: float, sizes: Sequence[float], aspect_ratios: Sequence[float]
) -> Array:
    """The anchors of every cell of an ``(H_f, W_f)`` feature map, as ``xyxy`` image pixels.

    Args:
      feature_size: ``(H_f, W_f)`` cells.
      stride: :math:`s`, image pixels per cell.
      sizes: anchor sides :math:`a` (the square root of the area), in pixels.
      aspect_ratios: :math:`r = h / w`.

    Returns:
      ``(H_f * W_f * k, 4)``, ordered by row, column, size, ratio (so a head's
      ``(N, H_f, W_f, k)`` output reshapes to ``(N, H_f W_f k)`` in the same order).
    """
    if len(feature_size) != 2 or min(int(v) for v in feature_size) < 1:
        raise ValueError(f"feature_size: expected (H_f, W_f) positive ints, got {feature_size!r}")
    (stride,) = _check_positive_floats("stride", (stride,))
    sizes = _check_positive_floats("sizes", sizes)
    ratios = _check_positive_floats("aspect_ratios", aspect_ratios)
    a = np.repeat(np.asarray(sizes), len(ratios))
    r = np.tile(np.asarray(ratios), len(sizes))
    w, h = a / np.sqrt(r), a * np.sqrt(r)  # (k,)
    rows, cols = np.meshgrid(np.arange(feature_size[0]), np.arange(feature_size[1]), indexing="ij")
    cx, cy = (cols.reshape(-1, 1) + 0.5) * stride, (rows.reshape(-1, 1) + 0.5) * stride  # (H_f W_f, 1)
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)  # (H_f W_f, k, 4)
    return jnp.asarray(boxes.reshape(-1, 4), jnp.float32)


class AnchorLabels(NamedTuple):
    """What :func:`label_anchors` returns.

    Attributes:
      labels: ``(A,)`` int32: 1 positive, 0 negative, -1 ignored.
      matched: ``(A,)`` int32 index of the ground-truth box of largest IoU (0 when there is none).
      max_iou: ``(A,)`` that IoU (0 when there is no valid ground truth).
    """

    labels: Array
    matched: Array
    max_iou: Array


def label_anchors(
    anchors: ArrayLike,
    gt_boxes: ArrayLike,
    gt_valid: ArrayLike,
    *,
    positive_iou: float = 0.7,
    negative_iou: float = 0.3,
    allow_low_quality: bool = True,
) -> AnchorLabels:
    """Faster R-CNN's anchor labels (jittable; one image).

    With :math:`u_a = \\max_g \\text{IoU}(a, g)` over the valid ground truth:

    1. positive when :math:`u_a \\ge` ``positive_iou``, or (``allow_low_quality``) when
       :math:`a` has the largest IoU of all anchors with some box :math:`g` (ties: every
       anchor reaching that IoU), that IoU being positive: every object gets an anchor;
    2. otherwise negative when :math:`u_a <` ``negative_iou``;
    3. otherwise ignored (no loss).

    The same function assigns the second stage's RoIs (``positive_iou = negative_iou = 0.5``,
    ``allow_low_quality=False``: foreground at IoU >= 0.5, background below).

    Args:
      anchors: ``(A, 4)`` xyxy.
      gt_boxes: ``(M, 4)`` xyxy, padded.
      gt_valid: ``(M,)`` bool, False for padding.
      positive_iou, negative_iou: thresholds in ``[0, 1]``, ``negative_iou <= positive_iou``.
      allow_low_quality: rule 1's second clause.

    Returns:
      An :class:`AnchorLabels`.

    Raises:
      ValueError: boxes with ``x2 < x1`` or ``y2 < y1`` (when concrete), thresholds outside ``[0, 1]``.
    """
    positive_iou = _boxes.check_iou_threshold("positive_iou", positive_iou)
    negative_iou = _boxes.check_iou_threshold("negative_iou", negative_iou)
    if not isinstance(positive_iou, jax.core.Tracer) and not isinstance(negative_iou, jax.core.Tracer):
        if negative_iou > positive_iou:
            raise ValueError(f"negative_iou: expected at most positive_iou = {positive_iou}, got {negative_iou}")
    anchors, gt_boxes = _boxes.check_boxes("anchors", anchors), _boxes.check_boxes("gt_boxes", gt_boxes)
    gt_valid = jnp.asarray(gt_valid, bool)
    if jnp.shape(gt_valid) != jnp.shape(gt_boxes)[:1]:
        raise ValueError(f"gt_valid: expected shape {jnp.shape(gt_boxes)[:1]}, got shape {jnp.shape(gt_valid)}")
    iou = jnp.where(gt_valid[None, :], _boxes.pairwise_iou(anchors, gt_boxes), -1.0)  # (A, M)
    max_iou = jnp.maximum(jnp.max(iou, axis=1), 0.0)
    matched = jnp.argmax(iou, axis=1).astype(jnp.int32)
    positive = max_iou >= positive_iou
    if allow_low_quality:  # 1., second clause.
        best_per_gt = jnp.max(iou, axis=0)  # (M,)
        positive |= jnp.any((iou == best_per_gt[None, :]) & (best_per_gt[None, :] > 0), axis=1)
    labels = jnp.where(positive, 1, jnp.where(max_iou < negative_iou, 0, -1)).astype(jnp.int32)  # 2., 3.
    return AnchorLabels(labels, matched, max_iou)


class Sample(NamedTuple):
    """What :func:`sample_balanced` returns (fixed shapes).

    Attributes:
      indices: ``(num_samples,)`` int32 indices of the drawn entries, positives first, padded with 0.
      valid: ``(num_samples,)`` bool, False for padding (fewer labelled entries than ``num_samples``).
    """

    indices: Array
    valid: Array


def sample_by_priority(
    priority: ArrayLike, labels: ArrayLike, *, num_samples: int, positive_fraction: float = 0.5
) -> Sample:
    """The balanced draw of :func:`sample_balanced` for given priorities (deterministic).

    Keeps the :math:`p = \\min(\\#\\{l = 1\\}, \\lfloor f n \\rfloor)` positives of smallest
    priority, then the :math:`\\min(\\#\\{l = 0\\}, n - p)` negatives of smallest priority
    (:math:`n` = ``num_samples``, :math:`f` = ``positive_fraction``); ignored entries
    (:math:`l = -1`) are never drawn. Ties in priority go to the lower index.

    Args:
      priority: ``(A,)`` floats (uniform noise for a random draw).
      labels: ``(A,)`` int: 1, 0 or -1.
      num_samples: :math:`n`, a positive int (the static output size).
      positive_fraction: :math:`f` in ``[0, 1]``.

    Returns:
      A :class:`Sample`.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples: expected a positive int, got {num_samples!r}")
    if not 0.0 <= float(positive_fraction) <= 1.0:
        raise ValueError(f"positive_fraction: expected a number in [0, 1], got {positive_fraction!r}")
    labels = jnp.asarray(labels)
    priority = jnp.asarray(priority, jnp.float32)
    if priority.shape != labels.shape or labels.ndim != 1:
        raise ValueError(f"priority: expected the shape of labels {labels.shape} (one per entry), got {priority.shape}")
    a = labels.shape[0]
    pos, neg = labels == 1, labels == 0
    num_pos = jnp.minimum(jnp.sum(pos), int(num_samples * positive_fraction))
    num_neg = jnp.minimum(jnp.sum(neg), num_samples - num_pos)

    def rank(mask: Array) -> Array:
        """Position of each masked entry in the order of increasing priority (A for the others)."""
        order = jnp.argsort(jnp.where(mask, priority, jnp.inf), stable=True)
        return jnp.where(mask, jnp.zeros(a, jnp.int32).at[order].set(jnp.arange(a, dtype=jnp.int32)), a)

    take_pos = rank(pos) < num_pos
    take_neg = rank(neg) < num_neg
    # Drawn positives, then drawn negatives, then the rest (stable, so by index within each).
    group = jnp.where(take_pos, 0, jnp.where(take_neg, 1, 2))
    order = jnp.argsort(group, stable=True)
    size = min(num_samples, a)
    indices, valid = order[:size].astype(jnp.int32), group[order[:size]] < 2
    indices = jnp.where(valid, indices, 0)
    if num_samples > size:
        indices = jnp.concatenate([indices, jnp.zeros((num_samples - size,), jnp.int32)])
        valid = jnp.concatenate([valid, jnp.zeros((num_samples - size,), bool)])
    return Sample(indices, valid)


def sample_balanced(key: PRNGKey, labels: ArrayLike, *, num_samples: int, positive_fraction: float = 0.5) -> Sample:
    """A uniformly random draw of ``num_samples`` labelled entries, at most a fraction positive.

    Faster R-CNN's mini-batch of anchors (256 per image, up to half positive, padded with
    negatives) and Fast R-CNN's of RoIs (128, a quarter foreground): :func:`sample_by_priority`
    with uniform priorities drawn from ``key``.
    """
    priority = jax.random.uniform(key, jnp.shape(labels))
    return sample_by_priority(priority, labels, num_samples=num_samples, positive_fraction=positive_fraction)


def sample_mask(sample: Sample, size: int) -> Array:
    """The ``(size,)`` bool mask of the entries a :class:`Sample` drew."""
    return jnp.zeros((size,), bool).at[sample.indices].max(sample.valid)
