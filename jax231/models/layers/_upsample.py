"""In-network upsampling: transposed convolution, max unpooling, nearest, bed of nails, bilinear."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax

from jax231.models.layers import _checks
from jax231.models.layers._conv import conv_output_size
from jax231.types import Array, ArrayLike


def _check_nonneg_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
    return int(value)


def conv_transpose_output_size(size: int, window: int, stride: int, padding: int = 0, output_padding: int = 0) -> int:
    """Spatial output size of a transposed convolution.

    .. math:: W_\\text{out} = (W - 1) S - 2P + F + A, \\qquad 0 \\le A < S

    with :math:`W` = ``size``, :math:`F` = ``window``, :math:`S` = ``stride``, :math:`P` =
    ``padding`` (the padding of the convolution it transposes) and :math:`A` =
    ``output_padding``: the convolution ``(W_out - F + 2P)/S + 1`` floors, so
    :math:`S` output sizes map to the same :math:`W`, and :math:`A` picks one.

    Raises:
      ValueError: when :math:`A \\ge S` or the size is below 1.
    """
    size = _checks.check_positive_int("size", size)
    window = _checks.check_positive_int("window", window)
    stride = _checks.check_positive_int("stride", stride)
    padding = _check_nonneg_int("padding", padding)
    output_padding = _check_nonneg_int("output_padding", output_padding)
    if output_padding >= stride:
        raise ValueError(f"output_padding: expected an int in [0, stride={stride}), got {output_padding}")
    out = (size - 1) * stride - 2 * padding + window + output_padding
    if out < 1:
        raise ValueError(
            f"padding: expected (W-1)S - 2P + F + A >= 1, got {out} for W={size}, F={window}, "
            f"S={stride}, P={padding}, A={output_padding}"
        )
    return out


def conv_transpose2d(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None = None,
    *,
    stride: int = 1,
    padding: int = 0,
    output_size: tuple[int, int] | None = None,
) -> Array:
    """Transposed ("fractionally strided") 2-D convolution: the adjoint of :func:`conv2d`.

    Every input value scales a copy of the filter, placed ``stride`` apart on the output,
    and overlapping copies add up:

    .. math:: y_{n,\\,Si+u-P,\\,Sj+v-P,\\,o} \\mathrel{+}= x_{n,i,j,c}\\, w_{u,v,c,o}

    so for every :math:`z` and :math:`x`,
    :math:`\\langle \\text{conv2d}(z, w^\\top), x\\rangle = \\langle z, \\text{conv\\_transpose2d}(x, w)\\rangle`
    with :math:`w^\\top` = ``w.swapaxes(2, 3)`` and the same stride and padding (that is
    how it arises as the backward pass of a strided convolution). Implemented as a
    convolution of the input dilated by :math:`S` with the spatially flipped filter,
    padded by :math:`F - 1 - P` (plus :math:`A` at the end).

    Args:
      x: ``(N, H, W, C_in)``.
      w: ``(F_h, F_w, C_in, C_out)``.
      b: optional bias ``(C_out,)``.
      stride: :math:`S`.
      padding: :math:`P`, the zeros of the convolution this one transposes (crops the output).
      output_size: optional ``(H_out, W_out)``; each must lie in
        ``[(H-1)S - 2P + F, (H-1)S - 2P + F + S - 1]`` (it sets :math:`A`); default :math:`A = 0`.

    Returns:
      ``(N, H_out, W_out, C_out)``, sizes from :func:`conv_transpose_output_size`.

    Raises:
      ValueError: wrong shapes, an ``output_size`` that cannot be produced.

    References:
      CS231n lecture 11 ("learnable upsampling"); Dumoulin & Visin, "A guide to convolution
      arithmetic", 2016.
    """
    _checks.check_rank("x", x, 4, layout="NHWC")
    _checks.check_rank("w", w, 4, layout="HWIO")
    stride = _checks.check_positive_int("stride", stride)
    padding = _check_nonneg_int("padding", padding)
    x, w = jnp.asarray(x), jnp.asarray(w)
    if w.shape[2] != x.shape[-1]:
        raise ValueError(
            f"w: expected {x.shape[-1]} input channels (axis 2) to match x of shape {x.shape}, got shape {w.shape}"
        )
    if b is not None:
        _checks.check_shape("b", b, (w.shape[3],), why="one bias per output channel")
    pads = []
    for axis in range(2):
        window = w.shape[axis]
        smallest = conv_transpose_output_size(x.shape[1 + axis], window, stride, padding)
        extra = 0
        if output_size is not None:
            if len(output_size) != 2:
                raise ValueError(f"output_size: expected (H_out, W_out), got {output_size!r}")
            extra = int(output_size[axis]) - smallest
            if not 0 <= extra < stride:
                raise ValueError(
                    f"output_size: expected sizes in [{smallest}, {smallest + stride - 1}] along "
                    f"axis {axis + 1} for input size {x.shape[1 + axis]}, F={window}, S={stride}, "
                    f"P={padding}, got {tuple(output_size)}"
                )
        pads.append((window - 1 - padding, window - 1 - padding + extra))
    if padding == 0 and output_size is None and w.shape[:2] == (stride, stride):
        # Non-overlapping copies (F = S, P = 0): one GEMM and a depth-to-space reshape,
        # y[n, S i + u, S j + v] = x[n, i, j] @ w[u, v]. XLA's CPU convolution with
        # lhs_dilation has no fast kernel (the U-Net's 2x2 stride-2 upsampling was ~40% of
        # its train step); this computes the same sums.
        n, h, wd, _ = x.shape
        y = jnp.einsum("nhwc,uvco->nhuwvo", x, w).reshape(n, h * stride, wd * stride, w.shape[3])
    else:
        y = lax.conv_general_dilated(
            x,
            w[::-1, ::-1],
            window_strides=(1, 1),
            padding=pads,
            lhs_dilation=(stride, stride),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
    return y if b is None else y + b


class PoolSwitches(NamedTuple):
    """Where each max of :func:`max_pool_with_switches` came from.

    Attributes:
      rows, cols: ``(N, H_out, W_out, C)`` int32 input coordinates of each maximum.
      input_shape: the pooled input's shape ``(N, H, W, C)`` (static).
    """

    rows: Array
    cols: Array
    input_shape: tuple[int, ...]


def max_pool_with_switches(x: ArrayLike, *, window: int = 2, stride: int = 2) -> tuple[Array, PoolSwitches]:
    """Max pooling that also remembers the position of each maximum (the "switches").

    .. math:: y_{n,i,j,c} = \\max_{u,v} x_{n,Si+u,Sj+v,c}, \\qquad
              (r, s)_{n,i,j,c} = (Si, Sj) + \\arg\\max_{u,v} x_{n,Si+u,Sj+v,c}

    (ties go to the first position in row-major window order).

    Args:
      x: ``(N, H, W, C)``.
      window: :math:`F`; stride: :math:`S` (no padding; ``(W - F)/S + 1`` must be whole).

    Returns:
      ``(y, switches)``; ``y`` equals :func:`max_pool`.
    """
    _checks.check_rank("x", x, 4, layout="NHWC")
    window = _checks.check_positive_int("window", window)
    stride = _checks.check_positive_int("stride", stride)
    x = jnp.asarray(x)
    n, h, w, c = x.shape
    ho, wo = (conv_output_size(s, window, stride, 0) for s in (h, w))
    # patches[n, i, j, c, u*F + v] = x[n, S i + u, S j + v, c]
    rows = stride * jnp.arange(ho)[:, None] + jnp.arange(window)[None, :]  # (ho, F)
    cols = stride * jnp.arange(wo)[:, None] + jnp.arange(window)[None, :]  # (wo, F)
    patches = x[:, rows[:, None, :, None], cols[None, :, None, :], :]  # (n, ho, wo, F, F, c)
    patches = jnp.moveaxis(patches, -1, 3).reshape(n, ho, wo, c, window * window)
    best = jnp.argmax(patches, axis=-1)
    y = jnp.max(patches, axis=-1)
    base_r = (stride * jnp.arange(ho))[None, :, None, None]
    base_c = (stride * jnp.arange(wo))[None, None, :, None]
    switches = PoolSwitches(
        (base_r + best // window).astype(jnp.int32), (base_c + best % window).astype(jnp.int32), (n, h, w, c)
    )
    return y, switches


def max_unpool(y: ArrayLike, switches: PoolSwitches) -> Array:
    """Max unpooling: each value goes back to where its max came from, zeros elsewhere.

    .. math:: z_{n, r_{nijc}, s_{nijc}, c} \\mathrel{+}= y_{n,i,j,c}

    (overlapping windows that share a maximum add up), which is exactly the gradient of
    max pooling with respect to its input: ``max_unpool(g, s) == vjp(max_pool)(g)``.

    Args:
      y: ``(N, H_out, W_out, C)`` values to place (e.g. decoder features).
      switches: from :func:`max_pool_with_switches` of the matching pooling layer.

    Returns:
      ``(N, H, W, C)``, the pooled input's shape.
    """
    _checks.check_shape("y", y, tuple(switches.rows.shape), why="the shape of the pooled output")
    n, h, w, c = switches.input_shape
    ni = jnp.arange(n)[:, None, None, None]
    ci = jnp.arange(c)[None, None, None, :]
    return jnp.zeros((n, h, w, c), jnp.result_type(y)).at[ni, switches.rows, switches.cols, ci].add(y)


def _check_factor(factor) -> int:
    return _checks.check_positive_int("factor", factor)


def nearest_upsample(x: ArrayLike, *, factor: int = 2) -> Array:
    """Nearest-neighbour unpooling: every value fills a ``factor x factor`` block.

    .. math:: z_{n, i, j, c} = x_{n, \\lfloor i/k \\rfloor, \\lfloor j/k \\rfloor, c}

    Args:
      x: ``(N, H, W, C)``; factor: :math:`k`.

    Returns:
      ``(N, kH, kW, C)``.
    """
    _checks.check_rank("x", x, 4, layout="NHWC")
    factor = _check_factor(factor)
    return jnp.repeat(jnp.repeat(jnp.asarray(x), factor, axis=1), factor, axis=2)


def bed_of_nails_upsample(x: ArrayLike, *, factor: int = 2) -> Array:
    """Bed-of-nails unpooling: each value at the top-left of its block, zeros elsewhere.

    .. math:: z_{n, ki, kj, c} = x_{n, i, j, c}, \\quad z = 0 \\text{ elsewhere}

    Args:
      x: ``(N, H, W, C)``; factor: :math:`k`.

    Returns:
      ``(N, kH, kW, C)``.
    """
    _checks.check_rank("x", x, 4, layout="NHWC")
    factor = _check_factor(factor)
    x = jnp.asarray(x)
    n, h, w, c = x.shape
    return jnp.zeros((n, h * factor, w * factor, c), x.dtype).at[:, ::factor, ::factor, :].set(x)


def bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The ``(size_out, size_in)`` linear-interpolation matrix with half-pixel centres.

    Output pixel :math:`o` samples the input at :math:`t = (o + 1/2)\\,W_\\text{in}/W_\\text{out} - 1/2`,
    clamped to ``[0, W_in - 1]``, with weights :math:`1 - (t - \\lfloor t\\rfloor)` and
    :math:`t - \\lfloor t \\rfloor` on its two neighbours.
    """
    t = (np.arange(size_out) + 0.5) * size_in / size_out - 0.5
    t = np.clip(t, 0.0, size_in - 1)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = t - lo
    m = np.zeros((size_out, size_in))
    m[np.arange(size_out), lo] += 1.0 - frac
    m[np.arange(size_out), hi] += frac
    return m


def bilinear_upsample(x: ArrayLike, *, size: tuple[int, int] | None = None, factor: int | None = None) -> Array:
    """Bilinear upsampling (half-pixel centres, edges clamped), separable per axis.

    .. math:: z = A_H\\, x\\, A_W^\\top \\quad (\\text{per image and channel})

    with :math:`A` from :func:`bilinear_matrix`; equals ``jax.image.resize(..., 'bilinear')``
    when enlarging.

    Args:
      x: ``(N, H, W, C)``.
      size: ``(H_out, W_out)``; or factor: an integer scale (exactly one of the two).

    Returns:
      ``(N, H_out, W_out, C)``.
    """
    _checks.check_rank("x", x, 4, layout="NHWC")
    if (size is None) == (factor is None):
        raise ValueError(f"size, factor: expected exactly one of them, got size={size!r}, factor={factor!r}")
    x = jnp.asarray(x)
    if size is None:
        factor = _check_factor(factor)
        size = (x.shape[1] * factor, x.shape[2] * factor)
    if len(size) != 2:
        raise ValueError(f"size: expected (H_out, W_out), got {size!r}")
    ho, wo = (_checks.check_positive_int("size", int(s)) for s in size)
    a_h = jnp.asarray(bilinear_matrix(x.shape[1], ho), x.dtype)
    a_w = jnp.asarray(bilinear_matrix(x.shape[2], wo), x.dtype)
    return jnp.einsum("oh,nhwc,pw->nopc", a_h, x, a_w)
