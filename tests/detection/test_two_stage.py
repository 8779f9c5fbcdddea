"""The two-stage detector's pieces: anchors, anchor labels and draws, proposals, the losses, RoI
targets, RoI align as matrices, the final detections and the bad-input errors.

References: float64 NumPy transcriptions written here (anchor grid, Faster R-CNN's labelling
rule, the balanced draw, decode + clip + greedy NMS, BCE / smooth-L1 / softmax cross-entropy)
and :func:`jax231.models.layers.roi_align` for the separable RoI align.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import detection
from jax231.models import layers

# float32 computations against float64 references of O(1)-O(50) quantities.
ATOL = 1e-5


def _np_iou(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _np_smooth_l1(x, beta):
    x = np.abs(x)
    return np.where(x < beta, 0.5 * x**2 / beta, x - 0.5 * beta)


def test_anchor_grid_matches_numpy_loop():
    sizes, ratios, stride = (12.0, 18.0), (1.25, 2.5), 4
    got = np.asarray(detection.anchor_grid((3, 5), stride=stride, sizes=sizes, aspect_ratios=ratios))
    want = []
    for i in range(3):
        for j in range(5):
            for a in sizes:
                for r in ratios:
                    w, h = a / np.sqrt(r), a * np.sqrt(r)
                    cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
                    want.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    assert got.shape == (3 * 5 * 4, 4)
    np.testing.assert_allclose(got, np.array(want), atol=ATOL)
    # Areas a^2 and ratios h / w as asked.
    wh = got[:4, 2:] - got[:4, :2]
    np.testing.assert_allclose(wh[:, 0] * wh[:, 1], np.repeat(np.square(sizes), 2), rtol=1e-5)
    np.testing.assert_allclose(wh[:, 1] / wh[:, 0], np.tile(ratios, 2), rtol=1e-5)


def _np_label(anchors, gt, valid, pos, neg, low):
    """Faster R-CNN section 3.1.2, transcribed."""
    iou = _np_iou(anchors, gt)
    iou[:, ~valid] = -1.0
    max_iou = np.maximum(iou.max(axis=1), 0.0)
    labels = np.full(len(anchors), -1)
    labels[max_iou < neg] = 0
    labels[max_iou >= pos] = 1
    if low:
        for g in np.nonzero(valid)[0]:
            best = iou[:, g].max()
            if best > 0:
                labels[iou[:, g] == best] = 1
    return labels


ANCHORS = np.array(
    [[0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 20], [40, 40, 44, 44], [19, 19, 29, 29]], np.float32
)
GT = np.array([[0, 0, 10, 10], [21, 21, 31, 31], [0, 0, 0, 0]], np.float32)
GT_VALID = np.array([True, True, False])


@pytest.mark.parametrize("low", [True, False])
def test_label_anchors_matches_numpy_transcription(low):
    got = jax.jit(lambda a, g, v: detection.label_anchors(a, g, v, allow_low_quality=low))(ANCHORS, GT, GT_VALID)
    want = _np_label(ANCHORS, GT, GT_VALID, 0.7, 0.3, low)
    np.testing.assert_array_equal(np.asarray(got.labels), want)
    # By hand: IoU 1 -> positive; 0.14 -> negative; 0.68, the best of gt 1 -> positive only with
    # the low-quality rule; 0.5 and 0.47 -> ignored; 0 -> negative; the padding box is never matched.
    assert want.tolist() == ([1, 0, 1, -1, 0, -1] if low else [1, 0, -1, -1, 0, -1])
    assert np.asarray(got.matched)[[0, 2]].tolist() == [0, 1]
    np.testing.assert_allclose(np.asarray(got.max_iou), np.maximum(_np_iou(ANCHORS, GT[:2]).max(1), 0), atol=ATOL)


def _np_sample(priority, labels, n, frac):
    key = lambda i: (priority[i], i)
    pos = sorted(np.nonzero(labels == 1)[0], key=key)[: min(int(np.sum(labels == 1)), int(n * frac))]
    neg = sorted(np.nonzero(labels == 0)[0], key=key)[: min(int(np.sum(labels == 0)), n - len(pos))]
    return sorted(pos) + sorted(neg)


@pytest.mark.parametrize("n,frac", [(6, 0.5), (4, 0.25), (40, 0.5), (3, 1.0)])
def test_sample_by_priority_matches_numpy(n, frac):
    rng = np.random.default_rng(0)
    labels = rng.choice([-1, 0, 1], size=30, p=[0.3, 0.5, 0.2])
    priority = rng.uniform(size=30).astype(np.float32)
    got = jax.jit(lambda p, l: detection.sample_by_priority(p, l, num_samples=n, positive_fraction=frac))(
        priority, labels
    )
    want = _np_sample(priority, labels, n, frac)
    assert got.indices.shape == got.valid.shape == (n,)
    assert np.asarray(got.indices)[np.asarray(got.valid)].tolist() == want
    assert not np.any(np.asarray(got.indices)[~np.asarray(got.valid)])  # Padding index 0.


def test_sample_balanced_is_a_seeded_balanced_subset_under_jit():
    labels = jnp.array([1] * 10 + [0] * 50 + [-1] * 20)
    draw = jax.jit(lambda k: detection.sample_balanced(k, labels, num_samples=16, positive_fraction=0.25))
    a, b = draw(jax.random.key(3)), draw(jax.random.key(3))
    np.testing.assert_array_equal(a.indices, b.indices)
    picked = np.asarray(labels)[np.asarray(a.indices)]
    assert np.all(np.asarray(a.valid)) and (picked == 1).sum() == 4 and (picked == 0).sum() == 12
    mask = np.asarray(detection.sample_mask(a, 80))
    assert mask.sum() == 16 and set(np.nonzero(mask)[0]) == set(np.asarray(a.indices).tolist())


def _np_propose(z, t, anchors, size, pre, post, thr, min_size=1.0):
    top = np.argsort(-z, kind="stable")[:pre]
    a, t = np.asarray(anchors, np.float64)[top], np.asarray(t, np.float64)[top]
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    xa, ya = a[:, 0] + wa / 2, a[:, 1] + ha / 2
    x, y = xa + wa * t[:, 0], ya + ha * t[:, 1]
    w, h = wa * np.exp(np.minimum(t[:, 2], np.log(1000 / 16))), ha * np.exp(np.minimum(t[:, 3], np.log(1000 / 16)))
    boxes = np.clip(np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 1), 0, size)
    ok = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    kept = []
    for i in np.nonzero(ok)[0]:  # Already in decreasing score.
        if all(_np_iou(boxes[i : i + 1], boxes[j : j + 1])[0, 0] <= thr for j in kept):
            kept.append(i)
    return boxes[kept[:post]], z[top][kept[:post]]


def test_propose_matches_numpy_decode_clip_nms():
    anchors = detection.anchor_grid((6, 6), stride=8, sizes=(12.0, 20.0), aspect_ratios=(1.0, 2.0))
    rng = np.random.default_rng(1)
    z = rng.normal(size=anchors.shape[0]).astype(np.float32)
    t = (0.3 * rng.normal(size=(anchors.shape[0], 4))).astype(np.float32)
    fn = jax.jit(
        lambda z, t: detection.propose(
            z, t, anchors, image_size=48, pre_nms_top_n=60, post_nms_top_n=25, iou_threshold=0.5
        )
    )
    got = fn(z, t)
    assert got.boxes.shape == (25, 4) and got.scores.shape == got.valid.shape == (25,)
    want_boxes, want_scores = _np_propose(z, t, np.asarray(anchors), 48, 60, 25, 0.5)
    k = len(want_boxes)
    assert int(got.valid.sum()) == k and np.all(np.asarray(got.valid)[:k])
    np.testing.assert_allclose(np.asarray(got.boxes)[:k], want_boxes, atol=1e-4)
    np.testing.assert_allclose(np.asarray(got.scores)[:k], want_scores, atol=ATOL)
    assert np.all(np.asarray(got.scores)[k:] == -np.inf) and np.all(np.asarray(got.boxes)[k:] == 0)
    # Fewer boxes than post_nms_top_n survive a strict threshold: the mask says which are real.
    few = jax.jit(
        lambda z, t: detection.propose(
            z, t, anchors, image_size=48, pre_nms_top_n=60, post_nms_top_n=25, iou_threshold=0.0
        )
    )(z, t)
    assert int(few.valid.sum()) < 25 and int(few.valid.sum()) == len(_np_propose(z, t, anchors, 48, 60, 25, 0.0)[0])


def test_rpn_loss_hand_made():
    logits = np.array([[2.0, -1.0, 5.0, 0.0]], np.float32)
    offsets = np.array([[[0.1, 0.0, 0.5, -0.2], [1, 1, 1, 1], [2, 2, 2, 2], [0.0, 0.3, 0.0, 0.0]]], np.float32)
    target_t = np.array([[[0.0, 0.0, 0.0, 0.0], [0, 0, 0, 0], [0, 0, 0, 0], [0.0, 0.0, 0.05, 0.0]]], np.float32)
    targets = detection.RpnTargets(labels=jnp.array([[1, 0, -1, 1]]), offsets=jnp.asarray(target_t))
    terms = jax.jit(lambda z, t, y: detection.rpn_loss(z, t, y, box_weight=2.0, beta=1 / 9))(logits, offsets, targets)
    sig = lambda x: 1 / (1 + np.exp(-x))
    bce = -np.log(sig(2.0)) - np.log(1 - sig(-1.0)) - np.log(sig(0.0))  # Anchors 0, 1, 3 sampled.
    box = _np_smooth_l1(offsets[0, [0, 3]] - target_t[0, [0, 3]], 1 / 9).sum()  # Positives 0, 3.
    np.testing.assert_allclose(np.asarray(terms["rpn_objectness"]), [bce / 3], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(terms["rpn_box"]), [2.0 * box / 3], rtol=1e-5)


def test_detection_head_loss_hand_made():
    logits = np.array([[[0.5, -1.0, 2.0], [1.0, 0.0, 0.0], [9.0, 9.0, 9.0]]], np.float32)  # R = 3, C = 2.
    offsets = np.arange(24, dtype=np.float32).reshape(1, 3, 2, 4) / 10
    v = np.array([[[0.5, 0.4, 0.3, 0.2], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
    targets = detection.RoiTargets(jnp.zeros((1, 3, 4)), jnp.array([[2, 0, -1]]), jnp.asarray(v))
    terms = jax.jit(lambda s, t, y: detection.detection_head_loss(s, t, y, beta=1 / 9))(logits, offsets, targets)
    log_softmax = lambda s: s - np.log(np.exp(s).sum())
    nll = -log_softmax(logits[0, 0])[2] - log_softmax(logits[0, 1])[0]
    box = _np_smooth_l1(offsets[0, 0, 1] - v[0, 0], 1 / 9).sum()  # RoI 0, class 2 -> regressor 1.
    np.testing.assert_allclose(np.asarray(terms["roi_class"]), [nll / 2], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(terms["roi_box"]), [box / 2], rtol=1e-5)


def test_roi_targets_assign_classes_and_offsets():
    gt = np.array([[4, 4, 20, 28], [30, 10, 42, 26], [0, 0, 0, 0]], np.float32)
    gt_classes = np.array([7, 2, -1])
    prop = np.array([[5, 5, 20, 27], [0, 30, 10, 45], [31, 9, 41, 25], [0, 0, 0, 0]], np.float32)
    proposals = detection.Proposals(jnp.asarray(prop), jnp.zeros(4), jnp.array([True, True, True, False]))
    assign = jax.jit(
        lambda frac: detection.roi_targets(
            jax.random.key(0), proposals, gt, gt_classes, num_rois=8, positive_fraction=frac
        ),
        static_argnums=0,
    )
    t = assign(0.5)
    classes = np.asarray(t.classes)
    # Candidates: 3 valid proposals + 2 gt boxes = 5 (4 foreground, 1 background); 8 slots.
    assert classes.shape == (8,) and (classes >= 0).sum() == 5 and (classes == -1).sum() == 3
    assert sorted(classes[classes >= 0].tolist()) == [0, 3, 3, 8, 8]
    fg = classes >= 1
    matched = np.where(classes[fg, None] == 8, gt[0], gt[1])
    decoded = detection.decode_boxes(np.asarray(t.offsets)[fg], np.asarray(t.boxes)[fg], weights=detection.BOX_WEIGHTS)
    np.testing.assert_allclose(np.asarray(decoded), matched, atol=1e-4)
    # With a quarter foreground at most 2 of the 4 foreground candidates are drawn.
    q = assign(0.25)
    assert (np.asarray(q.classes) >= 1).sum() == 2


def test_roi_targets_of_a_zero_padded_example_are_finite():
    # A padded example: every box zero, classes 0 (not -1). No candidate may reach log(0).
    proposals = detection.Proposals(jnp.zeros((4, 4)), jnp.zeros(4), jnp.array([True, True, False, False]))
    t = jax.jit(
        lambda p: detection.roi_targets(jax.random.key(1), p, jnp.zeros((3, 4)), jnp.zeros(3, int), num_rois=4)
    )(proposals)
    assert np.all(np.isfinite(np.asarray(t.offsets))) and np.all(np.asarray(t.classes) == -1)


def test_roi_align_separable_equals_the_layer_values_and_gradients():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(12, 10, 3)).astype(np.float32)
    corners = rng.uniform(-6, 50, size=(9, 4)).astype(np.float32)
    boxes = np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])], 1)
    weights = rng.normal(size=(9, 4, 3, 3)).astype(np.float32)
    for aligned in (True, False):
        kw = dict(output_size=(4, 3), spatial_scale=0.25, sampling_ratio=2, aligned=aligned)

        @jax.jit
        def both(f, kw=kw):
            ref, got = layers.roi_align(f, boxes, **kw), layers.roi_align(f, boxes, impl="matrices", **kw)
            g_ref = jax.grad(lambda f: jnp.sum(weights * layers.roi_align(f, boxes, **kw)))(f)
            g_got = jax.grad(lambda f: jnp.sum(weights * layers.roi_align(f, boxes, impl="matrices", **kw)))(f)
            return ref, got, g_ref, g_got

        ref, got, g_ref, g_got = both(features)
        np.testing.assert_allclose(np.asarray(got), np.asarray(ref), atol=ATOL)
        np.testing.assert_allclose(np.asarray(g_got), np.asarray(g_ref), atol=ATOL)


def test_detect_rois_refines_and_suppresses():
    boxes = np.array([[[4, 4, 20, 28], [5, 4, 20, 28], [0, 0, 0, 0]]], np.float32)
    proposals = detection.Proposals(jnp.asarray(boxes), jnp.zeros((1, 3)), jnp.array([[True, True, False]]))
    logits = np.full((1, 3, 11), -5.0, np.float32)
    logits[0, :, 4] = 5.0  # Class 3 (index 4 with background 0), also on the padding row.
    offsets = np.zeros((1, 3, 10, 4), np.float32)
    offsets[0, 0, 3] = [10.0 * 0.25, 0.0, 0.0, 0.0]  # Class 3's box of proposal 0 moves by w/4 = 4 px.
    detect = jax.jit(lambda p, s, t: detection.detect_rois(p, s, t, image_size=48, iou_threshold=0.5, max_detections=5))
    out = detect(proposals, logits, offsets)
    assert out.boxes.shape == (1, 5, 4) and out.valid.shape == (1, 5)
    valid = np.asarray(out.valid[0])
    # The two overlapping class-3 boxes become one; the padding proposal gives nothing.
    assert valid.sum() == 1 and int(out.labels[0, 0]) == 3
    p = np.exp(5.0) / (np.exp(5.0) + 10 * np.exp(-5.0))
    np.testing.assert_allclose(float(out.scores[0, 0]), p, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out.boxes[0, 0]), [8, 4, 24, 28], atol=1e-4)


def test_bad_input_is_a_one_line_value_error_naming_the_argument():
    cases = [
        (lambda: detection.label_anchors(ANCHORS, GT, GT_VALID, positive_iou=1.5), "positive_iou"),
        (lambda: detection.label_anchors(ANCHORS, GT, GT_VALID, negative_iou=-0.1), "negative_iou"),
        (lambda: detection.label_anchors(ANCHORS, GT, GT_VALID, positive_iou=0.3, negative_iou=0.5), "negative_iou"),
        (lambda: detection.label_anchors(ANCHORS, GT[:, [2, 1, 0, 3]] + [0, 0, 1, 0], GT_VALID), "gt_boxes"),
        (lambda: detection.label_anchors(ANCHORS[:, [2, 1, 0, 3]], GT, GT_VALID), "anchors"),
        (lambda: detection.anchor_grid((2, 2), stride=4, sizes=(), aspect_ratios=(1.0,)), "sizes"),
        (lambda: detection.sample_by_priority(np.zeros(3), np.zeros(3), num_samples=0), "num_samples"),
        (lambda: detection.two_stage_detector(detection.TwoStageSpec(aspect_ratios=(1.0, -2.0))), "aspect_ratios"),
        (lambda: detection.two_stage_detector(detection.TwoStageSpec(roi_align="bilinear")), "roi_align"),
        (
            lambda: detection.train_multitask(
                None,
                None,
                detection.two_stage_loss,
                {"image": np.zeros((4, 8, 8, 1)), "boxes": np.zeros((4, 1, 4))},
                num_steps=1,
                batch_size=2,
                model_inputs=("image", "classes"),
            ),
            "model_inputs",
        ),
        (
            lambda: detection.roi_targets(
                jax.random.key(0),
                detection.Proposals(jnp.zeros((2, 4)), jnp.zeros(2), jnp.ones(2, bool)),
                GT,
                np.array([1, 2, -1]),
                foreground_iou=1.2,
            ),
            "foreground_iou",
        ),
        (
            lambda: detection.propose(
                np.zeros(6),
                np.zeros((6, 4)),
                ANCHORS,
                image_size=48,
                pre_nms_top_n=4,
                post_nms_top_n=2,
                iou_threshold=2.0,
            ),
            "iou_threshold",
        ),
    ]
    for fn, name in cases:
        with pytest.raises(ValueError) as err:
            fn()
        message = str(err.value)
        assert message.startswith(f"{name}:") and "\n" not in message, message


def test_two_stage_model_needs_the_ground_truth_in_training():
    model = detection.two_stage_detector(detection.TwoStageSpec(widths=(4, 4), rpn_width=4, hidden=8))
    # The inputs are checked before any parameter is read (an initialisation costs ~10 s of
    # threefry compilation on the shared CPU; the experiment's smoke test runs a real one).
    with pytest.raises(ValueError, match=r"^x: expected \{'image', 'boxes', 'classes'\}"):
        model.apply({}, {}, jnp.zeros((2, 16, 16, 1)), train=True, rng=jax.random.key(1))
    with pytest.raises(ValueError, match="^outputs:"):
        detection.two_stage_loss({"rpn_logits": jnp.zeros((2, 3))})
