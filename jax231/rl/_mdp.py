"""Finite Markov decision processes as arrays, and the grid world of the lecture.

An MDP ``(S, A, P, r, gamma)`` is held as dense arrays: ``transitions[s, a, s']``
is ``P(s' | s, a)`` and ``rewards[s, a, s']`` the reward of that transition, so
the expected reward of an action is ``r(s, a) = sum_s' P(s'|s,a) r(s,a,s')``.
Terminal states are absorbing with zero reward.

References:
  CS231n lecture 14 (2017), "Reinforcement Learning": Markov decision processes;
  Sutton & Barto, "Reinforcement Learning: An Introduction" (2nd ed.), chapter 3.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax.numpy as jnp
import numpy as np

from jax231.rl import _checks
from jax231.types import Array

ACTIONS = ("up", "right", "down", "left")
"""Grid-world actions, in index order."""

_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))

CLASSIC_LAYOUT = (
    "...G",
    ".#.P",
    "S...",
)
"""Russell & Norvig's 4x3 world: start ``S``, goal ``G`` (+1), pit ``P`` (-1), wall ``#``."""


class MDP(NamedTuple):
    """A finite MDP as arrays.

    Attributes:
      transitions: ``P[s, a, s']``, shape ``(S, A, S)``; each ``P[s, a]`` sums to 1.
      rewards: ``r[s, a, s']``, shape ``(S, A, S)``.
      discount: ``gamma`` in [0, 1).
      terminal: bool ``(S,)``, absorbing states (zero reward once there).
      start_distribution: ``(S,)`` probabilities of the first state.
    """

    transitions: Array
    rewards: Array
    discount: float
    terminal: Array
    start_distribution: Array


def expected_rewards(mdp: MDP) -> Array:
    """``r(s, a) = sum_s' P(s'|s,a) r(s,a,s')``, shape ``(S, A)``."""
    return jnp.sum(mdp.transitions * mdp.rewards, axis=-1)


def _cell_kinds(layout: Sequence[str]) -> np.ndarray:
    rows = [str(row) for row in layout]
    if not rows or any(len(row) != len(rows[0]) for row in rows) or not rows[0]:
        raise ValueError(f"layout: expected equal-length non-empty strings, got {layout!r}")
    grid = np.array([list(row) for row in rows])
    unknown = sorted(set(grid.ravel()) - set(".#SGP"))
    if unknown:
        raise ValueError(f"layout: expected only the characters '.#SGP', got {unknown}")
    if (grid == "S").sum() != 1 or (grid == "G").sum() < 1:
        raise ValueError(f"layout: expected one start 'S' and at least one goal 'G', got {layout!r}")
    return grid


def grid_world(
    layout: Sequence[str] = CLASSIC_LAYOUT,
    *,
    slip: float = 0.2,
    step_reward: float = -0.04,
    goal_reward: float = 1.0,
    pit_reward: float = -1.0,
    discount: float = 0.99,
) -> MDP:
    """A grid world: move up/right/down/left, slipping sideways with probability ``slip``.

    The intended move happens with probability ``1 - slip``; each perpendicular
    move with ``slip / 2``. Moving into a wall or off the grid leaves the agent
    in place. Every move costs ``step_reward``; entering the goal ``G`` adds
    ``goal_reward``, a pit ``P`` adds ``pit_reward``; both are terminal. States
    are the cells in row-major order; walls are unreachable states, marked
    terminal (absorbing, zero reward) so that no episode starts there.

    Args:
      layout: rows of ``'.'`` (free), ``'#'`` (wall), ``'S'`` (start), ``'G'``, ``'P'``.
      slip: probability of a perpendicular move, in [0, 1].
      step_reward: reward of every move.
      goal_reward: extra reward for entering a goal.
      pit_reward: extra reward for entering a pit.
      discount: ``gamma`` in [0, 1).

    Returns:
      The :class:`MDP` (float32 arrays).

    Raises:
      ValueError: for a malformed layout, ``slip`` outside [0, 1] or ``discount`` outside [0, 1).
    """
    slip = _checks.check_probability("slip", slip)
    discount = _checks.check_discount("discount", discount)
    grid = _cell_kinds(layout)
    height, width = grid.shape
    num_states = height * width
    terminal = np.isin(grid.ravel(), ("G", "P", "#"))  # walls: unreachable, absorbing
    bonus = np.where(grid.ravel() == "G", goal_reward, np.where(grid.ravel() == "P", pit_reward, 0.0))
    transitions = np.zeros((num_states, len(ACTIONS), num_states))
    rewards = np.zeros_like(transitions)

    def move(row: int, col: int, direction: int) -> int:
        r, c = row + _MOVES[direction][0], col + _MOVES[direction][1]
        if not (0 <= r < height and 0 <= c < width) or grid[r, c] == "#":
            r, c = row, col
        return r * width + c

    for s in range(num_states):
        row, col = divmod(s, width)
        for a in range(len(ACTIONS)):
            if terminal[s]:
                transitions[s, a, s] = 1.0  # absorbing, zero reward
                continue
            for direction, p in ((a, 1.0 - slip), ((a + 1) % 4, slip / 2), ((a + 3) % 4, slip / 2)):
                transitions[s, a, move(row, col, direction)] += p
            rewards[s, a] = step_reward + bonus
    start = (grid.ravel() == "S").astype(np.float64)
    return MDP(
        transitions=jnp.asarray(transitions, jnp.float32),
        rewards=jnp.asarray(rewards, jnp.float32),
        discount=discount,
        terminal=jnp.asarray(terminal),
        start_distribution=jnp.asarray(start, jnp.float32),
    )
