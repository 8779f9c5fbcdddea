"""Greedy non-maximum suppression that runs under ``jit``: fixed output size and a validity mask."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.detection import _boxes
from jax231.types import Array, ArrayLike


class NmsResult(NamedTuple):
    """What :func:`nms` returns (fixed shapes, so it can be jitted and vmapped).

    Attributes:
      indices: ``(max_output_size,)`` int32 indices into the input boxes, kept boxes first in
        decreasing score (ties: lower index first), padded with 0.
      valid: ``(max_output_size,)`` bool, True for the real entries of ``indices``.
      num_valid: int32 scalar, the number of kept boxes (``valid.sum()``).
    """

    indices: Array
    valid: Array
    num_valid: Array


def _check_inputs(
    boxes: ArrayLike, scores: ArrayLike, iou_threshold: float, max_output_size: int
) -> tuple[Array, Array]:
    boxes = _boxes.check_boxes("boxes", boxes)
    if boxes.ndim != 2:
        raise ValueError(f"boxes: expected shape (N, 4), got shape {boxes.shape}")
    if jnp.shape(scores) != boxes.shape[:1]:
        raise ValueError(f"scores: expected shape ({boxes.shape[0]},) (one per box), got shape {jnp.shape(scores)}")
    _boxes.check_iou_threshold("iou_threshold", iou_threshold)
    if isinstance(max_output_size, bool) or not isinstance(max_output_size, int) or max_output_size < 1:
        raise ValueError(f"max_output_size: expected a positive int, got {max_output_size!r}")
    return boxes, jnp.asarray(scores)


def nms(
    boxes: ArrayLike,
    scores: ArrayLike,
    *,
    iou_threshold: float = 0.5,
    max_output_size: int = 100,
    score_threshold: float = -jnp.inf,
) -> NmsResult:
    """Greedy NMS: keep the best box, drop those overlapping it by more than the threshold, repeat.

    1. order the boxes by decreasing score, ties broken by increasing index (a stable sort),
       dropping those with ``score <= score_threshold``;
    2. in that order, box :math:`i` is kept unless a kept box :math:`j` before it has
       :math:`\\text{IoU}(b_i, b_j) > \\tau` (``iou_threshold``);
    3. return the first ``max_output_size`` kept boxes.

    Step 2 is one ``lax.fori_loop`` over the sorted boxes against the precomputed
    ``(N, N)`` IoU matrix, so the function is jittable, vmappable (over images of the
    same ``N``) and has fixed output shapes.

    Args:
      boxes: ``xyxy`` boxes, shape ``(N, 4)``.
      scores: shape ``(N,)``.
      iou_threshold: :math:`\\tau` in ``[0, 1]``; a box is suppressed when its IoU with a
        kept box is strictly greater.
      max_output_size: static length of the output.
      score_threshold: boxes scoring at or below it are never kept.

    Returns:
      An :class:`NmsResult`.

    Raises:
      ValueError: bad shapes, ``x2 < x1`` boxes (when concrete), a threshold outside ``[0, 1]``.

    References:
      CS231n lecture 11; ``torchvision.ops.nms``; TF's ``non_max_suppression_padded``.
    """
    boxes, scores = _check_inputs(boxes, scores, iou_threshold, max_output_size)
    n = boxes.shape[0]
    order = jnp.argsort(-scores, stable=True)  # 1.
    sorted_boxes = boxes[order]
    iou = _boxes.pairwise_iou(sorted_boxes, sorted_boxes)
    alive0 = scores[order] > score_threshold

    def body(i, alive):  # 2.
        suppress = (iou[i] > iou_threshold) & (jnp.arange(n) > i) & alive[i]
        return alive & ~suppress

    keep = lax.fori_loop(0, n, body, alive0)
    # 3. Kept positions first (stable: in score order), then the rest.
    rank = jnp.argsort(~keep, stable=True)
    size = min(max_output_size, n)
    picked = order[rank[:size]]
    valid = keep[rank[:size]]
    pad = max_output_size - size
    indices = jnp.where(valid, picked, 0).astype(jnp.int32)
    if pad:
        indices = jnp.concatenate([indices, jnp.zeros((pad,), jnp.int32)])
        valid = jnp.concatenate([valid, jnp.zeros((pad,), bool)])
    return NmsResult(indices, valid, jnp.sum(valid).astype(jnp.int32))


def batched_nms(
    boxes: ArrayLike,
    scores: ArrayLike,
    classes: ArrayLike,
    *,
    iou_threshold: float = 0.5,
    max_output_size: int = 100,
    score_threshold: float = -jnp.inf,
) -> NmsResult:
    """Class-wise NMS: boxes of different classes never suppress each other.

    Implemented as one :func:`nms` over boxes shifted by ``class * (max coordinate + 1)``
    along both axes, so boxes of two classes cannot overlap (torchvision's trick); the
    result equals running :func:`nms` per class and merging by score.

    Args:
      boxes: ``xyxy`` boxes, shape ``(N, 4)``, non-negative coordinates.
      scores: shape ``(N,)``.
      classes: integer class of each box, shape ``(N,)``.
      iou_threshold, max_output_size, score_threshold: as in :func:`nms`.

    Returns:
      An :class:`NmsResult` over the input indices.
    """
    boxes, scores = _check_inputs(boxes, scores, iou_threshold, max_output_size)
    if jnp.shape(classes) != boxes.shape[:1]:
        raise ValueError(f"classes: expected shape ({boxes.shape[0]},) (one per box), got shape {jnp.shape(classes)}")
    span = jnp.max(jnp.abs(boxes)) + 1.0
    shifted = boxes + (jnp.asarray(classes).astype(boxes.dtype) * span)[:, None]
    return nms(
        shifted, scores, iou_threshold=iou_threshold, max_output_size=max_output_size, score_threshold=score_threshold
    )


nms_jit = jax.jit(nms, static_argnames=("max_output_size",))
"""``jax.jit(nms)`` with ``max_output_size`` static (the threshold enters as data)."""
