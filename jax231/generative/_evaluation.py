"""Evaluating generative models: bits per dimension, the independent-pixel baseline, sample scores.

* :func:`bits_per_dim`: :math:`\\mathrm{NLL}_{\\text{nats}} / (D \\ln 2)`, the
  likelihood unit of the PixelRNN paper (``D`` = pixels x channels).
* :func:`independent_categorical`: the per-pixel independent categorical model
  :math:`p(x) = \\prod_i \\pi_{i, x_i}` fitted by counting (add-``\\beta``
  smoothing), the baseline every autoregressive model must beat.
* :func:`classifier_score`: an Inception-score analogue computed with a
  classifier trained on the real data (a digits classifier for digits).
* :func:`mixture_of_gaussians` and :func:`mode_coverage`: the 2-D ring of
  Gaussians on which mode collapse is counted.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax231.models import _generative_checks as checks
from jax231.models._autoregressive import to_levels
from jax231.types import Array, ArrayLike, PRNGKey

__all__ = [
    "ModeCoverage",
    "SampleScore",
    "bits_per_dim",
    "classifier_score",
    "independent_categorical",
    "independent_categorical_nll",
    "mixture_of_gaussians",
    "mode_coverage",
]


def bits_per_dim(nll_nats: ArrayLike, num_dims: int) -> Array:
    """Negative log-likelihood in bits per dimension: ``nll_nats / (num_dims ln 2)``.

    Args:
      nll_nats: :math:`-\\ln p(x)` per example (any shape).
      num_dims: ``D``, the number of discrete values per example (``H W C``).
    """
    num_dims = checks.check_positive_int("num_dims", num_dims)
    return jnp.asarray(nll_nats) / (num_dims * math.log(2.0))


def independent_categorical(images: ArrayLike, levels: int, *, pseudo_count: float = 1.0) -> Array:
    """Log-probabilities :math:`\\log \\pi_{i,k}` of independent per-pixel categoricals, fitted by counting.

    .. math:: \\pi_{i,k} = \\frac{n_{i,k} + \\beta}{N + K \\beta}

    with :math:`n_{i,k}` the training images whose pixel ``i`` has level ``k`` and
    :math:`\\beta` = ``pseudo_count`` (Laplace smoothing for :math:`\\beta = 1`;
    without it an unseen level in the test set has probability 0).

    Args:
      images: training images ``(N, H, W, C)`` in ``[0, 1]``.
      levels: ``K``.
      pseudo_count: :math:`\\beta > 0`.

    Returns:
      ``(H, W, C, K)`` log-probabilities.
    """
    levels = checks.check_levels(levels)
    if not pseudo_count > 0:
        raise ValueError(f"pseudo_count: expected a float > 0, got {pseudo_count!r}")
    k = to_levels(images, levels)
    counts = jnp.sum(jax.nn.one_hot(k, levels), axis=0)
    return jnp.log(counts + pseudo_count) - jnp.log(k.shape[0] + levels * pseudo_count)


def independent_categorical_nll(log_probs: ArrayLike, images: ArrayLike) -> Array:
    """``(N,)`` NLL in nats of ``images`` under :func:`independent_categorical`'s ``log_probs``."""
    log_probs = jnp.asarray(log_probs)
    k = to_levels(images, log_probs.shape[-1])
    picked = jnp.take_along_axis(jnp.broadcast_to(log_probs, k.shape + log_probs.shape[-1:]), k[..., None], -1)
    return -jnp.sum(picked.reshape(k.shape[0], -1), axis=-1)


class SampleScore(NamedTuple):
    """What :func:`classifier_score` measures of a set of samples.

    Attributes:
      mean_confidence: :math:`\\frac1N \\sum_n \\max_y p(y \\mid x_n)`: are samples recognisable?
      class_entropy: :math:`H(\\bar p)` in nats, :math:`\\bar p = \\frac1N \\sum_n p(\\cdot \\mid x_n)`:
        are all classes produced? (``ln 10 = 2.30`` when balanced over 10 classes).
      inception_score: :math:`\\exp\\big(\\frac1N \\sum_n \\mathrm{KL}(p(\\cdot \\mid x_n) \\| \\bar p)\\big)`,
        in ``[1, C]``.
      class_fractions: ``(C,)`` fraction of samples whose most likely class is each class.
    """

    mean_confidence: float
    class_entropy: float
    inception_score: float
    class_fractions: np.ndarray


def classifier_score(probs: ArrayLike) -> SampleScore:
    """Inception-score analogue of samples from a classifier's predicted class probabilities.

    A good generator's samples are each classified confidently (high
    ``mean_confidence``) and together cover the classes evenly (class entropy
    near :math:`\\ln C`). The Inception score (Salimans et al., 2016) combines
    the two: :math:`\\mathrm{IS} = \\exp(\\mathbb{E}_x \\mathrm{KL}(p(y \\mid x) \\| p(y)))
    = \\exp(H(\\bar p) - \\mathbb{E}_x H(p(\\cdot \\mid x)))`. Here the classifier is
    one trained on the real data of the same set (not Inception on ImageNet),
    so the numbers compare generators of this dataset only.

    Args:
      probs: ``(N, C)`` class probabilities of ``N`` samples (rows sum to 1).

    Returns:
      A :class:`SampleScore` (floats in float64).
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"probs: expected class probabilities (N, C) with N >= 1, got shape {p.shape}")
    eps = 1e-12
    marginal = p.mean(axis=0)
    class_entropy = float(-np.sum(marginal * np.log(marginal + eps)))
    kl = np.sum(p * (np.log(p + eps) - np.log(marginal + eps)), axis=1)
    fractions = np.bincount(p.argmax(axis=1), minlength=p.shape[1]) / p.shape[0]
    return SampleScore(float(p.max(axis=1).mean()), class_entropy, float(np.exp(kl.mean())), fractions)


def mixture_of_gaussians(
    rng: PRNGKey, num_samples: int, *, num_modes: int = 8, radius: float = 2.0, std: float = 0.05
) -> tuple[Array, Array]:
    """Samples of ``num_modes`` isotropic 2-D Gaussians evenly spaced on a circle (equal weights).

    Returns:
      ``(samples (num_samples, 2), centres (num_modes, 2))``.
    """
    num_samples = checks.check_positive_int("num_samples", num_samples)
    num_modes = checks.check_positive_int("num_modes", num_modes)
    angles = 2.0 * jnp.pi * jnp.arange(num_modes) / num_modes
    centres = radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
    k_mode, k_noise = jax.random.split(rng)
    modes = jax.random.randint(k_mode, (num_samples,), 0, num_modes)
    return centres[modes] + std * jax.random.normal(k_noise, (num_samples, 2)), centres


class ModeCoverage(NamedTuple):
    """Mode counting on a Gaussian mixture (Srivastava et al., VEEGAN, 2017).

    Attributes:
      num_covered: modes with at least ``min_fraction`` of the samples within 3 std of their centre.
      high_quality: fraction of samples within 3 std of their nearest centre.
      counts: ``(M,)`` high-quality samples per mode.
    """

    num_covered: int
    high_quality: float
    counts: np.ndarray


def mode_coverage(samples: ArrayLike, centres: ArrayLike, *, std: float, min_fraction: float = 0.01) -> ModeCoverage:
    """Counts the mixture modes a generator's ``samples`` cover (see :class:`ModeCoverage`)."""
    x, c = np.asarray(samples, np.float64), np.asarray(centres, np.float64)
    dist = np.linalg.norm(x[:, None, :] - c[None, :, :], axis=-1)  # (N, M)
    nearest, good = dist.argmin(axis=1), dist.min(axis=1) < 3.0 * std
    counts = np.bincount(nearest[good], minlength=c.shape[0])
    covered = int(np.sum(counts >= max(1, min_fraction * x.shape[0])))
    return ModeCoverage(covered, float(good.mean()), counts)
