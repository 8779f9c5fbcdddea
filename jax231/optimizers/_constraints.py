"""Max-norm constraint: project each unit's incoming weight vector onto a ball after the update.

References:
  CS231n notes, "Neural Networks Part 2", regularisation: max norm constraints
  (https://cs231n.github.io/neural-networks-2/#reg);
  Srivastava et al., "Dropout", JMLR 2014, section 5.1 (max-norm with dropout).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers._base import (
    GradientTransformation,
    check_params_given,
    check_positive,
    current_hyperparams,
    init_hyperparams,
)
from jax231.types import Array, ArrayLike, Params, ScalarOrSchedule, Updates


def project_max_norm(w: ArrayLike, max_norm: ArrayLike) -> Array:
    """Scales every column ``w[..., j]`` whose norm exceeds ``max_norm`` back onto the ball.

    .. math:: \\vec w_j \\leftarrow \\vec w_j \\cdot \\min\\left(1, \\frac{c}{\\|\\vec w_j\\|_2}\\right)

    with :math:`\\vec w_j` the weights into unit :math:`j`: every axis but the
    last (``(D, M)`` dense weights: the column ``w[:, j]``; ``(F, F, C, K)`` HWIO
    filters: filter ``j``), and :math:`c` = ``max_norm``.

    Args:
      w: a weight tensor of rank >= 2, output units on the last axis.
      max_norm: :math:`c > 0`.

    Returns:
      The projected tensor, the shape and dtype of ``w``.
    """
    w = jnp.asarray(w)
    axes = tuple(range(w.ndim - 1))
    norms = jnp.sqrt(jnp.sum(jnp.square(w), axis=axes, keepdims=True))
    factor = jnp.minimum(1.0, max_norm / jnp.maximum(norms, jnp.finfo(w.dtype).tiny))
    return (w * factor).astype(w.dtype)


class MaxNormState(NamedTuple):
    """State of :func:`max_norm`.

    Attributes:
      step: int32, updates made.
      hyperparams: ``{'max_norm': scalar}``, the radius :math:`c`.
    """

    step: Array
    hyperparams: dict[str, Array]


def max_norm(max_norm: ScalarOrSchedule = 3.0) -> GradientTransformation:
    """Max-norm constraint as the *last* transformation of a chain.

    Turns the incoming updates :math:`u` (already scaled by the rule) into
    :math:`u'` such that the new parameters are the projection of the
    unconstrained step:

    .. math:: \\theta + u' = P_c(\\theta + u), \\qquad
              P_c(\\vec w_j) = \\vec w_j \\min(1, c / \\|\\vec w_j\\|_2)

    per unit :math:`j` of every leaf of rank >= 2 (see :func:`project_max_norm`);
    rank-0/1 leaves (biases, batch-norm ``gamma``/``beta``) are left free. The
    notes give typical :math:`c` of 3 or 4. Because it acts on the parameters,
    ``update`` needs ``params``, and it must come after the rule:
    ``chain(sgd(0.1), max_norm(3.0))``.

    Args:
      max_norm: the radius :math:`c > 0` (float, array or schedule).

    Returns:
      A :class:`GradientTransformation` with :class:`MaxNormState`.

    Raises:
      ValueError: if ``max_norm`` <= 0, or ``update`` gets ``params=None``.
    """
    check_positive("max_norm", max_norm)
    spec = {"max_norm": max_norm}

    def init(params: Params) -> MaxNormState:
        del params
        return MaxNormState(jnp.zeros((), jnp.int32), init_hyperparams(spec))

    def update(
        updates: Updates, state: MaxNormState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, MaxNormState]:
        del extra
        params = check_params_given(updates, params, why="max_norm projects them")
        hp = current_hyperparams(spec, state.hyperparams, state.step)

        def constrain(p: Array, u: Array) -> Array:
            if jnp.ndim(p) < 2:
                return u
            return (project_max_norm(p + u, hp["max_norm"]) - p).astype(jnp.result_type(u))

        new_updates = jax.tree_util.tree_map(constrain, params, updates)
        return new_updates, MaxNormState(state.step + 1, hp)

    return GradientTransformation(init, update)  # type: ignore[arg-type]  # first param is named `updates`, not `grads`
