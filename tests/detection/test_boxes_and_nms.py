"""Box utilities and NMS against float64 NumPy references (and torchvision when it is installed)."""

from __future__ import annotations

import importlib.util

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import detection

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
requires_torchvision = pytest.mark.skipif(
    not HAS_TORCHVISION,
    reason="torchvision is not installed on this machine (torch alone is): its box_iou/nms "
    "are an optional second reference; the NumPy transcriptions below always run",
)


def _random_boxes(rng, n, size=50.0):
    xy = rng.uniform(0, size, size=(n, 2))
    wh = rng.uniform(1, size / 2, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def _iou_ref(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = iw * ih
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def _nms_ref(boxes, scores, threshold):
    """The textbook greedy loop: take the best remaining box, drop those overlapping it by > threshold."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order if _iou_ref(boxes[best : best + 1], boxes[i : i + 1])[0, 0] <= threshold]
    return keep


def test_formats_round_trip_and_areas():
    boxes = _random_boxes(np.random.default_rng(0), 7)
    for fmt in detection.FORMATS:
        there = detection.convert_boxes(boxes, source="xyxy", target=fmt)
        np.testing.assert_allclose(
            detection.convert_boxes(there, source=fmt, target="xyxy"), boxes, rtol=1e-5, atol=1e-4
        )
    xywh = detection.convert_boxes(boxes, source="xyxy", target="xywh")
    np.testing.assert_allclose(xywh[:, 2] * xywh[:, 3], detection.box_area(boxes), rtol=1e-5)


def test_pairwise_iou_equals_numpy_reference():
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 9), _random_boxes(rng, 6)
    b[0] = a[0]  # identical boxes: IoU 1
    b[1] = [200, 200, 210, 210]  # disjoint: IoU 0
    got = detection.pairwise_iou(a, b)
    chex.assert_shape(got, (9, 6))
    np.testing.assert_allclose(got, _iou_ref(a, b), rtol=1e-5, atol=1e-6)
    assert float(got[0, 0]) == pytest.approx(1.0)
    assert float(jnp.max(got[:, 1])) == 0.0


@requires_torchvision
def test_iou_and_nms_equal_torchvision():
    import torch
    import torchvision

    rng = np.random.default_rng(2)
    boxes, scores = _random_boxes(rng, 200), rng.uniform(size=200)
    ref_iou = torchvision.ops.box_iou(torch.tensor(boxes), torch.tensor(boxes)).numpy()
    np.testing.assert_allclose(detection.pairwise_iou(boxes, boxes), ref_iou, rtol=1e-5, atol=1e-6)
    ref = torchvision.ops.nms(torch.tensor(boxes), torch.tensor(scores), 0.5).numpy()
    out = detection.nms(boxes, scores, iou_threshold=0.5, max_output_size=200)
    np.testing.assert_array_equal(np.asarray(out.indices)[np.asarray(out.valid)], ref)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(3)
    boxes, anchors = _random_boxes(rng, 10), _random_boxes(rng, 10)
    for weights in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        offsets = detection.encode_boxes(boxes, anchors, weights=weights)
        np.testing.assert_allclose(
            detection.decode_boxes(offsets, anchors, weights=weights), boxes, rtol=1e-4, atol=1e-3
        )
    np.testing.assert_allclose(detection.encode_boxes(anchors, anchors), 0.0, atol=1e-6)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_equals_numpy_greedy_reference(threshold):
    rng = np.random.default_rng(4)
    boxes = _random_boxes(rng, 60, size=30.0)
    scores = rng.integers(0, 10, size=60).astype(np.float32)  # many ties: broken by index
    out = detection.nms_jit(boxes, scores, iou_threshold=threshold, max_output_size=60)
    got = np.asarray(out.indices)[np.asarray(out.valid)]
    assert got.tolist() == _nms_ref(boxes, scores, threshold)
    assert int(out.num_valid) == len(got)


def test_nms_properties_top_box_idempotent_order_invariant():
    rng = np.random.default_rng(5)
    boxes = _random_boxes(rng, 40, size=20.0)
    scores = rng.integers(0, 5, size=40).astype(np.float32)
    out = detection.nms(boxes, scores, iou_threshold=0.4, max_output_size=40)
    kept = np.asarray(out.indices)[np.asarray(out.valid)]
    # The top box (highest score, lowest index among ties) is always kept, first.
    assert kept[0] == int(np.lexsort((np.arange(40), -scores))[0])
    # Idempotent: NMS of the kept boxes keeps them all.
    again = detection.nms(boxes[kept], scores[kept], iou_threshold=0.4, max_output_size=len(kept))
    assert np.asarray(again.valid).all() and np.asarray(again.indices).tolist() == list(range(len(kept)))
    # Order invariant: permuting the input (ties resolved by original index via distinct scores) keeps the same boxes.
    distinct = scores + np.arange(40) * 1e-4 * -1  # ties broken by index, as nms does, made explicit
    perm = rng.permutation(40)
    a = detection.nms(boxes, distinct, iou_threshold=0.4, max_output_size=40)
    b = detection.nms(boxes[perm], distinct[perm], iou_threshold=0.4, max_output_size=40)
    ka = np.asarray(a.indices)[np.asarray(a.valid)]
    kb = perm[np.asarray(b.indices)[np.asarray(b.valid)]]
    assert ka.tolist() == kb.tolist() == kept.tolist()
    # No two kept boxes overlap by more than the threshold.
    iou = _iou_ref(boxes[kept], boxes[kept])
    assert np.all(iou[~np.eye(len(kept), dtype=bool)] <= 0.4)


def test_nms_fixed_size_padding_vmap_and_score_threshold():
    rng = np.random.default_rng(6)
    boxes = np.stack([_random_boxes(rng, 30) for _ in range(3)])
    scores = rng.uniform(size=(3, 30)).astype(np.float32)
    fn = jax.vmap(lambda b, s: detection.nms(b, s, iou_threshold=0.5, max_output_size=50, score_threshold=0.3))
    out = fn(boxes, scores)
    chex.assert_shape([out.indices, out.valid], (3, 50))
    for i in range(3):
        keep = [k for k in _nms_ref(boxes[i], np.where(scores[i] > 0.3, scores[i], -1.0), 0.5) if scores[i][k] > 0.3]
        assert np.asarray(out.indices[i])[np.asarray(out.valid[i])].tolist() == keep
        assert np.all(np.asarray(out.indices[i])[~np.asarray(out.valid[i])] == 0)


def test_batched_nms_equals_per_class_nms():
    rng = np.random.default_rng(7)
    boxes = _random_boxes(rng, 50, size=15.0)
    scores = rng.uniform(size=50)
    classes = rng.integers(0, 3, size=50)
    out = detection.batched_nms(boxes, scores, classes, iou_threshold=0.3, max_output_size=50)
    got = set(np.asarray(out.indices)[np.asarray(out.valid)].tolist())
    ref = set()
    for c in range(3):
        idx = np.nonzero(classes == c)[0]
        ref |= {int(idx[k]) for k in _nms_ref(boxes[idx], scores[idx], 0.3)}
    assert got == ref


def test_bad_boxes_and_thresholds_raise_one_line_value_errors():
    good = np.array([[0.0, 0.0, 2.0, 2.0]])
    bad = np.array([[0.0, 0.0, 2.0, 2.0], [3.0, 0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match=r"^boxes_a: expected finite boxes with x2 >= x1 and y2 >= y1, got box \(1,\)"):
        detection.pairwise_iou(bad, good)
    with pytest.raises(ValueError, match="^boxes: expected finite boxes"):
        detection.nms(bad, np.ones(2))
    for threshold in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"^iou_threshold: expected an IoU threshold in \[0, 1\]"):
            detection.nms(good, np.ones(1), iou_threshold=threshold)
    with pytest.raises(ValueError, match=r"^scores: expected shape \(1,\)"):
        detection.nms(good, np.ones(3))
    with pytest.raises(ValueError, match="^source: expected one of"):
        detection.convert_boxes(good, source="yxyx", target="xyxy")
