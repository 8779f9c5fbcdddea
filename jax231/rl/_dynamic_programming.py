"""Exact solutions of a finite MDP: policy evaluation, value / Q-iteration, policy iteration.

The Bellman expectation equation of a policy ``pi`` is linear,

.. math:: V^\\pi = r_\\pi + \\gamma P_\\pi V^\\pi
          \\;\\Rightarrow\\; V^\\pi = (I - \\gamma P_\\pi)^{-1} r_\\pi,

with ``r_pi(s) = sum_a pi(a|s) r(s, a)`` and ``P_pi(s, s') = sum_a pi(a|s) P(s'|s, a)``.
The Bellman optimality equations

.. math:: V^*(s) = \\max_a \\big[r(s,a) + \\gamma \\sum_{s'} P(s'|s,a) V^*(s')\\big], \\qquad
          Q^*(s,a) = r(s,a) + \\gamma \\sum_{s'} P(s'|s,a) \\max_{a'} Q^*(s',a')

are fixed points of gamma-contractions, so iterating them converges (value
iteration, Q-iteration); policy iteration alternates exact evaluation and greedy
improvement and stops in finitely many steps.

References:
  CS231n lecture 14 (2017): "Bellman equation", "Solving for the optimal policy: value iteration";
  Sutton & Barto (2nd ed.), chapter 4.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jax231.rl import _checks
from jax231.rl._mdp import MDP, expected_rewards
from jax231.types import Array, ArrayLike


class ValueIterationResult(NamedTuple):
    """Output of :func:`value_iteration`, :func:`q_iteration` and :func:`policy_iteration`.

    Attributes:
      values: ``V(s)``, shape ``(S,)``.
      q_values: ``Q(s, a)``, shape ``(S, A)``.
      policy: the greedy action per state, int32 ``(S,)``.
      iterations: number of sweeps (policy iteration: of improvements) made.
      residual: the last sup-norm change ``||V_{k+1} - V_k||_inf`` (0 for policy iteration).
    """

    values: Array
    q_values: Array
    policy: Array
    iterations: Array
    residual: Array


def _as_distribution(policy: ArrayLike, num_actions: int) -> Array:
    policy = jnp.asarray(policy)
    if policy.ndim == 1 and jnp.issubdtype(policy.dtype, jnp.integer):
        return jax.nn.one_hot(policy, num_actions)
    if policy.ndim != 2 or policy.shape[1] != num_actions:
        raise ValueError(
            f"policy: expected int actions (S,) or probabilities (S, {num_actions}), got shape {policy.shape}"
        )
    return policy.astype(jnp.float32)


def policy_evaluation(mdp: MDP, policy: ArrayLike) -> Array:
    """``V^pi`` in closed form: solves ``(I - gamma P_pi) V = r_pi``.

    Args:
      mdp: the MDP.
      policy: int actions ``(S,)`` or action probabilities ``pi(a|s)`` ``(S, A)``.

    Returns:
      ``V^pi``, shape ``(S,)``.
    """
    num_states, num_actions = mdp.transitions.shape[:2]
    pi = _as_distribution(policy, num_actions)
    if pi.shape[0] != num_states:
        raise ValueError(f"policy: expected {num_states} states, got shape {pi.shape}")
    r_pi = jnp.sum(pi * expected_rewards(mdp), axis=1)
    p_pi = jnp.einsum("sa,sat->st", pi, mdp.transitions)
    return jnp.linalg.solve(jnp.eye(num_states) - mdp.discount * p_pi, r_pi)


def q_from_values(mdp: MDP, values: ArrayLike) -> Array:
    """One Bellman backup: ``Q(s, a) = r(s, a) + gamma sum_s' P(s'|s,a) V(s')``."""
    return expected_rewards(mdp) + mdp.discount * mdp.transitions @ jnp.asarray(values)


def _iterate(backup, init: Array, tol: float, max_iterations: int) -> tuple[Array, Array, Array]:
    """Applies ``backup`` until the sup-norm change is <= ``tol`` (or ``max_iterations``)."""

    def cond(carry):
        _, k, delta = carry
        return (k < max_iterations) & (delta > tol)

    def body(carry):
        x, k, _ = carry
        new = backup(x)
        return new, k + 1, jnp.max(jnp.abs(new - x))

    return lax.while_loop(cond, body, (init, jnp.int32(0), jnp.float32(jnp.inf)))


def value_iteration(mdp: MDP, *, tol: float = 1e-6, max_iterations: int = 10_000) -> ValueIterationResult:
    """Value iteration: ``V_{k+1}(s) = max_a [r(s,a) + gamma sum_s' P(s'|s,a) V_k(s')]``.

    Starts from ``V_0 = 0``; after a change ``delta``, ``||V_k - V^*|| <= gamma delta / (1 - gamma)``.

    Args:
      mdp: the MDP.
      tol: stop once ``||V_{k+1} - V_k||_inf <= tol``.
      max_iterations: upper bound on sweeps.

    Returns:
      A :class:`ValueIterationResult`.
    """
    _checks.check_positive("tol", tol)
    _checks.check_positive_int("max_iterations", max_iterations)
    init = jnp.zeros(mdp.transitions.shape[0], jnp.float32)
    values, k, delta = _iterate(lambda v: q_from_values(mdp, v).max(axis=1), init, tol, max_iterations)
    q = q_from_values(mdp, values)
    return ValueIterationResult(values, q, jnp.argmax(q, axis=1).astype(jnp.int32), k, delta)


def q_iteration(mdp: MDP, *, tol: float = 1e-6, max_iterations: int = 10_000) -> ValueIterationResult:
    """Q-iteration: ``Q_{k+1}(s,a) = r(s,a) + gamma sum_s' P(s'|s,a) max_a' Q_k(s',a')``.

    Args:
      mdp: the MDP.
      tol: stop once ``||Q_{k+1} - Q_k||_inf <= tol``.
      max_iterations: upper bound on sweeps.

    Returns:
      A :class:`ValueIterationResult` (``values = max_a Q``).
    """
    _checks.check_positive("tol", tol)
    _checks.check_positive_int("max_iterations", max_iterations)
    init = jnp.zeros(mdp.transitions.shape[:2], jnp.float32)
    q, k, delta = _iterate(lambda q: q_from_values(mdp, q.max(axis=1)), init, tol, max_iterations)
    return ValueIterationResult(q.max(axis=1), q, jnp.argmax(q, axis=1).astype(jnp.int32), k, delta)


def policy_iteration(mdp: MDP, *, max_iterations: int = 1_000) -> ValueIterationResult:
    """Policy iteration: exact evaluation (a linear solve), then greedy improvement.

    1. ``V^pi = (I - gamma P_pi)^{-1} r_pi``; 2. ``pi'(s) = argmax_a Q^pi(s, a)``,
    keeping ``pi(s)`` unless another action is better by more than ``1e-6 (1 + |Q|)``
    (so ties cannot cycle); stop when the policy no longer changes.

    Args:
      mdp: the MDP.
      max_iterations: upper bound on improvements.

    Returns:
      A :class:`ValueIterationResult` (``residual`` is 0).
    """
    _checks.check_positive_int("max_iterations", max_iterations)

    def improve(policy: Array) -> Array:
        q = q_from_values(mdp, policy_evaluation(mdp, policy))
        best = jnp.argmax(q, axis=1).astype(jnp.int32)
        current = jnp.take_along_axis(q, policy[:, None], axis=1)[:, 0]
        better = q.max(axis=1) > current + 1e-6 * (1.0 + jnp.abs(current))
        return jnp.where(better, best, policy)

    def cond(carry):
        _, k, changed = carry
        return changed & (k < max_iterations)

    def body(carry):
        policy, k, _ = carry
        new = improve(policy)
        return new, k + 1, jnp.any(new != policy)

    init = jnp.zeros(mdp.transitions.shape[0], jnp.int32)
    policy, k, _ = lax.while_loop(cond, body, (init, jnp.int32(0), jnp.bool_(True)))
    values = policy_evaluation(mdp, policy)
    return ValueIterationResult(values, q_from_values(mdp, values), policy, k, jnp.float32(0.0))
