"""Epsilon-greedy exploration and its linearly annealed epsilon.

References:
  Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015
  (epsilon annealed linearly from 1.0 to 0.1 over the first million frames).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax231.rl import _checks
from jax231.types import Array, ArrayLike, PRNGKey, Schedule


def epsilon_greedy(rng: PRNGKey, q_values: ArrayLike, epsilon: ArrayLike) -> Array:
    """Samples ``argmax_a Q(a)`` with probability ``1 - epsilon``, else a uniform action.

    Args:
      rng: a random key.
      q_values: ``(..., A)`` action values; one action is drawn per leading index.
      epsilon: exploration probability (may be traced).

    Returns:
      int32 actions of shape ``q_values.shape[:-1]``.
    """
    q_values = jnp.asarray(q_values)
    explore_key, action_key = jax.random.split(rng)
    shape = q_values.shape[:-1]
    greedy = jnp.argmax(q_values, axis=-1).astype(jnp.int32)
    uniform = jax.random.randint(action_key, shape, 0, q_values.shape[-1], dtype=jnp.int32)
    return jnp.where(jax.random.uniform(explore_key, shape) < epsilon, uniform, greedy)


def linear_epsilon(start: float = 1.0, end: float = 0.05, *, steps: int = 10_000) -> Schedule:
    """``epsilon_t = start + (end - start) min(t / steps, 1)``: linear annealing, then constant.

    Args:
      start: epsilon at ``t = 0``, in [0, 1].
      end: epsilon from ``t = steps`` on, in [0, 1].
      steps: length of the annealing, >= 1.

    Returns:
      A schedule ``t -> epsilon`` (``t`` may be traced).
    """
    start = _checks.check_probability("epsilon_start", start)
    end = _checks.check_probability("epsilon_end", end)
    steps = _checks.check_positive_int("epsilon_steps", steps)

    def schedule(t: ArrayLike) -> Array:
        fraction = jnp.clip(jnp.asarray(t, jnp.float32) / steps, 0.0, 1.0)
        return start + (end - start) * fraction

    return schedule
