"""Image grids: a batch of images tiled into one picture for a PNG."""

from __future__ import annotations

import math

import numpy as np

from jax231.types import ArrayLike

__all__ = ["image_grid", "rescale_images"]


def rescale_images(images: ArrayLike, *, per_image: bool = True) -> np.ndarray:
    """Maps values affinely onto [0, 1]: ``(x - min) / (max - min)`` per image or over the batch.

    Constant images become 0.5. Input ``(N, ...)``; output float32 of the same shape.
    """
    images = np.asarray(images, np.float32)
    axes = tuple(range(1, images.ndim)) if per_image else None
    low = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - low
    return np.where(span > 0, (images - low) / np.where(span > 0, span, 1.0), 0.5).astype(np.float32)


def image_grid(images: ArrayLike, *, ncols: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tiles ``(N, H, W[, C])`` images (values in [0, 1]) into one ``(rows*(H+pad)-pad, ..., C)`` picture.

    Args:
      images: the images, row-major into the grid; grey images get ``C = 1``.
      ncols: images per row (default ``ceil(sqrt(N))``).
      pad: pixels between images.
      pad_value: the value of the padding.

    Returns:
      float32 ``(rows * (H + pad) - pad, ncols * (W + pad) - pad, C)``.
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images: expected a non-empty (N, H, W[, C]) batch, got shape {images.shape}")
    count, height, width, channels = images.shape
    ncols = ncols or math.ceil(math.sqrt(count))
    if ncols < 1:
        raise ValueError(f"ncols: expected an int >= 1, got {ncols}")
    nrows = math.ceil(count / ncols)
    grid = np.full((nrows * (height + pad) - pad, ncols * (width + pad) - pad, channels), pad_value, np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        grid[r * (height + pad) : r * (height + pad) + height, c * (width + pad) : c * (width + pad) + width] = image
    return grid
