"""A convnet with fractional max pooling and the notes' noise regularisers as options.

Architecture (after Graham 2014's CIFAR nets, scaled down):

  ``[gaussian noise on the input] - ([conv3x3(w_k) - relu - spatial dropout] - pool) x K -
  global average pool - [dropout] - affine``

with ``pool`` a fractional max pooling of ratio :math:`\\alpha` (default
:math:`\\sqrt 2`: 32 -> 22 -> 15 -> 10 -> 7 for four layers) or, with
``pool='max'``, a 2x2 max pool (for comparison). Width grows linearly,
:math:`w_k = (k + 1) \\cdot` ``width``, as in Graham's nets.

Randomness: in train mode ``rng`` drives the noise, the dropout masks and the
pooling regions (a region draw per layer and call). In eval mode the noise and
dropout are off; the regions come from ``rng`` when given, else from a fixed
key, so ``apply(..., train=False)`` is deterministic and
``mc_predict(lambda k: apply(..., train=False, rng=k)[0], ...)`` averages over
region draws, as Graham marginalises them at test time.

References:
  Graham, "Fractional Max-Pooling", arXiv:1412.6071, 2014; Tompson et al.
  2015 (spatial dropout); CS231n notes, "Neural Networks Part 2", regularisation.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp

from jax231.models import _helpers, _model, layers
from jax231.types import Array, ArrayLike, ModelState, Params, PRNGKey, Shape

__all__ = ["POOLS", "fmp_convnet"]

POOLS = ("fractional", "max")

_EVAL_REGIONS_SEED = 0  # key of the fixed region draw of a deterministic evaluation


def fmp_convnet(
    *,
    num_layers: int = 4,
    width: int = 16,
    num_classes: int = 10,
    pool: str = "fractional",
    ratio: float = math.sqrt(2),
    overlapping: bool = True,
    input_noise_std: float = 0.0,
    spatial_drop_rate: float = 0.0,
    drop_rate: float = 0.0,
    init: str = "he",
) -> _model.Model:
    """A fractional-max-pooling convnet with noise options (see the module docstring).

    Params: ``{'conv_k': {'w': (3, 3, C_in, (k + 1) width), 'b'}, 'head': {'w', 'b'}}``; no state.
    Parameter count: :math:`\\sum_k 9 c_{k-1} c_k + c_k` (:math:`c_{-1} = C`,
    :math:`c_k = (k+1)w`) :math:`+ c_{K-1} K_\\text{cls} + K_\\text{cls}`.

    Args:
      num_layers: number :math:`K` of conv-pool layers.
      width: :math:`w`, channels of the first convolution.
      num_classes: number of scores.
      pool: ``'fractional'`` (:func:`~jax231.models.layers.fractional_max_pool`) or ``'max'`` (2x2).
      ratio: :math:`\\alpha > 1` of the fractional pools.
      overlapping: overlapping fractional pooling regions.
      input_noise_std: std of the Gaussian noise added to the input in train mode (0 = off).
      spatial_drop_rate: channel dropout after every convolution (0 = off).
      drop_rate: dropout before the head (0 = off).
      init: initializer name.

    Returns:
      ``Model(init, apply)`` taking ``(N, H, W, C)`` images.

    Raises:
      ValueError: for a ratio <= 1, a negative noise std, rates outside
        ``[0, 1)``, bad names; at init when the input is too small for the pools.
    """
    name = "fmp_convnet"
    for arg, val in (("num_layers", num_layers), ("width", width), ("num_classes", num_classes)):
        _helpers.check_positive_int(arg, val)
    _helpers.check_choice("pool", pool, POOLS)
    _helpers.check_choice("init", init, tuple(layers.INITIALIZERS))
    _helpers.check_rate("spatial_drop_rate", spatial_drop_rate)
    _helpers.check_rate("drop_rate", drop_rate)
    if pool == "fractional":
        layers.fractional_output_size(64, ratio)  # validates the ratio with the layer's message
    if not float(input_noise_std) >= 0:
        raise ValueError(f"input_noise_std: expected a value >= 0, got {input_noise_std!r}")
    widths = [(k + 1) * width for k in range(num_layers)]

    def pool_fn(h: Array, key: PRNGKey) -> Array:
        if pool == "max":
            return layers.max_pool(h, window=2, stride=2)
        return layers.fractional_max_pool(h, ratio=ratio, rng=key, overlapping=overlapping)

    def features(params: Params, x: Array, *, train: bool, rng: Optional[PRNGKey]) -> Array:
        regions = rng if rng is not None else jax.random.key(_EVAL_REGIONS_SEED)
        h = layers.gaussian_noise(x, std=input_noise_std, rng=_helpers.fold_rng(rng, 1000), train=train)
        for k in range(num_layers):
            p = params[f"conv_{k}"]
            h = layers.relu(layers.conv2d(h, p["w"], p["b"], padding="SAME"))
            h = layers.spatial_dropout(
                h, drop_rate=spatial_drop_rate, rng=_helpers.fold_rng(rng, 2000 + k), train=train
            )
            h = pool_fn(h, jax.random.fold_in(regions, k))
        return layers.global_avg_pool(h)

    def init_fn(rng: PRNGKey, input_shape: Shape) -> tuple[Params, ModelState]:
        shape = _helpers.check_input_shape(name, input_shape, rank=3, layout="(H, W, C)")
        size = min(shape[:2])
        for _ in range(num_layers):  # every pool must leave at least one pixel
            size = size // 2 if pool == "max" else int(size // ratio)
            if size < 1:
                raise ValueError(f"{name}: input_shape {shape} is too small for {num_layers} pools of {pool!r}")
        keys = jax.random.split(rng, num_layers + 1)
        params: dict = {}
        c_in = shape[-1]
        for k, c_out in enumerate(widths):
            params[f"conv_{k}"] = layers.init_conv(keys[k], 3, c_in, c_out, init=init)
            c_in = c_out
        params["head"] = layers.init_affine(keys[-1], c_in, num_classes, init=init)
        return params, {}

    def apply_fn(
        params: Params, state: ModelState, x: ArrayLike, *, train: bool, rng: Optional[PRNGKey] = None
    ) -> tuple[Array, ModelState]:
        x = jnp.asarray(x)
        _helpers.check_batch(name, x, rank=4, layout="(N, H, W, C)", channels=params["conv_0"]["w"].shape[2])
        stochastic = pool == "fractional" or input_noise_std > 0 or spatial_drop_rate > 0 or drop_rate > 0
        _helpers.require_rng(name, rng, train=train, stochastic=stochastic)
        h = features(params, x, train=train, rng=rng)
        h = layers.dropout(h, drop_rate=drop_rate, rng=_helpers.fold_rng(rng, 3000), train=train)
        return layers.affine(h, params["head"]["w"], params["head"]["b"]), state

    return _model.Model(init_fn, apply_fn)
