"""Tabular Q-learning with epsilon-greedy exploration, sampling a finite MDP.

For each sampled transition ``(s, a, r, s')``:

.. math:: Q(s,a) \\leftarrow Q(s,a) + \\alpha_n \\big[r + \\gamma (1 - \\mathrm{term}(s'))
          \\max_{a'} Q(s',a') - Q(s,a)\\big]

with a per-pair step size ``alpha_n = (n + 1)^{-omega}`` after ``n`` earlier
visits of ``(s, a)`` (Robbins-Monro for ``omega`` in (0.5, 1]). An episode ends
on a terminal state; the next starts from a state drawn uniformly over the
non-terminal states ("exploring starts", so every pair keeps being visited).
The whole run is one ``lax.scan``.

References:
  Watkins & Dayan, "Q-learning", Machine Learning 1992; CS231n lecture 14 (2017), "Q-learning";
  Even-Dar & Mansour, "Learning rates for Q-learning", JMLR 2003 (polynomial step sizes).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.rl import _checks
from jax231.rl._exploration import epsilon_greedy
from jax231.rl._mdp import MDP
from jax231.types import Array, PRNGKey


class TabularQState(NamedTuple):
    """Carry of :func:`tabular_q_learning`.

    Attributes:
      q_values: ``Q(s, a)``, shape ``(S, A)``.
      visits: int32 ``(S, A)`` visit counts (the step-size schedule).
      state: int32 scalar, the current MDP state.
    """

    q_values: Array
    visits: Array
    state: Array


def _reset(rng: PRNGKey, mdp: MDP) -> Array:
    logits = jnp.where(mdp.terminal, -jnp.inf, 0.0)
    return jax.random.categorical(rng, logits).astype(jnp.int32)


def tabular_q_learning(
    mdp: MDP, rng: PRNGKey, *, num_steps: int = 100_000, epsilon: float = 0.2, omega: float = 0.7
) -> TabularQState:
    """Runs ``num_steps`` Q-learning updates on transitions sampled from ``mdp``.

    Args:
      mdp: the MDP to sample (``P`` and ``r`` are used only to simulate).
      rng: a random key.
      num_steps: transitions sampled (one update each).
      epsilon: probability of a uniform action (epsilon-greedy), in [0, 1].
      omega: step-size exponent, ``alpha_n = (n + 1)^{-omega}``, in (0.5, 1].

    Returns:
      The final :class:`TabularQState`.

    Raises:
      ValueError: for ``epsilon`` outside [0, 1], ``omega`` outside (0.5, 1] or ``num_steps`` < 1.
    """
    epsilon = _checks.check_probability("epsilon", epsilon)
    num_steps = _checks.check_positive_int("num_steps", num_steps)
    if not 0.5 < float(omega) <= 1.0:
        raise ValueError(f"omega: expected a step-size exponent in (0.5, 1], got {omega!r}")
    num_states, num_actions = mdp.transitions.shape[:2]

    def step(carry: TabularQState, key: PRNGKey) -> tuple[TabularQState, None]:
        act_key, next_key, reset_key = jax.random.split(key, 3)
        s = carry.state
        # 1. epsilon-greedy action, sampled next state and its reward
        a = epsilon_greedy(act_key, carry.q_values[s], epsilon)
        s_next = jax.random.categorical(next_key, jnp.log(mdp.transitions[s, a])).astype(jnp.int32)
        r = mdp.rewards[s, a, s_next]
        # 2. TD target r + gamma (1 - term) max_a' Q(s', a') and the Robbins-Monro step
        target = r + mdp.discount * jnp.where(mdp.terminal[s_next], 0.0, carry.q_values[s_next].max())
        alpha = (carry.visits[s, a] + 1.0) ** (-omega)
        q = carry.q_values.at[s, a].add(alpha * (target - carry.q_values[s, a]))
        # 3. a terminal state ends the episode: restart from a random non-terminal state
        s_next = jnp.where(mdp.terminal[s_next], _reset(reset_key, mdp), s_next)
        return TabularQState(q, carry.visits.at[s, a].add(1), s_next), None

    init_key, scan_key = jax.random.split(rng)
    init = TabularQState(
        q_values=jnp.zeros((num_states, num_actions), jnp.float32),
        visits=jnp.zeros((num_states, num_actions), jnp.int32),
        state=_reset(init_key, mdp),
    )
    final, _ = lax.scan(step, init, jax.random.split(scan_key, num_steps))
    return final
