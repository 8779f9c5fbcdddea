"""Pooling: max and average over windows, global average pooling."""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from jax import lax

from jax231.models.layers import _checks
from jax231.models.layers._conv import conv_output_size
from jax231.types import Array, ArrayLike


def _pool(x: ArrayLike, window: int, stride: int, init: float, op: Callable[[Array, Array], Array]) -> Array:
    _checks.check_rank("x", x, (3, 4), layout="(N, W, C) or (N, H, W, C)")
    window = _checks.check_positive_int("window", window)
    stride = _checks.check_positive_int("stride", stride)
    x = jnp.asarray(x)
    spatial = x.ndim - 2
    for axis in range(spatial):
        # Raises when (W - F)/S + 1 is not a whole number, as the course's pooling does.
        try:
            conv_output_size(x.shape[1 + axis], window, stride, 0)
        except ValueError as error:
            raise ValueError(
                f"`x` of shape {x.shape} with window={window}, stride={stride} along "
                f"spatial axis {axis + 1}: {error}"
            ) from None
    dims = (1,) + (window,) * spatial + (1,)
    strides = (1,) + (stride,) * spatial + (1,)
    # `init` stays a Python scalar: JAX then recognises the (max or add) monoid and uses its
    # differentiable primitive; an array init would be a generic, non-differentiable reduction
    # under jit.
    return lax.reduce_window(x, init, op, dims, strides, "VALID")


def max_pool(x: ArrayLike, *, window: int = 2, stride: int = 2) -> Array:
    """Max pooling over ``window``-wide windows moved by ``stride`` (no padding).

    .. math:: y_{n,i,j,c} = \\max_{0 \\le u,v < F} x_{n, Si+u, Sj+v, c}

    with :math:`F` = ``window`` and :math:`S` = ``stride``; output size
    :math:`(W - F)/S + 1` per spatial axis.

    Args:
      x: shape ``(N, W, C)`` or ``(N, H, W, C)``.
      window: window size :math:`F` on every spatial axis.
      stride: stride :math:`S`.

    Returns:
      Shape ``(N, W_out, C)`` or ``(N, H_out, W_out, C)``.

    Raises:
      ValueError: on a wrong rank, or when :math:`(W - F)/S + 1` is not a
        whole number (pooling never pads or drops a remainder silently).

    References:
      CS231n notes, "Convolutional Neural Networks", pooling layer.
    """
    return _pool(x, window, stride, -jnp.inf, lax.max)


def avg_pool(x: ArrayLike, *, window: int = 2, stride: int = 2) -> Array:
    """Average pooling over ``window``-wide windows moved by ``stride`` (no padding).

    .. math:: y_{n,i,j,c} = \\frac{1}{F^d} \\sum_{0 \\le u,v < F} x_{n, Si+u, Sj+v, c}

    with :math:`d` the number of spatial axes (1 or 2).

    Args:
      x: shape ``(N, W, C)`` or ``(N, H, W, C)``.
      window: window size :math:`F` on every spatial axis.
      stride: stride :math:`S`.

    Returns:
      Shape ``(N, W_out, C)`` or ``(N, H_out, W_out, C)``.

    Raises:
      ValueError: as :func:`max_pool`.
    """
    x = jnp.asarray(x)
    summed = _pool(x, window, stride, 0.0, lax.add)
    return summed / window ** (x.ndim - 2)


def global_avg_pool(x: ArrayLike) -> Array:
    """Global average pooling: the mean over every spatial axis.

    .. math:: y_{n,c} = \\frac{1}{HW} \\sum_{i,j} x_{n,i,j,c}

    Args:
      x: shape ``(N, *spatial, C)`` with at least one spatial axis.

    Returns:
      Shape ``(N, C)``.
    """
    _checks.check_min_rank("x", x, 3, layout="(N, *spatial, C)")
    x = jnp.asarray(x)
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
