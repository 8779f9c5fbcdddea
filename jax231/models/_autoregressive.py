"""Fully visible belief networks: the shared API and the pixel-by-pixel sampler.

An autoregressive image model factorises the likelihood over the pixels in raster
order (rows top to bottom, columns left to right, then the colour channels):

.. math:: p(x) = \\prod_{i=1}^{D} p(x_i \\mid x_1, \\dots, x_{i-1}),

each factor a categorical distribution over the ``K`` intensity values. The
log-likelihood is exact (no bound), so the test NLL in bits per dimension,
:math:`-\\log_2 p(x) / D`, compares models directly. Sampling is sequential: pixel
``i`` is drawn from the network's output at ``i`` given the pixels drawn so far,
``D`` forward passes in all.

Images enter as floats in ``[0, 1]`` whose values are the ``K`` levels
``k / (K - 1)`` (scikit-learn digits: ``K = 17``; CIFAR-10: ``K = 256``).

References:
  CS231n lecture 13, "Generative Models" (PixelRNN and PixelCNN);
  van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.models import _generative_checks as checks
from jax231.models import layers
from jax231.types import Array, ArrayLike, Params, PRNGKey, Shape

__all__ = ["AutoregressiveModel", "categorical_nll", "sample_raster", "to_levels"]


class AutoregressiveModel(NamedTuple):
    """An image model with an exact likelihood (built by :func:`pixel_cnn`, :func:`pixel_rnn`).

    Attributes:
      init: ``init(rng, input_shape) -> params``; ``input_shape`` is ``(H, W, C)``.
      logits: ``logits(params, x) -> (N, H, W, C, K)``: the scores of
        :math:`p(x_i \\mid x_{<i})` for every pixel ``i`` in one pass; the output
        at ``i`` depends only on the pixels before ``i`` in raster order.
      loss: ``loss(params, x, rng=None) -> (N,)``: the exact negative
        log-likelihood :math:`-\\log p(x)` in nats per example (``rng`` is unused,
        there for the uniform generative-model API).
      sample: ``sample(params, rng, num_samples, image_shape, *, temperature=1.0)
        -> (N, H, W, C)`` images in ``[0, 1]``, drawn pixel by pixel.
      levels: ``K``, intensity values per pixel.
    """

    init: Callable[[PRNGKey, Shape], Params]
    logits: Callable[[Params, ArrayLike], Array]
    loss: Callable[..., Array]
    sample: Callable[..., Array]
    levels: int


def from_logits(
    init_fn: Callable[[PRNGKey, Shape], Params], logits_fn: Callable[[Params, ArrayLike], Array], levels: int
) -> AutoregressiveModel:
    """The :class:`AutoregressiveModel` of a network's ``logits_fn``: its exact loss and raster sampler.

    ``loss(params, x) = categorical_nll(logits_fn(params, x), to_levels(x, levels))`` and
    ``sample`` is :func:`sample_raster` of ``x -> logits_fn(params, x)``.
    """

    def loss_fn(params: Params, x: ArrayLike, rng: PRNGKey | None = None) -> Array:
        del rng
        return categorical_nll(logits_fn(params, x), to_levels(x, levels))

    def sample_fn(
        params: Params, rng: PRNGKey, num_samples: int, image_shape: Shape, *, temperature: float | ArrayLike = 1.0
    ) -> Array:
        return sample_raster(
            lambda x: logits_fn(params, x), rng, num_samples, image_shape, levels, temperature=temperature
        )

    return AutoregressiveModel(init_fn, logits_fn, loss_fn, sample_fn, levels)


def to_levels(x: ArrayLike, levels: int) -> Array:
    """Integer levels ``round(x (K - 1))`` in ``[0, K - 1]`` of images ``x`` in ``[0, 1]``."""
    k = jnp.round(jnp.asarray(x) * (levels - 1)).astype(jnp.int32)
    return jnp.clip(k, 0, levels - 1)


def categorical_nll(logits: ArrayLike, targets: ArrayLike) -> Array:
    """Per-example negative log-likelihood of integer ``targets`` under per-pixel categoricals.

    .. math:: -\\log p(x) = -\\sum_i \\log \\mathrm{softmax}(s_i)_{x_i}

    Args:
      logits: scores ``s``, shape ``(N, ..., K)``.
      targets: integer levels, shape ``(N, ...)`` (``logits.shape[:-1]``).

    Returns:
      ``(N,)`` negative log-likelihoods in nats.
    """
    logp = layers.log_softmax(jnp.asarray(logits))
    picked = jnp.take_along_axis(logp, jnp.asarray(targets)[..., None], axis=-1)[..., 0]
    return -jnp.sum(picked.reshape(picked.shape[0], -1), axis=-1)


def sample_raster(
    logits_fn: Callable[[Array], Array],
    rng: PRNGKey,
    num_samples: int,
    image_shape: Shape,
    levels: int,
    *,
    temperature: float | ArrayLike = 1.0,
) -> Array:
    """Draws images pixel by pixel in raster order (``D = H W C`` passes of ``logits_fn``).

    Pass ``i`` computes the scores of pixel ``i`` from the image drawn so far
    (pixels ``>= i`` still zero, which the model ignores) and draws
    :math:`x_i \\sim \\mathrm{softmax}(s_i / \\tau)`; :math:`\\tau` =
    ``temperature`` (``\\tau < 1`` sharpens, ``\\tau = 1`` is the model).

    Args:
      logits_fn: ``x (N, H, W, C) -> (N, H, W, C, K)``, autoregressive in raster order.
      rng: PRNG key; pixel ``i`` uses ``fold_in(rng, i)``.
      num_samples: ``N``.
      image_shape: ``(H, W, C)``.
      levels: ``K``.
      temperature: :math:`\\tau > 0`.

    Returns:
      ``(N, H, W, C)`` float32 images with values ``k / (K - 1)``.

    Raises:
      ValueError: ``num_samples`` < 1, a wrong ``image_shape`` or ``temperature`` <= 0.
    """
    num_samples = checks.check_positive_int("num_samples", num_samples)
    if len(tuple(image_shape)) != 3:
        raise ValueError(f"image_shape: expected (H, W, C), got {tuple(image_shape)!r}")
    checks.check_temperature(temperature)
    shape = (num_samples, *(checks.check_positive_int("image_shape", s) for s in image_shape))
    num_dims = math.prod(shape[1:])

    def body(i, x):
        scores = logits_fn(x).reshape(num_samples, num_dims, levels)
        s_i = lax.dynamic_index_in_dim(scores, i, axis=1, keepdims=False)  # (N, K)
        k = jax.random.categorical(jax.random.fold_in(rng, i), s_i / temperature, axis=-1)
        flat = x.reshape(num_samples, num_dims)
        flat = lax.dynamic_update_index_in_dim(flat, k.astype(x.dtype)[:, None] / (levels - 1), i, axis=1)
        return flat.reshape(shape)

    return lax.fori_loop(0, num_dims, body, jnp.zeros(shape, jnp.float32))
