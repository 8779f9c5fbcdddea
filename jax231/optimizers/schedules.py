"""Learning-rate schedules: pure functions ``step -> value``, jittable and vmappable.

Every factory validates its arguments and returns a function of an integer
step (a Python int or a traced int array; 0 is the first update). Pass one as
the ``learning_rate`` of any optimizer: the optimizer evaluates it at its
state's ``step`` (see :mod:`jax231.optimizers`).

References:
  CS231n notes, "Annealing the learning rate":
  https://cs231n.github.io/neural-networks-3/#anneal
  Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm
  Restarts", ICLR 2017.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jax231._validation import check_positive_int
from jax231.optimizers._base import check_non_negative
from jax231.types import Array, ArrayLike, Schedule

__all__ = [
    "constant",
    "cosine_decay",
    "exponential_decay",
    "inverse_time_decay",
    "linear_warmup",
    "piecewise_linear",
    "sgdr",
    "step_decay",
]


_check_steps = check_positive_int


def _t(step: ArrayLike) -> Array:
    return jnp.asarray(step, dtype=jnp.result_type(float))


def constant(value: float) -> Schedule:
    """``alpha_t = value``."""
    check_non_negative("value", value)
    return lambda step: jnp.full(jnp.shape(step), value, dtype=jnp.result_type(float))


def step_decay(init_value: float, *, decay_rate: float, step_size: int) -> Schedule:
    """Step decay: ``alpha_t = init_value * decay_rate ** floor(t / step_size)``.

    Args:
      init_value: ``alpha_0`` >= 0.
      decay_rate: factor applied every ``step_size`` steps, >= 0 (e.g. 0.5).
      step_size: steps between decays, >= 1.
    """
    check_non_negative("init_value", init_value)
    check_non_negative("decay_rate", decay_rate)
    _check_steps("step_size", step_size)
    return lambda step: init_value * decay_rate ** jnp.floor(_t(step) / step_size)


def exponential_decay(init_value: float, *, decay_rate: float) -> Schedule:
    """Exponential decay: ``alpha_t = init_value * exp(-decay_rate * t)``.

    Args:
      init_value: ``alpha_0`` >= 0.
      decay_rate: ``k`` >= 0.
    """
    check_non_negative("init_value", init_value)
    check_non_negative("decay_rate", decay_rate)
    return lambda step: init_value * jnp.exp(-decay_rate * _t(step))


def inverse_time_decay(init_value: float, *, decay_rate: float) -> Schedule:
    """1/t decay: ``alpha_t = init_value / (1 + decay_rate * t)``.

    Args:
      init_value: ``alpha_0`` >= 0.
      decay_rate: ``k`` >= 0.
    """
    check_non_negative("init_value", init_value)
    check_non_negative("decay_rate", decay_rate)
    return lambda step: init_value / (1 + decay_rate * _t(step))


def cosine_decay(init_value: float, *, decay_steps: int, final_value: float = 0.0) -> Schedule:
    """Cosine annealing from ``init_value`` to ``final_value`` over ``decay_steps``.

    .. math::
        \\alpha_t = \\alpha_f + \\tfrac12 (\\alpha_0 - \\alpha_f)
                    (1 + \\cos(\\pi \\min(t, T) / T))

    with ``T = decay_steps``; constant at ``final_value`` after ``T``.
    """
    check_non_negative("init_value", init_value)
    check_non_negative("final_value", final_value)
    _check_steps("decay_steps", decay_steps)

    def schedule(step: ArrayLike) -> Array:
        t = jnp.minimum(_t(step), decay_steps)
        return final_value + 0.5 * (init_value - final_value) * (1 + jnp.cos(math.pi * t / decay_steps))

    return schedule


def linear_warmup(
    peak_value: float,
    *,
    warmup_steps: int,
    init_value: float = 0.0,
    after: Schedule | None = None,
) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value``, then ``after``.

    .. math::
        \\alpha_t = \\alpha_{init} + (\\alpha_{peak} - \\alpha_{init})\\, t / W
        \\quad (t < W), \\qquad \\alpha_t = \\text{after}(t - W) \\quad (t \\ge W)

    with ``W = warmup_steps``; ``after`` defaults to the constant ``peak_value``
    and is given the step counted from the end of the warm-up.
    """
    check_non_negative("peak_value", peak_value)
    check_non_negative("init_value", init_value)
    _check_steps("warmup_steps", warmup_steps)
    if after is not None and not callable(after):
        raise ValueError(f"after: expected a schedule (callable step -> value) or None, got {after!r}")

    def schedule(step: ArrayLike) -> Array:
        t = _t(step)
        warm = init_value + (peak_value - init_value) * jnp.clip(t, 0, warmup_steps) / warmup_steps
        rest = peak_value if after is None else after(jnp.maximum(jnp.asarray(step) - warmup_steps, 0))
        return jnp.where(t < warmup_steps, warm, rest)

    return schedule


def sgdr(
    init_value: float,
    *,
    first_period: int,
    period_mult: int = 1,
    min_value: float = 0.0,
) -> Schedule:
    """SGDR: cosine annealing with warm restarts.

    .. math::
        \\alpha_t = \\alpha_{min} + \\tfrac12 (\\alpha_0 - \\alpha_{min})
                    (1 + \\cos(\\pi\\, T_{cur} / T_i))

    where period ``i`` lasts ``T_i = first_period * period_mult**i`` steps and
    ``T_cur`` counts the steps since the last restart.

    Args:
      init_value: ``alpha_0``, the value right after each restart.
      first_period: ``T_0`` >= 1.
      period_mult: ``T_mult`` >= 1, growth of the period at each restart.
      min_value: ``alpha_min``.
    """
    check_non_negative("init_value", init_value)
    check_non_negative("min_value", min_value)
    _check_steps("first_period", first_period)
    _check_steps("period_mult", period_mult)

    def schedule(step: ArrayLike) -> Array:
        t = _t(step)
        if period_mult == 1:
            start = jnp.floor(t / first_period) * first_period
            period = jnp.full_like(t, first_period)
        else:
            q = float(period_mult)
            i = jnp.floor(jnp.log1p(t * (q - 1) / first_period) / math.log(q))
            start_of = lambda j: first_period * (q**j - 1) / (q - 1)
            # fix rounding of the logarithm at period boundaries
            i = jnp.where(t < start_of(i), i - 1, jnp.where(t >= start_of(i + 1), i + 1, i))
            start, period = start_of(i), first_period * q**i
        t_cur = t - start
        return min_value + 0.5 * (init_value - min_value) * (1 + jnp.cos(math.pi * t_cur / period))

    return schedule


def piecewise_linear(steps: tuple[int, ...] | list[int], values: tuple[float, ...] | list[float]) -> Schedule:
    """Linear interpolation between ``(step, value)`` knots; constant outside them.

    .. math:: \\alpha_t = v_i + (v_{i+1} - v_i) \\frac{t - t_i}{t_{i+1} - t_i}
              \\quad (t_i \\le t \\le t_{i+1})

    (``numpy.interp``). Three knots give the triangular ("one-cycle") schedule
    of fast CIFAR-10 training: warm up from ``v_0`` to the peak ``v_1`` at
    ``t_1``, then down to ``v_2`` at the last step (airbench: 0.2, 1.0, 0.07
    times the base rate, peak at 23% of the run).

    Args:
      steps: increasing knot steps ``t_0 < t_1 < ...`` (at least two, ints >= 0).
      values: the values ``v_i >= 0`` at the knots (as many as ``steps``).

    Raises:
      ValueError: for fewer than two knots, lengths that differ, steps that do
        not increase, or a negative value.
    """
    steps, values = tuple(steps), tuple(float(v) for v in values)
    if len(steps) < 2 or len(steps) != len(values):
        raise ValueError(f"steps: expected at least two knots and one value per knot, got {steps} and {values}")
    if any(b <= a for a, b in zip(steps, steps[1:])) or steps[0] < 0:
        raise ValueError(f"steps: expected increasing steps >= 0, got {steps}")
    for v in values:
        check_non_negative("values", v)
    knots_t = jnp.asarray(steps, jnp.float32)
    knots_v = jnp.asarray(values, jnp.float32)

    def schedule(step: ArrayLike) -> Array:
        return jnp.interp(_t(step), knots_t, knots_v)

    return schedule
