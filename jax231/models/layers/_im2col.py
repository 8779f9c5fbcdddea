"""The course's "fast layers": convolution as im2col + one matrix multiply, with a hand-written VJP.

CS231n assignment 2 (``fast_layers.py``) turns a convolution into a matrix
multiply: every receptive field of the padded input becomes one row of a
*patch matrix* (im2col), and the filters one matrix:

.. math::
    X_\\text{col}[(n,i,j), (u,v,c)] = x^{pad}_{n, Si+u, Sj+v, c}, \\qquad
    y = X_\\text{col} W_\\text{col}, \\quad W_\\text{col}[(u,v,c), o] = w_{u,v,c,o}.

The backward pass is two more matrix multiplies:

.. math::
    \\frac{\\partial L}{\\partial W_\\text{col}} = X_\\text{col}^\\top \\frac{\\partial L}{\\partial y},
    \\qquad
    \\frac{\\partial L}{\\partial X_\\text{col}} = \\frac{\\partial L}{\\partial y} W_\\text{col}^\\top,

and ``col2im`` scatters the patch gradient back onto the input (each input
pixel receives the sum over the patches it belongs to: the transpose of the
pad-and-slice that built them).

Measured on the 2-core reference CPU (XLA:CPU, float32, batch 128, see
``benchmarks/bench_cnn.py``): for the first layer of a CIFAR network (3 input
channels, 3x3, 32 filters) the filter gradient as one ``(27 x N·H·W)`` by
``(N·H·W x 32)`` multiply costs about half of XLA's convolution-gradient
kernel (forward + filter gradient 8.8 ms vs 15.0 ms); for layers with 32 or
more input channels XLA's own convolution is as fast or faster. Those figures
are for XLA:CPU's YNNPACK convolutions; since ``import jax231`` moves them to
Eigen (:mod:`jax231._xla_cpu`), XLA's kernel wins on the first layer too (the
preset's whole train step on one core: 152 CPU ms with ``'xla'`` there, 180 with
im2col), so :func:`jax231.models.layers.conv2d` picks ``im2col`` (``impl='auto'``)
only for narrow inputs and only when the YNNPACK convolutions are in use
(``JAX231_XLA_CPU_FLAGS=0``). ``impl='im2col'`` stays available everywhere.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jax231.types import Array


def im2col(x: Array, window: tuple[int, int], *, stride: int, pads: tuple[tuple[int, int], tuple[int, int]]) -> Array:
    """The patch tensor of ``x``: shape ``(N, H_out, W_out, F_h * F_w * C)``, feature order ``(u, v, c)``.

    Args:
      x: images ``(N, H, W, C)``.
      window: filter size ``(F_h, F_w)``.
      stride: the stride on both axes.
      pads: ``((top, bottom), (left, right))`` zeros.

    Returns:
      The patches; ``reshape(-1, F_h*F_w*C)`` gives the course's ``X_col``
      (one row per output position).
    """
    f_h, f_w = window
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    h_out = (xp.shape[1] - f_h) // stride + 1
    w_out = (xp.shape[2] - f_w) // stride + 1
    cols = [
        xp[:, u : u + stride * (h_out - 1) + 1 : stride, v : v + stride * (w_out - 1) + 1 : stride, :]
        for u in range(f_h)
        for v in range(f_w)
    ]
    return jnp.concatenate(cols, axis=-1)


def _matmul_last(a: Array, b: Array) -> Array:
    """``a @ b`` over the last axis of ``a`` (leading axes flattened for one large GEMM)."""
    return jnp.dot(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_im2col(x: Array, w: Array, stride: int, pads: tuple) -> Array:
    return _matmul_last(im2col(x, (w.shape[0], w.shape[1]), stride=stride, pads=pads), w.reshape(-1, w.shape[-1]))


def _fwd(x: Array, w: Array, stride: int, pads: tuple):
    patches = im2col(x, (w.shape[0], w.shape[1]), stride=stride, pads=pads)
    y = _matmul_last(patches, w.reshape(-1, w.shape[-1]))
    return y, (x, w, patches)


def _bwd(stride: int, pads: tuple, residuals, dy: Array):
    x, w, patches = residuals
    k, c_out = patches.shape[-1], w.shape[-1]
    # 1. Filter gradient: X_col^T dL/dy, one matrix multiply.
    dw = jnp.dot(patches.reshape(-1, k).T, dy.reshape(-1, c_out)).reshape(w.shape)
    # 2. Patch gradient dL/dy W_col^T, then col2im: the transpose of im2col (scatter-add).
    dpatches = _matmul_last(dy, w.reshape(k, c_out).T)
    _, col2im = jax.vjp(lambda z: im2col(z, w.shape[:2], stride=stride, pads=pads), x)
    (dx,) = col2im(dpatches)
    return dx, dw


# ``stride`` and ``pads`` are static (Python ints / tuples): non-differentiable arguments.
_conv_im2col.defvjp(_fwd, _bwd)


def conv2d_im2col(x: Array, w: Array, *, stride: int, pads: tuple[tuple[int, int], tuple[int, int]]) -> Array:
    """2-D convolution (NHWC / HWIO, no bias) as im2col + one GEMM, with the hand-written VJP above.

    Args:
      x: images ``(N, H, W, C_in)``.
      w: filters ``(F_h, F_w, C_in, C_out)``.
      stride: the stride on both axes.
      pads: ``((top, bottom), (left, right))`` zeros.

    Returns:
      ``(N, H_out, W_out, C_out)``, equal to ``lax.conv_general_dilated`` up to
      float32 summation order.
    """
    return _conv_im2col(x, w, stride, (tuple(pads[0]), tuple(pads[1])))
