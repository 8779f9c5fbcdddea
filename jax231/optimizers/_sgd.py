"""Stochastic gradient descent, with momentum and with Nesterov momentum.

References:
  CS231n notes, "Neural Networks Part 3: Learning and Evaluation", section
  "Parameter updates": https://cs231n.github.io/neural-networks-3/#update
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import (
    GradientTransformation,
    check_non_negative,
    check_tree_match,
    check_unit_interval,
    current_hyperparams,
    init_hyperparams,
)
from jax231.types import Array, Params, ScalarOrSchedule, Updates


class SgdState(NamedTuple):
    """State of :func:`sgd`.

    Attributes:
      step: int32 scalar, number of updates made so far (the schedules' argument).
      hyperparams: ``{'learning_rate': scalar}``.
    """

    step: Array
    hyperparams: dict[str, Array]


def sgd(learning_rate: ScalarOrSchedule = 1e-2) -> GradientTransformation:
    """Vanilla stochastic gradient descent.

    .. math:: \\Delta = -\\alpha g

    with ``g`` the gradient and ``alpha = learning_rate``.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.

    Returns:
      A :class:`GradientTransformation`; ``update`` ignores unknown keyword extras.

    Raises:
      ValueError: if ``learning_rate`` is negative.
    """
    check_non_negative("learning_rate", learning_rate)
    spec = {"learning_rate": learning_rate}

    def init(params: Params) -> SgdState:
        del params
        return SgdState(step=jnp.zeros((), jnp.int32), hyperparams=init_hyperparams(spec))

    def update(grads: Updates, state: SgdState, params: Params | None = None, **extra: Any) -> tuple[Updates, SgdState]:
        del extra
        if params is not None:
            check_tree_match(grads, params, reference_name="params")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        updates = tm.scale(-hp["learning_rate"], grads)
        return updates, SgdState(step=state.step + 1, hyperparams=hp)

    return GradientTransformation(init, update)


class MomentumState(NamedTuple):
    """State of :func:`momentum` and :func:`nesterov`.

    Attributes:
      step: int32 scalar, number of updates made so far.
      velocity: ``v``, same structure and dtypes as the parameters.
      hyperparams: ``{'learning_rate': scalar, 'momentum': scalar}``.
    """

    step: Array
    velocity: Updates
    hyperparams: dict[str, Array]


def _momentum_rule(
    learning_rate: ScalarOrSchedule, rho: ScalarOrSchedule, use_nesterov: bool
) -> GradientTransformation:
    check_non_negative("learning_rate", learning_rate)
    check_unit_interval("momentum", rho)
    spec = {"learning_rate": learning_rate, "momentum": rho}

    def init(params: Params) -> MomentumState:
        return MomentumState(
            step=jnp.zeros((), jnp.int32),
            velocity=tm.zeros_like(params),
            hyperparams=init_hyperparams(spec),
        )

    def update(
        grads: Updates, state: MomentumState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MomentumState]:
        del params, extra
        check_tree_match(grads, state.velocity, reference_name="state.velocity")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        alpha, rho = hp["learning_rate"], hp["momentum"]
        # 1. v <- rho * v + g
        velocity = tm.add(tm.scale(rho, state.velocity), grads)
        # 2. Delta = -alpha * v            (momentum)
        #    Delta = -alpha * (g + rho * v) (Nesterov, with the new v)
        if use_nesterov:
            direction = tm.add_scale(tm.cast_like(grads, velocity), rho, velocity)
        else:
            direction = velocity
        updates = tm.scale(-alpha, direction)
        return updates, MomentumState(step=state.step + 1, velocity=velocity, hyperparams=hp)

    return GradientTransformation(init, update)


def momentum(learning_rate: ScalarOrSchedule = 1e-2, *, momentum: ScalarOrSchedule = 0.9) -> GradientTransformation:
    """SGD with (heavy-ball) momentum.

    .. math::
        v \\leftarrow \\rho v + g, \\qquad \\Delta = -\\alpha v

    with ``alpha = learning_rate`` and ``rho = momentum``. Equals
    ``optax.sgd(learning_rate, momentum=rho)``.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      momentum: ``rho`` in [0, 1) (or a schedule).

    Returns:
      A :class:`GradientTransformation` with :class:`MomentumState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: if ``learning_rate`` < 0 or ``momentum`` is outside [0, 1).
    """
    return _momentum_rule(learning_rate, momentum, use_nesterov=False)


def nesterov(learning_rate: ScalarOrSchedule = 1e-2, *, momentum: ScalarOrSchedule = 0.9) -> GradientTransformation:
    """SGD with Nesterov momentum, in the "look-ahead on the update" form.

    .. math::
        v \\leftarrow \\rho v + g, \\qquad \\Delta = -\\alpha (g + \\rho v)

    with ``alpha = learning_rate`` and ``rho = momentum``. Equals
    ``optax.sgd(learning_rate, momentum=rho, nesterov=True)``.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      momentum: ``rho`` in [0, 1) (or a schedule).

    Returns:
      A :class:`GradientTransformation` with :class:`MomentumState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: if ``learning_rate`` < 0 or ``momentum`` is outside [0, 1).

    References:
      Sutskever et al., "On the importance of initialization and momentum in deep
      learning", ICML 2013.
    """
    return _momentum_rule(learning_rate, momentum, use_nesterov=True)
