"""``conv2d(impl='native')``: the convolution and its two gradients as native XLA:CPU kernels.

Three linear maps of a 2-D convolution with stride :math:`S` and padding
:math:`P` (NHWC input, HWIO filter), the forward pass and the two products of
its backward pass (CS231n notes, "Convolutional Neural Networks"; assignment 2's
``conv_backward``):

.. math::
    y_{n,i,j,o} = \\sum_{u,v,c} x^{pad}_{n,Si+u,Sj+v,c}\\, w_{u,v,c,o}, \\qquad
    \\frac{\\partial L}{\\partial w_{u,v,c,o}} = \\sum_{n,i,j} x^{pad}_{n,Si+u,Sj+v,c}\\,
        \\frac{\\partial L}{\\partial y_{n,i,j,o}}, \\qquad
    \\frac{\\partial L}{\\partial x} = \\text{conv}\\Big(\\frac{\\partial L}{\\partial y}, \\tilde w\\Big)
    \\ (S = 1),

with :math:`\\tilde w_{u,v,o,c} = w_{F-1-u, F-1-v, c, o}` (the filter flipped and its
channel axes swapped) and :math:`F - 1 - P` zeros of padding: the input gradient of a
stride-1 convolution is a convolution of the output gradient with the flipped filter.

The kernels (``_native_conv.cc``, built on first use by :mod:`._native_build`)
copy one image at a time into a zero-padded buffer and keep a tile of ~24
accumulator vectors in registers. Each map here is a ``jax.custom_vjp`` whose
VJP is made of the other two, so gradients of gradients work, and each falls
back to XLA's own convolution where its kernel does not apply (``plan``).

Measured on the earlier 2-core reference CPU (AMD Zen 4; float32, batch 128, one thread, CPU ms per
call, medians of 3 interleaved rounds, load ~2 from a training run on the other
core; the ``--layers`` table of ``benchmarks/bench_cnn.py`` prints them):

===================  ==============  ==============  ==============
layer (ResNet-20)    forward         input grad      filter grad
                     native / XLA    native / XLA    native / XLA
===================  ==============  ==============  ==============
32x32, 16->16        7.1 / 13.6      7.0 / 12.5      7.0 / 29.8
16x16, 32->32        6.5 / 5.9       6.4 / 6.7       6.1 / 11.1
8x8, 64->64          5.9 / 6.1       6.5 / 6.9       7.1 / 11.5
===================  ==============  ==============  ==============

The same on this session's 2-core AMD Zen 5 machine (family 26; XLA's pool on both cores, ms
per call, medians of 3 interleaved rounds, ``python -m benchmarks.bench_cnn --repeats 5
--rounds 3 --layers --nets resnet20``; PyTorch 2.13 on 2 threads for scale):

===================  ==============  ==============  ==============  ====================
layer (ResNet-20)    forward         input grad      filter grad     PyTorch fwd/dx/dw
                     native / XLA    native / XLA    native / XLA
===================  ==============  ==============  ==============  ====================
32x32, 16->16        3.80 / 6.33     4.65 / 6.02     3.20 / 8.03     2.44 / 2.53 / 1.92
16x16, 32->32        2.01 / 7.40     2.01 / 2.33     1.96 / 5.83     2.00 / 2.09 / 2.16
8x8, 64->64          1.89 / 3.30     1.83 / 3.34     2.38 / 2.92     1.69 / 1.58 / 1.90
===================  ==============  ==============  ==============  ====================

Not differentiable in forward mode (``jax.jvp``, ``jax.hessian``): like every
``custom_vjp``; use ``impl='xla'`` there.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax231.models.layers import _native_build
from jax231.types import Array

DIMENSIONS = ("NHWC", "HWIO", "NHWC")
LANES = {"float32": 16, "float64": 8}
"""Channels per 64-byte vector: the kernels need ``C_out`` (forward, filter gradient) or
``C_in`` (input gradient) to be a multiple of it."""

NATIVE_MIN_WIDTH = 8
"""``impl='auto'`` runs the forward pass and the input gradient natively when the map they
produce is at least this wide. On the Zen 4 reference CPU (the first table above) the native
kernels were 1.8-1.9x faster than XLA at 32x32 and within 10% either way at 16x16 and 8x8, and
this was 24; on the Zen 5 CPU (the second table) they are 1.5-3.7x faster at every width, and
the whole ResNet-20 step went from 0.96x / 1.02x to 1.05x / 1.05x PyTorch's images/s (two runs of
``bench_cnn --nets resnet20``), VGG's from 1.04x / 1.05x to 1.06x / 1.20x. Narrower maps (4x4
and below, where a register tile of 24 pixels spans several rows) keep XLA's kernel, unmeasured.
The filter gradient is native whenever it applies (1.6-4x faster)."""

__all__ = ["ConvPlan", "LANES", "conv", "plan"]


class ConvPlan(NamedTuple):
    """One convolution's geometry and which kernel computes each of its three maps.

    Each of ``forward``, ``input_grad``, ``filter_grad`` is ``'native'`` or ``'xla'``.
    """

    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    stride: int
    pads: tuple[tuple[int, int], tuple[int, int]]
    forward: str
    input_grad: str
    filter_grad: str


def plan(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    dtype: str,
    *,
    stride: int,
    pads: tuple[tuple[int, int], tuple[int, int]],
    everywhere: bool,
) -> ConvPlan:
    """Which kernel computes each map: native where it applies, and (unless ``everywhere``) faster.

    A native kernel applies to a square filter and float32/float64 inputs, with the
    channels it writes a multiple of :data:`LANES`; the input gradient needs stride 1,
    the filter gradient a filter of at most 3x3. ``everywhere=True`` (``impl='native'``)
    takes every native kernel that applies; ``False`` (``impl='auto'``) follows the
    measurements of :data:`NATIVE_MIN_WIDTH`.
    """
    f_h, f_w, c_in, c_out = w_shape
    lanes = LANES.get(dtype, 0)
    square = f_h == f_w and lanes > 0
    w_out = (x_shape[2] + sum(pads[1]) - f_w) // stride + 1
    forward = square and c_out % lanes == 0 and (everywhere or w_out >= NATIVE_MIN_WIDTH)
    input_grad = square and stride == 1 and c_in % lanes == 0 and (everywhere or x_shape[2] >= NATIVE_MIN_WIDTH)
    filter_grad = square and f_h <= 3 and c_out % lanes == 0
    name = {True: "native", False: "xla"}
    return ConvPlan(tuple(x_shape), tuple(w_shape), stride, pads, name[forward], name[input_grad], name[filter_grad])


def _xla_conv(x: Array, w: Array, p: ConvPlan) -> Array:
    return lax.conv_general_dilated(x, w, (p.stride, p.stride), p.pads, dimension_numbers=DIMENSIONS)


def _native_call(kernel: str, out_shape: tuple[int, ...], a: Array, b: Array, *, stride: int, pad_h: int, pad_w: int):
    target = _native_build.target_name(kernel, jnp.dtype(a.dtype).name)
    call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(out_shape, a.dtype), vmap_method="sequential")
    return call(a, b, stride=np.int64(stride), pad_h=np.int64(pad_h), pad_w=np.int64(pad_w))


def _on_cpu(native, xla, *args: Array) -> Array:
    """``native(*args)`` where the computation runs on the CPU, ``xla(*args)`` on any other platform."""
    return lax.platform_dependent(*args, cpu=native, default=xla)


def _forward_impl(x: Array, w: Array, p: ConvPlan) -> Array:
    if p.forward == "xla":
        return _xla_conv(x, w, p)
    out = jax.eval_shape(partial(_xla_conv, p=p), x, w).shape  # the shape XLA's convolution gives
    native = partial(_native_call, "forward", out, stride=p.stride, pad_h=p.pads[0][0], pad_w=p.pads[1][0])
    return _on_cpu(native, lambda x, w: _xla_conv(x, w, p), x, w)


def _input_grad_impl(dy: Array, w: Array, p: ConvPlan) -> Array:
    def xla(dy: Array, w: Array) -> Array:
        return jax.vjp(lambda x: _xla_conv(x, w, p), jnp.zeros(p.x_shape, dy.dtype))[1](dy)[0]

    if p.input_grad == "xla":
        return xla(dy, w)
    f = w.shape[0]

    def native(dy: Array, w: Array) -> Array:
        flipped = jnp.transpose(w[::-1, ::-1], (0, 1, 3, 2))
        return _native_call(
            "forward", p.x_shape, dy, flipped, stride=1, pad_h=f - 1 - p.pads[0][0], pad_w=f - 1 - p.pads[1][0]
        )

    return _on_cpu(native, xla, dy, w)


def _filter_grad_impl(x: Array, dy: Array, p: ConvPlan) -> Array:
    def xla(x: Array, dy: Array) -> Array:
        return jax.vjp(lambda w: _xla_conv(x, w, p), jnp.zeros(p.w_shape, x.dtype))[1](dy)[0]

    if p.filter_grad == "xla":
        return xla(x, dy)
    native = partial(_native_call, "filter_grad", p.w_shape, stride=p.stride, pad_h=p.pads[0][0], pad_w=p.pads[1][0])
    return _on_cpu(native, xla, x, dy)


# The three maps, each a custom_vjp made of the other two (so second derivatives work).


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv(x: Array, w: Array, p: ConvPlan) -> Array:
    """The convolution ``y`` of ``x`` and ``w`` as ``p`` says (see the module docstring)."""
    return _forward_impl(x, w, p)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _input_grad(dy: Array, w: Array, p: ConvPlan) -> Array:
    return _input_grad_impl(dy, w, p)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _filter_grad(x: Array, dy: Array, p: ConvPlan) -> Array:
    return _filter_grad_impl(x, dy, p)


def _conv_fwd(x: Array, w: Array, p: ConvPlan):
    return conv(x, w, p), (x, w)


def _conv_bwd(p: ConvPlan, residuals, dy: Array):
    x, w = residuals
    return _input_grad(dy, w, p), _filter_grad(x, dy, p)


def _input_grad_fwd(dy: Array, w: Array, p: ConvPlan):
    return _input_grad(dy, w, p), (dy, w)


def _input_grad_bwd(p: ConvPlan, residuals, g: Array):
    dy, w = residuals  # <g, dx(dy, w)> = <dy, conv(g, w)>
    return conv(g, w, p), _filter_grad(g, dy, p)


def _filter_grad_fwd(x: Array, dy: Array, p: ConvPlan):
    return _filter_grad(x, dy, p), (x, dy)


def _filter_grad_bwd(p: ConvPlan, residuals, g: Array):
    x, dy = residuals  # <g, dw(x, dy)> = <dy, conv(x, g)>
    return _input_grad(dy, g, p), conv(x, g, p)


conv.defvjp(_conv_fwd, _conv_bwd)
_input_grad.defvjp(_input_grad_fwd, _input_grad_bwd)
_filter_grad.defvjp(_filter_grad_fwd, _filter_grad_bwd)
