"""One affine-warp primitive with bilinear sampling: rotation, scale, stretch and shear on the device.

A warp reads, for every output pixel :math:`o = (i, j)` (row, column), the
input at :math:`A o + b` by bilinear interpolation, zero outside the image
(:func:`affine_warp`); :func:`affine_matrix` builds :math:`(A, b)` for a
rotation, an isotropic scale, a stretch and a shear about the image centre.

References:
  CS231n notes, "Neural Networks Part 2" / lecture 7, data augmentation
  ("random mixes of translation, rotation, stretching, shearing, lens
  distortions, ... go crazy"); ``scipy.ndimage.affine_transform`` (same
  convention: ``matrix`` maps output to input coordinates).
"""

from __future__ import annotations

import jax.numpy as jnp

from jax231.types import Array, ArrayLike


def bilinear_sample(image: ArrayLike, rows: ArrayLike, cols: ArrayLike, *, fill: float = 0.0) -> Array:
    """Samples ``image`` at real coordinates by bilinear interpolation.

    .. math:: v(r, c) = \\sum_{a, b \\in \\{0, 1\\}} (1 - |r - r_a|)(1 - |c - c_b|)\\, x[r_a, c_b]

    with :math:`r_0 = \\lfloor r \\rfloor, r_1 = r_0 + 1` (same for :math:`c`) and
    :math:`x[r_a, c_b]` = ``fill`` for a neighbour outside the image (as
    ``scipy.ndimage`` with ``order=1, mode='grid-constant'``).

    Args:
      image: ``(H, W, C)``.
      rows: real row coordinates, any shape ``S``.
      cols: real column coordinates, shape ``S``.
      fill: value outside the image.

    Returns:
      ``S + (C,)`` samples in the dtype of ``image``.
    """
    image = jnp.asarray(image)
    h, w = image.shape[:2]
    rows, cols = jnp.asarray(rows, image.dtype), jnp.asarray(cols, image.dtype)
    r0, c0 = jnp.floor(rows), jnp.floor(cols)
    dr, dc = (rows - r0)[..., None], (cols - c0)[..., None]
    r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
    out = jnp.zeros(rows.shape + image.shape[2:], image.dtype)
    for a in (0, 1):
        for b in (0, 1):
            r, c = r0 + a, c0 + b
            inside = ((r >= 0) & (r < h) & (c >= 0) & (c < w))[..., None]
            value = jnp.where(
                inside, image[jnp.clip(r, 0, h - 1), jnp.clip(c, 0, w - 1)], jnp.asarray(fill, image.dtype)
            )
            weight = (dr if a else 1 - dr) * (dc if b else 1 - dc)
            out = out + weight * value
    return out


def affine_warp(image: ArrayLike, matrix: ArrayLike, offset: ArrayLike, *, fill: float = 0.0) -> Array:
    """Warps one image: ``out[o] = image(A o + b)``, bilinear, ``fill`` outside.

    .. math:: y_{i,j,:} = v\\big(A\\, (i, j)^T + b\\big)

    with :math:`A` = ``matrix``, :math:`b` = ``offset`` and :math:`v` the
    bilinear interpolation of :func:`bilinear_sample`: the convention of
    ``scipy.ndimage.affine_transform(image[..., k], matrix, offset, order=1,
    mode='grid-constant', cval=fill)`` for every channel ``k``. Differentiable
    in the image and in :math:`(A, b)`; ``vmap`` it over a batch.

    Args:
      image: ``(H, W, C)``.
      matrix: ``(2, 2)``, maps output ``(row, col)`` to input coordinates.
      offset: ``(2,)``.
      fill: value where the source falls outside the image.

    Returns:
      ``(H, W, C)``, the dtype of ``image``.

    Raises:
      ValueError: on wrong shapes.
    """
    image = jnp.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image: expected shape (H, W, C), got {image.shape}")
    if jnp.shape(matrix) != (2, 2) or jnp.shape(offset) != (2,):
        raise ValueError(
            f"matrix, offset: expected shapes (2, 2) and (2,), got {jnp.shape(matrix)} and {jnp.shape(offset)}"
        )
    h, w = image.shape[:2]
    grid = jnp.stack(jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij")).reshape(2, -1).astype(image.dtype)
    source = jnp.asarray(matrix, image.dtype) @ grid + jnp.asarray(offset, image.dtype)[:, None]
    return bilinear_sample(image, source[0], source[1], fill=fill).reshape(image.shape)


def affine_matrix(
    shape: tuple[int, int],
    *,
    rotation: ArrayLike = 0.0,
    scale: ArrayLike = 1.0,
    stretch: ArrayLike = 1.0,
    shear: ArrayLike = 0.0,
    translation: tuple[ArrayLike, ArrayLike] = (0.0, 0.0),
) -> tuple[Array, Array]:
    """``(A, b)`` of :func:`affine_warp` for a transformation about the image centre.

    The forward map of a point :math:`p` (``(row, col)`` relative to the
    centre :math:`c = ((H-1)/2, (W-1)/2)`) is

    .. math:: p \\mapsto R(\\theta)\\, K(k)\\, S\\, p + t, \\qquad
              S = \\mathrm{diag}(s / a,\\ s a), \\quad
              K(k) = \\begin{pmatrix} 1 & 0 \\\\ k & 1 \\end{pmatrix}

    (:math:`\\theta` = ``rotation`` in radians, counter-clockwise on screen;
    :math:`s` = ``scale``; :math:`a` = ``stretch``, the horizontal/vertical
    aspect change; :math:`k` = ``shear``, columns move by :math:`k` times the
    row; :math:`t` = ``translation`` in pixels). The warp samples the inverse:
    :math:`A = M^{-1}`, :math:`b = c - A (c + t)` with :math:`M = R K S`.

    Args:
      shape: ``(H, W)``.
      rotation: :math:`\\theta` (radians).
      scale: :math:`s > 0` (> 1 zooms in).
      stretch: :math:`a > 0`.
      shear: :math:`k`.
      translation: :math:`t = (t_\\text{row}, t_\\text{col})`.

    Returns:
      ``(matrix (2, 2), offset (2,))``.
    """
    theta = jnp.asarray(rotation, jnp.float32)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    # Rows point down, so a counter-clockwise turn on screen is (r, c) -> (r cos - c sin, r sin + c cos).
    rot = jnp.array([[cos, -sin], [sin, cos]])
    shear_m = jnp.array([[1.0, 0.0], [shear, 1.0]], jnp.float32)
    scale_m = jnp.diag(jnp.stack([scale / stretch, scale * stretch]).astype(jnp.float32))
    forward = rot @ shear_m @ scale_m
    inverse = jnp.linalg.inv(forward)
    centre = jnp.array([(shape[0] - 1) / 2, (shape[1] - 1) / 2], jnp.float32)
    t = jnp.stack([jnp.asarray(translation[0], jnp.float32), jnp.asarray(translation[1], jnp.float32)])
    return inverse, centre - inverse @ (centre + t)
