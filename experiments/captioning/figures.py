"""Figures of the captioning experiment: captioned test canvases and attention maps."""

from __future__ import annotations

import math
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from jax231 import pipelines


def draw_captions(path: pathlib.Path, test, generated: dict[str, np.ndarray], *, num: int) -> None:
    """A grid of test canvases titled with the true caption and each decoder's greedy caption."""
    cols = min(num, 4)
    rows = -(-num // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= num:
            continue
        ax.imshow(test["image"][k, ..., 0], cmap="gray", vmin=0, vmax=1)
        lines = [f"true: {pipelines.decode_caption(test['caption'][k])}"]
        lines += [f"{d}: {pipelines.decode_caption(t[k])}" for d, t in generated.items()]
        ax.set_title("\n".join(lines), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def draw_attention(path: pathlib.Path, images: np.ndarray, tokens: np.ndarray, alphas: np.ndarray) -> None:
    """Each generated word's attention map (the grid upsampled onto the canvas), one row per image."""
    steps = alphas.shape[1]
    side = math.isqrt(alphas.shape[2])
    fig, axes = plt.subplots(len(images), steps + 1, figsize=(1.6 * (steps + 1), 1.8 * len(images)), squeeze=False)
    for i, row in enumerate(axes):
        row[0].imshow(images[i, ..., 0], cmap="gray", vmin=0, vmax=1)
        for t, ax in enumerate(row[1:]):
            word = pipelines.CAPTION_WORDS[int(tokens[i, t + 1])]
            ax.imshow(images[i, ..., 0], cmap="gray", vmin=0, vmax=1)
            ax.imshow(
                alphas[i, t].reshape(side, side),
                cmap="inferno",
                alpha=0.6,
                extent=(-0.5, images.shape[2] - 0.5, images.shape[1] - 0.5, -0.5),
            )
            ax.set_title(word, fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
