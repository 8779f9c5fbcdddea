"""The YOLO grid: decoding raw outputs into boxes, the training targets and loss, and detection.

A grid detector (:func:`jax231.models.grid_detector`) outputs per cell ``(i, j)`` of an
``S x S`` grid ``B`` boxes of 5 numbers and ``C`` class scores. Box :math:`b` of cell
:math:`(i, j)` of a :math:`D`-pixel image (cell side :math:`c = D/S`) is

.. math:: c_x = c\\,(j + \\sigma(t_x)),\\quad c_y = c\\,(i + \\sigma(t_y)),\\quad
          w = D\\,\\sigma(t_w)^2,\\quad h = D\\,\\sigma(t_h)^2,\\quad \\text{conf} = \\sigma(t_o)

(YOLOv1 regresses :math:`\\sqrt{w/D}`: small boxes get a larger share of the loss); the
class distribution is ``softmax`` of the cell's ``C`` scores, and a box's score is
:math:`\\text{conf}\\cdot\\max_c p(c)`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax231.detection import _boxes, _nms
from jax231.types import Array, ArrayLike


class GridBoxes(NamedTuple):
    """Decoded grid: ``boxes (..., S, S, B, 4)`` xyxy pixels, ``confidence (..., S, S, B)``,
    ``class_probs (..., S, S, C)``."""

    boxes: Array
    confidence: Array
    class_probs: Array


def _split(raw: ArrayLike, boxes_per_cell: int, num_classes: int) -> tuple[Array, Array]:
    raw = jnp.asarray(raw)
    if raw.ndim < 3 or raw.shape[-1] != 5 * boxes_per_cell + num_classes or raw.shape[-2] != raw.shape[-3]:
        raise ValueError(
            f"raw: expected shape (..., S, S, 5B + C) = (..., S, S, {5 * boxes_per_cell + num_classes}), "
            f"got shape {raw.shape}"
        )
    box_part = raw[..., : 5 * boxes_per_cell].reshape(raw.shape[:-1] + (boxes_per_cell, 5))
    return box_part, raw[..., 5 * boxes_per_cell :]


def decode_grid(raw: ArrayLike, *, image_size: int, boxes_per_cell: int, num_classes: int) -> GridBoxes:
    """Boxes, confidences and class probabilities of a raw ``(..., S, S, 5B + C)`` grid."""
    box_part, class_part = _split(raw, boxes_per_cell, num_classes)
    s = box_part.shape[-3]
    cell = image_size / s
    sig = jax.nn.sigmoid(box_part)
    cols = jnp.arange(s, dtype=sig.dtype)[None, :, None]
    rows = jnp.arange(s, dtype=sig.dtype)[:, None, None]
    cx, cy = cell * (cols + sig[..., 0]), cell * (rows + sig[..., 1])
    w, h = image_size * sig[..., 2] ** 2, image_size * sig[..., 3] ** 2
    boxes = _boxes.convert_boxes(jnp.stack([cx, cy, w, h], -1), source="cxcywh", target="xyxy")
    return GridBoxes(boxes, sig[..., 4], jax.nn.softmax(class_part, axis=-1))


class YoloLossWeights(NamedTuple):
    """Weights of the YOLOv1 loss terms (the paper's :math:`\\lambda_\\text{coord} = 5`,
    :math:`\\lambda_\\text{noobj} = 0.5`)."""

    coord: float = 5.0
    noobj: float = 0.5
    obj: float = 1.0
    cls: float = 1.0


def _xlogx(v: Array) -> Array:
    return jnp.where(v > 0, v * jnp.log(jnp.where(v > 0, v, 1.0)), 0.0)


def _binary_kl(target: Array, logit: Array) -> Array:
    """KL(Bern(q) || Bern(sigmoid(z))): the binary cross-entropy less the entropy of ``q``."""
    q = jnp.clip(target, 0.0, 1.0)
    return q * jax.nn.softplus(-logit) + (1.0 - q) * jax.nn.softplus(logit) + _xlogx(q) + _xlogx(1.0 - q)


def _image_loss(raw, gt_boxes, gt_classes, *, image_size, boxes_per_cell, num_classes, weights):
    box_part, class_part = _split(raw, boxes_per_cell, num_classes)
    s = box_part.shape[0]
    cell = image_size / s
    decoded = decode_grid(raw, image_size=image_size, boxes_per_cell=boxes_per_cell, num_classes=num_classes)
    sig = jax.nn.sigmoid(box_part)
    # 1. Each object belongs to the cell holding its centre ...
    valid = gt_classes >= 0
    centre = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    size = jnp.clip(gt_boxes[:, 2:] - gt_boxes[:, :2], 1e-6)
    j = jnp.clip(jnp.floor(centre[:, 0] / cell), 0, s - 1).astype(jnp.int32)
    i = jnp.clip(jnp.floor(centre[:, 1] / cell), 0, s - 1).astype(jnp.int32)
    # 2. ... and to the predictor of that cell whose box overlaps it most (no gradient).
    cand = jax.lax.stop_gradient(decoded.boxes[i, j])  # (M, B, 4)
    ious = jax.vmap(lambda c, g: _boxes.pairwise_iou(c, g[None])[:, 0])(cand, gt_boxes)  # (M, B)
    b = jnp.argmax(ious, axis=-1)
    best_iou = jnp.take_along_axis(ious, b[:, None], axis=1)[:, 0]
    i = jnp.where(valid, i, s)  # Out of range: dropped by the scatters below.
    target = jnp.stack(
        [
            centre[:, 0] / cell - j,
            centre[:, 1] / cell - jnp.clip(i, 0, s - 1),
            jnp.sqrt(size[:, 0] / image_size),
            jnp.sqrt(size[:, 1] / image_size),
        ],
        -1,
    )
    responsible = jnp.zeros((s, s, boxes_per_cell)).at[i, j, b].set(1.0, mode="drop")
    box_target = jnp.zeros((s, s, boxes_per_cell, 4)).at[i, j, b].set(target, mode="drop")
    iou_target = jnp.zeros((s, s, boxes_per_cell)).at[i, j, b].set(best_iou, mode="drop")
    has_object = jnp.zeros((s, s)).at[i, j].set(1.0, mode="drop")
    class_target = jnp.zeros((s, s), jnp.int32).at[i, j].set(gt_classes, mode="drop")
    # 3. The four terms.
    coord = jnp.sum(responsible[..., None] * (sig[..., :4] - box_target) ** 2)
    # Objectness as a cross-entropy on the logit t_o (less the target's entropy, so a perfect
    # prediction costs 0): its gradient sigma(t_o) - target does not vanish when the sigmoid
    # saturates. With YOLOv1's squared error (sigma(t_o) - IoU)^2 every confidence of a
    # 3,000-update run saturated at 0 while the early boxes had IoU ~ 0 (mAP 0.00).
    t_o = box_part[..., 4]
    obj = jnp.sum(responsible * _binary_kl(iou_target, t_o))
    noobj = jnp.sum((1.0 - responsible) * jax.nn.softplus(t_o))
    log_p = jax.nn.log_softmax(class_part, axis=-1)
    cls = -jnp.sum(has_object * jnp.take_along_axis(log_p, class_target[..., None], axis=-1)[..., 0])
    total = weights.coord * coord + weights.obj * obj + weights.noobj * noobj + weights.cls * cls
    return total, {"coord": coord, "obj": obj, "noobj": noobj, "class": cls}


def yolo_loss(
    raw: ArrayLike,
    gt_boxes: ArrayLike,
    gt_classes: ArrayLike,
    *,
    image_size: int,
    boxes_per_cell: int,
    num_classes: int,
    weights: YoloLossWeights | None = None,
) -> tuple[Array, dict[str, Array]]:
    """The YOLOv1 multi-part loss, per image, for padded ground-truth lists.

    With :math:`\\mathbb 1_{ijb}` = 1 when box :math:`b` of cell :math:`(i, j)` is responsible
    for an object (its centre lies in the cell and that box has the largest IoU with it):

    .. math:: L = \\lambda_\\text{coord}\\sum \\mathbb 1_{ijb}\\big[(\\sigma(t_x) - \\hat x)^2 +
              (\\sigma(t_y) - \\hat y)^2 + (\\sigma(t_w) - \\sqrt{\\hat w})^2 + (\\sigma(t_h) - \\sqrt{\\hat h})^2\\big]
              + \\sum \\mathbb 1_{ijb}\\,\\mathrm{KL}(\\text{IoU}\\,\\|\\,\\text{conf})
              - \\lambda_\\text{noobj}\\sum (1 - \\mathbb 1_{ijb})\\log(1 - \\text{conf})
              - \\sum_{ij \\ni \\text{obj}} \\log p_{ij}(\\hat c)

    (:math:`\\hat x, \\hat y` the centre's offset in its cell, :math:`\\hat w, \\hat h` the
    size as fractions of the image; the class and objectness terms are cross-entropies where
    YOLOv1 used squared errors: with :math:`(\\text{conf} - \\text{IoU})^2` on a sigmoid the
    confidences saturated at 0 on the digit canvases and never recovered; KL is the binary
    cross-entropy minus the target's entropy, 0 at :math:`\\text{conf} = \\text{IoU}`).

    Args:
      raw: ``(N, S, S, 5B + C)`` model output.
      gt_boxes: ``(N, M, 4)`` xyxy pixels, padded.
      gt_classes: ``(N, M)`` int, ``-1`` for padding.
      image_size: side :math:`D` of the square images.
      boxes_per_cell, num_classes: :math:`B` and :math:`C`.
      weights: the :math:`\\lambda` s (default :class:`YoloLossWeights` ``()``).

    Returns:
      ``(per-image loss (N,), {term: (N,)})``.

    References:
      Redmon et al., "You Only Look Once", 2016, eq. (3).
    """
    if jnp.ndim(gt_boxes) != 3 or jnp.shape(gt_boxes)[-1] != 4:
        raise ValueError(f"gt_boxes: expected shape (N, M, 4), got shape {jnp.shape(gt_boxes)}")
    if jnp.shape(gt_classes) != jnp.shape(gt_boxes)[:2]:
        raise ValueError(f"gt_classes: expected shape {jnp.shape(gt_boxes)[:2]}, got shape {jnp.shape(gt_classes)}")
    weights = YoloLossWeights() if weights is None else weights
    fn = jax.vmap(
        lambda r, g, c: _image_loss(
            r, g, c, image_size=image_size, boxes_per_cell=boxes_per_cell, num_classes=num_classes, weights=weights
        )
    )
    return fn(jnp.asarray(raw), jnp.asarray(gt_boxes, jnp.float32), jnp.asarray(gt_classes, jnp.int32))


class DetectionOutput(NamedTuple):
    """Detections of a batch, fixed size: ``boxes (N, K, 4)``, ``scores (N, K)``,
    ``labels (N, K)``, ``valid (N, K)`` (False for padding)."""

    boxes: Array
    scores: Array
    labels: Array
    valid: Array


def detect(
    raw: ArrayLike,
    *,
    image_size: int,
    boxes_per_cell: int,
    num_classes: int,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.01,
    max_detections: int = 20,
) -> DetectionOutput:
    """Decoded grid -> class-wise NMS -> the top ``max_detections`` boxes of each image (jittable)."""
    _boxes.check_iou_threshold("iou_threshold", iou_threshold)
    grid = decode_grid(raw, image_size=image_size, boxes_per_cell=boxes_per_cell, num_classes=num_classes)
    n = grid.boxes.shape[0]
    boxes = grid.boxes.reshape(n, -1, 4)
    labels = jnp.broadcast_to(jnp.argmax(grid.class_probs, -1)[..., None], grid.confidence.shape).reshape(n, -1)
    scores = (grid.confidence * jnp.max(grid.class_probs, -1)[..., None]).reshape(n, -1)
    boxes = jnp.clip(boxes, 0.0, float(image_size))

    def one(b, s, c):
        kept = _nms.batched_nms(
            b, s, c, iou_threshold=iou_threshold, max_output_size=max_detections, score_threshold=score_threshold
        )
        return b[kept.indices], s[kept.indices], c[kept.indices], kept.valid

    return DetectionOutput(*jax.vmap(one)(boxes, scores, labels))
