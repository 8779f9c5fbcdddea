"""Weight initialisers of the course and the parameter constructors built on them."""

from __future__ import annotations

import math
import types
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from jax231.models.layers import _checks
from jax231.types import Array, PRNGKey, Shape

Initializer = Callable[..., Array]
"""``(rng, shape, dtype=jnp.float32) -> Array``."""


def fan_in(shape: Shape) -> int:
    """Number of inputs of each output unit: the product of every axis but the last.

    ``(D, M)`` dense weights give :math:`D`; ``(F, F, C, K)`` HWIO convolution
    weights give :math:`F \\cdot F \\cdot C`.

    Raises:
      ValueError: when ``shape`` has fewer than two axes.
    """
    shape = tuple(shape)
    if len(shape) < 2:
        _checks.fail("shape", "at least 2 axes (inputs..., outputs) to define fan_in", shape)
    return math.prod(shape[:-1])


def small_random(rng: PRNGKey, shape: Shape, dtype: Any = jnp.float32, *, std: float = 0.01) -> Array:
    """Small random numbers :math:`W \\sim \\mathcal{N}(0, \\text{std}^2)`, std 0.01 by default.

    Fine for small networks; in deep ones the activations shrink towards zero
    layer after layer (CS231n notes, "Neural Networks Part 2").
    """
    return std * jax.random.normal(rng, tuple(shape), dtype)


def xavier(rng: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> Array:
    """Xavier/Glorot initialisation as in the notes: :math:`W = \\text{randn} / \\sqrt{n_\\text{in}}`.

    Keeps the variance of the activations through linear/tanh layers
    (:math:`n_\\text{in}` = :func:`fan_in`).

    References:
      Glorot & Bengio, "Understanding the difficulty of training deep feedforward
      neural networks", 2010.
    """
    return jax.random.normal(rng, tuple(shape), dtype) / math.sqrt(fan_in(shape))


def he(rng: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> Array:
    """He/Kaiming initialisation: :math:`W = \\text{randn} \\cdot \\sqrt{2 / n_\\text{in}}`.

    The factor 2 compensates for ReLU zeroing half of its inputs.

    References:
      He et al., "Delving Deep into Rectifiers", 2015.
    """
    return jax.random.normal(rng, tuple(shape), dtype) * math.sqrt(2.0 / fan_in(shape))


INITIALIZERS: Mapping[str, Initializer] = types.MappingProxyType(
    {
        "he": he,
        "small": small_random,
        "xavier": xavier,
    }
)
"""The initialisers by name (read-only)."""


def get_initializer(name: str | Initializer) -> Initializer:
    """Returns the initialiser called ``name`` (a callable is returned unchanged).

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    return _checks.lookup("init", name, INITIALIZERS)


def init_affine(
    rng: PRNGKey, in_dim: int, out_dim: int, *, init: str | Initializer = "he", dtype: Any = jnp.float32
) -> dict[str, Array]:
    """Parameters of :func:`~jax231.models.layers.affine`: ``{'w': (in_dim, out_dim), 'b': zeros(out_dim)}``."""
    in_dim = _checks.check_positive_int("in_dim", in_dim)
    out_dim = _checks.check_positive_int("out_dim", out_dim)
    w = get_initializer(init)(rng, (in_dim, out_dim), dtype)
    return {"w": w, "b": jnp.zeros((out_dim,), dtype)}


def init_conv(
    rng: PRNGKey,
    window: int,
    in_channels: int,
    out_channels: int,
    *,
    init: str | Initializer = "he",
    spatial_dims: int = 2,
    dtype: Any = jnp.float32,
) -> dict[str, Array]:
    """Parameters of a convolution: ``{'w': (F, F, C_in, C_out), 'b': zeros(C_out)}``.

    ``spatial_dims=1`` gives ``w`` of shape ``(F, C_in, C_out)`` for
    :func:`~jax231.models.layers.conv1d`. fan_in is :math:`F^d C_\\text{in}`.
    """
    window = _checks.check_positive_int("window", window)
    in_channels = _checks.check_positive_int("in_channels", in_channels)
    out_channels = _checks.check_positive_int("out_channels", out_channels)
    if spatial_dims not in (1, 2):
        _checks.fail("spatial_dims", "1 or 2", spatial_dims)
    shape = (window,) * spatial_dims + (in_channels, out_channels)
    w = get_initializer(init)(rng, shape, dtype)
    return {"w": w, "b": jnp.zeros((out_channels,), dtype)}


def init_norm(num_features: int, *, dtype: Any = jnp.float32) -> dict[str, Array]:
    """Learned parameters of a normalisation layer: ``{'gamma': ones, 'beta': zeros}``."""
    num_features = _checks.check_positive_int("num_features", num_features)
    return {"gamma": jnp.ones((num_features,), dtype), "beta": jnp.zeros((num_features,), dtype)}


def init_batch_norm_stats(num_features: int, *, dtype: Any = jnp.float32) -> dict[str, Array]:
    """Running statistics of batch norm (model state, not trained): ``{'mean': zeros, 'var': ones}``."""
    num_features = _checks.check_positive_int("num_features", num_features)
    return {"mean": jnp.zeros((num_features,), dtype), "var": jnp.ones((num_features,), dtype)}
