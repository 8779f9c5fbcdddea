"""Convolutions: 2-D (NHWC / HWIO), 1-D (NWC / WIO) and depthwise 2-D."""

from __future__ import annotations

from typing import Optional, Union, cast

import jax
import jax.numpy as jnp
from jax import lax

from jax231 import _xla_cpu
from jax231.models.layers import _checks, _native, _native_build
from jax231.models.layers._im2col import conv2d_im2col
from jax231.types import Array, ArrayLike

Padding = Union[int, str]

CONV_IMPLS = ("auto", "xla", "im2col", "native")
"""Implementations of :func:`conv2d`: ``'xla'`` (``lax.conv_general_dilated``),
``'im2col'`` (patch matrix + one GEMM, hand-written VJP), ``'native'`` (jax231's own
XLA:CPU kernels, :mod:`jax231.models.layers._native`) and ``'auto'``."""

IM2COL_MAX_PATCH = 32
"""``impl='auto'`` uses im2col when ``F_h * F_w * C_in`` is at most this (a 3x3 filter over
RGB gives 27) AND XLA:CPU runs convolutions through YNNPACK (``JAX231_XLA_CPU_FLAGS=0``,
see :mod:`jax231._xla_cpu`): there it measured ~1.7x faster forward + filter gradient on the
2-core CPU for the first CIFAR layer, and no faster than XLA's kernel from 32 input
channels on. With XLA's Eigen convolutions (the default set at ``import jax231``) XLA's
kernel wins on every layer of the preset, the first included (``cifar10_cnn`` train step,
one thread: 152 CPU ms with ``'xla'`` there, 180 with im2col)."""


def _choose_impl(impl: str, w_shape: tuple) -> str:
    """The implementation ``impl`` stands for, native kernels aside (see :func:`_native_plan`)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"impl: expected one of {', '.join(CONV_IMPLS)}, got {impl!r}")
    if impl not in ("auto", "native"):
        return impl
    narrow = w_shape[0] * w_shape[1] * w_shape[2] <= IM2COL_MAX_PATCH
    return "im2col" if narrow and not _xla_cpu.convolutions_in_eigen() else "xla"


def _native_plan(impl: str, x: Array, w: Array, stride: int, pads: tuple) -> Optional[_native.ConvPlan]:
    """The native kernels' plan for this convolution, or None for none of them.

    ``'native'`` takes every native kernel that applies, and fails with a ``ValueError``
    where they cannot run at all (not built, or a default backend other than the CPU).
    ``'auto'`` takes them, as measured faster (:data:`jax231.models.layers._native.NATIVE_MIN_WIDTH`),
    when the process has one device and it is a CPU (with several devices a sharded
    computation would gather the operands of a custom call), and never fails.
    """
    if impl == "native":
        others = ", ".join(repr(name) for name in CONV_IMPLS if name != "native")
        if jax.default_backend() != "cpu":
            raise ValueError(
                f"impl: 'native' runs on the CPU only, got default backend {jax.default_backend()!r}; "
                f"choose one of {others}"
            )
        library = _native_build.load()
        if not library.available:
            raise ValueError(
                f"impl: 'native' needs jax231's native kernels, which are unavailable "
                f"({library.reason}); choose one of {others}"
            )
    elif impl != "auto" or jax.default_backend() != "cpu" or jax.device_count() != 1:
        return None
    elif not _native_build.load().available:
        return None
    dtype = jnp.dtype(x.dtype).name
    if jnp.dtype(w.dtype).name != dtype:
        return None
    p = _native.plan(jnp.shape(x), jnp.shape(w), dtype, stride=stride, pads=pads, everywhere=impl == "native")
    return None if (p.forward, p.input_grad, p.filter_grad) == ("xla",) * 3 else p


def _check_padding(padding: Padding) -> Padding:
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            _checks.fail("padding", "an int >= 0, 'SAME' or 'VALID'", padding)
        return padding.upper()
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        _checks.fail("padding", "an int >= 0, 'SAME' or 'VALID'", padding)
    return padding


def _pads_2d(pads, x_shape: tuple, w_shape: tuple, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` zeros for ``'SAME'``/``'VALID'`` or explicit pairs."""
    if isinstance(pads, str):
        pads = lax.padtype_to_pads(x_shape[1:3], w_shape[:2], (stride, stride), pads)
    return cast(tuple[tuple[int, int], tuple[int, int]], tuple(tuple(int(v) for v in pair) for pair in pads))


def conv_output_size(size: int, window: int, stride: int, padding: Padding) -> int:
    """Spatial output size of a convolution or pooling window.

    .. math:: W_\\text{out} = (W - F + 2P) / S + 1

    with :math:`W` = ``size``, :math:`F` = ``window``, :math:`S` = ``stride``
    and :math:`P` = ``padding`` zeros on each side. ``'VALID'`` means
    :math:`P = 0`; ``'SAME'`` gives :math:`\\lceil W / S \\rceil` (padding split
    as XLA does, the extra zero at the end).

    Args:
      size: input size :math:`W`.
      window: filter size :math:`F`.
      stride: stride :math:`S`.
      padding: zeros on each side (int), ``'SAME'`` or ``'VALID'``.

    Returns:
      The output size, an int.

    Raises:
      ValueError: when :math:`(W - F + 2P)/S + 1` is not a whole number or is
        below 1 (the "hyperparameters are invalid" case of the notes).

    Examples:
      >>> conv_output_size(7, 3, 1, 0), conv_output_size(7, 3, 2, 0)
      (5, 3)

    References:
      CS231n notes, "Convolutional Neural Networks", spatial arrangement.
    """
    size = _checks.check_positive_int("size", size)
    window = _checks.check_positive_int("window", window)
    stride = _checks.check_positive_int("stride", stride)
    padding = _check_padding(padding)
    if padding == "SAME":
        return -(-size // stride)
    pad = 0 if padding == "VALID" else int(padding)
    span = size - window + 2 * pad
    if span < 0 or span % stride != 0:
        _checks.fail(
            "stride, padding, filter size",
            "(W - F + 2P)/S + 1 a whole number >= 1 (change `stride`, `padding` or the filter size)",
            None,
            got_text=f"W={size}, F={window}, P={pad}, S={stride}: ({size} - {window} + 2*{pad})/{stride} + 1 = "
            f"{span / stride + 1:g}",
        )
    return span // stride + 1


def _conv(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike],
    *,
    stride: int,
    padding: Padding,
    spatial_dims: int,
    depthwise: bool,
    groups: int = 1,
    impl: str = "xla",
) -> Array:
    """Shared implementation: checks shapes, then one ``lax.conv_general_dilated``."""
    x_layout, w_layout = ("NWC", "WIO") if spatial_dims == 1 else ("NHWC", "HWIO")
    _checks.check_rank("x", x, spatial_dims + 2, layout=x_layout)
    _checks.check_rank("w", w, spatial_dims + 2, layout=w_layout)
    stride = _checks.check_positive_int("stride", stride)
    padding = _check_padding(padding)
    x_shape, w_shape = jnp.shape(x), jnp.shape(w)
    c_in, c_out = x_shape[-1], w_shape[-1]
    if depthwise:
        if w_shape[-2] != 1 or c_out % c_in != 0:
            _checks.fail("w", f"shape (F, F, 1, k*C) of a depthwise convolution with C={c_in} input channels", w_shape)
    elif groups != 1:
        groups = _checks.check_positive_int("groups", groups)
        if c_in % groups or c_out % groups or w_shape[-2] != c_in // groups:
            raise ValueError(
                f"w: expected shape (F, F, C_in / groups, C_out) with groups={groups} dividing "
                f"C_in={c_in} and C_out, got {w_shape}"
            )
    elif w_shape[-2] != c_in:
        _checks.fail(
            "w", f"{c_in} input channels (axis -2) to match `x` of shape {x_shape}", None, got_text=f"shape {w_shape}"
        )
    # The course's validity rule, checked per spatial axis (raises when non-integer).
    for axis in range(spatial_dims):
        try:
            conv_output_size(x_shape[1 + axis], w_shape[axis], stride, padding)
        except ValueError as error:
            raise ValueError(
                f"`x` of shape {x_shape} and `w` of shape {w_shape} with stride={stride}, "
                f"padding={padding!r} along spatial axis {axis + 1}: {error}"
            ) from None
    if b is not None:
        _checks.check_shape("b", b, (c_out,), why="one bias per output channel")
    pads = padding if isinstance(padding, str) else [(padding, padding)] * spatial_dims
    chosen = _choose_impl(impl, w_shape) if spatial_dims == 2 and not depthwise else "xla"
    if chosen == "im2col" and groups != 1:
        if impl == "im2col":
            raise ValueError(f"impl: 'im2col' computes dense convolutions, expected groups=1, got groups={groups}")
        chosen = "xla"
    if impl in ("auto", "native") and spatial_dims == 2 and not depthwise and groups == 1:
        x, w = jnp.asarray(x), jnp.asarray(w)
        native_plan = _native_plan(impl, x, w, stride, _pads_2d(pads, x_shape, w_shape, stride))
        if native_plan is not None:
            y = _native.conv(x, w, native_plan)
            return y if b is None else y + b
    if chosen == "im2col":
        y = conv2d_im2col(jnp.asarray(x), jnp.asarray(w), stride=stride, pads=_pads_2d(pads, x_shape, w_shape, stride))
        return y if b is None else y + b
    y = lax.conv_general_dilated(
        jnp.asarray(x),
        jnp.asarray(w),
        window_strides=(stride,) * spatial_dims,
        padding=pads,
        dimension_numbers=(x_layout, w_layout, x_layout),
        feature_group_count=c_in if depthwise else groups,
    )
    return y if b is None else y + b


def conv2d(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike] = None,
    *,
    stride: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    impl: str = "auto",
) -> Array:
    """2-D convolution (cross-correlation, as in the course and every framework).

    .. math:: y_{n,i,j,o} = b_o + \\sum_{u,v,c} x^{pad}_{n, Si+u, Sj+v, c}\\, w_{u,v,c,o}

    with :math:`x` = ``x`` (NHWC), :math:`w` = ``w`` (HWIO: ``(F, F, C_in,
    C_out)``), :math:`S` = ``stride`` and :math:`x^{pad}` the input padded
    with ``padding`` zeros on each side. Output spatial size
    :math:`(W - F + 2P)/S + 1` (see :func:`conv_output_size`).

    Grouped convolution (AlexNet's two-GPU split, ResNeXt's cardinality):
    with ``groups = G`` the channels split into :math:`G` groups and output
    group :math:`g` sees input group :math:`g` only, so ``w`` is ``(F, F,
    C_in / G, C_out)`` (:math:`G` times fewer weights):

    .. math:: y_{n,i,j,o} = b_o + \\sum_{u,v} \\sum_{c < C_\\text{in}/G}
              x^{pad}_{n, Si+u, Sj+v,\\, g(o) C_\\text{in}/G + c}\\, w_{u,v,c,o},
              \\qquad g(o) = \\lfloor o G / C_\\text{out} \\rfloor

    Args:
      x: images, shape ``(N, H, W, C_in)``.
      w: filters, shape ``(F_h, F_w, C_in / groups, C_out)``.
      b: optional bias, shape ``(C_out,)``.
      stride: stride :math:`S` along both spatial axes.
      padding: zeros on each side (int), or ``'SAME'`` / ``'VALID'``.
      groups: number :math:`G \\ge 1` of channel groups (1: a dense convolution);
        divides ``C_in`` and ``C_out``. ``lax.conv``'s ``feature_group_count``.
      impl: ``'xla'`` (``lax.conv_general_dilated``), ``'im2col'`` (the
        course's fast layer: patch matrix, one GEMM, hand-written VJP; see
        :mod:`jax231.models.layers._im2col`), ``'native'`` (jax231's own
        XLA:CPU kernels for the forward pass, the stride-1 input gradient and
        the filter gradient, each where it applies, XLA's elsewhere; built on
        first use with the machine's C++ compiler, see
        :mod:`jax231.models.layers._native`) or ``'auto'`` (per layer and per
        map, by measurement: on a process with one CPU device the native
        filter gradient always, the native forward and input gradient for maps
        at least ``NATIVE_MIN_WIDTH`` (8) pixels wide; XLA's Eigen convolutions, which ``import
        jax231`` selects (:mod:`jax231._xla_cpu`), for the rest; im2col for
        ``F_h * F_w * C_in <= IM2COL_MAX_PATCH`` when they run in YNNPACK).
        Every implementation computes the same function. The native maps and
        im2col are ``custom_vjp``: reverse mode to any order, no ``jax.jvp``
        (use ``'xla'`` for forward-mode derivatives). Inside the compiled
        loops of ``jax231.training`` (``fit``, ``run_sweep``, ``run_steps``) the
        ``'xla'`` backward pass runs at plain-jit speed on the CPU too
        (``jax231.training.loop_body``; before, XLA:CPU emitted it as a loop nest
        there, 19-99x slower).

    Returns:
      Feature maps, shape ``(N, H_out, W_out, C_out)``.

    Raises:
      ValueError: on wrong ranks, mismatched channels or bias, a non-integer
        output size, an unknown ``impl``, or ``impl='native'`` where the native
        kernels cannot run (not built, or a default backend other than the CPU).

    References:
      CS231n notes, "Convolutional Neural Networks: Architectures, Convolution / Pooling Layers".
    """
    return _conv(x, w, b, stride=stride, padding=padding, spatial_dims=2, depthwise=False, groups=groups, impl=impl)


def conv1d(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike] = None,
    *,
    stride: int = 1,
    padding: Padding = 0,
) -> Array:
    """1-D convolution over sequences: :func:`conv2d` with one spatial axis.

    .. math:: y_{n,i,o} = b_o + \\sum_{u,c} x^{pad}_{n, Si+u, c}\\, w_{u,c,o}

    Args:
      x: sequences, shape ``(N, W, C_in)`` (NWC).
      w: filters, shape ``(F, C_in, C_out)`` (WIO).
      b: optional bias, shape ``(C_out,)``.
      stride: stride :math:`S`.
      padding: zeros on each side (int), or ``'SAME'`` / ``'VALID'``.

    Returns:
      Shape ``(N, W_out, C_out)`` with ``W_out = (W - F + 2P)/S + 1``.

    Raises:
      ValueError: as :func:`conv2d`.
    """
    return _conv(x, w, b, stride=stride, padding=padding, spatial_dims=1, depthwise=False)


def depthwise_conv2d(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike] = None,
    *,
    stride: int = 1,
    padding: Padding = 0,
) -> Array:
    """Depthwise 2-D convolution: one filter per input channel (MobileNet).

    .. math:: y_{n,i,j,c} = b_c + \\sum_{u,v} x^{pad}_{n, Si+u, Sj+v, c}\\, w_{u,v,0,c}

    Implemented as a grouped convolution with ``feature_group_count = C``.
    A channel multiplier ``k`` is allowed: ``w`` of shape ``(F, F, 1, k·C)``
    gives ``k`` filters per channel (outputs of channel ``c`` at
    ``c·k … c·k + k − 1``).

    Args:
      x: images, shape ``(N, H, W, C)``.
      w: filters, shape ``(F_h, F_w, 1, C)`` (or ``(F_h, F_w, 1, k·C)``).
      b: optional bias, shape ``(w.shape[-1],)``.
      stride: stride along both spatial axes.
      padding: zeros on each side (int), or ``'SAME'`` / ``'VALID'``.

    Returns:
      Shape ``(N, H_out, W_out, w.shape[-1])``.

    Raises:
      ValueError: as :func:`conv2d`, or when ``w.shape[2] != 1``.

    References:
      Howard et al., "MobileNets", 2017 (CS231n lecture on efficient networks).
    """
    return _conv(x, w, b, stride=stride, padding=padding, spatial_dims=2, depthwise=True)
