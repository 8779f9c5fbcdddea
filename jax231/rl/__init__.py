"""Reinforcement learning in pure JAX: exact MDP solutions, tabular Q-learning, deep RL on gymnax.

Tabular (lecture 14's MDPs): :func:`grid_world` builds an :class:`MDP` as arrays
(``P[s, a, s']``, ``r[s, a, s']``); :func:`policy_evaluation` solves the Bellman
expectation equation as a linear system; :func:`value_iteration`,
:func:`q_iteration` and :func:`policy_iteration` solve the optimality equation;
:func:`tabular_q_learning` learns ``Q*`` from samples with epsilon-greedy exploration.
"""

from jax231.rl._dynamic_programming import (
    ValueIterationResult,
    policy_evaluation,
    policy_iteration,
    q_from_values,
    q_iteration,
    value_iteration,
)
from jax231.rl._exploration import epsilon_greedy, linear_epsilon
from jax231.rl._mdp import ACTIONS, CLASSIC_LAYOUT, MDP, expected_rewards, grid_world
from jax231.rl._q_learning import TabularQState, tabular_q_learning

__all__ = [
    "ACTIONS",
    "CLASSIC_LAYOUT",
    "MDP",
    "TabularQState",
    "ValueIterationResult",
    "epsilon_greedy",
    "expected_rewards",
    "grid_world",
    "linear_epsilon",
    "policy_evaluation",
    "policy_iteration",
    "q_from_values",
    "q_iteration",
    "tabular_q_learning",
    "value_iteration",
]
