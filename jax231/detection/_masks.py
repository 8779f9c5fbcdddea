"""Segmentation masks: shape checks, boxes of masks, the confusion matrix, mean IoU and pixel accuracy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax231.types import Array, ArrayLike


def check_mask(name: str, mask: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """Returns ``mask`` as an array or raises ``ValueError`` unless its shape is ``shape``."""
    if tuple(np.shape(mask)) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got shape {tuple(np.shape(mask))}")
    return np.asarray(mask)


def masks_to_boxes(masks: ArrayLike) -> np.ndarray:
    """Tight xyxy boxes of boolean masks ``(K, H, W)`` -> ``(K, 4)`` (pixel edges; empty -> zeros)."""
    masks = np.asarray(masks, bool)
    if masks.ndim != 3:
        raise ValueError(f"masks: expected shape (K, H, W), got shape {masks.shape}")
    out = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        if len(rows):
            out[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return out


def confusion_matrix(pred: ArrayLike, target: ArrayLike, *, num_classes: int) -> np.ndarray:
    """``C[t, p]`` = number of pixels of true class ``t`` predicted as ``p``."""
    target = np.asarray(target)
    pred = check_mask("pred", pred, target.shape)
    flat = target.reshape(-1).astype(np.int64) * num_classes + pred.reshape(-1).astype(np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def mean_iou(pred: ArrayLike, target: ArrayLike, *, num_classes: int) -> tuple[float, np.ndarray]:
    """Mean over classes present (in the target or the prediction) of the per-class IoU.

    .. math:: \\text{IoU}_c = \\frac{C_{cc}}{\\sum_p C_{cp} + \\sum_t C_{tc} - C_{cc}}

    Returns:
      ``(mean IoU, per-class IoU (num_classes,) with NaN for absent classes)``.
    """
    c = confusion_matrix(pred, target, num_classes=num_classes).astype(np.float64)
    inter = np.diag(c)
    union = c.sum(0) + c.sum(1) - inter
    per_class = np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)
    return float(np.nanmean(per_class)), per_class


def pixel_accuracy(pred: ArrayLike, target: ArrayLike) -> float:
    """Fraction of pixels whose predicted class is right."""
    target = np.asarray(target)
    return float(np.mean(check_mask("pred", pred, target.shape) == target))


def pixel_cross_entropy(*, logits: ArrayLike, labels: ArrayLike) -> Array:
    """Per-image mean over pixels of the softmax cross-entropy: ``(N, H, W, C), (N, H, W) -> (N,)``.

    .. math:: L_n = -\\frac{1}{HW}\\sum_{i,j} \\log \\mathrm{softmax}(s_{nij})_{y_{nij}}

    The per-example loss of a segmenter for :func:`jax231.training.fit` (whose accuracy is
    then the pixel accuracy).
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 4 or jnp.shape(labels) != logits.shape[:3]:
        raise ValueError(
            f"labels: expected shape {logits.shape[:3]} (the logits' (N, H, W)), got shape {jnp.shape(labels)}"
        )
    log_p = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_p, jnp.asarray(labels, jnp.int32)[..., None], axis=-1)[..., 0]
    return -jnp.mean(picked, axis=(1, 2))
