"""mAP: pycocotools' COCOeval on the same detections, hand-made lists with known answers, and the VOC
11-point / all-point definitions transcribed in NumPy (from the VOC devkit's ``voc_ap``)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from jax231 import detection

pycocotools = pytest.importorskip("pycocotools", reason="pycocotools (the [test] extra) is the COCO reference")
from pycocotools.coco import COCO  # noqa: E402  (after the importorskip)
from pycocotools.cocoeval import COCOeval  # noqa: E402

D, G = detection.Detections, detection.GroundTruth


def _coco_reference(dets, gts):
    """pycocotools' COCOeval (bbox, area 'all', maxDets 100) -> (AP@[.5:.95], AP@0.5)."""
    images, annotations, results = [], [], []
    for i, (d, g) in enumerate(zip(dets, gts)):
        images.append({"id": i + 1, "width": 100, "height": 100})
        for box, label in zip(g.boxes, g.labels):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
        for box, score, label in zip(d.boxes, d.scores, d.labels):
            x1, y1, x2, y2 = (float(v) for v in box)
            results.append(
                {
                    "image_id": i + 1,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c + 1} for c in range(10)]}
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[0], evaluator.stats[1]


def _random_scene(rng, num_images=12):
    dets, gts = [], []
    for _ in range(num_images):
        g = rng.integers(1, 4)
        xy = rng.uniform(0, 60, size=(g, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(8, 30, size=(g, 2))], 1)
        labels = rng.integers(0, 3, size=g)
        gts.append(G(boxes, labels))
        # Detections: jittered copies of the truth (some with the wrong class), plus false positives.
        k = rng.integers(0, 6)
        pick = rng.integers(0, g, size=k)
        jitter = boxes[pick] + rng.normal(0, 3, size=(k, 4))
        jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 1)
        dlabels = np.where(rng.uniform(size=k) < 0.8, labels[pick], rng.integers(0, 3, size=k))
        dets.append(D(jitter, np.round(rng.uniform(size=k), 2), dlabels))  # rounded: score ties happen
    return dets, gts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_map_equals_pycocotools(seed):
    dets, gts = _random_scene(np.random.default_rng(seed))
    ref_map, ref_ap50 = _coco_reference(dets, gts)
    ours = detection.coco_map(dets, gts)
    assert ours.map == pytest.approx(ref_map, abs=1e-12)
    assert ours.ap50 == pytest.approx(ref_ap50, abs=1e-12)


def test_ap_of_hand_made_lists_with_known_answers():
    box = np.array([[10.0, 10.0, 20.0, 20.0]])
    gt = [G(box, np.array([0]))]
    # A perfect detection: AP 1 at every threshold.
    assert detection.coco_map([D(box, np.array([0.9]), np.array([0]))], gt).map == pytest.approx(1.0)
    # No detection: AP 0. A wrong class: AP 0 for the true class.
    assert detection.coco_map([D(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))], gt).map == 0.0
    assert detection.coco_map([D(box, np.array([0.9]), np.array([1]))], gt).map == 0.0
    # A box shifted by 2 px of 10: IoU = 80/120 = 2/3 -> a hit at 0.50, 0.55, 0.60, 0.65 only: mAP 0.4.
    shifted = box + np.array([2.0, 0.0, 2.0, 0.0])
    result = detection.coco_map([D(shifted, np.array([0.9]), np.array([0]))], gt)
    # (precision 1 - eps: COCOeval divides by tp + fp + np.spacing(1))
    assert result.map == pytest.approx(0.4) and result.ap50 == pytest.approx(1.0) and result.ap75 == 0.0
    # A false positive ranked above the true positive: precision 1/2 at recall 1 -> AP 0.5 (101-point
    # interpolation reads 0.5 everywhere); ranked below it: AP 1.
    far = np.array([[50.0, 50.0, 60.0, 60.0]])
    above = D(np.concatenate([far, box]), np.array([0.9, 0.8]), np.array([0, 0]))
    below = D(np.concatenate([far, box]), np.array([0.7, 0.8]), np.array([0, 0]))
    assert detection.coco_map([above], gt).ap50 == pytest.approx(0.5)
    assert detection.coco_map([below], gt).ap50 == pytest.approx(1.0)
    # VOC all-point on the same: 0.5 and 1; 11-point: 0.5 and 1.
    for method in ("all_point", "11_point"):
        assert detection.voc_map([above], gt, method=method)[0] == pytest.approx(0.5)
        assert detection.voc_map([below], gt, method=method)[0] == pytest.approx(1.0)
    # Two objects, one found: recall 1/2 with precision 1 -> all-point 0.5; 11-point 6/11 (t = 0..0.5).
    two = [G(np.concatenate([box, far]), np.array([0, 0]))]
    assert detection.voc_map([D(box, np.array([0.9]), np.array([0]))], two, method="all_point")[0] == pytest.approx(0.5)
    assert detection.voc_map([D(box, np.array([0.9]), np.array([0]))], two, method="11_point")[0] == pytest.approx(
        6 / 11
    )


def _voc_ap_devkit(rec, prec, use_07_metric):
    """The VOC devkit's ``voc_ap`` (py-faster-rcnn's transcription), verbatim in NumPy."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_voc_average_precision_equals_devkit_definitions(seed):
    rng = np.random.default_rng(seed)
    hits = rng.uniform(size=30) < 0.6
    num_gt = int(hits.sum()) + 3
    tp = np.cumsum(hits)
    rec, prec = tp / num_gt, tp / np.arange(1, 31)
    assert detection.voc_average_precision(rec, prec, method="11_point") == pytest.approx(
        _voc_ap_devkit(rec, prec, True), abs=1e-12
    )
    assert detection.voc_average_precision(rec, prec, method="all_point") == pytest.approx(
        _voc_ap_devkit(rec, prec, False), abs=1e-12
    )


def test_bad_ap_input_raises_one_line_value_errors():
    gt = [G(np.array([[0.0, 0.0, 1.0, 1.0]]), np.array([0]))]
    with pytest.raises(ValueError, match="^iou_threshold: expected an IoU threshold in"):
        detection.voc_map([D(np.zeros((0, 4)), np.zeros(0), np.zeros(0))], gt, iou_threshold=2.0)
    with pytest.raises(ValueError, match=r"^detections\[0\].boxes: expected finite boxes"):
        detection.coco_map([D(np.array([[2.0, 0.0, 1.0, 1.0]]), np.ones(1), np.zeros(1))], gt)
    with pytest.raises(ValueError, match="^method: expected one of"):
        detection.voc_average_precision(np.ones(1), np.ones(1), method="coco")
