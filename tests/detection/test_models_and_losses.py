"""Lecture-11 models and losses: shapes, a perfect grid decodes to the truth, gradients, determinism."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax231 import detection, gradcheck, models, optimizers, pipelines


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _perfect_grid(boxes, classes, *, image_size=48, s=6, b=2, c=10):
    """The raw output whose decoding is exactly the ground truth (box 0 of each object's cell)."""
    raw = np.full((s, s, 5 * b + c), -12.0)
    cell = image_size / s
    for box, cls in zip(boxes, classes):
        if cls < 0:
            continue
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        j, i = int(cx // cell), int(cy // cell)
        raw[i, j, 0:5] = [
            _logit(cx / cell - j),
            _logit(cy / cell - i),
            _logit(np.sqrt((box[2] - box[0]) / image_size)),
            _logit(np.sqrt((box[3] - box[1]) / image_size)),
            12.0,
        ]
        raw[i, j, 5 * b :] = -12.0
        raw[i, j, 5 * b + cls] = 12.0
    return raw


def test_model_output_shapes():
    x = jnp.zeros((2, 48, 48, 1))
    for model, shape in (
        (models.unet(num_classes=11, widths=(4, 8, 8)), (2, 48, 48, 11)),
        (models.grid_detector(num_classes=10, widths=(4, 4, 4, 8)), (2, 6, 6, 20)),
    ):
        params, state = model.init(jax.random.key(0), (48, 48, 1))
        out, _ = model.apply(params, state, x, train=False)
        chex.assert_shape(out, shape)
    loc = models.localizer(num_classes=10, widths=(4, 4, 4, 4), hidden=8)
    params, state = loc.init(jax.random.key(0), (48, 48, 1))
    out, _ = loc.apply(params, state, x, train=False)
    chex.assert_shape([out["logits"], out["boxes"]], [(2, 10), (2, 4)])
    with pytest.raises(ValueError, match="^input_shape: expected"):
        models.unet(num_classes=3, widths=(4, 8, 8)).init(jax.random.key(0), (30, 30, 1))


def test_a_perfect_grid_decodes_to_the_truth_with_map_one():
    data = pipelines.load_arrays("digit_canvas", "test[:8]")
    raw = np.stack([_perfect_grid(b, c) for b, c in zip(data["boxes"], data["classes"])])
    out = jax.device_get(detection.detect(raw, image_size=48, boxes_per_cell=2, num_classes=10, max_detections=10))
    dets = [detection.Detections(b[v], s[v], c[v]) for b, s, c, v in zip(out.boxes, out.scores, out.labels, out.valid)]
    gts = [detection.GroundTruth(b[c >= 0], c[c >= 0]) for b, c in zip(data["boxes"], data["classes"])]
    for d, g in zip(dets, gts):
        assert len(d.boxes) == len(g.boxes)
    assert detection.coco_map(dets, gts).map == pytest.approx(1.0)
    # The perfect grid has (near) zero coordinate, objectness and class loss.
    loss, terms = detection.yolo_loss(
        raw, data["boxes"], data["classes"], image_size=48, boxes_per_cell=2, num_classes=10
    )
    chex.assert_shape(loss, (8,))
    assert float(jnp.max(terms["coord"])) < 1e-6 and float(jnp.max(terms["class"])) < 1e-3
    assert float(jnp.max(terms["obj"])) < 1e-3


def test_yolo_and_localization_losses_have_correct_gradients():
    rng = np.random.default_rng(0)
    data = pipelines.load_arrays("digit_canvas", "test[:2]")
    raw = rng.normal(size=(2, 6, 6, 20))
    # The objectness target (the IoU of the responsible box) is a constant by design (stop_gradient, as
    # in YOLO), so the float64 check runs with its weight at 0: every other term is differentiated exactly.
    weights = detection.YoloLossWeights(obj=0.0)
    gradcheck.check_grads(
        lambda r: detection.yolo_loss(
            r, data["boxes"], data["classes"], image_size=48, boxes_per_cell=2, num_classes=10, weights=weights
        )[0],
        raw,
        tol=1e-6,
        num_checks=120,
    )
    outputs = {"logits": rng.normal(size=(3, 10)), "boxes": rng.uniform(0.2, 0.8, size=(3, 4))}
    boxes = np.array([[4.0, 4.0, 20.0, 28.0], [10.0, 2.0, 30.0, 20.0], [0.0, 0.0, 48.0, 48.0]])
    gradcheck.check_grads(
        lambda o: detection.localization_loss(o, np.array([1, 2, 3]), boxes, image_size=48, box_loss="l2")[0],
        outputs,
        tol=1e-7,
    )


def test_localization_loss_equals_numpy_formula():
    rng = np.random.default_rng(1)
    logits, pred = rng.normal(size=(4, 10)), rng.uniform(size=(4, 4))
    classes, boxes = np.array([0, 3, 9, 2]), np.array([[4.0, 6, 20, 30], [0, 0, 10, 10], [5, 5, 45, 40], [1, 2, 3, 4]])
    loss, _ = detection.localization_loss(
        {"logits": logits, "boxes": pred}, classes, boxes, image_size=48, box_weight=3.0, box_loss="smooth_l1", beta=0.1
    )
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    target = (
        np.stack(
            [
                (boxes[:, 0] + boxes[:, 2]) / 2,
                (boxes[:, 1] + boxes[:, 3]) / 2,
                boxes[:, 2] - boxes[:, 0],
                boxes[:, 3] - boxes[:, 1],
            ],
            1,
        )
        / 48
    )
    d = np.abs(pred - target)
    ref = -log_p[np.arange(4), classes] + 3.0 * np.where(d < 0.1, 0.5 * d**2 / 0.1, d - 0.05).sum(1)
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


def _loc_loss(outputs, batch):
    return detection.localization_loss(outputs, batch["label"], batch["box"], image_size=48)


def test_train_multitask_is_deterministic_and_learns():
    data = pipelines.load_arrays("digit_canvas_single", "train[:64]")
    arrays = {"image": data["image"], "label": data["classes"][:, 0], "box": data["boxes"][:, 0]}
    model = models.localizer(num_classes=10, widths=(4, 4, 4, 4), hidden=16)
    opt = optimizers.adam(learning_rate=3e-3)
    run = functools.partial(
        detection.train_multitask, model, opt, _loc_loss, arrays, num_steps=30, batch_size=16, eval_every=15
    )
    a, b = run(seed=3), run(seed=3)
    chex.assert_trees_all_equal(a.state.params, b.state.params)
    assert a.history["step"] == [15, 30] and a.history["loss"][1] < a.history["loss"][0]
    with pytest.raises(ValueError, match="^batch_size: expected at most"):
        detection.train_multitask(model, opt, _loc_loss, arrays, num_steps=1, batch_size=100)
