"""Schedule-free SGD and AdamW (Defazio et al. 2024): averaging instead of a decay schedule.

Three sequences: the base rule steps ``z``; ``x`` is the weighted average of
the ``z`` iterates (the point to evaluate); the gradient is taken at their
interpolation ``y`` (the parameters the training loop holds):

.. math::
    y_t &= (1 - \\beta_1) z_t + \\beta_1 x_t \\\\
    z_{t+1} &= z_t - \\gamma_t\\, d_t(\\nabla f(y_t)) \\\\
    x_{t+1} &= (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}, \\qquad
    c_{t+1} = \\frac{\\gamma_{\\max}^{p}}{\\sum_{i \\le t} \\gamma_{\\max, i}^{p}}

with ``d`` the base direction (the gradient for SGD, the RMS-normalised
gradient for AdamW, plus decoupled weight decay at ``y``), ``gamma`` the
learning rate, ``gamma_max`` the largest learning rate so far and ``p =
weight_lr_power``. Only ``z`` is stored: ``x = (y - (1 - beta1) z) / beta1`` is
recovered from the parameters, so memory equals the base rule's. The point to
evaluate is given by the transformation's ``eval_params(state, params)``.

References:
  Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky, "The Road Less
  Scheduled", NeurIPS 2024 (winner of AlgoPerf's self-tuning track).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import (
    GradientTransformation,
    _concrete,
    check_non_negative,
    check_positive,
    check_tree_match,
    check_unit_interval,
    current_hyperparams,
    init_hyperparams,
)
from jax231.types import Array, ArrayLike, Params, ScalarOrSchedule, Updates


class ScheduleFreeState(NamedTuple):
    """State of :func:`schedule_free_sgd` and :func:`schedule_free_adamw`.

    Attributes:
      step: int32 scalar ``t``, number of updates made so far.
      z: the base rule's iterate (parameter dtypes).
      weight_sum: ``sum_i gamma_max,i^p``, the averaging weights so far.
      max_lr: ``gamma_max``, the largest learning rate used so far.
      second_moment: ``v`` of AdamW (parameter dtypes); ``None`` for SGD.
      hyperparams: ``{'learning_rate', 'beta1', 'weight_lr_power', 'weight_decay'}``
        scalars, plus ``'beta2'`` and ``'eps'`` for AdamW.
    """

    step: Array
    z: Params
    weight_sum: Array
    max_lr: Array
    second_moment: Updates | None
    hyperparams: dict[str, Array]


def _check_beta1(value: Any) -> None:
    v = _concrete("beta1", value)
    if v is not None and not 0 < v < 1:
        raise ValueError(f"beta1: expected a value in (0, 1) (x is recovered by dividing by it), got {value!r}")


def _average_point(params: Params, z: Params, b1: ArrayLike) -> Params:
    """``x = (y - (1 - beta1) z) / beta1``: the averaged point, from ``y = params`` and ``z``."""
    return jax.tree_util.tree_map(lambda y, zi: ((y - (1 - b1) * zi) / b1).astype(y.dtype), params, z)


def eval_params(state: ScheduleFreeState, params: Params) -> Params:
    """The parameters to evaluate: the average ``x``, recovered from ``params`` (``y``) and ``z``."""
    return _average_point(params, state.z, state.hyperparams["beta1"])


def _schedule_free_rule(spec: dict[str, Any], adaptive: bool) -> GradientTransformation:
    check_non_negative("learning_rate", spec["learning_rate"])
    _check_beta1(spec["beta1"])
    check_non_negative("weight_lr_power", spec["weight_lr_power"])
    check_non_negative("weight_decay", spec["weight_decay"])
    if adaptive:
        check_unit_interval("beta2", spec["beta2"])
        check_positive("eps", spec["eps"])

    def init(params: Params) -> ScheduleFreeState:
        return ScheduleFreeState(
            step=jnp.zeros((), jnp.int32),
            z=jax.tree_util.tree_map(jnp.array, params),  # a copy: z and params may both be donated
            weight_sum=jnp.zeros((), jnp.result_type(float)),
            max_lr=jnp.zeros((), jnp.result_type(float)),
            second_moment=tm.zeros_like(params) if adaptive else None,
            hyperparams=init_hyperparams(spec),
        )

    def update(
        grads: Updates, state: ScheduleFreeState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, ScheduleFreeState]:
        del extra
        if params is None:
            raise ValueError("params: schedule-free rules need the parameters (y), got None")
        check_tree_match(grads, state.z, reference_name="state.z")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        lr, b1 = hp["learning_rate"], hp["beta1"]
        t = state.step + 1
        # 1. c = gamma_max^p / sum_i gamma_max,i^p  (0 while every rate so far is 0)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr ** hp["weight_lr_power"]
        weight_sum = state.weight_sum + weight
        c = jnp.where(weight_sum > 0, weight / jnp.where(weight_sum > 0, weight_sum, 1.0), 0.0)
        # 2. d = g (SGD)  or  g / (sqrt(v / (1 - b2^t)) + eps) (AdamW);  d += lambda y
        second_moment = None
        direction = tm.cast_like(grads, state.z)
        if adaptive:
            second_moment = tm.moment(grads, state.second_moment, hp["beta2"], order=2)
            v_hat = tm.bias_correction(second_moment, hp["beta2"], t)
            direction = jax.tree_util.tree_map(
                lambda g, v: (g / (jnp.sqrt(v) + hp["eps"])).astype(g.dtype), direction, v_hat
            )
        direction = tm.add_scale(direction, hp["weight_decay"], tm.cast_like(params, direction))
        # 3. z <- z - gamma d ;  x <- (1 - c) x + c z ;  y <- b1 x + (1 - b1) z
        z = tm.add_scale(state.z, -lr, direction)
        x = jax.tree_util.tree_map(
            lambda xi, zi: ((1 - c) * xi + c * zi).astype(xi.dtype), _average_point(params, state.z, b1), z
        )
        y = jax.tree_util.tree_map(lambda xi, zi: (b1 * xi + (1 - b1) * zi).astype(xi.dtype), x, z)
        new_state = ScheduleFreeState(t, z, weight_sum, max_lr, second_moment, hp)
        return tm.sub(y, tm.cast_like(params, y)), new_state

    return GradientTransformation(init, update, eval_params=eval_params)


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    *,
    beta1: ScalarOrSchedule = 0.9,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: ScalarOrSchedule = 2.0,
) -> GradientTransformation:
    """Schedule-free SGD: the base direction is ``d = g + lambda y``.

    See the module docstring for the three sequences. Evaluate at
    ``opt.eval_params(state, params)`` (``x``), not at ``params`` (``y``);
    :func:`jax231.training.fit` does so through the capability field. Equals
    ``optax.contrib.schedule_free_sgd(gamma, b1=beta1, weight_decay=lambda,
    weight_lr_power=p)`` for a constant learning rate; a schedule is read at
    the state's ``step`` (0 for the first update), where optax's wrapper reads
    its own averaging weight one step later.

    Args:
      learning_rate: ``gamma``: a float, an array, or a schedule (warm-up, no decay).
      beta1: interpolation ``beta1`` in (0, 1).
      weight_decay: ``lambda`` >= 0, decoupled, applied at ``y`` and scaled by ``gamma``.
      weight_lr_power: ``p`` >= 0, how strongly the average discounts warm-up iterates.

    Returns:
      A :class:`GradientTransformation` with :class:`ScheduleFreeState` and
      ``eval_params``; ``update`` needs ``params`` and ignores unknown keyword extras.

    Raises:
      ValueError: on a bad hyperparameter, or when ``update`` gets ``params=None``.
    """
    spec = {
        "learning_rate": learning_rate,
        "beta1": beta1,
        "weight_decay": weight_decay,
        "weight_lr_power": weight_lr_power,
    }
    return _schedule_free_rule(spec, adaptive=False)


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 2.5e-3,
    *,
    beta1: ScalarOrSchedule = 0.9,
    beta2: ScalarOrSchedule = 0.999,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: ScalarOrSchedule = 2.0,
) -> GradientTransformation:
    """Schedule-free AdamW: ``d = g / (sqrt(v_hat) + eps) + lambda y``, Adam without momentum.

    .. math::
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2, \\qquad
        d = g / (\\sqrt{v / (1 - \\beta_2^t)} + \\epsilon) + \\lambda y

    The momentum of Adam is replaced by the interpolation/averaging of the
    module docstring (``beta1`` plays its role). Evaluate at
    ``opt.eval_params(state, params)``. Equals
    ``optax.contrib.schedule_free_adamw(gamma, b1=beta1, b2=beta2, eps=epsilon,
    weight_decay=lambda, weight_lr_power=p)`` for a constant learning rate.
    (The reference PyTorch code also folds Adam's bias correction into
    ``gamma``; optax's version, matched here, corrects ``v`` instead.)

    Args:
      learning_rate: ``gamma``: a float, an array, or a schedule (warm-up, no decay).
      beta1: interpolation ``beta1`` in (0, 1).
      beta2: decay of the second moment, in [0, 1).
      eps: ``epsilon`` > 0, outside the square root.
      weight_decay: ``lambda`` >= 0, decoupled, applied at ``y`` and scaled by ``gamma``.
      weight_lr_power: ``p`` >= 0.

    Returns:
      A :class:`GradientTransformation` with :class:`ScheduleFreeState` and
      ``eval_params``; ``update`` needs ``params`` and ignores unknown keyword extras.

    Raises:
      ValueError: on a bad hyperparameter, or when ``update`` gets ``params=None``.
    """
    spec = {
        "learning_rate": learning_rate,
        "beta1": beta1,
        "beta2": beta2,
        "eps": eps,
        "weight_decay": weight_decay,
        "weight_lr_power": weight_lr_power,
    }
    return _schedule_free_rule(spec, adaptive=True)
