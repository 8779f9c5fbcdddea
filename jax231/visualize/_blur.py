"""Gaussian blur of image batches (the regulariser of class visualisation)."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from jax231.types import Array, ArrayLike

__all__ = ["gaussian_blur", "jitter"]


def gaussian_blur(images: ArrayLike, *, sigma: float) -> Array:
    """Separable Gaussian blur of ``(N, H, W, C)`` images, edge-replicated borders.

    The kernel has ``2 * ceil(3 sigma) + 1`` taps, weights ``exp(-d^2 / (2 sigma^2))``
    normalised to sum to 1 (``sigma`` must be a Python number: it fixes the kernel size).
    """
    images = jnp.asarray(images)
    if not sigma > 0:
        raise ValueError(f"sigma: expected a number > 0, got {sigma!r}")
    radius = math.ceil(3 * sigma)
    taps = jnp.exp(-(jnp.arange(-radius, radius + 1, dtype=images.dtype) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    channels = images.shape[-1]
    padded = jnp.pad(images, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
    dims = ("NHWC", "HWIO", "NHWC")
    rows = jnp.tile(taps[:, None, None, None], (1, 1, 1, channels))
    cols = jnp.tile(taps[None, :, None, None], (1, 1, 1, channels))
    out = lax.conv_general_dilated(padded, rows, (1, 1), "VALID", dimension_numbers=dims, feature_group_count=channels)
    return lax.conv_general_dilated(out, cols, (1, 1), "VALID", dimension_numbers=dims, feature_group_count=channels)


def jitter(images: ArrayLike, shift_rows, shift_cols) -> Array:
    """Circular shift of ``(N, H, W, C)`` images by (possibly traced) integer offsets."""
    return jnp.roll(jnp.roll(jnp.asarray(images), shift_rows, axis=1), shift_cols, axis=2)
