"""The region proposal network's loss and its proposals (decode, clip, NMS, top-K with a mask).

An RPN predicts, for every anchor :math:`a`, an objectness logit :math:`z_a` and offsets
:math:`t_a = (t_x, t_y, t_w, t_h)` in the R-CNN parameterisation of
:func:`jax231.detection.encode_boxes`:

.. math:: t_x = (x - x_a)/w_a,\\quad t_y = (y - y_a)/h_a,\\quad t_w = \\log(w/w_a),\\quad t_h = \\log(h/h_a).

Its loss over the :math:`n` sampled anchors :math:`S` of an image (labels
:math:`p_a^* \\in \\{0, 1\\}` of :func:`jax231.detection.label_anchors`) is

.. math:: L_\\text{rpn} = \\frac{1}{n}\\sum_{a \\in S} \\text{BCE}(z_a, p_a^*)
          + \\lambda\\,\\frac{1}{n}\\sum_{a \\in S} p_a^*\\,\\text{smooth}_{L_1}(t_a - t_a^*)

(torchvision's normalisation of Faster R-CNN's eq. (1): both terms over the sampled anchors).

References:
  Ren et al., "Faster R-CNN", 2015, eq. (1)-(2); CS231n lecture 11.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.detection import _anchors, _boxes, _localization, _nms
from jax231.types import Array, ArrayLike, PRNGKey

MAX_LOG_SCALE = math.log(1000.0 / 16)
"""Clip of :math:`t_w, t_h` before ``exp`` when decoding (torchvision's ``bbox_xform_clip``)."""


def decode_clipped(offsets: ArrayLike, anchors: ArrayLike, *, image_size: float, weights=(1.0, 1.0, 1.0, 1.0)) -> Array:
    """:func:`jax231.detection.decode_boxes` with :math:`t_w, t_h \\le` :data:`MAX_LOG_SCALE`,
    the boxes clipped to the ``[0, image_size]^2`` image."""
    t = jnp.asarray(offsets)
    t = jnp.concatenate([t[..., :2], jnp.minimum(t[..., 2:], MAX_LOG_SCALE * jnp.asarray(weights[2:]))], -1)
    return jnp.clip(_boxes.decode_boxes(t, anchors, weights=weights), 0.0, float(image_size))


class RpnTargets(NamedTuple):
    """The RPN's training targets of one image (fixed shapes).

    Attributes:
      labels: ``(A,)`` int32: 1 / 0 for the sampled positive / negative anchors, -1 elsewhere.
      offsets: ``(A, 4)`` :math:`t^*` of every anchor towards its matched box (used where positive).
    """

    labels: Array
    offsets: Array


def rpn_targets(
    key: PRNGKey,
    anchors: ArrayLike,
    gt_boxes: ArrayLike,
    gt_valid: ArrayLike,
    *,
    num_samples: int = 256,
    positive_fraction: float = 0.5,
    positive_iou: float = 0.7,
    negative_iou: float = 0.3,
) -> RpnTargets:
    """Labels (:func:`~jax231.detection.label_anchors`), a balanced draw of ``num_samples`` anchors
    (:func:`~jax231.detection.sample_balanced`) and the offsets :math:`t^*` to the matched boxes."""
    anchors = jnp.asarray(anchors)
    lab = _anchors.label_anchors(
        anchors, gt_boxes, gt_valid, positive_iou=positive_iou, negative_iou=negative_iou, allow_low_quality=True
    )
    drawn = _anchors.sample_balanced(key, lab.labels, num_samples=num_samples, positive_fraction=positive_fraction)
    labels = jnp.where(_anchors.sample_mask(drawn, anchors.shape[0]), lab.labels, -1)
    matched = jnp.asarray(gt_boxes)[lab.matched]
    # Unmatched anchors get their own box as target (offset 0, never used): no log(0) in the encoding.
    matched = jnp.where((lab.labels == 1)[:, None], matched, anchors)
    return RpnTargets(labels, _boxes.encode_boxes(matched, anchors))


def rpn_loss(
    logits: ArrayLike, offsets: ArrayLike, targets: RpnTargets, *, box_weight: float = 1.0, beta: float = 1.0 / 9
) -> dict[str, Array]:
    """The two terms of :math:`L_\\text{rpn}` for a batch, each ``(N,)``.

    Args:
      logits: ``(N, A)`` objectness logits :math:`z`.
      offsets: ``(N, A, 4)`` predicted :math:`t`.
      targets: :class:`RpnTargets` with a leading batch axis.
      box_weight: :math:`\\lambda`.
      beta: the smooth-L1 transition (torchvision's 1/9).

    Returns:
      ``{'rpn_objectness': (N,), 'rpn_box': (N,)}`` (the box term already weighted by :math:`\\lambda`).
    """
    z, t = jnp.asarray(logits), jnp.asarray(offsets)
    if z.ndim != 2 or t.shape != z.shape + (4,):
        raise ValueError(f"offsets: expected shape {z.shape + (4,)} for logits of shape {z.shape}, got {t.shape}")
    sampled = (targets.labels >= 0).astype(z.dtype)
    positive = (targets.labels == 1).astype(z.dtype)
    n = jnp.maximum(jnp.sum(sampled, axis=1), 1.0)
    bce = positive * jax.nn.softplus(-z) + (1.0 - positive) * jax.nn.softplus(z)
    objectness = jnp.sum(sampled * bce, axis=1) / n
    box_terms = jnp.where(positive[..., None] > 0, _localization.smooth_l1(t - targets.offsets, beta=beta), 0.0)
    box = jnp.sum(box_terms, axis=(1, 2)) / n
    return {"rpn_objectness": objectness, "rpn_box": box_weight * box}


class Proposals(NamedTuple):
    """The proposals of one image (or a batch, with a leading axis), fixed size ``K``.

    Attributes:
      boxes: ``(K, 4)`` xyxy pixels, clipped to the image (0 for padding).
      scores: ``(K,)`` objectness logits, in decreasing order (``-inf`` for padding).
      valid: ``(K,)`` bool.
    """

    boxes: Array
    scores: Array
    valid: Array


def propose(
    logits: ArrayLike,
    offsets: ArrayLike,
    anchors: ArrayLike,
    *,
    image_size: float,
    pre_nms_top_n: int,
    post_nms_top_n: int,
    iou_threshold: float = 0.7,
    min_size: float = 1.0,
) -> Proposals:
    """Proposals of one image: top-scoring anchors, decoded, clipped, NMS'd, fixed size (jittable).

    1. keep the ``pre_nms_top_n`` anchors of largest objectness :math:`z_a`;
    2. decode their offsets (:func:`decode_clipped`) and clip to the image;
    3. drop boxes narrower or lower than ``min_size`` pixels;
    4. greedy NMS (:func:`jax231.detection.nms`) at ``iou_threshold``, keeping at most
       ``post_nms_top_n``, padded with a validity mask.

    Args:
      logits: ``(A,)`` objectness logits.
      offsets: ``(A, 4)`` offsets :math:`t`.
      anchors: ``(A, 4)`` xyxy.
      image_size: side of the square image (pixels).
      pre_nms_top_n, post_nms_top_n: static sizes.
      iou_threshold: NMS threshold in ``[0, 1]`` (Faster R-CNN: 0.7).
      min_size: smallest kept side.

    Returns:
      A :class:`Proposals` of size ``post_nms_top_n``.
    """
    _boxes.check_iou_threshold("iou_threshold", iou_threshold)
    z, anchors = jnp.asarray(logits), jnp.asarray(anchors)
    k = min(int(pre_nms_top_n), z.shape[0])
    if k < 1:
        raise ValueError(f"pre_nms_top_n: expected a positive int, got {pre_nms_top_n!r}")
    top_scores, top = lax.top_k(z, k)  # 1.
    boxes = decode_clipped(jnp.asarray(offsets)[top], anchors[top], image_size=image_size)  # 2.
    big = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)  # 3.
    scores = jnp.where(big, top_scores, -jnp.inf)
    kept = _nms.nms(boxes, scores, iou_threshold=iou_threshold, max_output_size=post_nms_top_n)  # 4.
    return Proposals(
        jnp.where(kept.valid[:, None], boxes[kept.indices], 0.0),
        jnp.where(kept.valid, scores[kept.indices], -jnp.inf),
        kept.valid,
    )
