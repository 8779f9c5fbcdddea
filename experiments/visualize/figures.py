"""PNG figures of the visualize experiment: rows of images with titles, the t-SNE scatter."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from jax231 import visualize  # pylint: disable=wrong-import-position


def _show(ax, image: np.ndarray, cmap: str | None = None) -> None:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(
        np.clip(image, 0, 1),
        cmap=cmap or ("gray" if image.ndim == 2 else None),
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def save_rows(
    path: str | os.PathLike,
    rows: Sequence[tuple[str, np.ndarray]],
    *,
    titles: Sequence[str] | None = None,
    title: str = "",
    cmaps: Sequence[str | None] | None = None,
) -> pathlib.Path:
    """One row per ``(label, images in [0, 1])``, one column per image; column titles optional."""
    ncols = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(max(1.3 * ncols + 1.2, 6.0), 1.4 * len(rows) + 0.5), squeeze=False
    )
    for r, (label, images) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c < len(images):
                _show(ax, images[c], None if cmaps is None else cmaps[r])
            else:
                ax.axis("off")
            if r == 0 and titles is not None and c < len(titles):
                ax.set_title(titles[c], fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return pathlib.Path(path)


def save_grid(path: str | os.PathLike, images: np.ndarray, *, title: str, ncols: int | None = None) -> pathlib.Path:
    """One ``jax231.visualize.image_grid`` picture (images already in [0, 1])."""
    grid = visualize.image_grid(images, ncols=ncols, pad=1)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1] + 0.4))
    _show(ax, grid)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return pathlib.Path(path)


def save_tsne(
    path: str | os.PathLike, points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *, title: str
) -> pathlib.Path:
    """The 2-D t-SNE points coloured by class, with a legend."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10")
    for k, name in enumerate(class_names):
        sel = labels == k
        ax.scatter(points[sel, 0], points[sel, 1], s=6, color=cmap(k % 10), label=name)
    ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return pathlib.Path(path)
