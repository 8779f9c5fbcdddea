"""Fully connected (affine) layer and flatten."""

from __future__ import annotations

import math

import jax.numpy as jnp

from jax231.models.layers import _checks
from jax231.types import Array, ArrayLike


def affine(x: ArrayLike, w: ArrayLike, b: ArrayLike) -> Array:
    """Affine (fully connected) layer over any leading batch shape.

    .. math:: y = x W + b

    with :math:`x` = ``x`` of shape ``(..., D)``, :math:`W` = ``w`` of shape
    ``(D, M)`` and :math:`b` = ``b`` of shape ``(M,)``. Inputs such as images
    must be flattened first (:func:`flatten`), as in the course's
    ``affine_forward``.

    Args:
      x: inputs, shape ``(..., D)``.
      w: weights, shape ``(D, M)``.
      b: bias, shape ``(M,)``.

    Returns:
      ``x @ w + b``, shape ``(..., M)``.

    Raises:
      ValueError: when ``w`` is not 2-D, its first axis is not ``x.shape[-1]``,
        or ``b`` is not ``(M,)``.

    References:
      CS231n notes, "Neural Networks Part 1" (layer-wise organisation).
    """
    _checks.check_min_rank("x", x, 1, layout="(..., D)")
    _checks.check_rank("w", w, 2, layout="(D, M)")
    d, m = jnp.shape(w)
    if jnp.shape(x)[-1] != d:
        _checks.fail("x", f"last axis {d} to match `w` of shape {jnp.shape(w)}", None, got_text=f"shape {jnp.shape(x)}")
    _checks.check_shape("b", b, (m,), why="one bias per output unit of `w`")
    return jnp.matmul(x, w) + b


def flatten(x: ArrayLike) -> Array:
    """Flattens every axis but the first: ``(N, d1, ..., dk) -> (N, d1·…·dk)``.

    Args:
      x: array of rank >= 2 whose first axis is the batch.

    Returns:
      ``x.reshape(N, -1)``.
    """
    _checks.check_min_rank("x", x, 2, layout="(N, ...)")
    shape = jnp.shape(x)
    return jnp.reshape(x, (shape[0], math.prod(shape[1:])))
