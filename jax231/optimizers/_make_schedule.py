"""Learning-rate schedules by name: the one ``make_schedule`` of configs and experiments.

A config names a schedule (``'constant'``, ``'step'``, ``'exponential'``, ``'cosine'``,
``'warmup_cosine'``) and the run length; :func:`make_schedule` turns that into a
constant or a function ``step -> lr`` built from :mod:`jax231.optimizers.schedules`.
The names live in one :class:`jax231._registry.Registry` (``SCHEDULES``) of recipes,
each ``recipe(learning_rate, options) -> lr or schedule``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Union

from jax231 import _validation
from jax231._registry import Registry
from jax231.optimizers import schedules
from jax231.types import Schedule

__all__ = ["SCHEDULES", "ScheduleOptions", "make_schedule"]


class ScheduleOptions(NamedTuple):
    """The options of every recipe (each reads the ones it needs).

    Attributes:
      num_steps: the length of the run (>= 1).
      decay_rate: ``'step'``'s factor per decay.
      step_size: ``'step'``'s steps between decays (default ``num_steps // 3``).
      final_fraction: ``'exponential'`` ends at this fraction of the peak rate.
      warmup_steps: ``'warmup_cosine'``'s warm-up length (default from ``warmup_fraction``).
      warmup_fraction: ``'warmup_cosine'``'s warm-up as a fraction of ``num_steps``.
    """

    num_steps: int
    decay_rate: float
    step_size: Optional[int]
    final_fraction: float
    warmup_steps: Optional[int]
    warmup_fraction: float


LearningRate = Union[float, Schedule]

SCHEDULES: Registry[LearningRate] = Registry("schedule")
"""Recipes by name; :func:`make_schedule` is the way to call them."""


@SCHEDULES.register
def constant(learning_rate: float, options: ScheduleOptions) -> LearningRate:
    """``lr`` itself (a float, not a function: nothing to evaluate per step)."""
    del options
    return float(learning_rate)


@SCHEDULES.register
def step(learning_rate: float, options: ScheduleOptions) -> LearningRate:
    """``lr * decay_rate ** floor(t / step_size)``."""
    size = options.step_size if options.step_size is not None else max(1, options.num_steps // 3)
    return schedules.step_decay(learning_rate, decay_rate=options.decay_rate, step_size=int(size))


@SCHEDULES.register
def exponential(learning_rate: float, options: ScheduleOptions) -> LearningRate:
    """``lr * exp(-k t)`` with ``k = -log(final_fraction) / num_steps``."""
    rate = -math.log(options.final_fraction) / options.num_steps
    return schedules.exponential_decay(learning_rate, decay_rate=rate)


@SCHEDULES.register
def cosine(learning_rate: float, options: ScheduleOptions) -> LearningRate:
    """Cosine annealing from ``lr`` to 0 over ``num_steps``."""
    return schedules.cosine_decay(learning_rate, decay_steps=options.num_steps)


@SCHEDULES.register
def warmup_cosine(learning_rate: float, options: ScheduleOptions) -> LearningRate:
    """Linear warm-up over ``W`` steps, then cosine annealing to 0 over the rest.

    ``W = warmup_steps`` if given, else ``int(warmup_fraction * num_steps)``, clamped
    to ``[1, num_steps - 1]`` (at least one step of each phase).
    """
    n = options.num_steps
    wanted = options.warmup_steps if options.warmup_steps is not None else int(options.warmup_fraction * n)
    warmup = min(max(wanted, 1), max(n - 1, 1))
    return schedules.linear_warmup(
        learning_rate, warmup_steps=warmup, after=schedules.cosine_decay(learning_rate, decay_steps=max(n - warmup, 1))
    )


def make_schedule(
    name: str,
    learning_rate: float,
    *,
    num_steps: int,
    decay_rate: float = 0.1,
    step_size: Optional[int] = None,
    final_fraction: float = 0.01,
    warmup_steps: Optional[int] = None,
    warmup_fraction: float = 0.05,
) -> LearningRate:
    """The learning rate of a run as a constant or a schedule ``step -> lr``.

    Args:
      name: one of ``SCHEDULES.names``:

        * ``'constant'``: ``lr``;
        * ``'step'``: ``lr * decay_rate ** floor(t / step_size)`` (defaults 0.1 and ``num_steps // 3``);
        * ``'exponential'``: ``lr * exp(-k t)`` with ``k = -log(final_fraction) / num_steps``
          (default ``final_fraction`` 0.01: the rate ends at 1% of ``lr``);
        * ``'cosine'``: cosine annealing to 0 over ``num_steps``;
        * ``'warmup_cosine'``: linear warm-up over ``warmup_steps`` (default
          ``warmup_fraction`` = 5% of the run; clamped to ``[1, num_steps - 1]``), then
          cosine annealing to 0 over the remaining steps.
      learning_rate: the base (peak) learning rate, finite and >= 0.
      num_steps: the length of the run (>= 1).
      decay_rate, step_size, final_fraction, warmup_steps, warmup_fraction: the options
        above; each schedule reads its own and ignores the others, so one config can
        carry them all.

    Raises:
      ValueError: an unknown name (listing the valid ones) or an invalid option.
    """
    recipe = SCHEDULES.factory(name)
    _validation.check_non_negative("learning_rate", learning_rate)
    options = ScheduleOptions(
        num_steps=_validation.check_positive_int("num_steps", num_steps),
        decay_rate=_validation.check_non_negative("decay_rate", decay_rate),
        step_size=None if step_size is None else _validation.check_positive_int("step_size", step_size),
        final_fraction=_validation.check_in_range("final_fraction", final_fraction, low=0.0, high=1.0, low_open=True),
        warmup_steps=None if warmup_steps is None else _validation.check_non_negative_int("warmup_steps", warmup_steps),
        warmup_fraction=_validation.check_in_range("warmup_fraction", warmup_fraction, low=0.0, high=1.0),
    )
    return recipe(learning_rate, options)
