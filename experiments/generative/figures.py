"""PNG figures of the generative experiment: image grids and latent interpolations (Agg backend)."""

from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def tile(images: np.ndarray, num_cols: int, *, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tiles ``(N, H, W, C)`` images in ``[0, 1]`` into one ``(rows (H + pad), cols (W + pad), C)`` canvas.

    The gaps (and empty cells) have the value ``fill``.
    """
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    num_rows = -(-n // num_cols)
    canvas = np.full((num_rows * (h + pad) + pad, num_cols * (w + pad) + pad, c), fill, np.float32)
    for i, image in enumerate(images):
        r, q = divmod(i, num_cols)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = image
    return canvas


def save_grid(path: str | os.PathLike, images: np.ndarray, *, num_cols: int = 10, title: str = "") -> pathlib.Path:
    """Writes ``images`` as one grid PNG (grey images shown black on white, like ink)."""
    grey = np.shape(images)[-1] == 1
    canvas = tile(images, num_cols, fill=0.0 if grey else 1.0)  # gaps drawn white either way
    fig, ax = plt.subplots(figsize=(0.5 * canvas.shape[1] / 9 * 1.2 + 1, 0.5 * canvas.shape[0] / 9 * 1.2 + 0.6))
    if grey:
        ax.imshow(1.0 - canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def interpolate(z0: np.ndarray, z1: np.ndarray, num_steps: int) -> np.ndarray:
    """Linear interpolation ``(1 - a) z0 + a z1`` for ``a`` in ``linspace(0, 1, num_steps)``, stacked per row.

    Args:
      z0: ``(R, Z)`` start latents (one row of the figure each).
      z1: ``(R, Z)`` end latents.
      num_steps: points per row.

    Returns:
      ``(R * num_steps, Z)`` latents, row-major (row ``r`` goes from ``z0[r]`` to ``z1[r]``).
    """
    alphas = np.linspace(0.0, 1.0, num_steps)[None, :, None]
    path = (1.0 - alphas) * np.asarray(z0)[:, None, :] + alphas * np.asarray(z1)[:, None, :]
    return path.reshape(-1, path.shape[-1])
