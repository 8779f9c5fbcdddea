"""Pooling: max and average over windows, global average pooling."""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models.layers import _checks
from jax231.models.layers._conv import conv_output_size
from jax231.types import Array, ArrayLike

POOL_IMPLS = ("auto", "reduce_window", "reshape")
"""Implementations of :func:`max_pool`: ``'reduce_window'`` (XLA's windowed reduction, whose
gradient is select-and-scatter), ``'reshape'`` (non-overlapping windows as a reshape + max with
a hand-written first-maximum VJP) and ``'auto'`` (``'reshape'`` whenever ``window == stride``)."""


def _window_view(x: Array, k: int) -> Array:
    """``x`` of shape ``(N, *S, C)`` viewed as ``(N, S_1/k, k, S_2/k, k, ..., C)`` (no copy)."""
    shape = [x.shape[0]]
    for size in x.shape[1:-1]:
        shape += [size // k, k]
    return x.reshape(*shape, x.shape[-1])


def _window_axes(spatial: int) -> tuple[int, ...]:
    return tuple(2 + 2 * i for i in range(spatial))


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool_reshape(x: Array, k: int) -> Array:
    return jnp.max(_window_view(x, k), axis=_window_axes(x.ndim - 2))


def _max_pool_reshape_fwd(x: Array, k: int):
    y = _max_pool_reshape(x, k)
    return y, (x, y)


def _max_pool_reshape_bwd(k: int, residuals, g: Array):
    """Routes each output gradient to the FIRST maximum of its window (row-major order).

    That is the sub-gradient XLA's select-and-scatter picks, so this VJP equals
    the gradient of ``reduce_window`` bit for bit, ties included (ReLU outputs
    make all-zero windows common), at a fraction of its cost.
    """
    x, y = residuals
    spatial = x.ndim - 2
    view = _window_view(x, k)
    taken = jnp.zeros(y.shape, dtype=bool)
    pieces = []
    # 1. Walk the k^d window positions in row-major order; position p gets the
    #    gradient when it holds the maximum and no earlier position did.
    for offsets in _offsets(k, spatial):
        index: list[slice | int] = [slice(None)] * view.ndim
        for axis, o in zip(_window_axes(spatial), offsets):
            index[axis] = o
        first = (view[tuple(index)] == y) & ~taken
        taken = taken | first
        pieces.append(jnp.where(first, g, jnp.zeros_like(g)))
    # 2. Put the pieces back at their window positions.
    dx = jnp.stack(pieces, axis=-1).reshape(*y.shape, *(k,) * spatial)
    # (N, O_1, ..., C, k_1, ...) -> (N, O_1, k_1, O_2, k_2, ..., C)
    perm = [0]
    for i in range(spatial):
        perm += [1 + i, spatial + 2 + i]
    perm.append(spatial + 1)
    return (jnp.transpose(dx, perm).reshape(x.shape),)


def _offsets(k: int, spatial: int) -> list[tuple[int, ...]]:
    if spatial == 1:
        return [(u,) for u in range(k)]
    return [(u, v) for u in range(k) for v in range(k)]


_max_pool_reshape.defvjp(_max_pool_reshape_fwd, _max_pool_reshape_bwd)


def _check_windows(x: Array, window: int, stride: int) -> None:
    for axis in range(x.ndim - 2):
        # Raises when (W - F)/S + 1 is not a whole number, as the course's pooling does.
        try:
            conv_output_size(x.shape[1 + axis], window, stride, 0)
        except ValueError as error:
            raise ValueError(
                f"`x` of shape {x.shape} with window={window}, stride={stride} along spatial axis {axis + 1}: {error}"
            ) from None


def _pool(x: ArrayLike, window: int, stride: int, init: float, op: Callable[[Array, Array], Array]) -> Array:
    _checks.check_rank("x", x, (3, 4), layout="(N, W, C) or (N, H, W, C)")
    window = _checks.check_positive_int("window", window)
    stride = _checks.check_positive_int("stride", stride)
    x = jnp.asarray(x)
    spatial = x.ndim - 2
    _check_windows(x, window, stride)
    dims = (1,) + (window,) * spatial + (1,)
    strides = (1,) + (stride,) * spatial + (1,)
    # `init` stays a Python scalar: JAX then recognises the (max or add) monoid and uses its
    # differentiable primitive; an array init would be a generic, non-differentiable reduction
    # under jit.
    return lax.reduce_window(x, init, op, dims, strides, "VALID")


def max_pool(x: ArrayLike, *, window: int = 2, stride: int = 2, impl: str = "auto") -> Array:
    """Max pooling over ``window``-wide windows moved by ``stride`` (no padding).

    .. math:: y_{n,i,j,c} = \\max_{0 \\le u,v < F} x_{n, Si+u, Sj+v, c}

    with :math:`F` = ``window`` and :math:`S` = ``stride``; output size
    :math:`(W - F)/S + 1` per spatial axis.

    Args:
      x: shape ``(N, W, C)`` or ``(N, H, W, C)``.
      window: window size :math:`F` on every spatial axis.
      stride: stride :math:`S`.
      impl: ``'reduce_window'``, ``'reshape'`` (only for ``window == stride``)
        or ``'auto'``. Both compute the same values and the same gradient
        (the first maximum of a window in row-major order receives it). The
        reshape form exists for speed: on the 2-core reference CPU the
        gradient of a ``reduce_window`` max pool (XLA's select-and-scatter)
        was the largest single cost of a CNN train step (59 ms of ~245 ms for
        a 128x32x32x32 input); the reshape + max forward with the hand-written
        VJP measured ~10x cheaper (6 ms; ``benchmarks/bench_cnn.py``).

    Returns:
      Shape ``(N, W_out, C)`` or ``(N, H_out, W_out, C)``.

    Raises:
      ValueError: on a wrong rank, when :math:`(W - F)/S + 1` is not a
        whole number (pooling never pads or drops a remainder silently), an
        unknown ``impl``, or ``impl='reshape'`` with overlapping windows.

    References:
      CS231n notes, "Convolutional Neural Networks", pooling layer.
    """
    if impl not in POOL_IMPLS:
        raise ValueError(f"impl: expected one of {', '.join(POOL_IMPLS)}, got {impl!r}")
    if impl == "reshape" and window != stride:
        raise ValueError(f"impl: 'reshape' needs window == stride, got window={window}, stride={stride}")
    if impl == "reduce_window" or window != stride:
        return _pool(x, window, stride, -jnp.inf, lax.max)
    _checks.check_rank("x", x, (3, 4), layout="(N, W, C) or (N, H, W, C)")
    window = _checks.check_positive_int("window", window)
    x = jnp.asarray(x)
    _check_windows(x, window, stride)
    return _max_pool_reshape(x, window)


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
