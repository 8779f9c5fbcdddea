"""Returns and advantages along a rollout: discounted returns-to-go and GAE(lambda).

Rollouts are time-major ``(T, N)``; ``dones[t]`` says that the episode ended
with the transition at ``t`` (the environment then reset), so nothing flows
back across it.

References:
  Schulman et al., "High-dimensional continuous control using generalized advantage
  estimation", ICLR 2016.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jax231.rl import _checks
from jax231.types import Array, ArrayLike


def discounted_returns(
    rewards: ArrayLike, dones: ArrayLike, *, discount: float, bootstrap: ArrayLike | None = None
) -> Array:
    """Returns-to-go ``G_t = r_t + gamma (1 - done_t) G_{t+1}``, ``G_T = bootstrap`` (default 0).

    Args:
      rewards: ``(T, ...)``.
      dones: ``(T, ...)`` booleans.
      discount: ``gamma`` in [0, 1).
      bootstrap: value after the last step (``V(s_T)``), shape ``rewards.shape[1:]``.

    Returns:
      ``G``, the shape of ``rewards``.
    """
    discount = _checks.check_discount("discount", discount)
    rewards = jnp.asarray(rewards, jnp.float32)
    not_done = 1.0 - jnp.asarray(dones, jnp.float32)
    last = jnp.zeros(rewards.shape[1:]) if bootstrap is None else jnp.asarray(bootstrap, jnp.float32)

    def body(g, x):
        r, nd = x
        g = r + discount * nd * g
        return g, g

    _, returns = lax.scan(body, last, (rewards, not_done), reverse=True)
    return returns


def gae_advantages(
    rewards: ArrayLike,
    values: ArrayLike,
    dones: ArrayLike,
    last_value: ArrayLike,
    *,
    discount: float,
    gae_lambda: float,
) -> tuple[Array, Array]:
    """Generalised advantage estimation.

    .. math::
        \\delta_t = r_t + \\gamma (1 - d_t) V(s_{t+1}) - V(s_t), \\qquad
        A_t = \\delta_t + \\gamma \\lambda (1 - d_t) A_{t+1}

    ``lambda = 1`` gives Monte-Carlo returns minus the baseline, ``lambda = 0`` the
    one-step TD error.

    Args:
      rewards: ``(T, N)``.
      values: ``V(s_t)``, ``(T, N)``.
      dones: ``(T, N)`` booleans.
      last_value: ``V(s_T)``, ``(N,)``.
      discount: ``gamma`` in [0, 1).
      gae_lambda: ``lambda`` in [0, 1].

    Returns:
      ``(advantages, returns)`` with ``returns = advantages + values`` (the critic's targets).
    """
    discount = _checks.check_discount("discount", discount)
    gae_lambda = _checks.check_probability("gae_lambda", gae_lambda)
    values = jnp.asarray(values, jnp.float32)
    not_done = 1.0 - jnp.asarray(dones, jnp.float32)
    next_values = jnp.concatenate([values[1:], jnp.asarray(last_value, jnp.float32)[None]], axis=0)
    deltas = jnp.asarray(rewards, jnp.float32) + discount * not_done * next_values - values

    def body(a, x):
        delta, nd = x
        a = delta + discount * gae_lambda * nd * a
        return a, a

    _, advantages = lax.scan(body, jnp.zeros(values.shape[1:]), (deltas, not_done), reverse=True)
    return advantages, advantages + values
