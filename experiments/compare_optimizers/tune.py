"""Learning-rate tuning in one vmapped program: a log grid x seeds as ``run_sweep`` members.

The DeepOBS protocol (Schneider et al. 2019), small: for one (model, optimizer),
every learning rate of a log-spaced grid is trained with every seed, all
``G x S`` runs as the members of ONE :func:`jax231.parallel.run_sweep` call (the
learning rate is a value in the optimizer state and the seed picks the
initialisation and data order, so the program compiles once). The grid point is
chosen on **validation** only, by default

.. math::  g^* = \\arg\\min_g \\frac{1}{S} \\sum_s L^{val}_{g,s},

the mean over seeds of the final validation loss (``select='val_accuracy'``: the
highest mean final validation accuracy instead; a member that diverged counts
as :math:`+\\infty`, so a grid point where any seed diverged never wins while a
stable one exists; ties go to the smaller learning rate). The ``S`` members at
:math:`g^*` are the reported runs: their test metrics were never looked at by the
selection. They are the same seeds the selection averaged over, which makes their
validation numbers optimistic (a winner's curse over ``G`` grid points), not their
test numbers.

Reusable beyond compare_optimizers: :func:`learning_rate_grid`,
:func:`select_grid_point` and :func:`tune_learning_rate` take plain arrays and a
model / optimizer, no experiment config.

References:
  Schneider, Balles & Hennig, "DeepOBS: A Deep Learning Optimizer Benchmark
  Suite", ICLR 2019 (tune on a log grid, rerun the best, report sensitivity).
  Schmidt, Schneider & Hennig, "Descending through a Crowded Valley", ICML 2021.
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from jax231 import parallel


def learning_rate_grid(low: float, high: float, num: int) -> np.ndarray:
    """``num`` learning rates log-spaced from ``low`` to ``high`` (both included; ``[low]`` if ``num == 1``).

    Raises:
      ValueError: ``num < 1`` or not ``0 < low <= high``.
    """
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"num: expected an integer >= 1 (grid points), got {num!r}")
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ValueError(f"(low, high): expected finite 0 < low <= high, got ({low!r}, {high!r})")
    return np.geomspace(low, high, num) if num > 1 else np.asarray([low], np.float64)


def grid_members(grid: Sequence[float], seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The sweep's members, grid-major: member ``g * S + s`` is ``(grid[g], seeds[s])``.

    Returns:
      ``(learning_rates, seeds)``, float32 and int32 arrays of shape ``(G * S,)``.
    """
    grid, seeds = np.asarray(grid, np.float32), np.asarray(seeds, np.int32)
    return np.repeat(grid, len(seeds)), np.tile(seeds, len(grid))


SELECT = ("val_loss", "val_accuracy")
"""Validation metrics a grid point can be chosen by (lowest mean loss, or highest mean accuracy)."""


def select_grid_point(score: np.ndarray, diverged: np.ndarray, *, maximize: bool = False) -> int:
    """The grid point with the best mean final validation score over seeds.

    Args:
      score: ``(G, S)`` final validation losses (or accuracies with ``maximize``).
      diverged: ``(G, S)`` booleans; a diverged (or non-finite) member counts as the
        worst score (``+inf`` loss, ``-inf`` accuracy).
      maximize: pick the highest mean instead of the lowest.

    Returns:
      The index ``g*``; ties (and a grid where every point has a diverged seed) go
      to the first, i.e. the smallest learning rate.
    """
    sign = -1.0 if maximize else 1.0
    score = sign * np.asarray(score, np.float64)
    bad = np.asarray(diverged, bool) | ~np.isfinite(score)
    return int(np.argmin(np.where(bad, np.inf, score).mean(axis=1)))


class Tuned(NamedTuple):
    """The outcome of :func:`tune_learning_rate`.

    Attributes:
      grid: ``(G,)`` the learning rates tried.
      seeds: ``(S,)`` the seeds of every grid point.
      sweep: the :class:`jax231.parallel.SweepResult` of the ``G * S`` members
        (order of :func:`grid_members`).
      val_loss: ``(G, S)`` final validation loss of each member (at the
        optimizer's ``eval_params`` where it has them, as ``fit`` evaluates).
      val_accuracy: ``(G, S)`` final validation accuracy.
      diverged: ``(G, S)`` whether ``fit``'s guard stopped the member.
      chosen: ``g*`` of :func:`select_grid_point`.
      wall_seconds: wall time of the sweep (compilation included).
    """

    grid: np.ndarray
    seeds: np.ndarray
    sweep: Any
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    diverged: np.ndarray
    chosen: int
    wall_seconds: float

    @property
    def learning_rate(self) -> float:
        """The chosen learning rate ``grid[chosen]``."""
        return float(self.grid[self.chosen])

    @property
    def at_edge(self) -> bool:
        """Whether the chosen point is the first or last of a grid of more than one point
        (the optimum may lie outside the range: widen it)."""
        return len(self.grid) > 1 and self.chosen in (0, len(self.grid) - 1)

    def members_at(self, g: int) -> np.ndarray:
        """Indices of grid point ``g``'s members in :attr:`sweep`."""
        s = len(self.seeds)
        return np.arange(g * s, (g + 1) * s)


def tune_learning_rate(
    model: Any,
    optimizer: Any,
    *,
    train: Mapping[str, Any],
    val: Mapping[str, Any],
    grid: Sequence[float],
    seeds: Sequence[int],
    num_steps: int,
    batch_size: int,
    eval_every: int,
    explosion_factor: float = 3.0,
    select: str = "val_loss",
) -> Tuned:
    """Trains every (learning rate, seed) of ``grid x seeds`` in one ``run_sweep`` and picks on validation.

    Args:
      model: a ``Model(init, apply)``.
      optimizer: a ``GradientTransformation`` with a constant ``learning_rate`` in
        its state (reuse the same object: it keys the compile cache).
      train: training arrays ``{'image', 'label'}``.
      val: validation arrays (the only split the choice looks at).
      grid: learning rates (e.g. :func:`learning_rate_grid`).
      seeds: seeds trained at every grid point.
      num_steps: updates per member.
      batch_size: minibatch size.
      eval_every: updates between validation evaluations (the last one is at ``num_steps``).
      explosion_factor: ``fit``'s divergence guard.
      select: one of :data:`SELECT`, the validation metric of the choice.

    Returns:
      A :class:`Tuned`.
    """
    if select not in SELECT:
        raise ValueError(f"select: expected one of {', '.join(SELECT)}, got {select!r}")
    grid, seeds = np.asarray(grid, np.float64), np.asarray(seeds, np.int32)
    lrs, member_seeds = grid_members(grid, seeds)
    start = time.monotonic()
    sweep = parallel.run_sweep(
        model,
        optimizer,
        train=train,
        val=val,
        seeds=member_seeds,
        hyperparams={"learning_rate": lrs},
        num_steps=num_steps,
        batch_size=batch_size,
        eval_every=eval_every,
        explosion_factor=explosion_factor,
    )
    wall = time.monotonic() - start
    shape = (len(grid), len(seeds))
    val_loss = np.asarray(sweep.history["val_loss"])[:, -1].reshape(shape)
    val_accuracy = np.asarray(sweep.history["val_accuracy"])[:, -1].reshape(shape)
    diverged = np.asarray(sweep.diverged, bool).reshape(shape)
    return Tuned(
        grid=grid,
        seeds=seeds,
        sweep=sweep,
        val_loss=val_loss,
        val_accuracy=val_accuracy,
        diverged=diverged,
        wall_seconds=wall,
        chosen=select_grid_point(
            val_accuracy if select == "val_accuracy" else val_loss, diverged, maximize=select == "val_accuracy"
        ),
    )


__all__ = ["SELECT", "Tuned", "grid_members", "learning_rate_grid", "select_grid_point", "tune_learning_rate"]
