"""A fully connected autoencoder: encoder to a low-dimensional code, decoder back.

.. math::
    z = f_\\phi(x) \\in \\mathbb{R}^Z, \\qquad \\hat x = \\sigma(g_\\theta(z)), \\qquad
    \\ell(x) = \\sum_i (\\hat x_i - x_i)^2,

trained without labels to reconstruct its input through the bottleneck ``Z``. The
code is a learned compression; it is not a generative model (nothing says which
codes are likely), which is what the VAE adds.

References:
  CS231n lecture 13, "Generative Models" (autoencoders);
  Hinton & Salakhutdinov, "Reducing the dimensionality of data with neural networks", 2006.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax231.models import _generative_checks as checks
from jax231.models import layers
from jax231.models._vae import _init_mlp, _mlp
from jax231.types import Array, ArrayLike, Params, PRNGKey, Shape

__all__ = ["Autoencoder", "autoencoder"]


class Autoencoder(NamedTuple):
    """An autoencoder as pure functions (built by :func:`autoencoder`).

    Attributes:
      init: ``init(rng, input_shape) -> params``.
      encode: ``encode(params, x) -> (N, Z)`` codes.
      decode: ``decode(params, z) -> (N, H, W, C)`` reconstructions in ``(0, 1)``.
      loss: ``loss(params, x, rng=None) -> (N,)`` squared reconstruction errors.
      code_dim: ``Z``.
    """

    init: Callable[[PRNGKey, Shape], Params]
    encode: Callable[[Params, ArrayLike], Array]
    decode: Callable[[Params, ArrayLike], Array]
    loss: Callable[..., Array]
    code_dim: int


def autoencoder(*, image_shape: Shape, code_dim: int, hidden_dims: Sequence[int] = (256,)) -> Autoencoder:
    """A fully connected autoencoder with a ``code_dim`` bottleneck (decoder mirrors the encoder).

    Params: ``{'enc_i': {'w', 'b'}, 'dec_i': {'w', 'b'}}``.

    Args:
      image_shape: ``(H, W, C)``.
      code_dim: ``Z`` >= 1.
      hidden_dims: hidden widths of the encoder.

    Raises:
      ValueError: ``code_dim`` < 1 or bad sizes.
    """
    code_dim = checks.check_positive_int("code_dim", code_dim)
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape: expected (H, W, C), got {image_shape!r}")
    num_dims = math.prod(checks.check_positive_int("image_shape", s) for s in image_shape)
    hidden = [checks.check_positive_int("hidden_dims", h) for h in hidden_dims]
    depth = len(hidden) + 1

    def init_fn(rng: PRNGKey, input_shape: Shape | None = None) -> Params:
        if input_shape is not None and tuple(input_shape) != image_shape:
            raise ValueError(f"input_shape: expected {image_shape}, got {tuple(input_shape)}")
        k_enc, k_dec = jax.random.split(rng)
        return _init_mlp(k_enc, "enc", [num_dims, *hidden, code_dim]) | _init_mlp(
            k_dec, "dec", [code_dim, *hidden[::-1], num_dims]
        )

    def encode(params: Params, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        if x.shape[1:] != image_shape:
            raise ValueError(f"x: expected images (N, {', '.join(map(str, image_shape))}), got shape {x.shape}")
        return _mlp(params, "enc", 2.0 * layers.flatten(x) - 1.0, depth)

    def decode(params: Params, z: ArrayLike) -> Array:
        z = jnp.asarray(z)
        return jax.nn.sigmoid(_mlp(params, "dec", z, depth)).reshape(z.shape[0], *image_shape)

    def loss(params: Params, x: ArrayLike, rng: PRNGKey | None = None) -> Array:
        del rng
        error = decode(params, encode(params, x)) - jnp.asarray(x)
        return jnp.sum(error.reshape(error.shape[0], -1) ** 2, axis=-1)

    return Autoencoder(init_fn, encode, decode, loss, code_dim)
