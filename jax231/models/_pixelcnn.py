"""PixelCNN: masked convolutions (types A and B) and the model built from them.

A masked convolution zeroes the filter taps that would let the output at pixel
``(i, j)`` see pixel ``(i, j)`` itself or any later pixel in raster order. For a
``F x F`` filter with centre ``(c, c)``, ``c = F // 2``, the mask keeps the rows
above the centre and, on the centre row, the columns left of it:

.. math::
    m_{u, v} = [u < c] \\lor ([u = c] \\land [v < c]),

and at the centre tap itself, with the channels split into ``colors`` contiguous
groups (R, G, B for colour images; one group for grey ones) and
``g(\\cdot)`` a channel's group,

.. math::
    m_{c, c, i, o} = [g(i) < g(o)] \\;\\text{(type A)}, \\qquad
    m_{c, c, i, o} = [g(i) \\le g(o)] \\;\\text{(type B)}.

Type A (the first layer) hides a pixel from its own output; type B (every
later layer) lets a feature see the features of its own pixel computed from
earlier pixels. Stacking one A and any number of B layers keeps the network
autoregressive: the output at pixel ``i`` has zero gradient with respect to
every pixel ``>= i`` (tested with ``jax.grad``).

References:
  van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016, section 3.4;
  CS231n lecture 13, "Generative Models" (PixelCNN).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax231.models import _generative_checks as checks
from jax231.models import layers
from jax231.models._autoregressive import (
    AutoregressiveModel,
    from_logits,
)
from jax231.types import Array, ArrayLike, Params, PRNGKey, Shape

__all__ = ["MASK_TYPES", "causal_mask", "masked_conv2d", "pixel_cnn"]

MASK_TYPES = ("A", "B")


def _groups(num_channels: int, colors: int) -> np.ndarray:
    """Colour group of each of ``num_channels`` channels: ``floor(i colors / num_channels)``."""
    return (np.arange(num_channels) * colors) // num_channels


def causal_mask(window: int, in_channels: int, out_channels: int, *, mask_type: str, colors: int = 1) -> np.ndarray:
    """The 0/1 mask of a masked convolution, shape ``(F, F, C_in, C_out)`` (HWIO).

    Args:
      window: filter size ``F`` (odd, so the centre is a tap).
      in_channels: ``C_in``.
      out_channels: ``C_out``.
      mask_type: ``'A'`` (centre hidden within a colour group) or ``'B'`` (visible).
      colors: number of colour groups the channels are split into (1 or 3 in practice).

    Returns:
      A float32 NumPy array of zeros and ones (a constant at trace time).

    Raises:
      ValueError: a mask type other than A/B, an even or non-positive window,
        or more colour groups than channels.
    """
    checks.check_choice("mask_type", mask_type, MASK_TYPES)
    window = checks.check_positive_int("window", window)
    if window % 2 == 0:
        raise ValueError(f"window: expected an odd filter size, got {window}")
    colors = checks.check_positive_int("colors", colors)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if checks.check_positive_int(name, value) < colors:
            raise ValueError(f"{name}: expected at least colors={colors} channels, got {value}")
    c = window // 2
    mask = np.zeros((window, window, in_channels, out_channels), np.float32)
    mask[:c] = 1.0
    mask[c, :c] = 1.0
    g_in, g_out = _groups(in_channels, colors)[:, None], _groups(out_channels, colors)[None, :]
    mask[c, c] = (g_in < g_out) if mask_type == "A" else (g_in <= g_out)
    return mask


def masked_conv2d(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None = None,
    *,
    mask_type: str,
    colors: int = 1,
    impl: str = "auto",
) -> Array:
    """A 'SAME' stride-1 convolution whose filter is multiplied by :func:`causal_mask`.

    .. math:: y = b + x * (w \\odot m)

    Args:
      x: images or features, ``(N, H, W, C_in)``.
      w: filters, ``(F, F, C_in, C_out)`` with ``F`` odd.
      b: optional bias, ``(C_out,)``.
      mask_type: ``'A'`` or ``'B'``.
      colors: colour groups of the channels.
      impl: the convolution's implementation, passed to :func:`jax231.models.layers.conv2d`
        (``'auto'``, ``'xla'`` or ``'im2col'``; the same function).

    Returns:
      ``(N, H, W, C_out)``.
    """
    f, _, c_in, c_out = jnp.shape(w)
    mask = causal_mask(f, c_in, c_out, mask_type=mask_type, colors=colors)
    return layers.conv2d(x, jnp.asarray(w) * mask, b, stride=1, padding=f // 2, impl=impl)


def pixel_cnn(
    *,
    levels: int,
    features: int = 64,
    num_layers: int = 5,
    first_window: int = 7,
    window: int = 3,
    head_features: int = 128,
    conv_impl: str = "auto",
) -> AutoregressiveModel:
    """A PixelCNN over images with ``levels`` intensity values per channel.

    Layers (every convolution masked, the input centred to ``2x - 1``):

    1. ``first_window`` x ``first_window`` type A, ``features`` channels, ReLU;
    2. ``num_layers`` residual blocks ``h <- h + relu(conv_B(h))`` (``window`` x ``window``);
    3. 1 x 1 type B to ``head_features``, ReLU; 1 x 1 type B to ``C K`` scores,
       reshaped to ``(N, H, W, C, K)``.

    Params: ``{'conv_a': {'w', 'b'}, 'block_i': {'w', 'b'}, 'head_1', 'head_2'}``.

    Args:
      levels: ``K`` (17 for digits, 256 for 8-bit images).
      features: channels of the masked layers.
      num_layers: residual type-B blocks.
      first_window: odd filter size of the type-A layer.
      window: odd filter size of the type-B blocks.
      head_features: channels of the 1 x 1 head.
      conv_impl: implementation of every masked convolution (``'im2col'``, ``'xla'``,
        ``'auto'``; see :func:`jax231.models.layers.conv2d`). Inside
        :func:`jax231.training.fit`'s compiled loop XLA's CPU convolution is far slower
        than in plain ``jit``, so ``'im2col'`` pays there (``experiments/generative``
        uses it); measured on the 2-core CPU (digits, 32 channels,
        batch 64), ~0.29 CPU-s per training step with ``'auto'`` (XLA for these
        32-channel layers) against ~0.01-0.02 with ``'im2col'``
        (eager, op by op, ``'im2col'`` is the slower one).

    Returns:
      An :class:`AutoregressiveModel`.

    Raises:
      ValueError: non-positive sizes, even windows, ``levels`` < 2.
    """
    levels = checks.check_levels(levels)
    for name, value in (("features", features), ("num_layers", num_layers), ("head_features", head_features)):
        checks.check_positive_int(name, value)
    checks.check_choice("conv_impl", conv_impl, layers.CONV_IMPLS)
    for name, value in (("first_window", first_window), ("window", window)):
        if checks.check_positive_int(name, value) % 2 == 0:
            raise ValueError(f"{name}: expected an odd filter size, got {value}")

    def init_fn(rng: PRNGKey, input_shape: Shape) -> Params:
        colors = _colors(input_shape)
        if features < colors or head_features < colors:
            raise ValueError(f"features: expected at least {colors} channels (one group per colour), got {features}")
        keys = jax.random.split(rng, num_layers + 3)
        params = {"conv_a": layers.init_conv(keys[0], first_window, colors, features)}
        for i in range(num_layers):
            params[f"block_{i}"] = layers.init_conv(keys[1 + i], window, features, features)
        params["head_1"] = layers.init_conv(keys[-2], 1, features, head_features)
        params["head_2"] = layers.init_conv(keys[-1], 1, head_features, colors * levels, init="xavier")
        return params

    def logits_fn(params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"x: expected images (N, H, W, C), got shape {x.shape}")
        colors = x.shape[-1]
        conv = lambda p, h, kind: masked_conv2d(h, p["w"], p["b"], mask_type=kind, colors=colors, impl=conv_impl)
        h = layers.relu(conv(params["conv_a"], 2.0 * x - 1.0, "A"))
        for i in range(num_layers):
            h = h + layers.relu(conv(params[f"block_{i}"], h, "B"))
        h = layers.relu(conv(params["head_1"], h, "B"))
        s = conv(params["head_2"], h, "B")
        return s.reshape(*x.shape, levels)

    return from_logits(init_fn, logits_fn, levels)


def _colors(input_shape: Shape) -> int:
    shape = tuple(input_shape)
    if len(shape) != 3 or any(int(s) < 1 for s in shape):
        raise ValueError(f"input_shape: expected (H, W, C) without the batch axis, got {shape!r}")
    return int(shape[-1])
