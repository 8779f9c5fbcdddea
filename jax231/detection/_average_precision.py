"""Mean average precision of detections: VOC AP@0.5 (11-point, all-point) and COCO AP@[.5:.95].

Evaluation runs on the host in NumPy over per-image lists (detections are few and ragged).
Per image: ``Detections(boxes (K, 4) xyxy, scores (K,), labels (K,))`` and
``GroundTruth(boxes (G, 4) xyxy, labels (G,))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from jax231.detection import _boxes

COCO_IOU_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2).tolist())
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
VOC_METHODS = ("11_point", "all_point")


class Detections(NamedTuple):
    """The detections of one image: ``boxes (K, 4)`` xyxy, ``scores (K,)``, ``labels (K,)`` int."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


class GroundTruth(NamedTuple):
    """The objects of one image: ``boxes (G, 4)`` xyxy and ``labels (G,)`` int."""

    boxes: np.ndarray
    labels: np.ndarray


class CocoResult(NamedTuple):
    """COCO box metrics (area range 'all').

    Attributes:
      map: AP averaged over the IoU thresholds 0.50:0.05:0.95 and the classes.
      ap50: AP at IoU 0.5; ``ap75``: at 0.75.
      per_threshold: ``{threshold: AP over classes}``.
      per_class: ``{class: AP over thresholds}`` for classes with ground truth.
    """

    map: float
    ap50: float
    ap75: float
    per_threshold: dict
    per_class: dict


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU in float64 NumPy (the metric must not round at a threshold in float32)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _check_lists(detections: Sequence[Detections], ground_truths: Sequence[GroundTruth]) -> None:
    if len(detections) != len(ground_truths):
        raise ValueError(f"detections: expected one entry per image ({len(ground_truths)}), got {len(detections)}")
    for i, (d, g) in enumerate(zip(detections, ground_truths)):
        _boxes.check_boxes(f"detections[{i}].boxes", np.asarray(d.boxes, np.float64).reshape(-1, 4))
        _boxes.check_boxes(f"ground_truths[{i}].boxes", np.asarray(g.boxes, np.float64).reshape(-1, 4))
        if not len(d.boxes) == len(d.scores) == len(d.labels):
            raise ValueError(
                f"detections[{i}]: expected as many boxes, scores and labels, got "
                f"{len(d.boxes)}, {len(d.scores)}, {len(d.labels)}"
            )
        if len(g.boxes) != len(g.labels):
            raise ValueError(
                f"ground_truths[{i}]: expected as many boxes as labels, got {len(g.boxes)}, {len(g.labels)}"
            )


def voc_average_precision(recall: np.ndarray, precision: np.ndarray, *, method: str = "all_point") -> float:
    """Area under a precision-recall curve, the PASCAL VOC way.

    * ``'11_point'`` (VOC2007): :math:`AP = \\frac{1}{11}\\sum_{t \\in \\{0, 0.1, ..., 1\\}}
      \\max_{r \\ge t} p(r)` (0 when no recall reaches :math:`t`);
    * ``'all_point'`` (VOC2010+): the area under the monotone envelope
      :math:`\\hat p(r) = \\max_{r' \\ge r} p(r')`, summed over the recall steps.

    Args:
      recall: cumulative recall of the ranked detections, shape ``(K,)``.
      precision: cumulative precision, shape ``(K,)``.
      method: ``'11_point'`` or ``'all_point'``.

    Returns:
      AP in ``[0, 1]``.

    References:
      Everingham et al., "The PASCAL VOC Challenge", 2010, section 4.2.
    """
    if method not in VOC_METHODS:
        raise ValueError(f"method: expected one of {VOC_METHODS}, got {method!r}")
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if method == "11_point":
        points = [precision[recall >= t].max() if np.any(recall >= t) else 0.0 for t in np.linspace(0, 1, 11)]
        return float(np.mean(points))
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def _voc_class_ap(detections, ground_truths, cls: int, iou_threshold: float, method: str) -> float | None:
    """VOC matching: each detection (by decreasing score) takes the gt of largest IoU; TP if that
    IoU exceeds the threshold and the gt is not yet taken, else FP."""
    num_gt = sum(int(np.sum(np.asarray(g.labels) == cls)) for g in ground_truths)
    if num_gt == 0:
        return None
    records = []  # (score, image, box)
    for i, d in enumerate(detections):
        for k in np.nonzero(np.asarray(d.labels) == cls)[0]:
            records.append((float(d.scores[k]), i, np.asarray(d.boxes[k], np.float64)))
    order = np.argsort([-r[0] for r in records], kind="stable")
    taken = {i: np.zeros(int(np.sum(np.asarray(g.labels) == cls)), bool) for i, g in enumerate(ground_truths)}
    tp = np.zeros(len(records))
    for rank, j in enumerate(order):
        _, i, box = records[j]
        gt = np.asarray(ground_truths[i].boxes, np.float64)[np.asarray(ground_truths[i].labels) == cls]
        if len(gt) == 0:
            continue
        ious = _iou(box, gt)[0]
        best = int(np.argmax(ious))
        if ious[best] > iou_threshold and not taken[i][best]:
            tp[rank], taken[i][best] = 1.0, True
    ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = ctp / num_gt
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    return voc_average_precision(recall, precision, method=method)


def voc_map(
    detections: Sequence[Detections],
    ground_truths: Sequence[GroundTruth],
    *,
    iou_threshold: float = 0.5,
    method: str = "all_point",
) -> tuple[float, dict]:
    """PASCAL VOC mean AP: the mean over classes with ground truth of :func:`voc_average_precision`.

    Args:
      detections: one :class:`Detections` per image.
      ground_truths: one :class:`GroundTruth` per image.
      iou_threshold: a detection is a true positive when its IoU with the best gt exceeds it.
      method: ``'11_point'`` or ``'all_point'``.

    Returns:
      ``(mAP, {class: AP})``.
    """
    _check_lists(detections, ground_truths)
    _boxes.check_iou_threshold("iou_threshold", iou_threshold)
    classes = sorted({int(c) for g in ground_truths for c in np.asarray(g.labels)})
    per_class = {c: _voc_class_ap(detections, ground_truths, c, iou_threshold, method) for c in classes}
    return (float(np.mean(list(per_class.values()))) if per_class else 0.0), per_class


def _coco_image_matches(det_boxes, det_scores, gt_boxes, thresholds, max_detections):
    """COCOeval.evaluateImg for one image and class: greedy matching per IoU threshold."""
    order = np.argsort(-det_scores, kind="mergesort")[:max_detections]
    det_boxes, det_scores = det_boxes[order], det_scores[order]
    ious = _iou(det_boxes, gt_boxes) if len(det_boxes) and len(gt_boxes) else np.zeros((len(det_boxes), len(gt_boxes)))
    matched = np.zeros((len(thresholds), len(det_boxes)), bool)
    for t, threshold in enumerate(thresholds):
        gt_taken = np.zeros(len(gt_boxes), bool)
        for d in range(len(det_boxes)):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(len(gt_boxes)):
                if gt_taken[g] or ious[d, g] < best_iou:
                    continue
                best, best_iou = g, ious[d, g]
            if best >= 0:
                gt_taken[best], matched[t, d] = True, True
    return det_scores, matched


def _coco_precision_at_recalls(scores, matched, num_gt):
    """COCOeval.accumulate for one class and threshold: 101-point interpolated precision."""
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(matched[order]).astype(np.float64)
    fp = np.cumsum(~matched[order]).astype(np.float64)
    recall = tp / num_gt
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    out = np.zeros(len(COCO_RECALL_POINTS))
    idx = np.searchsorted(recall, COCO_RECALL_POINTS, side="left")
    ok = idx < len(precision)
    out[ok] = precision[idx[ok]]
    return out


def coco_map(
    detections: Sequence[Detections],
    ground_truths: Sequence[GroundTruth],
    *,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    max_detections: int = 100,
) -> CocoResult:
    """COCO box AP: 101-point interpolated AP, averaged over IoU thresholds and classes.

    A transcription of ``pycocotools.cocoeval.COCOeval`` (``iouType='bbox'``, area range
    'all', no crowd boxes): per image and class the top ``max_detections`` detections by
    score are matched greedily, each to the unmatched gt of largest IoU :math:`\\ge t`;
    per class and threshold the detections of all images are ranked by score, precision
    is made monotone and read at recalls :math:`0, 0.01, ..., 1`; AP is their mean.
    Classes without ground truth are left out of the mean.

    Args:
      detections: one :class:`Detections` per image.
      ground_truths: one :class:`GroundTruth` per image.
      iou_thresholds: the thresholds averaged over (COCO's 0.50:0.05:0.95).
      max_detections: per image and class (COCO's ``maxDets=100``).

    Returns:
      A :class:`CocoResult`.

    References:
      Lin et al., "Microsoft COCO", 2014; pycocotools ``cocoeval.py``.
    """
    _check_lists(detections, ground_truths)
    thresholds = [_boxes.check_iou_threshold("iou_thresholds", t) for t in iou_thresholds]
    classes = sorted({int(c) for g in ground_truths for c in np.asarray(g.labels)})
    precision = np.zeros((len(thresholds), len(classes), len(COCO_RECALL_POINTS)))
    for k, cls in enumerate(classes):
        scores, matched, num_gt = [], [], 0
        for d, g in zip(detections, ground_truths):
            dm, gm = np.asarray(d.labels) == cls, np.asarray(g.labels) == cls
            num_gt += int(gm.sum())
            s, m = _coco_image_matches(
                np.asarray(d.boxes, np.float64).reshape(-1, 4)[dm],
                np.asarray(d.scores, np.float64)[dm],
                np.asarray(g.boxes, np.float64).reshape(-1, 4)[gm],
                thresholds,
                max_detections,
            )
            scores.append(s)
            matched.append(m)
        scores_all, matched_all = np.concatenate(scores), np.concatenate(matched, axis=1)
        for t in range(len(thresholds)):
            precision[t, k] = _coco_precision_at_recalls(scores_all, matched_all[t], num_gt)
    ap = precision.mean(axis=-1)  # (thresholds, classes)
    per_threshold = {t: float(ap[i].mean()) if len(classes) else 0.0 for i, t in enumerate(thresholds)}
    per_class = {c: float(ap[:, k].mean()) for k, c in enumerate(classes)}

    def at(value: float) -> float:
        hits = [i for i, t in enumerate(thresholds) if abs(t - value) < 1e-9]
        return float(ap[hits[0]].mean()) if hits and len(classes) else float("nan")

    total = float(ap.mean()) if len(classes) else 0.0
    return CocoResult(total, at(0.5), at(0.75), per_threshold, per_class)
