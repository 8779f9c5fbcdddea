"""Losses of the deep RL agents: Huber TD loss, policy-gradient surrogate, entropy.

References:
  Mnih et al., Nature 2015 (the TD error clipped to [-1, 1], i.e. the Huber loss);
  Williams, "Simple statistical gradient-following algorithms for connectionist
  reinforcement learning", Machine Learning 1992 (REINFORCE);
  CS231n lecture 14 (2017), "Policy gradients", "Variance reduction", "Baselines".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax231.rl import _checks
from jax231.types import Array, ArrayLike


def huber_loss(errors: ArrayLike, *, delta: float = 1.0) -> Array:
    """Per-element Huber loss: ``e^2 / 2`` for ``|e| <= delta``, ``delta (|e| - delta / 2)`` beyond.

    Its gradient is the error clipped to ``[-delta, delta]``.
    """
    delta = _checks.check_positive("delta", delta)
    errors = jnp.asarray(errors)
    abs_errors = jnp.abs(errors)
    quadratic = jnp.minimum(abs_errors, delta)
    return 0.5 * quadratic**2 + delta * (abs_errors - quadratic)


def policy_gradient_loss(*, log_probs: ArrayLike, advantages: ArrayLike) -> Array:
    """Per-sample surrogate ``-log pi(a|s) * A``, the advantage held constant.

    Its gradient is the score-function (REINFORCE) estimator of ``-grad J``:

    .. math:: \\nabla_\\theta J = \\mathbb{E}[\\nabla_\\theta \\log \\pi_\\theta(a|s)\\,(G - b(s))]

    with ``advantages = G - b(s)`` (a return minus a baseline independent of ``a``,
    which leaves the estimator unbiased and can cut its variance).

    Args:
      log_probs: ``log pi(a|s)`` of the actions taken.
      advantages: ``G - b(s)`` (gradients are stopped).

    Returns:
      The per-sample surrogate, the shape of ``log_probs``.
    """
    return -jnp.asarray(log_probs) * jax.lax.stop_gradient(jnp.asarray(advantages))


def categorical_entropy(logits: ArrayLike) -> Array:
    """``H(pi) = -sum_a pi(a) log pi(a)`` of ``softmax(logits)`` over the last axis."""
    log_p = jax.nn.log_softmax(jnp.asarray(logits), axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def log_prob(logits: ArrayLike, actions: ArrayLike) -> Array:
    """``log softmax(logits)[a]`` over the last axis, for int ``actions`` of shape ``logits.shape[:-1]``."""
    log_p = jax.nn.log_softmax(jnp.asarray(logits), axis=-1)
    return jnp.take_along_axis(log_p, jnp.asarray(actions)[..., None], axis=-1)[..., 0]
