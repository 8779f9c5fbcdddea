"""PNG overlays of predictions: boxes (with class and score) and masks drawn on the images.

Shared by the segmentation, localization and detection experiments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_COLORS = plt.get_cmap("tab10")


def _grid(count: int, cols: int):
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def _draw_boxes(ax, boxes, labels, scores=None, *, style: str = "-"):
    for k, (box, label) in enumerate(zip(boxes, labels)):
        x1, y1, x2, y2 = (float(v) for v in box)
        color = _COLORS(int(label) % 10)
        ax.add_patch(plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.5, ls=style, ec=color))
        text = f"{int(label)}" if scores is None else f"{int(label)}:{float(scores[k]):.2f}"
        ax.text(x1 - 0.5, y1 - 1.0, text, color=color, fontsize=7, va="bottom")


def _mask_rgba(mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Class mask (0 = background, c + 1 = class c) -> an RGBA overlay."""
    rgba = np.zeros(mask.shape + (4,))
    for value in np.unique(mask):
        if value > 0:
            rgba[mask == value] = (*_COLORS(int(value - 1) % 10)[:3], alpha)
    return rgba


def draw_detections(
    path: str | os.PathLike,
    images: np.ndarray,
    *,
    pred_boxes: Sequence[np.ndarray],
    pred_labels: Sequence[np.ndarray],
    pred_scores: Sequence[np.ndarray] | None = None,
    true_boxes: Sequence[np.ndarray] | None = None,
    cols: int = 6,
    title: str = "",
) -> str:
    """Images with predicted boxes (solid, ``class:score``) and true boxes (dashed, white)."""
    fig, axes = _grid(len(images), cols)
    for i, ax in enumerate(axes[: len(images)]):
        ax.imshow(np.asarray(images[i])[..., 0], cmap="gray", vmin=0, vmax=1)
        if true_boxes is not None:
            for box in true_boxes[i]:
                x1, y1, x2, y2 = (float(v) for v in box)
                ax.add_patch(
                    plt.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=0.8, ls="--", ec="white")
                )
        _draw_boxes(ax, pred_boxes[i], pred_labels[i], None if pred_scores is None else pred_scores[i])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def draw_masks(
    path: str | os.PathLike,
    images: np.ndarray,
    *,
    pred_masks: np.ndarray,
    true_masks: np.ndarray,
    cols: int = 6,
    title: str = "",
) -> str:
    """Pairs of panels per image: the true class mask and the predicted one, over the image."""
    count = len(images)
    fig, axes = _grid(2 * count, cols)
    for i in range(count):
        for ax, mask, name in ((axes[2 * i], true_masks[i], "true"), (axes[2 * i + 1], pred_masks[i], "pred")):
            ax.imshow(np.asarray(images[i])[..., 0], cmap="gray", vmin=0, vmax=1)
            ax.imshow(_mask_rgba(np.asarray(mask)))
            ax.set_title(name, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
