"""The second stage of Faster R-CNN: RoI targets, the Fast R-CNN loss and the final detections.

Each sampled RoI :math:`r` (a proposal, or a ground-truth box added to them) gets a class
:math:`u_r \\in \\{0, 1..C\\}` (0 = background: IoU < 0.5 with every object) and, when
foreground, the offsets :math:`v_r` of its matched box in the parameterisation of
:func:`jax231.detection.encode_boxes` scaled by ``(10, 10, 5, 5)``. The head predicts class
scores :math:`s_r` (``C + 1``) and class-specific offsets :math:`t_r^c`; the multi-task loss is

.. math:: L_\\text{det} = \\frac{1}{n}\\sum_r -\\log \\text{softmax}(s_r)_{u_r}
          + \\lambda\\,\\frac{1}{n}\\sum_{r: u_r \\ge 1} \\text{smooth}_{L_1}(t_r^{u_r} - v_r)

over the :math:`n` sampled RoIs of an image (Fast R-CNN eq. (1), torchvision's normalisation).

References:
  Girshick, "Fast R-CNN", 2015, section 2.3; Ren et al., "Faster R-CNN", 2015; CS231n lecture 11.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax231.detection import _anchors, _boxes, _localization, _nms, _rpn
from jax231.detection._yolo import DetectionOutput
from jax231.types import Array, ArrayLike, PRNGKey

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
"""Scale of the second stage's offsets (Faster R-CNN / torchvision ``BoxCoder(weights)``)."""


class RoiTargets(NamedTuple):
    """Sampled RoIs of one image and their targets (fixed size ``R``).

    Attributes:
      boxes: ``(R, 4)`` xyxy RoIs (proposals or ground-truth boxes).
      classes: ``(R,)`` int32: 0 background, ``c + 1`` for class ``c``, -1 for padding.
      offsets: ``(R, 4)`` :math:`v` towards the matched box (scaled by :data:`BOX_WEIGHTS`).
    """

    boxes: Array
    classes: Array
    offsets: Array


def roi_targets(
    key: PRNGKey,
    proposals: _rpn.Proposals,
    gt_boxes: ArrayLike,
    gt_classes: ArrayLike,
    *,
    num_rois: int = 128,
    positive_fraction: float = 0.25,
    foreground_iou: float = 0.5,
) -> RoiTargets:
    """Proposal-target assignment of one image (jittable, fixed shapes).

    1. candidates: the ``K`` proposals and the ``M`` ground-truth boxes (so each object has
       at least one foreground RoI from the first update on); padding is excluded;
    2. a candidate is foreground (class of the matched box) at IoU >= ``foreground_iou``
       with some object, background below (:func:`~jax231.detection.label_anchors`);
    3. a balanced draw of ``num_rois``, at most ``positive_fraction`` foreground
       (:func:`~jax231.detection.sample_balanced`), padded with class -1.

    Args:
      key: the draw's key.
      proposals: one image's :class:`~jax231.detection.Proposals` (no gradient flows into them).
      gt_boxes: ``(M, 4)`` xyxy, padded; gt_classes: ``(M,)`` int, -1 for padding.
      num_rois: ``R``; positive_fraction: the foreground share; foreground_iou: in ``[0, 1]``.

    Returns:
      A :class:`RoiTargets`.
    """
    _boxes.check_iou_threshold("foreground_iou", foreground_iou)
    gt_boxes, gt_classes = _boxes.check_boxes("gt_boxes", gt_boxes), jnp.asarray(gt_classes)
    if gt_classes.shape != gt_boxes.shape[:1]:
        raise ValueError(f"gt_classes: expected shape {gt_boxes.shape[:1]} (one per box), got {gt_classes.shape}")
    gt_valid = gt_classes >= 0
    boxes = jnp.concatenate([proposals.boxes, gt_boxes])  # 1.
    lab = _anchors.label_anchors(
        boxes, gt_boxes, gt_valid, positive_iou=foreground_iou, negative_iou=foreground_iou, allow_low_quality=False
    )
    # Empty boxes (a padded example's zeros) are never candidates: their offsets would be log(0).
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    candidate = jnp.concatenate([proposals.valid, gt_valid]) & (area > 0)
    labels = jnp.where(candidate, lab.labels, -1)  # 2.
    drawn = _anchors.sample_balanced(key, labels, num_samples=num_rois, positive_fraction=positive_fraction)  # 3.
    rois = boxes[drawn.indices]
    foreground = labels[drawn.indices] == 1
    classes = jnp.where(foreground, gt_classes[lab.matched[drawn.indices]] + 1, 0)
    classes = jnp.where(drawn.valid, classes, -1).astype(jnp.int32)
    # Background and padding RoIs get their own box as target (offset 0, never used): no log(0).
    matched = jnp.where(foreground[:, None], gt_boxes[lab.matched[drawn.indices]], rois)
    safe_rois = jnp.where(drawn.valid[:, None], rois, jnp.array([0.0, 0.0, 1.0, 1.0]))
    matched = jnp.where(drawn.valid[:, None], matched, safe_rois)
    return RoiTargets(safe_rois, classes, _boxes.encode_boxes(matched, safe_rois, weights=BOX_WEIGHTS))


def detection_head_loss(
    class_logits: ArrayLike,
    box_offsets: ArrayLike,
    targets: RoiTargets,
    *,
    box_weight: float = 1.0,
    beta: float = 1.0 / 9,
) -> dict[str, Array]:
    """The two terms of :math:`L_\\text{det}` for a batch, each ``(N,)``.

    Args:
      class_logits: ``(N, R, C + 1)`` scores :math:`s` (index 0 = background).
      box_offsets: ``(N, R, C, 4)`` class-specific :math:`t^c`.
      targets: :class:`RoiTargets` with a leading batch axis.
      box_weight: :math:`\\lambda`; beta: the smooth-L1 transition.

    Returns:
      ``{'roi_class': (N,), 'roi_box': (N,)}`` (the box term already weighted by :math:`\\lambda`).
    """
    s, t = jnp.asarray(class_logits), jnp.asarray(box_offsets)
    if s.ndim != 3 or t.shape != s.shape[:2] + (s.shape[2] - 1, 4):
        raise ValueError(
            f"box_offsets: expected shape {s.shape[:2] + (s.shape[-1] - 1, 4)} for class_logits of shape "
            f"{s.shape}, got {t.shape}"
        )
    u = targets.classes
    sampled = (u >= 0).astype(s.dtype)
    foreground = (u >= 1).astype(s.dtype)
    n = jnp.maximum(jnp.sum(sampled, axis=1), 1.0)
    log_p = jax.nn.log_softmax(s, axis=-1)
    nll = -jnp.take_along_axis(log_p, jnp.maximum(u, 0)[..., None], axis=-1)[..., 0]
    cls = jnp.sum(sampled * nll, axis=1) / n
    t_u = jnp.take_along_axis(t, jnp.maximum(u - 1, 0)[..., None, None], axis=2)[:, :, 0]  # (N, R, 4)
    box_terms = jnp.where(foreground[..., None] > 0, _localization.smooth_l1(t_u - targets.offsets, beta=beta), 0.0)
    box = jnp.sum(box_terms, axis=(1, 2)) / n
    return {"roi_class": cls, "roi_box": box_weight * box}


def detect_rois(
    proposals: _rpn.Proposals,
    class_logits: ArrayLike,
    box_offsets: ArrayLike,
    *,
    image_size: float,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.05,
    max_detections: int = 20,
) -> DetectionOutput:
    """Final detections of a batch: per proposal and class, a refined box and a score, class-wise NMS.

    1. :math:`p = \\text{softmax}(s)`; every (proposal, class :math:`c \\ge 1`) pair is a candidate
       with score :math:`p_c` and box decoded from :math:`t^c` (scaled by :data:`BOX_WEIGHTS`),
       clipped to the image; padding proposals score 0;
    2. candidates scoring at or below ``score_threshold`` are dropped;
    3. class-wise NMS (:func:`~jax231.detection.batched_nms`) keeps at most ``max_detections``.

    Args:
      proposals: :class:`~jax231.detection.Proposals` with a leading batch axis ``(N, K, ...)``.
      class_logits: ``(N, K, C + 1)``; box_offsets: ``(N, K, C, 4)``.
      image_size: side of the square images.
      iou_threshold, score_threshold, max_detections: as in :func:`~jax231.detection.batched_nms`.

    Returns:
      A :class:`~jax231.detection.DetectionOutput` (labels ``0..C-1``).
    """
    _boxes.check_iou_threshold("iou_threshold", iou_threshold)
    s, t = jnp.asarray(class_logits), jnp.asarray(box_offsets)
    num_classes = s.shape[-1] - 1

    def one(boxes, valid, logits, offsets):
        p = jax.nn.softmax(logits, axis=-1)[:, 1:]  # 1. (K, C)
        p = jnp.where(valid[:, None], p, 0.0)
        refined = _rpn.decode_clipped(offsets, boxes[:, None, :], image_size=image_size, weights=BOX_WEIGHTS)
        labels = jnp.broadcast_to(jnp.arange(num_classes, dtype=jnp.int32), p.shape)
        b, sc, c = refined.reshape(-1, 4), p.reshape(-1), labels.reshape(-1)
        kept = _nms.batched_nms(  # 2., 3.
            b, sc, c, iou_threshold=iou_threshold, max_output_size=max_detections, score_threshold=score_threshold
        )
        return b[kept.indices], sc[kept.indices], c[kept.indices], kept.valid

    safe = jnp.where(proposals.valid[..., None], proposals.boxes, jnp.array([0.0, 0.0, 1.0, 1.0]))
    return DetectionOutput(*jax.vmap(one)(safe, proposals.valid, s, t))
