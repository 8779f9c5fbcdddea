"""Variational autoencoder: Gaussian encoder, Bernoulli / Gaussian / categorical decoder.

The encoder gives :math:`q_\\phi(z \\mid x) = \\mathcal{N}(\\mu_\\phi(x),
\\mathrm{diag}\\,\\sigma^2_\\phi(x))`, the prior is :math:`p(z) = \\mathcal{N}(0, I)`
and the decoder gives :math:`p_\\theta(x \\mid z)`. Training maximises the evidence
lower bound, one reparameterised sample :math:`z = \\mu + \\sigma \\odot \\epsilon`,
:math:`\\epsilon \\sim \\mathcal{N}(0, I)`, per example:

.. math::
    \\log p(x) \\ge \\mathcal{L}(x) = \\mathbb{E}_{q}[\\log p_\\theta(x \\mid z)]
    - \\mathrm{KL}(q_\\phi(z \\mid x) \\,\\|\\, p(z)), \\qquad
    \\mathrm{KL} = \\tfrac12 \\sum_j \\big(\\mu_j^2 + \\sigma_j^2 - 1 - \\log \\sigma_j^2\\big).

Evaluation uses the importance-sampled estimate with ``S`` samples of ``q``,

.. math::
    \\log p(x) \\approx \\log \\frac1S \\sum_{s=1}^S
    \\frac{p_\\theta(x \\mid z_s)\\, p(z_s)}{q_\\phi(z_s \\mid x)},

whose expectation lies between the ELBO (``S = 1``) and :math:`\\log p(x)`
(Burda et al., 2016).

Decoders: ``'bernoulli'`` (binary images, pixels in {0, 1}), ``'gaussian'``
(mean ``sigmoid(.)`` and one learned log-variance per pixel: a density, not a
probability, so its NLL is not comparable with discrete models) and
``'categorical'`` (``K`` levels per pixel, comparable with PixelCNN in bits/dim).

References:
  Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014;
  Burda et al., "Importance Weighted Autoencoders", ICLR 2016;
  CS231n lecture 13, "Generative Models" (variational autoencoders).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jax231.models import _generative_checks as checks
from jax231.models import layers
from jax231.models._autoregressive import categorical_nll, to_levels
from jax231.types import Array, ArrayLike, Params, PRNGKey, Shape

__all__ = ["DECODERS", "VAE", "gaussian_kl", "gaussian_log_density", "reparameterize", "vae"]

DECODERS = ("bernoulli", "gaussian", "categorical")
_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(mean: ArrayLike, log_var: ArrayLike) -> Array:
    """Closed-form :math:`\\mathrm{KL}(\\mathcal{N}(\\mu, \\mathrm{diag}\\,\\sigma^2) \\| \\mathcal{N}(0, I))`.

    .. math:: \\tfrac12 \\sum_j (\\mu_j^2 + \\sigma_j^2 - 1 - \\log \\sigma_j^2)

    Args:
      mean: :math:`\\mu`, ``(N, Z)``.
      log_var: :math:`\\log \\sigma^2`, ``(N, Z)``.

    Returns:
      ``(N,)`` divergences in nats.
    """
    mean, log_var = jnp.asarray(mean), jnp.asarray(log_var)
    return 0.5 * jnp.sum(mean**2 + jnp.exp(log_var) - 1.0 - log_var, axis=-1)


def gaussian_log_density(z: ArrayLike, mean: ArrayLike, log_var: ArrayLike) -> Array:
    """:math:`\\log \\mathcal{N}(z; \\mu, \\mathrm{diag}\\,\\sigma^2)` summed over the last axis, ``(N,)``."""
    z, mean, log_var = jnp.asarray(z), jnp.asarray(mean), jnp.asarray(log_var)
    return -0.5 * jnp.sum(_LOG_2PI + log_var + (z - mean) ** 2 * jnp.exp(-log_var), axis=-1)


def reparameterize(rng: PRNGKey, mean: ArrayLike, log_var: ArrayLike) -> Array:
    """:math:`z = \\mu + \\exp(\\tfrac12 \\log\\sigma^2) \\odot \\epsilon`, :math:`\\epsilon \\sim \\mathcal{N}(0, I)`."""
    mean = jnp.asarray(mean)
    eps = jax.random.normal(rng, mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * jnp.asarray(log_var)) * eps


class VAE(NamedTuple):
    """A variational autoencoder as pure functions (built by :func:`vae`).

    Attributes:
      init: ``init(rng, input_shape) -> params``.
      encode: ``encode(params, x) -> (mean, log_var)``, each ``(N, Z)``.
      decode: ``decode(params, z) -> scores``: Bernoulli logits / Gaussian means
        ``(N, H, W, C)``, or categorical logits ``(N, H, W, C, K)``.
      log_likelihood: ``log_likelihood(params, x, z) -> (N,)``, :math:`\\log p_\\theta(x \\mid z)`.
      elbo: ``elbo(params, x, rng) -> (N,)``, one-sample ELBO (closed-form KL).
      loss: ``loss(params, x, rng) -> (N,)``, the negative ELBO (nats).
      importance_log_likelihood: ``(params, x, rng, num_samples) -> (N,)``.
      mean_image: ``mean_image(params, z) -> (N, H, W, C)``, :math:`\\mathbb{E}[x \\mid z]` in [0, 1].
      sample: ``sample(params, rng, num_samples, *, temperature=1.0)``: mean images at
        :math:`z \\sim \\mathcal{N}(0, \\tau^2 I)`.
      latent_dim: ``Z``.
      decoder: one of :data:`DECODERS`.
    """

    init: Callable[[PRNGKey, Shape], Params]
    encode: Callable[[Params, ArrayLike], tuple[Array, Array]]
    decode: Callable[[Params, ArrayLike], Array]
    log_likelihood: Callable[[Params, ArrayLike, ArrayLike], Array]
    elbo: Callable[[Params, ArrayLike, PRNGKey], Array]
    loss: Callable[..., Array]
    importance_log_likelihood: Callable[..., Array]
    mean_image: Callable[[Params, ArrayLike], Array]
    sample: Callable[..., Array]
    latent_dim: int
    decoder: str


def _mlp(params: Params, prefix: str, h: Array, depth: int) -> Array:
    """``depth`` affine layers named ``{prefix}_i``, ReLU between them (not after the last)."""
    for i in range(depth):
        h = layers.affine(h, params[f"{prefix}_{i}"]["w"], params[f"{prefix}_{i}"]["b"])
        if i < depth - 1:
            h = layers.relu(h)
    return h


def _init_mlp(rng: PRNGKey, prefix: str, sizes: Sequence[int]) -> Params:
    keys = jax.random.split(rng, len(sizes) - 1)
    last = len(sizes) - 2
    return {
        f"{prefix}_{i}": layers.init_affine(k, sizes[i], sizes[i + 1], init="xavier" if i == last else "he")
        for i, k in enumerate(keys)
    }


def vae(
    *,
    image_shape: Shape,
    latent_dim: int,
    hidden_dims: Sequence[int] = (256, 256),
    decoder: str = "categorical",
    levels: int = 17,
) -> VAE:
    """A fully connected VAE on images of ``image_shape`` (see the module docstring).

    Params: ``{'enc_i': {'w', 'b'}, 'dec_i': {'w', 'b'}}`` (the last encoder layer
    outputs ``2 Z``: means then log-variances), plus ``'log_var': (H, W, C)`` for
    the Gaussian decoder.

    Args:
      image_shape: ``(H, W, C)``.
      latent_dim: ``Z`` >= 1.
      hidden_dims: widths of the hidden layers of the encoder (the decoder mirrors them).
      decoder: one of :data:`DECODERS`.
      levels: ``K`` for the categorical decoder (ignored by the others).

    Returns:
      A :class:`VAE`.

    Raises:
      ValueError: ``latent_dim`` < 1, an unknown decoder, bad sizes.
    """
    latent_dim = checks.check_positive_int("latent_dim", latent_dim)
    checks.check_choice("decoder", decoder, DECODERS)
    levels = checks.check_levels(levels)
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape: expected (H, W, C), got {image_shape!r}")
    num_dims = math.prod(checks.check_positive_int("image_shape", s) for s in image_shape)
    hidden = [checks.check_positive_int("hidden_dims", h) for h in hidden_dims]
    out_per_pixel = levels if decoder == "categorical" else 1
    depth = len(hidden) + 1

    def init_fn(rng: PRNGKey, input_shape: Shape | None = None) -> Params:
        if input_shape is not None and tuple(input_shape) != image_shape:
            raise ValueError(f"input_shape: expected {image_shape} (the VAE's image_shape), got {tuple(input_shape)}")
        k_enc, k_dec = jax.random.split(rng)
        params = _init_mlp(k_enc, "enc", [num_dims, *hidden, 2 * latent_dim])
        params |= _init_mlp(k_dec, "dec", [latent_dim, *hidden[::-1], num_dims * out_per_pixel])
        if decoder == "gaussian":
            params["log_var"] = jnp.full(image_shape, -2.0)
        return params

    def encode(params: Params, x: ArrayLike) -> tuple[Array, Array]:
        x = jnp.asarray(x)
        if x.shape[1:] != image_shape:
            raise ValueError(f"x: expected images (N, {', '.join(map(str, image_shape))}), got shape {x.shape}")
        stats = _mlp(params, "enc", 2.0 * layers.flatten(x) - 1.0, depth)
        return stats[:, :latent_dim], stats[:, latent_dim:]

    def decode(params: Params, z: ArrayLike) -> Array:
        z = jnp.asarray(z)
        if z.ndim != 2 or z.shape[1] != latent_dim:
            raise ValueError(f"z: expected latents (N, {latent_dim}), got shape {z.shape}")
        out = _mlp(params, "dec", z, depth)
        shape = (z.shape[0], *image_shape) + ((levels,) if decoder == "categorical" else ())
        return out.reshape(shape)

    def log_likelihood(params: Params, x: ArrayLike, z: ArrayLike) -> Array:
        x, s = jnp.asarray(x), decode(params, z)
        if decoder == "categorical":
            return -categorical_nll(s, to_levels(x, levels))
        if decoder == "bernoulli":  # log sigmoid(s) x + log sigmoid(-s) (1 - x)
            ll = -(jax.nn.softplus(-s) * x + jax.nn.softplus(s) * (1.0 - x))
        else:
            ll = -0.5 * (_LOG_2PI + params["log_var"] + (x - jax.nn.sigmoid(s)) ** 2 * jnp.exp(-params["log_var"]))
        return jnp.sum(ll.reshape(ll.shape[0], -1), axis=-1)

    def elbo(params: Params, x: ArrayLike, rng: PRNGKey) -> Array:
        mean, log_var = encode(params, x)
        z = reparameterize(rng, mean, log_var)
        return log_likelihood(params, x, z) - gaussian_kl(mean, log_var)

    def loss(params: Params, x: ArrayLike, rng: PRNGKey) -> Array:
        return -elbo(params, x, rng)

    def importance_log_likelihood(params: Params, x: ArrayLike, rng: PRNGKey, num_samples: int) -> Array:
        num_samples = checks.check_positive_int("num_samples", num_samples)
        mean, log_var = encode(params, x)

        def log_weight(key):
            z = reparameterize(key, mean, log_var)
            log_prior = gaussian_log_density(z, jnp.zeros_like(z), jnp.zeros_like(z))
            return log_likelihood(params, x, z) + log_prior - gaussian_log_density(z, mean, log_var)

        log_w = jax.lax.map(log_weight, jax.random.split(rng, num_samples))  # (S, N)
        return jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples)

    def mean_image(params: Params, z: ArrayLike) -> Array:
        s = decode(params, z)
        if decoder == "categorical":
            values = jnp.arange(levels, dtype=s.dtype) / (levels - 1)
            return jnp.sum(jax.nn.softmax(s, axis=-1) * values, axis=-1)
        return jax.nn.sigmoid(s)

    def sample(params: Params, rng: PRNGKey, num_samples: int, *, temperature: float | ArrayLike = 1.0) -> Array:
        num_samples = checks.check_positive_int("num_samples", num_samples)
        checks.check_temperature(temperature)
        z = temperature * jax.random.normal(rng, (num_samples, latent_dim))
        return mean_image(params, z)

    return VAE(
        init_fn,
        encode,
        decode,
        log_likelihood,
        elbo,
        loss,
        importance_log_likelihood,
        mean_image,
        sample,
        latent_dim,
        decoder,
    )
