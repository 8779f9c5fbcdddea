"""Histograms of oriented gradients (HOG), as scikit-image computes them, in JAX.

For a grey image ``I`` (for colour, per pixel the channel of largest gradient magnitude):

1. gradients by centred differences, zero on the border rows/columns:
   ``g_r[i, j] = I[i+1, j] - I[i-1, j]``, ``g_c[i, j] = I[i, j+1] - I[i, j-1]``;
2. magnitude ``m = sqrt(g_r^2 + g_c^2)`` and unsigned orientation
   ``theta = degrees(atan2(g_r, g_c)) mod 180``;
3. cell histograms: each pixel of a ``c_r x c_c`` cell votes ``m`` into bin
   ``b = #{k >= 1 : theta >= 180 k / B}`` of ``B`` orientation bins; the histogram is
   divided by the cell area;
4. block normalisation: every ``b_r x b_c`` window of cells (stride one cell) is
   normalised as a whole (``'L1'``: ``v / (|v|_1 + eps)``; ``'L1-sqrt'``;
   ``'L2'``: ``v / sqrt(|v|_2^2 + eps^2)``; ``'L2-Hys'``: L2, clip at 0.2, L2 again),
   or not at all (``block_norm=None``: the course's ``hog_feature``, raw cell histograms).

References:
  Dalal & Triggs, "Histograms of Oriented Gradients for Human Detection", CVPR 2005;
  CS231n assignment 1, "features"; ``skimage.feature.hog`` (the reference of the tests).
"""

from __future__ import annotations

import jax.numpy as jnp

from jax231.types import Array, ArrayLike

__all__ = ["BLOCK_NORMS", "hog", "hog_cells", "image_gradients"]

BLOCK_NORMS = ("L1", "L1-sqrt", "L2", "L2-Hys")
"""Block normalisations of :func:`hog` (scikit-image's names); ``None`` means none."""

_EPS = 1e-5  # scikit-image's epsilon


def _pair(name: str, value) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name}: expected a positive int or a pair of them, got {value!r}")
    return pair


def image_gradients(image: ArrayLike) -> tuple[Array, Array]:
    """Centred-difference gradients ``(g_row, g_col)`` of a ``(H, W)`` image, zero on the border."""
    image = jnp.asarray(image)
    g_row = jnp.zeros_like(image).at[1:-1, :].set(image[2:, :] - image[:-2, :])
    g_col = jnp.zeros_like(image).at[:, 1:-1].set(image[:, 2:] - image[:, :-2])
    return g_row, g_col


def _strongest_channel_gradients(image: Array) -> tuple[Array, Array]:
    """Per pixel, the gradients of the channel with the largest magnitude (first on ties)."""
    g_row, g_col = jnp.moveaxis(
        jnp.stack([jnp.stack(image_gradients(image[..., c])) for c in range(image.shape[-1])]), 0, -1
    )
    best = jnp.argmax(jnp.hypot(g_row, g_col), axis=-1)[..., None]
    return (jnp.take_along_axis(g_row, best, axis=-1)[..., 0], jnp.take_along_axis(g_col, best, axis=-1)[..., 0])


def hog_cells(
    image: ArrayLike, *, orientations: int = 9, pixels_per_cell=(8, 8), transform_sqrt: bool = False
) -> Array:
    """Steps 1-3: the ``(H / c_r, W / c_c, orientations)`` cell histograms of one image.

    Args:
      image: ``(H, W)`` grey or ``(H, W, C)`` colour image.
      orientations: number of orientation bins ``B`` over [0, 180) degrees.
      pixels_per_cell: ``(c_r, c_c)``; each must divide the image's side.
      transform_sqrt: take the square root of the image first (gamma compression;
        needs non-negative pixels).

    Raises:
      ValueError: for an image that is not 2-D/3-D, ``orientations < 1``, or cell
        sizes that do not divide the image.
    """
    image = jnp.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image: expected (H, W) or (H, W, C), got shape {image.shape}")
    if not isinstance(orientations, int) or orientations < 1:
        raise ValueError(f"orientations: expected an int >= 1, got {orientations!r}")
    c_r, c_c = _pair("pixels_per_cell", pixels_per_cell)
    height, width = image.shape[:2]
    if height % c_r or width % c_c:
        raise ValueError(f"pixels_per_cell: expected sizes dividing the image ({height}, {width}), got {(c_r, c_c)}")
    if transform_sqrt:
        image = jnp.sqrt(image)
    # 1-2. Gradients, magnitude, unsigned orientation.
    g_row, g_col = image_gradients(image) if image.ndim == 2 else _strongest_channel_gradients(image)
    magnitude = jnp.hypot(g_row, g_col)
    theta = jnp.rad2deg(jnp.arctan2(g_row, g_col)) % 180
    # 3. Votes into bins by comparison with the bin edges (as scikit-image compares).
    edges = (180.0 / orientations) * jnp.arange(1, orientations, dtype=theta.dtype)
    bins = jnp.sum(theta[..., None] >= edges, axis=-1)
    votes = magnitude[..., None] * (bins[..., None] == jnp.arange(orientations))
    cells = votes.reshape(height // c_r, c_r, width // c_c, c_c, orientations).sum(axis=(1, 3))
    return cells / (c_r * c_c)


def _normalise(blocks: Array, method: str) -> Array:
    """Normalises each block (the last three axes together)."""
    axes = (-3, -2, -1)
    if method in ("L1", "L1-sqrt"):
        out = blocks / (jnp.sum(jnp.abs(blocks), axis=axes, keepdims=True) + _EPS)
        return jnp.sqrt(out) if method == "L1-sqrt" else out
    out = blocks / jnp.sqrt(jnp.sum(blocks**2, axis=axes, keepdims=True) + _EPS**2)
    if method == "L2-Hys":
        out = jnp.minimum(out, 0.2)
        out = out / jnp.sqrt(jnp.sum(out**2, axis=axes, keepdims=True) + _EPS**2)
    return out


def hog(
    image: ArrayLike,
    *,
    orientations: int = 9,
    pixels_per_cell=(8, 8),
    cells_per_block=(3, 3),
    block_norm: str | None = "L2-Hys",
    transform_sqrt: bool = False,
) -> Array:
    """The HOG descriptor of one image, flattened (``skimage.feature.hog(..., feature_vector=True)``).

    Args:
      image: ``(H, W)`` grey or ``(H, W, C)`` colour image (jit/vmap over a batch).
      orientations: orientation bins ``B``.
      pixels_per_cell: ``(c_r, c_c)``, dividing the image.
      cells_per_block: ``(b_r, b_c)`` cells per normalisation block.
      block_norm: one of :data:`BLOCK_NORMS`, or ``None`` for the raw cell histograms
        (then ``cells_per_block`` is unused).
      transform_sqrt: gamma compression first.

    Returns:
      With a block norm: ``(n_r - b_r + 1) * (n_c - b_c + 1) * b_r * b_c * B`` values, in
      scikit-image's order; without: the ``n_r * n_c * B`` cell histograms.

    Raises:
      ValueError: for cell sizes not dividing the image, blocks larger than the cell
        grid, or an unknown ``block_norm`` (besides :func:`hog_cells`' checks).
    """
    if block_norm is not None and block_norm not in BLOCK_NORMS:
        raise ValueError(f"block_norm: expected one of {BLOCK_NORMS} or None, got {block_norm!r}")
    cells = hog_cells(image, orientations=orientations, pixels_per_cell=pixels_per_cell, transform_sqrt=transform_sqrt)
    if block_norm is None:
        return cells.ravel()
    b_r, b_c = _pair("cells_per_block", cells_per_block)
    n_r, n_c = cells.shape[:2]
    if b_r > n_r or b_c > n_c:
        raise ValueError(f"cells_per_block: expected at most the cell grid {(n_r, n_c)}, got {(b_r, b_c)}")
    # 4. Every window of b_r x b_c cells, stride one cell: (n_r - b_r + 1, n_c - b_c + 1, b_r, b_c, B).
    blocks = jnp.stack(
        [
            jnp.stack([cells[r : r + n_r - b_r + 1, c : c + n_c - b_c + 1] for c in range(b_c)], axis=2)
            for r in range(b_r)
        ],
        axis=2,
    )
    return _normalise(blocks, block_norm).ravel()
