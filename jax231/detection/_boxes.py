"""Boxes: formats, validation, areas, pairwise IoU, offset encoding and decoding.

A box is four numbers in the last axis. Three formats are understood:

* ``'xyxy'``: corners ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2`` (the internal one);
* ``'xywh'``: top-left corner and size ``(x, y, w, h)`` (COCO's);
* ``'cxcywh'``: centre and size ``(cx, cy, w, h)`` (YOLO's).

Coordinates are continuous (a pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``), so a box
covering columns ``c0..c1`` has ``x1 = c0, x2 = c1 + 1`` and width ``x2 - x1`` (no "+1").
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax231.types import Array, ArrayLike

FORMATS = ("xyxy", "xywh", "cxcywh")
_EPS = 1e-9


def _is_concrete(x: ArrayLike) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_format(name: str, value: str) -> str:
    """Returns ``value`` or raises ``ValueError`` unless it is one of :data:`FORMATS`."""
    if value not in FORMATS:
        raise ValueError(f"{name}: expected one of {FORMATS}, got {value!r}")
    return value


def check_iou_threshold(name: str, value: float) -> float:
    """Returns ``value`` as a float or raises ``ValueError`` unless ``0 <= value <= 1``."""
    if isinstance(value, jax.core.Tracer):
        return value  # A traced threshold (a sweep) cannot be checked at trace time.
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an IoU threshold in [0, 1], got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name}: expected an IoU threshold in [0, 1], got {value!r}")
    return number


def check_boxes(name: str, boxes: ArrayLike) -> Array:
    """Validates ``xyxy`` boxes: shape ``(..., 4)`` and, when concrete, ``x2 >= x1, y2 >= y1``.

    Under ``jit`` only the shape can be checked (the values are traced).

    Raises:
      ValueError: naming ``name``, the first bad box and its index.
    """
    if jnp.ndim(boxes) < 1 or jnp.shape(boxes)[-1] != 4:
        raise ValueError(f"{name}: expected shape (..., 4) boxes (x1, y1, x2, y2), got shape {jnp.shape(boxes)}")
    if _is_concrete(boxes):
        values = np.asarray(boxes)
        bad = (values[..., 2] < values[..., 0]) | (values[..., 3] < values[..., 1]) | ~np.isfinite(values).all(-1)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}: expected finite boxes with x2 >= x1 and y2 >= y1, got box {index} = {values[index].tolist()}"
            )
    return jnp.asarray(boxes)


def convert_boxes(boxes: ArrayLike, *, source: str, target: str) -> Array:
    """Converts boxes between :data:`FORMATS`.

    .. math:: x_2 = x + w,\\ y_2 = y + h; \\qquad c_x = (x_1 + x_2)/2,\\ w = x_2 - x_1

    Args:
      boxes: shape ``(..., 4)`` in the ``source`` format.
      source: format of ``boxes``.
      target: format of the result.

    Returns:
      Shape ``(..., 4)`` in the ``target`` format.
    """
    check_format("source", source)
    check_format("target", target)
    if jnp.ndim(boxes) < 1 or jnp.shape(boxes)[-1] != 4:
        raise ValueError(f"boxes: expected shape (..., 4), got shape {jnp.shape(boxes)}")
    b = jnp.asarray(boxes)
    a0, a1, a2, a3 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    if source == "xywh":
        xyxy = (a0, a1, a0 + a2, a1 + a3)
    elif source == "cxcywh":
        xyxy = (a0 - a2 / 2, a1 - a3 / 2, a0 + a2 / 2, a1 + a3 / 2)
    else:
        xyxy = (a0, a1, a2, a3)
    x1, y1, x2, y2 = xyxy
    if target == "xywh":
        out = (x1, y1, x2 - x1, y2 - y1)
    elif target == "cxcywh":
        out = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    else:
        out = xyxy
    return jnp.stack(out, axis=-1)


def box_area(boxes: ArrayLike) -> Array:
    """Areas ``(x2 - x1)(y2 - y1)`` of ``xyxy`` boxes, shape ``boxes.shape[:-1]``."""
    b = check_boxes("boxes", boxes)
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def pairwise_iou(boxes_a: ArrayLike, boxes_b: ArrayLike) -> Array:
    """Intersection over union of every pair, vectorised.

    .. math:: \\text{IoU}(a, b) = \\frac{|a \\cap b|}{|a| + |b| - |a \\cap b|}

    with :math:`|a \\cap b| = \\max(0, \\min(x_2^a, x_2^b) - \\max(x_1^a, x_1^b)) \\cdot
    \\max(0, \\min(y_2^a, y_2^b) - \\max(y_1^a, y_1^b))`. Two empty boxes have IoU 0.

    Args:
      boxes_a: ``xyxy`` boxes, shape ``(N, 4)``.
      boxes_b: ``xyxy`` boxes, shape ``(M, 4)``.

    Returns:
      Shape ``(N, M)``, values in ``[0, 1]``.

    References:
      CS231n lecture 11 (detection); ``torchvision.ops.box_iou``.
    """
    a = check_boxes("boxes_a", boxes_a)
    b = check_boxes("boxes_b", boxes_b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"boxes_a, boxes_b: expected shapes (N, 4) and (M, 4), got {a.shape} and {b.shape}")
    lt = jnp.maximum(a[:, None, :2], b[None, :, :2])
    rb = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = jnp.clip(rb - lt, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return jnp.where(union > 0, inter / jnp.maximum(union, _EPS), 0.0)


def encode_boxes(boxes: ArrayLike, anchors: ArrayLike, *, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> Array:
    """Offsets of ``boxes`` relative to ``anchors`` (the R-CNN parameterisation).

    .. math:: t_x = w_x \\frac{x - x_a}{w_a},\\quad t_y = w_y \\frac{y - y_a}{h_a},\\quad
              t_w = w_w \\log\\frac{w}{w_a},\\quad t_h = w_h \\log\\frac{h}{h_a}

    with :math:`(x, y, w, h)` the centre and size of a box, :math:`(x_a, y_a, w_a, h_a)`
    those of its anchor (or proposal) and :math:`w_\\cdot` = ``weights``.

    Args:
      boxes: ``xyxy`` targets, shape ``(..., 4)``, positive sizes.
      anchors: ``xyxy`` anchors broadcastable to ``boxes``, positive sizes.
      weights: the four scale factors (Faster R-CNN's second stage uses ``(10, 10, 5, 5)``).

    Returns:
      Offsets ``(t_x, t_y, t_w, t_h)``, shape of the broadcast.

    References:
      Girshick et al., "Rich feature hierarchies", 2014, appendix C; CS231n lecture 11.
    """
    wx, wy, ww, wh = weights
    x, y, w, h = jnp.moveaxis(convert_boxes(check_boxes("boxes", boxes), source="xyxy", target="cxcywh"), -1, 0)
    xa, ya, wa, ha = jnp.moveaxis(convert_boxes(check_boxes("anchors", anchors), source="xyxy", target="cxcywh"), -1, 0)
    return jnp.stack([wx * (x - xa) / wa, wy * (y - ya) / ha, ww * jnp.log(w / wa), wh * jnp.log(h / ha)], -1)


def decode_boxes(offsets: ArrayLike, anchors: ArrayLike, *, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> Array:
    """Inverse of :func:`encode_boxes`: ``xyxy`` boxes from offsets and anchors.

    .. math:: x = x_a + w_a t_x / w_x,\\quad w = w_a \\exp(t_w / w_w)\\quad (\\text{same for } y, h)

    Args:
      offsets: ``(t_x, t_y, t_w, t_h)``, shape ``(..., 4)``.
      anchors: ``xyxy`` anchors broadcastable to ``offsets``.
      weights: as in :func:`encode_boxes`.

    Returns:
      ``xyxy`` boxes, shape of the broadcast.
    """
    if jnp.shape(offsets)[-1:] != (4,):
        raise ValueError(f"offsets: expected shape (..., 4), got shape {jnp.shape(offsets)}")
    wx, wy, ww, wh = weights
    t = jnp.asarray(offsets)
    xa, ya, wa, ha = jnp.moveaxis(convert_boxes(check_boxes("anchors", anchors), source="xyxy", target="cxcywh"), -1, 0)
    cxcywh = jnp.stack(
        [
            xa + wa * t[..., 0] / wx,
            ya + ha * t[..., 1] / wy,
            wa * jnp.exp(t[..., 2] / ww),
            ha * jnp.exp(t[..., 3] / wh),
        ],
        -1,
    )
    return convert_boxes(cxcywh, source="cxcywh", target="xyxy")
