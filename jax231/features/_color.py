"""Colour features: RGB -> HSV, RGB -> grey, and the course's HSV colour histogram.

HSV (as ``matplotlib.colors.rgb_to_hsv``): ``V = max(r, g, b)``,
``S = (V - min) / V`` (0 where V = 0), and the hue ``H`` in [0, 1):
``((g - b) / delta) / 6``, ``(2 + (b - r) / delta) / 6`` or ``(4 + (r - g) / delta) / 6``
(mod 1) when red, green or blue is the maximum (blue wins ties, then green), 0 for grey
pixels (``delta = max - min = 0``).

References:
  CS231n assignment 1, "features" (``color_histogram_hsv``: a normalised histogram of
  the hue); Smith, "Color gamut transform pairs", SIGGRAPH 1978.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jax231.types import Array, ArrayLike

__all__ = ["GRAY_WEIGHTS", "color_histogram_hsv", "rgb_to_gray", "rgb_to_hsv"]

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of :func:`rgb_to_gray` (the course's ``rgb2gray``)."""

_CHANNELS = {"h": 0, "s": 1, "v": 2}


def _check_rgb(name: str, image: ArrayLike) -> Array:
    image = jnp.asarray(image)
    if image.ndim < 1 or image.shape[-1] != 3:
        raise ValueError(f"{name}: expected RGB values in a last axis of size 3, got shape {image.shape}")
    return image


def rgb_to_hsv(rgb: ArrayLike) -> Array:
    """HSV of RGB values in [0, 1] (any leading shape, last axis 3), as matplotlib computes it."""
    rgb = _check_rgb("rgb", rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    delta = value - rgb.min(axis=-1)
    saturation = jnp.where(value > 0, delta / jnp.where(value > 0, value, 1.0), 0.0)
    safe = jnp.where(delta > 0, delta, 1.0)
    hue = jnp.zeros_like(value)
    hue = jnp.where((r == value) & (delta > 0), (g - b) / safe, hue)
    hue = jnp.where((g == value) & (delta > 0), 2.0 + (b - r) / safe, hue)
    hue = jnp.where((b == value) & (delta > 0), 4.0 + (r - g) / safe, hue)
    return jnp.stack([(hue / 6.0) % 1.0, saturation, value], axis=-1)


def rgb_to_gray(rgb: ArrayLike) -> Array:
    """Luma ``0.299 r + 0.587 g + 0.114 b`` (:data:`GRAY_WEIGHTS`); drops the last axis."""
    rgb = _check_rgb("rgb", rgb)
    return rgb @ jnp.asarray(GRAY_WEIGHTS, rgb.dtype)


def color_histogram_hsv(image: ArrayLike, *, num_bins: int = 10, channels: Sequence[str] = ("h",)) -> Array:
    """Normalised histograms of HSV channels of one RGB image in [0, 1].

    Each channel's values in [0, 1] fall into ``num_bins`` equal bins (the last bin
    closed, as ``numpy.histogram``); each histogram sums to 1 (the course's
    ``density=True`` histogram times the bin widths).

    Args:
      image: ``(H, W, 3)`` RGB in [0, 1].
      num_bins: bins per channel.
      channels: which of ``'h'``, ``'s'``, ``'v'`` (the course uses the hue only).

    Returns:
      ``(len(channels) * num_bins,)`` histogram values.
    """
    image = _check_rgb("image", image)
    if not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins: expected an int >= 1, got {num_bins!r}")
    unknown = [c for c in channels if c not in _CHANNELS]
    if unknown or not channels:
        raise ValueError(f"channels: expected a non-empty subset of ('h', 's', 'v'), got {tuple(channels)!r}")
    hsv = rgb_to_hsv(image).reshape(-1, 3)
    out = []
    for name in channels:
        values = hsv[:, _CHANNELS[name]]
        index = jnp.clip(jnp.floor(values * num_bins).astype(jnp.int32), 0, num_bins - 1)
        counts = jax.nn.one_hot(index, num_bins, dtype=values.dtype).sum(axis=0)
        out.append(counts / values.shape[0])
    return jnp.concatenate(out)
