"""The digit-canvas dataset: determinism, mask/box/label consistency, the glyphs it is made of, TFDS."""

from __future__ import annotations

import numpy as np
import pytest

from jax231 import detection, pipelines
from jax231.pipelines import _canvas


def _glyphs():
    data = pipelines.load_arrays("digits", "train")
    return data["image"], data["label"]


def test_compose_canvas_is_consistent_and_deterministic():
    glyphs, labels = _glyphs()
    for seed in range(20):
        canvas = _canvas.compose_canvas(np.random.default_rng(seed), glyphs, labels, num_objects=3)
        again = _canvas.compose_canvas(np.random.default_rng(seed), glyphs, labels, num_objects=3)
        for a, b in zip(canvas, again):
            np.testing.assert_array_equal(a, b)
        assert canvas.image.shape == (48, 48, 1) and canvas.instance_masks.shape == (3, 48, 48)
        # Instance masks are disjoint, non-empty, and their union labelled by class is the class mask.
        assert canvas.instance_masks.sum(0).max() <= 1 and canvas.instance_masks.any((1, 2)).all()
        rebuilt = np.zeros((48, 48), np.int32)
        for mask, label in zip(canvas.instance_masks, canvas.labels):
            rebuilt[mask] = label + 1
        np.testing.assert_array_equal(rebuilt, canvas.class_mask)
        # Boxes are the tight boxes of the masks; the image is bright exactly on the masks.
        np.testing.assert_array_equal(canvas.boxes, detection.masks_to_boxes(canvas.instance_masks))
        np.testing.assert_array_equal(canvas.image[..., 0] > _canvas.INK_THRESHOLD, canvas.class_mask > 0)
        # The left-to-right order sorts the box centres.
        centres = (canvas.boxes[:, 0] + canvas.boxes[:, 2]) / 2
        assert np.all(np.diff(centres[canvas.order]) >= 0)


def test_canvas_objects_are_real_digits_upscaled():
    glyphs, labels = _glyphs()
    canvas = _canvas.compose_canvas(np.random.default_rng(3), glyphs, labels, num_objects=1, scales=(3,))
    x1, y1, x2, y2 = canvas.boxes[0].astype(int)
    crop = canvas.image[y1:y2, x1:x2, 0]
    # Every 3x3 block is constant (nearest-neighbour upscaling) and the block means are a glyph crop of that class.
    small = crop[::3, ::3]
    np.testing.assert_array_equal(np.kron(small, np.ones((3, 3))), crop[: small.shape[0] * 3, : small.shape[1] * 3])
    same_class = glyphs[labels == canvas.labels[0], ..., 0]
    h, w = small.shape
    found = any(
        np.array_equal(g[r : r + h, c : c + w], small) for g in same_class for r in range(9 - h) for c in range(9 - w)
    )
    assert found


def test_load_arrays_serves_canvas_datasets_deterministically():
    a = pipelines.load_arrays("digit_canvas", "test[:50]")
    b = pipelines.load_arrays("digit_canvas", "test")
    for key in ("image", "label", "instances", "boxes", "classes", "num_objects", "order"):
        np.testing.assert_array_equal(a[key], b[key][:50])
    assert a["image"].shape == (50, 48, 48, 1) and a["label"].dtype == np.int32
    counts = a["num_objects"]
    assert counts.min() >= 1 and counts.max() <= 3
    for i in range(50):
        n = counts[i]
        assert np.all(a["classes"][i, n:] == -1) and np.all(a["classes"][i, :n] >= 0)
        masks = np.stack([a["instances"][i] == k + 1 for k in range(n)])
        np.testing.assert_array_equal(a["boxes"][i, :n], detection.masks_to_boxes(masks))
    single = pipelines.load_arrays("digit_canvas_single", "train[:20]")
    assert np.all(single["num_objects"] == 1)
    assert pipelines.info("digit_canvas").splits == {"train": 4000, "test": 500}
    # Regenerating a canvas from its own seed gives the stored one (canvas i depends on [seed, i] only).
    glyphs, labels = pipelines.load_arrays("digits", "test")["image"], pipelines.load_arrays("digits", "test")["label"]
    spec = _canvas.CANVAS_DATASETS["digit_canvas"]
    again = _canvas.make_canvases(glyphs, labels, num_canvases=5, seed=spec.seed + 1000)
    np.testing.assert_array_equal(again["image"], b["image"][:5])


def test_digit_canvas_is_a_real_tfds_dataset(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="TFDS registration needs tensorflow_datasets")
    from jax231.pipelines import _builders  # noqa: F401  Registers digit_canvas.

    assert "digit_canvas" in tfds.list_builders()
    ds = tfds.load("digit_canvas/single", split="test[:8]", data_dir=str(tmp_path), batch_size=-1)
    got = tfds.as_numpy(ds)
    ref = pipelines.load_arrays("digit_canvas_single", "test[:8]")
    for key in ("image", "label", "boxes", "classes"):
        np.testing.assert_array_equal(got[key], ref[key])


def test_bad_canvas_and_mask_input_raise_one_line_value_errors():
    glyphs, labels = _glyphs()
    with pytest.raises(ValueError, match="^num_objects: expected"):
        _canvas.compose_canvas(np.random.default_rng(0), glyphs, labels, num_objects=40, scales=(3,))
    with pytest.raises(ValueError, match=r"^labels: expected shape"):
        _canvas.compose_canvas(np.random.default_rng(0), glyphs, labels[:3], num_objects=1)
    with pytest.raises(ValueError, match=r"^pred: expected shape \(2, 4, 4\)"):
        detection.mean_iou(np.zeros((2, 4, 5), int), np.zeros((2, 4, 4), int), num_classes=3)
    with pytest.raises(ValueError, match=r"^labels: expected shape \(2, 4, 4\)"):
        detection.pixel_cross_entropy(logits=np.zeros((2, 4, 4, 3)), labels=np.zeros((2, 4, 5), int))


def test_backgrounds_are_dimmed_crops_and_masks_stay_exact():
    """CIFAR-10 crops as backgrounds (synthetic grey images here: the real ones need ../shared)."""
    glyphs, labels = _glyphs()
    backgrounds = np.random.default_rng(0).uniform(size=(5, 32, 32)).astype(np.float32)
    data = _canvas.make_canvases(glyphs, labels, num_canvases=6, seed=4, backgrounds=backgrounds)
    plain = _canvas.make_canvases(glyphs, labels, num_canvases=6, seed=4)
    for i in range(6):
        np.testing.assert_array_equal(data["label"][i], plain["label"][i])  # same layout, same masks
        off = data["label"][i] == 0
        assert data["image"][i, ..., 0][off].max() <= 0.5 and data["image"][i, ..., 0][off].std() > 0.05
        on = data["label"][i] > 0
        np.testing.assert_array_equal(data["image"][i][on], np.maximum(plain["image"][i][on], data["image"][i][on]))
