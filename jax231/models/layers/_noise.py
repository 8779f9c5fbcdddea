"""Gaussian noise injection ("add noise" regularisation) on inputs or activations."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jax231.models.layers import _checks
from jax231.types import Array, ArrayLike, PRNGKey

NOISE_MODES = ("additive", "multiplicative")


def gaussian_noise(
    x: ArrayLike,
    *,
    std: float | ArrayLike,
    rng: Optional[PRNGKey],
    train: bool,
    mode: str = "additive",
) -> Array:
    """Adds zero-mean Gaussian noise at training time; the identity at evaluation.

    .. math::
        \\text{additive: } y = x + \\sigma \\epsilon, \\qquad
        \\text{multiplicative: } y = x \\odot (1 + \\sigma \\epsilon), \\qquad
        \\epsilon \\sim \\mathcal{N}(0, I)

    with :math:`\\sigma` = ``std``. Both keep :math:`\\mathbb{E}[y] = x`, so the
    deterministic evaluation (``train=False``) is the expectation the notes'
    "add noise at training, marginalise at test" asks for; averaging the
    predictions of several noisy passes
    (:func:`jax231.models.mc_predict`) marginalises the noise numerically
    instead. Multiplicative noise with :math:`\\sigma^2 = p / (1 - p)` is
    Srivastava et al.'s Gaussian dropout, matching the variance of
    dropout with drop rate :math:`p`.

    Args:
      x: inputs or activations, any shape.
      std: :math:`\\sigma \\ge 0`; 0 returns ``x``. A traced ``std`` (a vmapped
        sweep) is not range-checked.
      rng: PRNG key; may be ``None`` when ``train`` is False or ``std == 0``.
      train: a Python bool; ``False`` returns ``x`` unchanged.
      mode: ``'additive'`` or ``'multiplicative'``.

    Returns:
      Array of the shape and dtype of ``x``.

    Raises:
      ValueError: when ``std`` < 0, ``mode`` is unknown, ``rng`` is missing at
        training time, or ``train`` is not a Python bool.

    References:
      CS231n notes, "Neural Networks Part 2", regularisation (dropout as one
      of the methods that add noise in the forward pass and marginalise it at
      test time); Srivastava et al., "Dropout", JMLR 2014, section 10
      (multiplicative Gaussian noise).
    """
    train = _checks.check_static_bool("train", train)
    if mode not in NOISE_MODES:
        raise ValueError(f"mode: expected one of {list(NOISE_MODES)}, got {mode!r}")
    x = jnp.asarray(x)
    if _checks.is_concrete(std):
        if jnp.ndim(std) != 0 or not float(std) >= 0.0:  # type: ignore[arg-type]  # a concrete scalar
            raise ValueError(f"std: expected a scalar >= 0, got {std!r}")
        if float(std) == 0.0:  # type: ignore[arg-type]  # a concrete scalar
            return x
    if not train:
        return x
    if rng is None:
        raise ValueError("rng: expected a PRNG key when train=True and std > 0, got None")
    noise = jnp.asarray(std, x.dtype) * jax.random.normal(rng, x.shape, x.dtype)
    return x + noise if mode == "additive" else x * (1 + noise)
