"""Builds an optimizer of the notes by name, with a learning rate and a schedule.

Everything comes from :mod:`jax231.optimizers` (the hand-written rules); optimizer
and schedule names are validated so that a typo on the command line is a one-line
error listing the valid choices.
"""

from __future__ import annotations

from typing import Any, Callable

from jax231 import optimizers

from experiments import _common as common

OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "nadamw",
    "lion",
    "schedule_free_adamw",
    "lbfgs",
)
"""Optimizers compared by default: the notes' seven (L-BFGS is full batch) with AlgoPerf's
baselines NAdamW, Lion and schedule-free AdamW (config.py's ``optimizers``)."""

SCHEDULES = ("constant", "cosine", "step", "warmup_cosine")
"""Learning-rate schedules accepted by ``--schedule``."""


def valid_optimizers() -> tuple[str, ...]:
    """Optimizer names accepted by ``--optimizers`` (:data:`jax231.optimizers.NAMES`)."""
    return tuple(optimizers.NAMES)


def is_full_batch(name: str) -> bool:
    """Whether rule ``name`` needs the full-batch objective (L-BFGS's line search).

    Asked of the built object (``GradientTransformation.needs_objective``), never of the name.
    """
    return bool(optimizers.get(name).needs_objective)


def make_schedule(
    name: str, *, learning_rate: float, num_steps: int, warmup_steps: int = 0
) -> float | Callable[[Any], Any]:
    """A learning-rate schedule ``step -> lr`` from :mod:`jax231.optimizers.schedules`.

    Args:
      name: ``'constant'`` (returns ``learning_rate`` itself); ``'cosine'`` (cosine
        decay to 0 over ``num_steps``); ``'step'`` (×0.1 every ``num_steps // 3``
        steps); ``'warmup_cosine'`` (linear warm-up over ``warmup_steps``, then cosine
        decay over the remaining steps).
      learning_rate: the initial / peak learning rate.
      num_steps: the length of the run.
      warmup_steps: warm-up length for ``'warmup_cosine'`` (at least 1 is used).

    Raises:
      UsageError: unknown schedule name.
    """
    common.parse_choices("schedule", [name], SCHEDULES)
    schedules = optimizers.schedules
    if name == "constant":
        return learning_rate
    if name == "cosine":
        return schedules.cosine_decay(learning_rate, decay_steps=max(num_steps, 1))
    if name == "step":
        return schedules.step_decay(learning_rate, decay_rate=0.1, step_size=max(num_steps // 3, 1))
    warmup = min(max(warmup_steps, 1), max(num_steps - 1, 1))
    return schedules.linear_warmup(
        learning_rate,
        warmup_steps=warmup,
        after=schedules.cosine_decay(learning_rate, decay_steps=max(num_steps - warmup, 1)),
    )


def build_optimizer(
    name: str,
    *,
    learning_rate: float,
    schedule: str = "constant",
    num_steps: int = 1,
    warmup_steps: int = 0,
    lbfgs_history: int = 10,
):
    """The :mod:`jax231.optimizers` rule ``name`` with the given learning rate.

    Args:
      name: one of :func:`valid_optimizers`.
      learning_rate: peak learning rate. For ``'lbfgs'`` it scales the line search's
        first trial step (1.0 is textbook L-BFGS) and takes no schedule.
      schedule: see :func:`make_schedule` (not applied to L-BFGS).
      num_steps: run length (for schedules).
      warmup_steps: warm-up length for ``'warmup_cosine'``.
      lbfgs_history: number of curvature pairs L-BFGS keeps.

    Returns:
      A ``GradientTransformation`` (optax protocol).

    Raises:
      UsageError: unknown optimizer or schedule.
    """
    common.parse_choices("optimizers", [name], valid_optimizers())
    if is_full_batch(name):
        return optimizers.get(name, learning_rate=learning_rate, history=lbfgs_history)
    lr = make_schedule(schedule, learning_rate=learning_rate, num_steps=num_steps, warmup_steps=warmup_steps)
    return optimizers.get(name, learning_rate=lr)


apply_updates = optimizers.apply_updates
