"""Digit canvases: images composed from real digits, with exact masks and boxes.

:func:`compose_canvas` places ``N`` upscaled scikit-learn digits at non-overlapping positions
on a blank (or CIFAR-10) canvas and returns the image, the per-pixel class mask, one mask
per instance, the tight boxes, the labels and the left-to-right order of the objects (what
a captioner would say: "three digits: 4 7 1"). :func:`make_canvases` draws a whole,
seeded dataset of them; the named datasets of :data:`CANVAS_DATASETS` are served by
``load_arrays`` (no TensorFlow) and registered as the TFDS dataset ``digit_canvas``.

Conventions: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``, so the box of an object whose
ink spans columns ``c0..c1`` and rows ``r0..r1`` is ``(c0, r0, c1 + 1, r1 + 1)`` (xyxy);
class-mask value 0 is background and ``d + 1`` is digit ``d``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

NUM_CLASSES = 10
"""Digit classes; the class mask has ``NUM_CLASSES + 1`` values (0 = background)."""
INK_THRESHOLD = 0.25
"""A digit pixel belongs to the object when its intensity (in ``[0, 1]``) exceeds this."""


class Canvas(NamedTuple):
    """One composed canvas with ``N`` objects.

    Attributes:
      image: ``(H, W, 1)`` float32 in ``[0, 1]``.
      class_mask: ``(H, W)`` int32: 0 background, ``label + 1`` on an object's ink.
      instance_masks: ``(N, H, W)`` bool, one per object (disjoint).
      boxes: ``(N, 4)`` float32 xyxy, the tight box of each instance mask.
      labels: ``(N,)`` int32 digit classes.
      order: ``(N,)`` int32 indices of the objects from left to right (by box centre).
    """

    image: np.ndarray
    class_mask: np.ndarray
    instance_masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    order: np.ndarray


class CanvasSpec(NamedTuple):
    """How a canvas dataset is drawn (the fields of :func:`make_canvases`)."""

    canvas_size: int = 48
    min_objects: int = 1
    max_objects: int = 3
    scales: tuple[int, ...] = (2, 3)
    num_train: int = 4000
    num_test: int = 500
    seed: int = 0
    background: str = ""  # "" (black) or a dataset name ("cifar10_shared") whose images become backgrounds.
    num_backgrounds: int = 2000
    tfds_config: str = "multi"  # The config of the registered TFDS dataset ``digit_canvas/<tfds_config>``.


CANVAS_DATASETS = {
    "digit_canvas": CanvasSpec(),
    "digit_canvas_single": CanvasSpec(min_objects=1, max_objects=1, seed=1, tfds_config="single"),
    "digit_canvas_cifar": CanvasSpec(seed=2, background="cifar10_shared", tfds_config="cifar"),
}
"""Dataset name -> :class:`CanvasSpec`. ``digit_canvas``: 1-3 digits of 16 or 24 pixels on a
48x48 canvas (detection, segmentation); ``digit_canvas_single``: exactly one (localization);
``digit_canvas_cifar``: as ``digit_canvas`` over dimmed grey CIFAR-10 crops (needs the shared
CIFAR-10 copy; the other two need nothing but scikit-learn)."""


def _check(name: str, ok: bool, expected: str, got) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {got!r}")


def _place(rng: np.random.Generator, sizes: Sequence[int], canvas_size: int, attempts: int):
    """Top-left corners of squares of ``sizes`` that do not overlap, by rejection sampling."""
    corners: list[tuple[int, int]] = []
    for size in sizes:
        for _ in range(attempts):
            y, x = (int(v) for v in rng.integers(0, canvas_size - size + 1, size=2))
            if all(
                x + size <= cx or cx + cs <= x or y + size <= cy or cy + cs <= y for (cy, cx), cs in zip(corners, sizes)
            ):
                corners.append((y, x))
                break
        else:
            return None
    return corners


def compose_canvas(
    rng: np.random.Generator,
    glyphs: np.ndarray,
    labels: np.ndarray,
    *,
    num_objects: int,
    canvas_size: int = 48,
    scales: Sequence[int] = (2, 3),
    background: np.ndarray | None = None,
    attempts: int = 100,
) -> Canvas:
    """Places ``num_objects`` digits, drawn from ``glyphs``, at non-overlapping positions.

    Each object is a random glyph upscaled by a random integer factor from ``scales``
    (nearest neighbour: every pixel becomes an ``s x s`` block), pasted so that the
    ``8s x 8s`` squares of two objects never overlap. Its instance mask is the upscaled
    ``glyph > INK_THRESHOLD``; its box is the tight box of that mask. The image is
    ``max(background, glyph)`` (``background`` defaults to zeros).

    Args:
      rng: the random generator (the only source of randomness: same state, same canvas).
      glyphs: ``(G, h, w)`` or ``(G, h, w, 1)`` images in ``[0, 1]``.
      labels: ``(G,)`` their classes.
      num_objects: objects to place (>= 1).
      canvas_size: side of the square canvas.
      scales: integer upscaling factors to draw from.
      background: optional ``(canvas_size, canvas_size)`` image in ``[0, 1]``.
      attempts: rejection-sampling tries per object before the whole layout is redrawn.

    Returns:
      A :class:`Canvas`.

    Raises:
      ValueError: bad arguments, or objects that cannot fit the canvas.
    """
    glyphs = np.asarray(glyphs, np.float32)
    if glyphs.ndim == 4 and glyphs.shape[-1] == 1:
        glyphs = glyphs[..., 0]
    _check("glyphs", glyphs.ndim == 3, "shape (G, h, w) or (G, h, w, 1)", glyphs.shape)
    _check("labels", np.shape(labels) == glyphs.shape[:1], f"shape ({glyphs.shape[0]},)", np.shape(labels))
    _check("num_objects", isinstance(num_objects, (int, np.integer)) and num_objects >= 1, "an int >= 1", num_objects)
    _check("scales", len(scales) > 0 and all(int(s) >= 1 for s in scales), "positive integer factors", scales)
    side = glyphs.shape[1]
    if background is not None:
        _check(
            "background",
            np.shape(background) == (canvas_size, canvas_size),
            f"shape ({canvas_size}, {canvas_size})",
            np.shape(background),
        )
    for _ in range(100):
        picks = rng.integers(0, len(glyphs), size=num_objects)
        factors = rng.choice(np.asarray(scales, int), size=num_objects)
        corners = _place(rng, [side * int(f) for f in factors], canvas_size, attempts)
        if corners is not None:
            break
    else:
        raise ValueError(
            f"num_objects: expected as many digits as fit a {canvas_size}x{canvas_size} canvas "
            f"at scales {tuple(scales)}, got {num_objects}"
        )
    image = (
        np.zeros((canvas_size, canvas_size), np.float32)
        if background is None
        else np.asarray(background, np.float32).copy()
    )
    class_mask = np.zeros((canvas_size, canvas_size), np.int32)
    masks = np.zeros((num_objects, canvas_size, canvas_size), bool)
    boxes = np.zeros((num_objects, 4), np.float32)
    for k, (pick, factor, (y, x)) in enumerate(zip(picks, factors, corners)):
        block = np.ones((int(factor), int(factor)), np.float32)
        big = np.kron(glyphs[pick], block)
        s = big.shape[0]
        image[y : y + s, x : x + s] = np.maximum(image[y : y + s, x : x + s], big)
        masks[k, y : y + s, x : x + s] = big > INK_THRESHOLD
        class_mask[masks[k]] = int(labels[pick]) + 1
        rows, cols = np.nonzero(masks[k].any(1))[0], np.nonzero(masks[k].any(0))[0]
        boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    object_labels = np.asarray(labels, np.int32)[picks]
    order = np.argsort((boxes[:, 0] + boxes[:, 2]) / 2, kind="stable").astype(np.int32)
    return Canvas(image[..., None], class_mask, masks, boxes, object_labels, order)


def make_canvases(
    glyphs: np.ndarray,
    labels: np.ndarray,
    *,
    num_canvases: int,
    seed: int,
    canvas_size: int = 48,
    min_objects: int = 1,
    max_objects: int = 3,
    scales: Sequence[int] = (2, 3),
    backgrounds: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """A seeded dataset of :func:`compose_canvas` canvases, padded to ``max_objects``.

    Canvas ``i`` is drawn from ``np.random.default_rng([seed, i])`` alone, so any canvas can
    be regenerated without the others, and the same seed gives the same arrays.

    Args:
      glyphs, labels: the digit images and classes to draw from.
      num_canvases: canvases to draw.
      seed: the dataset's seed.
      canvas_size, scales: as in :func:`compose_canvas`.
      min_objects, max_objects: the number of objects is uniform in this range.
      backgrounds: optional grey ``(B, h, w)`` images in ``[0, 1]`` with ``h, w >= canvas_size / 2``;
        canvas ``i`` takes a random ``canvas_size / 2`` crop of a random one, upscaled 2x (nearest)
        and dimmed to half intensity, so the digits stay the brightest pixels.

    Returns:
      ``{'image': (N, H, W, 1) float32, 'label': (N, H, W) int32 class mask (the target of
      a segmenter), 'instances': (N, H, W) int32 (0 background, k + 1 on object k),
      'boxes': (N, M, 4) float32 xyxy (zeros as padding), 'classes': (N, M) int32 (-1 as
      padding), 'num_objects': (N,) int32, 'order': (N, M) int32 left-to-right (-1 pad)}``,
      ``M = max_objects``; objects are stored in placement order.
    """
    _check(
        "num_canvases", isinstance(num_canvases, (int, np.integer)) and num_canvases >= 1, "an int >= 1", num_canvases
    )
    _check(
        "max_objects", 1 <= min_objects <= max_objects, f"max_objects >= min_objects = {min_objects} >= 1", max_objects
    )
    n, m, h = int(num_canvases), int(max_objects), int(canvas_size)
    out = {
        "image": np.zeros((n, h, h, 1), np.float32),
        "label": np.zeros((n, h, h), np.int32),
        "instances": np.zeros((n, h, h), np.int32),
        "boxes": np.zeros((n, m, 4), np.float32),
        "classes": np.full((n, m), -1, np.int32),
        "num_objects": np.zeros((n,), np.int32),
        "order": np.full((n, m), -1, np.int32),
    }
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        count = int(rng.integers(min_objects, max_objects + 1))
        background = None
        if backgrounds is not None:
            # A generator of its own: the layout does not depend on whether there is a background.
            background = 0.5 * _random_crop(np.random.default_rng([seed, i, 1]), backgrounds, h)
        canvas = compose_canvas(
            rng, glyphs, labels, num_objects=count, canvas_size=h, scales=scales, background=background
        )
        out["image"][i], out["label"][i] = canvas.image, canvas.class_mask
        for k in range(count):
            out["instances"][i][canvas.instance_masks[k]] = k + 1
        out["boxes"][i, :count], out["classes"][i, :count] = canvas.boxes, canvas.labels
        out["num_objects"][i], out["order"][i, :count] = count, canvas.order
    for value in out.values():
        value.flags.writeable = False
    return out


def _random_crop(rng: np.random.Generator, backgrounds: np.ndarray, canvas_size: int) -> np.ndarray:
    """A random ``canvas_size // 2`` crop of a random background, upscaled 2x (nearest)."""
    side = canvas_size // 2
    image = np.asarray(backgrounds[int(rng.integers(0, len(backgrounds)))], np.float32)
    _check(
        "backgrounds",
        image.ndim == 2 and min(image.shape) >= side,
        f"grey (B, h, w) images with h, w >= {side}",
        image.shape,
    )
    y, x = (int(v) for v in rng.integers(0, np.asarray(image.shape) - side + 1))
    crop = np.kron(image[y : y + side, x : x + side], np.ones((2, 2), np.float32))
    return np.pad(crop, ((0, canvas_size - 2 * side),) * 2)


def cifar_backgrounds(images: np.ndarray) -> np.ndarray:
    """Grey CIFAR-10 images in ``[0, 1]`` (channel mean), for ``make_canvases(backgrounds=)``."""
    grey = np.asarray(images, np.float32)
    grey = grey / 255.0 if np.asarray(images).dtype == np.uint8 else grey
    return grey.mean(-1) if grey.ndim == 4 else grey


@functools.lru_cache(maxsize=4)
def canvas_raw(
    name: str,
    digits: Callable[[], dict],
    backgrounds: Callable[[str], np.ndarray] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The ``train`` and ``test`` splits of a named canvas dataset (cached per process).

    Training canvases use only the training digits and test canvases only the test digits,
    so no test glyph is ever seen in training. ``load_arrays`` passes its own sources:

    Args:
      name: a key of :data:`CANVAS_DATASETS`.
      digits: ``() -> {split: (images, labels)}`` (``digits_raw``).
      backgrounds: ``split -> (B, h, w, 3) images`` for a spec with a background source.
    """
    spec = CANVAS_DATASETS[name]
    common: dict[str, Any] = {
        "canvas_size": spec.canvas_size,
        "min_objects": spec.min_objects,
        "max_objects": spec.max_objects,
        "scales": spec.scales,
    }
    out = {}
    for offset, split in enumerate(("train", "test")):
        images, labels = digits()[split]
        pool = None
        if spec.background:
            if backgrounds is None:
                raise ValueError(f"backgrounds: {name!r} needs a source of {spec.background} images, got None")
            pool = cifar_backgrounds(backgrounds(split)[: spec.num_backgrounds])
        out[split] = make_canvases(
            images,
            labels,
            num_canvases=spec.num_train if split == "train" else spec.num_test,
            seed=spec.seed + 1000 * offset,
            backgrounds=pool,
            **common,
        )
    return out
