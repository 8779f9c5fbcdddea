"""Per-parameter adaptive learning rates: AdaGrad and RMSProp.

Both keep ``eps`` outside the square root, as in the CS231n notes (optax's
``adagrad`` puts it inside; ``optax.rmsprop(..., eps_in_sqrt=False)`` matches).

References:
  CS231n notes, "Per-parameter adaptive learning rate methods":
  https://cs231n.github.io/neural-networks-3/#ada
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jax231.optimizers import _tree_math as tm
from jax231.optimizers._base import (
    GradientTransformation,
    check_non_negative,
    check_positive,
    check_tree_match,
    check_unit_interval,
    current_hyperparams,
    init_hyperparams,
)
from jax231.types import Array, Params, ScalarOrSchedule, Updates


class AdagradState(NamedTuple):
    """State of :func:`adagrad`.

    Attributes:
      step: int32 scalar, number of updates made so far.
      grad_squared: ``G``, the running sum of squared gradients (parameter dtypes).
      hyperparams: ``{'learning_rate': scalar, 'eps': scalar}``.
    """

    step: Array
    grad_squared: Updates
    hyperparams: dict[str, Array]


def _scaled_step(grads: Updates, grad_squared: Updates, alpha: Array, eps: Array) -> Updates:
    """``-alpha * g / (sqrt(G) + eps)`` leaf by leaf, in the dtype of ``G``."""
    return jax.tree_util.tree_map(lambda g, G: (-alpha * g / (jnp.sqrt(G) + eps)).astype(G.dtype), grads, grad_squared)


def adagrad(learning_rate: ScalarOrSchedule = 1e-2, *, eps: float = 1e-8) -> GradientTransformation:
    """AdaGrad: step sizes scaled by the root of the sum of squared gradients.

    .. math::
        G \\leftarrow G + g^2, \\qquad \\Delta = -\\alpha\\, g / (\\sqrt{G} + \\epsilon)

    with ``alpha = learning_rate`` and ``epsilon = eps``; ``G`` starts at zero.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      eps: ``epsilon`` > 0, added outside the square root.

    Returns:
      A :class:`GradientTransformation` with :class:`AdagradState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: if ``learning_rate`` < 0 or ``eps`` <= 0.

    References:
      Duchi, Hazan and Singer, "Adaptive Subgradient Methods for Online Learning
      and Stochastic Optimization", JMLR 2011.
    """
    check_non_negative("learning_rate", learning_rate)
    check_positive("eps", eps)
    spec = {"learning_rate": learning_rate, "eps": eps}

    def init(params: Params) -> AdagradState:
        return AdagradState(
            step=jnp.zeros((), jnp.int32),
            grad_squared=tm.zeros_like(params),
            hyperparams=init_hyperparams(spec),
        )

    def update(
        grads: Updates, state: AdagradState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, AdagradState]:
        del params, extra
        check_tree_match(grads, state.grad_squared, reference_name="state.grad_squared")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        # 1. G <- G + g^2
        grad_squared = tm.add(state.grad_squared, tm.mul(grads, grads))
        # 2. Delta = -alpha * g / (sqrt(G) + eps)
        updates = _scaled_step(grads, grad_squared, hp["learning_rate"], hp["eps"])
        return updates, AdagradState(step=state.step + 1, grad_squared=grad_squared, hyperparams=hp)

    return GradientTransformation(init, update)


class RmspropState(NamedTuple):
    """State of :func:`rmsprop`.

    Attributes:
      step: int32 scalar, number of updates made so far.
      grad_squared: ``G``, the moving average of squared gradients (parameter dtypes).
      hyperparams: ``{'learning_rate', 'decay', 'eps'}`` scalars.
    """

    step: Array
    grad_squared: Updates
    hyperparams: dict[str, Array]


def rmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    *,
    decay: ScalarOrSchedule = 0.99,
    eps: float = 1e-8,
) -> GradientTransformation:
    """RMSProp: AdaGrad with a leaky (exponentially decaying) sum.

    .. math::
        G \\leftarrow \\beta G + (1 - \\beta) g^2, \\qquad
        \\Delta = -\\alpha\\, g / (\\sqrt{G} + \\epsilon)

    with ``alpha = learning_rate``, ``beta = decay`` and ``epsilon = eps``; ``G``
    starts at zero. Equals ``optax.rmsprop(alpha, decay=beta, eps=epsilon,
    eps_in_sqrt=False)``.

    Args:
      learning_rate: ``alpha``: a float, an array, or a schedule ``step -> lr``.
      decay: ``beta`` in [0, 1).
      eps: ``epsilon`` > 0, added outside the square root.

    Returns:
      A :class:`GradientTransformation` with :class:`RmspropState`; ``update``
      ignores unknown keyword extras.

    Raises:
      ValueError: if ``learning_rate`` < 0, ``decay`` is outside [0, 1) or ``eps`` <= 0.

    References:
      Tieleman and Hinton, Lecture 6.5 of "Neural Networks for Machine Learning",
      Coursera 2012.
    """
    check_non_negative("learning_rate", learning_rate)
    check_unit_interval("decay", decay)
    check_positive("eps", eps)
    spec = {"learning_rate": learning_rate, "decay": decay, "eps": eps}

    def init(params: Params) -> RmspropState:
        return RmspropState(
            step=jnp.zeros((), jnp.int32),
            grad_squared=tm.zeros_like(params),
            hyperparams=init_hyperparams(spec),
        )

    def update(
        grads: Updates, state: RmspropState, params: Params | None = None, **extra: Any
    ) -> tuple[Updates, RmspropState]:
        del params, extra
        check_tree_match(grads, state.grad_squared, reference_name="state.grad_squared")
        hp = current_hyperparams(spec, state.hyperparams, state.step)
        # 1. G <- beta * G + (1 - beta) * g^2
        grad_squared = tm.moment(grads, state.grad_squared, hp["decay"], order=2)
        # 2. Delta = -alpha * g / (sqrt(G) + eps)
        updates = _scaled_step(grads, grad_squared, hp["learning_rate"], hp["eps"])
        return updates, RmspropState(step=state.step + 1, grad_squared=grad_squared, hyperparams=hp)

    return GradientTransformation(init, update)
