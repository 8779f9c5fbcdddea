"""Lion: the sign of an interpolated momentum (Chen et al. 2023).

References:
  Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
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


class LionState(NamedTuple):
    """State of :func:`lion`.

    Attributes:
      step: int32 scalar, number of updates made so far.
      momentum: ``m``, moving average of gradients with decay ``beta2`` (parameter dtypes).
      hyperparams: ``{'learning_rate', 'beta1', 'beta2', 'weight_decay'}`` scalars.
    """

    step: Array
    momentum: Updates
    hyperparams: dict[str, Array]


def lion(
    learning_rate: ScalarOrSchedule = 1e-4,
    *,
    beta1: ScalarOrSchedule = 0.9,
    beta2: ScalarOrSchedule = 0.99,
    weight_decay: ScalarOrSchedule = 1e-3,
) -> GradientTransformation:
    """Lion: a step of fixed size per coordinate, in the sign of an interpolated momentum.

    .. math::
        c &= \\beta_1 m + (1 - \\beta_1) g \\\\
        \\Delta &= -\\alpha \\left(\\mathrm{sign}(c) + \\lambda \\theta\\right) \\\\
        m &\\leftarrow \\beta_2 m + (1 - \\beta_2) g

    with ``alpha = learning_rate`` and ``lambda = weight_decay`` (decoupled,
    scaled by the learning rate). Every coordinate moves by exactly ``alpha``
    (before decay), so the usual learning rate is 3-10x smaller than AdamW's.
    Equals ``optax.lion(alpha, b1=beta1, b2=beta2, weight_decay=lambda)``.
    ``update`` needs ``params`` when ``weight_decay`` is not 0.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      beta1: interpolation weight of the momentum in the step, in [0, 1).
      beta2: decay of the momentum, in [0, 1).
      weight_decay: ``lambda`` >= 0.

    Returns:
      A :class:`GradientTransformation` with :class:`LionState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: on a bad hyperparameter, or when ``update`` gets ``params=None``.
    """
    check_non_negative("learning_rate", learning_rate)
    check_unit_interval("beta1", beta1)
    check_unit_interval("beta2", beta2)
    check_non_negative("weight_decay", weight_decay)
    spec = {"learning_rate": learning_rate, "beta1": beta1, "beta2": beta2, "weight_decay": weight_decay}

    def init(params: Params) -> LionState:
        return LionState(jnp.zeros((), jnp.int32), tm.zeros_like(params), init_hyperparams(spec))

    def update(
        grads: Updates, state: LionState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, LionState]:
        del extra
        check_tree_match(grads, state.momentum, reference_name="state.momentum")
        if params is None:
            raise ValueError("params: lion needs the parameters for its weight decay, got None")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        b1, b2 = hp["beta1"], hp["beta2"]
        # 1. c = b1 m + (1 - b1) g ;  d = sign(c) + lambda theta
        direction = jax.tree_util.tree_map(
            lambda m, g: jnp.sign(b1 * m + (1 - b1) * g).astype(m.dtype), state.momentum, grads
        )
        direction = tm.add_scale(direction, hp["weight_decay"], tm.cast_like(params, direction))
        # 2. m <- b2 m + (1 - b2) g
        momentum = tm.moment(grads, state.momentum, b2, order=1)
        updates = tm.scale(-hp["learning_rate"], direction)
        return updates, LionState(state.step + 1, momentum, hp)

    return GradientTransformation(init, update)
